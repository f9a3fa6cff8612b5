/*
 * src/scopes.c
 *		The hlauth.scopes type: I/O, equality, grant/cover/overlap operators, set algebra.
 *
 * Grammar and matching come from src/core/scope.c; this file only moves bytes between
 * PostgreSQL and the core. Operators never raise on well-formed values (they are LEAKPROOF);
 * a text that is not a valid scope is simply not granted.
 */
#include "hlauth.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "common/hashfn.h"

PG_FUNCTION_INFO_V1(scopes_in);
PG_FUNCTION_INFO_V1(scopes_out);
PG_FUNCTION_INFO_V1(scopes_recv);
PG_FUNCTION_INFO_V1(scopes_send);
PG_FUNCTION_INFO_V1(scopes_eq);
PG_FUNCTION_INFO_V1(scopes_ne);
PG_FUNCTION_INFO_V1(scopes_grants);
PG_FUNCTION_INFO_V1(scopes_granted_by);
PG_FUNCTION_INFO_V1(scopes_contains);
PG_FUNCTION_INFO_V1(scopes_contained);
PG_FUNCTION_INFO_V1(scopes_overlap);
PG_FUNCTION_INFO_V1(scopes_intersect);
PG_FUNCTION_INFO_V1(scopes_union);
PG_FUNCTION_INFO_V1(scopes_count);
PG_FUNCTION_INFO_V1(scopes_to_array);
PG_FUNCTION_INFO_V1(scopes_from_array);
PG_FUNCTION_INFO_V1(scope_is_valid);
PG_FUNCTION_INFO_V1(scopes_hash);

/* Longest slice of a bad scope quoted back in an error message. */
#define HL_QUOTE_MAX 64

/* Fill spans[] from a stored set; returns the count. */
static int
scopes_spans(const HlScopes *set, hla_span *spans)
{
	const char *p = set->data;
	int			i;

	for (i = 0; i < set->count; i++)
	{
		size_t		len = strlen(p);

		spans[i].ptr = p;
		spans[i].len = len;
		p += len + 1;
	}
	return set->count;
}

/* Build a stored set from spans that are already canonical. */
static HlScopes *
scopes_build(const hla_span *spans, int n)
{
	Size		size = offsetof(HlScopes, data);
	HlScopes   *result;
	char	   *p;
	int			i;

	for (i = 0; i < n; i++)
		size += spans[i].len + 1;
	result = (HlScopes *) palloc0(size);
	SET_VARSIZE(result, size);
	result->count = n;
	p = result->data;
	for (i = 0; i < n; i++)
	{
		memcpy(p, spans[i].ptr, spans[i].len);
		p += spans[i].len + 1;
	}
	return result;
}

static void
report_too_many(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("too many scopes in a value of type hlauth.scopes"),
			 errdetail("%s", hla_scope_error_text(HLA_SCOPE_TOO_MANY)),
			 errhint("Grant a wildcard such as \"contacts.*\" instead of listing every scope.")));
}

/*
 * Report a bad scope: the quoted scope is tok[0..toklen), the error at byte errpos of it.
 * At most HL_QUOTE_MAX bytes are quoted, never cutting a multibyte character.
 */
static void
report_bad_token(const char *tok, size_t toklen, hla_scope_error err, size_t errpos)
{
	int			quote_len;

	if (err == HLA_SCOPE_TOO_MANY)
		report_too_many();
	quote_len = pg_mbcliplen(tok, (int) toklen, (int) Min(toklen, HL_QUOTE_MAX));
	ereport(ERROR,
			(errcode(err == HLA_SCOPE_TOO_LONG ? ERRCODE_STRING_DATA_RIGHT_TRUNCATION :
					 ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid scope \"%.*s%s\" in a value of type hlauth.scopes",
					quote_len, tok, (size_t) quote_len < toklen ? "..." : ""),
			 errdetail("At byte %zu of the scope: %s", errpos + 1, hla_scope_error_text(err)),
			 errhint("Scopes look like \"contacts.readonly\" or \"calendars/events.write\" and are separated by single spaces.")));
}

