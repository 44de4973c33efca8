/* cmd_sim.c - `edgetrain sim`: the systolic-array simulator from the command line.
 *
 *   sim --gemm MxKxN      one GEMM (A is MxK, B is KxN) with random operands, computed on
 *                         the array; prints its report and `cycles <total>`
 *   sim --topology FILE   a SCALE-Sim GEMM topology (name, M, N, K per line): one table
 *                         row per layer
 *   sim --model M.etck    a forward pass of a model (and with --train-step a backward
 *                         pass and an AdamW step) on the "systolic" backend: GEMMs on the
 *                         array, other ops on the host; per-layer table, CSV and SVG
 * Array flags are shared: --array RxC --dataflow os|ws|is --dtype fp32|int8
 * --sram-kb A,B,C --dram-bw BYTES_PER_CYCLE --clock-mhz --energy MAC,SRAM,DRAM
 * --double-buffer. Bad flags exit 2, failures 1, each with one line on stderr.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "et_ckpt.h"
#include "et_pool.h"
#include "et_rng.h"
#include "et_runtime.h"
#include "et_shard.h"
#include "et_sys_backend.h"
#include "et_sys_report.h"
#include "flags.h"

#define NF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static double wall(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int fail(const et_error *e)
{
    fprintf(stderr, "edgetrain sim: error: %s\n", e->msg[0] ? e->msg : et_status_str(e->status));
    return 1;
}

/* "AxBxC..." or "A,B,C": exactly n positive numbers */
static int parse_list(const char *s, char sep, int n, double *out)
{
    int k;
    for (k = 0; k < n; k++) {
        char *end;
        out[k] = strtod(s, &end);
        if (end == s || !(out[k] >= 0) || out[k] > 1e12) return 0;
        if (k < n - 1) {
            if (*end != sep && !(sep == 'x' && *end == 'X')) return 0;
            s = end + 1;
        } else if (*end) {
            return 0;
        }
    }
    return 1;
}

static int positive_ints(const double *v, int n, double max)
{
    int k;
    for (k = 0; k < n; k++)
        if (v[k] < 1 || v[k] > max || v[k] != floor(v[k])) return 0;
    return 1;
}

typedef struct {
    const char *gemm, *topo, *model, *array, *df, *dtype, *sram, *energy, *data, *csv, *svg;
    float bw, mhz;
    int db, nocompute, check, B, T, step, seed, threads;
} opts;

/* Fills the array config from the flags; 2 on a bad flag (message printed). */
static int make_config(const opts *o, et_sys_config *c)
{
    double v[3];
    int k;
    et_sys_config_default(c);
    if (!parse_list(o->array, 'x', 2, v) || !positive_ints(v, 2, 4096)) {
        fprintf(stderr, "edgetrain sim: --array must be RxC with R and C in 1..4096, got '%s'\n", o->array);
        return 2;
    }
    c->rows = (int)v[0];
    c->cols = (int)v[1];
    if (!strcmp(o->df, "os")) c->dataflow = ET_SYS_OS;
    else if (!strcmp(o->df, "ws")) c->dataflow = ET_SYS_WS;
    else if (!strcmp(o->df, "is")) c->dataflow = ET_SYS_IS;
    else {
        fprintf(stderr, "edgetrain sim: --dataflow must be os, ws or is, got '%s'\n", o->df);
        return 2;
    }
    if (!strcmp(o->dtype, "fp32")) c->dtype = ET_SYS_FP32;
    else if (!strcmp(o->dtype, "int8")) c->dtype = ET_SYS_INT8;
    else {
        fprintf(stderr, "edgetrain sim: --dtype must be fp32 or int8, got '%s'\n", o->dtype);
        return 2;
    }
    if (!parse_list(o->sram, ',', 3, v) || !positive_ints(v, 3, 1 << 22)) {
        fprintf(stderr, "edgetrain sim: --sram-kb must be A,B,C KiB (integers >= 1), got '%s'\n", o->sram);
        return 2;
    }
    for (k = 0; k < 3; k++) c->sram_bytes[k] = (size_t)v[k] * 1024;
    if (!(o->bw >= 0) || !(o->mhz > 0)) {
        fprintf(stderr, "edgetrain sim: --dram-bw must be >= 0 (0: ideal) and --clock-mhz > 0\n");
        return 2;
    }
    c->dram_bytes_per_cycle = o->bw;
    c->clock_mhz = o->mhz;
    c->double_buffer = o->db;
    c->energy = et_sys_energy_default(c->dtype);
    if (o->energy) {
        if (!parse_list(o->energy, ',', 3, v)) {
            fprintf(stderr, "edgetrain sim: --energy must be MAC,SRAM,DRAM picojoules (per MAC, per byte), "
                    "got '%s'\n", o->energy);
            return 2;
        }
        c->energy.mac_pj = v[0];
        c->energy.sram_pj_per_byte = v[1];
        c->energy.dram_pj_per_byte = v[2];
    }
    return 0;
}

