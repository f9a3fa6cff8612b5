-- rbac: the permission registry, platform and custom roles, allowances, grants, principals,
-- hlauth.effective_scopes() with its cache, and hlauth.attribute().
-- Attacks on the no-escalation rules are in test/pgtap/threats_rbac.sql.
\set VERBOSITY terse
\set SHOW_CONTEXT never
-- Roles are cluster-wide: start clean even after an interrupted run.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_rbac_app;
DROP ROLE IF EXISTS regress_rbac_admin;
RESET client_min_messages;
-- The app server's role (trusted, not superuser, no BYPASSRLS) and an admin role.
CREATE ROLE regress_rbac_app IN ROLE hlauth_trusted;
CREATE ROLE regress_rbac_admin IN ROLE hlauth_admin;

-- Every uuid of this file starts with 'b' (tenants) or 'beef' (principals); every
-- permission it registers lives under the resource crm/ (other suites share the database).
--   agency B1 -> account B11 -> app B111
--             -> account B12 -> app B121
--   agency B2 -> account B21
CREATE TABLE rb_names (id uuid PRIMARY KEY, name text UNIQUE NOT NULL);
INSERT INTO rb_names VALUES
	('b1000000-0000-4000-8000-000000000000', 'B1'), ('b1100000-0000-4000-8000-000000000000', 'B11'),
	('b1110000-0000-4000-8000-000000000000', 'B111'), ('b1200000-0000-4000-8000-000000000000', 'B12'),
	('b1210000-0000-4000-8000-000000000000', 'B121'), ('b2000000-0000-4000-8000-000000000000', 'B2'),
	('b2100000-0000-4000-8000-000000000000', 'B21'), ('b9000000-0000-4000-8000-000000000000', 'UNKNOWN'),
	('beef0000-0000-4000-8000-000000000001', 'P1'), ('beef0000-0000-4000-8000-000000000002', 'P2'),
	('beef0000-0000-4000-8000-000000000003', 'P3'), ('beef0000-0000-4000-8000-000000000004', 'P4'),
	('beef0000-0000-4000-8000-000000000005', 'P5'), ('beef0000-0000-4000-8000-000000000006', 'P6'),
	('beef0000-0000-4000-8000-000000000007', 'P7');
GRANT SELECT ON rb_names TO PUBLIC;
CREATE FUNCTION rb(n text) RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT id FROM rb_names WHERE name = n $$;
-- A principal's effective scopes at a tenant, as text, limited to this file's permissions.
CREATE FUNCTION rb_eff(p text, t text) RETURNS text LANGUAGE sql STABLE AS $$
	SELECT coalesce(string_agg(s, ' ' ORDER BY s COLLATE "C"), '')
	  FROM unnest(hlauth.scopes_to_array(hlauth.effective_scopes(rb(p), rb(t)))) s
	 WHERE s LIKE 'crm/%' OR s LIKE 'hlauth/%'
$$;
SELECT hlauth.create_tenant('agency', NULL, 'B1', rb('B1')) IS NOT NULL AS b1,
       hlauth.create_tenant('account', rb('B1'), 'B11', rb('B11')) IS NOT NULL AS b11,
       hlauth.create_tenant('app', rb('B11'), 'B111', rb('B111')) IS NOT NULL AS b111,
       hlauth.create_tenant('account', rb('B1'), 'B12', rb('B12')) IS NOT NULL AS b12,
       hlauth.create_tenant('app', rb('B12'), 'B121', rb('B121')) IS NOT NULL AS b121,
       hlauth.create_tenant('agency', NULL, 'B2', rb('B2')) IS NOT NULL AS b2,
       hlauth.create_tenant('account', rb('B2'), 'B21', rb('B21')) IS NOT NULL AS b21;

