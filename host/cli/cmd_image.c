/* cmd_image.c - device images on the host, through the same freestanding forward a board
 * runs (compress/et_lora.h):
 *   eval   --image M.etimg [--adapters A.etlora] --data FILE   mean next-token loss
 *   sample --image M.etimg [--adapters A.etlora] --prompt ...   text (generate.c's loop)
 *   merge  --image M.etimg --adapters A.etlora --out N.etimg    adapters folded into a new image
 * eval and sample reach here from main.c through cmd_image_hook() when --image is given.
 * --data is an llm.c token shard or plain text (tokenized with the image's tokenizer, as
 * finetune does); --val-frac picks the held-out end finetune reports on, so the two print
 * the same number. An image alone runs as a rank-1 session whose B is zero, which is
 * exactly the image's model. Adapters with a task head (finetune --head) make eval a
 * classifier: --data is labelled lines (labelled.c) and it prints the accuracy.
 * Deliberately avoids: a second generation loop, and any second forward for images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd_image.h"
#include "et_image_file.h"
#include "et_lora_file.h"
#include "et_shard.h"
#include "et_tokenizer.h"
#include "flags.h"
#include "generate.h"
#include "labelled.h"

#define NF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int fail(const char *cmd, const et_error *e)
{
    fprintf(stderr, "edgetrain %s: error: %s\n", cmd, e->msg[0] ? e->msg : et_status_str(e->status));
    return 1;
}

/* the image's tokenizer, or NULL with a message */
static et_tokenizer *image_tok(const char *cmd, const char *path, const et_image *im)
{
    et_tokenizer *tok = NULL;
    et_error e = {0};
    if (!im->tokenizer) {
        fprintf(stderr, "edgetrain %s: error: %s has no tokenizer inside (export it from a checkpoint that has one)\n", cmd,
                path);
        return NULL;
    }
    if (et_tok_deserialize(im->tokenizer, im->tokenizer_bytes, &tok, &e) != ET_OK) {
        fprintf(stderr, "edgetrain %s: error: %s: tokenizer: %s\n", cmd, path, e.msg);
        return NULL;
    }
    if ((int)et_tok_vocab_size(tok) > im->cfg.vocab) {
        fprintf(stderr, "edgetrain %s: error: %s: tokenizer vocabulary %u is larger than the model's %d\n", cmd, path,
                et_tok_vocab_size(tok), im->cfg.vocab);
        et_tok_free(tok);
        return NULL;
    }
    return tok;
}

/* tokens of FILE: an llm.c shard as is, anything else as text through the image's tokenizer */
static int load_tokens(const char *data, const char *image, const et_image *im, int **out, size_t *n)
{
    FILE *fp = fopen(data, "rb");
    unsigned char m[4] = {0, 0, 0, 0};
    et_error e = {0};
    size_t i;
    *out = NULL;
    *n = 0;
    if (!fp) { fprintf(stderr, "edgetrain eval: error: %s: cannot open\n", data); return 1; }
    i = fread(m, 1, 4, fp);
    fclose(fp);
    if (i == 4 && ((uint32_t)m[0] | (uint32_t)m[1] << 8 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 24) == ET_SHARD_MAGIC) {
        uint16_t *t = NULL;
        if (et_shard_read(data, &t, n, &e) != ET_OK) return fail("eval", &e);
        if (!(*out = malloc(sizeof(int) * (*n + 1)))) { free(t); fprintf(stderr, "edgetrain eval: error: out of memory\n"); return 1; }
        for (i = 0; i < *n; i++) {
            if (t[i] >= im->cfg.vocab) {
                fprintf(stderr, "edgetrain eval: error: %s: token %u at position %zu is outside the vocabulary of %s (%d)\n",
                        data, t[i], i, image, im->cfg.vocab);
                free(t);
                return 1;
            }
            (*out)[i] = t[i];
        }
        free(t);
        return 0;
    } else {
        et_tokenizer *tok = image_tok("eval", image, im);
        char *text = NULL;
        int32_t *ids = NULL;
        size_t tn = 0, unk = 0, got = 0;
        int rc = 1;
        long len;
        if (!tok) return 1;
        if (!(fp = fopen(data, "rb")) || fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
            if (fp) fclose(fp);
            fprintf(stderr, "edgetrain eval: error: %s: cannot read\n", data);
            et_tok_free(tok);
            return 1;
        }
        tn = (size_t)len;
        text = malloc(tn + 1);
        ids = malloc(sizeof(int32_t) * (tn + 1));
        *out = malloc(sizeof(int) * (tn + 1));
        if (!text || !ids || !*out || fread(text, 1, tn, fp) != tn) {
            fprintf(stderr, "edgetrain eval: error: %s: read failed\n", data);
        } else if (et_tok_encode_i32(tok, text, tn, ids, tn + 1, &got, ET_TOK_SKIP_UNKNOWN, &unk) != ET_OK) {
            fprintf(stderr, "edgetrain eval: error: %s: cannot tokenize with the tokenizer of %s\n", data, image);
        } else {
            if (unk) fprintf(stderr, "edgetrain eval: warning: skipped %zu characters of %s the image's tokenizer lacks\n", unk, data);
            for (i = 0; i < got; i++) (*out)[i] = ids[i];
            *n = got;
            rc = 0;
        }
        fclose(fp);
        free(text);
        free(ids);
        et_tok_free(tok);
        return rc;
    }
}