/* A bad scope inside a space-separated set: quote the token around the error. */
static void
report_bad_scope(const char *str, size_t len, hla_scope_error err, size_t errpos)
{
	size_t		start = errpos,
				end = errpos;

	while (start > 0 && str[start - 1] != ' ')
		start--;
	while (end < len && str[end] != ' ')
		end++;
	report_bad_token(str + start, end - start, err, errpos - start);
}

HlScopes *
HlScopesFromText(const char *str, size_t len)
{
	hla_span	spans[HLA_SCOPES_MAX];
	hla_scope_error err;
	size_t		errpos;
	int			n;

	n = hla_scopes_parse(str, len, spans, HLA_SCOPES_MAX, &err, &errpos);
	if (n < 0)
		report_bad_scope(str, len, err, errpos);
	n = hla_scopes_canonicalize(spans, n);
	return scopes_build(spans, n);
}

bool
HlScopesIsValidScope(const char *q, size_t qlen)
{
	return hla_scope_check(q, qlen, NULL) == HLA_SCOPE_OK;
}

bool
HlScopesGrantText(const HlScopes *set, const char *q, size_t qlen)
{
	const char *p = set->data;
	int			i;

	if (!HlScopesIsValidScope(q, qlen))
		return false;
	for (i = 0; i < set->count; i++)
	{
		size_t		len = strlen(p);

		if (hla_scope_covers(p, len, q, qlen))
			return true;
		p += len + 1;
	}
	return false;
}

char *
HlScopesToCString(const HlScopes *set)
{
	StringInfoData buf;
	const char *p = set->data;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < set->count; i++)
	{
		size_t		len = strlen(p);

		if (i > 0)
			appendStringInfoChar(&buf, ' ');
		appendBinaryStringInfo(&buf, p, (int) len);
		p += len + 1;
	}
	return buf.data;
}

/*
 * An app server sends the same few scope strings in every transaction (set_principal's
 * third argument), so text input remembers the last one it parsed: the same text gives the
 * same canonical bytes. Only valid input is remembered; invalid input always raises.
 */
#define INPUT_MEMO_MAX 1024

static HlScopes *
scopes_from_text_memo(const char *str, size_t len)
{
	static char memo_text[INPUT_MEMO_MAX];
	static size_t memo_text_len = SIZE_MAX;
	static int32 memo_buf[INPUT_MEMO_MAX / sizeof(int32)];	/* aligned for the varlena */
	char	   *memo_value = (char *) memo_buf;
	HlScopes   *result;

	if (len == memo_text_len && memcmp(str, memo_text, len) == 0)
	{
		Size		size = VARSIZE(memo_value);

		result = (HlScopes *) palloc(size);
		memcpy(result, memo_value, size);
		return result;
	}
	result = HlScopesFromText(str, len);
	if (len <= INPUT_MEMO_MAX && VARSIZE(result) <= INPUT_MEMO_MAX)
	{
		memcpy(memo_text, str, len);
		memcpy(memo_value, result, VARSIZE(result));
		memo_text_len = len;
	}
	return result;
}

Datum
scopes_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);

	PG_RETURN_HLSCOPES_P(scopes_from_text_memo(str, strlen(str)));
}

Datum
scopes_out(PG_FUNCTION_ARGS)
{
	HlScopes   *set = PG_GETARG_HLSCOPES_P(0);

	PG_RETURN_CSTRING(HlScopesToCString(set));
}

/* Binary input is the text form, validated exactly as text input is. */
Datum
scopes_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			nbytes;
	char	   *str = pq_getmsgtext(buf, buf->len - buf->cursor, &nbytes);

	PG_RETURN_HLSCOPES_P(HlScopesFromText(str, strlen(str)));
}

Datum
scopes_send(PG_FUNCTION_ARGS)
{
	HlScopes   *set = PG_GETARG_HLSCOPES_P(0);
	StringInfoData buf;
	char	   *str = HlScopesToCString(set);

	pq_begintypsend(&buf);
	pq_sendtext(&buf, str, strlen(str));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

static bool
scopes_equal(const HlScopes *a, const HlScopes *b)
{
	return VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0;
}

Datum
scopes_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(scopes_equal(PG_GETARG_HLSCOPES_P(0), PG_GETARG_HLSCOPES_P(1)));
}