// --- one GEMM (also each layer of a topology)

typedef struct {
    void *A, *B, *C;
    size_t cap_a, cap_b, cap_c;
    void *scratch;
    size_t scratch_bytes;
} bufs;

static int grow(void **p, size_t *cap, size_t need)
{
    void *q;
    if (*cap >= need) return 1;
    free(*p);
    *p = NULL;
    if (posix_memalign(&q, 64, need ? need : 64) != 0) return 0;
    *p = q;
    *cap = need;
    return 1;
}

/* Simulates one GEMM into @p row; computes with random operands unless nocompute. */
static int sim_gemm(const opts *o, const et_sys_config *c, const et_threads *th, bufs *b, et_sys_row *row,
                    int *check_failed)
{
    int M = row->M, N = row->N, K = row->K, i8 = c->dtype == ET_SYS_INT8;
    size_t es = i8 ? 1 : 4, na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N, i;
    et_sys_operand A = {0, K, 0, i8 ? ET_SYS_OP_S8 : ET_SYS_OP_F32, 0, -1};
    et_sys_operand B = {0, N, 0, i8 ? ET_SYS_OP_S8 : ET_SYS_OP_F32, 0, -1};
    et_sys_result R = {0, 0, N, 0, 0, 1.0f, 0};
    et_rng rng;
    et_status s;
    double t0;
    memset(&row->st, 0, sizeof row->st);
    if (!o->nocompute) {
        if (!grow(&b->A, &b->cap_a, na * es) || !grow(&b->B, &b->cap_b, nb * es) || !grow(&b->C, &b->cap_c, nc * 4) ||
            !grow(&b->scratch, &b->scratch_bytes, et_sys_gemm_scratch_bytes(c, et_threads_workers(th)))) {
            fprintf(stderr, "edgetrain sim: error: out of memory for a %dx%dx%d GEMM\n", M, K, N);
            return 1;
        }
        et_rng_seed(&rng, (uint64_t)(unsigned)o->seed);
        for (i = 0; i < na; i++) {
            if (i8) ((int8_t *)b->A)[i] = (int8_t)((int)et_rng_below(&rng, 255) - 127);
            else ((float *)b->A)[i] = et_rng_normal(&rng);
        }
        for (i = 0; i < nb; i++) {
            if (i8) ((int8_t *)b->B)[i] = (int8_t)((int)et_rng_below(&rng, 255) - 127);
            else ((float *)b->B)[i] = et_rng_normal(&rng);
        }
        A.data = b->A;
        B.data = b->B;
        if (i8) R.s32 = b->C; else R.f32 = b->C;
    } else {
        R.f32 = (float *)&R; /* never written: timing only */
    }
    t0 = wall();
    s = et_sys_gemm(c, M, N, K, &A, &B, &R, th, b->scratch, b->scratch_bytes, &row->st);
    row->sim_seconds = wall() - t0;
    if (s != ET_OK) {
        fprintf(stderr, "edgetrain sim: error: GEMM %s (%dx%dx%d) failed: %s\n", row->name, M, K, N, et_status_str(s));
        return 1;
    }
    if (o->check && !o->nocompute) {
        size_t bad = 0, r, q, k;
        for (r = 0; r < (size_t)M; r++)
            for (q = 0; q < (size_t)N; q++) {
                if (i8) {
                    int64_t ref = 0;
                    for (k = 0; k < (size_t)K; k++)
                        ref += (int64_t)((int8_t *)b->A)[r * K + k] * ((int8_t *)b->B)[k * N + q];
                    bad += ((int32_t *)b->C)[r * N + q] != (int32_t)(uint32_t)(uint64_t)ref;
                } else {
                    double ref = 0, mag = 0;
                    for (k = 0; k < (size_t)K; k++) {
                        double p = (double)((float *)b->A)[r * K + k] * ((float *)b->B)[k * N + q];
                        ref += p;
                        mag += fabs(p);
                    }
                    bad += fabs(((float *)b->C)[r * N + q] - ref) > 1e-5 * mag + 1e-30;
                }
            }
        printf("check %s: %s against a plain %s loop, %zu of %zu outputs differ\n", row->name,
               bad ? "FAILED" : i8 ? "bit-exact" : "within 1e-5 (relative to sum |a*b|)", i8 ? "integer" : "double",
               bad, nc);
        if (bad) *check_failed = 1;
    }
    return 0;
}

