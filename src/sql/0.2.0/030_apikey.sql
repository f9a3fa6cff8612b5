-- ---------------------------------------------------------------------------
-- API keys: the hlauth.apikey type, the key table, issuing, rotating, revoking,
-- and hlauth.authenticate(key). See src/apikey.c and docs/reference.md#api-keys.
-- ---------------------------------------------------------------------------

-- The key or token id of the context (NULL for set_principal).
CREATE FUNCTION hlauth.token_id() RETURNS text
	AS 'MODULE_PATHNAME', 'hlauth_token_id' LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION hlauth.token_id() IS 'The id of the API key (or token) that established the context; NULL without one';

CREATE OR REPLACE FUNCTION hlauth.current_context() RETURNS jsonb
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE WHEN hlauth.principal() IS NULL THEN NULL ELSE pg_catalog.jsonb_build_object(
		'principal', hlauth.principal(), 'tenant', hlauth.tenant(), 'kind', hlauth.tenant_kind(),
		'agency', hlauth.agency(), 'account', hlauth.account(), 'app', hlauth.app(),
		'method', hlauth.auth_method(), 'token', hlauth.token_id(),
		'scopes', hlauth.scopes_to_array(hlauth.scopes())) END
$$;

-- The type: key id, pepper version and HMAC; never the secret.
CREATE TYPE hlauth.apikey;
CREATE FUNCTION hlauth.apikey_in(cstring) RETURNS hlauth.apikey
	AS 'MODULE_PATHNAME', 'hlauth_apikey_in' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hlauth.apikey_out(hlauth.apikey) RETURNS cstring
	AS 'MODULE_PATHNAME', 'hlauth_apikey_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hlauth.apikey_recv(internal) RETURNS hlauth.apikey
	AS 'MODULE_PATHNAME', 'hlauth_apikey_recv' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hlauth.apikey_send(hlauth.apikey) RETURNS bytea
	AS 'MODULE_PATHNAME', 'hlauth_apikey_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE hlauth.apikey (
	INPUT = hlauth.apikey_in, OUTPUT = hlauth.apikey_out,
	RECEIVE = hlauth.apikey_recv, SEND = hlauth.apikey_send,
	INTERNALLENGTH = VARIABLE, ALIGNMENT = int4, STORAGE = plain
);
COMMENT ON TYPE hlauth.apikey IS 'An API key as stored: key id, pepper version and HMAC-SHA256, never the secret. Input takes the stored form or a plaintext key (hashed on input)';
COMMENT ON FUNCTION hlauth.apikey_in(cstring) IS 'Input of hlauth.apikey: the stored form, or a plaintext key hashed with the newest pepper';
COMMENT ON FUNCTION hlauth.apikey_out(hlauth.apikey) IS 'Output of hlauth.apikey: <prefix>_<key id>:v<version>:<hex HMAC>';
COMMENT ON FUNCTION hlauth.apikey_recv(internal) IS 'Binary input of hlauth.apikey (the text form)';
COMMENT ON FUNCTION hlauth.apikey_send(hlauth.apikey) IS 'Binary output of hlauth.apikey (the text form)';

CREATE FUNCTION hlauth.api_key_id(hlauth.apikey) RETURNS text
	AS 'MODULE_PATHNAME', 'hlauth_apikey_id' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION hlauth.api_key_id(hlauth.apikey) IS 'The public key id of a stored API key';
CREATE FUNCTION hlauth.api_key_version(hlauth.apikey) RETURNS integer
	AS 'MODULE_PATHNAME', 'hlauth_apikey_version' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION hlauth.api_key_version(hlauth.apikey) IS 'The server-secret version whose pepper hashed this API key';
