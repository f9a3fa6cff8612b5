/*
 * src/core/apikey.c
 *		API key format: prefix grammar, base62, CRC-32 checksum, the stored text form.
 *		See apikey.h for the format and the contract.
 *
 * Plain C: no postgres.h, no allocation, no locale. Every read is bounded by the length
 * the caller gives; a NUL byte is just another bad character. Base62 characters are
 * produced and recognised with arithmetic rather than table lookups, so this file never
 * indexes memory by a secret character (zlib's crc32() is table-driven and does; the
 * checksum is a typo check, not a side-channel-hardened one).
 */
#include "apikey.h"

#include <string.h>
#include <zlib.h>

/* Compile-time checks that the documented lengths agree (C99: a negative array size). */
typedef char hla_apikey_check_max_len
			[(HLA_APIKEY_MAX_LEN == HLA_APIKEY_PREFIX_MAX_LEN + 1 + HLA_APIKEY_BODY_LEN) ? 1 : -1];
typedef char hla_apikey_check_body_len
			[(HLA_APIKEY_BODY_LEN == HLA_APIKEY_ID_LEN + HLA_APIKEY_SECRET_LEN +
			  HLA_APIKEY_CHECKSUM_LEN) ? 1 : -1];
typedef char hla_apikey_check_stored_max_len
			[(HLA_APIKEY_STORED_MAX_LEN == HLA_APIKEY_PREFIX_MAX_LEN + 1 + HLA_APIKEY_ID_LEN +
			  2 + 5 + 1 + 2 * HLA_APIKEY_HASH_LEN) ? 1 : -1];
typedef char hla_apikey_check_reject[(HLA_BASE62_REJECT_FROM == 4 * 62) ? 1 : -1];

/* Offsets inside the 40-character body. */
#define ID_OFF			0
#define SECRET_OFF		HLA_APIKEY_ID_LEN
#define CHECKSUM_OFF	(HLA_APIKEY_ID_LEN + HLA_APIKEY_SECRET_LEN)

/* 1 when x < bound, else 0, without a branch. Both must be below 2^31. */
static inline unsigned int
lt(unsigned int x, unsigned int bound)
{
	return (x - bound) >> 31;
}

/* 1 when lo <= c <= hi, else 0. */
static inline unsigned int
in_range(unsigned char c, unsigned int lo, unsigned int hi)
{
	return (1 - lt(c, lo)) & lt(c, hi + 1);
}

/* 1 when c is in 0-9A-Za-z, else 0. */
static inline unsigned int
is_base62(unsigned char c)
{
	return in_range(c, '0', '9') | in_range(c, 'A', 'Z') | in_range(c, 'a', 'z');
}

/* The base62 character of value v (0..61): '0'+v, then skip ':'..'@' and '['..'`'. */
static inline char
base62_char(unsigned int v)
{
	return (char) ('0' + v + 7 * (1 - lt(v, 10)) + 6 * (1 - lt(v, 36)));
}

/* 1 when every byte of s[0..len) is base62, else 0; looks at all of them. */
static unsigned int
all_base62(const char *s, size_t len)
{
	unsigned int ok = 1;
	size_t		i;

	for (i = 0; i < len; i++)
		ok &= is_base62((unsigned char) s[i]);
	return ok;
}

/* CRC-32 of s[0..len) as 6 base62 digits, most significant first. len <= MAX_LEN. */
static void
checksum_of(const char *s, size_t len, char out[HLA_APIKEY_CHECKSUM_LEN])
{
	uLong		crc = crc32(0L, Z_NULL, 0);
	uint32_t	v;
	int			i;

	crc = crc32(crc, (const Bytef *) s, (uInt) len);
	v = (uint32_t) crc;
	for (i = HLA_APIKEY_CHECKSUM_LEN - 1; i >= 0; i--)
	{
		out[i] = base62_char(v % 62);
		v /= 62;
	}
}

bool
hla_apikey_prefix_valid(const char *p, size_t len)
{
	bool		at_start = true;	/* at the first byte of a segment */
	size_t		i;

	if (len < HLA_APIKEY_PREFIX_MIN_LEN || len > HLA_APIKEY_PREFIX_MAX_LEN)
		return false;
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) p[i];

		if (c == '_')
		{
			if (at_start)
				return false;	/* leading "_" or "__" */
			at_start = true;
		}
		else if (c >= 'a' && c <= 'z')
			at_start = false;
		else if (c >= '0' && c <= '9')
		{
			if (at_start)
				return false;	/* a segment starts with a letter */
		}
		else
			return false;
	}
	return !at_start;			/* no trailing "_" */
}

