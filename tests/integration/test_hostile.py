"""Hostile input for every public function and aggregate of schema kpi.

Generated from the catalog (pg_proc of namespace kpi): each function is called once per
(argument position, hostile value of that argument's type) with the other arguments at a valid
baseline; each aggregate over a small VALUES list holding the hostile value (one row of it among
valid rows, and every row). Custom types also get garbage text and random/mutated bytes through
their input and receive functions.

Each call runs in its own transaction (rolled back, so side effects never leak between calls)
with a statement timeout. An outcome is ok, an error with a SQLSTATE, a timeout (57014, reported
as "slow"), XX000 (a bug: usually a Rust panic), or a lost connection (a bug: a backend crash;
the server log is checked for "terminated by signal" at the end). A test fails on XX000 or a
crash and passes otherwise. Every outcome is written to $KPI_HOSTILE_RESULTS (JSON lines) for
review, and a summary of the suspicious ones is printed.

Env: KPI_TEST_DSN (admin DSN, see hostile_seed.py), KPI_TEST_SERVER_LOG (server log to scan, skipped
when unreadable), KPI_HOSTILE_TIMEOUT (statement timeout, default 5s), KPI_HOSTILE_RESULTS.
"""
import json
import os
import random
import re
import time

import psycopg
import pytest
from psycopg.adapt import Dumper
from psycopg.pq import Format

from hostile_seed import drop_session_db, session_dsn

TIMEOUT = os.environ.get("KPI_HOSTILE_TIMEOUT", "5s")
SERVER_LOG = os.environ.get(
    "KPI_TEST_SERVER_LOG", os.path.join(os.environ.get("KPI_TEST_DATA", "/var/tmp/pg_kpi/test"), "server.log")
)
RESULTS = os.environ.get("KPI_HOSTILE_RESULTS", "/tmp/pg_kpi_hostile_results.jsonl")

# ---------------------------------------------------------------------------------------------
# Hostile values per argument type: (label, SQL expression). Expressions are built server side
# so huge values cost no client traffic, and each is a one-line SQL fragment for reproduction.
# ---------------------------------------------------------------------------------------------
F8 = "float8"
HUGE_TEXT = "repeat('x', 100000)"
DEEP_ARRAY = "(repeat('[', 1000) || repeat(']', 1000))::jsonb"
DEEP_OBJECT = "(repeat('{\"a\": ', 1000) || '1' || repeat('}', 1000))::jsonb"
BIG_OBJECT = "(SELECT jsonb_object_agg('key_' || g, repeat('v', 10)) FROM generate_series(1, 40000) g)"

HOSTILE = {
    "double precision": [
        ("NULL", "NULL::float8"), ("NaN", "'NaN'::float8"), ("Infinity", "'Infinity'::float8"),
        ("-Infinity", "'-Infinity'::float8"), ("1e308", "1e308::float8"), ("-1e308", "-1e308::float8"),
        ("5e-324", "5e-324::float8"), ("0", "0::float8"), ("-1", "-1::float8"),
    ],
    "real": [
        ("NULL", "NULL::float4"), ("NaN", "'NaN'::float4"), ("Infinity", "'Infinity'::float4"),
        ("-Infinity", "'-Infinity'::float4"), ("3e38", "3e38::float4"), ("0", "0::float4"),
    ],
    "integer": [
        ("NULL", "NULL::int"), ("0", "0::int"), ("-1", "(-1)::int"), ("int_max", "2147483647::int"),
        ("int_min", "(-2147483648)::int"),
    ],
    "smallint": [("NULL", "NULL::int2"), ("0", "0::int2"), ("-1", "(-1)::int2"), ("max", "32767::int2"),
                 ("min", "(-32768)::int2")],
    "bigint": [
        ("NULL", "NULL::int8"), ("0", "0::int8"), ("-1", "(-1)::int8"), ("int_max", "2147483647::int8"),
        ("int_min", "(-2147483648)::int8"), ("bigint_max", "9223372036854775807::int8"),
        ("bigint_min", "(-9223372036854775808)::int8"),
    ],
    "numeric": [
        ("NULL", "NULL::numeric"), ("NaN", "'NaN'::numeric"), ("1e100", "1e100::numeric"),
        ("-1e100", "-1e100::numeric"), ("0", "0::numeric"), ("Infinity", "'Infinity'::numeric"),
        ("-Infinity", "'-Infinity'::numeric"), ("1e-100", "1e-100::numeric"), ("-1", "(-1)::numeric"),
        ("29_digits", "12345678901234567890123456789::numeric"),
    ],
    "text": [
        ("NULL", "NULL::text"), ("empty", "''::text"), ("100k_chars", HUGE_TEXT),
        ("sql_injection", "'x''; DROP TABLE kpi.metrics; --'::text"), ("newline_script", "E'\\n<script>'::text"),
        ("unicode", "'ünï©ødé 日本語 🎉 \u202e'::text"), ("percent", "'%'::text"), ("blank", "'   '::text"),
    ],
    "jsonb": [
        ("NULL", "NULL::jsonb"), ("empty_object", "'{}'::jsonb"), ("empty_array", "'[]'::jsonb"),
        ("json_null", "'null'::jsonb"), ("string", "'\"s\"'::jsonb"), ("number", "'1e1000'::jsonb"),
        ("deep_array_1000", DEEP_ARRAY), ("deep_object_1000", DEEP_OBJECT), ("object_1MB", BIG_OBJECT),
        ("nan_like_strings", "'{\"a\": \"NaN\", \"b\": \"Infinity\", \"c\": \"-Infinity\", \"d\": 1e308}'::jsonb"),
    ],
    "double precision[]": [
        ("NULL", "NULL::float8[]"), ("empty", "'{}'::float8[]"), ("null_element", "'{NULL}'::float8[]"),
        ("1M_elements", "(SELECT array_agg(g::float8) FROM generate_series(1, 1000000) g)"),
        ("mixed_nan", "'{1,NaN,Infinity,-Infinity,NULL,1e308,-1e308,5e-324}'::float8[]"),
        ("two_dim", "'{{0.1,0.2},{0.3,0.4}}'::float8[]"), ("lower_bound_5", "'[5:6]={0.5,0.9}'::float8[]"),
    ],
    "numeric[]": [
        ("NULL", "NULL::numeric[]"), ("empty", "'{}'::numeric[]"), ("null_element", "'{NULL}'::numeric[]"),
        ("1M_elements", "(SELECT array_agg(g::numeric) FROM generate_series(1, 1000000) g)"),
        ("mixed_nan", "'{1,NaN,Infinity,-Infinity}'::numeric[]"), ("extremes", "'{1e100,-1e100,1e-100}'::numeric[]"),
        ("two_dim", "'{{1,2},{3,4}}'::numeric[]"),
    ],
    "text[]": [
        ("NULL", "NULL::text[]"), ("empty", "'{}'::text[]"), ("null_element", "'{NULL}'::text[]"),
        ("empty_string", "'{\"\"}'::text[]"),
        ("100k_elements", "(SELECT array_agg('t' || g) FROM generate_series(1, 100000) g)"),
        ("huge_element", f"ARRAY[{HUGE_TEXT}]"), ("two_dim", "'{{a,b},{c,d}}'::text[]"),
        ("injection", "ARRAY['x''; DROP TABLE kpi.metrics; --', '\"}{']"),
    ],
    "interval": [
        ("NULL", "NULL::interval"), ("-1_day", "'-1 day'::interval"), ("zero", "'0'::interval"),
        ("1_microsecond", "'1 microsecond'::interval"), ("1_month", "'1 month'::interval"),
        ("178M_years", "'178000000 years'::interval"), ("-178M_years", "'-178000000 years'::interval"),
        ("max_days", "'2147483647 days'::interval"), ("max_hours", "'2562047788:00:54.775807'::interval"),
        ("min_hours", "'-2562047788:00:54.775807'::interval"),
    ],
    "timestamp with time zone": [
        ("NULL", "NULL::timestamptz"), ("infinity", "'infinity'::timestamptz"),
        ("-infinity", "'-infinity'::timestamptz"), ("4713BC", "'4713-01-01 00:00:00+00 BC'::timestamptz"),
        ("294276AD", "'294276-12-31 23:59:59+00'::timestamptz"), ("now", "now()"),
        ("epoch", "'1970-01-01 00:00:00+00'::timestamptz"),
    ],
    "date": [
        ("NULL", "NULL::date"), ("infinity", "'infinity'::date"), ("-infinity", "'-infinity'::date"),
        ("4713BC", "'4713-01-01 BC'::date"), ("5874897AD", "'5874897-12-31'::date"), ("today", "current_date"),
    ],
    "boolean": [("NULL", "NULL::boolean"), ("true", "true"), ("false", "false")],
    "kpi.severity_level": [
        ("NULL", "NULL::kpi.severity_level"), ("optimal", "'optimal'::kpi.severity_level"),
        ("emergency", "'emergency'::kpi.severity_level"),
    ],
    "kpi.sketch": [
        ("NULL", "NULL::kpi.sketch"),
        ("one_value", "(SELECT kpi.sketch_agg(42::float8))"),
        ("zero_only", "(SELECT kpi.sketch_agg(0::float8))"),
        ("extremes", "(SELECT kpi.sketch_agg(v) FROM unnest('{1e308,-1e308,5e-324,-5e-324,0}'::float8[]) v)"),
        ("collapsed_1e-6", "(SELECT kpi.sketch_agg(v, 1e-6) FROM (SELECT (CASE WHEN g % 2 = 0 THEN 1 ELSE -1 END)"
                           " * power(10::float8, (g % 600) - 300) v FROM generate_series(1, 20000) g) s)"),
        ("error_0.5", "(SELECT kpi.sketch_agg(g::float8, 0.5) FROM generate_series(1, 1000) g)"),
        ("error_0.05", "(SELECT sk05 FROM public.hostile_vals)"),
        ("negatives", "(SELECT kpi.sketch_agg(-g::float8) FROM generate_series(1, 1000) g)"),
    ],
    "kpi.trend": [
        ("NULL", "NULL::kpi.trend"),
        ("one_point", "(SELECT kpi.trend_agg(1::float8, 2::float8))"),
        ("constant_x", "(SELECT kpi.trend_agg(1::float8, g::float8) FROM generate_series(1, 10) g)"),
        ("constant_y", "(SELECT kpi.trend_agg(g::float8, 1::float8) FROM generate_series(1, 10) g)"),
        ("huge_values", "(SELECT kpi.trend_agg(v, -v) FROM unnest('{1e300,-1e300,1e308,5e-324}'::float8[]) v)"),
        ("epoch_seconds", "(SELECT kpi.trend_agg(now() - g * interval '1 second', g::float8) FROM generate_series(1, 100) g)"),
        ("two_points", "(SELECT kpi.trend_agg(x, y) FROM (VALUES (0::float8, 0::float8), (1, 1e308)) v(x, y))"),
    ],
}

