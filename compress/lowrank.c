/* lowrank.c - one-sided Jacobi SVD, rank selection, truncated factorization and the
 * factored matmul (et_lowrank.h).
 *
 * The SVD works on the columns of the tall orientation (A, or A^T when A is wide),
 * stored as contiguous rows (G holds column j of the matrix at row j), so every dot
 * product and rotation runs over contiguous memory; V accumulates the same rotations.
 * Everything inside is double; square roots by Newton from the float et_sqrtf.
 * Deliberately avoids: libm, and any allocation outside the caller's arena.
 */
#include "et_lowrank.h"
#include "et_gemm.h"
#include "et_math.h"

#define MAX_SWEEPS 60
#define TOL 1e-12

static double dsqrt(double x)
{
    double y;
    if (!(x > 0.0)) return 0.0;
    y = (x > 1e-30 && x < 1e30) ? (double)et_sqrtf((float)x) : (x > 1.0 ? 1e15 : 1e-15);
    y = 0.5 * (y + x / y);
    y = 0.5 * (y + x / y);
    y = 0.5 * (y + x / y);
    return y;
}

static double dabs(double x) { return x < 0 ? -x : x; }

size_t et_svd_bytes(int m, int n)
{
    size_t tall = (size_t)(m > n ? m : n), k = (size_t)(m < n ? m : n);
    if (m <= 0 || n <= 0) return 0;
    return et_arena_block(tall * k * sizeof(double)) + et_arena_block(k * k * sizeof(double)) +
           et_arena_block(k * sizeof(double)) + et_arena_block(k * sizeof(int));
}

et_status et_svd(const float *A, int m, int n, float *s, float *U, float *Vt, et_arena *scratch)
{
    int wide = n > m, rows = wide ? n : m, k = wide ? m : n, i, j, p, q, sweep;
    double *G, *V, *nrm;
    int *ord;
    et_arena_mark mark;
    void *b[4];
    if (!A || !s || !scratch || m <= 0 || n <= 0) return ET_ERR_INVALID;
    for (i = 0; i < m * n; i++)
        if (!(A[i] == A[i] && A[i] - A[i] == 0.0f)) return ET_ERR_RANGE;
    if (et_svd_bytes(m, n) > et_arena_free_bytes(scratch)) return ET_ERR_NOMEM;
    mark = et_arena_mark_get(scratch);
    et_arena_scratch(scratch, (size_t)rows * k * sizeof(double), &b[0]);
    et_arena_scratch(scratch, (size_t)k * k * sizeof(double), &b[1]);
    et_arena_scratch(scratch, (size_t)k * sizeof(double), &b[2]);
    et_arena_scratch(scratch, (size_t)k * sizeof(int), &b[3]);
    G = (double *)b[0]; V = (double *)b[1]; nrm = (double *)b[2]; ord = (int *)b[3];
    /* G row j = column j of the tall matrix (length rows); V row j = column j of V */
    for (j = 0; j < k; j++)
        for (i = 0; i < rows; i++) G[(size_t)j * rows + i] = wide ? A[(size_t)j * n + i] : A[(size_t)i * n + j];
    for (i = 0; i < k * k; i++) V[i] = 0.0;
    for (j = 0; j < k; j++) V[(size_t)j * k + j] = 1.0;
    for (sweep = 0; sweep < MAX_SWEEPS; sweep++) {
        int rotated = 0;
        for (p = 0; p < k - 1; p++)
            for (q = p + 1; q < k; q++) {
                double *gp = G + (size_t)p * rows, *gq = G + (size_t)q * rows, al = 0, be = 0, ga = 0, z, t, c, sn;
                double *vp = V + (size_t)p * k, *vq = V + (size_t)q * k;
                for (i = 0; i < rows; i++) {
                    al += gp[i] * gp[i];
                    be += gq[i] * gq[i];
                    ga += gp[i] * gq[i];
                }
                if (dabs(ga) <= TOL * dsqrt(al * be) || ga == 0.0) continue;
                rotated = 1;
                z = (be - al) / (2.0 * ga);
                t = (z >= 0 ? 1.0 : -1.0) / (dabs(z) + dsqrt(1.0 + z * z));
                c = 1.0 / dsqrt(1.0 + t * t);
                sn = c * t;
                for (i = 0; i < rows; i++) {
                    double x = gp[i], y = gq[i];
                    gp[i] = c * x - sn * y;
                    gq[i] = sn * x + c * y;
                }
                for (i = 0; i < k; i++) {
                    double x = vp[i], y = vq[i];
                    vp[i] = c * x - sn * y;
                    vq[i] = sn * x + c * y;
                }
            }
        if (!rotated) break;
    }
    /* singular values are the column norms; order them descending (insertion sort: k is small) */
    for (j = 0; j < k; j++) {
        double a = 0;
        for (i = 0; i < rows; i++) a += G[(size_t)j * rows + i] * G[(size_t)j * rows + i];
        nrm[j] = dsqrt(a);
        ord[j] = j;
    }
    for (j = 1; j < k; j++) {
        int o = ord[j];
        for (i = j - 1; i >= 0 && nrm[ord[i]] < nrm[o]; i--) ord[i + 1] = ord[i];
        ord[i + 1] = o;
    }
    for (j = 0; j < k; j++) {
        int o = ord[j];
        double inv = nrm[o] > 0 ? 1.0 / nrm[o] : 0.0;
        s[j] = (float)nrm[o];
        /* tall = Uc S V^T: Uc column = G row / norm; V column = V row. A = tall or tall^T */
        for (i = 0; i < rows; i++) {
            float u = (float)(G[(size_t)o * rows + i] * inv);
            if (!wide && U) U[(size_t)i * k + j] = u;
            if (wide && Vt) Vt[(size_t)j * n + i] = u;
        }
        for (i = 0; i < k; i++) {
            float v = (float)V[(size_t)o * k + i];
            if (!wide && Vt) Vt[(size_t)j * n + i] = v;
            if (wide && U) U[(size_t)i * k + j] = v;
        }
    }
    et_arena_release(scratch, mark);
    return ET_OK;
}

