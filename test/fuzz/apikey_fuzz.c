/*
 * test/fuzz/apikey_fuzz.c
 *		libFuzzer target for the pure-C API key core (src/core/apikey.h, apikey.c).
 *
 * Each input is used three ways:
 *	1. parsed as a plaintext key: the result must match a reference parser written here
 *	   from the format in apikey.h (zlib crc32 and its own base62), and an accepted key
 *	   recomposed from its parts must give back exactly the input;
 *	2. parsed as a stored form: likewise against a reference, and an accepted one must
 *	   format back to exactly the input;
 *	3. turned into a key id and secret with hla_base62_from_bytes (checked against a
 *	   reference too), composed under a prefix picked by the input: that key must parse,
 *	   and changing any one of its bytes must make parse fail.
 * Every property violation prints what went wrong and calls abort().
 *
 * Inputs handed to the library are always exact-size heap copies, so AddressSanitizer
 * catches any read past the length the library was given.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "apikey.h"

static const char B62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
static const char HEX[] = "0123456789abcdef";

/* Print s[0..len) with non-printable bytes escaped. */
static void
show(const char *name, const char *s, size_t len)
{
	fprintf(stderr, "  %s = \"", name);
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02X", c);
	}
	fprintf(stderr, "\" (%zu bytes)\n", len);
}

static void
die(const char *what, const char *a, size_t alen, const char *b, size_t blen)
{
	fprintf(stderr, "apikey_fuzz: property violated: %s\n", what);
	if (a)
		show("a", a, alen);
	if (b)
		show("b", b, blen);
	abort();
}

