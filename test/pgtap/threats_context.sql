-- test/pgtap/threats_context.sql
-- THREATS.md lines 1-6 (forging or stretching the principal context), performed as app roles:
--   tc_app        the pooled application role: member of hlauth_trusted, not owner, not
--                 superuser, no BYPASSRLS (it may call hlauth.set_principal())
--   tc_untrusted  an application role without hlauth_trusted
--   tc_other      a role tc_app is a member of; it is NOT in hlauth_trusted
-- Each attack must fail with the expected SQLSTATE and leave nothing widened.
-- The context lives for one transaction, so this file runs many transactions in sequence
-- (never one BEGIN/ROLLBACK around it) and switches roles with SET ROLE / RESET ROLE.
-- Connect-time PGOPTIONS ("-c hlauth.context=...") is covered by the Perl TAP suite.
-- This file must never leave a prepared transaction or an hlauth setting behind.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- ---------------------------------------------------------------------------
-- Roles (cluster-wide: created idempotently, attributes forced every run)
-- ---------------------------------------------------------------------------
DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['tc_app', 'tc_untrusted', 'tc_other'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r);
		END IF;
		EXECUTE format('ALTER ROLE %I NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT NOLOGIN', r);
		EXECUTE format('ALTER ROLE %I RESET ALL', r);
	END LOOP;
	IF pg_has_role('tc_untrusted', 'hlauth_trusted', 'MEMBER') THEN
		REVOKE hlauth_trusted FROM tc_untrusted;
	END IF;
	IF pg_has_role('tc_other', 'hlauth_trusted', 'MEMBER') THEN
		REVOKE hlauth_trusted FROM tc_other;
	END IF;
END
$$;
GRANT hlauth_trusted TO tc_app;
GRANT tc_other TO tc_app;

-- ---------------------------------------------------------------------------
-- Fixtures (as postgres): tenants, a protected table the app roles do not own
-- ---------------------------------------------------------------------------
CREATE SCHEMA tc;
GRANT USAGE ON SCHEMA tc TO tc_app, tc_untrusted, tc_other;

