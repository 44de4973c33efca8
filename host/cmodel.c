/* cmodel.c - the working model of the compression passes (et_cmodel.h): building it from
 * dense parameters or an fp32 compact file, masks, the storage they call for, packing
 * into a compact model, and W8A8 calibration through the compact fp32 forward.
 * The passes themselves are in compress_lowrank.c (factors) and compress_prune.c (masks
 * and the fine-tune).
 * Deliberately avoids: a second layout of anything (sizes and storage come from
 * et_cgpt.h; the file from et_sparse.h).
 */
#include <stdlib.h>
#include <string.h>
#include "et_cmodel.h"
#include "et_qruntime.h"

#define NBINS 2048

static const int w_tensor[ET_CGPT_LIN] = {4, 6, 10, 12};

static float *wslot(const et_cmodel *m, int i)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    const et_cmodel_lin *d = &m->lin[i];
    et_gpt_tensors(&m->cfg, t);
    return m->params + t[w_tensor[i % ET_CGPT_LIN]].offset + (size_t)(i / ET_CGPT_LIN) * d->OC * d->K;
}

static int nlin(const et_cmodel *m) { return m->cfg.layers * ET_CGPT_LIN; }

et_status et_cmodel_init(et_cmodel *m, const et_gpt_config *cfg, const float *params, et_error *err)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    int i;
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (et_gpt_config_check(&m->cfg) != ET_OK) return et_error_set(err, ET_ERR_INVALID, "invalid model config");
    m->nparams = et_gpt_tensors(&m->cfg, t);
    m->params = malloc(sizeof(float) * m->nparams);
    m->lin = calloc((size_t)nlin(m), sizeof *m->lin);
    if (!m->params || !m->lin) {
        et_cmodel_free(m);
        return et_error_set(err, ET_ERR_NOMEM, "out of memory for the model");
    }
    memcpy(m->params, params, sizeof(float) * m->nparams);
    /* the shapes from the tensor table, so any config (a structurally pruned one too) works
     * here; packing for the compact path needs GPT-2's */
    for (i = 0; i < nlin(m); i++) {
        m->lin[i].OC = t[w_tensor[i % ET_CGPT_LIN]].shape[1];
        m->lin[i].K = t[w_tensor[i % ET_CGPT_LIN]].shape[2];
    }
    return ET_OK;
}

void et_cmodel_free(et_cmodel *m)
{
    int i;
    if (!m) return;
    for (i = 0; m->lin && i < nlin(m); i++) {
        free(m->lin[i].A); free(m->lin[i].B);
        free(m->lin[i].mW); free(m->lin[i].mA); free(m->lin[i].mB);
    }
    free(m->lin);
    free(m->params);
    memset(m, 0, sizeof *m);
}

static void *dup(const void *p, size_t n, int *oom)
{
    void *q;
    if (!p) return NULL;
    if (!(q = malloc(n ? n : 1))) { *oom = 1; return NULL; }
    memcpy(q, p, n);
    return q;
}

et_status et_cmodel_copy(et_cmodel *dst, const et_cmodel *src, et_error *err)
{
    int i, oom = 0;
    et_status s = et_cmodel_init(dst, &src->cfg, src->params, err);
    if (s != ET_OK) return s;
    dst->prune = src->prune;
    dst->finetune_steps = src->finetune_steps;
    for (i = 0; i < nlin(src); i++) {
        const et_cmodel_lin *a = &src->lin[i];
        et_cmodel_lin *b = &dst->lin[i];
        size_t r = (size_t)a->rank;
        b->rank = a->rank;
        b->A = dup(a->A, sizeof(float) * a->OC * r, &oom);
        b->B = dup(a->B, sizeof(float) * r * a->K, &oom);
        b->mW = dup(a->mW, ((size_t)a->OC * a->K + 7) / 8, &oom);
        b->mA = dup(a->mA, ((size_t)a->OC * r + 7) / 8, &oom);
        b->mB = dup(a->mB, (r * a->K + 7) / 8, &oom);
    }
    if (oom) {
        et_cmodel_free(dst);
        return et_error_set(err, ET_ERR_NOMEM, "out of memory copying the model");
    }
    return ET_OK;
}

