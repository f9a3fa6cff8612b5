/*
 * src/hlauth.c
 *		Module entry point: _PG_init only hands off to each concept's initialiser.
 *
 * Nothing here may require shared_preload_libraries: hlauth loads on first use.
 */
#include "hlauth.h"

#include "fmgr.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	HlContextInit();
	HlTenantsInit();
	HlSecretInit();
	HlRbacInit();
	HlApiKeyInit();
	HlAuditInit();
	HlAuthFailInit();
	MarkGUCPrefixReserved("hlauth");
}
