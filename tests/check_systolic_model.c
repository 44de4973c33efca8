/* check_systolic_model.c - the systolic backend with the real model (what `make
 * sim-test` is for): linear-layer ops against the cpu backend, the loss of a forward
 * pass, a full training step (gradients and updated parameters), training that lowers
 * the loss, the exact memory plan, int8 inference against fp32, the per-GEMM log; then
 * the reports (CSV, SVG, topology files) and `edgetrain sim` end to end ($ET_CLI). */
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "et_check.h"
#include "et_ckpt.h"
#include "et_cpu.h"
#include "et_gpt.h"
#include "et_rng.h"
#include "et_sys_backend.h"
#include "et_sys_report.h"

static et_gpt_config tiny(void)
{
    et_gpt_config c = {0};
    c.vocab = 11; c.context = 8; c.layers = 2; c.heads = 2; c.channels = 16;
    et_gpt_config_check(&c);
    return c;
}

static et_sys_config arr(int R, int C, et_sys_dataflow df, et_sys_dtype dt)
{
    et_sys_config c;
    et_sys_config_default(&c);
    c.rows = R; c.cols = C; c.dataflow = df; c.dtype = dt;
    return c;
}

/* a model on either backend, in an arena of exactly its plan */
typedef struct {
    et_backend be;
    et_cpu_ctx cpu;
    et_sys_ctx sys;
    et_sys_record log[64];
    et_arena arena;
    void *buf;
    et_gpt_plan plan;
    et_gpt m;
} rig;

static void rig_make(rig *r, const et_sys_config *sc, int B, int T, et_gpt_mode mode, uint64_t seed)
{
    et_gpt_config c = tiny();
    memset(r, 0, sizeof *r);
    if (sc) ck_assert_int_eq(et_sys_backend_init(&r->be, &r->sys, sc, NULL, 4 * c.channels > c.vocab_padded ?
                                                 4 * c.channels : c.vocab_padded, r->log, 64), ET_OK);
    else ck_assert_int_eq(et_cpu_backend_init(&r->be, &r->cpu, NULL), ET_OK);
    ck_assert_int_eq(et_gpt_plan_compute(&c, B, T, mode, &r->be, &r->plan), ET_OK);
    r->buf = et_test_aligned(r->plan.total);
    ck_assert_int_eq(et_arena_init(&r->arena, r->buf, r->plan.total), ET_OK);
    ck_assert_int_eq(et_gpt_create(&r->m, &c, B, T, mode, &r->be, &r->arena), ET_OK);
    ck_assert_int_eq(et_gpt_init_weights(&r->m, seed), ET_OK);
}

/* tokens with structure (a repeating sequence with noise), so training can learn */
static void batch(int *in, int *tg, int n, uint64_t seed)
{
    et_rng r;
    int i;
    et_rng_seed(&r, seed);
    for (i = 0; i < n; i++) {
        int k = (int)et_rng_below(&r, 40);
        in[i] = k < 36 ? i % 9 : (int)et_rng_below(&r, 11);
        tg[i] = (in[i] + 1) % 9;
    }
}

static void assert_close(const float *a, const float *b, size_t n, double rtol, double atol, const char *what)
{
    size_t i;
    for (i = 0; i < n; i++)
        ck_assert_msg(fabs((double)a[i] - b[i]) <= atol + rtol * fabs((double)b[i]), "%s[%zu]: %.9g vs %.9g", what,
                      i, a[i], b[i]);
}

