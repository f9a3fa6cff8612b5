/*
 * src/rbac.c
 *		Permissions, roles and grants: a principal's effective scopes at a tenant, and its
 *		attributes, read through a per-backend cache.
 *
 * The tables (hlauth.permissions, roles, grants, agency_allowances, principals) are written
 * only by the SECURITY DEFINER functions of src/sql/0.2.0/020_rbac.sql. Reading them is this
 * file's job. set_principal and every token path ask HlEffectiveScopes() once per
 * transaction, so a warm cache must answer without touching a table, and a change must reach
 * every backend at once:
 *	- each table has statement triggers that send a relcache invalidation for it
 *	  (hlauth_rbac_changed, as src/tenants.c does for hlauth.tenants); the callback below bumps
 *	  a counter, and the next lookup drops the whole cache. A change of the tenant tree
 *	  (HlTenantsGeneration) drops it too;
 *	- an entry also expires when the transaction start time reaches the earliest future
 *	  valid_from or valid_until among the grants it was computed from;
 *	- a miss reads the tables with index scans (as src/tenants.c does: no SPI, no permission
 *	  checks and no row-level security, which must not hide rows from this computation; app
 *	  roles have no grant on the tables), under the latest snapshot: a commit that snapshot
 *	  misses sends its invalidation after it, so the stale entry is dropped at the next
 *	  invalidation point. In parallel mode (no new snapshot allowed) entries are kept for the
 *	  current transaction only. A miss used to run SPI queries (a join planned once, as the
 *	  bootstrap superuser with search_path pinned): some 130 us per new principal and tenant,
 *	  paid by every pooled backend for every tenant it meets; the index scans cost a tenth.
 *
 * This file must never return a scope that is not a registered permission, never count a
 * revoked, expired or not-yet-valid grant, a suspended principal, or an unknown or suspended
 * tenant, and never trust an entry across an invalidation.
 */
#include "hlauth.h"

#include "core/crypto.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(hlauth_rbac_changed);
PG_FUNCTION_INFO_V1(hlauth_effective_scopes);
PG_FUNCTION_INFO_V1(hlauth_expand_scopes);
PG_FUNCTION_INFO_V1(hlauth_attribute);
PG_FUNCTION_INFO_V1(hlauth_caller_is_admin);
PG_FUNCTION_INFO_V1(hlauth_caller_stamp);
PG_FUNCTION_INFO_V1(hlauth_caller_was_admin);

/* A cache holding more entries than this is dropped and rebuilt rather than grown. */
#define HL_RBAC_CACHE_MAX 50000

/*
 * A principal's live grants are kept with its entry when it has at most this many, and
 * while all entries together keep at most HL_GRANTS_KEPT_TOTAL; otherwise its grants are
 * read per tenant, as the path of each first use needs them.
 */
#define HL_GRANTS_KEPT_MAX 256
#define HL_GRANTS_KEPT_TOTAL 65536

/* The tables whose changes invalidate the cache, in the order of rbac_relnames. */
#define HL_RBAC_NTABLES 5
static const char *const rbac_relnames[HL_RBAC_NTABLES] = {
	"permissions", "roles", "grants", "agency_allowances", "principals"
};
#define RBAC_PERMISSIONS	0
#define RBAC_ROLES			1
#define RBAC_GRANTS			2
#define RBAC_ALLOWANCES		3
#define RBAC_PRINCIPALS		4
static Oid	rbac_relids[HL_RBAC_NTABLES];
static bool rbac_relids_valid = false;

/*
 * The indexes the reads use, and the columns they read (looked up by name with the tables'
 * OIDs, so a column order that differs between a fresh install and an upgrade is no issue).
 */
static Oid	idx_roles_pkey;
static Oid	idx_grants_principal_tenant;	/* partial: WHERE revoked_at IS NULL */
static Oid	idx_allowances_pkey;
static Oid	idx_principals_pkey;
static AttrNumber col_perm_scope,
			col_perm_implies;
static AttrNumber col_role_id,
			col_role_agency,
			col_role_scopes;
static AttrNumber col_grant_principal,
			col_grant_role,
			col_grant_tenant,
			col_grant_from,
			col_grant_until,
			col_grant_revoked;
static AttrNumber col_allow_agency,
			col_allow_scopes;
static AttrNumber col_principal_id,
			col_principal_status,
			col_principal_attributes;

/* Bumped by the relcache callback; the cache was built at cache_built_count. */
static uint64 rbac_inval_count = 0;

/* ---- the cache ---- */

typedef struct EffKey
{
	pg_uuid_t	principal;
	pg_uuid_t	tenant;
} EffKey;

typedef struct EffEntry
{
	EffKey		key;			/* hash key */
	TimestampTz expires;		/* recompute once the transaction starts at or after this */
	HlScopes   *scopes;			/* in RbacCacheContext */

	/*
	 * The memo of HlPrincipalAt (set_principal, authenticate), valid with the entry: reset
	 * whenever scopes is recomputed. asked, granted and access share one block in
	 * RbacCacheContext.
	 */
	bool		at_valid;
	HlTenantPath path;
	void	   *tenant_entry;	/* HlTenantsEntryFor() handle, and its build */
	uint64		tenant_build;
	HlScopes   *asked;
	HlScopes   *granted;
	ArrayType  *access;			/* the tenant alone: the reach at its own kind */
} EffEntry;

/* A row of hlauth.roles (exists false: no such role). */
typedef struct RoleEntry
{
	pg_uuid_t	id;				/* hash key */
	bool		exists;
	bool		custom;			/* an agency's custom role: agency is its agency */
	pg_uuid_t	agency;
	HlScopes   *scopes;			/* in RbacCacheContext */
} RoleEntry;

/* A row of hlauth.agency_allowances (scopes NULL: none, so custom roles grant nothing). */
typedef struct AllowanceEntry
{
	pg_uuid_t	agency;			/* hash key */
	HlScopes   *scopes;			/* in RbacCacheContext */
} AllowanceEntry;

/* A live grant (revoked_at IS NULL, a role given), as kept with its principal. */
typedef struct GrantRow
{
	pg_uuid_t	tenant;
	pg_uuid_t	role;
	TimestampTz from;			/* DT_NOBEGIN for NULL */
	TimestampTz until;			/* DT_NOEND for NULL */
} GrantRow;

typedef struct PrincipalEntry
{
	pg_uuid_t	id;				/* hash key */
	bool		active;			/* no row: active */
	Jsonb	   *attributes;		/* in RbacCacheContext; NULL when there is no row */
	bool		grants_read;	/* its live grants were read (in this cache's lifetime) */
	int			misses;			/* effective scopes worked out for it (at new tenants) */
	int			ngrants;		/* how many are kept; -1: too many, read per tenant */
	GrantRow   *grants;			/* sorted by tenant, in RbacCacheContext */
} PrincipalEntry;

/* One registered permission. */
typedef struct Permission
{
	const char *scope;			/* NUL-terminated, in RbacCacheContext */
	size_t		len;
	int		   *implies;		/* indexes into the registry (unregistered ones dropped) */
	int			nimplies;
} Permission;

