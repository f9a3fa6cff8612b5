#!/usr/bin/env bash
# test/run-suites.sh: runs every suite against a throwaway cluster. Called by test/run.sh as
# the unprivileged cluster user, after the extension is installed. Each item (a pg_regress
# test, an isolation spec, a pgTAP file, a Perl TAP file, the unit tests, the fuzz smoke run)
# counts once in the closing line "N passed, N failed". Exit status 1 if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=test/lib.sh
source test/lib.sh

PGXS_DIR=$("$HL_PGBIN/pg_config" --pkglibdir)/pgxs
PORT=${HL_TEST_PORT:-54329}
TMP=$PWD/.tmp/test
DATA=$TMP/cluster
passed=0
failed=0
failures=()

pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); failures+=("$1"); }

rm -rf "$TMP" results output_iso tmp_check regression.diffs regression.out
mkdir -p "$TMP"

# The server secret (hlauth.secret_file) of the pg_regress/isolation/pgTAP cluster: a file
# outside its data directory, mode 600, owned by us (the cluster user), with versions 1 and 2
# of random 32-byte keys. Next to it, the fixtures sql/secret.sql points the setting at
# (it finds them through HL_SECRET_FIXTURES). Fixture keys are fixed, not secret.
SECRET=$TMP/secret
hl_write_secret "$SECRET" 'hlauth test cluster secret' 2
export HL_SECRET_FIXTURES=$TMP/secret-fixtures
(
	umask 077 && mkdir -p "$HL_SECRET_FIXTURES" && cd "$HL_SECRET_FIXTURES" || exit 1
	k32=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
	k64=$k32$k32
	printf '1 %s\n' "$k32" >known                          # a known-answer key
	printf '# another file\n7 %s\n' "$k64" >other          # a 64-byte key, version 7
	printf '\357\273\277# BOM, CRLF, tabs\r\n\r\n  3\t%s  \r\n' "${k32^^}" >lenient
	printf '1 %s\n' "$k32" >rotating                       # sql/secret.sql adds version 2
	printf '1 %s\n' "$k32" >bad-mode && chmod 644 bad-mode
	printf '1 %s\n' "$k32" >unreadable && chmod 000 unreadable
	printf '# one\n1 %s\n2 %szz\n' "$k32" "${k32:0:62}" >malformed   # line 3: not hex
	printf '1 %s\n1 %s\n' "$k32" "$k64" >duplicate
	printf '1 %s\n' "${k32:0:62}" >short-key
	printf '1 %s00\n' "$k64" >long-key
	printf '1 %s0\n' "$k32" >odd-hex
	printf '65536 %s\n' "$k32" >bad-version
	printf '01 %s\n' "$k32" >leading-zero
	printf '1 %s %s\n' "$k32" "$k32" >extra-field
	printf '1\n' >no-key
	: >empty
	printf '# only a comment\n\n' >comments-only
	for i in $(seq 1 700); do printf '# %s\n' "$k64"; done >too-large
	mkdir -p directory
	ln -sfn "$DATA/hlauth_secret_regress" link-into-data   # sql/secret.sql writes the target
) || hl_die "could not write the secret fixtures"
# hlauth preloaded, as docs/getting-started.md configures it: protect() needs it for tables
# owned by roles that are not hlauth admins (test/pgtap/threats_cascade.sql). The TAP tests'
# own clusters load hlauth on first use, the other way it runs.
hl_cluster_start "$DATA" "$PORT" "hlauth.secret_file = '$SECRET'" "session_preload_libraries = 'hlauth'"
trap 'hl_cluster_stop "$DATA"' EXIT
export PGHOST=$DATA PGPORT=$PORT PGUSER=postgres
export PATH="$HL_PGBIN:$PATH"

# 1. core unit tests (C, cmocka)
hl_log "unit tests (src/core)"
if make -s -C test/unit run; then pass; else fail "unit tests"; fi

# 2. a short fuzz run of the core parsers (longer: make fuzz)
hl_log "fuzz smoke run (src/core)"
if make -s -C test/fuzz smoke FUZZ_SECONDS="${HL_FUZZ_SECONDS:-10}"; then pass; else fail "fuzz smoke"; fi

