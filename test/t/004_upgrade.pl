# 004_upgrade.pl: ALTER EXTENSION hlauth UPDATE from 0.1.0 to 0.2.0 gives exactly what
# CREATE EXTENSION hlauth (0.2.0) gives, and keeps a protected table working.
#
# One cluster (with a server secret), two databases:
#   a   CREATE EXTENSION hlauth VERSION '0.1.0'; tenants, a protected and populated table,
#       an app role that reads it through set_principal; then
#       ALTER EXTENSION hlauth UPDATE TO '0.2.0'.
#   b   CREATE EXTENSION hlauth (0.2.0).
# Both must then be at 0.2.0 and identical in every catalog property of the extension's
# objects, compared as text without OIDs: the extension's member objects and its config
# tables; schemas; every function of hlauth and hlauth_internal (signature, result,
# language, SECURITY DEFINER, volatility, parallel safety, leakproofness, strictness,
# proconfig, ACL, owner, cost, body); every relation (kind, RLS flags, ACL, options, view
# and index definitions), column (position, type, NOT NULL, default, ACL), constraint,
# policy, trigger; event triggers; types; operators, operator classes and their members;
# casts; the comment on every one of these objects; and hlauth's own rows in
# hlauth.permissions.
# Then, in a: the table protected under 0.1.0 still isolates (no context: no rows), and
# once permissions, a role and grants exist (0.2.0's set_principal keeps only the scopes
# the principal holds), set_principal reads and writes exactly its account's rows, and an
# API key issued after the update authenticates.
#
# Environment: TESTDIR (writable), PG_REGRESS (for Cluster->init), PATH with the PostgreSQL
# 15 binaries.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use HlauthTest;

my $agency = 'e0000000-0000-4000-8000-0000000000a0';
my $acct1  = 'e0000000-0000-4000-8000-0000000000a1';
my $acct2  = 'e0000000-0000-4000-8000-0000000000a2';
my $p1     = 'e0000000-0000-4000-8000-000000000001';
my $p2     = 'e0000000-0000-4000-8000-000000000002';

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', 'log_statement = none');

# The server secret (hlauth.secret_file): see HlauthTest.pm.
hl_setup_secret($node);
$node->start;

$node->safe_psql('postgres', q{
CREATE DATABASE a;
CREATE DATABASE b;
CREATE ROLE hl_app LOGIN NOSUPERUSER NOBYPASSRLS;
});
my $app_a = $node->connstr('a') . ' user=hl_app';

# ---------------------------------------------------------------------------
# a: 0.1.0, with a protected and populated table
# ---------------------------------------------------------------------------
$node->safe_psql('a', qq{
CREATE EXTENSION hlauth VERSION '0.1.0';
GRANT hlauth_trusted TO hl_app;
SELECT hlauth.create_tenant('agency', NULL, 'agency', '$agency');
SELECT hlauth.create_tenant('account', '$agency', 'account 1', '$acct1');
SELECT hlauth.create_tenant('account', '$agency', 'account 2', '$acct2');
CREATE TABLE notes (account_id uuid NOT NULL, id int NOT NULL, body text NOT NULL,
					PRIMARY KEY (account_id, id));
INSERT INTO notes VALUES ('$acct1', 1, 'a1 one'), ('$acct1', 2, 'a1 two'), ('$acct2', 1, 'a2 one');
SELECT hlauth.protect('notes', 'account_id', 'notes.read', 'notes.write');
GRANT SELECT, INSERT ON notes TO hl_app;
});
is($node->safe_psql('a', q{SELECT extversion FROM pg_extension WHERE extname = 'hlauth'}),
	'0.1.0', 'a: hlauth 0.1.0 installed');
is($node->safe_psql('a', 'SELECT count(*) FROM hlauth_internal.protected_tables'), '1',
	'a: the table is protected under 0.1.0');
is($node->safe_psql('a', 'SELECT count(*) FROM notes', connstr => $app_a), '0',
	'a, 0.1.0: without a context the app role sees no rows');

