/*
 * src/context.c
 *		The principal context: who is acting, at which tenant, with which scopes.
 *
 * The context lives in backend memory (TopTransactionContext) and follows SET LOCAL rules,
 * kept by transaction and subtransaction callbacks:
 *	- it ends with the transaction (commit, abort or PREPARE), so pooled connections never
 *	  leak it;
 *	- a rolled-back subtransaction restores the value its parent had; a committed one hands
 *	  its value up;
 *	- only hlauth's own C code changes it (set_principal, token verification, clear, and a
 *	  role change, which ends it). No GUC, SET, set_config(), ALTER ROLE ... SET, PGOPTIONS
 *	  or function SET clause can reach it.
 * Parallel workers need it too. Just before a statement that runs in parallel mode starts
 * (ExecutorStart with parallelModeNeeded), the leader publishes the context's text form in the
 * GUC hlauth.context (SET LOCAL, superuser-only, hidden), which PostgreSQL copies into every
 * worker with the rest of the GUC state. The GUC's check hook accepts a value only while
 * hlauth itself is publishing, or while a parallel worker restores its leader's state; a
 * worker parses it back into the same block. The leader never reads the GUC: what it says
 * cannot change what the leader's accessors return. A statement that does not go parallel
 * never touches the GUC (a GUC round trip costs about 5,000 instructions per transaction).
 *
 * The context belongs to the session role that set it: any role change hides it. Accessors
 * read CurrentContext; only the accessible-tenant set reads hlauth.tenants, and only when its
 * per-backend cache is cold (src/tenants.c).
 *
 * This file must never accept a context value it did not produce, and must return NULL or
 * false from every accessor when nobody is authenticated.
 */
#include "hlauth.h"

#include <stdlib.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(hlauth_set_principal);
PG_FUNCTION_INFO_V1(hlauth_clear);
PG_FUNCTION_INFO_V1(hlauth_principal);
PG_FUNCTION_INFO_V1(hlauth_tenant);
PG_FUNCTION_INFO_V1(hlauth_tenant_kind);
PG_FUNCTION_INFO_V1(hlauth_agency);
PG_FUNCTION_INFO_V1(hlauth_account);
PG_FUNCTION_INFO_V1(hlauth_app);
PG_FUNCTION_INFO_V1(hlauth_auth_method);
PG_FUNCTION_INFO_V1(hlauth_token_id);
PG_FUNCTION_INFO_V1(hlauth_scopes);
PG_FUNCTION_INFO_V1(hlauth_has_scope);
PG_FUNCTION_INFO_V1(hlauth_require_scope);
PG_FUNCTION_INFO_V1(hlauth_can_access);
PG_FUNCTION_INFO_V1(hlauth_accessible_tenants);

#define HL_CONTEXT_GUC		"hlauth.context"
#define HL_CONTEXT_VERSION	"v2"
#define HL_METHOD_MAX		16
#define HL_TOKEN_MAX		65	/* a token id: [A-Za-z0-9_.-], at most 64 bytes */

/*
 * The context: one block, scopes stored after the struct. In the leader it is palloc'd in
 * TopTransactionContext; in a parallel worker it is the malloc'd "extra" of the GUC.
 */
typedef struct HlContext
{
	pg_uuid_t	principal;
	pg_uuid_t	tenant;
	pg_uuid_t	agency;
	pg_uuid_t	account;		/* zero when acting at an agency */
	pg_uuid_t	app;			/* zero unless acting at an app */
	HlTenantKind kind;
	Oid			role;			/* the session role that set it (GetOuterUserId) */
	char		method[HL_METHOD_MAX];
	char		token[HL_TOKEN_MAX];	/* key or token id; empty when none */
	Size		scopes_offset;	/* HlScopes varlena at (char *) ctx + scopes_offset */

	/*
	 * The tenants of the context's own kind it may reach (a uuid[] at ctx + access_offset;
	 * 0: not embedded), as the tenant tree of generation access_generation had them. The
	 * policies ask for exactly this set in every scan; embedding a small one saves them the
	 * cache lookups. Never published to parallel workers (they look it up).
	 */
	Size		access_offset;
	uint64		access_generation;

	/*
	 * An API key context: the other principals that bound the key (its bounded_by, as read
	 * when it was verified), nbound uuids at ctx + bound_offset. Keys issued or rotated in
	 * this context inherit them. Never published to parallel workers.
	 */
	Size		bound_offset;
	int			nbound;
} HlContext;

#define CONTEXT_SCOPES(ctx) ((const HlScopes *) ((const char *) (ctx) + (ctx)->scopes_offset))

/*
 * What a subtransaction must put back if it aborts: the context before its first change.
 * A stack, newest first, in TopTransactionContext; at most one frame per subtransaction.
 * Every context block is referenced exactly once: by CurrentContext or by one frame.
 */
typedef struct HlContextFrame
{
	struct HlContextFrame *older;
	SubTransactionId subid;		/* the subtransaction that changed the context */
	HlContext  *saved;			/* the context before that change (may be NULL) */
} HlContextFrame;

