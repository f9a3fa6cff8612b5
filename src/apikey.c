/*
 * src/apikey.c
 *		API keys: the hlauth.apikey type, key generation, and hlauth.authenticate(key).
 *
 * A key is `<prefix>_<key id><secret><checksum>` (src/core/apikey.h). The database stores
 * only the key id and HMAC-SHA256(pepper, "<prefix>_<key id><secret>") with the pepper's
 * version: the pepper is a purpose key derived from the server secret (src/secret.c), which
 * lives in a file outside the data directory. A dump of the database therefore holds
 * nothing that verifies a key.
 *
 * authenticate(key):
 *	1. parses the key and checks its checksum: garbage never reaches a table;
 *	2. looks the key id up in a per-backend cache of hlauth.api_keys rows (filled by a
 *	   primary-key index scan on a miss; unknown ids are remembered for a few seconds);
 *	3. computes the HMAC of the presented key (always, even for an unknown id, so that the
 *	   work done does not depend on which check fails) and compares in constant time;
 *	4. checks revocation, expiry, the end of a rotation overlap, the tenant (and every
 *	   tenant above it) active, the principal active;
 *	5. sets the context with scopes = the key's scopes ∩ the principal's effective scopes
 *	   now (src/rbac.c), so a demoted principal's keys shrink at once.
 * Every failure is the same 28000 error. The cache is flushed in every backend when a key
 * is revoked, rotated or changed (a column-specific statement trigger sends a relcache
 * invalidation); issuing a key changes nothing cached.
 *
 * last_used_at is written at most once a minute per key and backend, never waiting for a
 * row lock (SKIP LOCKED), and never in a read-only transaction.
 */
#include "hlauth.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "core/apikey.h"
#include "core/crypto.h"

PG_FUNCTION_INFO_V1(hlauth_apikey_in);
PG_FUNCTION_INFO_V1(hlauth_apikey_out);
PG_FUNCTION_INFO_V1(hlauth_apikey_recv);
PG_FUNCTION_INFO_V1(hlauth_apikey_send);
PG_FUNCTION_INFO_V1(hlauth_apikey_id);
PG_FUNCTION_INFO_V1(hlauth_apikey_version);
PG_FUNCTION_INFO_V1(hlauth_apikey_matches);
PG_FUNCTION_INFO_V1(hlauth_generate_api_key);
PG_FUNCTION_INFO_V1(hlauth_authenticate);
PG_FUNCTION_INFO_V1(hlauth_compose_api_key);

/* On-disk form of hlauth.apikey: never the secret. */
typedef struct HlApiKey
{
	int32		vl_len_;		/* varlena header */
	uint16		version;		/* pepper version */
	uint8		prefix_len;
	char		id[HLA_APIKEY_ID_LEN];
	uint8		hash[HLA_APIKEY_HASH_LEN];
	char		prefix[FLEXIBLE_ARRAY_MEMBER];	/* prefix_len bytes, no NUL */
} HlApiKey;

#define DatumGetHlApiKeyP(X)	((HlApiKey *) PG_DETOAST_DATUM(X))
#define PG_GETARG_HLAPIKEY_P(n) DatumGetHlApiKeyP(PG_GETARG_DATUM(n))

/* hlauth.api_key_prefix: the environment this database issues and accepts keys for. */
static char *api_key_prefix = NULL;

/*
 * The prefix, once hlauth's settings are defined. They are not while the library is loaded
 * for the first time inside a parallel operation (src/hlauth.c): fail closed until then.
 */
static const char *
key_prefix(void)
{
	HlEnsureGucs();
	if (api_key_prefix == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hlauth's settings are not loaded yet in this parallel operation"),
				 errhint("Run the statement again.")));
	return api_key_prefix;
}

/* ---- hashing ---- */

/* Per-version keyed HMAC of the pepper, built on first use. */
#define PEPPER_SLOTS 8
static struct
{
	int			version;
	hla_hmac_key *key;
}			pepper_cache[PEPPER_SLOTS];

static uint64 pepper_cache_generation = 0;

