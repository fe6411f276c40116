/*
 * chart.c — the SVG charts of the analytical plugin (chart.h), one layout function per chart,
 * over the writer of svg.c.
 */
#include "svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */

static int check_curve(const double *x, const double *y, size_t n, char *err, size_t errlen)
{
    static const char fn[] = "an_svg_curve";
    const double tol = 1e-9;
    if (n && (!x || !y)) {
        an__set_err(err, errlen, "%s: %s is NULL but n is %zu.", fn, !x ? "x" : "y", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(x[i] >= -tol && x[i] <= 1 + tol) || !(y[i] >= -tol && y[i] <= 1 + tol)) {
            int bad_x = !(x[i] >= -tol && x[i] <= 1 + tol);
            an__set_err(err, errlen, "%s: %s[%zu] is %g, outside 0..1.", fn, bad_x ? "x" : "y", i,
                    bad_x ? x[i] : y[i]);
            return -1;
        }
        if (i > 0 && x[i] < x[i - 1]) {
            an__set_err(err, errlen,
                    "%s: x[%zu] = %g is below x[%zu] = %g; the cumulative share of customers "
                    "never decreases.",
                    fn, i, x[i], i - 1, x[i - 1]);
            return -1;
        }
    }
    return 0;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* First index whose x is at least @p v (x never decreases). */
static size_t lower_bound(const double *x, size_t n, double v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * The indices of the points drawn: every step-th (at most CURVE_VERTICES), the last, and the two
 * around each mark so the line passes through what the mark points at. Returns the count, or
 * (size_t)-1 when out of memory.
 */
static size_t thin(const double *x, size_t n, const opts_t *o, size_t **out)
{
    size_t step = n > CURVE_VERTICES ? (n + CURVE_VERTICES - 1) / CURVE_VERTICES : 1;
    size_t cap = (n + step - 1) / step + 1 + 2 * o->nmarks, k = 0;
    size_t *keep = malloc(cap * sizeof *keep);
    if (!keep)
        return (size_t)-1;
    for (size_t i = 0; i < n; i += step)
        keep[k++] = i;
    keep[k++] = n - 1;
    for (size_t m = 0; m < o->nmarks; m++) {
        size_t j = lower_bound(x, n, o->marks[m].x);
        if (j < n)
            keep[k++] = j;
        if (j > 0)
            keep[k++] = j - 1;
    }
    qsort(keep, k, sizeof *keep, cmp_size);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || keep[i] != keep[u - 1])
            keep[u++] = keep[i];
    *out = keep;
    return u;
}

static double clamp01(double v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** The unit square's place on the page. */
typedef struct square {
    double x0; /* left edge: share 0 */
    double y0; /* bottom edge: share 0 */
    double side;
} square_t;

static double sq_x(const square_t *q, double v)
{
    return q->x0 + clamp01(v) * q->side;
}

static double sq_y(const square_t *q, double v)
{
    return q->y0 - clamp01(v) * q->side;
}

static void curve_axes(sb_t *b, const opts_t *o, const square_t *q)
{
    tstyle_t xs = {FS_SMALL, "middle", C_MUTED, NULL, 0};
    tstyle_t ys = {FS_SMALL, "end", C_MUTED, " dy=\"0.35em\"", 0};
    /* On a small square "100%" is wider than a step: then only the ends are named. */
    int every_x = q->side / 5 >= 34 ? 1 : 5, every_y = q->side / 5 >= 16 ? 1 : 5;
    for (int t = 0; t <= 5; t++) {
        char lab[8];
        double v = t / 5.0;
        snprintf(lab, sizeof lab, "%d%%", t * 20);
        if (t > 0) {
            an__svg_line(b, "grid", sq_x(q, v), q->y0, sq_x(q, v), q->y0 - q->side, C_GRID, NULL);
            an__svg_line(b, "grid", q->x0, sq_y(q, v), q->x0 + q->side, sq_y(q, v), C_GRID, NULL);
        }
        an__svg_line(b, "tick", sq_x(q, v), q->y0, sq_x(q, v), q->y0 + 5, C_AXIS, NULL);
        an__svg_line(b, "tick", q->x0 - 5, sq_y(q, v), q->x0, sq_y(q, v), C_AXIS, NULL);
        if (t % every_x == 0)
            an__svg_text(b, "tick-label", sq_x(q, v), q->y0 + 19, &xs, lab, -1);
        if (t % every_y == 0)
            an__svg_text(b, "tick-label", q->x0 - 9, sq_y(q, v), &ys, lab, -1);
    }
    an__svg_line(b, "axis", q->x0, q->y0, q->x0 + q->side, q->y0, C_AXIS, NULL);
    an__svg_line(b, "axis", q->x0, q->y0, q->x0, q->y0 - q->side, C_AXIS, NULL);
    tstyle_t ls = {FS_LABEL, "middle", C_TEXT, NULL, 0};
    if (o->x_label)
        an__svg_text(b, "axis-label", q->x0 + q->side / 2, q->y0 + 42, &ls, o->x_label, q->side + 40);
    if (o->y_label) {
        ls.rotate = -90;
        an__svg_text(b, "axis-label", q->x0 - 46, q->y0 - q->side / 2, &ls, o->y_label, q->side + 20);
    }
}

/* The key of the two lines, stacked, or in a row when @p row. */
static void curve_legend(sb_t *b, double x, double y, int row)
{
    tstyle_t st = {FS_LABEL, "start", C_TEXT, " dy=\"0.35em\"", 0};
    double x2 = row ? x + 190 : x, y2 = row ? y : y + 22;
    an__svg_line(b, NULL, x, y, x + 26, y, C_CURVE, " stroke-width=\"2.5\"");
    an__svg_text(b, "legend", x + 34, y, &st, "Concentration curve", -1);
    an__svg_line(b, NULL, x2, y2, x2 + 26, y2, C_EQUAL,
             " stroke-width=\"1.5\" stroke-dasharray=\"6 4\"");
    an__svg_text(b, "legend", x2 + 34, y2, &st, "Line of equality", -1);
}

/*
 * A mark's label goes on the diagonal's side of the curve (below-right of a point above the
 * diagonal, above-left of one below it), where the curve is not, then between the y axis and
 * @p xmax (the legend's left edge, or the page's right) and above the x axis's numbers.
 */
static void curve_mark(sb_t *b, const square_t *q, const an_chart_mark_t *m, double xmax)
{
    double px = sq_x(q, m->x), py = sq_y(q, m->y);
    const char *dash = " stroke-width=\"1\" stroke-dasharray=\"2 3\"";
    an__svg_line(b, "mark-guide", px, q->y0, px, py, C_MARK, dash);
    an__svg_line(b, "mark-guide", q->x0, py, px, py, C_MARK, dash);
    an__sb_puts(b, "<circle class=\"mark\"");
    an__sb_kv(b, "cx", px);
    an__sb_kv(b, "cy", py);
    an__sb_puts(b, " r=\"4.5\" fill=\"" C_MARK "\" stroke=\"#ffffff\" stroke-width=\"1.5\"/>\n");
    if (!m->label || an__text_em(m->label) == 0)
        return;
    double xmin = q->x0 + 4, max_px = xmax - xmin;
    double wpx = fmin(an__text_em(m->label) * FS_LABEL, max_px);
    int right = m->y >= m->x;
    double tx = right ? px + 10 : px - 10, ty = right ? fmin(py + 18, q->y0 - 6) : py - 10;
    const char *anchor = right ? "start" : "end";
    if (right && tx + wpx > xmax) {
        anchor = "end", tx = xmax;
    } else if (!right && tx - wpx < xmin) {
        anchor = "start", tx = xmin;
    }
    if (ty < 14)
        ty = py + 18;
    tstyle_t st = {FS_LABEL, anchor, C_TEXT,
                   " font-weight=\"600\" stroke=\"#ffffff\" stroke-width=\"3\" "
                   "paint-order=\"stroke\"",
                   0};
    an__svg_text(b, "mark-label", tx, ty, &st, m->label, max_px);
}

static void curve_line(sb_t *b, const square_t *q, const double *x, const double *y,
                       const size_t *keep, size_t k)
{
    an__sb_puts(b, "<polyline class=\"curve\" fill=\"none\" stroke=\"" C_CURVE
               "\" stroke-width=\"2.5\" stroke-linejoin=\"round\" stroke-linecap=\"round\" "
               "points=\"");
    for (size_t i = 0; i < k; i++) {
        if (i)
            an__sb_puts(b, " ");
        an__sb_num(b, sq_x(q, x[keep[i]]));
        an__sb_puts(b, ",");
        an__sb_num(b, sq_y(q, y[keep[i]]));
    }
    an__sb_puts(b, "\"/>\n");
}

char *an_svg_curve(const an_chart_t *c, const double *x, const double *y, size_t n, char *err,
                   size_t errlen)
{
    static const char fn[] = "an_svg_curve";
    opts_t o;
    sb_t b = {0};
    size_t *keep = NULL, k = 0;
    if (an__read_opts(fn, c, &o, err, errlen) < 0 || check_curve(x, y, n, err, errlen) < 0)
        return NULL;
    if (n && (k = thin(x, n, &o, &keep)) == (size_t)-1) {
        an__set_err(err, errlen, "%s: out of memory while thinning %zu points.", fn, n);
        return NULL;
    }

    /* The square takes the height; the legend sits to its right when there is room, else under
     * the title (in a row, or stacked on a narrow page); the whole is centred on the page. */
    const double legend_w = 200, gap = 28, right = 16, row_w = 330;
    double top = an__title_band(&o) + 12, bottom = o.x_label ? 56 : 34;
    double left = o.y_label ? 66 : 44;
    double side = fmin(o.w - left - right, o.h - top - bottom);
    int beside = o.w - left - right - side >= legend_w + gap, row = o.w - 32 >= row_w;
    double legend_h = beside ? 0 : row ? 30 : 52;
    if (!beside) {
        top += legend_h;
        side = fmin(o.w - left - right, o.h - top - bottom);
    }
    if (side < 40)
        side = 40;
    double used = left + side + (beside ? gap + legend_w : 0) + right;
    square_t q = {left + fmax(0, (o.w - used) / 2), top + side, side};

    an__frame_begin(&b, &o, o.w, o.h);
    curve_axes(&b, &o, &q);
    an__svg_line(&b, "equality", q.x0, q.y0, q.x0 + side, q.y0 - side, C_EQUAL,
             " stroke-width=\"1.5\" stroke-dasharray=\"6 4\"");
    if (k)
        curve_line(&b, &q, x, y, keep, k);
    for (size_t m = 0; m < o.nmarks; m++)
        curve_mark(&b, &q, &o.marks[m], beside ? q.x0 + side + gap - 12 : o.w - 8);
    if (beside)
        curve_legend(&b, q.x0 + side + gap, q.y0 - side + 8, 0);
    else
        curve_legend(&b, fmax(16, fmin(q.x0 - 30, o.w - 16 - (row ? row_w : 175))),
                     top - legend_h + 8, row);
    free(keep);
    return an__frame_end(&b, fn, err, errlen);
}

/* ---------------------------------------------------------------------------------------- */

/* ColorBrewer "Blues" without its near-white first step, so the smallest value still reads as a
 * cell against the page. */
static const unsigned char blues[][3] = {
    {0xde, 0xeb, 0xf7}, {0xc6, 0xdb, 0xef}, {0x9e, 0xca, 0xe1}, {0x6b, 0xae, 0xd6},
    {0x42, 0x92, 0xc6}, {0x21, 0x71, 0xb5}, {0x08, 0x51, 0x9c}, {0x08, 0x30, 0x6b},
};
#define NBLUES (sizeof blues / sizeof blues[0])

/* Colour of t in 0..1 as "#rrggbb"; returns whether text on it should be white. */
static int blue(double t, char out[8])
{
    double p = clamp01(t) * (NBLUES - 1);
    size_t i = (size_t)p;
    if (i >= NBLUES - 1)
        i = NBLUES - 2;
    double f = p - (double)i, rgb[3];
    for (int ch = 0; ch < 3; ch++)
        rgb[ch] = blues[i][ch] + f * (blues[i + 1][ch] - blues[i][ch]);
    snprintf(out, 8, "#%02x%02x%02x", (unsigned)lround(rgb[0]), (unsigned)lround(rgb[1]),
             (unsigned)lround(rgb[2]));
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 150;
}

static int check_names(const char *fn, const char *what, const char *const *names, size_t n,
                       char *err, size_t errlen)
{
    if (n && !names) {
        an__set_err(err, errlen, "%s: %s is NULL but its count is %zu.", fn, what, n);
        return -1;
    }
    return 0;
}

/* Finds the finite range of v and refuses infinities; NAN is allowed (no cell, no bar). */
static int check_values(const char *fn, const double *v, size_t n, double *lo, double *hi,
                        size_t *finite, char *err, size_t errlen)
{
    *lo = INFINITY, *hi = -INFINITY, *finite = 0;
    if (n && !v) {
        an__set_err(err, errlen, "%s: v is NULL but it should hold %zu values.", fn, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i]))
            continue;
        if (isinf(v[i])) {
            an__set_err(err, errlen, "%s: v[%zu] is infinite; use NAN for a missing value.", fn, i);
            return -1;
        }
        *lo = fmin(*lo, v[i]);
        *hi = fmax(*hi, v[i]);
        (*finite)++;
    }
    return 0;
}

