/*
 * src/guard.c
 *		The DDL guard that runs before a command (ddl_command_start).
 *
 * Row-level security filters queries, not DDL. A table's owner (or a role the table is
 * attached to) could otherwise make PostgreSQL run code of its own over every tenant's
 * rows: an index or statistics on an expression, a CHECK or generated column, a column type
 * change, a trigger or a rule that sees every future write, or attaching the table under a
 * parent it owns. On a table protected by hlauth, such commands need hlauth_admin.
 * After the command, hlauth_internal.guard_protection() (ddl_command_end) checks that the
 * protection itself is intact; this file refuses what would already be too late then, and
 * (hlauth_guard_ddl_end) a new default calling a non-admin's function, judged once cooked.
 *
 * This file must never let a non-admin's command through when in doubt about its target.
 */
#include "hlauth.h"

#include "access/relation.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "commands/trigger.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"
#include "parser/parse_type.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(hlauth_guard_ddl_start);
PG_FUNCTION_INFO_V1(hlauth_guard_ddl_end);

/*
 * Does the name refer to a protected table? This look takes no lock, and the command looks
 * the name up again once it holds its lock, when it may find another table: a table of
 * the same name ahead of the protected one on the search_path, dropped by a transaction not
 * yet committed, is found here but not by the command (a red-team pass built an index of
 * the owner's function on the protected table that way). So an unqualified name counts as
 * protected when any table of that name in a schema the search_path names is; qualify it
 * to mean another.
 */
static bool
relation_is_protected_as(RangeVar *rv, bool (*is_protected) (Oid))
{
	Oid			relid;
	bool		any = false;

	if (rv == NULL)
		return false;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (OidIsValid(relid) && is_protected(relid))
		return true;
	if (rv->schemaname == NULL)
	{
		/*
		 * Every schema the search_path names, those the role may not use yet included: a
		 * USAGE granted while the command waits for its lock changes what it resolves to
		 * (a red-team pass). "$user" is the current role's schema; pg_catalog and pg_temp
		 * hold no protected table.
		 */
		char	   *raw = pstrdup(namespace_search_path);
		List	   *names;
		ListCell   *lc;

		if (!SplitIdentifierString(raw, ',', &names))
			return true;		/* unparsable: assume the worst */
		foreach(lc, names)
		{
			const char *name = (const char *) lfirst(lc);
			Oid			nsp;
			Oid			other;

			if (strcmp(name, "$user") == 0)
				name = GetUserNameFromId(GetUserId(), true);
			nsp = name ? get_namespace_oid(name, true) : InvalidOid;
			other = OidIsValid(nsp) ? get_relname_relid(rv->relname, nsp) : InvalidOid;
			if (OidIsValid(other) && is_protected(other))
				any = true;
		}
		list_free(names);
		pfree(raw);
	}
	return any;
}

static bool
relation_is_protected(RangeVar *rv)
{
	return relation_is_protected_as(rv, HlRelationIsProtected);
}

/*
 * Commands are judged by the registry as committed now, before they run and again after
 * (the command may have waited for a lock that protect() held), never by the statement's
 * snapshot: under REPEATABLE READ that snapshot can predate a table's protection.
 */
static bool
relation_is_protected_now(RangeVar *rv)
{
	return relation_is_protected_as(rv, HlRelationIsProtectedNow);
}

/* A constant default (possibly cast) is evaluated once, not per row. */
static bool
is_constant(Node *expr)
{
	if (expr == NULL || IsA(expr, A_Const))
		return true;
	if (IsA(expr, TypeCast))
		return is_constant(((TypeCast *) expr)->arg);
	return false;
}

/* What in an ADD COLUMN would evaluate code over existing rows, or NULL. */
static const char *
column_def_risk(ColumnDef *def)
{
	ListCell   *lc;

	if (def->typeName != NULL &&
		HlTypeRunsNonAdminCode(LookupTypeNameOid(NULL, def->typeName, true)))
		return "a column of a type that runs a non-admin's code (it runs over every tenant's values)";

	foreach(lc, def->constraints)
	{
		Constraint *c = lfirst_node(Constraint, lc);

		switch (c->contype)
		{
			case CONSTR_DEFAULT:
				if (!is_constant(c->raw_expr))
					return "a column with a non-constant default";
				break;
			case CONSTR_NULL:
			case CONSTR_NOTNULL:
			case CONSTR_IDENTITY:
			case CONSTR_ATTR_DEFERRABLE:
			case CONSTR_ATTR_NOT_DEFERRABLE:
			case CONSTR_ATTR_DEFERRED:
			case CONSTR_ATTR_IMMEDIATE:
				break;
			default:
				return "a column with a constraint or a generated value";
		}
	}
	return NULL;
}

