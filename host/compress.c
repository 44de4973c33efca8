/* compress.c - the compress job (et_compress.h): fp32 model in, compressed model and a
 * measured report out.
 *
 * Order: load and check everything first (a bad input fails before anything is
 * written), evaluate the fp32 model, calibrate (W8A8: a min/max pass and a histogram
 * pass over the same batches, on a float model that keeps every layer's activations),
 * quantize, save atomically, load the saved file back and evaluate that, so the
 * figures are those of the file a user gets. Magnitude pruning, low-rank and compact
 * inputs go to the compact path instead (compress_compact.c: low-rank -> prune ->
 * fine-tune -> W8A8, each stage run from its compact storage). Deliberately avoids:
 * changing the input file, and evaluating on the calibration windows (calibration reads
 * the training shard beside --data unless told otherwise).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "et_ckpt.h"
#include "et_compress.h"
#include "et_qruntime.h"
#include "et_runtime.h"
#include "et_shard.h"
#include "et_sparse.h"

#define NBINS 2048
#define SPEED_ROUNDS 5   /* timing rounds per model, best kept */
#define SPEED_BATCHES 16 /* batches per timing round */

void et_compress_opts_init(et_compress_opts *o)
{
    memset(o, 0, sizeof *o);
    o->quant = ET_QMODE_W8A8;
    o->calib_batches = 16;
    o->calib = ET_QCALIB_PERCENTILE;
    o->pct = 0.9999f;
    o->B = 8;
    o->T = 64;
    o->eval_batches = 0;
    o->threads = 1;
    et_finetune_opts_init(&o->ft);
}

static size_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

static et_status read_tokens(const char *path, int V, uint16_t **t, size_t *n, const char *what,
                             int T, et_error *err)
{
    size_t i;
    et_status s = et_shard_read(path, t, n, err);
    if (s != ET_OK) return s;
    if (*n < (size_t)T + 1) {
        free(*t);
        *t = NULL;
        return et_error_set(err, ET_ERR_TRUNCATED, "%s set %s has %zu tokens; it needs at least one "
                            "sequence of %d + 1", what, path, *n, T);
    }
    for (i = 0; i < *n; i++)
        if ((*t)[i] >= V) {
            free(*t);
            *t = NULL;
            return et_error_set(err, ET_ERR_RANGE, "%s: token %u at position %zu is outside the "
                                "model's vocabulary of %d", path, (unsigned)(*t)[i], i, V);
        }
    return ET_OK;
}

/* "<dir of data>/train.bin" when it exists, else data itself */
static void default_calib(const char *data, char *buf, size_t cap)
{
    const char *slash = strrchr(data, '/');
    struct stat st;
    if (slash) snprintf(buf, cap, "%.*s/train.bin", (int)(slash - data), data);
    else snprintf(buf, cap, "train.bin");
    if (stat(buf, &st) != 0 || strcmp(buf, data) == 0) snprintf(buf, cap, "%s", data);
}

/* Activation ranges per site from @p batches batches of a float model that keeps
 * every layer's activations. */
static et_status calibrate(const et_compress_opts *o, const et_ckpt *c, const uint16_t *tok,
                           size_t n, float *lo, float *hi, et_error *err)
{
    et_runtime rt;
    et_qcalib cal;
    et_arena a;
    void *mem = NULL;
    int *in = NULL, *tg = NULL, pass, i, nsites = et_qgpt_nsites(&c->cfg);
    size_t bytes = et_qcalib_bytes(nsites, NBINS), pos;
    et_status s;
    if ((s = et_runtime_open(&rt, "cpu", &c->cfg, o->B, o->T, ET_GPT_TRAIN, o->threads, err)) != ET_OK)
        return s;
    et_gpt_set_params(&rt.model, c->params);
    in = malloc(sizeof(int) * (size_t)o->B * o->T);
    tg = malloc(sizeof(int) * (size_t)o->B * o->T);
    if (!in || !tg || posix_memalign(&mem, ET_ALIGN, bytes) != 0) {
        mem = NULL;
        s = et_error_set(err, ET_ERR_NOMEM, "out of memory for calibration");
        goto out;
    }
    et_arena_init(&a, mem, bytes);
    if ((s = et_qcalib_init(&cal, nsites, NBINS, &a)) != ET_OK) {
        et_error_set(err, s, "cannot set up calibration: %s", et_status_str(s));
        goto out;
    }
    for (pass = 0; pass < 2; pass++) {
        pos = 0;
        for (i = 0; i < o->calib_batches; i++) {
            et_fill_windows(tok, n, o->B, o->T, &pos, in, tg);
            if ((s = et_gpt_forward(&rt.model, in, tg, o->B, o->T)) != ET_OK ||
                (s = et_qcalib_observe_gpt(&cal, &rt.model)) != ET_OK) {
                et_error_set(err, s, "calibration batch %d failed: %s%s", i, et_status_str(s),
                             s == ET_ERR_RANGE ? " (a non-finite activation: is the model diverged?)" : "");
                goto out;
            }
        }
        if (pass == 0 && (s = et_qcalib_next_pass(&cal)) != ET_OK) {
            et_error_set(err, s, "calibration saw no activations");
            goto out;
        }
    }
    for (i = 0; i < nsites; i++)
        if ((s = et_qcalib_range(&cal, i, o->calib, o->pct, &lo[i], &hi[i])) != ET_OK) {
            et_error_set(err, s, "no calibration range for site %d: %s", i, et_status_str(s));
            goto out;
        }
    s = ET_OK;
out:
    free(in);
    free(tg);
    free(mem);
    et_runtime_close(&rt);
    return s;
}

