-- protect: hlauth.protect() puts a tenant table under row-level security, and keeps it there.
\set VERBOSITY terse
\set SHOW_CONTEXT never
-- Roles are cluster-wide: start clean even after an interrupted run.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_prot_app;
DROP ROLE IF EXISTS regress_prot_admin;
DROP ROLE IF EXISTS regress_prot_admin_owner;
DROP ROLE IF EXISTS regress_prot_owner;
RESET client_min_messages;
-- owns the tables; neither superuser nor hlauth_admin
CREATE ROLE regress_prot_owner;
-- the app server: trusted to set principals, owns nothing
CREATE ROLE regress_prot_app IN ROLE hlauth_trusted;
-- an hlauth_admin that does not own the tables, and one that does (through membership)
CREATE ROLE regress_prot_admin IN ROLE hlauth_admin;
CREATE ROLE regress_prot_admin_owner IN ROLE hlauth_admin, regress_prot_owner;

-- ---------------------------------------------------------------------------
-- Tenants (every uuid of this file starts with 'd'):
--   agency d1 with accounts d1000001 .. d1000100 (d1000100 suspended), app d1000001/a001
--   agency d2 with accounts d2000001 .. d2000100
-- ---------------------------------------------------------------------------
SELECT hlauth.create_tenant('agency', NULL, 'D1', 'd1000000-0000-0000-0000-000000000000') AS d1;
SELECT hlauth.create_tenant('agency', NULL, 'D2', 'd2000000-0000-0000-0000-000000000000') AS d2;
SELECT count(hlauth.create_tenant('account', ('d' || a || '000000-0000-0000-0000-000000000000')::uuid, 'D' || a || '-' || g,
                                  ('d' || a || lpad(g::text, 6, '0') || '-0000-0000-0000-000000000000')::uuid)) AS accounts
  FROM generate_series(1, 2) a, generate_series(1, 100) g;
SELECT hlauth.create_tenant('app', 'd1000001-0000-0000-0000-000000000000', 'D1-1 app', 'd1000001-0000-0000-0000-00000000a001') AS app;
SELECT hlauth.suspend_tenant('d1000100-0000-0000-0000-000000000000');

-- Permissions, one role and its grants (issue #3): set_principal() keeps only the asked
-- scopes the principal holds through its grants, so each principal of this file holds every
-- permission the file names at the agency it acts under. A wildcard asked for (contacts.*,
-- deals.*, *) yields the registered permissions it covers.
SELECT count(*) AS registered
  FROM unnest(ARRAY['contacts.read', 'contacts.write', 'deals.read', 'deals.write']) AS s,
       LATERAL hlauth.register_permission(s, 'regress protect: ' || s) AS r;
SELECT hlauth.create_role('regress prot all', 'contacts.read contacts.write deals.read deals.write') AS prot_role \gset
SELECT count(hlauth.grant_role(p::uuid, :'prot_role', a::uuid)) AS grants
  FROM (VALUES ('dafe0000-0000-0000-0000-000000000001', 'd1000000-0000-0000-0000-000000000000'),
               ('dafe0000-0000-0000-0000-000000000002', 'd1000000-0000-0000-0000-000000000000'),
               ('dafe0000-0000-0000-0000-000000000003', 'd2000000-0000-0000-0000-000000000000'),
               ('dafe0000-0000-0000-0000-000000000004', 'd1000000-0000-0000-0000-000000000000')) AS g(p, a);

-- ---------------------------------------------------------------------------
-- The contacts table: 20000 rows, 100 in each of the 200 accounts
-- ---------------------------------------------------------------------------
CREATE TABLE contacts (
	id bigint NOT NULL,
	account_id uuid NOT NULL,
	name text,
	email text,
	PRIMARY KEY (account_id, id)
) WITH (autovacuum_enabled = off);
INSERT INTO contacts
SELECT g, ('d' || (g % 2 + 1) || lpad((g / 2 % 100 + 1)::text, 6, '0') || '-0000-0000-0000-000000000000')::uuid,
       'contact ' || g, 'c' || g || '@example.com'
  FROM generate_series(1, 20000) g;
-- ids 200, 400, ... belong to d1000001; id 2 to d1000002 (same agency); id 1 to d2000001
SELECT count(*) AS accounts, sum(n) AS rows, min(n) AS min_per_account, max(n) AS max_per_account
  FROM (SELECT account_id, count(*) AS n FROM contacts GROUP BY account_id) AS per_account;
SELECT id, account_id FROM contacts WHERE id IN (1, 2, 200, 400) ORDER BY id;
VACUUM ANALYZE contacts;
ALTER TABLE contacts OWNER TO regress_prot_owner;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON contacts TO regress_prot_app;

-- The owner protects its table (no hlauth_admin needed the first time)
SET ROLE regress_prot_owner;
SELECT hlauth.protect('contacts');
RESET ROLE;

-- RLS enabled and forced, four policies, the tenant column default, two triggers, registered
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'contacts'::regclass;
SELECT policyname, permissive, roles, cmd, qual, with_check
  FROM pg_policies WHERE schemaname = 'public' AND tablename = 'contacts' ORDER BY policyname;
SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) AS default_expr
  FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
 WHERE d.adrelid = 'contacts'::regclass;
