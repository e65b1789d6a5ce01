-- pg_kpi's schemas. The extension's objects are created in schema kpi (the
-- control file's schema): what users call. Everything else -- aggregate
-- support functions, trigger functions, job plumbing -- lives in
-- kpi_internal, so that \df kpi.* lists the API and nothing else.

CREATE SCHEMA kpi_internal;
COMMENT ON SCHEMA kpi_internal IS 'pg_kpi internals: not an API, may change in any release';
COMMENT ON SCHEMA kpi IS 'pg_kpi: metrics, percentiles, trends, severities, alerts, rollups, jobs, business KPIs and customer models';
-- who may use them: sql/privileges.sql (roles kpi_reader, kpi_writer, kpi_admin)