static HlContext *CurrentContext = NULL;
static HlContextFrame *context_frames = NULL;

/* Bumped whenever CurrentContext changes: memos and the published copy compare against it. */
static uint64 context_generation = 1;

/* ---- publishing to parallel workers through the GUC ---- */

static char *context_guc_value = NULL;

/* True only while hlauth's own C code is setting the GUC. */
static bool setting_context = false;

/* The generation being published, and the generation the GUC's current value carries. */
static uint64 publishing_generation = 0;
static uint64 published_generation = 0;	/* 0: the GUC holds no known current value */

static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;

/* ---- the context block and its text form ---- */

/*
 * One block: the struct, then the scopes. In TopTransactionContext for the leader, or
 * malloc'd (for_guc) when it becomes the GUC's "extra" in a parallel worker.
 */
static HlContext *
context_build_access(const pg_uuid_t *principal, const pg_uuid_t *tenant,
					 const HlTenantPath *path, const char *method, const char *token, Oid role,
					 const HlScopes *scopes, bool for_guc, const ArrayType *access,
					 const pg_uuid_t *bound, int nbound)
{
	Size		off = MAXALIGN(sizeof(HlContext));
	Size		access_off = MAXALIGN(off + VARSIZE(scopes));
	Size		size = off + VARSIZE(scopes);
	Size		bound_off;
	HlContext  *ctx;

	if (access != NULL && !for_guc)
		size = access_off + VARSIZE(access);
	bound_off = MAXALIGN(size);
	if (nbound > 0 && !for_guc)
		size = bound_off + sizeof(pg_uuid_t) * nbound;

	if (for_guc)
	{
		ctx = (HlContext *) malloc(size);
		if (ctx == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	else
		ctx = (HlContext *) MemoryContextAlloc(TopTransactionContext, size);
	memset(ctx, 0, sizeof(HlContext));
	if (access != NULL && !for_guc)
	{
		ctx->access_offset = access_off;
		ctx->access_generation = HlTenantsGeneration();
		memcpy((char *) ctx + access_off, access, VARSIZE(access));
	}
	ctx->principal = *principal;
	ctx->tenant = *tenant;
	ctx->agency = path->agency;
	ctx->account = path->account;
	ctx->app = path->app;
	ctx->kind = path->kind;
	ctx->role = role;
	strlcpy(ctx->method, method, HL_METHOD_MAX);
	strlcpy(ctx->token, token ? token : "", HL_TOKEN_MAX);
	ctx->scopes_offset = off;
	memcpy((char *) ctx + off, scopes, VARSIZE(scopes));
	if (nbound > 0 && !for_guc)
	{
		ctx->bound_offset = bound_off;
		ctx->nbound = nbound;
		memcpy((char *) ctx + bound_off, bound, sizeof(pg_uuid_t) * nbound);
	}
	return ctx;
}

static HlContext *
context_build(const pg_uuid_t *principal, const pg_uuid_t *tenant, const HlTenantPath *path,
			  const char *method, const char *token, Oid role, const HlScopes *scopes,
			  bool for_guc)
{
	return context_build_access(principal, tenant, path, method, token, role, scopes, for_guc,
								NULL, NULL, 0);
}

static void
append_uuid(StringInfo buf, const pg_uuid_t *u)
{
	static const char hex[] = "0123456789abcdef";
	char	   *out;
	int			i;

	enlargeStringInfo(buf, 2 * UUID_LEN);
	out = buf->data + buf->len;
	for (i = 0; i < UUID_LEN; i++)
	{
		out[2 * i] = hex[u->data[i] >> 4];
		out[2 * i + 1] = hex[u->data[i] & 0xF];
	}
	buf->len += 2 * UUID_LEN;
	buf->data[buf->len] = '\0';
}

/*
 * The published text form: "v1;" then principal, tenant, agency, account, app as 32 hex
 * digits each, ";" kind digit ";" role OID ";" method ";" token id ";" the canonical scopes.
 * Neither the method nor the token id can contain ";" (see token_id_valid). Only ever
 * parsed back when a parallel worker restores its leader's GUC state.
 */
static char *
context_serialize(const HlContext *ctx)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, HL_CONTEXT_VERSION ";");
	append_uuid(&buf, &ctx->principal);
	append_uuid(&buf, &ctx->tenant);
	append_uuid(&buf, &ctx->agency);
	append_uuid(&buf, &ctx->account);
	append_uuid(&buf, &ctx->app);
	appendStringInfo(&buf, ";%d;%u;%s;%s;%s", (int) ctx->kind, ctx->role, ctx->method,
					 ctx->token, HlScopesToCString(CONTEXT_SCOPES(ctx)));
	return buf.data;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool
parse_uuid(const char **p, pg_uuid_t *out)
{
	int			i;

	for (i = 0; i < UUID_LEN; i++)
	{
		int			hi = hex_value((*p)[2 * i]);
		int			lo = (hi < 0) ? -1 : hex_value((*p)[2 * i + 1]);

		if (lo < 0)
			return false;
		out->data[i] = (unsigned char) ((hi << 4) | lo);
	}
	*p += 2 * UUID_LEN;
	return true;
}

/* Parse a published context into one malloc'd block, or NULL if malformed. */
static HlContext *
context_parse(const char *value)
{
	const char *p = value;
	pg_uuid_t	principal,
				tenant;
	HlTenantPath path;
	char	   *end;
	long		kind;
	unsigned long role;
	const char *method;
	char		method_buf[HL_METHOD_MAX];
	const char *token;
	char		token_buf[HL_TOKEN_MAX];
	const char *scopes_text;
	HlScopes   *scopes;
	HlContext  *ctx;

	memset(&path, 0, sizeof(path));
	if (strncmp(p, HL_CONTEXT_VERSION ";", strlen(HL_CONTEXT_VERSION) + 1) != 0)
		return NULL;
	p += strlen(HL_CONTEXT_VERSION) + 1;
	if (!parse_uuid(&p, &principal) || !parse_uuid(&p, &tenant) ||
		!parse_uuid(&p, &path.agency) || !parse_uuid(&p, &path.account) ||
		!parse_uuid(&p, &path.app) || *p != ';')
		return NULL;
	kind = strtol(p + 1, &end, 10);
	if (end == p + 1 || *end != ';' || kind < HL_TENANT_AGENCY || kind > HL_TENANT_APP)
		return NULL;
	path.kind = (HlTenantKind) kind;
	p = end + 1;
	role = strtoul(p, &end, 10);
	if (end == p || *end != ';')
		return NULL;
	method = end + 1;
	token = strchr(method, ';');
	if (token == NULL || token - method >= HL_METHOD_MAX)
		return NULL;
	memcpy(method_buf, method, token - method);
	method_buf[token - method] = '\0';
	token++;
	scopes_text = strchr(token, ';');
	if (scopes_text == NULL || scopes_text - token >= HL_TOKEN_MAX)
		return NULL;
	memcpy(token_buf, token, scopes_text - token);
	token_buf[scopes_text - token] = '\0';
	scopes = HlScopesFromText(scopes_text + 1, strlen(scopes_text + 1));
	ctx = context_build(&principal, &tenant, &path, method_buf, token_buf, (Oid) role, scopes,
						true);
	pfree(scopes);
	return ctx;
}

/* ---- the GUC: only a transport to parallel workers ---- */

static bool
context_check_hook(char **newval, void **extra, GucSource source)
{
	bool		empty = (*newval == NULL || (*newval)[0] == '\0');

	if (setting_context)
	{
		/* The leader publishing: the extra records which generation the value carries. */
		uint64	   *gen = (uint64 *) malloc(sizeof(uint64));

		if (gen == NULL)
			return false;
		*gen = publishing_generation;
		*extra = gen;
		return true;
	}
	/* Clearing is always allowed: it can only take rights away. */
	if (empty)
	{
		*extra = NULL;
		return true;
	}
	if (!InitializingParallelWorker)
	{
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("the principal context can only be set by hlauth");
		GUC_check_errdetail("Values of \"%s\" are accepted only from hlauth.set_principal() and hlauth's token verification.",
							HL_CONTEXT_GUC);
		GUC_check_errhint("Call hlauth.set_principal() at the start of the transaction.");
		return false;
	}
	/*
	 * A parallel worker restoring what its leader published: set in the session (with
	 * superuser context, which PostgreSQL checks) by hlauth. A role or database default,
	 * the configuration file or a connection option can reach a worker only when the
	 * leader first loaded hlauth inside a parallel operation and so still held it as a
	 * placeholder; those sources never carry a context (a red-team pass forged one with a
	 * superuser's ALTER ROLE ... SET, which the docs promise is inert).
	 */
	if (source != PGC_S_SESSION)
	{
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("the principal context can only be set by hlauth");
		GUC_check_errdetail("A value of \"%s\" from a default or the configuration is never a context.",
							HL_CONTEXT_GUC);
		return false;
	}
	*extra = context_parse(*newval);
	if (*extra == NULL)
	{
		GUC_check_errdetail("The context value is malformed.");
		return false;
	}
	return true;
}

static void
context_assign_hook(const char *newval, void *extra)
{
	if (IsParallelWorker())
	{
		/* The worker's context is exactly what the leader published. */
		CurrentContext = (HlContext *) extra;
		context_generation++;
	}
	else
		/* The leader never reads the GUC; it only notes what the GUC now carries. */
		published_generation = extra ? *(const uint64 *) extra : 0;
}

/*
 * Before a statement that will run in parallel mode starts, make sure the GUC carries the
 * current context (or none), so that its workers see what the leader sees.
 */
static void
context_publish(void)
{
	char	   *value;

	if (published_generation == context_generation)
		return;
	value = CurrentContext ? context_serialize(CurrentContext) : "";
	setting_context = true;
	publishing_generation = context_generation;
	PG_TRY();
	{
		(void) set_config_option(HL_CONTEXT_GUC, value, PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, ERROR, false);
	}
	PG_FINALLY();
	{
		setting_context = false;
	}
	PG_END_TRY();
}

/* Publish before a leader's statement that will run in parallel mode. */
static void
context_publish_for(QueryDesc *queryDesc)
{
	if (queryDesc->plannedstmt->parallelModeNeeded && !IsParallelWorker() &&
		!IsInParallelMode())
		context_publish();
}

static void
hlauth_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	HlEnsureGucs();				/* (a first load in a parallel operation deferred them) */
	if (unlikely(SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA))
		HlRefuseReplicaModeWrites(queryDesc->plannedstmt);
	context_publish_for(queryDesc);
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/*
 * Workers start when the plan runs, not when it starts: a portal bound under one context
 * and executed after clear(), a role change or another set_principal would otherwise give
 * its workers the context of the Bind (a red-team pass). A run in parallel mode is one call
 * (a row limit turns parallelism off), and the context cannot change during it.
 */
static void
hlauth_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
				   bool execute_once)
{
	context_publish_for(queryDesc);
	if (prev_ExecutorRun)
		prev_ExecutorRun(queryDesc, direction, count, execute_once);
	else
		standard_ExecutorRun(queryDesc, direction, count, execute_once);
}