typedef struct Registry
{
	int			n;
	Permission *perms;			/* sorted bytewise, as in a canonical hlauth.scopes */
} Registry;

static MemoryContext RbacCacheContext = NULL;
static HTAB *EffCache = NULL;
static HTAB *PrincipalCache = NULL;
static HTAB *RoleCache = NULL;
static HTAB *AllowanceCache = NULL;
static Registry *CachedRegistry = NULL;
static uint64 registry_generation = 0;	/* bumped whenever CachedRegistry is rebuilt */
static uint64 cache_built_count = 0;
static uint64 cache_built_tenants = 0;
static int	grants_kept_total = 0;	/* GrantRows kept by all PrincipalEntries */
static bool cache_force_reset = false;

/*
 * Entries filled in parallel mode were read under the statement's snapshot, not the latest
 * one: they may serve only the transaction that read them. Set to that transaction's local
 * id while the cache holds any; the first lookup of another transaction drops the cache.
 */
static LocalTransactionId cache_xact_lxid = InvalidLocalTransactionId;

static void
rbac_relcache_callback(Datum arg, Oid relid)
{
	int			i;

	/*
	 * Never free memory here: a lookup may be in progress. Mark the cache stale, and forget
	 * the tables' OIDs (DROP and CREATE EXTENSION make new ones).
	 */
	if (relid == InvalidOid)
	{
		rbac_inval_count++;
		rbac_relids_valid = false;
		return;
	}
	if (!rbac_relids_valid)
		return;
	for (i = 0; i < HL_RBAC_NTABLES; i++)
	{
		if (relid == rbac_relids[i])
		{
			rbac_inval_count++;
			rbac_relids_valid = false;
			return;
		}
	}
}

void
HlRbacInit(void)
{
	CacheRegisterRelcacheCallback(rbac_relcache_callback, (Datum) 0);
}

/*
 * Does this database have the tables of permissions, roles and grants (hlauth 0.2.0 or
 * later)? Between installing a newer library and ALTER EXTENSION ... UPDATE, a database
 * still at 0.1.0 has none: set_principal then keeps 0.1.0's behaviour.
 */
bool
HlRbacInstalled(void)
{
	Oid			nsp;

	if (rbac_relids_valid)
		return true;
	nsp = get_namespace_oid("hlauth", true);
	return OidIsValid(nsp) && OidIsValid(get_relname_relid("grants", nsp));
}

/*
 * For the glue files that read hlauth's own tables with index scans (this one,
 * src/apikey.c): an index of schema nsp by name, and a column of table relid (named relname
 * in errors) by name, of the given type (InvalidOid: any).
 */
Oid
HlTableIndex(Oid nsp, const char *name)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "hlauth's index hlauth.%s does not exist", name);
	return relid;
}

AttrNumber
HlTableColumn(Oid relid, const char *relname, const char *name, Oid type)
{
	AttrNumber	attnum = get_attnum(relid, name);

	if (attnum == InvalidAttrNumber ||
		(OidIsValid(type) && get_atttype(relid, attnum) != type))
		elog(ERROR, "hlauth.%s does not have the expected column \"%s\"", relname, name);
	return attnum;
}

static AttrNumber
rbac_column(int table, const char *name, Oid type)
{
	return HlTableColumn(rbac_relids[table], rbac_relnames[table], name, type);
}

/*
 * Learn the tables' OIDs before reading them, so that their invalidations are recognised.
 * Called on a miss, before the first read.
 */
static void
rbac_lookup_relids(void)
{
	Oid			nsp;
	int			i;
	Oid			scopes_type;

	if (rbac_relids_valid)
		return;
	nsp = get_namespace_oid("hlauth", true);
	for (i = 0; i < HL_RBAC_NTABLES; i++)
	{
		rbac_relids[i] = OidIsValid(nsp) ? get_relname_relid(rbac_relnames[i], nsp) : InvalidOid;
		if (!OidIsValid(rbac_relids[i]))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("hlauth 0.2.0 is not installed in this database"),
					 errdetail("Table hlauth.%s does not exist.", rbac_relnames[i]),
					 errhint("Run CREATE EXTENSION hlauth, or ALTER EXTENSION hlauth UPDATE.")));
	}
	idx_roles_pkey = HlTableIndex(nsp, "roles_pkey");
	idx_grants_principal_tenant = HlTableIndex(nsp, "grants_principal_tenant_idx");
	idx_allowances_pkey = HlTableIndex(nsp, "agency_allowances_pkey");
	idx_principals_pkey = HlTableIndex(nsp, "principals_pkey");

	scopes_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("scopes"),
								  ObjectIdGetDatum(nsp));
	col_perm_scope = rbac_column(RBAC_PERMISSIONS, "scope", TEXTOID);
	col_perm_implies = rbac_column(RBAC_PERMISSIONS, "implies", TEXTARRAYOID);
	col_role_id = rbac_column(RBAC_ROLES, "id", UUIDOID);
	col_role_agency = rbac_column(RBAC_ROLES, "agency_id", UUIDOID);
	col_role_scopes = rbac_column(RBAC_ROLES, "scopes", scopes_type);
	col_grant_principal = rbac_column(RBAC_GRANTS, "principal", UUIDOID);
	col_grant_role = rbac_column(RBAC_GRANTS, "role_id", UUIDOID);
	col_grant_tenant = rbac_column(RBAC_GRANTS, "tenant_id", UUIDOID);
	col_grant_from = rbac_column(RBAC_GRANTS, "valid_from", TIMESTAMPTZOID);
	col_grant_until = rbac_column(RBAC_GRANTS, "valid_until", TIMESTAMPTZOID);
	col_grant_revoked = rbac_column(RBAC_GRANTS, "revoked_at", TIMESTAMPTZOID);
	col_allow_agency = rbac_column(RBAC_ALLOWANCES, "agency_id", UUIDOID);
	col_allow_scopes = rbac_column(RBAC_ALLOWANCES, "scopes", scopes_type);
	col_principal_id = rbac_column(RBAC_PRINCIPALS, "id", UUIDOID);
	col_principal_status = rbac_column(RBAC_PRINCIPALS, "status", TEXTOID);
	col_principal_attributes = rbac_column(RBAC_PRINCIPALS, "attributes", JSONBOID);
	rbac_relids_valid = true;
}

