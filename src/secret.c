/*
 * src/secret.c
 *		The server secret: master keys read from the file named by hlauth.secret_file, and
 *		the purpose keys derived from them (HlSecretPurposeKey, for the other glue files).
 *
 * The file lives outside the data directory, so a dump, a base backup or a copy of the data
 * directory alone reveals no pepper, seal key or private key. Its format (UTF-8 text):
 *
 *		# comment lines (first non-blank character '#') and blank lines are ignored
 *		1 8f3c...		<version> <key>
 *		2 41d0...
 *
 * Every other line is a version, white space (spaces or tabs), the key, and optional
 * trailing white space (a CR before the newline is accepted). The version is a decimal
 * number 1..65535 without leading zeros, and no two lines may share one. The key is 64 to
 * 128 hexadecimal digits (32 to 64 bytes; upper or lower case). The newest version is the
 * highest number. Anything else refuses the whole file: a key is never used from a file
 * that is partly wrong. The file must be an absolute path, resolve (through symbolic
 * links) to a regular file outside the data directory, and be accessible by its owner only
 * (mode 600 or 400); it may hold at most 64 kB.
 *
 * Purpose keys: HKDF-SHA256(ikm = the master key of a version, salt = "hlauth-v1",
 * info = "hlauth/" || purpose), 32 bytes. A purpose names what the key is for
 * (HL_PURPOSE_* in hlauth.h); different purposes give independent keys.
 *
 * Caching: the file is read once per backend and its keys kept in malloc'd memory (never
 * palloc'd, so they are in no memory context that might be dumped or reused unwiped). It is
 * read again when hlauth.secret_file changes, when a requested version is missing and the
 * file changed since it was read (so a version added to the file is picked up by running
 * sessions), and by hlauth.secret_status() when the file changed. Derived purpose keys are
 * cached too. Every key is wiped (OPENSSL_cleanse) before its memory is freed.
 * HlSecretGeneration() changes whenever the cached keys are discarded, so that callers who
 * keep derived keys of their own (apikey.c's prepared HMAC keys) can drop them too.
 *
 * This file must never put any byte of the file's content, of a master key or of a derived
 * key into an error message, a log line or a result: errors name the line number at most,
 * and the file's path appears only in the server log (errdetail_log), since the setting
 * itself is visible to superusers only.
 */
#include "hlauth.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "core/crypto.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(hlauth_secret_status);
PG_FUNCTION_INFO_V1(hlauth_secret_fingerprint);

#define HL_SECRET_GUC			"hlauth.secret_file"
#define HL_SECRET_HINT			"Set hlauth.secret_file to a file outside the data directory holding the master key; see docs/reference.md."

#define HL_SECRET_MIN_KEY		32		/* bytes of the shortest master key */
#define HL_SECRET_MAX_KEY		64		/* bytes of the longest master key */
#define HL_SECRET_MAX_VERSION	65535
#define HL_SECRET_MAX_FILE		65536	/* bytes in the whole file */

#define HL_HKDF_SALT			"hlauth-v1"
#define HL_HKDF_INFO_PREFIX		"hlauth/"
#define HL_PURPOSE_MAX_LEN		64
#define HL_DERIVED_CACHE_MAX	32		/* derived keys kept per backend */

/* One master key of the file. */
typedef struct HlMasterKey
{
	int			version;
	int			len;			/* bytes used in key */
	unsigned char key[HL_SECRET_MAX_KEY];
} HlMasterKey;

/* What the file held when it was read (malloc'd), keys sorted by version. */
typedef struct HlSecretCache
{
	/* identity of the file when read, to notice a changed file cheaply (stat) */
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	struct timespec mtime;
	struct timespec ctime;
	int			newest;			/* highest version */
	int			nkeys;
	HlMasterKey keys[FLEXIBLE_ARRAY_MEMBER];
} HlSecretCache;

/* One derived purpose key. */
typedef struct HlDerivedKey
{
	int			version;
	char		purpose[HL_PURPOSE_MAX_LEN + 1];
	unsigned char key[HL_KEY_LEN];
} HlDerivedKey;

