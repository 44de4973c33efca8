/* opencl_ops.c - the OpenCL driver's op table: GEMMs through CLBlast on the arena
 * buffer with element offsets, everything else through the kernels of the .cl files.
 *
 * Linear layers are row-major GEMMs, as in the cpu backend:
 *   forward   out(N,OC)  = inp(N,C) . w(OC,C)^T (+ bias)  CLBlast NT, beta 1 over a
 *                                                          bias (or zero) fill
 *   backward  dinp(N,C) += dout(N,OC) . w(OC,C)           NN, beta 1
 *             dw(OC,C)  += dout(N,OC)^T . inp(N,C)        TN, beta 1
 * The forward fills the output first because a GEMM with beta 0 may still read C
 * (0 * NaN), and the device arena is not zeroed. Every op only enqueues work on the
 * in-order queue; the only waits are downloads, sumsq (it returns a host value) and a
 * changed token buffer. Deliberately absent: fused kernels, a tuned GEMM of our own.
 */
#include <string.h>
#include <clblast_c.h>
#include "et_math.h"
#include "et_opencl_impl.h"

#define CL_OF(ctx) ((et_opencl *)(ctx))
#define TRY(x) do { et_status et__s = (x); if (et__s != ET_OK) return et__s; } while (0)
#define OFF(p, n, var) TRY(et__ocl_off(cl, (p), (size_t)(n), &(var)))

/* --- kernel calls: arguments in order, then one enqueue that checks them all */

typedef struct {
    et_opencl *cl;
    cl_kernel k;
    cl_uint i;
    cl_int e;
} kcall;

static kcall kbegin(et_opencl *cl, int k)
{
    kcall c;
    c.cl = cl;
    c.k = cl->k[k];
    c.i = 0;
    c.e = clSetKernelArg(c.k, c.i++, sizeof(cl_mem), &cl->arena_buf);
    return c;
}

static void arg(kcall *c, size_t size, const void *v)
{
    cl_int e = clSetKernelArg(c->k, c->i++, size, v);
    if (c->e == CL_SUCCESS) c->e = e;
}
static void a_mem(kcall *c, cl_mem m) { arg(c, sizeof m, &m); }
static void a_off(kcall *c, cl_ulong o) { arg(c, sizeof o, &o); }
static void a_int(kcall *c, int v) { cl_int x = v; arg(c, sizeof x, &x); }
static void a_flt(kcall *c, float v) { cl_float x = v; arg(c, sizeof x, &x); }

/* enqueues over @p items work-items in groups of @p local (the count rounded up) */
static et_status krun(kcall *c, size_t items, size_t local, const char *what)
{
    size_t global;
    if (c->e != CL_SUCCESS) return et__ocl_fail(c->cl, what, c->e);
    if (items == 0) return ET_OK;
    global = (items + local - 1) / local * local;
    c->e = clEnqueueNDRangeKernel(c->cl->q, c->k, 1, NULL, &global, &local, 0, NULL, NULL);
    return c->e == CL_SUCCESS ? ET_OK : et__ocl_fail(c->cl, what, c->e);
}

/* one work-item per element */
static et_status krun_ew(kcall *c, size_t n, const char *what) { return krun(c, n, c->cl->ls, what); }
/* one group of ls items per row */
static et_status krun_rows(kcall *c, size_t rows, const char *what)
{
    return krun(c, rows * c->cl->ls, c->cl->ls, what);
}

/* --- GEMM */

static et_status sgemm(et_opencl *cl, CLBlastTranspose ta, CLBlastTranspose tb, size_t m, size_t n,
                       size_t k, cl_ulong oa, size_t lda, cl_ulong ob, size_t ldb, cl_ulong oc,
                       size_t ldc, const char *what)
{
    CLBlastStatusCode st;
    if (!m || !n || !k) return ET_OK;
    st = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, m, n, k, 1.0f, cl->arena_buf, oa, lda,
                      cl->arena_buf, ob, ldb, 1.0f, cl->arena_buf, oc, ldc, &cl->q, NULL);
    if (st != CLBlastSuccess) {
        et__ocl_fail(cl, what, (cl_int)st);
        strncat(cl->err, " (CLBlast status)", sizeof cl->err - strlen(cl->err) - 1);
        return ET_ERR_DEVICE;
    }
    return ET_OK;
}

