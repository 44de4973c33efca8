/* bench_train.c - training throughput of edgetrain's cpu backend: forward + backward +
 * AdamW on a GPT-2 of the given shape with random char-level tokens (vocab 65, padded
 * to 128). Prints "train edgetrain <config> threads tok_s step_ms peak_rss_kb".
 * usage: bench_train NAME LAYERS HEADS CHANNELS T B THREADS STEPS */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "et_rng.h"
#include "et_runtime.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    et_gpt_config cfg = {65, 0, 0, 0, 0, 0, 0, 0};
    et_runtime rt;
    et_error e;
    et_adamw_config o = {1e-4f, 0.9f, 0.99f, 1e-8f, 0.1f, 1.0f};
    int B, T, th, steps, i, s, *in, *tg;
    double *dt;
    struct rusage ru;
    et_rng r;
    memset(&e, 0, sizeof e);
    if (argc < 9) {
        fprintf(stderr, "usage: bench_train NAME LAYERS HEADS CHANNELS T B THREADS STEPS\n");
        return 2;
    }
    cfg.layers = atoi(argv[2]); cfg.heads = atoi(argv[3]); cfg.channels = atoi(argv[4]);
    T = atoi(argv[5]); B = atoi(argv[6]); th = atoi(argv[7]); steps = atoi(argv[8]);
    cfg.context = T;
    if (et_runtime_open(&rt, "cpu", &cfg, B, T, ET_GPT_TRAIN, th, &e) != ET_OK) {
        fprintf(stderr, "bench_train: %s\n", e.msg);
        return 1;
    }
    et_gpt_init_weights(&rt.model, 1);
    in = malloc(sizeof(int) * (size_t)B * T);
    tg = malloc(sizeof(int) * (size_t)B * T);
    dt = malloc(sizeof(double) * (size_t)steps);
    et_rng_seed(&r, 7);
    for (s = -2; s < steps; s++) { /* two warm-up steps */
        double t0;
        for (i = 0; i < B * T; i++) { in[i] = (int)et_rng_below(&r, 65); tg[i] = (int)et_rng_below(&r, 65); }
        t0 = now();
        if (et_gpt_forward(&rt.model, in, tg, B, T) || et_gpt_zero_grad(&rt.model) ||
            et_gpt_backward(&rt.model, 1.0f) || et_gpt_step(&rt.model, &o))
            return 1;
        if (s >= 0) dt[s] = now() - t0;
    }
    qsort(dt, (size_t)steps, sizeof(double), cmp_d);
    getrusage(RUSAGE_SELF, &ru);
    printf("train edgetrain %s %d %.1f %.2f %ld\n", argv[1], th, B * T / dt[steps / 2], dt[steps / 2] * 1e3,
           ru.ru_maxrss);
    et_runtime_close(&rt);
    return 0;
}