/* Why a file was refused. */
typedef enum HlSecretProblem
{
	SECRET_OK = 0,
	SECRET_NOT_CONFIGURED,
	SECRET_RELATIVE,
	SECRET_OPEN_FAILED,			/* saved_errno says why */
	SECRET_IN_DATA_DIRECTORY,
	SECRET_NOT_REGULAR,
	SECRET_BAD_MODE,
	SECRET_READ_FAILED,			/* saved_errno says why */
	SECRET_TOO_LARGE,
	SECRET_MALFORMED,			/* line and line_problem say where and what */
	SECRET_NO_KEYS,
	SECRET_OUT_OF_MEMORY
} HlSecretProblem;

/* What is wrong with a malformed line. */
typedef enum HlLineProblem
{
	LINE_BAD_VERSION,
	LINE_DUPLICATE_VERSION,
	LINE_NO_KEY,
	LINE_BAD_HEX,
	LINE_ODD_HEX,
	LINE_KEY_TOO_SHORT,
	LINE_KEY_TOO_LONG,
	LINE_EXTRA_FIELD
} HlLineProblem;

typedef struct HlLoadResult
{
	HlSecretProblem problem;
	int			saved_errno;
	int			line;
	HlLineProblem line_problem;
} HlLoadResult;

/* The setting (GUC) and the cache. */
static char *secret_file_setting = NULL;
static HlSecretCache *secret_cache = NULL;
static bool secret_stale = true;
static HlDerivedKey *derived_keys = NULL;	/* malloc'd, HL_DERIVED_CACHE_MAX entries */
static int	derived_count = 0;
static uint64 secret_generation = 1;	/* see HlSecretGeneration */

/* ---- forgetting keys ---- */

/* Wipe and free every cached key, master and derived. */
static void
secret_forget(void)
{
	if (secret_cache != NULL)
	{
		hla_cleanse(secret_cache, offsetof(HlSecretCache, keys) +
					sizeof(HlMasterKey) * secret_cache->nkeys);
		free(secret_cache);
		secret_cache = NULL;
	}
	if (derived_keys != NULL)
	{
		hla_cleanse(derived_keys, sizeof(HlDerivedKey) * HL_DERIVED_CACHE_MAX);
		free(derived_keys);
		derived_keys = NULL;
	}
	derived_count = 0;
	secret_generation++;
}

/* ---- reading and parsing the file (no ereport in here: callers wipe, then report) ---- */

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
master_key_cmp(const void *a, const void *b)
{
	int			va = ((const HlMasterKey *) a)->version;
	int			vb = ((const HlMasterKey *) b)->version;

	return (va > vb) - (va < vb);
}

/*
 * Parse one non-blank, non-comment line [p, end) into *key. Returns true, or false with
 * *why set. Reads only within [p, end).
 */
static bool
parse_key_line(const char *p, const char *end, HlMasterKey *key, HlLineProblem *why)
{
	const char *tok = p;
	long		version = 0;
	size_t		ndigits;
	size_t		i;

	/* the version: 1..65535, decimal, no leading zero */
	while (p < end && !is_blank(*p))
		p++;
	ndigits = p - tok;
	if (ndigits == 0 || ndigits > 5 || tok[0] == '0')
	{
		*why = LINE_BAD_VERSION;
		return false;
	}
	for (i = 0; i < ndigits; i++)
	{
		if (tok[i] < '0' || tok[i] > '9')
		{
			*why = LINE_BAD_VERSION;
			return false;
		}
		version = version * 10 + (tok[i] - '0');
	}
	if (version < 1 || version > HL_SECRET_MAX_VERSION)
	{
		*why = LINE_BAD_VERSION;
		return false;
	}
	key->version = (int) version;

	/* white space, then the key */
	while (p < end && is_blank(*p))
		p++;
	tok = p;
	while (p < end && !is_blank(*p))
		p++;
	ndigits = p - tok;
	if (ndigits == 0)
	{
		*why = LINE_NO_KEY;
		return false;
	}
	for (i = 0; i < ndigits; i++)
	{
		if (hex_digit(tok[i]) < 0)
		{
			*why = LINE_BAD_HEX;
			return false;
		}
	}
	if (ndigits % 2 != 0)
	{
		*why = LINE_ODD_HEX;
		return false;
	}
	if (ndigits < 2 * HL_SECRET_MIN_KEY)
	{
		*why = LINE_KEY_TOO_SHORT;
		return false;
	}
	if (ndigits > 2 * HL_SECRET_MAX_KEY)
	{
		*why = LINE_KEY_TOO_LONG;
		return false;
	}
	for (i = 0; i < ndigits / 2; i++)
		key->key[i] = (unsigned char) ((hex_digit(tok[2 * i]) << 4) | hex_digit(tok[2 * i + 1]));
	key->len = (int) (ndigits / 2);

	/* nothing else but white space */
	while (p < end && is_blank(*p))
		p++;
	if (p != end)
	{
		*why = LINE_EXTRA_FIELD;
		return false;
	}
	return true;
}

