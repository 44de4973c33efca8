/* cmd_compress.c - `edgetrain compress`, and `eval` / `sample` on compressed models.
 *
 * main.c dispatches `compress` here and, at the top of cmd_eval and cmd_sample, asks
 * cmd_qmodel_hook() whether --model names a quantized-model or compact-model file; if so
 * the command runs here with the same flags (the int8 path, or the compact path that runs
 * pruned, factored and int8 matrices from their storage), so main.c needs no other change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd_compress.h"
#include "et_compress.h"
#include "et_runtime.h"
#include "et_qruntime.h"
#include "et_shard.h"
#include "et_sparse.h"
#include "et_tokenizer.h"
#include "flags.h"
#include "generate.h"

#define NF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int fail(const char *cmd, const et_error *e)
{
    fprintf(stderr, "edgetrain %s: error: %s\n", cmd, e->msg[0] ? e->msg : et_status_str(e->status));
    return 1;
}

int cmd_compress(int argc, char **argv)
{
    et_compress_opts o;
    et_compress_report r;
    et_error e = {0};
    const char *quant = NULL, *calib = "percentile", *prune = NULL, *lowrank = NULL, *pscore = NULL;
    float pct;
    int help = 0, quiet = 0, aware = 0, i;
    flag f[] = {
        {"model", 'm', F_STR, NULL, "fp32 checkpoint to compress (edgetrain or llm.c)"},
        {"data", 'd', F_STR, NULL, "evaluation shard (.bin): validation tokens"},
        {"calib-data", 0, F_STR, NULL, "calibration shard (default: train.bin beside --data, else --data)"},
        {"quant", 0, F_STR, &quant, "w8a8 (int8 weights and activations) | w8a32 (int8 weights only)"},
        {"calib", 0, F_STR, &calib, "activation ranges: percentile | minmax"},
        {"percentile", 0, F_FLOAT, NULL, "percent of values kept at each end (percentile calibration)"},
        {"calib-batches", 0, F_INT, NULL, "calibration batches"},
        {"batch", 'b', F_INT, NULL, "sequences per batch (calibration and evaluation)"},
        {"seq", 't', F_INT, NULL, "tokens per sequence"},
        {"eval-batches", 0, F_INT, NULL, "evaluation batches (0: the whole shard)"},
        {"threads", 0, F_INT, NULL, "worker threads (1: single-thread figures; 0: all cores)"},
        {"out", 'o', F_STR, NULL, "compressed model file (report beside it: .report.md, .report.json)"},
        {"quiet", 'q', F_BOOL, &quiet, "no progress lines"},
        {"prune", 0, F_STR, &prune, "magnitude pruning of the block matrices: a sparsity (0.5) or N:M (2:4); or "
                                    "structured: heads=N (heads kept per layer), ffn=F or neurons=0.5 (MLP "
                                    "neurons kept / share removed), comma-joined"},
        {"finetune-steps", 0, F_INT, NULL, "AdamW steps after low-rank / pruning, masks held (0: none)"},
        {"finetune-lr", 0, F_FLOAT, NULL, "fine-tune learning rate (constant)"},
        {"finetune-batch", 0, F_INT, NULL, "fine-tune sequences per step"},
        {"lowrank", 0, F_STR, &lowrank, "truncated SVD of the MLP matrices, run as two matmuls: energy=0.9 | "
                                        "params=0.5 | rank=R"},
        {"lowrank-aware", 0, F_BOOL, &aware, "activation-aware SVD (channels scaled by calibration activations)"},
        {"prune-score", 0, F_STR, &pscore, "structured pruning's importance: act (calibration activations, "
                                           "default) | weight (weight norms)"},
    };
    et_compress_opts_init(&o);
    f[14].ptr = &o.ft.steps; f[15].ptr = &o.ft.lr; f[16].ptr = &o.ft.B;
    pct = 100.0f * o.pct;
    f[0].ptr = &o.model; f[1].ptr = &o.data; f[2].ptr = &o.calib_data; f[5].ptr = &pct;
    f[6].ptr = &o.calib_batches; f[7].ptr = &o.B; f[8].ptr = &o.T; f[9].ptr = &o.eval_batches;
    f[10].ptr = &o.threads; f[11].ptr = &o.out;
    if (flags_parse("compress", f, NF(f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("compress", "Compresses an fp32 model and reports size, loss and speed after every pass. "
                    "Passes combine in this order: --lowrank, --prune, --finetune-steps, --quant; with "
                    "--prune or --lowrank the output is a compact model run from its own storage.", f, NF(f));
        return 0;
    }
    if (!o.model || !o.data || !o.out || (!quant && !prune && !lowrank)) {
        fprintf(stderr, "edgetrain compress: --model, --data, --out and a pass (--quant, --prune, --lowrank) are "
                        "required\n");
        return 2;
    }
    if (lowrank && et_lowrank_spec_parse(lowrank, &o.lowrank, &e) != ET_OK) {
        fprintf(stderr, "edgetrain compress: %s\n", e.msg);
        return 2;
    }
    if (aware && !lowrank) {
        fprintf(stderr, "edgetrain compress: --lowrank-aware goes with --lowrank\n");
        return 2;
    }
    o.lowrank.aware = aware;
    o.quant = 0;
    if (prune && (et_struct_spec_probe(prune) ? et_struct_spec_parse(prune, &o.sprune, &e)
                                              : et_prune_spec_parse(prune, &o.prune, &e)) != ET_OK) {
        fprintf(stderr, "edgetrain compress: %s\n", e.msg);
        return 2;
    }
    if (pscore && (!o.sprune.kind || (strcmp(pscore, "act") && strcmp(pscore, "weight")))) {
        fprintf(stderr, "edgetrain compress: --prune-score takes act or weight, with a structured --prune "
                        "(heads=, ffn=, neurons=)\n");
        return 2;
    }
    o.sprune.weights = pscore && !strcmp(pscore, "weight");
    o.sprune.calib_batches = o.calib_batches;
    if (o.ft.steps < 0 || !(o.ft.lr > 0) || o.ft.B <= 0) {
        fprintf(stderr, "edgetrain compress: --finetune-steps must be >= 0, --finetune-lr and --finetune-batch positive\n");
        return 2;
    }
    o.ft.threads = o.threads;
    o.ft.T = o.T;
    o.ft.progress = quiet ? NULL : stdout;
    if (!quant) {
    } else if (!strcmp(quant, "w8a8")) o.quant = ET_QMODE_W8A8;
    else if (!strcmp(quant, "w8a32")) o.quant = ET_QMODE_W8A32;
    else {
        fprintf(stderr, "edgetrain compress: --quant must be w8a8 or w8a32, got '%s'\n", quant);
        return 2;
    }
    if (!strcmp(calib, "percentile")) o.calib = ET_QCALIB_PERCENTILE;
    else if (!strcmp(calib, "minmax")) o.calib = ET_QCALIB_MINMAX;
    else {
        fprintf(stderr, "edgetrain compress: --calib must be percentile or minmax, got '%s'\n", calib);
        return 2;
    }
    if (!(pct > 50.0f && pct <= 100.0f) || o.calib_batches <= 0 || o.B <= 0 || o.T <= 0 || o.eval_batches < 0 ||
        o.threads < 0) {
        fprintf(stderr, "edgetrain compress: --percentile must be in (50, 100], --calib-batches, --batch and "
                        "--seq positive, --eval-batches and --threads >= 0\n");
        return 2;
    }
    o.pct = pct / 100.0f;
    o.progress = quiet ? NULL : stdout;
    if (et_compress(&o, &r, &e) != ET_OK) return fail("compress", &e);
    for (i = 1; i < r.n; i++)
        printf("%s: weights %.2fx smaller (%zu -> %zu bytes), val loss %.4f -> %.4f (%+.2f%%), "
               "%.0f -> %.0f tok/s (%.2fx)\n", r.st[i].name,
               (double)r.st[0].weight_bytes / (double)r.st[i].weight_bytes, r.st[0].weight_bytes,
               r.st[i].weight_bytes, r.st[0].loss, r.st[i].loss,
               100.0 * (r.st[i].loss - r.st[0].loss) / r.st[0].loss, r.st[0].tok_s, r.st[i].tok_s,
               r.st[i].tok_s / r.st[0].tok_s);
    printf("wrote %s, %s, %s\n", o.out, r.md_path, r.json_path);
    return 0;
}

// --- eval and sample on a quantized model

/* a compact-model file: run from its compact storage (et_cgpt) */
static int sparse_eval(const char *model, const char *data, int B, int T, int batches, int threads)
{
    et_sparse_model f;
    et_cruntime rt;
    et_error e = {0};
    uint16_t *toks = NULL;
    size_t n = 0, i;
    float loss;
    int rc = 0;
    if (!data) { fprintf(stderr, "edgetrain eval: --data is required\n"); return 2; }
    if (batches <= 0) { fprintf(stderr, "edgetrain eval: --batches must be positive\n"); return 2; }
    if (et_sparse_load(model, &f, &e) != ET_OK) return fail("eval", &e);
    if (et_shard_read(data, &toks, &n, &e) != ET_OK) { et_sparse_free(&f); return fail("eval", &e); }
    for (i = 0; i < n; i++)
        if (toks[i] >= f.cfg.vocab) {
            fprintf(stderr, "edgetrain eval: error: %s: token %u at position %zu is outside the model's "
                    "vocabulary of %d\n", data, toks[i], i, f.cfg.vocab);
            free(toks); et_sparse_free(&f);
            return 1;
        }
    if (et_cruntime_open(&rt, &f, B, T, threads, &e) != ET_OK) {
        free(toks); et_sparse_free(&f);
        return fail("eval", &e);
    }
    if (et_eval_windows(et_fwd_cgpt, &rt.model, toks, n, B, T, batches, &loss, NULL, NULL, &e) != ET_OK)
        rc = fail("eval", &e);
    else
        printf("loss %.6f\n", loss);
    et_cruntime_close(&rt);
    free(toks);
    et_sparse_free(&f);
    return rc;
}

