/* cmd_plan.c - `edgetrain plan`: the exact arena bytes of an on-device LoRA fine-tuning
 * session over a device image (compress/et_lora.h), by part, before anything runs; and,
 * with a board's budgets (--ram, --flash; `make board=NAME board-check` passes the
 * BOARD_RAM and BOARD_FLASH of boards/NAME.mk), what fits and what does not: the image
 * (plus --code bytes of firmware) in flash, the arena (or the plan itself) in RAM, the
 * plan in the arena. Anything that does not fit is an error (exit 1) that says by how
 * much, and the largest T and the most adapted layers that would fit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_image_file.h"
#include "et_lora.h"
#include "flags.h"
#include "labelled.h"

/* bytes from "262144", "256K", "2M", "1G" (0 allowed: no budget) */
static int parse_bytes(const char *s, size_t *out)
{
    char *end;
    double v;
    if (!s) return 0;
    v = strtod(s, &end);
    if (end == s || v < 0) return -1;
    if (*end == 'K' || *end == 'k') { v *= 1024; end++; }
    else if (*end == 'M' || *end == 'm') { v *= 1048576; end++; }
    else if (*end == 'G' || *end == 'g') { v *= 1073741824.0; end++; }
    if (*end || v > 1e18) return -1;
    *out = (size_t)v;
    return 0;
}

/* largest T <= context, and most adapted layers at this T, whose plan fits in limit */
static void hints(const et_image *im, const et_lora_config *lc, int T, size_t limit)
{
    et_lora_config c = *lc;
    et_lora_plan p;
    int t, l, bt = 0, bl = 0;
    for (t = 1; t <= im->cfg.context; t++)
        if (et_lora_plan_compute(im, lc, t, &p) == ET_OK && p.total <= limit) bt = t;
    for (l = 1; l <= im->cfg.layers && (lc->rank || lc->train_ln); l++) { /* a head alone trains no block */
        c.layers = l;
        if (et_lora_plan_compute(im, &c, T, &p) == ET_OK && p.total <= limit) bl = l;
    }
    fflush(stdout);
    if (bt) fprintf(stderr, "  at these adapters, -t %d is the longest sequence that fits\n", bt);
    if (bl) fprintf(stderr, "  at -t %d, --lora-layers %d is the most adapted blocks that fit\n", T, bl);
    if (!bt && !bl) fprintf(stderr, "  no sequence length or layer count fits this rank; lower --lora or raise the budget\n");
}

