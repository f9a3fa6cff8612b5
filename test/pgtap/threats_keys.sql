-- test/pgtap/threats_keys.sql
-- API key management and authentication attacked by app roles (THREATS.md 9, 13, 15):
--   tk_app   an application role: not superuser, no BYPASSRLS, not hlauth_trusted, owner of
--            the schema tk_mal (it may plant functions and operators there)
-- Each attack must fail, and leave nothing widened. Found by a red-team pass:
--   1. authenticate() wrote last_used_at as the bootstrap superuser through SPI under the
--      caller's search_path: an operator "=" planted by the caller ran as the superuser and
--      could make the caller a superuser;
--   2. rotate_api_key() let a principal holding only hlauth/keys.write mint a successor of a
--      key with more scopes, and key management reached from an app up to its parent
--      account's keys;
--   3. a key past its expiry authenticated in a transaction that began before the expiry;
--   4. a key issued for another principal kept its scopes after its issuer was demoted;
--   5. ... and so did keys re-minted in the context of such a key;
--   6. a key rolled back still authenticated in its backend; principals set key attributes.
-- (A revocation committed while a transaction is open: test/isolation/specs/apikey_revoke.spec.)
-- The context lives for one transaction, so this file runs many transactions in sequence.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tk_app') THEN
		CREATE ROLE tk_app NOLOGIN;
	END IF;
	ALTER ROLE tk_app NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT NOLOGIN;
	ALTER ROLE tk_app RESET ALL;
	IF pg_has_role('tk_app', 'hlauth_trusted', 'MEMBER') THEN
		REVOKE hlauth_trusted FROM tk_app;
	END IF;
END
$$;

CREATE SCHEMA tk;
GRANT USAGE ON SCHEMA tk TO PUBLIC;
CREATE SCHEMA tk_mal AUTHORIZATION tk_app;

-- Tenants: agency G > account A > app A1. Principals: V (contacts.write at A), K (only
-- hlauth/keys.write, at app A1), KA (hlauth/keys.write and contacts.readonly at A).
CREATE TABLE tk.names (id uuid PRIMARY KEY, name text UNIQUE NOT NULL);
INSERT INTO tk.names VALUES
	('7c000000-0000-4000-8000-000000000001', 'G'), ('7c000000-0000-4000-8000-000000000011', 'A'),
	('7c000000-0000-4000-8000-000000000111', 'A1'), ('7c000000-0000-4000-8000-0000000000a1', 'V'),
	('7c000000-0000-4000-8000-0000000000c1', 'K'), ('7c000000-0000-4000-8000-0000000000c2', 'KA');
CREATE FUNCTION tk.id(n text) RETURNS uuid LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
	AS $$ SELECT x.id FROM tk.names x WHERE x.name = n $$;
GRANT SELECT ON tk.names TO PUBLIC;

DO $$
BEGIN
	PERFORM hlauth.create_tenant('agency', NULL, 'G', tk.id('G'));
	PERFORM hlauth.create_tenant('account', tk.id('G'), 'A', tk.id('A'));
	PERFORM hlauth.create_tenant('app', tk.id('A'), 'A1', tk.id('A1'));
	PERFORM hlauth.register_permission('contacts.readonly', 'read contacts');
	PERFORM hlauth.register_permission('contacts.write', 'edit contacts', ARRAY['contacts.readonly']);
	PERFORM hlauth.grant_role(tk.id('V'), hlauth.create_role('tk editor', 'contacts.write'), tk.id('A'));
	PERFORM hlauth.grant_role(tk.id('K'), hlauth.create_role('tk key manager', 'hlauth/keys.write'), tk.id('A1'));
	PERFORM hlauth.grant_role(tk.id('KA'), hlauth.create_role('tk key manager reader', 'hlauth/keys.write contacts.readonly'),
							  tk.id('A'));
END
$$;

-- The plaintext keys, for the app role to present (a test fixture, never a practice).
CREATE TABLE tk.keys (name text PRIMARY KEY, k text NOT NULL);
INSERT INTO tk.keys VALUES
	('victim', hlauth.issue_api_key(tk.id('V'), tk.id('A'), 'contacts.write')),
	('victim readonly', hlauth.issue_api_key(tk.id('V'), tk.id('A'), 'contacts.readonly')),
	('kay', hlauth.issue_api_key(tk.id('K'), tk.id('A1'), 'hlauth/keys.write')),
	('kay account', hlauth.issue_api_key(tk.id('KA'), tk.id('A'), 'hlauth/keys.write contacts.readonly')),
	('hijack', hlauth.issue_api_key(tk.id('V'), tk.id('A'), 'contacts.readonly'));
