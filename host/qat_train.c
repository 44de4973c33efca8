/* qat_train.c - host glue of quantization-aware training (et_qat_train.h): the proxy's
 * arena, its range state beside checkpoints, the export to an int8 file and that file's
 * evaluation.
 *
 * The state file "<ckpt>.qat" (little-endian):
 *   0  8  magic "ETQATRNG"      8  4  u32 version = 1     12  4  u32 mode (1 W8A8, 2 W8A32)
 *  16  4  u32 nsites           20  4  f32 decay           24  8  u64 committed steps
 *  32 28  i32 vocab, context, layers, heads, channels, attention width A, MLP width F
 *  60  4  reserved 0
 *  64     nsites x (f32 lo, f32 hi, u32 recorded)
 *         u32 CRC-32 of everything before
 * A sidecar rather than a checkpoint section: the checkpoint format is not this
 * module's, and a plain `train --resume` of a QAT checkpoint still works (as fp32).
 * Deliberately avoids: trusting any field of a state file before its size and CRC are
 * checked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_crc32.h"
#include "et_qat_train.h"
#include "et_qmodel.h"
#include "et_qruntime.h"

#define STATE_MAGIC "ETQATRNG"
#define STATE_VERSION 1u
#define STATE_HDR 64
#define STATE_SITE 12

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

et_status et_qat_mode_parse(const char *s, et_qmode *mode, et_error *err)
{
    if (s && !strcmp(s, "w8a8")) *mode = ET_QMODE_W8A8;
    else if (s && !strcmp(s, "w8a32")) *mode = ET_QMODE_W8A32;
    else return et_error_set(err, ET_ERR_INVALID, "QAT mode must be w8a8 or w8a32, got '%s'", s ? s : "");
    return ET_OK;
}

et_status et_qat_train_open(et_qat_train *h, const et_gpt *m, et_backend *table, et_qmode mode,
                            float decay, et_error *err)
{
    size_t bytes;
    et_status s;
    memset(h, 0, sizeof *h);
    if (!(decay >= 0.0f && decay < 1.0f))
        return et_error_set(err, ET_ERR_INVALID, "QAT range decay must be in [0, 1), got %g", (double)decay);
    if (table->dev_arena || table->download)
        return et_error_set(err, ET_ERR_UNSUPPORTED, "QAT fake-quantizes on host memory; backend '%s' keeps "
                            "the model on a device (use --backend cpu)", table->name ? table->name : "?");
    bytes = et_qat_bytes(&m->cfg, mode, m->B, m->T);
    if (!bytes) return et_error_set(err, ET_ERR_INVALID, "QAT: bad mode or model shape");
    if (posix_memalign(&h->mem, ET_ALIGN, bytes) != 0) {
        h->mem = NULL;
        return et_error_set(err, ET_ERR_NOMEM, "QAT: cannot allocate %zu bytes", bytes);
    }
    et_arena_init(&h->arena, h->mem, bytes);
    if ((s = et_qat_init(&h->q, &m->cfg, mode, decay, m->B, m->T, &h->arena)) != ET_OK ||
        (s = et_qat_attach(&h->q, m, table)) != ET_OK) {
        free(h->mem);
        memset(h, 0, sizeof *h);
        return et_error_set(err, s, "QAT: cannot wrap the model's backend: %s", et_status_str(s));
    }
    h->open = 1;
    return ET_OK;
}

void et_qat_train_close(et_qat_train *h)
{
    if (!h || !h->open) return;
    et_qat_detach(&h->q);
    free(h->mem);
    memset(h, 0, sizeof *h);
}

// --- range state beside a checkpoint

static void state_path(char *buf, size_t cap, const char *ckpt) { snprintf(buf, cap, "%s.qat", ckpt); }

static void put_shape(uint8_t *p, const et_qat *q)
{
    int v[7], i;
    v[0] = q->cfg.vocab; v[1] = q->cfg.context; v[2] = q->cfg.layers; v[3] = q->cfg.heads;
    v[4] = q->cfg.channels; v[5] = q->A; v[6] = q->F;
    for (i = 0; i < 7; i++) put32(p + 4 * i, (uint32_t)v[i]);
}

et_status et_qat_train_save_state(const et_qat_train *h, const char *ckpt, et_error *err)
{
    const et_qat *q = &h->q;
    size_t n = STATE_HDR + (size_t)q->nsites * STATE_SITE + 4, i;
    uint64_t commits = q->commits;
    char path[1100];
    uint8_t *f = calloc(1, n);
    et_status s;
    if (!f) return et_error_set(err, ET_ERR_NOMEM, "out of memory");
    state_path(path, sizeof path, ckpt);
    memcpy(f, STATE_MAGIC, 8);
    put32(f + 8, STATE_VERSION);
    put32(f + 12, (uint32_t)q->mode);
    put32(f + 16, (uint32_t)q->nsites);
    memcpy(f + 20, &q->decay, 4);
    memcpy(f + 24, &commits, 8);
    put_shape(f + 32, q);
    for (i = 0; i < (size_t)q->nsites; i++) {
        uint8_t *e = f + STATE_HDR + i * STATE_SITE;
        memcpy(e, &q->site[i].lo, 4);
        memcpy(e + 4, &q->site[i].hi, 4);
        put32(e + 8, (uint32_t)q->site[i].have);
    }
    put32(f + n - 4, et_crc32(f, n - 4));
    s = et_qmodel_write_file(path, f, n, err);
    free(f);
    return s;
}

et_status et_qat_train_load_state(et_qat_train *h, const char *ckpt, et_error *err)
{
    et_qat *q = &h->q;
    size_t n = STATE_HDR + (size_t)q->nsites * STATE_SITE + 4, got, i;
    uint8_t *f = malloc(n + 1), shape[28];
    char path[1100];
    float decay;
    uint64_t commits;
    FILE *fp;
    et_status s = ET_OK;
    if (!f) return et_error_set(err, ET_ERR_NOMEM, "out of memory");
    state_path(path, sizeof path, ckpt);
    if (!(fp = fopen(path, "rb"))) {
        s = et_error_set(err, ET_ERR_IO, "%s: cannot open the QAT state of %s (%s); a --qat run resumes only "
                         "from a checkpoint that a --qat run wrote", path, ckpt, strerror(errno));
        goto out;
    }
    got = fread(f, 1, n + 1, fp);
    fclose(fp);
    if (got < 8 || memcmp(f, STATE_MAGIC, 8) != 0) {
        s = et_error_set(err, ET_ERR_FORMAT, "%s: not a QAT state file (magic)", path);
        goto out;
    }
    if (got != n) {
        s = et_error_set(err, ET_ERR_FORMAT, "%s: %zu%s bytes, expected %zu for this model's %d sites", path, got,
                         got > n ? " or more" : "", n, q->nsites);
        goto out;
    }
    if (get32(f + n - 4) != et_crc32(f, n - 4)) {
        s = et_error_set(err, ET_ERR_CRC, "%s: CRC-32 mismatch (the file is damaged)", path);
        goto out;
    }
    put_shape(shape, q);
    memcpy(&decay, f + 20, 4);
    memcpy(&commits, f + 24, 8);
    if (get32(f + 8) != STATE_VERSION || get32(f + 16) != (uint32_t)q->nsites || memcmp(f + 32, shape, 28) != 0) {
        s = et_error_set(err, ET_ERR_FORMAT, "%s: version %u, %u sites, or the model shape differs from this "
                         "model's (version %u, %d sites)", path, get32(f + 8), get32(f + 16), STATE_VERSION,
                         q->nsites);
        goto out;
    }
    if (get32(f + 12) != (uint32_t)q->mode || decay != q->decay) {
        s = et_error_set(err, ET_ERR_INVALID, "%s was trained with --qat-mode %s --qat-decay %g; resume with the same",
                         path, get32(f + 12) == ET_QMODE_W8A32 ? "w8a32" : "w8a8", (double)decay);
        goto out;
    }
    for (i = 0; i < (size_t)q->nsites; i++) {
        const uint8_t *e = f + STATE_HDR + i * STATE_SITE;
        float lo, hi;
        memcpy(&lo, e, 4);
        memcpy(&hi, e + 4, 4);
        if (!get32(e + 8)) continue;
        if ((s = et_qat_set_range(q, (int)i, lo, hi)) != ET_OK) {
            et_error_set(err, s, "%s: site %zu has a bad range [%g, %g]", path, i, (double)lo, (double)hi);
            goto out;
        }
    }
    q->commits = (unsigned long)commits;
out:
    free(f);
    return s;
}

// --- export and its evaluation

et_status et_qat_train_export(et_qat_train *h, const et_gpt *m, const void *tokenizer,
                              size_t tokenizer_bytes, const char *path, et_error *err)
{
    et_qmodel qm;
    float *params = malloc(sizeof(float) * m->nparams);
    et_status s;
    memset(&qm, 0, sizeof qm);
    if (!params) return et_error_set(err, ET_ERR_NOMEM, "out of memory");
    qm.cfg = m->cfg;
    qm.mode = h->q.mode;
    qm.src_nparams = m->nparams;
    qm.tokenizer = (void *)tokenizer;
    qm.tokenizer_bytes = tokenizer_bytes;
    if (qm.mode == ET_QMODE_W8A8) {
        qm.calib_method = ET_QAT_CALIB_METHOD;
        qm.calib_batches = (uint32_t)h->q.commits;
    }
    if ((s = et_gpt_get_params(m, params)) != ET_OK) {
        et_error_set(err, s, "cannot read the model's parameters: %s", et_status_str(s));
        goto out;
    }
    if ((s = et_qgpt_tensors(&qm.cfg, qm.mode, NULL, &qm.blob_bytes)) != ET_OK ||
        posix_memalign(&qm.blob, ET_ALIGN, qm.blob_bytes) != 0) {
        qm.blob = NULL;
        s = et_error_set(err, ET_ERR_NOMEM, "out of memory for the int8 model");
        goto out;
    }
    if ((s = et_qat_export(&h->q, params, qm.blob, qm.blob_bytes)) != ET_OK) {
        et_error_set(err, s, "%s: cannot export the int8 model: %s%s", path, et_status_str(s),
                     s == ET_ERR_STATE ? " (no training step recorded the activation ranges)" : "");
        goto out;
    }
    s = et_qmodel_save(path, &qm, err);
out:
    free(params);
    free(qm.blob);
    return s;
}

et_status et_qat_train_eval_file(const char *path, const uint16_t *tokens, size_t n, int B, int T,
                                 int batches, int threads, float *loss, et_error *err)
{
    et_qmodel qm;
    et_qruntime rt;
    et_status s;
    if ((s = et_qmodel_load(path, &qm, err)) != ET_OK) return s;
    if ((s = et_qruntime_open(&rt, &qm, B, T, threads, err)) == ET_OK) {
        s = et_eval_windows(et_fwd_qgpt, &rt.model, tokens, n, B, T, batches, loss, NULL, NULL, err);
        et_qruntime_close(&rt);
    }
    et_qmodel_free(&qm);
    return s;
}
