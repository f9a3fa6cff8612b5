/*
 * src/audit.c
 *		The audit trigger and the hashes behind the seals (issue #4).
 *
 * hlauth.audit(tbl) attaches two triggers: hlauth_internal.audit_row() (AFTER ROW) builds
 * each record (who, what, when, the row's hash) in backend memory, and
 * hlauth_internal.audit_statement() (AFTER STATEMENT, fired after every row trigger of its
 * statement) writes the statement's records into the day's partition of hlauth.audit_log
 * with one multi-insert, as COPY does: no SPI, no sequence, no lock that another writer
 * could hold, so concurrent writers never wait on each other for the audit. TRUNCATE is
 * recorded by the statement trigger.
 *
 * Records are written with the extension's authority (the heap is written directly, like
 * any trigger writing a table only it can), so app roles need no privilege on the log and
 * can never write it themselves.
 *
 * Records still in memory belong to their (sub)transaction: an aborted subtransaction
 * drops its own, an aborted transaction all of them; any left when the transaction commits
 * (a statement whose statement trigger did not fire) are written just before it does.
 *
 * The row hash is SHA-256 over a length-prefixed encoding of every other column of the
 * record, in column order; hlauth_internal.audit_row_hash() recomputes it from a stored
 * record with the same code, for audit_seal() and audit_verify().
 */
#include "hlauth.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "access/genam.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "tcop/deparse_utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/xid8.h"

#include "core/crypto.h"

PG_FUNCTION_INFO_V1(hlauth_audit_row);
PG_FUNCTION_INFO_V1(hlauth_audit_statement);
PG_FUNCTION_INFO_V1(hlauth_audit_row_hash);
PG_FUNCTION_INFO_V1(hlauth_audit_chain_step);
PG_FUNCTION_INFO_V1(hlauth_audit_chain_final);
PG_FUNCTION_INFO_V1(hlauth_audit_key_version);
PG_FUNCTION_INFO_V1(hlauth_audit_mac);
PG_FUNCTION_INFO_V1(hlauth_audit_mac_equal);

/* The columns of hlauth.audit_log, in order (src/sql/0.2.0/050_audit.sql). */
enum
{
	AL_LOGGED_AT,
	AL_XID,
	AL_SEQ,
	AL_TABLE,
	AL_OP,
	AL_PK,
	AL_TENANT,
	AL_PRINCIPAL,
	AL_IMPERSONATOR,
	AL_TOKEN,
	AL_METHOD,
	AL_DB_USER,
	AL_DB_ROLE,
	AL_CHANGED,
	AL_OLD,
	AL_NEW,
	AL_HASH,
	AL_NATTS
};

/* Records kept in memory before a multi-insert (the statement trigger writes the rest). */
#define AUDIT_BATCH 1000

/* How a column's value becomes JSON (what to_jsonb() would make of it, faster). */
typedef enum AuditCat
{
	CAT_BOOL,
	CAT_INT,					/* int2, int4, int8: a JSON number */
	CAT_NUMERIC,				/* a JSON number, or a string for NaN and infinities */
	CAT_TEXT,					/* text, varchar, bpchar: a string of the bytes */
	CAT_DATETIME,				/* date, timestamp, timestamptz (in UTC): ISO 8601 */
	CAT_UUID,					/* a string, as uuid_out() writes it */
	CAT_JSONB,
	CAT_OUTPUT,					/* another built-in type: its output function, as a string */
	CAT_TO_JSONB				/* anything else (arrays, composites, json, floats, user
								 * types): to_jsonb() itself */
} AuditCat;

typedef struct AuditColumn
{
	char	   *name;
	bool		dropped;
	bool		excluded;
	bool		pk;
	AuditCat	cat;
	Oid			typid;			/* the base type (domains looked through) */
	int16		typlen;
	bool		typbyval;
	FmgrInfo	out;			/* CAT_OUTPUT, CAT_NUMERIC */
	FmgrInfo	tojsonb;		/* CAT_TO_JSONB */
} AuditColumn;

/* What the row trigger needs to know about an audited table, per trigger. */
typedef struct AuditTable
{
	Oid			tgoid;			/* hash key */
	bool		valid;
	Oid			relid;
	Oid			rootid;			/* the partitioned table audited, or relid */
	MemoryContext cxt;
	char	   *qualname;
	int			natts;
	AuditColumn *cols;
	int		   *order;			/* the live columns in jsonb key order */
	int			nlive;
	int			tenant_att;		/* 0-based, -1 for none */
} AuditTable;

/*
 * The record being built: its columns, in record_cxt (reset for every record). Once
 * sealed (hashed), it is formed into a heap tuple at once, while its values are fresh in
 * the CPU's caches, and the tuple waits in pending_cxt for the multi-insert.
 */
typedef struct AuditRecord
{
	Datum		values[AL_NATTS];
	bool		nulls[AL_NATTS];
	int32		day;			/* of logged_at, in days since 2000-01-01 UTC */
	SubTransactionId subid;
} AuditRecord;

/* A sealed record waiting for its multi-insert. */
typedef struct AuditPending
{
	HeapTuple	tuple;			/* in pending_cxt */
	int32		day;
	SubTransactionId subid;
} AuditPending;

static HTAB *audit_tables = NULL;
static MemoryContext pending_cxt = NULL;
static MemoryContext record_cxt = NULL;
static AuditRecord building_rec;
static AuditPending *pending = NULL;
static int	npending = 0;
static int	pending_cap = 0;

/*
 * The descriptor records are formed with (a copy of hlauth.audit_log's, nobody pins it),
 * and the slots of the multi-insert, kept.
 */
static TupleDesc slot_desc = NULL;
static TupleTableSlot *slot_pool[AUDIT_BATCH];

/* The last table looked up (entries never move in the hash table). */
static AuditTable *last_table = NULL;

/*
 * A record is being built (its values are in record_cxt, not yet pending). Building runs
 * output and cast functions, and a cast to json can be SQL: a write it makes to an audited
 * table must not interleave its record with ours (nor reset record_cxt under us), nor
 * flush.
 */
static bool building = false;
static SubTransactionId building_subid;

static FullTransactionId seq_fxid;
static int32 seq_next = 0;

/* The partition records of a day go to (reset by any relcache invalidation). */
static int32 part_day = PG_INT32_MIN;
static Oid	part_oid = InvalidOid;

/* Role names, cached (reset when pg_authid changes). */
static Oid	name_cache_oid[2] = {InvalidOid, InvalidOid};
static char name_cache[2][NAMEDATALEN];

static text *op_text[4];

/*
 * Text values the records of a batch share (they live in pending_cxt, so they go with it):
 * the table name of the last table, the names of the last session and current roles.
 */
static const AuditTable *shared_table = NULL;
static Datum shared_table_name;
static Oid	shared_role_oid[2] = {InvalidOid, InvalidOid};
static Datum shared_role_name[2];

/* ------------------------------------------------------------------------
 * Caches and their invalidation
 * ------------------------------------------------------------------------ */

static void
audit_relcache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	AuditTable *t;

	part_day = PG_INT32_MIN;
	part_oid = InvalidOid;
	if (audit_tables == NULL)
		return;
	hash_seq_init(&status, audit_tables);
	while ((t = hash_seq_search(&status)) != NULL)
	{
		if (!OidIsValid(relid) || t->relid == relid || t->rootid == relid)
			t->valid = false;
	}
}