static int run_gemm(const opts *o, const et_sys_config *c, const et_threads *th)
{
    double v[3];
    bufs b;
    et_sys_row row;
    int bad = 0, rc;
    if (!parse_list(o->gemm, 'x', 3, v) || !positive_ints(v, 3, 1 << 24)) {
        fprintf(stderr, "edgetrain sim: --gemm must be MxKxN with sizes in 1..16777216, got '%s'\n", o->gemm);
        return 2;
    }
    memset(&b, 0, sizeof b);
    memset(&row, 0, sizeof row);
    row.name = o->gemm;
    row.kind = "gemm";
    row.M = (int)v[0];
    row.K = (int)v[1];
    row.N = (int)v[2];
    et_sys_report_config(stdout, c);
    rc = sim_gemm(o, c, th, &b, &row, &bad);
    if (!rc) et_sys_report_gemm(stdout, c, &row);
    free(b.A); free(b.B); free(b.C); free(b.scratch);
    return rc ? rc : bad;
}

static int write_outputs(const opts *o, const char *csv, const char *svg, const char *title, const et_sys_config *c,
                         const et_sys_row *rows, size_t n)
{
    et_error e = {0};
    (void)o;
    if (csv) {
        if (et_sys_report_csv(csv, c, rows, n, &e) != ET_OK) return fail(&e);
        printf("wrote %s\n", csv);
    }
    if (svg) {
        if (et_sys_report_svg(svg, title, c, rows, n, &e) != ET_OK) return fail(&e);
        printf("wrote %s\n", svg);
    }
    return 0;
}

static int run_topology(const opts *o, const et_sys_config *c, const et_threads *th)
{
    et_sys_layer *L = NULL;
    et_sys_row *rows = NULL, t;
    et_error e = {0};
    bufs b;
    size_t n = 0, i;
    int rc = 0, bad = 0;
    if (et_sys_topology_load(o->topo, &L, &n, &e) != ET_OK) return fail(&e);
    if (!n) {
        fprintf(stderr, "edgetrain sim: error: %s has no layers\n", o->topo);
        return 1;
    }
    rows = calloc(n, sizeof *rows);
    if (!rows) { free(L); fprintf(stderr, "edgetrain sim: error: out of memory\n"); return 1; }
    memset(&b, 0, sizeof b);
    et_sys_report_config(stdout, c);
    for (i = 0; i < n && !rc; i++) {
        rows[i].name = L[i].name;
        rows[i].kind = "gemm";
        rows[i].M = L[i].M; rows[i].N = L[i].N; rows[i].K = L[i].K;
        rc = sim_gemm(o, c, th, &b, &rows[i], &bad);
    }
    if (!rc) {
        et_sys_report_table(stdout, c, rows, n);
        t = et_sys_rows_total(rows, n);
        if (t.sim_seconds > 0 && !o->nocompute)
            printf("simulator: %.4f s wall, %.3g simulated MACs/s\n", t.sim_seconds, (double)t.st.macs / t.sim_seconds);
        rc = write_outputs(o, o->csv, o->svg, o->topo, c, rows, n);
        if (!rc) printf("cycles %llu\n", (unsigned long long)et_sys_headline_cycles(c, &t.st));
    }
    free(b.A); free(b.B); free(b.C); free(b.scratch);
    free(rows);
    free(L);
    return rc ? rc : bad;
}