static double names_em(const char *const *names, size_t n)
{
    double em = 0;
    for (size_t i = 0; i < n; i++)
        em = fmax(em, an__text_em(names[i]));
    return em;
}

/** The heatmap's geometry, in pixels. */
typedef struct hlayout {
    double w, h;    /* page */
    double gx, gy;  /* grid's top-left corner */
    double cw, ch;  /* cell */
    double label_w; /* room for row names */
    double xl_y;    /* baseline of the columns' caption, above their names */
    double yl_x;    /* centre of the rows' caption */
} hlayout_t;

static void heat_layout(const opts_t *o, double row_em, double col_em, double val_em, size_t nrows,
                        size_t ncols, int legend, hlayout_t *l)
{
    double title = an__title_band(o), xl = o->x_label ? 22 : 0, head = 24;
    double top = title + xl + head, bottom = legend ? 60 : 16, margin = 16;
    double yl = o->y_label ? 26 : 0;
    l->label_w = fmin(row_em, 18) * FS_LABEL;
    double lw = yl + l->label_w + 10;
    double min_cw = fmax(fmax(34, val_em * FS_SMALL + 12), fmin(col_em * FS_LABEL + 8, 80));
    l->cw = fmin(fmax((o->w - 2 * margin - lw) / (double)ncols, min_cw), fmax(120, min_cw));
    l->ch = fmin(fmax((o->h - top - bottom) / (double)nrows, 24), 44);
    double grid_w = l->cw * (double)ncols, grid_h = l->ch * (double)nrows;
    l->w = fmax(o->w, 2 * margin + lw + grid_w);
    l->h = fmax(o->h, top + grid_h + bottom);
    double bx = (l->w - lw - grid_w) / 2;
    l->gx = bx + lw;
    l->gy = top + (l->h - top - grid_h - bottom) / 2;
    l->xl_y = l->gy - 32;
    l->yl_x = bx + 10;
}

