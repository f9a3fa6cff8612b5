# 007_auth_failures.pl: failed authentications become security events, rate-limited.
#
# authenticate() fails with 28000, which rolls back its transaction; the event auth.failed
# is written by a background worker hlauth starts (no shared_preload_libraries), so it
# survives. With hlauth.auth_failure_event_interval = 2 s:
# - a wrong secret for a known key: one event at once (bucket = the key id, its tenant and
#   principal, reason bad_secret, the failing session's role), although the failing
#   transaction rolled back; 20 more failures within the interval write nothing; the next
#   failure after it writes one event carrying their count;
# - two new sessions failing on the same key within an interval: their counts go to one
#   event (the worker adds to the bucket's unclaimed event), not two;
# - a flood of 300 random keys (malformed, unknown ids, another environment's prefix) from
#   one session: counted in at most 2 events for the "*" bucket, not 300;
# - failures on 12 known keys at once: 8 workers while the session lasts, the rest at its end;
# - each reason is named: unknown_key, malformed, wrong_prefix, revoked, expired;
# - no payload holds a presented key or any part of its secret;
# - an app role cannot write such events itself (record_auth_failure is not PUBLIC).
#
# Environment: TESTDIR, PG_REGRESS, PATH with the PostgreSQL 15 binaries.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use HlauthTest;

my $node = PostgreSQL::Test::Cluster->new('authfail');
$node->init;
$node->append_conf('postgresql.conf', "hlauth.auth_failure_event_interval = 2\nlog_statement = none\n");
hl_setup_secret($node);
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE hl');
$node->safe_psql('hl', q{
CREATE EXTENSION hlauth;
CREATE ROLE af_app LOGIN;
GRANT hlauth_trusted TO af_app;
SELECT hlauth.create_tenant('agency', NULL, 'AF', 'af000000-0000-0000-0000-000000000000');
SELECT hlauth.create_tenant('account', 'af000000-0000-0000-0000-000000000000', 'AF1', 'af100000-0000-0000-0000-000000000000');
SELECT hlauth.register_permission('notes.readonly', 'read notes');
SELECT hlauth.grant_role('af200000-0000-0000-0000-0000000000a1', hlauth.create_role('af reader', 'notes.readonly'),
						 'af100000-0000-0000-0000-000000000000');
});