/* Drop the cache if anything it was built from may have changed. Call before every lookup. */
static void
rbac_cache_prepare(void)
{
	HASHCTL		ctl;

	/*
	 * Entries filled in parallel mode were read under the statement's snapshot (in
	 * REPEATABLE READ, the transaction's): they serve parallel statements of their own
	 * transaction only. Outside parallel mode every lookup judges by what is committed now
	 * (set_principal, authenticate, and grant_role's "held by its own grants": a red-team
	 * pass refilled the cache in parallel mode, after a revocation, and granted on).
	 */
	if (RbacCacheContext != NULL && !cache_force_reset &&
		cache_built_count == rbac_inval_count &&
		cache_built_tenants == HlTenantsGeneration() &&
		(cache_xact_lxid == InvalidLocalTransactionId ||
		 (cache_xact_lxid == MyProc->lxid && IsInParallelMode())))
		return;

	if (RbacCacheContext == NULL)
		RbacCacheContext = AllocSetContextCreate(CacheMemoryContext, "hlauth rbac cache",
												 ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(RbacCacheContext);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(EffKey);
	ctl.entrysize = sizeof(EffEntry);
	ctl.hcxt = RbacCacheContext;
	EffCache = hash_create("hlauth effective scopes", 256, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(PrincipalEntry);
	PrincipalCache = hash_create("hlauth principals", 256, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.entrysize = sizeof(RoleEntry);
	RoleCache = hash_create("hlauth roles", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.entrysize = sizeof(AllowanceEntry);
	AllowanceCache = hash_create("hlauth agency allowances", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CachedRegistry = NULL;
	grants_kept_total = 0;
	cache_built_count = rbac_inval_count;
	cache_built_tenants = HlTenantsGeneration();
	cache_force_reset = false;
	cache_xact_lxid = InvalidLocalTransactionId;
}

/* A fill in parallel mode may serve only this transaction. */
static void
rbac_note_fill(void)
{
	if (IsInParallelMode())
		cache_xact_lxid = MyProc->lxid;
}

/* ---- reading the tables ---- */

/*
 * One read of the tables: the snapshot every scan of it uses (registered for the read).
 * Errors need no cleanup: (sub)transaction abort releases the snapshot, locks and scans.
 */
typedef struct RbacRead
{
	Snapshot	snapshot;
} RbacRead;

static void
rbac_read_begin(RbacRead *r)
{
	rbac_lookup_relids();
	/* See the head comment: the latest snapshot, except where none may be taken. */
	r->snapshot = RegisterSnapshot(IsInParallelMode() ? GetActiveSnapshot() : GetLatestSnapshot());
	rbac_note_fill();
}

static void
rbac_read_end(RbacRead *r)
{
	UnregisterSnapshot(r->snapshot);
}

/* Open one of the tables for the read (this processes pending invalidations). */
static Relation
rbac_open(int table)
{
	return table_open(rbac_relids[table], AccessShareLock);
}

static void
rbac_close(Relation rel)
{
	table_close(rel, AccessShareLock);
}

/* Open on first need: a first use whose roles and allowances are cached reads neither. */
static Relation
rbac_open_lazily(Relation *rel, int table)
{
	if (*rel == NULL)
		*rel = rbac_open(table);
	return *rel;
}

/* A copy in RbacCacheContext of a scopes value read from a table. */
static HlScopes *
cache_scopes(Datum d)
{
	HlScopes   *set = DatumGetHlScopesP(d);
	HlScopes   *copy = (HlScopes *) MemoryContextAlloc(RbacCacheContext, VARSIZE(set));

	memcpy(copy, set, VARSIZE(set));
	return copy;
}

static int
permission_cmp(const void *a, const void *b)
{
	const Permission *pa = (const Permission *) a;
	const Permission *pb = (const Permission *) b;
	hla_span	sa = {pa->scope, pa->len};
	hla_span	sb = {pb->scope, pb->len};

	return hla_span_cmp(&sa, &sb);
}

/* The index of a registered permission, or -1. */
static int
registry_find(const Registry *reg, const char *scope, size_t len)
{
	Permission	key;
	Permission *hit;

	key.scope = scope;
	key.len = len;
	hit = (Permission *) bsearch(&key, reg->perms, reg->n, sizeof(Permission), permission_cmp);
	return hit ? (int) (hit - reg->perms) : -1;
}

/* A row of hlauth.permissions while the registry is built. */
typedef struct PermissionRow
{
	Permission	perm;			/* scope and len; implies resolved later */
	char	  **implied;		/* the implied scopes' names */
	int			nimplied;
} PermissionRow;

static int
permission_row_cmp(const void *a, const void *b)
{
	return permission_cmp(&((const PermissionRow *) a)->perm, &((const PermissionRow *) b)->perm);
}

/* The registry, from the cache or read (a scan of hlauth.permissions) in the caller's read. */
static Registry *
registry_get(RbacRead *r)
{
	MemoryContext old;
	Registry   *reg;
	PermissionRow *rows;
	int			nrows = 0,
				maxrows = 64;
	Relation	rel;
	TupleDesc	desc;
	SysScanDesc scan;
	HeapTuple	tup;
	int			k,
				j;

	if (CachedRegistry != NULL)
		return CachedRegistry;

	old = MemoryContextSwitchTo(RbacCacheContext);
	reg = (Registry *) palloc0(sizeof(Registry));
	rows = (PermissionRow *) palloc0(sizeof(PermissionRow) * maxrows);
	rel = rbac_open(RBAC_PERMISSIONS);
	desc = RelationGetDescr(rel);
	scan = systable_beginscan(rel, InvalidOid, false, r->snapshot, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, col_perm_scope, desc, &isnull);
		Datum	   *elems;
		bool	   *enulls;
		int			nelems;

		if (isnull)
			elog(ERROR, "hlauth.permissions holds a NULL scope");
		if (nrows == maxrows)
		{
			rows = (PermissionRow *) repalloc(rows, sizeof(PermissionRow) * maxrows * 2);
			memset(rows + maxrows, 0, sizeof(PermissionRow) * maxrows);
			maxrows *= 2;
		}
		rows[nrows].perm.scope = TextDatumGetCString(d);
		rows[nrows].perm.len = strlen(rows[nrows].perm.scope);
		d = heap_getattr(tup, col_perm_implies, desc, &isnull);
		if (!isnull)
		{
			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &enulls, &nelems);
			rows[nrows].implied = (char **) palloc(sizeof(char *) * Max(nelems, 1));
			for (k = 0; k < nelems; k++)
				if (!enulls[k])
					rows[nrows].implied[rows[nrows].nimplied++] = TextDatumGetCString(elems[k]);
		}
		nrows++;
	}
	systable_endscan(scan);
	rbac_close(rel);
	reg->n = nrows;

	/*
	 * Sort bytewise, then resolve implied names to indexes. An implied scope that is not
	 * registered (the register function refuses one) implies nothing: fail closed.
	 */
	qsort(rows, reg->n, sizeof(PermissionRow), permission_row_cmp);
	reg->perms = (Permission *) palloc0(sizeof(Permission) * Max(reg->n, 1));
	for (k = 0; k < reg->n; k++)
		reg->perms[k] = rows[k].perm;
	for (k = 0; k < reg->n; k++)
	{
		reg->perms[k].implies = (int *) palloc(sizeof(int) * Max(rows[k].nimplied, 1));
		reg->perms[k].nimplies = 0;
		for (j = 0; j < rows[k].nimplied; j++)
		{
			int			idx = registry_find(reg, rows[k].implied[j], strlen(rows[k].implied[j]));

			if (idx >= 0 && idx != k)
				reg->perms[k].implies[reg->perms[k].nimplies++] = idx;
		}
	}
	MemoryContextSwitchTo(old);

	CachedRegistry = reg;
	registry_generation++;
	return reg;
}

/* Mark every registered permission a scope set grants (wildcards expanded). */
static void
registry_mark(const Registry *reg, const HlScopes *set, bool *marks)
{
	const char *p = set->data;
	int			i,
				k;

	for (i = 0; i < set->count; i++)
	{
		size_t		len = strlen(p);

		if (memchr(p, '*', len) == NULL)
		{
			k = registry_find(reg, p, len);
			if (k >= 0)
				marks[k] = true;
		}
		else
		{
			for (k = 0; k < reg->n; k++)
				if (!marks[k] && hla_scope_covers(p, len, reg->perms[k].scope, reg->perms[k].len))
					marks[k] = true;
		}
		p += len + 1;
	}
}

/* Add what the marked permissions imply, transitively. */
static void
registry_close(const Registry *reg, bool *marks)
{
	int		   *stack = (int *) palloc(sizeof(int) * Max(reg->n, 1));
	int			top = 0,
				k;

	for (k = 0; k < reg->n; k++)
		if (marks[k])
			stack[top++] = k;
	while (top > 0)
	{
		const Permission *perm = &reg->perms[stack[--top]];
		int			j;

		for (j = 0; j < perm->nimplies; j++)
		{
			if (!marks[perm->implies[j]])
			{
				marks[perm->implies[j]] = true;
				stack[top++] = perm->implies[j];
			}
		}
	}
	pfree(stack);
}

/* The registered permissions a scope set grants, with their implications. */
static void
registry_expand(const Registry *reg, const HlScopes *set, bool *marks)
{
	memset(marks, 0, sizeof(bool) * Max(reg->n, 1));
	registry_mark(reg, set, marks);
	registry_close(reg, marks);
}

/* The marked permissions as a canonical hlauth.scopes, palloc'd in CurrentMemoryContext. */
static HlScopes *
scopes_from_marks(const Registry *reg, const bool *marks)
{
	Size		size = offsetof(HlScopes, data);
	int			count = 0,
				k;
	HlScopes   *result;
	char	   *p;

	for (k = 0; k < reg->n; k++)
	{
		if (marks[k])
		{
			count++;
			size += reg->perms[k].len + 1;
		}
	}
	if (count > HLA_SCOPES_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many effective scopes: %d registered permissions are granted, at most %d fit in a value of type hlauth.scopes",
						count, HLA_SCOPES_MAX),
				 errhint("Grant narrower roles.")));
	result = (HlScopes *) palloc0(size);
	SET_VARSIZE(result, size);
	result->count = count;
	p = result->data;
	for (k = 0; k < reg->n; k++)
	{
		if (marks[k])
		{
			memcpy(p, reg->perms[k].scope, reg->perms[k].len);
			p += reg->perms[k].len + 1;
		}
	}
	return result;
}

static HlScopes *
empty_scopes(void)
{
	HlScopes   *result = (HlScopes *) palloc0(offsetof(HlScopes, data));

	SET_VARSIZE(result, offsetof(HlScopes, data));
	result->count = 0;
	return result;
}

static HlScopes *
copy_scopes(const HlScopes *set)
{
	HlScopes   *copy = (HlScopes *) palloc(VARSIZE(set));

	memcpy(copy, set, VARSIZE(set));
	return copy;
}

/* ---- principals ---- */

/* Begin a lookup of one uuid in a unique index; the caller reads the tuple and ends the scan. */
static SysScanDesc
uuid_key_scan(RbacRead *r, Relation rel, Oid index, AttrNumber col, const pg_uuid_t *id)
{
	ScanKeyData key;

	ScanKeyInit(&key, col, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(id));
	return systable_beginscan(rel, index, true, r->snapshot, 1, &key);
}

/* The principal's entry, from the cache or read (hlauth.principals' primary key) in the caller's read. */
static PrincipalEntry *
principal_get_read(RbacRead *r, const pg_uuid_t *id)
{
	PrincipalEntry *e;
	bool		found;
	bool		active = true;
	Jsonb	   *attributes = NULL;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;

	e = (PrincipalEntry *) hash_search(PrincipalCache, id, HASH_FIND, &found);
	if (found)
		return e;

	rel = rbac_open(RBAC_PRINCIPALS);
	scan = uuid_key_scan(r, rel, idx_principals_pkey, col_principal_id, id);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d = heap_getattr(tup, col_principal_status, desc, &isnull);

		/* No row: active. A row: active only with status 'active'. */
		active = !isnull && strcmp(TextDatumGetCString(d), "active") == 0;
		d = heap_getattr(tup, col_principal_attributes, desc, &isnull);
		if (!isnull)
		{
			Jsonb	   *jb = DatumGetJsonbP(d);

			attributes = (Jsonb *) MemoryContextAlloc(RbacCacheContext, VARSIZE(jb));
			memcpy(attributes, jb, VARSIZE(jb));
		}
	}
	systable_endscan(scan);
	rbac_close(rel);

	if (hash_get_num_entries(PrincipalCache) >= HL_RBAC_CACHE_MAX)
		cache_force_reset = true;	/* dropped at the next lookup; this entry serves now */
	e = (PrincipalEntry *) hash_search(PrincipalCache, id, HASH_ENTER, &found);
	e->active = active;
	e->attributes = attributes;
	e->grants_read = false;
	e->misses = 0;
	e->ngrants = -1;
	e->grants = NULL;
	return e;
}

