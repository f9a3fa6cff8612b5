-- hlauth 0.1.0: tenant isolation and authorization inside PostgreSQL.
-- Everything users call lives in schema hlauth; internals in hlauth_internal.
-- SECURITY DEFINER functions pin search_path and qualify every name and operator.

\echo Use "CREATE EXTENSION hlauth" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Roles (cluster-wide; created once, kept if the extension is dropped)
-- ---------------------------------------------------------------------------
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'hlauth_trusted') THEN
		CREATE ROLE hlauth_trusted NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'hlauth_admin') THEN
		CREATE ROLE hlauth_admin NOLOGIN;
	END IF;
END
$roles$;
COMMENT ON ROLE hlauth_trusted IS 'hlauth: may call hlauth.set_principal() for principals the app server verified itself';
COMMENT ON ROLE hlauth_admin IS 'hlauth: manages tenants and may change or remove the protection of tables';

CREATE SCHEMA hlauth_internal;
COMMENT ON SCHEMA hlauth_internal IS 'hlauth internals: not an API';
REVOKE ALL ON SCHEMA hlauth_internal FROM PUBLIC;
GRANT USAGE ON SCHEMA hlauth TO PUBLIC;

-- ---------------------------------------------------------------------------
-- The scope set type
-- ---------------------------------------------------------------------------
CREATE TYPE hlauth.scopes;

CREATE FUNCTION hlauth.scopes_in(cstring) RETURNS hlauth.scopes
	AS 'MODULE_PATHNAME', 'scopes_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hlauth.scopes_out(hlauth.scopes) RETURNS cstring
	AS 'MODULE_PATHNAME', 'scopes_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hlauth.scopes_recv(internal) RETURNS hlauth.scopes
	AS 'MODULE_PATHNAME', 'scopes_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hlauth.scopes_send(hlauth.scopes) RETURNS bytea
	AS 'MODULE_PATHNAME', 'scopes_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE hlauth.scopes (
	INPUT = hlauth.scopes_in,
	OUTPUT = hlauth.scopes_out,
	RECEIVE = hlauth.scopes_recv,
	SEND = hlauth.scopes_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = int4,
	STORAGE = extended
);
COMMENT ON TYPE hlauth.scopes IS 'A set of scopes in canonical form: sorted, de-duplicated, space-separated';
COMMENT ON FUNCTION hlauth.scopes_in(cstring) IS 'Text input of hlauth.scopes: validates every scope (22P02 on a bad one)';
COMMENT ON FUNCTION hlauth.scopes_out(hlauth.scopes) IS 'Text output of hlauth.scopes: the canonical form';
COMMENT ON FUNCTION hlauth.scopes_recv(internal) IS 'Binary input of hlauth.scopes: the text form, validated';
COMMENT ON FUNCTION hlauth.scopes_send(hlauth.scopes) IS 'Binary output of hlauth.scopes: the canonical text form';

-- Pure functions of their arguments: IMMUTABLE is right here (no context is read).
CREATE FUNCTION hlauth.scopes_eq(hlauth.scopes, hlauth.scopes) RETURNS boolean
	AS 'MODULE_PATHNAME', 'scopes_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.scopes_ne(hlauth.scopes, hlauth.scopes) RETURNS boolean
	AS 'MODULE_PATHNAME', 'scopes_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.scopes_grants(hlauth.scopes, text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'scopes_grants' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.scopes_granted_by(text, hlauth.scopes) RETURNS boolean
	AS 'MODULE_PATHNAME', 'scopes_granted_by' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.scopes_contains(hlauth.scopes, hlauth.scopes) RETURNS boolean
	AS 'MODULE_PATHNAME', 'scopes_contains' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.scopes_contained(hlauth.scopes, hlauth.scopes) RETURNS boolean
	AS 'MODULE_PATHNAME', 'scopes_contained' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.scopes_overlap(hlauth.scopes, hlauth.scopes) RETURNS boolean
	AS 'MODULE_PATHNAME', 'scopes_overlap' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.scopes_intersect(hlauth.scopes, hlauth.scopes) RETURNS hlauth.scopes
	AS 'MODULE_PATHNAME', 'scopes_intersect' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hlauth.scopes_union(hlauth.scopes, hlauth.scopes) RETURNS hlauth.scopes
	AS 'MODULE_PATHNAME', 'scopes_union' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hlauth.scopes_count(hlauth.scopes) RETURNS integer
	AS 'MODULE_PATHNAME', 'scopes_count' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.scopes_to_array(hlauth.scopes) RETURNS text[]
	AS 'MODULE_PATHNAME', 'scopes_to_array' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.scopes_from_array(text[]) RETURNS hlauth.scopes
	AS 'MODULE_PATHNAME', 'scopes_from_array' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hlauth.scopes_hash(hlauth.scopes) RETURNS integer
	AS 'MODULE_PATHNAME', 'scopes_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.scope_is_valid(text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'scope_is_valid' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

