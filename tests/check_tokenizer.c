/* check_tokenizer.c - the char-level and BPE tokenizers: round trips over ASCII, UTF-8,
 * invalid UTF-8 and random bytes, nanoGPT's Tiny Shakespeare vocabulary, BPE merges
 * against a hand-worked example, compression on real text, and the file format with
 * every kind of corruption. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "et_check.h"
#include "et_tokenizer.h"

#define SHAKESPEARE "../shared/data/tinyshakespeare.txt"

// --- helpers

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Reads a whole file, or returns NULL (caller skips). */
static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    ck_assert_uint_eq(*n, (size_t)len);
    return buf;
}

static void write_all(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Encodes text with tok (which must know every character), checks the id count against
 * the bound, decodes and compares with the input byte for byte. Returns the id count. */
static size_t round_trip(const et_tokenizer *tok, const char *text, size_t n)
{
    uint16_t *ids = malloc((n ? n : 1) * sizeof *ids);
    char *back = malloc(n ? n : 1);
    size_t count = 99, needed = 0, back_n = 0, unk = 7;
    ck_assert_int_eq(et_tok_encode(tok, text, n, NULL, 0, &needed, 0, NULL), ET_OK);
    ck_assert_int_eq(et_tok_encode(tok, text, n, ids, n, &count, 0, &unk), ET_OK);
    ck_assert_uint_eq(count, needed);
    ck_assert_uint_eq(unk, 0);
    ck_assert_uint_le(count, n);
    ck_assert_int_eq(et_tok_decode(tok, ids, count, back, n, &back_n), ET_OK);
    ck_assert_uint_eq(back_n, n);
    ck_assert_int_eq(memcmp(back, text, n), 0);
    free(ids);
    free(back);
    return count;
}

/* CRC-32 as zlib computes it, bit by bit (independent of the library's). */
static uint32_t crc32_ref(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

// --- char-level

START_TEST(char_ascii_ids)
{
    et_tokenizer *tok;
    uint16_t ids[8];
    size_t count;
    ck_assert_int_eq(et_tok_train_char("hello", 5, &tok), ET_OK);
    ck_assert_int_eq(et_tok_type_of(tok), ET_TOK_CHAR);
    ck_assert_uint_eq(et_tok_vocab_size(tok), 4); /* e h l o */
    ck_assert_int_eq(et_tok_char_codepoint(tok, 0), 'e');
    ck_assert_int_eq(et_tok_char_codepoint(tok, 3), 'o');
    ck_assert_int_eq(et_tok_char_codepoint(tok, 4), -1);
    ck_assert_int_eq(et_tok_encode(tok, "hole", 4, ids, 8, &count, 0, NULL), ET_OK);
    ck_assert_uint_eq(count, 4);
    ck_assert_uint_eq(ids[0], 1);
    ck_assert_uint_eq(ids[1], 3);
    ck_assert_uint_eq(ids[2], 2);
    ck_assert_uint_eq(ids[3], 0);
    round_trip(tok, "hello hello", 5);
    et_tok_free(tok);
    ck_assert_int_eq(et_tok_train_char("", 0, &tok), ET_ERR_INVALID);
}
END_TEST

START_TEST(char_utf8)
{
    static const char text[] = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9d\x84\x9e!";
    et_tokenizer *tok;
    uint16_t ids[64];
    size_t count, n = sizeof text - 1;
    ck_assert_int_eq(et_tok_train_char(text, n, &tok), ET_OK);
    /* code points: ' ' ! d h l o r w U+E9 U+F6 U+2713 U+1D11E */
    ck_assert_uint_eq(et_tok_vocab_size(tok), 12);
    ck_assert_int_eq(et_tok_char_codepoint(tok, 0), ' ');
    ck_assert_int_eq(et_tok_char_codepoint(tok, 8), 0xe9);
    ck_assert_int_eq(et_tok_char_codepoint(tok, 9), 0xf6);
    ck_assert_int_eq(et_tok_char_codepoint(tok, 10), 0x2713);
    ck_assert_int_eq(et_tok_char_codepoint(tok, 11), 0x1d11e);
    ck_assert_uint_eq(round_trip(tok, text, n), 16); /* 16 code points in 23 bytes */
    ck_assert_int_eq(et_tok_encode(tok, "\xf0\x9d\x84\x9e", 4, ids, 64, &count, 0, NULL), ET_OK);
    ck_assert_uint_eq(count, 1);
    ck_assert_uint_eq(ids[0], 11);
    et_tok_free(tok);
}
END_TEST

START_TEST(char_invalid_utf8)
{
    /* lone continuation, bad lead bytes, truncated sequences, an encoded surrogate, an
     * overlong '/', a code point past U+10FFFF, and valid text around them */
    static const char text[] = "a\x80 b\xff\xfe c\xc3 d\xe2\x82 e\xed\xa0\x80 f\xc0\xaf g"
                               "\xf4\x90\x80\x80 h\xe2\x82\xac\xc3";
    et_tokenizer *tok;
    uint16_t ids[64];
    size_t count, n = sizeof text - 1, i;
    int found_ff = 0, found_euro = 0;
    ck_assert_int_eq(et_tok_train_char(text, n, &tok), ET_OK);
    round_trip(tok, text, n);
    for (i = 0; i < et_tok_vocab_size(tok); i++) {
        int32_t cp = et_tok_char_codepoint(tok, (uint32_t)i);
        if (cp == 0xdcff) found_ff = 1;
        if (cp == 0x20ac) found_euro = 1;
        ck_assert(cp < 0xd800 || (cp >= 0xdc80 && cp <= 0xdcff) || cp > 0xdfff);
    }
    ck_assert(found_ff);
    ck_assert(found_euro);
    /* one escaped byte is one token, whatever follows it */
    ck_assert_int_eq(et_tok_encode(tok, "\xed\xa0\x80", 3, ids, 64, &count, 0, NULL), ET_OK);
    ck_assert_uint_eq(count, 3);
    ck_assert_int_eq(et_tok_char_codepoint(tok, ids[0]), 0xdced);
    ck_assert_int_eq(et_tok_char_codepoint(tok, ids[1]), 0xdca0);
    ck_assert_int_eq(et_tok_char_codepoint(tok, ids[2]), 0xdc80);
    et_tok_free(tok);
}
END_TEST

START_TEST(char_random_bytes)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    char buf[4096];
    int r;
    for (r = 0; r < 50; r++) {
        et_tokenizer *tok;
        size_t n = 1 + (size_t)(rng_next(&s) % sizeof buf), i;
        for (i = 0; i < n; i++) buf[i] = (char)(rng_next(&s) >> 24);
        ck_assert_int_eq(et_tok_train_char(buf, n, &tok), ET_OK);
        round_trip(tok, buf, n);
        et_tok_free(tok);
    }
}
END_TEST

START_TEST(char_unknown)
{
    et_tokenizer *tok;
    uint16_t ids[8];
    int32_t ids32[8];
    size_t count = 0, unk = 0;
    ck_assert_int_eq(et_tok_train_char("abc", 3, &tok), ET_OK);
    ck_assert_int_eq(et_tok_encode(tok, "abxc\xc3\xa9", 6, ids, 8, &count, 0, &unk), ET_ERR_RANGE);
    ck_assert_uint_eq(count, 2);
    ck_assert_int_eq(et_tok_encode(tok, "abxc\xc3\xa9", 6, ids, 8, &count, ET_TOK_SKIP_UNKNOWN, &unk),
                     ET_OK);
    ck_assert_uint_eq(count, 3);
    ck_assert_uint_eq(unk, 2);
    ck_assert_uint_eq(ids[2], 2);
    ck_assert_int_eq(et_tok_encode_i32(tok, "cab", 3, ids32, 8, &count, 0, NULL), ET_OK);
    ck_assert_uint_eq(count, 3);
    ck_assert_int_eq(ids32[0], 2);
    ck_assert_int_eq(ids32[1], 0);
    ck_assert_int_eq(ids32[2], 1);
    et_tok_free(tok);
}
END_TEST

START_TEST(char_shakespeare_65)
{
    static const char nanogpt_chars[] =
        "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static const uint16_t hii_there[] = {46, 47, 47, 1, 58, 46, 43, 56, 43}; /* nanoGPT's */
    size_t n, count, i;
    char *text = read_all(SHAKESPEARE, &n);
    et_tokenizer *tok;
    uint16_t ids[16];
    if (!text) {
        fprintf(stderr, "char_shakespeare_65: skipped, %s not found\n", SHAKESPEARE);
        return;
    }
    ck_assert_uint_eq(n, 1115394);
    ck_assert_int_eq(et_tok_train_char(text, n, &tok), ET_OK);
    ck_assert_uint_eq(et_tok_vocab_size(tok), 65);
    for (i = 0; i < 65; i++)
        ck_assert_int_eq(et_tok_char_codepoint(tok, (uint32_t)i), (unsigned char)nanogpt_chars[i]);
    ck_assert_int_eq(et_tok_encode(tok, "hii there", 9, ids, 16, &count, 0, NULL), ET_OK);
    ck_assert_uint_eq(count, 9);
    ck_assert_int_eq(memcmp(ids, hii_there, sizeof hii_there), 0);
    ck_assert_uint_eq(round_trip(tok, text, n), n);
    et_tok_free(tok);
    free(text);
}
END_TEST

// --- BPE

START_TEST(bpe_hand_worked)
{
    /* aaabdaaabac: (a,a)=4 merges first; then (a,b) and (Z,a) tie at 2 and the smaller
     * pair (97,98) wins; then (Z,Y) at 2; then all pairs are 1 and (a,c) is smallest. */
    static const uint16_t want[] = {258, 100, 258, 97, 99};
    et_tokenizer *tok;
    uint16_t ids[16];
    size_t count, n;
    void *blob;
    const unsigned char *p;
    ck_assert_int_eq(et_tok_train_bpe("aaabdaaabac", 11, 259, &tok), ET_OK);
    ck_assert_uint_eq(et_tok_vocab_size(tok), 259);
    ck_assert_int_eq(et_tok_type_of(tok), ET_TOK_BPE);
    ck_assert_int_eq(et_tok_encode(tok, "aaabdaaabac", 11, ids, 16, &count, 0, NULL), ET_OK);
    ck_assert_uint_eq(count, 5);
    ck_assert_int_eq(memcmp(ids, want, sizeof want), 0);
    ck_assert_int_eq(et_tok_serialize(tok, &blob, &n), ET_OK);
    ck_assert_uint_eq(n, 20 + 3 * 4 + 4);
    p = (const unsigned char *)blob + 20;
    ck_assert(p[0] == 97 && p[1] == 0 && p[2] == 97 && p[3] == 0);
    ck_assert(p[4] == 97 && p[6] == 98);
    ck_assert(p[8] == 0 && p[9] == 1 && p[10] == 1 && p[11] == 1); /* (256, 257) */
    free(blob);
    et_tok_free(tok);
    ck_assert_int_eq(et_tok_train_bpe("aaabdaaabac", 11, 260, &tok), ET_OK);
    ck_assert_int_eq(et_tok_encode(tok, "ac", 2, ids, 16, &count, 0, NULL), ET_OK);
    ck_assert_uint_eq(count, 1);
    ck_assert_uint_eq(ids[0], 259);
    et_tok_free(tok);
}
END_TEST

START_TEST(bpe_vocab_bounds)
{
    et_tokenizer *tok;
    uint16_t ids[8];
    size_t count;
    ck_assert_int_eq(et_tok_train_bpe("abc", 3, 255, &tok), ET_ERR_RANGE);
    ck_assert_int_eq(et_tok_train_bpe("abc", 3, 65536, &tok), ET_ERR_RANGE);
    ck_assert_int_eq(et_tok_train_bpe("abc", 3, 256, &tok), ET_OK);
    ck_assert_uint_eq(et_tok_vocab_size(tok), 256);
    ck_assert_int_eq(et_tok_encode(tok, "ab\xff", 3, ids, 8, &count, 0, NULL), ET_OK);
    ck_assert_uint_eq(count, 3);
    ck_assert_uint_eq(ids[2], 255);
    et_tok_free(tok);
    /* runs out of pairs: "ab" and " cd" need 1 + 2 merges, then training stops */
    ck_assert_int_eq(et_tok_train_bpe("ab cd", 5, 1000, &tok), ET_OK);
    ck_assert_uint_eq(et_tok_vocab_size(tok), 259);
    ck_assert_int_eq(et_tok_encode(tok, "ab cd", 5, ids, 8, &count, 0, NULL), ET_OK);
    ck_assert_uint_eq(count, 2);
    et_tok_free(tok);
}
END_TEST

START_TEST(bpe_round_trips)
{
    static const char train[] =
        "the cat sat on the mat. the dog's bone, the cat's toy; 12 34 1234!!\n"
        "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 caf\xc3\xa9 caf\xc3\xa9 na\xc3\xafve\r\n\t\tindent\n";
    static const char *cases[] = {
        "the cat sat on the mat",
        "unseen words: zebra quux",
        "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9d\x84\x9e",
        "bad \xff\xfe\xc3 \xed\xa0\x80 bytes\x80",
        "   many   spaces \n\n\n and\ttabs\r\n",
        "",
    };
    uint64_t s = 12345;
    char buf[3000];
    size_t i, r;
    et_tokenizer *tok;
    ck_assert_int_eq(et_tok_train_bpe(train, sizeof train - 1, 300, &tok), ET_OK);
    ck_assert_uint_eq(et_tok_vocab_size(tok), 300);
    ck_assert_uint_lt(round_trip(tok, train, sizeof train - 1), sizeof train - 1);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) round_trip(tok, cases[i], strlen(cases[i]));
    for (r = 0; r < 30; r++) {
        size_t n = 1 + (size_t)(rng_next(&s) % sizeof buf);
        for (i = 0; i < n; i++) buf[i] = (char)(rng_next(&s) >> 24);
        round_trip(tok, buf, n);
    }
    et_tok_free(tok);
    /* trained on random bytes, used on text */
    for (i = 0; i < sizeof buf; i++) buf[i] = (char)(rng_next(&s) >> 24);
    ck_assert_int_eq(et_tok_train_bpe(buf, sizeof buf, 400, &tok), ET_OK);
    round_trip(tok, buf, sizeof buf);
    round_trip(tok, train, sizeof train - 1);
    et_tok_free(tok);
}
END_TEST

