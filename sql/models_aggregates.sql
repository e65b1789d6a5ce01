-- The model fits over the support functions in src/models.rs.

-- customer models: the state keeps distinct rows with weights; the final function fits
CREATE AGGREGATE kpi.bgnbd_fit(frequency float8, recency float8, t float8) (
    SFUNC = kpi_internal.bgnbd_trans, STYPE = internal, FINALFUNC = kpi_internal.bgnbd_final,
    COMBINEFUNC = kpi_internal.bgnbd_combine, SERIALFUNC = kpi_internal.bgnbd_serialize, DESERIALFUNC = kpi_internal.bgnbd_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE kpi.bgnbd_fit(frequency float8, recency float8, t float8, penalizer float8) (
    SFUNC = kpi_internal.bgnbd_trans_pen, STYPE = internal, FINALFUNC = kpi_internal.bgnbd_final,
    COMBINEFUNC = kpi_internal.bgnbd_combine, SERIALFUNC = kpi_internal.bgnbd_serialize, DESERIALFUNC = kpi_internal.bgnbd_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.bgnbd_fit(float8, float8, float8) IS
    'Maximum-likelihood BG/NBD fit (Fader, Hardie & Lee 2005) over customers'' frequency, recency and T';
CREATE AGGREGATE kpi.gamma_gamma_fit(frequency float8, monetary float8) (
    SFUNC = kpi_internal.gamma_gamma_trans, STYPE = internal, FINALFUNC = kpi_internal.gamma_gamma_final,
    COMBINEFUNC = kpi_internal.gamma_gamma_combine, SERIALFUNC = kpi_internal.gamma_gamma_serialize,
    DESERIALFUNC = kpi_internal.gamma_gamma_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.gamma_gamma_fit(float8, float8) IS
    'Maximum-likelihood Gamma-Gamma spend fit on repeat customers (frequency 0 rows are ignored)';
CREATE AGGREGATE kpi.sbg_fit(period integer, alive bigint) (
    SFUNC = kpi_internal.sbg_trans, STYPE = internal, FINALFUNC = kpi_internal.sbg_final,
    COMBINEFUNC = kpi_internal.sbg_combine, SERIALFUNC = kpi_internal.sbg_serialize, DESERIALFUNC = kpi_internal.sbg_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.sbg_fit(integer, bigint) IS
    'Shifted-beta-geometric retention fit (Fader & Hardie 2007) from a cohort''s survivors per period';

COMMENT ON AGGREGATE kpi.bgnbd_fit(float8, float8, float8, float8) IS
    'BG/NBD fit with an L2 penalizer on the parameters (as the lifetimes library''s penalizer_coef)';
COMMENT ON FUNCTION kpi.p_alive(kpi.bgnbd, float8, float8, float8) IS
    'Probability that a customer with this frequency, recency and T (periods) is still alive';
COMMENT ON FUNCTION kpi.expected_purchases(kpi.bgnbd, float8, float8, float8, float8) IS
    'Expected purchases in the next horizon periods of a customer with this frequency, recency and T';
COMMENT ON FUNCTION kpi.expected_purchases(kpi.bgnbd, float8) IS 'Expected purchases of a new customer within horizon periods';
COMMENT ON FUNCTION kpi.expected_spend(kpi.gamma_gamma, float8, float8) IS
    'Expected average spend per transaction given frequency and monetary value; NULL where the model mean is undefined';
COMMENT ON FUNCTION kpi.clv_bgnbd(kpi.bgnbd, kpi.gamma_gamma, float8, float8, float8, float8, integer, float8, float8) IS
    'Discounted CLV over months (default 12) at monthly_discount (default 0.01) from BG/NBD purchases and Gamma-Gamma spend';
COMMENT ON FUNCTION kpi.sbg_survival(kpi.sbg, integer) IS 'Share of the cohort still alive after t periods, S(t)';
COMMENT ON FUNCTION kpi.sbg_retention(kpi.sbg, integer) IS 'Retention rate at period t: S(t) / S(t - 1); NULL for t = 0';
COMMENT ON FUNCTION kpi.sbg_churn_probability(kpi.sbg, integer) IS 'Churn probability at period t given alive at t - 1; NULL for t = 0';