/*
 * A foreign key to a protected table from a table that is not protected: the key's check
 * runs without row-level security, so inserting into the referencing table (which has no
 * policies to keep a row in its tenant) tells whether a key exists in any tenant's rows,
 * and locks that row (FOR KEY SHARE). Returns the referenced table, or NULL.
 */
static RangeVar *
foreign_key_target(Node *node)
{
	Constraint *c;

	if (node == NULL || !IsA(node, Constraint))
		return NULL;
	c = (Constraint *) node;
	return c->contype == CONSTR_FOREIGN ? c->pktable : NULL;
}

static const char *const foreign_key_risk =
	"a foreign key from a table that is not protected (its check would tell whether a key exists in any tenant's rows)";

/* Does CREATE TABLE declare a foreign key to a protected table, for a table not protected by then? */
static RangeVar *
create_references_protected(CreateStmt *stmt)
{
	ListCell   *lc;

	/* a partition or child of a protected table is protected as it is created */
	foreach(lc, stmt->inhRelations)
	{
		if (relation_is_protected_now(lfirst_node(RangeVar, lc)))
			return NULL;
	}
	foreach(lc, stmt->tableElts)
	{
		Node	   *elt = lfirst(lc);
		RangeVar   *pk = foreign_key_target(elt);
		ListCell   *lc2;

		if (pk != NULL && relation_is_protected_now(pk))
			return pk;
		if (IsA(elt, ColumnDef))
		{
			foreach(lc2, ((ColumnDef *) elt)->constraints)
			{
				pk = foreign_key_target(lfirst(lc2));
				if (pk != NULL && relation_is_protected_now(pk))
					return pk;
			}
		}
	}
	foreach(lc, stmt->constraints)
	{
		RangeVar   *pk = foreign_key_target(lfirst(lc));

		if (pk != NULL && relation_is_protected_now(pk))
			return pk;
	}
	return NULL;
}

/*
 * If the command would run code over the rows of a table (or expose them through another),
 * return a description of it and set *target to the table it reads; else NULL.
 */
