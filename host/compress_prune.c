/* compress_prune.c - the pruning pass on the host: parse the request, build the masks
 * of the GPT's block matrices, and fine-tune with the masks held (dropped weights are
 * zeroed after every AdamW step; unstructured sparsity can rise on a cubic schedule).
 * Deliberately avoids: host/trainer.c (its loop has no hook for masks); this loop is
 * the plain forward / backward / AdamW step of the core API on random windows.
 */
#include <stdlib.h>
#include <string.h>
#include "et_compress.h"
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

/* masks for every block matrix at sparsity s (unstructured) or N:M; all else kept */
static et_status make_mask(const et_gpt_config *c, const float *params, const et_prune_spec *p, float s,
                           uint8_t *mask, et_error *err)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    size_t np = et_gpt_tensors(c, t), i;
    int k, l;
    uint8_t *m1 = NULL;
    et_status st = ET_OK;
    memset(mask, 0xFF, et_prune_mask_bytes(np));
    for (k = 0; k < ET_PRUNE_NMATS && st == ET_OK; k++) {
        const et_tensor_info *ti = &t[et_prune_gpt_tensors[k]];
        size_t per = ti->count / (size_t)c->layers;
        int rows = ti->shape[1], cols = ti->shape[2];
        free(m1);
        m1 = malloc(et_prune_mask_bytes(per));
        if (!m1) return et_error_set(err, ET_ERR_NOMEM, "out of memory for pruning masks");
        for (l = 0; l < c->layers && st == ET_OK; l++) {
            const float *w = params + ti->offset + (size_t)l * per;
            st = p->kind == 1 ? et_prune_magnitude(w, per, s, m1, NULL) : et_prune_nm(w, rows, cols, p->N, p->M, m1);
            if (st != ET_OK) {
                if (p->kind == 2)
                    et_error_set(err, st, "cannot prune %s %d:%d: its rows have %d weights, not a multiple of %d",
                                 ti->name, p->N, p->M, cols, p->M);
                else
                    et_error_set(err, st, "cannot prune %s: %s", ti->name, et_status_str(st));
                break;
            }
            for (i = 0; i < per; i++)
                if (!et_prune_kept(m1, i)) {
                    size_t g = ti->offset + (size_t)l * per + i;
                    mask[g >> 3] = (uint8_t)(mask[g >> 3] & ~(1u << (g & 7)));
                }
        }
    }
    free(m1);
    return st;
}

et_status et_compress_prune(const et_gpt_config *cfg, float *params, const et_prune_spec *p,
                            const et_finetune_opts *fo, const uint16_t *train, size_t n,
                            uint8_t *mask, et_error *err)
{
    et_gpt_config c = *cfg;
    et_runtime rt;
    et_adamw_config opt;
    et_rng rng;
    size_t np;
    float *w = NULL;
    int *in = NULL, *tg = NULL, step, every, ramp;
    et_status s;
    et_tensor_info t[ET_GPT_NTENSORS];
    if (et_gpt_config_check(&c) != ET_OK) return et_error_set(err, ET_ERR_INVALID, "invalid model config");
    if (!p || (p->kind != 1 && p->kind != 2)) return et_error_set(err, ET_ERR_INVALID, "no pruning asked for");
    if (fo->steps < 0 || (fo->steps > 0 && (fo->B <= 0 || fo->T <= 0 || fo->T > c.context || !(fo->lr > 0))))
        return et_error_set(err, ET_ERR_INVALID, "fine-tune needs steps >= 0, B > 0, 0 < T <= %d and lr > 0", c.context);
    if (fo->steps > 0 && (!train || n < (size_t)fo->T + 1))
        return et_error_set(err, ET_ERR_TRUNCATED, "the fine-tuning set has %zu tokens; it needs at least one "
                            "sequence of %d + 1", train ? n : 0, fo->T);
    np = et_gpt_tensors(&c, t);
    w = malloc(sizeof(float) * np);
    if (!w) return et_error_set(err, ET_ERR_NOMEM, "out of memory");
    memcpy(w, params, sizeof(float) * np);
    /* one shot, or the cubic ramp's first point */
    ramp = p->kind == 1 && fo->cubic && fo->steps >= 20 ? (fo->steps * 3) / 4 : 0;
    every = ramp ? fo->steps / 20 : 0;
    if ((s = make_mask(&c, w, p, ramp ? 0.0f : p->sparsity, mask, err)) != ET_OK) goto out;
    et_prune_apply(w, mask, np);
    if (fo->steps > 0) {
        if ((s = et_runtime_open(&rt, "cpu", &c, fo->B, fo->T, ET_GPT_TRAIN, fo->threads, err)) != ET_OK) goto out;
        in = malloc(sizeof(int) * (size_t)fo->B * fo->T);
        tg = malloc(sizeof(int) * (size_t)fo->B * fo->T);
        if (!in || !tg) { et_runtime_close(&rt); s = et_error_set(err, ET_ERR_NOMEM, "out of memory"); goto out; }
        opt.lr = fo->lr; opt.beta1 = 0.9f; opt.beta2 = 0.99f; opt.eps = 1e-8f; opt.weight_decay = 0.0f;
        opt.grad_clip = 1.0f;
        et_rng_seed(&rng, fo->seed);
        et_gpt_set_params(&rt.model, w);
        for (step = 0; step < fo->steps; step++) {
            int b, i;
            if (ramp && step > 0 && step % every == 0 && step <= ramp) {
                double f = 1.0 - (double)step / ramp;
                float st = (float)(p->sparsity * (1.0 - f * f * f));
                et_gpt_get_params(&rt.model, w);
                if ((s = make_mask(&c, w, p, st, mask, err)) != ET_OK) { et_runtime_close(&rt); goto out; }
                et_prune_apply(w, mask, np);
                et_gpt_set_params(&rt.model, w);
            }
            for (b = 0; b < fo->B; b++) {
                size_t off = (size_t)(et_rng_u64(&rng) % (uint64_t)(n - (size_t)fo->T));
                for (i = 0; i < fo->T; i++) {
                    in[b * fo->T + i] = train[off + i];
                    tg[b * fo->T + i] = train[off + i + 1];
                }
            }
            if ((s = et_gpt_forward(&rt.model, in, tg, fo->B, fo->T)) != ET_OK ||
                (s = et_gpt_zero_grad(&rt.model)) != ET_OK || (s = et_gpt_backward(&rt.model, 1.0f)) != ET_OK ||
                (s = et_gpt_step(&rt.model, &opt)) != ET_OK) {
                et_runtime_close(&rt);
                s = et_error_set(err, s, "fine-tune step %d failed: %s", step, et_status_str(s));
                goto out;
            }
            /* the masks hold: dropped weights back to zero after every step */
            et_gpt_get_params(&rt.model, w);
            et_prune_apply(w, mask, np);
            et_gpt_set_params(&rt.model, w);
            if (fo->progress && ((step + 1) % 50 == 0 || step + 1 == fo->steps))
                fprintf(fo->progress, "fine-tune step %d/%d | loss %.4f\n", step + 1, fo->steps, rt.model.mean_loss);
        }
        et_runtime_close(&rt);
        if (ramp) { /* the schedule ends at the target */
            if ((s = make_mask(&c, w, p, p->sparsity, mask, err)) != ET_OK) goto out;
            et_prune_apply(w, mask, np);
        }
    }
    memcpy(params, w, sizeof(float) * np);
    s = ET_OK;
out:
    free(w);
    free(in);
    free(tg);
    return s;
}
