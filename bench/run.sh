#!/usr/bin/env bash
# bench/run.sh: `make bench`. hlauth's tenant isolation next to its baselines, side by side in
# one run, on a throwaway cluster of its own (never a system cluster).
#
# Installs what is missing, builds and installs hlauth (as `make test` does), starts a cluster
# as the unprivileged cluster user in a scratch folder, loads 10,000 account tenants under 100
# agencies and a 2,000,000-row table four times over (bench/setup.sql), checks that every
# variant sees exactly its tenant's rows (bench/check.sql), then runs pgbench -M prepared for
# each variant and query, interleaved, and prints TPS and the ratio to the limit, the plans of
# the measured queries, and the machine. Stops the cluster at the end. The hlauth.so built
# for the run is pinned (the benchmark database's functions point at a private copy), so
# another `make install` during the run cannot change what is measured.
#
# Variants (each its own copy of the same table), every one `BEGIN; <set context>; <query>; COMMIT`:
#   limit            no RLS, table owner, WHERE account_id = <tenant> [AND id = <id>];
#                    <set context> = SELECT md5(...)::uuid AS tenant \gset (the uuid it then names)
#   current_setting  RLS policy account_id = current_setting('app.tenant')::uuid, app role;
#                    <set context> = SELECT set_config('app.tenant', <uuid>, true)
#   hlauth           hlauth.protect()ed table (read scope contacts.readonly), app role granted
#                    hlauth_trusted; <set context> = SELECT hlauth.set_principal(<principal>,
#                    <uuid>, <scopes>)
#   hlauth_noscope   the same, protected without a read scope: a diagnostic row showing what
#                    the read-scope check costs
#   auth             (issue #3) the hlauth table and role; <set context> = SELECT
#                    hlauth.authenticate('<API key>'): point lookup only, compared with hlauth
#                    (target >= 0.9 of its TPS). pgbench cannot compute keys, and takes at most
#                    128 scripts: BENCH_AUTH_KEYS keys (default 500) drawn at random from the
#                    100,000 of setup.sql go into 100 generated scripts (-f file@1 each), each
#                    choosing one of its keys per transaction with \if; the row looked up is one
#                    of the key's tenant's.
# Queries: point lookup of one row by id, and count(*) of the tenant's 200 rows.
# Besides TPS, each run's server CPU per transaction is measured (the CPU time of the
# backends, from the postmaster's reaped-children counters), and the CPU the rest of the
# machine used meanwhile ("other"): a run with a high "other" was disturbed.
# After the rounds, bench/micro.sh times issue #3's functions per call (effective_scopes cold
# and warm, api_key_matches, authenticate and set_principal in a PL/pgSQL loop).
# The cluster has a server secret (hlauth.secret_file, a random key written for the run): API
# keys are hashed with a pepper derived from it.
#
# Settings (environment):
#   BENCH_SECONDS        seconds per pgbench run (default 20; BENCH_SECONDS=3 for a smoke run)
#   BENCH_ROUNDS         interleaved rounds (default 2: odd rounds in the order above, even
#                        rounds reversed)
#   BENCH_WARMUP         seconds of untimed warm-up per script before round 1 (default 5, 0: none)
#   BENCH_CLIENTS        pgbench -c and -j (default 2)
#   BENCH_SHARED_BUFFERS shared_buffers of the cluster (default 2GB: every variant's table and
#                        index stay in shared buffers, loaded there by pg_prewarm after the load)
#   BENCH_VARIANTS       variants to run (default "limit setting hlauth auth noscope"; limit is
#                        needed, and hlauth for auth's ratio)
#   BENCH_AUTH_KEYS      API keys in the auth variant's scripts (default 500: 100 scripts x 5)
#   BENCH_MICRO          0: skip the per-call micro-benchmarks (default 1)
#   BENCH_MIXED_SECONDS  seconds of each mixed run (all variants interleaved in one pgbench
#                        run per query; default 60, 0: none)
#   BENCH_MIXED_SAMPLE   the share of transactions whose latency pgbench logs there (0.2)
#   BENCH_PROFILE        1: afterwards, count server instructions per transaction with valgrind
#                        (deterministic, immune to machine noise; bench/profile.sh)
#   BENCH_MAX_OTHER      each run waits (up to BENCH_QUIET_WAIT seconds) until other processes
#   BENCH_QUIET_WAIT     use at most this % of the machine, and a run during which they used
#   BENCH_RETRIES        more is repeated, up to BENCH_RETRIES times (defaults 10, 120, 2)
#   HL_BENCH_PORT        port of the cluster's Unix socket (default 55470)
# The cluster runs with fsync and full_page_writes off: the benchmark is read-only, they
# only speed up the load, and the data is thrown away. synchronous_commit stays on: after an
# asynchronous commit VACUUM may not set pages all-visible (it cannot set hint bits before the
# commit record is flushed), and index-only scans would then visit the heap in one variant
# and not in another (setup.sql checks). Autovacuum is off: the data never changes after the
# load's VACUUM, and nothing should run beside the measured transactions.
# A copy of the report goes to bench/results/<UTC time>.txt (not committed).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=test/lib.sh
source test/lib.sh