static void
audit_authid_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	name_cache_oid[0] = name_cache_oid[1] = InvalidOid;
	shared_role_oid[0] = shared_role_oid[1] = InvalidOid;
}

static void
audit_reset_pending(void)
{
	shared_table = NULL;
	shared_role_oid[0] = shared_role_oid[1] = InvalidOid;
	npending = 0;
	pending = NULL;
	if (pending_cxt != NULL)
		MemoryContextReset(pending_cxt);
	if (record_cxt != NULL && !building)
		MemoryContextReset(record_cxt);
}

static void audit_flush(void);

static void
audit_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * Records of a statement whose statement trigger did not fire (a statement
			 * trigger missing on a partition made in this transaction, say) are written
			 * now, before the commit, so no change commits without them. An error here
			 * aborts the transaction: fail closed.
			 */
			if (npending > 0)
				audit_flush();
			break;
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			building = false;
			audit_reset_pending();
			break;
	}
}

static void
audit_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	/* Records made in the aborted subtransaction (or its children) are at the tail. */
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		while (npending > 0 && pending[npending - 1].subid >= mySubid)
			npending--;
		/* A record whose building the error interrupted is abandoned. */
		if (building && building_subid >= mySubid)
			building = false;
	}
}

void
HlAuditInit(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(AuditTable);
	ctl.hcxt = CacheMemoryContext;
	audit_tables = hash_create("hlauth audited tables", 16, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		op_text[0] = cstring_to_text("INSERT");
		op_text[1] = cstring_to_text("UPDATE");
		op_text[2] = cstring_to_text("DELETE");
		op_text[3] = cstring_to_text("TRUNCATE");
		MemoryContextSwitchTo(old);
	}
	CacheRegisterRelcacheCallback(audit_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, audit_authid_callback, (Datum) 0);
	RegisterXactCallback(audit_xact_callback, NULL);
	RegisterSubXactCallback(audit_subxact_callback, NULL);
}

/* ------------------------------------------------------------------------
 * The audited table, as the trigger sees it
 * ------------------------------------------------------------------------ */

static AuditCat
audit_category(Oid typid)
{
	switch (typid)
	{
		case BOOLOID:
			return CAT_BOOL;
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return CAT_INT;
		case NUMERICOID:
			return CAT_NUMERIC;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			return CAT_TEXT;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return CAT_DATETIME;
		case UUIDOID:
			return CAT_UUID;
		case JSONBOID:
			return CAT_JSONB;
		case JSONOID:
		case FLOAT4OID:
		case FLOAT8OID:
			return CAT_TO_JSONB;
		default:
			break;
	}
	/* Built-in scalar types become their output, as to_jsonb() does; the rest, to_jsonb(). */
	if (typid < FirstNormalObjectId && !type_is_rowtype(typid) &&
		!OidIsValid(get_element_type(typid)))
		return CAT_OUTPUT;
	return CAT_TO_JSONB;
}

/* The order of jsonb object keys: shorter first, then by bytes. */
static int
jsonb_key_cmp(const char *a, const char *b)
{
	size_t		la = strlen(a);
	size_t		lb = strlen(b);

	if (la != lb)
		return la < lb ? -1 : 1;
	return memcmp(a, b, la);
}

/* Is relid in the registry (hlauth_internal.audited_tables, opened by the caller)? */
static bool
audit_registered(Relation reg, AttrNumber relid_col, Oid relid)
{
	ScanKeyData key;
	SysScanDesc scan;
	bool		found;

	ScanKeyInit(&key, relid_col, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(reg, InvalidOid, false, NULL, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	return found;
}

/*
 * The table hlauth.audit() was given for this one: itself, or the nearest partition
 * ancestor that is registered (a partition's triggers are its audited parent's). Not simply
 * the topmost ancestor: a table audited on its own, then attached to a partitioned table
 * that is not audited, keeps its own name. InvalidOid when none is: anyone may attach a
 * trigger with hlauth_internal.audit_row() to a table of their own (table owners need
 * EXECUTE on it to create partitions of an audited table, which clones the trigger), and
 * such a trigger must record nothing. The registry is read directly: the roles whose writes
 * fire the trigger cannot read it.
 */
static Oid
audit_root(Relation rel)
{
	Oid			regid = get_relname_relid("audited_tables", get_namespace_oid("hlauth_internal", false));
	Oid			relid = RelationGetRelid(rel);
	Oid			root = InvalidOid;
	Relation	reg;
	AttrNumber	col;

	if (!OidIsValid(regid))
		return InvalidOid;
	col = HlTableColumn(regid, "audited_tables", "relid", REGCLASSOID);
	reg = table_open(regid, AccessShareLock);
	if (audit_registered(reg, col, relid))
		root = relid;
	else if (rel->rd_rel->relispartition)
	{
		ListCell   *lc;

		foreach(lc, get_partition_ancestors(relid))
		{
			if (audit_registered(reg, col, lfirst_oid(lc)))
			{
				root = lfirst_oid(lc);
				break;
			}
		}
	}
	table_close(reg, AccessShareLock);
	return root;
}

static void
audit_table_build(AuditTable *t, Relation rel, Trigger *trigger)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Bitmapset  *pkattrs;
	MemoryContext old;
	const char *tenant_name;
	Oid			root;
	int			i;

	if (t->cxt != NULL)
		MemoryContextDelete(t->cxt);
	t->cxt = AllocSetContextCreate(CacheMemoryContext, "hlauth audited table",
								   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(t->cxt);

	t->relid = RelationGetRelid(rel);
	root = audit_root(rel);
	if (!OidIsValid(root))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("table \"%s\" is not audited by hlauth.audit()", RelationGetRelationName(rel)),
				 errdetail("hlauth's audit trigger was attached to it by hand; nothing was written."),
				 errhint("Drop the trigger; an hlauth_admin audits tables with hlauth.audit().")));
	t->rootid = root;
	t->qualname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(root)),
											 get_rel_name(root));

	if (trigger->tgnargs < 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hlauth: audit trigger \"%s\" on table \"%s\" has no arguments",
						trigger->tgname, RelationGetRelationName(rel)),
				 errhint("Run hlauth.audit() on the table again.")));

	pkattrs = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	if (pkattrs == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("audited table \"%s\" has no primary key", RelationGetRelationName(rel)),
				 errdetail("Audit records identify their rows by the primary key; nothing was written."),
				 errhint("Add a primary key, or run hlauth.unaudit().")));

	t->natts = desc->natts;
	t->cols = palloc0(sizeof(AuditColumn) * desc->natts);
	t->tenant_att = -1;
	tenant_name = trigger->tgargs[0];
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		AuditColumn *c = &t->cols[i];
		Oid			base;
		int32		typmod = att->atttypmod;
		int			a;

		c->dropped = att->attisdropped;
		if (c->dropped)
			continue;
		c->name = pstrdup(NameStr(att->attname));
		c->pk = bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber, pkattrs);
		for (a = 1; a < trigger->tgnargs; a++)
		{
			if (strcmp(trigger->tgargs[a], c->name) == 0)
				c->excluded = true;
		}
		if (c->pk && c->excluded)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("excluded column \"%s\" of audited table \"%s\" is part of its primary key",
							c->name, RelationGetRelationName(rel)),
					 errdetail("Records carry the primary key: the excluded values would be recorded; nothing was written."),
					 errhint("Change the primary key back, or run hlauth.unaudit() and hlauth.audit() without excluding the column.")));
		if (tenant_name[0] != '\0' && strcmp(tenant_name, c->name) == 0)
		{
			if (att->atttypid != UUIDOID)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("tenant column \"%s\" of audited table \"%s\" is not a uuid",
								c->name, RelationGetRelationName(rel)),
						 errhint("Run hlauth.audit() on the table again.")));
			t->tenant_att = i;
		}
		base = getBaseTypeAndTypmod(att->atttypid, &typmod);
		c->typid = base;
		c->typlen = att->attlen;
		c->typbyval = att->attbyval;
		c->cat = audit_category(base);
		/*
		 * to_jsonb() calls a cast to json that a type's owner may create at any time: a
		 * non-admin's code inside every tenant's writes. Values of a type not owned by
		 * admins all the way down are recorded as their output, a string.
		 */
		if (c->cat == CAT_TO_JSONB && !HlTypeOwnedByAdmins(att->atttypid))
			c->cat = CAT_OUTPUT;
		if (c->cat == CAT_OUTPUT || c->cat == CAT_NUMERIC)
		{
			Oid			outfn;
			bool		isvarlena;

			getTypeOutputInfo(base, &outfn, &isvarlena);
			fmgr_info_cxt(outfn, &c->out, t->cxt);
		}
		else if (c->cat == CAT_TO_JSONB)
		{
			/* to_jsonb(anyelement) learns its argument's type from its call expression. */
			fmgr_info_cxt(F_TO_JSONB, &c->tojsonb, t->cxt);
			c->tojsonb.fn_expr = (Node *)
				makeFuncExpr(F_TO_JSONB, JSONBOID,
							 list_make1(makeNullConst(att->atttypid, att->atttypmod,
													  att->attcollation)),
							 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
		}
	}
	/* Every excluded column and the tenant column must still exist (fail closed). */
	for (i = 1; i < trigger->tgnargs; i++)
	{
		int			j;
		bool		found = false;

		for (j = 0; j < desc->natts && !found; j++)
			found = !t->cols[j].dropped && strcmp(t->cols[j].name, trigger->tgargs[i]) == 0;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("excluded column \"%s\" of audited table \"%s\" does not exist",
							trigger->tgargs[i], RelationGetRelationName(rel)),
					 errdetail("Its values could be recorded under another name; nothing was written."),
					 errhint("Run hlauth.audit() on the table again with the columns to exclude.")));
	}
	if (tenant_name[0] != '\0' && t->tenant_att < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("tenant column \"%s\" of audited table \"%s\" does not exist",
						tenant_name, RelationGetRelationName(rel)),
				 errhint("Run hlauth.audit() on the table again.")));
	/* jsonb sorts an object's keys by length, then bytes: build objects in that order. */
	t->order = palloc(sizeof(int) * desc->natts);
	t->nlive = 0;
	for (i = 0; i < desc->natts; i++)
	{
		int			j;

		if (t->cols[i].dropped)
			continue;
		for (j = t->nlive; j > 0 && jsonb_key_cmp(t->cols[t->order[j - 1]].name, t->cols[i].name) > 0; j--)
			t->order[j] = t->order[j - 1];
		t->order[j] = i;
		t->nlive++;
	}
	MemoryContextSwitchTo(old);
	t->valid = true;
}

