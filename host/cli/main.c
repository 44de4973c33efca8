/* main.c - the edgetrain command line: prepare, train, eval, sample, info, export.
 * Every failure prints one line naming the file and the problem and exits non-zero;
 * library calls return statuses, this file turns them into messages and exit codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_accel.h" /* et_accel_check: --precision bf16 */
#include "et_ckpt.h"
#include "et_prepare.h"
#include "et_runtime.h"
#include "et_shard.h"
#include "et_tokenizer.h"
#include "et_train.h"
#include "et_qat_train.h"
#include "flags.h"
#include "generate.h"
#include "cmd_compress.h" /* compress; eval/sample of quantized models */
#include "et_image_file.h" /* export --format image|c */
#include "cmd_image.h"     /* eval/sample --image [--adapters], merge */

#define NF(a) ((int)(sizeof(a) / sizeof((a)[0])))
int cmd_devices(int argc, char **argv); /* cmd_devices.c */
int cmd_plan(int argc, char **argv);     /* cmd_plan.c */
int cmd_finetune(int argc, char **argv); /* cmd_finetune.c */

static int fail(const char *cmd, const et_error *e)
{
    fprintf(stderr, "edgetrain %s: error: %s\n", cmd, e->msg[0] ? e->msg : et_status_str(e->status));
    return 1;
}

/* --precision: fp32 leaves the backend name as it is; bf16 appends "+bf16" (et_accel.h),
 * which every backend but cuda refuses, before any data is read */
#define PRECISION_HELP "fp32 | bf16 (bf16: fp32 master weights, bf16 GEMMs; cuda only, docs/GPU.md)"
static int with_precision(const char *cmd, const char *prec, const char **backend, char *buf,
                          size_t cap)
{
    et_error e = {0};
    if (!strcmp(prec, "fp32")) return 0;
    if (strcmp(prec, "bf16")) {
        fprintf(stderr, "edgetrain %s: --precision must be fp32 or bf16, got '%s'\n", cmd, prec);
        return 2;
    }
    if (strchr(*backend, '+')) {
        fprintf(stderr, "edgetrain %s: --precision with a backend that names one ('%s'): give it once\n",
                cmd, *backend);
        return 2;
    }
    snprintf(buf, cap, "%s+bf16", *backend);
    *backend = buf;
    return et_accel_check(buf, &e) != ET_OK ? fail(cmd, &e) : 0;
}

