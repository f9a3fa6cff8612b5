/*
 * src/hlauth.h
 *		Declarations shared by hlauth's PostgreSQL glue (the .c files under src/).
 *
 * The glue stays thin: parsing and matching live in src/core, which never sees postgres.h.
 */
#ifndef HLAUTH_H
#define HLAUTH_H

#include "postgres.h"
#include "access/attnum.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "core/scope.h"

/* ---- scopes.c: the hlauth.scopes type ---- */

/*
 * On-disk and in-memory form of hlauth.scopes: the canonical (sorted, de-duplicated)
 * scopes, each followed by a NUL byte. Two equal sets have identical bytes.
 */
typedef struct HlScopes
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	int32		count;			/* number of scopes */
	char		data[FLEXIBLE_ARRAY_MEMBER];
} HlScopes;

#define DatumGetHlScopesP(X)	((HlScopes *) PG_DETOAST_DATUM(X))
#define PG_GETARG_HLSCOPES_P(n) DatumGetHlScopesP(PG_GETARG_DATUM(n))
#define PG_RETURN_HLSCOPES_P(x) PG_RETURN_POINTER(x)

extern HlScopes *HlScopesFromText(const char *str, size_t len);
extern HlScopes *HlScopesIntersect(const HlScopes *a, const HlScopes *b);
extern bool HlScopesCoversSet(const HlScopes *set, const HlScopes *sub);
extern bool HlScopesGrantText(const HlScopes *set, const char *q, size_t qlen);
extern bool HlScopesIsValidScope(const char *q, size_t qlen);
extern char *HlScopesToCString(const HlScopes *set);

/* ---- tenants.c: the tenant tree, cached per backend ---- */

typedef enum HlTenantKind
{
	HL_TENANT_AGENCY = 0,
	HL_TENANT_ACCOUNT = 1,
	HL_TENANT_APP = 2
} HlTenantKind;

/* A tenant resolved to its place in the tree. */
typedef struct HlTenantPath
{
	HlTenantKind kind;
	bool		active;			/* it and every tenant above it are active */
	pg_uuid_t	agency;
	pg_uuid_t	account;		/* valid when kind >= ACCOUNT */
	pg_uuid_t	app;			/* valid when kind == APP */
} HlTenantPath;

extern void HlTenantsInit(void);
extern uint64 HlTenantsGeneration(void);
extern int	HlUuidCmp(const void *a, const void *b);
extern bool HlTenantResolve(const pg_uuid_t *tenant, HlTenantPath *path);
extern const pg_uuid_t *HlTenantsAccessible(const pg_uuid_t *tenant, HlTenantKind kind,
											 int only, int *count);
extern const struct ArrayType *HlTenantsAccessibleArray(const pg_uuid_t *tenant,
														HlTenantKind kind, int only);
extern const char *HlTenantKindName(HlTenantKind kind);

/*
 * A handle on a tenant's cache entry, for a caller that memoizes a resolution and wants the
 * tenant's next lookups (the policies' accessible set) to find the entry without a hash
 * lookup. NULL when the tenant is not cached. HlTenantsUseEntry ignores a handle from an
 * older build of the cache.
 */
extern void *HlTenantsEntryFor(const pg_uuid_t *tenant, uint64 *build);
extern void HlTenantsUseEntry(void *entry, uint64 build);

/* ---- cascade.c: forced row-level security inside referential actions ---- */

extern void HlCascadeInit(void);
/* Is hlauth in shared_preload_libraries or session_preload_libraries? */
extern bool HlPreloaded(void);

/* ---- context.c: the principal context ---- */

extern void HlContextInit(void);
extern void HlContextDefineGucs(void);
extern void HlEnsureGucs(void);
extern bool HlContextIsSet(void);
extern bool HlContextGrantsScope(const char *scope, size_t len);

/*
 * The time grants, keys and their cached answers are judged at: the current statement's
 * start, or the transaction's when it is later (a transaction a procedure or DO block
 * started after COMMIT, inside one long statement).
 */
extern TimestampTz HlNow(void);

