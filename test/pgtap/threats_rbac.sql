-- test/pgtap/threats_rbac.sql
-- THREATS.md line 15 (over-scoped grants and look-alike scopes), and lines 3 and 9 for the
-- SECURITY DEFINER functions of permissions, roles and grants. Performed as app roles:
--   rb_app        the pooled application role: member of hlauth_trusted, not owner, not
--                 superuser, no BYPASSRLS; principals act through it (hlauth.set_principal)
--   rb_untrusted  an application role without hlauth_trusted; it gets a principal context
--                 only through a login wrapper an rb_app owner wrote (SECURITY DEFINER)
--   rb_admin      a member of hlauth_admin, for the second gate of the admin functions
-- Every no-escalation rule has an attack that must fail with 42501, next to the legitimate
-- call that succeeds (so that the refusal is the rule's doing, not an accident).
-- The context lives for one transaction, so this file runs many transactions in sequence.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- ---------------------------------------------------------------------------
-- Roles (cluster-wide: created idempotently, attributes forced every run)
-- ---------------------------------------------------------------------------
DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['rb_app', 'rb_untrusted', 'rb_admin'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r);
		END IF;
		EXECUTE format('ALTER ROLE %I NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT NOLOGIN', r);
		EXECUTE format('ALTER ROLE %I RESET ALL', r);
	END LOOP;
	IF pg_has_role('rb_untrusted', 'hlauth_trusted', 'MEMBER') THEN
		REVOKE hlauth_trusted FROM rb_untrusted;
	END IF;
	IF pg_has_role('rb_app', 'hlauth_admin', 'MEMBER') THEN
		REVOKE hlauth_admin FROM rb_app;
	END IF;
END
$$;
GRANT hlauth_trusted TO rb_app;
GRANT hlauth_admin TO rb_admin;

-- ---------------------------------------------------------------------------
-- Fixtures (as postgres)
-- ---------------------------------------------------------------------------
CREATE SCHEMA rbt;
GRANT USAGE ON SCHEMA rbt TO PUBLIC;

-- Tenants: agency G1 -> accounts A (-> app A1) and B; agency G2 -> account C.
-- Principals: AM manages agency G1; M manages account A; N edits contacts at A (no
-- hlauth/grants.write); D is demoted during the test; T1, T2 are grantees.
CREATE TABLE rbt.names (id uuid PRIMARY KEY, name text UNIQUE NOT NULL);
INSERT INTO rbt.names VALUES
	('a1000000-0000-4000-8000-000000000000', 'G1'), ('a1100000-0000-4000-8000-000000000000', 'A'),
	('a1110000-0000-4000-8000-000000000000', 'A1'), ('a1200000-0000-4000-8000-000000000000', 'B'),
	('a2000000-0000-4000-8000-000000000000', 'G2'), ('a2100000-0000-4000-8000-000000000000', 'C'),
	('aaaa0000-0000-4000-8000-0000000000a0', 'AM'), ('aaaa0000-0000-4000-8000-0000000000a1', 'M'),
	('aaaa0000-0000-4000-8000-0000000000a2', 'N'), ('aaaa0000-0000-4000-8000-0000000000a3', 'D'),
	('aaaa0000-0000-4000-8000-0000000000b1', 'T1'), ('aaaa0000-0000-4000-8000-0000000000b2', 'T2'),
	('aaaa0000-0000-4000-8000-0000000000c0', 'CM'), ('aaaa0000-0000-4000-8000-0000000000e1', 'EX'),
	('aaaa0000-0000-4000-8000-0000000000e2', 'EY');
GRANT SELECT ON rbt.names TO PUBLIC;
-- The fixture's helpers pin search_path: the attacks below plant operators in it.
CREATE FUNCTION rbt.id(n text) RETURNS uuid LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
	AS $$ SELECT x.id FROM rbt.names x WHERE x.name = n $$;
-- A role's id by name (platform roles, or a custom role of the named agency)
CREATE FUNCTION rbt.role(n text, agency text DEFAULT NULL) RETURNS uuid LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $$
	SELECT r.id FROM hlauth.roles r WHERE r.name = n AND r.agency_id IS NOT DISTINCT FROM rbt.id(agency)
$$;
-- A grant's id (principal, role, tenant), whoever may read it
CREATE FUNCTION rbt.grant_id(p text, r uuid, t text) RETURNS uuid LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $$
	SELECT g.id FROM hlauth.grants g WHERE g.principal = rbt.id(p) AND g.role_id = r AND g.tenant_id = rbt.id(t)
	   AND g.revoked_at IS NULL ORDER BY g.granted_at DESC LIMIT 1
$$;
-- Effective scopes as text, read with the fixture owner's rights
CREATE FUNCTION rbt.eff(p text, t text) RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $$
	SELECT hlauth.effective_scopes(rbt.id(p), rbt.id(t))::text
$$;
-- Authenticates (invoker's rights: needs hlauth_trusted)
CREATE FUNCTION rbt.login(p text, t text, scopes text) RETURNS void LANGUAGE sql
	SET search_path = pg_catalog, pg_temp AS $$
	SELECT hlauth.set_principal(rbt.id(p), rbt.id(t), scopes::hlauth.scopes)
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA rbt TO PUBLIC;

DO $$
BEGIN
	PERFORM hlauth.create_tenant('agency', NULL, 'G1', rbt.id('G1'));
	PERFORM hlauth.create_tenant('account', rbt.id('G1'), 'A', rbt.id('A'));
	PERFORM hlauth.create_tenant('app', rbt.id('A'), 'A1', rbt.id('A1'));
	PERFORM hlauth.create_tenant('account', rbt.id('G1'), 'B', rbt.id('B'));
	PERFORM hlauth.create_tenant('agency', NULL, 'G2', rbt.id('G2'));
	PERFORM hlauth.create_tenant('account', rbt.id('G2'), 'C', rbt.id('C'));

	PERFORM hlauth.register_permission('contacts.readonly', 'read contacts');
	PERFORM hlauth.register_permission('contacts.write', 'edit contacts', ARRAY['contacts.readonly']);
	PERFORM hlauth.register_permission('contacts.delete', 'delete contacts', ARRAY['contacts.write']);
	PERFORM hlauth.register_permission('deals.readonly', 'read deals');
	PERFORM hlauth.register_permission('deals.write', 'edit deals', ARRAY['deals.readonly']);
	PERFORM hlauth.register_permission('billing.write', 'change billing');

	PERFORM hlauth.create_role('manager', 'hlauth/grants.write hlauth/roles.write contacts.write deals.readonly');
	PERFORM hlauth.create_role('grants only', 'hlauth/grants.write');
	PERFORM hlauth.create_role('viewer', 'contacts.readonly');
	PERFORM hlauth.create_role('contacts editor', 'contacts.write');
	PERFORM hlauth.create_role('deals editor', 'deals.write');
	PERFORM hlauth.create_role('billing', 'billing.write');
	PERFORM hlauth.create_role('everything', '*');

	PERFORM hlauth.set_agency_allowance(rbt.id('G1'), 'contacts.* deals.readonly');
	PERFORM hlauth.set_agency_allowance(rbt.id('G2'), 'contacts.readonly');
	PERFORM hlauth.create_role('g1 contacts', 'contacts.write', 'G1 custom', rbt.id('G1'));
	PERFORM hlauth.create_role('g2 viewer', 'contacts.readonly', 'G2 custom', rbt.id('G2'));

	PERFORM hlauth.grant_role(rbt.id('AM'), rbt.role('manager'), rbt.id('G1'));
	PERFORM hlauth.grant_role(rbt.id('M'), rbt.role('manager'), rbt.id('A'));
	PERFORM hlauth.grant_role(rbt.id('N'), rbt.role('contacts editor'), rbt.id('A'));
	PERFORM hlauth.grant_role(rbt.id('D'), rbt.role('viewer'), rbt.id('A'));
	PERFORM hlauth.grant_role(rbt.id('CM'), rbt.role('manager'), rbt.id('C'));
	-- grants the attackers did not make: at B, at C, and one of a role M lacks at A
	PERFORM hlauth.grant_role(rbt.id('T2'), rbt.role('viewer'), rbt.id('B'));
	PERFORM hlauth.grant_role(rbt.id('T2'), rbt.role('g2 viewer', 'G2'), rbt.id('C'));
	PERFORM hlauth.grant_role(rbt.id('T2'), rbt.role('deals editor'), rbt.id('A'));
	PERFORM hlauth.upsert_principal(rbt.id('M'), '{"region": "emea"}');
	PERFORM hlauth.upsert_principal(rbt.id('CM'), '{"region": "apac", "secret": "cm-only"}');
END
$$;

-- The login wrapper an app team wrote: owned by rb_app (trusted), callable by rb_untrusted.
CREATE FUNCTION rbt.login_definer(p text, t text, scopes text) RETURNS void LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $$
	SELECT hlauth.set_principal(rbt.id(p), rbt.id(t), scopes::hlauth.scopes)
$$;
ALTER FUNCTION rbt.login_definer(text, text, text) OWNER TO rb_app;

-- An hlauth_admin member's SECURITY DEFINER function that an app role may call: the admin
-- functions must still ask who the session acts as.
CREATE FUNCTION rbt.admin_register(s text) RETURNS void LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $$ SELECT hlauth.register_permission(s, 'planted') $$;
ALTER FUNCTION rbt.admin_register(text) OWNER TO rb_admin;
CREATE FUNCTION rbt.admin_grant(p text, r uuid, t text) RETURNS uuid LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $$ SELECT hlauth.grant_role(rbt.id(p), r, rbt.id(t)) $$;
ALTER FUNCTION rbt.admin_grant(text, uuid, text) OWNER TO rb_admin;

-- The app role's own schema, with what an attacker plants there to shadow hlauth's names.
CREATE SCHEMA rb_app_s AUTHORIZATION rb_app;
SET ROLE rb_app;
CREATE FUNCTION rb_app_s.has_scope(text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION rb_app_s.can_access(uuid) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION rb_app_s.scopes_grants(hlauth.scopes, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION rb_app_s.strpos(text, text) RETURNS integer LANGUAGE sql AS 'SELECT 0';
CREATE FUNCTION rb_app_s.uuid_eq_any(uuid, uuid) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR rb_app_s.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = rb_app_s.uuid_eq_any);
CREATE FUNCTION rb_app_s.text_eq_any(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR rb_app_s.= (LEFTARG = text, RIGHTARG = text, FUNCTION = rb_app_s.text_eq_any);
CREATE TABLE rb_app_s.grants (principal uuid, role_id uuid, tenant_id uuid);
RESET ROLE;

SELECT plan(132);

-- ---------------------------------------------------------------------------
-- Preconditions
-- ---------------------------------------------------------------------------
SELECT is_empty($$SELECT rolname FROM pg_roles WHERE rolname IN ('rb_app', 'rb_untrusted', 'rb_admin')
					AND (rolsuper OR rolbypassrls)$$,
	'0: no attacker role is a superuser or has BYPASSRLS');
SELECT ok(pg_has_role('rb_app', 'hlauth_trusted', 'MEMBER') AND NOT pg_has_role('rb_app', 'hlauth_admin', 'MEMBER')
		  AND NOT pg_has_role('rb_untrusted', 'hlauth_trusted', 'MEMBER'),
	'0: rb_app is trusted and not an admin; rb_untrusted is neither');
SELECT is(rbt.eff('M', 'A'), 'contacts.readonly contacts.write deals.readonly hlauth/grants.write hlauth/roles.write',
	'0: M holds manager at account A');
SELECT is(rbt.eff('AM', 'A1'), 'contacts.readonly contacts.write deals.readonly hlauth/grants.write hlauth/roles.write',
	'0: AM holds manager at agency G1, inherited down to app A1');

-- ---------------------------------------------------------------------------
-- Granting: the legitimate grant works ...
-- ---------------------------------------------------------------------------
SET ROLE rb_app;
BEGIN;
SELECT rbt.login('M', 'A', 'hlauth/grants.write contacts.* deals.readonly');
SELECT lives_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('viewer'), rbt.id('A'))$$,
	'15: M grants viewer (contacts.readonly, which M holds) at its own account A');
SELECT lives_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('contacts editor'), rbt.id('A1'))$$,
	'15: M grants contacts editor at app A1, beneath A');
