-- bench/explain_hlauth.sql: the plans pgbench -M prepared runs (generic plans), as hlbench_app.
\set ON_ERROR_STOP on
\pset footer off
BEGIN;
SET LOCAL plan_cache_mode = force_generic_plan;
SELECT hlauth.set_principal(md5('hlbench-principal')::uuid, md5('hlbench-account-4321')::uuid, 'contacts.readonly') \gset
PREPARE point(bigint) AS SELECT id, name, email FROM bench.items_hlauth WHERE id = $1;
PREPARE cnt AS SELECT count(*) FROM bench.items_hlauth;
PREPARE cnt_noscope AS SELECT count(*) FROM bench.items_noscope;
\echo '-- hlauth point lookup: SELECT id, name, email FROM bench.items_hlauth WHERE id = $1'
EXPLAIN (ANALYZE, VERBOSE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE point(174321);
\echo '-- hlauth per-tenant count: SELECT count(*) FROM bench.items_hlauth'
EXPLAIN (ANALYZE, VERBOSE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE cnt;
\echo '-- hlauth without a read scope (diagnostic), per-tenant count: SELECT count(*) FROM bench.items_noscope'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE cnt_noscope;
COMMIT;
