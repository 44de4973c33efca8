/* sys_svg.c - a bar chart of per-layer PE utilization as one self-contained SVG
 * (et_sys_report.h): for each row two bars, the plain fold schedule and the
 * double-buffered one, on a 0..100 % axis with a grid every 20 %, layer names rotated
 * under the bars, a legend, and the bar's exact value in a tooltip (<title>).
 * The canvas widens with the number of rows, so every label stays readable.
 * Deliberately avoided: scripts, CSS, fonts beyond "sans-serif", log scales.
 */
#include <string.h>
#include "et_sys_report.h"

#define TOP 48.0
#define BOTTOM 150.0
#define LEFT 70.0
#define RIGHT 24.0
#define PH 300.0   /* plot height */
#define GROUP 34.0 /* width per row: two bars and a gap */
#define BAR 13.0

static void text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void bar(FILE *f, double x, double pct, const char *colour, const char *name, const char *what)
{
    double h;
    if (!(pct >= 0.0)) pct = 0.0;
    if (pct > 100.0) pct = 100.0;
    h = PH * pct / 100.0;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>", x, TOP + PH - h,
            BAR, h, colour);
    text(f, name);
    fprintf(f, " (%s): %.2f %%</title></rect>\n", what, pct);
}

static void chart(FILE *f, const char *title, const et_sys_config *c, const et_sys_row *rows, size_t n)
{
    double W = LEFT + RIGHT + GROUP * (double)(n ? n : 1), H = TOP + PH + BOTTOM;
    size_t i;
    int g;
    if (W < 480.0) W = 480.0;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"sans-serif\">\n", W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%.1f\" y=\"26\" font-size=\"16\" text-anchor=\"middle\">", W / 2);
    text(f, title ? title : "PE utilization");
    fprintf(f, "</text>\n");
    for (g = 0; g <= 100; g += 20) {
        double y = TOP + PH - PH * g / 100.0;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", LEFT, y, W - RIGHT, y,
                g ? "#e0e0e0" : "#000");
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%d</text>\n", LEFT - 6, y + 4, g);
    }
    fprintf(f, "<text x=\"18\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
               "transform=\"rotate(-90 18 %.1f)\">PE utilization (%%)</text>\n", TOP + PH / 2, TOP + PH / 2);
    for (i = 0; i < n; i++) {
        double x = LEFT + GROUP * (double)i + 3.0, lx = x + BAR;
        uint64_t tot = et_sys_total_cycles(&rows[i].st), db = et_sys_db_total_cycles(&rows[i].st);
        char label[96];
        snprintf(label, sizeof label, "%s%s%s", rows[i].name ? rows[i].name : "",
                 rows[i].kind && strcmp(rows[i].kind, "gemm") ? " " : "",
                 rows[i].kind && strcmp(rows[i].kind, "gemm") ? rows[i].kind : "");
        bar(f, x, 100.0 * et_sys_utilization(c, &rows[i].st, tot), "#1f77b4", label, "folds back to back");
        bar(f, x + BAR, 100.0 * et_sys_utilization(c, &rows[i].st, db), "#ff7f0e", label, "double-buffered");
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" "
                   "transform=\"rotate(-60 %.1f %.1f)\">", lx, TOP + PH + 12, lx, TOP + PH + 12);
        text(f, label);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"#1f77b4\"/>"
               "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">folds back to back</text>\n",
            LEFT, H - 22, LEFT + 14, H - 13);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"#ff7f0e\"/>"
               "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">double-buffered folds</text>\n",
            LEFT + 150, H - 22, LEFT + 164, H - 13);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">array %dx%d %s %s</text>\n",
            W - RIGHT, H - 13, c->rows, c->cols, et_sys_dataflow_name(c->dataflow), et_sys_dtype_name(c->dtype));
    fprintf(f, "</svg>\n");
}

et_status et_sys_report_svg(const char *path, const char *title, const et_sys_config *c,
                            const et_sys_row *rows, size_t n, et_error *err)
{
    char tmp[4096];
    FILE *f;
    if (!c || (n && !rows)) return et_error_set(err, ET_ERR_INVALID, "et_sys_report_svg: no rows");
    if (!(f = et_sys_file_begin(path, tmp, sizeof tmp, err))) return err ? err->status : ET_ERR_IO;
    chart(f, title, c, rows, n);
    return et_sys_file_commit(f, tmp, path, err);
}