static AuditTable *
audit_table_get(TriggerData *trigdata)
{
	Oid			tgoid = trigdata->tg_trigger->tgoid;
	AuditTable *t;
	bool		found;

	if (last_table != NULL && last_table->tgoid == tgoid && last_table->valid)
		return last_table;
	if (pending_cxt == NULL)
	{
		/* Its first block (a batch's worth) is kept when it is reset. */
		pending_cxt = AllocSetContextCreate(TopMemoryContext, "hlauth audit records",
											512 * 1024, 512 * 1024, 8 * 1024 * 1024);
		/* One block holds a record's building: a reset frees nothing. */
		record_cxt = AllocSetContextCreate(TopMemoryContext, "hlauth audit record",
										   64 * 1024, 64 * 1024, 8 * 1024 * 1024);
	}
	t = hash_search(audit_tables, &tgoid, HASH_ENTER, &found);
	if (!found)
	{
		t->valid = false;
		t->cxt = NULL;
	}
	if (!t->valid)
	{
		PG_TRY();
		{
			audit_table_build(t, trigdata->tg_relation, trigdata->tg_trigger);
		}
		PG_CATCH();
		{
			t->valid = false;
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	last_table = t;
	return t;
}

/* ------------------------------------------------------------------------
 * Building a record
 * ------------------------------------------------------------------------ */

/* A uuid as uuid_out() writes it (lower-case hex, 8-4-4-4-12), without its StringInfo. */
static char *
uuid_string(Datum d)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = DatumGetUUIDP(d)->data;
	char	   *s = palloc(UUID_LEN * 2 + 5);
	char	   *p = s;
	int			i;

	for (i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u[i] >> 4];
		*p++ = hex[u[i] & 0x0f];
	}
	*p = '\0';
	return s;
}

static void
push_jsonb_datum(JsonbParseState **ps, Jsonb *jb)
{
	JsonbValue	v;

	if (JB_ROOT_IS_SCALAR(jb))
	{
		if (!JsonbExtractScalar(&jb->root, &v))
			elog(ERROR, "hlauth: could not extract a jsonb scalar");
		pushJsonbValue(ps, WJB_VALUE, &v);
		return;
	}
	v.type = jbvBinary;
	v.val.binary.data = &jb->root;
	v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
	pushJsonbValue(ps, WJB_VALUE, &v);
}

static void
push_string(JsonbParseState **ps, char *s, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = s;
	v.val.string.len = len;
	pushJsonbValue(ps, WJB_VALUE, &v);
}

