/* si_plan_make: the step size does not depend on the trained context (the same for
 * a 2048- and a 131072-context model of the same shape at 376 and 448 MiB), the
 * default context is the trained one when it fits and is capped by the budget
 * otherwise (ctx_source says which), and a -c the budget cannot hold is refused with
 * its minimum and the largest -c that fits. */
#include "plan_test.h"

static si_plan plan_ok(const si_plan_req *r, const char *what)
{
    si_plan p;
    si_error err;
    int rc = si_plan_make(r, &p, &err);
    CHECKF(rc == SI_OK, "%s: refused: %s", what, err.msg);
    return p;
}

int main(void)
{
    const uint64_t budgets[] = {376ull << 20, 448ull << 20};
    /* pairs of the same shape: [0] 2048 (or 8192) and [1] 131072 trained positions */
    const size_t pairs[][2] = {{0, 1}, {2, 3}, {4, 5}};
    for (size_t b = 0; b < 2; b++) {
        for (size_t i = 0; i < 3; i++) {
            const shape *s0 = &plan_shapes[pairs[i][0]], *s1 = &plan_shapes[pairs[i][1]];
            si_plan_req r0 = plan_req_for(s0, budgets[b]), r1 = plan_req_for(s1, budgets[b]);
            si_plan p0 = plan_ok(&r0, s0->name), p1 = plan_ok(&r1, s1->name);
            printf("%s / %s at %" PRIu64 " MiB: n_batch %u / %u, n_ctx %u / %u (%s)\n", s0->name, s1->name,
                   budgets[b] >> 20, p0.n_batch, p1.n_batch, p0.n_ctx, p1.n_ctx, p1.ctx_source);
            CHECKF(p0.n_batch == p1.n_batch, "%s and %s: step sizes %u and %u differ", s0->name, s1->name,
                   p0.n_batch, p1.n_batch);
            CHECKF(p1.n_batch >= 64, "%s at %" PRIu64 " MiB: a step of only %u tokens", s1->name, budgets[b] >> 20,
                   p1.n_batch);
            /* With its whole trained context the small shapes' 2048 fits; 131072 does not. */
            if (s0->ctx_train == 2048) {
                CHECK_EQ_INT(p0.n_ctx, 2048);
                CHECK_EQ_STR(p0.ctx_source, "the model's trained context 2048");
            }
            if (p1.n_ctx < s1->ctx_train) {
                CHECKF(strstr(p1.ctx_source, "capped by the budget: the trained 131072 positions need "),
                       "ctx_source: %s", p1.ctx_source);
                CHECKF(p1.n_ctx % 256 == 0, "capped context %u not a multiple of 256", p1.n_ctx);
            }
        }
    }

    /* The 512-wide 131072-context model at 376 MiB holds its whole context. */
    si_plan_req r = plan_req_for(&plan_shapes[3], 376ull << 20);
    si_plan p = plan_ok(&r, "dim 512 ctx 131072 at 376 MiB");
    CHECK_EQ_INT(p.n_ctx, 131072);
    CHECK_EQ_INT(p.n_batch, 256);

    /* -c too big for the budget: refused with the minimum and the largest -c that fits. */
    r = plan_req_for(&plan_shapes[5], 448ull << 20);
    r.n_ctx = 131072;
    si_error err;
    CHECK_EQ_INT(si_plan_make(&r, &p, &err), SI_EBUDGET);
    printf("8B -c 131072 at 448 MiB: %s\n", err.msg);
    CHECKF(strstr(err.msg, "too small for -c 131072") && strstr(err.msg, "this budget allows at most -c "),
           "unclear refusal: %s", err.msg);
    uint64_t min = plan_named_minimum(err.msg);
    CHECKF(min > (16ull << 30), "-c 131072 of an 8B needs 16 GiB of KV cache; named %" PRIu64, min);
    unsigned most = 0;
    CHECK(sscanf(strstr(err.msg, "at most -c ") + strlen("at most -c "), "%u", &most) == 1);
    r.n_ctx = most;
    p = plan_ok(&r, "the largest -c the refusal names");
    CHECK_EQ_INT(p.n_ctx, most);
    CHECKF(!strncmp(p.ctx_source, "-c ", 3), "ctx_source: %s", p.ctx_source);
    r.n_ctx = most + 1;
    CHECK_EQ_INT(si_plan_make(&r, &p, &err), SI_EBUDGET);

    /* A -c the budget holds with a full step keeps the full step; a tight one shrinks it. */
    r.n_ctx = 1024;
    p = plan_ok(&r, "8B -c 1024 at 448 MiB");
    CHECK_EQ_INT(p.n_batch, 256);
    r.n_ctx = most;
    p = plan_ok(&r, "8B -c most at 448 MiB");
    CHECKF(p.n_batch < 256, "-c %u at 448 MiB keeps a %u-token step", most, p.n_batch);
    printf("-c %u: n_batch %u\n", most, p.n_batch);

    /* 8 sequences drafting 8 tokens each: their 72 logits rows (37 MB for the 8B) are
     * held in the budget but do not shrink the step below that of 8 rows, one per
     * sequence; and the step's activations (without the context's) are exactly 64
     * rows larger. */
    r = plan_req_for(&plan_shapes[4], 448ull << 20);
    r.logits_rows = 8;
    si_plan p8 = plan_ok(&r, "8B, 8 sequences, no drafts");
    r.logits_rows = 8 * (1 + 8);
    r.logits_rows_step = 8;
    si_plan p72 = plan_ok(&r, "8B, 8 sequences drafting 8");
    printf("8B at 448 MiB, 8 sequences: n_batch %u without drafts, %u drafting 8\n", p8.n_batch, p72.n_batch);
    CHECK_EQ_INT(p72.n_batch, p8.n_batch);
    CHECK_EQ_INT(p72.logits_rows, 72);
    uint64_t step8 = p8.act_bytes - (uint64_t)p8.n_ctx * r.act_bytes_per_pos;
    uint64_t step72 = p72.act_bytes - (uint64_t)p72.n_ctx * r.act_bytes_per_pos;
    CHECKF(step72 - step8 == 64 * r.logits_row_bytes,
           "step activations %" PRIu64 " and %" PRIu64 " differ by other than 64 logits rows", step72, step8);
    CHECKF(p8.n_batch >= 128, "8 sequences at 448 MiB: a step of only %u tokens", p8.n_batch);
    /* Counted by the rule (logits_rows_step unset), the same rows halve the step: the
     * rule above is what keeps it. */
    r.logits_rows_step = 0;
    si_plan pall = plan_ok(&r, "8B, 72 rows all counted");
    CHECKF(pall.n_batch < p8.n_batch, "72 rows counted: n_batch %u, not below %u", pall.n_batch, p8.n_batch);
    return 0;
}
