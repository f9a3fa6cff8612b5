-- context: the principal context set by hlauth.set_principal() and read by the accessors.
\set VERBOSITY terse
\set SHOW_CONTEXT never
-- Roles are cluster-wide: start clean even after an interrupted run.
SET client_min_messages = warning;
DROP FUNCTION IF EXISTS public.regress_ctx_principal_as_other();
DROP ROLE IF EXISTS regress_ctx_app;
DROP ROLE IF EXISTS regress_ctx_other;
DROP ROLE IF EXISTS regress_ctx_untrusted;
DROP ROLE IF EXISTS regress_ctx_bypass;
RESET client_min_messages;
-- The app server's role: trusted to call set_principal, not superuser, no BYPASSRLS
CREATE ROLE regress_ctx_app IN ROLE hlauth_trusted;
-- Another trusted role the app role may switch to
CREATE ROLE regress_ctx_other IN ROLE hlauth_trusted;
GRANT regress_ctx_other TO regress_ctx_app;
CREATE ROLE regress_ctx_untrusted;
CREATE ROLE regress_ctx_bypass BYPASSRLS IN ROLE hlauth_trusted;

-- The tenant tree of this file (every tenant uuid starts with 'c', principals with 'cafe'):
--   agency c1
--     account c11 -> apps c111, c112 (suspended)
--     account c12 -> app c121
--     account c13 (suspended) -> app c131
--   agency c2 -> account c21
--   agency c3 (suspended) -> account c31 -> app c311
SELECT hlauth.create_tenant('agency',  NULL,                                   'C1',   'c1000000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('account', 'c1000000-0000-0000-0000-000000000000', 'C11',  'c1100000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('app',     'c1100000-0000-0000-0000-000000000000', 'C111', 'c1110000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('app',     'c1100000-0000-0000-0000-000000000000', 'C112', 'c1120000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('account', 'c1000000-0000-0000-0000-000000000000', 'C12',  'c1200000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('app',     'c1200000-0000-0000-0000-000000000000', 'C121', 'c1210000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('account', 'c1000000-0000-0000-0000-000000000000', 'C13',  'c1300000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('app',     'c1300000-0000-0000-0000-000000000000', 'C131', 'c1310000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('agency',  NULL,                                   'C2',   'c2000000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('account', 'c2000000-0000-0000-0000-000000000000', 'C21',  'c2100000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('agency',  NULL,                                   'C3',   'c3000000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('account', 'c3000000-0000-0000-0000-000000000000', 'C31',  'c3100000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('app',     'c3100000-0000-0000-0000-000000000000', 'C311', 'c3110000-0000-0000-0000-000000000000');
SELECT hlauth.suspend_tenant('c1120000-0000-0000-0000-000000000000');
SELECT hlauth.suspend_tenant('c1300000-0000-0000-0000-000000000000');
SELECT hlauth.suspend_tenant('c3000000-0000-0000-0000-000000000000');

-- Permissions, one role and its grants (issue #3). set_principal() keeps only the asked
-- scopes the principal holds through its grants at the tenant or above (asked ∩
-- hlauth.effective_scopes()), so every principal of this file holds this role at the agency
-- it acts under. The role holds every concrete lower-case scope the has_scope() and
-- require_scope() cases below ask about, so a 'f' for one of them comes from what
-- set_principal() was asked, not from a missing grant. Effective scopes are concrete
-- permissions: a wildcard asked for (contacts.*, calendars/*, *) yields the registered
-- permissions it covers, and the context never holds a wildcard itself.
SELECT count(*) AS registered
  FROM unnest(ARRAY['contacts.readonly', 'contacts.write', 'calendars/events.readonly', 'calendars/events.write',
                    'calendars.read', 'anything/at/all.write']) AS s,
       LATERAL hlauth.register_permission(s, 'regress context: ' || s) AS r;
SELECT hlauth.create_role('regress ctx all', 'contacts.readonly contacts.write calendars/events.readonly calendars/events.write calendars.read anything/at/all.write') AS ctx_role \gset
SELECT count(hlauth.grant_role(p::uuid, :'ctx_role', a::uuid)) AS grants
  FROM (VALUES ('cafe0000-0000-0000-0000-000000000001', 'c1000000-0000-0000-0000-000000000000'),
               ('cafe0000-0000-0000-0000-000000000011', 'c1000000-0000-0000-0000-000000000000'),
               ('cafe0000-0000-0000-0000-000000000012', 'c1000000-0000-0000-0000-000000000000'),
               ('cafe0000-0000-0000-0000-000000000013', 'c1000000-0000-0000-0000-000000000000'),
               ('cafe0000-0000-0000-0000-000000000111', 'c1000000-0000-0000-0000-000000000000'),
               ('cafe0000-0000-0000-0000-000000000112', 'c1000000-0000-0000-0000-000000000000'),
               ('cafe0000-0000-0000-0000-000000000121', 'c1000000-0000-0000-0000-000000000000'),
               ('cafe0000-0000-0000-0000-000000000131', 'c1000000-0000-0000-0000-000000000000'),
               ('cafe0000-0000-0000-0000-000000000002', 'c2000000-0000-0000-0000-000000000000'),
               ('cafe0000-0000-0000-0000-000000000003', 'c3000000-0000-0000-0000-000000000000'),
               ('cafe0000-0000-0000-0000-000000000031', 'c3000000-0000-0000-0000-000000000000'),
               ('cafe0000-0000-0000-0000-000000000311', 'c3000000-0000-0000-0000-000000000000')) AS g(p, a);

-- Every tenant of the tree, for can_access()
CREATE TEMP TABLE ctx_all (id uuid PRIMARY KEY, name text);
INSERT INTO ctx_all SELECT id, name FROM hlauth.tenants WHERE id::text LIKE 'c%';
GRANT SELECT ON ctx_all TO PUBLIC;

SET ROLE regress_ctx_app;
SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user;

-- ---------------------------------------------------------------------------
-- No context: every accessor fails closed
-- ---------------------------------------------------------------------------
SELECT hlauth.principal() AS principal, hlauth.tenant() AS tenant, hlauth.tenant_kind() AS kind,
       hlauth.agency() AS agency, hlauth.account() AS account, hlauth.app() AS app,
       hlauth.auth_method() AS method, hlauth.scopes() AS scopes, hlauth.current_context() AS ctx;
SELECT hlauth.scopes() IS NULL AS scopes_null, hlauth.current_context() IS NULL AS ctx_null,
       hlauth.has_scope('contacts.readonly') AS has_scope, hlauth.has_scope('*') AS has_star,
       hlauth.can_access('c1100000-0000-0000-0000-000000000000') AS can_access,
       hlauth.accessible_tenants() AS accessible, cardinality(hlauth.accessible_tenants()) AS n;
SELECT count(*) AS accessible_rows FROM ctx_all WHERE hlauth.can_access(id);
SELECT hlauth.require_scope('contacts.readonly');
SELECT hlauth.require_scope('*');
-- STRICT accessors with a NULL argument
SELECT hlauth.has_scope(NULL) AS has_scope_null_arg, hlauth.can_access(NULL) AS can_access_null_arg;

-- A context set outside a transaction block ends with its own statement
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000001', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT hlauth.principal() AS principal_next_statement, hlauth.accessible_tenants() AS accessible;

-- ---------------------------------------------------------------------------
-- Account-level principal
-- ---------------------------------------------------------------------------
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000',
                            'contacts.readonly calendars/* contacts.readonly');
-- The asked calendars/* becomes the registered permissions under calendars/ that the
-- principal holds (calendars/events.readonly, calendars/events.write); it does not cover
-- calendars.read (another resource), which the principal holds but did not ask for. Nor
-- contacts.write: held, not asked.
SELECT hlauth.principal() AS principal, hlauth.tenant() AS tenant, hlauth.tenant_kind() AS kind,
       hlauth.auth_method() AS method, hlauth.scopes() AS scopes;
SELECT hlauth.agency() AS agency, hlauth.account() AS account, hlauth.app() AS app;
SELECT hlauth.current_context();
-- calendars/* is 'f' since issue #3: the context holds concrete permissions only, and
-- concrete scopes never grant a wildcard (wildcard-by-wildcard matching: sql/scopes.sql).
SELECT q, hlauth.has_scope(q) AS has_scope
  FROM unnest(ARRAY['contacts.readonly', 'contacts.write', 'Contacts.readonly', 'calendars/events.write',
                    'calendars.read', 'calendars/*', '*', 'contacts..readonly', '']) AS q
 ORDER BY q COLLATE "C";
SELECT t AS accessible FROM unnest(hlauth.accessible_tenants()) AS t ORDER BY t;
SELECT name, id, hlauth.can_access(id) AS can_access FROM ctx_all ORDER BY id;
SELECT hlauth.can_access('c9999999-0000-0000-0000-000000000000') AS unknown;
SELECT hlauth.require_scope('calendars/events.write') AS required;
-- the accessors are stable within the transaction
SELECT hlauth.principal() AS principal_again, hlauth.tenant() AS tenant_again;
SELECT hlauth.require_scope('contacts.write');
ROLLBACK;
-- gone after ROLLBACK
SELECT hlauth.principal() AS principal, hlauth.tenant() AS tenant, hlauth.scopes() AS scopes,
       hlauth.accessible_tenants() AS accessible, hlauth.current_context() AS ctx;

-- ---------------------------------------------------------------------------
-- Agency-level principal: the agency, its active accounts and their active apps
-- (not the suspended app c112, not the suspended account c13 nor its app c131)
-- ---------------------------------------------------------------------------
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000001', 'c1000000-0000-0000-0000-000000000000', '*');
-- '*' asks for everything: the context gets every permission the principal holds here
-- (its role's six), not the wildcard '*' itself
SELECT hlauth.principal() AS principal, hlauth.tenant() AS tenant, hlauth.tenant_kind() AS kind,
       hlauth.auth_method() AS method, hlauth.scopes() AS scopes;
SELECT hlauth.agency() AS agency, hlauth.account() AS account, hlauth.app() AS app;
SELECT hlauth.current_context();
-- anything/at/all.write is registered and held, so asking '*' grants it; has_scope('*') is 'f'
-- since issue #3 (concrete permissions never grant the wildcard '*')
SELECT hlauth.has_scope('anything/at/all.write') AS has_any, hlauth.has_scope('*') AS has_star,
       hlauth.has_scope('not a scope') AS has_invalid;
SELECT t AS accessible FROM unnest(hlauth.accessible_tenants()) AS t ORDER BY t;
SELECT name, id, hlauth.can_access(id) AS can_access FROM ctx_all ORDER BY id;
COMMIT;
-- gone after COMMIT
SELECT hlauth.principal() AS principal, hlauth.tenant_kind() AS kind, hlauth.agency() AS agency,
       hlauth.accessible_tenants() AS accessible, hlauth.current_context() AS ctx;

-- ---------------------------------------------------------------------------
-- App-level principal: the app and its account
-- ---------------------------------------------------------------------------
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000111', 'c1110000-0000-0000-0000-000000000000', '');
SELECT hlauth.principal() AS principal, hlauth.tenant() AS tenant, hlauth.tenant_kind() AS kind,
       hlauth.auth_method() AS method, hlauth.scopes() AS scopes, hlauth.scopes() IS NULL AS scopes_null;
SELECT hlauth.agency() AS agency, hlauth.account() AS account, hlauth.app() AS app;
SELECT hlauth.current_context();
SELECT hlauth.has_scope('contacts.readonly') AS has_scope;
SELECT t AS accessible FROM unnest(hlauth.accessible_tenants()) AS t ORDER BY t;
SELECT name, id, hlauth.can_access(id) AS can_access FROM ctx_all ORDER BY id;
SELECT hlauth.require_scope('contacts.readonly');
COMMIT;

-- Another agency and an account with one app
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000002', 'c2000000-0000-0000-0000-000000000000', 'contacts.*');
SELECT t AS accessible FROM unnest(hlauth.accessible_tenants()) AS t ORDER BY t;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000012', 'c1200000-0000-0000-0000-000000000000', 'contacts.*');
SELECT hlauth.principal() AS principal, hlauth.tenant_kind() AS kind, hlauth.agency() AS agency,
       hlauth.account() AS account, hlauth.app() AS app;
SELECT t AS accessible FROM unnest(hlauth.accessible_tenants()) AS t ORDER BY t;
COMMIT;

-- ---------------------------------------------------------------------------
-- Subtransactions
-- ---------------------------------------------------------------------------
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
SAVEPOINT s1;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000002', 'c2000000-0000-0000-0000-000000000000', '*');
-- ('*' again yields every permission principal …002 holds at c2)
SELECT hlauth.principal() AS inner_principal, hlauth.tenant() AS inner_tenant, hlauth.scopes() AS inner_scopes;
ROLLBACK TO SAVEPOINT s1;
-- the outer context is back
SELECT hlauth.principal() AS principal, hlauth.tenant() AS tenant, hlauth.scopes() AS scopes,
       hlauth.has_scope('contacts.write') AS has_write;
SELECT t AS accessible FROM unnest(hlauth.accessible_tenants()) AS t ORDER BY t;
-- a failed set_principal in a subtransaction leaves the outer context alone
SAVEPOINT s2;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000002', 'c9999999-0000-0000-0000-000000000000', '*');
ROLLBACK TO SAVEPOINT s2;
SELECT hlauth.principal() AS principal, hlauth.tenant() AS tenant;
-- clear() in a subtransaction that rolls back
SAVEPOINT s3;
SELECT hlauth.clear();
SELECT hlauth.principal() AS cleared_principal;
ROLLBACK TO SAVEPOINT s3;
SELECT hlauth.principal() AS principal_restored;
-- RELEASE keeps the inner context
SAVEPOINT s4;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000111', 'c1110000-0000-0000-0000-000000000000', 'calendars/*');
RELEASE SAVEPOINT s4;
-- (calendars/* yields the held calendars/ permissions)
SELECT hlauth.principal() AS principal, hlauth.tenant() AS tenant, hlauth.tenant_kind() AS kind, hlauth.scopes() AS scopes;
-- an error after RELEASE aborts everything; nothing survives the ROLLBACK
SELECT 1 / 0;
ROLLBACK;
SELECT hlauth.principal() AS principal, hlauth.scopes() AS scopes;
-- a context set in a released subtransaction ends at COMMIT too
BEGIN;
SAVEPOINT s5;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
RELEASE SAVEPOINT s5;
SELECT hlauth.principal() AS principal;
COMMIT;
SELECT hlauth.principal() AS principal;

-- ---------------------------------------------------------------------------
-- set_principal errors
-- ---------------------------------------------------------------------------
-- NULL arguments
SELECT hlauth.set_principal(NULL, 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', NULL, 'contacts.readonly');
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', NULL);
-- a bad scope set never reaches the function
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts..read');
-- unknown tenant: 42704
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c9999999-0000-0000-0000-000000000000', 'contacts.readonly');
-- a principal id is not a tenant
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'cafe0000-0000-0000-0000-000000000011', 'contacts.readonly');
-- suspended tenant, or a suspended tenant above it: 42501
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000112', 'c1120000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000013', 'c1300000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000131', 'c1310000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000003', 'c3000000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000031', 'c3100000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000311', 'c3110000-0000-0000-0000-000000000000', 'contacts.readonly');
\set VERBOSITY default
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000131', 'c1310000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT hlauth.set_principal(NULL, NULL, NULL);
\set VERBOSITY terse
-- a failed set_principal inside a transaction aborts it; the earlier context is not kept
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000112', 'c1120000-0000-0000-0000-000000000000', '*');
SELECT hlauth.principal();
ROLLBACK;
SELECT hlauth.principal() AS principal;
RESET ROLE;

-- A role without hlauth_trusted: 42501 permission denied for function
SET ROLE regress_ctx_untrusted;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
-- it can still read the (empty) context and clear it
SELECT hlauth.principal() AS principal, hlauth.has_scope('contacts.readonly') AS has_scope, hlauth.clear() AS cleared;
RESET ROLE;
-- A superuser and a BYPASSRLS role are refused: their queries would not be isolated
SELECT current_user;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
SET ROLE regress_ctx_bypass;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
\set VERBOSITY default
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
\set VERBOSITY terse
SELECT hlauth.principal() AS principal;
RESET ROLE;
-- ... also through an application role's SECURITY DEFINER function: the context outlives
-- the function, and what follows runs as the caller (a red-team pass)
CREATE SCHEMA ctx_wrap AUTHORIZATION regress_ctx_app;
GRANT USAGE ON SCHEMA ctx_wrap TO PUBLIC;
SET ROLE regress_ctx_app;
CREATE FUNCTION ctx_wrap.login() RETURNS void LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$ SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly') $$;
RESET ROLE;
SELECT ctx_wrap.login();
SELECT hlauth.principal() AS superuser_principal;
SET ROLE regress_ctx_bypass;
SELECT ctx_wrap.login();
SELECT hlauth.principal() AS bypass_principal;
RESET ROLE;
-- a role that does not bypass row-level security may use the wrapper its owner offers
BEGIN;
SET LOCAL ROLE regress_ctx_untrusted;
SELECT ctx_wrap.login();
SELECT hlauth.principal() AS untrusted_through_wrapper;
ROLLBACK;
DROP SCHEMA ctx_wrap CASCADE;

-- ---------------------------------------------------------------------------
-- hlauth.clear()
-- ---------------------------------------------------------------------------
SET ROLE regress_ctx_app;
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000001', 'c1000000-0000-0000-0000-000000000000', '*');
SELECT hlauth.clear();
SELECT hlauth.principal() AS principal, hlauth.tenant() AS tenant, hlauth.tenant_kind() AS kind,
       hlauth.agency() AS agency, hlauth.scopes() AS scopes, hlauth.has_scope('contacts.readonly') AS has_scope,
       hlauth.can_access('c1000000-0000-0000-0000-000000000000') AS can_access,
       hlauth.accessible_tenants() AS accessible, hlauth.current_context() AS ctx;
SELECT hlauth.require_scope('contacts.readonly');
ROLLBACK;
-- clear() with no context is harmless; a new context may follow it
BEGIN;
SELECT hlauth.clear();
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT hlauth.principal() AS principal;
COMMIT;

-- ---------------------------------------------------------------------------
-- Changing role inside the transaction ends the context
-- ---------------------------------------------------------------------------
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
SET ROLE regress_ctx_other;
SELECT current_user, hlauth.principal() AS principal, hlauth.accessible_tenants() AS accessible;
-- and switching back does not bring it back
SET ROLE regress_ctx_app;
SELECT current_user, hlauth.principal() AS principal;
ROLLBACK;
-- even SET ROLE to the same role
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
SET ROLE regress_ctx_app;
SELECT current_user, hlauth.principal() AS principal;
ROLLBACK;
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
SET LOCAL ROLE regress_ctx_other;
SELECT current_user, hlauth.principal() AS principal;
ROLLBACK;
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
RESET ROLE;
SELECT current_user, hlauth.principal() AS principal;
ROLLBACK;
SELECT current_user;
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
SET SESSION AUTHORIZATION regress_ctx_other;
SELECT session_user, current_user, hlauth.principal() AS principal;
ROLLBACK;
SELECT session_user, current_user;
-- set_config('role', ...) is SET ROLE by another name: it must end the context too
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT set_config('role', 'regress_ctx_other', true) AS role;
SELECT current_user, hlauth.principal() AS principal, hlauth.accessible_tenants() AS accessible;
ROLLBACK;
-- so is a function's SET role clause: inside it, no context
RESET ROLE;
CREATE FUNCTION public.regress_ctx_principal_as_other() RETURNS uuid
	LANGUAGE sql SET role = 'regress_ctx_other' AS $$ SELECT hlauth.principal() $$;
SET ROLE regress_ctx_app;
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT public.regress_ctx_principal_as_other() AS principal_inside;
ROLLBACK;

-- The context cannot be written directly
BEGIN;
SET hlauth.context = 'v1;p=cafe0000-0000-0000-0000-000000000001';
ROLLBACK;
BEGIN;
SELECT set_config('hlauth.context', 'v1;p=cafe0000-0000-0000-0000-000000000001', true);
ROLLBACK;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- A suspension committed elsewhere is seen by the next set_principal
-- ---------------------------------------------------------------------------
SELECT hlauth.suspend_tenant('c1100000-0000-0000-0000-000000000000');
SET ROLE regress_ctx_app;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000011', 'c1100000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000111', 'c1110000-0000-0000-0000-000000000000', 'contacts.readonly');
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000001', 'c1000000-0000-0000-0000-000000000000', '*');
SELECT t AS accessible FROM unnest(hlauth.accessible_tenants()) AS t ORDER BY t;
SELECT hlauth.can_access('c1100000-0000-0000-0000-000000000000') AS c11, hlauth.can_access('c1110000-0000-0000-0000-000000000000') AS c111;
COMMIT;
RESET ROLE;
SELECT hlauth.reactivate_tenant('c1100000-0000-0000-0000-000000000000');
SET ROLE regress_ctx_app;
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000111', 'c1110000-0000-0000-0000-000000000000', 'contacts.readonly');
SELECT hlauth.tenant() AS tenant, hlauth.account() AS account;
SELECT t AS accessible FROM unnest(hlauth.accessible_tenants()) AS t ORDER BY t;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000001', 'c1000000-0000-0000-0000-000000000000', '*');
SELECT t AS accessible FROM unnest(hlauth.accessible_tenants()) AS t ORDER BY t;
COMMIT;
RESET ROLE;
-- The whole agency suspended, then reactivated
SELECT hlauth.suspend_tenant('c1000000-0000-0000-0000-000000000000');
SET ROLE regress_ctx_app;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000001', 'c1000000-0000-0000-0000-000000000000', '*');
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000012', 'c1200000-0000-0000-0000-000000000000', '*');
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000121', 'c1210000-0000-0000-0000-000000000000', '*');
RESET ROLE;
SELECT hlauth.reactivate_tenant('c1000000-0000-0000-0000-000000000000');
SET ROLE regress_ctx_app;
BEGIN;
SELECT hlauth.set_principal('cafe0000-0000-0000-0000-000000000121', 'c1210000-0000-0000-0000-000000000000', '*');
SELECT hlauth.tenant() AS tenant, hlauth.agency() AS agency, hlauth.account() AS account, hlauth.app() AS app;
COMMIT;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Catalog facts
-- ---------------------------------------------------------------------------
-- Accessors: STABLE, PARALLEL SAFE; the plain ones LEAKPROOF (require_scope raises, so it is not)
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args,
       p.provolatile, p.proparallel, p.proleakproof, p.proisstrict, p.prosecdef
  FROM pg_proc p
 WHERE p.pronamespace = 'hlauth'::regnamespace
   AND p.proname IN ('principal', 'tenant', 'tenant_kind', 'agency', 'account', 'app', 'auth_method',
                     'scopes', 'has_scope', 'require_scope', 'can_access', 'accessible_tenants',
                     'current_context', 'set_principal', 'clear')
   AND NOT (p.proname = 'scopes' AND p.pronargs > 0)
 ORDER BY p.proname;
-- set_principal is not executable by PUBLIC, only by hlauth_trusted
SELECT has_function_privilege('public', 'hlauth.set_principal(uuid, uuid, hlauth.scopes)', 'EXECUTE') AS public_exec,
       has_function_privilege('hlauth_trusted', 'hlauth.set_principal(uuid, uuid, hlauth.scopes)', 'EXECUTE') AS trusted_exec,
       has_function_privilege('regress_ctx_untrusted', 'hlauth.set_principal(uuid, uuid, hlauth.scopes)', 'EXECUTE') AS untrusted_exec,
       has_function_privilege('regress_ctx_app', 'hlauth.set_principal(uuid, uuid, hlauth.scopes)', 'EXECUTE') AS app_exec;
SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee, a.privilege_type
  FROM pg_proc p, aclexplode(p.proacl) a
 WHERE p.oid = 'hlauth.set_principal(uuid, uuid, hlauth.scopes)'::regprocedure
   AND a.grantee <> p.proowner
 ORDER BY 1, 2;
-- The context GUC is superuser-only and hidden
SELECT name, context, vartype FROM pg_settings WHERE name = 'hlauth.context';
SELECT current_setting('hlauth.context') AS outside_any_transaction;

-- Clean up
DROP FUNCTION public.regress_ctx_principal_as_other();
DROP TABLE ctx_all;
DROP ROLE regress_ctx_app;
DROP ROLE regress_ctx_other;
DROP ROLE regress_ctx_untrusted;
DROP ROLE regress_ctx_bypass;
