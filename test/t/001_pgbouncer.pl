# 001_pgbouncer.pl: the principal context never leaks across a real PgBouncer in
# transaction pooling mode.
#
# A cluster holds 2 agencies with 10 accounts each and a protected table with a known
# number of rows per account. Each tenant has a principal of its own, which holds the
# platform role "notes" (notes.read notes.write) at its agency: set_principal() keeps only
# the asked scopes a principal holds through its grants (issue #3). A PgBouncer
# (pool_mode = transaction, default_pool_size = 4) sits in front of it, so a handful of
# server connections serve every client in turn.
# pgbench runs 8 clients through it, in simple and then extended query mode, mixing:
#   acct.sql       BEGIN; set_principal at a random account (as its principal); check the
#                  context and the visible rows; insert an event (tenant column from the
#                  context); COMMIT
#   agency.sql     the same at a random agency (sees all of its accounts, nothing else)
#   noctx.sql      a transaction with no set_principal: no context, no rows, no write
#   rollback.sql   set_principal and a write, then ROLLBACK
#   autocommit.sql set_principal outside BEGIN, then a check in the next (implicit) transaction
# Any check that fails inserts a row into the unprotected table violations (with the details)
# instead of aborting the client. The test then asserts: pgbench processed every
# transaction with none failed (>= 10,000 in total), no violations, every event row carries
# the tenant its transaction claimed, the events match the committed acct.sql transactions
# one for one, and at most default_pool_size backends served all of it (so each served many
# tenants).
# The committed acct.sql transactions are counted by the server (a ledger row written in the
# same transaction), not by pgbench: pgbench's per-script counters are shared by its threads
# without a lock ("XXX could use a mutex here, but we choose not to" in pgbench.c), so with
# -j 2 they can lose an increment, and did (CI saw 15,999 per-script for 16,000 processed).
#
# Environment: TESTDIR (writable), PG_REGRESS (for Cluster->init), PATH with the PostgreSQL
# 15 binaries and /usr/sbin/pgbouncer (or PGBOUNCER=path). HL_PGBENCH_SEED fixes the seed.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use HlauthTest;

my $pgbouncer_bin = $ENV{PGBOUNCER} // '/usr/sbin/pgbouncer';
plan skip_all => "pgbouncer not found at $pgbouncer_bin" unless -x $pgbouncer_bin;

my $clients      = 8;
my $threads      = 2;
my $per_client   = 1000;   # per pgbench run; two runs: 2 * 8 * 1000 = 16,000 transactions
my $pool_size    = 4;
my $seed         = $ENV{HL_PGBENCH_SEED} // int(rand(2**31));
note "pgbench random seed: $seed (set HL_PGBENCH_SEED to repeat)";

my $bouncer;               # IPC::Run harness of the pgbouncer process
my $bouncer_log;

END
{
	# Never leave a pgbouncer behind, whatever happened above (and keep the exit status:
	# reaping the child would otherwise overwrite $?).
	local $?;
	if ($bouncer)
	{
		eval { $bouncer->kill_kill(grace => 5); 1 };
	}
}

# ---------------------------------------------------------------------------
# The cluster and the data
# ---------------------------------------------------------------------------
my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', qq{
log_statement = none
max_connections = 40
});

