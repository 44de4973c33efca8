/* et_text.h - cleaning raw text before a tokenizer is trained on it.
 *
 * One pass over the bytes, line by line: newlines normalised (CRLF and lone CR -> LF),
 * HTML-looking tags stripped, a handful of entities decoded, ASCII control characters
 * dropped, tabs and other ASCII whitespace turned into spaces, runs of spaces collapsed,
 * trailing spaces stripped, runs of 3 or more blank lines collapsed to one blank line,
 * and exact duplicates of long lines dropped. Every other byte is kept as it is: UTF-8
 * (valid or not) passes through untouched, and a final line without a newline keeps
 * its lack of one.
 */
#ifndef ET_TEXT_H
#define ET_TEXT_H

#include <stddef.h>
#include "et_status.h"

/** What et_text_clean() does beyond the fixed normalisations (newlines, whitespace,
 *  control characters, blank-line runs). Fill with et_clean_opts_init(). */
typedef struct et_clean_opts {
    size_t dedup_min_len;  /**< drop a line equal to an earlier kept one when it is at
                                least this many bytes long (after cleaning); 0 disables */
    int strip_tags;        /**< nonzero: remove '<' + letter, '/' or '!' ... '>' */
    size_t tag_max_len;    /**< longest tag removed, '<' and '>' included; a longer
                                "tag" is kept as text */
    int decode_entities;   /**< nonzero: &amp; &lt; &gt; &quot; &#39; &apos; &nbsp; */
} et_clean_opts;

/** What et_text_clean() changed; every counter counts removals or rewrites. */
typedef struct et_clean_stats {
    size_t bytes_in;          /**< input bytes */
    size_t bytes_out;         /**< output bytes */
    size_t lines_in;          /**< input lines (a final line without LF counts) */
    size_t lines_out;         /**< output lines */
    size_t cr_normalised;     /**< CRLF or lone CR turned into LF */
    size_t tags_removed;      /**< HTML tags removed */
    size_t entities_decoded;  /**< entities replaced by their character */
    size_t controls_removed;  /**< ASCII control bytes dropped (not counting CR/tab) */
    size_t spaces_removed;    /**< whitespace bytes dropped by collapsing or trailing strip */
    size_t blank_lines_removed; /**< blank lines dropped from runs of 3 or more */
    size_t dup_lines_removed; /**< duplicate lines dropped */
    size_t dup_bytes_removed; /**< bytes of those lines, LF included */
} et_clean_stats;

/** Default options: dedup_min_len 64, strip_tags 1, tag_max_len 256, decode_entities 1. */
void et_clean_opts_init(et_clean_opts *opts);

/**
 * Cleans @p n bytes of text into a new malloc'd buffer.
 * @param[in]  in     text (may hold any bytes, NUL included); NULL only with n == 0
 * @param[in]  n      its length in bytes
 * @param[out] out    the cleaned text, NUL-terminated for convenience (the NUL is not
 *                    counted in @p out_n); the caller frees it with free()
 * @param[out] out_n  its length in bytes (never more than n)
 * @param[in]  opts   options, or NULL for the defaults
 * @param[out] stats  what changed, or NULL
 * @return ET_OK, ET_ERR_INVALID for NULL out/out_n, ET_ERR_NOMEM if malloc fails
 */
et_status et_text_clean(const char *in, size_t n, char **out, size_t *out_n,
                        const et_clean_opts *opts, et_clean_stats *stats);

#endif /* ET_TEXT_H */
