/* et_image.h - the device image: one flat, 64-byte aligned, versioned, CRC-checked blob
 * holding everything a board needs to run and fine-tune a quantized GPT in place:
 * header, config, tokenizer blob, tensor table, and the et_qgpt blob (int8 weights with
 * their per-channel scales, fp32 LayerNorm parameters and biases).
 *
 * The weights are not re-laid out: the image's payload IS an et_qgpt blob
 * (et_qgpt_tensors() layout, et_qgpt_quantize() output), so there is one quantizer and one
 * layout. et_image_open() validates an image completely before it hands out a single
 * pointer, and never copies: every pointer it returns points into the caller's bytes,
 * which may be read-only (flash). Byte layout: docs/EDGE.md.
 *
 * Deliberately avoids: any allocation, any libc beyond memcpy/memset, and trusting any
 * field of the header before it has been checked (overflow-safe bounds everywhere), so
 * a truncated or corrupted image is refused with a status, never read out of bounds.
 */
#ifndef ET_IMAGE_H
#define ET_IMAGE_H

#include "et_conf.h"
#include "et_status.h"
#include "et_gpt.h"
#include "et_qgpt.h"

/** First 8 bytes of an image. */
#define ET_IMAGE_MAGIC "ETIMAGE"
/** Format version this build writes and reads. */
#define ET_IMAGE_VERSION 1u
/** Bytes of the fixed header. */
#define ET_IMAGE_HEADER_BYTES 128u
/** Bytes of one tensor-table entry. */
#define ET_IMAGE_ENTRY_BYTES 48u

/** Why et_image_open() refused an image: the first check that failed. */
typedef enum et_image_fault {
    ET_IMAGE_OK = 0,
    ET_IMAGE_F_ARGS,      /**< NULL pointer or misaligned base */
    ET_IMAGE_F_SHORT,     /**< fewer bytes than the header or than image_bytes */
    ET_IMAGE_F_MAGIC,     /**< not an image */
    ET_IMAGE_F_VERSION,   /**< a version this build does not read */
    ET_IMAGE_F_HEADER,    /**< header size, flags or reserved bytes wrong */
    ET_IMAGE_F_HEADER_CRC,/**< header checksum mismatch */
    ET_IMAGE_F_SIZE,      /**< image_bytes not a multiple of 64, or n > image_bytes */
    ET_IMAGE_F_CRC,       /**< payload checksum mismatch */
    ET_IMAGE_F_CONFIG,    /**< config out of range or inconsistent */
    ET_IMAGE_F_SECTION,   /**< a section offset/length misaligned, overlapping or out of bounds */
    ET_IMAGE_F_TABLE      /**< tensor table disagrees with et_qgpt_tensors() */
} et_image_fault;

/** An opened image: const views into the caller's bytes. */
typedef struct et_image {
    et_gpt_config cfg;        /**< checked config (vocab_padded filled) */
    et_qmode mode;            /**< W8A32 (what export writes) or W8A8 */
    const uint8_t *base;      /**< the image's first byte */
    size_t bytes;             /**< image_bytes from the header */
    const void *tokenizer;    /**< tokenizer blob (host et_tok_serialize bytes), or NULL */
    size_t tokenizer_bytes;
    const void *blob;         /**< et_qgpt blob, 64-byte aligned */
    size_t blob_bytes;
    et_qgpt_weights w;        /**< typed pointers into blob */
    et_image_fault fault;     /**< ET_IMAGE_OK, or why open failed */
    uint32_t payload_crc;     /**< the header's payload CRC-32: identifies the weights (adapter files
                                   record it, so adapters are never applied to another base) */
} et_image;

/**
 * Bytes an image of this model takes.
 * @param[in]  cfg             model config
 * @param[in]  mode            quantization mode
 * @param[in]  tokenizer_bytes size of the tokenizer blob (0: none)
 * @param[out] bytes           total image bytes (a multiple of 64)
 * @return ET_OK or ET_ERR_INVALID
 */
et_status et_image_size(const et_gpt_config *cfg, et_qmode mode, size_t tokenizer_bytes,
                        size_t *bytes);

/**
 * Lays out an image: header, tokenizer, table, blob, padding, checksums.
 * @param[out] out        64-byte aligned buffer of at least et_image_size() bytes
 * @param[in]  cap        its size
 * @param[in]  cfg,mode   model
 * @param[in]  blob       et_qgpt blob of et_qgpt_tensors() bytes (from et_qgpt_quantize)
 * @param[in]  blob_bytes its size
 * @param[in]  tok        tokenizer blob or NULL
 * @param[in]  tok_bytes  its size (0 with NULL)
 * @param[out] written    image bytes (may be NULL)
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_NOMEM (cap too small)
 */
et_status et_image_build(void *out, size_t cap, const et_gpt_config *cfg, et_qmode mode,
                         const void *blob, size_t blob_bytes, const void *tok, size_t tok_bytes,
                         size_t *written);

/**
 * Opens an image in place and validates all of it (magic, version, header CRC, size,
 * payload CRC, config, every section and tensor offset and length) before use.
 * @param[out] img  filled on success; on failure img->fault says which check failed
 * @param[in]  data the image, 64-byte aligned (it may sit in read-only memory)
 * @param[in]  n    bytes available at @p data (may exceed the image)
 * @return ET_OK; ET_ERR_INVALID (args), ET_ERR_TRUNCATED, ET_ERR_FORMAT, ET_ERR_UNSUPPORTED
 *         (version), ET_ERR_CRC, ET_ERR_RANGE (config)
 */
et_status et_image_open(et_image *img, const void *data, size_t n);

/** A short static description of a fault ("payload checksum mismatch", ...). */
const char *et_image_fault_str(et_image_fault f);

#endif /* ET_IMAGE_H */
