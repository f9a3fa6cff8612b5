-- test/pgtap/threats_rls.sql
-- THREATS.md lines 7-12 (escaping row-level security), performed as app roles:
--   tr_owner   an application role that OWNS the protected tables (line 7's attacker);
--              member of hlauth_trusted, not superuser, no BYPASSRLS
--   tr_app     the pooled application role: member of hlauth_trusted, not owner, not
--              superuser, no BYPASSRLS
--   tr_bypass  a role with BYPASSRLS (line 7: it must never act as a tenant)
--   tr_copy    like tr_app, plus pg_read/write_server_files so that COPY to and from a
--              server file can be tried (line 10)
-- Every attack must fail with the expected SQLSTATE, and nothing of another tenant may be
-- read or written. The context lives for one transaction, so this file runs many
-- transactions in sequence and switches roles with SET ROLE / RESET ROLE.
-- Timing oracles of authentication ("no such key" vs "wrong secret") belong to the API key
-- work (issue 3) and are not tested here.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- ---------------------------------------------------------------------------
-- Roles (cluster-wide: created idempotently, attributes forced every run)
-- ---------------------------------------------------------------------------
DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['tr_owner', 'tr_app', 'tr_bypass', 'tr_copy'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r);
		END IF;
		EXECUTE format('ALTER ROLE %I NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT NOLOGIN %s',
					   r, CASE WHEN r = 'tr_bypass' THEN 'BYPASSRLS' ELSE 'NOBYPASSRLS' END);
		EXECUTE format('ALTER ROLE %I RESET ALL', r);
	END LOOP;
END
$$;
GRANT hlauth_trusted TO tr_owner, tr_app, tr_bypass, tr_copy;
GRANT pg_read_server_files, pg_write_server_files TO tr_copy;

-- ---------------------------------------------------------------------------
-- Fixtures
-- ---------------------------------------------------------------------------
-- Helpers (owned by postgres, invoker's rights).
CREATE SCHEMA trh;
GRANT USAGE ON SCHEMA trh TO PUBLIC;
CREATE FUNCTION trh.acct(name text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE name
		WHEN 'G' THEN 'd0000000-0000-4000-8000-0000000000a0'::uuid
		WHEN 'A' THEN 'd0000000-0000-4000-8000-00000000000a'::uuid
		WHEN 'B' THEN 'd0000000-0000-4000-8000-00000000000b'::uuid
	END
$$;
CREATE FUNCTION trh.login(name text) RETURNS void LANGUAGE sql AS $$
	SELECT hlauth.set_principal('d0000000-0000-4000-8000-0000000000f1', trh.acct(name),
								'contacts.read contacts.write')
$$;
-- What the caller sees of a table's emails, as one string (row-level security applies).
CREATE FUNCTION trh.emails(tbl regclass) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
	r text;
BEGIN
	EXECUTE format('SELECT coalesce(string_agg(email, %L ORDER BY email), %L) FROM %s', ',', '', tbl) INTO r;
	RETURN r;
END
$$;
DO $$
BEGIN
	PERFORM hlauth.create_tenant('agency', NULL, 'tr agency', trh.acct('G'));
	PERFORM hlauth.create_tenant('account', trh.acct('G'), 'tr A', trh.acct('A'));
	PERFORM hlauth.create_tenant('account', trh.acct('G'), 'tr B', trh.acct('B'));
END
$$;
-- set_principal() keeps only the asked scopes the principal holds through its grants (issue
-- #3): the principal of trh.login() holds what it asks for at agency G, so at A and B too.
DO $$
BEGIN
	PERFORM hlauth.register_permission('contacts.read', 'read contacts');
	PERFORM hlauth.register_permission('contacts.write', 'write contacts');
	PERFORM hlauth.grant_role('d0000000-0000-4000-8000-0000000000f1',
							  hlauth.create_role('tr contacts', 'contacts.read contacts.write'), trh.acct('G'));
END
$$;

-- The owner's schema and tables. contacts has a global primary key (id) on purpose: it is the
-- shape ON CONFLICT (id) attacks need. protect() warns about it (line 12 tests that warning
-- on another table), so its warnings are silenced here.
CREATE SCHEMA tr AUTHORIZATION tr_owner;
GRANT CREATE ON SCHEMA public TO tr_owner, tr_app;
SET ROLE tr_owner;
CREATE TABLE tr.contacts (
	id bigint PRIMARY KEY,
	account_id uuid NOT NULL,
	email text NOT NULL,
	note text,
	UNIQUE (account_id, email)
);
CREATE TABLE tr.parent (account_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (account_id, id));
CREATE TABLE tr.child (
	account_id uuid NOT NULL,
	id int NOT NULL,
	parent_id int NOT NULL,
	PRIMARY KEY (account_id, id),
	CONSTRAINT child_parent_fkey FOREIGN KEY (account_id, parent_id) REFERENCES tr.parent (account_id, id)
);
SET client_min_messages = error;
DO $$
BEGIN
	PERFORM hlauth.protect('tr.contacts');
	PERFORM hlauth.protect('tr.parent');
	PERFORM hlauth.protect('tr.child');
END
$$;
SET client_min_messages = warning;
GRANT USAGE ON SCHEMA tr TO tr_app, tr_copy, tr_bypass;
GRANT SELECT, INSERT, UPDATE, DELETE ON tr.contacts, tr.parent, tr.child TO tr_app, tr_copy, tr_bypass;
-- A view without security_invoker, owned by the (non-superuser) table owner.
CREATE VIEW tr.contacts_v AS SELECT account_id, email FROM tr.contacts;
GRANT SELECT ON tr.contacts_v TO tr_app;
-- A SECURITY DEFINER function of the owner WITHOUT a pinned search_path, calling an
-- unqualified helper: an attacker can hijack the helper and run code as the owner.
CREATE FUNCTION tr.summarize() RETURNS text LANGUAGE sql AS $$ SELECT 'genuine' $$;
CREATE FUNCTION tr.owner_summary() RETURNS text LANGUAGE plpgsql SECURITY DEFINER
	AS $$ BEGIN RETURN summarize(); END $$;
GRANT EXECUTE ON FUNCTION tr.owner_summary() TO tr_app;
-- Detectors for the owner's DDL attacks: how many rows of a tenant other than A reached the
-- owner's own functions (a sequence, so rolled-back DDL still leaves its trace).
CREATE SEQUENCE tr.leak_seq;
CREATE FUNCTION tr.seen_text(acct uuid, v text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF acct IS DISTINCT FROM 'd0000000-0000-4000-8000-00000000000a'::uuid THEN
		PERFORM nextval('tr.leak_seq');
	END IF;
	RETURN v;
END
$$;
CREATE FUNCTION tr.seen_bool(acct uuid, v text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN tr.seen_text(acct, v) IS NOT NULL;
END
$$;
CREATE FUNCTION tr.leaks() RETURNS bigint LANGUAGE sql AS $$
	SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM tr.leak_seq
$$;
-- Unprotected tables of the owner with the contacts columns (inheritance / partition attacks).
CREATE TABLE tr.evil_parent (id bigint, account_id uuid, email text, note text);
CREATE TABLE tr.evil_parted (id bigint, account_id uuid, email text, note text) PARTITION BY LIST (account_id);
RESET ROLE;

INSERT INTO tr.contacts VALUES
	(1, trh.acct('A'), 'a1@x', NULL), (2, trh.acct('A'), 'a2@x', NULL), (3, trh.acct('A'), 'same@x', NULL),
	(11, trh.acct('B'), 'b1@x', NULL), (12, trh.acct('B'), 'b2@x', NULL);
INSERT INTO tr.parent VALUES (trh.acct('A'), 1), (trh.acct('B'), 2);

-- The app role's own schema: an unprotected table and leaky functions.
CREATE SCHEMA tr_app_s AUTHORIZATION tr_app;
SET ROLE tr_app;
GRANT USAGE ON SCHEMA tr_app_s TO PUBLIC;
CREATE TABLE tr_app_s.seen (account_id uuid, email text);
CREATE FUNCTION tr_app_s.leak(acct uuid, email text) RETURNS boolean LANGUAGE plpgsql VOLATILE COST 0.0000001 AS $$
BEGIN
	RAISE NOTICE 'leak: % %', acct, email;
	INSERT INTO tr_app_s.seen VALUES (acct, email);
	RETURN true;
END
$$;
CREATE FUNCTION tr_app_s.leak_op(a text, b text) RETURNS boolean LANGUAGE plpgsql VOLATILE COST 0.0000001 AS $$
BEGIN
	INSERT INTO tr_app_s.seen VALUES (NULL, a);
	RETURN true;
END
$$;
CREATE OPERATOR tr_app_s.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = tr_app_s.leak_op);
-- The hijacked helper for tr.owner_summary(): runs as tr_owner and reads everything it can.
CREATE FUNCTION tr_app_s.summarize() RETURNS text LANGUAGE sql
	AS $$ SELECT 'hijacked:' || coalesce(string_agg(email, ',' ORDER BY email), '') FROM tr.contacts $$;
-- A plpgsql function whose plan is cached per session (line 11).
CREATE FUNCTION tr_app_s.my_emails() RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN (SELECT coalesce(string_agg(email, ',' ORDER BY email), '') FROM tr.contacts);
END
$$;
RESET ROLE;

-- A helper table to read back what COPY ... TO wrote, and the server file it uses.
CREATE TABLE trh.copied (account_id uuid, email text);
SELECT current_setting('data_directory') || '/pgtap_threats_rls_copy.csv' AS copyfile \gset
COPY (SELECT trh.acct('A') AS account_id, 'copy@x'::text AS email) TO :'copyfile';

SELECT plan(82);

-- ---------------------------------------------------------------------------
-- Preconditions
-- ---------------------------------------------------------------------------
SELECT is_empty($$SELECT rolname FROM pg_roles WHERE rolname IN ('tr_owner', 'tr_app', 'tr_copy')
					AND (rolsuper OR rolbypassrls)$$,
	'0: the app roles are not superusers and have no BYPASSRLS');
SELECT ok((SELECT rolbypassrls AND NOT rolsuper FROM pg_roles WHERE rolname = 'tr_bypass'),
	'0: tr_bypass has BYPASSRLS (and is not a superuser)');
SELECT ok((SELECT c.relrowsecurity AND c.relforcerowsecurity AND pg_get_userbyid(c.relowner) = 'tr_owner'
			 FROM pg_class c WHERE c.oid = 'tr.contacts'::regclass),
	'0: tr.contacts is protected with RLS forced, and owned by the app role tr_owner');
SELECT is(hlauth.effective_scopes('d0000000-0000-4000-8000-0000000000f1', trh.acct('A'))::text,
	'contacts.read contacts.write',
	'0: the principal of trh.login() holds contacts.read and contacts.write at A (a grant at G)');

-- ---------------------------------------------------------------------------
-- 7. The app role owns the table; a role with BYPASSRLS
-- ---------------------------------------------------------------------------
SET ROLE tr_owner;
BEGIN;
SELECT trh.login('A');
SELECT is(trh.emails('tr.contacts'), 'a1@x,a2@x,same@x', '7: the owner acting as A sees only A''s rows (FORCE)');
SELECT throws_ok('ALTER TABLE tr.contacts NO FORCE ROW LEVEL SECURITY', '42501', NULL,
	'7: the owner cannot NO FORCE row-level security');
SELECT throws_ok('ALTER TABLE tr.contacts DISABLE ROW LEVEL SECURITY', '42501', NULL,
	'7: the owner cannot DISABLE row-level security');
SELECT throws_ok('DROP POLICY hlauth_select ON tr.contacts', '42501', NULL,
	'7: the owner cannot DROP POLICY hlauth_select');
SELECT throws_ok('ALTER POLICY hlauth_select ON tr.contacts USING (true)', '42501', NULL,
	'7: the owner cannot ALTER POLICY hlauth_select');
SELECT throws_ok('CREATE POLICY open_all ON tr.contacts AS PERMISSIVE FOR SELECT USING (true)', '42501', NULL,
	'7: the owner cannot CREATE a permissive policy');
SELECT throws_ok('ALTER TABLE tr.contacts DISABLE TRIGGER hlauth_require_context', '42501', NULL,
	'7: the owner cannot DISABLE the write-guard trigger');
SELECT throws_ok('DROP TRIGGER hlauth_no_truncate ON tr.contacts', '42501', NULL,
	'7: the owner cannot DROP the TRUNCATE guard');
SELECT throws_ok('TRUNCATE tr.contacts', '42501', NULL,
	'7: the owner cannot TRUNCATE (it ignores row-level security)');
SELECT is(trh.emails('tr.contacts'), 'a1@x,a2@x,same@x', '7: after these attempts the owner still sees only A''s rows');

-- Inheritance: policies of the table named in the query apply, not those of its children.
SELECT throws_ok('ALTER TABLE tr.contacts INHERIT tr.evil_parent', '42501', NULL,
	'7: the owner cannot make the protected table a child of its own unprotected table');
SELECT is(trh.emails('tr.evil_parent'), '', '7: ... so no row of the protected table shows through that parent');
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = 'tr.contacts'::regclass) THEN
		ALTER TABLE tr.contacts NO INHERIT tr.evil_parent;
	END IF;
END
$$;
SELECT throws_ok('ALTER TABLE tr.evil_parted ATTACH PARTITION tr.contacts DEFAULT', '42501', NULL,
	'7: the owner cannot attach the protected table as a partition of its own unprotected table');
SELECT is(trh.emails('tr.evil_parted'), '', '7: ... so no row of the protected table shows through that partitioned table');
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = 'tr.contacts'::regclass) THEN
		ALTER TABLE tr.evil_parted DETACH PARTITION tr.contacts;
	END IF;
END
$$;

-- Found by a red-team pass: the owner moved a protected table away from its name by
-- renaming its schema; filled a table of its own with rows under tenant B and made it a
-- child or a partition of a protected table (B then saw them as its own); and gave a table
-- a partition key expression of its own, which saw every tenant's rows.
RESET ROLE;
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO tr_owner', current_database()); END $$;
SET ROLE tr_owner;
SELECT throws_like('ALTER SCHEMA tr RENAME TO tr_moved', '%is protected by hlauth%',
	'7: the owner (with CREATE on the database) cannot move a protected table away from its name by renaming its schema');
RESET ROLE;
DO $$ BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM tr_owner', current_database()); END $$;
SET ROLE tr_owner;
CREATE TABLE tr.filled (id bigint, account_id uuid, email text, note text);
INSERT INTO tr.filled VALUES (99, trh.acct('B'), 'forged@x', 'forged');
SELECT throws_ok('ALTER TABLE tr.filled INHERIT tr.contacts', '42501', NULL,
	'7: the owner cannot make a table of its own, with rows, a child of a protected table');
CREATE TABLE tr.parted_p (account_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (account_id, id))
	PARTITION BY LIST (account_id);
SET client_min_messages = error;
SELECT hlauth.protect('tr.parted_p');
SET client_min_messages = warning;
CREATE TABLE tr.parted_fill (account_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (account_id, id));
INSERT INTO tr.parted_fill VALUES (trh.acct('B'), 1);
SELECT throws_ok(format('ALTER TABLE tr.parted_p ATTACH PARTITION tr.parted_fill FOR VALUES IN (%L)', trh.acct('B')),
	'42501', NULL, '7: the owner cannot attach a table of its own, with rows, to a protected partitioned table');
SELECT lives_ok(format('CREATE TABLE tr.parted_a PARTITION OF tr.parted_p FOR VALUES IN (%L)', trh.acct('A')),
	'7: ... it creates partitions with CREATE TABLE ... PARTITION OF');
SELECT throws_ok('ALTER TABLE tr.parted_p DETACH PARTITION tr.parted_a', '42501',
	'permission denied: detaching a partition (DETACH ... CONCURRENTLY commits before hlauth could refuse it) on table "parted_p", protected by hlauth',
	'7: the owner cannot detach a partition of a protected table (refused before it runs, CONCURRENTLY too)');
CREATE TABLE tr.ledger (account_id uuid NOT NULL, id int NOT NULL, email text)
	PARTITION BY LIST (tr.seen_text(account_id, email));
SELECT throws_ok($$SELECT hlauth.protect('tr.ledger')$$, '42501',
	'permission denied: table ledger has a partition key expression',
	'7: the owner cannot protect a table with a partition key expression of its own');
CREATE TABLE tr.parted_q (account_id uuid NOT NULL, id int NOT NULL, email text) PARTITION BY LIST (account_id);
CREATE INDEX ON tr.parted_q (account_id);
SET client_min_messages = error;
SELECT hlauth.protect('tr.parted_q');
SET client_min_messages = warning;
SELECT throws_ok(format('CREATE TABLE tr.parted_sub PARTITION OF tr.parted_q FOR VALUES IN (%L) PARTITION BY LIST (tr.seen_text(account_id, email))', trh.acct('B')),
	'42501', NULL, '7: ... nor add a partition with one to a protected table');

-- Moving the protected table away from the name the application uses, so that an
-- unprotected look-alike can take that name and collect every tenant's new rows.
SELECT throws_ok('ALTER TABLE tr.contacts RENAME TO contacts_old', '42501', NULL,
	'7: the owner cannot move a protected table away from its name (for an unprotected look-alike)');
DO $$
BEGIN
	IF to_regclass('tr.contacts') IS NULL THEN
		ALTER TABLE tr.contacts_old RENAME TO contacts;
	END IF;
END
$$;

-- DDL that evaluates the owner's functions over every row, regardless of policies.
SELECT setval('tr.leak_seq', 1, false) AS _reset \gset
DO $$
BEGIN
	CREATE INDEX tr_leak_idx ON tr.contacts (tr.seen_text(account_id, email));
EXCEPTION WHEN insufficient_privilege THEN
	NULL;	-- refused: fine, as long as no other tenant's row reached the function
END
$$;
SELECT is(tr.leaks(), 0::bigint, '7: CREATE INDEX on an owner function hands it no row of another tenant');
DROP INDEX IF EXISTS tr.tr_leak_idx;
SELECT setval('tr.leak_seq', 1, false) AS _reset \gset
DO $$
BEGIN
	ALTER TABLE tr.contacts ADD CONSTRAINT tr_leak_check CHECK (tr.seen_bool(account_id, email));
EXCEPTION WHEN insufficient_privilege THEN
	NULL;
END
$$;
SELECT is(tr.leaks(), 0::bigint, '7: ADD CONSTRAINT CHECK on an owner function hands it no row of another tenant');
ALTER TABLE tr.contacts DROP CONSTRAINT IF EXISTS tr_leak_check;
COMMIT;
RESET ROLE;

SET ROLE tr_bypass;
SELECT throws_ok($$SELECT trh.login('A')$$, '42501', 'role "tr_bypass" bypasses row-level security',
	'7: hlauth.set_principal refuses a BYPASSRLS role');
SELECT is(hlauth.tenant(), NULL, '7: ... so it never acts as a tenant');
RESET ROLE;
SELECT throws_ok($$SELECT trh.login('A')$$, '42501', 'role "postgres" bypasses row-level security',
	'7: hlauth.set_principal refuses a superuser');

-- ---------------------------------------------------------------------------
-- 8. Leaky functions in WHERE
-- ---------------------------------------------------------------------------
SET ROLE tr_app;
BEGIN;
SELECT trh.login('A');
SELECT is((SELECT count(*) FROM tr.contacts WHERE tr_app_s.leak(account_id, email)), 3::bigint,
	'8: a query with a cheap leaky function in WHERE returns only A''s rows');
SELECT is((SELECT count(*) FROM tr.contacts WHERE email LIKE 'b%' AND tr_app_s.leak(account_id, email)), 0::bigint,
	'8: ... also when it targets B''s values');
SELECT is((SELECT count(*) FROM tr.contacts c JOIN (VALUES (1)) v(x) ON tr_app_s.leak(c.account_id, c.email)), 3::bigint,
	'8: ... also in a join condition');
SELECT is((SELECT count(*) FROM tr.contacts WHERE email OPERATOR(tr_app_s.===) 'x'), 3::bigint,
	'8: ... also through a leaky operator');
SELECT lives_ok($$SELECT count(*) FROM tr.contacts
				   WHERE 1 / (CASE WHEN account_id = 'd0000000-0000-4000-8000-00000000000b' THEN 0 ELSE 1 END) = 1$$,
	'8: an error-based probe (division by zero on B''s rows) never evaluates on B''s rows');
SELECT ok((SELECT count(*) FROM tr_app_s.seen) >= 6, '8: the leaky functions did run');
SELECT is_empty($$SELECT account_id, email FROM tr_app_s.seen
				   WHERE account_id IS DISTINCT FROM 'd0000000-0000-4000-8000-00000000000a' AND account_id IS NOT NULL$$,
	'8: the leaky function never received a row of another tenant');
SELECT is_empty($$SELECT email FROM tr_app_s.seen WHERE email NOT IN ('a1@x', 'a2@x', 'same@x')$$,
	'8: no value of another tenant was captured');
SELECT throws_ok($$CREATE FUNCTION tr_app_s.fake_leakproof(text) RETURNS boolean LANGUAGE sql LEAKPROOF AS 'SELECT true'$$,
	'42501', NULL, '8: the app role cannot declare a function LEAKPROOF');
COMMIT;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 9. Views, SECURITY DEFINER functions, objects planted in public / pg_temp
-- ---------------------------------------------------------------------------
SELECT ok((SELECT pg_get_userbyid(c.relowner) = 'tr_owner'
				  AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
				  AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = 'tr_owner')
			 FROM pg_class c WHERE c.oid = 'tr.contacts_v'::regclass),
	'9: tr.contacts_v runs with its owner''s rights (no security_invoker), a non-superuser');
SET ROLE tr_app;
BEGIN;
SELECT trh.login('A');
SELECT is(trh.emails('tr.contacts_v'), 'a1@x,a2@x,same@x', '9: the owner''s view, queried as A, shows only A''s rows');
SET LOCAL search_path = tr_app_s, tr, public;
SELECT is(tr.owner_summary(), 'hijacked:a1@x,a2@x,same@x',
	'9: a hijacked SECURITY DEFINER function (no pinned search_path) runs as the owner but sees only A''s rows');
COMMIT;
BEGIN;
SELECT trh.login('B');
SELECT is(trh.emails('tr.contacts_v'), 'b1@x,b2@x', '9: the same view, queried as B, shows only B''s rows');
COMMIT;
SELECT is(trh.emails('tr.contacts_v'), '', '9: the view with no principal shows nothing');
RESET ROLE;

SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p
				   WHERE p.prosecdef AND p.pronamespace IN ('hlauth'::regnamespace, 'hlauth_internal'::regnamespace)
					 AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)$$,
	'9: every hlauth SECURITY DEFINER function pins search_path = pg_catalog, pg_temp');