# 3. pg_regress: sql/*.sql against expected/*.out
tests=$(cd sql && ls -1 *.sql 2>/dev/null | sed 's/\.sql$//' | sort)
if [ -n "$tests" ]; then
	hl_log "pg_regress"
	# shellcheck disable=SC2086
	"$PGXS_DIR/src/test/regress/pg_regress" --inputdir=. --bindir="$HL_PGBIN" \
		--host="$PGHOST" --port="$PORT" --user=postgres --dbname=hlauth_regress \
		--load-extension=hlauth $tests >"$TMP/regress.out" 2>&1
	cat "$TMP/regress.out"
	ok=$(grep -cE '\.\.\. ok' "$TMP/regress.out")
	bad=$(grep -cE '\.\.\. (FAILED|failed)' "$TMP/regress.out")
	passed=$((passed + ok))
	for t in $(grep -E '\.\.\. (FAILED|failed)' "$TMP/regress.out" | awk '{print ($1=="test" ? $2 : $1)}'); do fail "pg_regress $t"; done
	if [ "$bad" -gt 0 ] || [ "$ok" -eq 0 ]; then
		[ "$bad" -gt 0 ] || fail "pg_regress (did not run)"
		[ -f regression.diffs ] && { echo "---- regression.diffs"; cat regression.diffs; }
	fi
fi

# 4. isolation specs
specs=$(cd test/isolation/specs 2>/dev/null && ls -1 *.spec 2>/dev/null | sed 's/\.spec$//' | sort)
if [ -n "$specs" ]; then
	hl_log "isolation specs"
	# shellcheck disable=SC2086
	"$PGXS_DIR/src/test/isolation/pg_isolation_regress" --inputdir=test/isolation --outputdir=output_iso \
		--bindir="$HL_PGBIN" --host="$PGHOST" --port="$PORT" --user=postgres --dbname=hlauth_isolation \
		--load-extension=hlauth $specs >"$TMP/isolation.out" 2>&1
	cat "$TMP/isolation.out"
	ok=$(grep -cE '\.\.\. ok' "$TMP/isolation.out")
	passed=$((passed + ok))
	for t in $(grep -E '\.\.\. (FAILED|failed)' "$TMP/isolation.out" | awk '{print ($1=="test" ? $2 : $1)}'); do fail "isolation $t"; done
	if grep -qE '\.\.\. (FAILED|failed)' "$TMP/isolation.out" || [ "$ok" -eq 0 ]; then
		[ "$ok" -gt 0 ] || fail "isolation (did not run)"
		[ -f output_iso/regression.diffs ] && { echo "---- output_iso/regression.diffs"; cat output_iso/regression.diffs; }
	fi
fi

# 5. pgTAP: each file in a fresh database cloned from a template with both extensions
if ls test/pgtap/*.sql >/dev/null 2>&1; then
	hl_log "pgTAP"
	psql -X -q -d postgres -c "CREATE DATABASE hlauth_tap_template" >/dev/null
	psql -X -q -d hlauth_tap_template -c "CREATE EXTENSION pgtap; CREATE EXTENSION hlauth;" >/dev/null
	for f in test/pgtap/*.sql; do
		db="hlauth_tap_$(basename "$f" .sql | tr -c 'a-zA-Z0-9_\n' '_')"
		psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db TEMPLATE hlauth_tap_template" >/dev/null
		if pg_prove -q -d "$db" "$f"; then pass; else fail "pgTAP $f"; fi
		psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
	done
fi

# 6. Perl TAP (PostgreSQL::Test::Cluster): each file starts clusters of its own
if ls test/t/*.pl >/dev/null 2>&1; then
	hl_log "Perl TAP"
	for f in test/t/*.pl; do
		if TESTDIR="$PWD" PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
			prove -I "$PGXS_DIR/src/test/perl" -I test/t "$f"; then pass; else
			fail "TAP $f"
			ls tmp_check/log/*.log >/dev/null 2>&1 && tail -n 30 tmp_check/log/*.log
		fi
	done
fi

echo
if [ "$failed" -gt 0 ]; then
	printf 'failed: %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