Datum
scopes_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!scopes_equal(PG_GETARG_HLSCOPES_P(0), PG_GETARG_HLSCOPES_P(1)));
}

/* scopes @> text: does the set grant this one scope? */
Datum
scopes_grants(PG_FUNCTION_ARGS)
{
	HlScopes   *set = PG_GETARG_HLSCOPES_P(0);
	text	   *q = PG_GETARG_TEXT_PP(1);

	PG_RETURN_BOOL(HlScopesGrantText(set, VARDATA_ANY(q), VARSIZE_ANY_EXHDR(q)));
}

/* text <@ scopes: the commutator of the above. */
Datum
scopes_granted_by(PG_FUNCTION_ARGS)
{
	text	   *q = PG_GETARG_TEXT_PP(0);
	HlScopes   *set = PG_GETARG_HLSCOPES_P(1);

	PG_RETURN_BOOL(HlScopesGrantText(set, VARDATA_ANY(q), VARSIZE_ANY_EXHDR(q)));
}

/* Is every scope of b granted by some scope of a? */
static bool
scopes_cover_all(const HlScopes *a, const HlScopes *b)
{
	hla_span	as[HLA_SCOPES_MAX];
	hla_span	bs[HLA_SCOPES_MAX];
	int			na = scopes_spans(a, as);
	int			nb = scopes_spans(b, bs);
	int			i;

	for (i = 0; i < nb; i++)
	{
		if (!hla_scopes_grant(as, na, bs[i].ptr, bs[i].len))
			return false;
	}
	return true;
}

Datum
scopes_contains(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(scopes_cover_all(PG_GETARG_HLSCOPES_P(0), PG_GETARG_HLSCOPES_P(1)));
}

Datum
scopes_contained(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(scopes_cover_all(PG_GETARG_HLSCOPES_P(1), PG_GETARG_HLSCOPES_P(0)));
}

Datum
scopes_overlap(PG_FUNCTION_ARGS)
{
	HlScopes   *a = PG_GETARG_HLSCOPES_P(0);
	HlScopes   *b = PG_GETARG_HLSCOPES_P(1);
	hla_span	as[HLA_SCOPES_MAX];
	hla_span	bs[HLA_SCOPES_MAX];
	int			na = scopes_spans(a, as);
	int			nb = scopes_spans(b, bs);
	int			i,
				j;

	for (i = 0; i < na; i++)
		for (j = 0; j < nb; j++)
			if (hla_scope_overlaps(as[i].ptr, as[i].len, bs[j].ptr, bs[j].len))
				PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(false);
}

/*
 * The scopes granted by both sets: for each pair where one covers the other, the narrower.
 * Elements already covered by another result element are dropped, so the result is minimal.
 */
HlScopes *
HlScopesIntersect(const HlScopes *a, const HlScopes *b)
{
	hla_span	as[HLA_SCOPES_MAX];
	hla_span	bs[HLA_SCOPES_MAX];
	hla_span   *out;
	hla_span   *minimal;
	int			na = scopes_spans(a, as);
	int			nb = scopes_spans(b, bs);
	int			n = 0,
				m = 0,
				i,
				j;

	/* Every pair can contribute one scope before duplicates are removed. */
	out = (hla_span *) palloc(sizeof(hla_span) * Max(na * nb, 1));
	for (i = 0; i < na; i++)
	{
		for (j = 0; j < nb; j++)
		{
			if (hla_scope_covers(as[i].ptr, as[i].len, bs[j].ptr, bs[j].len))
				out[n++] = bs[j];
			else if (hla_scope_covers(bs[j].ptr, bs[j].len, as[i].ptr, as[i].len))
				out[n++] = as[i];
		}
	}
	n = hla_scopes_canonicalize(out, n);
	minimal = (hla_span *) palloc(sizeof(hla_span) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		covered = false;

		for (j = 0; j < n && !covered; j++)
			covered = (j != i && hla_scope_covers(out[j].ptr, out[j].len, out[i].ptr, out[i].len));
		if (!covered)
			minimal[m++] = out[i];
	}
	if (m > HLA_SCOPES_MAX)
		report_too_many();
	return scopes_build(minimal, m);
}