-- The app role plants look-alikes of what the policies use, in public and pg_temp.
SET ROLE tr_app;
CREATE FUNCTION public.accessible_tenants() RETURNS uuid[] LANGUAGE sql
	AS $$ SELECT ARRAY['d0000000-0000-4000-8000-00000000000a', 'd0000000-0000-4000-8000-00000000000b']::uuid[] $$;
CREATE FUNCTION public.accessible_tenants(text) RETURNS uuid[] LANGUAGE sql
	AS $$ SELECT ARRAY['d0000000-0000-4000-8000-00000000000a', 'd0000000-0000-4000-8000-00000000000b']::uuid[] $$;
CREATE FUNCTION public.can_access(uuid) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION public.has_scope(text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION public.tr_always(uuid, uuid) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR public.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = public.tr_always);
CREATE FUNCTION pg_temp.accessible_tenants() RETURNS uuid[] LANGUAGE sql
	AS $$ SELECT ARRAY['d0000000-0000-4000-8000-00000000000a', 'd0000000-0000-4000-8000-00000000000b']::uuid[] $$;
CREATE FUNCTION pg_temp.accessible_tenants(text) RETURNS uuid[] LANGUAGE sql
	AS $$ SELECT ARRAY['d0000000-0000-4000-8000-00000000000a', 'd0000000-0000-4000-8000-00000000000b']::uuid[] $$;
