#!/usr/bin/env bash
# examples/demo.sh: `make demo`. Installs what is missing (Debian packages), builds and
# installs hlauth, starts a throwaway cluster as an unprivileged user (PostgreSQL refuses
# root) in .tmp/demo, recreates the database hlauth_demo from examples/demo_setup.sql and
# walks through examples/demo_walkthrough.sql as the app role demo_app.
#
# Running it again reuses the running cluster and recreates the database. It never touches
# a system cluster: the cluster listens only on a Unix socket in its own data directory.
#
#	HL_DEMO_PORT	port of the demo cluster (default 54330)
#
# The walkthrough's output is compared with examples/demo_walkthrough.out; a difference
# means hlauth's behaviour changed or the demo is out of date, and fails the demo. After an
# intended change, regenerate it from a running demo cluster (as the cluster user):
#	stdbuf -oL -eL psql -X -e -h <data dir> -p <port> -U demo_app -d hlauth_demo \
#		<examples/demo_walkthrough.sql >examples/demo_walkthrough.out 2>&1
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=test/lib.sh
source test/lib.sh

DEMO_DB=hlauth_demo
DEMO_PORT=${HL_DEMO_PORT:-54330}

# ---- as the cluster user: cluster, database, setup, walkthrough ----
if [ "${1:-}" = "--as-cluster-user" ]; then
	data=$2
	# The server secret (hlauth.secret_file): a file next to the data directory, not in it,
	# mode 600. Made once and kept, so what was hashed with it keeps verifying across runs.
	secret=$(dirname "$data")/secret
	if [ ! -s "$secret" ]; then
		hl_write_secret "$secret" 'hlauth demo cluster secret'
	fi
	chmod 600 "$secret"
	hl_cluster_start "$data" "$DEMO_PORT" "hlauth.secret_file = '$secret'" "session_preload_libraries = 'hlauth'"
	# A cluster made by an earlier run, before the demo had a secret, gets it now.
	if ! grep -q '^hlauth\.secret_file' "$data/postgresql.conf"; then
		echo "hlauth.secret_file = '$secret'" >>"$data/postgresql.conf"
		pg_ctl -D "$data" reload >/dev/null
	fi
	# hlauth preloaded, as docs/getting-started.md recommends (an earlier run's cluster gets it now).
	if ! grep -q '^session_preload_libraries' "$data/postgresql.conf"; then
		echo "session_preload_libraries = 'hlauth'" >>"$data/postgresql.conf"
		pg_ctl -D "$data" reload >/dev/null
	fi
	# A cluster made by an earlier run keeps the port it was made with.
	port=$(sed -n 4p "$data/postmaster.pid")
	[ "$port" = "$DEMO_PORT" ] || hl_log "the demo cluster in $data runs on port $port (made with that port; HL_DEMO_PORT applies to a new cluster)"
	export PGHOST=$data PGPORT=$port
	# Keep the walkthrough's output free of the caller's psql settings.
	unset PGDATABASE PGUSER PGOPTIONS PGPASSWORD PSQLRC

	hl_log "recreating database $DEMO_DB"
	psql -X -q -U postgres -d postgres -v ON_ERROR_STOP=1 \
		-c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DEMO_DB WITH (FORCE)" \
		-c "CREATE DATABASE $DEMO_DB" || hl_die "could not create database $DEMO_DB"
	hl_log "loading examples/demo_setup.sql as postgres"
	psql -X -q -U postgres -d "$DEMO_DB" -f examples/demo_setup.sql || hl_die "examples/demo_setup.sql failed"

	hl_log "walking through examples/demo_walkthrough.sql as demo_app"
	out=$(mktemp)
	# Read from standard input, so errors carry no file:line prefix. stdbuf keeps results
	# and errors in the order they happened when both go to one pipe.
	stdbuf -oL -eL psql -X -e -U demo_app -d "$DEMO_DB" <examples/demo_walkthrough.sql >"$out" 2>&1
	rc=$?
	cat "$out"
	if [ "$rc" != 0 ]; then
		rm -f "$out"
		hl_die "psql failed (exit $rc)"
	fi
	if ! diff -u examples/demo_walkthrough.out "$out" >"$out.diff"; then
		cat "$out.diff"
		rm -f "$out" "$out.diff"
		hl_die "the walkthrough's output differs from examples/demo_walkthrough.out (above): hlauth's behaviour changed, or the demo is out of date"
	fi
	rm -f "$out" "$out.diff"
	exit 0
fi

# ---- as the invoking user (root or a sudo user) ----
hl_deps
hl_log "building and installing hlauth"
hl_build_install
user=$(hl_osuser)
scratch=$(hl_scratch "$PWD/.tmp/demo")
data=$scratch/data

if [ "$(id -u)" = 0 ]; then
	# The cluster user may not be able to read this checkout (under /root, say): it runs
	# from a copy of the demo's files in the scratch folder, which it owns.
	src=$scratch/src
	rm -rf "$src"
	mkdir -p "$src/examples" "$src/test"
	cp test/lib.sh "$src/test/"
	cp examples/demo.sh examples/demo_setup.sql examples/demo_walkthrough.sql \
		examples/demo_walkthrough.out "$src/examples/"
	chown -R "$user" "$src"
	(cd "$src" && hl_as_osuser bash examples/demo.sh --as-cluster-user "$data") || exit 1
else
	bash examples/demo.sh --as-cluster-user "$data" || exit 1
fi

port=$(sed -n 4p "$data/postmaster.pid" 2>/dev/null)
if [ "$(id -u)" = 0 ]; then
	stop="runuser -u $user -- $HL_PGBIN/pg_ctl -D $data stop"
else
	stop="$HL_PGBIN/pg_ctl -D $data stop"
fi
cat <<EOF

The demo cluster is still running (PostgreSQL $HL_PG_MAJOR, Unix socket only, trust authentication).

  Connect as the app role:   psql -h $data -p $port -U demo_app -d $DEMO_DB
  Connect as the superuser:  psql -h $data -p $port -U postgres -d $DEMO_DB
  Replay the walkthrough:    psql -X -e -h $data -p $port -U demo_app -d $DEMO_DB < examples/demo_walkthrough.sql
  Stop the cluster:          $stop

Run 'make demo' again to recreate the database on the same cluster.
EOF
