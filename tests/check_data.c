/* check_data.c - the data pipeline: text cleaning case by case (and its near-zero effect
 * on Tiny Shakespeare), llm.c token shards with every kind of damage, and et_prepare()
 * end to end in a temporary directory. */
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "et_check.h"
#include "et_prepare.h"
#include "et_shard.h"
#include "et_text.h"
#include "et_tokenizer.h"

#define SHAKESPEARE "../shared/data/tinyshakespeare.txt"

// --- helpers

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/et_data_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_path(char *out, const char *name)
{
    snprintf(out, 160, "%s/%s", tmpdir, name);
}

static void write_all(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

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
    return buf;
}

/* Cleans in (of length n) with opts and expects exactly want (NUL-terminated). */
static et_clean_stats expect_clean_n(const char *in, size_t n, const char *want,
                                     const et_clean_opts *opts)
{
    char *out = NULL;
    size_t out_n = 0;
    et_clean_stats st;
    ck_assert_int_eq(et_text_clean(in, n, &out, &out_n, opts, &st), ET_OK);
    ck_assert_msg(out_n == strlen(want) && memcmp(out, want, out_n) == 0,
                  "cleaned to \"%.*s\" (%zu bytes), expected \"%s\"", (int)out_n, out, out_n, want);
    ck_assert_uint_eq(st.bytes_in, n);
    ck_assert_uint_eq(st.bytes_out, out_n);
    ck_assert_int_eq(out[out_n], '\0');
    free(out);
    return st;
}

static et_clean_stats expect_clean(const char *in, const char *want)
{
    return expect_clean_n(in, strlen(in), want, NULL);
}

// --- cleaning

START_TEST(clean_newlines)
{
    et_clean_stats st = expect_clean("a\r\nb\rc\nd\r", "a\nb\nc\nd\n");
    ck_assert_uint_eq(st.cr_normalised, 3);
    ck_assert_uint_eq(st.lines_in, 4);
    ck_assert_uint_eq(st.lines_out, 4);
    /* a final line keeps its lack of a newline */
    expect_clean("abc", "abc");
    expect_clean("abc  \t", "abc");
    expect_clean("", "");
    st = expect_clean("\r\r\n", "\n\n");
    ck_assert_uint_eq(st.cr_normalised, 2);
}
END_TEST

START_TEST(clean_whitespace)
{
    et_clean_stats st = expect_clean("a\t\tb   c  \n    d\v\fe \n", "a b c\n d e\n");
    ck_assert_uint_eq(st.spaces_removed, 1 + 2 + 2 + 3 + 1 + 1);
    /* a line of only whitespace is a blank line */
    expect_clean("x\n \t \ny\n", "x\n\ny\n");
}
END_TEST

START_TEST(clean_tags)
{
    et_clean_opts o;
    et_clean_stats st = expect_clean("<p>Hello <b>world</b></p>\n<!-- note -->x<br/>y\n",
                                     "Hello world\nxy\n");
    ck_assert_uint_eq(st.tags_removed, 6);
    /* comparisons and stray brackets are text */
    st = expect_clean("a < b and c > d\nx<3 y>2\n<", "a < b and c > d\nx<3 y>2\n<");
    ck_assert_uint_eq(st.tags_removed, 0);
    /* a tag never spans lines, nor another '<' */
    expect_clean("<a href=\n\"x\">t\n", "<a href=\n\"x\">t\n");
    expect_clean("<a <b>c\n", "<a c\n");
    /* the bound */
    et_clean_opts_init(&o);
    o.tag_max_len = 8;
    expect_clean_n("<abcdef>x<abcdefgh>y", 20, "x<abcdefgh>y", &o);
    o.strip_tags = 0;
    expect_clean_n("<b>x</b>", 8, "<b>x</b>", &o);
}
END_TEST

START_TEST(clean_entities)
{
    et_clean_opts o;
    et_clean_stats st =
        expect_clean("&amp;lt; &lt;b&gt; &quot;q&quot; it&#39;s&nbsp;&nbsp;x &apos;&unknown; &amp",
                     "&lt; <b> \"q\" it's x '&unknown; &amp");
    ck_assert_uint_eq(st.entities_decoded, 9);
    ck_assert_uint_eq(st.tags_removed, 0);
    et_clean_opts_init(&o);
    o.decode_entities = 0;
    expect_clean_n("&amp;", 5, "&amp;", &o);
}
END_TEST