int et_lowrank_rank_energy(const float *s, int k, float energy)
{
    double total = 0, acc = 0;
    int r;
    for (r = 0; r < k; r++) total += (double)s[r] * s[r];
    if (total <= 0) return 1;
    for (r = 0; r < k; r++) {
        acc += (double)s[r] * s[r];
        if (acc >= (double)energy * total) return r + 1;
    }
    return k;
}

int et_lowrank_rank_params(int OC, int K, float share)
{
    double budget = (double)share * OC * K;
    int r = (int)(budget / (double)(OC + K)), k = OC < K ? OC : K;
    return r > k ? k : r;
}

size_t et_lowrank_factor_bytes(int OC, int K)
{
    int k = OC < K ? OC : K;
    return et_svd_bytes(OC, K) + et_arena_block((size_t)k * sizeof(float)) +
           et_arena_block((size_t)OC * k * sizeof(float)) + et_arena_block((size_t)k * K * sizeof(float));
}

et_status et_lowrank_factor(const float *W, int OC, int K, int r, float *A, float *B,
                            et_arena *scratch)
{
    int k = OC < K ? OC : K, i, j;
    et_arena_mark mark;
    void *b[3];
    float *s, *U, *Vt;
    et_status st;
    if (!W || !A || !B || !scratch || OC <= 0 || K <= 0) return ET_ERR_INVALID;
    if (r < 1 || r > k) return ET_ERR_RANGE;
    if (et_lowrank_factor_bytes(OC, K) > et_arena_free_bytes(scratch)) return ET_ERR_NOMEM;
    mark = et_arena_mark_get(scratch);
    et_arena_scratch(scratch, (size_t)k * sizeof(float), &b[0]);
    et_arena_scratch(scratch, (size_t)OC * k * sizeof(float), &b[1]);
    et_arena_scratch(scratch, (size_t)k * K * sizeof(float), &b[2]);
    s = (float *)b[0]; U = (float *)b[1]; Vt = (float *)b[2];
    st = et_svd(W, OC, K, s, U, Vt, scratch);
    if (st == ET_OK) {
        for (j = 0; j < r; j++) {
            float h = et_sqrtf(s[j]);
            for (i = 0; i < OC; i++) A[(size_t)i * r + j] = U[(size_t)i * k + j] * h;
            for (i = 0; i < K; i++) B[(size_t)j * K + i] = Vt[(size_t)j * K + i] * h;
        }
    }
    et_arena_release(scratch, mark);
    return st;
}

size_t et_lowrank_scaled_bytes(int OC, int K)
{
    return et_lowrank_factor_bytes(OC, K) + et_arena_block((size_t)OC * K * sizeof(float));
}

et_status et_lowrank_factor_scaled(const float *W, int OC, int K, int r, const float *c, float *A,
                                   float *B, et_arena *scratch)
{
    et_arena_mark mark;
    void *p;
    float *Ws;
    int i, j;
    et_status st;
    if (!c) return et_lowrank_factor(W, OC, K, r, A, B, scratch);
    if (!W || !A || !B || !scratch || OC <= 0 || K <= 0) return ET_ERR_INVALID;
    for (j = 0; j < K; j++)
        if (!(c[j] > 0.0f && c[j] < 3.0e38f)) return ET_ERR_RANGE;
    if (et_lowrank_scaled_bytes(OC, K) > et_arena_free_bytes(scratch)) return ET_ERR_NOMEM;
    mark = et_arena_mark_get(scratch);
    et_arena_scratch(scratch, (size_t)OC * K * sizeof(float), &p);
    Ws = (float *)p;
    for (i = 0; i < OC; i++)
        for (j = 0; j < K; j++) Ws[(size_t)i * K + j] = W[(size_t)i * K + j] * c[j];
    st = et_lowrank_factor(Ws, OC, K, r, A, B, scratch);
    if (st == ET_OK && r >= 1 && r <= (OC < K ? OC : K))
        for (i = 0; i < r; i++)
            for (j = 0; j < K; j++) B[(size_t)i * K + j] /= c[j];
    et_arena_release(scratch, mark);
    return st;
}

et_status et_lowrank_matmul(float *out, const float *inp, const float *A, const float *B,
                            const float *bias, int N, int K, int OC, int r, float *tmp,
                            const et_threads *th, float *gemm_scratch, size_t gemm_scratch_bytes)
{
    et_gemm_args g;
    et_status s;
    if (!out || !inp || !A || !B || !tmp || N < 0 || K <= 0 || OC <= 0 || r <= 0) return ET_ERR_INVALID;
    /* tmp(N,r) = inp(N,K) . B(r,K)^T */
    g.transA = 0; g.transB = 1; g.M = N; g.N = r; g.K = K;
    g.A = inp; g.lda = K; g.B = B; g.ldb = K; g.bias = 0; g.accumulate = 0; g.C = tmp; g.ldc = r;
    if ((s = et_gemm_f32(&g, th, gemm_scratch, gemm_scratch_bytes)) != ET_OK) return s;
    /* out(N,OC) = tmp(N,r) . A(OC,r)^T + bias */
    g.M = N; g.N = OC; g.K = r;
    g.A = tmp; g.lda = r; g.B = A; g.ldb = r; g.bias = bias; g.C = out; g.ldc = OC;
    return et_gemm_f32(&g, th, gemm_scratch, gemm_scratch_bytes);
}
