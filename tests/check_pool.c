/* check_pool.c - the host thread pool (host/et_pool.h).
 *
 * Every task runs exactly once, for every size 1..1000 and thread counts 1..8; worker
 * ids stay in range and are never held by two running tasks at once; sums reduced per
 * task are bitwise identical for every thread count; the sleep/wake paths of workers
 * and caller work; and the cost of an empty parallel_for is measured and printed.
 * Deliberately no tight timing asserts: the machine running the tests is shared, so
 * the overhead figures are printed and only checked against a generous bound.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "et_check.h"
#include "et_pool.h"

#define MAX_TASKS 1000
#define MAX_WORKERS 8

typedef struct job {
    int counts[MAX_TASKS];   /* runs of each task */
    int busy[MAX_WORKERS];   /* 1 while a task holds that worker id */
    int bad_id;              /* a worker id out of range */
    int shared_id;           /* a worker id seen held by two tasks at once */
    int nworkers;
    int spin;                /* busy work per task, so tasks overlap */
    float partial[MAX_TASKS];
    const float *data;
    int per_task;
} job;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static void sleep_us(long us)
{
    struct timespec ts;
    ts.tv_sec = us / 1000000;
    ts.tv_nsec = (us % 1000000) * 1000;
    nanosleep(&ts, NULL);
}

static void count_task(void *arg, int task, int worker)
{
    job *j = arg;
    volatile int sink = 0;
    int k;
    if (worker < 0 || worker >= j->nworkers) {
        __atomic_store_n(&j->bad_id, 1, __ATOMIC_RELAXED);
        return;
    }
    if (__atomic_exchange_n(&j->busy[worker], 1, __ATOMIC_ACQ_REL) != 0)
        __atomic_store_n(&j->shared_id, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&j->counts[task], 1, __ATOMIC_RELAXED);
    for (k = 0; k < j->spin; k++) sink += k;
    __atomic_store_n(&j->busy[worker], 0, __ATOMIC_RELEASE);
}

/* Index of the first task that did not run exactly once (-1: none). Plain loops, not
 * one ck_assert per task: in fork mode each assert is a write to Check's pipe. */
static int first_bad(const job *j, int ntasks)
{
    int i;
    for (i = 0; i < MAX_TASKS; i++)
        if (j->counts[i] != (i < ntasks)) return i;
    return -1;
}

static void check_counts(const job *j, int ntasks)
{
    int bad = first_bad(j, ntasks);
    if (j->bad_id) ck_abort_msg("worker id out of range");
    if (j->shared_id) ck_abort_msg("a worker id was used by two running tasks");
    if (bad >= 0) ck_abort_msg("%d tasks: task %d ran %d times", ntasks, bad, j->counts[bad]);
}

static et_pool *make_pool(int n, et_threads *th)
{
    et_pool *p = NULL;
    ck_assert_int_eq(et_pool_create(n, &p), ET_OK);
    ck_assert_ptr_nonnull(p);
    et_pool_threads(p, th);
    ck_assert_int_eq(th->nworkers, n);
    ck_assert_int_eq(et_pool_size(p), n);
    ck_assert_ptr_nonnull((void *)th->parallel_for);
    return p;
}

START_TEST(test_create_invalid)
{
    et_pool *p = (et_pool *)&p;
    et_threads th;
    ck_assert_int_eq(et_pool_create(0, &p), ET_ERR_INVALID);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(et_pool_create(-3, &p), ET_ERR_INVALID);
    ck_assert_int_eq(et_pool_create(ET_POOL_MAX_THREADS + 1, &p), ET_ERR_INVALID);
    ck_assert_int_eq(et_pool_create(2, NULL), ET_ERR_INVALID);
    et_pool_destroy(NULL);
    et_pool_threads(NULL, &th); /* no pool: the core runs serially */
    ck_assert_int_eq(et_threads_workers(&th), 1);
    ck_assert_int_eq(et_pool_size(NULL), 0);
    /* created and destroyed at once, before the threads may even have started */
    ck_assert_int_eq(et_pool_create(4, &p), ET_OK);
    et_pool_destroy(p);
}
END_TEST

