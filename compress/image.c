/* image.c - device image builder and in-place loader (et_image.h; layout in docs/EDGE.md).
 *
 * The loader reads every header field byte by byte (little-endian, no unaligned loads),
 * checks the header CRC before believing any size, checks the payload CRC over exactly
 * the bytes the (now trusted) header names, then the config and every section and
 * tensor bound with 64-bit arithmetic that cannot wrap for any header value, and only
 * then builds pointers. The builder is freestanding too, so a board can re-pack an
 * image (for example after merging adapters) without a host.
 * Deliberately avoids: copying weights (open returns views), and any tolerance: an
 * image is either exactly the canonical layout for its config or it is refused.
 */
#include "et_image.h"
#include "et_crc32.h"

#define HDR ET_IMAGE_HEADER_BYTES
#define ENT ET_IMAGE_ENTRY_BYTES
#define NT ET_QGPT_NTENSORS
/* The fuzz build (tests/fuzz/fuzz.mk) ignores checksum mismatches, so the fuzzer reaches
 * the structural checks behind them instead of stopping at the CRC. */
#ifdef ET_IMAGE_FUZZING
#define CRC_BAD(stored, computed) ((void)(computed), (void)(stored), 0)
#else
#define CRC_BAD(stored, computed) ((stored) != (computed))
#endif
#define A64(x) (((x) + 63u) & ~(uint64_t)63u)

/* header field offsets */
enum {
    H_MAGIC = 0, H_VERSION = 8, H_HDRBYTES = 12, H_FLAGS = 16, H_MODE = 20, H_CFG = 24,
    H_NTENS = 48, H_ENTBYTES = 52, H_IMGBYTES = 56, H_TOKOFF = 64, H_TOKN = 72,
    H_TABOFF = 80, H_TABN = 88, H_BLOBOFF = 96, H_BLOBN = 104, H_PCRC = 112, H_HCRC = 116,
    H_RESV = 120
};

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

/* limits well inside what et_qgpt_tensors can size without overflow on a 32-bit target */
static int cfg_sane(const et_gpt_config *c)
{
    return c->vocab >= 1 && c->vocab <= 65535 && c->context >= 1 && c->context <= 65536 &&
           c->layers >= 1 && c->layers <= 1024 && c->heads >= 1 && c->channels >= 1 &&
           c->channels <= 16384 && c->channels % c->heads == 0 &&
           c->vocab_padded == (c->vocab + 63) / 64 * 64 &&
           !c->head_dim && !c->ffn; /* GPT-2 widths only: the header has no field for others */
}

/* a lower bound on the blob's bytes (one per int8 weight), in 64 bits: compared with the
 * image size before any size_t product is formed */
static uint64_t weights_lower_bound(const et_gpt_config *c)
{
    uint64_t C = (uint64_t)c->channels;
    return (uint64_t)c->layers * 12u * C * C + (uint64_t)c->vocab_padded * C + (uint64_t)c->context * C;
}

typedef struct { uint64_t tok_off, tab_off, blob_off, total; } layout;

static void lay(layout *l, uint64_t tok, uint64_t blob)
{
    l->tok_off = tok ? HDR : 0;
    l->tab_off = A64((uint64_t)HDR + tok);
    l->blob_off = A64(l->tab_off + (uint64_t)NT * ENT);
    l->total = A64(l->blob_off + blob);
}

et_status et_image_size(const et_gpt_config *cfg, et_qmode mode, size_t tokenizer_bytes,
                        size_t *bytes)
{
    et_gpt_config c;
    size_t blob;
    layout l;
    if (!cfg || !bytes) return ET_ERR_INVALID;
    c = *cfg;
    if (et_gpt_config_check(&c) != ET_OK || !cfg_sane(&c)) return ET_ERR_INVALID;
    if (et_qgpt_tensors(&c, mode, 0, &blob) != ET_OK) return ET_ERR_INVALID;
    lay(&l, tokenizer_bytes, blob);
    if (l.total > (uint64_t)(size_t)-1) return ET_ERR_INVALID;
    *bytes = (size_t)l.total;
    return ET_OK;
}

