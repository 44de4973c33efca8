/* bench_infer.c - inference throughput of the fp32 model against its int8 forms on the
 * baby GPT (4 layers, 4 heads, 128 channels, context 64, char vocabulary 65): the fp32
 * et_gpt, et_qgpt W8A8 and W8A32, and the compact W8A8 model with every block matrix
 * pruned 2:4 (et_cgpt). Weights are GPT-2's random initialisation; the int8 models are
 * calibrated (percentile 99.99 %, 4 batches) on random tokens. Speed does not depend on
 * the values, only on the shapes, so no training is needed.
 *
 * Two shapes: "eval" is B=8, T=64 (evaluation, tokens/s = B*T per forward); "sample" is
 * one sequence with the full window, B=1, T=64, one forward per sampled token (there is
 * no KV cache, so sampling recomputes the window: tokens/s = forwards/s).
 *
 * The machine is shared, so the models are timed in alternating rounds (each round runs
 * every model for the same number of forwards) and each keeps its best round. Two clocks:
 * wall time, and (one thread only) the calling thread's CPU time, which the neighbours
 * disturb less. Prints, per model, shape and thread count:
 *   infer MODEL SHAPE THREADS tok_s_wall tok_s_cpu
 * (tok_s_cpu is 0 with more than one thread: the workers' time is not the caller's).
 * usage: bench_infer THREADS [ROUNDS [MODEL]]   (MODEL: time only that one, for perf) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "et_cmodel.h"
#include "et_qruntime.h"
#include "et_rng.h"
#include "et_runtime.h"
#include "et_sparse.h"

#define NBINS 2048
#define CAL_BATCHES 4
#define NMODELS 4

static double clk(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const char *what, et_status s, const et_error *e)
{
    fprintf(stderr, "bench_infer: %s: %s %s\n", what, et_status_str(s), e ? e->msg : "");
    exit(1);
}

/* activation ranges of every site through the fp32 model's training-mode forward */
static void calibrate(const et_gpt_config *cfg, const float *params, const uint16_t *tok, size_t n,
                      int B, int T, float *lo, float *hi)
{
    et_runtime rt;
    et_qcalib cal;
    et_arena a;
    et_error e;
    void *mem;
    int ns = et_qgpt_nsites(cfg), pass, i, j, *in = malloc(sizeof(int) * (size_t)B * T);
    size_t bytes = et_qcalib_bytes(ns, NBINS);
    et_status s;
    memset(&e, 0, sizeof e);
    if ((s = et_runtime_open(&rt, "cpu", cfg, B, T, ET_GPT_TRAIN, 1, &e)) != ET_OK) die("calibration model", s, &e);
    et_gpt_set_params(&rt.model, params);
    if (!in || posix_memalign(&mem, ET_ALIGN, bytes) != 0) die("calibration", ET_ERR_NOMEM, 0);
    et_arena_init(&a, mem, bytes);
    if ((s = et_qcalib_init(&cal, ns, NBINS, &a)) != ET_OK) die("calibrator", s, 0);
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < CAL_BATCHES; i++) {
            for (j = 0; j < B * T; j++) in[j] = tok[((size_t)i * B * T + j) % n];
            if ((s = et_gpt_forward(&rt.model, in, 0, B, T)) != ET_OK ||
                (s = et_qcalib_observe_gpt(&cal, &rt.model)) != ET_OK)
                die("calibration forward", s, 0);
        }
        if (pass == 0 && (s = et_qcalib_next_pass(&cal)) != ET_OK) die("calibration pass", s, 0);
    }
    for (i = 0; i < ns; i++)
        if ((s = et_qcalib_range(&cal, i, ET_QCALIB_PERCENTILE, 0.9999f, &lo[i], &hi[i])) != ET_OK)
            die("calibration range", s, 0);
    free(mem);
    free(in);
    et_runtime_close(&rt);
}