CREATE FUNCTION hlauth.api_key_matches(stored hlauth.apikey, key text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlauth_apikey_matches' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hlauth.api_key_matches(hlauth.apikey, text) IS 'Does the plaintext key match the stored one? Compared in constant time; false for a malformed key';

CREATE FUNCTION hlauth_internal.generate_api_key() RETURNS text
	AS 'MODULE_PATHNAME', 'hlauth_generate_api_key' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION hlauth_internal.generate_api_key() FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.generate_api_key() IS 'A new random plaintext API key with the configured prefix (internal: used by issue and rotate)';

CREATE FUNCTION hlauth_internal.compose_api_key(prefix text, id text, secret text) RETURNS text
	AS 'MODULE_PATHNAME', 'hlauth_compose_api_key' LANGUAGE C IMMUTABLE STRICT;
REVOKE ALL ON FUNCTION hlauth_internal.compose_api_key(text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.compose_api_key(text, text, text) IS 'A key with a correct checksum from chosen parts (tests, and checking a key by hand); superuser only';

-- The keys. App roles read only their accessible tenants' rows, and never the hash.
CREATE TABLE hlauth.api_keys (
	key_id text PRIMARY KEY CHECK (pg_catalog.length(key_id) = 12),
	key hlauth.apikey NOT NULL CHECK (hlauth.api_key_id(key) = key_id),
	principal uuid NOT NULL,
	tenant_id uuid NOT NULL REFERENCES hlauth.tenants (id),
	scopes hlauth.scopes NOT NULL,
	name text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by uuid,
	expires_at timestamptz,
	revoked_at timestamptz,
	revoked_reason text,
	rotated_to text REFERENCES hlauth.api_keys (key_id),
	retire_at timestamptz,
	last_used_at timestamptz,
	attributes jsonb NOT NULL DEFAULT '{}'
		CHECK (pg_catalog.jsonb_typeof(attributes) OPERATOR(pg_catalog.=) 'object'),
	bounded_by uuid[] NOT NULL DEFAULT '{}'
);
CREATE INDEX api_keys_tenant_idx ON hlauth.api_keys (tenant_id);
CREATE INDEX api_keys_principal_idx ON hlauth.api_keys (principal);
COMMENT ON TABLE hlauth.api_keys IS 'API keys: who, where, which scopes, expiry, rotation and revocation; the key itself only as an HMAC';
COMMENT ON COLUMN hlauth.api_keys.key IS 'key id, pepper version and HMAC (hlauth.apikey); never the secret';
COMMENT ON COLUMN hlauth.api_keys.created_by IS 'the principal that issued the key; NULL when an admin or a trusted server did, outside any context';
COMMENT ON COLUMN hlauth.api_keys.bounded_by IS 'the other principals whose current effective scopes bound the key at authentication: whoever issued or rotated it in a context, and everyone who bound the key that context was authenticated with';
COMMENT ON COLUMN hlauth.api_keys.rotated_to IS 'the successor issued by rotate_api_key';
COMMENT ON COLUMN hlauth.api_keys.retire_at IS 'end of the rotation overlap: the key stops working then';
COMMENT ON COLUMN hlauth.api_keys.last_used_at IS 'last successful authentication, written at most once a minute per key';
COMMENT ON COLUMN hlauth.api_keys.attributes IS 'the key''s own attributes (a JSON object): hlauth.attribute(name) prefers them to the principal''s';
SELECT pg_catalog.pg_extension_config_dump('hlauth.api_keys', '');

ALTER TABLE hlauth.api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE hlauth.api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY api_keys_read ON hlauth.api_keys FOR SELECT
	USING (tenant_id OPERATOR(pg_catalog.=) ANY (hlauth.accessible_tenants()));
REVOKE ALL ON hlauth.api_keys FROM PUBLIC;
GRANT SELECT (key_id, principal, tenant_id, scopes, name, created_at, created_by, expires_at,
			  revoked_at, revoked_reason, rotated_to, retire_at, last_used_at, attributes, bounded_by)
	ON hlauth.api_keys TO PUBLIC;

-- Revoking, rotating or changing a key flushes every backend's key cache; issuing does not.
CREATE FUNCTION hlauth_internal.api_keys_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'hlauth_tenants_changed' LANGUAGE C;
COMMENT ON FUNCTION hlauth_internal.api_keys_changed() IS 'Trigger: invalidates every backend''s API key cache';
CREATE TRIGGER api_keys_changed
	AFTER UPDATE OF key_id, key, principal, tenant_id, scopes, expires_at, revoked_at, retire_at,
		attributes
		OR DELETE ON hlauth.api_keys
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.api_keys_changed();
CREATE TRIGGER api_keys_truncated AFTER TRUNCATE ON hlauth.api_keys
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.api_keys_changed();

-- Which registered permissions a scope set covers, refusing what is not registered.
CREATE FUNCTION hlauth_internal.registered_scopes(wanted hlauth.scopes) RETURNS hlauth.scopes
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	covered hlauth.scopes;
BEGIN
	PERFORM hlauth_internal.require_registered(wanted);
	SELECT hlauth.scopes_from_array(coalesce(pg_catalog.array_agg(p.scope), '{}'))
	  INTO covered
	  FROM hlauth.permissions p WHERE wanted OPERATOR(hlauth.@>) p.scope;
	RETURN covered;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.registered_scopes(hlauth.scopes) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.registered_scopes(hlauth.scopes) IS 'The registered permissions a scope set covers; 22023 for a scope that covers none';

-- May the caller manage keys at this tenant? An admin always; otherwise a context holding
-- hlauth/keys.write, at that tenant or above it. Not below: an app's context reaches its
-- parent account's rows, but never the account's keys.
CREATE FUNCTION hlauth_internal.require_key_manager(tenant uuid, admin boolean, key_id text DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF admin THEN
		RETURN;
	END IF;
	IF hlauth.principal() IS NULL THEN
		RAISE EXCEPTION 'permission denied: no principal is authenticated in this transaction'
			USING ERRCODE = '42501',
				  HINT = 'Managing API keys needs hlauth_admin, or a principal with the scope hlauth/keys.write.';
	END IF;
	IF NOT hlauth.has_scope('hlauth/keys.write') THEN
		RAISE EXCEPTION 'permission denied: scope "hlauth/keys.write" is required'
			USING ERRCODE = '42501';
	END IF;
	IF tenant IS NULL OR NOT hlauth.can_access(tenant)
	   OR NOT hlauth_internal.tenant_within(tenant, hlauth.tenant()) THEN
		-- An existing key (key_id) out of reach and a missing one get the same answer: neither
		-- its existence nor its tenant is anyone else's to learn.
		IF key_id IS NOT NULL THEN
			RAISE EXCEPTION 'permission denied: API key % does not exist or is not within reach', key_id
				USING ERRCODE = '42501',
					  HINT = 'Keys are managed from the key''s tenant or a tenant above it.';
		END IF;
		RAISE EXCEPTION 'permission denied: tenant % is not the current tenant or beneath it', tenant
			USING ERRCODE = '42501',
				  HINT = 'Keys are managed from the key''s tenant or a tenant above it.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.require_key_manager(uuid, boolean, text) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.require_key_manager(uuid, boolean, text) IS 'Raises 42501 unless the caller is an admin (as its stamp said) or a principal with hlauth/keys.write whose context tenant is the tenant or above it; for a key (key_id), a missing key and one out of reach get the same error';

-- The bound of the API key the context was authenticated with, as read when authenticate()
-- verified it (C: carried in the context, never re-read).
CREATE FUNCTION hlauth_internal.context_key_bound() RETURNS uuid[]
	AS 'MODULE_PATHNAME', 'hlauth_context_key_bound' LANGUAGE C STABLE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION hlauth_internal.context_key_bound() FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.context_key_bound() IS 'The bounded_by of the API key the current context was authenticated with, as verified (empty for another method; NULL without a context)';

-- Who bounds a key issued or rotated now, besides its own principal: the principal acting
-- in the context (unless an admin acts), and, when that context was authenticated with an
-- API key, everyone who bounds that key; plus what the key had (a rotation). authenticate()
-- intersects the key with each one's current effective scopes, so a demotion reaches every
-- key minted through the demoted principal, however many hands it went through.
CREATE FUNCTION hlauth_internal.key_bound(key_principal uuid, admin boolean, inherited uuid[])
	RETURNS uuid[]
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	b uuid[] := coalesce(inherited, '{}');
	actor uuid := hlauth.principal();
	via uuid[];
BEGIN
	IF actor IS NOT NULL AND NOT admin THEN
		b := b OPERATOR(pg_catalog.||) actor;
		via := hlauth_internal.context_key_bound();
		IF via IS NULL THEN		-- fail closed: never drop a bound for want of it
			RAISE EXCEPTION 'permission denied: the bound of the context''s API key is unknown'
				USING ERRCODE = '42501';
		END IF;
		b := b OPERATOR(pg_catalog.||) via;
	END IF;
	RETURN ARRAY(SELECT DISTINCT u FROM pg_catalog.unnest(b) u
				  WHERE u IS DISTINCT FROM key_principal ORDER BY u);
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.key_bound(uuid, boolean, uuid[]) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.key_bound(uuid, boolean, uuid[]) IS 'The principals (other than the key''s own) whose effective scopes bound a key issued or rotated now: the acting principal, and the bound of the key its context was authenticated with';

CREATE FUNCTION hlauth_internal.issue_api_key(caller bytea, principal uuid, tenant uuid, scopes hlauth.scopes,
									 expires_at timestamptz DEFAULT NULL, name text DEFAULT NULL,
									 attributes jsonb DEFAULT '{}') RETURNS text
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	admin boolean := hlauth_internal.caller_was_admin(caller);	-- first: redeem the stamp
	wanted hlauth.scopes;
	issuer uuid := hlauth.principal();
	plaintext text;
	stored hlauth.apikey;
	st text;
BEGIN
	IF principal IS NULL OR tenant IS NULL OR scopes IS NULL THEN
		RAISE EXCEPTION 'principal, tenant and scopes must not be NULL' USING ERRCODE = '22004';
	END IF;
	PERFORM hlauth_internal.require_key_manager(tenant, admin);
	SELECT t.status INTO st FROM hlauth.tenants t WHERE t.id = tenant;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tenant % does not exist', tenant USING ERRCODE = '42704';
	END IF;
	IF expires_at IS NOT NULL AND expires_at <= pg_catalog.now() THEN
		RAISE EXCEPTION 'expires_at must be in the future' USING ERRCODE = '22023';
	END IF;
	IF attributes IS NULL OR pg_catalog.jsonb_typeof(attributes) <> 'object' THEN
		RAISE EXCEPTION 'attributes must be a JSON object' USING ERRCODE = '22023';
	END IF;
	-- A key's attributes come before its principal's in hlauth.attribute(), and principals'
	-- attributes are set by admins only: so are keys'.
	IF attributes OPERATOR(pg_catalog.<>) '{}' AND NOT admin THEN
		RAISE EXCEPTION 'permission denied: only hlauth_admin may set a key''s attributes'
			USING ERRCODE = '42501',
				  HINT = 'Issue the key without attributes: hlauth.attribute() then answers from the principal''s.';
	END IF;
	IF hlauth.scopes_count(scopes) = 0 THEN
		RAISE EXCEPTION 'an API key needs at least one scope' USING ERRCODE = '22023';
	END IF;
	wanted := hlauth_internal.registered_scopes(scopes);
	-- The key's principal must hold everything the key may grant, at that tenant ...
	IF NOT (hlauth.effective_scopes(principal, tenant) OPERATOR(hlauth.@>) wanted) THEN
		RAISE EXCEPTION 'permission denied: principal % does not hold all of these scopes at tenant %', principal, tenant
			USING ERRCODE = '42501',
				  DETAIL = pg_catalog.format('Not held: %s.', hlauth.scopes_to_array(wanted)::text),
				  HINT = 'A key can never carry more than its principal holds: grant a role first.';
	END IF;
	-- ... and so must the issuer, in its context and by its own grants.
	IF issuer IS NOT NULL AND NOT admin
	   AND NOT (hlauth.scopes() OPERATOR(hlauth.@>) wanted
				AND hlauth.effective_scopes(issuer, tenant) OPERATOR(hlauth.@>) wanted) THEN
		RAISE EXCEPTION 'permission denied: the issuer does not hold all of these scopes'
			USING ERRCODE = '42501',
				  HINT = 'Nobody can mint a key with scopes they do not hold themselves.';
	END IF;
	plaintext := hlauth_internal.generate_api_key();
	stored := plaintext::hlauth.apikey;
	INSERT INTO hlauth.api_keys (key_id, key, principal, tenant_id, scopes, name, created_by, expires_at,
								 attributes, bounded_by)
	VALUES (hlauth.api_key_id(stored), stored, principal, tenant, scopes, name,
			CASE WHEN admin THEN NULL ELSE issuer END, expires_at,
			attributes, hlauth_internal.key_bound(principal, admin, '{}'));
	PERFORM hlauth_internal.emit_event('api_key.issued', tenant, pg_catalog.jsonb_build_object(
		'key_id', hlauth.api_key_id(stored), 'principal', principal, 'name', name,
		'scopes', scopes::text, 'expires_at', expires_at));
	RETURN plaintext;
END
$$;
GRANT EXECUTE ON FUNCTION hlauth_internal.issue_api_key(bytea, uuid, uuid, hlauth.scopes, timestamptz, text, jsonb) TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.issue_api_key(bytea, uuid, uuid, hlauth.scopes, timestamptz, text, jsonb) IS 'The body of hlauth.issue_api_key(), run as the extension owner; its first argument is the caller''s stamp (hlauth_internal.caller_stamp()), which decides whether the caller is an admin';

-- The entry point runs with the caller's rights: it stamps who calls (caller_stamp()) and
-- runs the SECURITY DEFINER body with the stamp.
CREATE FUNCTION hlauth.issue_api_key(principal uuid, tenant uuid, scopes hlauth.scopes,
									 expires_at timestamptz DEFAULT NULL, name text DEFAULT NULL,
									 attributes jsonb DEFAULT '{}') RETURNS text
	LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN hlauth_internal.issue_api_key(hlauth_internal.caller_stamp(), $1, $2, $3, $4, $5, $6);
END
$$;
COMMENT ON FUNCTION hlauth.issue_api_key(uuid, uuid, hlauth.scopes, timestamptz, text, jsonb) IS 'Issues an API key and returns the plaintext, once; the database keeps only its HMAC. hlauth_admin, or a principal with hlauth/keys.write; never more scopes than the principal (and the issuer) hold';

CREATE FUNCTION hlauth_internal.rotate_api_key(caller bytea, key_id text, overlap interval DEFAULT '1 day') RETURNS text
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	admin boolean := hlauth_internal.caller_was_admin(caller);	-- first: redeem the stamp
	old hlauth.api_keys;
	plaintext text;
	stored hlauth.apikey;
	wanted hlauth.scopes;
BEGIN
	IF key_id IS NULL OR overlap IS NULL OR overlap < interval '0' THEN
		RAISE EXCEPTION 'key_id and a non-negative overlap are required' USING ERRCODE = '22023';
	END IF;
	SELECT * INTO old FROM hlauth.api_keys k WHERE k.key_id = rotate_api_key.key_id FOR UPDATE;
	IF NOT FOUND AND admin THEN
		RAISE EXCEPTION 'API key % does not exist', key_id USING ERRCODE = '42704';
	END IF;
	-- for anyone else a missing key is refused like one out of reach (old.tenant_id is NULL)
	PERFORM hlauth_internal.require_key_manager(old.tenant_id, admin, key_id);
	-- A rotation mints a key: the same rule as issue_api_key, the caller must hold all of
	-- the key's scopes, in its context and by its own grants.
	IF hlauth.principal() IS NOT NULL AND NOT admin THEN
		wanted := hlauth_internal.registered_scopes(old.scopes);
		IF NOT (hlauth.scopes() OPERATOR(hlauth.@>) wanted
				AND hlauth.effective_scopes(hlauth.principal(), old.tenant_id) OPERATOR(hlauth.@>) wanted) THEN
			RAISE EXCEPTION 'permission denied: the caller does not hold all of the key''s scopes'
				USING ERRCODE = '42501',
					  HINT = 'Nobody can mint a key with scopes they do not hold themselves; hlauth_admin can rotate any key.';
		END IF;
	END IF;
	-- The successor keeps the key's attributes, which only an admin may set: so only an
	-- admin may hand out a key that has any.
	IF old.attributes OPERATOR(pg_catalog.<>) '{}' AND NOT admin THEN
		RAISE EXCEPTION 'permission denied: only hlauth_admin may rotate a key that has attributes'
			USING ERRCODE = '42501';
	END IF;
	IF old.revoked_at IS NOT NULL OR old.rotated_to IS NOT NULL
	   OR (old.expires_at IS NOT NULL AND old.expires_at <= pg_catalog.now()) THEN
		RAISE EXCEPTION 'API key % cannot be rotated: it is revoked, expired or already rotated', key_id
			USING ERRCODE = '55000';
	END IF;
	plaintext := hlauth_internal.generate_api_key();
	stored := plaintext::hlauth.apikey;
	INSERT INTO hlauth.api_keys (key_id, key, principal, tenant_id, scopes, name, created_by, expires_at,
								 attributes, bounded_by)
	VALUES (hlauth.api_key_id(stored), stored, old.principal, old.tenant_id, old.scopes, old.name,
			CASE WHEN admin THEN NULL ELSE hlauth.principal() END,
			old.expires_at, old.attributes,
			hlauth_internal.key_bound(old.principal, admin, old.bounded_by));
	UPDATE hlauth.api_keys k
	   SET rotated_to = hlauth.api_key_id(stored),
		   retire_at = LEAST(pg_catalog.now() + overlap, k.expires_at)
	 WHERE k.key_id = old.key_id;
	RETURN plaintext;
END
$$;
GRANT EXECUTE ON FUNCTION hlauth_internal.rotate_api_key(bytea, text, interval) TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.rotate_api_key(bytea, text, interval) IS 'The body of hlauth.rotate_api_key(), run as the extension owner; its first argument is the caller''s stamp (hlauth_internal.caller_stamp()), which decides whether the caller is an admin';

-- The entry point runs with the caller's rights: it stamps who calls (caller_stamp()) and
-- runs the SECURITY DEFINER body with the stamp.
CREATE FUNCTION hlauth.rotate_api_key(key_id text, overlap interval DEFAULT '1 day') RETURNS text
	LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN hlauth_internal.rotate_api_key(hlauth_internal.caller_stamp(), $1, $2);
END
$$;
COMMENT ON FUNCTION hlauth.rotate_api_key(text, interval) IS 'Issues a successor with the same principal, tenant, scopes and expiry; the old key works until the overlap ends. Returns the new plaintext, once';

CREATE FUNCTION hlauth_internal.revoke_api_key(caller bytea, key_id text, reason text DEFAULT NULL) RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	admin boolean := hlauth_internal.caller_was_admin(caller);	-- first: redeem the stamp
	old hlauth.api_keys;
BEGIN
	SELECT * INTO old FROM hlauth.api_keys k WHERE k.key_id = revoke_api_key.key_id FOR UPDATE;
	IF NOT FOUND AND admin THEN
		RAISE EXCEPTION 'API key % does not exist', key_id USING ERRCODE = '42704';
	END IF;
	-- A principal may always revoke its own keys. For anyone else a missing key is refused like
	-- one out of reach (old is all NULL).
	IF NOT FOUND OR hlauth.principal() IS DISTINCT FROM old.principal
	   OR NOT hlauth.can_access(old.tenant_id) THEN
		PERFORM hlauth_internal.require_key_manager(old.tenant_id, admin, key_id);
	END IF;
	IF old.revoked_at IS NULL THEN
		UPDATE hlauth.api_keys k SET revoked_at = pg_catalog.now(), revoked_reason = reason
		 WHERE k.key_id = old.key_id;
	END IF;
END
$$;
GRANT EXECUTE ON FUNCTION hlauth_internal.revoke_api_key(bytea, text, text) TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.revoke_api_key(bytea, text, text) IS 'The body of hlauth.revoke_api_key(), run as the extension owner; its first argument is the caller''s stamp (hlauth_internal.caller_stamp()), which decides whether the caller is an admin';

-- The entry point runs with the caller's rights: it stamps who calls (caller_stamp()) and
-- runs the SECURITY DEFINER body with the stamp.
CREATE FUNCTION hlauth.revoke_api_key(key_id text, reason text DEFAULT NULL) RETURNS void
	LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hlauth_internal.revoke_api_key(hlauth_internal.caller_stamp(), $1, $2);
END
$$;
COMMENT ON FUNCTION hlauth.revoke_api_key(text, text) IS 'Revokes an API key at once, in every session (its own principal, hlauth_admin, or a principal with hlauth/keys.write)';

CREATE FUNCTION hlauth.authenticate(key text) RETURNS void
	AS 'MODULE_PATHNAME', 'hlauth_authenticate' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION hlauth.authenticate(text) IS 'Verifies an API key and sets the principal context for this transaction: scopes = the key''s scopes ∩ the principal''s effective scopes. Any failure: 28000 "authentication failed"';
