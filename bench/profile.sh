# shellcheck shell=bash
# bench/profile.sh: sourced by bench/run.sh when BENCH_PROFILE=1. Never run directly.
#
# Counts the CPU instructions the server spends per transaction in each variant, with
# valgrind's callgrind on a single-user backend. Unlike TPS, the count does not depend on what
# else the machine is doing, so it separates a cost of a few percent from noise. It covers
# the server only (no client, no kernel, no network): the same transaction costs more in
# wall time, so a difference in instructions moves TPS by a smaller fraction.
#
# Method: each variant runs PREPAREd statements (as pgbench -M prepared does) in a script of
# BEGIN; EXECUTE <set context>; EXECUTE <query>; COMMIT, over 500 tenants in turn, once with
# 1,000 and once with 3,000 transactions; the difference divided by 2,000 is the cost of one
# transaction with warm caches (every tenant's first use falls in the first 1,000).
# The auth variant (point lookup only) runs EXECUTE c('<key>') with c = SELECT
# hlauth.authenticate($1), over the first 500 keys of bench.bench_keys in turn (the pgbench
# scripts' keys), each lookup on a row of the key's account; every key's first use (key,
# tenant, principal and grants loaded) falls in the first 1,000 too. Its transactions are
# read-only (default_transaction_read_only), so authenticate() never writes last_used_at
# here: that write (once a minute per key and backend) costs a first use some 100,000
# instructions more or less depending on what earlier writes left in hlauth.api_keys, which
# would not cancel between the two runs. The pgbench runs pay it (read-write transactions).
# Needs the cluster of run.sh (loaded, running when called; it is stopped here).

# bench_profile_scripts DIR: writes DIR/<query>_<variant>_<N>.sql from the running cluster.
bench_profile_scripts() {
	local dir=$1 q v n pre tpl
	for q in $QUERIES; do
		for v in $VARIANTS; do
			has_query "$q" "$v" || continue
			case $q.$v in
			point.limit)
				pre="SET ROLE hlbench_owner;
PREPARE c(text) AS SELECT md5('hlbench-account-' || \$1)::uuid;
PREPARE q(uuid, bigint) AS SELECT id, name, email FROM bench.items_limit WHERE account_id = \$1 AND id = \$2;"
				tpl="EXECUTE c('%1\$s');
EXECUTE q('%2\$s', %3\$s);" ;;
			count.limit)
				pre="SET ROLE hlbench_owner;
PREPARE c(text) AS SELECT md5('hlbench-account-' || \$1)::uuid;
PREPARE q(uuid) AS SELECT count(*) FROM bench.items_limit WHERE account_id = \$1;"
				tpl="EXECUTE c('%1\$s');
EXECUTE q('%2\$s');" ;;
			point.setting | count.setting)
				pre="SET ROLE hlbench_app;
PREPARE c(text) AS SELECT set_config('app.tenant', md5('hlbench-account-' || \$1)::uuid::text, true);"
				;;
			point.auth)
				pre="SET default_transaction_read_only = on;
SET ROLE hlbench_app;
PREPARE c(text) AS SELECT hlauth.authenticate(\$1);
PREPARE q(bigint) AS SELECT id, name, email FROM bench.items_hlauth WHERE id = \$1;"
				tpl="EXECUTE c('%2\$s');
EXECUTE q(%3\$s);" ;;
			*)
				pre="SET ROLE hlbench_app;
PREPARE c(uuid, text, hlauth.scopes) AS SELECT hlauth.set_principal(\$1, md5('hlbench-account-' || \$2)::uuid, \$3);"
				;;
			esac
			case $q.$v in
			point.setting) pre="$pre
PREPARE q(bigint) AS SELECT id, name, email FROM bench.items_setting WHERE id = \$1;"
				tpl="EXECUTE c('%1\$s');
EXECUTE q(%3\$s);" ;;
			count.setting) pre="$pre
PREPARE q AS SELECT count(*) FROM bench.items_setting;"
				tpl="EXECUTE c('%1\$s');
EXECUTE q;" ;;
			point.hlauth | point.noscope) pre="$pre
PREPARE q(bigint) AS SELECT id, name, email FROM bench.items_$v WHERE id = \$1;"
				tpl="EXECUTE c('$PRINCIPAL', '%1\$s', 'contacts.readonly');
EXECUTE q(%3\$s);" ;;
			count.hlauth | count.noscope) pre="$pre