START_TEST(bpe_shakespeare_slice)
{
    size_t n, count, i, m = 200000;
    char *text = read_all(SHAKESPEARE, &n);
    et_tokenizer *tok, *again;
    void *b1, *b2;
    size_t n1, n2;
    if (!text) {
        fprintf(stderr, "bpe_shakespeare_slice: skipped, %s not found\n", SHAKESPEARE);
        return;
    }
    ck_assert_uint_gt(n, m);
    ck_assert_int_eq(et_tok_train_bpe(text, m, 512, &tok), ET_OK);
    ck_assert_uint_eq(et_tok_vocab_size(tok), 512);
    count = round_trip(tok, text, m);
    /* 256 merges on English roughly halve the token count */
    ck_assert_uint_lt(count, m * 6 / 10);
    /* held-out text compresses too */
    ck_assert_uint_lt(round_trip(tok, text + m, m), m * 6 / 10);
    /* no token joins a newline to anything but whitespace */
    for (i = 256; i < 512; i++) {
        char b[256];
        size_t bn, k;
        uint16_t id = (uint16_t)i;
        int nl = 0, other = 0;
        ck_assert_int_eq(et_tok_decode(tok, &id, 1, b, sizeof b, &bn), ET_OK);
        ck_assert_uint_ge(bn, 2);
        for (k = 0; k < bn; k++) {
            if (b[k] == '\n') nl = 1;
            else if (b[k] != ' ' && b[k] != '\t' && b[k] != '\r') other = 1;
        }
        ck_assert_msg(!(nl && other), "token %zu crosses a newline", i);
    }
    /* deterministic */
    ck_assert_int_eq(et_tok_train_bpe(text, m, 512, &again), ET_OK);
    ck_assert_int_eq(et_tok_serialize(tok, &b1, &n1), ET_OK);
    ck_assert_int_eq(et_tok_serialize(again, &b2, &n2), ET_OK);
    ck_assert_uint_eq(n1, n2);
    ck_assert_int_eq(memcmp(b1, b2, n1), 0);
    free(b1), free(b2);
    et_tok_free(again);
    et_tok_free(tok);
    free(text);
}
END_TEST

