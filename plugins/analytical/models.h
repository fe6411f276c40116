/*
 * models.h — the statistical models of the analytical plugin: BG/NBD and Pareto/NBD for how
 * often a customer buys and whether they are still "alive", Gamma-Gamma for how much they
 * spend, and the discounted expected value that puts the two together.
 *
 * The library is pure C11 over libm and NLopt: no engine, no printing, no globals. Customers
 * come in as (x, t_x, T[, m_x]) summaries in weeks:
 *   x    repeat purchases (all purchases after the first) in the calibration period;
 *   t_x  time of the last purchase, counted from the first (0 when x = 0);
 *   T    time from the first purchase to the end of the calibration period (t_x <= T);
 *   m_x  mean spend per repeat purchase (Gamma-Gamma only; meaningful when x >= 1).
 * Likelihoods take weighted rows (an_row_t); an_compress() turns a customer list into the
 * few unique rows a large base collapses to, which is what makes fitting 10^6 customers cheap.
 *
 * Every function that can fail returns 0 or a negative AN_E* code and, when @p err is not
 * NULL, writes a full sentence naming the field and value into err[0..errlen). Parameters are
 * the published ones: BG/NBD (r, alpha, a, b), Pareto/NBD (r, alpha, s, beta), Gamma-Gamma
 * (p, q, gamma); time-like parameters (alpha, beta) are in the same unit as t_x and T.
 */
#ifndef RAPPORT_ANALYTICAL_MODELS_H
#define RAPPORT_ANALYTICAL_MODELS_H

#include <stddef.h>
#include <stdint.h>

/** Error classes, always negative; the values match the core's RP_E* classes of the same name. */
enum {
    AN_OK = 0,
    AN_EINVAL = -1,  /**< Bad input: a parameter, a row or an argument out of its domain. */
    AN_ENOMEM = -6,  /**< Out of memory. */
    AN_ELIMIT = -11, /**< A series did not converge within its published term cap. */
    AN_EFIT = -20,   /**< The optimiser could not produce a finite fit (message names why). */
};

/** One customer as summarised from the transaction log. Borrowed by every function. */
typedef struct an_customer {
    int64_t x;   /**< Repeat purchases in the calibration period (>= 0). */
    double t_x;  /**< Time of the last purchase since the first, weeks (0 <= t_x <= T). */
    double T;    /**< Time from the first purchase to the end of calibration, weeks (> 0). */
    double m_x;  /**< Mean spend per repeat purchase (> 0 when x >= 1; ignored otherwise). */
} an_customer_t;

/** A unique customer summary and how many customers share it. */
typedef struct an_row {
    int64_t x;      /**< Repeat purchases. */
    double t_x;     /**< Time of the last purchase since the first, weeks. */
    double T;       /**< Time from the first purchase to the end of calibration, weeks. */
    double m_x;     /**< Mean spend per repeat purchase (0 unless the row was keyed on spend). */
    int64_t weight; /**< Number of customers this row stands for (>= 1). */
} an_row_t;

/** BG/NBD parameters (Fader, Hardie & Lee 2005): Gamma(r, alpha) rates, Beta(a, b) drop-out. */
typedef struct an_bgnbd_params {
    double r;     /**< Shape of the Gamma mixing distribution of purchase rates (> 0). */
    double alpha; /**< Scale of that Gamma, in weeks (> 0). */
    double a;     /**< First shape of the Beta mixing distribution of drop-out probability. */
    double b;     /**< Second shape of that Beta (> 0). */
} an_bgnbd_params_t;

/** Pareto/NBD parameters (Schmittlein, Morrison & Colombo 1987). */
typedef struct an_pnbd_params {
    double r;     /**< Shape of the Gamma mixing distribution of purchase rates (> 0). */
    double alpha; /**< Scale of that Gamma, in weeks (> 0). */
    double s;     /**< Shape of the Gamma mixing distribution of death rates (> 0). */
    double beta;  /**< Scale of that Gamma, in weeks (> 0). */
} an_pnbd_params_t;

