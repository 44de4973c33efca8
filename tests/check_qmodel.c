/* check_qmodel.c - the quantized-model file (round trip, every kind of corruption,
 * atomic save) and `edgetrain compress` end to end: a tiny model trained by the CLI is
 * quantized, evaluated and sampled through the int8 path, and each bad input (already
 * quantized, a calibration set without enough tokens, bad flags) fails with one line
 * and leaves its input byte-identical and no output behind. The binary comes from
 * $ET_CLI. */
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "et_check.h"
#include "et_crc32.h"
#include "et_qmodel.h"
#include "et_rng.h"

static char dir[256];


static void spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void mkdir_tmp(void)
{
    snprintf(dir, sizeof dir, "/tmp/et_qmodel_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void rm_tmp(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

// --- the file format

/* a W8A8 model of a random tiny config, with made-up but valid activation ranges */
static void make_qmodel(et_qmodel *q, float **params_out)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    et_rng r;
    size_t np, i;
    int ns;
    float *p, *lo, *hi;
    memset(q, 0, sizeof *q);
    q->cfg.vocab = 23; q->cfg.context = 8; q->cfg.layers = 2; q->cfg.heads = 2; q->cfg.channels = 16;
    et_gpt_config_check(&q->cfg);
    q->mode = ET_QMODE_W8A8;
    np = et_gpt_tensors(&q->cfg, t);
    p = malloc(sizeof(float) * np);
    et_rng_seed(&r, 5);
    for (i = 0; i < np; i++) p[i] = 0.1f * et_rng_normal(&r);
    ns = et_qgpt_nsites(&q->cfg);
    lo = malloc(sizeof(float) * ns);
    hi = malloc(sizeof(float) * ns);
    for (i = 0; i < (size_t)ns; i++) { lo[i] = -1.0f - (float)i; hi[i] = 2.0f + (float)i; }
    ck_assert_int_eq(et_qgpt_tensors(&q->cfg, q->mode, NULL, &q->blob_bytes), ET_OK);
    q->blob = et_test_aligned(q->blob_bytes);
    ck_assert_int_eq(et_qgpt_quantize(&q->cfg, p, q->mode, lo, hi, q->blob, q->blob_bytes), ET_OK);
    q->tokenizer = (void *)"opaque tokenizer bytes";
    q->tokenizer_bytes = 22;
    q->calib_method = ET_QCALIB_PERCENTILE;
    q->calib_pct = 0.999f;
    q->calib_batches = 3;
    q->src_nparams = np;
    free(lo);
    free(hi);
    *params_out = p;
}

START_TEST(file_roundtrip)
{
    et_qmodel q, back;
    et_error e = {0};
    char path[300];
    float *p;
    mkdir_tmp();
    make_qmodel(&q, &p);
    snprintf(path, sizeof path, "%s/m.etq", dir);
    ck_assert_int_eq(et_qmodel_save(path, &q, &e), ET_OK);
    ck_assert_int_eq(et_qmodel_probe(path), 1);
    ck_assert_int_eq(et_qmodel_load(path, &back, &e), ET_OK);
    ck_assert_int_eq(back.mode, ET_QMODE_W8A8);
    ck_assert_int_eq(back.cfg.channels, 16);
    ck_assert_uint_eq(back.blob_bytes, q.blob_bytes);
    ck_assert(memcmp(back.blob, q.blob, q.blob_bytes) == 0);
    ck_assert_uint_eq(back.tokenizer_bytes, 22);
    ck_assert(memcmp(back.tokenizer, q.tokenizer, 22) == 0);
    ck_assert(back.calib_pct == 0.999f);
    ck_assert_uint_eq(back.calib_batches, 3);
    ck_assert_uint_eq(back.src_nparams, q.src_nparams);
    ck_assert_uint_eq((uintptr_t)back.blob % 64, 0);
    et_qmodel_free(&back);
    et_qmodel_free(&back); /* twice is safe */
    free(q.blob);
    free(p);
    rm_tmp();
}
END_TEST

static et_status load_status(const char *path, const char *expect_in_msg)
{
    et_qmodel q;
    et_error e = {0};
    et_status s = et_qmodel_load(path, &q, &e);
    ck_assert_ptr_null(q.blob);
    if (expect_in_msg) ck_assert_msg(strstr(e.msg, expect_in_msg) != NULL, "message '%s' lacks '%s'", e.msg, expect_in_msg);
    return s;
}

START_TEST(file_corruption)
{
    et_qmodel q;
    et_error e = {0};
    char path[300], bad[300];
    uint8_t *b, *c;
    size_t n;
    uint32_t v, crc;
    float *p;
    mkdir_tmp();
    make_qmodel(&q, &p);
    snprintf(path, sizeof path, "%s/m.etq", dir);
    snprintf(bad, sizeof bad, "%s/bad.etq", dir);
    ck_assert_int_eq(et_qmodel_save(path, &q, &e), ET_OK);
    b = et_test_slurp(path, &n);
    c = malloc(n + 8);
    /* a flipped bit in the data */
    memcpy(c, b, n); c[n / 2] ^= 0x10; spit(bad, c, n);
    ck_assert_int_eq(load_status(bad, "corrupt"), ET_ERR_CRC);
    /* in the header */
    memcpy(c, b, n); c[30] ^= 1; spit(bad, c, n);
    ck_assert_int_eq(load_status(bad, "header checksum"), ET_ERR_CRC);
    /* truncated, and too long */
    spit(bad, b, n - 100);
    ck_assert_int_eq(load_status(bad, "truncated"), ET_ERR_TRUNCATED);
    memcpy(c, b, n); memset(c + n, 0, 8); spit(bad, c, n + 8);
    ck_assert_int_eq(load_status(bad, "unexpected bytes"), ET_ERR_FORMAT);
    spit(bad, b, 20);
    ck_assert_int_eq(load_status(bad, NULL), ET_ERR_TRUNCATED);
    /* another file type, and a newer version (with a valid header checksum) */
    memcpy(c, b, n); memcpy(c, "ETCKPT\0\0", 8); spit(bad, c, n);
    ck_assert_int_eq(load_status(bad, "not a quantized"), ET_ERR_FORMAT);
    ck_assert_int_eq(et_qmodel_probe(bad), 0);
    memcpy(c, b, n); v = 3; memcpy(c + 8, &v, 4); crc = et_crc32(c, 124); memcpy(c + 124, &crc, 4); spit(bad, c, n);
    ck_assert_int_eq(load_status(bad, "version 3"), ET_ERR_UNSUPPORTED);
    /* a mode that does not exist */
    memcpy(c, b, n); v = 7; memcpy(c + 16, &v, 4); crc = et_crc32(c, 124); memcpy(c + 124, &crc, 4); spit(bad, c, n);
    ck_assert_int_eq(load_status(bad, "mode"), ET_ERR_FORMAT);
    /* channels not a multiple of heads */
    memcpy(c, b, n); v = 3; memcpy(c + 40, &v, 4); crc = et_crc32(c, 124); memcpy(c + 124, &crc, 4); spit(bad, c, n);
    ck_assert_int_eq(load_status(bad, "invalid config"), ET_ERR_RANGE);
    snprintf(bad, sizeof bad, "%s/missing.etq", dir);
    ck_assert_int_eq(load_status(bad, "cannot open"), ET_ERR_IO);
    ck_assert_int_eq(et_qmodel_probe(bad), 0);
    free(b); free(c); free(q.blob); free(p);
    rm_tmp();
}
END_TEST

START_TEST(file_save_is_atomic)
{
    et_qmodel q;
    et_error e = {0};
    char path[300], cmd[400], out[256];
    uint8_t *before, *after;
    size_t n1, n2;
    float *p;
    mkdir_tmp();
    make_qmodel(&q, &p);
    snprintf(path, sizeof path, "%s/m.etq", dir);
    ck_assert_int_eq(et_qmodel_save(path, &q, &e), ET_OK);
    before = et_test_slurp(path, &n1);
    /* an invalid model is refused before anything is written */
    q.blob_bytes--;
    ck_assert_int_eq(et_qmodel_save(path, &q, &e), ET_ERR_INVALID);
    q.blob_bytes++;
    q.mode = (et_qmode)9;
    ck_assert_int_eq(et_qmodel_save(path, &q, &e), ET_ERR_INVALID);
    q.mode = ET_QMODE_W8A8;
    after = et_test_slurp(path, &n2);
    ck_assert(n1 == n2 && memcmp(before, after, n1) == 0);
    /* a folder that does not exist: an I/O error, nothing left behind */
    snprintf(path, sizeof path, "%s/no/such/m.etq", dir);
    ck_assert_int_eq(et_qmodel_save(path, &q, &e), ET_ERR_IO);
    ck_assert(strstr(e.msg, "unchanged") != NULL);
    snprintf(cmd, sizeof cmd, "ls %s | wc -l", dir);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s", cmd), 0);
    ck_assert_int_eq(atoi(out), 1);
    free(before); free(after); free(q.blob); free(p);
    rm_tmp();
}
END_TEST

// --- the command, end to end

static void train_tiny(void)
{
    static const char *lines[] = {"To be, or not to be, that is the question:\n",
                                  "Whether 'tis nobler in the mind to suffer\n",
                                  "The slings and arrows of outrageous fortune,\n"};
    char path[300], out[4096];
    FILE *f;
    int i;
    snprintf(path, sizeof path, "%s/text.txt", dir);
    f = fopen(path, "w");
    for (i = 0; i < 300; i++) fputs(lines[(i * 7 + i / 3) % 3], f);
    fclose(f);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s prepare --input %s --tokenizer char --dedup-min-len 0 --out %s/data",
                         et_test_cli(), path, dir), 0);
    ck_assert_msg(et_test_run(out, sizeof out, "%s train --data %s/data/train.bin --layers 2 --heads 2 --channels 32 "
                      "--context 16 -b 4 -t 16 --steps 30 --warmup 5 --lr 3e-3 --eval-every 0 --threads 1 -q "
                      "--out %s/run", et_test_cli(), dir, dir) == 0, "train: %s", out);
}

