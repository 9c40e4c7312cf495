/* Elastic pins: a budget that holds the whole model pinned beside a short context but
 * not beside a long one. Sequence 0 grows (prompt, then one token per pass) until pins
 * must give way to KV blocks, sequence 1 joins with a prompt of its own, then sequence
 * 0 ends and its blocks go back, so pins return. Every logits row must equal that of
 * the same steps with --pin none, the pins must really have been released and
 * restored, and the engine's own allocations (malloc & co. wrapped with -Wl,--wrap,
 * live bytes counted with malloc_usable_size) must never exceed the budget.
 *
 * usage: test_pin_elastic MKMODEL [REPACK] (a pack too when REPACK is given) */
#include <errno.h>
#include <malloc.h>

#include "../test_util.h"
#include "streaminfer/kv.h"
#include "streaminfer/llama.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void __real_free(void *p);

static uint64_t live, peak;

/* The blocks the wrappers handed out (open addressing): a pointer freed here that
 * some library allocated is not counted against the engine. */
#define SET_BITS 18
static void *set[1u << SET_BITS];
static size_t slot_of(void *p)
{
    size_t h = ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> (64 - SET_BITS);
    while (set[h] && set[h] != p)
        h = (h + 1) & ((1u << SET_BITS) - 1);
    return h;
}

static void add(void *p)
{
    if (!p)
        return;
    size_t h = slot_of(p);
    CHECKF(!set[h], "block %p handed out twice", p);
    set[h] = p;
    live += malloc_usable_size(p);
    peak = live > peak ? live : peak;
}
/* Remove p from the count; false when the wrappers did not hand it out. */
static bool drop(void *p)
{
    size_t h = slot_of(p);
    if (!set[h])
        return false;
    live -= malloc_usable_size(p);
    set[h] = NULL; /* re-insert the rest of the run so probing still finds it */
    for (size_t i = (h + 1) & ((1u << SET_BITS) - 1); set[i]; i = (i + 1) & ((1u << SET_BITS) - 1)) {
        void *q = set[i];
        set[i] = NULL;
        set[slot_of(q)] = q;
    }
    return true;
}
void *__wrap_malloc(size_t n)
{
    void *p = __real_malloc(n);
    add(p);
    return p;
}
void *__wrap_calloc(size_t k, size_t n)
{
    void *p = __real_calloc(k, n);
    add(p);
    return p;
}
void *__wrap_realloc(void *p, size_t n)
{
    bool ours = p && drop(p);
    void *q = __real_realloc(p, n);
    if (!q && ours) /* p is still there */
        add(p);
    else if (q && (ours || !p))
        add(q);
    return q;
}
int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    int rc = __real_posix_memalign(p, a, n);
    if (rc == 0)
        add(*p);
    return rc;
}
void __wrap_free(void *p)
{
    if (p)
        drop(p);
    __real_free(p);
}

#define N_CTX 1024
#define PROMPT0 300
#define GROW0 500  /* sequence 0 grows to this many positions, a token per pass */
#define PROMPT1 200
#define TAIL1 4    /* sequence 1's tokens after sequence 0 has ended */

typedef struct run {
    float *rows; /* every logits row asked for, in order */
    size_t n_rows, cap_rows;
    uint32_t V;
    si_llama_stats st;
    uint64_t budget, peak_engine;
} run;

static int32_t tok(uint32_t seq, uint32_t pos, uint32_t V) { return (int32_t)((pos * 7 + seq * 131 + 3) % V); }

/* One step: n tokens of seq at positions pos.., the last one's logits kept. */
static void step(si_llama *m, run *r, uint32_t seq, uint32_t pos, uint32_t n, uint32_t V)
{
    int32_t ids[256];
    uint32_t ps[256];
    si_seq_set ss[256];
    bool lg[256];
    CHECK(n <= 256);
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = tok(seq, pos + i, V);
        ps[i] = pos + i;
        ss[i] = SI_SEQ(seq);
        lg[i] = i == n - 1;
    }
    CHECK(r->n_rows < r->cap_rows);
    si_batch b = {.n = n, .id = ids, .pos = ps, .seq = ss, .logits = lg};
    si_error err;
    CHECKF(si_llama_decode(m, &b, true, r->rows + r->n_rows * V, &err) == SI_OK, "%s", err.msg);
    r->n_rows++;
}

static void prompt(si_llama *m, run *r, uint32_t seq, uint32_t n, uint32_t V)
{
    uint32_t B = si_llama_plan_of(m)->n_batch;
    for (uint32_t done = 0; done < n; done += B)
        step(m, r, seq, done, n - done < B ? n - done : B, V);
}

/* What the engine allocates that the budget does not cover: the model's metadata,
 * description and stream layout (its fixed tables), as a plan-only open holds them. */
static uint64_t tables_bytes(const char *path, si_pin_mode pin, uint64_t budget)
{
    si_llama_opts o = {.pin = pin, .mem_budget = budget, .n_ctx = N_CTX, .kv_type = SI_KV_F32, .n_seq_max = 2,
                       .plan_only = true};
    uint64_t before = live;
    si_llama *m;
    si_error err;
    CHECKF(si_llama_open(&m, path, &o, &err) == SI_OK, "%s: %s", path, err.msg);
    uint64_t n = live - before;
    si_llama_close(m);
    return n;
}

