/*
 * test_chart.c — the SVG charts (chart.h): well-formed XML (checked by Python's parser), text from
 * data escaped, the curve thinned with its ends and marks kept, blank NAN cells, value formats
 * refused, bars below zero, and numbers written with a '.' under a decimal-comma locale.
 * Set CHART_SAMPLES_DIR to also write one chart of each kind there (chart_*.svg).
 */
#include <ctype.h>
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "../chart.h"

/* ---------------------------------------------------------------------------------------- */

/* Pipes @p svg through Python's XML parser (strict UTF-8); true when it parses. */
static int well_formed(const char *svg)
{
    FILE *p = popen("PYTHONIOENCODING=utf-8:strict python3 -c \"import sys, xml.dom.minidom; "
                    "xml.dom.minidom.parseString(sys.stdin.read())\"",
                    "w");
    assert_non_null(p);
    size_t n = strlen(svg);
    int wrote = fwrite(svg, 1, n, p) == n;
    int st = pclose(p);
    return wrote && st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static size_t count(const char *s, const char *what)
{
    size_t n = 0, len = strlen(what);
    for (const char *p = s; (p = strstr(p, what)) != NULL; p += len)
        n++;
    return n;
}

static int has_ci(const char *s, const char *what)
{
    size_t len = strlen(what);
    for (; *s; s++)
        if (strncasecmp(s, what, len) == 0)
            return 1;
    return 0;
}

/* A digit, a comma, a digit is a decimal comma unless the number after it has its own point
 * (the "x,y" pairs of a polyline). */
static int decimal_comma(const char *s)
{
    for (const char *p = s + 1; *p; p++) {
        if (*p != ',' || !isdigit((unsigned char)p[-1]) || !isdigit((unsigned char)p[1]))
            continue;
        const char *q = p + 1;
        while (isdigit((unsigned char)*q))
            q++;
        if (*q != '.')
            return 1;
    }
    return 0;
}

/* Reads attribute @p name of the element whose opening tag contains @p at. */
static double attr(const char *at, const char *name)
{
    char key[32];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *end = strchr(at, '>'), *p = strstr(at, key);
    assert_non_null(p);
    assert_true(end == NULL || p < end);
    return strtod(p + strlen(key), NULL);
}

/* Checks what every chart must be: parsed, no decimal comma, no NaN, no control character. */
static void check_svg(const char *svg)
{
    assert_non_null(svg);
    assert_true(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0);
    assert_false(decimal_comma(svg));
    assert_false(has_ci(svg, "nan"));
    assert_false(has_ci(svg, "inf\""));
    for (const unsigned char *p = (const unsigned char *)svg; *p; p++)
        assert_true(*p >= 0x20 || *p == '\n');
    assert_true(well_formed(svg));
}

static void write_sample(const char *name, const char *svg)
{
    const char *dir = getenv("CHART_SAMPLES_DIR");
    char path[4096];
    if (!dir || !*dir)
        return;
    snprintf(path, sizeof path, "%s/chart_%s.svg", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(svg, f);
    assert_int_equal(fclose(f), 0);
}

/* ---------------------------------------------------------------------------------------- */

/* A Pareto curve: customers sorted by revenue, the first fifth bringing most of it. */
static double pareto(double x)
{
    return 1 - pow(1 - x, 5);
}

static void test_curve_draws_axes_diagonal_and_marks(void **state)
{
    (void)state;
    double x[11], y[11];
    for (int i = 0; i <= 10; i++)
        x[i] = i / 10.0, y[i] = pareto(x[i]);
    an_chart_mark_t marks[] = {{0.2, pareto(0.2), "top 20 % \xE2\x86\x92 67 % of revenue"},
                               {0.5, pareto(0.5), NULL}};
    an_chart_t c = {.title = "Revenue concentration",
                    .x_label = "Share of customers",
                    .y_label = "Share of revenue",
                    .marks = marks,
                    .nmarks = 2};
    char *svg = an_svg_curve(&c, x, y, 11, NULL, 0);
    check_svg(svg);
    write_sample("curve", svg);
    assert_non_null(strstr(svg, "class=\"equality\""));
    assert_non_null(strstr(strstr(svg, "class=\"equality\""), "stroke-dasharray"));
    static const char *const ticks[] = {">0%<", ">20%<", ">40%<", ">60%<", ">80%<", ">100%<"};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(count(svg, ticks[i]), 2); /* on both axes */
    assert_int_equal(count(svg, "class=\"curve\""), 1);
    assert_int_equal(count(svg, "class=\"mark\""), 2);
    assert_non_null(strstr(svg, ">top 20 % \xE2\x86\x92 67 % of revenue<"));
    assert_non_null(strstr(svg, "<title>Revenue concentration</title>"));
    assert_non_null(strstr(svg, "font-family=\"Helvetica, Arial, sans-serif\""));
    assert_non_null(strstr(svg, "width=\"800\" height=\"500\""));
    free(svg);
}

static void test_curve_empty_has_axes(void **state)
{
    (void)state;
    char *svg = an_svg_curve(NULL, NULL, NULL, 0, NULL, 0);
    check_svg(svg);
    assert_null(strstr(svg, "<polyline"));
    assert_non_null(strstr(svg, "class=\"equality\""));
    assert_int_equal(count(svg, ">100%<"), 2);
    free(svg);

    double one = 1; /* a single point is a chart too */
    svg = an_svg_curve(NULL, &one, &one, 1, NULL, 0);
    check_svg(svg);
    free(svg);
}

static void test_curve_refuses_bad_input(void **state)
{
    (void)state;
    char err[256];
    double x[] = {0, 0.5, 1}, y[] = {0, 0.7, 1};
    double down[] = {0, 0.6, 0.5}, big[] = {0, 1.5, 1}, nanx[] = {0, NAN, 1};

    assert_null(an_svg_curve(NULL, NULL, y, 3, err, sizeof err));
    assert_non_null(strstr(err, "x is NULL but n is 3"));
    assert_null(an_svg_curve(NULL, x, NULL, 3, err, sizeof err));
    assert_non_null(strstr(err, "y is NULL"));
    assert_null(an_svg_curve(NULL, down, y, 3, err, sizeof err));
    assert_non_null(strstr(err, "x[2]"));
    assert_null(an_svg_curve(NULL, x, big, 3, err, sizeof err));
    assert_non_null(strstr(err, "y[1] is 1.5, outside 0..1"));
    assert_null(an_svg_curve(NULL, nanx, y, 3, err, sizeof err));
    assert_non_null(strstr(err, "x[1]"));
    assert_null(an_svg_curve(NULL, nanx, y, 3, NULL, 0)); /* no buffer: still refused */

    an_chart_t c = {.nmarks = 1};
    assert_null(an_svg_curve(&c, x, y, 3, err, sizeof err));
    assert_non_null(strstr(err, "marks is NULL but nmarks is 1"));
    an_chart_mark_t off = {1.2, 0.5, "off"};
    c.marks = &off;
    assert_null(an_svg_curve(&c, x, y, 3, err, sizeof err));
    assert_non_null(strstr(err, "outside the unit square"));

    an_chart_t small = {.width = 100};
    assert_null(an_svg_curve(&small, x, y, 3, err, sizeof err));
    assert_non_null(strstr(err, "width 100 is outside"));
    an_chart_t tall = {.height = 20000};
    assert_null(an_svg_curve(&tall, x, y, 3, err, sizeof err));
    an_chart_t fmt = {.value_fmt = "%s"};
    assert_null(an_svg_curve(&fmt, x, y, 3, err, sizeof err));
    assert_non_null(strstr(err, "value_fmt"));

    an_chart_t sized = {.width = 1000, .height = 600};
    char *svg = an_svg_curve(&sized, x, y, 3, err, sizeof err);
    check_svg(svg);
    assert_non_null(strstr(svg, "width=\"1000\" height=\"600\""));
    free(svg);
}

/* True when the polyline has a vertex within 0.006 px of (px, py). */
static int has_vertex(const double *vx, const double *vy, size_t n, double px, double py)
{
    for (size_t i = 0; i < n; i++)
        if (fabs(vx[i] - px) < 0.006 && fabs(vy[i] - py) < 0.006)
            return 1;
    return 0;
}

static void test_curve_thins_a_million_points(void **state)
{
    (void)state;
    const size_t n = 1000000, m1 = 200001, m2 = 777777; /* neither on the 500-step grid */
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    for (size_t i = 0; i < n; i++)
        x[i] = (double)i / (double)(n - 1), y[i] = pareto(x[i]);
    an_chart_mark_t marks[] = {{x[m1], y[m1], "top 20 %"}, {x[m2], y[m2], "top 78 %"}};
    an_chart_t c = {.title = "A million customers", .marks = marks, .nmarks = 2};
    char *svg = an_svg_curve(&c, x, y, n, NULL, 0);
    check_svg(svg);
    assert_true(strlen(svg) < 200 * 1024);

    /* The diagonal runs from share (0, 0) to (1, 1): it gives the mapping to pixels. */
    const char *eq = strstr(svg, "class=\"equality\"");
    assert_non_null(eq);
    double x0 = attr(eq, "x1"), y0 = attr(eq, "y1"), side = attr(eq, "x2") - x0;
    assert_true(fabs((y0 - attr(eq, "y2")) - side) < 0.01);

    const char *pts = strstr(strstr(svg, "class=\"curve\""), "points=\"");
    assert_non_null(pts);
    pts += strlen("points=\"");
    size_t cap = 2100, k = 0;
    double *vx = malloc(cap * sizeof *vx), *vy = malloc(cap * sizeof *vy);
    assert_non_null(vx);
    assert_non_null(vy);
    for (char *end; *pts != '"'; pts = end) {
        assert_true(k < cap);
        vx[k] = strtod(pts, &end);
        assert_int_equal(*end, ',');
        vy[k++] = strtod(end + 1, &end);
    }
    assert_true(k >= 2000 && k <= 2000 + 1 + 2 * 2);
    assert_true(fabs(vx[0] - x0) < 0.006 && fabs(vy[0] - y0) < 0.006);
    assert_true(fabs(vx[k - 1] - (x0 + side)) < 0.006 && fabs(vy[k - 1] - (y0 - side)) < 0.006);
    const size_t want[] = {0, n - 1, m1, m2};
    for (size_t i = 0; i < 4; i++)
        assert_true(has_vertex(vx, vy, k, x0 + x[want[i]] * side, y0 - y[want[i]] * side));
    free(svg);

    /* 10,000 points (a vertex every 5th, neighbours 0.04 px apart): a mark falling between two
     * samples keeps both, so the line passes under the dot. */
    const size_t n2 = 10000, m3 = 3333;
    for (size_t i = 0; i < n2; i++)
        x[i] = (double)i / (double)(n2 - 1), y[i] = pareto(x[i]);
    an_chart_mark_t mid = {(x[m3] + x[m3 + 1]) / 2, (y[m3] + y[m3 + 1]) / 2, NULL};
    an_chart_t c2 = {.marks = &mid, .nmarks = 1};
    svg = an_svg_curve(&c2, x, y, n2, NULL, 0);
    check_svg(svg);
    eq = strstr(svg, "class=\"equality\"");
    x0 = attr(eq, "x1"), y0 = attr(eq, "y1"), side = attr(eq, "x2") - x0;
    pts = strstr(strstr(svg, "class=\"curve\""), "points=\"") + strlen("points=\"");
    for (k = 0; *pts != '"'; k++) {
        char *end;
        assert_true(k < cap);
        vx[k] = strtod(pts, &end);
        vy[k] = strtod(end + 1, &end);
        pts = end;
    }
    assert_true(k <= 2000 + 1 + 2);
    for (size_t i = m3; i <= m3 + 1; i++)
        assert_true(has_vertex(vx, vy, k, x0 + x[i] * side, y0 - y[i] * side));
    free(vx);
    free(vy);
    free(svg);
    free(x);
    free(y);
}

/* ---------------------------------------------------------------------------------------- */

static const char *const evil[] = {
    "<script>alert(1)</script>",
    "\"onload=\"alert(1)",
    "x' onmouseover='alert(1)",
    "Fish & <Chips>",
    "\x01\x1b[31mred\x7f\xc2\x85",
    "bad \xff\xfe utf8 \xc0\xaf \xed\xa0\x80 end",
    "cut \xe2\x80",
};
#define NEVIL (sizeof evil / sizeof evil[0])

/* Nothing of the hostile names survives unescaped: no tag, no quote that could open an
 * attribute, no control character, and the text itself still there, escaped. */
static void check_escaped(const char *svg)
{
    check_svg(svg);
    assert_null(strstr(svg, "<script"));
    assert_null(strstr(svg, "</script"));
    assert_null(strstr(svg, "\"onload=\""));
    assert_null(strstr(svg, "onload=\"alert"));
    assert_null(strchr(svg, '\''));
    assert_null(strstr(svg, "<Chips"));
    assert_null(strstr(svg, "\x7f"));
    assert_null(strstr(svg, "\xc2\x85"));
    assert_non_null(strstr(svg, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(strstr(svg, "&quot;onload=&quot;alert(1)"));
    assert_non_null(strstr(svg, "x&#39; onmouseover=&#39;alert(1)"));
    assert_non_null(strstr(svg, "Fish &amp; &lt;Chips&gt;"));
    assert_non_null(strstr(svg, "[31mred"));
}

static void test_text_from_data_is_escaped(void **state)
{
    (void)state;
    an_chart_mark_t marks[NEVIL];
    for (size_t i = 0; i < NEVIL; i++)
        marks[i] = (an_chart_mark_t){(double)i / NEVIL, (double)i / NEVIL, evil[i]};
    an_chart_t c = {.title = evil[0],
                    .x_label = evil[1],
                    .y_label = evil[2],
                    .value_fmt = "<b>%.1f</b> & more",
                    .width = 1600,
                    .height = 900,
                    .marks = marks,
                    .nmarks = NEVIL};
    double x[] = {0, 0.5, 1}, y[] = {0, 0.8, 1}, v[NEVIL * NEVIL];
    for (size_t i = 0; i < NEVIL * NEVIL; i++)
        v[i] = (double)i;

    char *svg = an_svg_curve(&c, x, y, 3, NULL, 0);
    check_escaped(svg);
    free(svg);

    svg = an_svg_heatmap(&c, evil, NEVIL, evil, NEVIL, v, NULL, 0);
    check_escaped(svg);
    assert_non_null(strstr(svg, "&lt;b&gt;3.0&lt;/b&gt; &amp; more"));
    free(svg);

    svg = an_svg_bars(&c, evil, NEVIL, evil, NEVIL, v, NULL, 0);
    check_escaped(svg);
    free(svg);
}

/* ---------------------------------------------------------------------------------------- */

static const char *const cohorts[] = {"2026-01", "2026-02", "2026-03", "2026-04"};
static const char *const periods[] = {"0", "1", "2", "3"};

static void test_heatmap_leaves_nan_cells_blank(void **state)
{
    (void)state;
    const double v[] = {100, 46, 31, 24, 100, 41, 28, NAN, 100, 38, NAN, NAN, 100, NAN, NAN, NAN};
    an_chart_t c = {.title = "Retention by monthly cohort",
                    .x_label = "Months since first purchase",
                    .y_label = "Cohort",
                    .value_fmt = "%.0f%%"};
    char err[256];
    char *svg = an_svg_heatmap(&c, cohorts, 4, periods, 4, v, err, sizeof err);
    check_svg(svg);
    write_sample("heatmap", svg);
    assert_int_equal(count(svg, "class=\"cell\""), 10);
    assert_int_equal(count(svg, "class=\"value\""), 10);
    assert_int_equal(count(svg, ">100%<"), 5); /* four cells and the top of the colour key */
    assert_int_equal(count(svg, ">46%<"), 1);
    assert_int_equal(count(svg, ">24%<"), 2); /* a cell and the bottom of the colour key */
    assert_non_null(strstr(svg, "<title>2026-03 \xC2\xB7 1: 38%</title>"));
    for (size_t r = 0; r < 4; r++)
        assert_int_equal(count(svg, cohorts[r]), 1 + (4 - r)); /* name and cell tooltips */
    free(svg);

    const double none[] = {NAN, NAN, NAN, NAN};
    svg = an_svg_heatmap(NULL, cohorts, 2, periods, 2, none, err, sizeof err);
    check_svg(svg);
    assert_int_equal(count(svg, "class=\"cell\""), 0);
    assert_null(strstr(svg, "an-heat-scale"));
    free(svg);

    svg = an_svg_heatmap(NULL, NULL, 0, NULL, 0, NULL, err, sizeof err);
    check_svg(svg);
    assert_non_null(strstr(svg, ">No data<"));
    free(svg);
}

static void test_heatmap_refuses_bad_input(void **state)
{
    (void)state;
    char err[256];
    const double v[] = {1, 2, 3, 4}, inf[] = {1, INFINITY, 3, 4};
    const char *const with_null[] = {"a", NULL};
    assert_null(an_svg_heatmap(NULL, NULL, 2, periods, 2, v, err, sizeof err));
    assert_non_null(strstr(err, "rows is NULL"));
    assert_null(an_svg_heatmap(NULL, cohorts, 2, NULL, 2, v, err, sizeof err));
    assert_non_null(strstr(err, "cols is NULL"));
    assert_null(an_svg_heatmap(NULL, cohorts, 2, periods, 2, NULL, err, sizeof err));
    assert_non_null(strstr(err, "v is NULL"));
    assert_null(an_svg_heatmap(NULL, cohorts, 2, periods, 2, inf, err, sizeof err));
    assert_non_null(strstr(err, "v[1] is infinite"));
    assert_null(an_svg_heatmap(NULL, cohorts, 1001, periods, 1, v, err, sizeof err));

    char *svg = an_svg_heatmap(NULL, with_null, 2, periods, 2, v, err, sizeof err);
    check_svg(svg); /* a NULL name is drawn empty */
    free(svg);
}

static void test_value_fmt_is_checked(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "%s",        "%n",
        "%.0f %.0f", "%d",
        "%*f",       "%.*f",
        "%Lf",       "%lf",
        "%.99f",     "%100f",
        "%p",        "%c",
        "%x",        "no conversion",
        "%",         "%.0f%",
        "%1$f",      "%'.0f",
        "%.0f%%%s",  "%%",
        "",          "%.0f xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    };
    static const char *const good[] = {"%.0f%%", "%.1f", "%+.0f%%",  "%e", "%5.1f \xE2\x82\xAC",
                                       "%%%.0f", "%g",   "%-#08.3f", "%A", "%.f days"};
    const double v[] = {12.5, 40, NAN, 0.25};
    char err[512], tiny[8];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        an_chart_t c = {.value_fmt = bad[i]};
        err[0] = '\0';
        assert_null(an_svg_heatmap(&c, cohorts, 2, periods, 2, v, err, sizeof err));
        assert_non_null(strstr(err, "value_fmt"));
        assert_null(an_svg_bars(&c, cohorts, 2, periods, 2, v, tiny, sizeof tiny));
        assert_int_equal(strlen(tiny), sizeof tiny - 1); /* cut, terminated */
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        an_chart_t c = {.value_fmt = good[i]};
        char *svg = an_svg_heatmap(&c, cohorts, 2, periods, 2, v, err, sizeof err);
        check_svg(svg);
        free(svg);
        svg = an_svg_bars(&c, cohorts, 2, periods, 2, v, err, sizeof err);
        check_svg(svg);
        free(svg);
    }
}

/* ---------------------------------------------------------------------------------------- */

static void test_bars_draw_negatives_below_zero(void **state)
{
    (void)state;
    static const char *const months[] = {"2026-01", "2026-02", "2026-03"};
    static const char *const series[] = {"forecast", "won"};
    const double v[] = {120, 100, -40, 30, 75, NAN};
    an_chart_t c = {.title = "Forecast and won, per month", .y_label = "k\xE2\x82\xAC"};
    char *svg = an_svg_bars(&c, months, 3, series, 2, v, NULL, 0);
    check_svg(svg);
    write_sample("bars", svg);
    assert_non_null(strstr(svg, ">forecast</text>"));
    assert_non_null(strstr(svg, ">won</text>"));
    assert_int_equal(count(svg, "class=\"legend-swatch\""), 2);
    /* 120 and -40 in steps of 50: the axis runs from -50 to a round 150. */
    static const char *const ticks[] = {">-50<", ">0<", ">50<", ">100<", ">150<"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(count(svg, ticks[i]), 1);
    assert_null(strstr(svg, ">200<"));

    const char *zero = strstr(svg, "class=\"zero\"");
    assert_non_null(zero);
    double y0 = attr(zero, "y1");
    const char *p = svg;
    size_t bars = 0;
    for (size_t i = 0; i < 6; i++) {
        if (isnan(v[i]))
            continue;
        p = strstr(p, "class=\"bar\"");
        assert_non_null(p);
        double top = attr(p, "y"), h = attr(p, "height");
        assert_true(h > 1);
        if (v[i] < 0)
            assert_true(fabs(top - y0) < 0.011); /* hangs from the zero line */
        else
            assert_true(fabs(top + h - y0) < 0.011); /* stands on it */
        p++, bars++;
    }
    assert_int_equal(bars, 5);
    assert_null(strstr(p, "class=\"bar\"")); /* the NAN draws nothing */
    assert_non_null(strstr(svg, "<title>2026-02 \xC2\xB7 forecast: -40.00</title>"));
    free(svg);
}

static void test_bars_round_maximum_and_long_names(void **state)
{
    (void)state;
    static const char *const one[] = {"won"};
    const char *cats[24];
    char names[24][40];
    double v[24];
    for (int i = 0; i < 24; i++) {
        snprintf(names[i], sizeof names[i], "Region number %d, 2026", i);
        cats[i] = names[i];
        v[i] = 1234567.0 * (i % 7);
    }
    char *svg = an_svg_bars(NULL, cats, 24, one, 1, v, NULL, 0);
    check_svg(svg);
    assert_non_null(strstr(svg, "rotate(-45")); /* the names do not fit flat */
    assert_non_null(strstr(svg, ">8M<"));       /* 7.4 M rounds up to 8 M */
    assert_null(strstr(svg, ">10M<"));
    free(svg);

    const double small[] = {3.2, 7.9};
    svg = an_svg_bars(NULL, one, 1, (const char *const[]){"a", "b"}, 2, small, NULL, 0);
    check_svg(svg);
    assert_non_null(strstr(svg, ">8<"));
    assert_non_null(strstr(svg, ">0<"));
    free(svg);

    const double neg[] = {-0.3, -0.12};
    svg = an_svg_bars(NULL, one, 1, (const char *const[]){"a", "b"}, 2, neg, NULL, 0);
    check_svg(svg);
    assert_non_null(strstr(svg, ">-0.3<"));
    free(svg);

    svg = an_svg_bars(NULL, NULL, 0, NULL, 0, NULL, NULL, 0);
    check_svg(svg);
    assert_non_null(strstr(svg, ">No data<"));
    free(svg);

    char err[256];
    assert_null(an_svg_bars(NULL, NULL, 2, one, 1, small, err, sizeof err));
    assert_non_null(strstr(err, "cats is NULL"));
    assert_null(an_svg_bars(NULL, one, 1, one, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "v is NULL"));
}

/* ---------------------------------------------------------------------------------------- */

/* Under a locale with a decimal comma (when one is installed) the SVG still says "12.50". */
static void test_decimal_comma_locale(void **state)
{
    (void)state;
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8",  "fr_FR.UTF-8",
                                        "fr_FR.utf8",  "ru_RU.UTF-8", "nl_NL.UTF-8"};
    const char *got = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !got; i++)
        got = setlocale(LC_NUMERIC, names[i]);
    char probe[16];
    snprintf(probe, sizeof probe, "%.1f", 1.5);
    if (!got || strcmp(probe, "1,5") != 0) {
        setlocale(LC_NUMERIC, "C");
        skip(); /* no decimal-comma locale here (try LOCPATH with one made by localedef) */
    }
    double x[] = {0, 0.333, 1}, y[] = {0, 0.755, 1}, v[] = {45.5, 12.25, NAN, 3};
    an_chart_mark_t mark = {0.333, 0.755, "a third"};
    an_chart_t c = {.marks = &mark, .nmarks = 1, .value_fmt = "%.1f"};
    char *curve = an_svg_curve(&c, x, y, 3, NULL, 0);
    char *heat = an_svg_heatmap(&c, cohorts, 2, periods, 2, v, NULL, 0);
    c.value_fmt = NULL;
    char *bars = an_svg_bars(&c, cohorts, 2, periods, 2, v, NULL, 0);
    setlocale(LC_NUMERIC, "C");
    check_svg(curve);
    check_svg(heat);
    check_svg(bars);
    assert_non_null(strstr(heat, ">45.5<"));
    assert_non_null(strstr(heat, ">12.2<"));
    assert_non_null(strstr(bars, ": 12.25</title>"));
    free(curve);
    free(heat);
    free(bars);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curve_draws_axes_diagonal_and_marks),
        cmocka_unit_test(test_curve_empty_has_axes),
        cmocka_unit_test(test_curve_refuses_bad_input),
        cmocka_unit_test(test_curve_thins_a_million_points),
        cmocka_unit_test(test_text_from_data_is_escaped),
        cmocka_unit_test(test_heatmap_leaves_nan_cells_blank),
        cmocka_unit_test(test_heatmap_refuses_bad_input),
        cmocka_unit_test(test_value_fmt_is_checked),
        cmocka_unit_test(test_bars_draw_negatives_below_zero),
        cmocka_unit_test(test_bars_round_maximum_and_long_names),
        cmocka_unit_test(test_decimal_comma_locale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