START_TEST(linear_ops_match_cpu)
{
    int N = 13, C = 21, OC = 35, df;
    size_t i;
    float *inp = malloc(sizeof(float) * N * C), *w = malloc(sizeof(float) * OC * C), *b = malloc(sizeof(float) * OC);
    float *dout = malloc(sizeof(float) * N * OC), *o1 = malloc(sizeof(float) * N * OC), *o2 = malloc(sizeof(float) * N * OC);
    float *di1 = calloc((size_t)N * C, 4), *di2 = calloc((size_t)N * C, 4), *dw1 = calloc((size_t)OC * C, 4);
    float *dw2 = calloc((size_t)OC * C, 4), *db1 = calloc((size_t)OC, 4), *db2 = calloc((size_t)OC, 4);
    et_rng r;
    et_rng_seed(&r, 5);
    for (i = 0; i < (size_t)N * C; i++) inp[i] = et_rng_normal(&r);
    for (i = 0; i < (size_t)OC * C; i++) w[i] = et_rng_normal(&r);
    for (i = 0; i < (size_t)OC; i++) b[i] = et_rng_normal(&r);
    for (i = 0; i < (size_t)N * OC; i++) dout[i] = et_rng_normal(&r);
    for (df = 0; df < 3; df++) {
        et_sys_config sc = arr(8, 4, (et_sys_dataflow)df, ET_SYS_FP32);
        rig cpu, sys;
        void *s1, *s2;
        et_cpu_backend_init(&cpu.be, &cpu.cpu, NULL);
        et_sys_backend_init(&sys.be, &sys.sys, &sc, NULL, 0, sys.log, 64);
        s1 = et_test_aligned(cpu.be.scratch_bytes);
        s2 = et_test_aligned(sys.be.scratch_bytes);
        ck_assert_uint_eq(sys.be.scratch_bytes, et_sys_backend_scratch_bytes(&sc, NULL, 0));
        cpu.be.set_scratch(cpu.be.ctx, s1, cpu.be.scratch_bytes);
        ck_assert_int_eq(sys.be.set_scratch(sys.be.ctx, s2, sys.be.scratch_bytes - 1), ET_ERR_NOMEM);
        ck_assert_int_eq(sys.be.set_scratch(sys.be.ctx, s2, sys.be.scratch_bytes), ET_OK);
        ck_assert_int_eq(cpu.be.matmul_fwd(cpu.be.ctx, o1, inp, w, b, N, C, OC), ET_OK);
        ck_assert_int_eq(sys.be.matmul_fwd(sys.be.ctx, o2, inp, w, b, N, C, OC), ET_OK);
        assert_close(o2, o1, (size_t)N * OC, 1e-5, 1e-5, "out");
        ck_assert_int_eq(cpu.be.matmul_bwd(cpu.be.ctx, di1, dw1, db1, dout, inp, w, N, C, OC), ET_OK);
        ck_assert_int_eq(sys.be.matmul_bwd(sys.be.ctx, di2, dw2, db2, dout, inp, w, N, C, OC), ET_OK);
        assert_close(di2, di1, (size_t)N * C, 1e-5, 1e-5, "dinp");
        assert_close(dw2, dw1, (size_t)OC * C, 1e-5, 1e-5, "dw");
        ck_assert(memcmp(db1, db2, sizeof(float) * OC) == 0); /* same order as the cpu: same bits */
        /* the log: one forward GEMM, then dinp and dw, with their shapes */
        ck_assert_uint_eq(sys.sys.log_n, 3);
        ck_assert_int_eq(sys.log[0].kind, ET_SYS_GEMM_FWD);
        ck_assert_int_eq(sys.log[0].M, N); ck_assert_int_eq(sys.log[0].N, OC); ck_assert_int_eq(sys.log[0].K, C);
        ck_assert_int_eq(sys.log[1].kind, ET_SYS_GEMM_DINP);
        ck_assert_int_eq(sys.log[2].kind, ET_SYS_GEMM_DW);
        ck_assert_int_eq(sys.log[2].M, OC); ck_assert_int_eq(sys.log[2].N, C); ck_assert_int_eq(sys.log[2].K, N);
        ck_assert_ptr_eq(sys.log[2].w, w);
        ck_assert_uint_eq(sys.sys.total.macs, 3 * (uint64_t)N * C * OC);
        memset(di1, 0, sizeof(float) * N * C); memset(di2, 0, sizeof(float) * N * C);
        memset(dw1, 0, sizeof(float) * OC * C); memset(dw2, 0, sizeof(float) * OC * C);
        memset(db1, 0, sizeof(float) * OC); memset(db2, 0, sizeof(float) * OC);
        free(s1); free(s2);
    }
    free(inp); free(w); free(b); free(dout); free(o1); free(o2); free(di1); free(di2);
    free(dw1); free(dw2); free(db1); free(db2);
}
END_TEST

