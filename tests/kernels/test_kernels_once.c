/* The kernel sets are built on first use, from whichever threads ask first: several
 * threads asking at once (released together by a barrier) must all get the same sets,
 * complete, and the same active set. Run under ThreadSanitizer by .ci/run (suite
 * 'threads'), where an unsynchronized first use is a reported race. */
#include <pthread.h>

#include "streaminfer/kernels.h"
#include "../test_util.h"

#define N_THREADS 4

static const char *const names[] = {"c", "avx2", "rvv", "neon"};
static pthread_barrier_t start;

struct seen {
    const si_kernels *active, *by_name[4];
};

static void *ask(void *arg)
{
    struct seen *s = arg;
    pthread_barrier_wait(&start);
    s->active = si_kernels_active();
    for (int i = 0; i < 4; i++)
        s->by_name[i] = si_kernels_get(names[i]);
    return NULL;
}

int main(void)
{
    pthread_t th[N_THREADS];
    struct seen seen[N_THREADS];
    CHECK(pthread_barrier_init(&start, NULL, N_THREADS) == 0);
    for (int t = 0; t < N_THREADS; t++)
        CHECK(pthread_create(&th[t], NULL, ask, &seen[t]) == 0);
    for (int t = 0; t < N_THREADS; t++)
        CHECK(pthread_join(th[t], NULL) == 0);
    pthread_barrier_destroy(&start);

    const si_kernels *ref = si_kernels_ref();
    CHECK(seen[0].active != NULL);
    CHECK(seen[0].by_name[0] == ref);
    for (int t = 0; t < N_THREADS; t++) {
        CHECKF(seen[t].active == seen[0].active, "thread %d got active set %s, thread 0 %s", t, seen[t].active->name,
               seen[0].active->name);
        for (int i = 0; i < 4; i++)
            CHECKF(seen[t].by_name[i] == seen[0].by_name[i], "thread %d got another '%s' set", t, names[i]);
    }
    /* every set this build and CPU have is complete, and auto chose the best of them */
    int simd = 0;
    for (int i = 0; i < 4; i++) {
        const si_kernels *k = seen[0].by_name[i];
        if (!k)
            continue;
        simd += i > 0;
        CHECKF(strcmp(k->name, names[i]) == 0, "set '%s' is named '%s'", names[i], k->name);
        CHECK(k->rmsnorm && k->silu_mul && k->rope && k->attend && k->kv_widen);
        for (uint32_t ty = 0; ty < SI_TYPE_COUNT; ty++) {
            CHECKF((k->mat_dot[ty] != NULL) == (ref->mat_dot[ty] != NULL), "set '%s': mat_dot of type %u", k->name, ty);
            CHECKF((k->quantize[ty] != NULL) == (ref->quantize[ty] != NULL), "set '%s': quantize of type %u", k->name,
                   ty);
        }
        if (i > 0)
            CHECKF(seen[0].active == k, "auto chose '%s' although '%s' is available", seen[0].active->name, k->name);
    }
    if (!simd)
        CHECK(seen[0].active == ref);
    printf("%d threads at once: active set '%s', %d SIMD set(s) available, all the same in every thread\n", N_THREADS,
           seen[0].active->name, simd);
    return 0;
}
