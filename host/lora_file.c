/* lora_file.c - save and load LoRA adapter files (et_lora_file.h). Layout (little-endian):
 *   0  8  magic "ETLORA\0\0"      8 4 u32 version = 3     12 4 u32 rank (0: no adapters)
 *  16  4  u32 trained layers     20 4 u32 model layers   24 4 u32 channels
 *  28  4  f32 alpha scale (alpha / r; 0 with rank 0)     32 8 u64 nparams
 *  40  4  u32 payload CRC of the image trained on        44 4 u32 targets (1 qkv | 2 fc | 4 LayerNorms | 8 head)
 *  48  4  u32 heads              52 4 u32 vocab          56 4 u32 head classes K (0: none)
 *  60  4  u32 head pooling (0 mean, 1 last token)
 *  64  4*n  f32 adapters (per adapted layer: qkv A (r,C), qkv B (3C,r), fc A (r,C), fc B (4C,r));
 *             with target 4, then per adapted layer ln1w, ln1b, ln2w, ln2b (C each), then lnfw, lnfb;
 *             with target 8, then the head's W (K,C) and b (K)
 *  end 4  u32 CRC-32 of everything before it
 * Still read: version 2 (bytes 56..63 reserved, 0: no head; rank >= 1) and version 1 (the
 * header stops at 40 bytes: no image binding, no heads/vocab).
 * Deliberately avoids: optimizer state (a finished fine-tune needs only the adapters). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_lora_file.h"
#include "et_qmodel.h"
#include "et_crc32.h"

#define HDR1 40
#define HDR2 64

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

et_status et_lora_save(const char *path, const et_lora *s, et_error *err)
{
    size_t n = HDR2 + s->nparams * 4 + 4;
    uint8_t *b = calloc(1, n);
    uint32_t u, crc;
    uint64_t np = s->nparams;
    et_status st;
    if (!b) return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", path);
    memcpy(b, ET_LORA_FILE_MAGIC, 8);
    u = ET_LORA_FILE_VERSION; memcpy(b + 8, &u, 4);
    u = (uint32_t)s->lc.rank; memcpy(b + 12, &u, 4); /* s->lc.layers: resolved by et_lora_create */
    u = (uint32_t)s->lc.layers; memcpy(b + 16, &u, 4);
    u = (uint32_t)s->cfg.layers; memcpy(b + 20, &u, 4);
    u = (uint32_t)s->cfg.channels; memcpy(b + 24, &u, 4);
    memcpy(b + 28, &s->scale, 4);
    memcpy(b + 32, &np, 8);
    memcpy(b + 40, &s->image_crc, 4);
    u = (s->lc.rank ? ET_LORA_FILE_T_QKV | ET_LORA_FILE_T_FC : 0u) | (s->ln ? ET_LORA_FILE_T_LN : 0u) |
        (s->hw ? ET_LORA_FILE_T_HEAD : 0u);
    memcpy(b + 44, &u, 4);
    u = (uint32_t)s->cfg.heads; memcpy(b + 48, &u, 4);
    u = (uint32_t)s->cfg.vocab; memcpy(b + 52, &u, 4);
    u = (uint32_t)s->lc.head_classes; memcpy(b + 56, &u, 4);
    u = (uint32_t)s->lc.head_pool; memcpy(b + 60, &u, 4);
    memcpy(b + HDR2, s->params, s->nparams * 4);
    crc = et_crc32(b, n - 4);
    memcpy(b + n - 4, &crc, 4);
    st = et_qmodel_write_file(path, b, n, err);
    free(b);
    return st;
}