static const char *
command_risk(Node *parsetree, RangeVar **target)
{
	ListCell   *lc;

	*target = NULL;
	switch (nodeTag(parsetree))
	{
		case T_CreateStmt:
			*target = create_references_protected((CreateStmt *) parsetree);
			return *target != NULL ? foreign_key_risk : NULL;
		case T_CreateSchemaStmt:
			/*
			 * CREATE SCHEMA s CREATE TABLE ...: its elements fire no event trigger of their
			 * own, and name tables the guard cannot look up yet (one element may reference
			 * a partition of a protected table that another creates). So a partition or
			 * child of a protected table is refused there, as is a foreign key to one.
			 */
			foreach(lc, ((CreateSchemaStmt *) parsetree)->schemaElts)
			{
				CreateStmt *elt;
				ListCell   *lc2;

				if (!IsA(lfirst(lc), CreateStmt))
					continue;
				elt = lfirst_node(CreateStmt, lc);
				foreach(lc2, elt->inhRelations)
				{
					*target = lfirst_node(RangeVar, lc2);
					if (relation_is_protected_now(*target))
						return "a partition or child in CREATE SCHEMA (create it with a CREATE TABLE of its own)";
				}
				if ((*target = create_references_protected(elt)) != NULL)
					return foreign_key_risk;
			}
			*target = NULL;
			return NULL;
		case T_AlterDomainStmt:
			{
				AlterDomainStmt *stmt = (AlterDomainStmt *) parsetree;
				const char *risk = NULL;

				switch (stmt->subtype)
				{
					case 'C':	/* ADD CONSTRAINT */
					case 'V':	/* VALIDATE CONSTRAINT */
						risk = "a domain check (it runs over every tenant's values of a protected table's column)";
						break;
					default:
						break;
				}
				if (risk != NULL)
					*target = HlProtectedTableUsingType(typenameTypeId(NULL, makeTypeNameFromNameList(stmt->typeName)));
				return *target != NULL ? risk : NULL;
			}
		case T_CreateTrigStmt:
			*target = ((CreateTrigStmt *) parsetree)->relation;
			return "a trigger (it would see every tenant's writes)";
		case T_RuleStmt:
			*target = ((RuleStmt *) parsetree)->relation;
			return "a rule (it would see every tenant's writes)";
		case T_IndexStmt:
			{
				IndexStmt  *stmt = (IndexStmt *) parsetree;

				*target = stmt->relation;
				if (stmt->whereClause != NULL)
					return "a partial index (its predicate runs over every tenant's rows)";
				if (stmt->unique)
					return "a unique index (a duplicate would be reported with another tenant's values)";
				foreach(lc, stmt->indexParams)
				{
					if (lfirst_node(IndexElem, lc)->expr != NULL)
						return "an expression index (its expression runs over every tenant's rows)";
				}
				return NULL;
			}
		case T_CreateStatsStmt:
			{
				CreateStatsStmt *stmt = (CreateStatsStmt *) parsetree;

				if (list_length(stmt->relations) == 1 && IsA(linitial(stmt->relations), RangeVar))
					*target = linitial_node(RangeVar, stmt->relations);
				foreach(lc, stmt->exprs)
				{
					if (lfirst_node(StatsElem, lc)->expr != NULL)
						return "statistics on an expression (ANALYZE would run it over every tenant's rows)";
				}
				return NULL;
			}
		case T_AlterTableStmt:
			{
				/*
				 * Every subcommand is looked at, each with its own target: one that risks
				 * the altered table counts only when that table is protected, and must not
				 * hide a later one that reaches a protected table through another name (a
				 * foreign key, a parent).
				 */
				AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
				bool		self_protected;

				/*
				 * ALTER TYPE <composite> ADD ATTRIBUTE of a type whose values run code (a
				 * domain with a check): that code would run on every tenant's writes to a
				 * protected table's column of the composite type. (PostgreSQL itself refuses
				 * ALTER ATTRIBUTE ... TYPE on a type a column uses.) And any change of the
				 * type of a protected typed table (CREATE TABLE ... OF): ALTER TYPE ...
				 * CASCADE changes the table's columns as ALTER TABLE would (a red-team pass
				 * converted every tenant's values through a domain check of the owner's).
				 */
				if (stmt->objtype == OBJECT_TYPE)
				{
					Oid			reltype = get_rel_type_id(RangeVarGetRelid(stmt->relation, NoLock, true));

					if (OidIsValid(reltype) && stmt->cmds != NIL &&
						(*target = HlProtectedTableOfType(reltype)) != NULL)
						return "a change to the type of a typed table (ALTER TYPE ... CASCADE would change every tenant's rows)";
					foreach(lc, stmt->cmds)
					{
						AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
						ColumnDef  *def;

						if (cmd->subtype != AT_AddColumn)
							continue;
						def = castNode(ColumnDef, cmd->def);
						if (!HlTypeRunsNonAdminCode(LookupTypeNameOid(NULL, def->typeName, true)))
							continue;
						if (OidIsValid(reltype) &&
							(*target = HlProtectedTableUsingType(reltype)) != NULL)
							return "an attribute of a type that runs a non-admin's code (it would run on every tenant's writes of a column of the type)";
					}
					*target = NULL;
					return NULL;
				}
				self_protected = relation_is_protected_now(stmt->relation);

				foreach(lc, stmt->cmds)
				{
					AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
					const char *risk = NULL;
					ListCell   *lc2;

					switch (cmd->subtype)
					{
						case AT_AddConstraint:
							/* ALTER TABLE <not protected> ADD FOREIGN KEY ... REFERENCES <protected> */
							*target = foreign_key_target(cmd->def);
							if (!self_protected && *target != NULL && relation_is_protected_now(*target))
								return foreign_key_risk;
							risk = "a constraint (checking it runs over every tenant's rows)";
							break;
						case AT_AddIndex:
						case AT_AddIndexConstraint:
						case AT_ValidateConstraint:
							risk = "a constraint (checking it runs over every tenant's rows)";
							break;
						case AT_AlterColumnType:
							risk = "a column type change (it converts every tenant's values)";
							break;
						case AT_AddColumn:
							/* ADD COLUMN ... REFERENCES <protected> on a table not protected */
							foreach(lc2, castNode(ColumnDef, cmd->def)->constraints)
							{
								*target = foreign_key_target(lfirst(lc2));
								if (!self_protected && *target != NULL && relation_is_protected_now(*target))
									return foreign_key_risk;
							}
							risk = column_def_risk(castNode(ColumnDef, cmd->def));
							break;
						case AT_AddInherit:
							/* ALTER TABLE child INHERIT <protected parent> */
							*target = castNode(RangeVar, cmd->def);
							if (relation_is_protected_now(*target))
								return "a child table with rows of its own (they would show as any tenant's rows; create children with CREATE TABLE ... INHERITS)";
							risk = "a parent table (every tenant's rows would be read through it)";
							break;
						case AT_AttachPartition:
							/* ALTER TABLE parent ATTACH PARTITION <protected table> */
							*target = castNode(PartitionCmd, cmd->def)->name;
							if (relation_is_protected_now(*target))
								return "a parent table (every tenant's rows would be read through it)";
							/* ALTER TABLE <protected parent> ATTACH PARTITION x */
							risk = "a partition with rows of its own (they would show as any tenant's rows; create partitions with CREATE TABLE ... PARTITION OF)";
							break;
						case AT_AddOf:
							/* then ALTER TYPE ... CASCADE would change it (see above) */
							risk = "making it a typed table (a change to the type would change every tenant's rows)";
							break;
						case AT_DetachPartition:
						case AT_DetachPartitionFinalize:
							/* refused after the fact otherwise, too late for CONCURRENTLY */
							risk = "detaching a partition (DETACH ... CONCURRENTLY commits before hlauth could refuse it)";
							break;
						default:
							break;
					}
					if (risk != NULL && self_protected)
					{
						*target = stmt->relation;
						return risk;
					}
				}
				*target = NULL;
				return NULL;
			}
		default:
			return NULL;
	}
}