START_TEST(spec_parse)
{
    et_sys_config c;
    et_error e = {0};
    ck_assert_int_eq(et_sys_spec_parse(NULL, &c, &e), ET_OK);
    ck_assert_int_eq(c.rows, 16);
    ck_assert_int_eq(et_sys_spec_parse("128x64:os:int8", &c, &e), ET_OK);
    ck_assert_int_eq(c.rows, 128); ck_assert_int_eq(c.cols, 64);
    ck_assert_int_eq(c.dataflow, ET_SYS_OS); ck_assert_int_eq(c.dtype, ET_SYS_INT8);
    ck_assert(c.energy.mac_pj == et_sys_energy_default(ET_SYS_INT8).mac_pj);
    ck_assert_int_eq(et_sys_spec_parse("8x8:is", &c, &e), ET_OK);
    ck_assert_int_eq(c.dataflow, ET_SYS_IS); ck_assert_int_eq(c.dtype, ET_SYS_FP32);
    ck_assert_int_eq(et_sys_spec_parse("8x0", &c, &e), ET_ERR_INVALID);
    ck_assert_int_eq(et_sys_spec_parse("8x8:xs", &c, &e), ET_ERR_INVALID);
    ck_assert_int_eq(et_sys_spec_parse("8x8:ws:", &c, &e), ET_ERR_INVALID);
    ck_assert_int_eq(et_sys_spec_parse("8", &c, &e), ET_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "RxC"));
}
END_TEST

START_TEST(loss_matches_cpu)
{
    static const int arrays[][2] = {{16, 16}, {8, 8}, {4, 16}};
    int in[2 * 8], tg[2 * 8], df;
    size_t a;
    rig cpu;
    rig_make(&cpu, NULL, 2, 8, ET_GPT_INFER, 3);
    batch(in, tg, 16, 1);
    ck_assert_int_eq(et_gpt_forward(&cpu.m, in, tg, 2, 8), ET_OK);
    for (a = 0; a < sizeof arrays / sizeof arrays[0]; a++)
        for (df = 0; df < 3; df++) {
            et_sys_config sc = arr(arrays[a][0], arrays[a][1], (et_sys_dataflow)df, ET_SYS_FP32);
            rig sys;
            rig_make(&sys, &sc, 2, 8, ET_GPT_INFER, 3);
            ck_assert_int_eq(et_gpt_forward(&sys.m, in, tg, 2, 8), ET_OK);
            ET_CK_CLOSE(sys.m.mean_loss, cpu.m.mean_loss, 1e-5, 0);
            /* every linear layer ran on the array: 4 per block and the tied lm head */
            ck_assert_uint_eq(sys.sys.log_n, 4 * 2 + 1);
            ck_assert_ptr_eq(sys.log[8].w, sys.m.params.wte);
            ck_assert_ptr_eq(sys.log[0].w, sys.m.params.qkvw);
            ck_assert_uint_gt(sys.sys.host_calls[ET_SYS_HOST_ATTENTION], 0);
            ck_assert_uint_gt(sys.sys.total.compute_cycles, 0);
            free(sys.buf);
        }
    free(cpu.buf);
}
END_TEST

