/* et_prepare.h - text files in, token shards and a tokenizer out: what
 * `edgetrain prepare --input FILE... --tokenizer char|bpe [--vocab N] [--val-frac F]
 * --out DIR` does.
 *
 * The inputs are concatenated (a newline is put between two files when the first does
 * not end with one), cleaned (et_text.h), a tokenizer is trained on the cleaned text and
 * encodes all of it, and the tokens are split nanoGPT's way: the first
 * floor(n * (1 - val_frac)) go to DIR/train.bin, the rest to DIR/val.bin (llm.c shards,
 * et_shard.h); the tokenizer goes to DIR/tokenizer.bin (et_tokenizer.h).
 */
#ifndef ET_PREPARE_H
#define ET_PREPARE_H

#include <stddef.h>
#include <stdint.h>
#include "et_host.h"
#include "et_text.h"
#include "et_tokenizer.h"

typedef struct et_prepare_opts {
    const char *const *inputs; /**< input text files */
    size_t n_inputs;           /**< how many (>= 1) */
    et_tok_type tokenizer;     /**< ET_TOK_CHAR or ET_TOK_BPE */
    uint32_t vocab;            /**< BPE: vocabulary size, 256..65535 (0: 512).
                                    char: 0, or an upper bound the text must respect */
    double val_frac;           /**< share of tokens for validation, 0 <= f < 1 (0.1) */
    const char *out_dir;       /**< created if missing (its parent must exist) */
    int clean;                 /**< nonzero: run et_text_clean() (1) */
    et_clean_opts clean_opts;  /**< its options (et_clean_opts_init()) */
} et_prepare_opts;

typedef struct et_prepare_report {
    size_t bytes_in;       /**< bytes read, joining newlines included */
    size_t bytes_clean;    /**< bytes after cleaning */
    et_clean_stats clean;  /**< what cleaning changed (zero when clean is 0) */
    et_tok_type tokenizer; /**< the tokenizer kind */
    uint32_t vocab;        /**< vocabulary size actually built */
    size_t tokens;         /**< tokens in all */
    size_t train_tokens;   /**< tokens in train.bin */
    size_t val_tokens;     /**< tokens in val.bin */
} et_prepare_report;

/** Defaults: char tokenizer, vocab 0, val_frac 0.1, clean 1 with the default clean
 *  options; inputs and out_dir NULL. */
void et_prepare_opts_init(et_prepare_opts *o);

/**
 * Runs the whole preparation.
 * @param[in]  o    options
 * @param[out] r    what was done (may be NULL); filled as far as the run got
 * @param[out] err  message naming the file or option at fault (may be NULL)
 * @return ET_OK; ET_ERR_INVALID (no inputs, no out_dir, val_frac out of [0, 1), text
 *         empty after cleaning, a split left empty); ET_ERR_RANGE (vocab out of range for
 *         the tokenizer, or more distinct characters than a char vocab allows);
 *         ET_ERR_IO (an input missing or unreadable, DIR not creatable, a write failed);
 *         ET_ERR_NOMEM
 */
et_status et_prepare(const et_prepare_opts *o, et_prepare_report *r, et_error *err);

#endif /* ET_PREPARE_H */
