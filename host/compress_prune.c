/* compress_prune.c - the pruning pass and the fine-tune on the host: parse the request,
 * build the masks of every matrix that runs (a block's W, or its factors A and B), and
 * fine-tune with the masks held (dropped weights are zeroed after every AdamW step;
 * unstructured sparsity can rise on a cubic schedule). Factored linears train through
 * their product: the core model holds W = A.B, and its gradient gives the factors'
 * (dA = dW B^T, dB = A^T dW) for an AdamW of their own; clipping covers all of them.
 * Deliberately avoids: host/trainer.c (its loop has no hook for masks or factors); this
 * loop is the plain forward / backward / AdamW step of the core API on random windows.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "et_cmodel.h"
#include "et_cpu_ops.h"
#include "et_gemm.h"
#include "et_rng.h"
#include "et_runtime.h"

et_status et_prune_spec_parse(const char *s, et_prune_spec *p, et_error *err)
{
    char *end;
    memset(p, 0, sizeof *p);
    if (!s || !*s) return et_error_set(err, ET_ERR_INVALID, "empty --prune (want a sparsity like 0.5, or N:M like 2:4)");
    if (strchr(s, ':')) {
        long n = strtol(s, &end, 10), m;
        if (end == s || *end != ':') goto bad;
        m = strtol(end + 1, &end, 10);
        if (*end) goto bad;
        if (n < 1 || m > 16 || n >= m)
            return et_error_set(err, ET_ERR_INVALID, "--prune %s: N:M needs 1 <= N < M <= 16 (N < M: N is "
                                "what each group of M keeps)", s);
        p->kind = 2;
        p->N = (int)n;
        p->M = (int)m;
        return ET_OK;
    }
    p->sparsity = strtof(s, &end);
    if (end == s || *end) goto bad;
    if (!(p->sparsity >= 0.0f && p->sparsity <= 1.0f))
        return et_error_set(err, ET_ERR_INVALID, "--prune %s: a sparsity must be between 0 and 1 (the share "
                            "of each matrix's weights to drop)", s);
    p->kind = 1;
    return ET_OK;
bad:
    return et_error_set(err, ET_ERR_INVALID, "--prune '%s' is neither a sparsity (0.5) nor N:M (2:4)", s);
}

void et_finetune_opts_init(et_finetune_opts *o)
{
    memset(o, 0, sizeof *o);
    o->B = 12;
    o->T = 64;
    o->lr = 3e-4f;
    o->threads = 1;
    o->seed = 4242;
    o->cubic = 1;
}

// --- the pruning pass

static const char *lin_name[ET_CGPT_LIN] = {"qkvw", "attprojw", "fcw", "fcprojw"};

et_status et_cmodel_prune(et_cmodel *m, const et_prune_spec *p, float sparsity, et_error *err)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    static const int wt[ET_CGPT_LIN] = {4, 6, 10, 12};
    int n = m->cfg.layers * ET_CGPT_LIN, i, k, nm;
    uint8_t **masks = NULL;
    et_status st = ET_OK;
    if (!p || (p->kind != 1 && p->kind != 2)) return et_error_set(err, ET_ERR_INVALID, "no pruning asked for");
    masks = calloc((size_t)n * 2, sizeof *masks);
    if (!masks) return et_error_set(err, ET_ERR_NOMEM, "out of memory for pruning masks");
    et_gpt_tensors(&m->cfg, t);
    /* every mask first: the model changes only when all of them exist */
    for (i = 0; i < n && st == ET_OK; i++) {
        et_cmodel_lin *d = &m->lin[i];
        for (k = 0, nm = d->rank ? 2 : 1; k < nm && st == ET_OK; k++) {
            int rows = !d->rank ? d->OC : k ? d->rank : d->OC, cols = !d->rank ? d->K : k ? d->K : d->rank;
            const float *w = !d->rank ? m->params + t[wt[i % ET_CGPT_LIN]].offset +
                                            (size_t)(i / ET_CGPT_LIN) * d->OC * d->K
                                      : k ? d->B : d->A;
            size_t cnt = (size_t)rows * cols;
            char what[64];
            if (!d->rank) snprintf(what, sizeof what, "%s", lin_name[i % ET_CGPT_LIN]);
            else snprintf(what, sizeof what, "%s's factor %s (%dx%d)", lin_name[i % ET_CGPT_LIN], k ? "B" : "A", rows, cols);
            if (!(masks[2 * i + k] = malloc(et_prune_mask_bytes(cnt)))) {
                st = et_error_set(err, ET_ERR_NOMEM, "out of memory for pruning masks");
                break;
            }
            st = p->kind == 1 ? et_prune_magnitude(w, cnt, sparsity, masks[2 * i + k], NULL)
                              : et_prune_nm(w, rows, cols, p->N, p->M, masks[2 * i + k]);
            if (st != ET_OK) {
                if (p->kind == 2)
                    et_error_set(err, st, "cannot prune %s %d:%d: its rows have %d weights, not a multiple of %d", what,
                                 p->N, p->M, cols, p->M);
                else
                    et_error_set(err, st, "cannot prune %s: %s%s", what, et_status_str(st),
                                 st == ET_ERR_RANGE ? " (a non-finite weight)" : "");
            }
        }
    }
    if (st == ET_OK) {
        for (i = 0; i < n; i++) {
            et_cmodel_lin *d = &m->lin[i];
            uint8_t **slot0 = d->rank ? &d->mA : &d->mW;
            free(*slot0);
            *slot0 = masks[2 * i];
            masks[2 * i] = NULL;
            if (d->rank) {
                free(d->mB);
                d->mB = masks[2 * i + 1];
                masks[2 * i + 1] = NULL;
            }
        }
        m->prune = *p;
        m->prune.sparsity = p->kind == 1 ? p->sparsity : 0.0f;
        et_cmodel_apply_masks(m);
    }
    for (i = 0; i < 2 * n; i++) free(masks[i]);
    free(masks);
    return st;
}

