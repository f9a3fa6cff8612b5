/*
 * test/unit/test_scope.c
 *		cmocka unit tests for the pure-C scope core (src/core/scope.h, scope.c).
 *
 * Every assertion names the input that failed, so a failure message is enough to
 * reproduce it. Inputs that contain non-printable bytes are written with explicit
 * lengths and shown escaped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "scope.h"

#define ARRAY_LEN(a) ((int) (sizeof(a) / sizeof((a)[0])))
/* Length of a string literal, counting embedded NUL bytes. */
#define LIT(s) (s), (sizeof(s) - 1)

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */
/* ------------------------------------------------------------------------ */

static const char *
err_name(hla_scope_error e)
{
	switch (e)
	{
		case HLA_SCOPE_OK: return "OK";
		case HLA_SCOPE_EMPTY: return "EMPTY";
		case HLA_SCOPE_TOO_LONG: return "TOO_LONG";
		case HLA_SCOPE_BAD_CHAR: return "BAD_CHAR";
		case HLA_SCOPE_EMPTY_SEGMENT: return "EMPTY_SEGMENT";
		case HLA_SCOPE_NO_ACTION: return "NO_ACTION";
		case HLA_SCOPE_EMPTY_ACTION: return "EMPTY_ACTION";
		case HLA_SCOPE_EXTRA_DOT: return "EXTRA_DOT";
		case HLA_SCOPE_SLASH_IN_ACTION: return "SLASH_IN_ACTION";
		case HLA_SCOPE_BAD_WILDCARD: return "BAD_WILDCARD";
		case HLA_SCOPE_TOO_DEEP: return "TOO_DEEP";
		case HLA_SCOPE_TOO_MANY: return "TOO_MANY";
	}
	return "?";
}