static hla_hmac_key *
pepper_key(int version, int *version_used)
{
	unsigned char pepper[HL_KEY_LEN];
	int			v;
	int			i;

	/* Another secret file, or the same one re-read: forget every pepper. */
	if (pepper_cache_generation != HlSecretGeneration())
	{
		for (i = 0; i < PEPPER_SLOTS; i++)
		{
			if (pepper_cache[i].key != NULL)
				hla_hmac_key_free(pepper_cache[i].key);
			pepper_cache[i].key = NULL;
			pepper_cache[i].version = 0;
		}
		pepper_cache_generation = HlSecretGeneration();
	}
	if (version != 0)
		for (i = 0; i < PEPPER_SLOTS; i++)
			if (pepper_cache[i].key != NULL && pepper_cache[i].version == version)
			{
				*version_used = version;
				return pepper_cache[i].key;
			}
	v = HlSecretPurposeKey(HL_PURPOSE_APIKEY_PEPPER, version, pepper);
	if (v == 0)
		return NULL;
	for (i = 0; i < PEPPER_SLOTS; i++)
		if (pepper_cache[i].key != NULL && pepper_cache[i].version == v)
			break;
	if (i == PEPPER_SLOTS)
	{
		/* A free slot, or the first one. */
		for (i = 0; i < PEPPER_SLOTS && pepper_cache[i].key != NULL; i++)
			;
		if (i == PEPPER_SLOTS)
			i = 0;
		if (pepper_cache[i].key != NULL)
			hla_hmac_key_free(pepper_cache[i].key);
		pepper_cache[i].key = hla_hmac_key_new(pepper, HL_KEY_LEN);
		pepper_cache[i].version = v;
	}
	hla_cleanse(pepper, sizeof(pepper));
	if (pepper_cache[i].key == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not set up the API key pepper")));
	*version_used = v;
	return pepper_cache[i].key;
}

/* HMAC of "<prefix>_<id><secret>" (everything before the checksum). */
static bool
key_hash(const hla_apikey *k, int version, int *version_used, uint8 out[HLA_APIKEY_HASH_LEN])
{
	hla_hmac_key *key = pepper_key(version, version_used);
	size_t		len = k->prefix_len + 1 + HLA_APIKEY_ID_LEN + HLA_APIKEY_SECRET_LEN;

	if (key == NULL)
		return false;
	/* The parsed key's pieces are contiguous in the caller's buffer. */
	if (hla_hmac_key_sha256(key, (const unsigned char *) k->prefix, len, out) != 0)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("HMAC computation failed")));
	return true;
}

static void hide_statement_on_error(void (*fn) (void *), void *arg);

/* ---- the type ---- */

static HlApiKey *
apikey_build(const char *prefix, size_t prefix_len, const char *id, int version,
			 const uint8 hash[HLA_APIKEY_HASH_LEN])
{
	Size		size = offsetof(HlApiKey, prefix) + prefix_len;
	HlApiKey   *k = (HlApiKey *) palloc0(size);

	SET_VARSIZE(k, size);
	k->version = (uint16) version;
	k->prefix_len = (uint8) prefix_len;
	memcpy(k->id, id, HLA_APIKEY_ID_LEN);
	memcpy(k->hash, hash, HLA_APIKEY_HASH_LEN);
	memcpy(k->prefix, prefix, prefix_len);
	return k;
}

/*
 * Text input: the stored form as is, or a plaintext key, which is hashed with the newest
 * pepper (the secret is not kept). The input is never quoted back in an error: it may be a
 * real key with a typo.
 */
static HlApiKey *
apikey_from_text(const char *str, size_t len)
{
	if (hla_apikey_looks_stored(str, len))
	{
		hla_apikey_stored st;
		hla_apikey_error err = hla_apikey_stored_parse(str, len, &st);

		if (err != HLA_APIKEY_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type hlauth.apikey"),
					 errdetail("%s", hla_apikey_error_message(err))));
		return apikey_build(st.prefix, st.prefix_len, st.id, (int) st.version, st.hash);
	}
	else
	{
		hla_apikey	k;
		hla_apikey_error err = hla_apikey_parse(str, len, &k);
		uint8		hash[HLA_APIKEY_HASH_LEN];
		int			version;
		HlApiKey   *result;

		if (err != HLA_APIKEY_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid API key"),
					 errdetail("%s", hla_apikey_error_message(err)),
					 errhidestmt(true),
					 errhint("The key is not shown here. A stored key looks like \"<prefix>_<key id>:v<version>:<64 hex digits>\".")));
		if (!key_hash(&k, 0, &version, hash))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the server secret has no key version to hash API keys with")));
		result = apikey_build(k.prefix, k.prefix_len, k.id, version, hash);
		hla_cleanse(hash, sizeof(hash));
		return result;
	}
}

typedef struct ApiKeyInput
{
	const char *str;
	size_t		len;
	HlApiKey   *result;
} ApiKeyInput;

static void
apikey_input_thunk(void *arg)
{
	ApiKeyInput *in = (ApiKeyInput *) arg;

	in->result = apikey_from_text(in->str, in->len);
}

/* Any error keeps the statement out of the log: it may hold a plaintext key. */
static HlApiKey *
apikey_input(const char *str, size_t len)
{
	ApiKeyInput in = {str, len, NULL};

	hide_statement_on_error(apikey_input_thunk, &in);
	return in.result;
}

Datum
hlauth_apikey_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);

	PG_RETURN_POINTER(apikey_input(str, strlen(str)));
}