/* The definition of BPE encoding, applied literally: merge 0 everywhere left to right,
 * then merge 1, and so on. Returns the new length of w. */
static size_t ref_bpe(const unsigned char *blob, size_t nm, uint32_t *w, size_t L)
{
    size_t r, i, k;
    for (r = 0; r < nm; r++) {
        const unsigned char *m = blob + 20 + 4 * r;
        uint32_t x = m[0] | (uint32_t)m[1] << 8, y = m[2] | (uint32_t)m[3] << 8;
        for (i = 0, k = 0; i < L;) {
            if (i + 1 < L && w[i] == x && w[i + 1] == y) w[k++] = 256 + (uint32_t)r, i += 2;
            else w[k++] = w[i++];
        }
        L = k;
    }
    return L;
}

START_TEST(bpe_matches_definition)
{
    /* runs of three letters make single chunks from 1 to 400 bytes, so both the rescan
     * path for short chunks and the heap path for long ones are compared */
    uint64_t s = 777;
    char train[6000], text[400];
    uint32_t want[400];
    uint16_t ids[400];
    unsigned char *blob;
    size_t i, r, bn, count;
    et_tokenizer *tok;
    for (i = 0; i < sizeof train; i++)
        train[i] = (rng_next(&s) % 9 == 0) ? ' ' : (char)('a' + rng_next(&s) % 3);
    ck_assert_int_eq(et_tok_train_bpe(train, sizeof train, 400, &tok), ET_OK);
    ck_assert_uint_eq(et_tok_vocab_size(tok), 400);
    ck_assert_int_eq(et_tok_serialize(tok, (void **)&blob, &bn), ET_OK);
    for (r = 0; r < 200; r++) {
        size_t n = 1 + (size_t)(rng_next(&s) % sizeof text), L;
        for (i = 0; i < n; i++) {
            text[i] = (char)('a' + rng_next(&s) % 3);
            want[i] = (unsigned char)text[i];
        }
        L = ref_bpe(blob, 400 - 256, want, n);
        ck_assert_int_eq(et_tok_encode(tok, text, n, ids, n, &count, 0, NULL), ET_OK);
        ck_assert_uint_eq(count, L);
        for (i = 0; i < L; i++) ck_assert_uint_eq(ids[i], want[i]);
    }
    free(blob);
    et_tok_free(tok);
}
END_TEST

