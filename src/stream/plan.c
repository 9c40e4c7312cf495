/* Splitting a memory budget between KV cache, activations and weight ring. */
#include "streaminfer/plan.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int si_parse_size(const char *s, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0))
        return SI_EINVAL;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mul = 1024.0; end++; break;
    case 'M': mul = 1024.0 * 1024; end++; break;
    case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
    case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
    }
    if (toupper((unsigned char)*end) == 'I')
        end++;
    if (toupper((unsigned char)*end) == 'B')
        end++;
    if (*end || v * mul >= 1.8e19)
        return SI_EINVAL;
    *out = (uint64_t)(v * mul);
    return SI_OK;
}

const char *si_format_size(uint64_t b, char *buf, size_t len)
{
    if (b >= (1ull << 30))
        snprintf(buf, len, "%.2f GiB", (double)b / (1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, len, "%.1f MiB", (double)b / (1ull << 20));
    else if (b >= 1024)
        snprintf(buf, len, "%.1f KiB", (double)b / 1024);
    else
        snprintf(buf, len, "%" PRIu64 " B", b);
    return buf;
}

static uint64_t read_u64_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[64] = {0};
    uint64_t v = 0;
    if (fgets(line, sizeof line, f) && isdigit((unsigned char)line[0]))
        v = strtoull(line, NULL, 10);
    fclose(f);
    return v; /* "max" and unreadable files give 0: no limit */
}

/* The tightest memory limit on this process's cgroup path (v2 memory.max or v1
 * memory.limit_in_bytes), 0 when there is none. */
static uint64_t cgroup_limit(void)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return 0;
    char line[4096];
    uint64_t best = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        const char *ctrl = c1 + 1, *path = c2 + 1;
        char dir[4096 + 64];
        const char *fmt = NULL;
        if (ctrl[0] == 0)
            fmt = "/sys/fs/cgroup%s/memory.max";
        else if (strstr(ctrl, "memory"))
            fmt = "/sys/fs/cgroup/memory%s/memory.limit_in_bytes";
        if (!fmt)
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s", path);
        for (;;) { /* walk up: a parent's limit binds too */
            snprintf(dir, sizeof dir, fmt, strcmp(p, "/") == 0 ? "" : p);
            uint64_t v = read_u64_file(dir);
            if (v && v < (1ull << 60) && (!best || v < best))
                best = v;
            char *slash = strrchr(p, '/');
            if (!slash || slash == p) {
                if (strcmp(p, "/") == 0)
                    break;
                strcpy(p, "/");
            } else {
                *slash = 0;
            }
        }
    }
    fclose(f);
    return best;
}

static uint64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    uint64_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

uint64_t si_plan_fixed_overhead(uint64_t metadata_bytes)
{
    /* anonymous memory resident now: heap (the file's metadata), stacks */
    FILE *f = fopen("/proc/self/status", "r");
    uint64_t kb = 0, files = 0;
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "RssAnon: %" SCNu64 " kB", &kb) == 1)
                break;
        fclose(f);
    }
    /* code and data of the program and its libraries: every file mapping whole, as
     * much of it as can ever become resident (pages are touched lazily, so what is
     * resident at open understates it) */
    if ((f = fopen("/proc/self/maps", "r"))) {
        char line[4608];
        while (fgets(line, sizeof line, f)) {
            unsigned long long lo, hi;
            char *path = strchr(line, '/');
            if (path && sscanf(line, "%llx-%llx", &lo, &hi) == 2 && hi > lo)
                files += hi - lo;
        }
        fclose(f);
    }
    return kb * 1024 + files + metadata_bytes;
}