/* --- prepare */
static int cmd_prepare(int argc, char **argv)
{
    multi_str inputs = {{0}, 0};
    const char *tokz = "char", *out = NULL;
    int vocab = 0, help = 0, noclean = 0, dedup = 64;
    float valfrac = 0.1f;
    flag f[] = {
        {"input", 'i', F_MULTI, &inputs, "text file (repeat for several)"},
        {"tokenizer", 0, F_STR, &tokz, "char | bpe"},
        {"vocab", 0, F_INT, &vocab, "bpe vocabulary size, 256..65535 (0: 512)"},
        {"val-frac", 0, F_FLOAT, &valfrac, "share of tokens for validation (the end of the text)"},
        {"dedup-min-len", 0, F_INT, &dedup, "drop repeated lines at least this long (0: keep all)"},
        {"no-clean", 0, F_BOOL, &noclean, "skip text cleaning"},
        {"out", 'o', F_STR, &out, "output folder (train.bin, val.bin, tokenizer.bin)"},
    };
    et_prepare_opts o;
    et_prepare_report r;
    et_error e = {0};
    if (flags_parse("prepare", f, NF(f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("prepare", "Cleans text, trains a tokenizer and writes llm.c token shards.", f, NF(f));
        return 0;
    }
    if (!inputs.n || !out) {
        fprintf(stderr, "edgetrain prepare: --input and --out are required\n");
        return 2;
    }
    et_prepare_opts_init(&o);
    o.inputs = inputs.v;
    o.n_inputs = (size_t)inputs.n;
    if (!strcmp(tokz, "char")) o.tokenizer = ET_TOK_CHAR;
    else if (!strcmp(tokz, "bpe")) o.tokenizer = ET_TOK_BPE;
    else {
        fprintf(stderr, "edgetrain prepare: --tokenizer must be char or bpe, got '%s'\n", tokz);
        return 2;
    }
    if (vocab < 0 || valfrac < 0 || valfrac >= 1 || dedup < 0) {
        fprintf(stderr, "edgetrain prepare: --vocab and --dedup-min-len must be >= 0 and --val-frac in [0, 1)\n");
        return 2;
    }
    o.vocab = (uint32_t)vocab;
    o.val_frac = valfrac;
    o.out_dir = out;
    o.clean = !noclean;
    o.clean_opts.dedup_min_len = (size_t)dedup;
    if (et_prepare(&o, &r, &e) != ET_OK) return fail("prepare", &e);
    printf("prepared %s: %zu bytes in, %zu after cleaning; %s tokenizer, vocab %u; "
           "%zu train + %zu val tokens\n", out, r.bytes_in, r.bytes_clean,
           r.tokenizer == ET_TOK_CHAR ? "char" : "bpe", r.vocab, r.train_tokens, r.val_tokens);
    return 0;
}

/* --- train */
static int cmd_train(int argc, char **argv)
{
    et_train_opts o;
    et_train_result r;
    const char *prec = "fp32";
    char spec[160];
    int prc;
    et_error e = {0};
    const char *sched = "cosine", *qat_mode = NULL;
    int help = 0, seed, quiet = 0, qat = 0;
    flag f[] = {
        {"data", 'd', F_STR, NULL, "training shard (.bin)"},
        {"val-data", 0, F_STR, NULL, "validation shard (.bin)"},
        {"tokenizer", 0, F_STR, NULL, "tokenizer file (default: tokenizer.bin beside --data)"},
        {"model", 'm', F_STR, NULL, "start from these weights (edgetrain or llm.c checkpoint)"},
        {"resume", 0, F_STR, NULL, "resume this checkpoint exactly (optimizer and data position)"},
        {"out", 'o', F_STR, NULL, "output folder"},
        {"backend", 0, F_STR, NULL, "cpu | opencl[:P.D] | cuda[:N] (edgetrain devices lists them)"},
        {"layers", 0, F_INT, NULL, "transformer blocks (from scratch)"},
        {"heads", 0, F_INT, NULL, "attention heads"},
        {"channels", 0, F_INT, NULL, "embedding width"},
        {"context", 0, F_INT, NULL, "longest sequence the model takes"},
        {"batch", 'b', F_INT, NULL, "sequences per step"},
        {"seq", 't', F_INT, NULL, "tokens per sequence"},
        {"steps", 0, F_INT, NULL, "optimizer steps"},
        {"lr", 0, F_FLOAT, NULL, "peak learning rate"},
        {"lr-min", 0, F_FLOAT, NULL, "final learning rate of the cosine schedule"},
        {"wd", 0, F_FLOAT, NULL, "AdamW weight decay (0: off)"},
        {"beta2", 0, F_FLOAT, NULL, "AdamW beta2"},
        {"warmup", 0, F_INT, NULL, "linear warmup steps"},
        {"schedule", 0, F_STR, &sched, "cosine | constant"},
        {"clip", 0, F_FLOAT, NULL, "global gradient-norm clip (0: off)"},
        {"seed", 0, F_INT, NULL, "random seed"},
        {"threads", 0, F_INT, NULL, "worker threads (0: all cores)"},
        {"eval-every", 0, F_INT, NULL, "validate every N steps (0: only at the end)"},
        {"eval-batches", 0, F_INT, NULL, "batches per validation"},
        {"ckpt-every", 0, F_INT, NULL, "checkpoint every N steps (0: only at the end)"},
        {"log-every", 0, F_INT, NULL, "progress line every N steps"},
        {"sequential", 0, F_BOOL, NULL, "take batches in order from the start (no shuffling)"},
        {"quiet", 'q', F_BOOL, &quiet, "no progress lines"},
        {"precision", 0, F_STR, &prec, PRECISION_HELP},
        {"qat", 0, F_BOOL, &qat, "quantization-aware training: fake int8 quantization, writes model.etq too"},
        {"qat-mode", 0, F_STR, &qat_mode, "--qat: w8a8 (weights and activations, default) | w8a32 (weights)"},
        {"qat-decay", 0, F_FLOAT, &o.qat_decay, "--qat: moving-average decay of the activation ranges"},
    };
    et_train_opts_init(&o);
    seed = (int)o.seed;
    f[0].ptr = &o.data; f[1].ptr = &o.val_data; f[2].ptr = &o.tokenizer; f[3].ptr = &o.init_model;
    f[4].ptr = &o.resume; f[5].ptr = &o.out_dir; f[6].ptr = &o.backend; f[7].ptr = &o.layers;
    f[8].ptr = &o.heads; f[9].ptr = &o.channels; f[10].ptr = &o.context; f[11].ptr = &o.B;
    f[12].ptr = &o.T; f[13].ptr = &o.steps; f[14].ptr = &o.lr; f[15].ptr = &o.lr_min;
    f[16].ptr = &o.wd; f[17].ptr = &o.beta2; f[18].ptr = &o.warmup; f[20].ptr = &o.clip;
    f[21].ptr = &seed; f[22].ptr = &o.threads; f[23].ptr = &o.eval_every;
    f[24].ptr = &o.eval_batches; f[25].ptr = &o.ckpt_every; f[26].ptr = &o.log_every;
    f[27].ptr = &o.sequential;
    if (flags_parse("train", f, NF(f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("train", "Trains a GPT from scratch or from a checkpoint on token shards.", f, NF(f));
        return 0;
    }
    if (!strcmp(sched, "cosine")) o.schedule = ET_SCHED_COSINE;
    else if (!strcmp(sched, "constant")) o.schedule = ET_SCHED_CONSTANT;
    else {
        fprintf(stderr, "edgetrain train: --schedule must be cosine or constant, got '%s'\n", sched);
        return 2;
    }
    if (o.log_every <= 0 || o.eval_batches <= 0 || o.eval_every < 0 || o.ckpt_every < 0 || !(o.beta2 >= 0 && o.beta2 < 1)) {
        fprintf(stderr, "edgetrain train: --log-every and --eval-batches must be positive, "
                        "--eval-every and --ckpt-every >= 0, --beta2 in [0, 1)\n");
        return 2;
    }
    o.seed = (uint64_t)(unsigned)seed;
    o.progress = quiet ? NULL : stdout;
    if ((qat_mode || !(o.qat_decay >= 0 && o.qat_decay < 1)) && !qat) {
        fprintf(stderr, "edgetrain train: --qat-mode and --qat-decay go with --qat\n");
        return 2;
    }
    if (qat) {
        et_qmode qm;
        if (et_qat_mode_parse(qat_mode ? qat_mode : "w8a8", &qm, &e) != ET_OK) {
            fprintf(stderr, "edgetrain train: --qat-mode: %s\n", e.msg);
            return 2;
        }
        o.qat = (int)qm;
    }
    if ((prc = with_precision("train", prec, &o.backend, spec, sizeof spec))) return prc;
    if (et_train(&o, &r, &e) != ET_OK) return fail("train", &e);
    printf("trained %d steps in %.1f s (%.0f tok/s); last batch loss %.4f\n", r.steps_done, r.seconds,
           r.tok_per_s, r.last_loss);
    if (r.val_loss >= 0) printf("val loss %.4f%s\n", r.val_loss, o.qat ? " (fake-quantized)" : "");
    if (r.int8_val_loss >= 0) printf("int8 %s/model.etq val loss %.4f\n", o.out_dir, r.int8_val_loss);
    printf("wrote %s/model.etck, %s/log.csv, %s/loss.svg%s%s%s\n", o.out_dir, o.out_dir, o.out_dir,
           o.qat ? ", " : "", o.qat ? o.out_dir : "", o.qat ? "/model.etq" : "");
    return 0;
}

/* --- shared: load a model for inference */
static int load_model(const char *cmd, const char *path, const char *tokpath, et_ckpt *c,
                      et_tokenizer **tok, int need_tok)
{
    et_error e = {0};
    *tok = NULL;
    if (!path) {
        fprintf(stderr, "edgetrain %s: --model is required\n", cmd);
        return 2;
    }
    if (et_model_load(path, c, &e) != ET_OK) return fail(cmd, &e);
    if (tokpath) {
        if (et_tok_load(tokpath, tok, &e) != ET_OK) return fail(cmd, &e);
    } else if (c->tokenizer_bytes) {
        if (et_tok_deserialize(c->tokenizer, c->tokenizer_bytes, tok, &e) != ET_OK) return fail(cmd, &e);
    } else if (need_tok) {
        fprintf(stderr, "edgetrain %s: error: %s has no tokenizer inside; pass --tokenizer FILE\n", cmd, path);
        return 1;
    }
    if (*tok && (int)et_tok_vocab_size(*tok) > c->cfg.vocab) {
        fprintf(stderr, "edgetrain %s: error: tokenizer vocabulary %u is larger than the model's %d\n",
                cmd, et_tok_vocab_size(*tok), c->cfg.vocab);
        return 1;
    }
    return 0;
}

/* --- eval */
static int cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *backend = "cpu";
    const char *prec = "fp32";
    char spec[160];
    int B = 8, T = 64, batches = 20, threads = 0, help = 0, rc;
    flag f[] = {
        {"model", 'm', F_STR, &model, "checkpoint (edgetrain or llm.c)"},
        {"data", 'd', F_STR, &data, "token shard (.bin)"},
        {"batch", 'b', F_INT, &B, "sequences per batch"},
        {"seq", 't', F_INT, &T, "tokens per sequence"},
        {"batches", 0, F_INT, &batches, "batches to average over"},
        {"threads", 0, F_INT, &threads, "worker threads (0: all cores)"},
        {"backend", 0, F_STR, &backend, "cpu | opencl[:P.D] | cuda[:N] (edgetrain devices lists them)"},
        {"precision", 0, F_STR, &prec, PRECISION_HELP},
    };
    et_ckpt c;
    et_tokenizer *tok;
    et_runtime rt;
    et_error e = {0};
    uint16_t *toks = NULL;
    size_t n = 0, i;
    float loss;
    memset(&c, 0, sizeof c);
    if (cmd_qmodel_hook("eval", argc, argv, &rc)) return rc; /* quantized model: cmd_compress.c */
    if (cmd_image_hook("eval", argc, argv, &rc)) return rc;  /* device image: cmd_image.c */
    if (flags_parse("eval", f, NF(f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("eval", "Mean loss of a model over consecutive batches of a shard.", f, NF(f));
        return 0;
    }
    if (!data) { fprintf(stderr, "edgetrain eval: --data is required\n"); return 2; }
    if ((rc = with_precision("eval", prec, &backend, spec, sizeof spec))) return rc;
    if ((rc = load_model("eval", model, NULL, &c, &tok, 0))) return rc;
    et_tok_free(tok);
    if (et_shard_read(data, &toks, &n, &e) != ET_OK) { et_ckpt_free(&c); return fail("eval", &e); }
    for (i = 0; i < n; i++)
        if (toks[i] >= c.cfg.vocab) {
            fprintf(stderr, "edgetrain eval: error: %s: token %u at position %zu is outside the model's "
                    "vocabulary of %d\n", data, toks[i], i, c.cfg.vocab);
            free(toks); et_ckpt_free(&c);
            return 1;
        }
    if (et_runtime_open(&rt, backend, &c.cfg, B, T, ET_GPT_INFER, threads, &e) != ET_OK) {
        free(toks); et_ckpt_free(&c);
        return fail("eval", &e);
    }
    et_gpt_set_params(&rt.model, c.params);
    rc = et_eval_tokens(&rt.model, toks, n, B, T, batches, &loss, &e) != ET_OK;
    if (rc) fail("eval", &e);
    else printf("loss %.6f\n", loss);
    et_runtime_close(&rt);
    free(toks);
    et_ckpt_free(&c);
    return rc;
}

/* --- sample */
static et_status gpt_logits(void *model, const int32_t *ids, int T, float *logits)
{
    et_status s = et_gpt_forward((et_gpt *)model, ids, NULL, 1, T);
    return s != ET_OK ? s : et_gpt_logits((et_gpt *)model, 0, T - 1, logits);
}

static int cmd_sample(int argc, char **argv)
{
    const char *model = NULL, *tokpath = NULL, *backend = "cpu";
    const char *prec = "fp32";
    char spec[160];
    int threads = 1, help = 0, rc;
    cli_gen_opts go;
    flag f[] = {
        {"model", 'm', F_STR, &model, "checkpoint (edgetrain or llm.c)"},
        {"tokenizer", 0, F_STR, &tokpath, "tokenizer file (default: the one inside the checkpoint)"},
        CLI_GEN_FLAGS(go),
        {"threads", 0, F_INT, &threads, "worker threads (0: all cores)"},
        {"backend", 0, F_STR, &backend, "cpu | opencl[:P.D] | cuda[:N] (edgetrain devices lists them)"},
        {"precision", 0, F_STR, &prec, PRECISION_HELP},
    };
    et_ckpt c;
    et_tokenizer *tok;
    et_runtime rt;
    et_error e = {0};
    memset(&c, 0, sizeof c);
    cli_gen_defaults(&go);
    if (cmd_qmodel_hook("sample", argc, argv, &rc)) return rc; /* quantized model: cmd_compress.c */
    if (cmd_image_hook("sample", argc, argv, &rc)) return rc;  /* device image: cmd_image.c */
    if (flags_parse("sample", f, NF(f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("sample", "Generates text from a model.", f, NF(f));
        return 0;
    }
    if (!cli_gen_valid(&go)) {
        fprintf(stderr, "edgetrain sample: --length, --top-k and --temperature must be >= 0\n");
        return 2;
    }
    if ((rc = with_precision("sample", prec, &backend, spec, sizeof spec))) return rc;
    if ((rc = load_model("sample", model, tokpath, &c, &tok, 1))) return rc;
    if (et_runtime_open(&rt, backend, &c.cfg, 1, c.cfg.context, ET_GPT_INFER, threads, &e) != ET_OK) {
        rc = fail("sample", &e);
        goto out;
    }
    et_gpt_set_params(&rt.model, c.params);
    go.context = c.cfg.context; go.vocab = c.cfg.vocab;
    rc = cli_generate(&go, tok, gpt_logits, &rt.model);
    et_runtime_close(&rt);
out:
    et_tok_free(tok);
    et_ckpt_free(&c);
    return rc;
}

/* --- info */
static void print_plan(const char *what, const et_gpt_plan *p)
{
    printf("%s plan (bytes): params %zu, grads %zu, adamw %zu, activations %zu, activation grads %zu, "
           "io %zu, scratch %zu, total %zu (%.2f MiB)\n", what, p->params, p->grads, p->adam, p->acts,
           p->act_grads, p->io, p->scratch, p->total, p->total / 1048576.0);
}

static int cmd_info(int argc, char **argv)
{
    const char *model = NULL;
    int B = 12, T = 0, threads = 0, help = 0, rc, i;
    flag f[] = {
        {"model", 'm', F_STR, &model, "checkpoint (edgetrain or llm.c)"},
        {"batch", 'b', F_INT, &B, "batch size for the memory plan"},
        {"seq", 't', F_INT, &T, "sequence length for the plan (0: the model's context)"},
        {"threads", 0, F_INT, &threads, "workers the plan provides scratch for (0: all cores)"},
    };
    et_ckpt c;
    et_tokenizer *tok;
    et_tensor_info t[ET_GPT_NTENSORS];
    et_backend be;
    et_cpu_ctx cx;
    et_gpt_plan pt, pi;
    et_threads th = {0, 1, 0};
    et_gpt_config cfg;
    et_status s;
    memset(&c, 0, sizeof c);
    if (flags_parse("info", f, NF(f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("info", "Config, parameter count and the exact memory plan of a model.", f, NF(f));
        return 0;
    }
    if ((rc = load_model("info", model, NULL, &c, &tok, 0))) return rc;
    cfg = c.cfg;
    et_gpt_config_check(&cfg);
    if (T == 0) T = cfg.context;
    printf("model %s: vocab %d (padded %d), context %d, layers %d, heads %d, channels %d", model,
           cfg.vocab, cfg.vocab_padded, cfg.context, cfg.layers, cfg.heads, cfg.channels);
    if (!et_gpt_config_is_gpt2(&cfg)) /* structurally pruned */
        printf(", head_dim %d, ffn %d", et_gpt_head_dim(&cfg), et_gpt_ffn_width(&cfg));
    printf("\n");
    printf("parameters %zu (%.2f MiB fp32); step %d; tokenizer %s\n", c.nparams, c.nparams * 4 / 1048576.0,
           c.step, tok ? (et_tok_type_of(tok) == ET_TOK_CHAR ? "char" : "bpe") : "none");
    et_gpt_tensors(&cfg, t);
    for (i = 0; i < ET_GPT_NTENSORS; i++)
        printf("  %-9s %10zu  %s\n", t[i].name, t[i].count, t[i].decay ? "decay" : "");
    th.nworkers = threads > 0 ? threads : et_cpu_count();
    th.parallel_for = NULL;
    et_cpu_backend_init(&be, &cx, &th);
    be.scratch_bytes = et_cpu_scratch_bytes(th.nworkers);
    if ((s = et_gpt_plan_compute(&cfg, B, T, ET_GPT_TRAIN, &be, &pt)) != ET_OK ||
        (s = et_gpt_plan_compute(&cfg, B, T, ET_GPT_INFER, &be, &pi)) != ET_OK) {
        fprintf(stderr, "edgetrain info: error: cannot plan B=%d T=%d: %s\n", B, T, et_status_str(s));
        rc = 1;
    } else {
        printf("memory plan for B=%d, T=%d, %d workers:\n", B, T, th.nworkers);
        print_plan("  training ", &pt);
        print_plan("  inference", &pi);
    }
    et_tok_free(tok);
    et_ckpt_free(&c);
    return rc;
}

/* --- export */
static int cmd_export(int argc, char **argv)
{
    const char *model = NULL, *format = "llmc", *out = NULL;
    int help = 0, rc;
    flag f[] = {
        {"model", 'm', F_STR, &model, "checkpoint to read"},
        {"format", 'f', F_STR, &format, "llmc (llm.c GPT-2 fp32) | etck (edgetrain, weights only) | image | c (int8 device image)"},
        {"out", 'o', F_STR, &out, "file to write"},
    };
    et_ckpt c;
    et_tokenizer *tok;
    et_error e = {0};
    et_status s;
    memset(&c, 0, sizeof c);
    if (flags_parse("export", f, NF(f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("export", "Writes a model in another format.", f, NF(f));
        return 0;
    }
    if (!out) { fprintf(stderr, "edgetrain export: --out is required\n"); return 2; }
    if (strcmp(format, "llmc") && strcmp(format, "etck") && strcmp(format, "image") && strcmp(format, "c")) {
        fprintf(stderr, "edgetrain export: --format must be llmc, etck, image or c, got '%s'\n", format);
        return 2;
    }
    if ((rc = load_model("export", model, NULL, &c, &tok, 0))) return rc;
    et_tok_free(tok);
    if (!strcmp(format, "image") || !strcmp(format, "c")) { /* device image: host/image_file.c */
        size_t n = 0;
        s = et_image_export(out, format[0] == 'c' ? ET_IMAGE_FMT_C : ET_IMAGE_FMT_BIN, &c.cfg, c.params,
                            c.tokenizer, c.tokenizer_bytes, &n, &e);
        if (s == ET_OK) printf("image %zu bytes\n", n);
    } else if (!strcmp(format, "llmc")) {
        s = et_llmc_save(out, &c.cfg, c.params, &e);
    } else {
        et_ckpt w = c;
        w.adam_m = w.adam_v = NULL;
        w.train_state = NULL;
        w.train_state_bytes = 0;
        s = et_ckpt_save(out, &w, &e);
    }
    et_ckpt_free(&c);
    if (s != ET_OK) return fail("export", &e);
    printf("wrote %s (%s)\n", out, format);
    return 0;
}

int cmd_sim(int argc, char **argv); /* cmd_sim.c */

static void usage(void)
{
    printf("edgetrain - train, compress and run GPT-style transformers\n\n"
           "usage: edgetrain COMMAND [flags]   (edgetrain COMMAND --help for its flags)\n\n"
           "commands:\n"
           "  prepare   text files -> cleaned text -> tokenizer + llm.c token shards\n"
           "  train     train a GPT on token shards (from scratch, from weights, or resume)\n"
           "  eval      mean loss of a model on a token shard\n"
           "  sample    generate text from a model\n"
           "  info      config, parameter count and exact memory plan of a model\n"
           "  compress  prune (0.5 | 2:4) and/or quantize (w8a8 | w8a32) a model, with a report\n"
           "  distill   train a small student GPT on a teacher's logits\n"
           "  export    write a model as an llm.c checkpoint (or edgetrain weights only)\n"
           "  plan      exact arena bytes of on-device LoRA fine-tuning of a device image\n"
           "  finetune  LoRA fine-tuning of a device image on plain text, or a new task head (--head), in a fixed arena\n"
           "  merge     fold LoRA adapters into a device image (eval/sample take --image [--adapters])\n"
           "  devices   list the devices each backend finds; --bench times training on one\n"
           "  sim       simulate a systolic array running a GEMM, a topology or a model\n");
}

int main(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "";
    if (argc < 2 || !strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(c, "prepare")) return cmd_prepare(argc - 2, argv + 2);
    if (!strcmp(c, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(c, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(c, "sample")) return cmd_sample(argc - 2, argv + 2);
    if (!strcmp(c, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(c, "export")) return cmd_export(argc - 2, argv + 2);
    if (!strcmp(c, "compress")) return cmd_compress(argc - 2, argv + 2);
    if (!strcmp(c, "distill")) return cmd_distill(argc - 2, argv + 2);
    if (!strcmp(c, "devices")) return cmd_devices(argc - 2, argv + 2);
    if (!strcmp(c, "plan")) return cmd_plan(argc - 2, argv + 2);
    if (!strcmp(c, "finetune")) return cmd_finetune(argc - 2, argv + 2);
    if (!strcmp(c, "merge")) return cmd_merge(argc - 2, argv + 2);       /* cmd_image.c */
    if (!strcmp(c, "sim")) return cmd_sim(argc - 2, argv + 2); /* cmd_sim.c */
    fprintf(stderr, "edgetrain: unknown command '%s' (see edgetrain --help)\n", c);
    return 2;
}
