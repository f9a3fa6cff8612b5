-- ---------------------------------------------------------------------------
-- Failed authentications (issue #4): the security event auth.failed, written by a
-- background worker that src/authfail.c starts (the failing transaction rolls back), rate-
-- limited per key id. See docs/reference.md#failed-authentications.
-- ---------------------------------------------------------------------------

-- Called by the worker (as the bootstrap superuser) with the counts of one backend's bucket:
-- adds them to the event of the current interval of the same bucket, role and client when no
-- consumer claimed it yet, else writes a new event and notifies. It never waits: no lock an
-- app role can take (an advisory lock could be: any role could hold the workers up, and with
-- them the events), and an event locked by a consumer or another worker is skipped (a
-- second event of the interval is written instead).
CREATE FUNCTION hlauth_internal.record_auth_failure(bucket text, reasons jsonb, first_at timestamptz,
													role_oid oid, client text, interval_s integer)
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_key text := NULLIF(bucket, '*');
	v_role name := coalesce((SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = role_oid), role_oid::text);
	n bigint := (SELECT coalesce(sum(r.value::bigint), 0) FROM pg_catalog.jsonb_each_text(reasons) r);
	ev hlauth.security_events;
	k record;
	event_id bigint;
BEGIN
	-- Failures of another role or client are never merged into this one's event: a decoy's
	-- failure must not hide who really keeps failing.
	SELECT * INTO ev FROM hlauth.security_events e
	 WHERE e.type = 'auth.failed' AND e.payload->>'bucket' = bucket
	   AND e.actor_role = v_role AND e.payload->>'client' IS NOT DISTINCT FROM client
	   AND e.claimed_at IS NULL AND e.acked_at IS NULL
	   AND e.occurred_at > pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => interval_s)
	 ORDER BY e.id DESC LIMIT 1
	 FOR UPDATE SKIP LOCKED;
	IF FOUND THEN
		UPDATE hlauth.security_events e
		   SET payload = e.payload || pg_catalog.jsonb_build_object(
				'failures', (e.payload->>'failures')::bigint + n,
				'last_at', pg_catalog.clock_timestamp(),
				'reasons', (SELECT pg_catalog.jsonb_object_agg(u.key, u.total)
							  FROM (SELECT c.key, sum(c.value::bigint) AS total
									  FROM (SELECT * FROM pg_catalog.jsonb_each_text(e.payload->'reasons')
											UNION ALL
											SELECT * FROM pg_catalog.jsonb_each_text(reasons)) c
									 GROUP BY c.key) u))
		 WHERE e.id = ev.id;
		RETURN ev.id;
	END IF;
	SELECT a.principal, a.tenant_id INTO k FROM hlauth.api_keys a WHERE a.key_id = v_key;
	INSERT INTO hlauth.security_events (type, tenant_id, actor_principal, actor_role, payload)
	VALUES ('auth.failed', k.tenant_id, NULL, v_role,
			pg_catalog.jsonb_build_object('bucket', bucket, 'key_id', v_key, 'principal', k.principal,
										  'failures', n, 'reasons', reasons, 'first_at', first_at,
										  'last_at', pg_catalog.clock_timestamp(), 'client', client))
	RETURNING id INTO event_id;
	PERFORM pg_catalog.pg_notify('hlauth_events', event_id::text);
	RETURN event_id;
END
$$;
REVOKE ALL ON FUNCTION hlauth_internal.record_auth_failure(text, jsonb, timestamptz, oid, text, integer) FROM PUBLIC;
COMMENT ON FUNCTION hlauth_internal.record_auth_failure(text, jsonb, timestamptz, oid, text, integer) IS 'Writes (or adds to) the auth.failed security event of a bucket (a key id, or * for unknown keys); called by hlauth''s background worker';
