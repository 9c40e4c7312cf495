/* si_plan_make: the minimum a refusal names is exactly the smallest budget that is
 * accepted (that budget succeeds, one KiB or one byte less is refused with the same
 * minimum), and acceptance is monotone in the budget; every accepted plan fits in its
 * budget. For the micro fixtures' shape, long-context models and the 8B shape, with
 * the default context, -c, a given step size and the logits options. */
#include "plan_test.h"

typedef struct variant {
    const char *name;
    uint32_t n_ctx, n_batch, logits_rows;
    bool all_tokens;
} variant;

static const variant variants[] = {
    {"default", 0, 0, 0, false},      {"-c 4096", 4096, 0, 0, false},
    {"-c 100", 100, 0, 0, false},     {"-b 32", 0, 32, 0, false},
    {"-b 7 -c 300", 300, 7, 0, false}, {"all logits", 0, 0, 0, true},
    {"4 logits rows", 0, 0, 4, false},
};

static void check_plan(const char *what, const si_plan_req *r, const si_plan *p)
{
    CHECKF(p->act_bytes + p->kv_bytes + p->ring_bytes <= p->budget, "%s: plan exceeds its budget", what);
    CHECKF(p->ring_bytes >= r->ring_min, "%s: ring %" PRIu64 " below ring_min", what, p->ring_bytes);
    uint64_t want = r->ring_want > r->ring_min ? r->ring_want : r->ring_min;
    CHECKF(p->ring_bytes <= want, "%s: ring above what it can use", what);
    CHECKF(p->kv_bytes == (uint64_t)p->n_ctx * r->kv_bytes_per_pos, "%s: KV bytes", what);
    uint32_t rows = r->logits_all_tokens ? p->n_batch : (r->logits_rows ? r->logits_rows : 1);
    if (rows > p->n_batch)
        rows = p->n_batch;
    CHECK_EQ_INT(p->logits_rows, rows);
    uint64_t act = r->act_fixed_bytes + (uint64_t)p->n_batch * r->act_bytes_per_token +
                   (uint64_t)p->n_ctx * r->act_bytes_per_pos + (uint64_t)rows * r->logits_row_bytes;
    CHECKF(p->act_bytes == act, "%s: activations %" PRIu64 ", expected %" PRIu64, what, p->act_bytes, act);
    if (r->n_ctx) {
        CHECK_EQ_INT(p->n_ctx, r->n_ctx);
    } else {
        uint32_t ctx_min = r->n_ctx_train < 64 ? r->n_ctx_train : 64;
        CHECKF(p->n_ctx >= ctx_min && p->n_ctx <= r->n_ctx_train, "%s: n_ctx %u", what, p->n_ctx);
    }
    if (r->n_batch)
        CHECK_EQ_INT(p->n_batch, r->n_batch);
    else
        CHECKF(p->n_batch >= 1 && p->n_batch <= 256 && !(p->n_batch & (p->n_batch - 1)), "%s: n_batch %u", what,
               p->n_batch);
    CHECKF(p->ctx_source[0], "%s: no ctx_source", what);
}

static uint64_t refused_minimum(const char *what, si_plan_req r, uint64_t budget)
{
    si_plan p;
    si_error err;
    r.budget = budget;
    int rc = si_plan_make(&r, &p, &err);
    CHECKF(rc == SI_EBUDGET, "%s: budget %" PRIu64 " not refused (rc %d)", what, budget, rc);
    uint64_t min = plan_named_minimum(err.msg);
    CHECKF(min > 0, "%s: the refusal names no minimum in bytes: %s", what, err.msg);
    return min;
}

int main(void)
{
    int n = 0;
    for (size_t s = 0; s < N_PLAN_SHAPES; s++) {
        for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
            char what[160];
            snprintf(what, sizeof what, "%s, %s", plan_shapes[s].name, variants[v].name);
            si_plan_req r = plan_req_for(&plan_shapes[s], 0);
            r.n_ctx = variants[v].n_ctx;
            r.n_batch = variants[v].n_batch;
            r.logits_rows = variants[v].logits_rows;
            r.logits_all_tokens = variants[v].all_tokens;

            uint64_t min = refused_minimum(what, r, 1024);
            si_plan p;
            si_error err;
            r.budget = min;
            CHECKF(si_plan_make(&r, &p, &err) == SI_OK, "%s: the named minimum %" PRIu64 " is refused: %s", what,
                   min, err.msg);
            check_plan(what, &r, &p);
            if (!r.n_batch)
                CHECK_EQ_INT(p.n_batch, 1); /* the minimum is for a 1-token step */
            CHECK_EQ_INT(refused_minimum(what, r, min - 1024), min);
            CHECK_EQ_INT(refused_minimum(what, r, min - 1), min);

            /* Monotone: everything from the minimum up is accepted. */
            const uint64_t more[] = {min + 1, min + 4096, min * 3 / 2, min * 2 + 12345, min * 8, 376ull << 20,
                                     448ull << 20, 2ull << 30, 64ull << 30};
            for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
                r.budget = more[i];
                int rc = si_plan_make(&r, &p, &err);
                if (more[i] < min) {
                    CHECKF(rc == SI_EBUDGET, "%s: %" PRIu64 " below the minimum accepted", what, more[i]);
                    continue;
                }
                CHECKF(rc == SI_OK, "%s: budget %" PRIu64 " >= minimum %" PRIu64 " refused: %s", what, more[i], min,
                       err.msg);
                check_plan(what, &r, &p);
            }
            n++;
        }
    }
    printf("%d plan requests: the named minimum is accepted, one KiB less refused\n", n);
    return 0;
}
