/*
 * src/cascade.c
 *		Forced row-level security inside referential actions.
 *
 * PostgreSQL runs a foreign key's checks and actions (ON DELETE CASCADE, SET NULL, ...) as
 * the owner of the table they query, with forced row-level security switched off
 * (SECURITY_NOFORCE_RLS): they must see every row. Everything that runs inside such a
 * query inherits that mode: the referencing table's triggers, the functions in its
 * defaults, checks, domains and index expressions. So a table owner's trigger on a table of
 * its own with ON DELETE CASCADE used to read, and write, every tenant's rows of a protected
 * table it also owns.
 *
 * hlauth keeps the mode to where PostgreSQL needs it, the planning and executor start of
 * the referential query, which decide whether row-level security applies:
 *  - while any query is planned, or its executor runs (ExecutorRun, ExecutorFinish,
 *    ExecutorEnd), the mode is off, and back on when it returns or fails. All the code a
 *    query runs (triggers, defaults,
 *    checks, domains, index expressions, and whatever they call, however long ago their
 *    FmgrInfo was set up: a cursor, a cast cached by the foreign-key code, a range type's
 *    subtype_diff in the type cache) runs there;
 *  - every function that is not built in, when it is set up while the mode is on (the
 *    planner folding a constant expression of a default or a rule), runs with the mode off
 *    (the fmgr hooks; built-in functions never see them);
 *  - a query started while the mode is on that would read a table whose forced row-level
 *    security the mode switches off must look like the referential query: run through SPI
 *    with its AFTER triggers deferred (PostgreSQL's referential code is the only caller in
 *    core that does so for a data-modifying query), over one table and its partitions. Any
 *    other, such as the action of a rule on the referencing table, which PostgreSQL plans
 *    together with the referential query, is refused (42501).
 *
 * The hooks exist only in a backend that has loaded hlauth. A table owned by a role that is
 * not an hlauth admin is protected only when hlauth is preloaded (protect() checks, see
 * HlPreloaded): the owner's session would otherwise never load it.
 */
#include "hlauth.h"

#include "access/htup_details.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "optimizer/planner.h"
#include "tcop/dest.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

static needs_fmgr_hook_type prev_needs_fmgr_hook = NULL;
static fmgr_hook_type prev_fmgr_hook = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static planner_hook_type prev_planner = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;

/*
 * Per FmgrInfo of a wrapped function: whether each active call (innermost in the lowest
 * bit) switched the mode off, so that its end puts it back. Calls nest strictly; beyond 63
 * nested calls of the same FmgrInfo the mode is not put back, which only keeps it off.
 */
typedef struct HlCallState
{
	Datum		prev_private;	/* the previous hook's own state */
	uint64		cleared;
	int			depth;
} HlCallState;

static bool
hl_needs_fmgr_hook(Oid fn_oid)
{
	if (prev_needs_fmgr_hook && prev_needs_fmgr_hook(fn_oid))
		return true;
	return InNoForceRLSOperation();
}

static void
hl_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	HlCallState *st = (HlCallState *) DatumGetPointer(*private);
	Oid			user;
	int			sec;

	if (st == NULL)
	{
		st = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(HlCallState));
		*private = PointerGetDatum(st);
	}
	switch (event)
	{
		case FHET_START:
			if (prev_fmgr_hook)
				prev_fmgr_hook(event, flinfo, &st->prev_private);
			GetUserIdAndSecContext(&user, &sec);
			st->cleared <<= 1;
			st->depth++;
			if (sec & SECURITY_NOFORCE_RLS)
			{
				SetUserIdAndSecContext(user, sec & ~SECURITY_NOFORCE_RLS);
				st->cleared |= 1;
			}
			break;
		case FHET_END:
		case FHET_ABORT:
			if (st->depth > 0)
			{
				if (st->depth <= 63 && (st->cleared & 1))
				{
					GetUserIdAndSecContext(&user, &sec);
					SetUserIdAndSecContext(user, sec | SECURITY_NOFORCE_RLS);
				}
				st->cleared >>= 1;
				st->depth--;
			}
			if (prev_fmgr_hook)
				prev_fmgr_hook(event, flinfo, &st->prev_private);
			break;
	}
}

/*
 * Would this range-table entry's forced row-level security be switched off only by the
 * referential mode? (A relation with forced RLS, owned by the role the query checks as,
 * which does not bypass RLS anyway.)
 */
static bool
forced_rls_switched_off(RangeTblEntry *rte)
{
	HeapTuple	tuple;
	bool		forced;
	Oid			user;

	if (rte->rtekind != RTE_RELATION)
		return false;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(rte->relid));
	if (!HeapTupleIsValid(tuple))
		return false;
	forced = ((Form_pg_class) GETSTRUCT(tuple))->relrowsecurity &&
		((Form_pg_class) GETSTRUCT(tuple))->relforcerowsecurity;
	ReleaseSysCache(tuple);
	if (!forced)
		return false;
	user = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	return !has_bypassrls_privilege(user) && pg_class_ownercheck(rte->relid, user);
}

/* One table and its partitions, as PostgreSQL's referential queries read. */
static bool
single_table_tree(List *rtable)
{
	Oid			root = InvalidOid;
	ListCell   *lc;

	foreach(lc, rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind != RTE_RELATION)
			continue;
		if (!OidIsValid(root))
			root = rte->relid;
		else if (rte->relid != root &&
				 !list_member_oid(get_partition_ancestors(rte->relid), root))
			return false;
	}
	return true;
}

