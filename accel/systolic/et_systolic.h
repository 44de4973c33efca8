/* et_systolic.h - a TPU-like systolic-array simulator that computes real GEMMs.
 *
 * The array is R x C multiply-accumulate units (PEs) fed by three scratchpad SRAMs (A,
 * B and the output/accumulator C) that a DRAM interface of fixed bandwidth fills. A GEMM
 *     C(M,N) = A(M,K) . B(K,N)
 * is cut into folds (tiles the array can hold) and run in one of three dataflows:
 *   OS  output stationary  a PE keeps one C element; A rows enter from the left, B
 *                          columns from the top; Sr=M, Sc=N, T=K
 *   WS  weight stationary  a PE keeps one B element; A streams from the left, partial
 *                          sums flow down the columns; Sr=K, Sc=N, T=M
 *   IS  input stationary   a PE keeps one A element (A^T tile); B streams from the
 *                          left, partial sums flow down; Sr=K, Sc=M, T=N
 * Compute cycles follow SCALE-Sim v2's model exactly (docs/SYSTOLIC.md):
 *   OS  ceil(M/R) ceil(N/C) (R + C + K - 2)
 *   WS  ceil(K/R) ceil(N/C) (2R + C + M - 2)
 *   IS  ceil(K/R) ceil(M/C) (2R + C + N - 2)
 * counting every cycle from the first operand entering to the last output leaving,
 * both inclusive (SCALE-Sim prints this number minus one: the 0-based index of the
 * last cycle).
 *
 * Values are computed by a wavefront model that performs, for every output, exactly
 * the additions the PE column performs, in the same order, so int8 results are exact
 * and fp32 results are the bits the array would produce (et_sys_cycle_fold runs the
 * same fold register by register; the tests hold the two to the same bits). fp32
 * order: a PE computes p_out = p_in + a*w (product rounded, then sum rounded, never
 * fused); a WS/IS column starts at +0.0f and adds rows r = 0..R-1 top to bottom; the
 * accumulator SRAM keeps the first K-fold's column sum and adds each later K-fold's in
 * K order; an OS PE starts at +0.0f and adds k = 0..K-1. The output stage then adds
 * the bias (or the old C when accumulating). int8 products accumulate in int32 with
 * two's-complement wrap-around, as the hardware adder does.
 *
 * This part is freestanding C99 (no allocation, no libc beyond memcpy/memset): callers
 * pass scratch of the size the _scratch_bytes() functions give. Public symbols et_sys_*.
 */
#ifndef ET_SYSTOLIC_H
#define ET_SYSTOLIC_H

#include "et_conf.h"
#include "et_status.h"
#include "et_threads.h"

typedef enum et_sys_dataflow { ET_SYS_OS = 0, ET_SYS_WS = 1, ET_SYS_IS = 2 } et_sys_dataflow;
typedef enum et_sys_dtype { ET_SYS_FP32 = 0, ET_SYS_INT8 = 1 } et_sys_dtype;

/** The three SRAMs (and the matrices they hold). */
enum { ET_SYS_SRAM_A = 0, ET_SYS_SRAM_B = 1, ET_SYS_SRAM_C = 2, ET_SYS_NSRAM = 3 };

/** Energy per access, picojoules. */
typedef struct et_sys_energy {
    double mac_pj;           /**< one multiply-accumulate at the array's dtype */
    double sram_pj_per_byte; /**< one byte read or written in any scratchpad */
    double dram_pj_per_byte; /**< one byte moved over the DRAM interface */
} et_sys_energy;

/** The simulated machine. */
typedef struct et_sys_config {
    int rows, cols;              /**< R x C PEs */
    et_sys_dataflow dataflow;
    et_sys_dtype dtype;          /**< operand words: int8 1 byte, fp32 4; accumulators 4 */
    size_t sram_bytes[ET_SYS_NSRAM]; /**< A, B, C scratchpads (each double-buffered) */
    double dram_bytes_per_cycle; /**< DRAM interface bandwidth; 0 = ideal (no stalls) */
    double clock_mhz;            /**< array clock, for times in reports */
    int double_buffer;           /**< headline numbers use the overlapped fold schedule */
    et_sys_energy energy;
} et_sys_config;

