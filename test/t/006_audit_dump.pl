# 006_audit_dump.pl: the audit trail survives pg_dump and pg_restore.
#
# An audited table with values of many types (numerics with trailing zeros, NaN, nested
# jsonb, timestamptz, arrays, an excluded column), a protected table audited through
# protect()'s tenant column, writes of every kind, a seal. Then pg_dump (custom format) and
# pg_restore into a new database of the same cluster (same server secret), then with
# pg_restore -j 4 (three times, with many protected and audited tables):
# - pg_restore succeeds and says nothing (the DDL guard lets it create the audit triggers
#   one by one and add primary keys last);
# - the restored records are the same, and audit_verify() is ok over the restored seals:
#   the row hashes (which cover jsonb in its binary form) and the seal MACs still match;
# - the restored tables are audited again (both triggers, registered), a new write is
#   recorded and sealed, the restored chain continues;
# - the guard still refuses dropping an audit trigger in the restored database;
# - restoring did not write audit records of its own (COPY ran before the triggers).
#
# Environment: TESTDIR, PG_REGRESS, PATH with the PostgreSQL 15 binaries.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use HlauthTest;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
hl_setup_secret($node);
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
CREATE EXTENSION hlauth;
CREATE TABLE things (
	id bigint PRIMARY KEY,
	account_id uuid,
	amount numeric,
	ratio float8,
	doc jsonb,
	seen_at timestamptz,
	day date,
	tags text[],
	label varchar(20),
	flag boolean,
	password_hash text
);
SELECT hlauth.audit('things', '{password_hash}', 'account_id');

SELECT hlauth.create_tenant('agency', NULL, 'agency', 'a0d10000-0000-0000-0000-000000000001');
SELECT hlauth.create_tenant('account', 'a0d10000-0000-0000-0000-000000000001', 'account',
							'a0d10000-0000-0000-0000-000000000002');
CREATE TABLE notes (account_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (account_id, id));
SELECT hlauth.protect('notes');
SELECT hlauth.audit('notes');

CREATE TABLE parted (region int NOT NULL, id int NOT NULL, v text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES IN (1);
SELECT hlauth.audit('parted');
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES IN (2);
INSERT INTO parted VALUES (1, 1, 'one'), (2, 1, 'two');
INSERT INTO parted_2 VALUES (2, 2, 'two, direct');

INSERT INTO things VALUES
	(1, 'a0d10000-0000-0000-0000-000000000002', 1.50, 0.25, '{"b": [1, 2.0, {"c": null}], "a": "x"}',
	 '2026-01-02 03:04:05.678+02', '2026-01-02', '{a,"b c"}', 'label', true, 'hash-1'),
	(2, NULL, 'NaN', 'Infinity', '"scalar"', 'infinity', NULL, '{}', NULL, false, 'hash-2'),
	(3, 'a0d10000-0000-0000-0000-000000000002', 12345678901234567890.000, -0.0, '[]', now(), now()::date, NULL, 'three', NULL, 'hash-3');
UPDATE things SET amount = amount * 2, password_hash = 'hash-1b' WHERE id = 1;
UPDATE things SET doc = doc || '{"z": 1}' WHERE id = 2;
DELETE FROM things WHERE id = 3;
INSERT INTO notes VALUES ('a0d10000-0000-0000-0000-000000000002', 1, 'first note');
UPDATE notes SET body = 'edited' WHERE id = 1;
});
$node->safe_psql('src', 'SELECT hlauth.audit_seal()');
# Records after the seal, not sealed yet: they must come through too.
$node->safe_psql('src', q{INSERT INTO things (id, amount) VALUES (4, 0.000)});

my $records_sql = q{SELECT string_agg(concat_ws('|', table_name, op, pk, tenant_id, changed, old, new,
												 encode(row_hash, 'hex')), E'\n' ORDER BY xid, seq)
					  FROM hlauth.audit_log};
my $src_records = $node->safe_psql('src', $records_sql);
is($node->safe_psql('src', 'SELECT count(*) FROM hlauth.audit_log'), '12', '12 audit records in the source');
is($node->safe_psql('src', 'SELECT ok, seals_checked, rows_checked FROM hlauth.audit_verify()'),
	't|1|11', 'the source verifies: 1 seal over 11 records');
is( $node->safe_psql('src',
		q{SELECT string_agg(tgrelid::regclass || ':' || tgname, ',' ORDER BY tgrelid::regclass::text, tgname)
		    FROM pg_trigger WHERE tgname LIKE 'hlauth_audit%' AND tgrelid::regclass::text LIKE 'parted%'}),
	'parted:hlauth_audit,parted:hlauth_audit_statement,parted_1:hlauth_audit,parted_1:hlauth_audit_statement,parted_2:hlauth_audit,parted_2:hlauth_audit_statement',
	'a partitioned table: its partitions, the one made after audit() too, have both triggers');
unlike($src_records, qr/hash-1|hash-2|hash-3/, 'no excluded value in the records');

my $tmp = PostgreSQL::Test::Utils::tempdir;
command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', "$tmp/src.dump" ], 'pg_dump (custom)');
command_ok([ 'createdb', '-h', $node->host, '-p', $node->port, 'dst' ], 'createdb dst');
{
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), "$tmp/src.dump" ],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, 'pg_restore into dst succeeds') or diag $stderr;
	is($stderr, '', 'pg_restore reports nothing');
}