# set_principal under 0.1.0. The installed library is 0.2.0's: its set_principal keeps only
# the scopes the principal holds (hlauth.permissions, hlauth.grants, ...), tables that 0.1.0
# does not have. Either it works as 0.1.0's did, or it refuses; never more rows.
my $read_acct1 = qq{
BEGIN;
SELECT 'set' FROM (SELECT hlauth.set_principal('$p1', '$acct1', 'notes.read')) s;
SELECT coalesce(string_agg(body, ',' ORDER BY id), '-') FROM notes;
COMMIT;
};
{
	my ($ret, $out, $err) = $node->psql('a', $read_acct1, connstr => $app_a);
	if ($ret == 0)
	{
		is($out, "set\na1 one,a1 two", 'a, 0.1.0: set_principal reads exactly its account\'s rows');
	}
	else
	{
		like($err, qr/hlauth 0\.2\.0 is not installed in this database/,
			'a, 0.1.0 with the 0.2.0 library: set_principal refuses, naming the missing update');
		note "a, 0.1.0: set_principal with the 0.2.0 library refused: $err";
	}
	is($node->safe_psql('a', 'SELECT count(*) FROM notes', connstr => $app_a), '0',
		'a, 0.1.0: after that, still no rows without a context');
}

# The installed update script: plain SQL after its \echo guard line (no control characters,
# which a shell's echo makes of "\e" when the build writes the guard with echo).
{
	my ($sharedir) = run_command([ 'pg_config', '--sharedir' ]);
	chomp $sharedir;
	my $script = slurp_file("$sharedir/extension/hlauth--0.1.0--0.2.0.sql");
	my ($first) = split /\n/, $script;
	like($first, qr/^\\echo Use "ALTER EXTENSION hlauth UPDATE/,
		'the installed update script starts with its \\echo guard line');
	my @bad = $script =~ /([^\t\n\r\x20-\x7e\x80-\xff])/g;
	is(join(' ', map { sprintf('0x%02x', ord) } @bad), '',
		'the installed update script has no control characters');
}

my ($update_ret, undef, $update_err) = $node->psql('a', q{ALTER EXTENSION hlauth UPDATE TO '0.2.0'});
is($update_ret, 0, "a: ALTER EXTENSION hlauth UPDATE TO '0.2.0' succeeds") or diag $update_err;
$node->safe_psql('b', 'CREATE EXTENSION hlauth');
is($node->safe_psql('a', q{SELECT extversion FROM pg_extension WHERE extname = 'hlauth'}),
	'0.2.0', 'a: updated to 0.2.0');
if ($update_ret != 0)
{
	# Nothing below means anything without the update.
	done_testing();
	exit 0;
}
is($node->safe_psql('b', q{SELECT extversion FROM pg_extension WHERE extname = 'hlauth'}),
	'0.2.0', 'b: CREATE EXTENSION hlauth installs 0.2.0');

