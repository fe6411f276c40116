/*
 * svg.c — the SVG writer under the charts (svg.h): a small string builder, text escaping and
 * fitting, a checked value format, the checked chart options, and the shapes.
 */
#include "svg.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---------------------------------------------------------------------------------------- */


static void sb_putn(sb_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n >= SIZE_MAX - b->len) {
        b->oom = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
        while (cap < b->len + n + 1) {
            if (cap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void an__sb_puts(sb_t *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

/*
 * The decimal separator printf used is the current locale's; SVG wants '.', whatever locale the
 * program that loaded us chose (no thousands separator is ever asked for).
 */
void an__fix_point(char *num)
{
    const struct lconv *lc = localeconv();
    const char *dp = lc && lc->decimal_point ? lc->decimal_point : ".";
    if (dp[0] == '\0' || (dp[0] == '.' && dp[1] == '\0'))
        return;
    char *p = strstr(num, dp);
    if (!p)
        return;
    size_t dl = strlen(dp);
    *p = '.';
    memmove(p + 1, p + dl, strlen(p + dl) + 1);
}

/** Writes a coordinate or length as "%.2f" with a '.' separator, and 0 without a sign. */
void an__sb_num(sb_t *b, double v)
{
    char num[64];
    if (!isfinite(v))
        v = 0;
    snprintf(num, sizeof num, "%.2f", v);
    an__fix_point(num);
    an__sb_puts(b, strcmp(num, "-0.00") == 0 ? "0.00" : num);
}

/** Writes ` name="v"` with v a number. */
void an__sb_kv(sb_t *b, const char *name, double v)
{
    an__sb_puts(b, " ");
    an__sb_puts(b, name);
    an__sb_puts(b, "=\"");
    an__sb_num(b, v);
    an__sb_puts(b, "\"");
}

static void sb_int(sb_t *b, long v)
{
    char num[32];
    snprintf(num, sizeof num, "%ld", v);
    an__sb_puts(b, num);
}

/* ---------------------------------------------------------------------------------------- */

void an__set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/*
 * Decodes one UTF-8 sequence at @p s (not at its terminating NUL). Returns the bytes consumed;
 * a malformed, overlong or surrogate sequence gives U+FFFD and consumes only what was bad, so
 * the next call resynchronises (and never reads past a NUL).
 */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len;
    uint32_t min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, min = 0x80, *cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, min = 0x800, *cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, min = 0x10000, *cp = c & 0x07;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return i;
        }
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF))
        *cp = 0xFFFD;
    return len;
}

/* Control characters (C0, DEL, C1) and the XML non-characters are dropped from labels. */
static int cp_kept(uint32_t cp)
{
    return cp >= 0x20 && !(cp >= 0x7F && cp <= 0x9F) && cp != 0xFFFE && cp != 0xFFFF;
}

static double cp_em(uint32_t cp)
{
    return cp >= 0x2E80 ? WIDE_EM : GLYPH_EM;
}

/** Estimated width of @p s in em, counting only what sb_text would write. */
double an__text_em(const char *s)
{
    double em = 0;
    if (!s)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        uint32_t cp;
        p += utf8_next(p, &cp);
        if (cp_kept(cp))
            em += cp_em(cp);
    }
    return em;
}

/**
 * Writes @p s XML-escaped, control characters dropped, invalid UTF-8 as U+FFFD, and cut with "…"
 * to at most @p max_em em (max_em < 0: no limit).
 */
