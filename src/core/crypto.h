/*
 * src/core/crypto.h
 *		Thin wrappers over OpenSSL 3 for the primitives hlauth uses: HMAC-SHA256 (one-shot
 *		and with a prepared key), HKDF-SHA256, SHA-256, constant-time comparison, random
 *		bytes and wiping.
 *
 * Nothing cryptographic is written here by hand: every primitive is OpenSSL's. The wrappers
 * only give the rest of hlauth one small, size_t-based interface with a uniform result
 * (0 = done, -1 = failed; on failure the output buffer holds no partial secret).
 *
 * This file must never include postgres.h or report errors itself: it is unit-tested on its
 * own (test/unit/test_crypto.c). It never logs or prints keys or messages. Memory it
 * allocates is OpenSSL's (or malloc'd for hla_hmac_key) and is wiped before it is freed.
 * Link with -lcrypto.
 */
#ifndef HLAUTH_CORE_CRYPTO_H
#define HLAUTH_CORE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#define HLA_SHA256_LEN		32	/* bytes of a SHA-256 digest and of an HMAC-SHA256 tag */
#define HLA_HKDF_MAX_LEN	(255 * HLA_SHA256_LEN)	/* longest HKDF-SHA256 output */

/*
 * HMAC-SHA256 of msg under key, into out. Either length may be 0 (a NULL pointer is then
 * allowed). Returns 0, or -1 on failure (out is then zeroed).
 */
extern int	hla_hmac_sha256(const unsigned char *key, size_t keylen,
							const unsigned char *msg, size_t msglen,
							unsigned char out[HLA_SHA256_LEN]);

/*
 * HKDF-SHA256 (RFC 5869, extract then expand) of ikm with salt and info, into out[0..outlen).
 * ikmlen must be > 0; salt and info may be empty (NULL with length 0); outlen must be
 * 1..HLA_HKDF_MAX_LEN. Returns 0, or -1 on failure (out is then zeroed).
 */
extern int	hla_hkdf_sha256(const unsigned char *ikm, size_t ikmlen,
							const unsigned char *salt, size_t saltlen,
							const unsigned char *info, size_t infolen,
							unsigned char *out, size_t outlen);

/* SHA-256 of msg, into out. Returns 0, or -1 on failure (out is then zeroed). */
extern int	hla_sha256(const unsigned char *msg, size_t msglen, unsigned char out[HLA_SHA256_LEN]);

/*
 * Are a[0..len) and b[0..len) equal? Takes the same time whatever the contents (and
 * wherever they differ); it depends only on len. True when len is 0.
 */
extern bool hla_ct_equal(const void *a, const void *b, size_t len);

/* Fill out[0..len) from OpenSSL's CSPRNG. Returns 0, or -1 on failure (out is then zeroed). */
extern int	hla_random_bytes(unsigned char *out, size_t len);

/* Overwrite p[0..len) with zeros in a way the compiler cannot optimise away. */
extern void hla_cleanse(void *p, size_t len);

/*
 * A prepared HMAC-SHA256 key for hot paths: the algorithm is fetched and the key schedule
 * computed once, in hla_hmac_key_new; each hla_hmac_key_sha256 call then costs only the
 * hashing of msg. Not safe to share between threads (a PostgreSQL backend has one).
 * hla_hmac_key_new returns NULL on failure (out of memory, OpenSSL error). keylen may be 0.
 * hla_hmac_key_free wipes and frees it; it accepts NULL.
 */
typedef struct hla_hmac_key hla_hmac_key;

extern hla_hmac_key *hla_hmac_key_new(const unsigned char *key, size_t keylen);
extern void hla_hmac_key_free(hla_hmac_key *hk);

/* HMAC-SHA256 of msg under the prepared key. Returns 0, or -1 on failure (out zeroed). */
extern int	hla_hmac_key_sha256(hla_hmac_key *hk, const unsigned char *msg, size_t msglen,
								unsigned char out[HLA_SHA256_LEN]);

#endif							/* HLAUTH_CORE_CRYPTO_H */