/** Counters for one GEMM or a sum of several (all additive). Bytes, not words. */
typedef struct et_sys_stats {
    uint64_t gemms;
    uint64_t folds;
    uint64_t macs;             /**< useful MACs, M*N*K per GEMM */
    uint64_t pe_folds;         /**< sum over folds of PEs mapped (mapping efficiency) */
    uint64_t compute_cycles;   /**< closed form, folds run back to back */
    uint64_t stream_cycles;    /**< of those, cycles a fold streams operands (T per fold) */
    uint64_t stall_cycles;     /**< waiting on DRAM */
    uint64_t db_compute_cycles; /**< weights (or accumulators) double-buffered: folds overlap */
    uint64_t db_stall_cycles;
    uint64_t sram_read[ET_SYS_NSRAM];
    uint64_t sram_write[ET_SYS_NSRAM];
    uint64_t dram_read[ET_SYS_NSRAM];  /**< A, B fetched; C: partial sums read back */
    uint64_t dram_write[ET_SYS_NSRAM]; /**< only C (results and spilled partial sums) */
} et_sys_stats;

/** How a GEMM maps onto the array. */
typedef struct et_sys_map {
    int Sr, Sc, T;           /**< spatial rows, spatial columns, streamed (temporal) */
    int row_folds, col_folds;
    uint64_t fold_cycles;    /**< P: cycles of one fold, run alone */
    uint64_t db_step;        /**< cycles between fold starts when folds overlap */
} et_sys_map;

/* --- configuration (sys_timing.c) */

/** Defaults: 16x16 WS fp32, SRAMs 1024/1024/512 KiB, 32 bytes/cycle DRAM, 1000 MHz,
 *  and the energy table of et_sys_energy_default(ET_SYS_FP32). */
void et_sys_config_default(et_sys_config *c);
/** 45 nm figures (Horowitz, ISSCC 2014): MAC int8 0.3 pJ (8-bit multiply 0.2 + 32-bit
 *  add 0.1), fp32 4.6 pJ (3.7 + 0.9); SRAM 2.5 pJ/byte (32 KiB bank, 64-bit word at
 *  20 pJ); DRAM 160 pJ/byte (1.3 nJ per 64-bit word). */
et_sys_energy et_sys_energy_default(et_sys_dtype dt);
/** ET_ERR_INVALID unless rows, cols in 1..4096, the enums valid, every SRAM > 0,
 *  bandwidth >= 0, clock > 0 and energies >= 0. */
et_status et_sys_config_check(const et_sys_config *c);
/** Bytes of one operand word: 1 (int8) or 4 (fp32). Accumulators are always 4. */
int et_sys_word_bytes(et_sys_dtype dt);
const char *et_sys_dataflow_name(et_sys_dataflow df);
const char *et_sys_dtype_name(et_sys_dtype dt);

/* --- timing and traffic (sys_timing.c) */

/** Fills @p m for an (M,K)x(K,N) GEMM. ET_ERR_INVALID for a bad config or size < 1. */
et_status et_sys_map_gemm(const et_sys_config *c, int M, int N, int K, et_sys_map *m);
/** Compute cycles of the closed form (0 on bad input). */
uint64_t et_sys_compute_cycles(const et_sys_config *c, int M, int N, int K);
/** The same with double-buffered folds: P + (folds - 1) * max(T, R). */
uint64_t et_sys_compute_cycles_db(const et_sys_config *c, int M, int N, int K);

/**
 * Adds one GEMM's counters to @p st: folds, MACs, closed-form cycles, SRAM accesses,
 * DRAM traffic and the memory stalls of both fold schedules (an event model over the
 * folds, docs/SYSTOLIC.md). Depends on shapes only, never on values.
 */
et_status et_sys_gemm_timing(const et_sys_config *c, int M, int N, int K, et_sys_stats *st);

void et_sys_stats_add(et_sys_stats *dst, const et_sys_stats *src);
/** compute + stall (plain schedule) */
uint64_t et_sys_total_cycles(const et_sys_stats *s);
/** compute + stall (double-buffered schedule) */
uint64_t et_sys_db_total_cycles(const et_sys_stats *s);
/** The headline total: double-buffered when c->double_buffer, else plain. */
uint64_t et_sys_headline_cycles(const et_sys_config *c, const et_sys_stats *s);
/** MACs / (R*C*cycles), in [0,1] (0 when no cycles). */
double et_sys_utilization(const et_sys_config *c, const et_sys_stats *s, uint64_t cycles);
/** Mean over folds of mapped PEs / (R*C), SCALE-Sim's "mapping efficiency". */
double et_sys_mapping_efficiency(const et_sys_config *c, const et_sys_stats *s);
/** Energy in pJ: out[0] MACs, out[1] SRAM, out[2] DRAM, out[3] total. */
void et_sys_energy_pj(const et_sys_config *c, const et_sys_stats *s, double out[4]);

/* --- computing a GEMM on the array (sys_array.c) */

/** How an operand is stored and typed. */
typedef enum et_sys_optype {
    ET_SYS_OP_F32 = 0,   /**< float (fp32 mode) */
    ET_SYS_OP_S8 = 1,    /**< int8 (int8 mode) */
    ET_SYS_OP_F32_Q8 = 2 /**< float quantized to int8 as it is loaded (int8 mode):
                              q = et_sys_q8(x, scale) */
} et_sys_optype;

