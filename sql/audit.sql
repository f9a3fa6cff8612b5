-- audit: hlauth.audit() and its triggers (one record per row inserted, updated when
-- something changed, or deleted; one per TRUNCATE), what a record holds, who may read the
-- log, the DDL guard, seals and hlauth.audit_verify(), retention.
-- Attacks of THREATS.md item 17 are in test/pgtap/threats_audit.sql.
-- Nothing printed depends on the run: no xid, time, hash, MAC, OID or partition date.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_audit_app;
DROP ROLE IF EXISTS regress_audit_owner;
DROP ROLE IF EXISTS regress_audit_admin;
RESET client_min_messages;
-- The app server's role (trusted, not superuser, no BYPASSRLS), a role that owns an audited
-- table (not an admin), and an admin.
CREATE ROLE regress_audit_app NOSUPERUSER NOBYPASSRLS IN ROLE hlauth_trusted;
CREATE ROLE regress_audit_owner NOSUPERUSER NOBYPASSRLS;
CREATE ROLE regress_audit_admin NOSUPERUSER NOBYPASSRLS IN ROLE hlauth_admin;

-- Tenant ids start with 'a0d1', principal ids with 'a0d2'.
--   agency G1 -> account A (-> app A1), account B;  agency G2 -> account C
--   R reads the audit at A; GR at agency G1; W writes notes at A (no hlauth/audit.read)
CREATE TABLE au_names (id uuid PRIMARY KEY, name text UNIQUE NOT NULL);
INSERT INTO au_names VALUES
	('a0d10000-0000-4000-8000-000000000000', 'G1'), ('a0d11000-0000-4000-8000-000000000000', 'A'),
	('a0d11100-0000-4000-8000-000000000000', 'A1'), ('a0d12000-0000-4000-8000-000000000000', 'B'),
	('a0d18000-0000-4000-8000-000000000000', 'G2'), ('a0d18100-0000-4000-8000-000000000000', 'C'),
	('a0d20000-0000-4000-8000-0000000000a1', 'R'), ('a0d20000-0000-4000-8000-0000000000a2', 'W'),
	('a0d20000-0000-4000-8000-0000000000a3', 'GR');
GRANT SELECT ON au_names TO PUBLIC;
CREATE FUNCTION au(n text) RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT id FROM au_names WHERE name = n $$;
CREATE FUNCTION au_name(u uuid) RETURNS text LANGUAGE sql STABLE AS $$
	SELECT coalesce((SELECT name FROM au_names WHERE id = u), u::text)
$$;
-- The records of a table (after the first `after` ones), numbered by transaction.
CREATE FUNCTION au_log(tbl text, after bigint DEFAULT 0)
	RETURNS TABLE (tx bigint, seq integer, op text, pk jsonb, tenant text, changed text[], old jsonb, new jsonb)
	LANGUAGE sql STABLE AS $$
	SELECT dense_rank() OVER (ORDER BY x.xid), x.seq, x.op, x.pk, au_name(x.tenant_id), x.changed, x.old, x.new
	  FROM (SELECT * FROM hlauth.audit_log l WHERE l.table_name = tbl ORDER BY l.xid, l.seq OFFSET after) x
	 ORDER BY x.xid, x.seq
$$;
CREATE FUNCTION au_count(tbl text) RETURNS bigint LANGUAGE sql STABLE AS $$
	SELECT count(*) FROM hlauth.audit_log l WHERE l.table_name = tbl
$$;
-- Runs a statement with the caller's rights: 'ok', or its SQLSTATE and message (dates masked).
CREATE FUNCTION au_try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '[0-9]{8}', 'YYYYMMDD', 'g');
END
$$;

SELECT hlauth.create_tenant('agency', NULL, 'AU G1', au('G1')) IS NOT NULL AS g1,
       hlauth.create_tenant('account', au('G1'), 'AU A', au('A')) IS NOT NULL AS a,
       hlauth.create_tenant('app', au('A'), 'AU A1', au('A1')) IS NOT NULL AS a1,
       hlauth.create_tenant('account', au('G1'), 'AU B', au('B')) IS NOT NULL AS b,
       hlauth.create_tenant('agency', NULL, 'AU G2', au('G2')) IS NOT NULL AS g2,
       hlauth.create_tenant('account', au('G2'), 'AU C', au('C')) IS NOT NULL AS c;
SELECT hlauth.register_permission('au/notes.readonly', 'read audit-test notes');
SELECT hlauth.register_permission('au/notes.write', 'write audit-test notes', ARRAY['au/notes.readonly']);
SELECT hlauth.grant_role(au('R'), hlauth.create_role('regress audit reader', 'hlauth/audit.read au/notes.readonly'), au('A')) IS NOT NULL AS r_granted;
SELECT hlauth.grant_role(au('GR'), hlauth.create_role('regress audit agency reader', 'hlauth/audit.read'), au('G1')) IS NOT NULL AS gr_granted;
SELECT hlauth.grant_role(au('W'), hlauth.create_role('regress audit writer', 'au/notes.write'), au('A')) IS NOT NULL AS w_granted;

-- ---------------------------------------------------------------------------
-- audit(): a table with a primary key and a uuid tenant column, one column excluded
-- ---------------------------------------------------------------------------
CREATE TABLE au_items (id int PRIMARY KEY, account_id uuid, name text, qty int, note text, secret text);
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON au_items TO regress_audit_app;
SELECT hlauth.audit('au_items', '{secret}', 'account_id');
SELECT relid, exclude_columns, tenant_column, audited_at <= now() AS audited_at_ok FROM hlauth.audited_tables;
SELECT tgname, tgenabled, tgtype FROM pg_trigger WHERE tgrelid = 'au_items'::regclass ORDER BY tgname;
SELECT type, payload, actor_role FROM hlauth.security_events WHERE type LIKE 'audit.%' ORDER BY id;
-- today's partition exists (and the next 7 days')
SELECT to_regclass('hlauth.audit_log_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')) IS NOT NULL AS today_partition,
       to_regclass('hlauth.audit_log_p' || to_char(now() AT TIME ZONE 'UTC' + interval '7 days', 'YYYYMMDD')) IS NOT NULL AS in_7_days;

-- INSERT: one record per row, numbered within the transaction; excluded values never recorded
BEGIN;
INSERT INTO au_items VALUES (1, au('A'), 'pen', 10, 'blue', 'TOPSECRET-1');
INSERT INTO au_items VALUES (2, au('B'), 'ink', 5, NULL, 'TOPSECRET-2'), (3, NULL, 'pad', 1, 'no tenant', 'TOPSECRET-3');
COMMIT;
SELECT * FROM au_log('public.au_items');
SELECT au_count('public.au_items') AS m \gset
-- UPDATE: only what changed; the PK after the update; nothing at all when nothing changed
UPDATE au_items SET qty = qty + 1, note = 'red' WHERE id = 1;
UPDATE au_items SET name = name, qty = qty;
UPDATE au_items SET note = note WHERE id = 3;
UPDATE au_items SET secret = 'TOPSECRET-2b' WHERE id = 2;
UPDATE au_items SET note = NULL WHERE id = 1;
UPDATE au_items SET id = 10 WHERE id = 1;
UPDATE au_items SET account_id = au('B') WHERE id = 3;
UPDATE au_items SET qty = greatest(qty, 5);
-- DELETE: the row (without the excluded column)
DELETE FROM au_items WHERE id = 2;
SELECT * FROM au_log('public.au_items', :m);
-- Several changes in one transaction: one record each, in order
SELECT au_count('public.au_items') AS m \gset
BEGIN;
INSERT INTO au_items VALUES (4, au('A'), 'cup', 1, NULL, 'TOPSECRET-4');
UPDATE au_items SET qty = 2 WHERE id = 4;
UPDATE au_items SET qty = 3 WHERE id = 4;
DELETE FROM au_items WHERE id = 4;
COMMIT;
SELECT * FROM au_log('public.au_items', :m);
-- Multi-row statements
SELECT au_count('public.au_items') AS m \gset
INSERT INTO au_items SELECT g, au('A'), 'item ' || g, g, NULL, 'TOPSECRET-' || g FROM generate_series(100, 104) g;
UPDATE au_items SET note = 'bulk' WHERE id BETWEEN 100 AND 104 AND qty % 2 = 0;
DELETE FROM au_items WHERE id IN (101, 103);
SELECT * FROM au_log('public.au_items', :m);
-- INSERT ... ON CONFLICT: DO UPDATE records an UPDATE (when something changed), new rows an INSERT
SELECT au_count('public.au_items') AS m \gset
INSERT INTO au_items VALUES (10, au('A'), 'pen', 99, NULL, 'TOPSECRET-x'), (20, au('A'), 'new', 1, NULL, 'TOPSECRET-20')
	ON CONFLICT (id) DO UPDATE SET qty = excluded.qty;
