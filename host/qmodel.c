/* qmodel.c - save and load quantized-model files (et_qmodel.h; layout in
 * docs/COMPRESSION.md).
 *
 * The whole file is built in memory and written in one go: a quantized model is a
 * quarter of its fp32 size, so this costs less than the checkpoint writer's streaming
 * and keeps the code short. Deliberately avoids: stdio for the data (we need the file
 * descriptor for fsync) and trusting any header field before it is checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "et_crc32.h"
#include "et_qmodel.h"

#define HDR 128
#define ENTRY 40
#define WIDTHS_AT 88 /* version 2: u32 head_dim, u32 ffn */
#define MAX_FILE ((uint64_t)1 << 40)

static size_t pad64(size_t n) { return (n + 63) & ~(size_t)63; }

static int little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static size_t file_bytes(size_t blob, size_t tok)
{
    return pad64(HDR + (size_t)ET_QGPT_NTENSORS * ENTRY) + pad64(blob) + tok + 4;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return k < 0 ? errno : EIO;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int fd;
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

et_status et_qmodel_write_file(const char *path, const void *data, size_t n, et_error *err)
{
    char tmp[4200];
    const char *stage = "creation";
    int fd, e = 0;
    if (strlen(path) > 4096) return et_error_set(err, ET_ERR_INVALID, "%s: path too long", path);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) { e = errno; goto fail_open; }
    stage = "write";
    if ((e = write_all(fd, (const uint8_t *)data, n)) != 0) goto fail;
    stage = "fsync";
    if (fsync(fd) != 0) { e = errno; goto fail; }
    stage = "close";
    if (close(fd) != 0) { e = errno; fd = -1; goto fail; }
    fd = -1;
    stage = "rename";
    if (rename(tmp, path) != 0) { e = errno; goto fail; }
    sync_dir(path);
    return ET_OK;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
fail_open:
    return et_error_set(err, ET_ERR_IO, "%s: cannot save: %s of temporary file '%s' failed: %s "
                        "(any existing file is unchanged)", path, stage, tmp, strerror(e ? e : EIO));
}

et_status et_qmodel_save(const char *path, const et_qmodel *q, et_error *err)
{
    et_qtensor_info t[ET_QGPT_NTENSORS];
    et_gpt_config c;
    size_t need, n, off, i;
    uint8_t *f;
    et_status s;
    if (!path || !q) return et_error_set(err, ET_ERR_INVALID, "no path or model to save");
    if (!little_endian())
        return et_error_set(err, ET_ERR_UNSUPPORTED, "%s: quantized models are little-endian; this host is not", path);
    c = q->cfg;
    if (et_gpt_config_check(&c) != ET_OK)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: invalid config", path);
    if ((s = et_qgpt_tensors(&c, q->mode, t, &need)) != ET_OK)
        return et_error_set(err, s, "%s: cannot save: mode %d is neither w8a8 (1) nor w8a32 (2)", path, (int)q->mode);
    if (!q->blob || q->blob_bytes != need)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: blob has %zu bytes, the layout needs %zu",
                            path, q->blob_bytes, need);
    if (q->tokenizer_bytes && !q->tokenizer)
        return et_error_set(err, ET_ERR_INVALID, "%s: cannot save: tokenizer size without data", path);
    n = file_bytes(need, q->tokenizer_bytes);
    f = (uint8_t *)calloc(1, n);
    if (!f) return et_error_set(err, ET_ERR_NOMEM, "%s: cannot save: out of memory (%zu bytes)", path, n);
    memcpy(f, ET_QMODEL_MAGIC, 8);
    /* GPT-2 shapes stay version 1 (what older builds read); others store their widths */
    put32(f + 8, et_gpt_config_is_gpt2(&c) ? ET_QMODEL_VERSION_GPT2 : ET_QMODEL_VERSION);
    if (!et_gpt_config_is_gpt2(&c)) {
        put32(f + WIDTHS_AT, (uint32_t)et_gpt_head_dim(&c));
        put32(f + WIDTHS_AT + 4, (uint32_t)et_gpt_ffn_width(&c));
    }
    put32(f + 12, HDR);
    put32(f + 16, (uint32_t)q->mode);
    put32(f + 20, ET_QGPT_NTENSORS);
    put32(f + 24, (uint32_t)c.vocab); put32(f + 28, (uint32_t)c.vocab_padded);
    put32(f + 32, (uint32_t)c.context); put32(f + 36, (uint32_t)c.layers);
    put32(f + 40, (uint32_t)c.heads); put32(f + 44, (uint32_t)c.channels);
    put64(f + 48, need);
    put64(f + 56, q->tokenizer_bytes);
    put32(f + 64, q->calib_method);
    memcpy(f + 68, &q->calib_pct, 4);
    put32(f + 72, q->calib_batches);
    put64(f + 80, q->src_nparams);
    put32(f + 124, et_crc32(f, 124));
    for (i = 0; i < ET_QGPT_NTENSORS; i++) {
        uint8_t *e = f + HDR + i * ENTRY;
        strncpy((char *)e, t[i].name, 15);
        put32(e + 16, (uint32_t)t[i].dtype);
        put64(e + 24, t[i].count);
        put64(e + 32, t[i].offset);
    }
    off = pad64(HDR + (size_t)ET_QGPT_NTENSORS * ENTRY);
    memcpy(f + off, q->blob, need);
    off += pad64(need);
    if (q->tokenizer_bytes) memcpy(f + off, q->tokenizer, q->tokenizer_bytes);
    off += q->tokenizer_bytes;
    put32(f + off, et_crc32(f, off));
    s = et_qmodel_write_file(path, f, n, err);
    free(f);
    return s;
}

