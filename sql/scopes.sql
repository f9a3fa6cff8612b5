-- scopes: the hlauth.scopes type (grammar, canonical form, I/O, operators, set functions).
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET search_path = public, hlauth;

-- ---------------------------------------------------------------------------
-- Canonical output: sorted bytewise, de-duplicated, single spaces, no padding
-- ---------------------------------------------------------------------------
SELECT 'contacts.write contacts.readonly contacts.write'::scopes AS canonical;
SELECT '   contacts.write    calendars/events.read  '::scopes AS extra_spaces;
SELECT ''::scopes AS empty, scopes_count('') AS n_empty, '   '::scopes AS blanks;
SELECT 'b.x a.x'::scopes::text = 'a.x b.x' AS text_is_canonical;
-- Bytewise order: upper case before lower case, '*' (0x2a) before letters, '-' before '.'
SELECT 'contacts.read Contacts.read * z.* a-b.read a.read'::scopes AS bytewise;

-- Every platform scope parses, and each is exactly one valid scope
SELECT s, scope_is_valid(s) AS valid, s::scopes AS parsed, scopes_count(s::scopes) AS n
  FROM unnest(ARRAY['contacts.readonly', 'calendars/events.write', 'locations/customValues.readonly',
                    'conversation-ai.readonly', 'saas/company.write', 'voice-ai-agent-goals.write',
                    'phonenumbers.read']) AS s
 ORDER BY s COLLATE "C";
SELECT 'contacts.readonly calendars/events.write locations/customValues.readonly conversation-ai.readonly saas/company.write voice-ai-agent-goals.write phonenumbers.read'::scopes AS all_platform;

-- Wildcards: '*', 'resource.*', 'resource/*' (and deeper), underscores and digits
SELECT s, scope_is_valid(s) AS valid
  FROM unnest(ARRAY['*', 'contacts.*', 'calendars/*', 'calendars/events.*', 'calendars/events/*',
                    'a_b/C-9.x_1', 'a/b/c/d/e/f/g/h.read', repeat('a', 123) || '.read']) AS s
 ORDER BY s COLLATE "C";
SELECT length(repeat('a', 123) || '.read') AS len_128,
       scopes_count((repeat('a', 123) || '.read')::scopes) AS n;

-- ---------------------------------------------------------------------------
-- Case is kept: "Contacts.readonly" is valid but a different scope
-- ---------------------------------------------------------------------------
SELECT 'Contacts.readonly contacts.readonly'::scopes AS both, scopes_count('Contacts.readonly contacts.readonly') AS n;
SELECT 'Contacts.readonly'::scopes = 'contacts.readonly'::scopes AS eq,
       'Contacts.readonly'::scopes @> 'contacts.readonly'::text AS grants,
       'contacts.*'::scopes @> 'Contacts.readonly'::text AS wildcard_grants_other_case,
       'Contacts.*'::scopes @> 'contacts.readonly'::text AS upper_wildcard;

-- ---------------------------------------------------------------------------
-- Bad scopes and their errors (terse: SQLSTATE-bearing message only)
-- ---------------------------------------------------------------------------
SELECT 'contacts..read'::scopes;
SELECT 'contacts.'::scopes;
SELECT '.read'::scopes;
SELECT 'contacts'::scopes;
SELECT 'contacts.read.write'::scopes;
SELECT 'contacts.read/x'::scopes;
SELECT 'a//b.read'::scopes;
SELECT '/a.read'::scopes;
SELECT 'calendars/'::scopes;
SELECT '*.read'::scopes;
SELECT 'contacts.re*'::scopes;
SELECT 'calendars/*/x.read'::scopes;
SELECT '**'::scopes;
SELECT '/*'::scopes;
SELECT 'a/b/c/d/e/f/g/h/i.read'::scopes;
SELECT E'contacts.read\tcontacts.write'::scopes;
SELECT E'contacts.read\ncontacts.write'::scopes;
SELECT 'contacts.read,contacts.write'::scopes;
SELECT 'contacts:read'::scopes;
-- Unicode look-alike: Cyrillic 'о' (U+043E) in place of Latin 'o'
SELECT 'cоntacts.readonly'::scopes;
-- One bad scope spoils the whole set
SELECT 'contacts.read contacts..write calendars.read'::scopes;
-- Too long: 129 bytes (128 is the maximum)
SELECT length(repeat('a', 124) || '.read') AS len_129;
SELECT (repeat('a', 124) || '.read')::scopes;
-- An embedded space makes two tokens in text input (both must be valid)
SELECT 'contacts.read contacts.write'::scopes AS two_tokens, scopes_count('contacts.read contacts.write') AS n;
SELECT 'contacts.read contacts'::scopes;