START_TEST(clean_controls_and_utf8)
{
    static const char in[] = "a\x01" "b\x7f" "c\0d\x1b[0m\n" "h\xc3\xa9llo \xff\xfe w\xc3\xb6rld\x85\n";
    et_clean_stats st = expect_clean_n(in, sizeof in - 1,
                                       "abcd[0m\nh\xc3\xa9llo \xff\xfe w\xc3\xb6rld\x85\n", NULL);
    ck_assert_uint_eq(st.controls_removed, 4);
}
END_TEST

START_TEST(clean_blank_runs)
{
    et_clean_stats st = expect_clean("a\n\nb\n\n\nc\n\n\n\nd\n\n\n\n\n\ne\n\n\n\n",
                                     "a\n\nb\n\n\nc\n\nd\n\ne\n\n");
    ck_assert_uint_eq(st.blank_lines_removed, 2 + 4 + 2);
    ck_assert_uint_eq(st.lines_in, 5 + 1 + 2 + 3 + 5 + 3);
    /* leading blank run */
    expect_clean("\n\n\n\nx", "\nx");
}
END_TEST

START_TEST(clean_duplicates)
{
    const char *line = "This line is long enough to count as a duplicate when it repeats!!";
    char in[512], want[512];
    et_clean_opts o;
    et_clean_stats st;
    ck_assert_uint_ge(strlen(line), 64);
    snprintf(in, sizeof in, "%s\nshort\n%s\nshort\n%s", line, line, line);
    snprintf(want, sizeof want, "%s\nshort\nshort\n", line);
    st = expect_clean(in, want);
    ck_assert_uint_eq(st.dup_lines_removed, 2);
    ck_assert_uint_eq(st.dup_bytes_removed, 2 * strlen(line) + 1);
    /* compared after cleaning: extra spaces do not hide a duplicate */
    snprintf(in, sizeof in, "%s\n%s   \n", line, line);
    snprintf(want, sizeof want, "%s\n", line);
    expect_clean(in, want);
    /* blank lines held back before a kept line do not confuse the comparison */
    snprintf(in, sizeof in, "x\n\n\n%s\n\n\n\n\n%s\n%s\n", line, line, line);
    snprintf(want, sizeof want, "x\n\n\n%s\n\n", line);
    st = expect_clean(in, want);
    ck_assert_uint_eq(st.dup_lines_removed, 2);
    et_clean_opts_init(&o);
    o.dedup_min_len = 0;
    snprintf(in, sizeof in, "%s\n%s\n", line, line);
    expect_clean_n(in, strlen(in), in, &o);
    o.dedup_min_len = 3;
    expect_clean_n("ab\nab\nabc\nabc\nabc\n", 18, "ab\nab\nabc\n", &o);
}
END_TEST

START_TEST(clean_shakespeare)
{
    size_t n, out_n;
    char *text = read_all(SHAKESPEARE, &n), *out;
    et_clean_stats st;
    if (!text) {
        fprintf(stderr, "clean_shakespeare: skipped, %s not found\n", SHAKESPEARE);
        return;
    }
    ck_assert_int_eq(et_text_clean(text, n, &out, &out_n, NULL, &st), ET_OK);
    /* 18 bytes of doubled or trailing spaces, nothing else */
    ck_assert_uint_eq(st.bytes_in, 1115394);
    ck_assert_uint_eq(out_n, 1115394 - 18);
    ck_assert_uint_eq(st.spaces_removed, 18);
    ck_assert_uint_eq(st.lines_in, 40000);
    ck_assert_uint_eq(st.lines_out, 40000);
    ck_assert_uint_eq(st.dup_lines_removed + st.blank_lines_removed + st.tags_removed +
                          st.entities_decoded + st.controls_removed + st.cr_normalised, 0);
    free(out);
    free(text);
}
END_TEST

// --- shards

