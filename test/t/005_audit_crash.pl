# 005_audit_crash.pl: a crash (kill -9) in the middle of audited writes (THREATS 19): after
# recovery the data and its audit records agree, and the seals still verify.
#
# One cluster with a server secret (hl_setup_secret), max_prepared_transactions = 5 and
# autovacuum off (an ANALYZE in progress would hold back what a seal covers). In
# database hl: the extension and an audited table acct (primary key id; every column is
# recorded). Rows are only ever created after hlauth.audit(), so every row has its whole
# history in hlauth.audit_log. Then:
#
#   writers     pgbench, 6 clients, two scripts: mix.sql (a multi-row INSERT ... ON
#               CONFLICT DO UPDATE, a multi-row UPDATE, an UPDATE of one of 5 "hot" rows
#               every client updates, a multi-row DELETE) and bulk.sql (DELETE, INSERT and
#               UPDATE of 1200 to 2500 rows each, more than the 1000 records the trigger
#               keeps in memory, so a statement writes its records in several multi-inserts).
#               Each client works in an id range of its own, but for the hot rows.
#   seal        once the writers have committed some thousands of records: audit_seal().
#   in flight   a transaction prepared for two-phase commit (1500 inserted, 100 updated
#               rows) and a session holding 2000 inserted and 100 updated rows uncommitted
#               (it sleeps before its COMMIT).
#   crash       while pgbench has transactions with writes in flight: SIGKILL to the
#               postmaster and every one of its children, at once; then a restart (crash
#               recovery). The transactions seen with writes in flight ended with it
#               (aborted, or lost with WAL still in the server's buffers) or had just
#               committed. The prepared transaction is committed after it.
#   agreement   asserted from what is in the database (no client can know which of its
#               last transactions committed), per primary key, with each row's records in
#               the order they were made (logged_at, then seq): the operations alternate
#               (INSERT, then UPDATEs, then a DELETE, then maybe an INSERT again); the live
#               rows are exactly the keys whose last record is not a DELETE; replaying each
#               live row's records (INSERT's row, then each UPDATE's new values) gives the
#               row; each UPDATE's and DELETE's old values are the values the records
#               before it left; an UPDATE's changed columns are its new values' keys; each
#               transaction's records are numbered 1..n with no gap (none was half-kept).
#               The in-flight session left no row and no record; the prepared transaction,
#               once committed, left all of its rows and records.
#   seals       audit_verify() is ok over the seal taken before the crash; a new
#               audit_seal() after recovery succeeds and audit_verify() is ok over both
#               seals, having checked every record in the log.
#   backend     a second crash: SIGKILL to the one backend running a large (200,000-row,
#               paced) audited INSERT, once its audit records have reached the log's heap
#               (the partitions grew by over 1 MB). The postmaster resets every backend;
#               after that neither the table nor the log holds any of the statement's rows,
#               a transaction committed while it ran is kept with its records, the checks
#               above still hold, and a third seal verifies with the other two.
#
# Environment: TESTDIR (writable), PG_REGRESS (for Cluster->init), PATH with the PostgreSQL
# 15 binaries (psql, pgbench).

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use HlauthTest;

my $clients = 6;    # pgbench clients

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# The pids whose parent is $ppid (from /proc).
sub children_of
{
	my ($ppid) = @_;
	my @kids;
	opendir(my $dh, '/proc') or die "/proc: $!";
	foreach my $pid (grep { /^\d+$/ } readdir $dh)
	{
		open(my $fh, '<', "/proc/$pid/stat") or next;
		my $stat = <$fh> // '';
		close $fh;
		# pid (comm) state ppid ...; comm may hold spaces and parentheses.
		push @kids, $pid if $stat =~ /\)\s+\S+\s+(\d+)\s/ && $1 == $ppid;
	}
	closedir $dh;
	return @kids;
}

# Is $pid gone (or a zombie, which holds no shared memory)?
sub process_gone
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 1;
	my $stat = <$fh> // '';
	close $fh;
	return $stat =~ /\)\s+Z\s/ ? 1 : 0;
}

