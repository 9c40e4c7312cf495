/* Drafting changes nothing but the number of passes: with prompt-lookup guesses,
 * lookahead guesses (and their window, evaluated beside them and dropped) and both
 * (auto), alone and batched, every row a request samples from is bit-identical to its
 * run without guesses (so the KV cache after a rejected guess gives the next step the
 * same logits), greedy tokens are the same, -n is never overshot, and seeded sampling
 * repeats itself in each mode. Guesses must really be accepted for this to mean
 * anything: the prompts repeat themselves, a random model loops (so the lookahead
 * window's n-grams come true), and the test requires accepted guesses of each source
 * and fewer passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streaminfer/engine.h"
#include "../test_util.h"

#define MAX_ROWS 96
#define N_REQ 3

typedef struct run {
    uint32_t n_vocab;
    float *rows;
    uint32_t n_rows;
    int32_t toks[MAX_ROWS];
    uint32_t n_toks;
    si_request_result res;
    bool done;
} run;

static bool got_token(void *p, int32_t id)
{
    run *r = p;
    CHECK(r->n_toks < MAX_ROWS);
    r->toks[r->n_toks++] = id;
    return true;
}

static void got_row(void *p, const float *row, uint32_t n_vocab)
{
    run *r = p;
    CHECK(r->n_rows < MAX_ROWS);
    memcpy(r->rows + (size_t)r->n_rows++ * n_vocab, row, n_vocab * sizeof *row);
}

static void got_done(void *p, const si_request_result *res)
{
    run *r = p;
    r->res = *res;
    r->done = true;
}

typedef struct spec {
    uint32_t n_predict;
    float temp;
    uint64_t seed;
} spec;

static const spec specs[N_REQ] = {{40, 0, 0}, {25, 0.8f, 11}, {33, 0, 0}};

/* A prompt that repeats a random phrase, so lookup has something to find. */
static void prompt_of(uint32_t i, uint32_t n_vocab, int32_t *ids, uint32_t *n)
{
    test_rng rng;
    test_rng_seed(&rng, 500 + i);
    int32_t phrase[7];
    for (int k = 0; k < 7; k++)
        phrase[k] = (int32_t)(test_rng_u64(&rng) % n_vocab);
    *n = 0;
    for (int rep = 0; rep < 4; rep++)
        for (int k = 0; k < 7; k++)
            ids[(*n)++] = phrase[k];
}

static void run_all(const char *path, si_draft_mode mode, bool batched, run *out, si_engine_stats *st)
{
    si_llama_opts o = {.n_seq_max = N_REQ, .n_draft_max = 8, .mem_budget = 256ull << 20, .n_ctx = 512};
    si_llama *m;
    si_error err;
    CHECKF(si_llama_open(&m, path, &o, &err) == SI_OK, "%s", err.msg);
    uint32_t V = si_llama_hparams_of(m)->n_vocab;
    si_engine *e;
    /* auto as wide as --draft-max: a compute ratio as small as the K230's */
    si_engine_opts eo = {.n_parallel = N_REQ, .no_prompt_cache = true, .draft_max = 8, .compute_ratio = 0.01};
    CHECKF(si_engine_create(&e, m, &eo, &err) == SI_OK, "%s", err.msg);
    int32_t ids[N_REQ][32];
    uint32_t n[N_REQ];
    for (uint32_t i = 0; i < N_REQ; i++) {
        prompt_of(i, V, ids[i], &n[i]);
        out[i] = (run){.n_vocab = V, .rows = malloc((size_t)MAX_ROWS * V * sizeof(float))};
        si_request q = {.prompt = ids[i], .n_prompt = n[i], .n_predict = specs[i].n_predict,
                        .sampler = {.temp = specs[i].temp, .top_k = 20, .top_p = 0.9f, .min_p = 0.02f,
                                    .repeat_penalty = 1.05f, .repeat_last_n = 8, .seed = specs[i].seed},
                        .draft = mode, .on_token = got_token, .on_logits = got_row, .on_done = got_done,
                        .ctx = &out[i]};
        CHECKF(si_engine_submit(e, &q, NULL, &err) == SI_OK, "%s", err.msg);
        if (!batched)
            CHECKF(si_engine_drain(e, &err) == SI_OK, "%s", err.msg);
    }
    CHECKF(si_engine_drain(e, &err) == SI_OK, "%s", err.msg);
    si_engine_get_stats(e, st);
    CHECK_EQ_INT(st->free_cells, st->n_cells); /* no guess left a cell behind */
    si_engine_free(e);
    si_llama_close(m);
}

