/* text_clean.c - et_text_clean(): one pass over raw text, line by line.
 *
 * Each input line is cleaned into a line buffer (tags, entities, control bytes,
 * whitespace), then judged as a whole (blank-line runs, duplicates) before it reaches the
 * output. Deliberately avoided: any Unicode processing (bytes >= 0x80 pass through, so
 * invalid UTF-8 survives too), tags that span lines (a stray '<' in prose must not eat a
 * paragraph), and case or punctuation normalisation - a tokenizer should see the text
 * as written.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "et_text.h"

void et_clean_opts_init(et_clean_opts *opts)
{
    if (!opts) return;
    opts->dedup_min_len = 64;
    opts->strip_tags = 1;
    opts->tag_max_len = 256;
    opts->decode_entities = 1;
}

// --- duplicate-line set: open addressing over (offset, length) of kept output lines

typedef struct et__lineset {
    size_t *off;  /* offset of the line in the output; SIZE_MAX marks an empty slot */
    size_t *len;
    uint64_t *hash;
    size_t cap, used; /* cap is a power of two */
} et__lineset;

static uint64_t et__fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int et__lineset_grow(et__lineset *s, size_t cap)
{
    size_t *off = malloc(cap * sizeof *off), *len = malloc(cap * sizeof *len);
    uint64_t *hash = malloc(cap * sizeof *hash);
    size_t i;
    if (!off || !len || !hash) {
        free(off), free(len), free(hash);
        return -1;
    }
    for (i = 0; i < cap; i++) off[i] = SIZE_MAX;
    for (i = 0; i < s->cap; i++) {
        size_t j;
        if (s->off[i] == SIZE_MAX) continue;
        for (j = (size_t)s->hash[i] & (cap - 1); off[j] != SIZE_MAX; j = (j + 1) & (cap - 1)) {}
        off[j] = s->off[i], len[j] = s->len[i], hash[j] = s->hash[i];
    }
    free(s->off), free(s->len), free(s->hash);
    s->off = off, s->len = len, s->hash = hash, s->cap = cap;
    return 0;
}

/* Returns 1 if line (whose future output offset is at) was seen, 0 if it was inserted,
 * -1 on allocation failure. */
static int et__lineset_seen(et__lineset *s, const char *out, const char *line, size_t n,
                            size_t at)
{
    uint64_t h = et__fnv1a(line, n);
    size_t j;
    if (2 * (s->used + 1) > s->cap && et__lineset_grow(s, s->cap ? 2 * s->cap : 1024))
        return -1;
    for (j = (size_t)h & (s->cap - 1); s->off[j] != SIZE_MAX; j = (j + 1) & (s->cap - 1))
        if (s->hash[j] == h && s->len[j] == n && memcmp(out + s->off[j], line, n) == 0) return 1;
    s->off[j] = at, s->len[j] = n, s->hash[j] = h;
    s->used++;
    return 0;
}

// --- one line

static const struct {
    const char *name; /* without '&' */
    size_t len;
    char c;
} et__entities[] = {
    {"amp;", 4, '&'}, {"lt;", 3, '<'}, {"gt;", 3, '>'}, {"quot;", 5, '"'},
    {"#39;", 4, '\''}, {"apos;", 5, '\''}, {"nbsp;", 5, ' '},
};

/* Length of a tag starting at s[0] == '<' within s[0..n), or 0 if it does not look like
 * one: '<' then a letter, '/' or '!', and a '>' before any newline, '<' or the bound. */
static size_t et__tag_len(const char *s, size_t n, size_t max_len)
{
    size_t i;
    unsigned char c;
    if (n < 2) return 0;
    c = (unsigned char)s[1];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '/' || c == '!')) return 0;
    for (i = 2; i < n && i < max_len; i++) {
        if (s[i] == '>') return i + 1;
        if (s[i] == '<' || s[i] == '\n' || s[i] == '\r') return 0;
    }
    return 0;
}

/* Cleans line s[0..n) (no line terminator) into dst, returns its length. A space is held
 * back until a non-space follows it, which both collapses runs and strips the tail. */