uint64_t si_plan_default_budget(uint64_t overhead, char *source, size_t source_len)
{
    uint64_t cg = cgroup_limit(), avail = mem_available();
    uint64_t base = avail;
    const char *what = "MemAvailable";
    if (cg && (!avail || cg < avail)) {
        base = cg;
        what = "cgroup memory limit";
    }
    if (!base) {
        base = 512ull << 20;
        what = "no limit found, assumed";
    }
    /* Leave out the process's fixed memory (code, libraries, metadata, tokenizer),
     * which is not in the budget, and keep a margin for what the kernel charges beside
     * it (page tables, io_uring rings, the metadata's page cache, which the cgroup
     * reclaims before it kills): budget + overhead + margin = base. The margin was
     * 1/8 + 16 MiB while it also had to cover the overhead; with the overhead measured
     * it is 1/32 + 8 MiB (22 MiB of a 448 MiB cgroup, where the engine peaked 6 MiB
     * above budget + overhead, page cache included: docs/BENCHMARKS.md). */
    uint64_t margin = base / 32 + (8ull << 20);
    uint64_t keep = margin + overhead;
    uint64_t budget = base > keep + (16ull << 20) ? base - keep : base / 2;
    if (source) {
        char a[32], b[32], c[32];
        if (overhead)
            snprintf(source, source_len, "%s %s less %s margin and %s fixed overhead", what,
                     si_format_size(base, a, sizeof a), si_format_size(margin, b, sizeof b),
                     si_format_size(overhead, c, sizeof c));
        else
            snprintf(source, source_len, "%s %s less %s margin", what, si_format_size(base, a, sizeof a),
                     si_format_size(margin, b, sizeof b));
    }
    return budget;
}

/* Logits rows a step of n_batch tokens may ask for. */
static uint32_t logits_rows(const si_plan_req *r, uint32_t n_batch)
{
    if (r->logits_all_tokens)
        return n_batch;
    uint32_t n = r->logits_rows ? r->logits_rows : 1;
    return n < n_batch ? n : n_batch;
}

/* Activations of a step of n_batch tokens that do not depend on the context. */
static uint64_t act_step_bytes(const si_plan_req *r, uint32_t n_batch)
{
    return r->act_fixed_bytes + (uint64_t)n_batch * r->act_bytes_per_token +
           (uint64_t)logits_rows(r, n_batch) * r->logits_row_bytes;
}

/* The same, as the step-size rule counts it: one logits row per sequence, not the
 * guessed tokens' rows. With 8 sequences drafting 8 tokens each an 8B model's 72 rows
 * take 37 MB; counted here they halved the step at 448 MiB, and 8 prompts took two
 * passes instead of one. They stay in need_bytes, so the budget still holds them. */
static uint64_t act_step_sizing_bytes(const si_plan_req *r, uint32_t n_batch)
{
    uint32_t rows = logits_rows(r, n_batch);
    if (!r->logits_all_tokens && r->logits_rows_step && r->logits_rows_step < rows)
        rows = r->logits_rows_step;
    return r->act_fixed_bytes + (uint64_t)n_batch * r->act_bytes_per_token + (uint64_t)rows * r->logits_row_bytes;
}

static uint64_t act_bytes(const si_plan_req *r, uint32_t n_batch, uint32_t n_ctx)
{
    return act_step_bytes(r, n_batch) + (uint64_t)n_ctx * r->act_bytes_per_pos;
}

/* The engine's bookkeeping with a ring of this size: more extents when it is smaller.
 * An extent is at most ring / 3 bytes once aligned (the alignment at most ring_min / 6),
 * and a row slice holds at least that less one row (the widest under ring_min / 3) and
 * the alignment at both ends: at most 3 E / (ring - 1.5 ring_min) slices of E bytes in
 * all, and never more than 9 E / ring (a slice is at least half an extent). */
static uint64_t book_bytes(const si_plan_req *r, uint64_t ring)
{
    if (!ring || !r->book_bytes_per_extent)
        return r->book_fixed_bytes;
    double E = (double)r->book_extent_bytes, n = 9.0 * E / (double)ring, lo = 1.5 * (double)r->ring_min;
    if ((double)ring > lo && 3.0 * E / ((double)ring - lo) < n)
        n = 3.0 * E / ((double)ring - lo);
    return r->book_fixed_bytes + (uint64_t)ceil(n) * r->book_bytes_per_extent;
}

/* The smallest ring the plan gives: ring_min, or more where a larger ring saves more
 * bookkeeping than it costs (the least ring + bookkeeping on a fine geometric grid). */