# The server secret (hlauth.secret_file): see HlauthTest.pm.
hl_setup_secret($node);
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE hl');
$node->safe_psql('hl', q{
CREATE EXTENSION hlauth;
CREATE ROLE hl_app LOGIN NOSUPERUSER NOBYPASSRLS;
GRANT hlauth_trusted TO hl_app;

-- n 1..20: accounts (1..10 under agency 21, 11..20 under agency 22); n 21, 22: agencies.
-- expected_rows: what a principal acting at that tenant must see in notes, exactly.
-- principal: who the scripts authenticate at that tenant.
CREATE TABLE tenant_map (
	n int PRIMARY KEY,
	tenant uuid NOT NULL UNIQUE,
	kind text NOT NULL,
	agency uuid NOT NULL,
	expected_rows int NOT NULL,
	principal uuid NOT NULL UNIQUE DEFAULT gen_random_uuid()
);
INSERT INTO tenant_map
SELECT 20 + a, t, 'agency', t, 0
  FROM generate_series(1, 2) a, LATERAL hlauth.create_tenant('agency', NULL, 'agency ' || a) t;
INSERT INTO tenant_map
SELECT g.n, hlauth.create_tenant('account', ag.tenant, 'account ' || g.n), 'account', ag.tenant, 3 + g.n % 5
  FROM generate_series(1, 20) g(n)
  JOIN tenant_map ag ON ag.n = 21 + (g.n - 1) / 10;
UPDATE tenant_map ag SET expected_rows = (SELECT sum(a.expected_rows) FROM tenant_map a
										   WHERE a.kind = 'account' AND a.agency = ag.tenant)
 WHERE ag.kind = 'agency';

-- The protected table: agency_id is plain data (not used by any policy), kept to check
-- what an agency-level principal sees.
CREATE TABLE notes (
	account_id uuid NOT NULL,
	agency_id uuid NOT NULL,
	id int NOT NULL,
	body text NOT NULL,
	PRIMARY KEY (account_id, id)
);
INSERT INTO notes
SELECT m.tenant, m.agency, i, format('note %s of account %s', i, m.n)
  FROM tenant_map m, generate_series(1, m.expected_rows) i
 WHERE m.kind = 'account';
SELECT hlauth.protect('notes', 'account_id', 'notes.read', 'notes.write');

-- One row per committed acct.sql transaction: account_id comes from the column default
-- (hlauth.account()), claimed is the tenant the transaction authenticated at.
CREATE TABLE events (
	account_id uuid NOT NULL,
	claimed uuid NOT NULL,
	pid int NOT NULL DEFAULT pg_backend_pid()
);
CREATE INDEX events_account_idx ON events (account_id);
SELECT hlauth.protect('events', 'account_id', NULL, 'notes.write');

-- Every tenant's principal holds notes.read and notes.write at its agency (one grant each).
SELECT hlauth.register_permission('notes.read', 'read notes');
SELECT hlauth.register_permission('notes.write', 'write notes');
WITH r AS MATERIALIZED (SELECT hlauth.create_role('notes', 'notes.read notes.write') AS id)
SELECT count(hlauth.grant_role(m.principal, r.id, m.agency)) FROM tenant_map m, r;

-- Unprotected: one row per committed acct.sql transaction, written in the same transaction
-- as its event, so the server (not pgbench's racy per-script counters) says how many
-- acct.sql transactions committed and at which tenants.
CREATE TABLE acct_commits (
	claimed uuid NOT NULL
);

-- Unprotected: where the scripts report what they should never have seen.
CREATE TABLE violations (
	at timestamptz NOT NULL DEFAULT clock_timestamp(),
	what text NOT NULL,
	n int,
	detail text,
	pid int NOT NULL DEFAULT pg_backend_pid()
);

GRANT SELECT ON tenant_map, notes TO hl_app;
GRANT SELECT, INSERT ON events TO hl_app;
GRANT INSERT ON violations, acct_commits TO hl_app;
});

is($node->safe_psql('hl', q{SELECT count(*) FILTER (WHERE kind = 'agency') || '/' || count(*) FILTER (WHERE kind = 'account') FROM hlauth.tenants}),
	'2/20', '2 agencies and 20 accounts');
is($node->safe_psql('hl', 'SELECT count(*) FROM notes'), '100',
	'100 protected rows, 3 to 7 per account');
is( $node->safe_psql('hl',
		q{SELECT count(*) FROM tenant_map WHERE hlauth.effective_scopes(principal, tenant)::text = 'notes.read notes.write'}),
	'22', "every tenant's principal holds notes.read and notes.write there");

# ---------------------------------------------------------------------------
# PgBouncer in transaction pooling mode
# ---------------------------------------------------------------------------
my $dir = PostgreSQL::Test::Utils::tempdir;
my $bport = PostgreSQL::Test::Cluster::get_free_port();
$bouncer_log = "$dir/pgbouncer.log";

PostgreSQL::Test::Utils::append_to_file("$dir/userlist.txt", qq{"hl_app" ""\n});
PostgreSQL::Test::Utils::append_to_file("$dir/pgbouncer.ini", sprintf(<<'INI', $node->host, $node->port, $bport, $dir, $dir, $dir, $pool_size, $pool_size));
[databases]
hl = host=%s port=%d dbname=hl

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s/userlist.txt
logfile = %s/pgbouncer.log
pidfile = %s/pgbouncer.pid
pool_mode = transaction
default_pool_size = %d
min_pool_size = 0
reserve_pool_size = 0
max_db_connections = %d
max_client_conn = 100
server_reset_query =
server_check_delay = 0
ignore_startup_parameters = extra_float_digits
stats_users = hl_app
INI

my ($bout, $berr) = ('', '');
$bouncer = IPC::Run::start([ $pgbouncer_bin, "$dir/pgbouncer.ini" ],
	'>', \$bout, '2>', \$berr);

my $bconnstr = "host=127.0.0.1 port=$bport dbname=hl user=hl_app";
my $ready = 0;
foreach my $try (1 .. 100)
{
	my ($ret) = $node->psql('hl', 'SELECT 1', connstr => $bconnstr);
	if (defined $ret && $ret == 0) { $ready = 1; last; }
	last unless $bouncer->pumpable;
	select(undef, undef, undef, 0.1);
}
ok($ready, "pgbouncer accepts connections on 127.0.0.1:$bport")
  or BAIL_OUT("pgbouncer did not start:\n$bout$berr\n"
	  . (-e $bouncer_log ? slurp_file($bouncer_log) : ''));

# Through pgbouncer, a transaction is isolated and the next one starts clean.
is( $node->safe_psql(
		'hl', q{
BEGIN;
SELECT 'set' FROM (SELECT hlauth.set_principal(principal, tenant, 'notes.read') FROM tenant_map WHERE n = 1) s;
SELECT count(*) || ' ' || (hlauth.account() = (SELECT tenant FROM tenant_map WHERE n = 1)) FROM notes;
COMMIT;
SELECT coalesce(hlauth.principal()::text, 'none') || ' ' || count(*) FROM notes;
}, connstr => $bconnstr),
	"set\n4 true\nnone 0",
	'smoke: one transaction through pgbouncer sees its account, the next one nothing');

# ---------------------------------------------------------------------------
# pgbench scripts
# ---------------------------------------------------------------------------
my %script = (
	'acct.sql' => q{
\set n random(1, 20)
BEGIN;
SELECT hlauth.set_principal(m.principal, m.tenant, 'notes.read notes.write') FROM tenant_map m WHERE m.n = :n;
INSERT INTO violations (what, n, detail)
SELECT 'account context', m.n,
       concat_ws(' ', 'tenant', hlauth.tenant(), 'kind', hlauth.tenant_kind(), 'agency', hlauth.agency(),
                 'account', hlauth.account(), 'visible', v.visible, 'foreign', v.foreign_rows,
                 'expected', m.expected_rows, 'want', m.tenant)
  FROM tenant_map m,
       LATERAL (SELECT count(*) AS visible,
                       count(*) FILTER (WHERE x.account_id IS DISTINCT FROM hlauth.account()
                                           OR x.account_id <> m.tenant) AS foreign_rows
                  FROM notes x) v
 WHERE m.n = :n
   AND (hlauth.tenant() IS DISTINCT FROM m.tenant OR hlauth.account() IS DISTINCT FROM m.tenant
        OR hlauth.tenant_kind() IS DISTINCT FROM 'account' OR hlauth.agency() IS DISTINCT FROM m.agency
        OR NOT hlauth.has_scope('notes.write')
        OR v.visible <> m.expected_rows OR v.foreign_rows <> 0);
INSERT INTO events (claimed) SELECT m.tenant FROM tenant_map m WHERE m.n = :n;
INSERT INTO acct_commits (claimed) SELECT m.tenant FROM tenant_map m WHERE m.n = :n;
COMMIT;
},
	'agency.sql' => q{
\set n random(21, 22)
BEGIN;
SELECT hlauth.set_principal(m.principal, m.tenant, 'notes.read') FROM tenant_map m WHERE m.n = :n;
INSERT INTO violations (what, n, detail)
SELECT 'agency context', m.n,
       concat_ws(' ', 'tenant', hlauth.tenant(), 'kind', hlauth.tenant_kind(), 'agency', hlauth.agency(),
                 'account', hlauth.account(), 'visible', v.visible, 'foreign', v.foreign_rows,
                 'expected', m.expected_rows, 'want', m.tenant)
  FROM tenant_map m,
       LATERAL (SELECT count(*) AS visible,
                       count(*) FILTER (WHERE x.agency_id <> m.tenant) AS foreign_rows
                  FROM notes x) v
 WHERE m.n = :n
   AND (hlauth.tenant() IS DISTINCT FROM m.tenant OR hlauth.agency() IS DISTINCT FROM m.tenant
        OR hlauth.tenant_kind() IS DISTINCT FROM 'agency' OR hlauth.account() IS NOT NULL
        OR hlauth.has_scope('notes.write')
        OR v.visible <> m.expected_rows OR v.foreign_rows <> 0);
COMMIT;
},
	'noctx.sql' => q{
BEGIN;
INSERT INTO violations (what, detail)
SELECT 'no context',
       concat_ws(' ', 'principal', hlauth.principal(), 'tenant', hlauth.tenant(), 'scopes', hlauth.scopes(),
                 'visible', v.visible, 'reach', cardinality(hlauth.accessible_tenants()))
  FROM (SELECT count(*) AS visible FROM notes) v
 WHERE hlauth.principal() IS NOT NULL OR hlauth.tenant() IS NOT NULL OR hlauth.scopes() IS NOT NULL
    OR hlauth.current_context() IS NOT NULL OR cardinality(hlauth.accessible_tenants()) <> 0
    OR v.visible <> 0;
DO $$
BEGIN
	INSERT INTO public.events (account_id, claimed) SELECT tenant, tenant FROM public.tenant_map WHERE n = 1;
	INSERT INTO public.violations (what, detail) VALUES ('no context', 'a write without a principal was accepted');
EXCEPTION WHEN insufficient_privilege THEN
	NULL;
END
$$;
COMMIT;
},
	'rollback.sql' => q{
\set n random(1, 20)
BEGIN;
SELECT hlauth.set_principal(m.principal, m.tenant, 'notes.read notes.write') FROM tenant_map m WHERE m.n = :n;
INSERT INTO events (claimed) SELECT m.tenant FROM tenant_map m WHERE m.n = :n;
ROLLBACK;
},
	'autocommit.sql' => q{
\set n random(1, 20)
SELECT hlauth.set_principal(m.principal, m.tenant, 'notes.read notes.write') FROM tenant_map m WHERE m.n = :n;
INSERT INTO violations (what, n, detail)
SELECT 'after an autocommit set_principal', :n::int,
       concat_ws(' ', 'principal', hlauth.principal(), 'tenant', hlauth.tenant(), 'visible', v.visible)
  FROM (SELECT count(*) AS visible FROM notes) v
 WHERE hlauth.principal() IS NOT NULL OR hlauth.tenant() IS NOT NULL OR v.visible <> 0;
},
);
my %weight = ('acct.sql' => 5, 'agency.sql' => 2, 'noctx.sql' => 2, 'rollback.sql' => 1, 'autocommit.sql' => 1);
my @script_order = sort keys %script;
foreach my $name (@script_order)
{
	PostgreSQL::Test::Utils::append_to_file("$dir/$name", $script{$name});
}

# Runs pgbench through pgbouncer; returns total processed and per-script counts.
sub run_pgbench
{
	my ($mode, $run_seed) = @_;
	my @cmd = (
		'pgbench', '-n', '-h', '127.0.0.1', '-p', $bport, '-U', 'hl_app',
		'-c', $clients, '-j', $threads, '-t', $per_client, '-M', $mode,
		"--random-seed=$run_seed",
		(map { ('-f', "$dir/$_\@$weight{$_}") } @script_order),
		'hl');
	my ($out, $err) = ('', '');
	my $t0 = time;
	my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err, IPC::Run::timeout(300));
	my $secs = time - $t0;
	note "pgbench -M $mode (${secs}s):\n$out";
	$err =~ s/^pgbench: setting random seed to \d+\n//m;
	diag "pgbench -M $mode stderr:\n$err" if $err ne '';

	ok($ok, "pgbench -M $mode exits 0");
	my $want = $clients * $per_client;
	my ($processed) = $out =~ /number of transactions actually processed: (\d+)/;
	is($processed, $want, "pgbench -M $mode processed all $want transactions");
	my ($failed) = $out =~ /number of failed transactions: (\d+)/;
	is($failed, 0, "pgbench -M $mode reports 0 failed transactions");
	unlike($err, qr/client \d+ aborted|error/i, "no pgbench client aborted in -M $mode");

	my %per_script;
	while ($out =~ /SQL script \d+: (\S+)\n - weight: \d+[^\n]*\n - (\d+) transactions/g)
	{
		my ($path, $n) = ($1, $2);
		my ($name) = $path =~ m{([^/]+)$};
		$per_script{$name} += $n;
	}
	is(scalar(keys %per_script), scalar(@script_order), "pgbench -M $mode ran all five scripts")
	  or diag explain \%per_script;
	return ($processed // 0, \%per_script);
}

my $total = 0;
my %by_script;
foreach my $run (['simple', $seed], ['extended', $seed + 1])
{
	my ($n, $per) = run_pgbench(@$run);
	$total += $n;
	$by_script{$_} += $per->{$_} // 0 foreach keys %$per;
}
note 'transactions per script: ' . join(', ', map { "$_=$by_script{$_}" } sort keys %by_script);

cmp_ok($total, '>=', 10000, "at least 10,000 transactions through pgbouncer ($total)");

# ---------------------------------------------------------------------------
# What the server saw
# ---------------------------------------------------------------------------
my $violations = $node->safe_psql('hl', 'SELECT count(*) FROM violations');
is($violations, '0', 'no transaction saw a foreign context, a foreign row, or a missing row');
if ($violations ne '0')
{
	diag $node->safe_psql('hl',
		q{SELECT what || ' (n=' || coalesce(n::text, '-') || ', pid ' || pid || '): ' || coalesce(detail, '')
		    FROM violations ORDER BY at LIMIT 20});
}

is( $node->safe_psql('hl', 'SELECT count(*) FROM events WHERE account_id IS DISTINCT FROM claimed'),
	'0', 'every event was written to the tenant its transaction authenticated at');
my $commits = $node->safe_psql('hl', 'SELECT count(*) FROM acct_commits');
note "committed acct.sql transactions (server ledger): $commits; pgbench's per-script count: "
  . ($by_script{'acct.sql'} // 0);
cmp_ok($commits, '>=', 1000, 'acct.sql transactions committed (server ledger)');
is($node->safe_psql('hl', 'SELECT count(*) FROM events'),
	$commits,
	'one event per committed acct.sql transaction: no rolled-back write survived, none went missing');
is( $node->safe_psql('hl', q{
SELECT count(*) FROM (SELECT account_id, count(*) AS n FROM events GROUP BY account_id) e
  FULL JOIN (SELECT claimed, count(*) AS n FROM acct_commits GROUP BY claimed) c ON c.claimed = e.account_id
 WHERE e.n IS DISTINCT FROM c.n}),
	'0', 'per account, the events equal the committed acct.sql transactions that claimed it');
is( $node->safe_psql('hl',
		q{SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM tenant_map m WHERE m.tenant = e.account_id AND m.kind = 'account')}),
	'0', 'events belong to accounts only');

my $pids = $node->safe_psql('hl', 'SELECT count(DISTINCT pid) FROM events');
cmp_ok($pids, '<=', $pool_size, "at most $pool_size server connections served every client ($pids)");
cmp_ok($pids, '>=', 1, 'events were written');
is( $node->safe_psql('hl',
		q{SELECT bool_and(accounts >= 10) FROM (SELECT pid, count(DISTINCT account_id) AS accounts FROM events GROUP BY pid) s}),
	't', 'each server connection served at least 10 different accounts in turn');

# pgbouncer's own view: transactions and server connections, for the record.
my ($ret, $stats) = $node->psql('pgbouncer', 'SHOW POOLS',
	connstr => "host=127.0.0.1 port=$bport dbname=pgbouncer user=hl_app");
note "pgbouncer SHOW POOLS:\n$stats" if defined $ret && $ret == 0;

# No backend was left inside a transaction by the pooler.
is( $node->safe_psql('hl',
		q{SELECT count(*) FROM pg_stat_activity WHERE usename = 'hl_app' AND state LIKE 'idle in transaction%'}),
	'0', 'no server connection idles inside a transaction');

diag "pgbouncer log:\n" . slurp_file($bouncer_log)
  if !PostgreSQL::Test::Utils::all_tests_passing() && -e $bouncer_log;

done_testing();
