-- Run by scripts/bench.sh. Times the customer-model fits on simulated customers
-- (continuous times, so every row is distinct: the worst case for the fit state).
\set ON_ERROR_STOP 1
\pset footer off
SET jit = off;
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.77);
CREATE UNLOGGED TABLE bench_customers AS
WITH RECURSIVE c AS (
    SELECT g AS id, exp(-2.0 + 1.0 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS lam,
           0.02 + 0.4 * random() AS p, 30 + 9 * random() AS t,
           exp(3 + 0.4 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS spend
    FROM generate_series(1, 100000) g
), walk AS (
    SELECT id, lam, p, t, spend, 0::float8 AS now, 0 AS x, 0::float8 AS total, true AS alive FROM c
    UNION ALL
    SELECT w.id, w.lam, w.p, w.t, w.spend, s.nt, w.x + 1,
           w.total + w.spend * exp(0.3 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())),
           random() >= w.p
    FROM walk w, LATERAL (SELECT w.now - ln(1 - random()) / w.lam AS nt) s
    WHERE w.alive AND s.nt <= w.t
)
SELECT id, t, max(x)::float8 AS frequency, max(now) AS recency,
       CASE WHEN max(x) = 0 THEN 0 ELSE max(total) / max(x) END AS monetary
FROM walk GROUP BY id, t;
VACUUM ANALYZE bench_customers;

CREATE FUNCTION pg_temp.ms(q text, runs int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; times float8[] := '{}';
BEGIN
    FOR i IN 1..runs LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        times := times || (extract(epoch FROM clock_timestamp() - t0) * 1000)::float8;
    END LOOP;
    RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x);
END $$;

\echo 'Customer-model fits (median ms; targets: 2,500 customers well under 1 s, 100,000 <= 10 s)'
SELECT what, customers, round(pg_temp.ms(q, :runs)::numeric, 1) AS ms, target
FROM (VALUES
    ('kpi.bgnbd_fit', 2500, 'SELECT kpi.bgnbd_fit(frequency, recency, t) FROM bench_customers WHERE id <= 2500', '< 1000'),
    ('kpi.bgnbd_fit', 100000, 'SELECT kpi.bgnbd_fit(frequency, recency, t) FROM bench_customers', '<= 10000'),
    ('kpi.gamma_gamma_fit', 2500, 'SELECT kpi.gamma_gamma_fit(frequency, monetary) FROM bench_customers WHERE id <= 2500', '< 1000'),
    ('kpi.gamma_gamma_fit', 100000, 'SELECT kpi.gamma_gamma_fit(frequency, monetary) FROM bench_customers', '<= 10000')
) v(what, customers, q, target);
SELECT (m).r, (m).alpha, (m).a, (m).b, (m).converged FROM (SELECT kpi.bgnbd_fit(frequency, recency, t) AS m FROM bench_customers) x;
