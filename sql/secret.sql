-- secret: the server secret (hlauth.secret_file), hlauth.secret_status() and the purpose
-- keys derived from it, seen through hlauth_internal.secret_fingerprint().
-- The cluster of `make test` reads a secret file with versions 1 and 2 of random keys
-- (set in postgresql.conf by test/run-suites.sh), which also writes the fixture files this
-- test points the setting at, in the folder $HL_SECRET_FIXTURES. No path and no byte of a
-- key appears in this output: paths travel in psql variables and are never echoed.
\set VERBOSITY terse
\set SHOW_CONTEXT never
\getenv fixtures HL_SECRET_FIXTURES
-- Roles are cluster-wide: start clean even after an interrupted run.
SET client_min_messages = warning;
DROP TABLE IF EXISTS regress_secret_fp;
DROP FUNCTION IF EXISTS regress_secret_try(text);
DROP ROLE IF EXISTS regress_secret_nobody;
DROP ROLE IF EXISTS regress_secret_admin;
RESET client_min_messages;
CREATE ROLE regress_secret_nobody;
CREATE ROLE regress_secret_admin IN ROLE hlauth_admin;

-- Points the setting at a file for the rest of the current transaction only, then reports
-- what secret_status() and a derivation say, or the error: SQLSTATE, message, detail, hint.
-- It also checks that the error shows neither the path nor 8 hex digits in a row (a key).
CREATE FUNCTION regress_secret_try(path text,
	OUT state text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	PERFORM pg_catalog.set_config('hlauth.secret_file', path, true);
	SELECT * INTO r FROM hlauth.secret_status();
	PERFORM hlauth_internal.secret_fingerprint('apikey-pepper', 0);
	state := '00000';
	message := format('ok: configured %s, current version %s, versions %s',
					  r.configured, r.current_version, r.versions);
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
		detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	IF concat(message, detail, hint) ~ '[0-9A-Fa-f]{8}'
		OR (path <> '' AND strpos(concat(message, detail, hint), path) > 0) THEN
		message := 'LEAK: the error shows a key or the path';
		detail := NULL;
		hint := NULL;
	END IF;
END
$$;

-- 1. The cluster's secret: configured in postgresql.conf, versions 1 and 2.
SELECT * FROM hlauth.secret_status();

-- 2. Derived keys, through their fingerprints (4 bytes of SHA-256 of the key, in hex).
CREATE TABLE regress_secret_fp AS
	SELECT p AS purpose, v AS version, hlauth_internal.secret_fingerprint(p, v) AS fp
	FROM unnest(ARRAY['apikey-pepper', 'audit-seal', 'signing-key-encryption']) p,
		 generate_series(1, 2) v;
SELECT count(*) AS derived, count(*) FILTER (WHERE fp ~ '^[0-9a-f]{8}$') AS hex8,
	   count(DISTINCT fp) AS distinct_fps
FROM regress_secret_fp;
-- stable across calls
SELECT count(*) FILTER (WHERE hlauth_internal.secret_fingerprint(purpose, version) = fp) AS same_again
FROM regress_secret_fp;
-- versions differ, purposes differ
SELECT a.fp <> b.fp AS versions_differ
FROM regress_secret_fp a JOIN regress_secret_fp b USING (purpose)
WHERE a.version = 1 AND b.version = 2 AND purpose = 'apikey-pepper';
SELECT a.fp <> b.fp AS purposes_differ
FROM regress_secret_fp a JOIN regress_secret_fp b USING (version)
WHERE a.purpose = 'apikey-pepper' AND b.purpose = 'audit-seal' AND version = 1;
-- version 0 is the newest
SELECT hlauth_internal.secret_fingerprint('apikey-pepper', 0) = fp AS zero_is_newest
FROM regress_secret_fp WHERE purpose = 'apikey-pepper' AND version = 2;
-- a version that is not in the file: NULL
SELECT hlauth_internal.secret_fingerprint('apikey-pepper', 3) IS NULL AS v3_null,
	   hlauth_internal.secret_fingerprint('apikey-pepper', -1) IS NULL AS minus1_null,
	   hlauth_internal.secret_fingerprint('apikey-pepper', 65536) IS NULL AS v65536_null;
-- purposes are short lower-case names
SELECT hlauth_internal.secret_fingerprint('', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT hlauth_internal.secret_fingerprint('Apikey Pepper', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT hlauth_internal.secret_fingerprint(repeat('a', 65), 1);
\echo :LAST_ERROR_SQLSTATE
-- a new session derives the same keys
\c -
SELECT count(*) FILTER (WHERE hlauth_internal.secret_fingerprint(purpose, version) = fp) AS same_in_new_session
FROM regress_secret_fp;

-- 3. The derivation itself, against a known key (000102...1f, version 1). The expected
-- fingerprints were computed outside hlauth with the OpenSSL command line:
--   openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:0001...1f \
--     -kdfopt salt:hlauth-v1 -kdfopt info:hlauth/<purpose> -binary HKDF | sha256sum
BEGIN;
SELECT pg_catalog.set_config('hlauth.secret_file', :'fixtures' || '/known', true) IS NOT NULL AS set;
SELECT hlauth_internal.secret_fingerprint('apikey-pepper', 1) AS apikey_pepper,
	   hlauth_internal.secret_fingerprint('audit-seal', 1) AS audit_seal,
	   hlauth_internal.secret_fingerprint('signing-key-encryption', 0) AS signing_key_encryption;
COMMIT;
-- the setting is back to the cluster's file
SELECT count(*) FILTER (WHERE hlauth_internal.secret_fingerprint(purpose, version) = fp) AS same_after_commit
FROM regress_secret_fp;

-- 4. Who may see what.
-- An hlauth_admin reads the status, but no fingerprint (superuser only).
SET ROLE regress_secret_admin;
SELECT * FROM hlauth.secret_status();
SELECT hlauth_internal.secret_fingerprint('apikey-pepper', 1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- Any other role: no status, and the setting can be neither changed nor read.
SET ROLE regress_secret_nobody;
SELECT * FROM hlauth.secret_status();
\echo :LAST_ERROR_SQLSTATE
SET hlauth.secret_file = '/tmp/my-own-keys';
\echo :LAST_ERROR_SQLSTATE
SELECT pg_catalog.set_config('hlauth.secret_file', '', false);
\echo :LAST_ERROR_SQLSTATE
SHOW hlauth.secret_file;
\echo :LAST_ERROR_SQLSTATE
SELECT pg_catalog.current_setting('hlauth.secret_file');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS visible_in_pg_settings FROM pg_catalog.pg_settings WHERE name = 'hlauth.secret_file';
RESET ROLE;
-- The C functions check for themselves, should EXECUTE be granted by mistake.
GRANT EXECUTE ON FUNCTION hlauth.secret_status() TO regress_secret_nobody;
GRANT EXECUTE ON FUNCTION hlauth_internal.secret_fingerprint(text, int) TO regress_secret_admin;
SET ROLE regress_secret_nobody;
SELECT * FROM hlauth.secret_status();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_secret_admin;
SELECT hlauth_internal.secret_fingerprint('apikey-pepper', 1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE EXECUTE ON FUNCTION hlauth.secret_status() FROM regress_secret_nobody;
REVOKE EXECUTE ON FUNCTION hlauth_internal.secret_fingerprint(text, int) FROM regress_secret_admin;

-- 5. A superuser points the setting (session-level SET) at another file: the keys follow.
\set secret_path :fixtures '/other'
SET hlauth.secret_file = :'secret_path';
SELECT * FROM hlauth.secret_status();
SELECT hlauth_internal.secret_fingerprint('apikey-pepper', 7) ~ '^[0-9a-f]{8}$' AS v7,
	   hlauth_internal.secret_fingerprint('apikey-pepper', 1) IS NULL AS v1_null;
RESET hlauth.secret_file;
SELECT * FROM hlauth.secret_status();
SELECT count(*) FILTER (WHERE hlauth_internal.secret_fingerprint(purpose, version) = fp) AS same_after_reset
FROM regress_secret_fp;
-- Lenient about layout: a byte order mark, CRLF line ends, tabs, upper-case hex.
\x on
SELECT * FROM regress_secret_try(:'fixtures' || '/lenient');
\x off

-- 6. Rotation: a version added to the file is picked up without a new session or a SET.
\set secret_path :fixtures '/rotating'
SET hlauth.secret_file = :'secret_path';
SELECT current_version, versions FROM hlauth.secret_status();
SELECT hlauth_internal.secret_fingerprint('apikey-pepper', 2) IS NULL AS v2_null_before;
CREATE TEMP TABLE rotating_v1 AS SELECT hlauth_internal.secret_fingerprint('apikey-pepper', 1) AS fp;
-- the operator appends version 2 (COPY writes with the server's umask: mode 600)
DO $$
BEGIN
	EXECUTE format('COPY (VALUES (%L), (%L)) TO %L',
				   '1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
				   '2 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
				   pg_catalog.current_setting('hlauth.secret_file'));
END
$$;
SELECT hlauth_internal.secret_fingerprint('apikey-pepper', 2) ~ '^[0-9a-f]{8}$' AS v2_found,
	   hlauth_internal.secret_fingerprint('apikey-pepper', 1) = (SELECT fp FROM rotating_v1) AS v1_unchanged;
SELECT current_version, versions FROM hlauth.secret_status();
RESET hlauth.secret_file;

-- 7. Files hlauth refuses, whole: each raises 55000, naming hlauth.secret_file in the hint.
\set secret_path :fixtures '/bad-mode'
SET hlauth.secret_file = :'secret_path';
SELECT * FROM hlauth.secret_status();
\echo :LAST_ERROR_SQLSTATE
SELECT hlauth_internal.secret_fingerprint('apikey-pepper', 1);
\echo :LAST_ERROR_SQLSTATE
-- Nothing configured: the status says so; deriving a key is refused.
SET hlauth.secret_file = '';
SELECT * FROM hlauth.secret_status();
SELECT hlauth_internal.secret_fingerprint('apikey-pepper', 1);
\echo :LAST_ERROR_SQLSTATE
RESET hlauth.secret_file;
\x on
SELECT * FROM regress_secret_try('');
SELECT * FROM regress_secret_try('master.key');
SELECT * FROM regress_secret_try('keys/secret');
SELECT * FROM regress_secret_try(:'fixtures' || '/missing');
SELECT * FROM regress_secret_try(:'fixtures' || '/unreadable');
SELECT * FROM regress_secret_try(:'fixtures' || '/directory');
SELECT * FROM regress_secret_try(:'fixtures' || '/bad-mode');
SELECT * FROM regress_secret_try(:'fixtures' || '/too-large');
SELECT * FROM regress_secret_try(:'fixtures' || '/empty');
SELECT * FROM regress_secret_try(:'fixtures' || '/comments-only');
SELECT * FROM regress_secret_try(:'fixtures' || '/malformed');
SELECT * FROM regress_secret_try(:'fixtures' || '/duplicate');
SELECT * FROM regress_secret_try(:'fixtures' || '/short-key');
SELECT * FROM regress_secret_try(:'fixtures' || '/long-key');
SELECT * FROM regress_secret_try(:'fixtures' || '/odd-hex');
SELECT * FROM regress_secret_try(:'fixtures' || '/bad-version');
SELECT * FROM regress_secret_try(:'fixtures' || '/leading-zero');
SELECT * FROM regress_secret_try(:'fixtures' || '/extra-field');
SELECT * FROM regress_secret_try(:'fixtures' || '/no-key');
-- Inside the data directory: directly, through "..", and through a symbolic link outside it.
DO $$
BEGIN
	EXECUTE format('COPY (VALUES (%L)) TO %L',
				   '1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
				   pg_catalog.current_setting('data_directory') || '/hlauth_secret_regress');
END
$$;
SELECT * FROM regress_secret_try(current_setting('data_directory') || '/hlauth_secret_regress');
SELECT * FROM regress_secret_try(current_setting('data_directory') || '/base/../hlauth_secret_regress');
SELECT * FROM regress_secret_try(:'fixtures' || '/link-into-data');
\x off

-- 8. After all that, the cluster's secret works as before.
SELECT * FROM hlauth.secret_status();
SELECT count(*) FILTER (WHERE hlauth_internal.secret_fingerprint(purpose, version) = fp) AS same_at_the_end
FROM regress_secret_fp;

DROP TABLE regress_secret_fp;
DROP FUNCTION regress_secret_try(text);
DROP ROLE regress_secret_nobody;
DROP ROLE regress_secret_admin;
