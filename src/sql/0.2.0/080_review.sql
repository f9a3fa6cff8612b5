-- ---------------------------------------------------------------------------
-- hlauth.review_protection(): what protect() would now refuse a non-admin's protected table
-- for (kept from before protect() refused it, or from 0.1.0: a column default calling the
-- owner's function, a foreign key with an action on a table that is not protected, ...),
-- and foreign keys into protected tables from tables that are not. See src/protect.c.
-- ---------------------------------------------------------------------------
CREATE FUNCTION hlauth.review_protection() RETURNS TABLE (tbl regclass, finding text)
	AS 'MODULE_PATHNAME', 'hlauth_review_protection' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION hlauth.review_protection() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.review_protection() TO hlauth_admin;
COMMENT ON FUNCTION hlauth.review_protection() IS 'For each protected table: what protect() would refuse a non-admin owner''s table for now (owner code in defaults, column types, partition keys, foreign-key actions on unprotected tables), and foreign keys into it from unprotected tables (hlauth_admin)';

-- ---------------------------------------------------------------------------
-- The end of an update: the stored fingerprints are 0.2.0's (050_audit.sql), the guard is
-- awake again, and what 0.1.0 let table owners keep is reported.
-- ---------------------------------------------------------------------------
ALTER EVENT TRIGGER hlauth_guard_protection ENABLE ALWAYS;
DO $update_review$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT * FROM hlauth.review_protection() ORDER BY 1, 2 LOOP
		RAISE WARNING 'hlauth: protected table %: %', r.tbl, r.finding
			USING HINT = 'hlauth 0.1.0 allowed it; 0.2.0 refuses it to a table owner who is not an hlauth_admin. Review it: SELECT * FROM hlauth.review_protection().';
	END LOOP;
END
$update_review$;
