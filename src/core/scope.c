/*
 * src/core/scope.c
 *		Scope grammar, validation and matching. See scope.h for the grammar.
 *
 * Plain C: no postgres.h, no allocation, no locale. Every read is bounded by the length
 * the caller gives; a NUL byte is just another bad character.
 */
#include "scope.h"

#include <stdlib.h>
#include <string.h>

static bool
is_segment_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '-';
}

hla_scope_error
hla_scope_check(const char *s, size_t len, size_t *errpos)
{
	size_t		i;
	size_t		seg_start = 0;
	int			path_segments = 0;
	bool		seen_dot = false;
	size_t		dummy;

	if (errpos == NULL)
		errpos = &dummy;
	*errpos = 0;

	if (len == 0)
		return HLA_SCOPE_EMPTY;
	if (len > HLA_SCOPE_MAX_LEN)
	{
		*errpos = HLA_SCOPE_MAX_LEN;
		return HLA_SCOPE_TOO_LONG;
	}

	/* Characters first, so the reported position is the first bad byte. */
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (!is_segment_char(c) && c != '/' && c != '.' && c != '*')
		{
			*errpos = i;
			return HLA_SCOPE_BAD_CHAR;
		}
	}

	if (len == 1 && s[0] == '*')
		return HLA_SCOPE_OK;

	/* Walk the segments; i == len acts as a final separator. */
	for (i = 0; i <= len; i++)
	{
		char		c = (i < len) ? s[i] : '\0';
		size_t		seg_len;

		if (i < len && c != '/' && c != '.')
			continue;

		seg_len = i - seg_start;
		if (seg_len == 0)
		{
			*errpos = i;
			if (i == len && seen_dot)
				return HLA_SCOPE_EMPTY_ACTION;
			return HLA_SCOPE_EMPTY_SEGMENT;
		}

		/* A wildcard is a whole segment, and only the last one. */
		if (memchr(s + seg_start, '*', seg_len) != NULL)
		{
			if (seg_len != 1 || i != len)
			{
				*errpos = seg_start + ((const char *) memchr(s + seg_start, '*', seg_len) - (s + seg_start));
				return HLA_SCOPE_BAD_WILDCARD;
			}
			/* "x.*" or "x/" + "*": the segment before must be a real one (checked as we went). */
			if (seg_start == 0)
			{
				*errpos = 0;
				return HLA_SCOPE_BAD_WILDCARD;
			}
		}

		if (seen_dot)
		{
			/* We are past the action: nothing may follow it. */
			if (i < len)
			{
				*errpos = i;
				return (c == '.') ? HLA_SCOPE_EXTRA_DOT : HLA_SCOPE_SLASH_IN_ACTION;
			}
		}
		else
		{
			path_segments++;
			if (path_segments > HLA_SCOPE_MAX_SEGMENTS)
			{
				*errpos = seg_start;
				return HLA_SCOPE_TOO_DEEP;
			}
			if (c == '.')
				seen_dot = true;
		}
		seg_start = i + 1;
	}

	if (!seen_dot)
	{
		/* Only "path/" + "*" may go without an action. */
		if (len >= 2 && s[len - 1] == '*' && s[len - 2] == '/')
			return HLA_SCOPE_OK;
		*errpos = len;
		return HLA_SCOPE_NO_ACTION;
	}
	return HLA_SCOPE_OK;
}

const char *
hla_scope_error_text(hla_scope_error err)
{
	switch (err)
	{
		case HLA_SCOPE_OK:
			return "The scope is valid.";
		case HLA_SCOPE_EMPTY:
			return "A scope cannot be empty.";
		case HLA_SCOPE_TOO_LONG:
			return "A scope is at most 128 bytes long.";
		case HLA_SCOPE_BAD_CHAR:
			return "A scope may contain only ASCII letters, digits, \"_\", \"-\", \"/\", \".\" and a \"*\" wildcard.";
		case HLA_SCOPE_EMPTY_SEGMENT:
			return "A scope has an empty segment: \"/\" and \".\" must each sit between two segments.";
		case HLA_SCOPE_NO_ACTION:
			return "A scope must end in \".action\" (as in \"contacts.readonly\"), or be a wildcard.";
		case HLA_SCOPE_EMPTY_ACTION:
			return "A scope cannot end with \".\".";
		case HLA_SCOPE_EXTRA_DOT:
			return "A scope has exactly one \".\", before its action.";
		case HLA_SCOPE_SLASH_IN_ACTION:
			return "The action must be the last segment: no \"/\" may follow the \".\".";
		case HLA_SCOPE_BAD_WILDCARD:
			return "A wildcard \"*\" must be a whole segment and the last one: \"*\", \"contacts.*\" or \"calendars/*\".";
		case HLA_SCOPE_TOO_DEEP:
			return "A scope has at most 8 resource segments.";
		case HLA_SCOPE_TOO_MANY:
			return "A scope set holds at most 256 scopes.";
	}
	return "The scope is invalid.";
}