/** Gamma-Gamma spend parameters (Fader, Hardie & Lee 2005, "RFM and CLV"). */
typedef struct an_gg_params {
    double p;     /**< Shape of each transaction's Gamma spend distribution (> 0). */
    double q;     /**< Shape of the Gamma mixing distribution of the spend scale (> 0). */
    double gamma; /**< Scale of that mixing Gamma, in currency units (> 0). */
} an_gg_params_t;

/** Which model a fit or a purchase model belongs to. */
typedef enum an_model {
    AN_MODEL_BGNBD = 1, /**< BG/NBD: p.bgnbd is set. */
    AN_MODEL_PNBD = 2,  /**< Pareto/NBD: p.pnbd is set. */
    AN_MODEL_GG = 3,    /**< Gamma-Gamma: p.gg is set. */
} an_model_t;

/** The result of a maximum-likelihood fit; the same struct for all three models. */
typedef struct an_fit {
    an_model_t model; /**< Which member of @ref p is set. */
    union {
        an_bgnbd_params_t bgnbd; /**< When model is AN_MODEL_BGNBD. */
        an_pnbd_params_t pnbd;   /**< When model is AN_MODEL_PNBD. */
        an_gg_params_t gg;       /**< When model is AN_MODEL_GG. */
    } p;                         /**< The maximum-likelihood parameters. */
    double ll;                   /**< Total log-likelihood at those parameters. */
    int64_t n_customers;         /**< Sum of the weights of the rows that entered the fit. */
    int iterations;              /**< Objective evaluations, over every optimiser run. */
    int converged;               /**< 1 when NLopt reported success, 0 otherwise. */
    char method[48];             /**< The NLopt algorithm(s) used, e.g. "LD_LBFGS". */
    char reason[96];             /**< NLopt's reason in words when not converged; else "". */
} an_fit_t;

/* ---- Input --------------------------------------------------------------------------- */

/**
 * Compresses @p n customers into unique rows with integer weights, sorted by (x, t_x, T[, m_x]).
 * Sorting makes this O(n log n); 10^6 CDNOW-like customers collapse to a few thousand rows.
 * @param in        the customers; borrowed, not modified.
 * @param with_spend 0 to key on (x, t_x, T) (purchase models; m_x is set to 0), 1 to key on
 *                  (x, t_x, T, m_x) and keep only customers with x >= 1 (Gamma-Gamma).
 * @param out       caller's array with room for @p n rows; borrowed, filled from index 0.
 * @param n_out     receives the number of rows written.
 * @return 0, or AN_EINVAL naming the first bad customer (negative x, t_x outside [0, T], T <= 0,
 *         non-positive spend with x >= 1, a non-finite value).
 */
int an_compress(const an_customer_t *in, size_t n, int with_spend, an_row_t *out, size_t *n_out,
                char *err, size_t errlen);

/* ---- Special functions ------------------------------------------------------------------ */

/** log|Gamma(x)| through libm's reentrant lgamma_r (no write to signgam). */
double an_lgamma(double x);

/**
 * The digamma function psi(x) = d/dx ln Gamma(x), by upward recurrence to x >= 10 and the
 * asymptotic series (error below 1e-15 relative); reflection for x < 0.
 * @return psi(x), or NaN at the poles x = 0, -1, -2, ...
 */
double an_digamma(double x);

/**
 * The Gauss hypergeometric function 2F1(a, b; c; z) for real z < 1, c not a non-positive
 * integer. For 0 <= z < 1 the series is summed directly (or after Euler's transformation
 * when that turns a slowly decaying series into a faster one); z < 0 goes through Pfaff's
 * transformation onto [0, 1). Terms are rescaled as they grow so the sum never overflows.
 * @param value receives the value; it may be +-HUGE_VAL when only the log is representable.
 * @return 0; AN_EINVAL outside the domain; AN_ELIMIT when 10^6 terms did not converge
 *         (|z| within about 1e-5 of 1).
 */
int an_hyp2f1(double a, double b, double c, double z, double *value, char *err, size_t errlen);

/**
 * ln 2F1(a, b; c; z), for callers whose 2F1 would overflow a double (e.g. a in the hundreds).
 * Same domain and method as an_hyp2f1(), and the value must be positive.
 * @return 0; AN_EINVAL outside the domain or for a non-positive value; AN_ELIMIT as above.
 */