START_TEST(training_step_matches_cpu)
{
    et_sys_config sc = arr(8, 8, ET_SYS_WS, ET_SYS_FP32);
    et_adamw_config opt = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    int in[2 * 8], tg[2 * 8], step;
    rig cpu, sys;
    float *p1, *p2, first = 0, last = 0;
    rig_make(&cpu, NULL, 2, 8, ET_GPT_TRAIN, 4);
    rig_make(&sys, &sc, 2, 8, ET_GPT_TRAIN, 4);
    p1 = malloc(sizeof(float) * cpu.m.nparams);
    p2 = malloc(sizeof(float) * sys.m.nparams);
    for (step = 0; step < 12; step++) {
        batch(in, tg, 16, 100 + step);
        et_sys_backend_reset(&sys.sys);
        ck_assert_int_eq(et_gpt_forward(&cpu.m, in, tg, 2, 8), ET_OK);
        ck_assert_int_eq(et_gpt_forward(&sys.m, in, tg, 2, 8), ET_OK);
        ck_assert_int_eq(et_gpt_zero_grad(&cpu.m), ET_OK);
        ck_assert_int_eq(et_gpt_zero_grad(&sys.m), ET_OK);
        ck_assert_int_eq(et_gpt_backward(&cpu.m, 1.0f), ET_OK);
        ck_assert_int_eq(et_gpt_backward(&sys.m, 1.0f), ET_OK);
        if (step == 0) { /* the first step's gradients, tensor by tensor */
            assert_close(sys.m.grads_memory, cpu.m.grads_memory, cpu.m.nparams, 1e-3, 1e-6, "grad");
            /* forward 9 GEMMs, backward 2 x 9 */
            ck_assert_uint_eq(sys.sys.log_n, 27);
            ck_assert_uint_gt(sys.sys.host_calls[ET_SYS_HOST_BIAS_GRAD], 0);
        }
        ck_assert_int_eq(et_gpt_step(&cpu.m, &opt), ET_OK);
        ck_assert_int_eq(et_gpt_step(&sys.m, &opt), ET_OK);
        ET_CK_CLOSE(sys.m.mean_loss, cpu.m.mean_loss, 1e-4, 0);
        if (step == 0) first = sys.m.mean_loss;
        last = sys.m.mean_loss;
    }
    et_gpt_get_params(&cpu.m, p1);
    et_gpt_get_params(&sys.m, p2);
    {
        /* the key biases' true gradient is 0 (a constant added to a row of scores):
         * theirs is rounding noise that AdamW turns into steps of +-lr, so they are
         * left out of this comparison (the per-step losses above still cover them) */
        et_tensor_info t[ET_GPT_NTENSORS];
        int l, C = cpu.m.cfg.channels;
        et_gpt_tensors(&cpu.m.cfg, t);
        for (l = 0; l < cpu.m.cfg.layers; l++) {
            size_t k0 = t[5].offset + (size_t)l * 3 * C + C;
            memcpy(p2 + k0, p1 + k0, sizeof(float) * C);
        }
        ck_assert_str_eq(t[5].name, "qkvb");
    }
    assert_close(p2, p1, cpu.m.nparams, 1e-3, 1e-4, "param after 12 steps");
    ck_assert_msg(last < 0.8f * first, "training on the array did not learn: %g -> %g", first, last);
    /* the arena was exactly the plan, scratch included */
    ck_assert_uint_eq(sys.arena.high_water, sys.plan.total);
    free(p1); free(p2); free(cpu.buf); free(sys.buf);
}
END_TEST

START_TEST(int8_inference_close_to_fp32)
{
    et_adamw_config opt = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f};
    et_sys_config sc = arr(16, 16, ET_SYS_WS, ET_SYS_INT8);
    int in[4 * 8], tg[4 * 8], step, df, agree = 0, b, t, i;
    float *params, l1[11], l2[11];
    rig cpu, q;
    rig_make(&cpu, NULL, 4, 8, ET_GPT_TRAIN, 6);
    for (step = 0; step < 40; step++) { /* a model worth quantizing: trained a little */
        batch(in, tg, 32, 200 + step);
        et_gpt_forward(&cpu.m, in, tg, 4, 8);
        et_gpt_zero_grad(&cpu.m);
        et_gpt_backward(&cpu.m, 1.0f);
        et_gpt_step(&cpu.m, &opt);
    }
    params = malloc(sizeof(float) * cpu.m.nparams);
    et_gpt_get_params(&cpu.m, params);
    batch(in, tg, 32, 999);
    ck_assert_int_eq(et_gpt_forward(&cpu.m, in, tg, 4, 8), ET_OK);
    for (df = 0; df < 3; df++) {
        sc.dataflow = (et_sys_dataflow)df;
        rig_make(&q, &sc, 4, 8, ET_GPT_INFER, 6);
        et_gpt_set_params(&q.m, params);
        ck_assert_int_eq(et_gpt_forward(&q.m, in, tg, 4, 8), ET_OK);
        ck_assert_msg(fabs(q.m.mean_loss - cpu.m.mean_loss) <= 0.03 * cpu.m.mean_loss,
                      "int8 loss %g vs fp32 %g", q.m.mean_loss, cpu.m.mean_loss);
        ck_assert(q.log[0].int8);
        ck_assert_uint_gt(q.sys.host_calls[ET_SYS_HOST_QUANT], 0);
        agree = 0;
        for (b = 0; b < 4; b++)
            for (t = 0; t < 8; t++) {
                int a1 = 0, a2 = 0;
                et_gpt_logits(&cpu.m, b, t, l1);
                et_gpt_logits(&q.m, b, t, l2);
                for (i = 1; i < 11; i++) {
                    if (l1[i] > l1[a1]) a1 = i;
                    if (l2[i] > l2[a2]) a2 = i;
                }
                agree += a1 == a2;
            }
        ck_assert_int_ge(agree, 30); /* of 32 positions, the same most likely token */
        /* int8 mode is for inference */
        ck_assert_int_eq(q.be.matmul_bwd(q.be.ctx, NULL, NULL, NULL, NULL, NULL, NULL, 1, 1, 1), ET_ERR_UNSUPPORTED);
        free(q.buf);
    }
    free(params); free(cpu.buf);
}
END_TEST