static void make_qmodel(et_qmodel *q, const et_gpt_config *cfg, const float *params, et_qmode mode,
                        const float *lo, const float *hi)
{
    et_status s;
    memset(q, 0, sizeof *q);
    q->cfg = *cfg;
    q->mode = mode;
    if ((s = et_qgpt_tensors(cfg, mode, 0, &q->blob_bytes)) != ET_OK) die("int8 layout", s, 0);
    if (posix_memalign(&q->blob, 64, q->blob_bytes) != 0) die("int8 blob", ET_ERR_NOMEM, 0);
    if ((s = et_qgpt_quantize(cfg, params, mode, lo, hi, q->blob, q->blob_bytes)) != ET_OK) die("quantize", s, 0);
}

/* the compact W8A8 model with every block matrix pruned 2:4 (one shot, no fine-tune) */
static void make_sparse(et_sparse_model *out, const et_gpt_config *cfg, const float *params, const uint16_t *tok,
                        size_t n, int B, int T)
{
    et_cmodel m;
    et_sparse_model f32;
    et_prune_spec p = {2, 0.0f, 2, 4};
    et_error e;
    et_status s;
    int ns = et_cgpt_nsites(cfg);
    float *lo = malloc(sizeof(float) * (size_t)ns), *hi = malloc(sizeof(float) * (size_t)ns);
    memset(&e, 0, sizeof e);
    if (!lo || !hi) die("2:4", ET_ERR_NOMEM, 0);
    if ((s = et_cmodel_init(&m, cfg, params, &e)) != ET_OK) die("2:4 model", s, &e);
    if ((s = et_cmodel_prune(&m, &p, 0.0f, &e)) != ET_OK) die("2:4 prune", s, &e);
    if ((s = et_cmodel_pack(&m, ET_CGPT_F32, 0, 0, 0, 0, &f32, &e)) != ET_OK) die("2:4 pack", s, &e);
    if ((s = et_cmodel_calibrate(&f32, tok, n, B, T, CAL_BATCHES, ET_QCALIB_PERCENTILE, 0.9999f, 1, lo, hi, &e)) !=
        ET_OK)
        die("2:4 calibration", s, &e);
    if ((s = et_cmodel_pack(&m, ET_CGPT_W8A8, lo, hi, 0, 0, out, &e)) != ET_OK) die("2:4 int8 pack", s, &e);
    et_sparse_free(&f32);
    et_cmodel_free(&m);
    free(lo);
    free(hi);
}

