/* lora_file.c - save and load LoRA adapter files (et_lora_file.h). Layout (little-endian):
 *   0  8  magic "ETLORA\0\0"      8 4 u32 version = 1     12 4 u32 rank
 *  16  4  u32 adapted layers     20 4 u32 model layers   24 4 u32 channels
 *  28  4  f32 alpha scale (alpha / r)                    32 8 u64 nparams
 *  40  4*n  f32 adapters (per adapted layer: qkv A (r,C), qkv B (3C,r), fc A (r,C), fc B (4C,r))
 *  end 4  u32 CRC-32 of everything before it
 * Deliberately avoids: optimizer state (a finished fine-tune needs only the adapters). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_lora_file.h"
#include "et_qmodel.h"
#include "et_crc32.h"

#define HDR 40

et_status et_lora_save(const char *path, const et_lora *s, et_error *err)
{
    size_t n = HDR + s->nparams * 4 + 4;
    uint8_t *b = calloc(1, n);
    uint32_t u, crc;
    uint64_t np = s->nparams;
    et_status st;
    if (!b) return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", path);
    memcpy(b, ET_LORA_FILE_MAGIC, 8);
    u = ET_LORA_FILE_VERSION; memcpy(b + 8, &u, 4);
    u = (uint32_t)s->lc.rank; memcpy(b + 12, &u, 4);
    u = (uint32_t)s->lc.layers; memcpy(b + 16, &u, 4);
    u = (uint32_t)s->cfg.layers; memcpy(b + 20, &u, 4);
    u = (uint32_t)s->cfg.channels; memcpy(b + 24, &u, 4);
    memcpy(b + 28, &s->scale, 4);
    memcpy(b + 32, &np, 8);
    memcpy(b + HDR, s->params, s->nparams * 4);
    crc = et_crc32(b, n - 4);
    memcpy(b + n - 4, &crc, 4);
    st = et_qmodel_write_file(path, b, n, err);
    free(b);
    return st;
}

et_status et_lora_load(const char *path, et_lora *s, et_error *err)
{
    FILE *fp = fopen(path, "rb");
    uint8_t h[HDR];
    uint32_t v[5], crc, stored;
    uint64_t np;
    float sc;
    float *tmp;
    if (!fp) return et_error_set(err, ET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fread(h, 1, HDR, fp) != HDR) { fclose(fp); return et_error_set(err, ET_ERR_TRUNCATED, "%s: truncated header", path); }
    if (memcmp(h, ET_LORA_FILE_MAGIC, 8)) { fclose(fp); return et_error_set(err, ET_ERR_FORMAT, "%s: not an adapter file (bad magic)", path); }
    memcpy(v, h + 8, 20);
    memcpy(&sc, h + 28, 4);
    memcpy(&np, h + 32, 8);
    if (v[0] != ET_LORA_FILE_VERSION) { fclose(fp); return et_error_set(err, ET_ERR_UNSUPPORTED, "%s: version %u not supported (this build reads 1)", path, v[0]); }
    if (v[1] != (uint32_t)s->lc.rank || v[2] != (uint32_t)s->lc.layers || v[3] != (uint32_t)s->cfg.layers ||
        v[4] != (uint32_t)s->cfg.channels || np != s->nparams || sc != s->scale) {
        fclose(fp);
        return et_error_set(err, ET_ERR_INVALID, "%s: adapters for rank %u on %u of %u layers, C=%u; this session has rank %d on %d of %d layers, C=%d",
                            path, v[1], v[2], v[3], v[4], s->lc.rank, s->lc.layers, s->cfg.layers, s->cfg.channels);
    }
    if (!(tmp = malloc(np * 4))) { fclose(fp); return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", path); }
    if (fread(tmp, 4, np, fp) != np || fread(&stored, 4, 1, fp) != 1) {
        fclose(fp); free(tmp);
        return et_error_set(err, ET_ERR_TRUNCATED, "%s: truncated", path);
    }
    fclose(fp);
    crc = et_crc32_update(et_crc32(h, HDR), tmp, np * 4);
    if (crc != stored) { free(tmp); return et_error_set(err, ET_ERR_CRC, "%s: checksum mismatch: stored 0x%08x, computed 0x%08x", path, stored, crc); }
    memcpy(s->params, tmp, np * 4);
    free(tmp);
    return ET_OK;
}