# Composite types of schema kpi: built from their fields (see composite_hostile()).
COMPOSITE_FIELD_VALUES = {
    "double precision": {"nan": "'NaN'", "inf": "'Infinity'", "-inf": "'-Infinity'", "zero": "0", "neg": "-1",
                         "huge": "1e308", "tiny": "5e-324"},
    "bigint": {"nan": "1", "inf": "9223372036854775807", "-inf": "(-9223372036854775808)", "zero": "0",
               "neg": "(-1)", "huge": "9223372036854775807", "tiny": "1"},
    "boolean": {k: "true" for k in ("nan", "inf", "-inf", "zero", "neg", "huge", "tiny")},
}

# Extra hostile values for arguments whose text or JSON has a grammar of its own.
EXTRA = {
    ("record_batch", "batch"): [
        ("huge_value", "'[{\"metric\": \"m\", \"value\": 1e308}]'"),
        ("value_1e400", "'[{\"metric\": \"m\", \"value\": 1e400}]'"),
        ("ts_1e300", "'{\"metric\": \"m\", \"value\": 1, \"timestamp\": 1e300}'"),
        ("ts_neg", "'{\"metric\": \"m\", \"value\": 1, \"timestamp\": -1e20}'"),
        ("ts_ms_huge", "'{\"metric\": \"m\", \"value\": 1, \"timestamp_ms\": 9.3e18}'"),
        ("ts_ms_frac", "'{\"metric\": \"m\", \"value\": 1, \"timestamp_ms\": -0.5}'"),
        ("ts_infinity", "'{\"metric\": \"m\", \"value\": 1, \"timestamp\": \"infinity\"}'"),
        ("ts_garbage", "'{\"metric\": \"m\", \"value\": 1, \"timestamp\": \"2026-13-45T99:99:99Z\"}'"),
        ("ts_bc", "'{\"metric\": \"m\", \"value\": 1, \"timestamp\": \"4714-11-24T00:00:00Z BC\"}'"),
        ("value_string", "'{\"metric\": \"m\", \"value\": \"NaN\"}'"),
        ("tags_deep", "jsonb_build_object('metric', 'm', 'value', 1, 'tags', " + DEEP_OBJECT + ")"),
        ("metric_number", "'{\"metric\": 5, \"value\": 1}'"),
        ("1001_elements", "(SELECT jsonb_agg(jsonb_build_object('metric', 'm', 'value', g)) FROM generate_series(1, 1001) g)"),
        ("array_of_arrays", "'[[1]]'"),
    ],
    ("add_job", "config"): [
        ("command_null", "'{\"command\": null}'"), ("command_number", "'{\"command\": 5}'"),
        ("ahead_garbage", "'{\"ahead\": \"soon\"}'"), ("rollup_huge", "'{\"rollup_id\": 1e300}'"),
    ],
    ("add_job", "schedule_cron"): [
        ("7_fields", "'* * * * * * *'"), ("feb_30", "'0 0 30 2 *'"), ("step_0", "'*/0 * * * *'"),
        ("year_9999", "'0 0 1 1 * 9999'"), ("range_rev", "'59-0 * * * *'"), ("L_W", "'0 0 LW * *'"),
        ("hash_big", "'0 0 * * 5#9'"), ("huge_num", "'99999999999999999999 * * * *'"),
    ],
    ("cron_next", "cron"): [
        ("7_fields", "'* * * * * * *'"), ("feb_30", "'0 0 30 2 *'"), ("step_0", "'*/0 * * * *'"),
        ("year_9999", "'0 0 1 1 * 9999'"), ("year_1900", "'0 0 1 1 * 1900'"), ("range_rev", "'59-0 * * * *'"),
        ("L_W", "'0 0 LW * *'"), ("hash_big", "'0 0 * * 5#9'"), ("huge_num", "'99999999999999999999 * * * *'"),
        ("seconds_every", "'* * * * * *'"), ("at_every", "'@every 1s'"), ("Lminus", "'0 0 L-40 * *'"),
    ],
    ("cron_next", "timezone"): [("mars", "'Mars/Phobos'"), ("offset_huge", "'+99:99'"), ("posix", "'UTC+1000'"),
                                ("localtime", "'localtime'")],
    ("add_job", "schedule_timezone"): [("mars", "'Mars/Phobos'"), ("offset_huge", "'+99:99'")],
    ("add_alert_rule", "aggregate"): [
        ("p100", "'p100'"), ("p0", "'p0'"), ("p_many_digits", "'p99.99999999999'"), ("p_exp", "'p1e308'"),
        ("pNaN", "'pNaN'"), ("p_neg", "'p-5'"), ("P95", "'P95'"), ("p", "'p'"),
    ],
    ("add_alert_rule", "comparator"): [("eq", "'=='"), ("ne", "'<>'")],
    ("add_alert_rule", "annotations"): [
        ("unbalanced", "'{\"summary\": \"{{value\"}'"), ("unknown_ph", "'{\"summary\": \"{{nope}}\"}'"),
        ("nested_ph", "'{\"summary\": \"{{{{value}}}}\"}'"), ("not_string", "'{\"summary\": 5}'"),
        ("labels_empty", "'{\"summary\": \"{{labels.}}\"}'"),
    ],
    ("add_alert_rule", "labels"): [("not_string", "'{\"a\": [1]}'"), ("bad_name", "'{\"a b\": \"x\"}'")],
    ("add_receiver", "url"): [
        ("ipv6_open", "'http://[::1'"), ("port_huge", "'http://x:99999/'"), ("creds", "'http://a:b@c/'"),
        ("ftp", "'ftp://x/'"), ("no_host", "'http:///x'"), ("fragment", "'http://x/#f'"),
    ],
    ("add_receiver", "headers"): [
        ("newline", "'{\"X\": \"a\\nb\"}'"), ("bad_name", "'{\"a b\": \"x\"}'"), ("not_string", "'{\"X\": 1}'"),
        ("empty_name", "'{\"\": \"x\"}'"),
    ],
    ("silence", "matchers"): [
        ("unknown", "'{\"x\": 1}'"), ("severity_bad", "'{\"severity\": \"meh\"}'"), ("labels_array", "'{\"labels\": []}'"),
        ("metric_number", "'{\"metric\": 1}'"),
    ],
    ("backtest_rule", "rule"): [
        ("minimal", "'{\"metric\": \"m\", \"aggregate\": \"avg\", \"window\": \"5 minutes\", \"comparator\": \">\", \"warning\": 1}'"),
        ("window_huge", "'{\"metric\": \"m\", \"aggregate\": \"avg\", \"window\": \"178000000 years\", \"comparator\": \">\", \"warning\": 1}'"),
        ("window_garbage", "'{\"metric\": \"m\", \"aggregate\": \"avg\", \"window\": \"soon\", \"comparator\": \">\", \"warning\": 1}'"),
        ("warning_string", "'{\"metric\": \"m\", \"aggregate\": \"avg\", \"window\": \"5 minutes\", \"comparator\": \">\", \"warning\": \"NaN\"}'"),
        ("pct_rule", "'{\"metric\": \"m\", \"aggregate\": \"p99.9\", \"window\": \"5 minutes\", \"comparator\": \">\", \"warning\": 1}'"),
        ("forecast_rule", "'{\"metric\": \"m\", \"aggregate\": \"forecast\", \"window\": \"5 minutes\", \"comparator\": \">\", \"warning\": 1, \"horizon\": \"178000000 years\"}'"),
    ],
    ("take_report_snapshot", "args"): [
        ("from_given", "'{\"from\": \"2026-01-01\"}'"), ("unknown_arg", "'{\"nope\": 1}'"),
        ("wrong_type", "'{\"metrics\": 5}'"), ("nested_array", "'{\"metrics\": [[1]]}'"),
        ("injection", "'{\"metrics\": [\"x\\\"; DROP TABLE kpi.metrics; --\"]}'"),
    ],
    ("take_report_snapshot", "report"): [("unknown", "'nope'"), ("quoted", "'\"performance_report\"'"),
                                         ("schema_qualified", "'pg_catalog.now'"), ("text_report", "'html_report'")],
}