// --- eval

/* eval of a head: accuracy over the labelled lines (the held-out ones with --val-frac) */
static int head_eval(et_lora *s, const et_image *im, const char *image, const char *adapters, const char *data, int T,
                     float valfrac)
{
    et_tokenizer *tok = image_tok("eval", image, im);
    cli_labelled d;
    cli_accuracy a;
    et_status st;
    int every = cli_labelled_every(valfrac);
    if (!tok) return 1;
    if (cli_labelled_read("eval", data, tok, s->lc.head_classes, &d)) { et_tok_free(tok); return 1; }
    et_tok_free(tok);
    if (d.unknown) fprintf(stderr, "edgetrain eval: warning: skipped %zu characters of %s the image's tokenizer lacks\n", d.unknown, data);
    if ((st = cli_labelled_accuracy(s, &d, every, every ? 1 : -1, T, &a)) != ET_OK || !a.n) {
        fprintf(stderr, "edgetrain eval: error: %s: %s\n", data, st != ET_OK ? et_status_str(st) : "no held-out example");
        cli_labelled_free(&d);
        return 1;
    }
    printf("eval %s + %s: a %d-class head over the %s; %d examples of %s (%s), up to %d tokens each (%d truncated)\n", image,
           adapters, s->lc.head_classes, s->lc.head_pool == ET_LORA_POOL_LAST ? "last token" : "mean of the tokens", a.n,
           data, every ? "the held-out lines" : "all lines", T, a.truncated);
    printf("accuracy %.4f (%d/%d)\nloss %.6f\nalways class %d: %.4f\n", (double)a.right / a.n, a.right, a.n, a.loss,
           a.majority, (double)a.majority_n / a.n);
    cli_labelled_free(&d);
    return 0;
}