BEGIN;
SELECT trh.login('A');
SET LOCAL search_path = public, pg_catalog;
SELECT is(trh.emails('tr.contacts'), 'a1@x,a2@x,same@x',
	'9: with look-alikes in public ahead of pg_catalog, A still sees only A''s rows');
SET LOCAL search_path = pg_temp, public, pg_catalog;
SELECT is(trh.emails('tr.contacts'), 'a1@x,a2@x,same@x',
	'9: with look-alikes in pg_temp first, A still sees only A''s rows');
SELECT throws_ok($$CREATE FUNCTION hlauth.accessible_tenants_x() RETURNS uuid[] LANGUAGE sql AS 'SELECT NULL::uuid[]'$$,
	'42501', NULL, '9: the app role cannot plant objects in schema hlauth');
SELECT throws_ok($$CREATE FUNCTION hlauth_internal.x() RETURNS int LANGUAGE sql AS 'SELECT 1'$$,
	'42501', NULL, '9: the app role cannot plant objects in schema hlauth_internal');
COMMIT;
RESET ROLE;

-- protect() itself, run by the owner while the look-alikes are in place and first in its path.
SET ROLE tr_owner;
SET search_path = public, tr;
CREATE TABLE tr.contacts2 (account_id uuid NOT NULL, email text NOT NULL, PRIMARY KEY (account_id, email));
SELECT hlauth.protect('tr.contacts2') AS _protect \gset
GRANT SELECT ON tr.contacts2 TO tr_app;
RESET search_path;
RESET ROLE;
INSERT INTO tr.contacts2 VALUES (trh.acct('A'), 'a1@x'), (trh.acct('B'), 'b1@x');
SELECT ok(EXISTS (SELECT 1 FROM pg_depend d JOIN pg_policy p ON p.oid = d.objid
				  WHERE d.classid = 'pg_policy'::regclass AND p.polrelid = 'tr.contacts2'::regclass
					AND d.refclassid = 'pg_proc'::regclass
					AND d.refobjid IN (SELECT oid FROM pg_proc WHERE proname = 'accessible_tenants'
										AND pronamespace = 'hlauth'::regnamespace)),
	'9: protect() under a hostile search_path bound the policies to hlauth.accessible_tenants()');