SELECT tgname, tgenabled, pg_get_triggerdef(oid) AS def
  FROM pg_trigger WHERE tgrelid = 'contacts'::regclass AND NOT tgisinternal ORDER BY tgname;
SELECT relid, tenant_column, tenant_kind, read_scope, write_scope,
       fingerprint = hlauth_internal.protection_fingerprint(relid) AS fingerprint_current
  FROM hlauth_internal.protected_tables ORDER BY relid::text;

-- Idempotent: a second identical call only says so
SET ROLE regress_prot_owner;
SELECT hlauth.protect('contacts');
SELECT hlauth.protect('contacts', 'account_id', NULL, NULL, 'account');
RESET ROLE;
SELECT count(*) AS policies FROM pg_policies WHERE tablename = 'contacts';

-- ---------------------------------------------------------------------------
-- Argument errors
-- ---------------------------------------------------------------------------
CREATE TABLE prot_nocol (id bigint, tenant uuid);
CREATE TABLE prot_text (id bigint, account_id text);
CREATE VIEW prot_view AS SELECT id, account_id FROM contacts;
CREATE SEQUENCE prot_seq;
CREATE TABLE prot_ok (id bigint, account_id uuid, PRIMARY KEY (account_id, id));
SELECT hlauth.protect('prot_nocol');
SELECT hlauth.protect('prot_nocol', 'no_such_column');
SELECT hlauth.protect('prot_text');
SELECT hlauth.protect('prot_view');
SELECT hlauth.protect('prot_seq');
SELECT hlauth.protect('no_such_table');
SELECT hlauth.protect('prot_ok', read_scope => 'contacts..read');
SELECT hlauth.protect('prot_ok', read_scope => 'contacts.read contacts.write');
SELECT hlauth.protect('prot_ok', read_scope => '');
-- (the last letter is a Cyrillic 'е', U+0435)
SELECT hlauth.protect('prot_ok', write_scope => 'Contacts.writе');
SELECT hlauth.protect('prot_ok', write_scope => 'a.x b.x');
SELECT hlauth.protect('prot_ok', tenant_kind => 'tenant');
\set VERBOSITY default
SELECT hlauth.protect('prot_text');
\set VERBOSITY terse
-- none of these changed anything
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
 WHERE relname IN ('prot_nocol', 'prot_text', 'prot_ok') ORDER BY relname;
SELECT count(*) AS policies FROM pg_policies WHERE tablename IN ('prot_nocol', 'prot_text', 'prot_ok');
SELECT relid FROM hlauth_internal.protected_tables ORDER BY relid::text;
-- Only the owner may protect a table
SET ROLE regress_prot_app;
SELECT hlauth.protect('prot_ok');
RESET ROLE;
DROP TABLE prot_nocol, prot_text, prot_ok;
DROP VIEW prot_view;
DROP SEQUENCE prot_seq;

-- ---------------------------------------------------------------------------
-- Warnings: no index leading with the tenant column; a unique index without it
-- ---------------------------------------------------------------------------
CREATE TABLE prot_noidx (id bigint, account_id uuid);
CREATE INDEX prot_noidx_id_account_idx ON prot_noidx (id, account_id);
SELECT hlauth.protect('prot_noidx');
CREATE TABLE prot_uniq (id bigint, account_id uuid, email text, PRIMARY KEY (account_id, id), UNIQUE (email));
SELECT hlauth.protect('prot_uniq');
CREATE TABLE prot_both (id bigint PRIMARY KEY, account_id uuid);
SELECT hlauth.protect('prot_both');
-- warned, but protected all the same
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
 WHERE relname IN ('prot_noidx', 'prot_uniq', 'prot_both') ORDER BY relname;
