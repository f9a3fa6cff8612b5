/*
 * test/unit/test_apikey.c
 *		cmocka unit tests for the pure-C API key core (src/core/apikey.h, apikey.c).
 *
 * Expected checksums are computed here independently of apikey.c: zlib's crc32() and a
 * base62 encoder written below, plus two literal vectors derived once outside this code.
 * Every assertion names the input that failed; non-printable bytes are shown escaped.
 * Out-of-bounds reads are caught without a sanitizer by placing inputs against a
 * PROT_NONE guard page (and, for AddressSanitizer builds, in exact-size heap copies).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "apikey.h"

#define ARRAY_LEN(a) ((int) (sizeof(a) / sizeof((a)[0])))
/* A string literal and its length, counting embedded NUL bytes. */
#define LIT(s) (s), (sizeof(s) - 1)

/* The base62 alphabet, written out here rather than taken from apikey.c. */
static const char B62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* A 40-character body whose checksum part is wrong for any prefix in this file. */
#define BODY40 "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcd"

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */
/* ------------------------------------------------------------------------ */

static const char *
err_name(hla_apikey_error e)
{
	switch (e)
	{
		case HLA_APIKEY_OK: return "OK";
		case HLA_APIKEY_EMPTY: return "EMPTY";
		case HLA_APIKEY_TOO_LONG: return "TOO_LONG";
		case HLA_APIKEY_BAD_PREFIX: return "BAD_PREFIX";
		case HLA_APIKEY_BAD_LENGTH: return "BAD_LENGTH";
		case HLA_APIKEY_BAD_CHAR: return "BAD_CHAR";
		case HLA_APIKEY_BAD_CHECKSUM: return "BAD_CHECKSUM";
		case HLA_APIKEY_BAD_STORED: return "BAD_STORED";
	}
	return "?";
}

/* Escape s[0..len) into one of a few rotating static buffers, for messages. */
static const char *
show(const char *s, size_t len)
{
	static char bufs[4][700];
	static int	next;
	char	   *b = bufs[next++ % 4];
	size_t		o = 0;
	size_t		i;

	for (i = 0; i < len && o < sizeof(bufs[0]) - 8; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
			b[o++] = (char) c;
		else
			o += (size_t) snprintf(b + o, sizeof(bufs[0]) - o, "\\x%02X", c);
	}
	if (i < len)
		o += (size_t) snprintf(b + o, sizeof(bufs[0]) - o, "...");
	b[o] = '\0';
	return b;
}

/* Test-side base62: v as `width` digits, most significant first, zero-padded. */
static void
ref_base62(uint32_t v, char *out, int width)
{
	int			i;

	for (i = width - 1; i >= 0; i--)
	{
		out[i] = B62[v % 62];
		v /= 62;
	}
}

/* Test-side key builder: zlib crc32 + ref_base62. Returns the length, NUL-terminated. */
static size_t
ref_key(const char *prefix, const char *id, const char *secret, char *out, size_t cap)
{
	int			n = snprintf(out, cap, "%s_%.12s%.22s", prefix, id, secret);
	uLong		crc;

	assert_true(n > 0 && (size_t) n + 7 <= cap);
	crc = crc32(crc32(0L, Z_NULL, 0), (const Bytef *) out, (uInt) n);
	ref_base62((uint32_t) crc, out + n, 6);
	out[n + 6] = '\0';
	return (size_t) n + 6;
}

/* A deterministic pseudo-random generator (64-bit LCG, high bits). */
static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

static unsigned int
rng(void)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned int) (rng_state >> 33);
}

static void
rand_base62(char *out, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = B62[rng() % 62];
}

static void
check_parse(const char *s, size_t len, hla_apikey_error want, const char *file, int line)
{
	hla_apikey	k;
	hla_apikey_error got;

	memset(&k, 0xA5, sizeof(k));
	got = hla_apikey_parse(s, len, &k);
	if (got != want)
	{
		print_error("hla_apikey_parse(\"%s\", %zu) = %s, want %s\n",
					show(s, len), len, err_name(got), err_name(want));
		_fail(file, line);
	}
	if (got != HLA_APIKEY_OK)
	{
		hla_apikey	untouched;

		memset(&untouched, 0xA5, sizeof(untouched));
		if (memcmp(&k, &untouched, sizeof(k)) != 0)
		{
			print_error("hla_apikey_parse(\"%s\", %zu) wrote *out on error %s\n",
						show(s, len), len, err_name(got));
			_fail(file, line);
		}
	}
}

/* Parse a C string / a literal that may hold NUL bytes. */
#define PARSE(s, e) check_parse((s), strlen(s), (e), __FILE__, __LINE__)
#define PARSEN(lit, e) check_parse(LIT(lit), (e), __FILE__, __LINE__)

static void
check_stored(const char *s, size_t len, hla_apikey_error want, const char *file, int line)
{
	hla_apikey_stored st;
	hla_apikey_error got;

	memset(&st, 0xA5, sizeof(st));
	got = hla_apikey_stored_parse(s, len, &st);
	if (got != want)
	{
		print_error("hla_apikey_stored_parse(\"%s\", %zu) = %s, want %s\n",
					show(s, len), len, err_name(got), err_name(want));
		_fail(file, line);
	}
	if (got != HLA_APIKEY_OK)
	{
		hla_apikey_stored untouched;

		memset(&untouched, 0xA5, sizeof(untouched));
		if (memcmp(&st, &untouched, sizeof(st)) != 0)
		{
			print_error("hla_apikey_stored_parse(\"%s\", %zu) wrote *out on error %s\n",
						show(s, len), len, err_name(got));
			_fail(file, line);
		}
	}
}

#define STORED(s, e) check_stored((s), strlen(s), (e), __FILE__, __LINE__)
#define STOREDN(lit, e) check_stored(LIT(lit), (e), __FILE__, __LINE__)

static void
check_prefix(const char *p, size_t len, bool want, const char *file, int line)
{
	bool		got = hla_apikey_prefix_valid(p, len);

	if (got != want)
	{
		print_error("hla_apikey_prefix_valid(\"%s\", %zu) = %s, want %s\n",
					show(p, len), len, got ? "true" : "false", want ? "true" : "false");
		_fail(file, line);
	}
}

#define PREFIX_OK(p) check_prefix((p), strlen(p), true, __FILE__, __LINE__)
#define PREFIX_BAD(p) check_prefix((p), strlen(p), false, __FILE__, __LINE__)
#define PREFIX_BADN(lit) check_prefix(LIT(lit), false, __FILE__, __LINE__)

/* 64 lowercase hex digits: 00 01 02 ... 1f. */
#define HEX64 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

/*
 * Guard-page placement: a copy of s[0..len) that ends exactly where a PROT_NONE page
 * begins (at_end) or starts exactly where one ends, so a read one byte outside the
 * given bounds faults.
 */
typedef struct guarded
{
	char	   *map;
	size_t		maplen;
	char	   *data;
} guarded;