static PrincipalEntry *
principal_get(const pg_uuid_t *id)
{
	PrincipalEntry *e;
	bool		found;
	RbacRead	r;

	e = (PrincipalEntry *) hash_search(PrincipalCache, id, HASH_FIND, &found);
	if (found)
		return e;
	rbac_read_begin(&r);
	e = principal_get_read(&r, id);
	rbac_read_end(&r);
	return e;
}

/* A role, from the cache or read (hlauth.roles' primary key) in the caller's read. */
static RoleEntry *
role_get_read(RbacRead *r, Relation *roles, const pg_uuid_t *id)
{
	Relation	rel;
	RoleEntry  *e;
	bool		found;
	SysScanDesc scan;
	HeapTuple	tup;

	e = (RoleEntry *) hash_search(RoleCache, id, HASH_FIND, &found);
	if (found)
		return e;

	rel = rbac_open_lazily(roles, RBAC_ROLES);
	scan = uuid_key_scan(r, rel, idx_roles_pkey, col_role_id, id);
	tup = systable_getnext(scan);
	e = (RoleEntry *) hash_search(RoleCache, id, HASH_ENTER, &found);
	e->exists = false;
	e->custom = false;
	e->scopes = NULL;
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d;

		e->exists = true;
		d = heap_getattr(tup, col_role_agency, desc, &isnull);
		e->custom = !isnull;
		if (!isnull)
			memcpy(&e->agency, DatumGetUUIDP(d), sizeof(pg_uuid_t));
		d = heap_getattr(tup, col_role_scopes, desc, &isnull);
		if (!isnull)
			e->scopes = cache_scopes(d);
	}
	systable_endscan(scan);
	return e;
}