Datum
hlauth_guard_ddl_start(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	RangeVar   *target;
	const char *risk;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hlauth_internal.guard_ddl_start() must be called as an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;

	/* Even an admin may not hand a protected table to a non-admin where hlauth is not preloaded. */
	if (IsA(trigdata->parsetree, AlterTableStmt))
	{
		AlterTableStmt *stmt = (AlterTableStmt *) trigdata->parsetree;
		ListCell   *lc;

		foreach(lc, stmt->cmds)
		{
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

			if (cmd->subtype == AT_ChangeOwner && relation_is_protected(stmt->relation))
				HlRequirePreloadForOwner(RangeVarGetRelid(stmt->relation, NoLock, false),
										 get_rolespec_oid(cmd->newowner, false));
		}
	}

	if (HlCurrentRoleIsAdmin())
		PG_RETURN_VOID();

	/*
	 * Judged by the registry as committed now, not by the statement's snapshot: under a
	 * transaction snapshot (REPEATABLE READ) taken before a table was protected, the table
	 * looked unprotected here, and the owner's code ran over every tenant's rows before the
	 * check after the command refused it (a twentieth red-team pass). And a transaction whose
	 * snapshot misses a change of the registry may not change tables at all: the checks in
	 * PL/pgSQL after the command (guard_protection) read the registry with that snapshot.
	 */
	HlRefuseStaleRegistry();

	/*
	 * The audit's triggers are made by hlauth.audit() and the audit's guard, never by a
	 * non-admin, on any table: CREATE OR REPLACE TRIGGER hlauth_audit kept the trigger's
	 * OID, set it back to simply enabled and rewrote its arguments (the columns the audit
	 * leaves out), and the audit's guard took it for its own new trigger (a twenty-third
	 * red-team pass).
	 */
	if (IsA(trigdata->parsetree, CreateTrigStmt))
	{
		const char *name = ((CreateTrigStmt *) trigdata->parsetree)->trigname;

		if (strcmp(name, "hlauth_audit") == 0 || strcmp(name, "hlauth_audit_statement") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied: trigger \"%s\" is made only by hlauth.audit()", name),
					 errhint("Ask an hlauth_admin to run hlauth.audit().")));
	}
	risk = command_risk(trigdata->parsetree, &target);
	if (risk != NULL && relation_is_protected_now(target))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: %s on table \"%s\", protected by hlauth",
						risk, target->relname),
				 errdetail("On a protected table, commands that run code over every tenant's rows need hlauth_admin."),
				 risk == foreign_key_risk ?
				 errhint("Ask an hlauth_admin to add it; reference protected tables from protected tables, with the tenant column in the key.") :
				 errhint("Ask an hlauth_admin to run it, or use a plain column index and a constant default.")));
	PG_RETURN_VOID();
}