# ---------------------------------------------------------------------------
# The catalogs of a and b
# ---------------------------------------------------------------------------
# One line per object and property set, without OIDs. search_path = pg_catalog makes
# regclass, regprocedure, regtype and friends print schema-qualified names.
my $catalog_sql = <<'SQL';
SET search_path = pg_catalog;
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'hlauth'),
nsp AS (SELECT oid FROM pg_namespace WHERE nspname IN ('hlauth', 'hlauth_internal')),
members AS (
	SELECT d.classid, d.objid, d.objsubid FROM pg_depend d, ext
	 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
nsp_types AS (SELECT oid FROM pg_type WHERE typnamespace IN (SELECT oid FROM nsp)),
nsp_procs AS (SELECT oid FROM pg_proc WHERE pronamespace IN (SELECT oid FROM nsp)),
lines AS (
	-- the extension itself, its config tables and their dump conditions
	SELECT format('extension %s version=%s schema=%s relocatable=%s owner=%s config=%L',
				  e.extname, e.extversion, e.extnamespace::regnamespace, e.extrelocatable, e.extowner::regrole,
				  (SELECT string_agg(c::regclass::text || ' ' || coalesce(cond, '<null>'), '; ' ORDER BY c::regclass::text)
					 FROM unnest(e.extconfig, e.extcondition) u(c, cond))) AS line
	  FROM pg_extension e WHERE e.extname = 'hlauth'
	UNION ALL
	-- every member object
	SELECT format('member %s %s', o.type, o.identity)
	  FROM members m, LATERAL pg_identify_object(m.classid, m.objid, m.objsubid) o
	UNION ALL
	SELECT format('schema %s owner=%s acl=%L comment=%L', n.nspname, n.nspowner::regrole, n.nspacl,
				  obj_description(n.oid, 'pg_namespace'))
	  FROM pg_namespace n WHERE n.oid IN (SELECT oid FROM nsp)
	UNION ALL
	SELECT format('function %s kind=%s secdef=%s volatile=%s parallel=%s leakproof=%s strict=%s retset=%s returns=%L lang=%s config=%L acl=%L owner=%s cost=%s rows=%s args=%L src=%s bin=%L support=%s comment=%L',
				  p.oid::regprocedure, p.prokind, p.prosecdef, p.provolatile, p.proparallel, p.proleakproof,
				  p.proisstrict, p.proretset, pg_get_function_result(p.oid), l.lanname, p.proconfig, p.proacl,
				  p.proowner::regrole, p.procost, p.prorows, pg_get_function_arguments(p.oid), md5(p.prosrc),
				  p.probin, p.prosupport, obj_description(p.oid, 'pg_proc'))
	  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
	 WHERE p.oid IN (SELECT oid FROM nsp_procs)
	UNION ALL
	SELECT format('relation %s kind=%s persistence=%s rls=%s force_rls=%s acl=%L options=%L owner=%s replident=%s comment=%L def=%L',
				  c.oid::regclass, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
				  c.relacl, c.reloptions, c.relowner::regrole, c.relreplident, obj_description(c.oid, 'pg_class'),
				  CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid)
					   WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid)
					   WHEN c.relkind = 'S' THEN (SELECT format('%s %s %s %s %s %s', s.seqtypid::regtype, s.seqstart,
														  s.seqincrement, s.seqmin, s.seqmax, s.seqcycle)
													 FROM pg_sequence s WHERE s.seqrelid = c.oid) END)
	  FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM nsp)
	UNION ALL
	SELECT format('column %s.%I position=%s type=%s notnull=%s default=%L identity=%L generated=%L storage=%s collation=%L acl=%L comment=%L',
				  a.attrelid::regclass, a.attname,
				  row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
				  format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
				  a.attidentity, a.attgenerated, a.attstorage,
				  (SELECT co.collname FROM pg_collation co WHERE co.oid = a.attcollation), a.attacl,
				  col_description(a.attrelid, a.attnum))
	  FROM pg_attribute a
	  JOIN pg_class c ON c.oid = a.attrelid
	  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	 WHERE c.relnamespace IN (SELECT oid FROM nsp) AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT format('constraint %I on %s type=%s def=%L deferrable=%s deferred=%s validated=%s comment=%L',
				  co.conname, CASE WHEN co.conrelid <> 0 THEN co.conrelid::regclass::text ELSE co.contypid::regtype::text END,
				  co.contype, pg_get_constraintdef(co.oid), co.condeferrable, co.condeferred, co.convalidated,
				  obj_description(co.oid, 'pg_constraint'))
	  FROM pg_constraint co WHERE co.connamespace IN (SELECT oid FROM nsp)
	UNION ALL
	SELECT format('policy %I on %s cmd=%s permissive=%s roles=%L using=%L check=%L comment=%L',
				  pol.polname, pol.polrelid::regclass, pol.polcmd, pol.polpermissive,
				  (SELECT string_agg(r.name, ',' ORDER BY r.name)
					 FROM (SELECT CASE WHEN x = 0 THEN 'public' ELSE x::regrole::text END AS name
							 FROM unnest(pol.polroles) x) r),
				  pg_get_expr(pol.polqual, pol.polrelid), pg_get_expr(pol.polwithcheck, pol.polrelid),
				  obj_description(pol.oid, 'pg_policy'))
	  FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid
	 WHERE c.relnamespace IN (SELECT oid FROM nsp)
	UNION ALL
	SELECT format('trigger %I on %s enabled=%s def=%L comment=%L', t.tgname, t.tgrelid::regclass, t.tgenabled,
				  pg_get_triggerdef(t.oid), obj_description(t.oid, 'pg_trigger'))
	  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
	 WHERE c.relnamespace IN (SELECT oid FROM nsp) AND NOT t.tgisinternal
	UNION ALL
	SELECT format('event trigger %I event=%s function=%s enabled=%s tags=%L owner=%s comment=%L',
				  ev.evtname, ev.evtevent, ev.evtfoid::regprocedure, ev.evtenabled, ev.evttags,
				  ev.evtowner::regrole, obj_description(ev.oid, 'pg_event_trigger'))
	  FROM pg_event_trigger ev
	UNION ALL
	SELECT format('type %s type=%s len=%s byval=%s align=%s storage=%s in=%s out=%s recv=%s send=%s modin=%s modout=%s analyze=%s subscript=%s category=%s preferred=%s delim=%s elem=%s array=%s rel=%s notnull=%s base=%s default=%L collation=%L acl=%L owner=%s comment=%L',
				  t.oid::regtype, t.typtype, t.typlen, t.typbyval, t.typalign, t.typstorage,
				  t.typinput::regprocedure, t.typoutput::regprocedure, t.typreceive::regprocedure,
				  t.typsend::regprocedure, t.typmodin::regprocedure, t.typmodout::regprocedure,
				  t.typanalyze::regprocedure, t.typsubscript::regprocedure, t.typcategory, t.typispreferred,
				  t.typdelim, t.typelem::regtype, t.typarray::regtype,
				  CASE WHEN t.typrelid <> 0 THEN t.typrelid::regclass::text END, t.typnotnull,
				  t.typbasetype::regtype, t.typdefault,
				  (SELECT co.collname FROM pg_collation co WHERE co.oid = t.typcollation), t.typacl,
				  t.typowner::regrole, obj_description(t.oid, 'pg_type'))
	  FROM pg_type t WHERE t.oid IN (SELECT oid FROM nsp_types)
	UNION ALL
	SELECT format('enum %s %s %s', e.enumtypid::regtype, e.enumsortorder, e.enumlabel)
	  FROM pg_enum e WHERE e.enumtypid IN (SELECT oid FROM nsp_types)
	UNION ALL
	SELECT format('operator %s result=%s code=%s commutator=%s negator=%s restrict=%s join=%s merges=%s hashes=%s owner=%s comment=%L',
				  o.oid::regoperator, o.oprresult::regtype, o.oprcode::regprocedure, o.oprcom::regoperator,
				  o.oprnegate::regoperator, o.oprrest::regprocedure, o.oprjoin::regprocedure, o.oprcanmerge,
				  o.oprcanhash, o.oprowner::regrole, obj_description(o.oid, 'pg_operator'))
	  FROM pg_operator o WHERE o.oprnamespace IN (SELECT oid FROM nsp)
	UNION ALL
	SELECT format('opfamily %s owner=%s comment=%L', pg_describe_object('pg_opfamily'::regclass, f.oid, 0),
				  f.opfowner::regrole, obj_description(f.oid, 'pg_opfamily'))
	  FROM pg_opfamily f WHERE f.opfnamespace IN (SELECT oid FROM nsp)
	UNION ALL
	SELECT format('opclass %s type=%s default=%s family=%s keytype=%s owner=%s comment=%L',
				  pg_describe_object('pg_opclass'::regclass, oc.oid, 0), oc.opcintype::regtype, oc.opcdefault,
				  pg_describe_object('pg_opfamily'::regclass, oc.opcfamily, 0), oc.opckeytype::regtype,
				  oc.opcowner::regrole, obj_description(oc.oid, 'pg_opclass'))
	  FROM pg_opclass oc WHERE oc.opcnamespace IN (SELECT oid FROM nsp)
	UNION ALL
	SELECT format('amop %s purpose=%s', pg_describe_object('pg_amop'::regclass, ao.oid, 0), ao.amoppurpose)
	  FROM pg_amop ao JOIN pg_opfamily f ON f.oid = ao.amopfamily
	 WHERE f.opfnamespace IN (SELECT oid FROM nsp)
	UNION ALL
	SELECT format('amproc %s', pg_describe_object('pg_amproc'::regclass, ap.oid, 0))
	  FROM pg_amproc ap JOIN pg_opfamily f ON f.oid = ap.amprocfamily
	 WHERE f.opfnamespace IN (SELECT oid FROM nsp)
	UNION ALL
	SELECT format('cast %s as %s function=%s context=%s method=%s comment=%L',
				  ca.castsource::regtype, ca.casttarget::regtype, ca.castfunc::regprocedure, ca.castcontext,
				  ca.castmethod, obj_description(ca.oid, 'pg_cast'))
	  FROM pg_cast ca
	 WHERE ca.castsource IN (SELECT oid FROM nsp_types) OR ca.casttarget IN (SELECT oid FROM nsp_types)
		OR ca.castfunc IN (SELECT oid FROM nsp_procs)
	UNION ALL
	-- every comment on an object of the extension: its members (and their columns), anything
	-- in its schemas, and what hangs off its tables (policies, triggers, constraints)
	SELECT format('comment on %s %s: %L', o.type, o.identity, d.description)
	  FROM pg_description d, LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) o
	 WHERE (d.classoid, d.objoid) IN (SELECT classid, objid FROM members)
		OR o.schema IN ('hlauth', 'hlauth_internal')
		OR d.classoid IN ('pg_event_trigger'::regclass, 'pg_extension'::regclass)
		OR (d.classoid = 'pg_policy'::regclass
			AND d.objoid IN (SELECT p.oid FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
							  WHERE c.relnamespace IN (SELECT oid FROM nsp)))
		OR (d.classoid = 'pg_trigger'::regclass
			AND d.objoid IN (SELECT t.oid FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
							  WHERE c.relnamespace IN (SELECT oid FROM nsp)))
	UNION ALL
	-- hlauth's own rows of its registry (the rest is the user's data)
	SELECT format('permission %s %L %L', p.scope, p.description, p.implies)
	  FROM hlauth.permissions p WHERE left(p.scope, 7) = 'hlauth/'
)
SELECT replace(line, E'\n', '\n') FROM lines ORDER BY 1;
SQL

