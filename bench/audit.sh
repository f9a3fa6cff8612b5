#!/usr/bin/env bash
# bench/audit.sh: the audit benchmark (issue #4), run by `make bench` after the isolation
# benchmark (bench/run.sh), alone by `BENCH_ONLY=audit make bench` or `bash bench/audit.sh`.
#
# Bulk INSERT of BENCH_AUDIT_INSERT_ROWS rows (default 200,000) and UPDATE of
# BENCH_AUDIT_UPDATE_ROWS of them (default 100,000) into three copies of one table, side by
# side in one run (bench/audit.sql):
#   none      no trigger
#   hlauth    hlauth.audit('bench.contacts_hlauth', '{}', 'account_id'): hlauth.audit_log
#   keys      the same with every column but the primary key excluded: records without the
#             row's values (a diagnostic, no target: what one record per row costs at the
#             least, whatever it carries)
#   plpgsql   the typical PL/pgSQL row trigger of ANCHORS.md ("Audit"): to_jsonb(OLD) and
#             to_jsonb(NEW) into a log table with a bigserial primary key
# Targets (the issue): hlauth at most 1.5x the time of none, and at least 2x faster than
# plpgsql (medians over the rounds).
#
# Each round: TRUNCATE the four tables, the PL/pgSQL log and hlauth.audit_log (as the
# superuser: every round's variants start from empty logs, both logs alike), then each
# variant's INSERT, VACUUM (ANALYZE) of the four tables (the UPDATE changes settled rows,
# with statistics), then each variant's UPDATE. A CHECKPOINT precedes every measured
# statement, so none pays for another's dirty buffers. The variants' order rotates from round
# to round (none hlauth keys plpgsql, hlauth keys plpgsql none, ...). Before round 1 a small warm-up
# round (not reported) compiles the PL/pgSQL trigger and fills the backend's caches; all
# rounds run in one session, as on a pooled connection.
# Timing is server-side: clock_timestamp() around EXECUTE in a PL/pgSQL helper (no client
# round trip counts); the AFTER triggers (the PL/pgSQL row trigger, hlauth's statement
# trigger that writes the records) fire within the statement, so they are timed. Commit is
# not (fsync is off in every throwaway cluster of test/lib.sh). Next to the wall clock, the
# backend's CPU time and the CPU the rest of the machine used meanwhile ("other").
# The records carry no principal (no hlauth context is set; the PL/pgSQL trigger records
# none either).
#
# The cluster is its own (never a system cluster), as bench/run.sh's: started as the
# unprivileged cluster user in .tmp/bench/audit, with a server secret (hlauth.secret_file),
# autovacuum and JIT off (nothing runs beside the measured statements; JIT would compile the
# same expressions in every variant), full_page_writes on (a write benchmark: the WAL
# volume of each variant counts). The hlauth.so installed at the start is pinned for the run
# (the database's functions point at a private copy). Stopped at the end.
#
# Settings (environment):
#   BENCH_AUDIT_ROUNDS       rounds (default 5)
#   BENCH_AUDIT_INSERT_ROWS  rows inserted per variant and round (default 200000)
#   BENCH_AUDIT_UPDATE_ROWS  rows updated per variant and round (default 100000; at most the
#                            inserted rows)
#   BENCH_AUDIT_BUILD        1: build and install hlauth first, as `make bench` does (default
#                            when run directly); 0: measure the installed extension as it is
#                            (bench/run.sh passes 0: it has just built and installed it)
#   BENCH_AUDIT_REPORT       append the report to this file (bench/run.sh: its report);
#                            default bench/results/<UTC time>-audit.txt
#   BENCH_SHARED_BUFFERS     shared_buffers (default 256MB; make bench passes its own, 2GB)
#   BENCH_MAX_OTHER          each measured statement waits (up to BENCH_QUIET_WAIT seconds,
#   BENCH_QUIET_WAIT         defaults 10 and 120, as bench/run.sh; 0: no waiting) until other
#                            processes use at most this % of the machine
#   HL_BENCH_AUDIT_PORT      port of the cluster's Unix socket (default 55471)
# A quick check: BENCH_AUDIT_INSERT_ROWS=5000 BENCH_AUDIT_UPDATE_ROWS=2500 BENCH_AUDIT_ROUNDS=2
#   BENCH_QUIET_WAIT=0 BENCH_AUDIT_BUILD=0 bash bench/audit.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=test/lib.sh
source test/lib.sh

