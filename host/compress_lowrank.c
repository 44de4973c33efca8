/* compress_lowrank.c - the low-rank pass on the host: each block's MLP matrices (fc,
 * fcproj) become their truncated-SVD product at a rank chosen by energy, parameter
 * share or fixed. The product is written back dense (so every fp32 path runs it); the
 * report counts the factored form's parameters.
 * Deliberately avoids: the attention matrices (the issue's figure is for the MLP) and
 * the activation-aware variant (not implemented: see docs/COMPRESSION.md).
 */
#include <stdlib.h>
#include <string.h>
#include "et_compress.h"
#include "et_lowrank.h"

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

et_status et_compress_lowrank(const et_gpt_config *cfg, float *params, const et_lowrank_spec *p,
                              size_t *factored, et_error *err)
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
    bytes = et_lowrank_factor_bytes(4 * c.channels, c.channels) + et_svd_bytes(4 * c.channels, c.channels) +
            (size_t)4 * c.channels * sizeof(float) + 64;
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
            if ((st = et_lowrank_factor(W, OC, K, r, A, B, &a)) != ET_OK) break;
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