-- Tenant ids: agency G, accounts A and B under it.
CREATE FUNCTION tc.acct(name text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE name
		WHEN 'G' THEN 'c0000000-0000-4000-8000-0000000000a0'::uuid
		WHEN 'A' THEN 'c0000000-0000-4000-8000-00000000000a'::uuid
		WHEN 'B' THEN 'c0000000-0000-4000-8000-00000000000b'::uuid
	END
$$;
-- Authenticates as a user of tenant A or B (invoker's rights: needs hlauth_trusted).
CREATE FUNCTION tc.login(name text) RETURNS void LANGUAGE sql AS $$
	SELECT hlauth.set_principal('c0000000-0000-4000-8000-0000000000f1', tc.acct(name),
								'contacts.read contacts.write')
$$;
-- The same as a wrapper owned by a trusted role, as app teams write one.
CREATE FUNCTION tc.login_definer(name text) RETURNS void LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $$
	SELECT hlauth.set_principal('c0000000-0000-4000-8000-0000000000f1', tc.acct(name),
								'contacts.read contacts.write')
$$;
ALTER FUNCTION tc.login_definer(text) OWNER TO tc_app;
DO $$
BEGIN
	PERFORM hlauth.create_tenant('agency', NULL, 'tc agency', tc.acct('G'));
	PERFORM hlauth.create_tenant('account', tc.acct('G'), 'tc A', tc.acct('A'));
	PERFORM hlauth.create_tenant('account', tc.acct('G'), 'tc B', tc.acct('B'));
END
$$;
-- set_principal() keeps only the asked scopes the principal holds through its grants (issue
-- #3): the principal of tc.login() holds what it asks for at agency G, so at A and B too.
DO $$
BEGIN
	PERFORM hlauth.register_permission('contacts.read', 'read contacts');
	PERFORM hlauth.register_permission('contacts.write', 'write contacts');
	PERFORM hlauth.grant_role('c0000000-0000-4000-8000-0000000000f1',
							  hlauth.create_role('tc contacts', 'contacts.read contacts.write'), tc.acct('G'));
END
$$;

CREATE TABLE tc.contacts (id int NOT NULL, account_id uuid NOT NULL, label text NOT NULL,
	PRIMARY KEY (account_id, id));
CREATE INDEX ON tc.contacts (account_id);
INSERT INTO tc.contacts VALUES
	(1, tc.acct('A'), 'a1'), (2, tc.acct('A'), 'a2'),
	(3, tc.acct('B'), 'b1'), (4, tc.acct('B'), 'b2'), (5, tc.acct('B'), 'b3');
DO $$ BEGIN PERFORM hlauth.protect('tc.contacts'); END $$;
GRANT SELECT, INSERT, UPDATE, DELETE ON tc.contacts TO tc_app, tc_untrusted, tc_other;

-- What the caller can see of tc.contacts (invoker's rights, so row-level security applies).
CREATE FUNCTION tc.visible() RETURNS text LANGUAGE sql STABLE AS $$
	SELECT coalesce(string_agg(label, ',' ORDER BY label), '') FROM tc.contacts
$$;

-- 50,000 rows, every fifth one tenant A's, for the parallel tests.
CREATE TABLE tc.big (id int, account_id uuid NOT NULL, v int NOT NULL);
INSERT INTO tc.big SELECT g, CASE WHEN g % 5 = 0 THEN tc.acct('A') ELSE tc.acct('B') END, g
	FROM generate_series(1, 50000) g;
CREATE INDEX ON tc.big (account_id);
DO $$ BEGIN PERFORM hlauth.protect('tc.big'); END $$;
ANALYZE tc.big;
GRANT SELECT ON tc.big TO tc_app;

-- EXPLAIN output as one text (EXPLAIN plans with parallelism allowed, even from PL/pgSQL).
CREATE FUNCTION tc.explain_text(options text, query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r record;
	t text := '';
BEGIN
	FOR r IN EXECUTE 'EXPLAIN (' || options || ') ' || query LOOP
		t := t || r."QUERY PLAN" || E'\n';
	END LOOP;
	RETURN t;
END
$$;

-- A superuser-side observer (a monitoring function, say) that sees the raw context value,
-- and a superuser-owned function that would replay one. Both SECURITY DEFINER.
CREATE FUNCTION tc.peek() RETURNS text LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $$ SELECT current_setting('hlauth.context', true) $$;
CREATE FUNCTION tc.replay(value text) RETURNS text LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $$ SELECT set_config('hlauth.context', value, true) $$;
REVOKE ALL ON FUNCTION tc.peek(), tc.replay(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tc.peek(), tc.replay(text) TO tc_app;

-- THREATS 3: a superuser created a C function pointing at hlauth's set_principal symbol and
-- granted it to an untrusted role. It must still not let that role set a principal.
CREATE FUNCTION tc.sp_alias(uuid, uuid, hlauth.scopes) RETURNS void
	AS '$libdir/hlauth', 'hlauth_set_principal' LANGUAGE C;
REVOKE ALL ON FUNCTION tc.sp_alias(uuid, uuid, hlauth.scopes) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tc.sp_alias(uuid, uuid, hlauth.scopes) TO tc_untrusted;

-- The app role's own schema, with what an attacker would prepare there.
CREATE SCHEMA tc_app_s AUTHORIZATION tc_app;
GRANT USAGE ON SCHEMA tc_app_s TO tc_other;
SET ROLE tc_app;
CREATE TABLE tc_app_s.plain (account_id uuid NOT NULL, label text);
-- A table dressed up as protected: hlauth-named policies that allow everything, no-op triggers.
CREATE TABLE tc_app_s.fake (account_id uuid NOT NULL, label text);
ALTER TABLE tc_app_s.fake ENABLE ROW LEVEL SECURITY;
ALTER TABLE tc_app_s.fake FORCE ROW LEVEL SECURITY;
CREATE POLICY hlauth_select ON tc_app_s.fake FOR SELECT USING (true);
CREATE POLICY hlauth_insert ON tc_app_s.fake FOR INSERT WITH CHECK (true);
CREATE POLICY hlauth_update ON tc_app_s.fake FOR UPDATE USING (true) WITH CHECK (true);
CREATE POLICY hlauth_delete ON tc_app_s.fake FOR DELETE USING (true);
CREATE FUNCTION tc_app_s.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER hlauth_require_context BEFORE INSERT OR UPDATE OR DELETE ON tc_app_s.fake
	FOR EACH STATEMENT EXECUTE FUNCTION tc_app_s.noop();
CREATE TRIGGER hlauth_no_truncate BEFORE TRUNCATE ON tc_app_s.fake
	FOR EACH STATEMENT EXECUTE FUNCTION tc_app_s.noop();
-- A function that switches to another role through a SET clause (tc_app is a member of tc_other).
CREATE FUNCTION tc_app_s.tenant_as_other() RETURNS uuid LANGUAGE sql SET role = 'tc_other'
	AS $$ SELECT hlauth.tenant() $$;
CREATE FUNCTION tc_app_s.visible_as_other() RETURNS text LANGUAGE sql SET role = 'tc_other'
	AS $$ SELECT tc.visible() $$;
RESET ROLE;

-- Capture a genuine context value of tenant A as a superuser-side observer sees it, and
-- build from it a forged, agency-wide value with every scope. The GUC carries the context
-- only once a statement has run in parallel mode (force_parallel_mode makes the count one).
SET ROLE tc_app;
BEGIN;
SELECT tc.login('A');
SELECT tc.peek() AS ctx_before_parallel \gset
SET LOCAL force_parallel_mode = on;
SELECT hlauth.tenant() = tc.acct('A') AS parallel_sees_a, count(*) AS parallel_rows_a FROM tc.contacts \gset
SET LOCAL force_parallel_mode = off;
SELECT tc.peek() AS ctx_a \gset
COMMIT;
RESET ROLE;
-- The text form: v2; principal tenant agency account app (32 hex digits each) ;kind;role;method;token;scopes
SELECT 'v2;' || substr(:'ctx_a', 4, 32) || replace(tc.acct('G')::text, '-', '') || replace(tc.acct('G')::text, '-', '')
		|| repeat('0', 64) || ';0;' || split_part(:'ctx_a', ';', 4) || ';set_principal;;*' AS forged \gset

SELECT plan(113);

-- ---------------------------------------------------------------------------
-- Preconditions
-- ---------------------------------------------------------------------------
SELECT is_empty($$SELECT rolname FROM pg_roles WHERE rolname IN ('tc_app', 'tc_untrusted', 'tc_other')
					AND (rolsuper OR rolbypassrls)$$,
	'0: no attacker role is a superuser or has BYPASSRLS');
SELECT ok(pg_has_role('tc_app', 'hlauth_trusted', 'MEMBER')
		  AND NOT pg_has_role('tc_untrusted', 'hlauth_trusted', 'MEMBER')
		  AND NOT pg_has_role('tc_other', 'hlauth_trusted', 'MEMBER'),
	'0: only tc_app is in hlauth_trusted');
SELECT ok((SELECT c.relrowsecurity AND c.relforcerowsecurity
				  AND pg_get_userbyid(c.relowner) NOT IN ('tc_app', 'tc_untrusted', 'tc_other')
			 FROM pg_class c WHERE c.oid = 'tc.contacts'::regclass)
		  AND EXISTS (SELECT 1 FROM hlauth_internal.protected_tables WHERE relid = 'tc.contacts'::regclass),
	'0: tc.contacts is protected, RLS forced, and not owned by an attacker role');
SELECT ok(:'ctx_a' LIKE 'v2;%' AND :'ctx_a' LIKE '%' || replace(tc.acct('A')::text, '-', '') || '%'
		  AND :'forged' ~ '^v2;[0-9a-f]{160};0;[0-9]+;set_principal;;',
	'0: a superuser-side observer saw tenant A''s context value (the replay material)');
SELECT is(:'ctx_before_parallel'::text, ''::text,
	'0: before any parallel statement the GUC carries no context (it lives in backend memory)');
SELECT ok(:'parallel_sees_a' AND :'parallel_rows_a' > 0,
	'0: the parallel statement that published the context saw tenant A');
SELECT is(hlauth.effective_scopes('c0000000-0000-4000-8000-0000000000f1', tc.acct('A'))::text,
	'contacts.read contacts.write',
	'0: the principal of tc.login() holds contacts.read and contacts.write at A (a grant at G)');

-- ---------------------------------------------------------------------------
-- 1. SET / SET LOCAL / set_config / function SET clauses / ALTER ROLE ... SET
-- ---------------------------------------------------------------------------
SET ROLE tc_app;
BEGIN;
SELECT tc.login('A');
SELECT throws_ok(format('SET hlauth.context = %L', :'forged'), '42501', NULL,
	'1: SET hlauth.context as the app role is refused');
SELECT throws_ok(format('SET LOCAL hlauth.context = %L', :'forged'), '42501', NULL,
	'1: SET LOCAL hlauth.context as the app role is refused');
SELECT throws_ok(format('SELECT set_config(%L, %L, true)', 'hlauth.context', :'forged'), '42501', NULL,
	'1: set_config(hlauth.context, ..., true) as the app role is refused');
SELECT throws_ok(format('SELECT set_config(%L, %L, false)', 'hlauth.context', :'forged'), '42501', NULL,
	'1: set_config(hlauth.context, ..., false) as the app role is refused');
SELECT throws_ok($$SET hlauth.anything = 'x'$$, '42602', NULL,
	'1: SET hlauth.<other> is refused: the hlauth prefix is reserved');
SELECT throws_ok($$SELECT set_config('hlauth.tenant', 'x', false)$$, '42602', NULL,
	'1: set_config(hlauth.<other>) is refused: the hlauth prefix is reserved');
SELECT throws_ok(format('CREATE FUNCTION tc_app_s.forge() RETURNS uuid LANGUAGE sql SET hlauth.context = %L AS %L',
						:'forged', 'SELECT hlauth.tenant()'), '42501', NULL,
	'1: the app role cannot create a function with a SET hlauth.context clause');
SELECT throws_ok(format('CREATE FUNCTION pg_temp.forge() RETURNS uuid LANGUAGE sql SET hlauth.context = %L AS %L',
						:'forged', 'SELECT hlauth.tenant()'), '42501', NULL,
	'1: ... not even in pg_temp');
SELECT throws_ok(format('ALTER ROLE tc_app SET hlauth.context = %L', :'forged'), '42501', NULL,
	'1: ALTER ROLE <self> SET hlauth.context is refused');
SELECT is(hlauth.tenant(), tc.acct('A'), '1: after the attempts the tenant is still A');
SELECT is(tc.visible(), 'a1,a2', '1: after the attempts only tenant A''s rows are visible');
COMMIT;
RESET ROLE;

-- Even a superuser, who passes the privilege check, is stopped by the check hook.
SELECT throws_ok(format('SET hlauth.context = %L', :'forged'), '42501',
	'the principal context can only be set by hlauth',
	'1: a superuser cannot SET hlauth.context to a forged value (check hook)');
SELECT throws_ok(format('SET hlauth.context = %L', :'ctx_a'), '42501',
	'the principal context can only be set by hlauth',
	'1: a superuser cannot SET hlauth.context to a copied genuine value');
SELECT throws_ok(format('SELECT set_config(%L, %L, true)', 'hlauth.context', :'forged'), '42501',
	'the principal context can only be set by hlauth',
	'1: a superuser cannot set_config(hlauth.context) a forged value');
SELECT throws_ok(format('ALTER ROLE tc_app SET hlauth.context = %L', :'forged'), '42501',
	'the principal context can only be set by hlauth',
	'1: ALTER ROLE tc_app SET hlauth.context is refused even for a superuser');
SELECT throws_ok(format('ALTER DATABASE %I SET hlauth.context = %L', current_database(), :'forged'), '42501',
	'the principal context can only be set by hlauth',
	'1: ALTER DATABASE ... SET hlauth.context is refused even for a superuser');
SELECT throws_ok(format('CREATE FUNCTION tc.su_forge() RETURNS uuid LANGUAGE sql SET hlauth.context = %L AS %L',
						:'forged', 'SELECT hlauth.tenant()'), '42501',
	'the principal context can only be set by hlauth',
	'1: even a superuser cannot create a function with a SET hlauth.context clause');
SELECT is_empty($$SELECT s.setconfig FROM pg_db_role_setting s
				   WHERE (s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
						  OR s.setrole IN (SELECT oid FROM pg_roles WHERE rolname IN ('tc_app', 'tc_untrusted', 'tc_other')))
					 AND array_to_string(s.setconfig, ' ') LIKE '%hlauth.%'$$,
	'1: no hlauth setting was stored for these roles or this database');

-- ---------------------------------------------------------------------------
-- 2. RESET ALL, SET ROLE, SET SESSION AUTHORIZATION, DISCARD ALL after authenticating
-- ---------------------------------------------------------------------------
SET ROLE tc_app;
BEGIN;
SELECT tc.login('A');
SELECT lives_ok('RESET ALL', '2: RESET ALL runs');
SELECT ok(hlauth.tenant() IS NULL OR hlauth.tenant() = tc.acct('A'),
	'2: after RESET ALL the context is unchanged or cleared, never another tenant');
SELECT ok(tc.visible() IN ('', 'a1,a2'), '2: after RESET ALL nothing beyond tenant A is visible');
SELECT ok(hlauth.scopes() IS NULL OR hlauth.scopes()::text = 'contacts.read contacts.write',
	'2: after RESET ALL the scopes are unchanged or cleared, never widened');
COMMIT;
SET client_min_messages = warning;

BEGIN;
SELECT tc.login('A');
SET ROLE tc_other;
SELECT is(hlauth.tenant(), NULL, '2: SET ROLE ends the context');
SELECT is(tc.visible(), '', '2: ... and the new role sees no tenant''s rows');
SET ROLE tc_app;
COMMIT;

BEGIN;
SELECT tc.login('A');
SET LOCAL ROLE tc_other;
SELECT is(hlauth.tenant(), NULL, '2: SET LOCAL ROLE ends the context');
COMMIT;

BEGIN;
SELECT tc.login('A');
RESET ROLE;
SELECT is(hlauth.tenant(), NULL, '2: RESET ROLE ends the context');
SET ROLE tc_app;
COMMIT;

BEGIN;
SELECT tc.login('A');
SET SESSION AUTHORIZATION tc_other;
SELECT is(hlauth.tenant(), NULL, '2: SET SESSION AUTHORIZATION (superuser session) ends the context');
SELECT is(tc.visible(), '', '2: ... and the new session user sees no tenant''s rows');
RESET SESSION AUTHORIZATION;
SET ROLE tc_app;
COMMIT;

-- The same role changes written as set_config() or as a function SET clause.
BEGIN;
SELECT tc.login('A');
SELECT set_config('role', 'tc_other', true) AS _role \gset
SELECT is(hlauth.tenant(), NULL, '2: set_config(''role'', ...) ends the context like SET ROLE');
SELECT is(tc.visible(), '', '2: ... and tc_other (not in hlauth_trusted) sees no tenant''s rows');
COMMIT;
SET ROLE tc_app;

BEGIN;
SELECT tc.login('A');
SELECT set_config('session_authorization', 'tc_other', true) AS _auth \gset
SELECT is(hlauth.tenant(), NULL, '2: set_config(''session_authorization'', ...) ends the context');
COMMIT;
RESET SESSION AUTHORIZATION;
SET ROLE tc_app;

BEGIN;
SELECT tc.login('A');
SELECT is(tc_app_s.tenant_as_other(), NULL, '2: a function SET role clause does not carry the context to another role');
SELECT is(tc_app_s.visible_as_other(), '', '2: ... and tc_other sees no tenant''s rows through it');
SELECT throws_ok('DISCARD ALL', '25001', NULL, '2: DISCARD ALL cannot run inside the transaction');
SELECT is(tc.visible(), 'a1,a2', '2: after the refused DISCARD ALL the context is unchanged');
COMMIT;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 3. Internal functions, internal tables, C functions
-- ---------------------------------------------------------------------------
SET ROLE tc_untrusted;
BEGIN;
SELECT throws_ok($$SELECT hlauth.set_principal('c0000000-0000-4000-8000-0000000000f1',
											   'c0000000-0000-4000-8000-00000000000b', '')$$, '42501', NULL,
	'3: hlauth.set_principal without hlauth_trusted is refused');
SELECT throws_ok($$SELECT tc.sp_alias('c0000000-0000-4000-8000-0000000000f1',
									  'c0000000-0000-4000-8000-00000000000b', '')$$, '42501', NULL,
	'3: a superuser-made C alias of set_principal does not help a role without hlauth_trusted');
SELECT is(hlauth.tenant(), NULL, '3: the untrusted role has no context after these calls');
SELECT is(tc.visible(), '', '3: ... and sees no tenant''s rows');
SELECT throws_ok($$CREATE FUNCTION pg_temp.sp(uuid, uuid, hlauth.scopes) RETURNS void
					AS '$libdir/hlauth', 'hlauth_set_principal' LANGUAGE C$$, '42501', NULL,
	'3: CREATE FUNCTION ... LANGUAGE C on hlauth''s symbols needs superuser');
COMMIT;
RESET ROLE;

SET ROLE tc_app;
BEGIN;
SELECT tc.login('A');
SELECT throws_ok($$SELECT hlauth_internal.set_tenant_status('c0000000-0000-4000-8000-00000000000b', 'suspended')$$,
	'42501', NULL, '3: hlauth_internal.set_tenant_status is refused');
SELECT throws_ok($$SELECT hlauth_internal.unregister_protection('tc.contacts')$$, '42501', NULL,
	'3: hlauth_internal.unregister_protection is refused');
SELECT throws_ok($$SELECT hlauth_internal.accept_protection_change('tc.contacts')$$, '42501', NULL,
	'3: hlauth_internal.accept_protection_change is refused');
SELECT throws_ok($$SELECT hlauth.suspend_tenant('c0000000-0000-4000-8000-00000000000b')$$, '42501', NULL,
	'3: hlauth.suspend_tenant is refused to the app role');
SELECT throws_ok($$SELECT hlauth.create_tenant('account', 'c0000000-0000-4000-8000-0000000000a0')$$, '42501', NULL,
	'3: hlauth.create_tenant is refused to the app role');
SELECT throws_ok($$UPDATE hlauth.tenants SET status = 'suspended'$$, '42501', NULL,
	'3: hlauth.tenants cannot be written directly');
SELECT throws_ok($$DELETE FROM hlauth_internal.protected_tables$$, '42501', NULL,
	'3: the protection registry cannot be written directly');
SELECT throws_ok($$SELECT hlauth_internal.drop_protection_objects('tc.contacts')$$, '42501', NULL,
	'3: drop_protection_objects on a table the role does not own is refused');
SELECT throws_ok($$SELECT hlauth_internal.require_context()$$, '39P01', NULL,
	'3: the write-guard trigger function cannot be called directly');
SELECT throws_ok($$SELECT hlauth_internal.register_protection('tc_app_s.plain', 'account_id', 'account', NULL, NULL)$$,
	'42501', NULL, '3: register_protection is not executable by the app role (only protect() registers)');
SELECT throws_ok($$SELECT hlauth_internal.register_protection('tc_app_s.fake', 'account_id', 'account', NULL, NULL)$$,
	'42501', NULL, '3: register_protection of a table with look-alike hlauth policies (USING true) is refused');
SELECT throws_ok($$CREATE FUNCTION tc_app_s.sp(uuid, uuid, hlauth.scopes) RETURNS void
					AS '$libdir/hlauth', 'hlauth_set_principal' LANGUAGE C$$, '42501', NULL,
	'3: the app role cannot create a LANGUAGE C function');
COMMIT;
RESET ROLE;

SELECT is((SELECT status FROM hlauth.tenants WHERE id = tc.acct('B')), 'active',
	'3: tenant B is still active');
SELECT is((SELECT count(*)::int FROM pg_policy WHERE polrelid = 'tc.contacts'::regclass AND polname LIKE 'hlauth\_%')
		  + (SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'tc.contacts'::regclass
				AND tgname LIKE 'hlauth\_%' AND tgenabled <> 'D'), 6,
	'3: tc.contacts still has its 4 hlauth policies and 2 enabled hlauth triggers');
SELECT is_empty($$SELECT relid FROM hlauth_internal.protected_tables
				   WHERE relid::regclass::text LIKE 'tc\_app\_s.%'$$,
	'3: the app role registered none of its tables as protected');
-- A later, honest protect() of that table (by a superuser) must install real protection.
DO $$ BEGIN PERFORM hlauth.protect('tc_app_s.fake'); END $$;
SELECT is((SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = 'tc_app_s.fake'::regclass
			AND p.polname LIKE 'hlauth\_%'
			AND coalesce(pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
				LIKE '%hlauth.accessible_tenants(%'), 4,
	'3: protect() after an attempted fake registration installs hlauth''s 4 real policies');

-- ---------------------------------------------------------------------------
-- 4. Transaction boundaries: next transaction, rolled-back subtransaction, PREPARE
-- ---------------------------------------------------------------------------
SET ROLE tc_app;
BEGIN;
SELECT tc.login('A');
COMMIT;
SELECT is(hlauth.tenant(), NULL, '4: a context set in a committed transaction is gone in the next');
SELECT is(tc.visible(), '', '4: ... and the next transaction sees no rows');

BEGIN;
SELECT tc.login('A');
ROLLBACK;
SELECT is(tc.visible(), '', '4: a context set in a rolled-back transaction is gone in the next');

SELECT tc.login('A');
SELECT is(tc.visible(), '', '4: a context set by an autocommitted statement is gone in the next statement');

BEGIN;
SELECT tc.login('A');
SAVEPOINT s1;
SELECT tc.login('B');
SELECT hlauth.tenant() AS inner_tenant \gset
ROLLBACK TO SAVEPOINT s1;
SELECT is(:'inner_tenant'::uuid, tc.acct('B'), '4: inside the savepoint the context was B');
SELECT is(hlauth.tenant(), tc.acct('A'), '4: ROLLBACK TO SAVEPOINT restores the outer context (A)');
SELECT is(tc.visible(), 'a1,a2', '4: ... and only A''s rows are visible again');
COMMIT;

BEGIN;
SAVEPOINT s1;
SELECT tc.login('A');
ROLLBACK TO SAVEPOINT s1;
SELECT is(hlauth.tenant(), NULL, '4: with no outer context, a rolled-back savepoint leaves none');
SELECT is(tc.visible(), '', '4: ... and no rows are visible');
COMMIT;

BEGIN;
SELECT tc.login('A');
DO $$
BEGIN
	PERFORM tc.login('B');
	RAISE EXCEPTION 'abandon';
EXCEPTION WHEN raise_exception THEN
	NULL;
END
$$;
SELECT is(hlauth.tenant(), tc.acct('A'), '4: an exception block that switched to B and failed restores A');
COMMIT;

-- Nested savepoints: a released inner savepoint hands its change to the outer one, which
-- can still roll it back.
BEGIN;
SELECT tc.login('A');
SAVEPOINT s1;
SELECT tc.login('B');
SAVEPOINT s2;
SELECT tc.login('G');
RELEASE SAVEPOINT s2;
SELECT hlauth.tenant() AS after_release \gset
ROLLBACK TO SAVEPOINT s1;
SELECT is(:'after_release'::uuid, tc.acct('G'), '4: RELEASE SAVEPOINT keeps the inner change (G)');
SELECT is(hlauth.tenant(), tc.acct('A'), '4: rolling back the outer savepoint then restores A');
SAVEPOINT s3;
SAVEPOINT s4;
SELECT tc.login('B');
RELEASE SAVEPOINT s4;
ROLLBACK TO SAVEPOINT s3;
SELECT is(hlauth.tenant(), tc.acct('A'), '4: a change released from an inner savepoint is undone with the outer one');
SAVEPOINT s5;
SELECT tc.login('B');
RELEASE SAVEPOINT s5;
SELECT is(hlauth.tenant(), tc.acct('B'), '4: a change released to the top level stays for the transaction');
COMMIT;
SELECT is(hlauth.tenant(), NULL, '4: ... and ends with it');

-- Many switches in one transaction, each in its own exception block (subtransaction).
BEGIN;
DO $$
BEGIN
	FOR i IN 1..2000 LOOP
		BEGIN
			PERFORM tc.login(CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END);
			IF i % 3 = 0 THEN
				RAISE EXCEPTION 'undo';
			END IF;
		EXCEPTION WHEN raise_exception THEN
			NULL;
		END;
	END LOOP;
END
$$;
-- i = 2000 (A) was kept; 1999 (B) was not undone either: the last one wins.
SELECT is(hlauth.tenant(), tc.acct('A'), '4: after 2000 switches in exception blocks the last kept one holds');
COMMIT;

-- A login wrapper as app teams write one: SECURITY DEFINER with a SET search_path clause.
-- The context it sets outlives the function.
BEGIN;
SELECT tc.login_definer('B');
SELECT is(hlauth.tenant(), tc.acct('B'), '4: a context set inside a SECURITY DEFINER function with SET search_path stays');
SELECT is(tc.visible(), 'b1,b2,b3', '4: ... and B''s rows are visible');
COMMIT;

SELECT 'hlauth_tc_' || md5(random()::text || clock_timestamp()::text) AS gid \gset
BEGIN;
SELECT tc.login('A');
PREPARE TRANSACTION :'gid';
SELECT is(hlauth.tenant(), NULL, '4: after PREPARE TRANSACTION the session has no context');
SELECT is(tc.visible(), '', '4: ... and sees no rows');
RESET ROLE;
COMMIT PREPARED :'gid';

-- ---------------------------------------------------------------------------
-- 5. Replaying a context value seen through current_setting / pg_settings
-- ---------------------------------------------------------------------------
BEGIN;
SELECT throws_ok(format('SELECT set_config(%L, %L, true)', 'hlauth.context', :'ctx_a'), '42501',
	'the principal context can only be set by hlauth',
	'5: a superuser replaying a seen context value with set_config(..., true) is refused');
SELECT throws_ok(format('SELECT set_config(%L, %L, false)', 'hlauth.context', :'ctx_a'), '42501',
	'the principal context can only be set by hlauth',
	'5: ... and with set_config(..., false)');
SELECT throws_ok(format('SET LOCAL hlauth.context = %L', :'ctx_a'), '42501',
	'the principal context can only be set by hlauth',
	'5: ... and with SET LOCAL');
COMMIT;

SET ROLE tc_app;
BEGIN;
SELECT throws_ok(format('SELECT set_config(%L, %L, true)', 'hlauth.context', :'ctx_a'), '42501', NULL,
	'5: the app role replaying a seen value is refused');
SELECT throws_ok(format('SELECT tc.replay(%L)', :'ctx_a'), '42501',
	'the principal context can only be set by hlauth',
	'5: replay through a superuser-owned SECURITY DEFINER function is refused by the check hook');
SELECT is(tc.visible(), '', '5: after the replay attempts no rows are visible');
SELECT throws_ok($$SELECT current_setting('hlauth.context')$$, '42501', NULL,
	'5: the app role cannot read hlauth.context with current_setting()');
SELECT throws_ok($$SELECT current_setting('hlauth.context', true)$$, '42501', NULL,
	'5: ... nor with current_setting(..., missing_ok)');
SELECT throws_ok('SHOW hlauth.context', '42501', NULL, '5: ... nor with SHOW');
COMMIT;

BEGIN;
SELECT tc.login('A');
-- hlauth.api_key_prefix (issue #3) is a public setting by design (docs/reference.md): every
-- other hlauth setting, the context above all, stays out of the app role's pg_settings.
SELECT is_empty($$SELECT name FROM pg_settings WHERE name LIKE 'hlauth%' AND name <> 'hlauth.api_key_prefix'$$,
	'5: hlauth.context does not appear in pg_settings for the app role');
SELECT ok(tc.explain_text('SETTINGS, COSTS OFF', 'SELECT count(*) FROM tc.contacts') !~ '(hlauth\.context|v[12];[0-9a-f])',
	'5: EXPLAIN (SETTINGS) does not show the context');
COMMIT;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 6. Parallel workers: same rows as the leader, never more; no forging inside workers
-- ---------------------------------------------------------------------------
-- A PARALLEL SAFE function given a forged SET hlauth.context clause. CREATE FUNCTION refuses
-- the clause (tested above), so a superuser plants it in the catalog directly.
CREATE FUNCTION tc.forge(v int) RETURNS boolean LANGUAGE sql VOLATILE PARALLEL SAFE
	AS $$ SELECT hlauth.tenant() IS NOT NULL $$;
UPDATE pg_proc SET proconfig = ARRAY['hlauth.context=' || :'forged'] WHERE oid = 'tc.forge(int)'::regprocedure;
GRANT EXECUTE ON FUNCTION tc.forge(int) TO tc_app;
-- Switches tenant inside a function with a SET clause (its own GUC nesting level) and counts
-- there, in parallel when the caller's settings make it so.
CREATE FUNCTION tc.switch_and_count(name text) RETURNS bigint LANGUAGE plpgsql
	SET work_mem = '1MB' AS $$
DECLARE n bigint;
BEGIN
	PERFORM tc.login(name);
	SELECT count(*) INTO n FROM tc.big;
	RETURN n;
END
$$;
GRANT EXECUTE ON FUNCTION tc.switch_and_count(text) TO tc_app;

SET ROLE tc_app;
BEGIN;
SELECT tc.login('A');
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT count(*) AS serial_a FROM tc.big \gset
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_indexonlyscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT count(*) AS parallel_a FROM tc.big \gset
SELECT is(:serial_a::bigint, 10000::bigint, '6: the serial count as tenant A is A''s share (10000 of 50000)');
SELECT is(:parallel_a::bigint, :serial_a::bigint, '6: the parallel count as tenant A equals the serial count');
SELECT cmp_ok(:parallel_a::bigint, '<', 50000::bigint, '6: ... and is less than the total');
SELECT matches(tc.explain_text('COSTS OFF', 'SELECT count(*) FROM tc.big'), 'Gather',
	'6: the plan has a Gather node');
SELECT matches(tc.explain_text('ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF', 'SELECT count(*) FROM tc.big'),
	'Workers Launched: [1-9].*Parallel Seq Scan', '6: workers were launched and scanned the table');
SET LOCAL force_parallel_mode = regress;
SELECT count(*) AS regress_a FROM tc.big \gset
SELECT is(:regress_a::bigint, :serial_a::bigint, '6: with force_parallel_mode = regress the count is the same');
SELECT throws_ok('SELECT count(*) FROM tc.big WHERE tc.forge(v)', '42501', NULL,
	'6: a PARALLEL SAFE function with a forged SET hlauth.context clause is refused (in the workers)');
COMMIT;

-- The workers get the context as it is when each statement starts, after every kind of
-- change: a switch inside a function with a SET clause, a rolled-back savepoint, clear(), and
-- a rolled-back savepoint that undid the published copy (not the context) behind hlauth's back.
BEGIN;
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_indexonlyscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT tc.login('A');
SELECT count(*) AS p1 FROM tc.big \gset
SELECT tc.switch_and_count('B') AS p2 \gset
SELECT hlauth.tenant() AS after_fn \gset
SELECT count(*) AS p3 FROM tc.big \gset
SAVEPOINT s1;
SELECT tc.login('A');
SELECT count(*) AS p4 FROM tc.big \gset
ROLLBACK TO SAVEPOINT s1;
SELECT count(*) AS p5 FROM tc.big \gset
SELECT tc.login('A');
SAVEPOINT s2;
SELECT count(*) AS p6 FROM tc.big \gset
ROLLBACK TO SAVEPOINT s2;
SELECT count(*) AS p7 FROM tc.big \gset
SELECT hlauth.clear();
SELECT count(*) AS p8 FROM tc.big \gset
SELECT matches(tc.explain_text('ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF', 'SELECT count(*) FROM tc.big'),
	'Workers Launched: [1-9]', '6: (these counts ran in parallel workers)');
COMMIT;
SELECT is(:p1::bigint, 10000::bigint, '6: parallel count as A: A''s 10000 rows');
SELECT is(:p2::bigint, 40000::bigint, '6: inside a function with a SET clause that switched to B: B''s 40000 rows');
SELECT is(:'after_fn'::uuid, tc.acct('B'), '6: the switch made inside that function outlives its SET clause');
SELECT is(:p3::bigint, 40000::bigint, '6: ... and the next parallel statement''s workers see B');
SELECT is(:p4::bigint, 10000::bigint, '6: inside a savepoint that switched to A: A''s rows');
SELECT is(:p5::bigint, 40000::bigint, '6: after ROLLBACK TO SAVEPOINT the workers see B again');
SELECT is(:p6::bigint, 10000::bigint, '6: switched to A, a parallel count inside a new savepoint sees A');
SELECT is(:p7::bigint, 10000::bigint, '6: after that savepoint rolls back (the published copy reverts to B, the context stays A) the workers see A');
SELECT is(:p8::bigint, 0::bigint, '6: after hlauth.clear() the workers see nothing');

BEGIN;
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_indexonlyscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT count(*) AS parallel_none FROM tc.big \gset
SELECT is(:parallel_none::bigint, 0::bigint, '6: parallel workers with no context see no rows (fail closed)');
COMMIT;
RESET ROLE;

BEGIN;
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_indexonlyscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT throws_ok('SELECT count(*) FROM tc.big WHERE tc.forge(v)', '42501',
	'the principal context can only be set by hlauth',
	'6: even for a superuser the forged clause is refused inside the workers by the check hook');
COMMIT;

SELECT * FROM finish();
