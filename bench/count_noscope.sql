-- Per-tenant count, hlauth without a read scope (diagnostic).
\set t random(1, 10000)
BEGIN;
SELECT hlauth.set_principal(:principal, md5('hlbench-account-' || :t)::uuid, :scopes);
SELECT count(*) FROM bench.items_noscope;
COMMIT;
