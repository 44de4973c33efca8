/* et_tokenizer.h - char-level and byte-level BPE tokenizers behind one opaque handle.
 *
 * Char-level: the vocabulary is the sorted set of Unicode code points of the training
 * text (Tiny Shakespeare gives nanoGPT's 65 tokens in nanoGPT's order). Bytes that are
 * not valid UTF-8 become the code points U+DC80..U+DCFF (Python's 'surrogateescape':
 * byte b -> U+DC00 + b), so decode(encode(x)) == x for every byte string.
 *
 * BPE: 256 byte tokens plus merges learned on the training text after a GPT-2 style
 * pre-split (contractions, letters, digits, other symbols, whitespace; every byte >= 0x80
 * counts as a letter), so no merge crosses a word, space or line boundary. Token
 * 256 + r is merge r. Encoding applies merges by rank; decoding concatenates bytes, so
 * every byte string round-trips.
 *
 * Ids fit uint16 (vocabulary <= 65535), which is what llm.c token shards hold.
 * A tokenizer is immutable once built: share it between threads freely.
 */
#ifndef ET_TOKENIZER_H
#define ET_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "et_host.h"

typedef struct et_tokenizer et_tokenizer;

typedef enum et_tok_type {
    ET_TOK_CHAR = 1, /**< one token per code point */
    ET_TOK_BPE = 2   /**< byte-level byte-pair encoding */
} et_tok_type;

/** Largest vocabulary (ids must fit uint16). */
#define ET_TOK_MAX_VOCAB 65535u

/** et_tok_encode() flag: skip code points the char vocabulary lacks (and count them)
 *  instead of failing with ET_ERR_RANGE. BPE never has unknown input. */
#define ET_TOK_SKIP_UNKNOWN 1u

/**
 * Builds a char-level tokenizer over the distinct code points of @p text.
 * @param[in]  text  training text (any bytes); NULL only with n == 0
 * @param[in]  n     its length
 * @param[out] tok   the tokenizer, freed with et_tok_free()
 * @return ET_OK; ET_ERR_INVALID for an empty text or NULL tok; ET_ERR_RANGE if the text
 *         has more than ET_TOK_MAX_VOCAB distinct code points; ET_ERR_NOMEM
 */
et_status et_tok_train_char(const char *text, size_t n, et_tokenizer **tok);

/**
 * Learns a byte-level BPE vocabulary of @p vocab tokens (256 bytes + vocab - 256 merges).
 * Ties between equally frequent pairs go to the smaller (left, right) id pair, so the
 * result depends on the text alone. Training stops early, with a smaller vocabulary,
 * when no pair is left to merge (see et_tok_vocab_size()).
 * @param[in]  text   training text (any bytes); NULL only with n == 0
 * @param[in]  n      its length
 * @param[in]  vocab  256 .. ET_TOK_MAX_VOCAB
 * @param[out] tok    the tokenizer, freed with et_tok_free()
 * @return ET_OK; ET_ERR_RANGE for a vocab out of range; ET_ERR_INVALID; ET_ERR_NOMEM
 */
et_status et_tok_train_bpe(const char *text, size_t n, uint32_t vocab, et_tokenizer **tok);

/** Frees a tokenizer (NULL is fine). */
void et_tok_free(et_tokenizer *tok);

/** Number of token ids (valid ids are 0 .. size - 1). */
uint32_t et_tok_vocab_size(const et_tokenizer *tok);

/** ET_TOK_CHAR or ET_TOK_BPE. */
et_tok_type et_tok_type_of(const et_tokenizer *tok);

/** Code point of char token @p id, or -1 if @p tok is not char-level or id is out of
 *  range (U+DC80..U+DCFF stand for the raw bytes 0x80..0xFF). */
int32_t et_tok_char_codepoint(const et_tokenizer *tok, uint32_t id);

