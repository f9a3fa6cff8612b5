# shellcheck shell=bash
# bench/micro.sh: sourced by bench/run.sh after the pgbench rounds. Never run directly.
#
# Per-call costs of issue #3's functions, timed in SQL with clock_timestamp() around whole
# statements (one statement = thousands of calls, so the round trips do not count), each
# next to the same loop calling num_nulls() on the same arguments instead, timed after it
# (tables and plans warm), whose cost is subtracted ("net"). Warm loops: the fastest of 3
# runs; a cold pass runs once. The figures:
#   effective_scopes(principal, tenant) over 10,000 distinct (principal, tenant) pairs of the
#     grants (bench.scope_pairs): a first pass in a fresh session (cold: the tenant, the
#     principal and its grants are read with SPI), a second pass in the same session (warm),
#     and, in another fresh session whose tenant cache a pass with a principal holding no
#     grants filled first, the first use of each pair's principal and grants alone;
#   api_key_matches(stored, plaintext): one stored key and its plaintext, 100,000 calls in
#     one statement (parse, HMAC-SHA256, constant-time compare);
#   authenticate(key) in a PL/pgSQL loop: 100,000 calls in one transaction over 4 keys, next
#     to set_principal() for the same 4 principals and tenants in the same loop; then 10,000
#     distinct keys (one per account) in a fresh session, first use and again.
# Run as hlbench_app (hlauth_trusted, no superuser: authenticate refuses bypass roles), except
# api_key_matches, which reads the stored key as the superuser. Prints one line per figure.
# Wall-clock figures: as noisy as the machine (the script waits for quiet first).

# bench_micro RESULTS: prints the per-call table; keeps the raw output in RESULTS/micro.log.
bench_micro() {
	local res=$1 log=$1/micro.log keys principals tenants
	: >"$log"
	psql -X -q -U postgres -v ON_ERROR_STOP=1 >>"$log" 2>&1 <<'SQL' || { cat "$log" >&2; hl_die "micro-benchmark setup failed"; }
-- 10,000 keys, one per account (k = 1..10,000: distinct principals), readable by the app
-- role for the first-use loop; created after the pgbench rounds, so nothing measured before
-- could see it.
DROP TABLE IF EXISTS bench.micro_keys;
CREATE TABLE bench.micro_keys AS
SELECT k, t, plaintext FROM bench.api_key_plaintexts WHERE k <= 10000 ORDER BY k;
GRANT SELECT ON bench.micro_keys TO hlbench_app;
ANALYZE bench.micro_keys;
SQL
	# The 4 keys of the tight loop: the first 4 of the pgbench scripts' keys.
	keys=$(psql -X -qAt -U postgres -c "SELECT string_agg(plaintext, ' ' ORDER BY n) FROM bench.bench_keys WHERE n <= 4")
	principals=$(psql -X -qAt -U postgres -c "SELECT string_agg(md5('hlbench-key-principal-' || k)::uuid::text, ' ' ORDER BY n) FROM bench.bench_keys WHERE n <= 4")
	tenants=$(psql -X -qAt -U postgres -c "SELECT string_agg(md5('hlbench-account-' || t)::uuid::text, ' ' ORDER BY n) FROM bench.bench_keys WHERE n <= 4")

	# shellcheck disable=SC2016  # SQL, not shell: nothing to expand
	# pg_temp.per_call(body, calls, reps): runs the statement body reps times and returns the
	# fastest run's wall-clock microseconds per call (each run timed with clock_timestamp()).
	local helper='SET jit = off;
CREATE FUNCTION pg_temp.per_call(body text, calls integer, reps integer) RETURNS float8
	LANGUAGE plpgsql AS $f$
DECLARE
	t0 timestamptz;
	best float8 := '\''infinity'\'';
BEGIN
	FOR r IN 1..reps LOOP
		t0 := clock_timestamp();
		EXECUTE body;
		best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1e6 / calls);
	END LOOP;
	RETURN best;
END
$f$;'

	# (a) effective_scopes, in a fresh session: the first pass (cold) once, then the warm pass
	# (best of 3), then the baseline.
	wait_quiet
	{ echo "$helper"; cat <<'SQL'; } | psql -X -qAt -U hlbench_app -v ON_ERROR_STOP=1 -F ' ' 2>>"$log" >>"$res/micro.txt" || { cat "$log" >&2; hl_die "micro-benchmark failed: effective_scopes"; }