INSERT INTO au_items VALUES (10, au('A'), 'pen', 99, NULL, 'x') ON CONFLICT (id) DO UPDATE SET qty = excluded.qty;
INSERT INTO au_items VALUES (10, au('A'), 'pen', 1, NULL, 'x') ON CONFLICT (id) DO NOTHING;
INSERT INTO au_items VALUES (20, au('A'), 'new', 1, NULL, 'x') ON CONFLICT (id) DO UPDATE SET secret = excluded.secret;
SELECT * FROM au_log('public.au_items', :m);
-- COPY and MERGE are recorded like the statements they stand for
SELECT au_count('public.au_items') AS m \gset
COPY au_items (id, account_id, name, qty, secret) FROM STDIN;
40	a0d11000-0000-4000-8000-000000000000	copied	1	TOPSECRET-40
41	\N	copied too	2	TOPSECRET-41
\.
MERGE INTO au_items i USING (VALUES (40, 'merged'), (42, 'merged new')) s(id, name) ON i.id = s.id
	WHEN MATCHED THEN UPDATE SET name = s.name
	WHEN NOT MATCHED THEN INSERT (id, account_id, name, qty, secret) VALUES (s.id, au('A'), s.name, 1, 'TOPSECRET-42');
MERGE INTO au_items i USING (VALUES (41)) s(id) ON i.id = s.id WHEN MATCHED THEN DELETE;
SELECT * FROM au_log('public.au_items', :m);
-- No record ever holds an excluded value; its name is in changed when it changed
SELECT count(*) AS records,
       count(*) FILTER (WHERE coalesce(old::text, '') || coalesce(new::text, '') LIKE '%TOPSECRET%') AS with_secret_value,
       count(*) FILTER (WHERE old ? 'secret' OR new ? 'secret') AS with_secret_key,
       count(*) FILTER (WHERE 'secret' = ANY (changed)) AS secret_changed
  FROM hlauth.audit_log WHERE table_name = 'public.au_items';
-- The fixed columns of every record so far
SELECT count(*) AS records, bool_and(xid > 0) AS xid_ok, bool_and(seq >= 1) AS seq_ok,
       bool_and(logged_at <= clock_timestamp() AND logged_at > now() - interval '1 hour') AS logged_at_ok,
       bool_and(length(row_hash) = 32) AS hash_len, bool_and(hlauth_internal.audit_row_hash(l) = row_hash) AS hash_ok,
       bool_and(principal IS NULL AND impersonator IS NULL AND token_id IS NULL AND auth_method IS NULL) AS no_context,
       bool_and(db_user = session_user AND db_role = current_user) AS db_roles,
       count(DISTINCT (xid, seq)) = count(*) AS unique_xid_seq
  FROM hlauth.audit_log l WHERE table_name = 'public.au_items';
-- TRUNCATE: one record, no row; without a context no tenant
SELECT au_count('public.au_items') AS m \gset
TRUNCATE au_items;
SELECT * FROM au_log('public.au_items', :m);

-- ---------------------------------------------------------------------------
-- The context: principal, method, token, database roles
-- ---------------------------------------------------------------------------
-- A protected table: audit() takes protect()'s tenant column.
CREATE TABLE au_notes (owner_account uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (owner_account, id));
SELECT hlauth.protect('au_notes', 'owner_account', 'au/notes.readonly', 'au/notes.write');
SELECT hlauth.audit('au_notes');
SELECT relid, exclude_columns, tenant_column FROM hlauth.audited_tables WHERE relid = 'au_notes'::regclass;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON au_notes TO regress_audit_app;
SET ROLE regress_audit_app;
BEGIN;
SELECT hlauth.set_principal(au('W'), au('A'), 'au/notes.write');
INSERT INTO au_notes (id, body) VALUES (1, 'first note'), (2, 'second note');
UPDATE au_notes SET body = 'edited' WHERE id = 1;
COMMIT;
-- through an API key: auth_method api_key, token_id the key's id
RESET ROLE;
SELECT hlauth.issue_api_key(au('W'), au('A'), 'au/notes.write', NULL, 'audit key') AS au_key \gset
SET ROLE regress_audit_app;
BEGIN;
SELECT hlauth.authenticate(:'au_key');
DELETE FROM au_notes WHERE id = 2;
COMMIT;
RESET ROLE;
SELECT op, pk, au_name(tenant_id) AS tenant, au_name(principal) AS principal, impersonator, auth_method,
       token_id = substr(:'au_key', 10, 12) AS token_is_key_id, token_id IS NULL AS no_token,
       db_user = session_user AS db_user_is_session, db_role, changed, old, new
  FROM hlauth.audit_log WHERE table_name = 'public.au_notes' ORDER BY xid, seq;
-- SET ROLE without a context: principal NULL, db_role the role set
SELECT au_count('public.au_items') AS m \gset
SET ROLE regress_audit_app;
INSERT INTO au_items VALUES (30, au('A'), 'app row', 1, NULL, 'TOPSECRET-30');
-- TRUNCATE in a context: the context's tenant
BEGIN;
SELECT hlauth.set_principal(au('W'), au('A'), 'au/notes.write');
TRUNCATE au_items;
COMMIT;
RESET ROLE;
SELECT op, pk, au_name(tenant_id) AS tenant, au_name(principal) AS principal, auth_method,
       db_user = session_user AS db_user_is_session, db_role
  FROM hlauth.audit_log WHERE table_name = 'public.au_items' ORDER BY xid, seq OFFSET :m;

-- ---------------------------------------------------------------------------
-- What audit() refuses
-- ---------------------------------------------------------------------------
CREATE TABLE au_nopk (id int, v text);
CREATE VIEW au_view AS SELECT * FROM au_items;
CREATE SEQUENCE au_seq;
CREATE TABLE au_text_tenant (id int PRIMARY KEY, account_id text, v text);
SELECT au_try($$SELECT hlauth.audit('au_items', '{id}')$$) AS pk_excluded;
SELECT au_try($$SELECT hlauth.audit('au_items', '{secret,nope}')$$) AS missing_column;
SELECT au_try($$SELECT hlauth.audit('au_items', '{secret}', 'nope')$$) AS missing_tenant_column;
SELECT au_try($$SELECT hlauth.audit('au_text_tenant', '{}', 'account_id')$$) AS text_tenant_column;
SELECT au_try($$SELECT hlauth.audit('au_nopk')$$) AS no_primary_key;
SELECT au_try($$SELECT hlauth.audit('au_view')$$) AS a_view;
SELECT au_try($$SELECT hlauth.audit('au_seq')$$) AS a_sequence;
SELECT au_try($$SELECT hlauth.audit('hlauth.tenants')$$) AS hlauth_table;
SELECT au_try($$SELECT hlauth.audit('hlauth.audit_log')$$) AS the_log_itself;
SELECT au_try($$SELECT hlauth.audit('hlauth_internal.audited_tables')$$) AS internal_table;
-- a refused call changed nothing: au_items is still audited as before
SELECT relid, exclude_columns, tenant_column FROM hlauth.audited_tables ORDER BY relid::text;
DROP VIEW au_view;