// --- reports

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/et_sys_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {}
}

static void write_text(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(s, f);
    fclose(f);
}

static size_t slurp(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;
    if (!f) return 0;
    n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    fclose(f);
    return n;
}

START_TEST(topology_files)
{
    char p[512];
    et_sys_layer *L;
    size_t n;
    et_error e = {0};
    snprintf(p, sizeof p, "%s/t.csv", dir);
    write_text(p, "Layer, M, N, K,\n# a comment\n\nQKT,1024,1024,64\n  Linear1 , 1024 , 4800 , 1600 ,\r\n");
    ck_assert_int_eq(et_sys_topology_load(p, &L, &n, &e), ET_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(L[1].name, "Linear1");
    ck_assert_int_eq(L[1].M, 1024); ck_assert_int_eq(L[1].N, 4800); ck_assert_int_eq(L[1].K, 1600);
    free(L);
    write_text(p, "a,1,2,3\nb,4,x,6\n");
    ck_assert_int_eq(et_sys_topology_load(p, &L, &n, &e), ET_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, ":2:"));
    write_text(p, "a,1,2\n");
    ck_assert_int_eq(et_sys_topology_load(p, &L, &n, &e), ET_ERR_FORMAT);
    write_text(p, "a,1,0,3\n");
    ck_assert_int_eq(et_sys_topology_load(p, &L, &n, &e), ET_ERR_RANGE);
    snprintf(p, sizeof p, "%s/missing.csv", dir);
    ck_assert_int_eq(et_sys_topology_load(p, &L, &n, &e), ET_ERR_IO);
}
END_TEST

START_TEST(csv_and_svg)
{
    et_sys_config c = arr(16, 16, ET_SYS_OS, ET_SYS_INT8);
    et_sys_row rows[2];
    char p[512], buf[16384];
    et_error e = {0};
    memset(rows, 0, sizeof rows);
    rows[0].name = "L0.qkv"; rows[0].kind = "fwd"; rows[0].M = 64; rows[0].N = 384; rows[0].K = 128;
    rows[1].name = "a<b&c"; rows[1].kind = "gemm"; rows[1].M = 7; rows[1].N = 9; rows[1].K = 300;
    et_sys_gemm_timing(&c, 64, 384, 128, &rows[0].st);
    et_sys_gemm_timing(&c, 7, 9, 300, &rows[1].st);
    snprintf(p, sizeof p, "%s/r.csv", dir);
    ck_assert_int_eq(et_sys_report_csv(p, &c, rows, 2, &e), ET_OK);
    ck_assert_uint_gt(slurp(p, buf, sizeof buf), 0);
    ck_assert_ptr_nonnull(strstr(buf, "total_cycles,util_pct"));
    ck_assert_ptr_nonnull(strstr(buf, "energy_total_pJ,array_time_us"));
    ck_assert_ptr_nonnull(strstr(buf, "\nL0.qkv,fwd,64,128,384,"));
    ck_assert_ptr_nonnull(strstr(buf, "\ntotal,-,"));
    snprintf(p, sizeof p, "%s/u.svg", dir);
    ck_assert_int_eq(et_sys_report_svg(p, "t", &c, rows, 2, &e), ET_OK);
    ck_assert_uint_gt(slurp(p, buf, sizeof buf), 0);
    ck_assert_ptr_nonnull(strstr(buf, "<svg"));
    ck_assert_ptr_nonnull(strstr(buf, "a&lt;b&amp;c"));
    ck_assert_ptr_nonnull(strstr(buf, "PE utilization (%)"));
    snprintf(p, sizeof p, "%s/no/such/dir/u.svg", dir);
    ck_assert_int_eq(et_sys_report_svg(p, "t", &c, rows, 2, &e), ET_ERR_IO);
}
END_TEST