SELECT count(*) AS n FROM bench.scope_pairs \gset
SELECT pg_temp.per_call('SELECT count(hlauth.effective_scopes(s.principal, s.tenant)) FROM bench.scope_pairs s', :n, 1) AS cold \gset
SELECT pg_temp.per_call('SELECT count(hlauth.effective_scopes(s.principal, s.tenant)) FROM bench.scope_pairs s', :n, 3) AS warm \gset
SELECT pg_temp.per_call('SELECT count(num_nulls(s.principal, s.tenant)) FROM bench.scope_pairs s', :n, 3) AS base \gset
SELECT 'scopes_cold', :n, :cold, :base;
SELECT 'scopes_warm', :n, :warm, :base;
SQL
	# ... and, in another fresh session, the first use of principal and grants alone: the
	# tenants are cached first by a principal without grants (whose lookups are timed too).
	wait_quiet
	{ echo "$helper"; cat <<'SQL'; } | psql -X -qAt -U hlbench_app -v ON_ERROR_STOP=1 -F ' ' 2>>"$log" >>"$res/micro.txt" || { cat "$log" >&2; hl_die "micro-benchmark failed: effective_scopes (tenants cached)"; }
SELECT count(*) AS n FROM bench.scope_pairs \gset
SELECT pg_temp.per_call($$SELECT count(hlauth.effective_scopes(md5('hlbench-nobody')::uuid, s.tenant)) FROM bench.scope_pairs s$$, :n, 1) AS nogrants \gset
SELECT pg_temp.per_call('SELECT count(hlauth.effective_scopes(s.principal, s.tenant)) FROM bench.scope_pairs s', :n, 1) AS cold \gset
SELECT pg_temp.per_call($$SELECT count(num_nulls(md5('hlbench-nobody')::uuid, s.tenant)) FROM bench.scope_pairs s$$, :n, 3) AS base1 \gset
SELECT pg_temp.per_call('SELECT count(num_nulls(s.principal, s.tenant)) FROM bench.scope_pairs s', :n, 3) AS base2 \gset
SELECT 'scopes_nogrants', :n, :nogrants, :base1;
SELECT 'scopes_cold_tenants_cached', :n, :cold, :base2;
SQL

	# (b) api_key_matches: 100,000 calls in one statement on one stored key and its plaintext
	# (best of 3).
	wait_quiet
	{ echo "$helper"; cat <<'SQL'; } | psql -X -qAt -U postgres -v ON_ERROR_STOP=1 -F ' ' 2>>"$log" >>"$res/micro.txt" || { cat "$log" >&2; hl_die "micro-benchmark failed: api_key_matches"; }
CREATE TEMP TABLE mk AS
SELECT a.key AS stored, p.plaintext FROM bench.bench_keys b
  JOIN bench.api_key_plaintexts p ON p.k = b.k JOIN hlauth.api_keys a ON a.key_id = p.key_id
 WHERE b.n = 1;
ANALYZE mk;
SELECT count(*) FILTER (WHERE hlauth.api_key_matches(m.stored, m.plaintext)) AS matched FROM mk m, generate_series(1, 100000) g \gset
SELECT pg_temp.per_call('SELECT count(*) FILTER (WHERE hlauth.api_key_matches(m.stored, m.plaintext)) FROM mk m, generate_series(1, 100000) g', 100000, 3) AS t \gset
SELECT pg_temp.per_call('SELECT count(*) FILTER (WHERE num_nulls(m.stored, m.plaintext) = 0) FROM mk m, generate_series(1, 100000) g', 100000, 3) AS base \gset
SELECT CASE WHEN :matched = 100000 THEN 'key_matches' ELSE 'key_matches_FAILED' END, 100000, :t, :base;
SQL

	# (c) authenticate vs set_principal in a PL/pgSQL loop, 100,000 calls over 4 keys (their
	# principals and tenants for set_principal), each loop in one transaction; best of 3.
	# The first call per key loads it (4 of 100,000). Each baseline evaluates the same
	# arguments and calls num_nulls() instead.
	wait_quiet
	{ echo "$helper"; cat <<'SQL'; } | psql -X -qAt -U hlbench_app -v ON_ERROR_STOP=1 -F ' ' -v keys="$keys" -v principals="$principals" -v tenants="$tenants" \
		2>>"$log" >>"$res/micro.txt" || { cat "$log" >&2; hl_die "micro-benchmark failed: authenticate loop"; }
SELECT set_config('hlbench.keys', :'keys', false) IS NOT NULL AS x,
       set_config('hlbench.principals', :'principals', false) IS NOT NULL AS y,
       set_config('hlbench.tenants', :'tenants', false) IS NOT NULL AS z \gset
