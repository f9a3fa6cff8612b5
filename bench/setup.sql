-- bench/setup.sql: the data every variant reads. Run by bench/run.sh as the superuser.
-- 100 agencies, 10,000 accounts (100 per agency), and one table of 2,000,000 rows over those
-- accounts (200 rows each), copied three times so the variants run side by side:
--   bench.items_limit    no RLS (queried by its owner, hlbench_owner, not a superuser,
--                        with a literal tenant predicate)
--   bench.items_setting  RLS: account_id = current_setting('app.tenant')::uuid
--   bench.items_hlauth   hlauth.protect()ed with read scope contacts.readonly
--   bench.items_noscope  hlauth.protect()ed without a read scope (a diagnostic: what the
--                        read-scope check costs)
-- Tenant ids are md5-derived from their number, so a pgbench script names tenant N as
-- md5('hlbench-account-' || N)::uuid without an extra lookup query.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION IF NOT EXISTS hlauth;	-- run.sh creates it first, to pin its library
CREATE SCHEMA bench;

-- Straight into hlauth.tenants as the superuser: the shape trigger runs per row, the cache
-- invalidation trigger once per statement.
INSERT INTO hlauth.tenants (id, kind, parent, name)
SELECT md5('hlbench-agency-' || a)::uuid, 'agency', NULL, 'agency ' || a
  FROM generate_series(1, 100) a;
INSERT INTO hlauth.tenants (id, kind, parent, name)
SELECT md5('hlbench-account-' || t)::uuid, 'account', md5('hlbench-agency-' || ((t - 1) % 100 + 1))::uuid,
       'account ' || t
  FROM generate_series(1, 10000) t;

-- Row i belongs to account ((i - 1) % 10000) + 1: an account's 200 rows are spread over the
-- heap (as rows of many tenants arriving interleaved would be).
CREATE TABLE bench.items_limit (
	account_id uuid NOT NULL,
	id bigint NOT NULL,
	name text NOT NULL,
	email text NOT NULL
);
INSERT INTO bench.items_limit (account_id, id, name, email)
SELECT md5('hlbench-account-' || ((i - 1) % 10000 + 1))::uuid, i, 'contact ' || i, 'c' || i || '@example.com'
  FROM generate_series(1, 2000000) i;
CREATE TABLE bench.items_setting (LIKE bench.items_limit);
INSERT INTO bench.items_setting SELECT * FROM bench.items_limit;
CREATE TABLE bench.items_hlauth (LIKE bench.items_limit);
INSERT INTO bench.items_hlauth SELECT * FROM bench.items_limit;
CREATE TABLE bench.items_noscope (LIKE bench.items_limit);
INSERT INTO bench.items_noscope SELECT * FROM bench.items_limit;

-- The index on (tenant, id): the primary key of each copy.
ALTER TABLE bench.items_limit ADD PRIMARY KEY (account_id, id);
ALTER TABLE bench.items_setting ADD PRIMARY KEY (account_id, id);
ALTER TABLE bench.items_hlauth ADD PRIMARY KEY (account_id, id);
ALTER TABLE bench.items_noscope ADD PRIMARY KEY (account_id, id);

-- The limit's role owns its table and is not a superuser: a superuser skips every
-- permission check (about 2% of a transaction's server instructions), which would flatter it.
CREATE ROLE hlbench_owner LOGIN NOSUPERUSER;
GRANT USAGE ON SCHEMA bench TO hlbench_owner;
ALTER TABLE bench.items_limit OWNER TO hlbench_owner;

-- The app role: not a superuser, no BYPASSRLS, may call hlauth.set_principal().
CREATE ROLE hlbench_app LOGIN NOSUPERUSER NOBYPASSRLS;
GRANT hlauth_trusted TO hlbench_app;
GRANT USAGE ON SCHEMA bench TO hlbench_app;
GRANT SELECT ON bench.items_limit, bench.items_setting, bench.items_hlauth, bench.items_noscope TO hlbench_app;

-- current_setting variant (the app role is not the owner: ENABLE is enough).
ALTER TABLE bench.items_setting ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON bench.items_setting
	USING (account_id = current_setting('app.tenant')::uuid);

-- hlauth variant: read scope contacts.readonly, write scope contacts.write.
SELECT hlauth.protect('bench.items_hlauth', 'account_id', 'contacts.readonly', 'contacts.write', 'account');
SELECT hlauth.protect('bench.items_noscope', 'account_id', NULL, NULL, 'account');

VACUUM (FREEZE, ANALYZE) hlauth.tenants, bench.items_limit, bench.items_setting, bench.items_hlauth, bench.items_noscope;
CHECKPOINT;

-- Index-only scans must not visit the heap in one variant and not another.
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = 'bench'::regnamespace AND c.relkind = 'r'
				AND c.relallvisible < c.relpages) THEN
		RAISE EXCEPTION 'a bench table is not all-visible after VACUUM'
			USING HINT = 'An open transaction, or asynchronous commit of the load, keeps VACUUM from setting pages all-visible.';
	END IF;
END
$$;
