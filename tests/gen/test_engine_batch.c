/* The batch engine against each request run alone: every logits row a request
 * samples from is bit-identical whatever shares its passes (prompts of different
 * lengths, prompts longer than a step, requests that end at different times and ones
 * that join mid-flight), seeded sampling gives the same tokens, a shared prompt
 * prefix is evaluated once and gives the same rows, a cancelled request frees its
 * cells, and a sequence that runs out of cells ends with "length" alone.
 * "Alone" is itself checked against si_llama_eval, which engine-vs-ref checks against
 * the reference forward pass. Runs on mkmodel models with an F16 and an F32 cache. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "streaminfer/engine.h"
#include "../test_util.h"

#define MAX_ROWS 64
#define N_REQ 5

typedef struct run {
    uint32_t n_vocab;
    float *rows;        /* [MAX_ROWS][n_vocab] rows sampled from */
    uint32_t n_rows;
    int32_t toks[MAX_ROWS];
    uint32_t n_toks;
    si_request_result res;
    bool done;
} run;

static bool got_token(void *p, int32_t id)
{
    run *r = p;
    if (r->n_toks < MAX_ROWS)
        r->toks[r->n_toks++] = id;
    return true;
}

static void got_row(void *p, const float *row, uint32_t n_vocab)
{
    run *r = p;
    CHECK(n_vocab == r->n_vocab);
    if (r->n_rows < MAX_ROWS)
        memcpy(r->rows + (size_t)r->n_rows++ * n_vocab, row, n_vocab * sizeof *row);
}

static void got_done(void *p, const si_request_result *res)
{
    run *r = p;
    CHECK(!r->done); /* exactly once */
    r->res = *res;
    r->done = true;
}

typedef struct spec {
    uint32_t n_prompt, n_predict;
    float temp;
    uint64_t seed;
    uint32_t join_after; /* passes of the batch before it is submitted */
} spec;

static si_llama *open_model(const char *path, si_kv_type kv, uint32_t n_batch, uint32_t n_ctx)
{
    si_llama_opts o = {.kv_type = kv, .n_batch = n_batch, .n_ctx = n_ctx, .n_seq_max = 8, .mem_budget = 256ull << 20};
    si_llama *m;
    si_error err;
    CHECKF(si_llama_open(&m, path, &o, &err) == SI_OK, "open %s: %s", path, err.msg);
    return m;
}

static void prompt_of(const spec *s, uint32_t i, uint32_t n_vocab, int32_t *ids)
{
    test_rng rng;
    test_rng_seed(&rng, 1000 + i);
    for (uint32_t k = 0; k < s->n_prompt; k++)
        ids[k] = (int32_t)(test_rng_u64(&rng) % n_vocab);
}

static si_request request_of(const spec *s, const int32_t *ids, run *r)
{
    si_request q = {.prompt = ids, .n_prompt = s->n_prompt, .n_predict = s->n_predict,
                    .sampler = {.temp = s->temp, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.1f,
                                .repeat_last_n = 16, .seed = s->seed},
                    .on_token = got_token, .on_logits = got_row, .on_done = got_done, .ctx = r};
    return q;
}

static void same_run(const run *a, const run *b, const char *what, uint32_t i)
{
    CHECKF(a->n_toks == b->n_toks, "%s: request %u made %u tokens batched, %u alone", what, i, a->n_toks, b->n_toks);
    CHECKF(memcmp(a->toks, b->toks, a->n_toks * sizeof *a->toks) == 0, "%s: request %u: other tokens", what, i);
    CHECKF(a->n_rows == b->n_rows, "%s: request %u: %u rows vs %u", what, i, a->n_rows, b->n_rows);
    for (uint32_t k = 0; k < a->n_rows; k++)
        CHECKF(memcmp(a->rows + (size_t)k * a->n_vocab, b->rows + (size_t)k * b->n_vocab,
                      a->n_vocab * sizeof(float)) == 0,
               "%s: request %u: logits row %u differs from its run alone", what, i, k);
    CHECKF(a->res.finish == b->res.finish, "%s: request %u: finish %s vs %s", what, i, si_finish_name(a->res.finish),
           si_finish_name(b->res.finish));
}

