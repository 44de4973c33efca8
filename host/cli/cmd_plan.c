/* cmd_plan.c - `edgetrain plan`: the exact arena bytes of an on-device LoRA fine-tuning
 * session over a device image (compress/et_lora.h), by part, before anything runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_image_file.h"
#include "et_lora.h"
#include "flags.h"

int cmd_plan(int argc, char **argv);
int cmd_plan(int argc, char **argv)
{
    const char *image = NULL, *opt = "sgd";
    int rank = 4, layers = 0, B = 1, T = 64, help = 0;
    flag f[] = {
        {"image", 0, F_STR, &image, "device image (.etimg)"},
        {"lora", 0, F_INT, &rank, "adapter rank"},
        {"lora-layers", 0, F_INT, &layers, "adapt the last N blocks (0: all)"},
        {"opt", 0, F_STR, &opt, "sgd | adamw"},
        {"batch", 'b', F_INT, &B, "sequences per step (accumulated one at a time: no extra memory)"},
        {"seq", 't', F_INT, &T, "tokens per sequence"},
    };
    et_image im;
    et_lora_config lc;
    et_lora_plan p;
    et_error e = {0};
    void *mem;
    et_status s;
    if (flags_parse("plan", f, (int)(sizeof f / sizeof *f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("plan", "Exact arena bytes of on-device LoRA fine-tuning of an image.", f, (int)(sizeof f / sizeof *f));
        return 0;
    }
    if (!image || B < 1 || (strcmp(opt, "sgd") && strcmp(opt, "adamw"))) {
        fprintf(stderr, "edgetrain plan: --image is required, -b >= 1, --opt sgd or adamw\n");
        return 2;
    }
    if (et_image_read(image, &mem, &im, &e) != ET_OK) {
        fprintf(stderr, "edgetrain plan: error: %s\n", e.msg);
        return 1;
    }
    lc.rank = rank; lc.layers = layers; lc.alpha = 0; lc.opt = strcmp(opt, "sgd") ? ET_LORA_ADAMW : ET_LORA_SGD;
    if ((s = et_lora_plan_compute(&im, &lc, T, &p)) != ET_OK) {
        fprintf(stderr, "edgetrain plan: error: cannot plan rank %d on %d layers, T=%d for %s (context %d, mode %s): %s\n",
                rank, layers, T, image, im.cfg.context, im.mode == ET_QMODE_W8A32 ? "w8a32" : "w8a8 (not trainable)",
                et_status_str(s));
        free(mem);
        return 1;
    }
    printf("image %s: %zu bytes (read-only), L=%d C=%d NH=%d V=%d context %d\n", image, im.bytes, im.cfg.layers,
           im.cfg.channels, im.cfg.heads, im.cfg.vocab, im.cfg.context);
    printf("lora rank %d on %d layers (qkv + fc), %s, batch %d (accumulated), T=%d: %zu adapter parameters\n", rank,
           layers ? layers : im.cfg.layers, opt, B, T, p.nparams);
    printf("arena bytes: adapters %zu, grads %zu, optimizer %zu, activations %zu, total %zu (%.1f KiB)\n", p.params,
           p.grads, p.opt, p.acts, p.total, p.total / 1024.0);
    free(mem);
    return 0;
}
