/* compress_compact.c - the compress job when pruning or low-rank is asked for, or the
 * input is a compact model: every pass's model runs on the compact inference path
 * (et_cgpt), so each stage's loss, size and speed are those of its real storage.
 *
 * Order (docs/COMPRESSION.md): low-rank (MLP matrices -> factors) -> prune (every
 * matrix that runs, factors too) -> fine-tune (masks held, factors trained through their
 * product) -> int8 W8A8 (calibrated through the compact fp32 forward). Each pass is a
 * stage of the report; the last is saved, loaded back from disk and measured as loaded.
 * Tokens/s: forward passes only, best of rounds of batches, every stage's rounds
 * alternating with the input model's in one process.
 * Deliberately avoids: changing the input file, and evaluating on the calibration or
 * fine-tuning windows (they come from the training shard beside --data).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "et_ckpt.h"
#include "et_cmodel.h"
#include "et_qruntime.h"
#include "et_runtime.h"

#define SPEED_ROUNDS 5
#define SPEED_BATCHES 16
#define MAXST 8

typedef struct {
    et_sparse_model f;
    et_cruntime rt;
    int open;
} cstage;

typedef struct {
    const et_compress_opts *o;
    et_compress_report *r;
    const uint16_t *val;
    size_t nval;
    cstage st[MAXST];
    char name[160];
} job;

static size_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

static void append(char *name, size_t cap, const char *what)
{
    size_t n = strlen(name);
    snprintf(name + n, cap - n, "%s%s", n ? " + " : "", what);
}

/* packs @p m (or takes @p f as it is), opens it, evaluates it: report stage k */
static et_status stage(job *J, const et_cmodel *m, et_cgpt_mode mode, const float *lo, const float *hi,
                       const void *tok, size_t tokb, et_error *err)
{
    et_compress_report *r = J->r;
    const et_compress_opts *o = J->o;
    cstage *c;
    et_compress_stage *x;
    double sec;
    int nb;
    et_status s;
    if (r->n >= MAXST) return et_error_set(err, ET_ERR_INVALID, "too many stages");
    c = &J->st[r->n];
    x = &r->st[r->n];
    memset(c, 0, sizeof *c);
    if ((s = et_cmodel_pack(m, mode, lo, hi, tok, tokb, &c->f, err)) != ET_OK) return s;
    if (mode == ET_CGPT_W8A8) {
        c->f.calib_method = (uint32_t)o->calib;
        c->f.calib_pct = o->pct;
        c->f.calib_batches = (uint32_t)o->calib_batches;
    }
    if ((s = et_cruntime_open(&c->rt, &c->f, o->B, o->T, o->threads, err)) != ET_OK) {
        et_sparse_free(&c->f);
        return s;
    }
    c->open = 1;
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", J->name);
    if ((s = et_eval_windows(et_fwd_cgpt, &c->rt.model, J->val, J->nval, o->B, o->T, r->eval_batches, &x->loss, &sec,
                             &nb, err)) != ET_OK)
        return s;
    x->params = et_cgpt_params(&c->f.cfg, c->f.spec);
    x->weight_bytes = c->f.blob_bytes;
    x->file_bytes = et_sparse_file_bytes(&c->f);
    x->file_computed = 1;
    x->ram_bytes = c->f.blob_bytes + c->rt.plan;
    r->n++;
    if (o->progress) fprintf(o->progress, "%s: val loss %.4f\n", x->name, x->loss);
    return ET_OK;
}

static void lowrank_name(char *buf, size_t cap, const et_lowrank_spec *p)
{
    snprintf(buf, cap, "low-rank MLP %s=%g%s", p->kind == 1 ? "energy" : p->kind == 2 ? "params" : "rank",
             (double)p->value, p->aware ? " (activation-aware)" : "");
}