-- ---------------------------------------------------------------------------
-- Types: what to_jsonb() makes of the row, but timestamptz in UTC
-- ---------------------------------------------------------------------------
CREATE DOMAIN au_positive AS int CHECK (VALUE > 0);
CREATE TABLE au_types (
	id int PRIMARY KEY, i int, s smallint, b bigint, n numeric, n_nan numeric, n_inf numeric, n_typmod numeric(8,3),
	t text, vc varchar(10), c char(4), flag bool, u uuid, d date, d_inf date, ts timestamptz, ts_inf timestamptz,
	tsl timestamp, j jsonb, js json, f float8, f_nan float8, r real, arr text[], iarr int[], iv interval,
	dom au_positive, big text
);
SELECT hlauth.audit('au_types');
INSERT INTO au_types VALUES (1, -2147483648, -32768, 9223372036854775807, 12345678901234567890.000123456789,
	'NaN', '-Infinity', 1.5, E'h\u00e9llo "q" \\ \n\t', 'varchar', 'ab', true,
	'A0D1F9E8-B7C6-4D5A-8F00-0123456789AB', '2024-02-29', 'infinity', '2024-01-02 03:04:05.123456+02', '-infinity',
	'2024-01-02 03:04:05', '{"b": [1, 2.50, {"c": null}], "a": "x"}', '{"z": 1, "a": 2, "z": 3}', 1.5e300, 'NaN', 3.25,
	'{a,NULL,"c d"}', '{{1,2},{3,4}}', '1 day 2 hours', 7, NULL);
INSERT INTO au_types (id) VALUES (2);
SET timezone = 'Asia/Kolkata';
INSERT INTO au_types (id, ts) VALUES (3, '2024-06-30 23:59:59.5+05:30');
RESET timezone;
-- Every column agrees with to_jsonb(row) but ts (UTC in the record, the session's zone in to_jsonb)
SELECT a.id, array_agg(k.key ORDER BY k.key) FILTER (WHERE k.value IS DISTINCT FROM to_jsonb(a) -> k.key) AS differ,
       count(*) AS columns_recorded, count(*) = (SELECT count(*) FROM jsonb_object_keys(to_jsonb(a))) AS all_columns
  FROM hlauth.audit_log l JOIN au_types a ON a.id = (l.pk ->> 'id')::int, jsonb_each(l.new) k
 WHERE l.table_name = 'public.au_types' AND l.op = 'INSERT'
 GROUP BY a.id ORDER BY a.id;
SELECT (l.pk ->> 'id')::int AS id, l.new -> 'ts' AS ts, (l.new ->> 'ts')::timestamptz = a.ts AS same_instant,
       l.new -> 'ts_inf' AS ts_inf, l.new -> 'd_inf' AS d_inf, l.new -> 'n_nan' AS n_nan, l.new -> 'n_inf' AS n_inf,
       l.new -> 'f_nan' AS f_nan, l.new -> 'n' AS n, l.new -> 'js' AS js, l.new -> 'iarr' AS iarr, l.new -> 'u' AS u
  FROM hlauth.audit_log l JOIN au_types a ON a.id = (l.pk ->> 'id')::int
 WHERE l.table_name = 'public.au_types' AND l.op = 'INSERT' ORDER BY 1;
SELECT jsonb_typeof(new -> 'b') AS b, jsonb_typeof(new -> 'n') AS n, jsonb_typeof(new -> 'n_nan') AS n_nan,
       jsonb_typeof(new -> 'f') AS f, jsonb_typeof(new -> 'flag') AS flag, jsonb_typeof(new -> 'j') AS j,
       jsonb_typeof(new -> 'arr') AS arr, jsonb_typeof(new -> 'big') AS big_null
  FROM hlauth.audit_log WHERE table_name = 'public.au_types' AND pk = '{"id": 1}' AND op = 'INSERT';
-- Updates compare values: a large (TOASTed) value that did not change is not recorded
SELECT au_count('public.au_types') AS m \gset
UPDATE au_types SET big = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 2000) g) WHERE id = 2;
UPDATE au_types SET i = 1 WHERE id = 2;
UPDATE au_types SET big = big || '' , i = 2 WHERE id = 2;
UPDATE au_types SET j = '{"a": "x", "b": [1, 2.50, {"c": null}]}', js = js, arr = '{a,NULL,"c d"}' WHERE id = 1;
UPDATE au_types SET j = '{"a": "y", "b": [1, 2.50, {"c": null}]}', ts = ts + interval '1 second' WHERE id = 1;
SELECT tx, seq, op, pk, changed, length(new ->> 'big') AS new_big_length, old - 'big' AS old, new - 'big' AS new
  FROM au_log('public.au_types', :m);

-- ---------------------------------------------------------------------------
-- Transactions: what rolls back leaves no record
-- ---------------------------------------------------------------------------
SELECT au_count('public.au_items') AS m \gset
BEGIN;
INSERT INTO au_items VALUES (200, au('A'), 'kept', 1, NULL, 'TOPSECRET-200');
SAVEPOINT s1;
INSERT INTO au_items VALUES (201, au('A'), 'rolled back', 1, NULL, 'TOPSECRET-201');
UPDATE au_items SET qty = 0 WHERE id = 200;
ROLLBACK TO s1;
INSERT INTO au_items VALUES (202, au('A'), 'kept too', 1, NULL, 'TOPSECRET-202');
SAVEPOINT s2;
UPDATE au_items SET qty = 7 WHERE id = 202;
RELEASE s2;
COMMIT;
SELECT * FROM au_log('public.au_items', :m);
-- a rolled-back transaction: nothing
SELECT au_count('public.au_items') AS m \gset
BEGIN;
INSERT INTO au_items VALUES (210, au('A'), 'gone', 1, NULL, 'TOPSECRET-210');
DELETE FROM au_items WHERE id = 200;
ROLLBACK;
SELECT au_count('public.au_items') - :m AS after_rollback;
-- A statement that fails after the audit trigger fired for some of its rows (a later AFTER
-- trigger raises): inside an exception block its records go with it, the others stay.
CREATE FUNCTION au_refuse_negative() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.qty < 0 THEN
		RAISE EXCEPTION 'negative quantity';
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER zz_refuse_negative AFTER INSERT ON au_items FOR EACH ROW EXECUTE FUNCTION au_refuse_negative();
DO $$
BEGIN
	INSERT INTO au_items VALUES (300, NULL, 'before', 1, NULL, 'TOPSECRET-300');
	BEGIN
		INSERT INTO au_items VALUES (301, NULL, 'fine', 1, NULL, 'x'), (302, NULL, 'bad', -1, NULL, 'x');
	EXCEPTION WHEN raise_exception THEN
		RAISE NOTICE 'caught: %', SQLERRM;
	END;
	INSERT INTO au_items VALUES (303, NULL, 'after', 1, NULL, 'TOPSECRET-303');
END
$$;
-- the same at top level: the transaction fails; the next one starts clean
INSERT INTO au_items VALUES (304, NULL, 'fine', 1, NULL, 'x'), (305, NULL, 'bad', -1, NULL, 'x');
INSERT INTO au_items VALUES (306, NULL, 'next', 1, NULL, 'TOPSECRET-306');
DROP TRIGGER zz_refuse_negative ON au_items;
SELECT * FROM au_log('public.au_items', :m);
SELECT id FROM au_items WHERE id >= 300 ORDER BY id;

-- A statement of 2,500 rows: every row recorded (in batches), in one transaction, in order
CREATE TABLE au_bulk (id int PRIMARY KEY, v int);
SELECT hlauth.audit('au_bulk');
INSERT INTO au_bulk SELECT g, g FROM generate_series(1, 2500) g;
UPDATE au_bulk SET v = v + 1;
UPDATE au_bulk SET v = v WHERE id <= 1500;
SELECT op, count(*), count(DISTINCT xid) AS transactions, min(seq), max(seq), count(DISTINCT seq) AS distinct_seq,
       bool_and((pk ->> 'id')::int = seq) AS seq_follows_rows, count(DISTINCT pk) AS distinct_rows
  FROM hlauth.audit_log WHERE table_name = 'public.au_bulk' GROUP BY op ORDER BY op DESC;
