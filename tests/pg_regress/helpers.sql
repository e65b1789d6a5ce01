-- Shared by every regression test (\i after CREATE EXTENSION).
-- pg_temp.try(sql): 'ok', or the SQLSTATE and message of the error the statement raised.
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
