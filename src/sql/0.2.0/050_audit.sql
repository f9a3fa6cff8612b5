-- ---------------------------------------------------------------------------
-- Audit trail (issue #4): a C row trigger writing hlauth.audit_log, a log partitioned by
-- day, rows that carry their own hash, seals signed with a key derived from the server
-- secret, audit_verify() and a retention function that drops only sealed partitions.
-- See docs/reference.md#audit-trail and docs/design.md#audit-trail.
-- ---------------------------------------------------------------------------

-- Reading audit records needs this permission in the context (a record holds the values of
-- whatever table it audits, so a tenant's scopes for one resource must not reveal another's).
INSERT INTO hlauth.permissions (scope, description) VALUES
	('hlauth/audit.read', 'read the audit records of the tenants in reach');

-- The column order is part of the row hash (src/audit.c): append only, never reorder.
CREATE TABLE hlauth.audit_log (
	logged_at timestamptz NOT NULL,
	xid bigint NOT NULL,
	seq integer NOT NULL,
	table_name text NOT NULL,
	op text NOT NULL,
	pk jsonb,
	tenant_id uuid,
	principal uuid,
	impersonator uuid,
	token_id text,
	auth_method text,
	db_user text NOT NULL,
	db_role text NOT NULL,
	changed text[],
	old jsonb,
	new jsonb,
	row_hash bytea NOT NULL
) PARTITION BY RANGE (logged_at);
COMMENT ON TABLE hlauth.audit_log IS 'Audit records written by hlauth''s audit trigger: one per row inserted, updated (if anything changed) or deleted, one per TRUNCATE; partitioned by day (UTC)';
COMMENT ON COLUMN hlauth.audit_log.logged_at IS 'when the trigger recorded the change (clock time, after the row was written)';
COMMENT ON COLUMN hlauth.audit_log.xid IS 'the top-level transaction that made the change (its 64-bit xid8, as a bigint)';
COMMENT ON COLUMN hlauth.audit_log.seq IS 'the record''s number within its transaction';
COMMENT ON COLUMN hlauth.audit_log.table_name IS 'the audited table (schema-qualified; for a partition, the partitioned table audit() was given)';
COMMENT ON COLUMN hlauth.audit_log.op IS 'INSERT, UPDATE, DELETE or TRUNCATE';
COMMENT ON COLUMN hlauth.audit_log.pk IS 'the row''s primary key columns and values (after an UPDATE, the new ones); NULL for TRUNCATE';
COMMENT ON COLUMN hlauth.audit_log.tenant_id IS 'the tenant the row belongs to, from its tenant column';
COMMENT ON COLUMN hlauth.audit_log.principal IS 'the principal of the hlauth context, NULL without one';
COMMENT ON COLUMN hlauth.audit_log.impersonator IS 'the principal impersonating it, when there is one';
COMMENT ON COLUMN hlauth.audit_log.token_id IS 'the API key or token id the context was established with';
COMMENT ON COLUMN hlauth.audit_log.auth_method IS 'how the context was established (set_principal, api_key)';
COMMENT ON COLUMN hlauth.audit_log.db_user IS 'the session user (the login role)';
COMMENT ON COLUMN hlauth.audit_log.db_role IS 'the current role when the change was made (SET ROLE, SECURITY DEFINER)';
COMMENT ON COLUMN hlauth.audit_log.changed IS 'UPDATE: every column whose value changed, excluded columns included';
COMMENT ON COLUMN hlauth.audit_log.old IS 'UPDATE: the changed columns'' old values; DELETE: the row; never an excluded column''s value';
COMMENT ON COLUMN hlauth.audit_log.new IS 'UPDATE: the changed columns'' new values; INSERT: the row; never an excluded column''s value';
COMMENT ON COLUMN hlauth.audit_log.row_hash IS 'SHA-256 of the record''s other columns (see hlauth_internal.audit_row_hash)';
-- Seals find their rows by transaction id: a BRIN index on each partition costs next to
-- nothing per insert (and xid8 has no BRIN operator class, hence the bigint). Readers find
-- theirs by time, which the daily partitions already narrow. The index is the partitions'
-- own, not a partitioned index: the daily partitions are not extension members, so pg_dump
-- dumps them with their data and their index, which a partitioned index would have made a
-- second time on restore.
CREATE TABLE hlauth.audit_log_default PARTITION OF hlauth.audit_log DEFAULT;
CREATE INDEX audit_log_default_xid_idx ON hlauth.audit_log_default USING brin (xid);
COMMENT ON TABLE hlauth.audit_log_default IS 'Audit records of days without a partition of their own (run hlauth.audit_create_partitions() ahead of time); never dropped by retention';
REVOKE ALL ON hlauth.audit_log, hlauth.audit_log_default FROM PUBLIC;
GRANT SELECT ON hlauth.audit_log TO PUBLIC;
ALTER TABLE hlauth.audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_log_admin ON hlauth.audit_log FOR SELECT TO hlauth_admin USING (true);
CREATE POLICY audit_log_tenant ON hlauth.audit_log FOR SELECT TO PUBLIC
	USING (hlauth.has_scope('hlauth/audit.read')
		   AND tenant_id OPERATOR(pg_catalog.=) ANY (hlauth.accessible_tenants()));
SELECT pg_catalog.pg_extension_config_dump('hlauth.audit_log_default', '');

-- Checkpoints: each seal covers the records of transactions in [xid_from, xid_to), every one
-- of which had ended when the seal was taken, so what a seal covers never changes later.
CREATE TABLE hlauth.audit_seals (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	started_at timestamptz NOT NULL,
	sealed_at timestamptz NOT NULL,
	xid_from bigint NOT NULL,
	xid_to bigint NOT NULL,
	snapshot_xmax bigint NOT NULL,
	row_count bigint NOT NULL,
	parts jsonb NOT NULL,
	prev_mac bytea,
	key_version integer NOT NULL,
	mac bytea NOT NULL,
	sealed_by text NOT NULL
);
COMMENT ON TABLE hlauth.audit_seals IS 'Signed checkpoints over the audit records: per partition, the count and a SHA-256 chain of the records'' hashes; each seal signs the previous one''s MAC';
COMMENT ON COLUMN hlauth.audit_seals.started_at IS 'clock time just before the seal''s snapshot was taken';
COMMENT ON COLUMN hlauth.audit_seals.xid_from IS 'the seal covers records of transactions with xid_from <= xid < xid_to';
COMMENT ON COLUMN hlauth.audit_seals.snapshot_xmax IS 'above every transaction id assigned before the seal started (the sealing transaction''s own id, or its snapshot''s xmax if higher)';
COMMENT ON COLUMN hlauth.audit_seals.parts IS 'per partition: {"partition", "rows", "digest"} (digest: hex SHA-256 chain in (xid, seq) order)';
COMMENT ON COLUMN hlauth.audit_seals.mac IS 'HMAC-SHA256 of the seal (and of prev_mac) with the audit-seal key derived from the server secret';
SELECT pg_catalog.pg_extension_config_dump('hlauth.audit_seals', '');
SELECT pg_catalog.pg_extension_config_dump('hlauth.audit_seals_id_seq', '');
REVOKE ALL ON hlauth.audit_seals FROM PUBLIC;
GRANT SELECT ON hlauth.audit_seals TO hlauth_admin;

-- Partitions dropped by hlauth.audit_drop_sealed_partitions(): their seals' digests can no
-- longer be checked, the rest of those seals can.
CREATE TABLE hlauth.audit_dropped_partitions (
	partition text PRIMARY KEY,
	range_end timestamptz NOT NULL,
	dropped_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	dropped_by text NOT NULL,
	key_version integer,
	mac bytea
);
COMMENT ON COLUMN hlauth.audit_dropped_partitions.mac IS 'HMAC-SHA256 of the partition and its range end with the audit-seal key: audit_verify() skips a sealed partition''s digest only for a line retention signed';
COMMENT ON TABLE hlauth.audit_dropped_partitions IS 'Audit partitions dropped by retention after they were sealed';
SELECT pg_catalog.pg_extension_config_dump('hlauth.audit_dropped_partitions', '');
REVOKE ALL ON hlauth.audit_dropped_partitions FROM PUBLIC;
GRANT SELECT ON hlauth.audit_dropped_partitions TO hlauth_admin;

-- The audited tables (the triggers carry the same settings as their arguments).
CREATE TABLE hlauth_internal.audited_tables (
	relid regclass NOT NULL PRIMARY KEY,
	exclude_columns name[] NOT NULL,
	tenant_column name,
	audited_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE hlauth_internal.audited_tables IS 'Tables audited by hlauth.audit()';
SELECT pg_catalog.pg_extension_config_dump('hlauth_internal.audited_tables', '');
REVOKE ALL ON hlauth_internal.audited_tables FROM PUBLIC;

CREATE VIEW hlauth.audited_tables WITH (security_barrier) AS
	SELECT a.relid, a.exclude_columns, a.tenant_column, a.audited_at
	  FROM hlauth_internal.audited_tables a;
COMMENT ON VIEW hlauth.audited_tables IS 'The tables hlauth audits, with their excluded columns and tenant column';
REVOKE ALL ON hlauth.audited_tables FROM PUBLIC;
GRANT SELECT ON hlauth.audited_tables TO hlauth_admin;

-- ---- the C side ----
CREATE FUNCTION hlauth_internal.audit_row() RETURNS trigger
	AS 'MODULE_PATHNAME', 'hlauth_audit_row' LANGUAGE C;
REVOKE ALL ON FUNCTION hlauth_internal.audit_row() FROM PUBLIC;
-- A table owner creating or attaching a partition of an audited table clones this trigger,
-- which PostgreSQL allows only with EXECUTE on its function. It writes nothing for a table
-- that hlauth.audit() did not register (src/audit.c), so attaching it by hand gains nothing.
GRANT EXECUTE ON FUNCTION hlauth_internal.audit_row() TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.audit_row() IS 'Trigger (AFTER ROW): records the change for hlauth.audit_log; arguments: tenant column (or empty), excluded columns';

CREATE FUNCTION hlauth_internal.audit_statement() RETURNS trigger
	AS 'MODULE_PATHNAME', 'hlauth_audit_statement' LANGUAGE C;
REVOKE ALL ON FUNCTION hlauth_internal.audit_statement() FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.audit_statement() IS 'Trigger (AFTER STATEMENT): writes the statement''s audit records; records TRUNCATE';

CREATE FUNCTION hlauth_internal.audit_row_hash(r hlauth.audit_log) RETURNS bytea
	AS 'MODULE_PATHNAME', 'hlauth_audit_row_hash' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hlauth_internal.audit_row_hash(hlauth.audit_log) IS 'Recomputes an audit record''s hash from its columns';

CREATE FUNCTION hlauth_internal.audit_chain_step(state bytea, row_hash bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'hlauth_audit_chain_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION hlauth_internal.audit_chain_step(bytea, bytea) IS 'One step of the seal''s hash chain: SHA-256(state || row_hash), starting from SHA-256("hlauth audit chain v1")';
CREATE FUNCTION hlauth_internal.audit_chain_final(state bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'hlauth_audit_chain_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION hlauth_internal.audit_chain_final(bytea) IS 'The chain''s value (the start value for no rows)';
CREATE AGGREGATE hlauth_internal.audit_chain(bytea) (
	SFUNC = hlauth_internal.audit_chain_step,
	STYPE = bytea,
	FINALFUNC = hlauth_internal.audit_chain_final
);
COMMENT ON AGGREGATE hlauth_internal.audit_chain(bytea) IS 'SHA-256 chain over row hashes, in the aggregate''s ORDER BY';

CREATE FUNCTION hlauth_internal.audit_key_version() RETURNS integer
	AS 'MODULE_PATHNAME', 'hlauth_audit_key_version' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION hlauth_internal.audit_key_version() FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.audit_key_version() IS 'The newest master key version of the server secret (for new seals)';

-- What retention signs for a partition it dropped (the range end in microseconds since
-- 1970, so no time zone setting changes the text).
CREATE FUNCTION hlauth_internal.audit_dropped_message(part text, range_end timestamptz) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
	SELECT 'hlauth audit dropped partition v1|' || part || '|'
		   || (EXTRACT(EPOCH FROM range_end) * 1000000)::bigint::text
$$;
REVOKE ALL ON FUNCTION hlauth_internal.audit_dropped_message(text, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.audit_dropped_message(text, timestamptz) IS 'The message retention signs for a dropped audit partition (internal)';

CREATE FUNCTION hlauth_internal.audit_mac(message text, key_version integer) RETURNS bytea
	AS 'MODULE_PATHNAME', 'hlauth_audit_mac' LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION hlauth_internal.audit_mac(text, integer) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.audit_mac(text, integer) IS 'HMAC-SHA256 of message with the audit-seal key of that master key version (NULL when the version is gone)';

CREATE FUNCTION hlauth_internal.audit_mac_equal(a bytea, b bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlauth_audit_mac_equal' LANGUAGE C IMMUTABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION hlauth_internal.audit_mac_equal(bytea, bytea) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.audit_mac_equal(bytea, bytea) IS 'Compares two MACs in constant time (false when either is NULL)';

-- The text a seal's MAC signs: every column but the MAC itself, in a form no setting changes.
CREATE FUNCTION hlauth_internal.audit_seal_message(s hlauth.audit_seals) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT pg_catalog.concat_ws('|', 'hlauth audit seal v1', s.id,
		pg_catalog.to_char(s.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
		pg_catalog.to_char(s.sealed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
		s.xid_from, s.xid_to, s.snapshot_xmax, s.row_count, s.parts::text,
		coalesce(pg_catalog.encode(s.prev_mac, 'hex'), '-'), s.key_version, s.sealed_by)
$$;
COMMENT ON FUNCTION hlauth_internal.audit_seal_message(hlauth.audit_seals) IS 'The canonical text of a seal that its MAC signs';

-- Per partition: the records of transactions in [xid_from, xid_to), their chain, and how
-- many do not match their own hash.
CREATE FUNCTION hlauth_internal.audit_parts(xid_from bigint, xid_to bigint)
	RETURNS TABLE (part text, row_count bigint, digest text, bad bigint)
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT c.relname::text, count(*),
		   pg_catalog.encode(hlauth_internal.audit_chain(l.row_hash ORDER BY l.xid, l.seq), 'hex'),
		   count(*) FILTER (WHERE hlauth_internal.audit_row_hash(l) IS DISTINCT FROM l.row_hash)
	  FROM hlauth.audit_log l JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) l.tableoid
	 WHERE l.xid OPERATOR(pg_catalog.>=) xid_from AND l.xid OPERATOR(pg_catalog.<) xid_to
	 GROUP BY c.relname
	 ORDER BY c.relname
$$;
REVOKE ALL ON FUNCTION hlauth_internal.audit_parts(bigint, bigint) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.audit_parts(bigint, bigint) IS 'Per audit partition: the records of transactions in [xid_from, xid_to), their hash chain, and how many do not match their own hash';

-- ---- partitions ----
CREATE FUNCTION hlauth.audit_create_partitions(days_ahead integer DEFAULT 7) RETURNS integer
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	d date;
	name text;
	made integer := 0;
BEGIN
	PERFORM hlauth_internal.require_admin('create audit partitions');
	IF days_ahead IS NULL OR days_ahead < 0 OR days_ahead > 366 THEN
		RAISE EXCEPTION 'days_ahead must be between 0 and 366' USING ERRCODE = '22023';
	END IF;
	-- One creator at a time (two would both find the partition missing), on a lock no app
	-- role can take (an advisory lock anyone could hold, and stall this daily job).
	LOCK TABLE hlauth.audit_dropped_partitions IN SHARE ROW EXCLUSIVE MODE;
	FOR d IN SELECT g::date FROM pg_catalog.generate_series(
				(pg_catalog.now() AT TIME ZONE 'UTC')::date,
				(pg_catalog.now() AT TIME ZONE 'UTC')::date + days_ahead, interval '1 day') g LOOP
		name := 'audit_log_p' || pg_catalog.to_char(d, 'YYYYMMDD');
		CONTINUE WHEN pg_catalog.to_regclass('hlauth.' || name) IS NOT NULL
				   OR EXISTS (SELECT 1 FROM hlauth.audit_dropped_partitions p WHERE p.partition = name);
		BEGIN
			EXECUTE pg_catalog.format(
				'CREATE TABLE hlauth.%I PARTITION OF hlauth.audit_log FOR VALUES FROM (%L) TO (%L)',
				name, d::text || ' 00:00:00+00', (d + 1)::text || ' 00:00:00+00');
		EXCEPTION WHEN check_violation THEN
			-- Records of that day are already in the default partition (this function did not
			-- run in time): they stay there, and so do the day's next ones.
			RAISE WARNING 'audit partition % cannot be created: the default partition holds records of %', name, d
				USING HINT = 'Run hlauth.audit_create_partitions() daily, ahead of time.';
			CONTINUE;
		END;
		EXECUTE pg_catalog.format('CREATE INDEX %I ON hlauth.%I USING brin (xid)', name || '_xid_idx', name);
		EXECUTE pg_catalog.format('REVOKE ALL ON hlauth.%I FROM PUBLIC', name);
		made := made + 1;
	END LOOP;
	RETURN made;
END
$$;
REVOKE ALL ON FUNCTION hlauth.audit_create_partitions(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.audit_create_partitions(integer) TO hlauth_admin;
COMMENT ON FUNCTION hlauth.audit_create_partitions(integer) IS 'Creates the daily (UTC) partitions of hlauth.audit_log from today to days_ahead days ahead; returns how many it created (hlauth_admin; run it daily)';

-- ---- audit() and unaudit() ----
CREATE FUNCTION hlauth.audit(tbl regclass, exclude_columns name[] DEFAULT '{}',
							 tenant_column name DEFAULT NULL) RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	kind "char";
	col name;
	tcol name := tenant_column;
	pk_cols name[];
	args text;
BEGIN
	PERFORM hlauth_internal.require_admin('audit a table');
	SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = tbl;
	IF kind IS NULL OR kind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = '42809';
	END IF;
	IF (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE c.oid = tbl) IN ('hlauth', 'hlauth_internal') THEN
		RAISE EXCEPTION 'hlauth''s own tables cannot be audited' USING ERRCODE = '42809';
	END IF;
	SELECT pg_catalog.array_agg(a.attname ORDER BY a.attnum) INTO pk_cols
	  FROM pg_catalog.pg_index i
	  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
	 WHERE i.indrelid = tbl AND i.indisprimary;
	IF pk_cols IS NULL THEN
		RAISE EXCEPTION 'table % has no primary key', tbl
			USING ERRCODE = '42P10',
				  DETAIL = 'An audit record identifies its row by the primary key.',
				  HINT = 'Add a primary key, then run hlauth.audit() again.';
	END IF;
	IF exclude_columns IS NULL THEN
		exclude_columns := '{}';
	END IF;
	FOREACH col IN ARRAY exclude_columns LOOP
		IF col IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
									   WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped) THEN
			RAISE EXCEPTION 'column "%" of table % does not exist', col, tbl
				USING ERRCODE = '42703', HINT = 'exclude_columns names columns whose values are never recorded.';
		END IF;
		IF col = ANY (pk_cols) THEN
			RAISE EXCEPTION 'column "%" is part of the primary key of %, which identifies the row in every audit record', col, tbl
				USING ERRCODE = '22023';
		END IF;
	END LOOP;
	-- The tenant column: as given, else the one protect() uses.
	IF tcol IS NULL THEN
		SELECT pt.tenant_column INTO tcol FROM hlauth_internal.protected_tables pt WHERE pt.relid = tbl;
	END IF;
	IF tcol IS NOT NULL AND NOT EXISTS (
			SELECT 1 FROM pg_catalog.pg_attribute a
			 WHERE a.attrelid = tbl AND a.attname = tcol AND a.attnum > 0 AND NOT a.attisdropped
			   AND a.atttypid = 'uuid'::regtype) THEN
		RAISE EXCEPTION 'table % has no uuid column "%"', tbl, tcol
			USING ERRCODE = '42703', HINT = 'tenant_column names the uuid column holding the row''s tenant.';
	END IF;
	exclude_columns := ARRAY(SELECT DISTINCT e FROM pg_catalog.unnest(exclude_columns) e ORDER BY e);

	-- Unregistered first, so the DDL guard lets the old triggers go.
	DELETE FROM hlauth_internal.audited_tables a WHERE a.relid = tbl;
	PERFORM hlauth_internal.drop_audit_triggers(tbl);
	args := hlauth_internal.audit_trigger_args(exclude_columns, tcol);
	EXECUTE pg_catalog.format('CREATE TRIGGER hlauth_audit AFTER INSERT OR UPDATE OR DELETE ON %s '
							  'FOR EACH ROW EXECUTE FUNCTION hlauth_internal.audit_row(%s)', tbl, args);
	EXECUTE pg_catalog.format('CREATE TRIGGER hlauth_audit_statement AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
							  'FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.audit_statement(%s)', tbl, args);
	-- They fire whatever session_replication_role is (a role granted SET on it switched to
	-- replica mode in the middle of a statement, and its writes went unrecorded); in
	-- replica mode they record nothing for a superuser (logical replication's apply worker).
	EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER hlauth_audit, ENABLE ALWAYS TRIGGER hlauth_audit_statement', tbl);
	-- Statement triggers are not cloned to partitions: a statement naming a partition needs
	-- its own (the DDL guard adds it to partitions made or attached later).
	PERFORM hlauth_internal.audit_partition_triggers(tbl, args);
	INSERT INTO hlauth_internal.audited_tables (relid, exclude_columns, tenant_column)
	VALUES (tbl, exclude_columns, tcol);
	PERFORM hlauth_internal.emit_event('audit.enabled', NULL,
		pg_catalog.jsonb_build_object('table', tbl::text, 'exclude_columns', exclude_columns,
									  'tenant_column', tcol));
	-- Somewhere for today's records to go.
	IF pg_catalog.to_regclass('hlauth.audit_log_p' || pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYYMMDD')) IS NULL THEN
		PERFORM hlauth.audit_create_partitions(7);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION hlauth.audit(regclass, name[], name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.audit(regclass, name[], name) TO hlauth_admin;
COMMENT ON FUNCTION hlauth.audit(regclass, name[], name) IS 'Audits a table: every INSERT, UPDATE (of something) and DELETE, and TRUNCATE, is recorded in hlauth.audit_log; excluded columns are never recorded; tenant_column defaults to protect()''s (hlauth_admin)';

CREATE FUNCTION hlauth_internal.drop_audit_triggers(tbl regclass) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t record;
BEGIN
	-- The row trigger's clones go with it; the partitions' statement triggers are their own.
	FOR t IN SELECT tg.tgname, tg.tgrelid::regclass AS rel FROM pg_catalog.pg_trigger tg
			  WHERE tg.tgrelid IN (SELECT x.x FROM hlauth_internal.audit_tree(tbl) x)
				AND NOT tg.tgisinternal AND tg.tgparentid = 0
				AND tg.tgname IN ('hlauth_audit', 'hlauth_audit_statement')
			  ORDER BY tg.tgrelid = tbl LOOP
		EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
	END LOOP;
END
$$;

-- The table and, when it is partitioned, every partition of it at any depth
-- (pg_partition_tree() returns nothing for a table that is not partitioned).
-- (From pg_inherits, taking no lock: pg_partition_tree() locks every partition, and the
-- audit's guard, which runs after every DDL command, then deadlocked pg_restore -j.)
CREATE FUNCTION hlauth_internal.audit_tree(tbl regclass) RETURNS SETOF regclass
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	WITH RECURSIVE t(relid) AS (
		SELECT tbl::pg_catalog.oid
		UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN t ON i.inhparent OPERATOR(pg_catalog.=) t.relid)
	SELECT t.relid::pg_catalog.regclass FROM t
$$;
REVOKE ALL ON FUNCTION hlauth_internal.audit_tree(regclass) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.audit_tree(regclass) IS 'A table and all its partitions (internal)';

-- The statement trigger on every partition of tbl that lacks it (args: audit()'s arguments).
CREATE FUNCTION hlauth_internal.audit_partition_triggers(tbl regclass, args text) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	part regclass;
BEGIN
	FOR part IN SELECT p.relid FROM pg_catalog.pg_partition_tree(tbl) p
				 WHERE p.relid <> tbl
				   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger tg
									WHERE tg.tgrelid = p.relid AND tg.tgname = 'hlauth_audit_statement') LOOP
		EXECUTE pg_catalog.format('CREATE TRIGGER hlauth_audit_statement AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
								  'FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.audit_statement(%s)', part, args);
		EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER hlauth_audit_statement', part);
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.audit_partition_triggers(regclass, text) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.audit_partition_triggers(regclass, text) IS 'Gives every partition of an audited table the audit statement trigger (internal)';

-- audit()'s trigger arguments for a registered table.
CREATE FUNCTION hlauth_internal.audit_trigger_args(exclude_columns name[], tenant_column name) RETURNS text
	LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT pg_catalog.concat_ws(', ', pg_catalog.quote_literal(coalesce(tenant_column, '')),
		(SELECT pg_catalog.string_agg(pg_catalog.quote_literal(e), ', ') FROM pg_catalog.unnest(exclude_columns) e))
$$;
REVOKE ALL ON FUNCTION hlauth_internal.audit_trigger_args(name[], name) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.audit_trigger_args(name[], name) IS 'The arguments audit() gives the audit triggers (internal)';
REVOKE ALL ON FUNCTION hlauth_internal.drop_audit_triggers(regclass) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.drop_audit_triggers(regclass) IS 'Drops hlauth''s audit triggers on a table (internal)';

CREATE FUNCTION hlauth.unaudit(tbl regclass) RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hlauth_internal.require_admin('stop auditing a table');
	IF NOT EXISTS (SELECT 1 FROM hlauth_internal.audited_tables a WHERE a.relid = tbl) THEN
		RAISE NOTICE 'table % is not audited', tbl;
		RETURN;
	END IF;
	-- Unregistered first, so the DDL guard lets the triggers go.
	DELETE FROM hlauth_internal.audited_tables a WHERE a.relid = tbl;
	PERFORM hlauth_internal.drop_audit_triggers(tbl);
	PERFORM hlauth_internal.emit_event('audit.disabled', NULL,
		pg_catalog.jsonb_build_object('table', tbl::text));
END
$$;
REVOKE ALL ON FUNCTION hlauth.unaudit(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.unaudit(regclass) TO hlauth_admin;
COMMENT ON FUNCTION hlauth.unaudit(regclass) IS 'Stops auditing a table (its records stay); recorded as a security event (hlauth_admin)';

-- Does an ALTER TABLE command (from pg_event_trigger_ddl_commands()) change a column's type?
CREATE FUNCTION hlauth_internal.ddl_alters_column_type(pg_ddl_command) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlauth_ddl_alters_column_type' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION hlauth_internal.ddl_alters_column_type(pg_ddl_command) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.ddl_alters_column_type(pg_ddl_command) IS 'Event trigger helper: does this ALTER TABLE change a column''s type (a rewrite of every row, unrecorded)?';
CREATE FUNCTION hlauth_internal.ddl_attaches_partition(pg_ddl_command) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlauth_ddl_attaches_partition' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION hlauth_internal.ddl_attaches_partition(pg_ddl_command) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.ddl_attaches_partition(pg_ddl_command) IS 'Event trigger helper: does this ALTER TABLE attach a partition?';
CREATE FUNCTION hlauth_internal.ddl_detached_partitions(pg_ddl_command) RETURNS text[]
	AS 'MODULE_PATHNAME', 'hlauth_ddl_detached_partitions' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION hlauth_internal.ddl_detached_partitions(pg_ddl_command) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.ddl_detached_partitions(pg_ddl_command) IS 'Event trigger helper: the partitions this ALTER TABLE detaches, as written (NULL for none)';

-- The DDL guard of the audit. Nobody, a superuser included, drops, disables, renames or
-- replaces an audited table's triggers but through unaudit(), renames or drops an excluded
-- column, or drops the primary key. After every DDL command (ddl_command_end): no trigger
-- of hlauth's name that is not hlauth's trigger, no hlauth audit trigger under another
-- name, every excluded column still there. On drops (sql_drop): no audit trigger and no
-- primary key of a table that stays audited. A trigger that is simply missing is allowed at
-- ddl_command_end: pg_restore creates the two triggers one by one, and primary keys last.
CREATE FUNCTION hlauth_internal.protect_in_progress() RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlauth_protect_in_progress' LANGUAGE C VOLATILE;
GRANT EXECUTE ON FUNCTION hlauth_internal.protect_in_progress() TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.protect_in_progress() IS 'Is hlauth.protect() running its own DDL in this session?';

CREATE FUNCTION hlauth_internal.guard_audit() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
BEGIN
	-- hlauth.protect()'s own DDL (of a new partition, in the middle of this guard's adding
	-- the partition's statement trigger, before that trigger is ENABLE ALWAYS) is hlauth's:
	-- the guard looks again at the end of the command that started it.
	IF hlauth_internal.protect_in_progress() THEN
		RETURN;
	END IF;
	-- ALTER TABLE of an audited table or of a partition of it, one command at a time.
	IF TG_TAG = 'ALTER TABLE' THEN
		FOR r IN SELECT a.relid, c.command
				   FROM pg_catalog.pg_event_trigger_ddl_commands() c
				   JOIN hlauth_internal.audited_tables a
					 ON c.objid IN (SELECT x.x::oid FROM hlauth_internal.audit_tree(a.relid) x)
				  WHERE c.command_tag = 'ALTER TABLE' AND c.object_type = 'table' LOOP
			-- ALTER COLUMN ... TYPE rewrites every row (USING can give any value, a narrower
			-- type rounds) and fires no trigger: a change nobody would see in the log.
			IF hlauth_internal.ddl_alters_column_type(r.command) THEN
				RAISE EXCEPTION 'permission denied: a column type of audited table % cannot be changed', r.relid
					USING ERRCODE = '42501',
						  DETAIL = 'ALTER COLUMN ... TYPE rewrites every row without a trigger: the changed values would not be recorded.',
						  HINT = 'An hlauth_admin can run hlauth.unaudit(), make the change, then hlauth.audit() again; both are recorded as security events.';
			END IF;
			-- A partition detached from an audited table is no longer audited: not quietly.
			PERFORM hlauth_internal.emit_event('audit.partition_detached', NULL,
				pg_catalog.jsonb_build_object('table', r.relid::text, 'partition', d.part,
											  'by', hlauth_internal.session_role()))
			   FROM pg_catalog.unnest(hlauth_internal.ddl_detached_partitions(r.command)) d(part);
		END LOOP;
	END IF;
	FOR r IN SELECT a.relid, a.exclude_columns, a.tenant_column,
					EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = a.relid) AS present
			   FROM hlauth_internal.audited_tables a LOOP
		IF NOT r.present THEN
			-- A dropped table: its records stay, the registration goes.
			DELETE FROM hlauth_internal.audited_tables a WHERE a.relid::oid = r.relid::oid;
			PERFORM hlauth_internal.emit_event('audit.table_dropped', NULL,
				pg_catalog.jsonb_build_object('table_oid', r.relid::oid));
			CONTINUE;
		END IF;
		-- On the table and on every partition of it (row triggers are cloned there).
		IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger tg
					WHERE tg.tgrelid IN (SELECT x.x FROM hlauth_internal.audit_tree(r.relid) x)
					  AND CASE tg.tgname
							  -- ENABLE ALWAYS: a trigger simply enabled is skipped once the session
							  -- switches to replica mode in the middle of a statement (a red-team
							  -- pass: the owner set it back to ENABLE, then wrote unrecorded). It
							  -- is simply enabled only as CREATE TRIGGER makes it, before the
							  -- ALTER TABLE ... ENABLE ALWAYS TRIGGER that follows (here, in
							  -- audit_partition_triggers, and in pg_restore), or for an admin.
							  WHEN 'hlauth_audit' THEN
								  tg.tgfoid <> 'hlauth_internal.audit_row()'::regprocedure
								  OR tg.tgtype <> 29 OR tg.tgenabled NOT IN ('O', 'A')
								  OR (tg.tgenabled = 'O' AND NOT hlauth_internal.caller_is_admin()
									  AND tg.oid NOT IN (SELECT c.objid FROM pg_catalog.pg_event_trigger_ddl_commands() c
														  WHERE c.command_tag = 'CREATE TRIGGER'))
							  WHEN 'hlauth_audit_statement' THEN
								  tg.tgfoid <> 'hlauth_internal.audit_statement()'::regprocedure
								  OR tg.tgtype <> 60 OR tg.tgenabled NOT IN ('O', 'A')
								  OR (tg.tgenabled = 'O' AND NOT hlauth_internal.caller_is_admin()
									  AND tg.oid NOT IN (SELECT c.objid FROM pg_catalog.pg_event_trigger_ddl_commands() c
														  WHERE c.command_tag = 'CREATE TRIGGER'))
							  ELSE tg.tgfoid IN ('hlauth_internal.audit_row()'::regprocedure,
												 'hlauth_internal.audit_statement()'::regprocedure)
						  END) THEN
			RAISE EXCEPTION 'permission denied: the audit triggers of table % can only be removed by hlauth.unaudit()', r.relid
				USING ERRCODE = '42501',
					  DETAIL = 'Disabling, renaming or replacing hlauth_audit or hlauth_audit_statement, on the table or a partition of it, would stop the audit quietly.',
					  HINT = 'An hlauth_admin can run hlauth.unaudit(), which is recorded as a security event.';
		END IF;
		IF EXISTS (SELECT 1 FROM pg_catalog.unnest(r.exclude_columns || r.tenant_column) e
					WHERE e IS NOT NULL
					  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute at
									   WHERE at.attrelid = r.relid AND at.attname = e AND NOT at.attisdropped
										 AND (e IS DISTINCT FROM r.tenant_column OR at.atttypid = 'uuid'::regtype))) THEN
			RAISE EXCEPTION 'an excluded column or the tenant column of audited table % would be renamed, dropped or retyped', r.relid
				USING ERRCODE = '42501',
					  DETAIL = 'An excluded column''s values would be recorded under its new name; without its tenant column, no write to the table could be recorded.',
					  HINT = 'Run hlauth.unaudit(), make the change, then hlauth.audit() with the new columns.';
		END IF;
		-- No inheritance children (partitions are audited with their parent; a child table's
		-- rows are read and changed through the parent without any audit trigger of theirs).
		IF EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
					WHERE i.inhparent = r.relid AND NOT c.relispartition) THEN
			RAISE EXCEPTION 'audited table % cannot have inheritance children', r.relid
				USING ERRCODE = '42501',
					  DETAIL = 'Rows of a child table are read and changed through the parent, and no audit trigger of the child records them.',
					  HINT = 'Use partitioning (partitions are audited with their table), or have an hlauth_admin run hlauth.unaudit() first.';
		END IF;
		-- A partition made or attached since (CREATE TABLE ... PARTITION OF, ALTER TABLE
		-- ... ATTACH PARTITION) gets the statement trigger too, once the partitioned table
		-- has its own audit trigger. pg_restore creates that one (and the partitions' own
		-- statement triggers) only after every ALTER TABLE of the primary keys, and runs
		-- nothing but CREATE TRIGGER and ALTER TABLE ... ENABLE ALWAYS TRIGGER in between,
		-- so it never finds them made.
		IF (TG_TAG IN ('CREATE TABLE', 'CREATE SCHEMA')
			OR (TG_TAG = 'ALTER TABLE'
				AND EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_ddl_commands() c
							 WHERE hlauth_internal.ddl_attaches_partition(c.command))))
		   AND r.relid::oid IN (SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relkind = 'p')
		   AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger tg
						WHERE tg.tgrelid = r.relid AND tg.tgname = 'hlauth_audit' AND tg.tgparentid = 0) THEN
			PERFORM hlauth_internal.audit_partition_triggers(r.relid,
				hlauth_internal.audit_trigger_args(r.exclude_columns, r.tenant_column));
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION hlauth_internal.guard_audit() IS 'Event trigger (ddl_command_end): refuses DDL that would disable, rename or replace the audit triggers of an audited table or its partitions, or rename, drop or retype an excluded column or its tenant column; gives new partitions the statement trigger';
GRANT EXECUTE ON FUNCTION hlauth_internal.guard_audit() TO PUBLIC;
CREATE EVENT TRIGGER hlauth_guard_audit ON ddl_command_end
	EXECUTE FUNCTION hlauth_internal.guard_audit();
COMMENT ON EVENT TRIGGER hlauth_guard_audit IS 'hlauth: the audit triggers of audited tables change only through hlauth.audit() and hlauth.unaudit()';

CREATE FUNCTION hlauth_internal.guard_audit_drop() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
BEGIN
	-- A table dropped with hlauth's row trigger on it that audit() did not register itself: a
	-- partition of an audited table. Its rows go without DELETE records: not quietly.
	FOR r IN SELECT t.object_identity AS tbl
			   FROM pg_catalog.pg_event_trigger_dropped_objects() t
			  WHERE t.object_type = 'table'
				AND NOT EXISTS (SELECT 1 FROM hlauth_internal.audited_tables a WHERE a.relid::oid = t.objid)
				AND EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() g
							 WHERE g.object_type = 'trigger'
							   AND g.object_identity = 'hlauth_audit on ' || t.object_identity) LOOP
		PERFORM hlauth_internal.emit_event('audit.partition_table_dropped', NULL,
			pg_catalog.jsonb_build_object('table', r.tbl, 'by', hlauth_internal.session_role()));
	END LOOP;
	FOR r IN SELECT a.relid, d.object_type, d.object_identity, t.relid AS rel
			   FROM pg_catalog.pg_event_trigger_dropped_objects() d
			   CROSS JOIN LATERAL (SELECT pg_catalog.to_regclass(pg_catalog.quote_ident(d.address_names[1]) || '.' ||
																 pg_catalog.quote_ident(d.address_names[2])) AS relid) t
			   JOIN hlauth_internal.audited_tables a
				 ON t.relid::oid IN (SELECT tt::oid FROM hlauth_internal.audit_tree(a.relid) tt)
			  WHERE d.object_type IN ('trigger', 'table constraint')
				AND pg_catalog.cardinality(d.address_names) >= 3
	LOOP
		IF r.object_type = 'trigger'
		   AND r.object_identity IN ('hlauth_audit on ' || r.rel::text, 'hlauth_audit_statement on ' || r.rel::text) THEN
			RAISE EXCEPTION 'permission denied: the audit triggers of table % can only be removed by hlauth.unaudit()', r.relid
				USING ERRCODE = '42501',
					  DETAIL = 'Dropping hlauth_audit or hlauth_audit_statement would stop the audit quietly.',
					  HINT = 'An hlauth_admin can run hlauth.unaudit(), which is recorded as a security event.';
		END IF;
		IF r.object_type = 'table constraint' AND r.rel::oid = r.relid::oid
		   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = r.relid AND i.indisprimary) THEN
			RAISE EXCEPTION 'the primary key of audited table % cannot be dropped', r.relid
				USING ERRCODE = '42501',
					  DETAIL = 'Audit records identify their rows by it.',
					  HINT = 'Run hlauth.unaudit() first.';
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION hlauth_internal.guard_audit_drop() IS 'Event trigger (sql_drop): refuses dropping the audit triggers or the primary key of a table that stays audited';
GRANT EXECUTE ON FUNCTION hlauth_internal.guard_audit_drop() TO PUBLIC;
CREATE EVENT TRIGGER hlauth_guard_audit_drop ON sql_drop
	EXECUTE FUNCTION hlauth_internal.guard_audit_drop();
COMMENT ON EVENT TRIGGER hlauth_guard_audit_drop IS 'hlauth: the audit triggers and primary key of an audited table are not dropped but through hlauth.unaudit()';

-- ---- seals ----
CREATE FUNCTION hlauth.audit_seal() RETURNS hlauth.audit_seals
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	prev hlauth.audit_seals;
	s hlauth.audit_seals;
	snap pg_snapshot;
	p record;
	parts jsonb := '[]';
	total bigint := 0;
BEGIN
	PERFORM hlauth_internal.require_admin('seal the audit log');
	-- A seal must see the seal before it, committed a moment ago: a snapshot taken before the
	-- lock below (REPEATABLE READ, SERIALIZABLE) would not, and would start a second chain.
	IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
		RAISE EXCEPTION 'hlauth.audit_seal() runs only at the READ COMMITTED isolation level'
			USING ERRCODE = '25001',
				  DETAIL = pg_catalog.format('This transaction is %s: its snapshot may not show the latest seal.',
											 pg_catalog.current_setting('transaction_isolation')),
				  HINT = 'Call it in a READ COMMITTED transaction (the default), on its own.';
	END IF;
	-- Seals form a chain: one at a time.
	LOCK TABLE hlauth.audit_seals IN SHARE ROW EXCLUSIVE MODE;
	SELECT * INTO prev FROM hlauth.audit_seals ORDER BY id DESC LIMIT 1;
	-- The transaction's start: every snapshot it takes (READ COMMITTED: this statement's;
	-- REPEATABLE READ: its first statement's) is taken after it. So every transaction below
	-- the snapshot's xmin has ended, and every one that wrote a record before started_at is
	-- below its xmax.
	s.started_at := pg_catalog.now();
	snap := pg_catalog.pg_current_snapshot();
	s.xid_from := coalesce(prev.xid_to, 0);
	s.xid_to := pg_catalog.pg_snapshot_xmin(snap)::text::bigint;
	-- Retention's bound: every transaction that had an xid when this seal started has a
	-- smaller one than this. The snapshot's xmax is not that bound: it is one past the
	-- latest *completed* xid, and a transaction still running with a newer xid is not below
	-- it. This transaction's own xid, assigned now, is.
	s.snapshot_xmax := GREATEST(pg_catalog.pg_snapshot_xmax(snap)::text::bigint,
								pg_catalog.pg_current_xact_id()::text::bigint);
	IF s.xid_to < s.xid_from THEN
		s.xid_to := s.xid_from;
	END IF;
	FOR p IN SELECT * FROM hlauth_internal.audit_parts(s.xid_from, s.xid_to) LOOP
		IF p.bad > 0 THEN
			RAISE EXCEPTION 'audit records in % do not match their hashes: % of %', p.part, p.bad, p.row_count
				USING ERRCODE = 'XX001',
					  DETAIL = 'They were changed after they were written, before any seal covered them.',
					  HINT = 'Run hlauth.audit_verify() and investigate; nothing was sealed.';
		END IF;
		parts := parts || pg_catalog.jsonb_build_object('partition', p.part, 'rows', p.row_count, 'digest', p.digest);
		total := total + p.row_count;
	END LOOP;
	s.id := pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('hlauth.audit_seals', 'id'));
	s.sealed_at := pg_catalog.clock_timestamp();
	s.row_count := total;
	s.parts := parts;
	s.prev_mac := prev.mac;
	s.key_version := hlauth_internal.audit_key_version();
	s.sealed_by := hlauth_internal.session_role();
	s.mac := hlauth_internal.audit_mac(hlauth_internal.audit_seal_message(s), s.key_version);
	INSERT INTO hlauth.audit_seals OVERRIDING SYSTEM VALUE SELECT s.*;
	PERFORM hlauth_internal.emit_event('audit.sealed', NULL,
		pg_catalog.jsonb_build_object('seal_id', s.id, 'rows', s.row_count, 'xid_from', s.xid_from,
									  'xid_to', s.xid_to, 'mac', pg_catalog.encode(s.mac, 'hex')));
	RETURN s;
END
$$;
REVOKE ALL ON FUNCTION hlauth.audit_seal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.audit_seal() TO hlauth_admin;
COMMENT ON FUNCTION hlauth.audit_seal() IS 'Seals the audit records of every transaction that ended since the last seal: per partition, a count and a hash chain, signed (HMAC) with a key derived from the server secret and chained to the previous seal (hlauth_admin; run it every minute or so)';

CREATE FUNCTION hlauth.audit_verify(from_time timestamptz DEFAULT '-infinity',
									to_time timestamptz DEFAULT 'infinity')
	RETURNS TABLE (ok boolean, seals_checked integer, rows_checked bigint, seal_id bigint,
				   part text, bad_xid bigint, bad_seq integer, problem text)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s hlauth.audit_seals;
	prev hlauth.audit_seals;
	have_prev boolean := false;
	p record;
	want jsonb;
	got jsonb;
	part_name text;
	bad record;
	mac bytea;
BEGIN
	PERFORM hlauth_internal.require_admin('verify the audit log');
	seals_checked := 0;
	rows_checked := 0;
	FOR s IN SELECT * FROM hlauth.audit_seals a WHERE a.sealed_at >= from_time AND a.sealed_at <= to_time ORDER BY a.id LOOP
		seal_id := s.id;
		-- The link to the previous seal (the one before the range, the first time).
		IF NOT have_prev THEN
			SELECT * INTO prev FROM hlauth.audit_seals a WHERE a.id < s.id ORDER BY a.id DESC LIMIT 1;
			have_prev := FOUND;
		END IF;
		IF have_prev THEN
			IF NOT hlauth_internal.audit_mac_equal(s.prev_mac, prev.mac) OR s.xid_from <> prev.xid_to THEN
				ok := false; problem := 'the seal does not follow the one before it (a seal was removed or changed)';
				RETURN NEXT; RETURN;
			END IF;
		ELSIF s.prev_mac IS NOT NULL OR s.xid_from <> 0 THEN
			ok := false; problem := 'the first seal is missing';
			RETURN NEXT; RETURN;
		END IF;
		mac := hlauth_internal.audit_mac(hlauth_internal.audit_seal_message(s), s.key_version);
		IF mac IS NULL THEN
			ok := false; problem := pg_catalog.format('master key version %s of the server secret is gone: the seal cannot be checked', s.key_version);
			RETURN NEXT; RETURN;
		END IF;
		IF NOT hlauth_internal.audit_mac_equal(mac, s.mac) THEN
			ok := false; problem := 'the seal''s signature does not match (the seal was changed or forged)';
			RETURN NEXT; RETURN;
		END IF;
		-- The records, partition by partition.
		FOR p IN
			SELECT coalesce(w.part, g.part) AS part, w.rows AS want_rows, w.digest AS want_digest,
				   g.row_count AS got_rows, g.digest AS got_digest, g.bad
			  FROM (SELECT e->>'partition' AS part, (e->>'rows')::bigint AS rows, e->>'digest' AS digest
					  FROM pg_catalog.jsonb_array_elements(s.parts) e) w
			  FULL JOIN hlauth_internal.audit_parts(s.xid_from, s.xid_to) g ON g.part = w.part
			 ORDER BY 1
		LOOP
			part := p.part;
			IF p.got_rows IS NULL
			   AND EXISTS (SELECT 1 FROM hlauth.audit_dropped_partitions d
							WHERE d.partition = p.part AND d.mac IS NOT NULL
							  AND hlauth_internal.audit_mac_equal(d.mac, hlauth_internal.audit_mac(
									hlauth_internal.audit_dropped_message(d.partition, d.range_end), d.key_version)))
			   AND pg_catalog.to_regclass('hlauth.' || pg_catalog.quote_ident(p.part)) IS NULL THEN
				CONTINUE;	-- dropped by retention after it was sealed
			END IF;
			IF p.bad > 0 THEN
				SELECT l.xid, l.seq INTO bad FROM hlauth.audit_log l
				 WHERE l.tableoid = ('hlauth.' || pg_catalog.quote_ident(p.part))::regclass
				   AND l.xid >= s.xid_from AND l.xid < s.xid_to
				   AND hlauth_internal.audit_row_hash(l) IS DISTINCT FROM l.row_hash
				 ORDER BY l.xid, l.seq LIMIT 1;
				ok := false; bad_xid := bad.xid; bad_seq := bad.seq;
				problem := 'an audit record does not match its hash (it was changed)';
				RETURN NEXT; RETURN;
			END IF;
			IF p.want_rows IS NULL THEN
				ok := false;
				problem := pg_catalog.format('%s records the seal does not cover were added to its transactions', p.got_rows);
				RETURN NEXT; RETURN;
			END IF;
			IF p.got_rows IS DISTINCT FROM p.want_rows OR p.got_digest IS DISTINCT FROM p.want_digest THEN
				ok := false;
				problem := pg_catalog.format('the records do not match the seal (%s found, %s sealed): records were removed, added or re-hashed',
											 coalesce(p.got_rows, 0), p.want_rows);
				RETURN NEXT; RETURN;
			END IF;
			rows_checked := rows_checked + p.got_rows;
		END LOOP;
		part := NULL;
		seals_checked := seals_checked + 1;
		prev := s;
		have_prev := true;
	END LOOP;
	ok := true; seal_id := NULL; part := NULL; problem := NULL;
	RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION hlauth.audit_verify(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.audit_verify(timestamptz, timestamptz) TO hlauth_admin;
COMMENT ON FUNCTION hlauth.audit_verify(timestamptz, timestamptz) IS 'Checks the seals made between from_time and to_time: their signatures, their chain, and the records they cover; reports the first record or seal that does not match (hlauth_admin)';

-- ---- retention ----
CREATE FUNCTION hlauth.audit_drop_sealed_partitions(older_than timestamptz)
	RETURNS SETOF text
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	covered bigint;
	v integer;
BEGIN
	PERFORM hlauth_internal.require_admin('drop audit partitions');
	IF older_than IS NULL OR older_than > pg_catalog.now() THEN
		RAISE EXCEPTION 'older_than must be a time in the past' USING ERRCODE = '22023';
	END IF;
	LOCK TABLE hlauth.audit_seals IN SHARE ROW EXCLUSIVE MODE;
	SELECT max(a.xid_to) INTO covered FROM hlauth.audit_seals a;
	FOR r IN
		SELECT c.relname::text AS part,
			   (pg_catalog.to_date(pg_catalog.substr(c.relname, 12), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' AS range_end
		  FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
		 WHERE i.inhparent = 'hlauth.audit_log'::regclass AND c.relname ~ '^audit_log_p[0-9]{8}$'
		 ORDER BY 2
	LOOP
		CONTINUE WHEN r.range_end IS NULL OR r.range_end > older_than;
		-- Sealed: a seal taken after the partition's range ended (so every transaction that
		-- wrote to it had an xid below that seal's snapshot_xmax), and seals since then that
		-- cover every such transaction.
		IF covered IS NULL OR NOT EXISTS (
				SELECT 1 FROM hlauth.audit_seals a
				 WHERE a.started_at > r.range_end AND a.snapshot_xmax <= covered) THEN
			RAISE NOTICE 'audit partition % is not sealed yet: kept', r.part
				USING HINT = 'Run hlauth.audit_seal() (twice, some time apart) after its day ended.';
			CONTINUE;
		END IF;
		EXECUTE pg_catalog.format('DROP TABLE hlauth.%I', r.part);
		-- Signed: a superuser who drops a sealed partition by hand and adds a line here,
		-- without the server secret, does not make audit_verify() skip its digest.
		v := hlauth_internal.audit_key_version();
		INSERT INTO hlauth.audit_dropped_partitions (partition, range_end, dropped_by, key_version, mac)
		VALUES (r.part, r.range_end, hlauth_internal.session_role(), v,
				hlauth_internal.audit_mac(hlauth_internal.audit_dropped_message(r.part, r.range_end), v));
		PERFORM hlauth_internal.emit_event('audit.partition_dropped', NULL,
			pg_catalog.jsonb_build_object('partition', r.part, 'range_end', r.range_end));
		RETURN NEXT r.part;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION hlauth.audit_drop_sealed_partitions(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.audit_drop_sealed_partitions(timestamptz) TO hlauth_admin;
COMMENT ON FUNCTION hlauth.audit_drop_sealed_partitions(timestamptz) IS 'Retention: drops the daily audit partitions whose day ended before older_than and whose records are all sealed; returns their names (hlauth_admin)';

-- The protection of a protected table does not include its audit triggers: audit() and
-- unaudit() change those (hlauth_guard_audit guards them), not the protection. And its name
-- is its schema's name, not the schema's OID: ALTER SCHEMA ... RENAME moved a protected
-- table away from its name, for an unprotected look-alike in a new schema of that name (a
-- red-team pass). Otherwise 0.1.0's fingerprint; the stored fingerprints are recomputed.
--
-- Its text must not depend on the session that computes it: stored by the one that protects
-- the table, it is compared by whoever runs DDL later. quote_all_identifiers=on at protect()
-- stored a form that every later check found changed, refusing all non-admins' DDL (a
-- red-team pass); the settings that change how names and constants are written are pinned
-- (standard_conforming_strings and lc_monetary since a later pass).
CREATE OR REPLACE FUNCTION hlauth_internal.protection_fingerprint(tbl regclass) RETURNS text
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
	SET quote_all_identifiers = off
	SET datestyle = 'ISO, YMD'
	SET intervalstyle = 'postgres'
	SET timezone = 'UTC'
	SET extra_float_digits = 1
	SET bytea_output = 'hex'
	SET standard_conforming_strings = on
	SET lc_monetary = 'C' AS $$
	SELECT concat_ws(' | ',
		-- its name (a renamed table could be replaced by an unprotected one) and RLS flags
		(SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ':' ||
				c.relrowsecurity::text || '/' || c.relforcerowsecurity::text
		   FROM pg_class c JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
		  WHERE c.oid OPERATOR(pg_catalog.=) tbl),
		-- its parents (made a child of another table, its rows would be read through that one)
		(SELECT 'inherits:' || string_agg(i.inhparent::oid::text, ',' ORDER BY i.inhparent)
		   FROM pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) tbl),
		(SELECT string_agg(concat_ws(':', p.polname, p.polcmd, p.polpermissive, p.polroles::text,
									 pg_get_expr(p.polqual, p.polrelid),
									 pg_get_expr(p.polwithcheck, p.polrelid)), '; ' ORDER BY p.polname)
		   FROM pg_policy p
		  WHERE p.polrelid OPERATOR(pg_catalog.=) tbl),
		(SELECT string_agg(t.tgname::text || ':' || t.tgenabled::text || ':' || t.tgfoid::regproc::text, '; ' ORDER BY t.tgname)
		   FROM pg_trigger t
		  WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl AND NOT t.tgisinternal
			AND NOT (t.tgname IN ('hlauth_audit', 'hlauth_audit_statement')
					 AND t.tgfoid IN ('hlauth_internal.audit_row()'::regprocedure,
									  'hlauth_internal.audit_statement()'::regprocedure))))
$$;
UPDATE hlauth_internal.protected_tables pt SET fingerprint = hlauth_internal.protection_fingerprint(pt.relid);
