-- Point lookup, hlauth: hlauth.protect()ed table, app role granted hlauth_trusted.
-- <set context> = hlauth.set_principal(principal, tenant, scopes); scopes arrive as text
-- (pgbench -D scopes=...), so scope parsing is paid per transaction as in an app.
\set t random(1, 10000)
\set id :t + 10000 * random(0, 199)
BEGIN;
SELECT hlauth.set_principal(:principal, md5('hlbench-account-' || :t)::uuid, :scopes);
SELECT id, name, email FROM bench.items_hlauth WHERE id = :id;
COMMIT;