PREPARE q AS SELECT count(*) FROM bench.items_$v;"
				tpl="EXECUTE c('$PRINCIPAL', '%1\$s', 'contacts.readonly');
EXECUTE q;" ;;
			esac
			for n in 1000 3000; do
				if [ "$v" = auth ]; then
					# %2$s is the key here; t its account.
					{
						echo "$pre"
						psql -X -qAt -U postgres -v tpl="BEGIN;
$tpl
COMMIT;" -v n="$n" <<'SQL'
SELECT string_agg(format(:'tpl', b.t, b.plaintext, b.t + 10000 * ((s.i * 7919) % 200)), E'\n' ORDER BY s.i)
  FROM (SELECT i, i % LEAST(500, (SELECT count(*) FROM bench.bench_keys)) + 1 AS kn FROM generate_series(1, :n) i) s
  JOIN bench.bench_keys b ON b.n = s.kn;
SQL
					} >"$dir/${q}_${v}_$n.sql" || hl_die "could not write the profile scripts"
					continue
				fi
				{
					echo "$pre"
					psql -X -qAt -U postgres -v tpl="BEGIN;
$tpl
COMMIT;" -v n="$n" <<'SQL'
SELECT string_agg(format(:'tpl', t, md5('hlbench-account-' || t)::uuid, t + 10000 * ((i * 7919) % 200)), E'\n' ORDER BY i)
  FROM (SELECT i, i % 500 + 1 AS t FROM generate_series(1, :n) i) s;
SQL
				} >"$dir/${q}_${v}_$n.sql" || hl_die "could not write the profile scripts"
			done
		done
	done
}