-- The full error report for a bad scope (detail and hint matter here)
\set VERBOSITY default
SELECT 'calendars/events..write'::scopes;
SELECT 'cоntacts.readonly'::scopes;
SELECT (repeat('a', 124) || '.read')::scopes;
\set VERBOSITY terse

-- At most 256 scopes in a set
SELECT scopes_count((SELECT string_agg('s' || g || '.read', ' ') FROM generate_series(1, 256) g)::scopes) AS n_256;
SELECT (SELECT string_agg('s' || g || '.read', ' ') FROM generate_series(1, 257) g)::scopes;
-- The limit counts tokens as written, before de-duplication
SELECT scopes_count((SELECT string_agg('x.read', ' ') FROM generate_series(1, 256) g)::scopes) AS n_dup_256;
SELECT (SELECT string_agg('x.read', ' ') FROM generate_series(1, 257) g)::scopes;

-- scope_is_valid never raises
SELECT s, scope_is_valid(s) AS valid
  FROM unnest(ARRAY['', ' ', 'contacts.read contacts.write', ' contacts.read', 'contacts..read',
                    'contacts.', 'Contacts.readonly', 'cоntacts.readonly', '*.read',
                    repeat('a', 124) || '.read', 'a/b/c/d/e/f/g/h/i.read']) AS s
 ORDER BY s COLLATE "C";
SELECT scope_is_valid(NULL) IS NULL AS strict;

-- ---------------------------------------------------------------------------
-- Binary I/O: COPY (FORMAT binary) round trip; binary input is validated like text
-- ---------------------------------------------------------------------------
SELECT current_setting('data_directory') || '/hlauth_regress_scopes.bin' AS binfile \gset
CREATE TEMP TABLE scopes_bin_src (id int, s scopes);
INSERT INTO scopes_bin_src VALUES
	(1, 'contacts.write contacts.readonly'), (2, ''), (3, '*'),
	(4, 'calendars/* Contacts.readonly locations/customValues.readonly'), (5, NULL);
COPY scopes_bin_src TO :'binfile' WITH (FORMAT binary);
CREATE TEMP TABLE scopes_bin_dst (id int, s scopes);
COPY scopes_bin_dst FROM :'binfile' WITH (FORMAT binary);
SELECT d.id, d.s, scopes_count(d.s) AS n, d.s = s.s AS same
  FROM scopes_bin_dst d JOIN scopes_bin_src s USING (id) ORDER BY d.id;
-- The binary form is the canonical text
SELECT scopes_send('b.x a.x a.x') AS send, convert_from(scopes_send('b.x a.x a.x'), 'UTF8') AS as_text;
-- Binary input that is not canonical is canonicalised
CREATE TEMP TABLE scopes_bin_raw (id int, t text);
INSERT INTO scopes_bin_raw VALUES (1, '  contacts.write contacts.read contacts.write ');
COPY scopes_bin_raw TO :'binfile' WITH (FORMAT binary);
TRUNCATE scopes_bin_dst;
COPY scopes_bin_dst FROM :'binfile' WITH (FORMAT binary);
SELECT id, s, scopes_count(s) AS n FROM scopes_bin_dst ORDER BY id;
-- Binary input with a bad scope is rejected
TRUNCATE scopes_bin_raw;
INSERT INTO scopes_bin_raw VALUES (1, 'contacts.read contacts..write');
COPY scopes_bin_raw TO :'binfile' WITH (FORMAT binary);
COPY scopes_bin_dst FROM :'binfile' WITH (FORMAT binary);
TRUNCATE scopes_bin_raw;
INSERT INTO scopes_bin_raw VALUES (1, 'cоntacts.readonly');
COPY scopes_bin_raw TO :'binfile' WITH (FORMAT binary);
COPY scopes_bin_dst FROM :'binfile' WITH (FORMAT binary);
-- Binary input with a NUL byte cannot smuggle a second scope past validation
CREATE TEMP TABLE scopes_bin_bytes (id int, b bytea);
INSERT INTO scopes_bin_bytes VALUES (1, 'contacts.read'::bytea || '\x00'::bytea || '*'::bytea);
COPY scopes_bin_bytes TO :'binfile' WITH (FORMAT binary);
COPY scopes_bin_dst FROM :'binfile' WITH (FORMAT binary);
-- (still only the one row loaded above)
SELECT count(*) AS rows_after_bad_input FROM scopes_bin_dst;
-- Text COPY round trip too
COPY (SELECT s FROM scopes_bin_src ORDER BY id) TO STDOUT;