SELECT lives_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('g1 contacts', 'G1'), rbt.id('A'))$$,
	'15: M grants its agency''s custom role within the agency');
SELECT is(rbt.eff('T1', 'A1'), 'contacts.readonly contacts.write', '15: the grantee holds them at once');
SELECT is((SELECT granted_by FROM hlauth.grants WHERE id = rbt.grant_id('T1', rbt.role('viewer'), 'A')),
	rbt.id('M'), '15: the grant records its grantor');
-- ... and every escalation is refused
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('deals editor'), rbt.id('A'))$$,
	'42501', NULL, '15: M cannot grant a role whose scopes it lacks (deals.write)');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('billing'), rbt.id('A1'))$$,
	'42501', NULL, '15: ... nor billing.write, even beneath its tenant');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('everything'), rbt.id('A'))$$,
	'42501', NULL, '15: ... nor a wildcard role that reaches beyond what it holds');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('viewer'), rbt.id('B'))$$,
	'42501', NULL, '15: M cannot grant at sibling account B');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('viewer'), rbt.id('G1'))$$,
	'42501', NULL, '15: M cannot grant upward, at its agency G1');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('viewer'), rbt.id('C'))$$,
	'42501', NULL, '15: M cannot grant in another agency');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('viewer'), '00000000-0000-4000-8000-000000000000')$$,
	'42501', NULL, '15: M cannot grant at a tenant that does not exist');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('M'), rbt.role('viewer'), rbt.id('A1'))$$,
	'42501', NULL, '15: M cannot grant to itself');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('g2 viewer', 'G2'), rbt.id('A'))$$,
	'42501', NULL, '15: M cannot grant another agency''s custom role');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T1'), '00000000-0000-4000-8000-000000000000', rbt.id('A'))$$,
	'42501', NULL, '15: M cannot grant a role that does not exist (no oracle: the same 42501)');