static uint64_t ring_floor(const si_plan_req *r)
{
    uint64_t best = r->ring_min, best_cost = best + book_bytes(r, best);
    if (!r->book_bytes_per_extent)
        return best;
    double top = 4.0 * sqrt(9.0 * (double)r->book_extent_bytes * (double)r->book_bytes_per_extent);
    for (double x = (double)r->ring_min * 1.01; x < top; x *= 1.01) {
        uint64_t ring = (uint64_t)x, cost = ring + book_bytes(r, ring);
        if (cost < best_cost)
            best = ring, best_cost = cost;
    }
    /* never above what the ring may have (--ring caps ring_want) */
    if (r->ring_want && best > r->ring_want)
        best = r->ring_want > r->ring_min ? r->ring_want : r->ring_min;
    return best;
}

/* What the smallest ring costs, with its bookkeeping. */
static uint64_t ring_floor_bytes(const si_plan_req *r)
{
    uint64_t f = ring_floor(r);
    return f + book_bytes(r, f);
}

/* Everything a plan of this step and context holds with the smallest ring. */
static uint64_t need_bytes(const si_plan_req *r, uint32_t n_batch, uint32_t n_ctx)
{
    return act_bytes(r, n_batch, n_ctx) + (uint64_t)n_ctx * r->kv_bytes_per_pos + ring_floor_bytes(r);
}

/* The largest ring that fits in `room` with its bookkeeping (room >= ring_floor_bytes). */
static uint64_t ring_in(const si_plan_req *r, uint64_t room)
{
    uint64_t ring = ring_floor(r);
    for (int i = 0; i < 8; i++) { /* ring + book(ring) <= room holds at every step */
        uint64_t b = book_bytes(r, ring), next = room > b ? room - b : 0;
        if (next <= ring)
            break;
        ring = next;
    }
    return ring;
}

/* The refusal names the minimum that would work (exactly: that budget is accepted)
 * and what it is made of; with -c, also the largest -c this budget allows. */
static int too_small(const si_plan_req *r, const si_plan *p, uint32_t n_batch, uint32_t ctx_min, si_error *err)
{
    uint64_t act = act_bytes(r, n_batch, ctx_min), kv = (uint64_t)ctx_min * r->kv_bytes_per_pos;
    uint64_t need = need_bytes(r, n_batch, ctx_min);
    char a[32], b[32], c[32], d[32], e[32], f[32], what[64], tail[128] = "";
    if (r->n_ctx) {
        snprintf(what, sizeof what, " for -c %u", r->n_ctx);
        uint64_t fixed = act_step_bytes(r, n_batch) + ring_floor_bytes(r);
        uint64_t per_pos = r->kv_bytes_per_pos + r->act_bytes_per_pos;
        uint64_t most = p->budget > fixed && per_pos ? (p->budget - fixed) / per_pos : 0;
        if (most >= 1)
            snprintf(tail, sizeof tail, "; this budget allows at most -c %" PRIu64, most);
        else
            snprintf(tail, sizeof tail, "; this budget is too small for any -c");
    } else {
        snprintf(what, sizeof what, "%s", "");
    }
    return si_errorf(err, SI_EBUDGET,
                     "memory budget %s is too small%s: at least %s (%" PRIu64 " bytes) would work (KV cache %s for "
                     "%u positions, activations %s for a %u-token step, weight buffer %s, bookkeeping %s)%s",
                     si_format_size(p->budget, a, sizeof a), what, si_format_size(need, b, sizeof b), need,
                     si_format_size(kv, c, sizeof c), ctx_min, si_format_size(act, d, sizeof d), n_batch,
                     si_format_size(ring_floor(r), e, sizeof e),
                     si_format_size(book_bytes(r, ring_floor(r)), f, sizeof f), tail);
}

