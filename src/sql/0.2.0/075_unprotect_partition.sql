-- ---------------------------------------------------------------------------
-- hlauth.unprotect() of a partition or child of a protected table is refused: the guard
-- protects such tables again at the next DDL (protect_new_partitions), so the first of
-- remove_protection's own commands registered it again while the rest stripped it, leaving
-- a registered table with row-level security off (a red-team pass). Unprotect the parent.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION hlauth.unprotect(tbl regclass) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	parent regclass;
BEGIN
	IF NOT hlauth_internal.is_admin() THEN
		RAISE EXCEPTION 'permission denied: removing the protection of table % requires hlauth_admin', tbl
			USING ERRCODE = '42501', HINT = 'Ask an hlauth_admin (GRANT hlauth_admin TO ...) to run it.';
	END IF;
	SELECT i.inhparent::regclass INTO parent
	  FROM pg_inherits i JOIN hlauth_internal.protected_tables pt ON pt.relid OPERATOR(pg_catalog.=) i.inhparent
	 WHERE i.inhrelid OPERATOR(pg_catalog.=) tbl
	 LIMIT 1;
	IF parent IS NOT NULL THEN
		RAISE EXCEPTION 'cannot remove the protection of table %: it is a partition or child of protected table %', tbl, parent
			USING ERRCODE = '55000',
				  DETAIL = 'The partitions and children of a protected table are protected with it.',
				  HINT = 'Detach it first (ALTER TABLE ... DETACH PARTITION, NO INHERIT), or unprotect the parent.';
	END IF;
	PERFORM hlauth_internal.remove_protection(tbl);
END
$$;
COMMENT ON FUNCTION hlauth.unprotect(regclass) IS 'Removes what hlauth.protect() added, partitions included (hlauth_admin only); refused for a partition or child of a protected table';