START_TEST(cli_compress_eval_sample)
{
    char out[8192], path[300];
    struct stat st;
    float fp, q8;
    mkdir_tmp();
    train_tiny();
    ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --quant w8a8 "
                      "--calib-batches 4 -b 4 -t 16 --threads 1 --out %s/m8.etq", et_test_cli(), dir, dir, dir) == 0,
                  "compress: %s", out);
    ck_assert(strstr(out, "smaller") != NULL);
    snprintf(path, sizeof path, "%s/m8.etq.report.md", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/m8.etq.report.json", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    /* eval through the int8 path, close to the fp32 model */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s/run/model.etck --data %s/data/val.bin -b 4 -t 16 "
                         "--batches 4 --threads 1", et_test_cli(), dir, dir), 0);
    ck_assert_int_eq(sscanf(out, "loss %f", &fp), 1);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s/m8.etq --data %s/data/val.bin -b 4 -t 16 "
                         "--batches 4 --threads 1", et_test_cli(), dir, dir), 0);
    ck_assert_int_eq(sscanf(out, "loss %f", &q8), 1);
    ck_assert_msg(fabsf(q8 - fp) < 0.03f * fp, "int8 eval %f vs fp32 %f", q8, fp);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sample --model %s/m8.etq --length 20 --prompt To --seed 3",
                         et_test_cli(), dir), 0);
    ck_assert_msg(strncmp(out, "To", 2) == 0 && strlen(out) >= 20, "sample: %s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --quant w8a32 "
                         "-b 4 -t 16 --threads 1 --out %s/m32.etq -q", et_test_cli(), dir, dir, dir), 0);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s/m32.etq --data %s/data/val.bin -b 4 -t 16 "
                         "--batches 4", et_test_cli(), dir, dir), 0);
    ck_assert_int_eq(sscanf(out, "loss %f", &q8), 1);
    ck_assert_msg(fabsf(q8 - fp) < 0.01f * fp, "w8a32 eval %f vs fp32 %f", q8, fp);
    rm_tmp();
}
END_TEST

