-- bench/explain_setting.sql: generic plans of the current_setting variant, as hlbench_app.
\set ON_ERROR_STOP on
\pset footer off
BEGIN;
SET LOCAL plan_cache_mode = force_generic_plan;
SELECT set_config('app.tenant', md5('hlbench-account-4321')::uuid::text, true) \gset
PREPARE point(bigint) AS SELECT id, name, email FROM bench.items_setting WHERE id = $1;
PREPARE cnt AS SELECT count(*) FROM bench.items_setting;
\echo '-- current_setting point lookup'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE point(174321);
\echo '-- current_setting per-tenant count'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE cnt;
COMMIT;
