/* sys_cycle.c - one fold of the systolic array, simulated register by register.
 *
 * Every PE holds a stationary register (a weight, an input, or an output accumulator),
 * a register for the value travelling right and one for the value travelling down,
 * each with the index of the stream element it carries (-1: a bubble). Each cycle
 * every PE computes its new registers from its left and upper neighbours' registers
 * of the previous cycle; the edges take skewed operands (row r sees stream element t
 * at cycle t + r). PEs outside the fold's used region (r >= ru or c >= cu) are
 * clock-gated: they pass values on without adding, so a bypassed partial sum keeps its
 * bits (adding +0.0f would turn -0.0f into +0.0f).
 *
 * This is the reference the wavefront model (sys_array.c) is tested against: same
 * output bits, and the cycle count of the closed form. It is slow (R*C work per cycle)
 * and meant for tests and small arrays. The control schedule is fixed, as in SCALE-Sim:
 * a fold ends when the last stream element's wavefront has crossed the whole array,
 * however many PEs the fold uses.
 * Deliberately avoided: allocation, the memory system (sys_timing.c counts that).
 */
#include "et_systolic.h"

typedef struct {
    float fs, fa, fb;    /* stationary, moving right, moving down (fp32) */
    int32_t is, ia;      /* stationary, moving right (int8 widened) */
    uint32_t ib;         /* moving down: int32 partial sum (WS/IS) or B operand (OS) */
    int32_t ta, tb;      /* stream index carried right / down; -1 = bubble */
} pe;

size_t et_sys_cycle_scratch_bytes(int rows, int cols)
{
    if (rows < 1 || cols < 1) return 0;
    return sizeof(pe) * (size_t)rows * (size_t)cols + 64;
}

static int32_t as_i32(uint32_t u)
{
    return u <= 0x7fffffffu ? (int32_t)u : -(int32_t)(~u) - 1;
}

/* WS and IS: load the stationary tile from the top, row R-1's values first, over R
 * cycles; then stream y through the rows; sums leave the bottom row. */
static uint64_t run_stationary(int R, int C, int ru, int cu, int T, int int8, const void *x,
                               const void *y, void *out, pe *P, uint64_t *macs)
{
    int l, r, c, s, done = 0;
    for (r = 0; r < R * C; r++) {
        P[r].ta = P[r].tb = -1;
        P[r].fa = P[r].fb = 0.0f;
        P[r].ia = 0;
        P[r].ib = 0;
    }
    for (l = 0; l < R; l++) {
        int src = R - 1 - l; /* the row of the tile entering this cycle */
        for (c = 0; c < C; c++) {
            int use = src < ru && c < cu;
            for (r = R - 1; r > 0; r--) {
                P[r * C + c].fs = P[(r - 1) * C + c].fs;
                P[r * C + c].is = P[(r - 1) * C + c].is;
            }
            P[c].fs = use && !int8 ? ((const float *)x)[src * cu + c] : 0.0f;
            P[c].is = use && int8 ? ((const int8_t *)x)[src * cu + c] : 0;
        }
    }
    for (s = 0; !done; s++) {
        for (r = R - 1; r >= 0; r--)
            for (c = C - 1; c >= 0; c--) {
                pe *q = &P[r * C + c];
                int32_t tok, ia = 0;
                float fa = 0.0f, fp;
                uint32_t ip;
                if (c == 0) {
                    tok = s - r >= 0 && s - r < T ? s - r : -1;
                    if (tok >= 0 && r < ru) {
                        if (int8) ia = ((const int8_t *)y)[tok * ru + r];
                        else fa = ((const float *)y)[tok * ru + r];
                    }
                } else {
                    tok = P[r * C + c - 1].ta;
                    fa = P[r * C + c - 1].fa;
                    ia = P[r * C + c - 1].ia;
                }
                fp = r == 0 ? 0.0f : P[(r - 1) * C + c].fb;
                ip = r == 0 ? 0u : P[(r - 1) * C + c].ib;
                if (tok >= 0 && r < ru && c < cu) {
                    if (int8) ip = ip + (uint32_t)(ia * q->is);
                    else fp = fp + fa * q->fs;
                    ++*macs;
                }
                q->ta = q->tb = tok;
                q->fa = fa;
                q->ia = ia;
                q->fb = fp;
                q->ib = ip;
                if (r == R - 1 && tok >= 0) {
                    if (c < cu) {
                        if (int8) ((int32_t *)out)[tok * cu + c] = as_i32(ip);
                        else ((float *)out)[tok * cu + c] = fp;
                    }
                    if (c == C - 1 && tok == T - 1) done = 1;
                }
            }
    }
    return (uint64_t)R + (uint64_t)s;
}

