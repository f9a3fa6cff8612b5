/*
 * src/protect.c
 *		The C side of hlauth.protect(): the entry point that checks the caller before the
 *		body runs with superuser rights, the triggers it puts on protected tables, and the
 *		helper that protects new partitions.
 *
 * This file must never run protect_impl for a caller who neither owns the table nor is
 * hlauth_admin, and never let a write through without a principal.
 */
#include "hlauth.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_partitioned_table.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_range.h"
#include "catalog/pg_statistic_ext.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_func.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(hlauth_require_context_trigger);
PG_FUNCTION_INFO_V1(hlauth_refuse_truncate_trigger);
PG_FUNCTION_INFO_V1(hlauth_is_admin);
PG_FUNCTION_INFO_V1(hlauth_protect_new_partitions);
PG_FUNCTION_INFO_V1(hlauth_protect);

/*
 * True while hlauth.protect() or the partition helper runs: the DDL they issue fires the
 * event triggers again, and the partition helper must not start a second protect() of a
 * table that is being protected.
 */
static bool protect_in_progress = false;

/*
 * True while the partition helper protects the new partitions and children of protected
 * tables (after an ATTACH PARTITION, a CREATE TABLE ... PARTITION OF): an admin who attaches
 * a table has not reviewed it as an explicit protect() would, so a table a non-admin owns is
 * judged as if its owner protected it (a twentieth red-team pass: an admin's ATTACH kept the
 * owner's trigger on a staging table, which then copied every tenant's rows routed there).
 */
static bool protect_implicit = false;

/* ---- guards on protected tables ---- */

static void
require_trigger(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as a trigger", name)));
}

/*
 * Statement trigger on protected tables: no write without a principal, and none without
 * the table's write scope (the trigger's argument) when it has one. Policies would only
 * make such writes silently affect zero rows; this makes them fail, loudly.
 */
Datum
hlauth_require_context_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *table;

	require_trigger(fcinfo, "hlauth_internal.require_context()");
	table = RelationGetRelationName(trigdata->tg_relation);

	/* Roles that bypass row-level security bypass its write guard too (they are not isolated). */
	if (has_bypassrls_privilege(GetUserId()))
		PG_RETURN_POINTER(NULL);
	if (!HlContextIsSet())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: no principal is authenticated in this transaction"),
				 errdetail("Writes to table \"%s\", protected by hlauth, need a principal context.", table),
				 errhint("Call hlauth.set_principal() or authenticate at the start of the transaction.")));
	if (trigdata->tg_trigger->tgnargs > 0)
	{
		const char *scope = trigdata->tg_trigger->tgargs[0];

		if (!HlContextGrantsScope(scope, strlen(scope)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied: scope \"%s\" is required to write to table \"%s\"",
							scope, table),
					 errdetail("The current principal's scopes do not grant it.")));
	}
	PG_RETURN_POINTER(NULL);
}

/*
 * A table owned by a role that is not an hlauth admin is protected only where hlauth is
 * preloaded: PostgreSQL switches forced row-level security off for the owner inside
 * foreign-key actions, and only hlauth's hooks (cascade.c) keep the owner's code there
 * under it, in the sessions that have loaded hlauth. The owner's own sessions must have.
 */
void
HlRequirePreloadForOwner(Oid relid, Oid owner)
{
	if (HlRoleIsAdmin(owner) || HlPreloaded())
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("hlauth must be preloaded to protect table \"%s\", owned by role \"%s\", which is not an hlauth admin",
					get_rel_name(relid), GetUserNameFromId(owner, false)),
			 errdetail("PostgreSQL switches forced row-level security off for a table's owner inside "
					   "foreign-key actions; hlauth keeps the owner's code there under row-level "
					   "security only in sessions that have loaded it."),
			 errhint("Add hlauth to session_preload_libraries (ALTER SYSTEM or ALTER DATABASE ... SET "
					 "session_preload_libraries = 'hlauth') and reconnect, or have an hlauth_admin "
					 "own the table.")));
}

/* Is the table registered as protected (a row in hlauth_internal.protected_tables)? */
bool
HlRelationIsProtected(Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	bool		found;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT 1 FROM hlauth_internal.protected_tables pt "
							  "WHERE pt.relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read hlauth_internal.protected_tables");
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

/*
 * The same, as committed now rather than as the statement's snapshot saw it: a command that
 * waited for its lock started before protect() committed.
 */
bool
HlRelationIsProtectedNow(Oid relid)
{
	bool		found;

	/* (An error leaves the snapshot to the (sub)transaction's abort, which pops it.) */
	PushActiveSnapshot(GetLatestSnapshot());
	found = HlRelationIsProtected(relid);
	PopActiveSnapshot();
	return found;
}

/*
 * A digest of the registry (its tables and their fingerprints) as the active snapshot sees it.
 */