COMMENT ON FUNCTION hlauth.scopes_eq(hlauth.scopes, hlauth.scopes) IS 'Are two scope sets equal (same canonical form)?';
COMMENT ON FUNCTION hlauth.scopes_ne(hlauth.scopes, hlauth.scopes) IS 'Are two scope sets different?';
COMMENT ON FUNCTION hlauth.scopes_grants(hlauth.scopes, text) IS 'Does the set grant this scope? False for a string that is not a valid scope';
COMMENT ON FUNCTION hlauth.scopes_granted_by(text, hlauth.scopes) IS 'Is this scope granted by the set? False for a string that is not a valid scope';
COMMENT ON FUNCTION hlauth.scopes_contains(hlauth.scopes, hlauth.scopes) IS 'Does the first set grant every scope of the second?';
COMMENT ON FUNCTION hlauth.scopes_contained(hlauth.scopes, hlauth.scopes) IS 'Is every scope of the first set granted by the second?';
COMMENT ON FUNCTION hlauth.scopes_overlap(hlauth.scopes, hlauth.scopes) IS 'Is some concrete scope granted by both sets?';
COMMENT ON FUNCTION hlauth.scopes_intersect(hlauth.scopes, hlauth.scopes) IS 'The scopes granted by both sets, minimal';
COMMENT ON FUNCTION hlauth.scopes_union(hlauth.scopes, hlauth.scopes) IS 'All scopes of both sets';
COMMENT ON FUNCTION hlauth.scopes_count(hlauth.scopes) IS 'Number of scopes in the canonical set';
COMMENT ON FUNCTION hlauth.scopes_to_array(hlauth.scopes) IS 'The canonical scopes as a text array';
COMMENT ON FUNCTION hlauth.scopes_from_array(text[]) IS 'A scope set from an array: each element must be exactly one scope';
COMMENT ON FUNCTION hlauth.scopes_hash(hlauth.scopes) IS 'Hash of a scope set, for GROUP BY, DISTINCT and hash joins';
COMMENT ON FUNCTION hlauth.scope_is_valid(text) IS 'Is this text exactly one valid scope? Never raises';

