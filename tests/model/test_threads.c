/* -t 1..4 give bit-identical logits: through the library (a prompt in one batch, single
 * tokens after it, and one step holding two sequences, for every KV cache type the
 * model takes) on mkmodel models (a compute-order GGUF, a llama.cpp-ordered one with
 * rope_freqs, a pack) or the fixtures' models; through stream-infer (--dump-logits,
 * batched and forced one token at a time, the report naming the thread count). Also:
 * the memory plan counts the attention scratch once per thread, and -t/--threads
 * refuse 0, 1000 and non-numbers.
 *   usage: test_threads MKMODEL REPACK STREAM_INFER           (mkmodel models)
 *          test_threads --fixtures STREAM_INFER               (../shared/fixtures) */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "streaminfer/llama.h"
#include "streaminfer/pool.h"
#include "../test_util.h"

#define MAX_T 4

/* Built with ThreadSanitizer (gcc's macro, clang's feature): every run is some ten times
 * slower, and a race shows in any model; the fixtures variant then runs a lighter set. */
#if defined(__SANITIZE_THREAD__)
#define SI_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SI_TSAN 1
#endif
#endif
#ifndef SI_TSAN
#define SI_TSAN 0
#endif
#define N_FORCED 3

typedef struct run {
    float *logits;
    size_t n;
    uint64_t act_bytes;
} run;

/* A prompt in one pass (every row), N_FORCED single tokens, then one step of two new
 * sequences (interleaved tokens, so the step's attention has two groups). */
static run run_lib(const char *path, uint32_t n_threads, si_kv_type kv, const int32_t *prompt, uint32_t n_prompt)
{
    si_llama_opts o = {.n_ctx = 256, .all_logits = true, .kv_type = kv, .n_threads = n_threads, .n_seq_max = 3};
    si_llama *m;
    si_error err;
    CHECKF(si_llama_open(&m, path, &o, &err) == SI_OK, "%s -t %u: %s", path, n_threads, err.msg);
    CHECK_EQ_INT(si_llama_n_threads(m), n_threads);
    uint32_t V = si_llama_hparams_of(m)->n_vocab;
    CHECKF(si_llama_plan_of(m)->n_batch >= n_prompt, "%s: a step of %u tokens", path, si_llama_plan_of(m)->n_batch);
    const uint32_t n_two = 10;
    run r = {.n = (size_t)(n_prompt + N_FORCED + n_two) * V, .act_bytes = si_llama_plan_of(m)->act_bytes};
    r.logits = malloc(r.n * sizeof(float));
    CHECK(r.logits);
    CHECKF(si_llama_eval(m, prompt, n_prompt, true, r.logits, &err) == SI_OK, "%s", err.msg);
    for (uint32_t i = 0; i < N_FORCED; i++) {
        int32_t id = (int32_t)((prompt[i] * 7 + 11) % V);
        CHECKF(si_llama_eval(m, &id, 1, true, r.logits + (size_t)(n_prompt + i) * V, &err) == SI_OK, "%s", err.msg);
    }
    int32_t id[10];
    uint32_t pos[10];
    si_seq_set seq[10];
    bool want[10];
    for (uint32_t i = 0; i < n_two; i++) {
        id[i] = (int32_t)((i * 37 + 5) % V);
        pos[i] = i / 2;
        seq[i] = SI_SEQ(1 + i % 2);
        want[i] = true;
    }
    si_batch bt = {.n = n_two, .id = id, .pos = pos, .seq = seq, .logits = want};
    CHECKF(si_llama_decode(m, &bt, false, r.logits + (size_t)(n_prompt + N_FORCED) * V, &err) == SI_OK, "%s",
           err.msg);
    CHECKF(si_llama_finish(m, &err) == SI_OK, "%s", err.msg);
    si_llama_close(m);
    return r;
}

static const char *kv_name(si_kv_type k) { return k == SI_KV_F16 ? "f16" : k == SI_KV_F32 ? "f32" : "q8_0"; }