static void
registry_digest(Snapshot snapshot, int64 *count, int64 *digest)
{
	bool		isnull;

	PushActiveSnapshot(snapshot);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT pg_catalog.count(*)::pg_catalog.int8,"
					" COALESCE(pg_catalog.bit_xor(pg_catalog.hashtextextended("
					"  pt.relid::pg_catalog.oid::pg_catalog.text OPERATOR(pg_catalog.||) ':'"
					"  OPERATOR(pg_catalog.||) COALESCE(pt.fingerprint, ''), 0)), 0)"
					" FROM hlauth_internal.protected_tables pt", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read hlauth_internal.protected_tables");
	*count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*digest = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	SPI_finish();
	PopActiveSnapshot();
}

/*
 * Under a transaction snapshot (REPEATABLE READ, SERIALIZABLE), refuse (40001) when the
 * registry changed since it was taken: a table protected after it looked unprotected to the
 * DDL guard's checks, which read the registry with it (a twentieth red-team pass turned
 * row-level security off on a table protected after the snapshot, and dropped its policies).
 */
void
HlRefuseStaleRegistry(void)
{
	int64		count_then,
				digest_then,
				count_now,
				digest_now;

	if (!IsolationUsesXactSnapshot() || !FirstSnapshotSet)
		return;
	registry_digest(GetTransactionSnapshot(), &count_then, &digest_then);
	registry_digest(GetLatestSnapshot(), &count_now, &digest_now);
	if (count_then != count_now || digest_then != digest_now)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to a concurrent change of the tables hlauth protects"),
				 errdetail("A table was protected, unprotected or had its protection changed after this transaction's snapshot was taken."),
				 errhint("Retry the transaction.")));
}

PG_FUNCTION_INFO_V1(hlauth_refuse_stale_registry);
Datum
hlauth_refuse_stale_registry(PG_FUNCTION_ARGS)
{
	HlRefuseStaleRegistry();
	PG_RETURN_VOID();
}

/*
 * Built-in functions that run a query given as text (or read a whole table or schema): what
 * they run is not theirs, so a default calling one counts as code of unknown owner.
 */
static bool
runs_a_query(Oid funcid)
{
	switch (funcid)
	{
		case F_QUERY_TO_XML:
		case F_QUERY_TO_XMLSCHEMA:
		case F_QUERY_TO_XML_AND_XMLSCHEMA:
		case F_CURSOR_TO_XML:
		case F_CURSOR_TO_XMLSCHEMA:
		case F_TABLE_TO_XML:
		case F_TABLE_TO_XMLSCHEMA:
		case F_TABLE_TO_XML_AND_XMLSCHEMA:
		case F_SCHEMA_TO_XML:
		case F_SCHEMA_TO_XMLSCHEMA:
		case F_SCHEMA_TO_XML_AND_XMLSCHEMA:
		case F_DATABASE_TO_XML:
		case F_DATABASE_TO_XMLSCHEMA:
		case F_DATABASE_TO_XML_AND_XMLSCHEMA:
		case F_TS_STAT_TEXT:
		case F_TS_STAT_TEXT_TEXT:
		case F_TS_REWRITE_TSQUERY_TEXT:
			return true;
		default:
			return false;
	}
}

/* Is the function owned by a role that is not an hlauth admin, or one that runs a query? */
static bool
function_not_admins(Oid funcid, void *context)
{
	HeapTuple	tup;
	Oid			owner;

	if (runs_a_query(funcid))
		return true;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tup))
		return true;
	owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	ReleaseSysCache(tup);
	return !HlRoleIsAdmin(owner);
}

/*
 * Volatile built-ins a default may call: they make a value and change nothing a tenant's
 * session would carry on with. Any other volatile function is refused in a non-admin's
 * default, even an admin's: set_config('search_path', ...) would leave the tenant's session
 * resolving names to the owner's functions, hlauth.set_principal() would move the tenant's
 * next writes to a tenant of the owner's choosing.
 */
static bool
volatile_allowed_in_default(Oid funcid)
{
	switch (funcid)
	{
		case F_NEXTVAL:
		case F_GEN_RANDOM_UUID:
		case F_RANDOM:
		case F_CLOCK_TIMESTAMP:
		case F_STATEMENT_TIMESTAMP:
		case F_TIMEOFDAY:
			return true;
		default:
			return false;
	}
}

/* function_not_admins, or a volatile function other than those a default may call */
static bool
function_not_for_defaults(Oid funcid, void *context)
{
	if (function_not_admins(funcid, context))
		return true;
	return func_volatile(funcid) == PROVOLATILE_VOLATILE && !volatile_allowed_in_default(funcid);
}

/*
 * Does pred hold for the type and for every type it is built on (a domain's base, an
 * array's element, a composite's attributes, a range's subtype, a multirange's range)?
 */