CREATE OPERATOR hlauth.= (
	LEFTARG = hlauth.scopes, RIGHTARG = hlauth.scopes, FUNCTION = hlauth.scopes_eq,
	COMMUTATOR = OPERATOR(hlauth.=), NEGATOR = OPERATOR(hlauth.<>),
	RESTRICT = eqsel, JOIN = eqjoinsel, HASHES
);
CREATE OPERATOR hlauth.<> (
	LEFTARG = hlauth.scopes, RIGHTARG = hlauth.scopes, FUNCTION = hlauth.scopes_ne,
	COMMUTATOR = OPERATOR(hlauth.<>), NEGATOR = OPERATOR(hlauth.=),
	RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR hlauth.@> (
	LEFTARG = hlauth.scopes, RIGHTARG = text, FUNCTION = hlauth.scopes_grants,
	COMMUTATOR = OPERATOR(hlauth.<@), RESTRICT = contsel, JOIN = contjoinsel
);
CREATE OPERATOR hlauth.<@ (
	LEFTARG = text, RIGHTARG = hlauth.scopes, FUNCTION = hlauth.scopes_granted_by,
	COMMUTATOR = OPERATOR(hlauth.@>), RESTRICT = contsel, JOIN = contjoinsel
);
CREATE OPERATOR hlauth.@> (
	LEFTARG = hlauth.scopes, RIGHTARG = hlauth.scopes, FUNCTION = hlauth.scopes_contains,
	COMMUTATOR = OPERATOR(hlauth.<@), RESTRICT = contsel, JOIN = contjoinsel
);
CREATE OPERATOR hlauth.<@ (
	LEFTARG = hlauth.scopes, RIGHTARG = hlauth.scopes, FUNCTION = hlauth.scopes_contained,
	COMMUTATOR = OPERATOR(hlauth.@>), RESTRICT = contsel, JOIN = contjoinsel
);
CREATE OPERATOR hlauth.&& (
	LEFTARG = hlauth.scopes, RIGHTARG = hlauth.scopes, FUNCTION = hlauth.scopes_overlap,
	COMMUTATOR = OPERATOR(hlauth.&&), RESTRICT = areasel, JOIN = areajoinsel
);
COMMENT ON OPERATOR hlauth.=(hlauth.scopes, hlauth.scopes) IS 'equal scope sets';
COMMENT ON OPERATOR hlauth.<>(hlauth.scopes, hlauth.scopes) IS 'different scope sets';
COMMENT ON OPERATOR hlauth.@>(hlauth.scopes, text) IS 'the set grants the scope';
COMMENT ON OPERATOR hlauth.<@(text, hlauth.scopes) IS 'the scope is granted by the set';
COMMENT ON OPERATOR hlauth.@>(hlauth.scopes, hlauth.scopes) IS 'the left set grants every scope of the right';
COMMENT ON OPERATOR hlauth.<@(hlauth.scopes, hlauth.scopes) IS 'every scope of the left set is granted by the right';
COMMENT ON OPERATOR hlauth.&&(hlauth.scopes, hlauth.scopes) IS 'some scope is granted by both sets';

CREATE OPERATOR CLASS hlauth.scopes_hash_ops DEFAULT FOR TYPE hlauth.scopes USING hash AS
	OPERATOR 1 hlauth.= (hlauth.scopes, hlauth.scopes),
	FUNCTION 1 hlauth.scopes_hash(hlauth.scopes);
COMMENT ON OPERATOR CLASS hlauth.scopes_hash_ops USING hash IS 'hash equality of canonical scope sets';

CREATE CAST (text[] AS hlauth.scopes) WITH FUNCTION hlauth.scopes_from_array(text[]);
COMMENT ON CAST (text[] AS hlauth.scopes) IS 'each array element must be exactly one scope';

-- ---------------------------------------------------------------------------
-- Tenants: agency -> account -> app
-- ---------------------------------------------------------------------------
CREATE TABLE hlauth.tenants (
	id uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
	kind text NOT NULL,
	parent uuid,
	status text NOT NULL DEFAULT 'active',
	name text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT tenants_pkey PRIMARY KEY (id),
	CONSTRAINT tenants_parent_fkey FOREIGN KEY (parent) REFERENCES hlauth.tenants (id),
	CONSTRAINT tenants_kind_check CHECK (kind IN ('agency', 'account', 'app')),
	CONSTRAINT tenants_status_check CHECK (status IN ('active', 'suspended')),
	CONSTRAINT tenants_agency_has_no_parent CHECK ((kind = 'agency') = (parent IS NULL))
);
CREATE INDEX tenants_parent_idx ON hlauth.tenants (parent);
ALTER TABLE hlauth.tenants ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON hlauth.tenants FROM PUBLIC;
GRANT SELECT ON hlauth.tenants TO hlauth_admin;
CREATE POLICY tenants_admin ON hlauth.tenants FOR SELECT TO hlauth_admin USING (true);
SELECT pg_catalog.pg_extension_config_dump('hlauth.tenants', '');
COMMENT ON TABLE hlauth.tenants IS 'The tenant tree: an agency owns accounts, an account owns apps';
COMMENT ON COLUMN hlauth.tenants.kind IS 'agency, account or app';
COMMENT ON COLUMN hlauth.tenants.parent IS 'The owning tenant: NULL for an agency, an agency for an account, an account for an app';
COMMENT ON COLUMN hlauth.tenants.status IS 'active or suspended; a suspended tenant cuts off everything beneath it';

-- Shape: an account's parent is an agency, an app's parent an account; kind never changes.
-- Cycles are impossible: a parent is always of a strictly higher level.
CREATE FUNCTION hlauth_internal.tenants_check_shape() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	parent_kind text;
BEGIN
	IF NEW.kind IS NULL OR NEW.kind NOT IN ('agency', 'account', 'app') THEN
		RAISE EXCEPTION 'invalid tenant kind "%"', NEW.kind
			USING ERRCODE = '23514', HINT = 'A tenant is an agency, an account or an app.';
	END IF;
	IF TG_OP = 'UPDATE' AND NEW.kind IS DISTINCT FROM OLD.kind THEN
		RAISE EXCEPTION 'the kind of tenant % cannot change', OLD.id
			USING ERRCODE = '55000', HINT = 'Create a new tenant of the other kind.';
	END IF;
	IF TG_OP = 'UPDATE' AND NEW.id IS DISTINCT FROM OLD.id THEN
		RAISE EXCEPTION 'the id of tenant % cannot change', OLD.id USING ERRCODE = '55000';
	END IF;
	IF NEW.kind = 'agency' THEN
		IF NEW.parent IS NOT NULL THEN
			RAISE EXCEPTION 'an agency has no parent tenant' USING ERRCODE = '23514';
		END IF;
		RETURN NEW;
	END IF;
	IF NEW.parent IS NULL THEN
		RAISE EXCEPTION 'an % must belong to an %', NEW.kind,
			CASE NEW.kind WHEN 'account' THEN 'agency' ELSE 'account' END
			USING ERRCODE = '23514', HINT = 'Pass the parent tenant to hlauth.create_tenant().';
	END IF;
	SELECT t.kind INTO parent_kind FROM hlauth.tenants t WHERE t.id OPERATOR(pg_catalog.=) NEW.parent;
	IF parent_kind IS NULL THEN
		RAISE EXCEPTION 'parent tenant % does not exist', NEW.parent USING ERRCODE = '23503';
	END IF;
	IF (NEW.kind = 'account' AND parent_kind <> 'agency') OR (NEW.kind = 'app' AND parent_kind <> 'account') THEN
		RAISE EXCEPTION 'an % must belong to an %, not to an %', NEW.kind,
			CASE NEW.kind WHEN 'account' THEN 'agency' ELSE 'account' END, parent_kind
			USING ERRCODE = '23514';
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION hlauth_internal.tenants_check_shape() IS 'Trigger: keeps the tenant tree agency -> account -> app';
CREATE TRIGGER tenants_check_shape BEFORE INSERT OR UPDATE ON hlauth.tenants
	FOR EACH ROW EXECUTE FUNCTION hlauth_internal.tenants_check_shape();

CREATE FUNCTION hlauth_internal.tenants_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'hlauth_tenants_changed' LANGUAGE C;
COMMENT ON FUNCTION hlauth_internal.tenants_changed() IS 'Trigger: invalidates every backend''s tenant cache';
CREATE TRIGGER tenants_changed AFTER INSERT OR UPDATE OR DELETE ON hlauth.tenants
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.tenants_changed();
CREATE TRIGGER tenants_truncated AFTER TRUNCATE ON hlauth.tenants
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.tenants_changed();

CREATE FUNCTION hlauth.create_tenant(kind text, parent uuid DEFAULT NULL, name text DEFAULT NULL,
									 id uuid DEFAULT NULL) RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	new_id uuid;
BEGIN
	INSERT INTO hlauth.tenants (id, kind, parent, name)
		VALUES (coalesce(create_tenant.id, pg_catalog.gen_random_uuid()), create_tenant.kind,
				create_tenant.parent, create_tenant.name)
		RETURNING tenants.id INTO new_id;
	RETURN new_id;
END
$$;

CREATE FUNCTION hlauth_internal.set_tenant_status(tenant uuid, new_status text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	UPDATE hlauth.tenants t SET status = new_status WHERE t.id OPERATOR(pg_catalog.=) tenant;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tenant % does not exist', tenant USING ERRCODE = '42704';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.set_tenant_status(uuid, text) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.set_tenant_status(uuid, text) IS 'Sets a tenant''s status; through suspend_tenant/reactivate_tenant only';

CREATE FUNCTION hlauth.suspend_tenant(tenant uuid) RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ SELECT hlauth_internal.set_tenant_status(tenant, 'suspended') $$;
CREATE FUNCTION hlauth.reactivate_tenant(tenant uuid) RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ SELECT hlauth_internal.set_tenant_status(tenant, 'active') $$;

REVOKE ALL ON FUNCTION hlauth.create_tenant(text, uuid, text, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION hlauth.suspend_tenant(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION hlauth.reactivate_tenant(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.create_tenant(text, uuid, text, uuid) TO hlauth_admin;
GRANT EXECUTE ON FUNCTION hlauth.suspend_tenant(uuid) TO hlauth_admin;
GRANT EXECUTE ON FUNCTION hlauth.reactivate_tenant(uuid) TO hlauth_admin;
COMMENT ON FUNCTION hlauth.create_tenant(text, uuid, text, uuid) IS 'Creates an agency (no parent), an account (parent: an agency) or an app (parent: an account); returns its id';
COMMENT ON FUNCTION hlauth.suspend_tenant(uuid) IS 'Suspends a tenant: it and everything beneath it become unusable at once';
COMMENT ON FUNCTION hlauth.reactivate_tenant(uuid) IS 'Reactivates a suspended tenant';

-- ---------------------------------------------------------------------------
-- The principal context
-- ---------------------------------------------------------------------------
CREATE FUNCTION hlauth.set_principal(principal uuid, tenant uuid, scopes hlauth.scopes) RETURNS void
	AS 'MODULE_PATHNAME', 'hlauth_set_principal' LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION hlauth.set_principal(uuid, uuid, hlauth.scopes) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.set_principal(uuid, uuid, hlauth.scopes) TO hlauth_trusted;
COMMENT ON FUNCTION hlauth.set_principal(uuid, uuid, hlauth.scopes) IS 'Sets the principal context for this transaction (trusted app servers only: hlauth_trusted)';

CREATE FUNCTION hlauth.clear() RETURNS void
	AS 'MODULE_PATHNAME', 'hlauth_clear' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION hlauth.clear() IS 'Ends the principal context for the rest of this transaction';

CREATE FUNCTION hlauth.principal() RETURNS uuid
	AS 'MODULE_PATHNAME', 'hlauth_principal' LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.tenant() RETURNS uuid
	AS 'MODULE_PATHNAME', 'hlauth_tenant' LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.tenant_kind() RETURNS text
	AS 'MODULE_PATHNAME', 'hlauth_tenant_kind' LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.agency() RETURNS uuid
	AS 'MODULE_PATHNAME', 'hlauth_agency' LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.account() RETURNS uuid
	AS 'MODULE_PATHNAME', 'hlauth_account' LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.app() RETURNS uuid
	AS 'MODULE_PATHNAME', 'hlauth_app' LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.auth_method() RETURNS text
	AS 'MODULE_PATHNAME', 'hlauth_auth_method' LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.scopes() RETURNS hlauth.scopes
	AS 'MODULE_PATHNAME', 'hlauth_scopes' LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.has_scope(scope text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlauth_has_scope' LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.require_scope(scope text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlauth_require_scope' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION hlauth.can_access(tenant uuid) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlauth_can_access' LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hlauth.accessible_tenants(kind text DEFAULT NULL, scope text DEFAULT NULL) RETURNS uuid[]
	AS 'MODULE_PATHNAME', 'hlauth_accessible_tenants' LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;

COMMENT ON FUNCTION hlauth.principal() IS 'The authenticated principal of this transaction, or NULL';
COMMENT ON FUNCTION hlauth.tenant() IS 'The tenant the principal acts at (agency, account or app), or NULL';
COMMENT ON FUNCTION hlauth.tenant_kind() IS 'agency, account or app: the kind of hlauth.tenant(), or NULL';
COMMENT ON FUNCTION hlauth.agency() IS 'The agency the principal acts within, or NULL';
COMMENT ON FUNCTION hlauth.account() IS 'The account the principal acts at (an app''s account for an app), or NULL at an agency';
COMMENT ON FUNCTION hlauth.app() IS 'The app the principal acts as, or NULL';
COMMENT ON FUNCTION hlauth.auth_method() IS 'How the context was established (set_principal, ...), or NULL';
COMMENT ON FUNCTION hlauth.scopes() IS 'The principal''s scopes, or NULL';
COMMENT ON FUNCTION hlauth.has_scope(text) IS 'Do the principal''s scopes grant this scope? False with no principal or an invalid scope';
COMMENT ON FUNCTION hlauth.require_scope(text) IS 'True if the principal''s scopes grant this scope; raises 42501 otherwise';
COMMENT ON FUNCTION hlauth.can_access(uuid) IS 'May the principal reach rows of this tenant (its tenant and the active tenants beneath it)?';
COMMENT ON FUNCTION hlauth.accessible_tenants(text, text) IS 'The tenants (of one kind: agency, account, app; or all when NULL) whose rows the principal may reach; empty with no principal, an unknown kind, or a scope the principal lacks';

CREATE FUNCTION hlauth.current_context() RETURNS jsonb
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE WHEN hlauth.principal() IS NULL THEN NULL ELSE pg_catalog.jsonb_build_object(
		'principal', hlauth.principal(), 'tenant', hlauth.tenant(), 'kind', hlauth.tenant_kind(),
		'agency', hlauth.agency(), 'account', hlauth.account(), 'app', hlauth.app(),
		'method', hlauth.auth_method(), 'scopes', hlauth.scopes_to_array(hlauth.scopes())) END
$$;
COMMENT ON FUNCTION hlauth.current_context() IS 'The principal context as jsonb, for humans; NULL with no principal';

-- ---------------------------------------------------------------------------
-- protect(): row-level security for a tenant table
-- ---------------------------------------------------------------------------
CREATE FUNCTION hlauth_internal.is_admin() RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlauth_is_admin' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION hlauth_internal.is_admin() IS 'Is the current role a superuser or a member of hlauth_admin?';

CREATE FUNCTION hlauth_internal.require_context() RETURNS trigger
	AS 'MODULE_PATHNAME', 'hlauth_require_context_trigger' LANGUAGE C;
COMMENT ON FUNCTION hlauth_internal.require_context() IS 'Trigger: refuses writes with no principal (42501), or without the write scope given as argument';
CREATE FUNCTION hlauth_internal.refuse_truncate() RETURNS trigger
	AS 'MODULE_PATHNAME', 'hlauth_refuse_truncate_trigger' LANGUAGE C;
COMMENT ON FUNCTION hlauth_internal.refuse_truncate() IS 'Trigger: TRUNCATE bypasses row-level security, so only hlauth_admin may truncate a protected table';

CREATE TABLE hlauth_internal.protected_tables (
	relid regclass NOT NULL PRIMARY KEY,
	tenant_column name NOT NULL,
	tenant_kind text NOT NULL,
	read_scope text,
	write_scope text,
	fingerprint text NOT NULL,
	protected_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('hlauth_internal.protected_tables', '');
COMMENT ON TABLE hlauth_internal.protected_tables IS 'Tables under hlauth.protect(), and a fingerprint of their protection';

-- What must not change without hlauth_admin: name, parents, RLS flags, every policy (a
-- permissive one widens access; a restrictive one's function may be ordered before hlauth's
-- and see every row), and every trigger with its state (a trigger sees every tenant's writes).
CREATE FUNCTION hlauth_internal.protection_fingerprint(tbl regclass) RETURNS text
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT concat_ws(' | ',
		-- its name (a renamed table could be replaced by an unprotected one) and RLS flags
		(SELECT c.relnamespace::text || '.' || quote_ident(c.relname) || ':' ||
				c.relrowsecurity::text || '/' || c.relforcerowsecurity::text
		   FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl),
		-- its parents (made a child of another table, its rows would be read through that one)
		(SELECT 'inherits:' || string_agg(i.inhparent::oid::text, ',' ORDER BY i.inhparent)
		   FROM pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) tbl),
		(SELECT string_agg(concat_ws(':', p.polname, p.polcmd, p.polpermissive, p.polroles::text,
									 pg_get_expr(p.polqual, p.polrelid),
									 pg_get_expr(p.polwithcheck, p.polrelid)), '; ' ORDER BY p.polname)
		   FROM pg_policy p
		  WHERE p.polrelid OPERATOR(pg_catalog.=) tbl),
		(SELECT string_agg(t.tgname::text || ':' || t.tgenabled::text || ':' || t.tgfoid::regproc::text, '; ' ORDER BY t.tgname)
		   FROM pg_trigger t
		  WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl AND NOT t.tgisinternal))
$$;
COMMENT ON FUNCTION hlauth_internal.protection_fingerprint(regclass) IS 'The parts of a table''s protection that only hlauth_admin may change';

-- Registers a table whose protection is complete. Only hlauth.protect() (through
-- protect_impl, with superuser rights) calls it: registering pins what is there.
CREATE FUNCTION hlauth_internal.register_protection(tbl regclass, tenant_column name, tenant_kind text,
													read_scope text, write_scope text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl
					AND c.relrowsecurity AND c.relforcerowsecurity)
	   OR (SELECT count(*) FROM pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) tbl
			AND p.polname IN ('hlauth_select', 'hlauth_insert', 'hlauth_update', 'hlauth_delete')) <> 4
	   OR (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl
			AND t.tgname IN ('hlauth_require_context', 'hlauth_no_truncate') AND t.tgenabled <> 'D') <> 2
	   OR EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) tbl
			AND p.polpermissive AND p.polname NOT IN ('hlauth_select', 'hlauth_insert', 'hlauth_update', 'hlauth_delete'))
	THEN
		RAISE EXCEPTION 'table % is not fully protected', tbl USING ERRCODE = '55000';
	END IF;
	INSERT INTO hlauth_internal.protected_tables AS pt (relid, tenant_column, tenant_kind, read_scope, write_scope, fingerprint)
		VALUES (tbl, tenant_column, tenant_kind, read_scope, write_scope, hlauth_internal.protection_fingerprint(tbl))
		ON CONFLICT (relid) DO UPDATE SET fingerprint = EXCLUDED.fingerprint;
END
$$;
COMMENT ON FUNCTION hlauth_internal.register_protection(regclass, name, text, text, text) IS 'Records a fully protected table (called by hlauth.protect)';

CREATE FUNCTION hlauth_internal.unregister_protection(tbl regclass) RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ DELETE FROM hlauth_internal.protected_tables pt WHERE pt.relid OPERATOR(pg_catalog.=) tbl $$;
COMMENT ON FUNCTION hlauth_internal.unregister_protection(regclass) IS 'Forgets a table''s protection (hlauth_admin only)';

CREATE FUNCTION hlauth_internal.accept_protection_change(tbl regclass) RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ UPDATE hlauth_internal.protected_tables pt SET fingerprint = hlauth_internal.protection_fingerprint(tbl)
		  WHERE pt.relid OPERATOR(pg_catalog.=) tbl $$;
COMMENT ON FUNCTION hlauth_internal.accept_protection_change(regclass) IS 'Records a change an hlauth_admin made to a table''s protection';

CREATE FUNCTION hlauth_internal.forget_dropped_tables() RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ DELETE FROM hlauth_internal.protected_tables pt
		  WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) pt.relid) $$;
COMMENT ON FUNCTION hlauth_internal.forget_dropped_tables() IS 'Drops registry rows of tables that no longer exist';

-- New partitions of a protected table are protected like their parent. Harmless to call
-- directly: it only adds protection. Re-entrant calls (from protect()'s own DDL) return at once.
CREATE FUNCTION hlauth_internal.protect_new_partitions() RETURNS void
	AS 'MODULE_PATHNAME', 'hlauth_protect_new_partitions' LANGUAGE C;
COMMENT ON FUNCTION hlauth_internal.protect_new_partitions() IS 'Protects partitions of protected tables that are not protected yet';

-- Runs after every DDL command, as the role that ran it.
CREATE FUNCTION hlauth_internal.guard_protection() RETURNS event_trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
BEGIN
	IF EXISTS (SELECT 1 FROM hlauth_internal.protected_tables pt
				WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) pt.relid)) THEN
		IF NOT hlauth_internal.is_admin() THEN
			RAISE EXCEPTION 'permission denied: dropping a table protected by hlauth requires hlauth_admin'
				USING ERRCODE = '42501',
					  DETAIL = 'A protected table dropped and created again without protection would collect every tenant''s rows.',
					  HINT = 'Ask an hlauth_admin to drop it.';
		END IF;
		PERFORM hlauth_internal.forget_dropped_tables();
	END IF;
	PERFORM hlauth_internal.protect_new_partitions();
	FOR r IN SELECT pt.relid, pt.fingerprint FROM hlauth_internal.protected_tables pt LOOP
		IF hlauth_internal.protection_fingerprint(r.relid) IS DISTINCT FROM r.fingerprint THEN
			IF hlauth_internal.is_admin() THEN
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
COMMENT ON FUNCTION hlauth_internal.guard_protection() IS 'Event trigger: refuses DDL that weakens a protected table unless run by hlauth_admin';

-- Drops hlauth's policies and triggers on a table, quietly (as the caller: owner or admin).
CREATE FUNCTION hlauth_internal.drop_protection_objects(tbl regclass) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	obj record;
BEGIN
	FOR obj IN SELECT p.polname FROM pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) tbl
				AND p.polname IN ('hlauth_select', 'hlauth_insert', 'hlauth_update', 'hlauth_delete') LOOP
		EXECUTE format('DROP POLICY %I ON %s', obj.polname, tbl);
	END LOOP;
	FOR obj IN SELECT t.tgname FROM pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl
				AND t.tgname IN ('hlauth_require_context', 'hlauth_no_truncate') LOOP
		EXECUTE format('DROP TRIGGER %I ON %s', obj.tgname, tbl);
	END LOOP;
