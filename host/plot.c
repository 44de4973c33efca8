/* plot.c - SVG line charts (et_plot.h).
 *
 * Lays out a fixed 800x480 canvas: title on top, plot area with a light grid at the
 * nice ticks, tick labels, axis labels, a legend in the plot's top-right corner, and
 * one polyline per run of finite points of each series. Text is XML-escaped. The file
 * goes to "<path>.tmp.<pid>" (created exclusively, mode 0666 less the umask), is
 * flushed and fsync'ed, and renamed over the target; on any failure the temporary
 * file is removed and the target is untouched.
 *
 * Deliberately avoided: log axes, decimation of long series (a 100k-step run is a
 * ~1.5 MB file, which browsers draw fine), CSS, scripts and fonts beyond the generic
 * "sans-serif", and any global state.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "et_plot.h"

#ifndef ET_PLOT_MALLOC
#define ET_PLOT_MALLOC(n) malloc(n)
#endif
#ifndef ET_PLOT_FREE
#define ET_PLOT_FREE(p) free(p)
#endif

// --- layout

#define ET__W 800
#define ET__H 480
#define ET__LEFT 80.0
#define ET__RIGHT 24.0
#define ET__TOP 44.0
#define ET__BOTTOM 56.0
#define ET__PW (ET__W - ET__LEFT - ET__RIGHT)
#define ET__PH (ET__H - ET__TOP - ET__BOTTOM)
#define ET__TICKS 6 /* about this many ticks per axis */

/* matplotlib's tab10: distinct, and readable for the common colour blindnesses */
static const char *const et__colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define ET__NCOLOURS ((int)(sizeof et__colours / sizeof et__colours[0]))

typedef struct et__axis {
    double lo, hi, step; /* lo and hi are multiples of step */
    int decimals;        /* for the tick labels */
} et__axis;

typedef struct et__frame {
    et__axis x, y;
} et__frame;

// --- ticks

/* A "nice" number near v > 0: 1, 2 or 5 times a power of ten (Heckbert, Graphics Gems). */
static double et__nice(double v, int round_it)
{
    double e = floor(log10(v)), f = v / pow(10.0, e), nf;
    if (round_it)
        nf = f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0;
    else
        nf = f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0;
    return nf * pow(10.0, e);
}

static void et__axis_fit(et__axis *a, double lo, double hi)
{
    double range, d;
    if (!(lo <= hi)) lo = 0.0, hi = 1.0; /* no finite point */
    if (hi - lo <= 1e-12 * fabs(hi) || hi == lo) { /* one value: give it some room */
        d = lo != 0.0 ? 0.1 * fabs(lo) : 1.0;
        lo -= d, hi += d;
    }
    range = et__nice(hi - lo, 0);
    a->step = et__nice(range / (ET__TICKS - 1), 1);
    a->lo = floor(lo / a->step) * a->step;
    a->hi = ceil(hi / a->step) * a->step;
    d = -floor(log10(a->step));
    a->decimals = d > 0 ? (int)d : 0;
}

static void et__tick_label(char *buf, size_t size, const et__axis *a, double v)
{
    if (fabs(v) < 1e-9 * a->step) v = 0.0; /* no "-0" */
    if (a->decimals > 6 || fabs(v) >= 1e7)
        snprintf(buf, size, "%g", v);
    else
        snprintf(buf, size, "%.*f", a->decimals, v);
}

static double et__px(const et__frame *f, double x)
{
    return ET__LEFT + (x - f->x.lo) / (f->x.hi - f->x.lo) * ET__PW;
}

static double et__py(const et__frame *f, double y)
{
    return ET__TOP + ET__PH - (y - f->y.lo) / (f->y.hi - f->y.lo) * ET__PH;
}

// --- writing

static void et__text(FILE *fp, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", fp); break;
        case '<': fputs("&lt;", fp); break;
        case '>': fputs("&gt;", fp); break;
        case '"': fputs("&quot;", fp); break;
        case '\'': fputs("&apos;", fp); break;
        default:
            /* XML 1.0 forbids most control characters even as references */
            if ((unsigned char)*s >= 0x20 || *s == '\t' || *s == '\n') fputc(*s, fp);
        }
    }
}