static bool
type_all_walk(Oid typid, bool (*pred) (Form_pg_type), int depth, List **seen)
{
	HeapTuple	tup;
	Form_pg_type typ;
	bool		ok;

	CHECK_FOR_INTERRUPTS();
	if (depth > 20)
		return false;			/* deeper than any sane type: assume the worst */
	if (list_member_oid(*seen, typid))
		return true;			/* walked already, all of it passed */
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		return false;
	typ = (Form_pg_type) GETSTRUCT(tup);
	ok = pred(typ);
	if (ok && typ->typtype == TYPTYPE_DOMAIN)
		ok = type_all_walk(typ->typbasetype, pred, depth + 1, seen);
	else if (ok && OidIsValid(typ->typelem) && IsTrueArrayType(typ))
		ok = type_all_walk(typ->typelem, pred, depth + 1, seen);
	else if (ok && typ->typtype == TYPTYPE_COMPOSITE && OidIsValid(typ->typrelid) &&
			 typ->typrelid >= FirstNormalObjectId)
	{
		Relation	rel = relation_open(typ->typrelid, AccessShareLock);
		TupleDesc	desc = RelationGetDescr(rel);

		for (int i = 0; i < desc->natts && ok; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			ok = att->attisdropped || type_all_walk(att->atttypid, pred, depth + 1, seen);
		}
		relation_close(rel, AccessShareLock);
	}
	else if (ok && typ->typtype == TYPTYPE_RANGE)
		ok = type_all_walk(get_range_subtype(typid), pred, depth + 1, seen);
	else if (ok && typ->typtype == TYPTYPE_MULTIRANGE)
		ok = type_all_walk(get_multirange_range(typid), pred, depth + 1, seen);
	ReleaseSysCache(tup);
	if (ok)
		*seen = lappend_oid(*seen, typid);
	return ok;
}

/*
 * Each type is walked once per call (a type used by many attributes, or many times over, as
 * in nested composites each holding several of the one below, would otherwise be walked
 * once per path: a red-team pass made that 8^18 walks, which nothing could cancel).
 */
static bool
type_all(Oid typid, bool (*pred) (Form_pg_type), int depth)
{
	List	   *seen = NIL;
	bool		ok = type_all_walk(typid, pred, depth, &seen);

	list_free(seen);
	return ok;
}

static bool
owned_by_admins(Form_pg_type typ)
{
	return HlRoleIsAdmin(typ->typowner);
}

/*
 * A base type's code is its C functions, which only a superuser can set; an enum has none
 * (ALTER TYPE ... ADD VALUE adds labels). Either is sealed whoever owns it; any other type
 * only when an admin owns it, so that only an admin can give it code later (ALTER DOMAIN ...
 * ADD CONSTRAINT, ALTER TYPE ... ADD ATTRIBUTE). Built-in types are the bootstrap
 * superuser's.
 */
static bool
sealed(Form_pg_type typ)
{
	return typ->typtype == TYPTYPE_BASE || typ->typtype == TYPTYPE_ENUM ||
		typ->typtype == TYPTYPE_PSEUDO || owned_by_admins(typ);
}

static bool
runs_non_admin_code_walker(Node *node, void *context)
{
	Oid			type;

	if (node == NULL)
		return false;
	if (check_functions_in_node(node, function_not_for_defaults, context))
		return true;
	/*
	 * Every value the expression makes has a type only an admin can change: a non-admin's
	 * domain could get a check later, or be cast into by a built-in (a record populated
	 * from JSON), and run its code then.
	 */
	if (!IsA(node, List) && OidIsValid(type = exprType(node)) && !type_all(type, sealed, 0))
		return true;
	return expression_tree_walker(node, runs_non_admin_code_walker, context);
}

/*
 * Does the (cooked) expression, as a default a non-admin set, run code that is not an hlauth
 * admin's, now or after a later change by its owner, or change the inserting session? That
 * is: a call of a function (or an operator's function) owned by a non-admin, of a built-in
 * that runs a query given as text, or of a volatile function other than those that only
 * make a value (volatile_allowed_in_default); or a value of a type that is not sealed
 * (sealed). Built-in functions and types, and hlauth's, are the bootstrap superuser's.
 */
bool
HlExprRunsNonAdminCode(Node *expr)
{
	return runs_non_admin_code_walker(expr, NULL);
}

/*
 * Does the column's default (its own, else its domain's) run such code? The coercion to the
 * column's own type is left out: the column's type is watched as a column type (ADD COLUMN,
 * protect(), ALTER DOMAIN on a domain a protected column uses).
 */
bool
HlColumnDefaultRunsNonAdminCode(Relation rel, AttrNumber attnum)
{
	Node	   *def = build_column_default(rel, attnum);

	if (def != NULL && IsA(def, CoerceToDomain) &&
		((CoerceToDomain *) def)->resulttype == TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid)
		def = (Node *) ((CoerceToDomain *) def)->arg;
	return HlExprRunsNonAdminCode(def);
}

/*
 * Does a value of this type itself run no code of a non-admin's? A domain's CHECK
 * constraints and its default (if it calls such code), and a range's subtype_diff (any
 * function its maker wrote: GiST calls it on every tenant's writes, ANALYZE on every
 * tenant's values; a range's canonical function is C) are such code.
 */
