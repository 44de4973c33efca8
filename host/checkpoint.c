/* checkpoint.c - saving and loading edgetrain and llm.c checkpoints (et_ckpt.h).
 *
 * Saves stream through one 64 KiB buffer into "<path>.tmp.<pid>", fsync it and rename
 * it over the target; any failure removes the temporary file and leaves the target as
 * it was. Loads check the whole header against the file's length (with overflow-safe
 * arithmetic) before allocating anything, read with a running CRC, and only then look
 * at the tensor table, so corruption is reported as a checksum error rather than as
 * whatever field it happened to hit. Byte layout: docs/FORMATS.md.
 *
 * Deliberately avoided: stdio for the data (we need the descriptor for fsync and want
 * every short read and write seen), global state, mmap, and any knowledge of the
 * model's tensor sizes beyond et_gpt_tensors() (the one place they are computed).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "et_ckpt.h"
#include "et_crc32.h"

/* Overridable allocation hooks (stb style), e.g. for failure-injection builds. */
#ifndef ET_CKPT_MALLOC
#define ET_CKPT_MALLOC(n) malloc(n)
#endif
#ifndef ET_CKPT_FREE
#define ET_CKPT_FREE(p) free(p)
#endif

// --- format constants (docs/FORMATS.md)

#define ET__HDR_BYTES 192u     /* edgetrain header */
#define ET__HDR_CRC_AT 188u    /* u32 CRC of header bytes [0, 188) */
#define ET__WIDTHS_AT 136u     /* version 2: i32 head_dim, i32 ffn */
#define ET__ENTRY_BYTES 64u    /* one tensor-table entry */
#define ET__NAME_BYTES 24u     /* NUL-padded name inside an entry */
#define ET__ALIGN 64u          /* every section starts at a multiple of this */
#define ET__F_ADAM 1u          /* flags: AdamW m and v present */
#define ET__F_TOKENIZER 2u     /* flags: tokenizer blob present */
#define ET__F_STATE 4u         /* flags: trainer-state blob present */
#define ET__F_ALL 7u
#define ET__LLMC_HDR_INTS 256u
#define ET__LLMC_HDR_BYTES (ET__LLMC_HDR_INTS * 4u)
#define ET__DIM_MAX (1 << 30)  /* largest config value accepted: keeps int math safe */
#define ET__IO_CHUNK ((size_t)1 << 16)

// --- little-endian encoding, overflow-safe arithmetic

static void et__put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static void et__put_u64(uint8_t *p, uint64_t v)
{
    et__put_u32(p, (uint32_t)v);
    et__put_u32(p + 4, (uint32_t)(v >> 32));
}
static uint32_t et__get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t et__get_u64(const uint8_t *p)
{
    return (uint64_t)et__get_u32(p) | (uint64_t)et__get_u32(p + 4) << 32;
}
static int32_t et__get_i32(const uint8_t *p)
{
    uint32_t u = et__get_u32(p);
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : (int32_t)(u - 0x80000000u) - INT32_MAX - 1;
}

static int et__host_le(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Files hold little-endian floats; on a big-endian host they are swapped in place. */
static void et__swap_floats(float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        u = (u >> 24) | ((u >> 8) & 0xFF00u) | ((u << 8) & 0xFF0000u) | (u << 24);
        memcpy(&x[i], &u, 4);
    }
}

static uint64_t et__sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t et__sat_mul(uint64_t a, uint64_t b)
{
    return (a && b > UINT64_MAX / a) ? UINT64_MAX : a * b;
}
static uint64_t et__align(uint64_t x) { return (x + (ET__ALIGN - 1)) & ~(uint64_t)(ET__ALIGN - 1); }

// --- config checks shared by both formats

static const char *const et__cfg_names[6] = {"vocab", "vocab_padded", "context",
                                             "layers", "heads", "channels"};

static void et__cfg_fields(const et_gpt_config *c, int v[6])
{
    v[0] = c->vocab; v[1] = c->vocab_padded; v[2] = c->context;
    v[3] = c->layers; v[4] = c->heads; v[5] = c->channels;
}

/* A lower bound on the parameter count (wte, wpe and the four matrices of each layer),
 * saturating: only a guard so that a corrupt header is rejected against the file
 * size before et_gpt_tensors(), which does the exact count, could overflow. */
static uint64_t et__nparams_floor(const et_gpt_config *c)
{
    uint64_t C = (uint64_t)c->channels;
    uint64_t A = c->head_dim ? et__sat_mul((uint64_t)c->heads, (uint64_t)c->head_dim) : C;
    uint64_t F = c->ffn ? (uint64_t)c->ffn : 4u * C;
    uint64_t n = et__sat_mul((uint64_t)c->vocab_padded, C);
    n = et__sat_add(n, et__sat_mul((uint64_t)c->context, C));
    /* per layer: qkv 3AC + attproj AC + fc and fcproj 2FC (12 C^2 for GPT-2) */
    return et__sat_add(n, et__sat_mul(et__sat_mul(et__sat_add(4u * A, 2u * F), C),
                                      (uint64_t)c->layers));
}

/* Range checks a config read from (or about to be written to) @p path, where vocab_padded
 * may be 0 (to be derived) when @p derive is set; @p pad_out gets the padded vocabulary
 * et_gpt_config_check() derives. @p what names the fields' origin in messages, @p bad
 * is the status for a failure (ET_ERR_RANGE for a file, ET_ERR_INVALID for a caller). */