static double et__xval(const et_series *s, int i)
{
    return s->x ? (double)s->x[i] : (double)i;
}

static int et__ok(const et_series *s, int i)
{
    return isfinite(et__xval(s, i)) && isfinite((double)s->y[i]);
}

static void et__axes(FILE *fp, const et__frame *f, const char *xlabel, const char *ylabel)
{
    char lab[64];
    double v;
    int k;
    fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" stroke=\"#444\"/>\n",
            ET__LEFT, ET__TOP, ET__PW, ET__PH);
    for (k = 0, v = f->x.lo; v <= f->x.hi + 0.5 * f->x.step && k < 64; k++, v = f->x.lo + k * f->x.step) {
        double px = et__px(f, v);
        et__tick_label(lab, sizeof lab, &f->x, v);
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", px, ET__TOP, px,
                ET__TOP + ET__PH);
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", px, ET__TOP + ET__PH + 16, lab);
    }
    for (k = 0, v = f->y.lo; v <= f->y.hi + 0.5 * f->y.step && k < 64; k++, v = f->y.lo + k * f->y.step) {
        double py = et__py(f, v);
        et__tick_label(lab, sizeof lab, &f->y, v);
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", ET__LEFT, py,
                ET__LEFT + ET__PW, py);
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", ET__LEFT - 6, py + 4, lab);
    }
    fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n",
            ET__LEFT, ET__TOP, ET__PW, ET__PH);
    if (xlabel) {
        fprintf(fp, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", ET__LEFT + ET__PW / 2, ET__H - 14);
        et__text(fp, xlabel);
        fputs("</text>\n", fp);
    }
    if (ylabel) {
        fprintf(fp, "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\">", ET__TOP + ET__PH / 2);
        et__text(fp, ylabel);
        fputs("</text>\n", fp);
    }
}

/* One polyline per run of finite points; a run of one point is a dot. */
static void et__curve(FILE *fp, const et__frame *f, const et_series *s, const char *colour)
{
    int i = 0, j, k;
    while (i < s->n) {
        while (i < s->n && !et__ok(s, i)) i++;
        for (j = i; j < s->n && et__ok(s, j); j++) {
        }
        if (j - i == 1) {
            fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", et__px(f, et__xval(s, i)),
                    et__py(f, (double)s->y[i]), colour);
        } else if (j > i) {
            fprintf(fp, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" stroke-linejoin=\"round\" points=\"",
                    colour);
            for (k = i; k < j; k++)
                fprintf(fp, "%s%.1f,%.1f", k > i ? " " : "", et__px(f, et__xval(s, k)), et__py(f, (double)s->y[k]));
            fputs("\"/>\n", fp);
        }
        i = j;
    }
}

static void et__legend(FILE *fp, const et_series *series, int nseries)
{
    double w = 0, x, y = ET__TOP + 10;
    int k;
    if (nseries == 0) return;
    for (k = 0; k < nseries; k++) { /* width from the longest name, ~7.5 px a character */
        double len = series[k].name ? (double)strlen(series[k].name) : 9.0;
        if (len > 60) len = 60;
        if (len * 7.5 > w) w = len * 7.5;
    }
    w += 48;
    x = ET__LEFT + ET__PW - w - 10;
    fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" fill-opacity=\"0.85\" "
                "stroke=\"#bbb\"/>\n", x, y, w, 8.0 + 18.0 * nseries);
    for (k = 0; k < nseries; k++) {
        double ly = y + 17 + 18.0 * k;
        const char *c = et__colours[k % ET__NCOLOURS];
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                x + 8, ly - 4, x + 30, ly - 4, c);
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">", x + 36, ly);
        if (series[k].name)
            et__text(fp, series[k].name);
        else
            fprintf(fp, "series %d", k);
        fputs("</text>\n", fp);
    }
}