/* ---- changing it: SET LOCAL rules, kept in backend memory ---- */

/*
 * Replace the context for the rest of the transaction, or clear it when ctx is NULL.
 * ctx is a block from context_build() in TopTransactionContext; this takes ownership.
 */
static void
context_set(HlContext *ctx)
{
	SubTransactionId subid = GetCurrentSubTransactionId();

	if (IsParallelWorker() || IsInParallelMode())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("cannot change the principal context during a parallel operation")));
	if (context_frames != NULL && context_frames->subid == subid)
	{
		/* Already changed in this subtransaction: the value being replaced is ours alone. */
		if (CurrentContext != NULL)
			pfree(CurrentContext);
	}
	else
	{
		HlContextFrame *frame = (HlContextFrame *)
			MemoryContextAlloc(TopTransactionContext, sizeof(HlContextFrame));

		frame->older = context_frames;
		frame->subid = subid;
		frame->saved = CurrentContext;
		context_frames = frame;
	}
	CurrentContext = ctx;
	context_generation++;
}

/* The transaction is over: everything lived in TopTransactionContext, about to be freed. */
static void
context_xact_callback(XactEvent event, void *arg)
{
	if (IsParallelWorker())
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			CurrentContext = NULL;
			context_frames = NULL;
			context_generation++;
			break;
		default:
			break;
	}
}