SELECT is((SELECT count(*) FROM hlauth.grants WHERE principal IN (rbt.id('T1'), rbt.id('M')) AND granted_by = rbt.id('M')),
	3::bigint, '15: only the three legitimate grants were made');
COMMIT;

-- Acting at app A1, M reaches its account A (can_access) but must not grant there: upward.
BEGIN;
SELECT rbt.login('M', 'A1', 'hlauth/grants.write contacts.* deals.readonly');
SELECT ok(hlauth.can_access(rbt.id('A')), '15: (an app-level context can access its own account)');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T2'), rbt.role('viewer'), rbt.id('A'))$$,
	'42501', NULL, '15: ... yet acting at app A1, M cannot grant at account A above it');
SELECT lives_ok($$SELECT hlauth.grant_role(rbt.id('T2'), rbt.role('viewer'), rbt.id('A1'))$$,
	'15: acting at app A1, M grants at A1');
COMMIT;

-- The context's scopes bound the grantor too, not just its grants.
BEGIN;
SELECT rbt.login('M', 'A', 'contacts.write');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T2'), rbt.role('viewer'), rbt.id('A'))$$,
	'42501', 'permission denied: scope "hlauth/grants.write" is required to grant roles',
	'15: M authenticated without hlauth/grants.write cannot grant');
COMMIT;
BEGIN;
SELECT rbt.login('M', 'A', 'hlauth/grants.write contacts.readonly');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T2'), rbt.role('contacts editor'), rbt.id('A'))$$,
	'42501', NULL, '15: M cannot grant contacts.write when its context carries only contacts.readonly');
SELECT lives_ok($$SELECT hlauth.grant_role(rbt.id('T2'), rbt.role('viewer'), rbt.id('A'))$$,
	'15: ... but can grant contacts.readonly');