# ---------------------------------------------------------------------------------------------
# Baselines: valid values per (function, argument), argument name, then type.
# ---------------------------------------------------------------------------------------------
ID = "(SELECT id FROM public.hostile_ids WHERE name = '{}')"
BASE_BY_FUNC_ARG = {
    ("add_alert_rule", "name"): "'newrule'", ("add_alert_rule", "warning"): "30",
    ("add_alert_rule", "critical"): "100", ("add_alert_rule", "resolve_threshold"): "NULL",
    ("add_alert_rule", "denominator_metric"): "NULL",
    ("alter_alert_rule", "warning"): "30", ("alter_alert_rule", "critical"): "100",
    ("alter_alert_rule", "resolve_threshold"): "NULL", ("alter_alert_rule", "denominator_metric"): "NULL",
    ("add_receiver", "name"): "'newrcv'", ("add_receiver", "kind"): "'webhook'",
    ("add_job", "kind"): "'sql'", ("add_job", "config"): "'{\"command\": \"SELECT 1\"}'",
    ("add_job", "schedule_interval"): "NULL", ("add_job", "next_run"): "NULL",
    ("add_job", "max_runtime"): "'1 minute'",
    ("alter_job", "schedule_interval"): "'2 hours'", ("alter_job", "config"): "NULL",
    ("alter_job", "schedule_cron"): "NULL", ("alter_job", "schedule_timezone"): "NULL",
    ("add_rollup", "resolution"): "'5 minutes'", ("add_rollup", "source_resolution"): "'1 minute'",
    ("add_rollup", "schedule"): "NULL", ("add_rollup", "group_by_tags"): "'{}'",
    ("add_retention", "target"): "'metrics'", ("add_retention", "keep"): "'30 days'",
    ("anomaly_level", "z"): "3.5", ("anomaly_level", "warning"): "3", ("anomaly_level", "critical"): "4",
    ("severity", "value"): "35", ("severity", "optimal"): "10", ("severity", "good"): "20",
    ("severity", "warning"): "50", ("severity", "critical"): "100",
    ("breach_severity", "value"): "120", ("breach_severity", "threshold"): "100",
    ("zscore", "value"): "5", ("zscore", "mean"): "3", ("zscore", "stddev"): "1",
    ("performance_grade", "avg_response_ms"): "250", ("performance_grade", "error_rate_pct"): "1",
    ("performance_grade", "expected_response_ms"): "200",
    ("grade", "pct_meeting_target"): "85", ("health_status", "score"): "75",
    ("roi", "revenue"): "15000", ("roi", "investment"): "10000",
    ("break_even_days", "investment"): "1000", ("break_even_days", "revenue_per_day"): "10",
    ("payback_period", "investment"): "1000", ("payback_period", "cash_flows"): "'{400,300,600,100}'",
    ("clv", "arpu"): "50", ("clv_simple", "avg_monthly_revenue"): "50",
    ("cac_payback_months", "cac"): "600", ("cac_payback_months", "arpa"): "50",
    ("ltv_cac_ratio", "ltv"): "900", ("ltv_cac_ratio", "cac"): "300",
    ("growth", "current"): "110", ("growth", "previous"): "100",
    ("churn_rate", "customers_at_start"): "100", ("churn_rate", "churned"): "5",
    ("churn_probability", "days_inactive"): "15", ("churn_probability", "revenue_momentum"): "0.8",
    ("engagement_score", "features_used"): "4",
    ("roi_report", "investment"): "800", ("roi_report", "period"): "'60 days'",
    ("roi_report", "feature_id"): "'reports'",
    ("expected_purchases", "horizon"): "52", ("expected_purchases", "frequency"): "2",
    ("expected_purchases", "recency"): "20", ("expected_purchases", "t"): "30",
    ("p_alive", "frequency"): "2", ("p_alive", "recency"): "20", ("p_alive", "t"): "30",
    ("clv_bgnbd", "frequency"): "2", ("clv_bgnbd", "recency"): "20", ("clv_bgnbd", "t"): "30",
    ("clv_bgnbd", "monetary"): "25", ("clv_bgnbd", "months"): "12", ("clv_bgnbd", "periods_per_month"): "4.345",
    ("expected_spend", "frequency"): "2", ("expected_spend", "monetary"): "25",
    ("sbg_churn_probability", "t"): "3", ("sbg_retention", "t"): "3", ("sbg_survival", "t"): "3",
    ("forecast", "x"): "150", ("direction", "threshold"): "5", ("direction", "per"): "'1 hour'",
    ("direction", "threshold_per_second"): "0", ("approx_rank", "value"): "50",
    ("timeseries", "points"): "100", ("deliver_now", "max"): "10",
    ("kpi_status", "trend_periods"): "6", ("kpi_status", "trend_threshold_pct"): "1",
    ("business_value_report", "top_customers"): "10", ("capacity_forecast", "min_points"): "3",
    ("capacity_forecast", "major_growth_pct"): "50", ("capacity_forecast", "gradual_growth_pct"): "20",
    ("capacity_forecast", "reduction_pct"): "20",
    ("load_test_report", "slow_ms"): "1000", ("load_test_report", "very_slow_ms"): "2000",
    ("load_test_report", "error_pct"): "5", ("load_test_report", "high_error_pct"): "20",
    ("load_test_report", "min_throughput"): "5",
    ("performance_report", "p95_response_time_limit"): "500", ("performance_report", "utilization_limit"): "80",
    ("performance_report", "error_rate_limit"): "1", ("performance_report", "trend_strength_limit"): "0.5",
    ("performance_table", "p95_response_time_limit"): "500", ("performance_table", "utilization_limit"): "80",
    ("performance_table", "error_rate_limit"): "1", ("performance_table", "trend_strength_limit"): "0.5",
    ("take_report_snapshot", "period"): "'1 day'", ("take_report_snapshot", "job_id"): "NULL",
    ("refresh", "from_ts"): "now() - interval '2 hours'", ("refresh", "to_ts"): "now()",
    ("series", "resolution"): "'1 minute'", ("series", "from_ts"): "now() - interval '2 hours'",
    ("series", "to_ts"): "now()", ("report", "bucket"): "'1 hour'", ("health", "since"): "'1 hour'",
    ("create_partitions", "from_ts"): "now() - interval '1 day'", ("create_partitions", "to_ts"): "now() + interval '2 days'",
    ("refresh", "rollup_id"): ID.format("rollup"), ("drop_rollup", "rollup_id"): ID.format("rollup_hour"),
    ("load_test_report", "id"): ID.format("load_test"), ("resolve_quiet_alerts", "at"): "now()",
    ("metric_correlation", "b"): "'m2'", ("alert_fingerprint", "source"): "'rule'",
    ("alert_fingerprint", "key"): "'k'", ("alert_fingerprint", "labels"): "'{\"host\": \"h1\"}'",
    ("backtest_rule", "from"): "now() - interval '1 hour'", ("backtest_rule", "step"): "'1 minute'",
    ("timeseries", "from"): "now() - interval '1 day'",
    ("add_rollup", "metrics"): "'m%'", ("drop_receiver", "name"): "'rcv'",
    ("severity_score", "level"): "'warning'",
    ("backtest_rule", "rule"): "'r'",
}
BASE_BY_FUNC_ARG_TYPE = {
    ("backtest_rule", "rule", "jsonb"):
        "'{\"metric\": \"m\", \"aggregate\": \"p95\", \"window\": \"5 minutes\", \"comparator\": \">\", \"warning\": 30}'",
}
BASE_BY_ARG = {
    "metric": "'m'", "a": "'m'", "b": "'m2'", "name": "'r'", "rule": "'r'", "aggregate": "'p95'",
    "comparator": "'>'", "url": "'http://127.0.0.1:9/hook'", "direction": "'lower_is_better'",
    "mode": "'normal'", "cron": "'0 * * * *'", "timezone": "'UTC'", "schedule_cron": "'0 * * * *'",
    "schedule_timezone": "'UTC'", "currency": "'USD'", "customer_id": "'a'", "service": "'api'",
    "feature_id": "'reports'", "grade": "'A'", "category": "'response_time'",
    "revenue_type": "'subscription'", "segment": "'smb'", "report": "'performance_report'",
    "by": "'tester'", "comment": "'c'", "created_by": "'tester'", "target": "'alerts'",
    "response_time": "'m'", "throughput": "'m2'", "error_rate": "'m'", "availability": "'m2'",
    "metrics": "'{m}'", "group_by": "'{host}'", "group_by_tags": "'{}'", "response_time_metrics": "'{m}'",
    "utilization_metrics": "'{m2}'", "error_rate_metrics": "'{m}'", "revenue_types": "NULL",
    "tags": "'{}'", "metadata": "'{}'", "labels": "'{}'", "annotations": "'{\"summary\": \"{{value}}\"}'",
    "headers": "'{}'", "matchers": "'{\"metric\": \"m\"}'", "args": "'{}'", "config": "'{\"command\": \"SELECT 1\"}'",
    "batch": "'[{\"metric\": \"m\", \"value\": 1}]'",
    "alert_id": ID.format("alert"), "silence_id": ID.format("silence"), "policy_id": ID.format("retention"),
    "job_id": ID.format("job"), "rollup_id": ID.format("rollup"),
    "p": "0.5", "ps": "'{0.5,0.95}'", "alpha": "0.05", "level": "0.95", "relative_error": "0.01",
    "threshold": "0.1", "threshold_per_sample": "0.1", "trend_threshold": "0.1",
    "churn_rate": "0.05", "churn_probability": "0.05", "gross_margin": "0.8", "discount_rate": "0.01",
    "monthly_discount": "0.01", "monthly": "0.05", "value": "5", "warning": "3", "critical": "4",
    "x": "1", "y": "2", "penalizer": "0", "horizon": "'15 minutes'", "history": "'30 days'",
    "window": "'5 minutes'", "range": "'24 hours'", "granularity": "'1 hour'", "bucket": "'1 hour'",
    "for": "'0'", "keep_firing_for": "'0'", "baseline": "'24 hours'", "lag": "'1 minute'",
    "repeat_interval": "'4 hours'", "retry_period": "'1 minute'", "schedule": "'1 hour'", "keep": "'30 days'",
    "period": "'7 days'", "grace": "'3 days'", "per": "'1 second'", "step": "'1 minute'",
    "from": "now() - interval '30 days'", "to": "now() - interval '1 hour'",
    "a_from": "now() - interval '2 days'", "a_to": "now() - interval '1 day'",
    "b_from": "now() - interval '1 day'", "b_to": "now()", "at": "now()", "after": "now()",
    "starts_at": "now()", "ends_at": "now() + interval '1 hour'", "observation_end": "now()",
    "ts": "now()", "next_run": "NULL", "max_retries": "10", "max_runtime": "NULL",
    "send_resolved": "true", "enabled": "true", "paid_last_30_days": "true",
    "login_frequency": "0.5", "support_satisfaction": "0.5", "support_issues": "0.5", "engagement": "0.5",
    "values": "'{3,5,4,NULL,9,12,8}'", "s": "(SELECT sk FROM public.hostile_vals)",
    "t": "(SELECT tr FROM public.hostile_vals)", "bg": "(SELECT bg FROM public.hostile_vals)",
    "gg": "(SELECT gg FROM public.hostile_vals)", "source_resolution": "NULL", "resolution": "'1 minute'",
    "slow_growth_pct": "10", "rapid_growth_pct": "50", "churn_rate_pct": "10", "ltv_cac_ratio": "3",
    "adoption_pct": "20", "id": ID.format("load_test"),
}
BASE_BY_TYPE = {
    "double precision": "0.5", "real": "0.5", "integer": "3", "smallint": "3", "bigint": "1", "numeric": "100",
    "text": "'m'", "jsonb": "'{}'", "interval": "'1 hour'", "timestamp with time zone": "now()",
    "date": "current_date", "boolean": "true", "double precision[]": "'{1,2,3}'",
    "numeric[]": "'{1,2,3}'", "text[]": "'{m}'", "kpi.severity_level": "'warning'",
    "kpi.sketch": "(SELECT sk FROM public.hostile_vals)", "kpi.trend": "(SELECT tr FROM public.hostile_vals)",
    "kpi.bgnbd": "(SELECT bg FROM public.hostile_vals)", "kpi.gamma_gamma": "(SELECT gg FROM public.hostile_vals)",
    "kpi.sbg": "(SELECT sbg FROM public.hostile_vals)",
}
# Functions whose dates are a period: from a month ago to yesterday.
DATE_FROM, DATE_TO = "current_date - 60", "current_date - 1"

