/* cmd_finetune.c - `edgetrain finetune`: LoRA fine-tuning of a device image on plain text,
 * inside one arena of a given size, through the same freestanding code a board runs
 * (compress/et_lora.h). The text is tokenized with the image's own tokenizer (characters
 * it lacks are skipped and counted); its last --val-frac is held out and its loss is
 * printed before and after. Writes DIR/adapters.etlora, and with --merge a new image with
 * the adapters folded in (host/image_file.c, et_lora_merge).
 * With --head classes=K it trains a new K-class task head instead (the transfer-learning
 * pattern; optionally with adapters and LayerNorms below it) on labelled lines
 * "text<TAB>class" (labelled.c), and reports held-out accuracy before and after. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "et_image_file.h"
#include "et_lora_file.h"
#include "et_tokenizer.h"
#include "flags.h"
#include "labelled.h"

static int parse_size(const char *s, size_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0) return -1;
    if (*end == 'K' || *end == 'k') { v *= 1024; end++; }
    else if (*end == 'M' || *end == 'm') { v *= 1048576; end++; }
    if (*end) return -1;
    *out = (size_t)v;
    return 0;
}

/* mean loss over up to nwin consecutive windows of T+1 tokens */
static et_status val_loss(et_lora *s, const int32_t *ids, size_t n, int T, int nwin, float *out)
{
    double sum = 0.0;
    int k = 0;
    size_t pos;
    for (pos = 0; pos + (size_t)T + 1 <= n && k < nwin; pos += (size_t)T, k++) {
        float l;
        et_status st = et_lora_loss(s, ids + pos, ids + pos + 1, T, &l);
        if (st != ET_OK) return st;
        sum += l;
    }
    *out = k ? (float)(sum / k) : -1.0f;
    return ET_OK;
}

/* what the head path needs from the flags */
typedef struct {
    const char *image, *data, *val_data, *out, *opt, *arena_s, *adapters;
    int B, T, steps, seed, log_every;
    float lr, wd, valfrac;
    size_t arena_n;
} head_args;

static void report(const char *when, const cli_accuracy *a, const char *extra)
{
    printf("held-out %s: accuracy %.4f (%d/%d), loss %.4f%s\n", when, a->n ? (double)a->right / a->n : 0.0, a->right, a->n,
           a->loss, extra);
}

