-- apikey: the hlauth.apikey type, issue/rotate/revoke, and hlauth.authenticate(key).
-- The cluster has a server secret (hlauth.secret_file, versions 1 and 2).
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_key_app;
DROP ROLE IF EXISTS regress_key_bypass;
RESET client_min_messages;
CREATE ROLE regress_key_app;
CREATE ROLE regress_key_bypass BYPASSRLS;

-- Tenants: agency ka0 with accounts ka1, ka2; agency kb0 with account kb1.
SELECT hlauth.create_tenant('agency', NULL, 'KA', 'ba000000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('account', 'ba000000-0000-0000-0000-000000000000', 'KA1', 'ba100000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('account', 'ba000000-0000-0000-0000-000000000000', 'KA2', 'ba200000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('agency', NULL, 'KB', 'bb000000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('account', 'bb000000-0000-0000-0000-000000000000', 'KB1', 'bb100000-0000-0000-0000-000000000000');

-- Permissions, a role, and grants. Principal p1 edits contacts at KA1; p2 at KA2.
SELECT hlauth.register_permission('notes.readonly', 'read notes');
SELECT hlauth.register_permission('notes.write', 'write notes', ARRAY['notes.readonly']);
SELECT hlauth.register_permission('deals.readonly', 'read deals');
SELECT hlauth.create_role('regress notes editor', 'notes.write') AS editor \gset
SELECT hlauth.grant_role('abcd0000-0000-0000-0000-0000000000a1', :'editor', 'ba100000-0000-0000-0000-000000000000') AS p1_grant \gset
SELECT hlauth.grant_role('abcd0000-0000-0000-0000-0000000000a2', :'editor', 'ba200000-0000-0000-0000-000000000000') IS NOT NULL AS p2_granted;

-- A protected table to read through keys.
CREATE TABLE key_notes (account_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (account_id, id));
INSERT INTO key_notes VALUES
	('ba100000-0000-0000-0000-000000000000', 1, 'ka1 note'),
	('ba200000-0000-0000-0000-000000000000', 1, 'ka2 note'),
	('bb100000-0000-0000-0000-000000000000', 1, 'kb1 note');
SELECT hlauth.protect('key_notes', 'account_id', 'notes.readonly', 'notes.write');
GRANT SELECT ON key_notes TO regress_key_app;

-- ---------------------------------------------------------------------------
-- The type
-- ---------------------------------------------------------------------------
SELECT hlauth_internal.compose_api_key('hlk_live', 'AAAAAAAAAAAA', 'BBBBBBBBBBBBBBBBBBBBBB') AS fixed_key \gset
SELECT :'fixed_key' ~ '^hlk_live_AAAAAAAAAAAABBBBBBBBBBBBBBBBBBBBBB[0-9A-Za-z]{6}$' AS fixed_key_shape;
-- A plaintext key is hashed on input with the newest pepper (version 2); only the id shows.
SELECT :'fixed_key'::hlauth.apikey AS stored \gset
SELECT :'stored' ~ '^hlk_live_AAAAAAAAAAAA:v2:[0-9a-f]{64}$' AS stored_shape,
       position('BBBBBBBBBBBBBBBBBBBBBB' IN :'stored') = 0 AS secret_absent,
       hlauth.api_key_id(:'stored') AS id, hlauth.api_key_version(:'stored') AS version;
-- The stored form round-trips; hashing is deterministic.
SELECT (:'stored'::hlauth.apikey)::text = :'stored' AS round_trip,
       (:'fixed_key'::hlauth.apikey)::text = :'stored' AS same_hash_again;
SELECT hlauth.api_key_matches(:'stored', :'fixed_key') AS matches,
       hlauth.api_key_matches(:'stored', hlauth_internal.compose_api_key('hlk_live', 'AAAAAAAAAAAA', 'BBBBBBBBBBBBBBBBBBBBBC')) AS other_secret,
       hlauth.api_key_matches(:'stored', hlauth_internal.compose_api_key('hlk_test', 'AAAAAAAAAAAA', 'BBBBBBBBBBBBBBBBBBBBBB')) AS other_prefix,
       hlauth.api_key_matches(:'stored', 'garbage') AS garbage;
-- Bad input: 22P02, and the input is never quoted back.
SELECT 'hlk_live_AAAAAAAAAAAABBBBBBBBBBBBBBBBBBBBBBxxxxxx'::hlauth.apikey;
SELECT 'hlk_live_short'::hlauth.apikey;
SELECT 'Hlk_live_AAAAAAAAAAAABBBBBBBBBBBBBBBBBBBBBBxxxxxx'::hlauth.apikey;
SELECT ''::hlauth.apikey;
SELECT 'hlk_live_AAAAAAAAAAAA:v0:00'::hlauth.apikey;
SELECT 'hlk_live_AAAAAAAAAAAA:v2:' || repeat('A', 64) AS upper_hex \gset
SELECT :'upper_hex'::hlauth.apikey;
-- A stored key whose pepper version the secret file does not hold verifies nothing.
SELECT hlauth.api_key_matches(('hlk_live_AAAAAAAAAAAA:v9:' || repeat('0', 64))::hlauth.apikey, :'fixed_key') AS unknown_version;

-- ---------------------------------------------------------------------------
-- Issuing
-- ---------------------------------------------------------------------------
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a1', 'ba100000-0000-0000-0000-000000000000',
                            'notes.readonly', NULL, 'p1 reader') AS key1 \gset
SELECT :'key1' ~ '^hlk_live_[0-9A-Za-z]{40}$' AS key1_shape;
SELECT substr(:'key1', 10, 12) AS key1_id \gset
SELECT name, principal, tenant_id, scopes, created_by, expires_at, revoked_at, rotated_to, last_used_at,
       key::text ~ ('^hlk_live_' || key_id || ':v2:[0-9a-f]{64}$') AS key_is_hash
  FROM hlauth.api_keys WHERE key_id = :'key1_id';
-- The plaintext is nowhere in the table.
SELECT count(*) AS rows_with_plaintext FROM hlauth.api_keys k
 WHERE position(substr(:'key1', 22, 22) IN k::text) > 0;
-- Scopes the principal lacks at that tenant: 42501; unregistered: 22023; empty: 22023.
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a1', 'ba100000-0000-0000-0000-000000000000', 'deals.readonly');
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a1', 'ba200000-0000-0000-0000-000000000000', 'notes.readonly');
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a1', 'ba100000-0000-0000-0000-000000000000', 'notes.delete');
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a1', 'ba100000-0000-0000-0000-000000000000', 'Notes.readonly');
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a1', 'ba100000-0000-0000-0000-000000000000', '');
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a1', 'ba100000-0000-0000-0000-000000000000', 'notes.readonly', now() - interval '1 second');
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a1', 'c0ffee00-0000-0000-0000-000000000000', 'notes.readonly');
-- A wildcard the principal holds entirely (notes.write implies notes.readonly) is allowed.
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a1', 'ba100000-0000-0000-0000-000000000000', 'notes.*', now() + interval '1 day') AS key_wild \gset
-- Not for app roles without a context or the scope hlauth/keys.write.
SET ROLE regress_key_app;
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a1', 'ba100000-0000-0000-0000-000000000000', 'notes.readonly');
SELECT hlauth_internal.generate_api_key();
SELECT key FROM hlauth.api_keys;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Authenticating
-- ---------------------------------------------------------------------------
SET ROLE regress_key_app;
BEGIN;
SELECT hlauth.authenticate(:'key1');
SELECT hlauth.principal(), hlauth.tenant(), hlauth.auth_method(), hlauth.token_id() = :'key1_id' AS token_is_key,
       hlauth.scopes();
SELECT body FROM key_notes ORDER BY body;
SELECT key_id = :'key1_id' AS listed, name FROM hlauth.api_keys ORDER BY name;
COMMIT;
SELECT hlauth.principal() AS after_commit, count(*) AS rows_after_commit FROM key_notes;
-- The wildcard key: scopes are the key's scopes ∩ what p1 holds.
BEGIN;
SELECT hlauth.authenticate(:'key_wild');
SELECT hlauth.scopes();
ROLLBACK;
RESET ROLE;
-- last_used_at was written once.
SELECT last_used_at IS NOT NULL AS used FROM hlauth.api_keys WHERE key_id = :'key1_id';

-- Attributes (ABAC): a key's own attributes come first, then its principal's.
SELECT hlauth.upsert_principal('abcd0000-0000-0000-0000-0000000000a2', '{"region": "us", "tier": "gold"}');
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a2', 'ba200000-0000-0000-0000-000000000000',
                            'notes.readonly', NULL, 'eu integration', '{"region": "eu"}') AS key_attr \gset
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a2', 'ba200000-0000-0000-0000-000000000000',
                            'notes.readonly', NULL, NULL, '["not", "an", "object"]');
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a2', 'ba200000-0000-0000-0000-000000000000',
                            'notes.readonly', NULL, NULL, NULL);
