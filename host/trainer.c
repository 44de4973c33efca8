/* trainer.c - the training loop on the host: batches from token shards, the schedule,
 * progress lines, evaluation, atomic checkpoints, exact resume, log.csv and loss.svg.
 *
 * Exact resume: a checkpoint carries the parameters, both AdamW moments, the step and a
 * small trainer-state record (RNG state, data position, the run's shape), so a resumed
 * run draws the same batches and computes the same bits as one never interrupted.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "et_ckpt.h"
#include "et_plot.h"
#include "et_qat_train.h"
#include "et_rng.h"
#include "et_runtime.h"
#include "et_shard.h"
#include "et_tokenizer.h"
#include "et_train.h"

#define STATE_MAGIC 0x53545445u /* "ETTS" */
#define STATE_VERSION 1u

/* trainer state stored in checkpoints (fixed-width fields, little-endian hosts) */
typedef struct {
    uint32_t magic, version;
    uint64_t rng;
    uint64_t data_pos;
    int32_t step, B, T, sequential;
    uint64_t seed;
} train_state;

void et_train_opts_init(et_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->backend = "cpu";
    o->layers = 4; o->heads = 4; o->channels = 128; o->context = 64;
    o->B = 12; o->T = 64; o->steps = 2000; o->warmup = 100;
    o->lr = 1e-3f; o->lr_min = 1e-4f; o->wd = 0.1f; o->clip = 1.0f;
    o->beta1 = 0.9f; o->beta2 = 0.99f; o->eps = 1e-8f;
    o->schedule = ET_SCHED_COSINE;
    o->seed = 1337;
    o->threads = 0;
    o->eval_every = 250; o->eval_batches = 20; o->ckpt_every = 0; o->log_every = 10;
    o->out_dir = "runs/latest";
    o->qat_decay = 0.99f;
}

