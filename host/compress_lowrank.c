/* compress_lowrank.c - the low-rank pass on the host: each block's MLP matrices (fc,
 * fcproj) become their truncated-SVD factors A (OC,r) and B (r,K) at a rank chosen by
 * energy, parameter share or fixed, which the compact model stores and runs as two
 * smaller matmuls (et_cgpt.h).
 * The activation-aware variant (ASVD) scales each input channel by sqrt(mean |x_k|)
 * from calibration batches before the SVD and unscales the factor after.
 * Deliberately avoids: the attention matrices (the issue's figure is for the MLP) and
 * SVD-LLM's full whitening (a Cholesky of the activations' covariance).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "et_cmodel.h"
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
    if (cfg->head_dim || cfg->ffn) /* the scales are laid out for F = 4C */
        return et_error_set(err, ET_ERR_UNSUPPORTED, "--lowrank-aware needs a GPT-2 shape; this model is "
                            "structurally pruned (head_dim %d, ffn %d)", cfg->head_dim, cfg->ffn);
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

et_status et_cmodel_lowrank(et_cmodel *m, const et_lowrank_spec *p, const float *scales, int multiple,
                            et_error *err)
{
    static const int mats[2] = {ET_CLIN_FC, ET_CLIN_FCPROJ};
    static const char *names[2] = {"fcw", "fcprojw"};
    et_tensor_info t[ET_GPT_NTENSORS];
    int L = m->cfg.layers, C = m->cfg.channels, k, l, n = 0;
    size_t bytes;
    float *s = NULL, **A = NULL, **B = NULL;
    int *rank = NULL;
    void *mem = NULL;
    et_arena a;
    et_status st = ET_OK;
    if (!p || p->kind < 1 || p->kind > 3) return et_error_set(err, ET_ERR_INVALID, "invalid low-rank request");
    if (multiple < 1) multiple = 1;
    et_gpt_tensors(&m->cfg, t);
    for (bytes = 0, l = 0; l < L; l++)
        for (k = 0; k < 2; k++) {
            const et_cmodel_lin *d = &m->lin[l * ET_CGPT_LIN + mats[k]];
            size_t b = et_lowrank_scaled_bytes(d->OC, d->K);
            if (b > bytes) bytes = b;
            if (d->OC > n) n = d->OC;
            if (d->K > n) n = d->K;
        }
    bytes += 64;
    s = malloc(sizeof(float) * (size_t)n); /* singular values: min(OC, K) at most */
    n = 0;
    A = calloc((size_t)L * 2, sizeof *A);
    B = calloc((size_t)L * 2, sizeof *B);
    rank = calloc((size_t)L * 2, sizeof *rank);
    if (!s || !A || !B || !rank || posix_memalign(&mem, ET_ALIGN, bytes) != 0) {
        mem = NULL;
        st = et_error_set(err, ET_ERR_NOMEM, "out of memory for the low-rank pass");
        goto out;
    }
    et_arena_init(&a, mem, bytes);
    /* every factor first: the model changes only when all of them exist */
    for (l = 0; l < L && st == ET_OK; l++)
        for (k = 0; k < 2; k++) {
            int i = l * ET_CGPT_LIN + mats[k], OC = m->lin[i].OC, K = m->lin[i].K, kmax = OC < K ? OC : K, r;
            const float *W = m->params + t[mats[k] == ET_CLIN_FC ? 10 : 12].offset + (size_t)l * OC * K;
            const float *cs = scales ? scales + (size_t)l * 5 * C + (k ? C : 0) : NULL;
            A[n] = B[n] = NULL;
            if (m->lin[i].rank) {
                st = et_error_set(err, ET_ERR_INVALID, "%s of layer %d is already factored (rank %d)", names[k], l,
                                  m->lin[i].rank);
                break;
            }
            if (p->kind == 1) {
                if ((st = et_svd(W, OC, K, s, NULL, NULL, &a)) != ET_OK) {
                    et_error_set(err, st, "SVD of %s failed: %s", names[k], et_status_str(st));
                    break;
                }
                r = et_lowrank_rank_energy(s, kmax, p->value);
            } else if (p->kind == 2) {
                r = et_lowrank_rank_params(OC, K, p->value);
                if (r < 1) {
                    st = et_error_set(err, ET_ERR_RANGE, "--lowrank params=%g leaves %s (%dx%d) no rank at all",
                                      (double)p->value, names[k], OC, K);
                    break;
                }
            } else {
                r = (int)p->value;
                if (r % multiple) {
                    st = et_error_set(err, ET_ERR_RANGE, "--lowrank rank=%d with N:M pruning of M = %d: the rank "
                                      "must be a multiple of %d (the factor A's rows are pruned in groups of %d)",
                                      r, multiple, multiple, multiple);
                    break;
                }
            }
            if (r > kmax) {
                st = et_error_set(err, ET_ERR_RANGE, "rank %d is larger than %s (%dx%d) has (at most %d)", r, names[k],
                                  OC, K, kmax);
                break;
            }
            r -= r % multiple; /* N:M pruning of A (OC, r) needs r to be a multiple of M */
            if (r < 1) {
                st = et_error_set(err, ET_ERR_RANGE, "the rank of %s rounds down to 0 as a multiple of %d (N:M pruning "
                                  "of its factor); ask for a larger share", names[k], multiple);
                break;
            }
            rank[n] = r;
            A[n] = malloc(sizeof(float) * (size_t)OC * r);
            B[n] = malloc(sizeof(float) * (size_t)r * K);
            n++;
            if (!A[n - 1] || !B[n - 1]) {
                st = et_error_set(err, ET_ERR_NOMEM, "out of memory for the factors");
                break;
            }
            if ((st = et_lowrank_factor_scaled(W, OC, K, r, cs, A[n - 1], B[n - 1], &a)) != ET_OK) {
                et_error_set(err, st, "low-rank factorization of %s failed: %s", names[k], et_status_str(st));
                break;
            }
        }
    if (st == ET_OK) {
        for (n = 0, l = 0; l < L; l++)
            for (k = 0; k < 2; k++, n++) {
                et_cmodel_lin *d = &m->lin[l * ET_CGPT_LIN + mats[k]];
                d->rank = rank[n];
                d->A = A[n];
                d->B = B[n];
                free(d->mW);
                d->mW = NULL;
            }
        et_cmodel_sync(m);
        n = 0;
    }
    while (n > 0) { n--; free(A[n]); free(B[n]); }
out:
    free(s);
    free(mem);
    free(A);
    free(B);
    free(rank);
    return st;
}
