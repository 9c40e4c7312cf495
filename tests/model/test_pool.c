/* The compute thread pool: every thread of a job runs it exactly once with its own id,
 * a job's writes are visible when si_pool_run returns, max_threads limits the threads
 * taking part, the even split covers every item once, counts out of range are refused,
 * and many short jobs in a row (what a pass does) neither lose nor repeat work. */
#include <stdatomic.h>
#include <stdint.h>

#include "streaminfer/pool.h"
#include "../test_util.h"

typedef struct job {
    uint32_t calls[SI_POOL_MAX_THREADS]; /* per thread id: written by that thread only */
    uint32_t n_seen[SI_POOL_MAX_THREADS];
    uint64_t *items; /* per item: times computed */
    uint64_t n_items;
    atomic_uint_fast64_t next;
} job;

static void count_calls(void *ctx, uint32_t t, uint32_t n)
{
    job *j = ctx;
    j->calls[t]++;
    j->n_seen[t] = n;
}

/* Even split, as the attention heads are taken. */
static void split_items(void *ctx, uint32_t t, uint32_t n)
{
    job *j = ctx;
    uint64_t lo, hi;
    si_pool_split(j->n_items, t, n, &lo, &hi);
    for (uint64_t i = lo; i < hi; i++)
        j->items[i] += i + 1;
}

/* A shared counter, as the matrix products' row blocks are taken. */
static void counter_items(void *ctx, uint32_t t, uint32_t n)
{
    (void)t, (void)n;
    job *j = ctx;
    for (uint64_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n_items;)
        j->items[i] += i + 1;
}

static void check_pool(uint32_t n_threads)
{
    si_pool *p;
    si_error err;
    CHECKF(si_pool_new(&p, n_threads, &err) == SI_OK, "%u threads: %s", n_threads, err.msg);
    CHECK_EQ_INT(si_pool_threads(p), n_threads);
    for (uint32_t max = 0; max <= n_threads + 1; max++) {
        job j = {0};
        si_pool_run(p, max, count_calls, &j);
        uint32_t expect = max == 0 || max > n_threads ? n_threads : max;
        for (uint32_t t = 0; t < SI_POOL_MAX_THREADS; t++) {
            CHECKF(j.calls[t] == (t < expect), "%u threads, max %u: thread %u ran %u times", n_threads, max, t,
                   j.calls[t]);
            CHECKF(t >= expect || j.n_seen[t] == expect, "thread %u was told %u threads, not %u", t, j.n_seen[t],
                   expect);
        }
    }
    /* Many short jobs in a row, both ways of dividing work; every item exactly once. */
    uint64_t n_items = 1000;
    uint64_t *items = calloc(n_items, sizeof *items);
    CHECK(items);
    uint32_t rounds = test_emulated() ? 50 : 400;
    for (uint32_t r = 0; r < rounds; r++) {
        job j = {.items = items, .n_items = r % 2 ? n_items : r % n_items};
        atomic_init(&j.next, 0);
        si_pool_run(p, 0, r % 3 ? counter_items : split_items, &j);
        for (uint64_t i = 0; i < n_items; i++) {
            CHECKF(items[i] == (i < j.n_items ? i + 1 : 0), "%u threads, round %u: item %llu holds %llu",
                   n_threads, r, (unsigned long long)i, (unsigned long long)items[i]);
            items[i] = 0;
        }
    }
    free(items);
    si_pool_free(p);
}

int main(void)
{
    for (uint32_t n = 1; n <= 5; n++)
        check_pool(n);
    check_pool(16);

    /* The even split: contiguous, covering, in order. */
    for (uint64_t n = 0; n < 70; n++)
        for (uint32_t k = 1; k <= 9; k++) {
            uint64_t prev = 0;
            for (uint32_t t = 0; t < k; t++) {
                uint64_t lo, hi;
                si_pool_split(n, t, k, &lo, &hi);
                CHECKF(lo == prev && hi >= lo && hi - lo <= n / k + 1, "split of %llu in %u: part %u [%llu, %llu)",
                       (unsigned long long)n, k, t, (unsigned long long)lo, (unsigned long long)hi);
                prev = hi;
            }
            CHECK(prev == n);
        }

    si_pool *p = (si_pool *)1;
    si_error err;
    CHECK(si_pool_new(&p, 0, &err) == SI_EINVAL && p == NULL);
    CHECK(strstr(err.msg, "between 1 and 256") != NULL);
    CHECK(si_pool_new(&p, SI_POOL_MAX_THREADS + 1, &err) == SI_EINVAL && p == NULL);
    si_pool_free(NULL);
    uint32_t d = si_pool_default_threads();
    CHECKF(d >= 1 && d <= SI_POOL_MAX_THREADS, "default %u", d);
    printf("ok (default %u threads)\n", d);
    return 0;
}
