# 002_connect_options.pl: no context can be brought into a session from outside hlauth's
# own C code: not by connection options, not by role or database defaults, not by the
# configuration file, and not across a restart. After restarts hlauth still works.
#
# The forged value used everywhere is a genuine one: hlauth minted it for an app-role
# principal at an account, and a SECURITY DEFINER helper (what a role with
# pg_read_all_settings could read) handed it out. Replaying it must never work.
#
# Everything runs twice: with hlauth loaded on first use (the default: nothing preloaded),
# and with shared_preload_libraries = 'hlauth'. When hlauth is not loaded, PostgreSQL keeps
# an unknown hlauth.* setting as a placeholder and hands it to hlauth when it loads; hlauth
# must then reject it. Either outcome is accepted where the brief allows it: the
# connection or command is refused, or it goes through and the session has no context.
#
# Environment: TESTDIR (writable), PG_REGRESS (for Cluster->init), PATH with the PostgreSQL
# 15 binaries.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use HlauthTest;

my $principal = 'c0000000-0000-4000-8000-000000000001';
my $agency    = 'c0000000-0000-4000-8000-0000000000a0';
my $account   = 'c0000000-0000-4000-8000-0000000000a1';
my $other     = 'c0000000-0000-4000-8000-0000000000a2';

my $node = PostgreSQL::Test::Cluster->new('opts');
$node->init;
$node->append_conf('postgresql.conf', 'log_statement = none');

# The server secret (hlauth.secret_file): see HlauthTest.pm.
hl_setup_secret($node);
$node->start;

my $superuser = $node->safe_psql('postgres', 'SELECT current_user');