/** An operand: logical element (i,j) is data[i*ld + j], or data[j*ld + i] when trans. */
typedef struct et_sys_operand {
    const void *data;   /**< NULL: timing only, nothing computed */
    int ld;
    int trans;
    et_sys_optype type;
    const float *scale; /**< F32_Q8: one step, or one per row / column (scale_axis) */
    int scale_axis;     /**< -1 one scale, 0 one per logical row i, 1 per logical column j */
} et_sys_operand;

/** Where results go. */
typedef struct et_sys_result {
    float *f32;          /**< (M,N) floats (fp32 mode, or int8 dequantized), or NULL */
    int32_t *s32;        /**< (M,N) raw int32 accumulators (int8 mode), or NULL */
    int ld;
    const float *bias;   /**< (N) added by the output stage, or NULL (f32 only) */
    int accumulate;      /**< f32: C += result (then no bias) */
    float scale;         /**< int8 -> f32: out = acc * scale * col_scale[n] (+ bias) */
    const float *col_scale; /**< (N) or NULL (1) */
} et_sys_result;

/** Scratch bytes et_sys_gemm needs with @p nworkers workers (tiles bounded by the
 *  array's size and a fixed streaming chunk; independent of M, N, K). */
size_t et_sys_gemm_scratch_bytes(const et_sys_config *c, int nworkers);

/**
 * Runs C = A.B on the simulated array: computes the results (unless an operand's data
 * is NULL) and adds the GEMM's counters to @p st (may be NULL).
 * Threads split the work by output tiles; results are the same bits for any count.
 * @return ET_OK; ET_ERR_INVALID for bad sizes, strides or a type not matching the
 *         config's dtype; ET_ERR_NOMEM when scratch is short
 */
et_status et_sys_gemm(const et_sys_config *c, int M, int N, int K, const et_sys_operand *A,
                      const et_sys_operand *B, const et_sys_result *C, const et_threads *th,
                      void *scratch, size_t scratch_bytes, et_sys_stats *st);

/* --- the register-level model of one fold (sys_cycle.c) */

/** Scratch bytes et_sys_cycle_fold needs for an R x C array. */
size_t et_sys_cycle_scratch_bytes(int rows, int cols);

/**
 * Runs one fold cycle by cycle: every PE's registers are updated each cycle from its
 * neighbours' values of the previous cycle. Used PEs (r < ru, c < cu) multiply;
 * the others only pass data on. Operands, for dataflow WS or IS (the same mechanics):
 *   x (ru x cu) the stationary tile, loaded from the top over R cycles;
 *   y (T x ru)  the stream: element (t, r) enters array row r at cycle t + r;
 *   out (T x cu) column sums leaving the bottom row.
 * For OS: x (ru x T) enters from the left (row r, element k at cycle k + r), y (T x cu)
 * from the top, out (ru x cu) the accumulators.
 * Values are float (fp32) or int8 with int32 outputs, by c->dtype.
 * @param[out] cycles from the first load or operand to the cycle the last wavefront
 *             leaves PE (R-1, C-1), inclusive
 * @param[out] macs   MACs performed (ru * cu * T)
 */
et_status et_sys_cycle_fold(const et_sys_config *c, int ru, int cu, int T, const void *x,
                            const void *y, void *out, void *scratch, size_t scratch_bytes,
                            uint64_t *cycles, uint64_t *macs);

/* --- int8 quantization stand-in (sys_array.c)
 * Symmetric, zero point 0: x ~ q * scale with q in [-127, 127]. A stand-in for the int8
 * path of compress/ (issue 4) until that lands, so the simulator can run a quantized
 * model: per-tensor scales for activations, per-row (output channel) scales for weights,
 * both max|x| / 127, computed on the fly. */

/** max|x| / 127 over n values (1 when all are 0 or none is finite). */
float et_sys_q8_scale(const float *x, size_t n);
/** One scale per row of a (rows, cols) matrix with row stride ld. */
void et_sys_q8_scale_rows(const float *x, int rows, int cols, int ld, float *scales);
/** clamp(round-half-away(x * (1/scale)), -127, 127), the reciprocal and the product
 *  in float; NaN gives 0. */
int8_t et_sys_q8(float x, float scale);
/** The same with the reciprocal given: clamp(round-half-away(x * inv_scale)). */
int8_t et_sys_q8_inv(float x, float inv_scale);
/** q[i] = et_sys_q8(x[i], scale) over n. */
void et_sys_q8_quantize(const float *x, size_t n, float scale, int8_t *q);

#endif /* ET_SYSTOLIC_H */