GRANT SELECT ON tk.keys TO tk_app;
CREATE FUNCTION tk.key_id(n text) RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
	AS $$ SELECT hlauth.api_key_id(k.k::hlauth.apikey) FROM tk.keys k WHERE k.name = n $$;
GRANT EXECUTE ON FUNCTION tk.key_id(text) TO PUBLIC;

-- What the planted operator saw: every role it ran as.
CREATE TABLE tk.planted_calls (run_as name NOT NULL);
GRANT INSERT, SELECT ON tk.planted_calls TO PUBLIC;

SELECT plan(37);

SELECT is_empty($$SELECT rolname FROM pg_roles WHERE rolname = 'tk_app' AND (rolsuper OR rolbypassrls)$$,
	'0: tk_app is not a superuser and has no BYPASSRLS');

-- ---------------------------------------------------------------------------
-- 1. search_path: an operator planted by the caller never runs with hlauth's rights
-- ---------------------------------------------------------------------------
SET ROLE tk_app;
CREATE FUNCTION tk_mal.eq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO tk.planted_calls VALUES (current_user);
	IF current_user <> 'tk_app' THEN
		EXECUTE 'ALTER ROLE tk_app SUPERUSER';
	END IF;
	RETURN a OPERATOR(pg_catalog.=) b;
END
$$;
CREATE OPERATOR tk_mal.= (LEFTARG = text, RIGHTARG = text, FUNCTION = tk_mal.eq);
CREATE OPERATOR tk_mal.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = pg_catalog.timestamptz_lt);
SET search_path = tk_mal, pg_catalog, public;
-- A fresh key: its last_used_at is written (read-write transaction, never written before).
SELECT lives_ok($$SELECT hlauth.authenticate((SELECT k FROM tk.keys WHERE name = 'hijack'))$$,
	'9: authenticate with a planted "=" operator first in search_path still works');
RESET search_path;
RESET ROLE;
SELECT ok((SELECT last_used_at IS NOT NULL FROM hlauth.api_keys WHERE key_id = tk.key_id('hijack')),
	'9: the usage write ran (last_used_at is set)');
SELECT ok(NOT (SELECT rolsuper FROM pg_roles WHERE rolname = 'tk_app'),
	'9: the caller did not become a superuser');
SELECT is_empty($$SELECT run_as FROM tk.planted_calls WHERE run_as <> 'tk_app'$$,
	'9: the planted operator never ran as another role');
DROP OPERATOR tk_mal.= (text, text);
DROP OPERATOR tk_mal.< (timestamptz, timestamptz);
DROP FUNCTION tk_mal.eq(text, text);

-- ---------------------------------------------------------------------------
-- 2. Key management: never more than the manager holds, never above its tenant
-- ---------------------------------------------------------------------------
SET ROLE tk_app;
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM tk.keys WHERE name = 'kay'));
SELECT is(hlauth.scopes()::text, 'hlauth/keys.write', '15: K, at app A1, holds only hlauth/keys.write');
SELECT throws_ok($$SELECT hlauth.rotate_api_key(tk.key_id('victim'), '0')$$, '42501', NULL,
	'15: K cannot rotate V''s contacts.write key at the parent account A (no successor minted)');
SELECT throws_ok($$SELECT hlauth.revoke_api_key(tk.key_id('victim'))$$, '42501', NULL,
	'15: K cannot revoke a key of the parent account A');
SELECT throws_ok($$SELECT hlauth.issue_api_key(tk.id('K'), tk.id('A'), 'hlauth/keys.write')$$, '42501', NULL,
	'15: K cannot issue a key at the parent account A');
-- A key out of reach and a missing one get the same answer (a red-team pass: a missing key
-- was 42704 "does not exist", an existing one out of reach named its tenant).
SELECT throws_ok(format('SELECT hlauth.revoke_api_key(%L)', tk.key_id('victim')), '42501',
	format('permission denied: API key %s does not exist or is not within reach', tk.key_id('victim')),
	'15: revoking a key out of reach says neither that it exists nor its tenant');
