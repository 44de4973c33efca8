/* sparse_file.c - save and load pruned-model files (et_sparse.h).
 *
 * Payload, tensor by tensor in et_gpt_tensors() order: a pruned block matrix (L,OC,K)
 * is N:M-packed as one (L*OC, K) matrix (values, then positions) or, unstructured, as
 * its keep-bitmap followed by the kept values; every other tensor is raw fp32.
 * Deliberately avoids: trusting the header (every size is recomputed from the config
 * and checked against the file's length before anything is allocated).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "et_crc32.h"
#include "et_qmodel.h"
#include "et_sparse.h"

#define HDR 128
#define MAX_FILE ((uint64_t)1 << 40)

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static int prunable(int i)
{
    int k;
    for (k = 0; k < ET_PRUNE_NMATS; k++)
        if (et_prune_gpt_tensors[k] == i) return 1;
    return 0;
}

/* the mask bits of one tensor, copied out to start at bit 0 */
static void sub_mask(const uint8_t *mask, size_t off, size_t n, uint8_t *out)
{
    size_t i;
    memset(out, 0, et_prune_mask_bytes(n));
    for (i = 0; i < n; i++)
        if (et_prune_kept(mask, off + i)) out[i >> 3] = (uint8_t)(out[i >> 3] | (1u << (i & 7)));
}

/* bytes of tensor i in the payload; kept = its kept count (bitmap form) */
static size_t tensor_bytes(const et_tensor_info *t, int i, const et_prune_spec *p, size_t kept)
{
    int rows = t->shape[0] * t->shape[1], cols = t->shape[2];
    if (!prunable(i)) return t->count * sizeof(float);
    if (p->kind == 2)
        return et_prune_nm_value_count(rows, cols, p->N, p->M) * sizeof(float) +
               et_prune_nm_index_bytes(rows, cols, p->N, p->M);
    return et_prune_mask_bytes(t->count) + kept * sizeof(float);
}

size_t et_sparse_payload_bytes(const et_gpt_config *cfg, const uint8_t *mask, const et_prune_spec *p)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    et_gpt_config c = *cfg;
    size_t total = 0, j, kept;
    int i;
    if (et_gpt_config_check(&c) != ET_OK) return 0;
    et_gpt_tensors(&c, t);
    for (i = 0; i < ET_GPT_NTENSORS; i++) {
        for (kept = 0, j = 0; prunable(i) && p->kind == 1 && j < t[i].count; j++)
            kept += (size_t)et_prune_kept(mask, t[i].offset + j);
        total += tensor_bytes(&t[i], i, p, kept);
    }
    return total;
}