/**
 * Encodes text into token ids. Never produces more than @p n ids.
 * @param[in]  tok      tokenizer
 * @param[in]  text     bytes to encode; NULL only with n == 0
 * @param[in]  n        their length
 * @param[out] ids      output ids, or NULL to only count them
 * @param[in]  cap      room in @p ids (ignored when ids is NULL)
 * @param[out] count    ids produced (or needed); may be NULL when ids is non-NULL
 * @param[in]  flags    0 or ET_TOK_SKIP_UNKNOWN
 * @param[out] unknown  code points skipped (may be NULL)
 * @return ET_OK; ET_ERR_RANGE at the first unknown code point without
 *         ET_TOK_SKIP_UNKNOWN (count then holds the ids before it); ET_ERR_NOMEM when
 *         cap is too small; ET_ERR_INVALID; memory failure is ET_ERR_NOMEM too
 */
et_status et_tok_encode(const et_tokenizer *tok, const char *text, size_t n, uint16_t *ids,
                        size_t cap, size_t *count, unsigned flags, size_t *unknown);

/** et_tok_encode() writing int32_t ids (what the model's input batches hold). */
et_status et_tok_encode_i32(const et_tokenizer *tok, const char *text, size_t n, int32_t *ids,
                            size_t cap, size_t *count, unsigned flags, size_t *unknown);

/**
 * Decodes ids into bytes (not NUL-terminated).
 * @param[in]  tok    tokenizer
 * @param[in]  ids    token ids; NULL only with n == 0
 * @param[in]  n      how many
 * @param[out] out    output bytes, or NULL to only measure
 * @param[in]  cap    room in @p out (ignored when out is NULL)
 * @param[out] out_n  bytes produced (or needed)
 * @return ET_OK; ET_ERR_RANGE for an id >= vocab size; ET_ERR_NOMEM if cap is too small;
 *         ET_ERR_INVALID
 */
et_status et_tok_decode(const et_tokenizer *tok, const uint16_t *ids, size_t n, char *out,
                        size_t cap, size_t *out_n);

/** et_tok_decode() reading int32_t ids (negative ids are ET_ERR_RANGE). */
et_status et_tok_decode_i32(const et_tokenizer *tok, const int32_t *ids, size_t n, char *out,
                            size_t cap, size_t *out_n);

/**
 * Serializes a tokenizer into a new malloc'd blob (the same bytes et_tok_save() writes):
 * "ETTK", u32 version, u32 type, u32 vocab size, u32 payload bytes, payload (char: one
 * u32 code point per id; BPE: one (u16 left, u16 right) pair per merge), u32 CRC-32 of
 * everything before it. All integers little-endian.
 * @param[in]  tok   tokenizer
 * @param[out] blob  the bytes; free() them
 * @param[out] n     their length
 * @return ET_OK, ET_ERR_INVALID or ET_ERR_NOMEM
 */
et_status et_tok_serialize(const et_tokenizer *tok, void **blob, size_t *n);

/**
 * Rebuilds a tokenizer from a blob made by et_tok_serialize().
 * @param[in]  blob  the bytes
 * @param[in]  n     their length
 * @param[out] tok   the tokenizer
 * @param[out] err   message on failure (may be NULL)
 * @return ET_OK; ET_ERR_FORMAT (magic, version, type, layout or contents);
 *         ET_ERR_TRUNCATED; ET_ERR_CRC; ET_ERR_NOMEM; ET_ERR_INVALID
 */
et_status et_tok_deserialize(const void *blob, size_t n, et_tokenizer **tok, et_error *err);

/** Writes the tokenizer to @p path (through path.tmp and a rename).
 *  @return ET_OK, ET_ERR_IO (message names the file), ET_ERR_NOMEM, ET_ERR_INVALID */
et_status et_tok_save(const et_tokenizer *tok, const char *path, et_error *err);

/** Reads a tokenizer file; errors as et_tok_deserialize() plus ET_ERR_IO, with the
 *  message naming the file. */
et_status et_tok_load(const char *path, et_tokenizer **tok, et_error *err);

#endif /* ET_TOKENIZER_H */
