/* check_ckpt.c - Check suite for CRC-32 (core/crc32.c) and checkpoints (host/checkpoint.c).
 *
 * Covers: CRC known vectors, every table entry against a bitwise reference, incremental
 * == one-shot; bitwise round trips of edgetrain's format (with and without AdamW state
 * and blobs) and of llm.c's; every malformed-file case the loaders report (made by
 * writing a good file and then truncating it, flipping bytes or rewriting fields with
 * the checksums fixed up, so each check is reached on its own); absurd headers that
 * must fail before any large allocation; and atomic saves (a failed save leaves the
 * previous file byte-identical and no temporary behind).
 *
 * Needs no model run: parameters are seeded bit patterns (NaNs and denormals included).
 * Byte offsets used here are the ones docs/FORMATS.md documents.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "et_check.h"
#include "et_ckpt.h"
#include "et_crc32.h"

// --- helpers

static uint32_t bitwise_crc(const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = 0xFFFFFFFFu;
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static uint32_t rnd(uint64_t *s)
{
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return (uint32_t)(*s >> 16);
}

static void fill_bits(void *dst, size_t bytes, uint64_t seed)
{
    uint8_t *p = (uint8_t *)dst;
    uint64_t s = seed * 2654435761u + 1;
    size_t i;
    for (i = 0; i < bytes; i++) p[i] = (uint8_t)rnd(&s);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static void spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Recomputes both checksums of an edgetrain checkpoint image. */
static void fix_crcs(uint8_t *b, size_t n)
{
    put32(b + 188, et_crc32(b, 188));
    put32(b + n - 4, et_crc32(b, n - 4));
}

/* A scratch directory per test, emptied and removed by rm_dir. */
static char g_dir[64];
static char g_path[128];

static void mk_dir(void)
{
    strcpy(g_dir, "/tmp/et_ckpt_XXXXXX");
    ck_assert(mkdtemp(g_dir) != NULL);
    snprintf(g_path, sizeof g_path, "%s/model.ckpt", g_dir);
}

static void rm_dir(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char p[512];
    if (!d) return;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    closedir(d);
    rmdir(g_dir);
}

