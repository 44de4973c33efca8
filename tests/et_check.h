/* et_check.h - what every Check suite of edgetrain shares: a main() that runs one
 * suite and exits non-zero on any failure, and float comparison helpers. */
#ifndef ET_CHECK_H
#define ET_CHECK_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif /* ET_CHECK_H */