et_status et_sparse_save(const char *path, const et_gpt_config *cfg, const float *params,
                         const uint8_t *mask, const et_prune_spec *p, const void *tokenizer,
                         size_t tokenizer_bytes, et_error *err)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    et_gpt_config c;
    size_t np, payload, n, off;
    uint8_t *f, *sm = NULL;
    int i;
    et_status s = ET_OK;
    if (!path || !cfg || !params || !mask || !p || (p->kind != 1 && p->kind != 2) ||
        (tokenizer_bytes && !tokenizer))
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: missing model, mask or pruning kind", path ? path : "?");
    c = *cfg;
    if (et_gpt_config_check(&c) != ET_OK) return et_error_set(err, ET_ERR_INVALID, "%s: invalid config", path);
    np = et_gpt_tensors(&c, t);
    payload = et_sparse_payload_bytes(&c, mask, p);
    n = HDR + payload + tokenizer_bytes + 4;
    f = calloc(1, n);
    sm = malloc(et_prune_mask_bytes(np));
    if (!f || !sm) { free(f); free(sm); return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", path); }
    memcpy(f, ET_SPARSE_MAGIC, 8);
    put32(f + 8, ET_SPARSE_VERSION);
    put32(f + 12, HDR);
    put32(f + 16, (uint32_t)p->kind);
    put32(f + 20, (uint32_t)p->N);
    put32(f + 24, (uint32_t)p->M);
    put32(f + 28, (uint32_t)c.vocab); put32(f + 32, (uint32_t)c.vocab_padded); put32(f + 36, (uint32_t)c.context);
    put32(f + 40, (uint32_t)c.layers); put32(f + 44, (uint32_t)c.heads); put32(f + 48, (uint32_t)c.channels);
    memcpy(f + 52, &p->sparsity, 4);
    put64(f + 56, np);
    put64(f + 64, payload);
    put64(f + 72, tokenizer_bytes);
    put32(f + 124, et_crc32(f, 124));
    off = HDR;
    for (i = 0; i < ET_GPT_NTENSORS && s == ET_OK; i++) {
        const float *w = params + t[i].offset;
        int rows = t[i].shape[0] * t[i].shape[1], cols = t[i].shape[2];
        if (!prunable(i)) {
            memcpy(f + off, w, t[i].count * sizeof(float));
            off += t[i].count * sizeof(float);
            continue;
        }
        sub_mask(mask, t[i].offset, t[i].count, sm);
        if (p->kind == 2) {
            size_t nv = et_prune_nm_value_count(rows, cols, p->N, p->M);
            float *vals = malloc(sizeof(float) * (nv ? nv : 1));
            if (!vals) { s = et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", path); break; }
            if ((s = et_prune_nm_pack(w, sm, rows, cols, p->N, p->M, vals, f + off + nv * sizeof(float))) != ET_OK)
                et_error_set(err, s, "%s: cannot save: %s is not %d:%d sparse", path, t[i].name, p->N, p->M);
            memcpy(f + off, vals, nv * sizeof(float));
            free(vals);
            off += nv * sizeof(float) + et_prune_nm_index_bytes(rows, cols, p->N, p->M);
        } else {
            size_t kept = et_prune_count(sm, t[i].count);
            memcpy(f + off, sm, et_prune_mask_bytes(t[i].count));
            off += et_prune_mask_bytes(t[i].count);
            et_prune_bitmap_pack(w, sm, t[i].count, (float *)(void *)(f + off));
            off += kept * sizeof(float);
        }
    }
    if (s == ET_OK) {
        if (tokenizer_bytes) memcpy(f + off, tokenizer, tokenizer_bytes);
        off += tokenizer_bytes;
        put32(f + off, et_crc32(f, off));
        s = et_qmodel_write_file(path, f, n, err);
    }
    free(sm);
    free(f);
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

et_status et_sparse_load(const char *path, et_ckpt *c, et_prune_spec *p, et_error *err)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    et_prune_spec ps;
    et_gpt_config cfg;
    struct stat st;
    FILE *fp;
    uint8_t *f = NULL;
    size_t n, np, off, payload, tok;
    uint32_t vp;
    int i;
    et_status s = ET_OK;
    memset(c, 0, sizeof *c);
    if (!path) return et_error_set(err, ET_ERR_INVALID, "no path");
    if (stat(path, &st) != 0 || !(fp = fopen(path, "rb")))
        return et_error_set(err, ET_ERR_IO, "%s: cannot open", path);
    n = (size_t)st.st_size;
    if ((uint64_t)st.st_size > MAX_FILE || n < HDR + 4) {
        fclose(fp);
        return et_error_set(err, ET_ERR_TRUNCATED, "%s: %zu bytes is not a pruned model's size", path, n);
    }
    f = malloc(n);
    if (!f || fread(f, 1, n, fp) != n) {
        fclose(fp);
        free(f);
        return et_error_set(err, f ? ET_ERR_IO : ET_ERR_NOMEM, "%s: cannot read", path);
    }
    fclose(fp);
#define FAIL(code, ...) do { s = et_error_set(err, code, __VA_ARGS__); goto out; } while (0)
    if (memcmp(f, ET_SPARSE_MAGIC, 8) != 0) FAIL(ET_ERR_FORMAT, "%s: not a pruned edgetrain model (magic)", path);
    if (get32(f + 8) != ET_SPARSE_VERSION)
        FAIL(ET_ERR_UNSUPPORTED, "%s: pruned-model version %u is not supported (this build reads %d)", path,
             get32(f + 8), ET_SPARSE_VERSION);
    if (get32(f + 124) != et_crc32(f, 124)) FAIL(ET_ERR_CRC, "%s: header checksum mismatch", path);
    memset(&ps, 0, sizeof ps);
    ps.kind = (int)get32(f + 16); ps.N = (int)get32(f + 20); ps.M = (int)get32(f + 24);
    memcpy(&ps.sparsity, f + 52, 4);
    if (!(ps.kind == 1 || (ps.kind == 2 && ps.N >= 1 && ps.N < ps.M && ps.M <= 16)))
        FAIL(ET_ERR_FORMAT, "%s: pruning kind %d (%d:%d) is not valid", path, ps.kind, ps.N, ps.M);
    cfg.vocab = (int)get32(f + 28); vp = get32(f + 32); cfg.context = (int)get32(f + 36);
    cfg.layers = (int)get32(f + 40); cfg.heads = (int)get32(f + 44); cfg.channels = (int)get32(f + 48);
    if (et_gpt_config_check(&cfg) != ET_OK || (uint32_t)cfg.vocab_padded != vp)
        FAIL(ET_ERR_RANGE, "%s: invalid config", path);
    np = et_gpt_tensors(&cfg, t);
    payload = (size_t)get64(f + 64);
    tok = (size_t)get64(f + 72);
    if (get64(f + 56) != np) FAIL(ET_ERR_FORMAT, "%s: parameter count %llu, the config implies %zu", path,
                                  (unsigned long long)get64(f + 56), np);
    if (payload > n || tok > n || HDR + payload + tok + 4 != n)
        FAIL(n < HDR + payload + tok + 4 ? ET_ERR_TRUNCATED : ET_ERR_FORMAT,
             "%s: sizes in the header (%zu + %zu) do not match the file's %zu bytes", path, payload, tok, n);
    if (get32(f + n - 4) != et_crc32(f, n - 4)) FAIL(ET_ERR_CRC, "%s: checksum mismatch (the file is corrupt)", path);
    c->params = malloc(sizeof(float) * np);
    if (!c->params) FAIL(ET_ERR_NOMEM, "%s: out of memory", path);
    off = HDR;
    for (i = 0; i < ET_GPT_NTENSORS; i++) {
        float *w = c->params + t[i].offset;
        int rows = t[i].shape[0] * t[i].shape[1], cols = t[i].shape[2];
        size_t need;
        if (!prunable(i)) need = t[i].count * sizeof(float);
        else if (ps.kind == 2) need = tensor_bytes(&t[i], i, &ps, 0);
        else need = off + et_prune_mask_bytes(t[i].count) <= HDR + payload
                        ? tensor_bytes(&t[i], i, &ps, et_prune_count(f + off, t[i].count)) : (size_t)-1;
        if (need > HDR + payload - off) FAIL(ET_ERR_FORMAT, "%s: tensor %s runs past the payload", path, t[i].name);
        if (!prunable(i)) {
            memcpy(w, f + off, need);
        } else if (ps.kind == 2) {
            size_t nv = et_prune_nm_value_count(rows, cols, ps.N, ps.M);
            float *vals = malloc(sizeof(float) * (nv ? nv : 1));
            if (!vals) FAIL(ET_ERR_NOMEM, "%s: out of memory", path);
            memcpy(vals, f + off, nv * sizeof(float));
            s = et_prune_nm_unpack(vals, f + off + nv * sizeof(float), rows, cols, ps.N, ps.M, w);
            free(vals);
            if (s != ET_OK) FAIL(ET_ERR_FORMAT, "%s: %s has %d:%d positions out of range", path, t[i].name, ps.N, ps.M);
        } else {
            size_t kept = et_prune_count(f + off, t[i].count);
            float *vals = malloc(sizeof(float) * (kept ? kept : 1));
            if (!vals) FAIL(ET_ERR_NOMEM, "%s: out of memory", path);
            memcpy(vals, f + off + et_prune_mask_bytes(t[i].count), kept * sizeof(float));
            et_prune_bitmap_unpack(vals, f + off, t[i].count, w);
            free(vals);
        }
        off += need;
    }
    if (off != HDR + payload) FAIL(ET_ERR_FORMAT, "%s: %zu unexpected payload bytes", path, HDR + payload - off);
    if (tok) {
        c->tokenizer = malloc(tok);
        if (!c->tokenizer) FAIL(ET_ERR_NOMEM, "%s: out of memory", path);
        memcpy(c->tokenizer, f + off, tok);
        c->tokenizer_bytes = tok;
    }
    c->cfg = cfg;
    c->nparams = np;
    if (p) *p = ps;
#undef FAIL
out:
    free(f);
    if (s != ET_OK) et_ckpt_free(c);
    return s;
}