SELECT throws_ok($$SELECT hlauth.revoke_api_key('nosuchkey000')$$, '42501',
	'permission denied: API key nosuchkey000 does not exist or is not within reach',
	'15: ... and a missing key gets the same answer');
SELECT throws_ok($$SELECT hlauth.rotate_api_key('nosuchkey000', '0')$$, '42501',
	'permission denied: API key nosuchkey000 does not exist or is not within reach',
	'15: ... when rotating too');
SELECT lives_ok($$SELECT hlauth.effective_scopes(tk.id('K'), tk.id('A1'))$$,
	'15: K reads its own effective scopes');
SELECT throws_ok($$SELECT hlauth.effective_scopes(tk.id('V'), tk.id('A1'))$$, '42501', NULL,
	'15: ... but not another principal''s without hlauth/grants.write (42501)');
ROLLBACK;
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM tk.keys WHERE name = 'kay account'));
SELECT throws_ok($$SELECT hlauth.rotate_api_key(tk.key_id('victim'), '0')$$, '42501',
	'permission denied: the caller does not hold all of the key''s scopes',
	'15: KA, a key manager at A with contacts.readonly, cannot rotate a contacts.write key at A');
SELECT ok(hlauth.rotate_api_key(tk.key_id('victim readonly'), '1 hour') LIKE 'hlk_live_%',
	'15: KA can rotate a contacts.readonly key at A (it holds every scope of it)');
ROLLBACK;
RESET ROLE;
SELECT is((SELECT count(*) FROM hlauth.api_keys WHERE principal = tk.id('V')), 3::bigint,
	'15: V still has its three keys, and no successor was minted');
SELECT ok((SELECT revoked_at IS NULL AND rotated_to IS NULL FROM hlauth.api_keys WHERE key_id = tk.key_id('victim')),
	'15: V''s contacts.write key is neither revoked nor rotated');
SET ROLE tk_app;
SELECT lives_ok($$SELECT hlauth.authenticate((SELECT k FROM tk.keys WHERE name = 'victim'))$$,
	'15: V''s key still authenticates');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 3. Expiry is judged when authenticate runs, not when its transaction began
-- ---------------------------------------------------------------------------
CREATE TABLE tk.expiry (at timestamptz NOT NULL);
GRANT SELECT ON tk.expiry TO PUBLIC;
INSERT INTO tk.expiry VALUES (clock_timestamp() + interval '2 seconds');
INSERT INTO tk.keys VALUES
	('short', hlauth.issue_api_key(tk.id('V'), tk.id('A'), 'contacts.readonly', (SELECT at FROM tk.expiry)));
SET ROLE tk_app;
BEGIN;
SELECT lives_ok($$SELECT hlauth.authenticate((SELECT k FROM tk.keys WHERE name = 'short'))$$,
	'13: a key before its expiry authenticates');
SELECT pg_sleep(2.5);
SELECT ok(now() < (SELECT at FROM tk.expiry) AND clock_timestamp() > (SELECT at FROM tk.expiry),
	'13: this transaction began before the key expired, and the key has expired since');
SELECT throws_ok($$SELECT hlauth.authenticate((SELECT k FROM tk.keys WHERE name = 'short'))$$, '28000',
	'authentication failed', '13: past its expiry it is refused, in a transaction that began before');
ROLLBACK;
SELECT throws_ok($$SELECT hlauth.authenticate((SELECT k FROM tk.keys WHERE name = 'short'))$$, '28000',
	'authentication failed', '13: and in a new transaction');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 4. A key issued for another principal never outlives its issuer's demotion
-- ---------------------------------------------------------------------------
-- KA (hlauth/keys.write and contacts.readonly at A) issues a contacts.readonly key for V,
-- who holds contacts.write there. Found by a red-team pass: once KA was demoted, that key
-- kept working with everything KA had put in it, so KA kept its power through it.
SET ROLE tk_app;
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM tk.keys WHERE name = 'kay account'));
CREATE TEMP TABLE delegated AS
	SELECT hlauth.issue_api_key(tk.id('V'), tk.id('A'), 'contacts.readonly') AS k;
