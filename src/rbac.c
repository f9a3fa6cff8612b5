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
 *	- a miss reads the tables with SPI (saved plans) as the bootstrap superuser, with
 *	  search_path pinned, under the latest snapshot: a commit that snapshot misses sends its
 *	  invalidation after it, so the stale entry is dropped at the next invalidation point. In
 *	  parallel mode (no new snapshot allowed) entries are kept for the current transaction only.
 *
 * This file must never return a scope that is not a registered permission, never count a
 * revoked, expired or not-yet-valid grant, a suspended principal, or an unknown or suspended
 * tenant, and never trust an entry across an invalidation.
 */
#include "hlauth.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(hlauth_rbac_changed);
PG_FUNCTION_INFO_V1(hlauth_effective_scopes);
PG_FUNCTION_INFO_V1(hlauth_expand_scopes);
PG_FUNCTION_INFO_V1(hlauth_attribute);
PG_FUNCTION_INFO_V1(hlauth_caller_is_admin);

/* A cache holding more entries than this is dropped and rebuilt rather than grown. */
#define HL_RBAC_CACHE_MAX 50000

/* The tables whose changes invalidate the cache, in the order of rbac_relnames. */
#define HL_RBAC_NTABLES 5
static const char *const rbac_relnames[HL_RBAC_NTABLES] = {
	"permissions", "roles", "grants", "agency_allowances", "principals"
};
static Oid	rbac_relids[HL_RBAC_NTABLES];
static bool rbac_relids_valid = false;

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
} EffEntry;

typedef struct PrincipalEntry
{
	pg_uuid_t	id;				/* hash key */
	bool		active;			/* no row: active */
	Jsonb	   *attributes;		/* in RbacCacheContext; NULL when there is no row */
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
static Registry *CachedRegistry = NULL;
static uint64 registry_generation = 0;	/* bumped whenever CachedRegistry is rebuilt */
static uint64 cache_built_count = 0;
static uint64 cache_built_tenants = 0;
static bool cache_force_reset = false;

/*
 * Entries filled in parallel mode were read under the statement's snapshot, not the latest
 * one: they may serve only the transaction that read them. Set to that transaction's local
 * id while the cache holds any; the first lookup of another transaction drops the cache.
 */
static LocalTransactionId cache_xact_lxid = InvalidLocalTransactionId;

/* Saved plans, prepared on the first miss. */
static SPIPlanPtr plan_registry = NULL;
static SPIPlanPtr plan_principal = NULL;
static SPIPlanPtr plan_grants = NULL;

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
 * Learn the tables' OIDs before reading them, so that their invalidations are recognised.
 * Called on a miss, before the first read.
 */
static void
rbac_lookup_relids(void)
{
	Oid			nsp;
	int			i;

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
	rbac_relids_valid = true;
}

/* Drop the cache if anything it was built from may have changed. Call before every lookup. */
static void
rbac_cache_prepare(void)
{
	HASHCTL		ctl;

	if (RbacCacheContext != NULL && !cache_force_reset &&
		cache_built_count == rbac_inval_count &&
		cache_built_tenants == HlTenantsGeneration() &&
		(cache_xact_lxid == InvalidLocalTransactionId || cache_xact_lxid == MyProc->lxid))
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
	CachedRegistry = NULL;
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

typedef struct RbacSpi
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	Snapshot	snapshot;
} RbacSpi;

/*
 * Connect to SPI as the bootstrap superuser (app roles cannot read these tables, and
 * row-level security must not hide rows from this computation), with search_path pinned.
 * Errors need no cleanup: (sub)transaction abort restores the user, the GUC level and SPI.
 */
static void
rbac_spi_begin(RbacSpi *s)
{
	rbac_lookup_relids();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&s->save_userid, &s->save_sec_context);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   s->save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	s->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* See the head comment: the latest snapshot, except where none may be taken. */
	s->snapshot = IsInParallelMode() ? GetActiveSnapshot() : GetLatestSnapshot();
	rbac_note_fill();
}

static void
rbac_spi_end(RbacSpi *s)
{
	AtEOXact_GUC(true, s->save_nestlevel);
	SetUserIdAndSecContext(s->save_userid, s->save_sec_context);
	SPI_finish();
}

static SPIPlanPtr
rbac_prepare(SPIPlanPtr *slot, const char *query, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		/*
		 * A generic plan, planned once: left to itself the plan cache keeps choosing custom
		 * plans for `tenant_id = ANY ($2)`, and re-planned on every cache miss (most of a
		 * miss's cost; make bench's effective_scopes micro-benchmark showed it).
		 */
		SPIPlanPtr	plan = SPI_prepare_cursor(query, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", query,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = plan;
	}
	return *slot;
}

static void
rbac_execute(RbacSpi *s, SPIPlanPtr plan, Datum *values, const char *nulls)
{
	int			rc = SPI_execute_snapshot(plan, values, nulls, s->snapshot, InvalidSnapshot,
										  true, false, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "hlauth could not read its permission tables: %s", SPI_result_code_string(rc));
}

