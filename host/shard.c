/* shard.c - reading and writing llm.c token shards (et_shard.h).
 *
 * Plain stdio, whole-file reads: a shard of the sizes edgetrain trains on fits in memory,
 * and avoiding mmap keeps this portable to any hosted libc. Integers are written and
 * read byte by byte as little-endian, so a big-endian host produces the same files.
 * Deliberately avoided: version 2 shards (uint32 tokens, LLaMA-3), which a uint16
 * vocabulary never needs; they are reported, not read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_shard.h"

static int32_t et__le32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

static void et__put_le32(unsigned char *p, int32_t v)
{
    uint32_t u = (uint32_t)v;
    p[0] = (unsigned char)u, p[1] = (unsigned char)(u >> 8);
    p[2] = (unsigned char)(u >> 16), p[3] = (unsigned char)(u >> 24);
}

et_status et_shard_write(const char *path, const uint16_t *toks, size_t n, et_error *err)
{
    unsigned char hdr[ET_SHARD_HEADER_BYTES], buf[8192];
    size_t plen, i = 0;
    char *tmp;
    FILE *f;
    int ok = 1;
    et_status rc = ET_OK;
    if (!path || (!toks && n)) return et_error_set(err, ET_ERR_INVALID, "et_shard_write: no path or tokens");
    if (n > ET_SHARD_MAX_TOKENS)
        return et_error_set(err, ET_ERR_RANGE, "%s: %zu tokens, a shard holds at most %u", path,
                            n, ET_SHARD_MAX_TOKENS);
    plen = strlen(path);
    tmp = malloc(plen + 5);
    if (!tmp) return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    memset(hdr, 0, sizeof hdr);
    et__put_le32(hdr, ET_SHARD_MAGIC);
    et__put_le32(hdr + 4, ET_SHARD_VERSION);
    et__put_le32(hdr + 8, (int32_t)n);
    f = fopen(tmp, "wb");
    if (!f) {
        rc = et_error_set(err, ET_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    ok = fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr;
    while (ok && i < n) {
        size_t k = 0;
        for (; i < n && k < sizeof buf; i++, k += 2) {
            buf[k] = (unsigned char)toks[i];
            buf[k + 1] = (unsigned char)(toks[i] >> 8);
        }
        ok = fwrite(buf, 1, k, f) == k;
    }
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        rc = et_error_set(err, ET_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        remove(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = et_error_set(err, ET_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp,
                          strerror(errno));
        remove(tmp);
    }
out:
    free(tmp);
    return rc;
}

/* Opens path, checks its header against its size, leaves f just past the header. */
static et_status et__shard_open(const char *path, FILE **fp, size_t *n, et_error *err)
{
    unsigned char hdr[ET_SHARD_HEADER_BYTES];
    FILE *f;
    size_t got;
    long end;
    int32_t magic, version, count;
    unsigned long long have, want;
    if (!path || !n) return et_error_set(err, ET_ERR_INVALID, "et_shard_read: no path or output");
    f = fopen(path, "rb");
    if (!f) return et_error_set(err, ET_ERR_IO, "%s: cannot open token shard: %s", path, strerror(errno));
    got = fread(hdr, 1, sizeof hdr, f);
    if (got >= 4 && (magic = et__le32(hdr)) != ET_SHARD_MAGIC) {
        fclose(f);
        return et_error_set(err, ET_ERR_FORMAT,
                            "%s: not a token shard (magic %d, expected %d)", path, magic,
                            ET_SHARD_MAGIC);
    }
    if (got < sizeof hdr) {
        int rd = ferror(f);
        fclose(f);
        if (rd) return et_error_set(err, ET_ERR_IO, "%s: read error", path);
        return et_error_set(err, ET_ERR_TRUNCATED,
                            "%s: truncated header: %zu bytes, a shard header is %d", path, got,
                            ET_SHARD_HEADER_BYTES);
    }
    version = et__le32(hdr + 4);
    count = et__le32(hdr + 8);
    if (version != ET_SHARD_VERSION) {
        fclose(f);
        return et_error_set(err, ET_ERR_FORMAT, "%s: shard version %d, expected %d%s", path,
                            version, ET_SHARD_VERSION,
                            version == 2 ? " (version 2 holds uint32 tokens, not supported)" : "");
    }
    if (count < 0) {
        fclose(f);
        return et_error_set(err, ET_ERR_FORMAT, "%s: negative token count %d in header", path, count);
    }
    if (fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 0 ||
        fseek(f, ET_SHARD_HEADER_BYTES, SEEK_SET) != 0) {
        fclose(f);
        return et_error_set(err, ET_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    }
    have = (unsigned long long)end - ET_SHARD_HEADER_BYTES;
    want = 2ull * (unsigned long long)count;
    if (have < want) {
        fclose(f);
        return et_error_set(err, ET_ERR_TRUNCATED,
                            "%s: truncated: header says %d tokens (%llu bytes), file has %llu "
                            "bytes of tokens", path, count, want, have);
    }
    if (have > want) {
        fclose(f);
        return et_error_set(err, ET_ERR_FORMAT,
                            "%s: %llu bytes of trailing garbage after %d tokens", path,
                            have - want, count);
    }
    *fp = f;
    *n = (size_t)count;
    return ET_OK;
}

et_status et_shard_info(const char *path, size_t *n, et_error *err)
{
    FILE *f;
    et_status rc = et__shard_open(path, &f, n, err);
    if (rc == ET_OK) fclose(f);
    return rc;
}

et_status et_shard_read(const char *path, uint16_t **toks, size_t *n, et_error *err)
{
    FILE *f;
    size_t count, i = 0;
    uint16_t *t;
    unsigned char buf[8192];
    et_status rc;
    if (!toks) return et_error_set(err, ET_ERR_INVALID, "et_shard_read: no output");
    rc = et__shard_open(path, &f, &count, err);
    if (rc) return rc;
    t = malloc((count ? count : 1) * sizeof *t);
    if (!t) {
        fclose(f);
        return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory for %zu tokens", path, count);
    }
    while (i < count) {
        size_t want = count - i < sizeof buf / 2 ? count - i : sizeof buf / 2, got, k;
        got = fread(buf, 2, want, f);
        for (k = 0; k < got; k++) t[i + k] = (uint16_t)(buf[2 * k] | buf[2 * k + 1] << 8);
        i += got;
        if (got < want) break;
    }
    fclose(f);
    if (i < count) {
        free(t);
        return et_error_set(err, ET_ERR_TRUNCATED, "%s: read only %zu of %zu tokens", path, i, count);
    }
    *toks = t;
    *n = count;
    return ET_OK;
}
