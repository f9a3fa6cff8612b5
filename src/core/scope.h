/*
 * src/core/scope.h
 *		The scope grammar and matching, in plain C.
 *
 * A scope is `resource(/sub)*.action` built from ASCII segments of [A-Za-z0-9_-],
 * or one of three wildcard forms where `*` is a whole segment and the last one:
 *		`*`				every scope
 *		`contacts.*`	any action on exactly the resource `contacts`
 *		`calendars/` + `*`	any scope on a sub-resource of `calendars` (calendars/events.write)
 * Matching is exact and case-sensitive: nothing is folded or normalised.
 *
 * This file must never include postgres.h, allocate memory, or read outside the bounds
 * it is given: it is unit-tested and fuzzed on its own (test/unit, test/fuzz).
 */
#ifndef HLAUTH_CORE_SCOPE_H
#define HLAUTH_CORE_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

#define HLA_SCOPE_MAX_LEN		128		/* bytes in one scope */
#define HLA_SCOPE_MAX_SEGMENTS	8		/* resource path segments in one scope */
#define HLA_SCOPES_MAX			256		/* scopes in one set */

typedef enum hla_scope_error
{
	HLA_SCOPE_OK = 0,
	HLA_SCOPE_EMPTY,			/* zero-length scope */
	HLA_SCOPE_TOO_LONG,			/* longer than HLA_SCOPE_MAX_LEN */
	HLA_SCOPE_BAD_CHAR,			/* a byte outside [A-Za-z0-9_-/.*] */
	HLA_SCOPE_EMPTY_SEGMENT,	/* "a//b.x", "/a.x", "a/.x", "a/" */
	HLA_SCOPE_NO_ACTION,		/* no ".action" */
	HLA_SCOPE_EMPTY_ACTION,		/* trailing "." */
	HLA_SCOPE_EXTRA_DOT,		/* a second "." */
	HLA_SCOPE_SLASH_IN_ACTION,	/* "a.b/c": the action must be the last segment */
	HLA_SCOPE_BAD_WILDCARD,		/* "*" inside a segment or not in the last position */
	HLA_SCOPE_TOO_DEEP,			/* more than HLA_SCOPE_MAX_SEGMENTS path segments */
	HLA_SCOPE_TOO_MANY			/* a set of more than HLA_SCOPES_MAX scopes */
} hla_scope_error;

typedef enum hla_scope_kind
{
	HLA_SCOPE_EXACT,			/* contacts.readonly */
	HLA_SCOPE_ANY_ACTION,		/* contacts.* */
	HLA_SCOPE_SUBTREE,			/* calendars/ followed by a star */
	HLA_SCOPE_ALL				/* a lone star */
} hla_scope_kind;

/* A slice of a caller-owned buffer. */
typedef struct hla_span
{
	const char *ptr;
	size_t		len;
} hla_span;

/*
 * Validate one scope of `len` bytes (it need not be NUL-terminated; a NUL byte is a
 * bad character). On error, *errpos (if not NULL) is the byte offset where it went wrong.
 */
extern hla_scope_error hla_scope_check(const char *s, size_t len, size_t *errpos);

/* A human sentence for an error, for errdetail. Never NULL. */
extern const char *hla_scope_error_text(hla_scope_error err);

/* The kind of a scope already accepted by hla_scope_check. */
extern hla_scope_kind hla_scope_kind_of(const char *s, size_t len);

/* Does pattern p grant everything q names? Both must be valid scopes. */
extern bool hla_scope_covers(const char *p, size_t plen, const char *q, size_t qlen);

/* Is there a concrete scope that both p and q grant? Both must be valid. */
extern bool hla_scope_overlaps(const char *p, size_t plen, const char *q, size_t qlen);

/*
 * Split a set written as scopes separated by one or more ASCII spaces, validating each.
 * Fills out[0..max) with spans into s. Returns the number of scopes, or -1 on error with
 * *err set and *errpos the byte offset into s where it went wrong.
 */
extern int	hla_scopes_parse(const char *s, size_t len, hla_span *out, int max,
							 hla_scope_error *err, size_t *errpos);

/* Bytewise order of two spans (shorter first on a common prefix). */
extern int	hla_span_cmp(const hla_span *a, const hla_span *b);

/* Sort spans bytewise and drop exact duplicates, in place. Returns the new count. */
extern int	hla_scopes_canonicalize(hla_span *spans, int n);

/* Does some scope in the set grant q? */
extern bool hla_scopes_grant(const hla_span *set, int n, const char *q, size_t qlen);

#endif							/* HLAUTH_CORE_SCOPE_H */