static et_status o_matmul_fwd(void *ctx, float *out, const float *inp, const float *w,
                              const float *bias, int N, int C, int OC)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong oo, oi, ow, ob = 0;
    kcall k;
    OFF(out, (size_t)N * OC, oo);
    OFF(inp, (size_t)N * C, oi);
    OFF(w, (size_t)OC * C, ow);
    if (bias) OFF(bias, OC, ob);
    k = kbegin(cl, K_BIAS_FILL);
    a_off(&k, oo); a_off(&k, ob); a_int(&k, bias != NULL); a_int(&k, N); a_int(&k, OC);
    TRY(krun_ew(&k, (size_t)N * OC, "bias_fill"));
    return sgemm(cl, CLBlastTransposeNo, CLBlastTransposeYes, (size_t)N, (size_t)OC, (size_t)C,
                 oi, (size_t)C, ow, (size_t)C, oo, (size_t)OC, "CLBlastSgemm (matmul_fwd)");
}

static et_status o_matmul_bwd(void *ctx, float *dinp, float *dw, float *dbias,
                              const float *dout, const float *inp, const float *w, int N, int C,
                              int OC)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong odi, odw, odb, odo, oi, ow;
    OFF(dout, (size_t)N * OC, odo);
    OFF(inp, (size_t)N * C, oi);
    OFF(w, (size_t)OC * C, ow);
    if (dinp) {
        OFF(dinp, (size_t)N * C, odi);
        TRY(sgemm(cl, CLBlastTransposeNo, CLBlastTransposeNo, (size_t)N, (size_t)C, (size_t)OC,
                  odo, (size_t)OC, ow, (size_t)C, odi, (size_t)C, "CLBlastSgemm (matmul_bwd dinp)"));
    }
    if (dw) {
        OFF(dw, (size_t)OC * C, odw);
        TRY(sgemm(cl, CLBlastTransposeYes, CLBlastTransposeNo, (size_t)OC, (size_t)C, (size_t)N,
                  odo, (size_t)OC, oi, (size_t)C, odw, (size_t)C, "CLBlastSgemm (matmul_bwd dw)"));
    }
    if (dbias) {
        kcall k;
        OFF(dbias, OC, odb);
        k = kbegin(cl, K_BIAS_BWD);
        a_off(&k, odb); a_off(&k, odo); a_int(&k, N); a_int(&k, OC);
        TRY(krun_ew(&k, (size_t)OC, "bias_bwd"));
    }
    return ET_OK;
}

/* --- LayerNorm */

static et_status o_layernorm_fwd(void *ctx, float *out, float *mean, float *rstd,
                                 const float *inp, const float *w, const float *b, int N, int C)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong oo, om, orr, oi, ow, ob;
    kcall k;
    OFF(out, (size_t)N * C, oo); OFF(mean, N, om); OFF(rstd, N, orr);
    OFF(inp, (size_t)N * C, oi); OFF(w, C, ow); OFF(b, C, ob);
    k = kbegin(cl, K_LN_FWD);
    a_off(&k, oo); a_off(&k, om); a_off(&k, orr); a_off(&k, oi); a_off(&k, ow); a_off(&k, ob);
    a_int(&k, C);
    return krun_rows(&k, (size_t)N, "layernorm_fwd");
}

static et_status o_layernorm_bwd(void *ctx, float *dinp, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, const float *mean,
                                 const float *rstd, int N, int C)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong odi, odw, odb, odo, oi, ow, om, orr;
    kcall k;
    OFF(dinp, (size_t)N * C, odi); OFF(dw, C, odw); OFF(db, C, odb); OFF(dout, (size_t)N * C, odo);
    OFF(inp, (size_t)N * C, oi); OFF(w, C, ow); OFF(mean, N, om); OFF(rstd, N, orr);
    k = kbegin(cl, K_LN_BWD_ROWS);
    a_off(&k, odi); a_off(&k, odo); a_off(&k, oi); a_off(&k, ow); a_off(&k, om); a_off(&k, orr);
    a_int(&k, C);
    TRY(krun_rows(&k, (size_t)N, "layernorm_bwd_rows"));
    k = kbegin(cl, K_LN_BWD_COLS);
    a_off(&k, odw); a_off(&k, odb); a_off(&k, odo); a_off(&k, oi); a_off(&k, om); a_off(&k, orr);
    a_int(&k, N); a_int(&k, C);
    return krun_ew(&k, (size_t)C, "layernorm_bwd_cols");
}

/* --- attention */

