-- test/pgtap/threats_cache.sql
-- The RBAC cache attacked by an application role in hlauth_trusted (THREATS.md 13, 15), from
-- a fifteenth red-team pass:
--   1. authenticate() read the reach and the granted scopes HlPrincipalAt handed back from
--      cache memory that the lookups of the key's bounds then reset (a full cache is
--      rebuilt): with a key bounded by two principals the backend crashed;
--   2. a grant, and an API key, that expired during a DO block committing between its
--      iterations still counted in the later transactions (judged at the statement's start).
-- (Revocations while a transaction is open: test/isolation/specs/parallel_fill.spec.)

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tc_app') THEN
		CREATE ROLE tc_app NOLOGIN;
	END IF;
	ALTER ROLE tc_app NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT NOLOGIN;
	ALTER ROLE tc_app RESET ALL;
END
$$;
GRANT hlauth_trusted TO tc_app;

CREATE SCHEMA tc;
GRANT USAGE ON SCHEMA tc TO PUBLIC;
-- Tenants: agency G > account A. Principals: M and X manage keys at G, Y reads at A, E
-- reads at A for a few seconds only.
CREATE TABLE tc.names (id uuid PRIMARY KEY, name text UNIQUE NOT NULL);
INSERT INTO tc.names VALUES
	('7d000000-0000-4000-8000-000000000001', 'G'), ('7d000000-0000-4000-8000-000000000011', 'A'),
	('7d000000-0000-4000-8000-0000000000a1', 'M'), ('7d000000-0000-4000-8000-0000000000a2', 'X'),
	('7d000000-0000-4000-8000-0000000000a3', 'Y'), ('7d000000-0000-4000-8000-0000000000a4', 'E');
CREATE FUNCTION tc.id(n text) RETURNS uuid LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
	AS $$ SELECT x.id FROM tc.names x WHERE x.name = n $$;
GRANT SELECT ON tc.names TO PUBLIC;
DO $$
BEGIN
	PERFORM hlauth.create_tenant('agency', NULL, 'G', tc.id('G'));
	PERFORM hlauth.create_tenant('account', tc.id('G'), 'A', tc.id('A'));
	PERFORM hlauth.register_permission('tc/notes.readonly', 'read notes');
	PERFORM hlauth.grant_role(tc.id('M'), hlauth.create_role('tc manager', 'hlauth/keys.write tc/notes.readonly'), tc.id('G'));
	PERFORM hlauth.grant_role(tc.id('X'), (SELECT id FROM hlauth.roles WHERE name = 'tc manager'), tc.id('G'));
	PERFORM hlauth.grant_role(tc.id('Y'), hlauth.create_role('tc reader', 'tc/notes.readonly'), tc.id('A'));
END
$$;
CREATE TABLE tc.notes (account_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (account_id, id));
INSERT INTO tc.notes VALUES (tc.id('A'), 1);
SELECT hlauth.protect('tc.notes', 'account_id', 'tc/notes.readonly');
GRANT SELECT ON tc.notes TO tc_app;
-- The plaintext keys, for the app role to present (a test fixture, never a practice).
CREATE TABLE tc.keys (name text PRIMARY KEY, k text NOT NULL);
GRANT SELECT, INSERT ON tc.keys TO tc_app;
-- What the DO blocks saw, one row per iteration.
CREATE TABLE tc.seen (what text, i int, scopes text, notes bigint);
GRANT INSERT ON tc.seen TO tc_app;

SELECT plan(7);

-- ---------------------------------------------------------------------------
-- 1. A key bounded by two principals, authenticated when the cache is full
-- ---------------------------------------------------------------------------
SET ROLE tc_app;
BEGIN;
SELECT hlauth.set_principal(tc.id('M'), tc.id('G'), 'hlauth/keys.write tc/notes.readonly');
INSERT INTO tc.keys SELECT 'x', hlauth.issue_api_key(tc.id('X'), tc.id('G'), 'hlauth/keys.write tc/notes.readonly');
COMMIT;
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM tc.keys WHERE name = 'x'));
INSERT INTO tc.keys SELECT 'y', hlauth.issue_api_key(tc.id('Y'), tc.id('A'), 'tc/notes.readonly');
COMMIT;
-- empty the cache (any change of the RBAC tables drops it), then fill it to one short of
-- its limit (50,000 entries): the key's own lookup fills the last place, the first bound's
-- finds it full (the cache is rebuilt at the next lookup), the second bound's rebuilds it
RESET ROLE;
SELECT hlauth.register_permission('tc/notes.export', 'export notes');
SET ROLE tc_app;
SELECT count(hlauth.effective_scopes(tc.id('Y'), gen_random_uuid())) FROM generate_series(1, 49999);
BEGIN;
SELECT lives_ok($$SELECT hlauth.authenticate((SELECT k FROM tc.keys WHERE name = 'y'))$$,
	'13: a key bounded by two principals authenticates when the cache is full (it crashed the backend)');
SELECT is(hlauth.tenant(), tc.id('A'), '13: ... its context is at its account');
SELECT is(hlauth.accessible_tenants('account'), ARRAY[tc.id('A')], '13: ... and reaches that account alone');
SELECT is((SELECT count(*) FROM tc.notes), 1::bigint, '13: ... and reads its row');
COMMIT;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 2. A grant and a key that expire during a DO block that commits between iterations
-- ---------------------------------------------------------------------------
SELECT hlauth.grant_role(tc.id('E'), (SELECT id FROM hlauth.roles WHERE name = 'tc reader'), tc.id('A'),
						 valid_until => clock_timestamp() + interval '2 seconds') IS NOT NULL AS granted;
INSERT INTO tc.keys VALUES ('brief', hlauth.issue_api_key(tc.id('Y'), tc.id('A'), 'tc/notes.readonly',
														   clock_timestamp() + interval '2 seconds'));
SET ROLE tc_app;
DO $$
DECLARE
	ok boolean;
BEGIN
	FOR i IN 1..2 LOOP
		PERFORM hlauth.set_principal(tc.id('E'), tc.id('A'), 'tc/notes.readonly');
		INSERT INTO tc.seen SELECT 'grant', i, hlauth.scopes()::text, (SELECT count(*) FROM tc.notes);
		BEGIN
			PERFORM hlauth.authenticate((SELECT k FROM tc.keys WHERE name = 'brief'));
			INSERT INTO tc.seen SELECT 'key', i, hlauth.scopes()::text, (SELECT count(*) FROM tc.notes);
		EXCEPTION WHEN invalid_authorization_specification THEN
			INSERT INTO tc.seen VALUES ('key', i, 'refused', NULL);
		END;
		PERFORM pg_sleep(2.5);
		COMMIT;					-- the next transaction starts after the expiry
	END LOOP;
END
$$;
RESET ROLE;
SELECT is((SELECT string_agg(format('%s:%s', scopes, notes), ',' ORDER BY i) FROM tc.seen WHERE what = 'grant'),
	'tc/notes.readonly:1,:0',
	'15: a grant that expired between two transactions of one DO block no longer counts in the second');
SELECT is((SELECT string_agg(format('%s:%s', scopes, notes), ',' ORDER BY i) FROM tc.seen WHERE what = 'key'),
	'tc/notes.readonly:1,refused:',
	'13: a key that expired between two transactions of one DO block is refused in the second');
SELECT is((SELECT count(*) FROM tc.seen), 4::bigint, '15: ... both iterations ran');

SELECT * FROM finish();