DROP TABLE prot_noidx, prot_uniq, prot_both;
SELECT relid FROM hlauth_internal.protected_tables ORDER BY relid::text;

-- ---------------------------------------------------------------------------
-- The app role with no principal: nothing to read, no write
-- ---------------------------------------------------------------------------
SET ROLE regress_prot_app;
SELECT count(*) AS visible FROM contacts;
SELECT * FROM contacts WHERE id = 1;
INSERT INTO contacts (id, account_id, name) VALUES (900001, 'd1000001-0000-0000-0000-000000000000', 'x');
INSERT INTO contacts (id, name) VALUES (900001, 'x');
UPDATE contacts SET name = 'x';
DELETE FROM contacts;
COPY contacts (id, account_id, name) FROM STDIN;
900001	d1000001-0000-0000-0000-000000000000	x
\.
\set VERBOSITY default
DELETE FROM contacts WHERE id = 1;
\set VERBOSITY terse

-- ---------------------------------------------------------------------------
-- An account principal sees and writes only its own rows
-- ---------------------------------------------------------------------------
BEGIN;
SELECT hlauth.set_principal('dafe0000-0000-0000-0000-000000000001', 'd1000001-0000-0000-0000-000000000000', 'contacts.*');
SELECT count(*) AS visible, count(DISTINCT account_id) AS accounts, min(account_id::text) AS account FROM contacts;
SELECT count(*) AS other_tenant FROM contacts WHERE account_id = 'd2000001-0000-0000-0000-000000000000';
SELECT id, account_id, name FROM contacts WHERE id IN (1, 2, 200, 400) ORDER BY id;
-- the default fills the tenant column
INSERT INTO contacts (id, name) VALUES (900001, 'new one') RETURNING id, account_id, name;
-- writing into another tenant fails, whether it is the same agency's or another's
SAVEPOINT s;
INSERT INTO contacts (id, account_id, name) VALUES (900002, 'd1000002-0000-0000-0000-000000000000', 'x');
ROLLBACK TO SAVEPOINT s;
INSERT INTO contacts (id, account_id, name) VALUES (900002, 'd2000001-0000-0000-0000-000000000000', 'x');
ROLLBACK TO SAVEPOINT s;
-- moving a row into another tenant fails
UPDATE contacts SET account_id = 'd2000001-0000-0000-0000-000000000000' WHERE id = 900001;
ROLLBACK TO SAVEPOINT s;
UPDATE contacts SET account_id = 'd1000002-0000-0000-0000-000000000000' WHERE id = 200;
ROLLBACK TO SAVEPOINT s;
-- other tenants' rows are out of reach: 0 rows updated or deleted
WITH u AS (UPDATE contacts SET name = 'hijacked' WHERE account_id <> 'd1000001-0000-0000-0000-000000000000' RETURNING 1)
SELECT count(*) AS updated_elsewhere FROM u;
WITH u AS (UPDATE contacts SET name = 'hijacked' WHERE id IN (1, 2) RETURNING 1)
SELECT count(*) AS updated_rows_1_2 FROM u;
WITH d AS (DELETE FROM contacts WHERE id IN (1, 2, 3) RETURNING 1)
SELECT count(*) AS deleted_elsewhere FROM d;
-- its own rows are writable
WITH u AS (UPDATE contacts SET name = 'renamed' WHERE id IN (200, 900001) RETURNING id)
SELECT count(*) AS updated_own FROM u;
WITH d AS (DELETE FROM contacts WHERE id = 900001 RETURNING id)
SELECT count(*) AS deleted_own FROM d;
-- TRUNCATE ignores row-level security: refused
TRUNCATE contacts;
ROLLBACK;

