/* et_lora_file.h - the adapter file that `edgetrain finetune` writes: a small file of
 * LoRA adapters (and/or trained LayerNorms, and/or a task head) for one image (magic
 * "ETLORA\0\0", version, rank, adapted layers, alpha, the model shape they fit, the
 * payload CRC of the image they were trained on, the head's classes and pooling, the
 * floats, a CRC-32 over everything before it). Saved atomically; loads check every field
 * against the session and image they are applied to, so adapters never land on another
 * model or on another base (for instance twice: on the image they were merged into).
 */
#ifndef ET_LORA_FILE_H
#define ET_LORA_FILE_H

#include "et_host.h"
#include "et_lora.h"

#define ET_LORA_FILE_MAGIC "ETLORA\0\0"
#define ET_LORA_FILE_VERSION 3u

/** What an adapter file says about itself (its header). */
typedef struct et_lora_file_info {
    uint32_t version;      /**< 1 (no image binding), 2, or 3 (a task head; rank 0 allowed) */
    int rank, layers;      /**< adapter rank (0: none), blocks trained (the last ones; 0: only a head) */
    int model_layers, channels, heads, vocab; /**< the model they fit (heads, vocab: 0 in version 1) */
    float scale;           /**< alpha / r */
    uint64_t nparams;      /**< floats */
    uint32_t image_crc;    /**< payload CRC of the base image (version 2; 0 in version 1) */
    uint32_t targets;      /**< ET_LORA_FILE_T_* bits: what the floats adapt */
    int head_classes;      /**< K of the task head (0: none; version 3) */
    int head_pool;         /**< et_lora_pool of the head */
} et_lora_file_info;

/** Target bits: rank-r pairs on qkv and on fc of every adapted block (both, or neither
 *  when the rank is 0); LN: the trained LayerNorm gains and biases follow the adapters
 *  (train_ln); HEAD: a K-class task head's W (K,C) and b (K) come last. */
#define ET_LORA_FILE_T_QKV 1u
#define ET_LORA_FILE_T_FC 2u
#define ET_LORA_FILE_T_LN 4u
#define ET_LORA_FILE_T_HEAD 8u

/** Saves the adapters of @p s to @p path (atomic). @return ET_OK or ET_ERR_IO */
et_status et_lora_save(const char *path, const et_lora *s, et_error *err);

/** Reads and checks the header of an adapter file (not the floats).
 *  @return ET_OK, ET_ERR_IO, ET_ERR_FORMAT, ET_ERR_UNSUPPORTED, ET_ERR_TRUNCATED */
et_status et_lora_file_info_read(const char *path, et_lora_file_info *info, et_error *err);

/**
 * Loads adapters saved by et_lora_save() into @p s, whose config (rank, layers, alpha,
 * LayerNorms, head classes and pooling) and model shape must match the file's, and whose image must be the one the adapters
 * were trained on (version 2 files).
 * @return ET_OK, ET_ERR_IO, ET_ERR_FORMAT, ET_ERR_UNSUPPORTED, ET_ERR_CRC, ET_ERR_TRUNCATED,
 *         ET_ERR_INVALID (does not fit this session or this image)
 */
et_status et_lora_load(const char *path, et_lora *s, et_error *err);

/**
 * Opens a session over @p img for applying adapters (eval, sample, merge): sized from the
 * header of @p path (rank, adapted layers, alpha, LayerNorms, head), in a heap arena of exactly the plan,
 * with the adapters loaded. With @p path NULL, a rank-1 session on the last block whose B
 * is zero: exactly the image's own model.
 * @param[in]  T      longest sequence the session will run (1..context)
 * @param[out] arena  the arena's memory: free() it after use (also on failure)
 * @param[out] err    message naming the file and what does not match
 * @return ET_OK or the failing status
 */
et_status et_lora_open(const char *path, const et_image *img, const char *img_name, int T, et_lora *s,
                       void **arena, et_error *err);

#endif /* ET_LORA_FILE_H */
