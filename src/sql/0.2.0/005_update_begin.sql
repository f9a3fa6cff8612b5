-- ---------------------------------------------------------------------------
-- The start of an update (in a fresh install, nothing is protected yet: no effect).
-- 0.2.0 records a table's protection differently (the fingerprint names the schema; see
-- 050_audit.sql), so every stored fingerprint differs from the new function's until the
-- update recomputes them. hlauth_guard_protection would meanwhile warn, after each
-- command of this script, that every protected table "was changed by hand", hiding the
-- tables that really were: it sleeps during the update (080_review.sql wakes it). A table
-- whose protection already differs from what 0.1.0 recorded (changed while the event
-- triggers were off) is reported here; as for any change an admin's DDL meets, the update
-- then records it as the table's protection.
-- ---------------------------------------------------------------------------
DO $update_begin$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT pt.relid FROM hlauth_internal.protected_tables pt
			  WHERE pt.fingerprint IS DISTINCT FROM hlauth_internal.protection_fingerprint(pt.relid)
			  ORDER BY pt.relid::pg_catalog.text LOOP
		RAISE WARNING 'the hlauth protection of table % differs from what hlauth recorded', r.relid
			USING DETAIL = 'It was changed without hlauth''s event triggers (disabled, or in single-user mode); the update records it as the table''s protection.',
				  HINT = 'Review it; hlauth.unprotect() and hlauth.protect() by an hlauth_admin restore hlauth''s own protection.';
	END LOOP;
END
$update_begin$;
ALTER EVENT TRIGGER hlauth_guard_protection DISABLE;