COMMIT;
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM delegated));
SELECT is(hlauth.scopes()::text, 'contacts.readonly', '15: the key KA issued for V carries contacts.readonly');
COMMIT;
RESET ROLE;
SELECT hlauth.revoke_grant(g.id) FROM hlauth.grants g WHERE g.principal = tk.id('KA');
SET ROLE tk_app;
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM delegated));
SELECT is(hlauth.scopes()::text, '', '15: after KA''s demotion the key KA issued for V carries nothing');
SELECT ok(NOT hlauth.has_scope('contacts.readonly'), '15: ... not even contacts.readonly, which V still holds');
COMMIT;
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM tk.keys WHERE name = 'victim readonly'));
SELECT is(hlauth.scopes()::text, 'contacts.readonly', '15: V''s key issued by an admin still carries contacts.readonly');
COMMIT;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 5. ... nor through keys re-minted with a key it issued
-- ---------------------------------------------------------------------------
-- M (hlauth/keys.write, contacts.write at A) issues X a key with hlauth/keys.write; X, in
-- the context of that key, issues itself another and rotates the first. Found by the third
-- red-team pass: those keys named X as their issuer, so M's demotion did not reach them.
-- Now every key minted in a context carries the bound of the key that context came from.
DO $$
BEGIN
	INSERT INTO tk.names VALUES ('7c000000-0000-4000-8000-0000000000d1', 'M'), ('7c000000-0000-4000-8000-0000000000d2', 'X');
	PERFORM hlauth.grant_role(tk.id('M'), hlauth.create_role('tk key writer', 'hlauth/keys.write contacts.write'), tk.id('A'));
	PERFORM hlauth.grant_role(tk.id('X'), (SELECT r.id FROM hlauth.roles r WHERE r.name = 'tk key writer'), tk.id('A'));
END
$$;
INSERT INTO tk.keys VALUES ('m', hlauth.issue_api_key(tk.id('M'), tk.id('A'), 'hlauth/keys.write contacts.write'));
SET ROLE tk_app;
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM tk.keys WHERE name = 'm'));
CREATE TEMP TABLE chain (name text PRIMARY KEY, k text NOT NULL);
INSERT INTO chain VALUES ('x by m', hlauth.issue_api_key(tk.id('X'), tk.id('A'), 'hlauth/keys.write contacts.write'));
COMMIT;
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM chain WHERE name = 'x by m'));
INSERT INTO chain VALUES ('x by x', hlauth.issue_api_key(tk.id('X'), tk.id('A'), 'contacts.write'));
INSERT INTO chain VALUES ('x rotated by x',
	hlauth.rotate_api_key(hlauth.api_key_id((SELECT k FROM chain WHERE name = 'x by m')::hlauth.apikey), '1 hour'));
COMMIT;
RESET ROLE;
SELECT is((SELECT string_agg(c.name || ': ' || (SELECT x.name FROM tk.names x WHERE x.id = ANY (a.bounded_by)), ', ' ORDER BY c.name)
			 FROM chain c JOIN hlauth.api_keys a ON a.key_id = hlauth.api_key_id(c.k::hlauth.apikey)),
	'x by m: M, x by x: M, x rotated by x: M', '15: every key minted through M''s key is bounded by M');
SELECT hlauth.revoke_grant(g.id) FROM hlauth.grants g WHERE g.principal = tk.id('M');
SET ROLE tk_app;
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM chain WHERE name = 'x by x'));
SELECT is(hlauth.scopes()::text, '', '15: after M''s demotion the key X issued itself with M''s key carries nothing');
COMMIT;
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM chain WHERE name = 'x rotated by x'));
SELECT is(hlauth.scopes()::text, '', '15: ... nor the successor X rotated it into');
SELECT throws_ok($$SELECT hlauth.issue_api_key(tk.id('X'), tk.id('A'), 'contacts.readonly')$$, '42501', NULL,
	'15: ... and with it X cannot mint another key');