static et_status o_attention_fwd(void *ctx, float *out, float *preatt, float *att,
                                 const float *qkv, int B, int T, int C, int NH)
{
    et_opencl *cl = CL_OF(ctx);
    size_t BT = (size_t)B * T, A = (size_t)B * NH * T * T;
    cl_ulong oo, op, oa, oq;
    kcall k;
    OFF(out, BT * C, oo); OFF(preatt, A, op); OFF(att, A, oa); OFF(qkv, BT * 3 * C, oq);
    k = kbegin(cl, K_ATT_SCORES);
    a_off(&k, op); a_off(&k, oa); a_off(&k, oq); a_int(&k, T); a_int(&k, C); a_int(&k, NH);
    TRY(krun_rows(&k, (size_t)B * NH * T, "attention_scores"));
    k = kbegin(cl, K_ATT_OUT);
    a_off(&k, oo); a_off(&k, oa); a_off(&k, oq); a_int(&k, (int)BT); a_int(&k, T); a_int(&k, C);
    a_int(&k, NH);
    return krun_ew(&k, BT * C, "attention_out");
}

static et_status o_attention_bwd(void *ctx, float *dqkv, float *dpreatt, float *datt,
                                 const float *dout, const float *qkv, const float *preatt,
                                 const float *att, const float *out, int B, int T, int C, int NH)
{
    et_opencl *cl = CL_OF(ctx);
    size_t BT = (size_t)B * T, A = (size_t)B * NH * T * T;
    cl_ulong odq, odp, oda, odo, oq, oa;
    kcall k;
    (void)preatt; /* the gradient needs only the probabilities in att */
    (void)out;
    OFF(dqkv, BT * 3 * C, odq); OFF(dpreatt, A, odp); OFF(datt, A, oda); OFF(dout, BT * C, odo);
    OFF(qkv, BT * 3 * C, oq); OFF(att, A, oa);
    k = kbegin(cl, K_ATT_BWD_DATT);
    a_off(&k, oda); a_off(&k, odo); a_off(&k, oq); a_int(&k, B); a_int(&k, T); a_int(&k, C);
    a_int(&k, NH);
    TRY(krun_ew(&k, A, "attention_bwd_datt"));
    k = kbegin(cl, K_ATT_BWD_DPRE);
    a_off(&k, odp); a_off(&k, oda); a_off(&k, oa); a_int(&k, T);
    a_flt(&k, 1.0f / et_sqrtf((float)(C / NH)));
    TRY(krun_rows(&k, (size_t)B * NH * T, "attention_bwd_dpre"));
    k = kbegin(cl, K_ATT_BWD_DQ);
    a_off(&k, odq); a_off(&k, odp); a_off(&k, oq); a_int(&k, (int)BT); a_int(&k, T); a_int(&k, C);
    a_int(&k, NH);
    TRY(krun_ew(&k, BT * C, "attention_bwd_dq"));
    k = kbegin(cl, K_ATT_BWD_DKV);
    a_off(&k, odq); a_off(&k, odp); a_off(&k, oa); a_off(&k, odo); a_off(&k, oq);
    a_int(&k, (int)BT); a_int(&k, T); a_int(&k, C); a_int(&k, NH);
    return krun_ew(&k, BT * C, "attention_bwd_dkv");
}

/* --- elementwise */

static et_status o_gelu_fwd(void *ctx, float *out, const float *inp, size_t n)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong oo, oi;
    kcall k;
    OFF(out, n, oo); OFF(inp, n, oi);
    k = kbegin(cl, K_GELU_FWD);
    a_off(&k, oo); a_off(&k, oi); a_off(&k, n);
    return krun_ew(&k, n, "gelu_fwd");
}

static et_status o_gelu_bwd(void *ctx, float *dinp, const float *inp, const float *dout, size_t n)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong od, oi, oo;
    kcall k;
    OFF(dinp, n, od); OFF(inp, n, oi); OFF(dout, n, oo);
    k = kbegin(cl, K_GELU_BWD);
    a_off(&k, od); a_off(&k, oi); a_off(&k, oo); a_off(&k, n);
    return krun_ew(&k, n, "gelu_bwd");
}

static et_status o_residual_fwd(void *ctx, float *out, const float *a, const float *b, size_t n)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong oo, oa, ob;
    kcall k;
    OFF(out, n, oo); OFF(a, n, oa); OFF(b, n, ob);
    k = kbegin(cl, K_RESIDUAL);
    a_off(&k, oo); a_off(&k, oa); a_off(&k, ob); a_off(&k, n);
    return krun_ew(&k, n, "residual_fwd");
}