#define REQUIRE(cond, a, alen, b, blen) \
	do { if (!(cond)) die(#cond, (a), (alen), (b), (blen)); } while (0)

static char *
dup_exact(const void *data, size_t len)
{
	char	   *p = malloc(len ? len : 1);

	if (!p)
		abort();
	if (len)
		memcpy(p, data, len);
	return p;
}

static bool
is_b62(char c)
{
	return c != '\0' && strchr(B62, c) != NULL;
}

static bool
valid_error(hla_apikey_error e)
{
	return e >= HLA_APIKEY_OK && e <= HLA_APIKEY_BAD_STORED;
}

/* ------------------------------------------------------------------------ */
/* reference implementations, written from apikey.h rather than apikey.c    */
/* ------------------------------------------------------------------------ */

/* Segments of [a-z][a-z0-9]* joined by single "_", 2..32 bytes. */
static bool
ref_prefix_valid(const char *p, size_t len)
{
	size_t		start = 0;

	if (len < 2 || len > 32)
		return false;
	while (start <= len)
	{
		const char *u = memchr(p + start, '_', len - start);
		size_t		end = u ? (size_t) (u - p) : len;

		if (end == start || !(p[start] >= 'a' && p[start] <= 'z'))
			return false;
		for (size_t i = start + 1; i < end; i++)
			if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')))
				return false;
		if (!u)
			return true;
		start = end + 1;
	}
	return false;				/* a trailing "_" */
}

static void
ref_checksum(const char *s, size_t len, char out[6])
{
	uint32_t	v = (uint32_t) crc32(crc32(0L, Z_NULL, 0), (const Bytef *) s, (uInt) len);

	for (int i = 5; i >= 0; i--)
	{
		out[i] = B62[v % 62];
		v /= 62;
	}
}

/* The expected result of hla_apikey_parse; *sep is the last "_" when OK. */
static hla_apikey_error
ref_parse(const char *s, size_t len, size_t *sep)
{
	size_t		u = len;
	char		want[6];

	if (len == 0)
		return HLA_APIKEY_EMPTY;
	if (len > 73)
		return HLA_APIKEY_TOO_LONG;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0' || (unsigned char) s[i] >= 0x80)
			return HLA_APIKEY_BAD_CHAR;
	for (size_t i = len; i-- > 0;)
		if (s[i] == '_')
		{
			u = i;
			break;
		}
	if (u == len || !ref_prefix_valid(s, u))
		return HLA_APIKEY_BAD_PREFIX;
	if (len - u - 1 != 40)
		return HLA_APIKEY_BAD_LENGTH;
	for (size_t i = u + 1; i < len; i++)
		if (!is_b62(s[i]))
			return HLA_APIKEY_BAD_CHAR;
	ref_checksum(s, u + 1 + 34, want);
	if (memcmp(want, s + u + 1 + 34, 6) != 0)
		return HLA_APIKEY_BAD_CHECKSUM;
	*sep = u;
	return HLA_APIKEY_OK;
}

/* The expected result of hla_apikey_stored_parse, with the parts when OK. */
static hla_apikey_error
ref_stored(const char *s, size_t len, size_t *prefix_len, uint32_t *version,
		   unsigned char hash[32])
{
	const char *c1,
			   *c2;
	size_t		head,
				vlen,
				hlen;
	unsigned long v = 0;

	if (len == 0)
		return HLA_APIKEY_EMPTY;
	if (len > 117)
		return HLA_APIKEY_TOO_LONG;
	c1 = memchr(s, ':', len);
	if (!c1)
		return HLA_APIKEY_BAD_STORED;
	c2 = memchr(c1 + 1, ':', len - (size_t) (c1 + 1 - s));
	if (!c2)
		return HLA_APIKEY_BAD_STORED;
	head = (size_t) (c1 - s);
	vlen = (size_t) (c2 - c1 - 1);
	hlen = len - (size_t) (c2 + 1 - s);

	/* head: <prefix>_<12 base62> */
	if (head < 13 || s[head - 13] != '_')
		return HLA_APIKEY_BAD_STORED;
	for (size_t i = head - 12; i < head; i++)
		if (!is_b62(s[i]))
			return HLA_APIKEY_BAD_STORED;
	/* version: "v" and 1..5 decimal digits, no leading zero, 1..65535 */
	if (vlen < 2 || vlen > 6 || c1[1] != 'v' || c1[2] == '0')
		return HLA_APIKEY_BAD_STORED;
	for (size_t i = 2; i <= vlen; i++)
	{
		if (c1[i] < '0' || c1[i] > '9')
			return HLA_APIKEY_BAD_STORED;
		v = v * 10 + (unsigned long) (c1[i] - '0');
	}
	if (v < 1 || v > 65535)
		return HLA_APIKEY_BAD_STORED;
	/* 64 lower-case hex digits */
	if (hlen != 64)
		return HLA_APIKEY_BAD_STORED;
	for (size_t i = 0; i < 64; i++)
		if (c2[1 + i] == '\0' || strchr(HEX, c2[1 + i]) == NULL)
			return HLA_APIKEY_BAD_STORED;
	if (!ref_prefix_valid(s, head - 13))
		return HLA_APIKEY_BAD_PREFIX;

	*prefix_len = head - 13;
	*version = (uint32_t) v;
	for (size_t i = 0; i < 32; i++)
		hash[i] = (unsigned char) ((strchr(HEX, c2[1 + 2 * i]) - HEX) << 4 |
								   (strchr(HEX, c2[2 + 2 * i]) - HEX));
	return HLA_APIKEY_OK;
}

/* ------------------------------------------------------------------------ */
/* properties                                                               */
/* ------------------------------------------------------------------------ */

static void
check_plain(const char *s, size_t len)
{
	hla_apikey	k,
				untouched;
	size_t		sep = 0;
	hla_apikey_error want = ref_parse(s, len, &sep);
	hla_apikey_error e;
	const char *msg;

	memset(&k, 0x5A, sizeof(k));
	memset(&untouched, 0x5A, sizeof(untouched));
	e = hla_apikey_parse(s, len, &k);
	msg = hla_apikey_error_message(e);
	REQUIRE(valid_error(e) && e != HLA_APIKEY_BAD_STORED, s, len, NULL, 0);
	REQUIRE(msg != NULL && msg[0] != '\0', s, len, NULL, 0);
	REQUIRE(e == want, s, len, NULL, 0);
	REQUIRE(hla_apikey_prefix_valid(s, len) == ref_prefix_valid(s, len), s, len, NULL, 0);

	if (e != HLA_APIKEY_OK)
	{
		REQUIRE(memcmp(&k, &untouched, sizeof(k)) == 0, s, len, NULL, 0);
		return;
	}

	REQUIRE(k.prefix == s && k.prefix_len == sep, s, len, NULL, 0);
	REQUIRE(k.id == s + sep + 1, s, len, NULL, 0);
	REQUIRE(k.secret == k.id + HLA_APIKEY_ID_LEN, s, len, NULL, 0);
	REQUIRE(k.checksum == k.secret + HLA_APIKEY_SECRET_LEN, s, len, NULL, 0);
	REQUIRE(k.checksum + HLA_APIKEY_CHECKSUM_LEN == s + len, s, len, NULL, 0);
	REQUIRE(!hla_apikey_looks_stored(s, len), s, len, NULL, 0);

	/* recompose from the parts: byte-identical, in a buffer of exactly len + 1 */
	{
		char	   *out = malloc(len + 1);
		char	   *prefix = dup_exact(k.prefix, k.prefix_len);
		char	   *id = dup_exact(k.id, HLA_APIKEY_ID_LEN);
		char	   *secret = dup_exact(k.secret, HLA_APIKEY_SECRET_LEN);
		int			n;

		if (!out)
			abort();
		REQUIRE(hla_apikey_compose(prefix, k.prefix_len, id, secret, out, len) == -1,
				s, len, NULL, 0);
		n = hla_apikey_compose(prefix, k.prefix_len, id, secret, out, len + 1);
		REQUIRE(n == (int) len, s, len, out, n > 0 ? (size_t) n : 0);
		REQUIRE(memcmp(out, s, len) == 0 && out[len] == '\0', s, len, out, len);
		free(out);
		free(prefix);
		free(id);
		free(secret);
	}
}

static void
check_stored(const char *s, size_t len)
{
	hla_apikey_stored st,
				untouched;
	size_t		plen = 0;
	uint32_t	version = 0;
	unsigned char hash[32];
	hla_apikey_error want = ref_stored(s, len, &plen, &version, hash);
	hla_apikey_error e;

	memset(&st, 0x5A, sizeof(st));
	memset(&untouched, 0x5A, sizeof(untouched));
	e = hla_apikey_stored_parse(s, len, &st);
	REQUIRE(valid_error(e), s, len, NULL, 0);
	REQUIRE(e == HLA_APIKEY_OK || e == HLA_APIKEY_EMPTY || e == HLA_APIKEY_TOO_LONG ||
			e == HLA_APIKEY_BAD_PREFIX || e == HLA_APIKEY_BAD_STORED, s, len, NULL, 0);
	REQUIRE(e == want, s, len, NULL, 0);
	REQUIRE(hla_apikey_looks_stored(s, len) == (len > 0 && memchr(s, ':', len) != NULL),
			s, len, NULL, 0);

	if (e != HLA_APIKEY_OK)
	{
		REQUIRE(memcmp(&st, &untouched, sizeof(st)) == 0, s, len, NULL, 0);
		return;
	}

	REQUIRE(hla_apikey_looks_stored(s, len), s, len, NULL, 0);
	REQUIRE(st.prefix == s && st.prefix_len == plen, s, len, NULL, 0);
	REQUIRE(st.id == s + plen + 1, s, len, NULL, 0);
	REQUIRE(st.version == version, s, len, NULL, 0);
	REQUIRE(memcmp(st.hash, hash, 32) == 0, s, len, NULL, 0);

	/* format it back: byte-identical, in a buffer of exactly len + 1 */
	{
		char	   *out = malloc(len + 1);
		int			n;

		if (!out)
			abort();
		REQUIRE(hla_apikey_stored_format(&st, out, len) == -1, s, len, NULL, 0);
		n = hla_apikey_stored_format(&st, out, len + 1);
		REQUIRE(n == (int) len, s, len, out, n > 0 ? (size_t) n : 0);
		REQUIRE(memcmp(out, s, len) == 0 && out[len] == '\0', s, len, out, len);
		free(out);
	}
}

static const char *const prefixes[] = {
	"hlk_live", "hlk_test", "ab", "a1_b2", "x_y_z",
	"abcdefghijklmnopqrstuvwxyz012345",		/* 32 bytes */
	"a_b_c_d_e_f_g_h_i_j_k_l_m_n_o_p",		/* 31 bytes */
};

/* A key made from the input: it must parse, and no one-byte change may. */
static void
check_derived(const uint8_t *data, size_t size)
{
	char		chars[HLA_APIKEY_ID_LEN + HLA_APIKEY_SECRET_LEN];
	char		pbuf[HLA_APIKEY_PREFIX_MAX_LEN];
	const char *prefix;
	size_t		plen;
	size_t		n,
				want_n = 0,
				sep,
				keylen;
	char	   *key;
	char	   *heap;
	int			r;
	hla_apikey	k;

	/* rejection sampling, against the reference: bytes < 248 in order, b -> B62[b % 62] */
	n = hla_base62_from_bytes(data, size, chars, sizeof(chars));
	for (size_t i = 0; i < size && want_n < sizeof(chars); i++)
		if (data[i] < 248)
		{
			REQUIRE(want_n < n && chars[want_n] == B62[data[i] % 62],
					(const char *) data, size, chars, n);
			want_n++;
		}
	REQUIRE(n == want_n, (const char *) data, size, chars, n);
	/* too few usable bytes: top up from a fixed stream, as a caller would draw again */
	while (n < sizeof(chars))
	{
		unsigned char more[16];

		for (size_t i = 0; i < sizeof(more); i++)
			more[i] = (unsigned char) (n * 31 + i * 97 + size);
		n += hla_base62_from_bytes(more, sizeof(more), chars + n, sizeof(chars) - n);
	}

	/* the prefix: built from the input when that gives a valid one, else from a list */
	prefix = prefixes[size % (sizeof(prefixes) / sizeof(prefixes[0]))];
	plen = strlen(prefix);
	if (size >= 3)
	{
		static const char pchars[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
		size_t		len = 2 + data[0] % (HLA_APIKEY_PREFIX_MAX_LEN - 1);

		for (size_t i = 0; i < len; i++)
			pbuf[i] = pchars[data[(1 + i) % size] % (sizeof(pchars) - 1)];
		if (ref_prefix_valid(pbuf, len))
		{
			prefix = pbuf;
			plen = len;
		}
	}

	keylen = plen + 1 + HLA_APIKEY_BODY_LEN;
	key = malloc(keylen + 1);
	if (!key)
		abort();
	REQUIRE(hla_apikey_compose(prefix, plen, chars, chars + HLA_APIKEY_ID_LEN, key, keylen) == -1,
			prefix, plen, chars, sizeof(chars));
	r = hla_apikey_compose(prefix, plen, chars, chars + HLA_APIKEY_ID_LEN, key, keylen + 1);
	REQUIRE(r == (int) keylen, prefix, plen, chars, sizeof(chars));

	heap = dup_exact(key, keylen);
	REQUIRE(hla_apikey_parse(heap, keylen, &k) == HLA_APIKEY_OK, heap, keylen, NULL, 0);
	REQUIRE(ref_parse(heap, keylen, &sep) == HLA_APIKEY_OK && sep == plen, heap, keylen, NULL, 0);
	REQUIRE(k.prefix_len == plen && memcmp(k.prefix, prefix, plen) == 0, heap, keylen, NULL, 0);
	REQUIRE(memcmp(k.id, chars, sizeof(chars)) == 0, heap, keylen, chars, sizeof(chars));

	/* any one byte changed (by an input-chosen nonzero XOR) must be rejected */
	for (size_t i = 0; i < keylen; i++)
	{
		unsigned char mask = (unsigned char) (1 + (size ? data[(i * 7 + 3) % size] : i) % 255);
		hla_apikey_error e;

		heap[i] = (char) (heap[i] ^ mask);
		e = hla_apikey_parse(heap, keylen, &k);
		REQUIRE(e != HLA_APIKEY_OK, heap, keylen, key, keylen);
		heap[i] = (char) (heap[i] ^ mask);
	}
	free(heap);
	free(key);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *whole = dup_exact(data, size);

	check_plain(whole, size);
	check_stored(whole, size);
	free(whole);
	check_derived(data, size);
	return 0;
}