static void check_lib(const char *path, bool q8, const int32_t *prompt, uint32_t n_prompt)
{
    si_kv_type kvs[] = {SI_KV_F16, SI_KV_F32, SI_KV_Q8_0};
    for (int k = 0; k < (q8 ? 3 : 2); k++) {
        run one = run_lib(path, 1, kvs[k], prompt, n_prompt);
        for (uint32_t t = 2; t <= MAX_T; t++) {
            run r = run_lib(path, t, kvs[k], prompt, n_prompt);
            CHECKF(r.n == one.n && memcmp(r.logits, one.logits, one.n * sizeof(float)) == 0,
                   "%s, KV %s: logits with %u threads differ from one thread's", path, kv_name(kvs[k]), t);
            /* each thread has its own attention scratch, and the plan counts it */
            CHECKF(r.act_bytes > one.act_bytes, "%s: activations %llu bytes with %u threads, %llu with one", path,
                   (unsigned long long)r.act_bytes, t, (unsigned long long)one.act_bytes);
            free(r.logits);
        }
        printf("%s, KV %s: %zu logits bit-identical for -t 1..%d\n", path, kv_name(kvs[k]), one.n, MAX_T);
        free(one.logits);
    }
}

static int sh(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* stream-infer with -t 1..4: --dump-logits of a batched prompt and of forced tokens
 * one pass each are byte for byte the same; the JSON report names the count. */
static void check_cli(const char *si, const char *model, const char *ids, const char *forced)
{
    const char *root = getenv("SI_BUILD_ROOT") ? getenv("SI_BUILD_ROOT") : ".";
    char first[4096] = "", cmd[16384];
    size_t n_first = 0;
    char *ref = NULL;
    for (int t = 1; t <= MAX_T; t++) {
        char dump[4096], rep[4096];
        snprintf(dump, sizeof dump, "%s/test-models/threads-%d.f32", root, t);
        snprintf(rep, sizeof rep, "%s/test-models/threads-%d.json", root, t);
        snprintf(cmd, sizeof cmd,
                 "'%s' -m '%s' --prompt-ids '%s' --force-ids '%s' -n 0 %s %d --dump-logits '%s' --report-json '%s' "
                 "-q > /dev/null",
                 si, model, ids, forced, t % 2 ? "-t" : "--threads", t, dump, rep);
        CHECKF(sh(cmd) == 0, "%s", cmd);
        size_t n;
        char *l = test_read_file(dump, &n);
        CHECKF(l && n > 0, "no logits in %s", dump);
        char *j = test_read_file(rep, NULL), want[64];
        snprintf(want, sizeof want, "\"threads\": %d,", t);
        CHECKF(j && strstr(j, want), "%s does not say %s", rep, want);
        free(j);
        if (!ref) {
            ref = l, n_first = n;
            snprintf(first, sizeof first, "%s", dump);
            continue;
        }
        CHECKF(n == n_first && memcmp(l, ref, n) == 0, "stream-infer -t %d: %s differs from %s", t, dump, first);
        free(l);
    }
    printf("stream-infer %s: %zu bytes of logits bit-identical for -t 1..%d\n", model, n_first, MAX_T);
    free(ref);
}

static void check_bad_options(const char *si, const char *model)
{
    const char *bad[] = {"-t 0", "-t 1000", "-t abc", "--threads 257", "--threads -2", "--threads ''", "-t 2x"};
    const char *root = getenv("SI_BUILD_ROOT") ? getenv("SI_BUILD_ROOT") : ".";
    char cmd[16384], errf[4096];
    snprintf(errf, sizeof errf, "%s/test-models/threads-bad.err", root);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "'%s' -m '%s' --prompt-ids 1 -n 0 -q %s 2> '%s'", si, model, bad[i], errf);
        int rc = sh(cmd);
        char *e = test_read_file(errf, NULL);
        CHECKF(rc != 0 && e && strstr(e, "invalid value") && (strstr(e, "-t") || strstr(e, "--threads")),
               "%s: exit %d, stderr: %s", cmd, rc, e ? e : "(none)");
        free(e);
    }
    printf("-t 0, -t 1000, non-numbers: refused\n");
}

