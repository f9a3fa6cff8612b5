-- install: CREATE EXTENSION and ALTER EXTENSION ... UPDATE refuse a schema hlauth that is
-- not superusers' alone (src/sql/schema_check.sql). A role with only CREATE on the database
-- could otherwise create the schema first, own it, and add functions that calls with untyped
-- literals resolve to before hlauth's own (run as whoever calls them), or drop the schema
-- and the extension with it.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SELECT current_database() AS regress_db \gset
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_hlauth_install;
DROP ROLE IF EXISTS regress_squatter;
RESET client_min_messages;
CREATE ROLE regress_squatter NOLOGIN;
CREATE DATABASE regress_hlauth_install;
GRANT CREATE ON DATABASE regress_hlauth_install TO regress_squatter;
\c regress_hlauth_install
\set VERBOSITY terse
\set SHOW_CONTEXT never
-- The squatter creates the schema first, with a look-alike of an hlauth function
SET ROLE regress_squatter;
CREATE SCHEMA hlauth;
CREATE FUNCTION hlauth.create_tenant(text, text, text, text) RETURNS text LANGUAGE sql
	AS $$ SELECT 'the squatter''s code ran as ' || current_user $$;
RESET ROLE;
CREATE EXTENSION hlauth;
SELECT count(*) AS not_installed FROM pg_extension WHERE extname = 'hlauth';
-- Handing the schema to a superuser is not enough while it holds the squatter's function
ALTER SCHEMA hlauth OWNER TO CURRENT_USER;
CREATE EXTENSION hlauth;
DROP FUNCTION hlauth.create_tenant(text, text, text, text);
-- nor while another role may create in it (PUBLIC included)
GRANT CREATE ON SCHEMA hlauth TO regress_squatter;
CREATE EXTENSION hlauth;
REVOKE CREATE ON SCHEMA hlauth FROM regress_squatter;
GRANT CREATE ON SCHEMA hlauth TO PUBLIC;
CREATE EXTENSION hlauth;
REVOKE CREATE ON SCHEMA hlauth FROM PUBLIC;
-- nor while it holds an extension the squatter created there (a trusted one: its objects
-- belong to the bootstrap superuser, the extension to the squatter)
ALTER SCHEMA hlauth OWNER TO regress_squatter;
SET ROLE regress_squatter;
CREATE EXTENSION dict_int SCHEMA hlauth;
RESET ROLE;
ALTER SCHEMA hlauth OWNER TO CURRENT_USER;
CREATE EXTENSION hlauth;
DROP EXTENSION dict_int;
-- A superuser's empty schema is used
CREATE EXTENSION hlauth;
SELECT extversion, extnamespace::regnamespace AS schema FROM pg_extension WHERE extname = 'hlauth';
-- and an untyped call reaches hlauth's function
SELECT hlauth.create_tenant('agency', NULL, 'install check') IS NOT NULL AS created;
DROP EXTENSION hlauth;
DROP SCHEMA hlauth;

-- An update checks the same: 0.1.0 installed into a squatted schema (0.1.0 did not check)
-- cannot be updated until the schema is fixed
SET ROLE regress_squatter;
CREATE SCHEMA hlauth;
RESET ROLE;
CREATE EXTENSION hlauth VERSION '0.1.0';
ALTER EXTENSION hlauth UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'hlauth';
ALTER SCHEMA hlauth OWNER TO CURRENT_USER;
ALTER EXTENSION hlauth UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'hlauth';

\c :regress_db
DROP DATABASE regress_hlauth_install;
DROP ROLE regress_squatter;