# Rows for aggregates (one SQL expression per argument), by name and argument types.
AGG_ROWS = {
    "bgnbd_fit": [("2", "5", "10", "0"), ("0", "0", "10", "0"), ("1", "3", "8", "0"), ("3", "9", "10", "0"),
                  ("0", "0", "5", "0"), ("1", "2", "6", "0")],
    "correlation_test": [("1", "2", "0.05"), ("2", "4", "0.05"), ("3", "5", "0.05"), ("4", "4", "0.05"),
                         ("5", "5", "0.05")],
    "gamma_gamma_fit": [("2", "10"), ("3", "20"), ("1", "15"), ("4", "12"), ("2", "30"), ("0", "0")],
    "health_score": [("'optimal'",), ("'good'",), ("'warning'",), ("'critical'",)],
    "overall_grade": [("'A'",), ("'B'",), ("'C'",)],
    "payback_days": [(f"now() - interval '{d} days'", "100", "250", "now() - interval '11 days'") for d in (10, 9, 8, 7)],
    "percentile": [(str(v), "0.5") for v in (1, 2, 3, 4, 5)],
    "percentiles": [(str(v), "'{0.5,0.95}'") for v in (1, 2, 3, 4, 5)],
    "rollup_agg": [(f"now() - interval '{v} minutes'", str(v)) for v in (1, 2, 3, 4, 5)],
    "sbg_fit": [("0", "1000"), ("1", "631"), ("2", "468"), ("3", "382"), ("4", "326")],
    "sketch_agg:value": [(str(v), "0.01") for v in (1, 2, 3, 4, 5)],
    "sketch_agg:s": [("(SELECT sk FROM public.hostile_vals)",)] * 3,
    "summary_stats": [(str(v), "0.01") for v in (1, 2, 3, 4, 5)],
    "trend_agg:x": [(str(v), str(2 * v + 1)) for v in (1, 2, 3, 4, 5)],
    "trend_agg:ts": [(f"now() - interval '{v} minutes'", str(v)) for v in (1, 2, 3, 4, 5)],
    "trend_agg:t": [("(SELECT tr FROM public.hostile_vals)",)] * 3,
}