static void
context_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	HlContextFrame *frame = context_frames;

	if (IsParallelWorker() || frame == NULL || frame->subid != mySubid)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* Put back what the parent had. */
		if (CurrentContext != NULL)
			pfree(CurrentContext);
		CurrentContext = frame->saved;
		context_frames = frame->older;
		pfree(frame);
		context_generation++;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/* The parent inherits the change. */
		if (frame->older != NULL && frame->older->subid == parentSubid)
		{
			/* The parent had changed it too: its own saved value is the one to keep. */
			if (frame->saved != NULL)
				pfree(frame->saved);
			context_frames = frame->older;
			pfree(frame);
		}
		else
			frame->subid = parentSubid;
	}
}

/*
 * SET ROLE, SET SESSION AUTHORIZATION and RESET ALL end the context: it was established
 * for the role that authenticated, not for whichever role the session becomes next.
 */
static void
hlauth_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		role_change = false;

	HlEnsureGucs();				/* (a first load in a parallel operation deferred them) */
	if (unlikely(SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA))
		HlRefuseReplicaModeUtility(parsetree);

	if (IsA(parsetree, VariableSetStmt))
	{
		VariableSetStmt *stmt = (VariableSetStmt *) parsetree;

		/* RESET ALL resets the role too. */
		role_change = stmt->kind == VAR_RESET_ALL ||
			(stmt->name != NULL &&
			 (strcmp(stmt->name, "role") == 0 || strcmp(stmt->name, "session_authorization") == 0));
	}

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);

	if (role_change && CurrentContext != NULL && IsTransactionState())
		context_set(NULL);
}

/*
 * The last role that passed set_principal's role checks. Any change to pg_authid or
 * pg_auth_members (ALTER ROLE, GRANT/REVOKE of a role) forgets it.
 */
static Oid	role_checks_passed = InvalidOid;
static Oid	role_checks_passed_outer = InvalidOid;
static bool role_checks_valid = false;

/* The last roles found not to bypass row-level security (current and outer). */
static Oid	bypass_checked_role = InvalidOid;
static Oid	bypass_checked_outer = InvalidOid;

static void
role_checks_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	role_checks_valid = false;
	bypass_checked_role = InvalidOid;
	bypass_checked_outer = InvalidOid;
}

