/* et_prune.h - magnitude pruning: unstructured (a target share of the smallest |w|)
 * and N:M semi-structured (N kept in every group of M consecutive weights along a row,
 * 2:4 being the one sparse tensor cores run), keep-masks that hold during fine-tuning,
 * and compact storage (N:M as kept values + small indices; unstructured as a bitmap +
 * kept values), the layouts et_spmm.h runs from.
 *
 * Masks are bitmaps, one bit per weight, bit i of byte i/8 set when weight i is kept.
 * Deliberately avoids: any allocation (selection is a radix select over the float bits
 * with a 256-entry histogram on the stack), sorting, and pruning embeddings, biases or
 * LayerNorm parameters (the caller picks the matrices).
 */
#ifndef ET_PRUNE_H
#define ET_PRUNE_H

#include "et_conf.h"
#include "et_status.h"
#include "et_gpt.h"

/** Bytes of a keep-bitmap for @p n weights. */
static inline size_t et_prune_mask_bytes(size_t n) { return (n + 7) / 8; }

/** Whether weight @p i is kept. */
static inline int et_prune_kept(const uint8_t *mask, size_t i) { return (mask[i >> 3] >> (i & 7)) & 1; }

/**
 * Unstructured magnitude pruning of one tensor: exactly floor(sparsity * n) weights of
 * smallest |w| are dropped (ties at the threshold broken by position).
 * @param[in]  w        (n) weights (not changed)
 * @param[in]  sparsity share to drop, in [0, 1]
 * @param[out] mask     et_prune_mask_bytes(n) bytes
 * @param[out] kept     weights kept (may be NULL)
 * @return ET_OK, ET_ERR_INVALID (NULL, or sparsity outside [0, 1] or NaN), ET_ERR_RANGE
 *         (a non-finite weight)
 */
et_status et_prune_magnitude(const float *w, size_t n, float sparsity, uint8_t *mask, size_t *kept);

/**
 * N:M pruning of a (rows, cols) row-major matrix: in every group of M consecutive
 * weights of a row the N of largest |w| are kept (ties to the lower index).
 * @return ET_OK, ET_ERR_INVALID (N < 1, N >= M, M > 16, cols not a multiple of M)
 */
et_status et_prune_nm(const float *w, int rows, int cols, int N, int M, uint8_t *mask);

/** Zeroes every weight the mask drops: w[i] = 0 where bit i is clear. */
void et_prune_apply(float *w, const uint8_t *mask, size_t n);

/** Kept weights of a mask. */
size_t et_prune_count(const uint8_t *mask, size_t n);

// --- compact storage

/** Bits of one N:M index (2 for M <= 4, else 4). */
static inline int et_prune_nm_index_bits(int M) { return M <= 4 ? 2 : 4; }

/** Bytes of the packed N:M form of a (rows, cols) matrix: values (floats) and indices. */
size_t et_prune_nm_value_count(int rows, int cols, int N, int M);
size_t et_prune_nm_index_bytes(int rows, int cols, int N, int M);

/**
 * Packs an N:M-pruned matrix: for every group, its kept values in order and their
 * positions in the group. A group with fewer than N kept (a kept weight that was
 * dropped later, say) is padded with zeros, so unpacking always gives back w * mask.
 * @param[out] values et_prune_nm_value_count() floats
 * @param[out] idx    et_prune_nm_index_bytes() bytes
 * @return ET_OK, ET_ERR_INVALID (shape or N:M as for et_prune_nm; a group with more
 *         than N kept)
 */
et_status et_prune_nm_pack(const float *w, const uint8_t *mask, int rows, int cols, int N, int M,
                           float *values, uint8_t *idx);

/** Inverse of et_prune_nm_pack: the dense matrix, zeros where nothing was kept. */
et_status et_prune_nm_unpack(const float *values, const uint8_t *idx, int rows, int cols, int N,
                             int M, float *w);

/**
 * Packs an unstructured-pruned tensor as its mask (the bitmap) plus the kept values in
 * order. @p values holds et_prune_count(mask, n) floats.
 */
void et_prune_bitmap_pack(const float *w, const uint8_t *mask, size_t n, float *values);

/** Inverse: w = the kept values at the mask's positions, zeros elsewhere. */
void et_prune_bitmap_unpack(const float *values, const uint8_t *mask, size_t n, float *w);

// --- the GPT's prunable matrices

/** The four weight matrices of every block (qkvw, attprojw, fcw, fcprojw): their
 *  indices in et_gpt_tensors() order. Embeddings, biases and LayerNorms are not pruned
 *  (wte is also the logits' matrix). */
#define ET_PRUNE_NMATS 4
extern const int et_prune_gpt_tensors[ET_PRUNE_NMATS];

#endif /* ET_PRUNE_H */
