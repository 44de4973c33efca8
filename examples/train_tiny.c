#define _POSIX_C_SOURCE 200809L /* posix_memalign */
/* train_tiny.c - trains a tiny GPT through the public C API alone: plan the memory,
 * hand over one buffer, train on a toy sequence, watch the loss fall.
 * Build: cc -std=c99 train_tiny.c $(pkg-config --cflags --libs edgetrain) */
#include <stdio.h>
#include <stdlib.h>
#include "edgetrain.h"

int main(void)
{
    et_gpt_config cfg = {0};
    et_backend be;
    et_cpu_ctx cpu;
    et_gpt_plan plan;
    et_arena arena;
    et_gpt model;
    et_adamw_config opt = {3e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f};
    int in[4 * 16], tg[4 * 16], i, step;
    float first = 0.0f;
    void *mem = NULL;

    cfg.vocab = 16; cfg.context = 16; cfg.layers = 2; cfg.heads = 2; cfg.channels = 32;
    if (et_gpt_config_check(&cfg) != ET_OK) return 1;
    et_cpu_backend_init(&be, &cpu, NULL); /* serial: no thread pool needed */
    if (et_gpt_plan_compute(&cfg, 4, 16, ET_GPT_TRAIN, &be, &plan) != ET_OK) return 1;
    if (posix_memalign(&mem, ET_ALIGN, plan.total) != 0) return 1;
    et_arena_init(&arena, mem, plan.total);
    if (et_gpt_create(&model, &cfg, 4, 16, ET_GPT_TRAIN, &be, &arena) != ET_OK) return 1;
    et_gpt_init_weights(&model, 42);
    printf("tiny GPT: %zu parameters in an arena of exactly %zu bytes\n", model.nparams, plan.total);

    /* the toy language: each token is followed by (token * 3 + 1) mod 16 */
    for (i = 0; i < 4 * 16; i++) {
        in[i] = (i % 16 == 0) ? i / 16 : (in[i - 1] * 3 + 1) % 16;
        tg[i] = (in[i] * 3 + 1) % 16;
    }
    for (step = 0; step < 100; step++) {
        if (et_gpt_forward(&model, in, tg, 4, 16) != ET_OK || et_gpt_zero_grad(&model) != ET_OK ||
            et_gpt_backward(&model, 1.0f) != ET_OK || et_gpt_step(&model, &opt) != ET_OK)
            return 1;
        if (step == 0) first = model.mean_loss;
        if (step % 25 == 0 || step == 99) printf("step %3d loss %.4f\n", step + 1, model.mean_loss);
    }
    free(mem);
    if (!(model.mean_loss < 0.25f * first)) {
        fprintf(stderr, "the loss did not fall: %.4f -> %.4f\n", first, model.mean_loss);
        return 1;
    }
    return 0;
}