static et_status o_accumulate(void *ctx, float *dst, const float *src, size_t n)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong od, os;
    kcall k;
    OFF(dst, n, od); OFF(src, n, os);
    k = kbegin(cl, K_ACCUMULATE);
    a_off(&k, od); a_off(&k, os); a_off(&k, n);
    return krun_ew(&k, n, "accumulate");
}

static et_status o_scale(void *ctx, float *x, float s, size_t n)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong ox;
    kcall k;
    OFF(x, n, ox);
    k = kbegin(cl, K_SCALE);
    a_off(&k, ox); a_flt(&k, s); a_off(&k, n);
    return krun_ew(&k, n, "scale");
}

static et_status o_zero(void *ctx, float *x, size_t n)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong ox;
    cl_float zero = 0.0f;
    cl_int e;
    OFF(x, n, ox);
    if (!n) return ET_OK;
    e = clEnqueueFillBuffer(cl->q, cl->arena_buf, &zero, sizeof zero, (size_t)ox * 4, n * 4, 0,
                            NULL, NULL);
    return e == CL_SUCCESS ? ET_OK : et__ocl_fail(cl, "clEnqueueFillBuffer (zero)", e);
}

static et_status o_copy(void *ctx, float *dst, const float *src, size_t n)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong od, os;
    cl_int e;
    OFF(dst, n, od); OFF(src, n, os);
    if (!n) return ET_OK;
    e = clEnqueueCopyBuffer(cl->q, cl->arena_buf, cl->arena_buf, (size_t)os * 4, (size_t)od * 4,
                            n * 4, 0, NULL, NULL);
    return e == CL_SUCCESS ? ET_OK : et__ocl_fail(cl, "clEnqueueCopyBuffer (copy)", e);
}

/* --- embeddings and the loss: token ids come from the host */

static et_status o_encoder_fwd(void *ctx, float *out, const int *tokens, const float *wte,
                               const float *wpe, int B, int T, int C)
{
    et_opencl *cl = CL_OF(ctx);
    size_t BT = (size_t)B * T;
    cl_ulong oo, owt, owp;
    kcall k;
    OFF(out, BT * C, oo); OFF(wte, C, owt); OFF(wpe, (size_t)T * C, owp);
    TRY(et__ocl_stage_put(cl, &cl->tok, tokens, BT * sizeof(int)));
    k = kbegin(cl, K_ENC_FWD);
    a_mem(&k, cl->tok.buf); a_off(&k, oo); a_off(&k, owt); a_off(&k, owp); a_int(&k, (int)BT);
    a_int(&k, T); a_int(&k, C);
    return krun_ew(&k, BT * C, "encoder_fwd");
}

static et_status o_encoder_bwd(void *ctx, float *dwte, float *dwpe, const float *dout,
                               const int *tokens, int B, int T, int C)
{
    et_opencl *cl = CL_OF(ctx);
    size_t BT = (size_t)B * T;
    cl_ulong owt, owp, odo;
    kcall k;
    OFF(dwte, C, owt); OFF(dwpe, (size_t)T * C, owp); OFF(dout, BT * C, odo);
    TRY(et__ocl_stage_put(cl, &cl->tok, tokens, BT * sizeof(int)));
    k = kbegin(cl, K_ENC_BWD_WTE);
    a_mem(&k, cl->tok.buf); a_off(&k, owt); a_off(&k, odo); a_int(&k, (int)BT); a_int(&k, C);
    TRY(krun_ew(&k, (size_t)C, "encoder_bwd_wte"));
    k = kbegin(cl, K_ENC_BWD_WPE);
    a_off(&k, owp); a_off(&k, odo); a_int(&k, B); a_int(&k, T); a_int(&k, C);
    return krun_ew(&k, (size_t)T * C, "encoder_bwd_wpe");
}

static et_status o_ce_fwd(void *ctx, float *losses, float *probs, const float *logits,
                          const int *targets, int N, int V, int Vp)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong ol = 0, op, og;
    int has = targets && losses;
    kcall k;
    OFF(probs, (size_t)N * Vp, op); OFF(logits, (size_t)N * Vp, og);
    if (has) {
        OFF(losses, N, ol);
        TRY(et__ocl_stage_put(cl, &cl->tgt, targets, (size_t)N * sizeof(int)));
    }
    k = kbegin(cl, K_CE_FWD);
    a_mem(&k, has ? cl->tgt.buf : cl->arena_buf); /* unread without targets */
    a_off(&k, ol); a_off(&k, op); a_off(&k, og); a_int(&k, has); a_int(&k, V); a_int(&k, Vp);
    return krun_rows(&k, (size_t)N, "crossentropy_fwd");
}