my @cat_a = split /\n/, $node->safe_psql('a', $catalog_sql);
my @cat_b = split /\n/, $node->safe_psql('b', $catalog_sql);
my %in_a = map { $_ => 1 } @cat_a;
my %in_b = map { $_ => 1 } @cat_b;

# Sanity: the snapshot sees what it should (otherwise "identical" would mean nothing).
foreach my $kind (qw(extension member schema function relation column constraint policy
	trigger type operator opclass amop amproc cast comment permission))
{
	my $n = grep { /^\Q$kind\E / } @cat_b;
	ok($n > 0, "the catalog snapshot of b has $kind lines ($n)");
}
my $n_event = grep { /^event trigger / } @cat_b;
ok($n_event > 0, "the catalog snapshot of b has event trigger lines ($n_event)");
foreach my $expect (
	qr/^extension hlauth version=0\.2\.0 .*hlauth\.api_keys /,
	qr/^function hlauth\.authenticate\(text\) /,
	qr/^function hlauth\.issue_api_key\(uuid,uuid,hlauth\.scopes,timestamp with time zone,text,jsonb\) kind=f secdef=f /,
	qr/^function hlauth_internal\.issue_api_key\(bytea,uuid,uuid,hlauth\.scopes,timestamp with time zone,text,jsonb\) kind=f secdef=t /,
	qr/^relation hlauth\.api_keys kind=r persistence=p rls=t force_rls=t /,
	qr/^column hlauth\.api_keys\.key position=2 type=hlauth\.apikey notnull=t /,
	qr/^policy api_keys_read on hlauth\.api_keys /,
	qr/^trigger api_keys_changed on hlauth\.api_keys /,
	qr/^type hlauth\.apikey /,
	qr/^comment on function hlauth\.authenticate\(pg_catalog\.text\): /,
	qr/^permission hlauth\/keys\.write /)
{
	ok((grep { $_ =~ $expect } @cat_b), "the catalog snapshot of b has a line like $expect");
}

