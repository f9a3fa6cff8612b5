-- test/pgtap/threats_audit.sql
-- THREATS.md item 17 (the audit trail): the app role updates, deletes or truncates
-- hlauth.audit_log; disables the trigger; writes forged audit rows; edits a sealed row (which
-- hlauth.audit_verify() must detect). Performed as:
--   ta_app     the pooled application role: member of hlauth_trusted, not owner, not
--              superuser, no BYPASSRLS; principals act through it (hlauth.set_principal)
--   ta_owner   the role that owns the audited tables (no hlauth role at all)
--   postgres   for what only a superuser (or a stolen disk) can do to the log: edit a sealed
--              record, delete one, forge one with a valid hash, edit or remove a seal.
--              Each such tamper is undone (tat.tampered rolls it back) after audit_verify()
--              has looked at it.
-- Item 19 (a crash in the middle of an audited write) needs a server killed and restarted:
-- it belongs to a Perl TAP test (test/t), not here.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- ---------------------------------------------------------------------------
-- Roles (cluster-wide: created idempotently, attributes forced every run)
-- ---------------------------------------------------------------------------
DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['ta_app', 'ta_owner'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r);
		END IF;
		EXECUTE format('ALTER ROLE %I NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT NOLOGIN', r);
		EXECUTE format('ALTER ROLE %I RESET ALL', r);
	END LOOP;
	IF pg_has_role('ta_owner', 'hlauth_trusted', 'MEMBER') THEN
		REVOKE hlauth_trusted FROM ta_owner;
	END IF;
	IF pg_has_role('ta_app', 'hlauth_admin', 'MEMBER') THEN
		REVOKE hlauth_admin FROM ta_app;
	END IF;
	IF pg_has_role('ta_owner', 'hlauth_admin', 'MEMBER') THEN
		REVOKE hlauth_admin FROM ta_owner;
	END IF;
END
$$;
GRANT hlauth_trusted TO ta_app;

-- ---------------------------------------------------------------------------
-- Fixtures (as postgres)
-- ---------------------------------------------------------------------------
CREATE SCHEMA tat;
GRANT USAGE ON SCHEMA tat TO PUBLIC;
-- Tenants (ids 'a0d1...'): agency G -> accounts A, B. Principals (ids 'a0d2...'): P reads the
-- audit and writes notes at A; Q writes notes at B.
CREATE FUNCTION tat.id(n text) RETURNS uuid LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE n
		WHEN 'G' THEN 'a0d10000-0000-4000-8000-0000000000a0'::uuid
		WHEN 'A' THEN 'a0d10000-0000-4000-8000-00000000000a'::uuid
		WHEN 'B' THEN 'a0d10000-0000-4000-8000-00000000000b'::uuid
		WHEN 'P' THEN 'a0d20000-0000-4000-8000-0000000000f1'::uuid
		WHEN 'Q' THEN 'a0d20000-0000-4000-8000-0000000000f2'::uuid
	END