// --- the command line


static unsigned long long cycles_line(const char *out)
{
    const char *p = strstr(out, "\ncycles ");
    ck_assert_ptr_nonnull(p);
    return strtoull(p + 8, NULL, 10);
}

START_TEST(cli_gemm_and_topology)
{
    char out[32768], p[512];
    et_sys_config c = arr(8, 8, ET_SYS_IS, ET_SYS_INT8);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --gemm 50x70x30 --array 8x8 --dataflow is --dtype int8 "
                         "--dram-bw 0 --check --threads 2", et_test_cli()), 0);
    ck_assert_ptr_nonnull(strstr(out, "bit-exact"));
    ck_assert_uint_eq(cycles_line(out), et_sys_compute_cycles(&c, 50, 30, 70));
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --gemm 50x70x30 --array 8x8 --dataflow os --check "
                         "--double-buffer --threads 1", et_test_cli()), 0);
    ck_assert_ptr_nonnull(strstr(out, "0 of 1500 outputs differ"));
    ck_assert_ptr_nonnull(strstr(out, "energy (nJ)"));
    snprintf(p, sizeof p, "%s/topo.csv", dir);
    write_text(p, "Layer, M, N, K,\nfirst, 64, 32, 48,\nsecond, 10, 20, 300,\n");
    c.dataflow = ET_SYS_WS;
    c.dtype = ET_SYS_FP32;
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --topology %s --array 8x8 --dram-bw 0 --csv %s/t.csv "
                         "--svg %s/t.svg --threads 1", et_test_cli(), p, dir, dir), 0);
    ck_assert_ptr_nonnull(strstr(out, "\nfirst "));
    ck_assert_ptr_nonnull(strstr(out, "\nsecond "));
    ck_assert_ptr_nonnull(strstr(out, "util_%"));
    ck_assert_uint_eq(cycles_line(out), et_sys_compute_cycles(&c, 64, 32, 48) + et_sys_compute_cycles(&c, 10, 20, 300));
    snprintf(p, sizeof p, "%s/t.svg", dir);
    ck_assert_int_eq(access(p, R_OK), 0);
    /* bad input: one line, exit 2 for flags, 1 for files */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --gemm 4x4 --array 8x8", et_test_cli()), 2);
    ck_assert_ptr_nonnull(strstr(out, "--gemm must be MxKxN"));
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --gemm 4x4x4 --array 8x0", et_test_cli()), 2);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --gemm 4x4x4 --dataflow xs", et_test_cli()), 2);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --gemm 4x4x4 --sram-kb 1,2", et_test_cli()), 2);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --gemm 4x4x4 --topology x.csv", et_test_cli()), 2);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --topology %s/none.csv", et_test_cli(), dir), 1);
    ck_assert_ptr_nonnull(strstr(out, "cannot read topology"));
    snprintf(p, sizeof p, "%s/bad.csv", dir);
    write_text(p, "a,1,2,3\nb,1,2\n");
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --topology %s", et_test_cli(), p), 1);
    ck_assert_ptr_nonnull(strstr(out, "bad.csv:2:"));
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --help", et_test_cli()), 0);
    ck_assert_ptr_nonnull(strstr(out, "--double-buffer"));
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s --help", et_test_cli()), 0);
    ck_assert_ptr_nonnull(strstr(out, "  sim "));
}
END_TEST

