/* Allocation failure at each allocation of open and of a pass: the engine's calls to
 * malloc, calloc, realloc, posix_memalign and strdup are wrapped (-Wl,--wrap) so that
 * the N-th one from arming returns NULL; for every N up to the count of a clean open +
 * pass, open and pass must end in a clean error (SI_ENOMEM with a message), or succeed
 * with the clean run's logits when the failed allocation had a fallback. Under ASan/LSan
 * (the sanitizer build) nothing may leak. A micro model, as GGUF and as a pack.
 *
 * usage: test_alloc_fail MKMODEL REPACK */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "../test_util.h"
#include "streaminfer/llama.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
char *__real_strdup(const char *s);

static bool armed;
static uint64_t count, fail_at;

static bool fail_now(void)
{
    return armed && count++ == fail_at;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t k, size_t n)
{
    return fail_now() ? NULL : __real_calloc(k, n);
}
void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    return fail_now() ? ENOMEM : __real_posix_memalign(p, a, n);
}
char *__wrap_strdup(const char *s)
{
    return fail_now() ? NULL : __real_strdup(s);
}

static uint32_t n_vocab;

static int run(const char *path, float **logits, si_error *err)
{
    static const int32_t prompt[] = {1, 77, 150, 299};
    si_llama_opts lo = {.io = {.kind = SI_IO_PREAD, .direct = SI_DIRECT_OFF, .queue_depth = 2},
                        .mem_budget = 64u << 20, .n_ctx = 16, .chunk_bytes = 4096, .pin = SI_PIN_AUTO};
    si_llama *m = NULL;
    *logits = NULL;
    alarm(20);
    int rc = si_llama_open(&m, path, &lo, err);
    if (rc == SI_OK) {
        n_vocab = si_llama_hparams_of(m)->n_vocab;
        float *l = __real_malloc(sizeof(float) * n_vocab); /* the test's own: never fails */
        CHECK(l);
        rc = si_llama_eval(m, prompt, 4, true, l, err);
        if (rc == SI_OK)
            rc = si_llama_eval(m, prompt + 3, 1, false, l, err); /* a second pass */
        if (rc == SI_OK)
            *logits = l;
        else
            free(l);
        si_llama_close(m);
    }
    alarm(0);
    return rc;
}

static void sweep(const char *path)
{
    float *ref;
    si_error err;
    armed = true, count = 0, fail_at = UINT64_MAX;
    CHECKF(run(path, &ref, &err) == SI_OK, "%s: clean run: %s", path, err.msg);
    uint64_t n = count;
    unsigned enomem = 0, other = 0, ok = 0;
    for (uint64_t i = 0; i < n; i++) {
        float *l;
        count = 0, fail_at = i;
        memset(&err, 0, sizeof err);
        int rc = run(path, &l, &err);
        if (rc == SI_OK) {
            CHECKF(memcmp(l, ref, sizeof(float) * n_vocab) == 0,
                   "%s: allocation %" PRIu64 " failed, yet the pass succeeded with other logits", path, i);
            ok++;
            free(l);
            continue;
        }
        CHECKF(err.msg[0], "%s: allocation %" PRIu64 " failed: error %d without a message", path, i, rc);
        if (rc == SI_ENOMEM)
            enomem++;
        else
            other++, printf("allocation %" PRIu64 ": error %d: %s\n", i, rc, err.msg);
    }
    armed = false;
    printf("%s: each of %" PRIu64 " allocations of open + 2 passes failed in turn: %u SI_ENOMEM, %u other errors, "
           "%u recovered\n",
           path, n, enomem, other, ok);
    free(ref);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_alloc_fail: deadline passed (a hang)\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

int main(int argc, char **argv)
{
    CHECKF(argc == 3, "usage: test_alloc_fail MKMODEL REPACK");
    signal(SIGALRM, on_alarm);
    char dir[] = "/tmp/si-allocfail-XXXXXX";
    CHECK(mkdtemp(dir));
    char gguf[128], pack[128], cmd[1024];
    snprintf(gguf, sizeof gguf, "%s/micro.gguf", dir);
    snprintf(pack, sizeof pack, "%s/micro.pack", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' -o %s --dim 64 --layers 2 --heads 2 --kv-heads 1 --ff 128 --vocab-size 300 --ctx 64 --type Q8_0 "
             "--rope-freqs >/dev/null 2>&1",
             argv[1], gguf);
    CHECKF(system(cmd) == 0, "%s", cmd);
    snprintf(cmd, sizeof cmd, "'%s' %s %s --chunk 4K --embd-chunk 1K >/dev/null 2>&1", argv[2], gguf, pack);
    CHECKF(system(cmd) == 0, "%s", cmd);
    sweep(gguf);
    sweep(pack);
    unlink(gguf);
    unlink(pack);
    rmdir(dir);
    return 0;
}