int et_qmodel_probe(const char *path)
{
    char m[8];
    FILE *fp = path ? fopen(path, "rb") : NULL;
    int ok;
    if (!fp) return 0;
    ok = fread(m, 1, 8, fp) == 8 && memcmp(m, ET_QMODEL_MAGIC, 8) == 0;
    fclose(fp);
    return ok;
}

void et_qmodel_free(et_qmodel *q)
{
    if (!q) return;
    free(q->blob);
    free(q->tokenizer);
    memset(q, 0, sizeof *q);
}

static et_status read_file(const char *path, uint8_t **out, size_t *n, et_error *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY);
    size_t got = 0;
    uint8_t *b;
    if (fd < 0) return et_error_set(err, ET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return et_error_set(err, ET_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > MAX_FILE || st.st_size < HDR) {
        close(fd);
        return et_error_set(err, st.st_size < HDR ? ET_ERR_TRUNCATED : ET_ERR_FORMAT,
                            "%s: %lld bytes is not a quantized model's size", path, (long long)st.st_size);
    }
    b = (uint8_t *)malloc((size_t)st.st_size);
    if (!b) { close(fd); return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", path); }
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, b + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            free(b);
            close(fd);
            return et_error_set(err, ET_ERR_IO, "%s: read failed: %s", path, k < 0 ? strerror(errno) : "short read");
        }
        got += (size_t)k;
    }
    close(fd);
    *out = b;
    *n = got;
    return ET_OK;
}

