-- The DDL guards on protected tables, as the table's owner (not superuser, not hlauth_admin):
-- commands that would run the owner's code over every tenant's rows are refused before they
-- run; commands that would weaken the protection are refused after; harmless ones pass.
\set VERBOSITY terse
\set SHOW_CONTEXT never
DO $$ BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_guard_owner') THEN
		CREATE ROLE regress_guard_owner;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_guard_admin') THEN
		CREATE ROLE regress_guard_admin;
	END IF;
END $$;
GRANT hlauth_admin TO regress_guard_admin;
-- the admin may act as the owner (a migration role, say)
GRANT regress_guard_owner TO regress_guard_admin;
CREATE SCHEMA guard AUTHORIZATION regress_guard_owner;
CREATE SCHEMA guard2 AUTHORIZATION regress_guard_owner;
GRANT USAGE, CREATE ON SCHEMA guard TO regress_guard_admin;
SET ROLE regress_guard_owner;
CREATE TABLE guard.notes (id int NOT NULL, account_id uuid NOT NULL, body text);
CREATE INDEX ON guard.notes (account_id, id);
CREATE TABLE guard.other (id int, account_id uuid);
CREATE FUNCTION guard.leak(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE FUNCTION guard.leak_trigger() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
SELECT hlauth.protect('guard.notes');

-- refused before they run
CREATE TRIGGER t BEFORE INSERT ON guard.notes FOR EACH ROW EXECUTE FUNCTION guard.leak_trigger();
CREATE RULE r AS ON INSERT TO guard.notes DO ALSO NOTIFY guard_leak;
CREATE INDEX ON guard.notes (guard.leak(body));
CREATE INDEX ON guard.notes (id) WHERE guard.leak(body) IS NOT NULL;
CREATE UNIQUE INDEX ON guard.notes (account_id, id);
CREATE STATISTICS guard.s ON (guard.leak(body)) FROM guard.notes;
ALTER TABLE guard.notes ADD CONSTRAINT c CHECK (guard.leak(body) IS NOT NULL);
ALTER TABLE guard.notes ADD PRIMARY KEY (account_id, id);
ALTER TABLE guard.notes ADD COLUMN x text DEFAULT guard.leak('x');
ALTER TABLE guard.notes ADD COLUMN g text GENERATED ALWAYS AS (guard.leak(body)) STORED;
ALTER TABLE guard.notes ALTER COLUMN body TYPE text USING guard.leak(body);
ALTER TABLE guard.notes INHERIT guard.other;
CREATE TABLE guard.parent (id int NOT NULL, account_id uuid NOT NULL, body text) PARTITION BY LIST (id);
ALTER TABLE guard.parent ATTACH PARTITION guard.notes DEFAULT;
-- refused after they run (the protection would be weaker)
ALTER TABLE guard.notes RENAME TO notes_old;
ALTER TABLE guard.notes SET SCHEMA guard2;
DROP TABLE guard.notes;
CREATE POLICY only_short ON guard.notes AS RESTRICTIVE USING (guard.leak(body) IS NOT NULL);
-- allowed: they run no code over the rows and weaken nothing
CREATE INDEX notes_body_idx ON guard.notes (body);
ALTER TABLE guard.notes ADD COLUMN n int DEFAULT 0, ADD COLUMN t text, ADD COLUMN d date DEFAULT '2026-01-01'::date;
ALTER TABLE guard.notes ALTER COLUMN body SET DEFAULT 'empty';
COMMENT ON TABLE guard.notes IS 'guarded';
-- any DDL on a table that is not protected is none of hlauth's business
CREATE INDEX ON guard.other (guard.leak(id::text));
CREATE TRIGGER t BEFORE INSERT ON guard.other FOR EACH ROW EXECUTE FUNCTION guard.leak_trigger();
-- a table with code of the owner's that would see other tenants' rows cannot be protected by
-- its owner alone: a trigger, a CHECK constraint, a generated column, an expression index,
-- a policy (even restrictive); nor can a child of an unprotected parent
SELECT hlauth.protect('guard.other');
CREATE TABLE guard.with_check (id int, account_id uuid, body text CHECK (guard.leak(body) IS NOT NULL));
SELECT hlauth.protect('guard.with_check');
CREATE TABLE guard.with_generated (id int, account_id uuid, body text, g text GENERATED ALWAYS AS (guard.leak(body)) STORED);
SELECT hlauth.protect('guard.with_generated');
CREATE TABLE guard.with_index (id int, account_id uuid, body text);
CREATE INDEX ON guard.with_index (account_id, guard.leak(body));
SELECT hlauth.protect('guard.with_index');
CREATE TABLE guard.with_policy (id int, account_id uuid, body text);
CREATE POLICY p ON guard.with_policy AS RESTRICTIVE USING (guard.leak(body) IS NOT NULL);
SELECT hlauth.protect('guard.with_policy');
CREATE TABLE guard.base (id int, account_id uuid, body text);
CREATE TABLE guard.child () INHERITS (guard.base);
SELECT hlauth.protect('guard.child');
-- look-alike names get no pass: a policy or trigger named like hlauth's is still the owner's
CREATE TABLE guard.lookalike (id int, account_id uuid, body text);
CREATE POLICY hlauth_open ON guard.lookalike USING (true);
SELECT hlauth.protect('guard.lookalike');
DROP POLICY hlauth_open ON guard.lookalike;
CREATE TRIGGER hlauth_spy BEFORE INSERT ON guard.lookalike FOR EACH ROW EXECUTE FUNCTION guard.leak_trigger();
SELECT hlauth.protect('guard.lookalike');
RESET ROLE;

-- an hlauth_admin may do what the owner may not, and protect the table with the trigger
SET ROLE regress_guard_admin;
CREATE INDEX notes_expr_idx ON guard.notes (lower(body));
SELECT hlauth.protect('guard.other');
RESET ROLE;
SELECT relid, tenant_column FROM hlauth_internal.protected_tables WHERE relid::text LIKE 'guard.%' ORDER BY relid::text;
SELECT indexrelid::regclass AS index FROM pg_index WHERE indrelid = 'guard.notes'::regclass ORDER BY indexrelid::regclass::text;

-- Two ways a table owner blocked every non-admin's DDL in the database (a red-team pass):
-- a protected temporary table, gone with its session while still registered; and a
-- fingerprint stored under quote_all_identifiers, which every later check found changed.
SET ROLE regress_guard_owner;
CREATE TEMP TABLE guard_temp (id int, account_id uuid NOT NULL);
SELECT hlauth.protect('guard_temp');
SELECT count(*) AS temp_registered FROM hlauth_internal.protected_tables WHERE relid = 'guard_temp'::regclass;
DROP TABLE guard_temp;
CREATE TABLE guard.quoted (id int, account_id uuid NOT NULL);
CREATE INDEX ON guard.quoted (account_id, id);
SET quote_all_identifiers = on;
SELECT hlauth.protect('guard.quoted');
SET datestyle = 'SQL, DMY';
CREATE TABLE guard2.after_quoted (id int);
RESET quote_all_identifiers;
RESET datestyle;
CREATE TABLE guard2.after_quoted_reset (id int);
RESET ROLE;
SELECT count(*) AS both_made FROM pg_class WHERE relname IN ('after_quoted', 'after_quoted_reset');
-- ... nor through a temporary child, which protect() registered with its parent
SET ROLE regress_guard_owner;
CREATE TABLE guard.with_temp_child (id int, account_id uuid NOT NULL);
CREATE INDEX ON guard.with_temp_child (account_id, id);
CREATE TEMP TABLE guard_temp_child () INHERITS (guard.with_temp_child);
SELECT hlauth.protect('guard.with_temp_child');
DROP TABLE guard_temp_child;
RESET ROLE;
SELECT count(*) AS temp_child_registered FROM hlauth_internal.protected_tables WHERE relid::text LIKE '%temp_child%';
-- ... nor by an admin's policy written with standard_conforming_strings off
SET standard_conforming_strings = off;
CREATE POLICY no_backslash ON guard.quoted AS RESTRICTIVE USING (id::text NOT LIKE E'%\\%');
RESET standard_conforming_strings;
SET ROLE regress_guard_owner;
CREATE TABLE guard2.after_backslash (id int);
RESET ROLE;
-- A deep and wide composite type on a protected column: each type is walked once (a
-- red-team pass made the walk 8^18 steps, which nothing could cancel)
SET ROLE regress_guard_owner;
CREATE TYPE guard.w0 AS (a int);
DO $$ BEGIN FOR i IN 1..14 LOOP EXECUTE format('CREATE TYPE guard.w%s AS (a1 guard.w%s)', i, i - 1); END LOOP; END $$;
CREATE TABLE guard.wide (id int, account_id uuid NOT NULL, c guard.w14);
CREATE INDEX ON guard.wide (account_id, id);
SELECT hlauth.protect('guard.wide');
DO $$ BEGIN FOR i IN REVERSE 14..1 LOOP FOR j IN 2..4 LOOP
	EXECUTE format('ALTER TYPE guard.w%s ADD ATTRIBUTE a%s guard.w%s', i, j, i - 1);
END LOOP; END LOOP; END $$;
RESET ROLE;
SET statement_timeout = '20s';
SELECT count(*) AS findings FROM hlauth.review_protection() WHERE tbl = 'guard.wide'::regclass;
RESET statement_timeout;
-- A statistics object on an expression made before protect(): ANALYZE would run the
-- owner's function over every tenant's rows (a seventeenth red-team pass)
SET ROLE regress_guard_owner;
CREATE TABLE guard.with_stats (id int, account_id uuid NOT NULL, body text);
CREATE INDEX ON guard.with_stats (account_id, id);
CREATE STATISTICS guard.with_stats_leak ON (guard.leak(body)) FROM guard.with_stats;
SELECT hlauth.protect('guard.with_stats');
RESET ROLE;
SELECT count(*) AS stats_table_registered FROM hlauth_internal.protected_tables WHERE relid = 'guard.with_stats'::regclass;
-- An unqualified name counts as protected when a schema the search_path names holds a
-- protected table of that name, even one the role may not use yet (a USAGE granted while
-- the command waits for its lock changed what it resolved to)
CREATE SCHEMA guard_hidden;
CREATE TABLE guard_hidden.notes (id int NOT NULL, account_id uuid NOT NULL, body text);
CREATE INDEX ON guard_hidden.notes (account_id, id);
SELECT hlauth.protect('guard_hidden.notes');
SET ROLE regress_guard_owner;
CREATE TABLE guard2.notes (id int, body text);
SET search_path = guard_hidden, guard2;
CREATE INDEX ON notes (guard.leak(body));
CREATE INDEX ON guard2.notes (guard.leak(body));
RESET search_path;
RESET ROLE;
SELECT hlauth.unprotect('guard_hidden.notes');
DROP SCHEMA guard_hidden CASCADE;
-- unprotect() of a partition of a protected table is refused (the guard protected it again
-- while it was being stripped, leaving it registered without row-level security)
CREATE TABLE guard.parted (id int, account_id uuid NOT NULL) PARTITION BY LIST (id);
CREATE TABLE guard.parted_1 PARTITION OF guard.parted FOR VALUES IN (1);
CREATE INDEX ON guard.parted (account_id, id);
SELECT hlauth.protect('guard.parted');
SET ROLE regress_guard_admin;
SELECT hlauth.unprotect('guard.parted_1');
RESET ROLE;
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pt.relid IS NOT NULL AS registered
  FROM pg_class c LEFT JOIN hlauth_internal.protected_tables pt ON pt.relid = c.oid
 WHERE c.oid IN ('guard.parted'::regclass, 'guard.parted_1'::regclass) ORDER BY 1;

-- a typed table (CREATE TABLE ... OF): ALTER TYPE ... CASCADE changes its columns as ALTER
-- TABLE would (a red-team pass converted every tenant's values through a domain check of
-- the owner's); a protected table may not become a typed table either
SET ROLE regress_guard_owner;
CREATE TYPE guard.row_t AS (id int, account_id uuid, body text);
CREATE TABLE guard.typed OF guard.row_t (account_id WITH OPTIONS NOT NULL);
CREATE INDEX ON guard.typed (account_id, id);
SELECT hlauth.protect('guard.typed');
CREATE DOMAIN guard.checked AS text CHECK (guard.leak(VALUE) IS NOT NULL);
ALTER TYPE guard.row_t ALTER ATTRIBUTE body TYPE guard.checked CASCADE;
ALTER TYPE guard.row_t ADD ATTRIBUTE extra guard.checked CASCADE;
ALTER TYPE guard.row_t DROP ATTRIBUTE body CASCADE;
CREATE TYPE guard.row2_t AS (id int, account_id uuid, body text);
CREATE TABLE guard.untyped (id int, account_id uuid NOT NULL, body text);
CREATE INDEX ON guard.untyped (account_id, id);
SELECT hlauth.protect('guard.untyped');
ALTER TABLE guard.untyped OF guard.row2_t;
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.oid IN ('guard.typed'::regclass, 'guard.untyped'::regclass) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY 1, a.attnum;
SELECT relname, reloftype <> 0 AS typed FROM pg_class WHERE oid IN ('guard.typed'::regclass, 'guard.untyped'::regclass) ORDER BY 1;
-- a default that looks constant but casts through the owner's domain runs its check in every
-- tenant's inserts: refused as SET DEFAULT refuses it
ALTER TABLE guard.notes ADD COLUMN note text DEFAULT ('x'::guard.checked)::text;
CREATE DOMAIN guard.later AS text;
ALTER TABLE guard.notes ADD COLUMN note2 text DEFAULT 'y'::guard.later;
SELECT count(*) AS new_columns FROM pg_attribute WHERE attrelid = 'guard.notes'::regclass AND attname IN ('note', 'note2');
RESET ROLE;

-- protect() by a non-admin runs its DDL as the bootstrap superuser, and the guard recorded
-- a change the owner had made to another protected table as an admin's there (a twentieth
-- red-team pass). A change made behind the guard's back (here, the stored fingerprint
-- altered by hand) stays unrecorded by the owner's protect() of another table
SET ROLE regress_guard_owner;
CREATE TABLE guard.late_table (id int, account_id uuid NOT NULL);
CREATE INDEX ON guard.late_table (account_id, id);
RESET ROLE;
UPDATE hlauth_internal.protected_tables SET fingerprint = 'changed behind the guard' WHERE relid = 'guard.untyped'::regclass;
SET ROLE regress_guard_owner;
SELECT hlauth.protect('guard.late_table');
RESET ROLE;
SELECT fingerprint = 'changed behind the guard' AS still_unrecorded FROM hlauth_internal.protected_tables WHERE relid = 'guard.untyped'::regclass;
SELECT hlauth_internal.accept_protection_change('guard.untyped');
-- an admin's ATTACH PARTITION protects the attached table implicitly: a table a non-admin
-- owns is judged as its owner's protect() would judge it (a twentieth red-team pass: the
-- owner's trigger on a staging table stayed, and copied every tenant's rows routed there)
SET ROLE regress_guard_owner;
CREATE TABLE guard.stage (id int, account_id uuid NOT NULL);
CREATE TRIGGER z_spy BEFORE INSERT ON guard.stage FOR EACH ROW EXECUTE FUNCTION guard.leak_trigger();
RESET ROLE;
ALTER TABLE guard.parted ATTACH PARTITION guard.stage FOR VALUES IN (2);
SELECT count(*) AS attached FROM pg_inherits WHERE inhrelid = 'guard.stage'::regclass;