int main(int argc, char **argv)
{
    static const char *names[NMODELS] = {"fp32", "w8a8", "w8a32", "w8a8-2:4"};
    static const struct { const char *name; int B, T, reps; } shapes[2] = {{"eval", 8, 64, 6}, {"sample", 1, 64, 40}};
    et_gpt_config cfg = {65, 0, 64, 4, 4, 128, 0, 0};
    const char *only;
    int th, rounds, sh, i, k, r, n_tok = 1 << 15, *in;
    uint16_t *tok;
    float *params, *lo, *hi;
    et_runtime init;
    et_qmodel qm[2];
    et_sparse_model sp;
    et_error e;
    et_rng rng;
    et_status s;
    memset(&e, 0, sizeof e);
    if (argc < 2) {
        fprintf(stderr, "usage: bench_infer THREADS [ROUNDS [MODEL]]\n");
        return 2;
    }
    th = atoi(argv[1]);
    rounds = argc > 2 ? atoi(argv[2]) : 7;
    only = argc > 3 ? argv[3] : 0;
    if (th < 1 || rounds < 1) return 2;
    et_gpt_config_check(&cfg);
    /* random tokens and GPT-2's initialisation */
    tok = malloc(sizeof(uint16_t) * (size_t)n_tok);
    in = malloc(sizeof(int) * 8 * 64);
    et_rng_seed(&rng, 7);
    for (i = 0; i < n_tok; i++) tok[i] = (uint16_t)et_rng_below(&rng, 65);
    for (i = 0; i < 8 * 64; i++) in[i] = tok[i];
    if ((s = et_runtime_open(&init, "cpu", &cfg, 1, 1, ET_GPT_INFER, 1, &e)) != ET_OK) die("fp32 model", s, &e);
    et_gpt_init_weights(&init.model, 1);
    params = malloc(sizeof(float) * init.model.nparams);
    et_gpt_get_params(&init.model, params);
    et_runtime_close(&init);
    lo = malloc(sizeof(float) * (size_t)et_qgpt_nsites(&cfg));
    hi = malloc(sizeof(float) * (size_t)et_qgpt_nsites(&cfg));
    calibrate(&cfg, params, tok, (size_t)n_tok, 8, 64, lo, hi);
    make_qmodel(&qm[0], &cfg, params, ET_QMODE_W8A8, lo, hi);
    make_qmodel(&qm[1], &cfg, params, ET_QMODE_W8A32, 0, 0);
    make_sparse(&sp, &cfg, params, tok, (size_t)n_tok, 8, 64);
    for (sh = 0; sh < 2; sh++) {
        int B = shapes[sh].B, T = shapes[sh].T, reps = shapes[sh].reps;
        et_runtime rt;
        et_qruntime qrt[2];
        et_cruntime crt;
        void *model[NMODELS];
        et_fwd_fn fwd[NMODELS] = {et_fwd_gpt, et_fwd_qgpt, et_fwd_qgpt, et_fwd_cgpt};
        double best_wall[NMODELS], best_cpu[NMODELS];
        float loss;
        if ((s = et_runtime_open(&rt, "cpu", &cfg, B, T, ET_GPT_INFER, th, &e)) != ET_OK) die("fp32 model", s, &e);
        et_gpt_set_params(&rt.model, params);
        for (k = 0; k < 2; k++)
            if ((s = et_qruntime_open(&qrt[k], &qm[k], B, T, th, &e)) != ET_OK) die("int8 model", s, &e);
        if ((s = et_cruntime_open(&crt, &sp, B, T, th, &e)) != ET_OK) die("2:4 int8 model", s, &e);
        model[0] = &rt.model; model[1] = &qrt[0].model; model[2] = &qrt[1].model; model[3] = &crt.model;
        for (k = 0; k < NMODELS; k++) {
            best_wall[k] = best_cpu[k] = 1e30;
            if ((s = fwd[k](model[k], in, in, B, T, &loss)) != ET_OK) die(names[k], s, 0); /* warm-up */
        }
        for (r = 0; r < rounds; r++)
            for (k = 0; k < NMODELS; k++) {
                if (only && strcmp(only, names[k]) != 0) continue;
                double w0 = clk(CLOCK_MONOTONIC), c0 = clk(CLOCK_THREAD_CPUTIME_ID), w, c;
                for (i = 0; i < reps; i++)
                    if ((s = fwd[k](model[k], in, 0, B, T, &loss)) != ET_OK) die(names[k], s, 0);
                c = clk(CLOCK_THREAD_CPUTIME_ID) - c0;
                w = clk(CLOCK_MONOTONIC) - w0;
                if (w < best_wall[k]) best_wall[k] = w;
                if (c < best_cpu[k]) best_cpu[k] = c;
            }
        for (k = 0; k < NMODELS; k++) {
            if (only && strcmp(only, names[k]) != 0) continue;
            /* tokens per forward: all B*T when evaluating, one when sampling */
            double tpf = sh == 0 ? (double)B * T : 1.0;
            printf("infer %s %s %d %.1f %.1f\n", names[k], shapes[sh].name, th, tpf * reps / best_wall[k],
                   th == 1 ? tpf * reps / best_cpu[k] : 0.0);
        }
        fflush(stdout);
        et_runtime_close(&rt);
        for (k = 0; k < 2; k++) et_qruntime_close(&qrt[k]);
        et_cruntime_close(&crt);
    }
    for (k = 0; k < 2; k++) free(qm[k].blob);
    et_sparse_free(&sp);
    free(params);
    free(lo);
    free(hi);
    free(tok);
    free(in);
    return 0;
}