hla_apikey_error
hla_apikey_parse(const char *s, size_t len, hla_apikey *out)
{
	unsigned int ascii_ok = 1;
	size_t		sep = len;		/* offset of the last '_', len when there is none */
	size_t		i;
	const char *body;
	char		want[HLA_APIKEY_CHECKSUM_LEN];
	unsigned int diff = 0;

	if (len == 0)
		return HLA_APIKEY_EMPTY;
	if (len > HLA_APIKEY_MAX_LEN)
		return HLA_APIKEY_TOO_LONG;

	/* One pass over every byte: NUL / non-ASCII anywhere, and where the last '_' is. */
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		ascii_ok &= (unsigned int) (c != 0) & (unsigned int) (c < 0x80);
		if (c == '_')
			sep = i;
	}
	if (!ascii_ok)
		return HLA_APIKEY_BAD_CHAR;
	if (sep == len || !hla_apikey_prefix_valid(s, sep))
		return HLA_APIKEY_BAD_PREFIX;
	if (len - sep - 1 != HLA_APIKEY_BODY_LEN)
		return HLA_APIKEY_BAD_LENGTH;

	body = s + sep + 1;
	if (!all_base62(body, HLA_APIKEY_BODY_LEN))
		return HLA_APIKEY_BAD_CHAR;

	/* Compare every checksum character, not stopping at the first difference. */
	checksum_of(s, sep + 1 + CHECKSUM_OFF, want);
	for (i = 0; i < HLA_APIKEY_CHECKSUM_LEN; i++)
		diff |= (unsigned int) (unsigned char) (want[i] ^ body[CHECKSUM_OFF + i]);
	if (diff != 0)
		return HLA_APIKEY_BAD_CHECKSUM;

	out->prefix = s;
	out->prefix_len = sep;
	out->id = body + ID_OFF;
	out->secret = body + SECRET_OFF;
	out->checksum = body + CHECKSUM_OFF;
	return HLA_APIKEY_OK;
}

const char *
hla_apikey_error_message(hla_apikey_error err)
{
	switch (err)
	{
		case HLA_APIKEY_OK:
			return "The API key is well formed.";
		case HLA_APIKEY_EMPTY:
			return "An API key cannot be empty.";
		case HLA_APIKEY_TOO_LONG:
			return "An API key is at most 73 bytes long, and its stored form at most 117.";
		case HLA_APIKEY_BAD_PREFIX:
			return "An API key starts with a prefix such as \"hlk_live\" followed by \"_\": "
				"2 to 32 bytes of lower-case letters and digits in segments joined by single "
				"\"_\", each segment starting with a letter.";
		case HLA_APIKEY_BAD_LENGTH:
			return "An API key has exactly 40 letters and digits after its prefix and \"_\".";
		case HLA_APIKEY_BAD_CHAR:
			return "An API key may contain only ASCII letters and digits after its prefix, "
				"and no NUL or non-ASCII byte anywhere.";
		case HLA_APIKEY_BAD_CHECKSUM:
			return "The API key's checksum does not match: the key is mistyped, truncated "
				"or not one that was issued.";
		case HLA_APIKEY_BAD_STORED:
			return "A stored API key looks like \"<prefix>_<12-character key id>:v<version>:"
				"<64 lower-case hex digits>\", with a version from 1 to 65535 and no "
				"leading zeros.";
	}
	return "The API key is invalid.";
}

int
hla_apikey_compose(const char *prefix, size_t prefix_len,
				   const char id[HLA_APIKEY_ID_LEN],
				   const char secret[HLA_APIKEY_SECRET_LEN],
				   char *out, size_t outlen)
{
	size_t		total;
	char	   *body;

	if (!hla_apikey_prefix_valid(prefix, prefix_len))
		return -1;
	if (!all_base62(id, HLA_APIKEY_ID_LEN) || !all_base62(secret, HLA_APIKEY_SECRET_LEN))
		return -1;
	total = prefix_len + 1 + HLA_APIKEY_BODY_LEN;
	if (out == NULL || outlen < total + 1)
		return -1;

	memcpy(out, prefix, prefix_len);
	out[prefix_len] = '_';
	body = out + prefix_len + 1;
	memcpy(body + ID_OFF, id, HLA_APIKEY_ID_LEN);
	memcpy(body + SECRET_OFF, secret, HLA_APIKEY_SECRET_LEN);
	checksum_of(out, prefix_len + 1 + CHECKSUM_OFF, body + CHECKSUM_OFF);
	out[total] = '\0';
	return (int) total;
}

size_t
hla_base62_from_bytes(const unsigned char *rnd, size_t nrnd, char *out, size_t want)
{
	size_t		n = 0;
	size_t		i;

	for (i = 0; i < nrnd && n < want; i++)
	{
		unsigned int b = rnd[i];

		/* Only whether a byte is skipped shows in the timing, never which byte it was. */
		if (b < HLA_BASE62_REJECT_FROM)
			out[n++] = base62_char(b % 62);
	}
	return n;
}