-- ---------------------------------------------------------------------------
-- Operators
-- ---------------------------------------------------------------------------
-- = and <> compare canonical forms
SELECT 'b.x a.x a.x'::scopes = 'a.x b.x'::scopes AS eq_canonical,
       'a.x'::scopes = 'A.x'::scopes AS eq_case,
       'a.x'::scopes <> 'A.x'::scopes AS ne_case,
       ''::scopes = ''::scopes AS eq_empty,
       'a.*'::scopes = 'a.x'::scopes AS eq_wildcard_vs_exact,
       'a.x'::scopes OPERATOR(hlauth.=) 'a.x'::scopes AS qualified;

-- scopes @> text and text <@ scopes: does the set grant this one scope?
SELECT set, q, set @> q AS grants, q <@ set AS granted_by
  FROM (VALUES
	('contacts.readonly'::scopes, 'contacts.readonly'::text),
	('contacts.readonly', 'contacts.write'),
	('contacts.readonly', 'Contacts.readonly'),
	('contacts.*', 'contacts.readonly'),
	('contacts.*', 'contacts.*'),
	('contacts.*', 'contacts/notes.read'),
	('contacts.*', 'contactsx.read'),
	('contacts.readonly', 'contacts.*'),
	('calendars/*', 'calendars/events.write'),
	('calendars/*', 'calendars/events/attendees.read'),
	('calendars/*', 'calendars/events/*'),
	('calendars/*', 'calendars/*'),
	('calendars/*', 'calendars.read'),
	('calendars/*', 'calendarsx/events.read'),
	('calendars/events/*', 'calendars/*'),
	('*', 'anything/at/all.read'),
	('*', '*'),
	('contacts.*', '*'),
	('', 'contacts.read'),
	('contacts.read contacts.write', 'contacts.read contacts.write')
  ) AS v(set, q)
 ORDER BY set::text COLLATE "C", q COLLATE "C";

-- A malformed scope string is simply not granted: false, no error
SELECT '*'::scopes @> q AS grants, q <@ '*'::scopes AS granted_by, q
  FROM unnest(ARRAY['contacts..read', 'contacts.', '', ' ', 'cоntacts.readonly', '*.read',
                    repeat('a', 124) || '.read', E'contacts.read\ncontacts.write']) AS q
 ORDER BY q COLLATE "C";
-- Beware: with an untyped literal, @> resolves to (scopes, scopes) and the literal is parsed
SELECT 'contacts.*'::scopes @> 'contacts.read contacts.write' AS unknown_literal_is_a_set;
SELECT 'contacts.*'::scopes @> 'contacts..read';
SELECT 'contacts.*'::scopes @> 'contacts..read'::text AS typed_text_is_false;

