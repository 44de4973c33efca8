/* check_cli.c - the edgetrain command line end to end, driven as a user would: prepare,
 * train, resume, eval, sample, info, export, and every bad-input case giving a one-line
 * error and a non-zero exit (never a crash). The binary comes from $ET_CLI. */
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "et_check.h"

static char dir[256];
/* runs a shell command, returns its exit status (-1 on a signal), output in out */

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* A corpus with structure: repeated verses, so a tiny model can learn something. */
static void setup(void)
{
    static const char *lines[] = {"To be, or not to be, that is the question:\n",
                                  "Whether 'tis nobler in the mind to suffer\n",
                                  "The slings and arrows of outrageous fortune,\n",
                                  "Or to take arms against a sea of troubles\n"};
    char path[512], out[4096];
    FILE *f;
    int i;
    snprintf(dir, sizeof dir, "/tmp/et_cli_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/text.txt", dir);
    f = fopen(path, "w");
    for (i = 0; i < 400; i++) fputs(lines[(i * 7 + i / 3) % 4], f);
    fclose(f);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s prepare --input %s --tokenizer char --dedup-min-len 0 --out %s/data",
                         et_test_cli(), path, dir), 0);
}

static void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {}
}

#define TINY "--layers 2 --heads 2 --channels 32 --context 32 -b 4 -t 32 --threads 2 -q"

START_TEST(help_lists_commands_and_flags)
{
    char out[16384];
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s --help", et_test_cli()), 0);
    ck_assert_ptr_nonnull(strstr(out, "prepare"));
    ck_assert_ptr_nonnull(strstr(out, "sample"));
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --help", et_test_cli()), 0);
    ck_assert_ptr_nonnull(strstr(out, "--sequential"));
    ck_assert_ptr_nonnull(strstr(out, "(default 0.001)"));
    ck_assert_int_ne(et_test_run(out, sizeof out, "%s frobnicate", et_test_cli()), 0);
    ck_assert_ptr_nonnull(strstr(out, "unknown command"));
}
END_TEST

/* The losses of steps 11..20 after resuming from step 10 equal the uninterrupted run's. */
START_TEST(resume_is_exact)
{
    char out[8192], a[8192], b[8192], path[600];
    FILE *f;
    size_t na, nb;
    const char *pa, *pb;
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --data %s/data/train.bin --val-data %s/data/val.bin "
                         TINY " --steps 20 --warmup 3 --ckpt-every 10 --eval-every 10 --out %s/run_a",
                         et_test_cli(), dir, dir, dir), 0);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --data %s/data/train.bin --val-data %s/data/val.bin "
                         TINY " --steps 20 --warmup 3 --eval-every 10 --resume %s/run_a/ckpt_000010.etck "
                         "--out %s/run_b", et_test_cli(), dir, dir, dir, dir), 0);
    snprintf(path, sizeof path, "%s/run_a/log.csv", dir);
    f = fopen(path, "r"); ck_assert_ptr_nonnull(f); na = fread(a, 1, sizeof a - 1, f); a[na] = 0; fclose(f);
    snprintf(path, sizeof path, "%s/run_b/log.csv", dir);
    f = fopen(path, "r"); ck_assert_ptr_nonnull(f); nb = fread(b, 1, sizeof b - 1, f); b[nb] = 0; fclose(f);
    pa = strstr(a, "\n11,");
    pb = strstr(b, "11,");
    ck_assert_ptr_nonnull(pa);
    ck_assert_ptr_nonnull(pb);
    ck_assert_str_eq(pa + 1, pb);
    snprintf(path, sizeof path, "%s/run_a/loss.svg", dir);
    ck_assert_int_gt(file_size(path), 100);
}
END_TEST