void et_cmodel_sync(et_cmodel *m)
{
    int i, o, k, q;
    for (i = 0; i < nlin(m); i++) {
        const et_cmodel_lin *d = &m->lin[i];
        float *W = wslot(m, i);
        if (!d->rank) continue;
        for (o = 0; o < d->OC; o++)
            for (k = 0; k < d->K; k++) {
                float acc = 0.0f;
                for (q = 0; q < d->rank; q++) acc += d->A[(size_t)o * d->rank + q] * d->B[(size_t)q * d->K + k];
                W[(size_t)o * d->K + k] = acc;
            }
    }
}

static void apply(float *w, const uint8_t *mask, size_t n)
{
    if (mask) et_prune_apply(w, mask, n);
}

void et_cmodel_apply_masks(et_cmodel *m)
{
    int i;
    for (i = 0; i < nlin(m); i++) {
        et_cmodel_lin *d = &m->lin[i];
        if (!d->rank) {
            apply(wslot(m, i), d->mW, (size_t)d->OC * d->K);
        } else {
            apply(d->A, d->mA, (size_t)d->OC * d->rank);
            apply(d->B, d->mB, (size_t)d->rank * d->K);
        }
    }
    et_cmodel_sync(m);
}

static et_cmat_spec mat_spec(const et_cmodel *m, const uint8_t *mask, size_t n)
{
    et_cmat_spec s;
    memset(&s, 0, sizeof s);
    if (!mask || !m->prune.kind) return s;
    if (m->prune.kind == 2) {
        s.format = ET_CMAT_NM;
        s.N = m->prune.N;
        s.M = m->prune.M;
    } else {
        s.format = ET_CMAT_BITMAP;
        s.nnz = (uint32_t)et_prune_count(mask, n);
    }
    return s;
}

void et_cmodel_spec(const et_cmodel *m, et_clinear_spec *spec)
{
    int i;
    for (i = 0; i < nlin(m); i++) {
        const et_cmodel_lin *d = &m->lin[i];
        memset(&spec[i], 0, sizeof spec[i]);
        spec[i].rank = d->rank;
        if (!d->rank) {
            spec[i].w = mat_spec(m, d->mW, (size_t)d->OC * d->K);
        } else {
            spec[i].a = mat_spec(m, d->mA, (size_t)d->OC * d->rank);
            spec[i].b = mat_spec(m, d->mB, (size_t)d->rank * d->K);
        }
    }
}

size_t et_cmodel_params(const et_cmodel *m)
{
    et_clinear_spec *spec = malloc(sizeof *spec * (size_t)nlin(m));
    size_t n = 0;
    if (!spec) return 0;
    et_cmodel_spec(m, spec);
    n = et_cgpt_params(&m->cfg, spec);
    free(spec);
    return n;
}