/* Entries of g_dir whose name contains ".tmp." */
static int count_temps(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    int n = 0;
    ck_assert(d != NULL);
    while ((e = readdir(d)) != NULL) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static et_gpt_config tiny_cfg(void)
{
    et_gpt_config c = {0};
    c.vocab = 65;
    c.vocab_padded = 0;
    c.context = 16;
    c.layers = 2;
    c.heads = 2;
    c.channels = 8;
    ck_assert_int_eq(et_gpt_config_check(&c), ET_OK);
    return c;
}

/* A checkpoint with seeded contents; what it owns is freed by free_made(). */
static et_ckpt make_ckpt(int adam, size_t tok_bytes, size_t state_bytes, uint64_t seed)
{
    et_ckpt c;
    memset(&c, 0, sizeof c);
    c.cfg = tiny_cfg();
    c.nparams = et_gpt_tensors(&c.cfg, (et_tensor_info[ET_GPT_NTENSORS]){{0}});
    c.params = (float *)malloc(c.nparams * sizeof(float));
    fill_bits(c.params, c.nparams * sizeof(float), seed);
    if (adam) {
        c.adam_m = (float *)malloc(c.nparams * sizeof(float));
        c.adam_v = (float *)malloc(c.nparams * sizeof(float));
        fill_bits(c.adam_m, c.nparams * sizeof(float), seed + 1);
        fill_bits(c.adam_v, c.nparams * sizeof(float), seed + 2);
        c.step = 1234;
    }
    if (tok_bytes) {
        c.tokenizer = malloc(tok_bytes);
        c.tokenizer_bytes = tok_bytes;
        fill_bits(c.tokenizer, tok_bytes, seed + 3);
    }
    if (state_bytes) {
        c.train_state = malloc(state_bytes);
        c.train_state_bytes = state_bytes;
        fill_bits(c.train_state, state_bytes, seed + 4);
    }
    return c;
}

static void free_made(et_ckpt *c)
{
    free(c->params); free(c->adam_m); free(c->adam_v); free(c->tokenizer); free(c->train_state);
    memset(c, 0, sizeof *c);
}

static void assert_same(const et_ckpt *a, const et_ckpt *b)
{
    ck_assert_int_eq(a->cfg.vocab, b->cfg.vocab);
    ck_assert_int_eq(a->cfg.vocab_padded, b->cfg.vocab_padded);
    ck_assert_int_eq(a->cfg.context, b->cfg.context);
    ck_assert_int_eq(a->cfg.layers, b->cfg.layers);
    ck_assert_int_eq(a->cfg.heads, b->cfg.heads);
    ck_assert_int_eq(a->cfg.channels, b->cfg.channels);
    ck_assert_uint_eq(a->nparams, b->nparams);
    ck_assert_int_eq(a->step, b->step);
    ck_assert(memcmp(a->params, b->params, a->nparams * sizeof(float)) == 0);
    ck_assert_int_eq(!a->adam_m, !b->adam_m);
    ck_assert_int_eq(!a->adam_v, !b->adam_v);
    if (a->adam_m) {
        ck_assert(memcmp(a->adam_m, b->adam_m, a->nparams * sizeof(float)) == 0);
        ck_assert(memcmp(a->adam_v, b->adam_v, a->nparams * sizeof(float)) == 0);
    }
    ck_assert_uint_eq(a->tokenizer_bytes, b->tokenizer_bytes);
    ck_assert_int_eq(!a->tokenizer, !b->tokenizer);
    if (a->tokenizer_bytes) ck_assert(memcmp(a->tokenizer, b->tokenizer, a->tokenizer_bytes) == 0);
    ck_assert_uint_eq(a->train_state_bytes, b->train_state_bytes);
    ck_assert_int_eq(!a->train_state, !b->train_state);
    if (a->train_state_bytes)
        ck_assert(memcmp(a->train_state, b->train_state, a->train_state_bytes) == 0);
}

typedef et_status (*load_fn)(const char *, et_ckpt *, et_error *);

/* Loading @p path fails with @p want, a message naming the file and containing
 * @p needle (when given), and a zeroed checkpoint. */
static void expect_fail(load_fn fn, const char *path, et_status want, const char *needle)
{
    et_ckpt c;
    et_error err;
    et_ckpt z;
    et_status s;
    memset(&c, 0xA5, sizeof c);
    memset(&z, 0, sizeof z);
    memset(&err, 0, sizeof err);
    s = fn(path, &c, &err);
    ck_assert_msg(s == want, "%s: status %d (%s), expected %d; message: %s", path, s,
                  et_status_str(s), want, err.msg);
    ck_assert_int_eq(err.status, want);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message does not name the file: %s", err.msg);
    if (needle)
        ck_assert_msg(strstr(err.msg, needle) != NULL, "message lacks '%s': %s", needle, err.msg);
    ck_assert(memcmp(&c, &z, sizeof c) == 0);
}

/* Saves a good checkpoint at g_path and returns its bytes. */
static uint8_t *good_file(int adam, size_t tok, size_t st, size_t *len)
{
    et_ckpt c = make_ckpt(adam, tok, st, 7);
    et_error err;
    ck_assert_msg(et_ckpt_save(g_path, &c, &err) == ET_OK, "%s", err.msg);
    free_made(&c);
    return et_test_slurp(g_path, len);
}

/* Writes @p b (with checksums fixed when @p fix) and expects et_ckpt_load to fail. */
static void bad_ckpt(uint8_t *b, size_t n, int fix, et_status want, const char *needle)
{
    if (fix) fix_crcs(b, n);
    spit(g_path, b, n);
    expect_fail(et_ckpt_load, g_path, want, needle);
    expect_fail(et_model_load, g_path, want, needle);
}

// --- CRC-32

START_TEST(crc_known_vectors)
{
    const char *fox = "The quick brown fox jumps over the lazy dog";
    ck_assert_uint_eq(et_crc32("123456789", 9), 0xCBF43926u);
    ck_assert_uint_eq(et_crc32(NULL, 0), 0u);
    ck_assert_uint_eq(et_crc32("", 0), 0u);
    ck_assert_uint_eq(et_crc32("a", 1), 0xE8B7BE43u);
    ck_assert_uint_eq(et_crc32(fox, strlen(fox)), 0x414FA339u);
    ck_assert_uint_eq(et_crc32_update(0xCBF43926u, NULL, 0), 0xCBF43926u);
}
END_TEST

START_TEST(crc_every_table_entry)
{
    /* A one-byte CRC indexes the table at 0xFF ^ byte: all 256 bytes reach all entries. */
    uint8_t b[4096];
    int i;
    for (i = 0; i < 256; i++) {
        uint8_t x = (uint8_t)i;
        ck_assert_uint_eq(et_crc32(&x, 1), bitwise_crc(&x, 1));
    }
    fill_bits(b, sizeof b, 99);
    ck_assert_uint_eq(et_crc32(b, sizeof b), bitwise_crc(b, sizeof b));
}
END_TEST

START_TEST(crc_incremental_equals_one_shot)
{
    uint8_t b[3000];
    uint64_t s = 5;
    int trial;
    fill_bits(b, sizeof b, 3);
    for (trial = 0; trial < 50; trial++) {
        size_t pos = 0;
        uint32_t c = 0;
        while (pos < sizeof b) {
            size_t k = rnd(&s) % 300;
            if (k > sizeof b - pos) k = sizeof b - pos;
            c = et_crc32_update(c, b + pos, k);
            pos += k;
        }
        ck_assert_uint_eq(c, et_crc32(b, sizeof b));
    }
    ck_assert_uint_eq(et_crc32_update(et_crc32("1234", 4), "56789", 5), 0xCBF43926u);
}
END_TEST

// --- edgetrain format: round trips

static void roundtrip(int adam, size_t tok, size_t st)
{
    et_ckpt c = make_ckpt(adam, tok, st, 11), d;
    et_error err;
    mk_dir();
    ck_assert_msg(et_ckpt_save(g_path, &c, &err) == ET_OK, "%s", err.msg);
    ck_assert_msg(et_ckpt_load(g_path, &d, &err) == ET_OK, "%s", err.msg);
    assert_same(&c, &d);
    et_ckpt_free(&d);
    ck_assert_msg(et_model_load(g_path, &d, &err) == ET_OK, "%s", err.msg);
    assert_same(&c, &d);
    et_ckpt_free(&d);
    ck_assert_ptr_null(d.params);
    ck_assert_int_eq(count_temps(), 0);
    free_made(&c);
    rm_dir();
}

START_TEST(ckpt_roundtrip_params_only) { roundtrip(0, 0, 0); }
END_TEST
START_TEST(ckpt_roundtrip_adam) { roundtrip(1, 0, 0); }
END_TEST
START_TEST(ckpt_roundtrip_adam_and_blobs) { roundtrip(1, 1000, 37); }
END_TEST
START_TEST(ckpt_roundtrip_tokenizer_only) { roundtrip(0, 65, 0); }
END_TEST
START_TEST(ckpt_roundtrip_state_only) { roundtrip(0, 0, 1); }
END_TEST

START_TEST(ckpt_layout_matches_docs)
{
    size_t n, np;
    uint8_t *b;
    et_ckpt c = make_ckpt(1, 100, 10, 1);
    mk_dir();
    np = c.nparams;
    free_made(&c);
    b = good_file(1, 100, 10, &n);
    ck_assert(memcmp(b, "ETCKPT\0\0", 8) == 0);
    ck_assert_uint_eq(get32(b + 8), 1);
    ck_assert_uint_eq(get32(b + 12), 192);
    ck_assert_uint_eq(get32(b + 16), 7);
    ck_assert_uint_eq(get32(b + 20), 16);
    ck_assert_uint_eq(get32(b + 24), 65);
    ck_assert_uint_eq(get32(b + 28), 128);
    ck_assert_uint_eq(get32(b + 48), 1234);
    ck_assert_uint_eq(get64(b + 56), np);
    ck_assert_uint_eq(get64(b + 80), 192);
    ck_assert_uint_eq(get64(b + 88), 192 + 16 * 64);
    ck_assert_uint_eq(get64(b + 96) % 64, 0);
    ck_assert_uint_eq(get64(b + 96), (192 + 16 * 64 + 4 * np + 63) / 64 * 64);
    ck_assert_uint_eq(get64(b + 128), n);
    ck_assert_str_eq((const char *)b + 192, "wte");
    ck_assert_str_eq((const char *)b + 192 + 15 * 64, "lnfb");
    ck_assert_uint_eq(get32(b + 188), et_crc32(b, 188));
    ck_assert_uint_eq(get32(b + n - 4), et_crc32(b, n - 4));
    ck_assert_uint_eq(get32(b + n - 4), bitwise_crc(b, n - 4));
    free(b);
    rm_dir();
}
END_TEST

START_TEST(ckpt_save_derives_vocab_padded_and_replaces)
{
    et_ckpt a = make_ckpt(0, 0, 0, 1), b = make_ckpt(1, 3, 0, 2), d;
    et_error err;
    mk_dir();
    a.cfg.vocab_padded = 0;
    ck_assert_msg(et_ckpt_save(g_path, &a, &err) == ET_OK, "%s", err.msg);
    ck_assert_int_eq(et_ckpt_load(g_path, &d, &err), ET_OK);
    ck_assert_int_eq(d.cfg.vocab_padded, 128);
    et_ckpt_free(&d);
    ck_assert_msg(et_ckpt_save(g_path, &b, &err) == ET_OK, "%s", err.msg); /* over a */
    ck_assert_int_eq(et_ckpt_load(g_path, &d, &err), ET_OK);
    assert_same(&b, &d);
    et_ckpt_free(&d);
    et_ckpt_free(NULL);
    et_ckpt_free(&d);
    free_made(&a);
    free_made(&b);
    rm_dir();
}
END_TEST

// --- edgetrain format: bad files

START_TEST(ckpt_bad_missing_or_not_a_file)
{
    mk_dir();
    expect_fail(et_ckpt_load, g_path, ET_ERR_IO, "cannot open");
    expect_fail(et_llmc_load, g_path, ET_ERR_IO, "cannot open");
    expect_fail(et_model_load, g_path, ET_ERR_IO, "cannot open");
    ck_assert_int_eq(mkdir(g_path, 0755), 0);
    expect_fail(et_ckpt_load, g_path, ET_ERR_IO, "not a regular file");
    expect_fail(et_model_load, g_path, ET_ERR_IO, "not a regular file");
    rm_dir();
}
END_TEST

START_TEST(ckpt_bad_magic)
{
    size_t n;
    uint8_t *b;
    mk_dir();
    b = good_file(0, 0, 0, &n);
    memcpy(b, "GARBAGE!", 8);
    spit(g_path, b, n);
    expect_fail(et_ckpt_load, g_path, ET_ERR_FORMAT, "magic is [47 41 52 42 41 47 45 21]");
    expect_fail(et_ckpt_load, g_path, ET_ERR_FORMAT, "expected \"ETCKPT");
    expect_fail(et_model_load, g_path, ET_ERR_FORMAT, "20240326");
    expect_fail(et_llmc_load, g_path, ET_ERR_FORMAT, "expected 20240326");
    spit(g_path, b, 3); /* too short for any magic */
    expect_fail(et_ckpt_load, g_path, ET_ERR_TRUNCATED, "file has 3 bytes");
    expect_fail(et_model_load, g_path, ET_ERR_TRUNCATED, "too short");
    free(b);
    rm_dir();
}
END_TEST

START_TEST(ckpt_bad_version)
{
    size_t n;
    uint8_t *b;
    mk_dir();
    b = good_file(0, 0, 0, &n);
    put32(b + 8, 3);
    bad_ckpt(b, n, 1, ET_ERR_UNSUPPORTED, "version 3");
    free(b);
    rm_dir();
}
END_TEST

START_TEST(ckpt_bad_truncated)
{
    size_t n, cuts[9], i;
    uint8_t *b;
    char want[64];
    mk_dir();
    b = good_file(1, 50, 20, &n);
    cuts[0] = 0; cuts[1] = 5; cuts[2] = 8; cuts[3] = 191; cuts[4] = 192; cuts[5] = 1216;
    cuts[6] = 1216 + 100; cuts[7] = n - 30; cuts[8] = n - 1;
    for (i = 0; i < 9; i++) {
        spit(g_path, b, cuts[i]);
        snprintf(want, sizeof want, "%zu", cuts[i]);
        expect_fail(et_ckpt_load, g_path, ET_ERR_TRUNCATED, want);
        if (cuts[i] >= 192) {
            snprintf(want, sizeof want, "expected %zu bytes, file has %zu", n, cuts[i]);
            expect_fail(et_ckpt_load, g_path, ET_ERR_TRUNCATED, want);
        }
    }
    free(b);
    rm_dir();
}
END_TEST

START_TEST(ckpt_bad_trailing_bytes)
{
    size_t n;
    uint8_t *b;
    mk_dir();
    b = good_file(0, 0, 0, &n);
    b = (uint8_t *)realloc(b, n + 1);
    b[n] = 0;
    bad_ckpt(b, n + 1, 0, ET_ERR_FORMAT, "unexpected bytes");
    free(b);
    rm_dir();
}
END_TEST

START_TEST(ckpt_bad_crc)
{
    size_t n, i, at[5];
    uint8_t *b;
    mk_dir();
    b = good_file(1, 40, 30, &n);
    at[0] = 1216 + 17;               /* params */
    at[1] = (size_t)get64(b + 104);  /* adam_v */
    at[2] = (size_t)get64(b + 112) + 39; /* last byte of the tokenizer */
    at[3] = 192 + 3 * 64 + 30;       /* tensor table (a shape) */
    at[4] = n - 2;                   /* the stored checksum itself */
    for (i = 0; i < 5; i++) {
        b[at[i]] ^= 0x10;
        bad_ckpt(b, n, 0, ET_ERR_CRC, "checksum mismatch");
        b[at[i]] ^= 0x10;
    }
    b[30] ^= 1; /* header: caught by the header checksum */
    bad_ckpt(b, n, 0, ET_ERR_CRC, "header checksum");
    b[30] ^= 1;
    spit(g_path, b, n); /* restored: loads again */
    {
        et_ckpt c;
        et_error err;
        ck_assert_msg(et_ckpt_load(g_path, &c, &err) == ET_OK, "%s", err.msg);
        et_ckpt_free(&c);
    }
    free(b);
    rm_dir();
}
END_TEST

static void bad_field32(size_t off, uint32_t v, et_status want, const char *needle)
{
    size_t n;
    uint8_t *b = good_file(1, 8, 8, &n);
    put32(b + off, v);
    bad_ckpt(b, n, 1, want, needle);
    free(b);
}

START_TEST(ckpt_bad_config)
{
    mk_dir();
    bad_field32(44, 0, ET_ERR_RANGE, "'channels' is 0");               /* C = 0 */
    bad_field32(24, (uint32_t)-5, ET_ERR_RANGE, "'vocab' is -5");      /* V < 0 */
    bad_field32(36, 0x80000000u, ET_ERR_RANGE, "'layers'");            /* INT_MIN */
    bad_field32(40, 3, ET_ERR_RANGE, "not a multiple of 'heads' (3)"); /* C % NH */
    bad_field32(28, 64, ET_ERR_RANGE, "smaller than 'vocab'");         /* Vp < V */
    bad_field32(28, 192, ET_ERR_RANGE, "'vocab_padded' is 192, expected 128");
    bad_field32(32, 1 << 29, ET_ERR_RANGE, "et_gpt_config_check");     /* beyond model limits */
    bad_field32(48, (uint32_t)-1, ET_ERR_RANGE, "'step' is -1");
    rm_dir();
}
END_TEST

START_TEST(ckpt_bad_counts_and_layout)
{
    size_t n;
    uint8_t *b;
    mk_dir();
    b = good_file(1, 8, 8, &n);
    put64(b + 56, get64(b + 56) + 1); /* nparams off by one */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "but the config");
    free(b);
    b = good_file(1, 8, 8, &n);
    put32(b + 44, 16); /* C = 16: config implies more parameters than the header says */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "implies");
    free(b);
    b = good_file(1, 8, 8, &n);
    put32(b + 16, 0x8 | 7); /* unknown flag */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "unknown flags");
    free(b);
    b = good_file(1, 8, 8, &n);
    put32(b + 16, 1 | 4); /* tokenizer flag cleared but its size kept */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "disagree");
    free(b);
    b = good_file(1, 8, 8, &n);
    put32(b + 20, 15);
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "15 entries");
    free(b);
    b = good_file(1, 8, 8, &n);
    put64(b + 96, get64(b + 96) + 64); /* adam_m offset */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "'adam_m'");
    free(b);
    b = good_file(1, 8, 8, &n);
    put64(b + 128, n - 4); /* file_bytes: the file looks 4 bytes too long */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "4 unexpected bytes");
    free(b);
    b = good_file(1, 8, 8, &n);
    put64(b + 128, n + 64); /* file_bytes: the file looks cut short */
    bad_ckpt(b, n, 1, ET_ERR_TRUNCATED, "truncated");
    free(b);
    b = good_file(1, 8, 8, &n);
    b[150] = 1; /* reserved */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "reserved header byte 150");
    free(b);
    b = good_file(1, 8, 8, &n);
    put32(b + 12, 256);
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "header_bytes is 256");
    free(b);
    rm_dir();
}
END_TEST