/*
 * Parse the file's bytes buf[0..len) into a new cache (malloc'd). On failure returns NULL
 * with r set; nothing of the file is left in memory it allocated.
 */
static HlSecretCache *
parse_secret(const char *buf, size_t len, HlLoadResult *r)
{
	const char *p = buf;
	const char *end = buf + len;
	size_t		capacity = len / (2 * HL_SECRET_MIN_KEY + 2) + 1;
	size_t		alloc_size = offsetof(HlSecretCache, keys) + capacity * sizeof(HlMasterKey);
	HlSecretCache *cache;
	unsigned char seen[(HL_SECRET_MAX_VERSION + 1) / 8];
	int			line = 0;

	cache = calloc(1, alloc_size);
	if (cache == NULL)
	{
		r->problem = SECRET_OUT_OF_MEMORY;
		return NULL;
	}
	memset(seen, 0, sizeof(seen));

	/* a UTF-8 byte order mark is allowed at the very start */
	if (len >= 3 && (unsigned char) p[0] == 0xEF && (unsigned char) p[1] == 0xBB &&
		(unsigned char) p[2] == 0xBF)
		p += 3;

	while (p < end)
	{
		const char *eol = memchr(p, '\n', end - p);
		const char *next;
		HlMasterKey *key;
		HlLineProblem why = LINE_BAD_VERSION;
		bool		bad;

		if (eol == NULL)
			eol = end;
		next = (eol < end) ? eol + 1 : end;
		line++;
		while (p < eol && is_blank(*p))
			p++;
		if (p == eol || *p == '#')
		{
			p = next;
			continue;
		}
		while (eol > p && is_blank(eol[-1]))
			eol--;

		/* capacity bounds the number of key lines: each takes at least 2 * 32 + 2 bytes */
		key = &cache->keys[cache->nkeys];
		bad = false;
		if ((size_t) cache->nkeys >= capacity)
		{
			why = LINE_KEY_TOO_SHORT;	/* cannot happen: keep the bound anyway */
			bad = true;
		}
		else if (!parse_key_line(p, eol, key, &why))
			bad = true;
		else if ((seen[key->version / 8] & (1 << (key->version % 8))) != 0)
		{
			why = LINE_DUPLICATE_VERSION;
			bad = true;
		}
		if (bad)
		{
			r->problem = SECRET_MALFORMED;
			r->line = line;
			r->line_problem = why;
			hla_cleanse(cache, alloc_size);
			free(cache);
			return NULL;
		}
		seen[key->version / 8] |= (unsigned char) (1 << (key->version % 8));
		if (key->version > cache->newest)
			cache->newest = key->version;
		cache->nkeys++;
		p = next;
	}

	if (cache->nkeys == 0)
	{
		r->problem = SECRET_NO_KEYS;
		free(cache);			/* holds no key */
		return NULL;
	}
	qsort(cache->keys, cache->nkeys, sizeof(HlMasterKey), master_key_cmp);
	return cache;
}

/*
 * Read and check the file named by path into a new cache (malloc'd). Returns NULL with r
 * set when it must not be used. Calls nothing that can raise an error, so every buffer that
 * held file content is wiped here on every path.
 */
