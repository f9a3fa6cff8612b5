/*
 * src/tenants.c
 *		The tenant tree (hlauth.tenants), read through a per-backend cache.
 *
 * Agencies own accounts, accounts own apps. The hot path (set_principal, the policies'
 * accessible-tenant set) must not query a table per transaction, so tenant rows and each
 * tenant's accessible set are cached in backend memory. Any change to hlauth.tenants fires
 * a statement trigger that sends a relcache invalidation for the table; every backend's
 * callback then bumps a generation counter and the cache is rebuilt on next use.
 *
 * Rows are read with index scans (no SPI, no permission checks: app roles need no grant on
 * hlauth.tenants). This file must never trust a cached entry across a generation change,
 * and must fail closed: an unknown or suspended tenant resolves to "not active".
 */
#include "hlauth.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "storage/lockdefs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(hlauth_tenants_changed);

/* Column numbers of hlauth.tenants; checked against the catalog when first opened. */
#define Anum_tenants_id		1
#define Anum_tenants_kind	2
#define Anum_tenants_parent 3
#define Anum_tenants_status 4

/* A cache larger than this is dropped and rebuilt rather than grown. */
#define HL_TENANT_CACHE_MAX 100000

/* Index HL_ACCESS_ALL of the lists below holds every accessible tenant, whatever its kind. */
#define HL_ACCESS_ALL 3

/* What a principal acting at a tenant may reach (see accessible_entry); in TenantCacheContext. */
typedef struct AccessEntry
{
	int			count[HL_ACCESS_ALL + 1];
	pg_uuid_t  *tenants[HL_ACCESS_ALL + 1];	/* by HlTenantKind, and all; sorted */
	ArrayType  *arrays[HL_ACCESS_ALL + 1];	/* the same as uuid[], built on first use */
} AccessEntry;

/* Path memo states of a TenantEntry. */
#define PATH_UNKNOWN	0
#define PATH_FOUND		1		/* path holds the resolved path */
#define PATH_NONE		2		/* the tenant does not exist */

typedef struct TenantEntry
{
	pg_uuid_t	id;				/* hash key */
	bool		exists;
	bool		active;			/* this row's own status */
	HlTenantKind kind;
	bool		has_parent;
	pg_uuid_t	parent;

	/*
	 * Memos, valid as long as the entry (the whole cache is dropped on any change to the
	 * tree): the resolved path, and the accessible set. With them, the hot path of a
	 * transaction looks the tenant up once, not once per level and again per policy scan.
	 */
	int			path_state;
	HlTenantPath path;
	AccessEntry *access;		/* NULL until first asked for */
} TenantEntry;

static MemoryContext TenantCacheContext = NULL;
static HTAB *TenantCache = NULL;
static uint64 tenant_inval_count = 0;	/* bumped by the relcache callback */
static uint64 tenant_cache_built = ~(uint64) 0;
static uint64 tenant_cache_builds = 0;	/* bumped whenever the cache is (re)built */

/*
 * The entry found last (pointers into a dynahash table stay valid until the table is
 * dropped): a transaction asks for its tenant in set_principal and again in every policy
 * scan, and a lookup in a table of thousands of tenants misses the CPU caches.
 */
static TenantEntry *last_entry = NULL;
static uint64 last_entry_build = 0;

static Oid	tenants_relid = InvalidOid;
static Oid	tenants_pkey = InvalidOid;
static Oid	tenants_parent_idx = InvalidOid;

static void
tenants_relcache_callback(Datum arg, Oid relid)
{
	/*
	 * Never free memory here: a scan may be in progress. Mark the cache stale, and forget
	 * the table's OIDs too: the table may have been dropped and created again (DROP and
	 * CREATE EXTENSION), and they are looked up again cheaply on next use. While the OID
	 * is not known (between an invalidation and the next open_tenants), any invalidation
	 * counts: one that names the table must never be missed for want of its OID.
	 */
	if (relid == InvalidOid || !OidIsValid(tenants_relid) || relid == tenants_relid)
	{
		tenant_inval_count++;
		tenants_relid = InvalidOid;
	}
}