// --- the fine-tune

static double sumsq(const float *x, size_t n)
{
    double s = 0.0;
    size_t i;
    for (i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

static void scale(float *x, size_t n, float f)
{
    size_t i;
    for (i = 0; i < n; i++) x[i] *= f;
}

/* dA(OC,r) = dW(OC,K) . B(r,K)^T and dB(r,K) = A(OC,r)^T . dW */
static et_status factor_grads(const et_cmodel_lin *d, const float *dW, float *dA, float *dB, float *scr, size_t sb)
{
    et_gemm_args g;
    et_status s;
    g.transA = 0; g.transB = 1; g.M = d->OC; g.N = d->rank; g.K = d->K;
    g.A = dW; g.lda = d->K; g.B = d->B; g.ldb = d->K; g.bias = 0; g.accumulate = 0; g.C = dA; g.ldc = d->rank;
    if ((s = et_gemm_f32(&g, NULL, scr, sb)) != ET_OK) return s;
    g.transA = 1; g.transB = 0; g.M = d->rank; g.N = d->K; g.K = d->OC;
    g.A = d->A; g.lda = d->rank; g.B = dW; g.ldb = d->K; g.C = dB; g.ldc = d->K;
    return et_gemm_f32(&g, NULL, scr, sb);
}

et_status et_cmodel_finetune(et_cmodel *m, const et_finetune_opts *fo, const uint16_t *train, size_t n,
                             et_error *err)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    static const int wt[ET_CGPT_LIN] = {4, 6, 10, 12};
    et_runtime rt;
    et_adamw_config opt;
    et_rng rng;
    int nl = m->cfg.layers * ET_CGPT_LIN, *in = NULL, *tg = NULL, step, every, ramp, i, have_rt = 0;
    float **mom = NULL, *scr = NULL;
    size_t sb = et_gemm_scratch_bytes(1);
    const float clip = 1.0f;
    et_status s = ET_OK;
    if (fo->steps < 0 || (fo->steps > 0 && (fo->B <= 0 || fo->T <= 0 || fo->T > m->cfg.context || !(fo->lr > 0))))
        return et_error_set(err, ET_ERR_INVALID, "fine-tune needs steps >= 0, B > 0, 0 < T <= %d and lr > 0",
                            m->cfg.context);
    if (fo->steps == 0) return ET_OK;
    if (!train || n < (size_t)fo->T + 1)
        return et_error_set(err, ET_ERR_TRUNCATED, "the fine-tuning set has %zu tokens; it needs at least one "
                            "sequence of %d + 1", train ? n : 0, fo->T);
    et_gpt_tensors(&m->cfg, t);
    ramp = m->prune.kind == 1 && fo->cubic && fo->steps >= 20 ? (fo->steps * 3) / 4 : 0;
    every = ramp ? fo->steps / 20 : 0;
    if (ramp && (s = et_cmodel_prune(m, &m->prune, 0.0f, err)) != ET_OK) return s;
    /* per factor: gradient, AdamW m and v (6 arrays per factored linear) */
    mom = calloc((size_t)nl * 6, sizeof *mom);
    in = malloc(sizeof(int) * (size_t)fo->B * fo->T);
    tg = malloc(sizeof(int) * (size_t)fo->B * fo->T);
    if (!mom || !in || !tg || posix_memalign((void **)&scr, ET_ALIGN, sb) != 0) {
        scr = NULL;
        s = et_error_set(err, ET_ERR_NOMEM, "out of memory for the fine-tune");
        goto out;
    }
    for (i = 0; i < nl; i++) {
        const et_cmodel_lin *d = &m->lin[i];
        int k;
        if (!d->rank) continue;
        for (k = 0; k < 6; k++) {
            size_t cnt = k % 2 == 0 ? (size_t)d->OC * d->rank : (size_t)d->rank * d->K;
            if (!(mom[6 * i + k] = calloc(cnt, sizeof(float)))) {
                s = et_error_set(err, ET_ERR_NOMEM, "out of memory for the fine-tune");
                goto out;
            }
        }
    }
    if ((s = et_runtime_open(&rt, "cpu", &m->cfg, fo->B, fo->T, ET_GPT_TRAIN, fo->threads, err)) != ET_OK) goto out;
    have_rt = 1;
    /* clipping is done here, over the factors' gradients too */
    opt.lr = fo->lr; opt.beta1 = 0.9f; opt.beta2 = 0.99f; opt.eps = 1e-8f; opt.weight_decay = 0.0f; opt.grad_clip = 0.0f;
    et_rng_seed(&rng, fo->seed);
    et_gpt_set_params(&rt.model, m->params);
    for (step = 0; step < fo->steps; step++) {
        float *g = rt.model.grads_memory;
        double norm2;
        int b, j;
        if (ramp && step > 0 && step % every == 0 && step <= ramp) {
            double f = 1.0 - (double)step / ramp;
            et_gpt_get_params(&rt.model, m->params);
            if ((s = et_cmodel_prune(m, &m->prune, (float)(m->prune.sparsity * (1.0 - f * f * f)), err)) != ET_OK)
                goto out;
            et_gpt_set_params(&rt.model, m->params);
        }
        for (b = 0; b < fo->B; b++) {
            size_t off = (size_t)(et_rng_u64(&rng) % (uint64_t)(n - (size_t)fo->T));
            for (j = 0; j < fo->T; j++) {
                in[b * fo->T + j] = train[off + j];
                tg[b * fo->T + j] = train[off + j + 1];
            }
        }
        if ((s = et_gpt_forward(&rt.model, in, tg, fo->B, fo->T)) != ET_OK ||
            (s = et_gpt_zero_grad(&rt.model)) != ET_OK || (s = et_gpt_backward(&rt.model, 1.0f)) != ET_OK) {
            s = et_error_set(err, s, "fine-tune step %d failed: %s", step, et_status_str(s));
            goto out;
        }
        /* W = A.B: the factors' gradients by the chain rule; W itself does not move */
        for (i = 0; i < nl; i++) {
            const et_cmodel_lin *d = &m->lin[i];
            float *dW = g + t[wt[i % ET_CGPT_LIN]].offset + (size_t)(i / ET_CGPT_LIN) * d->OC * d->K;
            if (!d->rank) continue;
            if ((s = factor_grads(d, dW, mom[6 * i], mom[6 * i + 1], scr, sb)) != ET_OK) {
                s = et_error_set(err, s, "factor gradients failed: %s", et_status_str(s));
                goto out;
            }
            memset(dW, 0, sizeof(float) * (size_t)d->OC * d->K);
        }
        norm2 = sumsq(g, m->nparams);
        for (i = 0; i < nl; i++)
            if (m->lin[i].rank)
                norm2 += sumsq(mom[6 * i], (size_t)m->lin[i].OC * m->lin[i].rank) +
                         sumsq(mom[6 * i + 1], (size_t)m->lin[i].rank * m->lin[i].K);
        if (norm2 > (double)clip * clip) {
            float f = (float)(clip / sqrt(norm2));
            scale(g, m->nparams, f);
            for (i = 0; i < nl; i++)
                if (m->lin[i].rank) {
                    scale(mom[6 * i], (size_t)m->lin[i].OC * m->lin[i].rank, f);
                    scale(mom[6 * i + 1], (size_t)m->lin[i].rank * m->lin[i].K, f);
                }
        }
        if ((s = et_gpt_step(&rt.model, &opt)) != ET_OK) {
            s = et_error_set(err, s, "fine-tune step %d failed: %s", step, et_status_str(s));
            goto out;
        }
        for (i = 0; i < nl; i++) {
            et_cmodel_lin *d = &m->lin[i];
            if (!d->rank) continue;
            et_cpu_adamw(NULL, d->A, mom[6 * i], mom[6 * i + 2], mom[6 * i + 4], (size_t)d->OC * d->rank, opt.lr,
                         opt.beta1, opt.beta2, opt.eps, 0.0f, rt.model.step);
            et_cpu_adamw(NULL, d->B, mom[6 * i + 1], mom[6 * i + 3], mom[6 * i + 5], (size_t)d->rank * d->K, opt.lr,
                         opt.beta1, opt.beta2, opt.eps, 0.0f, rt.model.step);
        }
        /* the masks hold: dropped weights back to zero after every step (and W = A.B again) */
        et_gpt_get_params(&rt.model, m->params);
        et_cmodel_apply_masks(m);
        et_gpt_set_params(&rt.model, m->params);
        if (fo->progress && ((step + 1) % 50 == 0 || step + 1 == fo->steps))
            fprintf(fo->progress, "fine-tune step %d/%d | loss %.4f\n", step + 1, fo->steps, rt.model.mean_loss);
    }
    if (ramp && (s = et_cmodel_prune(m, &m->prune, m->prune.sparsity, err)) != ET_OK) goto out; /* ends at the target */
    m->finetune_steps += fo->steps;
    s = ET_OK;
out:
    if (have_rt) et_runtime_close(&rt);
    for (i = 0; mom && i < nl * 6; i++) free(mom[i]);
    free(mom);
    free(in);
    free(tg);
    free(scr);
    return s;
}

// --- the dense-only form (pruned matrices in the parameter vector, one global mask)

et_status et_compress_prune(const et_gpt_config *cfg, float *params, const et_prune_spec *p,
                            const et_finetune_opts *fo, const uint16_t *train, size_t n,
                            uint8_t *mask, et_error *err)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    static const int wt[ET_CGPT_LIN] = {4, 6, 10, 12};
    et_cmodel m;
    size_t np, j;
    int i;
    et_status s;
    if (!p || (p->kind != 1 && p->kind != 2)) return et_error_set(err, ET_ERR_INVALID, "no pruning asked for");
    if ((s = et_cmodel_init(&m, cfg, params, err)) != ET_OK) return s;
    if (fo->steps < 0 || (fo->steps > 0 && (fo->B <= 0 || fo->T <= 0 || fo->T > m.cfg.context || !(fo->lr > 0)))) {
        et_cmodel_free(&m);
        return et_error_set(err, ET_ERR_INVALID, "fine-tune needs steps >= 0, B > 0, 0 < T <= %d and lr > 0",
                            m.cfg.context);
    }
    if (p->kind == 1 && fo->cubic && fo->steps >= 20) m.prune = *p; /* the fine-tune ramps up to it */
    else s = et_cmodel_prune(&m, p, p->sparsity, err);
    if (s == ET_OK) s = et_cmodel_finetune(&m, fo, train, n, err);
    if (s == ET_OK) {
        np = et_gpt_tensors(&m.cfg, t);
        memcpy(params, m.params, sizeof(float) * np);
        memset(mask, 0xFF, et_prune_mask_bytes(np));
        for (i = 0; i < m.cfg.layers * ET_CGPT_LIN; i++) {
            const et_cmodel_lin *d = &m.lin[i];
            size_t off = t[wt[i % ET_CGPT_LIN]].offset + (size_t)(i / ET_CGPT_LIN) * d->OC * d->K;
            for (j = 0; d->mW && j < (size_t)d->OC * d->K; j++)
                if (!et_prune_kept(d->mW, j)) mask[(off + j) >> 3] = (uint8_t)(mask[(off + j) >> 3] & ~(1u << ((off + j) & 7)));
        }
    }
    et_cmodel_free(&m);
    return s;
}