SELECT is_empty($$SELECT d.refclassid::regclass, d.refobjid FROM pg_depend d JOIN pg_policy p ON p.oid = d.objid
				   WHERE d.classid = 'pg_policy'::regclass AND p.polrelid = 'tr.contacts2'::regclass
					 AND ((d.refclassid = 'pg_proc'::regclass AND (SELECT pronamespace FROM pg_proc WHERE oid = d.refobjid)
							NOT IN ('pg_catalog'::regnamespace, 'hlauth'::regnamespace))
					   OR (d.refclassid = 'pg_operator'::regclass AND (SELECT oprnamespace FROM pg_operator WHERE oid = d.refobjid)
							NOT IN ('pg_catalog'::regnamespace, 'hlauth'::regnamespace)))$$,
	'9: ... and to no function or operator outside pg_catalog and hlauth');
SET ROLE tr_app;
BEGIN;
SELECT trh.login('A');
SELECT is(trh.emails('tr.contacts2'), 'a1@x', '9: the table protected under the hostile search_path isolates A');
COMMIT;
DROP OPERATOR public.= (uuid, uuid);
DROP FUNCTION public.tr_always(uuid, uuid), public.accessible_tenants(), public.accessible_tenants(text),
	public.can_access(uuid), public.has_scope(text), pg_temp.accessible_tenants(), pg_temp.accessible_tenants(text);
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 10. Writes into another tenant, ON CONFLICT, COPY, RETURNING, foreign-key probes
-- ---------------------------------------------------------------------------
SET ROLE tr_app;
BEGIN;
SELECT trh.login('A');
SELECT throws_ok($$INSERT INTO tr.contacts (id, account_id, email) VALUES (100, 'd0000000-0000-4000-8000-00000000000b', 'x@x')$$,
	'42501', NULL, '10: INSERT of a row of another tenant is refused');