void
HlContextDefineGucs(void)
{
	DefineCustomStringVariable(HL_CONTEXT_GUC,
							   "The current principal context, as published to parallel workers (set only by hlauth).",
							   "Carries the verified principal, tenant and scopes of this transaction "
							   "into parallel workers. It cannot be set with SET.",
							   &context_guc_value,
							   "",
							   PGC_SUSET,
							   GUC_NO_SHOW_ALL | GUC_NO_RESET_ALL | GUC_NOT_IN_SAMPLE |
							   GUC_DISALLOW_IN_FILE | GUC_SUPERUSER_ONLY,
							   context_check_hook,
							   context_assign_hook,
							   NULL);
}

void
HlContextInit(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = hlauth_ProcessUtility;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = hlauth_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = hlauth_ExecutorRun;
	RegisterXactCallback(context_xact_callback, NULL);
	RegisterSubXactCallback(context_subxact_callback, NULL);

	CacheRegisterSyscacheCallback(AUTHOID, role_checks_invalidate, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, role_checks_invalidate, (Datum) 0);
}

/* ---- setting it ---- */

/*
 * No context is established inside a security-restricted operation: the code running there
 * is the table owner's (an index expression, a materialized view's query), run on behalf of
 * whoever maintains the table, and the context would outlive the operation in that
 * session's transaction.
 */
void
HlRefuseRestrictedOperation(void)
{
	if (InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot establish an hlauth context during a security-restricted operation"),
				 errdetail("ANALYZE, VACUUM, CREATE INDEX, REINDEX, CLUSTER and REFRESH MATERIALIZED VIEW run a table owner's functions in a sandbox."),
				 errhint("Do not authenticate from index expressions or materialized view queries.")));
}

/*
 * Both the current role and the outer one (the session's role outside SECURITY DEFINER
 * functions) are checked: the context outlives a definer's function, and the statements
 * after it run as the outer role (a red-team pass gave a superuser a context through an
 * application role's SECURITY DEFINER wrapper).
 */
void
HlRefuseBypassRoles(void)
{
	Oid			role = GetUserId();
	Oid			outer = GetOuterUserId();
	Oid			check[2];
	int			i;

	/* Replica mode skips simply enabled triggers: see HlRefuseReplicaModeWrites (src/guard.c). */
	if (unlikely(SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: no principal can be authenticated with session_replication_role = replica"),
				 errdetail("Replica mode skips simply enabled triggers (security events, the application's own)."),
				 errhint("RESET session_replication_role.")));
	if (OidIsValid(role) && role == bypass_checked_role && outer == bypass_checked_outer)
		return;

	check[0] = role;
	check[1] = outer;
	for (i = 0; i < 2; i++)
		if (superuser_arg(check[i]) || has_bypassrls_privilege(check[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("role \"%s\" bypasses row-level security", GetUserNameFromId(check[i], false)),
					 errdetail("hlauth refuses to set a principal for a superuser or a role with BYPASSRLS (the current role, or the role outside a SECURITY DEFINER function): its queries would not be isolated."),
					 errhint("Connect as an application role without BYPASSRLS (ALTER ROLE ... NOBYPASSRLS).")));
	bypass_checked_role = role;
	bypass_checked_outer = outer;
}

/*
 * EXECUTE on the SQL function is the first gate; this is the second, so that a C function
 * a superuser points at hlauth's symbol cannot hand the power to another role.
 */
static void
require_role_member(const char *rolname, const char *what)
{
	Oid			role = get_role_oid(rolname, true);	/* a syscache hit */

	if (!OidIsValid(role) || !has_privs_of_role(GetUserId(), role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", what),
				 errdetail("Only members of role \"%s\" may %s.", rolname, what),
				 errhint("GRANT %s TO the application server's role.", rolname)));
}

static char *
uuid_text(const pg_uuid_t *u)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(u)));
}

static void pg_attribute_noreturn()
tenant_missing(const pg_uuid_t *tenant)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("tenant %s does not exist", uuid_text(tenant))));
}

static void pg_attribute_noreturn()
tenant_inactive(const pg_uuid_t *tenant)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("tenant %s is not active", uuid_text(tenant)),
			 errdetail("The tenant, or a tenant above it, is suspended.")));
}

/*
 * hlauth.set_principal(principal uuid, tenant uuid, scopes hlauth.scopes)
 * For app servers that verified the principal themselves. EXECUTE is granted only to
 * hlauth_trusted. The tenant must exist and be active (and everything above it), the
 * principal must not be suspended, and the context's scopes are the asked scopes ∩ the
 * principal's effective scopes at that tenant (src/rbac.c).
 */