-- An agency principal sees its active accounts' rows (99 x 100), none of the other agency's
BEGIN;
SELECT hlauth.set_principal('dafe0000-0000-0000-0000-000000000002', 'd1000000-0000-0000-0000-000000000000', '*');
SELECT count(*) AS visible, count(DISTINCT account_id) AS accounts FROM contacts;
SELECT count(*) AS other_agency FROM contacts WHERE account_id::text LIKE 'd2%';
SELECT count(*) AS suspended_account FROM contacts WHERE account_id = 'd1000100-0000-0000-0000-000000000000';
-- it may write into any of its accounts
INSERT INTO contacts (id, account_id, name) VALUES (900003, 'd1000002-0000-0000-0000-000000000000', 'by agency')
RETURNING id, account_id;
SAVEPOINT s;
-- an agency has no account of its own: the default is NULL
INSERT INTO contacts (id, name) VALUES (900004, 'x');
ROLLBACK TO SAVEPOINT s;
INSERT INTO contacts (id, account_id, name) VALUES (900004, 'd2000002-0000-0000-0000-000000000000', 'x');
ROLLBACK TO SAVEPOINT s;
INSERT INTO contacts (id, account_id, name) VALUES (900004, 'd1000100-0000-0000-0000-000000000000', 'x');
ROLLBACK TO SAVEPOINT s;
WITH u AS (UPDATE contacts SET name = 'hijacked' WHERE account_id::text LIKE 'd2%' RETURNING 1)
SELECT count(*) AS updated_other_agency FROM u;
ROLLBACK;

-- The other agency sees exactly its own 100 x 100
BEGIN;
SELECT hlauth.set_principal('dafe0000-0000-0000-0000-000000000003', 'd2000000-0000-0000-0000-000000000000', '*');
SELECT count(*) AS visible, count(DISTINCT account_id) AS accounts, bool_and(account_id::text LIKE 'd2%') AS all_own FROM contacts;
COMMIT;

-- An app principal acts on its account's rows
BEGIN;
SELECT hlauth.set_principal('dafe0000-0000-0000-0000-000000000004', 'd1000001-0000-0000-0000-00000000a001', 'contacts.*');
SELECT count(*) AS visible, min(account_id::text) AS account FROM contacts;
INSERT INTO contacts (id, name) VALUES (900005, 'by app') RETURNING id, account_id;
ROLLBACK;

-- After the transaction, nothing is visible again
SELECT count(*) AS visible FROM contacts;

-- ---------------------------------------------------------------------------
-- EXPLAIN: the tenant check is an index condition (required)
-- ---------------------------------------------------------------------------
BEGIN;
SELECT hlauth.set_principal('dafe0000-0000-0000-0000-000000000001', 'd1000001-0000-0000-0000-000000000000', 'contacts.*');
EXPLAIN (COSTS OFF) SELECT * FROM contacts WHERE id = 4242;
EXPLAIN (COSTS OFF) SELECT count(*) FROM contacts;
SELECT id, account_id FROM contacts WHERE id IN (1, 2, 200) ORDER BY id;
SELECT count(*) FROM contacts;
COMMIT;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- read_scope and write_scope
-- ---------------------------------------------------------------------------
CREATE TABLE deals (id bigint NOT NULL, account_id uuid NOT NULL, amount int, PRIMARY KEY (account_id, id));
INSERT INTO deals VALUES
	(1, 'd1000001-0000-0000-0000-000000000000', 10), (2, 'd1000001-0000-0000-0000-000000000000', 20),
	(3, 'd1000002-0000-0000-0000-000000000000', 30), (4, 'd2000001-0000-0000-0000-000000000000', 40);