-- ---------------------------------------------------------------------------
-- The registry
-- ---------------------------------------------------------------------------
-- hlauth's own permissions come with the extension
SELECT scope, description, implies FROM hlauth.permissions WHERE scope LIKE 'hlauth/%' ORDER BY scope;
SELECT hlauth.register_permission('crm/contacts.readonly', 'read contacts');
SELECT hlauth.register_permission('crm/contacts.write', 'create and edit contacts', ARRAY['crm/contacts.readonly']);
SELECT hlauth.register_permission('crm/contacts.delete', 'delete contacts', ARRAY['crm/contacts.write']);
SELECT hlauth.register_permission('crm/deals.readonly', 'read deals');
SELECT hlauth.register_permission('crm/deals.write', 'edit deals', ARRAY['crm/deals.readonly', 'crm/deals.readonly']);
SELECT hlauth.register_permission('crm/calendars/events.readonly', 'read calendar events');
SELECT hlauth.register_permission('crm/calendars/events.write', 'edit calendar events', '{crm/calendars/events.readonly}');
-- upsert: a second registration replaces the description and the implications
SELECT hlauth.register_permission('crm/deals.readonly', 'read deals and their stages');
SELECT scope, description, implies FROM hlauth.permissions WHERE scope LIKE 'crm/%' ORDER BY scope COLLATE "C";
-- invalid scopes: 22P02 with the grammar's reason
SELECT hlauth.register_permission('crm/contacts..readonly', 'x');
SELECT hlauth.register_permission('crm/contacts.readonly.', 'x');
SELECT hlauth.register_permission('crm/contacts.read only', 'x');
SELECT hlauth.register_permission(E'crm/contacts.read\u00f6nly', 'x');
SELECT hlauth.register_permission('', 'x');
-- two valid scopes are not one permission
SELECT hlauth.register_permission('crm/contacts.readonly crm/deals.readonly', 'x');
-- wildcards are not permissions
SELECT hlauth.register_permission('crm/contacts.*', 'x');
SELECT hlauth.register_permission('crm/*', 'x');
SELECT hlauth.register_permission('*', 'x');
-- implications must be registered, and not the permission itself
SELECT hlauth.register_permission('crm/deals.delete', 'delete deals', ARRAY['crm/deals.archive']);
SELECT hlauth.register_permission('crm/deals.delete', 'delete deals', ARRAY['crm/deals.*']);
SELECT hlauth.register_permission('crm/deals.delete', 'delete deals', ARRAY['crm/deals.delete']);
SELECT hlauth.register_permission('crm/deals.delete', 'delete deals', ARRAY[NULL]::text[]);
SELECT hlauth.register_permission(NULL, 'x');
SELECT hlauth.register_permission('crm/deals.delete', NULL);
-- the hlauth/ resource is reserved
SELECT hlauth.register_permission('hlauth/grants.read', 'x');
SELECT count(*) AS refused_left_nothing FROM hlauth.permissions WHERE scope IN ('crm/deals.delete', 'hlauth/grants.read');
-- the table cannot hold a wildcard or a self-implication even if written directly
INSERT INTO hlauth.permissions VALUES ('crm/x.*', 'x');
INSERT INTO hlauth.permissions VALUES ('crm/x.y', 'x', '{crm/x.y}');

-- ---------------------------------------------------------------------------
-- Roles
-- ---------------------------------------------------------------------------
SELECT hlauth.create_role('rb viewer', 'crm/contacts.readonly', 'reads contacts') AS viewer \gset
SELECT hlauth.create_role('rb deals', 'crm/deals.write') AS deals \gset
SELECT hlauth.create_role('rb contacts all', 'crm/contacts.*') AS contacts_all \gset
SELECT hlauth.create_role('rb deleter', 'crm/contacts.delete') AS deleter \gset
SELECT hlauth.create_role('rb crm', 'crm/*') AS crm_all \gset
SELECT hlauth.create_role('rb granter', 'hlauth/grants.write crm/contacts.write') AS granter \gset
SELECT name, agency_id, scopes, description FROM hlauth.roles WHERE name LIKE 'rb %' ORDER BY name;
-- an unregistered scope is refused, named in the error
SELECT hlauth.create_role('rb bad', 'crm/contacts.readonly crm/contacts.archive');
-- look-alikes of registered scopes are unregistered scopes
SELECT hlauth.create_role('rb bad', 'Crm/contacts.readonly');
SELECT hlauth.create_role('rb bad', 'crm/Contacts.readonly');
SELECT hlauth.create_role('rb bad', 'crm/contacts.readonly_');
-- or not scopes at all
SELECT hlauth.create_role('rb bad', 'crm/contacts..readonly');
SELECT hlauth.create_role('rb bad', E'crm/contacts.r\u0435adonly');
-- a wildcard must cover at least one registered permission
SELECT hlauth.create_role('rb bad', 'crm/invoices.*');
SELECT hlauth.create_role('rb bad', 'crm/contacts/*');
-- names are unique on the platform
SELECT hlauth.create_role('rb viewer', 'crm/deals.readonly');
SELECT hlauth.create_role('', 'crm/deals.readonly');
SELECT hlauth.create_role(NULL, 'crm/deals.readonly');
SELECT count(*) AS bad_roles FROM hlauth.roles WHERE name IN ('rb bad', '');
-- a permission in use cannot be unregistered; nor one another implies; nor a built-in one
SELECT hlauth.unregister_permission('crm/contacts.readonly');
SELECT hlauth.unregister_permission('crm/deals.readonly');
SELECT hlauth.unregister_permission('hlauth/keys.write');
SELECT hlauth.unregister_permission('crm/nothing.here');
SELECT hlauth.register_permission('crm/contacts.export', 'export contacts');
SELECT hlauth.unregister_permission('crm/contacts.export');
SELECT count(*) AS export_gone FROM hlauth.permissions WHERE scope = 'crm/contacts.export';