$$;
CREATE FUNCTION tat.login(p text, t text) RETURNS void LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	SELECT hlauth.set_principal(tat.id(p), tat.id(t), 'ta/notes.write hlauth/audit.read')
$$;
-- Today's audit partition (where the records of this file are).
CREATE FUNCTION tat.today_part() RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT 'hlauth.' || quote_ident('audit_log_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD'))
$$;
-- Runs a tamper (as the caller), asks audit_verify(), then undoes the tamper; returns
-- audit_verify()'s first row as jsonb.
CREATE FUNCTION tat.tampered(tamper text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	res jsonb;
BEGIN
	BEGIN
		EXECUTE tamper;
		SELECT to_jsonb(v) INTO res FROM hlauth.audit_verify() v LIMIT 1;
		RAISE EXCEPTION 'tat: undo the tamper' USING ERRCODE = 'TA001';
	EXCEPTION WHEN SQLSTATE 'TA001' THEN
		NULL;
	END;
	RETURN res;
END
$$;
-- The same, but asks audit_seal(): its SQLSTATE, or 'sealed'.
CREATE FUNCTION tat.seal_after(tamper text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	res text;
BEGIN
	BEGIN
		EXECUTE tamper;
		BEGIN
			PERFORM hlauth.audit_seal();
			res := 'sealed';
		EXCEPTION WHEN OTHERS THEN
			res := SQLSTATE;
		END;
		RAISE EXCEPTION 'tat: undo the tamper' USING ERRCODE = 'TA001';
	EXCEPTION WHEN SQLSTATE 'TA001' THEN
		NULL;
	END;
	RETURN res;
END
$$;
-- What audit_verify() says, without what changes from run to run.
CREATE FUNCTION tat.verdict(v jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT v - 'seals_checked' - 'rows_checked' - 'seal_id' - 'part'
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tat TO PUBLIC;

DO $$
BEGIN
	PERFORM hlauth.create_tenant('agency', NULL, 'ta G', tat.id('G'));
	PERFORM hlauth.create_tenant('account', tat.id('G'), 'ta A', tat.id('A'));
	PERFORM hlauth.create_tenant('account', tat.id('G'), 'ta B', tat.id('B'));
	PERFORM hlauth.register_permission('ta/notes.write', 'write notes');
	PERFORM hlauth.grant_role(tat.id('P'), hlauth.create_role('ta reader writer', 'ta/notes.write hlauth/audit.read'), tat.id('A'));
	PERFORM hlauth.grant_role(tat.id('Q'), hlauth.create_role('ta writer', 'ta/notes.write'), tat.id('B'));
END
$$;

-- The owner's audited tables: notes (its pin never recorded), and a partitioned table.
CREATE SCHEMA ta AUTHORIZATION ta_owner;
GRANT USAGE ON SCHEMA ta TO ta_app;
SET ROLE ta_owner;
CREATE TABLE ta.notes (account_id uuid NOT NULL, id int NOT NULL, body text, pin text, PRIMARY KEY (account_id, id));
CREATE TABLE ta.parted (region int NOT NULL, id int NOT NULL, account_id uuid, body text, PRIMARY KEY (region, id))
	PARTITION BY LIST (region);
CREATE TABLE ta.parted_1 PARTITION OF ta.parted FOR VALUES IN (1);
CREATE TABLE ta.mine (id int PRIMARY KEY, v text);
CREATE FUNCTION ta.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
GRANT SELECT, INSERT, UPDATE, DELETE ON ta.notes, ta.parted TO ta_app;
RESET ROLE;
SELECT hlauth.audit('ta.notes', '{pin}', 'account_id');
SELECT hlauth.audit('ta.parted', '{}', 'account_id');

-- Records: P at A and Q at B write notes; then everything so far is sealed.
SET ROLE ta_app;
BEGIN;
SELECT tat.login('P', 'A');
INSERT INTO ta.notes VALUES (tat.id('A'), 1, 'a note', '1111'), (tat.id('A'), 2, 'another', '2222');
UPDATE ta.notes SET body = 'edited', pin = '3333' WHERE id = 1;
COMMIT;
BEGIN;
SELECT hlauth.set_principal(tat.id('Q'), tat.id('B'), 'ta/notes.write');
INSERT INTO ta.notes VALUES (tat.id('B'), 1, 'b note', '4444');
INSERT INTO ta.parted VALUES (1, 1, tat.id('B'), 'b row');
COMMIT;
RESET ROLE;
SELECT id AS first_seal FROM hlauth.audit_seal() \gset
-- a second seal over one more record, and a third over nothing: a chain of three
INSERT INTO ta.notes VALUES (tat.id('A'), 3, 'sealed second', '5555');
SELECT id AS middle_seal FROM hlauth.audit_seal() \gset
SELECT id AS last_seal FROM hlauth.audit_seal() \gset
-- The sealed record the tampers below aim at: the UPDATE of note 1.
CREATE TABLE tat.target AS
SELECT tableoid::regclass::text AS part, xid, seq FROM hlauth.audit_log
 WHERE table_name = 'ta.notes' AND op = 'UPDATE' ORDER BY xid, seq LIMIT 1;
GRANT SELECT ON tat.target TO PUBLIC;
CREATE TABLE tat.counts AS SELECT count(*) AS records FROM hlauth.audit_log;

SELECT plan(76);

-- ---------------------------------------------------------------------------
-- Preconditions
-- ---------------------------------------------------------------------------
SELECT is_empty($$SELECT rolname FROM pg_roles WHERE rolname IN ('ta_app', 'ta_owner') AND (rolsuper OR rolbypassrls)$$,
	'0: no attacker role is a superuser or has BYPASSRLS');
SELECT ok(pg_has_role('ta_app', 'hlauth_trusted', 'MEMBER') AND NOT pg_has_role('ta_app', 'hlauth_admin', 'MEMBER')
		  AND NOT pg_has_role('ta_owner', 'hlauth_trusted', 'MEMBER') AND NOT pg_has_role('ta_owner', 'hlauth_admin', 'MEMBER'),
	'0: ta_app is trusted and not an admin; ta_owner is neither');
SELECT is((SELECT string_agg(concat_ws(' ', relid::text, exclude_columns::text, tenant_column), '; ' ORDER BY relid::text COLLATE "C")
			 FROM hlauth.audited_tables),
	'ta.notes {pin} account_id; ta.parted {} account_id', '0: ta.notes (pin excluded) and ta.parted are audited');
SELECT is((SELECT count(*) FROM hlauth.audit_log WHERE table_name IN ('ta.notes', 'ta.parted')), 6::bigint,
	'0: the six writes were recorded');
SELECT is(tat.verdict((SELECT to_jsonb(v) FROM hlauth.audit_verify() v)),
	'{"ok": true, "bad_seq": null, "bad_xid": null, "problem": null}'::jsonb, '0: the three seals verify');
SELECT is((SELECT count(*) FROM hlauth.audit_log l, jsonb_each_text(coalesce(l.old, '{}') || coalesce(l.new, '{}')) k
			WHERE l.table_name = 'ta.notes' AND (k.key = 'pin' OR k.value ~ '^[0-9]{4}$')), 0::bigint,
	'0: no record holds a pin');

-- ---------------------------------------------------------------------------
-- 17: the app role updates, deletes or truncates the log (it can read its tenant's records)
-- ---------------------------------------------------------------------------
SET ROLE ta_app;
BEGIN;
SELECT tat.login('P', 'A');
SELECT is((SELECT count(*) FROM hlauth.audit_log WHERE tenant_id = tat.id('A')), 4::bigint,
	'17: (P at A, with hlauth/audit.read, reads the four records of A)');
SELECT is((SELECT count(*) FROM hlauth.audit_log WHERE tenant_id IS DISTINCT FROM tat.id('A')), 0::bigint,
	'17: ... and none of B''s or of no tenant');
SELECT throws_ok($$UPDATE hlauth.audit_log SET new = '{"body": "nothing happened"}' WHERE tenant_id = hlauth.tenant()$$,
	'42501', NULL, '17: the app role cannot UPDATE hlauth.audit_log');
SELECT throws_ok($$DELETE FROM hlauth.audit_log WHERE tenant_id = hlauth.tenant()$$,
	'42501', NULL, '17: ... nor DELETE from it');
SELECT throws_ok($$TRUNCATE hlauth.audit_log$$, '42501', NULL, '17: ... nor TRUNCATE it');
SELECT throws_ok(format('UPDATE %s SET new = %L', tat.today_part(), '{}'),
	'42501', NULL, '17: ... nor UPDATE today''s partition directly');
SELECT throws_ok(format('DELETE FROM %s', tat.today_part()), '42501', NULL, '17: ... nor DELETE from it');
SELECT throws_ok(format('TRUNCATE %s', tat.today_part()), '42501', NULL, '17: ... nor TRUNCATE it');
SELECT throws_ok(format('SELECT count(*) FROM %s', tat.today_part()), '42501', NULL,
	'17: ... nor read a partition around the log''s row-level security');
SELECT throws_ok($$DELETE FROM hlauth.audit_log_default$$, '42501', NULL, '17: ... nor DELETE from the default partition');
SELECT throws_ok($$TRUNCATE hlauth.audit_log_default$$, '42501', NULL, '17: ... nor TRUNCATE it');
SELECT throws_ok(format('DROP TABLE %s', tat.today_part()), '42501', NULL, '17: ... nor DROP a partition');
SELECT throws_ok(format('ALTER TABLE hlauth.audit_log DETACH PARTITION %s', tat.today_part()), '42501', NULL,
	'17: ... nor DETACH one');
SELECT throws_ok($$ALTER TABLE hlauth.audit_log DISABLE ROW LEVEL SECURITY$$, '42501', NULL,
	'17: ... nor turn off the log''s row-level security');
SELECT throws_ok($$UPDATE hlauth.audit_seals SET row_count = 0$$, '42501', NULL, '17: ... nor UPDATE the seals');
SELECT throws_ok($$DELETE FROM hlauth.audit_seals$$, '42501', NULL, '17: ... nor DELETE them');
SELECT throws_ok($$SELECT hlauth.audit_drop_sealed_partitions(now() - interval '1 day')$$, '42501', NULL,
	'17: ... nor run retention');
SELECT throws_ok($$SELECT * FROM hlauth.audit_verify()$$, '42501', NULL, '17: ... nor audit_verify()');
COMMIT;
-- the owner of the audited tables is no better off
SET ROLE ta_owner;
SELECT throws_ok($$UPDATE hlauth.audit_log SET new = '{}'$$, '42501', NULL, '17: the table owner cannot UPDATE the log');
SELECT throws_ok($$DELETE FROM hlauth.audit_log$$, '42501', NULL, '17: ... nor DELETE from it');
SELECT throws_ok($$TRUNCATE hlauth.audit_log$$, '42501', NULL, '17: ... nor TRUNCATE it');
RESET ROLE;
SELECT is((SELECT count(*) FROM hlauth.audit_log), (SELECT records FROM tat.counts),
	'17: after all that, every record is still there');

-- ---------------------------------------------------------------------------
-- 17: the trigger disabled (by the owner of the audited table)
-- ---------------------------------------------------------------------------
SET ROLE ta_app;
SELECT throws_ok($$ALTER TABLE ta.notes DISABLE TRIGGER hlauth_audit$$, '42501', NULL,
	'17: the app role (not the owner) cannot disable the audit trigger');
SELECT throws_ok($$DROP TRIGGER hlauth_audit ON ta.notes$$, '42501', NULL, '17: ... nor drop it');
SELECT throws_ok($$SELECT hlauth.unaudit('ta.notes')$$, '42501', NULL, '17: ... nor call unaudit()');
SELECT throws_ok($$SET session_replication_role = replica$$, '42501', NULL,
	'17: ... nor skip every trigger with session_replication_role');
SET ROLE ta_owner;
SELECT throws_ok($$DROP TRIGGER hlauth_audit ON ta.notes$$, '42501', NULL, '17: the owner cannot DROP TRIGGER hlauth_audit');
SELECT throws_ok($$DROP TRIGGER hlauth_audit_statement ON ta.notes$$, '42501', NULL,
	'17: ... nor DROP TRIGGER hlauth_audit_statement');
SELECT throws_ok($$ALTER TABLE ta.notes DISABLE TRIGGER hlauth_audit$$, '42501', NULL, '17: ... nor DISABLE TRIGGER hlauth_audit');
SELECT throws_ok($$ALTER TABLE ta.notes DISABLE TRIGGER hlauth_audit_statement$$, '42501', NULL,
	'17: ... nor DISABLE TRIGGER hlauth_audit_statement');
SELECT throws_ok($$ALTER TABLE ta.notes DISABLE TRIGGER ALL$$, '42501', NULL, '17: ... nor DISABLE TRIGGER ALL');
SELECT throws_ok($$ALTER TABLE ta.notes DISABLE TRIGGER USER$$, '42501', NULL, '17: ... nor DISABLE TRIGGER USER');
SELECT throws_ok($$ALTER TABLE ta.notes ENABLE REPLICA TRIGGER hlauth_audit$$, '42501', NULL,
	'17: ... nor make it fire only in replication');
SELECT throws_ok($$ALTER TRIGGER hlauth_audit ON ta.notes RENAME TO hlauth_audit_off$$, '42501', NULL,
	'17: ... nor rename it');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER hlauth_audit AFTER INSERT OR UPDATE OR DELETE ON ta.notes
				   FOR EACH ROW EXECUTE FUNCTION ta.noop()$$, '42501', NULL, '17: ... nor replace it with a no-op');
SELECT throws_ok($$ALTER TABLE ta.notes DROP CONSTRAINT notes_pkey$$, '42501', NULL,
	'17: ... nor drop the primary key the records identify rows by');
SELECT throws_ok($$ALTER TABLE ta.notes RENAME COLUMN pin TO pin_code$$, '42501', NULL,
	'17: ... nor rename an excluded column (its values would be recorded)');
SELECT throws_ok($$ALTER TABLE ta.notes DROP COLUMN pin$$, '42501', NULL, '17: ... nor drop it');
SELECT throws_ok($$SELECT hlauth.unaudit('ta.notes')$$, '42501', NULL, '17: ... nor call unaudit()');
SELECT throws_ok($$SELECT hlauth.audit('ta.notes', '{body,pin}', 'account_id')$$, '42501', NULL,
	'17: ... nor audit() again, excluding more');
SELECT throws_ok($$ALTER TABLE ta.parted_1 DISABLE TRIGGER hlauth_audit$$, '42501', NULL,
	'17: ... nor disable the audit trigger of a partition of an audited table');
SELECT throws_ok($$ALTER TABLE ta.parted_1 DISABLE TRIGGER ALL$$, '42501', NULL,
	'17: ... nor DISABLE TRIGGER ALL on that partition');
RESET ROLE;
SELECT is((SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
			WHERE c.relnamespace = 'ta'::regnamespace AND t.tgname LIKE 'hlauth_audit%' AND t.tgenabled = 'A'), 6::bigint,
	'17: the audit triggers of ta.notes, ta.parted and its partition (the row trigger''s clone, its own statement trigger) are all there and enabled, in every session_replication_role (ALWAYS)');
-- ... and they still record, whoever writes and however
SET ROLE ta_owner;
UPDATE ta.notes SET body = 'owner edit' WHERE id = 2;
INSERT INTO ta.parted VALUES (1, 2, tat.id('A'), 'owner row');
RESET ROLE;
SELECT is((SELECT count(*) FROM hlauth.audit_log), (SELECT records FROM tat.counts) + 2,
	'17: the owner''s writes were recorded');
SELECT is((SELECT db_role FROM hlauth.audit_log WHERE table_name = 'ta.parted' ORDER BY xid DESC, seq DESC LIMIT 1),
	'ta_owner', '17: ... as the owner''s');

-- ---------------------------------------------------------------------------
-- 17: forged records
-- ---------------------------------------------------------------------------
SET ROLE ta_app;
BEGIN;
SELECT tat.login('P', 'A');
SELECT throws_ok($$INSERT INTO hlauth.audit_log (logged_at, xid, seq, table_name, op, tenant_id, db_user, db_role, new, row_hash)
				   VALUES (now(), 1, 1, 'ta.notes', 'INSERT', hlauth.tenant(), 'x', 'x', '{}', '\x00')$$,
	'42501', NULL, '17: the app role cannot INSERT a record into hlauth.audit_log');
SELECT throws_ok(format('INSERT INTO %s SELECT * FROM hlauth.audit_log LIMIT 1', tat.today_part()),
	'42501', NULL, '17: ... nor into today''s partition (copying a record it can read)');
SELECT throws_ok($$INSERT INTO hlauth.audit_log_default SELECT * FROM hlauth.audit_log LIMIT 1$$,
	'42501', NULL, '17: ... nor into the default partition');
SELECT throws_ok($$INSERT INTO hlauth.audit_seals (started_at, sealed_at, xid_from, xid_to, snapshot_xmax, row_count, parts,
												  key_version, mac, sealed_by)
				   VALUES (now(), now(), 0, 1, 1, 0, '[]', 1, '\x00', 'x')$$,
	'42501', NULL, '17: ... nor a seal');
SELECT throws_ok($$SELECT hlauth.audit_seal()$$, '42501', NULL, '17: ... nor seal what is there');
SELECT throws_ok($$SELECT hlauth_internal.audit_mac('hlauth audit seal v1|1', 1)$$, '42501', NULL,
	'17: ... nor compute a seal''s MAC');
SELECT throws_ok($$SELECT hlauth_internal.audit_key_version()$$, '42501', NULL, '17: ... nor learn the seal key''s version');
COMMIT;
SET ROLE ta_owner;
-- (EXECUTE on the row trigger's function is PUBLIC: an owner adding a partition to an
-- audited table clones it. Attached by hand, it writes nothing.)
SELECT lives_ok($$CREATE TRIGGER fake AFTER INSERT ON ta.mine FOR EACH ROW EXECUTE FUNCTION hlauth_internal.audit_row('')$$,
	'17: the owner may attach the audit row trigger to a table of its own ...');
SELECT throws_ok($$INSERT INTO ta.mine VALUES (1, 'forged')$$, '42501', 'table "mine" is not audited by hlauth.audit()',
	'17: ... but a write then fails: the trigger records nothing for a table audit() did not register');
DROP TRIGGER fake ON ta.mine;
SELECT throws_ok($$CREATE TRIGGER fake AFTER INSERT ON ta.mine FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.audit_statement('')$$,
	'42501', NULL, '17: ... nor the statement trigger');
SELECT throws_ok($$SELECT hlauth.audit('ta.mine')$$, '42501', NULL, '17: ... nor audit() it');
RESET ROLE;
SELECT is((SELECT count(*) FROM hlauth.audit_log WHERE table_name = 'ta.mine' OR db_user = 'x'), 0::bigint,
	'17: no forged record reached the log');

-- ---------------------------------------------------------------------------
-- 17: a sealed record edited (by whoever can: a superuser, a stolen backup restored) is
-- detected by audit_verify(), and so is a forged, deleted or re-hashed one, or a seal changed
-- ---------------------------------------------------------------------------
SELECT is(tat.verdict(tat.tampered(format('UPDATE %s SET new = %L WHERE xid = %s AND seq = %s',
											(SELECT part FROM tat.target), '{"body": "nothing happened"}',
											(SELECT xid FROM tat.target), (SELECT seq FROM tat.target)))),
	jsonb_build_object('ok', false, 'bad_xid', (SELECT xid FROM tat.target), 'bad_seq', (SELECT seq FROM tat.target),
					   'problem', 'an audit record does not match its hash (it was changed)'),
	'17: a sealed record edited on its partition: audit_verify() names it');
SELECT is(tat.verdict(tat.tampered(format('UPDATE hlauth.audit_log SET changed = %L WHERE xid = %s AND seq = %s',
											'{body}', (SELECT xid FROM tat.target), (SELECT seq FROM tat.target)))),
	jsonb_build_object('ok', false, 'bad_xid', (SELECT xid FROM tat.target), 'bad_seq', (SELECT seq FROM tat.target),
					   'problem', 'an audit record does not match its hash (it was changed)'),
	'17: ... hiding that the pin changed, the same');
SELECT matches(tat.tampered(format(
		'UPDATE hlauth.audit_log SET new = %L WHERE xid = %s AND seq = %s; '
		'UPDATE hlauth.audit_log l SET row_hash = hlauth_internal.audit_row_hash(l) WHERE xid = %s AND seq = %s',
		'{"body": "nothing happened"}', (SELECT xid FROM tat.target), (SELECT seq FROM tat.target),
		(SELECT xid FROM tat.target), (SELECT seq FROM tat.target))) ->> 'problem',
	'^the records do not match the seal \((\d+) found, \1 sealed\)',
	'17: ... edited and re-hashed: the seal''s digest no longer matches');
SELECT matches(tat.tampered(format('DELETE FROM hlauth.audit_log WHERE xid = %s AND seq = %s',
								   (SELECT xid FROM tat.target), (SELECT seq FROM tat.target))) ->> 'problem',
	'^the records do not match the seal \(\d+ found, \d+ sealed\)',
	'17: a sealed record deleted: detected');
SELECT matches(tat.tampered(format('TRUNCATE %s', (SELECT part FROM tat.target))) ->> 'problem',
	'^the records do not match the seal \(0 found, \d+ sealed\)',
	'17: a sealed partition truncated: detected');
SELECT matches(tat.tampered(format(
		'INSERT INTO hlauth.audit_log SELECT logged_at, xid, 99, table_name, %L, pk, tenant_id, principal, impersonator, '
		'token_id, auth_method, db_user, db_role, NULL, new, NULL, %L FROM hlauth.audit_log WHERE xid = %s AND seq = %s; '
		'UPDATE hlauth.audit_log l SET row_hash = hlauth_internal.audit_row_hash(l) WHERE xid = %s AND seq = 99',
		'DELETE', '\x00', (SELECT xid FROM tat.target), (SELECT seq FROM tat.target), (SELECT xid FROM tat.target))) ->> 'problem',
	'^the records do not match the seal \(\d+ found, \d+ sealed\)',
	'17: a forged record (with a valid hash) in a sealed transaction: detected');
SELECT is(tat.tampered(format(
		'INSERT INTO hlauth.audit_log SELECT %L, xid, 99, table_name, %L, pk, tenant_id, principal, impersonator, '
		'token_id, auth_method, db_user, db_role, NULL, new, NULL, %L FROM hlauth.audit_log WHERE xid = %s AND seq = %s; '
		'UPDATE hlauth.audit_log l SET row_hash = hlauth_internal.audit_row_hash(l) WHERE xid = %s AND seq = 99',
		'2000-01-01 00:00:00+00', 'DELETE', '\x00', (SELECT xid FROM tat.target), (SELECT seq FROM tat.target),
		(SELECT xid FROM tat.target))) ->> 'problem',
	'1 records the seal does not cover were added to its transactions',
	'17: ... or in a partition the seal has no records of (back-dated): detected');
SELECT is(tat.tampered(format('UPDATE hlauth.audit_seals SET row_count = row_count - 1 WHERE id = %s', :first_seal)) ->> 'problem',
	'the seal''s signature does not match (the seal was changed or forged)',
	'17: a seal''s row count lowered (to match a deletion): its signature fails');
SELECT is(tat.tampered(format('UPDATE hlauth.audit_seals SET parts = %L WHERE id = %s', '[]', :first_seal)) ->> 'problem',
	'the seal''s signature does not match (the seal was changed or forged)',
	'17: a seal''s digests replaced: its signature fails');
SELECT is(tat.tampered(format('DELETE FROM hlauth.audit_seals WHERE id = %s', :middle_seal)) ->> 'problem',
	'the seal does not follow the one before it (a seal was removed or changed)',
	'17: a seal removed from the middle of the chain: detected');
SELECT is(tat.tampered(format('DELETE FROM hlauth.audit_seals WHERE id = %s', :first_seal)) ->> 'problem',
	'the first seal is missing', '17: the first seal removed: detected');
SELECT is(tat.seal_after(format('UPDATE hlauth.audit_log SET new = %L WHERE table_name = %L AND db_role = %L',
								'{"body": "rewritten"}', 'ta.notes', 'ta_owner')),
	'XX001', '17: audit_seal() refuses to seal records edited before any seal covered them');
SELECT is(tat.verdict((SELECT to_jsonb(v) FROM hlauth.audit_verify() v)),
	'{"ok": true, "bad_seq": null, "bad_xid": null, "problem": null}'::jsonb,
	'17: with every tamper undone, the log verifies again');

SELECT * FROM finish();