-- scopes @> scopes, scopes <@ scopes, &&
SELECT a, b, a @> b AS contains, a <@ b AS contained, a && b AS overlap
  FROM (VALUES
	('contacts.*'::scopes, 'contacts.read contacts.write'::scopes),
	('contacts.read contacts.write', 'contacts.*'),
	('contacts.read', 'contacts.read'),
	('contacts.read', 'contacts.write'),
	('contacts.read', 'Contacts.read'),
	('contacts.*', 'Contacts.*'),
	('*', 'contacts.* calendars/*'),
	('calendars/*', 'calendars.read'),
	('calendars/*', 'calendars/events.*'),
	('calendars/* contacts.read', 'calendars/events.write contacts.read'),
	('calendars/* contacts.read', 'calendars/events.write contacts.write'),
	('contacts.*', 'contacts/x/*'),
	('a.x', ''),
	('', ''),
	('', '*')
  ) AS v(a, b)
 ORDER BY a::text COLLATE "C", b::text COLLATE "C";

-- Operators are reachable schema-qualified without search_path
SET search_path = public;
SELECT 'contacts.*'::hlauth.scopes OPERATOR(hlauth.@>) 'contacts.read'::text AS grants,
       'contacts.read'::text OPERATOR(hlauth.<@) 'contacts.*'::hlauth.scopes AS granted_by,
       'contacts.*'::hlauth.scopes OPERATOR(hlauth.@>) 'contacts.read'::hlauth.scopes AS contains,
       'contacts.read'::hlauth.scopes OPERATOR(hlauth.<@) 'contacts.*'::hlauth.scopes AS contained,
       'contacts.*'::hlauth.scopes OPERATOR(hlauth.&&) 'contacts.read'::hlauth.scopes AS overlap,
       'a.x'::hlauth.scopes OPERATOR(hlauth.<>) 'b.x'::hlauth.scopes AS ne;
SET search_path = public, hlauth;

-- STRICT: NULL in, NULL out
SELECT (NULL::scopes @> 'a.x'::text) IS NULL AS n1, ('a.x'::scopes @> NULL::text) IS NULL AS n2,
       (NULL::scopes && 'a.x'::scopes) IS NULL AS n3, scopes_count(NULL) IS NULL AS n4;

-- ---------------------------------------------------------------------------
-- Set functions
-- ---------------------------------------------------------------------------
SELECT scopes_intersect('contacts.* calendars/*', 'contacts.write calendars/events.read calendars.read') AS i1,
       scopes_intersect('contacts.write calendars/events.read calendars.read', 'contacts.* calendars/*') AS i1_commuted;
SELECT a, b, scopes_intersect(a, b) AS intersect
  FROM (VALUES
	('*'::scopes, 'contacts.read calendars/*'::scopes),
	('contacts.read', 'contacts.write'),
	('contacts.read', 'Contacts.read'),
	('contacts.*', 'contacts.*'),
	('calendars/*', 'calendars/events/*'),
	('calendars/* calendars/events.*', 'calendars/events.write calendars/tasks.read'),
	('* contacts.*', 'contacts.read'),
	('a.x', '')
  ) AS v(a, b)
 ORDER BY a::text COLLATE "C", b::text COLLATE "C";
-- The intersection of two sets is the same whichever comes first, and never loses a scope:
-- 200 scopes each granted by both '*' and 'c.*'
SELECT scopes_count(scopes_intersect(big, '* c.*')) AS big_first,
       scopes_count(scopes_intersect('* c.*', big)) AS big_second,
       scopes_intersect(big, '* c.*') = big AS big_first_is_big,
       scopes_intersect('* c.*', big) = big AS big_second_is_big
  FROM (SELECT string_agg('c.a' || lpad(g::text, 3, '0'), ' ')::scopes AS big
          FROM generate_series(1, 200) g) AS s;

SELECT scopes_union('contacts.write calendars.read', 'contacts.read contacts.write') AS u1,
       scopes_union('', '') AS u_empty,
       scopes_union('Contacts.read', 'contacts.read') AS u_case,
       scopes_union('contacts.*', 'contacts.read') AS u_not_minimised;
SELECT scopes_count(scopes_union(a, a)) AS self_union_256
  FROM (SELECT string_agg('s' || g || '.read', ' ')::scopes AS a FROM generate_series(1, 256) g) AS s;
SELECT scopes_union(a, b)
  FROM (SELECT string_agg('s' || g || '.read', ' ')::scopes AS a FROM generate_series(1, 200) g) AS x,
       (SELECT string_agg('t' || g || '.read', ' ')::scopes AS b FROM generate_series(1, 57) g) AS y;