static void
hl_cascade_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (InNoForceRLSOperation() && !(eflags & EXEC_FLAG_EXPLAIN_ONLY))
	{
		List	   *rtable = queryDesc->plannedstmt->rtable;
		ListCell   *lc;

		foreach(lc, rtable)
		{
			RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

			if (!forced_rls_switched_off(rte))
				continue;
			if ((eflags & EXEC_FLAG_SKIP_TRIGGERS) && queryDesc->dest->mydest == DestSPI &&
				single_table_tree(rtable))
				break;			/* the referential query itself */
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied: table \"%s\" is read inside a foreign-key action",
							get_rel_name(rte->relid)),
					 errdetail("PostgreSQL switches forced row-level security off for its owner there; "
							   "only the foreign key's own query may read it that way."),
					 errhint("Do not query tables with forced row-level security from code that "
							 "runs inside a foreign-key action (built-in functions such as "
							 "query_to_xml() in a default, a check or an index expression).")));
		}
	}
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/*
 * Run fn(arg) with the mode off, and put it back when fn returns or fails. Whether
 * row-level security applies is decided when a query is rewritten and its executor starts;
 * the planner and the executor's run, finish and end run code (triggers, defaults, checks,
 * domains, index expressions, selectivity estimates, and whatever functions they call,
 * however long ago their FmgrInfo was set up), and there the mode is off.
 */
static void
without_noforce(void (*fn) (void *), void *arg)
{
	Oid			user;
	int			sec;

	GetUserIdAndSecContext(&user, &sec);
	if (likely(!(sec & SECURITY_NOFORCE_RLS)))
	{
		fn(arg);
		return;
	}
	SetUserIdAndSecContext(user, sec & ~SECURITY_NOFORCE_RLS);
	PG_TRY();
	{
		fn(arg);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(user, sec);
	}
	PG_END_TRY();
}

typedef struct PlannerCall
{
	Query	   *parse;
	const char *query_string;
	int			cursorOptions;
	ParamListInfo boundParams;
	PlannedStmt *result;
} PlannerCall;

static void
call_planner(void *arg)
{
	PlannerCall *c = arg;

	c->result = (prev_planner ? prev_planner : standard_planner)
		(c->parse, c->query_string, c->cursorOptions, c->boundParams);
}

static PlannedStmt *
hl_cascade_planner(Query *parse, const char *query_string, int cursorOptions,
				   ParamListInfo boundParams)
{
	PlannerCall c = {parse, query_string, cursorOptions, boundParams, NULL};

	without_noforce(call_planner, &c);
	return c.result;
}

typedef struct RunCall
{
	QueryDesc  *queryDesc;
	ScanDirection direction;
	uint64		count;
	bool		execute_once;
} RunCall;

static void
call_run(void *arg)
{
	RunCall    *c = arg;

	(prev_ExecutorRun ? prev_ExecutorRun : standard_ExecutorRun)
		(c->queryDesc, c->direction, c->count, c->execute_once);
}

static void
hl_cascade_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
					   bool execute_once)
{
	RunCall		c = {queryDesc, direction, count, execute_once};

	without_noforce(call_run, &c);
}

static void
call_finish(void *queryDesc)
{
	(prev_ExecutorFinish ? prev_ExecutorFinish : standard_ExecutorFinish) (queryDesc);
}

static void
hl_cascade_ExecutorFinish(QueryDesc *queryDesc)
{
	without_noforce(call_finish, queryDesc);
}

static void
call_end(void *queryDesc)
{
	(prev_ExecutorEnd ? prev_ExecutorEnd : standard_ExecutorEnd) (queryDesc);
}

static void
hl_cascade_ExecutorEnd(QueryDesc *queryDesc)
{
	without_noforce(call_end, queryDesc);
}

/* Is hlauth in shared_preload_libraries or session_preload_libraries? */
bool
HlPreloaded(void)
{
	static const char *const settings[] = {"shared_preload_libraries", "session_preload_libraries"};

	for (size_t i = 0; i < lengthof(settings); i++)
	{
		const char *value = GetConfigOption(settings[i], true, false);
		char	   *raw;
		List	   *names;
		ListCell   *lc;

		if (value == NULL || value[0] == '\0')
			continue;
		raw = pstrdup(value);
		if (!SplitDirectoriesString(raw, ',', &names))
			continue;
		foreach(lc, names)
		{
			const char *name = lfirst(lc);
			const char *base = strrchr(name, '/');
			size_t		len;

			base = base ? base + 1 : name;
			len = strlen(base);
			if (len > 3 && strcmp(base + len - 3, ".so") == 0)
				len -= 3;
			if (len == 6 && strncmp(base, "hlauth", 6) == 0)
				return true;
		}
	}
	return false;
}

void
HlCascadeInit(void)
{
	prev_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = hl_needs_fmgr_hook;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = hl_fmgr_hook;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = hl_cascade_ExecutorStart;
	prev_planner = planner_hook;
	planner_hook = hl_cascade_planner;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = hl_cascade_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = hl_cascade_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = hl_cascade_ExecutorEnd;
}
