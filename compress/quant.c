/* quant.c - int8 quantization primitives and the activation calibrator.
 *
 * The fixed-point functions follow gemmlowp's fixedpoint.h and TFLite's
 * QuantizeMultiplier bit for bit (the reference the SIMD epilogues in qgemm.c are
 * tested against); only the left shift differs, saturating instead of wrapping.
 * Deliberately avoids: libm (frexp and round are done by hand), and any state outside
 * the caller's structs.
 */
#include "et_quant.h"

#define I32_MAX 2147483647
#define I32_MIN (-I32_MAX - 1)

static int finite_f(float x) { return x == x && x - x == 0.0f; }
static int finite_d(double x) { return x == x && x - x == 0.0; }

et_status et_quant_multiplier(double real, int32_t *mult, int32_t *shift)
{
    int s = 0;
    double q;
    int64_t qi;
    if (!mult || !shift) return ET_ERR_INVALID;
    if (!finite_d(real) || !(real > 0.0) || real >= 1073741824.0) return ET_ERR_RANGE;
    /* real = f * 2^s with f in [0.5, 1) */
    while (real >= 1.0) { real *= 0.5; s++; }
    while (real < 0.5) { real *= 2.0; s--; }
    q = real * 2147483648.0;
    qi = (int64_t)(q + 0.5);
    if (qi == ((int64_t)1 << 31)) { qi /= 2; s++; }
    if (s < -31) { qi = 0; s = 0; }
    if (s > 30) return ET_ERR_RANGE;
    *mult = (int32_t)qi;
    *shift = s;
    return ET_OK;
}

int32_t et_quant_srdhm(int32_t a, int32_t b)
{
    int64_t ab, nudge;
    if (a == b && a == I32_MIN) return I32_MAX;
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

int32_t et_quant_rdbpot(int32_t x, int e)
{
    int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u), rem = x & mask;
    int32_t thr = (mask >> 1) + (x < 0 ? 1 : 0);
    /* x >> e on a negative int is implementation-defined in C99; floor division is not */
    int32_t q = x >= 0 ? x >> e : -(int32_t)((((uint32_t)-(int64_t)x) + mask) >> e);
    if (e == 0) return x;
    return q + (rem > thr ? 1 : 0);
}

int32_t et_quant_requant(int32_t acc, int32_t mult, int32_t shift)
{
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    if (left) {
        int32_t lim = I32_MAX >> left;
        if (acc > lim) acc = lim;
        if (acc < ~lim) acc = ~lim;
        acc = (int32_t)((uint32_t)acc << left);
    }
    return et_quant_rdbpot(et_quant_srdhm(acc, mult), right);
}

int32_t et_quant_round_clamp(float v, int32_t lo, int32_t hi)
{
    int32_t r;
    if (!(v > (float)lo - 1.0f)) return lo; /* also catches NaN */
    if (!(v < (float)hi + 1.0f)) return hi;
    r = (int32_t)(v >= 0.0f ? v + 0.5f : v - 0.5f);
    return r < lo ? lo : r > hi ? hi : r;
}

et_status et_quant_weights_s8(const float *w, int rows, int cols, int8_t *q, float *scale)
{
    int r, c;
    if (!w || !q || !scale || rows < 0 || cols < 0) return ET_ERR_INVALID;
    for (r = 0; r < rows; r++) {
        const float *x = w + (size_t)r * cols;
        float amax = 0.0f, inv;
        for (c = 0; c < cols; c++) {
            float a = x[c] < 0.0f ? -x[c] : x[c];
            if (!finite_f(x[c])) return ET_ERR_RANGE;
            if (a > amax) amax = a;
        }
        scale[r] = amax > 0.0f ? amax / 127.0f : 1.0f;
        inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        for (c = 0; c < cols; c++)
            q[(size_t)r * cols + c] = (int8_t)et_quant_round_clamp(x[c] * inv, -127, 127);
    }
    return ET_OK;
}

et_status et_quant_act_params(float lo, float hi, et_qparams *p)
{
    if (!p) return ET_ERR_INVALID;
    if (!finite_f(lo) || !finite_f(hi) || lo > hi) return ET_ERR_RANGE;
    if (lo > 0.0f) lo = 0.0f;
    if (hi < 0.0f) hi = 0.0f;
    if (hi - lo < 1e-8f) {
        p->scale = 1.0f;
        p->zero_point = 0;
        return ET_OK;
    }
    p->scale = (hi - lo) / 255.0f;
    p->zero_point = et_quant_round_clamp(-128.0f - lo / p->scale, -128, 127);
    return ET_OK;
}

void et_quant_f32_to_s8(int8_t *q, const float *x, size_t n, const et_qparams *p)
{
    float inv = 1.0f / p->scale, zp = (float)p->zero_point;
    size_t i;
    for (i = 0; i < n; i++) {
        /* clamp in float first so the conversion never overflows; then round */
        float v = x[i] * inv + zp;
        v = v < -128.0f ? -128.0f : v > 127.0f ? 127.0f : v;
        q[i] = (int8_t)(int32_t)(v >= 0.0f ? v + 0.5f : v - 0.5f);
    }
}