-- ---------------------------------------------------------------------------
-- Agency custom roles and allowances
-- ---------------------------------------------------------------------------
-- Without an allowance an agency's custom roles may grant nothing
SELECT hlauth.create_role('rb b1 contacts', 'crm/contacts.write', NULL, rb('B1'));
SELECT hlauth.create_role('rb b1 nothing', '', NULL, rb('B1')) IS NOT NULL AS empty_custom_role;
SELECT hlauth.set_agency_allowance(rb('B1'), 'crm/contacts.* crm/deals.readonly');
SELECT hlauth.create_role('rb b1 contacts', 'crm/contacts.write', 'B1 contact editors', rb('B1')) AS b1_contacts \gset
-- beyond the allowance: 42501
SELECT hlauth.create_role('rb b1 deals', 'crm/deals.write', NULL, rb('B1'));
SELECT hlauth.create_role('rb b1 all', 'crm/*', NULL, rb('B1'));
-- custom roles belong to an agency, not an account; names are unique per agency
SELECT hlauth.create_role('rb b11 role', 'crm/contacts.readonly', NULL, rb('B11'));
SELECT hlauth.create_role('rb b1 contacts', 'crm/contacts.readonly', NULL, rb('B1'));
SELECT hlauth.set_agency_allowance(rb('B2'), 'crm/contacts.readonly');
SELECT hlauth.create_role('rb b1 contacts', 'crm/contacts.readonly', 'same name, other agency', rb('B2')) AS b2_contacts \gset
-- an allowance is validated like a role
SELECT hlauth.set_agency_allowance(rb('B1'), 'crm/contacts.* crm/deals.purge');
SELECT hlauth.set_agency_allowance(rb('B11'), 'crm/contacts.*');
SELECT r.name, n.name AS agency, r.scopes FROM hlauth.roles r JOIN rb_names n ON n.id = r.agency_id
 WHERE r.name LIKE 'rb %' ORDER BY n.name, r.name;

-- ---------------------------------------------------------------------------
-- Effective scopes: inheritance down the tree, never up or sideways
-- ---------------------------------------------------------------------------
-- P1: viewer at agency B1
SELECT hlauth.grant_role(rb('P1'), :'viewer', rb('B1')) IS NOT NULL AS granted;
SELECT n.name AS tenant, rb_eff('P1', n.name) AS p1
  FROM rb_names n WHERE n.name IN ('B1', 'B11', 'B111', 'B12', 'B121', 'B2', 'B21', 'UNKNOWN') ORDER BY n.name;
-- P2: deals at account B11 (deals.write implies deals.readonly)
SELECT hlauth.grant_role(rb('P2'), :'deals', rb('B11')) IS NOT NULL AS granted;
SELECT n.name AS tenant, rb_eff('P2', n.name) AS p2
  FROM rb_names n WHERE n.name IN ('B1', 'B11', 'B111', 'B12', 'B121', 'B2') ORDER BY n.name;
-- P3: grants at the agency, the account and the app add up
SELECT hlauth.grant_role(rb('P3'), :'viewer', rb('B1')) IS NOT NULL AS g1,
       hlauth.grant_role(rb('P3'), :'deals', rb('B12')) IS NOT NULL AS g2,
       hlauth.grant_role(rb('P3'), :'deleter', rb('B121')) IS NOT NULL AS g3;
SELECT n.name AS tenant, rb_eff('P3', n.name) AS p3
  FROM rb_names n WHERE n.name IN ('B1', 'B11', 'B12', 'B121') ORDER BY n.name;