START_TEST(ckpt_bad_tensor_table)
{
    size_t n;
    uint8_t *b;
    mk_dir();
    b = good_file(0, 0, 0, &n);
    put64(b + 192 + 4 * 64 + 32, get64(b + 192 + 4 * 64 + 32) + 8); /* qkvw count */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "entry 4 is 'qkvw'");
    free(b);
    b = good_file(0, 0, 0, &n);
    memcpy(b + 192 + 64, "wpX", 3); /* a name */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "'wpX'");
    free(b);
    b = good_file(0, 0, 0, &n);
    put32(b + 192 + 6 * 64 + 48, 7); /* attprojw shape[1] */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "expected 'attprojw'");
    free(b);
    b = good_file(0, 0, 0, &n);
    put64(b + 192 + 15 * 64 + 24, 0); /* lnfb offset */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "entry 15");
    free(b);
    rm_dir();
}
END_TEST

#if defined(__SANITIZE_ADDRESS__)
#define ET_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ET_TEST_ASAN 1
#endif
#endif

/* Outside ASan (which reserves terabytes of shadow), cap the address space so that a
 * loader that did try a huge allocation would fail visibly rather than succeed. */
#ifndef ET_TEST_ASAN
static struct rlimit g_old_as;
#endif
static void cap_memory(void)
{
#ifndef ET_TEST_ASAN
    struct rlimit r;
    getrlimit(RLIMIT_AS, &g_old_as);
    r = g_old_as;
    r.rlim_cur = (rlim_t)1 << 30;
    if (g_old_as.rlim_cur != RLIM_INFINITY && g_old_as.rlim_cur < r.rlim_cur) r = g_old_as;
    setrlimit(RLIMIT_AS, &r);
#endif
}
static void uncap_memory(void)
{
#ifndef ET_TEST_ASAN
    setrlimit(RLIMIT_AS, &g_old_as);
#endif
}