/* An agency's allowance, from the cache or read (its primary key) in the caller's read. */
static AllowanceEntry *
allowance_get_read(RbacRead *r, Relation *allowances, const pg_uuid_t *agency)
{
	Relation	rel;
	AllowanceEntry *e;
	bool		found;
	SysScanDesc scan;
	HeapTuple	tup;

	e = (AllowanceEntry *) hash_search(AllowanceCache, agency, HASH_FIND, &found);
	if (found)
		return e;

	rel = rbac_open_lazily(allowances, RBAC_ALLOWANCES);
	scan = uuid_key_scan(r, rel, idx_allowances_pkey, col_allow_agency, agency);
	tup = systable_getnext(scan);
	e = (AllowanceEntry *) hash_search(AllowanceCache, agency, HASH_ENTER, &found);
	e->scopes = NULL;
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, col_allow_scopes, RelationGetDescr(rel), &isnull);

		if (!isnull)
			e->scopes = cache_scopes(d);
	}
	systable_endscan(scan);
	return e;
}

bool
HlPrincipalActive(const pg_uuid_t *principal)
{
	rbac_cache_prepare();
	return principal_get(principal)->active;
}

/* ---- effective scopes ---- */

/*
 * A grants row as a GrantRow; false when it grants nothing in any case (revoked, which the
 * index's predicate already excludes and the row says too, or no role).
 */
static bool
grant_row_from_tuple(HeapTuple tup, TupleDesc desc, GrantRow *g)
{
	bool		isnull;
	Datum		d;

	(void) heap_getattr(tup, col_grant_revoked, desc, &isnull);
	if (!isnull)
		return false;
	d = heap_getattr(tup, col_grant_role, desc, &isnull);
	if (isnull)
		return false;
	memcpy(&g->role, DatumGetUUIDP(d), sizeof(pg_uuid_t));
	d = heap_getattr(tup, col_grant_tenant, desc, &isnull);
	if (isnull)
		return false;
	memcpy(&g->tenant, DatumGetUUIDP(d), sizeof(pg_uuid_t));
	d = heap_getattr(tup, col_grant_from, desc, &isnull);
	g->from = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
	d = heap_getattr(tup, col_grant_until, desc, &isnull);
	g->until = isnull ? DT_NOEND : DatumGetTimestampTz(d);
	return true;
}

static int
grant_row_cmp(const void *a, const void *b)
{
	return memcmp(&((const GrantRow *) a)->tenant, &((const GrantRow *) b)->tenant,
				  sizeof(pg_uuid_t));
}

/*
 * Read the principal's live grants in the caller's read, and keep them with its entry
 * unless there are too many (then ngrants is -1 and they are read per tenant).
 */
static void
principal_grants_read(RbacRead *r, Relation grants, PrincipalEntry *pe)
{
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	GrantRow   *rows;
	int			n = 0;
	int			cap = 8;
	bool		keep = grants_kept_total < HL_GRANTS_KEPT_TOTAL;

	rows = (GrantRow *) MemoryContextAlloc(RbacCacheContext, sizeof(GrantRow) * cap);
	ScanKeyInit(&key, col_grant_principal, BTEqualStrategyNumber, F_UUID_EQ,
				UUIDPGetDatum(&pe->id));
	scan = systable_beginscan(grants, idx_grants_principal_tenant, true, r->snapshot, 1, &key);
	while (keep && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		if (n >= cap)
		{
			if (n >= HL_GRANTS_KEPT_MAX || grants_kept_total + n >= HL_GRANTS_KEPT_TOTAL)
			{
				keep = false;
				break;
			}
			cap = Min(cap * 2, HL_GRANTS_KEPT_MAX);
			rows = (GrantRow *) repalloc(rows, sizeof(GrantRow) * cap);
		}
		if (grant_row_from_tuple(tup, RelationGetDescr(grants), &rows[n]))
			n++;
	}
	systable_endscan(scan);

	pe->grants_read = true;
	if (!keep)
	{
		pfree(rows);
		pe->ngrants = -1;
		pe->grants = NULL;
		return;
	}
	qsort(rows, n, sizeof(GrantRow), grant_row_cmp);
	pe->grants = rows;
	pe->ngrants = n;
	grants_kept_total += n;
}