static et_status et__cfg_check(const char *path, const char *what, const et_gpt_config *cfg,
                               int derive, int *pad_out, et_status bad, et_error *err)
{
    int v[6], i;
    et_gpt_config chk = *cfg;
    et__cfg_fields(cfg, v);
    for (i = 0; i < 6; i++) {
        if (i == 1 && derive && v[i] == 0) continue;
        if (v[i] <= 0 || v[i] > ET__DIM_MAX)
            return et_error_set(err, bad,
                                "%s: %s field '%s' is %d, expected 1..%d", path, what,
                                et__cfg_names[i], v[i], ET__DIM_MAX);
    }
    if (cfg->head_dim < 0 || cfg->head_dim > ET__DIM_MAX || cfg->ffn < 0 || cfg->ffn > ET__DIM_MAX)
        return et_error_set(err, bad, "%s: %s field '%s' is %d, expected 0..%d", path, what,
                            cfg->head_dim < 0 || cfg->head_dim > ET__DIM_MAX ? "head_dim" : "ffn",
                            cfg->head_dim < 0 || cfg->head_dim > ET__DIM_MAX ? cfg->head_dim
                                                                              : cfg->ffn,
                            ET__DIM_MAX);
    if (!cfg->head_dim && cfg->channels % cfg->heads != 0)
        return et_error_set(err, bad,
                            "%s: %s field 'channels' (%d) is not a multiple of 'heads' (%d)",
                            path, what, cfg->channels, cfg->heads);
    if (cfg->vocab_padded && cfg->vocab_padded < cfg->vocab)
        return et_error_set(err, bad,
                            "%s: %s field 'vocab_padded' (%d) is smaller than 'vocab' (%d)",
                            path, what, cfg->vocab_padded, cfg->vocab);
    chk.vocab_padded = 0;
    if (et_gpt_config_check(&chk) != ET_OK)
        return et_error_set(err, bad, "%s: %s config (V=%d, maxT=%d, L=%d, NH=%d, C=%d, "
                            "head_dim=%d, ffn=%d) rejected by et_gpt_config_check", path, what,
                            cfg->vocab, cfg->context, cfg->layers, cfg->heads, cfg->channels,
                            cfg->head_dim, cfg->ffn);
    *pad_out = chk.vocab_padded;
    return ET_OK;
}

/* Exact parameter count of a range-checked config whose et__nparams_floor() was
 * already bounded (so the count cannot overflow); fills @p info when given. */
static size_t et__nparams(const et_gpt_config *cfg, et_tensor_info info[ET_GPT_NTENSORS])
{
    et_tensor_info tmp[ET_GPT_NTENSORS];
    et_tensor_info *t = info ? info : tmp;
    memset(t, 0, sizeof(et_tensor_info) * ET_GPT_NTENSORS);
    return et_gpt_tensors(cfg, t);
}

// --- buffered writer with a running CRC, and the atomic save around it

typedef struct et__writer {
    int fd;
    uint8_t *buf;
    size_t len;
    uint64_t pos;  /* bytes handed to the writer so far */
    uint32_t crc;  /* CRC of the bytes flushed so far */
    int err;       /* errno of the first failure, 0 if none */
} et__writer;

static int et__write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(fd, p, k);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno ? errno : EIO;
        }
        if (w == 0) return EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int et__w_flush(et__writer *w)
{
    if (w->err) return -1;
    w->crc = et_crc32_update(w->crc, w->buf, w->len);
    w->err = et__write_all(w->fd, w->buf, w->len);
    w->len = 0;
    return w->err ? -1 : 0;
}

static int et__w_bytes(et__writer *w, const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    while (n > 0 && !w->err) {
        size_t k = ET__IO_CHUNK - w->len;
        if (k > n) k = n;
        if (p) memcpy(w->buf + w->len, p, k); else memset(w->buf + w->len, 0, k);
        w->len += k;
        w->pos += k;
        n -= k;
        if (p) p += k;
        if (w->len == ET__IO_CHUNK) et__w_flush(w);
    }
    return w->err ? -1 : 0;
}

static int et__w_floats(et__writer *w, const float *x, size_t n)
{
    if (et__host_le()) return et__w_bytes(w, x, n * sizeof(float));
    while (n > 0 && !w->err) {
        float tmp[256];
        size_t k = n > 256 ? 256 : n;
        memcpy(tmp, x, k * sizeof(float));
        et__swap_floats(tmp, k);
        et__w_bytes(w, tmp, k * sizeof(float));
        x += k;
        n -= k;
    }
    return w->err ? -1 : 0;
}

/* Zero padding up to file offset @p off. */
static int et__w_pad_to(et__writer *w, uint64_t off)
{
    return et__w_bytes(w, NULL, (size_t)(off - w->pos));
}

typedef int (*et__emit_fn)(et__writer *w, const void *ctx);

/* Best effort: makes the rename durable. Some file systems refuse fsync on a
 * directory; the data itself was already synced, so that is not an error. */
static void et__sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    size_t n;
    int fd;
    if (!slash) {
        fd = open(".", O_RDONLY);
    } else {
        n = slash == path ? 1 : (size_t)(slash - path);
        dir = (char *)ET_CKPT_MALLOC(n + 1);
        if (!dir) return;
        memcpy(dir, path, n);
        dir[n] = '\0';
        fd = open(dir, O_RDONLY);
        ET_CKPT_FREE(dir);
    }
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Writes @p emit's bytes plus the trailing CRC (when @p with_crc) to a temporary
 * file, syncs it and renames it over @p path. */
static et_status et__save_atomic(const char *path, et__emit_fn emit, const void *ctx,
                                 int with_crc, et_error *err)
{
    et__writer w;
    size_t tlen = strlen(path) + 32;
    char *tmp = (char *)ET_CKPT_MALLOC(tlen);
    const char *stage = "creation";
    int e = 0, created = 0;
    memset(&w, 0, sizeof w);
    w.fd = -1;
    w.buf = (uint8_t *)ET_CKPT_MALLOC(ET__IO_CHUNK);
    if (!tmp || !w.buf) {
        ET_CKPT_FREE(tmp);
        ET_CKPT_FREE(w.buf);
        return et_error_set(err, ET_ERR_NOMEM, "%s: cannot save: out of memory for the save "
                            "buffers", path);
    }
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    /* A file by this name can only be left over from a crashed process that had our
     * pid, so it goes; anything else there (a directory, say) makes the exclusive create
     * below fail, and O_EXCL never follows a planted symlink. */
    (void)unlink(tmp);
    w.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (w.fd < 0) { e = errno; goto fail; }
    created = 1;
    stage = "write";
    if (emit(&w, ctx) != 0 || et__w_flush(&w) != 0) { e = w.err; goto fail; }
    if (with_crc) {
        uint8_t crc[4];
        et__put_u32(crc, w.crc);
        if ((e = et__write_all(w.fd, crc, 4)) != 0) goto fail;
    }
    stage = "fsync";
    if (fsync(w.fd) != 0) { e = errno; goto fail; }
    stage = "close";
    e = close(w.fd) != 0 ? errno : 0;
    w.fd = -1;
    if (e) goto fail;
    stage = "rename";
    if (rename(tmp, path) != 0) { e = errno; goto fail; }
    et__sync_dir(path);
    ET_CKPT_FREE(w.buf);
    ET_CKPT_FREE(tmp);
    return ET_OK;
fail:
    if (w.fd >= 0) close(w.fd);
    if (created) unlink(tmp);
    et_error_set(err, ET_ERR_IO, "%s: cannot save: %s of temporary file '%s' failed: %s "
                 "(any existing file is unchanged)", path, stage, tmp, strerror(e ? e : EIO));
    ET_CKPT_FREE(w.buf);
    ET_CKPT_FREE(tmp);
    return ET_ERR_IO;
}

