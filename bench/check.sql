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
BEGIN;
SELECT hlauth.set_principal(md5('hlbench-principal')::uuid, md5('hlbench-account-' || :t)::uuid, 'contacts.readonly');
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