START_TEST(eval_sample_info_export)
{
    char out[16384], l1[64], l2[64];
    const char *p;
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --data %s/data/train.bin " TINY
                         " --steps 30 --out %s/run_c", et_test_cli(), dir, dir), 0);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s/run_c/model.etck --data %s/data/val.bin "
                         "-b 2 -t 32 --batches 3", et_test_cli(), dir, dir), 0);
    p = strstr(out, "loss ");
    ck_assert_ptr_nonnull(p);
    snprintf(l1, sizeof l1, "%s", p);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s export --model %s/run_c/model.etck --format llmc --out %s/c.bin",
                         et_test_cli(), dir, dir), 0);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s/c.bin --data %s/data/val.bin -b 2 -t 32 --batches 3",
                         et_test_cli(), dir, dir), 0);
    p = strstr(out, "loss ");
    ck_assert_ptr_nonnull(p);
    snprintf(l2, sizeof l2, "%s", p);
    ck_assert_str_eq(l1, l2); /* the llm.c copy holds the same weights */
    /* the systolic simulator's fp32 GEMMs give the cpu's loss */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s/c.bin --data %s/data/val.bin -b 2 -t 32 --batches 3 "
                         "--backend systolic:8x8:os:fp32", et_test_cli(), dir, dir), 0);
    p = strstr(out, "loss ");
    ck_assert_ptr_nonnull(p);
    ET_CK_CLOSE(atof(p + 5), atof(l1 + 5), 1e-5, 0);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sample --model %s/run_c/model.etck -n 40 --seed 3 --prompt To",
                         et_test_cli(), dir), 0);
    ck_assert_uint_ge(strlen(out), 42);
    {
        char again[16384];
        ck_assert_int_eq(et_test_run(again, sizeof again, "%s sample --model %s/run_c/model.etck -n 40 --seed 3 --prompt To",
                             et_test_cli(), dir), 0);
        ck_assert_str_eq(out, again);
    }
    /* an llm.c file has no tokenizer: sample says so */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sample --model %s/c.bin -n 5", et_test_cli(), dir), 1);
    ck_assert_ptr_nonnull(strstr(out, "no tokenizer"));
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sample --model %s/c.bin -n 5 --tokenizer %s/data/tokenizer.bin",
                         et_test_cli(), dir, dir), 0);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s info --model %s/run_c/model.etck -b 4 -t 32", et_test_cli(), dir), 0);
    ck_assert_ptr_nonnull(strstr(out, "total"));
    ck_assert_ptr_nonnull(strstr(out, "parameters"));
}
END_TEST

/* every bad input: exit code 1 or 2, one clear line, no crash */
static void expect_error(const char *needle, const char *fmt, const char *arg1, const char *arg2)
{
    char out[8192], cmd[2048];
    int rc;
    snprintf(cmd, sizeof cmd, fmt, et_test_cli(), arg1, arg2);
    rc = et_test_run(out, sizeof out, "%s", cmd);
    ck_assert_msg(rc == 1 || rc == 2, "'%s' exited %d (want 1 or 2): %s", cmd, rc, out);
    ck_assert_msg(strstr(out, needle) != NULL, "'%s' said '%s', expected to mention '%s'", cmd, out, needle);
}

START_TEST(bad_inputs)
{
    char p[600], q[600], data[600];
    char buf[8192];
    FILE *f;
    size_t n;
    snprintf(data, sizeof data, "%s/data/train.bin", dir);
    /* a model to corrupt */
    ck_assert_int_eq(et_test_run(buf, sizeof buf, "%s train --data %s " TINY " --steps 2 --out %s/run_d", et_test_cli(), data, dir), 0);
    snprintf(p, sizeof p, "%s/run_d/model.etck", dir);

    expect_error("/nonexistent/x.etck", "%s eval --model %s --data %s", "/nonexistent/x.etck", data);
    expect_error("/nonexistent/t.bin", "%s train --data %s --out %s/run_e -q", "/nonexistent/t.bin", dir);
    snprintf(q, sizeof q, "%s/text.txt", dir);
    expect_error("magic", "%s eval --model %s --data %s", q, data);
    expect_error("magic", "%s train --data %s --out %s/run_e -q", q, dir);
    /* truncated checkpoint */
    f = fopen(p, "rb"); n = fread(buf, 1, 4000, f); fclose(f);
    snprintf(q, sizeof q, "%s/trunc.etck", dir);
    write_file(q, buf, n);
    expect_error("trunc", "%s eval --model %s --data %s", q, data);
    /* one flipped byte in the parameters: CRC */
    {
        long sz = file_size(p);
        char *all = malloc((size_t)sz);
        f = fopen(p, "rb"); ck_assert_uint_eq(fread(all, 1, (size_t)sz, f), (size_t)sz); fclose(f);
        all[sz / 2] ^= 0x10;
        snprintf(q, sizeof q, "%s/flip.etck", dir);
        write_file(q, all, (size_t)sz);
        free(all);
        expect_error("checksum", "%s eval --model %s --data %s", q, data);
    }
    /* tokens outside the model's vocabulary: a BPE shard against a char model */
    snprintf(q, sizeof q, "%s/text.txt", dir);
    ck_assert_int_eq(et_test_run(buf, sizeof buf, "%s prepare --input %s --tokenizer bpe --vocab 300 --out %s/bpe", et_test_cli(), q, dir), 0);
    snprintf(q, sizeof q, "%s/bpe/val.bin", dir);
    expect_error("vocabulary", "%s eval --model %s --data %s", p, q);
    /* sequence longer than the context */
    expect_error("context", "%s eval --model %s --data %s -t 33", p, data);
    /* bad flag values */
    expect_error("--lr", "%s train --data %s --out %s/run_e --lr abc", data, dir);
    expect_error("positive", "%s train --data %s --out %s/run_e -b 0 -q", data, dir);
    expect_error("unknown flag", "%s train --data %s --bogus %s", data, dir);
    expect_error("backend", "%s eval --model %s --data %s --backend tpu9000", p, data);
    expect_error("--input", "%s prepare --out %s%s", dir, "/x");
    /* resuming a weights-only file */
    snprintf(q, sizeof q, "%s/weights.etck", dir);
    ck_assert_int_eq(et_test_run(buf, sizeof buf, "%s export --model %s --format etck --out %s", et_test_cli(), p, q), 0);
    expect_error("resume", "%s train --data %s -q " TINY " --resume %s --out /tmp/et_unused", data, q);
}
END_TEST