# Identical, line for line. Show only the differences.
my @only_a = grep { !$in_b{$_} } @cat_a;
my @only_b = grep { !$in_a{$_} } @cat_b;
is(join("\n", @only_a), '', 'nothing in a (0.1.0 updated to 0.2.0) that b (0.2.0) does not have');
is(join("\n", @only_b), '', 'nothing in b (0.2.0) that a (0.1.0 updated to 0.2.0) does not have');
is(scalar(@cat_a), scalar(@cat_b), 'a and b: the same number of catalog lines (' . scalar(@cat_b) . ')');

# The same, per area, so that a failure names what differs.
foreach my $kind (qw(extension member schema function relation column constraint policy
	trigger event type enum operator opfamily opclass amop amproc cast comment permission))
{
	my @a = grep { /^\Q$kind\E / } @cat_a;
	my @b = grep { /^\Q$kind\E / } @cat_b;
	is_deeply(\@a, \@b, "a and b: identical $kind lines (" . scalar(@b) . ')');
}

# ---------------------------------------------------------------------------
# a after the update: the table protected under 0.1.0 keeps working
# ---------------------------------------------------------------------------
is($node->safe_psql('a', 'SELECT count(*) FROM hlauth_internal.protected_tables'), '1',
	'a, 0.2.0: the table is still registered as protected');