et_status et_qmodel_load(const char *path, et_qmodel *q, et_error *err)
{
    et_qtensor_info t[ET_QGPT_NTENSORS];
    uint8_t *f = NULL;
    size_t n = 0, need, off, i;
    uint64_t blob, tok;
    uint32_t v, mode;
    et_gpt_config c;
    et_status s;
    if (!path || !q) return et_error_set(err, ET_ERR_INVALID, "no path or model");
    memset(q, 0, sizeof *q);
    if (!little_endian())
        return et_error_set(err, ET_ERR_UNSUPPORTED, "%s: quantized models are little-endian; this host is not", path);
    if ((s = read_file(path, &f, &n, err)) != ET_OK) return s;
#define FAIL(st, ...) do { s = et_error_set(err, st, __VA_ARGS__); goto out; } while (0)
    if (memcmp(f, ET_QMODEL_MAGIC, 8) != 0)
        FAIL(ET_ERR_FORMAT, "%s: not a quantized edgetrain model: magic is [%02x %02x %02x %02x ...], expected \"%s\"",
             path, f[0], f[1], f[2], f[3], ET_QMODEL_MAGIC);
    if ((v = get32(f + 8)) != ET_QMODEL_VERSION_GPT2 && v != ET_QMODEL_VERSION)
        FAIL(ET_ERR_UNSUPPORTED, "%s: quantized-model format version %u is not supported (this build reads %d "
             "and %d)", path, v, ET_QMODEL_VERSION_GPT2, ET_QMODEL_VERSION);
    if (get32(f + 124) != et_crc32(f, 124))
        FAIL(ET_ERR_CRC, "%s: header checksum mismatch: stored 0x%08x, computed 0x%08x", path, get32(f + 124),
             et_crc32(f, 124));
    if (get32(f + 12) != HDR || get32(f + 20) != ET_QGPT_NTENSORS)
        FAIL(ET_ERR_FORMAT, "%s: header size %u / tensor count %u, expected %d / %d", path, get32(f + 12),
             get32(f + 20), HDR, ET_QGPT_NTENSORS);
    mode = get32(f + 16);
    memset(&c, 0, sizeof c);
    if (v == ET_QMODEL_VERSION) {
        uint32_t hd = get32(f + WIDTHS_AT), ff = get32(f + WIDTHS_AT + 4);
        if (hd == 0 || ff == 0 || hd > (1u << 20) || ff > (1u << 20))
            FAIL(ET_ERR_RANGE, "%s: version 2 header field '%s' is %u, expected 1..%u", path,
                 hd == 0 || hd > (1u << 20) ? "head_dim" : "ffn", hd == 0 || hd > (1u << 20) ? hd : ff, 1u << 20);
        c.head_dim = (int)hd;
        c.ffn = (int)ff;
    }
    c.vocab = (int)get32(f + 24); c.vocab_padded = (int)get32(f + 28); c.context = (int)get32(f + 32);
    c.layers = (int)get32(f + 36); c.heads = (int)get32(f + 40); c.channels = (int)get32(f + 44);
    v = (uint32_t)c.vocab_padded;
    if (et_gpt_config_check(&c) != ET_OK || (uint32_t)c.vocab_padded != v)
        FAIL(ET_ERR_RANGE, "%s: invalid config: vocab %d (padded %u), context %d, layers %d, heads %d, channels %d, "
             "head_dim %d, ffn %d", path, c.vocab, v, c.context, c.layers, c.heads, c.channels, c.head_dim, c.ffn);
    if (mode != ET_QMODE_W8A8 && mode != ET_QMODE_W8A32)
        FAIL(ET_ERR_FORMAT, "%s: header field 'mode' is %u, expected 1 (w8a8) or 2 (w8a32)", path, mode);
    et_qgpt_tensors(&c, (et_qmode)mode, t, &need);
    blob = get64(f + 48);
    tok = get64(f + 56);
    if (blob != need)
        FAIL(ET_ERR_FORMAT, "%s: header says the blob has %llu bytes, the config implies %zu", path,
             (unsigned long long)blob, need);
    if (tok > MAX_FILE || file_bytes(need, (size_t)tok) > n)
        FAIL(ET_ERR_TRUNCATED, "%s: truncated: expected %zu bytes, file has %zu", path,
             tok > MAX_FILE ? (size_t)-1 : file_bytes(need, (size_t)tok), n);
    if (file_bytes(need, (size_t)tok) < n)
        FAIL(ET_ERR_FORMAT, "%s: %zu unexpected bytes after the checksum", path, n - file_bytes(need, (size_t)tok));
    off = n - 4;
    if (get32(f + off) != et_crc32(f, off))
        FAIL(ET_ERR_CRC, "%s: checksum mismatch: stored 0x%08x, computed 0x%08x (the file is corrupt)", path,
             get32(f + off), et_crc32(f, off));
    for (i = 0; i < ET_QGPT_NTENSORS; i++) {
        const uint8_t *e = f + HDR + i * ENTRY;
        if (strncmp((const char *)e, t[i].name, 16) != 0 || get32(e + 16) != (uint32_t)t[i].dtype ||
            get64(e + 24) != t[i].count || get64(e + 32) != t[i].offset)
            FAIL(ET_ERR_FORMAT, "%s: tensor table entry %zu is '%.15s' (count %llu, offset %llu), expected '%s' "
                 "(count %zu, offset %zu)", path, i, (const char *)e, (unsigned long long)get64(e + 24),
                 (unsigned long long)get64(e + 32), t[i].name, t[i].count, t[i].offset);
    }
    if (posix_memalign(&q->blob, 64, need ? need : 64) != 0) {
        q->blob = NULL;
        FAIL(ET_ERR_NOMEM, "%s: out of memory for a %zu-byte blob", path, need);
    }
    off = pad64(HDR + (size_t)ET_QGPT_NTENSORS * ENTRY);
    memcpy(q->blob, f + off, need);
    off += pad64(need);
    if (tok) {
        q->tokenizer = malloc((size_t)tok);
        if (!q->tokenizer) FAIL(ET_ERR_NOMEM, "%s: out of memory for the tokenizer", path);
        memcpy(q->tokenizer, f + off, (size_t)tok);
    }
    q->cfg = c;
    q->mode = (et_qmode)mode;
    q->blob_bytes = need;
    q->tokenizer_bytes = (size_t)tok;
    q->calib_method = get32(f + 64);
    memcpy(&q->calib_pct, f + 68, 4);
    q->calib_batches = get32(f + 72);
    q->src_nparams = get64(f + 80);
    s = ET_OK;
#undef FAIL
out:
    free(f);
    if (s != ET_OK) et_qmodel_free(q);
    return s;
}
