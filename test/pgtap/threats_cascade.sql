-- test/pgtap/threats_cascade.sql
-- THREATS.md line 7, inside foreign-key actions. PostgreSQL runs a foreign key's checks and
-- actions as the owner of the table they query, with forced row-level security switched off,
-- and every trigger, default, check, domain or index expression that fires in there inherits
-- that. The attacker, fc_owner, owns the protected table fc.p (tenants A and B) and tables of
-- its own; it is an application role (member of hlauth_trusted, not an admin, no BYPASSRLS).
-- From code inside an ON DELETE / ON UPDATE action of a table of its own, it must see no
-- more of fc.p than its context allows. Foreign keys between protected tables keep working.
-- This needs hlauth preloaded (the test cluster sets session_preload_libraries); the last
-- section shows protect() refusing a non-admin's table without it.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fc_owner') THEN
		CREATE ROLE fc_owner NOLOGIN;
	END IF;
	ALTER ROLE fc_owner NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT NOLOGIN NOBYPASSRLS;
	ALTER ROLE fc_owner RESET ALL;
END
$$;
GRANT hlauth_trusted TO fc_owner;

CREATE SCHEMA fch;
GRANT USAGE ON SCHEMA fch TO PUBLIC;
CREATE FUNCTION fch.acct(name text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE name
		WHEN 'G' THEN 'e1000000-0000-4000-8000-0000000000a0'::uuid
		WHEN 'A' THEN 'e1000000-0000-4000-8000-00000000000a'::uuid
		WHEN 'B' THEN 'e1000000-0000-4000-8000-00000000000b'::uuid
	END
$$;
CREATE FUNCTION fch.login(name text) RETURNS void LANGUAGE sql AS $$
	SELECT hlauth.set_principal('e1000000-0000-4000-8000-0000000000f1', fch.acct(name), 'contacts.read')
$$;
DO $$
BEGIN
	PERFORM hlauth.create_tenant('agency', NULL, 'fc agency', fch.acct('G'));
	PERFORM hlauth.create_tenant('account', fch.acct('G'), 'fc A', fch.acct('A'));
	PERFORM hlauth.create_tenant('account', fch.acct('G'), 'fc B', fch.acct('B'));
	PERFORM hlauth.register_permission('contacts.read', 'read contacts');
	PERFORM hlauth.grant_role('e1000000-0000-4000-8000-0000000000f1',
							  hlauth.create_role('fc contacts', 'contacts.read'), fch.acct('G'));
END
$$;

CREATE SCHEMA fc AUTHORIZATION fc_owner;
SET ROLE fc_owner;
-- The protected table with every tenant's secrets.
CREATE TABLE fc.p (id int PRIMARY KEY, account_id uuid NOT NULL, secret text NOT NULL);
CREATE INDEX ON fc.p (account_id);
-- Protected tables with foreign keys between them (the legitimate use).
CREATE TABLE fc.q (account_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (account_id, id));
CREATE TABLE fc.c (account_id uuid NOT NULL, id int PRIMARY KEY, q_id int,
	FOREIGN KEY (account_id, q_id) REFERENCES fc.q ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE fc.n (account_id uuid NOT NULL, id int PRIMARY KEY, q_id int,
	FOREIGN KEY (account_id, q_id) REFERENCES fc.q ON DELETE SET NULL (q_id));
CREATE TABLE fc.r (account_id uuid NOT NULL, id int PRIMARY KEY, q_id int,
	FOREIGN KEY (account_id, q_id) REFERENCES fc.q);
CREATE TABLE fc.cp (account_id uuid NOT NULL, id int NOT NULL, q_id int,
	FOREIGN KEY (account_id, q_id) REFERENCES fc.q ON DELETE CASCADE) PARTITION BY LIST (account_id);
CREATE TABLE fc.cp_a PARTITION OF fc.cp FOR VALUES IN ('e1000000-0000-4000-8000-00000000000a');
CREATE TABLE fc.cp_b PARTITION OF fc.cp FOR VALUES IN ('e1000000-0000-4000-8000-00000000000b');
CREATE INDEX ON fc.q (account_id);
CREATE INDEX ON fc.c (account_id);
CREATE INDEX ON fc.n (account_id);
CREATE INDEX ON fc.r (account_id);
CREATE INDEX ON fc.cp (account_id);
SET client_min_messages = error;
DO $$
BEGIN
	PERFORM hlauth.protect('fc.p');
	PERFORM hlauth.protect('fc.q');
	PERFORM hlauth.protect('fc.c');
	PERFORM hlauth.protect('fc.n');
	PERFORM hlauth.protect('fc.r');
	PERFORM hlauth.protect('fc.cp');
END
$$;
SET client_min_messages = warning;

-- The owner's own, unprotected tables: y is referenced; each x* references it with an action.
CREATE TABLE fc.y (id int PRIMARY KEY);
CREATE TABLE fc.loot (v text);
-- what the owner's code saw of fc.p, as one string
CREATE FUNCTION fc.seen() RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(v, ',' ORDER BY v), '') FROM fc.loot
$$;

-- (a) a PL/pgSQL BEFORE DELETE trigger on a table with ON DELETE CASCADE
CREATE TABLE fc.xa (id int PRIMARY KEY, y_id int REFERENCES fc.y ON DELETE CASCADE);
CREATE FUNCTION fc.grab_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO fc.loot SELECT secret FROM fc.p;
	RETURN OLD;
END
$$;
CREATE TRIGGER grab BEFORE DELETE ON fc.xa FOR EACH ROW EXECUTE FUNCTION fc.grab_trigger();

-- (b) the same through a SECURITY DEFINER function of the owner
CREATE TABLE fc.xb (id int PRIMARY KEY, y_id int REFERENCES fc.y ON DELETE CASCADE);
CREATE FUNCTION fc.grab_definer() RETURNS void LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog AS $$ INSERT INTO fc.loot SELECT secret FROM fc.p $$;
CREATE FUNCTION fc.grab_trigger_b() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM fc.grab_definer();
	RETURN OLD;
END
$$;
CREATE TRIGGER grab BEFORE DELETE ON fc.xb FOR EACH ROW EXECUTE FUNCTION fc.grab_trigger_b();

-- (c) an SQL function as the default ON DELETE SET DEFAULT puts in
CREATE FUNCTION fc.grab_default() RETURNS int LANGUAGE sql AS $$
	INSERT INTO fc.loot SELECT secret FROM fc.p;
	SELECT NULL::int;
$$;
CREATE TABLE fc.xc (id int PRIMARY KEY, y_id int DEFAULT fc.grab_default() REFERENCES fc.y ON DELETE SET DEFAULT);

-- (d) a built-in function that runs a query (query_to_xml) in that default: the secrets
-- would come back in the error casting them to int
CREATE TABLE fc.xd (id int PRIMARY KEY,
	y_id int DEFAULT (query_to_xml('SELECT secret FROM fc.p', true, false, '')::text)::int
		REFERENCES fc.y ON DELETE SET DEFAULT);

-- (e) table_to_xml() in a CHECK constraint, on ON UPDATE CASCADE
CREATE TABLE fc.xe (id int PRIMARY KEY, y_id int REFERENCES fc.y ON UPDATE CASCADE,
	CHECK (y_id IS NULL OR position('B-secret' IN table_to_xml('fc.p', true, false, '')::text) = 0));

-- (f) a rule on the referencing table (which references a table of its own: the rule is
-- refused whether rows are deleted or not)
CREATE TABLE fc.yf (id int PRIMARY KEY);
CREATE TABLE fc.xf (id int PRIMARY KEY, y_id int REFERENCES fc.yf ON DELETE CASCADE);
CREATE RULE grab AS ON DELETE TO fc.xf DO ALSO INSERT INTO fc.loot SELECT secret FROM fc.p;

-- (g) an index expression, on ON UPDATE CASCADE (an error tells whether it saw B's secret)
CREATE FUNCTION fc.grab_index(v int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	n bigint;
BEGIN
	-- dynamic SQL: planned at each call, where the call runs
	EXECUTE 'SELECT count(*) FROM fc.p WHERE secret = ''B-secret''' INTO n;
	IF n > 0 THEN
		RAISE EXCEPTION 'index expression saw B-secret';
	END IF;
	RETURN v;
END
$$;
CREATE TABLE fc.xg (id int PRIMARY KEY, y_id int REFERENCES fc.y ON UPDATE CASCADE);
CREATE INDEX ON fc.xg (fc.grab_index(y_id));

-- (h) a domain's check, on ON UPDATE CASCADE
CREATE FUNCTION fc.grab_domain(v int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE 'INSERT INTO fc.loot SELECT secret FROM fc.p';
	RETURN true;
END
$$;
CREATE DOMAIN fc.grabbing_int AS int CHECK (fc.grab_domain(VALUE));
CREATE TABLE fc.xh (id int PRIMARY KEY, y_id fc.grabbing_int REFERENCES fc.y ON UPDATE CASCADE);

-- (i) a function whose plan PL/pgSQL caches for the session, first run inside the action
CREATE FUNCTION fc.peek() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	RETURN (SELECT coalesce(string_agg(secret, ',' ORDER BY secret), '') FROM fc.p);
END
$$;
CREATE FUNCTION fc.peek_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM fc.peek();
	RETURN OLD;
END
$$;
CREATE TABLE fc.xi (id int PRIMARY KEY, y_id int REFERENCES fc.y ON DELETE CASCADE);
CREATE TRIGGER peek BEFORE DELETE ON fc.xi FOR EACH ROW EXECUTE FUNCTION fc.peek_trigger();
RESET ROLE;

INSERT INTO fc.p VALUES (1, fch.acct('A'), 'A-secret'), (2, fch.acct('B'), 'B-secret');
INSERT INTO fc.q VALUES (fch.acct('A'), 1), (fch.acct('B'), 2), (fch.acct('A'), 3), (fch.acct('B'), 4), (fch.acct('A'), 5);
INSERT INTO fc.c VALUES (fch.acct('A'), 10, 1), (fch.acct('B'), 20, 2), (fch.acct('A'), 15, 5);
INSERT INTO fc.n VALUES (fch.acct('A'), 10, 1), (fch.acct('B'), 20, 2);
INSERT INTO fc.r VALUES (fch.acct('A'), 10, 3), (fch.acct('B'), 20, 4);
INSERT INTO fc.cp VALUES (fch.acct('A'), 10, 1), (fch.acct('B'), 20, 2);

-- Runs one attack as fc_owner, in a subtransaction that is rolled back: a row in fc.y and
-- (and fc.yf) and in table tbl referencing it, then stmt against fc.y (acting as tenant A when as_a).
-- Returns what the owner's code saw (fc.seen()) or the SQLSTATE it failed with.
CREATE FUNCTION fch.attack(tbl text, stmt text, as_a boolean) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	BEGIN
		SET LOCAL ROLE fc_owner;
		DELETE FROM fc.loot;
		INSERT INTO fc.y VALUES (1);
		INSERT INTO fc.yf VALUES (1);
		EXECUTE format('INSERT INTO %s (id, y_id) VALUES (1, 1)', tbl);
		IF as_a THEN
			PERFORM fch.login('A');
		END IF;
		EXECUTE stmt;
		r := fc.seen();
		RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ok';
	EXCEPTION WHEN OTHERS THEN
		IF SQLERRM <> 'ok' THEN
			r := 'error ' || SQLSTATE || CASE WHEN SQLERRM LIKE '%B-secret%' THEN ' showing B-secret' ELSE '' END;
		END IF;
	END;
	RETURN r;
END
$$;

SELECT plan(88);

SELECT ok((SELECT c.relforcerowsecurity AND pg_get_userbyid(c.relowner) = 'fc_owner'
			 AND NOT pg_has_role('fc_owner', 'hlauth_admin', 'MEMBER')
			 FROM pg_class c WHERE c.oid = 'fc.p'::regclass),
	'0: fc.p is protected and owned by fc_owner, which is not an admin');

-- ---------------------------------------------------------------------------
-- The owner's code inside a referential action sees what its context allows
-- ---------------------------------------------------------------------------
SELECT is(fch.attack('fc.xa', 'DELETE FROM fc.y', false), '',
	'7: an owner''s trigger inside ON DELETE CASCADE sees no rows without a context');
SELECT is(fch.attack('fc.xa', 'DELETE FROM fc.y', true), 'A-secret',
	'7: ... and only its own tenant''s rows with one');
SELECT is(fch.attack('fc.xb', 'DELETE FROM fc.y', true), 'A-secret',
	'7: ... nor through a SECURITY DEFINER function of its own');
SELECT is(fch.attack('fc.xc', 'DELETE FROM fc.y', true), 'A-secret',
	'7: an SQL function in the default of ON DELETE SET DEFAULT sees only its tenant''s rows');
SELECT is(fch.attack('fc.xd', 'DELETE FROM fc.y', true), 'error 22P02',
	'7: query_to_xml() in that default reads only A''s rows (its cast error shows no B-secret)');
SELECT is(fch.attack('fc.xe', 'UPDATE fc.y SET id = 2', true), '',
	'7: table_to_xml() in a CHECK constraint, inside ON UPDATE CASCADE, sees no B-secret');
SELECT is(fch.attack('fc.xf', 'DELETE FROM fc.yf', true), 'error 42501',
	'7: a rule on the referencing table reading the protected table is refused (42501)');
SELECT is(fch.attack('fc.xg', 'UPDATE fc.y SET id = 2', true), '',
	'7: an index expression inside ON UPDATE CASCADE does not see B''s rows');
SELECT is(fch.attack('fc.xh', 'UPDATE fc.y SET id = 2', true), 'A-secret',
	'7: a domain check inside ON UPDATE CASCADE sees only its tenant''s rows');

SELECT is(fch.attack('fc.xi', 'DELETE FROM fc.y; INSERT INTO fc.loot SELECT fc.peek()', true), 'A-secret',
	'7: a plan cached inside the action is not reused to read B''s rows after it');

-- Functions whose FmgrInfo PostgreSQL set up before the action, and calls inside it (a
-- red-team pass of the first version of the fix, which wrapped only functions set up inside
-- the action). (j) A cursor declared before, fetched by cursor_to_xml() in a CHECK: the
-- SQL function's query was planned inside the action.
SET ROLE fc_owner;
CREATE FUNCTION fc.srf() RETURNS SETOF text LANGUAGE sql AS $$ SELECT secret FROM fc.p $$;
CREATE TABLE fc.y1 (id int PRIMARY KEY);
CREATE TABLE fc.x1 (id int PRIMARY KEY, y_id int REFERENCES fc.y1 ON UPDATE CASCADE);
INSERT INTO fc.y1 VALUES (1);
INSERT INTO fc.x1 VALUES (1, 1);
ALTER TABLE fc.x1 ADD CHECK (cursor_to_xml('c', 1, false, false, '') IS NOT NULL) NOT VALID;
BEGIN;
SELECT fch.login('A') \g /dev/null
DECLARE c CURSOR FOR SELECT fc.srf();
UPDATE fc.y1 SET id = 2;
DO $$
DECLARE
	r refcursor := 'c';
	v text;
	acc text := '';
BEGIN
	LOOP
		FETCH r INTO v;
		EXIT WHEN NOT FOUND;
		acc := acc || v || ';';
	END LOOP;
	PERFORM set_config('fch.rest', acc, false);
END
$$;
COMMIT;
RESET ROLE;
SELECT is(current_setting('fch.rest'), '',
	'7: a cursor of the owner''s fetched inside the action (cursor_to_xml in a CHECK) leaves no row of B''s');

-- (k) A range type's subtype_diff of the owner's, cached in the type cache, called by a GiST
-- index inside ON UPDATE CASCADE: its plan, made there, was reused after the action.
SET ROLE fc_owner;
CREATE FUNCTION fc.diff(a float8, b float8) RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	s text;
BEGIN
	IF current_setting('fch.go', true) = '1' THEN
		SELECT string_agg(secret, ',' ORDER BY secret) INTO s FROM fc.p;
		PERFORM set_config('fch.diff_saw', coalesce(s, ''), false);
	END IF;
	RETURN a - b;
END
$$;
CREATE TYPE fc.fr AS RANGE (subtype = float8, subtype_diff = fc.diff);
CREATE TABLE fc.y6 (id int PRIMARY KEY);
CREATE TABLE fc.x6 (id int PRIMARY KEY, y_id int REFERENCES fc.y6 ON UPDATE CASCADE, r fc.fr);
CREATE INDEX ON fc.x6 USING gist (r);
INSERT INTO fc.y6 VALUES (1);
INSERT INTO fc.x6 SELECT g, 1, fc.fr(g, g + 1) FROM generate_series(1, 3000) g;
BEGIN;
SET LOCAL fch.go = '1';
UPDATE fc.y6 SET id = 2;
SELECT set_config('fch.in_action', current_setting('fch.diff_saw', true), false) \g /dev/null
COMMIT;
BEGIN;
SELECT fch.login('A') \g /dev/null
SET LOCAL fch.go = '1';
SELECT fc.diff(1, 0) \g /dev/null
COMMIT;
RESET ROLE;
SELECT is(current_setting('fch.in_action'), '',
	'7: a range type''s subtype_diff called by GiST inside the action sees no rows without a context');
SELECT is(current_setting('fch.diff_saw'), 'A-secret',
	'7: ... and its plan, called again after the action as A, sees only A''s rows');

-- (l) A cast of the owner's, cached by the foreign-key code itself (its comparison of old
-- and new keys), called inside ON UPDATE CASCADE: its UPDATE rewrote B's rows.
SET ROLE fc_owner;
CREATE TYPE fc.mt AS ENUM ('one');
CREATE FUNCTION fc.mt2int(v fc.mt) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	IF current_setting('fch.go', true) = '1' THEN
		UPDATE fc.p SET secret = secret || '!';
	END IF;
	RETURN 1;
END
$$;
CREATE CAST (fc.mt AS int) WITH FUNCTION fc.mt2int(fc.mt) AS IMPLICIT;
CREATE TABLE fc.k (id int PRIMARY KEY);
CREATE TABLE fc.y2 (id int PRIMARY KEY);
CREATE TABLE fc.x2 (id int PRIMARY KEY, y_id int REFERENCES fc.y2 ON UPDATE CASCADE, m fc.mt REFERENCES fc.k);
INSERT INTO fc.k VALUES (1);
INSERT INTO fc.y2 VALUES (1);
INSERT INTO fc.x2 VALUES (1, 1, 'one');
UPDATE fc.x2 SET id = id;
BEGIN;
SELECT fch.login('A') \g /dev/null
SET LOCAL fch.go = '1';
UPDATE fc.y2 SET id = 2;
SELECT fc.mt2int('one') \g /dev/null
COMMIT;
RESET ROLE;
SELECT is((SELECT secret FROM fc.p WHERE account_id = fch.acct('B')), 'B-secret',
	'7: a cast cached by the foreign-key code, run inside the action and after it, leaves B''s rows alone');
SELECT ok((SELECT secret LIKE 'A-secret!!%' FROM fc.p WHERE account_id = fch.acct('A')),
	'7: ... while it changed A''s (inside the action and after it)');

-- (m) The planner runs code too: a rule's action, planned with the referential query, has a
-- qual whose selectivity estimate calls a range type's subtype_diff of the owner's, cached
-- before; its query was planned there without row-level security and the plan reused after
-- (a third red-team pass, against the version that switched the mode off only while
-- executors ran).
SET ROLE fc_owner;
CREATE FUNCTION fc.diff2(a float8, b float8) RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	s text;
BEGIN
	IF current_setting('fch.arm', true) IN ('plant', 'read') THEN
		BEGIN
			SELECT string_agg(secret, ',' ORDER BY secret) INTO s FROM fc.p;
			PERFORM set_config('fch.diff2_saw', coalesce(s, ''), false);
		EXCEPTION WHEN others THEN
			NULL;
		END;
	END IF;
	RETURN a - b;
END
$$;
CREATE TYPE fc.myr AS RANGE (subtype = float8, subtype_diff = fc.diff2);
CREATE TABLE fc.rt (r fc.myr);
INSERT INTO fc.rt SELECT fc.myr(g, g + 1) FROM generate_series(1, 1000) g;
ANALYZE fc.rt;
SELECT count(*) FROM fc.rt WHERE r && '[1.5,2.5)'::fc.myr \g /dev/null
CREATE TABLE fc.yr (id int PRIMARY KEY);
CREATE TABLE fc.xr (id int PRIMARY KEY, y_id int REFERENCES fc.yr ON DELETE CASCADE);
CREATE RULE est AS ON DELETE TO fc.xr DO ALSO
	INSERT INTO fc.loot SELECT 'x' FROM fc.rt WHERE r && '[1.5,2.5)'::fc.myr AND old.id < 0;
INSERT INTO fc.yr VALUES (7);
INSERT INTO fc.xr VALUES (7, 7);
BEGIN;
SELECT fch.login('A') \g /dev/null
SET LOCAL fch.arm = 'plant';
DELETE FROM fc.yr WHERE id = 7;
SET LOCAL fch.arm = 'read';
SELECT fc.diff2(1, 0) \g /dev/null
COMMIT;
RESET ROLE;
SELECT is(regexp_replace(current_setting('fch.diff2_saw'), '!+', '', 'g'), 'A-secret',
	'7: code the planner runs for a rule''s action inside the action plans with row-level security (A sees only A''s rows after)');

-- ---------------------------------------------------------------------------
-- Foreign keys between protected tables keep working
-- ---------------------------------------------------------------------------
BEGIN;
SET LOCAL ROLE fc_owner;
SELECT fch.login('A') \g /dev/null
SELECT lives_ok($$INSERT INTO fc.c VALUES (fch.acct('A'), 11, 3)$$,
	'FK: a protected table''s foreign key to another is checked (insert referencing A''s row)');
SELECT throws_ok($$INSERT INTO fc.c VALUES (fch.acct('A'), 12, 99)$$, '23503', NULL,
	'FK: ... and a missing row is still refused (23503)');
SELECT lives_ok($$UPDATE fc.q SET id = 6 WHERE id = 5$$,
	'FK: A updates a key of fc.q: ON UPDATE CASCADE follows');
SELECT lives_ok($$DELETE FROM fc.q WHERE id = 1$$,
	'FK: A deletes its row of fc.q: ON DELETE CASCADE, SET NULL and a partitioned child follow');
SELECT throws_ok($$DELETE FROM fc.q WHERE id = 3$$, '23503', NULL,
	'FK: a row referenced without an action cannot be deleted (23503)');
COMMIT;
SELECT is((SELECT string_agg(id || ':' || q_id, ',' ORDER BY id) FROM fc.c), '11:3,15:6,20:2',
	'FK: the cascades changed A''s child rows only');
SELECT is((SELECT string_agg(id || ':' || coalesce(q_id::text, 'null'), ',' ORDER BY id) FROM fc.n),
	'10:null,20:2', 'FK: ON DELETE SET NULL set A''s reference to NULL only');
SELECT is((SELECT string_agg(id::text, ',' ORDER BY id) FROM fc.cp), '20',
	'FK: the cascade reached the partition of A only');

-- ---------------------------------------------------------------------------
-- A foreign key with an action on an unprotected table would let whoever changes that table
-- delete or rewrite every tenant's rows: a non-admin cannot protect a table with one
-- ---------------------------------------------------------------------------
SET ROLE fc_owner;
CREATE TABLE fc.t_cascade (id int PRIMARY KEY, account_id uuid NOT NULL,
	y_id int REFERENCES fc.y ON UPDATE CASCADE);
CREATE TABLE fc.t_noaction (id int PRIMARY KEY, account_id uuid NOT NULL, y_id int REFERENCES fc.y);
CREATE TABLE fc.t_parted (id int, account_id uuid NOT NULL, y_id int) PARTITION BY LIST (account_id);
CREATE TABLE fc.t_parted_a PARTITION OF fc.t_parted (FOREIGN KEY (y_id) REFERENCES fc.y ON DELETE SET NULL)
	FOR VALUES IN ('e1000000-0000-4000-8000-00000000000a');
CREATE INDEX ON fc.t_cascade (account_id);
CREATE INDEX ON fc.t_noaction (account_id);
CREATE INDEX ON fc.t_parted (account_id);
SET client_min_messages = error;
SELECT throws_ok($$SELECT hlauth.protect('fc.t_cascade')$$, '42501',
	'permission denied: table t_cascade has foreign key t_cascade_y_id_fkey with an action on table y, which is not protected',
	'7: a non-admin cannot protect a table with ON UPDATE CASCADE from an unprotected table (42501)');
SELECT throws_ok($$SELECT hlauth.protect('fc.t_parted')$$, '42501', NULL,
	'7: ... nor one whose partition has ON DELETE SET NULL from one (42501)');
SELECT lives_ok($$SELECT hlauth.protect('fc.t_noaction')$$,
	'7: a foreign key without an action does not stand in the way');
SELECT lives_ok($$SELECT hlauth.protect('fc.t_noaction')$$, '7: (protect it again: no change)');
CREATE TABLE fc.t_late (id int, account_id uuid NOT NULL, y_id int) PARTITION BY LIST (account_id);
CREATE INDEX ON fc.t_late (account_id);
SELECT hlauth.protect('fc.t_late') \g /dev/null
SELECT throws_ok($$CREATE TABLE fc.t_late_b PARTITION OF fc.t_late (FOREIGN KEY (y_id) REFERENCES fc.y ON DELETE CASCADE)
	FOR VALUES IN ('e1000000-0000-4000-8000-00000000000b')$$, '42501', NULL,
	'7: ... nor create a partition with one under a protected table (42501)');
SET client_min_messages = warning;
RESET ROLE;
SELECT is((SELECT count(*) FROM hlauth_internal.protected_tables
			WHERE relid IN ('fc.t_cascade'::regclass, 'fc.t_parted'::regclass, 'fc.t_parted_a'::regclass)),
	0::bigint, '7: ... and the refused tables are not protected');

-- ---------------------------------------------------------------------------
-- A foreign key from a table that is not protected into a protected one: its check runs
-- without row-level security, so each insert would tell whether a key exists in any
-- tenant's rows (and lock that row). A non-admin cannot add one (a third red-team pass).
-- ---------------------------------------------------------------------------
SET ROLE fc_owner;
SELECT throws_ok($$CREATE TABLE fc.probe (pid int REFERENCES fc.p (id))$$, '42501', NULL,
	'10: a non-admin cannot create a table whose column references a protected table (42501)');
SELECT throws_ok($$CREATE TABLE fc.probe (a uuid, i int, FOREIGN KEY (a, i) REFERENCES fc.q)$$, '42501', NULL,
	'10: ... nor one with a table-level foreign key to one (42501)');
SELECT throws_ok($$ALTER TABLE fc.loot ADD COLUMN pid int, ADD FOREIGN KEY (pid) REFERENCES fc.p (id)$$, '42501', NULL,
	'10: ... nor add such a foreign key to an unprotected table (42501)');
SELECT throws_ok($$ALTER TABLE fc.loot ADD COLUMN pid int REFERENCES fc.p (id)$$, '42501', NULL,
	'10: ... nor add a column that references one to an unprotected table (42501)');
-- An earlier subcommand that risks only the (unprotected) altered table used to end the
-- check before a later one that reaches a protected table (a fourth red-team pass).
SELECT throws_ok($$ALTER TABLE fc.loot ALTER COLUMN v TYPE text, ADD COLUMN pid int REFERENCES fc.p (id)$$, '42501', NULL,
	'10: ... not even after another subcommand (ALTER COLUMN TYPE, ADD COLUMN ... REFERENCES) (42501)');
SELECT throws_ok($$ALTER TABLE fc.loot ADD CHECK (v <> ''), ADD COLUMN pid int, ADD FOREIGN KEY (pid) REFERENCES fc.p (id)$$, '42501', NULL,
	'10: ... (ADD CHECK, ADD FOREIGN KEY) (42501)');
CREATE TABLE fc.planted (id int NOT NULL, account_id uuid NOT NULL, secret text NOT NULL);
INSERT INTO fc.planted VALUES (99, 'e1000000-0000-4000-8000-00000000000b', 'planted');
SELECT throws_ok($$ALTER TABLE fc.planted ALTER COLUMN secret TYPE text, INHERIT fc.p$$, '42501', NULL,
	'7: a table with rows of its own cannot become a child of a protected table behind another subcommand (42501)');
RESET ROLE;
SELECT is_empty($$SELECT 1 FROM pg_inherits WHERE inhrelid = 'fc.planted'::regclass$$,
	'7: ... and it is no child of fc.p');
GRANT CREATE ON DATABASE :"DBNAME" TO fc_owner;
SET ROLE fc_owner;
SELECT throws_ok($$CREATE SCHEMA fc_probe CREATE TABLE probe (pid int REFERENCES fc.p (id))$$, '42501', NULL,
	'10: ... nor create one as an element of CREATE SCHEMA (42501)');
SELECT lives_ok($$CREATE TABLE fc.cp_d PARTITION OF fc.cp DEFAULT$$,
	'10: a new partition of a protected table keeps its parent''s foreign key (it is protected as it is made)');
SELECT lives_ok($$CREATE TABLE fc.y_child (id int PRIMARY KEY, y_id int REFERENCES fc.y)$$,
	'10: a foreign key between unprotected tables is none of hlauth''s business');
RESET ROLE;
SELECT is((SELECT count(*) FROM hlauth_internal.protected_tables WHERE relid = 'fc.cp_d'::regclass), 1::bigint,
	'10: ... and the new partition is protected');
SELECT is_empty($$SELECT 1 FROM pg_class WHERE relname = 'probe'$$,
	'10: no probing table was created');

-- ---------------------------------------------------------------------------
-- Code of the owner's that would run inside every tenant's writes without being a trigger:
-- a column default calling its function, a domain's check or such a default (a fifth
-- red-team pass)
-- ---------------------------------------------------------------------------
SET ROLE fc_owner;
CREATE FUNCTION fc.trojan() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO fc.loot SELECT 'def:' || secret FROM fc.p;
	RETURN 'x';
END
$$;
SELECT throws_ok($$ALTER TABLE fc.p ALTER COLUMN secret SET DEFAULT fc.trojan()$$, '42501', NULL,
	'7: the owner cannot give a protected table''s column a default calling its function (42501)');
SELECT throws_ok($$ALTER TABLE fc.p ALTER COLUMN secret SET DEFAULT ('x' || fc.trojan())$$, '42501', NULL,
	'7: ... nor one that calls its function inside an expression (42501)');
SELECT lives_ok($$ALTER TABLE fc.p ALTER COLUMN secret SET DEFAULT 'none'$$,
	'7: ... a constant one is fine');
SELECT lives_ok($$ALTER TABLE fc.p ADD COLUMN created_by uuid, ADD COLUMN created_at timestamptz$$,
	'7: (columns without defaults)');
SELECT lives_ok($$ALTER TABLE fc.p ALTER COLUMN created_by SET DEFAULT hlauth.principal(),
	ALTER COLUMN created_at SET DEFAULT now()$$,
	'7: ... and so are hlauth''s functions and built-in ones');
CREATE DOMAIN fc.dtext AS text;
CREATE DOMAIN fc.dcheck AS text CHECK (fc.trojan() IS NOT NULL);
CREATE DOMAIN fc.ddefault AS text DEFAULT fc.trojan();
CREATE DOMAIN fc.dnow AS timestamptz DEFAULT now();
SELECT lives_ok($$ALTER TABLE fc.p ADD COLUMN note fc.dtext$$,
	'7: a column of a domain without code is fine');
SELECT lives_ok($$ALTER TABLE fc.p ADD COLUMN seen_at fc.dnow$$,
	'7: ... nor is one with a built-in default');
SELECT throws_ok($$ALTER TABLE fc.p ADD COLUMN note2 fc.dcheck$$, '42501', NULL,
	'7: ... but not of a domain with a check (42501)');
SELECT throws_ok($$ALTER TABLE fc.p ADD COLUMN note3 fc.ddefault[]$$, '42501', NULL,
	'7: ... nor of an array of a domain with a non-constant default (42501)');
SELECT throws_ok($$ALTER DOMAIN fc.dtext ADD CONSTRAINT spy CHECK (fc.trojan() IS NOT NULL)$$, '42501', NULL,
	'7: the owner cannot add a check to a domain a protected table''s column uses (42501)');
SELECT throws_ok($$ALTER DOMAIN fc.dtext SET DEFAULT fc.trojan()$$, '42501', NULL,
	'7: ... nor give it a default calling its function (42501)');
SELECT lives_ok($$ALTER DOMAIN fc.dcheck ADD CONSTRAINT other CHECK (VALUE <> '')$$,
	'7: a domain no protected table uses is none of hlauth''s business');
-- ... nor through built-ins that run queries, domain casts, composite or range types
-- carrying such a domain, or a new child's own default (a sixth red-team pass)
SELECT throws_ok($$ALTER TABLE fc.p ALTER COLUMN secret SET DEFAULT query_to_xml('SELECT fc.trojan()', true, false, '')::text$$,
	'42501', NULL, '7: a default running a query through query_to_xml() is refused (42501)');
SELECT throws_ok($$ALTER TABLE fc.p ALTER COLUMN secret SET DEFAULT (now()::text::fc.dcheck)::text$$,
	'42501', NULL, '7: ... and one casting to a domain whose check is the owner''s code (42501)');
CREATE TYPE fc.comp AS (a text, b fc.dcheck);
CREATE TYPE fc.rng AS RANGE (subtype = fc.dcheck);
SELECT throws_ok($$ALTER TABLE fc.p ALTER COLUMN secret SET DEFAULT (('(' || now()::text || ',x)')::fc.comp).a$$,
	'42501', NULL, '7: ... and one casting text to a composite type carrying such a domain (42501)');
SELECT throws_ok($$ALTER TABLE fc.p ALTER COLUMN secret SET DEFAULT lower(('[' || now()::text || ',z]')::fc.rng)$$,
	'42501', NULL, '7: ... or to a range over it (42501)');
CREATE DOMAIN fc.qd AS text DEFAULT query_to_xml('SELECT fc.trojan()', true, false, '')::text;
SELECT throws_ok($$ALTER TABLE fc.p ADD COLUMN z fc.qd$$, '42501', NULL,
	'7: a column of a domain whose default runs a query is refused (42501)');
SELECT throws_ok($$ALTER TABLE fc.p ADD COLUMN w fc.comp$$, '42501', NULL,
	'7: ... and one of a composite type carrying a domain with a check (42501)');
CREATE DOMAIN fc.nd AS text;
CREATE TYPE fc.comp2 AS (a fc.nd);
SELECT lives_ok($$ALTER TABLE fc.p ADD COLUMN w2 fc.comp2$$, '7: (a composite column whose domain has no check)');
SELECT throws_ok($$ALTER DOMAIN fc.nd ADD CONSTRAINT spy CHECK (fc.trojan() IS NOT NULL) NOT VALID$$, '42501', NULL,
	'7: ... whose domain then cannot get a check (42501)');
SELECT throws_ok($$CREATE TABLE fc.p_child (secret text DEFAULT fc.trojan()) INHERITS (fc.p)$$, '42501', NULL,
	'7: a child of a protected table cannot bring a default calling the owner''s function (42501)');
-- ... nor through a type of the owner's that the default uses, which could get code later
-- or be filled by a built-in (a seventh red-team pass): only types an admin owns, all the
-- way down, may appear in a non-admin's default
SELECT lives_ok($$ALTER TABLE fc.p ADD COLUMN z1 int$$, '7: (a plain column)');
CREATE DOMAIN fc.d1 AS int;
CREATE TYPE fc.c3 AS (a int);
SELECT throws_ok($$ALTER TABLE fc.p ALTER COLUMN z1 SET DEFAULT (0::fc.d1)$$, '42501', NULL,
	'7: a default casting to the owner''s domain (which could get a check later) is refused (42501)');
SELECT throws_ok($$ALTER TABLE fc.p ALTER COLUMN z1 SET DEFAULT (jsonb_populate_record(NULL::fc.c3, '{"a":1}')).a$$,
	'42501', NULL, '7: ... and one filling the owner''s composite type through a built-in (42501)');
-- ... nor a built-in that changes the inserting session: set_config('search_path') left
-- every later query of that (pooled) session resolving operators to the owner's (a tenth
-- red-team pass); hlauth.set_principal() would move the tenant's next writes
SELECT throws_ok($$ALTER TABLE fc.p ALTER COLUMN secret SET DEFAULT set_config('search_path', 'fc, pg_catalog', false)$$,
	'42501', NULL, '7: a default calling set_config() is refused (42501)');
SELECT throws_ok($$ALTER TABLE fc.p ALTER COLUMN created_by SET DEFAULT
	(hlauth.set_principal('e1000000-0000-4000-8000-0000000000f1', fch.acct('A'), 'contacts.read') IS NULL)::int::text::uuid$$,
	'42501', NULL, '7: ... and one calling hlauth.set_principal() (42501)');
SELECT lives_ok($$ALTER TABLE fc.p ALTER COLUMN created_by SET DEFAULT gen_random_uuid()$$,
	'7: volatile built-ins that only make a value are fine (gen_random_uuid())');
SELECT lives_ok($$ALTER TABLE fc.p ALTER COLUMN z1 SET DEFAULT 0, ALTER COLUMN note SET DEFAULT 'n'$$,
	'7: a constant default is fine, for a column of the owner''s domain too');
CREATE TYPE fc.status AS ENUM ('new', 'done');
SELECT lives_ok($$ALTER TABLE fc.p ADD COLUMN status fc.status, ALTER COLUMN status SET DEFAULT 'new'$$,
	'7: ... and for a column of the owner''s enum (an enum runs no code)');
SELECT throws_ok($$ALTER TYPE fc.comp2 ADD ATTRIBUTE b fc.dcheck$$, '42501', NULL,
	'7: a composite type a protected column uses cannot get an attribute of a domain with a check (42501)');
SELECT lives_ok($$ALTER TYPE fc.comp2 ADD ATTRIBUTE c text$$, '7: ... a plain attribute is fine');
-- ... nor through a range type whose subtype_diff is the owner's function: GiST calls it on
-- every tenant's writes, ANALYZE on every tenant's values (an eighth red-team pass)
CREATE FUNCTION fc.spy_diff(a int, b int) RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN (b - a)::float8;
END
$$;
CREATE TYPE fc.spyrange AS RANGE (subtype = int, subtype_diff = fc.spy_diff);
SELECT throws_ok($$ALTER TABLE fc.p ADD COLUMN r fc.spyrange$$, '42501', NULL,
	'7: a column of a range type whose subtype_diff is the owner''s function is refused (42501)');
SELECT throws_ok($$ALTER TABLE fc.p ADD COLUMN r fc.spymultirange$$, '42501', NULL,
	'7: ... and of its multirange (42501)');
CREATE TABLE fc.t_rng (id int, account_id uuid NOT NULL, r fc.spyrange);
CREATE INDEX ON fc.t_rng (account_id);
SELECT throws_ok($$SELECT hlauth.protect('fc.t_rng')$$, '42501', NULL,
	'7: ... and a table with one is not protected for a non-admin (42501)');
CREATE TABLE fc.t_dom (id int, account_id uuid NOT NULL, v fc.dcheck);
CREATE INDEX ON fc.t_dom (account_id);
SELECT throws_ok($$SELECT hlauth.protect('fc.t_dom')$$, '42501',
	'permission denied: table t_dom has column v of a type that runs a non-admin''s code',
	'7: a non-admin cannot protect a table with a column of such a domain (42501)');
SELECT throws_ok($$CREATE SCHEMA fc_sneak CREATE TABLE pp PARTITION OF fc.cp FOR VALUES IN ('e1000000-0000-4000-8000-0000000000cc')$$,
	'42501', NULL, '10: a partition of a protected table cannot be made inside CREATE SCHEMA (42501)');
RESET ROLE;
SELECT is((SELECT count(*) FROM fc.loot WHERE v LIKE 'def:%'), 0::bigint,
	'7: ... and none of the owner''s code ran');

-- ---------------------------------------------------------------------------
-- The audit trigger renders values with to_jsonb(), which calls a cast to json that the
-- owner of a type may create at any time: the owner's code inside every tenant's writes
-- (a ninth red-team pass). Values of types a non-admin owns are recorded as their output.
-- ---------------------------------------------------------------------------
SET ROLE fc_owner;
CREATE TYPE fc.e AS ENUM ('x', 'y');
CREATE FUNCTION fc.e_json(v fc.e) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO fc.loot VALUES ('cast:' || v::text);
	RETURN to_json('cast ' || v::text);
END
$$;
CREATE CAST (fc.e AS json) WITH FUNCTION fc.e_json(fc.e);
CREATE TABLE fc.au (id int PRIMARY KEY, account_id uuid NOT NULL, tag fc.e, tags fc.e[]);
CREATE INDEX ON fc.au (account_id);
SET client_min_messages = error;
SELECT hlauth.protect('fc.au') \g /dev/null
SET client_min_messages = warning;
RESET ROLE;
SELECT hlauth.audit('fc.au') \g /dev/null
BEGIN;
SET LOCAL ROLE fc_owner;
SELECT fch.login('B') \g /dev/null
INSERT INTO fc.au VALUES (1, fch.acct('B'), 'y', '{x,y}');
COMMIT;
SELECT is((SELECT count(*) FROM fc.loot WHERE v LIKE 'cast:%'), 0::bigint,
	'7: the owner''s cast to json does not run inside B''s audited insert');
SELECT is((SELECT new->>'tag' || ' ' || (new->>'tags') FROM hlauth.audit_log WHERE table_name = 'fc.au'),
	'y {x,y}', '7: ... the values of the owner''s enum are recorded as their output');

-- ---------------------------------------------------------------------------
-- Without hlauth preloaded, a non-admin's table is not protected
-- ---------------------------------------------------------------------------
SET ROLE fc_owner;
CREATE TABLE fc.late (id int PRIMARY KEY, account_id uuid NOT NULL);
CREATE INDEX ON fc.late (account_id);
RESET ROLE;
CREATE TABLE fch.admin_owned (id int PRIMARY KEY, account_id uuid NOT NULL);
CREATE INDEX ON fch.admin_owned (account_id);
SET session_preload_libraries = '';
SET client_min_messages = error;
SELECT throws_ok($$SELECT hlauth.protect('fc.late')$$, '55000',
	'hlauth must be preloaded to protect table "late", owned by role "fc_owner", which is not an hlauth admin',
	'preload: protect() refuses a non-admin''s table when hlauth is not preloaded (55000)');
SELECT lives_ok($$SELECT hlauth.protect('fch.admin_owned')$$,
	'preload: ... but protects an admin''s table');
SELECT throws_ok($$ALTER TABLE fch.admin_owned OWNER TO fc_owner$$, '55000', NULL,
	'preload: a protected table cannot be handed to a non-admin when hlauth is not preloaded (55000)');
SET session_preload_libraries = 'pg_stat_statements, $libdir/hlauth';
SELECT lives_ok($$SELECT hlauth.protect('fc.late')$$,
	'preload: with hlauth in session_preload_libraries, the table is protected');
SELECT lives_ok($$ALTER TABLE fch.admin_owned OWNER TO fc_owner$$,
	'preload: ... and a protected table can change hands');
RESET session_preload_libraries;
SET client_min_messages = warning;

SELECT * FROM finish();
