/* prune.c - magnitude and N:M pruning, masks, and compact sparse storage (et_prune.h).
 *
 * The magnitude threshold is found exactly by a radix select over the bits of |w|
 * (non-negative floats order like their bit patterns): four passes over the tensor with
 * a 256-bin histogram each, no allocation and no sort.
 * Deliberately avoids: approximate thresholds (a sampled quantile would miss the target
 * sparsity) and any state between calls.
 */
#include "et_prune.h"

const int et_prune_gpt_tensors[ET_PRUNE_NMATS] = {4, 6, 10, 12}; /* qkvw attprojw fcw fcprojw */

static uint32_t key(float x)
{
    uint32_t u;
    ET_MEMCPY(&u, &x, 4);
    return u & 0x7FFFFFFFu;
}

static int finite(float x) { return x == x && x - x == 0.0f; }

static void set_bit(uint8_t *m, size_t i, int v)
{
    if (v) m[i >> 3] = (uint8_t)(m[i >> 3] | (1u << (i & 7)));
    else m[i >> 3] = (uint8_t)(m[i >> 3] & ~(1u << (i & 7)));
}

et_status et_prune_magnitude(const float *w, size_t n, float sparsity, uint8_t *mask, size_t *kept)
{
    size_t drop, want, i, eq_drop, k = 0;
    uint32_t prefix = 0, thr;
    int shift;
    if (!mask || (!w && n) || !(sparsity >= 0.0f && sparsity <= 1.0f)) return ET_ERR_INVALID;
    for (i = 0; i < n; i++)
        if (!finite(w[i])) return ET_ERR_RANGE;
    drop = (size_t)((double)sparsity * (double)n);
    if (drop > n) drop = n;
    ET_MEMSET(mask, 0xFF, et_prune_mask_bytes(n));
    if (n % 8) mask[n / 8] = (uint8_t)((1u << (n % 8)) - 1u);
    if (drop == 0) {
        if (kept) *kept = n;
        return ET_OK;
    }
    /* the drop-th smallest key (0-based drop-1), one byte at a time from the top */
    want = drop - 1;
    for (shift = 24; shift >= 0; shift -= 8) {
        uint32_t hist[256], hi = shift == 24 ? 0u : ~((1u << (shift + 8)) - 1u);
        size_t cum = 0;
        int b;
        ET_MEMSET(hist, 0, sizeof hist);
        for (i = 0; i < n; i++) {
            uint32_t u = key(w[i]);
            if ((u & hi) == prefix) hist[(u >> shift) & 255u]++;
        }
        for (b = 0; b < 256 && cum + hist[b] <= want; b++) cum += hist[b];
        want -= cum;
        prefix |= (uint32_t)b << shift;
    }
    thr = prefix;
    /* every key below the threshold goes, and the first want+1 equal to it */
    eq_drop = want + 1;
    for (i = 0; i < n; i++) {
        uint32_t u = key(w[i]);
        int keep = u > thr || (u == thr && eq_drop == 0);
        if (u == thr && eq_drop > 0) eq_drop--;
        set_bit(mask, i, keep);
        k += (size_t)keep;
    }
    if (kept) *kept = k;
    return ET_OK;
}

static et_status check_nm(int rows, int cols, int N, int M)
{
    if (rows < 0 || cols < 0 || N < 1 || M > 16 || N >= M || cols % M) return ET_ERR_INVALID;
    return ET_OK;
}

et_status et_prune_nm(const float *w, int rows, int cols, int N, int M, uint8_t *mask)
{
    size_t g, ng;
    int j, p;
    et_status s = check_nm(rows, cols, N, M);
    if (s != ET_OK) return s;
    if (!w || !mask) return ET_ERR_INVALID;
    ng = (size_t)rows * cols / M;
    for (g = 0; g < ng; g++) {
        const float *x = w + g * M;
        int taken[16] = {0};
        for (j = 0; j < M; j++) set_bit(mask, g * M + j, 0);
        for (p = 0; p < N; p++) {
            int best = -1;
            uint32_t bk = 0;
            for (j = 0; j < M; j++)
                if (!taken[j] && (best < 0 || key(x[j]) > bk)) {
                    best = j;
                    bk = key(x[j]);
                }
            taken[best] = 1;
            set_bit(mask, g * M + best, 1);
        }
    }
    return ET_OK;
}