/* Changes whenever the cached tenant tree may be stale: memos elsewhere compare against it. */
uint64
HlTenantsGeneration(void)
{
	return tenant_inval_count;
}

void
HlTenantsInit(void)
{
	CacheRegisterRelcacheCallback(tenants_relcache_callback, (Datum) 0);
}

const char *
HlTenantKindName(HlTenantKind kind)
{
	switch (kind)
	{
		case HL_TENANT_AGENCY:
			return "agency";
		case HL_TENANT_ACCOUNT:
			return "account";
		case HL_TENANT_APP:
			return "app";
	}
	return "unknown";
}

static void
lookup_relation_oids(void)
{
	Oid			nsp = get_namespace_oid("hlauth", true);

	tenants_relid = OidIsValid(nsp) ? get_relname_relid("tenants", nsp) : InvalidOid;
	tenants_pkey = OidIsValid(nsp) ? get_relname_relid("tenants_pkey", nsp) : InvalidOid;
	tenants_parent_idx = OidIsValid(nsp) ? get_relname_relid("tenants_parent_idx", nsp) : InvalidOid;
	if (!OidIsValid(tenants_relid) || !OidIsValid(tenants_pkey) || !OidIsValid(tenants_parent_idx))
	{
		tenants_relid = InvalidOid;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hlauth is not installed in this database"),
				 errhint("Run CREATE EXTENSION hlauth.")));
	}
}