/* --precision bf16 is cuda's alone: every other backend refuses it with one line and exit
 * 1 before reading anything, in every build; a bad value is a flag error (exit 2) */
START_TEST(precision_flag)
{
    static const char *const no[] = {"cpu", "opencl", "systolic", "systolic:8x8:os:fp32"};
    char data[600], out[8192];
    int i, rc;
    snprintf(data, sizeof data, "%s/data/train.bin", dir);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --help", et_test_cli()), 0);
    ck_assert_ptr_nonnull(strstr(out, "--precision"));
    for (i = 0; i < (int)(sizeof no / sizeof no[0]); i++) {
        rc = et_test_run(out, sizeof out, "%s train --data %s " TINY " --steps 2 --backend %s --precision bf16 "
                         "--out %s/run_p", et_test_cli(), data, no[i], dir);
        ck_assert_msg(rc == 1 && strstr(out, "has no bf16 mixed precision") && strchr(out, '\n') == strrchr(out, '\n'),
                      "--backend %s --precision bf16: exit %d: %s", no[i], rc, out);
    }
    expect_error("has no bf16", "%s train --data %s " TINY " --steps 2 --backend cpu+bf16 --out %s/run_p", data, dir);
    expect_error("has no bf16", "%s eval --model %s/none.etck --data %s --precision bf16", dir, data);
    expect_error("has no bf16", "%s sample --model %s/none.etck --precision bf16%s", dir, "");
    expect_error("--precision must be fp32 or bf16", "%s train --data %s --precision fp16 --out %s/run_p", data, dir);
    expect_error("give it once", "%s train --data %s --backend cuda+bf16 --precision bf16 --out %s/run_p", data, dir);
    /* cuda: trains on a GPU; without one (or without nvcc) a one-line reason naming cuda */
    rc = et_test_run(out, sizeof out, "%s train --data %s " TINY " --steps 2 --backend cuda --precision bf16 "
                     "--out %s/run_p", et_test_cli(), data, dir);
    ck_assert_msg(rc == 0 || (rc == 1 && strstr(out, "cuda")), "cuda bf16: exit %d: %s", rc, out);
    printf("check_cli: train --backend cuda --precision bf16 -> exit %d: %s", rc, out);
    /* fp32 is the default, and may be named */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --data %s " TINY " --steps 2 --precision fp32 "
                                 "--out %s/run_p", et_test_cli(), data, dir), 0);
}
END_TEST

START_TEST(failed_save_keeps_old_checkpoint)
{
    /* export onto a path whose folder does not exist fails cleanly; an existing file
     * that a failed export targets is untouched */
    char buf[4096], p[600], q[600];
    long before;
    snprintf(p, sizeof p, "%s/data/train.bin", dir);
    ck_assert_int_eq(et_test_run(buf, sizeof buf, "%s train --data %s " TINY " --steps 2 --out %s/run_f", et_test_cli(), p, dir), 0);
    snprintf(p, sizeof p, "%s/run_f/model.etck", dir);
    before = file_size(p);
    snprintf(q, sizeof q, "%s/text.txt", dir);
    /* export from a non-model onto the existing checkpoint: refused, checkpoint intact */
    ck_assert_int_ne(et_test_run(buf, sizeof buf, "%s export --model %s --format llmc --out %s", et_test_cli(), q, p), 0);
    ck_assert_int_eq(file_size(p), before);
    ck_assert_int_ne(et_test_run(buf, sizeof buf, "%s export --model %s --format llmc --out /nonexistent/dir/x.bin", et_test_cli(), p), 0);
    ck_assert_ptr_nonnull(strstr(buf, "/nonexistent/dir"));
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, help_lists_commands_and_flags);
    tcase_add_test(tc, resume_is_exact);
    tcase_add_test(tc, eval_sample_info_export);
    tcase_add_test(tc, bad_inputs);
    tcase_add_test(tc, failed_save_keeps_old_checkpoint);
    tcase_add_test(tc, precision_flag);
    suite_add_tcase(s, tc);
    return s;
}

ET_CHECK_MAIN(cli_suite)
