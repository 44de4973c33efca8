/* check_distill.c - the distillation loss: its logits gradient against central finite
 * differences for several (alpha, tau), alpha = 0 being cross-entropy exactly, a
 * student equal to its teacher having no soft loss, bad arguments; and `edgetrain
 * distill` end to end on a tiny teacher trained by the CLI (the CLI from $ET_CLI). */
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "et_check.h"
#include "et_distill.h"
#include "et_rng.h"

#define N 3
#define V 11
#define VP 16

START_TEST(gradient_finite_differences)
{
    static const float cases[][2] = {{0.0f, 1.0f}, {0.5f, 2.0f}, {1.0f, 4.0f}, {0.3f, 0.7f}};
    float s[N * VP], t[N * VP], g[N * VP];
    int y[N] = {3, 0, 10}, c, i;
    et_rng r;
    et_rng_seed(&r, 21);
    for (i = 0; i < N * VP; i++) {
        s[i] = 2.0f * et_rng_normal(&r);
        t[i] = 2.0f * et_rng_normal(&r);
    }
    for (c = 0; c < 4; c++) {
        float a = cases[c][0], tau = cases[c][1], l0;
        memset(g, 0, sizeof g);
        ck_assert_int_eq(et_distill_loss(s, t, y, N, V, VP, a, tau, 1.0f, g, &l0), ET_OK);
        for (i = 0; i < N * VP; i++) {
            float keep = s[i], lp, lm, h = 1e-2f;
            double fd;
            if (i % VP >= V) { ck_assert(g[i] == 0.0f); continue; } /* padded columns: no gradient */
            s[i] = keep + h;
            et_distill_loss(s, t, y, N, V, VP, a, tau, 1.0f, NULL, &lp);
            s[i] = keep - h;
            et_distill_loss(s, t, y, N, V, VP, a, tau, 1.0f, NULL, &lm);
            s[i] = keep;
            fd = ((double)lp - lm) / (2.0 * h);
            ck_assert_msg(fabs(fd - g[i]) < 2e-3 + 2e-2 * fabs(fd), "alpha %g tau %g: d/ds[%d] = %g, fd %g", a, tau,
                          i, g[i], fd);
        }
    }
}
END_TEST

START_TEST(special_cases)
{
    float s[N * VP], t[N * VP], g[N * VP], l;
    int y[N] = {1, 2, 3}, i, n;
    double ce = 0;
    et_rng r;
    et_rng_seed(&r, 22);
    for (i = 0; i < N * VP; i++) s[i] = t[i] = et_rng_normal(&r);
    /* alpha 0: the mean cross-entropy */
    ck_assert_int_eq(et_distill_loss(s, t, y, N, V, VP, 0.0f, 3.0f, 1.0f, NULL, &l), ET_OK);
    for (n = 0; n < N; n++) {
        double mx = -1e30, sum = 0;
        for (i = 0; i < V; i++) mx = fmax(mx, s[n * VP + i]);
        for (i = 0; i < V; i++) sum += exp(s[n * VP + i] - mx);
        ce += -(s[n * VP + y[n]] - mx - log(sum));
    }
    ck_assert(fabs(l - ce / N) < 1e-5);
    /* alpha 1 and the student equal to the teacher: no loss, no gradient */
    memset(g, 0, sizeof g);
    ck_assert_int_eq(et_distill_loss(s, t, y, N, V, VP, 1.0f, 2.0f, 1.0f, g, &l), ET_OK);
    ck_assert(fabs(l) < 1e-6);
    for (i = 0; i < N * VP; i++) ck_assert(fabsf(g[i]) < 1e-6f);
    /* bad arguments */
    ck_assert_int_eq(et_distill_loss(s, t, y, N, V, VP, 1.5f, 2.0f, 1.0f, g, &l), ET_ERR_INVALID);
    ck_assert_int_eq(et_distill_loss(s, t, y, N, V, VP, 0.5f, 0.0f, 1.0f, g, &l), ET_ERR_INVALID);
    ck_assert_int_eq(et_distill_loss(s, t, y, N, VP + 1, VP, 0.5f, 1.0f, 1.0f, g, &l), ET_ERR_INVALID);
    y[1] = V;
    ck_assert_int_eq(et_distill_loss(s, t, y, N, V, VP, 0.5f, 1.0f, 1.0f, g, &l), ET_ERR_RANGE);
}
END_TEST


START_TEST(cli_distill)
{
    const char *cli = et_test_cli();
    char dir[64], out[8192], path[300];
    struct stat st;
    float vl, tl;
    FILE *f;
    int i;
    snprintf(dir, sizeof dir, "/tmp/et_distill_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/text.txt", dir);
    f = fopen(path, "w");
    for (i = 0; i < 300; i++) fputs((i % 3) ? "The slings and arrows\n" : "To be, or not to be\n", f);
    fclose(f);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s prepare --input %s --tokenizer char --dedup-min-len 0 --out %s/data",
                         cli, path, dir), 0);
    ck_assert_msg(et_test_run(out, sizeof out, "%s train --data %s/data/train.bin --layers 2 --heads 2 --channels 32 "
                      "--context 16 -b 4 -t 16 --steps 20 --warmup 5 --lr 3e-3 --eval-every 0 --threads 1 -q "
                      "--out %s/teacher", cli, dir, dir) == 0, "train: %s", out);
    ck_assert_msg(et_test_run(out, sizeof out, "%s distill --teacher %s/teacher/model.etck --data %s/data/train.bin "
                      "--val-data %s/data/val.bin --layers 1 --heads 2 --channels 16 -b 4 -t 16 --steps 10 "
                      "--warmup 2 --lr 3e-3 --alpha 0.5 --tau 2 --eval-batches 2 -q --out %s/student", cli, dir, dir,
                      dir, dir) == 0, "distill: %s", out);
    ck_assert_msg(sscanf(strstr(out, "val loss"), "val loss %f (teacher %f)", &vl, &tl) == 2, "%s", out);
    ck_assert(vl > 0 && tl > 0);
    snprintf(path, sizeof path, "%s/student/model.etck", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sample --model %s --length 8 --prompt To", cli, path), 0);
    /* bad requests */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s distill --teacher %s/teacher/model.etck --data %s/data/train.bin "
                         "--alpha 1.5 --out %s/x", cli, dir, dir, dir), 2);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s distill --teacher %s/teacher/model.etck --data %s/data/train.bin "
                         "--heads 3 --channels 16 -t 16 --out %s/x", cli, dir, dir, dir), 1);
    ck_assert(strstr(out, "student config") != NULL);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    ck_assert_int_eq(system(path), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("distill");
    TCase *t = tcase_create("core");
    tcase_add_test(t, gradient_finite_differences);
    tcase_add_test(t, special_cases);
    suite_add_tcase(s, t);
    t = tcase_create("cli");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, cli_distill);
    suite_add_tcase(s, t);
    return s;
}

ET_CHECK_MAIN(suite)