/* The index of the first kept grant at `tenant` (or where it would be). */
static int
grant_rows_first(const PrincipalEntry *pe, const pg_uuid_t *tenant)
{
	int			lo = 0,
				hi = pe->ngrants;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (memcmp(&pe->grants[mid].tenant, tenant, sizeof(pg_uuid_t)) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Add what one grant gives at `path` now to `granted`, and bring `expires` forward to when
 * that changes. A custom role counts only inside its own agency, capped by the agency's
 * current allowance (no allowance: it grants nothing).
 */
static void
grant_apply(RbacRead *r, Relation *roles, Relation *allowances, Registry *reg,
			const HlTenantPath *path, const GrantRow *g, TimestampTz now,
			TimestampTz *expires, bool *granted, bool *role_marks, bool *allow_marks)
{
	RoleEntry  *role;
	int			k;

	if (g->from > now)
	{
		/* Not valid yet: it starts counting then. */
		*expires = Min(*expires, g->from);
		return;
	}
	if (g->until <= now)
		return;					/* over */
	*expires = Min(*expires, g->until);

	role = role_get_read(r, roles, &g->role);
	if (!role->exists || role->scopes == NULL)
		return;
	if (role->custom && memcmp(&role->agency, &path->agency, sizeof(pg_uuid_t)) != 0)
		return;					/* another agency's custom role counts nowhere here */
	registry_expand(reg, role->scopes, role_marks);
	if (role->custom)
	{
		AllowanceEntry *allow = allowance_get_read(r, allowances, &role->agency);

		if (allow->scopes == NULL)
			return;
		registry_expand(reg, allow->scopes, allow_marks);
		for (k = 0; k < reg->n; k++)
			role_marks[k] = role_marks[k] && allow_marks[k];
	}
	for (k = 0; k < reg->n; k++)
		granted[k] = granted[k] || role_marks[k];
}

/*
 * Compute the principal's effective scopes at the tenant (see hlauth.h), palloc'd in the
 * caller's memory context. *expires is set to the earliest future valid_from or valid_until
 * among the grants read (DT_NOEND when none): the answer may change then.
 */
static HlScopes *
effective_compute(const pg_uuid_t *principal, const pg_uuid_t *tenant, TimestampTz now,
				  TimestampTz *expires)
{
	HlTenantPath path;
	RbacRead	r;
	PrincipalEntry *pe;
	Registry   *reg;
	bool	   *granted;
	bool	   *role_marks;
	bool	   *allow_marks;
	pg_uuid_t	ids[3];
	int			nids = 0;
	Relation	grants,
				roles,
				allowances;
	MemoryContext caller = CurrentMemoryContext;
	HlScopes   *result;
	int			t;

	*expires = DT_NOEND;

	/* An unknown or suspended tenant: nothing (and nothing to wait for). */
	if (!HlTenantResolve(tenant, &path) || !path.active)
		return empty_scopes();

	rbac_read_begin(&r);
	pe = principal_get_read(&r, principal);
	if (!pe->active)
	{
		rbac_read_end(&r);
		return empty_scopes();
	}
	reg = registry_get(&r);
	MemoryContextSwitchTo(caller);

	granted = (bool *) palloc0(sizeof(bool) * Max(reg->n, 1));
	role_marks = (bool *) palloc(sizeof(bool) * Max(reg->n, 1));
	allow_marks = (bool *) palloc(sizeof(bool) * Max(reg->n, 1));

	/* The tenant and every tenant above it. */
	ids[nids++] = path.agency;
	if (path.kind >= HL_TENANT_ACCOUNT)
		ids[nids++] = path.account;
	if (path.kind == HL_TENANT_APP)
		ids[nids++] = path.app;

	/*
	 * The grants at each tenant of the path: one lookup of grants_principal_tenant_idx per
	 * tenant of the path; from the principal's second tenant on, from its entry, which then
	 * keeps its live grants (read once, by one scan of the index's prefix: a principal seen
	 * at one tenant only does not pay for reading all its grants, each on its own heap
	 * page), unless it has too many to keep.
	 */
	grants = NULL;
	roles = NULL;
	allowances = NULL;
	if (!pe->grants_read && pe->misses++ >= 1)
		principal_grants_read(&r, rbac_open_lazily(&grants, RBAC_GRANTS), pe);
	for (t = 0; t < nids; t++)
	{
		if (pe->ngrants >= 0)
		{
			int			i;

			for (i = grant_rows_first(pe, &ids[t]);
				 i < pe->ngrants && memcmp(&pe->grants[i].tenant, &ids[t], sizeof(pg_uuid_t)) == 0;
				 i++)
				grant_apply(&r, &roles, &allowances, reg, &path, &pe->grants[i], now, expires,
							granted, role_marks, allow_marks);
		}
		else
		{
			Relation	rel = rbac_open_lazily(&grants, RBAC_GRANTS);
			ScanKeyData keys[2];
			SysScanDesc scan;
			HeapTuple	tup;
			GrantRow	g;

			ScanKeyInit(&keys[0], col_grant_principal, BTEqualStrategyNumber, F_UUID_EQ,
						UUIDPGetDatum(principal));
			ScanKeyInit(&keys[1], col_grant_tenant, BTEqualStrategyNumber, F_UUID_EQ,
						UUIDPGetDatum(&ids[t]));
			scan = systable_beginscan(rel, idx_grants_principal_tenant, true, r.snapshot, 2, keys);
			while (HeapTupleIsValid(tup = systable_getnext(scan)))
				if (grant_row_from_tuple(tup, RelationGetDescr(rel), &g))
					grant_apply(&r, &roles, &allowances, reg, &path, &g, now, expires,
								granted, role_marks, allow_marks);
			systable_endscan(scan);
		}
	}
	if (allowances != NULL)
		rbac_close(allowances);
	if (roles != NULL)
		rbac_close(roles);
	if (grants != NULL)
		rbac_close(grants);

	/* Each role's set was closed under implication, and so is their union. */
	result = scopes_from_marks(reg, granted);
	pfree(granted);
	pfree(role_marks);
	pfree(allow_marks);
	rbac_read_end(&r);
	return result;
}

static void
eff_forget_memo(EffEntry *e)
{
	if (e->at_valid)
		pfree(e->asked);		/* one block: asked, granted, access */
	e->at_valid = false;
	e->asked = NULL;
	e->granted = NULL;
	e->access = NULL;
	e->tenant_entry = NULL;
}

HlScopes *
HlEffectiveScopes(const pg_uuid_t *principal, const pg_uuid_t *tenant)
{
	TimestampTz now = HlNow();
	TimestampTz expires;
	EffKey		key;
	EffEntry   *e;
	bool		found;
	HlScopes   *result;
	HlScopes   *copy;

	/*
	 * A change committed before this call counts for it, as for set_principal: the answer
	 * decides what grant_role, issue_api_key and the key bounds allow. A miss may read no
	 * table at all (the principal's grants, roles and allowances kept), so it would not
	 * otherwise notice a revocation committed meanwhile (a red-team pass: a revoked manager
	 * went on granting in its open transaction). Cheap when nothing is pending.
	 */
	AcceptInvalidationMessages();
	rbac_cache_prepare();
	memset(&key, 0, sizeof(key));
	key.principal = *principal;
	key.tenant = *tenant;
	e = (EffEntry *) hash_search(EffCache, &key, HASH_FIND, &found);
	if (found && now < e->expires)
		return copy_scopes(e->scopes);

	result = effective_compute(principal, tenant, now, &expires);

	/*
	 * Remember it. If an invalidation arrived meanwhile, the cache is dropped at the next
	 * lookup anyway; the answer itself is as fresh as the snapshot it was read under.
	 */
	if (hash_get_num_entries(EffCache) >= HL_RBAC_CACHE_MAX)
	{
		cache_force_reset = true;
		return result;
	}
	copy = (HlScopes *) MemoryContextAlloc(RbacCacheContext, VARSIZE(result));
	memcpy(copy, result, VARSIZE(result));
	e = (EffEntry *) hash_search(EffCache, &key, HASH_ENTER, &found);
	if (found)
		eff_forget_memo(e);
	if (found && e->scopes != NULL)
		pfree(e->scopes);
	e->scopes = copy;
	e->expires = expires;
	e->at_valid = false;
	e->asked = NULL;
	e->granted = NULL;
	e->access = NULL;
	e->tenant_entry = NULL;
	return result;
}

static const HlScopes *
principal_at_memo(const pg_uuid_t *principal, const pg_uuid_t *tenant, const HlScopes *asked,
				  HlTenantPath *path, const ArrayType **access)
{
	EffKey		key;
	EffEntry   *e;
	bool		found;

	rbac_cache_prepare();
	memset(&key, 0, sizeof(key));
	key.principal = *principal;
	key.tenant = *tenant;
	e = (EffEntry *) hash_search(EffCache, &key, HASH_FIND, &found);
	if (!found || !e->at_valid || HlNow() >= e->expires ||
		VARSIZE(e->asked) != VARSIZE(asked) || memcmp(e->asked, asked, VARSIZE(asked)) != 0)
		return NULL;
	*path = e->path;
	*access = e->access;
	HlTenantsUseEntry(e->tenant_entry, e->tenant_build);
	return e->granted;
}

/* Keep the answer with the effective scopes; returns the reach kept with it (or NULL). */
static const ArrayType *
principal_at_remember(const pg_uuid_t *principal, const pg_uuid_t *tenant, const HlScopes *asked,
					  const HlScopes *granted, const HlTenantPath *path)
{
	EffKey		key;
	EffEntry   *e;
	bool		found;

	/* Only into the entry HlEffectiveScopes just made: it was not dropped since. */
	rbac_cache_prepare();
	memset(&key, 0, sizeof(key));
	key.principal = *principal;
	key.tenant = *tenant;
	e = (EffEntry *) hash_search(EffCache, &key, HASH_FIND, &found);
	if (!found)
		return NULL;
	eff_forget_memo(e);
	{
		/*
		 * The reach the context carries is at the principal's own kind, and there it is
		 * the tenant alone (what lies beneath is of other kinds: see accessible_entry in
		 * src/tenants.c); HlPrincipalAt found it active. Made here rather than taken from
		 * the tenant cache, whose entry costs a scan for the tenant's children on a first
		 * use.
		 *
		 * One block, read front to back on a hit: the entries of thousands of tenants do
		 * not stay in the CPU's caches, and each separate allocation would be one more miss.
		 */
		Datum		self = UUIDPGetDatum(tenant);
		ArrayType  *a = construct_array(&self, 1, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR);
		Size		granted_off = MAXALIGN(VARSIZE(asked));
		Size		access_off = granted_off + MAXALIGN(VARSIZE(granted));
		char	   *block = MemoryContextAlloc(RbacCacheContext, access_off + VARSIZE(a));

		memcpy(block, asked, VARSIZE(asked));
		memcpy(block + granted_off, granted, VARSIZE(granted));
		memcpy(block + access_off, a, VARSIZE(a));
		e->asked = (HlScopes *) block;
		e->granted = (HlScopes *) (block + granted_off);
		e->access = (ArrayType *) (block + access_off);
		pfree(a);
	}
	e->path = *path;
	e->tenant_entry = HlTenantsEntryFor(tenant, &e->tenant_build);
	e->at_valid = true;
	return e->access;
}

HlPrincipalAtResult
HlPrincipalAt(const pg_uuid_t *principal, const pg_uuid_t *tenant, const HlScopes *asked,
			  HlTenantPath *path, const HlScopes **granted, const ArrayType **access)
{
	const HlScopes *memo;
	HlScopes   *result;
	int			attempt;

	/* (Entries filled in parallel mode never serve here: see rbac_cache_prepare.) */
	memo = principal_at_memo(principal, tenant, asked, path, access);

	if (memo != NULL)
	{
		*granted = memo;
		return HL_AT_OK;
	}

	/*
	 * The tenant's path is resolved first and the principal and its grants read after: an
	 * invalidation processed in between (opening the next table) may mean the path is
	 * already stale, a tenant suspended meanwhile. Then the whole answer is worked out again
	 * (and only an answer worked out without any change in between is remembered).
	 */
	for (attempt = 0;; attempt++)
	{
		uint64		before = HlTenantsGeneration() + rbac_inval_count;

		*access = NULL;
		if (!HlTenantResolve(tenant, path))
			return HL_AT_NO_TENANT;
		if (!path->active)
			return HL_AT_TENANT_INACTIVE;
		if (!HlPrincipalActive(principal))
			return HL_AT_PRINCIPAL_SUSPENDED;
		result = HlScopesIntersect(HlExpandScopes(asked), HlEffectiveScopes(principal, tenant));
		if (HlTenantsGeneration() + rbac_inval_count == before)
			break;
		if (attempt >= 3)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("hlauth's tenants and grants kept changing while a principal was being checked"),
					 errhint("Try again.")));
	}
	*access = principal_at_remember(principal, tenant, asked, result, path);
	*granted = result;
	return HL_AT_OK;
}