void an__sb_text(sb_t *b, const char *s, double max_em)
{
    if (!s)
        return;
    int cut = max_em >= 0 && an__text_em(s) > max_em;
    double room = cut ? max_em - ELLIPSIS_EM : 0, used = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        uint32_t cp;
        size_t n = utf8_next(p, &cp);
        const char *raw = (const char *)p;
        p += n;
        if (!cp_kept(cp))
            continue;
        if (cut) {
            if (used + cp_em(cp) > room)
                break;
            used += cp_em(cp);
        }
        switch (cp) {
        case '&':
            an__sb_puts(b, "&amp;");
            break;
        case '<':
            an__sb_puts(b, "&lt;");
            break;
        case '>':
            an__sb_puts(b, "&gt;");
            break;
        case '"':
            an__sb_puts(b, "&quot;");
            break;
        case '\'':
            an__sb_puts(b, "&#39;");
            break;
        case 0xFFFD:
            an__sb_puts(b, "\xEF\xBF\xBD");
            break;
        default:
            sb_putn(b, raw, n);
            break;
        }
    }
    if (cut)
        an__sb_puts(b, "\xE2\x80\xA6");
}

/* ---------------------------------------------------------------------------------------- */


/* Reads up to two digits worth at most MAX_FMT_NUM; returns -1 when there are more. */
static int fmt_number(const char *f, size_t *j)
{
    int v = 0, digits = 0;
    while (f[*j] >= '0' && f[*j] <= '9') {
        v = v * 10 + (f[*j] - '0');
        (*j)++;
        if (++digits > 2)
            return -1;
    }
    return v > MAX_FMT_NUM ? -1 : 0;
}

/*
 * A caller's format reaches snprintf only through this check: literal text, "%%", and exactly
 * one floating conversion, so that no other argument is ever read (%s, %n, %d, '*').
 */
int an__vfmt_parse(const char *fn, const char *fmt, vfmt_t *vf, char *err, size_t errlen)
{
    static const char rule[] = "it may hold literal text, \"%%\" and exactly one floating "
                               "conversion (%f, %e, %g or %a, with flags \"-+ #0\", a width and "
                               "a precision up to 20)";
    int found = 0;
    size_t len = 0;
    while (len <= MAX_FMT && fmt[len])
        len++;
    if (len > MAX_FMT) {
        an__set_err(err, errlen, "%s: value_fmt is longer than %d bytes.", fn, MAX_FMT);
        return -1;
    }
    for (size_t i = 0; fmt[i];) {
        if (fmt[i] != '%') {
            i++;
            continue;
        }
        if (fmt[i + 1] == '%') {
            i += 2;
            continue;
        }
        size_t j = i + 1;
        while (fmt[j] && strchr("-+ #0", fmt[j]))
            j++;
        int bad = fmt_number(fmt, &j) < 0;
        if (!bad && fmt[j] == '.') {
            j++;
            bad = fmt_number(fmt, &j) < 0;
        }
        bad = bad || fmt[j] == '\0' || !strchr("fFeEgGaA", fmt[j]);
        if (bad) {
            size_t shown = fmt[j] ? j + 1 - i : j - i;
            an__set_err(err, errlen, "%s: value_fmt \"%s\" has \"%.*s\" at byte %zu; %s.", fn, fmt,
                    (int)shown, fmt + i, i, rule);
            return -1;
        }
        if (found) {
            an__set_err(err, errlen, "%s: value_fmt \"%s\" has a second conversion at byte %zu; %s.",
                    fn, fmt, i, rule);
            return -1;
        }
        found = 1;
        vf->at = i;
        vf->len = j + 1 - i;
        i = j + 1;
    }
    if (!found) {
        an__set_err(err, errlen, "%s: value_fmt \"%s\" has no conversion; %s.", fn, fmt, rule);
        return -1;
    }
    vf->fmt = fmt;
    return 0;
}

/* Appends fmt[from .. to) to out with "%%" read as "%". */
static size_t fmt_literal(const char *fmt, size_t from, size_t to, char *out, size_t o, size_t n)
{
    for (size_t i = from; i < to && o + 1 < n; i++) {
        out[o++] = fmt[i];
        if (fmt[i] == '%')
            i++;
    }
    out[o] = '\0';
    return o;
}

