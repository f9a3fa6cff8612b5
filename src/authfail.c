/*
 * src/authfail.c
 *		Security events for failed authentications, rate-limited (issue #4).
 *
 * authenticate() fails with an ERROR (28000), which rolls back everything its transaction
 * wrote: an event written there would vanish with it. So the failing backend hands the
 * event to a dynamic background worker, which writes it in a transaction of its own.
 * Dynamic workers need no shared_preload_libraries: the postmaster starts one on request
 * and it loads hlauth by name.
 *
 * Rate limit, so that a flood does not flood the outbox:
 * - per backend and per bucket (the key id, or "*" for every key that names no known key:
 *   malformed, another environment's prefix, an unknown id), at most one worker per
 *   hlauth.auth_failure_event_interval; failures in between are counted and reported with
 *   the bucket's next event, or when the backend exits;
 * - across backends, the worker adds its counts to the bucket's event of the current
 *   interval when there is one that no consumer has claimed yet
 *   (hlauth_internal.record_auth_failure), instead of writing another.
 * A random-id flood therefore costs one event per interval and backend, at most; failures
 * on many known keys at once, at most 8 workers per interval and backend (the other buckets
 * keep counting until a later failure, or the backend's exit, sends them).
 *
 * The event says why authentication failed (the caller is only ever told "authentication
 * failed"): an admin watching for a revoked key still in use, or for guessing, needs the
 * reason. It never holds the presented key or any part of its secret.
 */
#include "hlauth.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void hlauth_auth_failure_worker(Datum main_arg);

static const char *const reason_names[HL_AUTHFAIL_NREASONS] = {
	"malformed", "wrong_prefix", "unknown_key", "bad_secret", "revoked", "expired",
	"rotated_out", "tenant_inactive", "principal_suspended"
};

#define BUCKET_LEN 40
#define MAX_BUCKETS 1024
#define MAX_LAUNCHES 8			/* workers a backend starts per interval, at most */

/* What a worker is given (bgw_extra, 128 bytes). */
typedef struct AuthFailPayload
{
	char		bucket[BUCKET_LEN];
	char		client[46];		/* numeric host, or "" */
	uint16		counts[HL_AUTHFAIL_NREASONS];
	Oid			role;			/* the session user of the failing backend */
	int32		interval_s;
	TimestampTz first_at;
} AuthFailPayload;

StaticAssertDecl(sizeof(AuthFailPayload) <= BGW_EXTRALEN, "AuthFailPayload must fit bgw_extra");

typedef struct Bucket
{
	char		key[BUCKET_LEN];
	TimestampTz last_sent;		/* 0: never */
	TimestampTz first_pending;
	uint32		counts[HL_AUTHFAIL_NREASONS];
	bool		pending;
} Bucket;

static HTAB *buckets = NULL;
static int	event_interval_s = 60;
static TimestampTz launch_window = 0;	/* start of the current interval of launches */
static int	launches = 0;			/* workers started in it */
static bool exit_hook_set = false;

static bool launch(Bucket *b, TimestampTz now);

/* When the backend exits, the counts it still holds go out (a worker each, a few at most). */
static void
flush_at_exit(int code, Datum arg)
{
	HASH_SEQ_STATUS status;
	Bucket	   *b;
	int			launched = 0;

	if (buckets == NULL || code != 0)
		return;
	hash_seq_init(&status, buckets);
	while ((b = hash_seq_search(&status)) != NULL)
	{
		if (b->pending && launched < 8 && launch(b, GetCurrentTimestamp()))
			launched++;
	}
}

void
HlAuthFailDefineGucs(void)
{
	DefineCustomIntVariable("hlauth.auth_failure_event_interval",
							"Seconds between two failed-authentication events of one key (or of unknown keys).",
							"Failures in between are counted into the next event.",
							&event_interval_s,
							60, 1, 86400,
							PGC_SUSET,
							GUC_UNIT_S | GUC_SUPERUSER_ONLY,
							NULL, NULL, NULL);
}

/* The client's address (inet_client_addr()), or "" for a Unix socket. */
static void
client_address(char *out, size_t len)
{
	LOCAL_FCINFO(fcinfo, 0);
	Datum		addr;

	out[0] = '\0';
	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	addr = inet_client_addr(fcinfo);
	if (!fcinfo->isnull)
		strlcpy(out, DatumGetCString(DirectFunctionCall1(inet_out, addr)), len);
}