is($node->safe_psql('dst', $records_sql), $src_records,
	'the restored records are the same, hashes included');
is($node->safe_psql('dst', 'SELECT count(*) FROM hlauth.audit_log WHERE hlauth_internal.audit_row_hash(audit_log) <> row_hash'),
	'0', 'every restored record still matches its hash');
is($node->safe_psql('dst', 'SELECT ok, seals_checked, rows_checked, problem FROM hlauth.audit_verify()'),
	't|1|11|', 'the restored seal verifies');
is( $node->safe_psql('dst',
		q{SELECT string_agg(tgrelid::regclass || ':' || tgname, ',' ORDER BY tgrelid::regclass::text, tgname)
		    FROM pg_trigger WHERE tgname LIKE 'hlauth_audit%'}),
	'notes:hlauth_audit,notes:hlauth_audit_statement,parted:hlauth_audit,parted:hlauth_audit_statement,'
	  . 'parted_1:hlauth_audit,parted_1:hlauth_audit_statement,parted_2:hlauth_audit,parted_2:hlauth_audit_statement,'
	  . 'things:hlauth_audit,things:hlauth_audit_statement',
	'every audit trigger is back, once: on both tables, the partitioned one and its partitions');
is( $node->safe_psql('dst',
		q{SELECT string_agg(relid::text || ':' || exclude_columns::text || ':' || coalesce(tenant_column, '-'), ',' ORDER BY relid::text)
		    FROM hlauth.audited_tables}),
	'notes:{}:account_id,parted:{}:-,things:{password_hash}:account_id', 'the registrations are back');

$node->safe_psql('dst', q{
UPDATE things SET label = 'after restore', password_hash = 'hash-4' WHERE id = 1;
SELECT hlauth.audit_seal();
});
is( $node->safe_psql('dst',
		q{SELECT op || ' ' || new::text || ' ' || changed::text FROM hlauth.audit_log ORDER BY xid DESC, seq DESC LIMIT 1}),
	'UPDATE {"label": "after restore"} {label,password_hash}', 'a write after the restore is recorded');
is($node->safe_psql('dst', 'SELECT count(*) FROM hlauth.audit_log'), '13', 'restoring wrote no records of its own');
is($node->safe_psql('dst', 'SELECT ok, seals_checked, rows_checked FROM hlauth.audit_verify()'),
	't|2|13', 'the restored chain continues: 2 seals over 13 records verify');

my ($ret, $out, $err) = $node->psql('dst', 'DROP TRIGGER hlauth_audit ON things');
isnt($ret, 0, 'DROP TRIGGER hlauth_audit is refused in the restored database');
like($err, qr/can only be removed by hlauth.unaudit/, '... by the audit guard');

# Parallel restore (pg_restore -j): the guards, which run after every DDL command, used to
# lock every protected table (fingerprints) and every audited table's partitions, and
# restores of a few protected and audited tables deadlocked every time (a twenty-second
# red-team pass). Thirty more protected tables and a protected, audited table of thirty
# partitions, restored three times with four jobs.
$node->safe_psql('src', q{
	DO $$ BEGIN FOR i IN 1..30 LOOP
		EXECUTE format('CREATE TABLE many_%s (id int NOT NULL, account_id uuid NOT NULL, PRIMARY KEY (account_id, id))', i);
		PERFORM hlauth.protect(format('many_%s', i)::regclass);
	END LOOP; END $$;
	CREATE TABLE wide (id int NOT NULL, account_id uuid NOT NULL, PRIMARY KEY (account_id, id)) PARTITION BY LIST (id);
	DO $$ BEGIN FOR i IN 1..30 LOOP
		EXECUTE format('CREATE TABLE wide_%s PARTITION OF wide FOR VALUES IN (%s)', i, i);
	END LOOP; END $$;
	SELECT hlauth.protect('wide');
	SELECT hlauth.audit('wide');
});
command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', "$tmp/many.dump" ], 'pg_dump (custom), with 61 more protected tables');
my $state_sql = q{SELECT (SELECT count(*) FROM hlauth_internal.protected_tables),
	(SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'hlauth%' AND tgenabled <> 'A'),
	(SELECT count(*) FROM hlauth_internal.protected_tables pt
	  WHERE pt.fingerprint IS DISTINCT FROM hlauth_internal.protection_fingerprint(pt.relid)),
	(SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'hlauth_audit%')};
my $src_state = $node->safe_psql('src', $state_sql);
for my $run (1 .. 3)
{
	command_ok([ 'createdb', '-h', $node->host, '-p', $node->port, "par$run" ], "createdb par$run");
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run([ 'pg_restore', '--exit-on-error', '-j', '4', '-d', $node->connstr("par$run"), "$tmp/many.dump" ],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, "pg_restore -j 4, run $run, succeeds") or diag $stderr;
	is($node->safe_psql("par$run", $state_sql), $src_state,
		"... with every protected table registered, its fingerprint matching, every hlauth trigger ALWAYS and every audit trigger back (run $run)");
}

done_testing();