int si_plan_make(const si_plan_req *r, si_plan *p, si_error *err)
{
    memset(p, 0, sizeof *p);
    if (r->budget) {
        p->budget = r->budget;
        snprintf(p->budget_source, sizeof p->budget_source, "--mem-budget");
    } else {
        p->budget = si_plan_default_budget(r->overhead_bytes, p->budget_source, sizeof p->budget_source);
    }
    p->overhead_bytes = r->overhead_bytes;
    SI_CHECK(!r->n_ctx && !r->n_ctx_train, err, SI_EINVAL, "the model has no context length: use -c N");
    SI_CHECK(r->n_batch > (1u << 20), err, SI_EINVAL, "step size %u is too large", r->n_batch);
    uint32_t ctx_train = r->n_ctx_train ? r->n_ctx_train : r->n_ctx;
    /* The smallest context a plan may have: -c exactly, else 64 positions (or the
     * trained context when shorter). */
    uint32_t ctx_min = r->n_ctx ? r->n_ctx : (ctx_train < 64 ? ctx_train : 64);

    /* Step size, independent of the context: up to 256 tokens (or as asked) while the
     * step's own activations (one logits row per sequence) stay within 1/8 of the
     * budget; then halved while even the
     * smallest context with the smallest ring does not fit. */
    uint32_t n_batch = r->n_batch;
    if (!n_batch) {
        n_batch = 256;
        while (n_batch > 1 && act_step_sizing_bytes(r, n_batch) > p->budget / 8)
            n_batch /= 2;
        while (n_batch > 1 && need_bytes(r, n_batch, ctx_min) > p->budget)
            n_batch /= 2;
    }
    if (need_bytes(r, n_batch, ctx_min) > p->budget)
        return too_small(r, p, n_batch, ctx_min, err);
    p->n_batch = n_batch;
    p->logits_rows = logits_rows(r, n_batch);

    /* What is left beside the step; every position costs its K and V and its
     * activations (attention scores, the F16 widening scratch). */
    uint64_t left = p->budget - act_step_bytes(r, n_batch);
    uint64_t per_pos = r->kv_bytes_per_pos + r->act_bytes_per_pos;
    uint64_t floor_ring = ring_floor(r);
    uint64_t want = r->ring_want > floor_ring ? r->ring_want : floor_ring;
    uint64_t n_ctx, ring = 0;
    char a[32], b[32];
    if (r->n_ctx) {
        n_ctx = r->n_ctx;
        if (r->n_ctx_train && r->n_ctx > r->n_ctx_train)
            snprintf(p->ctx_source, sizeof p->ctx_source, "-c %u (beyond the trained %u)", r->n_ctx,
                     r->n_ctx_train);
        else
            snprintf(p->ctx_source, sizeof p->ctx_source, "-c %u", r->n_ctx);
    } else if (left >= (uint64_t)ctx_train * per_pos + want + book_bytes(r, want)) {
        /* The whole trained context beside a ring that holds what it wants. */
        n_ctx = ctx_train;
        snprintf(p->ctx_source, sizeof p->ctx_source, "the model's trained context %u", ctx_train);
    } else {
        /* The ring gets a quarter of what is left (within ring_min..ring_want, and
         * never so much that fewer than ctx_min positions remain), the context the
         * rest, in multiples of 256. */
        uint64_t room = left - (uint64_t)ctx_min * per_pos; /* >= ring_floor_bytes: checked above */
        ring = left / 4;
        if (ring > want)
            ring = want;
        if (ring < floor_ring)
            ring = floor_ring;
        if (ring + book_bytes(r, ring) > room)
            ring = ring_in(r, room);
        n_ctx = per_pos ? (left - ring - book_bytes(r, ring)) / per_pos : ctx_train;
        if (n_ctx > ctx_train)
            n_ctx = ctx_train;
        if (n_ctx > 256 && n_ctx < ctx_train)
            n_ctx = n_ctx / 256 * 256;
        if (n_ctx < ctx_min) /* cannot happen: ring <= room */
            n_ctx = ctx_min;
        if (n_ctx == ctx_train) { /* the ring gets what the whole context leaves (below) */
            snprintf(p->ctx_source, sizeof p->ctx_source,
                     "the model's trained context %u (the weight buffer gets less than the %s it would use)",
                     ctx_train, si_format_size(want, a, sizeof a));
        } else {
            snprintf(p->ctx_source, sizeof p->ctx_source,
                     "capped by the budget: the trained %u positions need %s of KV cache", ctx_train,
                     si_format_size((uint64_t)ctx_train * r->kv_bytes_per_pos, b, sizeof b));
        }
    }
    if (r->n_ctx || n_ctx == ctx_train) { /* the ring takes what the context leaves, up to what it can use */
        ring = ring_in(r, left - n_ctx * per_pos);
        if (ring > want)
            ring = want;
    }
    p->n_ctx = (uint32_t)n_ctx;
    p->kv_bytes = n_ctx * r->kv_bytes_per_pos;
    p->act_bytes = act_bytes(r, n_batch, p->n_ctx);
    uint64_t held = p->kv_bytes + p->act_bytes;
    if (held + ring + book_bytes(r, ring) > p->budget) /* capped to want: x + c/x rounds up */
        ring = ring_in(r, p->budget - held);
    p->ring_bytes = ring;
    p->book_bytes = book_bytes(r, ring);
    /* Pins get what the rest leaves beside the KV blocks one full step needs (never
     * part of the minimum: a plan without pins). Beyond those blocks the pool grows
     * into the pins' memory, and they give way (src/model/llama.c, kv_make_room). */
    p->kv_block_cells = r->kv_block_cells;
    p->kv_start_bytes = p->kv_bytes;
    if (r->kv_block_cells) {
        uint64_t cells = ((uint64_t)n_batch + r->kv_block_cells - 1) / r->kv_block_cells * r->kv_block_cells;
        if (cells < n_ctx)
            p->kv_start_bytes = cells * r->kv_bytes_per_pos;
    }
    uint64_t used = p->kv_start_bytes + p->act_bytes + p->ring_bytes + p->book_bytes;
    p->pin_budget = p->budget > used ? p->budget - used : 0;
    if (p->pin_budget > r->pin_max)
        p->pin_budget = r->pin_max;
    return SI_OK;
}

