-- Point lookup, limit: no RLS, the tenant is a literal predicate (run as the table owner,
-- hlbench_owner, not a superuser).
-- <set context> = computing the tenant's uuid, which the query then names as a parameter.
\set t random(1, 10000)
\set id :t + 10000 * random(0, 199)
BEGIN;
SELECT md5('hlbench-account-' || :t)::uuid AS tenant \gset
SELECT id, name, email FROM bench.items_limit WHERE account_id = :tenant AND id = :id;
COMMIT;