/*
 * Establish the context for the rest of the transaction after a verified authentication
 * (set_principal, an API key, later a JWT): method names the path ("set_principal",
 * "api_key"), token_id the key or token id (NULL for none). The tenant must be resolved
 * and active; scopes are what the principal may use (already intersected); access, when not
 * NULL, the tenant's reach of its own kind from HlPrincipalAt, embedded in the context;
 * bound, for an API key, the nbound other principals that bound it (its bounded_by).
 */
extern void HlContextEstablish(const pg_uuid_t *principal, const pg_uuid_t *tenant,
							   const HlTenantPath *path, const char *method,
							   const char *token_id, const HlScopes *scopes,
							   const struct ArrayType *access, const pg_uuid_t *bound,
							   int nbound);
/* Refuse (42501) a session role that is a superuser or has BYPASSRLS. */
extern void HlRefuseBypassRoles(void);
/* In replica mode, a session of a non-superuser may not write to tables hlauth guards or audits. */
struct PlannedStmt;
extern void HlRefuseReplicaModeWrites(struct PlannedStmt *stmt);
extern void HlRefuseReplicaModeUtility(Node *parsetree);
/* Refuse (42501) to establish a context inside a security-restricted operation. */
extern void HlRefuseRestrictedOperation(void);
/* The current context's principal, or NULL when none (for the other glue files). */
extern const pg_uuid_t *HlContextPrincipal(void);
extern const pg_uuid_t *HlContextTenant(void);
extern const char *HlContextTokenId(void);
/* How the current context was established ("set_principal", "api_key"), or NULL. */
extern const char *HlContextMethod(void);

/* ---- authfail.c: security events for failed authentications ---- */

typedef enum HlAuthFailReason
{
	HL_AUTHFAIL_MALFORMED = 0,
	HL_AUTHFAIL_WRONG_PREFIX,
	HL_AUTHFAIL_UNKNOWN_KEY,
	HL_AUTHFAIL_BAD_SECRET,
	HL_AUTHFAIL_REVOKED,
	HL_AUTHFAIL_EXPIRED,
	HL_AUTHFAIL_ROTATED_OUT,
	HL_AUTHFAIL_TENANT_INACTIVE,
	HL_AUTHFAIL_PRINCIPAL_SUSPENDED,
	HL_AUTHFAIL_NREASONS
} HlAuthFailReason;

extern void HlAuthFailDefineGucs(void);

/*
 * Note a failed authentication (before raising 28000): a rate-limited security event
 * auth.failed, written by a background worker so that it outlives the failing transaction.
 * key_id is the id of a known key, NULL for any other failure. Never raises.
 */
extern void HlAuthFailNote(HlAuthFailReason reason, const char *key_id);

/* ---- audit.c: the audit trigger ---- */

extern void HlAuditInit(void);

/* ---- protect.c: protect() and the triggers on protected tables ---- */

extern bool HlRoleIsAdmin(Oid role);
/* Refuse (55000) to protect a table owned by a non-admin unless hlauth is preloaded. */
extern void HlRequirePreloadForOwner(Oid relid, Oid owner);
/* Is the table registered in hlauth_internal.protected_tables? */
extern bool HlRelationIsProtectedNow(Oid relid);
extern bool HlRelationIsProtected(Oid relid);
/* Under a transaction snapshot, refuse (40001) when the registry changed since it was taken. */
extern void HlRefuseStaleRegistry(void);
/* Does the cooked expression call a function (or operator) owned by a non-admin? */
extern bool HlExprRunsNonAdminCode(struct Node *expr);
/* Does the column's default (its own, else its domain's) run such code? */
extern bool HlColumnDefaultRunsNonAdminCode(Relation rel, AttrNumber attnum);
/* Do values of the type run a non-admin's code (a domain's check or default, a range's subtype_diff, or a type built on one)? */
extern bool HlTypeRunsNonAdminCode(Oid typid);
/* Is the type, and every type it is built on, owned by an hlauth admin (no cast of a non-admin's to json)? */
extern bool HlTypeOwnedByAdmins(Oid typid);
/* A protected table (as committed now) with a column of that type (or a domain or array over it), or NULL. */
extern struct RangeVar *HlProtectedTableUsingType(Oid typid);
/* A protected typed table (OF) of that composite type, or NULL. */
extern struct RangeVar *HlProtectedTableOfType(Oid typid);
/* Lock every table with a column of that type (or one built on it), and its typed tables. */
extern void HlLockTablesUsingType(Oid typid);
extern bool HlCurrentRoleIsAdmin(void);
extern bool HlSessionRoleIsAdmin(void);

