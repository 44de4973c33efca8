/* et_check.h - what every Check suite of edgetrain shares: a main() that runs one
 * suite and exits non-zero on any failure, and float comparison helpers. */
#ifndef ET_CHECK_H
#define ET_CHECK_H

#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Path of the project's test fixtures, relative to the repository root (make test runs there). */
#define ET_FIXTURES "tests/fixtures"

/* |a - b| <= atol + rtol * |b| */
#define ET_CK_CLOSE(a, b, rtol, atol)                                                   \
    do {                                                                                \
        double et__a = (double)(a), et__b = (double)(b);                                \
        ck_assert_msg(fabs(et__a - et__b) <= (atol) + (rtol) * fabs(et__b),             \
                      "%s = %.9g, expected %s = %.9g (rtol %g, atol %g)", #a, et__a, #b, \
                      et__b, (double)(rtol), (double)(atol));                          \
    } while (0)

/* 64-byte aligned heap block (arenas need ET_ALIGN); free() releases it. */
static inline void *et_test_aligned(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    return p;
}

/* The CLI binary the end-to-end tests drive: $ET_CLI (make test sets it, with an
 * emulator prefix for cross builds), else build/edgetrain. */
static inline const char *et_test_cli(void)
{
    const char *c = getenv("ET_CLI");
    return c ? c : "build/edgetrain";
}

/* A whole file in a malloc'd buffer (one spare byte), its length in *len. */
static inline uint8_t *et_test_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b;
    long n;
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    ck_assert_msg(n >= 0, "cannot size %s", path);
    b = (uint8_t *)malloc((size_t)n + 1);
    ck_assert(b != NULL);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Runs a shell command (printf-style) with stderr joined to stdout; keeps the first
 * cap-1 bytes of its output in out (which may be NULL). Returns the exit status, or -1
 * when the command died on a signal: a crash never passes for an error exit. */
static inline int et_test_run(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096], sink[4096];
    va_list ap;
    FILE *p;
    size_t n;
    int st;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    if (out && cap) {
        n = fread(out, 1, cap - 1, p);
        out[n] = 0;
    }
    while (fread(sink, 1, sizeof sink, p) > 0) {}
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define ET_CHECK_MAIN(make_suite)                                \
    int main(void)                                               \
    {                                                            \
        SRunner *sr = srunner_create(make_suite());              \
        int nf;                                                  \
        setvbuf(stdout, NULL, _IONBF, 0); /* no copies on fork */ \
        srunner_run_all(sr, CK_NORMAL);                          \
        nf = srunner_ntests_failed(sr);                          \
        srunner_free(sr);                                        \
        return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;            \
    }

/* A parallel_for that runs every task exactly once, serially, in a scrambled order
 * (a step coprime with the task count) with rotating worker ids: kernels must give
 * the same bits as with no threads at all. et_test_scrambled claims 3 workers. */
#include "et_threads.h"
static int et__gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}
static void et_test_scrambled_for(void *pool, int n, et_task_fn fn, void *arg)
{
    int i, step = 7;
    (void)pool;
    while (step > 1 && et__gcd(n, step) != 1) step--;
    for (i = 0; i < n; i++) fn(arg, (int)(((long)i * step + 3) % n), i % 3);
}
static const et_threads et_test_scrambled = {0, 3, et_test_scrambled_for};

#endif /* ET_CHECK_H */