static void same(const run *a, const run *b, const char *what)
{
    for (uint32_t i = 0; i < N_REQ; i++) {
        CHECKF(a[i].done && b[i].done, "%s: request %u did not finish", what, i);
        CHECKF(a[i].n_toks == specs[i].n_predict, "%s: request %u made %u tokens, -n %u", what, i, a[i].n_toks,
               specs[i].n_predict);
        CHECKF(a[i].n_toks == b[i].n_toks && memcmp(a[i].toks, b[i].toks, a[i].n_toks * sizeof(int32_t)) == 0,
               "%s: request %u: other tokens than without guesses", what, i);
        if (specs[i].temp > 0)
            continue; /* sampling draws other random numbers with guesses: same law, other tokens */
        CHECKF(a[i].n_rows == b[i].n_rows, "%s: request %u: %u rows vs %u", what, i, a[i].n_rows, b[i].n_rows);
        for (uint32_t k = 0; k < a[i].n_rows; k++)
            CHECKF(memcmp(a[i].rows + (size_t)k * a[i].n_vocab, b[i].rows + (size_t)k * b[i].n_vocab,
                          a[i].n_vocab * sizeof(float)) == 0,
                   "%s: request %u: row %u differs from the run without guesses", what, i, k);
    }
}

static void free_runs(run *r)
{
    for (uint32_t i = 0; i < N_REQ; i++)
        free(r[i].rows);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MKMODEL\n", argv[0]);
        return 2;
    }
    char path[4200];
    test_mkmodel(argv[1], "engine-draft",
                 "--seed 21 --dim 256 --layers 2 --heads 4 --kv-heads 2 --ff 512 --vocab-size 300 --type Q8_0",
                 path, sizeof path);
    run plain[N_REQ], alone[N_REQ], batched[N_REQ], again[N_REQ], la_alone[N_REQ], la_batched[N_REQ],
        au_alone[N_REQ], au_batched[N_REQ];
    si_engine_stats s0, s1, s2, s3, s4, s5, s6, s7;
    run_all(path, SI_DRAFT_NONE, false, plain, &s0);
    run_all(path, SI_DRAFT_LOOKUP, false, alone, &s1);
    run_all(path, SI_DRAFT_LOOKUP, true, batched, &s2);
    run_all(path, SI_DRAFT_LOOKAHEAD, false, la_alone, &s4);
    run_all(path, SI_DRAFT_LOOKAHEAD, true, la_batched, &s5);
    run_all(path, SI_DRAFT_AUTO, false, au_alone, &s6);
    run_all(path, SI_DRAFT_AUTO, true, au_batched, &s7);
    /* greedy: the same tokens and rows; sampled: the law is the same but the random
     * numbers differ, so compare the sampled request with itself across runs */
    for (uint32_t i = 0; i < N_REQ; i++)
        if (specs[i].temp > 0) {
            plain[i].n_toks = alone[i].n_toks;
            memcpy(plain[i].toks, alone[i].toks, sizeof plain[i].toks);
        }
    same(alone, plain, "lookup alone");
    same(batched, alone, "lookup batched");
    /* the sampled request draws its own random numbers in each mode */
    for (uint32_t i = 0; i < N_REQ; i++)
        if (specs[i].temp > 0) {
            plain[i].n_toks = la_alone[i].n_toks;
            memcpy(plain[i].toks, la_alone[i].toks, sizeof plain[i].toks);
            au_alone[i].n_toks = la_alone[i].n_toks;
            memcpy(au_alone[i].toks, la_alone[i].toks, sizeof au_alone[i].toks);
        }
    same(la_alone, plain, "lookahead alone");
    same(la_batched, la_alone, "lookahead batched");
    same(au_alone, plain, "auto alone");
    for (uint32_t i = 0; i < N_REQ; i++)
        if (specs[i].temp > 0) {
            au_alone[i].n_toks = au_batched[i].n_toks;
            memcpy(au_alone[i].toks, au_batched[i].toks, sizeof au_alone[i].toks);
        }
    same(au_batched, au_alone, "auto batched");
    const int LA = SI_DRAFT_SRC_LOOKAHEAD, LU = SI_DRAFT_SRC_LOOKUP;
    CHECKF(s4.lookahead_window > 0 && s5.lookahead_window > 0 && s1.lookahead_window == 0,
           "lookahead windows: %lu, %lu (lookup: %lu)", (unsigned long)s4.lookahead_window,
           (unsigned long)s5.lookahead_window, (unsigned long)s1.lookahead_window);
    CHECKF(s4.draft_src_accepted[LA] > 0 && s5.draft_src_accepted[LA] > 0 && s4.draft_src_proposed[LU] == 0,
           "no lookahead guess was accepted (%lu, %lu of %lu)", (unsigned long)s4.draft_src_accepted[LA],
           (unsigned long)s5.draft_src_accepted[LA], (unsigned long)s4.draft_src_proposed[LA]);
    CHECKF(s4.passes < s0.passes, "lookahead saved no pass: %lu vs %lu", (unsigned long)s4.passes,
           (unsigned long)s0.passes);
    CHECKF(s1.draft_src_accepted[LU] == s1.draft_accepted && s1.draft_src_proposed[LA] == 0,
           "lookup alone: sources %lu + %lu accepted of %lu", (unsigned long)s1.draft_src_accepted[LU],
           (unsigned long)s1.draft_src_accepted[LA], (unsigned long)s1.draft_accepted);
    CHECKF(s7.draft_src_accepted[LU] + s7.draft_src_accepted[LA] == s7.draft_accepted &&
               s7.draft_src_proposed[LU] + s7.draft_src_proposed[LA] == s7.draft_proposed,
           "auto: the sources do not add up");
    CHECKF(s7.draft_src_accepted[LU] > 0 && s7.lookahead_window > 0, "auto: lookup accepted %lu, window %lu",
           (unsigned long)s7.draft_src_accepted[LU], (unsigned long)s7.lookahead_window);
    CHECKF(s1.draft_accepted > 0 && s2.draft_accepted > 0, "no guess was accepted (%lu, %lu of %lu)",
           (unsigned long)s1.draft_accepted, (unsigned long)s2.draft_accepted, (unsigned long)s1.draft_proposed);
    CHECKF(s1.passes < s0.passes, "guesses saved no pass: %lu vs %lu", (unsigned long)s1.passes,
           (unsigned long)s0.passes);
    /* a fixed seed repeats itself with guesses */
    run_all(path, SI_DRAFT_LOOKUP, true, again, &s3);
    same(again, batched, "lookup batched, again");
    printf("passes: %lu without guesses, %lu alone with lookup, %lu batched (%lu of %lu guesses accepted)\n",
           (unsigned long)s0.passes, (unsigned long)s1.passes, (unsigned long)s2.passes,
           (unsigned long)s2.draft_accepted, (unsigned long)s2.draft_proposed);
    printf("lookahead: %lu passes alone, %lu batched (%lu of %lu guesses accepted, %lu window tokens)\n",
           (unsigned long)s4.passes, (unsigned long)s5.passes, (unsigned long)s5.draft_src_accepted[LA],
           (unsigned long)s5.draft_src_proposed[LA], (unsigned long)s5.lookahead_window);
    printf("auto: %lu passes alone, %lu batched (lookup %lu of %lu, lookahead %lu of %lu accepted)\n",
           (unsigned long)s6.passes, (unsigned long)s7.passes, (unsigned long)s7.draft_src_accepted[LU],
           (unsigned long)s7.draft_src_proposed[LU], (unsigned long)s7.draft_src_accepted[LA],
           (unsigned long)s7.draft_src_proposed[LA]);
    free_runs(plain), free_runs(alone), free_runs(batched), free_runs(again);
    free_runs(la_alone), free_runs(la_batched), free_runs(au_alone), free_runs(au_batched);
    return 0;
}
