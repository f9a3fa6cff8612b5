-- ---------------------------------------------------------------------------
-- The server secret: master keys in the file named by hlauth.secret_file (outside the
-- data directory), purpose keys derived from them. See src/secret.c and
-- docs/reference.md#the-server-secret. Nothing here reveals key material.
-- ---------------------------------------------------------------------------

CREATE FUNCTION hlauth.secret_status()
	RETURNS TABLE (configured boolean, current_version int, versions int[])
	AS 'MODULE_PATHNAME', 'hlauth_secret_status' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION hlauth.secret_status() IS 'Is a server secret configured (hlauth.secret_file), its newest version and every version in the file; no key material. Raises 55000 when the file is unusable. Superusers and hlauth_admin only';
REVOKE ALL ON FUNCTION hlauth.secret_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.secret_status() TO hlauth_admin;

-- For tests and operators: compare derived keys across sessions or servers without
-- revealing them (4 bytes of a hash of the key).
CREATE FUNCTION hlauth_internal.secret_fingerprint(purpose text, version int) RETURNS text
	AS 'MODULE_PATHNAME', 'hlauth_secret_fingerprint' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION hlauth_internal.secret_fingerprint(text, int) IS 'For tests and operators: hex of the first 4 bytes of SHA-256 of the purpose key derived from master key version (0 = newest); NULL when the file has no such version. Superuser only';
REVOKE ALL ON FUNCTION hlauth_internal.secret_fingerprint(text, int) FROM PUBLIC;
