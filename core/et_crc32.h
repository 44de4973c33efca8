/* et_crc32.h - CRC-32 (IEEE 802.3, as in zlib, PNG and gzip), incremental.
 *
 * Reflected polynomial 0xEDB88320, initial value and final xor 0xFFFFFFFF, so
 * et_crc32("123456789", 9) == 0xCBF43926. The incremental form takes and returns the
 * finished value (zlib's convention): start from 0 and feed chunks in order, and the
 * result equals the one-shot CRC of their concatenation.
 *
 * Freestanding: no state, no allocation, no libc; the lookup table is const data.
 */
#ifndef ET_CRC32_H
#define ET_CRC32_H

#include "et_conf.h"

/**
 * Extends a CRC-32 over more bytes.
 * @param[in] crc  the CRC of the bytes so far (0 for none)
 * @param[in] data the next bytes (may be NULL when @p n is 0)
 * @param[in] n    how many
 * @return the CRC of the bytes so far followed by @p data
 */
uint32_t et_crc32_update(uint32_t crc, const void *data, size_t n);

/**
 * CRC-32 of one buffer: et_crc32_update(0, data, n).
 * @param[in] data bytes (may be NULL when @p n is 0)
 * @param[in] n    how many
 * @return the CRC
 */
uint32_t et_crc32(const void *data, size_t n);

#endif /* ET_CRC32_H */