// --- reader with a running CRC

typedef struct et__reader {
    int fd;
    const char *path;
    uint64_t size;  /* file length from fstat */
    uint64_t pos;
    uint32_t crc;
} et__reader;

static et_status et__r_open(et__reader *r, const char *path, et_error *err)
{
    struct stat st;
    memset(r, 0, sizeof *r);
    r->path = path;
    r->fd = open(path, O_RDONLY);
    if (r->fd < 0)
        return et_error_set(err, ET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(r->fd, &st) != 0) {
        int e = errno;
        close(r->fd);
        r->fd = -1;
        return et_error_set(err, ET_ERR_IO, "%s: cannot read: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(r->fd);
        r->fd = -1;
        return et_error_set(err, ET_ERR_IO, "%s: cannot read: not a regular file", path);
    }
    r->size = (uint64_t)st.st_size;
    return ET_OK;
}

static void et__r_close(et__reader *r)
{
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
}

/* Reads exactly @p n bytes (or skips them when @p dst is NULL), folding them into the CRC. */
static et_status et__r_bytes(et__reader *r, void *dst, size_t n, et_error *err)
{
    uint8_t skip[256];
    uint8_t *p = (uint8_t *)dst;
    while (n > 0) {
        size_t k = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t got;
        if (!p && k > sizeof skip) k = sizeof skip;
        got = read(r->fd, p ? p : skip, k);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0)
            return et_error_set(err, ET_ERR_IO, "%s: read failed at byte %llu: %s", r->path,
                                (unsigned long long)r->pos, strerror(errno));
        if (got == 0) /* the file shrank under us */
            return et_error_set(err, ET_ERR_TRUNCATED,
                                "%s: truncated: file ends at byte %llu, expected %llu more",
                                r->path, (unsigned long long)r->pos, (unsigned long long)n);
        r->crc = et_crc32_update(r->crc, p ? p : skip, (size_t)got);
        r->pos += (uint64_t)got;
        n -= (size_t)got;
        if (p) p += got;
    }
    return ET_OK;
}

static et_status et__r_floats(et__reader *r, float *dst, size_t n, et_error *err)
{
    et_status s = et__r_bytes(r, dst, n * sizeof(float), err);
    if (s == ET_OK && !et__host_le()) et__swap_floats(dst, n);
    return s;
}

static void *et__alloc(uint64_t bytes)
{
    if (bytes == 0 || bytes > (uint64_t)SIZE_MAX) return NULL;
    return ET_CKPT_MALLOC((size_t)bytes);
}

/* Hex of a file's first bytes (up to 8), for "wrong magic" messages. */
static void et__hex8(const uint8_t *b, size_t n, char out[40])
{
    size_t i, k = 0;
    out[0] = '\0';
    for (i = 0; i < n && i < 8; i++) k += (size_t)sprintf(out + k, i ? " %02x" : "%02x", b[i]);
}

static const char *et__magic_hint(const uint8_t *b, size_t n)
{
    uint32_t m;
    if (n >= 8 && memcmp(b, ET_CKPT_MAGIC, 8) == 0) return " (an edgetrain checkpoint)";
    if (n < 4) return "";
    m = et__get_u32(b);
    if (m == ET_LLMC_MAGIC) return " (an llm.c GPT-2 checkpoint)";
    if (m == 20240328u) return " (an llm.c tokenizer file, not a model)";
    if (m == 20240520u || m == 20240801u) return " (an llm.c token shard, not a model)";
    return "";
}

// --- edgetrain format: layout

typedef struct et__layout {
    uint64_t table, params, adam_m, adam_v, tokenizer, state, end, total;
} et__layout;

/* Section offsets for the given sizes; every input is at most the file size (or
 * SIZE_MAX on save), so the sums cannot overflow 64 bits. */
static void et__layout_compute(uint64_t nparams, uint32_t flags, uint64_t tok_bytes,
                               uint64_t state_bytes, et__layout *l)
{
    uint64_t end;
    memset(l, 0, sizeof *l);
    l->table = ET__HDR_BYTES;
    end = l->table + (uint64_t)ET_GPT_NTENSORS * ET__ENTRY_BYTES;
    l->params = et__align(end);
    end = l->params + 4u * nparams;
    if (flags & ET__F_ADAM) {
        l->adam_m = et__align(end);
        l->adam_v = et__align(l->adam_m + 4u * nparams);
        end = l->adam_v + 4u * nparams;
    }
    if (flags & ET__F_TOKENIZER) {
        l->tokenizer = et__align(end);
        end = l->tokenizer + tok_bytes;
    }
    if (flags & ET__F_STATE) {
        l->state = et__align(end);
        end = l->state + state_bytes;
    }
    l->end = end;
    l->total = end + 4u;
}

// --- edgetrain format: save

typedef struct et__ckpt_job {
    const et_ckpt *c;
    et_gpt_config cfg; /* with vocab_padded filled */
    uint32_t flags;
    et__layout lay;
} et__ckpt_job;