static void heat_labels(sb_t *b, const opts_t *o, const hlayout_t *l, const char *const *rows,
                        size_t nrows, const char *const *cols, size_t ncols)
{
    tstyle_t cs = {FS_LABEL, "middle", C_MUTED, NULL, 0};
    tstyle_t rs = {FS_LABEL, "end", C_TEXT, " dy=\"0.35em\"", 0};
    double grid_w = l->cw * (double)ncols, grid_h = l->ch * (double)nrows;
    for (size_t k = 0; k < ncols; k++)
        an__svg_text(b, "col-label", l->gx + ((double)k + 0.5) * l->cw, l->gy - 9, &cs, cols[k],
                 l->cw - 4);
    for (size_t r = 0; r < nrows; r++)
        an__svg_text(b, "row-label", l->gx - 10, l->gy + ((double)r + 0.5) * l->ch, &rs, rows[r],
                 l->label_w);
    tstyle_t ls = {FS_LABEL, "middle", C_TEXT, NULL, 0};
    if (o->x_label) {
        double mid = l->gx + grid_w / 2, room = 2 * fmin(mid - 16, l->w - 16 - mid);
        an__svg_text(b, "axis-label", mid, l->xl_y, &ls, o->x_label, room);
    }
    if (o->y_label) {
        ls.rotate = -90;
        ls.extra = " dy=\"0.35em\"";
        an__svg_text(b, "axis-label", l->yl_x, l->gy + grid_h / 2, &ls, o->y_label, grid_h + 40);
    }
}

