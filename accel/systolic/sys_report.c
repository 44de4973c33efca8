/* sys_report.c - the simulator's output formats (et_sys_report.h): text reports, CSV
 * tables, the utilization bar chart (SVG) and topology files. Hosted: stdio, and POSIX
 * for the atomic file writes.
 * The chart: for each row two bars, the plain fold schedule and the double-buffered one,
 * on a 0..100 % axis with a grid every 20 %, names rotated under the bars, a legend, and
 * each bar's value in a tooltip (<title>); the canvas widens with the rows.
 * Deliberately avoided: locale-dependent number formats (CSV always uses '.'), any
 * figure without its unit in the header or label.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "et_sys_report.h"

// --- atomic files

FILE *et_sys_file_begin(const char *path, char *tmp, size_t cap, et_error *err)
{
    int fd;
    FILE *f;
    if (!path || !*path) {
        et_error_set(err, ET_ERR_INVALID, "no output path given");
        return NULL;
    }
    if ((size_t)snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid()) >= cap) {
        et_error_set(err, ET_ERR_INVALID, "output path too long: %s", path);
        return NULL;
    }
    (void)unlink(tmp); /* a leftover of a crashed process that had our pid */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0 || !(f = fdopen(fd, "w"))) {
        int e = errno;
        if (fd >= 0) close(fd), (void)unlink(tmp);
        et_error_set(err, ET_ERR_IO, "cannot write %s: creating %s failed: %s", path, tmp, strerror(e));
        return NULL;
    }
    return f;
}

et_status et_sys_file_commit(FILE *f, const char *tmp, const char *path, et_error *err)
{
    int e = 0;
    if (fflush(f) != 0 || ferror(f)) e = errno ? errno : EIO;
    else if (fsync(fileno(f)) != 0 && errno != EINVAL && errno != ENOTSUP) e = errno;
    if (fclose(f) != 0 && !e) e = errno ? errno : EIO;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        (void)unlink(tmp);
        return et_error_set(err, ET_ERR_IO, "cannot write %s: %s (any existing file is unchanged)", path,
                            strerror(e));
    }
    return ET_OK;
}

// --- text reports

void et_sys_report_config(FILE *f, const et_sys_config *c)
{
    fprintf(f, "array %dx%d %s %s: word %d B, accumulator 4 B; SRAM A/B/C %zu/%zu/%zu KiB; ", c->rows,
            c->cols, et_sys_dataflow_name(c->dataflow), et_sys_dtype_name(c->dtype),
            et_sys_word_bytes(c->dtype), c->sram_bytes[0] / 1024, c->sram_bytes[1] / 1024,
            c->sram_bytes[2] / 1024);
    if (c->dram_bytes_per_cycle > 0) fprintf(f, "DRAM %g B/cycle; ", c->dram_bytes_per_cycle);
    else fprintf(f, "DRAM ideal (no stalls); ");
    fprintf(f, "clock %g MHz; folds %s\n", c->clock_mhz, c->double_buffer ? "double-buffered" : "back to back");
    fprintf(f, "energy table: MAC %g pJ, SRAM %g pJ/B, DRAM %g pJ/B\n", c->energy.mac_pj,
            c->energy.sram_pj_per_byte, c->energy.dram_pj_per_byte);
}

static uint64_t sum3(const uint64_t *v) { return v[0] + v[1] + v[2]; }