START_TEST(buffers_and_bad_ids)
{
    et_tokenizer *tok;
    uint16_t ids[4], bad16[2] = {0, 300};
    int32_t bad32[2] = {1, -1}, ok32[2] = {0, 1};
    char out[8];
    size_t count = 0, out_n = 0;
    ck_assert_int_eq(et_tok_train_bpe("abab", 4, 300, &tok), ET_OK);
    ck_assert_int_eq(et_tok_encode(tok, "xyzw", 4, ids, 3, &count, 0, NULL), ET_ERR_NOMEM);
    ck_assert_int_eq(et_tok_decode(tok, bad16, 2, out, 8, &out_n), ET_ERR_RANGE);
    ck_assert_int_eq(et_tok_decode_i32(tok, bad32, 2, out, 8, &out_n), ET_ERR_RANGE);
    ck_assert_int_eq(et_tok_decode_i32(tok, ok32, 2, out, 1, &out_n), ET_ERR_NOMEM);
    ck_assert_int_eq(et_tok_decode_i32(tok, ok32, 2, NULL, 0, &out_n), ET_OK);
    ck_assert_uint_eq(out_n, 2);
    ck_assert_int_eq(et_tok_encode(NULL, "a", 1, ids, 4, &count, 0, NULL), ET_ERR_INVALID);
    et_tok_free(tok);
}
END_TEST