ALTER TABLE deals OWNER TO regress_prot_owner;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON deals TO regress_prot_app, regress_prot_admin;
SET ROLE regress_prot_owner;
SELECT hlauth.protect('deals', read_scope => 'deals.read', write_scope => 'deals.write');
RESET ROLE;
SELECT policyname, cmd, qual, with_check FROM pg_policies WHERE tablename = 'deals' ORDER BY policyname;
SELECT tgname, pg_get_triggerdef(oid) AS def FROM pg_trigger WHERE tgrelid = 'deals'::regclass AND NOT tgisinternal ORDER BY tgname;
SELECT relid, tenant_column, tenant_kind, read_scope, write_scope FROM hlauth_internal.protected_tables ORDER BY relid::text;
SET ROLE regress_prot_app;
-- no deals scope: nothing visible, no write (the principal holds deals.read and deals.write,
-- but asked only for contacts.*)
BEGIN;
SELECT hlauth.set_principal('dafe0000-0000-0000-0000-000000000001', 'd1000001-0000-0000-0000-000000000000', 'contacts.*');
SELECT count(*) AS visible FROM deals;
INSERT INTO deals (id, amount) VALUES (5, 50);
ROLLBACK;
-- read scope only: visible, not writable (42501 from the trigger, even for 0-row statements)
BEGIN;
SELECT hlauth.set_principal('dafe0000-0000-0000-0000-000000000001', 'd1000001-0000-0000-0000-000000000000', 'deals.read');
SELECT id, account_id, amount FROM deals ORDER BY id;
SAVEPOINT s;
INSERT INTO deals (id, amount) VALUES (5, 50);
ROLLBACK TO SAVEPOINT s;
UPDATE deals SET amount = 0 WHERE id = 1;
ROLLBACK TO SAVEPOINT s;
DELETE FROM deals WHERE id = 999;
ROLLBACK TO SAVEPOINT s;
\set VERBOSITY default
DELETE FROM deals;
\set VERBOSITY terse
ROLLBACK;
-- write scope only: may insert, but sees nothing (and so updates nothing)
BEGIN;
SELECT hlauth.set_principal('dafe0000-0000-0000-0000-000000000001', 'd1000001-0000-0000-0000-000000000000', 'deals.write');
SELECT count(*) AS visible FROM deals;
INSERT INTO deals (id, amount) VALUES (5, 50);
WITH u AS (UPDATE deals SET amount = 0 WHERE id = 1 RETURNING 1) SELECT count(*) AS updated FROM u;
ROLLBACK;
-- both, through a wildcard
BEGIN;
SELECT hlauth.set_principal('dafe0000-0000-0000-0000-000000000001', 'd1000001-0000-0000-0000-000000000000', 'deals.*');
INSERT INTO deals (id, amount) VALUES (5, 50) RETURNING id, account_id, amount;
WITH u AS (UPDATE deals SET amount = amount + 1 RETURNING id) SELECT count(*) AS updated FROM u;
SELECT id, account_id, amount FROM deals ORDER BY id;
-- scopes are case-sensitive (Deals.* covers none of the principal's permissions, so the
-- context gets no scope)
SELECT hlauth.set_principal('dafe0000-0000-0000-0000-000000000001', 'd1000001-0000-0000-0000-000000000000', 'Deals.*');
SELECT count(*) AS visible_with_wrong_case FROM deals;
ROLLBACK;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- TRUNCATE: only hlauth_admin (or a superuser)
-- ---------------------------------------------------------------------------
SET ROLE regress_prot_owner;
TRUNCATE deals;
RESET ROLE;
SET ROLE regress_prot_admin;
BEGIN;
TRUNCATE deals;
ROLLBACK;
RESET ROLE;
SELECT count(*) AS deals_rows FROM deals;

-- ---------------------------------------------------------------------------
-- The owner cannot weaken the protection (42501 from the DDL guard) ...
-- ---------------------------------------------------------------------------
SET ROLE regress_prot_owner;
ALTER TABLE contacts NO FORCE ROW LEVEL SECURITY;
ALTER TABLE contacts DISABLE ROW LEVEL SECURITY;
DROP POLICY hlauth_select ON contacts;
ALTER POLICY hlauth_select ON contacts USING (true);
ALTER POLICY hlauth_select ON contacts TO regress_prot_owner;
ALTER POLICY hlauth_update ON contacts WITH CHECK (true);
ALTER POLICY hlauth_insert ON contacts RENAME TO my_insert;
CREATE POLICY open_door ON contacts FOR SELECT USING (true);
CREATE POLICY open_door ON contacts AS PERMISSIVE FOR ALL TO regress_prot_app USING (true) WITH CHECK (true);
ALTER TABLE contacts DISABLE TRIGGER hlauth_require_context;
ALTER TABLE contacts DISABLE TRIGGER hlauth_no_truncate;
ALTER TABLE contacts DISABLE TRIGGER ALL;
ALTER TABLE contacts DISABLE TRIGGER USER;
ALTER TABLE contacts ENABLE REPLICA TRIGGER hlauth_require_context;
DROP TRIGGER hlauth_no_truncate ON contacts;
DROP TRIGGER hlauth_require_context ON contacts;
-- nor through hlauth's own helpers
SELECT hlauth_internal.drop_protection_objects('contacts');
SELECT hlauth_internal.unregister_protection('contacts');
SELECT hlauth_internal.accept_protection_change('contacts');
\set VERBOSITY default
ALTER TABLE contacts DISABLE ROW LEVEL SECURITY;
\set VERBOSITY terse
-- ... nor change its parameters, nor remove it
SELECT hlauth.protect('contacts', read_scope => 'contacts.read');
SELECT hlauth.protect('contacts', tenant_kind => 'agency');
SELECT hlauth.unprotect('contacts');
-- ... nor add a policy of its own, even a RESTRICTIVE one: the planner orders policy
-- quals by cost, so a cheap function of the owner's could see every row before hlauth's
CREATE POLICY only_named ON contacts AS RESTRICTIVE FOR SELECT USING (name LIKE 'contact 1%');
RESET ROLE;
-- everything is as protect() left it
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'contacts'::regclass;
SELECT policyname, permissive, roles, cmd FROM pg_policies WHERE tablename = 'contacts' ORDER BY policyname;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'contacts'::regclass AND NOT tgisinternal ORDER BY tgname;
SELECT relid, fingerprint = hlauth_internal.protection_fingerprint(relid) AS fingerprint_current
  FROM hlauth_internal.protected_tables ORDER BY relid::text;
