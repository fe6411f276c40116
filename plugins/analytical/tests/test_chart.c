/*
 * test_chart.c — the SVG charts: well-formed XML (checked by Python's parser), data text that
 * cannot become markup, the value format refused unless it is one number, a million points
 * thinned, empty cells left empty, negative bars.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../chart.h"

/* Whether Python's XML parser takes @p svg. */
static int well_formed(const char *svg)
{
    FILE *p = popen("python3 -c \"import sys, xml.dom.minidom; "
                    "xml.dom.minidom.parseString(sys.stdin.buffer.read())\"", "w");
    if (!p)
        return 0;
    fputs(svg, p);
    return pclose(p) == 0;
}

static const char *evil = "<script>alert(1)</script>\" onload=\"x' &amp;\x01";

static void test_curve(void **state)
{
    (void)state;
    char err[200];
    size_t n = 1000000;
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        x[i] = (double)(i + 1) / (double)n;
        y[i] = sqrt(x[i]);
    }
    an_chart_mark_t m = {0.2, sqrt(0.2), evil};
    an_chart_t c = {.title = evil, .x_label = "share of customers", .y_label = evil,
                    .marks = &m, .nmarks = 1};
    char *svg = an_svg_curve(&c, x, y, n, err, sizeof err);
    assert_non_null(svg);
    assert_true(strlen(svg) < 200 * 1024);
    assert_true(well_formed(svg));
    assert_null(strstr(svg, "<script"));
    assert_null(strstr(svg, "\" onload"));
    assert_non_null(strstr(svg, "&lt;script&gt;"));
    /* The last point (100 %, 100 %) is drawn: x = 70 + 700 at the default size. */
    assert_non_null(strstr(svg, "770.00,50.00"));
    assert_null(strchr(svg, '\x01'));
    free(svg);
    svg = an_svg_curve(&(an_chart_t){0}, NULL, NULL, 0, err, sizeof err);
    assert_non_null(svg);
    assert_true(well_formed(svg));
    free(svg);
    assert_null(an_svg_curve(&c, NULL, y, 3, err, sizeof err));
    free(x);
    free(y);
}

static void test_heatmap(void **state)
{
    (void)state;
    char err[200];
    const char *rows[] = {"2026-01", evil}, *cols[] = {"0", "1", "2"};
    double v[] = {100, 50, NAN, 100, NAN, NAN};
    an_chart_t c = {.title = "Retention", .value_fmt = "%.0f%%"};
    char *svg = an_svg_heatmap(&c, rows, 2, cols, 3, v, err, sizeof err);
    assert_non_null(svg);
    assert_true(well_formed(svg));
    assert_non_null(strstr(svg, ">50%<"));
    assert_null(strstr(svg, "<script"));
    /* Three filled cells, no more. */
    int cells = 0;
    for (const char *p = svg; (p = strstr(p, "fill=\"rgb(")); p++)
        cells++;
    assert_int_equal(cells, 3);
    free(svg);
    const char *bad[] = {"%s", "%n", "%.0f %.0f", "%d", "%", "no number", "%*f", NULL};
    for (int i = 0; bad[i]; i++) {
        c.value_fmt = bad[i];
        assert_null(an_svg_heatmap(&c, rows, 2, cols, 3, v, err, sizeof err));
        assert_non_null(strstr(err, "value format"));
    }
    assert_true(an_chart_fmt_ok("%+08.3e units"));
}

static void test_bars(void **state)
{
    (void)state;
    char err[200];
    const char *cats[] = {"2026-01", "2026-02"}, *series[] = {"forecast", evil};
    double v[] = {1200, -300, 0, 450.5};
    an_chart_t c = {.title = "Forecast"};
    char *svg = an_svg_bars(&c, cats, 2, series, 2, v, err, sizeof err);
    assert_non_null(svg);
    assert_true(well_formed(svg));
    assert_null(strstr(svg, "<script"));
    assert_non_null(strstr(svg, ">-500<")); /* the axis goes below zero to a round step */
    free(svg);
    assert_null(an_svg_bars(&c, cats, 2, series, 2, NULL, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curve),
        cmocka_unit_test(test_heatmap),
        cmocka_unit_test(test_bars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