static int et__emit_ckpt(et__writer *w, const void *ctx)
{
    const et__ckpt_job *j = (const et__ckpt_job *)ctx;
    const et_ckpt *c = j->c;
    uint8_t hdr[ET__HDR_BYTES], ent[ET__ENTRY_BYTES];
    et_tensor_info info[ET_GPT_NTENSORS];
    int v[6], i, d, gpt2 = et_gpt_config_is_gpt2(&j->cfg);
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, ET_CKPT_MAGIC, 8);
    /* GPT-2 shapes stay version 1, byte for byte what older builds wrote and read */
    et__put_u32(hdr + 8, gpt2 ? ET_CKPT_VERSION_GPT2 : ET_CKPT_VERSION);
    if (!gpt2) {
        et__put_u32(hdr + ET__WIDTHS_AT, (uint32_t)et_gpt_head_dim(&j->cfg));
        et__put_u32(hdr + ET__WIDTHS_AT + 4, (uint32_t)et_gpt_ffn_width(&j->cfg));
    }
    et__put_u32(hdr + 12, ET__HDR_BYTES);
    et__put_u32(hdr + 16, j->flags);
    et__put_u32(hdr + 20, ET_GPT_NTENSORS);
    et__cfg_fields(&j->cfg, v);
    for (i = 0; i < 6; i++) et__put_u32(hdr + 24 + 4 * i, (uint32_t)v[i]);
    et__put_u32(hdr + 48, (uint32_t)c->step);
    et__put_u64(hdr + 56, (uint64_t)c->nparams);
    et__put_u64(hdr + 64, (uint64_t)c->tokenizer_bytes);
    et__put_u64(hdr + 72, (uint64_t)c->train_state_bytes);
    et__put_u64(hdr + 80, j->lay.table);
    et__put_u64(hdr + 88, j->lay.params);
    et__put_u64(hdr + 96, j->lay.adam_m);
    et__put_u64(hdr + 104, j->lay.adam_v);
    et__put_u64(hdr + 112, j->lay.tokenizer);
    et__put_u64(hdr + 120, j->lay.state);
    et__put_u64(hdr + 128, j->lay.total);
    et__put_u32(hdr + ET__HDR_CRC_AT, et_crc32(hdr, ET__HDR_CRC_AT));
    if (et__w_bytes(w, hdr, sizeof hdr)) return -1;

    et__nparams(&j->cfg, info);
    for (i = 0; i < ET_GPT_NTENSORS; i++) {
        size_t nl = info[i].name ? strlen(info[i].name) : 0;
        memset(ent, 0, sizeof ent);
        memcpy(ent, info[i].name ? info[i].name : "",
               nl < ET__NAME_BYTES ? nl : ET__NAME_BYTES - 1);
        et__put_u64(ent + 24, (uint64_t)info[i].offset);
        et__put_u64(ent + 32, (uint64_t)info[i].count);
        et__put_u32(ent + 40, (uint32_t)info[i].ndim);
        for (d = 0; d < 3 && d < info[i].ndim; d++)
            et__put_u32(ent + 44 + 4 * d, (uint32_t)info[i].shape[d]);
        et__put_u32(ent + 56, (uint32_t)(info[i].decay != 0));
        if (et__w_bytes(w, ent, sizeof ent)) return -1;
    }
    if (et__w_pad_to(w, j->lay.params) || et__w_floats(w, c->params, c->nparams)) return -1;
    if (j->flags & ET__F_ADAM) {
        if (et__w_pad_to(w, j->lay.adam_m) || et__w_floats(w, c->adam_m, c->nparams)) return -1;
        if (et__w_pad_to(w, j->lay.adam_v) || et__w_floats(w, c->adam_v, c->nparams)) return -1;
    }
    if ((j->flags & ET__F_TOKENIZER) &&
        (et__w_pad_to(w, j->lay.tokenizer) || et__w_bytes(w, c->tokenizer, c->tokenizer_bytes)))
        return -1;
    if ((j->flags & ET__F_STATE) &&
        (et__w_pad_to(w, j->lay.state) || et__w_bytes(w, c->train_state, c->train_state_bytes)))
        return -1;
    return 0;
}

/* Checks a config about to be saved; fills @p out with vocab_padded derived. */
static et_status et__save_cfg(const char *path, const et_gpt_config *in, et_gpt_config *out,
                              size_t *nparams, et_error *err)
{
    int pad = 0;
    et_status s = et__cfg_check(path, "cannot save:", in, 1, &pad, ET_ERR_INVALID, err);
    if (s != ET_OK) return s;
    if (in->vocab_padded && in->vocab_padded != pad)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: vocab_padded is %d, expected "
                            "%d (vocab %d rounded up to 64)", path, in->vocab_padded, pad,
                            in->vocab);
    *out = *in;
    et_gpt_config_check(out); /* passed above; derives Vp, writes GPT-2 widths as 0 */
    if (et__nparams_floor(out) > (uint64_t)(SIZE_MAX / 8))
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: config too large", path);
    *nparams = et__nparams(out, NULL);
    return ET_OK;
}

et_status et_ckpt_save(const char *path, const et_ckpt *c, et_error *err)
{
    et__ckpt_job j;
    size_t n = 0;
    et_status s;
    if (!path || !c)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: NULL %s",
                            path ? path : "(null path)", path ? "checkpoint" : "path");
    memset(&j, 0, sizeof j);
    j.c = c;
    if ((s = et__save_cfg(path, &c->cfg, &j.cfg, &n, err)) != ET_OK) return s;
    if (c->nparams != n)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: nparams is %zu, the config "
                            "implies %zu", path, c->nparams, n);
    if (!c->params)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: params is NULL", path);
    if (!c->adam_m != !c->adam_v)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: adam_m and adam_v must be "
                            "both set or both NULL", path);
    if (c->step < 0)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: step is %d, expected >= 0",
                            path, c->step);
    if (c->tokenizer_bytes && !c->tokenizer)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: tokenizer blob is NULL "
                            "with %zu bytes", path, c->tokenizer_bytes);
    if (c->train_state_bytes && !c->train_state)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: train_state blob is NULL "
                            "with %zu bytes", path, c->train_state_bytes);
    j.flags = (c->adam_m ? ET__F_ADAM : 0u) | (c->tokenizer_bytes ? ET__F_TOKENIZER : 0u) |
              (c->train_state_bytes ? ET__F_STATE : 0u);
    et__layout_compute((uint64_t)n, j.flags, (uint64_t)c->tokenizer_bytes,
                       (uint64_t)c->train_state_bytes, &j.lay);
    return et__save_atomic(path, et__emit_ckpt, &j, 1, err);
}

// --- edgetrain format: load

void et_ckpt_free(et_ckpt *c)
{
    if (!c) return;
    ET_CKPT_FREE(c->params);
    ET_CKPT_FREE(c->adam_m);
    ET_CKPT_FREE(c->adam_v);
    ET_CKPT_FREE(c->tokenizer);
    ET_CKPT_FREE(c->train_state);
    memset(c, 0, sizeof *c);
}