START_TEST(ckpt_bad_absurd_sizes)
{
    size_t n;
    uint8_t *b;
    mk_dir();
    b = good_file(1, 8, 8, &n);
    cap_memory();
    put64(b + 56, (uint64_t)1 << 62); /* nparams */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "nparams 4611686018427387904");
    put64(b + 56, (uint64_t)-1);
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "more than the whole file");
    free(b);
    b = good_file(1, 8, 8, &n);
    put64(b + 64, (uint64_t)1 << 63); /* tokenizer_bytes */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "tokenizer blob");
    free(b);
    b = good_file(1, 8, 8, &n);
    put64(b + 72, (uint64_t)-1); /* train_state_bytes */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "train_state blob");
    free(b);
    b = good_file(1, 8, 8, &n);
    put64(b + 72, n - 100); /* fits the file size, but not the layout */
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "'file_bytes'");
    free(b);
    b = good_file(1, 8, 8, &n);
    put32(b + 44, 1 << 16); /* C = 65536: passes the model's limits, not the file size */
    put32(b + 40, 1 << 10);
    put32(b + 36, 4096);
    bad_ckpt(b, n, 1, ET_ERR_FORMAT, "at least");
    uncap_memory();
    free(b);
    rm_dir();
}
END_TEST

// --- saving: validation and atomicity

