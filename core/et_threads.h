/* et_threads.h - the hook through which the host lends the core its threads.
 *
 * The core has no threads of its own. A kernel splits its work into tasks, each output
 * element is written by exactly one task, and every element is computed in an order that
 * does not depend on the task layout (most kernels use fixed task boundaries; the GEMM
 * fixes the order along K), so results are bitwise identical for any worker count.
 * With no hook (or parallel_for == NULL) tasks run in order on the caller's thread.
 */
#ifndef ET_THREADS_H
#define ET_THREADS_H

/** One task: @p task in [0, ntasks), @p worker in [0, nworkers) names the worker's
 *  private scratch slot. */
typedef void (*et_task_fn)(void *arg, int task, int worker);

typedef struct et_threads {
    void *pool;   /**< host thread pool, opaque to the core */
    int nworkers; /**< workers that may run tasks at once (>= 1) */
    /** Runs fn(arg, i, w) for every i in [0, ntasks) and returns when all are done.
     *  Optional: NULL runs the tasks serially on the caller. */
    void (*parallel_for)(void *pool, int ntasks, et_task_fn fn, void *arg);
} et_threads;

/** Runs tasks through @p th, or serially when @p th or its hook is NULL. */
static inline void et_parallel_for(const et_threads *th, int ntasks, et_task_fn fn, void *arg)
{
    int i;
    if (ntasks <= 0) return;
    if (th && th->parallel_for && th->nworkers > 1 && ntasks > 1) {
        th->parallel_for(th->pool, ntasks, fn, arg);
        return;
    }
    for (i = 0; i < ntasks; i++) fn(arg, i, 0);
}

/** Workers a hook offers (1 when there is none). */
static inline int et_threads_workers(const et_threads *th)
{
    return (th && th->parallel_for && th->nworkers > 1) ? th->nworkers : 1;
}

#endif /* ET_THREADS_H */