static void
push_value(JsonbParseState **ps, AuditColumn *c, Datum d, bool isnull)
{
	JsonbValue	v;

	if (isnull)
	{
		v.type = jbvNull;
		pushJsonbValue(ps, WJB_VALUE, &v);
		return;
	}
	switch (c->cat)
	{
		case CAT_BOOL:
			v.type = jbvBool;
			v.val.boolean = DatumGetBool(d);
			pushJsonbValue(ps, WJB_VALUE, &v);
			return;
		case CAT_INT:
			{
				int64		i;

				if (c->typid == INT2OID)
					i = DatumGetInt16(d);
				else if (c->typid == INT4OID)
					i = DatumGetInt32(d);
				else
					i = DatumGetInt64(d);
				v.type = jbvNumeric;
				v.val.numeric = int64_to_numeric(i);
				pushJsonbValue(ps, WJB_VALUE, &v);
				return;
			}
		case CAT_NUMERIC:
			{
				Numeric		n = DatumGetNumeric(d);

				if (numeric_is_nan(n) || numeric_is_inf(n))
				{
					char	   *s = OutputFunctionCall(&c->out, d);

					push_string(ps, s, strlen(s));
					return;
				}
				v.type = jbvNumeric;
				v.val.numeric = n;
				pushJsonbValue(ps, WJB_VALUE, &v);
				return;
			}
		case CAT_TEXT:
			{
				text	   *t = DatumGetTextPP(d);

				push_string(ps, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				return;
			}
		case CAT_DATETIME:
			{
				char		buf[MAXDATELEN + 1];
				int			utc = 0;

				JsonEncodeDateTime(buf, d, c->typid, c->typid == TIMESTAMPTZOID ? &utc : NULL);
				push_string(ps, pstrdup(buf), strlen(buf));
				return;
			}
		case CAT_UUID:
			push_string(ps, uuid_string(d), UUID_LEN * 2 + 4);
			return;
		case CAT_JSONB:
			push_jsonb_datum(ps, DatumGetJsonbP(d));
			return;
		case CAT_OUTPUT:
			{
				char	   *s = OutputFunctionCall(&c->out, d);

				push_string(ps, s, strlen(s));
				return;
			}
		case CAT_TO_JSONB:
			push_jsonb_datum(ps, DatumGetJsonbP(FunctionCall1(&c->tojsonb, d)));
			return;
	}
}

/*
 * A column's value as a scalar JsonbValue, when it is one (false for a nested container:
 * the caller then builds the object the generic way).
 */
static bool
scalar_value(AuditColumn *c, Datum d, bool isnull, JsonbValue *v)
{
	if (isnull)
	{
		v->type = jbvNull;
		return true;
	}
	switch (c->cat)
	{
		case CAT_BOOL:
			v->type = jbvBool;
			v->val.boolean = DatumGetBool(d);
			return true;
		case CAT_INT:
			v->type = jbvNumeric;
			v->val.numeric = int64_to_numeric(c->typid == INT2OID ? DatumGetInt16(d) :
											  c->typid == INT4OID ? DatumGetInt32(d) :
											  DatumGetInt64(d));
			return true;
		case CAT_NUMERIC:
			{
				Numeric		n = DatumGetNumeric(d);

				if (numeric_is_nan(n) || numeric_is_inf(n))
				{
					char	   *s = OutputFunctionCall(&c->out, d);

					v->type = jbvString;
					v->val.string.val = s;
					v->val.string.len = strlen(s);
				}
				else
				{
					v->type = jbvNumeric;
					v->val.numeric = n;
				}
				return true;
			}
		case CAT_TEXT:
			{
				text	   *t = DatumGetTextPP(d);

				v->type = jbvString;
				v->val.string.val = VARDATA_ANY(t);
				v->val.string.len = VARSIZE_ANY_EXHDR(t);
				return true;
			}
		case CAT_DATETIME:
			{
				char		buf[MAXDATELEN + 1];
				int			utc = 0;

				JsonEncodeDateTime(buf, d, c->typid, c->typid == TIMESTAMPTZOID ? &utc : NULL);
				v->type = jbvString;
				v->val.string.val = pstrdup(buf);
				v->val.string.len = strlen(buf);
				return true;
			}
		case CAT_UUID:
			v->type = jbvString;
			v->val.string.val = uuid_string(d);
			v->val.string.len = UUID_LEN * 2 + 4;
			return true;
		case CAT_OUTPUT:
			{
				char	   *s = OutputFunctionCall(&c->out, d);

				v->type = jbvString;
				v->val.string.val = s;
				v->val.string.len = strlen(s);
				return true;
			}
		case CAT_JSONB:
		case CAT_TO_JSONB:
			{
				Jsonb	   *jb = c->cat == CAT_JSONB ? DatumGetJsonbP(d) :
					DatumGetJsonbP(FunctionCall1(&c->tojsonb, d));

				return JB_ROOT_IS_SCALAR(jb) && JsonbExtractScalar(&jb->root, v);
			}
	}
	return false;
}

/* The columns of slot selected by mask, as a jsonb object (in the current context). */
static Datum
columns_to_jsonb(AuditTable *t, TupleTableSlot *slot, const bool *mask)
{
	JsonbValue	obj;
	JsonbPair  *pairs = palloc(sizeof(JsonbPair) * Max(t->nlive, 1));
	Jsonb	   *jb;
	int			n = 0;
	int			k;

	/*
	 * Most rows hold scalars only: their object is built directly, its pairs already in
	 * jsonb's key order (no builder, no sort). A nested value (an array, an object) sends
	 * the row down the generic path.
	 */
	for (k = 0; k < t->nlive; k++)
	{
		int			i = t->order[k];
		AuditColumn *c = &t->cols[i];

		if (!mask[i])
			continue;
		if (!scalar_value(c, slot->tts_values[i], slot->tts_isnull[i], &pairs[n].value))
			break;
		pairs[n].key.type = jbvString;
		pairs[n].key.val.string.val = c->name;
		pairs[n].key.val.string.len = strlen(c->name);
		pairs[n].order = n;
		n++;
	}
	if (k == t->nlive)
	{
		obj.type = jbvObject;
		obj.val.object.nPairs = n;
		obj.val.object.pairs = pairs;
		jb = JsonbValueToJsonb(&obj);
	}
	else
	{
		JsonbParseState *ps = NULL;
		JsonbValue *res;
		int			i;

		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		for (i = 0; i < t->natts; i++)
		{
			AuditColumn *c = &t->cols[i];
			JsonbValue	key;

			if (!mask[i])
				continue;
			key.type = jbvString;
			key.val.string.val = c->name;
			key.val.string.len = strlen(c->name);
			pushJsonbValue(&ps, WJB_KEY, &key);
			push_value(&ps, c, slot->tts_values[i], slot->tts_isnull[i]);
		}
		res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
		jb = JsonbValueToJsonb(res);
	}
	return JsonbPGetDatum(jb);
}

/* Have two values of a column the same bytes (whatever their varlena headers)? */
static bool
same_value(AuditColumn *c, Datum a, bool anull, Datum b, bool bnull)
{
	if (anull || bnull)
		return anull == bnull;
	if (c->typlen == -1)
	{
		struct varlena *va = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(a));
		struct varlena *vb = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(b));

		return VARSIZE_ANY_EXHDR(va) == VARSIZE_ANY_EXHDR(vb) &&
			memcmp(VARDATA_ANY(va), VARDATA_ANY(vb), VARSIZE_ANY_EXHDR(va)) == 0;
	}
	return datumIsEqual(a, b, c->typbyval, c->typlen);
}

static const char *
role_name_cached(int slot, Oid role)
{
	if (name_cache_oid[slot] != role)
	{
		char	   *n = GetUserNameFromId(role, false);

		strlcpy(name_cache[slot], n, NAMEDATALEN);
		name_cache_oid[slot] = role;
	}
	return name_cache[slot];
}

/* The role's name as a text datum in pending_cxt, shared by the batch's records. */
static Datum
shared_role(int slot, Oid role)
{
	if (shared_role_oid[slot] != role)
	{
		MemoryContext old = MemoryContextSwitchTo(pending_cxt);

		shared_role_name[slot] = PointerGetDatum(cstring_to_text(role_name_cached(slot, role)));
		shared_role_oid[slot] = role;
		MemoryContextSwitchTo(old);
	}
	return shared_role_name[slot];
}

static Datum
uuid_datum(const pg_uuid_t *u)
{
	pg_uuid_t  *copy = palloc(sizeof(pg_uuid_t));

	memcpy(copy, u, sizeof(pg_uuid_t));
	return UUIDPGetDatum(copy);
}

