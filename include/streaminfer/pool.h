/* A persistent pool of compute threads: n - 1 workers plus the thread that calls.
 *
 * si_pool_run hands one job to every thread and returns when all of them are done;
 * the caller's thread takes part as thread 0, so with n = 1 there is no worker and no
 * synchronisation at all (the one-core K230). Idle workers sleep on a condition
 * variable: nothing spins. Workers only compute: reads, the scheduler and everything
 * else stay on the calling thread, which may do them between its own pieces of a job
 * (si_llama's matrix products poll the scheduler that way).
 *
 * A job divides its work from (thread, n_threads) alone or through an atomic counter;
 * results that must not depend on n come from computing every piece the same way
 * whichever thread takes it. Not for use from two threads at once. */
#ifndef STREAMINFER_POOL_H
#define STREAMINFER_POOL_H

#include <stdint.h>

#include "streaminfer/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most threads a pool (and -t) accepts. */
#define SI_POOL_MAX_THREADS 256

typedef struct si_pool si_pool;

/* fn(ctx, thread, n_threads), thread in [0, n_threads); thread 0 is the caller. */
typedef void (*si_pool_fn)(void *ctx, uint32_t thread, uint32_t n_threads);

/* A pool of n_threads (1..SI_POOL_MAX_THREADS) threads: n_threads - 1 workers are
 * started. SI_EINVAL for a count out of range; SI_ENOMEM or SI_EIO (with the system's
 * reason) when memory or a thread cannot be had (the workers started are stopped). */
int si_pool_new(si_pool **out, uint32_t n_threads, si_error *err);
/* Stops and joins the workers; NULL is fine. */
void si_pool_free(si_pool *p);
uint32_t si_pool_threads(const si_pool *p);

/* fn on threads 0..n-1 (n = min(max_threads, the pool's), 0 meaning the pool's), the
 * caller being thread 0; returns when every one has returned. With n = 1 this is a
 * plain call. */
void si_pool_run(si_pool *p, uint32_t max_threads, si_pool_fn fn, void *ctx);

/* The part [*lo, *hi) of n items thread t of n_threads takes in an even split. */
void si_pool_split(uint64_t n, uint32_t t, uint32_t n_threads, uint64_t *lo, uint64_t *hi);

/* The default thread count: the online CPUs of this process's affinity set
 * (sched_getaffinity), at least 1 and at most SI_POOL_MAX_THREADS. */
uint32_t si_pool_default_threads(void);

#ifdef __cplusplus
}
#endif
#endif
