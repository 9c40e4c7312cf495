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

uint64_t si_plan_default_budget(char *source, size_t source_len)
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
    /* Keep room for the page cache, the binary and libraries, and the rest of the system. */
    uint64_t margin = base / 8 + (16ull << 20);
    uint64_t budget = base > margin + (16ull << 20) ? base - margin : base / 2;
    if (source) {
        char a[32], b[32];
        snprintf(source, source_len, "%s %s less %s margin", what, si_format_size(base, a, sizeof a),
                 si_format_size(margin, b, sizeof b));
    }
    return budget;
}

static uint64_t act_bytes(const si_plan_req *r, uint32_t n_batch, uint32_t n_ctx);

/* The refusal names the minimum that would work and what it is made of. */
static int too_small(const si_plan_req *r, const si_plan *p, uint32_t ctx_min, si_error *err)
{
    uint64_t act = act_bytes(r, p->n_batch, ctx_min), kv = (uint64_t)ctx_min * r->kv_bytes_per_pos;
    char a[32], b[32], c[32], d[32], e[32];
    return si_errorf(err, SI_EBUDGET,
                     "memory budget %s is too small: at least %s would work (KV cache %s for %u positions, "
                     "activations %s, weight buffer %s)",
                     si_format_size(p->budget, a, sizeof a), si_format_size(act + kv + r->ring_min, b, sizeof b),
                     si_format_size(kv, c, sizeof c), ctx_min, si_format_size(act, d, sizeof d),
                     si_format_size(r->ring_min, e, sizeof e));
}

static uint64_t act_bytes(const si_plan_req *r, uint32_t n_batch, uint32_t n_ctx)
{
    return r->act_fixed_bytes + (uint64_t)n_batch * r->act_bytes_per_token + (uint64_t)n_ctx * r->act_bytes_per_pos +
           (r->all_logits ? n_batch : 1) * r->logits_row_bytes;
}

int si_plan_make(const si_plan_req *r, si_plan *p, si_error *err)
{
    memset(p, 0, sizeof *p);
    if (r->budget) {
        p->budget = r->budget;
        snprintf(p->budget_source, sizeof p->budget_source, "--mem-budget");
    } else {
        p->budget = si_plan_default_budget(p->budget_source, sizeof p->budget_source);
    }
    uint32_t ctx_cap = r->n_ctx ? r->n_ctx : r->n_ctx_train;
    uint32_t ctx_min = r->n_ctx ? r->n_ctx : (r->n_ctx_train < 64 ? r->n_ctx_train : 64);

    /* Batch: up to 256 tokens (or as asked) while activations stay within 1/8 of the budget. */
    uint32_t n_batch = r->n_batch ? r->n_batch : 256;
    if (!r->n_batch)
        while (n_batch > 1 && act_bytes(r, n_batch, ctx_cap) > p->budget / 8)
            n_batch /= 2;
    p->n_batch = n_batch;

    uint64_t act = act_bytes(r, n_batch, ctx_cap);
    uint64_t need_min = act_bytes(r, n_batch, ctx_min) + (uint64_t)ctx_min * r->kv_bytes_per_pos + r->ring_min;
    if (p->budget < need_min)
        return too_small(r, p, ctx_min, err);
    uint64_t avail = p->budget > act ? p->budget - act : 0;
    uint64_t kv_full = (uint64_t)ctx_cap * r->kv_bytes_per_pos;
    uint64_t ring;
    if (r->n_ctx) {
        ring = avail > kv_full ? avail - kv_full : 0;
    } else {
        /* Prefer the whole context when it fits beside a full ring; else give the
         * ring a quarter of what is left and the context the rest. */
        uint64_t rest = avail > kv_full ? avail - kv_full : 0;
        ring = rest > avail / 4 ? rest : avail / 4;
    }
    if (ring > r->ring_want)
        ring = r->ring_want;
    if (ring < r->ring_min)
        ring = r->ring_min;
    if (avail < ring)
        return too_small(r, p, ctx_min, err);
    uint64_t n_ctx = r->kv_bytes_per_pos ? (avail - ring) / r->kv_bytes_per_pos : ctx_cap;
    if (n_ctx > ctx_cap)
        n_ctx = ctx_cap;
    if (n_ctx > 256 && n_ctx < ctx_cap)
        n_ctx = n_ctx / 256 * 256;
    if (n_ctx < ctx_min)
        return too_small(r, p, ctx_min, err);
    p->n_ctx = (uint32_t)n_ctx;
    p->kv_bytes = n_ctx * r->kv_bytes_per_pos;
    p->act_bytes = act_bytes(r, n_batch, p->n_ctx);
    p->ring_bytes = ring;
    return SI_OK;
}