COMMIT;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 6. A key that was rolled back is gone; a principal cannot set a key's attributes
-- ---------------------------------------------------------------------------
-- Found by the fourth red-team pass: a key issued and then rolled back (with a savepoint,
-- or with its transaction) stayed in the backend's key cache and still authenticated, and
-- keys issued in its context lost the bound of the key they came through. And any
-- principal with hlauth/keys.write could give a key attributes, which hlauth.attribute()
-- prefers to the principal's own (set by admins only).
DO $$
BEGIN
	INSERT INTO tk.names VALUES ('7c000000-0000-4000-8000-0000000000e1', 'N'), ('7c000000-0000-4000-8000-0000000000e2', 'Y');
	PERFORM hlauth.grant_role(tk.id('N'), (SELECT r.id FROM hlauth.roles r WHERE r.name = 'tk key writer'), tk.id('A'));
	PERFORM hlauth.grant_role(tk.id('Y'), (SELECT r.id FROM hlauth.roles r WHERE r.name = 'tk key writer'), tk.id('A'));
END
$$;
INSERT INTO tk.keys VALUES ('n', hlauth.issue_api_key(tk.id('N'), tk.id('A'), 'hlauth/keys.write contacts.write'));
-- As N: issue Y a key in a block that rolls back, then present it again.
CREATE FUNCTION tk.rolled_back_key() RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	k text;
	r text;
BEGIN
	PERFORM hlauth.authenticate((SELECT x.k FROM tk.keys x WHERE x.name = 'n'));
	BEGIN
		k := hlauth.issue_api_key(tk.id('Y'), tk.id('A'), 'hlauth/keys.write contacts.write');
		PERFORM hlauth.authenticate(k);
		r := 'inside: ' || (SELECT x.name FROM tk.names x WHERE x.id = hlauth.principal());
		RAISE EXCEPTION 'roll the block back';
	EXCEPTION WHEN raise_exception THEN
		NULL;
	END;
	BEGIN
		PERFORM hlauth.authenticate(k);
		r := r || ', after: accepted as ' || (SELECT x.name FROM tk.names x WHERE x.id = hlauth.principal());
	EXCEPTION WHEN invalid_authorization_specification THEN
		r := r || ', after: ' || SQLSTATE;
	END;
	RETURN r;
END
$$;
GRANT EXECUTE ON FUNCTION tk.rolled_back_key() TO tk_app;
SET ROLE tk_app;
BEGIN;
SELECT is(tk.rolled_back_key(), 'inside: Y, after: 28000',
	'15: a key issued in a block that rolled back authenticated inside it, and is refused after');
COMMIT;
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM tk.keys WHERE name = 'n'));
SELECT hlauth.issue_api_key(tk.id('Y'), tk.id('A'), 'contacts.write') AS rolled_back \gset
SELECT hlauth.authenticate(:'rolled_back');	-- now in this backend's key cache
ROLLBACK;
SELECT throws_ok(format('SELECT hlauth.authenticate(%L)', :'rolled_back'), '28000', 'authentication failed',
	'15: a key whose issuing transaction rolled back is refused in the next one');
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM tk.keys WHERE name = 'n'));
SELECT throws_ok($$SELECT hlauth.issue_api_key(tk.id('N'), tk.id('A'), 'contacts.write', attributes => '{"region": "amer"}')$$,
	'42501', 'permission denied: only hlauth_admin may set a key''s attributes',
	'3: a principal cannot give a key attributes (they would override its own, set by admins)');
SELECT lives_ok($$SELECT hlauth.issue_api_key(tk.id('N'), tk.id('A'), 'contacts.write', attributes => '{}')$$,
	'3: ... and issues keys without them');
COMMIT;
RESET ROLE;
-- ... nor take over an admin's key attributes by rotating the key (a fifth pass).
INSERT INTO tk.keys VALUES ('y gold', hlauth.issue_api_key(tk.id('Y'), tk.id('A'), 'contacts.write', attributes => '{"tier": "gold"}'));
SET ROLE tk_app;
BEGIN;
SELECT hlauth.authenticate((SELECT k FROM tk.keys WHERE name = 'n'));
SELECT throws_ok($$SELECT hlauth.rotate_api_key(tk.key_id('y gold'), '0')$$, '42501',
	'permission denied: only hlauth_admin may rotate a key that has attributes',
	'3: a principal cannot rotate a key with attributes (the successor would hand them over)');
COMMIT;
RESET ROLE;
SELECT ok(hlauth.rotate_api_key(tk.key_id('y gold'), '0') LIKE 'hlk_live_%', '3: ... an admin can');

SELECT * FROM finish();
