-- Row-level security by tenant: each tenant is a login role, and a row
-- belongs to the tenant named by its "tenant" tag (metrics), its "tenant"
-- grouping tag (summaries), its "tenant" label (alerts) or its metadata's
-- "tenant" (revenue events; a customer belongs to the tenants of its events). Tenants read and write only their
-- rows; kpi_admin sees everything; the alert trigger, the change log and the
-- job worker run with the extension owner's rights and are not filtered.
--
-- Run as a superuser in a database with pg_kpi. Tenants query per tenant:
-- kpi.timeseries('latency', from, to, 500, '{"tenant": "acme"}') reads the
-- summaries of a rollup grouped by tenant (whole-metric summaries, series
-- '{}', belong to no tenant and are hidden from them).

-- the rollups a tenant's panels read: grouped by tenant
SELECT kpi.add_rollup('1 minute', group_by_tags => '{tenant}')
WHERE NOT EXISTS (SELECT FROM kpi.rollups WHERE resolution = '1 minute' AND group_by_tags = '{tenant}');

ALTER TABLE kpi.metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE kpi.summaries ENABLE ROW LEVEL SECURITY;
ALTER TABLE kpi.alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE kpi.revenue_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE kpi.customers ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_rows ON kpi.metrics TO kpi_reader
    USING (tags ->> 'tenant' = current_user) WITH CHECK (tags ->> 'tenant' = current_user);
CREATE POLICY tenant_rows ON kpi.summaries TO kpi_reader
    USING (series ->> 'tenant' = current_user);
CREATE POLICY tenant_rows ON kpi.alerts TO kpi_reader
    USING (labels ->> 'tenant' = current_user);
CREATE POLICY tenant_rows ON kpi.revenue_events TO kpi_reader
    USING (metadata ->> 'tenant' = current_user) WITH CHECK (metadata ->> 'tenant' = current_user);
CREATE POLICY tenant_rows ON kpi.customers TO kpi_reader
    USING (EXISTS (SELECT FROM kpi.revenue_events e WHERE e.customer_id = customers.customer_id))
    WITH CHECK (true);

-- administrators see and manage every tenant's rows
CREATE POLICY admin_rows ON kpi.metrics TO kpi_admin USING (true) WITH CHECK (true);
CREATE POLICY admin_rows ON kpi.summaries TO kpi_admin USING (true) WITH CHECK (true);
CREATE POLICY admin_rows ON kpi.alerts TO kpi_admin USING (true) WITH CHECK (true);
CREATE POLICY admin_rows ON kpi.revenue_events TO kpi_admin USING (true) WITH CHECK (true);
CREATE POLICY admin_rows ON kpi.customers TO kpi_admin USING (true) WITH CHECK (true);

-- a tenant: CREATE ROLE acme LOGIN PASSWORD '...' IN ROLE kpi_writer;