BENCH_AUDIT_ROUNDS=${BENCH_AUDIT_ROUNDS:-5}
BENCH_AUDIT_INSERT_ROWS=${BENCH_AUDIT_INSERT_ROWS:-200000}
BENCH_AUDIT_UPDATE_ROWS=${BENCH_AUDIT_UPDATE_ROWS:-100000}
BENCH_AUDIT_BUILD=${BENCH_AUDIT_BUILD:-1}
BENCH_SHARED_BUFFERS=${BENCH_SHARED_BUFFERS:-256MB}
BENCH_MAX_OTHER=${BENCH_MAX_OTHER:-10}
BENCH_QUIET_WAIT=${BENCH_QUIET_WAIT:-120}
PORT=${HL_BENCH_AUDIT_PORT:-55471}
AUDIT_VARIANTS="none hlauth keys plpgsql"

for v in BENCH_AUDIT_ROUNDS BENCH_AUDIT_INSERT_ROWS BENCH_AUDIT_UPDATE_ROWS BENCH_MAX_OTHER BENCH_QUIET_WAIT; do
	[[ ${!v} =~ ^[0-9]+$ ]] || hl_die "$v must be a number, not '${!v}'"
done
if [ "$BENCH_AUDIT_ROUNDS" -lt 1 ] || [ "$BENCH_AUDIT_UPDATE_ROWS" -lt 1 ] \
	|| [ "$BENCH_AUDIT_UPDATE_ROWS" -gt "$BENCH_AUDIT_INSERT_ROWS" ]; then
	hl_die "need BENCH_AUDIT_ROUNDS >= 1 and 1 <= BENCH_AUDIT_UPDATE_ROWS <= BENCH_AUDIT_INSERT_ROWS"
fi

# Thousands separators for the report.
commas() { printf "%'d" "$1" 2>/dev/null || echo "$1"; }

# The SQL of one round (round 0: the warm-up, smaller, no waiting for quiet).
round_sql() {
	local r=$1 nins=$2 nupd=$3 wait=$4 order=$5 v
	cat <<SQL
TRUNCATE bench.contacts_none, bench.contacts_hlauth, bench.contacts_keys, bench.contacts_plpgsql;
TRUNCATE bench.plpgsql_audit_log RESTART IDENTITY;
TRUNCATE hlauth.audit_log;
SQL
	for v in $order; do
		echo "CHECKPOINT;"
		echo "SELECT 'insert', '$v', $r, t.* FROM bench.run('insert', '$v', $nins, $BENCH_MAX_OTHER, $wait) t;"
	done
	echo "VACUUM (ANALYZE) bench.contacts_none, bench.contacts_hlauth, bench.contacts_keys, bench.contacts_plpgsql;"
	for v in $order; do
		echo "CHECKPOINT;"
		echo "SELECT 'update', '$v', $r, t.* FROM bench.run('update', '$v', $nupd, $BENCH_MAX_OTHER, $wait) t;"
	done
}