/* Open hlauth.tenants (this processes pending invalidations), then drop a stale cache. */
static Relation
open_tenants(void)
{
	Relation	rel;
	TupleDesc	desc;

	if (!OidIsValid(tenants_relid))
		lookup_relation_oids();
	rel = table_open(tenants_relid, AccessShareLock);

	/*
	 * table_open processed pending invalidations, which may have forgotten the OID (and
	 * counted the change): learn it again from the open relation, so that the next
	 * invalidation of the table is recognised (the cache below is rebuilt if one came).
	 */
	tenants_relid = RelationGetRelid(rel);
	desc = RelationGetDescr(rel);
	if (desc->natts < Anum_tenants_status ||
		TupleDescAttr(desc, Anum_tenants_id - 1)->atttypid != UUIDOID ||
		TupleDescAttr(desc, Anum_tenants_parent - 1)->atttypid != UUIDOID)
		elog(ERROR, "hlauth.tenants does not have the expected columns");

	if (TenantCache == NULL || tenant_cache_built != tenant_inval_count ||
		hash_get_num_entries(TenantCache) > HL_TENANT_CACHE_MAX)
	{
		HASHCTL		ctl;

		if (TenantCacheContext == NULL)
			TenantCacheContext = AllocSetContextCreate(CacheMemoryContext,
													   "hlauth tenant cache",
													   ALLOCSET_DEFAULT_SIZES);
		else
			MemoryContextReset(TenantCacheContext);

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(pg_uuid_t);
		ctl.entrysize = sizeof(TenantEntry);
		ctl.hcxt = TenantCacheContext;
		TenantCache = hash_create("hlauth tenants", 256, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		tenant_cache_built = tenant_inval_count;
		tenant_cache_builds++;
		last_entry = NULL;
	}
	return rel;
}

static HlTenantKind
kind_from_text(Datum d)
{
	char	   *s = TextDatumGetCString(d);

	if (strcmp(s, "agency") == 0)
		return HL_TENANT_AGENCY;
	if (strcmp(s, "account") == 0)
		return HL_TENANT_ACCOUNT;
	if (strcmp(s, "app") == 0)
		return HL_TENANT_APP;
	elog(ERROR, "hlauth.tenants holds an unknown kind \"%s\"", s);
	return HL_TENANT_AGENCY;	/* keep compiler quiet */
}

static void
entry_from_tuple(TenantEntry *e, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	Datum		d;

	e->exists = true;
	e->kind = kind_from_text(heap_getattr(tup, Anum_tenants_kind, desc, &isnull));
	d = heap_getattr(tup, Anum_tenants_status, desc, &isnull);
	e->active = !isnull && strcmp(TextDatumGetCString(d), "active") == 0;
	d = heap_getattr(tup, Anum_tenants_parent, desc, &isnull);
	e->has_parent = !isnull;
	if (!isnull)
		memcpy(&e->parent, DatumGetUUIDP(d), sizeof(pg_uuid_t));
}

/*
 * One tenant row, from the cache or an index scan. rel must come from open_tenants(), or
 * be NULL to consult the cache only: then a miss returns NULL.
 */
static TenantEntry *
tenant_get(Relation rel, const pg_uuid_t *id)
{
	TenantEntry *e;
	bool		found;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;

	if (last_entry != NULL && last_entry_build == tenant_cache_builds &&
		memcmp(&last_entry->id, id, sizeof(pg_uuid_t)) == 0)
		return last_entry;
	e = (TenantEntry *) hash_search(TenantCache, id, HASH_FIND, &found);
	if (!found)
	{
		if (rel == NULL)
			return NULL;

		ScanKeyInit(&key, Anum_tenants_id, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(id));
		scan = systable_beginscan(rel, tenants_pkey, true, NULL, 1, &key);
		tup = systable_getnext(scan);

		e = (TenantEntry *) hash_search(TenantCache, id, HASH_ENTER, &found);
		memset(((char *) e) + sizeof(pg_uuid_t), 0, sizeof(TenantEntry) - sizeof(pg_uuid_t));
		if (HeapTupleIsValid(tup))
			entry_from_tuple(e, tup, RelationGetDescr(rel));
		systable_endscan(scan);
	}
	last_entry = e;
	last_entry_build = tenant_cache_builds;
	return e;
}

#define RESOLVE_MISS	(-1)		/* cache-only lookup missed: read the table */

/*
 * Resolve a tenant to its path in the tree: 1 if it exists, 0 if not, or RESOLVE_MISS when
 * rel is NULL (cache only) and some row is not cached.
 */
static int resolve_walk(Relation rel, TenantEntry *e, const pg_uuid_t *tenant, HlTenantPath *path);

static int
resolve(Relation rel, const pg_uuid_t *tenant, HlTenantPath *path)
{
	TenantEntry *e = tenant_get(rel, tenant);
	int			found;

	if (e != NULL && e->path_state != PATH_UNKNOWN)
	{
		*path = e->path;
		return e->path_state == PATH_FOUND ? 1 : 0;
	}
	found = resolve_walk(rel, e, tenant, path);
	if (found != RESOLVE_MISS)
	{
		/* The walk may have moved last_entry, never e: entries stay where they are. */
		e->path = *path;
		e->path_state = (found == 1) ? PATH_FOUND : PATH_NONE;
	}
	return found;
}

static int
resolve_walk(Relation rel, TenantEntry *e, const pg_uuid_t *tenant, HlTenantPath *path)
{
	pg_uuid_t	cur = *tenant;
	int			depth;

	memset(path, 0, sizeof(*path));
	if (e == NULL)
		return RESOLVE_MISS;
	if (!e->exists)
		return 0;
	path->kind = e->kind;
	path->active = true;

	/* Walk up at most app -> account -> agency, checking shape and status. */
	for (depth = 0; depth < 3; depth++)
	{
		if (e == NULL)
			return RESOLVE_MISS;
		if (!e->exists)
		{
			path->active = false;
			return 1;
		}
		if (!e->active)
			path->active = false;
		switch (e->kind)
		{
			case HL_TENANT_APP:
				path->app = cur;
				break;
			case HL_TENANT_ACCOUNT:
				path->account = cur;
				break;
			case HL_TENANT_AGENCY:
				path->agency = cur;
				return 1;
		}
		if (!e->has_parent)
		{
			path->active = false;	/* malformed tree: fail closed */
			return 1;
		}
		cur = e->parent;
		e = tenant_get(rel, &cur);
	}
	path->active = false;
	return 1;
}

bool
HlTenantResolve(const pg_uuid_t *tenant, HlTenantPath *path)
{
	Relation	rel;
	int			found;

	/* Hot path: a current cache answers without touching the table (see below). */
	if (TenantCache != NULL && tenant_cache_built == tenant_inval_count)
	{
		found = resolve(NULL, tenant, path);
		if (found != RESOLVE_MISS)
			return found == 1;
	}
	rel = open_tenants();
	found = resolve(rel, tenant, path);
	table_close(rel, AccessShareLock);
	return found == 1;
}

void *
HlTenantsEntryFor(const pg_uuid_t *tenant, uint64 *build)
{
	*build = tenant_cache_builds;
	if (TenantCache == NULL || tenant_cache_built != tenant_inval_count)
		return NULL;
	return tenant_get(NULL, tenant);
}

void
HlTenantsUseEntry(void *entry, uint64 build)
{
	if (entry != NULL && build == tenant_cache_builds)
	{
		last_entry = (TenantEntry *) entry;
		last_entry_build = build;
	}
}

int
HlUuidCmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(pg_uuid_t));
}

