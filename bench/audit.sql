-- bench/audit.sql: the tables and helpers of the audit benchmark (bench/audit.sh). Run by
-- bench/audit.sh as the superuser, in a database of its own cluster.
-- Three copies of one table, side by side:
--   bench.contacts_none     no trigger
--   bench.contacts_hlauth   hlauth.audit()ed (tenant column account_id): hlauth.audit_log
--   bench.contacts_keys     the same with every column but the primary key excluded (a
--                           diagnostic: records without the row's values, what a per-row
--                           record costs at the least)
--   bench.contacts_plpgsql  the typical PL/pgSQL audit trigger (ANCHORS.md, "Audit"): AFTER
--                           INSERT OR UPDATE OR DELETE FOR EACH ROW, inserting (table name,
--                           TG_OP, to_jsonb(OLD), to_jsonb(NEW), now()) into
--                           bench.plpgsql_audit_log (bigserial primary key)
-- bench.run(op, variant, rows) times one measured statement server-side (clock_timestamp()
-- around EXECUTE, so no client round trip counts), with the backend's CPU time and the CPU
-- the rest of the machine used meanwhile (from /proc, read with pg_read_file: superuser).
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION IF NOT EXISTS hlauth;	-- audit.sh creates it first, to pin its library
CREATE SCHEMA bench;

CREATE TABLE bench.contacts_none (
	id bigint PRIMARY KEY,
	account_id uuid NOT NULL,
	name text,
	email text,
	score int,
	updated_at timestamptz DEFAULT now()
);
CREATE TABLE bench.contacts_hlauth (LIKE bench.contacts_none INCLUDING ALL);
CREATE TABLE bench.contacts_keys (LIKE bench.contacts_none INCLUDING ALL);
CREATE TABLE bench.contacts_plpgsql (LIKE bench.contacts_none INCLUDING ALL);

SELECT hlauth.audit('bench.contacts_hlauth', '{}', 'account_id');
SELECT hlauth.audit('bench.contacts_keys', '{account_id,name,email,score,updated_at}', 'account_id');

CREATE TABLE bench.plpgsql_audit_log (
	id bigserial PRIMARY KEY,
	table_name text NOT NULL,
	op text NOT NULL,
	old jsonb,
	new jsonb,
	logged_at timestamptz NOT NULL
);
CREATE FUNCTION bench.plpgsql_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO bench.plpgsql_audit_log (table_name, op, old, new, logged_at)
	VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP, to_jsonb(OLD), to_jsonb(NEW), now());
	RETURN NULL;
END
$$;
CREATE TRIGGER plpgsql_audit AFTER INSERT OR UPDATE OR DELETE ON bench.contacts_plpgsql
	FOR EACH ROW EXECUTE FUNCTION bench.plpgsql_audit();

-- The machine, for CPU accounting: clock ticks per second and CPUs (filled by audit.sh).
CREATE TABLE bench.machine (tck int NOT NULL, ncpu int NOT NULL);

-- CPU ticks so far: the machine's busy and idle ticks (/proc/stat, as bench/run.sh counts
-- them), and this backend's own (utime + stime of /proc/<pid>/stat).
CREATE FUNCTION bench.cpu_ticks(OUT busy bigint, OUT idle bigint, OUT self bigint) LANGUAGE plpgsql AS $$
DECLARE
	f text[];
	s text[];
BEGIN
	-- cpu user nice system idle iowait irq softirq steal ...
	f := regexp_split_to_array(split_part(pg_read_file('/proc/stat'), E'\n', 1), '\s+');
	busy := f[2]::bigint + f[3]::bigint + f[4]::bigint + f[7]::bigint + f[8]::bigint + coalesce(f[9], '0')::bigint;
	idle := f[5]::bigint + f[6]::bigint;
	-- after "pid (comm) ": state is field 3, utime 14, stime 15
	s := string_to_array(split_part(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ') ', 2), ' ');
	self := s[12]::bigint + s[13]::bigint;
END
$$;

-- Waits (up to max_wait seconds) until other processes use at most max_other % of the
-- machine, sampled over a second; returns the seconds waited (max_wait 0: no sampling).
CREATE FUNCTION bench.wait_quiet(max_other int, max_wait int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	a record;
	b record;
	waited int := 0;
	other float8;
BEGIN
	IF max_wait <= 0 THEN
		RETURN 0;
	END IF;
	LOOP
		SELECT * INTO a FROM bench.cpu_ticks();
		PERFORM pg_sleep(1);
		SELECT * INTO b FROM bench.cpu_ticks();
		other := ((b.busy - a.busy) - (b.self - a.self)) * 100.0
			/ greatest((b.busy - a.busy) + (b.idle - a.idle), 1);
		EXIT WHEN other <= max_other OR waited >= max_wait;
		PERFORM pg_sleep(4);
		waited := waited + 5;
	END LOOP;
	RETURN waited;
END
$$;

-- The measured statements. INSERT: rows 1..n over 1,000 accounts. UPDATE: score of rows
-- 1..n (every audited row changes one column).
CREATE FUNCTION bench.statement(op text, variant text, n bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE op
		WHEN 'insert' THEN format(
			'INSERT INTO bench.%I (id, account_id, name, email, score) '
			'SELECT g, (''00000000-0000-4000-8000-'' || lpad((g %% 1000)::text, 12, ''0''))::uuid, '
			'''Contact '' || g, ''contact'' || g || ''@example.com'', (g %% 100)::int '
			'FROM generate_series(1, %s) g', 'contacts_' || variant, n)
		WHEN 'update' THEN format(
			'UPDATE bench.%I SET score = score + 1 WHERE id <= %s', 'contacts_' || variant, n)
	END
$$;

-- Runs one measured statement (after waiting for a quiet machine) and returns its wall-clock
-- milliseconds, the backend's CPU milliseconds (10 ms ticks), the CPU other processes used
-- meanwhile in % of the machine, and the seconds waited for quiet before it.
CREATE FUNCTION bench.run(op text, variant text, n bigint, max_other int, max_wait int,
						  OUT wall_ms float8, OUT cpu_ms float8, OUT other_pct float8, OUT waited int)
	LANGUAGE plpgsql AS $$
DECLARE
	sql text := bench.statement(op, variant, n);
	a record;
	b record;
	t0 timestamptz;
	done bigint;
	tck int;
	ncpu int;
BEGIN
	SELECT m.tck, m.ncpu INTO STRICT tck, ncpu FROM bench.machine m;
	waited := bench.wait_quiet(max_other, max_wait);
	SELECT * INTO a FROM bench.cpu_ticks();
	t0 := clock_timestamp();
	EXECUTE sql;
	GET DIAGNOSTICS done = ROW_COUNT;
	wall_ms := 1000 * extract(epoch FROM clock_timestamp() - t0);
	SELECT * INTO b FROM bench.cpu_ticks();
	IF done <> n THEN
		RAISE EXCEPTION '% % changed % rows, not %', op, variant, done, n;
	END IF;
	cpu_ms := (b.self - a.self) * 1000.0 / tck;
	-- Ticks are coarse (10 ms): over a short statement, "other" is only a rough figure.
	other_pct := round(least(100, greatest(0, ((b.busy - a.busy) - (b.self - a.self)) * 1000.0 / tck
		/ greatest(wall_ms, 1) / ncpu * 100))::numeric, 1);
	wall_ms := round(wall_ms::numeric, 3);
END
$$;
