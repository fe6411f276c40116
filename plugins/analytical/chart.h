/*
 * chart.h — the SVG charts of the analytical plugin: a concentration curve, a cohort heatmap
 * and grouped bars. Text from data (names, labels) is escaped for XML and stripped of control
 * characters: an SVG opened in a browser could otherwise run what a record's name holds.
 * Numbers are written in the "C" locale's form. Each returns a malloc'ed document (owned:
 * free()), or NULL with the reason in @p err.
 */
#ifndef ANALYTICAL_CHART_H
#define ANALYTICAL_CHART_H

#include <stddef.h>

/** A point to mark and label on a curve ("top 20 %: 74 % of revenue"). */
typedef struct an_chart_mark {
    double x, y;          /**< On the unit square. */
    const char *label;    /**< Borrowed; may be NULL. */
} an_chart_mark_t;

/** What every chart has; all text borrowed, NULL for none. */
typedef struct an_chart {
    const char *title, *x_label, *y_label;
    const char *value_fmt;        /**< A heatmap cell's number: one %f, %e or %g conversion
                                       with flags, width and precision, and "%%" (default
                                       "%.2f"); anything else is refused. */
    int width, height;            /**< 0: 800 × 500. */
    const an_chart_mark_t *marks; /**< A curve's marks. */
    size_t nmarks;
} an_chart_t;

/** A concentration curve on the unit square (x: share of customers, y: share of value), the
 *  diagonal of equality dashed, axes in percent. Thinned to about 2,000 vertices. */
char *an_svg_curve(const an_chart_t *c, const double *x, const double *y, size_t n, char *err,
                   size_t errlen);

/** A heatmap: @p v[r * ncols + k] (NAN: an empty cell), shaded from the least to the most. */
char *an_svg_heatmap(const an_chart_t *c, const char *const *rows, size_t nrows,
                     const char *const *cols, size_t ncols, const double *v, char *err,
                     size_t errlen);

/** Grouped bars: @p v[cat * nseries + s], a legend, negative values below the axis. */
char *an_svg_bars(const an_chart_t *c, const char *const *cats, size_t ncats,
                  const char *const *series, size_t nseries, const double *v, char *err,
                  size_t errlen);

/** Whether @p fmt is a value format a heatmap accepts (see an_chart_t.value_fmt). */
int an_chart_fmt_ok(const char *fmt);

#endif
