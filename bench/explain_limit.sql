-- bench/explain_limit.sql: generic plans of the limit, as the table owner (hlbench_owner).
\set ON_ERROR_STOP on
\pset footer off
BEGIN;
SET LOCAL plan_cache_mode = force_generic_plan;
PREPARE point(uuid, bigint) AS SELECT id, name, email FROM bench.items_limit WHERE account_id = $1 AND id = $2;
PREPARE cnt(uuid) AS SELECT count(*) FROM bench.items_limit WHERE account_id = $1;
\echo '-- limit point lookup'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE point(md5('hlbench-account-4321')::uuid, 174321);
\echo '-- limit per-tenant count'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE cnt(md5('hlbench-account-4321')::uuid);
COMMIT;