/*
 * The type an ALTER DOMAIN or ALTER TYPE (of a composite type) changes, or InvalidOid.
 */
static Oid
altered_type(Node *parsetree)
{
	if (IsA(parsetree, AlterDomainStmt))
		return typenameTypeId(NULL, makeTypeNameFromNameList(((AlterDomainStmt *) parsetree)->typeName));
	if (IsA(parsetree, AlterTableStmt) && ((AlterTableStmt *) parsetree)->objtype == OBJECT_TYPE)
		return get_rel_type_id(RangeVarGetRelid(((AlterTableStmt *) parsetree)->relation, NoLock, true));
	return InvalidOid;
}

static void
refuse_default(const char *column, const char *table)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied: a default calling a non-admin's function on column \"%s\" of table \"%s\", protected by hlauth",
					column, table),
			 errdetail("It would run inside every tenant's inserts, like a trigger."),
			 errhint("Use a constant, a built-in function or one of hlauth's, or ask an hlauth_admin.")));
}

/*
 * After CREATE TABLE or CREATE SCHEMA (ddl_command_end), judged from the catalogs, since
 * PostgreSQL moves a CREATE TABLE's foreign keys out of the statement as it runs it: a
 * foreign key from a new table that is not protected (nor a partition or child of a
 * protected table, which guard_protection protects next) to a protected table, and in
 * CREATE SCHEMA a partition or child of a protected table (see command_risk). As committed
 * now: the command may have waited for protect()'s lock on the referenced table.
 */
static void
check_created_tables(Node *parsetree)
{
	Oid			argtypes[2] = {OIDOID, OIDOID};
	Datum		values[2] = {ObjectIdGetDatum(InvalidOid), ObjectIdGetDatum(InvalidOid)};
	char	   *kind = NULL;
	char	   *child = NULL;
	char	   *table = NULL;
	MemoryContext caller = CurrentMemoryContext;

	if (IsA(parsetree, CreateStmt))
		values[0] = ObjectIdGetDatum(RangeVarGetRelid(((CreateStmt *) parsetree)->relation, NoLock, true));
	else
	{
		CreateSchemaStmt *stmt = (CreateSchemaStmt *) parsetree;
		const char *name = stmt->schemaname;

		if (name == NULL && stmt->authrole != NULL)
			name = get_rolespec_name(stmt->authrole);
		values[1] = ObjectIdGetDatum(name ? get_namespace_oid(name, true) : InvalidOid);
	}

	PushActiveSnapshot(GetLatestSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT 'fk', r.relname::pg_catalog.text, t.relname::pg_catalog.text"
							  " FROM pg_catalog.pg_constraint c"
							  " JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=) c.conrelid"
							  " JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) c.confrelid"
							  " WHERE c.contype OPERATOR(pg_catalog.=) 'f'"
							  "  AND (c.conrelid OPERATOR(pg_catalog.=) $1 OR r.relnamespace OPERATOR(pg_catalog.=) $2)"
							  "  AND EXISTS (SELECT 1 FROM hlauth_internal.protected_tables p"
							  "   WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) c.confrelid)"
							  "  AND NOT EXISTS (SELECT 1 FROM hlauth_internal.protected_tables p"
							  "   WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) c.conrelid)"
							  "  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i"
							  "   JOIN hlauth_internal.protected_tables p ON p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) i.inhparent"
							  "   WHERE i.inhrelid OPERATOR(pg_catalog.=) c.conrelid)"
							  " UNION ALL"
							  " SELECT 'child', r.relname::pg_catalog.text, t.relname::pg_catalog.text"
							  " FROM pg_catalog.pg_inherits i"
							  " JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=) i.inhrelid"
							  " JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) i.inhparent"
							  " WHERE r.relnamespace OPERATOR(pg_catalog.=) $2"
							  "  AND EXISTS (SELECT 1 FROM hlauth_internal.protected_tables p"
							  "   WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) i.inhparent)"
							  " LIMIT 1",
							  2, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read hlauth_internal.protected_tables");
	if (SPI_processed > 0)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext spi = MemoryContextSwitchTo(caller);

		kind = pstrdup(SPI_getvalue(tup, desc, 1));
		child = pstrdup(SPI_getvalue(tup, desc, 2));
		table = pstrdup(SPI_getvalue(tup, desc, 3));
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	PopActiveSnapshot();
	if (kind == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied: %s on table \"%s\", protected by hlauth",
					strcmp(kind, "fk") == 0 ? foreign_key_risk :
					"a partition or child in CREATE SCHEMA (create it with a CREATE TABLE of its own)",
					table),
			 errdetail("Table \"%s\" would reference it; the table was protected while the command waited for it.", child),
			 errhint("Ask an hlauth_admin to run it.")));
}