void et_quant_s8_to_f32(float *x, const int8_t *q, size_t n, const et_qparams *p)
{
    size_t i;
    for (i = 0; i < n; i++) x[i] = p->scale * (float)((int32_t)q[i] - p->zero_point);
}

// --- calibration

size_t et_qcalib_bytes(int nsites, int nbins)
{
    size_t s = nsites > 0 ? (size_t)nsites : 0, b = nbins > 0 ? (size_t)nbins : 0;
    return 2 * et_arena_block(s * sizeof(float)) + et_arena_block(s * sizeof(uint64_t)) +
           et_arena_block(s * b * sizeof(uint32_t));
}

et_status et_qcalib_init(et_qcalib *c, int nsites, int nbins, et_arena *arena)
{
    void *p[4];
    int i;
    et_status s;
    if (!c || !arena || nsites < 1 || nbins < 1) return ET_ERR_INVALID;
    if (et_qcalib_bytes(nsites, nbins) > et_arena_free_bytes(arena)) return ET_ERR_NOMEM;
    if ((s = et_arena_alloc(arena, (size_t)nsites * sizeof(float), &p[0])) != ET_OK) return s;
    if ((s = et_arena_alloc(arena, (size_t)nsites * sizeof(float), &p[1])) != ET_OK) return s;
    if ((s = et_arena_alloc(arena, (size_t)nsites * sizeof(uint64_t), &p[2])) != ET_OK) return s;
    if ((s = et_arena_alloc(arena, (size_t)nsites * nbins * sizeof(uint32_t), &p[3])) != ET_OK)
        return s;
    c->nsites = nsites;
    c->nbins = nbins;
    c->pass = 0;
    c->min = (float *)p[0];
    c->max = (float *)p[1];
    c->count = (uint64_t *)p[2];
    c->hist = (uint32_t *)p[3];
    for (i = 0; i < nsites; i++) {
        c->min[i] = 3.0e38f;
        c->max[i] = -3.0e38f;
    }
    return ET_OK;
}

et_status et_qcalib_observe(et_qcalib *c, int site, const float *x, size_t n)
{
    size_t i;
    if (!c || (!x && n)) return ET_ERR_INVALID;
    if (site < 0 || site >= c->nsites) return ET_ERR_RANGE;
    if (c->pass == 0) {
        float lo = c->min[site], hi = c->max[site];
        for (i = 0; i < n; i++) {
            if (!finite_f(x[i])) return ET_ERR_RANGE;
            if (x[i] < lo) lo = x[i];
            if (x[i] > hi) hi = x[i];
        }
        c->min[site] = lo;
        c->max[site] = hi;
    } else {
        uint32_t *h = c->hist + (size_t)site * c->nbins;
        float lo = c->min[site], w = c->max[site] - lo;
        float k = w > 0.0f ? (float)c->nbins / w : 0.0f;
        for (i = 0; i < n; i++) {
            float v = (x[i] - lo) * k;
            int b;
            if (!finite_f(x[i])) return ET_ERR_RANGE;
            b = v <= 0.0f ? 0 : v >= (float)c->nbins ? c->nbins - 1 : (int)v;
            if (h[b] < 0xFFFFFFFFu) h[b]++;
        }
        c->count[site] += n;
    }
    return ET_OK;
}

et_status et_qcalib_next_pass(et_qcalib *c)
{
    int i;
    if (!c) return ET_ERR_INVALID;
    if (c->pass != 0) return ET_ERR_STATE;
    for (i = 0; i < c->nsites; i++)
        if (c->min[i] > c->max[i]) return ET_ERR_STATE;
    c->pass = 1;
    return ET_OK;
}

et_status et_qcalib_range(const et_qcalib *c, int site, et_qcalib_method method, float pct,
                          float *lo, float *hi)
{
    const uint32_t *h;
    uint64_t total = 0, drop, acc;
    float w;
    int b;
    if (!c || !lo || !hi) return ET_ERR_INVALID;
    if (site < 0 || site >= c->nsites) return ET_ERR_RANGE;
    if (c->min[site] > c->max[site]) return ET_ERR_STATE;
    if (method == ET_QCALIB_MINMAX) {
        *lo = c->min[site];
        *hi = c->max[site];
        return ET_OK;
    }
    if (method != ET_QCALIB_PERCENTILE || !(pct > 0.5f && pct <= 1.0f)) return ET_ERR_INVALID;
    if (c->pass != 1 || c->count[site] == 0) return ET_ERR_STATE;
    h = c->hist + (size_t)site * c->nbins;
    for (b = 0; b < c->nbins; b++) total += h[b];
    drop = (uint64_t)((double)(1.0f - pct) * (double)total);
    w = (c->max[site] - c->min[site]) / (float)c->nbins;
    /* lo: left edge of the bin where the dropped share of the low tail ends */
    for (acc = 0, b = 0; b < c->nbins - 1 && acc + h[b] <= drop; b++) acc += h[b];
    *lo = c->min[site] + w * (float)b;
    for (acc = 0, b = c->nbins - 1; b > 0 && acc + h[b] <= drop; b--) acc += h[b];
    *hi = c->min[site] + w * (float)(b + 1);
    if (*hi > c->max[site]) *hi = c->max[site];
    if (*lo > *hi) *lo = *hi;
    return ET_OK;
}
