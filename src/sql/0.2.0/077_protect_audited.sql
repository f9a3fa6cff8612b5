-- ---------------------------------------------------------------------------
-- protect_impl() as 0.1.0 wrote it, but for one thing: a non-admin's protect() (and the
-- implicit protection of a new partition or child) counted the audit's triggers
-- (hlauth_audit, hlauth_audit_statement, hlauth's own code) as the owner's, so the owner of
-- a protected and audited partitioned table could not create a partition of it (a
-- twenty-second red-team pass).
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION hlauth_internal.protect_impl(tbl regclass, tenant_column name, read_scope text,
											 write_scope text, tenant_kind text, caller_is_admin boolean)
	RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	att smallint;
	col_type oid;
	reg record;
	read_check text;
	write_check text;
	idx record;
BEGIN
	IF tenant_kind NOT IN ('agency', 'account', 'app') THEN
		RAISE EXCEPTION 'invalid tenant kind "%"', tenant_kind
			USING ERRCODE = '22023', HINT = 'Use agency, account or app.';
	END IF;
	IF read_scope IS NOT NULL AND NOT hlauth.scope_is_valid(read_scope) THEN
		PERFORM read_scope::hlauth.scopes;	-- raises 22P02 with the details
		RAISE EXCEPTION 'read_scope must be exactly one scope, not "%"', read_scope USING ERRCODE = '22P02';
	END IF;
	IF write_scope IS NOT NULL AND NOT hlauth.scope_is_valid(write_scope) THEN
		PERFORM write_scope::hlauth.scopes;
		RAISE EXCEPTION 'write_scope must be exactly one scope, not "%"', write_scope USING ERRCODE = '22P02';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl AND c.relkind IN ('r', 'p')) THEN
		RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = '42809';
	END IF;
	SELECT a.attnum, a.atttypid INTO att, col_type
	  FROM pg_attribute a
	 WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) tenant_column
	   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', tenant_column, tbl
			USING ERRCODE = '42703', HINT = 'Name the tenant column: hlauth.protect(''my_table'', ''tenant_column'').';
	END IF;
	IF col_type OPERATOR(pg_catalog.<>) 'uuid'::regtype THEN
		RAISE EXCEPTION 'tenant column "%" of table % has type %, not uuid', tenant_column, tbl, col_type::regtype
			USING ERRCODE = '42804', HINT = 'Tenant ids are uuids: ALTER TABLE ... ALTER COLUMN ... TYPE uuid.';
	END IF;

	SELECT * INTO reg FROM hlauth_internal.protected_tables pt WHERE pt.relid OPERATOR(pg_catalog.=) tbl;
	IF FOUND THEN
		IF reg.tenant_column = tenant_column AND reg.tenant_kind = tenant_kind
		   AND reg.read_scope IS NOT DISTINCT FROM read_scope AND reg.write_scope IS NOT DISTINCT FROM write_scope
		   AND reg.fingerprint = hlauth_internal.protection_fingerprint(tbl) THEN
			RAISE NOTICE 'table % is already protected', tbl;
			RETURN;
		END IF;
		IF NOT caller_is_admin THEN
			RAISE EXCEPTION 'permission denied: changing the protection of table % requires hlauth_admin', tbl
				USING ERRCODE = '42501';
		END IF;
		PERFORM hlauth_internal.unregister_protection(tbl);
	END IF;

	-- Only tenants of the column's kind: an agency principal cannot file a row under the
	-- agency's own id in an account_id column.
	-- The scope goes into the same call, so the whole policy is one index condition,
	-- evaluated once per scan rather than a filter evaluated per row.
	read_check := format('%I OPERATOR(pg_catalog.=) ANY (hlauth.accessible_tenants(%L, %L))',
						 tenant_column, tenant_kind, read_scope);
	write_check := format('%I OPERATOR(pg_catalog.=) ANY (hlauth.accessible_tenants(%L, %L))',
						  tenant_column, tenant_kind, write_scope);

	FOR idx IN SELECT p.polname FROM pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) tbl
				AND p.polpermissive AND p.polname NOT IN ('hlauth_select', 'hlauth_insert', 'hlauth_update', 'hlauth_delete') LOOP
		RAISE EXCEPTION 'table % has a permissive policy "%"', tbl, idx.polname
			USING ERRCODE = '55000',
				  DETAIL = 'Permissive policies are combined with OR: it would widen hlauth''s tenant isolation.',
				  HINT = 'Drop it, or have an hlauth_admin recreate it AS RESTRICTIVE.';
	END LOOP;

	-- A table under an unprotected parent would be read through that parent.
	FOR idx IN SELECT i.inhparent::regclass AS parent FROM pg_inherits i
				WHERE i.inhrelid OPERATOR(pg_catalog.=) tbl
				  AND NOT EXISTS (SELECT 1 FROM hlauth_internal.protected_tables pt
								   WHERE pt.relid OPERATOR(pg_catalog.=) i.inhparent) LOOP
		RAISE EXCEPTION 'table % is a child of table %, which is not protected', tbl, idx.parent
			USING ERRCODE = '55000',
				  DETAIL = 'Its rows would be read through the parent without hlauth''s policies.',
				  HINT = format('Protect the parent instead: hlauth.protect(%L).', idx.parent);
	END LOOP;

	-- A trigger or rule sees every tenant's writes: one the owner made before protecting
	-- the table needs an hlauth_admin's review.
	-- Code of the owner's that would run over every tenant's rows or writes: triggers, rules,
	-- restrictive policies, CHECK and exclusion constraints, generated columns, expression
	-- and partial indexes. An hlauth_admin must review such a table before it is protected.
	IF NOT caller_is_admin THEN
		FOR idx IN SELECT 'trigger ' || quote_ident(t.tgname) AS what FROM pg_trigger t
					WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl AND NOT t.tgisinternal
					  AND t.tgname NOT IN ('hlauth_require_context', 'hlauth_no_truncate')
					  -- the audit's triggers are hlauth's code, not the owner's
					  AND NOT (t.tgname IN ('hlauth_audit', 'hlauth_audit_statement')
							   AND t.tgfoid IN ('hlauth_internal.audit_row()'::pg_catalog.regprocedure,
												'hlauth_internal.audit_statement()'::pg_catalog.regprocedure))
				   UNION ALL
				   SELECT 'rule ' || quote_ident(r.rulename) FROM pg_rewrite r
					WHERE r.ev_class OPERATOR(pg_catalog.=) tbl AND r.rulename <> '_RETURN'
				   UNION ALL
				   SELECT 'policy ' || quote_ident(p.polname) FROM pg_policy p
					WHERE p.polrelid OPERATOR(pg_catalog.=) tbl AND p.polname NOT IN ('hlauth_select', 'hlauth_insert', 'hlauth_update', 'hlauth_delete')
				   UNION ALL
				   SELECT 'constraint ' || quote_ident(c.conname) FROM pg_constraint c
					WHERE c.conrelid OPERATOR(pg_catalog.=) tbl AND c.contype IN ('c', 'x')
				   UNION ALL
				   SELECT 'generated column ' || quote_ident(a.attname) FROM pg_attribute a
					WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attnum OPERATOR(pg_catalog.>) 0
					  AND NOT a.attisdropped AND a.attgenerated <> ''
				   UNION ALL
				   SELECT 'index ' || i.indexrelid::regclass::text FROM pg_index i
					WHERE i.indrelid OPERATOR(pg_catalog.=) tbl
					  AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL) LOOP
			RAISE EXCEPTION 'permission denied: table % has %', tbl, idx.what
				USING ERRCODE = '42501',
					  DETAIL = 'It would run its code over every tenant''s rows or writes once the table is protected.',
					  HINT = 'Ask an hlauth_admin to review it and run hlauth.protect().';
		END LOOP;
	END IF;

	EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', tbl);
	PERFORM hlauth_internal.drop_protection_objects(tbl);
	EXECUTE format('CREATE POLICY hlauth_select ON %s AS PERMISSIVE FOR SELECT TO PUBLIC USING (%s)',
				   tbl, read_check);
	EXECUTE format('CREATE POLICY hlauth_insert ON %s AS PERMISSIVE FOR INSERT TO PUBLIC WITH CHECK (%s)',
				   tbl, write_check);
	EXECUTE format('CREATE POLICY hlauth_update ON %s AS PERMISSIVE FOR UPDATE TO PUBLIC USING (%s) WITH CHECK (%s)',
				   tbl, write_check, write_check);
	EXECUTE format('CREATE POLICY hlauth_delete ON %s AS PERMISSIVE FOR DELETE TO PUBLIC USING (%s)',
				   tbl, write_check);
	EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT hlauth.%s()', tbl, tenant_column, tenant_kind);
	IF write_scope IS NULL THEN
		EXECUTE format('CREATE TRIGGER hlauth_require_context BEFORE INSERT OR UPDATE OR DELETE ON %s '
					   'FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.require_context()', tbl);
	ELSE
		EXECUTE format('CREATE TRIGGER hlauth_require_context BEFORE INSERT OR UPDATE OR DELETE ON %s '
					   'FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.require_context(%L)', tbl, write_scope);
	END IF;
	EXECUTE format('CREATE TRIGGER hlauth_no_truncate BEFORE TRUNCATE ON %s '
				   'FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.refuse_truncate()', tbl);

	IF NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) tbl
					AND i.indkey[0] OPERATOR(pg_catalog.=) att) THEN
		RAISE WARNING 'no index of table % starts with its tenant column "%"', tbl, tenant_column
			USING HINT = format('CREATE INDEX ON %s (%I, ...): without it every protected query reads the whole table.',
								tbl, tenant_column);
	END IF;
	FOR idx IN SELECT i.indexrelid::regclass AS name FROM pg_index i
				WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisunique
				  AND NOT (att OPERATOR(pg_catalog.=) ANY (i.indkey::smallint[])) LOOP
		RAISE WARNING 'unique index % of table % does not include the tenant column "%"', idx.name, tbl, tenant_column
			USING DETAIL = 'A unique violation would tell one tenant that another tenant holds the same value.',
				  HINT = 'Make the tenant column part of every unique key, e.g. UNIQUE (account_id, email).';
	END LOOP;

	PERFORM hlauth_internal.register_protection(tbl, tenant_column, tenant_kind, read_scope, write_scope);

	-- Partitions and children are tables of their own: protect each, so that direct access
	-- is isolated too. (While protect() runs, the DDL guard does not protect them itself.)
	FOR idx IN SELECT i.inhrelid::regclass AS child FROM pg_inherits i
				WHERE i.inhparent OPERATOR(pg_catalog.=) tbl ORDER BY i.inhrelid LOOP
		PERFORM hlauth_internal.protect_impl(idx.child, tenant_column, read_scope, write_scope, tenant_kind,
											 caller_is_admin);
	END LOOP;
END
$$;