SET ROLE regress_key_app;
BEGIN;
SELECT hlauth.authenticate(:'key_attr');
SELECT hlauth.attribute('region') AS key_region, hlauth.attribute('tier') AS principal_tier,
       hlauth.attribute('missing') AS missing;
SELECT attributes FROM hlauth.api_keys WHERE name = 'eu integration';
COMMIT;
SELECT hlauth.attribute('region') AS no_context;
RESET ROLE;

-- Every failure is the same 28000 error, with nothing about which check failed.
CREATE FUNCTION pg_temp.try_key(k text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM hlauth.authenticate(k);
	RETURN 'accepted: ' || hlauth.principal();
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ' ' || SQLERRM;
END
$$;
SET ROLE regress_key_app;
SELECT pg_temp.try_key(:'key1') AS good;
SELECT pg_temp.try_key(NULL) AS null_key;
SELECT pg_temp.try_key('') AS empty;
SELECT pg_temp.try_key('garbage') AS garbage;
SELECT pg_temp.try_key(left(:'key1', -1)) AS truncated;
SELECT pg_temp.try_key(left(:'key1', -1) || CASE WHEN right(:'key1', 1) = 'a' THEN 'b' ELSE 'a' END) AS bad_checksum;
SELECT pg_temp.try_key(:'key1' || 'x') AS too_long;
SELECT pg_temp.try_key(repeat('k', 1024 * 1024)) AS one_megabyte;
SELECT pg_temp.try_key(replace(:'key1', 'hlk_live_', 'hlk_livé_')) AS non_ascii;
SELECT pg_temp.try_key(upper(:'key1')) AS upper_case;
SELECT pg_temp.try_key(' ' || :'key1') AS leading_space;
RESET ROLE;
-- Well-formed keys with a valid checksum: unknown id, wrong secret, other environment.
SELECT hlauth_internal.compose_api_key('hlk_live', 'ZZZZZZZZZZZZ', 'BBBBBBBBBBBBBBBBBBBBBB') AS unknown_id,
       hlauth_internal.compose_api_key('hlk_live', :'key1_id', 'BBBBBBBBBBBBBBBBBBBBBB') AS wrong_secret,
       hlauth_internal.compose_api_key('hlk_test', :'key1_id', substr(:'key1', 22, 22)) AS test_env \gset
SET ROLE regress_key_app;
SELECT pg_temp.try_key(:'unknown_id') AS unknown_id;
SELECT pg_temp.try_key(:'unknown_id') AS unknown_id_again;
SELECT pg_temp.try_key(:'wrong_secret') AS wrong_secret;
SELECT pg_temp.try_key(:'test_env') AS other_environment;
SELECT pg_temp.try_key(:'key1') AS still_good;
RESET ROLE;
-- A role that bypasses row-level security may not authenticate at all.
SET ROLE regress_key_bypass;
SELECT hlauth.authenticate(:'key1');
RESET ROLE;

-- Expiry, revocation, rotation, suspension.
SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a1', 'ba100000-0000-0000-0000-000000000000', 'notes.readonly') AS key_exp \gset
UPDATE hlauth.api_keys SET expires_at = now() - interval '1 second' WHERE key_id = substr(:'key_exp', 10, 12);
SET ROLE regress_key_app;
SELECT pg_temp.try_key(:'key_exp') AS expired;
RESET ROLE;

SELECT hlauth.issue_api_key('abcd0000-0000-0000-0000-0000000000a1', 'ba100000-0000-0000-0000-000000000000', 'notes.readonly') AS key_rev \gset
SET ROLE regress_key_app;
SELECT pg_temp.try_key(:'key_rev') AS before_revoke;
RESET ROLE;
SELECT hlauth.revoke_api_key(substr(:'key_rev', 10, 12), 'leaked in a ticket');
SELECT revoked_at IS NOT NULL AS revoked, revoked_reason FROM hlauth.api_keys WHERE key_id = substr(:'key_rev', 10, 12);
SET ROLE regress_key_app;
SELECT pg_temp.try_key(:'key_rev') AS after_revoke;
RESET ROLE;

-- Rotation with an overlap: both work until it ends; the successor keeps scopes and expiry.
SELECT hlauth.rotate_api_key(:'key1_id', interval '1 hour') AS key1b \gset
SELECT substr(:'key1b', 10, 12) AS key1b_id \gset
SELECT k.rotated_to = :'key1b_id' AS linked, k.retire_at > now() AS overlapping,
       n.scopes::text = k.scopes::text AS same_scopes, n.name = k.name AS same_name, n.expires_at IS NOT DISTINCT FROM k.expires_at AS same_expiry
  FROM hlauth.api_keys k JOIN hlauth.api_keys n ON n.key_id = k.rotated_to WHERE k.key_id = :'key1_id';
SET ROLE regress_key_app;
SELECT pg_temp.try_key(:'key1') AS old_in_overlap, pg_temp.try_key(:'key1b') AS new_key;
RESET ROLE;
-- (The key ids in these errors are random: show only the SQLSTATE.)
\set VERBOSITY sqlstate
SELECT hlauth.rotate_api_key(:'key1_id');
\set VERBOSITY terse
-- The overlap ends: the old key stops working, the new one goes on.
UPDATE hlauth.api_keys SET retire_at = now() - interval '1 second' WHERE key_id = :'key1_id';
SET ROLE regress_key_app;
SELECT pg_temp.try_key(:'key1') AS old_after_overlap, pg_temp.try_key(:'key1b') AS new_after_overlap;
RESET ROLE;
\set VERBOSITY sqlstate
SELECT hlauth.rotate_api_key(substr(:'key_rev', 10, 12));
\set VERBOSITY terse
SELECT hlauth.rotate_api_key('nosuchkey000');

-- Suspending the tenant (or the agency above it), or the principal, stops the key.
SELECT hlauth.suspend_tenant('ba000000-0000-0000-0000-000000000000');
SET ROLE regress_key_app;
SELECT pg_temp.try_key(:'key1b') AS agency_suspended;
RESET ROLE;
SELECT hlauth.reactivate_tenant('ba000000-0000-0000-0000-000000000000');
SELECT hlauth.suspend_principal('abcd0000-0000-0000-0000-0000000000a1');
SET ROLE regress_key_app;
SELECT pg_temp.try_key(:'key1b') AS principal_suspended;
RESET ROLE;
SELECT hlauth.reactivate_principal('abcd0000-0000-0000-0000-0000000000a1');
SET ROLE regress_key_app;
SELECT pg_temp.try_key(:'key1b') AS reactivated;
RESET ROLE;

-- A demoted principal's key shrinks at once: authentication works, scopes are empty.
SELECT hlauth.revoke_grant(:'p1_grant');
SET ROLE regress_key_app;
BEGIN;
SELECT hlauth.authenticate(:'key1b');
SELECT hlauth.scopes() AS scopes_after_demotion, count(*) AS rows_after_demotion FROM key_notes;
COMMIT;
RESET ROLE;

-- The prefix names the environment; only superusers set it, and only to a valid prefix.
SET hlauth.api_key_prefix = 'hlk_test';
SET hlauth.api_key_prefix = 'HLK';
RESET hlauth.api_key_prefix;
SET ROLE regress_key_app;
SET hlauth.api_key_prefix = 'hlk_test';
RESET ROLE;

DROP TABLE key_notes;
DROP ROLE regress_key_app;
DROP ROLE regress_key_bypass;