static bool
no_own_code(Form_pg_type typ)
{
	bool		code = false;

	if (typ->typtype == TYPTYPE_DOMAIN)
	{
		Relation	conrel = table_open(ConstraintRelationId, AccessShareLock);
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	con;
		HeapTuple	tup;

		ScanKeyInit(&key, Anum_pg_constraint_contypid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(typ->oid));
		scan = systable_beginscan(conrel, ConstraintTypidIndexId, true, NULL, 1, &key);
		while (HeapTupleIsValid(con = systable_getnext(scan)))
			code |= ((Form_pg_constraint) GETSTRUCT(con))->contype == CONSTRAINT_CHECK;
		systable_endscan(scan);
		table_close(conrel, AccessShareLock);
		tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typ->oid));
		if (!code && HeapTupleIsValid(tup))
		{
			bool		isnull;
			Datum		def = SysCacheGetAttr(TYPEOID, tup, Anum_pg_type_typdefaultbin, &isnull);

			code = !isnull && HlExprRunsNonAdminCode(stringToNode(TextDatumGetCString(def)));
		}
		if (HeapTupleIsValid(tup))
			ReleaseSysCache(tup);
	}
	else if (typ->typtype == TYPTYPE_RANGE)
	{
		HeapTuple	rng = SearchSysCache1(RANGETYPE, ObjectIdGetDatum(typ->oid));

		if (HeapTupleIsValid(rng))
		{
			Oid			subdiff = ((Form_pg_range) GETSTRUCT(rng))->rngsubdiff;

			code = OidIsValid(subdiff) && function_not_admins(subdiff, NULL);
			ReleaseSysCache(rng);
		}
	}
	return !code;
}

/*
 * Is the type, and every type it is built on, owned by an hlauth admin? A type's owner may
 * create a cast from it to json, which to_jsonb() calls: the audit trigger renders values of
 * other types with their output functions instead.
 */
bool
HlTypeOwnedByAdmins(Oid typid)
{
	return type_all(typid, owned_by_admins, 0);
}

/*
 * Do values of the type run a non-admin's code: its own (no_own_code), or that of a type it
 * is built on (a domain's base, an array's element, a composite's attribute, a range's
 * subtype, a multirange's range)?
 */
bool
HlTypeRunsNonAdminCode(Oid typid)
{
	return OidIsValid(typid) && !type_all(typid, no_own_code, 0);
}

/*
 * The recursive walk from a type to the types built on it (a domain over it, an array of it,
 * a composite type with an attribute of it, a range or multirange over it): d(oid).
 */
#define TYPES_BUILT_ON \
	"WITH RECURSIVE edge(child, parent) AS (" \
	" SELECT t.oid, t.typbasetype FROM pg_catalog.pg_type t" \
	"  WHERE t.typtype OPERATOR(pg_catalog.=) 'd'" \
	" UNION ALL SELECT t.oid, t.typelem FROM pg_catalog.pg_type t" \
	"  WHERE t.typelem OPERATOR(pg_catalog.<>) 0" \
	" UNION ALL SELECT c.reltype, a.atttypid FROM pg_catalog.pg_attribute a" \
	"  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid" \
	"  WHERE c.relkind OPERATOR(pg_catalog.=) 'c' AND NOT a.attisdropped" \
	" UNION ALL SELECT r.rngtypid, r.rngsubtype FROM pg_catalog.pg_range r" \
	" UNION ALL SELECT r.rngmultitypid, r.rngtypid FROM pg_catalog.pg_range r)," \
	" d(oid) AS (SELECT $1 UNION" \
	"  SELECT e.child FROM edge e JOIN d ON e.parent OPERATOR(pg_catalog.=) d.oid)"

/*
 * The first table the query (with $1 = typid, returning schema and table names) finds, as a
 * RangeVar, or NULL; as committed now, not as the statement's snapshot saw it (a command
 * that waited for a lock started before protect() committed; REPEATABLE READ).
 */