is( $node->safe_psql('a', q{SELECT count(*) FROM pg_policy WHERE polrelid = 'notes'::regclass}),
	$node->safe_psql('a', q{SELECT count(*) FROM pg_policy WHERE polrelid = 'notes'::regclass AND polname LIKE 'hlauth%'}),
	'a, 0.2.0: the protected table has only hlauth\'s policies');
is($node->safe_psql('a', q{SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = 'notes'::regclass}),
	't', 'a, 0.2.0: row-level security still enabled and forced');
is($node->safe_psql('a', 'SELECT count(*) FROM notes', connstr => $app_a), '0',
	'a, 0.2.0: without a context the app role sees no rows');

# 0.2.0's set_principal keeps only what the principal holds: nothing yet.
is( $node->safe_psql('a', qq{
BEGIN;
SELECT 'set' FROM (SELECT hlauth.set_principal('$p1', '$acct1', 'notes.read')) s;
SELECT format('[%s] %s', hlauth.scopes(), (SELECT count(*) FROM notes));
COMMIT;
}, connstr => $app_a),
	"set\n[] 0",
	'a, 0.2.0: before any grant, set_principal keeps no scope and the principal reads nothing');

$node->safe_psql('a', qq{
SELECT hlauth.register_permission('notes.read', 'read notes');
SELECT hlauth.register_permission('notes.write', 'write notes', ARRAY['notes.read']);
CREATE TEMP TABLE r AS SELECT hlauth.create_role('note editor', 'notes.read notes.write') AS id;
SELECT hlauth.grant_role('$p1', (SELECT id FROM r), '$acct1');
SELECT hlauth.grant_role('$p2', (SELECT id FROM r), '$acct2');
});

is($node->safe_psql('a', $read_acct1, connstr => $app_a), "set\na1 one,a1 two",
	'a, 0.2.0: after the grants, set_principal at account 1 reads exactly its rows');
is( $node->safe_psql('a', qq{
BEGIN;
SELECT 'set' FROM (SELECT hlauth.set_principal('$p2', '$acct2', 'notes.read')) s;
SELECT coalesce(string_agg(body, ',' ORDER BY id), '-') FROM notes;
COMMIT;
}, connstr => $app_a),
	"set\na2 one", 'a, 0.2.0: set_principal at account 2 reads exactly its row');
is( $node->safe_psql('a', qq{
BEGIN;
SELECT 'set' FROM (SELECT hlauth.set_principal('$p1', '$acct2', 'notes.read')) s;
SELECT count(*) FROM notes;
COMMIT;
}, connstr => $app_a),
	"set\n0", 'a, 0.2.0: a principal without a grant at account 2 reads nothing there');

# Writes: the tenant column defaults to the context's account; another account is refused.
is( $node->safe_psql('a', qq{
BEGIN;
SELECT 'set' FROM (SELECT hlauth.set_principal('$p1', '$acct1', 'notes.read notes.write')) s;
INSERT INTO notes (id, body) VALUES (3, 'a1 three');
SELECT string_agg(body, ',' ORDER BY id) FROM notes;
COMMIT;
}, connstr => $app_a),
	"set\na1 one,a1 two,a1 three", 'a, 0.2.0: an insert lands in the context\'s account');
{
	my ($ret, $out, $err) = $node->psql('a', qq{
BEGIN;
SELECT 'set' FROM (SELECT hlauth.set_principal('$p1', '$acct1', 'notes.read notes.write')) s;
INSERT INTO notes (account_id, id, body) VALUES ('$acct2', 9, 'smuggled');
COMMIT;
}, connstr => $app_a);
	isnt($ret, 0, 'a, 0.2.0: an insert into another account is refused');
}
is($node->safe_psql('a', q{SELECT string_agg(account_id::text || ':' || id, ',' ORDER BY account_id, id) FROM notes}),
	"$acct1:1,$acct1:2,$acct1:3,$acct2:1", 'a, 0.2.0: the table holds exactly the rows written');

