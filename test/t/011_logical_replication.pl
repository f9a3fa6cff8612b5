# 011_logical_replication.pl: on a logical-replication subscriber, a revocation applied from
# the publisher reaches the very next transaction of a backend that had it cached.
#
# Every backend caches tenants, effective scopes and API keys; triggers on hlauth's tables
# flush those caches (CacheInvalidateRelcacheByRelid). The apply worker of a subscription
# runs in replica mode: it fires only row triggers that are ENABLE REPLICA or ENABLE ALWAYS,
# and never a statement trigger. With only the ordinary statement triggers, a grant revoked,
# a tenant suspended or an API key revoked on the publisher was applied on the subscriber
# but stayed usable there in every backend that had it cached (a red-team pass). The row
# triggers *_changed_replica (src/sql/0.2.0/078_replica_invalidation.sql, ENABLE REPLICA)
# now flush them when the apply worker writes the row.
#
# Two nodes, database hl on both, the same server secret (so a key issued on the publisher
# verifies on the subscriber), the same registered permissions (hlauth.permissions is not
# published). The publisher publishes hlauth.tenants, roles, grants, principals and
# api_keys; the subscriber subscribes. All tenants, roles, grants and keys are made on the
# publisher. One long-lived session of an app role (LOGIN, member of hlauth_trusted) on the
# subscriber, for each change:
#
#   grant    set_principal at account A gets contacts.write (the control, warming the
#            cache); the publisher revokes the grant (revoke_grant); once applied, the same
#            session's next set_principal gets no scopes.
#   tenant   set_principal at account B succeeds (the control); the publisher suspends B
#            (suspend_tenant); once applied, the same session's next set_principal is
#            refused (42501, tenant not active).
#   key      authenticate with a key of account C succeeds with its scopes (the control);
#            the publisher revokes the key (revoke_api_key); once applied, the same
#            session's next authenticate fails (28000).
#
# Each case then also asks a new backend (cold caches): it must agree, which shows the change
# itself was applied and only the long-lived backend's cache could be at fault.
#
# "Once applied": $publisher->wait_for_catchup(subscription) returns once the subscriber has
# reported the change's commit as flushed, which it does only after the apply worker's
# transaction (and its invalidations) committed; the test then checks the subscriber's row.
#
# Environment: TESTDIR, PG_REGRESS, PATH with the PostgreSQL 15 binaries.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use HlauthTest;

my $G  = 'cb000000-0000-4000-8000-000000000001';    # agency
my $A  = 'cb000000-0000-4000-8000-000000000011';    # account: the grant case
my $B  = 'cb000000-0000-4000-8000-000000000012';    # account: the tenant case
my $C  = 'cb000000-0000-4000-8000-000000000013';    # account: the key case
my $PA = 'cb000000-0000-4000-8000-0000000000a1';
my $PB = 'cb000000-0000-4000-8000-0000000000a2';
my $PC = 'cb000000-0000-4000-8000-0000000000a3';
my $sub = 'hl_sub';

# ---------------------------------------------------------------------------
# Two nodes, one server secret
# ---------------------------------------------------------------------------
my $publisher = PostgreSQL::Test::Cluster->new('publisher');
$publisher->init(allows_streaming => 'logical');
my ($secret_path) = hl_setup_secret($publisher);
$publisher->start;

my $subscriber = PostgreSQL::Test::Cluster->new('subscriber');
$subscriber->init;
$subscriber->append_conf('postgresql.conf', "hlauth.secret_file = '$secret_path'");
$subscriber->start;