static char *
apikey_to_cstring(const HlApiKey *k)
{
	hla_apikey_stored st;
	char	   *out = palloc(HLA_APIKEY_STORED_MAX_LEN + 1);

	st.prefix = k->prefix;
	st.prefix_len = k->prefix_len;
	st.id = k->id;
	st.version = k->version;
	memcpy(st.hash, k->hash, HLA_APIKEY_HASH_LEN);
	if (hla_apikey_stored_format(&st, out, HLA_APIKEY_STORED_MAX_LEN + 1) < 0)
		elog(ERROR, "hlauth: corrupt hlauth.apikey value");
	return out;
}

Datum
hlauth_apikey_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(apikey_to_cstring(PG_GETARG_HLAPIKEY_P(0)));
}

/* Binary input is the text form, checked exactly as text input is. */
Datum
hlauth_apikey_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			nbytes;
	char	   *str = pq_getmsgtext(buf, buf->len - buf->cursor, &nbytes);

	PG_RETURN_POINTER(apikey_input(str, strlen(str)));
}

Datum
hlauth_apikey_send(PG_FUNCTION_ARGS)
{
	char	   *str = apikey_to_cstring(PG_GETARG_HLAPIKEY_P(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendtext(&buf, str, strlen(str));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

Datum
hlauth_apikey_id(PG_FUNCTION_ARGS)
{
	HlApiKey   *k = PG_GETARG_HLAPIKEY_P(0);

	PG_RETURN_TEXT_P(cstring_to_text_with_len(k->id, HLA_APIKEY_ID_LEN));
}

Datum
hlauth_apikey_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(PG_GETARG_HLAPIKEY_P(0)->version);
}

/*
 * Does the plaintext key match the stored one? Same prefix, same id, and the HMAC under the
 * stored pepper version equal (compared in constant time). False for a malformed key or a
 * pepper version the secret file no longer holds.
 */
static bool
apikey_matches(const HlApiKey *stored, const char *str, size_t len)
{
	hla_apikey	k;
	uint8		hash[HLA_APIKEY_HASH_LEN];
	int			version;
	bool		ok;

	if (len > HLA_APIKEY_MAX_LEN || hla_apikey_parse(str, len, &k) != HLA_APIKEY_OK)
		return false;
	if (!key_hash(&k, stored->version, &version, hash))
		return false;
	ok = hla_ct_equal(hash, stored->hash, HLA_APIKEY_HASH_LEN);
	ok &= (k.prefix_len == stored->prefix_len && memcmp(k.prefix, stored->prefix, k.prefix_len) == 0);
	ok &= (memcmp(k.id, stored->id, HLA_APIKEY_ID_LEN) == 0);
	hla_cleanse(hash, sizeof(hash));
	return ok;
}

typedef struct MatchArgs
{
	const HlApiKey *stored;
	const char *str;
	size_t		len;
	bool		result;
} MatchArgs;

static void
matches_thunk(void *arg)
{
	MatchArgs  *m = (MatchArgs *) arg;

	m->result = apikey_matches(m->stored, m->str, m->len);
}

Datum
hlauth_apikey_matches(PG_FUNCTION_ARGS)
{
	HlApiKey   *stored = PG_GETARG_HLAPIKEY_P(0);
	text	   *key = PG_GETARG_TEXT_PP(1);

	MatchArgs	m = {stored, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), false};

	hide_statement_on_error(matches_thunk, &m);
	PG_RETURN_BOOL(m.result);
}

/*
 * hlauth_internal.generate_api_key(): a new plaintext key with the configured prefix, from
 * OpenSSL's RAND_bytes. Only hlauth's own issuing functions call it.
 */
static void
random_base62(char *out, size_t want)
{
	unsigned char rnd[64];
	size_t		have = 0;

	while (have < want)
	{
		if (hla_random_bytes(rnd, sizeof(rnd)) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random bytes")));
		have += hla_base62_from_bytes(rnd, sizeof(rnd), out + have, want - have);
	}
	hla_cleanse(rnd, sizeof(rnd));
}

Datum
hlauth_generate_api_key(PG_FUNCTION_ARGS)
{
	char		id[HLA_APIKEY_ID_LEN];
	char		secret[HLA_APIKEY_SECRET_LEN];
	char		out[HLA_APIKEY_MAX_LEN + 1];
	int			len;
	text	   *result;
	const char *prefix = key_prefix();	/* (before the secret exists: it may fail) */

	random_base62(id, sizeof(id));
	random_base62(secret, sizeof(secret));
	len = hla_apikey_compose(prefix, strlen(prefix), id, secret, out, sizeof(out));
	hla_cleanse(secret, sizeof(secret));
	if (len < 0)
		elog(ERROR, "hlauth: could not compose an API key");
	result = cstring_to_text_with_len(out, len);
	hla_cleanse(out, sizeof(out));
	PG_RETURN_TEXT_P(result);
}

/*
 * hlauth_internal.compose_api_key(prefix, id, secret): a key with a correct checksum from
 * chosen parts, for tests and for operators checking a key by hand. Superuser only.
 */
Datum
hlauth_compose_api_key(PG_FUNCTION_ARGS)
{
	text	   *prefix = PG_GETARG_TEXT_PP(0);
	text	   *id = PG_GETARG_TEXT_PP(1);
	text	   *secret = PG_GETARG_TEXT_PP(2);
	char		out[HLA_APIKEY_MAX_LEN + 1];
	int			len = -1;

	if (VARSIZE_ANY_EXHDR(id) == HLA_APIKEY_ID_LEN &&
		VARSIZE_ANY_EXHDR(secret) == HLA_APIKEY_SECRET_LEN)
		len = hla_apikey_compose(VARDATA_ANY(prefix), VARSIZE_ANY_EXHDR(prefix),
								 VARDATA_ANY(id), VARDATA_ANY(secret), out, sizeof(out));
	if (len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot compose an API key from these parts"),
				 errdetail("The prefix must follow the prefix grammar, the id be 12 and the secret 22 base62 characters.")));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out, len));
}