def baseline(func, arg, typ):
    if (func, arg, typ) in BASE_BY_FUNC_ARG_TYPE:
        return BASE_BY_FUNC_ARG_TYPE[(func, arg, typ)]
    if (func, arg) in BASE_BY_FUNC_ARG:
        return BASE_BY_FUNC_ARG[(func, arg)]
    if typ == "date":
        if arg in ("from",):
            return DATE_FROM
        if arg in ("to",):
            return DATE_TO
    if arg in BASE_BY_ARG:
        return BASE_BY_ARG[arg]
    return BASE_BY_TYPE[typ]


def hostile_values(func, arg, typ, composites):
    if typ in HOSTILE:
        vals = list(HOSTILE[typ])
    elif typ in composites:
        vals = composite_hostile(typ, composites[typ])
    else:
        vals = None
    if vals is not None:
        vals += [(label, f"({expr})::{typ_sql(typ)}") for label, expr in EXTRA.get((func, arg), [])]
    return vals


def composite_hostile(typ, fields):
    vals = [("NULL", f"NULL::{typ}"), ("all_null_fields", f"ROW({', '.join('NULL' for _ in fields)})::{typ}")]
    for variant in ("nan", "inf", "-inf", "zero", "neg", "huge", "tiny"):
        parts = []
        for ftype in fields:
            parts.append(COMPOSITE_FIELD_VALUES.get(ftype, {}).get(variant, "NULL") + f"::{typ_sql(ftype)}")
        vals.append((f"fields_{variant}", f"ROW({', '.join(parts)})::{typ}"))
    return vals


