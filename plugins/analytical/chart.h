/*
 * chart.h — the SVG charts of the analytical plugin: a concentration curve, a cohort heatmap and
 * grouped bars, each returned as one self-contained SVG document to write to a file, open in a
 * browser or embed in the web console. Pure C on libc and libm: no I/O, no globals, no printing.
 *
 * Every chart is built the same way: the caller describes it in an an_chart_t, passes its data
 * as borrowed arrays, and receives an owned string (free with free()), or NULL with the reason
 * written into the optional @p err buffer (NULL or @p errlen 0 to ignore it) as one sentence
 * that names the argument and the value at fault. NULL arrays with nonzero counts, non-finite
 * numbers where a number is required and a bad value_fmt are refused; an empty data set is not
 * an error, it gives an empty chart (axes, or a "No data" note).
 *
 * The data comes from users and an SVG opened in a browser can run script, so every piece of
 * text taken from the arguments (title, axis labels, marks, row, column, category and series
 * names, and the literal text of value_fmt) is written XML-escaped (& < > " '), with control
 * characters dropped and invalid UTF-8 replaced by U+FFFD; over-long labels are cut with "…" so
 * that nothing is drawn outside the picture. Coordinates are written as "%.2f" with the decimal
 * point forced to '.', so a process running under a locale with a decimal comma still writes
 * valid SVG. Text uses font-family sans-serif; elements carry a class (curve, equality, mark,
 * cell, bar, zero, …) so that a web page can restyle them.
 */
#ifndef RAPPORT_AN_CHART_H
#define RAPPORT_AN_CHART_H

#include <stddef.h>

/** Default size of a chart, in SVG user units (pixels), when an_chart_t leaves it at 0. */
enum { AN_CHART_WIDTH = 800, AN_CHART_HEIGHT = 500 };

/** Accepted sizes: smaller leaves no room for the labels, larger is a mistake. */
enum { AN_CHART_MIN_SIDE = 200, AN_CHART_MAX_SIDE = 16384 };

/** Most rows or columns of a heatmap, categories or series of a bar chart. */
enum { AN_CHART_MAX_ITEMS = 1000 };

/** A point marked on a curve, with a dot, guides to both axes and an optional label. */
typedef struct an_chart_mark {
    double x;          /**< Share of customers, 0..1. */
    double y;          /**< Share of revenue, 0..1. */
    const char *label; /**< "top 20 % → 74 % of revenue" (UTF-8); NULL draws the dot alone. */
} an_chart_mark_t;

/**
 * How a chart looks. Every pointer is borrowed for the duration of the call; every member may be
 * left zero (NULL for the whole struct means all defaults).
 */
typedef struct an_chart {
    const char *title;   /**< Drawn at the top and used as the SVG's accessible name; NULL: none. */
    const char *x_label; /**< Caption of the horizontal axis (heatmap: of the columns). */
    const char *y_label; /**< Caption of the vertical axis (heatmap: of the rows), turned 90°. */
    /**
     * printf format of one value: any literal text, "%%" for a percent sign, and exactly one
     * floating conversion (f F e E g G a A) with optional flags "-+ #0", a width and a precision
     * up to 20 (no '*', no length modifier), at most 64 bytes in all; e.g. "%.0f%%", "%+.1f k€".
     * Anything else ("%s", "%n", "%d", two conversions) is refused. Used by the heatmap cells
     * and legend (default "%.2f"), the bars' axis ticks (default: a short number such as "250",
     * "1.5k", "2M") and tooltips (default "%.2f"); the curve, whose axes are percentages, checks
     * but does not use it.
     */
    const char *value_fmt;
    int width;  /**< Width in pixels, AN_CHART_MIN_SIDE..AN_CHART_MAX_SIDE; 0: AN_CHART_WIDTH. */
    int height; /**< Height in pixels, same range; 0: AN_CHART_HEIGHT. */
    const an_chart_mark_t *marks; /**< Points marked on the curve; ignored by the other charts. */
    size_t nmarks;                /**< Number of @ref marks (at most 64). */
} an_chart_t;

/**
 * A concentration (Lorenz or Pareto) curve on the unit square: the line through (x[i], y[i]), the
 * dashed diagonal of equality, axes with ticks at 0, 20, …, 100 %, and the marks of @p c.
 *
 * @param c     how it looks (borrowed; NULL for defaults).
 * @param x     cumulative shares of customers, each in 0..1 and never decreasing (borrowed).
 * @param y     cumulative shares of revenue, each in 0..1 (borrowed).
 * @param n     number of points; 0 draws the axes alone (x and y may then be NULL). Above ~2,000
 *              points the line is thinned: it keeps every ceil(n / 2000)-th point, the first,
 *              the last and the two points around each mark's x, so that a million points still
 *              make a file of about 32 KB with the shape intact.
 * @param err   optional buffer for the reason of a failure (may be NULL).
 * @param errlen size of @p err.
 * @return the SVG document, owned (free with free()), or NULL on bad input or out of memory.
 */
char *an_svg_curve(const an_chart_t *c, const double *x, const double *y, size_t n, char *err,
                   size_t errlen);

/**
 * A cohort heatmap: one row per cohort ("2026-01"), one column per period since the first
 * purchase ("0", "1", …), each cell coloured on a sequential blue scale from the smallest to the
 * largest finite value and printed with c->value_fmt; a colour key sits below the grid. Cells
 * grow the picture beyond c->width × c->height when that is needed to keep each value readable.
 * At most 1,000 rows and 1,000 columns (AN_CHART_MAX_ITEMS).
 *
 * @param c     how it looks (borrowed; NULL for defaults).
 * @param rows  @p nrows cohort names (borrowed; a NULL name is drawn empty).
 * @param cols  @p ncols period names (borrowed; a NULL name is drawn empty).
 * @param v     nrows × ncols values, v[r * ncols + k] (borrowed); NAN leaves the cell blank,
 *              ±infinity is refused.
 * @param err   optional buffer for the reason of a failure (may be NULL).
 * @param errlen size of @p err.
 * @return the SVG document, owned (free with free()), or NULL on bad input or out of memory.
 *         No rows or no columns give a chart that says "No data".
 */
char *an_svg_heatmap(const an_chart_t *c, const char *const *rows, size_t nrows,
                     const char *const *cols, size_t ncols, const double *v, char *err,
                     size_t errlen);

/**
 * Grouped bars: one group per category (a month), one bar per series ("forecast", "won") in the
 * series' colour, a legend, and a y axis from 0 (or a round minimum below the most negative
 * value, which is drawn below the zero line) to a round maximum with ticks. Category names that
 * do not fit under their group are turned 45°. At most 1,000 categories and 1,000 series
 * (AN_CHART_MAX_ITEMS).
 *
 * @param c       how it looks (borrowed; NULL for defaults).
 * @param cats    @p ncats category names (borrowed; a NULL name is drawn empty).
 * @param series  @p nseries series names (borrowed; a NULL name is drawn empty).
 * @param v       ncats × nseries values, v[cat * nseries + s] (borrowed); NAN draws no bar,
 *                ±infinity is refused.
 * @param err     optional buffer for the reason of a failure (may be NULL).
 * @param errlen  size of @p err.
 * @return the SVG document, owned (free with free()), or NULL on bad input or out of memory.
 *         No categories or no series give a chart that says "No data".
 */
char *an_svg_bars(const an_chart_t *c, const char *const *cats, size_t ncats,
                  const char *const *series, size_t nseries, const double *v, char *err,
                  size_t errlen);

#endif /* RAPPORT_AN_CHART_H */
