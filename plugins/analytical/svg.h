/*
 * svg.h — what the charts (chart.c) share with the SVG writer under them (svg.c): a growing
 * string, text escaped and fitted, the checked value format, the checked chart options, and
 * the shapes. Private to the analytical plugin.
 */
#ifndef ANALYTICAL_SVG_H
#define ANALYTICAL_SVG_H

#include <stddef.h>
#include <stdint.h>

#include "chart.h"

/* Font sizes in pixels, and the average advance of a Latin glyph in a sans-serif font (Arial's
 * digits are 0.556 em, its capitals up to 0.72 em: 0.6 keeps labels inside their boxes). */
enum { FS_TITLE = 16, FS_LABEL = 12, FS_SMALL = 11 };
#define GLYPH_EM 0.6
#define WIDE_EM 1.0
#define ELLIPSIS_EM 1.0

#define MAX_MARKS 64
#define MAX_FMT 64
#define MAX_FMT_NUM 20
#define MAX_GRID AN_CHART_MAX_ITEMS
#define CURVE_VERTICES 2000

#define C_TEXT "#222222"
#define C_MUTED "#555555"
#define C_AXIS "#444444"
#define C_GRID "#e6e6e6"
#define C_CURVE "#2563a8"
#define C_EQUAL "#999999"
#define C_MARK "#d9480f"

/** A growing string; after the first failed allocation every append is a no-op. */
typedef struct sb {
    char *s;
    size_t len;
    size_t cap;
    int oom;
} sb_t;

/** A checked value format: the one conversion is fmt[at .. at + len). */
typedef struct vfmt {
    const char *fmt;
    size_t at;
    size_t len;
} vfmt_t;

/** The checked form of an an_chart_t. */
typedef struct opts {
    const char *title;
    const char *x_label;
    const char *y_label;
    int has_fmt;
    vfmt_t vf;
    double w;
    double h;
    const an_chart_mark_t *marks;
    size_t nmarks;
} opts_t;

/** How a piece of text is drawn. */
typedef struct tstyle {
    int size;
    const char *anchor; /* start, middle or end */
    const char *fill;
    const char *extra; /* more attributes, our own literals only */
    double rotate;     /* degrees around (x, y); 0 for none */
} tstyle_t;

void an__sb_puts(sb_t *b, const char *s);
void an__fix_point(char *num);
void an__sb_num(sb_t *b, double v);
void an__sb_kv(sb_t *b, const char *name, double v);
void an__set_err(char *err, size_t errlen, const char *fmt, ...);
double an__text_em(const char *s);
void an__sb_text(sb_t *b, const char *s, double max_em);
int an__vfmt_parse(const char *fn, const char *fmt, vfmt_t *vf, char *err, size_t errlen);
void an__vfmt_format(const vfmt_t *vf, double v, char *out, size_t n);
int an__read_opts(const char *fn, const an_chart_t *c, opts_t *o, char *err, size_t errlen);
void an__svg_text(sb_t *b, const char *cls, double x, double y, const tstyle_t *st,
                     const char *s, double max_px);
void an__svg_line(sb_t *b, const char *cls, double x1, double y1, double x2, double y2,
                     const char *stroke, const char *extra);
void an__svg_rect(sb_t *b, const char *cls, double x, double y, double w, double h,
                     const char *fill);
double an__title_band(const opts_t *o);
void an__frame_begin(sb_t *b, const opts_t *o, double w, double h);
char *an__frame_end(sb_t *b, const char *fn, char *err, size_t errlen);
void an__no_data(sb_t *b, double w, double h);

#endif