-- 2,500 rows in a subtransaction that rolls back (records already written in batches go too)
BEGIN;
SAVEPOINT big;
DELETE FROM au_bulk;
ROLLBACK TO big;
DELETE FROM au_bulk WHERE id > 2498;
COMMIT;
SELECT op, count(*) FROM hlauth.audit_log WHERE table_name = 'public.au_bulk' GROUP BY op ORDER BY op DESC;
SELECT count(*) AS rows_left FROM au_bulk;

-- A trigger whose exception block writes to another audited table, and rolls that write
-- back for some rows: each row that fired it keeps its record (the inner statement writes
-- only the records of its own subtransaction, not the enclosing statement's), and a side
-- write rolled back leaves none. Then 2,500 rows, every other side write rolled back, across
-- batches of records.
CREATE TABLE au_main (id int PRIMARY KEY, v int);
CREATE TABLE au_side_table (id int PRIMARY KEY);
SELECT hlauth.audit('au_main'), hlauth.audit('au_side_table');
CREATE FUNCTION au_side_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		INSERT INTO au_side_table VALUES (NEW.id);
		IF NEW.v < 0 THEN
			RAISE EXCEPTION 'undo the side write';
		END IF;
	EXCEPTION WHEN raise_exception THEN
		NULL;
	END;
	RETURN NULL;
END
$$;
CREATE TRIGGER zz_side_write AFTER INSERT ON au_main FOR EACH ROW EXECUTE FUNCTION au_side_write();
INSERT INTO au_main VALUES (1, -1), (2, 5);
SELECT table_name, op, pk FROM hlauth.audit_log
 WHERE table_name IN ('public.au_main', 'public.au_side_table') ORDER BY xid, seq;
INSERT INTO au_main SELECT g, CASE WHEN g % 2 = 0 THEN -1 ELSE 1 END FROM generate_series(3, 2502) g;
SELECT (SELECT count(*) FROM au_main) AS main_rows,
       (SELECT count(*) FROM hlauth.audit_log WHERE table_name = 'public.au_main' AND op = 'INSERT') AS main_records,
       (SELECT count(*) FROM au_side_table) AS side_rows,
       (SELECT count(*) FROM hlauth.audit_log WHERE table_name = 'public.au_side_table' AND op = 'INSERT') AS side_records,
       (SELECT count(*) FROM au_main m WHERE NOT EXISTS (
			SELECT 1 FROM hlauth.audit_log l
			 WHERE l.table_name = 'public.au_main' AND l.pk = jsonb_build_object('id', m.id))) AS rows_without_record,
       (SELECT count(*) FROM hlauth.audit_log l WHERE l.table_name = 'public.au_side_table' AND NOT EXISTS (
			SELECT 1 FROM au_side_table t WHERE jsonb_build_object('id', t.id) = l.pk)) AS records_without_row;

-- ---------------------------------------------------------------------------
-- A partitioned table: audit the parent; rows in partitions carry the parent's name
-- ---------------------------------------------------------------------------
CREATE TABLE au_parted (id int, region int, account_id uuid, v text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
CREATE TABLE au_parted_1 PARTITION OF au_parted FOR VALUES IN (1);
CREATE TABLE au_parted_2 PARTITION OF au_parted FOR VALUES IN (2);
SELECT hlauth.audit('au_parted', '{}', 'account_id');
-- a partition attached later is audited too (its columns in another order, one dropped)
CREATE TABLE au_parted_3 (v text, gone int, account_id uuid, region int, id int, PRIMARY KEY (region, id));
ALTER TABLE au_parted_3 DROP COLUMN gone;
ALTER TABLE au_parted ATTACH PARTITION au_parted_3 FOR VALUES IN (3);
INSERT INTO au_parted VALUES (1, 1, au('A'), 'one'), (2, 2, au('B'), 'two'), (3, 3, au('C'), 'three');
UPDATE au_parted SET v = 'uno' WHERE id = 1;
-- a row moved to another partition: PostgreSQL runs it as a DELETE and an INSERT
UPDATE au_parted SET region = 2 WHERE id = 1;
DELETE FROM au_parted WHERE id = 3;
SELECT * FROM au_log('public.au_parted');
SELECT DISTINCT table_name FROM hlauth.audit_log WHERE table_name LIKE '%au_parted%';
-- The owner of an audited partitioned table can add partitions (the row trigger is cloned,
-- which needs EXECUTE on its function); they are audited like the others
CREATE ROLE regress_audit_parted_owner NOSUPERUSER NOBYPASSRLS;
CREATE SCHEMA au_po AUTHORIZATION regress_audit_parted_owner;
CREATE TABLE au_p2 (id int, region int, v text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
ALTER TABLE au_p2 OWNER TO regress_audit_parted_owner;
SELECT hlauth.audit('au_p2');
SET ROLE regress_audit_parted_owner;
CREATE TABLE au_po.au_p2_1 PARTITION OF au_p2 FOR VALUES IN (1);
CREATE TABLE au_po.au_p2_2 (id int, region int, v text, PRIMARY KEY (region, id));
ALTER TABLE au_p2 ATTACH PARTITION au_po.au_p2_2 FOR VALUES IN (2);
INSERT INTO au_p2 VALUES (1, 1, 'one'), (2, 2, 'two');
RESET ROLE;
SELECT table_name, op, pk FROM hlauth.audit_log WHERE table_name = 'public.au_p2' ORDER BY xid, seq;
-- A table audited on its own, then attached to a partitioned table that is not audited:
-- its records keep its own name (the table audit() was given), not the new parent's
CREATE TABLE au_top (id int, region int, v text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
CREATE TABLE au_solo (id int, region int, v text, PRIMARY KEY (region, id));
SELECT hlauth.audit('au_solo');
ALTER TABLE au_top ATTACH PARTITION au_solo FOR VALUES IN (5);
INSERT INTO au_top VALUES (1, 5, 'via the parent');
INSERT INTO au_solo VALUES (2, 5, 'direct');
SELECT table_name, op, pk FROM hlauth.audit_log WHERE table_name IN ('public.au_solo', 'public.au_top') ORDER BY xid, seq;
-- hlauth's row trigger attached by hand to a table hlauth.audit() did not register writes
-- nothing: the write fails
CREATE TABLE au_rogue (id int PRIMARY KEY);
CREATE TRIGGER hlauth_audit AFTER INSERT OR UPDATE OR DELETE ON au_rogue FOR EACH ROW EXECUTE FUNCTION hlauth_internal.audit_row('');
SELECT au_try('INSERT INTO au_rogue VALUES (1)') AS rogue_trigger;
SELECT count(*) AS rogue_records FROM hlauth.audit_log WHERE table_name = 'public.au_rogue';
DROP TABLE au_rogue;
-- A partition made by CREATE SCHEMA ... CREATE TABLE gets the statement trigger too: its
-- TRUNCATE is recorded
CREATE SCHEMA au_s CREATE TABLE au_p2_9 PARTITION OF public.au_p2 FOR VALUES IN (9);
INSERT INTO au_s.au_p2_9 VALUES (1, 9, 'nine');
TRUNCATE au_s.au_p2_9;
SELECT table_name, op, pk FROM hlauth.audit_log WHERE table_name = 'public.au_p2' AND op IN ('TRUNCATE') ORDER BY xid, seq;
-- Detaching a partition of an audited table is recorded as a security event (a detached
-- partition is no longer audited)
SELECT count(*) AS ev FROM hlauth.security_events \gset
SET ROLE regress_audit_parted_owner;
ALTER TABLE au_p2 DETACH PARTITION au_po.au_p2_2;
RESET ROLE;
SELECT type, payload ->> 'table' AS tbl, payload ->> 'partition' AS part, payload ->> 'by' AS by
  FROM hlauth.security_events ORDER BY id OFFSET :ev;
DROP TABLE au_po.au_p2_2;
-- Dropping a partition of an audited table directly removes its rows without records: it is
-- recorded as a security event
SELECT count(*) AS ev FROM hlauth.security_events \gset
SET ROLE regress_audit_parted_owner;
DROP TABLE au_po.au_p2_1;
RESET ROLE;
SELECT type, payload ->> 'table' AS tbl, payload ->> 'by' AS by FROM hlauth.security_events ORDER BY id OFFSET :ev;
-- Written straight into a partition: recorded all the same, under the parent's name
SELECT au_count('public.au_parted') AS m \gset
INSERT INTO au_parted_1 VALUES (10, 1, au('A'), 'direct');
UPDATE au_parted_1 SET v = 'direct, edited' WHERE id = 10;
DELETE FROM au_parted_2 WHERE id = 2;
TRUNCATE au_parted_3;
SELECT * FROM au_log('public.au_parted', :m);
SELECT id, region, v FROM au_parted ORDER BY region, id;

-- ---------------------------------------------------------------------------
-- Reading: hlauth/audit.read at a tenant shows that tenant's records and those beneath it
-- ---------------------------------------------------------------------------
-- records of A1 (an app beneath A) and of C (another agency)
INSERT INTO au_items VALUES (400, au('A1'), 'app a1', 1, NULL, 'TOPSECRET-400'), (401, au('C'), 'agency 2', 1, NULL, 'TOPSECRET-401');
SELECT string_agg(DISTINCT au_name(tenant_id), ',' ORDER BY au_name(tenant_id)) AS tenants_recorded,
       count(*) FILTER (WHERE tenant_id IS NULL) > 0 AS some_without_tenant
  FROM hlauth.audit_log;
SELECT count(*) AS a_records FROM hlauth.audit_log WHERE tenant_id IN (au('A'), au('A1')) \gset
SELECT count(*) AS g1_records FROM hlauth.audit_log WHERE tenant_id IN (au('A'), au('A1'), au('B')) \gset
SET ROLE regress_audit_app;
BEGIN;
SELECT hlauth.set_principal(au('R'), au('A'), 'hlauth/audit.read au/notes.readonly');
SELECT string_agg(DISTINCT au_name(tenant_id), ',' ORDER BY au_name(tenant_id)) AS r_at_a_sees,
       count(*) = :a_records AS all_of_a
  FROM hlauth.audit_log;
COMMIT;
BEGIN;
SELECT hlauth.set_principal(au('GR'), au('G1'), 'hlauth/audit.read');
SELECT string_agg(DISTINCT au_name(tenant_id), ',' ORDER BY au_name(tenant_id)) AS gr_at_g1_sees,
       count(*) = :g1_records AS all_of_g1
  FROM hlauth.audit_log;
COMMIT;
BEGIN;
SELECT hlauth.set_principal(au('GR'), au('B'), 'hlauth/audit.read');
SELECT string_agg(DISTINCT au_name(tenant_id), ',' ORDER BY au_name(tenant_id)) AS gr_at_b_sees FROM hlauth.audit_log;
COMMIT;
-- R asks for hlauth/audit.read at B, where it holds nothing: none
BEGIN;
SELECT hlauth.set_principal(au('R'), au('B'), 'hlauth/audit.read');
SELECT count(*) AS r_at_b_sees FROM hlauth.audit_log;
COMMIT;
-- without the scope (W, or R not asking for it): none
BEGIN;
SELECT hlauth.set_principal(au('W'), au('A'), 'au/notes.write hlauth/audit.read');
SELECT count(*) AS w_sees FROM hlauth.audit_log;
COMMIT;
BEGIN;
SELECT hlauth.set_principal(au('R'), au('A'), 'au/notes.readonly');
SELECT count(*) AS r_without_scope_sees FROM hlauth.audit_log;
COMMIT;
-- no context: none
SELECT count(*) AS no_context_sees FROM hlauth.audit_log;
RESET ROLE;
-- an admin sees them all
SET ROLE regress_audit_admin;
SELECT count(*) = (SELECT count(*) FROM hlauth.audit_log) AS admin_sees_all FROM hlauth.audit_log;
RESET ROLE;
SELECT 'hlauth.' || quote_ident('audit_log_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')) AS today_part \gset
-- The app role writes nothing in the log, reads no partition, runs none of the functions
SET ROLE regress_audit_app;
BEGIN;
SELECT hlauth.set_principal(au('R'), au('A'), 'hlauth/audit.read');
SELECT au_try($$INSERT INTO hlauth.audit_log (logged_at, xid, seq, table_name, op, db_user, db_role, row_hash)
                VALUES (now(), 1, 1, 'public.au_items', 'INSERT', 'x', 'x', '\x00')$$) AS insert_log;
SELECT au_try($$UPDATE hlauth.audit_log SET new = '{}'$$) AS update_log;
SELECT au_try($$DELETE FROM hlauth.audit_log$$) AS delete_log;
SELECT au_try($$TRUNCATE hlauth.audit_log$$) AS truncate_log;
SELECT au_try(format('SELECT count(*) FROM %s', :'today_part')) AS select_partition;
SELECT au_try(format('INSERT INTO %s SELECT * FROM hlauth.audit_log LIMIT 1', :'today_part')) AS insert_partition;
SELECT au_try(format('UPDATE %s SET new = %L', :'today_part', '{}')) AS update_partition;
SELECT au_try(format('DELETE FROM %s', :'today_part')) AS delete_partition;
SELECT au_try(format('TRUNCATE %s', :'today_part')) AS truncate_partition;
SELECT au_try($$SELECT count(*) FROM hlauth.audit_log_default$$) AS select_default;
SELECT au_try($$DELETE FROM hlauth.audit_log_default$$) AS delete_default;
SELECT au_try($$SELECT count(*) FROM hlauth.audit_seals$$) AS select_seals;
SELECT au_try($$SELECT count(*) FROM hlauth.audited_tables$$) AS select_audited_tables;
SELECT au_try($$SELECT hlauth.audit_seal()$$) AS seal;
SELECT au_try($$SELECT * FROM hlauth.audit_verify()$$) AS verify;
SELECT au_try($$SELECT hlauth.audit('au_items', '{secret,note}')$$) AS audit;
SELECT au_try($$SELECT hlauth.unaudit('au_items')$$) AS unaudit;
SELECT au_try($$SELECT hlauth.audit_create_partitions(1)$$) AS create_partitions;
SELECT au_try($$SELECT hlauth.audit_drop_sealed_partitions(now() - interval '1 day')$$) AS drop_partitions;
SELECT au_try($$SELECT hlauth_internal.audit_mac('x', 1)$$) AS mac;
COMMIT;
RESET ROLE;
-- ... nor attaches the audit trigger to a table of its own (to write records of its choosing)
CREATE SCHEMA au_app AUTHORIZATION regress_audit_app;
SET ROLE regress_audit_app;
CREATE TABLE au_app.mine (id int PRIMARY KEY, v text);
SELECT au_try($$CREATE TRIGGER fake AFTER INSERT ON au_app.mine FOR EACH ROW EXECUTE FUNCTION hlauth_internal.audit_row('')$$) AS row_trigger;
SELECT au_try($$CREATE TRIGGER fake AFTER INSERT ON au_app.mine FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.audit_statement('')$$) AS statement_trigger;
-- (the row trigger may be attached, as table owners adding partitions need; it then
-- refuses to record a table audit() did not register, so nothing is forged)
SELECT au_try($$INSERT INTO au_app.mine VALUES (1, 'forged')$$) AS write_through_attached_trigger;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- The DDL guard: the audit triggers go only through unaudit()
-- ---------------------------------------------------------------------------
CREATE TABLE au_owned (id int PRIMARY KEY, account_id uuid, pin text, v text);
ALTER TABLE au_owned OWNER TO regress_audit_owner;
SELECT hlauth.audit('au_owned', '{pin}', 'account_id');
CREATE FUNCTION au_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
-- the owner (not an admin)
SET ROLE regress_audit_owner;
SELECT au_try('DROP TRIGGER hlauth_audit ON au_owned') AS drop_trigger;
SELECT au_try('DROP TRIGGER hlauth_audit_statement ON au_owned') AS drop_statement_trigger;
SELECT au_try('ALTER TABLE au_owned DISABLE TRIGGER hlauth_audit') AS disable_trigger;
SELECT au_try('ALTER TABLE au_owned DISABLE TRIGGER hlauth_audit_statement') AS disable_statement_trigger;
SELECT au_try('ALTER TABLE au_owned DISABLE TRIGGER ALL') AS disable_all;
SELECT au_try('ALTER TABLE au_owned DISABLE TRIGGER USER') AS disable_user;
SELECT au_try('ALTER TABLE au_owned ENABLE REPLICA TRIGGER hlauth_audit') AS replica_only;
SELECT au_try('ALTER TRIGGER hlauth_audit ON au_owned RENAME TO hlauth_audit_old') AS rename_trigger;
SELECT au_try('CREATE OR REPLACE TRIGGER hlauth_audit AFTER INSERT OR UPDATE OR DELETE ON au_owned FOR EACH ROW EXECUTE FUNCTION au_noop()') AS replace_trigger;
SELECT au_try('ALTER TABLE au_owned RENAME COLUMN pin TO pin_code') AS rename_excluded;
SELECT au_try('ALTER TABLE au_owned DROP COLUMN pin') AS drop_excluded;
SELECT au_try('ALTER TABLE au_owned DROP CONSTRAINT au_owned_pkey') AS drop_pk;
SELECT au_try('SELECT hlauth.unaudit(''au_owned'')') AS unaudit;
SELECT au_try('SET session_replication_role = replica') AS replication_role;
-- what does not touch the audit is allowed: a column renamed is recorded under its new name
SELECT au_try('ALTER TABLE au_owned RENAME COLUMN v TO val') AS rename_recorded_column;
SELECT au_try('ALTER TABLE au_owned ADD COLUMN extra int') AS add_column;
INSERT INTO au_owned VALUES (1, au('A'), '1234', 'owned', 5);
RESET ROLE;
-- a superuser is held to the same rules
SELECT au_try('DROP TRIGGER hlauth_audit ON au_owned') AS su_drop_trigger;
SELECT au_try('ALTER TABLE au_owned DISABLE TRIGGER hlauth_audit') AS su_disable_trigger;
SELECT au_try('ALTER TABLE au_owned DISABLE TRIGGER ALL') AS su_disable_all;
SELECT au_try('ALTER TABLE au_owned RENAME COLUMN pin TO pin_code') AS su_rename_excluded;
SELECT au_try('ALTER TABLE au_owned DROP CONSTRAINT au_owned_pkey') AS su_drop_pk;
-- the triggers of a partition belong to the audit of its parent
ALTER TABLE au_parted_1 OWNER TO regress_audit_owner;
SET ROLE regress_audit_owner;
SELECT left(au_try('ALTER TABLE au_parted_1 DISABLE TRIGGER hlauth_audit'), 5) AS disable_partition_trigger;
SELECT left(au_try('ALTER TABLE au_parted_1 DISABLE TRIGGER ALL'), 5) AS disable_partition_all;
RESET ROLE;
SELECT left(au_try('ALTER TABLE au_parted_1 DISABLE TRIGGER ALL'), 5) AS su_disable_partition_all;
SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relname LIKE 'au_parted%' AND t.tgname LIKE 'hlauth_audit%' ORDER BY 1, 2;
-- Column types do not change (ALTER COLUMN ... TYPE rewrites every row and fires no
-- trigger): not by the owner, not by a superuser, not even to the same type; nothing changed
SET ROLE regress_audit_owner;
SELECT au_try($$ALTER TABLE au_owned ALTER COLUMN val TYPE text USING 'FORGED'$$) AS owner_rewrite_same_type;
SELECT au_try($$ALTER TABLE au_owned ALTER COLUMN account_id TYPE uuid USING 'a0d12000-0000-4000-8000-000000000000'$$) AS owner_rewrite_tenant;
SELECT au_try($$ALTER TABLE au_owned ALTER COLUMN extra TYPE bigint$$) AS owner_retype;
RESET ROLE;
SELECT au_try($$ALTER TABLE au_owned ALTER COLUMN val TYPE text USING 'FORGED'$$) AS su_rewrite;
SELECT count(*) FILTER (WHERE val = 'FORGED') AS forged, count(*) FILTER (WHERE account_id = au('A')) AS still_tenant_a,
       format_type(a.atttypid, a.atttypmod) AS extra_type
  FROM au_owned, pg_attribute a WHERE a.attrelid = 'au_owned'::regclass AND a.attname = 'extra' GROUP BY a.atttypid, a.atttypmod;
-- No inheritance child (its rows, changed through the parent, would not be recorded)
SELECT au_try('CREATE TABLE au_owned_child () INHERITS (au_owned)') AS inherits_child;
CREATE TABLE au_owned_child2 (id int NOT NULL, account_id uuid, pin text, val text, extra int);
SELECT au_try('ALTER TABLE au_owned_child2 INHERIT au_owned') AS inherit_later;
DROP TABLE au_owned_child2;
-- An excluded column made part of the primary key: writes fail closed (the key is in every
-- record), and the value is never recorded
-- (the key changed as the superuser here: the owner lacks CREATE on schema public)
ALTER TABLE au_owned DROP CONSTRAINT au_owned_pkey, ADD PRIMARY KEY (id, pin);
SET ROLE regress_audit_owner;
SELECT au_try($$INSERT INTO au_owned VALUES (2, au('A'), 'SECRET-PIN', 'x', 1)$$) AS write_with_excluded_key;
RESET ROLE;
ALTER TABLE au_owned DROP CONSTRAINT au_owned_pkey, ADD PRIMARY KEY (id);
SELECT count(*) AS secret_recorded FROM hlauth.audit_log WHERE pk::text LIKE '%SECRET-PIN%' OR new::text LIKE '%SECRET-PIN%';
SELECT count(*) AS row_written FROM au_owned WHERE id = 2;
-- after all that, the triggers are as audit() made them and still record
SELECT tgname, tgenabled, tgtype FROM pg_trigger WHERE tgrelid = 'au_owned'::regclass ORDER BY tgname;
UPDATE au_owned SET pin = '9999', val = 'changed';
SELECT * FROM au_log('public.au_owned');
-- unaudit() by an admin: recorded as a security event; the records stay, writes are no longer recorded
SELECT count(*) AS ev FROM hlauth.security_events \gset
SET ROLE regress_audit_admin;
SELECT hlauth.unaudit('au_owned');
SELECT hlauth.unaudit('au_owned');
RESET ROLE;
SELECT type, payload, actor_role FROM hlauth.security_events ORDER BY id OFFSET :ev;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'au_owned'::regclass;
UPDATE au_owned SET val = 'unaudited';
SELECT au_count('public.au_owned') AS still_two;
-- now the owner may change what the guard protected, then an admin audits it again
SET ROLE regress_audit_owner;
ALTER TABLE au_owned RENAME COLUMN pin TO pin_code;
RESET ROLE;
SELECT count(*) AS ev FROM hlauth.security_events \gset
SET ROLE regress_audit_admin;
SELECT hlauth.audit('au_owned', '{pin_code}', 'account_id');
RESET ROLE;
SELECT type, payload, actor_role FROM hlauth.security_events ORDER BY id OFFSET :ev;
-- dropping an audited table is allowed: it is unregistered (its records stay)
SELECT count(*) AS ev FROM hlauth.security_events \gset
SET ROLE regress_audit_owner;
DROP TABLE au_owned;
RESET ROLE;
SELECT type, payload ? 'table_oid' AS has_oid FROM hlauth.security_events ORDER BY id OFFSET :ev;
SELECT relid FROM hlauth.audited_tables ORDER BY relid::text;
SELECT au_count('public.au_owned') AS records_kept;

-- ---------------------------------------------------------------------------
-- Seals and audit_verify()
-- ---------------------------------------------------------------------------
SELECT hlauth.audit_verify() AS v;
SELECT id AS seal1, row_count AS seal1_rows FROM hlauth.audit_seal() \gset
SELECT :seal1_rows = (SELECT count(*) FROM hlauth.audit_log) AS covers_every_record,
       (SELECT sum((e ->> 'rows')::bigint) FROM jsonb_array_elements(s.parts) e) = s.row_count AS parts_add_up,
       s.xid_from = 0 AS first_from_zero, s.xid_to > s.xid_from AS has_range, s.snapshot_xmax >= s.xid_to AS xmax_ok,
       s.prev_mac IS NULL AS first_has_no_prev, length(s.mac) = 32 AS mac_len, s.key_version, s.sealed_by,
       s.started_at <= s.sealed_at AS times_ok
  FROM hlauth.audit_seals s WHERE s.id = :seal1;
SELECT type, payload ->> 'rows' = :'seal1_rows' AS rows_ok FROM hlauth.security_events WHERE type = 'audit.sealed';
-- What the checks below print
CREATE TEMP VIEW au_v AS
SELECT v.ok, v.seals_checked,
       CASE WHEN v.ok THEN v.rows_checked = (SELECT coalesce(sum((e ->> 'rows')::bigint), 0)
                                               FROM hlauth.audit_seals s, jsonb_array_elements(s.parts) e
                                              WHERE NOT EXISTS (SELECT 1 FROM hlauth.audit_dropped_partitions d
                                                                 WHERE d.partition = e ->> 'partition')) END AS all_rows_checked,
       v.seal_id - :seal1 + 1 AS seal_no, v.part IS NOT NULL AS part_named,
       v.bad_xid IS NOT NULL AS bad_xid, v.bad_seq IS NOT NULL AS bad_seq,
       regexp_replace(v.problem, '[0-9]+ found, [0-9]+ sealed', 'N found, N sealed') AS problem,
       (regexp_match(v.problem, '([0-9]+) found, ([0-9]+) sealed'))[1]::int
         - (regexp_match(v.problem, '([0-9]+) found, ([0-9]+) sealed'))[2]::int AS found_minus_sealed
  FROM hlauth.audit_verify() v;
SELECT * FROM au_v;
-- a sealed record to tamper with: the UPDATE of item 1
SELECT tableoid::regclass AS tpart, xid AS txid, seq AS tseq, new::text AS tnew
  FROM hlauth.audit_log WHERE table_name = 'public.au_items' AND op = 'UPDATE' ORDER BY xid, seq LIMIT 1 \gset
-- (a) its new value changed, on the partition: that record is reported; restored, verify passes again
BEGIN;
UPDATE :tpart SET new = '{"qty": 1000000}' WHERE xid = :txid AND seq = :tseq;
SELECT * FROM au_v;
SELECT bad_xid = :txid AS reports_xid, bad_seq = :tseq AS reports_seq, ('hlauth.' || part)::regclass = :'tpart'::regclass AS reports_part
  FROM hlauth.audit_verify();
UPDATE :tpart SET new = :'tnew' WHERE xid = :txid AND seq = :tseq;
SELECT * FROM au_v;
ROLLBACK;
-- (b) a sealed record deleted
BEGIN;
DELETE FROM hlauth.audit_log WHERE xid = :txid AND seq = :tseq;
SELECT * FROM au_v;
ROLLBACK;
-- (c) a sealed record changed and its hash recomputed: every hash matches, the seal does not
BEGIN;
UPDATE hlauth.audit_log SET new = '{"qty": 0}' WHERE xid = :txid AND seq = :tseq;
UPDATE hlauth.audit_log l SET row_hash = hlauth_internal.audit_row_hash(l) WHERE xid = :txid AND seq = :tseq;
SELECT count(*) AS bad_hashes FROM hlauth.audit_log l WHERE hlauth_internal.audit_row_hash(l) IS DISTINCT FROM l.row_hash;
SELECT * FROM au_v;
ROLLBACK;
-- (d) the seal itself changed
BEGIN;
UPDATE hlauth.audit_seals SET row_count = row_count - 1 WHERE id = :seal1;
SELECT * FROM au_v;
ROLLBACK;
BEGIN;
UPDATE hlauth.audit_seals SET parts = '[]' WHERE id = :seal1;
SELECT * FROM au_v;
ROLLBACK;
BEGIN;
UPDATE hlauth.audit_seals SET sealed_by = 'someone else' WHERE id = :seal1;
SELECT * FROM au_v;
ROLLBACK;
-- (f) a forged record in a sealed transaction, with a valid hash: in the same partition ...
BEGIN;
INSERT INTO hlauth.audit_log
SELECT logged_at, xid, 999, table_name, 'DELETE', pk, tenant_id, principal, impersonator, token_id, auth_method,
       db_user, db_role, NULL, new, NULL, '\x00'
  FROM hlauth.audit_log WHERE xid = :txid AND seq = :tseq;
UPDATE hlauth.audit_log l SET row_hash = hlauth_internal.audit_row_hash(l) WHERE xid = :txid AND seq = 999;
SELECT * FROM au_v;
ROLLBACK;
-- ... or in a partition the seal has no records of
BEGIN;
INSERT INTO hlauth.audit_log
SELECT '2000-01-01 12:00:00+00', xid, 999, table_name, 'DELETE', pk, tenant_id, principal, impersonator, token_id,
       auth_method, db_user, db_role, NULL, new, NULL, '\x00'
  FROM hlauth.audit_log WHERE xid = :txid AND seq = :tseq;
UPDATE hlauth.audit_log l SET row_hash = hlauth_internal.audit_row_hash(l) WHERE xid = :txid AND seq = 999;
SELECT * FROM au_v;
ROLLBACK;
SELECT * FROM au_v;
-- audit_seal() refuses to seal a record that was changed before any seal covered it
INSERT INTO au_items VALUES (500, au('A'), 'unsealed', 1, NULL, 'TOPSECRET-500');
SELECT xid AS uxid, seq AS useq FROM hlauth.audit_log WHERE table_name = 'public.au_items' ORDER BY xid DESC, seq DESC LIMIT 1 \gset
BEGIN;
UPDATE hlauth.audit_log SET new = '{"id": 500, "name": "forged"}' WHERE xid = :uxid AND seq = :useq;
SELECT au_try('SELECT hlauth.audit_seal()') AS seal_refused;
ROLLBACK;
SELECT count(*) AS seals FROM hlauth.audit_seals;
-- More seals: a chain
SELECT id AS seal2 FROM hlauth.audit_seal() \gset
INSERT INTO au_items VALUES (501, au('A'), 'third seal', 1, NULL, 'TOPSECRET-501');
SELECT id AS seal3 FROM hlauth.audit_seal() \gset
SELECT count(*) AS links, bool_and(s.xid_from = p.xid_to) AS contiguous, bool_and(s.prev_mac = p.mac) AS linked
  FROM hlauth.audit_seals s JOIN hlauth.audit_seals p ON p.id = (SELECT max(id) FROM hlauth.audit_seals x WHERE x.id < s.id);
-- a seal with nothing new to cover
SELECT row_count AS empty_seal_rows, parts AS empty_seal_parts FROM hlauth.audit_seal();
SELECT * FROM au_v;
-- from a time: the seals after it, linked to the one before
SELECT ok, seals_checked FROM hlauth.audit_verify((SELECT sealed_at FROM hlauth.audit_seals WHERE id = :seal2));
SELECT ok, seals_checked FROM hlauth.audit_verify('-infinity', (SELECT sealed_at FROM hlauth.audit_seals WHERE id = :seal2));
-- (e) a seal removed from the middle of the chain, or the first one
BEGIN;
DELETE FROM hlauth.audit_seals WHERE id = :seal2;
SELECT * FROM au_v;
ROLLBACK;
BEGIN;
DELETE FROM hlauth.audit_seals WHERE id = :seal1;
SELECT * FROM au_v;
ROLLBACK;
SELECT * FROM au_v;

-- ---------------------------------------------------------------------------
-- Retention and partitions
-- ---------------------------------------------------------------------------
SELECT * FROM hlauth.audit_drop_sealed_partitions(now() - interval '1 day');
SELECT au_try($$SELECT hlauth.audit_drop_sealed_partitions(now() + interval '1 day')$$) AS future;
SELECT au_try($$SELECT hlauth.audit_drop_sealed_partitions(NULL)$$) AS null_time;
SELECT hlauth.audit_create_partitions(10) AS created, hlauth.audit_create_partitions(10) AS created_again;
SELECT au_try($$SELECT hlauth.audit_create_partitions(-1)$$) AS negative_days;
SELECT au_try($$SELECT hlauth.audit_create_partitions(367)$$) AS too_many_days;
-- An old day's partition (made by hand), with a record, sealed: retention drops it
CREATE TABLE hlauth.audit_log_p20000101 PARTITION OF hlauth.audit_log
	FOR VALUES FROM ('2000-01-01 00:00:00+00') TO ('2000-01-02 00:00:00+00');
REVOKE ALL ON hlauth.audit_log_p20000101 FROM PUBLIC;
BEGIN;
INSERT INTO hlauth.audit_log (logged_at, xid, seq, table_name, op, pk, db_user, db_role, new, row_hash)
VALUES ('2000-01-01 12:00:00+00', pg_current_xact_id()::text::bigint, 1, 'public.au_old', 'INSERT', '{"id": 1}',
        'postgres', 'postgres', '{"id": 1}', '\x00');
UPDATE hlauth.audit_log l SET row_hash = hlauth_internal.audit_row_hash(l) WHERE table_name = 'public.au_old';
COMMIT;
SELECT id AS seal_old, parts @> '[{"partition": "audit_log_p20000101", "rows": 1}]' AS old_part_sealed FROM hlauth.audit_seal() \gset
SELECT :'old_part_sealed' AS old_part_sealed;
SELECT * FROM au_v;
SELECT * FROM hlauth.audit_drop_sealed_partitions(now() - interval '1 day');
SELECT to_regclass('hlauth.audit_log_p20000101') AS old_partition;
SELECT partition, range_end = '2000-01-02 00:00:00+00' AS range_end_ok, dropped_by FROM hlauth.audit_dropped_partitions;
SELECT type, payload ->> 'partition' AS partition FROM hlauth.security_events WHERE type = 'audit.partition_dropped';
-- the seals still verify (their other partitions); a dropped partition is not made again
SELECT * FROM au_v;
SELECT * FROM hlauth.audit_drop_sealed_partitions(now() - interval '1 day');
SELECT key_version IS NOT NULL AND length(mac) = 32 AS retention_signed_its_line
  FROM hlauth.audit_dropped_partitions WHERE partition = 'audit_log_p20000101';
-- A sealed partition dropped by hand, with a line added to hlauth.audit_dropped_partitions
-- by someone without the server secret (unsigned, or signed with a made-up MAC):
-- audit_verify() reports the missing records. Only retention's signed line lets it skip a
-- sealed partition's digest.
CREATE TABLE hlauth.audit_log_p20000102 PARTITION OF hlauth.audit_log
	FOR VALUES FROM ('2000-01-02 00:00:00+00') TO ('2000-01-03 00:00:00+00');
REVOKE ALL ON hlauth.audit_log_p20000102 FROM PUBLIC;
BEGIN;
INSERT INTO hlauth.audit_log (logged_at, xid, seq, table_name, op, pk, db_user, db_role, new, row_hash)
VALUES ('2000-01-02 12:00:00+00', pg_current_xact_id()::text::bigint, 1, 'public.au_old2', 'INSERT', '{"id": 1}',
        'postgres', 'postgres', '{"id": 1}', '\x00');
UPDATE hlauth.audit_log l SET row_hash = hlauth_internal.audit_row_hash(l) WHERE table_name = 'public.au_old2';
COMMIT;
SELECT parts @> '[{"partition": "audit_log_p20000102", "rows": 1}]' AS second_old_part_sealed FROM hlauth.audit_seal();
BEGIN;
DROP TABLE hlauth.audit_log_p20000102;
INSERT INTO hlauth.audit_dropped_partitions (partition, range_end, dropped_by)
VALUES ('audit_log_p20000102', '2000-01-03 00:00:00+00', 'forger');
SELECT ok AS verify_ok_unsigned_line FROM hlauth.audit_verify();
UPDATE hlauth.audit_dropped_partitions SET key_version = 1, mac = sha256('made up')
 WHERE partition = 'audit_log_p20000102';
SELECT ok AS verify_ok_made_up_mac FROM hlauth.audit_verify();
ROLLBACK;
SELECT ok AS verify_ok_untouched FROM hlauth.audit_verify();

-- ---------------------------------------------------------------------------
-- A cast to json that writes to an audited table runs while a record is being built: the
-- write is refused (records never interleave); caught in a subtransaction, it leaves the
-- trigger usable
-- ---------------------------------------------------------------------------
CREATE TYPE au_mood AS ENUM ('calm', 'loud');
CREATE TABLE au_side (id int PRIMARY KEY);
SELECT hlauth.audit('au_side');
CREATE FUNCTION au_mood_json(m au_mood) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO au_side SELECT coalesce(max(id), 0) + 1 FROM au_side;
	RETURN to_json(m::text);
END
$$;
CREATE CAST (au_mood AS json) WITH FUNCTION au_mood_json(au_mood);
CREATE TABLE au_moody (id int PRIMARY KEY, m au_mood);
SELECT hlauth.audit('au_moody');
SELECT au_try('INSERT INTO au_moody VALUES (1, ''calm'')') AS nested_write;
SELECT (SELECT count(*) FROM au_moody) AS moody_rows, (SELECT count(*) FROM au_side) AS side_rows;
DO $$
BEGIN
	BEGIN
		INSERT INTO au_moody VALUES (2, 'loud');
	EXCEPTION WHEN object_not_in_prerequisite_state THEN
		RAISE NOTICE 'nested write refused';
	END;
	INSERT INTO au_side VALUES (100);
	INSERT INTO au_moody VALUES (3, NULL);
END
$$;
SELECT table_name, op, pk, new FROM hlauth.audit_log WHERE table_name IN ('public.au_side', 'public.au_moody') ORDER BY xid, seq;
DROP CAST (au_mood AS json);
SELECT hlauth.unaudit('au_side'), hlauth.unaudit('au_moody');
DROP TABLE au_moody, au_side;
DROP FUNCTION au_mood_json(au_mood);
DROP TYPE au_mood;

-- ---------------------------------------------------------------------------
-- Clean up what this file made (the records and seals stay, like the tenants)
-- ---------------------------------------------------------------------------
DROP VIEW au_v;
SELECT hlauth.unaudit('au_items'), hlauth.unaudit('au_notes'), hlauth.unaudit('au_types'), hlauth.unaudit('au_bulk'),
       hlauth.unaudit('au_parted'), hlauth.unaudit('au_main'), hlauth.unaudit('au_side_table'),
       hlauth.unaudit('au_p2'), hlauth.unaudit('au_solo');
SELECT count(*) AS still_audited FROM hlauth.audited_tables;
DROP TABLE au_items, au_notes, au_types, au_bulk, au_parted, au_nopk, au_text_tenant, au_app.mine, au_main, au_side_table,
	au_p2, au_top;
DROP SCHEMA au_s, au_po;
DROP ROLE regress_audit_parted_owner;
DROP SEQUENCE au_seq;
DROP DOMAIN au_positive;
DROP SCHEMA au_app;
DROP FUNCTION au_refuse_negative(), au_noop(), au_side_write();
DROP FUNCTION au_log(text, bigint), au_count(text), au_try(text), au(text), au_name(uuid);
DROP TABLE au_names;
DROP ROLE regress_audit_app;
DROP ROLE regress_audit_owner;
DROP ROLE regress_audit_admin;