# API keys work in the updated database.
my $key = $node->safe_psql('a', qq{SELECT hlauth.issue_api_key('$p1', '$acct1', 'notes.read', NULL, 'after update')});
like($key, qr/^hlk_live_[0-9A-Za-z]{40}$/, 'a, 0.2.0: an API key can be issued');
is( $node->safe_psql('a', qq{
BEGIN;
SELECT 'authenticated' FROM (SELECT hlauth.authenticate('$key')) s;
SELECT string_agg(body, ',' ORDER BY id) FROM notes;
COMMIT;
}, connstr => $app_a),
	"authenticated\na1 one,a1 two,a1 three", 'a, 0.2.0: the key authenticates and reads its account\'s rows');

# ---------------------------------------------------------------------------
# c: what 0.1.0 let a table owner keep is reported by the update, and the update itself
# does not report every protected table as "changed by hand" (a red-team pass)
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE DATABASE c;
ALTER DATABASE c SET session_preload_libraries = 'hlauth';
CREATE ROLE hl_owner NOLOGIN NOSUPERUSER NOBYPASSRLS;
});
$node->safe_psql('c', qq{
CREATE EXTENSION hlauth VERSION '0.1.0';
GRANT hlauth_trusted TO hl_owner;
SELECT hlauth.create_tenant('agency', NULL, 'agency', '$agency');
SELECT hlauth.create_tenant('account', '$agency', 'account 1', '$acct1');
CREATE SCHEMA crm AUTHORIZATION hl_owner;
SET ROLE hl_owner;
CREATE TABLE crm.contacts (account_id uuid NOT NULL, id int NOT NULL, note text,
						   PRIMARY KEY (account_id, id));
CREATE FUNCTION crm.spy() RETURNS text LANGUAGE sql AS 'SELECT current_user::text';
SELECT hlauth.protect('crm.contacts');
-- both refused by 0.2.0 to a table owner, both allowed by 0.1.0
ALTER TABLE crm.contacts ALTER COLUMN note SET DEFAULT crm.spy();
CREATE TABLE crm.probe (account_id uuid NOT NULL, id int NOT NULL,
						FOREIGN KEY (account_id, id) REFERENCES crm.contacts);
RESET ROLE;
-- an admin's table whose protection is changed while the event triggers are off
CREATE TABLE tweaked (account_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (account_id, id));
SELECT hlauth.protect('tweaked');
ALTER EVENT TRIGGER hlauth_guard_protection DISABLE;
ALTER POLICY hlauth_select ON tweaked USING (true);
ALTER EVENT TRIGGER hlauth_guard_protection ENABLE;
});
{
	my ($ret, undef, $err) = $node->psql('c', q{ALTER EXTENSION hlauth UPDATE TO '0.2.0'});
	is($ret, 0, 'c: the update succeeds') or diag $err;
	unlike($err, qr/was changed by hand/, 'c: the update does not report tables as changed by hand');
	like($err, qr/WARNING:  the hlauth protection of table (?:public\.)?tweaked differs from what hlauth recorded/,
		'c: the update reports the table changed while the event triggers were off');
	like($err, qr/WARNING:  hlauth: protected table crm\.contacts: table contacts has column note with a default calling a non-admin's function/,
		'c: the update reports the owner\'s default on the protected table');
	like($err, qr/WARNING:  hlauth: protected table crm\.contacts: table probe, which is not protected, has foreign key \S+ into it/,
		'c: the update reports the foreign key into it from an unprotected table');
	unlike($err, qr/protected table tweaked:/, 'c: the admin\'s table has no owner code to report');
}
is($node->safe_psql('c', q{SELECT string_agg(tbl::text || ': ' || finding, E'\n' ORDER BY 1, 2) FROM hlauth.review_protection()}),
	"crm.contacts: table contacts has column note with a default calling a non-admin's function\n"
	  . "crm.contacts: table probe, which is not protected, has foreign key probe_account_id_id_fkey into it",
	'c: hlauth.review_protection() lists both');
{
	my ($ret, undef, $err) = $node->psql('c', q{SET ROLE hl_owner; SELECT * FROM hlauth.review_protection()});
	like($err, qr/permission denied/, 'c: review_protection() is for hlauth_admin only');
}
# After the update the stored fingerprints are 0.2.0's: an admin's next DDL finds nothing
{
	my ($ret, undef, $err) = $node->psql('c', q{CREATE TABLE after_update (i int)});
	is($ret, 0, 'c: an admin\'s DDL after the update succeeds');
	unlike($err, qr/changed by hand/, 'c: and finds no protection changed');
}

done_testing();
