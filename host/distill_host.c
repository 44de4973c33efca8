/* distill_host.c - the distillation loop (et_distill_host.h).
 *
 * The student runs on the cpu backend with one op replaced: crossentropy_bwd becomes the
 * distillation gradient of et_distill_loss, reading the student's logits (its last
 * forward) and the teacher's (computed on the same batch just before). The wrapper's
 * context starts with the cpu context, so every other op gets the pointer it expects.
 * This keeps core/ unchanged: et_gpt_backward has no entry point that takes logits
 * gradients from outside (see docs/COMPRESSION.md for the hook it could grow).
 * Deliberately avoids: host/trainer.c's loop (no hook for a second model), checkpoints
 * mid-run and resume.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "et_ckpt.h"
#include "et_distill.h"
#include "et_distill_host.h"
#include "et_pool.h"
#include "et_qruntime.h"
#include "et_rng.h"
#include "et_runtime.h"
#include "et_shard.h"
#include "et_train.h"

typedef struct {
    et_cpu_ctx cpu;            /* first: the cpu ops cast ctx to et_cpu_ctx* */
    const float *student, *teacher;
    float alpha, tau;
} dctx;

static et_status distill_ce_bwd(void *ctx, float *dlogits, const float *probs, const int *targets,
                                float dloss, int N, int V, int Vp)
{
    dctx *d = (dctx *)ctx;
    ET_UNUSED(probs);
    return et_distill_loss(d->student, d->teacher, targets, N, V, Vp, d->alpha, d->tau, dloss * (float)N,
                           dlogits, NULL);
}

void et_distill_opts_init(et_distill_opts *o)
{
    memset(o, 0, sizeof *o);
    o->layers = 4; o->heads = 4; o->channels = 128;
    o->B = 12; o->T = 64; o->steps = 2000; o->warmup = 100;
    o->lr = 1e-3f; o->lr_min = 1e-4f; o->wd = 0.1f; o->clip = 1.0f;
    o->alpha = 0.5f; o->tau = 2.0f;
    o->seed = 1337;
    o->threads = 1;
    o->eval_batches = 0;
    o->log_every = 200;
    o->out_dir = "runs/distill";
}

