/*
 * src/core/crypto.c
 *		Thin wrappers over OpenSSL 3: HMAC-SHA256, HKDF-SHA256, SHA-256, constant-time
 *		comparison, random bytes, wiping. See crypto.h.
 *
 * Every primitive is OpenSSL's (EVP_MAC "HMAC", EVP_KDF "HKDF", EVP_Digest, CRYPTO_memcmp,
 * RAND_bytes, OPENSSL_cleanse); nothing here is hand-written cryptography. This file must
 * never include postgres.h, print or log anything, or leave a partial result in an output
 * buffer after a failure.
 */
#include "crypto.h"

#include <limits.h>
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/* OpenSSL's MAC and KDF entry points want a non-NULL pointer even for an empty buffer. */
static const unsigned char empty_buffer[1] = {0};

#define NONNULL(p) ((p) != NULL ? (const void *) (p) : (const void *) empty_buffer)

int
hla_hmac_sha256(const unsigned char *key, size_t keylen,
				const unsigned char *msg, size_t msglen,
				unsigned char out[HLA_SHA256_LEN])
{
	size_t		outlen = 0;

	if ((key == NULL && keylen != 0) || (msg == NULL && msglen != 0) ||
		EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, NONNULL(key), keylen,
				  NONNULL(msg), msglen, out, HLA_SHA256_LEN, &outlen) == NULL ||
		outlen != HLA_SHA256_LEN)
	{
		OPENSSL_cleanse(out, HLA_SHA256_LEN);
		return -1;
	}
	return 0;
}

int
hla_hkdf_sha256(const unsigned char *ikm, size_t ikmlen,
				const unsigned char *salt, size_t saltlen,
				const unsigned char *info, size_t infolen,
				unsigned char *out, size_t outlen)
{
	EVP_KDF    *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM	params[5];
	OSSL_PARAM *p = params;
	int			rc = -1;

	if (out == NULL || outlen == 0 || outlen > HLA_HKDF_MAX_LEN)
		return -1;
	if (ikm == NULL || ikmlen == 0 || (salt == NULL && saltlen != 0) ||
		(info == NULL && infolen != 0))
		goto done;

	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) ikm, ikmlen);
	/* An absent salt is HashLen zero bytes (RFC 5869 2.2); OpenSSL does that by itself. */
	if (saltlen > 0)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, saltlen);
	if (infolen > 0)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info, infolen);
	*p = OSSL_PARAM_construct_end();

	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	if (kdf == NULL)
		goto done;
	kctx = EVP_KDF_CTX_new(kdf);
	if (kctx == NULL)
		goto done;
	if (EVP_KDF_derive(kctx, out, outlen, params) == 1)
		rc = 0;

done:
	EVP_KDF_CTX_free(kctx);		/* wipes the key material it copied */
	EVP_KDF_free(kdf);
	if (rc != 0)
		OPENSSL_cleanse(out, outlen);
	return rc;
}

/*
 * The digest is fetched once and its context reused (an implicit fetch per call costs more
 * than hashing a short message). A process holds one of each: callers are single-threaded
 * (a PostgreSQL backend, the unit tests, the fuzzer).
 */
int
hla_sha256(const unsigned char *msg, size_t msglen, unsigned char out[HLA_SHA256_LEN])
{
	static EVP_MD *md = NULL;
	static EVP_MD_CTX *ctx = NULL;
	unsigned int outlen = 0;

	if (md == NULL)
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (ctx == NULL)
		ctx = EVP_MD_CTX_new();
	if ((msg == NULL && msglen != 0) || md == NULL || ctx == NULL ||
		EVP_DigestInit_ex2(ctx, md, NULL) != 1 ||
		EVP_DigestUpdate(ctx, NONNULL(msg), msglen) != 1 ||
		EVP_DigestFinal_ex(ctx, out, &outlen) != 1 ||
		outlen != HLA_SHA256_LEN)
	{
		OPENSSL_cleanse(out, HLA_SHA256_LEN);
		return -1;
	}
	return 0;
}

bool
hla_ct_equal(const void *a, const void *b, size_t len)
{
	if (len == 0)
		return true;
	return CRYPTO_memcmp(a, b, len) == 0;
}

int
hla_random_bytes(unsigned char *out, size_t len)
{
	size_t		done = 0;

	/* RAND_bytes takes an int length: feed it in chunks. */
	while (done < len)
	{
		size_t		n = len - done;

		if (n > INT_MAX)
			n = INT_MAX;
		if (RAND_bytes(out + done, (int) n) != 1)
		{
			OPENSSL_cleanse(out, len);
			return -1;
		}
		done += n;
	}
	return 0;
}

void
hla_cleanse(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

/* ---- the prepared key ---- */

/*
 * A fetched HMAC implementation and a context that holds the key schedule (the inner and
 * outer padded key states). Each call re-initialises the context without a key, which
 * makes OpenSSL restart from the saved inner state: no algorithm fetch, no key hashing and
 * no allocation of a new context per call.
 */
struct hla_hmac_key
{
	EVP_MAC    *mac;
	EVP_MAC_CTX *ctx;
};

hla_hmac_key *
hla_hmac_key_new(const unsigned char *key, size_t keylen)
{
	hla_hmac_key *hk;
	OSSL_PARAM	params[2];

	if (key == NULL && keylen != 0)
		return NULL;
	hk = calloc(1, sizeof(hla_hmac_key));
	if (hk == NULL)
		return NULL;
	hk->mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	if (hk->mac == NULL)
		goto fail;
	hk->ctx = EVP_MAC_CTX_new(hk->mac);
	if (hk->ctx == NULL)
		goto fail;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(hk->ctx, NONNULL(key), keylen, params) != 1)
		goto fail;
	return hk;

fail:
	hla_hmac_key_free(hk);
	return NULL;
}

void
hla_hmac_key_free(hla_hmac_key *hk)
{
	if (hk == NULL)
		return;
	EVP_MAC_CTX_free(hk->ctx);	/* OpenSSL wipes the key and the padded key states */
	EVP_MAC_free(hk->mac);
	OPENSSL_cleanse(hk, sizeof(hla_hmac_key));
	free(hk);
}

int
hla_hmac_key_sha256(hla_hmac_key *hk, const unsigned char *msg, size_t msglen,
					unsigned char out[HLA_SHA256_LEN])
{
	size_t		outlen = 0;

	if (hk == NULL || (msg == NULL && msglen != 0) ||
		EVP_MAC_init(hk->ctx, NULL, 0, NULL) != 1 ||	/* restart from the key schedule */
		EVP_MAC_update(hk->ctx, NONNULL(msg), msglen) != 1 ||
		EVP_MAC_final(hk->ctx, out, &outlen, HLA_SHA256_LEN) != 1 ||
		outlen != HLA_SHA256_LEN)
	{
		OPENSSL_cleanse(out, HLA_SHA256_LEN);
		return -1;
	}
	return 0;
}