START_TEST(shard_round_trip)
{
    static const size_t sizes[] = {0, 1, 4095, 100000};
    uint64_t s = 42;
    size_t k;
    char path[160], tmp[200];
    make_tmpdir();
    tmp_path(path, "toks.bin");
    for (k = 0; k < 4; k++) {
        size_t n = sizes[k], i, m = 99, m2 = 99;
        uint16_t *t = malloc((n ? n : 1) * sizeof *t), *back = NULL;
        unsigned char hdr[12];
        FILE *f;
        struct stat sb;
        et_error err;
        for (i = 0; i < n; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            t[i] = (uint16_t)s;
        }
        ck_assert_int_eq(et_shard_write(path, t, n, &err), ET_OK);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        ck_assert_int_ne(access(tmp, F_OK), 0);
        ck_assert_int_eq(stat(path, &sb), 0);
        ck_assert_uint_eq((size_t)sb.st_size, 1024 + 2 * n);
        f = fopen(path, "rb");
        ck_assert_uint_eq(fread(hdr, 1, 12, f), 12);
        fclose(f);
        /* llm.c's header, little-endian: 20240520 = 0x0134D888 */
        ck_assert(hdr[0] == 0x88 && hdr[1] == 0xd8 && hdr[2] == 0x34 && hdr[3] == 0x01);
        ck_assert(hdr[4] == 1 && hdr[5] == 0);
        ck_assert_uint_eq((size_t)hdr[8] | (size_t)hdr[9] << 8 | (size_t)hdr[10] << 16, n);
        ck_assert_int_eq(et_shard_info(path, &m2, &err), ET_OK);
        ck_assert_uint_eq(m2, n);
        ck_assert_int_eq(et_shard_read(path, &back, &m, &err), ET_OK);
        ck_assert_uint_eq(m, n);
        ck_assert_int_eq(memcmp(back, t, n * sizeof *t), 0);
        free(back);
        free(t);
    }
    remove(path);
    rmdir(tmpdir);
}
END_TEST

/* Writes a shard of 10 tokens, lets damage() change its bytes (and length), and expects
 * reading it to fail with status s and a message naming the file and containing what. */
static void expect_shard_error(unsigned char *b, size_t n, et_status s, const char *what)
{
    char path[160];
    uint16_t *t = NULL;
    size_t m = 0;
    et_error err;
    tmp_path(path, "bad.bin");
    write_all(path, b, n);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(et_shard_read(path, &t, &m, &err), s);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message '%s' does not name the file", err.msg);
    ck_assert_msg(strstr(err.msg, what) != NULL, "message '%s' lacks '%s'", err.msg, what);
    ck_assert_int_eq(et_shard_info(path, &m, &err), s);
    remove(path);
}

