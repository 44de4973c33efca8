/* et_pool.h - the host's thread pool, which fills the core's et_threads hook.
 *
 * A pool of n threads is the calling thread (worker 0) plus n-1 pthreads (workers
 * 1..n-1). A parallel_for publishes one job; every worker, the caller included, takes
 * task indices from a shared atomic counter until none are left, and the call returns
 * once every task has finished. Idle workers spin for a short while (ET_POOL_SPIN_US)
 * before they sleep on a condition variable, so back-to-back small ops cost about a
 * microsecond rather than a wake-up; the caller never waits for a sleeping worker to
 * wake, only for the tasks. Which worker runs which task varies from call to call, but
 * the core gives each task its own outputs and scratch slot (the worker id), so
 * results do not depend on it.
 */
#ifndef ET_POOL_H
#define ET_POOL_H

#include "et_status.h"
#include "et_threads.h"

/** Microseconds an idle worker spins, watching for the next job, before it sleeps. */
#ifndef ET_POOL_SPIN_US
#define ET_POOL_SPIN_US 200
#endif

/** Most threads a pool may have. */
#define ET_POOL_MAX_THREADS 1024

/** An opaque thread pool; all of its state lives in the handle. */
typedef struct et_pool et_pool;

/**
 * Starts a pool of @p nthreads workers: the caller of parallel_for plus nthreads-1
 * threads started here. With nthreads == 1 no thread is started and every
 * parallel_for runs inline.
 * @param[in]  nthreads  workers, in [1, ET_POOL_MAX_THREADS]
 * @param[out] out       the new pool (NULL on failure)
 * @return ET_OK; ET_ERR_INVALID for a bad argument; ET_ERR_NOMEM when memory or a
 *         thread could not be had (threads already started are stopped again)
 */
et_status et_pool_create(int nthreads, et_pool **out);

/** Stops and joins every thread and frees the pool. NULL is a no-op. Must not be
 *  called while a parallel_for on the pool is running. */
void et_pool_destroy(et_pool *pool);

/**
 * Fills the core's hook: pool, nworkers (the pool's thread count) and parallel_for.
 * Only one thread at a time may call the hook's parallel_for on a pool, and a task may
 * not call it on its own pool (worker ids would then be shared).
 * @param[in]  pool  a pool from et_pool_create()
 * @param[out] out   the hook to fill
 */
void et_pool_threads(et_pool *pool, et_threads *out);

/** Number of workers of @p pool (the caller included). */
int et_pool_size(const et_pool *pool);

#endif /* ET_POOL_H */