int cmd_plan(int argc, char **argv);
int cmd_plan(int argc, char **argv)
{
    const char *image = NULL, *opt = "sgd", *ram_s = NULL, *flash_s = NULL, *arena_s = NULL, *code_s = NULL,
               *board = "the board", *head = NULL;
    int classes = 0;
    et_lora_pool pool = ET_LORA_POOL_MEAN;
    char what[160];
    int rank = -1, layers = 0, B = 1, T = 64, help = 0, bad = 0, train_ln = 0, keep_inputs = 0;
    flag f[] = {
        {"image", 0, F_STR, &image, "device image (.etimg)"},
        {"lora", 0, F_INT, &rank, "adapter rank (-1: 4, or 0 with --head: the head alone)"},
        {"head", 0, F_STR, &head, "a new task head: classes=K[,pool=mean|last]"},
        {"lora-layers", 0, F_INT, &layers, "adapt the last N blocks (0: all)"},
        {"opt", 0, F_STR, &opt, "sgd | adamw"},
        {"train-ln", 0, F_BOOL, &train_ln, "also train the LayerNorm gains and biases (adapted blocks + final)"},
        {"keep-inputs", 0, F_BOOL, &keep_inputs, "store each adapted block's input instead of recomputing it (faster, more memory)"},
        {"batch", 'b', F_INT, &B, "sequences per step (accumulated one at a time: no extra memory)"},
        {"seq", 't', F_INT, &T, "tokens per sequence"},
        {"ram", 0, F_STR, &ram_s, "board RAM budget, e.g. 512K (0: none); the arena (or the plan) must fit"},
        {"flash", 0, F_STR, &flash_s, "board flash budget, e.g. 2M (0: none); the image + --code must fit"},
        {"arena", 0, F_STR, &arena_s, "the arena the firmware reserves: the plan must fit in it, it in --ram"},
        {"code", 0, F_STR, &code_s, "flash the firmware takes besides the image (bytes)"},
        {"board", 0, F_STR, &board, "board name for the messages"},
    };
    et_image im;
    et_lora_config lc;
    et_lora_plan p;
    et_error e = {0};
    void *mem;
    size_t ram = 0, flash = 0, arena = 0, code = 0, need;
    et_status s;
    if (flags_parse("plan", f, (int)(sizeof f / sizeof *f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("plan", "Exact arena bytes of on-device LoRA fine-tuning of an image, and a check against a "
                    "board's RAM and flash.", f, (int)(sizeof f / sizeof *f));
        return 0;
    }
    if (!image || B < 1 || (strcmp(opt, "sgd") && strcmp(opt, "adamw")) || parse_bytes(ram_s, &ram) ||
        parse_bytes(flash_s, &flash) || parse_bytes(arena_s, &arena) || parse_bytes(code_s, &code)) {
        fprintf(stderr, "edgetrain plan: --image is required, -b >= 1, --opt sgd or adamw; --ram, --flash, --arena and "
                        "--code are byte counts like 262144, 256K or 2M\n");
        return 2;
    }
    if ((head && cli_head_parse(head, &classes, &pool)) || rank < -1 || (rank == 0 && !head && !train_ln)) {
        fprintf(stderr, "edgetrain plan: %s\n", rank < -1 || rank == 0 ? "--lora 0 (no adapters) needs --head or --train-ln"
                : "--head expects classes=K[,pool=mean|last] with K in 2..4096");
        return 2;
    }
    if (rank < 0) rank = head ? 0 : 4;
    if (et_image_read(image, &mem, &im, &e) != ET_OK) {
        fprintf(stderr, "edgetrain plan: error: %s\n", e.msg);
        return 1;
    }
    lc.rank = rank; lc.layers = layers; lc.alpha = 0; lc.opt = strcmp(opt, "sgd") ? ET_LORA_ADAMW : ET_LORA_SGD;
    lc.train_ln = train_ln; lc.keep_inputs = keep_inputs; lc.head_classes = classes; lc.head_pool = pool;
    if ((s = et_lora_plan_compute(&im, &lc, T, &p)) != ET_OK) {
        fprintf(stderr, "edgetrain plan: error: cannot plan rank %d on %d layers, T=%d for %s (context %d, mode %s): %s\n",
                rank, layers, T, image, im.cfg.context, im.mode == ET_QMODE_W8A32 ? "w8a32" : "w8a8 (not trainable)",
                et_status_str(s));
        free(mem);
        return 1;
    }
    printf("image %s: %zu bytes (read-only), L=%d C=%d NH=%d V=%d context %d\n", image, im.bytes, im.cfg.layers,
           im.cfg.channels, im.cfg.heads, im.cfg.vocab, im.cfg.context);
    if (!rank && !train_ln) snprintf(what, sizeof what, "no adapters, base frozen");
    else if (!rank) snprintf(what, sizeof what, "LayerNorms of %d layers", layers ? layers : im.cfg.layers);
    else snprintf(what, sizeof what, "lora rank %d on %d layers (qkv + fc%s)", rank, layers ? layers : im.cfg.layers,
                  train_ln ? " + LayerNorms" : "");
    if (head) printf("a %d-class head over the %s (%zu parameters) + ", classes,
                     pool == ET_LORA_POOL_LAST ? "last token" : "mean of the tokens", p.nhead);
    printf("%s, %s, batch %d (accumulated), T=%d, block inputs %s: %zu trained parameters\n", what, opt, B, T,
           keep_inputs ? "stored" : "recomputed", p.nparams);
    printf("arena bytes: %s %zu, grads %zu, optimizer %zu, activations %zu, stored inputs %zu, total %zu (%.1f KiB)\n",
           head ? "parameters" : "adapters", p.params, p.grads, p.opt, p.acts, p.inputs, p.total, p.total / 1024.0);
    /* --- budgets */
    fflush(stdout); /* the errors below follow the plan they refer to */
    if (flash) {
        need = im.bytes + code;
        if (code) printf("%s flash %zu bytes: image %zu + code %zu = %zu: ", board, flash, im.bytes, code, need);
        else printf("%s flash %zu bytes: image %zu: ", board, flash, need);
        printf("%s (%s%zu)\n", need <= flash ? "fits" : "DOES NOT FIT", need <= flash ? "left " : "over by ",
               need <= flash ? flash - need : need - flash);
        if (need > flash) {
            fflush(stdout);
            fprintf(stderr, "edgetrain plan: error: %s: the image %s (%zu bytes)%s needs %zu bytes of flash, %zu more than "
                    "its %zu; use a smaller model (fewer layers or channels)\n", board, image, im.bytes,
                    code ? " with the firmware's code" : "", need, need - flash, flash);
            bad = 1;
        }
    }
    if (arena) {
        printf("%s arena %zu bytes: plan %zu: %s (%s%zu)\n", board, arena, p.total, p.total <= arena ? "fits" : "DOES NOT FIT",
               p.total <= arena ? "left " : "over by ", p.total <= arena ? arena - p.total : p.total - arena);
        if (p.total > arena) {
            fflush(stdout);
            char job[224];
            if (head) snprintf(job, sizeof job, "training a %d-class head with %s", classes, what);
            else snprintf(job, sizeof job, "fine-tuning rank %d on %d layers", rank, layers ? layers : im.cfg.layers);
            fprintf(stderr, "edgetrain plan: error: %s: %s at T=%d needs a %zu-byte arena, %zu more than the %zu the "
                    "firmware reserves\n", board, job, T, p.total, p.total - arena, arena);
            hints(&im, &lc, T, arena);
            bad = 1;
        }
    }
    if (ram) {
        need = arena ? arena : p.total;
        printf("%s RAM %zu bytes: %s %zu: %s (%s%zu)\n", board, ram, arena ? "arena" : "plan", need,
               need <= ram ? "fits" : "DOES NOT FIT", need <= ram ? "left " : "over by ", need <= ram ? ram - need : need - ram);
        if (need > ram) {
            fflush(stdout);
            fprintf(stderr, "edgetrain plan: error: %s: the %s needs %zu bytes of RAM, %zu more than its %zu\n", board,
                    arena ? "arena" : "fine-tuning plan", need, need - ram, ram);
            if (!arena) hints(&im, &lc, T, ram);
            bad = 1;
        }
    }
    if ((ram || flash || arena) && !bad) printf("%s: everything fits\n", board);
    else if (!ram && !flash && !arena && strcmp(board, "the board"))
        printf("%s: no RAM or flash budget to check (BOARD_RAM = BOARD_FLASH = 0)\n", board);
    free(mem);
    return bad;
}
