/* et_prune_struct.h - structured pruning: whole attention heads and MLP neurons removed
 * from every block, and the model actually shrunk (fewer heads of the same width, a
 * narrower MLP), so it needs fewer parameters, bytes and FLOPs on every path.
 *
 * The same number of heads and of neurons is kept in every layer (uniform shapes, so the
 * result is an ordinary et_gpt_config with head_dim and ffn set); which ones is chosen
 * per layer by an importance score, largest kept:
 *  - weights: the squared L2 norm of the unit's weights (a head's q, k and v rows and its
 *    attproj input columns; a neuron's fc row and fcproj input column);
 *  - activations (calibration): the mean energy of the unit's contribution to its block's
 *    output over calibration tokens, mean ||W_attproj[:, head] y_head||^2 for a head and
 *    mean g_j^2 ||W_fcproj[:, j]||^2 for a neuron j (g its GELU output). Removing one unit
 *    changes the sublayer's output by exactly that contribution, so this is the squared
 *    error each removal alone adds.
 * Deliberately avoids: allocation (scores, indices and parameter blocks are the
 * caller's), pruning the residual width C (LayerNorms, embeddings and the tied logits
 * keep it) and per-layer shapes (one config for the whole model).
 */
#ifndef ET_PRUNE_STRUCT_H
#define ET_PRUNE_STRUCT_H

#include "et_conf.h"
#include "et_status.h"
#include "et_gpt.h"

/**
 * The config after keeping @p heads heads (each keeping its width) and @p ffn MLP
 * neurons per layer.
 * @param[in]  cfg   checked config
 * @param[in]  heads heads kept per layer, 1..cfg->heads
 * @param[in]  ffn   neurons kept per layer, 1..et_gpt_ffn_width(cfg)
 * @param[out] out   checked config (head_dim / ffn set, or 0 where still GPT-2's)
 * @return ET_OK, ET_ERR_INVALID (NULL or a bad @p cfg), ET_ERR_RANGE (a count out of range)
 */
et_status et_prune_struct_config(const et_gpt_config *cfg, int heads, int ffn, et_gpt_config *out);

/**
 * Weight-magnitude scores.
 * @param[in]  params        (et_gpt_tensors(cfg)) parameters
 * @param[out] head_scores   (L, NH) or NULL
 * @param[out] neuron_scores (L, F) or NULL
 * @return ET_OK, ET_ERR_INVALID
 */
et_status et_prune_struct_weight_scores(const et_gpt_config *cfg, const float *params,
                                        float *head_scores, float *neuron_scores);

/**
 * Adds the contribution energies of the last forward of @p m (a model that keeps every
 * layer's activations: created in ET_GPT_TRAIN mode, host memory) into @p head_acc and
 * @p neuron_acc, summed over its B*T tokens; divide by the tokens seen for the mean.
 * @param[in,out] head_acc   (L, NH), or NULL
 * @param[in,out] neuron_acc (L, F), or NULL
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_STATE (no forward, or one layer's activations)
 */
et_status et_prune_struct_observe(const et_gpt *m, double *head_acc, double *neuron_acc);

/**
 * Chooses, in each of @p layers rows of @p n scores, the @p keep units of largest score
 * (ties: the lower index), and lists them in ascending order.
 * @param[in]  scores (layers, n)
 * @param[out] idx    (layers, keep)
 * @return ET_OK, ET_ERR_INVALID (NULL, sizes), ET_ERR_RANGE (keep outside 1..n, or a
 *         score that is NaN or negative)
 */
et_status et_prune_struct_select(const float *scores, int layers, int n, int keep, int *idx);

/**
 * Builds the shrunk model's parameters: the kept heads' q, k, v rows (and biases) and
 * attproj input columns, the kept neurons' fc rows (and biases) and fcproj input
 * columns, in the order given; every other tensor copied. The result computes exactly
 * what the input model computes with the dropped units' attproj / fcproj input columns
 * set to zero (tested).
 * @param[in]  cfg        config of @p params
 * @param[in]  params     (et_gpt_tensors(cfg))
 * @param[in]  head_idx   (L, out_cfg->heads) ascending head indices per layer, or NULL
 *                        when out_cfg keeps every head
 * @param[in]  neuron_idx (L, et_gpt_ffn_width(out_cfg)) ascending, or NULL when it keeps
 *                        every neuron
 * @param[in]  out_cfg    et_prune_struct_config() of @p cfg
 * @param[out] out        (et_gpt_tensors(out_cfg)); must not overlap @p params
 * @return ET_OK, ET_ERR_INVALID (shapes that do not match, an index out of range or not
 *         ascending, NULL)
 */
et_status et_prune_struct_shrink(const et_gpt_config *cfg, const float *params,
                                 const int *head_idx, const int *neuron_idx,
                                 const et_gpt_config *out_cfg, float *out);

#endif /* ET_PRUNE_STRUCT_H */
