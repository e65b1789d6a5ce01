-- The catalog as users and BI tools see it: \df kpi.* lists the API only,
-- every function, aggregate, table, view, column and type is commented, and
-- every aggregate can run in parallel (and push down on Citus).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kpi;

-- nothing internal in schema kpi: no helper names, no aggregate support functions
SELECT p.oid::regprocedure AS internal_looking_function_in_kpi
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'kpi'
  AND (p.proname LIKE '\_%' OR p.proname ~ '_(trans|final|combine|serialize|deserialize|in|out|recv|send)$'
       OR p.prorettype IN ('trigger'::regtype, 'internal'::regtype))
ORDER BY 1;

-- every function of the extension has a comment
SELECT p.oid::regprocedure AS function_without_comment
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('kpi', 'kpi_internal') AND obj_description(p.oid, 'pg_proc') IS NULL
ORDER BY 1;

-- every table, view and column users see has one (day partitions inherit the parent's)
SELECT c.oid::regclass AS relation_without_comment
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('kpi', 'kpi_internal') AND c.relkind IN ('r', 'p', 'v')
  AND c.relname !~ '^metrics_p[0-9]{8}$' AND obj_description(c.oid, 'pg_class') IS NULL
ORDER BY 1;
SELECT c.oid::regclass AS relation, a.attname AS column_without_comment
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'kpi' AND c.relkind IN ('r', 'p', 'v') AND a.attnum > 0 AND NOT a.attisdropped
  AND c.relname !~ '^metrics_p[0-9]{8}$' AND c.relname <> 'metrics_default'
  AND col_description(c.oid, a.attnum) IS NULL
ORDER BY 1, 2;
SELECT t.oid::regtype AS type_without_comment
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname IN ('kpi', 'kpi_internal') AND t.typtype IN ('b', 'c', 'e') AND t.typelem = 0
  AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
  AND obj_description(t.oid, 'pg_type') IS NULL
ORDER BY 1;

-- every aggregate is parallel safe; those with an internal state combine, serialize and deserialize
SELECT a.aggfnoid::regprocedure AS aggregate_that_cannot_run_in_parallel
FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('kpi', 'kpi_internal')
  AND (p.proparallel <> 's' OR a.aggcombinefn = 0
       OR (a.aggtranstype = 'internal'::regtype AND (a.aggserialfn = 0 OR a.aggdeserialfn = 0)))
ORDER BY 1;

-- the functions that are not parallel safe, and why: they write, or read session state
SELECT p.oid::regprocedure::text AS function, p.proparallel AS parallel, p.provolatile AS volatility
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'kpi' AND p.proparallel <> 's'
ORDER BY 1;

-- the public API, by kind
SELECT CASE p.prokind WHEN 'a' THEN 'aggregate' WHEN 'f' THEN 'function' ELSE 'procedure' END AS kind,
       count(*) AS objects
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'kpi'
GROUP BY 1 ORDER BY 1;

DROP EXTENSION pg_kpi;