/* ---- the registry ---- */

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

/* The registry, from the cache or read inside the caller's SPI connection. */
static Registry *
registry_get(RbacSpi *s)
{
	MemoryContext old;
	Registry   *reg;
	PermissionRow *rows;
	uint64		i;
	int			k,
				j;

	if (CachedRegistry != NULL)
		return CachedRegistry;

	rbac_execute(s, rbac_prepare(&plan_registry,
								 "SELECT p.scope, p.implies FROM hlauth.permissions p",
								 0, NULL),
				 NULL, NULL);

	old = MemoryContextSwitchTo(RbacCacheContext);
	reg = (Registry *) palloc0(sizeof(Registry));
	reg->n = (int) SPI_processed;
	rows = (PermissionRow *) palloc0(sizeof(PermissionRow) * Max(reg->n, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d = SPI_getbinval(tup, desc, 1, &isnull);
		Datum	   *elems;
		bool	   *enulls;
		int			nelems;

		if (isnull)
			elog(ERROR, "hlauth.permissions holds a NULL scope");
		rows[i].perm.scope = TextDatumGetCString(d);
		rows[i].perm.len = strlen(rows[i].perm.scope);
		d = SPI_getbinval(tup, desc, 2, &isnull);
		if (isnull)
			continue;
		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &enulls, &nelems);
		rows[i].implied = (char **) palloc(sizeof(char *) * Max(nelems, 1));
		for (k = 0; k < nelems; k++)
			if (!enulls[k])
				rows[i].implied[rows[i].nimplied++] = TextDatumGetCString(elems[k]);
	}

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

/* The principal's entry, from the cache or read inside the caller's SPI connection. */
static PrincipalEntry *
principal_get_spi(RbacSpi *s, const pg_uuid_t *id)
{
	PrincipalEntry *e;
	bool		found;
	Datum		values[1];
	Oid			types[1] = {UUIDOID};
	bool		active = true;
	Jsonb	   *attributes = NULL;

	e = (PrincipalEntry *) hash_search(PrincipalCache, id, HASH_FIND, &found);
	if (found)
		return e;

	values[0] = UUIDPGetDatum(id);
	rbac_execute(s, rbac_prepare(&plan_principal,
								 "SELECT p.status OPERATOR(pg_catalog.=) 'active', p.attributes "
								 "FROM hlauth.principals p WHERE p.id OPERATOR(pg_catalog.=) $1",
								 1, types),
				 values, NULL);
	if (SPI_processed > 0)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		active = !isnull && DatumGetBool(d);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull)
		{
			Jsonb	   *jb = DatumGetJsonbP(d);

			attributes = (Jsonb *) MemoryContextAlloc(RbacCacheContext, VARSIZE(jb));
			memcpy(attributes, jb, VARSIZE(jb));
		}
	}
	if (hash_get_num_entries(PrincipalCache) >= HL_RBAC_CACHE_MAX)
		cache_force_reset = true;	/* dropped at the next lookup; this entry serves now */
	e = (PrincipalEntry *) hash_search(PrincipalCache, id, HASH_ENTER, &found);
	e->active = active;
	e->attributes = attributes;
	return e;
}