COMMIT;
-- Scopes claimed in set_principal but not granted give nothing.
BEGIN;
SELECT rbt.login('N', 'A', 'hlauth/grants.write contacts.write');
-- (contacts.write implies contacts.readonly in the registry, so the context has both.)
SELECT is(hlauth.scopes()::text, 'contacts.readonly contacts.write', '15: N asked for hlauth/grants.write, holds only contacts.write (and what it implies)');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T2'), rbt.role('viewer'), rbt.id('A'))$$,
	'42501', NULL, '15: N (no hlauth/grants.write) cannot grant');
COMMIT;
-- A role that carries only hlauth/grants.write grants nothing else.
RESET ROLE;
SELECT hlauth.grant_role(rbt.id('N'), rbt.role('grants only'), rbt.id('A')) IS NOT NULL AS n_grants_only \gset
SET ROLE rb_app;
BEGIN;
SELECT rbt.login('N', 'A', 'hlauth/grants.write contacts.write');
SELECT lives_ok($$SELECT hlauth.grant_role(rbt.id('T2'), rbt.role('contacts editor'), rbt.id('A'))$$,
	'15: with hlauth/grants.write, N grants contacts.write, which it holds');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T2'), rbt.role('manager'), rbt.id('A'))$$,
	'42501', NULL, '15: ... but not manager, which it does not hold');
COMMIT;
-- No principal at all: neither an app role nor an untrusted one may grant.
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('viewer'), rbt.id('A'))$$,
	'42501', NULL, '15: the app role without a principal cannot grant');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Custom roles: only at the agency itself, within its allowance and the definer's scopes
-- ---------------------------------------------------------------------------
SET ROLE rb_app;
BEGIN;
SELECT rbt.login('AM', 'G1', 'hlauth/* contacts.* deals.readonly');
SELECT lives_ok($$SELECT hlauth.create_role('g1 readers', 'contacts.readonly deals.readonly', NULL, rbt.id('G1'))$$,
	'15: AM defines a custom role within the allowance and its own scopes');
SELECT throws_ok($$SELECT hlauth.create_role('g1 admins', 'hlauth/grants.write contacts.readonly', NULL, rbt.id('G1'))$$,
	'42501', NULL, '15: AM cannot define a custom role beyond the agency''s allowance (hlauth/grants.write)');
SELECT throws_ok($$SELECT hlauth.create_role('g1 deleters', 'contacts.delete', NULL, rbt.id('G1'))$$,
	'42501', NULL, '15: AM cannot define a custom role beyond its own scopes (contacts.delete is allowed, not held)');
SELECT throws_ok($$SELECT hlauth.create_role('g1 all contacts', 'contacts.*', NULL, rbt.id('G1'))$$,
	'42501', NULL, '15: ... nor through a wildcard that expands to contacts.delete');
SELECT throws_ok($$SELECT hlauth.create_role('g2 mine', 'contacts.readonly', NULL, rbt.id('G2'))$$,
	'42501', NULL, '15: AM cannot define custom roles of another agency');
SELECT throws_ok($$SELECT hlauth.create_role('platform mine', 'contacts.readonly')$$,
	'42501', NULL, '15: AM cannot define platform roles');
SELECT throws_ok($$SELECT hlauth.alter_role_scopes(rbt.role('viewer'), 'contacts.write')$$,
	'42501', NULL, '15: AM cannot change a platform role');
SELECT throws_ok($$SELECT hlauth.alter_role_scopes(rbt.role('g2 viewer', 'G2'), 'contacts.readonly')$$,
	'42501', NULL, '15: AM cannot change another agency''s custom role');
SELECT throws_ok($$SELECT hlauth.alter_role_scopes(rbt.role('g1 readers', 'G1'), 'contacts.delete')$$,
	'42501', NULL, '15: AM cannot widen its agency''s custom role beyond its own scopes');
SELECT throws_ok($$SELECT hlauth.drop_role(rbt.role('viewer'))$$,
	'42501', NULL, '15: AM cannot drop a platform role');
SELECT throws_ok($$SELECT hlauth.drop_role(rbt.role('g2 viewer', 'G2'))$$,
	'42501', NULL, '15: AM cannot drop another agency''s custom role');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('g2 viewer', 'G2'), rbt.id('B'))$$,
	'42501', NULL, '15: AM cannot grant another agency''s custom role, even at its own tenants');
SELECT lives_ok($$SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('g1 readers', 'G1'), rbt.id('B'))$$,
	'15: AM grants its own custom role at account B');
COMMIT;
BEGIN;
SELECT rbt.login('AM', 'G1', 'contacts.* deals.readonly');
SELECT throws_ok($$SELECT hlauth.create_role('g1 other', 'contacts.readonly', NULL, rbt.id('G1'))$$,
	'42501', NULL, '15: without hlauth/roles.write in its context AM cannot define roles');
COMMIT;
BEGIN;
-- M holds hlauth/roles.write, but acts at account A, not at the agency
SELECT rbt.login('M', 'A', 'hlauth/* contacts.* deals.readonly');
SELECT throws_ok($$SELECT hlauth.create_role('g1 from A', 'contacts.readonly', NULL, rbt.id('G1'))$$,
	'42501', NULL, '15: custom roles are defined only by a principal acting at the agency itself');
SELECT throws_ok($$SELECT hlauth.alter_role_scopes(rbt.role('g1 readers', 'G1'), 'contacts.readonly')$$,
	'42501', NULL, '15: ... and changed only there');