BENCH_SECONDS=${BENCH_SECONDS:-20}
BENCH_ROUNDS=${BENCH_ROUNDS:-2}
BENCH_WARMUP=${BENCH_WARMUP:-5}
BENCH_CLIENTS=${BENCH_CLIENTS:-2}
BENCH_SHARED_BUFFERS=${BENCH_SHARED_BUFFERS:-2GB}
BENCH_PROFILE=${BENCH_PROFILE:-0}
BENCH_MAX_OTHER=${BENCH_MAX_OTHER:-10}
BENCH_RETRIES=${BENCH_RETRIES:-2}
BENCH_QUIET_WAIT=${BENCH_QUIET_WAIT:-120}
PORT=${HL_BENCH_PORT:-55470}
QUERIES="point count"
VARIANTS=${BENCH_VARIANTS:-limit setting hlauth auth noscope}
BENCH_AUTH_KEYS=${BENCH_AUTH_KEYS:-500}
BENCH_MICRO=${BENCH_MICRO:-1}
BENCH_MIXED_SECONDS=${BENCH_MIXED_SECONDS:-60}
BENCH_MIXED_SAMPLE=${BENCH_MIXED_SAMPLE:-0.2}
AUTH_FILES=100
[ "$BENCH_AUTH_KEYS" -lt "$AUTH_FILES" ] && AUTH_FILES=$BENCH_AUTH_KEYS
AUTH_PER_FILE=$(( (BENCH_AUTH_KEYS + AUTH_FILES - 1) / AUTH_FILES ))

# Does variant $2 have query $1? (auth: the point lookup only)
has_query() { [ "$1.$2" != count.auth ]; }