START_TEST(shard_errors)
{
    uint16_t toks[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    char path[160];
    unsigned char *good, *b;
    size_t n, m;
    uint16_t *t;
    et_error err;
    make_tmpdir();
    tmp_path(path, "good.bin");
    ck_assert_int_eq(et_shard_write(path, toks, 10, &err), ET_OK);
    good = (unsigned char *)read_all(path, &n);
    ck_assert_uint_eq(n, 1044);
    b = malloc(n + 16);

    tmp_path(path, "missing.bin");
    ck_assert_int_eq(et_shard_read(path, &t, &m, &err), ET_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    memcpy(b, good, n), b[0] ^= 1;
    expect_shard_error(b, n, ET_ERR_FORMAT, "magic");
    memcpy(b, good, n), b[4] = 2;
    expect_shard_error(b, n, ET_ERR_FORMAT, "version 2");
    memcpy(b, good, n), b[4] = 7;
    expect_shard_error(b, n, ET_ERR_FORMAT, "version 7");
    memcpy(b, good, n), b[11] = 0x80;
    expect_shard_error(b, n, ET_ERR_FORMAT, "negative");
    expect_shard_error(good, n - 1, ET_ERR_TRUNCATED, "truncated");
    expect_shard_error(good, n - 20, ET_ERR_TRUNCATED, "truncated");
    expect_shard_error(good, 1000, ET_ERR_TRUNCATED, "header");
    memcpy(b, good, n), b[n] = 0, b[n + 1] = 0;
    expect_shard_error(b, n + 2, ET_ERR_FORMAT, "trailing");
    memcpy(b, good, n), b[8] = 9;
    expect_shard_error(b, n, ET_ERR_FORMAT, "trailing");
    memcpy(b, good, n), b[8] = 11;
    expect_shard_error(b, n, ET_ERR_TRUNCATED, "11 tokens");

    tmp_path(path, "no-such-dir/x.bin");
    ck_assert_int_eq(et_shard_write(path, toks, 10, &err), ET_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "no-such-dir"));
    free(b);
    free(good);
    tmp_path(path, "good.bin");
    remove(path);
    rmdir(tmpdir);
}
END_TEST

// --- prepare

static void rm_outputs(const char *dir)
{
    static const char *names[] = {"train.bin", "val.bin", "tokenizer.bin"};
    char p[200];
    int i;
    for (i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        remove(p);
    }
    rmdir(dir);
}

/* Loads DIR's three files and checks that decoding train then val gives want back. */
static void check_outputs(const char *dir, const char *want, size_t want_n,
                          const et_prepare_report *r)
{
    char p[200], *back;
    uint16_t *tr, *va, *all;
    size_t ntr, nva, bn;
    et_tokenizer *tok;
    et_error err;
    snprintf(p, sizeof p, "%s/train.bin", dir);
    ck_assert_int_eq(et_shard_read(p, &tr, &ntr, &err), ET_OK);
    snprintf(p, sizeof p, "%s/val.bin", dir);
    ck_assert_int_eq(et_shard_read(p, &va, &nva, &err), ET_OK);
    snprintf(p, sizeof p, "%s/tokenizer.bin", dir);
    ck_assert_int_eq(et_tok_load(p, &tok, &err), ET_OK);
    ck_assert_uint_eq(ntr, r->train_tokens);
    ck_assert_uint_eq(nva, r->val_tokens);
    ck_assert_uint_eq(et_tok_vocab_size(tok), r->vocab);
    all = malloc((ntr + nva) * sizeof *all);
    memcpy(all, tr, ntr * sizeof *all);
    memcpy(all + ntr, va, nva * sizeof *all);
    back = malloc(want_n + 1);
    ck_assert_int_eq(et_tok_decode(tok, all, ntr + nva, back, want_n, &bn), ET_OK);
    ck_assert_uint_eq(bn, want_n);
    ck_assert_int_eq(memcmp(back, want, want_n), 0);
    free(back), free(all), free(tr), free(va);
    et_tok_free(tok);
}

START_TEST(prepare_end_to_end)
{
    /* the first file lacks its final newline; the second has CRLF, a tag and a space run */
    static const char a[] = "To be, or not to be: that is the question";
    static const char b[] = "Whether 'tis nobler <i>in</i> the  mind\r\nto suffer the slings\r\n";
    static const char joined[] =
        "To be, or not to be: that is the question\nWhether 'tis nobler in the mind\n"
        "to suffer the slings\n";
    char pa[160], pb[160], out[160];
    const char *inputs[2];
    et_prepare_opts o;
    et_prepare_report r;
    et_error err;
    make_tmpdir();
    tmp_path(pa, "a.txt");
    tmp_path(pb, "b.txt");
    tmp_path(out, "out");
    write_all(pa, a, sizeof a - 1);
    write_all(pb, b, sizeof b - 1);
    inputs[0] = pa, inputs[1] = pb;

    et_prepare_opts_init(&o);
    o.inputs = inputs, o.n_inputs = 2, o.out_dir = out;
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_OK);
    ck_assert_uint_eq(r.bytes_in, sizeof a - 1 + 1 + sizeof b - 1);
    ck_assert_uint_eq(r.bytes_clean, sizeof joined - 1);
    ck_assert_uint_eq(r.tokens, sizeof joined - 1); /* ASCII: one char, one token */
    ck_assert_uint_eq(r.train_tokens, (size_t)((sizeof joined - 1) * 0.9));
    ck_assert_uint_eq(r.val_tokens, r.tokens - r.train_tokens);
    ck_assert_int_eq(r.tokenizer, ET_TOK_CHAR);
    ck_assert_uint_eq(r.clean.tags_removed, 2);
    ck_assert_uint_eq(r.clean.cr_normalised, 2);
    check_outputs(out, joined, sizeof joined - 1, &r);
    rm_outputs(out);

    o.tokenizer = ET_TOK_BPE, o.vocab = 300, o.val_frac = 0.25;
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_OK);
    ck_assert_uint_eq(r.vocab, 300);
    ck_assert_uint_lt(r.tokens, sizeof joined - 1);
    ck_assert_uint_eq(r.train_tokens, (size_t)(r.tokens * 0.75));
    check_outputs(out, joined, sizeof joined - 1, &r);
    /* a second run over an existing directory replaces the files */
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_OK);
    check_outputs(out, joined, sizeof joined - 1, &r);
    rm_outputs(out);
    remove(pa), remove(pb);
    rmdir(tmpdir);
}
END_TEST