COMMIT;
RESET ROLE;
-- Shrinking the allowance shrinks the custom role's grants at once; the role row is unchanged.
SELECT hlauth.set_agency_allowance(rbt.id('G1'), 'contacts.readonly');
SELECT is(rbt.eff('T1', 'B'), 'contacts.readonly', '15: after the allowance shrank, g1 readers grants only contacts.readonly');
SELECT hlauth.set_agency_allowance(rbt.id('G1'), 'contacts.* deals.readonly');
SELECT is(rbt.eff('T1', 'B'), 'contacts.readonly deals.readonly', '15: ... and the restored allowance restores it');

-- ---------------------------------------------------------------------------
-- Revoking: only what the revoker could have granted
-- ---------------------------------------------------------------------------
SET ROLE rb_app;
BEGIN;
SELECT rbt.login('M', 'A', 'hlauth/grants.write contacts.* deals.readonly');
SELECT throws_ok(format('SELECT hlauth.revoke_grant(%L)', rbt.grant_id('T2', rbt.role('viewer'), 'B')),
	'42501', NULL, '15: M cannot revoke a grant at sibling account B');
SELECT throws_ok(format('SELECT hlauth.revoke_grant(%L)', rbt.grant_id('T2', rbt.role('g2 viewer', 'G2'), 'C')),
	'42501', NULL, '15: M cannot revoke a grant in another agency');
SELECT throws_ok(format('SELECT hlauth.revoke_grant(%L)', rbt.grant_id('AM', rbt.role('manager'), 'G1')),
	'42501', NULL, '15: M cannot revoke a grant above it (AM''s at the agency)');
SELECT throws_ok(format('SELECT hlauth.revoke_grant(%L)', rbt.grant_id('T2', rbt.role('deals editor'), 'A')),
	'42501', NULL, '15: M cannot revoke, at its own account, a grant of a role it could not have granted');
SELECT throws_ok($$SELECT hlauth.revoke_grant('00000000-0000-4000-8000-000000000000')$$,
	'42501', NULL, '15: an unknown grant id gets the same 42501 (no oracle)');
SELECT lives_ok(format('SELECT hlauth.revoke_grant(%L)', rbt.grant_id('T1', rbt.role('viewer'), 'A')),
	'15: M revokes the viewer grant it made');
COMMIT;
BEGIN;
SELECT rbt.login('N', 'A', 'contacts.write');
SELECT throws_ok(format('SELECT hlauth.revoke_grant(%L)', rbt.grant_id('T1', rbt.role('contacts editor'), 'A1')),
	'42501', NULL, '15: N without hlauth/grants.write in its context cannot revoke');
COMMIT;
RESET ROLE;
SELECT ok(rbt.grant_id('T2', rbt.role('viewer'), 'B') IS NOT NULL
		  AND rbt.grant_id('T2', rbt.role('deals editor'), 'A') IS NOT NULL
		  AND rbt.grant_id('T2', rbt.role('g2 viewer', 'G2'), 'C') IS NOT NULL
		  AND rbt.grant_id('AM', rbt.role('manager'), 'G1') IS NOT NULL,
	'15: every refused revocation left its grant live');

-- ---------------------------------------------------------------------------
-- A demoted principal's next transaction has the smaller set (THREATS 15: outliving a demotion)
-- ---------------------------------------------------------------------------
SET ROLE rb_app;
BEGIN;
SELECT rbt.login('D', 'A', 'contacts.*');
SELECT is(hlauth.scopes()::text, 'contacts.readonly', '15: D acts with contacts.readonly (its cached effective scopes)');
COMMIT;
RESET ROLE;
SELECT hlauth.revoke_grant(rbt.grant_id('D', rbt.role('viewer'), 'A'));
SET ROLE rb_app;
BEGIN;
SELECT rbt.login('D', 'A', 'contacts.*');
SELECT is(hlauth.scopes()::text, '', '15: after the revocation D''s next context has no scopes');
SELECT ok(NOT hlauth.has_scope('contacts.readonly'), '15: ... and has_scope(contacts.readonly) is false');
COMMIT;
RESET ROLE;
SELECT hlauth.grant_role(rbt.id('D'), rbt.role('contacts editor'), rbt.id('A')) IS NOT NULL AS d_regranted \gset
SET ROLE rb_app;
BEGIN;
SELECT rbt.login('D', 'A', 'contacts.*');
SELECT is(hlauth.scopes()::text, 'contacts.readonly contacts.write', '15: D granted contacts editor');
COMMIT;
RESET ROLE;
SELECT hlauth.alter_role_scopes(rbt.role('contacts editor'), 'contacts.readonly');
SET ROLE rb_app;
BEGIN;
SELECT rbt.login('D', 'A', 'contacts.*');
SELECT is(hlauth.scopes()::text, 'contacts.readonly', '15: the role narrowed: D''s next context shrinks with it');
COMMIT;
RESET ROLE;
SELECT hlauth.alter_role_scopes(rbt.role('contacts editor'), 'contacts.write');
SELECT hlauth.suspend_principal(rbt.id('D'));
SET ROLE rb_app;
SELECT throws_ok($$SELECT rbt.login('D', 'A', 'contacts.*')$$, '42501', NULL,
	'15: a suspended principal cannot be set at all');
RESET ROLE;
SELECT hlauth.reactivate_principal(rbt.id('D'));