void et_sys_report_gemm(FILE *f, const et_sys_config *c, const et_sys_row *r)
{
    const et_sys_stats *s = &r->st;
    uint64_t tot = et_sys_total_cycles(s), db = et_sys_db_total_cycles(s);
    double e[4];
    et_sys_map m;
    et_sys_energy_pj(c, s, e);
    fprintf(f, "gemm %s: M=%d K=%d N=%d (A %dx%d, B %dx%d), %llu MACs\n", r->name ? r->name : "", r->M, r->K,
            r->N, r->M, r->K, r->K, r->N, (unsigned long long)s->macs);
    if (et_sys_map_gemm(c, r->M, r->N, r->K, &m) == ET_OK)
        fprintf(f, "folds: %llu (%d row x %d column folds of Sr=%d Sc=%d, streaming T=%d), "
                "mapping efficiency %.2f %%\n", (unsigned long long)s->folds, m.row_folds, m.col_folds,
                m.Sr, m.Sc, m.T, 100.0 * et_sys_mapping_efficiency(c, s));
    fprintf(f, "compute cycles: %llu (streaming %llu, fill/drain %llu)\n", (unsigned long long)s->compute_cycles,
            (unsigned long long)s->stream_cycles, (unsigned long long)(s->compute_cycles - s->stream_cycles));
    fprintf(f, "memory stall cycles: %llu\n", (unsigned long long)s->stall_cycles);
    fprintf(f, "total cycles: %llu = %.3f us at %g MHz; PE utilization %.2f %%\n", (unsigned long long)tot,
            (double)tot / c->clock_mhz, c->clock_mhz, 100.0 * et_sys_utilization(c, s, tot));
    fprintf(f, "double-buffered folds: compute %llu + stall %llu = %llu cycles (%.3f us); PE utilization %.2f %%\n",
            (unsigned long long)s->db_compute_cycles, (unsigned long long)s->db_stall_cycles,
            (unsigned long long)db, (double)db / c->clock_mhz, 100.0 * et_sys_utilization(c, s, db));
    fprintf(f, "SRAM reads (bytes): A %llu, B %llu, C %llu; writes (bytes): A %llu, B %llu, C %llu\n",
            (unsigned long long)s->sram_read[0], (unsigned long long)s->sram_read[1],
            (unsigned long long)s->sram_read[2], (unsigned long long)s->sram_write[0],
            (unsigned long long)s->sram_write[1], (unsigned long long)s->sram_write[2]);
    fprintf(f, "DRAM reads (bytes): A %llu, B %llu, C %llu; writes (bytes): C %llu\n",
            (unsigned long long)s->dram_read[0], (unsigned long long)s->dram_read[1],
            (unsigned long long)s->dram_read[2], (unsigned long long)s->dram_write[2]);
    fprintf(f, "energy (nJ): MAC %.3f, SRAM %.3f, DRAM %.3f, total %.3f\n", e[0] / 1e3, e[1] / 1e3, e[2] / 1e3,
            e[3] / 1e3);
    if (r->sim_seconds > 0)
        fprintf(f, "simulator: %.4f s wall, %.3g simulated MACs/s\n", r->sim_seconds,
                (double)s->macs / r->sim_seconds);
    fprintf(f, "cycles %llu\n", (unsigned long long)et_sys_headline_cycles(c, s));
}

et_sys_row et_sys_rows_total(const et_sys_row *rows, size_t n)
{
    et_sys_row t;
    size_t i;
    memset(&t, 0, sizeof t);
    t.name = "total";
    t.kind = "-";
    for (i = 0; i < n; i++) {
        et_sys_stats_add(&t.st, &rows[i].st);
        t.sim_seconds += rows[i].sim_seconds;
    }
    return t;
}

static void table_line(FILE *f, const et_sys_config *c, const et_sys_row *r)
{
    uint64_t tot = et_sys_total_cycles(&r->st), db = et_sys_db_total_cycles(&r->st);
    double e[4];
    et_sys_energy_pj(c, &r->st, e);
    fprintf(f, "%-16s %-5s ", r->name ? r->name : "", r->kind ? r->kind : "");
    if (r->M) fprintf(f, "%6d %6d %6d ", r->M, r->K, r->N);
    else fprintf(f, "%6s %6s %6s ", "-", "-", "-");
    fprintf(f, "%6llu %11llu %10llu %11llu %7.2f %11llu %8.2f %11.1f %11.1f %11.1f %11.1f %10.3f %9.2f\n",
            (unsigned long long)r->st.folds, (unsigned long long)r->st.compute_cycles,
            (unsigned long long)r->st.stall_cycles, (unsigned long long)tot,
            100.0 * et_sys_utilization(c, &r->st, tot), (unsigned long long)db,
            100.0 * et_sys_utilization(c, &r->st, db), sum3(r->st.sram_read) / 1024.0,
            sum3(r->st.sram_write) / 1024.0, sum3(r->st.dram_read) / 1024.0, sum3(r->st.dram_write) / 1024.0,
            e[3] / 1e6, (double)et_sys_headline_cycles(c, &r->st) / c->clock_mhz);
}