START_TEST(cli_bad_inputs)
{
    char out[8192], path[300];
    uint8_t *b0, *b1;
    size_t n0, n1;
    struct stat st;
    uint16_t few[4] = {1, 2, 3, 4};
    mkdir_tmp();
    train_tiny();
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --quant w8a8 "
                         "--calib-batches 2 -b 2 -t 16 --out %s/m8.etq -q", et_test_cli(), dir, dir, dir), 0);
    /* already quantized: refused, input unchanged, nothing written */
    snprintf(path, sizeof path, "%s/m8.etq", dir);
    b0 = et_test_slurp(path, &n0);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --quant w8a8 --out %s/again.etq",
                         et_test_cli(), path, dir, dir), 1);
    ck_assert_msg(strstr(out, "already a quantized model") != NULL, "%s", out);
    b1 = et_test_slurp(path, &n1);
    ck_assert(n0 == n1 && memcmp(b0, b1, n0) == 0);
    snprintf(path, sizeof path, "%s/again.etq", dir);
    ck_assert_int_ne(stat(path, &st), 0);
    /* a calibration set with too few tokens (a valid shard of 4 tokens) */
    {
        uint32_t hdr[256] = {0};
        FILE *f;
        snprintf(path, sizeof path, "%s/few.bin", dir);
        hdr[0] = 20240520; hdr[1] = 1; hdr[2] = 4;
        f = fopen(path, "wb");
        fwrite(hdr, 4, 256, f);
        fwrite(few, 2, 4, f);
        fclose(f);
    }
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --calib-data %s "
                         "--quant w8a8 -t 16 --out %s/c.etq", et_test_cli(), dir, dir, path, dir), 1);
    ck_assert_msg(strstr(out, "calibration set") != NULL && strstr(out, "4 tokens") != NULL, "%s", out);
    snprintf(path, sizeof path, "%s/c.etq", dir);
    ck_assert_int_ne(stat(path, &st), 0);
    /* flags */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --quant w4 "
                         "--out %s/x.etq", et_test_cli(), dir, dir, dir), 2);
    ck_assert(strstr(out, "w8a8 or w8a32") != NULL);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --quant w8a8 "
                         "--percentile 30 --out %s/x.etq", et_test_cli(), dir, dir, dir), 2);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --quant w8a8", et_test_cli(), dir), 2);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --help", et_test_cli()), 0);
    ck_assert(strstr(out, "--calib-batches") != NULL);
    /* eval of a quantized model whose bytes are corrupt */
    snprintf(path, sizeof path, "%s/m8.etq", dir);
    b0[n0 / 2] ^= 0x40;
    snprintf(path, sizeof path, "%s/corrupt.etq", dir);
    spit(path, b0, n0);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s --data %s/data/val.bin", et_test_cli(), path, dir), 1);
    ck_assert(strstr(out, "corrupt") != NULL);
    free(b0); free(b1);
    rm_tmp();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qmodel");
    TCase *t = tcase_create("file");
    TCase *c = tcase_create("cli");
    tcase_add_test(t, file_roundtrip);
    tcase_add_test(t, file_corruption);
    tcase_add_test(t, file_save_is_atomic);
    tcase_set_timeout(c, 300);
    tcase_add_test(c, cli_compress_eval_sample);
    tcase_add_test(c, cli_bad_inputs);
    suite_add_tcase(s, t);
    suite_add_tcase(s, c);
    return s;
}

ET_CHECK_MAIN(suite)
