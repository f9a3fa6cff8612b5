-- bench/check.sql: before timing anything, every variant must see exactly its tenant's rows.
-- Run as hlbench_app (the limit is checked as the owner by run.sh). Fails on any mismatch.
\set ON_ERROR_STOP on
\set t 4321
\set id 174321
BEGIN;
SELECT set_config('app.tenant', md5('hlbench-account-' || :t)::uuid::text, true) IS NOT NULL AS ok \gset
SELECT (SELECT count(*) FROM bench.items_setting) = 200
   AND (SELECT count(*) FROM bench.items_setting WHERE id = :id) = 1
   AND (SELECT count(*) FROM bench.items_setting WHERE id = :id + 1) = 0 AS ok \gset
\if :ok
\else
\echo 'check failed: current_setting variant does not see exactly its tenant''s rows'
SELECT 1/0;
\endif
COMMIT;
-- The bench principal holds contacts.readonly and contacts.write at every account (grants
-- at the 100 agencies): set_principal() keeps only the asked scopes it holds.
SELECT count(*) = 10000 AS ok
  FROM generate_series(1, 10000) t
 WHERE hlauth.effective_scopes(md5('hlbench-principal')::uuid, md5('hlbench-account-' || t)::uuid)::text
       = 'contacts.readonly contacts.write' \gset
\if :ok
\else
\echo 'check failed: the bench principal does not hold contacts.readonly and contacts.write at every account'
SELECT 1/0;
\endif
BEGIN;
SELECT hlauth.set_principal(md5('hlbench-principal')::uuid, md5('hlbench-account-' || :t)::uuid, 'contacts.readonly');
SELECT hlauth.scopes()::text = 'contacts.readonly' AS ok \gset
\if :ok
\else
\echo 'check failed: set_principal did not give the bench principal contacts.readonly'
SELECT 1/0;
\endif
SELECT (SELECT count(*) FROM bench.items_hlauth) = 200
   AND (SELECT count(*) FROM bench.items_hlauth WHERE id = :id) = 1
   AND (SELECT count(*) FROM bench.items_hlauth WHERE id = :id + 1) = 0 AS ok \gset
\if :ok
\else
\echo 'check failed: hlauth variant does not see exactly its tenant''s rows'
SELECT 1/0;
\endif
COMMIT;
-- Without a principal, the protected table shows nothing.
SELECT (SELECT count(*) FROM bench.items_hlauth) = 0 AS ok \gset
\if :ok
\else
\echo 'check failed: hlauth variant shows rows with no principal'
SELECT 1/0;
\endif