static RangeVar *
protected_table_found(const char *query, Oid typid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(typid)};
	RangeVar   *result = NULL;
	MemoryContext caller = CurrentMemoryContext;

	PushActiveSnapshot(GetLatestSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(query, 1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read hlauth_internal.protected_tables");
	if (SPI_processed > 0)
	{
		char	   *nsp = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		char	   *rel = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		MemoryContext spi = MemoryContextSwitchTo(caller);

		result = makeRangeVar(pstrdup(nsp), pstrdup(rel), -1);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	PopActiveSnapshot();
	return result;
}

/*
 * A protected table with a column of type typid, or of a type built on it (a domain over
 * it, an array, a composite type with an attribute of it, a range), as a RangeVar, or NULL.
 */
RangeVar *
HlProtectedTableUsingType(Oid typid)
{
	return protected_table_found(TYPES_BUILT_ON
								 " SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text"
								 " FROM pg_catalog.pg_attribute a JOIN d ON a.atttypid OPERATOR(pg_catalog.=) d.oid"
								 " JOIN hlauth_internal.protected_tables pt"
								 "  ON pt.relid::pg_catalog.oid OPERATOR(pg_catalog.=) a.attrelid"
								 " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid"
								 " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
								 " WHERE NOT a.attisdropped LIMIT 1",
								 typid);
}

/*
 * A protected typed table of the composite type typid (CREATE TABLE ... OF, ALTER TABLE ...
 * OF), or NULL: ALTER TYPE ... CASCADE changes such a table's columns.
 */
RangeVar *
HlProtectedTableOfType(Oid typid)
{
	return protected_table_found("SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text"
								 " FROM pg_catalog.pg_class c JOIN hlauth_internal.protected_tables pt"
								 "  ON pt.relid::pg_catalog.oid OPERATOR(pg_catalog.=) c.oid"
								 " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
								 " WHERE c.reloftype OPERATOR(pg_catalog.=) $1 LIMIT 1",
								 typid);
}

/*
 * Lock (ACCESS SHARE, until the end of the transaction) every table with a column of type
 * typid or of a type built on it, and every typed table of it. A change to the type that did
 * not lock them itself (ALTER DOMAIN ... SET DEFAULT, a check on a domain an array column
 * holds, ALTER TYPE ... ADD ATTRIBUTE) then waits for a protect() of one of them to commit
 * before it is judged, and a protect() that comes later waits for the change to commit and
 * sees it.
 */
void
HlLockTablesUsingType(Oid typid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(typid)};
	List	   *relids = NIL;
	ListCell   *lc;
	MemoryContext caller = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(TYPES_BUILT_ON
							  " SELECT a.attrelid FROM pg_catalog.pg_attribute a"
							  " JOIN d ON a.atttypid OPERATOR(pg_catalog.=) d.oid"
							  " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid"
							  " WHERE NOT a.attisdropped AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}')"
							  " UNION SELECT c.oid FROM pg_catalog.pg_class c"
							  " WHERE c.reloftype OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_attribute");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			MemoryContext spi = MemoryContextSwitchTo(caller);

			relids = lappend_oid(relids, DatumGetObjectId(d));
			MemoryContextSwitchTo(spi);
		}
	}
	SPI_finish();
	foreach(lc, relids)
		LockRelationOid(lfirst_oid(lc), AccessShareLock);
	list_free(relids);
}

/*
 * What would make protect() refuse a non-admin's table: with findings NULL, an error (42501)
 * at the first; otherwise each is added to *findings (hlauth.review_protection()).
 */
static void
finding(List **findings, char *what, const char *detail, const char *hint)
{
	if (findings == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: %s", what),
				 errdetail_internal("%s", detail),
				 errhint("%s", hint)));
	*findings = lappend(*findings, what);
}

/*
 * A foreign key of the table (or of one of its partitions or children) with an action (ON
 * DELETE / ON UPDATE CASCADE, SET NULL, SET DEFAULT) on a table that is not protected: who
 * changes that table deletes or rewrites every tenant's rows that reference it, as
 * PostgreSQL runs the action without row-level security. After protect(), only an
 * hlauth_admin may add a foreign key (the DDL guard); one made before needs its review too.
 */
static void
refuse_foreign_key_actions(Oid relid, List **findings)
{
	List	   *rels = find_all_inheritors(relid, NoLock, NULL);
	Relation	conrel = table_open(ConstraintRelationId, AccessShareLock);
	ListCell   *lc;

	foreach(lc, rels)
	{
		Oid			rel = lfirst_oid(lc);
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tup;

		ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(rel));
		scan = systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true, NULL, 1, &key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
			bool		acts;

			if (con->contype != CONSTRAINT_FOREIGN)
				continue;
			acts = (con->confupdtype != FKCONSTR_ACTION_NOACTION &&
					con->confupdtype != FKCONSTR_ACTION_RESTRICT) ||
				(con->confdeltype != FKCONSTR_ACTION_NOACTION &&
				 con->confdeltype != FKCONSTR_ACTION_RESTRICT);
			if (acts && con->confrelid != relid && !list_member_oid(rels, con->confrelid) &&
				!HlRelationIsProtected(con->confrelid))
				finding(findings,
						psprintf("table %s has foreign key %s with an action on table %s, which is not protected",
								 get_rel_name(rel), NameStr(con->conname), get_rel_name(con->confrelid)),
						"Who changes that table would delete or rewrite every tenant's rows that reference it.",
						psprintf("Protect table %s first, or ask an hlauth_admin to review the foreign key and run hlauth.protect().",
								 get_rel_name(con->confrelid)));
		}
		systable_endscan(scan);
	}
	table_close(conrel, AccessShareLock);
}

/*
 * A column (of the table, or of one of its partitions or children) whose type runs a
 * non-admin's code (a domain's check or default, a range's subtype_diff), or whose default
 * does: it runs over every value written or inside every insert, like a CHECK constraint
 * or a trigger, which protect() refuses a non-admin too.
 */
