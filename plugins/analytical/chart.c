/*
 * chart.c — SVG written by hand: a small document builder, escaping, axes, and the three
 * charts of chart.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "chart.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} buf_t;

static void put(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf_t *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
}

/* @p t as XML text: & < > " ' escaped, control characters dropped. */
static void text(buf_t *b, const char *t)
{
    for (; t && *t; t++) {
        unsigned char c = (unsigned char)*t;
        switch (c) {
        case '&': put(b, "&amp;"); break;
        case '<': put(b, "&lt;"); break;
        case '>': put(b, "&gt;"); break;
        case '"': put(b, "&quot;"); break;
        case '\'': put(b, "&#39;"); break;
        default:
            if (c >= 0x20 && c != 0x7f)
                put(b, "%c", c);
        }
    }
}

static char *finish(buf_t *b, char *err, size_t errlen)
{
    if (b->oom) {
        free(b->s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return b->s;
}

typedef struct {
    double w, h, l, r, t, bt; /* size and margins */
} frame_t;

static frame_t open_doc(buf_t *b, const an_chart_t *c, double left)
{
    frame_t f = {c->width > 0 ? c->width : 800, c->height > 0 ? c->height : 500, left, 30, 50,
                 70};
    put(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
           "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" "
           "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n",
        f.w, f.h, f.w, f.h);
    if (c->title) {
        put(b, "<text x=\"%.1f\" y=\"28\" font-size=\"16\" font-weight=\"bold\" "
               "text-anchor=\"middle\">", f.w / 2);
        text(b, c->title);
        put(b, "</text>\n");
    }
    if (c->x_label) {
        put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#333\">",
            f.l + (f.w - f.l - f.r) / 2, f.h - 15);
        text(b, c->x_label);
        put(b, "</text>\n");
    }
    if (c->y_label) {
        put(b, "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\" "
               "fill=\"#333\">", f.t + (f.h - f.t - f.bt) / 2);
        text(b, c->y_label);
        put(b, "</text>\n");
    }
    return f;
}

/* ---- the concentration curve -------------------------------------------------------------- */

char *an_svg_curve(const an_chart_t *c, const double *x, const double *y, size_t n, char *err,
                   size_t errlen)
{
    if (n && (!x || !y)) {
        snprintf(err, errlen, "the curve has no points");
        return NULL;
    }
    buf_t b = {0};
    frame_t f = open_doc(&b, c, 70);
    double pw = f.w - f.l - f.r, ph = f.h - f.t - f.bt;
#define PX(v) (f.l + (v) * pw)
#define PY(v) (f.t + (1 - (v)) * ph)
    for (int i = 0; i <= 5; i++) {
        double v = i / 5.0;
        put(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n",
            PX(0), PY(v), PX(1), PY(v));
        put(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n",
            PX(v), PY(0), PX(v), PY(1));
        put(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555\">%d %%</text>\n",
            PX(0) - 6, PY(v) + 4, i * 20);
        put(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#555\">%d %%</text>\n",
            PX(v), PY(0) + 18, i * 20);
    }
    put(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#999\"/>\n", f.l, f.t, pw, ph);
    put(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" "
            "stroke-dasharray=\"6 4\"/>\n", PX(0), PY(0), PX(1), PY(1));
    if (n) {
        size_t step = n > 2000 ? n / 2000 : 1;
        put(&b, "<polyline fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"2\" points=\"");
        for (size_t i = 0; i < n; i++) {
            if (i % step && i + 1 != n)
                continue;
            double xv = fmin(1, fmax(0, x[i])), yv = fmin(1, fmax(0, y[i]));
            put(&b, "%.2f,%.2f ", PX(xv), PY(yv));
        }
        put(&b, "\"/>\n");
    }
    for (size_t i = 0; i < c->nmarks; i++) {
        double xv = fmin(1, fmax(0, c->marks[i].x)), yv = fmin(1, fmax(0, c->marks[i].y));
        put(&b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4\" fill=\"#d1242f\"/>\n", PX(xv), PY(yv));
        if (c->marks[i].label) {
            put(&b, "<text x=\"%.2f\" y=\"%.2f\" fill=\"#d1242f\">", PX(xv) + 8,
                PY(yv) + 14 + 14 * (double)i);
            text(&b, c->marks[i].label);
            put(&b, "</text>\n");
        }
    }
#undef PX
#undef PY
    put(&b, "</svg>\n");
    return finish(&b, err, errlen);
}

/* ---- the heatmap ------------------------------------------------------------------------------- */

int an_chart_fmt_ok(const char *fmt)
{
    int conv = 0;
    for (const char *p = fmt; p && *p; p++) {
        if (*p != '%')
            continue;
        if (p[1] == '%') {
            p++;
            continue;
        }
        p++;
        p += strspn(p, "-+ #0");
        p += strspn(p, "0123456789");
        if (*p == '.') {
            p++;
            p += strspn(p, "0123456789");
        }
        if (!*p || !strchr("fFeEgG", *p))
            return 0;
        conv++;
    }
    return fmt && conv == 1;
}

char *an_svg_heatmap(const an_chart_t *c, const char *const *rows, size_t nrows,
                     const char *const *cols, size_t ncols, const double *v, char *err,
                     size_t errlen)
{
    const char *fmt = c->value_fmt ? c->value_fmt : "%.2f";
    if (!an_chart_fmt_ok(fmt)) {
        snprintf(err, errlen, "the value format must hold one number conversion (%%.1f, %%g) "
                              "and nothing else that takes an argument");
        return NULL;
    }
    if ((nrows && !rows) || (ncols && !cols) || (nrows && ncols && !v)) {
        snprintf(err, errlen, "the heatmap has no cells");
        return NULL;
    }
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < nrows * ncols; i++)
        if (isfinite(v[i])) {
            lo = fmin(lo, v[i]);
            hi = fmax(hi, v[i]);
        }
    an_chart_t cc = *c;
    double cell_w = ncols > 12 ? 48 : 64, cell_h = nrows > 24 ? 20 : 26;
    if (!cc.width)
        cc.width = (int)fmax(400, 110 + cell_w * (double)ncols + 30);
    if (!cc.height)
        cc.height = (int)fmax(240, 50 + cell_h * (double)nrows + 90);
    buf_t b = {0};
    frame_t f = open_doc(&b, &cc, 100);
    for (size_t k = 0; k < ncols; k++) {
        put(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#555\">",
            f.l + cell_w * ((double)k + 0.5), f.t + cell_h * (double)nrows + 16);
        text(&b, cols[k]);
        put(&b, "</text>\n");
    }
    for (size_t r = 0; r < nrows; r++) {
        double y = f.t + cell_h * (double)r;
        put(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555\">", f.l - 6,
            y + cell_h / 2 + 4);
        text(&b, rows[r]);
        put(&b, "</text>\n");
        for (size_t k = 0; k < ncols; k++) {
            double val = v[r * ncols + k];
            if (!isfinite(val))
                continue;
            double s = hi > lo ? (val - lo) / (hi - lo) : 1;
            /* From a pale blue to a deep one; the text turns white on the dark half. */
            int cr = (int)(235 - s * 205), cg = (int)(243 - s * 163), cb = (int)(255 - s * 100);
            put(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                    "fill=\"rgb(%d,%d,%d)\" stroke=\"#fff\"/>\n",
                f.l + cell_w * (double)k, y, cell_w, cell_h, cr, cg, cb);
            char num[64];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            snprintf(num, sizeof num, fmt, val); /* checked by an_chart_fmt_ok */
#pragma GCC diagnostic pop
            put(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\" "
                    "fill=\"%s\">",
                f.l + cell_w * ((double)k + 0.5), y + cell_h / 2 + 4, s > 0.5 ? "#fff" : "#222");
            text(&b, num);
            put(&b, "</text>\n");
        }
    }
    put(&b, "</svg>\n");
    return finish(&b, err, errlen);
}

/* ---- bars ----------------------------------------------------------------------------------------- */

/* A round step for an axis from 0 to about @p max in five. */
static double nice_step(double max)
{
    if (max <= 0)
        return 1;
    double raw = max / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

char *an_svg_bars(const an_chart_t *c, const char *const *cats, size_t ncats,
                  const char *const *series, size_t nseries, const double *v, char *err,
                  size_t errlen)
{
    if ((ncats && !cats) || (nseries && !series) || (ncats && nseries && !v)) {
        snprintf(err, errlen, "the bars have no values");
        return NULL;
    }
    static const char *const colours[] = {"#1f6feb", "#2da44e", "#bf8700", "#d1242f", "#8250df"};
    double hi = 0, lo = 0;
    for (size_t i = 0; i < ncats * nseries; i++)
        if (isfinite(v[i])) {
            hi = fmax(hi, v[i]);
            lo = fmin(lo, v[i]);
        }
    double step = nice_step(fmax(hi, -lo));
    double top = ceil(hi / step) * step, bottom = floor(lo / step) * step;
    if (top <= bottom)
        top = bottom + step;
    buf_t b = {0};
    frame_t f = open_doc(&b, c, 90);
    double pw = f.w - f.l - f.r, ph = f.h - f.t - f.bt;
#define PY(val) (f.t + (top - (val)) / (top - bottom) * ph)
    for (double t = bottom; t <= top + step / 2; t += step) {
        put(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", f.l,
            PY(t), f.l + pw, PY(t), fabs(t) < step / 2 ? "#999" : "#e5e5e5");
        put(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555\">%.0f</text>\n",
            f.l - 6, PY(t) + 4, t);
    }
    double gw = ncats ? pw / (double)ncats : pw, bw = nseries ? gw * 0.8 / (double)nseries : 0;
    for (size_t k = 0; k < ncats; k++) {
        for (size_t s = 0; s < nseries; s++) {
            double val = v[k * nseries + s];
            if (!isfinite(val))
                continue;
            double y0 = PY(fmax(val, 0)), y1 = PY(fmin(val, 0));
            put(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                f.l + gw * (double)k + gw * 0.1 + bw * (double)s, y0, fmax(bw - 1, 1), y1 - y0,
                colours[s % 5]);
        }
        put(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#555\">",
            f.l + gw * ((double)k + 0.5), f.t + ph + 16);
        text(&b, cats[k]);
        put(&b, "</text>\n");
    }
    for (size_t s = 0; s < nseries; s++) { /* the legend, under the title */
        double x = f.l + 180 * (double)s;
        put(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x,
            f.t - 16, colours[s % 5]);
        put(&b, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#333\">", x + 16, f.t - 6);
        text(&b, series[s]);
        put(&b, "</text>\n");
    }
#undef PY
    put(&b, "</svg>\n");
    return finish(&b, err, errlen);
}