#define PIN_MAX_KINDS 64

typedef struct pin_kind {
    uint32_t kind;
    uint64_t held, saved;
    bool whole;
} pin_kind;

/* Saving per byte held, in steps of 1% (equal steps: the larger kind first). */
static uint64_t pin_rate(const pin_kind *k) { return k->held ? (uint64_t)((double)k->saved / (double)k->held * 100) : 0; }

static bool pin_before(const pin_kind *a, const pin_kind *b)
{
    uint64_t ra = pin_rate(a), rb = pin_rate(b);
    if (ra != rb)
        return ra > rb;
    if (a->held != b->held)
        return a->held > b->held;
    return a->kind < b->kind;
}

uint64_t si_plan_choose_pins(si_pin_unit *u, size_t n, uint64_t budget)
{
    pin_kind kinds[PIN_MAX_KINDS];
    size_t nk = 0;
    for (size_t i = 0; i < n; i++) {
        u[i].chosen = false;
        size_t k = 0;
        while (k < nk && kinds[k].kind != u[i].kind)
            k++;
        if (k == nk) {
            if (nk == PIN_MAX_KINDS)
                continue; /* more kinds than a model has: never pinned */
            kinds[nk++] = (pin_kind){.kind = u[i].kind};
        }
        kinds[k].held += u[i].held;
        kinds[k].saved += u[i].saved;
    }
    for (size_t i = 1; i < nk; i++) /* insertion sort: a dozen kinds */
        for (size_t j = i; j > 0 && pin_before(&kinds[j], &kinds[j - 1]); j--) {
            pin_kind t = kinds[j];
            kinds[j] = kinds[j - 1];
            kinds[j - 1] = t;
        }
    uint64_t left = budget, held = 0;
    uint32_t rank = 0;
    for (size_t k = 0; k < nk; k++) /* whole kinds first */
        if (kinds[k].held <= left) {
            kinds[k].whole = true;
            left -= kinds[k].held;
            for (size_t i = 0; i < n; i++)
                if (u[i].kind == kinds[k].kind) {
                    u[i].chosen = true;
                    u[i].rank = rank++;
                }
        }
    for (size_t k = 0; k < nk; k++) /* then what is left, tensor by tensor */
        if (!kinds[k].whole)
            for (size_t i = 0; i < n; i++)
                if (u[i].kind == kinds[k].kind && u[i].held <= left) {
                    u[i].chosen = true;
                    u[i].rank = rank++;
                    left -= u[i].held;
                }
    for (size_t i = 0; i < n; i++)
        held += u[i].chosen ? u[i].held : 0;
    return held;
}