/* Append the active children of `parent` of the given kind. */
static void
collect_children(Relation rel, const pg_uuid_t *parent, HlTenantKind kind,
				 pg_uuid_t **out, int *n, int *cap)
{
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	TupleDesc	desc = RelationGetDescr(rel);

	ScanKeyInit(&key, Anum_tenants_parent, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(parent));
	scan = systable_beginscan(rel, tenants_parent_idx, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		TenantEntry child;
		bool		isnull;

		entry_from_tuple(&child, tup, desc);
		if (!child.active || child.kind != kind)
			continue;
		if (*n >= *cap)
		{
			*cap *= 2;
			*out = (pg_uuid_t *) repalloc(*out, sizeof(pg_uuid_t) * *cap);
		}
		memcpy(&(*out)[(*n)++],
			   DatumGetUUIDP(heap_getattr(tup, Anum_tenants_id, desc, &isnull)),
			   sizeof(pg_uuid_t));
	}
	systable_endscan(scan);
}

static pg_uuid_t *
sorted_copy(const pg_uuid_t *src, int n)
{
	pg_uuid_t  *dst = (pg_uuid_t *) palloc(sizeof(pg_uuid_t) * Max(n, 1));

	memcpy(dst, src, sizeof(pg_uuid_t) * n);
	qsort(dst, n, sizeof(pg_uuid_t), HlUuidCmp);
	return dst;
}

/*
 * The tenants a principal acting at `tenant` (of kind `kind`) may reach, sorted, by kind:
 * the tenant itself and every active tenant beneath it; an app also reaches its own account
 * (an app acts on its account's data). Empty when the tenant or anything above it is not
 * active. The entry lives in the cache until the next invalidation; callers copy from it.
 */
