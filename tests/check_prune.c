/* check_prune.c - pruning: exact unstructured sparsity with ties and bad input, N:M
 * groups (2:4, 1:4, 4:8, 3:16) keeping the largest, compact storage round trips read in
 * place by the sparse kernel, masks holding through fine-tuning, the compact-model file
 * (every storage kind, fp32 and W8A8: round trip, the working model back from it, every
 * corruption), and `edgetrain compress --prune` end to end, alone and with --lowrank,
 * the fine-tune and --quant, with its bad inputs (the CLI from $ET_CLI). */
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "et_check.h"
#include "et_cmodel.h"
#include "et_compress.h"
#include "et_crc32.h"
#include "et_prune.h"
#include "et_rng.h"
#include "et_sparse.h"
#include "et_spmm.h"

static float *randn(size_t n, uint64_t seed)
{
    float *w = malloc(sizeof(float) * n + 4);
    et_rng r;
    size_t i;
    et_rng_seed(&r, seed);
    for (i = 0; i < n; i++) w[i] = et_rng_normal(&r);
    return w;
}

START_TEST(magnitude_exact)
{
    static const float sp[] = {0.0f, 0.3f, 0.5f, 0.9f, 0.999f, 1.0f};
    size_t n = 10007, i, kept;
    float *w = randn(n, 1);
    uint8_t *m = malloc(et_prune_mask_bytes(n));
    int s;
    for (s = 0; s < 6; s++) {
        float maxdrop = 0.0f, minkeep = 1e30f;
        ck_assert_int_eq(et_prune_magnitude(w, n, sp[s], m, &kept), ET_OK);
        ck_assert_uint_eq(kept, n - (size_t)((double)sp[s] * n));
        ck_assert_uint_eq(et_prune_count(m, n), kept);
        for (i = 0; i < n; i++) {
            float a = fabsf(w[i]);
            if (et_prune_kept(m, i)) { if (a < minkeep) minkeep = a; }
            else if (a > maxdrop) maxdrop = a;
        }
        ck_assert(kept == 0 || kept == n || maxdrop <= minkeep);
    }
    /* ties: 1000 equal magnitudes, drop exactly 40 % */
    for (i = 0; i < 1000; i++) w[i] = (i & 1) ? 0.5f : -0.5f;
    ck_assert_int_eq(et_prune_magnitude(w, 1000, 0.4f, m, &kept), ET_OK);
    ck_assert_uint_eq(kept, 600);
    ck_assert_int_eq(et_prune_kept(m, 0), 0);   /* the first ones go */
    ck_assert_int_eq(et_prune_kept(m, 999), 1);
    /* zeros already there are the first to go */
    w[500] = 0.0f;
    ck_assert_int_eq(et_prune_magnitude(w, 1000, 0.001f, m, &kept), ET_OK);
    ck_assert_uint_eq(kept, 999);
    ck_assert_int_eq(et_prune_kept(m, 500), 0);
    /* bad input: sparsity outside [0, 1], NaN, a non-finite weight */
    ck_assert_int_eq(et_prune_magnitude(w, n, -0.1f, m, &kept), ET_ERR_INVALID);
    ck_assert_int_eq(et_prune_magnitude(w, n, 1.5f, m, &kept), ET_ERR_INVALID);
    ck_assert_int_eq(et_prune_magnitude(w, n, NAN, m, &kept), ET_ERR_INVALID);
    w[7] = INFINITY;
    ck_assert_int_eq(et_prune_magnitude(w, n, 0.5f, m, &kept), ET_ERR_RANGE);
    free(w);
    free(m);
}
END_TEST

