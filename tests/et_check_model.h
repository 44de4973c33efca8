/* et_check_model.h - a GPT on the cpu backend in an arena of exactly its plan, for the
 * suites that need a whole model (fields: be, cx, mem, a, m; free mem when done). */
#ifndef ET_CHECK_MODEL_H
#define ET_CHECK_MODEL_H

#include "et_check.h"
#include "et_cpu.h"
#include "et_gpt.h"

typedef struct {
    et_backend be;
    et_cpu_ctx cx;
    void *mem;
    et_arena a;
    et_gpt m;
} et_test_model;

/* creates @p r->m (serial cpu backend); weights are left to the caller */
static void et_test_model_make(et_test_model *r, et_gpt_config c, int B, int T, et_gpt_mode mode)
{
    et_gpt_plan p;
    ck_assert_int_eq(et_cpu_backend_init(&r->be, &r->cx, NULL), ET_OK);
    ck_assert_int_eq(et_gpt_plan_compute(&c, B, T, mode, &r->be, &p), ET_OK);
    r->mem = et_test_aligned(p.total);
    ck_assert_int_eq(et_arena_init(&r->a, r->mem, p.total), ET_OK);
    ck_assert_int_eq(et_gpt_create(&r->m, &c, B, T, mode, &r->be, &r->a), ET_OK);
}

#endif /* ET_CHECK_MODEL_H */
