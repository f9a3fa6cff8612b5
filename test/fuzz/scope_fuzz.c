/*
 * test/fuzz/scope_fuzz.c
 *		libFuzzer target for the pure-C scope core (src/core/scope.h, scope.c).
 *
 * The whole input is parsed as a scope set and checked as one scope; then it is split
 * in two at a point chosen by its first byte and the halves are compared as scopes.
 * Every property violation calls abort() after printing what went wrong.
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

#include "scope.h"

#define PAIR_LIMIT	16			/* spans compared pairwise / in triples */

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
	fprintf(stderr, "scope_fuzz: property violated: %s\n", what);
	if (a)
		show("a", a, alen);
	if (b)
		show("b", b, blen);
	abort();
}

#define REQUIRE(cond, a, alen, b, blen) \
	do { if (!(cond)) die(#cond, (a), (alen), (b), (blen)); } while (0)

static char *
dup_exact(const uint8_t *data, size_t len)
{
	char	   *p = malloc(len ? len : 1);

	if (!p)
		abort();
	if (len)
		memcpy(p, data, len);
	return p;
}

static bool
valid_error(hla_scope_error e)
{
	return e >= HLA_SCOPE_OK && e <= HLA_SCOPE_TOO_MANY;
}

/* Is c in the scope alphabet [A-Za-z0-9_-/.*]? Written independently of scope.c. */
static bool
scope_byte(char c)
{
	return c != '\0' && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
								"0123456789_-/.*", c) != NULL;
}

/* Segments of s[0..len) split on '/', each non-empty and wildcard-free. Returns the
 * number of segments, or -1. */
static int
ref_path_segments(const char *s, size_t len)
{
	int			n = 0;
	size_t		start = 0;

	for (size_t i = 0; i <= len; i++)
	{
		if (i < len && s[i] != '/')
		{
			if (s[i] == '*' || s[i] == '.')
				return -1;
			continue;
		}
		if (i == start)
			return -1;
		n++;
		start = i + 1;
	}
	return n;
}

/*
 * Reference validator, written from the grammar in scope.h rather than from scope.c:
 *	"*" | path "." action | path "." "*" | path "/" "*"
 * with 1..8 path segments in total (a trailing "*" counts as one), an action being one
 * segment, and at most HLA_SCOPE_MAX_LEN bytes.
 */
static bool
ref_valid(const char *s, size_t len)
{
	const char *dot;
	int			segs;

	if (len == 0 || len > HLA_SCOPE_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!scope_byte(s[i]))
			return false;
	if (len == 1 && s[0] == '*')
		return true;

	dot = memchr(s, '.', len);
	if (dot)
	{
		size_t		plen = (size_t) (dot - s);
		const char *act = dot + 1;
		size_t		alen = len - plen - 1;

		if (alen == 0 || memchr(act, '.', alen) || memchr(act, '/', alen))
			return false;
		if (memchr(act, '*', alen) && !(alen == 1 && act[0] == '*'))
			return false;
		segs = ref_path_segments(s, plen);
		return segs >= 1 && segs <= HLA_SCOPE_MAX_SEGMENTS;
	}
	if (len < 3 || s[len - 1] != '*' || s[len - 2] != '/')
		return false;
	segs = ref_path_segments(s, len - 2);
	return segs >= 1 && segs + 1 <= HLA_SCOPE_MAX_SEGMENTS;
}

/* Reference kind of a scope that ref_valid accepts. */
static hla_scope_kind
ref_kind(const char *s, size_t len)
{
	if (len == 1)
		return s[0] == '*' ? HLA_SCOPE_ALL : HLA_SCOPE_EXACT;
	if (s[len - 1] != '*')
		return HLA_SCOPE_EXACT;
	return s[len - 2] == '.' ? HLA_SCOPE_ANY_ACTION : HLA_SCOPE_SUBTREE;
}

/* The checks every single scope gets, valid or not. */
static bool
check_one(const char *s, size_t len)
{
	size_t		pos = (size_t) -1;
	hla_scope_error e = hla_scope_check(s, len, &pos);
	const char *text = hla_scope_error_text(e);

	REQUIRE(valid_error(e), s, len, NULL, 0);
	REQUIRE(e != HLA_SCOPE_TOO_MANY, s, len, NULL, 0);
	REQUIRE(text != NULL && text[0] != '\0', s, len, NULL, 0);
	REQUIRE(hla_scope_check(s, len, NULL) == e, s, len, NULL, 0);
	/* accepted exactly when the reference grammar accepts */
	REQUIRE((e == HLA_SCOPE_OK) == ref_valid(s, len), s, len, NULL, 0);
	if (e != HLA_SCOPE_OK)
	{
		REQUIRE(pos <= len, s, len, NULL, 0);
		REQUIRE((e == HLA_SCOPE_EMPTY) == (len == 0), s, len, NULL, 0);
		REQUIRE((e == HLA_SCOPE_TOO_LONG) == (len > HLA_SCOPE_MAX_LEN), s, len, NULL, 0);
		if (e == HLA_SCOPE_BAD_CHAR)
		{
			/* pos is the first byte outside the alphabet */
			REQUIRE(pos < len && !scope_byte(s[pos]), s, len, NULL, 0);
			for (size_t i = 0; i < pos; i++)
				REQUIRE(scope_byte(s[i]), s, len, NULL, 0);
		}
		else if (e != HLA_SCOPE_TOO_LONG)
		{
			/* any other structural error means every byte was in the alphabet */
			for (size_t i = 0; i < len; i++)
				REQUIRE(scope_byte(s[i]), s, len, NULL, 0);
		}
		/* the position points at what the error names */
		switch (e)
		{
			case HLA_SCOPE_TOO_LONG:
				REQUIRE(pos == HLA_SCOPE_MAX_LEN, s, len, NULL, 0);
				break;
			case HLA_SCOPE_EMPTY_SEGMENT:
				REQUIRE(pos == 0 || s[pos - 1] == '.' || s[pos - 1] == '/', s, len, NULL, 0);
				REQUIRE(pos == len || s[pos] == '.' || s[pos] == '/', s, len, NULL, 0);
				break;
			case HLA_SCOPE_NO_ACTION:
				REQUIRE(pos == len && memchr(s, '.', len) == NULL, s, len, NULL, 0);
				break;
			case HLA_SCOPE_EMPTY_ACTION:
				REQUIRE(pos == len && s[len - 1] == '.', s, len, NULL, 0);
				break;
			case HLA_SCOPE_EXTRA_DOT:
				REQUIRE(pos < len && s[pos] == '.' && memchr(s, '.', pos) != NULL,
						s, len, NULL, 0);
				break;
			case HLA_SCOPE_SLASH_IN_ACTION:
				REQUIRE(pos < len && s[pos] == '/' && memchr(s, '.', pos) != NULL,
						s, len, NULL, 0);
				break;
			case HLA_SCOPE_BAD_WILDCARD:
				REQUIRE(pos < len && s[pos] == '*', s, len, NULL, 0);
				break;
			case HLA_SCOPE_TOO_DEEP:
				REQUIRE(pos > 0 && pos < len && s[pos - 1] == '/', s, len, NULL, 0);
				break;
			default:
				break;
		}
		return false;
	}

	/* Valid: a set of just this scope parses to exactly it. */
	{
		hla_span	one[2];
		hla_scope_error err;
		size_t		epos;

		REQUIRE(len <= HLA_SCOPE_MAX_LEN, s, len, NULL, 0);
		for (size_t i = 0; i < len; i++)
			REQUIRE(scope_byte(s[i]), s, len, NULL, 0);
		REQUIRE(memchr(s, ' ', len) == NULL, s, len, NULL, 0);
		REQUIRE(hla_scopes_parse(s, len, one, 2, &err, &epos) == 1, s, len, NULL, 0);
		REQUIRE(one[0].ptr == s && one[0].len == len, s, len, NULL, 0);
	}
	REQUIRE(hla_scope_kind_of(s, len) == ref_kind(s, len), s, len, NULL, 0);
	REQUIRE(hla_scope_covers(s, len, s, len), s, len, NULL, 0);
	REQUIRE(hla_scope_overlaps(s, len, s, len), s, len, NULL, 0);
	REQUIRE(hla_scope_covers("*", 1, s, len), s, len, NULL, 0);
	REQUIRE(hla_scope_covers(s, len, "*", 1) == (len == 1 && s[0] == '*'), s, len, NULL, 0);
	return true;
}

/*
 * A concrete (wildcard-free) scope that pattern s grants, written into buf. Returns its
 * length, or 0 when none fits the grammar (e.g. a subtree already at full depth).
 */
static size_t
concrete_instance(const char *s, size_t len, char *buf, size_t cap)
{
	size_t		n;

	switch (hla_scope_kind_of(s, len))
	{
		case HLA_SCOPE_EXACT:
			n = len;
			if (n > cap)
				return 0;
			memcpy(buf, s, n);
			break;
		case HLA_SCOPE_ANY_ACTION:	/* "P.*" -> "P.z" */
			n = len;
			if (n > cap)
				return 0;
			memcpy(buf, s, len - 1);
			buf[len - 1] = 'z';
			break;
		case HLA_SCOPE_SUBTREE:		/* "P/" + "*" -> "P/z.z" */
			n = len + 2;
			if (n > cap)
				return 0;
			memcpy(buf, s, len - 1);
			memcpy(buf + len - 1, "z.z", 3);
			break;
		case HLA_SCOPE_ALL:
		default:
			n = 3;
			if (n > cap)
				return 0;
			memcpy(buf, "z.z", 3);
			break;
	}
	if (hla_scope_check(buf, n, NULL) != HLA_SCOPE_OK)
		return 0;
	return n;
}

/* Reference matcher for a concrete scope c against a valid pattern p, from the grammar. */
static bool
ref_match(const char *p, size_t plen, const char *c, size_t clen)
{
	const char *dot = memchr(c, '.', clen);
	size_t		cpath = dot ? (size_t) (dot - c) : clen;

	switch (hla_scope_kind_of(p, plen))
	{
		case HLA_SCOPE_ALL:
			return true;
		case HLA_SCOPE_ANY_ACTION:
			return cpath == plen - 2 && memcmp(p, c, plen - 2) == 0;
		case HLA_SCOPE_SUBTREE:
			return cpath > plen - 1 && memcmp(p, c, plen - 1) == 0;
		case HLA_SCOPE_EXACT:
		default:
			return plen == clen && memcmp(p, c, plen) == 0;
	}
}

/* Pairwise properties of two valid scopes. */
static void
check_pair(const char *a, size_t alen, const char *b, size_t blen)
{
	bool		ab = hla_scope_covers(a, alen, b, blen);
	bool		ba = hla_scope_covers(b, blen, a, alen);
	bool		ov = hla_scope_overlaps(a, alen, b, blen);
	char		cbuf[HLA_SCOPE_MAX_LEN + 8];
	size_t		clen;

	REQUIRE(ov == hla_scope_overlaps(b, blen, a, alen), a, alen, b, blen);
	/* covering implies overlapping */
	REQUIRE(!ab || ov, a, alen, b, blen);
	REQUIRE(!ba || ov, a, alen, b, blen);
	/* antisymmetric: mutual cover only for identical scopes */
	REQUIRE(!(ab && ba) || (alen == blen && memcmp(a, b, alen) == 0), a, alen, b, blen);

	/* Against a concrete scope that b grants. */
	clen = concrete_instance(b, blen, cbuf, sizeof(cbuf));
	if (clen > 0)
	{
		char	   *c = dup_exact((const uint8_t *) cbuf, clen);
		bool		ac = hla_scope_covers(a, alen, c, clen);

		REQUIRE(hla_scope_covers(b, blen, c, clen), b, blen, c, clen);
		REQUIRE(ac == ref_match(a, alen, c, clen), a, alen, c, clen);
		/* a covers b => a covers everything b grants */
		REQUIRE(!ab || ac, a, alen, b, blen);
		/* a and b disjoint => a grants nothing b grants */
		REQUIRE(ov || !ac, a, alen, b, blen);
		free(c);
	}
}

static void
check_set(const char *s, size_t len)
{
	static hla_span spans[HLA_SCOPES_MAX];
	static hla_span canon[HLA_SCOPES_MAX];
	static hla_span again[HLA_SCOPES_MAX];
	hla_scope_error err = HLA_SCOPE_OK;
	size_t		pos = (size_t) -1;
	int			n,
				m,
				m2,
				lim,
				i,
				j,
				k;

	n = hla_scopes_parse(s, len, spans, HLA_SCOPES_MAX, &err, &pos);
	if (n < 0)
	{
		REQUIRE(n == -1, s, len, NULL, 0);
		REQUIRE(err != HLA_SCOPE_OK && valid_error(err), s, len, NULL, 0);
		REQUIRE(err != HLA_SCOPE_EMPTY, s, len, NULL, 0);
		REQUIRE(pos <= len, s, len, NULL, 0);
	}
	else
	{
		REQUIRE(n <= HLA_SCOPES_MAX, s, len, NULL, 0);
		REQUIRE(err == HLA_SCOPE_OK, s, len, NULL, 0);
	}

	/*
	 * Reference: split on ASCII spaces ourselves. The result must be the same spans, or
	 * the first failing token's error at its offset into s, or TOO_MANY at the start of
	 * the 257th token.
	 */
	{
		size_t		at = 0;
		int			t = 0;

		for (;;)
		{
			size_t		start,
						tpos;
			hla_scope_error te;

			while (at < len && s[at] == ' ')
				at++;
			if (at >= len)
				break;
			start = at;
			while (at < len && s[at] != ' ')
				at++;
			if (t == HLA_SCOPES_MAX)
			{
				REQUIRE(n == -1 && err == HLA_SCOPE_TOO_MANY && pos == start, s, len, NULL, 0);
				return;
			}
			te = hla_scope_check(s + start, at - start, &tpos);
			if (te != HLA_SCOPE_OK)
			{
				REQUIRE(n == -1 && err == te && pos == start + tpos,
						s + start, at - start, NULL, 0);
				return;
			}
			/* a valid token: parse must have stored it (or failed on a later one) */
			REQUIRE(n == -1 || (t < n && spans[t].ptr == s + start && spans[t].len == at - start),
					s + start, at - start, NULL, 0);
			t++;
		}
		REQUIRE(n == t, s, len, NULL, 0);
	}

	for (i = 0; i < n; i++)
	{
		/* inside s, in order, separated by spaces */
		REQUIRE(spans[i].ptr >= s && spans[i].ptr + spans[i].len <= s + len, s, len, NULL, 0);
		if (i > 0)
			REQUIRE(spans[i].ptr > spans[i - 1].ptr + spans[i - 1].len, s, len, NULL, 0);
		/* every parsed span is a valid scope */
		REQUIRE(hla_scope_check(spans[i].ptr, spans[i].len, NULL) == HLA_SCOPE_OK,
				spans[i].ptr, spans[i].len, NULL, 0);
		REQUIRE(hla_scope_covers(spans[i].ptr, spans[i].len, spans[i].ptr, spans[i].len),
				spans[i].ptr, spans[i].len, NULL, 0);
		/* a set grants each of its members */
		REQUIRE(hla_scopes_grant(spans, n, spans[i].ptr, spans[i].len),
				spans[i].ptr, spans[i].len, NULL, 0);
	}

	/* a smaller max is either enough or reports TOO_MANY */
	if (n > 0)
	{
		int			r = hla_scopes_parse(s, len, canon, n - 1, &err, &pos);

		REQUIRE(r == -1 && err == HLA_SCOPE_TOO_MANY, s, len, NULL, 0);
		REQUIRE(pos == (size_t) (spans[n - 1].ptr - s), s, len, NULL, 0);
	}

	/* canonicalize: sorted strictly, a subset with the same members, idempotent */
	memcpy(canon, spans, sizeof(hla_span) * (size_t) n);
	m = hla_scopes_canonicalize(canon, n);
	REQUIRE(m >= (n > 0 ? 1 : 0) && m <= n, s, len, NULL, 0);
	for (i = 1; i < m; i++)
		REQUIRE(hla_span_cmp(&canon[i - 1], &canon[i]) < 0,
				canon[i - 1].ptr, canon[i - 1].len, canon[i].ptr, canon[i].len);
	for (i = 0; i < n; i++)
	{
		bool		found = false;

		for (j = 0; j < m && !found; j++)
			found = hla_span_cmp(&spans[i], &canon[j]) == 0;
		REQUIRE(found, spans[i].ptr, spans[i].len, NULL, 0);
		REQUIRE(hla_scopes_grant(canon, m, spans[i].ptr, spans[i].len),
				spans[i].ptr, spans[i].len, NULL, 0);
	}
	memcpy(again, canon, sizeof(hla_span) * (size_t) m);
	m2 = hla_scopes_canonicalize(again, m);
	REQUIRE(m2 == m, s, len, NULL, 0);
	for (i = 0; i < m; i++)
		REQUIRE(again[i].ptr == canon[i].ptr && again[i].len == canon[i].len, s, len, NULL, 0);

	/* pairwise and transitive properties over the first few */
	lim = n < PAIR_LIMIT ? n : PAIR_LIMIT;
	for (i = 0; i < lim; i++)
		for (j = 0; j < lim; j++)
		{
			const hla_span *a = &spans[i],
					   *b = &spans[j];
			bool		ab = hla_scope_covers(a->ptr, a->len, b->ptr, b->len);

			check_pair(a->ptr, a->len, b->ptr, b->len);
			/* grant agrees with covers */
			if (ab)
				REQUIRE(hla_scopes_grant(spans + i, 1, b->ptr, b->len), a->ptr, a->len,
						b->ptr, b->len);
			if (!ab)
				continue;
			for (k = 0; k < lim; k++)
			{
				const hla_span *c = &spans[k];

				if (hla_scope_covers(b->ptr, b->len, c->ptr, c->len))
					REQUIRE(hla_scope_covers(a->ptr, a->len, c->ptr, c->len),
							a->ptr, a->len, c->ptr, c->len);
			}
		}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *whole = dup_exact(data, size);

	/* The whole input as one scope, and as a set. */
	check_one(whole, size);
	check_set(whole, size);
	free(whole);

	/* Split in two at a point chosen by the first byte; compare the halves. */
	if (size >= 1)
	{
		size_t		rest = size - 1;
		size_t		cut = data[0] <= rest ? data[0] : data[0] % (rest + 1);
		char	   *a = dup_exact(data + 1, cut);
		char	   *b = dup_exact(data + 1 + cut, rest - cut);
		bool		va = check_one(a, cut);
		bool		vb = check_one(b, rest - cut);

		if (va && vb)
		{
			check_pair(a, cut, b, rest - cut);
			check_pair(b, rest - cut, a, cut);
		}
		free(a);
		free(b);
	}
	return 0;
}