int an_hyp2f1_log(double a, double b, double c, double z, double *log_value, char *err,
                  size_t errlen);

/* ---- BG/NBD --------------------------------------------------------------------------- */

/**
 * The BG/NBD log-likelihood (FHL 2005, eq. 6), computed in log space as
 * ln A + ln B(a, b+x)/B(a, b) - (r+x) ln(alpha+T) + softplus(ln(a/(b+x-1)) + (r+x) ln((alpha+T)/(alpha+t_x)))
 * so neither term under- nor overflows for large x.
 * @param ll        receives the weighted total over the rows.
 * @param grad_log  NULL, or receives d ll / d ln(r, alpha, a, b) (analytic, 4 values).
 * @param row_ll    NULL, or an array of @p n receiving each row's unweighted log-likelihood.
 * @return 0, or AN_EINVAL naming a bad parameter or row.
 */
int an_bgnbd_ll(const an_bgnbd_params_t *p, const an_row_t *rows, size_t n, double *ll,
                double grad_log[4], double *row_ll, char *err, size_t errlen);

/**
 * Maximum-likelihood BG/NBD fit: NLopt LD_LBFGS on the log-parameters with the analytic
 * gradient, then LN_BOBYQA from the best point if L-BFGS stops on a failure code.
 * @param rows  borrowed; typically the output of an_compress(..., 0, ...).
 * @param out   receives the fit (caller-owned struct).
 * @return 0 (check out->converged), AN_EINVAL for bad rows, AN_EFIT when no finite fit exists.
 */
int an_bgnbd_fit(const an_row_t *rows, size_t n, an_fit_t *out, char *err, size_t errlen);

/**
 * Unconditional expected repeat purchases in (0, t] of a new customer (FHL 2005, eq. 7):
 * (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))].
 * @return 0, or AN_EINVAL (bad parameter, a = 1, t < 0), AN_ELIMIT from 2F1.
 */
int an_bgnbd_expected(const an_bgnbd_params_t *p, double t, double *out, char *err,
                      size_t errlen);

/**
 * Expected purchases in (T, T+t] for a customer (x, t_x, T) (FHL 2005, eq. 10).
 * @return 0, or AN_EINVAL (bad parameter or customer, a = 1, t < 0), AN_ELIMIT from 2F1.
 */
int an_bgnbd_conditional(const an_bgnbd_params_t *p, int64_t x, double t_x, double T,
                         double t, double *out, char *err, size_t errlen);

/**
 * P(alive at T | x, t_x, T) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).
 * @return 0, or AN_EINVAL for a bad parameter or customer.
 */
int an_bgnbd_palive(const an_bgnbd_params_t *p, int64_t x, double t_x, double T, double *out,
                    char *err, size_t errlen);

/* ---- Pareto/NBD ----------------------------------------------------------------------- */

/**
 * The Pareto/NBD log-likelihood (Fader & Hardie 2005, note 008), for alpha >= beta and
 * alpha < beta alike. The A0 term is evaluated as (r+s+x) times the integral
 * I = int_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau, expanded about max(alpha, beta)
 * into a series whose every term is positive (no difference of two nearly equal 2F1 terms);
 * see models.c for the derivation.
 * @param ll      receives the weighted total.
 * @param row_ll  NULL, or an array of @p n receiving each row's unweighted log-likelihood.
 * @return 0, AN_EINVAL naming a bad parameter or row, AN_ELIMIT if a series hit its cap.
 */
int an_pnbd_ll(const an_pnbd_params_t *p, const an_row_t *rows, size_t n, double *ll,
               double *row_ll, char *err, size_t errlen);

/**
 * Maximum-likelihood Pareto/NBD fit: NLopt LN_BOBYQA on the log-parameters (derivative
 * free), polished by a second BOBYQA run from the optimum, LN_SBPLX if BOBYQA fails.
 * @return 0 (check out->converged), AN_EINVAL for bad rows, AN_EFIT when no finite fit exists.
 */