-- ---------------------------------------------------------------------------
-- Look-alike scopes (THREATS 15): refused as unregistered (22023) or invalid (22P02)
-- ---------------------------------------------------------------------------
SELECT throws_ok($$SELECT hlauth.create_role('la1', 'Contacts.readonly')$$, '22023',
	'scope "Contacts.readonly" is not a registered permission', '15: Contacts.readonly is not contacts.readonly');
SELECT throws_ok($$SELECT hlauth.create_role('la2', 'contacts.readOnly')$$, '22023', NULL,
	'15: contacts.readOnly is not contacts.readonly');
SELECT throws_ok($$SELECT hlauth.create_role('la3', 'contacts..readonly')$$, '22P02', NULL,
	'15: contacts..readonly is not a scope');
SELECT throws_ok($$SELECT hlauth.create_role('la4', 'contacts.readonly.')$$, '22P02', NULL,
	'15: contacts.readonly. (trailing dot) is not a scope');
SELECT throws_ok($$SELECT hlauth.create_role('la5', 'contacts.read')$$, '22023', NULL,
	'15: contacts.read (a prefix of a registered scope) is not registered');
SELECT throws_ok($$SELECT hlauth.create_role('la6', ARRAY['contacts. readonly']::hlauth.scopes)$$, '22P02', NULL,
	'15: an embedded space inside one array element is not a scope');
SELECT throws_ok($$SELECT hlauth.create_role('la7', E'contacts.r\u0435adonly')$$, '22P02', NULL,
	'15: a Cyrillic look-alike letter is not a scope');
SELECT throws_ok($$SELECT hlauth.create_role('la8', E'contacts.readonly\u200b')$$, '22P02', NULL,
	'15: a zero-width space is not a scope');
SELECT throws_ok($$SELECT hlauth.create_role('la9', E'contacts.readonly\x00')$$, '22021', NULL,
	'15: a NUL byte never reaches hlauth (PostgreSQL text refuses it)');
SELECT throws_ok($$SELECT hlauth.create_role('la10', ARRAY['contacts.readonly' || chr(0)]::hlauth.scopes)$$, '54000', NULL,
	'15: ... nor does chr(0)');
SELECT throws_ok($$SELECT hlauth.alter_role_scopes(rbt.role('viewer'), 'Contacts.readonly')$$, '22023', NULL,
	'15: look-alikes are refused when changing a role');
SELECT throws_ok($$SELECT hlauth.set_agency_allowance(rbt.id('G1'), 'contacts.readonly Deals.readonly')$$, '22023', NULL,
	'15: look-alikes are refused in an allowance');
SELECT throws_ok($$SELECT hlauth.register_permission('deals.delete', 'x', ARRAY['Deals.write'])$$, '22023', NULL,
	'15: look-alikes are refused as implications');
SELECT is((SELECT count(*) FROM hlauth.roles WHERE name LIKE 'la%'), 0::bigint, '15: no look-alike role was created');
SET ROLE rb_app;
BEGIN;
SELECT rbt.login('M', 'A', 'Contacts.write deals.*');
SELECT is(hlauth.scopes()::text, 'deals.readonly', '15: look-alikes asked for in set_principal are not granted (only what M holds)');
SELECT ok(NOT hlauth.has_scope('contacts.write') AND NOT hlauth.has_scope('Contacts.write'),
	'15: ... neither the look-alike nor the real scope');
COMMIT;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Direct writes and reads of the tables (THREATS 3)
-- ---------------------------------------------------------------------------
SET ROLE rb_app;
BEGIN;
SELECT rbt.login('AM', 'G1', 'hlauth/* contacts.* deals.readonly');
SELECT throws_ok($$INSERT INTO hlauth.grants (principal, role_id, tenant_id) VALUES (rbt.id('T1'), rbt.role('everything'), rbt.id('G1'))$$,
	'42501', NULL, '3: INSERT into hlauth.grants is refused');
SELECT throws_ok($$UPDATE hlauth.grants SET revoked_at = NULL$$, '42501', NULL, '3: UPDATE of hlauth.grants is refused');
SELECT throws_ok($$DELETE FROM hlauth.grants$$, '42501', NULL, '3: DELETE from hlauth.grants is refused');
SELECT throws_ok($$TRUNCATE hlauth.grants$$, '42501', NULL, '3: TRUNCATE of hlauth.grants is refused');
SELECT throws_ok($$UPDATE hlauth.roles SET scopes = '*'$$, '42501', NULL, '3: UPDATE of hlauth.roles is refused');
SELECT throws_ok($$INSERT INTO hlauth.roles (name, scopes) VALUES ('mine', '*')$$, '42501', NULL, '3: INSERT into hlauth.roles is refused');
SELECT throws_ok($$DELETE FROM hlauth.roles$$, '42501', NULL, '3: DELETE from hlauth.roles is refused');
SELECT throws_ok($$TRUNCATE hlauth.roles CASCADE$$, '42501', NULL, '3: TRUNCATE of hlauth.roles is refused');
SELECT throws_ok($$INSERT INTO hlauth.permissions VALUES ('evil.write', 'x')$$, '42501', NULL, '3: INSERT into hlauth.permissions is refused');
SELECT throws_ok($$UPDATE hlauth.permissions SET implies = '{billing.write}' WHERE scope = 'contacts.readonly'$$, '42501', NULL,
	'3: UPDATE of hlauth.permissions (an implication to billing) is refused');
