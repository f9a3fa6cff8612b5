# 010_parallel_portal.pl: the workers of a parallel query see the context the leader has
# when the query runs, not when it was bound. With the extended protocol a portal can be
# bound under one context and executed after hlauth.clear(), a role change or another
# set_principal; a red-team pass found its workers still carried the context of the Bind.
#
# psql cannot separate Bind from Execute (before PostgreSQL 16), so this test speaks the
# protocol itself over the Unix socket (trust authentication), with a minimal client below.
#
# Environment: TESTDIR (writable), PG_REGRESS (for Cluster->init), PATH with the PostgreSQL
# 15 binaries.

use strict;
use warnings;

use IO::Socket::UNIX;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use HlauthTest;

my $principal = 'c1000000-0000-4000-8000-000000000001';
my $agency    = 'c1000000-0000-4000-8000-0000000000a0';
my $account_a = 'c1000000-0000-4000-8000-0000000000a1';
my $account_b = 'c1000000-0000-4000-8000-0000000000a2';

my $node = PostgreSQL::Test::Cluster->new('portal');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'hlauth'
max_worker_processes = 8
max_parallel_workers = 4
});
hl_setup_secret($node);
$node->start;

$node->safe_psql('postgres', qq{
CREATE EXTENSION hlauth;
CREATE ROLE hl_app LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE hl_other LOGIN NOSUPERUSER NOBYPASSRLS;
GRANT hlauth_trusted TO hl_app;
GRANT hl_other TO hl_app;
SELECT hlauth.create_tenant('agency', NULL, 'agency', '$agency');
SELECT hlauth.create_tenant('account', '$agency', 'a', '$account_a');
SELECT hlauth.create_tenant('account', '$agency', 'b', '$account_b');
SELECT hlauth.register_permission('notes.read', 'read notes');
SELECT hlauth.grant_role('$principal', hlauth.create_role('notes reader', 'notes.read'), '$agency');
CREATE TABLE notes (account_id uuid NOT NULL, id int NOT NULL, body text);
INSERT INTO notes SELECT '$account_a', i, 'a' FROM generate_series(1, 1000) i;
INSERT INTO notes SELECT '$account_b', i, 'b' FROM generate_series(1, 3000) i;
SELECT hlauth.protect('notes');
GRANT SELECT ON notes TO hl_app, hl_other;
ANALYZE notes;
});

# ---- a minimal protocol client ------------------------------------------------------
sub pq_connect
{
	my ($user) = @_;
	my $path = $node->host . '/.s.PGSQL.' . $node->port;
	my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path)
	  or die "cannot connect to $path: $!";
	my $params = "user\0$user\0database\0postgres\0\0";
	my $body = pack('N', 196608) . $params;
	print $sock pack('N', length($body) + 4) . $body;
	my $c = { sock => $sock, buf => '' };
	pq_until($c);
	return $c;
}

sub pq_msg
{
	my ($c, $type, $body) = @_;
	my $sock = $c->{sock};
	print $sock $type . pack('N', length($body) + 4) . $body;
}

sub pq_read
{
	my ($c) = @_;
	while (length($c->{buf}) < 5 || length($c->{buf}) < 1 + unpack('N', substr($c->{buf}, 1, 4)))
	{
		my $chunk;
		my $n = sysread($c->{sock}, $chunk, 65536);
		die "connection closed" unless $n;
		$c->{buf} .= $chunk;
	}
	my $type = substr($c->{buf}, 0, 1);
	my $len = unpack('N', substr($c->{buf}, 1, 4));
	my $body = substr($c->{buf}, 5, $len - 4);
	$c->{buf} = substr($c->{buf}, 1 + $len);
	return ($type, $body);
}