# Waits (up to the default timeout) until every pid in @pids is gone.
sub wait_gone
{
	my @pids = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (grep { !process_gone($_) } @pids)
	{
		die "processes still alive after SIGKILL: @pids" if time > $deadline;
		usleep(20_000);
	}
	return;
}

# After a SIGKILL to the postmaster: when it stays a zombie (its parent, PID 1 here, may
# reap late), a new postmaster would take the still "running" PID in postmaster.pid for a
# live server and refuse to start. A zombie holds no shared memory: remove the lock file.
sub release_lock_file
{
	my ($node, $pid) = @_;
	my $deadline = time + 5;
	usleep(50_000) while -e "/proc/$pid" && time <= $deadline;
	if (-e "/proc/$pid")
	{
		note "postmaster $pid is a zombie: removing postmaster.pid";
		unlink($node->data_dir . '/postmaster.pid') or die "postmaster.pid: $!";
	}
	return;
}

# Polls $sql until it returns a true (non-empty, non-'f', non-0) first line, at most
# $secs seconds; returns that output (or '' on timeout).
sub poll_until
{
	my ($node, $sql, $secs) = @_;
	my $deadline = time + $secs;
	while (time <= $deadline)
	{
		my ($ret, $out) = $node->psql('hl', $sql);
		return $out if $ret == 0 && $out ne '' && $out ne 'f' && $out ne '0';
		usleep(100_000);
	}
	return '';
}

# ---------------------------------------------------------------------------
# The cluster
# ---------------------------------------------------------------------------
my $node = PostgreSQL::Test::Cluster->new('audit_crash');
$node->init;
$node->append_conf('postgresql.conf', q{
max_prepared_transactions = 5
restart_after_crash = on
# An autovacuum ANALYZE holds an xid while it runs, which would hold back what a seal
# covers (seals cover only transactions older than the oldest running one) and make the
# counts below depend on timing.
autovacuum = off
});
hl_setup_secret($node);
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE hl');
$node->safe_psql('hl', q{
CREATE EXTENSION hlauth;
CREATE TABLE acct (
	id int PRIMARY KEY,
	owner int NOT NULL,
	balance bigint NOT NULL,
	amount numeric(12, 2),
	note text,
	touched int NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now()
);
SELECT hlauth.audit('acct');
-- The hot rows every client updates (audited: created after audit()).
INSERT INTO acct (id, owner, balance, note) SELECT g, 0, 0, 'hot' FROM generate_series(1, 5) g;
});

# Every audit record of acct, with its row's id and its place in the row's history.
$node->safe_psql('hl', q{
CREATE VIEW recs AS
	SELECT (l.pk->>'id')::int AS id, l.op, l.old, l.new, l.changed, l.xid, l.seq, l.logged_at
	  FROM hlauth.audit_log l
	 WHERE l.table_name = 'public.acct';
});