/* Compares the stored tensor table with et_gpt_tensors() of the (checked) config. */
static et_status et__check_table(const char *path, const uint8_t *tab, const et_gpt_config *cfg,
                                 et_error *err)
{
    et_tensor_info info[ET_GPT_NTENSORS];
    int i, d;
    et__nparams(cfg, info);
    for (i = 0; i < ET_GPT_NTENSORS; i++) {
        const uint8_t *e = tab + (size_t)i * ET__ENTRY_BYTES;
        char name[ET__NAME_BYTES + 1];
        const char *want = info[i].name ? info[i].name : "";
        uint64_t off = et__get_u64(e + 24), cnt = et__get_u64(e + 32);
        uint32_t ndim = et__get_u32(e + 40);
        int ok = strncmp((const char *)e, want, ET__NAME_BYTES) == 0 && e[ET__NAME_BYTES - 1] == 0 &&
                 off == (uint64_t)info[i].offset && cnt == (uint64_t)info[i].count &&
                 ndim == (uint32_t)info[i].ndim;
        for (d = 0; ok && d < 3 && d < info[i].ndim; d++)
            ok = et__get_u32(e + 44 + 4 * d) == (uint32_t)info[i].shape[d];
        if (!ok) {
            size_t k;
            for (k = 0; k < ET__NAME_BYTES; k++) /* printable copy of the stored name */
                name[k] = e[k] == 0 ? '\0' : (e[k] < 32 || e[k] > 126 ? '?' : (char)e[k]);
            name[ET__NAME_BYTES] = '\0';
            return et_error_set(err, ET_ERR_FORMAT,
                                "%s: tensor table entry %d is '%s' (offset %llu, count %llu, "
                                "ndim %u), expected '%s' (offset %zu, count %zu, ndim %d) for "
                                "this config", path, i, name, (unsigned long long)off,
                                (unsigned long long)cnt, ndim, want, info[i].offset,
                                info[i].count, info[i].ndim);
        }
    }
    return ET_OK;
}

/* Validates a header against the file size; fills @p cfg, @p flags and @p lay. Nothing
 * is allocated until this has passed. */
static et_status et__ckpt_header(const char *path, const uint8_t *h, uint64_t fsize,
                                 et_gpt_config *cfg, uint32_t *flags, int *step,
                                 uint64_t sizes[3], et__layout *lay, et_error *err)
{
    static const char *const sect[7] = {"table", "params", "adam_m", "adam_v", "tokenizer",
                                        "train_state", "file_bytes"};
    uint32_t version = et__get_u32(h + 8), hb = et__get_u32(h + 12), nt = et__get_u32(h + 20);
    uint32_t hcrc = et__get_u32(h + ET__HDR_CRC_AT), want_crc = et_crc32(h, ET__HDR_CRC_AT);
    uint64_t stored[7], want[7];
    int pad = 0, i;
    et_status s;
    if (version != ET_CKPT_VERSION_GPT2 && version != ET_CKPT_VERSION)
        return et_error_set(err, ET_ERR_UNSUPPORTED, "%s: checkpoint format version %u is not "
                            "supported (this build reads versions %d and %d)", path, version,
                            ET_CKPT_VERSION_GPT2, ET_CKPT_VERSION);
    if (hcrc != want_crc)
        return et_error_set(err, ET_ERR_CRC, "%s: header checksum mismatch: stored 0x%08x, "
                            "computed 0x%08x (the header is corrupt)", path, hcrc, want_crc);
    if (hb != ET__HDR_BYTES)
        return et_error_set(err, ET_ERR_FORMAT, "%s: header_bytes is %u, expected %u", path, hb,
                            ET__HDR_BYTES);
    /* The header is intact, so its file_bytes says what the length should be. */
    stored[6] = et__get_u64(h + 128);
    if (fsize < stored[6])
        return et_error_set(err, ET_ERR_TRUNCATED, "%s: truncated: expected %llu bytes, file has "
                            "%llu", path, (unsigned long long)stored[6],
                            (unsigned long long)fsize);
    if (fsize > stored[6])
        return et_error_set(err, ET_ERR_FORMAT, "%s: %llu unexpected bytes after the checksum "
                            "(expected %llu bytes, file has %llu)", path,
                            (unsigned long long)(fsize - stored[6]), (unsigned long long)stored[6],
                            (unsigned long long)fsize);
    *flags = et__get_u32(h + 16);
    if (*flags & ~ET__F_ALL)
        return et_error_set(err, ET_ERR_FORMAT, "%s: unknown flags 0x%x (known: 0x%x)", path,
                            *flags, ET__F_ALL);
    if (nt != ET_GPT_NTENSORS)
        return et_error_set(err, ET_ERR_FORMAT, "%s: tensor table has %u entries, expected %d",
                            path, nt, ET_GPT_NTENSORS);
    for (i = 52; i < 56; i++)
        if (h[i]) goto reserved;
    for (i = version == ET_CKPT_VERSION ? (int)ET__WIDTHS_AT + 8 : 136; i < (int)ET__HDR_CRC_AT; i++)
        if (h[i]) goto reserved;
    cfg->vocab = et__get_i32(h + 24);
    cfg->vocab_padded = et__get_i32(h + 28);
    cfg->context = et__get_i32(h + 32);
    cfg->layers = et__get_i32(h + 36);
    cfg->heads = et__get_i32(h + 40);
    cfg->channels = et__get_i32(h + 44);
    cfg->head_dim = cfg->ffn = 0;
    if (version == ET_CKPT_VERSION) { /* both widths stored, each positive */
        cfg->head_dim = et__get_i32(h + ET__WIDTHS_AT);
        cfg->ffn = et__get_i32(h + ET__WIDTHS_AT + 4);
        if (cfg->head_dim <= 0 || cfg->ffn <= 0)
            return et_error_set(err, ET_ERR_RANGE, "%s: version 2 header field '%s' is %d, "
                                "expected 1..%d", path, cfg->head_dim <= 0 ? "head_dim" : "ffn",
                                cfg->head_dim <= 0 ? cfg->head_dim : cfg->ffn, ET__DIM_MAX);
    }
    if ((s = et__cfg_check(path, "header", cfg, 0, &pad, ET_ERR_RANGE, err)) != ET_OK) return s;
    if (cfg->vocab_padded != pad)
        return et_error_set(err, ET_ERR_RANGE, "%s: header field 'vocab_padded' is %d, expected "
                            "%d (vocab %d rounded up to 64)", path, cfg->vocab_padded, pad,
                            cfg->vocab);
    et_gpt_config_check(cfg); /* passed above: stores GPT-2 widths as 0 */
    *step = et__get_i32(h + 48);
    if (*step < 0)
        return et_error_set(err, ET_ERR_RANGE, "%s: header field 'step' is %d, expected >= 0",
                            path, *step);
    for (i = 0; i < 3; i++) sizes[i] = et__get_u64(h + 56 + 8 * i);
    /* Everything below is bounded by the file size first, so no sum can overflow and no
     * count can ask for more memory than the file could fill. */
    if (sizes[0] > fsize / 4)
        return et_error_set(err, ET_ERR_FORMAT, "%s: header says nparams %llu (%llu bytes), "
                            "more than the whole file (%llu bytes)", path,
                            (unsigned long long)sizes[0], (unsigned long long)(4u * sizes[0]),
                            (unsigned long long)fsize);
    for (i = 1; i < 3; i++)
        if (sizes[i] > fsize)
            return et_error_set(err, ET_ERR_FORMAT, "%s: header says the %s blob is %llu "
                                "bytes, more than the whole file (%llu bytes)", path,
                                i == 1 ? "tokenizer" : "train_state",
                                (unsigned long long)sizes[i], (unsigned long long)fsize);
    if (et__nparams_floor(cfg) > fsize / 4 || et__nparams(cfg, NULL) != sizes[0])
        return et_error_set(err, ET_ERR_FORMAT, "%s: header says nparams %llu, but the config "
                            "(V=%d, Vp=%d, maxT=%d, L=%d, NH=%d, C=%d) implies %s%llu", path,
                            (unsigned long long)sizes[0], cfg->vocab, cfg->vocab_padded,
                            cfg->context, cfg->layers, cfg->heads, cfg->channels,
                            et__nparams_floor(cfg) > fsize / 4 ? "at least " : "",
                            et__nparams_floor(cfg) > fsize / 4
                            ? (unsigned long long)et__nparams_floor(cfg)
                            : (unsigned long long)et__nparams(cfg, NULL));
    if (!(*flags & ET__F_TOKENIZER) != !sizes[1] || !(*flags & ET__F_STATE) != !sizes[2])
        return et_error_set(err, ET_ERR_FORMAT, "%s: flags 0x%x disagree with the blob sizes "
                            "(tokenizer %llu, train_state %llu bytes)", path, *flags,
                            (unsigned long long)sizes[1], (unsigned long long)sizes[2]);
    et__layout_compute(sizes[0], *flags, sizes[1], sizes[2], lay);
    want[0] = lay->table; want[1] = lay->params; want[2] = lay->adam_m; want[3] = lay->adam_v;
    want[4] = lay->tokenizer; want[5] = lay->state; want[6] = lay->total;
    for (i = 0; i < 7; i++) {
        stored[i] = et__get_u64(h + 80 + 8 * i);
        if (stored[i] != want[i])
            return et_error_set(err, ET_ERR_FORMAT, "%s: header puts '%s' at %llu, expected %llu",
                                path, sect[i], (unsigned long long)stored[i],
                                (unsigned long long)want[i]);
    }
    return ET_OK;
reserved:
    return et_error_set(err, ET_ERR_FORMAT, "%s: reserved header byte %d is 0x%02x, expected 0",
                        path, i, h[i]);
}