/* ---- SQL-callable ---- */

static bool
role_is_member(Oid role, const char *rolname)
{
	Oid			target = get_role_oid(rolname, true);

	return OidIsValid(target) && has_privs_of_role(role, target);
}

/*
 * May the current principal context reach this tenant: is it the context's tenant or a
 * tenant beneath it that is accessible from there?
 */
static bool
context_reaches(const pg_uuid_t *tenant)
{
	const pg_uuid_t *ctx_tenant = HlContextTenant();
	HlTenantPath path;
	const pg_uuid_t *list;
	int			n;

	if (HlContextPrincipal() == NULL || ctx_tenant == NULL)
		return false;
	if (!HlTenantResolve(ctx_tenant, &path) || !path.active)
		return false;
	list = HlTenantsAccessible(ctx_tenant, path.kind, -1, &n);
	return list != NULL && n > 0 &&
		bsearch(tenant, list, n, sizeof(pg_uuid_t), HlUuidCmp) != NULL;
}

static char *
uuid_text(const pg_uuid_t *u)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(u)));
}

/*
 * hlauth.effective_scopes(principal uuid, tenant uuid) RETURNS hlauth.scopes
 * For hlauth_admin, hlauth_trusted, and a principal context that can access the tenant.
 */
Datum
hlauth_effective_scopes(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *principal = PG_GETARG_UUID_P(0);
	pg_uuid_t  *tenant = PG_GETARG_UUID_P(1);

	const pg_uuid_t *me = HlContextPrincipal();

	/*
	 * A principal context reads its own; another principal's only with hlauth/grants.write
	 * (what it could learn by managing grants anyway): they tell grants that the grants
	 * table's policy hides (one at an agency, seen from an account) and suspensions.
	 */
	if (!HlCurrentRoleIsAdmin() && !role_is_member(GetUserId(), "hlauth_trusted") &&
		!(context_reaches(tenant) &&
		  ((me != NULL && memcmp(me, principal, sizeof(pg_uuid_t)) == 0) ||
		   HlContextGrantsScope("hlauth/grants.write", strlen("hlauth/grants.write")))))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read the effective scopes at tenant %s", uuid_text(tenant)),
				 errdetail("Only hlauth_admin, hlauth_trusted, and a principal context that can access the tenant may read them: its own, or anyone's with hlauth/grants.write.")));
	PG_RETURN_HLSCOPES_P(HlEffectiveScopes(principal, tenant));
}

/*
 * The registered permissions a scope set grants: wildcards expanded, implications applied
 * (so asking for contacts.write also asks for what it implies). palloc'd in the caller's
 * context. A one-entry memo (the same scopes arrive in every transaction of an app server)
 * keeps the hot path of set_principal and authenticate free of table reads.
 */