static int qeval(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *backend = "cpu";
    int B = 8, T = 64, batches = 20, threads = 0, help = 0, rc = 0;
    flag f[] = {
        {"model", 'm', F_STR, &model, "checkpoint (edgetrain, llm.c or quantized)"},
        {"data", 'd', F_STR, &data, "token shard (.bin)"},
        {"batch", 'b', F_INT, &B, "sequences per batch"},
        {"seq", 't', F_INT, &T, "tokens per sequence"},
        {"batches", 0, F_INT, &batches, "batches to average over"},
        {"threads", 0, F_INT, &threads, "worker threads (0: all cores)"},
        {"backend", 0, F_STR, &backend, "cpu"},
    };
    et_qmodel q;
    et_qruntime rt;
    et_error e = {0};
    uint16_t *toks = NULL;
    size_t n = 0, i;
    float loss;
    if (flags_parse("eval", f, NF(f), argc, argv, &help)) return 2;
    if (strcmp(backend, "cpu")) {
        fprintf(stderr, "edgetrain eval: error: quantized and compact models run on the cpu backend only\n");
        return 1;
    }
    if (et_sparse_probe(model)) return sparse_eval(model, data, B, T, batches, threads);
    if (!data) { fprintf(stderr, "edgetrain eval: --data is required\n"); return 2; }
    if (batches <= 0) { fprintf(stderr, "edgetrain eval: --batches must be positive\n"); return 2; }
    if (et_qmodel_load(model, &q, &e) != ET_OK) return fail("eval", &e);
    if (et_shard_read(data, &toks, &n, &e) != ET_OK) { et_qmodel_free(&q); return fail("eval", &e); }
    for (i = 0; i < n; i++)
        if (toks[i] >= q.cfg.vocab) {
            fprintf(stderr, "edgetrain eval: error: %s: token %u at position %zu is outside the model's "
                    "vocabulary of %d\n", data, toks[i], i, q.cfg.vocab);
            free(toks); et_qmodel_free(&q);
            return 1;
        }
    if (et_qruntime_open(&rt, &q, B, T, threads, &e) != ET_OK) {
        free(toks); et_qmodel_free(&q);
        return fail("eval", &e);
    }
    if (et_eval_windows(et_fwd_qgpt, &rt.model, toks, n, B, T, batches, &loss, NULL, NULL, &e) != ET_OK)
        rc = fail("eval", &e);
    else
        printf("loss %.6f\n", loss);
    et_qruntime_close(&rt);
    free(toks);
    et_qmodel_free(&q);
    return rc;
}