int an_pnbd_fit(const an_row_t *rows, size_t n, an_fit_t *out, char *err, size_t errlen);

/**
 * Unconditional expected purchases in (0, t]: r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]
 * (the s -> 1 limit r beta / alpha ln(1 + t/beta) is taken smoothly).
 * @return 0, or AN_EINVAL for a bad parameter or t < 0.
 */
int an_pnbd_expected(const an_pnbd_params_t *p, double t, double *out, char *err, size_t errlen);

/**
 * Expected purchases in (T, T+t] for a customer (x, t_x, T):
 * (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)] P(alive).
 * @return 0, or AN_EINVAL, or AN_ELIMIT from the P(alive) series.
 */
int an_pnbd_conditional(const an_pnbd_params_t *p, int64_t x, double t_x, double T, double t,
                        double *out, char *err, size_t errlen);

/**
 * P(alive at T | x, t_x, T) = 1 / (1 + s (alpha+T)^(r+x) (beta+T)^s I), I as in an_pnbd_ll().
 * @return 0, or AN_EINVAL, or AN_ELIMIT.
 */
int an_pnbd_palive(const an_pnbd_params_t *p, int64_t x, double t_x, double T, double *out,
                   char *err, size_t errlen);

/* ---- Gamma-Gamma ---------------------------------------------------------------------- */

/**
 * The Gamma-Gamma log-likelihood of the observed mean spends (Fader & Hardie, note 025):
 * ln f(m_x | x) = lnG(px+q) - lnG(px) - lnG(q) + q ln gamma + (px-1) ln m_x + px ln x
 *                 - (px+q) ln(gamma + x m_x), weighted, over rows with x >= 1.
 * Rows with x = 0 are skipped (they carry no spend), so the output of either key works.
 * @param grad_log NULL, or receives d ll / d ln(p, q, gamma) (3 values).
 * @return 0, or AN_EINVAL naming a bad parameter or a row with x >= 1 and m_x <= 0.
 */
int an_gg_ll(const an_gg_params_t *p, const an_row_t *rows, size_t n, double *ll,
             double grad_log[3], char *err, size_t errlen);

/**
 * Maximum-likelihood Gamma-Gamma fit: LD_LBFGS on ln(p, q, gamma) with the analytic gradient,
 * LN_BOBYQA fallback. out->n_customers counts customers with x >= 1.
 * @return 0 (check out->converged), AN_EINVAL, or AN_EFIT.
 */
int an_gg_fit(const an_row_t *rows, size_t n, an_fit_t *out, char *err, size_t errlen);

/**
 * Conditional expected mean spend per transaction, E[M | x, m_x] =
 * (q-1)/(px+q-1) * p gamma/(q-1) + px/(px+q-1) * m_x; needs q > 1 (the population mean
 * p gamma/(q-1) must exist). x = 0 gives the population mean.
 * @return 0, or AN_EINVAL (bad parameter, q <= 1, x < 0, m_x < 0).
 */
int an_gg_expected_spend(const an_gg_params_t *p, int64_t x, double m_x, double *out, char *err,
                         size_t errlen);

/* ---- Value ---------------------------------------------------------------------------- */

/**
 * Discounted expected future value of a customer over @p horizon_weeks weeks:
 *   DEV = spend * sum_{w=1}^{H} [E(w) - E(w-1)] * (1 + annual_rate)^(-w/52)
 * where E(t) is the model's expected purchases in (T, T+t] given (x, t_x, T) (E(0) = 0), so
 * each week's expected purchases are discounted to the end of calibration at the weekly
 * equivalent of the annual rate. With annual_rate = 0 it is spend * E(H).
 * @param fit   a BG/NBD or Pareto/NBD fit (only model and p are read); borrowed.
 * @param spend expected spend per purchase, e.g. from an_gg_expected_spend() (>= 0).
 * @return 0, or AN_EINVAL (wrong model, bad customer, horizon < 0, rate <= -1), AN_ELIMIT.
 */
int an_dev(const an_fit_t *fit, int64_t x, double t_x, double T, double spend, int horizon_weeks,
           double annual_rate, double *out, char *err, size_t errlen);

#endif
