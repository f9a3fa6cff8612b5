-- protect() compares the tenant column with the accessible tenants of the column's kind only:
-- an agency or app principal cannot file rows under its own id in an account_id column.
\set VERBOSITY terse
DO $$ BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_kinds_app') THEN
		CREATE ROLE regress_kinds_app;
	END IF;
END $$;
GRANT hlauth_trusted TO regress_kinds_app;
SELECT hlauth.create_tenant('agency', NULL, 'k-agency', 'f0000000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('account', 'f0000000-0000-0000-0000-000000000000', 'k-acct-1', 'f1000000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('account', 'f0000000-0000-0000-0000-000000000000', 'k-acct-2', 'f2000000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('app', 'f1000000-0000-0000-0000-000000000000', 'k-app-1', 'f1100000-0000-0000-0000-000000000000');
-- set_principal() keeps only the asked scopes the principal holds through its grants
-- (issue #3): every principal of this file holds contacts.readonly and contacts.write at the
-- agency. (The grants and the role go before the tenants at the end.)
SELECT count(*) AS registered
  FROM unnest(ARRAY['contacts.readonly', 'contacts.write']) AS s,
       LATERAL hlauth.register_permission(s, 'regress protect_kinds: ' || s) AS r;
SELECT hlauth.create_role('regress kinds all', 'contacts.readonly contacts.write') AS kinds_role \gset
SELECT count(hlauth.grant_role(p::uuid, :'kinds_role', 'f0000000-0000-0000-0000-000000000000')) AS grants
  FROM unnest(ARRAY['f9000000-0000-0000-0000-000000000001', 'f9000000-0000-0000-0000-000000000002',
                    'f9000000-0000-0000-0000-000000000003']) AS p;

CREATE TABLE kinds_notes (id int, account_id uuid NOT NULL, body text, PRIMARY KEY (account_id, id));
CREATE TABLE kinds_app_state (id int, app_id uuid NOT NULL, v text, PRIMARY KEY (app_id, id));
SELECT hlauth.protect('kinds_notes');
SELECT hlauth.protect('kinds_app_state', 'app_id', tenant_kind => 'app');
SELECT hlauth.protect('kinds_notes', tenant_kind => 'tenant');
GRANT SELECT, INSERT, UPDATE, DELETE ON kinds_notes, kinds_app_state TO regress_kinds_app;
INSERT INTO kinds_notes VALUES (1, 'f1000000-0000-0000-0000-000000000000', 'acct 1'),
	(2, 'f2000000-0000-0000-0000-000000000000', 'acct 2');
INSERT INTO kinds_app_state VALUES (1, 'f1100000-0000-0000-0000-000000000000', 'app 1');

SET ROLE regress_kinds_app;
-- agency principal: accounts of its agency, never its own id in an account_id column
BEGIN;
SELECT hlauth.set_principal('f9000000-0000-0000-0000-000000000001', 'f0000000-0000-0000-0000-000000000000', '');
SELECT hlauth.accessible_tenants('account') AS accounts, hlauth.accessible_tenants('agency') AS agencies,
	hlauth.accessible_tenants('app') AS apps, hlauth.accessible_tenants('nonsense') AS unknown_kind;
SELECT id, body FROM kinds_notes ORDER BY id;
INSERT INTO kinds_notes VALUES (3, 'f0000000-0000-0000-0000-000000000000', 'filed under the agency');
ROLLBACK;
-- app principal: its account's rows; the app id is not an account
BEGIN;
SELECT hlauth.set_principal('f9000000-0000-0000-0000-000000000002', 'f1100000-0000-0000-0000-000000000000', '');
SELECT hlauth.accessible_tenants('account') AS accounts, hlauth.accessible_tenants('app') AS apps;
SELECT id, body FROM kinds_notes ORDER BY id;
SELECT id, v FROM kinds_app_state ORDER BY id;
INSERT INTO kinds_notes (id, body) VALUES (4, 'default is the app''s account') RETURNING account_id;
INSERT INTO kinds_notes VALUES (5, 'f1100000-0000-0000-0000-000000000000', 'filed under the app');
ROLLBACK;
-- account principal: sees its app's state through the app_id column, not the other account's
BEGIN;
SELECT hlauth.set_principal('f9000000-0000-0000-0000-000000000003', 'f2000000-0000-0000-0000-000000000000', '');
SELECT id, body FROM kinds_notes ORDER BY id;
SELECT count(*) AS app_rows_seen FROM kinds_app_state;
ROLLBACK;
-- require_scope(NULL): refused without a principal, and with one
SELECT hlauth.require_scope(NULL);
BEGIN;
SELECT hlauth.set_principal('f9000000-0000-0000-0000-000000000003', 'f2000000-0000-0000-0000-000000000000', 'contacts.*');
-- (a principal with scopes: contacts.* yields the two it holds)
SELECT hlauth.scopes() AS scopes;
SELECT hlauth.require_scope(NULL);
ROLLBACK;
RESET ROLE;

-- set_principal remembers a role that passed its role checks; revoking hlauth_trusted or
-- granting BYPASSRLS afterwards must be seen at once, in the same session. A C alias (which
-- a superuser made, and which skips the EXECUTE grant) shows the C-side check itself.
RESET ROLE;
CREATE FUNCTION kinds_set(uuid, uuid, hlauth.scopes) RETURNS void LANGUAGE c AS '$libdir/hlauth', 'hlauth_set_principal';
SET ROLE regress_kinds_app;
BEGIN;
SELECT kinds_set('f9000000-0000-0000-0000-000000000003', 'f2000000-0000-0000-0000-000000000000', '');
SELECT hlauth.tenant();
ROLLBACK;
RESET ROLE;
REVOKE hlauth_trusted FROM regress_kinds_app;
SET ROLE regress_kinds_app;
SELECT kinds_set('f9000000-0000-0000-0000-000000000003', 'f2000000-0000-0000-0000-000000000000', '');
RESET ROLE;
GRANT hlauth_trusted TO regress_kinds_app;
ALTER ROLE regress_kinds_app BYPASSRLS;
SET ROLE regress_kinds_app;
SELECT kinds_set('f9000000-0000-0000-0000-000000000003', 'f2000000-0000-0000-0000-000000000000', '');
RESET ROLE;
ALTER ROLE regress_kinds_app NOBYPASSRLS;
DROP FUNCTION kinds_set(uuid, uuid, hlauth.scopes);

DROP TABLE kinds_notes, kinds_app_state;
-- Grants refer to the tenants: revoke them; drop_role() takes the revoked grants with it.
SELECT count(hlauth.revoke_grant(g.id)) AS revoked FROM hlauth.grants g WHERE g.role_id = :'kinds_role';
SELECT hlauth.drop_role(:'kinds_role');
DELETE FROM hlauth.tenants WHERE kind = 'app' AND id = 'f1100000-0000-0000-0000-000000000000';
DELETE FROM hlauth.tenants WHERE kind = 'account' AND parent = 'f0000000-0000-0000-0000-000000000000';
DELETE FROM hlauth.tenants WHERE id = 'f0000000-0000-0000-0000-000000000000';
REVOKE hlauth_trusted FROM regress_kinds_app;
DROP ROLE regress_kinds_app;
