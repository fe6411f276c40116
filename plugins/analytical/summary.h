/*
 * summary.h — each customer's purchase history as the models and the historic CLV need it
 * (summary.c).
 */
#ifndef ANALYTICAL_SUMMARY_H
#define ANALYTICAL_SUMMARY_H

#include "analytical.h"

/** One customer over the calibration period. Days are days since 1970-01-01 (UTC). */
typedef struct an_hist {
    int64_t id;          /**< The contact. */
    int64_t first_day;   /**< The first transaction's day, -1 when there was none. */
    int64_t last_day;    /**< The last transaction's day. */
    double x;            /**< Repeat transactions (days with purchases, after the first). */
    double t_x, T;       /**< The last transaction's time, and the calibration's end, since the
                              first, in the summary's unit. */
    double m_x;          /**< The mean value of the repeat transactions (0 when x = 0). */
    double revenue;      /**< Net purchases, returns included. */
    double value;        /**< Historic CLV: net purchases less costs, at the reference day. */
} an_hist_t;

/** Every customer with a purchase up to the calibration's end, by contact id ascending. */
typedef struct an_summary {
    an_hist_t *c;
    size_t n, cap;
    int64_t end_day;     /**< The calibration's last day (and the reference day of values). */
    double unit_days;    /**< Days in the unit of t_x and T (7: weeks). */
} an_summary_t;

/**
 * Reads the purchases up to the day of @p end_ms (whole) into @p s (freed with
 * an_summary_free): times in units of @p unit_days, values discounted at the annual @p rate.
 * A day whose purchases net below zero (returns) is no transaction.
 */
int an_summary_load(rapport_host *h, int64_t end_ms, double unit_days, double rate,
                    an_summary_t *s, char *err, size_t errlen);

/** Takes the costs of acquiring (contact.acquisition_cost, at the first purchase) and serving
 *  (@p per_ticket a ticket, @p per_activity an activity on the contact) from each value. */
int an_summary_costs(rapport_host *h, an_summary_t *s, double rate, double per_ticket,
                     double per_activity, char *err, size_t errlen);

/** The customer @p id, or NULL. */
an_hist_t *an_summary_find(an_summary_t *s, int64_t id);

void an_summary_free(an_summary_t *s);

#endif
