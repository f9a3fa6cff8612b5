-- ---------------------------------------------------------------------------
-- Permissions, roles and grants (issue #3): the registry of permissions, platform and agency
-- custom roles, agency allowances, principals and their attributes, grants, and the
-- principal's effective scopes. See src/rbac.c, docs/concepts.md#permissions-roles-and-grants
-- and docs/reference.md#permissions-roles-and-grants.
--
-- App roles never write these tables: every change goes through the SECURITY DEFINER
-- functions below, which check who is calling (hlauth_admin, or a principal in context
-- bound by the no-escalation rules). Every such function pins search_path and qualifies
-- every name and operator.
-- ---------------------------------------------------------------------------

-- ---- C helpers ----

CREATE FUNCTION hlauth_internal.rbac_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'hlauth_rbac_changed' LANGUAGE C;
REVOKE ALL ON FUNCTION hlauth_internal.rbac_changed() FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.rbac_changed() IS 'Trigger: invalidates every backend''s cache of effective scopes and principal attributes';

CREATE FUNCTION hlauth_internal.caller_is_admin() RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlauth_caller_is_admin' LANGUAGE C STABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION hlauth_internal.caller_is_admin() FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.caller_is_admin() IS 'Is the role the session acts as (which SECURITY DEFINER does not change) a superuser or a member of hlauth_admin? Never in a security-restricted operation. The second gate of functions only hlauth_admin may execute';

-- Who called? The functions both principals and admins call (grant_role, issue_api_key, ...)
-- are PL/pgSQL functions with their caller's rights that take a stamp of their caller, and
-- hand it to their SECURITY DEFINER body (src/rbac.c, hlauth_caller_stamp).
CREATE FUNCTION hlauth_internal.caller_stamp() RETURNS bytea
	AS 'MODULE_PATHNAME', 'hlauth_caller_stamp' LANGUAGE C VOLATILE PARALLEL UNSAFE;
GRANT EXECUTE ON FUNCTION hlauth_internal.caller_stamp() TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.caller_stamp() IS 'A one-time random stamp of the calling role, remembered in this backend with whether it is an admin (session role and current user both superusers or hlauth_admin members, outside security-restricted operations); a non-admin''s stamp is worth nothing';
CREATE FUNCTION hlauth_internal.caller_was_admin(stamp bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlauth_caller_was_admin' LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION hlauth_internal.caller_was_admin(bytea) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.caller_was_admin(bytea) IS 'Redeems a stamp of this transaction (once): true only if an admin took it';

CREATE FUNCTION hlauth_internal.expand_scopes(scopes hlauth.scopes) RETURNS hlauth.scopes
	AS 'MODULE_PATHNAME', 'hlauth_expand_scopes' LANGUAGE C STABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION hlauth_internal.expand_scopes(hlauth.scopes) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.expand_scopes(hlauth.scopes) IS 'The registered permissions a scope set grants: wildcards expanded, implications applied';

-- ---------------------------------------------------------------------------
-- The registry of permissions
-- ---------------------------------------------------------------------------
CREATE TABLE hlauth.permissions (
	scope text NOT NULL,
	description text NOT NULL,
	implies text[] NOT NULL DEFAULT '{}',
	CONSTRAINT permissions_pkey PRIMARY KEY (scope),
	CONSTRAINT permissions_scope_check
		CHECK (hlauth.scope_is_valid(scope) AND pg_catalog.strpos(scope, '*') OPERATOR(pg_catalog.=) 0),
	CONSTRAINT permissions_implies_check
		CHECK (pg_catalog.array_position(implies, NULL) IS NULL
			   AND NOT (scope OPERATOR(pg_catalog.=) ANY (implies)))
);
ALTER TABLE hlauth.permissions ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON hlauth.permissions FROM PUBLIC;
GRANT SELECT ON hlauth.permissions TO PUBLIC;
CREATE POLICY permissions_read ON hlauth.permissions FOR SELECT TO PUBLIC USING (true);
COMMENT ON POLICY permissions_read ON hlauth.permissions IS 'The registry is public: everyone may read it';
COMMENT ON TABLE hlauth.permissions IS 'The registry of permissions: the only scopes roles, allowances, grants and keys may use';
COMMENT ON COLUMN hlauth.permissions.scope IS 'A concrete scope (no wildcard), e.g. contacts.readonly';
COMMENT ON COLUMN hlauth.permissions.description IS 'What the permission allows, for humans';
COMMENT ON COLUMN hlauth.permissions.implies IS 'Registered permissions that holding this one also grants (transitively), e.g. contacts.write implies contacts.readonly';

-- hlauth's own permissions. The "hlauth/" resource is reserved for them, so a dump leaves
-- them out and the restored extension's install script provides them.
INSERT INTO hlauth.permissions (scope, description) VALUES
	('hlauth/grants.write', 'grant and revoke roles'),
	('hlauth/roles.write', 'define the agency''s custom roles'),
	('hlauth/keys.write', 'issue, rotate and revoke API keys');
SELECT pg_catalog.pg_extension_config_dump('hlauth.permissions',
	$$WHERE pg_catalog.left(scope, 7) OPERATOR(pg_catalog.<>) 'hlauth/'$$);

-- ---------------------------------------------------------------------------
-- Roles: platform roles (agency_id NULL) and agency custom roles
-- ---------------------------------------------------------------------------
CREATE TABLE hlauth.roles (
	id uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
	name text NOT NULL,
	agency_id uuid,
	scopes hlauth.scopes NOT NULL,
	description text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT roles_pkey PRIMARY KEY (id),
	CONSTRAINT roles_agency_fkey FOREIGN KEY (agency_id) REFERENCES hlauth.tenants (id),
	CONSTRAINT roles_name_key UNIQUE NULLS NOT DISTINCT (agency_id, name),
	CONSTRAINT roles_name_check CHECK (pg_catalog.length(name) OPERATOR(pg_catalog.>=) 1
									   AND pg_catalog.length(name) OPERATOR(pg_catalog.<=) 200)
);
ALTER TABLE hlauth.roles ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON hlauth.roles FROM PUBLIC;
GRANT SELECT ON hlauth.roles TO PUBLIC;
CREATE POLICY roles_read ON hlauth.roles FOR SELECT TO PUBLIC
	USING (agency_id IS NULL OR agency_id OPERATOR(pg_catalog.=) hlauth.agency());
CREATE POLICY roles_admin ON hlauth.roles FOR SELECT TO hlauth_admin USING (true);
COMMENT ON POLICY roles_read ON hlauth.roles IS 'Platform roles are public; an agency''s custom roles are visible only to principals acting within that agency';
COMMENT ON POLICY roles_admin ON hlauth.roles IS 'hlauth_admin reads every role';
SELECT pg_catalog.pg_extension_config_dump('hlauth.roles', '');
COMMENT ON TABLE hlauth.roles IS 'Roles bundle scopes: platform roles (agency_id NULL) and agency custom roles';
COMMENT ON COLUMN hlauth.roles.agency_id IS 'NULL for a platform role; the agency whose custom role this is';
COMMENT ON COLUMN hlauth.roles.scopes IS 'Registered permissions, or wildcards covering at least one; a custom role is capped by its agency''s allowance';

-- ---------------------------------------------------------------------------
-- Agency allowances: what an agency's custom roles may grant at most
-- ---------------------------------------------------------------------------
CREATE TABLE hlauth.agency_allowances (
	agency_id uuid NOT NULL,
	scopes hlauth.scopes NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT agency_allowances_pkey PRIMARY KEY (agency_id),
	CONSTRAINT agency_allowances_agency_fkey FOREIGN KEY (agency_id) REFERENCES hlauth.tenants (id)
);
ALTER TABLE hlauth.agency_allowances ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON hlauth.agency_allowances FROM PUBLIC;
GRANT SELECT ON hlauth.agency_allowances TO PUBLIC;
CREATE POLICY agency_allowances_read ON hlauth.agency_allowances FOR SELECT TO PUBLIC
	USING (agency_id OPERATOR(pg_catalog.=) hlauth.agency());
CREATE POLICY agency_allowances_admin ON hlauth.agency_allowances FOR SELECT TO hlauth_admin USING (true);
COMMENT ON POLICY agency_allowances_read ON hlauth.agency_allowances IS 'A principal sees its own agency''s allowance';
COMMENT ON POLICY agency_allowances_admin ON hlauth.agency_allowances IS 'hlauth_admin reads every allowance';
SELECT pg_catalog.pg_extension_config_dump('hlauth.agency_allowances', '');
COMMENT ON TABLE hlauth.agency_allowances IS 'The most an agency''s custom roles may grant; no row: they grant nothing';

-- ---------------------------------------------------------------------------
-- Principals: status and attributes (a principal without a row is active, with none)
-- ---------------------------------------------------------------------------
CREATE TABLE hlauth.principals (
	id uuid NOT NULL,
	status text NOT NULL DEFAULT 'active',
	attributes jsonb NOT NULL DEFAULT '{}',
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT principals_pkey PRIMARY KEY (id),
	CONSTRAINT principals_status_check CHECK (status IN ('active', 'suspended')),
	CONSTRAINT principals_attributes_check
		CHECK (pg_catalog.jsonb_typeof(attributes) OPERATOR(pg_catalog.=) 'object')
);
ALTER TABLE hlauth.principals ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON hlauth.principals FROM PUBLIC;
GRANT SELECT ON hlauth.principals TO hlauth_admin;
CREATE POLICY principals_admin ON hlauth.principals FOR SELECT TO hlauth_admin USING (true);
COMMENT ON POLICY principals_admin ON hlauth.principals IS 'Only hlauth_admin reads principals; a principal reads its own attributes through hlauth.attribute()';
SELECT pg_catalog.pg_extension_config_dump('hlauth.principals', '');
COMMENT ON TABLE hlauth.principals IS 'Principals'' status and attributes; a principal without a row is active and has no attributes';
COMMENT ON COLUMN hlauth.principals.status IS 'active or suspended; a suspended principal has no effective scopes and cannot be set as the principal';
COMMENT ON COLUMN hlauth.principals.attributes IS 'A JSON object of attributes for policies, read with hlauth.attribute(name)';

-- ---------------------------------------------------------------------------
-- Grants: a role for a principal at a tenant, inherited downward
-- ---------------------------------------------------------------------------
CREATE TABLE hlauth.grants (
	id uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
	principal uuid NOT NULL,
	role_id uuid NOT NULL,
	tenant_id uuid NOT NULL,
	granted_by uuid,
	granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	valid_from timestamptz,
	valid_until timestamptz,
	revoked_at timestamptz,
	revoked_by uuid,
	CONSTRAINT grants_pkey PRIMARY KEY (id),
	CONSTRAINT grants_role_fkey FOREIGN KEY (role_id) REFERENCES hlauth.roles (id),
	CONSTRAINT grants_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES hlauth.tenants (id),
	CONSTRAINT grants_validity_check CHECK (valid_until OPERATOR(pg_catalog.>) valid_from)
);
-- effective_scopes: one lookup per tenant of the path (agency, account, app).
CREATE INDEX grants_principal_tenant_idx ON hlauth.grants (principal, tenant_id) WHERE revoked_at IS NULL;
CREATE INDEX grants_role_idx ON hlauth.grants (role_id);
ALTER TABLE hlauth.grants ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON hlauth.grants FROM PUBLIC;
GRANT SELECT ON hlauth.grants TO PUBLIC;
CREATE POLICY grants_read ON hlauth.grants FOR SELECT TO PUBLIC
	USING (tenant_id OPERATOR(pg_catalog.=) ANY (hlauth.accessible_tenants()));
CREATE POLICY grants_admin ON hlauth.grants FOR SELECT TO hlauth_admin USING (true);
COMMENT ON POLICY grants_read ON hlauth.grants IS 'A principal sees the grants made at the tenants it can access';
COMMENT ON POLICY grants_admin ON hlauth.grants IS 'hlauth_admin reads every grant';
SELECT pg_catalog.pg_extension_config_dump('hlauth.grants', '');
COMMENT ON TABLE hlauth.grants IS 'Roles granted to principals at a tenant (agency, account or app), inherited by the tenants beneath it';
COMMENT ON COLUMN hlauth.grants.granted_by IS 'The principal that granted it; NULL for hlauth_admin';
COMMENT ON COLUMN hlauth.grants.valid_from IS 'Counts from this time on (NULL: at once)';
COMMENT ON COLUMN hlauth.grants.valid_until IS 'Counts until this time (NULL: until revoked)';
COMMENT ON COLUMN hlauth.grants.revoked_at IS 'When it was revoked; a revoked grant never counts again';
COMMENT ON COLUMN hlauth.grants.revoked_by IS 'The principal that revoked it; NULL for hlauth_admin';
COMMENT ON INDEX hlauth.grants_principal_tenant_idx IS 'effective_scopes: the live grants of a principal at one tenant';

-- Every change, in every backend, drops the cache of effective scopes and attributes.
CREATE TRIGGER permissions_changed AFTER INSERT OR UPDATE OR DELETE ON hlauth.permissions
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.rbac_changed();
CREATE TRIGGER permissions_truncated AFTER TRUNCATE ON hlauth.permissions
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.rbac_changed();
CREATE TRIGGER roles_changed AFTER INSERT OR UPDATE OR DELETE ON hlauth.roles
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.rbac_changed();
CREATE TRIGGER roles_truncated AFTER TRUNCATE ON hlauth.roles
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.rbac_changed();
CREATE TRIGGER agency_allowances_changed AFTER INSERT OR UPDATE OR DELETE ON hlauth.agency_allowances
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.rbac_changed();
CREATE TRIGGER agency_allowances_truncated AFTER TRUNCATE ON hlauth.agency_allowances
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.rbac_changed();
CREATE TRIGGER principals_changed AFTER INSERT OR UPDATE OR DELETE ON hlauth.principals
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.rbac_changed();
CREATE TRIGGER principals_truncated AFTER TRUNCATE ON hlauth.principals
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.rbac_changed();
CREATE TRIGGER grants_changed AFTER INSERT OR UPDATE OR DELETE ON hlauth.grants
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.rbac_changed();
CREATE TRIGGER grants_truncated AFTER TRUNCATE ON hlauth.grants
	FOR EACH STATEMENT EXECUTE FUNCTION hlauth_internal.rbac_changed();
COMMENT ON TRIGGER permissions_changed ON hlauth.permissions IS 'Invalidates every backend''s effective-scope cache';
COMMENT ON TRIGGER permissions_truncated ON hlauth.permissions IS 'Invalidates every backend''s effective-scope cache';
COMMENT ON TRIGGER roles_changed ON hlauth.roles IS 'Invalidates every backend''s effective-scope cache';
COMMENT ON TRIGGER roles_truncated ON hlauth.roles IS 'Invalidates every backend''s effective-scope cache';
COMMENT ON TRIGGER agency_allowances_changed ON hlauth.agency_allowances IS 'Invalidates every backend''s effective-scope cache';
COMMENT ON TRIGGER agency_allowances_truncated ON hlauth.agency_allowances IS 'Invalidates every backend''s effective-scope cache';
COMMENT ON TRIGGER principals_changed ON hlauth.principals IS 'Invalidates every backend''s effective-scope and attribute cache';
COMMENT ON TRIGGER principals_truncated ON hlauth.principals IS 'Invalidates every backend''s effective-scope and attribute cache';
COMMENT ON TRIGGER grants_changed ON hlauth.grants IS 'Invalidates every backend''s effective-scope cache';
COMMENT ON TRIGGER grants_truncated ON hlauth.grants IS 'Invalidates every backend''s effective-scope cache';

-- ---------------------------------------------------------------------------
-- Reading: effective scopes and attributes (C, cached per backend)
-- ---------------------------------------------------------------------------
CREATE FUNCTION hlauth.effective_scopes(principal uuid, tenant uuid) RETURNS hlauth.scopes
	AS 'MODULE_PATHNAME', 'hlauth_effective_scopes' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hlauth.effective_scopes(uuid, uuid) IS 'The registered permissions the principal holds at the tenant through current grants there or above (wildcards expanded, implications applied); hlauth_admin, hlauth_trusted, or a principal context that can access the tenant: its own, or anyone''s with hlauth/grants.write';

CREATE FUNCTION hlauth.attribute(name text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'hlauth_attribute' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION hlauth.attribute(text) IS 'The current principal''s attribute (from hlauth.principals.attributes), or NULL with no principal, no row or no such attribute';

-- ---------------------------------------------------------------------------
-- Internal helpers of the functions below (run as the extension owner; no grants)
-- ---------------------------------------------------------------------------
CREATE FUNCTION hlauth_internal.require_admin(what text) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT hlauth_internal.caller_is_admin() THEN
		RAISE EXCEPTION 'permission denied to %', what
			USING ERRCODE = '42501', HINT = 'Only members of hlauth_admin may do this.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.require_admin(text) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.require_admin(text) IS 'Raises 42501 unless the session''s role is a superuser or a member of hlauth_admin';

-- The tenant must be an agency.
CREATE FUNCTION hlauth_internal.require_agency(agency uuid) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	k text;
BEGIN
	SELECT t.kind INTO k FROM hlauth.tenants t WHERE t.id OPERATOR(pg_catalog.=) require_agency.agency;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'agency % does not exist', require_agency.agency USING ERRCODE = '42704';
	END IF;
	IF k OPERATOR(pg_catalog.<>) 'agency' THEN
		RAISE EXCEPTION 'tenant % is an %, not an agency', require_agency.agency, k USING ERRCODE = '22023';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.require_agency(uuid) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.require_agency(uuid) IS 'Raises 42704 for an unknown tenant, 22023 for one that is not an agency';

-- Every scope must be a registered permission, or a wildcard covering at least one.
CREATE FUNCTION hlauth_internal.require_registered(scopes hlauth.scopes) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s text;
	pattern hlauth.scopes;
BEGIN
	FOREACH s IN ARRAY hlauth.scopes_to_array(require_registered.scopes) LOOP
		IF pg_catalog.strpos(s, '*') OPERATOR(pg_catalog.=) 0 THEN
			IF NOT EXISTS (SELECT 1 FROM hlauth.permissions p WHERE p.scope OPERATOR(pg_catalog.=) s) THEN
				RAISE EXCEPTION 'scope "%" is not a registered permission', s
					USING ERRCODE = '22023',
						  HINT = 'Register it with hlauth.register_permission(), or fix its spelling: scopes are case-sensitive.';
			END IF;
		ELSE
			pattern := hlauth.scopes_from_array(ARRAY[s]);
			IF NOT EXISTS (SELECT 1 FROM hlauth.permissions p WHERE hlauth.scopes_grants(pattern, p.scope)) THEN
				RAISE EXCEPTION 'wildcard scope "%" covers no registered permission', s
					USING ERRCODE = '22023',
						  HINT = 'A wildcard must cover at least one permission of hlauth.permissions.';
			END IF;
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.require_registered(hlauth.scopes) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.require_registered(hlauth.scopes) IS 'Raises 22023 for a scope that is not registered, or a wildcard that covers no registered permission';

-- The agency a tenant belongs to (itself for an agency), or NULL for an unknown tenant.
CREATE FUNCTION hlauth_internal.agency_of(tenant uuid) RETURNS uuid
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE t.kind WHEN 'agency' THEN t.id WHEN 'account' THEN t.parent
		   ELSE (SELECT a.parent FROM hlauth.tenants a WHERE a.id OPERATOR(pg_catalog.=) t.parent) END
	  FROM hlauth.tenants t WHERE t.id OPERATOR(pg_catalog.=) agency_of.tenant
$$;
REVOKE ALL ON FUNCTION hlauth_internal.agency_of(uuid) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.agency_of(uuid) IS 'The agency a tenant belongs to (itself for an agency); NULL for an unknown tenant';

-- Is tenant the ancestor itself, or beneath it?
CREATE FUNCTION hlauth_internal.tenant_within(tenant uuid, ancestor uuid) RETURNS boolean
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT tenant_within.tenant OPERATOR(pg_catalog.=) tenant_within.ancestor
		OR EXISTS (SELECT 1 FROM hlauth.tenants t
					WHERE t.id OPERATOR(pg_catalog.=) tenant_within.tenant
					  AND (t.parent OPERATOR(pg_catalog.=) tenant_within.ancestor
						   OR EXISTS (SELECT 1 FROM hlauth.tenants p
									   WHERE p.id OPERATOR(pg_catalog.=) t.parent
										 AND p.parent OPERATOR(pg_catalog.=) tenant_within.ancestor)))
$$;
REVOKE ALL ON FUNCTION hlauth_internal.tenant_within(uuid, uuid) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.tenant_within(uuid, uuid) IS 'Is the tenant the given ancestor itself, or beneath it?';

-- The scopes of wanted (space-separated) that held does not grant; '' when none.
CREATE FUNCTION hlauth_internal.missing_scopes(wanted hlauth.scopes, held hlauth.scopes) RETURNS text
	LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(pg_catalog.string_agg(s, ' ' ORDER BY s COLLATE "C"), '')
	  FROM pg_catalog.unnest(hlauth.scopes_to_array(wanted)) AS s
	 WHERE NOT hlauth.scopes_grants(coalesce(held, ''::hlauth.scopes), s)
$$;
REVOKE ALL ON FUNCTION hlauth_internal.missing_scopes(hlauth.scopes, hlauth.scopes) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.missing_scopes(hlauth.scopes, hlauth.scopes) IS 'The scopes of the first set that the second does not grant, space-separated';

-- The context principal must hold scope (a management permission such as
-- hlauth/grants.write) in its context and by its own grants at tenant.
CREATE FUNCTION hlauth_internal.require_context_scope(scope text, tenant uuid, what text) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT hlauth.has_scope(require_context_scope.scope)
	   OR NOT hlauth.scopes_grants(hlauth.effective_scopes(hlauth.principal(), require_context_scope.tenant),
								   require_context_scope.scope) THEN
		RAISE EXCEPTION 'permission denied: scope "%" is required to %', require_context_scope.scope, what
			USING ERRCODE = '42501',
				  DETAIL = 'The current principal''s scopes, or its grants at that tenant, do not grant it.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.require_context_scope(text, uuid, text) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.require_context_scope(text, uuid, text) IS 'Raises 42501 unless the context principal holds the scope in its context and by its grants at the tenant';

-- The context principal must hold every permission scopes grants (expanded), in its
-- context and by its own grants at tenant: nobody hands out more than they hold.
CREATE FUNCTION hlauth_internal.require_holds(scopes hlauth.scopes, tenant uuid, what text) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	wanted hlauth.scopes := hlauth_internal.expand_scopes(require_holds.scopes);
	missing text;
BEGIN
	missing := hlauth_internal.missing_scopes(wanted,
		hlauth.effective_scopes(hlauth.principal(), require_holds.tenant));
	IF missing OPERATOR(pg_catalog.=) '' THEN
		-- The context holds what its scopes imply, as a role does.
		missing := hlauth_internal.missing_scopes(wanted,
			hlauth_internal.expand_scopes(coalesce(hlauth.scopes(), ''::hlauth.scopes)));
	END IF;
	IF missing OPERATOR(pg_catalog.<>) '' THEN
		RAISE EXCEPTION 'permission denied: % needs scopes the current principal does not hold', what
			USING ERRCODE = '42501',
				  DETAIL = pg_catalog.format('Not held at tenant %s: %s.', require_holds.tenant, missing),
				  HINT = 'Nobody can grant more than they hold themselves.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.require_holds(hlauth.scopes, uuid, text) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.require_holds(hlauth.scopes, uuid, text) IS 'Raises 42501 unless the context principal holds every permission of the set, in its context and by its grants at the tenant';

-- A custom role's permissions must lie within its agency's allowance.
CREATE FUNCTION hlauth_internal.require_within_allowance(scopes hlauth.scopes, agency uuid) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	allowance hlauth.scopes;
	missing text;
BEGIN
	SELECT a.scopes INTO allowance FROM hlauth.agency_allowances a
	 WHERE a.agency_id OPERATOR(pg_catalog.=) require_within_allowance.agency;
	missing := hlauth_internal.missing_scopes(hlauth_internal.expand_scopes(require_within_allowance.scopes),
		hlauth_internal.expand_scopes(coalesce(allowance, ''::hlauth.scopes)));
	IF missing OPERATOR(pg_catalog.<>) '' THEN
		RAISE EXCEPTION 'permission denied: the role''s scopes exceed the allowance of agency %', agency
			USING ERRCODE = '42501',
				  DETAIL = pg_catalog.format('Not allowed: %s.', missing),
				  HINT = CASE WHEN allowance IS NULL
						 THEN 'The agency has no allowance: an hlauth_admin sets one with hlauth.set_agency_allowance().'
						 ELSE 'An hlauth_admin can widen it with hlauth.set_agency_allowance().' END;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.require_within_allowance(hlauth.scopes, uuid) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.require_within_allowance(hlauth.scopes, uuid) IS 'Raises 42501 unless every permission of the set (expanded) is within the agency''s allowance';

-- Who is acting, for the functions that principals may call: NULL for an admin without a
-- principal context; the context principal otherwise (even for an admin: the context says
-- who acts, and its rules apply). Raises 42501 when neither.
CREATE FUNCTION hlauth_internal.acting_principal(what text, admin boolean) RETURNS uuid
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	actor uuid := hlauth.principal();
BEGIN
	IF actor IS NULL AND NOT admin THEN
		RAISE EXCEPTION 'permission denied to %', what
			USING ERRCODE = '42501',
				  DETAIL = 'No principal is authenticated in this transaction, and the role is not hlauth_admin.',
				  HINT = 'Authenticate a principal first, or ask an hlauth_admin.';
	END IF;
	RETURN actor;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.acting_principal(text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.acting_principal(text, boolean) IS 'The context principal; NULL for an admin caller (as its stamp said) without a context; 42501 when neither';

-- ---------------------------------------------------------------------------
-- Managing the registry (hlauth_admin)
-- ---------------------------------------------------------------------------
CREATE FUNCTION hlauth.register_permission(scope text, description text, implies text[] DEFAULT '{}')
	RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	imp text;
	canonical text[];
BEGIN
	PERFORM hlauth_internal.require_admin('register permissions');
	IF register_permission.scope IS NULL OR register_permission.description IS NULL
	   OR register_permission.implies IS NULL THEN
		RAISE EXCEPTION 'scope, description and implies must not be NULL' USING ERRCODE = '22004';
	END IF;
	IF NOT hlauth.scope_is_valid(register_permission.scope) THEN
		PERFORM register_permission.scope::hlauth.scopes;	-- raises 22P02 with the details
		RAISE EXCEPTION 'a permission is exactly one scope, not "%"', register_permission.scope
			USING ERRCODE = '22P02';
	END IF;
	IF pg_catalog.strpos(register_permission.scope, '*') OPERATOR(pg_catalog.<>) 0 THEN
		RAISE EXCEPTION 'a permission is a concrete scope, not the wildcard "%"', register_permission.scope
			USING ERRCODE = '22023', HINT = 'Register each scope the wildcard stands for; roles may then use the wildcard.';
	END IF;
	IF pg_catalog.left(register_permission.scope, 7) OPERATOR(pg_catalog.=) 'hlauth/' THEN
		RAISE EXCEPTION 'the resource "hlauth/" is reserved for hlauth''s own permissions'
			USING ERRCODE = '42939';
	END IF;
	FOREACH imp IN ARRAY register_permission.implies LOOP
		IF imp IS NULL THEN
			RAISE EXCEPTION 'implies must not contain NULL' USING ERRCODE = '22004';
		END IF;
		IF imp OPERATOR(pg_catalog.=) register_permission.scope THEN
			RAISE EXCEPTION 'permission "%" cannot imply itself', imp USING ERRCODE = '22023';
		END IF;
		IF NOT EXISTS (SELECT 1 FROM hlauth.permissions p WHERE p.scope OPERATOR(pg_catalog.=) imp) THEN
			RAISE EXCEPTION 'implied scope "%" is not a registered permission', imp
				USING ERRCODE = '22023', HINT = 'Register the implied permission first (wildcards cannot be implied).';
		END IF;
	END LOOP;
	SELECT coalesce(pg_catalog.array_agg(DISTINCT i ORDER BY i), '{}') INTO canonical
	  FROM pg_catalog.unnest(register_permission.implies) AS i;
	INSERT INTO hlauth.permissions AS p (scope, description, implies)
		VALUES (register_permission.scope, register_permission.description, canonical)
		ON CONFLICT ON CONSTRAINT permissions_pkey
		DO UPDATE SET description = EXCLUDED.description, implies = EXCLUDED.implies;
END
$$;
REVOKE ALL ON FUNCTION hlauth.register_permission(text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.register_permission(text, text, text[]) TO hlauth_admin;
COMMENT ON FUNCTION hlauth.register_permission(text, text, text[]) IS 'Registers a permission (a concrete scope) with its description and the registered permissions it implies, or updates one (hlauth_admin)';

CREATE FUNCTION hlauth.unregister_permission(scope text) RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	users text;
BEGIN
	PERFORM hlauth_internal.require_admin('unregister permissions');
	IF pg_catalog.left(unregister_permission.scope, 7) OPERATOR(pg_catalog.=) 'hlauth/' THEN
		RAISE EXCEPTION 'permission "%" is built into hlauth', unregister_permission.scope
			USING ERRCODE = '42939';
	END IF;
	-- Lock the registry against a concurrent role or registration using the scope.
	PERFORM 1 FROM hlauth.permissions p WHERE p.scope OPERATOR(pg_catalog.=) unregister_permission.scope FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'permission "%" is not registered', unregister_permission.scope USING ERRCODE = '42704';
	END IF;
	SELECT pg_catalog.string_agg(pg_catalog.quote_ident(r.name), ', ' ORDER BY r.name) INTO users
	  FROM hlauth.roles r WHERE unregister_permission.scope OPERATOR(pg_catalog.=) ANY (hlauth.scopes_to_array(r.scopes));
	IF users IS NOT NULL THEN
		RAISE EXCEPTION 'cannot unregister permission "%": roles use it', unregister_permission.scope
			USING ERRCODE = '2BP01', DETAIL = pg_catalog.format('Used by the roles %s.', users),
				  HINT = 'Remove it from those roles first (hlauth.alter_role_scopes).';
	END IF;
	SELECT pg_catalog.string_agg(p.scope, ', ' ORDER BY p.scope) INTO users
	  FROM hlauth.permissions p WHERE unregister_permission.scope OPERATOR(pg_catalog.=) ANY (p.implies);
	IF users IS NOT NULL THEN
		RAISE EXCEPTION 'cannot unregister permission "%": other permissions imply it', unregister_permission.scope
			USING ERRCODE = '2BP01', DETAIL = pg_catalog.format('Implied by %s.', users);
	END IF;
	SELECT pg_catalog.string_agg(a.agency_id::text, ', ' ORDER BY a.agency_id) INTO users
	  FROM hlauth.agency_allowances a WHERE unregister_permission.scope OPERATOR(pg_catalog.=) ANY (hlauth.scopes_to_array(a.scopes));
	IF users IS NOT NULL THEN
		RAISE EXCEPTION 'cannot unregister permission "%": agency allowances name it', unregister_permission.scope
			USING ERRCODE = '2BP01', DETAIL = pg_catalog.format('Named by the allowances of agencies %s.', users);
	END IF;
	DELETE FROM hlauth.permissions p WHERE p.scope OPERATOR(pg_catalog.=) unregister_permission.scope;
END
$$;
REVOKE ALL ON FUNCTION hlauth.unregister_permission(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.unregister_permission(text) TO hlauth_admin;
COMMENT ON FUNCTION hlauth.unregister_permission(text) IS 'Removes a permission no role, allowance or other permission names (hlauth_admin)';

-- ---------------------------------------------------------------------------
-- Allowances and principals (hlauth_admin)
-- ---------------------------------------------------------------------------
CREATE FUNCTION hlauth.set_agency_allowance(agency uuid, scopes hlauth.scopes) RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hlauth_internal.require_admin('set agency allowances');
	IF set_agency_allowance.agency IS NULL THEN
		RAISE EXCEPTION 'agency must not be NULL' USING ERRCODE = '22004';
	END IF;
	PERFORM hlauth_internal.require_agency(set_agency_allowance.agency);
	IF set_agency_allowance.scopes IS NULL THEN
		DELETE FROM hlauth.agency_allowances a WHERE a.agency_id OPERATOR(pg_catalog.=) set_agency_allowance.agency;
		RETURN;
	END IF;
	PERFORM hlauth_internal.require_registered(set_agency_allowance.scopes);
	INSERT INTO hlauth.agency_allowances AS a (agency_id, scopes)
		VALUES (set_agency_allowance.agency, set_agency_allowance.scopes)
		ON CONFLICT ON CONSTRAINT agency_allowances_pkey
		DO UPDATE SET scopes = EXCLUDED.scopes, updated_at = pg_catalog.now();
END
$$;
REVOKE ALL ON FUNCTION hlauth.set_agency_allowance(uuid, hlauth.scopes) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.set_agency_allowance(uuid, hlauth.scopes) TO hlauth_admin;
COMMENT ON FUNCTION hlauth.set_agency_allowance(uuid, hlauth.scopes) IS 'Sets the most an agency''s custom roles may grant (NULL removes it: they grant nothing); takes effect at once (hlauth_admin)';

CREATE FUNCTION hlauth.upsert_principal(id uuid, attributes jsonb DEFAULT '{}') RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hlauth_internal.require_admin('manage principals');
	IF upsert_principal.id IS NULL OR upsert_principal.attributes IS NULL THEN
		RAISE EXCEPTION 'id and attributes must not be NULL' USING ERRCODE = '22004';
	END IF;
	IF pg_catalog.jsonb_typeof(upsert_principal.attributes) OPERATOR(pg_catalog.<>) 'object' THEN
		RAISE EXCEPTION 'attributes must be a JSON object, not %', pg_catalog.jsonb_typeof(upsert_principal.attributes)
			USING ERRCODE = '22023';
	END IF;
	INSERT INTO hlauth.principals AS p (id, attributes)
		VALUES (upsert_principal.id, upsert_principal.attributes)
		ON CONFLICT ON CONSTRAINT principals_pkey DO UPDATE SET attributes = EXCLUDED.attributes;
END
$$;
REVOKE ALL ON FUNCTION hlauth.upsert_principal(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.upsert_principal(uuid, jsonb) TO hlauth_admin;
COMMENT ON FUNCTION hlauth.upsert_principal(uuid, jsonb) IS 'Creates a principal or replaces its attributes (a JSON object); its status is kept (hlauth_admin)';

CREATE FUNCTION hlauth_internal.set_principal_status(principal uuid, new_status text) RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hlauth_internal.require_admin('suspend or reactivate principals');
	IF principal IS NULL THEN
		RAISE EXCEPTION 'principal must not be NULL' USING ERRCODE = '22004';
	END IF;
	INSERT INTO hlauth.principals AS p (id, status) VALUES (set_principal_status.principal, new_status)
		ON CONFLICT ON CONSTRAINT principals_pkey DO UPDATE SET status = EXCLUDED.status;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.set_principal_status(uuid, text) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.set_principal_status(uuid, text) IS 'Sets a principal''s status; through suspend_principal/reactivate_principal only';

CREATE FUNCTION hlauth.suspend_principal(principal uuid) RETURNS void
	LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ SELECT hlauth_internal.set_principal_status(principal, 'suspended') $$;
CREATE FUNCTION hlauth.reactivate_principal(principal uuid) RETURNS void
	LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ SELECT hlauth_internal.set_principal_status(principal, 'active') $$;
REVOKE ALL ON FUNCTION hlauth.suspend_principal(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION hlauth.reactivate_principal(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.suspend_principal(uuid) TO hlauth_admin;
GRANT EXECUTE ON FUNCTION hlauth.reactivate_principal(uuid) TO hlauth_admin;
COMMENT ON FUNCTION hlauth.suspend_principal(uuid) IS 'Suspends a principal: no effective scopes, set_principal refuses it, at once (hlauth_admin)';
COMMENT ON FUNCTION hlauth.reactivate_principal(uuid) IS 'Reactivates a suspended principal (hlauth_admin)';

-- ---------------------------------------------------------------------------
-- Roles: platform roles (hlauth_admin) and agency custom roles (hlauth_admin, or a
-- principal acting at the agency with hlauth/roles.write who holds every scope of the role)
-- ---------------------------------------------------------------------------

-- The rules for a principal defining or changing a custom role of agency.
CREATE FUNCTION hlauth_internal.require_role_definer(agency uuid, scopes hlauth.scopes, what text) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF require_role_definer.agency IS NULL THEN
		RAISE EXCEPTION 'permission denied: only hlauth_admin may % platform roles', what
			USING ERRCODE = '42501', HINT = 'Pass the agency to define one of its custom roles.';
	END IF;
	IF hlauth.tenant() IS DISTINCT FROM require_role_definer.agency
	   OR hlauth.tenant_kind() IS DISTINCT FROM 'agency' THEN
		RAISE EXCEPTION 'permission denied: only a principal acting at agency % may % its custom roles',
			require_role_definer.agency, what
			USING ERRCODE = '42501';
	END IF;
	PERFORM hlauth_internal.require_context_scope('hlauth/roles.write', require_role_definer.agency,
												  what || ' custom roles');
	PERFORM hlauth_internal.require_holds(require_role_definer.scopes, require_role_definer.agency,
										  'this role');
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.require_role_definer(uuid, hlauth.scopes, text) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.require_role_definer(uuid, hlauth.scopes, text) IS 'Raises 42501 unless the context principal may define this custom role of the agency';

CREATE FUNCTION hlauth_internal.create_role(caller bytea, name text, scopes hlauth.scopes, description text DEFAULT NULL,
								   agency uuid DEFAULT NULL) RETURNS uuid
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	admin boolean := hlauth_internal.caller_was_admin(caller);	-- first: redeem the stamp
	actor uuid := hlauth_internal.acting_principal('create roles', admin);
	new_id uuid;
BEGIN
	IF create_role.name IS NULL OR create_role.scopes IS NULL THEN
		RAISE EXCEPTION 'name and scopes must not be NULL' USING ERRCODE = '22004';
	END IF;
	IF actor IS NOT NULL THEN
		PERFORM hlauth_internal.require_role_definer(create_role.agency, create_role.scopes, 'create');
	ELSIF create_role.agency IS NOT NULL THEN
		PERFORM hlauth_internal.require_agency(create_role.agency);
	END IF;
	PERFORM hlauth_internal.require_registered(create_role.scopes);
	IF create_role.agency IS NOT NULL THEN
		PERFORM hlauth_internal.require_within_allowance(create_role.scopes, create_role.agency);
	END IF;
	BEGIN
		INSERT INTO hlauth.roles AS r (name, agency_id, scopes, description)
			VALUES (create_role.name, create_role.agency, create_role.scopes, create_role.description)
			RETURNING r.id INTO new_id;
	EXCEPTION WHEN unique_violation THEN
		RAISE EXCEPTION 'role "%" already exists%', create_role.name,
			CASE WHEN create_role.agency IS NULL THEN ' on the platform' ELSE ' in this agency' END
			USING ERRCODE = '23505';
	END;
	RETURN new_id;
END
$$;
GRANT EXECUTE ON FUNCTION hlauth_internal.create_role(bytea, text, hlauth.scopes, text, uuid) TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.create_role(bytea, text, hlauth.scopes, text, uuid) IS 'The body of hlauth.create_role(), run as the extension owner; its first argument is the caller''s stamp (hlauth_internal.caller_stamp()), which decides whether the caller is an admin';

-- The entry point runs with the caller's rights: it stamps who calls (caller_stamp()) and
-- runs the SECURITY DEFINER body with the stamp.
CREATE FUNCTION hlauth.create_role(name text, scopes hlauth.scopes, description text DEFAULT NULL,
								   agency uuid DEFAULT NULL) RETURNS uuid
	LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN hlauth_internal.create_role(hlauth_internal.caller_stamp(), $1, $2, $3, $4);
END
$$;
COMMENT ON FUNCTION hlauth.create_role(text, hlauth.scopes, text, uuid) IS 'Creates a platform role (agency NULL; hlauth_admin) or an agency custom role (hlauth_admin, or a principal at that agency with hlauth/roles.write holding every scope), within the agency''s allowance; returns its id';

-- The role, checked for a change by the caller; raises when the caller may not change it.
CREATE FUNCTION hlauth_internal.role_for_change(role uuid, actor uuid, new_scopes hlauth.scopes, what text)
	RETURNS hlauth.roles
	LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r hlauth.roles;
BEGIN
	SELECT * INTO r FROM hlauth.roles x WHERE x.id OPERATOR(pg_catalog.=) role_for_change.role FOR UPDATE;
	IF actor IS NULL THEN
		IF NOT FOUND THEN
			RAISE EXCEPTION 'role % does not exist', role_for_change.role USING ERRCODE = '42704';
		END IF;
		RETURN r;
	END IF;
	-- A principal learns nothing about roles outside its agency.
	IF NOT FOUND OR r.agency_id IS DISTINCT FROM hlauth.agency() THEN
		IF FOUND AND r.agency_id IS NULL THEN
			RAISE EXCEPTION 'permission denied: only hlauth_admin may % platform roles', what USING ERRCODE = '42501';
		END IF;
		RAISE EXCEPTION 'permission denied: role % is not a custom role of the current principal''s agency', role_for_change.role
			USING ERRCODE = '42501';
	END IF;
	PERFORM hlauth_internal.require_role_definer(r.agency_id,
		hlauth.scopes_union(r.scopes, coalesce(new_scopes, r.scopes)), what);
	RETURN r;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.role_for_change(uuid, uuid, hlauth.scopes, text) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.role_for_change(uuid, uuid, hlauth.scopes, text) IS 'Locks a role and checks that the caller may change it (a principal: a custom role of its agency, holding its old and new scopes)';

CREATE FUNCTION hlauth_internal.alter_role_scopes(caller bytea, role uuid, scopes hlauth.scopes) RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	admin boolean := hlauth_internal.caller_was_admin(caller);	-- first: redeem the stamp
	actor uuid := hlauth_internal.acting_principal('change roles', admin);
	r hlauth.roles;
BEGIN
	IF alter_role_scopes.role IS NULL OR alter_role_scopes.scopes IS NULL THEN
		RAISE EXCEPTION 'role and scopes must not be NULL' USING ERRCODE = '22004';
	END IF;
	r := hlauth_internal.role_for_change(alter_role_scopes.role, actor, alter_role_scopes.scopes, 'change');
	PERFORM hlauth_internal.require_registered(alter_role_scopes.scopes);
	IF r.agency_id IS NOT NULL THEN
		PERFORM hlauth_internal.require_within_allowance(alter_role_scopes.scopes, r.agency_id);
	END IF;
	UPDATE hlauth.roles x SET scopes = alter_role_scopes.scopes WHERE x.id OPERATOR(pg_catalog.=) r.id;
END
$$;
GRANT EXECUTE ON FUNCTION hlauth_internal.alter_role_scopes(bytea, uuid, hlauth.scopes) TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.alter_role_scopes(bytea, uuid, hlauth.scopes) IS 'The body of hlauth.alter_role_scopes(), run as the extension owner; its first argument is the caller''s stamp (hlauth_internal.caller_stamp()), which decides whether the caller is an admin';

-- The entry point runs with the caller's rights: it stamps who calls (caller_stamp()) and
-- runs the SECURITY DEFINER body with the stamp.
CREATE FUNCTION hlauth.alter_role_scopes(role uuid, scopes hlauth.scopes) RETURNS void
	LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hlauth_internal.alter_role_scopes(hlauth_internal.caller_stamp(), $1, $2);
END
$$;
COMMENT ON FUNCTION hlauth.alter_role_scopes(uuid, hlauth.scopes) IS 'Replaces a role''s scopes; every grant of it changes at once (hlauth_admin; for a custom role also a principal at its agency with hlauth/roles.write holding the old and new scopes)';

CREATE FUNCTION hlauth_internal.drop_role(caller bytea, role uuid) RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	admin boolean := hlauth_internal.caller_was_admin(caller);	-- first: redeem the stamp
	actor uuid := hlauth_internal.acting_principal('drop roles', admin);
	r hlauth.roles;
	n bigint;
BEGIN
	IF drop_role.role IS NULL THEN
		RAISE EXCEPTION 'role must not be NULL' USING ERRCODE = '22004';
	END IF;
	r := hlauth_internal.role_for_change(drop_role.role, actor, NULL, 'drop');
	SELECT pg_catalog.count(*) INTO n FROM hlauth.grants g
	 WHERE g.role_id OPERATOR(pg_catalog.=) r.id AND g.revoked_at IS NULL
	   AND (g.valid_until IS NULL OR g.valid_until OPERATOR(pg_catalog.>) pg_catalog.now());
	IF n OPERATOR(pg_catalog.>) 0 THEN
		RAISE EXCEPTION 'cannot drop role "%": it is still granted', r.name
			USING ERRCODE = '2BP01', DETAIL = pg_catalog.format('%s grants of it are not revoked or expired.', n),
				  HINT = 'Revoke them first with hlauth.revoke_grant().';
	END IF;
	-- Revoked and expired grants of the role go with it.
	DELETE FROM hlauth.grants g WHERE g.role_id OPERATOR(pg_catalog.=) r.id;
	DELETE FROM hlauth.roles x WHERE x.id OPERATOR(pg_catalog.=) r.id;
END
$$;
GRANT EXECUTE ON FUNCTION hlauth_internal.drop_role(bytea, uuid) TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.drop_role(bytea, uuid) IS 'The body of hlauth.drop_role(), run as the extension owner; its first argument is the caller''s stamp (hlauth_internal.caller_stamp()), which decides whether the caller is an admin';

-- The entry point runs with the caller's rights: it stamps who calls (caller_stamp()) and
-- runs the SECURITY DEFINER body with the stamp.
CREATE FUNCTION hlauth.drop_role(role uuid) RETURNS void
	LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hlauth_internal.drop_role(hlauth_internal.caller_stamp(), $1);
END
$$;
COMMENT ON FUNCTION hlauth.drop_role(uuid) IS 'Drops a role that no live grant uses (its revoked and expired grants go with it); hlauth_admin, or for a custom role a principal at its agency with hlauth/roles.write holding its scopes';

-- ---------------------------------------------------------------------------
-- Grants
-- ---------------------------------------------------------------------------

-- The rules for a principal granting (or revoking a grant of) role at tenant.
CREATE FUNCTION hlauth_internal.require_grantor(r hlauth.roles, tenant uuid, grantee uuid, what text) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT hlauth.has_scope('hlauth/grants.write') THEN
		RAISE EXCEPTION 'permission denied: scope "hlauth/grants.write" is required to % roles', what
			USING ERRCODE = '42501';
	END IF;
	IF NOT hlauth.can_access(require_grantor.tenant)
	   OR NOT hlauth_internal.tenant_within(require_grantor.tenant, hlauth.tenant()) THEN
		RAISE EXCEPTION 'permission denied: tenant % is not within the current principal''s reach', require_grantor.tenant
			USING ERRCODE = '42501',
				  DETAIL = 'A principal grants and revokes only at the tenant it acts at, or beneath it.';
	END IF;
	IF grantee IS NOT NULL AND grantee OPERATOR(pg_catalog.=) hlauth.principal() THEN
		RAISE EXCEPTION 'permission denied: a principal cannot grant roles to itself'
			USING ERRCODE = '42501', HINT = 'Ask another principal or an hlauth_admin.';
	END IF;
	IF r.id IS NULL OR (r.agency_id IS NOT NULL AND r.agency_id IS DISTINCT FROM hlauth.agency()) THEN
		RAISE EXCEPTION 'permission denied: the role is not available to the current principal'
			USING ERRCODE = '42501',
				  DETAIL = 'A principal may use platform roles and its own agency''s custom roles.';
	END IF;
	PERFORM hlauth_internal.require_context_scope('hlauth/grants.write', require_grantor.tenant, what || ' roles');
	PERFORM hlauth_internal.require_holds(r.scopes, require_grantor.tenant, pg_catalog.format('role "%s"', r.name));
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.require_grantor(hlauth.roles, uuid, uuid, text) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.require_grantor(hlauth.roles, uuid, uuid, text) IS 'Raises 42501 unless the context principal may grant (or revoke a grant of) the role at the tenant';

CREATE FUNCTION hlauth_internal.grant_role(caller bytea, principal uuid, role uuid, tenant uuid,
								  valid_until timestamptz DEFAULT NULL, valid_from timestamptz DEFAULT NULL) RETURNS uuid
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	admin boolean := hlauth_internal.caller_was_admin(caller);	-- first: redeem the stamp
	actor uuid := hlauth_internal.acting_principal('grant roles', admin);
	r hlauth.roles;
	new_id uuid;
BEGIN
	IF grant_role.principal IS NULL OR grant_role.role IS NULL OR grant_role.tenant IS NULL THEN
		RAISE EXCEPTION 'principal, role and tenant must not be NULL' USING ERRCODE = '22004';
	END IF;
	IF grant_role.valid_until IS NOT NULL AND grant_role.valid_from IS NOT NULL
	   AND grant_role.valid_until OPERATOR(pg_catalog.<=) grant_role.valid_from THEN
		RAISE EXCEPTION 'valid_until must be later than valid_from' USING ERRCODE = '22023';
	END IF;
	-- Lock the role: a concurrent drop_role or alter_role_scopes waits for this grant.
	SELECT * INTO r FROM hlauth.roles x WHERE x.id OPERATOR(pg_catalog.=) grant_role.role FOR SHARE;
	IF actor IS NOT NULL THEN
		PERFORM hlauth_internal.require_grantor(r, grant_role.tenant, grant_role.principal, 'grant');
	ELSE
		IF r.id IS NULL THEN
			RAISE EXCEPTION 'role % does not exist', grant_role.role USING ERRCODE = '42704';
		END IF;
		IF NOT EXISTS (SELECT 1 FROM hlauth.tenants t WHERE t.id OPERATOR(pg_catalog.=) grant_role.tenant) THEN
			RAISE EXCEPTION 'tenant % does not exist', grant_role.tenant USING ERRCODE = '42704';
		END IF;
	END IF;
	IF r.agency_id IS NOT NULL
	   AND r.agency_id IS DISTINCT FROM hlauth_internal.agency_of(grant_role.tenant) THEN
		RAISE EXCEPTION 'permission denied: custom role "%" of agency % cannot be granted outside that agency', r.name, r.agency_id
			USING ERRCODE = '42501';
	END IF;
	INSERT INTO hlauth.grants AS g (principal, role_id, tenant_id, granted_by, valid_from, valid_until)
		VALUES (grant_role.principal, r.id, grant_role.tenant, actor, grant_role.valid_from, grant_role.valid_until)
		RETURNING g.id INTO new_id;
	-- A security event (src/sql/0.2.0/040_events.sql), in this transaction.
	PERFORM hlauth_internal.emit_event('role.granted', grant_role.tenant, pg_catalog.jsonb_build_object(
		'grant_id', new_id, 'principal', grant_role.principal, 'role_id', r.id, 'role', r.name,
		'granted_by', actor, 'valid_from', grant_role.valid_from, 'valid_until', grant_role.valid_until));
	RETURN new_id;
END
$$;
GRANT EXECUTE ON FUNCTION hlauth_internal.grant_role(bytea, uuid, uuid, uuid, timestamptz, timestamptz) TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.grant_role(bytea, uuid, uuid, uuid, timestamptz, timestamptz) IS 'The body of hlauth.grant_role(), run as the extension owner; its first argument is the caller''s stamp (hlauth_internal.caller_stamp()), which decides whether the caller is an admin';

-- The entry point runs with the caller's rights: it stamps who calls (caller_stamp()) and
-- runs the SECURITY DEFINER body with the stamp.
CREATE FUNCTION hlauth.grant_role(principal uuid, role uuid, tenant uuid,
								  valid_until timestamptz DEFAULT NULL, valid_from timestamptz DEFAULT NULL) RETURNS uuid
	LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN hlauth_internal.grant_role(hlauth_internal.caller_stamp(), $1, $2, $3, $4, $5);
END
$$;
COMMENT ON FUNCTION hlauth.grant_role(uuid, uuid, uuid, timestamptz, timestamptz) IS 'Grants a role to a principal at a tenant (and beneath it), optionally time-bound; returns the grant id. hlauth_admin, or a principal with hlauth/grants.write, at or below its tenant, never to itself, holding every scope of the role';

CREATE FUNCTION hlauth_internal.revoke_grant(caller bytea, grant_id uuid) RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	admin boolean := hlauth_internal.caller_was_admin(caller);	-- first: redeem the stamp
	actor uuid := hlauth_internal.acting_principal('revoke grants', admin);
	g hlauth.grants;
	r hlauth.roles;
BEGIN
	IF revoke_grant.grant_id IS NULL THEN
		RAISE EXCEPTION 'grant_id must not be NULL' USING ERRCODE = '22004';
	END IF;
	SELECT * INTO g FROM hlauth.grants x WHERE x.id OPERATOR(pg_catalog.=) revoke_grant.grant_id FOR UPDATE;
	IF NOT FOUND THEN
		IF actor IS NOT NULL THEN
			-- The same answer as for a grant out of reach: no oracle for grant ids.
			RAISE EXCEPTION 'permission denied: grant % is not within the current principal''s reach', revoke_grant.grant_id
				USING ERRCODE = '42501';
		END IF;
		RAISE EXCEPTION 'grant % does not exist', revoke_grant.grant_id USING ERRCODE = '42704';
	END IF;
	IF actor IS NOT NULL THEN
		IF NOT hlauth.can_access(g.tenant_id) OR NOT hlauth_internal.tenant_within(g.tenant_id, hlauth.tenant()) THEN
			RAISE EXCEPTION 'permission denied: grant % is not within the current principal''s reach', revoke_grant.grant_id
				USING ERRCODE = '42501';
		END IF;
		SELECT * INTO r FROM hlauth.roles x WHERE x.id OPERATOR(pg_catalog.=) g.role_id;
		-- A principal may revoke what it could have granted; its own grants too (giving up
		-- rights never escalates).
		PERFORM hlauth_internal.require_grantor(r, g.tenant_id, NULL, 'revoke');
	END IF;
	IF g.revoked_at IS NOT NULL THEN
		RAISE NOTICE 'the grant is already revoked';
		RETURN;
	END IF;
	UPDATE hlauth.grants x SET revoked_at = pg_catalog.now(), revoked_by = actor
	 WHERE x.id OPERATOR(pg_catalog.=) g.id;
END
$$;
GRANT EXECUTE ON FUNCTION hlauth_internal.revoke_grant(bytea, uuid) TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.revoke_grant(bytea, uuid) IS 'The body of hlauth.revoke_grant(), run as the extension owner; its first argument is the caller''s stamp (hlauth_internal.caller_stamp()), which decides whether the caller is an admin';

-- The entry point runs with the caller's rights: it stamps who calls (caller_stamp()) and
-- runs the SECURITY DEFINER body with the stamp.
CREATE FUNCTION hlauth.revoke_grant(grant_id uuid) RETURNS void
	LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hlauth_internal.revoke_grant(hlauth_internal.caller_stamp(), $1);
END
$$;
COMMENT ON FUNCTION hlauth.revoke_grant(uuid) IS 'Revokes a grant, at once; hlauth_admin, or a principal that could have made it (its own grants included)';
