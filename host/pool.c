/* pool.c - the host's thread pool (et_pool.h).
 *
 * One job at a time. The job's parameters (fn, arg, ntasks) sit beside a 64-bit claim
 * word, generation << 32 | next task index. A worker claims task i by a compare-and-
 * swap of (gen, i) to (gen, i+1), so a worker that slept through a whole job, or read
 * the parameters while the caller was replacing them, can never claim a task of the
 * wrong job: its compare-and-swap names the old generation and fails. Between jobs the
 * caller sets the index to ET__CLOSED before it touches the parameters, which is what
 * makes "index < ntasks" a safe test even on parameters read mid-update. Finished
 * tasks are counted per worker and added to `done` once per job; the caller returns
 * when `done` reaches ntasks, so it waits for the tasks and never for a worker that is
 * still asleep (that one finds the job drained when it wakes).
 *
 * Waiting is spin-then-sleep on both sides: workers spin on the claim word for up to
 * ET_POOL_SPIN_US before sleeping on `wake`; the caller spins on `done` as long and
 * then sleeps on `finished`. Each sleeper announces itself in a counter that the
 * other side reads after its own store (both sequentially consistent, Dekker style),
 * so the mutex and condition variables are touched only when someone is asleep.
 *
 * Deliberately avoided: C11 <stdatomic.h> (the code is C99; GCC's __atomic builtins do
 * the same job), global or thread-local state, per-task atomics on the finish count,
 * work stealing and per-worker queues (one shared counter is enough for the few
 * threads of an edge device), and any printing or aborting.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "et_pool.h"

#ifndef ET_POOL_CALLOC
#define ET_POOL_CALLOC(n, s) calloc((n), (s))
#endif
#ifndef ET_POOL_FREE
#define ET_POOL_FREE(p) free(p)
#endif

#define ET__CLOSED 0xffffffffu /* claim index while no job is open */
#define ET__LINE 64            /* keeps the hot words on separate cache lines */

#if defined(__x86_64__) || defined(__i386__)
#define ET__PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define ET__PAUSE() __asm__ __volatile__("yield" ::: "memory")
#else
#define ET__PAUSE() ((void)0)
#endif

typedef struct et__worker {
    et_pool *pool;
    int id;
} et__worker;

struct et_pool {
    int n;                  /* workers, the caller included */
    int nstarted;           /* threads actually running */
    uint32_t gen;           /* caller-private: generation of the last job */
    pthread_t *threads;     /* n-1 */
    et__worker *workers;    /* n-1 */
    pthread_mutex_t mu;
    pthread_cond_t wake;     /* idle workers sleep here */
    pthread_cond_t finished; /* the caller sleeps here for the last tasks */
    char pad0[ET__LINE];
    /* the job: written only while the claim index is ET__CLOSED */
    et_task_fn fn;
    void *arg;
    int ntasks;
    char pad1[ET__LINE];
    uint64_t claim;
    char pad2[ET__LINE];
    int done;
    char pad3[ET__LINE];
    int sleepers;       /* workers asleep, or about to be, on wake */
    int caller_waiting; /* 1 while the caller is asleep, or about to be, on finished */
    int stop;
};

// --- spinning

static double et__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

/* Spins until done(p, arg) or ET_POOL_SPIN_US pass; the clock is read only every
 * 256 rounds, so a wait that ends quickly never reads it. Returns the last done(). */
static int et__spin(et_pool *p, const void *arg, int (*done)(et_pool *, const void *))
{
    double t0 = 0.0;
    unsigned spins;
    for (spins = 1;; spins++) {
        if (done(p, arg)) return 1;
        ET__PAUSE();
        if (spins & 255u) continue;
        if (spins == 256u)
            t0 = et__now_us();
        else if (et__now_us() - t0 > (double)ET_POOL_SPIN_US)
            return done(p, arg);
    }
}

static uint32_t et__claim_gen(et_pool *p, int order)
{
    return (uint32_t)(__atomic_load_n(&p->claim, order) >> 32);
}

// --- running tasks

/* Runs tasks of the open job as worker @p id until none are left; returns the
 * generation it last saw, so a worker knows which job it has finished with. */
static uint32_t et__work(et_pool *p, int id)
{
    uint64_t c = __atomic_load_n(&p->claim, __ATOMIC_ACQUIRE);
    int count = 0, ntasks = 0;
    for (;;) {
        uint32_t i = (uint32_t)c;
        et_task_fn fn;
        void *arg;
        ntasks = __atomic_load_n(&p->ntasks, __ATOMIC_RELAXED);
        if (i >= (uint32_t)ntasks) break; /* drained, or closed */
        fn = __atomic_load_n(&p->fn, __ATOMIC_RELAXED);
        arg = __atomic_load_n(&p->arg, __ATOMIC_RELAXED);
        /* acq_rel: a successful claim happens-before the caller's close, which comes
         * before any new parameters, so the ones read above were this job's. */
        if (!__atomic_compare_exchange_n(&p->claim, &c, c + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue; /* c now holds the current word */
        fn(arg, (int)i, id);
        count++;
        c++; /* a guess; a failed compare-and-swap corrects it */
    }
    /* The job cannot end before this add, so ntasks above is still this job's. */
    if (count && __atomic_add_fetch(&p->done, count, __ATOMIC_SEQ_CST) == ntasks &&
        __atomic_load_n(&p->caller_waiting, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->finished);
        pthread_mutex_unlock(&p->mu);
    }
    return (uint32_t)(c >> 32);
}

// --- workers

typedef struct et__seen {
    uint32_t gen;
} et__seen;

static int et__new_job_or_stop(et_pool *p, const void *arg)
{
    const et__seen *s = arg;
    return et__claim_gen(p, __ATOMIC_ACQUIRE) != s->gen || __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE);
}

/* Waits for a job newer than @p seen; returns 0 when the pool is stopping. */
static int et__worker_wait(et_pool *p, uint32_t seen)
{
    et__seen s;
    s.gen = seen;
    if (!et__spin(p, &s, et__new_job_or_stop)) {
        pthread_mutex_lock(&p->mu);
        __atomic_add_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
        while (et__claim_gen(p, __ATOMIC_SEQ_CST) == seen && !__atomic_load_n(&p->stop, __ATOMIC_SEQ_CST))
            pthread_cond_wait(&p->wake, &p->mu);
        __atomic_sub_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&p->mu);
    }
    return !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE);
}