SELECT scopes_count('contacts.read contacts.read calendars/*') AS n, scopes_count('') AS n_empty;
SELECT scopes_to_array('contacts.write contacts.read *') AS arr,
       scopes_to_array('') AS arr_empty,
       array_length(scopes_to_array('contacts.write contacts.read *'), 1) AS len;

-- text[] -> scopes: function and cast; each element must be exactly one scope
SELECT scopes_from_array(ARRAY['contacts.write', 'contacts.read', 'contacts.write']) AS from_fn,
       ARRAY['calendars/*', 'Contacts.read']::scopes AS from_cast,
       '{}'::text[]::scopes AS from_empty,
       scopes_from_array(ARRAY['*']) = '*'::scopes AS eq;
-- an element holding a space is rejected, never split; the error quotes the whole element
SELECT ARRAY['contacts.read contacts.write']::scopes;
\set VERBOSITY default
SELECT ARRAY['contacts.read contacts.write']::scopes;
\set VERBOSITY terse
SELECT ARRAY['contacts.read', NULL]::scopes;
SELECT ARRAY['contacts.read', '']::scopes;
SELECT ARRAY['contacts..read']::scopes;
-- a leading space is part of the element, and quoted with it
SELECT ARRAY[' contacts.read']::scopes;
SELECT ARRAY['cоntacts.readonly']::scopes;
SELECT ARRAY[['a.x'], ['b.x']]::scopes;
SELECT scopes_from_array(NULL::text[]) IS NULL AS strict;
SELECT scopes_count((SELECT array_agg('s' || g || '.read') FROM generate_series(1, 256) g)::scopes) AS n_256;
SELECT (SELECT array_agg('s' || g || '.read') FROM generate_series(1, 257) g)::scopes;
-- Round trip through an array
SELECT scopes_from_array(scopes_to_array(s)) = s AS round_trip
  FROM (VALUES ('contacts.* calendars/events.write Contacts.read'::scopes), ('')) AS v(s);

-- ---------------------------------------------------------------------------
-- Catalog facts
-- ---------------------------------------------------------------------------
-- The operator functions are LEAKPROOF (usable in RLS quals without being delayed),
-- IMMUTABLE, STRICT and PARALLEL SAFE
SELECT o.oprname, o.oprleft::regtype, o.oprright::regtype, p.proname,
       p.proleakproof, p.provolatile, p.proisstrict, p.proparallel
  FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode
 WHERE o.oprnamespace = 'hlauth'::regnamespace
 ORDER BY o.oprname, o.oprleft::regtype::text, o.oprright::regtype::text;
-- The other functions of the type
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args,
       p.proleakproof, p.provolatile, p.proisstrict, p.proparallel
  FROM pg_proc p
 WHERE p.pronamespace = 'hlauth'::regnamespace
   AND (p.proname LIKE 'scope%' AND p.pronargs > 0)
 ORDER BY p.proname, args;
-- The type's I/O functions and the text[] cast
SELECT t.typinput, t.typoutput, t.typreceive, t.typsend, t.typalign, t.typstorage
  FROM pg_type t WHERE t.oid = 'hlauth.scopes'::regtype;
SELECT c.castsource::regtype, c.casttarget::regtype, c.castfunc::regprocedure, c.castcontext
  FROM pg_cast c WHERE c.casttarget = 'hlauth.scopes'::regtype;

-- Text input remembers the last text it parsed: repeating, alternating and failing inputs
-- must each still give their own canonical value (or error).
SELECT 'b.x a.y'::hlauth.scopes AS first, 'b.x a.y'::hlauth.scopes AS again,
       'c.z'::hlauth.scopes AS other, 'b.x a.y'::hlauth.scopes AS back;
SELECT 'b.x a.y'::hlauth.scopes;
SELECT 'b.x a..y'::hlauth.scopes;
SELECT 'b.x a.y'::hlauth.scopes = 'a.y b.x'::hlauth.scopes AS same_set;
SELECT s::hlauth.scopes FROM (VALUES ('a.x'), ('a.x'), ('b.x a.x'), ('b.x a.x'), ('a.x')) v(s);

RESET search_path;