START_TEST(cli_model)
{
    char out[65536], p[512], buf[65536];
    et_ckpt ck;
    et_error e = {0};
    rig r;
    memset(&ck, 0, sizeof ck);
    rig_make(&r, NULL, 1, 8, ET_GPT_INFER, 8);
    ck.cfg = r.m.cfg;
    ck.nparams = r.m.nparams;
    ck.params = malloc(sizeof(float) * r.m.nparams);
    et_gpt_get_params(&r.m, ck.params);
    snprintf(p, sizeof p, "%s/m.etck", dir);
    ck_assert_int_eq(et_ckpt_save(p, &ck, &e), ET_OK);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --model %s --array 8x8 --dataflow ws -b 2 -t 8 --threads 1", et_test_cli(), p), 0);
    ck_assert_ptr_nonnull(strstr(out, "\nL1.fcproj "));
    ck_assert_ptr_nonnull(strstr(out, "\nlm_head "));
    ck_assert_ptr_nonnull(strstr(out, "host: "));
    ck_assert_ptr_nonnull(strstr(out, "loss: "));
    cycles_line(out);
    snprintf(p, sizeof p, "%s/m.sim.csv", dir);
    ck_assert_uint_gt(slurp(p, buf, sizeof buf), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\nL0.qkv,fwd,16,16,48,"));
    snprintf(p, sizeof p, "%s/m.sim.svg", dir);
    ck_assert_uint_gt(slurp(p, buf, sizeof buf), 0);
    snprintf(p, sizeof p, "%s/m.etck", dir);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --model %s --array 4x4 --dtype int8 -b 1 -t 8 --csv %s/q.csv "
                         "--svg %s/q.svg --threads 1", et_test_cli(), p, dir, dir), 0);
    ck_assert_ptr_nonnull(strstr(out, "on the array (int8)"));
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --model %s --array 4x4 --train-step -t 8 --threads 1 --csv %s/s.csv "
                         "--svg %s/s.svg", et_test_cli(), p, dir, dir), 0);
    ck_assert_ptr_nonnull(strstr(out, " dw "));
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --model %s --dtype int8 --train-step", et_test_cli(), p), 2);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --model %s -t 9", et_test_cli(), p), 2);
    free(ck.params);
    free(r.buf);
}
END_TEST

START_TEST(alexnet_conv1_speed)
{
#if defined(__SANITIZE_ADDRESS__)
    /* sanitized builds are several times slower by design; the figure is for -O3 */
#else
    /* the yardstick: M=3025, K=363, N=96 on a 32x32 WS array, results computed,
     * under 0.5 s (SCALE-Sim v2 takes ~42 s and computes nothing) */
    char out[16384];
    const char *p;
    double s;
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sim --gemm 3025x363x96 --array 32x32 --dataflow ws --threads 1", et_test_cli()), 0);
    p = strstr(out, "simulator: ");
    ck_assert_ptr_nonnull(p);
    s = strtod(p + 11, NULL);
    ck_assert_msg(s < 0.5, "AlexNet conv1 GEMM took %g s on the simulated array", s);
#endif
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("systolic_model");
    TCase *tc = tcase_create("model");
    TCase *tr = tcase_create("reports");
    tcase_set_timeout(tc, 600);
    tcase_set_timeout(tr, 600);
    tcase_add_test(tc, linear_ops_match_cpu);
    tcase_add_test(tc, spec_parse);
    tcase_add_test(tc, loss_matches_cpu);
    tcase_add_test(tc, training_step_matches_cpu);
    tcase_add_test(tc, int8_inference_close_to_fp32);
    tcase_add_unchecked_fixture(tr, setup, teardown);
    tcase_add_test(tr, topology_files);
    tcase_add_test(tr, csv_and_svg);
    tcase_add_test(tr, cli_gemm_and_topology);
    tcase_add_test(tr, cli_model);
    tcase_add_test(tr, alexnet_conv1_speed);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, tr);
    return s;
}

ET_CHECK_MAIN(suite)
