/* The engine's own allocations never exceed --mem-budget: for budgets from the named
 * minimum (the refusal's "(N bytes)", read from the error of a 1-byte budget) up to
 * the default (si_plan_default_budget with the measured overhead), open a micro model
 * (pins auto, so the pins fill what the budget leaves), run a 6-token prompt and 6
 * single-token passes, close. Every allocation call is wrapped (-Wl,--wrap: malloc,
 * calloc, realloc, free, posix_memalign, aligned_alloc, strdup; sizes from
 * malloc_usable_size) and the live bytes' high-water mark from before open to after
 * close must stay within budget + the file's parsed metadata (what the GGUF reader and the model's description
 * hold, measured alone: part of the fixed overhead the report names beside the budget, not of
 * the budget), or within the reader's own peak while it parses (before any buffer of the
 * plan exists, with the model's handle allocated before it). Each budget's run is a clean open and pass: the minimum too.
 *
 * The same for the model's packs (repack, 64 KiB chunks, raw and zstd: frames, the decode
 * buffer) when REPACK is given.
 *
 * usage: test_budget_alloc MKMODEL [REPACK] */
#include <malloc.h>
#include <unistd.h>

#include "../test_util.h"
#include "streaminfer/gguf.h"
#include "streaminfer/llama.h"
#include "streaminfer/pack.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
char *__real_strdup(const char *s);

static int64_t live, high;

static void *track(void *p)
{
    if (p) {
        live += (int64_t)malloc_usable_size(p);
        if (live > high)
            high = live;
    }
    return p;
}
static void untrack(void *p)
{
    if (p)
        live -= (int64_t)malloc_usable_size(p);
}

void *__wrap_malloc(size_t n) { return track(__real_malloc(n)); }
void *__wrap_calloc(size_t k, size_t n) { return track(__real_calloc(k, n)); }
void *__wrap_realloc(void *p, size_t n)
{
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = __real_realloc(p, n);
    if (q || n == 0)
        live -= (int64_t)old;
    return q ? track(q) : NULL;
}
void __wrap_free(void *p)
{
    untrack(p);
    __real_free(p);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    int rc = __real_posix_memalign(p, a, n);
    if (rc == 0)
        track(*p);
    return rc;
}
void *__wrap_aligned_alloc(size_t a, size_t n) { return track(__real_aligned_alloc(a, n)); }
char *__wrap_strdup(const char *s) { return track(__real_strdup(s)); }

static const char *model;
static uint64_t desc_bytes; /* the model's description (measured on the GGUF) */

/* High-water mark of live bytes over open + passes + close, above the level before. */
static int run(uint64_t budget, uint64_t *hw, si_plan *plan, si_error *err)
{
    static const int32_t prompt[] = {1, 77, 150, 299, 5, 42};
    static float logits[512];
    si_llama_opts lo = {.io = {.kind = SI_IO_AUTO, .direct = SI_DIRECT_OFF, .queue_depth = 4},
                        .mem_budget = budget, .pin = SI_PIN_AUTO};
    int64_t base = live;
    high = live;
    si_llama *m = NULL;
    alarm(30);
    int rc = si_llama_open(&m, model, &lo, err);
    if (rc == SI_OK) {
        *plan = *si_llama_plan_of(m);
        rc = si_llama_eval(m, prompt, 6, true, logits, err);
        for (int i = 0; i < 6 && rc == SI_OK; i++) {
            int32_t id = 10 + i;
            rc = si_llama_eval(m, &id, 1, i < 5, logits, err);
        }
        if (rc == SI_OK)
            rc = si_llama_finish(m, err);
    }
    si_llama_close(m);
    alarm(0);
    *hw = (uint64_t)(high - base);
    return rc;
}

static int sweep(const char *path, bool pack);

int main(int argc, char **argv)
{
    if (argc < 2)
        FAILF("usage: test_budget_alloc MKMODEL [REPACK]");
    char path[4096], pack[4200];
    snprintf(path, sizeof path, "%s/test-models/budget-alloc.gguf", getenv("SI_BUILD_ROOT") ? getenv("SI_BUILD_ROOT") : ".");
    char cmd[16384];
    snprintf(cmd, sizeof cmd - 1, "mkdir -p \"$(dirname '%s')\" && %s -o '%s' --type Q8_0 --seed 5 > /dev/null", path, argv[1],
             path);
    CHECK(system(cmd) == 0);
    int rc = sweep(path, false);
    if (rc == 0 && argc > 2) {
        snprintf(pack, sizeof pack, "%s.pack", path);
        snprintf(cmd, sizeof cmd - 1, "%s --chunk 64K '%s' '%s' > /dev/null 2>&1", argv[2], path, pack);
        CHECK(system(cmd) == 0);
        rc = sweep(pack, true);
        /* zstd with field splitting: frames decoded through the scheduler's buffer */
        snprintf(pack, sizeof pack, "%s.zst.pack", path);
        snprintf(cmd, sizeof cmd - 1, "%s --zstd=3 --chunk 64K '%s' '%s' > /dev/null 2>&1", argv[2], path, pack);
        if (rc == 0 && system(cmd) == 0)
            rc = sweep(pack, true);
        else if (rc == 0)
            printf("note: no zstd pack (a build without zstd)\n");
    }
    return rc;
}