et_status et_image_build(void *out, size_t cap, const et_gpt_config *cfg, et_qmode mode,
                         const void *blob, size_t blob_bytes, const void *tok, size_t tok_bytes,
                         size_t *written)
{
    et_qtensor_info t[NT];
    et_gpt_config c;
    size_t need, bb;
    layout l;
    uint8_t *o = (uint8_t *)out;
    int i, k;
    if (!out || !cfg || !blob || ((uintptr_t)out & 63u) || (!tok && tok_bytes)) return ET_ERR_INVALID;
    c = *cfg;
    if (et_gpt_config_check(&c) != ET_OK || !cfg_sane(&c)) return ET_ERR_INVALID;
    if (et_qgpt_tensors(&c, mode, t, &bb) != ET_OK || blob_bytes != bb) return ET_ERR_INVALID;
    if (et_image_size(&c, mode, tok_bytes, &need) != ET_OK) return ET_ERR_INVALID;
    if (cap < need) return ET_ERR_NOMEM;
    lay(&l, tok_bytes, bb);
    ET_MEMSET(o, 0, need);
    ET_MEMCPY(o + H_MAGIC, ET_IMAGE_MAGIC, 8);
    wr32(o + H_VERSION, ET_IMAGE_VERSION);
    wr32(o + H_HDRBYTES, HDR);
    wr32(o + H_MODE, (uint32_t)mode);
    wr32(o + H_CFG + 0, (uint32_t)c.vocab);
    wr32(o + H_CFG + 4, (uint32_t)c.vocab_padded);
    wr32(o + H_CFG + 8, (uint32_t)c.context);
    wr32(o + H_CFG + 12, (uint32_t)c.layers);
    wr32(o + H_CFG + 16, (uint32_t)c.heads);
    wr32(o + H_CFG + 20, (uint32_t)c.channels);
    wr32(o + H_NTENS, NT);
    wr32(o + H_ENTBYTES, ENT);
    wr64(o + H_IMGBYTES, l.total);
    wr64(o + H_TOKOFF, l.tok_off);
    wr64(o + H_TOKN, tok_bytes);
    wr64(o + H_TABOFF, l.tab_off);
    wr64(o + H_TABN, (uint64_t)NT * ENT);
    wr64(o + H_BLOBOFF, l.blob_off);
    wr64(o + H_BLOBN, bb);
    if (tok_bytes) ET_MEMCPY(o + l.tok_off, tok, tok_bytes);
    for (i = 0; i < NT; i++) {
        uint8_t *e = o + l.tab_off + (size_t)i * ENT;
        for (k = 0; k < 15 && t[i].name[k]; k++) e[k] = (uint8_t)t[i].name[k];
        wr32(e + 16, (uint32_t)t[i].dtype);
        wr64(e + 24, t[i].count);
        wr64(e + 32, t[i].offset);
    }
    ET_MEMCPY(o + l.blob_off, blob, bb);
    wr32(o + H_PCRC, et_crc32(o + HDR, need - HDR));
    wr32(o + H_HCRC, et_crc32(o, H_HCRC));
    if (written) *written = need;
    return ET_OK;
}

static et_status refuse(et_image *img, et_image_fault f, et_status s)
{
    img->fault = f;
    return s;
}