/* the task head: labelled lines, held-out accuracy before and after, adapters file */
static int finetune_head(const head_args *h, et_image *im, const et_tokenizer *tok, const et_lora_config *lc)
{
    cli_labelled d = {0}, v = {0};
    const cli_labelled *vd;
    cli_accuracy a0, a1;
    et_lora_plan p;
    et_lora s;
    et_arena ar;
    et_error e = {0};
    et_status st;
    void *abuf = NULL;
    int *order = NULL, ntrain = 0, every, vsel, i, k, b, pos = 0, rc = 1;
    uint64_t rng = (uint64_t)(unsigned)h->seed * 0x9E3779B97F4A7C15ull + 1;
    struct timespec t0, t1;
    double secs;
    char path[4200], extra[96], split[64];
    if (cli_labelled_read("finetune", h->data, tok, lc->head_classes, &d)) return 1;
    if (h->val_data && cli_labelled_read("finetune", h->val_data, tok, lc->head_classes, &v)) goto done;
    every = h->val_data ? 0 : cli_labelled_every(h->valfrac);
    vd = h->val_data ? &v : &d;
    vsel = h->val_data ? -1 : 1;
    if (!(order = malloc(sizeof(int) * (size_t)d.n))) {
        fprintf(stderr, "edgetrain finetune: error: out of memory\n");
        goto done;
    }
    for (i = 0; i < d.n; i++) if (!cli_labelled_held_out(i, every)) order[ntrain++] = i;
    if (d.unknown)
        fprintf(stderr, "edgetrain finetune: warning: skipped %zu characters of %s the image's tokenizer lacks\n", d.unknown,
                h->data);
    if (d.empty)
        fprintf(stderr, "edgetrain finetune: warning: %d lines of %s kept no token and were skipped\n", d.empty, h->data);
    if (ntrain < 1 || (ntrain == d.n && !h->val_data)) {
        fprintf(stderr, "edgetrain finetune: error: %s: %d examples leave none to %s with --val-frac %g\n", h->data, d.n,
                ntrain < 1 ? "train on" : "hold out", (double)h->valfrac);
        goto done;
    }
    if ((st = et_lora_plan_compute(im, lc, h->T, &p)) != ET_OK) {
        fprintf(stderr, "edgetrain finetune: error: cannot plan a %d-class head (lora rank %d), T=%d on %s (context %d): %s\n",
                lc->head_classes, lc->rank, h->T, h->image, im->cfg.context, et_status_str(st));
        goto done;
    }
    if (posix_memalign(&abuf, 64, h->arena_n) != 0) {
        abuf = NULL;
        fprintf(stderr, "edgetrain finetune: error: out of memory\n");
        goto done;
    }
    et_arena_init(&ar, abuf, h->arena_n);
    if ((st = et_lora_create(&s, im, lc, h->T, (uint64_t)(unsigned)h->seed, &ar)) != ET_OK) {
        fprintf(stderr, "edgetrain finetune: error: %s: the plan needs %zu bytes, the arena has %zu (--arena %s)\n",
                et_status_str(st), p.total, h->arena_n, h->arena_s);
        goto done;
    }
    if (h->adapters && et_lora_load(h->adapters, &s, &e) != ET_OK) {
        fprintf(stderr, "edgetrain finetune: error: %s\n", e.msg);
        goto done;
    }
    if (h->val_data) snprintf(split, sizeof split, "%s", "--val-data");
    else snprintf(split, sizeof split, "every %d%s line", every, every % 10 == 2 && every % 100 != 12 ? "nd" :
                  every % 10 == 3 && every % 100 != 13 ? "rd" : "th");
    printf("finetune %s: %d train + %d held-out examples (%s), up to %d tokens each (longest %d); a %d-class head over "
           "the %s", h->data, ntrain, h->val_data ? v.n : d.n - ntrain, split, h->T, d.longest, lc->head_classes,
           lc->head_pool == ET_LORA_POOL_LAST ? "last token" : "mean of the tokens");
    if (lc->rank) printf(" + lora rank %d on %d layers", lc->rank, s.lc.layers);
    if (lc->train_ln) printf(" + LayerNorms%s", lc->rank ? "" : " of the last blocks");
    printf(", %s lr %g; arena %zu bytes, plan %zu\n", h->opt, (double)h->lr, h->arena_n, p.total);
    if ((st = cli_labelled_accuracy(&s, vd, every, vsel, h->T, &a0)) != ET_OK) goto failed;
    snprintf(extra, sizeof extra, "; always class %d: %.4f", a0.majority, a0.n ? (double)a0.majority_n / a0.n : 0.0);
    report(h->steps ? "before" : "with these adapters", &a0, extra);
    if (h->steps == 0) { rc = 0; goto done; }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (k = 1; k <= h->steps; k++) {
        double sum = 0.0;
        for (b = 0; b < h->B; b++) {
            int ex, n;
            float loss;
            if (pos == 0) /* a new epoch: Fisher-Yates shuffle of the training examples */
                for (i = ntrain - 1; i > 0; i--) {
                    int j, tmp;
                    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                    j = (int)((rng >> 33) % (uint64_t)(i + 1));
                    tmp = order[i]; order[i] = order[j]; order[j] = tmp;
                }
            ex = order[pos];
            pos = (pos + 1) % ntrain;
            n = (int)(d.off[ex + 1] - d.off[ex]);
            if (n > h->T) n = h->T;
            if ((st = et_lora_accumulate_class(&s, d.ids + d.off[ex], n, d.label[ex], 1.0f / (float)h->B, &loss)) != ET_OK) {
                fprintf(stderr, "edgetrain finetune: error: step %d, %s:%d: %s\n", k, h->data, d.line[ex], et_status_str(st));
                goto done;
            }
            sum += loss;
        }
        et_lora_step(&s, h->lr, h->wd);
        if (k % h->log_every == 0 || k == h->steps) printf("step %d/%d | loss %.4f\n", k, h->steps, sum / h->B);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if ((st = cli_labelled_accuracy(&s, vd, every, vsel, h->T, &a1)) != ET_OK) goto failed;
    printf("trained %d steps x %d examples (%.1f epochs) in %.1f s (%.4f s per example)\n", h->steps, h->B,
           (double)h->steps * h->B / ntrain, secs, secs / ((double)h->steps * h->B));
    snprintf(extra, sizeof extra, " (accuracy %+.4f, loss %+.4f)", (double)a1.right / a1.n - (double)a0.right / a0.n,
             a1.loss - a0.loss);
    report("after", &a1, extra);
    printf("arena high-water %zu bytes %s plan %zu\n", ar.high_water, ar.high_water == p.total ? "=" : "!=", p.total);
    snprintf(path, sizeof path, "%s/adapters.etlora", h->out);
    if (mkdir(h->out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "edgetrain finetune: error: %s: cannot create folder: %s\n", h->out, strerror(errno));
        goto done;
    }
    if (et_lora_save(path, &s, &e) != ET_OK) { fprintf(stderr, "edgetrain finetune: error: %s\n", e.msg); goto done; }
    printf("wrote %s (%zu trained parameters, head %zu)\n", path, s.nparams, p.nhead);
    rc = 0;
    goto done;
failed:
    fprintf(stderr, "edgetrain finetune: error: classifying %s: %s\n", h->val_data ? h->val_data : h->data, et_status_str(st));
done:
    free(abuf);
    free(order);
    cli_labelled_free(&d);
    cli_labelled_free(&v);
    return rc;
}

int cmd_finetune(int argc, char **argv);
int cmd_finetune(int argc, char **argv)
{
    const char *image = NULL, *data = NULL, *out = NULL, *arena_s = "256K", *opt = "sgd", *adapters = NULL, *merge = NULL;
    const char *head = NULL, *val_data = NULL;
    int train_ln = 0, keep_inputs = 0, classes = 0;
    et_lora_pool pool = ET_LORA_POOL_MEAN;
    int rank = -1, layers = 0, B = 1, T = 64, steps = 100, help = 0, seed = 1, log_every = 10, val_win = 50, rc = 1, k, b;
    float lr = 0.0f, valfrac = 0.1f, wd = 0.0f;
    flag f[] = {
        {"image", 0, F_STR, &image, "device image (.etimg)"},
        {"data", 'd', F_STR, &data, "plain text to fine-tune on (with --head: lines text<TAB>class)"},
        {"head", 0, F_STR, &head, "train a new task head: classes=K[,pool=mean|last] (mean: over the tokens)"},
        {"val-data", 0, F_STR, &val_data, "with --head: held-out labelled lines (default: every round(1/F)-th line of --data)"},
        {"lora", 0, F_INT, &rank, "adapter rank (-1: 4, or 0 with --head: the head alone over a frozen base)"},
        {"lora-layers", 0, F_INT, &layers, "adapt the last N blocks (0: all)"},
        {"opt", 0, F_STR, &opt, "sgd | adamw"},
        {"train-ln", 0, F_BOOL, &train_ln, "also train the LayerNorm gains and biases (adapted blocks + final)"},
        {"keep-inputs", 0, F_BOOL, &keep_inputs, "store each adapted block's input instead of recomputing it (faster, more memory)"},
        {"lr", 0, F_FLOAT, &lr, "learning rate (0: 0.05 for sgd, 3e-3 for adamw)"},
        {"wd", 0, F_FLOAT, &wd, "AdamW weight decay"},
        {"arena", 0, F_STR, &arena_s, "arena size, e.g. 256K (all mutable state lives in it)"},
        {"batch", 'b', F_INT, &B, "sequences per step (gradient accumulation, one at a time)"},
        {"seq", 't', F_INT, &T, "tokens per sequence"},
        {"steps", 0, F_INT, &steps, "optimizer steps"},
        {"val-frac", 0, F_FLOAT, &valfrac, "share held out (text: its end; --head: every round(1/F)-th line)"},
        {"val-windows", 0, F_INT, &val_win, "held-out windows of T tokens to average"},
        {"seed", 0, F_INT, &seed, "random seed (adapter init, window order)"},
        {"log-every", 0, F_INT, &log_every, "progress line every N steps"},
        {"adapters", 0, F_STR, &adapters, "start from these adapters (with --steps 0: only evaluate them)"},
        {"out", 'o', F_STR, &out, "output folder (adapters.etlora)"},
        {"merge", 0, F_STR, &merge, "also write this image: the adapters folded into the weights, re-quantized"},
    };
    et_image im;
    et_lora_config lc;
    et_lora_plan p;
    et_lora s;
    et_arena ar;
    et_error e = {0};
    et_tokenizer *tok = NULL;
    void *mem = NULL, *abuf = NULL;
    char *text = NULL, path[4200];
    int32_t *ids = NULL;
    size_t arena_n, tn = 0, nids = 0, unk = 0, ntrain;
    float before, after, loss = 0.0f;
    uint64_t rng;
    struct timespec t0, t1;
    double secs;
    FILE *fp;
    et_status st;
    if (flags_parse("finetune", f, (int)(sizeof f / sizeof *f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("finetune", "LoRA fine-tuning of a device image on plain text, or a new task head on labelled lines "
                    "(--head), inside a fixed arena.", f, (int)(sizeof f / sizeof *f));
        return 0;
    }
    if (!image || !data || (!out && steps > 0) || B < 1 || steps < 0 || log_every < 1 || !(valfrac > 0 && valfrac < 1) ||
        parse_size(arena_s, &arena_n) || (strcmp(opt, "sgd") && strcmp(opt, "adamw")) || rank < -1) {
        fprintf(stderr, "edgetrain finetune: --image, --data and (unless --steps 0) --out are required; -b, --log-every >= 1, --steps >= 0; "
                        "--val-frac in (0,1); --arena like 256K; --opt sgd or adamw; --lora >= 0\n");
        return 2;
    }
    if (head && cli_head_parse(head, &classes, &pool)) {
        fprintf(stderr, "edgetrain finetune: --head expects classes=K[,pool=mean|last] with K in 2..%d, got '%s'\n",
                ET_LORA_MAX_CLASSES, head);
        return 2;
    }
    if (head && merge) {
        fprintf(stderr, "edgetrain finetune: --merge folds adapters into an image, which has no place for a task head; "
                        "keep the head in DIR/adapters.etlora (eval --image M --adapters ...)\n");
        return 2;
    }
    if (!head && (val_data || (rank == 0 && !train_ln))) {
        fprintf(stderr, "edgetrain finetune: %s\n", val_data ? "--val-data only with --head" :
                "--lora 0 (no adapters) leaves nothing to train without --head or --train-ln");
        return 2;
    }
    if (rank < 0) rank = head ? 0 : 4;
    lc.rank = rank; lc.layers = layers; lc.alpha = 0; lc.opt = strcmp(opt, "sgd") ? ET_LORA_ADAMW : ET_LORA_SGD;
    lc.train_ln = train_ln; lc.keep_inputs = keep_inputs; lc.head_classes = classes; lc.head_pool = pool;
    if (lr == 0.0f) lr = lc.opt == ET_LORA_SGD ? 0.05f : 3e-3f;
    if (et_image_read(image, &mem, &im, &e) != ET_OK) { fprintf(stderr, "edgetrain finetune: error: %s\n", e.msg); return 1; }
    if (!im.tokenizer) { fprintf(stderr, "edgetrain finetune: error: %s has no tokenizer\n", image); goto done; }
    if (et_tok_deserialize(im.tokenizer, im.tokenizer_bytes, &tok, &e) != ET_OK) {
        fprintf(stderr, "edgetrain finetune: error: %s: tokenizer: %s\n", image, e.msg);
        goto done;
    }
    if (head) {
        head_args h = {image, data, val_data, out, opt, arena_s, adapters, B, T, steps, seed, log_every, lr, wd, valfrac,
                       arena_n};
        rc = finetune_head(&h, &im, tok, &lc);
        goto done;
    }
    if (!(fp = fopen(data, "rb"))) { fprintf(stderr, "edgetrain finetune: error: %s: cannot open\n", data); goto done; }
    fseek(fp, 0, SEEK_END);
    tn = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    text = malloc(tn + 1);
    ids = malloc(sizeof(int32_t) * (tn + 1));
    if (!text || !ids || fread(text, 1, tn, fp) != tn) { fclose(fp); fprintf(stderr, "edgetrain finetune: error: %s: read failed\n", data); goto done; }
    fclose(fp);
    if (et_tok_encode_i32(tok, text, tn, ids, tn + 1, &nids, ET_TOK_SKIP_UNKNOWN, &unk) != ET_OK) {
        fprintf(stderr, "edgetrain finetune: error: %s: cannot tokenize\n", data);
        goto done;
    }
    if (unk) fprintf(stderr, "edgetrain finetune: warning: skipped %zu characters of %s the image's tokenizer lacks\n", unk, data);
    ntrain = (size_t)((double)nids * (1.0 - valfrac));
    if (ntrain < (size_t)T + 1 || nids - ntrain < (size_t)T + 1) {
        fprintf(stderr, "edgetrain finetune: error: %s: %zu tokens is too little for T=%d with --val-frac %g\n", data, nids, T, valfrac);
        goto done;
    }
    if ((st = et_lora_plan_compute(&im, &lc, T, &p)) != ET_OK) {
        fprintf(stderr, "edgetrain finetune: error: cannot plan rank %d, T=%d on %s: %s\n", rank, T, image, et_status_str(st));
        goto done;
    }
    if (posix_memalign(&abuf, 64, arena_n) != 0) { abuf = NULL; fprintf(stderr, "edgetrain finetune: error: out of memory\n"); goto done; }
    et_arena_init(&ar, abuf, arena_n);
    if ((st = et_lora_create(&s, &im, &lc, T, (uint64_t)(unsigned)seed, &ar)) != ET_OK) {
        fprintf(stderr, "edgetrain finetune: error: %s: the plan needs %zu bytes, the arena has %zu (--arena %s)\n",
                et_status_str(st), p.total, arena_n, arena_s);
        goto done;
    }
    if (adapters && et_lora_load(adapters, &s, &e) != ET_OK) {
        fprintf(stderr, "edgetrain finetune: error: %s\n", e.msg);
        goto done;
    }
    printf("finetune %s: %zu train + %zu held-out tokens; lora rank %d on %d layers%s, %s lr %g, block inputs %s; arena %zu "
           "bytes, plan %zu\n", data, ntrain, nids - ntrain, rank, s.lc.layers, train_ln ? " + LayerNorms" : "", opt, lr,
           keep_inputs ? "stored" : "recomputed", arena_n, p.total);
    if (val_loss(&s, ids + ntrain, nids - ntrain, T, val_win, &before) != ET_OK) goto done;
    printf("val loss %s %.4f\n", steps ? "before" : "with these adapters", before);
    if (steps == 0) goto merged; /* evaluation only (and --merge of the loaded adapters) */
    rng = (uint64_t)(unsigned)seed * 0x9E3779B97F4A7C15ull + 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (k = 1; k <= steps; k++) {
        double sum = 0.0;
        for (b = 0; b < B; b++) {
            size_t pos;
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            pos = (size_t)((rng >> 33) % (ntrain - (size_t)T));
            if ((st = et_lora_accumulate(&s, ids + pos, ids + pos + 1, T, 1.0f / (float)B, &loss)) != ET_OK) {
                fprintf(stderr, "edgetrain finetune: error: step %d: %s\n", k, et_status_str(st));
                goto done;
            }
            sum += loss;
        }
        et_lora_step(&s, lr, wd);
        if (k % log_every == 0 || k == steps) printf("step %d/%d | loss %.4f\n", k, steps, sum / B);
    }
    if (val_loss(&s, ids + ntrain, nids - ntrain, T, val_win, &after) != ET_OK) goto done;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("trained %d steps x %d sequences in %.1f s (%.3f s per sequence)\n", steps, B, secs, secs / ((double)steps * B));
    printf("val loss after %.4f (%+.4f); arena high-water %zu bytes %s plan %zu\n", after, after - before, ar.high_water,
           ar.high_water == p.total ? "=" : "!=", p.total);
    snprintf(path, sizeof path, "%s/adapters.etlora", out);
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "edgetrain finetune: error: %s: cannot create folder: %s\n", out, strerror(errno));
        goto done;
    }
    if (et_lora_save(path, &s, &e) != ET_OK) { fprintf(stderr, "edgetrain finetune: error: %s\n", e.msg); goto done; }
    printf("wrote %s (%zu trained parameters)\n", path, s.nparams);
merged:
    if (merge) {
        size_t n = 0;
        if (et_image_export_merged(merge, ET_IMAGE_FMT_BIN, &s, &im, &n, &e) != ET_OK) {
            fprintf(stderr, "edgetrain finetune: error: %s\n", e.msg);
            goto done;
        }
        printf("wrote %s (adapters merged, image %zu bytes)\n", merge, n);
    }
    rc = 0;
done:
    free(abuf); free(text); free(ids); free(mem);
    et_tok_free(tok);
    return rc;
}
