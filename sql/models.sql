-- Fitted customer models: the values the *_fit aggregates return and the predictions take.

CREATE TYPE kpi.bgnbd AS (
    r float8, alpha float8, a float8, b float8, log_likelihood float8, n bigint, converged boolean
);
CREATE TYPE kpi.gamma_gamma AS (
    p float8, q float8, gamma float8, log_likelihood float8, n bigint, converged boolean
);
CREATE TYPE kpi.sbg AS (
    alpha float8, beta float8, log_likelihood float8, n bigint, converged boolean
);
COMMENT ON TYPE kpi.bgnbd IS 'A fitted BG/NBD model: r, alpha, a, b, log-likelihood, customers n, converged';
COMMENT ON TYPE kpi.gamma_gamma IS 'A fitted Gamma-Gamma spend model: p, q, gamma, log-likelihood, customers n, converged';
COMMENT ON TYPE kpi.sbg IS 'A fitted shifted-beta-geometric retention model: alpha, beta, log-likelihood, cohort size n, converged';