-- a protected and audited partitioned table: its owner may create partitions (the audit's
-- triggers on them are hlauth's code, not the owner's; a twenty-second red-team pass found
-- the owner's new partition refused)
SET ROLE regress_guard_owner;
CREATE TABLE guard.pa (id int NOT NULL, account_id uuid NOT NULL, PRIMARY KEY (account_id, id)) PARTITION BY LIST (id);
CREATE TABLE guard.pa_1 PARTITION OF guard.pa FOR VALUES IN (1);
SELECT hlauth.protect('guard.pa');
RESET ROLE;
SELECT hlauth.audit('guard.pa', '{}', 'account_id');
SET ROLE regress_guard_owner;
CREATE TABLE guard.pa_2 PARTITION OF guard.pa FOR VALUES IN (2);
RESET ROLE;
SELECT t.tgname, t.tgenabled, pt.relid IS NOT NULL AS protected
  FROM pg_trigger t LEFT JOIN hlauth_internal.protected_tables pt ON pt.relid = t.tgrelid
 WHERE t.tgrelid = 'guard.pa_2'::regclass AND t.tgname LIKE 'hlauth%' ORDER BY 1;
SELECT hlauth.unaudit('guard.pa');

SET ROLE regress_guard_admin;
SELECT hlauth.unprotect('guard.notes');
SELECT hlauth.unprotect('guard.other');
SELECT hlauth.unprotect('guard.quoted');
SELECT hlauth.unprotect('guard.wide');
SELECT hlauth.unprotect('guard.parted');
SELECT hlauth.unprotect('guard.typed');
SELECT hlauth.unprotect('guard.untyped');
SELECT hlauth.unprotect('guard.late_table');
SELECT hlauth.unprotect('guard.pa');
RESET ROLE;
DROP SCHEMA guard, guard2 CASCADE;
REVOKE hlauth_admin FROM regress_guard_admin;
DROP ROLE regress_guard_owner, regress_guard_admin;