static int zero(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* section [off, off+len) inside [HDR, total), 64-aligned start, and not wrapping */
static int in_bounds(uint64_t off, uint64_t len, uint64_t total)
{
    return off >= HDR && (off & 63u) == 0 && off <= total && len <= total - off;
}

static et_status check_table(et_image *img, const uint8_t *tab, size_t blob_bytes)
{
    et_qtensor_info t[NT];
    size_t bb;
    int i, k;
    if (et_qgpt_tensors(&img->cfg, img->mode, t, &bb) != ET_OK || bb != blob_bytes)
        return refuse(img, ET_IMAGE_F_TABLE, ET_ERR_FORMAT);
    for (i = 0; i < NT; i++) {
        const uint8_t *e = tab + (size_t)i * ENT;
        uint64_t cnt = rd64(e + 24), off = rd64(e + 32);
        for (k = 0; k < 16; k++) {
            uint8_t want = (uint8_t)(k < 15 && t[i].name[k] ? t[i].name[k] : 0);
            if (e[k] != want) return refuse(img, ET_IMAGE_F_TABLE, ET_ERR_FORMAT);
            if (!want) break;
        }
        if (k < 15 && !zero(e + k, 16 - (size_t)k)) return refuse(img, ET_IMAGE_F_TABLE, ET_ERR_FORMAT);
        if (rd32(e + 16) != (uint32_t)t[i].dtype || rd32(e + 20) || !zero(e + 40, 8) ||
            cnt != t[i].count || off != t[i].offset || off > bb ||
            cnt * (t[i].dtype == ET_QDT_S8 ? 1u : 4u) > bb - off)
            return refuse(img, ET_IMAGE_F_TABLE, ET_ERR_FORMAT);
    }
    return ET_OK;
}

et_status et_image_open(et_image *img, const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    uint64_t total, tok_off, tok_n, tab_off, tab_n, blob_off, blob_n;
    uint32_t ver, mode;
    layout l;
    et_status s;
    if (!img) return ET_ERR_INVALID;
    ET_MEMSET(img, 0, sizeof *img);
    if (!p || ((uintptr_t)p & 63u)) return refuse(img, ET_IMAGE_F_ARGS, ET_ERR_INVALID);
    if (n < HDR) return refuse(img, ET_IMAGE_F_SHORT, ET_ERR_TRUNCATED);
    if (!(p[0] == 'E' && p[1] == 'T' && p[2] == 'I' && p[3] == 'M' && p[4] == 'A' && p[5] == 'G' &&
          p[6] == 'E' && p[7] == 0))
        return refuse(img, ET_IMAGE_F_MAGIC, ET_ERR_FORMAT);
    ver = rd32(p + H_VERSION);
    if (ver != ET_IMAGE_VERSION) return refuse(img, ET_IMAGE_F_VERSION, ET_ERR_UNSUPPORTED);
    if (CRC_BAD(rd32(p + H_HCRC), et_crc32(p, H_HCRC))) return refuse(img, ET_IMAGE_F_HEADER_CRC, ET_ERR_CRC);
    if (rd32(p + H_HDRBYTES) != HDR || rd32(p + H_FLAGS) || rd32(p + H_NTENS) != NT ||
        rd32(p + H_ENTBYTES) != ENT || !zero(p + H_RESV, HDR - H_RESV))
        return refuse(img, ET_IMAGE_F_HEADER, ET_ERR_FORMAT);
    total = rd64(p + H_IMGBYTES);
    if (total < HDR || (total & 63u)) return refuse(img, ET_IMAGE_F_SIZE, ET_ERR_FORMAT);
    mode = rd32(p + H_MODE);
    img->cfg.vocab = (int)rd32(p + H_CFG);
    img->cfg.vocab_padded = (int)rd32(p + H_CFG + 4);
    img->cfg.context = (int)rd32(p + H_CFG + 8);
    img->cfg.layers = (int)rd32(p + H_CFG + 12);
    img->cfg.heads = (int)rd32(p + H_CFG + 16);
    img->cfg.channels = (int)rd32(p + H_CFG + 20);
    if ((mode != ET_QMODE_W8A8 && mode != ET_QMODE_W8A32) || rd32(p + H_CFG) > 65535u ||
        rd32(p + H_CFG + 8) > 65536u || rd32(p + H_CFG + 12) > 1024u || rd32(p + H_CFG + 16) > 16384u ||
        rd32(p + H_CFG + 20) > 16384u || !cfg_sane(&img->cfg) ||
        weights_lower_bound(&img->cfg) > total)
        return refuse(img, ET_IMAGE_F_CONFIG, ET_ERR_RANGE);
    img->mode = (et_qmode)mode;
    tok_off = rd64(p + H_TOKOFF); tok_n = rd64(p + H_TOKN);
    tab_off = rd64(p + H_TABOFF); tab_n = rd64(p + H_TABN);
    blob_off = rd64(p + H_BLOBOFF); blob_n = rd64(p + H_BLOBN);
    if ((tok_n ? !in_bounds(tok_off, tok_n, total) : tok_off != 0) || !in_bounds(tab_off, tab_n, total) ||
        !in_bounds(blob_off, blob_n, total) || tab_n != (uint64_t)NT * ENT)
        return refuse(img, ET_IMAGE_F_SECTION, ET_ERR_FORMAT);
    lay(&l, tok_n, blob_n);
    if (tok_off != l.tok_off || tab_off != l.tab_off || blob_off != l.blob_off || total != l.total)
        return refuse(img, ET_IMAGE_F_SECTION, ET_ERR_FORMAT);
    if ((uint64_t)n < total) return refuse(img, ET_IMAGE_F_SHORT, ET_ERR_TRUNCATED);
    /* total <= n, so it fits size_t from here on; every header-derived check came first */
    if (CRC_BAD(rd32(p + H_PCRC), et_crc32(p + HDR, (size_t)total - HDR)))
        return refuse(img, ET_IMAGE_F_CRC, ET_ERR_CRC);
    if ((s = check_table(img, p + tab_off, (size_t)blob_n)) != ET_OK) return s;
    if (et_qgpt_view(&img->cfg, img->mode, p + blob_off, (size_t)blob_n, &img->w) != ET_OK)
        return refuse(img, ET_IMAGE_F_TABLE, ET_ERR_FORMAT);
    img->base = p;
    img->bytes = (size_t)total;
    img->tokenizer = tok_n ? p + tok_off : 0;
    img->tokenizer_bytes = (size_t)tok_n;
    img->blob = p + blob_off;
    img->blob_bytes = (size_t)blob_n;
    img->payload_crc = rd32(p + H_PCRC);
    img->fault = ET_IMAGE_OK;
    return ET_OK;
}

const char *et_image_fault_str(et_image_fault f)
{
    switch (f) {
    case ET_IMAGE_OK: return "ok";
    case ET_IMAGE_F_ARGS: return "no image, or not 64-byte aligned";
    case ET_IMAGE_F_SHORT: return "truncated: fewer bytes than the header says";
    case ET_IMAGE_F_MAGIC: return "not a device image (bad magic)";
    case ET_IMAGE_F_VERSION: return "unsupported image version";
    case ET_IMAGE_F_HEADER: return "malformed header (size, flags, table entry size or reserved bytes)";
    case ET_IMAGE_F_HEADER_CRC: return "header checksum mismatch";
    case ET_IMAGE_F_SIZE: return "image size not a multiple of 64";
    case ET_IMAGE_F_CRC: return "payload checksum mismatch (the image is corrupt)";
    case ET_IMAGE_F_CONFIG: return "config out of range";
    case ET_IMAGE_F_SECTION: return "a section offset or length is out of bounds or not canonical";
    case ET_IMAGE_F_TABLE: return "tensor table disagrees with the config";
    }
    return "unknown fault";
}