# The agreement checks: each returns 0 when the data and the audit agree.
my %agreement = (
	'operations alternate per row (INSERT, UPDATEs, DELETE, INSERT ...)' => q{
		SELECT count(*) FROM (
			SELECT op, lag(op) OVER (PARTITION BY id ORDER BY logged_at, seq) AS prev FROM recs) s
		 WHERE (op = 'INSERT' AND prev IS NOT NULL AND prev <> 'DELETE')
			OR (op IN ('UPDATE', 'DELETE') AND (prev IS NULL OR prev = 'DELETE'))},
	'every live row has records, the last of them not a DELETE' => q{
		WITH last AS (SELECT DISTINCT ON (id) id, op FROM recs ORDER BY id, logged_at DESC, seq DESC)
		SELECT count(*) FROM acct a
		 WHERE NOT EXISTS (SELECT 1 FROM last l WHERE l.id = a.id AND l.op <> 'DELETE')},
	'every key whose last record is not a DELETE is a live row' => q{
		WITH last AS (SELECT DISTINCT ON (id) id, op FROM recs ORDER BY id, logged_at DESC, seq DESC)
		SELECT count(*) FROM last l
		 WHERE l.op <> 'DELETE' AND NOT EXISTS (SELECT 1 FROM acct a WHERE a.id = l.id)},
	'INSERT records minus DELETE records = live rows' => q{
		SELECT (SELECT count(*) FILTER (WHERE op = 'INSERT') - count(*) FILTER (WHERE op = 'DELETE') FROM recs)
			 - (SELECT count(*) FROM acct)},
	'replaying a live row\'s records gives the row' => q{
		WITH lives AS (
			SELECT r.*, count(*) FILTER (WHERE r.op = 'INSERT')
							OVER (PARTITION BY r.id ORDER BY r.logged_at, r.seq) AS life
			  FROM recs r
		), current AS (
			SELECT l.*, max(l.life) OVER (PARTITION BY l.id) AS last_life FROM lives l
		), state AS (
			SELECT c.id, jsonb_object_agg(kv.key, kv.value ORDER BY c.logged_at, c.seq) AS row
			  FROM current c CROSS JOIN LATERAL jsonb_each(c.new) kv
			 WHERE c.life = c.last_life AND c.op IN ('INSERT', 'UPDATE')
			 GROUP BY c.id
		)
		SELECT count(*) FROM acct a LEFT JOIN state s ON s.id = a.id
		 WHERE s.row IS DISTINCT FROM to_jsonb(a)},
	'each UPDATE\'s and DELETE\'s old values are what the records before it left' => q{
		WITH ev AS (
			SELECT r.id, r.op, r.logged_at, r.seq, k.key,
				   r.old ? k.key AS has_old, r.old -> k.key AS oldv, r.new -> k.key AS newv
			  FROM recs r
			  CROSS JOIN LATERAL jsonb_object_keys(coalesce(r.old, '{}') || coalesce(r.new, '{}')) AS k(key)
		), lagged AS (
			SELECT ev.*, lag(newv) OVER (PARTITION BY id, key ORDER BY logged_at, seq) AS prevnew FROM ev
		)
		SELECT count(*) FROM lagged WHERE has_old AND oldv IS DISTINCT FROM prevnew},
	'an UPDATE\'s changed columns are the keys of its new values' => q{
		SELECT count(*) FROM recs r
		 WHERE r.op = 'UPDATE'
		   AND (SELECT array_agg(c ORDER BY c) FROM unnest(r.changed) c)
			   IS DISTINCT FROM (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(r.new) k)},
	'each transaction\'s records are numbered 1..n (none half-kept)' => q{
		SELECT count(*) FROM (
			SELECT xid, count(*) AS n, count(DISTINCT seq) AS nseq, min(seq) AS lo, max(seq) AS hi
			  FROM hlauth.audit_log GROUP BY xid) s
		 WHERE lo <> 1 OR hi <> n OR nseq <> n},
);

# Runs every agreement check (timestamps as the trigger writes them: UTC).
sub check_agreement
{
	my ($when) = @_;
	foreach my $name (sort keys %agreement)
	{
		is($node->safe_psql('hl', "SET timezone = 'UTC';\n$agreement{$name}"),
			'0', "$when: $name");
	}
	return;
}

# ---------------------------------------------------------------------------
# pgbench scripts
# ---------------------------------------------------------------------------
my $dir = PostgreSQL::Test::Utils::tempdir;