/*
 * After the command (ddl_command_end), for non-admins:
 * - the start-of-command check again, under the command's lock and against the registry as
 *   committed now: a table that protect() was protecting in a transaction not yet committed
 *   passed that check, and the command then waited for protect()'s lock and ran on the
 *   protected table (red-team passes left a rule copying every tenant's inserts out, a
 *   CHECK, a default and a domain column of the owner's that way). A change to a type
 *   (ALTER DOMAIN, ALTER TYPE) first locks the tables that use it, since it need not lock
 *   them itself. Refused here, the command is undone; what it ran meanwhile saw only the
 *   rows from before protect().
 * - a default, once cooked (ALTER TABLE ... ADD COLUMN or ALTER COLUMN ... SET DEFAULT, ALTER
 *   DOMAIN ... SET DEFAULT), that runs code of a non-admin's: it would run inside every
 *   tenant's inserts, like a trigger. Built-in functions and hlauth's (hlauth.principal(),
 *   now(), nextval()) are fine; a cast through the owner's domain is not.
 */
Datum
hlauth_guard_ddl_end(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	Node	   *parsetree;
	Oid			typid;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hlauth_internal.guard_ddl_end() must be called as an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;
	parsetree = trigdata->parsetree;
	if (HlCurrentRoleIsAdmin())
		PG_RETURN_VOID();

	typid = altered_type(parsetree);
	if (OidIsValid(typid))
		HlLockTablesUsingType(typid);

	if (IsA(parsetree, IndexStmt) || IsA(parsetree, RuleStmt) ||
		IsA(parsetree, CreateStatsStmt) || IsA(parsetree, CreateTrigStmt) ||
		IsA(parsetree, AlterTableStmt) || IsA(parsetree, AlterDomainStmt))
	{
		RangeVar   *target;
		const char *risk = command_risk(parsetree, &target);

		if (risk != NULL && relation_is_protected_now(target))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied: %s on table \"%s\", protected by hlauth",
							risk, target->relname),
					 errdetail("The table was protected while the command waited for it."),
					 errhint("Ask an hlauth_admin to run it.")));
	}
	else if (IsA(parsetree, CreateStmt) || IsA(parsetree, CreateSchemaStmt))
		check_created_tables(parsetree);

	if (IsA(parsetree, AlterTableStmt) && ((AlterTableStmt *) parsetree)->objtype != OBJECT_TYPE)
	{
		AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
		Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
		Relation	rel;
		ListCell   *lc;

		if (!OidIsValid(relid) || !HlRelationIsProtectedNow(relid))
			PG_RETURN_VOID();
		rel = table_open(relid, NoLock);
		foreach(lc, stmt->cmds)
		{
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
			const char *column;
			AttrNumber	attnum;

			if (cmd->subtype == AT_ColumnDefault && cmd->def != NULL)
				column = cmd->name;
			else if (cmd->subtype == AT_AddColumn)
				column = castNode(ColumnDef, cmd->def)->colname;
			else
				continue;
			attnum = get_attnum(relid, column);
			if (attnum > 0 && HlColumnDefaultRunsNonAdminCode(rel, attnum))
				refuse_default(column, RelationGetRelationName(rel));
		}
		table_close(rel, NoLock);
	}
	else if (IsA(parsetree, AlterDomainStmt) && ((AlterDomainStmt *) parsetree)->subtype == 'T')
	{
		RangeVar   *used;

		if (HlTypeRunsNonAdminCode(typid) && (used = HlProtectedTableUsingType(typid)) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied: a default calling a non-admin's function on domain %s, used by table \"%s\", protected by hlauth",
							format_type_be(typid), used->relname),
					 errdetail("It would run inside every tenant's inserts, like a trigger."),
					 errhint("Use a constant, a built-in function or one of hlauth's, or ask an hlauth_admin.")));
	}
	PG_RETURN_VOID();
}