static HlSecretCache *
load_secret(const char *path, HlLoadResult *r)
{
	char		resolved[PATH_MAX];
	char		datadir[PATH_MAX];
	size_t		dlen;
	int			fd;
	struct stat st;
	char	   *buf;
	size_t		len = 0;
	HlSecretCache *cache;

	memset(r, 0, sizeof(*r));
	if (path == NULL || path[0] == '\0')
	{
		r->problem = SECRET_NOT_CONFIGURED;
		return NULL;
	}
	if (!is_absolute_path(path))
	{
		r->problem = SECRET_RELATIVE;
		return NULL;
	}
	if (realpath(path, resolved) == NULL)
	{
		r->problem = SECRET_OPEN_FAILED;
		r->saved_errno = errno;
		return NULL;
	}

	/* Not inside the data directory (compared after resolving symbolic links in both). */
	if (realpath(DataDir, datadir) == NULL)
		strlcpy(datadir, DataDir, sizeof(datadir));
	dlen = strlen(datadir);
	while (dlen > 1 && datadir[dlen - 1] == '/')
		dlen--;
	if (strncmp(resolved, datadir, dlen) == 0 &&
		(resolved[dlen] == '/' || resolved[dlen] == '\0'))
	{
		r->problem = SECRET_IN_DATA_DIRECTORY;
		return NULL;
	}

	/* O_NONBLOCK: a FIFO must not hang the backend (it is refused below). */
	fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
	{
		r->problem = SECRET_OPEN_FAILED;
		r->saved_errno = errno;
		return NULL;
	}
	if (fstat(fd, &st) != 0)
	{
		r->problem = SECRET_READ_FAILED;
		r->saved_errno = errno;
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode))
	{
		r->problem = SECRET_NOT_REGULAR;
		close(fd);
		return NULL;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		r->problem = SECRET_BAD_MODE;
		close(fd);
		return NULL;
	}
	if (st.st_size > HL_SECRET_MAX_FILE)
	{
		r->problem = SECRET_TOO_LARGE;
		close(fd);
		return NULL;
	}

	buf = malloc(HL_SECRET_MAX_FILE + 1);
	if (buf == NULL)
	{
		r->problem = SECRET_OUT_OF_MEMORY;
		close(fd);
		return NULL;
	}
	/* Read to the end, even if the file grew since fstat; one byte more than allowed. */
	for (;;)
	{
		ssize_t		n = read(fd, buf + len, HL_SECRET_MAX_FILE + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			r->problem = SECRET_READ_FAILED;
			r->saved_errno = errno;
			break;
		}
		if (n == 0)
			break;
		len += n;
		if (len > HL_SECRET_MAX_FILE)
		{
			r->problem = SECRET_TOO_LARGE;
			break;
		}
	}
	close(fd);

	cache = NULL;
	if (r->problem == SECRET_OK)
		cache = parse_secret(buf, len, r);
	hla_cleanse(buf, HL_SECRET_MAX_FILE + 1);
	free(buf);
	if (cache == NULL)
		return NULL;

	cache->dev = st.st_dev;
	cache->ino = st.st_ino;
	cache->size = st.st_size;
	cache->mtime = st.st_mtim;
	cache->ctime = st.st_ctim;
	return cache;
}

/* ---- reporting a refused file ---- */

static const char *
line_problem_text(HlLineProblem why)
{
	switch (why)
	{
		case LINE_BAD_VERSION:
			return "The version must be a whole number from 1 to 65535 without leading zeros.";
		case LINE_DUPLICATE_VERSION:
			return "An earlier line has the same version.";
		case LINE_NO_KEY:
			return "The version must be followed by white space and the key in hexadecimal.";
		case LINE_BAD_HEX:
			return "The key must consist of hexadecimal digits only.";
		case LINE_ODD_HEX:
			return "The key has an odd number of hexadecimal digits.";
		case LINE_KEY_TOO_SHORT:
			return "The key is shorter than 32 bytes (64 hexadecimal digits).";
		case LINE_KEY_TOO_LONG:
			return "The key is longer than 64 bytes (128 hexadecimal digits).";
		case LINE_EXTRA_FIELD:
			return "The line has more than a version and a key.";
	}
	return "The line is malformed.";
}

