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

-- set_principal() keeps only the asked scopes the principal holds through its grants (issue
-- #3). The bench principal holds contacts.readonly and contacts.write at all 10,000 accounts
-- as a platform would grant them: both permissions registered, one platform role, one grant
-- per agency (inherited by its 100 accounts).
SELECT hlauth.register_permission('contacts.readonly', 'read contacts');
SELECT hlauth.register_permission('contacts.write', 'create and edit contacts');
WITH r AS MATERIALIZED (SELECT hlauth.create_role('bench contacts', 'contacts.readonly contacts.write') AS id)
SELECT count(hlauth.grant_role(md5('hlbench-principal')::uuid, r.id, md5('hlbench-agency-' || a)::uuid))
  FROM r, generate_series(1, 100) a;

-- API keys (issue #3): 1,000,000 grants over 100,000 principals and 100,000 keys, loaded
-- set-based as the superuser: the API (grant_role, issue_api_key) would take far longer, and
-- the rows are those it would write (defaults for ids and times, granted_by and created_by
-- NULL as for hlauth_admin). Principal p (md5('hlbench-key-principal-' || p)) holds 10
-- grants, at tenants distinct from each other: j = 0..8 at account (p - 1 + 1111 j) % 10000
-- + 1 (the 'bench contacts' role above for even j, a read-only role for odd j), j = 9 at
-- agency (p + 49) % 100 + 1 (read-only; not above any of its accounts). Grant rows are
-- written j-major, so one principal's grants lie on 10 different heap pages, as grants made
-- over time would. 90 grants per account, 1,000 per agency.
SELECT hlauth.create_role('bench contacts reader', 'contacts.readonly') AS bench_reader_role \gset
SELECT r.id AS bench_editor_role FROM hlauth.roles r WHERE r.name = 'bench contacts' AND r.agency_id IS NULL \gset
INSERT INTO hlauth.grants (principal, role_id, tenant_id)
SELECT md5('hlbench-key-principal-' || p)::uuid,
       CASE WHEN j % 2 = 0 AND j < 9 THEN :'bench_editor_role' ELSE :'bench_reader_role' END::uuid,
       CASE WHEN j < 9 THEN md5('hlbench-account-' || ((p - 1 + j * 1111) % 10000 + 1))::uuid
            ELSE md5('hlbench-agency-' || ((p + 49) % 100 + 1))::uuid END
  FROM generate_series(0, 9) j, generate_series(1, 100000) p
 ORDER BY j, p;

-- Key k (1..100,000) belongs to principal k at account (k - 1) % 10000 + 1, where that
-- principal's grant j = 0 gives it contacts.readonly and contacts.write; the key carries
-- contacts.readonly (10 keys per account). The plaintexts (random base62 id and secret,
-- composed with a valid checksum) stay in bench.api_key_plaintexts, readable by the
-- superuser only, for the pgbench scripts; hlauth.api_keys holds only the HMAC, as
-- issue_api_key() writes it (text input of hlauth.apikey hashes a plaintext with the newest
-- pepper: about 2 us a key, so 100,000 in one statement).
CREATE TABLE bench.api_key_plaintexts (
	k integer PRIMARY KEY,
	t integer NOT NULL,			-- the key's account number
	key_id text NOT NULL UNIQUE,
	plaintext text NOT NULL
);
INSERT INTO bench.api_key_plaintexts (k, t, key_id, plaintext)
SELECT k, (k - 1) % 10000 + 1, left(s, 12),
       hlauth_internal.compose_api_key(current_setting('hlauth.api_key_prefix'), left(s, 12), right(s, 22))
  FROM (SELECT k, string_agg(substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
                                    1 + floor(random() * 62)::integer, 1), '') AS s
          FROM generate_series(1, 100000) k, generate_series(1, 34) c
         GROUP BY k) r;
INSERT INTO hlauth.api_keys (key_id, key, principal, tenant_id, scopes, name)
SELECT hlauth.api_key_id(s.key), s.key, md5('hlbench-key-principal-' || s.k)::uuid,
       md5('hlbench-account-' || s.t)::uuid, 'contacts.readonly', 'bench key ' || s.k
  FROM (SELECT k, t, plaintext::hlauth.apikey AS key FROM bench.api_key_plaintexts ORDER BY k) s;
DO $$
BEGIN
	-- Every key: its id as composed, and a live grant of its principal at its tenant.
	IF (SELECT count(*) FROM hlauth.api_keys a JOIN bench.api_key_plaintexts p ON p.key_id = a.key_id
		 WHERE hlauth.api_key_matches(a.key, p.plaintext)
		   AND EXISTS (SELECT 1 FROM hlauth.grants g WHERE g.principal = a.principal
						  AND g.tenant_id = a.tenant_id AND g.revoked_at IS NULL)) <> 100000 THEN
		RAISE EXCEPTION 'the bench API keys do not match their plaintexts, or lack a grant at their tenant';
	END IF;
END
$$;

-- effective_scopes per call (bench/micro.sh): 10,000 distinct (principal, tenant) pairs of
-- key principals' grants, in random order.
CREATE TABLE bench.scope_pairs AS
SELECT row_number() OVER () AS n, s.principal, s.tenant
  FROM (SELECT g.principal, g.tenant_id AS tenant FROM hlauth.grants g
		 WHERE g.principal <> md5('hlbench-principal')::uuid ORDER BY random() LIMIT 10000) s;
GRANT SELECT ON bench.scope_pairs TO hlbench_app;

VACUUM (FREEZE, ANALYZE) hlauth.tenants, hlauth.permissions, hlauth.roles, hlauth.grants, hlauth.api_keys, bench.api_key_plaintexts, bench.scope_pairs, bench.items_limit, bench.items_setting, bench.items_hlauth, bench.items_noscope;
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

-- Load the tables and indexes into shared buffers (the load and VACUUM went through small
-- ring buffers), so that no variant's first transactions read pages from the kernel.
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
SELECT count(pg_prewarm(c.oid)) AS prewarmed
  FROM pg_class c
 WHERE c.relnamespace IN ('bench'::regnamespace, 'hlauth'::regnamespace) AND c.relkind IN ('r', 'i');