Datum
scopes_intersect(PG_FUNCTION_ARGS)
{
	PG_RETURN_HLSCOPES_P(HlScopesIntersect(PG_GETARG_HLSCOPES_P(0), PG_GETARG_HLSCOPES_P(1)));
}

/* Does `set` grant every scope of `sub` (each one covered by some scope of set)? */
bool
HlScopesCoversSet(const HlScopes *set, const HlScopes *sub)
{
	hla_span	ss[HLA_SCOPES_MAX];
	int			n = scopes_spans(set, ss);
	const char *p = sub->data;
	int			i;

	for (i = 0; i < sub->count; i++)
	{
		size_t		len = strlen(p);

		if (!hla_scopes_grant(ss, n, p, len))
			return false;
		p += len + 1;
	}
	return true;
}

Datum
scopes_union(PG_FUNCTION_ARGS)
{
	HlScopes   *a = PG_GETARG_HLSCOPES_P(0);
	HlScopes   *b = PG_GETARG_HLSCOPES_P(1);
	hla_span	spans[2 * HLA_SCOPES_MAX];
	int			n = scopes_spans(a, spans);

	n += scopes_spans(b, spans + n);
	n = hla_scopes_canonicalize(spans, n);
	if (n > HLA_SCOPES_MAX)
		report_too_many();
	PG_RETURN_HLSCOPES_P(scopes_build(spans, n));
}

Datum
scopes_count(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(PG_GETARG_HLSCOPES_P(0)->count);
}

Datum
scopes_to_array(PG_FUNCTION_ARGS)
{
	HlScopes   *set = PG_GETARG_HLSCOPES_P(0);
	hla_span	spans[HLA_SCOPES_MAX];
	Datum	   *elems;
	int			n = scopes_spans(set, spans);
	int			i;

	elems = (Datum *) palloc(sizeof(Datum) * Max(n, 1));
	for (i = 0; i < n; i++)
		elems[i] = PointerGetDatum(cstring_to_text_with_len(spans[i].ptr, (int) spans[i].len));
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * text[] -> scopes. Each element must be exactly one scope: an element holding a space
 * ("contacts.read contacts.write") is rejected, never split into two.
 */
Datum
scopes_from_array(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	hla_span	spans[HLA_SCOPES_MAX];

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("a scope array must have one dimension")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n > HLA_SCOPES_MAX)
		report_too_many();
	for (i = 0; i < n; i++)
	{
		text	   *t;
		size_t		errpos;
		hla_scope_error err;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("a scope array cannot contain NULL")));
		t = DatumGetTextPP(elems[i]);
		spans[i].ptr = VARDATA_ANY(t);
		spans[i].len = VARSIZE_ANY_EXHDR(t);
		err = hla_scope_check(spans[i].ptr, spans[i].len, &errpos);
		/* Quote the whole element: it must be exactly one scope. */
		if (err != HLA_SCOPE_OK)
			report_bad_token(spans[i].ptr, spans[i].len, err, errpos);
	}
	n = hla_scopes_canonicalize(spans, n);
	PG_RETURN_HLSCOPES_P(scopes_build(spans, n));
}

/* Is this text exactly one valid scope? Never raises. */
Datum
scope_is_valid(PG_FUNCTION_ARGS)
{
	text	   *q = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(HlScopesIsValidScope(VARDATA_ANY(q), VARSIZE_ANY_EXHDR(q)));
}

/* Equal sets have identical canonical bytes, so hashing the bytes is consistent with =. */
Datum
scopes_hash(PG_FUNCTION_ARGS)
{
	HlScopes   *set = PG_GETARG_HLSCOPES_P(0);

	PG_RETURN_DATUM(hash_any((const unsigned char *) set + VARHDRSZ, VARSIZE(set) - VARHDRSZ));
}
