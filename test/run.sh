#!/usr/bin/env bash
# test/run.sh: `make test`. Installs what is missing (Debian packages), builds with warnings
# as errors, installs the extension, then runs every suite against a throwaway cluster as an
# unprivileged user (PostgreSQL refuses to run as root). Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=test/lib.sh
source test/lib.sh

hl_deps
hl_log "building and installing hlauth"
hl_build_install
user=$(hl_osuser)

if [ "$(id -u)" = 0 ]; then
	# The cluster user must be able to write results: run from a copy it owns.
	work=$(mktemp -d /tmp/hlauth-test.XXXXXX)
	tar --exclude=./.git --exclude=./.tmp -cf - . | tar -C "$work" -xf -
	chown -R "$user" "$work"
	hl_log "running the suites as $user in $work"
	(cd "$work" && hl_as_osuser bash test/run-suites.sh)
	rc=$?
	for f in regression.diffs output_iso/regression.diffs; do
		[ -f "$work/$f" ] && mkdir -p "$(dirname "$f")" && cp "$work/$f" "$f"
	done
	[ "$rc" = 0 ] && rm -rf "$work"
	exit "$rc"
else
	exec bash test/run-suites.sh
fi