et_status et_cmodel_from_sparse(et_cmodel *m, const et_sparse_model *f, et_error *err)
{
    et_clinear_dst *dst = NULL;
    float *params = NULL;
    size_t np;
    int i, n = f->cfg.layers * ET_CGPT_LIN, oom = 0;
    et_status s;
    memset(m, 0, sizeof *m);
    if (f->mode != ET_CGPT_F32)
        return et_error_set(err, ET_ERR_INVALID, "this compact model is already quantized (W8A8); compress takes an "
                            "fp32 model (edgetrain, llm.c, or an fp32 compact file)");
    np = et_gpt_tensors(&f->cfg, (et_tensor_info[ET_GPT_NTENSORS]){{0}});
    params = calloc(np, sizeof(float));
    dst = calloc((size_t)n, sizeof *dst);
    if (!params || !dst) { free(params); free(dst); return et_error_set(err, ET_ERR_NOMEM, "out of memory"); }
    if ((s = et_cmodel_init(m, &f->cfg, params, err)) != ET_OK) goto out;
    for (i = 0; i < n; i++) {
        const et_clinear_spec *sp = &f->spec[i];
        et_cmodel_lin *d = &m->lin[i];
        size_t r = (size_t)sp->rank;
        d->rank = sp->rank;
        if (sp->rank) {
            d->A = malloc(sizeof(float) * d->OC * r);
            d->B = malloc(sizeof(float) * r * d->K);
            if (sp->a.format) d->mA = malloc(((size_t)d->OC * r + 7) / 8);
            if (sp->b.format) d->mB = malloc((r * d->K + 7) / 8);
            oom |= !d->A || !d->B || (sp->a.format && !d->mA) || (sp->b.format && !d->mB);
            dst[i].a = d->A; dst[i].b = d->B; dst[i].amask = d->mA; dst[i].bmask = d->mB;
        } else if (sp->w.format) {
            d->mW = malloc(((size_t)d->OC * d->K + 7) / 8);
            oom |= !d->mW;
            dst[i].wmask = d->mW;
        }
        if (!m->prune.kind && (sp->w.format || sp->a.format || sp->b.format)) {
            const et_cmat_spec *ms = sp->rank ? (sp->a.format ? &sp->a : &sp->b) : &sp->w;
            m->prune.kind = ms->format == ET_CMAT_NM ? 2 : 1;
            m->prune.N = ms->N;
            m->prune.M = ms->M;
        }
    }
    if (oom) { s = et_error_set(err, ET_ERR_NOMEM, "out of memory"); goto out; }
    if ((s = et_cgpt_unpack(&f->cfg, f->mode, f->spec, f->blob, f->blob_bytes, m->params, dst)) != ET_OK) {
        et_error_set(err, s, "the compact model's storage does not unpack: %s", et_status_str(s));
        goto out;
    }
    m->finetune_steps = (int)f->finetune_steps;
out:
    if (s != ET_OK) et_cmodel_free(m);
    free(params);
    free(dst);
    return s;
}

et_status et_cmodel_pack(const et_cmodel *m, et_cgpt_mode mode, const float *lo, const float *hi,
                         const void *tokenizer, size_t tokenizer_bytes, et_sparse_model *out,
                         et_error *err)
{
    et_clinear_src *src = NULL;
    void *smem = NULL;
    size_t sb = et_cgpt_pack_scratch_bytes(&m->cfg);
    et_arena sa;
    int i, n = nlin(m);
    et_status s;
    memset(out, 0, sizeof *out);
    out->cfg = m->cfg;
    out->mode = mode;
    out->src_nparams = m->nparams;
    out->finetune_steps = (uint32_t)m->finetune_steps;
    out->spec = malloc(sizeof *out->spec * (size_t)n);
    src = calloc((size_t)n, sizeof *src);
    if (!out->spec || !src || posix_memalign(&smem, ET_ALIGN, sb) != 0) {
        smem = NULL;
        s = et_error_set(err, ET_ERR_NOMEM, "out of memory packing the model");
        goto out;
    }
    et_cmodel_spec(m, out->spec);
    if ((s = et_cgpt_blob_bytes(&m->cfg, mode, out->spec, &out->blob_bytes)) != ET_OK) {
        if (s == ET_ERR_UNSUPPORTED)
            et_error_set(err, s, "the compact path (pruned, factored or int8 block matrices) runs GPT-2 shaped models; "
                         "this one has head_dim %d and ffn %d", m->cfg.head_dim, m->cfg.ffn);
        else
            et_error_set(err, s, "cannot lay out the compact model: %s", et_status_str(s));
        goto out;
    }
    if (posix_memalign(&out->blob, ET_ALIGN, out->blob_bytes ? out->blob_bytes : 64) != 0) {
        out->blob = NULL;
        s = et_error_set(err, ET_ERR_NOMEM, "out of memory for a blob of %zu bytes", out->blob_bytes);
        goto out;
    }
    for (i = 0; i < n; i++) {
        const et_cmodel_lin *d = &m->lin[i];
        if (d->rank) {
            src[i].a = d->A; src[i].b = d->B; src[i].amask = d->mA; src[i].bmask = d->mB;
        } else {
            src[i].w = wslot(m, i); src[i].wmask = d->mW;
        }
    }
    et_arena_init(&sa, smem, sb);
    if ((s = et_cgpt_pack(&m->cfg, mode, out->spec, m->params, src, lo, hi, out->blob, out->blob_bytes, &sa)) != ET_OK) {
        et_error_set(err, s, "packing the compact model failed: %s%s", et_status_str(s),
                     s == ET_ERR_RANGE ? " (a non-finite weight or activation range)" : "");
        goto out;
    }
    if (tokenizer_bytes) {
        if (!(out->tokenizer = malloc(tokenizer_bytes))) { s = et_error_set(err, ET_ERR_NOMEM, "out of memory"); goto out; }
        memcpy(out->tokenizer, tokenizer, tokenizer_bytes);
        out->tokenizer_bytes = tokenizer_bytes;
    }
out:
    free(src);
    free(smem);
    if (s != ET_OK) et_sparse_free(out);
    return s;
}