sub issue
{
	my ($expires) = @_;
	return $node->safe_psql('hl', sprintf(
		q{SELECT hlauth.issue_api_key('af200000-0000-0000-0000-0000000000a1', 'af100000-0000-0000-0000-000000000000', 'notes.readonly', %s)},
		$expires // 'NULL'));
}
my $key = issue();
my $kid = $node->safe_psql('hl', "SELECT hlauth.api_key_id('$key'::hlauth.apikey)");
my ($secret_part) = $key =~ /^hlk_live_.{12}(.{22})/;
ok(defined $secret_part, "issued key $kid");
my $bad = $node->safe_psql('hl', "SELECT hlauth_internal.compose_api_key('hlk_live', '$kid', 'BBBBBBBBBBBBBBBBBBBBBB')");

# Runs psql as af_app; every authenticate() in it fails (ON_ERROR_STOP off).
sub fail_as_app
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('hl', $sql, on_error_stop => 0, extra_params => [ '-U', 'af_app' ]);
	return $err;
}

sub events
{
	my ($where) = @_;
	return $node->safe_psql('hl',
		"SELECT count(*) || ':' || coalesce(sum((payload->>'failures')::int), 0) FROM hlauth.security_events WHERE type = 'auth.failed' AND $where");
}

# Waits (up to 30 s) until the query returns the wanted value; returns what it returned.
sub wait_for
{
	my ($sql, $want) = @_;
	my $got;
	foreach (1 .. 300)
	{
		$got = $node->safe_psql('hl', $sql);
		return $got if $got eq $want;
		usleep(100_000);
	}
	return $got;
}

my $bucket = "payload->>'bucket' = '$kid'";

# 1. One failure inside a transaction that rolls back: the event is there anyway.
my $err = fail_as_app("BEGIN; SELECT hlauth.authenticate('$bad'); ROLLBACK;");
like($err, qr/authentication failed/, 'a wrong secret fails with "authentication failed"');
is(wait_for("SELECT count(*) FROM hlauth.security_events WHERE type = 'auth.failed' AND $bucket", '1'),
	'1', 'one auth.failed event although the failing transaction rolled back');
is( $node->safe_psql('hl',
		qq{SELECT tenant_id || ' ' || actor_role || ' ' || (payload->>'principal') || ' ' || (payload->'reasons')::text || ' ' || (payload->>'failures')
		     FROM hlauth.security_events WHERE type = 'auth.failed' AND $bucket}),
	'af100000-0000-0000-0000-000000000000 af_app af200000-0000-0000-0000-0000000000a1 {"bad_secret": 1} 1',
	"the event names the key's tenant and principal, the failing role and the reason");

# 2. 20 more within the interval (one session): nothing new; then one after it: their count.
fail_as_app(join('', map { "SELECT hlauth.authenticate('$bad');\n" } 1 .. 20)
	  . "SELECT pg_sleep(2.2);\nSELECT hlauth.authenticate('$bad');\n");
is(wait_for("SELECT count(*) || ':' || sum((payload->>'failures')::int) FROM hlauth.security_events WHERE type = 'auth.failed' AND $bucket", '2:22'),
	'2:22', "a new session's first failure joins the key's event of the interval; the next 19 wait for the interval and come with the 21st in one new event: 22 in 2 events");

# 3. Two new sessions within one interval: one event between them.
$node->safe_psql('hl', q{UPDATE hlauth.security_events SET claimed_at = now(), claimed_by = 'test' WHERE type = 'auth.failed'});
sleep 2.2;
fail_as_app("SELECT hlauth.authenticate('$bad');");
fail_as_app("SELECT hlauth.authenticate('$bad');");
is(wait_for("SELECT count(*) || ':' || sum((payload->>'failures')::int) FROM hlauth.security_events WHERE type = 'auth.failed' AND $bucket AND claimed_at IS NULL", '1:2'),
	'1:2', 'two sessions failing within an interval: one event with both failures');

# 4. A flood of random keys from one session: counted in the "*" bucket's events, not one each.
# compose_api_key is internal: build the unknown keys as the superuser first.
my $unknown = $node->safe_psql('hl', q{SELECT string_agg(hlauth_internal.compose_api_key('hlk_live', 'Z' || lpad(i::text, 11, '0'), 'CCCCCCCCCCCCCCCCCCCCCC'), ' ' ORDER BY i) FROM generate_series(1, 100) i});
my @unknown = split / /, $unknown;
my $flood = join('', map { "SELECT hlauth.authenticate('garbage$_');\nSELECT hlauth.authenticate('$unknown[$_ - 1]');\n" } 1 .. 100);
my $other_env = $node->safe_psql('hl', q{SELECT hlauth_internal.compose_api_key('hlk_test', 'AAAAAAAAAAAA', 'BBBBBBBBBBBBBBBBBBBBBB')});
$flood .= "SELECT hlauth.authenticate('$other_env');\n" x 100;
fail_as_app($flood);
# The first failure is reported at once; the other 299 when the session ends (it exits
# within the interval, so they are added to the same event, or come in a second one).
is( wait_for(q{SELECT sum((payload->>'failures')::int) FROM hlauth.security_events WHERE type = 'auth.failed' AND payload->>'bucket' = '*'},
		'300'),
	'300', '300 failures with random keys from one session: all counted');
cmp_ok($node->safe_psql('hl', "SELECT count(*) FROM hlauth.security_events WHERE type = 'auth.failed' AND payload->>'bucket' = '*'"),
	'<=', 2, '... in at most 2 events for unknown keys, not 300');
is( $node->safe_psql('hl',
		q{SELECT string_agg(r.key || '=' || r.n, ' ' ORDER BY r.key)
		    FROM (SELECT e.key, sum(e.value::int) AS n
		            FROM hlauth.security_events s, jsonb_each_text(s.payload->'reasons') e
		           WHERE s.type = 'auth.failed' AND s.payload->>'bucket' = '*' GROUP BY e.key) r}),
	'malformed=100 unknown_key=100 wrong_prefix=100', '... by reason: malformed, unknown_key, wrong_prefix');

# 5. Reasons of known keys: revoked, expired.
my $revoked = issue();
my $revoked_id = $node->safe_psql('hl', "SELECT hlauth.api_key_id('$revoked'::hlauth.apikey)");
$node->safe_psql('hl', "SELECT hlauth.revoke_api_key('$revoked_id', 'test')");
fail_as_app("SELECT hlauth.authenticate('$revoked');");
is( wait_for(qq{SELECT (payload->'reasons')::text FROM hlauth.security_events WHERE type = 'auth.failed' AND payload->>'bucket' = '$revoked_id'},
		'{"revoked": 1}'),
	'{"revoked": 1}', 'a revoked key: reason revoked');

my $expired = issue("now() + interval '1 second'");
my $expired_id = $node->safe_psql('hl', "SELECT hlauth.api_key_id('$expired'::hlauth.apikey)");
sleep 1.5;
fail_as_app("SELECT hlauth.authenticate('$expired');");
is( wait_for(qq{SELECT (payload->'reasons')::text FROM hlauth.security_events WHERE type = 'auth.failed' AND payload->>'bucket' = '$expired_id'},
		'{"expired": 1}'),
	'{"expired": 1}', 'an expired key: reason expired');

# 5b. Failures on many known keys at once: at most 8 workers per interval and backend; the
# others are counted and sent when the backend exits.
$node->safe_psql('hl', q{CREATE ROLE af_watch; GRANT hlauth_admin TO af_watch; GRANT af_watch TO af_app;});
my @many = map { issue() } 1 .. 12;
my @many_ids = map { $node->safe_psql('hl', "SELECT hlauth.api_key_id('$_'::hlauth.apikey)") } @many;
my $many_in = join(',', map { "'$_'" } @many_ids);
my @many_bad = map { $node->safe_psql('hl', "SELECT hlauth_internal.compose_api_key('hlk_live', '$_', 'DDDDDDDDDDDDDDDDDDDDDD')") } @many_ids;
my ($mret, $mout, $merr) = $node->psql('hl',
	join('', map { "SELECT hlauth.authenticate('$_');\n" } @many_bad)
	  . "SELECT pg_sleep(1.5);\nSET ROLE af_watch;\n"
	  . "SELECT count(*) FROM hlauth.security_events WHERE type = 'auth.failed' AND payload->>'bucket' IN ($many_in);\n",
	on_error_stop => 0, extra_params => [ '-U', 'af_app' ]);
my $during = (split /\n/, $mout)[-1] // '';
ok($during =~ /^\d+$/ && $during >= 1 && $during <= 8,
	"failures on 12 known keys at once: at most 8 events while the session lasts ($during)");
is( wait_for("SELECT count(*) FROM hlauth.security_events WHERE type = 'auth.failed' AND payload->>'bucket' IN ($many_in)", '12'),
	'12', '... and the other 4 when it ends');

# 5c. Found by a red-team pass. Workers used to serialise on an advisory lock any role could
# take: a role holding it stalled every worker (and with them the worker slots), and the
# failures they carried were never recorded. And a decoy's failure on a key absorbed the
# later failures of another role into the decoy's event, which named only the decoy.
$node->safe_psql('hl', q{CREATE ROLE af_decoy LOGIN;
	UPDATE hlauth.security_events SET claimed_at = now(), claimed_by = 'test' WHERE type = 'auth.failed'});
sleep 2.2;
my $blocker = $node->background_psql('hl', extra_params => [ '-U', 'af_decoy' ]);
$blocker->query_safe(qq{SELECT pg_advisory_lock(hashtext('hlauth.auth_failed:$kid')), pg_advisory_lock(hashtext('hlauth.auth_failed:*'))});
fail_as_app("SELECT hlauth.authenticate('$bad');");
is(wait_for("SELECT count(*) || ':' || sum((payload->>'failures')::int) FROM hlauth.security_events WHERE type = 'auth.failed' AND $bucket AND claimed_at IS NULL", '1:1'),
	'1:1', 'a role holding the advisory locks the workers once used does not hold up the event');
$blocker->quit;
$node->safe_psql('hl', q{UPDATE hlauth.security_events SET claimed_at = now(), claimed_by = 'test' WHERE type = 'auth.failed'});
sleep 2.2;
fail_as_app("SELECT hlauth.authenticate('$bad');");
wait_for("SELECT count(*) FROM hlauth.security_events WHERE type = 'auth.failed' AND $bucket AND claimed_at IS NULL", '1');
$node->psql('hl', "SELECT hlauth.authenticate('$bad');", on_error_stop => 0, extra_params => [ '-U', 'af_decoy' ]);
fail_as_app("SELECT hlauth.authenticate('$bad');\nSELECT hlauth.authenticate('$bad');");
is( wait_for(qq{SELECT string_agg(actor_role || '=' || f, ' ' ORDER BY actor_role)
		     FROM (SELECT actor_role, sum((payload->>'failures')::int) AS f
		             FROM hlauth.security_events WHERE type = 'auth.failed' AND $bucket AND claimed_at IS NULL
		            GROUP BY actor_role) e},
		'af_app=3 af_decoy=1'),
	'af_app=3 af_decoy=1',
	"another role's failure within the interval gets an event of its own: it never hides who else keeps failing");

# 6. A good key still works, and writes no event.
is( $node->safe_psql('hl', "SELECT hlauth.token_id() FROM (SELECT hlauth.authenticate('$key')) a", extra_params => [ '-U', 'af_app' ]),
	$kid, 'the good key authenticates');

# 7. No payload holds a presented key or a secret part.
my $payloads = $node->safe_psql('hl', q{SELECT string_agg(payload::text, E'\n') FROM hlauth.security_events WHERE type = 'auth.failed'});
foreach my $k ($key, $bad, $revoked, $expired, @unknown[0 .. 4])
{
	my ($s) = $k =~ /^hlk_\w+?_.{12}(.{22})/;
	unlike($payloads, qr/\Q$s\E/, 'no secret part of a presented key in any payload');
}
unlike($payloads, qr/BBBBBBBBBBBBBBBBBBBBBB|CCCCCCCCCCCCCCCCCCCCCC/, 'not even a wrong secret');

# 8. App roles cannot write such events.
my ($ret, $out, $err2) = $node->psql('hl',
	q{SELECT hlauth_internal.record_auth_failure('*', '{"malformed": 1}', now(), 10, NULL, 60)},
	extra_params => [ '-U', 'af_app' ]);
like($err2, qr/permission denied/, 'an app role cannot call record_auth_failure');

# 9. The server log has no key either, and no worker error.
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$secret_part\E/, 'the good key is not in the server log (log_statement = none)');
unlike($log, qr/could not record a failed authentication|hlauth event writer.*exited with exit code [^0]/,
	'every worker wrote its event');

done_testing();