# bench_profile DATA RESULTS: prints instructions per transaction per variant, and where
# hlauth's point lookup spends the instructions the limit does not.
bench_profile() {
	local data=$1 dir=$2/profile q v n total start
	command -v valgrind >/dev/null || hl_die "BENCH_PROFILE=1 needs valgrind (apt-get install valgrind)"
	mkdir -p "$dir"
	hl_log "profile: writing the transaction scripts"
	bench_profile_scripts "$dir"
	hl_cluster_stop "$data"
	hl_log "profile: counting instructions with callgrind (a few minutes)"
	for q in $QUERIES; do
		for v in $VARIANTS; do
			has_query "$q" "$v" || continue
			for n in 1000 3000; do
				start=$(date +%s)
				valgrind --tool=callgrind --callgrind-out-file="$dir/cg.${q}_${v}_$n" \
					"$HL_PGBIN/postgres" --single -D "$data" -c shared_buffers=256MB hlbench \
					<"$dir/${q}_${v}_$n.sql" >"$dir/${q}_${v}_$n.out" 2>"$dir/${q}_${v}_$n.err" \
					|| { tail -20 "$dir/${q}_${v}_$n.err" >&2; hl_die "callgrind run failed: $q $v"; }
				grep -q ERROR "$dir/${q}_${v}_$n.out" && { grep -m3 ERROR "$dir/${q}_${v}_$n.out" >&2; hl_die "profile script failed: $q $v"; }
				total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$dir/${q}_${v}_$n.err")
				echo "$q $v $n $total" >>"$dir/ir.txt"
				echo "$q $v $n $(($(date +%s) - start))" >>"$dir/seconds.txt"
			done
		done
	done

	echo
	echo "== server instructions per transaction (callgrind, single-user backend, warm caches; BENCH_PROFILE=1)"
	awk '
		{ ir[$1 " " $2 " " $3] = $4; if (!seen[$1 " " $2]++) order[++k] = $1 " " $2 }
		END {
			printf "%-6s %-16s %12s %9s\n", "query", "variant", "instr/tx", "vs limit"
			for (i = 1; i <= k; i++) {
				split(order[i], a, " "); key = order[i]; base = a[1] " limit"
				per = (ir[key " 3000"] - ir[key " 1000"]) / 2000
				bper = (ir[base " 3000"] - ir[base " 1000"]) / 2000
				name = a[2]; if (name == "setting") name = "current_setting"; if (name == "noscope") name = "hlauth_noscope"
				if (name == "auth") name = "auth (API key)"
				printf "%-6s %-16s %12.0f %9.3f\n", a[1], name, per, bper / per
			}
		}' "$dir/ir.txt"
	echo "(vs limit = limit's instructions / the variant's: the share of the limit's throughput the"
	echo " server work alone would allow)"

	# Where the point lookup of hlauth spends its instructions: inclusive, per transaction.
	if [ -f "$dir/cg.point_hlauth_3000" ]; then
		echo
		echo "== hlauth point lookup: inclusive instructions per transaction of selected functions"
		for n in 1000 3000; do
			callgrind_annotate --inclusive=yes --threshold=100 "$dir/cg.point_hlauth_$n" 2>/dev/null \
				| awk -v n="$n" '/^ *[0-9,]+ +\(/ && $0 !~ /=>/ {
					c = $1; gsub(",", "", c); f = $0; sub(/^ *[0-9,]+ +\([ 0-9.]+%\) +/, "", f); sub(/ \[.*$/, "", f); sub(/^.*:/, "", f)
					print n, f, c }'
		done | awk '
			{ v[$2 " " $1] += $3 }
			END {
				nf = split("hlauth_set_principal context_build context_serialize append_uuid context_set set_config_option context_check_hook HlTenantResolve AtEOXact_GUC pg_proc_aclcheck hlauth_accessible_tenants hlauth_has_scope scopes_in uuid_in uuid_out", fs, " ")
				for (i = 1; i <= nf; i++) {
					d = (v[fs[i] " 3000"] - v[fs[i] " 1000"]) / 2000
					if (d > 0) printf "  %-28s %8.0f\n", fs[i], d
				}
			}'
		echo "(uuid_in/uuid_out: every call in the transaction, hlauth's and PostgreSQL's own)"
	fi

	# Issue #3: authenticate(key) next to set_principal, both followed by the same lookup.
	if [ -f "$dir/cg.point_auth_3000" ] && [ -f "$dir/cg.point_hlauth_3000" ]; then
		echo
		echo "== API keys (issue #3): point lookup after authenticate(key) vs after set_principal, instructions per transaction"
		awk '
			{ ir[$1 " " $2 " " $3] = $4 }
			END {
				a = (ir["point auth 3000"] - ir["point auth 1000"]) / 2000
				h = (ir["point hlauth 3000"] - ir["point hlauth 1000"]) / 2000
				printf "  auth %.0f, hlauth %.0f: auth costs %.0f more; hlauth / auth = %.3f (target >= 0.9 of hlauth'"'"'s TPS)\n", a, h, a - h, h / a
			}' "$dir/ir.txt"
		awk '$1 == "point" && $2 == "auth" && $4 > 60 { slow = 1 } END { if (slow) print "  (WARNING: an auth profile run took over 60 s: keys were touched again (last_used_at), inflating the figure)" }' "$dir/seconds.txt"
		echo "  inclusive instructions per transaction of selected functions:"
		for v in auth hlauth; do
			for n in 1000 3000; do
				callgrind_annotate --inclusive=yes --threshold=100 "$dir/cg.point_${v}_$n" 2>/dev/null \
					| awk -v n="$n" -v v="$v" '/^ *[0-9,]+ +\(/ && $0 !~ /=>/ {
						c = $1; gsub(",", "", c); f = $0; sub(/^ *[0-9,]+ +\([ 0-9.]+%\) +/, "", f); sub(/ \[.*$/, "", f); sub(/^.*:/, "", f)
						print v, n, f, c }'
			done
		done | awk '
			{ x[$1 " " $3 " " $2] += $4 }
			END {
				nf = split("hlauth_authenticate hlauth_set_principal HlRefuseBypassRoles hla_apikey_parse key_lookup hash_search key_hash hla_hmac_key_sha256 HlTenantResolve HlPrincipalActive HlEffectiveScopes HlScopesIntersect HlContextEstablish context_build context_set set_config_option key_touch AtEOXact_GUC pg_proc_aclcheck hlauth_accessible_tenants scopes_in uuid_in", fs, " ")
				printf "  %-28s %8s %8s\n", "function", "auth", "hlauth"
				for (i = 1; i <= nf; i++) {
					da = (x["auth " fs[i] " 3000"] - x["auth " fs[i] " 1000"]) / 2000
					dh = (x["hlauth " fs[i] " 3000"] - x["hlauth " fs[i] " 1000"]) / 2000
					if (da > 0 || dh > 0) printf "  %-28s %8.0f %8.0f\n", fs[i], da, dh
				}
			}'
		echo "  (static functions inlined by the compiler do not appear; hash_search: every caller's)"
	fi
}
