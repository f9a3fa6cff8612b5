# 009_key_chain.pl: a key minted in an API key's context inherits that key's bound, whatever
# the minting transaction's snapshot (THREATS.md 15, a token outliving its issuer's demotion).
#
# M (hlauth/keys.write, contacts.write at account A) issues X a key with the same scopes:
# that key is bounded by M. X, in the context of that key, issues itself another key. Found
# by a red-team pass: the bound of the key the context came from was read again from
# hlauth.api_keys under the transaction's snapshot; a REPEATABLE READ transaction that
# began before M's key for X was committed could not see its row, so the new key came out
# bounded by nobody and kept contacts.write after M's demotion. The bound now travels in
# the context, as authenticate() read it when it verified the key:
# - the key X mints in a REPEATABLE READ transaction older than its own key is bounded by M;
# - after M's demotion it authenticates with no scopes.
#
# Environment: TESTDIR, PG_REGRESS, PATH with the PostgreSQL 15 binaries.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use HlauthTest;

my $node = PostgreSQL::Test::Cluster->new('keychain');
$node->init;
hl_setup_secret($node);
$node->start;

my $G = 'c9000000-0000-4000-8000-000000000001';
my $A = 'c9000000-0000-4000-8000-000000000011';
my $M = 'c9000000-0000-4000-8000-0000000000a1';
my $X = 'c9000000-0000-4000-8000-0000000000a2';

$node->safe_psql('postgres', 'CREATE DATABASE hl');
$node->safe_psql('hl', qq{
CREATE EXTENSION hlauth;
CREATE ROLE kc_app LOGIN;
SELECT hlauth.create_tenant('agency', NULL, 'G', '$G');
SELECT hlauth.create_tenant('account', '$G', 'A', '$A');
SELECT hlauth.register_permission('contacts.readonly', 'read contacts');
SELECT hlauth.register_permission('contacts.write', 'edit contacts', ARRAY['contacts.readonly']);
SELECT hlauth.grant_role('$M', hlauth.create_role('kc writer', 'hlauth/keys.write contacts.write'), '$A');
SELECT hlauth.grant_role('$X', (SELECT id FROM hlauth.roles WHERE name = 'kc writer'), '$A');
});
my $key_m = $node->safe_psql('hl', "SELECT hlauth.issue_api_key('$M', '$A', 'hlauth/keys.write contacts.write')");

sub as_app
{
	my ($sql) = @_;
	return $node->safe_psql('hl', $sql, extra_params => [ '-U', 'kc_app' ]);
}

# X's session takes its snapshot first ...
my $x_session = $node->background_psql('hl', extra_params => [ '-U', 'kc_app' ]);
$x_session->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$x_session->query_safe('SELECT 1');	# the snapshot is taken here

# ... then M issues X's key, and commits.
my $key_x = as_app("SELECT hlauth.issue_api_key('$X', '$A', 'hlauth/keys.write contacts.write') FROM (SELECT hlauth.authenticate('$key_m')) a");
like($key_x, qr/^hlk_/, 'M issued X a key');

# X, in the older snapshot, authenticates with it and issues itself another key.
$x_session->query_safe("SELECT hlauth.authenticate('$key_x')");
my $key_x2 = $x_session->query_safe("SELECT hlauth.issue_api_key('$X', '$A', 'contacts.write')");
$x_session->query_safe('COMMIT');
$x_session->quit;
like($key_x2, qr/^hlk_/, "X issued itself a key in a REPEATABLE READ transaction older than its own key");

is($node->safe_psql('hl', qq{SELECT bounded_by::text FROM hlauth.api_keys WHERE key_id = hlauth.api_key_id('$key_x2'::hlauth.apikey)}),
	"{$M}", "that key is bounded by M, through the key it was minted with");

$node->safe_psql('hl', "SELECT hlauth.revoke_grant(id) FROM hlauth.grants WHERE principal = '$M'");
is(as_app("SELECT '[' || hlauth.scopes()::text || ']' FROM (SELECT hlauth.authenticate('$key_x2')) a"), '[]',
	"after M's demotion it authenticates with no scopes");

# A revoked key is not brought back by a parallel query. Found by a fifth red-team pass: in
# parallel mode the key cache read the key under the transaction's snapshot; in a
# REPEATABLE READ transaction older than a revocation, hlauth.attribute() in the leader of
# a parallel plan refilled the cache with the row as it was before, after the revocation's
# invalidation had been processed, and the revoked key authenticated in that backend's
# later transactions. Such an entry now serves its own transaction only.
$node->safe_psql('hl', qq{
CREATE TABLE big AS SELECT g FROM generate_series(1, 200000) g;
GRANT SELECT ON big TO kc_app;
ANALYZE big;
CREATE FUNCTION try_auth(k text) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
	PERFORM hlauth.authenticate(k);
	RETURN 'accepted';
EXCEPTION WHEN invalid_authorization_specification THEN
	RETURN SQLSTATE;
END
\$\$;
GRANT EXECUTE ON FUNCTION try_auth(text) TO kc_app;
});
my $key_r = $node->safe_psql('hl', "SELECT hlauth.issue_api_key('$X', '$A', 'contacts.write')");
my $rr = $node->background_psql('hl', extra_params => [ '-U', 'kc_app' ]);
$rr->query_safe('SET max_parallel_workers_per_gather = 2');
$rr->query_safe('SET parallel_setup_cost = 0');
$rr->query_safe('SET parallel_tuple_cost = 0');
$rr->query_safe('SET min_parallel_table_scan_size = 0');
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is($rr->query_safe("SELECT try_auth('$key_r')"), 'accepted', 'the key authenticates before its revocation');
$node->safe_psql('hl', qq{SELECT hlauth.revoke_api_key(hlauth.api_key_id('$key_r'::hlauth.apikey), 'compromised')});
like($rr->query_safe(q{EXPLAIN (COSTS OFF) SELECT hlauth.attribute('x'), c FROM (SELECT count(*) c FROM big) s}),
	qr/Gather/, 'the query below runs in parallel');
$rr->query_safe(q{SELECT hlauth.attribute('x'), c FROM (SELECT count(*) c FROM big) s});
$rr->query_safe('COMMIT');
is($rr->query_safe("SELECT try_auth('$key_r')"), '28000',
	'after a parallel query under the old snapshot, the revoked key is refused in the next transaction');
$rr->quit;

$node->stop;
done_testing();