void et_prune_apply(float *w, const uint8_t *mask, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!et_prune_kept(mask, i)) w[i] = 0.0f;
}

size_t et_prune_count(const uint8_t *mask, size_t n)
{
    size_t i, k = 0;
    for (i = 0; i < n; i++) k += (size_t)et_prune_kept(mask, i);
    return k;
}

// --- compact storage

size_t et_prune_nm_value_count(int rows, int cols, int N, int M)
{
    return M > 0 ? (size_t)rows * (size_t)(cols / M) * (size_t)N : 0;
}

size_t et_prune_nm_index_bytes(int rows, int cols, int N, int M)
{
    return (et_prune_nm_value_count(rows, cols, N, M) * (size_t)et_prune_nm_index_bits(M) + 7) / 8;
}

static void put_idx(uint8_t *idx, size_t e, int bits, int v)
{
    size_t bit = e * (size_t)bits;
    uint8_t m = (uint8_t)(((1u << bits) - 1u) << (bit & 7));
    idx[bit >> 3] = (uint8_t)((idx[bit >> 3] & ~m) | ((unsigned)v << (bit & 7)));
}

static int get_idx(const uint8_t *idx, size_t e, int bits)
{
    size_t bit = e * (size_t)bits;
    return (idx[bit >> 3] >> (bit & 7)) & ((1 << bits) - 1);
}

et_status et_prune_nm_pack(const float *w, const uint8_t *mask, int rows, int cols, int N, int M,
                           float *values, uint8_t *idx)
{
    size_t g, ng;
    int j, bits = et_prune_nm_index_bits(M);
    et_status s = check_nm(rows, cols, N, M);
    if (s != ET_OK) return s;
    if (!w || !mask || !values || !idx) return ET_ERR_INVALID;
    ng = (size_t)rows * cols / M;
    for (g = 0; g < ng; g++) {
        int got = 0;
        for (j = 0; j < M; j++)
            if (et_prune_kept(mask, g * M + j)) {
                if (got == N) return ET_ERR_INVALID;
                values[g * N + got] = w[g * M + j];
                put_idx(idx, g * N + got, bits, j);
                got++;
            }
        /* pad with zeros at positions not yet used, keeping the indices distinct */
        for (j = 0; got < N; j++) {
            int used = 0, e;
            for (e = 0; e < got; e++) used |= get_idx(idx, g * N + e, bits) == j;
            if (used) continue;
            values[g * N + got] = 0.0f;
            put_idx(idx, g * N + got, bits, j);
            got++;
        }
    }
    return ET_OK;
}

et_status et_prune_nm_unpack(const float *values, const uint8_t *idx, int rows, int cols, int N,
                             int M, float *w)
{
    size_t g, ng;
    int j, bits = et_prune_nm_index_bits(M);
    et_status s = check_nm(rows, cols, N, M);
    if (s != ET_OK) return s;
    if (!values || !idx || !w) return ET_ERR_INVALID;
    ng = (size_t)rows * cols / M;
    ET_MEMSET(w, 0, sizeof(float) * ng * M);
    for (g = 0; g < ng; g++)
        for (j = 0; j < N; j++) {
            int p = get_idx(idx, g * N + j, bits);
            if (p >= M) return ET_ERR_INVALID;
            w[g * M + p] = values[g * N + j];
        }
    return ET_OK;
}

void et_prune_bitmap_pack(const float *w, const uint8_t *mask, size_t n, float *values)
{
    size_t i, k = 0;
    for (i = 0; i < n; i++)
        if (et_prune_kept(mask, i)) values[k++] = w[i];
}

void et_prune_bitmap_unpack(const float *values, const uint8_t *mask, size_t n, float *w)
{
    size_t i, k = 0;
    for (i = 0; i < n; i++) w[i] = et_prune_kept(mask, i) ? values[k++] : 0.0f;
}
