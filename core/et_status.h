/* et_status.h - status codes returned by every public edgetrain function.
 *
 * 0 is success, every error is negative. The core never prints, exits or aborts; the
 * host turns a status plus its own context (file, field, expected value) into a message.
 */
#ifndef ET_STATUS_H
#define ET_STATUS_H

typedef enum et_status {
    ET_OK = 0,
    ET_ERR_NOMEM = -1,       /**< arena (or device memory) exhausted */
    ET_ERR_INVALID = -2,     /**< bad argument or configuration */
    ET_ERR_RANGE = -3,       /**< a value out of its allowed range (token id >= vocab, T > context) */
    ET_ERR_FORMAT = -4,      /**< bad magic, version or layout in a file or image */
    ET_ERR_TRUNCATED = -5,   /**< file or image shorter than its header says */
    ET_ERR_CRC = -6,         /**< checksum mismatch */
    ET_ERR_IO = -7,          /**< the host could not open, read or write a file */
    ET_ERR_UNSUPPORTED = -8, /**< a feature this build or backend does not have */
    ET_ERR_DEVICE = -9,      /**< a device is missing or its runtime failed */
    ET_ERR_STATE = -10       /**< call made in the wrong state (e.g. backward before forward) */
} et_status;

/** A short, static, human-readable name for a status code ("arena exhausted", ...). */
const char *et_status_str(et_status s);

#endif /* ET_STATUS_H */