/* Value of a lower-case hex digit, or -1. */
static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

hla_apikey_error
hla_apikey_stored_parse(const char *s, size_t len, hla_apikey_stored *out)
{
	size_t		colon;			/* the first ':' */
	size_t		vcolon;			/* the ':' after the version */
	size_t		prefix_len;
	size_t		i;
	uint32_t	version = 0;
	unsigned char hash[HLA_APIKEY_HASH_LEN];

	if (len == 0)
		return HLA_APIKEY_EMPTY;
	if (len > HLA_APIKEY_STORED_MAX_LEN)
		return HLA_APIKEY_TOO_LONG;

	/* `<prefix>_<id>` runs to the first ':'; the id is its last 12 bytes. */
	for (colon = 0; colon < len && s[colon] != ':'; colon++)
		;
	if (colon == len || colon < HLA_APIKEY_ID_LEN + 1)
		return HLA_APIKEY_BAD_STORED;
	prefix_len = colon - HLA_APIKEY_ID_LEN - 1;
	if (s[prefix_len] != '_' || !all_base62(s + prefix_len + 1, HLA_APIKEY_ID_LEN))
		return HLA_APIKEY_BAD_STORED;

	/* "v" and 1..5 digits, no leading zero, at most 65535, then ':'. */
	i = colon + 1;
	if (i >= len || s[i] != 'v')
		return HLA_APIKEY_BAD_STORED;
	i++;
	if (i >= len || s[i] < '1' || s[i] > '9')
		return HLA_APIKEY_BAD_STORED;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
	{
		version = version * 10 + (uint32_t) (s[i] - '0');
		if (version > HLA_APIKEY_VERSION_MAX)
			return HLA_APIKEY_BAD_STORED;
	}
	if (i >= len || s[i] != ':')
		return HLA_APIKEY_BAD_STORED;
	vcolon = i;

	/* Exactly 64 lower-case hex digits to the end. */
	if (len - vcolon - 1 != 2 * HLA_APIKEY_HASH_LEN)
		return HLA_APIKEY_BAD_STORED;
	for (i = 0; i < HLA_APIKEY_HASH_LEN; i++)
	{
		int			hi = hex_value((unsigned char) s[vcolon + 1 + 2 * i]);
		int			lo = hex_value((unsigned char) s[vcolon + 2 + 2 * i]);

		if (hi < 0 || lo < 0)
			return HLA_APIKEY_BAD_STORED;
		hash[i] = (unsigned char) (hi << 4 | lo);
	}

	if (!hla_apikey_prefix_valid(s, prefix_len))
		return HLA_APIKEY_BAD_PREFIX;

	out->prefix = s;
	out->prefix_len = prefix_len;
	out->id = s + prefix_len + 1;
	out->version = version;
	memcpy(out->hash, hash, sizeof(hash));
	return HLA_APIKEY_OK;
}

int
hla_apikey_stored_format(const hla_apikey_stored *in, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	char		digits[5];
	int			ndigits = 0;
	uint32_t	v;
	size_t		total;
	size_t		o;
	int			i;

	if (in == NULL || !hla_apikey_prefix_valid(in->prefix, in->prefix_len))
		return -1;
	if (in->id == NULL || !all_base62(in->id, HLA_APIKEY_ID_LEN))
		return -1;
	if (in->version < 1 || in->version > HLA_APIKEY_VERSION_MAX)
		return -1;

	for (v = in->version; v > 0; v /= 10)
		digits[ndigits++] = (char) ('0' + v % 10);
	total = in->prefix_len + 1 + HLA_APIKEY_ID_LEN + 2 + (size_t) ndigits + 1 +
		2 * HLA_APIKEY_HASH_LEN;
	if (out == NULL || outlen < total + 1)
		return -1;

	memcpy(out, in->prefix, in->prefix_len);
	o = in->prefix_len;
	out[o++] = '_';
	memcpy(out + o, in->id, HLA_APIKEY_ID_LEN);
	o += HLA_APIKEY_ID_LEN;
	out[o++] = ':';
	out[o++] = 'v';
	for (i = ndigits - 1; i >= 0; i--)
		out[o++] = digits[i];
	out[o++] = ':';
	for (i = 0; i < HLA_APIKEY_HASH_LEN; i++)
	{
		out[o++] = hex[in->hash[i] >> 4];
		out[o++] = hex[in->hash[i] & 0x0f];
	}
	out[o] = '\0';
	return (int) total;
}

bool
hla_apikey_looks_stored(const char *s, size_t len)
{
	return len > 0 && memchr(s, ':', len) != NULL;
}
