/* check_plot.c - SVG line charts (host/et_plot.h).
 *
 * Writes charts into a fresh temporary directory and reads them back as text: the
 * document shape (<svg ... </svg>), series names (escaped), one polyline of n points
 * per clean series, nice tick labels, gaps at non-finite values, empty charts, bad
 * arguments, and failed writes that leave no temporary file behind.
 */
#include <dirent.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "et_check.h"
#include "et_plot.h"

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/et_check_plot_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    if (!d) return;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (remove(p) != 0) rmdir(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Entries of the test directory (temporary files left behind would show up here). */
static int dir_entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* The whole file, NUL-terminated (caller frees). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;
    char *buf;
    ck_assert_msg(f != NULL, "%s was not written", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), n);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int count(const char *s, const char *what)
{
    int n = 0;
    size_t len = strlen(what);
    while ((s = strstr(s, what)) != NULL) n++, s += len;
    return n;
}

/* Points in the k-th polyline (0-based), or -1 when there is none. */
static int polyline_points(const char *svg, int k)
{
    const char *p = svg, *q;
    int n = 1;
    for (;;) {
        p = strstr(p, "<polyline");
        if (!p) return -1;
        if (k-- == 0) break;
        p++;
    }
    p = strstr(p, "points=\"");
    ck_assert_ptr_nonnull(p);
    p += 8;
    q = strchr(p, '"');
    ck_assert_ptr_nonnull(q);
    for (; p < q; p++) n += *p == ' ';
    return n;
}

static void check_shape(const char *svg)
{
    size_t n = strlen(svg);
    while (n > 0 && (svg[n - 1] == '\n' || svg[n - 1] == ' ')) n--;
    ck_assert_msg(strncmp(svg, "<svg", 4) == 0, "does not start with <svg");
    ck_assert_msg(n >= 6 && strncmp(svg + n - 6, "</svg>", 6) == 0, "does not end with </svg>");
    ck_assert_int_eq(count(svg, "<svg"), 1);
    ck_assert_int_eq(count(svg, "</svg>"), 1);
    ck_assert_int_eq(count(svg, "<text"), count(svg, "</text>"));
    ck_assert_int_eq(count(svg, "<g>"), count(svg, "</g>"));
}

START_TEST(test_two_series)
{
    enum { NT = 100, NV = 10 };
    float tx[NT], ty[NT], vx[NV], vy[NV];
    et_series s[2];
    et_error err = {0};
    char path[128];
    char *svg;
    int i;
    for (i = 0; i < NT; i++) tx[i] = (float)(i + 1), ty[i] = 4.2f * expf(-i / 30.0f) + 1.5f;
    for (i = 0; i < NV; i++) vx[i] = (float)(10 * (i + 1)), vy[i] = 4.4f * expf(-10 * i / 30.0f) + 1.6f;
    s[0].name = "train loss", s[0].x = tx, s[0].y = ty, s[0].n = NT;
    s[1].name = "val loss", s[1].x = vx, s[1].y = vy, s[1].n = NV;
    snprintf(path, sizeof path, "%s/loss.svg", dir);
    ck_assert_int_eq(et_plot_svg(path, "edgetrain: loss", s, 2, "step", "loss (nats/token)", &err), ET_OK);
    ck_assert_int_eq(dir_entries(), 1); /* no temporary file left */
    svg = slurp(path);
    check_shape(svg);
    ck_assert_ptr_nonnull(strstr(svg, "train loss"));
    ck_assert_ptr_nonnull(strstr(svg, "val loss"));
    ck_assert_ptr_nonnull(strstr(svg, "edgetrain: loss"));
    ck_assert_ptr_nonnull(strstr(svg, ">step<"));
    ck_assert_int_eq(count(svg, "<polyline"), 2);
    ck_assert_int_eq(polyline_points(svg, 0), NT);
    ck_assert_int_eq(polyline_points(svg, 1), NV);
    /* x spans 1..100: nice ticks 0, 20, ..., 100 */
    ck_assert_ptr_nonnull(strstr(svg, ">0</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">20</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">100</text>"));
    /* two distinct colours */
    ck_assert_ptr_nonnull(strstr(svg, "stroke=\"#1f77b4\" stroke-width=\"1.5\""));
    ck_assert_ptr_nonnull(strstr(svg, "stroke=\"#ff7f0e\" stroke-width=\"1.5\""));
    free(svg);
    /* rewriting replaces the file */
    s[1].n = 3;
    ck_assert_int_eq(et_plot_svg(path, NULL, s, 2, NULL, NULL, &err), ET_OK);
    svg = slurp(path);
    check_shape(svg);
    ck_assert_int_eq(polyline_points(svg, 1), 3);
    ck_assert_int_eq(dir_entries(), 1);
    free(svg);
}
END_TEST

START_TEST(test_empty)
{
    float y[1] = {1.0f};
    et_series s[2] = {{"a", NULL, NULL, 0}, {"b", NULL, y, 0}};
    et_error err = {0};
    char path[128];
    char *svg;
    snprintf(path, sizeof path, "%s/empty.svg", dir);
    ck_assert_int_eq(et_plot_svg(path, "nothing yet", s, 2, "step", "loss", &err), ET_OK);
    svg = slurp(path);
    check_shape(svg);
    ck_assert_int_eq(count(svg, "<polyline"), 0);
    ck_assert_int_eq(count(svg, "<circle"), 0);
    ck_assert_ptr_nonnull(strstr(svg, ">a</text>")); /* still in the legend */
    free(svg);
    ck_assert_int_eq(et_plot_svg(path, NULL, NULL, 0, NULL, NULL, &err), ET_OK);
    svg = slurp(path);
    check_shape(svg);
    free(svg);
}
END_TEST

