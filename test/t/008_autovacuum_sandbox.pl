# 008_autovacuum_sandbox.pl: autovacuum's ANALYZE of an app role's table grants nothing.
#
# Found by a red-team pass (THREATS.md 3 and 15): an app role with no hlauth rights put an
# expression index on its own table whose function calls hlauth.grant_role() and
# hlauth.issue_api_key(), and lowered the table's autovacuum_analyze_threshold. Autovacuum
# analyzed the table within a minute, with nobody involved: it runs index expressions as
# the table owner in a security-restricted operation, but its session role is the
# bootstrap superuser, which is what hlauth took for the caller. Its principal got a
# platform role and a key. test/pgtap/threats_sandbox.sql performs the same attack through
# a superuser's ANALYZE; this file shows that autovacuum, the path without any human, is
# closed too:
# - autovacuum analyzes the table (pg_stat_user_tables.autoanalyze_count grows) and the
#   planted function runs (it logs each attempt and how it ended);
# - every attempt ends with 42501, and no grant or key exists for the attacker's principal.
#
# Environment: TESTDIR, PG_REGRESS, PATH with the PostgreSQL 15 binaries.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use HlauthTest;

my $node = PostgreSQL::Test::Cluster->new('avsandbox');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = on\nautovacuum_naptime = 1\n");
hl_setup_secret($node);
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE hl');
$node->safe_psql('hl', q{
CREATE EXTENSION hlauth;
CREATE ROLE av_app LOGIN;
CREATE SCHEMA av_app AUTHORIZATION av_app;
SELECT hlauth.create_tenant('agency', NULL, 'AV', 'a7000000-0000-4000-8000-000000000001');
SELECT hlauth.create_role('av everything', '*');
});

# The attacker, as av_app: a log of its attempts, the payload, the bait.
$node->safe_psql('hl', q{
CREATE TABLE av_app.attempts (what text NOT NULL, outcome text NOT NULL, who name NOT NULL);
CREATE FUNCTION av_app.payload() RETURNS void LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	BEGIN
		PERFORM hlauth.grant_role('a7000000-0000-4000-8000-0000000000ff',
			(SELECT r.id FROM hlauth.roles r WHERE r.name = 'av everything' AND r.agency_id IS NULL),
			'a7000000-0000-4000-8000-000000000001');
		INSERT INTO av_app.attempts VALUES ('grant', 'ok', current_user);
	EXCEPTION WHEN OTHERS THEN
		INSERT INTO av_app.attempts VALUES ('grant', SQLSTATE, current_user);
	END;
	BEGIN
		PERFORM hlauth.issue_api_key('a7000000-0000-4000-8000-0000000000ff',
			'a7000000-0000-4000-8000-000000000001', '*');
		INSERT INTO av_app.attempts VALUES ('key', 'ok', current_user);
	EXCEPTION WHEN OTHERS THEN
		INSERT INTO av_app.attempts VALUES ('key', SQLSTATE, current_user);
	END;
END
$f$;
CREATE FUNCTION av_app.innocent(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	PERFORM av_app.payload();
	RETURN i;
END
$f$;
CREATE TABLE av_app.bait (i int)
	WITH (autovacuum_analyze_threshold = 0, autovacuum_analyze_scale_factor = 0,
		  autovacuum_vacuum_threshold = 100000);
CREATE INDEX bait_idx ON av_app.bait (av_app.innocent(i));
TRUNCATE av_app.attempts;
INSERT INTO av_app.bait SELECT g FROM generate_series(1, 50) g;
}, extra_params => [ '-U', 'av_app' ]);

is($node->safe_psql('hl', q{SELECT count(*) || ' ' || count(*) FILTER (WHERE outcome = '42501') FROM av_app.attempts}),
	'100 100', 'the 50 inserts ran the planted function as av_app, refused twice each (no admin, no context)');
$node->safe_psql('hl', 'TRUNCATE av_app.attempts');

# Wait (up to 60 s) until autovacuum has analyzed the table and the payload ran in it.
my $analyzed = '';
foreach (1 .. 600)
{
	$analyzed = $node->safe_psql('hl',
		q{SELECT coalesce(s.autoanalyze_count, 0) > 0 AND (SELECT count(*) FROM av_app.attempts) > 0
		    FROM pg_stat_user_tables s WHERE s.relid = 'av_app.bait'::regclass});
	last if $analyzed eq 't';
	usleep(100_000);
}
is($analyzed, 't', 'autovacuum analyzed the bait table, and the planted function ran during it');
is($node->safe_psql('hl', q{SELECT string_agg(DISTINCT who::text, ',') FROM av_app.attempts}),
	'av_app', '... as the table owner');
is($node->safe_psql('hl', q{SELECT count(*) FROM av_app.attempts WHERE outcome <> '42501'}),
	'0', "every attempt inside autovacuum's ANALYZE was refused with 42501");
is($node->safe_psql('hl', q{SELECT count(*) FROM hlauth.grants WHERE principal = 'a7000000-0000-4000-8000-0000000000ff'}),
	'0', "no role was granted to the attacker's principal");
is($node->safe_psql('hl', q{SELECT count(*) FROM hlauth.api_keys WHERE principal = 'a7000000-0000-4000-8000-0000000000ff'}),
	'0', "no key was issued to the attacker's principal");

$node->stop;
done_testing();