static size_t et__clean_line(const char *s, size_t n, char *dst, const et_clean_opts *o,
                             et_clean_stats *st)
{
    size_t i = 0, k = 0;
    int space = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '<' && o->strip_tags) {
            size_t t = et__tag_len(s + i, n - i, o->tag_max_len);
            if (t) {
                st->tags_removed++;
                i += t;
                continue;
            }
        }
        if (c == '&' && o->decode_entities) {
            size_t e;
            for (e = 0; e < sizeof et__entities / sizeof et__entities[0]; e++) {
                size_t el = et__entities[e].len;
                if (n - i - 1 >= el && memcmp(s + i + 1, et__entities[e].name, el) == 0) break;
            }
            if (e < sizeof et__entities / sizeof et__entities[0]) {
                st->entities_decoded++;
                i += 1 + et__entities[e].len;
                c = (unsigned char)et__entities[e].c;
                if (c == ' ') goto is_space;
                goto literal; /* a decoded '<' or '&' is text, never parsed again */
            }
        }
        i++;
        if (c == ' ' || c == '\t' || c == '\v' || c == '\f') goto is_space;
        if (c < 0x20 || c == 0x7f) {
            st->controls_removed++;
            continue;
        }
    literal:
        if (space) dst[k++] = ' ';
        space = 0;
        dst[k++] = (char)c;
        continue;
    is_space:
        if (space) st->spaces_removed++;
        space = 1;
    }
    if (space) st->spaces_removed++;
    return k;
}

// --- the whole text

et_status et_text_clean(const char *in, size_t n, char **out, size_t *out_n,
                        const et_clean_opts *opts, et_clean_stats *stats)
{
    et_clean_opts dflt;
    et_clean_stats st;
    et__lineset seen = {0};
    char *o, *line;
    size_t i = 0, k = 0, blanks = 0;
    et_status rc = ET_OK;

    if (!out || !out_n || (!in && n)) return ET_ERR_INVALID;
    if (!opts) {
        et_clean_opts_init(&dflt);
        opts = &dflt;
    }
    memset(&st, 0, sizeof st);
    st.bytes_in = n;
    o = malloc(n + 1);
    line = malloc(n + 1);
    if (!o || !line) {
        free(o), free(line);
        return ET_ERR_NOMEM;
    }
    while (i < n) {
        size_t j = i, len, b;
        int has_lf;
        while (j < n && in[j] != '\n' && in[j] != '\r') j++;
        len = et__clean_line(in + i, j - i, line, opts, &st);
        has_lf = j < n;
        st.lines_in++;
        if (j < n && in[j] == '\r') {
            st.cr_normalised++;
            if (j + 1 < n && in[j + 1] == '\n') j++;
        }
        i = j + 1;
        if (len == 0) {
            /* blank lines are held back until the run ends; an unterminated final
             * blank line is nothing at all */
            if (has_lf) blanks++;
            continue;
        }
        if (opts->dedup_min_len && len >= opts->dedup_min_len) {
            int r = et__lineset_seen(&seen, o, line, len, k + (blanks >= 3 ? 1 : blanks));
            if (r < 0) {
                rc = ET_ERR_NOMEM;
                goto done;
            }
            if (r) {
                st.dup_lines_removed++;
                st.dup_bytes_removed += len + (size_t)has_lf;
                continue;
            }
        }
        b = blanks >= 3 ? 1 : blanks;
        st.blank_lines_removed += blanks - b;
        memset(o + k, '\n', b);
        k += b;
        st.lines_out += b;
        blanks = 0;
        memcpy(o + k, line, len);
        k += len;
        if (has_lf) o[k++] = '\n';
        st.lines_out++;
    }
    {
        size_t b = blanks >= 3 ? 1 : blanks;
        st.blank_lines_removed += blanks - b;
        memset(o + k, '\n', b);
        k += b;
        st.lines_out += b;
    }
    o[k] = '\0';
    st.bytes_out = k;
    *out = o;
    *out_n = k;
    o = NULL;
done:
    free(o);
    free(line);
    free(seen.off), free(seen.len), free(seen.hash);
    if (stats) *stats = st;
    return rc;
}