static void
refuse_code_in_columns(Oid relid, List **findings)
{
	List	   *rels = find_all_inheritors(relid, AccessShareLock, NULL);
	ListCell   *lc;

	foreach(lc, rels)
	{
		Relation	rel = table_open(lfirst_oid(lc), NoLock);
		TupleDesc	desc = RelationGetDescr(rel);

		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (att->attisdropped)
				continue;
			if (HlTypeRunsNonAdminCode(att->atttypid))
				finding(findings,
						psprintf("table %s has column %s of a type that runs a non-admin's code",
								 RelationGetRelationName(rel), NameStr(att->attname)),
						"It would run its code over every tenant's rows or writes once the table is protected.",
						"Ask an hlauth_admin to review it and run hlauth.protect().");
			if (att->atthasdef && att->attgenerated == '\0' &&
				HlColumnDefaultRunsNonAdminCode(rel, att->attnum))
				finding(findings,
						psprintf("table %s has column %s with a default calling a non-admin's function",
								 RelationGetRelationName(rel), NameStr(att->attname)),
						"It would run inside every tenant's inserts once the table is protected.",
						"Ask an hlauth_admin to review it and run hlauth.protect().");
		}
		table_close(rel, NoLock);
	}
}

/*
 * A partition key expression runs over every tenant's rows (routing each insert, checking
 * a default partition's rows when a partition is added): like an expression index, an
 * owner's table with one needs an hlauth_admin's review. (protect_impl refuses the other
 * kinds of such code; new partitions come through protect() too.)
 */
static void
refuse_partition_expressions(Oid relid, List **findings)
{
	HeapTuple	tup = SearchSysCache1(PARTRELID, ObjectIdGetDatum(relid));
	bool		isnull;

	if (!HeapTupleIsValid(tup))
		return;
	(void) SysCacheGetAttr(PARTRELID, tup, Anum_pg_partitioned_table_partexprs, &isnull);
	ReleaseSysCache(tup);
	if (!isnull)
		finding(findings, psprintf("table %s has a partition key expression", get_rel_name(relid)),
				"It would run its code over every tenant's rows or writes once the table is protected.",
				"Ask an hlauth_admin to review it and run hlauth.protect().");
}

/*
 * An extended statistics object on expressions: ANALYZE (autovacuum's too) evaluates them
 * over every tenant's rows. The DDL guard refuses CREATE STATISTICS on a protected table to
 * non-admins; one made before protect() was not checked (a red-team pass).
 */
static void
refuse_statistics_expressions(Oid relid, List **findings)
{
	List	   *rels = find_all_inheritors(relid, NoLock, NULL);
	Relation	stxrel = table_open(StatisticExtRelationId, AccessShareLock);
	ListCell   *lc;

	foreach(lc, rels)
	{
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tup;

		ScanKeyInit(&key, Anum_pg_statistic_ext_stxrelid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(lfirst_oid(lc)));
		scan = systable_beginscan(stxrel, StatisticExtRelidIndexId, true, NULL, 1, &key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			if (!heap_attisnull(tup, Anum_pg_statistic_ext_stxexprs, NULL))
				finding(findings,
						psprintf("table %s has statistics object %s on expressions",
								 get_rel_name(lfirst_oid(lc)),
								 NameStr(((Form_pg_statistic_ext) GETSTRUCT(tup))->stxname)),
						"ANALYZE would evaluate its expressions over every tenant's rows once the table is protected.",
						"Ask an hlauth_admin to review it and run hlauth.protect().");
		}
		systable_endscan(scan);
	}
	table_close(stxrel, AccessShareLock);
}

/*
 * Foreign keys from tables that are not protected into this one: each insert there tells
 * whether a key exists in any tenant's rows (and locks it). The DDL guard refuses new ones
 * to non-admins; one made before protect() (or under 0.1.0) is only reported.
 */
static void
report_inbound_foreign_keys(Oid relid, List **findings)
{
	Relation	conrel = table_open(ConstraintRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(conrel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tup;

	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);

		if (con->contype == CONSTRAINT_FOREIGN && con->confrelid == relid &&
			con->conrelid != relid && !HlRelationIsProtected(con->conrelid))
			*findings = lappend(*findings,
								psprintf("table %s, which is not protected, has foreign key %s into it",
										 get_rel_name(con->conrelid), NameStr(con->conname)));
	}
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);
}

/*
 * hlauth.review_protection() RETURNS TABLE (tbl regclass, finding text)
 * For each protected table owned by a non-admin, what protect() would now refuse it for
 * (kept from before protect() refused it, or from 0.1.0), and foreign keys into it from
 * tables that are not protected. For hlauth_admin: ALTER EXTENSION ... UPDATE prints the
 * same as warnings.
 */
