/* sys_quant.c - the simulator's int8 quantization stand-in (et_systolic.h).
 *
 * Symmetric int8 with zero point 0 and scale max|x|/127: per tensor for activations,
 * per row (output channel) for weights, computed on the fly from the floats. It exists
 * so `edgetrain sim --dtype int8` and the int8 backend can run a quantized model before
 * compress/ (issue 4) provides the real scheme (calibrated asymmetric activations,
 * fixed-point requantization); when that lands, the backend should take its
 * parameters instead, and these helpers go. Freestanding: no libm (rounding by hand).
 * Deliberately avoided: calibration, zero points, requantizing outputs to int8 (the
 * array's int32 results are dequantized to float at the output stage).
 */
#include "et_systolic.h"

static float absf(float x) { return x < 0.0f ? -x : x; }

static float scale_of(float maxabs)
{
    /* all zero, or nothing finite: any positive scale quantizes to zeros */
    if (!(maxabs > 0.0f) || maxabs > 3.0e38f) return 1.0f;
    return maxabs / 127.0f;
}

float et_sys_q8_scale(const float *x, size_t n)
{
    float m = 0.0f;
    size_t i;
    for (i = 0; i < n; i++) {
        float a = absf(x[i]);
        if (a > m && a <= 3.0e38f) m = a; /* skips inf and NaN */
    }
    return scale_of(m);
}

void et_sys_q8_scale_rows(const float *x, int rows, int cols, int ld, float *scales)
{
    int r;
    for (r = 0; r < rows; r++) scales[r] = et_sys_q8_scale(x + (size_t)r * (size_t)ld, (size_t)cols);
}

int8_t et_sys_q8(float x, float scale)
{
    double v = (double)x / (double)scale;
    if (!(v == v)) return 0;
    if (v >= 127.0) return 127;
    if (v <= -127.0) return -127;
    /* round half away from zero; exact in double for |v| < 128 */
    return (int8_t)(v >= 0.0 ? (int)(v + 0.5) : -(int)(-v + 0.5));
}

void et_sys_q8_quantize(const float *x, size_t n, float scale, int8_t *q)
{
    size_t i;
    for (i = 0; i < n; i++) q[i] = et_sys_q8(x[i], scale);
}
