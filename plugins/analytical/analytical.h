/*
 * analytical.h — what the files of the analytical plugin share: the host's table, options of
 * an analysis, reports and their output, and the analyses themselves.
 *
 * Every analysis takes its options as one JSON object (from a command line, a Lua table or an
 * HTTP query string alike) and gives back a report: {"columns": [names], "rows": [[values]],
 * plus whatever summary it has}. The command prints it as a table, JSON, CSV or an SVG chart;
 * Lua and HTTP hand it back as it is. Reads go through the host, so the caller's role applies.
 */
#ifndef ANALYTICAL_H
#define ANALYTICAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rapport_plugin.h"

/** The engine's table, set by init. */
extern const rapport_api *an_api;

/** Writes a message into @p err and returns RAPPORT_EINVAL. */
int an_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Parses JSON text the host returned, and frees the text. NULL for NULL or bad text. */
json_t *an_json(char *text);
/** The plugin's setting @p key (owned), or NULL. */
json_t *an_config(rapport_host *h, const char *key);
/** A number setting, or @p def. */
double an_config_num(rapport_host *h, const char *key, double def);
/** A decimal text ("12.50", or a JSON number) as a double; 0 for null. */
double an_num(json_t *v);
/** Milliseconds of an ISO date or date-time @p text, or -1. */
int64_t an_time(const char *text);
/** Days since 1970-01-01 of a label that starts "YYYY-MM-DD", or INT64_MIN. */
int64_t an_day(const char *label);
/** Formats @p ms as the store's UTC date-time into @p out (RAPPORT_TIME_LEN bytes). */
void an_time_fmt(int64_t ms, char *out);

/** The option @p key of @p opts as a time (a date or date-time), @p def when absent; -1 with
 *  @p err filled when it is not one. */
int64_t an_opt_time(json_t *opts, const char *key, int64_t def, char *err, size_t errlen);

/** Calls @p fn with each row of an aggregate of @p entity (a JSON object, borrowed). */
int an_aggregate(rapport_host *h, const char *entity, json_t *query,
                 int (*fn)(json_t *row, void *ud), void *ud, char *err, size_t errlen);

/** As an_aggregate(), each row as typed cells (api->aggregate_cells): no JSON per row. */
int an_aggregate_cells(rapport_host *h, const char *entity, json_t *query,
                       int (*fn)(void *ud, int n, const rapport_cell *cells), void *ud,
                       char *err, size_t errlen);
/** A cell as a double (decimals scaled back; NULL and text 0). */
double an_cell_num(const rapport_cell *c);

/** The contacts of @p ids (a JSON array of at most 1,000, stolen) with @p fields (an array of
 *  names, stolen), as an object keyed by the id's text (owned); the ones the caller may not
 *  read are not in it. NULL with @p err filled when the read fails. */
json_t *an_contacts(rapport_host *h, json_t *ids, json_t *fields, char *err, size_t errlen);

/* ---- reports ----------------------------------------------------------------------------- */

/** A new report with the named columns (NULL-terminated). Owned. */
json_t *an_report(const char *const *columns);
/** Appends a row of values (stolen references, as many as columns). */
void an_report_row(json_t *report, json_t *first, ...);

/** Where a command sends its report. */
typedef struct an_output {
    bool json, csv;
    const char *svg;   /**< write the chart here, or NULL */
} an_output_t;

/** Prints @p report as a table (default), JSON or CSV, and writes its chart when asked. */
int an_print(json_t *report, const an_output_t *o, char *err, size_t errlen);

/* ---- the analyses (each: opts borrowed, *out a new report) ------------------------------- */

/** RFM scores and segments (rfm.c); stores them on the contacts unless opts.dry_run. */
int an_rfm(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen);
/** The segment table in force (owned): the setting plugin.analytical.rfm_segments, else the
 *  default; NULL with @p err filled when the setting is not a complete table. */
json_t *an_rfm_segments(rapport_host *h, char *err, size_t errlen);
/** Checks a segment table: every one of the 125 codes has a segment. */
int an_rfm_segments_check(json_t *table, char *err, size_t errlen);
/** The segment a code falls in, under @p table. Borrowed from the table. */
const char *an_rfm_segment_of(json_t *table, int r, int f, int m);
/** The 1–5 quintile scores of @p n values, ties kept together (reports.c, tested). */
void an_quintiles(const double *v, size_t n, bool reverse, int *score);

/** Fits BG/NBD, Pareto/NBD or Gamma-Gamma on a calibration window (clv.c). */
int an_fit(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen);
/** Historic and predicted CLV, P(alive), churn risk, stored on contacts (clv.c). */
int an_clv(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen);
/** As an_clv(), listing the customers at risk. */
int an_churn(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen);

/** Pareto 80/20 and key customers (reports.c). */
int an_pareto(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen);
/** Cohorts by first purchase (reports.c). */
int an_cohorts(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen);
/** The pipeline forecast (reports.c). */
int an_forecast(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen);

/** Purchases from orders, and customers by key (purchases.c). */
int an_purchases_init(rapport_host *h, char *err, size_t errlen);

#endif
