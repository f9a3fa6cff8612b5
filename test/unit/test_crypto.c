/*
 * test/unit/test_crypto.c
 *		cmocka unit tests for the OpenSSL wrappers (src/core/crypto.h, crypto.c).
 *
 * Known-answer vectors come from the RFCs (RFC 4231 for HMAC-SHA256, RFC 5869 for
 * HKDF-SHA256, FIPS 180-2 for SHA-256) and are written here as hex literals. The prepared
 * (keyed) HMAC is checked against the one-shot form over many keys and messages, including
 * repeated use of one prepared key, and the wrappers' failure paths are checked to leave
 * no partial output.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto.h"

/* A string literal as bytes and its length (without the NUL). */
#define LIT(s) ((const unsigned char *) (s)), (sizeof(s) - 1)

/* Decode hex into out (which must hold strlen(hex) / 2 bytes); returns the byte count. */
static size_t
unhex(const char *hex, unsigned char *out)
{
	size_t		n = strlen(hex) / 2;
	size_t		i;

	assert_int_equal(strlen(hex) % 2, 0);
	for (i = 0; i < n; i++)
	{
		unsigned int b;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &b), 1);
		out[i] = (unsigned char) b;
	}
	return n;
}

/* Lower-case hex of buf[0..len) into a static buffer. */
static const char *
tohex(const unsigned char *buf, size_t len)
{
	static char out[2 * 512 + 1];
	size_t		i;

	assert_true(len <= 512);
	for (i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", buf[i]);
	out[2 * len] = '\0';
	return out;
}

static bool
all_zero(const unsigned char *buf, size_t len)
{
	size_t		i;

	for (i = 0; i < len; i++)
		if (buf[i] != 0)
			return false;
	return true;
}

/* ------------------------------------------------------------------------ */
/* HMAC-SHA256: RFC 4231                                                    */
/* ------------------------------------------------------------------------ */

static void
check_hmac_both(const unsigned char *key, size_t keylen, const unsigned char *msg,
				size_t msglen, const char *expected)
{
	unsigned char out[HLA_SHA256_LEN];
	hla_hmac_key *hk;

	memset(out, 0x5a, sizeof(out));
	assert_int_equal(hla_hmac_sha256(key, keylen, msg, msglen, out), 0);
	assert_string_equal(tohex(out, sizeof(out)), expected);

	hk = hla_hmac_key_new(key, keylen);
	assert_non_null(hk);
	memset(out, 0x5a, sizeof(out));
	assert_int_equal(hla_hmac_key_sha256(hk, msg, msglen, out), 0);
	assert_string_equal(tohex(out, sizeof(out)), expected);
	/* Once more with the same prepared key: it restarts from the key, not from the last call. */
	memset(out, 0x5a, sizeof(out));
	assert_int_equal(hla_hmac_key_sha256(hk, msg, msglen, out), 0);
	assert_string_equal(tohex(out, sizeof(out)), expected);
	hla_hmac_key_free(hk);
}

/* Test case 1: a 20-byte key of 0x0b, "Hi There". */
static void
test_hmac_rfc4231_case1(void **state)
{
	unsigned char key[20];

	(void) state;
	memset(key, 0x0b, sizeof(key));
	check_hmac_both(key, sizeof(key), LIT("Hi There"),
					"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

/* Test case 2: a key shorter than the output ("Jefe"). */
static void
test_hmac_rfc4231_case2(void **state)
{
	(void) state;
	check_hmac_both(LIT("Jefe"), LIT("what do ya want for nothing?"),
					"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

/* Test case 6: a 131-byte key, longer than the block size (hashed first). */
static void
test_hmac_rfc4231_case6(void **state)
{
	unsigned char key[131];

	(void) state;
	memset(key, 0xaa, sizeof(key));
	check_hmac_both(key, sizeof(key),
					LIT("Test Using Larger Than Block-Size Key - Hash Key First"),
					"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

/* Empty key and empty message are allowed, as NULL with length 0 too. */
static void
test_hmac_empty_inputs(void **state)
{
	unsigned char a[HLA_SHA256_LEN],
				b[HLA_SHA256_LEN];
	hla_hmac_key *hk;

	(void) state;
	/* HMAC-SHA256("", "") */
	assert_int_equal(hla_hmac_sha256(NULL, 0, NULL, 0, a), 0);
	assert_string_equal(tohex(a, sizeof(a)),
						"b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
	assert_int_equal(hla_hmac_sha256(LIT(""), LIT(""), b), 0);
	assert_memory_equal(a, b, sizeof(a));

	hk = hla_hmac_key_new(NULL, 0);
	assert_non_null(hk);
	assert_int_equal(hla_hmac_key_sha256(hk, NULL, 0, b), 0);
	assert_memory_equal(a, b, sizeof(a));
	hla_hmac_key_free(hk);
	hla_hmac_key_free(NULL);	/* accepted */
}

/* A prepared key gives the one-shot result for every message, in any order of calls. */
static void
test_hmac_key_equals_one_shot(void **state)
{
	static const size_t keylens[] = {1, 16, 32, 63, 64, 65, 131};
	unsigned char key[131];
	unsigned char msg[300];
	size_t		k,
				i;

	(void) state;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char) (i * 7 + 3);
	for (k = 0; k < sizeof(keylens) / sizeof(keylens[0]); k++)
	{
		hla_hmac_key *hk;
		size_t		len;

		for (i = 0; i < keylens[k]; i++)
			key[i] = (unsigned char) (i * 13 + k);
		hk = hla_hmac_key_new(key, keylens[k]);
		assert_non_null(hk);
		for (len = 0; len <= sizeof(msg); len += 23)
		{
			unsigned char one[HLA_SHA256_LEN],
						prepared[HLA_SHA256_LEN];

			assert_int_equal(hla_hmac_sha256(key, keylens[k], msg, len, one), 0);
			assert_int_equal(hla_hmac_key_sha256(hk, msg, len, prepared), 0);
			assert_memory_equal(one, prepared, sizeof(one));
		}
		hla_hmac_key_free(hk);
	}
}

/* Two prepared keys used alternately do not disturb each other. */
static void
test_hmac_key_independent(void **state)
{
	hla_hmac_key *a = hla_hmac_key_new(LIT("Jefe"));
	hla_hmac_key *b = hla_hmac_key_new(LIT("another key"));
	unsigned char out[HLA_SHA256_LEN],
				expect_b[HLA_SHA256_LEN];
	int			i;

	(void) state;
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(hla_hmac_sha256(LIT("another key"), LIT("what do ya want for nothing?"), expect_b), 0);
	for (i = 0; i < 3; i++)
	{
		assert_int_equal(hla_hmac_key_sha256(a, LIT("what do ya want for nothing?"), out), 0);
		assert_string_equal(tohex(out, sizeof(out)),
							"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
		assert_int_equal(hla_hmac_key_sha256(b, LIT("what do ya want for nothing?"), out), 0);
		assert_memory_equal(out, expect_b, sizeof(out));
	}
	hla_hmac_key_free(a);
	hla_hmac_key_free(b);
}

/* Bad arguments fail and leave a zeroed output. */
static void
test_hmac_bad_arguments(void **state)
{
	unsigned char out[HLA_SHA256_LEN];

	(void) state;
	memset(out, 0x5a, sizeof(out));
	assert_int_equal(hla_hmac_sha256(NULL, 5, LIT("x"), out), -1);
	assert_true(all_zero(out, sizeof(out)));
	memset(out, 0x5a, sizeof(out));
	assert_int_equal(hla_hmac_sha256(LIT("k"), NULL, 5, out), -1);
	assert_true(all_zero(out, sizeof(out)));
	memset(out, 0x5a, sizeof(out));
	assert_int_equal(hla_hmac_key_sha256(NULL, LIT("x"), out), -1);
	assert_true(all_zero(out, sizeof(out)));
	assert_null(hla_hmac_key_new(NULL, 5));
}

/* ------------------------------------------------------------------------ */
/* HKDF-SHA256: RFC 5869                                                    */
/* ------------------------------------------------------------------------ */

/* Test case 1: basic, with salt and info, L = 42. */
static void
test_hkdf_rfc5869_case1(void **state)
{
	unsigned char ikm[22],
				salt[13],
				info[10],
				okm[42];

	(void) state;
	memset(ikm, 0x0b, sizeof(ikm));
	unhex("000102030405060708090a0b0c", salt);
	unhex("f0f1f2f3f4f5f6f7f8f9", info);
	assert_int_equal(hla_hkdf_sha256(ikm, sizeof(ikm), salt, sizeof(salt), info, sizeof(info),
									 okm, sizeof(okm)), 0);
	assert_string_equal(tohex(okm, sizeof(okm)),
						"3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

/* Test case 3: zero-length salt and info. */
static void
test_hkdf_rfc5869_case3(void **state)
{
	unsigned char ikm[22],
				okm[42];

	(void) state;
	memset(ikm, 0x0b, sizeof(ikm));
	assert_int_equal(hla_hkdf_sha256(ikm, sizeof(ikm), NULL, 0, NULL, 0, okm, sizeof(okm)), 0);
	assert_string_equal(tohex(okm, sizeof(okm)),
						"8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

/* Different info gives unrelated keys; a shorter output is a prefix of a longer one. */
static void
test_hkdf_info_and_length(void **state)
{
	unsigned char ikm[32],
				a[32],
				b[32],
				longer[64];

	(void) state;
	memset(ikm, 0x42, sizeof(ikm));
	assert_int_equal(hla_hkdf_sha256(ikm, 32, LIT("hlauth-v1"), LIT("hlauth/apikey-pepper"), a, 32), 0);
	assert_int_equal(hla_hkdf_sha256(ikm, 32, LIT("hlauth-v1"), LIT("hlauth/audit-seal"), b, 32), 0);
	assert_false(hla_ct_equal(a, b, 32));
	assert_int_equal(hla_hkdf_sha256(ikm, 32, LIT("hlauth-v1"), LIT("hlauth/apikey-pepper"), longer, 64), 0);
	assert_memory_equal(a, longer, 32);
}

/* Bad arguments fail and leave a zeroed output. */
static void
test_hkdf_bad_arguments(void **state)
{
	unsigned char ikm[32],
				out[32];
	static unsigned char big[HLA_HKDF_MAX_LEN + 1];

	(void) state;
	memset(ikm, 1, sizeof(ikm));
	memset(out, 0x5a, sizeof(out));
	assert_int_equal(hla_hkdf_sha256(NULL, 0, NULL, 0, NULL, 0, out, sizeof(out)), -1);
	assert_true(all_zero(out, sizeof(out)));
	memset(out, 0x5a, sizeof(out));
	assert_int_equal(hla_hkdf_sha256(ikm, 32, NULL, 3, NULL, 0, out, sizeof(out)), -1);
	assert_true(all_zero(out, sizeof(out)));
	assert_int_equal(hla_hkdf_sha256(ikm, 32, NULL, 0, NULL, 0, out, 0), -1);
	assert_int_equal(hla_hkdf_sha256(ikm, 32, NULL, 0, NULL, 0, big, sizeof(big)), -1);
	assert_int_equal(hla_hkdf_sha256(ikm, 32, NULL, 0, NULL, 0, big, HLA_HKDF_MAX_LEN), 0);
}

/* ------------------------------------------------------------------------ */
/* SHA-256                                                                  */
/* ------------------------------------------------------------------------ */

static void
test_sha256(void **state)
{
	unsigned char out[HLA_SHA256_LEN];

	(void) state;
	assert_int_equal(hla_sha256(LIT("abc"), out), 0);
	assert_string_equal(tohex(out, sizeof(out)),
						"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(hla_sha256(NULL, 0, out), 0);
	assert_string_equal(tohex(out, sizeof(out)),
						"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* ------------------------------------------------------------------------ */
/* constant-time comparison, random bytes, cleanse                          */
/* ------------------------------------------------------------------------ */

static void
test_ct_equal(void **state)
{
	unsigned char a[64],
				b[64];
	size_t		i;

	(void) state;
	for (i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (unsigned char) i;
	assert_true(hla_ct_equal(a, b, sizeof(a)));
	assert_true(hla_ct_equal(a, b, 0));
	assert_true(hla_ct_equal(NULL, NULL, 0));

	/* A difference at every position, including the first and the last byte. */
	for (i = 0; i < sizeof(a); i++)
	{
		b[i] ^= 0x01;
		assert_false(hla_ct_equal(a, b, sizeof(a)));
		/* A comparison that stops before the difference sees equal buffers. */
		assert_true(hla_ct_equal(a, b, i));
		b[i] ^= 0x01;
	}
	b[sizeof(b) - 1] ^= 0x80;
	assert_false(hla_ct_equal(a, b, sizeof(a)));
	assert_true(hla_ct_equal(a, b, sizeof(a) - 1));
}

static void
test_random_bytes(void **state)
{
	unsigned char a[64],
				b[64];
	int			seen[64];
	int			round,
				i;

	(void) state;
	memset(seen, 0, sizeof(seen));
	/* The buffer is filled: over a few rounds, every byte position is non-zero at least once. */
	for (round = 0; round < 8; round++)
	{
		memset(a, 0, sizeof(a));
		assert_int_equal(hla_random_bytes(a, sizeof(a)), 0);
		for (i = 0; i < 64; i++)
			seen[i] |= (a[i] != 0);
	}
	for (i = 0; i < 64; i++)
		assert_true(seen[i]);

	/* Two calls differ. */
	assert_int_equal(hla_random_bytes(a, sizeof(a)), 0);
	assert_int_equal(hla_random_bytes(b, sizeof(b)), 0);
	assert_false(hla_ct_equal(a, b, sizeof(a)));

	/* A zero-length request succeeds and writes nothing. */
	assert_int_equal(hla_random_bytes(NULL, 0), 0);
}

static void
test_cleanse(void **state)
{
	unsigned char buf[48];

	(void) state;
	memset(buf, 0xa5, sizeof(buf));
	hla_cleanse(buf, 32);
	assert_true(all_zero(buf, 32));
	assert_int_equal(buf[32], 0xa5);
	hla_cleanse(NULL, 0);		/* accepted */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_rfc4231_case1),
		cmocka_unit_test(test_hmac_rfc4231_case2),
		cmocka_unit_test(test_hmac_rfc4231_case6),
		cmocka_unit_test(test_hmac_empty_inputs),
		cmocka_unit_test(test_hmac_key_equals_one_shot),
		cmocka_unit_test(test_hmac_key_independent),
		cmocka_unit_test(test_hmac_bad_arguments),
		cmocka_unit_test(test_hkdf_rfc5869_case1),
		cmocka_unit_test(test_hkdf_rfc5869_case3),
		cmocka_unit_test(test_hkdf_info_and_length),
		cmocka_unit_test(test_hkdf_bad_arguments),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_ct_equal),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_cleanse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