SELECT throws_ok($$UPDATE tr.contacts SET account_id = 'd0000000-0000-4000-8000-00000000000b' WHERE id = 1$$,
	'42501', NULL, '10: UPDATE moving a row into another tenant is refused');
SELECT throws_ok($$INSERT INTO tr.contacts (id, account_id, email) VALUES (11, 'd0000000-0000-4000-8000-00000000000a', 'evil@x')
				   ON CONFLICT (id) DO UPDATE SET note = 'pwned'$$,
	'42501', NULL, '10: ON CONFLICT (id) DO UPDATE against another tenant''s row is refused');
SELECT throws_ok($$INSERT INTO tr.contacts (id, account_id, email) VALUES (101, 'd0000000-0000-4000-8000-00000000000b', 'b1@x')
				   ON CONFLICT (account_id, email) DO UPDATE SET note = 'pwned'$$,
	'42501', NULL, '10: ON CONFLICT (account_id, email) DO UPDATE naming another tenant is refused');
SELECT lives_ok($$INSERT INTO tr.contacts (id, account_id, email) VALUES (11, 'd0000000-0000-4000-8000-00000000000a', 'evil2@x')
				  ON CONFLICT DO NOTHING$$,
	'10: ON CONFLICT DO NOTHING against another tenant''s row runs');