et_status et_ckpt_load(const char *path, et_ckpt *c, et_error *err)
{
    et__reader r;
    et_ckpt out;
    uint8_t h[ET__HDR_BYTES], tab[ET_GPT_NTENSORS * ET__ENTRY_BYTES], crc[4];
    uint64_t sizes[3] = {0, 0, 0};
    uint32_t flags = 0, stored;
    et__layout lay;
    et_status s;
    char hex[40];
    if (c) memset(c, 0, sizeof *c);
    if (!path || !c)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot load: NULL %s",
                            path ? path : "(null path)", path ? "checkpoint" : "path");
    memset(&out, 0, sizeof out);
    if ((s = et__r_open(&r, path, err)) != ET_OK) return s;
    if (r.size < 8 || r.size < ET__HDR_BYTES) {
        size_t n = r.size < 8 ? (size_t)r.size : 8;
        if ((s = et__r_bytes(&r, h, n, err)) != ET_OK) goto done;
        if (n == 8 && memcmp(h, ET_CKPT_MAGIC, 8) != 0) goto bad_magic;
        s = et_error_set(err, ET_ERR_TRUNCATED, "%s: truncated: file has %llu bytes, an "
                         "edgetrain checkpoint header alone is %u", path,
                         (unsigned long long)r.size, ET__HDR_BYTES);
        goto done;
    }
    if ((s = et__r_bytes(&r, h, ET__HDR_BYTES, err)) != ET_OK) goto done;
    if (memcmp(h, ET_CKPT_MAGIC, 8) != 0) goto bad_magic;
    s = et__ckpt_header(path, h, r.size, &out.cfg, &flags, &out.step, sizes, &lay, err);
    if (s != ET_OK) goto done;
    out.nparams = (size_t)sizes[0];
    out.tokenizer_bytes = (size_t)sizes[1];
    out.train_state_bytes = (size_t)sizes[2];
    out.params = (float *)et__alloc(4u * sizes[0]);
    if (flags & ET__F_ADAM) {
        out.adam_m = (float *)et__alloc(4u * sizes[0]);
        out.adam_v = (float *)et__alloc(4u * sizes[0]);
    }
    if (flags & ET__F_TOKENIZER) out.tokenizer = et__alloc(sizes[1]);
    if (flags & ET__F_STATE) out.train_state = et__alloc(sizes[2]);
    if (!out.params || ((flags & ET__F_ADAM) && (!out.adam_m || !out.adam_v)) ||
        ((flags & ET__F_TOKENIZER) && !out.tokenizer) || ((flags & ET__F_STATE) && !out.train_state)) {
        s = et_error_set(err, ET_ERR_NOMEM, "%s: out of memory for a checkpoint of %llu bytes",
                         path, (unsigned long long)r.size);
        goto done;
    }
    if ((s = et__r_bytes(&r, tab, sizeof tab, err)) != ET_OK) goto done;
    if ((s = et__r_bytes(&r, NULL, (size_t)(lay.params - r.pos), err)) != ET_OK ||
        (s = et__r_floats(&r, out.params, out.nparams, err)) != ET_OK)
        goto done;
    if (flags & ET__F_ADAM) {
        if ((s = et__r_bytes(&r, NULL, (size_t)(lay.adam_m - r.pos), err)) != ET_OK ||
            (s = et__r_floats(&r, out.adam_m, out.nparams, err)) != ET_OK ||
            (s = et__r_bytes(&r, NULL, (size_t)(lay.adam_v - r.pos), err)) != ET_OK ||
            (s = et__r_floats(&r, out.adam_v, out.nparams, err)) != ET_OK)
            goto done;
    }
    if ((flags & ET__F_TOKENIZER) &&
        ((s = et__r_bytes(&r, NULL, (size_t)(lay.tokenizer - r.pos), err)) != ET_OK ||
         (s = et__r_bytes(&r, out.tokenizer, out.tokenizer_bytes, err)) != ET_OK))
        goto done;
    if ((flags & ET__F_STATE) &&
        ((s = et__r_bytes(&r, NULL, (size_t)(lay.state - r.pos), err)) != ET_OK ||
         (s = et__r_bytes(&r, out.train_state, out.train_state_bytes, err)) != ET_OK))
        goto done;
    stored = r.crc; /* CRC of everything before the trailer */
    if ((s = et__r_bytes(&r, crc, 4, err)) != ET_OK) goto done;
    if (et__get_u32(crc) != stored) {
        s = et_error_set(err, ET_ERR_CRC, "%s: checksum mismatch: stored 0x%08x, computed 0x%08x "
                         "(the file is corrupt)", path, et__get_u32(crc), stored);
        goto done;
    }
    if ((s = et__check_table(path, tab, &out.cfg, err)) != ET_OK) goto done;
    et__r_close(&r);
    *c = out;
    return ET_OK;