// --- a model on the systolic backend

/* Names the layer whose weight is w: L<l>.qkv / attproj / fc / fcproj, or lm_head. */
static void name_of(const et_gpt *m, const float *w, char *out, size_t cap)
{
    const et_gpt_config *g = &m->cfg;
    size_t C = (size_t)g->channels;
    int l;
    if (w == m->params.wte) { snprintf(out, cap, "lm_head"); return; }
    for (l = 0; l < g->layers; l++) {
        if (w == m->params.qkvw + (size_t)l * 3 * C * C) { snprintf(out, cap, "L%d.qkv", l); return; }
        if (w == m->params.attprojw + (size_t)l * C * C) { snprintf(out, cap, "L%d.attproj", l); return; }
        if (w == m->params.fcw + (size_t)l * 4 * C * C) { snprintf(out, cap, "L%d.fc", l); return; }
        if (w == m->params.fcprojw + (size_t)l * 4 * C * C) { snprintf(out, cap, "L%d.fcproj", l); return; }
    }
    snprintf(out, cap, "gemm");
}

static char *default_path(const char *model, const char *suffix)
{
    size_t n = strlen(model);
    const char *dot = strrchr(model, '.'), *slash = strrchr(model, '/');
    char *p;
    if (dot && (!slash || dot > slash)) n = (size_t)(dot - model);
    p = malloc(n + strlen(suffix) + 1);
    if (!p) return NULL;
    memcpy(p, model, n);
    strcpy(p + n, suffix);
    return p;
}

/* Tokens: the start of --data, or uniform random ones; targets are the next tokens. */
static int make_tokens(const opts *o, int V, int n, int *in, int *tg)
{
    et_error e = {0};
    int i;
    if (o->data) {
        uint16_t *toks = NULL;
        size_t nt = 0;
        if (et_shard_read(o->data, &toks, &nt, &e) != ET_OK) return fail(&e);
        if (nt < (size_t)n + 1) {
            fprintf(stderr, "edgetrain sim: error: %s has %zu tokens, fewer than B*T+1 = %d\n", o->data, nt, n + 1);
            free(toks);
            return 1;
        }
        for (i = 0; i < n; i++) {
            if (toks[i] >= V || toks[i + 1] >= V) {
                fprintf(stderr, "edgetrain sim: error: %s: token at position %d is outside the vocabulary of %d\n",
                        o->data, i, V);
                free(toks);
                return 1;
            }
            in[i] = toks[i];
            tg[i] = toks[i + 1];
        }
        free(toks);
    } else {
        et_rng r;
        et_rng_seed(&r, (uint64_t)(unsigned)o->seed);
        in[0] = (int)et_rng_below(&r, (uint32_t)V);
        for (i = 0; i < n; i++) {
            tg[i] = (int)et_rng_below(&r, (uint32_t)V);
            if (i + 1 < n) in[i + 1] = tg[i];
        }
    }
    return 0;
}

/* The fp32 loss of the same batch on the cpu backend, for comparison. */
static int cpu_loss(const et_ckpt *ck, int B, int T, int threads, const int *in, const int *tg, float *loss)
{
    et_runtime rt;
    et_error e = {0};
    int rc = 0;
    if (et_runtime_open(&rt, "cpu", &ck->cfg, B, T, ET_GPT_INFER, threads, &e) != ET_OK) return fail(&e);
    et_gpt_set_params(&rt.model, ck->params);
    if (et_gpt_forward(&rt.model, in, tg, B, T) != ET_OK) rc = 1;
    *loss = rt.model.mean_loss;
    et_runtime_close(&rt);
    return rc;
}