/* Raise the error for a refused file (55000). Names no byte of the file's content. */
static void report_problem(const HlLoadResult *r, const char *path) pg_attribute_noreturn();

static void
report_problem(const HlLoadResult *r, const char *path)
{
	errno = r->saved_errno;		/* for %m */
	switch (r->problem)
	{
		case SECRET_OK:
			break;
		case SECRET_NOT_CONFIGURED:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no server secret is configured"),
					 errhint(HL_SECRET_HINT)));
			break;
		case SECRET_RELATIVE:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the server secret file must be given as an absolute path"),
					 errdetail_log("hlauth.secret_file is \"%s\".", path),
					 errhint("Set hlauth.secret_file to the absolute path of a file outside the data directory.")));
			break;
		case SECRET_OPEN_FAILED:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("could not open the server secret file: %m"),
					 errdetail_log("hlauth.secret_file is \"%s\".", path),
					 errhint("Check that hlauth.secret_file names an existing file the database server's operating system user can read.")));
			break;
		case SECRET_IN_DATA_DIRECTORY:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the server secret file must not be inside the data directory"),
					 errdetail("A copy or base backup of the data directory would carry the master key with it."),
					 errdetail_log("A copy or base backup of the data directory would carry the master key with it. hlauth.secret_file is \"%s\".",
								   path),
					 errhint("Move the file outside the data directory and point hlauth.secret_file at it.")));
			break;
		case SECRET_NOT_REGULAR:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the server secret file is not a regular file"),
					 errdetail_log("hlauth.secret_file is \"%s\".", path),
					 errhint("Point hlauth.secret_file at a regular file.")));
			break;
		case SECRET_BAD_MODE:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the server secret file must not be accessible by group or others (chmod 600)"),
					 errdetail_log("hlauth.secret_file is \"%s\".", path),
					 errhint("Run chmod 600 on the file that hlauth.secret_file names.")));
			break;
		case SECRET_READ_FAILED:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("could not read the server secret file: %m"),
					 errdetail_log("hlauth.secret_file is \"%s\".", path),
					 errhint("Check the file that hlauth.secret_file names.")));
			break;
		case SECRET_TOO_LARGE:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the server secret file is too large"),
					 errdetail("It may hold at most %d bytes.", HL_SECRET_MAX_FILE),
					 errdetail_log("It may hold at most %d bytes. hlauth.secret_file is \"%s\".",
								   HL_SECRET_MAX_FILE, path),
					 errhint("Check that hlauth.secret_file names the right file.")));
			break;
		case SECRET_MALFORMED:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the server secret file is malformed at line %d", r->line),
					 errdetail("%s", line_problem_text(r->line_problem)),
					 errdetail_log("%s hlauth.secret_file is \"%s\".",
								   line_problem_text(r->line_problem), path),
					 errhint("Fix the file that hlauth.secret_file names: each line is a version (1 to 65535) and a key of 64 to 128 hexadecimal digits; see docs/reference.md.")));
			break;
		case SECRET_NO_KEYS:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the server secret file holds no key"),
					 errdetail_log("hlauth.secret_file is \"%s\".", path),
					 errhint("Add a line \"1 <64 hexadecimal digits>\" to the file that hlauth.secret_file names; see docs/reference.md.")));
			break;
		case SECRET_OUT_OF_MEMORY:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("Could not allocate memory to read the server secret file (hlauth.secret_file).")));
			break;
	}
	elog(ERROR, "unexpected server secret problem %d", (int) r->problem);
}

/* ---- the cache ---- */

/* (Re-)read the file named by the setting, replacing the cache, or raise an error. */
static void
secret_reload(void)
{
	HlLoadResult r;
	HlSecretCache *fresh;

	fresh = load_secret(secret_file_setting, &r);
	secret_forget();
	if (fresh == NULL)
		report_problem(&r, secret_file_setting);
	secret_cache = fresh;
	secret_stale = false;
}