static int image_eval(int argc, char **argv)
{
    const char *image = NULL, *adapters = NULL, *data = NULL;
    int T = 0, windows = 0, help = 0, rc = 1, k = 0;
    float valfrac = 0.0f;
    flag f[] = {
        {"image", 0, F_STR, &image, "device image (.etimg)"},
        {"adapters", 0, F_STR, &adapters, "LoRA adapters to apply on top (.etlora from finetune)"},
        {"data", 'd', F_STR, &data, "token shard (.bin) or plain text (tokenized with the image's tokenizer)"},
        {"seq", 't', F_INT, &T, "tokens per window (0: min(64, the image's context))"},
        {"windows", 0, F_INT, &windows, "consecutive windows to average (0: all that fit)"},
        {"val-frac", 0, F_FLOAT, &valfrac, "evaluate only finetune's held-out part: the last share of the tokens (with a "
                                           "head: every round(1/F)-th line); 0: all"},
    };
    et_image im;
    et_lora s;
    et_error e = {0};
    void *mem = NULL, *arena = NULL;
    int *toks = NULL;
    size_t n = 0, start, pos;
    double sum = 0.0;
    if (flags_parse("eval", f, NF(f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("eval", "Mean next-token loss of a device image, with or without LoRA adapters, through the "
                    "on-device forward.", f, NF(f));
        return 0;
    }
    if (!image || !data || T < 0 || windows < 0 || !(valfrac >= 0 && valfrac < 1)) {
        fprintf(stderr, "edgetrain eval: --image and --data are required; -t and --windows >= 0; --val-frac in [0,1)\n");
        return 2;
    }
    if (et_image_read(image, &mem, &im, &e) != ET_OK) return fail("eval", &e);
    if (T == 0) T = im.cfg.context < 64 ? im.cfg.context : 64;
    if (adapters) { /* a head classifies labelled lines instead */
        et_lora_file_info in;
        if (et_lora_file_info_read(adapters, &in, &e) != ET_OK) { fail("eval", &e); goto done; }
        if (in.head_classes) {
            if (et_lora_open(adapters, &im, image, T, &s, &arena, &e) != ET_OK) { fail("eval", &e); goto done; }
            rc = head_eval(&s, &im, image, adapters, data, T, valfrac);
            goto done;
        }
    }
    if (load_tokens(data, image, &im, &toks, &n)) goto done;
    start = valfrac > 0 ? (size_t)((double)n * (1.0 - valfrac)) : 0;
    if (n - start < (size_t)T + 1) {
        fprintf(stderr, "edgetrain eval: error: %s: %zu tokens%s is too few for one window of T=%d\n", data, n - start,
                valfrac > 0 ? " held out" : "", T);
        goto done;
    }
    if (et_lora_open(adapters, &im, image, T, &s, &arena, &e) != ET_OK) { fail("eval", &e); goto done; }
    for (pos = start; pos + (size_t)T + 1 <= n && (windows == 0 || k < windows); pos += (size_t)T, k++) {
        float l;
        et_status st = et_lora_loss(&s, toks + pos, toks + pos + 1, T, &l);
        if (st != ET_OK) {
            fprintf(stderr, "edgetrain eval: error: window at token %zu: %s\n", pos, et_status_str(st));
            goto done;
        }
        sum += l;
    }
    printf("eval %s%s%s: %d windows of %d tokens from %s (tokens %zu..%zu of %zu)\n", image, adapters ? " + " : "",
           adapters ? adapters : "", k, T, data, start, start + (size_t)k * (size_t)T, n);
    printf("loss %.6f\n", sum / k);
    rc = 0;
done:
    free(arena);
    free(toks);
    free(mem);
    return rc;
}

// --- sample

typedef struct { et_lora *s; int *buf; } lora_model;

static et_status lora_logits(void *model, const int32_t *ids, int T, float *logits)
{
    lora_model *m = (lora_model *)model;
    int i;
    for (i = 0; i < T; i++) m->buf[i] = ids[i];
    return et_lora_logits(m->s, m->buf, T, logits);
}

static int image_sample(int argc, char **argv)
{
    const char *image = NULL, *adapters = NULL;
    int help = 0, rc = 1;
    cli_gen_opts go;
    flag f[] = {
        {"image", 0, F_STR, &image, "device image (.etimg)"},
        {"adapters", 0, F_STR, &adapters, "LoRA adapters to apply on top (.etlora from finetune)"},
        CLI_GEN_FLAGS(go),
    };
    et_image im;
    et_lora s;
    et_error e = {0};
    et_tokenizer *tok = NULL;
    void *mem = NULL, *arena = NULL;
    lora_model m = {&s, NULL};
    cli_gen_defaults(&go);
    if (flags_parse("sample", f, NF(f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("sample", "Generates text from a device image, with or without LoRA adapters, through the "
                    "on-device forward.", f, NF(f));
        return 0;
    }
    if (!image || !cli_gen_valid(&go)) {
        fprintf(stderr, "edgetrain sample: --image is required; --length, --top-k and --temperature must be >= 0\n");
        return 2;
    }
    if (et_image_read(image, &mem, &im, &e) != ET_OK) return fail("sample", &e);
    if (!(tok = image_tok("sample", image, &im))) goto done;
    if (et_lora_open(adapters, &im, image, im.cfg.context, &s, &arena, &e) != ET_OK) { fail("sample", &e); goto done; }
    if (s.lc.head_classes) {
        fprintf(stderr, "edgetrain sample: error: %s has a %d-class task head: it classifies (eval --data lines "
                "text<TAB>class), it does not generate text\n", adapters, s.lc.head_classes);
        goto done;
    }
    if (!(m.buf = malloc(sizeof(int) * (size_t)im.cfg.context))) { fprintf(stderr, "edgetrain sample: error: out of memory\n"); goto done; }
    go.context = im.cfg.context; go.vocab = im.cfg.vocab;
    rc = cli_generate(&go, tok, lora_logits, &m);
done:
    free(m.buf);
    free(arena);
    et_tok_free(tok);
    free(mem);
    return rc;
}

int cmd_image_hook(const char *cmd, int argc, char **argv, int *rc)
{
    int i, found = 0;
    for (i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--image") || !strncmp(argv[i], "--image=", 8) || !strcmp(argv[i], "--adapters") ||
            !strncmp(argv[i], "--adapters=", 11))
            found = 1;
    if (!found) return 0;
    if (!strcmp(cmd, "eval")) *rc = image_eval(argc, argv);
    else if (!strcmp(cmd, "sample")) *rc = image_sample(argc, argv);
    else return 0;
    return 1;
}

// --- merge

int cmd_merge(int argc, char **argv)
{
    const char *image = NULL, *adapters = NULL, *out = NULL, *format = "image";
    int help = 0, rc = 1;
    flag f[] = {
        {"image", 0, F_STR, &image, "device image the adapters were trained on (.etimg)"},
        {"adapters", 0, F_STR, &adapters, "LoRA adapters (.etlora from finetune)"},
        {"out", 'o', F_STR, &out, "new image with the adapters folded into its int8 weights"},
        {"format", 'f', F_STR, &format, "image (.etimg) | c (the image as a C array)"},
    };
    et_image im;
    et_lora s;
    et_error e = {0};
    void *mem = NULL, *arena = NULL;
    size_t n = 0;
    if (flags_parse("merge", f, NF(f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("merge", "Folds LoRA adapters into a device image: W + (alpha/r) B A, re-quantized per channel.", f,
                    NF(f));
        return 0;
    }
    if (!image || !adapters || !out || (strcmp(format, "image") && strcmp(format, "c"))) {
        fprintf(stderr, "edgetrain merge: --image, --adapters and --out are required; --format image or c\n");
        return 2;
    }
    if (et_image_read(image, &mem, &im, &e) != ET_OK) return fail("merge", &e);
    if (et_lora_open(adapters, &im, image, 1, &s, &arena, &e) != ET_OK) { fail("merge", &e); goto done; }
    if (s.lc.head_classes) {
        fprintf(stderr, "edgetrain merge: error: %s has a %d-class task head, which an image has no place for; run it as "
                "eval --image %s --adapters %s\n", adapters, s.lc.head_classes, image, adapters);
        goto done;
    }
    if (et_image_export_merged(out, format[0] == 'c' ? ET_IMAGE_FMT_C : ET_IMAGE_FMT_BIN, &s, &im, &n, &e) != ET_OK) {
        fail("merge", &e);
        goto done;
    }
    printf("merged %s (rank %d on the last %d layers) into %s: image %zu bytes\n", adapters, s.lc.rank, s.lc.layers, out, n);
    rc = 0;
done:
    free(arena);
    free(mem);
    return rc;
}