START_TEST(save_rejects_bad_input_and_keeps_old_file)
{
    et_ckpt good = make_ckpt(1, 5, 5, 3), c;
    et_error err;
    size_t n0, n1;
    uint8_t *before, *after;
    float *keep_m;
    mk_dir();
    ck_assert_int_eq(et_ckpt_save(g_path, &good, &err), ET_OK);
    before = et_test_slurp(g_path, &n0);

#define SAVE_FAILS(mutate, needle)                                                   \
    do {                                                                             \
        c = good;                                                                    \
        mutate;                                                                      \
        memset(&err, 0, sizeof err);                                                 \
        ck_assert_int_eq(et_ckpt_save(g_path, &c, &err), ET_ERR_INVALID);            \
        ck_assert_int_eq(err.status, ET_ERR_INVALID);                                \
        ck_assert_msg(strstr(err.msg, g_path) && strstr(err.msg, needle),            \
                      "message: %s (wanted '%s')", err.msg, needle);                 \
        after = et_test_slurp(g_path, &n1);                                                  \
        ck_assert_uint_eq(n0, n1);                                                   \
        ck_assert(memcmp(before, after, n0) == 0);                                   \
        free(after);                                                                 \
        ck_assert_int_eq(count_temps(), 0);                                          \
    } while (0)

    SAVE_FAILS(c.cfg.heads = 3, "not a multiple of 'heads'");
    SAVE_FAILS(c.cfg.channels = -8, "'channels' is -8");
    SAVE_FAILS(c.cfg.vocab_padded = 192, "vocab_padded is 192, expected 128");
    SAVE_FAILS(c.nparams += 1, "nparams");
    SAVE_FAILS(c.params = NULL, "params is NULL");
    keep_m = good.adam_m;
    SAVE_FAILS(c.adam_v = NULL, "both set or both NULL");
    ck_assert_ptr_eq(keep_m, good.adam_m);
    SAVE_FAILS(c.step = -1, "step is -1");
    SAVE_FAILS(c.tokenizer = NULL, "tokenizer blob is NULL");
    SAVE_FAILS(c.train_state = NULL, "train_state blob is NULL");
#undef SAVE_FAILS

    ck_assert_int_eq(et_ckpt_save(NULL, &good, &err), ET_ERR_INVALID);
    ck_assert_int_eq(et_ckpt_save(g_path, NULL, &err), ET_ERR_INVALID);
    ck_assert_int_eq(et_ckpt_save(g_path, NULL, NULL), ET_ERR_INVALID); /* err may be NULL */
    {
        et_gpt_config bad = good.cfg;
        bad.layers = 0;
        ck_assert_int_eq(et_llmc_save(g_path, &bad, good.params, &err), ET_ERR_INVALID);
        ck_assert_int_eq(et_llmc_save(g_path, &good.cfg, NULL, &err), ET_ERR_INVALID);
    }
    after = et_test_slurp(g_path, &n1);
    ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(after);
    free(before);
    free_made(&good);
    rm_dir();
}
END_TEST