# Client c (client_id, from 0) owns the ids (c + 1) * 1000000 to (c + 1) * 1000000 + 999999; the
# other transactions' ids start at 60000000.
PostgreSQL::Test::Utils::append_to_file("$dir/mix.sql", q{
\set base (:client_id + 1) * 1000000
\set k random(100, 299) * 10
\set u random(100, 299) * 10
\set d random(100, 299) * 10
\set hot random(1, 5)
BEGIN;
INSERT INTO acct (id, owner, balance, amount, note)
	SELECT :base + :k + g, :client_id, g, g * 1.25, 'ins' FROM generate_series(0, 4) g
	ON CONFLICT (id) DO UPDATE SET balance = acct.balance + 100, touched = acct.touched + 1;
UPDATE acct SET balance = balance - 1, note = 'upd ' || :u, touched = touched + 1
 WHERE id BETWEEN :base + :u AND :base + :u + 9;
UPDATE acct SET balance = balance + 1, amount = coalesce(amount, 0) + 0.01, touched = touched + 1 WHERE id = :hot;
DELETE FROM acct WHERE id BETWEEN :base + :d AND :base + :d + 2;
END;
});
PostgreSQL::Test::Utils::append_to_file("$dir/bulk.sql", q{
\set lo (:client_id + 1) * 1000000 + 500000 + random(0, 9) * 10000
BEGIN;
DELETE FROM acct WHERE id >= :lo AND id < :lo + 2500;
INSERT INTO acct (id, owner, balance, amount, note)
	SELECT :lo + g, :client_id, g, g / 3.0, 'bulk' FROM generate_series(0, 2499) g;
UPDATE acct SET note = 'bulk upd', touched = touched + 1 WHERE id >= :lo AND id < :lo + 1200;
END;
});

# ---------------------------------------------------------------------------
# Scenario 1: the whole server is killed while audited writes are in flight
# ---------------------------------------------------------------------------
my ($bench_out, $bench_err) = ('', '');
my $bench = IPC::Run::start(
	[
		'pgbench', '-n', '-h', $node->host, '-p', $node->port, '-c', $clients, '-j', 2,
		'-T', 120, '-f', "$dir/mix.sql\@9", '-f', "$dir/bulk.sql\@1", 'hl'
	],
	'>', \$bench_out, '2>', \$bench_err,
	IPC::Run::timeout(300));

my $committed = poll_until($node, q{
	SELECT count(*) FROM hlauth.audit_log HAVING count(*) >= 5000}, 60);
ok($committed, "the writers committed audited changes before the seal ($committed records)")
  or diag "pgbench:\n$bench_out\n$bench_err";

# The seal in the middle.
my $seal1 = $node->safe_psql('hl', 'SELECT row_count FROM hlauth.audit_seal()');
cmp_ok($seal1, '>', 0, "the seal taken while the writers run covers records ($seal1)");

# Two transactions still open at the crash: one prepared, one in progress (sleeping).
$node->safe_psql('hl', q{
BEGIN;
INSERT INTO acct (id, owner, balance, note) SELECT 60000000 + g, 60, g, 'prepared' FROM generate_series(1, 1500) g;
UPDATE acct SET note = 'prepared upd', touched = touched + 1 WHERE id BETWEEN 60000001 AND 60000100;
PREPARE TRANSACTION 'hl_audit_crash';
});
my ($inflight_out, $inflight_err) = ('', '');
my $inflight = IPC::Run::start(
	[
		'psql', '-X', '-d', $node->connstr('hl') . ' application_name=hl_inflight', '-c', q{
BEGIN;
INSERT INTO acct (id, owner, balance, note) SELECT 70000000 + g, 70, g, 'in flight' FROM generate_series(1, 2000) g;
UPDATE acct SET note = 'in flight upd', touched = touched + 1 WHERE id BETWEEN 70000001 AND 70000100;
SELECT pg_sleep(300);
COMMIT;
}
	],
	'>', \$inflight_out, '2>', \$inflight_err,
	IPC::Run::timeout(300));

# More committed records after the seal, then the crash while pgbench transactions have
# written (they have an xid) and the in-flight session sleeps in its transaction. (pgbench's
# sessions carry the test's application_name, PGAPPNAME.)
my $more = poll_until($node, qq{
	SELECT count(*) FROM hlauth.audit_log HAVING count(*) >= $committed + 5000}, 60);