/* One cell: its colour, a tooltip naming row and column, and the value. */
static void heat_cell(sb_t *b, const hlayout_t *l, const vfmt_t *vf, double lo, double hi,
                      const char *row, const char *col, size_t r, size_t k, double v)
{
    char fill[8], text[640];
    int white = blue(hi > lo ? (v - lo) / (hi - lo) : 0.5, fill);
    double x = l->gx + (double)k * l->cw, y = l->gy + (double)r * l->ch;
    an__vfmt_format(vf, v, text, sizeof text);
    an__svg_rect(b, "cell", x, y, l->cw, l->ch, fill);
    an__sb_puts(b, " stroke=\"#ffffff\" stroke-width=\"1\"><title>");
    an__sb_text(b, row, 40);
    an__sb_puts(b, " \xC2\xB7 ");
    an__sb_text(b, col, 40);
    an__sb_puts(b, ": ");
    an__sb_text(b, text, -1);
    an__sb_puts(b, "</title></rect>\n");
    tstyle_t st = {FS_SMALL, "middle", white ? "#ffffff" : "#1a1a1a", " dy=\"0.35em\"", 0};
    an__svg_text(b, "value", x + l->cw / 2, y + l->ch / 2, &st, text, -1);
}

static void heat_legend(sb_t *b, const hlayout_t *l, const vfmt_t *vf, double lo, double hi,
                        size_t nrows, size_t ncols)
{
    double x = l->gx, y = l->gy + l->ch * (double)nrows + 20;
    double w = fmin(220, fmax(120, l->cw * (double)ncols));
    char text[640];
    an__sb_puts(b, "<defs><linearGradient id=\"an-heat-scale\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">");
    for (size_t i = 0; i < NBLUES; i++) {
        char stop[8];
        blue((double)i / (NBLUES - 1), stop);
        an__sb_puts(b, "<stop offset=\"");
        an__sb_num(b, (double)i / (NBLUES - 1));
        an__sb_puts(b, "\" stop-color=\"");
        an__sb_puts(b, stop);
        an__sb_puts(b, "\"/>");
    }
    an__sb_puts(b, "</linearGradient></defs>\n");
    an__svg_rect(b, "scale", x, y, w, 10, hi > lo ? "url(#an-heat-scale)" : "#4292c6");
    an__sb_puts(b, "/>\n");
    tstyle_t st = {FS_SMALL, "start", C_MUTED, NULL, 0};
    an__vfmt_format(vf, lo, text, sizeof text);
    an__svg_text(b, "scale-label", x, y + 25, &st, text, -1);
    if (hi > lo) {
        st.anchor = "end";
        an__vfmt_format(vf, hi, text, sizeof text);
        an__svg_text(b, "scale-label", x + w, y + 25, &st, text, -1);
    }
}

char *an_svg_heatmap(const an_chart_t *c, const char *const *rows, size_t nrows,
                     const char *const *cols, size_t ncols, const double *v, char *err,
                     size_t errlen)
{
    static const char fn[] = "an_svg_heatmap";
    opts_t o;
    sb_t b = {0};
    double lo, hi, val_em = 0;
    size_t finite;
    if (an__read_opts(fn, c, &o, err, errlen) < 0 ||
        check_names(fn, "rows", rows, nrows, err, errlen) < 0 ||
        check_names(fn, "cols", cols, ncols, err, errlen) < 0)
        return NULL;
    if (nrows > MAX_GRID || ncols > MAX_GRID) {
        an__set_err(err, errlen, "%s: %zu rows by %zu columns, over the %d by %d a heatmap can show.",
                fn, nrows, ncols, MAX_GRID, MAX_GRID);
        return NULL;
    }
    if (check_values(fn, v, nrows * ncols, &lo, &hi, &finite, err, errlen) < 0)
        return NULL;
    if (!o.has_fmt)
        an__vfmt_parse(fn, "%.2f", &o.vf, NULL, 0);

    if (nrows == 0 || ncols == 0) {
        an__frame_begin(&b, &o, o.w, o.h);
        an__no_data(&b, o.w, o.h);
        return an__frame_end(&b, fn, err, errlen);
    }
    for (size_t i = 0; i < nrows * ncols; i++) {
        char text[640];
        if (isnan(v[i]))
            continue;
        an__vfmt_format(&o.vf, v[i], text, sizeof text);
        val_em = fmax(val_em, an__text_em(text));
    }
    hlayout_t l;
    heat_layout(&o, names_em(rows, nrows), names_em(cols, ncols), val_em, nrows, ncols, finite > 0,
                &l);
    an__frame_begin(&b, &o, l.w, l.h);
    heat_labels(&b, &o, &l, rows, nrows, cols, ncols);
    for (size_t r = 0; r < nrows; r++)
        for (size_t k = 0; k < ncols; k++)
            if (!isnan(v[r * ncols + k]))
                heat_cell(&b, &l, &o.vf, lo, hi, rows[r], cols[k], r, k, v[r * ncols + k]);
    if (finite)
        heat_legend(&b, &l, &o.vf, lo, hi, nrows, ncols);
    return an__frame_end(&b, fn, err, errlen);
}

/* ---------------------------------------------------------------------------------------- */

/* Tableau 10: distinct at a glance and readable on white. */
static const char *const palette[] = {
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
};
#define NPALETTE (sizeof palette / sizeof palette[0])

/** A y axis: lo..hi in steps of step, lo ≤ 0 ≤ hi, all multiples of step. */
typedef struct yscale {
    double lo, hi, step;
    size_t nticks;
} yscale_t;

static void nice_scale(double lo, double hi, yscale_t *s)
{
    lo = fmin(lo, 0), hi = fmax(hi, 0);
    if (hi - lo <= 0)
        hi = 1;
    double rough = (hi - lo) / 5, mag = pow(10, floor(log10(rough))), r = rough / mag;
    double f = r <= 1 ? 1 : r <= 2 ? 2 : r <= 2.5 ? 2.5 : r <= 5 ? 5 : 10;
    s->step = f * mag;
    s->hi = ceil(hi / s->step - 1e-9) * s->step;
    s->lo = floor(lo / s->step + 1e-9) * s->step;
    s->nticks = (size_t)lround((s->hi - s->lo) / s->step) + 1;
}

/* A tick label: the caller's format, or a short number ("250", "1.5k", "2M"). */
static void tick_label(const opts_t *o, const yscale_t *s, double v, char *out, size_t n)
{
    if (fabs(v) < s->step * 1e-9)
        v = 0;
    if (o->has_fmt) {
        an__vfmt_format(&o->vf, v, out, n);
        return;
    }
    double top = fmax(fabs(s->lo), fabs(s->hi)), scale = 1;
    const char *unit = "";
    if (top >= 1e9)
        scale = 1e9, unit = "G";
    else if (top >= 1e6)
        scale = 1e6, unit = "M";
    else if (top >= 1e4)
        scale = 1e3, unit = "k";
    int dec = 0;
    for (double d = s->step / scale; dec < 6 && fabs(d - round(d)) > 1e-6 * fmax(1, fabs(d)); dec++)
        d *= 10;
    snprintf(out, n, "%.*f%s", dec, v / scale, v == 0 ? "" : unit);
    an__fix_point(out);
}

/* Formats a bar's value for its tooltip. */
static void bar_value(const opts_t *o, double v, char *out, size_t n)
{
    if (o->has_fmt) {
        an__vfmt_format(&o->vf, v, out, n);
    } else {
        snprintf(out, n, "%.2f", v);
        an__fix_point(out);
    }
}

/** The bar chart's geometry, in pixels. */
typedef struct blayout {
    double w, h;
    double px, py, pw, ph; /* plot area */
    double group_w;
    double legend_y;
    int rotate; /* category names turned 45° */
    double cat_px;
} blayout_t;

static double bar_y(const blayout_t *l, const yscale_t *s, double v)
{
    return l->py + (s->hi - v) / (s->hi - s->lo) * l->ph;
}

/* Lays out the legend from (x0, y) and returns the rows it takes; draws when b is not NULL. */
static int bar_legend(sb_t *b, const char *const *series, size_t nseries, double x0, double y,
                      double max_x)
{
    tstyle_t st = {FS_LABEL, "start", C_TEXT, " dy=\"0.35em\"", 0};
    double x = x0;
    int lines = 1;
    for (size_t s = 0; s < nseries; s++) {
        double w = 18 + fmin(an__text_em(series[s]), 20) * FS_LABEL + 18;
        if (x > x0 && x + w > max_x) {
            x = x0, y += 20;
            lines++;
        }
        if (b) {
            an__svg_rect(b, "legend-swatch", x, y - 6, 12, 12, palette[s % NPALETTE]);
            an__sb_puts(b, " rx=\"2\"/>\n");
            an__svg_text(b, "legend", x + 18, y, &st, series[s], 20 * FS_LABEL);
        }
        x += w;
    }
    return lines;
}

static void bar_layout(const opts_t *o, const yscale_t *ys, const char *const *cats, size_t ncats,
                       const char *const *series, size_t nseries, blayout_t *l)
{
    double tick_em = 0;
    char text[640];
    for (size_t i = 0; i < ys->nticks; i++) {
        tick_label(o, ys, ys->lo + (double)i * ys->step, text, sizeof text);
        tick_em = fmax(tick_em, an__text_em(text));
    }
    double margin = 16, left = margin + (o->y_label ? 26 : 0) + tick_em * FS_SMALL + 10;
    double right = 20;
    double min_group = (double)nseries * 4 + 6;
    l->w = fmax(o->w, left + right + (double)ncats * min_group);
    l->cat_px = fmin(names_em(cats, ncats), 18) * FS_LABEL;
    l->group_w = (l->w - left - right) / (double)ncats;
    l->rotate = l->cat_px > l->group_w - 6;
    /* A turned name reaches 0.71 of its length left of its group's centre: the first one must
     * stay on the page (twice, as a wider margin narrows the groups). */
    for (int pass = 0; l->rotate && pass < 2; pass++) {
        left = fmax(left, margin + l->cat_px * 0.7071 - l->group_w / 2 + 4);
        l->group_w = (l->w - left - right) / (double)ncats;
    }
    l->px = left;
    l->pw = l->w - left - right;
    int rows = bar_legend(NULL, series, nseries, left, 0, l->w - right);
    l->legend_y = an__title_band(o) + 8;
    double top = l->legend_y + 20 * rows + 8;
    double band = l->rotate ? l->cat_px * 0.7071 + 22 : 24;
    double bottom = band + (o->x_label ? 26 : 0) + 10;
    l->h = fmax(o->h, top + bottom + 120);
    l->py = top;
    l->ph = l->h - top - bottom;
}

static void bar_axes(sb_t *b, const opts_t *o, const blayout_t *l, const yscale_t *ys,
                     const char *const *cats, size_t ncats)
{
    tstyle_t ts = {FS_SMALL, "end", C_MUTED, " dy=\"0.35em\"", 0};
    char text[640];
    for (size_t i = 0; i < ys->nticks; i++) {
        double v = ys->lo + (double)i * ys->step, y = bar_y(l, ys, v);
        if (fabs(v) > ys->step * 1e-9)
            an__svg_line(b, "grid", l->px, y, l->px + l->pw, y, C_GRID, NULL);
        tick_label(o, ys, v, text, sizeof text);
        an__svg_text(b, "tick-label", l->px - 8, y, &ts, text, -1);
    }
    double base = l->py + l->ph;
    tstyle_t cs = {FS_LABEL, "middle", C_TEXT, NULL, 0};
    if (l->rotate)
        cs.anchor = "end", cs.rotate = -45;
    for (size_t k = 0; k < ncats; k++) {
        double cx = l->px + ((double)k + 0.5) * l->group_w;
        if (l->rotate)
            an__svg_text(b, "cat-label", cx + 4, base + 12, &cs, cats[k], l->cat_px);
        else
            an__svg_text(b, "cat-label", cx, base + 18, &cs, cats[k], l->group_w - 4);
    }
    an__svg_line(b, "axis", l->px, l->py, l->px, base, C_AXIS, NULL);
    tstyle_t ls = {FS_LABEL, "middle", C_TEXT, NULL, 0};
    if (o->x_label)
        an__svg_text(b, "axis-label", l->px + l->pw / 2, l->h - 14, &ls, o->x_label, l->pw);
    if (o->y_label) {
        ls.rotate = -90;
        ls.extra = " dy=\"0.35em\"";
        an__svg_text(b, "axis-label", 16 + 10, l->py + l->ph / 2, &ls, o->y_label, l->ph);
    }
}

static void bar_one(sb_t *b, const opts_t *o, const blayout_t *l, const yscale_t *ys,
                    const char *cat, const char *series, size_t k, size_t s, size_t nseries,
                    double v)
{
    double inner = l->group_w * 0.8, bw = inner / (double)nseries;
    double gap = bw > 8 ? 2 : 0;
    double x = l->px + (double)k * l->group_w + l->group_w * 0.1 + (double)s * bw + gap / 2;
    double y0 = bar_y(l, ys, 0), yv = bar_y(l, ys, v);
    char text[640];
    an__svg_rect(b, "bar", x, fmin(y0, yv), bw - gap, fabs(yv - y0), palette[s % NPALETTE]);
    an__sb_puts(b, "><title>");
    an__sb_text(b, cat, 40);
    an__sb_puts(b, " \xC2\xB7 ");
    an__sb_text(b, series, 40);
    an__sb_puts(b, ": ");
    bar_value(o, v, text, sizeof text);
    an__sb_text(b, text, -1);
    an__sb_puts(b, "</title></rect>\n");
}

char *an_svg_bars(const an_chart_t *c, const char *const *cats, size_t ncats,
                  const char *const *series, size_t nseries, const double *v, char *err,
                  size_t errlen)
{
    static const char fn[] = "an_svg_bars";
    opts_t o;
    sb_t b = {0};
    double lo, hi;
    size_t finite;
    if (an__read_opts(fn, c, &o, err, errlen) < 0 ||
        check_names(fn, "cats", cats, ncats, err, errlen) < 0 ||
        check_names(fn, "series", series, nseries, err, errlen) < 0)
        return NULL;
    if (ncats > MAX_GRID || nseries > MAX_GRID) {
        an__set_err(err, errlen,
                "%s: %zu categories by %zu series, over the %d by %d a chart can "
                "show.",
                fn, ncats, nseries, MAX_GRID, MAX_GRID);
        return NULL;
    }
    if (check_values(fn, v, ncats * nseries, &lo, &hi, &finite, err, errlen) < 0)
        return NULL;
    if (finite && !isfinite(hi - lo)) {
        an__set_err(err, errlen, "%s: values from %g to %g span more than a double holds.", fn, lo, hi);
        return NULL;
    }
    if (ncats == 0 || nseries == 0) {
        an__frame_begin(&b, &o, o.w, o.h);
        an__no_data(&b, o.w, o.h);
        return an__frame_end(&b, fn, err, errlen);
    }
    yscale_t ys;
    blayout_t l;
    nice_scale(finite ? lo : 0, finite ? hi : 0, &ys);
    bar_layout(&o, &ys, cats, ncats, series, nseries, &l);
    an__frame_begin(&b, &o, l.w, l.h);
    bar_legend(&b, series, nseries, l.px, l.legend_y, l.w - 20);
    bar_axes(&b, &o, &l, &ys, cats, ncats);
    for (size_t k = 0; k < ncats; k++)
        for (size_t s = 0; s < nseries; s++)
            if (!isnan(v[k * nseries + s]))
                bar_one(&b, &o, &l, &ys, cats[k], series[s], k, s, nseries, v[k * nseries + s]);
    an__svg_line(&b, "zero", l.px, bar_y(&l, &ys, 0), l.px + l.pw, bar_y(&l, &ys, 0), C_AXIS, NULL);
    return an__frame_end(&b, fn, err, errlen);
}