/* ---- the key cache ---- */

#define KEY_CACHE_MAX		50000
#define NEGATIVE_TTL_US		(5 * USECS_PER_SEC)
#define LAST_USED_EVERY_US	(60 * USECS_PER_SEC)

typedef struct KeyEntry
{
	char		key_id[HLA_APIKEY_ID_LEN + 1];	/* hash key */
	bool		found;			/* false: a remembered unknown id */
	TimestampTz loaded_at;
	HlApiKey   *stored;
	pg_uuid_t	principal;
	pg_uuid_t	tenant;
	HlScopes   *scopes;
	int			nbound;			/* other principals that bound the key (bounded_by) */
	pg_uuid_t  *bound;			/* ... their ids */
	bool		own_xact;		/* written by this backend's transaction: read it again */
	LocalTransactionId xact_only;	/* valid only in this transaction (filled in parallel
									 * mode, from its snapshot); 0: in any */
	Jsonb	   *attributes;		/* a jsonb object; NULL for none */
	bool		revoked;
	TimestampTz expires_at;		/* DT_NOEND when none */
	TimestampTz retire_at;		/* DT_NOEND when none */
	TimestampTz last_used_written;	/* by this backend; 0 when never */
} KeyEntry;

static MemoryContext key_cache_cxt = NULL;
static HTAB *key_cache = NULL;
static Oid	api_keys_relid = InvalidOid;
static Oid	api_keys_pkey = InvalidOid;	/* forgotten with the OID: see api_keys_layout */
static bool key_cache_stale = false;
static SPIPlanPtr touch_plan = NULL;

static void
api_keys_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == api_keys_relid)
	{
		key_cache_stale = true;
		api_keys_relid = InvalidOid;
		api_keys_pkey = InvalidOid;
	}
}

