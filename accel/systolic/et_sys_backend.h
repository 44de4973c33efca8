/* et_sys_backend.h - the systolic simulator as an edgetrain backend ("systolic").
 *
 * GEMMs (matmul_fwd, matmul_bwd) run on the simulated array, as an NPU would run them;
 * every other op runs on the host through the cpu backend's table, as an NPU's host
 * would run them. The model runs unchanged. The backend keeps, per call, what the array
 * did (cycles, traffic, energy: one et_sys_record per GEMM, in a log the caller owns)
 * and the host's wall time per op kind, so a report can set array time (cycles at the
 * configured clock) beside host time. Tensors live in host memory.
 *
 * fp32 mode runs training and inference. int8 mode is for inference: matmul_fwd
 * quantizes its input per tensor and the weights per output channel with the
 * stand-in of et_systolic.h, runs int8 x int8 -> int32 on the array and dequantizes at
 * the output stage; matmul_bwd then returns ET_ERR_UNSUPPORTED.
 */
#ifndef ET_SYS_BACKEND_H
#define ET_SYS_BACKEND_H

#include "et_backend.h"
#include "et_cpu.h"
#include "et_host.h"
#include "et_systolic.h"

/** Which product of a linear layer a GEMM computed. */
typedef enum et_sys_gemm_kind {
    ET_SYS_GEMM_FWD = 0,  /**< out = inp . w^T (+ bias) */
    ET_SYS_GEMM_DINP = 1, /**< dinp += dout . w */
    ET_SYS_GEMM_DW = 2    /**< dw += dout^T . inp */
} et_sys_gemm_kind;

/** One GEMM the array ran. */
typedef struct et_sys_record {
    et_sys_gemm_kind kind;
    const float *w;     /**< the layer's weight: names the layer */
    int M, N, K;        /**< A(M,K) . B(K,N) */
    int int8;           /**< ran quantized */
    et_sys_stats st;
    double sim_seconds; /**< host wall time spent simulating it */
} et_sys_record;

/** Host op kinds, for host wall time. */
enum {
    ET_SYS_HOST_LAYERNORM, ET_SYS_HOST_ATTENTION, ET_SYS_HOST_GELU, ET_SYS_HOST_RESIDUAL,
    ET_SYS_HOST_ENCODER, ET_SYS_HOST_CROSSENTROPY, ET_SYS_HOST_ADAMW, ET_SYS_HOST_BIAS_GRAD,
    ET_SYS_HOST_QUANT, ET_SYS_HOST_OTHER, ET_SYS_HOST_NOPS
};

/** Backend state; the caller owns it (it must outlive the table). */
typedef struct et_sys_ctx {
    et_sys_config cfg;
    const et_threads *th;
    et_backend cpu;          /**< the host ops */
    et_cpu_ctx cpu_ctx;
    int max_n;               /**< widest output a quantized GEMM may have */
    float *colscale;         /**< (max_n) per-channel weight scales, from scratch */
    void *gemm_scratch;
    size_t gemm_scratch_bytes;
    et_sys_record *log;      /**< caller's array, or NULL */
    size_t log_cap, log_n;
    size_t log_dropped;      /**< GEMMs not logged because the log was full */
    et_sys_stats total;      /**< every GEMM since the last reset */
    double sim_seconds;      /**< wall time simulating GEMMs */
    double host_seconds[ET_SYS_HOST_NOPS];
    unsigned long host_calls[ET_SYS_HOST_NOPS];
} et_sys_ctx;

/** Scratch the backend asks of the model's arena: the cpu backend's, the per-channel
 *  scales and the array's tiles for et_threads_workers(th) workers. */
size_t et_sys_backend_scratch_bytes(const et_sys_config *cfg, const et_threads *th, int max_n);

/**
 * Fills @p be with the systolic backend.
 * @param[out] be     backend table ("systolic")
 * @param[out] ctx    its state (must outlive @p be)
 * @param[in]  cfg    the array (checked)
 * @param[in]  th     host threads (NULL: serial), for the host ops and the simulation
 * @param[in]  max_n  widest GEMM output in int8 mode (for a GPT: max(4C, Vp)); any in fp32
 * @param[in]  log    array of @p log_cap records for per-GEMM records (may be NULL)
 * @return ET_OK or ET_ERR_INVALID
 */
et_status et_sys_backend_init(et_backend *be, et_sys_ctx *ctx, const et_sys_config *cfg,
                              const et_threads *th, int max_n, et_sys_record *log, size_t log_cap);

/**
 * Parses a backend spec's argument, "RxC[:os|ws|is][:fp32|int8]" (e.g. "128x128:os:int8";
 * the parts after the array may be left out), into a config that starts from
 * et_sys_config_default(). NULL or "" gives the defaults. For a backend registry:
 * "systolic:16x16:ws" opens the array with that argument.
 * @return ET_OK or ET_ERR_INVALID with a message naming the bad part
 */
et_status et_sys_spec_parse(const char *arg, et_sys_config *c, et_error *err);

/** Clears the counters, the times and the log (to report one step at a time). */
void et_sys_backend_reset(et_sys_ctx *ctx);

/** Sum of the host ops' wall time, seconds. */
double et_sys_host_seconds(const et_sys_ctx *ctx);

/** "layernorm", "attention", ... for a host op kind. */
const char *et_sys_host_op_name(int op);

/** "fwd", "dinp" or "dw". */
const char *et_sys_gemm_kind_name(et_sys_gemm_kind k);

#endif /* ET_SYS_BACKEND_H */
