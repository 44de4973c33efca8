/* et_sys_report.h - the systolic simulator's reports (hosted): a one-GEMM report, a
 * per-layer table on screen and as CSV, a utilization bar chart as SVG, and
 * SCALE-Sim-style GEMM topology files.
 *
 * Every number is printed with its unit in the column header (cycles, %, bytes or KiB,
 * pJ / nJ / uJ, us, ms). Files are written to "<path>.tmp.<pid>", flushed, fsync'ed and
 * renamed over the target, so a reader never sees half a file and a failed write keeps
 * the old one.
 */
#ifndef ET_SYS_REPORT_H
#define ET_SYS_REPORT_H

#include <stdio.h>
#include "et_host.h"
#include "et_systolic.h"

/** One row of a table: a GEMM, a layer, or a sum of them. */
typedef struct et_sys_row {
    const char *name;   /**< layer name */
    const char *kind;   /**< "gemm", "fwd", "dinp", "dw", ... */
    int M, N, K;        /**< 0 for a row that sums GEMMs of different shapes */
    et_sys_stats st;
    double sim_seconds; /**< host wall time the simulation took */
} et_sys_row;

/** One layer of a topology file. */
typedef struct et_sys_layer {
    char name[64];
    int M, N, K;
} et_sys_layer;

/** Two lines: "array 16x16 ws fp32: word 4 B, accumulator 4 B; SRAM A/B/C 1024/1024/512
 *  KiB; DRAM 32 B/cycle; clock 1000 MHz; folds back to back" and the energy table. */
void et_sys_report_config(FILE *f, const et_sys_config *c);

/** The report of one GEMM as "key (unit): value" lines, ending with "cycles <total>"
 *  (the headline total: double-buffered with c->double_buffer). */
void et_sys_report_gemm(FILE *f, const et_sys_config *c, const et_sys_row *r);

/** A table: header with units, one line per row, then a "total" line summing them. */
void et_sys_report_table(FILE *f, const et_sys_config *c, const et_sys_row *rows, size_t n);

/** The table as CSV (raw units: cycles, bytes, pJ, us), with a total row. */
et_status et_sys_report_csv(const char *path, const et_sys_config *c, const et_sys_row *rows,
                            size_t n, et_error *err);

/** Sums rows into one (name "total", kind "-"). */
et_sys_row et_sys_rows_total(const et_sys_row *rows, size_t n);

/**
 * Bar chart of each row's PE utilization (%), plain and double-buffered side by side,
 * as a self-contained SVG.
 * @return ET_OK, ET_ERR_INVALID (NULL path, rows NULL with n > 0), ET_ERR_IO
 */
et_status et_sys_report_svg(const char *path, const char *title, const et_sys_config *c,
                            const et_sys_row *rows, size_t n, et_error *err);

/**
 * Reads a GEMM topology CSV in SCALE-Sim's GEMM_mnk form: one layer per line as
 * "name, M, N, K" (A is M x K, B is K x N; trailing fields ignored), an optional
 * header line, blank lines and lines starting with '#' skipped.
 * @param[out] out  malloc'ed layers (free() them), NULL when n is 0
 * @return ET_OK, ET_ERR_IO (unreadable), ET_ERR_FORMAT (a bad line, named with its
 *         number), ET_ERR_RANGE (a size outside 1..2^24), ET_ERR_NOMEM
 */
et_status et_sys_topology_load(const char *path, et_sys_layer **out, size_t *n, et_error *err);

/** Opens "<path>.tmp.<pid>" for writing; @p tmp receives its name. NULL on failure
 *  (with the message in @p err). */
FILE *et_sys_file_begin(const char *path, char *tmp, size_t tmp_cap, et_error *err);
/** Flushes, syncs, closes and renames the file over @p path; removes it on failure. */
et_status et_sys_file_commit(FILE *f, const char *tmp, const char *path, et_error *err);

#endif /* ET_SYS_REPORT_H */