et_status et_compress_compact(const et_compress_opts *o, et_compress_report *r, et_error *err)
{
    job J;
    et_ckpt c;
    et_sparse_model in;
    et_cmodel m, w;
    et_runtime rt;
    et_cruntime crt;
    uint16_t *val = NULL, *cal = NULL;
    size_t nval = 0, ncal = 0;
    float *lo = NULL, *hi = NULL, *sc = NULL;
    const void *tok;
    size_t tokb;
    char calpath[1024], what[96];
    double sec;
    int nb, have_rt = 0, have_crt = 0, sparse_in, need_cal, i;
    et_status s;
    memset(&J, 0, sizeof J);
    memset(&c, 0, sizeof c);
    memset(&in, 0, sizeof in);
    memset(&m, 0, sizeof m);
    memset(&w, 0, sizeof w);
    J.o = o;
    J.r = r;
    if (o->quant == ET_QMODE_W8A32)
        return et_error_set(err, ET_ERR_INVALID, "--quant w8a32 does not combine with --prune / --lowrank or a compact "
                            "input: the compact path is fp32 or int8 w8a8 (use --quant w8a8)");
    if (o->sprune.kind)
        return et_error_set(err, ET_ERR_INVALID, "structured pruning (heads=, ffn=, neurons=) takes a dense fp32 "
                            "checkpoint and goes with --quant only");
    sparse_in = et_sparse_probe(o->model);
    if (sparse_in) {
        if ((s = et_sparse_load(o->model, &in, err)) != ET_OK) return s;
        if ((s = et_cmodel_from_sparse(&m, &in, err)) != ET_OK) {
            if (in.mode == ET_CGPT_W8A8)
                et_error_set(err, s, "%s is already a quantized model (W8A8); compress takes an fp32 model", o->model);
            goto out;
        }
        tok = in.tokenizer;
        tokb = in.tokenizer_bytes;
    } else {
        if ((s = et_model_load(o->model, &c, err)) != ET_OK) return s;
        if ((s = et_cmodel_init(&m, &c.cfg, c.params, err)) != ET_OK) goto out;
        tok = c.tokenizer;
        tokb = c.tokenizer_bytes;
    }
    if (o->T > m.cfg.context || (o->ft.steps > 0 && o->ft.T > m.cfg.context)) {
        s = et_error_set(err, ET_ERR_RANGE, "sequence length %d exceeds the model's context %d",
                         o->T > m.cfg.context ? o->T : o->ft.T, m.cfg.context);
        goto out;
    }
    if ((s = et_compress_read_tokens(o->data, m.cfg.vocab, &val, &nval, "evaluation", o->T, err)) != ET_OK) goto out;
    J.val = val;
    J.nval = nval;
    if (o->calib_data) snprintf(calpath, sizeof calpath, "%s", o->calib_data);
    else et_compress_default_calib(o->data, calpath, sizeof calpath);
    need_cal = o->quant == ET_QMODE_W8A8 || o->ft.steps > 0 || o->lowrank.aware;
    if (need_cal && (s = et_compress_read_tokens(calpath, m.cfg.vocab, &cal, &ncal,
                                                 o->quant == ET_QMODE_W8A8 ? "calibration" : "fine-tuning",
                                                 o->ft.steps > 0 && o->ft.T > o->T ? o->ft.T : o->T, err)) != ET_OK)
        goto out;
    r->B = o->B; r->T = o->T; r->threads = o->threads;
    snprintf(r->calib, sizeof r->calib, "none");
    /* the input model: its loss now, its speed later beside every stage's */
    {
        et_compress_stage *x = &r->st[r->n++];
        memset(x, 0, sizeof *x);
        if (sparse_in) {
            if ((s = et_cruntime_open(&crt, &in, o->B, o->T, o->threads, err)) != ET_OK) goto out;
            have_crt = 1;
            s = et_eval_windows(et_fwd_cgpt, &crt.model, val, nval, o->B, o->T, o->eval_batches, &x->loss, &sec, &nb, err);
            snprintf(x->name, sizeof x->name, "input (compact fp32)");
            x->params = et_cgpt_params(&in.cfg, in.spec);
            x->weight_bytes = in.blob_bytes;
            x->ram_bytes = in.blob_bytes + crt.plan;
        } else {
            if ((s = et_runtime_open(&rt, "cpu", &c.cfg, o->B, o->T, ET_GPT_INFER, o->threads, err)) != ET_OK) goto out;
            have_rt = 1;
            et_gpt_set_params(&rt.model, c.params);
            s = et_eval_windows(et_fwd_gpt, &rt.model, val, nval, o->B, o->T, o->eval_batches, &x->loss, &sec, &nb, err);
            snprintf(x->name, sizeof x->name, "fp32");
            x->params = c.nparams;
            x->weight_bytes = c.nparams * sizeof(float);
            x->ram_bytes = rt.plan.total;
        }
        if (s != ET_OK) goto out;
        x->file_bytes = file_size(o->model);
        r->eval_batches = nb;
        r->eval_tokens = (size_t)nb * o->B * o->T;
        if (o->progress) fprintf(o->progress, "%s: val loss %.4f\n", x->name, x->loss);
    }
    /* 1. low-rank */
    if (o->lowrank.kind) {
        if (o->lowrank.aware) {
            sc = malloc(sizeof(float) * (size_t)m.cfg.layers * 5 * m.cfg.channels);
            if (!sc) { s = et_error_set(err, ET_ERR_NOMEM, "out of memory"); goto out; }
            if ((s = et_lowrank_act_scales(&m.cfg, m.params, cal, ncal, o->B, o->T, o->calib_batches, o->threads, sc,
                                           err)) != ET_OK)
                goto out;
        }
        if ((s = et_cmodel_lowrank(&m, &o->lowrank, sc, o->prune.kind == 2 ? o->prune.M : 1, err)) != ET_OK) goto out;
        lowrank_name(what, sizeof what, &o->lowrank);
        append(J.name, sizeof J.name, what);
        if ((s = stage(&J, &m, ET_CGPT_F32, NULL, NULL, tok, tokb, err)) != ET_OK) goto out;
    }
    /* 2. prune, one shot */
    if (o->prune.kind) {
        if ((s = et_cmodel_copy(&w, &m, err)) != ET_OK) goto out;
        if ((s = et_cmodel_prune(&w, &o->prune, o->prune.sparsity, err)) != ET_OK) goto out;
        if (o->prune.kind == 2) snprintf(what, sizeof what, "pruned %d:%d", o->prune.N, o->prune.M);
        else snprintf(what, sizeof what, "pruned %.0f%%", 100.0 * o->prune.sparsity);
        append(J.name, sizeof J.name, what);
        if ((s = stage(&J, &w, ET_CGPT_F32, NULL, NULL, tok, tokb, err)) != ET_OK) goto out;
        /* unstructured with the cubic schedule ramps from the unpruned model; else the
         * fine-tune continues from the one-shot masks */
        if (o->prune.kind == 1 && o->ft.cubic && o->ft.steps >= 20) m.prune = o->prune;
        else {
            et_cmodel_free(&m);
            m = w;
            memset(&w, 0, sizeof w);
        }
    }
    /* 3. fine-tune, masks held */
    if (o->ft.steps > 0) {
        if ((s = et_cmodel_finetune(&m, &o->ft, cal, ncal, err)) != ET_OK) goto out;
        snprintf(what, sizeof what, "%d ft", o->ft.steps);
        append(J.name, sizeof J.name, what);
        if ((s = stage(&J, &m, ET_CGPT_F32, NULL, NULL, tok, tokb, err)) != ET_OK) goto out;
    }
    /* 4. int8 W8A8 */
    if (o->quant == ET_QMODE_W8A8) {
        et_sparse_model f32;
        int ns = et_cgpt_nsites(&m.cfg);
        lo = malloc(sizeof(float) * (size_t)ns);
        hi = malloc(sizeof(float) * (size_t)ns);
        if (!lo || !hi) { s = et_error_set(err, ET_ERR_NOMEM, "out of memory"); goto out; }
        if ((s = et_cmodel_pack(&m, ET_CGPT_F32, NULL, NULL, NULL, 0, &f32, err)) != ET_OK) goto out;
        s = et_cmodel_calibrate(&f32, cal, ncal, o->B, o->T, o->calib_batches, o->calib, o->pct, o->threads, lo, hi, err);
        et_sparse_free(&f32);
        if (s != ET_OK) goto out;
        if (o->calib == ET_QCALIB_MINMAX)
            snprintf(r->calib, sizeof r->calib, "min/max over %d batches of %s, through the compact fp32 model",
                     o->calib_batches, calpath);
        else
            snprintf(r->calib, sizeof r->calib, "percentile %.4g%% over %d batches of %s, through the compact fp32 "
                     "model", 100.0 * o->pct, o->calib_batches, calpath);
        append(J.name, sizeof J.name, "int8 w8a8");
        if ((s = stage(&J, &m, ET_CGPT_W8A8, lo, hi, tok, tokb, err)) != ET_OK) goto out;
    }
    if (r->n < 2) { /* only a compact input and nothing to do */
        s = et_error_set(err, ET_ERR_INVALID, "no pass asked for (--prune, --lowrank, --quant w8a8)");
        goto out;
    }
    /* the last stage is the output: saved, loaded back, measured as loaded */
    {
        cstage *last = &J.st[r->n - 1];
        et_compress_stage *x = &r->st[r->n - 1];
        if ((s = et_sparse_save(o->out, &last->f, err)) != ET_OK) goto out;
        et_cruntime_close(&last->rt);
        et_sparse_free(&last->f);
        last->open = 0;
        if ((s = et_sparse_load(o->out, &last->f, err)) != ET_OK) goto out;
        if ((s = et_cruntime_open(&last->rt, &last->f, o->B, o->T, o->threads, err)) != ET_OK) {
            et_sparse_free(&last->f);
            goto out;
        }
        last->open = 1;
        if ((s = et_eval_windows(et_fwd_cgpt, &last->rt.model, val, nval, o->B, o->T, r->eval_batches, &x->loss, &sec,
                                 &nb, err)) != ET_OK)
            goto out;
        x->file_bytes = file_size(o->out);
        x->file_computed = 0;
        r->final = r->n - 1;
    }
    /* speed: rounds alternate over every model, each keeps its best */
    {
        double best[MAXST];
        int round, k;
        for (k = 0; k < r->n; k++) best[k] = 0.0;
        for (round = 0; round < SPEED_ROUNDS; round++)
            for (k = 0; k < r->n; k++) {
                float l;
                et_fwd_fn fn = k ? et_fwd_cgpt : sparse_in ? et_fwd_cgpt : et_fwd_gpt;
                void *model = k ? (void *)&J.st[k].rt.model : sparse_in ? (void *)&crt.model : (void *)&rt.model;
                if ((s = et_eval_windows(fn, model, val, nval, o->B, o->T, SPEED_BATCHES, &l, &sec, &nb, err)) != ET_OK)
                    goto out;
                if ((double)nb * o->B * o->T / sec > best[k]) best[k] = (double)nb * o->B * o->T / sec;
            }
        for (k = 0; k < r->n; k++) r->st[k].tok_s = best[k];
        r->speed_rounds = SPEED_ROUNDS;
        r->speed_batches = SPEED_BATCHES;
        if (o->progress) {
            fprintf(o->progress, "speed (best of %d rounds of %d batches):", SPEED_ROUNDS, SPEED_BATCHES);
            for (k = 0; k < r->n; k++) fprintf(o->progress, "%s %s %.0f tok/s", k ? "," : "", r->st[k].name, best[k]);
            fprintf(o->progress, "\n");
        }
    }
    snprintf(r->md_path, sizeof r->md_path, "%s.report.md", o->out);
    snprintf(r->json_path, sizeof r->json_path, "%s.report.json", o->out);
    s = et_compress_report_write(r, err);
out:
    for (i = 0; i < MAXST; i++)
        if (J.st[i].open) {
            et_cruntime_close(&J.st[i].rt);
            et_sparse_free(&J.st[i].f);
        }
    if (have_rt) et_runtime_close(&rt);
    if (have_crt) et_cruntime_close(&crt);
    et_cmodel_free(&m);
    et_cmodel_free(&w);
    et_sparse_free(&in);
    et_ckpt_free(&c);
    free(val);
    free(cal);
    free(lo);
    free(hi);
    free(sc);
    return s;
}
