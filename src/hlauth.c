/*
 * src/hlauth.c
 *		Module entry point: _PG_init only hands off to each concept's initialiser.
 *
 * Nothing here may require shared_preload_libraries: hlauth loads on first use.
 */
#include "hlauth.h"

#include "fmgr.h"
#include "access/parallel.h"
#include "access/xact.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static bool gucs_defined = false;

/*
 * hlauth's settings. Defining them applies what postgresql.conf, ALTER SYSTEM/DATABASE/ROLE
 * and the session set for them before the library was loaded (their placeholders), each
 * with the rights of whoever set it. PostgreSQL cannot apply them inside a parallel
 * operation: a library loaded for the first time there (a parallel-safe function calling
 * hlauth under force_parallel_mode, say) would lose them for the rest of the session, the
 * server secret's path included. So in a leader in parallel mode, the definitions wait for
 * the next statement (the ExecutorStart and ProcessUtility hooks) or the first use outside
 * parallel mode; until then the placeholders keep their values, and whatever needs them
 * fails closed. Parallel workers define them at once: they get the leader's values after.
 */
void
HlEnsureGucs(void)
{
	if (likely(gucs_defined) || (IsInParallelMode() && !IsParallelWorker()))
		return;
	gucs_defined = true;
	HlContextDefineGucs();
	HlSecretDefineGucs();
	HlApiKeyDefineGucs();
	HlAuthFailDefineGucs();
	MarkGUCPrefixReserved("hlauth");
}

void
_PG_init(void)
{
	HlContextInit();
	HlTenantsInit();
	HlRbacInit();
	HlApiKeyInit();
	HlAuditInit();
	HlCascadeInit();
	HlEnsureGucs();
}