void et_sys_report_table(FILE *f, const et_sys_config *c, const et_sys_row *rows, size_t n)
{
    et_sys_row t = et_sys_rows_total(rows, n);
    size_t i;
    fprintf(f, "%-16s %-5s %6s %6s %6s %6s %11s %10s %11s %7s %11s %8s %11s %11s %11s %11s %10s %9s\n", "layer",
            "gemm", "M", "K", "N", "folds", "compute_cyc", "stall_cyc", "total_cyc", "util_%", "db_tot_cyc",
            "db_util%", "sram_rd_KiB", "sram_wr_KiB", "dram_rd_KiB", "dram_wr_KiB", "energy_uJ", "array_us");
    for (i = 0; i < n; i++) table_line(f, c, &rows[i]);
    table_line(f, c, &t);
}

static void csv_line(FILE *f, const et_sys_config *c, const et_sys_row *r)
{
    const et_sys_stats *s = &r->st;
    uint64_t tot = et_sys_total_cycles(s), db = et_sys_db_total_cycles(s);
    double e[4];
    int k;
    et_sys_energy_pj(c, s, e);
    fprintf(f, "%s,%s,%d,%d,%d,%llu,%llu,%llu,%llu,%llu,%llu,%.4f,%.4f,%llu,%llu,%llu,%.4f", r->name ? r->name : "",
            r->kind ? r->kind : "", r->M, r->K, r->N, (unsigned long long)s->folds, (unsigned long long)s->macs,
            (unsigned long long)s->compute_cycles, (unsigned long long)(s->compute_cycles - s->stream_cycles),
            (unsigned long long)s->stall_cycles, (unsigned long long)tot, 100.0 * et_sys_utilization(c, s, tot),
            100.0 * et_sys_mapping_efficiency(c, s), (unsigned long long)s->db_compute_cycles,
            (unsigned long long)s->db_stall_cycles, (unsigned long long)db, 100.0 * et_sys_utilization(c, s, db));
    for (k = 0; k < 3; k++) fprintf(f, ",%llu", (unsigned long long)s->sram_read[k]);
    for (k = 0; k < 3; k++) fprintf(f, ",%llu", (unsigned long long)s->sram_write[k]);
    for (k = 0; k < 3; k++) fprintf(f, ",%llu", (unsigned long long)s->dram_read[k]);
    fprintf(f, ",%llu,%.1f,%.1f,%.1f,%.1f,%.4f,%.4f\n", (unsigned long long)s->dram_write[2], e[0], e[1], e[2],
            e[3], (double)et_sys_headline_cycles(c, s) / c->clock_mhz, 1e3 * r->sim_seconds);
}