$node->safe_psql('postgres', qq{
CREATE EXTENSION hlauth;
CREATE ROLE hl_app LOGIN NOSUPERUSER NOBYPASSRLS;
GRANT hlauth_trusted TO hl_app;
SELECT hlauth.create_tenant('agency', NULL, 'agency', '$agency');
SELECT hlauth.create_tenant('account', '$agency', 'account', '$account');
SELECT hlauth.create_tenant('account', '$agency', 'other', '$other');
CREATE TABLE notes (account_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (account_id, id));
INSERT INTO notes VALUES ('$account', 1, 'mine 1'), ('$account', 2, 'mine 2'), ('$other', 1, 'not mine');
SELECT hlauth.protect('notes');
GRANT SELECT ON notes TO hl_app;
-- set_principal() keeps only the asked scopes the principal holds through its grants
-- (issue #3): the principal holds notes.read at the agency.
SELECT hlauth.register_permission('notes.read', 'read notes');
SELECT hlauth.grant_role('$principal', hlauth.create_role('notes reader', 'notes.read'), '$agency');

-- For the parallel probe: hlauth first loaded inside a parallel operation (by an InitPlan
-- run in the leader), and what a worker then sees.
CREATE TABLE par_dummy (i int);
INSERT INTO par_dummy VALUES (1);
GRANT SELECT ON par_dummy TO hl_app;
CREATE FUNCTION par_loader() RETURNS int LANGUAGE plpgsql STABLE PARALLEL SAFE
	AS \$\$ BEGIN PERFORM hlauth.principal(); RETURN 1; END \$\$;
CREATE FUNCTION par_spy() RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE
	AS \$\$ BEGIN RETURN concat_ws(',', coalesce(hlauth.principal()::text, '-'), (SELECT count(*) FROM notes)); END \$\$;

-- Hands out the raw GUC value, as a monitoring role with pg_read_all_settings could read it.
CREATE FUNCTION peek_context() RETURNS text LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog AS \$\$ SELECT current_setting('hlauth.context', true) \$\$;
REVOKE ALL ON FUNCTION peek_context() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION peek_context() TO hl_app;
});

my $app_connstr = $node->connstr('postgres') . ' user=hl_app';
my $su_connstr  = $node->connstr('postgres') . " user=$superuser";

# What a properly authenticated transaction sees, and a genuine context value. The GUC carries
# the context only once a statement has run in parallel mode (force_parallel_mode makes the
# second SELECT one).
my $seen = $node->safe_psql('postgres', qq{
BEGIN;
SELECT 'set' FROM (SELECT hlauth.set_principal('$principal', '$account', 'notes.read')) s;
SET LOCAL force_parallel_mode = on;
SELECT hlauth.principal() || ' ' || hlauth.tenant() || ' ' || (SELECT count(*) FROM notes);
SELECT peek_context();
COMMIT;
}, connstr => $app_connstr);
my (undef, $authenticated, $forged) = split /\n/, $seen;
is($authenticated, "$principal $account 2", 'set_principal works: the account sees its 2 rows');
(my $principal_hex = $principal) =~ s/-//g;
(my $account_hex = $account) =~ s/-//g;
like($forged, qr/^v2;\Q$principal_hex\E\Q$account_hex\E[0-9a-f]{96};1;\d+;set_principal;;notes\.read$/,
	'a genuine context value was captured');
unlike($forged, qr/\s/, 'the context value has no blanks (usable in -c options as is)');

# The probes. No context: principal, tenant, context and reach are empty, and (for the
# app role) no protected row is visible.
my $app_probe = q{SELECT concat_ws(',', coalesce(hlauth.principal()::text, '-'), coalesce(hlauth.tenant()::text, '-'),
	coalesce(hlauth.current_context()::text, '-'), cardinality(hlauth.accessible_tenants()), (SELECT count(*) FROM notes))};
my $su_probe = q{SELECT concat_ws(',', coalesce(hlauth.principal()::text, '-'), coalesce(hlauth.tenant()::text, '-'),
	coalesce(hlauth.current_context()::text, '-'), cardinality(hlauth.accessible_tenants()))};
my $app_none = '-,-,-,0,0';
my $su_none  = '-,-,-,0';

# Connects with the given connection string (and PGOPTIONS), runs $sql.
sub run_session
{
	my ($connstr, $sql, $pgoptions) = @_;
	local $ENV{PGOPTIONS};
	delete $ENV{PGOPTIONS};
	$ENV{PGOPTIONS} = $pgoptions if defined $pgoptions;
	my ($ret, $out, $err) = $node->psql('postgres', $sql, connstr => $connstr);
	return ($ret, $out, $err);
}

# Passes when the session was refused (at connect or on the statement), or when it ran
# and the probe shows no context.
sub no_context_or_refused
{
	my ($name, $ret, $out, $err, $none) = @_;
	if (!defined $ret || $ret != 0)
	{
		my ($first) = split /\n/, ($err // '');
		like($err, qr/FATAL|ERROR/, "$name: refused")
		  and note "$name: refused: $first";
	}
	else
	{
		is($out, $none, "$name: no context");
		note "$name: server said: $err" if $err ne '';
	}
}

# A fresh app session and a fresh superuser session have no context.
sub fresh_sessions_have_no_context
{
	my ($when) = @_;
	my ($ret, $out, $err) = run_session($app_connstr, $app_probe);
	is($ret, 0, "$when: a fresh app session connects") or diag $err;
	is($out, $app_none, "$when: a fresh app session has no context and sees no rows");
	($ret, $out, $err) = run_session($su_connstr, $su_probe);
	is($out, $su_none, "$when: a fresh superuser session has no context");
}

# After whatever happened, hlauth still authenticates and isolates as before.
sub hlauth_still_works
{
	my ($when) = @_;
	my $out = $node->safe_psql('postgres', qq{
BEGIN;
SELECT 'set' FROM (SELECT hlauth.set_principal('$principal', '$account', 'notes.read')) s;
SELECT string_agg(body, ',' ORDER BY id) || ' ' || hlauth.account() FROM notes;
COMMIT;
$app_probe;
}, connstr => $app_connstr);
	is($out, "set\nmine 1,mine 2 $account\n$app_none",
		"$when: set_principal then a query sees exactly the account's rows, and the next transaction none");
}

fresh_sessions_have_no_context('at start');

foreach my $mode ('loaded on first use', 'shared_preload_libraries')
{
	if ($mode eq 'shared_preload_libraries')
	{
		$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hlauth'");
		$node->restart;
		is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), 'hlauth',
			'hlauth is now preloaded');
		fresh_sessions_have_no_context("[$mode] after restart");
		hlauth_still_works("[$mode] after restart");
	}
	my $m = "[$mode]";

	# ---- connection options -------------------------------------------------------
	my $opt = "-c hlauth.context=$forged";
	no_context_or_refused("$m app role, PGOPTIONS", run_session($app_connstr, $app_probe, $opt), $app_none);
	no_context_or_refused("$m app role, options connection parameter",
		run_session("$app_connstr options='$opt'", $app_probe), $app_none);
	no_context_or_refused("$m app role, PGOPTIONS, then BEGIN",
		run_session($app_connstr, "BEGIN; $app_probe; COMMIT;", $opt), $app_none);
	no_context_or_refused("$m superuser, PGOPTIONS", run_session($su_connstr, $su_probe, $opt), $su_none);
	no_context_or_refused("$m superuser, options connection parameter",
		run_session("$su_connstr options='$opt'", $su_probe), $su_none);

	# A superuser connecting as the app role through -c role=...: no SET ROLE statement
	# runs, so nothing but the check hook stands between the value and the session.
	no_context_or_refused("$m superuser with -c role=hl_app",
		run_session($su_connstr, $app_probe, "-c role=hl_app $opt"), $app_none);
	no_context_or_refused("$m superuser with -c role=hl_app (options parameter)",
		run_session("$su_connstr options='-c role=hl_app $opt'", $app_probe), $app_none);

	# hlauth loaded by session_preload_libraries (superuser only) after the options are set.
	no_context_or_refused("$m superuser with session_preload_libraries=hlauth",
		run_session($su_connstr, $su_probe, "-c session_preload_libraries=hlauth $opt"),
		$su_none);

	# In-session SET of the placeholder before hlauth is loaded (nothing preloaded), then
	# the first hlauth call loads it: the value must not survive.
	no_context_or_refused("$m app role: SET before hlauth loads",
		run_session($app_connstr, "SET hlauth.context = '$forged'; $app_probe"), $app_none);
	no_context_or_refused("$m app role: SET LOCAL before hlauth loads",
		run_session($app_connstr, "BEGIN; SET LOCAL hlauth.context = '$forged'; $app_probe; COMMIT;"), $app_none);

	fresh_sessions_have_no_context("$m after connection options");

	# ---- role and database defaults -------------------------------------------------
	my @forms = (
		'ALTER ROLE hl_app',
		'ALTER ROLE hl_app IN DATABASE postgres',
		'ALTER DATABASE postgres',
		'ALTER ROLE ALL');
	foreach my $form (@forms)
	{
		my $stmt = "$form SET hlauth.context = '$forged'";

		# The app role: never (fresh session, and with hlauth loaded).
		my ($ret, $out, $err) = run_session($app_connstr, "$stmt;");
		isnt($ret, 0, "$m app role: $form SET hlauth.context is refused");
		($ret, $out, $err) = run_session($app_connstr, "SELECT hlauth.principal(); $stmt;");
		isnt($ret, 0, "$m app role, hlauth loaded: $form SET hlauth.context is refused");

		# A superuser session in which hlauth is loaded: hlauth's check hook refuses.
		($ret, $out, $err) = run_session($su_connstr, "SELECT hlauth.principal(); $stmt;");
		isnt($ret, 0, "$m superuser, hlauth loaded: $form SET hlauth.context is refused");
		like($err, qr/hlauth|permission denied|cannot be/, "$m superuser, hlauth loaded: $form: the refusal names the reason");

		# A fresh superuser session. With hlauth preloaded this is the case above. Without,
		# PostgreSQL validates an unknown custom setting only as a placeholder and stores
		# it for a superuser: hlauth cannot see the command. It should still be refused
		# (the claim in src/context.c); whatever happens, it must not give any session a
		# context.
		($ret, $out, $err) = run_session($su_connstr, "$stmt;");
		if ($mode eq 'shared_preload_libraries')
		{
			isnt($ret, 0, "$m superuser, fresh session: $form SET hlauth.context is refused");
		}
		else
		{
		  TODO:
			{
				local $TODO = 'PostgreSQL stores an unknown custom setting for a superuser before the library that defines it is loaded';
				isnt($ret, 0, "$m superuser, fresh session: $form SET hlauth.context is refused");
			}
		}
		my $stored = $node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_db_role_setting, unnest(setconfig) c WHERE c LIKE 'hlauth.context=%'});
		note "$m $form: stored in pg_db_role_setting" if $stored ne '0';
		fresh_sessions_have_no_context("$m after superuser $form SET");

		# A session that first loads hlauth inside a parallel operation still holds the
		# stored value as a placeholder there, and hands it to its workers: they must not
		# take it for a context (a red-team pass: the worker saw every tenant's rows).
		($ret, $out, $err) = run_session($app_connstr, q{
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
SELECT par_spy() FROM par_dummy WHERE i = (SELECT par_loader());
});
		no_context_or_refused("$m app role, first load in a parallel operation, worker after $form SET",
			$ret, $out, $err, '-,0');
		(my $reset = $stmt) =~ s/SET hlauth\.context = .*$/RESET hlauth.context/;
		$node->safe_psql('postgres', $reset);
	}
	is( $node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_db_role_setting, unnest(setconfig) c WHERE c LIKE 'hlauth.context=%'}),
		'0', "$m no hlauth.context left in pg_db_role_setting");

	# ALTER SYSTEM: GUC_DISALLOW_IN_FILE.
	{
		my $stmt = "ALTER SYSTEM SET hlauth.context = '$forged'";
		my ($ret, $out, $err) = run_session($su_connstr, "SELECT hlauth.principal(); $stmt;");
		isnt($ret, 0, "$m superuser, hlauth loaded: ALTER SYSTEM SET hlauth.context is refused");
		($ret, $out, $err) = run_session($su_connstr, "$stmt;");
		if ($ret == 0)
		{
			note "$m fresh session: ALTER SYSTEM SET hlauth.context was accepted (placeholder)";
			$node->reload;
			fresh_sessions_have_no_context("$m after ALTER SYSTEM SET and reload");
			$node->stop;
			is($node->start(fail_ok => 1), 1, "$m the server starts with hlauth.context in postgresql.auto.conf");
			fresh_sessions_have_no_context("$m after ALTER SYSTEM SET and restart");
			$node->safe_psql('postgres', 'ALTER SYSTEM RESET hlauth.context');
			$node->reload;
		}
		else
		{
			pass("$m fresh session: ALTER SYSTEM SET hlauth.context is refused");
		}
	}

	# ---- the configuration file -----------------------------------------------------
	$node->append_conf('postgresql.conf', "hlauth.context = '$forged'");
	$node->reload;
	fresh_sessions_have_no_context("$m after hlauth.context in postgresql.conf and reload");
	$node->stop;
	is($node->start(fail_ok => 1), 1,
		"$m the server starts with hlauth.context in postgresql.conf (warns and ignores it)");
	fresh_sessions_have_no_context("$m after hlauth.context in postgresql.conf and restart");
	hlauth_still_works("$m with hlauth.context in postgresql.conf");
	my ($ret, $out, $err) = run_session($su_connstr, "SELECT hlauth.principal(); SHOW hlauth.context;");
	unlike($out, qr/v[12];/, "$m SHOW hlauth.context does not hold the file's value");
	like(slurp_file($node->logfile), qr/hlauth\.context|principal context/,
		"$m the server log mentions the rejected hlauth.context");
	$node->adjust_conf('postgresql.conf', 'hlauth.context', undef);
	$node->restart;
	hlauth_still_works("$m after removing the line");
}

