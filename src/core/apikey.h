/*
 * src/core/apikey.h
 *		The API key format and its stored (hashed) text form, in plain C.
 *
 * A key is `<prefix>_<key id><secret><checksum>`, as in
 *		hlk_live_0Xq3Zr8kPm2AbCdEfGhIjKlMnOpQrStUvW0F7ZdL
 *
 *	prefix		names the environment (`hlk_live`, `hlk_test`): one or more segments of
 *				[a-z][a-z0-9]* joined by single `_`, 2..32 bytes in all.
 *	`_`			one separator. The 40 characters after it never contain `_`, so a key is
 *				split at its LAST `_`.
 *	key id		12 base62 characters: public, used to look the key up.
 *	secret		22 base62 characters (62^22 > 2^130, so at least 128 bits of entropy).
 *	checksum	6 base62 characters: CRC-32 (IEEE, zlib's crc32()) of every byte before
 *				it (`prefix_` + id + secret), as a fixed-width base62 number, most
 *				significant digit first, zero-padded with '0' (62^6 > 2^32, so it fits).
 *				It catches typos and lets secret scanners recognise keys; it is NOT a MAC
 *				and proves nothing about who made the key.
 * base62 is the alphabet 0-9A-Za-z in that order (digit value 0..61).
 *
 * hla_apikey_parse checks, in this order, and reports the first failure:
 *	EMPTY		len == 0
 *	TOO_LONG	len > HLA_APIKEY_MAX_LEN
 *	BAD_CHAR	any NUL or non-ASCII (>= 0x80) byte anywhere
 *	BAD_PREFIX	no `_`, or what precedes the last `_` breaks the prefix grammar
 *	BAD_LENGTH	what follows the last `_` is not exactly 40 bytes
 *	BAD_CHAR	one of those 40 bytes is not base62
 *	BAD_CHECKSUM the checksum is not the canonical encoding of the CRC
 * Any one-character change to a valid key is rejected (CRC-32 detects every error
 * confined to 32 consecutive bits, and the encoding is one-to-one).
 *
 * The stored form keeps only what is safe to show, dump and index:
 *		`<prefix>_<key id>:v<N>:<64 lowercase hex>`
 * where N is the pepper version, 1..65535 written without leading zeros, and the hex is
 * a 32-byte HMAC of the secret (computed by the caller; this file does no cryptography).
 * A plaintext key never contains ':', a stored form always does.
 *
 * This file must never include postgres.h, allocate memory, or read outside the bounds it
 * is given (inputs need not be NUL-terminated): it is unit-tested and fuzzed on its own
 * (test/unit, test/fuzz). Parsing does a bounded amount of work: no more than
 * HLA_APIKEY_STORED_MAX_LEN bytes are ever examined, and the 40 characters after a key's
 * prefix are all checked without stopping at the first bad one. Outputs must not overlap inputs.
 * Link with -lz.
 */
#ifndef HLAUTH_CORE_APIKEY_H
#define HLAUTH_CORE_APIKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HLA_APIKEY_PREFIX_MIN_LEN	2
#define HLA_APIKEY_PREFIX_MAX_LEN	32
#define HLA_APIKEY_ID_LEN			12
#define HLA_APIKEY_SECRET_LEN		22
#define HLA_APIKEY_CHECKSUM_LEN		6
#define HLA_APIKEY_BODY_LEN			40	/* id + secret + checksum */
#define HLA_APIKEY_MAX_LEN			73	/* prefix max + "_" + body, without the NUL */

#define HLA_APIKEY_HASH_LEN			32	/* bytes of HMAC in the stored form */
#define HLA_APIKEY_VERSION_MAX		65535
/* prefix max + "_" + id + ":v" + 5 digits + ":" + 64 hex, without the NUL */
#define HLA_APIKEY_STORED_MAX_LEN	117

/* Random bytes below this are used, the rest skipped: 248 = 4 * 62, so no modulo bias. */
#define HLA_BASE62_REJECT_FROM		248

typedef enum hla_apikey_error
{
	HLA_APIKEY_OK = 0,
	HLA_APIKEY_EMPTY,			/* zero-length input */
	HLA_APIKEY_TOO_LONG,		/* longer than HLA_APIKEY_MAX_LEN (stored:
								 * HLA_APIKEY_STORED_MAX_LEN) */
	HLA_APIKEY_BAD_PREFIX,		/* no "_", or the prefix breaks the grammar */
	HLA_APIKEY_BAD_LENGTH,		/* not exactly 40 characters after the last "_" */
	HLA_APIKEY_BAD_CHAR,		/* NUL or non-ASCII anywhere, or non-base62 in the body */
	HLA_APIKEY_BAD_CHECKSUM,	/* checksum does not match: a typo or a made-up key */
	HLA_APIKEY_BAD_STORED		/* a malformed stored form */
} hla_apikey_error;