START_TEST(test_nonfinite_skipped)
{
    /* 0..3 finite, 4 NaN, 5 finite alone, 6 inf, 7..9 finite */
    float y[10] = {3, 2.5f, 2.2f, 2.0f, NAN, 1.9f, INFINITY, 1.8f, 1.7f, 1.65f};
    float x[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    float bad[3] = {NAN, NAN, -INFINITY};
    float xnan[3] = {NAN, 1, 2};
    et_series s[3] = {{"gappy", x, y, 10}, {"all bad", NULL, bad, 3}, {"x bad", xnan, x, 3}};
    et_error err = {0};
    char path[128];
    char *svg;
    snprintf(path, sizeof path, "%s/gaps.svg", dir);
    ck_assert_int_eq(et_plot_svg(path, "gaps", s, 3, "x", "y", &err), ET_OK);
    svg = slurp(path);
    check_shape(svg);
    ck_assert_int_eq(count(svg, "<polyline"), 3);
    ck_assert_int_eq(polyline_points(svg, 0), 4);
    ck_assert_int_eq(polyline_points(svg, 1), 3);
    ck_assert_int_eq(polyline_points(svg, 2), 2); /* x[0] NaN: points 1 and 2 */
    ck_assert_int_eq(count(svg, "<circle"), 1);   /* the lone point 5 */
    ck_assert_ptr_null(strstr(svg, "nan"));
    ck_assert_ptr_null(strstr(svg, "inf"));
    ck_assert_ptr_nonnull(strstr(svg, "all bad"));
    free(svg);
}
END_TEST

START_TEST(test_degenerate_and_escaping)
{
    float y[5] = {2, 2, 2, 2, 2};
    float one[1] = {0.5f};
    et_series s[2] = {{"<b>&\"'", NULL, y, 5}, {NULL, NULL, one, 1}};
    et_error err = {0};
    char path[128];
    char *svg;
    snprintf(path, sizeof path, "%s/flat.svg", dir);
    ck_assert_int_eq(et_plot_svg(path, "a < b & c", s, 2, "i", "v", &err), ET_OK);
    svg = slurp(path);
    check_shape(svg);
    ck_assert_ptr_nonnull(strstr(svg, "&lt;b&gt;&amp;&quot;&apos;"));
    ck_assert_ptr_nonnull(strstr(svg, "a &lt; b &amp; c"));
    ck_assert_ptr_null(strstr(svg, "<b>"));
    ck_assert_ptr_nonnull(strstr(svg, "series 1")); /* unnamed */
    ck_assert_int_eq(polyline_points(svg, 0), 5);
    ck_assert_int_eq(count(svg, "<circle"), 1);
    ck_assert_ptr_null(strstr(svg, "nan"));
    ck_assert_ptr_null(strstr(svg, "inf"));
    free(svg);
}
END_TEST

START_TEST(test_bad_arguments)
{
    float y[2] = {1, 2};
    et_series ok = {"ok", NULL, y, 2}, neg = {"neg", NULL, y, -1}, noy = {"noy", NULL, NULL, 2};
    et_error err = {0};
    char path[128];
    snprintf(path, sizeof path, "%s/bad.svg", dir);
    ck_assert_int_eq(et_plot_svg(NULL, "t", &ok, 1, "x", "y", &err), ET_ERR_INVALID);
    ck_assert_int_eq(et_plot_svg("", "t", &ok, 1, "x", "y", &err), ET_ERR_INVALID);
    ck_assert_int_eq(et_plot_svg(path, "t", &ok, -1, "x", "y", &err), ET_ERR_INVALID);
    ck_assert_int_eq(et_plot_svg(path, "t", NULL, 1, "x", "y", &err), ET_ERR_INVALID);
    ck_assert_int_eq(et_plot_svg(path, "t", &neg, 1, "x", "y", &err), ET_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "neg"));
    err.msg[0] = 0;
    ck_assert_int_eq(et_plot_svg(path, "t", &noy, 1, "x", "y", &err), ET_ERR_INVALID);
    ck_assert_int_eq(err.status, ET_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "noy"));
    ck_assert_int_eq(et_plot_svg(path, "t", &ok, 1, "x", "y", NULL), ET_OK); /* err is optional */
    ck_assert_int_eq(dir_entries(), 1);
}
END_TEST

START_TEST(test_io_failure)
{
    float y[2] = {1, 2};
    et_series s = {"s", NULL, y, 2};
    et_error err = {0};
    char path[128];
    struct stat st;
    /* a directory that does not exist */
    snprintf(path, sizeof path, "%s/no/such/dir/x.svg", dir);
    ck_assert_int_eq(et_plot_svg(path, "t", &s, 1, "x", "y", &err), ET_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    /* the target is a directory: the rename fails, the directory stays, no temporary is left */
    snprintf(path, sizeof path, "%s/taken", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    ck_assert_int_eq(et_plot_svg(path, "t", &s, 1, "x", "y", &err), ET_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "rename"));
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(dir_entries(), 1);
}
END_TEST

static Suite *plot_suite(void)
{
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("svg");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_two_series);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_nonfinite_skipped);
    tcase_add_test(tc, test_degenerate_and_escaping);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_io_failure);
    suite_add_tcase(s, tc);
    return s;
}

ET_CHECK_MAIN(plot_suite)