// --- files

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/et_tok_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_path(char *out, const char *name)
{
    snprintf(out, 128, "%s/%s", tmpdir, name);
}

START_TEST(save_load_round_trip)
{
    static const char text[] = "It is a truth universally acknowledged, \xc3\xa9\xff caf\xc3\xa9s";
    const size_t n = sizeof text - 1;
    et_tokenizer *toks[2], *back;
    char path[128], tmp[160];
    et_error err;
    int k;
    make_tmpdir();
    tmp_path(path, "tok.bin");
    ck_assert_int_eq(et_tok_train_char(text, n, &toks[0]), ET_OK);
    ck_assert_int_eq(et_tok_train_bpe(text, n, 290, &toks[1]), ET_OK);
    for (k = 0; k < 2; k++) {
        uint16_t a[128], b[128];
        size_t ca, cb;
        void *blob;
        size_t bn;
        ck_assert_int_eq(et_tok_save(toks[k], path, &err), ET_OK);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        ck_assert_int_ne(access(tmp, F_OK), 0);
        ck_assert_int_eq(et_tok_load(path, &back, &err), ET_OK);
        ck_assert_int_eq(et_tok_type_of(back), et_tok_type_of(toks[k]));
        ck_assert_uint_eq(et_tok_vocab_size(back), et_tok_vocab_size(toks[k]));
        ck_assert_int_eq(et_tok_encode(toks[k], text, n, a, 128, &ca, 0, NULL), ET_OK);
        ck_assert_int_eq(et_tok_encode(back, text, n, b, 128, &cb, 0, NULL), ET_OK);
        ck_assert_uint_eq(ca, cb);
        ck_assert_int_eq(memcmp(a, b, ca * sizeof a[0]), 0);
        round_trip(back, text, n);
        et_tok_free(back);
        /* the in-memory blob is the file's bytes */
        ck_assert_int_eq(et_tok_serialize(toks[k], &blob, &bn), ET_OK);
        ck_assert_int_eq(et_tok_deserialize(blob, bn, &back, &err), ET_OK);
        ck_assert_uint_eq(et_tok_vocab_size(back), et_tok_vocab_size(toks[k]));
        et_tok_free(back);
        free(blob);
        et_tok_free(toks[k]);
    }
    remove(path);
    rmdir(tmpdir);
}
END_TEST

