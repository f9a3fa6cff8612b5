-- replica_mode: session_replication_role = replica skips every trigger that is simply
-- enabled: the write and truncate guards of protected tables, the audit triggers, the
-- security events of hlauth's tables, and event triggers. PostgreSQL 15 lets a superuser
-- GRANT SET on it to any role; a twentieth red-team pass showed what that gave a table
-- owner (row-level security off, an open policy, the audit trigger disabled, every
-- tenant's rows truncated) and an application role (writes and revocations nobody
-- recorded). In a session of a non-superuser, hlauth's event triggers now fire in replica
-- mode too, set_principal refuses in it, and so do writes, COPY FROM and TRUNCATE of the
-- tables hlauth guards or audits and of hlauth's own tables.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS rm CASCADE;
DROP ROLE IF EXISTS regress_rm_owner;
DROP ROLE IF EXISTS regress_rm_app;
RESET client_min_messages;
CREATE ROLE regress_rm_owner;
CREATE ROLE regress_rm_app IN ROLE hlauth_trusted;
GRANT SET ON PARAMETER session_replication_role TO regress_rm_owner, regress_rm_app;
CREATE SCHEMA rm AUTHORIZATION regress_rm_owner;
GRANT USAGE ON SCHEMA rm TO regress_rm_app;
SELECT hlauth.create_tenant('agency', NULL, 'RM', 'e7000000-0000-0000-0000-000000000000') IS NOT NULL AS agency;
SELECT hlauth.create_tenant('account', 'e7000000-0000-0000-0000-000000000000', 'RM A', 'e7100000-0000-0000-0000-000000000000') IS NOT NULL AS a;
SELECT hlauth.create_tenant('account', 'e7000000-0000-0000-0000-000000000000', 'RM B', 'e7200000-0000-0000-0000-000000000000') IS NOT NULL AS b;
SET ROLE regress_rm_owner;
CREATE TABLE rm.notes (id int NOT NULL, account_id uuid NOT NULL, body text);
CREATE INDEX ON rm.notes (account_id, id);
SELECT hlauth.protect('rm.notes');
-- an audited table that is not protected
CREATE TABLE rm.log (id int PRIMARY KEY, body text);
GRANT SELECT, INSERT, UPDATE, DELETE ON rm.notes, rm.log TO regress_rm_app;
RESET ROLE;
SELECT hlauth.audit('rm.log');
-- a manager at RM A (may grant roles there)
SELECT hlauth.grant_role('e7a00000-0000-0000-0000-00000000000f', hlauth.create_role('rm manager', 'hlauth/grants.write'),
                         'e7100000-0000-0000-0000-000000000000') IS NOT NULL AS manager;
SELECT hlauth.grant_role('e7a00000-0000-0000-0000-000000000001', hlauth.create_role('rm nobody', ''),
                         'e7100000-0000-0000-0000-000000000000') AS grant_id \gset
INSERT INTO rm.notes VALUES (1, 'e7100000-0000-0000-0000-000000000000', 'A-row'), (2, 'e7200000-0000-0000-0000-000000000000', 'B-row');