/* Has the file changed (or gone) since the cache was read? One stat() call. */
static bool
secret_file_changed(void)
{
	struct stat st;

	if (secret_cache == NULL || secret_file_setting == NULL || secret_file_setting[0] == '\0')
		return true;
	if (stat(secret_file_setting, &st) != 0)
		return true;
	return st.st_dev != secret_cache->dev || st.st_ino != secret_cache->ino ||
		st.st_size != secret_cache->size ||
		st.st_mtim.tv_sec != secret_cache->mtime.tv_sec ||
		st.st_mtim.tv_nsec != secret_cache->mtime.tv_nsec ||
		st.st_ctim.tv_sec != secret_cache->ctime.tv_sec ||
		st.st_ctim.tv_nsec != secret_cache->ctime.tv_nsec;
}

static const HlMasterKey *
master_key_lookup(int version)
{
	HlMasterKey probe;

	if (secret_cache == NULL)
		return NULL;
	probe.version = version;
	return bsearch(&probe, secret_cache->keys, secret_cache->nkeys, sizeof(HlMasterKey),
				   master_key_cmp);
}

/* Purposes are short names: 1..64 bytes of [a-z0-9._/-]. */
static void
check_purpose(const char *purpose)
{
	size_t		len = purpose ? strlen(purpose) : 0;
	size_t		i;
	bool		ok = len >= 1 && len <= HL_PURPOSE_MAX_LEN;

	for (i = 0; ok && i < len; i++)
	{
		char		c = purpose[i];

		ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
			c == '.' || c == '/';
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid key purpose"),
				 errdetail("A purpose is 1 to %d characters of a-z, 0-9, \"-\", \"_\", \".\" and \"/\".",
						   HL_PURPOSE_MAX_LEN)));
}

static void
secret_assign_hook(const char *newval, void *extra)
{
	const char *oldval = secret_file_setting ? secret_file_setting : "";

	/* Another file (or none): forget the keys now, read the new file on next use. */
	if (strcmp(newval ? newval : "", oldval) != 0)
	{
		secret_forget();
		secret_stale = true;
	}
}

void
HlSecretDefineGucs(void)
{
	/*
	 * hlauth.secret_file: the file holding the master keys, outside the data directory.
	 * Superuser-only (PGC_SUSET, GUC_SUPERUSER_ONLY): other roles can neither set nor read
	 * it, so they learn neither where the keys are nor can point hlauth at keys of their own.
	 */
	DefineCustomStringVariable(HL_SECRET_GUC,
							   "File holding hlauth's master keys (the server secret); superuser only.",
							   "An absolute path outside the data directory, mode 600, with lines "
							   "\"<version> <hex key>\". Purpose keys (the API key pepper, the "
							   "audit seal key) are derived from it with HKDF-SHA256.",
							   &secret_file_setting,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY,
							   NULL,
							   secret_assign_hook,
							   NULL);
}

uint64
HlSecretGeneration(void)
{
	return secret_generation;
}