SELECT is_empty($$UPDATE tr.contacts SET note = 'pwned' WHERE account_id = 'd0000000-0000-4000-8000-00000000000b' RETURNING id, email$$,
	'10: UPDATE ... RETURNING of another tenant''s rows returns nothing');
SELECT is_empty($$DELETE FROM tr.contacts WHERE id IN (11, 12) RETURNING id, email$$,
	'10: DELETE ... RETURNING of another tenant''s rows returns nothing');
SELECT lives_ok($$INSERT INTO tr.child VALUES ('d0000000-0000-4000-8000-00000000000a', 1, 1)$$,
	'10: a child row referencing its own tenant''s parent is accepted');
SELECT throws_ok($$INSERT INTO tr.child VALUES ('d0000000-0000-4000-8000-00000000000a', 2, 2)$$,
	'23503', 'insert or update on table "child" violates foreign key constraint "child_parent_fkey"',
	'10: FK probe for another tenant''s existing parent id fails with 23503');
SELECT throws_ok($$INSERT INTO tr.child VALUES ('d0000000-0000-4000-8000-00000000000a', 3, 999)$$,
	'23503', 'insert or update on table "child" violates foreign key constraint "child_parent_fkey"',
	'10: FK probe for a parent id that exists nowhere fails the same way (no existence oracle)');