/* ---- the row hash ---- */

/* Big-endian writers into a buffer already large enough. */
static inline char *
put_u32(char *p, uint32 v)
{
	p[0] = (char) (v >> 24);
	p[1] = (char) (v >> 16);
	p[2] = (char) (v >> 8);
	p[3] = (char) v;
	return p + 4;
}

static inline char *
put_u64(char *p, uint64 v)
{
	return put_u32(put_u32(p, (uint32) (v >> 32)), (uint32) v);
}

static inline char *
put_bytes(char *p, const char *src, size_t len)
{
	p = put_u32(p, (uint32) len);
	memcpy(p, src, len);
	return p + len;
}

static const char row_hash_tag[] = "hlauth audit row v1";

/*
 * SHA-256 of the record's columns but row_hash: "hlauth audit row v1" and its NUL, then per
 * column a byte 0 (NULL) or 1 followed by its value: timestamps and xids as 8 bytes, seq
 * as 4 (big endian), uuids as 16 bytes, text and jsonb as a 4-byte length and their bytes
 * (jsonb in its binary form), text[] as a count and each element (length 0xffffffff for
 * NULL). The encoding is written into one buffer sized first, then hashed once.
 */
static void
audit_hash(const Datum *values, const bool *nulls, unsigned char out[HLA_SHA256_LEN])
{
	static char *buf = NULL;
	static size_t bufsize = 0;
	struct varlena *v[AL_HASH];
	Datum	   *elems = NULL;
	bool	   *enulls = NULL;
	int			nelems = 0;
	size_t		need = sizeof(row_hash_tag) + AL_HASH * 5;
	char	   *p;
	int			i;
	int			k;

	/* Sizes first. */
	for (i = 0; i < AL_HASH; i++)
	{
		v[i] = NULL;
		if (nulls[i])
			continue;
		switch (i)
		{
			case AL_LOGGED_AT:
			case AL_XID:
				need += 8;
				break;
			case AL_SEQ:
				need += 4;
				break;
			case AL_TENANT:
			case AL_PRINCIPAL:
			case AL_IMPERSONATOR:
				need += UUID_LEN;
				break;
			case AL_CHANGED:
				deconstruct_array(DatumGetArrayTypeP(values[i]), TEXTOID, -1, false, TYPALIGN_INT,
								  &elems, &enulls, &nelems);
				need += 4;
				for (k = 0; k < nelems; k++)
					need += 4 + (enulls[k] ? 0 : VARSIZE_ANY_EXHDR(DatumGetPointer(elems[k])));
				break;
			default:			/* text and jsonb */
				v[i] = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(values[i]));
				need += 4 + VARSIZE_ANY_EXHDR(v[i]);
				break;
		}
	}
	if (need > bufsize)
	{
		size_t		size = Max(need, 1024);

		buf = buf ? repalloc(buf, size) : MemoryContextAlloc(TopMemoryContext, size);
		bufsize = size;
	}

	p = buf;
	memcpy(p, row_hash_tag, sizeof(row_hash_tag));
	p += sizeof(row_hash_tag);
	for (i = 0; i < AL_HASH; i++)
	{
		*p++ = nulls[i] ? 0 : 1;
		if (nulls[i])
			continue;
		switch (i)
		{
			case AL_LOGGED_AT:
				p = put_u64(p, (uint64) DatumGetTimestampTz(values[i]));
				break;
			case AL_XID:
				p = put_u64(p, (uint64) DatumGetInt64(values[i]));
				break;
			case AL_SEQ:
				p = put_u32(p, (uint32) DatumGetInt32(values[i]));
				break;
			case AL_TENANT:
			case AL_PRINCIPAL:
			case AL_IMPERSONATOR:
				memcpy(p, DatumGetUUIDP(values[i])->data, UUID_LEN);
				p += UUID_LEN;
				break;
			case AL_CHANGED:
				p = put_u32(p, (uint32) nelems);
				for (k = 0; k < nelems; k++)
				{
					if (enulls[k])
						p = put_u32(p, 0xffffffff);
					else
						p = put_bytes(p, VARDATA_ANY(DatumGetPointer(elems[k])),
									  VARSIZE_ANY_EXHDR(DatumGetPointer(elems[k])));
				}
				break;
			default:
				p = put_bytes(p, VARDATA_ANY(v[i]), VARSIZE_ANY_EXHDR(v[i]));
				break;
		}
	}
	Assert((size_t) (p - buf) <= need);
	if (hla_sha256((unsigned char *) buf, p - buf, out) != 0)
		elog(ERROR, "hlauth: SHA-256 failed");
}

static Datum
bytea_datum(const unsigned char *p, size_t len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), p, len);
	return PointerGetDatum(b);
}

/*
 * A new record for the current transaction (caller fills the rest). Called in record_cxt,
 * which it resets: what an abandoned record (an error while building) left goes with it.
 */
static AuditRecord *
audit_new_record(AuditTable *t, int op)
{
	AuditRecord *r = &building_rec;
	FullTransactionId fxid = GetTopFullTransactionId();
	TimestampTz now;
	const pg_uuid_t *principal = HlContextPrincipal();
	const char *token = HlContextTokenId();
	const char *method = HlContextMethod();
	int64		day;

	Assert(CurrentMemoryContext == record_cxt);
	MemoryContextReset(record_cxt);
	if (pending == NULL)
	{
		pending = MemoryContextAlloc(pending_cxt, sizeof(AuditPending) * AUDIT_BATCH);
		pending_cap = AUDIT_BATCH;
	}
	else if (npending >= pending_cap)
	{
		/* Only while enclosing subtransactions' records wait (see audit_flush). */
		pending = repalloc(pending, sizeof(AuditPending) * pending_cap * 2);
		pending_cap *= 2;
	}
	memset(r->nulls, true, sizeof(r->nulls));
	now = GetCurrentTimestamp();

	if (!FullTransactionIdEquals(fxid, seq_fxid))
	{
		seq_fxid = fxid;
		seq_next = 0;
	}
	r->values[AL_LOGGED_AT] = TimestampTzGetDatum(now);
	r->values[AL_XID] = Int64GetDatum((int64) U64FromFullTransactionId(fxid));
	r->values[AL_SEQ] = Int32GetDatum(++seq_next);
	if (shared_table != t)
	{
		MemoryContext old = MemoryContextSwitchTo(pending_cxt);

		shared_table_name = PointerGetDatum(cstring_to_text(t->qualname));
		shared_table = t;
		MemoryContextSwitchTo(old);
	}
	r->values[AL_TABLE] = shared_table_name;
	r->values[AL_OP] = PointerGetDatum(op_text[op]);
	r->nulls[AL_LOGGED_AT] = r->nulls[AL_XID] = r->nulls[AL_SEQ] = false;
	r->nulls[AL_TABLE] = r->nulls[AL_OP] = false;
	if (principal != NULL)
	{
		r->values[AL_PRINCIPAL] = uuid_datum(principal);
		r->nulls[AL_PRINCIPAL] = false;
		if (method != NULL)
		{
			r->values[AL_METHOD] = PointerGetDatum(cstring_to_text(method));
			r->nulls[AL_METHOD] = false;
		}
		if (token != NULL)
		{
			r->values[AL_TOKEN] = PointerGetDatum(cstring_to_text(token));
			r->nulls[AL_TOKEN] = false;
		}
	}
	r->values[AL_DB_USER] = shared_role(0, GetSessionUserId());
	r->values[AL_DB_ROLE] = shared_role(1, GetUserId());
	r->nulls[AL_DB_USER] = r->nulls[AL_DB_ROLE] = false;

	day = now / USECS_PER_DAY;
	if (now < 0 && now % USECS_PER_DAY != 0)
		day--;
	r->day = (int32) day;
	r->subid = GetCurrentSubTransactionId();
	return r;
}

