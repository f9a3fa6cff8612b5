-- ---------------------------------------------------------------------------
-- Before anything else: schema hlauth must be the installing superusers' alone.
-- hlauth.control names the schema, and CREATE EXTENSION uses one that already exists. A
-- role that could create it first (CREATE on the database is enough) would own it: it
-- could add functions that calls with untyped literals resolve to before hlauth's own,
-- tables under names hlauth looks up, or drop the schema and the extension with it. So the
-- schema must be owned by a superuser, no other role may create in it, and everything in
-- it must belong to superusers. Run at the start of the install and of every update.
-- Every operator and function here is qualified: nothing resolves through the schema.
-- ---------------------------------------------------------------------------
DO $schema_check$
DECLARE
	nsp oid;
	owner_name text;
	owner_super boolean;
	creators text;
	foreign_objects text;
BEGIN
	SELECT n.oid, r.rolname::text, r.rolsuper INTO nsp, owner_name, owner_super
	  FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
	 WHERE n.nspname OPERATOR(pg_catalog.=) 'hlauth'::pg_catalog.name;
	IF nsp IS NULL THEN
		RETURN;
	END IF;
	IF NOT owner_super THEN
		RAISE EXCEPTION USING ERRCODE = '42501',
			MESSAGE = pg_catalog.format('schema hlauth is owned by role %s, which is not a superuser', owner_name),
			DETAIL = 'hlauth installs into schema hlauth; whoever owns it could change what calls to hlauth''s functions run, or drop the extension.',
			HINT = 'Check what the schema holds, then ALTER SCHEMA hlauth OWNER TO a superuser (or drop it) and run the command again.';
	END IF;
	SELECT pg_catalog.string_agg(DISTINCT CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC'
	                                           ELSE pg_catalog.quote_ident(g.rolname::text) END, ', ')
	  INTO creators
	  FROM pg_catalog.pg_namespace n,
	       LATERAL pg_catalog.aclexplode(n.nspacl) a
	       LEFT JOIN pg_catalog.pg_roles g ON g.oid OPERATOR(pg_catalog.=) a.grantee
	 WHERE n.oid OPERATOR(pg_catalog.=) nsp
	   AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'::pg_catalog.text
	   AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner
	   AND NOT COALESCE(g.rolsuper, false);
	IF creators IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = '42501',
			MESSAGE = pg_catalog.format('roles other than superusers may create objects in schema hlauth: %s', creators),
			DETAIL = 'hlauth installs into schema hlauth; a role that can create in it could change what calls to hlauth''s functions run.',
			HINT = 'Check what the schema holds, then REVOKE CREATE ON SCHEMA hlauth FROM those roles and run the command again.';
	END IF;
	SELECT pg_catalog.string_agg(o.what, ', ' ORDER BY o.what) INTO foreign_objects
	  FROM (SELECT pg_catalog.format('function %s', p.oid::pg_catalog.regprocedure) AS what, p.proowner AS owner
	          FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) nsp
	        UNION ALL
	        SELECT pg_catalog.format('operator %s', o.oid::pg_catalog.regoperator), o.oprowner
	          FROM pg_catalog.pg_operator o WHERE o.oprnamespace OPERATOR(pg_catalog.=) nsp
	        UNION ALL
	        SELECT pg_catalog.format('relation %s', c.oid::pg_catalog.regclass), c.relowner
	          FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp
	        UNION ALL
	        SELECT pg_catalog.format('type %s', t.oid::pg_catalog.regtype), t.typowner
	          FROM pg_catalog.pg_type t WHERE t.typnamespace OPERATOR(pg_catalog.=) nsp
	        UNION ALL
	        SELECT pg_catalog.format('collation %s', c.oid::pg_catalog.regcollation), c.collowner
	          FROM pg_catalog.pg_collation c WHERE c.collnamespace OPERATOR(pg_catalog.=) nsp
	        UNION ALL
	        SELECT pg_catalog.format('conversion %s', c.conname), c.conowner
	          FROM pg_catalog.pg_conversion c WHERE c.connamespace OPERATOR(pg_catalog.=) nsp
	        UNION ALL
	        SELECT pg_catalog.format('operator class %s', c.opcname), c.opcowner
	          FROM pg_catalog.pg_opclass c WHERE c.opcnamespace OPERATOR(pg_catalog.=) nsp
	        UNION ALL
	        SELECT pg_catalog.format('operator family %s', f.opfname), f.opfowner
	          FROM pg_catalog.pg_opfamily f WHERE f.opfnamespace OPERATOR(pg_catalog.=) nsp
	        UNION ALL
	        SELECT pg_catalog.format('text search configuration %s', c.cfgname), c.cfgowner
	          FROM pg_catalog.pg_ts_config c WHERE c.cfgnamespace OPERATOR(pg_catalog.=) nsp
	        UNION ALL
	        SELECT pg_catalog.format('text search dictionary %s', d.dictname), d.dictowner
	          FROM pg_catalog.pg_ts_dict d WHERE d.dictnamespace OPERATOR(pg_catalog.=) nsp
	        UNION ALL
	        SELECT pg_catalog.format('statistics object %s', s.stxname), s.stxowner
	          FROM pg_catalog.pg_statistic_ext s WHERE s.stxnamespace OPERATOR(pg_catalog.=) nsp
	        UNION ALL
	        -- a trusted extension's objects belong to the bootstrap superuser, the extension
	        -- to whoever created it, who may drop it and whose operators would sit in hlauth
	        SELECT pg_catalog.format('extension %s', e.extname), e.extowner
	          FROM pg_catalog.pg_extension e WHERE e.extnamespace OPERATOR(pg_catalog.=) nsp) o
	  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) o.owner
	 WHERE NOT r.rolsuper;
	IF foreign_objects IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = '42501',
			MESSAGE = 'schema hlauth holds objects of roles that are not superusers',
			DETAIL = pg_catalog.format('%s.', pg_catalog.left(foreign_objects, 2000)),
			HINT = 'hlauth installs into schema hlauth; drop those objects (they were not made by hlauth) and run the command again.';
	END IF;
END
$schema_check$;
