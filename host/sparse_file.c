/* sparse_file.c - save and load compact-model files (et_sparse.h; layout in
 * docs/FORMATS.md).
 *
 * The blob is written as et_cgpt_pack made it, so a load is a copy into an aligned
 * buffer after the checks: the header's own CRC, the config (GPT-2 shape), the storage
 * table (et_cgpt_spec_check), the blob's size against the one the table implies, the
 * stored parameter count, the file's length and its whole-file CRC.
 * Deliberately avoids: trusting any size in the header before it has been recomputed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "et_crc32.h"
#include "et_qmodel.h"
#include "et_sparse.h"

#define HDR 128
#define ENTRY 32
#define MAX_FILE ((uint64_t)1 << 40)

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static size_t pad64(size_t n) { return (n + 63) & ~(size_t)63; }
static int little_endian(void) { const uint16_t one = 1; return *(const uint8_t *)&one == 1; }

static size_t table_end(int nlin) { return pad64(HDR + (size_t)nlin * ENTRY); }

size_t et_sparse_file_bytes(const et_sparse_model *f)
{
    size_t bb;
    if (!f || et_cgpt_blob_bytes(&f->cfg, f->mode, f->spec, &bb) != ET_OK || bb != f->blob_bytes) return 0;
    return table_end(f->cfg.layers * ET_CGPT_LIN) + pad64(bb) + f->tokenizer_bytes + 4;
}

static void put_mat(uint8_t *p, const et_cmat_spec *s)
{
    p[0] = (uint8_t)s->format;
    p[1] = (uint8_t)s->N;
    p[2] = (uint8_t)s->M;
    p[3] = 0;
    put32(p + 4, s->nnz);
}

static void get_mat(const uint8_t *p, et_cmat_spec *s)
{
    s->format = p[0];
    s->N = p[1];
    s->M = p[2];
    s->nnz = get32(p + 4);
}

et_status et_sparse_save(const char *path, const et_sparse_model *f, et_error *err)
{
    size_t n, off;
    uint8_t *b;
    int i, nlin;
    et_status s;
    if (!path || !f || !f->spec || !f->blob || (f->tokenizer_bytes && !f->tokenizer))
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: missing model, table or blob", path ? path : "?");
    if (!little_endian())
        return et_error_set(err, ET_ERR_UNSUPPORTED, "%s: compact models are little-endian; this host is not", path);
    if (!(n = et_sparse_file_bytes(f)))
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: the storage table or the blob size is not valid "
                            "for this config", path);
    nlin = f->cfg.layers * ET_CGPT_LIN;
    b = calloc(1, n);
    if (!b) return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", path);
    memcpy(b, ET_SPARSE_MAGIC, 8);
    put32(b + 8, ET_SPARSE_VERSION);
    put32(b + 12, HDR);
    put32(b + 16, (uint32_t)f->mode);
    put32(b + 20, (uint32_t)nlin);
    put32(b + 24, (uint32_t)f->cfg.vocab); put32(b + 28, (uint32_t)f->cfg.vocab_padded);
    put32(b + 32, (uint32_t)f->cfg.context); put32(b + 36, (uint32_t)f->cfg.layers);
    put32(b + 40, (uint32_t)f->cfg.heads); put32(b + 44, (uint32_t)f->cfg.channels);
    put64(b + 48, f->blob_bytes);
    put64(b + 56, f->tokenizer_bytes);
    put64(b + 64, f->src_nparams);
    put64(b + 72, et_cgpt_params(&f->cfg, f->spec));
    put32(b + 80, f->calib_method);
    memcpy(b + 84, &f->calib_pct, 4);
    put32(b + 88, f->calib_batches);
    put32(b + 92, f->finetune_steps);
    put32(b + 124, et_crc32(b, 124));
    for (i = 0; i < nlin; i++) {
        uint8_t *e = b + HDR + (size_t)i * ENTRY;
        put32(e, (uint32_t)f->spec[i].rank);
        put_mat(e + 4, &f->spec[i].w);
        put_mat(e + 12, &f->spec[i].a);
        put_mat(e + 20, &f->spec[i].b);
    }
    off = table_end(nlin);
    memcpy(b + off, f->blob, f->blob_bytes);
    off += pad64(f->blob_bytes);
    if (f->tokenizer_bytes) memcpy(b + off, f->tokenizer, f->tokenizer_bytes);
    off += f->tokenizer_bytes;
    put32(b + off, et_crc32(b, off));
    s = et_qmodel_write_file(path, b, n, err);
    free(b);
    return s;
}

int et_sparse_probe(const char *path)
{
    char m[8];
    FILE *fp = path ? fopen(path, "rb") : NULL;
    int ok;
    if (!fp) return 0;
    ok = fread(m, 1, 8, fp) == 8 && memcmp(m, ET_SPARSE_MAGIC, 8) == 0;
    fclose(fp);
    return ok;
}

void et_sparse_free(et_sparse_model *f)
{
    if (!f) return;
    free(f->spec);
    free(f->blob);
    free(f->tokenizer);
    memset(f, 0, sizeof *f);
}

et_status et_sparse_load(const char *path, et_sparse_model *f, et_error *err)
{
    struct stat st;
    FILE *fp;
    uint8_t *b = NULL;
    size_t n, bb, tok, want, off;
    uint32_t nlin, vp;
    int i;
    et_status s = ET_OK;
    memset(f, 0, sizeof *f);
    if (!path) return et_error_set(err, ET_ERR_INVALID, "no path");
    if (!little_endian()) return et_error_set(err, ET_ERR_UNSUPPORTED, "%s: compact models are little-endian", path);
    if (stat(path, &st) != 0 || !(fp = fopen(path, "rb"))) return et_error_set(err, ET_ERR_IO, "%s: cannot open", path);
    n = (size_t)st.st_size;
    if ((uint64_t)st.st_size > MAX_FILE || n < HDR + 4) {
        fclose(fp);
        return et_error_set(err, ET_ERR_TRUNCATED, "%s: %zu bytes is too short for a compact model (header: %d)",
                            path, n, HDR);
    }
    b = malloc(n);
    if (!b || fread(b, 1, n, fp) != n) {
        fclose(fp);
        free(b);
        return et_error_set(err, b ? ET_ERR_IO : ET_ERR_NOMEM, "%s: cannot read", path);
    }
    fclose(fp);
#define FAIL(code, ...) do { s = et_error_set(err, code, __VA_ARGS__); goto out; } while (0)
    if (memcmp(b, ET_SPARSE_MAGIC, 8) != 0) FAIL(ET_ERR_FORMAT, "%s: not a compact edgetrain model (magic)", path);
    if (get32(b + 8) != ET_SPARSE_VERSION)
        FAIL(ET_ERR_UNSUPPORTED, "%s: compact-model version %u is not supported (this build reads %d%s)", path,
             get32(b + 8), ET_SPARSE_VERSION,
             get32(b + 8) == 1 ? "; version 1 files were written before the compact inference path: run compress "
                                 "again on the fp32 model" : "");
    if (get32(b + 124) != et_crc32(b, 124)) FAIL(ET_ERR_CRC, "%s: header checksum mismatch", path);
    if (get32(b + 12) != HDR) FAIL(ET_ERR_FORMAT, "%s: header size %u, expected %d", path, get32(b + 12), HDR);
    f->mode = (et_cgpt_mode)get32(b + 16);
    if (f->mode != ET_CGPT_F32 && f->mode != ET_CGPT_W8A8)
        FAIL(ET_ERR_FORMAT, "%s: mode %u is neither fp32 (0) nor W8A8 (1)", path, (unsigned)f->mode);
    f->cfg.vocab = (int)get32(b + 24); vp = get32(b + 28); f->cfg.context = (int)get32(b + 32);
    f->cfg.layers = (int)get32(b + 36); f->cfg.heads = (int)get32(b + 40); f->cfg.channels = (int)get32(b + 44);
    if (f->cfg.layers <= 0 || f->cfg.layers > 4096 || et_gpt_config_check(&f->cfg) != ET_OK ||
        (uint32_t)f->cfg.vocab_padded != vp)
        FAIL(ET_ERR_RANGE, "%s: invalid config (vocab %d, padded %u, context %d, layers %d, heads %d, channels %d)",
             path, f->cfg.vocab, vp, f->cfg.context, f->cfg.layers, f->cfg.heads, f->cfg.channels);
    nlin = get32(b + 20);
    if (nlin != (uint32_t)f->cfg.layers * ET_CGPT_LIN)
        FAIL(ET_ERR_FORMAT, "%s: %u linears in the table, the config has %d", path, nlin, f->cfg.layers * ET_CGPT_LIN);
    if (table_end((int)nlin) + 4 > n) FAIL(ET_ERR_TRUNCATED, "%s: the file ends inside its storage table", path);
    f->spec = calloc(nlin, sizeof *f->spec);
    if (!f->spec) FAIL(ET_ERR_NOMEM, "%s: out of memory", path);
    for (i = 0; i < (int)nlin; i++) {
        const uint8_t *e = b + HDR + (size_t)i * ENTRY;
        f->spec[i].rank = (int)get32(e);
        get_mat(e + 4, &f->spec[i].w);
        get_mat(e + 12, &f->spec[i].a);
        get_mat(e + 20, &f->spec[i].b);
    }
    if ((s = et_cgpt_spec_check(&f->cfg, f->spec)) != ET_OK)
        FAIL(s == ET_ERR_UNSUPPORTED ? s : ET_ERR_FORMAT, "%s: the storage table is not valid for this config "
             "(a rank, N:M or bitmap count out of range)", path);
    et_cgpt_blob_bytes(&f->cfg, f->mode, f->spec, &bb);
    if (get64(b + 48) != bb)
        FAIL(ET_ERR_FORMAT, "%s: blob of %llu bytes, the table implies %zu", path, (unsigned long long)get64(b + 48), bb);
    if (get64(b + 72) != et_cgpt_params(&f->cfg, f->spec))
        FAIL(ET_ERR_FORMAT, "%s: %llu stored parameters, the table implies %zu", path,
             (unsigned long long)get64(b + 72), et_cgpt_params(&f->cfg, f->spec));
    tok = get64(b + 56) < MAX_FILE ? (size_t)get64(b + 56) : (size_t)MAX_FILE;
    want = table_end((int)nlin) + pad64(bb) + tok + 4;
    if (want != n)
        FAIL(n < want ? ET_ERR_TRUNCATED : ET_ERR_FORMAT, "%s: %zu bytes, the header implies %zu (table, blob %zu, "
             "tokenizer %zu)%s", path, n, want, bb, tok, n < want ? ": the file is truncated" : "");
    if (get32(b + n - 4) != et_crc32(b, n - 4)) FAIL(ET_ERR_CRC, "%s: checksum mismatch (the file is corrupt)", path);
    f->src_nparams = get64(b + 64);
    f->calib_method = get32(b + 80);
    memcpy(&f->calib_pct, b + 84, 4);
    f->calib_batches = get32(b + 88);
    f->finetune_steps = get32(b + 92);
    f->blob_bytes = bb;
    if (posix_memalign(&f->blob, ET_ALIGN, bb ? bb : 64) != 0) {
        f->blob = NULL;
        FAIL(ET_ERR_NOMEM, "%s: out of memory for a blob of %zu bytes", path, bb);
    }
    off = table_end((int)nlin);
    memcpy(f->blob, b + off, bb);
    off += pad64(bb);
    if (tok) {
        if (!(f->tokenizer = malloc(tok))) FAIL(ET_ERR_NOMEM, "%s: out of memory", path);
        memcpy(f->tokenizer, b + off, tok);
        f->tokenizer_bytes = tok;
    }
#undef FAIL
out:
    free(b);
    if (s != ET_OK) et_sparse_free(f);
    return s;
}