-- an hlauth_admin (here the superuser) may add a restrictive policy: it narrows what the
-- tenant sees, and the guard records the change with a warning
CREATE POLICY only_named ON contacts AS RESTRICTIVE FOR SELECT USING (name LIKE 'contact 1%');
SET ROLE regress_prot_app;
BEGIN;
SELECT hlauth.set_principal('dafe0000-0000-0000-0000-000000000001', 'd1000001-0000-0000-0000-000000000000', 'contacts.*');
SELECT count(*) AS visible_with_restrictive FROM contacts;
COMMIT;
RESET ROLE;
SET ROLE regress_prot_owner;
DROP POLICY only_named ON contacts;
RESET ROLE;
DROP POLICY only_named ON contacts;
-- the app role cannot remove the protection either
SET ROLE regress_prot_app;
SELECT hlauth.unprotect('contacts');
SELECT hlauth.unprotect('deals');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- A PERMISSIVE policy that predates protect() would OR with hlauth's and open the table:
-- protect() must either refuse such a table or leave it isolated
-- ---------------------------------------------------------------------------
CREATE TABLE prot_legacy (id bigint, account_id uuid, PRIMARY KEY (account_id, id));
INSERT INTO prot_legacy VALUES (1, 'd1000001-0000-0000-0000-000000000000'), (2, 'd2000001-0000-0000-0000-000000000000');
ALTER TABLE prot_legacy OWNER TO regress_prot_owner;
GRANT SELECT ON prot_legacy TO regress_prot_app;
SET ROLE regress_prot_owner;
CREATE POLICY legacy_read_all ON prot_legacy FOR SELECT USING (true);
DO $$
BEGIN
	PERFORM hlauth.protect('prot_legacy');
EXCEPTION WHEN OTHERS THEN
	NULL;	-- refusing is a correct answer; the check below covers both outcomes
END
$$;
RESET ROLE;
SET ROLE regress_prot_app;
BEGIN;
SELECT hlauth.set_principal('dafe0000-0000-0000-0000-000000000001', 'd1000001-0000-0000-0000-000000000000', '*');
SELECT NOT EXISTS (SELECT 1 FROM hlauth_internal.protected_tables WHERE relid = 'prot_legacy'::regclass)
       OR NOT EXISTS (SELECT 1 FROM prot_legacy WHERE account_id <> 'd1000001-0000-0000-0000-000000000000')
       AS refused_or_isolated;
COMMIT;
RESET ROLE;
DROP TABLE prot_legacy;

-- ---------------------------------------------------------------------------
-- A partitioned table: its partitions are tables too, and must not be a way around
-- ---------------------------------------------------------------------------
CREATE TABLE prot_parted (id bigint, account_id uuid NOT NULL, PRIMARY KEY (account_id, id)) PARTITION BY HASH (account_id);
CREATE TABLE prot_parted_0 PARTITION OF prot_parted FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE prot_parted_1 PARTITION OF prot_parted FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO prot_parted VALUES
	(1, 'd1000001-0000-0000-0000-000000000000'), (2, 'd1000001-0000-0000-0000-000000000000'),
	(3, 'd1000002-0000-0000-0000-000000000000'), (4, 'd2000001-0000-0000-0000-000000000000');
