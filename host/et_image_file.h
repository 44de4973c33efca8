/* et_image_file.h - the host side of device images (compress/et_image.h): export a
 * trained fp32 model as an int8 (W8A32) image, either as the binary image or as a C
 * source file holding it as a 64-byte aligned const array, and read an image file back
 * into aligned memory with a message that names the file and the failed check.
 * Saves are atomic (temporary file, fsync, rename) through et_qmodel_write_file().
 */
#ifndef ET_IMAGE_FILE_H
#define ET_IMAGE_FILE_H

#include <stddef.h>
#include "et_host.h"
#include "et_gpt.h"
#include "et_image.h"
#include "et_lora.h"

/** What et_image_export() writes. */
typedef enum et_image_format {
    ET_IMAGE_FMT_BIN = 0, /**< the image bytes (.etimg) */
    ET_IMAGE_FMT_C = 1    /**< a C file: const unsigned char <name>[] (aligned 64) + <name>_len */
} et_image_format;

/**
 * Quantizes fp32 parameters (W8A32, per-channel int8) and writes an image.
 * @param[in]  path      output file
 * @param[in]  fmt       binary or C source
 * @param[in]  cfg       model config
 * @param[in]  params    fp32 parameters in et_gpt_tensors() order
 * @param[in]  tok       tokenizer blob (et_tok_serialize) or NULL
 * @param[in]  tok_bytes its size
 * @param[out] image_bytes size of the image (may be NULL)
 * @param[out] err       message on failure
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_RANGE (non-finite weight), ET_ERR_NOMEM, ET_ERR_IO
 */
et_status et_image_export(const char *path, et_image_format fmt, const et_gpt_config *cfg,
                          const float *params, const void *tok, size_t tok_bytes,
                          size_t *image_bytes, et_error *err);

/**
 * Writes a new image: @p base with the adapters of @p lora folded into its weights
 * (et_lora_merge: W + (alpha/r) B A, re-quantized per channel), same tokenizer.
 * @param[in,out] lora session over @p base holding the adapters (its row scratch is used)
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_RANGE (non-finite merged weight), ET_ERR_NOMEM, ET_ERR_IO
 */
et_status et_image_export_merged(const char *path, et_image_format fmt, et_lora *lora, const et_image *base,
                                 size_t *image_bytes, et_error *err);

/**
 * Reads an image file into 64-byte aligned memory and opens it.
 * @param[in]  path file
 * @param[out] mem  the bytes (free() them after use; the image points into them)
 * @param[out] img  the opened image
 * @param[out] err  on failure: "<path>: <what failed> (...)"
 * @return ET_OK or the status of the failed read or check
 */
et_status et_image_read(const char *path, void **mem, et_image *img, et_error *err);

#endif /* ET_IMAGE_FILE_H */