def typ_sql(t):
    return {"double precision": "float8", "timestamp with time zone": "timestamptz",
            "double precision[]": "float8[]"}.get(t, t)


# ---------------------------------------------------------------------------------------------
# The catalog.
# ---------------------------------------------------------------------------------------------
CATALOG_SQL = """
SELECT p.oid::int, p.proname, p.prokind, p.proretset,
       array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t) AS types,
       coalesce(p.proargnames, '{}') AS names, p.proargmodes::text[] AS modes,
       pg_get_function_identity_arguments(p.oid) AS ident
FROM pg_proc p WHERE p.pronamespace = 'kpi'::regnamespace ORDER BY p.proname, p.oid
"""
COMPOSITE_SQL = """
SELECT format_type(t.oid, NULL), array_agg(format_type(a.atttypid, NULL) ORDER BY a.attnum)
FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid AND c.relkind = 'c'
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE t.typnamespace = 'kpi'::regnamespace GROUP BY t.oid
"""
TYPES_SQL = """
SELECT format_type(t.oid, NULL), t.oid::int, t.typtype FROM pg_type t
WHERE t.typnamespace IN ('kpi'::regnamespace) AND t.typtype IN ('b', 'e', 'c') AND t.typname NOT LIKE '\\_%'
  AND (t.typtype <> 'c' OR EXISTS (SELECT FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c'))
ORDER BY 1
"""

_catalog = {}


def catalog():
    if not _catalog:
        with psycopg.connect(session_dsn()) as c:
            procs = []
            for oid, name, kind, retset, types, names, modes, ident in c.execute(CATALOG_SQL):
                if modes:
                    in_names = [n for n, m in zip(names, modes) if m in ("i", "b", "v")]
                else:
                    in_names = list(names[: len(types)])
                in_names += [f"${i + 1}" for i in range(len(in_names), len(types))]
                procs.append(dict(oid=oid, name=name, kind=kind, retset=retset, types=list(types),
                                  args=in_names, ident=ident))
            _catalog["procs"] = procs
            _catalog["composites"] = {t: list(f) for t, f in c.execute(COMPOSITE_SQL)}
            _catalog["types"] = [tuple(r) for r in c.execute(TYPES_SQL)]
    return _catalog


def proc_id(p):
    short = {"double precision": "f8", "timestamp with time zone": "tstz", "double precision[]": "f8[]",
             "integer": "int", "boolean": "bool"}
    return f"{p['name']}({','.join(short.get(t, t.replace('kpi.', '')) for t in p['types'])})"


# ---------------------------------------------------------------------------------------------
# Running one statement: its own transaction, always rolled back; classify the outcome.
# ---------------------------------------------------------------------------------------------
class Runner:
    def __init__(self, dsn):
        self.dsn = dsn
        self.conn = None
        self.connect()

    def connect(self, wait=90):
        deadline = time.time() + wait
        while True:
            try:
                self.conn = psycopg.connect(self.dsn, autocommit=True)
                self.conn.add_notice_handler(lambda d: None)
                return
            except psycopg.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(1)

    def run(self, sql, params=None, timeout=TIMEOUT):
        """Run once; retried while the extension's library is missing (a concurrent reinstall)."""
        for attempt in range(30):
            out = self.run_once(sql, params, timeout)
            if out.get("sqlstate") == "58P01" and "pg_kpi" in out.get("message", ""):
                time.sleep(2)
                continue
            return out
        return out

    def run_once(self, sql, params=None, timeout=TIMEOUT):
        t0 = time.time()
        out = dict(sql=sql)
        try:
            self.conn.execute("BEGIN")
            self.conn.execute(f"SET LOCAL statement_timeout = '{timeout}'")
            cur = self.conn.execute(sql, params)
            if cur.description:
                cur.fetchall()
            out["status"] = "ok"
        except psycopg.Error as e:
            d = e.diag
            code = d.sqlstate or getattr(e, "sqlstate", None)
            broken = self.conn.broken or self.conn.closed
            if broken or code in ("57P01", "57P02", "57P03") or code is None and isinstance(e, psycopg.OperationalError):
                out.update(status="crash", sqlstate=code, message=str(e).strip()[:500])
                try:
                    self.conn.close()
                except Exception:
                    pass
                time.sleep(2)
                self.connect()
            else:
                status = "xx000" if code == "XX000" else "timeout" if code == "57014" else \
                    "internal" if code and code.startswith("XX") else "error"
                out.update(status=status, sqlstate=code, message=(d.message_primary or str(e))[:1000],
                           detail=(d.message_detail or "")[:500], hint=(d.message_hint or "")[:500],
                           context=(d.context or "")[:500])
        finally:
            if not (self.conn.closed or self.conn.broken):
                try:
                    self.conn.execute("ROLLBACK")
                except psycopg.Error:
                    pass
        out["elapsed"] = round(time.time() - t0, 3)
        return out


_runner = {}


def runner():
    if "r" not in _runner:
        _runner["r"] = Runner(session_dsn())
    return _runner["r"]


_usable = {}


def usable(expr):
    """A hostile value expression is only used if it evaluates on its own (cached)."""
    if expr not in _usable:
        r = runner().run(f"SELECT ({expr}) IS NULL", timeout="20s")
        _usable[expr] = r["status"] == "ok"
        if not _usable[expr]:
            record("value", expr, "value", r)
    return _usable[expr]


