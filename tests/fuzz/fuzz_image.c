/* fuzz_image.c - libFuzzer target for et_image_open(): any bytes, copied into an
 * exactly-sized 64-byte aligned block, must be refused with a status or, if accepted,
 * every pointer the image hands out must be readable over its whole extent (ASan checks
 * both). Built by tests/fuzz/fuzz.mk; with -DET_FUZZ_SEEDS it is instead a small program
 * that writes valid seed images into the folder given as its argument. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_image.h"
static et_tensor_info tinfo[ET_GPT_NTENSORS];

static volatile uint32_t sink;

static void touch(const void *p, size_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    size_t i;
    uint32_t s = 0;
    for (i = 0; i < n; i++) s += b[i];
    sink += s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void *buf = NULL;
    et_image im;
    if (posix_memalign(&buf, 64, size ? size : 64) != 0) return 0;
    if (size) memcpy(buf, data, size);
    if (et_image_open(&im, buf, size) == ET_OK) {
        et_qtensor_info t[ET_QGPT_NTENSORS];
        size_t bb;
        int i;
        touch(im.tokenizer, im.tokenizer_bytes);
        et_qgpt_tensors(&im.cfg, im.mode, t, &bb);
        for (i = 0; i < ET_QGPT_NTENSORS; i++)
            touch((const uint8_t *)im.blob + t[i].offset, t[i].count * (t[i].dtype == ET_QDT_S8 ? 1 : 4));
        touch(im.w.lnfb, sizeof(float) * (size_t)im.cfg.channels);
    }
    free(buf);
    return 0;
}

#ifdef ET_FUZZ_SEEDS
/* seeds: tiny models of both modes, with and without a tokenizer */
int main(int argc, char **argv)
{
    static const int cfgs[][5] = {{8, 4, 1, 1, 4}, {65, 8, 2, 2, 8}};
    int k, m, tk;
    if (argc != 2) return 2;
    for (k = 0; k < 2; k++)
        for (m = 1; m <= 2; m++)
            for (tk = 0; tk < 2; tk++) {
                et_gpt_config c = {cfgs[k][0], 0, cfgs[k][1], cfgs[k][2], cfgs[k][3], cfgs[k][4], 0, 0};
                size_t np, bn, n, i;
                float *p, *lo, *hi;
                void *blob, *img;
                char path[512];
                FILE *fp;
                int ns;
                et_gpt_config_check(&c);
                np = et_gpt_tensors(&c, tinfo);
                p = malloc(np * sizeof *p);
                for (i = 0; i < np; i++) p[i] = (float)((int)(i * 2654435761u % 2001) - 1000) * 1e-4f;
                ns = et_qgpt_nsites(&c);
                lo = malloc(sizeof(float) * (size_t)ns); hi = malloc(sizeof(float) * (size_t)ns);
                for (i = 0; i < (size_t)ns; i++) { lo[i] = -2.0f; hi[i] = 2.0f; }
                et_qgpt_tensors(&c, (et_qmode)m, NULL, &bn);
                if (posix_memalign(&blob, 64, bn)) return 1;
                if (et_qgpt_quantize(&c, p, (et_qmode)m, lo, hi, blob, bn) != ET_OK) return 1;
                et_image_size(&c, (et_qmode)m, tk ? 40 : 0, &n);
                if (posix_memalign(&img, 64, n)) return 1;
                if (et_image_build(img, n, &c, (et_qmode)m, blob, bn, tk ? (const void *)"0123456789012345678901234567890123456789" : NULL,
                                   tk ? 40 : 0, &n) != ET_OK) return 1;
                snprintf(path, sizeof path, "%s/seed_v%d_m%d_t%d.etimg", argv[1], c.vocab, m, tk);
                if (!(fp = fopen(path, "wb")) || fwrite(img, 1, n, fp) != n) return 1;
                fclose(fp);
                printf("%s: %zu bytes\n", path, n);
                free(p); free(lo); free(hi); free(blob); free(img);
            }
    return 0;
}
#endif