SELECT pg_temp.per_call($q$DO $b$
DECLARE
	ks text[] := pg_catalog.string_to_array(current_setting('hlbench.keys'), ' ');
BEGIN
	FOR i IN 1..100000 LOOP
		PERFORM hlauth.authenticate(ks[1 + i % 4]);
	END LOOP;
END
$b$$q$, 100000, 3) AS auth \gset
SELECT pg_temp.per_call($q$DO $b$
DECLARE
	ps uuid[] := pg_catalog.string_to_array(current_setting('hlbench.principals'), ' ')::uuid[];
	ts uuid[] := pg_catalog.string_to_array(current_setting('hlbench.tenants'), ' ')::uuid[];
	sc hlauth.scopes := 'contacts.readonly';
BEGIN
	FOR i IN 1..100000 LOOP
		PERFORM hlauth.set_principal(ps[1 + i % 4], ts[1 + i % 4], sc);
	END LOOP;
END
$b$$q$, 100000, 3) AS setp \gset
SELECT pg_temp.per_call($q$DO $b$
DECLARE
	ks text[] := pg_catalog.string_to_array(current_setting('hlbench.keys'), ' ');
BEGIN
	FOR i IN 1..100000 LOOP
		PERFORM pg_catalog.num_nulls(ks[1 + i % 4]);
	END LOOP;
END
$b$$q$, 100000, 3) AS base1 \gset
SELECT pg_temp.per_call($q$DO $b$
DECLARE
	ps uuid[] := pg_catalog.string_to_array(current_setting('hlbench.principals'), ' ')::uuid[];
	ts uuid[] := pg_catalog.string_to_array(current_setting('hlbench.tenants'), ' ')::uuid[];
	sc hlauth.scopes := 'contacts.readonly';
BEGIN
	FOR i IN 1..100000 LOOP
		PERFORM pg_catalog.num_nulls(ps[1 + i % 4], ts[1 + i % 4], sc);
	END LOOP;
END
$b$$q$, 100000, 3) AS base2 \gset
SELECT 'authenticate_loop', 100000, :auth, :base1;
SELECT 'set_principal_loop', 100000, :setp, :base2;
SQL

	# (d) authenticate, 10,000 distinct keys in a fresh session: first use (key, tenant,
	# principal and grants read with SPI; last_used_at written once per key), then again
	# (best of 3).
	wait_quiet
	{ echo "$helper"; cat <<'SQL'; } | psql -X -qAt -U hlbench_app -v ON_ERROR_STOP=1 -F ' ' 2>>"$log" >>"$res/micro.txt" || { cat "$log" >&2; hl_die "micro-benchmark failed: authenticate first use"; }
SELECT count(*) AS n FROM bench.micro_keys \gset
SELECT pg_temp.per_call($q$DO $b$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT plaintext FROM bench.micro_keys ORDER BY k LOOP
		PERFORM hlauth.authenticate(r.plaintext);
	END LOOP;
END
$b$$q$, :n, 1) AS first \gset
SELECT pg_temp.per_call($q$DO $b$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT plaintext FROM bench.micro_keys ORDER BY k LOOP
		PERFORM hlauth.authenticate(r.plaintext);
	END LOOP;
END
$b$$q$, :n, 3) AS again \gset
SELECT pg_temp.per_call($q$DO $b$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT plaintext FROM bench.micro_keys ORDER BY k LOOP
		PERFORM pg_catalog.num_nulls(r.plaintext);
	END LOOP;
END
$b$$q$, :n, 3) AS base \gset
SELECT 'authenticate_first', :n, :first, :base;
SELECT 'authenticate_again', :n, :again, :base;
SQL

	# The table: name calls gross-us loop-us -> net = gross - loop.
	awk '
		BEGIN {
			d["scopes_cold"] = "effective_scopes, 10,000 pairs, first pass in a fresh session (cold)"
			d["scopes_warm"] = "effective_scopes, the same pairs again, same session (warm)"
			d["scopes_nogrants"] = "effective_scopes, a principal without grants at 10,000 tenants (cold)"
			d["scopes_cold_tenants_cached"] = "effective_scopes, 10,000 pairs, tenants already cached (cold)"
			d["key_matches"] = "api_key_matches(stored, plaintext), one key, in one statement"
			d["key_matches_FAILED"] = "api_key_matches: THE KEY DID NOT MATCH (figure meaningless)"
			d["authenticate_loop"] = "authenticate(key), PL/pgSQL loop over 4 keys, one transaction"
			d["set_principal_loop"] = "set_principal(principal, tenant, scopes), same loop, same 4"
			d["authenticate_first"] = "authenticate(key), 10,000 keys, first use in a fresh session"
			d["authenticate_again"] = "authenticate(key), the same 10,000 keys again, same session"
			printf "%-72s %7s %10s %9s\n", "function (calls)", "calls", "us/call", "loop us"
		}
		{ printf "%-72s %7d %10.2f %9.2f\n", d[$1], $2, $3 - $4, $4 }' "$res/micro.txt"
	echo "us/call: wall-clock time per call, net of the same loop without the call (loop us)."
}
