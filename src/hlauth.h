/*
 * src/hlauth.h
 *		Declarations shared by hlauth's PostgreSQL glue (the .c files under src/).
 *
 * The glue stays thin: parsing and matching live in src/core, which never sees postgres.h.
 */
#ifndef HLAUTH_H
#define HLAUTH_H

#include "postgres.h"
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

/* ---- context.c: the principal context ---- */

extern void HlContextInit(void);
extern bool HlContextIsSet(void);
extern bool HlContextGrantsScope(const char *scope, size_t len);

/* ---- protect.c: protect() and the triggers on protected tables ---- */

extern bool HlCurrentRoleIsAdmin(void);

#endif							/* HLAUTH_H */
