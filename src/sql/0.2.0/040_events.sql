-- ---------------------------------------------------------------------------
-- Security events (issue #4, first part): an outbox table written in the same transaction
-- as the change, NOTIFY hlauth_events with the event's id, and consumers that claim batches
-- with FOR UPDATE SKIP LOCKED and acknowledge them, so nothing is lost when no listener is
-- up.
-- See docs/reference.md#security-events.
-- ---------------------------------------------------------------------------

CREATE TABLE hlauth.security_events (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	occurred_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	xid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
	type text NOT NULL,
	tenant_id uuid,
	actor_principal uuid,
	actor_role name NOT NULL,
	payload jsonb NOT NULL,
	claimed_at timestamptz,
	claimed_by text,
	acked_at timestamptz
);
CREATE INDEX security_events_pending_idx ON hlauth.security_events (id) WHERE acked_at IS NULL;
COMMENT ON TABLE hlauth.security_events IS 'Security events (keys issued, rotated, revoked; roles granted and revoked; tenants suspended and reactivated): an outbox, written in the same transaction as the change';
COMMENT ON COLUMN hlauth.security_events.actor_principal IS 'the principal whose context made the change; NULL for an admin or a trusted server outside any context';
COMMENT ON COLUMN hlauth.security_events.actor_role IS 'the session''s role (unchanged by SECURITY DEFINER)';
COMMENT ON COLUMN hlauth.security_events.payload IS 'the event''s details (docs/reference.md#security-events); never a secret';
COMMENT ON COLUMN hlauth.security_events.claimed_at IS 'when a consumer last claimed it (claims expire after the lease given to claim_events)';
COMMENT ON COLUMN hlauth.security_events.acked_at IS 'when a consumer acknowledged it; NULL while pending';
SELECT pg_catalog.pg_extension_config_dump('hlauth.security_events', '');
SELECT pg_catalog.pg_extension_config_dump('hlauth.security_events_id_seq', '');
ALTER TABLE hlauth.security_events ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON hlauth.security_events FROM PUBLIC;
GRANT SELECT ON hlauth.security_events TO hlauth_admin;
CREATE POLICY security_events_admin ON hlauth.security_events FOR SELECT TO hlauth_admin USING (true);

CREATE FUNCTION hlauth_internal.session_role() RETURNS name
	AS 'MODULE_PATHNAME', 'hlauth_session_role' LANGUAGE C STABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION hlauth_internal.session_role() FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.session_role() IS 'The session''s role (the one SET ROLE chose; SECURITY DEFINER does not change it)';

-- Writes one event and notifies listeners, in the caller's transaction.
CREATE FUNCTION hlauth_internal.emit_event(type text, tenant uuid, payload jsonb) RETURNS bigint
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	event_id bigint;
BEGIN
	INSERT INTO hlauth.security_events (type, tenant_id, actor_principal, actor_role, payload)
	VALUES (type, tenant, hlauth.principal(), hlauth_internal.session_role(), payload)
	RETURNING id INTO event_id;
	PERFORM pg_catalog.pg_notify('hlauth_events', event_id::text);
	RETURN event_id;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.emit_event(text, uuid, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.emit_event(text, uuid, jsonb) IS 'Writes a security event and sends NOTIFY hlauth_events with its id, in the caller''s transaction (internal)';

-- The triggers record changes by any path: revocations, rotations, suspensions, whether
-- made through hlauth's functions or by an admin's UPDATE. Issuing a key and granting a
-- role are recorded by issue_api_key and grant_role: a row INSERTed by pg_restore is not a
-- new security event (and a trigger on INSERT would record every restored row again).
CREATE FUNCTION hlauth_internal.api_key_events() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	base jsonb := pg_catalog.jsonb_build_object('key_id', NEW.key_id, 'principal', NEW.principal,
												'name', NEW.name, 'scopes', NEW.scopes::text);
BEGIN
	IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
		PERFORM hlauth_internal.emit_event('api_key.revoked', NEW.tenant_id,
			base || pg_catalog.jsonb_build_object('reason', NEW.revoked_reason));
	END IF;
	IF NEW.rotated_to IS NOT NULL AND OLD.rotated_to IS NULL THEN
		PERFORM hlauth_internal.emit_event('api_key.rotated', NEW.tenant_id,
			base || pg_catalog.jsonb_build_object('successor', NEW.rotated_to, 'retire_at', NEW.retire_at));
	END IF;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.api_key_events() FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.api_key_events() IS 'Trigger: security events for API keys revoked and rotated (issue_api_key records issuing)';
CREATE TRIGGER api_key_events AFTER UPDATE OF revoked_at, rotated_to ON hlauth.api_keys
	FOR EACH ROW EXECUTE FUNCTION hlauth_internal.api_key_events();

CREATE FUNCTION hlauth_internal.grant_events() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	base jsonb := pg_catalog.jsonb_build_object('grant_id', NEW.id, 'principal', NEW.principal,
												'role_id', NEW.role_id,
												'role', (SELECT r.name FROM hlauth.roles r WHERE r.id = NEW.role_id));
BEGIN
	IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
		PERFORM hlauth_internal.emit_event('role.revoked', NEW.tenant_id,
			base || pg_catalog.jsonb_build_object('revoked_by', NEW.revoked_by));
	END IF;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.grant_events() FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.grant_events() IS 'Trigger: security events for roles revoked (grant_role records granting)';
CREATE TRIGGER grant_events AFTER UPDATE OF revoked_at ON hlauth.grants
	FOR EACH ROW EXECUTE FUNCTION hlauth_internal.grant_events();

CREATE FUNCTION hlauth_internal.tenant_events() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NEW.status IS DISTINCT FROM OLD.status THEN
		PERFORM hlauth_internal.emit_event(
			CASE NEW.status WHEN 'suspended' THEN 'tenant.suspended' ELSE 'tenant.reactivated' END,
			NEW.id, pg_catalog.jsonb_build_object('kind', NEW.kind, 'name', NEW.name, 'parent', NEW.parent));
	END IF;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.tenant_events() FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.tenant_events() IS 'Trigger: security events for tenants suspended and reactivated';
CREATE TRIGGER tenant_events AFTER UPDATE OF status ON hlauth.tenants
	FOR EACH ROW EXECUTE FUNCTION hlauth_internal.tenant_events();

-- Consumers: claim a batch (never waiting for another consumer's rows), then acknowledge.
CREATE FUNCTION hlauth.claim_events(consumer text, batch integer DEFAULT 100,
									lease interval DEFAULT '5 minutes')
	RETURNS SETOF hlauth.security_events
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT hlauth_internal.caller_is_admin() THEN
		RAISE EXCEPTION 'permission denied: only hlauth_admin may consume security events'
			USING ERRCODE = '42501';
	END IF;
	IF consumer IS NULL OR batch IS NULL OR batch < 1 OR lease IS NULL OR lease <= interval '0' THEN
		RAISE EXCEPTION 'a consumer name, a positive batch and a positive lease are required'
			USING ERRCODE = '22023';
	END IF;
	RETURN QUERY
	UPDATE hlauth.security_events e
	   SET claimed_at = pg_catalog.clock_timestamp(), claimed_by = consumer
	 WHERE e.id IN (SELECT p.id FROM hlauth.security_events p
					 WHERE p.acked_at IS NULL
					   AND (p.claimed_at IS NULL OR p.claimed_at < pg_catalog.clock_timestamp() - lease)
					 ORDER BY p.id LIMIT batch
					 FOR UPDATE SKIP LOCKED)
	RETURNING e.*;
END
$$;
-- EXECUTE only for hlauth_admin: PostgreSQL checks it against the calling role, so another
-- role's SECURITY DEFINER code that an admin session runs cannot consume events; the check
-- inside (the session role) is the second gate.
REVOKE ALL ON FUNCTION hlauth.claim_events(text, integer, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.claim_events(text, integer, interval) TO hlauth_admin;
COMMENT ON FUNCTION hlauth.claim_events(text, integer, interval) IS 'Claims up to batch pending security events for a consumer, skipping rows other consumers hold; an unacknowledged claim expires after lease (hlauth_admin)';

CREATE FUNCTION hlauth.ack_events(consumer text, ids bigint[]) RETURNS integer
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n integer;
BEGIN
	IF NOT hlauth_internal.caller_is_admin() THEN
		RAISE EXCEPTION 'permission denied: only hlauth_admin may consume security events'
			USING ERRCODE = '42501';
	END IF;
	UPDATE hlauth.security_events e SET acked_at = pg_catalog.clock_timestamp()
	 WHERE e.id = ANY (ids) AND e.acked_at IS NULL AND e.claimed_by = consumer;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION hlauth.ack_events(text, bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hlauth.ack_events(text, bigint[]) TO hlauth_admin;
COMMENT ON FUNCTION hlauth.ack_events(text, bigint[]) IS 'Acknowledges security events this consumer claimed; returns how many (hlauth_admin)';