static AccessEntry *
accessible_entry(const pg_uuid_t *tenant, HlTenantKind kind)
{
	Relation	rel;
	AccessEntry *a;
	TenantEntry *e;
	HlTenantPath path;
	MemoryContext old;
	pg_uuid_t  *lists[3];
	int			n[3] = {0, 0, 0};
	int			cap[3] = {4, 16, 16};
	int			k,
				i;

	/*
	 * Hot path: a current cache answers without touching the table. Invalidations were
	 * processed when this transaction started and when its statement locked its tables,
	 * so the cache is as fresh as the statement's own view of the data.
	 */
	if (TenantCache != NULL && tenant_cache_built == tenant_inval_count)
	{
		e = tenant_get(NULL, tenant);
		if (e != NULL && e->access != NULL)
			return e->access;
	}

	rel = open_tenants();

	old = MemoryContextSwitchTo(TenantCacheContext);
	for (k = 0; k < 3; k++)
		lists[k] = (pg_uuid_t *) palloc(sizeof(pg_uuid_t) * cap[k]);
	if (resolve(rel, tenant, &path) == 1 && path.active && path.kind == kind)
	{
		lists[kind][n[kind]++] = *tenant;
		if (kind == HL_TENANT_AGENCY)
		{
			collect_children(rel, tenant, HL_TENANT_ACCOUNT,
							 &lists[HL_TENANT_ACCOUNT], &n[HL_TENANT_ACCOUNT], &cap[HL_TENANT_ACCOUNT]);
			for (i = 0; i < n[HL_TENANT_ACCOUNT]; i++)
			{
				pg_uuid_t	acct = lists[HL_TENANT_ACCOUNT][i];

				collect_children(rel, &acct, HL_TENANT_APP,
								 &lists[HL_TENANT_APP], &n[HL_TENANT_APP], &cap[HL_TENANT_APP]);
			}
		}
		else if (kind == HL_TENANT_ACCOUNT)
			collect_children(rel, tenant, HL_TENANT_APP,
							 &lists[HL_TENANT_APP], &n[HL_TENANT_APP], &cap[HL_TENANT_APP]);
		else
			lists[HL_TENANT_ACCOUNT][n[HL_TENANT_ACCOUNT]++] = path.account;
	}

	a = (AccessEntry *) palloc0(sizeof(AccessEntry));
	a->count[HL_ACCESS_ALL] = n[0] + n[1] + n[2];
	a->tenants[HL_ACCESS_ALL] = (pg_uuid_t *) palloc(sizeof(pg_uuid_t) * Max(a->count[HL_ACCESS_ALL], 1));
	for (k = 0, i = 0; k < 3; k++)
	{
		memcpy(a->tenants[HL_ACCESS_ALL] + i, lists[k], sizeof(pg_uuid_t) * n[k]);
		i += n[k];
		a->count[k] = n[k];
		a->tenants[k] = sorted_copy(lists[k], n[k]);
		a->arrays[k] = NULL;
		pfree(lists[k]);
	}
	a->arrays[HL_ACCESS_ALL] = NULL;
	qsort(a->tenants[HL_ACCESS_ALL], a->count[HL_ACCESS_ALL], sizeof(pg_uuid_t), HlUuidCmp);
	MemoryContextSwitchTo(old);

	/* resolve() above entered the tenant: remember the set with it. */
	e = tenant_get(rel, tenant);
	e->access = a;

	table_close(rel, AccessShareLock);
	return a;
}

/* The accessible tenants (see accessible_entry) of kind `only`, or all when -1. */
const pg_uuid_t *
HlTenantsAccessible(const pg_uuid_t *tenant, HlTenantKind kind, int only, int *count)
{
	AccessEntry *a = accessible_entry(tenant, kind);
	int			slot = (only < 0) ? HL_ACCESS_ALL : only;

	*count = a->count[slot];
	return a->tenants[slot];
}

/*
 * The same as a uuid[], built once per cache entry: policies ask for it once per scan, and
 * callers copy it.
 */
const ArrayType *
HlTenantsAccessibleArray(const pg_uuid_t *tenant, HlTenantKind kind, int only)
{
	AccessEntry *a = accessible_entry(tenant, kind);
	int			slot = (only < 0) ? HL_ACCESS_ALL : only;

	if (a->arrays[slot] == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TenantCacheContext);
		Datum	   *elems = (Datum *) palloc(sizeof(Datum) * Max(a->count[slot], 1));
		int			i;

		for (i = 0; i < a->count[slot]; i++)
			elems[i] = UUIDPGetDatum(&a->tenants[slot][i]);
		a->arrays[slot] = construct_array(elems, a->count[slot], UUIDOID, UUID_LEN, false,
										  TYPALIGN_CHAR);
		pfree(elems);
		MemoryContextSwitchTo(old);
	}
	return a->arrays[slot];
}

/*
 * Statement trigger on hlauth.tenants: tell every backend (this one included, at the next
 * command) that its tenant cache is stale. Sent at commit, so aborted changes send nothing.
 */
Datum
hlauth_tenants_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hlauth_internal.tenants_changed() must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	PG_RETURN_POINTER(NULL);
}