PG_FUNCTION_INFO_V1(hlauth_review_protection);
Datum
hlauth_review_protection(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	registry;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			registry_relid;

	if (!HlCurrentRoleIsAdmin())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to review the protection of tables"),
				 errhint("Only hlauth_admin may.")));
	InitMaterializedSRF(fcinfo, 0);
	registry_relid = get_relname_relid("protected_tables", get_namespace_oid("hlauth_internal", false));
	if (!OidIsValid(registry_relid))
		elog(ERROR, "hlauth_internal.protected_tables is missing");
	registry = table_open(registry_relid, AccessShareLock);
	scan = systable_beginscan(registry, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(heap_getattr(tup, 1, RelationGetDescr(registry), &isnull));
		HeapTuple	ctup;
		Oid			owner;
		List	   *findings = NIL;
		ListCell   *lc;

		if (isnull)
			continue;
		ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		if (!HeapTupleIsValid(ctup))
			continue;
		owner = ((Form_pg_class) GETSTRUCT(ctup))->relowner;
		ReleaseSysCache(ctup);
		if (!HlRoleIsAdmin(owner))
		{
			refuse_partition_expressions(relid, &findings);
			refuse_statistics_expressions(relid, &findings);
			refuse_foreign_key_actions(relid, &findings);
			refuse_code_in_columns(relid, &findings);
		}
		report_inbound_foreign_keys(relid, &findings);
		foreach(lc, findings)
		{
			Datum		values[2];
			bool		nulls[2] = {false, false};

			values[0] = ObjectIdGetDatum(relid);
			values[1] = CStringGetTextDatum((char *) lfirst(lc));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	systable_endscan(scan);
	table_close(registry, AccessShareLock);
	return (Datum) 0;
}

/* Is the role a superuser or a member of hlauth_admin? */
bool
HlRoleIsAdmin(Oid role)
{
	Oid			admin = get_role_oid("hlauth_admin", true);

	return superuser_arg(role) || (OidIsValid(admin) && has_privs_of_role(role, admin));
}

bool
HlCurrentRoleIsAdmin(void)
{
	return HlRoleIsAdmin(GetUserId());
}

Datum
hlauth_is_admin(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(HlCurrentRoleIsAdmin());
}

/*
 * Is the session's role (the one SET ROLE chose, which SECURITY DEFINER functions do not
 * change) a superuser or a member of hlauth_admin? For SECURITY DEFINER functions that
 * must know who called them. Never inside a security-restricted operation: there the
 * session role is whoever maintains a table (autovacuum's is the bootstrap superuser),
 * while the code running is the table owner's (an index expression, a materialized view).
 */
bool
HlSessionRoleIsAdmin(void)
{
	return !InSecurityRestrictedOperation() && HlRoleIsAdmin(GetOuterUserId());
}

/*
 * May the DDL guard (guard_protection) record a change of a table's protection as an
 * admin's? Only when both the current role and the session's role are admins: a
 * non-admin's protect() runs its DDL as the bootstrap superuser, and a change the owner had
 * made to another protected table was recorded as an admin's there (a twentieth red-team
 * pass). protect()'s own DDL is not judged at all (protect_in_progress).
 */
PG_FUNCTION_INFO_V1(hlauth_accepts_protection_changes);
Datum
hlauth_accepts_protection_changes(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(HlCurrentRoleIsAdmin() && HlSessionRoleIsAdmin());
}

PG_FUNCTION_INFO_V1(hlauth_protect_in_progress);
Datum
hlauth_protect_in_progress(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(protect_in_progress);
}

PG_FUNCTION_INFO_V1(hlauth_session_role);
/* The session's role (the one SET ROLE chose), for the record of who did something. */
Datum
hlauth_session_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(DirectFunctionCall1(namein,
										CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false))));
}


/* TRUNCATE ignores row-level security: on a protected table only hlauth_admin may run it. */
Datum
hlauth_refuse_truncate_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	require_trigger(fcinfo, "hlauth_internal.refuse_truncate()");
	if (!HlCurrentRoleIsAdmin())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: TRUNCATE of table \"%s\", protected by hlauth",
						RelationGetRelationName(trigdata->tg_relation)),
				 errdetail("TRUNCATE ignores row-level security and would remove every tenant's rows."),
				 errhint("Use DELETE, which removes only the current tenant's rows.")));
	PG_RETURN_POINTER(NULL);
}

/*
 * Event-trigger helper: protect every partition of a protected table that is not protected
 * yet (a partition created or attached after protect()). It only ever adds protection, so
 * anyone may call it. protect()'s own DDL fires the event trigger again: those nested calls
 * return at once.
 */
Datum
hlauth_protect_new_partitions(PG_FUNCTION_ARGS)
{
	if (protect_in_progress)
		PG_RETURN_VOID();
	protect_in_progress = true;
	protect_implicit = true;
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT hlauth.protect(i.inhrelid::pg_catalog.regclass, pt.tenant_column, "
						"pt.read_scope, pt.write_scope, pt.tenant_kind) "
						"FROM pg_catalog.pg_inherits i "
						"JOIN hlauth_internal.protected_tables pt ON pt.relid OPERATOR(pg_catalog.=) i.inhparent "
						"WHERE NOT EXISTS (SELECT 1 FROM hlauth_internal.protected_tables c "
						"WHERE c.relid OPERATOR(pg_catalog.=) i.inhrelid) "
						"ORDER BY i.inhrelid", false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not protect new partitions");
		SPI_finish();
	}
	PG_FINALLY();
	{
		protect_in_progress = false;
		protect_implicit = false;
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}

static bool
guard_triggers_always_exists(void)
{
	Oid			argtypes[1] = {REGCLASSOID};

	return OidIsValid(LookupFuncName(list_make2(makeString("hlauth_internal"),
												makeString("guard_triggers_always")),
									 1, argtypes, true));
}

/* The table's owner; an error unless the caller may protect it (its owner, or an admin). */
static Oid
protect_checked_owner(Oid relid, bool is_admin)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	if (!is_admin && !has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s", get_rel_name(relid)),
				 errhint("Only the table's owner or an hlauth_admin may protect it.")));
	return owner;
}

