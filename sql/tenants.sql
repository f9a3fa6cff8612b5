-- tenants: the tenant tree (agency -> account -> app), its shape rules, suspension, privileges.
\set VERBOSITY terse
\set SHOW_CONTEXT never
-- Roles are cluster-wide: start clean even after an interrupted run.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_ten_plain;
DROP ROLE IF EXISTS regress_ten_admin;
RESET client_min_messages;
CREATE ROLE regress_ten_plain;
CREATE ROLE regress_ten_admin IN ROLE hlauth_admin;

-- Every uuid of this file starts with 'e'; other suites share the database.
-- ---------------------------------------------------------------------------
-- create_tenant for each kind
-- ---------------------------------------------------------------------------
SELECT hlauth.create_tenant('agency', NULL, 'Agency E1', 'e1000000-0000-0000-0000-000000000000') AS agency;
SELECT hlauth.create_tenant('account', 'e1000000-0000-0000-0000-000000000000', 'Account E1-1',
                            'e1100000-0000-0000-0000-000000000000') AS account;
SELECT hlauth.create_tenant('app', 'e1100000-0000-0000-0000-000000000000', 'App E1-1-1',
                            'e1110000-0000-0000-0000-000000000000') AS app;
SELECT hlauth.create_tenant('account', 'e1000000-0000-0000-0000-000000000000', 'Account E1-2',
                            'e1200000-0000-0000-0000-000000000000') AS account2;
SELECT hlauth.create_tenant(kind => 'agency', name => 'Agency E2', id => 'e2000000-0000-0000-0000-000000000000') AS named_args;
-- Without an id, a random one is generated
SELECT hlauth.create_tenant('agency', name => 'regress_ten random') IS NOT NULL AS generated;
SELECT kind, parent, status, name, created_at IS NOT NULL AS has_created_at
  FROM hlauth.tenants WHERE name = 'regress_ten random';