et_status et_distill(const et_distill_opts *o, et_distill_result *r, et_error *err)
{
    et_ckpt tc, sc;
    et_runtime trt;
    et_pool *pool = NULL;
    et_threads th;
    et_backend be;
    dctx d;
    et_gpt_config cfg;
    et_gpt_plan plan;
    et_gpt student;
    et_arena arena;
    et_train_opts sched;
    et_adamw_config opt;
    et_rng rng;
    void *mem = NULL;
    uint16_t *tok = NULL, *val = NULL;
    size_t ntok = 0, nval = 0, i;
    int *in = NULL, *tg = NULL, step, have_trt = 0;
    char path[1100];
    double t0;
    et_status s;
    memset(&tc, 0, sizeof tc);
    memset(r, 0, sizeof *r);
    r->val_loss = r->teacher_val_loss = -1.0f;
    if (!o->teacher || !o->data || !o->out_dir)
        return et_error_set(err, ET_ERR_INVALID, "--teacher, --data and --out are required");
    if (!(o->alpha >= 0.0f && o->alpha <= 1.0f) || !(o->tau > 0.0f))
        return et_error_set(err, ET_ERR_INVALID, "--alpha must be in [0, 1] and --tau positive (got %g, %g)",
                            (double)o->alpha, (double)o->tau);
    if (o->B <= 0 || o->T <= 0 || o->steps <= 0 || !(o->lr > 0) || o->warmup < 0)
        return et_error_set(err, ET_ERR_INVALID, "batch, sequence, steps and lr must be positive");
    if ((s = et_model_load(o->teacher, &tc, err)) != ET_OK) return s;
    cfg = tc.cfg;
    cfg.layers = o->layers; cfg.heads = o->heads; cfg.channels = o->channels;
    if (et_gpt_config_check(&cfg) != ET_OK || o->T > cfg.context) {
        s = et_error_set(err, ET_ERR_INVALID, "student config: layers %d, heads %d, channels %d, T %d (context %d) "
                         "is not valid", o->layers, o->heads, o->channels, o->T, cfg.context);
        goto out;
    }
    if ((s = et_shard_read(o->data, &tok, &ntok, err)) != ET_OK) goto out;
    if (o->val_data && (s = et_shard_read(o->val_data, &val, &nval, err)) != ET_OK) goto out;
    if (ntok < (size_t)o->T + 1) {
        s = et_error_set(err, ET_ERR_TRUNCATED, "%s has %zu tokens; need at least %d", o->data, ntok, o->T + 1);
        goto out;
    }
    for (i = 0; i < ntok; i++)
        if (tok[i] >= cfg.vocab) {
            s = et_error_set(err, ET_ERR_RANGE, "%s: token %u at %zu is outside the vocabulary of %d", o->data,
                             (unsigned)tok[i], i, cfg.vocab);
            goto out;
        }
    /* teacher: inference on the training batch shape */
    if ((s = et_runtime_open(&trt, "cpu", &tc.cfg, o->B, o->T, ET_GPT_INFER, o->threads, err)) != ET_OK) goto out;
    have_trt = 1;
    et_gpt_set_params(&trt.model, tc.params);
    /* student: the cpu backend with the distillation gradient in place of cross-entropy's */
    if ((s = et_pool_create(o->threads > 0 ? o->threads : et_cpu_count(), &pool)) != ET_OK) {
        et_error_set(err, s, "could not start threads");
        goto out;
    }
    et_pool_threads(pool, &th);
    memset(&d, 0, sizeof d);
    et_cpu_backend_init(&be, &d.cpu, &th);
    be.crossentropy_bwd = distill_ce_bwd;
    d.alpha = o->alpha;
    d.tau = o->tau;
    if ((s = et_gpt_plan_compute(&cfg, o->B, o->T, ET_GPT_TRAIN, &be, &plan)) != ET_OK ||
        posix_memalign(&mem, ET_ALIGN, plan.total) != 0) {
        mem = NULL;
        s = et_error_set(err, ET_ERR_NOMEM, "cannot allocate the student's arena");
        goto out;
    }
    et_arena_init(&arena, mem, plan.total);
    if ((s = et_gpt_create(&student, &cfg, o->B, o->T, ET_GPT_TRAIN, &be, &arena)) != ET_OK ||
        (s = et_gpt_init_weights(&student, o->seed)) != ET_OK) {
        et_error_set(err, s, "cannot build the student: %s", et_status_str(s));
        goto out;
    }
    d.student = student.acts.logits;
    d.teacher = trt.model.acts.logits;
    r->student_params = student.nparams;
    r->teacher_params = tc.nparams;
    et_train_opts_init(&sched);
    sched.steps = o->steps; sched.warmup = o->warmup; sched.lr = o->lr; sched.lr_min = o->lr_min;
    sched.schedule = ET_SCHED_COSINE;
    opt.beta1 = 0.9f; opt.beta2 = 0.99f; opt.eps = 1e-8f; opt.weight_decay = o->wd; opt.grad_clip = o->clip;
    in = malloc(sizeof(int) * (size_t)o->B * o->T);
    tg = malloc(sizeof(int) * (size_t)o->B * o->T);
    if (!in || !tg) { s = et_error_set(err, ET_ERR_NOMEM, "out of memory"); goto out; }
    et_rng_seed(&rng, o->seed ^ 0x5DEECE66DULL);
    t0 = et_qclock();
    for (step = 0; step < o->steps; step++) {
        int b, k;
        for (b = 0; b < o->B; b++) {
            size_t off = (size_t)(et_rng_u64(&rng) % (uint64_t)(ntok - (size_t)o->T));
            for (k = 0; k < o->T; k++) {
                in[b * o->T + k] = tok[off + k];
                tg[b * o->T + k] = tok[off + k + 1];
            }
        }
        if (o->alpha > 0.0f && (s = et_gpt_forward(&trt.model, in, NULL, o->B, o->T)) != ET_OK) break;
        opt.lr = et_train_lr(&sched, step);
        if ((s = et_gpt_forward(&student, in, tg, o->B, o->T)) != ET_OK || (s = et_gpt_zero_grad(&student)) != ET_OK ||
            (s = et_gpt_backward(&student, 1.0f)) != ET_OK || (s = et_gpt_step(&student, &opt)) != ET_OK)
            break;
        r->last_ce = student.mean_loss;
        if (o->progress && (step + 1) % o->log_every == 0)
            fprintf(o->progress, "step %d/%d | student ce %.4f | lr %.2e\n", step + 1, o->steps, student.mean_loss,
                    (double)opt.lr);
    }
    r->seconds = et_qclock() - t0;
    if (s != ET_OK) {
        et_error_set(err, s, "step %d failed: %s", step, et_status_str(s));
        goto out;
    }
    if (val) {
        double sec;
        int nb;
        if ((s = et_eval_windows(et_fwd_gpt, &student, val, nval, o->B, o->T, o->eval_batches, &r->val_loss, &sec,
                                 &nb, err)) != ET_OK ||
            (s = et_eval_windows(et_fwd_gpt, &trt.model, val, nval, o->B, o->T, o->eval_batches,
                                 &r->teacher_val_loss, &sec, &nb, err)) != ET_OK)
            goto out;
    }
    /* save the student with the teacher's tokenizer */
    if (mkdir(o->out_dir, 0777) != 0 && errno != EEXIST) {
        s = et_error_set(err, ET_ERR_IO, "cannot create folder %s: %s", o->out_dir, strerror(errno));
        goto out;
    }
    memset(&sc, 0, sizeof sc);
    sc.cfg = cfg;
    sc.nparams = student.nparams;
    sc.params = malloc(sizeof(float) * student.nparams);
    if (!sc.params) { s = et_error_set(err, ET_ERR_NOMEM, "out of memory"); goto out; }
    et_gpt_get_params(&student, sc.params);
    sc.tokenizer = tc.tokenizer;
    sc.tokenizer_bytes = tc.tokenizer_bytes;
    snprintf(path, sizeof path, "%s/model.etck", o->out_dir);
    s = et_ckpt_save(path, &sc, err);
    free(sc.params);
out:
    if (have_trt) et_runtime_close(&trt);
    if (pool) et_pool_destroy(pool);
    free(mem);
    free(in);
    free(tg);
    free(tok);
    free(val);
    et_ckpt_free(&tc);
    return s;
}
