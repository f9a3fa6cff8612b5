-- events: security events in the outbox hlauth.security_events, written in the same
-- transaction as the change, and consumed with claim_events / ack_events.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_ev_app;
DROP ROLE IF EXISTS regress_ev_admin;
RESET client_min_messages;
CREATE ROLE regress_ev_app;
CREATE ROLE regress_ev_admin IN ROLE hlauth_admin;

-- Start from an empty outbox (earlier files of this run made events too).
DELETE FROM hlauth.security_events;

-- Tenants (ids '7e...'), a permission, a role.
SELECT hlauth.create_tenant('agency', NULL, 'EV', '7e000000-0000-0000-0000-000000000000') IS NOT NULL AS agency;
SELECT hlauth.create_tenant('account', '7e000000-0000-0000-0000-000000000000', 'EV1', '7e100000-0000-0000-0000-000000000000') IS NOT NULL AS account;
SELECT hlauth.register_permission('evnotes.readonly', 'read event-test notes');
SELECT hlauth.create_role('regress ev reader', 'evnotes.readonly') AS ev_role \gset

-- Each change writes one event; the view below hides ids and times.
CREATE TEMP VIEW ev AS
SELECT type, tenant_id, actor_principal, actor_role,
       payload - 'key_id' - 'grant_id' - 'role_id' - 'successor' - 'retire_at' - 'expires_at' AS payload,
       claimed_at IS NULL AS unclaimed, acked_at IS NULL AS pending
  FROM hlauth.security_events ORDER BY id;

SELECT hlauth.grant_role('7eee0000-0000-0000-0000-0000000000a1', :'ev_role', '7e100000-0000-0000-0000-000000000000') AS ev_grant \gset
SELECT hlauth.issue_api_key('7eee0000-0000-0000-0000-0000000000a1', '7e100000-0000-0000-0000-000000000000',
                            'evnotes.readonly', NULL, 'ev key') AS ev_key \gset
SELECT hlauth.rotate_api_key(substr(:'ev_key', 10, 12), interval '1 hour') AS ev_key2 \gset
SELECT hlauth.revoke_api_key(substr(:'ev_key2', 10, 12), 'rotated and then leaked');
SELECT hlauth.revoke_grant(:'ev_grant');
SELECT hlauth.suspend_tenant('7e100000-0000-0000-0000-000000000000');
SELECT hlauth.reactivate_tenant('7e100000-0000-0000-0000-000000000000');
SELECT * FROM ev;

-- The ids in the payloads are the real ones; no event holds a key or a secret.
SELECT bool_and(payload ->> 'key_id' IN (substr(:'ev_key', 10, 12), substr(:'ev_key2', 10, 12)))
         FILTER (WHERE type LIKE 'api_key.%') AS key_ids,
       bool_and(payload ->> 'grant_id' = :'ev_grant') FILTER (WHERE type LIKE 'role.%') AS grant_ids,
       bool_and(position(substr(:'ev_key', 22, 22) IN payload::text) = 0
                AND position(substr(:'ev_key2', 22, 22) IN payload::text) = 0) AS no_secret
  FROM hlauth.security_events;

-- A change that rolls back leaves no event: the outbox is written in the same transaction.
BEGIN;
SELECT hlauth.suspend_tenant('7e100000-0000-0000-0000-000000000000');
SELECT count(*) AS inside FROM hlauth.security_events WHERE type = 'tenant.suspended';
ROLLBACK;
SELECT count(*) AS after_rollback FROM hlauth.security_events WHERE type = 'tenant.suspended';

-- Direct DML by an admin is recorded too (the triggers see every path).
UPDATE hlauth.tenants SET status = 'suspended' WHERE id = '7e100000-0000-0000-0000-000000000000';
UPDATE hlauth.tenants SET status = 'active' WHERE id = '7e100000-0000-0000-0000-000000000000';
SELECT type FROM hlauth.security_events ORDER BY id DESC LIMIT 2;

-- An event made in a principal's context records that principal and the session's role.
SELECT hlauth.grant_role('7eee0000-0000-0000-0000-0000000000b2',
                         hlauth.create_role('regress ev keys', 'hlauth/keys.write evnotes.readonly'),
                         '7e000000-0000-0000-0000-000000000000') IS NOT NULL AS keys_granted;
GRANT hlauth_trusted TO regress_ev_app;
SET ROLE regress_ev_app;
BEGIN;
SELECT hlauth.set_principal('7eee0000-0000-0000-0000-0000000000b2', '7e100000-0000-0000-0000-000000000000',
                            'hlauth/keys.write evnotes.readonly');
SELECT hlauth.issue_api_key('7eee0000-0000-0000-0000-0000000000b2', '7e100000-0000-0000-0000-000000000000',
                            'evnotes.readonly') IS NOT NULL AS issued_in_context;
COMMIT;
-- App roles cannot read, claim, acknowledge or write events.
SELECT count(*) FROM hlauth.security_events;
SELECT * FROM hlauth.claim_events('app');
SELECT hlauth.ack_events('app', ARRAY[1]::bigint[]);
INSERT INTO hlauth.security_events (type, actor_role, payload) VALUES ('forged', 'x', '{}');
SELECT hlauth_internal.emit_event('forged', NULL, '{}');
RESET ROLE;
REVOKE hlauth_trusted FROM regress_ev_app;
SELECT type, actor_principal, actor_role FROM hlauth.security_events ORDER BY id DESC LIMIT 2;

-- Consuming: claim a batch, acknowledge it; claims of another consumer are skipped until
-- their lease runs out; acknowledged events are never handed out again.
SET ROLE regress_ev_admin;
SELECT count(*) AS pending FROM hlauth.security_events WHERE acked_at IS NULL;
SELECT array_agg(id ORDER BY id) AS first_batch FROM hlauth.claim_events('alpha', 3) \gset
SELECT cardinality(:'first_batch'::bigint[]) AS claimed;
SELECT count(*) AS beta_gets FROM hlauth.claim_events('beta', 100, interval '1 hour');
SELECT count(*) AS beta_again FROM hlauth.claim_events('beta', 100, interval '1 hour');
SELECT hlauth.ack_events('beta', :'first_batch'::bigint[]) AS beta_cannot_ack_alphas;
SELECT hlauth.ack_events('alpha', :'first_batch'::bigint[]) AS alpha_acks;
SELECT hlauth.ack_events('alpha', :'first_batch'::bigint[]) AS acked_twice;
-- beta's claims have not expired (1 hour): nothing for gamma; with a tiny lease they have.
SELECT count(*) AS gamma_gets FROM hlauth.claim_events('gamma', 100, interval '1 hour');
SELECT pg_sleep(0.01);
SELECT count(*) AS gamma_after_lease FROM hlauth.claim_events('gamma', 100, interval '1 millisecond');
SELECT count(*) FILTER (WHERE acked_at IS NOT NULL) AS acked, count(*) FILTER (WHERE claimed_by = 'gamma') AS with_gamma
  FROM hlauth.security_events;
SELECT * FROM hlauth.claim_events(NULL);
SELECT * FROM hlauth.claim_events('x', 0);
RESET ROLE;

-- Clean up what this file made (the events stay: nobody deletes the outbox but an admin).
DROP VIEW ev;
DROP ROLE regress_ev_app;
DROP ROLE regress_ev_admin;