float et_train_lr(const et_train_opts *o, int step)
{
    double frac;
    if (o->warmup > 0 && step < o->warmup) return o->lr * (float)(step + 1) / (float)o->warmup;
    if (o->schedule == ET_SCHED_CONSTANT || o->steps <= o->warmup) return o->lr;
    frac = (double)(step - o->warmup) / (double)(o->steps - o->warmup);
    if (frac > 1.0) frac = 1.0;
    return (float)(o->lr_min + 0.5 * (1.0 + cos(3.14159265358979323846 * frac)) * (o->lr - o->lr_min));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_eta(char *buf, size_t n, double s)
{
    if (s < 0) s = 0;
    if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

/* --- data */

static et_status check_tokens(const char *path, const uint16_t *t, size_t n, int V, et_error *err)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (t[i] >= V)
            return et_error_set(err, ET_ERR_RANGE,
                                "%s: token %u at position %zu is outside the model's vocabulary "
                                "of %d (wrong tokenizer or model?)", path, t[i], i, V);
    return ET_OK;
}

/* B windows of T+1 tokens: random offsets, or consecutive from *pos */
static void next_batch(const uint16_t *tok, size_t n, int B, int T, int sequential, et_rng *rng,
                       uint64_t *pos, int *in, int *tg)
{
    int b, t;
    size_t span = n - (size_t)T - 1;
    for (b = 0; b < B; b++) {
        size_t off;
        if (sequential) {
            if (*pos + (size_t)T + 1 > n) *pos = 0;
            off = (size_t)*pos;
            *pos += (uint64_t)T;
        } else {
            off = span ? (size_t)(et_rng_u64(rng) % (uint64_t)(span + 1)) : 0;
        }
        for (t = 0; t < T; t++) {
            in[b * T + t] = tok[off + t];
            tg[b * T + t] = tok[off + t + 1];
        }
    }
}

et_status et_eval_tokens(et_gpt *m, const uint16_t *tokens, size_t n, int B, int T, int batches,
                         float *loss, et_error *err)
{
    int *in, *tg, i;
    uint64_t pos = 0;
    double sum = 0.0;
    et_status s = ET_OK;
    if (n < (size_t)T + 1)
        return et_error_set(err, ET_ERR_TRUNCATED, "evaluation data has %zu tokens, fewer than "
                            "one sequence of %d + 1", n, T);
    if (batches <= 0) return et_error_set(err, ET_ERR_INVALID, "need at least one evaluation batch");
    in = malloc(sizeof(int) * (size_t)B * T);
    tg = malloc(sizeof(int) * (size_t)B * T);
    if (!in || !tg) { free(in); free(tg); return et_error_set(err, ET_ERR_NOMEM, "out of memory"); }
    for (i = 0; i < batches && s == ET_OK; i++) {
        next_batch(tokens, n, B, T, 1, NULL, &pos, in, tg);
        s = et_gpt_forward(m, in, tg, B, T);
        sum += m->mean_loss;
    }
    free(in);
    free(tg);
    if (s != ET_OK) return et_error_set(err, s, "evaluation forward failed: %s", et_status_str(s));
    *loss = (float)(sum / batches);
    return ET_OK;
}

/* --- files */

static et_status ensure_dir(const char *dir, et_error *err)
{
    char buf[1024];
    size_t i, n = strlen(dir);
    if (n == 0 || n >= sizeof buf) return et_error_set(err, ET_ERR_INVALID, "bad output folder '%s'", dir);
    memcpy(buf, dir, n + 1);
    for (i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return et_error_set(err, ET_ERR_IO, "cannot create folder %s: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    return ET_OK;
}

static void dir_of(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, n, ".");
    else snprintf(out, n, "%.*s", (int)(slash - path), path);
}

static et_status save_ckpt(const char *path, et_gpt *m, const void *tok_blob, size_t tok_n,
                           const train_state *st, et_error *err)
{
    et_ckpt c;
    et_status s;
    memset(&c, 0, sizeof c);
    c.cfg = m->cfg;
    c.nparams = m->nparams;
    c.params = malloc(sizeof(float) * m->nparams);
    c.adam_m = malloc(sizeof(float) * m->nparams);
    c.adam_v = malloc(sizeof(float) * m->nparams);
    if (!c.params || !c.adam_m || !c.adam_v) {
        s = et_error_set(err, ET_ERR_NOMEM, "out of memory saving %s", path);
        goto done;
    }
    if ((s = et_gpt_get_params(m, c.params)) != ET_OK ||
        (s = et_gpt_get_adam(m, c.adam_m, c.adam_v)) != ET_OK) {
        et_error_set(err, s, "cannot read the model's state: %s", et_status_str(s));
        goto done;
    }
    c.step = m->step;
    c.tokenizer = (void *)tok_blob;
    c.tokenizer_bytes = tok_n;
    c.train_state = (void *)st;
    c.train_state_bytes = sizeof *st;
    s = et_ckpt_save(path, &c, err);
done:
    free(c.params);
    free(c.adam_m);
    free(c.adam_v);
    return s;
}

/* --- the run */

typedef struct {
    float *x, *y;
    int n, cap;
} series_buf;

static void series_push(series_buf *s, float x, float y)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        float *nx = realloc(s->x, sizeof(float) * (size_t)cap), *ny;
        if (!nx) return;
        s->x = nx;
        ny = realloc(s->y, sizeof(float) * (size_t)cap);
        if (!ny) return;
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
}

et_status et_train(const et_train_opts *o, et_train_result *res, et_error *err)
{
    et_runtime rt;
    et_ckpt init;
    et_tokenizer *tok = NULL;
    void *tok_blob = NULL;
    size_t tok_n = 0, ntrain = 0, nval = 0;
    uint16_t *train = NULL, *val = NULL;
    int *in = NULL, *tg = NULL, step0 = 0, step, have_init = 0, rt_open = 0;
    et_gpt_config cfg;
    et_rng rng;
    uint64_t pos = 0;
    et_status s;
    char path[1200], tokpath[1300];
    FILE *logf = NULL;
    series_buf tr = {0}, va = {0};
    double t0, tlast;
    int last_logged;
    float val_loss = -1.0f;
    et_adamw_config opt;
    et_qat_train qh;

    memset(res, 0, sizeof *res);
    memset(&qh, 0, sizeof qh);
    res->val_loss = -1.0f;
    res->int8_val_loss = -1.0f;
    memset(&init, 0, sizeof init);
    if (!o->data) return et_error_set(err, ET_ERR_INVALID, "no training data given (--data FILE)");
    if (o->B <= 0 || o->T <= 0 || o->steps <= 0)
        return et_error_set(err, ET_ERR_INVALID, "batch, sequence length and steps must be positive");
    if (!(o->lr > 0) || !(o->lr_min >= 0) || !(o->wd >= 0) || !(o->clip >= 0) || o->warmup < 0)
        return et_error_set(err, ET_ERR_INVALID, "learning rate must be > 0 and lr-min, wd, clip, warmup >= 0");
    if (o->init_model && o->resume)
        return et_error_set(err, ET_ERR_INVALID, "give either --model (new run from weights) or --resume, not both");

    /* data and tokenizer */
    if ((s = et_shard_read(o->data, &train, &ntrain, err)) != ET_OK) goto fail;
    if (o->val_data && (s = et_shard_read(o->val_data, &val, &nval, err)) != ET_OK) goto fail;
    if (ntrain < (size_t)o->T + 1) {
        s = et_error_set(err, ET_ERR_TRUNCATED, "%s: %zu tokens, fewer than one sequence of %d + 1",
                         o->data, ntrain, o->T);
        goto fail;
    }
    if (o->tokenizer) snprintf(tokpath, sizeof tokpath, "%s", o->tokenizer);
    else { dir_of(o->data, path, sizeof path); snprintf(tokpath, sizeof tokpath, "%s/tokenizer.bin", path); }

    /* model config: from a checkpoint, or from flags with the tokenizer's vocabulary */
    if (o->init_model || o->resume) {
        const char *mp = o->resume ? o->resume : o->init_model;
        if ((s = et_model_load(mp, &init, err)) != ET_OK) goto fail;
        have_init = 1;
        cfg = init.cfg;
        if (init.tokenizer_bytes && (s = et_tok_deserialize(init.tokenizer, init.tokenizer_bytes, &tok, err)) != ET_OK)
            goto fail;
    }
    if (!tok && (s = et_tok_load(tokpath, &tok, err)) != ET_OK) {
        if (have_init) { s = ET_OK; tok = NULL; } /* an llm.c model may come without one */
        else goto fail;
    }
    if (tok && (s = et_tok_serialize(tok, &tok_blob, &tok_n)) != ET_OK) {
        et_error_set(err, s, "cannot serialise the tokenizer");
        goto fail;
    }
    if (!have_init) {
        memset(&cfg, 0, sizeof cfg);
        cfg.vocab = (int)et_tok_vocab_size(tok);
        cfg.context = o->context;
        cfg.layers = o->layers;
        cfg.heads = o->heads;
        cfg.channels = o->channels;
    }
    if (o->T > cfg.context) {
        s = et_error_set(err, ET_ERR_RANGE, "sequence length %d is longer than the model's context %d",
                         o->T, cfg.context);
        goto fail;
    }
    if ((s = check_tokens(o->data, train, ntrain, cfg.vocab, err)) != ET_OK) goto fail;
    if (val && (s = check_tokens(o->val_data, val, nval, cfg.vocab, err)) != ET_OK) goto fail;
    if (val && nval < (size_t)o->T + 1) {
        s = et_error_set(err, ET_ERR_TRUNCATED, "%s: %zu tokens, fewer than one sequence of %d + 1",
                         o->val_data, nval, o->T);
        goto fail;
    }

    if ((s = et_runtime_open(&rt, o->backend, &cfg, o->B, o->T, ET_GPT_TRAIN, o->threads, err)) != ET_OK)
        goto fail;
    rt_open = 1;
    et_rng_seed(&rng, o->seed);
    if (have_init) {
        if (init.nparams != rt.model.nparams) {
            s = et_error_set(err, ET_ERR_FORMAT, "checkpoint parameter count %zu does not match its config (%zu)",
                             init.nparams, rt.model.nparams);
            goto fail;
        }
        et_gpt_set_params(&rt.model, init.params);
    } else {
        et_gpt_init_weights(&rt.model, o->seed);
    }
    if (o->resume) {
        train_state st;
        if (!init.adam_m || !init.train_state || init.train_state_bytes != sizeof st) {
            s = et_error_set(err, ET_ERR_FORMAT, "%s has no optimizer or trainer state to resume from "
                             "(use --model to start a new run from its weights)", o->resume);
            goto fail;
        }
        memcpy(&st, init.train_state, sizeof st);
        if (st.magic != STATE_MAGIC || st.version != STATE_VERSION) {
            s = et_error_set(err, ET_ERR_FORMAT, "%s: trainer state has magic 0x%08x version %u, "
                             "expected 0x%08x version %u", o->resume, st.magic, st.version, STATE_MAGIC, STATE_VERSION);
            goto fail;
        }
        if (st.B != o->B || st.T != o->T || st.sequential != o->sequential) {
            s = et_error_set(err, ET_ERR_INVALID, "%s was trained with -b %d -t %d%s; resume with the same",
                             o->resume, st.B, st.T, st.sequential ? " --sequential" : "");
            goto fail;
        }
        et_gpt_set_adam(&rt.model, init.adam_m, init.adam_v, init.step);
        rng.state = st.rng;
        pos = st.data_pos;
        step0 = st.step;
    }

    /* QAT: fake quantization in front of the backend; a resumed run takes its ranges back */
    if (o->qat && ((s = et_qat_train_open(&qh, &rt.model, &rt.be, (et_qmode)o->qat, o->qat_decay, err)) != ET_OK ||
                   (o->resume && (s = et_qat_train_load_state(&qh, o->resume, err)) != ET_OK)))
        goto fail;

    if ((s = ensure_dir(o->out_dir, err)) != ET_OK) goto fail;
    snprintf(path, sizeof path, "%s/log.csv", o->out_dir);
    logf = fopen(path, step0 ? "a" : "w");
    if (!logf) { s = et_error_set(err, ET_ERR_IO, "cannot write %s: %s", path, strerror(errno)); goto fail; }
    if (!step0) fprintf(logf, "step,train_loss,val_loss,lr,grad_norm\n");

    in = malloc(sizeof(int) * (size_t)o->B * o->T);
    tg = malloc(sizeof(int) * (size_t)o->B * o->T);
    if (!in || !tg) { s = et_error_set(err, ET_ERR_NOMEM, "out of memory"); goto fail; }
    opt.beta1 = o->beta1; opt.beta2 = o->beta2; opt.eps = o->eps;
    opt.weight_decay = o->wd; opt.grad_clip = o->clip;

    if (o->progress)
        fprintf(o->progress, "model: %d layers, %d heads, %d channels, context %d, vocab %d (padded %d), "
                "%zu parameters; arena %.1f MiB; %d threads\n", cfg.layers, cfg.heads, cfg.channels,
                cfg.context, cfg.vocab, rt.model.cfg.vocab_padded, rt.model.nparams,
                rt.plan.total / 1048576.0, et_threads_workers(&rt.threads));
    if (o->progress && qh.open)
        fprintf(o->progress, "qat: fake %s quantization (%s), activation ranges decay %g\n",
                o->qat == ET_QMODE_W8A8 ? "w8a8" : "w8a32", o->qat == ET_QMODE_W8A8 ?
                "weights per channel, 8L+1 activation sites per tensor" : "weights per channel",
                (double)o->qat_decay);
    t0 = tlast = now_s();
    last_logged = step0;
    for (step = step0; step < o->steps; step++) {
        int is_last = step + 1 == o->steps;
        float loss, lr = et_train_lr(o, step);
        next_batch(train, ntrain, o->B, o->T, o->sequential, &rng, &pos, in, tg);
        opt.lr = lr;
        if ((s = et_gpt_forward(&rt.model, in, tg, o->B, o->T)) != ET_OK ||
            (s = et_gpt_zero_grad(&rt.model)) != ET_OK ||
            (s = et_gpt_backward(&rt.model, 1.0f)) != ET_OK ||
            (s = et_gpt_step(&rt.model, &opt)) != ET_OK) {
            et_error_set(err, s, "training step %d failed: %s", step + 1, et_status_str(s));
            goto fail;
        }
        loss = rt.model.mean_loss; /* evaluation below reuses the model's forward state */
        res->last_loss = loss;
        series_push(&tr, (float)(step + 1), loss);
        val_loss = -1.0f;
        if (val && ((o->eval_every > 0 && (step + 1) % o->eval_every == 0) || is_last)) {
            if ((s = et_eval_tokens(&rt.model, val, nval, o->B, o->T, o->eval_batches, &val_loss, err)) != ET_OK)
                goto fail;
            series_push(&va, (float)(step + 1), val_loss);
            res->val_loss = val_loss;
        }
        fprintf(logf, "%d,%.9g,%.9g,%.9g,%.9g\n", step + 1, loss, val_loss, lr,
                rt.model.last_grad_norm);
        if (o->progress && ((step + 1) % o->log_every == 0 || step == step0 || is_last)) {
            double t = now_s(), el = t - t0;
            double tps = (double)(step + 1 - last_logged) * o->B * o->T / (t - tlast > 1e-9 ? t - tlast : 1e-9);
            char eta[32];
            fmt_eta(eta, sizeof eta, el / (step + 1 - step0) * (o->steps - step - 1));
            fprintf(o->progress, "step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | ETA %s\n", step + 1,
                    o->steps, loss, lr, tps, eta);
            tlast = t;
            last_logged = step + 1;
        }
        if (o->progress && val_loss >= 0)
            fprintf(o->progress, "step %d/%d | val loss %.4f\n", step + 1, o->steps, val_loss);
        if ((o->ckpt_every > 0 && (step + 1) % o->ckpt_every == 0) || is_last) {
            train_state st;
            memset(&st, 0, sizeof st);
            st.magic = STATE_MAGIC; st.version = STATE_VERSION; st.rng = rng.state; st.data_pos = pos;
            st.step = step + 1; st.B = o->B; st.T = o->T; st.sequential = o->sequential; st.seed = o->seed;
            if (is_last) snprintf(path, sizeof path, "%s/model.etck", o->out_dir);
            else snprintf(path, sizeof path, "%s/ckpt_%06d.etck", o->out_dir, step + 1);
            if ((s = save_ckpt(path, &rt.model, tok_blob, tok_n, &st, err)) != ET_OK) goto fail;
            if (qh.open && (s = et_qat_train_save_state(&qh, path, err)) != ET_OK) goto fail;
        }
        fflush(logf);
    }
    res->seconds = now_s() - t0;
    res->steps_done = o->steps - step0;
    res->tok_per_s = res->seconds > 0 ? (double)res->steps_done * o->B * o->T / res->seconds : 0;
    if (qh.open) { /* the int8 model the run simulated, and its loss on the same batches */
        snprintf(path, sizeof path, "%s/model.etq", o->out_dir);
        if ((s = et_qat_train_export(&qh, &rt.model, tok_blob, tok_n, path, err)) != ET_OK ||
            (val && (s = et_qat_train_eval_file(path, val, nval, o->B, o->T, o->eval_batches, o->threads,
                                                &res->int8_val_loss, err)) != ET_OK))
            goto fail;
    }
    if (tr.n) {
        et_series ser[2];
        int ns = 1;
        ser[0].name = "train loss"; ser[0].x = tr.x; ser[0].y = tr.y; ser[0].n = tr.n;
        if (va.n) { ser[1].name = "val loss"; ser[1].x = va.x; ser[1].y = va.y; ser[1].n = va.n; ns = 2; }
        snprintf(path, sizeof path, "%s/loss.svg", o->out_dir);
        if ((s = et_plot_svg(path, "edgetrain: loss", ser, ns, "step", "loss (nats/token)", err)) != ET_OK)
            goto fail;
    }
    s = ET_OK;
fail:
    if (logf) fclose(logf);
    et_qat_train_close(&qh); /* before the runtime: it restores the table inside it */
    if (rt_open) et_runtime_close(&rt);
    et_ckpt_free(&init);
    et_tok_free(tok);
    free(tok_blob);
    free(train);
    free(val);
    free(in);
    free(tg);
    free(tr.x); free(tr.y); free(va.x); free(va.y);
    return s;
}