/* reads the header into h (HDR2 bytes, zero-padded for version 1); *hn = its length */
static et_status read_header(FILE *fp, const char *path, uint8_t h[HDR2], size_t *hn, et_lora_file_info *in,
                             et_error *err)
{
    uint64_t per;
    int ad, trained;
    memset(h, 0, HDR2);
    if (fread(h, 1, HDR1, fp) != HDR1) return et_error_set(err, ET_ERR_TRUNCATED, "%s: truncated header", path);
    if (memcmp(h, ET_LORA_FILE_MAGIC, 8)) return et_error_set(err, ET_ERR_FORMAT, "%s: not an adapter file (bad magic)", path);
    memset(in, 0, sizeof *in);
    in->version = rd32(h + 8);
    if (in->version < 1 || in->version > 3)
        return et_error_set(err, ET_ERR_UNSUPPORTED, "%s: version %u not supported (this build reads 1 to 3)", path,
                            in->version);
    *hn = HDR1;
    if (in->version >= 2) {
        if (fread(h + HDR1, 1, HDR2 - HDR1, fp) != HDR2 - HDR1)
            return et_error_set(err, ET_ERR_TRUNCATED, "%s: truncated header", path);
        *hn = HDR2;
    }
    in->rank = (int)rd32(h + 12);
    in->layers = (int)rd32(h + 16);
    in->model_layers = (int)rd32(h + 20);
    in->channels = (int)rd32(h + 24);
    memcpy(&in->scale, h + 28, 4);
    memcpy(&in->nparams, h + 32, 8);
    in->image_crc = rd32(h + 40);
    in->targets = in->version >= 2 ? rd32(h + 44) : ET_LORA_FILE_T_QKV | ET_LORA_FILE_T_FC;
    in->heads = (int)rd32(h + 48);
    in->vocab = (int)rd32(h + 52);
    in->head_classes = (int)rd32(h + 56); /* reserved (0) before version 3 */
    in->head_pool = (int)rd32(h + 60);
    ad = (in->targets & (ET_LORA_FILE_T_QKV | ET_LORA_FILE_T_FC)) != 0;
    trained = ad || (in->targets & ET_LORA_FILE_T_LN); /* blocks train: layers >= 1; else layers 0 */
    if (rd32(h + 12) > 1024 || (rd32(h + 12) == 0) != !ad || (in->version < 3 && rd32(h + 12) < 1) ||
        rd32(h + 20) < 1 || rd32(h + 20) > 1024 || rd32(h + 16) > rd32(h + 20) || (rd32(h + 16) >= 1) != trained ||
        rd32(h + 24) < 1 || rd32(h + 24) > 16384 ||
        (ad ? !(in->scale > 0 && in->scale < 1e30f) : in->scale != 0.0f) ||
        (in->version < 3 && (rd32(h + 56) || rd32(h + 60))))
        return et_error_set(err, ET_ERR_FORMAT, "%s: malformed header (rank %u, layers %u of %u, C=%u, scale %g, "
                            "targets 0x%x)", path, rd32(h + 12), rd32(h + 16), rd32(h + 20), rd32(h + 24),
                            (double)in->scale, in->targets);
    if ((in->targets & ~(uint32_t)(ET_LORA_FILE_T_LN | ET_LORA_FILE_T_HEAD)) != (ad ? 3u : 0u) || !in->targets ||
        (in->version < 3 && (in->targets & ~ET_LORA_FILE_T_LN) != 3u))
        return et_error_set(err, ET_ERR_UNSUPPORTED, "%s: adapts targets 0x%x; this build applies qkv + fc (0x3), "
                            "LayerNorms (0x4) and a task head (0x8, version 3)", path, in->targets);
    if ((in->targets & ET_LORA_FILE_T_HEAD) ?
            (in->head_classes < 2 || in->head_classes > ET_LORA_MAX_CLASSES || (in->head_pool != ET_LORA_POOL_MEAN &&
                                                                               in->head_pool != ET_LORA_POOL_LAST)) :
            (in->head_classes || in->head_pool))
        return et_error_set(err, ET_ERR_FORMAT, "%s: malformed head (%d classes, pooling %d; expected 2..%d classes, "
                            "pooling 0 or 1, or no head and both 0)", path, in->head_classes, in->head_pool,
                            ET_LORA_MAX_CLASSES);
    per = 9u * (uint64_t)in->channels * (uint64_t)in->rank * (uint64_t)in->layers;
    if (in->targets & ET_LORA_FILE_T_LN) per += (uint64_t)in->channels * (4u * (uint64_t)in->layers + 2u);
    if (in->targets & ET_LORA_FILE_T_HEAD) per += (uint64_t)in->head_classes * ((uint64_t)in->channels + 1u);
    if (in->nparams != per)
        return et_error_set(err, ET_ERR_FORMAT, "%s: %llu parameters, but rank %d on %d layers of C=%d%s%s takes %llu", path,
                            (unsigned long long)in->nparams, in->rank, in->layers, in->channels,
                            in->targets & ET_LORA_FILE_T_LN ? " with LayerNorms" : "",
                            in->targets & ET_LORA_FILE_T_HEAD ? " and a head" : "", (unsigned long long)per);
    return ET_OK;
}