# ---------------------------------------------------------------------------------------
# Part 2, as the cluster user: cluster, tables, rounds, report. Prints the report.
# ---------------------------------------------------------------------------------------
audit_cluster_part() {
	local dir=$1
	local data=$dir/cluster res=$dir/results
	local r k order so_md5 load_before load_after warm_ins warm_upd nvar

	rm -rf "$res"
	mkdir -p "$res"
	hl_cluster_stop "$data"
	rm -rf "$data" "$data.initdb.log"
	hl_write_secret "$dir/secret" 'hlauth audit benchmark cluster secret (throwaway)'
	hl_log "audit: starting a throwaway cluster in $data (port $PORT, shared_buffers $BENCH_SHARED_BUFFERS)"
	hl_cluster_start "$data" "$PORT" \
		"shared_buffers = $BENCH_SHARED_BUFFERS" \
		"max_wal_size = 8GB" \
		"checkpoint_timeout = 1h" \
		"maintenance_work_mem = 256MB" \
		"autovacuum = off" \
		"jit = off" \
		"hlauth.secret_file = '$dir/secret'"
	trap 'hl_cluster_stop "'"$data"'"' EXIT
	export PGHOST=$data PGPORT=$PORT PGDATABASE=hlaudit
	export PATH="$HL_PGBIN:$PATH"
	so_md5=$(md5sum "$dir/hlauth.so" | cut -c1-32)

	createdb -U postgres hlaudit || hl_die "createdb failed"
	psql -X -q -U postgres -c "CREATE EXTENSION hlauth" >"$res/pin.log" 2>&1 \
		|| { cat "$res/pin.log" >&2; hl_die "CREATE EXTENSION hlauth failed"; }
	psql -X -q -U postgres -v so="$dir/hlauth.so" >>"$res/pin.log" 2>&1 <<'SQL' || { cat "$res/pin.log" >&2; hl_die "could not pin hlauth.so"; }
\set ON_ERROR_STOP on
UPDATE pg_catalog.pg_proc SET probin = :'so' WHERE probin = '$libdir/hlauth';
SQL
	psql -X -q -U postgres -f "bench/audit.sql" >"$res/setup.log" 2>&1 \
		|| { cat "$res/setup.log" >&2; hl_die "audit benchmark setup failed"; }
	psql -X -q -U postgres -c "INSERT INTO bench.machine VALUES ($(getconf CLK_TCK), $(nproc))" >>"$res/setup.log" 2>&1 \
		|| { cat "$res/setup.log" >&2; hl_die "audit benchmark setup failed"; }

	# All rounds in one session; each result line is logged as it comes.
	warm_ins=$((BENCH_AUDIT_INSERT_ROWS < 1000 ? BENCH_AUDIT_INSERT_ROWS : 1000))
	warm_upd=$((BENCH_AUDIT_UPDATE_ROWS < warm_ins / 2 ? BENCH_AUDIT_UPDATE_ROWS : warm_ins / 2))
	[ "$warm_upd" -ge 1 ] || warm_upd=1
	{
		echo '\set ON_ERROR_STOP on'
		echo "SET client_min_messages = warning;"
		round_sql 0 "$warm_ins" "$warm_upd" 0 "$AUDIT_VARIANTS"
		for r in $(seq 1 "$BENCH_AUDIT_ROUNDS"); do
			# Rotate the order: round 1 none hlauth keys plpgsql, round 2 hlauth keys plpgsql none, ...
			nvar=$(echo "$AUDIT_VARIANTS" | wc -w)
			order=$(echo "$AUDIT_VARIANTS $AUDIT_VARIANTS" | tr ' ' '\n' | tail -n +$(((r - 1) % nvar + 1)) | head -"$nvar" | tr '\n' ' ')
			round_sql "$r" "$BENCH_AUDIT_INSERT_ROWS" "$BENCH_AUDIT_UPDATE_ROWS" "$BENCH_QUIET_WAIT" "$order"
		done
	} >"$res/rounds.sql"
	load_before=$(cut -d' ' -f1-3 /proc/loadavg)
	hl_log "audit: warm-up, then $BENCH_AUDIT_ROUNDS round(s): INSERT $(commas "$BENCH_AUDIT_INSERT_ROWS") rows, UPDATE $(commas "$BENCH_AUDIT_UPDATE_ROWS") rows, per variant"
	: >"$res/times.txt"
	psql -X -q -At -F ' ' -U postgres -f "$res/rounds.sql" 2>"$res/rounds.err" | while read -r line; do
		echo "$line" >>"$res/times.txt"
		# shellcheck disable=SC2086
		set -- $line
		[ "$3" = 0 ] && continue
		hl_log "$(printf 'audit: %-6s %-7s round %s: %9.1f ms (backend CPU %9.1f ms), other load %4.1f%%%s' \
			"$1" "$2" "$3" "$4" "$5" "$6" "$([ "$7" -gt 0 ] && echo ", waited ${7}s for quiet")")"
	done
	k=("${PIPESTATUS[@]}")
	[ "${k[0]}" = 0 ] || { cat "$res/rounds.err" >&2; hl_die "the audit benchmark rounds failed"; }
	load_after=$(cut -d' ' -f1-3 /proc/loadavg)

	# The last round's logs: the rows expected, hashes that match, the record sizes.
	psql -X -q -At -F ' ' -U postgres >"$res/check.txt" 2>&1 <<SQL || { cat "$res/check.txt" >&2; hl_die "the audit logs could not be checked"; }
\set ON_ERROR_STOP on
SELECT CASE l.table_name WHEN 'bench.contacts_hlauth' THEN 'hlauth' ELSE 'keys' END, l.op, count(*),
	   round(avg(pg_column_size(l.*))),
	   count(*) FILTER (WHERE hlauth_internal.audit_row_hash(l) IS DISTINCT FROM l.row_hash)
  FROM hlauth.audit_log l WHERE l.table_name IN ('bench.contacts_hlauth', 'bench.contacts_keys')
 GROUP BY l.table_name, l.op;
SELECT 'plpgsql', l.op, count(*), round(avg(pg_column_size(l.*))), 0
  FROM bench.plpgsql_audit_log l GROUP BY l.op;
SELECT 'hlauth', 'total', (SELECT count(*) FROM hlauth.audit_log),
	   (SELECT sum(pg_total_relation_size(i.inhrelid)) FROM pg_inherits i WHERE i.inhparent = 'hlauth.audit_log'::regclass), 0;
SELECT 'plpgsql', 'total', (SELECT count(*) FROM bench.plpgsql_audit_log),
	   pg_total_relation_size('bench.plpgsql_audit_log'), 0;
SELECT 'table', 'total', (SELECT count(*) FROM bench.contacts_none), pg_total_relation_size('bench.contacts_none'), 0;
SQL
	awk -v ni="$BENCH_AUDIT_INSERT_ROWS" -v nu="$BENCH_AUDIT_UPDATE_ROWS" '
		$1 != "table" && $2 == "INSERT" { ok[$1 "i"] = ($3 == ni) }
		$1 != "table" && $2 == "UPDATE" { ok[$1 "u"] = ($3 == nu) }
		($1 == "hlauth" || $1 == "keys") && $2 != "total" && $5 != 0 { bad = 1 }
		END { exit !(ok["hlauthi"] && ok["hlauthu"] && ok["keysi"] && ok["keysu"] && ok["plpgsqli"] && ok["plpgsqlu"] && !bad) }' "$res/check.txt" \
		|| { cat "$res/check.txt" >&2; hl_die "the audit logs do not hold one record per row changed (or a record's hash does not match)"; }

	# ---- the report ----
	echo
	echo "== hlauth audit trail (issue #4): bulk INSERT and UPDATE on an audited table, side by side"
	echo "machine:    nproc=$(nproc), $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/{print $2}') GB RAM"
	echo "postgres:   $(psql -X -qAt -U postgres -c 'SELECT version()')"
	echo "hlauth:     ${BENCH_GIT:-unknown revision}, hlauth.so md5 $so_md5 (pinned for the run)"
	echo "cluster:    shared_buffers=$BENCH_SHARED_BUFFERS, fsync=off, full_page_writes=on, autovacuum=off, jit=off"
	echo "table:      contacts(id bigint PRIMARY KEY, account_id uuid NOT NULL, name text, email text, score int,"
	echo "            updated_at timestamptz DEFAULT now()), four copies: none; hlauth.audit(tbl, '{}', 'account_id');"
	echo "            keys: hlauth.audit(tbl, '{account_id,name,email,score,updated_at}', 'account_id') (diagnostic);"
	echo "            plpgsql AFTER ROW trigger inserting (table, TG_OP, to_jsonb(OLD), to_jsonb(NEW), now()) into a"
	echo "            log with a bigserial primary key"
	echo "statements: INSERT ... SELECT ... FROM generate_series(1, $BENCH_AUDIT_INSERT_ROWS); after VACUUM (ANALYZE),"
	echo "            UPDATE ... SET score = score + 1 WHERE id <= $BENCH_AUDIT_UPDATE_ROWS; CHECKPOINT before each"
	echo "rounds:     $BENCH_AUDIT_ROUNDS, variants interleaved (order rotated per round), logs truncated each round,"
	echo "            one session after a warm-up round; server-side wall clock (clock_timestamp around EXECUTE)"
	echo "load avg:   $load_before before, $load_after after"
	echo
	awk -v rounds="$BENCH_AUDIT_ROUNDS" '
		function median(list,   a, n, i, j, t) {
			n = split(list, a, " ")
			for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		function minimum(list,   a, n, i, m) {
			n = split(list, a, " "); m = a[1] + 0
			for (i = 2; i <= n; i++) if (a[i] + 0 < m) m = a[i] + 0
			return m
		}
		# ratio of a to b within each round: "lo-hi"
		function range(op, a, b,   r, x, lo, hi) {
			lo = 1e9; hi = 0
			for (r = 1; r <= rounds; r++) {
				x = ms[op " " a " " r] / ms[op " " b " " r]
				if (x < lo) lo = x
				if (x > hi) hi = x
			}
			return sprintf("%.2f-%.2f", lo, hi)
		}
		$3 == 0 { next }
		{ key = $1 " " $2; w[key] = w[key] " " $4; c[key] = c[key] " " $5; ms[$1 " " $2 " " $3] = $4
		  runs[key] = runs[key] sprintf(" %7.0f", $4); if ($6 > oth[key]) oth[key] = $6 }
		END {
			split("insert update", ops, " "); nv = split("none hlauth keys plpgsql", vs, " ")
			printf "%-6s %-8s %-*s %9s %9s %9s %6s %8s\n", "op", "variant", rounds * 8, "ms per round", "median", "min", "CPU med", "other", "vs none"
			for (i = 1; i <= 2; i++) {
				op = ops[i]; base = median(w[op " none"])
				for (j = 1; j <= nv; j++) {
					key = op " " vs[j]; med[key] = median(w[key])
					printf "%-6s %-8s %-*s %9.1f %9.1f %9.1f %5.0f%% %8.2f\n", op, vs[j], rounds * 8, runs[key], med[key],
						minimum(w[key]), median(c[key]), oth[key], med[key] / base
				}
			}
			print ""
			miss = 0
			for (i = 1; i <= 2; i++) {
				op = ops[i]
				x = med[op " hlauth"] / med[op " none"]; ok = x <= 1.5 ? "PASS" : "MISS"; if (ok == "MISS") miss++
				printf "%-6s hlauth / none    %5.2f (per round %s)   target <= 1.5  %s\n", op, x, range(op, "hlauth", "none"), ok
				x = med[op " plpgsql"] / med[op " hlauth"]; ok = x >= 2 ? "PASS" : "MISS"; if (ok == "MISS") miss++
				printf "%-6s plpgsql / hlauth %5.2f (per round %s)   target >= 2    %s\n", op, x, range(op, "plpgsql", "hlauth"), ok
				x = med[op " keys"] / med[op " none"]
				printf "%-6s keys / none      %5.2f (per round %s)   (diagnostic: records without the values)\n", op, x, range(op, "keys", "none")
			}
			printf "targets: %s\n", miss ? miss " of 4 missed" : "all 4 met"
		}' "$res/times.txt"
	echo "ms: server-side wall clock of the statement (triggers included, commit not); median and min over"
	echo "the rounds; CPU med: the backend's CPU time; other: the most CPU that every other process (this"
	echo "cluster's WAL writer included) used during any of the variant's runs, in % of the machine. CPU"
	echo "figures count 10 ms ticks: rough for statements shorter than a second or so."
	echo "ANCHORS.md: the plpgsql trigger at 5.36 (INSERT) and 4.83 (UPDATE) x none."
	echo
	echo "audit records (the last round; avg row: pg_column_size of the whole row):"
	awk '
		$2 == "total" { tot[$1] = $3; size[$1] = $4; next }
		{ printf "  %-8s %-6s %9d records, avg row %5d B\n", $1, $2, $3, $4 }
		END {
			printf "  on disk (heap + indexes): hlauth.audit_log %.1f MB (%.0f B per record, hlauth and keys), plpgsql log %.1f MB (%.0f B per record);\n",
				size["hlauth"] / 1048576, size["hlauth"] / tot["hlauth"], size["plpgsql"] / 1048576, size["plpgsql"] / tot["plpgsql"]
			printf "  the table itself: %.1f MB for %d rows\n", size["table"] / 1048576, tot["table"]
		}' "$res/check.txt"
	[ "$(md5sum "$dir/hlauth.so" | cut -c1-32)" = "$so_md5" ] \
		&& [ "$(psql -X -qAt -U postgres -c "SELECT string_agg(DISTINCT probin, ', ') FROM pg_proc WHERE probin LIKE '%hlauth%'")" = "$dir/hlauth.so" ] \
		|| echo "WARNING: the hlauth library measured is not the pinned copy of this run."
	echo "raw timings: $res/times.txt"
}

