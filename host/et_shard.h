/* et_shard.h - llm.c token shards: the files edgetrain trains from, readable by llm.c.
 *
 * Layout (llm.c's dev/data/data_common.py, version 1): a header of 256 little-endian
 * int32 - header[0] = 20240520 (magic), header[1] = 1 (version: uint16 tokens),
 * header[2] = token count - then that many little-endian uint16 tokens, and nothing else.
 */
#ifndef ET_SHARD_H
#define ET_SHARD_H

#include <stddef.h>
#include <stdint.h>
#include "et_host.h"

#define ET_SHARD_MAGIC 20240520
#define ET_SHARD_VERSION 1
#define ET_SHARD_HEADER_INTS 256
/** Bytes before the first token. */
#define ET_SHARD_HEADER_BYTES (ET_SHARD_HEADER_INTS * 4)
/** Most tokens a shard can hold (header[2] is an int32). */
#define ET_SHARD_MAX_TOKENS 2147483647u

/**
 * Writes @p n tokens to @p path: first to "path.tmp", then renamed over path, so a
 * reader never sees a half-written shard.
 * @param[in]  path  file to create or replace
 * @param[in]  toks  tokens; NULL only with n == 0
 * @param[in]  n     how many (at most ET_SHARD_MAX_TOKENS)
 * @param[out] err   message naming the file on failure (may be NULL)
 * @return ET_OK; ET_ERR_RANGE if n is too large; ET_ERR_IO; ET_ERR_INVALID; ET_ERR_NOMEM
 */
et_status et_shard_write(const char *path, const uint16_t *toks, size_t n, et_error *err);

/**
 * Reads the header of a shard and checks it against the file's size.
 * @param[in]  path  shard file
 * @param[out] n     token count the header gives
 * @param[out] err   message naming the file on failure (may be NULL)
 * @return ET_OK; ET_ERR_IO (missing or unreadable); ET_ERR_FORMAT (magic, version,
 *         negative count, or bytes after the last token); ET_ERR_TRUNCATED (shorter
 *         than the header or than the count says); ET_ERR_INVALID
 */
et_status et_shard_info(const char *path, size_t *n, et_error *err);

/**
 * Reads a whole shard into a new malloc'd array.
 * @param[in]  path  shard file
 * @param[out] toks  the tokens (free() them; NULL-safe to free when n is 0)
 * @param[out] n     how many
 * @param[out] err   message naming the file on failure (may be NULL)
 * @return as et_shard_info(), plus ET_ERR_NOMEM
 */
et_status et_shard_read(const char *path, uint16_t **toks, size_t *n, et_error *err);

#endif /* ET_SHARD_H */
