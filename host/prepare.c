/* prepare.c - et_prepare(): read, clean, train a tokenizer, encode, split, write.
 *
 * Everything is held in memory at once (text, cleaned text, tokens): the corpora this
 * is for are megabytes, and one pass keeps the split exactly nanoGPT's. Deliberately
 * avoided: streaming or sharding very large corpora into many files, and shuffling -
 * the validation set is the tail of the text, as nanoGPT and llm.c make it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "et_prepare.h"
#include "et_shard.h"

void et_prepare_opts_init(et_prepare_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->tokenizer = ET_TOK_CHAR;
    o->vocab = 0;
    o->val_frac = 0.1;
    o->clean = 1;
    et_clean_opts_init(&o->clean_opts);
}

/* Appends the whole of file path to *buf (growing it), with a newline first when the
 * text so far does not end with one. */
static et_status et__append_file(const char *path, char **buf, size_t *n, size_t *cap,
                                 et_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return et_error_set(err, ET_ERR_IO, "%s: cannot open input: %s", path, strerror(errno));
    if (*n > 0 && (*buf)[*n - 1] != '\n') {
        if (*n == *cap) {
            size_t c = *cap ? 2 * *cap : 1 << 16;
            char *q = realloc(*buf, c);
            if (!q) {
                fclose(f);
                return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", path);
            }
            *buf = q, *cap = c;
        }
        (*buf)[(*n)++] = '\n';
    }
    for (;;) {
        size_t got;
        if (*n == *cap) {
            size_t c = *cap ? 2 * *cap : 1 << 16;
            char *q = realloc(*buf, c);
            if (!q) {
                fclose(f);
                return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", path);
            }
            *buf = q, *cap = c;
        }
        got = fread(*buf + *n, 1, *cap - *n, f);
        *n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        fclose(f);
        return et_error_set(err, ET_ERR_IO, "%s: read error", path);
    }
    fclose(f);
    return ET_OK;
}

/* dir + "/" + name in a new string, or NULL. */
static char *et__join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