static TupleDesc audit_record_desc(void);

/* Hashes the record, forms its tuple in pending_cxt and counts it pending. */
static void
audit_seal_record(AuditRecord *r)
{
	unsigned char h[HLA_SHA256_LEN];
	TupleDesc	desc = audit_record_desc();
	AuditPending *p = &pending[npending];
	MemoryContext old;

	audit_hash(r->values, r->nulls, h);
	r->values[AL_HASH] = bytea_datum(h, sizeof(h));
	r->nulls[AL_HASH] = false;
	old = MemoryContextSwitchTo(pending_cxt);
	p->tuple = heap_form_tuple(desc, r->values, r->nulls);
	MemoryContextSwitchTo(old);
	p->day = r->day;
	p->subid = r->subid;
	npending++;
	MemoryContextReset(record_cxt);
}

/* ------------------------------------------------------------------------
 * Writing the records
 * ------------------------------------------------------------------------ */

static Oid
audit_partition(int32 day)
{
	Oid			nsp;
	Oid			parent;
	Oid			relid;
	int			y,
				m,
				d;
	char		name[NAMEDATALEN];

	if (day == part_day && OidIsValid(part_oid))
		return part_oid;
	nsp = get_namespace_oid("hlauth", false);
	parent = get_relname_relid("audit_log", nsp);
	j2date(day + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	snprintf(name, sizeof(name), "audit_log_p%04d%02d%02d", y, m, d);
	relid = get_relname_relid(name, nsp);
	if (!OidIsValid(relid))
		relid = get_relname_relid("audit_log_default", nsp);
	if (!OidIsValid(relid) || !OidIsValid(parent) ||
		get_rel_relkind(relid) != RELKIND_RELATION || !get_rel_relispartition(relid) ||
		get_partition_parent(relid, true) != parent)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("hlauth: no partition of hlauth.audit_log for %04d-%02d-%02d", y, m, d),
				 errdetail("Neither %s nor the default partition hlauth.audit_log_default exists; nothing was written.", name),
				 errhint("Run hlauth.audit_create_partitions().")));
	part_day = day;
	part_oid = relid;
	return relid;
}

/* Has the relation the columns of hlauth.audit_log (as the records are formed for)? */
static bool
audit_desc_ok(TupleDesc desc)
{
	int			i;

	if (desc->natts != AL_NATTS)
		return false;
	for (i = 0; i < AL_NATTS; i++)
	{
		if (TupleDescAttr(desc, i)->attisdropped ||
			(slot_desc != NULL && TupleDescAttr(desc, i)->atttypid != TupleDescAttr(slot_desc, i)->atttypid))
			return false;
	}
	return true;
}

/* The descriptor of hlauth.audit_log the records are formed with (looked up once). */
static TupleDesc
audit_record_desc(void)
{
	Relation	rel;
	Oid			relid;
	MemoryContext old;
	TupleDesc	desc;
	int			i;

	if (slot_desc != NULL)
		return slot_desc;
	relid = get_relname_relid("audit_log", get_namespace_oid("hlauth", false));
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("hlauth: the table hlauth.audit_log does not exist"),
				 errdetail("Nothing was written."),
				 errhint("Reinstall the extension hlauth.")));
	rel = table_open(relid, AccessShareLock);
	if (!audit_desc_ok(RelationGetDescr(rel)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("hlauth: hlauth.audit_log does not have the columns hlauth writes"),
				 errdetail("Nothing was written."),
				 errhint("Reinstall the extension hlauth.")));
	old = MemoryContextSwitchTo(TopMemoryContext);
	desc = CreateTupleDescCopy(RelationGetDescr(rel));
	for (i = 0; i < AUDIT_BATCH; i++)
		slot_pool[i] = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
	MemoryContextSwitchTo(old);
	table_close(rel, AccessShareLock);
	slot_desc = desc;
	return desc;
}

static void
audit_insert(int32 day, AuditPending *recs, int n)
{
	Relation	rel;
	TupleDesc	desc;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot **slots;
	CommandId	cid = GetCurrentCommandId(true);
	int			i;

	rel = try_table_open(audit_partition(day), RowExclusiveLock);
	if (rel == NULL)
	{
		/* Dropped since we looked it up: look again. */
		part_oid = InvalidOid;
		rel = table_open(audit_partition(day), RowExclusiveLock);
	}
	desc = RelationGetDescr(rel);
	if (!audit_desc_ok(desc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("hlauth: audit partition \"%s\" does not have the columns of hlauth.audit_log",
						RelationGetRelationName(rel))));

	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);

	/*
	 * The slots are told they own the tuples, so the multi-insert takes them as they are
	 * (a slot that does not own its tuple has it copied first). The tuples stay
	 * pending_cxt's all the same: the slots disown them before they are cleared, on an
	 * error too, so a record still pending after a failed write (its subtransaction's
	 * abort keeps the records of the outer ones) keeps its tuple.
	 */
	slots = slot_pool;
	for (i = 0; i < n; i++)
		ExecStoreHeapTuple(recs[i].tuple, slots[i], true);
	PG_TRY();
	{
		table_multi_insert(rel, slots, n, cid, 0, NULL);
		if (rri->ri_NumIndices > 0)
		{
			for (i = 0; i < n; i++)
			{
				List	   *r;

#if PG_VERSION_NUM >= 160000
				r = ExecInsertIndexTuples(rri, slots[i], estate, false, false, NULL, NIL, false);
#else
				r = ExecInsertIndexTuples(rri, slots[i], estate, false, false, NULL, NIL);
#endif
				list_free(r);
				ResetPerTupleExprContext(estate);
			}
		}
	}
	PG_FINALLY();
	{
		for (i = 0; i < n; i++)
		{
			slots[i]->tts_flags &= ~TTS_FLAG_SHOULDFREE;
			ExecClearTuple(slots[i]);
		}
	}
	PG_END_TRY();
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
}

static void
audit_flush(void)
{
	SubTransactionId cur;
	int			first;
	int			i;

	/* Inside another record's building (a nested statement): later, by the outer one. */
	if (building)
		return;

	/*
	 * Only the records of the current subtransaction and of its committed children, which
	 * are the tail of the pending ones. An enclosing subtransaction's records wait for a
	 * flush at their own level: written now, they would be rolled back with this
	 * subtransaction while the changes they record stay (a trigger whose exception block
	 * writes to another audited table, say). At commit, every record is written.
	 */
	cur = GetCurrentSubTransactionId();
	first = npending;
	while (first > 0 && pending[first - 1].subid >= cur)
		first--;
	i = first;
	while (i < npending)
	{
		int			j = i;

		while (j < npending && j - i < AUDIT_BATCH && pending[j].day == pending[i].day)
			j++;
		audit_insert(pending[i].day, &pending[i], j - i);
		i = j;
	}
	if (first == 0)
		audit_reset_pending();
	else
		npending = first;
}