# ---------------------------------------------------------------------------------------
# Part 2, as the cluster user: cluster, load, check, measure, report. Prints the report.
# ---------------------------------------------------------------------------------------
bench_cluster_part() {
	local scratch=$1
	local data=$scratch/cluster res=$scratch/results
	local q v r order ok so_before load_before load_after

	rm -rf "$res"
	mkdir -p "$res"
	hl_cluster_stop "$data"
	rm -rf "$data" "$data.initdb.log"
	# The server secret API keys are hashed with (version 1: 32 random bytes), outside the
	# data directory, readable by the cluster user only.
	hl_write_secret "$scratch/secret" 'hlauth benchmark cluster secret (throwaway)'
	hl_log "starting a throwaway cluster in $data (port $PORT, shared_buffers $BENCH_SHARED_BUFFERS)"
	hl_cluster_start "$data" "$PORT" \
		"shared_buffers = $BENCH_SHARED_BUFFERS" \
		"full_page_writes = off" \
		"max_wal_size = 4GB" \
		"maintenance_work_mem = 512MB" \
		"autovacuum = off" \
		"hlauth.secret_file = '$scratch/secret'"
	trap 'hl_cluster_stop "'"$data"'"' EXIT
	export PGHOST=$data PGPORT=$PORT PGDATABASE=hlbench
	export PATH="$HL_PGBIN:$PATH"
	so_before=$(md5sum "$scratch/hlauth.so" 2>/dev/null | cut -c1-32)

	createdb -U postgres hlbench || hl_die "createdb failed"
	# Pin the build: point hlauth's C functions at a private copy of the hlauth.so built for
	# this run, so that another `make install` during the run cannot change what is measured.
	psql -X -q -U postgres -c "CREATE EXTENSION hlauth" >"$res/pin.log" 2>&1 \
		|| { cat "$res/pin.log" >&2; hl_die "CREATE EXTENSION hlauth failed"; }
	if [ -f "$scratch/hlauth.so" ]; then
		psql -X -q -U postgres -v so="$scratch/hlauth.so" >>"$res/pin.log" 2>&1 <<'SQL' || { cat "$res/pin.log" >&2; hl_die "could not pin hlauth.so"; }
\set ON_ERROR_STOP on
UPDATE pg_catalog.pg_proc SET probin = :'so' WHERE probin = '$libdir/hlauth';
SQL
	fi
	hl_log "loading 100 agencies, 10,000 accounts, 4 x 2,000,000 rows, 1,000,000 grants, 100,000 API keys (two minutes or so)"
	psql -X -q -U postgres -f bench/setup.sql >"$res/setup.log" 2>&1 \
		|| { cat "$res/setup.log" >&2; hl_die "loading failed"; }
	psql -X -q -U hlbench_app -f bench/check.sql >"$res/check.log" 2>&1 \
		|| { cat "$res/check.log" >&2; hl_die "a variant does not see exactly its tenant's rows"; }
	ok=$(psql -X -qAt -U hlbench_owner -c "SELECT count(*) FILTER (WHERE id = 174321) = 1 AND count(*) = 200
		FROM bench.items_limit WHERE account_id = md5('hlbench-account-4321')::uuid")
	[ "$ok" = t ] || hl_die "the limit table does not hold the expected rows"
	PRINCIPAL=$(psql -X -qAt -U postgres -c "SELECT md5('hlbench-principal')::uuid")

	# The auth variant's keys: BENCH_AUTH_KEYS of the 100,000, at random (bench.bench_keys,
	# also used by micro.sh and profile.sh), into AUTH_FILES scripts of AUTH_PER_FILE keys.
	# Each script draws k (which of its keys) and r (which of the tenant's 200 rows); a binary
	# tree of \if picks the key (log2 AUTH_PER_FILE client-side comparisons), sets id to
	# row r of the key's account (id = t + 10000 r) and authenticates. The plaintexts are
	# throwaway test keys, in the scratch folder only.
	local auth_args=() f
	if [[ " $VARIANTS " == *" auth "* ]]; then
		psql -X -q -U postgres -v n=$((AUTH_FILES * AUTH_PER_FILE)) >"$res/keys.log" 2>&1 <<'SQL' || { cat "$res/keys.log" >&2; hl_die "could not choose the benchmark keys"; }
\set ON_ERROR_STOP on
CREATE TABLE bench.bench_keys AS
SELECT row_number() OVER () AS n, s.k, s.t, s.plaintext
  FROM (SELECT k, t, plaintext FROM bench.api_key_plaintexts ORDER BY random() LIMIT :n) s;
ALTER TABLE bench.bench_keys ADD PRIMARY KEY (n);
SQL
		mkdir -p "$res/auth"
		psql -X -qAt -F ' ' -U postgres -c "SELECT n, t, plaintext FROM bench.bench_keys ORDER BY n" \
			| awk -v dir="$res/auth" -v per="$AUTH_PER_FILE" '
				function tree(lo, hi,   mid) {
					if (lo == hi) {
						printf "\\set id %d + 10000 * :r\nSELECT hlauth.authenticate('\''%s'\'');\n", t[lo], key[lo] > f
						return
					}
					mid = int((lo + hi) / 2)
					printf "\\if :k <= %d\n", mid > f
					tree(lo, mid)
					print "\\else" > f
					tree(mid + 1, hi)
					print "\\endif" > f
				}
				{ i = (NR - 1) % per + 1; t[i] = $2; key[i] = $3 }
				i == per {
					f = sprintf("%s/point_auth_%03d.sql", dir, ++files)
					print "-- Point lookup, API key (generated by bench/run.sh): BEGIN; authenticate(<one of " per " keys>);" > f
					print "-- SELECT the row :id of the key'\''s account; COMMIT." > f
					printf "\\set k random(1, %d)\n\\set r random(0, 199)\nBEGIN;\n", per > f
					tree(1, per)
					print "SELECT id, name, email FROM bench.items_hlauth WHERE id = :id;\nCOMMIT;" > f
					close(f)
				}' || hl_die "could not write the auth scripts"
		for f in "$res"/auth/point_auth_*.sql; do auth_args+=(-f "$f@1"); done
		[ "${#auth_args[@]}" = $((2 * AUTH_FILES)) ] || hl_die "expected $AUTH_FILES auth scripts, got $((${#auth_args[@]} / 2))"
		ok=$(psql -X -qAt -U postgres -c "SELECT plaintext || ' ' || t FROM bench.bench_keys WHERE n = 1")
		psql -X -q -U hlbench_app -v key="${ok% *}" -v kt="${ok#* }" -f bench/check_auth.sql >"$res/check_auth.log" 2>&1 \
			|| { cat "$res/check_auth.log" >&2; hl_die "the API key variant does not see exactly its tenant's rows"; }
	fi

	# CPU accounting. The backends' CPU reaches the postmaster's reaped-children counters
	# when they exit; pgbench's reaches this shell's (bash `times`); the machine's is in
	# /proc/stat. "other" = machine busy time - backends - pgbench, as % of all CPUs.
	local pm pm_children tck ncpu
	pm=$(head -1 "$data/postmaster.pid")
	pm_children=$(pgrep -P "$pm" -c)
	tck=$(getconf CLK_TCK)
	ncpu=$(nproc)
	backends_gone() {
		local tries=0
		while [ "$tries" -lt 100 ]; do
			[ "$(pgrep -P "$pm" -c)" -le "$pm_children" ] && return
			sleep 0.05
			tries=$((tries + 1))
		done
	}
	# Sets SNAP to: machine-busy-ticks backend-ticks pgbench-seconds now. Not in a $(...)
	# subshell: `times` must report this shell's children.
	snapshot() {
		backends_gone
		times >"$res/.times"
		SNAP="$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat) $(awk '{print $16+$17}' "/proc/$pm/stat")"
		SNAP="$SNAP $(awk 'NR==2 { split($1, u, "m"); split($2, s, "m"); print u[1]*60 + u[2] + s[1]*60 + s[2] }' "$res/.times") $(date +%s.%N)"
	}

	# One pgbench run; appends "query variant round tps transactions server_us client_us
	# other_pct" to $res/tps.txt (round 0: warm-up, not reported).
	# Before each run: wait (up to BENCH_QUIET_WAIT seconds) until other processes use at most
	# BENCH_MAX_OTHER % of the machine, sampled over a second (nothing of ours runs then).
	wait_quiet() {
		local waited=0 busy
		while :; do
			busy=$({ awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat; sleep 1
				awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat; } \
				| awk 'NR==1 { b = $1; i = $2 } NR==2 { printf "%.0f", ($1 - b) * 100 / ($1 - b + $2 - i + 0.001) }')
			awk -v b="$busy" -v m="$BENCH_MAX_OTHER" 'BEGIN { exit !(b <= m) }' && return
			if [ "$waited" -ge "$BENCH_QUIET_WAIT" ]; then
				hl_log "   the machine is still busy (${busy}% used by other processes): running anyway"
				return
			fi
			[ "$waited" = 0 ] && hl_log "   waiting for other processes to quieten (they use ${busy}% of the machine)"
			sleep 4
			waited=$((waited + 5))
		done
	}

	# A run during which other processes used more than BENCH_MAX_OTHER % of the machine is
	# repeated, up to BENCH_RETRIES times (the last attempt counts, disturbed or not).
	run_one() {
		local q=$1 v=$2 r=$3 secs=$4 user=hlbench_app log tps n before after line attempt=0 scripts
		has_query "$q" "$v" || return 0
		[ "$v" = limit ] && user=hlbench_owner
		scripts=(-f "bench/${q}_${v}.sql")
		[ "$v" = auth ] && scripts=("${auth_args[@]}")
		log=$res/${q}_${v}_r$r.log
		while :; do
			attempt=$((attempt + 1))
			wait_quiet
			snapshot
			before=$SNAP
			pgbench -n -M prepared -c "$BENCH_CLIENTS" -j "$BENCH_CLIENTS" -T "$secs" -U "$user" \
				-D principal="$PRINCIPAL" -D scopes=contacts.readonly \
				"${scripts[@]}" hlbench >"$log" 2>&1 \
				|| { cat "$log" >&2; hl_die "pgbench failed: $q $v round $r"; }
			snapshot
			after=$SNAP
			tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$log")
			n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
			if [ -z "$tps" ] || [ -z "$n" ] || [ "$n" -le 0 ]; then
				cat "$log" >&2
				hl_die "no tps in pgbench output: $q $v"
			fi
			grep -q '^number of failed transactions: 0 ' "$log" || { cat "$log" >&2; hl_die "failed transactions: $q $v"; }
			line=$(echo "$before $after" | awk -v q="$q" -v v="$v" -v r="$r" -v tps="$tps" -v n="$n" -v tck="$tck" -v ncpu="$ncpu" '{
				busy = ($5 - $1) / tck; srv = ($6 - $2) / tck; cli = $7 - $3; wall = $8 - $4
				other = (busy - srv - cli) / (wall * ncpu) * 100; if (other < 0) other = 0
				printf "%s %s %s %s %s %.2f %.2f %.1f", q, v, r, tps, n, srv * 1e6 / n, cli * 1e6 / n, other }')
			hl_log "$(echo "$line" | awk '{ printf "%-5s %-8s round %s: %9.1f tps, server %6.1f us/tx, pgbench %5.1f us/tx, other load %4.1f%%", $1, $2, $3, $4, $6, $7, $8 }')"
			if [ "$attempt" -le "$BENCH_RETRIES" ] && [ "$r" != 0 ] &&
				awk -v o="$(echo "$line" | cut -d' ' -f8)" -v m="$BENCH_MAX_OTHER" 'BEGIN { exit !(o > m) }'; then
				hl_log "   disturbed by other processes (> $BENCH_MAX_OTHER% of the machine): repeating"
				echo "$line" >>"$res/disturbed.txt"
				continue
			fi
			break
		done
		echo "$line" >>"$res/tps.txt"
	}

	load_before=$(cut -d' ' -f1-3 /proc/loadavg)
	if [ "$BENCH_WARMUP" -gt 0 ]; then
		hl_log "warm-up: ${BENCH_WARMUP}s per script, not counted"
		for q in $QUERIES; do for v in $VARIANTS; do run_one "$q" "$v" 0 "$BENCH_WARMUP"; done; done
	fi
	for r in $(seq 1 "$BENCH_ROUNDS"); do
		order=$VARIANTS
		[ $((r % 2)) = 0 ] && order=$(echo "$VARIANTS" | tr ' ' '\n' | tac | tr '\n' ' ')
		for q in $QUERIES; do
			for v in $order; do run_one "$q" "$v" "$r" "$BENCH_SECONDS"; done
		done
	done
	load_after=$(cut -d' ' -f1-3 /proc/loadavg)

	# The mixed runs: per query, one pgbench run in which every transaction picks one of the
	# variants' scripts at random (equal weights; the auth variant's 100 scripts share one
	# weight). All variants then run on the same clients at the same moments, so machine
	# noise, which moves separate runs by +-10% on a small VM, falls on all of them alike.
	# Every variant connects as hlbench_app here (the limit table has no RLS; the app role
	# is granted SELECT on it). pgbench logs a sample of the transactions' latencies (-l);
	# each variant's mean latency stands for its throughput (with one client per thread,
	# TPS = clients / mean latency), and limit's mean / the variant's is its ratio.
	mixed_run() {
		local q=$1 secs=$2 v log args=() names=() w
		for v in $VARIANTS; do
			has_query "$q" "$v" || continue
			if [ "$v" = auth ]; then
				for w in "${auth_args[@]}"; do
					[ "$w" = -f ] && continue
					args+=(-f "$w"); names+=(auth)
				done
			else
				w=1
				[[ " $VARIANTS " == *" auth "* ]] && has_query "$q" auth && w=$AUTH_FILES
				args+=(-f "$PWD/bench/${q}_${v}.sql@$w"); names+=("$v")
			fi
		done
		rm -rf "$res/mixed_$q" && mkdir -p "$res/mixed_$q"
		log=$res/mixed_$q.log
		wait_quiet
		( cd "$res/mixed_$q" && pgbench -n -M prepared -c "$BENCH_CLIENTS" -j "$BENCH_CLIENTS" -T "$secs" -U hlbench_app \
			-l --sampling-rate="$BENCH_MIXED_SAMPLE" -D principal="$PRINCIPAL" -D scopes=contacts.readonly \
			"${args[@]}" hlbench ) >"$log" 2>&1 \
			|| { cat "$log" >&2; hl_die "pgbench failed: mixed $q"; }
		grep -q '^number of failed transactions: 0 ' "$log" || { cat "$log" >&2; hl_die "failed transactions: mixed $q"; }
		# script number -> variant, then mean latency per variant (log: client tx latency_us script ...)
		printf '%s\n' "${names[@]}" | awk -v q="$q" 'NR == FNR { name[NR - 1] = $1; next }
			{ n[name[$4]]++; s[name[$4]] += $3 }
			END { for (v in n) printf "%s %s %d %.2f\n", q, v, n[v], s[v] / n[v] }' - "$res/mixed_$q"/pgbench_log.* >>"$res/mixed.txt"
		hl_log "mixed $q: $(awk -v q="$q" '$1 == q { printf "%s %.1f us  ", $2, $4 }' "$res/mixed.txt")"
		rm -rf "$res/mixed_$q"
	}
	if [ "$BENCH_MIXED_SECONDS" -gt 0 ]; then
		rm -f "$res/mixed.txt"
		for q in $QUERIES; do mixed_run "$q" "$BENCH_MIXED_SECONDS"; done
	fi

	if [ "$BENCH_MICRO" = 1 ] && [[ " $VARIANTS " == *" auth "* ]]; then
		hl_log "micro-benchmarks: effective_scopes, api_key_matches, authenticate per call (a minute)"
		# shellcheck source=bench/micro.sh
		source bench/micro.sh
		bench_micro "$res" >"$res/micro.report" || exit 1
	fi

	# ---- the report ----
	echo
	echo "== hlauth benchmark: tenant isolation next to its baselines"
	echo "machine:    nproc=$(nproc), $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/{print $2}') GB RAM"
	echo "postgres:   $(psql -X -qAt -U postgres -c 'SELECT version()')"
	echo "pgbench:    $(pgbench --version | sed 's/ (Debian.*//'), -M prepared -c $BENCH_CLIENTS -j $BENCH_CLIENTS -T $BENCH_SECONDS," \
		"$BENCH_ROUNDS rounds interleaved (odd rounds: $VARIANTS; even rounds reversed), ${BENCH_WARMUP}s warm-up per script"
	echo "cluster:    shared_buffers=$BENCH_SHARED_BUFFERS, fsync=off, full_page_writes=off, autovacuum=off (read-only benchmark)"
	echo "data:       100 agencies, 10,000 accounts; 2,000,000 rows per variant table, 200 per account, PRIMARY KEY (account_id, id)"
	echo "rbac, keys: $(psql -X -qAt -U postgres -c "SELECT to_char(count(*), 'FM9,999,999') FROM hlauth.grants") grants ($(psql -X -qAt -U postgres -c "SELECT to_char(count(DISTINCT principal), 'FM9,999,999') FROM hlauth.grants") principals)," \
		"$(psql -X -qAt -U postgres -c "SELECT to_char(count(*), 'FM9,999,999') FROM hlauth.api_keys") API keys;" \
		"auth scripts: $((AUTH_FILES * AUTH_PER_FILE)) keys ($AUTH_FILES scripts x $AUTH_PER_FILE)"
	echo "hlauth:     ${BENCH_GIT:-unknown revision}, hlauth.so md5 $so_before (pinned for the run)"
	echo "load avg:   $load_before before, $load_after after"
	echo "shape:      BEGIN; <set context>; <query>; COMMIT -- 4 statements in every variant"
	echo
	awk -v rounds="$BENCH_ROUNDS" '
		$3 == 0 { next }
		{ key = $1 " " $2; sum[key] += $4; n[key]++; runs[key] = runs[key] sprintf(" %8.0f", $4)
		  rt[$1 " " $2 " " $3] = $4; srv[key] += $6; cli[key] += $7; if ($8 > oth[key]) oth[key] = $8 }
		END {
			name["limit"] = "limit"; name["setting"] = "current_setting"; name["hlauth"] = "hlauth"; name["noscope"] = "hlauth_noscope"
			name["auth"] = "auth (API key)"
			anchor["point limit"] = "1.000"; anchor["point setting"] = "0.990"; anchor["point hlauth"] = ">= 0.95 target"
			anchor["count limit"] = "1.000"; anchor["count setting"] = "0.994"; anchor["count hlauth"] = ">= 0.95 target"
			anchor["point noscope"] = "(diagnostic)"; anchor["count noscope"] = "(diagnostic)"
			anchor["point auth"] = "(issue #3: vs hlauth below)"
			split("point count", qs, " "); split("limit setting hlauth auth noscope", vs, " ")
			printf "%-6s %-15s %-18s %9s %8s %13s %10s %8s %11s %6s  %s\n", "query", "variant", "TPS per round", "mean TPS", "vs limit", "round ratios", "server us", "vs limit", "pgbench us", "other", "ANCHORS.md"
			for (i = 1; i <= 2; i++) for (j = 1; j <= 5; j++) {
				q = qs[i]; v = vs[j]; key = q " " v; base = q " limit"
				if (!(key in n) || !(base in n)) continue
				mean = sum[key] / n[key]; bmean = sum[base] / n[base]
				us = srv[key] / n[key]; bus = srv[base] / n[base]; cus = cli[key] / n[key]
				lo = 99; hi = 0
				for (r = 1; r <= rounds; r++) {
					rr = rt[q " " v " " r] / rt[q " limit " r]
					if (rr < lo) lo = rr
					if (rr > hi) hi = rr
				}
				printf "%-6s %-15s %-18s %9.0f %8.3f %6.3f-%-6.3f %10.1f %8.3f %11.1f %5.0f%%  %s\n", q, name[v], runs[key], mean, mean / bmean, lo, hi, us, bus / us, cus, oth[key], anchor[key]
			}
		}' "$res/tps.txt"
	echo
	echo "vs limit: mean TPS / the limit's mean TPS. round ratios: the same within each round."
	echo "server us: CPU time of the backends per transaction; its vs limit = limit's / the variant's."
	echo "pgbench us: CPU time of pgbench per transaction. Client and server share the machine's CPUs,"
	echo "so TPS follows server us + pgbench us. pgbench runs the same code for every variant; it"
	echo "spends more when a statement's reply is not ready at once (a failed read, a poll, a wake-up)."
	echo "other: the most CPU that processes outside this benchmark used during any of the variant's"
	echo "runs, in % of the machine; above a few % the TPS figures of that run are disturbed."
	[ -f "$res/disturbed.txt" ] && echo "repeated: $(wc -l <"$res/disturbed.txt") run(s) disturbed by other processes (over $BENCH_MAX_OTHER%) were run again."
	if [ -f "$res/mixed.txt" ]; then
		echo
		echo "== mixed runs: all variants' transactions interleaved at random in one pgbench run per query"
		echo "   (${BENCH_MIXED_SECONDS}s, -c $BENCH_CLIENTS -j $BENCH_CLIENTS, every variant as hlbench_app; latencies of a $BENCH_MIXED_SAMPLE sample of the transactions)"
		awk '
			{ key = $1 " " $2; n[key] = $3; lat[key] = $4 }
			END {
				name["limit"] = "limit"; name["setting"] = "current_setting"; name["hlauth"] = "hlauth"; name["noscope"] = "hlauth_noscope"
				name["auth"] = "auth (API key)"
				target["point hlauth"] = ">= 0.95 target"; target["count hlauth"] = ">= 0.95 target"
				target["point auth"] = "(vs hlauth: see below)"
				split("point count", qs, " "); split("limit setting hlauth auth noscope", vs, " ")
				printf "%-6s %-16s %12s %16s %9s\n", "query", "variant", "sampled tx", "mean latency us", "vs limit"
				for (i = 1; i <= 2; i++) for (j = 1; j <= 5; j++) {
					key = qs[i] " " vs[j]; base = qs[i] " limit"
					if (!(key in n) || !(base in n)) continue
					printf "%-6s %-16s %12d %16.2f %9.3f  %s\n", qs[i], name[vs[j]], n[key], lat[key], lat[base] / lat[key], target[key]
				}
				if (("point auth" in n) && ("point hlauth" in n))
					printf "auth / hlauth (point lookup): %.3f (target >= 0.9)\n", lat["point hlauth"] / lat["point auth"]
			}' "$res/mixed.txt"
		echo "vs limit: the limit's mean latency / the variant's = the share of the limit's TPS the variant"
		echo "would reach on its own (each client runs one transaction at a time)."
	fi
	if grep -q '^point auth ' "$res/tps.txt" && grep -q '^point hlauth ' "$res/tps.txt"; then
		echo
		echo "== API keys (issue #3): BEGIN; authenticate(key); <point lookup>; COMMIT next to BEGIN; set_principal(...); <point lookup>; COMMIT"
		awk -v rounds="$BENCH_ROUNDS" '
			$3 == 0 || $1 != "point" || ($2 != "auth" && $2 != "hlauth") { next }
			{ sum[$2] += $4; n[$2]++; rt[$2 " " $3] = $4; runs[$2] = runs[$2] sprintf(" %8.0f", $4); srv[$2] += $6 }
			END {
				name["hlauth"] = "hlauth (set_principal)"; name["auth"] = "auth (authenticate)"
				printf "%-23s %-18s %9s %10s\n", "variant", "TPS per round", "mean TPS", "server us"
				split("hlauth auth", vs, " ")
				for (j = 1; j <= 2; j++)
					printf "%-23s %-18s %9.0f %10.1f\n", name[vs[j]], runs[vs[j]], sum[vs[j]] / n[vs[j]], srv[vs[j]] / n[vs[j]]
				lo = 99; hi = 0
				for (r = 1; r <= rounds; r++) {
					rr = rt["auth " r] / rt["hlauth " r]
					if (rr < lo) lo = rr
					if (rr > hi) hi = rr
				}
				printf "auth / hlauth: TPS %.3f (round ratios %.3f-%.3f), server CPU per transaction (hlauth'"'"'s / auth'"'"'s) %.3f;" \
					" target: TPS >= 0.9\n", (sum["auth"] / n["auth"]) / (sum["hlauth"] / n["hlauth"]), lo, hi,
					(srv["hlauth"] / n["hlauth"]) / (srv["auth"] / n["auth"])
			}' "$res/tps.txt"
		echo "auth: $((AUTH_FILES * AUTH_PER_FILE)) keys (principals) at as many accounts; hlauth: one principal over all 10,000 accounts."
		echo "Each pgbench run starts new connections: every first use of a tenant, principal or key in a"
		echo "backend is paid within the run$([ -f "$res/micro.report" ] && echo " (see effective_scopes and authenticate first use below)")."
	fi
	if [ -f "$res/micro.report" ]; then
		echo
		echo "== per call (issue #3; bench/micro.sh, once per run, wall clock, machine noise applies)"
		cat "$res/micro.report"
	fi
	ok=$(psql -X -qAt -U postgres -c "SELECT string_agg(DISTINCT probin, ', ') FROM pg_proc WHERE probin LIKE '%hlauth%'")
	[ "$ok" = "$scratch/hlauth.so" ] && [ "$(md5sum "$scratch/hlauth.so" | cut -c1-32)" = "$so_before" ] \
		|| echo "WARNING: the hlauth library measured is not the pinned build of this run ($ok)."
	echo
	echo "== plans (generic plans, as pgbench -M prepared runs them)"
	psql -X -q -U hlbench_app -f bench/explain_hlauth.sql 2>&1
	psql -X -q -U hlbench_app -f bench/explain_setting.sql 2>&1
	psql -X -q -U hlbench_owner -f bench/explain_limit.sql 2>&1

	if [ "$BENCH_PROFILE" = 1 ]; then
		# shellcheck source=bench/profile.sh
		source bench/profile.sh
		bench_profile "$data" "$res"
	fi
	echo
	echo "raw pgbench logs: $res"
}

if [ "${1:-}" = "--cluster-part" ]; then
	bench_cluster_part "$2"
	exit $?
fi

# ---------------------------------------------------------------------------------------
# Part 1, as whoever runs `make bench`: packages, build, install, then part 2.
# ---------------------------------------------------------------------------------------
hl_deps
hl_log "building and installing hlauth"
hl_build_install
# ---- audit benchmark hook (bench/audit.sh): BENCH_ONLY=audit runs only the audit part ----
if [ "${BENCH_ONLY:-}" = audit ]; then
	BENCH_AUDIT_BUILD=0 bash bench/audit.sh
	exit $?
fi
# ---- end of audit benchmark hook ----
if [ "$BENCH_PROFILE" = 1 ] && ! command -v valgrind >/dev/null; then
	hl_log "installing valgrind (BENCH_PROFILE=1)"
	DEBIAN_FRONTEND=noninteractive hl_root apt-get install -y -qq --no-install-recommends valgrind >/dev/null \
		|| hl_die "could not install valgrind"
fi
user=$(hl_osuser)
scratch=$(hl_scratch "$PWD/.tmp/bench")
cp hlauth.so "$scratch/hlauth.so" && chown "$user" "$scratch/hlauth.so" 2>/dev/null
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
BENCH_GIT="git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$( [ -n "$(git status --porcelain -- src sql hlauth--*.sql 2>/dev/null)" ] && echo ' + uncommitted changes in src/sql')"
export BENCH_SECONDS BENCH_ROUNDS BENCH_WARMUP BENCH_CLIENTS BENCH_SHARED_BUFFERS BENCH_PROFILE BENCH_MAX_OTHER BENCH_RETRIES BENCH_QUIET_WAIT HL_BENCH_PORT=$PORT BENCH_GIT BENCH_AUTH_KEYS BENCH_MICRO BENCH_MIXED_SECONDS BENCH_MIXED_SAMPLE
export BENCH_VARIANTS="$VARIANTS"

if [ "$(id -u)" = 0 ]; then
	# The cluster user runs part 2 from a copy of bench/ and test/lib.sh that it owns.
	copy=$scratch/tree
	rm -rf "$copy"
	mkdir -p "$copy/test"
	cp -r bench "$copy/bench"
	rm -rf "$copy/bench/results"
	cp test/lib.sh "$copy/test/lib.sh"
	chown -R "$user" "$copy"
	hl_log "running the benchmark as $user in $scratch"
	hl_as_osuser env BENCH_SECONDS="$BENCH_SECONDS" BENCH_ROUNDS="$BENCH_ROUNDS" BENCH_WARMUP="$BENCH_WARMUP" \
		BENCH_CLIENTS="$BENCH_CLIENTS" BENCH_SHARED_BUFFERS="$BENCH_SHARED_BUFFERS" HL_BENCH_PORT="$PORT" \
		BENCH_VARIANTS="$VARIANTS" BENCH_PROFILE="$BENCH_PROFILE" BENCH_MAX_OTHER="$BENCH_MAX_OTHER" \
		BENCH_RETRIES="$BENCH_RETRIES" BENCH_QUIET_WAIT="$BENCH_QUIET_WAIT" BENCH_GIT="$BENCH_GIT" \
		BENCH_AUTH_KEYS="$BENCH_AUTH_KEYS" BENCH_MICRO="$BENCH_MICRO" BENCH_MIXED_SECONDS="$BENCH_MIXED_SECONDS" \
		BENCH_MIXED_SAMPLE="$BENCH_MIXED_SAMPLE" bash "$copy/bench/run.sh" --cluster-part "$scratch" | tee "bench/results/$stamp.txt"
	rc=${PIPESTATUS[0]}
else
	bash bench/run.sh --cluster-part "$scratch" | tee "bench/results/$stamp.txt"
	rc=${PIPESTATUS[0]}
fi
# ---- audit benchmark hook (bench/audit.sh): after the isolation benchmark, same report file;
# BENCH_ONLY=isolation skips it ----
if [ "$rc" = 0 ] && [ "${BENCH_ONLY:-}" != isolation ]; then
	BENCH_AUDIT_BUILD=0 BENCH_AUDIT_REPORT="bench/results/$stamp.txt" BENCH_GIT="$BENCH_GIT" bash bench/audit.sh
	rc=$?
fi
# ---- end of audit benchmark hook ----
[ "$rc" = 0 ] && hl_log "report saved in bench/results/$stamp.txt"
exit "$rc"