bad_magic:
    et__hex8(h, r.size < 8 ? (size_t)r.size : 8, hex);
    s = et_error_set(err, ET_ERR_FORMAT, "%s: not an edgetrain checkpoint: magic is [%s]%s, "
                     "expected \"ETCKPT\\0\\0\"", path, hex,
                     et__magic_hint(h, r.size < 8 ? (size_t)r.size : 8));
done:
    et__r_close(&r);
    et_ckpt_free(&out);
    return s;
}

// --- llm.c GPT-2 fp32 format

typedef struct et__llmc_job {
    et_gpt_config cfg;
    const float *params;
    size_t n;
} et__llmc_job;

static int et__emit_llmc(et__writer *w, const void *ctx)
{
    const et__llmc_job *j = (const et__llmc_job *)ctx;
    uint8_t hdr[ET__LLMC_HDR_BYTES];
    memset(hdr, 0, sizeof hdr);
    et__put_u32(hdr + 0, ET_LLMC_MAGIC);
    et__put_u32(hdr + 4, ET_LLMC_VERSION);
    et__put_u32(hdr + 8, (uint32_t)j->cfg.context);
    et__put_u32(hdr + 12, (uint32_t)j->cfg.vocab);
    et__put_u32(hdr + 16, (uint32_t)j->cfg.layers);
    et__put_u32(hdr + 20, (uint32_t)j->cfg.heads);
    et__put_u32(hdr + 24, (uint32_t)j->cfg.channels);
    et__put_u32(hdr + 28, (uint32_t)j->cfg.vocab_padded);
    if (et__w_bytes(w, hdr, sizeof hdr)) return -1;
    return et__w_floats(w, j->params, j->n);
}

et_status et_llmc_save(const char *path, const et_gpt_config *cfg, const float *params,
                       et_error *err)
{
    et__llmc_job j;
    et_status s;
    if (!path || !cfg || !params)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: NULL %s",
                            path ? path : "(null path)", !path ? "path" : !cfg ? "config"
                            : "params");
    if ((s = et__save_cfg(path, cfg, &j.cfg, &j.n, err)) != ET_OK) return s;
    if (!et_gpt_config_is_gpt2(&j.cfg))
        return et_error_set(err, ET_ERR_UNSUPPORTED, "%s: cannot save as llm.c: this model has "
                            "head_dim %d and ffn %d, but llm.c's GPT-2 format has no field for "
                            "them (it implies head_dim = channels / heads and ffn = 4 x channels "
                            "= %d); keep it as an edgetrain checkpoint", path,
                            et_gpt_head_dim(&j.cfg), et_gpt_ffn_width(&j.cfg), 4 * j.cfg.channels);
    j.params = params;
    return et__save_atomic(path, et__emit_llmc, &j, 0, err);
}