/* Hand the bucket's counts to a worker; false when none could be started. */
static bool
launch(Bucket *b, TimestampTz now)
{
	BackgroundWorker worker;
	AuthFailPayload p;
	int			i;

	memset(&p, 0, sizeof(p));
	strlcpy(p.bucket, b->key, sizeof(p.bucket));
	client_address(p.client, sizeof(p.client));
	for (i = 0; i < HL_AUTHFAIL_NREASONS; i++)
		p.counts[i] = (uint16) Min(b->counts[i], PG_UINT16_MAX);
	p.role = GetSessionUserId();
	p.interval_s = event_interval_s;
	p.first_at = b->first_pending;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "hlauth", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "hlauth_auth_failure_worker", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "hlauth failed-authentication event", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "hlauth event writer", BGW_MAXLEN);
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	memcpy(worker.bgw_extra, &p, sizeof(p));
	worker.bgw_notify_pid = 0;
	return RegisterDynamicBackgroundWorker(&worker, NULL);
}

void
HlAuthFailNote(HlAuthFailReason reason, const char *key_id)
{
	TimestampTz now = GetCurrentTimestamp();
	char		key[BUCKET_LEN];
	Bucket	   *b;
	bool		found;

	/* Nothing can be written on a standby; nothing must stop the 28000 error after. */
	if (RecoveryInProgress() || !IsUnderPostmaster || !OidIsValid(MyDatabaseId))
		return;
	if (buckets == NULL || hash_get_num_entries(buckets) >= MAX_BUCKETS)
	{
		HASHCTL		ctl;

		if (buckets != NULL)
			hash_destroy(buckets);
		ctl.keysize = BUCKET_LEN;
		ctl.entrysize = sizeof(Bucket);
		ctl.hcxt = TopMemoryContext;
		buckets = hash_create("hlauth failed authentications", 64, &ctl,
							  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	if (!exit_hook_set)
	{
		before_shmem_exit(flush_at_exit, (Datum) 0);
		exit_hook_set = true;
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, key_id != NULL ? key_id : "*", sizeof(key));
	b = hash_search(buckets, key, HASH_ENTER, &found);
	if (!found)
	{
		b->last_sent = 0;
		b->pending = false;
		memset(b->counts, 0, sizeof(b->counts));
	}
	if (!b->pending)
	{
		b->pending = true;
		b->first_pending = now;
	}
	if (b->counts[reason] < PG_UINT32_MAX)
		b->counts[reason]++;

	if (b->last_sent != 0 &&
		!TimestampDifferenceExceeds(b->last_sent, now, event_interval_s * 1000))
		return;
	/* Failures on many known keys at once: a few workers an interval, the rest wait. */
	if (launch_window == 0 || TimestampDifferenceExceeds(launch_window, now, event_interval_s * 1000))
	{
		launch_window = now;
		launches = 0;
	}
	if (launches >= MAX_LAUNCHES)
		return;
	if (launch(b, now))
	{
		launches++;
		b->last_sent = now;
		b->pending = false;
		memset(b->counts, 0, sizeof(b->counts));
	}
	/* else no worker slot free: keep counting, try again at the next failure */
}

/* ---- the worker ---- */

void
hlauth_auth_failure_worker(Datum main_arg)
{
	AuthFailPayload p;
	StringInfoData reasons;
	Oid			argtypes[6] = {TEXTOID, JSONBOID, TIMESTAMPTZOID, OIDOID, TEXTOID, INT4OID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	int			i;
	bool		first = true;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(main_arg), InvalidOid, 0);
	memcpy(&p, MyBgworkerEntry->bgw_extra, sizeof(p));
	p.bucket[BUCKET_LEN - 1] = '\0';
	p.client[sizeof(p.client) - 1] = '\0';

	initStringInfo(&reasons);
	appendStringInfoChar(&reasons, '{');
	for (i = 0; i < HL_AUTHFAIL_NREASONS; i++)
	{
		if (p.counts[i] == 0)
			continue;
		appendStringInfo(&reasons, "%s\"%s\": %u", first ? "" : ", ", reason_names[i],
						 (unsigned) p.counts[i]);
		first = false;
	}
	appendStringInfoChar(&reasons, '}');

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "hlauth: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "hlauth: recording a failed authentication");

	/* Only where hlauth (0.2.0 or later) is installed. */
	if (SPI_execute("SELECT pg_catalog.to_regprocedure('hlauth_internal.record_auth_failure(text,jsonb,timestamptz,oid,text,integer)') IS NOT NULL",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		bool		installed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 1, &isnull));

		if (installed)
		{
			values[0] = CStringGetTextDatum(p.bucket);
			values[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(reasons.data));
			values[2] = TimestampTzGetDatum(p.first_at);
			values[3] = ObjectIdGetDatum(p.role);
			values[4] = CStringGetTextDatum(p.client);
			if (p.client[0] == '\0')
				nulls[4] = 'n';
			values[5] = Int32GetDatum(p.interval_s);
			if (SPI_execute_with_args("SELECT hlauth_internal.record_auth_failure($1, $2, $3, $4, $5, $6)",
									  6, argtypes, values, nulls, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "hlauth: could not record a failed authentication");
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