/* ------------------------------------------------------------------------
 * The triggers
 * ------------------------------------------------------------------------ */

static TriggerData *
audit_trigger_data(FunctionCallInfo fcinfo, const char *fname, bool row)
{
	TriggerData *td;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s() must be called as a trigger", fname)));
	td = (TriggerData *) fcinfo->context;
	if (!TRIGGER_FIRED_AFTER(td->tg_event) ||
		(row ? !TRIGGER_FIRED_FOR_ROW(td->tg_event) : !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s() must be an AFTER %s trigger", fname, row ? "ROW" : "STATEMENT"),
				 errhint("Use hlauth.audit() to attach it.")));
	return td;
}

/*
 * The audit triggers fire whatever session_replication_role is (ENABLE ALWAYS): a role
 * granted SET on it switched to replica mode in the middle of a statement (set_config() in
 * its WHERE clause, a trigger of its own), and its writes went unrecorded (a red-team pass).
 * In replica mode they record nothing for a superuser, as simply enabled triggers would not
 * fire: a bulk load of its own, logical replication's apply worker.
 */
static bool
audit_skipped(void)
{
	return SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA &&
		superuser_arg(GetOuterUserId());
}

Datum
hlauth_audit_row(PG_FUNCTION_ARGS)
{
	TriggerData *td = audit_trigger_data(fcinfo, "hlauth_internal.audit_row", true);
	AuditTable *t;
	TupleTableSlot *oldslot = NULL;
	TupleTableSlot *newslot = NULL;
	TupleTableSlot *rowslot;
	bool	   *mask;
	AuditRecord *r;
	MemoryContext old;
	int			op;
	int			i;

	if (audit_skipped())
		return PointerGetDatum(NULL);
	t = audit_table_get(td);
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		op = 0;
		newslot = td->tg_trigslot;
	}
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		op = 1;
		oldslot = td->tg_trigslot;
		newslot = td->tg_newslot;
	}
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		op = 2;
		oldslot = td->tg_trigslot;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hlauth_internal.audit_row() fires on INSERT, UPDATE and DELETE only")));
	if (building)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hlauth: a write to audited table \"%s\" happened while the audit record of another row was being built",
						RelationGetRelationName(td->tg_relation)),
				 errdetail("A function run to convert a recorded value (a cast to json) wrote to an audited table; nothing was written."),
				 errhint("Keep functions that convert values to json free of writes.")));
	if (oldslot)
		slot_getallattrs(oldslot);
	if (newslot)
		slot_getallattrs(newslot);
	rowslot = newslot ? newslot : oldslot;
	building = true;
	building_subid = GetCurrentSubTransactionId();

	mask = palloc0(sizeof(bool) * t->natts);
	if (op == 1)
	{
		/* Only what changed; nothing at all when nothing did. */
		Datum	   *changed = palloc(sizeof(Datum) * t->natts);
		int			nchanged = 0;

		for (i = 0; i < t->natts; i++)
		{
			AuditColumn *c = &t->cols[i];

			if (c->dropped ||
				same_value(c, oldslot->tts_values[i], oldslot->tts_isnull[i],
						   newslot->tts_values[i], newslot->tts_isnull[i]))
				continue;
			changed[nchanged++] = CStringGetTextDatum(c->name);
			mask[i] = !c->excluded;
		}
		if (nchanged == 0)
		{
			building = false;
			return PointerGetDatum(NULL);
		}
		/* The record and everything its building allocates: in record_cxt. */
		old = MemoryContextSwitchTo(record_cxt);
		r = audit_new_record(t, op);
		r->values[AL_CHANGED] = PointerGetDatum(construct_array(changed, nchanged, TEXTOID, -1,
																false, TYPALIGN_INT));
		r->nulls[AL_CHANGED] = false;
		r->values[AL_OLD] = columns_to_jsonb(t, oldslot, mask);
		r->values[AL_NEW] = columns_to_jsonb(t, newslot, mask);
		r->nulls[AL_OLD] = r->nulls[AL_NEW] = false;
	}
	else
	{
		for (i = 0; i < t->natts; i++)
			mask[i] = !t->cols[i].dropped && !t->cols[i].excluded;
		old = MemoryContextSwitchTo(record_cxt);
		r = audit_new_record(t, op);
		r->values[op == 0 ? AL_NEW : AL_OLD] = columns_to_jsonb(t, rowslot, mask);
		r->nulls[op == 0 ? AL_NEW : AL_OLD] = false;
	}
	for (i = 0; i < t->natts; i++)
		mask[i] = t->cols[i].pk;
	r->values[AL_PK] = columns_to_jsonb(t, rowslot, mask);
	r->nulls[AL_PK] = false;
	if (t->tenant_att >= 0 && !rowslot->tts_isnull[t->tenant_att])
	{
		r->values[AL_TENANT] = uuid_datum(DatumGetUUIDP(rowslot->tts_values[t->tenant_att]));
		r->nulls[AL_TENANT] = false;
	}
	audit_seal_record(r);
	MemoryContextSwitchTo(old);
	building = false;
	if (npending >= AUDIT_BATCH)
		audit_flush();
	return PointerGetDatum(NULL);
}

Datum
hlauth_audit_statement(PG_FUNCTION_ARGS)
{
	TriggerData *td = audit_trigger_data(fcinfo, "hlauth_internal.audit_statement", false);

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) && !audit_skipped())
	{
		AuditTable *t = audit_table_get(td);
		MemoryContext old;
		AuditRecord *r;

		if (building)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("hlauth: audited table \"%s\" was truncated while the audit record of another row was being built",
							RelationGetRelationName(td->tg_relation)),
					 errhint("Keep functions that convert values to json free of writes.")));
		if (npending >= AUDIT_BATCH)
			audit_flush();
		old = MemoryContextSwitchTo(record_cxt);
		r = audit_new_record(t, 3);
		if (t->tenant_att >= 0 && HlContextTenant() != NULL)
		{
			/* A TRUNCATE has no row: the tenant is the context's, when there is one. */
			r->values[AL_TENANT] = uuid_datum(HlContextTenant());
			r->nulls[AL_TENANT] = false;
		}
		audit_seal_record(r);
		MemoryContextSwitchTo(old);
	}
	audit_flush();
	return PointerGetDatum(NULL);
}

/* ------------------------------------------------------------------------
 * Seals: the row hash of a stored record, the chain, the MAC
 * ------------------------------------------------------------------------ */

Datum
hlauth_audit_row_hash(PG_FUNCTION_ARGS)
{
	HeapTupleHeader rec = PG_GETARG_HEAPTUPLEHEADER(0);
	TupleDesc	desc;
	HeapTupleData tuple;
	Datum		values[AL_NATTS];
	bool		nulls[AL_NATTS];
	unsigned char h[HLA_SHA256_LEN];

	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(rec), HeapTupleHeaderGetTypMod(rec));
	if (desc->natts != AL_NATTS)
		elog(ERROR, "hlauth: an audit record has %d columns, not %d", desc->natts, AL_NATTS);
	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;
	heap_deform_tuple(&tuple, desc, values, nulls);
	ReleaseTupleDesc(desc);
	audit_hash(values, nulls, h);
	PG_RETURN_DATUM(bytea_datum(h, sizeof(h)));
}