static void
key_cache_reset(void)
{
	HASHCTL		ctl;

	if (key_cache_cxt == NULL)
		key_cache_cxt = AllocSetContextCreate(CacheMemoryContext, "hlauth API key cache",
											  ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(key_cache_cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = HLA_APIKEY_ID_LEN + 1;
	ctl.entrysize = sizeof(KeyEntry);
	ctl.hcxt = key_cache_cxt;
	key_cache = hash_create("hlauth API keys", 1024, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	key_cache_stale = false;
}

static Oid
lookup_api_keys_relid(void)
{
	Oid			nsp = get_namespace_oid("hlauth", true);

	return OidIsValid(nsp) ? get_relname_relid("api_keys", nsp) : InvalidOid;
}

/* Where hlauth.api_keys keeps what key_load reads; looked up with the table's OID. */
static AttrNumber col_key_id,
			col_key,
			col_principal,
			col_tenant,
			col_scopes,
			col_revoked,
			col_expires,
			col_retire,
			col_attributes,
			col_bounded_by;

static void
api_keys_layout(Oid relid)
{
	Oid			nsp = get_rel_namespace(relid);

	api_keys_pkey = HlTableIndex(nsp, "api_keys_pkey");
	col_key_id = HlTableColumn(relid, "api_keys", "key_id", InvalidOid);
	col_key = HlTableColumn(relid, "api_keys", "key", InvalidOid);
	col_principal = HlTableColumn(relid, "api_keys", "principal", InvalidOid);
	col_tenant = HlTableColumn(relid, "api_keys", "tenant_id", InvalidOid);
	col_scopes = HlTableColumn(relid, "api_keys", "scopes", InvalidOid);
	col_revoked = HlTableColumn(relid, "api_keys", "revoked_at", InvalidOid);
	col_expires = HlTableColumn(relid, "api_keys", "expires_at", InvalidOid);
	col_retire = HlTableColumn(relid, "api_keys", "retire_at", InvalidOid);
	col_attributes = HlTableColumn(relid, "api_keys", "attributes", InvalidOid);
	col_bounded_by = HlTableColumn(relid, "api_keys", "bounded_by", UUIDARRAYOID);
}

static TimestampTz
timestamp_or_noend(HeapTuple tup, TupleDesc desc, AttrNumber col)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, col, desc, &isnull);

	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}

/*
 * Fill e from hlauth.api_keys, or mark it unknown: one primary-key index scan under the
 * latest snapshot (the active one in parallel mode), with no SPI and no permission check
 * (app roles cannot read the table), as src/rbac.c reads its tables. It used to be an SPI
 * query run as the superuser.
 */
static void
key_load(KeyEntry *e)
{
	Relation	rel;
	TupleDesc	desc;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tup;
	Snapshot	snapshot;

	rel = table_open(api_keys_relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	/* Opening may have processed an invalidation that made us forget the layout. */
	api_keys_relid = RelationGetRelid(rel);
	if (!OidIsValid(api_keys_pkey))
		api_keys_layout(api_keys_relid);
	/* The column's collation is the index's: the scan must order as the index does. */
	ScanKeyEntryInitialize(&skey, 0, col_key_id, BTEqualStrategyNumber, InvalidOid,
						   TupleDescAttr(desc, col_key_id - 1)->attcollation, F_TEXTEQ,
						   CStringGetTextDatum(e->key_id));
	snapshot = RegisterSnapshot(IsInParallelMode() ? GetActiveSnapshot() : GetLatestSnapshot());
	scan = systable_beginscan(rel, api_keys_pkey, true, snapshot, 1, &skey);
	tup = systable_getnext(scan);
	e->found = HeapTupleIsValid(tup);
	e->loaded_at = GetCurrentTimestamp();
	e->own_xact = false;

	/*
	 * In parallel mode the row was read under the transaction's snapshot, which in
	 * REPEATABLE READ may predate a revocation whose invalidation this backend has already
	 * processed: such an entry serves this transaction only (src/rbac.c does the same).
	 */
	e->xact_only = IsInParallelMode() ? MyProc->lxid : InvalidLocalTransactionId;
	if (e->found)
	{
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(key_cache_cxt);
		HlApiKey   *k = DatumGetHlApiKeyP(heap_getattr(tup, col_key, desc, &isnull));
		HlScopes   *sc = DatumGetHlScopesP(heap_getattr(tup, col_scopes, desc, &isnull));
		Datum		a;

		e->stored = (HlApiKey *) palloc(VARSIZE(k));
		memcpy(e->stored, k, VARSIZE(k));
		e->principal = *DatumGetUUIDP(heap_getattr(tup, col_principal, desc, &isnull));
		e->tenant = *DatumGetUUIDP(heap_getattr(tup, col_tenant, desc, &isnull));
		e->scopes = (HlScopes *) palloc(VARSIZE(sc));
		memcpy(e->scopes, sc, VARSIZE(sc));
		/*
		 * A key this transaction issued (or rotated into) may still roll back, and an INSERT
		 * flushes no cache: never trust the entry beyond this lookup.
		 */
		e->own_xact = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tup->t_data));
		e->nbound = 0;
		e->bound = NULL;
		a = heap_getattr(tup, col_bounded_by, desc, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			bool	   *enulls;
			int			n;
			int			i;

			deconstruct_array(DatumGetArrayTypeP(a), UUIDOID, UUID_LEN, false, TYPALIGN_CHAR,
							  &elems, &enulls, &n);
			e->bound = (pg_uuid_t *) palloc(sizeof(pg_uuid_t) * Max(n, 1));
			for (i = 0; i < n; i++)
				if (!enulls[i])
					e->bound[e->nbound++] = *DatumGetUUIDP(elems[i]);
		}
		(void) heap_getattr(tup, col_revoked, desc, &isnull);
		e->revoked = !isnull;
		e->expires_at = timestamp_or_noend(tup, desc, col_expires);
		e->retire_at = timestamp_or_noend(tup, desc, col_retire);
		e->attributes = NULL;
		a = heap_getattr(tup, col_attributes, desc, &isnull);
		if (!isnull)
		{
			Jsonb	   *j = DatumGetJsonbP(a);

			e->attributes = (Jsonb *) palloc(VARSIZE(j));
			memcpy(e->attributes, j, VARSIZE(j));
		}
		MemoryContextSwitchTo(old);
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
}

/* Run the usage update as the bootstrap superuser (the table is not writable by app roles). */
typedef struct SavedUser
{
	Oid			user;
	int			sec;
}			SavedUser;

static void
become_owner(SavedUser *saved)
{
	GetUserIdAndSecContext(&saved->user, &saved->sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   saved->sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}

static void
restore_user(const SavedUser *saved)
{
	SetUserIdAndSecContext(saved->user, saved->sec);
}

/*
 * The cache entry of a key id, read if missing or untrustworthy. An entry read in parallel
 * mode (under the statement's snapshot, in REPEATABLE READ the transaction's) serves only
 * parallel statements of its transaction, as in the RBAC cache: authenticate judges by
 * what is committed now.
 */
static KeyEntry *
key_lookup(const char *id)
{
	char		key_id[HLA_APIKEY_ID_LEN + 1];
	KeyEntry   *e;
	bool		found;

	memcpy(key_id, id, HLA_APIKEY_ID_LEN);
	key_id[HLA_APIKEY_ID_LEN] = '\0';
	if (!OidIsValid(api_keys_relid))
	{
		api_keys_relid = lookup_api_keys_relid();
		if (!OidIsValid(api_keys_relid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("hlauth's API key table is missing"),
					 errhint("ALTER EXTENSION hlauth UPDATE")));
		key_cache_stale = true;
	}
	if (key_cache == NULL || key_cache_stale || hash_get_num_entries(key_cache) >= KEY_CACHE_MAX)
		key_cache_reset();
	e = (KeyEntry *) hash_search(key_cache, key_id, HASH_ENTER, &found);
	/*
	 * Read it again when the entry cannot be trusted here: an unknown id is remembered only
	 * briefly, a row this backend's transaction wrote may still roll back, and an entry
	 * filled in parallel mode serves that transaction only.
	 */
	if (found &&
		((!e->found && GetCurrentTimestamp() - e->loaded_at > NEGATIVE_TTL_US) ||
		 (e->found && e->own_xact) ||
		 (e->xact_only != InvalidLocalTransactionId &&
		  (e->xact_only != MyProc->lxid || !IsInParallelMode()))))
	{
		if (e->found)
		{
			pfree(e->stored);
			pfree(e->scopes);
			if (e->attributes)
				pfree(e->attributes);
			if (e->bound)
				pfree(e->bound);
		}
		found = false;
	}
	if (!found)
	{
		e->found = false;
		e->bound = NULL;
		e->nbound = 0;
		e->own_xact = false;
		e->stored = NULL;
		e->scopes = NULL;
		e->attributes = NULL;
		e->last_used_written = 0;
		PG_TRY();
		{
			key_load(e);
		}
		PG_CATCH();
		{
			hash_search(key_cache, key_id, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return e;
}

const Jsonb *
HlApiKeyAttributes(const char *key_id)
{
	KeyEntry   *e;

	if (key_id == NULL || strlen(key_id) != HLA_APIKEY_ID_LEN)
		return NULL;
	e = key_lookup(key_id);
	return e->found ? e->attributes : NULL;
}

/*
 * last_used_at: at most once a minute per key and backend, never waiting for a lock, and
 * written just before the transaction commits, not when authenticate() runs. Written at
 * once, the row's lock would be held to the end of the transaction, and a transaction left
 * open after authenticating would make revoke_api_key() (which locks the row) wait for it,
 * keeping the key alive. Written in a subtransaction whose failure is ignored (a concurrent
 * update under REPEATABLE READ, say): the usage stamp is best effort, the commit is not.
 */
#define TOUCH_MAX 8
static char touch_ids[TOUCH_MAX][HLA_APIKEY_ID_LEN + 1];
static int	ntouch = 0;

static void
key_touch(KeyEntry *e, TimestampTz now)
{
	int			i;

	if (XactReadOnly || RecoveryInProgress())
		return;
	if (e->last_used_written != 0 && now - e->last_used_written < LAST_USED_EVERY_US)
		return;
	for (i = 0; i < ntouch; i++)
		if (strcmp(touch_ids[i], e->key_id) == 0)
			return;
	if (ntouch >= TOUCH_MAX)
		return;					/* more keys than that in one transaction: the rest next time */
	strlcpy(touch_ids[ntouch++], e->key_id, sizeof(touch_ids[0]));
	e->last_used_written = now;
}

/* The usage update of one key, as the bootstrap superuser. */
static void
key_touch_write(const char *key_id)
{
	SavedUser	saved;
	Datum		arg = CStringGetTextDatum(key_id);

	become_owner(&saved);
	PG_TRY();
	{
		/*
		 * This runs as the bootstrap superuser: nothing in it may resolve through the
		 * caller's search_path (a planted operator "=" would run as the superuser). Every
		 * name and operator is qualified, and search_path is pinned while it runs (a
		 * cached plan is analysed again under the current path when that path changes).
		 */
		int			nestlevel = NewGUCNestLevel();

		(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "hlauth: SPI_connect failed");
		if (touch_plan == NULL)
		{
			Oid			argtypes[1] = {TEXTOID};
			SPIPlanPtr	plan = SPI_prepare("UPDATE hlauth.api_keys SET last_used_at = pg_catalog.now() "
										   "WHERE key_id OPERATOR(pg_catalog.=) (SELECT k.key_id FROM hlauth.api_keys k "
										   "WHERE k.key_id OPERATOR(pg_catalog.=) $1 "
										   "AND (k.last_used_at IS NULL OR k.last_used_at OPERATOR(pg_catalog.<) "
										   "(pg_catalog.now() OPERATOR(pg_catalog.-) '1 minute'::pg_catalog.interval)) "
										   "FOR UPDATE SKIP LOCKED)",
										   1, argtypes);
			/* (planned like the lookup: a primary-key probe) */

			if (plan == NULL || SPI_keepplan(plan) != 0)
				elog(ERROR, "hlauth: could not prepare the API key usage update");
			touch_plan = plan;
		}
		if (SPI_execute_plan(touch_plan, &arg, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "hlauth: API key usage update failed");
		SPI_finish();
		AtEOXact_GUC(true, nestlevel);
	}
	PG_FINALLY();
	{
		restore_user(&saved);
	}
	PG_END_TRY();
}

/* Just before commit: the usage updates of the keys this transaction authenticated. */
static void
key_touch_flush(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	int			n = ntouch;
	int			i;

	ntouch = 0;
	if (n == 0 || XactReadOnly)
		return;
	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		/* (No statement runs at commit: the update needs a snapshot of its own.) */
		PushActiveSnapshot(GetTransactionSnapshot());
		for (i = 0; i < n; i++)
			key_touch_write(touch_ids[i]);
		PopActiveSnapshot();
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		/* Ignored: the stamp waits for a later authentication. */
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
}

static void
key_touch_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			key_touch_flush();
			break;
		default:
			/*
			 * A prepared transaction would hold the row's lock until COMMIT PREPARED: no
			 * stamp for it. Aborted: none either.
			 */
			ntouch = 0;
			break;
	}
}

/* ---- authenticate ---- */

static void pg_attribute_noreturn()
authentication_failed(HlAuthFailReason reason, const char *key_id)
{
	/* A security event (rate-limited), written by a worker: this transaction is lost. */
	HlAuthFailNote(reason, key_id);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("authentication failed"),
			 errdetail("The API key is not valid, or not usable now."),
			 errhint("Check that the whole key was sent, and that it has not expired or been revoked."),
			 errhidestmt(true)));	/* the statement may hold the key: keep it out of the log */
}

/*
 * hlauth.authenticate(key text): verifies an API key and sets the principal context for the
 * rest of the transaction. Every failure is the same 28000 error.
 */
static void authenticate_key(FunctionCallInfo fcinfo);

/*
 * Run fn(arg); any error it raises keeps the statement out of the server log: the statement
 * may hold a plaintext key (a literal), whichever check failed.
 */
static void
hide_statement_on_error(void (*fn) (void *), void *arg)
{
	MemoryContext caller = CurrentMemoryContext;

	PG_TRY();
	{
		fn(arg);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		edata->hide_stmt = true;
		ReThrowError(edata);
	}
	PG_END_TRY();
}

static void
authenticate_thunk(void *arg)
{
	authenticate_key((FunctionCallInfo) arg);
}

Datum
hlauth_authenticate(PG_FUNCTION_ARGS)
{
	hide_statement_on_error(authenticate_thunk, fcinfo);
	PG_RETURN_VOID();
}

static void
authenticate_key(FunctionCallInfo fcinfo)
{
	text	   *key;
	const char *str;
	size_t		len;
	hla_apikey	k;
	KeyEntry   *e;
	uint8		hash[HLA_APIKEY_HASH_LEN];
	uint8		dummy[HLA_APIKEY_HASH_LEN];
	int			version;
	bool		ok;
	TimestampTz now;
	HlTenantPath path;
	const HlScopes *granted = NULL;
	const ArrayType *access = NULL;
	const char *prefix;

	HlRefuseRestrictedOperation();
	HlRefuseBypassRoles();

	/*
	 * Changes committed since this transaction last looked (a key revoked, a grant
	 * revoked, a tenant suspended) count from this call on, even inside a transaction that
	 * was already open: the caches drop what they invalidate. Expiry and the end of a
	 * rotation's overlap are judged at this statement's start, not the transaction's.
	 */
	AcceptInvalidationMessages();
	now = HlNow();
	if (PG_ARGISNULL(0))
		authentication_failed(HL_AUTHFAIL_MALFORMED, NULL);
	key = PG_GETARG_TEXT_PP(0);
	str = VARDATA_ANY(key);
	len = VARSIZE_ANY_EXHDR(key);

	/* Garbage, typos and other environments' keys never reach a table. */
	if (len > HLA_APIKEY_MAX_LEN || hla_apikey_parse(str, len, &k) != HLA_APIKEY_OK)
		authentication_failed(HL_AUTHFAIL_MALFORMED, NULL);
	prefix = key_prefix();
	if (k.prefix_len != strlen(prefix) || memcmp(k.prefix, prefix, k.prefix_len) != 0)
		authentication_failed(HL_AUTHFAIL_WRONG_PREFIX, NULL);

	e = key_lookup(k.id);

	/* The HMAC is computed whether or not the id is known. */
	if (e->found)
		ok = key_hash(&k, e->stored->version, &version, hash) &&
			hla_ct_equal(hash, e->stored->hash, HLA_APIKEY_HASH_LEN);
	else
	{
		/* The same work as for a known id, against a hash nothing matches. */
		memset(dummy, 0, sizeof(dummy));
		(void) key_hash(&k, 0, &version, hash);
		(void) hla_ct_equal(hash, dummy, HLA_APIKEY_HASH_LEN);
		ok = false;
	}
	hla_cleanse(hash, sizeof(hash));
	if (!e->found)
		authentication_failed(HL_AUTHFAIL_UNKNOWN_KEY, NULL);
	if (!ok)
		authentication_failed(HL_AUTHFAIL_BAD_SECRET, e->key_id);
	if (e->revoked)
		authentication_failed(HL_AUTHFAIL_REVOKED, e->key_id);
	if (now >= e->expires_at)
		authentication_failed(HL_AUTHFAIL_EXPIRED, e->key_id);
	if (now >= e->retire_at)
		authentication_failed(HL_AUTHFAIL_ROTATED_OUT, e->key_id);

	/*
	 * The key is good. Never more than the principal holds at the key's tenant now; a repeat
	 * of the same key costs one cache lookup here (src/rbac.c).
	 */
	switch (HlPrincipalAt(&e->principal, &e->tenant, e->scopes, &path, &granted, &access))
	{
		case HL_AT_OK:
			break;
		case HL_AT_NO_TENANT:
		case HL_AT_TENANT_INACTIVE:
			authentication_failed(HL_AUTHFAIL_TENANT_INACTIVE, e->key_id);
		case HL_AT_PRINCIPAL_SUSPENDED:
			authentication_failed(HL_AUTHFAIL_PRINCIPAL_SUSPENDED, e->key_id);
	}

	/*
	 * Nor more than any principal that bounds it holds there now (bounded_by: whoever issued
	 * or rotated it in a context, and whoever bounded the key that context came from): a
	 * demoted (or suspended) principal's keys lose what it lost, however many hands they
	 * went through, so nobody keeps power through keys minted for others (or for made-up
	 * principals) before a demotion.
	 */
	if (e->nbound > 0)
	{
		/*
		 * HlPrincipalAt's answers point into the RBAC cache, which the lookups below may
		 * drop (a full cache is rebuilt, an invalidation resets it): copy them first (a
		 * red-team pass crashed the backend on the freed reach).
		 */
		HlScopes   *g = (HlScopes *) palloc(VARSIZE(granted));

		memcpy(g, granted, VARSIZE(granted));
		granted = g;
		if (access != NULL)
		{
			ArrayType  *a = (ArrayType *) palloc(VARSIZE(access));

			memcpy(a, access, VARSIZE(access));
			access = a;
		}
	}
	for (int i = 0; i < e->nbound; i++)
		granted = HlScopesIntersect(granted, HlEffectiveScopes(&e->bound[i], &e->tenant));
	HlContextEstablish(&e->principal, &e->tenant, &path, "api_key", e->key_id, granted, access,
					   e->bound, e->nbound);
	key_touch(e, now);
}

/* ---- setup ---- */

static bool
check_api_key_prefix(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || !hla_apikey_prefix_valid(*newval, strlen(*newval)))
	{
		GUC_check_errdetail("An API key prefix is 2 to 32 bytes of lower-case letters and digits in segments joined by single \"_\", each starting with a letter, such as \"hlk_live\".");
		return false;
	}
	return true;
}

void
HlApiKeyDefineGucs(void)
{
	DefineCustomStringVariable("hlauth.api_key_prefix",
							   "The prefix of the API keys this database issues and accepts.",
							   "Names the environment, such as hlk_live or hlk_test. Keys with another prefix fail authentication.",
							   &api_key_prefix,
							   "hlk_live",
							   PGC_SUSET,
							   0,
							   check_api_key_prefix,
							   NULL,
							   NULL);
}

void
HlApiKeyInit(void)
{
	CacheRegisterRelcacheCallback(api_keys_relcache_callback, (Datum) 0);
	RegisterXactCallback(key_touch_xact_callback, NULL);
}