if [ "${1:-}" = "--cluster-part" ]; then
	audit_cluster_part "$2"
	exit $?
fi

# ---------------------------------------------------------------------------------------
# Part 1, as whoever runs it: packages, build and install (BENCH_AUDIT_BUILD=1), then part 2.
# ---------------------------------------------------------------------------------------
if [ "$BENCH_AUDIT_BUILD" = 1 ]; then
	hl_deps
	hl_log "building and installing hlauth"
	hl_build_install
fi
lib="$("$HL_PGBIN/pg_config" --pkglibdir)/hlauth.so"
[ -f "$lib" ] || hl_die "hlauth is not installed ($lib): run make install, or BENCH_AUDIT_BUILD=1"
user=$(hl_osuser)
scratch=$(hl_scratch "$PWD/.tmp/bench")
dir=$scratch/audit
mkdir -p "$dir" || hl_die "could not create $dir"
# Pin the installed library: a private copy, which the benchmark database's functions use.
cp "$lib" "$dir/hlauth.so" || hl_die "could not copy $lib"
[ "$(id -u)" = 0 ] && chown "$user" "$dir" "$dir/hlauth.so"
report=${BENCH_AUDIT_REPORT:-}
if [ -z "$report" ]; then
	mkdir -p bench/results
	report=bench/results/$(date -u +%Y%m%dT%H%M%SZ)-audit.txt
