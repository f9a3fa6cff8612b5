-- bench/check_auth.sql: before timing anything, the API key variant must see exactly its
-- key's tenant's rows. Run as hlbench_app by run.sh with -v key=<a benchmark key>
-- -v kt=<its account number>. Fails on any mismatch.
\set ON_ERROR_STOP on
\set id :kt + 10000 * 7
BEGIN;
SELECT hlauth.authenticate(:'key');
SELECT hlauth.auth_method() = 'api_key'
   AND hlauth.scopes()::text = 'contacts.readonly'
   AND hlauth.tenant() = md5('hlbench-account-' || :kt)::uuid AS ok \gset
\if :ok
\else
\echo 'check failed: authenticate() did not set the key''s tenant with contacts.readonly'
SELECT 1/0;
\endif
SELECT (SELECT count(*) FROM bench.items_hlauth) = 200
   AND (SELECT count(*) FROM bench.items_hlauth WHERE id = :id) = 1
   AND (SELECT count(*) FROM bench.items_hlauth WHERE id = :id + 1) = 0 AS ok \gset
\if :ok
\else
\echo 'check failed: the API key variant does not see exactly its tenant''s rows'
SELECT 1/0;
\endif
COMMIT;