int
HlSecretPurposeKey(const char *purpose, int version, unsigned char out[HL_KEY_LEN])
{
	const HlMasterKey *mk;
	bool		reloaded = false;
	int			v;
	int			i;
	unsigned char info[sizeof(HL_HKDF_INFO_PREFIX) - 1 + HL_PURPOSE_MAX_LEN];
	size_t		plen;
	size_t		prefix_len = sizeof(HL_HKDF_INFO_PREFIX) - 1;
	HlDerivedKey *d;

	check_purpose(purpose);
	HlEnsureGucs();
	if (secret_stale || secret_cache == NULL)
	{
		secret_reload();
		reloaded = true;
	}
	if (version < 0 || version > HL_SECRET_MAX_VERSION)
		return 0;
	v = (version == 0) ? secret_cache->newest : version;

	for (i = 0; i < derived_count; i++)
	{
		if (derived_keys[i].version == v && strcmp(derived_keys[i].purpose, purpose) == 0)
		{
			memcpy(out, derived_keys[i].key, HL_KEY_LEN);
			return v;
		}
	}

	mk = master_key_lookup(v);
	if (mk == NULL && !reloaded && secret_file_changed())
	{
		/* A version added since the file was read? Read it once more. */
		secret_reload();
		mk = master_key_lookup(v);
	}
	if (mk == NULL)
		return 0;

	plen = strlen(purpose);
	memcpy(info, HL_HKDF_INFO_PREFIX, prefix_len);
	memcpy(info + prefix_len, purpose, plen);
	if (derived_keys == NULL)
	{
		derived_keys = calloc(HL_DERIVED_CACHE_MAX, sizeof(HlDerivedKey));
		if (derived_keys == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		derived_count = 0;
	}
	if (derived_count == HL_DERIVED_CACHE_MAX)
	{
		/* Full (many purposes or versions in use): start over. */
		hla_cleanse(derived_keys, sizeof(HlDerivedKey) * HL_DERIVED_CACHE_MAX);
		derived_count = 0;
	}
	d = &derived_keys[derived_count];
	if (hla_hkdf_sha256(mk->key, mk->len,
						(const unsigned char *) HL_HKDF_SALT, sizeof(HL_HKDF_SALT) - 1,
						info, prefix_len + plen, d->key, HL_KEY_LEN) != 0)
		elog(ERROR, "could not derive a key from the server secret");
	d->version = v;
	strlcpy(d->purpose, purpose, sizeof(d->purpose));
	derived_count++;
	memcpy(out, d->key, HL_KEY_LEN);
	return v;
}

/* ---- SQL: hlauth.secret_status(), hlauth_internal.secret_fingerprint() ---- */

/*
 * One row: configured, current (newest) version, every version in the file, ascending.
 * With no file configured: false, NULL, NULL. Re-reads the file if it changed, so it
 * checks the file as it is now and raises the same 55000 errors as any use of the secret.
 */
Datum
hlauth_secret_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (!HlCurrentRoleIsAdmin())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read the status of the server secret"),
				 errdetail("Only superusers and members of role \"%s\" may.", "hlauth_admin")));

	InitMaterializedSRF(fcinfo, 0);
	if (secret_file_setting == NULL || secret_file_setting[0] == '\0')
	{
		values[0] = BoolGetDatum(false);
		nulls[1] = nulls[2] = true;
	}
	else
	{
		Datum	   *versions;
		int			i;

		if (secret_stale || secret_cache == NULL || secret_file_changed())
			secret_reload();
		versions = palloc(sizeof(Datum) * secret_cache->nkeys);
		for (i = 0; i < secret_cache->nkeys; i++)
			versions[i] = Int32GetDatum(secret_cache->keys[i].version);
		values[0] = BoolGetDatum(true);
		values[1] = Int32GetDatum(secret_cache->newest);
		values[2] = PointerGetDatum(construct_array(versions, secret_cache->nkeys, INT4OID,
													sizeof(int32), true, TYPALIGN_INT));
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/*
 * For tests and operators: the first 4 bytes of SHA-256 of the purpose key of a version
 * (0 = the newest), in hex, or NULL when that version is not in the file. Shows whether
 * two sessions or servers derive the same key without revealing it. Superuser only.
 */
Datum
hlauth_secret_fingerprint(PG_FUNCTION_ARGS)
{
	char	   *purpose;
	int32		version = PG_GETARG_INT32(1);
	unsigned char key[HL_KEY_LEN];
	unsigned char digest[HLA_SHA256_LEN];
	char		hex[9];
	int			i;
	int			rc;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read a fingerprint of the server secret"),
				 errdetail("Only superusers may.")));
	purpose = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (HlSecretPurposeKey(purpose, version, key) == 0)
		PG_RETURN_NULL();
	rc = hla_sha256(key, HL_KEY_LEN, digest);
	hla_cleanse(key, sizeof(key));
	if (rc != 0)
		elog(ERROR, "could not compute a fingerprint of the server secret");
	for (i = 0; i < 4; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	hla_cleanse(digest, sizeof(digest));
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}
