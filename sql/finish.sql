-- Runs last. The Rust support functions of the aggregates and of the stored
-- types get their comments from the catalog (what each one supports), so that
-- every function of the extension has one; tests/pg_regress/sql/catalog.sql
-- checks that none is missing.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT p.oid::regprocedure AS fn,
               string_agg(DISTINCT format('%s of %s', a.role, a.agg), '; ') AS what
        FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        CROSS JOIN LATERAL (
            SELECT ag.aggfnoid::regprocedure::text AS agg,
                   CASE p.oid WHEN ag.aggtransfn THEN 'transition function'
                              WHEN ag.aggfinalfn THEN 'final function'
                              WHEN ag.aggcombinefn THEN 'combine function'
                              WHEN ag.aggserialfn THEN 'serialize function'
                              ELSE 'deserialize function' END AS role
            FROM pg_aggregate ag
            WHERE p.oid IN (ag.aggtransfn, ag.aggfinalfn, ag.aggcombinefn, ag.aggserialfn, ag.aggdeserialfn)
        ) a
        WHERE n.nspname = 'kpi_internal' AND obj_description(p.oid, 'pg_proc') IS NULL
        GROUP BY p.oid
    LOOP
        EXECUTE format('COMMENT ON FUNCTION %s IS %L', r.fn, 'Internal: ' || r.what);
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure AS fn,
               format('%s of type %s',
                      CASE p.oid WHEN t.typinput THEN 'text input' WHEN t.typoutput THEN 'text output'
                                 WHEN t.typreceive THEN 'binary receive' ELSE 'binary send' END,
                      t.oid::regtype) AS what
        FROM pg_type t
        JOIN pg_proc p ON p.oid IN (t.typinput, t.typoutput, t.typreceive, t.typsend)
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'kpi_internal' AND obj_description(p.oid, 'pg_proc') IS NULL
    LOOP
        EXECUTE format('COMMENT ON FUNCTION %s IS %L', r.fn, 'Internal: ' || r.what);
    END LOOP;
END
$$;