START_TEST(save_atomic_when_temp_cannot_be_created)
{
    /* Tests run as root, so a read-only directory would not stop us: block the exact
     * temporary name with a directory instead. */
    et_ckpt a = make_ckpt(0, 0, 0, 1), b = make_ckpt(1, 9, 9, 2), d;
    et_error err;
    char tmp[256];
    size_t n0, n1;
    uint8_t *before, *after;
    struct stat st;
    mk_dir();
    ck_assert_int_eq(et_ckpt_save(g_path, &a, &err), ET_OK);
    before = et_test_slurp(g_path, &n0);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", g_path, (long)getpid());
    ck_assert_int_eq(mkdir(tmp, 0755), 0);
    ck_assert_int_eq(et_ckpt_save(g_path, &b, &err), ET_ERR_IO);
    ck_assert_msg(strstr(err.msg, g_path) && strstr(err.msg, "temporary"), "%s", err.msg);
    ck_assert_int_eq(et_llmc_save(g_path, &b.cfg, b.params, &err), ET_ERR_IO);
    after = et_test_slurp(g_path, &n1);
    ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(after);
    ck_assert_int_eq(stat(tmp, &st), 0); /* what blocked us is left alone */
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(rmdir(tmp), 0);
    ck_assert_int_eq(et_ckpt_load(g_path, &d, &err), ET_OK);
    assert_same(&a, &d);
    et_ckpt_free(&d);

    /* A stale regular temp file (a crashed save with our pid) does not block a save. */
    spit(tmp, "junk", 4);
    ck_assert_msg(et_ckpt_save(g_path, &b, &err) == ET_OK, "%s", err.msg);
    ck_assert_int_eq(count_temps(), 0);
    ck_assert_int_eq(et_ckpt_load(g_path, &d, &err), ET_OK);
    assert_same(&b, &d);
    et_ckpt_free(&d);
    free(before);
    free_made(&a);
    free_made(&b);
    rm_dir();
}
END_TEST

START_TEST(save_fails_cleanly_on_rename_and_missing_dir)
{
    et_ckpt a = make_ckpt(0, 0, 0, 1);
    et_error err;
    char p[256];
    mk_dir();
    /* The target is a non-empty directory: the rename fails after the temp was written. */
    ck_assert_int_eq(mkdir(g_path, 0755), 0);
    snprintf(p, sizeof p, "%s/keep", g_path);
    spit(p, "x", 1);
    ck_assert_int_eq(et_ckpt_save(g_path, &a, &err), ET_ERR_IO);
    ck_assert_msg(strstr(err.msg, "rename"), "%s", err.msg);
    ck_assert_int_eq(count_temps(), 0);
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(rmdir(g_path), 0);
    /* No such directory. */
    snprintf(p, sizeof p, "%s/no/such/dir/m.ckpt", g_dir);
    ck_assert_int_eq(et_ckpt_save(p, &a, &err), ET_ERR_IO);
    ck_assert_msg(strstr(err.msg, p), "%s", err.msg);
    ck_assert_int_eq(et_llmc_save(p, &a.cfg, a.params, &err), ET_ERR_IO);
    free_made(&a);
    rm_dir();
}
END_TEST

// --- llm.c format

/* Writes an llm.c file by hand: header ints, then @p nfloats seeded floats. */
static float *write_llmc(const char *path, const int32_t hv[8], size_t nfloats, int version)
{
    uint8_t h[1024];
    float *p = (float *)malloc(nfloats * sizeof(float) + 1);
    FILE *f;
    int i;
    memset(h, 0, sizeof h);
    for (i = 0; i < 8; i++) put32(h + 4 * i, (uint32_t)hv[i]);
    put32(h + 4, (uint32_t)version);
    fill_bits(p, nfloats * sizeof(float), 77);
    f = fopen(path, "wb");
    ck_assert(f != NULL);
    ck_assert_uint_eq(fwrite(h, 1, sizeof h, f), sizeof h);
    ck_assert_uint_eq(fwrite(p, sizeof(float), nfloats, f), nfloats);
    ck_assert_int_eq(fclose(f), 0);
    return p;
}