# Reads up to ReadyForQuery; returns the rows (each a string of its columns joined by
# '|') and the errors ("SQLSTATE message").
sub pq_until
{
	my ($c) = @_;
	my (@rows, @errors);
	while (1)
	{
		my ($type, $body) = pq_read($c);
		if ($type eq 'D')
		{
			my $n = unpack('n', $body);
			my $p = 2;
			my @cols;
			for (1 .. $n)
			{
				my $l = unpack('l>', substr($body, $p, 4));
				$p += 4;
				if ($l < 0) { push @cols, '' }
				else { push @cols, substr($body, $p, $l); $p += $l; }
			}
			push @rows, join('|', @cols);
		}
		elsif ($type eq 'E')
		{
			my %f = map { substr($_, 0, 1) => substr($_, 1) } grep { length } split /\0/, $body;
			push @errors, "$f{C} $f{M}";
		}
		last if $type eq 'Z';
	}
	return (\@rows, \@errors);
}

sub pq_query { my ($c, $sql) = @_; pq_msg($c, 'Q', "$sql\0"); return pq_until($c); }
sub pq_parse { my ($c, $name, $sql) = @_; pq_msg($c, 'P', "$name\0$sql\0" . pack('n', 0)); }
sub pq_bind { my ($c, $portal, $stmt) = @_; pq_msg($c, 'B', "$portal\0$stmt\0" . pack('nnn', 0, 0, 0)); }
sub pq_execute { my ($c, $portal) = @_; pq_msg($c, 'E', "$portal\0" . pack('N', 0)); }
sub pq_sync { my ($c) = @_; pq_msg($c, 'S', ''); return pq_until($c); }

# ---- the probes ---------------------------------------------------------------------
my $c = pq_connect('hl_app');
my ($rows, $errors) = pq_query($c, q{
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
SET enable_indexscan = off; SET enable_bitmapscan = off});
is(scalar(@$errors), 0, 'settings for a parallel plan') or diag explain $errors;

my $count = 'SELECT count(*) FROM notes';
my $login_a = "SELECT hlauth.set_principal('$principal', '$account_a', 'notes.read')";
my $login_b = "SELECT hlauth.set_principal('$principal', '$account_b', 'notes.read')";

($rows) = pq_query($c, "EXPLAIN (COSTS OFF) $count");
like(join("\n", @$rows), qr/Gather/, 'the count runs with parallel workers');
($rows) = pq_query($c, "BEGIN; $login_a; $count; COMMIT");
is($rows->[-1], '1000', 'under account a, the parallel count sees a\'s 1000 rows');

# Binds the count under a's context, runs $between (each statement through Parse, Bind
# and Execute), then executes the count; returns its result (or the error).
my $round = 0;
sub bound_then
{
	my (@between) = @_;
	$round++;
	pq_query($c, 'BEGIN');
	pq_query($c, $login_a);
	pq_parse($c, "count$round", $count);
	pq_bind($c, 'p_count', "count$round");
	my $i = 0;
	foreach my $sql (@between)
	{
		$i++;
		pq_parse($c, "s${round}_$i", $sql);
		pq_bind($c, "p$i", "s${round}_$i");
		pq_execute($c, "p$i");
	}
	pq_execute($c, 'p_count');
	my ($r, $e) = pq_sync($c);
	pq_query($c, 'COMMIT');
	return @$e ? "error: $e->[0]" : $r->[-1];
}

is(bound_then('SELECT hlauth.clear()'), '0',
	'bound under a, executed after hlauth.clear(): the workers see no context');
is(bound_then($login_b), '3000',
	'bound under a, executed after set_principal to b: the workers see b\'s rows');
is(bound_then('SET ROLE hl_other', 'RESET ROLE'), '0',
	'bound under a, executed after a role change and back: the context ended');

# And the same without the extended protocol's gap: the context of the run
($rows) = pq_query($c, "BEGIN; $login_a; SELECT hlauth.clear(); $count; COMMIT");
is($rows->[-1], '0', 'a count after clear() in the same transaction sees no rows');

pq_msg($c, 'X', '');
close($c->{sock});

$node->stop;
done_testing();
