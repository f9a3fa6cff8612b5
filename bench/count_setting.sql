-- Per-tenant count, current_setting policy.
\set t random(1, 10000)
BEGIN;
SELECT set_config('app.tenant', md5('hlbench-account-' || :t)::uuid::text, true);
SELECT count(*) FROM bench.items_setting;
COMMIT;