et_status et_lora_file_info_read(const char *path, et_lora_file_info *info, et_error *err)
{
    FILE *fp = fopen(path, "rb");
    uint8_t h[HDR2];
    size_t hn;
    et_status st;
    if (!fp) return et_error_set(err, ET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    st = read_header(fp, path, h, &hn, info, err);
    fclose(fp);
    return st;
}

/* "rank 4 on the last 2 layers (scale 1, LayerNorms, a 2-class head over the mean)" */
static void describe(char *out, size_t cap, int rank, int layers, float scale, int ln, int classes, int pool)
{
    char hd[64] = "";
    if (classes) snprintf(hd, sizeof hd, ", a %d-class head over the %s", classes, pool ? "last token" : "mean");
    snprintf(out, cap, "rank %d on the last %d layers (scale %g%s%s)", rank, layers, (double)scale, ln ? ", LayerNorms" : "",
             hd);
}

et_status et_lora_load(const char *path, et_lora *s, et_error *err)
{
    FILE *fp = fopen(path, "rb");
    uint8_t h[HDR2];
    size_t hn;
    uint32_t crc, stored;
    et_lora_file_info in;
    float *tmp;
    et_status st;
    if (!fp) return et_error_set(err, ET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if ((st = read_header(fp, path, h, &hn, &in, err)) != ET_OK) { fclose(fp); return st; }
    if (in.model_layers != s->cfg.layers || in.channels != s->cfg.channels ||
        (in.version >= 2 && (in.heads != s->cfg.heads || in.vocab != s->cfg.vocab))) {
        fclose(fp);
        return et_error_set(err, ET_ERR_INVALID, "%s: adapters for a model of L=%d, C=%d, NH=%d, V=%d; this image is L=%d, "
                            "C=%d, NH=%d, V=%d", path, in.model_layers, in.channels, in.heads, in.vocab, s->cfg.layers,
                            s->cfg.channels, s->cfg.heads, s->cfg.vocab);
    }
    if (in.rank != s->lc.rank || in.layers != s->lc.layers || in.nparams != s->nparams || in.scale != s->scale ||
        !(in.targets & ET_LORA_FILE_T_LN) != !s->ln || in.head_classes != s->lc.head_classes ||
        in.head_pool != (int)s->lc.head_pool) {
        char a[128], b[128], hd[64] = "";
        if (in.head_classes)
            snprintf(hd, sizeof hd, " --head classes=%d,pool=%s", in.head_classes, in.head_pool ? "last" : "mean");
        describe(a, sizeof a, in.rank, in.layers, in.scale, (in.targets & ET_LORA_FILE_T_LN) != 0, in.head_classes,
                 in.head_pool);
        describe(b, sizeof b, s->lc.rank, s->lc.layers, s->scale, s->ln != NULL, s->lc.head_classes, (int)s->lc.head_pool);
        fclose(fp);
        return et_error_set(err, ET_ERR_INVALID, "%s: adapters of %s; this session has %s: pass --lora %d --lora-layers %d%s%s",
                            path, a, b, in.rank, in.layers, in.targets & ET_LORA_FILE_T_LN ? " --train-ln" : "", hd);
    }
    if (in.version >= 2 && in.image_crc != s->image_crc) {
        fclose(fp);
        return et_error_set(err, ET_ERR_INVALID, "%s: adapters trained on the image with payload CRC 0x%08x; this image's "
                            "is 0x%08x (another base model, or the image they were already merged into)", path,
                            in.image_crc, s->image_crc);
    }
    if (!(tmp = malloc(in.nparams * 4 + 1))) { fclose(fp); return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", path); }
    if (fread(tmp, 4, in.nparams, fp) != in.nparams || fread(&stored, 4, 1, fp) != 1) {
        fclose(fp); free(tmp);
        return et_error_set(err, ET_ERR_TRUNCATED, "%s: truncated", path);
    }
    if (fgetc(fp) != EOF) { fclose(fp); free(tmp); return et_error_set(err, ET_ERR_FORMAT, "%s: bytes after the checksum", path); }
    fclose(fp);
    crc = et_crc32_update(et_crc32(h, hn), tmp, in.nparams * 4);
    if (crc != stored) { free(tmp); return et_error_set(err, ET_ERR_CRC, "%s: checksum mismatch: stored 0x%08x, computed 0x%08x", path, stored, crc); }
    memcpy(s->params, tmp, in.nparams * 4);
    free(tmp);
    return ET_OK;
}

et_status et_lora_open(const char *path, const et_image *img, const char *img_name, int T, et_lora *s, void **arena,
                       et_error *err)
{
    et_lora_file_info in;
    et_lora_config lc = {1, 1, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN}; /* no file: B = 0, the image alone */
    et_lora_plan p;
    et_arena a;
    et_status st;
    *arena = NULL;
    if (path) {
        if ((st = et_lora_file_info_read(path, &in, err)) != ET_OK) return st;
        if (in.model_layers != img->cfg.layers || in.channels != img->cfg.channels ||
            (in.version >= 2 && (in.heads != img->cfg.heads || in.vocab != img->cfg.vocab)))
            return et_error_set(err, ET_ERR_INVALID, "%s: adapters for a model of L=%d, C=%d, NH=%d, V=%d; %s is L=%d, "
                                "C=%d, NH=%d, V=%d", path, in.model_layers, in.channels, in.heads, in.vocab, img_name,
                                img->cfg.layers, img->cfg.channels, img->cfg.heads, img->cfg.vocab);
        lc.rank = in.rank;
        lc.layers = in.layers;
        lc.alpha = in.scale * (float)in.rank;
        lc.train_ln = (in.targets & ET_LORA_FILE_T_LN) ? 1 : 0;
        lc.head_classes = in.head_classes;
        lc.head_pool = in.head_pool ? ET_LORA_POOL_LAST : ET_LORA_POOL_MEAN;
    }
    if ((st = et_lora_plan_compute(img, &lc, T, &p)) != ET_OK)
        return et_error_set(err, st, "%s: cannot run %s at T=%d (context %d, mode %s): %s", img_name,
                            path ? path : "the image", T, img->cfg.context,
                            img->mode == ET_QMODE_W8A32 ? "w8a32" : "w8a8: images run and train in w8a32 only",
                            et_status_str(st));
    if (posix_memalign(arena, 64, p.total) != 0) {
        *arena = NULL;
        return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory for a %zu-byte arena", img_name, p.total);
    }
    et_arena_init(&a, *arena, p.total);
    if ((st = et_lora_create(s, img, &lc, T, 1, &a)) != ET_OK)
        return et_error_set(err, st, "%s: cannot create a session: %s", img_name, et_status_str(st));
    if (!path) return ET_OK;
    s->scale = in.scale; /* the file's exact scale (alpha round-trips through a product) */
    return et_lora_load(path, s, err);
}
