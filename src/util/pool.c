/* The compute thread pool (streaminfer/pool.h): workers sleep on one condition
 * variable until the generation number moves, run the job, and the last one to finish
 * wakes the caller. Every hand-over goes through the mutex, so what a job wrote is
 * visible to the caller when si_pool_run returns. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "streaminfer/pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct worker {
    si_pool *pool;
    uint32_t id; /* 1..n-1 */
    pthread_t th;
} worker;

struct si_pool {
    uint32_t n;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    uint64_t gen;     /* bumped for every job (and to stop) */
    bool stop;
    si_pool_fn fn;    /* the current job */
    void *ctx;
    uint32_t n_active; /* threads taking part in it, the caller included */
    uint32_t pending;  /* workers of the job not finished yet */
    uint32_t started;  /* workers running */
    worker *w;         /* [n - 1] */
};

static void *worker_main(void *arg)
{
    worker *w = arg;
    si_pool *p = w->pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->stop)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        if (w->id >= p->n_active)
            continue;
        si_pool_fn fn = p->fn;
        void *ctx = p->ctx;
        uint32_t n = p->n_active;
        pthread_mutex_unlock(&p->mu);
        fn(ctx, w->id, n);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int si_pool_new(si_pool **out, uint32_t n_threads, si_error *err)
{
    *out = NULL;
    SI_CHECK(n_threads < 1 || n_threads > SI_POOL_MAX_THREADS, err, SI_EINVAL,
             "%u compute threads: the count must be between 1 and %d", n_threads, SI_POOL_MAX_THREADS);
    si_pool *p = calloc(1, sizeof *p);
    SI_CHECK(!p, err, SI_ENOMEM, "out of memory for the thread pool");
    p->n = n_threads;
    if (n_threads == 1) { /* no worker, no lock: si_pool_run is a call */
        *out = p;
        return SI_OK;
    }
    p->w = calloc(n_threads - 1, sizeof *p->w);
    if (!p->w) {
        free(p);
        return si_errorf(err, SI_ENOMEM, "out of memory for the thread pool");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (uint32_t i = 0; i < n_threads - 1; i++) {
        p->w[i] = (worker){.pool = p, .id = i + 1};
        int e = pthread_create(&p->w[i].th, NULL, worker_main, &p->w[i]);
        if (e) {
            si_pool_free(p);
            return si_errorf(err, e == EAGAIN || e == ENOMEM ? SI_ENOMEM : SI_EIO,
                             "cannot start compute thread %u of %u: %s", i + 2, n_threads, strerror(e));
        }
        p->started++;
    }
    *out = p;
    return SI_OK;
}

void si_pool_free(si_pool *p)
{
    if (!p)
        return;
    if (p->n > 1) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (uint32_t i = 0; i < p->started; i++)
            pthread_join(p->w[i].th, NULL);
        pthread_cond_destroy(&p->wake);
        pthread_cond_destroy(&p->done);
        pthread_mutex_destroy(&p->mu);
    }
    free(p->w);
    free(p);
}

uint32_t si_pool_threads(const si_pool *p) { return p ? p->n : 1; }

void si_pool_run(si_pool *p, uint32_t max_threads, si_pool_fn fn, void *ctx)
{
    uint32_t n = p ? p->n : 1;
    if (max_threads && max_threads < n)
        n = max_threads;
    if (n <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_active = n;
    p->pending = n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, n);
    pthread_mutex_lock(&p->mu);
    while (p->pending)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void si_pool_split(uint64_t n, uint32_t t, uint32_t n_threads, uint64_t *lo, uint64_t *hi)
{
    *lo = n * t / n_threads;
    *hi = n * (t + 1) / n_threads;
}

uint32_t si_pool_default_threads(void)
{
    cpu_set_t set;
    int n = 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    return n < 1 ? 1 : n > SI_POOL_MAX_THREADS ? SI_POOL_MAX_THREADS : (uint32_t)n;
}