static void print_host_split(const et_sys_config *c, const et_sys_ctx *x, uint64_t cycles)
{
    int k;
    double host = et_sys_host_seconds(x);
    printf("array: %llu cycles = %.3f ms at %g MHz (GEMMs)\n", (unsigned long long)cycles, (double)cycles / c->clock_mhz / 1e3,
           c->clock_mhz);
    printf("host: %.3f ms wall on this CPU (other ops:", host * 1e3);
    for (k = 0; k < ET_SYS_HOST_NOPS; k++)
        if (x->host_calls[k]) printf(" %s %.3f", et_sys_host_op_name(k), x->host_seconds[k] * 1e3);
    printf(" ms)\n");
    printf("simulator: %.4f s wall for the GEMMs, %.3g simulated MACs/s\n", x->sim_seconds,
           x->sim_seconds > 0 ? (double)x->total.macs / x->sim_seconds : 0.0);
}

static int run_model(const opts *o, const et_sys_config *c, const et_threads *th, int nthreads)
{
    et_ckpt ck;
    et_error e = {0};
    et_gpt_config g;
    et_gpt_plan plan;
    et_backend be;
    et_sys_ctx x;
    et_sys_record *log = NULL;
    et_sys_row *rows = NULL, t;
    et_arena arena;
    et_gpt m;
    void *mem = NULL;
    int *in = NULL, *tg = NULL, B = o->B, T = o->T, rc = 1, max_n;
    char (*names)[32] = NULL, *csv = NULL, *svg = NULL, title[256];
    size_t cap, i;
    float ref = 0.0f;
    et_status s;
    double t0, fwd_wall;
    et_gpt_mode mode = o->step ? ET_GPT_TRAIN : ET_GPT_INFER;
    memset(&ck, 0, sizeof ck);
    if (o->step && c->dtype != ET_SYS_FP32) {
        fprintf(stderr, "edgetrain sim: --train-step needs --dtype fp32 (int8 mode is for inference)\n");
        return 2;
    }
    if (et_model_load(o->model, &ck, &e) != ET_OK) return fail(&e);
    g = ck.cfg;
    et_gpt_config_check(&g);
    if (!et_gpt_config_is_gpt2(&g)) { /* layer names and the array's widest GEMM assume 3C / 4C */
        fprintf(stderr, "edgetrain sim: error: %s is structurally pruned (head_dim %d, ffn %d); the systolic "
                "model simulation takes GPT-2 shapes only\n", o->model, et_gpt_head_dim(&g), et_gpt_ffn_width(&g));
        et_ckpt_free(&ck);
        return 1;
    }
    if (T == 0) T = g.context < 64 ? g.context : 64;
    if (B < 1 || T < 1 || T > g.context) {
        fprintf(stderr, "edgetrain sim: -b must be >= 1 and -t in 1..%d (the model's context)\n", g.context);
        et_ckpt_free(&ck);
        return 2;
    }
    max_n = 4 * g.channels > g.vocab_padded ? 4 * g.channels : g.vocab_padded;
    cap = (size_t)3 * (4 * (size_t)g.layers + 1) + 8;
    log = calloc(cap, sizeof *log);
    names = calloc(cap, sizeof *names);
    rows = calloc(cap, sizeof *rows);
    in = malloc(sizeof(int) * (size_t)B * T);
    tg = malloc(sizeof(int) * (size_t)B * T);
    if (!log || !names || !rows || !in || !tg) { fprintf(stderr, "edgetrain sim: error: out of memory\n"); goto out; }
    if (et_sys_backend_init(&be, &x, c, th, max_n, log, cap) != ET_OK ||
        (s = et_gpt_plan_compute(&g, B, T, mode, &be, &plan)) != ET_OK) {
        fprintf(stderr, "edgetrain sim: error: cannot plan the model on the systolic backend\n");
        goto out;
    }
    if (posix_memalign(&mem, ET_ALIGN, plan.total) != 0) {
        mem = NULL;
        fprintf(stderr, "edgetrain sim: error: cannot allocate the model's arena of %zu bytes\n", plan.total);
        goto out;
    }
    et_arena_init(&arena, mem, plan.total);
    if ((s = et_gpt_create(&m, &g, B, T, mode, &be, &arena)) != ET_OK ||
        (s = et_gpt_set_params(&m, ck.params)) != ET_OK) {
        fprintf(stderr, "edgetrain sim: error: cannot build the model: %s\n", et_status_str(s));
        goto out;
    }
    if ((rc = make_tokens(o, g.vocab, B * T, in, tg)) != 0) goto out;
    rc = 1;
    printf("model %s: %d layers, %d heads, %d channels, vocab %d; batch %d x %d tokens (%s)\n", o->model, g.layers,
           g.heads, g.channels, g.vocab, B, T, o->data ? o->data : "random tokens");
    et_sys_report_config(stdout, c);
    et_sys_backend_reset(&x);
    t0 = wall();
    if ((s = et_gpt_forward(&m, in, tg, B, T)) != ET_OK) {
        fprintf(stderr, "edgetrain sim: error: forward pass on the array failed: %s\n", et_status_str(s));
        goto out;
    }
    if (o->step) {
        et_adamw_config opt = {3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
        if ((s = et_gpt_zero_grad(&m)) != ET_OK || (s = et_gpt_backward(&m, 1.0f)) != ET_OK ||
            (s = et_gpt_step(&m, &opt)) != ET_OK) {
            fprintf(stderr, "edgetrain sim: error: training step on the array failed: %s\n", et_status_str(s));
            goto out;
        }
    }
    fwd_wall = wall() - t0;
    for (i = 0; i < x.log_n; i++) {
        name_of(&m, log[i].w, names[i], sizeof names[i]);
        rows[i].name = names[i];
        rows[i].kind = et_sys_gemm_kind_name(log[i].kind);
        rows[i].M = log[i].M; rows[i].N = log[i].N; rows[i].K = log[i].K;
        rows[i].st = log[i].st;
        rows[i].sim_seconds = log[i].sim_seconds;
    }
    et_sys_report_table(stdout, c, rows, x.log_n);
    t = et_sys_rows_total(rows, x.log_n);
    print_host_split(c, &x, et_sys_headline_cycles(c, &x.total));
    printf("%s: %.3f s wall in all, simulator and host ops together\n", o->step ? "training step" : "forward pass",
           fwd_wall);
    if (cpu_loss(&ck, B, T, nthreads, in, tg, &ref) != 0) goto out;
    printf("loss: %.6f on the array (%s), %.6f on the cpu backend (fp32), difference %+.3g %%\n", m.mean_loss,
           et_sys_dtype_name(c->dtype), ref, 100.0 * (m.mean_loss - ref) / ref);
    csv = o->csv ? NULL : default_path(o->model, ".sim.csv");
    svg = o->svg ? NULL : default_path(o->model, ".sim.svg");
    snprintf(title, sizeof title, "%s: PE utilization per GEMM, %dx%d %s %s", o->model, c->rows, c->cols,
             et_sys_dataflow_name(c->dataflow), et_sys_dtype_name(c->dtype));
    if (write_outputs(o, o->csv ? o->csv : csv, o->svg ? o->svg : svg, title, c, rows, x.log_n)) goto out;
    printf("cycles %llu\n", (unsigned long long)et_sys_headline_cycles(c, &t.st));
    rc = 0;
out:
    free(mem); free(log); free(names); free(rows); free(in); free(tg); free(csv); free(svg);
    et_ckpt_free(&ck);
    return rc;
}

int cmd_sim(int argc, char **argv)
{
    opts o;
    int help = 0, rc, modes;
    et_sys_config c;
    et_pool *pool = NULL;
    et_threads th = {0, 1, 0};
    flag f[] = {
        {"gemm", 0, F_STR, &o.gemm, "simulate one GEMM MxKxN (A is MxK, B is KxN), random operands"},
        {"topology", 0, F_STR, &o.topo, "SCALE-Sim GEMM topology CSV: name, M, N, K per line"},
        {"model", 'm', F_STR, &o.model, "run a forward pass of this checkpoint on the array"},
        {"array", 0, F_STR, &o.array, "PE rows x columns, RxC"},
        {"dataflow", 0, F_STR, &o.df, "os | ws | is"},
        {"dtype", 0, F_STR, &o.dtype, "fp32 | int8 (int8 x int8 -> int32)"},
        {"sram-kb", 0, F_STR, &o.sram, "A,B,C scratchpad sizes, KiB"},
        {"dram-bw", 0, F_FLOAT, &o.bw, "DRAM bandwidth, bytes per cycle (0: ideal memory)"},
        {"clock-mhz", 0, F_FLOAT, &o.mhz, "array clock, MHz (for times)"},
        {"energy", 0, F_STR, &o.energy, "pJ per MAC, per SRAM byte, per DRAM byte: MAC,SRAM,DRAM "
                                        "(default: 45 nm figures for the dtype)"},
        {"double-buffer", 0, F_BOOL, &o.db, "headline cycles with double-buffered (overlapped) folds"},
        {"no-compute", 0, F_BOOL, &o.nocompute, "count only, compute no values (--gemm, --topology)"},
        {"check", 0, F_BOOL, &o.check, "compare results with a plain reference loop (--gemm, --topology)"},
        {"batch", 'b', F_INT, &o.B, "sequences (--model)"},
        {"seq", 't', F_INT, &o.T, "tokens per sequence (--model; 0: min(64, context))"},
        {"data", 'd', F_STR, &o.data, "token shard for --model (default: random tokens)"},
        {"train-step", 0, F_BOOL, &o.step, "--model: also a backward pass and an AdamW step (fp32)"},
        {"csv", 0, F_STR, &o.csv, "per-layer CSV (--model default: <model>.sim.csv)"},
        {"svg", 0, F_STR, &o.svg, "utilization bar chart (--model default: <model>.sim.svg)"},
        {"seed", 0, F_INT, &o.seed, "random operands and tokens"},
        {"threads", 0, F_INT, &o.threads, "host threads (0: all cores)"},
    };
    memset(&o, 0, sizeof o);
    o.array = "16x16"; o.df = "ws"; o.dtype = "fp32"; o.sram = "1024,1024,512";
    o.bw = 32.0f; o.mhz = 1000.0f; o.B = 1; o.seed = 1337;
    if (flags_parse("sim", f, NF(f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("sim", "Simulates a TPU-like systolic array running GEMMs, a topology or a model's "
                    "forward pass,\nwith cycles, utilization, SRAM/DRAM traffic and energy.", f, NF(f));
        return 0;
    }
    modes = !!o.gemm + !!o.topo + !!o.model;
    if (modes != 1) {
        fprintf(stderr, "edgetrain sim: give exactly one of --gemm MxKxN, --topology FILE, --model FILE\n");
        return 2;
    }
    if ((rc = make_config(&o, &c)) != 0) return rc;
    if (o.threads < 0) {
        fprintf(stderr, "edgetrain sim: --threads must be >= 0\n");
        return 2;
    }
    if (o.threads == 0) o.threads = et_cpu_count();
    if (o.threads > 1) {
        if (et_pool_create(o.threads, &pool) != ET_OK) {
            fprintf(stderr, "edgetrain sim: error: could not start %d threads\n", o.threads);
            return 1;
        }
        et_pool_threads(pool, &th);
    }
    if (o.gemm) rc = run_gemm(&o, &c, &th);
    else if (o.topo) rc = run_topology(&o, &c, &th);
    else rc = run_model(&o, &c, &th, o.threads);
    if (pool) et_pool_destroy(pool);
    return rc;
}