-- (its id is random: remove it, so that no listing below can catch it by its id's prefix)
DELETE FROM hlauth.tenants WHERE name = 'regress_ten random';
SELECT id, kind, parent, status, name
  FROM hlauth.tenants WHERE id::text LIKE 'e%' AND name IS DISTINCT FROM 'regress_ten random' ORDER BY id;

-- ---------------------------------------------------------------------------
-- Shape errors
-- ---------------------------------------------------------------------------
-- an account under an account, an account under an app
SELECT hlauth.create_tenant('account', 'e1100000-0000-0000-0000-000000000000', 'bad', 'e1f00000-0000-0000-0000-000000000001');
SELECT hlauth.create_tenant('account', 'e1110000-0000-0000-0000-000000000000', 'bad', 'e1f00000-0000-0000-0000-000000000002');
-- an app under an agency, an app under an app
SELECT hlauth.create_tenant('app', 'e1000000-0000-0000-0000-000000000000', 'bad', 'e1f00000-0000-0000-0000-000000000003');
SELECT hlauth.create_tenant('app', 'e1110000-0000-0000-0000-000000000000', 'bad', 'e1f00000-0000-0000-0000-000000000004');
-- an agency with a parent
SELECT hlauth.create_tenant('agency', 'e1000000-0000-0000-0000-000000000000', 'bad', 'e1f00000-0000-0000-0000-000000000005');
-- an account or an app with an unknown parent, or none
SELECT hlauth.create_tenant('account', 'e9999999-0000-0000-0000-000000000000', 'bad', 'e1f00000-0000-0000-0000-000000000006');
SELECT hlauth.create_tenant('app', 'e9999999-0000-0000-0000-000000000000', 'bad', 'e1f00000-0000-0000-0000-000000000007');
SELECT hlauth.create_tenant('account', NULL, 'bad', 'e1f00000-0000-0000-0000-000000000008');
-- an unknown kind, a NULL kind
SELECT hlauth.create_tenant('tenant', 'e1000000-0000-0000-0000-000000000000', 'bad', 'e1f00000-0000-0000-0000-000000000009');
SELECT hlauth.create_tenant('Agency', NULL, 'bad', 'e1f00000-0000-0000-0000-00000000000a');
SELECT hlauth.create_tenant(NULL, NULL, 'bad', 'e1f00000-0000-0000-0000-00000000000b');
-- a duplicate id
SELECT hlauth.create_tenant('agency', NULL, 'dup', 'e1000000-0000-0000-0000-000000000000');
-- nothing of the above was created
SELECT count(*) AS bad_rows FROM hlauth.tenants WHERE id::text LIKE 'e1f%' OR name IN ('bad', 'dup');

-- The kind and the id never change; a parent change must keep the shape
UPDATE hlauth.tenants SET kind = 'agency', parent = NULL WHERE id = 'e1100000-0000-0000-0000-000000000000';
UPDATE hlauth.tenants SET kind = 'account' WHERE id = 'e2000000-0000-0000-0000-000000000000';
UPDATE hlauth.tenants SET id = 'e1300000-0000-0000-0000-000000000000' WHERE id = 'e1200000-0000-0000-0000-000000000000';
UPDATE hlauth.tenants SET parent = 'e1200000-0000-0000-0000-000000000000' WHERE id = 'e1200000-0000-0000-0000-000000000000';
UPDATE hlauth.tenants SET parent = 'e1000000-0000-0000-0000-000000000000' WHERE id = 'e1110000-0000-0000-0000-000000000000';
UPDATE hlauth.tenants SET parent = NULL WHERE id = 'e1100000-0000-0000-0000-000000000000';
\set VERBOSITY default
UPDATE hlauth.tenants SET kind = 'app' WHERE id = 'e1200000-0000-0000-0000-000000000000';
\set VERBOSITY terse
-- A tenant with children cannot be deleted from under them
DELETE FROM hlauth.tenants WHERE id = 'e1000000-0000-0000-0000-000000000000';
SELECT id, kind, parent, status FROM hlauth.tenants WHERE id::text LIKE 'e%' AND name IS DISTINCT FROM 'regress_ten random' ORDER BY id;

-- ---------------------------------------------------------------------------
-- suspend_tenant / reactivate_tenant
-- ---------------------------------------------------------------------------
SELECT hlauth.suspend_tenant('e1100000-0000-0000-0000-000000000000');
SELECT id, status FROM hlauth.tenants WHERE id::text LIKE 'e1%' ORDER BY id;
-- suspending twice is harmless
SELECT hlauth.suspend_tenant('e1100000-0000-0000-0000-000000000000');
SELECT hlauth.reactivate_tenant('e1100000-0000-0000-0000-000000000000');
SELECT hlauth.reactivate_tenant('e1100000-0000-0000-0000-000000000000');
SELECT hlauth.suspend_tenant('e2000000-0000-0000-0000-000000000000');
SELECT id, status FROM hlauth.tenants WHERE id::text LIKE 'e%' AND name IS DISTINCT FROM 'regress_ten random' ORDER BY id;
-- unknown tenants
SELECT hlauth.suspend_tenant('e9999999-0000-0000-0000-000000000000');
SELECT hlauth.reactivate_tenant('e9999999-0000-0000-0000-000000000000');
\set VERBOSITY default
SELECT hlauth.suspend_tenant('e9999999-0000-0000-0000-000000000000');
\set VERBOSITY terse
-- the status column accepts only active and suspended
UPDATE hlauth.tenants SET status = 'deleted' WHERE id = 'e2000000-0000-0000-0000-000000000000';
SELECT hlauth.reactivate_tenant('e2000000-0000-0000-0000-000000000000');

-- ---------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------
-- A plain role can do none of it
SET ROLE regress_ten_plain;
SELECT hlauth.create_tenant('agency', NULL, 'plain', 'e3000000-0000-0000-0000-000000000000');
SELECT hlauth.suspend_tenant('e1000000-0000-0000-0000-000000000000');
SELECT hlauth.reactivate_tenant('e1000000-0000-0000-0000-000000000000');
SELECT * FROM hlauth.tenants;
SELECT count(*) FROM hlauth.tenants;
INSERT INTO hlauth.tenants (id, kind) VALUES ('e3000000-0000-0000-0000-000000000000', 'agency');
UPDATE hlauth.tenants SET status = 'suspended';
DELETE FROM hlauth.tenants;
SELECT hlauth_internal.set_tenant_status('e1000000-0000-0000-0000-000000000000', 'suspended');
SELECT hlauth_internal.tenants_check_shape();
RESET ROLE;
-- An hlauth_admin member manages tenants and reads the table, but writes only through the API
SET ROLE regress_ten_admin;
SELECT hlauth.create_tenant('account', 'e2000000-0000-0000-0000-000000000000', 'Account E2-1',
                            'e2100000-0000-0000-0000-000000000000') AS by_admin;
SELECT hlauth.suspend_tenant('e2100000-0000-0000-0000-000000000000');
SELECT id, kind, parent, status, name FROM hlauth.tenants WHERE id::text LIKE 'e2%' ORDER BY id;
SELECT hlauth.reactivate_tenant('e2100000-0000-0000-0000-000000000000');
UPDATE hlauth.tenants SET status = 'suspended' WHERE id = 'e2100000-0000-0000-0000-000000000000';
INSERT INTO hlauth.tenants (id, kind) VALUES ('e3000000-0000-0000-0000-000000000000', 'agency');
SELECT hlauth_internal.set_tenant_status('e2100000-0000-0000-0000-000000000000', 'suspended');
RESET ROLE;
SELECT id, status FROM hlauth.tenants WHERE id::text LIKE 'e2%' ORDER BY id;

-- Catalog facts: the API is SECURITY DEFINER with a pinned search_path, and not for PUBLIC
SELECT p.oid::regprocedure AS function, p.prosecdef, p.proconfig,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute,
       has_function_privilege('hlauth_admin', p.oid, 'EXECUTE') AS admin_can_execute
  FROM pg_proc p
 WHERE p.oid IN ('hlauth.create_tenant(text, uuid, text, uuid)'::regprocedure,
                 'hlauth.suspend_tenant(uuid)'::regprocedure,
                 'hlauth.reactivate_tenant(uuid)'::regprocedure,
                 'hlauth_internal.set_tenant_status(uuid, text)'::regprocedure)
 ORDER BY p.oid::regprocedure::text;
SELECT has_table_privilege('public', 'hlauth.tenants', 'SELECT') AS public_select,
       has_table_privilege('hlauth_admin', 'hlauth.tenants', 'SELECT') AS admin_select,
       has_table_privilege('hlauth_admin', 'hlauth.tenants', 'INSERT, UPDATE, DELETE, TRUNCATE') AS admin_write;
SELECT c.relrowsecurity, c.relforcerowsecurity FROM pg_class c WHERE c.oid = 'hlauth.tenants'::regclass;
SELECT conname, pg_get_constraintdef(oid) AS def
  FROM pg_constraint WHERE conrelid = 'hlauth.tenants'::regclass ORDER BY conname;

-- Clean up the roles (the tenant rows stay in this throwaway database)
DROP ROLE regress_ten_plain;
DROP ROLE regress_ten_admin;
