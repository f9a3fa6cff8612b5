-- ---------------------------------------------------------------------------
-- The DDL guard after a command (guard_protection), judged by what is committed now and by
-- who really runs the command (a twentieth red-team pass):
-- - under REPEATABLE READ, its reads of the registry used the transaction's snapshot: a
--   table protected after it was invisible, and its owner turned row-level security off and
--   dropped its policies. A transaction whose snapshot misses a change of the registry may
--   now change no table (40001, retry it); hlauth_guard_ddl_start refuses it too;
-- - a non-admin's protect() runs its DDL as the bootstrap superuser, and the guard recorded
--   a change the owner had made to another protected table as an admin's. protect()'s own
--   DDL is no longer judged, and a change is recorded only when both the current role and
--   the session's role are admins.
-- And hlauth's event triggers fire whatever session_replication_role is (ENABLE ALWAYS):
-- PostgreSQL 15 lets a superuser GRANT SET on it to any role, and in replica mode a table
-- owner turned FORCE ROW LEVEL SECURITY off, disabled the audit trigger and added a policy
-- open to every tenant (the same pass). (Writes in replica mode: src/guard.c.)
-- ---------------------------------------------------------------------------
CREATE FUNCTION hlauth_internal.refuse_stale_registry() RETURNS void
	AS 'MODULE_PATHNAME', 'hlauth_refuse_stale_registry' LANGUAGE C VOLATILE;
GRANT EXECUTE ON FUNCTION hlauth_internal.refuse_stale_registry() TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.refuse_stale_registry() IS 'Raises 40001 when the transaction''s snapshot misses a change of the protected tables'' registry';
-- (hlauth_internal.protect_in_progress(): 050_audit.sql)
CREATE FUNCTION hlauth_internal.accepts_protection_changes() RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlauth_accepts_protection_changes' LANGUAGE C VOLATILE;
GRANT EXECUTE ON FUNCTION hlauth_internal.accepts_protection_changes() TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.accepts_protection_changes() IS 'Are both the current role and the session''s role hlauth admins (so that a change of a protected table is theirs)?';

CREATE OR REPLACE FUNCTION hlauth_internal.guard_protection() RETURNS event_trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	admin boolean;
BEGIN
	IF hlauth_internal.protect_in_progress() THEN
		RETURN;		-- protect()'s own DDL; it registers what it protects itself
	END IF;
	PERFORM hlauth_internal.refuse_stale_registry();
	admin := hlauth_internal.accepts_protection_changes();
	IF EXISTS (SELECT 1 FROM hlauth_internal.protected_tables pt
				WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) pt.relid)) THEN
		IF NOT admin THEN
			RAISE EXCEPTION 'permission denied: dropping a table protected by hlauth requires hlauth_admin'
				USING ERRCODE = '42501',
					  DETAIL = 'A protected table dropped and created again without protection would collect every tenant''s rows.',
					  HINT = 'Ask an hlauth_admin to drop it.';
		END IF;
		PERFORM hlauth_internal.forget_dropped_tables();
	END IF;
	PERFORM hlauth_internal.protect_new_partitions();
	-- Which tables could the command have changed? After a command on tables, indexes,
	-- triggers, policies or rules: only tables this transaction holds a lock on, since every
	-- such change locks its table. Fingerprinting every protected table after every command
	-- locked each (pg_get_expr), which deadlocked pg_restore -j and made audit() and
	-- protect() of a table with hundreds of partitions take minutes (a twenty-second red-team
	-- pass). Any other command (ALTER SCHEMA ... RENAME, ALTER FUNCTION ... RENAME, ALTER TYPE,
	-- all that can change a fingerprint without locking the table) checks every table.
	FOR r IN SELECT pt.relid, pt.fingerprint FROM hlauth_internal.protected_tables pt
			  WHERE TG_TAG NOT IN ('CREATE TABLE', 'ALTER TABLE', 'DROP TABLE', 'CREATE INDEX',
								   'ALTER INDEX', 'DROP INDEX', 'CREATE TRIGGER', 'ALTER TRIGGER',
								   'DROP TRIGGER', 'CREATE POLICY', 'ALTER POLICY', 'DROP POLICY',
								   'CREATE RULE', 'DROP RULE', 'CREATE STATISTICS', 'ALTER STATISTICS',
								   'DROP STATISTICS', 'COMMENT', 'GRANT', 'REVOKE')
				 OR pt.relid::pg_catalog.oid IN (SELECT l.relation FROM pg_catalog.pg_locks l
												  WHERE l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()
													AND l.locktype OPERATOR(pg_catalog.=) 'relation'
													AND l.granted) LOOP
		IF hlauth_internal.protection_fingerprint(r.relid) IS DISTINCT FROM r.fingerprint THEN
			IF admin THEN
				RAISE WARNING 'the hlauth protection of table % was changed by hand', r.relid
					USING HINT = 'The change is now recorded as the table''s protection. To restore hlauth''s own, run hlauth.unprotect() and then hlauth.protect().';
				PERFORM hlauth_internal.accept_protection_change(r.relid);
			ELSE
				RAISE EXCEPTION 'permission denied: table % is protected by hlauth', r.relid
					USING ERRCODE = '42501',
						  DETAIL = 'Its name, parents, row-level security, policies and triggers can be changed only by hlauth_admin.',
						  HINT = 'Ask an hlauth_admin to make the change, or to run hlauth.protect() or hlauth.unprotect().';
			END IF;
		END IF;
	END LOOP;
END
$$;

-- The write guard and the truncate guard of protected tables fire in every mode too: a role
-- granted SET on session_replication_role switched to replica mode in the middle of a
-- statement (a trigger of its own on another table listed first in a TRUNCATE), and the
-- TRUNCATE removed every tenant's rows (a twenty-first red-team pass). Both let a superuser
-- (logical replication's apply worker) through anyway. hlauth.protect() calls this for every
-- table it protects; the fingerprint records the triggers' state.
CREATE FUNCTION hlauth_internal.guard_triggers_always(tbl regclass) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl
				AND t.tgname IN ('hlauth_require_context', 'hlauth_no_truncate')
				AND t.tgenabled OPERATOR(pg_catalog.<>) 'A') THEN
		EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER hlauth_require_context, '
								  'ENABLE ALWAYS TRIGGER hlauth_no_truncate', tbl);
		UPDATE hlauth_internal.protected_tables pt SET fingerprint = hlauth_internal.protection_fingerprint(tbl)
		 WHERE pt.relid OPERATOR(pg_catalog.=) tbl;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.guard_triggers_always(regclass) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.guard_triggers_always(regclass) IS 'Makes a protected table''s write and truncate guards fire in every session_replication_role, and records its fingerprint (hlauth.protect())';
-- (tables protected by 0.1.0)
SELECT hlauth_internal.guard_triggers_always(pt.relid) FROM hlauth_internal.protected_tables pt;

ALTER EVENT TRIGGER hlauth_guard_ddl_start ENABLE ALWAYS;
ALTER EVENT TRIGGER hlauth_guard_ddl_end ENABLE ALWAYS;
ALTER EVENT TRIGGER hlauth_guard_audit ENABLE ALWAYS;
ALTER EVENT TRIGGER hlauth_guard_audit_drop ENABLE ALWAYS;
