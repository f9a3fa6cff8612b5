-- hlauth loaded for the first time inside a parallel operation keeps its settings.
-- PostgreSQL cannot apply a library's settings (postgresql.conf's hlauth.secret_file here)
-- while in parallel mode: defined there, they were lost for the rest of the session, and
-- API keys then failed in it ("no server secret"), a connection a client could poison in
-- a pool. hlauth now defines them at the next statement.
CREATE FUNCTION pl_has_scope() RETURNS boolean LANGUAGE plpgsql PARALLEL SAFE AS $$
BEGIN
	RETURN hlauth.has_scope('contacts.readonly');
END
$$;
-- a fresh backend: nothing has loaded hlauth in it yet
\c
SET force_parallel_mode = on;
SET max_parallel_workers = 0;
SET client_min_messages = warning;
-- the first hlauth call of the session, in parallel mode (the leader runs the plan)
EXPLAIN (COSTS OFF) SELECT pl_has_scope();
SELECT pl_has_scope() AS first_call_in_parallel_mode;
RESET force_parallel_mode;
RESET max_parallel_workers;
SELECT current_setting('hlauth.secret_file') <> '' AS secret_file_kept,
       current_setting('hlauth.api_key_prefix') AS api_key_prefix;
-- what needs the secret works in this session
SELECT hlauth.api_key_matches(hlauth_internal.compose_api_key('hlk_live', 'AAAAAAAAAAAA', 'BBBBBBBBBBBBBBBBBBBBBB')::hlauth.apikey,
                              hlauth_internal.compose_api_key('hlk_live', 'AAAAAAAAAAAA', 'BBBBBBBBBBBBBBBBBBBBBB')) AS key_matches;
-- and hlauth's settings are reserved as before: an unknown hlauth.* setting is refused
SET hlauth.no_such_setting = 'x';
DROP FUNCTION pl_has_scope();