static pthread_t caller;

static void inline_task(void *arg, int task, int worker)
{
    int *ok = arg;
    if (worker != 0 || !pthread_equal(pthread_self(), caller)) *ok = 0;
    ok[1 + task]++;
}

START_TEST(test_one_thread_inline)
{
    et_threads th;
    et_pool *p = make_pool(1, &th);
    int ok[1 + 50] = {1};
    int i;
    caller = pthread_self();
    th.parallel_for(th.pool, 50, inline_task, ok);
    et_parallel_for(&th, 50, inline_task, ok);
    ck_assert_int_eq(ok[0], 1);
    for (i = 0; i < 50; i++) ck_assert_int_eq(ok[1 + i], 2);
    th.parallel_for(th.pool, 0, inline_task, ok); /* nothing to do */
    th.parallel_for(th.pool, -1, inline_task, ok);
    et_pool_destroy(p);
}
END_TEST

/* Every size 1..1000 on 1..8 threads (more threads than this machine has cores too). */
START_TEST(test_every_task_once)
{
    static const int nthreads[] = {1, 2, 3, 4, 8};
    size_t t;
    for (t = 0; t < sizeof nthreads / sizeof nthreads[0]; t++) {
        et_threads th;
        et_pool *p = make_pool(nthreads[t], &th);
        static job j;
        int n;
        for (n = 1; n <= MAX_TASKS; n += (nthreads[t] <= 2 ? 1 : 7)) {
            memset(&j, 0, sizeof j);
            j.nworkers = th.nworkers;
            j.spin = (n % 5 == 0) ? 200 : 0;
            th.parallel_for(th.pool, n, count_task, &j);
            check_counts(&j, n);
        }
        et_pool_destroy(p);
    }
}
END_TEST

/* Many back-to-back small jobs: the generation handshake under pressure. */
START_TEST(test_many_small_calls)
{
    et_threads th;
    et_pool *p = make_pool(3, &th);
    static job j;
    int r, n = 0;
    for (r = 0; r < 20000; r++) {
        int i;
        n = 1 + r % 7;
        for (i = 0; i < 7; i++) j.counts[i] = 0;
        j.nworkers = th.nworkers;
        th.parallel_for(th.pool, n, count_task, &j);
        if (first_bad(&j, n) >= 0) check_counts(&j, n);
    }
    check_counts(&j, n);
    et_pool_destroy(p);
}
END_TEST

static void sum_task(void *arg, int task, int worker)
{
    job *j = arg;
    const float *x = j->data + (size_t)task * (size_t)j->per_task;
    float s = 0.0f;
    int i;
    (void)worker;
    for (i = 0; i < j->per_task; i++) s += x[i] * x[i];
    j->partial[task] = s;
}

static float reduce(job *j, int ntasks)
{
    float s = 0.0f;
    int i;
    for (i = 0; i < ntasks; i++) s += j->partial[i];
    return s;
}

START_TEST(test_deterministic_sums)
{
    enum { NT = 97, PER = 1031 };
    static float data[NT * PER];
    static job j;
    static const int nthreads[] = {1, 2, 3, 4, 8};
    float ref = 0.0f;
    size_t t;
    int i, r;
    uint32_t st = 12345;
    for (i = 0; i < NT * PER; i++) {
        st = st * 1664525u + 1013904223u;
        data[i] = (float)(st >> 8) / 16777216.0f - 0.5f;
    }
    j.data = data;
    j.per_task = PER;
    for (t = 0; t < sizeof nthreads / sizeof nthreads[0]; t++) {
        et_threads th;
        et_pool *p = make_pool(nthreads[t], &th);
        for (r = 0; r < 20; r++) {
            float s;
            memset(j.partial, 0, sizeof j.partial);
            et_parallel_for(&th, NT, sum_task, &j);
            s = reduce(&j, NT);
            if (t == 0 && r == 0) ref = s;
            ck_assert_msg(memcmp(&s, &ref, sizeof s) == 0, "%d threads, round %d: %.9g != %.9g",
                          nthreads[t], r, (double)s, (double)ref);
        }
        et_pool_destroy(p);
    }
}
END_TEST