static et_status o_ce_bwd(void *ctx, float *dlogits, const float *probs, const int *targets,
                          float dloss, int N, int V, int Vp)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong od, op;
    kcall k;
    OFF(dlogits, (size_t)N * Vp, od); OFF(probs, (size_t)N * Vp, op);
    TRY(et__ocl_stage_put(cl, &cl->tgt, targets, (size_t)N * sizeof(int)));
    k = kbegin(cl, K_CE_BWD);
    a_mem(&k, cl->tgt.buf); a_off(&k, od); a_off(&k, op); a_flt(&k, dloss); a_int(&k, N);
    a_int(&k, V); a_int(&k, Vp);
    return krun_ew(&k, (size_t)N * V, "crossentropy_bwd");
}

/* --- optimizer and reductions */

static et_status o_adamw(void *ctx, float *param, const float *grad, float *m, float *v, size_t n,
                         float lr, float beta1, float beta2, float eps, float wd, int t)
{
    et_opencl *cl = CL_OF(ctx);
    cl_ulong op, og, om, ov;
    kcall k;
    if (t < 1) return ET_ERR_INVALID;
    OFF(param, n, op); OFF(grad, n, og); OFF(m, n, om); OFF(v, n, ov);
    k = kbegin(cl, K_ADAMW);
    a_off(&k, op); a_off(&k, og); a_off(&k, om); a_off(&k, ov); a_off(&k, n);
    a_flt(&k, lr); a_flt(&k, beta1); a_flt(&k, beta2); a_flt(&k, eps); a_flt(&k, wd);
    /* the same bias corrections, bit for bit, as the cpu backend */
    a_flt(&k, 1.0f - et_powf(beta1, (float)t));
    a_flt(&k, 1.0f - et_powf(beta2, (float)t));
    return krun_ew(&k, n, "adamw");
}

static et_status o_sumsq(void *ctx, double *out, const float *x, size_t n)
{
    et_opencl *cl = CL_OF(ctx);
    size_t nch = (n + ET_OCL_SUMSQ_CHUNK - 1) / ET_OCL_SUMSQ_CHUNK, i, w = cl->fp64 ? 8 : 4;
    cl_ulong ox;
    cl_int e;
    kcall k;
    double s = 0.0;
    OFF(x, n, ox);
    *out = 0.0;
    if (!n) return ET_OK;
    TRY(et__ocl_stage_grow(cl, &cl->part, nch * w));
    k = kbegin(cl, K_SUMSQ);
    a_mem(&k, cl->part.buf); a_off(&k, ox); a_off(&k, n);
    TRY(krun_rows(&k, nch, "sumsq"));
    e = clEnqueueReadBuffer(cl->q, cl->part.buf, CL_TRUE, 0, nch * w, cl->part.shadow, 0, NULL, NULL);
    if (e != CL_SUCCESS) return et__ocl_fail(cl, "clEnqueueReadBuffer (sumsq)", e);
    for (i = 0; i < nch; i++)
        s += cl->fp64 ? ((const double *)cl->part.shadow)[i] : (double)((const float *)cl->part.shadow)[i];
    *out = s;
    return ET_OK;
}

void et__ocl_fill_ops(et_opencl *cl, et_backend *be)
{
    ET_UNUSED(cl);
    be->matmul_fwd = o_matmul_fwd;
    be->matmul_bwd = o_matmul_bwd;
    be->layernorm_fwd = o_layernorm_fwd;
    be->layernorm_bwd = o_layernorm_bwd;
    be->attention_fwd = o_attention_fwd;
    be->attention_bwd = o_attention_bwd;
    be->gelu_fwd = o_gelu_fwd;
    be->gelu_bwd = o_gelu_bwd;
    be->residual_fwd = o_residual_fwd;
    be->accumulate = o_accumulate;
    be->encoder_fwd = o_encoder_fwd;
    be->encoder_bwd = o_encoder_bwd;
    be->crossentropy_fwd = o_ce_fwd;
    be->crossentropy_bwd = o_ce_bwd;
    be->adamw = o_adamw;
    be->sumsq = o_sumsq;
    be->scale = o_scale;
    be->zero = o_zero;
    be->copy = o_copy;
}

void et__ocl_blas_release(void)
{
    /* CLBlast keeps the programs it built per context; drop them with the context */
    CLBlastClearCache();
}