/** Formats @p v with a checked format into @p out (raw text: escape it when writing). */
void an__vfmt_format(const vfmt_t *vf, double v, char *out, size_t n)
{
    char spec[MAX_FMT + 1], num[512];
    memcpy(spec, vf->fmt + vf->at, vf->len);
    spec[vf->len] = '\0';
    snprintf(num, sizeof num, spec, v);
    an__fix_point(num);
    size_t o = fmt_literal(vf->fmt, 0, vf->at, out, 0, n);
    size_t nl = strlen(num);
    if (nl > n - 1 - o)
        nl = n - 1 - o;
    memcpy(out + o, num, nl);
    o += nl;
    out[o] = '\0';
    fmt_literal(vf->fmt, vf->at + vf->len, strlen(vf->fmt), out, o, n);
}

/* ---------------------------------------------------------------------------------------- */


static int check_side(const char *fn, const char *what, int v, int dflt, double *out, char *err,
                      size_t errlen)
{
    if (v == 0)
        v = dflt;
    if (v < AN_CHART_MIN_SIDE || v > AN_CHART_MAX_SIDE) {
        an__set_err(err, errlen, "%s: %s %d is outside %d..%d pixels.", fn, what, v, AN_CHART_MIN_SIDE,
                AN_CHART_MAX_SIDE);
        return -1;
    }
    *out = v;
    return 0;
}

static int check_marks(const char *fn, const an_chart_t *c, char *err, size_t errlen)
{
    if (c->nmarks > MAX_MARKS) {
        an__set_err(err, errlen, "%s: %zu marks, more than the %d a chart can hold.", fn, c->nmarks,
                MAX_MARKS);
        return -1;
    }
    if (c->nmarks && !c->marks) {
        an__set_err(err, errlen, "%s: marks is NULL but nmarks is %zu.", fn, c->nmarks);
        return -1;
    }
    for (size_t i = 0; i < c->nmarks; i++) {
        double x = c->marks[i].x, y = c->marks[i].y;
        if (!(x >= 0 && x <= 1 && y >= 0 && y <= 1)) {
            an__set_err(err, errlen, "%s: mark %zu is at (%g, %g), outside the unit square.", fn, i, x,
                    y);
            return -1;
        }
    }
    return 0;
}

int an__read_opts(const char *fn, const an_chart_t *c, opts_t *o, char *err, size_t errlen)
{
    static const an_chart_t none;
    if (!c)
        c = &none;
    memset(o, 0, sizeof *o);
    o->title = c->title;
    o->x_label = c->x_label;
    o->y_label = c->y_label;
    if (check_side(fn, "width", c->width, AN_CHART_WIDTH, &o->w, err, errlen) < 0 ||
        check_side(fn, "height", c->height, AN_CHART_HEIGHT, &o->h, err, errlen) < 0 ||
        check_marks(fn, c, err, errlen) < 0)
        return -1;
    o->marks = c->marks;
    o->nmarks = c->nmarks;
    if (c->value_fmt) {
        if (an__vfmt_parse(fn, c->value_fmt, &o->vf, err, errlen) < 0)
            return -1;
        o->has_fmt = 1;
    }
    return 0;
}


void an__svg_text(sb_t *b, const char *cls, double x, double y, const tstyle_t *st,
                     const char *s, double max_px)
{
    an__sb_puts(b, "<text");
    if (cls) {
        an__sb_puts(b, " class=\"");
        an__sb_puts(b, cls);
        an__sb_puts(b, "\"");
    }
    an__sb_kv(b, "x", x);
    an__sb_kv(b, "y", y);
    an__sb_puts(b, " font-size=\"");
    sb_int(b, st->size);
    an__sb_puts(b, "\" text-anchor=\"");
    an__sb_puts(b, st->anchor);
    an__sb_puts(b, "\" fill=\"");
    an__sb_puts(b, st->fill);
    an__sb_puts(b, "\"");
    if (st->rotate != 0) {
        an__sb_puts(b, " transform=\"rotate(");
        an__sb_num(b, st->rotate);
        an__sb_puts(b, " ");
        an__sb_num(b, x);
        an__sb_puts(b, " ");
        an__sb_num(b, y);
        an__sb_puts(b, ")\"");
    }
    if (st->extra)
        an__sb_puts(b, st->extra);
    an__sb_puts(b, ">");
    an__sb_text(b, s, max_px < 0 ? -1 : max_px / st->size);
    an__sb_puts(b, "</text>\n");
}