Datum
hlauth_set_principal(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *principal;
	pg_uuid_t  *tenant;
	HlScopes   *scopes;
	HlTenantPath path;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("principal, tenant and scopes must not be NULL"),
				 errhint("Pass an empty scope set ('') for a principal with no scopes.")));
	principal = PG_GETARG_UUID_P(0);
	tenant = PG_GETARG_UUID_P(1);
	scopes = PG_GETARG_HLSCOPES_P(2);
	HlRefuseRestrictedOperation();

	/*
	 * A change committed elsewhere since this transaction last looked (a revoked grant or
	 * role membership, a suspension) counts from this call on, even in a transaction that
	 * was already open: the caches drop what it invalidates. (Cheap when nothing is new.)
	 */
	AcceptInvalidationMessages();

	/* The role checks below need catalog lookups: remember a role that passed them. */
	if (!role_checks_valid || role_checks_passed != GetUserId() ||
		role_checks_passed_outer != GetOuterUserId())
	{
		HlRefuseBypassRoles();
		require_role_member("hlauth_trusted", "set a principal");
		role_checks_passed = GetUserId();
		role_checks_passed_outer = GetOuterUserId();
		role_checks_valid = true;
	}

	/*
	 * Never more than the principal holds there now: a demotion applies at once. A repeat of
	 * the same principal, tenant and scopes costs one cache lookup (src/rbac.c). (A database
	 * still at 0.1.0, during an upgrade, has no grants yet: it keeps 0.1.0's behaviour.)
	 */
	if (HlRbacInstalled())
	{
		const HlScopes *granted;
		const ArrayType *access;

		switch (HlPrincipalAt(principal, tenant, scopes, &path, &granted, &access))
		{
			case HL_AT_OK:
				break;
			case HL_AT_NO_TENANT:
				tenant_missing(tenant);
				break;
			case HL_AT_TENANT_INACTIVE:
				tenant_inactive(tenant);
				break;
			case HL_AT_PRINCIPAL_SUSPENDED:
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("principal %s is suspended", uuid_text(principal))));
				break;
		}
		context_set(context_build_access(principal, tenant, &path, "set_principal", NULL,
										 GetOuterUserId(), granted, false, access, NULL, 0));
		PG_RETURN_VOID();
	}

	if (!HlTenantResolve(tenant, &path))
		tenant_missing(tenant);
	if (!path.active)
		tenant_inactive(tenant);
	context_set(context_build(principal, tenant, &path, "set_principal", NULL, GetOuterUserId(),
							  scopes, false));
	PG_RETURN_VOID();
}

Datum
hlauth_clear(PG_FUNCTION_ARGS)
{
	context_set(NULL);
	PG_RETURN_VOID();
}

/*
 * The context, if it belongs to the current session role. A role change by any path
 * (SET ROLE, set_config('role', ...), a function's SET role clause, SET SESSION
 * AUTHORIZATION) hides it: it was established for the role that authenticated.
 * SECURITY DEFINER functions do not change the session role, so they still see it.
 * A security-restricted operation (ANALYZE and autovacuum, CREATE INDEX, REINDEX, CLUSTER,
 * REFRESH MATERIALIZED VIEW) runs the table owner's code in a sandbox without changing the
 * session role: it sees no context, so that code cannot act as the session's principal and
 * a materialized view is never filled with one principal's rows.
 */
static inline const HlContext *
current_context(void)
{
	const HlContext *ctx = CurrentContext;

	if (ctx != NULL && (ctx->role != GetOuterUserId() || InSecurityRestrictedOperation()))
		return NULL;
	return ctx;
}

/* ---- accessors: STABLE, PARALLEL SAFE, no table access ---- */

static bool
uuid_is_zero(const pg_uuid_t *u)
{
	static const pg_uuid_t zero;

	return memcmp(u, &zero, sizeof(pg_uuid_t)) == 0;
}

static Datum
return_uuid(FunctionCallInfo fcinfo, const pg_uuid_t *u)
{
	pg_uuid_t  *r;

	if (u == NULL || uuid_is_zero(u))
		PG_RETURN_NULL();
	r = (pg_uuid_t *) palloc(sizeof(pg_uuid_t));
	memcpy(r, u, sizeof(pg_uuid_t));
	PG_RETURN_UUID_P(r);
}

Datum
hlauth_principal(PG_FUNCTION_ARGS)
{
	const HlContext *ctx = current_context();

	return return_uuid(fcinfo, ctx ? &ctx->principal : NULL);
}

Datum
hlauth_tenant(PG_FUNCTION_ARGS)
{
	const HlContext *ctx = current_context();

	return return_uuid(fcinfo, ctx ? &ctx->tenant : NULL);
}

Datum
hlauth_agency(PG_FUNCTION_ARGS)
{
	const HlContext *ctx = current_context();

	return return_uuid(fcinfo, ctx ? &ctx->agency : NULL);
}

Datum
hlauth_account(PG_FUNCTION_ARGS)
{
	const HlContext *ctx = current_context();

	return return_uuid(fcinfo, ctx ? &ctx->account : NULL);
}

Datum
hlauth_app(PG_FUNCTION_ARGS)
{
	const HlContext *ctx = current_context();

	return return_uuid(fcinfo, ctx ? &ctx->app : NULL);
}

Datum
hlauth_tenant_kind(PG_FUNCTION_ARGS)
{
	const HlContext *ctx = current_context();

	if (ctx == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(HlTenantKindName(ctx->kind)));
}

Datum
hlauth_auth_method(PG_FUNCTION_ARGS)
{
	const HlContext *ctx = current_context();

	if (ctx == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(ctx->method));
}

