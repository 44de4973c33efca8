/* et_lora_file.h - the adapter file that `edgetrain finetune` writes: a small file of
 * LoRA adapters for one image (magic "ETLORA\0\0", version, rank, adapted layers, alpha,
 * the model shape they fit, the floats, a CRC-32 over everything before it). Saved
 * atomically; loads check every field against the image they are applied to.
 */
#ifndef ET_LORA_FILE_H
#define ET_LORA_FILE_H

#include "et_host.h"
#include "et_lora.h"

#define ET_LORA_FILE_MAGIC "ETLORA\0\0"
#define ET_LORA_FILE_VERSION 1u

/** Saves the adapters of @p s to @p path (atomic). @return ET_OK or ET_ERR_IO */
et_status et_lora_save(const char *path, const et_lora *s, et_error *err);

/**
 * Loads adapters saved by et_lora_save() into @p s, whose config (rank, layers, alpha)
 * and model shape must match the file's.
 * @return ET_OK, ET_ERR_IO, ET_ERR_FORMAT, ET_ERR_UNSUPPORTED, ET_ERR_CRC, ET_ERR_TRUNCATED,
 *         ET_ERR_INVALID (does not fit this session)
 */
et_status et_lora_load(const char *path, et_lora *s, et_error *err);

#endif /* ET_LORA_FILE_H */