static void et__svg(FILE *fp, const char *title, const et_series *series, int nseries, const char *xlabel,
                    const char *ylabel)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    et__frame f;
    int k, i;
    for (k = 0; k < nseries; k++) {
        const et_series *s = &series[k];
        for (i = 0; i < s->n; i++) {
            double x = et__xval(s, i), y = (double)s->y[i];
            if (!et__ok(s, i)) continue;
            if (x < xlo) xlo = x;
            if (x > xhi) xhi = x;
            if (y < ylo) ylo = y;
            if (y > yhi) yhi = y;
        }
    }
    et__axis_fit(&f.x, xlo, xhi);
    et__axis_fit(&f.y, ylo, yhi);
    fprintf(fp, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "font-family=\"sans-serif\" font-size=\"12\" fill=\"#222\">\n", ET__W, ET__H, ET__W, ET__H);
    fprintf(fp, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", ET__W, ET__H);
    if (title) {
        fprintf(fp, "<text x=\"%d\" y=\"26\" text-anchor=\"middle\" font-size=\"16\">", ET__W / 2);
        et__text(fp, title);
        fputs("</text>\n", fp);
    }
    et__axes(fp, &f, xlabel, ylabel);
    for (k = 0; k < nseries; k++) {
        fprintf(fp, "<g>\n<title>");
        if (series[k].name)
            et__text(fp, series[k].name);
        else
            fprintf(fp, "series %d", k);
        fputs("</title>\n", fp);
        et__curve(fp, &f, &series[k], et__colours[k % ET__NCOLOURS]);
        fputs("</g>\n", fp);
    }
    et__legend(fp, series, nseries);
    fputs("</svg>\n", fp);
}

// --- public

et_status et_plot_svg(const char *path, const char *title, const et_series *series, int nseries,
                      const char *xlabel, const char *ylabel, et_error *err)
{
    const char *stage = "create";
    size_t tlen;
    char *tmp;
    FILE *fp = NULL;
    int fd = -1, e = 0, k;
    if (!path || !*path) return et_error_set(err, ET_ERR_INVALID, "et_plot_svg: no output path given");
    if (nseries < 0 || (nseries > 0 && !series))
        return et_error_set(err, ET_ERR_INVALID, "et_plot_svg: %s: %d series at %p (expected a count >= 0 "
                            "and an array when it is positive)", path, nseries, (const void *)series);
    for (k = 0; k < nseries; k++) {
        if (series[k].n < 0 || (series[k].n > 0 && !series[k].y))
            return et_error_set(err, ET_ERR_INVALID, "et_plot_svg: %s: series %d ('%s') has n = %d and y %s "
                                "(expected n >= 0, and y values when n > 0)", path, k,
                                series[k].name ? series[k].name : "", series[k].n, series[k].y ? "set" : "NULL");
    }
    tlen = strlen(path) + 32;
    tmp = ET_PLOT_MALLOC(tlen);
    if (!tmp) return et_error_set(err, ET_ERR_NOMEM, "et_plot_svg: %s: out of memory", path);
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    (void)unlink(tmp); /* a leftover of an earlier crash of a process with our pid */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) {
        e = errno;
        goto fail;
    }
    stage = "write";
    fp = fdopen(fd, "w");
    if (!fp) {
        e = errno;
        close(fd);
        goto fail_created;
    }
    et__svg(fp, title, series, nseries, xlabel, ylabel);
    if (fflush(fp) != 0 || ferror(fp)) {
        e = errno;
        goto fail_open;
    }
    stage = "fsync";
    if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP) { /* some file systems cannot */
        e = errno;
        goto fail_open;
    }
    stage = "close";
    if (fclose(fp) != 0) {
        e = errno;
        fp = NULL;
        goto fail_created;
    }
    fp = NULL;
    stage = "rename";
    if (rename(tmp, path) != 0) {
        e = errno;
        goto fail_created;
    }
    ET_PLOT_FREE(tmp);
    return ET_OK;

fail_open:
    fclose(fp);
fail_created:
    (void)unlink(tmp);
fail:
    et_error_set(err, ET_ERR_IO, "cannot write chart %s: %s of %s failed: %s (any existing file is unchanged)",
                 path, stage, tmp, strerror(e ? e : EIO));
    ET_PLOT_FREE(tmp);
    return ET_ERR_IO;
}