Datum
hlauth_token_id(PG_FUNCTION_ARGS)
{
	const HlContext *ctx = current_context();

	if (ctx == NULL || ctx->token[0] == '\0')
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(ctx->token));
}

Datum
hlauth_scopes(PG_FUNCTION_ARGS)
{
	const HlContext *ctx = current_context();
	const HlScopes *s;
	void	   *copy;

	if (ctx == NULL)
		PG_RETURN_NULL();
	s = CONTEXT_SCOPES(ctx);
	copy = palloc(VARSIZE(s));
	memcpy(copy, s, VARSIZE(s));
	PG_RETURN_POINTER(copy);
}

/*
 * Does the context grant this scope? A one-entry memo makes a policy that calls has_scope()
 * with a constant once per row cost a comparison per row. It is keyed on the context
 * generation and, when that changed, on the scope set's bytes: an app server's transactions
 * mostly carry the same scopes, and set_principal makes a new context in every one of them.
 */
#define MEMO_SCOPES_MAX 2048

static bool
context_has_scope(const char *q, size_t len)
{
	static uint64 memo_generation = 0;
	static char memo_set[MEMO_SCOPES_MAX];
	static Size memo_set_len = 0;	/* 0: no set remembered */
	static char memo_scope[HLA_SCOPE_MAX_LEN];
	static size_t memo_len = SIZE_MAX;
	static bool memo_result = false;
	const HlContext *ctx = current_context();
	const HlScopes *set;
	bool		result;

	if (ctx == NULL)
		return false;
	set = CONTEXT_SCOPES(ctx);
	if (memo_generation != context_generation)
	{
		/* A new context. If its scope set is the same, the remembered answer still holds. */
		if (memo_set_len == 0 || VARSIZE(set) != memo_set_len ||
			memcmp(set, memo_set, memo_set_len) != 0)
		{
			memo_len = SIZE_MAX;
			memo_set_len = 0;
			if (VARSIZE(set) <= MEMO_SCOPES_MAX)
			{
				memcpy(memo_set, set, VARSIZE(set));
				memo_set_len = VARSIZE(set);
			}
		}
		memo_generation = context_generation;
	}
	if (len == memo_len && memcmp(q, memo_scope, len) == 0)
		return memo_result;
	result = HlScopesGrantText(set, q, len);
	if (len <= HLA_SCOPE_MAX_LEN && memo_set_len != 0)
	{
		memcpy(memo_scope, q, len);
		memo_len = len;
		memo_result = result;
	}
	return result;
}

/* Never raises: no context, NULL, or a string that is not a valid scope, is simply false. */
Datum
hlauth_has_scope(PG_FUNCTION_ARGS)
{
	text	   *q;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	q = PG_GETARG_TEXT_PP(0);
	PG_RETURN_BOOL(context_has_scope(VARDATA_ANY(q), VARSIZE_ANY_EXHDR(q)));
}

Datum
hlauth_require_scope(PG_FUNCTION_ARGS)
{
	text	   *q;

	if (current_context() == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: no principal is authenticated in this transaction"),
				 errhint("Call hlauth.set_principal() or authenticate at the start of the transaction.")));
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the required scope must not be NULL")));
	q = PG_GETARG_TEXT_PP(0);
	if (!context_has_scope(VARDATA_ANY(q), VARSIZE_ANY_EXHDR(q)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: scope \"%s\" is required",
						text_to_cstring(q)),
				 errdetail("The current principal's scopes do not grant it.")));
	PG_RETURN_BOOL(true);
}


/* only: a tenant kind, or -1 for all kinds. */
static const pg_uuid_t *
context_accessible(int only, int *count)
{
	const HlContext *ctx = current_context();

	*count = 0;
	if (ctx == NULL)
		return NULL;
	return HlTenantsAccessible(&ctx->tenant, ctx->kind, only, count);
}

/* NULL is never accessible. */
Datum
hlauth_can_access(PG_FUNCTION_ARGS)
{
	int			n;
	const pg_uuid_t *list;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	list = context_accessible(-1, &n);
	PG_RETURN_BOOL(list != NULL && n > 0 &&
				   bsearch(PG_GETARG_UUID_P(0), list, n, sizeof(pg_uuid_t), HlUuidCmp) != NULL);
}

/*
 * hlauth.accessible_tenants(kind text DEFAULT NULL, scope text DEFAULT NULL): the accessible
 * tenants of one kind ('agency', 'account', 'app'), or of every kind when NULL; none at all
 * when a scope is given and the principal's scopes do not grant it. protect()'s policies are
 * `tenant_column = ANY (hlauth.accessible_tenants(kind, scope))`: one index condition,
 * evaluated once per scan, with no per-row filter. An unknown kind reaches nothing (empty
 * array): this function never raises, so policies stay leakproof.
 */