ALTER TABLE prot_parted OWNER TO regress_prot_owner;
ALTER TABLE prot_parted_0 OWNER TO regress_prot_owner;
ALTER TABLE prot_parted_1 OWNER TO regress_prot_owner;
GRANT SELECT ON prot_parted, prot_parted_0, prot_parted_1 TO regress_prot_app;
SET ROLE regress_prot_owner;
SELECT hlauth.protect('prot_parted');
RESET ROLE;
SET ROLE regress_prot_app;
-- no principal: nothing through the parent, nor through a partition
SELECT count(*) AS via_parent FROM prot_parted;
SELECT count(*) AS via_partitions FROM (SELECT id FROM prot_parted_0 UNION ALL SELECT id FROM prot_parted_1) AS p;
BEGIN;
SELECT hlauth.set_principal('dafe0000-0000-0000-0000-000000000001', 'd1000001-0000-0000-0000-000000000000', '*');
SELECT id, account_id FROM prot_parted ORDER BY id;
SELECT count(*) FILTER (WHERE account_id = 'd1000001-0000-0000-0000-000000000000') AS own_via_partitions,
       count(*) FILTER (WHERE account_id <> 'd1000001-0000-0000-0000-000000000000') AS others_via_partitions
  FROM (SELECT account_id FROM prot_parted_0 UNION ALL SELECT account_id FROM prot_parted_1) AS p;
COMMIT;
RESET ROLE;
DROP TABLE prot_parted;

-- ---------------------------------------------------------------------------
-- hlauth_admin may change and remove the protection
-- ---------------------------------------------------------------------------
-- an admin that also owns the table (through membership) changes the parameters
SET ROLE regress_prot_admin_owner;
SELECT hlauth.protect('deals', read_scope => 'deals.read', write_scope => 'deals.*');
SELECT relid, read_scope, write_scope FROM hlauth_internal.protected_tables ORDER BY relid::text;
SELECT policyname, qual, with_check FROM pg_policies WHERE tablename = 'deals' ORDER BY policyname;
-- a change by hand is accepted, with a warning
ALTER POLICY hlauth_select ON deals USING ((account_id = ANY (hlauth.accessible_tenants())) AND hlauth.has_scope('deals.*'));
SELECT relid, fingerprint = hlauth_internal.protection_fingerprint(relid) AS fingerprint_current
  FROM hlauth_internal.protected_tables ORDER BY relid::text;
-- and removes it
SELECT hlauth.unprotect('deals');
SELECT hlauth.unprotect('deals');
RESET ROLE;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'deals'::regclass;
SELECT count(*) AS policies FROM pg_policies WHERE tablename = 'deals';
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'deals'::regclass AND NOT tgisinternal;
SELECT count(*) AS defaults FROM pg_attrdef WHERE adrelid = 'deals'::regclass;
SELECT relid FROM hlauth_internal.protected_tables ORDER BY relid::text;
-- once unprotected, the owner may do as it likes again
SET ROLE regress_prot_owner;
CREATE POLICY open_door ON deals FOR SELECT USING (true);
DROP POLICY open_door ON deals;
RESET ROLE;
-- an hlauth_admin that does not own the table may remove its protection too
SET ROLE regress_prot_admin;
SELECT hlauth.unprotect('contacts');
RESET ROLE;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'contacts'::regclass;
SELECT count(*) AS policies FROM pg_policies WHERE tablename = 'contacts';
SELECT relid FROM hlauth_internal.protected_tables ORDER BY relid::text;

-- ---------------------------------------------------------------------------
-- Clean up
-- ---------------------------------------------------------------------------
DROP TABLE contacts, deals;
SELECT count(*) AS registered FROM hlauth_internal.protected_tables;
DROP OWNED BY regress_prot_app, regress_prot_admin, regress_prot_admin_owner, regress_prot_owner;
DROP ROLE regress_prot_app;
DROP ROLE regress_prot_admin;
DROP ROLE regress_prot_admin_owner;
DROP ROLE regress_prot_owner;