SELECT throws_ok($$INSERT INTO tr.child VALUES ('d0000000-0000-4000-8000-00000000000b', 4, 2)$$,
	'42501', NULL, '10: a child row in another tenant is refused before any FK check');
COMMIT;
RESET ROLE;

SELECT results_eq($$SELECT id, email, note FROM tr.contacts WHERE account_id = 'd0000000-0000-4000-8000-00000000000b' ORDER BY id$$,
	$$VALUES (11::bigint, 'b1@x'::text, NULL::text), (12, 'b2@x', NULL)$$,
	'10: tenant B''s rows are exactly as they were');
SELECT results_eq($$SELECT id, email FROM tr.contacts WHERE account_id = 'd0000000-0000-4000-8000-00000000000a' ORDER BY id$$,
	$$VALUES (1::bigint, 'a1@x'::text), (2, 'a2@x'), (3, 'same@x')$$,
	'10: tenant A gained no row from the conflicting inserts');

SET ROLE tr_copy;
BEGIN;
SELECT trh.login('A');
SELECT throws_ok(format('COPY tr.contacts (account_id, email) FROM %L', :'copyfile'), '0A000',
	'COPY FROM not supported with row-level security', '10: COPY FROM into a protected table is refused');
SELECT lives_ok(format('COPY tr.contacts (account_id, email) TO %L', :'copyfile'), '10: COPY TO as A runs');
COMMIT;
RESET ROLE;
TRUNCATE trh.copied;
COPY trh.copied FROM :'copyfile';
SELECT results_eq('SELECT account_id, email FROM trh.copied ORDER BY email',
	$$VALUES ('d0000000-0000-4000-8000-00000000000a'::uuid, 'a1@x'::text),
			 ('d0000000-0000-4000-8000-00000000000a', 'a2@x'), ('d0000000-0000-4000-8000-00000000000a', 'same@x')$$,
	'10: COPY TO wrote only A''s rows');
SET ROLE tr_copy;
SELECT lives_ok(format('COPY tr.contacts (account_id, email) TO %L', :'copyfile'), '10: COPY TO with no principal runs');
RESET ROLE;
TRUNCATE trh.copied;
COPY trh.copied FROM :'copyfile';
SELECT is_empty('SELECT * FROM trh.copied', '10: COPY TO with no principal wrote no row');