hla_scope_kind
hla_scope_kind_of(const char *s, size_t len)
{
	if (len == 1 && s[0] == '*')
		return HLA_SCOPE_ALL;
	if (len >= 2 && s[len - 1] == '*')
		return (s[len - 2] == '.') ? HLA_SCOPE_ANY_ACTION : HLA_SCOPE_SUBTREE;
	return HLA_SCOPE_EXACT;
}

/* The resource path of a valid scope that is not "*". */
static size_t
path_len(const char *s, size_t len, hla_scope_kind kind)
{
	if (kind == HLA_SCOPE_EXACT)
	{
		const char *dot = memchr(s, '.', len);

		return dot ? (size_t) (dot - s) : len;
	}
	return len - 2;				/* drop the two-byte wildcard suffix */
}

bool
hla_scope_covers(const char *p, size_t plen, const char *q, size_t qlen)
{
	hla_scope_kind pk = hla_scope_kind_of(p, plen);
	hla_scope_kind qk = hla_scope_kind_of(q, qlen);
	size_t		pp,
				qp;

	if (pk == HLA_SCOPE_ALL)
		return true;
	if (qk == HLA_SCOPE_ALL)
		return false;

	switch (pk)
	{
		case HLA_SCOPE_EXACT:
			return qk == HLA_SCOPE_EXACT && plen == qlen && memcmp(p, q, plen) == 0;

		case HLA_SCOPE_ANY_ACTION:
			if (qk == HLA_SCOPE_SUBTREE)
				return false;
			pp = path_len(p, plen, pk);
			qp = path_len(q, qlen, qk);
			return pp == qp && memcmp(p, q, pp) == 0;

		case HLA_SCOPE_SUBTREE:
			pp = path_len(p, plen, pk);
			qp = path_len(q, qlen, qk);
			if (qk == HLA_SCOPE_SUBTREE && pp == qp && memcmp(p, q, pp) == 0)
				return true;
			/* q's path must strictly extend p's: "calendars/" + at least one segment. */
			return qp > pp + 1 && memcmp(p, q, pp) == 0 && q[pp] == '/';

		case HLA_SCOPE_ALL:
			break;
	}
	return true;
}

bool
hla_scope_overlaps(const char *p, size_t plen, const char *q, size_t qlen)
{
	/*
	 * The sets of concrete scopes the four kinds name either nest or are disjoint, so two
	 * patterns share a concrete scope exactly when one covers the other.
	 */
	return hla_scope_covers(p, plen, q, qlen) || hla_scope_covers(q, qlen, p, plen);
}

int
hla_scopes_parse(const char *s, size_t len, hla_span *out, int max,
				 hla_scope_error *err, size_t *errpos)
{
	size_t		i = 0;
	int			n = 0;

	*err = HLA_SCOPE_OK;
	*errpos = 0;

	while (i < len)
	{
		size_t		start,
					pos;
		hla_scope_error e;

		while (i < len && s[i] == ' ')
			i++;
		if (i >= len)
			break;
		start = i;
		while (i < len && s[i] != ' ')
			i++;

		if (n >= max || n >= HLA_SCOPES_MAX)
		{
			*err = HLA_SCOPE_TOO_MANY;
			*errpos = start;
			return -1;
		}
		e = hla_scope_check(s + start, i - start, &pos);
		if (e != HLA_SCOPE_OK)
		{
			*err = e;
			*errpos = start + pos;
			return -1;
		}
		out[n].ptr = s + start;
		out[n].len = i - start;
		n++;
	}
	return n;
}

int
hla_span_cmp(const hla_span *a, const hla_span *b)
{
	size_t		m = a->len < b->len ? a->len : b->len;
	int			c = memcmp(a->ptr, b->ptr, m);

	if (c != 0)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

static int
span_qsort_cmp(const void *a, const void *b)
{
	return hla_span_cmp((const hla_span *) a, (const hla_span *) b);
}

int
hla_scopes_canonicalize(hla_span *spans, int n)
{
	int			i,
				k;

	if (n <= 1)
		return n;
	qsort(spans, (size_t) n, sizeof(hla_span), span_qsort_cmp);
	for (i = 1, k = 1; i < n; i++)
	{
		if (hla_span_cmp(&spans[k - 1], &spans[i]) != 0)
			spans[k++] = spans[i];
	}
	return k;
}

bool
hla_scopes_grant(const hla_span *set, int n, const char *q, size_t qlen)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		if (hla_scope_covers(set[i].ptr, set[i].len, q, qlen))
			return true;
	}
	return false;
}