fi
BENCH_GIT=${BENCH_GIT:-"git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$( [ -n "$(git status --porcelain -- src sql hlauth--*.sql 2>/dev/null)" ] && echo ' + uncommitted changes in src/sql')"}
settings=(BENCH_AUDIT_ROUNDS="$BENCH_AUDIT_ROUNDS" BENCH_AUDIT_INSERT_ROWS="$BENCH_AUDIT_INSERT_ROWS"
	BENCH_AUDIT_UPDATE_ROWS="$BENCH_AUDIT_UPDATE_ROWS" BENCH_SHARED_BUFFERS="$BENCH_SHARED_BUFFERS"
	BENCH_MAX_OTHER="$BENCH_MAX_OTHER" BENCH_QUIET_WAIT="$BENCH_QUIET_WAIT" HL_BENCH_AUDIT_PORT="$PORT"
	BENCH_GIT="$BENCH_GIT")

if [ "$(id -u)" = 0 ]; then
	# The cluster user runs part 2 from a copy of what it needs, which it owns.
	copy=$dir/tree
	rm -rf "$copy"
	mkdir -p "$copy/test" "$copy/bench"
	cp bench/audit.sh bench/audit.sql "$copy/bench/"
	cp test/lib.sh "$copy/test/lib.sh"
	chown -R "$user" "$copy"
	hl_log "audit: running as $user in $dir"
	hl_as_osuser env "${settings[@]}" bash "$copy/bench/audit.sh" --cluster-part "$dir" | tee -a "$report"
	rc=${PIPESTATUS[0]}
else
	env "${settings[@]}" bash bench/audit.sh --cluster-part "$dir" | tee -a "$report"
	rc=${PIPESTATUS[0]}
fi
[ "$rc" = 0 ] && hl_log "audit report saved in $report"
exit "$rc"