START_TEST(llmc_roundtrip)
{
    et_ckpt a = make_ckpt(1, 4, 4, 21), d;
    et_error err;
    size_t n;
    uint8_t *b;
    mk_dir();
    ck_assert_msg(et_llmc_save(g_path, &a.cfg, a.params, &err) == ET_OK, "%s", err.msg);
    b = et_test_slurp(g_path, &n);
    ck_assert_uint_eq(n, 1024 + 4 * a.nparams);
    ck_assert_uint_eq(get32(b), 20240326u);
    ck_assert_uint_eq(get32(b + 4), 3);
    ck_assert_uint_eq(get32(b + 8), 16);  /* maxT */
    ck_assert_uint_eq(get32(b + 12), 65); /* V */
    ck_assert_uint_eq(get32(b + 16), 2);  /* L */
    ck_assert_uint_eq(get32(b + 20), 2);  /* NH */
    ck_assert_uint_eq(get32(b + 24), 8);  /* C */
    ck_assert_uint_eq(get32(b + 28), 128); /* Vp */
    ck_assert(memcmp(b + 1024, a.params, 4 * a.nparams) == 0);
    free(b);
    ck_assert_msg(et_llmc_load(g_path, &d, &err) == ET_OK, "%s", err.msg);
    ck_assert_ptr_null(d.adam_m);
    ck_assert_ptr_null(d.adam_v);
    ck_assert_ptr_null(d.tokenizer);
    ck_assert_ptr_null(d.train_state);
    ck_assert_int_eq(d.step, 0);
    free(a.adam_m); free(a.adam_v); free(a.tokenizer); free(a.train_state);
    a.adam_m = a.adam_v = NULL;
    a.tokenizer = a.train_state = NULL;
    a.tokenizer_bytes = a.train_state_bytes = 0;
    a.step = 0;
    assert_same(&a, &d);
    et_ckpt_free(&d);
    ck_assert_msg(et_model_load(g_path, &d, &err) == ET_OK, "%s", err.msg);
    assert_same(&a, &d);
    et_ckpt_free(&d);
    expect_fail(et_ckpt_load, g_path, ET_ERR_FORMAT, "llm.c GPT-2 checkpoint");
    ck_assert_int_eq(count_temps(), 0);
    free_made(&a);
    rm_dir();
}
END_TEST

START_TEST(llmc_vocab_padded_to_128_is_repadded)
{
    /* V = 130: edgetrain pads to 192, llm.c's exporter to 256. */
    et_gpt_config cfg = {130, 0, 16, 1, 2, 8, 0, 0};
    int32_t hv[8] = {20240326, 3, 16, 130, 1, 2, 8, 256};
    size_t n, i, C = 8;
    float *file, *zero;
    et_ckpt d;
    et_error err;
    mk_dir();
    ck_assert_int_eq(et_gpt_config_check(&cfg), ET_OK);
    n = et_gpt_tensors(&cfg, (et_tensor_info[ET_GPT_NTENSORS]){{0}});
    file = write_llmc(g_path, hv, n + (256 - 192) * C, 3);
    ck_assert_msg(et_llmc_load(g_path, &d, &err) == ET_OK, "%s", err.msg);
    ck_assert_int_eq(d.cfg.vocab_padded, 192);
    ck_assert_uint_eq(d.nparams, n);
    ck_assert(memcmp(d.params, file, 130 * C * 4) == 0);
    zero = (float *)calloc((192 - 130) * C, sizeof(float));
    ck_assert(memcmp(d.params + 130 * C, zero, (192 - 130) * C * 4) == 0);
    for (i = 192 * C; i < n; i++)
        ck_assert(memcmp(&d.params[i], &file[i + (256 - 192) * C], 4) == 0);
    et_ckpt_free(&d);
    free(zero);
    free(file);
    hv[7] = 200; /* neither padding */
    free(write_llmc(g_path, hv, n, 3));
    expect_fail(et_llmc_load, g_path, ET_ERR_RANGE, "Vp is 200, expected 192");
    rm_dir();
}
END_TEST

START_TEST(llmc_bad_files)
{
    int32_t hv[8] = {20240326, 3, 16, 65, 2, 2, 8, 128};
    et_gpt_config cfg = {65, 0, 16, 2, 2, 8, 0, 0};
    size_t n, len;
    uint8_t *b;
    char want[128];
    mk_dir();
    ck_assert_int_eq(et_gpt_config_check(&cfg), ET_OK);
    n = et_gpt_tensors(&cfg, (et_tensor_info[ET_GPT_NTENSORS]){{0}});
    free(write_llmc(g_path, hv, n, 5));
    expect_fail(et_llmc_load, g_path, ET_ERR_UNSUPPORTED, "only fp32 version 3 is");
    expect_fail(et_model_load, g_path, ET_ERR_UNSUPPORTED, "version 5");
    free(write_llmc(g_path, hv, n, 3));
    b = et_test_slurp(g_path, &len);
    spit(g_path, b, len - 1);
    snprintf(want, sizeof want, "expected %zu bytes", len);
    expect_fail(et_llmc_load, g_path, ET_ERR_TRUNCATED, want);
    expect_fail(et_model_load, g_path, ET_ERR_TRUNCATED, "file has");
    spit(g_path, b, 500);
    expect_fail(et_llmc_load, g_path, ET_ERR_TRUNCATED, "header alone");
    spit(g_path, b, 6);
    expect_fail(et_llmc_load, g_path, ET_ERR_TRUNCATED, "header alone");
    b = (uint8_t *)realloc(b, len + 8);
    memset(b + len, 0, 8);
    spit(g_path, b, len + 8);
    expect_fail(et_llmc_load, g_path, ET_ERR_FORMAT, "trailing");
    put32(b, 20240328u);
    spit(g_path, b, len);
    expect_fail(et_llmc_load, g_path, ET_ERR_FORMAT, "tokenizer file");
    expect_fail(et_model_load, g_path, ET_ERR_FORMAT, "magic is");
    free(b);

#define LLMC_BAD(idx, val, status, needle)              \
    do {                                                \
        int32_t h2[8];                                  \
        memcpy(h2, hv, sizeof h2);                      \
        h2[idx] = (val);                                \
        free(write_llmc(g_path, h2, n, 3));             \
        expect_fail(et_llmc_load, g_path, status, needle); \
    } while (0)
    LLMC_BAD(6, 0, ET_ERR_RANGE, "C (int 6) is 0");
    LLMC_BAD(4, -1, ET_ERR_RANGE, "L (int 4) is -1");
    LLMC_BAD(2, INT32_MIN, ET_ERR_RANGE, "maxT");
    LLMC_BAD(5, 3, ET_ERR_RANGE, "not a multiple");
    LLMC_BAD(7, 64, ET_ERR_RANGE, "smaller than");
    LLMC_BAD(7, 192, ET_ERR_RANGE, "Vp is 192");
    LLMC_BAD(3, (1 << 30) + 1, ET_ERR_RANGE, "V (int 3)");
    LLMC_BAD(4, 5000, ET_ERR_RANGE, "et_gpt_config_check");
    LLMC_BAD(4, 3, ET_ERR_TRUNCATED, "expected"); /* one more layer than the file holds */
    LLMC_BAD(4, 1, ET_ERR_FORMAT, "trailing");    /* one layer fewer */
#undef LLMC_BAD
    rm_dir();
}
END_TEST