// --- calibration through the compact fp32 forward

typedef struct {
    et_qcalib *cal;
    const int *map; /* site -> calibrator index, -1 unused */
} obs_ctx;

static et_status obs(void *ctx, int site, const float *x, size_t n)
{
    obs_ctx *o = (obs_ctx *)ctx;
    return o->map[site] < 0 ? ET_OK : et_qcalib_observe(o->cal, o->map[site], x, n);
}

et_status et_cmodel_calibrate(const et_sparse_model *f, const uint16_t *tok, size_t n, int B, int T,
                              int batches, et_qcalib_method method, float pct, int threads, float *lo,
                              float *hi, et_error *err)
{
    et_cruntime rt;
    et_qcalib cal;
    et_arena a;
    obs_ctx oc;
    void *mem = NULL;
    int *map = NULL, *in = NULL, *tg = NULL, ns = et_cgpt_nsites(&f->cfg), used = 0, i, pass;
    size_t pos;
    et_status s;
    if (f->mode != ET_CGPT_F32) return et_error_set(err, ET_ERR_INVALID, "calibration runs an fp32 compact model");
    if (!tok || n < (size_t)T + 1)
        return et_error_set(err, ET_ERR_TRUNCATED, "the calibration set has %zu tokens; it needs at least one "
                            "sequence of %d + 1", tok ? n : 0, T);
    if ((s = et_cruntime_open(&rt, f, B, T, threads, err)) != ET_OK) return s;
    map = malloc(sizeof(int) * (size_t)ns);
    in = malloc(sizeof(int) * (size_t)B * T);
    tg = malloc(sizeof(int) * (size_t)B * T);
    if (!map || !in || !tg) { s = et_error_set(err, ET_ERR_NOMEM, "out of memory"); goto out; }
    for (i = 0; i < ns; i++) map[i] = et_cgpt_site_used(&f->cfg, f->spec, i) ? used++ : -1;
    if (posix_memalign(&mem, ET_ALIGN, et_qcalib_bytes(used, NBINS)) != 0) {
        mem = NULL;
        s = et_error_set(err, ET_ERR_NOMEM, "out of memory for calibration");
        goto out;
    }
    et_arena_init(&a, mem, et_qcalib_bytes(used, NBINS));
    if ((s = et_qcalib_init(&cal, used, NBINS, &a)) != ET_OK) {
        et_error_set(err, s, "cannot set up calibration: %s", et_status_str(s));
        goto out;
    }
    oc.cal = &cal;
    oc.map = map;
    rt.model.observe = obs;
    rt.model.observe_ctx = &oc;
    for (pass = 0; pass < 2; pass++) {
        pos = 0;
        for (i = 0; i < batches; i++) {
            et_fill_windows(tok, n, B, T, &pos, in, tg);
            if ((s = et_cgpt_forward(&rt.model, in, tg, B, T)) != ET_OK) {
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
    for (i = 0; i < ns; i++) {
        lo[i] = 0.0f;
        hi[i] = 1.0f;
        if (map[i] >= 0 && (s = et_qcalib_range(&cal, map[i], method, pct, &lo[i], &hi[i])) != ET_OK) {
            et_error_set(err, s, "no calibration range for site %d: %s", i, et_status_str(s));
            goto out;
        }
    }
    s = ET_OK;
out:
    et_cruntime_close(&rt);
    free(map); free(in); free(tg); free(mem);
    return s;
}
