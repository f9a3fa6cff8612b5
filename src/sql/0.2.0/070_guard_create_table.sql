-- ---------------------------------------------------------------------------
-- The DDL guard also watches CREATE TABLE (and CREATE SCHEMA, whose CREATE TABLE elements
-- fire no event trigger of their own): a non-admin may not create a table with a
-- foreign key to a protected table unless the new table is protected as it is made (a
-- partition or child of a protected table). The key's check runs without row-level
-- security, so inserting into an unprotected referencing table would tell whether a key
-- exists in any tenant's rows. See docs/reference.md#foreign-key-actions. And ALTER DOMAIN:
-- a check added to (or validated on) a domain that a protected table's column uses runs the
-- domain owner's code over every tenant's values; so does ALTER TYPE ... ADD ATTRIBUTE of such
-- a domain to a composite type a protected table's column uses.
-- ---------------------------------------------------------------------------
DROP EVENT TRIGGER hlauth_guard_ddl_start;
CREATE EVENT TRIGGER hlauth_guard_ddl_start ON ddl_command_start
	WHEN TAG IN ('CREATE SCHEMA', 'CREATE TABLE', 'CREATE TRIGGER', 'CREATE RULE', 'CREATE INDEX', 'CREATE STATISTICS', 'ALTER TABLE', 'ALTER DOMAIN', 'ALTER TYPE')
	EXECUTE FUNCTION hlauth_internal.guard_ddl_start();
COMMENT ON EVENT TRIGGER hlauth_guard_ddl_start IS 'hlauth: refuses triggers, rules, expression/partial/unique indexes, expression statistics, constraints, type changes and re-parenting on protected tables, foreign keys to them from unprotected tables, and checks on domains their columns use, unless run by hlauth_admin';

-- After the command: a default (of a protected table's column, or of a domain one uses)
-- that calls a function owned by a non-admin would run inside every tenant's inserts, like a
-- trigger. Checked once the default is cooked, so that built-in functions and hlauth's own
-- (now(), nextval(), hlauth.principal()) pass and look-alikes on the search_path do not.
-- And the start-of-command check again, under the command's lock and against the registry
-- as committed now: a table protect() was protecting in a transaction not yet committed
-- passed it, and the command then ran on it. A change to a type first locks the tables
-- that use it, so that it waits for such a protect() to commit.
CREATE FUNCTION hlauth_internal.guard_ddl_end() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'hlauth_guard_ddl_end' LANGUAGE C;
GRANT EXECUTE ON FUNCTION hlauth_internal.guard_ddl_end() TO PUBLIC;
COMMENT ON FUNCTION hlauth_internal.guard_ddl_end() IS 'Event trigger: refuses, for non-admins, defaults calling a non-admin''s function on protected tables and the domains they use';
CREATE EVENT TRIGGER hlauth_guard_ddl_end ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE', 'ALTER DOMAIN', 'ALTER TYPE', 'CREATE INDEX', 'CREATE RULE', 'CREATE STATISTICS', 'CREATE TRIGGER', 'CREATE TABLE', 'CREATE SCHEMA')
	EXECUTE FUNCTION hlauth_internal.guard_ddl_end();
COMMENT ON EVENT TRIGGER hlauth_guard_ddl_end IS 'hlauth: refuses defaults calling a non-admin''s function on protected tables and the domains they use, and repeats the start-of-command check under the command''s lock, unless run by hlauth_admin';