ok($more, "the writers committed more audited changes after the seal ($more records)");
my $inflight_xids = poll_until($node, q{
	SELECT string_agg(backend_xid::text, ',' ORDER BY application_name IS DISTINCT FROM 'hl_inflight')
	  FROM pg_stat_activity
	 WHERE backend_xid IS NOT NULL AND datname = 'hl' AND backend_type = 'client backend'
	   AND pid <> pg_backend_pid()
	HAVING count(*) FILTER (WHERE application_name IS DISTINCT FROM 'hl_inflight') >= 2
	   AND count(*) FILTER (WHERE application_name = 'hl_inflight' AND wait_event = 'PgSleep') = 1}, 60);

# Stopped first, the postmaster forks no child between the listing and the kill.
my $postmaster = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
kill 'STOP', $postmaster;
my @children = children_of($postmaster);
kill 'KILL', @children;
$node->kill9;
wait_gone($postmaster, @children);
release_lock_file($node, $postmaster);
ok($inflight_xids, "SIGKILL to the postmaster and its "
	  . scalar(@children) . " children while transactions $inflight_xids had writes in flight");

$bench->finish;
note "pgbench (killed by the crash):\n$bench_out";
$inflight->finish;
like($inflight_err, qr/server closed the connection|terminat|connection to server/i,
	'the in-flight session lost its connection in the crash');

$node->start;
ok($node->log_contains('database system was interrupted|not properly shut down'),
	'the restart ran crash recovery');

# The transactions in flight at the crash ended with it: aborted, or "lost" (their WAL was
# still in the server's buffers: the restarted server has not reached their xid yet and
# will hand it out again). Some may have committed just before the SIGKILL. The first xid
# is the in-flight session's. Asked first, before this server assigns any xid.
my $xid_status = $node->safe_psql('hl', qq{
	SELECT string_agg(CASE WHEN x::bigint >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint
						   THEN 'lost' ELSE pg_xact_status(x::xid8) END, ',' ORDER BY n)
	  FROM unnest(string_to_array('$inflight_xids', ',')) WITH ORDINALITY AS u(x, n)});
note "in flight at the crash: $inflight_xids; now: $xid_status";
like($xid_status, qr/^(aborted|lost)(,(aborted|lost|committed))+$/,
	'the in-flight session\'s transaction ended with the crash (and so did, or committed, pgbench\'s)');

is( $node->safe_psql('hl', q{
	SELECT (SELECT count(*) FROM acct WHERE id BETWEEN 70000001 AND 70002000) || ' '
		|| (SELECT count(*) FROM recs WHERE id BETWEEN 70000001 AND 70002000)}),
	'0 0', 'the in-flight transaction left no row and no audit record');

# Before any new seal: the seal taken before the crash verifies.
is( $node->safe_psql('hl', q{
	SELECT ok || ' ' || seals_checked || ' ' || rows_checked || ' ' || coalesce(problem, '-')
	  FROM hlauth.audit_verify()}),
	"true 1 $seal1 -", 'after recovery, audit_verify() is ok over the seal taken before the crash');

# The prepared transaction survived the crash; its commit brings its rows and records.
is( $node->safe_psql('hl', q{SELECT gid FROM pg_prepared_xacts}),
	'hl_audit_crash', 'the prepared transaction survived the crash');
$node->safe_psql('hl', q{COMMIT PREPARED 'hl_audit_crash'});
is( $node->safe_psql('hl', q{
	SELECT (SELECT count(*) FROM acct WHERE id BETWEEN 60000001 AND 60001500) || ' '
		|| (SELECT count(*) FILTER (WHERE op = 'INSERT') || '+' || count(*) FILTER (WHERE op = 'UPDATE')
			  FROM recs WHERE id BETWEEN 60000001 AND 60001500)}),
	'1500 1500+100', 'the prepared transaction, committed after recovery, kept its rows and records');

check_agreement('after the crash');

# A new seal after recovery, then every seal and every record verifies.
my $seal2 = $node->safe_psql('hl', 'SELECT row_count FROM hlauth.audit_seal()');
cmp_ok($seal2, '>', 0, "a seal after recovery succeeds ($seal2 records)");
my $total = $node->safe_psql('hl', 'SELECT count(*) FROM hlauth.audit_log');
is($seal1 + $seal2, $total, 'the two seals cover every record in the log, once');
is( $node->safe_psql('hl', q{
	SELECT ok || ' ' || seals_checked || ' ' || rows_checked || ' ' || coalesce(problem, '-')
	  FROM hlauth.audit_verify()}),
	"true 2 $total -", 'audit_verify() is ok over both seals and every record');