void an__svg_line(sb_t *b, const char *cls, double x1, double y1, double x2, double y2,
                     const char *stroke, const char *extra)
{
    an__sb_puts(b, "<line");
    if (cls) {
        an__sb_puts(b, " class=\"");
        an__sb_puts(b, cls);
        an__sb_puts(b, "\"");
    }
    an__sb_kv(b, "x1", x1);
    an__sb_kv(b, "y1", y1);
    an__sb_kv(b, "x2", x2);
    an__sb_kv(b, "y2", y2);
    an__sb_puts(b, " stroke=\"");
    an__sb_puts(b, stroke);
    an__sb_puts(b, "\"");
    if (extra)
        an__sb_puts(b, extra);
    an__sb_puts(b, "/>\n");
}

void an__svg_rect(sb_t *b, const char *cls, double x, double y, double w, double h,
                     const char *fill)
{
    an__sb_puts(b, "<rect");
    if (cls) {
        an__sb_puts(b, " class=\"");
        an__sb_puts(b, cls);
        an__sb_puts(b, "\"");
    }
    an__sb_kv(b, "x", x);
    an__sb_kv(b, "y", y);
    an__sb_kv(b, "width", w);
    an__sb_kv(b, "height", h);
    an__sb_puts(b, " fill=\"");
    an__sb_puts(b, fill);
    an__sb_puts(b, "\"");
}

double an__title_band(const opts_t *o)
{
    return o->title && an__text_em(o->title) > 0 ? 44 : 14;
}

/* The root element, its accessible name, a white page and the title. */
void an__frame_begin(sb_t *b, const opts_t *o, double w, double h)
{
    an__sb_puts(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"");
    sb_int(b, (long)ceil(w));
    an__sb_puts(b, "\" height=\"");
    sb_int(b, (long)ceil(h));
    an__sb_puts(b, "\" viewBox=\"0 0 ");
    sb_int(b, (long)ceil(w));
    an__sb_puts(b, " ");
    sb_int(b, (long)ceil(h));
    an__sb_puts(b, "\" font-family=\"Helvetica, Arial, sans-serif\" role=\"img\"");
    if (o->title) {
        an__sb_puts(b, " aria-label=\"");
        an__sb_text(b, o->title, -1);
        an__sb_puts(b, "\">\n<title>");
        an__sb_text(b, o->title, -1);
        an__sb_puts(b, "</title>\n");
    } else {
        an__sb_puts(b, ">\n");
    }
    an__svg_rect(b, "background", 0, 0, ceil(w), ceil(h), "#ffffff");
    an__sb_puts(b, "/>\n");
    if (o->title) {
        tstyle_t st = {FS_TITLE, "middle", C_TEXT, " font-weight=\"600\"", 0};
        an__svg_text(b, "title", w / 2, 28, &st, o->title, w - 32);
    }
}

char *an__frame_end(sb_t *b, const char *fn, char *err, size_t errlen)
{
    an__sb_puts(b, "</svg>\n");
    if (b->oom) {
        free(b->s);
        an__set_err(err, errlen, "%s: out of memory while writing the chart.", fn);
        return NULL;
    }
    return b->s;
}

void an__no_data(sb_t *b, double w, double h)
{
    tstyle_t st = {14, "middle", C_MUTED, NULL, 0};
    an__svg_text(b, "empty", w / 2, h / 2, &st, "No data", -1);
}