static void stage_fp32(et_compress_stage *st, const char *name, const et_ckpt *c, size_t file,
                       size_t ram, float loss, double tok_s)
{
    memset(st, 0, sizeof *st);
    snprintf(st->name, sizeof st->name, "%s", name);
    st->params = c->nparams;
    st->weight_bytes = c->nparams * sizeof(float);
    st->file_bytes = file;
    st->ram_bytes = ram;
    st->loss = loss;
    st->tok_s = tok_s;
}

et_status et_compress(const et_compress_opts *o, et_compress_report *r, et_error *err)
{
    et_ckpt c;
    et_qmodel q, back;
    et_runtime rt, srt;
    et_qruntime qrt;
    uint16_t *val = NULL, *cal = NULL;
    size_t nval = 0, ncal = 0;
    float *lo = NULL, *hi = NULL, loss;
    double sec;
    int nb, have_rt = 0, have_qrt = 0, have_srt = 0, fin = 0;
    char calpath[1024], pname[96] = "";
    et_status s;
    memset(&c, 0, sizeof c);
    memset(&q, 0, sizeof q);
    memset(&back, 0, sizeof back);
    memset(r, 0, sizeof *r);
    if (!o->model || !o->data || !o->out)
        return et_error_set(err, ET_ERR_INVALID, "--model, --data and --out are required");
    if (o->quant != 0 && o->quant != ET_QMODE_W8A8 && o->quant != ET_QMODE_W8A32)
        return et_error_set(err, ET_ERR_INVALID, "--quant must be w8a8 or w8a32");
    if (!o->quant && !o->prune.kind && !o->lowrank.kind && !o->sprune.kind)
        return et_error_set(err, ET_ERR_INVALID, "no pass asked for (--quant w8a8|w8a32, --prune 0.5|2:4|heads=N, "
                            "--lowrank energy=0.9|params=0.5)");
    if (o->sprune.kind && (o->prune.kind || o->lowrank.kind))
        return et_error_set(err, ET_ERR_INVALID, "structured pruning (heads=, ffn=, neurons=) goes with --quant only, "
                            "not with magnitude pruning or --lowrank");
    if (o->B <= 0 || o->T <= 0 || o->calib_batches <= 0 || !(o->pct > 0.5f && o->pct <= 1.0f))
        return et_error_set(err, ET_ERR_INVALID, "batch, sequence and calibration batches must be positive "
                            "and the percentile in (50, 100]");
    if (et_qmodel_probe(o->model))
        return et_error_set(err, ET_ERR_INVALID, "%s is already a quantized model; compress takes an fp32 "
                            "checkpoint (edgetrain, llm.c or pruned)", o->model);
    if (o->sprune.kind && et_sparse_probe(o->model))
        return et_error_set(err, ET_ERR_INVALID, "%s is a compact (magnitude-pruned or factored) model; structured "
                            "pruning takes a dense fp32 checkpoint (edgetrain or llm.c)", o->model);
    /* magnitude pruning, low-rank and compact inputs run on the compact path */
    if (o->prune.kind || o->lowrank.kind || et_sparse_probe(o->model)) return et_compress_compact(o, r, err);
    s = et_model_load(o->model, &c, err);
    if (s != ET_OK) return s;
    if (o->T > c.cfg.context || (o->sprune.kind && o->ft.steps > 0 && o->ft.T > c.cfg.context)) {
        s = et_error_set(err, ET_ERR_RANGE, "sequence length %d exceeds the model's context %d",
                         o->T > c.cfg.context ? o->T : o->ft.T, c.cfg.context);
        goto out;
    }
    if ((s = read_tokens(o->data, c.cfg.vocab, &val, &nval, "evaluation", o->T, err)) != ET_OK) goto out;
    if (o->calib_data) snprintf(calpath, sizeof calpath, "%s", o->calib_data);
    else default_calib(o->data, calpath, sizeof calpath);
    if ((o->quant == ET_QMODE_W8A8 || (o->sprune.kind && o->ft.steps > 0) ||
         (o->sprune.kind && !o->sprune.weights)) &&
        (s = read_tokens(calpath, c.cfg.vocab, &cal, &ncal, o->quant == ET_QMODE_W8A8 ? "calibration" : "fine-tuning",
                         o->quant == ET_QMODE_W8A8 ? o->T : o->ft.T, err)) != ET_OK)
        goto out;
    r->B = o->B; r->T = o->T; r->threads = o->threads;
    /* fp32 baseline: its loss now, its speed later beside the compressed model's */
    if ((s = et_runtime_open(&rt, "cpu", &c.cfg, o->B, o->T, ET_GPT_INFER, o->threads, err)) != ET_OK) goto out;
    have_rt = 1;
    et_gpt_set_params(&rt.model, c.params);
    if ((s = et_eval_windows(et_fwd_gpt, &rt.model, val, nval, o->B, o->T, o->eval_batches, &loss, &sec, &nb,
                             err)) != ET_OK)
        goto out;
    stage_fp32(&r->st[r->n++], "fp32", &c, file_size(o->model), rt.plan.total, loss, 0.0);
    r->eval_batches = nb;
    r->eval_tokens = (size_t)nb * o->B * o->T;
    if (o->progress) fprintf(o->progress, "fp32: val loss %.4f\n", loss);
    snprintf(r->calib, sizeof r->calib, "none");
    /* structured pruning: heads and MLP neurons removed, the model shrunk (+ fine-tune) */
    if (o->sprune.kind) {
        et_compress_stage *st;
        int nh0 = c.cfg.heads, f0 = c.cfg.ffn ? c.cfg.ffn : 4 * c.cfg.channels;
        if ((s = et_compress_struct(&c, &o->sprune, &o->ft, cal, ncal, o->B, o->T, o->threads, err)) != ET_OK ||
            (s = et_runtime_open(&srt, "cpu", &c.cfg, o->B, o->T, ET_GPT_INFER, o->threads, err)) != ET_OK)
            goto out;
        have_srt = 1;
        et_gpt_set_params(&srt.model, c.params);
        if ((s = et_eval_windows(et_fwd_gpt, &srt.model, val, nval, o->B, o->T, r->eval_batches, &loss, &sec, &nb,
                                 err)) != ET_OK)
            goto out;
        snprintf(pname, sizeof pname, "heads %d->%d, MLP %d->%d", nh0, c.cfg.heads, f0, et_gpt_ffn_width(&c.cfg));
        if (o->ft.steps > 0) snprintf(pname + strlen(pname), sizeof pname - strlen(pname), " +%d ft", o->ft.steps);
        st = &r->st[r->n++];
        stage_fp32(st, pname, &c, 0, srt.plan.total, loss, 0.0);
        if (o->progress) fprintf(o->progress, "%s: val loss %.4f\n", pname, loss);
        if (!o->quant) {
            et_ckpt w = c;
            if ((s = et_ckpt_save(o->out, &w, err)) != ET_OK) goto out;
            st->file_bytes = file_size(o->out);
            fin = r->n - 1;
        }
    }
    /* quantization */
    if (o->quant) {
        q.cfg = c.cfg;
        q.mode = (et_qmode)o->quant;
        q.src_nparams = c.nparams;
        if ((s = et_qgpt_tensors(&c.cfg, q.mode, NULL, &q.blob_bytes)) != ET_OK ||
            posix_memalign(&q.blob, ET_ALIGN, q.blob_bytes) != 0) {
            q.blob = NULL;
            s = et_error_set(err, ET_ERR_NOMEM, "out of memory for the quantized model");
            goto out;
        }
        if (o->quant == ET_QMODE_W8A8) {
            int ns = et_qgpt_nsites(&c.cfg);
            lo = malloc(sizeof(float) * (size_t)ns);
            hi = malloc(sizeof(float) * (size_t)ns);
            if (!lo || !hi) { s = et_error_set(err, ET_ERR_NOMEM, "out of memory"); goto out; }
            if ((s = calibrate(o, &c, cal, ncal, lo, hi, err)) != ET_OK) goto out;
            q.calib_method = (uint32_t)o->calib;
            q.calib_pct = o->pct;
            q.calib_batches = (uint32_t)o->calib_batches;
            if (o->calib == ET_QCALIB_MINMAX)
                snprintf(r->calib, sizeof r->calib, "min/max over %d batches of %s", o->calib_batches, calpath);
            else
                snprintf(r->calib, sizeof r->calib, "percentile %.4g%% over %d batches of %s", 100.0 * o->pct,
                         o->calib_batches, calpath);
        } else {
            snprintf(r->calib, sizeof r->calib, "none (weight-only)");
        }
        if ((s = et_qgpt_quantize(&c.cfg, c.params, q.mode, lo, hi, q.blob, q.blob_bytes)) != ET_OK) {
            et_error_set(err, s, "quantization failed: %s", et_status_str(s));
            goto out;
        }
        q.tokenizer = c.tokenizer;
        q.tokenizer_bytes = c.tokenizer_bytes;
        if ((s = et_qmodel_save(o->out, &q, err)) != ET_OK) goto out;
        /* measure the file as saved */
        if ((s = et_qmodel_load(o->out, &back, err)) != ET_OK) goto out;
        if ((s = et_qruntime_open(&qrt, &back, o->B, o->T, o->threads, err)) != ET_OK) goto out;
        have_qrt = 1;
        if ((s = et_eval_windows(et_fwd_qgpt, &qrt.model, val, nval, o->B, o->T, r->eval_batches, &loss, &sec, &nb,
                                 err)) != ET_OK)
            goto out;
        {
            et_compress_stage *st = &r->st[r->n++];
            memset(st, 0, sizeof *st);
            snprintf(st->name, sizeof st->name, "%s%s%s", pname, pname[0] ? " + " : "",
                     o->quant == ET_QMODE_W8A8 ? "int8 w8a8" : "int8 w8a32");
            st->params = o->sprune.kind ? r->st[r->n - 2].params : c.nparams;
            st->weight_bytes = back.blob_bytes;
            st->file_bytes = file_size(o->out);
            st->ram_bytes = back.blob_bytes + qrt.plan;
            st->loss = loss;
            fin = r->n - 1;
            if (o->progress) fprintf(o->progress, "%s: val loss %.4f\n", st->name, loss);
        }
    }
    /* speed: rounds alternate between the models and each keeps its best, so a
     * machine shared with other work favours neither */
    {
        /* models timed: 0 fp32, 1 the structurally pruned model (smaller: its own
         * speed), 2 int8 */
        double best[3] = {0.0, 0.0, 0.0};
        int round, k, i;
        void *mdl[3];
        mdl[0] = &rt.model; mdl[1] = &srt.model; mdl[2] = &qrt.model;
        for (round = 0; round < SPEED_ROUNDS; round++)
            for (k = 0; k < 3; k++) {
                float l;
                if ((k == 1 && !have_srt) || (k == 2 && !have_qrt)) continue;
                if ((s = et_eval_windows(k == 2 ? et_fwd_qgpt : et_fwd_gpt, mdl[k], val, nval, o->B, o->T,
                                         SPEED_BATCHES, &l, &sec, &nb, err)) != ET_OK)
                    goto out;
                if ((double)nb * o->B * o->T / sec > best[k]) best[k] = (double)nb * o->B * o->T / sec;
            }
        for (i = 0; i < r->n; i++)
            r->st[i].tok_s = (have_qrt && i == fin) ? best[2] : (have_srt && i > 0) ? best[1] : best[0];
        r->speed_rounds = SPEED_ROUNDS;
        r->speed_batches = SPEED_BATCHES;
        r->final = fin;
        if (o->progress) {
            fprintf(o->progress, "speed (best of %d rounds of %d batches): fp32 %.0f tok/s", SPEED_ROUNDS,
                    SPEED_BATCHES, best[0]);
            if (have_srt) fprintf(o->progress, ", %s %.0f tok/s", r->st[1].name, best[1]);
            if (have_qrt) fprintf(o->progress, ", %s %.0f tok/s", r->st[fin].name, best[2]);
            fprintf(o->progress, "\n");
        }
    }
    snprintf(r->md_path, sizeof r->md_path, "%s.report.md", o->out);
    snprintf(r->json_path, sizeof r->json_path, "%s.report.json", o->out);
    s = et_compress_report_write(r, err);
out:
    if (have_rt) et_runtime_close(&rt);
    if (have_srt) et_runtime_close(&srt);
    if (have_qrt) et_qruntime_close(&qrt);
    free(lo);
    free(hi);
    free(val);
    free(cal);
    free(q.blob);
    et_qmodel_free(&back);
    et_ckpt_free(&c);
    return s;
}

// --- shared with the compact path (compress_compact.c)

et_status et_compress_read_tokens(const char *path, int V, uint16_t **t, size_t *n, const char *what, int T,
                                  et_error *err)
{
    return read_tokens(path, V, t, n, what, T, err);
}

void et_compress_default_calib(const char *data, char *buf, size_t cap) { default_calib(data, buf, cap); }