-- the owner, in replica mode: the DDL guards fire all the same
SET ROLE regress_rm_owner;
SET session_replication_role = replica;
ALTER TABLE rm.notes NO FORCE ROW LEVEL SECURITY;
CREATE POLICY hlauth_open ON rm.notes AS PERMISSIVE FOR ALL USING (true) WITH CHECK (true);
ALTER TABLE rm.notes DISABLE TRIGGER hlauth_require_context;
CREATE TRIGGER spy BEFORE INSERT ON rm.notes FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
-- ... and TRUNCATE, which ignores row-level security, is refused (the truncate guard is a
-- trigger, which replica mode skips)
TRUNCATE rm.notes;
TRUNCATE rm.log;
COPY rm.log FROM '/dev/null';
RESET session_replication_role;
RESET ROLE;
SELECT relrowsecurity, relforcerowsecurity,
       (SELECT count(*) FROM pg_policy WHERE polrelid = 'rm.notes'::regclass) AS policies,
       (SELECT string_agg(tgname || ':' || tgenabled::text, ', ' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'rm.notes'::regclass) AS triggers,
       (SELECT count(*) FROM rm.notes) AS rows
  FROM pg_class WHERE oid = 'rm.notes'::regclass;

-- ... nor by switching to replica mode in the middle of the statement (a twenty-first
-- red-team pass: a trigger of the owner's on a table listed first switched it, and the
-- TRUNCATE removed every tenant's rows): hlauth's triggers fire in every mode
SET ROLE regress_rm_owner;
CREATE TABLE rm.decoy (x int);
CREATE FUNCTION rm.flip() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN PERFORM set_config('session_replication_role', 'replica', true); RETURN NULL; END$$;
CREATE TRIGGER a_flip BEFORE TRUNCATE ON rm.decoy FOR EACH STATEMENT EXECUTE FUNCTION rm.flip();
TRUNCATE rm.decoy, rm.notes;
RESET ROLE;
SELECT count(*) AS rows_left FROM rm.notes;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid IN ('rm.notes'::regclass, 'rm.log'::regclass) AND tgname LIKE 'hlauth%' ORDER BY tgrelid, tgname;

-- ... nor by setting the audit triggers back to simply enabled first (a twenty-second
-- red-team pass), which only an admin may do (pg_restore does, between CREATE TRIGGER and
-- ENABLE ALWAYS TRIGGER)
SET ROLE regress_rm_owner;
ALTER TABLE rm.log ENABLE TRIGGER hlauth_audit;
ALTER TABLE rm.log ENABLE TRIGGER hlauth_audit_statement;
-- ... nor by replacing them (CREATE OR REPLACE keeps the trigger, sets it back to simply
-- enabled, and rewrites its arguments: here, leaving the body out; a twenty-third pass)
CREATE OR REPLACE TRIGGER hlauth_audit AFTER INSERT OR UPDATE OR DELETE ON rm.log
	FOR EACH ROW EXECUTE FUNCTION hlauth_internal.audit_row('', 'body');
RESET ROLE;
SELECT tgname, tgenabled, tgnargs FROM pg_trigger WHERE tgrelid = 'rm.log'::regclass AND tgname LIKE 'hlauth%' ORDER BY tgname;

-- the app role: no principal in replica mode ...
SET ROLE regress_rm_app;
SET session_replication_role = replica;
SELECT hlauth.set_principal('e7a00000-0000-0000-0000-000000000001', 'e7100000-0000-0000-0000-000000000000', '');
RESET session_replication_role;
-- ... nor writes under one set before: the audit would not record them
BEGIN;
SELECT hlauth.set_principal('e7a00000-0000-0000-0000-000000000001', 'e7100000-0000-0000-0000-000000000000', '');
SET LOCAL session_replication_role = replica;
INSERT INTO rm.log VALUES (10, 'unrecorded');
ROLLBACK;
BEGIN;
SELECT hlauth.set_principal('e7a00000-0000-0000-0000-000000000001', 'e7100000-0000-0000-0000-000000000000', '');
SET LOCAL session_replication_role = replica;
UPDATE rm.notes SET body = 'unrecorded' WHERE id = 1;
ROLLBACK;
BEGIN;
SET LOCAL session_replication_role = replica;
WITH w AS (DELETE FROM rm.log RETURNING 1) SELECT count(*) FROM w;
ROLLBACK;
-- a revocation in replica mode would have no security event: refused
BEGIN;
SELECT hlauth.set_principal('e7a00000-0000-0000-0000-00000000000f', 'e7100000-0000-0000-0000-000000000000', 'hlauth/grants.write');
SET LOCAL session_replication_role = replica;
SELECT hlauth.revoke_grant(:'grant_id');
ROLLBACK;
-- reading is not refused (row-level security applies as ever)
BEGIN;
SELECT hlauth.set_principal('e7a00000-0000-0000-0000-000000000001', 'e7100000-0000-0000-0000-000000000000', '');
SET LOCAL session_replication_role = replica;
SELECT body FROM rm.notes ORDER BY id;
ROLLBACK;
-- a switch in the middle of a statement leaves the audit recording (the same pass: these
-- writes went unrecorded)
BEGIN;
SELECT hlauth.set_principal('e7a00000-0000-0000-0000-000000000001', 'e7100000-0000-0000-0000-000000000000', '');
INSERT INTO rm.log SELECT 2, 'switched' FROM (SELECT set_config('session_replication_role', 'replica', true)) s;
RESET session_replication_role;
UPDATE rm.log SET body = 'switched again' WHERE id = 2 AND set_config('session_replication_role', 'replica', true) IS NOT NULL;
RESET session_replication_role;
DELETE FROM rm.log WHERE id = 2 AND set_config('session_replication_role', 'replica', true) IS NOT NULL;
RESET session_replication_role;
COMMIT;
-- ... and writing to a table hlauth neither guards nor audits is none of its business
CREATE TEMP TABLE scratch (x int);
SET session_replication_role = replica;
INSERT INTO scratch VALUES (1);
RESET session_replication_role;
DROP TABLE scratch;
RESET ROLE;
SELECT op, pk FROM hlauth.audit_log WHERE table_name = 'rm.log' ORDER BY xid, seq;

-- a superuser may (what a superuser can still do is documented)
SET session_replication_role = replica;
INSERT INTO rm.log VALUES (11, 'by a superuser');
RESET session_replication_role;

SELECT count(*) AS revocations FROM hlauth.grants WHERE id = :'grant_id' AND revoked_at IS NOT NULL;
DELETE FROM hlauth.grants WHERE principal IN ('e7a00000-0000-0000-0000-00000000000f', 'e7a00000-0000-0000-0000-000000000001');
DELETE FROM hlauth.roles WHERE name IN ('rm manager', 'rm nobody');
SELECT hlauth.unaudit('rm.log');
SELECT hlauth.unprotect('rm.notes');
DROP SCHEMA rm CASCADE;
DELETE FROM hlauth.tenants WHERE id IN ('e7100000-0000-0000-0000-000000000000', 'e7200000-0000-0000-0000-000000000000');
DELETE FROM hlauth.tenants WHERE id = 'e7000000-0000-0000-0000-000000000000';
REVOKE SET ON PARAMETER session_replication_role FROM regress_rm_owner, regress_rm_app;
DROP ROLE regress_rm_owner, regress_rm_app;