static void slow_off_caller(void *arg, int task, int worker)
{
    job *j = arg;
    (void)task;
    if (worker != 0) sleep_us(3000); /* longer than ET_POOL_SPIN_US: the caller must sleep */
    __atomic_add_fetch(&j->counts[task], 1, __ATOMIC_RELAXED);
}

/* Workers that have gone to sleep wake for the next job; a caller whose last task runs
 * long on a worker sleeps and is woken; jobs after both still run every task once. */
START_TEST(test_sleep_and_wake)
{
    et_threads th;
    et_pool *p = make_pool(2, &th);
    static job j;
    int r, i;
    for (r = 0; r < 6; r++) {
        memset(&j, 0, sizeof j);
        j.nworkers = 2;
        sleep_us(ET_POOL_SPIN_US * 3 + 1000); /* the worker is asleep now */
        th.parallel_for(th.pool, 64, count_task, &j);
        check_counts(&j, 64);
        memset(&j, 0, sizeof j);
        th.parallel_for(th.pool, 4, slow_off_caller, &j);
        for (i = 0; i < 4; i++) ck_assert_int_eq(j.counts[i], 1);
    }
    et_pool_destroy(p);
}
END_TEST

static void empty_task(void *arg, int task, int worker)
{
    (void)arg, (void)task, (void)worker;
}

/* Mean microseconds per parallel_for of ntasks tasks of fn, best of 3 runs. */
static double time_calls(const et_threads *th, int ntasks, et_task_fn fn, void *arg, int calls)
{
    double best = 1e30;
    int rep, c;
    for (rep = 0; rep < 3; rep++) {
        double t0 = now_us(), dt;
        for (c = 0; c < calls; c++) et_parallel_for(th, ntasks, fn, arg);
        dt = (now_us() - t0) / calls;
        if (dt < best) best = dt;
    }
    return best;
}

START_TEST(test_overhead)
{
    enum { NT = 8, PER = 4096 };
    static float data[NT * PER];
    static job j;
    et_threads th1, th2;
    et_pool *p1 = make_pool(1, &th1), *p2 = make_pool(2, &th2);
    double e2, e8, t1[3], t2[3];
    static const int per[3] = {64, 512, 4096};
    int i;
    for (i = 0; i < NT * PER; i++) data[i] = (float)i * 1e-3f;
    j.data = data;
    time_calls(&th2, 2, empty_task, NULL, 1000); /* warm up */
    e2 = time_calls(&th2, 2, empty_task, NULL, 20000);
    e8 = time_calls(&th2, 8, empty_task, NULL, 20000);
    printf("check_pool: empty parallel_for on 2 threads: %.3f us (2 tasks), %.3f us (8 tasks)\n", e2, e8);
    /* small ops: 8 tasks of `per` multiply-adds each, on 1 and on 2 threads */
    for (i = 0; i < 3; i++) {
        j.per_task = per[i];
        t1[i] = time_calls(&th1, NT, sum_task, &j, 4000);
        t2[i] = time_calls(&th2, NT, sum_task, &j, 4000);
        printf("check_pool: 8 tasks x %4d madds: %7.3f us on 1 thread, %7.3f us on 2\n", per[i], t1[i], t2[i]);
    }
    /* generous: a shared, oversubscribed machine (or a sanitizer build) is slow */
    ck_assert_msg(e2 < 200.0, "empty parallel_for took %.1f us", e2);
    et_pool_destroy(p1);
    et_pool_destroy(p2);
}
END_TEST

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_create_invalid);
    tcase_add_test(tc, test_one_thread_inline);
    tcase_add_test(tc, test_every_task_once);
    tcase_add_test(tc, test_many_small_calls);
    tcase_add_test(tc, test_deterministic_sums);
    tcase_add_test(tc, test_sleep_and_wake);
    tcase_add_test(tc, test_overhead);
    suite_add_tcase(s, tc);
    return s;
}

ET_CHECK_MAIN(pool_suite)