static void *et__worker_main(void *arg)
{
    et__worker *w = arg;
    et_pool *p = w->pool;
    uint32_t seen = 0; /* the pool starts closed at generation 0 */
    while (et__worker_wait(p, seen)) seen = et__work(p, w->id);
    return NULL;
}

// --- the caller

static int et__all_done(et_pool *p, const void *arg)
{
    return __atomic_load_n(&p->done, __ATOMIC_ACQUIRE) == *(const int *)arg;
}

static void et__pool_parallel_for(void *pool, int ntasks, et_task_fn fn, void *arg)
{
    et_pool *p = pool;
    uint32_t gen;
    int i;
    if (ntasks <= 0) return;
    if (p->n == 1 || ntasks == 1) {
        for (i = 0; i < ntasks; i++) fn(arg, i, 0);
        return;
    }
    gen = ++p->gen;
    __atomic_store_n(&p->fn, fn, __ATOMIC_RELAXED);
    __atomic_store_n(&p->arg, arg, __ATOMIC_RELAXED);
    __atomic_store_n(&p->ntasks, ntasks, __ATOMIC_RELAXED);
    __atomic_store_n(&p->done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->claim, (uint64_t)gen << 32, __ATOMIC_SEQ_CST); /* open */
    if (__atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    et__work(p, 0);
    if (!et__spin(p, &ntasks, et__all_done)) {
        pthread_mutex_lock(&p->mu);
        __atomic_store_n(&p->caller_waiting, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&p->done, __ATOMIC_SEQ_CST) != ntasks) pthread_cond_wait(&p->finished, &p->mu);
        __atomic_store_n(&p->caller_waiting, 0, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&p->mu);
    }
    /* close: from here on no claim of this job can succeed */
    __atomic_exchange_n(&p->claim, ((uint64_t)gen << 32) | ET__CLOSED, __ATOMIC_ACQ_REL);
}

// --- public

et_status et_pool_create(int nthreads, et_pool **out)
{
    et_pool *p;
    int i;
    if (!out) return ET_ERR_INVALID;
    *out = NULL;
    if (nthreads < 1 || nthreads > ET_POOL_MAX_THREADS) return ET_ERR_INVALID;
    p = ET_POOL_CALLOC(1, sizeof *p);
    if (!p) return ET_ERR_NOMEM;
    p->n = nthreads;
    p->claim = ET__CLOSED; /* generation 0, closed */
    if (nthreads > 1) {
        p->threads = ET_POOL_CALLOC((size_t)nthreads - 1, sizeof *p->threads);
        p->workers = ET_POOL_CALLOC((size_t)nthreads - 1, sizeof *p->workers);
        if (!p->threads || !p->workers) {
            ET_POOL_FREE(p->threads);
            ET_POOL_FREE(p->workers);
            ET_POOL_FREE(p);
            return ET_ERR_NOMEM;
        }
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) goto fail_mu;
    if (pthread_cond_init(&p->wake, NULL) != 0) goto fail_wake;
    if (pthread_cond_init(&p->finished, NULL) != 0) goto fail_finished;
    for (i = 1; i < nthreads; i++) {
        p->workers[i - 1].pool = p;
        p->workers[i - 1].id = i;
        if (pthread_create(&p->threads[i - 1], NULL, et__worker_main, &p->workers[i - 1]) != 0) {
            et_pool_destroy(p); /* stops and joins the ones started */
            return ET_ERR_NOMEM;
        }
        p->nstarted++;
    }
    *out = p;
    return ET_OK;

fail_finished:
    pthread_cond_destroy(&p->wake);
fail_wake:
    pthread_mutex_destroy(&p->mu);
fail_mu:
    ET_POOL_FREE(p->threads);
    ET_POOL_FREE(p->workers);
    ET_POOL_FREE(p);
    return ET_ERR_NOMEM;
}

void et_pool_destroy(et_pool *pool)
{
    int i;
    if (!pool) return;
    __atomic_store_n(&pool->stop, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&pool->mu);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    for (i = 0; i < pool->nstarted; i++) pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->finished);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mu);
    ET_POOL_FREE(pool->threads);
    ET_POOL_FREE(pool->workers);
    ET_POOL_FREE(pool);
}

void et_pool_threads(et_pool *pool, et_threads *out)
{
    if (!out) return;
    out->pool = pool;
    out->nworkers = pool ? pool->n : 1;
    out->parallel_for = pool ? et__pool_parallel_for : NULL;
}

int et_pool_size(const et_pool *pool)
{
    return pool ? pool->n : 0;
}
