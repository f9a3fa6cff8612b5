# test/lib.sh: shared shell helpers for `make test`, `make demo` and `make bench`.
# Sourced, never run. It installs Debian packages, builds and installs the extension, and
# runs throwaway PostgreSQL clusters as an unprivileged user (PostgreSQL refuses root).
# It must never touch a system cluster: every cluster lives in a folder we create, on a
# Unix socket in that folder, with listen_addresses = ''.

HL_PG_MAJOR=${HL_PG_MAJOR:-15}
HL_PGBIN=/usr/lib/postgresql/$HL_PG_MAJOR/bin
HL_TEST_OSUSER=${HL_TEST_OSUSER:-hlauth_pg}
HL_PACKAGES="postgresql-$HL_PG_MAJOR postgresql-server-dev-$HL_PG_MAJOR postgresql-contrib
  postgresql-$HL_PG_MAJOR-pgtap libtap-parser-sourcehandler-pgtap-perl libipc-run-perl
  pgbouncer libssl-dev libcmocka-dev zlib1g-dev clang libclang-rt-14-dev make gcc perl"

hl_log() { printf '==> %s\n' "$*" >&2; }
hl_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, else through sudo.
hl_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Install whatever Debian packages are missing. Quiet when all are present.
hl_deps() {
	local missing="" p
	for p in $HL_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	hl_log "installing Debian packages:$missing"
	export DEBIAN_FRONTEND=noninteractive
	hl_root apt-get update -qq >/dev/null || hl_die "apt-get update failed"
	# shellcheck disable=SC2086
	hl_root apt-get install -y -qq --no-install-recommends $missing >/dev/null || hl_die "apt-get install failed:$missing"
	# Debian starts a packaged pgbouncer service; our tests run their own.
	hl_root systemctl disable --now pgbouncer >/dev/null 2>&1 || true
}

# Build (warnings are errors) and install into the PostgreSQL tree.
hl_build_install() {
	make -s PG_CONFIG="$HL_PGBIN/../bin/pg_config" all >/dev/null || hl_die "build failed"
	hl_root make -s PG_CONFIG=/usr/bin/pg_config install >/dev/null || hl_die "install failed"
}

# The OS user that runs clusters: ourselves, or a dedicated system user when we are root.
hl_osuser() {
	if [ "$(id -u)" = 0 ]; then
		if ! id "$HL_TEST_OSUSER" >/dev/null 2>&1; then
			useradd --system --create-home --home-dir "/var/lib/$HL_TEST_OSUSER" \
				--shell /bin/bash "$HL_TEST_OSUSER" || hl_die "could not create user $HL_TEST_OSUSER"
		fi
		echo "$HL_TEST_OSUSER"
	else
		id -un
	fi
}

# Run a command as the cluster user, keeping the environment we need.
hl_as_osuser() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$HL_TEST_OSUSER" -- env PATH="$HL_PGBIN:$PATH" HOME="/var/lib/$HL_TEST_OSUSER" "$@"
	else
		env PATH="$HL_PGBIN:$PATH" "$@"
	fi
}

# hl_cluster_start DATADIR PORT [extra postgresql.conf lines...]
# Creates (if needed) and starts a cluster owned by the current OS user. Socket in DATADIR.
hl_cluster_start() {
	local dir=$1 port=$2; shift 2
	export PATH="$HL_PGBIN:$PATH"
	if [ ! -f "$dir/PG_VERSION" ]; then
		mkdir -p "$dir"
		initdb -D "$dir" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >"$dir.initdb.log" 2>&1 \
			|| { cat "$dir.initdb.log" >&2; hl_die "initdb failed"; }
		cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
max_prepared_transactions = 10
max_connections = 120
fsync = off
logging_collector = off
log_min_messages = warning
CONF
		local line
		for line in "$@"; do echo "$line" >>"$dir/postgresql.conf"; done
	fi
	if ! pg_ctl -D "$dir" status >/dev/null 2>&1; then
		pg_ctl -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null || { tail -20 "$dir/server.log" >&2; hl_die "cluster did not start"; }
	fi
}

hl_cluster_stop() {
	"$HL_PGBIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null 2>&1 || true
}

# N random bytes, as lower-case hex.
hl_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# A throwaway server secret (hlauth.secret_file) in FILE: a comment line (LABEL), then master
# keys of 32 random bytes for versions 1 to VERSIONS (default 1), readable by its owner only.
hl_write_secret() {
	local file=$1 label=$2 versions=${3:-1} v
	# The umask must be set before the file is created (so inside the subshell).
	(
		umask 077
		{
			printf '# %s\n' "$label"
			for v in $(seq 1 "$versions"); do printf '%s %s\n' "$v" "$(hl_hex 32)"; done
		} >"$file"
	) || hl_die "could not write the server secret $file"
}

# A writable scratch folder for the cluster user: DIR if that user can write there, else /var/tmp.
hl_scratch() {
	local want=$1 user
	user=$(hl_osuser)
	mkdir -p "$want"
	if [ "$(id -u)" = 0 ]; then
		chown "$user" "$want" 2>/dev/null
		if runuser -u "$user" -- test -w "$want" 2>/dev/null; then echo "$want"; return; fi
		want="/var/tmp/hlauth-$(basename "$want")"
		mkdir -p "$want" && chown "$user" "$want"
	fi
	echo "$want"
}