static void check_model(const char *path, si_kv_type kv_type)
{
    const char *kvn = kv_type == SI_KV_F16 ? "f16" : kv_type == SI_KV_F32 ? "f32" : "q8_0";
    /* Steps of 16 tokens: the 40- and 70-token prompts take several passes. */
    const spec specs[N_REQ] = {
        {.n_prompt = 5, .n_predict = 12, .temp = 0},
        {.n_prompt = 40, .n_predict = 6, .temp = 0.9f, .seed = 42},
        {.n_prompt = 1, .n_predict = 20, .temp = 0.7f, .seed = 7},
        {.n_prompt = 70, .n_predict = 3, .temp = 0},
        {.n_prompt = 9, .n_predict = 10, .temp = 1.0f, .seed = 3, .join_after = 3}, /* joins mid-flight */
    };
    si_llama *m = open_model(path, kv_type, 16, 512);
    uint32_t V = si_llama_hparams_of(m)->n_vocab;
    int32_t ids[N_REQ][128];
    run alone[N_REQ], batched[N_REQ];
    for (uint32_t i = 0; i < N_REQ; i++) {
        prompt_of(&specs[i], i, V, ids[i]);
        alone[i] = (run){.n_vocab = V, .rows = malloc((size_t)MAX_ROWS * V * sizeof(float))};
        batched[i] = (run){.n_vocab = V, .rows = malloc((size_t)MAX_ROWS * V * sizeof(float))};
    }
    si_error err;
    si_engine *e;
    /* Alone: one request at a time, no prompt cache. */
    si_engine_opts eo = {.n_parallel = 1, .no_prompt_cache = true};
    CHECKF(si_engine_create(&e, m, &eo, &err) == SI_OK, "%s", err.msg);
    for (uint32_t i = 0; i < N_REQ; i++) {
        si_request q = request_of(&specs[i], ids[i], &alone[i]);
        CHECKF(si_engine_submit(e, &q, NULL, &err) == SI_OK, "%s", err.msg);
        CHECKF(si_engine_drain(e, &err) == SI_OK, "%s", err.msg);
        CHECK(alone[i].done && alone[i].res.finish == SI_FINISH_LENGTH);
        CHECK_EQ_INT(alone[i].n_toks, specs[i].n_predict);
        CHECK_EQ_INT(alone[i].n_rows, specs[i].n_predict);
    }
    si_engine_free(e);
    si_llama_close(m);

    /* Alone agrees with si_llama_eval's prompt row (the path engine-vs-ref checks). */
    {
        si_llama *m2 = open_model(path, kv_type, 16, 512);
        float *row = malloc(V * sizeof(float));
        CHECKF(si_llama_eval(m2, ids[3], specs[3].n_prompt, false, row, &err) == SI_OK, "%s", err.msg);
        CHECKF(memcmp(row, alone[3].rows, V * sizeof(float)) == 0, "%s: the engine's row differs from si_llama_eval's", kvn);
        free(row);
        si_llama_close(m2);
    }

    /* Batched: four at once (up to --parallel 4), the fifth joins after 3 passes. */
    m = open_model(path, kv_type, 16, 512);
    eo = (si_engine_opts){.n_parallel = 4};
    CHECKF(si_engine_create(&e, m, &eo, &err) == SI_OK, "%s", err.msg);
    for (uint32_t i = 0; i < N_REQ; i++)
        if (!specs[i].join_after) {
            si_request q = request_of(&specs[i], ids[i], &batched[i]);
            CHECKF(si_engine_submit(e, &q, NULL, &err) == SI_OK, "%s", err.msg);
        }
    uint32_t passes = 0;
    bool joined = false;
    for (;;) {
        bool idle;
        CHECKF(si_engine_step(e, &idle, &err) == SI_OK, "%s", err.msg);
        passes += !idle;
        if (!joined && passes == specs[4].join_after) {
            si_request q = request_of(&specs[4], ids[4], &batched[4]);
            CHECKF(si_engine_submit(e, &q, NULL, &err) == SI_OK, "%s", err.msg);
            joined = true;
        }
        if (idle && joined)
            break;
    }
    for (uint32_t i = 0; i < N_REQ; i++) {
        CHECKF(batched[i].done, "%s: request %u never finished", kvn, i);
        same_run(&batched[i], &alone[i], kvn, i);
    }
    si_engine_stats st;
    si_engine_get_stats(e, &st);
    uint32_t gen = 0, prompt = 0;
    for (uint32_t i = 0; i < N_REQ; i++)
        gen += specs[i].n_predict, prompt += specs[i].n_prompt;
    CHECK_EQ_INT(st.tokens_generated, gen);
    /* Fed back: every produced token but each request's last. */
    CHECK_EQ_INT(st.tokens_evaluated, prompt + gen - N_REQ);
    CHECK_EQ_INT(st.requests[SI_FINISH_LENGTH], N_REQ);
    CHECK_EQ_INT(st.active, 0);
    /* The model's figures as the engine publishes them for other threads: those of
     * the model itself once the engine is idle, taken after the last pass. */
    {
        si_llama_stats now, pub;
        si_sched_file_stats files[SI_SCHED_MAX_FILES];
        uint32_t n_files = 99;
        si_llama_get_stats(m, &now);
        si_engine_get_model_stats(e, &pub, files, SI_SCHED_MAX_FILES, &n_files);
        CHECK_EQ_INT(pub.tokens_evaluated, now.tokens_evaluated);
        CHECK_EQ_INT(pub.tokens_evaluated, st.tokens_evaluated);
        CHECK_EQ_INT(pub.io_bytes_read, now.io_bytes_read);
        CHECK(pub.io_bytes_read > 0 && pub.pass_s == now.pass_s);
        CHECK_EQ_INT(n_files, si_llama_n_files(m));
        si_sched_file_stats f0;
        si_llama_file_stats(m, 0, &f0);
        CHECK_EQ_INT(files[0].io_bytes_read, f0.io_bytes_read);
        si_engine_get_model_stats(e, &pub, files, 0, &n_files); /* room for none: none copied */
        CHECK_EQ_INT(n_files, 0);
    }
    /* Sharing passes: far fewer than run one after another. */
    uint32_t serial = 0;
    for (uint32_t i = 0; i < N_REQ; i++)
        serial += (specs[i].n_prompt + 15) / 16 + specs[i].n_predict - 1;
    CHECKF(st.passes < serial * 2 / 3, "%s: %lu passes batched, %u one after another", kvn,
           (unsigned long)st.passes, serial);
    printf("%s: %u requests batched bit-identical to alone; %lu passes (alone: %u); %.2f tokens generated per pass\n",
           kvn, N_REQ, (unsigned long)st.passes, serial, (double)st.tokens_generated / (double)st.passes);

    /* A prompt that starts with a finished request's tokens shares its cells: only
     * the rest is evaluated, and the rows are those of the run alone. */
    {
        run again = {.n_vocab = V, .rows = malloc((size_t)MAX_ROWS * V * sizeof(float))};
        si_request q = request_of(&specs[3], ids[3], &again);
        si_engine_get_stats(e, &st);
        uint64_t evaluated = st.tokens_evaluated;
        CHECKF(si_engine_submit(e, &q, NULL, &err) == SI_OK, "%s", err.msg);
        CHECKF(si_engine_drain(e, &err) == SI_OK, "%s", err.msg);
        same_run(&again, &alone[3], "prompt cache", 3);
        CHECKF(again.res.n_cached == specs[3].n_prompt - 1, "%s: %u of %u prompt tokens came from the cache", kvn,
               again.res.n_cached, specs[3].n_prompt);
        si_engine_get_stats(e, &st);
        CHECK_EQ_INT(st.tokens_evaluated - evaluated, 1 + specs[3].n_predict - 1);
        free(again.rows);
    }

    /* Cancelling: the request ends "cancelled" and its cells are free in the next pass. */
    {
        run c = {.n_vocab = V, .rows = malloc((size_t)MAX_ROWS * V * sizeof(float))};
        spec s = {.n_prompt = 30, .n_predict = 40};
        int32_t cid[30];
        prompt_of(&s, 99, V, cid);
        si_request q = request_of(&s, cid, &c);
        uint64_t id;
        CHECKF(si_engine_submit(e, &q, &id, &err) == SI_OK, "%s", err.msg);
        bool idle;
        for (int k = 0; k < 4; k++)
            CHECKF(si_engine_step(e, &idle, &err) == SI_OK, "%s", err.msg);
        si_kv *kv = si_llama_kv(m);
        uint32_t seq_cells = 0;
        for (uint32_t s2 = 0; s2 < SI_MAX_SEQ; s2++) /* its 30 prompt tokens and 2 fed back */
            if (si_kv_seq_pos_max(kv, s2) == 31)
                seq_cells = si_kv_n_used_by(kv, SI_SEQ(s2));
        CHECKF(seq_cells >= 30, "%s: the running request holds %u cells", kvn, seq_cells);
        uint32_t free_before = si_kv_n_free(kv);
        si_engine_cancel(e, id);
        CHECKF(si_engine_step(e, &idle, &err) == SI_OK, "%s", err.msg);
        CHECK(c.done && c.res.finish == SI_FINISH_CANCELLED);
        CHECKF(si_kv_n_free(kv) == free_before + seq_cells, "%s: cancel freed %u of %u cells", kvn,
               si_kv_n_free(kv) - free_before, seq_cells);
        free(c.rows);
    }
    si_engine_free(e);
    si_llama_close(m);

    /* Out of cells: with 64 cells, a request that wants more ends "length" by itself,
     * and one running beside it is unharmed. */
    {
        m = open_model(path, kv_type, 16, 64);
        eo = (si_engine_opts){.n_parallel = 2, .reserve = 1, .no_prompt_cache = true};
        CHECKF(si_engine_create(&e, m, &eo, &err) == SI_OK, "%s", err.msg);
        run big = {.n_vocab = V, .rows = malloc((size_t)MAX_ROWS * V * sizeof(float))};
        run small = {.n_vocab = V, .rows = malloc((size_t)MAX_ROWS * V * sizeof(float))};
        spec sb = {.n_prompt = 40, .n_predict = SI_N_PREDICT_ALL}, ss = specs[0];
        int32_t bid[40];
        prompt_of(&sb, 77, V, bid);
        si_request qb = request_of(&sb, bid, &big), qs = request_of(&ss, ids[0], &small);
        CHECKF(si_engine_submit(e, &qb, NULL, &err) == SI_OK, "%s", err.msg);
        CHECKF(si_engine_submit(e, &qs, NULL, &err) == SI_OK, "%s", err.msg);
        CHECKF(si_engine_drain(e, &err) == SI_OK, "%s", err.msg);
        CHECK(big.done && big.res.finish == SI_FINISH_LENGTH);
        CHECKF(big.res.n_generated > 5, "%s: the big request made only %u tokens", kvn, big.res.n_generated);
        same_run(&small, &alone[0], "beside a full pool", 0);
        /* A prompt that can never fit is refused at once, with a reason. */
        int32_t huge[64] = {0};
        si_request qh = {.prompt = huge, .n_prompt = 64, .n_predict = 1};
        CHECK(si_engine_submit(e, &qh, NULL, &err) == SI_EINVAL && strstr(err.msg, "context"));
        free(big.rows);
        free(small.rows);
        si_engine_free(e);
        si_llama_close(m);
    }
    for (uint32_t i = 0; i < N_REQ; i++)
        free(alone[i].rows), free(batched[i].rows);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MKMODEL\n", argv[0]);
        return 2;
    }
    char path[4200];
    test_mkmodel(argv[1], "engine-batch",
                 "--seed 5 --dim 256 --layers 2 --heads 4 --kv-heads 2 --ff 512 --vocab-size 300 --type Q4_K "
                 "--tensor-type output=Q6_K --tensor-type ffn_down=Q8_0",
                 path, sizeof path);
    check_model(path, SI_KV_F16);
    check_model(path, SI_KV_F32);
    check_model(path, SI_KV_Q8_0);
    return 0;
}