et_status et_prepare(const et_prepare_opts *o, et_prepare_report *r, et_error *err)
{
    et_prepare_report rep;
    char *text = NULL, *clean = NULL, *path = NULL;
    size_t n = 0, cap = 0, cn = 0, ntok = 0, ntrain, i;
    uint16_t *toks = NULL;
    et_tokenizer *tok = NULL;
    struct stat st;
    uint32_t vocab;
    et_status rc;

    memset(&rep, 0, sizeof rep);
    if (r) *r = rep;
    if (!o) return et_error_set(err, ET_ERR_INVALID, "prepare: no options");
    if (!o->inputs || o->n_inputs == 0)
        return et_error_set(err, ET_ERR_INVALID, "prepare: no input files (--input FILE...)");
    if (!o->out_dir || !o->out_dir[0])
        return et_error_set(err, ET_ERR_INVALID, "prepare: no output directory (--out DIR)");
    if (!(o->val_frac >= 0.0 && o->val_frac < 1.0))
        return et_error_set(err, ET_ERR_INVALID, "prepare: --val-frac %g, expected 0 <= f < 1",
                            o->val_frac);
    if (o->tokenizer == ET_TOK_BPE) {
        vocab = o->vocab ? o->vocab : 512;
        if (vocab < 256 || vocab > ET_TOK_MAX_VOCAB)
            return et_error_set(err, ET_ERR_RANGE,
                                "prepare: --vocab %u for bpe, expected 256..%u (ids are uint16)",
                                vocab, ET_TOK_MAX_VOCAB);
    } else if (o->tokenizer == ET_TOK_CHAR) {
        vocab = o->vocab;
        if (vocab > ET_TOK_MAX_VOCAB)
            return et_error_set(err, ET_ERR_RANGE,
                                "prepare: --vocab %u for char, expected at most %u (ids are uint16)",
                                vocab, ET_TOK_MAX_VOCAB);
    } else
        return et_error_set(err, ET_ERR_INVALID, "prepare: tokenizer %d, expected char or bpe",
                            (int)o->tokenizer);
    rep.tokenizer = o->tokenizer;

    // --- read and clean
    for (i = 0; i < o->n_inputs; i++) {
        if (!o->inputs[i]) {
            rc = et_error_set(err, ET_ERR_INVALID, "prepare: input %zu is NULL", i);
            goto out;
        }
        rc = et__append_file(o->inputs[i], &text, &n, &cap, err);
        if (rc) goto out;
    }
    rep.bytes_in = n;
    if (o->clean) {
        rc = et_text_clean(text, n, &clean, &cn, &o->clean_opts, &rep.clean);
        if (rc) {
            et_error_set(err, rc, "prepare: cleaning %zu bytes of text failed", n);
            goto out;
        }
        free(text);
        text = clean;
        clean = NULL;
        n = cn;
    }
    rep.bytes_clean = n;
    for (i = 0; i < n && text[i] == '\n'; i++) {}
    if (i == n) { /* nothing, or nothing but blank lines */
        rc = et_error_set(err, ET_ERR_INVALID, "prepare: no text left after %s (%zu bytes read)",
                          o->clean ? "cleaning" : "reading", rep.bytes_in);
        goto out;
    }

    // --- tokenizer and tokens
    if (o->tokenizer == ET_TOK_BPE) rc = et_tok_train_bpe(text, n, vocab, &tok);
    else rc = et_tok_train_char(text, n, &tok);
    if (rc) {
        et_error_set(err, rc, "prepare: training the %s tokenizer failed: %s%s",
                     o->tokenizer == ET_TOK_BPE ? "bpe" : "char", et_status_str(rc),
                     rc == ET_ERR_RANGE ? " (more than 65535 distinct characters)" : "");
        goto out;
    }
    rep.vocab = et_tok_vocab_size(tok);
    if (o->tokenizer == ET_TOK_CHAR && vocab && rep.vocab > vocab) {
        rc = et_error_set(err, ET_ERR_RANGE,
                          "prepare: the text has %u distinct characters, more than --vocab %u",
                          rep.vocab, vocab);
        goto out;
    }
    toks = malloc(n * sizeof *toks);
    if (!toks) {
        rc = et_error_set(err, ET_ERR_NOMEM, "prepare: out of memory for %zu tokens", n);
        goto out;
    }
    rc = et_tok_encode(tok, text, n, toks, n, &ntok, 0, NULL);
    if (rc) {
        et_error_set(err, rc, "prepare: encoding failed: %s", et_status_str(rc));
        goto out;
    }
    free(text);
    text = NULL;
    ntrain = (size_t)((double)ntok * (1.0 - o->val_frac));
    if (ntrain > ntok) ntrain = ntok;
    rep.tokens = ntok;
    rep.train_tokens = ntrain;
    rep.val_tokens = ntok - ntrain;
    if (ntrain == 0 || (o->val_frac > 0.0 && ntrain == ntok)) {
        rc = et_error_set(err, ET_ERR_INVALID,
                          "prepare: %zu tokens split with --val-frac %g leave %s empty", ntok,
                          o->val_frac, ntrain == 0 ? "train.bin" : "val.bin");
        goto out;
    }

    // --- files
    if (mkdir(o->out_dir, 0777) != 0 && errno != EEXIST) {
        rc = et_error_set(err, ET_ERR_IO, "%s: cannot create output directory: %s", o->out_dir,
                          strerror(errno));
        goto out;
    }
    if (stat(o->out_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = et_error_set(err, ET_ERR_IO, "%s: exists and is not a directory", o->out_dir);
        goto out;
    }
    if (!(path = et__join(o->out_dir, "train.bin"))) goto nomem;
    if ((rc = et_shard_write(path, toks, ntrain, err))) goto out;
    free(path);
    if (!(path = et__join(o->out_dir, "val.bin"))) goto nomem;
    if ((rc = et_shard_write(path, toks + ntrain, ntok - ntrain, err))) goto out;
    free(path);
    if (!(path = et__join(o->out_dir, "tokenizer.bin"))) goto nomem;
    if ((rc = et_tok_save(tok, path, err))) goto out;
    rc = ET_OK;
    goto out;
nomem:
    rc = et_error_set(err, ET_ERR_NOMEM, "prepare: out of memory");
out:
    if (r) *r = rep;
    free(path);
    free(text);
    free(clean);
    free(toks);
    et_tok_free(tok);
    return rc;
}