/* Writes a corrupted copy of blob and expects load to fail with status s and a message
 * that names the file and contains what. */
static void expect_load_error(const void *blob, size_t n, et_status s, const char *what)
{
    char path[128];
    et_tokenizer *tok = NULL;
    et_error err;
    tmp_path(path, "bad.bin");
    write_all(path, blob, n);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(et_tok_load(path, &tok, &err), s);
    ck_assert_ptr_null(tok);
    ck_assert_int_eq(err.status, s);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message '%s' does not name the file", err.msg);
    ck_assert_msg(strstr(err.msg, what) != NULL, "message '%s' lacks '%s'", err.msg, what);
    remove(path);
}

START_TEST(corrupt_files)
{
    et_tokenizer *tok, *back = NULL;
    unsigned char *blob, *c;
    size_t n;
    char path[128];
    et_error err;
    make_tmpdir();
    ck_assert_int_eq(et_tok_train_char("hello world", 11, &tok), ET_OK);
    ck_assert_int_eq(et_tok_serialize(tok, (void **)&blob, &n), ET_OK);
    ck_assert_uint_eq(n, 20 + 8 * 4 + 4);
    ck_assert_uint_eq(crc32_ref(blob, n - 4), (uint32_t)blob[n - 4] | (uint32_t)blob[n - 3] << 8 |
                                                  (uint32_t)blob[n - 2] << 16 |
                                                  (uint32_t)blob[n - 1] << 24);
    c = malloc(n + 8);
    ck_assert_ptr_nonnull(c);

    memcpy(c, blob, n), c[0] = 'X';
    expect_load_error(c, n, ET_ERR_FORMAT, "magic");
    memcpy(c, blob, n), put32(c + 4, 2);
    expect_load_error(c, n, ET_ERR_FORMAT, "version");
    memcpy(c, blob, n), put32(c + 8, 7);
    expect_load_error(c, n, ET_ERR_FORMAT, "type");
    expect_load_error(blob, n - 1, ET_ERR_TRUNCATED, "truncated");
    expect_load_error(blob, 10, ET_ERR_TRUNCATED, "truncated");
    memcpy(c, blob, n), c[n] = 0;
    expect_load_error(c, n + 1, ET_ERR_FORMAT, "trailing");
    memcpy(c, blob, n), c[25] ^= 0x10;
    expect_load_error(c, n, ET_ERR_CRC, "CRC");
    memcpy(c, blob, n), c[n - 1] ^= 0x01;
    expect_load_error(c, n, ET_ERR_CRC, "CRC");
    /* a valid CRC over a table out of order is still rejected */
    memcpy(c, blob, n);
    put32(c + 20, 'z');
    put32(c + n - 4, crc32_ref(c, n - 4));
    expect_load_error(c, n, ET_ERR_FORMAT, "inconsistent");

    tmp_path(path, "missing.bin");
    ck_assert_int_eq(et_tok_load(path, &back, &err), ET_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    ck_assert_int_eq(et_tok_deserialize(blob, n - 4, &back, &err), ET_ERR_TRUNCATED);
    ck_assert_ptr_nonnull(strstr(err.msg, "tokenizer blob"));
    free(blob);
    et_tok_free(tok);

    /* a BPE merge that names a token not yet defined */
    ck_assert_int_eq(et_tok_train_bpe("aaaa", 4, 257, &tok), ET_OK);
    ck_assert_int_eq(et_tok_serialize(tok, (void **)&blob, &n), ET_OK);
    blob[20] = 0x00, blob[21] = 0x01; /* left = 256 in merge 0 */
    put32(blob + n - 4, crc32_ref(blob, n - 4));
    expect_load_error(blob, n, ET_ERR_FORMAT, "merge");
    free(blob);
    free(c);
    et_tok_free(tok);
    rmdir(tmpdir);
}
END_TEST

static Suite *tokenizer_suite(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("tokenizer");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, char_ascii_ids);
    tcase_add_test(tc, char_utf8);
    tcase_add_test(tc, char_invalid_utf8);
    tcase_add_test(tc, char_random_bytes);
    tcase_add_test(tc, char_unknown);
    tcase_add_test(tc, char_shakespeare_65);
    tcase_add_test(tc, bpe_hand_worked);
    tcase_add_test(tc, bpe_vocab_bounds);
    tcase_add_test(tc, bpe_round_trips);
    tcase_add_test(tc, bpe_shakespeare_slice);
    tcase_add_test(tc, bpe_matches_definition);
    tcase_add_test(tc, buffers_and_bad_ids);
    tcase_add_test(tc, save_load_round_trip);
    tcase_add_test(tc, corrupt_files);
    suite_add_tcase(s, tc);
    return s;
}

ET_CHECK_MAIN(tokenizer_suite)