int main(int argc, char **argv)
{
    /* The library refuses a count beyond the pool's limit; 0 is the CPUs' count. */
    if (argc == 3 && strcmp(argv[1], "--fixtures") == 0) {
        const char *fx = getenv("SI_FIXTURES");
        char path[4096], idsf[4096];
        snprintf(idsf, sizeof idsf, "%s/micro-llama3/ref/prompt.ids", fx ? fx : "../shared/fixtures");
        char *ids = test_read_file(idsf, NULL);
        if (!fx || !ids) {
            printf("SKIP: the fixtures (%s) are missing; the mkmodel variant of this test still runs\n", idsf);
            return TEST_SKIP;
        }
        ids[strcspn(ids, "\n")] = 0;
        int32_t prompt[128];
        uint32_t n = 0;
        for (char *s = ids, *end; n < 128; s = end) {
            long v = strtol(s, &end, 10);
            if (end == s)
                break;
            prompt[n++] = (int32_t)v;
        }
        CHECK(n >= 20);
        /* Under emulation or ThreadSanitizer a lighter set (one type, a 12-token prompt;
         * every type and the whole prompt are the plain native run's). */
        bool emu = test_emulated() != NULL || SI_TSAN;
        if (emu)
            printf("%s: Q2_K and a 12-token prompt only; the other types and the whole prompt are the plain "
                   "native run's\n", SI_TSAN ? "ThreadSanitizer" : test_emulated());
        const char *micro[] = {"Q2_K", "Q4_0", "Q6_K", "F32"};
        for (int i = 0; i < (emu ? 1 : 4); i++) {
            snprintf(path, sizeof path, "%s/micro-llama3/%s.gguf", fx, micro[i]);
            check_lib(path, i < 2 && !test_emulated(), prompt, emu ? 12 : n);
        }
        if (!emu) {
            snprintf(path, sizeof path, "%s/tiny-trained/Q4_K_M.gguf", fx);
            check_lib(path, true, prompt, 40);
        }
        snprintf(path, sizeof path, "%s/micro-llama3/Q4_K_M.gguf", fx);
        char head[2048] = "";
        for (uint32_t i = 0, off = 0; i < (emu ? 12u : n); i++)
            off += (uint32_t)snprintf(head + off, sizeof head - off, i ? " %d" : "%d", prompt[i]);
        check_cli(argv[2], path, head, "17 42 99");
        free(ids);
        printf("ok\n");
        return 0;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: %s MKMODEL REPACK STREAM_INFER | --fixtures STREAM_INFER\n", argv[0]);
        return 2;
    }
    bool emu = test_emulated() != NULL;
    char a[4200], b[4200], pack[4300], cmd[20000];
    test_mkmodel(argv[1], "threads-compute",
                 "--seed 5 --dim 256 --layers 2 --heads 8 --kv-heads 2 --ff 512 --vocab-size 300 --type Q4_K", a,
                 sizeof a);
    test_mkmodel(argv[1], "threads-sorted",
                 "--seed 6 --dim 128 --layers 2 --heads 4 --kv-heads 4 --ff 512 --vocab-size 300 --type Q8_0 "
                 "--tensor-type ffn_down=Q6_K --order sorted --rope-freqs",
                 b, sizeof b);
    snprintf(pack, sizeof pack, "%s.pack", a);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' --zstd > /dev/null 2>&1 || '%s' '%s' '%s' > /dev/null 2>&1", argv[2], a,
             pack, argv[2], a, pack);
    CHECKF(system(cmd) == 0, "repack failed: %s", cmd);

    si_llama_opts o = {.n_ctx = 64, .n_threads = SI_POOL_MAX_THREADS + 1};
    si_llama *m;
    si_error err;
    CHECK(si_llama_open(&m, a, &o, &err) == SI_EINVAL && m == NULL);
    o.n_threads = 0;
    CHECKF(si_llama_open(&m, a, &o, &err) == SI_OK, "%s", err.msg);
    CHECK_EQ_INT(si_llama_n_threads(m), si_pool_default_threads());
    si_llama_close(m);

    const int32_t prompt[12] = {1, 17, 42, 99, 7, 250, 3, 64, 128, 5, 77, 200};
    check_lib(a, true, prompt, 12);
    if (!emu) {
        check_lib(b, false, prompt, 12); /* head size 32: q8_0 would also do; two types are enough */
        check_lib(pack, false, prompt, 12);
    }
    check_cli(argv[3], a, "1 17 42 99 7 250 3 64 128 5", "77 200");
    check_bad_options(argv[3], a);
    printf("ok\n");
    return 0;
}