static run go(const char *path, si_pin_mode pin, uint64_t budget)
{
    si_llama_opts o = {.pin = pin, .mem_budget = budget, .n_ctx = N_CTX, .kv_type = SI_KV_F32, .n_seq_max = 2};
    run r = {.budget = budget};
    uint64_t before = live;
    peak = live;
    si_llama *m;
    si_error err;
    CHECKF(si_llama_open(&m, path, &o, &err) == SI_OK, "%s: %s", path, err.msg);
    uint32_t V = r.V = si_llama_hparams_of(m)->n_vocab;
    r.cap_rows = 1024;
    r.rows = __real_malloc(r.cap_rows * V * sizeof(float)); /* the test's own: not counted */
    CHECK(r.rows);
    prompt(m, &r, 0, PROMPT0, V);
    for (uint32_t p = PROMPT0; p < GROW0; p++)
        step(m, &r, 0, p, 1, V);
    prompt(m, &r, 1, PROMPT1, V);
    for (uint32_t p = 0; p < 8; p++)
        step(m, &r, 1, PROMPT1 + p, 1, V);
    si_kv_seq_rm(si_llama_kv(m), 0, 0, SI_POS_END); /* sequence 0 ends */
    for (uint32_t p = 8; p < 8 + TAIL1; p++)
        step(m, &r, 1, PROMPT1 + p, 1, V);
    CHECKF(si_llama_finish(m, &err) == SI_OK, "%s", err.msg);
    si_llama_get_stats(m, &r.st);
    r.peak_engine = peak - before;
    si_llama_close(m);
    /* The first run may leave the kernels' per-thread scratch behind (the RVV set keeps
     * it until the thread ends); every later one must give back all it took. */
    static bool warmed;
    CHECKF(live == before || !warmed, "%llu bytes still held after close", (unsigned long long)(live - before));
    warmed = true;
    return r;
}

static void check_elastic(const char *path)
{
    /* The minimum of -c N_CTX without pins, from the refusal of a budget far too small;
     * with a little more, the model is pinned whole beside one step's KV blocks but not
     * beside the whole pool. */
    si_llama_opts o = {.pin = SI_PIN_NONE, .mem_budget = 4096, .n_ctx = N_CTX, .kv_type = SI_KV_F32, .n_seq_max = 2};
    si_llama *m = NULL;
    si_error err;
    CHECK(si_llama_open(&m, path, &o, &err) == SI_EBUDGET);
    const char *p = strstr(err.msg, "B (");
    CHECKF(p, "no minimum in: %s", err.msg);
    uint64_t min = strtoull(p + 3, NULL, 10), budget = min + (64u << 10);

    run none = go(path, SI_PIN_NONE, budget), pinned = go(path, SI_PIN_AUTO, budget);
    uint64_t tables = tables_bytes(path, SI_PIN_AUTO, budget);
    const si_llama_stats *s = &pinned.st;
    printf("%s: budget %llu: %u tensors pinned at open, %llu released, %llu restored, %u held at the end; "
           "peak held %llu (KV %llu), engine allocations peak %llu (without pins: %llu)\n",
           path, (unsigned long long)budget, s->pins_planned, (unsigned long long)s->pins_released,
           (unsigned long long)s->pins_restored, s->pins_held, (unsigned long long)s->held_peak_bytes,
           (unsigned long long)s->kv_peak_bytes, (unsigned long long)pinned.peak_engine,
           (unsigned long long)none.peak_engine);
    printf("fixed tables %llu bytes; allocations beyond what the model holds: %lld without pins, %lld with\n",
           (unsigned long long)tables, (long long)(none.peak_engine - none.st.held_peak_bytes),
           (long long)(pinned.peak_engine - s->held_peak_bytes));
    CHECK(none.n_rows == pinned.n_rows);
    size_t V = none.V;
    for (size_t i = 0; i < none.n_rows; i++)
        CHECKF(memcmp(none.rows + i * V, pinned.rows + i * V, V * sizeof(float)) == 0,
               "%s: logits row %zu differs between --pin none and elastic pins", path, i);
    CHECKF(s->pins_planned > 0, "nothing pinned at open: the budget %llu leaves no room", (unsigned long long)budget);
    CHECKF(s->pins_released > 0, "no pin gave way to the growing KV cache (peak KV %llu)",
           (unsigned long long)s->kv_peak_bytes);
    CHECKF(s->pins_restored > 0, "no pin returned after sequence 0 ended");
    CHECKF(s->held_peak_bytes <= budget, "held %llu > budget %llu", (unsigned long long)s->held_peak_bytes,
           (unsigned long long)budget);
    /* Beyond the fixed tables, the scheduler's per-extent tables and the I/O handle (a
     * few KiB, held by neither the plan nor a plan-only open) may come on top; pins
     * that did not give way would overshoot by hundreds of KiB. */
    const uint64_t small_tables = 32u << 10;
    CHECKF(pinned.peak_engine <= budget + tables + small_tables,
           "the engine's allocations peaked at %llu bytes, over the budget of %llu (+ %llu of fixed tables)",
           (unsigned long long)pinned.peak_engine, (unsigned long long)budget, (unsigned long long)tables);
    CHECKF(s->sched.bytes_read < s->sched.passes * s->sched.bytes_per_pass_unpinned,
           "pins saved no reads: %llu bytes read in %llu passes", (unsigned long long)s->sched.bytes_read,
           (unsigned long long)s->sched.passes);
    free(none.rows);
    free(pinned.rows);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MKMODEL [REPACK]\n", argv[0]);
        return 2;
    }
    char path[4200], pack[4300];
    test_mkmodel(argv[1], "pin-elastic",
                 "--seed 9 --dim 128 --layers 2 --heads 4 --kv-heads 2 --ff 384 --vocab-size 300 --type Q8_0", path,
                 sizeof path);
    check_elastic(path);
    if (argc > 2) {
        snprintf(pack, sizeof pack, "%s.pack", path);
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' --chunk 4K >/dev/null 2>&1", argv[2], path, pack);
        CHECKF(system(cmd) == 0, "%s failed", cmd);
        check_elastic(pack);
    }
    return 0;
}