# ---------------------------------------------------------------------------
# Scenario 2: SIGKILL to the backend of a large audited INSERT, mid-statement
# ---------------------------------------------------------------------------
my $log_offset = -s $node->logfile;
my $log_size = q{SELECT sum(pg_relation_size(relid)) FROM pg_partition_tree('hlauth.audit_log')};
my $size0 = $node->safe_psql('hl', $log_size);

# 200,000 rows, 0.1 s of sleep every 10,000: some 3 s, its records flushed every 1000 rows.
my ($bulk_out, $bulk_err) = ('', '');
my $bulk = IPC::Run::start(
	[
		'psql', '-X', '-d', $node->connstr('hl') . ' application_name=hl_bulk', '-c', q{
INSERT INTO acct (id, owner, balance, note)
	SELECT 90000000 + g, 90, g, 'bulk statement' FROM generate_series(1, 200000) g
	 WHERE g % 10000 <> 0 OR pg_sleep(0.1)::text = '';
}
	],
	'>', \$bulk_out, '2>', \$bulk_err,
	IPC::Run::timeout(300));
my $bulk_pid = poll_until($node, q{
	SELECT pid FROM pg_stat_activity WHERE application_name = 'hl_bulk' AND state = 'active'}, 30);
ok($bulk_pid, "the large INSERT runs (backend $bulk_pid)");

# A transaction committed while it runs.
$node->safe_psql('hl', q{
INSERT INTO acct (id, owner, balance, note) SELECT 80000000 + g, 80, g, 'during bulk' FROM generate_series(1, 3) g});

my $grown = poll_until($node, qq{
	SELECT ($log_size) - $size0 FROM pg_stat_activity
	 WHERE pid = $bulk_pid AND state = 'active' AND ($log_size) > $size0 + 1048576}, 30);
ok($grown, "the statement's audit records reached the log's heap ($grown bytes) while it still runs");
kill 'KILL', $bulk_pid;
$bulk->finish;
like($bulk_err, qr/server closed the connection|terminat|connection to server/i,
	'the large INSERT\'s session lost its backend');

# The postmaster resets every backend and recovers.
ok($node->poll_query_until('hl', 'SELECT true'), 'the server is back after the backend was killed');
ok($node->log_contains("PID $bulk_pid\\) was terminated by signal 9", $log_offset),
	'the postmaster saw the backend killed by SIGKILL and reset the others');

is( $node->safe_psql('hl', q{
	SELECT (SELECT count(*) FROM acct WHERE id BETWEEN 90000001 AND 90200000) || ' '
		|| (SELECT count(*) FROM recs WHERE id BETWEEN 90000001 AND 90200000)}),
	'0 0', 'none of the killed statement\'s rows is in the table or the audit log');
is( $node->safe_psql('hl', q{
	SELECT (SELECT count(*) FROM acct WHERE id BETWEEN 80000001 AND 80000003) || ' '
		|| (SELECT count(*) FROM recs WHERE id BETWEEN 80000001 AND 80000003 AND op = 'INSERT')}),
	'3 3', 'the transaction committed while it ran is kept with its records');

check_agreement('after the backend was killed');

my $seal3 = $node->safe_psql('hl', 'SELECT row_count FROM hlauth.audit_seal()');
is($seal3, '3', 'a seal after the second recovery covers the 3 records committed since');
$total = $node->safe_psql('hl', 'SELECT count(*) FROM hlauth.audit_log');
is( $node->safe_psql('hl', q{
	SELECT ok || ' ' || seals_checked || ' ' || rows_checked || ' ' || coalesce(problem, '-')
	  FROM hlauth.audit_verify()}),
	"true 3 $total -", 'audit_verify() is ok over the three seals and every record');

$node->stop;
done_testing();