# ---- restarts -------------------------------------------------------------------------
# A context set in a transaction that is still open when the server goes down is gone.
{
	my $bg = $node->background_psql('postgres', on_error_stop => 0,
		extra_params => [ '-U', 'hl_app' ]);
	$bg->query_safe("BEGIN");
	$bg->query_safe("SELECT hlauth.set_principal('$principal', '$account', 'notes.read')");
	is($bg->query_safe('SELECT count(*) FROM notes'), '2', 'an open transaction is authenticated');
	$node->restart;    # fast shutdown ends the session
	eval { $bg->quit; 1 };
}
fresh_sessions_have_no_context('after pg_ctl restart');
hlauth_still_works('after pg_ctl restart');

# A crash: kill -9 the postmaster, wait until it is really gone (and reaped: a zombie
# would still hold postmaster.pid's PID), then start again.
my ($postmaster_pid) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
$node->kill9;
my $gone = 0;
foreach my $i (1 .. 600)
{
	if (!kill(0, $postmaster_pid)) { $gone = 1; last; }
	select(undef, undef, undef, 0.1);
}
ok($gone, "the killed postmaster ($postmaster_pid) is gone");
my $started = 0;
foreach my $i (1 .. 30)
{
	# Backends of the dead postmaster may still hold its shared memory for a moment.
	if ($node->start(fail_ok => 1)) { $started = 1; last; }
	sleep 1;
}
ok($started, 'the server starts again after the crash') or BAIL_OUT('server did not restart after kill -9');
fresh_sessions_have_no_context('after a crash (kill -9) and start');
hlauth_still_works('after a crash (kill -9) and start');

done_testing();