static PrincipalEntry *
principal_get(const pg_uuid_t *id)
{
	PrincipalEntry *e;
	bool		found;
	RbacSpi		s;

	e = (PrincipalEntry *) hash_search(PrincipalCache, id, HASH_FIND, &found);
	if (found)
		return e;
	rbac_spi_begin(&s);
	e = principal_get_spi(&s, id);
	rbac_spi_end(&s);
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
 * Compute the principal's effective scopes at the tenant (see hlauth.h), palloc'd in the
 * caller's memory context. *expires is set to the earliest future valid_from or valid_until
 * among the grants read (DT_NOEND when none): the answer may change then.
 */
static HlScopes *
effective_compute(const pg_uuid_t *principal, const pg_uuid_t *tenant, TimestampTz now,
				  TimestampTz *expires)
{
	HlTenantPath path;
	RbacSpi		s;
	Registry   *reg;
	bool	   *granted;
	bool	   *role_marks;
	bool	   *allow_marks;
	Datum		ids[3];
	int			nids = 0;
	Datum		values[3];
	Oid			types[3] = {UUIDOID, UUIDARRAYOID, UUIDOID};
	MemoryContext caller = CurrentMemoryContext;
	HlScopes   *result;
	uint64		i;

	*expires = DT_NOEND;

	/* An unknown or suspended tenant: nothing (and nothing to wait for). */
	if (!HlTenantResolve(tenant, &path) || !path.active)
		return empty_scopes();

	rbac_spi_begin(&s);
	if (!principal_get_spi(&s, principal)->active)
	{
		rbac_spi_end(&s);
		return empty_scopes();
	}
	reg = registry_get(&s);

	granted = (bool *) MemoryContextAllocZero(caller, sizeof(bool) * Max(reg->n, 1));
	role_marks = (bool *) palloc(sizeof(bool) * Max(reg->n, 1));
	allow_marks = (bool *) palloc(sizeof(bool) * Max(reg->n, 1));

	/* The tenant and every tenant above it. */
	ids[nids++] = UUIDPGetDatum(&path.agency);
	if (path.kind >= HL_TENANT_ACCOUNT)
		ids[nids++] = UUIDPGetDatum(&path.account);
	if (path.kind == HL_TENANT_APP)
		ids[nids++] = UUIDPGetDatum(&path.app);
	values[0] = UUIDPGetDatum(principal);
	values[1] = PointerGetDatum(construct_array(ids, nids, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	values[2] = UUIDPGetDatum(&path.agency);

	/*
	 * One index lookup (grants_principal_tenant_idx) per tenant of the path. A custom role
	 * counts only inside its own agency, capped by the agency's current allowance.
	 */
	rbac_execute(&s, rbac_prepare(&plan_grants,
								  "SELECT g.valid_from, g.valid_until, r.scopes, "
								  "r.agency_id IS NOT NULL, a.scopes "
								  "FROM hlauth.grants g "
								  "JOIN hlauth.roles r ON r.id OPERATOR(pg_catalog.=) g.role_id "
								  "LEFT JOIN hlauth.agency_allowances a "
								  "ON a.agency_id OPERATOR(pg_catalog.=) r.agency_id "
								  "WHERE g.principal OPERATOR(pg_catalog.=) $1 "
								  "AND g.tenant_id OPERATOR(pg_catalog.=) ANY ($2) "
								  "AND g.revoked_at IS NULL "
								  "AND (r.agency_id IS NULL OR r.agency_id OPERATOR(pg_catalog.=) $3)",
								  3, types),
				 values, NULL);

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;
		bool		custom;
		int			k;

		d = SPI_getbinval(tup, desc, 1, &isnull);
		if (!isnull && DatumGetTimestampTz(d) > now)
		{
			/* Not valid yet: it starts counting then. */
			*expires = Min(*expires, DatumGetTimestampTz(d));
			continue;
		}
		d = SPI_getbinval(tup, desc, 2, &isnull);
		if (!isnull)
		{
			if (DatumGetTimestampTz(d) <= now)
				continue;		/* over */
			*expires = Min(*expires, DatumGetTimestampTz(d));
		}

		d = SPI_getbinval(tup, desc, 3, &isnull);
		if (isnull)
			continue;
		registry_expand(reg, DatumGetHlScopesP(d), role_marks);

		custom = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		if (custom)
		{
			/* No allowance: the agency's custom roles grant nothing. */
			d = SPI_getbinval(tup, desc, 5, &isnull);
			if (isnull)
				continue;
			registry_expand(reg, DatumGetHlScopesP(d), allow_marks);
			for (k = 0; k < reg->n; k++)
				role_marks[k] = role_marks[k] && allow_marks[k];
		}
		for (k = 0; k < reg->n; k++)
			granted[k] = granted[k] || role_marks[k];
	}

	/* Each role's set was closed under implication, and so is their union. */
	MemoryContextSwitchTo(caller);
	result = scopes_from_marks(reg, granted);
	pfree(granted);
	rbac_spi_end(&s);
	return result;
}

HlScopes *
HlEffectiveScopes(const pg_uuid_t *principal, const pg_uuid_t *tenant)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz expires;
	EffKey		key;
	EffEntry   *e;
	bool		found;
	HlScopes   *result;
	HlScopes   *copy;

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
	if (found && e->scopes != NULL)
		pfree(e->scopes);
	e->scopes = copy;
	e->expires = expires;
	return result;
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

	if (!HlCurrentRoleIsAdmin() && !role_is_member(GetUserId(), "hlauth_trusted") &&
		!context_reaches(tenant))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read the effective scopes at tenant %s", uuid_text(tenant)),
				 errdetail("Only hlauth_admin, hlauth_trusted, and a principal context that can access the tenant may read them.")));
	PG_RETURN_HLSCOPES_P(HlEffectiveScopes(principal, tenant));
}

/*
 * The registered permissions a scope set grants: wildcards expanded, implications applied
 * (so asking for contacts.write also asks for what it implies). palloc'd in the caller's
 * context. A one-entry memo (the same scopes arrive in every transaction of an app server)
 * keeps the hot path of set_principal and authenticate free of SPI.
 */
HlScopes *
HlExpandScopes(const HlScopes *set)
{
	static MemoryContext memo_cxt = NULL;
	static HlScopes *memo_in = NULL;
	static HlScopes *memo_out = NULL;
	static uint64 memo_registry_gen = 0;
	RbacSpi		s;
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
		rbac_spi_begin(&s);
		reg = registry_get(&s);
		MemoryContextSwitchTo(caller);
		rbac_spi_end(&s);
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