/*
 * hlauth.protect(tbl, tenant_column, read_scope, write_scope, tenant_kind)
 *
 * The caller must own the table (or be hlauth_admin). The work is done by the SQL function
 * hlauth_internal.protect_impl() with the bootstrap superuser's rights, so that only this
 * path can register a table as protected: a table owner cannot register policies of its
 * own making, and an hlauth_admin can protect tables it does not own.
 */
Datum
hlauth_protect(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Oid			owner;
	bool		is_admin = HlCurrentRoleIsAdmin();
	Oid			save_userid;
	int			save_sec_context;
	bool		was_in_progress;
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	Oid			types[6] = {REGCLASSOID, NAMEOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID};
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table, tenant column and tenant kind must not be NULL")));
	relid = PG_GETARG_OID(0);
	owner = protect_checked_owner(relid, is_admin);

	/*
	 * Lock the table and its partitions and children before anything else is checked, as
	 * the ALTER TABLE of protect_impl would later: a trigger or an index that another
	 * transaction adds and commits while protect() waits for that lock would otherwise pass
	 * checks made before it, and stay (a red-team pass). Everything below reads the catalogs
	 * under the lock, the caller's rights again included.
	 */
	LockRelationOid(relid, AccessExclusiveLock);	/* (processes invalidations) */
	(void) find_all_inheritors(relid, AccessExclusiveLock, NULL);
	owner = protect_checked_owner(relid, is_admin);
	if (protect_implicit && !HlRoleIsAdmin(owner))
		is_admin = false;		/* (may protect it: the checks are what an owner's would be) */

	/*
	 * A temporary table ends with its session, and no event trigger sees it go: its
	 * registration would outlive it, and the guard would then refuse every non-admin's DDL
	 * in the database as if a protected table had been dropped (a red-team pass).
	 */
	if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot protect temporary table %s", get_rel_name(relid)),
				 errdetail("A temporary table belongs to one session; hlauth protects tables that every session shares."),
				 errhint("Protect a permanent (or unlogged) table.")));
	/* ... nor with a temporary child, which protect_impl would register with it. */
	{
		ListCell   *lc;

		foreach(lc, find_all_inheritors(relid, NoLock, NULL))
			if (get_rel_persistence(lfirst_oid(lc)) == RELPERSISTENCE_TEMP)
				ereport(ERROR,
						(errcode(ERRCODE_WRONG_OBJECT_TYPE),
						 errmsg("cannot protect table %s: its child %s is a temporary table",
								get_rel_name(relid), get_rel_name(lfirst_oid(lc))),
						 errdetail("A temporary table belongs to one session; hlauth protects tables that every session shares."),
						 errhint("Drop the temporary child (or end its session) first.")));
	}
	HlRequirePreloadForOwner(relid, owner);

	/*
	 * Code of the owner's that would run over every tenant's rows or writes needs an
	 * hlauth_admin's review (protect_impl refuses triggers, rules, policies, checks and
	 * expression indexes; these are the rest).
	 */
	if (!is_admin)
	{
		refuse_partition_expressions(relid, NULL);
		refuse_statistics_expressions(relid, NULL);
		refuse_foreign_key_actions(relid, NULL);
		refuse_code_in_columns(relid, NULL);
	}

	for (i = 0; i < 5; i++)
	{
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
	values[5] = BoolGetDatum(is_admin);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	was_in_progress = protect_in_progress;
	protect_in_progress = true;
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT hlauth_internal.protect_impl($1, $2, $3, $4, $5, $6)",
								  6, types, values, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "hlauth_internal.protect_impl failed");
		/*
		 * Its write and truncate guards fire in replica mode too (079_guard_snapshot.sql;
		 * not in a database still at 0.1.0, whose scripts this library also serves).
		 */
		if (guard_triggers_always_exists() &&
			SPI_execute_with_args("WITH RECURSIVE t(relid) AS (SELECT $1::pg_catalog.oid UNION"
								  " SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN t"
								  "  ON i.inhparent OPERATOR(pg_catalog.=) t.relid)"
								  " SELECT hlauth_internal.guard_triggers_always(pt.relid)"
								  " FROM hlauth_internal.protected_tables pt"
								  " JOIN t ON pt.relid::pg_catalog.oid OPERATOR(pg_catalog.=) t.relid",
								  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "hlauth_internal.guard_triggers_always failed");
		SPI_finish();
	}
	PG_FINALLY();
	{
		protect_in_progress = was_in_progress;
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}