START_TEST(prepare_errors)
{
    char pa[160], pe[160], pm[160], out[160], notdir[160];
    const char *inputs[2];
    et_prepare_opts o;
    et_prepare_report r;
    et_error err;
    make_tmpdir();
    tmp_path(pa, "a.txt");
    tmp_path(pe, "empty.txt");
    tmp_path(pm, "missing.txt");
    tmp_path(out, "out");
    tmp_path(notdir, "a.txt");
    write_all(pa, "hello there, general\n", 21);
    write_all(pe, "\n \t\n<br>\n\x01\n", 11);
    et_prepare_opts_init(&o);
    o.out_dir = out;
    o.n_inputs = 2;
    o.inputs = inputs;

    inputs[0] = pa, inputs[1] = pm;
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "missing.txt"));
    o.n_inputs = 1;
    inputs[0] = pe;
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "after cleaning"));
    inputs[0] = pa;
    o.tokenizer = ET_TOK_BPE, o.vocab = 70000;
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "65535"));
    o.vocab = 100;
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_ERR_RANGE);
    o.tokenizer = ET_TOK_CHAR, o.vocab = 5; /* the text has 12 distinct characters */
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "12 distinct"));
    o.vocab = 0, o.val_frac = 1.0;
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "val-frac"));
    o.val_frac = 1e-18; /* 21 tokens: nothing left for val.bin */
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "val.bin"));
    o.val_frac = 0.99; /* nothing left for train.bin */
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "train.bin"));
    o.val_frac = 0.1, o.n_inputs = 0;
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_ERR_INVALID);
    o.n_inputs = 1, o.out_dir = notdir; /* a file where the directory should be */
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a directory"));
    o.out_dir = out;
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_OK);
    ck_assert_uint_eq(r.train_tokens, 18);
    ck_assert_uint_eq(r.val_tokens, 3);
    ck_assert_int_ne(access(out, F_OK), -1);
    rm_outputs(out);
    remove(pa), remove(pe);
    rmdir(tmpdir);
}
END_TEST

START_TEST(prepare_shakespeare)
{
    const char *inputs[1] = {SHAKESPEARE};
    char out[160];
    et_prepare_opts o;
    et_prepare_report r;
    et_error err;
    if (access(SHAKESPEARE, R_OK) != 0) {
        fprintf(stderr, "prepare_shakespeare: skipped, %s not found\n", SHAKESPEARE);
        return;
    }
    make_tmpdir();
    tmp_path(out, "shakespeare");
    et_prepare_opts_init(&o);
    o.inputs = inputs, o.n_inputs = 1, o.out_dir = out;
    ck_assert_int_eq(et_prepare(&o, &r, &err), ET_OK);
    ck_assert_uint_eq(r.bytes_in, 1115394);
    ck_assert_uint_eq(r.bytes_clean, 1115376);
    ck_assert_uint_eq(r.vocab, 65);
    ck_assert_uint_eq(r.train_tokens, 1003838); /* int(1115376 * 0.9), nanoGPT's split */
    ck_assert_uint_eq(r.val_tokens, 111538);
    rm_outputs(out);
    rmdir(tmpdir);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, clean_newlines);
    tcase_add_test(tc, clean_whitespace);
    tcase_add_test(tc, clean_tags);
    tcase_add_test(tc, clean_entities);
    tcase_add_test(tc, clean_controls_and_utf8);
    tcase_add_test(tc, clean_blank_runs);
    tcase_add_test(tc, clean_duplicates);
    tcase_add_test(tc, clean_shakespeare);
    tcase_add_test(tc, shard_round_trip);
    tcase_add_test(tc, shard_errors);
    tcase_add_test(tc, prepare_end_to_end);
    tcase_add_test(tc, prepare_errors);
    tcase_add_test(tc, prepare_shakespeare);
    suite_add_tcase(s, tc);
    return s;
}

ET_CHECK_MAIN(data_suite)