et_status et_sys_report_csv(const char *path, const et_sys_config *c, const et_sys_row *rows, size_t n,
                            et_error *err)
{
    char tmp[4096];
    FILE *f;
    et_sys_row t;
    size_t i;
    if (!c || (n && !rows)) return et_error_set(err, ET_ERR_INVALID, "et_sys_report_csv: no rows");
    if (!(f = et_sys_file_begin(path, tmp, sizeof tmp, err))) return err ? err->status : ET_ERR_IO;
    fprintf(f, "layer,gemm,M,K,N,folds,macs,compute_cycles,fill_drain_cycles,stall_cycles,total_cycles,util_pct,"
               "mapping_eff_pct,db_compute_cycles,db_stall_cycles,db_total_cycles,db_util_pct,"
               "sram_read_A_bytes,sram_read_B_bytes,sram_read_C_bytes,sram_write_A_bytes,sram_write_B_bytes,"
               "sram_write_C_bytes,dram_read_A_bytes,dram_read_B_bytes,dram_read_C_bytes,dram_write_C_bytes,"
               "energy_mac_pJ,energy_sram_pJ,energy_dram_pJ,energy_total_pJ,array_time_us,sim_wall_ms\n");
    for (i = 0; i < n; i++) csv_line(f, c, &rows[i]);
    t = et_sys_rows_total(rows, n);
    csv_line(f, c, &t);
    return et_sys_file_commit(f, tmp, path, err);
}

// --- the utilization chart

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

// --- topology files

static char *trim(char *s)
{
    char *e;
    while (*s == ' ' || *s == '\t') s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) *--e = 0;
    return s;
}

/* 1: an integer in 1..2^24; 0: not an integer; -1: an integer out of range */
static int parse_dim(const char *s, int *v)
{
    char *end;
    long x;
    errno = 0;
    x = strtol(s, &end, 10);
    if (!*s || *end) return 0;
    if (errno || x < 1 || x > (1L << 24)) return -1;
    *v = (int)x;
    return 1;
}

et_status et_sys_topology_load(const char *path, et_sys_layer **out, size_t *n, et_error *err)
{
    FILE *f;
    char line[1024];
    size_t cap = 0, lineno = 0;
    et_sys_layer *v = NULL;
    *out = NULL;
    *n = 0;
    if (!(f = fopen(path, "r")))
        return et_error_set(err, ET_ERR_IO, "cannot read topology %s: %s", path, strerror(errno));
    while (fgets(line, sizeof line, f)) {
        char *fld[4], *p = trim(line), *name;
        int nf = 0, dims[3], k, ok = 1;
        lineno++;
        if (!*p || *p == '#') continue;
        while (nf < 4) {
            char *comma = strchr(p, ',');
            fld[nf++] = p;
            if (!comma) break;
            *comma = 0;
            p = comma + 1;
        }
        for (k = 0; k < nf; k++) fld[k] = trim(fld[k]);
        if (nf < 4) ok = 0;
        for (k = 0; ok && k < 3; k++) {
            int r = parse_dim(fld[k + 1], &dims[k]);
            if (r < 0) {
                fclose(f); free(v);
                return et_error_set(err, ET_ERR_RANGE, "%s:%zu: layer '%s': %s = '%s' is outside 1..16777216",
                                    path, lineno, fld[0], k == 0 ? "M" : k == 1 ? "N" : "K", fld[k + 1]);
            }
            if (r == 0) ok = 0;
        }
        if (!ok) {
            if (*n == 0 && nf >= 2 && parse_dim(fld[1], &dims[0]) == 0) continue; /* the header */
            fclose(f); free(v);
            return et_error_set(err, ET_ERR_FORMAT, "%s:%zu: expected 'name, M, N, K' with positive integer "
                                "sizes", path, lineno);
        }
        if (*n == cap) {
            et_sys_layer *nv = realloc(v, sizeof *v * (cap ? 2 * cap : 16));
            if (!nv) {
                fclose(f); free(v);
                return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory at line %zu", path, lineno);
            }
            v = nv;
            cap = cap ? 2 * cap : 16;
        }
        name = fld[0];
        snprintf(v[*n].name, sizeof v[*n].name, "%s", *name ? name : "layer");
        v[*n].M = dims[0];
        v[*n].N = dims[1];
        v[*n].K = dims[2];
        (*n)++;
    }
    if (ferror(f)) {
        fclose(f); free(v);
        *n = 0;
        return et_error_set(err, ET_ERR_IO, "cannot read topology %s: read error", path);
    }
    fclose(f);
    *out = v;
    return ET_OK;
}