START_TEST(nm_groups)
{
    static const int nm[][2] = {{2, 4}, {1, 4}, {4, 8}, {3, 16}};
    int rows = 9, cols = 48, t;
    float *w = randn((size_t)rows * cols, 2);
    uint8_t *m = malloc(et_prune_mask_bytes((size_t)rows * cols));
    for (t = 0; t < 4; t++) {
        int N = nm[t][0], M = nm[t][1], g, j, k;
        ck_assert_int_eq(et_prune_nm(w, rows, cols, N, M, m), ET_OK);
        for (g = 0; g < rows * cols / M; g++) {
            int kept = 0;
            float minkeep = 1e30f, maxdrop = 0.0f;
            for (j = 0; j < M; j++) {
                float a = fabsf(w[g * M + j]);
                k = et_prune_kept(m, (size_t)g * M + j);
                kept += k;
                if (k && a < minkeep) minkeep = a;
                if (!k && a > maxdrop) maxdrop = a;
            }
            ck_assert_int_eq(kept, N);
            ck_assert(maxdrop <= minkeep);
        }
    }
    /* N >= M, N < 1, M > 16, cols not a multiple of M */
    ck_assert_int_eq(et_prune_nm(w, rows, cols, 4, 4, m), ET_ERR_INVALID);
    ck_assert_int_eq(et_prune_nm(w, rows, cols, 5, 4, m), ET_ERR_INVALID);
    ck_assert_int_eq(et_prune_nm(w, rows, cols, 0, 4, m), ET_ERR_INVALID);
    ck_assert_int_eq(et_prune_nm(w, rows, cols, 2, 32, m), ET_ERR_INVALID);
    ck_assert_int_eq(et_prune_nm(w, rows, 42, 2, 4, m), ET_ERR_INVALID);
    free(w);
    free(m);
}
END_TEST

START_TEST(compact_roundtrip_and_matmul)
{
    static const int nm[][2] = {{2, 4}, {1, 4}, {4, 8}, {3, 16}};
    int OC = 13, K = 64, R = 7, t;
    size_t n = (size_t)OC * K, i;
    float *w = randn(n, 3), *x = randn((size_t)R * K, 4), *bias = randn((size_t)OC, 5);
    float *back = malloc(sizeof(float) * n), *dense = malloc(sizeof(float) * n);
    float *y = malloc(sizeof(float) * R * OC), *vals = malloc(sizeof(float) * n);
    uint8_t *m = malloc(et_prune_mask_bytes(n)), *idx = malloc(n);
    for (t = 0; t < 4; t++) {
        int N = nm[t][0], M = nm[t][1], r, o, k;
        ck_assert_int_eq(et_prune_nm(w, OC, K, N, M, m), ET_OK);
        memcpy(dense, w, sizeof(float) * n);
        et_prune_apply(dense, m, n);
        if (t == 0) { /* a kept weight dropped later: the group is padded */
            for (i = 0; i < 4; i++) if (et_prune_kept(m, i)) { m[0] &= (uint8_t)~(1u << i); dense[i] = 0; break; }
        }
        ck_assert_int_eq(et_prune_nm_pack(w, m, OC, K, N, M, vals, idx), ET_OK);
        ck_assert_int_eq(et_prune_nm_unpack(vals, idx, OC, K, N, M, back), ET_OK);
        ck_assert(memcmp(back, dense, sizeof(float) * n) == 0);
        ck_assert_uint_eq(et_prune_nm_value_count(OC, K, N, M), (size_t)OC * K / M * N);
        { /* the compact kernel reads this layout in place */
            et_spmat sp = {ET_SPMAT_NM, OC, K, N, M, vals, NULL, idx, NULL};
            size_t sb = et_spmm_scratch_bytes(R, K, 1);
            void *scr = et_test_aligned(sb);
            ck_assert_int_eq(et_spmat_check(&sp), ET_OK);
            ck_assert_int_eq(et_spmm_f32(&sp, y, x, bias, R, NULL, scr, sb), ET_OK);
            free(scr);
        }
        for (r = 0; r < R; r++)
            for (o = 0; o < OC; o++) {
                double want = bias[o];
                for (k = 0; k < K; k++) want += (double)x[r * K + k] * dense[o * K + k];
                ck_assert(fabs(y[r * OC + o] - want) < 1e-4);
            }
    }
    /* more kept than N in a group cannot be packed */
    memset(m, 0xFF, et_prune_mask_bytes(n));
    ck_assert_int_eq(et_prune_nm_pack(w, m, OC, K, 2, 4, vals, idx), ET_ERR_INVALID);
    /* 2:4 is 2 floats + 2 bits per 4 weights */
    ck_assert_uint_eq(et_prune_nm_index_bytes(OC, K, 2, 4), (size_t)OC * K / 4 * 2 * 2 / 8);
    /* the bitmap form */
    ck_assert_int_eq(et_prune_magnitude(w, n, 0.7f, m, NULL), ET_OK);
    memcpy(dense, w, sizeof(float) * n);
    et_prune_apply(dense, m, n);
    et_prune_bitmap_pack(w, m, n, vals);
    et_prune_bitmap_unpack(vals, m, n, back);
    ck_assert(memcmp(back, dense, sizeof(float) * n) == 0);
    free(w); free(x); free(bias); free(back); free(dense); free(y); free(vals); free(m); free(idx);
}
END_TEST