/* ---- secret.c: the server secret and the purpose keys derived from it ---- */

#define HL_KEY_LEN 32			/* bytes of every derived purpose key */

/* Purposes: each derives an independent key (HKDF info "hlauth/<purpose>"). */
#define HL_PURPOSE_APIKEY_PEPPER	"apikey-pepper"
#define HL_PURPOSE_AUDIT_SEAL		"audit-seal"
#define HL_PURPOSE_SIGNING_KEYS		"signing-key-encryption"

extern void HlSecretDefineGucs(void);

/*
 * Derive the purpose key of master key `version` into out (0 = the newest version) and
 * return the version used. Returns 0, with out untouched, when that version is not in the
 * file. Raises 55000 (with a hint naming hlauth.secret_file) when no secret is configured
 * or the file is unusable. Never puts key material in an error message.
 */
extern int	HlSecretPurposeKey(const char *purpose, int version, unsigned char out[HL_KEY_LEN]);

/*
 * Changes whenever this backend discards the master keys it cached (hlauth.secret_file was
 * changed, or the file was read again). A caller that caches keys obtained from
 * HlSecretPurposeKey compares it with the value it saw then, and drops them when it differs.
 */
extern uint64 HlSecretGeneration(void);

/* ---- rbac.c: permissions, roles, grants; effective scopes ---- */

extern void HlRbacInit(void);

/* An index of hlauth's by name, and a column of one of its tables (type InvalidOid: any). */
extern Oid	HlTableIndex(Oid nsp, const char *name);
extern AttrNumber HlTableColumn(Oid relid, const char *relname, const char *name, Oid type);

/* Are the RBAC tables installed (0.2.0 or later) in this database? */
extern bool HlRbacInstalled(void);

/*
 * The principal's effective scopes at the tenant: the registered permissions granted to it
 * there by active, current grants at the tenant or above it, wildcards expanded and
 * implications applied. palloc'd in CurrentMemoryContext; an empty set when none. Cached
 * per backend and invalidated when permissions, roles, grants, allowances, principals or the
 * tenant tree change, or when a grant starts or ends.
 */
extern HlScopes *HlEffectiveScopes(const pg_uuid_t *principal, const pg_uuid_t *tenant);

/* The registered permissions a scope set grants: wildcards expanded, implications applied. */
extern HlScopes *HlExpandScopes(const HlScopes *set);

/* False when the principal is suspended (principals without a row are active). */
extern bool HlPrincipalActive(const pg_uuid_t *principal);

/*
 * What set_principal and authenticate ask, in one call: may the principal act at the tenant
 * with the asked scopes (given as typed, byte for byte), and with which? HL_AT_OK fills path
 * and granted (= the asked scopes expanded ∩ the effective scopes) and, when small, access
 * (the tenant's reach of its own kind, for the context to embed; else NULL). Both point into
 * the cache or the current memory context: copy them before the next cache lookup.
 * The answer is kept with the effective scopes and dropped with them, so a repeat costs one
 * cache lookup.
 */
typedef enum HlPrincipalAtResult
{
	HL_AT_OK,
	HL_AT_NO_TENANT,
	HL_AT_TENANT_INACTIVE,		/* the tenant, or one above it, is suspended */
	HL_AT_PRINCIPAL_SUSPENDED
} HlPrincipalAtResult;

extern HlPrincipalAtResult HlPrincipalAt(const pg_uuid_t *principal, const pg_uuid_t *tenant,
										 const HlScopes *asked, HlTenantPath *path,
										 const HlScopes **granted,
										 const struct ArrayType **access);

/* ---- apikey.c: the hlauth.apikey type, issuing and verifying API keys ---- */

extern void HlApiKeyInit(void);
extern void HlApiKeyDefineGucs(void);

/*
 * The attributes (a jsonb object) of the API key with this id, from the key cache; NULL when
 * the key is unknown. The result lives in the cache: copy what you keep.
 */
extern const Jsonb *HlApiKeyAttributes(const char *key_id);

#endif							/* HLAUTH_H */