static const char chain_start[] = "hlauth audit chain v1";

Datum
hlauth_audit_chain_step(PG_FUNCTION_ARGS)
{
	unsigned char buf[2 * HLA_SHA256_LEN];
	unsigned char out[HLA_SHA256_LEN];
	size_t		len = HLA_SHA256_LEN;

	if (PG_ARGISNULL(0))
		hla_sha256((const unsigned char *) chain_start, strlen(chain_start), buf);
	else
	{
		bytea	   *state = PG_GETARG_BYTEA_PP(0);

		if (VARSIZE_ANY_EXHDR(state) != HLA_SHA256_LEN)
			elog(ERROR, "hlauth: bad audit chain state");
		memcpy(buf, VARDATA_ANY(state), HLA_SHA256_LEN);
	}
	if (!PG_ARGISNULL(1))
	{
		bytea	   *h = PG_GETARG_BYTEA_PP(1);

		/* A stored hash of the wrong length still changes the chain: it cannot match. */
		if (VARSIZE_ANY_EXHDR(h) == HLA_SHA256_LEN)
		{
			memcpy(buf + HLA_SHA256_LEN, VARDATA_ANY(h), HLA_SHA256_LEN);
			len += HLA_SHA256_LEN;
		}
		else
		{
			memset(buf + HLA_SHA256_LEN, 0xff, HLA_SHA256_LEN);
			len += HLA_SHA256_LEN;
		}
	}
	if (hla_sha256(buf, len, out) != 0)
		elog(ERROR, "hlauth: SHA-256 failed");
	PG_RETURN_DATUM(bytea_datum(out, sizeof(out)));
}

Datum
hlauth_audit_chain_final(PG_FUNCTION_ARGS)
{
	unsigned char out[HLA_SHA256_LEN];

	if (!PG_ARGISNULL(0))
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	hla_sha256((const unsigned char *) chain_start, strlen(chain_start), out);
	PG_RETURN_DATUM(bytea_datum(out, sizeof(out)));
}

Datum
hlauth_audit_key_version(PG_FUNCTION_ARGS)
{
	unsigned char key[HL_KEY_LEN];
	int			version = HlSecretPurposeKey(HL_PURPOSE_AUDIT_SEAL, 0, key);

	hla_cleanse(key, sizeof(key));
	PG_RETURN_INT32(version);
}

Datum
hlauth_audit_mac(PG_FUNCTION_ARGS)
{
	text	   *msg = PG_GETARG_TEXT_PP(0);
	int32		version = PG_GETARG_INT32(1);
	unsigned char key[HL_KEY_LEN];
	unsigned char mac[HLA_SHA256_LEN];
	int			rc;

	if (version < 1)
		PG_RETURN_NULL();
	if (HlSecretPurposeKey(HL_PURPOSE_AUDIT_SEAL, version, key) == 0)
		PG_RETURN_NULL();
	rc = hla_hmac_sha256(key, sizeof(key), (unsigned char *) VARDATA_ANY(msg),
						 VARSIZE_ANY_EXHDR(msg), mac);
	hla_cleanse(key, sizeof(key));
	if (rc != 0)
		elog(ERROR, "hlauth: HMAC-SHA256 failed");
	PG_RETURN_DATUM(bytea_datum(mac, sizeof(mac)));
}

Datum
hlauth_audit_mac_equal(PG_FUNCTION_ARGS)
{
	bytea	   *a;
	bytea	   *b;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);
	a = PG_GETARG_BYTEA_PP(0);
	b = PG_GETARG_BYTEA_PP(1);
	if (VARSIZE_ANY_EXHDR(a) != VARSIZE_ANY_EXHDR(b))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(hla_ct_equal(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)));
}

/* Has an ALTER TABLE (a command of pg_event_trigger_ddl_commands()) a subcommand of this type? */
static bool
ddl_has_subcommand(CollectedCommand *cmd, AlterTableType type)
{
	ListCell   *lc;

	if (cmd == NULL || cmd->type != SCT_AlterTable)
		return false;
	foreach(lc, cmd->d.alterTable.subcmds)
	{
		CollectedATSubcmd *sub = (CollectedATSubcmd *) lfirst(lc);

		if (sub->parsetree != NULL && IsA(sub->parsetree, AlterTableCmd) &&
			((AlterTableCmd *) sub->parsetree)->subtype == type)
			return true;
	}
	return false;
}

/*
 * Does an ALTER TABLE (in an event trigger) change a column's type? Such a change rewrites
 * every row (USING can give any value) without firing a trigger: the audit guard refuses it
 * on audited tables.
 */
PG_FUNCTION_INFO_V1(hlauth_ddl_alters_column_type);
Datum
hlauth_ddl_alters_column_type(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ddl_has_subcommand((CollectedCommand *) PG_GETARG_POINTER(0), AT_AlterColumnType));
}

/*
 * Does this ALTER TABLE attach a partition? Only then (and at CREATE TABLE) may the audit's
 * guard give new partitions the statement trigger: pg_restore runs ALTER TABLE ... ENABLE
 * ALWAYS TRIGGER between the CREATE TRIGGERs of the audit, and a statement trigger made for
 * a partition then would collide with the one the dump creates next.
 */
PG_FUNCTION_INFO_V1(hlauth_ddl_attaches_partition);
Datum
hlauth_ddl_attaches_partition(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ddl_has_subcommand((CollectedCommand *) PG_GETARG_POINTER(0), AT_AttachPartition));
}

/*
 * The partitions an ALTER TABLE (a command of pg_event_trigger_ddl_commands()) detaches, as
 * written: the audit guard records a security event for each one detached from an audited
 * table (a detached partition is no longer audited).
 */
PG_FUNCTION_INFO_V1(hlauth_ddl_detached_partitions);
Datum
hlauth_ddl_detached_partitions(PG_FUNCTION_ARGS)
{
	CollectedCommand *cmd = (CollectedCommand *) PG_GETARG_POINTER(0);
	ArrayBuildState *astate = NULL;
	ListCell   *lc;

	if (cmd == NULL || cmd->type != SCT_AlterTable)
		PG_RETURN_NULL();
	foreach(lc, cmd->d.alterTable.subcmds)
	{
		CollectedATSubcmd *sub = (CollectedATSubcmd *) lfirst(lc);
		AlterTableCmd *at;
		PartitionCmd *pc;

		if (sub->parsetree == NULL || !IsA(sub->parsetree, AlterTableCmd))
			continue;
		at = (AlterTableCmd *) sub->parsetree;
		if ((at->subtype != AT_DetachPartition && at->subtype != AT_DetachPartitionFinalize) ||
			at->def == NULL || !IsA(at->def, PartitionCmd))
			continue;
		pc = (PartitionCmd *) at->def;
		astate = accumArrayResult(astate,
								  CStringGetTextDatum(quote_qualified_identifier(pc->name->schemaname,
																				 pc->name->relname)),
								  false, TEXTOID, CurrentMemoryContext);
	}
	if (astate == NULL)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(makeArrayResult(astate, CurrentMemoryContext));
}
