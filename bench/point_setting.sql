-- Point lookup, current_setting: RLS policy account_id = current_setting('app.tenant')::uuid.
-- <set context> = set_config('app.tenant', <uuid>, true) (forgeable by any SET).
\set t random(1, 10000)
\set id :t + 10000 * random(0, 199)
BEGIN;
SELECT set_config('app.tenant', md5('hlbench-account-' || :t)::uuid::text, true);
SELECT id, name, email FROM bench.items_setting WHERE id = :id;
COMMIT;