static int sweep(const char *path, bool pack)
{
    model = path;

    /* the parsed metadata alone: what the GGUF reader holds while the model is open */
    si_error err = {0};
    int64_t before = live;
    high = live;
    uint64_t meta_peak, meta;
    if (pack) { /* the pack's metadata; its description: as the GGUF's, and a tensor info each */
        si_pack *pk = NULL;
        CHECK(si_pack_open(&pk, path, &err) == SI_OK);
        meta_peak = (uint64_t)(high - before);
        meta = (uint64_t)(live - before) + desc_bytes + si_pack_n_tensors(pk) * sizeof(si_gguf_tensor);
        si_pack_close(pk);
    } else {
        si_gguf *g = NULL;
        CHECK(si_gguf_open(&g, path, &err) == SI_OK);
        si_llama_desc desc;
        int64_t at_desc = live;
        CHECK(si_llama_desc_from_gguf(&desc, g, &err) == SI_OK);
        desc_bytes = (uint64_t)(live - at_desc);
        meta_peak = (uint64_t)(high - before), meta = (uint64_t)(live - before);
        si_llama_desc_free(&desc);
        si_gguf_close(g);
    }

    /* the named minimum */
    uint64_t hw = 0, min = 0;
    si_plan plan;
    CHECK(run(1, &hw, &plan, &err) == SI_EBUDGET);
    const char *q = strstr(err.msg, " bytes) would work");
    CHECK(q != NULL);
    while (q > err.msg && q[-1] != '(')
        q--;
    min = strtoull(q, NULL, 10);
    CHECK(min > 0);
    uint64_t def = si_plan_default_budget(si_plan_fixed_overhead(0), NULL, 0);
    printf("%s: metadata %llu bytes held (%llu at most while parsing); minimum budget %llu; default %llu\n", path, (unsigned long long)meta,
           (unsigned long long)meta_peak, (unsigned long long)min, (unsigned long long)def);

    /* from the minimum, 1.25x at a time, until the plan holds the whole model pinned with
     * the largest ring it wants (more changes nothing), then the default */
    uint64_t b = min, prev_need = 0;
    int runs = 0, stable = 0;
    for (;;) {
        memset(&err, 0, sizeof err);
        int rc = run(b, &hw, &plan, &err);
        if (rc != SI_OK)
            FAILF("budget %llu: %s", (unsigned long long)b, err.msg);
        /* held at the start: the KV blocks of a step, buffers, bookkeeping, pins */
        uint64_t need = plan.kv_start_bytes + plan.act_bytes + plan.ring_bytes + plan.book_bytes + plan.pin_bytes;
        printf("budget %10llu: allocated at most %10llu (%.1f%% of budget + metadata); planned at the start %llu, pins %llu\n",
               (unsigned long long)b, (unsigned long long)hw, 100.0 * (double)hw / (double)(b + meta),
               (unsigned long long)need, (unsigned long long)plan.pin_bytes);
        /* parsing peaks before the plan's buffers exist: the bound is the larger of the two
         * (the parse's peak with the model's handle, allocated before it: 4 KiB at most) */
        if (hw > b + meta && hw > meta_peak + 4096)
            FAILF("budget %llu: the engine allocated %llu bytes at once, more than the budget + %llu bytes of "
                  "metadata (plan: KV %llu, activations %llu, ring %llu, pins %llu)",
                  (unsigned long long)b, (unsigned long long)hw, (unsigned long long)meta,
                  (unsigned long long)plan.kv_bytes, (unsigned long long)plan.act_bytes,
                  (unsigned long long)plan.ring_bytes, (unsigned long long)plan.pin_bytes);
        runs++;
        if (b == def)
            break;
        stable = need == prev_need ? stable + 1 : 0;
        prev_need = need;
        b = stable >= 2 ? def : b + b / 4;
        if (b > def)
            b = def;
    }
    CHECK(runs >= 3);
    printf("ok: %d budgets, allocations always within budget + metadata\n", runs);
    return 0;
}