et_status et_llmc_load(const char *path, et_ckpt *c, et_error *err)
{
    static const char *const hname[8] = {"magic", "version", "maxT", "V", "L", "NH", "C", "Vp"};
    et__reader r;
    et_ckpt out;
    uint8_t h[ET__LLMC_HDR_BYTES];
    int32_t hv[8];
    int pad = 0, pad128, vp_file, i;
    uint64_t n_file, expect, floor;
    size_t n, wte_keep, wte_skip, wte_zero;
    et_tensor_info info[ET_GPT_NTENSORS];
    et_status s;
    char hex[40];
    if (c) memset(c, 0, sizeof *c);
    if (!path || !c)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot load: NULL %s",
                            path ? path : "(null path)", path ? "checkpoint" : "path");
    memset(&out, 0, sizeof out);
    if ((s = et__r_open(&r, path, err)) != ET_OK) return s;
    n = r.size < ET__LLMC_HDR_BYTES ? (size_t)r.size : ET__LLMC_HDR_BYTES;
    if ((s = et__r_bytes(&r, h, n, err)) != ET_OK) goto done;
    if (n < 4 || et__get_u32(h) != ET_LLMC_MAGIC) {
        et__hex8(h, n < 8 ? n : 8, hex);
        s = et_error_set(err, ET_ERR_FORMAT, "%s: not an llm.c GPT-2 checkpoint: magic is "
                         "[%s]%s, expected %d", path, hex, et__magic_hint(h, n < 8 ? n : 8),
                         ET_LLMC_MAGIC);
        goto done;
    }
    if (n < 8 || et__get_i32(h + 4) != ET_LLMC_VERSION) {
        if (n < 8) goto short_header;
        s = et_error_set(err, ET_ERR_UNSUPPORTED, "%s: llm.c checkpoint version %d is not "
                         "supported: only fp32 version 3 is (version 5 is bf16; export fp32)",
                         path, et__get_i32(h + 4));
        goto done;
    }
    if (n < ET__LLMC_HDR_BYTES) goto short_header;
    for (i = 0; i < 8; i++) hv[i] = et__get_i32(h + 4 * i);
    out.cfg.context = hv[2];
    out.cfg.vocab = hv[3];
    out.cfg.layers = hv[4];
    out.cfg.heads = hv[5];
    out.cfg.channels = hv[6];
    out.cfg.vocab_padded = hv[7];
    for (i = 2; i < 8; i++)
        if (hv[i] <= 0 || hv[i] > ET__DIM_MAX) {
            s = et_error_set(err, ET_ERR_RANGE, "%s: llm.c header field %s (int %d) is %d, "
                             "expected 1..%d", path, hname[i], i, hv[i], ET__DIM_MAX);
            goto done;
        }
    if ((s = et__cfg_check(path, "llm.c header", &out.cfg, 0, &pad, ET_ERR_RANGE, err)) != ET_OK) goto done;
    pad128 = (int)(((int64_t)out.cfg.vocab + 127) / 128 * 128);
    vp_file = out.cfg.vocab_padded;
    if (vp_file != pad && vp_file != pad128) {
        s = et_error_set(err, ET_ERR_RANGE, "%s: llm.c header field Vp is %d, expected %d "
                         "(V=%d rounded up to 64) or %d (to 128)", path, vp_file, pad,
                         out.cfg.vocab, pad128);
        goto done;
    }
    out.cfg.vocab_padded = pad;
    /* The floor of the file's own layout (with its Vp) must fit before the exact count. */
    {
        et_gpt_config fc = out.cfg;
        fc.vocab_padded = vp_file;
        floor = et__nparams_floor(&fc);
    }
    if (floor > (r.size - ET__LLMC_HDR_BYTES) / 4) {
        s = et_error_set(err, ET_ERR_TRUNCATED, "%s: truncated: expected at least %llu bytes "
                         "for header (maxT=%d, V=%d, L=%d, NH=%d, C=%d, Vp=%d), file has %llu",
                         path, (unsigned long long)et__sat_add(et__sat_mul(floor, 4),
                                                               ET__LLMC_HDR_BYTES),
                         hv[2], hv[3], hv[4], hv[5], hv[6], hv[7], (unsigned long long)r.size);
        goto done;
    }
    n = et__nparams(&out.cfg, info);
    if (!info[0].name || strcmp(info[0].name, "wte") != 0 ||
        info[0].count != (size_t)pad * (size_t)out.cfg.channels || info[0].offset != 0) {
        s = et_error_set(err, ET_ERR_STATE, "%s: et_gpt_tensors() does not start with wte "
                         "(Vp, C); cannot map llm.c's layout", path);
        goto done;
    }
    wte_keep = (size_t)out.cfg.vocab * (size_t)out.cfg.channels;
    wte_skip = (size_t)(vp_file - out.cfg.vocab) * (size_t)out.cfg.channels;
    wte_zero = (size_t)(pad - out.cfg.vocab) * (size_t)out.cfg.channels;
    n_file = (uint64_t)n - wte_zero + wte_skip;
    expect = ET__LLMC_HDR_BYTES + 4u * n_file;
    if (r.size != expect) {
        s = et_error_set(err, r.size < expect ? ET_ERR_TRUNCATED : ET_ERR_FORMAT,
                         "%s: %s: expected %llu bytes (1024-byte header + %llu floats), file "
                         "has %llu", path, r.size < expect ? "truncated" : "unexpected trailing "
                         "bytes", (unsigned long long)expect, (unsigned long long)n_file,
                         (unsigned long long)r.size);
        goto done;
    }
    out.nparams = n;
    out.params = (float *)et__alloc(4u * (uint64_t)n);
    if (!out.params) {
        s = et_error_set(err, ET_ERR_NOMEM, "%s: out of memory for %zu parameters", path, n);
        goto done;
    }
    if (vp_file == pad) { /* same layout: padding rows too are kept bit for bit */
        if ((s = et__r_floats(&r, out.params, n, err)) != ET_OK) goto done;
    } else { /* drop the file's padding rows, zero ours */
        if ((s = et__r_floats(&r, out.params, wte_keep, err)) != ET_OK ||
            (s = et__r_bytes(&r, NULL, 4u * wte_skip, err)) != ET_OK ||
            (s = et__r_floats(&r, out.params + wte_keep + wte_zero, n - wte_keep - wte_zero,
                              err)) != ET_OK)
            goto done;
        memset(out.params + wte_keep, 0, wte_zero * sizeof(float));
    }
    et__r_close(&r);
    *c = out;
    return ET_OK;
short_header:
    s = et_error_set(err, ET_ERR_TRUNCATED, "%s: truncated: file has %llu bytes, the llm.c "
                     "header alone is %u", path, (unsigned long long)r.size, ET__LLMC_HDR_BYTES);
done:
    et__r_close(&r);
    et_ckpt_free(&out);
    return s;
}

// --- either format

et_status et_model_load(const char *path, et_ckpt *c, et_error *err)
{
    et__reader r;
    uint8_t b[8];
    size_t n;
    et_status s;
    char hex[40];
    if (c) memset(c, 0, sizeof *c);
    if (!path || !c)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot load: NULL %s",
                            path ? path : "(null path)", path ? "checkpoint" : "path");
    if ((s = et__r_open(&r, path, err)) != ET_OK) return s;
    n = r.size < 8 ? (size_t)r.size : 8;
    s = et__r_bytes(&r, b, n, err);
    et__r_close(&r);
    if (s != ET_OK) return s;
    if (n == 8 && memcmp(b, ET_CKPT_MAGIC, 8) == 0) return et_ckpt_load(path, c, err);
    if (n >= 4 && et__get_u32(b) == ET_LLMC_MAGIC) return et_llmc_load(path, c, err);
    et__hex8(b, n, hex);
    return et_error_set(err, n < 8 ? ET_ERR_TRUNCATED : ET_ERR_FORMAT,
                        "%s: not a model checkpoint: %s [%s]%s, expected \"ETCKPT\\0\\0\" "
                        "(edgetrain) or %d (llm.c GPT-2)", path,
                        n < 8 ? "file is too short; its bytes are" : "magic is", hex,
                        et__magic_hint(b, n), ET_LLMC_MAGIC);
}