HlScopes *
HlExpandScopes(const HlScopes *set)
{
	static MemoryContext memo_cxt = NULL;
	static HlScopes *memo_in = NULL;
	static HlScopes *memo_out = NULL;
	static uint64 memo_registry_gen = 0;
	RbacRead	r;
	Registry   *reg;
	bool	   *marks;
	HlScopes   *result;
	MemoryContext caller = CurrentMemoryContext;

	rbac_cache_prepare();
	if (memo_in != NULL && CachedRegistry != NULL && memo_registry_gen == registry_generation &&
		VARSIZE(memo_in) == VARSIZE(set) && memcmp(memo_in, set, VARSIZE(set)) == 0)
		return copy_scopes(memo_out);

	reg = CachedRegistry;
	if (reg == NULL)
	{
		rbac_read_begin(&r);
		reg = registry_get(&r);
		MemoryContextSwitchTo(caller);
		rbac_read_end(&r);
	}
	marks = (bool *) palloc(sizeof(bool) * Max(reg->n, 1));
	registry_expand(reg, set, marks);
	result = scopes_from_marks(reg, marks);
	pfree(marks);

	/* Remember it, keyed on the input bytes and the registry it was computed from. */
	if (memo_cxt == NULL)
		memo_cxt = AllocSetContextCreate(TopMemoryContext, "hlauth expand memo",
										 ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(memo_cxt);
	memo_in = (HlScopes *) MemoryContextAlloc(memo_cxt, VARSIZE(set));
	memcpy(memo_in, set, VARSIZE(set));
	memo_out = (HlScopes *) MemoryContextAlloc(memo_cxt, VARSIZE(result));
	memcpy(memo_out, result, VARSIZE(result));
	memo_registry_gen = registry_generation;
	return result;
}

/*
 * hlauth_internal.expand_scopes(scopes hlauth.scopes) RETURNS hlauth.scopes
 * The registered permissions the set grants, wildcards expanded, implications applied.
 */
Datum
hlauth_expand_scopes(PG_FUNCTION_ARGS)
{
	PG_RETURN_HLSCOPES_P(HlExpandScopes(PG_GETARG_HLSCOPES_P(0)));
}

/*
 * hlauth.attribute(name text) RETURNS jsonb
 * The current principal's attribute from hlauth.principals, or NULL (no context, no row, no
 * such attribute).
 */
Datum
hlauth_attribute(PG_FUNCTION_ARGS)
{
	const pg_uuid_t *principal = HlContextPrincipal();
	text	   *name;
	PrincipalEntry *e;
	JsonbValue	vbuf;
	JsonbValue *v;

	if (principal == NULL || PG_ARGISNULL(0))
		PG_RETURN_NULL();
	name = PG_GETARG_TEXT_PP(0);

	/* A token's own attributes come first (an API key's, when a key set the context). */
	{
		const char *token = HlContextTokenId();
		const Jsonb *ta = token ? HlApiKeyAttributes(token) : NULL;

		if (ta != NULL && JB_ROOT_IS_OBJECT(ta))
		{
			v = getKeyJsonValueFromContainer(&((Jsonb *) ta)->root, VARDATA_ANY(name),
											 VARSIZE_ANY_EXHDR(name), &vbuf);
			if (v != NULL)
				PG_RETURN_JSONB_P(JsonbValueToJsonb(v));
		}
	}

	rbac_cache_prepare();
	e = principal_get(principal);
	if (e->attributes == NULL || !JB_ROOT_IS_OBJECT(e->attributes))
		PG_RETURN_NULL();
	v = getKeyJsonValueFromContainer(&e->attributes->root, VARDATA_ANY(name),
									 VARSIZE_ANY_EXHDR(name), &vbuf);
	if (v == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(JsonbValueToJsonb(v));
}

/*
 * hlauth_internal.caller_is_admin() RETURNS boolean
 * Is the role the session acts as (SET ROLE or the session user) a superuser or a member of
 * hlauth_admin? Unlike is_admin(), a SECURITY DEFINER function cannot change the answer:
 * hlauth's own SECURITY DEFINER functions ask who called them.
 */
Datum
hlauth_caller_is_admin(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(HlSessionRoleIsAdmin());
}

/*
 * Who called a SECURITY DEFINER function? Inside it, the current user is the function's
 * owner and the session role is whoever the session is: neither is the caller when the
 * caller was another role's SECURITY DEFINER function (or trigger function) that an admin
 * session happened to run. So the functions that principals and admins both call are
 * PL/pgSQL functions with their caller's rights that take a stamp, at the boundary, of who
 * is calling, and hand it to their SECURITY DEFINER body, which redeems it once.
 *
 * hlauth_internal.caller_stamp() RETURNS bytea: 16 random bytes, remembered with whether
 * the caller is an admin: the session role and the current user both superusers or members
 * of hlauth_admin, outside any security-restricted operation. A stamp of a non-admin caller
 * is worth nothing, so anybody may take one; an admin's stamp cannot be guessed, is
 * redeemed at once by the function it was taken for, and dies with the transaction.
 *
 * hlauth_internal.caller_was_admin(stamp bytea) RETURNS boolean: true only for an
 * unredeemed admin stamp of this transaction (and never inside a security-restricted
 * operation); the stamp is used up either way.
 */
#define HL_STAMP_LEN 16
#define HL_STAMPS 8

typedef struct CallerStamp
{
	unsigned char token[HL_STAMP_LEN];
	bool		admin;
	bool		live;
	LocalTransactionId lxid;
} CallerStamp;

static CallerStamp caller_stamps[HL_STAMPS];
static int	caller_stamp_next = 0;

Datum
hlauth_caller_stamp(PG_FUNCTION_ARGS)
{
	CallerStamp *s = &caller_stamps[caller_stamp_next];
	bytea	   *out;

	caller_stamp_next = (caller_stamp_next + 1) % HL_STAMPS;
	s->live = false;
	if (hla_random_bytes(s->token, HL_STAMP_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	s->admin = HlSessionRoleIsAdmin() && HlCurrentRoleIsAdmin();
	s->lxid = MyProc->lxid;
	s->live = true;
	out = (bytea *) palloc(VARHDRSZ + HL_STAMP_LEN);
	SET_VARSIZE(out, VARHDRSZ + HL_STAMP_LEN);
	memcpy(VARDATA(out), s->token, HL_STAMP_LEN);
	PG_RETURN_BYTEA_P(out);
}

Datum
hlauth_caller_was_admin(PG_FUNCTION_ARGS)
{
	bytea	   *stamp;
	bool		admin = false;
	int			i;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	stamp = PG_GETARG_BYTEA_PP(0);
	if (VARSIZE_ANY_EXHDR(stamp) != HL_STAMP_LEN)
		PG_RETURN_BOOL(false);
	for (i = 0; i < HL_STAMPS; i++)
	{
		CallerStamp *s = &caller_stamps[i];

		if (s->live && hla_ct_equal(s->token, VARDATA_ANY(stamp), HL_STAMP_LEN))
		{
			admin = s->admin && s->lxid == MyProc->lxid;
			s->live = false;
			memset(s->token, 0, HL_STAMP_LEN);
		}
	}
	PG_RETURN_BOOL(admin && !InSecurityRestrictedOperation());
}

/*
 * Statement trigger on the rbac tables: tell every backend (this one included, at the next
 * command) that its cache is stale. Sent at commit, so aborted changes send nothing.
 */
Datum
hlauth_rbac_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hlauth_internal.rbac_changed() must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	PG_RETURN_POINTER(NULL);
}