START_TEST(masks_hold_while_finetuning)
{
    et_gpt_config c = {0};
    et_tensor_info t[ET_GPT_NTENSORS];
    et_prune_spec p;
    et_finetune_opts fo;
    et_error e = {0};
    uint16_t tok[600];
    size_t np, i;
    float *params, *orig;
    uint8_t *mask;
    int k, changed = 0;
    c.vocab = 17; c.context = 16; c.layers = 2; c.heads = 2; c.channels = 16;
    et_gpt_config_check(&c);
    np = et_gpt_tensors(&c, t);
    params = randn(np, 6);
    for (i = 0; i < np; i++) params[i] *= 0.05f;
    orig = malloc(sizeof(float) * np);
    memcpy(orig, params, sizeof(float) * np);
    mask = malloc(et_prune_mask_bytes(np));
    for (i = 0; i < 600; i++) tok[i] = (uint16_t)((i * 7 + i / 5) % 17);
    for (k = 0; k < 2; k++) {
        memcpy(params, orig, sizeof(float) * np);
        ck_assert_int_eq(et_prune_spec_parse(k ? "2:4" : "0.6", &p, &e), ET_OK);
        et_finetune_opts_init(&fo);
        fo.steps = 12; fo.B = 2; fo.T = 16; fo.threads = 1; fo.lr = 1e-2f;
        ck_assert_int_eq(et_compress_prune(&c, params, &p, &fo, tok, 600, mask, &e), ET_OK);
        for (i = 0; i < np; i++) {
            if (!et_prune_kept(mask, i)) ck_assert(params[i] == 0.0f);
            else changed += params[i] != orig[i];
        }
        for (i = 0; i < ET_PRUNE_NMATS; i++) {
            const et_tensor_info *ti = &t[et_prune_gpt_tensors[i]];
            size_t kept = 0, j;
            for (j = 0; j < ti->count; j++) kept += (size_t)et_prune_kept(mask, ti->offset + j);
            ck_assert_uint_eq(kept, k ? ti->count / 2 : ti->count - (size_t)(0.6 * (ti->count / c.layers)) * c.layers);
        }
        for (i = 0; i < t[0].count; i++) ck_assert(et_prune_kept(mask, i)); /* embeddings untouched */
    }
    ck_assert(changed > 0); /* fine-tuning did move the kept weights */
    /* bad specs */
    ck_assert_int_eq(et_prune_spec_parse("1.5", &p, &e), ET_ERR_INVALID);
    ck_assert(strstr(e.msg, "0 and 1") != NULL);
    ck_assert_int_eq(et_prune_spec_parse("-0.2", &p, &e), ET_ERR_INVALID);
    ck_assert_int_eq(et_prune_spec_parse("4:4", &p, &e), ET_ERR_INVALID);
    ck_assert(strstr(e.msg, "N < M") != NULL);
    ck_assert_int_eq(et_prune_spec_parse("3:2", &p, &e), ET_ERR_INVALID);
    ck_assert_int_eq(et_prune_spec_parse("2:x", &p, &e), ET_ERR_INVALID);
    ck_assert_int_eq(et_prune_spec_parse("half", &p, &e), ET_ERR_INVALID);
    /* 2:3 does not divide the channels */
    ck_assert_int_eq(et_prune_spec_parse("2:3", &p, &e), ET_OK);
    et_finetune_opts_init(&fo);
    fo.steps = 0;
    memcpy(params, orig, sizeof(float) * np);
    ck_assert_int_eq(et_compress_prune(&c, params, &p, &fo, tok, 600, mask, &e), ET_ERR_INVALID);
    ck_assert(memcmp(params, orig, sizeof(float) * np) == 0); /* input untouched */
    free(params); free(orig); free(mask);
}
END_TEST

// --- the pruned-model file and the command

static char dir[256];


static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* the compact-model file: every storage kind (2:4, bitmap, factors) in fp32 and W8A8,
 * round trip, the working model back from a file, and every corruption refused */