-- ---------------------------------------------------------------------------
-- 11. Cached plans: planned as tenant A, executed as tenant B
-- ---------------------------------------------------------------------------
SET ROLE tr_app;
PREPARE tr_q AS SELECT coalesce(string_agg(email, ',' ORDER BY email), '') AS emails FROM tr.contacts;
PREPARE tr_qg AS SELECT coalesce(string_agg(email, ',' ORDER BY email), '') AS emails FROM tr.contacts;
BEGIN; SELECT trh.login('A'); EXECUTE tr_q \gset
SET LOCAL plan_cache_mode = force_generic_plan;
EXECUTE tr_qg \gset
SELECT tr_app_s.my_emails() AS emails \gset
COMMIT;
BEGIN; SELECT trh.login('A'); EXECUTE tr_q \gset
SET LOCAL plan_cache_mode = force_generic_plan;
EXECUTE tr_qg \gset
SELECT tr_app_s.my_emails() AS emails \gset
COMMIT;
BEGIN; SELECT trh.login('A'); EXECUTE tr_q \gset
SET LOCAL plan_cache_mode = force_generic_plan;
EXECUTE tr_qg \gset
SELECT tr_app_s.my_emails() AS emails \gset
COMMIT;
BEGIN; SELECT trh.login('A'); EXECUTE tr_q \gset
SET LOCAL plan_cache_mode = force_generic_plan;
EXECUTE tr_qg \gset
SELECT tr_app_s.my_emails() AS emails \gset
COMMIT;
BEGIN; SELECT trh.login('A'); EXECUTE tr_q \gset
SET LOCAL plan_cache_mode = force_generic_plan;
EXECUTE tr_qg \gset
SELECT tr_app_s.my_emails() AS emails \gset
COMMIT;
BEGIN;
SELECT trh.login('A');
SELECT results_eq('EXECUTE tr_q', $$VALUES ('a1@x,a2@x,same@x'::text)$$, '11: the 6th execution of tr_q as A returns A''s rows');
SET LOCAL plan_cache_mode = force_generic_plan;
SELECT results_eq('EXECUTE tr_qg', $$VALUES ('a1@x,a2@x,same@x'::text)$$, '11: the 6th execution of tr_qg (generic plan) as A returns A''s rows');
SELECT is(tr_app_s.my_emails(), 'a1@x,a2@x,same@x', '11: the 6th call of the plpgsql function as A returns A''s rows');
COMMIT;
SELECT cmp_ok((SELECT generic_plans FROM pg_prepared_statements WHERE name = 'tr_qg'), '>=', 6::bigint,
	'11: tr_qg was run from its generic (cached) plan');
BEGIN;
SELECT trh.login('B');
SELECT results_eq('EXECUTE tr_q', $$VALUES ('b1@x,b2@x'::text)$$, '11: the same prepared statement executed as B returns B''s rows');
SET LOCAL plan_cache_mode = force_generic_plan;
SELECT results_eq('EXECUTE tr_qg', $$VALUES ('b1@x,b2@x'::text)$$, '11: the same generic plan executed as B returns B''s rows');
SELECT is(tr_app_s.my_emails(), 'b1@x,b2@x', '11: the plpgsql function''s cached plan, called as B, returns B''s rows');
COMMIT;
SELECT results_eq('EXECUTE tr_qg', $$VALUES (''::text)$$, '11: the generic plan with no principal returns no row');
DEALLOCATE tr_q;
DEALLOCATE tr_qg;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 12. Error-message oracles: unique violations
-- ---------------------------------------------------------------------------
SET ROLE tr_app;
BEGIN;
SELECT trh.login('B');
SELECT lives_ok($$INSERT INTO tr.contacts (id, email) VALUES (20, 'same@x')$$,
	'12: B can insert an email A already has: UNIQUE (account_id, email) reveals nothing');
COMMIT;
RESET ROLE;
SELECT results_eq($$SELECT account_id FROM tr.contacts WHERE email = 'same@x' ORDER BY account_id$$,
	$$VALUES ('d0000000-0000-4000-8000-00000000000a'::uuid), ('d0000000-0000-4000-8000-00000000000b')$$,
	'12: ... and both tenants now hold that email, each in its own row');

-- protect() warns about a unique index without the tenant column. A WARNING cannot be
-- caught in SQL, so it is read back from the server log (log_min_messages = warning).
CREATE FUNCTION trh.server_log() RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(pg_current_logfile('stderr'),
					CASE WHEN 'server.log' IN (SELECT pg_ls_dir('.')) THEN 'server.log' END)
$$;
SELECT trh.server_log() AS logfile, coalesce((pg_stat_file(trh.server_log(), true)).size, 0) AS logsize \gset
SET ROLE tr_owner;
CREATE TABLE tr.uq_bad (id bigint, account_id uuid NOT NULL, email text UNIQUE);
CREATE INDEX ON tr.uq_bad (account_id);
SET client_min_messages = error;
SELECT hlauth.protect('tr.uq_bad') AS _protect \gset
SET client_min_messages = warning;
RESET ROLE;
SELECT ok(CASE WHEN :'logfile' = '' THEN false
			   ELSE coalesce(pg_read_file(:'logfile', :logsize, 1000000, true), '')
					LIKE '%unique index tr.uq_bad_email_key of table tr.uq_bad does not include the tenant column "account_id"%'
		  END,
	'12: protect() warns about a unique index without the tenant column (read back from the server log)');

-- Leave the server file empty.
COPY (SELECT 1 WHERE false) TO :'copyfile';

SELECT * FROM finish();