SELECT throws_ok($$DELETE FROM hlauth.permissions$$, '42501', NULL, '3: DELETE from hlauth.permissions is refused');
SELECT throws_ok($$TRUNCATE hlauth.permissions$$, '42501', NULL, '3: TRUNCATE of hlauth.permissions is refused');
SELECT throws_ok($$INSERT INTO hlauth.principals (id, status) VALUES (rbt.id('T1'), 'active')$$, '42501', NULL, '3: INSERT into hlauth.principals is refused');
SELECT throws_ok($$UPDATE hlauth.principals SET attributes = '{"region": "apac"}'$$, '42501', NULL, '3: UPDATE of hlauth.principals is refused');
SELECT throws_ok($$DELETE FROM hlauth.principals$$, '42501', NULL, '3: DELETE from hlauth.principals is refused');
SELECT throws_ok($$TRUNCATE hlauth.principals$$, '42501', NULL, '3: TRUNCATE of hlauth.principals is refused');
SELECT throws_ok($$UPDATE hlauth.agency_allowances SET scopes = '*'$$, '42501', NULL, '3: UPDATE of hlauth.agency_allowances is refused');
SELECT throws_ok($$SELECT * FROM hlauth.principals$$, '42501', NULL, '3: hlauth.principals is not readable');
-- RLS: another agency's custom roles and grants are invisible
SELECT is((SELECT count(*) FROM hlauth.roles WHERE agency_id = rbt.id('G2')), 0::bigint,
	'15: G2''s custom roles are invisible from agency G1');
SELECT ok((SELECT count(*) FROM hlauth.roles WHERE agency_id = rbt.id('G1')) >= 2,
	'15: ... G1''s own custom roles are visible');
SELECT is((SELECT count(*) FROM hlauth.grants WHERE tenant_id IN (rbt.id('G2'), rbt.id('C'))), 0::bigint,
	'15: grants in agency G2 are invisible from agency G1');
SELECT is((SELECT count(*) FROM hlauth.agency_allowances WHERE agency_id = rbt.id('G2')), 0::bigint,
	'15: G2''s allowance is invisible from agency G1');
-- attributes: only the current principal's own
SELECT is(hlauth.attribute('secret'), NULL, '15: AM cannot read CM''s attributes');
COMMIT;
BEGIN;
SELECT rbt.login('M', 'A', 'contacts.readonly');
SELECT is((SELECT count(*) FROM hlauth.grants WHERE tenant_id IN (rbt.id('B'), rbt.id('G1'))), 0::bigint,
	'15: from account A, grants at sibling B and at the agency are invisible');
SELECT ok((SELECT count(*) FROM hlauth.grants WHERE tenant_id = rbt.id('A')) > 0, '15: ... grants at A are visible');
SELECT is(hlauth.attribute('region'), '"emea"'::jsonb, '15: M reads its own attribute');
COMMIT;
-- The internals are not callable
SELECT throws_ok($$SELECT hlauth_internal.expand_scopes('*')$$, '42501', NULL, '3: hlauth_internal.expand_scopes is not callable');
SELECT throws_ok($$SELECT hlauth_internal.caller_is_admin()$$, '42501', NULL, '3: hlauth_internal.caller_is_admin is not callable');
SELECT throws_ok($$SELECT hlauth_internal.set_principal_status(rbt.id('D'), 'active')$$, '42501', NULL,
	'3: hlauth_internal.set_principal_status is not callable');
SELECT throws_ok($$SELECT hlauth_internal.require_holds('*', rbt.id('A'), 'x')$$, '42501', NULL,
	'3: hlauth_internal.require_holds is not callable');
SELECT throws_ok($$SELECT hlauth.register_permission('evil.write', 'x')$$, '42501', NULL,
	'3: register_permission needs hlauth_admin');
-- An admin's SECURITY DEFINER function does not make its caller an admin
SELECT throws_ok($$SELECT rbt.admin_register('evil.write')$$, '42501', 'permission denied to register permissions',
	'3: an hlauth_admin''s SECURITY DEFINER wrapper does not lend its rights (second gate)');
SELECT throws_ok($$SELECT rbt.admin_grant('T1', rbt.role('everything'), 'A')$$, '42501', NULL,
	'3: ... nor for grant_role');
RESET ROLE;
SELECT is((SELECT count(*) FROM hlauth.permissions WHERE scope = 'evil.write'), 0::bigint, '3: nothing was registered');

-- effective_scopes: hlauth_admin, hlauth_trusted, or a principal context that can access the tenant
SET ROLE rb_untrusted;
SELECT throws_ok($$SELECT hlauth.effective_scopes(rbt.id('M'), rbt.id('A'))$$, '42501', NULL,
	'15: without a principal, an untrusted role cannot read effective scopes');
BEGIN;
SELECT rbt.login_definer('M', 'A', 'contacts.readonly');
SELECT is(hlauth.principal(), rbt.id('M'), '15: (the untrusted session acts as M through the wrapper)');
SELECT ok(hlauth.effective_scopes(rbt.id('M'), rbt.id('A')) IS NOT NULL,
	'15: M reads its own effective scopes');
SELECT throws_ok($$SELECT hlauth.effective_scopes(rbt.id('T1'), rbt.id('A1'))$$, '42501', NULL,
	'15: ... but not another principal''s without hlauth/grants.write in its context (42501)');
