-- Per-tenant count, limit: no RLS, literal tenant predicate.
\set t random(1, 10000)
BEGIN;
SELECT md5('hlbench-account-' || :t)::uuid AS tenant \gset
SELECT count(*) FROM bench.items_limit WHERE account_id = :tenant;
COMMIT;
