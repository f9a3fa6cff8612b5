-- examples/demo_walkthrough.sql
--	What an app server sees. Run by examples/demo.sh as the app role demo_app (not the
--	owner, not a superuser, no BYPASSRLS) with `psql -e`, so each statement is printed
--	before its result. Some statements fail on purpose: each failure is the point.
--	Writes that succeed are rolled back, so the walkthrough can be replayed as it is:
--		psql -X -e -h <socket dir> -p <port> -U demo_app -d hlauth_demo < examples/demo_walkthrough.sql
--
-- Tenants (see examples/demo_setup.sql):
--	a0000000-...-000000000001  Northwind Agency
--	ac000000-...-000000000011    Northwind / Bakery
--	ab000000-...-000000000111      Bakery / Booking app
--	ac000000-...-000000000012    Northwind / Dental
--	ac000000-...-000000000013    Northwind / Florist  (suspended)
--	a0000000-...-000000000002  Southpaw Agency
--	ac000000-...-000000000021    Southpaw / Gym
--
-- Grants (see examples/demo_setup.sql): set_principal() keeps only the asked scopes the
-- principal holds at that tenant through the roles granted to it there or above it.
--	bob          Contacts viewer (contacts.readonly) at Northwind / Bakery
--	alice        Contacts editor (contacts.write, which implies contacts.readonly) at Northwind Agency
--	carol        Contacts editor at Southpaw / Gym
--	booking app  Booking service (contacts.write calendars/*) at Bakery / Booking app
--	florist      Contacts editor at Northwind / Florist

\set QUIET on
\set VERBOSITY default
\set SHOW_CONTEXT never
\pset null '(null)'
\set QUIET off

\echo
\echo '================================================================================'
\echo '1. No principal context: protected rows are invisible, writes are refused.'
\echo '   Fail closed: a connection that forgot to authenticate sees nothing.'
\echo '================================================================================'
SELECT current_user, hlauth.principal(), hlauth.current_context();
SELECT count(*) FROM contacts;
INSERT INTO contacts (account_id, name, email)
	VALUES ('ac000000-0000-0000-0000-000000000011', 'Eve Sneak', 'eve@bakery.example');
\echo '   -> SQLSTATE' :LAST_ERROR_SQLSTATE

\echo
\echo '================================================================================'
\echo '2. Bob acts at the account Northwind / Bakery with contacts.readonly.'
\echo '   The app server verified bob itself, so it calls the trusted set_principal()'
\echo '   as the first statement of the transaction. Bob holds the role Contacts viewer'
\echo '   at the Bakery, so he gets the scope he asks for. He sees the Bakery only.'
\echo '================================================================================'
BEGIN;
SELECT hlauth.set_principal('b0b00000-0000-0000-0000-000000000002',
							'ac000000-0000-0000-0000-000000000011', 'contacts.readonly');
SELECT hlauth.tenant_kind(), hlauth.agency(), hlauth.account(), hlauth.scopes();
SELECT id, account_id, name, email FROM contacts ORDER BY account_id, id;
COMMIT;

\echo
\echo '================================================================================'
\echo '3. Alice acts at Northwind Agency asking for contacts.* (every action on'
\echo '   contacts). She gets the contacts permissions her role Contacts editor gives'
\echo '   her there: contacts.readonly and contacts.write, never more than she holds.'
\echo '   She sees every active account of her agency: Bakery and Dental. Not the'
\echo '   suspended Florist, and nothing of Southpaw. At an agency there is no default'
\echo '   account, so her writes name the account. contacts is keyed by account, so she'
\echo '   cannot file a row under the agency''s own id.'
\echo '================================================================================'
BEGIN;
SELECT hlauth.set_principal('a11ce000-0000-0000-0000-000000000001',
							'a0000000-0000-0000-0000-000000000001', 'contacts.*');
SELECT hlauth.tenant_kind(), hlauth.agency(), hlauth.account(), hlauth.scopes();
SELECT id, account_id, name, email FROM contacts ORDER BY account_id, id;
SELECT hlauth.has_scope('contacts.write') AS "contacts.write",
	   hlauth.has_scope('Contacts.write') AS "Contacts.write",
	   hlauth.has_scope('calendars/events.write') AS "calendars/events.write";
INSERT INTO contacts (account_id, name, email)
	VALUES ('ac000000-0000-0000-0000-000000000012', 'Dot Enamel', 'dot@dental.example')
	RETURNING account_id, name;
SAVEPOINT agency_row;
INSERT INTO contacts (account_id, name, email)
	VALUES ('a0000000-0000-0000-0000-000000000001', 'Agnes Agency', 'agnes@northwind.example');
\echo '   -> SQLSTATE' :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT agency_row;
SELECT hlauth.accessible_tenants('account') AS accounts, hlauth.accessible_tenants('agency') AS agencies;
ROLLBACK;

\echo
\echo '================================================================================'
\echo '4. The Bakery''s booking app acts as an app principal. An app acts on its'
\echo '   account''s data: it sees the Bakery''s rows, and the tenant column defaults'
\echo '   to its account. (In a table keyed by app, it would see its own app''s rows.)'
\echo '   It asks for calendars/* and gets the calendar permissions its role holds.'
\echo '================================================================================'
BEGIN;
SELECT hlauth.set_principal('5e2f1ce0-0000-0000-0000-000000000004',
							'ab000000-0000-0000-0000-000000000111',
							'contacts.readonly contacts.write calendars/*');
SELECT hlauth.tenant_kind(), hlauth.account(), hlauth.app(), hlauth.scopes();
SELECT id, account_id, name, email FROM contacts ORDER BY account_id, id;
INSERT INTO contacts (name, email) VALUES ('Bea Bun', 'bea@bakery.example')
	RETURNING account_id, name;
SELECT hlauth.has_scope('calendars/events.write') AS "calendars/events.write";
ROLLBACK;

\echo
\echo '================================================================================'
\echo '5. Carol (Southpaw / Gym, may read and write) tries to reach the Bakery.'
\echo '   Writing a row into another tenant is refused by the policy; updating or'
\echo '   deleting its rows finds nothing to update or delete.'
\echo '================================================================================'
BEGIN;
SELECT hlauth.set_principal('ca201000-0000-0000-0000-000000000003',
							'ac000000-0000-0000-0000-000000000021', 'contacts.readonly contacts.write');
SELECT id, account_id, name, email FROM contacts ORDER BY account_id, id;
UPDATE contacts SET name = 'Ann Hacked' WHERE account_id = 'ac000000-0000-0000-0000-000000000011';
DELETE FROM contacts WHERE email = 'ann@bakery.example';
INSERT INTO contacts (account_id, name, email)
	VALUES ('ac000000-0000-0000-0000-000000000011', 'Eve Sneak', 'eve@bakery.example');
\echo '   -> SQLSTATE' :LAST_ERROR_SQLSTATE
ROLLBACK;

\echo
\echo '================================================================================'
\echo '6. Bob holds contacts.readonly but not contacts.write: asking for contacts.write'
\echo '   does not give it to him, and his writes are refused, even on his own'
\echo '   account''s rows.'
\echo '================================================================================'
BEGIN;
SELECT hlauth.set_principal('b0b00000-0000-0000-0000-000000000002',
							'ac000000-0000-0000-0000-000000000011', 'contacts.readonly contacts.write');
SELECT hlauth.scopes();
UPDATE contacts SET name = 'Ann Baker-Smith' WHERE email = 'ann@bakery.example';
\echo '   -> SQLSTATE' :LAST_ERROR_SQLSTATE
ROLLBACK;

\echo
\echo '================================================================================'
\echo '7. Scopes in your own SQL: has_scope() answers, require_scope() raises.'
\echo '================================================================================'
BEGIN;
SELECT hlauth.set_principal('b0b00000-0000-0000-0000-000000000002',
							'ac000000-0000-0000-0000-000000000011', 'contacts.readonly');
SELECT hlauth.has_scope('contacts.readonly') AS can_read, hlauth.has_scope('contacts.write') AS can_write;
SELECT hlauth.require_scope('contacts.readonly');
SELECT hlauth.require_scope('calendars/events.write');
\echo '   -> SQLSTATE' :LAST_ERROR_SQLSTATE
ROLLBACK;

\echo
\echo '================================================================================'
\echo '8. The context lives for one transaction. After COMMIT it is gone, so a pooled'
\echo '   connection handed to the next client carries nothing over. Outside BEGIN,'
\echo '   set_principal() is its own transaction and ends at once.'
\echo '================================================================================'
BEGIN;
SELECT hlauth.set_principal('b0b00000-0000-0000-0000-000000000002',
							'ac000000-0000-0000-0000-000000000011', 'contacts.readonly');
SELECT hlauth.principal(), count(*) FROM contacts;
COMMIT;
SELECT hlauth.principal(), count(*) FROM contacts;
SELECT hlauth.set_principal('b0b00000-0000-0000-0000-000000000002',
							'ac000000-0000-0000-0000-000000000011', 'contacts.readonly');
SELECT hlauth.principal(), count(*) FROM contacts;

\echo
\echo '================================================================================'
\echo '9. A savepoint rolled back restores the outer principal.'
\echo '================================================================================'
BEGIN;
SELECT hlauth.set_principal('b0b00000-0000-0000-0000-000000000002',
							'ac000000-0000-0000-0000-000000000011', 'contacts.readonly');
SAVEPOINT s;
SELECT hlauth.set_principal('ca201000-0000-0000-0000-000000000003',
							'ac000000-0000-0000-0000-000000000021', 'contacts.readonly');
SELECT hlauth.principal(), hlauth.account();
ROLLBACK TO SAVEPOINT s;
SELECT hlauth.principal(), hlauth.account();
COMMIT;

\echo
\echo '================================================================================'
\echo '10. The context cannot be forged: hlauth.context is set only by hlauth itself.'
\echo '================================================================================'
BEGIN;
SET LOCAL hlauth.context = 'v1;p=b0b00000-0000-0000-0000-000000000002';
\echo '   -> SQLSTATE' :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT set_config('hlauth.context', 'v1;p=b0b00000-0000-0000-0000-000000000002', true);
\echo '   -> SQLSTATE' :LAST_ERROR_SQLSTATE
SET hlauth.principal = 'b0b00000-0000-0000-0000-000000000002';
\echo '   -> SQLSTATE' :LAST_ERROR_SQLSTATE

\echo
\echo '================================================================================'
\echo '11. Suspended tenants are cut off: nobody can act at Northwind / Florist, not'
\echo '    even the florist, who holds a role there; and (section 3) its agency does'
\echo '    not see its rows either.'
\echo '================================================================================'
BEGIN;
SELECT hlauth.set_principal('f1025700-0000-0000-0000-000000000005',
							'ac000000-0000-0000-0000-000000000013', 'contacts.*');
\echo '   -> SQLSTATE' :LAST_ERROR_SQLSTATE
ROLLBACK;
\echo

\echo
\echo '================================================================================'
\echo '12. An integration authenticates with an API key instead (any role may: the key is'
\echo '    the credential). The database verifies it and keeps only its HMAC; the context'
\echo '    gets carol, the Gym, method api_key, and the key''s scopes that carol holds.'
\echo '================================================================================'
BEGIN;
SELECT hlauth.authenticate(k) FROM demo_keys WHERE name = 'gym sync';
SELECT hlauth.principal(), hlauth.account(), hlauth.auth_method(), hlauth.scopes();
SELECT name FROM contacts ORDER BY name;
INSERT INTO contacts (name, email) VALUES ('Read Only', 'ro@example.com');
\echo '   -> SQLSTATE' :LAST_ERROR_SQLSTATE
ROLLBACK;
\echo
\echo '   A mistyped key fails before any table is read, with the one error every failure gives:'
BEGIN;
SELECT hlauth.authenticate(left(k, -1) || CASE WHEN right(k, 1) = 'x' THEN 'y' ELSE 'x' END)
  FROM demo_keys WHERE name = 'gym sync';
\echo '   -> SQLSTATE' :LAST_ERROR_SQLSTATE
ROLLBACK;
\echo
\echo '   The app role can list its tenant''s keys, never their hashes:'
BEGIN;
SELECT hlauth.authenticate(k) FROM demo_keys WHERE name = 'gym sync';
SELECT name, scopes, expires_at > now() AS expires_later, revoked_at FROM hlauth.api_keys;
SELECT key FROM hlauth.api_keys;
\echo '   -> SQLSTATE' :LAST_ERROR_SQLSTATE
ROLLBACK;


\echo
\echo '================================================================================'
\echo '13. Every change to contacts is recorded (hlauth.audit). Alice edits every Northwind'
\echo '    account and may read its audit records. She changes an email; an UPDATE that'
\echo '    changes nothing leaves no record. The record says who (principal, method), where'
\echo '    (tenant, primary key) and what (the changed column, old and new).'
\echo '================================================================================'
BEGIN;
SELECT hlauth.set_principal('a11ce000-0000-0000-0000-000000000001',
							'a0000000-0000-0000-0000-000000000001', 'contacts.write hlauth/audit.read');
UPDATE contacts SET email = 'ben@crust.example' WHERE name = 'Ben Crust';
UPDATE contacts SET email = email WHERE name = 'Ben Crust';
COMMIT;
BEGIN;
SELECT hlauth.set_principal('a11ce000-0000-0000-0000-000000000001',
							'a0000000-0000-0000-0000-000000000001', 'contacts.readonly hlauth/audit.read');
SELECT op, table_name, tenant_id, pk, changed, old, new, auth_method,
       principal = hlauth.principal() AS by_alice, length(row_hash) AS hash_bytes
  FROM hlauth.audit_log ORDER BY xid, seq;
ROLLBACK;
\echo
\echo '   Bob reads the Bakery''s contacts but holds no hlauth/audit.read: no records for him.'
BEGIN;
SELECT hlauth.set_principal('b0b00000-0000-0000-0000-000000000002',
							'ac000000-0000-0000-0000-000000000011', 'contacts.readonly hlauth/audit.read');
SELECT hlauth.scopes(), count(*) AS records FROM hlauth.audit_log;
ROLLBACK;
\echo
\echo '   Nobody rewrites the log but the trigger, not even the app role with a context:'
BEGIN;
SELECT hlauth.set_principal('a11ce000-0000-0000-0000-000000000001',
							'a0000000-0000-0000-0000-000000000001', 'contacts.write hlauth/audit.read');
DELETE FROM hlauth.audit_log;
\echo '   -> SQLSTATE' :LAST_ERROR_SQLSTATE
ROLLBACK;