COMMIT;
BEGIN;
SELECT rbt.login_definer('M', 'A', 'contacts.readonly hlauth/grants.write');
SELECT is(hlauth.effective_scopes(rbt.id('T1'), rbt.id('A1'))::text, 'contacts.readonly contacts.write',
	'15: M, with hlauth/grants.write, reads effective scopes at a tenant it can access');
SELECT throws_ok($$SELECT hlauth.effective_scopes(rbt.id('T2'), rbt.id('B'))$$, '42501', NULL,
	'15: M cannot read effective scopes at sibling account B');
SELECT throws_ok($$SELECT hlauth.effective_scopes(rbt.id('AM'), rbt.id('G1'))$$, '42501', NULL,
	'15: ... nor at its agency');
COMMIT;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- SECURITY DEFINER hygiene (THREATS 9): planted functions and operators change nothing
-- ---------------------------------------------------------------------------
SET ROLE rb_app;
BEGIN;
SELECT rbt.login('M', 'A', 'hlauth/grants.write contacts.* deals.readonly');
-- SET LOCAL inside the attacked statement: rolled back with it, so pgTAP itself is unaffected.
SELECT throws_ok($$SET LOCAL search_path = rb_app_s, pg_catalog, hlauth;
				   SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('billing'), rbt.id('A'))$$, '42501', NULL,
	'9: with has_scope, scopes_grants, strpos and = (uuid, text) planted first in the search_path, M still cannot grant billing');
SELECT throws_ok($$SET LOCAL search_path = rb_app_s, pg_catalog, hlauth;
				   SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('viewer'), rbt.id('B'))$$, '42501', NULL,
	'9: ... nor grant at sibling B (planted can_access and uuid =)');
SELECT throws_ok($$SET LOCAL search_path = rb_app_s, pg_catalog, hlauth;
				   SELECT hlauth.grant_role(rbt.id('M'), rbt.role('viewer'), rbt.id('A'))$$, '42501', NULL,
	'9: ... nor grant to itself');
SELECT throws_ok($$SET LOCAL search_path = pg_temp, rb_app_s, pg_catalog, hlauth;
				   SELECT hlauth.grant_role(rbt.id('T1'), rbt.role('billing'), rbt.id('A'))$$, '42501', NULL,
	'9: with pg_temp first in the search_path, the same');
COMMIT;
SELECT throws_ok($$CREATE FUNCTION hlauth.has_scope(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'$$,
	'42501', NULL, '9: the app role cannot plant functions in schema hlauth');
SELECT throws_ok($$CREATE FUNCTION hlauth_internal.caller_is_admin(int) RETURNS boolean LANGUAGE sql AS 'SELECT true'$$,
	'42501', NULL, '9: ... nor in hlauth_internal');
RESET ROLE;
SELECT is((SELECT count(*) FROM rb_app_s.grants), 0::bigint, '9: the planted grants table was never written');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p
				   WHERE p.pronamespace IN ('hlauth'::regnamespace, 'hlauth_internal'::regnamespace)
					 AND p.proname IN ('register_permission', 'unregister_permission', 'set_agency_allowance',
									   'upsert_principal', 'set_principal_status', 'suspend_principal',
									   'reactivate_principal', 'create_role', 'alter_role_scopes', 'drop_role',
									   'grant_role', 'revoke_grant', 'require_admin', 'require_registered',
									   'require_agency', 'agency_of', 'tenant_within', 'missing_scopes',
									   'require_context_scope', 'require_holds', 'require_within_allowance',
									   'acting_principal', 'require_role_definer', 'role_for_change', 'require_grantor')
					 AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)$$,
	'9: every rbac function written in SQL pins search_path = pg_catalog, pg_temp');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p
				   WHERE p.pronamespace = 'hlauth_internal'::regnamespace
					 AND p.proname IN ('require_admin', 'require_registered', 'require_agency', 'agency_of',
									   'tenant_within', 'missing_scopes', 'require_context_scope', 'require_holds',
									   'require_within_allowance', 'acting_principal', 'require_role_definer',
									   'role_for_change', 'require_grantor', 'set_principal_status', 'expand_scopes',
									   'caller_is_admin', 'rbac_changed')
					 AND has_function_privilege('public', p.oid, 'EXECUTE')$$,
	'3: no rbac internal is executable by PUBLIC');

-- 15. A grant that expired after the transaction began no longer counts (a red-team pass: it
-- was read against the transaction's start, so EX, whose 'manager' grant had expired, still
-- held hlauth/grants.write in a transaction opened before, and granted the role on for good).
SELECT hlauth.grant_role(rbt.id('EX'), rbt.role('manager'), rbt.id('A'), clock_timestamp() + interval '1 second')
	\g /dev/null
BEGIN;
SET LOCAL ROLE rb_app;
SELECT pg_sleep(1.5);
SELECT rbt.login('EX', 'A', '*') \g /dev/null
SELECT is(hlauth.scopes()::text, '', '15: a grant that expired after the transaction began gives no scopes');
SELECT throws_ok($$SELECT hlauth.grant_role(rbt.id('EY'), rbt.role('manager'), rbt.id('A'))$$, '42501', NULL,
	'15: ... and cannot be passed on');
COMMIT;
SELECT is(rbt.eff('EY', 'A'), '', '15: ... so EY holds nothing');

SELECT * FROM finish();
