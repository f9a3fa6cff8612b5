-- ---------------------------------------------------------------------------
-- The DDL guard also watches CREATE TABLE (and CREATE SCHEMA, whose CREATE TABLE elements
-- fire no event trigger of their own): a non-admin may not create a table with a
-- foreign key to a protected table unless the new table is protected as it is made (a
-- partition or child of a protected table). The key's check runs without row-level
-- security, so inserting into an unprotected referencing table would tell whether a key
-- exists in any tenant's rows. See docs/reference.md#foreign-key-actions. And ALTER DOMAIN:
-- a check added to (or validated on), or a non-constant default set on, a domain that a
-- protected table's column uses runs the domain owner's code over every tenant's values.
-- ---------------------------------------------------------------------------
DROP EVENT TRIGGER hlauth_guard_ddl_start;
CREATE EVENT TRIGGER hlauth_guard_ddl_start ON ddl_command_start
	WHEN TAG IN ('CREATE SCHEMA', 'CREATE TABLE', 'CREATE TRIGGER', 'CREATE RULE', 'CREATE INDEX', 'CREATE STATISTICS', 'ALTER TABLE', 'ALTER DOMAIN')
	EXECUTE FUNCTION hlauth_internal.guard_ddl_start();
COMMENT ON EVENT TRIGGER hlauth_guard_ddl_start IS 'hlauth: refuses triggers, rules, expression/partial/unique indexes, expression statistics, constraints, type changes and re-parenting on protected tables, foreign keys to them from unprotected tables, and checks or non-constant defaults on domains their columns use, unless run by hlauth_admin';