START_TEST(llmc_absurd_header_fails_without_huge_allocation)
{
    /* Every field within the model's limits, the product far beyond any memory. */
    int32_t hv[8] = {20240326, 3, 1 << 20, 1 << 24, 4096, 1, 1 << 16, 1 << 24};
    et_ckpt c;
    et_error err;
    mk_dir();
    free(write_llmc(g_path, hv, 1000, 3));
    cap_memory();
    expect_fail(et_llmc_load, g_path, ET_ERR_TRUNCATED, "expected at least");
    expect_fail(et_model_load, g_path, ET_ERR_TRUNCATED, "file has 5024");
    uncap_memory();
    /* and a real small model still loads under the same cap */
    {
        int32_t ok[8] = {20240326, 3, 16, 65, 2, 2, 8, 128};
        et_gpt_config cfg = {65, 0, 16, 2, 2, 8, 0, 0};
        size_t n;
        ck_assert_int_eq(et_gpt_config_check(&cfg), ET_OK);
        n = et_gpt_tensors(&cfg, (et_tensor_info[ET_GPT_NTENSORS]){{0}});
        free(write_llmc(g_path, ok, n, 3));
        cap_memory();
        ck_assert_msg(et_llmc_load(g_path, &c, &err) == ET_OK, "%s", err.msg);
        uncap_memory();
        et_ckpt_free(&c);
    }
    rm_dir();
}
END_TEST

START_TEST(model_load_errors_null_args)
{
    et_ckpt c;
    et_error err;
    ck_assert_int_eq(et_model_load(NULL, &c, &err), ET_ERR_INVALID);
    ck_assert_int_eq(et_ckpt_load("x", NULL, &err), ET_ERR_INVALID);
    ck_assert_int_eq(et_llmc_load("x", NULL, NULL), ET_ERR_INVALID);
    mk_dir();
    spit(g_path, "", 0);
    expect_fail(et_model_load, g_path, ET_ERR_TRUNCATED, "too short");
    expect_fail(et_ckpt_load, g_path, ET_ERR_TRUNCATED, "file has 0 bytes");
    expect_fail(et_llmc_load, g_path, ET_ERR_FORMAT, "magic is []");
    rm_dir();
}
END_TEST

static Suite *ckpt_suite(void)
{
    Suite *s = suite_create("ckpt");
    TCase *crc = tcase_create("crc32"), *own = tcase_create("edgetrain"),
          *bad = tcase_create("bad_files"), *save = tcase_create("save"),
          *llmc = tcase_create("llmc");
    tcase_add_test(crc, crc_known_vectors);
    tcase_add_test(crc, crc_every_table_entry);
    tcase_add_test(crc, crc_incremental_equals_one_shot);
    tcase_add_test(own, ckpt_roundtrip_params_only);
    tcase_add_test(own, ckpt_roundtrip_adam);
    tcase_add_test(own, ckpt_roundtrip_adam_and_blobs);
    tcase_add_test(own, ckpt_roundtrip_tokenizer_only);
    tcase_add_test(own, ckpt_roundtrip_state_only);
    tcase_add_test(own, ckpt_layout_matches_docs);
    tcase_add_test(own, ckpt_save_derives_vocab_padded_and_replaces);
    tcase_add_test(bad, ckpt_bad_missing_or_not_a_file);
    tcase_add_test(bad, ckpt_bad_magic);
    tcase_add_test(bad, ckpt_bad_version);
    tcase_add_test(bad, ckpt_bad_truncated);
    tcase_add_test(bad, ckpt_bad_trailing_bytes);
    tcase_add_test(bad, ckpt_bad_crc);
    tcase_add_test(bad, ckpt_bad_config);
    tcase_add_test(bad, ckpt_bad_counts_and_layout);
    tcase_add_test(bad, ckpt_bad_tensor_table);
    tcase_add_test(bad, ckpt_bad_absurd_sizes);
    tcase_add_test(save, save_rejects_bad_input_and_keeps_old_file);
    tcase_add_test(save, save_atomic_when_temp_cannot_be_created);
    tcase_add_test(save, save_fails_cleanly_on_rename_and_missing_dir);
    tcase_add_test(llmc, llmc_roundtrip);
    tcase_add_test(llmc, llmc_vocab_padded_to_128_is_repadded);
    tcase_add_test(llmc, llmc_bad_files);
    tcase_add_test(llmc, llmc_absurd_header_fails_without_huge_allocation);
    tcase_add_test(llmc, model_load_errors_null_args);
    suite_add_tcase(s, crc);
    suite_add_tcase(s, own);
    suite_add_tcase(s, bad);
    suite_add_tcase(s, save);
    suite_add_tcase(s, llmc);
    return s;
}

ET_CHECK_MAIN(ckpt_suite)