/*
 * session_replication_role = replica skips every trigger that is simply enabled: those of
 * the application, the security events of hlauth's own tables, and (until they became
 * ENABLE ALWAYS, for a later red-team pass switched modes in the middle of a statement)
 * hlauth's write, truncate and audit triggers. PostgreSQL 15 lets a superuser GRANT SET on
 * it to any role, and a red-team pass showed what that gave a table owner or an application
 * role: writes and revocations nobody recorded, a TRUNCATE of every tenant's rows. So, when
 * the session's role (SET ROLE's, outside SECURITY DEFINER functions) is not a superuser,
 * replica mode may not write to a table hlauth guards or audits
 * (one with a trigger of hlauth's, or a partition or child of one) nor to hlauth's own
 * tables. (hlauth's event triggers fire in every mode, and set_principal and authenticate
 * refuse in it: HlRefuseBypassRoles.) These checks run where hlauth is loaded: preload it.
 */
static bool
relation_guarded(Oid relid)
{
	Oid			nsp = get_rel_namespace(relid);
	char	   *nspname = OidIsValid(nsp) ? get_namespace_name(nsp) : NULL;
	Relation	rel;
	bool		guarded = false;

	if (nspname != NULL && (strcmp(nspname, "hlauth") == 0 || strcmp(nspname, "hlauth_internal") == 0))
		return true;
	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		return false;
	if (rel->trigdesc != NULL)
	{
		for (int i = 0; i < rel->trigdesc->numtriggers && !guarded; i++)
			guarded = strncmp(rel->trigdesc->triggers[i].tgname, "hlauth_", 7) == 0;
	}
	relation_close(rel, AccessShareLock);
	return guarded;
}

static void
refuse_replica_mode_write(Oid relid, const char *what)
{
	ListCell   *lc;
	List	   *rels;

	if (SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA ||
		superuser_arg(GetOuterUserId()) || !OidIsValid(relid))
		return;
	rels = find_all_inheritors(relid, AccessShareLock, NULL);
	foreach(lc, rels)
	{
		if (relation_guarded(lfirst_oid(lc)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied: %s table \"%s\" with session_replication_role = replica",
							what, get_rel_name(relid)),
					 errdetail("Replica mode skips simply enabled triggers (security events, the application's own); only a superuser may write to the tables hlauth guards or audits in it."),
					 errhint("RESET session_replication_role, or have a superuser run it.")));
	}
	list_free(rels);
}

/* ExecutorStart: the statement's result relations (INSERT, UPDATE, DELETE, MERGE, CTEs). */
void
HlRefuseReplicaModeWrites(PlannedStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->resultRelations)
		refuse_replica_mode_write(rt_fetch(lfirst_int(lc), stmt->rtable)->relid, "writing to");
}

/* ProcessUtility: TRUNCATE and COPY FROM. */
void
HlRefuseReplicaModeUtility(Node *parsetree)
{
	ListCell   *lc;

	if (IsA(parsetree, TruncateStmt))
	{
		foreach(lc, ((TruncateStmt *) parsetree)->relations)
			refuse_replica_mode_write(RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true), "truncating");
	}
	else if (IsA(parsetree, CopyStmt) && ((CopyStmt *) parsetree)->is_from &&
			 ((CopyStmt *) parsetree)->relation != NULL)
		refuse_replica_mode_write(RangeVarGetRelid(((CopyStmt *) parsetree)->relation, NoLock, true), "copying into");
}