-- Wildcards expand to the registered permissions they cover; implications are transitive
SELECT hlauth.grant_role(rb('P4'), :'contacts_all', rb('B21')) IS NOT NULL AS granted;
SELECT rb_eff('P4', 'B21') AS contacts_wildcard;
SELECT hlauth.grant_role(rb('P4'), :'crm_all', rb('B2')) IS NOT NULL AS granted;
SELECT rb_eff('P4', 'B2') AS crm_subtree, rb_eff('P4', 'B21') AS both_at_b21;
-- The result is a canonical set of concrete permissions
SELECT hlauth.effective_scopes(rb('P3'), rb('B121')) OPERATOR(hlauth.=) 'crm/contacts.write crm/contacts.readonly crm/deals.readonly crm/deals.write crm/contacts.delete'::hlauth.scopes AS canonical;
-- A principal without grants, or an unknown one, has none; NULL in, NULL out
SELECT rb_eff('P6', 'B1') AS none, hlauth.effective_scopes(NULL, rb('B1')) IS NULL AS null_principal,
       hlauth.effective_scopes(rb('P1'), NULL) IS NULL AS null_tenant;
-- A custom role counts within its agency, capped by the allowance
SELECT hlauth.grant_role(rb('P5'), :'b1_contacts', rb('B11')) IS NOT NULL AS granted;
SELECT rb_eff('P5', 'B11') AS custom_at_b11, rb_eff('P5', 'B1') AS custom_at_b1;
-- ... and only there: an admin cannot grant it in another agency either
SELECT hlauth.grant_role(rb('P5'), :'b1_contacts', rb('B21'));
SELECT hlauth.grant_role(rb('P5'), :'b2_contacts', rb('B11'));
-- A grant row written past the grant functions (a superuser's INSERT) still cannot carry a
-- custom role out of its agency; nor does a grant count once revoked
INSERT INTO hlauth.grants (principal, role_id, tenant_id) VALUES (rb('P5'), :'b1_contacts', rb('B21'));
INSERT INTO hlauth.grants (principal, role_id, tenant_id, revoked_at) VALUES (rb('P5'), :'viewer', rb('B21'), now());
SELECT rb_eff('P5', 'B21') AS foreign_custom_role_and_revoked_count_nothing;
DELETE FROM hlauth.grants WHERE principal = rb('P5') AND tenant_id = rb('B21');
-- grant_role input errors
SELECT hlauth.grant_role(rb('P5'), '00000000-0000-4000-8000-000000000000', rb('B11'));
SELECT hlauth.grant_role(rb('P5'), :'viewer', rb('UNKNOWN'));
SELECT hlauth.grant_role(NULL, :'viewer', rb('B11'));
SELECT hlauth.grant_role(rb('P5'), :'viewer', rb('B11'), now() + interval '1 day', now() + interval '2 days');

-- ---------------------------------------------------------------------------
-- A principal with more grants than a backend keeps with it (over 256) is read per
-- tenant: the same answers. P8 is a viewer at 300 accounts of agency B3, has deals at the
-- agency and a deleter grant at one account; P9 holds the same at that account and the
-- agency only, few enough to be kept.
-- ---------------------------------------------------------------------------
INSERT INTO rb_names VALUES ('b3000000-0000-4000-8000-000000000000', 'B3'),
	('beef0000-0000-4000-8000-000000000008', 'P8'), ('beef0000-0000-4000-8000-000000000009', 'P9');
INSERT INTO rb_names
	SELECT ('b3' || lpad(to_hex(i), 6, '0') || '-0000-4000-8000-000000000000')::uuid, 'B3-' || i
	  FROM generate_series(1, 300) i;
SELECT hlauth.create_tenant('agency', NULL, 'B3', rb('B3')) IS NOT NULL AS b3;
SELECT count(hlauth.create_tenant('account', rb('B3'), name, id)) AS b3_accounts
  FROM rb_names WHERE name LIKE 'B3-%';
SELECT count(hlauth.grant_role(rb('P8'), :'viewer', id)) AS p8_viewer_grants
  FROM rb_names WHERE name LIKE 'B3-%';
SELECT hlauth.grant_role(rb('P8'), :'deals', rb('B3')) IS NOT NULL AS p8_deals,
       hlauth.grant_role(rb('P8'), :'deleter', rb('B3-150')) IS NOT NULL AS p8_deleter,
       hlauth.grant_role(rb('P9'), :'viewer', rb('B3-150')) IS NOT NULL AS p9_viewer,
       hlauth.grant_role(rb('P9'), :'deals', rb('B3')) IS NOT NULL AS p9_deals,
       hlauth.grant_role(rb('P9'), :'deleter', rb('B3-150')) IS NOT NULL AS p9_deleter;
SELECT rb_eff('P8', 'B3-150') AS p8_at_150, rb_eff('P8', 'B3-7') AS p8_at_7, rb_eff('P8', 'B3') AS p8_at_b3,
       rb_eff('P8', 'B21') AS p8_elsewhere;
SELECT rb_eff('P8', 'B3-150') = rb_eff('P9', 'B3-150') AS same_as_kept,
       rb_eff('P8', 'B3') = rb_eff('P9', 'B3') AS same_as_kept_at_agency;
-- and a revoked one of the many stops counting at once
SELECT hlauth.revoke_grant(id) FROM hlauth.grants
 WHERE principal = rb('P8') AND tenant_id = rb('B3-7') AND revoked_at IS NULL;
SELECT rb_eff('P8', 'B3-7') AS p8_at_7_revoked, rb_eff('P8', 'B3-8') AS p8_at_8;

-- ---------------------------------------------------------------------------
-- Time-bound grants
-- ---------------------------------------------------------------------------
SELECT hlauth.grant_role(rb('P6'), :'viewer', rb('B11'), valid_until => now() - interval '1 hour') IS NOT NULL AS expired,
       hlauth.grant_role(rb('P6'), :'deals', rb('B11'), valid_from => now() + interval '1 hour') IS NOT NULL AS not_yet,
       hlauth.grant_role(rb('P6'), :'deleter', rb('B12'), now() + interval '1 hour', now() - interval '1 hour') IS NOT NULL AS current;
SELECT rb_eff('P6', 'B11') AS expired_and_future_count_nothing, rb_eff('P6', 'B12') AS current_window;
-- A grant that ends, and one that starts, in three seconds: the cached answer expires with them
SELECT hlauth.grant_role(rb('P6'), :'viewer', rb('B21'), valid_until => clock_timestamp() + interval '3 seconds') IS NOT NULL AS ends_soon,
       hlauth.grant_role(rb('P6'), :'deals', rb('B21'), valid_from => clock_timestamp() + interval '3 seconds') IS NOT NULL AS starts_soon;
SELECT rb_eff('P6', 'B21') AS before;
SELECT rb_eff('P6', 'B21') AS before_cached;
SELECT pg_sleep(3.2);
SELECT rb_eff('P6', 'B21') AS after;

-- ---------------------------------------------------------------------------
-- Every change is visible at once, in this session's next statement
-- ---------------------------------------------------------------------------
SELECT rb_eff('P2', 'B11') AS p2_before;
-- a revoked grant no longer counts
SELECT id AS p2_grant FROM hlauth.grants WHERE principal = rb('P2') \gset
SELECT hlauth.revoke_grant(:'p2_grant');
SELECT rb_eff('P2', 'B11') AS p2_after_revoke, rb_eff('P2', 'B111') AS p2_app_after_revoke;
SELECT hlauth.revoke_grant(:'p2_grant');
SELECT hlauth.revoke_grant('00000000-0000-4000-8000-000000000000');
-- a new grant counts at once
SELECT hlauth.grant_role(rb('P2'), :'viewer', rb('B111')) AS p2_grant2 \gset
SELECT rb_eff('P2', 'B111') AS p2_after_grant;
-- changing a role's scopes changes every grant of it
SELECT rb_eff('P1', 'B11') AS p1_before;
SELECT hlauth.alter_role_scopes(:'viewer', 'crm/contacts.readonly crm/calendars/events.readonly');
SELECT rb_eff('P1', 'B11') AS p1_role_widened, rb_eff('P2', 'B111') AS p2_role_widened;
SELECT hlauth.alter_role_scopes(:'viewer', 'crm/contacts.readonly crm/calendars/nothing.readonly');
SELECT hlauth.alter_role_scopes(:'viewer', 'crm/contacts.readonly');
SELECT rb_eff('P1', 'B11') AS p1_role_narrowed;
-- shrinking the allowance shrinks custom-role grants
SELECT rb_eff('P5', 'B11') AS p5_before;
SELECT hlauth.set_agency_allowance(rb('B1'), 'crm/contacts.readonly crm/deals.readonly');
SELECT rb_eff('P5', 'B11') AS p5_allowance_shrunk;
SELECT hlauth.set_agency_allowance(rb('B1'), NULL);
SELECT rb_eff('P5', 'B11') AS p5_no_allowance;
SELECT hlauth.set_agency_allowance(rb('B1'), 'crm/contacts.* crm/deals.readonly');
SELECT rb_eff('P5', 'B11') AS p5_allowance_back;
-- registering a permission widens the wildcards that cover it
SELECT hlauth.grant_role(rb('P7'), :'contacts_all', rb('B111')) IS NOT NULL AS granted;
SELECT rb_eff('P7', 'B111') AS p7_before;
SELECT hlauth.register_permission('crm/contacts.export', 'export contacts');
SELECT rb_eff('P7', 'B111') AS p7_after_register;
-- and a new implication applies at once, and goes when it is taken back
SELECT hlauth.register_permission('crm/contacts.export', 'export contacts', ARRAY['crm/deals.readonly']);
SELECT rb_eff('P7', 'B111') AS p7_after_implication;
SELECT hlauth.register_permission('crm/contacts.export', 'export contacts');
SELECT rb_eff('P7', 'B111') AS p7_implication_gone;
-- a suspended principal has nothing, a reactivated one has its grants back
SELECT hlauth.suspend_principal(rb('P3'));
SELECT rb_eff('P3', 'B121') AS p3_suspended;
SELECT hlauth.reactivate_principal(rb('P3'));
SELECT rb_eff('P3', 'B121') AS p3_reactivated;
-- a rolled-back change leaves nothing behind, and a change inside a transaction is seen there
BEGIN;
SELECT hlauth.revoke_grant(:'p2_grant2');
SELECT rb_eff('P2', 'B111') AS inside_after_revoke;
ROLLBACK;
SELECT rb_eff('P2', 'B111') AS after_rollback;
BEGIN;
SELECT hlauth.grant_role(rb('P2'), :'deals', rb('B111')) IS NOT NULL AS granted;
SELECT rb_eff('P2', 'B111') AS inside_after_grant;
SAVEPOINT s;
SELECT hlauth.suspend_principal(rb('P2'));
SELECT rb_eff('P2', 'B111') AS suspended_in_savepoint;
ROLLBACK TO SAVEPOINT s;
SELECT rb_eff('P2', 'B111') AS after_savepoint_rollback;
ROLLBACK;
SELECT rb_eff('P2', 'B111') AS after_rollback2;
-- a suspended tenant: no effective scopes there or beneath it
SELECT hlauth.suspend_tenant(rb('B12'));
SELECT rb_eff('P3', 'B12') AS suspended_account, rb_eff('P3', 'B121') AS beneath_it, rb_eff('P3', 'B1') AS above_it;
SELECT hlauth.reactivate_tenant(rb('B12'));
SELECT rb_eff('P3', 'B121') AS reactivated;

-- ---------------------------------------------------------------------------
-- Dropping roles
-- ---------------------------------------------------------------------------
SELECT hlauth.drop_role(:'deleter');
SELECT hlauth.create_role('rb temp', 'crm/deals.readonly') AS temp \gset
SELECT hlauth.grant_role(rb('P6'), :'temp', rb('B2')) AS temp_grant \gset
SELECT hlauth.revoke_grant(:'temp_grant');
SELECT hlauth.drop_role(:'temp');
SELECT count(*) AS temp_left, (SELECT count(*) FROM hlauth.grants WHERE id = :'temp_grant') AS its_grants_left
  FROM hlauth.roles WHERE name = 'rb temp';
SELECT hlauth.drop_role('00000000-0000-4000-8000-000000000000');

-- ---------------------------------------------------------------------------
-- Principals and set_principal
-- ---------------------------------------------------------------------------
SELECT hlauth.upsert_principal(rb('P1'), '{"region": "emea", "level": 3, "teams": ["a", "b"]}');
SELECT hlauth.upsert_principal(rb('P2'), '{"region": "apac"}');
SELECT hlauth.upsert_principal(rb('P2'), '[1, 2]');
SELECT hlauth.upsert_principal(rb('P2'), NULL);
SELECT n.name, p.status, p.attributes FROM hlauth.principals p JOIN rb_names n ON n.id = p.id ORDER BY n.name;
SET ROLE regress_rbac_app;
-- No context: no attributes
SELECT hlauth.attribute('region') AS no_context;
-- set_principal keeps only what the principal holds at that tenant
BEGIN;
SELECT hlauth.set_principal(rb('P1'), rb('B11'), 'crm/contacts.* crm/deals.readonly');
SELECT hlauth.scopes() AS p1_context_scopes;
SELECT hlauth.attribute('region') AS region, hlauth.attribute('level') AS level,
       hlauth.attribute('teams') AS teams, hlauth.attribute('missing') AS missing,
       hlauth.attribute(NULL) AS null_name;
-- hlauth_trusted may read anyone's effective scopes (it could set any principal anyway)
SELECT rb_eff('P4', 'B21') AS trusted_reads_any;
COMMIT;
-- attributes follow the context, and a change is seen at once
BEGIN;
SELECT hlauth.set_principal(rb('P2'), rb('B111'), 'crm/contacts.readonly');
SELECT hlauth.attribute('region') AS p2_region;
COMMIT;
RESET ROLE;
SELECT hlauth.upsert_principal(rb('P2'), '{"region": "amer"}');
SET ROLE regress_rbac_app;
BEGIN;
SELECT hlauth.set_principal(rb('P2'), rb('B111'), 'crm/contacts.readonly');
SELECT hlauth.attribute('region') AS p2_region_changed;
COMMIT;
RESET ROLE;
-- A suspended principal cannot be set
SELECT hlauth.suspend_principal(rb('P2'));
SET ROLE regress_rbac_app;
SELECT hlauth.set_principal(rb('P2'), rb('B111'), 'crm/contacts.readonly');
RESET ROLE;
SELECT hlauth.reactivate_principal(rb('P2'));
-- set_principal answers a repeat (the same principal, tenant and scopes) from a memo with
-- the tenant's reach embedded in the context: every change still shows in the next
-- transaction, and a change of the tenant tree at once
CREATE FUNCTION rb_ctx() RETURNS text LANGUAGE sql STABLE AS $$
	SELECT coalesce(hlauth.scopes()::text, '-') || ' | reach: ' ||
	       coalesce((SELECT string_agg(n.name, ',' ORDER BY n.name) FROM rb_names n
	                  WHERE n.id = ANY (hlauth.accessible_tenants('account'))), '')
$$;
CREATE FUNCTION rb_suspend_directly(t text) RETURNS void LANGUAGE sql SECURITY DEFINER AS $$
	UPDATE hlauth.tenants SET status = 'suspended' WHERE id = rb(t)
$$;
GRANT EXECUTE ON FUNCTION rb_suspend_directly(text) TO regress_rbac_app;
SET ROLE regress_rbac_app;
BEGIN;
SELECT hlauth.set_principal(rb('P6'), rb('B12'), 'crm/contacts.* crm/deals.readonly');
SELECT rb_ctx() AS first;
COMMIT;
BEGIN;
SELECT hlauth.set_principal(rb('P6'), rb('B12'), 'crm/contacts.* crm/deals.readonly');
SELECT rb_ctx() AS repeat;
COMMIT;
RESET ROLE;
SELECT hlauth.grant_role(rb('P6'), :'deals', rb('B1')) AS p6_deals \gset
SET ROLE regress_rbac_app;
BEGIN;
SELECT hlauth.set_principal(rb('P6'), rb('B12'), 'crm/contacts.* crm/deals.readonly');
SELECT rb_ctx() AS after_a_grant;
COMMIT;
RESET ROLE;
SELECT hlauth.revoke_grant(:'p6_deals');
SELECT hlauth.suspend_principal(rb('P6'));
SET ROLE regress_rbac_app;
SELECT hlauth.set_principal(rb('P6'), rb('B12'), 'crm/contacts.* crm/deals.readonly');
RESET ROLE;
SELECT hlauth.reactivate_principal(rb('P6'));
SELECT hlauth.suspend_tenant(rb('B1'));
SET ROLE regress_rbac_app;
SELECT hlauth.set_principal(rb('P6'), rb('B12'), 'crm/contacts.* crm/deals.readonly');
RESET ROLE;
SELECT hlauth.reactivate_tenant(rb('B1'));
SET ROLE regress_rbac_app;
BEGIN;
SELECT hlauth.set_principal(rb('P6'), rb('B12'), 'crm/contacts.* crm/deals.readonly');
SELECT rb_ctx() AS after_revoke_and_reactivations;
COMMIT;
BEGIN;
SELECT hlauth.set_principal(rb('P6'), rb('B12'), 'crm/contacts.* crm/deals.readonly');
SELECT rb_ctx() AS repeat_from_the_memo;
-- (a role change would end the context: the tenant is suspended through a function)
SELECT rb_suspend_directly('B12');
SELECT rb_ctx() AS tenant_suspended_in_this_transaction;
ROLLBACK;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- ABAC: a policy combining a scope with an attribute (docs/concepts.md)
-- ---------------------------------------------------------------------------
CREATE TABLE rb_deals (account_id uuid NOT NULL, id int NOT NULL, region text NOT NULL, title text,
	PRIMARY KEY (account_id, id));
INSERT INTO rb_deals VALUES
	(rb('B11'), 1, 'emea', 'B11 emea deal'), (rb('B11'), 2, 'apac', 'B11 apac deal'),
	(rb('B11'), 3, 'emea', 'B11 second emea deal'), (rb('B12'), 1, 'emea', 'B12 emea deal');
-- Restrictive: rows of the principal's own region only (on top of hlauth's tenant policy)
CREATE POLICY rb_deals_region ON rb_deals AS RESTRICTIVE FOR SELECT
	USING (region = (SELECT hlauth.attribute('region') #>> '{}'));
SELECT hlauth.protect('rb_deals', read_scope => 'crm/deals.readonly');
GRANT SELECT ON rb_deals TO regress_rbac_app;
SELECT hlauth.grant_role(rb('P1'), :'deals', rb('B11')) IS NOT NULL AS p1_deals,
       hlauth.grant_role(rb('P2'), :'deals', rb('B1')) IS NOT NULL AS p2_deals;
SET ROLE regress_rbac_app;
BEGIN;
SELECT hlauth.set_principal(rb('P1'), rb('B11'), 'crm/deals.readonly');
SELECT title FROM rb_deals ORDER BY account_id, id;
COMMIT;
BEGIN;
-- P2 (region amer) at the agency: no amer deals
SELECT hlauth.set_principal(rb('P2'), rb('B1'), 'crm/deals.readonly');
SELECT count(*) AS p2_rows FROM rb_deals;
COMMIT;
BEGIN;
-- P1 asks for contacts only: no deals scope, no rows
SELECT hlauth.set_principal(rb('P1'), rb('B11'), 'crm/contacts.readonly');
SELECT count(*) AS p1_without_scope FROM rb_deals;
COMMIT;
RESET ROLE;
SELECT hlauth.upsert_principal(rb('P2'), '{"region": "emea"}');
SET ROLE regress_rbac_app;
BEGIN;
SELECT hlauth.set_principal(rb('P2'), rb('B1'), 'crm/deals.readonly');
SELECT title FROM rb_deals ORDER BY account_id, id;
COMMIT;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Privileges: admin functions need hlauth_admin; tables are read-only for everyone
-- ---------------------------------------------------------------------------
SET ROLE regress_rbac_app;
SELECT hlauth.register_permission('crm/x.y', 'x');
SELECT hlauth.create_role('rb app role', 'crm/deals.readonly');
SELECT hlauth.grant_role(rb('P6'), :'viewer', rb('B1'));
SELECT hlauth.set_agency_allowance(rb('B1'), '');
SELECT hlauth.suspend_principal(rb('P1'));
SELECT count(*) > 0 AS reads_registry FROM hlauth.permissions;
SELECT count(*) AS reads_no_grants_without_context FROM hlauth.grants;
SELECT count(*) AS reads_no_principals FROM hlauth.principals;
INSERT INTO hlauth.grants (principal, role_id, tenant_id) VALUES (rb('P6'), :'viewer', rb('B1'));
RESET ROLE;
SET ROLE regress_rbac_admin;
SELECT hlauth.register_permission('crm/admin.check', 'registered by an hlauth_admin member');
SELECT hlauth.unregister_permission('crm/admin.check');
SELECT count(*) > 0 AS admin_reads_grants FROM hlauth.grants WHERE tenant_id = rb('B1');
SELECT count(*) AS admin_reads_principals FROM hlauth.principals WHERE id::text LIKE 'beef%';
UPDATE hlauth.roles SET scopes = '*' WHERE name = 'rb viewer';
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Clean up what other suites could trip over (tenants stay: there is no delete function)
-- ---------------------------------------------------------------------------
DROP TABLE rb_deals;