static et_status q_cgpt_logits(void *model, const int32_t *ids, int T, float *logits)
{
    et_status s = et_cgpt_forward((et_cgpt *)model, ids, NULL, 1, T);
    return s != ET_OK ? s : et_cgpt_logits((et_cgpt *)model, 0, T - 1, logits);
}

static et_status q_qgpt_logits(void *model, const int32_t *ids, int T, float *logits)
{
    et_status s = et_qgpt_forward((et_qgpt *)model, ids, NULL, 1, T);
    return s != ET_OK ? s : et_qgpt_logits((et_qgpt *)model, 0, T - 1, logits);
}

static int qsample(int argc, char **argv)
{
    const char *model = NULL, *tokpath = NULL, *backend = "cpu";
    int threads = 1, help = 0, rc = 0, sparse;
    cli_gen_opts go;
    flag f[] = {
        {"model", 'm', F_STR, &model, "checkpoint"},
        {"tokenizer", 0, F_STR, &tokpath, "tokenizer file (default: the one inside the model)"},
        CLI_GEN_FLAGS(go),
        {"threads", 0, F_INT, &threads, "worker threads (0: all cores)"},
        {"backend", 0, F_STR, &backend, "cpu"},
    };
    et_qmodel q;
    et_sparse_model c;
    et_qruntime qrt;
    et_cruntime rt;
    et_tokenizer *tok = NULL;
    et_error e = {0};
    et_gpt_config cfg;
    const void *tokblob;
    size_t tokbytes;
    memset(&q, 0, sizeof q);
    memset(&c, 0, sizeof c);
    cli_gen_defaults(&go);
    if (flags_parse("sample", f, NF(f), argc, argv, &help)) return 2;
    if (!cli_gen_valid(&go)) {
        fprintf(stderr, "edgetrain sample: --length, --top-k and --temperature must be >= 0\n");
        return 2;
    }
    sparse = et_sparse_probe(model);
    if (sparse ? et_sparse_load(model, &c, &e) != ET_OK : et_qmodel_load(model, &q, &e) != ET_OK)
        return fail("sample", &e);
    cfg = sparse ? c.cfg : q.cfg;
    tokblob = sparse ? c.tokenizer : q.tokenizer;
    tokbytes = sparse ? c.tokenizer_bytes : q.tokenizer_bytes;
    if (tokpath ? et_tok_load(tokpath, &tok, &e) != ET_OK
                : tokbytes ? et_tok_deserialize(tokblob, tokbytes, &tok, &e) != ET_OK
                           : (et_error_set(&e, ET_ERR_INVALID, "%s has no tokenizer inside; pass "
                                           "--tokenizer FILE", model), 1)) {
        rc = fail("sample", &e);
        goto out;
    }
    if ((int)et_tok_vocab_size(tok) > cfg.vocab) {
        fprintf(stderr, "edgetrain sample: error: tokenizer vocabulary %u is larger than the model's %d\n",
                et_tok_vocab_size(tok), cfg.vocab);
        rc = 1;
        goto out;
    }
    if (sparse ? et_cruntime_open(&rt, &c, 1, cfg.context, threads, &e) != ET_OK
               : et_qruntime_open(&qrt, &q, 1, cfg.context, threads, &e) != ET_OK) {
        rc = fail("sample", &e);
        goto out;
    }
    go.context = cfg.context; go.vocab = cfg.vocab;
    rc = sparse ? cli_generate(&go, tok, q_cgpt_logits, &rt.model) : cli_generate(&go, tok, q_qgpt_logits, &qrt.model);
    if (sparse) et_cruntime_close(&rt);
    else et_qruntime_close(&qrt);
out:
    et_tok_free(tok);
    et_qmodel_free(&q);
    et_sparse_free(&c);
    return rc;
}

int cmd_qmodel_hook(const char *cmd, int argc, char **argv, int *rc)
{
    const char *model = NULL;
    int i;
    for (i = 0; i < argc; i++) {
        if ((!strcmp(argv[i], "--model") || !strcmp(argv[i], "-m")) && i + 1 < argc) model = argv[i + 1];
        else if (!strncmp(argv[i], "--model=", 8)) model = argv[i] + 8;
    }
    if (!model || (!et_qmodel_probe(model) && !et_sparse_probe(model))) return 0;
    if (!strcmp(cmd, "eval")) *rc = qeval(argc, argv);
    else if (!strcmp(cmd, "sample")) *rc = qsample(argc, argv);
    else return 0;
    return 1;
}
