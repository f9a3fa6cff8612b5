-- ---------------------------------------------------------------------------
-- Every backend's caches (tenants, effective scopes and attributes, API keys) are flushed by
-- triggers on hlauth's tables. Triggers that are simply enabled do not fire where
-- session_replication_role = replica: in a session a superuser set so (a bulk script), nor
-- in logical replication's apply worker on a subscriber, which also fires no statement
-- trigger but TRUNCATE's. A revoked grant, a suspended tenant or a revoked key then stayed
-- usable in every backend that had it cached (a red-team pass). So the statement triggers
-- fire whatever the role (ENABLE ALWAYS), and a row trigger of the same function fires in
-- replica mode only (ENABLE REPLICA), where the apply worker sees it; it costs nothing in
-- ordinary sessions.
-- ---------------------------------------------------------------------------
DO $replica$
DECLARE
	t record;
BEGIN
	FOR t IN SELECT * FROM (VALUES
		('tenants', 'tenants_changed', 'INSERT OR UPDATE OR DELETE', 'tenant cache'),
		('permissions', 'rbac_changed', 'INSERT OR UPDATE OR DELETE', 'effective-scope cache'),
		('roles', 'rbac_changed', 'INSERT OR UPDATE OR DELETE', 'effective-scope cache'),
		('agency_allowances', 'rbac_changed', 'INSERT OR UPDATE OR DELETE', 'effective-scope cache'),
		('principals', 'rbac_changed', 'INSERT OR UPDATE OR DELETE', 'effective-scope and attribute cache'),
		('grants', 'rbac_changed', 'INSERT OR UPDATE OR DELETE', 'effective-scope cache'),
		-- (an UPDATE that only stamps a key's use, replicated, flushes the key caches too: rare enough)
		('api_keys', 'api_keys_changed', 'UPDATE OR DELETE', 'API key cache')
	) AS v(tbl, fn, events, cache) LOOP
		EXECUTE pg_catalog.format('ALTER TABLE hlauth.%I ENABLE ALWAYS TRIGGER %I', t.tbl, t.tbl || '_changed');
		EXECUTE pg_catalog.format('ALTER TABLE hlauth.%I ENABLE ALWAYS TRIGGER %I', t.tbl, t.tbl || '_truncated');
		EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER %s ON hlauth.%I FOR EACH ROW EXECUTE FUNCTION hlauth_internal.%I()',
								  t.tbl || '_changed_replica', t.events, t.tbl, t.fn);
		EXECUTE pg_catalog.format('ALTER TABLE hlauth.%I ENABLE REPLICA TRIGGER %I', t.tbl, t.tbl || '_changed_replica');
		EXECUTE pg_catalog.format('COMMENT ON TRIGGER %I ON hlauth.%I IS %L', t.tbl || '_changed_replica', t.tbl,
								  'Invalidates every backend''s ' || t.cache || ' when the change is applied in replica mode (logical replication)');
	END LOOP;
END
$replica$;