# The same extension and permissions on both; on the subscriber, an app role and two helpers
# that report what a context got, or the SQLSTATE of the refusal.
for my $node ($publisher, $subscriber)
{
	$node->safe_psql('postgres', 'CREATE DATABASE hl');
	$node->safe_psql('hl', q{
CREATE EXTENSION hlauth;
SELECT hlauth.register_permission('contacts.readonly', 'read contacts');
SELECT hlauth.register_permission('contacts.write', 'edit contacts', ARRAY['contacts.readonly']);
});
}
$subscriber->safe_psql('hl', q{
CREATE ROLE lr_app LOGIN;
GRANT hlauth_trusted TO lr_app;
CREATE FUNCTION try_principal(p uuid, t uuid, s text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM hlauth.set_principal(p, t, s::hlauth.scopes);
	RETURN 'scopes [' || hlauth.scopes()::text || ']';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;
CREATE FUNCTION try_key(k text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM hlauth.authenticate(k);
	RETURN 'scopes [' || hlauth.scopes()::text || ']';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;
GRANT EXECUTE ON FUNCTION try_principal(uuid, uuid, text), try_key(text) TO lr_app;
});

# The published tables are empty after CREATE EXTENSION (only hlauth.permissions has rows,
# and it is not published), so the initial copy has nothing to conflict with.
$publisher->safe_psql('hl', q{
CREATE PUBLICATION hl_pub FOR TABLE hlauth.tenants, hlauth.roles, hlauth.grants,
	hlauth.principals, hlauth.api_keys;
});
my $pub_connstr = $publisher->connstr . ' dbname=hl';
$subscriber->safe_psql('hl',
	"CREATE SUBSCRIPTION $sub CONNECTION '$pub_connstr' PUBLICATION hl_pub");
$subscriber->wait_for_subscription_sync($publisher, $sub, 'hl');

# Everything below is made on the publisher and reaches the subscriber through the apply
# worker.
$publisher->safe_psql('hl', qq{
SELECT hlauth.create_tenant('agency', NULL, 'G', '$G');
SELECT hlauth.create_tenant('account', '$G', 'A', '$A');
SELECT hlauth.create_tenant('account', '$G', 'B', '$B');
SELECT hlauth.create_tenant('account', '$G', 'C', '$C');
SELECT hlauth.create_role('lr editor', 'contacts.write');
SELECT hlauth.grant_role(p, (SELECT id FROM hlauth.roles WHERE name = 'lr editor'), t)
  FROM (VALUES ('$PA'::uuid, '$A'::uuid), ('$PB', '$B'), ('$PC', '$C')) v(p, t);
});
my $key = $publisher->safe_psql('hl', "SELECT hlauth.issue_api_key('$PC', '$C', 'contacts.write')");
like($key, qr/^hlk_/, 'the publisher issued a key at account C');
$publisher->wait_for_catchup($sub);
is($subscriber->safe_psql('hl', qq{
SELECT (SELECT count(*) FROM hlauth.tenants WHERE id IN ('$G', '$A', '$B', '$C'))
    || ' ' || (SELECT count(*) FROM hlauth.grants WHERE revoked_at IS NULL)
    || ' ' || (SELECT count(*) FROM hlauth.api_keys WHERE key_id = hlauth.api_key_id('$key'::hlauth.apikey))}),
	'4 3 1', 'the subscriber has the tenants, grants and key');

# The long-lived backend on the subscriber. Each query is its own transaction.
my $session = $subscriber->background_psql('hl', extra_params => [ '-U', 'lr_app' ]);
my $backend_pid = $session->query_safe('SELECT pg_backend_pid()');

# A query as the app role in a new subscriber backend (cold caches).
sub in_new_backend
{
	my ($sql) = @_;
	return $subscriber->safe_psql('hl', $sql, extra_params => [ '-U', 'lr_app' ]);
}

# Runs $change on the publisher, waits until the subscriber has applied it, and checks on
# the subscriber that it has (with $applied_check, which returns 't').
sub apply_on_subscriber
{
	my ($change, $applied_check, $what) = @_;
	$publisher->safe_psql('hl', $change);
	$publisher->wait_for_catchup($sub);
	is($subscriber->safe_psql('hl', $applied_check), 't', "$what is applied on the subscriber");
}

# ---------------------------------------------------------------------------
# grant: a grant revoked on the publisher
# ---------------------------------------------------------------------------
my $scopes_a = $session->query_safe("SELECT try_principal('$PA', '$A', 'contacts.write')");
like($scopes_a, qr/^scopes \[.*\bcontacts\.write\b.*\]$/,
	'grant: before the revocation, set_principal at A gets contacts.write (the cache is warm)');
is($session->query_safe("SELECT try_principal('$PA', '$A', 'contacts.write')"), $scopes_a,
	'grant: a second transaction of the same backend gets the same scopes');

apply_on_subscriber(
	"SELECT hlauth.revoke_grant(id) FROM hlauth.grants WHERE principal = '$PA'",
	"SELECT bool_and(revoked_at IS NOT NULL) FROM hlauth.grants WHERE principal = '$PA'",
	'grant: the revocation');
is($session->query_safe("SELECT try_principal('$PA', '$A', 'contacts.write')"), 'scopes []',
	'grant: the same backend\'s next set_principal at A gets no scopes');
is(in_new_backend("SELECT try_principal('$PA', '$A', 'contacts.write')"), 'scopes []',
	'grant: a new backend agrees');

# ---------------------------------------------------------------------------
# tenant: a tenant suspended on the publisher
# ---------------------------------------------------------------------------
like($session->query_safe("SELECT try_principal('$PB', '$B', 'contacts.write')"),
	qr/^scopes \[.*\bcontacts\.write\b.*\]$/,
	'tenant: before the suspension, set_principal at B succeeds with contacts.write');

apply_on_subscriber(
	"SELECT hlauth.suspend_tenant('$B')",
	"SELECT status = 'suspended' FROM hlauth.tenants WHERE id = '$B'",
	'tenant: the suspension');
is($session->query_safe("SELECT try_principal('$PB', '$B', 'contacts.write')"), '42501',
	'tenant: the same backend\'s next set_principal at B is refused (tenant not active)');
is(in_new_backend("SELECT try_principal('$PB', '$B', 'contacts.write')"), '42501',
	'tenant: a new backend agrees');

# ---------------------------------------------------------------------------
# key: an API key revoked on the publisher
# ---------------------------------------------------------------------------
like($session->query_safe("SELECT try_key('$key')"), qr/^scopes \[.*\bcontacts\.write\b.*\]$/,
	'key: before the revocation, the key authenticates with contacts.write');

apply_on_subscriber(
	qq{SELECT hlauth.revoke_api_key(hlauth.api_key_id('$key'::hlauth.apikey), 'compromised')},
	qq{SELECT revoked_at IS NOT NULL FROM hlauth.api_keys WHERE key_id = hlauth.api_key_id('$key'::hlauth.apikey)},
	'key: the revocation');
is($session->query_safe("SELECT try_key('$key')"), '28000',
	'key: the same backend\'s next authenticate with the key fails');
is(in_new_backend("SELECT try_key('$key')"), '28000', 'key: a new backend agrees');

# All of it in one backend, never reconnected.
is($session->query_safe('SELECT pg_backend_pid()'), $backend_pid,
	'every check ran in the same subscriber backend');
$session->quit;

$subscriber->stop;
$publisher->stop;
done_testing();