static const char *
kind_name(hla_scope_kind k)
{
	switch (k)
	{
		case HLA_SCOPE_EXACT: return "EXACT";
		case HLA_SCOPE_ANY_ACTION: return "ANY_ACTION";
		case HLA_SCOPE_SUBTREE: return "SUBTREE";
		case HLA_SCOPE_ALL: return "ALL";
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

static void
check_at(const char *s, size_t len, hla_scope_error want, size_t want_pos,
		 const char *file, int line)
{
	size_t		pos = (size_t) -1;
	hla_scope_error got = hla_scope_check(s, len, &pos);

	if (got != want || (want != HLA_SCOPE_OK && pos != want_pos))
	{
		if (want == HLA_SCOPE_OK)
			print_error("hla_scope_check(\"%s\", %zu) = %s at %zu, want OK\n",
						show(s, len), len, err_name(got), pos);
		else
			print_error("hla_scope_check(\"%s\", %zu) = %s at %zu, want %s at %zu\n",
						show(s, len), len, err_name(got), pos, err_name(want), want_pos);
		_fail(file, line);
	}
}

/* A valid scope, given as a C string. */
#define OK(s) check_at((s), strlen(s), HLA_SCOPE_OK, 0, __FILE__, __LINE__)
/* An invalid scope given as a C string, with its error and position. */
#define BAD(s, e, p) check_at((s), strlen(s), (e), (p), __FILE__, __LINE__)
/* An invalid scope given as a literal that may hold NUL bytes. */
#define BADN(lit, e, p) check_at(LIT(lit), (e), (p), __FILE__, __LINE__)

static bool
covers_s(const char *p, const char *q)
{
	return hla_scope_covers(p, strlen(p), q, strlen(q));
}

static bool
overlaps_s(const char *p, const char *q)
{
	return hla_scope_overlaps(p, strlen(p), q, strlen(q));
}

static void
check_covers(const char *p, const char *q, bool want, const char *file, int line)
{
	bool		got = covers_s(p, q);

	if (got != want)
	{
		print_error("hla_scope_covers(\"%s\", \"%s\") = %s, want %s\n",
					p, q, got ? "true" : "false", want ? "true" : "false");
		_fail(file, line);
	}
}

#define COVERS(p, q) check_covers((p), (q), true, __FILE__, __LINE__)
#define NOT_COVERS(p, q) check_covers((p), (q), false, __FILE__, __LINE__)

static void
check_overlaps(const char *p, const char *q, bool want, const char *file, int line)
{
	bool		pq = overlaps_s(p, q);
	bool		qp = overlaps_s(q, p);

	if (pq != want || qp != want)
	{
		print_error("hla_scope_overlaps(\"%s\", \"%s\") = %s, reversed = %s, want %s\n",
					p, q, pq ? "true" : "false", qp ? "true" : "false",
					want ? "true" : "false");
		_fail(file, line);
	}
}

#define OVERLAPS(p, q) check_overlaps((p), (q), true, __FILE__, __LINE__)
#define DISJOINT(p, q) check_overlaps((p), (q), false, __FILE__, __LINE__)

static bool
span_is(const hla_span *sp, const char *s)
{
	return sp->len == strlen(s) && memcmp(sp->ptr, s, sp->len) == 0;
}

static void
check_span(const hla_span *sp, const char *base, size_t off, const char *text,
		   const char *file, int line)
{
	if (sp->ptr != base + off || !span_is(sp, text))
	{
		print_error("span at offset %td len %zu \"%s\", want offset %zu \"%s\"\n",
					sp->ptr - base, sp->len, show(sp->ptr, sp->len), off, text);
		_fail(file, line);
	}
}

#define SPAN(sp, base, off, text) check_span((sp), (base), (off), (text), __FILE__, __LINE__)

/* The valid scopes the platform actually uses. */
static const char *const platform_scopes[] = {
	"contacts.readonly",
	"contacts.write",
	"calendars/events.write",
	"calendars/events.readonly",
	"locations/customValues.readonly",
	"locations/customValues.write",
	"conversation-ai.readonly",
	"saas/company.write",
	"voice-ai-agent-goals.write",
	"phonenumbers.read",
	"users.read",
};

/* ------------------------------------------------------------------------ */
/* hla_scope_check: valid scopes                                            */
/* ------------------------------------------------------------------------ */

static void
test_check_platform_scopes(void **state)
{
	int			i;

	(void) state;
	for (i = 0; i < ARRAY_LEN(platform_scopes); i++)
		OK(platform_scopes[i]);
	OK("contacts.readonly");
	OK("calendars/events.write");
	OK("locations/customValues.readonly");
	OK("conversation-ai.readonly");
	OK("saas/company.write");
	OK("voice-ai-agent-goals.write");
	OK("phonenumbers.read");
}

static void
test_check_wildcards_ok(void **state)
{
	(void) state;
	OK("*");
	OK("contacts.*");
	OK("calendars/*");
	OK("calendars/events.*");
	OK("calendars/events/*");
	OK("a.*");
	OK("a/*");
	OK("a/b/c/d/e/f/g/*");		/* 7 segments + the wildcard segment */
	OK("a/b/c/d/e/f/g/h.*");	/* 8 path segments + any action */
}

static void
test_check_charset_ok(void **state)
{
	(void) state;
	OK("a.b");
	OK("A.B");
	OK("0.9");
	OK("_._");
	OK("-.-");
	OK("ABCxyz_019-.Read_Only-2");
	OK("a-b/c_d/E9.x-Y_z");
}

static void
test_check_ignores_errpos_null(void **state)
{
	(void) state;
	assert_int_equal(hla_scope_check("contacts.readonly", 17, NULL), HLA_SCOPE_OK);
	assert_int_equal(hla_scope_check("contacts", 8, NULL), HLA_SCOPE_NO_ACTION);
	assert_int_equal(hla_scope_check("", 0, NULL), HLA_SCOPE_EMPTY);
}

/* Only len bytes are looked at: the rest of the buffer must not matter. */
static void
test_check_respects_len(void **state)
{
	size_t		pos = 99;
	char		buf[32];

	(void) state;
	/* A valid prefix followed by garbage. */
	assert_int_equal(hla_scope_check("contacts.readonly garbage\t\xff", 17, &pos), HLA_SCOPE_OK);
	/* A valid string cut short. */
	assert_int_equal(hla_scope_check("contacts.readonly", 8, &pos), HLA_SCOPE_NO_ACTION);
	assert_int_equal(pos, 8);
	assert_int_equal(hla_scope_check("contacts.readonly", 9, &pos), HLA_SCOPE_EMPTY_ACTION);
	assert_int_equal(pos, 9);
	assert_int_equal(hla_scope_check("contacts.*", 9, &pos), HLA_SCOPE_EMPTY_ACTION);
	assert_int_equal(hla_scope_check("**", 1, &pos), HLA_SCOPE_OK);
	assert_int_equal(hla_scope_check("a.b", 0, &pos), HLA_SCOPE_EMPTY);
	assert_int_equal(pos, 0);

	/* Not NUL-terminated at all. */
	memcpy(buf, "users.read", 10);
	memset(buf + 10, '?', sizeof(buf) - 10);
	assert_int_equal(hla_scope_check(buf, 10, &pos), HLA_SCOPE_OK);
	assert_int_equal(hla_scope_check(buf, 11, &pos), HLA_SCOPE_BAD_CHAR);
	assert_int_equal(pos, 10);
}

/* ------------------------------------------------------------------------ */
/* hla_scope_check: errors, with positions                                  */
/* ------------------------------------------------------------------------ */

static void
test_check_empty(void **state)
{
	(void) state;
	BAD("", HLA_SCOPE_EMPTY, 0);
	check_at("contacts.readonly", 0, HLA_SCOPE_EMPTY, 0, __FILE__, __LINE__);
}

static void
test_check_length_limit(void **state)
{
	char		s[HLA_SCOPE_MAX_LEN + 64];

	(void) state;
	/* 128 bytes: "aaa...a.b" */
	memset(s, 'a', sizeof(s));
	s[HLA_SCOPE_MAX_LEN - 2] = '.';
	s[HLA_SCOPE_MAX_LEN - 1] = 'b';
	check_at(s, HLA_SCOPE_MAX_LEN, HLA_SCOPE_OK, 0, __FILE__, __LINE__);

	/* 129 bytes: "aaa...a.b" one longer */
	memset(s, 'a', sizeof(s));
	s[HLA_SCOPE_MAX_LEN - 1] = '.';
	s[HLA_SCOPE_MAX_LEN] = 'b';
	check_at(s, HLA_SCOPE_MAX_LEN + 1, HLA_SCOPE_TOO_LONG, 128, __FILE__, __LINE__);

	/* far longer */
	check_at(s, sizeof(s), HLA_SCOPE_TOO_LONG, 128, __FILE__, __LINE__);

	/* 128 bytes as a subtree wildcard */
	memset(s, 'a', sizeof(s));
	s[HLA_SCOPE_MAX_LEN - 2] = '/';
	s[HLA_SCOPE_MAX_LEN - 1] = '*';
	check_at(s, HLA_SCOPE_MAX_LEN, HLA_SCOPE_OK, 0, __FILE__, __LINE__);
	memset(s, 'a', sizeof(s));
	s[HLA_SCOPE_MAX_LEN - 1] = '/';
	s[HLA_SCOPE_MAX_LEN] = '*';
	check_at(s, HLA_SCOPE_MAX_LEN + 1, HLA_SCOPE_TOO_LONG, 128, __FILE__, __LINE__);
}

static void
test_check_bad_chars(void **state)
{
	(void) state;
	BAD("contacts readonly", HLA_SCOPE_BAD_CHAR, 8);
	BAD(" contacts.readonly", HLA_SCOPE_BAD_CHAR, 0);
	BAD("contacts.readonly ", HLA_SCOPE_BAD_CHAR, 17);
	BAD("contacts.\treadonly", HLA_SCOPE_BAD_CHAR, 9);
	BAD("\tcontacts.readonly", HLA_SCOPE_BAD_CHAR, 0);
	BAD("contacts.readonly\n", HLA_SCOPE_BAD_CHAR, 17);
	BAD("contacts.readonly\r", HLA_SCOPE_BAD_CHAR, 17);
	BAD("contacts:readonly", HLA_SCOPE_BAD_CHAR, 8);
	BAD("contacts.read+only", HLA_SCOPE_BAD_CHAR, 13);
	BAD("contacts.read,only", HLA_SCOPE_BAD_CHAR, 13);
	BAD("a\\b.c", HLA_SCOPE_BAD_CHAR, 1);
	BAD("a@b.c", HLA_SCOPE_BAD_CHAR, 1);
	BAD("a%2Fb.c", HLA_SCOPE_BAD_CHAR, 1);
	BAD("a.b?", HLA_SCOPE_BAD_CHAR, 3);
	BAD("a.b\x7f", HLA_SCOPE_BAD_CHAR, 3);
	BAD("a.b\x01", HLA_SCOPE_BAD_CHAR, 3);

	/* NUL bytes inside the given length */
	BADN("contacts\0.readonly", HLA_SCOPE_BAD_CHAR, 8);
	BADN("contacts.readonly\0", HLA_SCOPE_BAD_CHAR, 17);
	BADN("\0", HLA_SCOPE_BAD_CHAR, 0);
	BADN("a.b\0\0", HLA_SCOPE_BAD_CHAR, 3);

	/* The first bad byte is reported, even before a structural error. */
	BAD("a..b c", HLA_SCOPE_BAD_CHAR, 4);
	BAD("*.x y", HLA_SCOPE_BAD_CHAR, 3);
}

static void
test_check_non_ascii(void **state)
{
	(void) state;
	/* "c" + CYRILLIC SMALL LETTER O (U+043E, D0 BE) + "ntacts.readonly" */
	BAD("c\xD0\xBE" "ntacts.readonly", HLA_SCOPE_BAD_CHAR, 1);
	/* CYRILLIC SMALL LETTER ES (U+0441) + CYRILLIC O + "ntacts.readonly" */
	BAD("\xD1\x81\xD0\xBE" "ntacts.readonly", HLA_SCOPE_BAD_CHAR, 0);
	/* "contacts.read" + CYRILLIC SMALL LETTER O + "nly" */
	BAD("contacts.read\xD0\xBE" "nly", HLA_SCOPE_BAD_CHAR, 13);
	/* NO-BREAK SPACE (U+00A0, C2 A0) */
	BAD("contacts.readonly\xC2\xA0", HLA_SCOPE_BAD_CHAR, 17);
	BAD("contacts\xC2\xA0.readonly", HLA_SCOPE_BAD_CHAR, 8);
	BAD("\xC2\xA0" "contacts.readonly", HLA_SCOPE_BAD_CHAR, 0);
	/* FULLWIDTH FULL STOP (U+FF0E, EF BC 8E) in place of "." */
	BAD("contacts\xEF\xBC\x8E" "readonly", HLA_SCOPE_BAD_CHAR, 8);
	/* Latin-1 and lone high bytes */
	BAD("caf\xE9.read", HLA_SCOPE_BAD_CHAR, 3);
	BAD("a.b\x80", HLA_SCOPE_BAD_CHAR, 3);
	BAD("a.b\xFF", HLA_SCOPE_BAD_CHAR, 3);
}

/* Every byte value, in the middle of an otherwise valid scope "x?y.z". */
static void
test_check_every_byte(void **state)
{
	int			c;

	(void) state;
	for (c = 0; c < 256; c++)
	{
		char		s[5] = {'x', (char) c, 'y', '.', 'z'};
		bool		seg = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || c == '-';

		if (seg || c == '/')
			check_at(s, 5, HLA_SCOPE_OK, 0, __FILE__, __LINE__);
		else if (c == '.')
			check_at(s, 5, HLA_SCOPE_EXTRA_DOT, 3, __FILE__, __LINE__);
		else if (c == '*')
			check_at(s, 5, HLA_SCOPE_BAD_WILDCARD, 1, __FILE__, __LINE__);
		else
			check_at(s, 5, HLA_SCOPE_BAD_CHAR, 1, __FILE__, __LINE__);
	}
}

static void
test_check_empty_segments(void **state)
{
	(void) state;
	BAD("contacts..read", HLA_SCOPE_EMPTY_SEGMENT, 9);
	BAD("/a.b", HLA_SCOPE_EMPTY_SEGMENT, 0);
	BAD("a//b.c", HLA_SCOPE_EMPTY_SEGMENT, 2);
	BAD("a/.x", HLA_SCOPE_EMPTY_SEGMENT, 2);
	BAD("a/", HLA_SCOPE_EMPTY_SEGMENT, 2);
	BAD("a/b/", HLA_SCOPE_EMPTY_SEGMENT, 4);
	BAD(".x", HLA_SCOPE_EMPTY_SEGMENT, 0);
	BAD(".", HLA_SCOPE_EMPTY_SEGMENT, 0);
	BAD("/", HLA_SCOPE_EMPTY_SEGMENT, 0);
	BAD("//", HLA_SCOPE_EMPTY_SEGMENT, 0);
	BAD("/*", HLA_SCOPE_EMPTY_SEGMENT, 0);
	BAD(".*", HLA_SCOPE_EMPTY_SEGMENT, 0);
	BAD("a./b", HLA_SCOPE_EMPTY_SEGMENT, 2);
	BAD("calendars//events.write", HLA_SCOPE_EMPTY_SEGMENT, 10);
}

static void
test_check_empty_action(void **state)
{
	(void) state;
	BAD("contacts.", HLA_SCOPE_EMPTY_ACTION, 9);
	BAD("a.", HLA_SCOPE_EMPTY_ACTION, 2);
	BAD("calendars/events.", HLA_SCOPE_EMPTY_ACTION, 17);
}

static void
test_check_no_action(void **state)
{
	(void) state;
	BAD("contacts", HLA_SCOPE_NO_ACTION, 8);
	BAD("a", HLA_SCOPE_NO_ACTION, 1);
	BAD("calendars/events", HLA_SCOPE_NO_ACTION, 16);
	BAD("a/b/c", HLA_SCOPE_NO_ACTION, 5);
}

static void
test_check_extra_dot(void **state)
{
	(void) state;
	BAD("a.b.c", HLA_SCOPE_EXTRA_DOT, 3);
	BAD("contacts.read.only", HLA_SCOPE_EXTRA_DOT, 13);
	BAD("a/b.c.d", HLA_SCOPE_EXTRA_DOT, 5);
	BAD("a.b.", HLA_SCOPE_EXTRA_DOT, 3);
	BAD("a.b.*", HLA_SCOPE_EXTRA_DOT, 3);
}

static void
test_check_slash_in_action(void **state)
{
	(void) state;
	BAD("a.b/c", HLA_SCOPE_SLASH_IN_ACTION, 3);
	BAD("contacts.read/x", HLA_SCOPE_SLASH_IN_ACTION, 13);
	BAD("a.b/", HLA_SCOPE_SLASH_IN_ACTION, 3);
	BAD("a.b/*", HLA_SCOPE_SLASH_IN_ACTION, 3);
	BAD("calendars/events.write/x.y", HLA_SCOPE_SLASH_IN_ACTION, 22);
}

static void
test_check_bad_wildcards(void **state)
{
	(void) state;
	BAD("*.read", HLA_SCOPE_BAD_WILDCARD, 0);
	BAD("a/*.read", HLA_SCOPE_BAD_WILDCARD, 2);
	BAD("con*tacts.read", HLA_SCOPE_BAD_WILDCARD, 3);
	BAD("a.b*", HLA_SCOPE_BAD_WILDCARD, 3);
	BAD("*/x.y", HLA_SCOPE_BAD_WILDCARD, 0);
	BAD("**", HLA_SCOPE_BAD_WILDCARD, 0);
	BAD("*a", HLA_SCOPE_BAD_WILDCARD, 0);
	BAD("a*", HLA_SCOPE_BAD_WILDCARD, 1);
	BAD("*.", HLA_SCOPE_BAD_WILDCARD, 0);
	BAD("*/", HLA_SCOPE_BAD_WILDCARD, 0);
	BAD("*/*", HLA_SCOPE_BAD_WILDCARD, 0);
	BAD("a.**", HLA_SCOPE_BAD_WILDCARD, 2);
	BAD("a/**", HLA_SCOPE_BAD_WILDCARD, 2);
	BAD("a.*b", HLA_SCOPE_BAD_WILDCARD, 2);
	BAD("a.b*c", HLA_SCOPE_BAD_WILDCARD, 3);
	BAD("a/b*", HLA_SCOPE_BAD_WILDCARD, 3);
	BAD("a/*/b.c", HLA_SCOPE_BAD_WILDCARD, 2);
	BAD("a.*/b", HLA_SCOPE_BAD_WILDCARD, 2);
	BAD("a.*.", HLA_SCOPE_BAD_WILDCARD, 2);
	BAD("contacts*.read", HLA_SCOPE_BAD_WILDCARD, 8);
}

static void
test_check_depth(void **state)
{
	(void) state;
	/* 8 path segments are fine */
	OK("a/b/c/d/e/f/g/h.x");
	OK("aa/bb/cc/dd/ee/ff/gg/hh.read");
	/* 9 are not; the position is the start of the 9th */
	BAD("a/b/c/d/e/f/g/h/i.x", HLA_SCOPE_TOO_DEEP, 16);
	BAD("aa/bb/cc/dd/ee/ff/gg/hh/ii.read", HLA_SCOPE_TOO_DEEP, 24);
	BAD("a/b/c/d/e/f/g/h/i.*", HLA_SCOPE_TOO_DEEP, 16);
	BAD("a/b/c/d/e/f/g/h/i/j/k.x", HLA_SCOPE_TOO_DEEP, 16);
	/* A trailing "*" is a whole segment: 8 named segments plus "*" is 9. */
	BAD("a/b/c/d/e/f/g/h/*", HLA_SCOPE_TOO_DEEP, 16);
	BAD("a/b/c/d/e/f/g/h/i/*", HLA_SCOPE_TOO_DEEP, 16);
}

/* ------------------------------------------------------------------------ */
/* hla_scope_kind_of                                                        */
/* ------------------------------------------------------------------------ */

static void
check_kind(const char *s, size_t len, hla_scope_kind want, const char *file, int line)
{
	hla_scope_kind got = hla_scope_kind_of(s, len);

	if (got != want)
	{
		print_error("hla_scope_kind_of(\"%s\") = %s, want %s\n",
					show(s, len), kind_name(got), kind_name(want));
		_fail(file, line);
	}
}

#define KIND(s, k) check_kind((s), strlen(s), (k), __FILE__, __LINE__)

static void
test_kind_of(void **state)
{
	int			i;

	(void) state;
	for (i = 0; i < ARRAY_LEN(platform_scopes); i++)
		KIND(platform_scopes[i], HLA_SCOPE_EXACT);
	KIND("a.b", HLA_SCOPE_EXACT);
	KIND("a/b/c.d", HLA_SCOPE_EXACT);
	KIND("*", HLA_SCOPE_ALL);
	KIND("contacts.*", HLA_SCOPE_ANY_ACTION);
	KIND("a.*", HLA_SCOPE_ANY_ACTION);
	KIND("calendars/events.*", HLA_SCOPE_ANY_ACTION);
	KIND("calendars/*", HLA_SCOPE_SUBTREE);
	KIND("a/*", HLA_SCOPE_SUBTREE);
	KIND("calendars/events/*", HLA_SCOPE_SUBTREE);
	/* bounded by len, not by NUL */
	check_kind("*.x", 1, HLA_SCOPE_ALL, __FILE__, __LINE__);
	check_kind("a.*/b.c", 3, HLA_SCOPE_ANY_ACTION, __FILE__, __LINE__);
	check_kind("a/*.c", 3, HLA_SCOPE_SUBTREE, __FILE__, __LINE__);
	check_kind("a.b*", 3, HLA_SCOPE_EXACT, __FILE__, __LINE__);
}

/* ------------------------------------------------------------------------ */
/* hla_scope_covers                                                         */
/* ------------------------------------------------------------------------ */

static void
test_covers_exact(void **state)
{
	int			i,
				j;

	(void) state;
	for (i = 0; i < ARRAY_LEN(platform_scopes); i++)
		for (j = 0; j < ARRAY_LEN(platform_scopes); j++)
			check_covers(platform_scopes[i], platform_scopes[j], i == j, __FILE__, __LINE__);

	COVERS("contacts.readonly", "contacts.readonly");
	NOT_COVERS("contacts.readonly", "contacts.write");
	NOT_COVERS("contacts.readonly", "contacts.readonlyx");
	NOT_COVERS("contacts.readonlyx", "contacts.readonly");
	NOT_COVERS("contacts.read", "contacts.readonly");
	NOT_COVERS("contacts.readonly", "contacts.read");
	NOT_COVERS("contacts.readonly", "contacts/x.readonly");
	NOT_COVERS("contacts/x.readonly", "contacts.readonly");
	/* an exact scope covers no wildcard, not even one of its own resource */
	NOT_COVERS("contacts.readonly", "contacts.*");
	NOT_COVERS("contacts.readonly", "contacts/*");
	NOT_COVERS("contacts.readonly", "*");
	/* same bytes in a different place are not the same scope */
	NOT_COVERS("a/b.c", "a.b");
	NOT_COVERS("a.bc", "ab.c");
}

static void
test_covers_case_sensitive(void **state)
{
	(void) state;
	NOT_COVERS("Contacts.readonly", "contacts.readonly");
	NOT_COVERS("contacts.readonly", "Contacts.readonly");
	NOT_COVERS("contacts.READONLY", "contacts.readonly");
	NOT_COVERS("contacts.readonly", "contacts.readOnly");
	NOT_COVERS("Contacts.*", "contacts.readonly");
	NOT_COVERS("contacts.*", "Contacts.readonly");
	NOT_COVERS("Calendars/*", "calendars/events.write");
	NOT_COVERS("calendars/*", "Calendars/events.write");
	NOT_COVERS("locations/customvalues.readonly", "locations/customValues.readonly");
	DISJOINT("Contacts.readonly", "contacts.readonly");
	DISJOINT("Contacts.*", "contacts.*");
}

static void
test_covers_any_action(void **state)
{
	(void) state;
	COVERS("contacts.*", "contacts.write");
	COVERS("contacts.*", "contacts.readonly");
	COVERS("contacts.*", "contacts.*");
	COVERS("calendars/events.*", "calendars/events.write");
	NOT_COVERS("contacts.*", "contacts/notes.write");
	NOT_COVERS("contacts.*", "contacts/notes.*");
	NOT_COVERS("contacts.*", "contacts/*");
	NOT_COVERS("contacts.*", "contactsx.write");
	NOT_COVERS("contacts.*", "contacts-x.write");
	NOT_COVERS("contacts.*", "contacts_.write");
	NOT_COVERS("contacts.*", "contactsx.*");
	NOT_COVERS("contacts.*", "contact.write");
	NOT_COVERS("contacts.*", "contact.*");
	NOT_COVERS("contacts.*", "calendars.write");
	NOT_COVERS("contacts.*", "*");
	NOT_COVERS("calendars/events.*", "calendars.write");
	NOT_COVERS("calendars/events.*", "calendars/events/x.write");
	NOT_COVERS("calendars/events.*", "calendars/*");
	NOT_COVERS("a.*", "a/b.c");
	NOT_COVERS("a/b.*", "a.b");
	NOT_COVERS("a/b.*", "a.*");
	/* exact scopes do not cover their wildcard */
	NOT_COVERS("contacts.write", "contacts.*");
}

static void
test_covers_subtree(void **state)
{
	(void) state;
	COVERS("calendars/*", "calendars/events.write");
	COVERS("calendars/*", "calendars/a/b.read");
	COVERS("calendars/*", "calendars/x/*");
	COVERS("calendars/*", "calendars/*");
	COVERS("calendars/*", "calendars/events.*");
	COVERS("calendars/*", "calendars/a/b/c/d/e/f/g.x");
	COVERS("a/*", "a/b.c");
	COVERS("a/b/*", "a/b/c.d");
	COVERS("a/b/*", "a/b/c/*");
	NOT_COVERS("calendars/*", "calendars.write");
	NOT_COVERS("calendars/*", "calendars.*");
	NOT_COVERS("calendars/*", "calendarsx/a.b");
	NOT_COVERS("calendars/*", "calendarsx/*");
	NOT_COVERS("calendars/*", "calendars-x/a.b");
	NOT_COVERS("calendars/*", "calendar/a.b");
	NOT_COVERS("calendars/*", "calendar/*");
	NOT_COVERS("calendars/*", "contacts/events.write");
	NOT_COVERS("calendars/*", "*");
	NOT_COVERS("calendars/x/*", "calendars/*");
	NOT_COVERS("calendars/x/*", "calendars/y.z");
	NOT_COVERS("calendars/x/*", "calendars/x.z");
	NOT_COVERS("calendars/x/*", "calendars/xy/z.w");
	NOT_COVERS("a/b/*", "a/*");
	NOT_COVERS("a/b/*", "a/b.c");
	NOT_COVERS("a/b/*", "a/bc/d.e");
	NOT_COVERS("calendars/events.write", "calendars/*");
	NOT_COVERS("calendars/events.*", "calendars/events/*");
	NOT_COVERS("calendars/events/*", "calendars/events.*");
	NOT_COVERS("calendars/events/*", "calendars/events.write");
}

static void
test_covers_all(void **state)
{
	int			i;
	static const char *const others[] = {
		"contacts.*", "calendars/*", "a.b", "a/b/c/d/e/f/g/h.x", "a/b/c/d/e/f/g/*",
	};

	(void) state;
	COVERS("*", "*");
	for (i = 0; i < ARRAY_LEN(platform_scopes); i++)
	{
		COVERS("*", platform_scopes[i]);
		NOT_COVERS(platform_scopes[i], "*");
	}
	for (i = 0; i < ARRAY_LEN(others); i++)
	{
		COVERS("*", others[i]);
		NOT_COVERS(others[i], "*");
	}
}

static void
test_overlaps(void **state)
{
	int			i;

	(void) state;
	OVERLAPS("contacts.readonly", "contacts.readonly");
	DISJOINT("contacts.readonly", "contacts.write");
	OVERLAPS("contacts.*", "contacts.write");
	OVERLAPS("contacts.*", "contacts.*");
	DISJOINT("contacts.*", "contactsx.write");
	DISJOINT("contacts.*", "contacts/notes.write");
	DISJOINT("contacts.*", "contacts/*");
	DISJOINT("contacts.*", "calendars/*");
	DISJOINT("contacts.*", "calendars.*");
	OVERLAPS("calendars/*", "calendars/events.write");
	OVERLAPS("calendars/*", "calendars/events.*");
	OVERLAPS("calendars/*", "calendars/x/*");
	OVERLAPS("calendars/x/*", "calendars/x/y.z");
	DISJOINT("calendars/*", "calendars.write");
	DISJOINT("calendars/*", "calendarsx/a.b");
	DISJOINT("calendars/x/*", "calendars/y/*");
	DISJOINT("calendars/x/*", "calendars/x.*");
	DISJOINT("calendars/x/*", "calendars/xy/*");
	DISJOINT("a.b", "a.c");
	OVERLAPS("*", "*");
	for (i = 0; i < ARRAY_LEN(platform_scopes); i++)
		OVERLAPS("*", platform_scopes[i]);
	OVERLAPS("*", "calendars/*");
	OVERLAPS("*", "contacts.*");
}

/*
 * Algebraic properties over a pool of valid scopes, and a cross-check of covers()
 * against an independent reference matcher on concrete (exact) scopes.
 */
static const char *const pool[] = {
	"*",
	"a.b", "a.c", "a.*", "a/*", "a/b.c", "a/b.*", "a/b/*", "a/b/c.d", "a/b/c/*",
	"a/bc.d", "a/bc/*", "ab.c", "ab/*", "ab.*", "b.a", "b/*", "b/a.b",
	"A.b", "A/*", "a-.b", "a_/x.y",
	"contacts.readonly", "contacts.write", "contacts.*", "contacts/*",
	"contacts/notes.write", "contacts/notes.*", "contactsx.write", "Contacts.readonly",
	"calendars/*", "calendars.write", "calendars/events.write", "calendars/events.*",
	"calendars/events/*", "calendars/events/x.y", "calendars/a/b.read", "calendarsx/a.b",
	"locations/customValues.readonly", "saas/company.write", "voice-ai-agent-goals.write",
	"a/b/c/d/e/f/g/h.x", "a/b/c/d/e/f/g/h.*", "a/b/c/d/e/f/g/*", "a/b/c/d/e/f/*",
};

/* Reference: does pattern p match the concrete scope c? Written from the grammar. */
static bool
ref_match(const char *p, const char *c)
{
	size_t		pl = strlen(p);
	const char *cdot = strchr(c, '.');
	size_t		cpath = (size_t) (cdot - c);

	if (strcmp(p, "*") == 0)
		return true;
	if (pl >= 2 && p[pl - 2] == '.' && p[pl - 1] == '*')
		return cpath == pl - 2 && strncmp(p, c, pl - 2) == 0;
	if (pl >= 2 && p[pl - 2] == '/' && p[pl - 1] == '*')
		return cpath > pl - 1 && strncmp(p, c, pl - 1) == 0;
	return strcmp(p, c) == 0;
}

static bool
is_concrete(const char *s)
{
	return strchr(s, '*') == NULL;
}

static void
test_pool_is_valid(void **state)
{
	int			i;

	(void) state;
	for (i = 0; i < ARRAY_LEN(pool); i++)
		OK(pool[i]);
}

static void
test_covers_properties(void **state)
{
	int			i,
				j,
				k;
	int			n = ARRAY_LEN(pool);

	(void) state;
	for (i = 0; i < n; i++)
	{
		/* reflexive */
		COVERS(pool[i], pool[i]);
		for (j = 0; j < n; j++)
		{
			bool		ij = covers_s(pool[i], pool[j]);
			bool		ji = covers_s(pool[j], pool[i]);
			bool		ov = overlaps_s(pool[i], pool[j]);

			/* antisymmetric */
			if (ij && ji && i != j)
				fail_msg("\"%s\" and \"%s\" cover each other", pool[i], pool[j]);
			/* overlaps is symmetric, and in this grammar means "one covers the other" */
			if (ov != overlaps_s(pool[j], pool[i]))
				fail_msg("overlaps(\"%s\", \"%s\") is not symmetric", pool[i], pool[j]);
			if (ov != (ij || ji))
				fail_msg("overlaps(\"%s\", \"%s\") = %d but covers = %d/%d",
						 pool[i], pool[j], ov, ij, ji);
			/* transitive */
			if (!ij)
				continue;
			for (k = 0; k < n; k++)
				if (covers_s(pool[j], pool[k]) && !covers_s(pool[i], pool[k]))
					fail_msg("\"%s\" covers \"%s\" covers \"%s\", but not transitively",
							 pool[i], pool[j], pool[k]);
		}
	}
}

static void
test_covers_matches_reference(void **state)
{
	int			i,
				j,
				k;
	int			n = ARRAY_LEN(pool);

	(void) state;
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
		{
			if (!is_concrete(pool[j]))
				continue;
			if (covers_s(pool[i], pool[j]) != ref_match(pool[i], pool[j]))
				fail_msg("covers(\"%s\", \"%s\") = %d, reference says %d", pool[i],
						 pool[j], covers_s(pool[i], pool[j]), ref_match(pool[i], pool[j]));
		}

	/* covers(p, q) is set inclusion over concrete scopes; disjoint means disjoint */
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			for (k = 0; k < n; k++)
			{
				if (!is_concrete(pool[k]) || !ref_match(pool[j], pool[k]))
					continue;
				if (covers_s(pool[i], pool[j]) && !ref_match(pool[i], pool[k]))
					fail_msg("\"%s\" covers \"%s\" which matches \"%s\", but it does not",
							 pool[i], pool[j], pool[k]);
				if (!overlaps_s(pool[i], pool[j]) && ref_match(pool[i], pool[k]))
					fail_msg("\"%s\" and \"%s\" are disjoint, yet both match \"%s\"",
							 pool[i], pool[j], pool[k]);
			}
}

/* ------------------------------------------------------------------------ */
/* hla_scopes_parse                                                         */
/* ------------------------------------------------------------------------ */

static void
test_parse_basic(void **state)
{
	const char *s = "contacts.readonly users.read calendars/*";
	hla_span	out[8];
	hla_scope_error err = HLA_SCOPE_TOO_DEEP;
	size_t		pos = 77;

	(void) state;
	assert_int_equal(hla_scopes_parse(s, strlen(s), out, 8, &err, &pos), 3);
	assert_int_equal(err, HLA_SCOPE_OK);
	SPAN(&out[0], s, 0, "contacts.readonly");
	SPAN(&out[1], s, 18, "users.read");
	SPAN(&out[2], s, 29, "calendars/*");

	s = "*";
	assert_int_equal(hla_scopes_parse(s, 1, out, 8, &err, &pos), 1);
	SPAN(&out[0], s, 0, "*");
}

static void
test_parse_spaces(void **state)
{
	const char *s = "  a.b   c/d.e  *   ";
	hla_span	out[8];
	hla_scope_error err;
	size_t		pos;

	(void) state;
	assert_int_equal(hla_scopes_parse(s, strlen(s), out, 8, &err, &pos), 3);
	assert_int_equal(err, HLA_SCOPE_OK);
	SPAN(&out[0], s, 2, "a.b");
	SPAN(&out[1], s, 8, "c/d.e");
	SPAN(&out[2], s, 15, "*");

	s = " a.b";
	assert_int_equal(hla_scopes_parse(s, strlen(s), out, 8, &err, &pos), 1);
	SPAN(&out[0], s, 1, "a.b");
	s = "a.b ";
	assert_int_equal(hla_scopes_parse(s, strlen(s), out, 8, &err, &pos), 1);
	SPAN(&out[0], s, 0, "a.b");
	s = "a.b  c.d";
	assert_int_equal(hla_scopes_parse(s, strlen(s), out, 8, &err, &pos), 2);
	SPAN(&out[1], s, 5, "c.d");
}

static void
test_parse_empty(void **state)
{
	hla_span	out[2];
	hla_scope_error err = HLA_SCOPE_TOO_DEEP;
	size_t		pos = 5;

	(void) state;
	assert_int_equal(hla_scopes_parse("", 0, out, 2, &err, &pos), 0);
	assert_int_equal(err, HLA_SCOPE_OK);
	assert_int_equal(hla_scopes_parse(" ", 1, out, 2, &err, &pos), 0);
	assert_int_equal(err, HLA_SCOPE_OK);
	assert_int_equal(hla_scopes_parse("      ", 6, out, 2, &err, &pos), 0);
	assert_int_equal(err, HLA_SCOPE_OK);
	/* len 0 over a non-empty buffer */
	assert_int_equal(hla_scopes_parse("a.b", 0, out, 2, &err, &pos), 0);
	/* an empty set needs no room */
	assert_int_equal(hla_scopes_parse("  ", 2, out, 0, &err, &pos), 0);
	assert_int_equal(err, HLA_SCOPE_OK);
}

static void
check_parse_error(const char *s, size_t len, hla_scope_error want, size_t want_pos,
				  const char *file, int line)
{
	hla_span	out[8];
	hla_scope_error err = HLA_SCOPE_OK;
	size_t		pos = (size_t) -1;
	int			n = hla_scopes_parse(s, len, out, 8, &err, &pos);

	if (n != -1 || err != want || pos != want_pos)
	{
		print_error("hla_scopes_parse(\"%s\") = %d, %s at %zu; want -1, %s at %zu\n",
					show(s, len), n, err_name(err), pos, err_name(want), want_pos);
		_fail(file, line);
	}
}

#define PARSE_BAD(s, e, p) check_parse_error((s), strlen(s), (e), (p), __FILE__, __LINE__)
#define PARSE_BADN(lit, e, p) check_parse_error(LIT(lit), (e), (p), __FILE__, __LINE__)

static void
test_parse_error_positions(void **state)
{
	char		big[4 + HLA_SCOPE_MAX_LEN + 1 + 1];

	(void) state;
	/* error in the first token */
	PARSE_BAD("contacts users.read", HLA_SCOPE_NO_ACTION, 8);
	PARSE_BAD("a.b.c", HLA_SCOPE_EXTRA_DOT, 3);
	/* error in the second token: the position is into the whole string */
	PARSE_BAD("contacts.readonly contacts..read", HLA_SCOPE_EMPTY_SEGMENT, 27);
	PARSE_BAD("contacts.readonly   contacts", HLA_SCOPE_NO_ACTION, 28);
	PARSE_BAD("a.b con*tacts.read", HLA_SCOPE_BAD_WILDCARD, 7);
	PARSE_BAD("a.b c.d/e", HLA_SCOPE_SLASH_IN_ACTION, 7);
	PARSE_BAD("a.b c.", HLA_SCOPE_EMPTY_ACTION, 6);
	PARSE_BAD("a.b  /c.d", HLA_SCOPE_EMPTY_SEGMENT, 5);
	PARSE_BAD("a.b a/b/c/d/e/f/g/h/i.x", HLA_SCOPE_TOO_DEEP, 20);
	PARSE_BAD("a.b c\xD0\xBE" "ntacts.readonly", HLA_SCOPE_BAD_CHAR, 5);
	/* the third token */
	PARSE_BAD("a.b c.d *.x", HLA_SCOPE_BAD_WILDCARD, 8);
	/* only ASCII space separates: tab, NUL, NBSP are bad characters */
	PARSE_BAD("a.b\tc.d", HLA_SCOPE_BAD_CHAR, 3);
	PARSE_BAD("a.b\nc.d", HLA_SCOPE_BAD_CHAR, 3);
	PARSE_BAD("a.b\xC2\xA0" "c.d", HLA_SCOPE_BAD_CHAR, 3);
	PARSE_BADN("a.b\0c.d", HLA_SCOPE_BAD_CHAR, 3);
	PARSE_BADN("a.b \0", HLA_SCOPE_BAD_CHAR, 4);
	/* the earliest bad token wins */
	PARSE_BAD("a.b bad c..d", HLA_SCOPE_NO_ACTION, 7);

	/* too long in the second token: 4 + 128 */
	memcpy(big, "a.b ", 4);
	memset(big + 4, 'x', HLA_SCOPE_MAX_LEN + 1);
	big[4 + HLA_SCOPE_MAX_LEN - 1] = '.';
	big[sizeof(big) - 1] = '\0';
	check_parse_error(big, strlen(big), HLA_SCOPE_TOO_LONG, 4 + 128, __FILE__, __LINE__);
	/* and one shorter is fine */
	{
		hla_span	out[2];
		hla_scope_error err;
		size_t		pos;

		big[4 + HLA_SCOPE_MAX_LEN] = '\0';
		big[4 + HLA_SCOPE_MAX_LEN - 2] = '.';
		big[4 + HLA_SCOPE_MAX_LEN - 1] = 'y';
		assert_int_equal(hla_scopes_parse(big, strlen(big), out, 2, &err, &pos), 2);
		assert_int_equal(out[1].len, HLA_SCOPE_MAX_LEN);
	}
}

/* "x.y x.y ... x.y" with n tokens (4 bytes apart). Caller frees. */
static char *
repeat_scope(int n, size_t *len)
{
	char	   *s = malloc((size_t) n * 4 + 1);
	int			i;

	assert_non_null(s);
	for (i = 0; i < n; i++)
		memcpy(s + (size_t) i * 4, "x.y ", 4);
	*len = n > 0 ? (size_t) n * 4 - 1 : 0;
	s[*len] = '\0';
	return s;
}

static void
test_parse_too_many(void **state)
{
	hla_span	out[HLA_SCOPES_MAX + 50];
	hla_scope_error err;
	size_t		pos;
	size_t		len;
	char	   *s;

	(void) state;
	/* exactly HLA_SCOPES_MAX is fine */
	s = repeat_scope(HLA_SCOPES_MAX, &len);
	err = HLA_SCOPE_TOO_DEEP;
	assert_int_equal(hla_scopes_parse(s, len, out, HLA_SCOPES_MAX, &err, &pos), HLA_SCOPES_MAX);
	assert_int_equal(err, HLA_SCOPE_OK);
	assert_ptr_equal(out[HLA_SCOPES_MAX - 1].ptr, s + (HLA_SCOPES_MAX - 1) * 4);
	free(s);

	/* one more is too many, at the start of the 257th token */
	s = repeat_scope(HLA_SCOPES_MAX + 1, &len);
	out[HLA_SCOPES_MAX].ptr = NULL;
	out[HLA_SCOPES_MAX].len = 12345;
	assert_int_equal(hla_scopes_parse(s, len, out, HLA_SCOPES_MAX + 50, &err, &pos), -1);
	assert_int_equal(err, HLA_SCOPE_TOO_MANY);
	assert_int_equal(pos, HLA_SCOPES_MAX * 4);
	/* even with room for more, the 257th span is never written */
	assert_null(out[HLA_SCOPES_MAX].ptr);
	assert_int_equal(out[HLA_SCOPES_MAX].len, 12345);

	/* and with max == HLA_SCOPES_MAX */
	assert_int_equal(hla_scopes_parse(s, len, out, HLA_SCOPES_MAX, &err, &pos), -1);
	assert_int_equal(err, HLA_SCOPE_TOO_MANY);
	assert_int_equal(pos, HLA_SCOPES_MAX * 4);
	free(s);

	/* trailing spaces after 256 scopes do not make a 257th */
	s = repeat_scope(HLA_SCOPES_MAX, &len);
	s[len] = ' ';
	assert_int_equal(hla_scopes_parse(s, len + 1, out, HLA_SCOPES_MAX, &err, &pos), HLA_SCOPES_MAX);
	free(s);
}

static void
test_parse_max_smaller(void **state)
{
	const char *s = "a.b c.d e.f";
	hla_span	out[4];
	hla_scope_error err;
	size_t		pos;

	(void) state;
	memset(out, 0, sizeof(out));
	out[2].ptr = s;
	out[2].len = 999;
	assert_int_equal(hla_scopes_parse(s, strlen(s), out, 2, &err, &pos), -1);
	assert_int_equal(err, HLA_SCOPE_TOO_MANY);
	assert_int_equal(pos, 8);
	/* nothing written past out[max - 1] */
	assert_ptr_equal(out[2].ptr, s);
	assert_int_equal(out[2].len, 999);

	assert_int_equal(hla_scopes_parse(s, strlen(s), out, 3, &err, &pos), 3);
	assert_int_equal(err, HLA_SCOPE_OK);
	SPAN(&out[2], s, 8, "e.f");

	assert_int_equal(hla_scopes_parse(s, strlen(s), out, 1, &err, &pos), -1);
	assert_int_equal(err, HLA_SCOPE_TOO_MANY);
	assert_int_equal(pos, 4);

	assert_int_equal(hla_scopes_parse("  a.b", 5, out, 0, &err, &pos), -1);
	assert_int_equal(err, HLA_SCOPE_TOO_MANY);
	assert_int_equal(pos, 2);

	/* an earlier bad token is still reported as such */
	assert_int_equal(hla_scopes_parse("a.b c e.f", 9, out, 2, &err, &pos), -1);
	assert_int_equal(err, HLA_SCOPE_NO_ACTION);
	assert_int_equal(pos, 5);
}

/* ------------------------------------------------------------------------ */
/* hla_span_cmp, hla_scopes_canonicalize                                    */
/* ------------------------------------------------------------------------ */

static int
sign(int x)
{
	return (x > 0) - (x < 0);
}

static int
cmp_s(const char *a, size_t alen, const char *b, size_t blen)
{
	hla_span	x = {a, alen};
	hla_span	y = {b, blen};

	return sign(hla_span_cmp(&x, &y));
}

static void
test_span_cmp(void **state)
{
	(void) state;
	assert_int_equal(cmp_s("a.b", 3, "a.b", 3), 0);
	assert_int_equal(cmp_s("a.b", 3, "a.c", 3), -1);
	assert_int_equal(cmp_s("a.c", 3, "a.b", 3), 1);
	/* shorter first on a common prefix */
	assert_int_equal(cmp_s("a.b", 3, "a.bc", 4), -1);
	assert_int_equal(cmp_s("a.bc", 4, "a.b", 3), 1);
	assert_int_equal(cmp_s("", 0, "a", 1), -1);
	assert_int_equal(cmp_s("", 0, "", 0), 0);
	/* bytewise: uppercase before lowercase, '*' < '-' < '.' < '/' < digits < '_' */
	assert_int_equal(cmp_s("Contacts.x", 10, "contacts.x", 10), -1);
	assert_int_equal(cmp_s("*", 1, "-.a", 3), -1);
	assert_int_equal(cmp_s("a-b.x", 5, "a.x", 3), -1);
	assert_int_equal(cmp_s("a.x", 3, "a/b.x", 5), -1);
	assert_int_equal(cmp_s("a/b.x", 5, "a0.x", 4), -1);
	assert_int_equal(cmp_s("aZ.x", 4, "a_.x", 4), -1);
	/* unsigned bytes: 0x80.. sort after ASCII */
	assert_int_equal(cmp_s("\xC3", 1, "z", 1), 1);
	assert_int_equal(cmp_s("z", 1, "\x80", 1), -1);
	/* NUL is just another byte, not a terminator */
	assert_int_equal(cmp_s("a\0b", 3, "a\0c", 3), -1);
	assert_int_equal(cmp_s("a\0c", 3, "a\0b", 3), 1);
	assert_int_equal(cmp_s("a", 1, "a\0", 2), -1);
	/* only len bytes count */
	assert_int_equal(cmp_s("a.bX", 3, "a.bY", 3), 0);
}

static void
parse_or_fail(const char *s, hla_span *out, int max, int want_n)
{
	hla_scope_error err;
	size_t		pos;
	int			n = hla_scopes_parse(s, strlen(s), out, max, &err, &pos);

	if (n != want_n)
		fail_msg("hla_scopes_parse(\"%s\") = %d (%s at %zu), want %d", s, n,
				 err_name(err), pos, want_n);
}

static void
test_canonicalize_sorts_and_dedups(void **state)
{
	const char *s = "users.read contacts.write contacts.readonly contacts.write * "
		"calendars/* Contacts.readonly users.read contacts.write a.b a.bc a-b.c a/b.c";
	static const char *const want[] = {
		"*", "Contacts.readonly", "a-b.c", "a.b", "a.bc", "a/b.c", "calendars/*",
		"contacts.readonly", "contacts.write", "users.read",
	};
	hla_span	sp[32];
	int			n,
				i;

	(void) state;
	parse_or_fail(s, sp, 32, 13);
	n = hla_scopes_canonicalize(sp, 13);
	assert_int_equal(n, ARRAY_LEN(want));
	for (i = 0; i < n; i++)
		if (!span_is(&sp[i], want[i]))
			fail_msg("canonical[%d] = \"%s\", want \"%s\"", i, show(sp[i].ptr, sp[i].len), want[i]);
	/* spans still point into the original string */
	for (i = 0; i < n; i++)
		assert_true(sp[i].ptr >= s && sp[i].ptr + sp[i].len <= s + strlen(s));
}

static void
test_canonicalize_idempotent(void **state)
{
	const char *s = "b.a a.b c/* * a.b b.a a.* c/d.e";
	hla_span	a[16],
				b[16];
	int			n,
				m,
				i;

	(void) state;
	parse_or_fail(s, a, 16, 8);
	n = hla_scopes_canonicalize(a, 8);
	assert_int_equal(n, 6);
	memcpy(b, a, sizeof(a));
	m = hla_scopes_canonicalize(b, n);
	assert_int_equal(m, n);
	for (i = 0; i < n; i++)
	{
		assert_ptr_equal(b[i].ptr, a[i].ptr);
		assert_int_equal(b[i].len, a[i].len);
	}
	/* strictly increasing */
	for (i = 1; i < n; i++)
		assert_true(hla_span_cmp(&a[i - 1], &a[i]) < 0);
}

static void
test_canonicalize_edges(void **state)
{
	hla_span	sp[8];
	const char *one = "x.y";
	const char *p = "a.b";
	const char *q = "xa.b";		/* the same bytes "a.b" from another buffer */
	int			i;

	(void) state;
	assert_int_equal(hla_scopes_canonicalize(sp, 0), 0);
	sp[0].ptr = one;
	sp[0].len = 3;
	assert_int_equal(hla_scopes_canonicalize(sp, 1), 1);
	assert_ptr_equal(sp[0].ptr, one);

	/* all duplicates */
	for (i = 0; i < 8; i++)
	{
		sp[i].ptr = (i % 2) ? p : q + 1;
		sp[i].len = 3;
	}
	assert_int_equal(hla_scopes_canonicalize(sp, 8), 1);
	assert_true(span_is(&sp[0], "a.b"));

	/* already sorted, no duplicates */
	parse_or_fail("* a.b a.c b.a", sp, 8, 4);
	assert_int_equal(hla_scopes_canonicalize(sp, 4), 4);
	assert_true(span_is(&sp[0], "*"));
	assert_true(span_is(&sp[3], "b.a"));

	/* reverse sorted */
	parse_or_fail("b.a a.c a.b *", sp, 8, 4);
	assert_int_equal(hla_scopes_canonicalize(sp, 4), 4);
	assert_true(span_is(&sp[0], "*"));
	assert_true(span_is(&sp[1], "a.b"));
	assert_true(span_is(&sp[2], "a.c"));
	assert_true(span_is(&sp[3], "b.a"));
}

static void
test_canonicalize_max_set(void **state)
{
	hla_span	sp[HLA_SCOPES_MAX];
	char		buf[HLA_SCOPES_MAX * 6];
	size_t		o = 0;
	int			i,
				n;

	(void) state;
	/* 256 scopes "kX.y" in descending order, each one twice: 128 distinct */
	for (i = 0; i < HLA_SCOPES_MAX; i++)
	{
		int			v = 127 - (i % 128);

		buf[o++] = (char) ('a' + v / 26);
		buf[o++] = (char) ('a' + v % 26);
		buf[o++] = '.';
		buf[o++] = 'y';
		buf[o++] = ' ';
	}
	assert_int_equal(hla_scopes_parse(buf, o, sp, HLA_SCOPES_MAX, &(hla_scope_error) {0},
									  &(size_t) {0}), HLA_SCOPES_MAX);
	n = hla_scopes_canonicalize(sp, HLA_SCOPES_MAX);
	assert_int_equal(n, 128);
	for (i = 1; i < n; i++)
		assert_true(hla_span_cmp(&sp[i - 1], &sp[i]) < 0);
	assert_true(span_is(&sp[0], "aa.y"));
	assert_true(span_is(&sp[127], "ex.y"));
}

/* ------------------------------------------------------------------------ */
/* hla_scopes_grant                                                         */
/* ------------------------------------------------------------------------ */

static bool
grant_s(const hla_span *set, int n, const char *q)
{
	return hla_scopes_grant(set, n, q, strlen(q));
}

static void
test_grant(void **state)
{
	hla_span	set[8];
	int			i;

	(void) state;
	parse_or_fail("contacts.* calendars/* users.read", set, 8, 3);
	assert_true(grant_s(set, 3, "contacts.write"));
	assert_true(grant_s(set, 3, "contacts.readonly"));
	assert_true(grant_s(set, 3, "contacts.*"));
	assert_true(grant_s(set, 3, "calendars/events.write"));
	assert_true(grant_s(set, 3, "calendars/a/b.read"));
	assert_true(grant_s(set, 3, "calendars/x/*"));
	assert_true(grant_s(set, 3, "calendars/*"));
	assert_true(grant_s(set, 3, "users.read"));
	assert_false(grant_s(set, 3, "users.write"));
	assert_false(grant_s(set, 3, "users.*"));
	assert_false(grant_s(set, 3, "contacts/notes.write"));
	assert_false(grant_s(set, 3, "contactsx.write"));
	assert_false(grant_s(set, 3, "Contacts.write"));
	assert_false(grant_s(set, 3, "calendars.write"));
	assert_false(grant_s(set, 3, "*"));
	/* only the first n spans count */
	assert_false(grant_s(set, 2, "users.read"));
	assert_false(grant_s(set, 0, "contacts.write"));

	/* a set grants each of its members */
	parse_or_fail("locations/customValues.readonly saas/company.write phonenumbers.read "
				  "conversation-ai.readonly voice-ai-agent-goals.write", set, 8, 5);
	for (i = 0; i < 5; i++)
		assert_true(hla_scopes_grant(set, 5, set[i].ptr, set[i].len));
	assert_false(grant_s(set, 5, "saas/company.read"));
	assert_false(grant_s(set, 5, "saas/*"));

	/* "*" grants everything, including "*" */
	parse_or_fail("users.read *", set, 8, 2);
	assert_true(grant_s(set, 2, "*"));
	assert_true(grant_s(set, 2, "anything/at/all.x"));
	assert_true(grant_s(set, 2, "calendars/*"));
}

/* ------------------------------------------------------------------------ */
/* hla_scope_error_text                                                     */
/* ------------------------------------------------------------------------ */

static void
test_error_text(void **state)
{
	const char *texts[HLA_SCOPE_TOO_MANY + 1];
	int			e,
				f;

	(void) state;
	for (e = HLA_SCOPE_OK; e <= HLA_SCOPE_TOO_MANY; e++)
	{
		texts[e] = hla_scope_error_text((hla_scope_error) e);
		if (texts[e] == NULL || texts[e][0] == '\0')
			fail_msg("hla_scope_error_text(%s) is empty", err_name((hla_scope_error) e));
		for (f = 0; f < e; f++)
			if (strcmp(texts[e], texts[f]) == 0)
				fail_msg("%s and %s share the text \"%s\"", err_name((hla_scope_error) f),
						 err_name((hla_scope_error) e), texts[e]);
	}
	/* an out-of-range value still gets a sentence */
	assert_non_null(hla_scope_error_text((hla_scope_error) 1000));
	assert_true(strlen(hla_scope_error_text((hla_scope_error) 1000)) > 0);
	assert_non_null(hla_scope_error_text((hla_scope_error) -1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_platform_scopes),
		cmocka_unit_test(test_check_wildcards_ok),
		cmocka_unit_test(test_check_charset_ok),
		cmocka_unit_test(test_check_ignores_errpos_null),
		cmocka_unit_test(test_check_respects_len),
		cmocka_unit_test(test_check_empty),
		cmocka_unit_test(test_check_length_limit),
		cmocka_unit_test(test_check_bad_chars),
		cmocka_unit_test(test_check_non_ascii),
		cmocka_unit_test(test_check_every_byte),
		cmocka_unit_test(test_check_empty_segments),
		cmocka_unit_test(test_check_empty_action),
		cmocka_unit_test(test_check_no_action),
		cmocka_unit_test(test_check_extra_dot),
		cmocka_unit_test(test_check_slash_in_action),
		cmocka_unit_test(test_check_bad_wildcards),
		cmocka_unit_test(test_check_depth),
		cmocka_unit_test(test_kind_of),
		cmocka_unit_test(test_covers_exact),
		cmocka_unit_test(test_covers_case_sensitive),
		cmocka_unit_test(test_covers_any_action),
		cmocka_unit_test(test_covers_subtree),
		cmocka_unit_test(test_covers_all),
		cmocka_unit_test(test_overlaps),
		cmocka_unit_test(test_pool_is_valid),
		cmocka_unit_test(test_covers_properties),
		cmocka_unit_test(test_covers_matches_reference),
		cmocka_unit_test(test_parse_basic),
		cmocka_unit_test(test_parse_spaces),
		cmocka_unit_test(test_parse_empty),
		cmocka_unit_test(test_parse_error_positions),
		cmocka_unit_test(test_parse_too_many),
		cmocka_unit_test(test_parse_max_smaller),
		cmocka_unit_test(test_span_cmp),
		cmocka_unit_test(test_canonicalize_sorts_and_dedups),
		cmocka_unit_test(test_canonicalize_idempotent),
		cmocka_unit_test(test_canonicalize_edges),
		cmocka_unit_test(test_canonicalize_max_set),
		cmocka_unit_test(test_grant),
		cmocka_unit_test(test_error_text),
	};

	return cmocka_run_group_tests_name("scope", tests, NULL, NULL);
}