static guarded
guarded_copy(const char *s, size_t len, bool at_end)
{
	size_t		page = (size_t) sysconf(_SC_PAGESIZE);
	guarded		g;

	assert_true(len <= page);
	g.maplen = 3 * page;
	g.map = mmap(NULL, g.maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(g.map != MAP_FAILED);
	assert_int_equal(mprotect(g.map, page, PROT_NONE), 0);
	assert_int_equal(mprotect(g.map + 2 * page, page, PROT_NONE), 0);
	g.data = at_end ? g.map + 2 * page - len : g.map + page;
	if (len > 0)
		memcpy(g.data, s, len);
	return g;
}

static void
guarded_free(guarded *g)
{
	munmap(g->map, g->maplen);
}

/* Prefixes used throughout: shortest, typical, multi-segment, with digits, longest. */
static const char *const good_prefixes[] = {
	"ab",
	"hlk_live",
	"hlk_test",
	"a_b",
	"a1_b2_c3",
	"hlk_live_eu1",
	"abcdefghijklmnopqrstuvwxyz012345",		/* 32 bytes */
	"a_b_c_d_e_f_g_h_i_j_k_l_m_n_o_p",		/* 31 bytes, 16 segments */
};

/* ------------------------------------------------------------------------ */
/* known vectors and round trips                                            */
/* ------------------------------------------------------------------------ */

/*
 * Two literal vectors, derived once with Python's zlib (independent of this C code):
 *	zlib.crc32(b"hlk_test_" + b"0" * 34) == 0x493A72A0 == 1228567200
 *		= 1*62^5 + 21*62^4 + 8*62^3 + 58*62^2 + 28*62 + 0  ->  "1L8wS0"
 *	zlib.crc32(b"hlk_live_0Xq3Zr8kPm2AbCdEfGhIjKlMnOpQrStUvW") == 0x0D5194CB  ->  "0F7ZdL"
 * (the second is the example in apikey.h).
 */
static void
test_literal_vectors(void **state)
{
	static const char k1[] = "hlk_test_00000000000000000000000000000000001L8wS0";
	static const char k2[] = "hlk_live_0Xq3Zr8kPm2AbCdEfGhIjKlMnOpQrStUvW0F7ZdL";
	char		out[HLA_APIKEY_MAX_LEN + 1];
	char		digits[7] = {0};
	hla_apikey	k;

	(void) state;
	/* the arithmetic in the comment above, checked with the test's own encoder */
	assert_int_equal(1U * 916132832U + 21U * 14776336U + 8U * 238328U + 58U * 3844U + 28U * 62U,
					 1228567200U);
	ref_base62(0x493A72A0U, digits, 6);
	assert_string_equal(digits, "1L8wS0");

	assert_int_equal(hla_apikey_parse(LIT(k1), &k), HLA_APIKEY_OK);
	assert_int_equal(k.prefix_len, 8);
	assert_memory_equal(k.prefix, "hlk_test", 8);
	assert_ptr_equal(k.id, k1 + 9);
	assert_ptr_equal(k.secret, k1 + 21);
	assert_ptr_equal(k.checksum, k1 + 43);
	assert_memory_equal(k.checksum, "1L8wS0", 6);
	assert_int_equal(hla_apikey_compose("hlk_test", 8, "000000000000",
										"0000000000000000000000", out, sizeof(out)),
					 (int) sizeof(k1) - 1);
	assert_string_equal(out, k1);

	PARSEN(k2, HLA_APIKEY_OK);
	assert_int_equal(hla_apikey_compose("hlk_live", 8, "0Xq3Zr8kPm2A",
										"bCdEfGhIjKlMnOpQrStUvW", out, sizeof(out)),
					 (int) sizeof(k2) - 1);
	assert_string_equal(out, k2);
}

/* compose agrees with the test's own zlib + base62 construction on random inputs. */
static void
test_independent_vectors(void **state)
{
	int			round;

	(void) state;
	for (round = 0; round < 2000; round++)
	{
		const char *prefix = good_prefixes[round % ARRAY_LEN(good_prefixes)];
		char		id[HLA_APIKEY_ID_LEN];
		char		secret[HLA_APIKEY_SECRET_LEN];
		char		want[HLA_APIKEY_MAX_LEN + 8];
		char		got[HLA_APIKEY_MAX_LEN + 1];
		size_t		wlen;
		int			glen;

		rand_base62(id, sizeof(id));
		rand_base62(secret, sizeof(secret));
		wlen = ref_key(prefix, id, secret, want, sizeof(want));
		glen = hla_apikey_compose(prefix, strlen(prefix), id, secret, got, sizeof(got));
		if (glen != (int) wlen || strcmp(got, want) != 0)
		{
			print_error("compose gave \"%s\" (%d), want \"%s\" (%zu)\n",
						show(got, glen > 0 ? (size_t) glen : 0), glen, want, wlen);
			fail();
		}
	}
}

static void
test_compose_parse_roundtrip(void **state)
{
	int			round;

	(void) state;
	for (round = 0; round < 2000; round++)
	{
		const char *prefix = good_prefixes[round % ARRAY_LEN(good_prefixes)];
		size_t		plen = strlen(prefix);
		char		id[HLA_APIKEY_ID_LEN];
		char		secret[HLA_APIKEY_SECRET_LEN];
		char		key[HLA_APIKEY_MAX_LEN + 1];
		hla_apikey	k;
		int			n;

		rand_base62(id, sizeof(id));
		rand_base62(secret, sizeof(secret));
		n = hla_apikey_compose(prefix, plen, id, secret, key, sizeof(key));
		assert_int_equal(n, (int) (plen + 1 + HLA_APIKEY_BODY_LEN));
		assert_int_equal(key[n], '\0');
		assert_int_equal((int) strlen(key), n);
		assert_null(memchr(key, ':', (size_t) n));
		assert_false(hla_apikey_looks_stored(key, (size_t) n));

		assert_int_equal(hla_apikey_parse(key, (size_t) n, &k), HLA_APIKEY_OK);
		assert_ptr_equal(k.prefix, key);
		assert_int_equal(k.prefix_len, plen);
		assert_ptr_equal(k.id, key + plen + 1);
		assert_ptr_equal(k.secret, key + plen + 1 + HLA_APIKEY_ID_LEN);
		assert_ptr_equal(k.checksum, key + plen + 1 + HLA_APIKEY_ID_LEN + HLA_APIKEY_SECRET_LEN);
		assert_memory_equal(k.id, id, sizeof(id));
		assert_memory_equal(k.secret, secret, sizeof(secret));

		/* recompose from the parts gives the same bytes */
		{
			char		again[HLA_APIKEY_MAX_LEN + 1];

			assert_int_equal(hla_apikey_compose(k.prefix, k.prefix_len, k.id, k.secret,
												again, sizeof(again)), n);
			assert_string_equal(again, key);
		}
	}
}

static void
test_compose_errors(void **state)
{
	char		buf[HLA_APIKEY_MAX_LEN + 8];
	char		sentinel[sizeof(buf)];
	const char *id = "AbCdEfGhIjKl";
	const char *secret = "0123456789abcdefghijkl";
	char		badid[HLA_APIKEY_ID_LEN];
	char		badsecret[HLA_APIKEY_SECRET_LEN];
	int			i;

	(void) state;
	memset(sentinel, '#', sizeof(sentinel));

#define COMPOSE_FAILS(p, plen, i_, s_, out, outlen) \
	do { \
		memset(buf, '#', sizeof(buf)); \
		assert_int_equal(hla_apikey_compose((p), (plen), (i_), (s_), (out), (outlen)), -1); \
		assert_memory_equal(buf, sentinel, sizeof(buf)); \
	} while (0)

	/* invalid prefixes */
	COMPOSE_FAILS("a", 1, id, secret, buf, sizeof(buf));
	COMPOSE_FAILS("", 0, id, secret, buf, sizeof(buf));
	COMPOSE_FAILS(NULL, 0, id, secret, buf, sizeof(buf));
	COMPOSE_FAILS("hlk_", 4, id, secret, buf, sizeof(buf));
	COMPOSE_FAILS("Hlk", 3, id, secret, buf, sizeof(buf));
	COMPOSE_FAILS("abcdefghijklmnopqrstuvwxyz0123456", 33, id, secret, buf, sizeof(buf));

	/* a non-base62 byte at any position of the id or the secret */
	for (i = 0; i < HLA_APIKEY_ID_LEN; i++)
	{
		memcpy(badid, id, sizeof(badid));
		badid[i] = (i % 3 == 0) ? '_' : (i % 3 == 1) ? '\0' : ':';
		COMPOSE_FAILS("hlk_live", 8, badid, secret, buf, sizeof(buf));
	}
	for (i = 0; i < HLA_APIKEY_SECRET_LEN; i++)
	{
		memcpy(badsecret, secret, sizeof(badsecret));
		badsecret[i] = (i % 2 == 0) ? '-' : (char) 0xC3;
		COMPOSE_FAILS("hlk_live", 8, id, badsecret, buf, sizeof(buf));
	}

	/* buffer sizes: the key is 8 + 1 + 40 = 49 bytes and needs 50 with the NUL */
	COMPOSE_FAILS("hlk_live", 8, id, secret, buf, 0);
	COMPOSE_FAILS("hlk_live", 8, id, secret, buf, 49);
	COMPOSE_FAILS("hlk_live", 8, id, secret, NULL, 100);
	memset(buf, '#', sizeof(buf));
	assert_int_equal(hla_apikey_compose("hlk_live", 8, id, secret, buf, 50), 49);
	assert_int_equal(buf[49], '\0');
	assert_int_equal(buf[50], '#');		/* nothing past outlen */

	/* the longest prefix gives the longest key */
	assert_int_equal(hla_apikey_compose(good_prefixes[6], 32, id, secret, buf,
										HLA_APIKEY_MAX_LEN + 1), HLA_APIKEY_MAX_LEN);
	PARSE(buf, HLA_APIKEY_OK);
	/* the prefix is read for prefix_len bytes only */
	assert_int_equal(hla_apikey_compose("hlk_live_junk", 8, id, secret, buf, sizeof(buf)), 49);
	assert_memory_equal(buf, "hlk_live_AbCdEfGhIjKl", 21);
#undef COMPOSE_FAILS
}

/* ------------------------------------------------------------------------ */
/* parse: every error code                                                  */
/* ------------------------------------------------------------------------ */

static void
test_parse_each_error(void **state)
{
	char		key[HLA_APIKEY_MAX_LEN + 8];
	char		buf[HLA_APIKEY_MAX_LEN + 64];
	size_t		n;
	hla_apikey	k;

	(void) state;
	n = ref_key("hlk_live", "AbCdEfGhIjKl", "0123456789abcdefghijkl", key, sizeof(key));

	/* OK */
	check_parse(key, n, HLA_APIKEY_OK, __FILE__, __LINE__);

	/* EMPTY: zero length, whatever the pointer */
	PARSE("", HLA_APIKEY_EMPTY);
	assert_int_equal(hla_apikey_parse(NULL, 0, &k), HLA_APIKEY_EMPTY);
	check_parse(key, 0, HLA_APIKEY_EMPTY, __FILE__, __LINE__);

	/* TOO_LONG: 74 bytes, even if otherwise shaped like a key */
	PARSE("abcdefghijklmnopqrstuvwxyz0123456_" BODY40, HLA_APIKEY_TOO_LONG);
	memset(buf, 'a', sizeof(buf));
	check_parse(buf, HLA_APIKEY_MAX_LEN + 1, HLA_APIKEY_TOO_LONG, __FILE__, __LINE__);
	check_parse(buf, HLA_APIKEY_MAX_LEN + 50, HLA_APIKEY_TOO_LONG, __FILE__, __LINE__);
	/* ... and 73 bytes is not too long */
	check_parse(buf, HLA_APIKEY_MAX_LEN, HLA_APIKEY_BAD_PREFIX, __FILE__, __LINE__);

	/* BAD_PREFIX: no "_" at all, an empty prefix, a prefix breaking the grammar */
	PARSE("a", HLA_APIKEY_BAD_PREFIX);
	PARSE(BODY40, HLA_APIKEY_BAD_PREFIX);
	PARSE("_" BODY40, HLA_APIKEY_BAD_PREFIX);
	PARSE("a_" BODY40, HLA_APIKEY_BAD_PREFIX);
	PARSE("Ab_" BODY40, HLA_APIKEY_BAD_PREFIX);

	/* BAD_LENGTH: the body is not 40 bytes */
	PARSE("ab_", HLA_APIKEY_BAD_LENGTH);
	PARSE("ab_x", HLA_APIKEY_BAD_LENGTH);
	PARSE("hlk_live_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabc", HLA_APIKEY_BAD_LENGTH);	/* 39 */
	PARSE("hlk_live_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcde", HLA_APIKEY_BAD_LENGTH); /* 41 */
	check_parse(key, n - 1, HLA_APIKEY_BAD_LENGTH, __FILE__, __LINE__);

	/* BAD_CHAR: non-base62 in the body, NUL or non-ASCII anywhere */
	PARSE("ab_-123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcd", HLA_APIKEY_BAD_CHAR);
	PARSE("ab_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabc.", HLA_APIKEY_BAD_CHAR);
	PARSE("ab_0123456789ABCDEFGHIJ:LMNOPQRSTUVWXYZabcd", HLA_APIKEY_BAD_CHAR);
	PARSEN("ab_0123456789ABCDEFGHIJ\0LMNOPQRSTUVWXYZabcd", HLA_APIKEY_BAD_CHAR);
	PARSE("ab_0123456789ABCDEFGHIJ\xC3\xA9MNOPQRSTUVWXYZabcd", HLA_APIKEY_BAD_CHAR);
	PARSEN("a\0_" BODY40, HLA_APIKEY_BAD_CHAR);		/* NUL beats the prefix check */
	PARSE("\xFF" "b_" BODY40, HLA_APIKEY_BAD_CHAR);
	PARSEN("\0", HLA_APIKEY_BAD_CHAR);
	PARSE("\x80", HLA_APIKEY_BAD_CHAR);
	PARSEN("ab_x\0", HLA_APIKEY_BAD_CHAR);		/* NUL beats the length check */

	/* BAD_CHECKSUM: a well-formed key with the wrong last six characters */
	PARSE("ab_" BODY40, HLA_APIKEY_BAD_CHECKSUM);
	memcpy(buf, key, n);
	buf[n - 1] = (buf[n - 1] == 'z') ? 'y' : 'z';
	check_parse(buf, n, HLA_APIKEY_BAD_CHECKSUM, __FILE__, __LINE__);
	/* a checksum digit string above 2^32 - 1 is never canonical */
	memcpy(buf, key, n);
	memcpy(buf + n - 6, "zzzzzz", 6);
	check_parse(buf, n, HLA_APIKEY_BAD_CHECKSUM, __FILE__, __LINE__);
}

/* The order of the checks when several fail at once. */
static void
test_parse_precedence(void **state)
{
	(void) state;
	/* TOO_LONG before BAD_CHAR */
	PARSE("\xFF" "bcdefghijklmnopqrstuvwxyz0123456_" BODY40, HLA_APIKEY_TOO_LONG);
	/* BAD_CHAR (NUL / non-ASCII) before BAD_PREFIX and BAD_LENGTH */
	PARSEN("A\0", HLA_APIKEY_BAD_CHAR);
	/* BAD_PREFIX before BAD_LENGTH and body characters */
	PARSE("A_x", HLA_APIKEY_BAD_PREFIX);
	PARSE("A_-", HLA_APIKEY_BAD_PREFIX);
	/* BAD_LENGTH before body characters */
	PARSE("ab_---", HLA_APIKEY_BAD_LENGTH);
	/* BAD_CHAR in the body before BAD_CHECKSUM */
	PARSE("ab_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabc-", HLA_APIKEY_BAD_CHAR);
	/* the split is at the LAST "_": a "_" in the body shortens it */
	PARSE("ab_0123456789ABCDEFGHIJ_LMNOPQRSTUVWXYZabcd", HLA_APIKEY_BAD_PREFIX);
	PARSE("ab_cd_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcd", HLA_APIKEY_BAD_CHECKSUM);
	/* a stored form is not a plaintext key */
	PARSE("hlk_live_AbCdEfGhIjKl:v1:" HEX64, HLA_APIKEY_TOO_LONG);
	PARSE("hlk_live_AbCdEfGhIjKl:v1:00", HLA_APIKEY_BAD_LENGTH);
}

/* ------------------------------------------------------------------------ */
/* parse: every one-character change is caught                              */
/* ------------------------------------------------------------------------ */

/* Is e an acceptable rejection for a change at position pos of a key with prefix plen? */
static bool
expected_rejection(hla_apikey_error e, size_t pos, size_t plen, unsigned char c)
{
	if (c == 0 || c >= 0x80)
		return e == HLA_APIKEY_BAD_CHAR;
	if (pos < plen)				/* in the prefix */
		return e == HLA_APIKEY_BAD_CHECKSUM || e == HLA_APIKEY_BAD_PREFIX;
	if (pos == plen)			/* the separator */
		return e == HLA_APIKEY_BAD_LENGTH || e == HLA_APIKEY_BAD_PREFIX;
	/* in the body */
	if (c == '_')
		return e == HLA_APIKEY_BAD_LENGTH || e == HLA_APIKEY_BAD_PREFIX;
	if (strchr(B62, c) == NULL)
		return e == HLA_APIKEY_BAD_CHAR;
	return e == HLA_APIKEY_BAD_CHECKSUM;
}

static void
substitute_all(const char *key, size_t n, size_t plen, bool every_byte, int *count)
{
	char		buf[HLA_APIKEY_MAX_LEN];
	size_t		pos;
	int			r;
	int			nrepl = every_byte ? 256 : 62;

	for (pos = 0; pos < n; pos++)
		for (r = 0; r < nrepl; r++)
		{
			unsigned char c = every_byte ? (unsigned char) r : (unsigned char) B62[r];
			hla_apikey	k;
			hla_apikey_error e;

			if ((unsigned char) key[pos] == c)
				continue;
			memcpy(buf, key, n);
			buf[pos] = (char) c;
			e = hla_apikey_parse(buf, n, &k);
			(*count)++;
			if (e == HLA_APIKEY_OK || !expected_rejection(e, pos, plen, c))
			{
				print_error("key \"%s\" with byte %zu changed to 0x%02X: \"%s\" parses as %s\n",
							key, pos, c, show(buf, n), err_name(e));
				fail();
			}
		}
}

static void
test_substitution_base62(void **state)
{
	int			count = 0;
	int			i,
				round;

	(void) state;
	for (i = 0; i < ARRAY_LEN(good_prefixes); i++)
		for (round = 0; round < 3; round++)
		{
			char		id[HLA_APIKEY_ID_LEN];
			char		secret[HLA_APIKEY_SECRET_LEN];
			char		key[HLA_APIKEY_MAX_LEN + 8];
			size_t		n;

			rand_base62(id, sizeof(id));
			rand_base62(secret, sizeof(secret));
			n = ref_key(good_prefixes[i], id, secret, key, sizeof(key));
			substitute_all(key, n, strlen(good_prefixes[i]), false, &count);
		}
	/* 24 keys, 61 replacements at each of their positions */
	assert_true(count > 24 * 45 * 61);
}

static void
test_substitution_every_byte(void **state)
{
	int			count = 0;
	int			i;

	(void) state;
	for (i = 0; i < ARRAY_LEN(good_prefixes); i++)
	{
		char		id[HLA_APIKEY_ID_LEN];
		char		secret[HLA_APIKEY_SECRET_LEN];
		char		key[HLA_APIKEY_MAX_LEN + 8];
		size_t		n;

		rand_base62(id, sizeof(id));
		rand_base62(secret, sizeof(secret));
		n = ref_key(good_prefixes[i], id, secret, key, sizeof(key));
		substitute_all(key, n, strlen(good_prefixes[i]), true, &count);
	}
	assert_true(count > 8 * 45 * 255);
}

/* Swapping two adjacent different characters, dropping or doubling one: all caught. */
static void
test_transpositions_and_indels(void **state)
{
	int			i;

	(void) state;
	for (i = 0; i < ARRAY_LEN(good_prefixes); i++)
	{
		char		id[HLA_APIKEY_ID_LEN];
		char		secret[HLA_APIKEY_SECRET_LEN];
		char		key[HLA_APIKEY_MAX_LEN + 8];
		char		buf[HLA_APIKEY_MAX_LEN + 8];
		size_t		n,
					pos;
		hla_apikey	k;

		rand_base62(id, sizeof(id));
		rand_base62(secret, sizeof(secret));
		n = ref_key(good_prefixes[i], id, secret, key, sizeof(key));
		for (pos = 0; pos + 1 < n; pos++)
		{
			if (key[pos] == key[pos + 1])
				continue;
			memcpy(buf, key, n);
			buf[pos] = key[pos + 1];
			buf[pos + 1] = key[pos];
			if (hla_apikey_parse(buf, n, &k) == HLA_APIKEY_OK)
			{
				print_error("transposed at %zu: \"%s\" parses\n", pos, show(buf, n));
				fail();
			}
		}
		for (pos = 0; pos < n; pos++)
		{
			/* drop byte pos */
			memcpy(buf, key, pos);
			memcpy(buf + pos, key + pos + 1, n - pos - 1);
			if (hla_apikey_parse(buf, n - 1, &k) == HLA_APIKEY_OK)
			{
				print_error("deleted at %zu: \"%s\" parses\n", pos, show(buf, n - 1));
				fail();
			}
			/* double byte pos (only where it still fits the length limit) */
			if (n + 1 <= HLA_APIKEY_MAX_LEN)
			{
				memcpy(buf, key, pos + 1);
				memcpy(buf + pos + 1, key + pos, n - pos);
				if (hla_apikey_parse(buf, n + 1, &k) == HLA_APIKEY_OK)
				{
					print_error("doubled at %zu: \"%s\" parses\n", pos, show(buf, n + 1));
					fail();
				}
			}
		}
	}
}

/* ------------------------------------------------------------------------ */
/* the prefix grammar                                                       */
/* ------------------------------------------------------------------------ */

static void
test_prefix_grammar(void **state)
{
	char		buf[64];
	int			i;

	(void) state;
	for (i = 0; i < ARRAY_LEN(good_prefixes); i++)
		PREFIX_OK(good_prefixes[i]);
	PREFIX_OK("ab");
	PREFIX_OK("a1");
	PREFIX_OK("a_b");
	PREFIX_OK("hlk_live");
	PREFIX_OK("x9_y9_z9");
	PREFIX_OK("a0000000000000000000000000000000");	/* 32 */

	PREFIX_BAD("");
	PREFIX_BAD("a");			/* 1 byte */
	PREFIX_BAD("_");
	PREFIX_BAD("_x");
	PREFIX_BAD("x_");
	PREFIX_BAD("__");
	PREFIX_BAD("a__b");
	PREFIX_BAD("hlk__live");
	PREFIX_BAD("_hlk_live");
	PREFIX_BAD("hlk_live_");
	PREFIX_BAD("Hlk_live");		/* upper case anywhere */
	PREFIX_BAD("hlk_Live");
	PREFIX_BAD("hlK");
	PREFIX_BAD("AB");
	PREFIX_BAD("1a");			/* a segment starts with a letter */
	PREFIX_BAD("12");
	PREFIX_BAD("a_1");
	PREFIX_BAD("hlk_2live");
	PREFIX_BAD("a-b");
	PREFIX_BAD("a.b");
	PREFIX_BAD("a b");
	PREFIX_BAD("a:b");
	PREFIX_BAD("\xC3\xA9t");
	PREFIX_BADN("a\0b");
	PREFIX_BADN("ab\0");
	PREFIX_BAD("a0000000000000000000000000000000b");	/* 33 */
	PREFIX_BAD("abcdefghijklmnopqrstuvwxyz0123456");	/* 33 */
	assert_false(hla_apikey_prefix_valid(NULL, 0));

	/* only len bytes are read */
	check_prefix("hlk_live_", 8, true, __FILE__, __LINE__);
	check_prefix("ab\xFF", 2, true, __FILE__, __LINE__);
	check_prefix("hlk_live", 1, false, __FILE__, __LINE__);

	/* every length from 0 to 40 of "a"s: valid exactly for 2..32 */
	memset(buf, 'a', sizeof(buf));
	for (i = 0; i <= 40; i++)
		check_prefix(buf, (size_t) i, i >= 2 && i <= 32, __FILE__, __LINE__);

	/* every single byte after "a" */
	for (i = 0; i < 256; i++)
	{
		bool		want = (i >= 'a' && i <= 'z') || (i >= '0' && i <= '9');

		buf[0] = 'a';
		buf[1] = (char) i;
		check_prefix(buf, 2, want, __FILE__, __LINE__);
		/* and before "a": only a letter may start */
		buf[0] = (char) i;
		buf[1] = 'a';
		check_prefix(buf, 2, i >= 'a' && i <= 'z', __FILE__, __LINE__);
	}
}

/* The grammar as seen through parse: each bad prefix on an otherwise fine key. */
static void
test_prefix_grammar_in_keys(void **state)
{
	static const char *const bad[] = {
		"_x", "x_", "a__b", "Hlk_live", "1ab", "a_1", "a",
		"abcdefghijklmnopqrstuvwxyz012345x",
	};
	int			i;

	(void) state;
	for (i = 0; i < ARRAY_LEN(bad); i++)
	{
		char		key[HLA_APIKEY_MAX_LEN + 8];
		hla_apikey_error want;
		size_t		n;

		n = ref_key(bad[i], "AbCdEfGhIjKl", "0123456789abcdefghijkl", key, sizeof(key));
		/* "x_" + "_" makes "x__": the last "_" still ends the prefix "x_", invalid */
		want = (n > HLA_APIKEY_MAX_LEN) ? HLA_APIKEY_TOO_LONG : HLA_APIKEY_BAD_PREFIX;
		check_parse(key, n, want, __FILE__, __LINE__);
	}
}

/* ------------------------------------------------------------------------ */
/* bounds                                                                   */
/* ------------------------------------------------------------------------ */

static void
test_parse_within_bounds(void **state)
{
	char		key[HLA_APIKEY_MAX_LEN + 8];
	size_t		n;
	int			i;

	(void) state;
	for (i = 0; i < ARRAY_LEN(good_prefixes); i++)
	{
		char	   *heap;
		guarded		g;
		size_t		cut;
		hla_apikey	k;

		n = ref_key(good_prefixes[i], "AbCdEfGhIjKl", "0123456789abcdefghijkl", key, sizeof(key));

		/* at the end of a malloc'd buffer of exact size (no NUL after it) */
		heap = malloc(n);
		assert_non_null(heap);
		memcpy(heap, key, n);
		assert_int_equal(hla_apikey_parse(heap, n, &k), HLA_APIKEY_OK);
		assert_ptr_equal(k.checksum + HLA_APIKEY_CHECKSUM_LEN, heap + n);
		free(heap);

		/* against a guard page after it, and before it */
		g = guarded_copy(key, n, true);
		assert_int_equal(hla_apikey_parse(g.data, n, &k), HLA_APIKEY_OK);
		/* every proper tail of the key, ending at the guard page */
		for (cut = 1; cut < n; cut++)
			assert_int_not_equal(hla_apikey_parse(g.data + cut, n - cut, &k), HLA_APIKEY_OK);
		guarded_free(&g);

		g = guarded_copy(key, n, false);
		assert_int_equal(hla_apikey_parse(g.data, n, &k), HLA_APIKEY_OK);
		for (cut = 0; cut < n; cut++)
			assert_int_not_equal(hla_apikey_parse(g.data, cut, &k), HLA_APIKEY_OK);
		guarded_free(&g);
	}

	/* a valid key followed by more bytes in the buffer: only len counts */
	n = ref_key("hlk_live", "AbCdEfGhIjKl", "0123456789abcdefghijkl", key, sizeof(key));
	{
		char		buf[sizeof(key) + 4];

		memcpy(buf, key, n);
		memcpy(buf + n, "_\xFF:x", 4);
		check_parse(buf, n, HLA_APIKEY_OK, __FILE__, __LINE__);
		/* the trailing "_" is now the last one: the whole key is taken as the prefix */
		check_parse(buf, n + 1, HLA_APIKEY_BAD_PREFIX, __FILE__, __LINE__);
		check_parse(buf, n + 2, HLA_APIKEY_BAD_CHAR, __FILE__, __LINE__);
	}
}

static void
test_stored_within_bounds(void **state)
{
	static const char s[] = "hlk_live_AbCdEfGhIjKl:v65535:" HEX64;
	size_t		n = sizeof(s) - 1;
	hla_apikey_stored st;
	guarded		g;
	char	   *heap;
	size_t		cut;

	(void) state;
	heap = malloc(n);
	assert_non_null(heap);
	memcpy(heap, s, n);
	assert_int_equal(hla_apikey_stored_parse(heap, n, &st), HLA_APIKEY_OK);
	assert_true(hla_apikey_looks_stored(heap, n));
	free(heap);

	g = guarded_copy(s, n, true);
	assert_int_equal(hla_apikey_stored_parse(g.data, n, &st), HLA_APIKEY_OK);
	for (cut = 1; cut < n; cut++)
	{
		/* a stored form has no checksum: a tail is valid when its prefix still is */
		bool		want = cut < 8 && hla_apikey_prefix_valid(s + cut, 8 - cut);

		assert_int_equal(hla_apikey_stored_parse(g.data + cut, n - cut, &st) == HLA_APIKEY_OK,
						 want);
		assert_int_equal(hla_apikey_looks_stored(g.data + cut, n - cut), cut <= 28);	/* the second ":" */
	}
	guarded_free(&g);

	g = guarded_copy(s, n, false);
	for (cut = 0; cut < n; cut++)
	{
		assert_int_not_equal(hla_apikey_stored_parse(g.data, cut, &st), HLA_APIKEY_OK);
		assert_int_equal(hla_apikey_looks_stored(g.data, cut), cut > 21);
	}
	guarded_free(&g);
}

/* ------------------------------------------------------------------------ */
/* rejection sampling                                                       */
/* ------------------------------------------------------------------------ */

static void
test_base62_from_bytes_mapping(void **state)
{
	unsigned char rnd[256];
	char		out[300];
	int			counts[256] = {0};
	size_t		n;
	int			b;

	(void) state;
	for (b = 0; b < 256; b++)
		rnd[b] = (unsigned char) b;

	/* all 256 byte values once: 248 characters, byte b giving B62[b % 62] */
	memset(out, '#', sizeof(out));
	n = hla_base62_from_bytes(rnd, 256, out, sizeof(out));
	assert_int_equal(n, 248);
	for (b = 0; b < 248; b++)
	{
		if (out[b] != B62[b % 62])
		{
			print_error("byte %d gave '%c', want '%c'\n", b, out[b], B62[b % 62]);
			fail();
		}
		counts[(unsigned char) out[b]]++;
	}
	assert_int_equal(out[248], '#');	/* nothing written past the count */

	/*
	 * No modulo bias: over a uniform byte, every one of the 62 characters has exactly
	 * 4 of the 248 accepted values (and each character is reachable).
	 */
	for (b = 0; b < 62; b++)
		assert_int_equal(counts[(unsigned char) B62[b]], 4);
	for (b = 0; b < 256; b++)
		if (strchr(B62, b) == NULL || b == 0)
			assert_int_equal(counts[b], 0);
}

static void
test_base62_from_bytes_rejects(void **state)
{
	static const unsigned char high[] = {248, 249, 250, 251, 252, 253, 254, 255};
	static const unsigned char mixed[] = {255, 0, 250, 61, 62, 248, 247, 123, 185, 186};
	char		out[16];
	size_t		n;

	(void) state;
	/* bytes >= 248 are skipped */
	memset(out, '#', sizeof(out));
	assert_int_equal(hla_base62_from_bytes(high, sizeof(high), out, sizeof(out)), 0);
	assert_int_equal(out[0], '#');

	/* 0 -> '0', 61 -> 'z', 62 -> '0', 247 -> 'z', 123 -> 'z', 185 -> 'z', 186 -> '0' */
	memset(out, '#', sizeof(out));
	n = hla_base62_from_bytes(mixed, sizeof(mixed), out, sizeof(out));
	assert_int_equal(n, 7);
	assert_memory_equal(out, "0z0zzz0", 7);
	assert_int_equal(out[7], '#');

	/* want limits the output; nothing is written past it */
	memset(out, '#', sizeof(out));
	assert_int_equal(hla_base62_from_bytes(mixed, sizeof(mixed), out, 3), 3);
	assert_memory_equal(out, "0z0###", 6);

	/* nothing in, nothing wanted */
	assert_int_equal(hla_base62_from_bytes(mixed, 0, out, sizeof(out)), 0);
	assert_int_equal(hla_base62_from_bytes(NULL, 0, out, sizeof(out)), 0);
	assert_int_equal(hla_base62_from_bytes(mixed, sizeof(mixed), out, 0), 0);
	assert_int_equal(hla_base62_from_bytes(mixed, sizeof(mixed), NULL, 0), 0);
}

/* The caller's loop: draw bytes until 34 characters, then compose. */
static void
test_base62_from_bytes_caller_loop(void **state)
{
	char		chars[HLA_APIKEY_ID_LEN + HLA_APIKEY_SECRET_LEN];
	size_t		have = 0;
	int			draws = 0;
	long		counts[62] = {0};
	int			i;
	char		key[HLA_APIKEY_MAX_LEN + 1];

	(void) state;
	while (have < sizeof(chars))
	{
		unsigned char rnd[8];

		for (i = 0; i < 8; i++)
			rnd[i] = (unsigned char) (240 + (rng() % 16));	/* half are rejected */
		have += hla_base62_from_bytes(rnd, sizeof(rnd), chars + have, sizeof(chars) - have);
		draws++;
		assert_true(draws < 1000);
	}
	assert_int_equal(have, sizeof(chars));
	assert_int_equal(hla_apikey_compose("hlk_test", 8, chars, chars + HLA_APIKEY_ID_LEN,
										key, sizeof(key)), 49);
	PARSE(key, HLA_APIKEY_OK);

	/* a pseudo-random stream gives every character, each near 1/62 of the time */
	for (i = 0; i < 62 * 2000; i++)
	{
		unsigned char b = (unsigned char) (rng() & 0xFF);
		char		c;

		if (hla_base62_from_bytes(&b, 1, &c, 1) == 1)
			counts[strchr(B62, c) - B62]++;
	}
	for (i = 0; i < 62; i++)
	{
		/* mean about 1935 (2000 * 248/256); a 6-sigma band is about +-260 */
		if (counts[i] < 1600 || counts[i] > 2300)
		{
			print_error("character '%c' drawn %ld times\n", B62[i], counts[i]);
			fail();
		}
	}
}

/* ------------------------------------------------------------------------ */
/* the stored form                                                          */
/* ------------------------------------------------------------------------ */

static void
test_stored_roundtrip(void **state)
{
	static const uint32_t versions[] = {1, 2, 9, 10, 99, 100, 999, 1000, 9999, 10000,
	12345, 65534, 65535};
	int			i,
				j;

	(void) state;
	for (i = 0; i < ARRAY_LEN(good_prefixes); i++)
		for (j = 0; j < ARRAY_LEN(versions); j++)
		{
			hla_apikey_stored in,
						out;
			char		id[HLA_APIKEY_ID_LEN];
			char		text[HLA_APIKEY_STORED_MAX_LEN + 1];
			char		want[HLA_APIKEY_STORED_MAX_LEN + 16];
			char	   *w;
			int			n,
						h;

			rand_base62(id, sizeof(id));
			in.prefix = good_prefixes[i];
			in.prefix_len = strlen(good_prefixes[i]);
			in.id = id;
			in.version = versions[j];
			for (h = 0; h < HLA_APIKEY_HASH_LEN; h++)
				in.hash[h] = (unsigned char) rng();
			in.hash[0] = (j % 2) ? 0x00 : 0xFF;

			n = hla_apikey_stored_format(&in, text, sizeof(text));
			assert_true(n > 0 && n <= HLA_APIKEY_STORED_MAX_LEN);
			assert_int_equal((int) strlen(text), n);

			/* the expected text, built with snprintf */
			w = want + snprintf(want, sizeof(want), "%s_%.12s:v%u:", in.prefix, id,
								(unsigned) in.version);
			for (h = 0; h < HLA_APIKEY_HASH_LEN; h++)
				w += snprintf(w, 3, "%02x", in.hash[h]);
			assert_string_equal(text, want);

			assert_true(hla_apikey_looks_stored(text, (size_t) n));
			memset(&out, 0, sizeof(out));
			assert_int_equal(hla_apikey_stored_parse(text, (size_t) n, &out), HLA_APIKEY_OK);
			assert_ptr_equal(out.prefix, text);
			assert_int_equal(out.prefix_len, in.prefix_len);
			assert_ptr_equal(out.id, text + in.prefix_len + 1);
			assert_memory_equal(out.id, id, sizeof(id));
			assert_int_equal(out.version, in.version);
			assert_memory_equal(out.hash, in.hash, sizeof(in.hash));

			/* format(parse(text)) == text */
			{
				char		again[HLA_APIKEY_STORED_MAX_LEN + 1];

				assert_int_equal(hla_apikey_stored_format(&out, again, sizeof(again)), n);
				assert_string_equal(again, text);
			}
		}
}

static void
test_stored_limits(void **state)
{
	/* the longest stored form: a 32-byte prefix and a 5-digit version */
	static const char longest[] =
	"abcdefghijklmnopqrstuvwxyz012345_AbCdEfGhIjKl:v65535:" HEX64;
	static const char shortest[] = "ab_AbCdEfGhIjKl:v1:" HEX64;
	hla_apikey_stored st;
	char		buf[HLA_APIKEY_STORED_MAX_LEN + 16];

	(void) state;
	assert_int_equal(sizeof(longest) - 1, HLA_APIKEY_STORED_MAX_LEN);
	STORED(longest, HLA_APIKEY_OK);
	STORED(shortest, HLA_APIKEY_OK);
	assert_int_equal(hla_apikey_stored_parse(LIT(longest), &st), HLA_APIKEY_OK);
	assert_int_equal(st.version, 65535);
	assert_int_equal(st.hash[0], 0x00);
	assert_int_equal(st.hash[31], 0x1f);
	assert_int_equal(hla_apikey_stored_format(&st, buf, HLA_APIKEY_STORED_MAX_LEN + 1),
					 HLA_APIKEY_STORED_MAX_LEN);
	assert_string_equal(buf, longest);

	/* one byte more is too long, whatever it is */
	memcpy(buf, longest, sizeof(longest) - 1);
	buf[sizeof(longest) - 1] = '0';
	check_stored(buf, sizeof(longest), HLA_APIKEY_TOO_LONG, __FILE__, __LINE__);
	STORED("", HLA_APIKEY_EMPTY);
	assert_int_equal(hla_apikey_stored_parse(NULL, 0, &st), HLA_APIKEY_EMPTY);
}

static void
test_stored_malformed(void **state)
{
	(void) state;
#define P "hlk_live_AbCdEfGhIjKl"
	STORED(P ":v1:" HEX64, HLA_APIKEY_OK);

	/* hex: upper case, wrong length, non-hex, trailing bytes */
	STORED(P ":v1:000102030405060708090A0B0C0D0E0F101112131415161718191a1b1c1d1e1f",
		   HLA_APIKEY_BAD_STORED);
	STORED(P ":v1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1F",
		   HLA_APIKEY_BAD_STORED);
	STORED(P ":v1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",
		   HLA_APIKEY_BAD_STORED);	/* 63 */
	STORED(P ":v1:" HEX64 "0", HLA_APIKEY_BAD_STORED);	/* 65 */
	STORED(P ":v1:" HEX64 "00", HLA_APIKEY_BAD_STORED);	/* 66 */
	STORED(P ":v1:" HEX64 "\n", HLA_APIKEY_BAD_STORED);
	STORED(P ":v1:" HEX64 ":", HLA_APIKEY_BAD_STORED);
	STORED(P ":v1:" HEX64 " ", HLA_APIKEY_BAD_STORED);
	STOREDN(P ":v1:" HEX64 "\0", HLA_APIKEY_BAD_STORED);
	STORED(P ":v1:g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		   HLA_APIKEY_BAD_STORED);
	STORED(P ":v1: 00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		   HLA_APIKEY_BAD_STORED);
	STOREDN(P ":v1:\0" "00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
			HLA_APIKEY_BAD_STORED);

	/* version: 0, too big, leading zeros, missing, not decimal */
	STORED(P ":v0:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":v65536:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":v99999:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":v100000:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":v4294967297:" HEX64, HLA_APIKEY_BAD_STORED);	/* 2^32 + 1 */
	STORED(P ":v01:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":v00001:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":v00:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":v:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":1:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":V1:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":v+1:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":v-1:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":v 1:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":v1 :" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":v1a:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":v1x" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P ":vv1:" HEX64, HLA_APIKEY_BAD_STORED);
	/* the largest and smallest accepted, for contrast */
	STORED(P ":v65535:" HEX64, HLA_APIKEY_OK);
	STORED(P ":v10:" HEX64, HLA_APIKEY_OK);

	/* missing parts */
	STORED(P, HLA_APIKEY_BAD_STORED);
	STORED(P ":", HLA_APIKEY_BAD_STORED);
	STORED(P ":v1", HLA_APIKEY_BAD_STORED);
	STORED(P ":v1:", HLA_APIKEY_BAD_STORED);
	STORED(P ":" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P HEX64, HLA_APIKEY_BAD_STORED);
	STORED(P "::" HEX64, HLA_APIKEY_BAD_STORED);
	STORED(":v1:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED("AbCdEfGhIjKl:v1:" HEX64, HLA_APIKEY_BAD_STORED);		/* no prefix */
	STORED("_AbCdEfGhIjKl:v1:" HEX64, HLA_APIKEY_BAD_PREFIX);	/* empty prefix */
	STORED("hlk_live:v1:" HEX64, HLA_APIKEY_BAD_STORED);			/* no id */
	STORED("hlk_live_:v1:" HEX64, HLA_APIKEY_BAD_STORED);

	/* the id: 11 or 13 characters, non-base62 */
	STORED("hlk_live_AbCdEfGhIjK:v1:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED("hlk_live_AbCdEfGhIjKlm:v1:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED("hlk_live_AbCdEf-hIjKl:v1:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED("hlk_live_AbCdEf_hIjKl:v1:" HEX64, HLA_APIKEY_BAD_STORED);
	STOREDN("hlk_live_AbCdEf\0hIjKl:v1:" HEX64, HLA_APIKEY_BAD_STORED);
	STORED("hlk_liveXAbCdEfGhIjKl:v1:" HEX64, HLA_APIKEY_BAD_STORED);

	/* a bad prefix in an otherwise good stored form */
	STORED("a_AbCdEfGhIjKl:v1:" HEX64, HLA_APIKEY_BAD_PREFIX);
	STORED("Hlk_live_AbCdEfGhIjKl:v1:" HEX64, HLA_APIKEY_BAD_PREFIX);
	STORED("hlk__live_AbCdEfGhIjKl:v1:" HEX64, HLA_APIKEY_BAD_PREFIX);
	STORED("hlk_live__AbCdEfGhIjKl:v1:" HEX64, HLA_APIKEY_BAD_PREFIX);
	STORED("_hlk_AbCdEfGhIjKl:v1:" HEX64, HLA_APIKEY_BAD_PREFIX);
	STORED("1lk_AbCdEfGhIjKl:v1:" HEX64, HLA_APIKEY_BAD_PREFIX);
	STORED("\xC3\xA9t_AbCdEfGhIjKl:v1:" HEX64, HLA_APIKEY_BAD_PREFIX);
	STORED("abcdefghijklmnopqrstuvwxyz01234_AbCdEfGhIjKl:v65535:" HEX64, HLA_APIKEY_OK);
	/* a 33-byte prefix is too long only with a short version; else the whole is */
	STORED("abcdefghijklmnopqrstuvwxyz0123456_AbCdEfGhIjKl:v6553:" HEX64,
		   HLA_APIKEY_BAD_PREFIX);
	STORED("abcdefghijklmnopqrstuvwxyz0123456_AbCdEfGhIjKl:v65535:" HEX64,
		   HLA_APIKEY_TOO_LONG);

	/* a plaintext key is not a stored form, and the reverse */
	STORED("hlk_test_00000000000000000000000000000000001L8wS0", HLA_APIKEY_BAD_STORED);
	PARSE(P ":v1:" HEX64, HLA_APIKEY_TOO_LONG);
#undef P
}

static void
test_stored_format_errors(void **state)
{
	char		buf[HLA_APIKEY_STORED_MAX_LEN + 16];
	char		sentinel[sizeof(buf)];
	hla_apikey_stored in;
	size_t		need;

	(void) state;
	memset(sentinel, '#', sizeof(sentinel));
	memset(&in, 0x11, sizeof(in));
	in.prefix = "hlk_live";
	in.prefix_len = 8;
	in.id = "AbCdEfGhIjKl";
	in.version = 7;

#define FORMAT_FAILS(inp, out, outlen) \
	do { \
		memset(buf, '#', sizeof(buf)); \
		assert_int_equal(hla_apikey_stored_format((inp), (out), (outlen)), -1); \
		assert_memory_equal(buf, sentinel, sizeof(buf)); \
	} while (0)

	/* "hlk_live_AbCdEfGhIjKl:v7:" + 64 = 21 + 4 + 64 = 89, 90 with the NUL */
	need = 90;
	FORMAT_FAILS(&in, buf, need - 1);
	FORMAT_FAILS(&in, buf, 0);
	FORMAT_FAILS(&in, NULL, sizeof(buf));
	FORMAT_FAILS(NULL, buf, sizeof(buf));
	memset(buf, '#', sizeof(buf));
	assert_int_equal(hla_apikey_stored_format(&in, buf, need), 89);
	assert_int_equal(buf[89], '\0');
	assert_int_equal(buf[90], '#');

	in.version = 0;
	FORMAT_FAILS(&in, buf, sizeof(buf));
	in.version = 65536;
	FORMAT_FAILS(&in, buf, sizeof(buf));
	in.version = UINT32_MAX;
	FORMAT_FAILS(&in, buf, sizeof(buf));
	in.version = 65535;
	assert_int_equal(hla_apikey_stored_format(&in, buf, sizeof(buf)), 93);

	in.prefix = "Hlk_live";
	FORMAT_FAILS(&in, buf, sizeof(buf));
	in.prefix = "hlk_live";
	in.prefix_len = 9;			/* "hlk_live\0" */
	FORMAT_FAILS(&in, buf, sizeof(buf));
	in.prefix_len = 8;
	in.id = "AbCdEfGhIjK_";
	FORMAT_FAILS(&in, buf, sizeof(buf));
	in.id = NULL;
	FORMAT_FAILS(&in, buf, sizeof(buf));
#undef FORMAT_FAILS
}

static void
test_looks_stored(void **state)
{
	(void) state;
	assert_false(hla_apikey_looks_stored("", 0));
	assert_false(hla_apikey_looks_stored(NULL, 0));
	assert_false(hla_apikey_looks_stored(LIT("hlk_test_00000000000000000000000000000000001L8wS0")));
	assert_true(hla_apikey_looks_stored(LIT("hlk_live_AbCdEfGhIjKl:v1:" HEX64)));
	assert_true(hla_apikey_looks_stored(LIT(":")));
	assert_true(hla_apikey_looks_stored(LIT("garbage:")));
	assert_false(hla_apikey_looks_stored("abc:", 3));	/* only len bytes */
	assert_true(hla_apikey_looks_stored(LIT("a\0:")));
}

static void
test_error_messages(void **state)
{
	hla_apikey_error e,
				f;

	(void) state;
	for (e = HLA_APIKEY_OK; e <= HLA_APIKEY_BAD_STORED; e++)
	{
		const char *m = hla_apikey_error_message(e);

		assert_non_null(m);
		assert_true(strlen(m) > 10);
		assert_int_equal(m[strlen(m) - 1], '.');
		for (f = HLA_APIKEY_OK; f < e; f++)
			assert_string_not_equal(m, hla_apikey_error_message(f));
	}
	assert_non_null(hla_apikey_error_message((hla_apikey_error) 999));
	/* the numbers in the messages are the real limits */
	assert_non_null(strstr(hla_apikey_error_message(HLA_APIKEY_TOO_LONG), "73"));
	assert_non_null(strstr(hla_apikey_error_message(HLA_APIKEY_TOO_LONG), "117"));
	assert_non_null(strstr(hla_apikey_error_message(HLA_APIKEY_BAD_LENGTH), "40"));
	assert_non_null(strstr(hla_apikey_error_message(HLA_APIKEY_BAD_STORED), "65535"));
	assert_int_equal(HLA_APIKEY_MAX_LEN, 73);
	assert_int_equal(HLA_APIKEY_STORED_MAX_LEN, 117);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal_vectors),
		cmocka_unit_test(test_independent_vectors),
		cmocka_unit_test(test_compose_parse_roundtrip),
		cmocka_unit_test(test_compose_errors),
		cmocka_unit_test(test_parse_each_error),
		cmocka_unit_test(test_parse_precedence),
		cmocka_unit_test(test_substitution_base62),
		cmocka_unit_test(test_substitution_every_byte),
		cmocka_unit_test(test_transpositions_and_indels),
		cmocka_unit_test(test_prefix_grammar),
		cmocka_unit_test(test_prefix_grammar_in_keys),
		cmocka_unit_test(test_parse_within_bounds),
		cmocka_unit_test(test_stored_within_bounds),
		cmocka_unit_test(test_base62_from_bytes_mapping),
		cmocka_unit_test(test_base62_from_bytes_rejects),
		cmocka_unit_test(test_base62_from_bytes_caller_loop),
		cmocka_unit_test(test_stored_roundtrip),
		cmocka_unit_test(test_stored_limits),
		cmocka_unit_test(test_stored_malformed),
		cmocka_unit_test(test_stored_format_errors),
		cmocka_unit_test(test_looks_stored),
		cmocka_unit_test(test_error_messages),
	};

	return cmocka_run_group_tests_name("apikey", tests, NULL, NULL);
}