Datum
hlauth_accessible_tenants(PG_FUNCTION_ARGS)
{
	int			only = -1;
	const HlContext *ctx;
	const ArrayType *cached;
	ArrayType  *result;

	if (PG_NARGS() > 0 && !PG_ARGISNULL(0))
	{
		text	   *kind = PG_GETARG_TEXT_PP(0);
		const char *k = VARDATA_ANY(kind);
		size_t		len = VARSIZE_ANY_EXHDR(kind);

		if (len == 6 && memcmp(k, "agency", 6) == 0)
			only = HL_TENANT_AGENCY;
		else if (len == 7 && memcmp(k, "account", 7) == 0)
			only = HL_TENANT_ACCOUNT;
		else if (len == 3 && memcmp(k, "app", 3) == 0)
			only = HL_TENANT_APP;
		else
			only = -2;
	}
	if (PG_NARGS() > 1 && !PG_ARGISNULL(1))
	{
		text	   *scope = PG_GETARG_TEXT_PP(1);

		if (!context_has_scope(VARDATA_ANY(scope), VARSIZE_ANY_EXHDR(scope)))
			only = -2;
	}
	ctx = current_context();
	if (only == -2 || ctx == NULL)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(UUIDOID));
	/*
	 * A policy calls this once per scan: copy the array embedded in the context (the usual
	 * case: the table's tenant kind is the principal's, and the tree has not changed since
	 * set_principal), or the one kept in the tenant cache.
	 */
	if (ctx->access_offset != 0 && only == (int) ctx->kind &&
		ctx->access_generation == HlTenantsGeneration())
		cached = (const ArrayType *) ((const char *) ctx + ctx->access_offset);
	else
		cached = HlTenantsAccessibleArray(&ctx->tenant, ctx->kind, only);
	result = (ArrayType *) palloc(VARSIZE(cached));
	memcpy(result, cached, VARSIZE(cached));
	PG_RETURN_ARRAYTYPE_P(result);
}

/* ---- for the other glue files ---- */

TimestampTz
HlNow(void)
{
	TimestampTz stmt = GetCurrentStatementStartTimestamp();
	TimestampTz xact = GetCurrentTransactionStartTimestamp();

	return Max(stmt, xact);
}

/* A method or token id goes into the published text form between ";": keep it plain. */
static bool
token_id_valid(const char *s, size_t max)
{
	size_t		i;

	for (i = 0; s[i] != '\0'; i++)
	{
		char		c = s[i];

		if (i + 1 >= max ||
			!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

void
HlContextEstablish(const pg_uuid_t *principal, const pg_uuid_t *tenant, const HlTenantPath *path,
				   const char *method, const char *token_id, const HlScopes *scopes,
				   const ArrayType *access, const pg_uuid_t *bound, int nbound)
{
	if (!token_id_valid(method, HL_METHOD_MAX) ||
		(token_id != NULL && !token_id_valid(token_id, HL_TOKEN_MAX)))
		elog(ERROR, "hlauth: invalid authentication method or token id");
	if (!path->active)
		elog(ERROR, "hlauth: cannot establish a context at an inactive tenant");
	context_set(context_build_access(principal, tenant, path, method, token_id, GetOuterUserId(),
									 scopes, false, access, bound, nbound));
}

PG_FUNCTION_INFO_V1(hlauth_context_key_bound);
/*
 * hlauth_internal.context_key_bound() RETURNS uuid[]: the bound of the API key the current
 * context was authenticated with (empty for another method), as read when the key was
 * verified; NULL without a context. Keys issued or rotated in this context inherit it
 * (hlauth_internal.key_bound). Taken from the context, not from hlauth.api_keys again: a
 * re-read under another snapshot could miss the row and lose the bound.
 */
Datum
hlauth_context_key_bound(PG_FUNCTION_ARGS)
{
	const HlContext *ctx = current_context();
	Datum	   *elems;
	int			i;

	if (ctx == NULL)
		PG_RETURN_NULL();
	if (IsParallelWorker())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("the bound of the context's API key is not available in a parallel worker")));
	elems = (Datum *) palloc(sizeof(Datum) * Max(ctx->nbound, 1));
	for (i = 0; i < ctx->nbound; i++)
		elems[i] = UUIDPGetDatum((pg_uuid_t *) ((const char *) ctx + ctx->bound_offset) + i);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, ctx->nbound, UUIDOID, UUID_LEN, false,
										  TYPALIGN_CHAR));
}

const pg_uuid_t *
HlContextPrincipal(void)
{
	const HlContext *ctx = current_context();

	return ctx ? &ctx->principal : NULL;
}

/* The key or token id of the current context, or NULL (set_principal, or no context). */
const char *
HlContextTokenId(void)
{
	const HlContext *ctx = current_context();

	return (ctx != NULL && ctx->token[0] != '\0') ? ctx->token : NULL;
}

const char *
HlContextMethod(void)
{
	const HlContext *ctx = current_context();

	return (ctx != NULL && ctx->method[0] != '\0') ? ctx->method : NULL;
}

const pg_uuid_t *
HlContextTenant(void)
{
	const HlContext *ctx = current_context();

	return ctx ? &ctx->tenant : NULL;
}

bool
HlContextIsSet(void)
{
	return current_context() != NULL;
}

bool
HlContextGrantsScope(const char *scope, size_t len)
{
	return context_has_scope(scope, len);
}