_results_file = {}


def record(test, case, arg, r):
    if "f" not in _results_file:
        _results_file["f"] = open(RESULTS, "w")
    r = dict(r, test=test, case=case, arg=arg)
    _results_file["f"].write(json.dumps(r) + "\n")
    _results_file["f"].flush()
    return r


def fail_on_bugs(results):
    bad = [r for r in results if r["status"] in ("xx000", "crash", "internal")]
    if bad:
        lines = [f"{r['status']} {r.get('sqlstate')} {r.get('message', '')[:200]!r}\n    {r['sql'][:400]}" for r in bad]
        pytest.fail(f"{len(bad)} call(s) hit an internal error or crashed:\n" + "\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Test generation.
# ---------------------------------------------------------------------------------------------
def pytest_generate_tests(metafunc):
    if "proc" in metafunc.fixturenames:
        kind = "a" if metafunc.function.__name__ == "test_aggregate" else "f"
        procs = [p for p in catalog()["procs"] if p["kind"] == kind]
        metafunc.parametrize("proc", procs, ids=[proc_id(p) for p in procs])
    if "kpi_type" in metafunc.fixturenames:
        types = catalog()["types"]
        metafunc.parametrize("kpi_type", types, ids=[t[0] for t in types])


def call_sql(p, exprs):
    args = ", ".join(f"({e})::{typ_sql(t)}" for e, t in zip(exprs, p["types"]))
    return f"SELECT count(*), sum(length(r::text)) FROM kpi.{p['name']}({args}) r"


def test_every_argument_type_has_hostile_values():
    """A new argument type must get hostile values here, or it would silently be skipped."""
    cat = catalog()
    missing = {(p["name"], t) for p in cat["procs"] for a, t in zip(p["args"], p["types"])
               if hostile_values(p["name"], a, t, cat["composites"]) is None}
    assert not missing, f"no hostile values for: {sorted(missing)}"


def test_function(proc):
    p, cat = proc, catalog()
    base = [baseline(p["name"], a, t) for a, t in zip(p["args"], p["types"])]
    results = []
    r = runner().run(call_sql(p, base))
    results.append(record(proc_id(p), "baseline", None, r))
    for i, (a, t) in enumerate(zip(p["args"], p["types"])):
        for label, expr in hostile_values(p["name"], a, t, cat["composites"]) or []:
            if not usable(expr):
                continue
            exprs = list(base)
            exprs[i] = expr
            r = runner().run(call_sql(p, exprs))
            results.append(record(proc_id(p), label, a, r))
    fail_on_bugs(results)


def agg_rows(p):
    key = p["name"]
    if f"{key}:{p['args'][0]}" in AGG_ROWS:
        key = f"{key}:{p['args'][0]}"
    rows = AGG_ROWS[key]
    return [tuple(row[: len(p["types"])]) for row in rows]


def agg_sql(p, rows):
    cols = [f"c{i}" for i in range(len(p["types"]))]
    values = ", ".join("(" + ", ".join(f"({e})::{typ_sql(t)}" for e, t in zip(row, p["types"])) + ")" for row in rows)
    return (f"SELECT length(kpi.{p['name']}({', '.join(cols)})::text) "
            f"FROM (VALUES {values}) v({', '.join(cols)})")


def test_aggregate(proc):
    p, cat = proc, catalog()
    rows = agg_rows(p)
    results = [record(proc_id(p), "baseline", None, runner().run(agg_sql(p, rows)))]
    for i, (a, t) in enumerate(zip(p["args"], p["types"])):
        for label, expr in hostile_values(p["name"], a, t, cat["composites"]) or []:
            if not usable(expr):
                continue
            mixed = rows + [tuple(expr if j == i else v for j, v in enumerate(rows[0]))]
            every = [tuple(expr if j == i else v for j, v in enumerate(row)) for row in rows]
            for variant, rs in (("one_row", mixed), ("every_row", every)):
                r = runner().run(agg_sql(p, rs))
                results.append(record(proc_id(p), f"{label}:{variant}", a, r))
    # float columns: extremes of both signs in one group (overflow of sums and co-moments)
    for i, t in enumerate(p["types"]):
        if t == "double precision":
            for label, cycle in (("extreme_mix", ["1e308", "-1e308", "2", "3", "-1e308"]),
                                 ("huge_mix", ["1e200", "-1e200", "2", "1e-200", "3"]),
                                 ("tiny_mix", ["5e-324", "-5e-324", "0", "1e-320", "0"])):
                rs = [tuple(cycle[k % len(cycle)] if j == i else v for j, v in enumerate(row)) for k, row in enumerate(rows)]
                results.append(record(proc_id(p), label, p["args"][i], runner().run(agg_sql(p, rs))))
    floats = [i for i, t in enumerate(p["types"]) if t == "double precision"]
    if len(floats) > 1:
        cyc = ["1e308", "-1e308", "2", "1e308", "-3"]
        rs = [tuple(cyc[(k + j) % len(cyc)] if j in floats else v for j, v in enumerate(row)) for k, row in enumerate(rows)]
        results.append(record(proc_id(p), "extreme_mix_all_float_args", None, runner().run(agg_sql(p, rs))))
    # no rows at all
    r = runner().run(agg_sql(p, rows) + " WHERE false")
    results.append(record(proc_id(p), "no_rows", None, r))
    fail_on_bugs(results)


# ---------------------------------------------------------------------------------------------
# Custom types: garbage text, random and mutated bytes through input and receive.
# ---------------------------------------------------------------------------------------------
GARBAGE_TEXT = ["garbage", "", " ", "00", "zz", "0", "4b", "4b01", "4b02", "54", "5401", "ffff", "\\x4b01",
                "4B01", "(1,2)", "()", "NaN", "-1"]


class RawBytes:
    def __init__(self, b):
        self.b = b


def binary_dumper(cls, oid_):
    class D(Dumper):
        format = Format.BINARY
        oid = oid_

        def dump(self, obj):
            return obj.b
    return D


def accessor_sql(typname, lit):
    """Accessors to run on a value that decoded: they must not fail internally."""
    if typname == "kpi.sketch":
        return (f"SELECT kpi.sketch_count(s), kpi.sketch_min(s), kpi.sketch_max(s), kpi.sketch_mean(s), "
                f"kpi.sketch_error(s), kpi.approx_percentile(s, 0.5), kpi.approx_percentile(s, 0), "
                f"kpi.approx_percentile(s, 1), kpi.approx_percentiles(s, '{{0.01,0.99}}'), kpi.approx_rank(s, 3), "
                f"(SELECT length(kpi.sketch_agg(x)::text) FROM (VALUES (s), (s)) m(x)), s::text "
                f"FROM (SELECT {lit} AS s) a")
    if typname == "kpi.trend":
        return (f"SELECT kpi.slope(t), kpi.slope(t, '1 hour'), kpi.intercept(t), kpi.r2(t), kpi.correlation(t), "
                f"kpi.trend_count(t), kpi.forecast(t, now()), kpi.forecast(t, 1e6::float8), kpi.direction(t), "
                f"kpi.direction(t, 5, '1 hour'), kpi.slope_per_sample(t), kpi.sample_direction(t), kpi.strength(t), "
                f"kpi.prediction_interval(t, now(), 0.95), "
                f"(SELECT length(kpi.trend_agg(x)::text) FROM (VALUES (t), (t)) m(x)), t::text "
                f"FROM (SELECT {lit} AS t) a")
    return f"SELECT ({lit})::text"


VALID_VALUE_SQL = {"kpi.sketch": "SELECT sk::text FROM public.hostile_vals",
                   "kpi.trend": "SELECT tr::text FROM public.hostile_vals"}


def mutations(hexstr, n, rng):
    b = bytes.fromhex(hexstr)
    out = set()
    for k in range(1, len(b)):                       # truncations
        if len(out) < n // 3 or k < 40:
            out.add(b[:k])
    out.add(b + b"\x00")
    out.add(b + b"\xff" * 64)
    while len(out) < n:
        m = bytearray(b)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            pos = rng.randrange(len(m))
            if op < 0.5:
                m[pos] ^= 1 << rng.randrange(8)
            elif op < 0.8:
                m[pos] = rng.choice([0, 0xff, 0x7f, 0x80, rng.randrange(256)])
            else:
                m[pos:pos + 8] = rng.choice([b"\xff" * 8, b"\x00" * 8, b"\x00\x00\x00\x00\x00\x00\xf8\x7f",
                                             b"\x00\x00\x00\x00\x00\x00\xf0\x7f", b"\x7f\xff\xff\xff\xff\xff\xff\xff"])
        out.add(bytes(m))
    return sorted(out, key=lambda x: (len(x), x))


def test_type_input(kpi_type):
    """Garbage text for every custom type: ok (it decoded) or 22P02/22P03, never XX000."""
    typname, oid_, typtype = kpi_type
    rng = random.Random(f"text:{typname}")
    results = []
    texts = list(GARBAGE_TEXT) + ["ab" * 500000] + [rng.randbytes(rng.randrange(1, 300)).hex() for _ in range(40)]
    if typname in VALID_VALUE_SQL:
        valid = runner().conn.execute(VALID_VALUE_SQL[typname]).fetchone()[0]
        texts += [m.hex() for m in mutations(valid, 300, rng)]
    for t in texts:
        lit = f"'{t}'::{typname}"
        r = runner().run(accessor_sql(typname, lit) if typtype == "b" else f"SELECT ({lit})::text")
        results.append(record(f"input({typname})", t[:80], None, dict(r, sql=r["sql"][:2000])))
    fail_on_bugs(results)


def test_type_receive(kpi_type):
    """Random and mutated bytes through the binary receive function (binary COPY / bind)."""
    typname, oid_, typtype = kpi_type
    if typtype != "b":
        pytest.skip("receive of enums and records is PostgreSQL's own")
    rng = random.Random(f"recv:{typname}")
    conn = runner().conn
    conn.adapters.register_dumper(RawBytes, binary_dumper(RawBytes, oid_))
    valid = conn.execute(VALID_VALUE_SQL[typname]).fetchone()[0]
    blobs = [b"", b"\x00", b"\xff" * 16] + [rng.randbytes(rng.randrange(1, 200)) for _ in range(60)]
    blobs += mutations(valid, 200, rng)
    results = []
    for b in blobs:
        r = runner().run(accessor_sql(typname, "%b"), [RawBytes(b)])
        r["sql"] = accessor_sql(typname, f"'{b.hex()}'::{typname}")[:2000] + "  -- (sent binary)"
        results.append(record(f"recv({typname})", b.hex()[:80], None, r))
        runner().conn.adapters.register_dumper(RawBytes, binary_dumper(RawBytes, oid_))
    fail_on_bugs(results)


# ---------------------------------------------------------------------------------------------
# Parallel aggregation with hostile rows: the serialize/deserialize/combine path.
# ---------------------------------------------------------------------------------------------
PARALLEL_AGGS = [
    "kpi.percentile(v, 0.5)", "kpi.percentiles(v, '{0,0.5,1}')", "kpi.sketch_agg(v)", "kpi.sketch_agg(v, 1e-6)",
    "kpi.summary_stats(v)", "kpi.summary_stats(v, 0.01)", "kpi.trend_agg(x, v)", "kpi.trend_agg(ts, v)",
    "kpi.correlation_test(x, v)", "kpi.rollup_agg(ts, v)",
]


def test_parallel_aggregates():
    r0 = runner()
    results = []
    setup = ("CREATE TABLE pg_temp_par AS SELECT g::float8 AS x, CASE WHEN g % 1000 = 0 THEN {h} ELSE g::float8 END AS v, "
             "now() - g * interval '1 second' AS ts FROM generate_series(1, 200000) g")
    for h in ("'NaN'::float8", "'Infinity'::float8", "1e308::float8", "5e-324::float8", "NULL::float8", "-1e308::float8",
              "CASE WHEN g % 2000 = 0 THEN 1e308 ELSE -1e308 END"):
        for agg in PARALLEL_AGGS:
            sql = ("SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0; "
                   "SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL max_parallel_workers_per_gather = 4; "
                   f"{setup.format(h=h)}; SELECT length(({agg})::text) FROM pg_temp_par")
            r = r0.run(sql, timeout="20s")
            results.append(record("parallel", f"{agg} with {h}", None, r))
    fail_on_bugs(results)


# ---------------------------------------------------------------------------------------------
# The server log: no backend terminated by a signal during the run.
# ---------------------------------------------------------------------------------------------
_log_start = {}


def pytest_configure_log():
    try:
        _log_start["pos"] = os.path.getsize(SERVER_LOG)
    except OSError:
        _log_start["pos"] = None


pytest_configure_log()


def test_zz_server_log_has_no_crash():
    if _log_start.get("pos") is None or not os.access(SERVER_LOG, os.R_OK):
        pytest.skip(f"server log {SERVER_LOG} not readable")
    with open(SERVER_LOG, "rb") as f:
        f.seek(_log_start["pos"])
        text = f.read().decode("utf-8", "replace")
    bad = [l for l in text.splitlines() if re.search(r"terminated by signal|PANIC:|was terminated by exception", l)]
    assert not bad, "\n".join(bad[:20])


@pytest.fixture(scope="module", autouse=True)
def _drop_db_at_end():
    yield
    drop_session_db()
