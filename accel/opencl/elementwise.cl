/* elementwise.cl - one item per element (or per column, where a column sum must stay
 * in row order): bias, GELU, residual, accumulate, scale, embeddings, AdamW, sum of
 * squares. Items past n return at once (global sizes are rounded up to the group). */

/* out(N,OC) = bias broadcast over rows, or 0 (the GEMM then adds into it) */
__kernel void bias_fill(__global float *M, ulong o_out, ulong o_bias, int has_bias, int N, int OC)
{
    size_t i = get_global_id(0);
    if (i >= (size_t)N * OC) return;
    M[o_out + i] = has_bias ? M[o_bias + i % OC] : 0.0f;
}

/* dbias(OC) += column sums of dout(N,OC), rows in order (as the cpu backend) */
__kernel void bias_bwd(__global float *M, ulong o_dbias, ulong o_dout, int N, int OC)
{
    size_t o = get_global_id(0), r;
    float s = 0.0f;
    if (o >= (size_t)OC) return;
    for (r = 0; r < (size_t)N; r++) s += M[o_dout + r * OC + o];
    M[o_dbias + o] += s;
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

__kernel void gelu_fwd(__global float *M, ulong o_out, ulong o_inp, ulong n)
{
    size_t i = get_global_id(0);
    float x;
    if (i >= n) return;
    x = M[o_inp + i];
    M[o_out + i] = 0.5f * x * (1.0f + tanh(GELU_K * (x + 0.044715f * x * x * x)));
}

__kernel void gelu_bwd(__global float *M, ulong o_dinp, ulong o_inp, ulong o_dout, ulong n)
{
    size_t i = get_global_id(0);
    float x, th, g;
    if (i >= n) return;
    x = M[o_inp + i];
    th = tanh(GELU_K * (x + 0.044715f * x * x * x));
    g = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
    M[o_dinp + i] += g * M[o_dout + i];
}

__kernel void residual_fwd(__global float *M, ulong o_out, ulong o_a, ulong o_b, ulong n)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    M[o_out + i] = M[o_a + i] + M[o_b + i];
}

__kernel void accumulate(__global float *M, ulong o_dst, ulong o_src, ulong n)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    M[o_dst + i] += M[o_src + i];
}

__kernel void scale(__global float *M, ulong o_x, float s, ulong n)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    M[o_x + i] *= s;
}

/* out(B*T,C) = wte[tok] + wpe[t]; one item per output element */
__kernel void encoder_fwd(__global float *M, __global const int *tok, ulong o_out, ulong o_wte,
                          ulong o_wpe, int BT, int T, int C)
{
    size_t i = get_global_id(0), r, c;
    if (i >= (size_t)BT * C) return;
    r = i / C;
    c = i % C;
    M[o_out + i] = M[o_wte + (size_t)tok[r] * C + c] + M[o_wpe + (r % T) * C + c];
}

/* dwte[tok[r]] += dout[r]: one item per column walks every row in order, so rows with
 * the same token add in the cpu backend's order and no two items share an output */
__kernel void encoder_bwd_wte(__global float *M, __global const int *tok, ulong o_dwte,
                              ulong o_dout, int BT, int C)
{
    size_t c = get_global_id(0), r;
    if (c >= (size_t)C) return;
    for (r = 0; r < (size_t)BT; r++) M[o_dwte + (size_t)tok[r] * C + c] += M[o_dout + r * C + c];
}

/* dwpe[t] += dout[b, t] over b in order; one item per (t, c) */
__kernel void encoder_bwd_wpe(__global float *M, ulong o_dwpe, ulong o_dout, int B, int T, int C)
{
    size_t i = get_global_id(0), b;
    float s;
    if (i >= (size_t)T * C) return;
    s = M[o_dwpe + i];
    for (b = 0; b < (size_t)B; b++) s += M[o_dout + b * T * C + i];
    M[o_dwpe + i] = s;
}

/* AdamW with decoupled decay; bc1, bc2 = 1 - beta^t come from the host */
__kernel void adamw(__global float *M, ulong o_p, ulong o_g, ulong o_m, ulong o_v, ulong n,
                    float lr, float b1, float b2, float eps, float wd, float bc1, float bc2)
{
    size_t i = get_global_id(0);
    float g, m, v, p;
    if (i >= n) return;
    g = M[o_g + i];
    m = b1 * M[o_m + i] + (1.0f - b1) * g;
    v = b2 * M[o_v + i] + (1.0f - b2) * g * g;
    M[o_m + i] = m;
    M[o_v + i] = v;
    p = M[o_p + i];
    M[o_p + i] = p - lr * ((m / bc1) / (sqrt(v / bc2) + eps) + wd * p);
}

/* One partial sum of squares per group of LS items over a chunk of CHUNK elements;
 * double where the device has it, the host adds the partials in order. */
#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double acc_t;
#else
typedef float acc_t;
#endif
__kernel void sumsq(__global float *M, __global acc_t *part, ulong o_x, ulong n)
{
    __local acc_t buf[LS];
    size_t g = get_group_id(0), l = get_local_id(0), i0 = g * CHUNK, i1 = i0 + CHUNK, i;
    acc_t s = 0;
    int st;
    if (i1 > n) i1 = n;
    for (i = i0 + l; i < i1; i += LS) {
        acc_t x = (acc_t)M[o_x + i];
        s += x * x;
    }
    buf[l] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (st = LS / 2; st > 0; st >>= 1) {
        if ((int)l < st) buf[l] += buf[l + st];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) part[g] = buf[0];
}
