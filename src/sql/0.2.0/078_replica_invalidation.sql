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
ALTER TABLE hlauth.tenants ENABLE ALWAYS TRIGGER tenants_changed;
ALTER TABLE hlauth.tenants ENABLE ALWAYS TRIGGER tenants_truncated;
CREATE TRIGGER tenants_changed_replica AFTER INSERT OR UPDATE OR DELETE ON hlauth.tenants
	FOR EACH ROW EXECUTE FUNCTION hlauth_internal.tenants_changed();
ALTER TABLE hlauth.tenants ENABLE REPLICA TRIGGER tenants_changed_replica;
COMMENT ON TRIGGER tenants_changed_replica ON hlauth.tenants IS 'Invalidates every backend''s tenant cache when the change is applied in replica mode (logical replication)';

ALTER TABLE hlauth.permissions ENABLE ALWAYS TRIGGER permissions_changed;
ALTER TABLE hlauth.permissions ENABLE ALWAYS TRIGGER permissions_truncated;
CREATE TRIGGER permissions_changed_replica AFTER INSERT OR UPDATE OR DELETE ON hlauth.permissions
	FOR EACH ROW EXECUTE FUNCTION hlauth_internal.rbac_changed();
ALTER TABLE hlauth.permissions ENABLE REPLICA TRIGGER permissions_changed_replica;
COMMENT ON TRIGGER permissions_changed_replica ON hlauth.permissions IS 'Invalidates every backend''s effective-scope cache when the change is applied in replica mode (logical replication)';

ALTER TABLE hlauth.roles ENABLE ALWAYS TRIGGER roles_changed;
ALTER TABLE hlauth.roles ENABLE ALWAYS TRIGGER roles_truncated;
CREATE TRIGGER roles_changed_replica AFTER INSERT OR UPDATE OR DELETE ON hlauth.roles
	FOR EACH ROW EXECUTE FUNCTION hlauth_internal.rbac_changed();
ALTER TABLE hlauth.roles ENABLE REPLICA TRIGGER roles_changed_replica;
COMMENT ON TRIGGER roles_changed_replica ON hlauth.roles IS 'Invalidates every backend''s effective-scope cache when the change is applied in replica mode (logical replication)';

ALTER TABLE hlauth.agency_allowances ENABLE ALWAYS TRIGGER agency_allowances_changed;
ALTER TABLE hlauth.agency_allowances ENABLE ALWAYS TRIGGER agency_allowances_truncated;
CREATE TRIGGER agency_allowances_changed_replica AFTER INSERT OR UPDATE OR DELETE ON hlauth.agency_allowances
	FOR EACH ROW EXECUTE FUNCTION hlauth_internal.rbac_changed();
ALTER TABLE hlauth.agency_allowances ENABLE REPLICA TRIGGER agency_allowances_changed_replica;
COMMENT ON TRIGGER agency_allowances_changed_replica ON hlauth.agency_allowances IS 'Invalidates every backend''s effective-scope cache when the change is applied in replica mode (logical replication)';

ALTER TABLE hlauth.principals ENABLE ALWAYS TRIGGER principals_changed;
ALTER TABLE hlauth.principals ENABLE ALWAYS TRIGGER principals_truncated;
CREATE TRIGGER principals_changed_replica AFTER INSERT OR UPDATE OR DELETE ON hlauth.principals
	FOR EACH ROW EXECUTE FUNCTION hlauth_internal.rbac_changed();
ALTER TABLE hlauth.principals ENABLE REPLICA TRIGGER principals_changed_replica;
COMMENT ON TRIGGER principals_changed_replica ON hlauth.principals IS 'Invalidates every backend''s effective-scope and attribute cache when the change is applied in replica mode (logical replication)';

ALTER TABLE hlauth.grants ENABLE ALWAYS TRIGGER grants_changed;
ALTER TABLE hlauth.grants ENABLE ALWAYS TRIGGER grants_truncated;
CREATE TRIGGER grants_changed_replica AFTER INSERT OR UPDATE OR DELETE ON hlauth.grants
	FOR EACH ROW EXECUTE FUNCTION hlauth_internal.rbac_changed();
ALTER TABLE hlauth.grants ENABLE REPLICA TRIGGER grants_changed_replica;
COMMENT ON TRIGGER grants_changed_replica ON hlauth.grants IS 'Invalidates every backend''s effective-scope cache when the change is applied in replica mode (logical replication)';

-- (an UPDATE that only stamps a key's use, replicated, flushes the key caches too: rare enough)
ALTER TABLE hlauth.api_keys ENABLE ALWAYS TRIGGER api_keys_changed;
ALTER TABLE hlauth.api_keys ENABLE ALWAYS TRIGGER api_keys_truncated;
CREATE TRIGGER api_keys_changed_replica AFTER UPDATE OR DELETE ON hlauth.api_keys
	FOR EACH ROW EXECUTE FUNCTION hlauth_internal.api_keys_changed();
ALTER TABLE hlauth.api_keys ENABLE REPLICA TRIGGER api_keys_changed_replica;
COMMENT ON TRIGGER api_keys_changed_replica ON hlauth.api_keys IS 'Invalidates every backend''s API key cache when the change is applied in replica mode (logical replication)';
