/* compress_lowrank.c - the low-rank pass on the host: each block's MLP matrices (fc,
 * fcproj) become their truncated-SVD product at a rank chosen by energy, parameter
 * share or fixed. The product is written back dense (so every fp32 path runs it); the
 * report counts the factored form's parameters.
 * The activation-aware variant (ASVD) scales each input channel by sqrt(mean |x_k|)
 * from calibration batches before the SVD and unscales the factor after.
 * Deliberately avoids: the attention matrices (the issue's figure is for the MLP) and
 * SVD-LLM's full whitening (a Cholesky of the activations' covariance).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "et_compress.h"
#include "et_lowrank.h"
#include "et_runtime.h"

et_status et_lowrank_spec_parse(const char *s, et_lowrank_spec *p, et_error *err)
{
    char *end;
    memset(p, 0, sizeof *p);
    if (!s) return et_error_set(err, ET_ERR_INVALID, "empty --lowrank");
    if (!strncmp(s, "energy=", 7)) p->kind = 1;
    else if (!strncmp(s, "params=", 7)) p->kind = 2;
    else if (!strncmp(s, "rank=", 5)) p->kind = 3;
    else
        return et_error_set(err, ET_ERR_INVALID, "--lowrank '%s': want energy=E, params=P (both in (0, 1]) or rank=R", s);
    p->value = strtof(strchr(s, '=') + 1, &end);
    if (end == strchr(s, '=') + 1 || *end)
        return et_error_set(err, ET_ERR_INVALID, "--lowrank '%s': no number after '='", s);
    if (p->kind < 3 && !(p->value > 0.0f && p->value <= 1.0f))
        return et_error_set(err, ET_ERR_INVALID, "--lowrank %s: the share must be in (0, 1]", s);
    if (p->kind == 3 && !(p->value >= 1.0f && p->value == (float)(int)p->value))
        return et_error_set(err, ET_ERR_INVALID, "--lowrank %s: the rank must be a whole number >= 1", s);
    return ET_OK;
}

et_status et_lowrank_act_scales(const et_gpt_config *cfg, const float *params, const uint16_t *tok,
                                size_t n, int B, int T, int batches, int threads, float *scales,
                                et_error *err)
{
    et_runtime rt;
    int *in = NULL, *tg = NULL, b, t, l, i;
    size_t pos = 0, C = (size_t)cfg->channels, L = (size_t)cfg->layers;
    double *acc = NULL;
    size_t count = 0, k;
    et_status s;
    if (!tok || n < (size_t)T + 1)
        return et_error_set(err, ET_ERR_TRUNCATED, "the calibration set has %zu tokens; it needs at least %d",
                            tok ? n : 0, T + 1);
    if ((s = et_runtime_open(&rt, "cpu", cfg, B, T, ET_GPT_TRAIN, threads, err)) != ET_OK) return s;
    et_gpt_set_params(&rt.model, params);
    in = malloc(sizeof(int) * (size_t)B * T);
    tg = malloc(sizeof(int) * (size_t)B * T);
    acc = calloc(L * 5 * C, sizeof(double));
    if (!in || !tg || !acc) { s = et_error_set(err, ET_ERR_NOMEM, "out of memory"); goto out; }
    for (i = 0; i < batches; i++) {
        const et_gpt_acts *a = &rt.model.acts;
        size_t BT = (size_t)B * T, r;
        for (b = 0; b < B; b++) {
            if (pos + (size_t)T + 1 > n) pos = 0;
            for (t = 0; t < T; t++) { in[b * T + t] = tok[pos + t]; tg[b * T + t] = tok[pos + t + 1]; }
            pos += (size_t)T;
        }
        if ((s = et_gpt_forward(&rt.model, in, tg, B, T)) != ET_OK) {
            et_error_set(err, s, "activation statistics: forward failed");
            goto out;
        }
        for (l = 0; l < (int)L; l++) {
            const float *x = a->ln2 + (size_t)l * BT * C, *h = a->fch_gelu + (size_t)l * BT * 4 * C;
            double *al = acc + (size_t)l * 5 * C;
            for (r = 0; r < BT; r++) {
                for (k = 0; k < C; k++) al[k] += x[r * C + k] < 0 ? -x[r * C + k] : x[r * C + k];
                for (k = 0; k < 4 * C; k++) al[C + k] += h[r * 4 * C + k] < 0 ? -h[r * 4 * C + k] : h[r * 4 * C + k];
            }
        }
        count += BT;
    }
    for (k = 0; k < L * 5 * C; k++) {
        double m = acc[k] / (double)(count ? count : 1);
        scales[k] = (float)sqrt(m > 1e-12 ? m : 1e-12);
    }
    s = ET_OK;
out:
    free(in); free(tg); free(acc);
    et_runtime_close(&rt);
    return s;
}

et_status et_compress_lowrank(const et_gpt_config *cfg, float *params, const et_lowrank_spec *p,
                              const float *scales, size_t *factored, et_error *err)
{
    static const int mats[2] = {10, 12}; /* fcw, fcprojw */
    et_gpt_config c = *cfg;
    et_tensor_info t[ET_GPT_NTENSORS];
    size_t np, fact, bytes;
    float *w = NULL, *A = NULL, *B = NULL, *s = NULL;
    void *mem = NULL;
    et_arena a;
    int k, l, i;
    et_status st = ET_OK;
    if (et_gpt_config_check(&c) != ET_OK || !p || p->kind < 1 || p->kind > 3)
        return et_error_set(err, ET_ERR_INVALID, "invalid config or low-rank request");
    np = et_gpt_tensors(&c, t);
    fact = np;
    bytes = et_lowrank_scaled_bytes(4 * c.channels, c.channels) + et_svd_bytes(4 * c.channels, c.channels) +
            et_lowrank_scaled_bytes(4 * c.channels, c.channels) + (size_t)4 * c.channels * sizeof(float) + 64;
    w = malloc(sizeof(float) * np);
    A = malloc(sizeof(float) * (size_t)4 * c.channels * c.channels);
    B = malloc(sizeof(float) * (size_t)4 * c.channels * c.channels);
    s = malloc(sizeof(float) * (size_t)c.channels);
    if (!w || !A || !B || !s || posix_memalign(&mem, ET_ALIGN, bytes) != 0) {
        mem = NULL;
        st = et_error_set(err, ET_ERR_NOMEM, "out of memory for the low-rank pass");
        goto out;
    }
    et_arena_init(&a, mem, bytes);
    memcpy(w, params, sizeof(float) * np);
    for (k = 0; k < 2; k++) {
        const et_tensor_info *ti = &t[mats[k]];
        int OC = ti->shape[1], K = ti->shape[2], kmax = OC < K ? OC : K, r = 0;
        for (l = 0; l < c.layers; l++) {
            float *W = w + ti->offset + (size_t)l * OC * K;
            const float *cs = scales ? scales + (size_t)l * 5 * c.channels + (k ? c.channels : 0) : NULL;
            if (p->kind == 1) {
                if ((st = et_svd(W, OC, K, s, NULL, NULL, &a)) != ET_OK) break;
                r = et_lowrank_rank_energy(s, kmax, p->value);
            } else if (p->kind == 2) {
                r = et_lowrank_rank_params(OC, K, p->value);
                if (r < 1) {
                    st = et_error_set(err, ET_ERR_RANGE, "--lowrank params=%g leaves %s (%dx%d) no rank at all",
                                      (double)p->value, ti->name, OC, K);
                    goto out;
                }
            } else {
                r = (int)p->value;
            }
            if (r > kmax) {
                st = et_error_set(err, ET_ERR_RANGE, "rank %d is larger than %s (%dx%d) has (at most %d)", r,
                                  ti->name, OC, K, kmax);
                goto out;
            }
            if ((st = et_lowrank_factor_scaled(W, OC, K, r, cs, A, B, &a)) != ET_OK) break;
            /* W = A . B, written back dense */
            for (i = 0; i < OC; i++) {
                int j, q;
                for (j = 0; j < K; j++) {
                    float v = 0.0f;
                    for (q = 0; q < r; q++) v += A[(size_t)i * r + q] * B[(size_t)q * K + j];
                    W[(size_t)i * K + j] = v;
                }
            }
            fact = fact - (size_t)OC * K + (size_t)r * (OC + K);
        }
        if (st != ET_OK) {
            et_error_set(err, st, "low-rank factorization of %s failed: %s", ti->name, et_status_str(st));
            goto out;
        }
    }
    memcpy(params, w, sizeof(float) * np);
    if (factored) *factored = fact;
out:
    free(w); free(A); free(B); free(s); free(mem);
    return st;
}