/* OS: x's rows enter from the left, y's columns from the top, each PE adds its
 * products into its own accumulator. */
static uint64_t run_output(int R, int C, int ru, int cu, int T, int int8, const void *x,
                           const void *y, void *out, pe *P, uint64_t *macs)
{
    int r, c, s, done = 0;
    for (r = 0; r < R * C; r++) {
        P[r].ta = P[r].tb = -1;
        P[r].fs = P[r].fa = P[r].fb = 0.0f;
        P[r].is = P[r].ia = 0;
        P[r].ib = 0;
    }
    for (s = 0; !done; s++) {
        for (r = R - 1; r >= 0; r--)
            for (c = C - 1; c >= 0; c--) {
                pe *q = &P[r * C + c];
                int32_t ta, tb, ia = 0, ib = 0;
                float fa = 0.0f, fb = 0.0f;
                if (c == 0) {
                    ta = s - r >= 0 && s - r < T ? s - r : -1;
                    if (ta >= 0 && r < ru) {
                        if (int8) ia = ((const int8_t *)x)[r * T + ta];
                        else fa = ((const float *)x)[r * T + ta];
                    }
                } else {
                    ta = P[r * C + c - 1].ta;
                    fa = P[r * C + c - 1].fa;
                    ia = P[r * C + c - 1].ia;
                }
                if (r == 0) {
                    tb = s - c >= 0 && s - c < T ? s - c : -1;
                    if (tb >= 0 && c < cu) {
                        if (int8) ib = ((const int8_t *)y)[tb * cu + c];
                        else fb = ((const float *)y)[tb * cu + c];
                    }
                } else {
                    tb = P[(r - 1) * C + c].tb;
                    fb = P[(r - 1) * C + c].fb;
                    ib = as_i32(P[(r - 1) * C + c].ib);
                }
                /* the skews meet: both operands of a PE carry the same k */
                if (ta >= 0 && ta == tb && r < ru && c < cu) {
                    if (int8) q->is = as_i32((uint32_t)q->is + (uint32_t)(ia * ib));
                    else q->fs = q->fs + fa * fb;
                    ++*macs;
                }
                q->ta = ta;
                q->tb = tb;
                q->fa = fa;
                q->ia = ia;
                q->fb = fb;
                q->ib = (uint32_t)ib;
                if (r == R - 1 && c == C - 1 && ta == T - 1) done = 1;
            }
    }
    for (r = 0; r < ru; r++)
        for (c = 0; c < cu; c++) {
            if (int8) ((int32_t *)out)[r * cu + c] = P[r * C + c].is;
            else ((float *)out)[r * cu + c] = P[r * C + c].fs;
        }
    return (uint64_t)s;
}

et_status et_sys_cycle_fold(const et_sys_config *c, int ru, int cu, int T, const void *x,
                            const void *y, void *out, void *scratch, size_t scratch_bytes,
                            uint64_t *cycles, uint64_t *macs)
{
    pe *P;
    uint64_t n = 0, cyc;
    int int8;
    if (et_sys_config_check(c) != ET_OK || ru < 1 || ru > c->rows || cu < 1 || cu > c->cols ||
        T < 1 || !x || !y || !out)
        return ET_ERR_INVALID;
    if (!scratch || scratch_bytes < et_sys_cycle_scratch_bytes(c->rows, c->cols)) return ET_ERR_NOMEM;
    P = (pe *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    int8 = c->dtype == ET_SYS_INT8;
    if (c->dataflow == ET_SYS_OS)
        cyc = run_output(c->rows, c->cols, ru, cu, T, int8, x, y, out, P, &n);
    else
        cyc = run_stationary(c->rows, c->cols, ru, cu, T, int8, x, y, out, P, &n);
    if (cycles) *cycles = cyc;
    if (macs) *macs = n;
    return ET_OK;
}