/* A parsed key: pointers into the caller's buffer, which must outlive it. */
typedef struct hla_apikey
{
	const char *prefix;			/* prefix_len bytes, without the "_" */
	size_t		prefix_len;
	const char *id;				/* HLA_APIKEY_ID_LEN bytes */
	const char *secret;			/* HLA_APIKEY_SECRET_LEN bytes */
	const char *checksum;		/* HLA_APIKEY_CHECKSUM_LEN bytes */
} hla_apikey;

/* A stored key. prefix and id point into the caller's buffer. */
typedef struct hla_apikey_stored
{
	const char *prefix;			/* prefix_len bytes, without the "_" */
	size_t		prefix_len;
	const char *id;				/* HLA_APIKEY_ID_LEN bytes */
	uint32_t	version;		/* pepper version, 1..HLA_APIKEY_VERSION_MAX */
	unsigned char hash[HLA_APIKEY_HASH_LEN];
} hla_apikey_stored;

/* Does p[0..len) follow the prefix grammar (no trailing "_")? */
extern bool hla_apikey_prefix_valid(const char *p, size_t len);

/*
 * Parse and check a plaintext key of len bytes. On success fills *out with pointers
 * into s and returns HLA_APIKEY_OK; on error returns the first failure in the order
 * above and leaves *out untouched.
 */
extern hla_apikey_error hla_apikey_parse(const char *s, size_t len, hla_apikey *out);

/* A human sentence for an error, for errdetail. Never NULL. */
extern const char *hla_apikey_error_message(hla_apikey_error err);

/*
 * Write `prefix_` + id + secret + checksum and a NUL into out[0..outlen). Returns the
 * key's length (without the NUL), or -1, writing nothing, when the prefix is invalid,
 * id or secret holds a non-base62 byte, or outlen < length + 1.
 */
extern int	hla_apikey_compose(const char *prefix, size_t prefix_len,
							   const char id[HLA_APIKEY_ID_LEN],
							   const char secret[HLA_APIKEY_SECRET_LEN],
							   char *out, size_t outlen);

/*
 * Turn random bytes into base62 characters by rejection sampling: byte b is used only if
 * b < HLA_BASE62_REJECT_FROM, giving the character of value b % 62. Writes at most want
 * characters (no NUL) and returns how many it wrote; the caller draws more random bytes
 * until it has enough. Each byte consumed yields each of the 62 characters with equal
 * probability.
 */
extern size_t hla_base62_from_bytes(const unsigned char *rnd, size_t nrnd,
									char *out, size_t want);

/*
 * Parse a stored form. On success fills *out (prefix and id point into s) and returns
 * HLA_APIKEY_OK; otherwise *out is untouched and the result is, first that applies:
 * HLA_APIKEY_EMPTY, HLA_APIKEY_TOO_LONG (over HLA_APIKEY_STORED_MAX_LEN),
 * HLA_APIKEY_BAD_STORED (any malformation outside the prefix: no ':', no "_" before the
 * 12-character id, a non-base62 id, a version that is missing, 0, above 65535 or has a
 * leading zero, hex that is not exactly 64 lowercase digits, trailing bytes), then
 * HLA_APIKEY_BAD_PREFIX (all else is well formed but the prefix breaks the grammar).
 */
extern hla_apikey_error hla_apikey_stored_parse(const char *s, size_t len,
												hla_apikey_stored *out);

/*
 * Write the stored form of *in and a NUL into out[0..outlen). Returns its length
 * (without the NUL), or -1, writing nothing, when the prefix or id is invalid, the
 * version is outside 1..HLA_APIKEY_VERSION_MAX, or outlen < length + 1.
 */
extern int	hla_apikey_stored_format(const hla_apikey_stored *in, char *out, size_t outlen);

/* Is s[0..len) meant as a stored form rather than a plaintext key (does it hold ':')? */
extern bool hla_apikey_looks_stored(const char *s, size_t len);

#endif							/* HLAUTH_CORE_APIKEY_H */