END
$$;
COMMENT ON FUNCTION hlauth_internal.drop_protection_objects(regclass) IS 'Drops hlauth''s policies and triggers on a table (used by protect and unprotect)';

-- What app roles may use inside hlauth_internal: read-only helpers and the registry.
GRANT USAGE ON SCHEMA hlauth_internal TO PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA hlauth_internal FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA hlauth_internal FROM PUBLIC;
GRANT SELECT ON hlauth_internal.protected_tables TO PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth_internal.is_admin() TO PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth_internal.protection_fingerprint(regclass) TO PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth_internal.forget_dropped_tables() TO hlauth_admin;
GRANT EXECUTE ON FUNCTION hlauth_internal.protect_new_partitions() TO PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth_internal.guard_protection() TO PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth_internal.require_context() TO PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth_internal.refuse_truncate() TO PUBLIC;

GRANT EXECUTE ON FUNCTION hlauth_internal.unregister_protection(regclass) TO hlauth_admin;
GRANT EXECUTE ON FUNCTION hlauth_internal.accept_protection_change(regclass) TO hlauth_admin;

-- The body of hlauth.protect(). Runs as the bootstrap superuser: hlauth.protect() (C) checks
-- first that the caller owns the table or is hlauth_admin, and passes which.
CREATE FUNCTION hlauth_internal.protect_impl(tbl regclass, tenant_column name, read_scope text,
											 write_scope text, tenant_kind text, caller_is_admin boolean)
	RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	att smallint;
	col_type oid;
	reg record;
	read_check text;
	write_check text;
	idx record;
