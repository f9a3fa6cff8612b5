-- test/pgtap/threats_sandbox.sql
-- PostgreSQL's security-restricted operations (THREATS.md 3 and 15): ANALYZE and
-- autovacuum, CREATE INDEX, REINDEX, CLUSTER and REFRESH MATERIALIZED VIEW run a table
-- owner's code (index expressions, a materialized view's query) as that owner, in a
-- sandbox, on behalf of whoever maintains the table. They do not change the session role.
-- Found by a red-team pass: hlauth judged "is the caller an admin?" by the session role,
-- so an app role with no hlauth rights at all planted an expression index whose function
-- called hlauth.grant_role() and hlauth.issue_api_key(); the next ANALYZE by a superuser
-- (or autovacuum's, whose session role is the bootstrap superuser) granted it a platform
-- role and minted it a key. The same sandboxed code saw the session's principal context.
--   sb_app      an application role: no hlauth role at all; owns sb_app's schema
--   sb_trusted  an application role in hlauth_trusted (may call set_principal)
-- The same red-team pass found the same judgement lent an admin session's rights to another
-- role's SECURITY DEFINER function (or trigger function) that the session ran.
-- Each attack must fail inside the sandbox with 42501, and leave nothing granted, issued,
-- claimed or set. The attacks are performed by a superuser's ANALYZE; autovacuum runs the
-- same code path (do_analyze_rel, in a security-restricted operation).

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['sb_app', 'sb_trusted'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r);
		END IF;
		EXECUTE format('ALTER ROLE %I NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT NOLOGIN', r);
		EXECUTE format('ALTER ROLE %I RESET ALL', r);
	END LOOP;
	IF pg_has_role('sb_app', 'hlauth_trusted', 'MEMBER') THEN
		REVOKE hlauth_trusted FROM sb_app;
	END IF;
	IF pg_has_role('sb_app', 'hlauth_admin', 'MEMBER') THEN
		REVOKE hlauth_admin FROM sb_app;
	END IF;
END
$$;
GRANT hlauth_trusted TO sb_trusted;

CREATE SCHEMA sb;
GRANT USAGE ON SCHEMA sb TO PUBLIC;
CREATE SCHEMA sb_app AUTHORIZATION sb_app;
CREATE SCHEMA sb_trusted AUTHORIZATION sb_trusted;

-- Tenants: agency G > accounts A and B. Principal P reads notes at A; X is the attacker's
-- made-up principal.
CREATE TABLE sb.names (id uuid PRIMARY KEY, name text UNIQUE NOT NULL);
INSERT INTO sb.names VALUES
	('5b000000-0000-4000-8000-000000000001', 'G'), ('5b000000-0000-4000-8000-000000000011', 'A'),
	('5b000000-0000-4000-8000-000000000012', 'B'), ('5b000000-0000-4000-8000-0000000000a1', 'P'),
	('5b000000-0000-4000-8000-0000000000ff', 'X');
CREATE FUNCTION sb.id(n text) RETURNS uuid LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
	AS $$ SELECT x.id FROM sb.names x WHERE x.name = n $$;
GRANT SELECT ON sb.names TO PUBLIC;
GRANT EXECUTE ON FUNCTION sb.id(text) TO PUBLIC;

DO $$
BEGIN
	PERFORM hlauth.create_tenant('agency', NULL, 'G', sb.id('G'));
	PERFORM hlauth.create_tenant('account', sb.id('G'), 'A', sb.id('A'));
	PERFORM hlauth.create_tenant('account', sb.id('G'), 'B', sb.id('B'));
	PERFORM hlauth.register_permission('notes.read', 'read notes');
	PERFORM hlauth.grant_role(sb.id('P'), hlauth.create_role('sb reader', 'notes.read'), sb.id('A'));
	PERFORM hlauth.create_role('sb everything', '*');
END
$$;
CREATE TABLE sb.keys (name text PRIMARY KEY, k text NOT NULL);
INSERT INTO sb.keys VALUES ('p', hlauth.issue_api_key(sb.id('P'), sb.id('A'), 'notes.read'));
GRANT SELECT ON sb.keys TO sb_trusted;
-- a pending security event, which a sandboxed claim must not take
SELECT hlauth.suspend_tenant(sb.id('B'));
SELECT hlauth.reactivate_tenant(sb.id('B'));

-- What the planted code tried, and how each attempt ended (SQLSTATE, or 'ok').
CREATE TABLE sb.attempts (n serial, who name NOT NULL, what text NOT NULL, outcome text NOT NULL);
GRANT INSERT, SELECT ON sb.attempts TO PUBLIC;
GRANT USAGE ON SEQUENCE sb.attempts_n_seq TO PUBLIC;

SELECT plan(21);

SELECT is_empty($$SELECT rolname FROM pg_roles WHERE rolname IN ('sb_app', 'sb_trusted') AND (rolsuper OR rolbypassrls)$$,
	'0: the attackers are not superusers and have no BYPASSRLS');

-- ---------------------------------------------------------------------------
-- 1. An expression index that calls hlauth's admin functions: a superuser's ANALYZE
-- ---------------------------------------------------------------------------
SET ROLE sb_app;
CREATE FUNCTION sb_app.payload() RETURNS void LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
	what text;
BEGIN
	FOREACH what IN ARRAY ARRAY['grant', 'key', 'claim'] LOOP
		BEGIN
			CASE what
				WHEN 'grant' THEN
					PERFORM hlauth.grant_role(sb.id('X'),
						(SELECT r.id FROM hlauth.roles r WHERE r.name = 'sb everything' AND r.agency_id IS NULL),
						sb.id('G'));
				WHEN 'key' THEN
					PERFORM hlauth.issue_api_key(sb.id('X'), sb.id('G'), '*');
				WHEN 'claim' THEN
					PERFORM hlauth.claim_events('sb', 100);
			END CASE;
			INSERT INTO sb.attempts (who, what, outcome) VALUES (current_user, what, 'ok');
		EXCEPTION WHEN OTHERS THEN
			INSERT INTO sb.attempts (who, what, outcome) VALUES (current_user, what, SQLSTATE);
		END;
	END LOOP;
END
$f$;
-- IMMUTABLE in name only: it calls the payload.
CREATE FUNCTION sb_app.innocent(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	PERFORM sb_app.payload();
	RETURN i;
END
$f$;
CREATE TABLE sb_app.bait (i int);
INSERT INTO sb_app.bait VALUES (1), (2), (3);
CREATE INDEX bait_idx ON sb_app.bait (sb_app.innocent(i));
RESET ROLE;
TRUNCATE sb.attempts;

ANALYZE sb_app.bait;

SELECT ok((SELECT count(*) FROM sb.attempts WHERE who = 'sb_app') >= 3,
	'3: the planted code ran during the superuser''s ANALYZE, as the table owner');
SELECT is_empty($$SELECT what, outcome FROM sb.attempts WHERE outcome <> '42501'$$,
	'3: every attempt inside ANALYZE was refused with 42501');
SELECT is((SELECT count(*) FROM hlauth.grants WHERE principal = sb.id('X')), 0::bigint,
	'15: no role was granted to the attacker''s principal');
SELECT is((SELECT count(*) FROM hlauth.api_keys WHERE principal = sb.id('X')), 0::bigint,
	'15: no key was issued to the attacker''s principal');
SELECT is((SELECT count(*) FROM hlauth.security_events WHERE claimed_by IS NOT NULL), 0::bigint,
	'3: no security event was claimed from inside the sandbox');
SELECT ok(hlauth_internal.caller_is_admin(), '3: outside the sandbox the superuser is still an admin');

-- ---------------------------------------------------------------------------
-- 2. Planting a context into the maintaining session's transaction
-- ---------------------------------------------------------------------------
SET ROLE sb_trusted;
CREATE FUNCTION sb_trusted.plant_payload() RETURNS void LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	BEGIN
		PERFORM hlauth.set_principal(sb.id('P'), sb.id('A'), 'notes.read');
		INSERT INTO sb.attempts (who, what, outcome) VALUES (current_user, 'set_principal', 'ok');
	EXCEPTION WHEN OTHERS THEN
		INSERT INTO sb.attempts (who, what, outcome) VALUES (current_user, 'set_principal', SQLSTATE);
	END;
	BEGIN
		PERFORM hlauth.authenticate((SELECT k.k FROM sb.keys k WHERE k.name = 'p'));
		INSERT INTO sb.attempts (who, what, outcome) VALUES (current_user, 'authenticate', 'ok');
	EXCEPTION WHEN OTHERS THEN
		INSERT INTO sb.attempts (who, what, outcome) VALUES (current_user, 'authenticate', SQLSTATE);
	END;
END
$f$;
CREATE FUNCTION sb_trusted.plant(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	PERFORM sb_trusted.plant_payload();
	RETURN i;
END
$f$;
CREATE TABLE sb_trusted.bait (i int);
INSERT INTO sb_trusted.bait VALUES (1), (2);
CREATE INDEX bait_idx ON sb_trusted.bait (sb_trusted.plant(i));
RESET ROLE;
TRUNCATE sb.attempts;

BEGIN;
ANALYZE sb_trusted.bait;
SELECT is(hlauth.principal(), NULL, '3: after ANALYZE the superuser''s transaction has no principal');
COMMIT;
SELECT ok((SELECT count(*) FROM sb.attempts WHERE who = 'sb_trusted') >= 2,
	'3: the planted code ran during ANALYZE');
SELECT is_empty($$SELECT what, outcome FROM sb.attempts WHERE outcome <> '42501'$$,
	'3: set_principal and authenticate were refused inside ANALYZE with 42501');

-- ---------------------------------------------------------------------------
-- 3. A materialized view refreshed under a principal's context holds none of its rows
-- ---------------------------------------------------------------------------
CREATE TABLE sb_trusted.notes (account_id uuid NOT NULL, id int NOT NULL, body text NOT NULL,
	PRIMARY KEY (account_id, id));
ALTER TABLE sb_trusted.notes OWNER TO sb_trusted;
INSERT INTO sb_trusted.notes VALUES (sb.id('A'), 1, 'a1'), (sb.id('A'), 2, 'a2'), (sb.id('B'), 1, 'b1');
SELECT hlauth.protect('sb_trusted.notes', read_scope => 'notes.read');
SET ROLE sb_trusted;
CREATE MATERIALIZED VIEW sb_trusted.note_count AS SELECT count(*) AS n FROM sb_trusted.notes;
BEGIN;
SELECT hlauth.set_principal(sb.id('P'), sb.id('A'), 'notes.read');
SELECT is((SELECT count(*) FROM sb_trusted.notes), 2::bigint, '7: the owner, as P at A, reads A''s two notes');
REFRESH MATERIALIZED VIEW sb_trusted.note_count;
SELECT is((SELECT n FROM sb_trusted.note_count), 0::bigint,
	'7: REFRESH MATERIALIZED VIEW (sandboxed) sees no context: the view holds none of P''s rows');
SELECT is(hlauth.principal(), sb.id('P'), '7: the context is back after the refresh');
COMMIT;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 4. An admin session running another role's SECURITY DEFINER code lends it nothing
-- ---------------------------------------------------------------------------
-- Inside such a function the session role is still the admin's; hlauth used to judge the
-- caller by it, so the function could grant roles and mint keys. Now the functions take a
-- stamp of their caller at the boundary, where the current user is the function's owner.
SET ROLE sb_app;
CREATE FUNCTION sb_app.helpful() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	PERFORM sb_app.payload();
END
$f$;
CREATE TABLE sb_app.inbox (i int);
CREATE FUNCTION sb_app.on_inbox() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	PERFORM sb_app.payload();
	RETURN NULL;
END
$f$;
CREATE TRIGGER on_inbox AFTER INSERT ON sb_app.inbox FOR EACH ROW EXECUTE FUNCTION sb_app.on_inbox();
GRANT INSERT ON sb_app.inbox TO PUBLIC;
RESET ROLE;
TRUNCATE sb.attempts;
SELECT sb_app.helpful();
INSERT INTO sb_app.inbox VALUES (1);
SELECT is((SELECT count(*) FROM sb.attempts WHERE who = 'sb_app'), 6::bigint,
	'3: the superuser ran sb_app''s SECURITY DEFINER function and trigger (3 attempts each)');
SELECT is_empty($$SELECT what, outcome FROM sb.attempts WHERE outcome <> '42501'$$,
	'3: every attempt from inside them was refused with 42501');
SELECT is((SELECT count(*) FROM hlauth.grants WHERE principal = sb.id('X')), 0::bigint,
	'15: ... no role was granted to the attacker''s principal');
SELECT is((SELECT count(*) FROM hlauth.api_keys WHERE principal = sb.id('X')), 0::bigint,
	'15: ... and no key was issued to it');
SET ROLE sb_app;
SELECT throws_ok($$SELECT hlauth_internal.grant_role('\x00112233445566778899aabbccddeeff'::bytea, sb.id('X'),
	(SELECT r.id FROM hlauth.roles r WHERE r.name = 'sb everything' AND r.agency_id IS NULL), sb.id('G'), NULL, NULL)$$,
	'42501', NULL, '3: the SECURITY DEFINER body called directly with a made-up stamp acts for a non-admin');
SELECT throws_ok($$SELECT hlauth_internal.issue_api_key(hlauth_internal.caller_stamp(), sb.id('X'), sb.id('G'), '*', NULL, NULL, '{}')$$,
	'42501', NULL, '3: ... and with a stamp of its own');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 5. The same calls outside a sandbox still work (the refusals are the sandbox's doing)
-- ---------------------------------------------------------------------------
SET ROLE sb_trusted;
BEGIN;
SELECT lives_ok($$SELECT hlauth.set_principal(sb.id('P'), sb.id('A'), 'notes.read')$$,
	'3: outside a sandbox sb_trusted may set a principal');
ROLLBACK;
RESET ROLE;
SELECT ok(hlauth.grant_role(sb.id('X'), (SELECT r.id FROM hlauth.roles r WHERE r.name = 'sb reader' AND r.agency_id IS NULL),
	sb.id('B')) IS NOT NULL, '15: outside a sandbox the superuser may grant roles');

SELECT * FROM finish();
