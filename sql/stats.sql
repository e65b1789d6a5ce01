-- The composite results of the statistics aggregates (src/stats.rs, sql/stats_aggregates.sql).

CREATE TYPE kpi.stats AS (
    count bigint, min float8, max float8, mean float8, median float8,
    stddev float8, p95 float8, p99 float8
);
CREATE TYPE kpi.correlation AS (
    r float8, n bigint, t float8, p_value float8, significant boolean
);
COMMENT ON TYPE kpi.stats IS 'Summary statistics: count, min, max, mean, median, sample stddev, p95, p99';
COMMENT ON TYPE kpi.correlation IS 'A correlation test: Pearson r, n, t statistic, two-sided p-value, significant at alpha';