START_TEST(sparse_file_roundtrip)
{
    et_gpt_config c = {0};
    et_tensor_info t[ET_GPT_NTENSORS];
    et_prune_spec p;
    et_lowrank_spec lr;
    et_error e = {0};
    char path[300], cmd[400];
    size_t np, n, i;
    float *params, lo[2 * 12 + 1], hi[2 * 12 + 1];
    uint8_t *b;
    int k, j;
    snprintf(dir, sizeof dir, "/tmp/et_prune_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    c.vocab = 19; c.context = 8; c.layers = 2; c.heads = 2; c.channels = 16;
    et_gpt_config_check(&c);
    np = et_gpt_tensors(&c, t);
    for (i = 0; i < 2 * 12 + 1; i++) { lo[i] = -3.0f - (float)i; hi[i] = 2.0f + (float)i; }
    for (k = 0; k < 4; k++) {
        et_cmodel m, back;
        et_sparse_model f, g;
        params = randn(np, 8 + k);
        ck_assert_int_eq(et_cmodel_init(&m, &c, params, &e), ET_OK);
        if (k >= 2) { /* low-rank then 2:4: the factors pruned too */
            ck_assert_int_eq(et_lowrank_spec_parse("rank=8", &lr, &e), ET_OK);
            ck_assert_int_eq(et_cmodel_lowrank(&m, &lr, NULL, 4, &e), ET_OK);
        }
        ck_assert_int_eq(et_prune_spec_parse(k % 2 ? "2:4" : "0.7", &p, &e), ET_OK);
        ck_assert_int_eq(et_cmodel_prune(&m, &p, p.sparsity, &e), ET_OK);
        for (j = 0; j < 2; j++) {
            et_cgpt_mode mode = j ? ET_CGPT_W8A8 : ET_CGPT_F32;
            ck_assert_int_eq(et_cmodel_pack(&m, mode, lo, hi, "tok", 3, &f, &e), ET_OK);
            snprintf(path, sizeof path, "%s/m%d%d.etsp", dir, k, j);
            ck_assert_int_eq(et_sparse_save(path, &f, &e), ET_OK);
            ck_assert_int_eq(et_sparse_probe(path), 1);
            ck_assert_int_eq(et_sparse_load(path, &g, &e), ET_OK);
            ck_assert_int_eq(g.mode, mode);
            ck_assert_uint_eq(g.blob_bytes, f.blob_bytes);
            ck_assert(memcmp(g.blob, f.blob, f.blob_bytes) == 0);
            ck_assert(memcmp(g.spec, f.spec, sizeof *f.spec * 8) == 0);
            ck_assert_uint_eq(g.tokenizer_bytes, 3);
            ck_assert_uint_eq(g.src_nparams, np);
            b = et_test_slurp(path, &n);
            ck_assert_uint_eq(n, et_sparse_file_bytes(&f));
            ck_assert(n < np * sizeof(float)); /* smaller than the dense weights */
            /* the working model back from an fp32 file: same parameters, masks and factors */
            if (!j) {
                ck_assert_int_eq(et_cmodel_from_sparse(&back, &g, &e), ET_OK);
                ck_assert(memcmp(back.params, m.params, sizeof(float) * np) == 0);
                ck_assert_int_eq(back.prune.kind, p.kind);
                ck_assert_int_eq(back.lin[2].rank, m.lin[2].rank);
                if (m.lin[2].rank)
                    ck_assert(memcmp(back.lin[2].A, m.lin[2].A, sizeof(float) * m.lin[2].OC * m.lin[2].rank) == 0);
                et_cmodel_free(&back);
            } else {
                ck_assert_int_eq(et_cmodel_from_sparse(&back, &g, &e), ET_ERR_INVALID);
                ck_assert(strstr(e.msg, "already quantized") != NULL);
            }
            et_sparse_free(&g);
            /* corruption anywhere is caught; a cut file too; an old version with a message */
            b[n / 2] ^= 1;
            write_file(path, b, n);
            ck_assert_int_eq(et_sparse_load(path, &g, &e), ET_ERR_CRC);
            ck_assert_ptr_null(g.blob);
            b[n / 2] ^= 1;
            write_file(path, b, n - 10);
            ck_assert_int_eq(et_sparse_load(path, &g, &e), ET_ERR_TRUNCATED);
            write_file(path, b, 100);
            ck_assert_int_eq(et_sparse_load(path, &g, &e), ET_ERR_TRUNCATED);
            b[30] ^= 4; /* the header's own checksum */
            write_file(path, b, n);
            ck_assert_int_eq(et_sparse_load(path, &g, &e), ET_ERR_CRC);
            b[30] ^= 4;
            b[8] = 1;
            write_file(path, b, n);
            ck_assert_int_eq(et_sparse_load(path, &g, &e), ET_ERR_UNSUPPORTED);
            ck_assert(strstr(e.msg, "version 1") != NULL);
            b[8] = 2;
            free(b);
            et_sparse_free(&f);
        }
        et_cmodel_free(&m);
        free(params);
    }
    /* storage that passes the checksums but not the model's checks: a bitmap that no
     * longer holds its count, CRCs recomputed, is refused when the model is built */
    {
        et_cmodel m;
        et_sparse_model f, g;
        et_cruntime rt;
        et_clin d;
        size_t hdr_end;
        uint32_t crc;
        params = randn(np, 20);
        ck_assert_int_eq(et_cmodel_init(&m, &c, params, &e), ET_OK);
        ck_assert_int_eq(et_prune_spec_parse("0.5", &p, &e), ET_OK);
        ck_assert_int_eq(et_cmodel_prune(&m, &p, 0.5f, &e), ET_OK);
        ck_assert_int_eq(et_cmodel_pack(&m, ET_CGPT_F32, NULL, NULL, NULL, 0, &f, &e), ET_OK);
        snprintf(path, sizeof path, "%s/bad.etsp", dir);
        ck_assert_int_eq(et_sparse_save(path, &f, &e), ET_OK);
        b = et_test_slurp(path, &n);
        hdr_end = (128 + 8 * 32 + 63) / 64 * 64;
        /* where the first linear's bitmap sits in the blob */
        ck_assert_int_eq(et_cruntime_open(&rt, &f, 1, 8, 1, &e), ET_OK);
        d = rt.model.lin[0];
        b[hdr_end + (size_t)((const uint8_t *)d.w.sp.index - (const uint8_t *)f.blob)] ^= 1;
        et_cruntime_close(&rt);
        crc = et_crc32(b, n - 4);
        memcpy(b + n - 4, &crc, 4);
        write_file(path, b, n);
        ck_assert_int_eq(et_sparse_load(path, &g, &e), ET_OK);
        ck_assert_int_eq(et_cruntime_open(&rt, &g, 1, 8, 1, &e), ET_ERR_FORMAT);
        ck_assert_msg(strstr(e.msg, "corrupt") != NULL, "%s", e.msg);
        et_sparse_free(&g);
        et_sparse_free(&f);
        et_cmodel_free(&m);
        free(b);
        free(params);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(cli_prune)
{
    char out[8192], path[300], txt[300];
    uint8_t *b0, *b1;
    size_t n0, n1;
    struct stat st;
    float fp, pr;
    FILE *f;
    int i;
    snprintf(dir, sizeof dir, "/tmp/et_prune_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(txt, sizeof txt, "%s/text.txt", dir);
    f = fopen(txt, "w");
    for (i = 0; i < 300; i++) fputs((i % 3) ? "The slings and arrows of outrageous fortune,\n" : "To be, or not to be\n", f);
    fclose(f);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s prepare --input %s --tokenizer char --dedup-min-len 0 --out %s/data",
                         et_test_cli(), txt, dir), 0);
    ck_assert_msg(et_test_run(out, sizeof out, "%s train --data %s/data/train.bin --layers 2 --heads 2 --channels 32 "
                      "--context 16 -b 4 -t 16 --steps 30 --warmup 5 --lr 3e-3 --eval-every 0 --threads 1 -q "
                      "--out %s/run", et_test_cli(), dir, dir) == 0, "train: %s", out);
    snprintf(path, sizeof path, "%s/run/model.etck", dir);
    b0 = et_test_slurp(path, &n0);
    ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune 2:4 --finetune-steps 5 "
                      "--finetune-batch 2 -b 4 -t 16 --threads 1 --out %s/p.etsp", et_test_cli(), path, dir, dir) == 0,
                  "compress --prune: %s", out);
    ck_assert_msg(strstr(out, "pruned 2:4 + 5 ft") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s --data %s/data/val.bin -b 4 -t 16 --batches 4", et_test_cli(),
                         path, dir), 0);
    ck_assert_int_eq(sscanf(out, "loss %f", &fp), 1);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s/p.etsp --data %s/data/val.bin -b 4 -t 16 --batches 4",
                         et_test_cli(), dir, dir), 0);
    ck_assert_int_eq(sscanf(out, "loss %f", &pr), 1);
    ck_assert(pr > 0 && pr < 2.0f * fp);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sample --model %s/p.etsp --length 10 --prompt To", et_test_cli(), dir), 0);
    ck_assert(strncmp(out, "To", 2) == 0);
    /* quantize the pruned file */
    ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s/p.etsp --data %s/data/val.bin --quant w8a8 "
                      "--calib-batches 2 -b 4 -t 16 --out %s/pq.etq -q", et_test_cli(), dir, dir, dir) == 0, "%s", out);
    /* prune + quantize in one go: a compact W8A8 file (N:M int8 values + positions) */
    ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune 2:4 --quant w8a8 "
                      "--calib-batches 2 -b 4 -t 16 --out %s/pq2.etq -q", et_test_cli(), path, dir, dir) == 0, "%s", out);
    snprintf(txt, sizeof txt, "%s/pq2.etq.report.md", dir);
    free(et_test_slurp(txt, &n1));
    snprintf(txt, sizeof txt, "%s/pq2.etq", dir);
    ck_assert_int_eq(et_sparse_probe(txt), 1);
    {
        /* smaller than the same model quantized dense */
        size_t nq, nd;
        ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --quant w8a8 "
                          "--calib-batches 2 -b 4 -t 16 --out %s/q.etq -q", et_test_cli(), path, dir, dir) == 0, "%s", out);
        free(et_test_slurp(txt, &nq));
        snprintf(txt, sizeof txt, "%s/q.etq", dir);
        free(et_test_slurp(txt, &nd));
        ck_assert_msg(nq < nd, "compact int8 %zu bytes, dense int8 %zu", nq, nd);
    }
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s/pq2.etq --data %s/data/val.bin -b 4 -t 16 --batches 4",
                         et_test_cli(), dir, dir), 0);
    ck_assert_int_eq(sscanf(out, "loss %f", &pr), 1);
    ck_assert(pr > 0 && pr < 2.0f * fp);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sample --model %s/pq2.etq --length 10 --prompt To", et_test_cli(), dir), 0);
    ck_assert(strncmp(out, "To", 2) == 0);
    /* every pass at once, in the documented order, one report row each */
    ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --lowrank params=0.5 "
                      "--prune 2:4 --finetune-steps 4 --finetune-batch 2 --quant w8a8 --calib-batches 2 -b 4 -t 16 "
                      "--out %s/all.etsp", et_test_cli(), path, dir, dir) == 0, "%s", out);
    ck_assert_msg(strstr(out, "low-rank MLP params=0.5 + pruned 2:4 + 4 ft + int8 w8a8: val loss") != NULL, "%s", out);
    ck_assert(strstr(out, "low-rank MLP params=0.5 + pruned 2:4: val loss") != NULL);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s/all.etsp --data %s/data/val.bin -b 4 -t 16 --batches 4",
                         et_test_cli(), dir, dir), 0);
    ck_assert_int_eq(sscanf(out, "loss %f", &pr), 1);
    ck_assert(pr > 0 && pr < 3.0f * fp);
    /* the compact path is fp32 or w8a8 */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune 2:4 --quant w8a32 "
                         "-b 4 -t 16 --out %s/x", et_test_cli(), path, dir, dir), 1);
    ck_assert_msg(strstr(out, "w8a32 does not combine") != NULL, "%s", out);
    /* bad requests: nothing written, the input unchanged */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune 1.5 --out %s/x", et_test_cli(),
                         path, dir, dir), 2);
    ck_assert_msg(strstr(out, "between 0 and 1") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune 4:4 --out %s/x", et_test_cli(),
                         path, dir, dir), 2);
    ck_assert_msg(strstr(out, "N < M") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune 2:3 -t 16 --out %s/x",
                         et_test_cli(), path, dir, dir), 1);
    ck_assert_msg(strstr(out, "not a multiple of 3") != NULL, "%s", out);
    snprintf(txt, sizeof txt, "%s/x", dir);
    ck_assert_int_ne(stat(txt, &st), 0);
    b1 = et_test_slurp(path, &n1);
    ck_assert(n0 == n1 && memcmp(b0, b1, n0) == 0);
    free(b0);
    free(b1);
    snprintf(txt, sizeof txt, "rm -rf %s", dir);
    ck_assert_int_eq(system(txt), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("prune");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, magnitude_exact);
    tcase_add_test(t, nm_groups);
    tcase_add_test(t, compact_roundtrip_and_matmul);
    tcase_add_test(t, masks_hold_while_finetuning);
    tcase_add_test(t, sparse_file_roundtrip);
    suite_add_tcase(s, t);
    t = tcase_create("cli");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, cli_prune);
    suite_add_tcase(s, t);
    return s;
}

ET_CHECK_MAIN(suite)