BEGIN
	IF tenant_kind NOT IN ('agency', 'account', 'app') THEN
		RAISE EXCEPTION 'invalid tenant kind "%"', tenant_kind
			USING ERRCODE = '22023', HINT = 'Use agency, account or app.';
	END IF;
	IF read_scope IS NOT NULL AND NOT hlauth.scope_is_valid(read_scope) THEN
		PERFORM read_scope::hlauth.scopes;	-- raises 22P02 with the details
		RAISE EXCEPTION 'read_scope must be exactly one scope, not "%"', read_scope USING ERRCODE = '22P02';
	END IF;
	IF write_scope IS NOT NULL AND NOT hlauth.scope_is_valid(write_scope) THEN
		PERFORM write_scope::hlauth.scopes;
		RAISE EXCEPTION 'write_scope must be exactly one scope, not "%"', write_scope USING ERRCODE = '22P02';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl AND c.relkind IN ('r', 'p')) THEN
		RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = '42809';
	END IF;
	SELECT a.attnum, a.atttypid INTO att, col_type
	  FROM pg_attribute a
	 WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) tenant_column
	   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', tenant_column, tbl
			USING ERRCODE = '42703', HINT = 'Name the tenant column: hlauth.protect(''my_table'', ''tenant_column'').';
	END IF;
	IF col_type OPERATOR(pg_catalog.<>) 'uuid'::regtype THEN
		RAISE EXCEPTION 'tenant column "%" of table % has type %, not uuid', tenant_column, tbl, col_type::regtype
			USING ERRCODE = '42804', HINT = 'Tenant ids are uuids: ALTER TABLE ... ALTER COLUMN ... TYPE uuid.';
	END IF;

	SELECT * INTO reg FROM hlauth_internal.protected_tables pt WHERE pt.relid OPERATOR(pg_catalog.=) tbl;
	IF FOUND THEN
		IF reg.tenant_column = tenant_column AND reg.tenant_kind = tenant_kind
		   AND reg.read_scope IS NOT DISTINCT FROM read_scope AND reg.write_scope IS NOT DISTINCT FROM write_scope
		   AND reg.fingerprint = hlauth_internal.protection_fingerprint(tbl) THEN
			RAISE NOTICE 'table % is already protected', tbl;
			RETURN;
		END IF;
		IF NOT caller_is_admin THEN
			RAISE EXCEPTION 'permission denied: changing the protection of table % requires hlauth_admin', tbl
				USING ERRCODE = '42501';
		END IF;
		PERFORM hlauth_internal.unregister_protection(tbl);
	END IF;

	-- Only tenants of the column's kind: an agency principal cannot file a row under the
	-- agency's own id in an account_id column.
	-- The scope goes into the same call, so the whole policy is one index condition,
	-- evaluated once per scan rather than a filter evaluated per row.
	read_check := format('%I OPERATOR(pg_catalog.=) ANY (hlauth.accessible_tenants(%L, %L))',
						 tenant_column, tenant_kind, read_scope);
	write_check := format('%I OPERATOR(pg_catalog.=) ANY (hlauth.accessible_tenants(%L, %L))',
						  tenant_column, tenant_kind, write_scope);

	FOR idx IN SELECT p.polname FROM pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) tbl
				AND p.polpermissive AND p.polname NOT IN ('hlauth_select', 'hlauth_insert', 'hlauth_update', 'hlauth_delete') LOOP
		RAISE EXCEPTION 'table % has a permissive policy "%"', tbl, idx.polname
			USING ERRCODE = '55000',
				  DETAIL = 'Permissive policies are combined with OR: it would widen hlauth''s tenant isolation.',
				  HINT = 'Drop it, or have an hlauth_admin recreate it AS RESTRICTIVE.';
	END LOOP;

	-- A table under an unprotected parent would be read through that parent.
	FOR idx IN SELECT i.inhparent::regclass AS parent FROM pg_inherits i
				WHERE i.inhrelid OPERATOR(pg_catalog.=) tbl
				  AND NOT EXISTS (SELECT 1 FROM hlauth_internal.protected_tables pt
								   WHERE pt.relid OPERATOR(pg_catalog.=) i.inhparent) LOOP
		RAISE EXCEPTION 'table % is a child of table %, which is not protected', tbl, idx.parent
			USING ERRCODE = '55000',
				  DETAIL = 'Its rows would be read through the parent without hlauth''s policies.',
				  HINT = format('Protect the parent instead: hlauth.protect(%L).', idx.parent);
	END LOOP;

	-- A trigger or rule sees every tenant's writes: one the owner made before protecting
	-- the table needs an hlauth_admin's review.
	-- Code of the owner's that would run over every tenant's rows or writes: triggers, rules,
	-- restrictive policies, CHECK and exclusion constraints, generated columns, expression
	-- and partial indexes. An hlauth_admin must review such a table before it is protected.
	IF NOT caller_is_admin THEN
		FOR idx IN SELECT 'trigger ' || quote_ident(t.tgname) AS what FROM pg_trigger t
					WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl AND NOT t.tgisinternal
					  AND t.tgname NOT IN ('hlauth_require_context', 'hlauth_no_truncate')
				   UNION ALL
				   SELECT 'rule ' || quote_ident(r.rulename) FROM pg_rewrite r
					WHERE r.ev_class OPERATOR(pg_catalog.=) tbl AND r.rulename <> '_RETURN'
				   UNION ALL
				   SELECT 'policy ' || quote_ident(p.polname) FROM pg_policy p
					WHERE p.polrelid OPERATOR(pg_catalog.=) tbl AND p.polname NOT IN ('hlauth_select', 'hlauth_insert', 'hlauth_update', 'hlauth_delete')
				   UNION ALL
				   SELECT 'constraint ' || quote_ident(c.conname) FROM pg_constraint c
					WHERE c.conrelid OPERATOR(pg_catalog.=) tbl AND c.contype IN ('c', 'x')
				   UNION ALL
				   SELECT 'generated column ' || quote_ident(a.attname) FROM pg_attribute a
					WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attnum OPERATOR(pg_catalog.>) 0
					  AND NOT a.attisdropped AND a.attgenerated <> ''
				   UNION ALL
				   SELECT 'index ' || i.indexrelid::regclass::text FROM pg_index i
					WHERE i.indrelid OPERATOR(pg_catalog.=) tbl
					  AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL) LOOP
			RAISE EXCEPTION 'permission denied: table % has %', tbl, idx.what
				USING ERRCODE = '42501',
					  DETAIL = 'It would run its code over every tenant''s rows or writes once the table is protected.',
					  HINT = 'Ask an hlauth_admin to review it and run hlauth.protect().';
		END LOOP;
	END IF;

	EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', tbl);
	PERFORM hlauth_internal.drop_protection_objects(tbl);
	EXECUTE format('CREATE POLICY hlauth_select ON %s AS PERMISSIVE FOR SELECT TO PUBLIC USING (%s)',
				   tbl, read_check);
	EXECUTE format('CREATE POLICY hlauth_insert ON %s AS PERMISSIVE FOR INSERT TO PUBLIC WITH CHECK (%s)',
				   tbl, write_check);
	EXECUTE format('CREATE POLICY hlauth_update ON %s AS PERMISSIVE FOR UPDATE TO PUBLIC USING (%s) WITH CHECK (%s)',
				   tbl, write_check, write_check);
	EXECUTE format('CREATE POLICY hlauth_delete ON %s AS PERMISSIVE FOR DELETE TO PUBLIC USING (%s)',
				   tbl, write_check);
	EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT hlauth.%s()', tbl, tenant_column, tenant_kind);
	IF write_scope IS NULL THEN
		EXECUTE format('CREATE TRIGGER hlauth_require_context BEFORE INSERT OR UPDATE OR DELETE ON %s '
					   'FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.require_context()', tbl);
	ELSE
		EXECUTE format('CREATE TRIGGER hlauth_require_context BEFORE INSERT OR UPDATE OR DELETE ON %s '
					   'FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.require_context(%L)', tbl, write_scope);
	END IF;
	EXECUTE format('CREATE TRIGGER hlauth_no_truncate BEFORE TRUNCATE ON %s '
				   'FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.refuse_truncate()', tbl);

	IF NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) tbl
					AND i.indkey[0] OPERATOR(pg_catalog.=) att) THEN
		RAISE WARNING 'no index of table % starts with its tenant column "%"', tbl, tenant_column
			USING HINT = format('CREATE INDEX ON %s (%I, ...): without it every protected query reads the whole table.',
								tbl, tenant_column);
	END IF;
	FOR idx IN SELECT i.indexrelid::regclass AS name FROM pg_index i
				WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisunique
				  AND NOT (att OPERATOR(pg_catalog.=) ANY (i.indkey::smallint[])) LOOP
		RAISE WARNING 'unique index % of table % does not include the tenant column "%"', idx.name, tbl, tenant_column
			USING DETAIL = 'A unique violation would tell one tenant that another tenant holds the same value.',
				  HINT = 'Make the tenant column part of every unique key, e.g. UNIQUE (account_id, email).';
	END LOOP;

	PERFORM hlauth_internal.register_protection(tbl, tenant_column, tenant_kind, read_scope, write_scope);

	-- Partitions and children are tables of their own: protect each, so that direct access
	-- is isolated too. (While protect() runs, the DDL guard does not protect them itself.)
	FOR idx IN SELECT i.inhrelid::regclass AS child FROM pg_inherits i
				WHERE i.inhparent OPERATOR(pg_catalog.=) tbl ORDER BY i.inhrelid LOOP
		PERFORM hlauth_internal.protect_impl(idx.child, tenant_column, read_scope, write_scope, tenant_kind,
											 caller_is_admin);
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.protect_impl(regclass, name, text, text, text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.protect_impl(regclass, name, text, text, text, boolean) IS 'The body of hlauth.protect(), run with superuser rights after the caller was checked';

CREATE FUNCTION hlauth.protect(tbl regclass, tenant_column name DEFAULT 'account_id',
							   read_scope text DEFAULT NULL, write_scope text DEFAULT NULL,
							   tenant_kind text DEFAULT 'account') RETURNS void
	AS 'MODULE_PATHNAME', 'hlauth_protect' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION hlauth.protect(regclass, name, text, text, text) IS 'Isolates a table by tenant: RLS enabled and forced, hlauth policies, tenant column default, write guard';

CREATE FUNCTION hlauth_internal.remove_protection(tbl regclass) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	reg record;
	child record;
BEGIN
	SELECT * INTO reg FROM hlauth_internal.protected_tables pt WHERE pt.relid OPERATOR(pg_catalog.=) tbl;
	IF NOT FOUND THEN
		RAISE NOTICE 'table % is not protected', tbl;
		RETURN;
	END IF;
	-- The parent first: while it is registered, the DDL guard would re-protect its partitions.
	PERFORM hlauth_internal.unregister_protection(tbl);
	FOR child IN SELECT i.inhrelid::regclass AS rel FROM pg_inherits i
				  JOIN hlauth_internal.protected_tables pt ON pt.relid OPERATOR(pg_catalog.=) i.inhrelid
				 WHERE i.inhparent OPERATOR(pg_catalog.=) tbl LOOP
		PERFORM hlauth_internal.remove_protection(child.rel);
	END LOOP;
	PERFORM hlauth_internal.drop_protection_objects(tbl);
	EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', tbl, reg.tenant_column);
	EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY', tbl);
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.remove_protection(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth_internal.remove_protection(regclass) TO hlauth_admin;
COMMENT ON FUNCTION hlauth_internal.remove_protection(regclass) IS 'Removes a table''s protection, whoever owns it (hlauth_admin only, through hlauth.unprotect)';

CREATE FUNCTION hlauth.unprotect(tbl regclass) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT hlauth_internal.is_admin() THEN
		RAISE EXCEPTION 'permission denied: removing the protection of table % requires hlauth_admin', tbl
			USING ERRCODE = '42501', HINT = 'Ask an hlauth_admin (GRANT hlauth_admin TO ...) to run it.';
	END IF;
	PERFORM hlauth_internal.remove_protection(tbl);
END
$$;
COMMENT ON FUNCTION hlauth.unprotect(regclass) IS 'Removes what hlauth.protect() added, partitions included (hlauth_admin only)';

-- Last, so that it does not fire for the rest of this script.
CREATE EVENT TRIGGER hlauth_guard_protection ON ddl_command_end
	EXECUTE FUNCTION hlauth_internal.guard_protection();
COMMENT ON EVENT TRIGGER hlauth_guard_protection IS 'hlauth: refuses DDL that weakens a protected table unless run by hlauth_admin; protects new partitions';

CREATE FUNCTION hlauth_internal.guard_ddl_start() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'hlauth_guard_ddl_start' LANGUAGE C;
COMMENT ON FUNCTION hlauth_internal.guard_ddl_start() IS 'Event trigger: refuses, before it runs, DDL that would run code over every tenant''s rows of a protected table (hlauth_admin excepted)';
GRANT EXECUTE ON FUNCTION hlauth_internal.guard_ddl_start() TO PUBLIC;
CREATE EVENT TRIGGER hlauth_guard_ddl_start ON ddl_command_start
	WHEN TAG IN ('CREATE TRIGGER', 'CREATE RULE', 'CREATE INDEX', 'CREATE STATISTICS', 'ALTER TABLE')
	EXECUTE FUNCTION hlauth_internal.guard_ddl_start();
COMMENT ON EVENT TRIGGER hlauth_guard_ddl_start IS 'hlauth: refuses triggers, rules, expression/partial/unique indexes, expression statistics, constraints, type changes and re-parenting on protected tables unless run by hlauth_admin';
