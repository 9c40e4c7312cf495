/* Stopping a pass in the middle (si_llama_opts.should_stop, what Ctrl-C sets in
 * stream-infer): asked before each extent of a weight matrix, it stops the pass at the
 * first point it says so; the scheduler asks it too, before each wait for a read. At the library: si_llama_decode returns SI_ESTOPPED
 * naming the tensor it was about to read, gives the step's cells back, and the next step gives exactly the
 * logits of a model never stopped. In the engine: the request in the stopped pass
 * ends SI_FINISH_CANCELLED with the tokens it made before, its cells are freed, and
 * the next request runs as if nothing had happened. Every stop point of a pass is tried. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streaminfer/engine.h"
#include "streaminfer/kv.h"
#include "../test_util.h"

typedef struct stopper {
    int calls;   /* should_stop calls so far */
    int stop_at; /* say true at this call (counted from 1); 0 = never */
} stopper;

static bool should_stop(void *p)
{
    stopper *s = p;
    return ++s->calls == s->stop_at;
}

typedef struct run {
    float *row; /* the first row sampled from */
    uint32_t n_vocab, n_rows, n_tokens;
    si_request_result res;
    bool done;
} run;

static void got_row(void *p, const float *row, uint32_t n_vocab)
{
    run *r = p;
    if (r->n_rows++ == 0)
        memcpy(r->row, row, n_vocab * sizeof *row);
}

static stopper *g_arm; /* when set: after the 2nd token, stop 3 stop points into the next pass */

static bool got_token(void *p, int32_t id)
{
    (void)id;
    if (++((run *)p)->n_tokens == 2 && g_arm)
        g_arm->stop_at = g_arm->calls + 3;
    return true;
}

static void got_done(void *p, const si_request_result *res)
{
    run *r = p;
    r->res = *res;
    r->done = true;
}

/* The 5 prompt tokens at positions 0..4 of sequence 0, the cache emptied first. */
static int step5(si_llama *m, const int32_t *ids, float *out, si_error *err)
{
    static const uint32_t pos[5] = {0, 1, 2, 3, 4};
    static const si_seq_set seq[5] = {SI_SEQ(0), SI_SEQ(0), SI_SEQ(0), SI_SEQ(0), SI_SEQ(0)};
    si_kv_clear(si_llama_kv(m));
    si_batch bt = {.n = 5, .id = ids, .pos = pos, .seq = seq};
    return si_llama_decode(m, &bt, false, out, err);
}

static void one(si_engine *e, run *r, const int32_t *ids, uint32_t n, uint32_t n_predict)
{
    si_request q = {.prompt = ids, .n_prompt = n, .n_predict = n_predict, .on_logits = got_row,
                    .on_token = got_token, .on_done = got_done, .ctx = r};
    si_error err;
    CHECKF(si_engine_submit(e, &q, NULL, &err) == SI_OK, "%s", err.msg);
    while (!r->done) {
        bool idle;
        CHECKF(si_engine_step(e, &idle, &err) == SI_OK, "%s", err.msg); /* a stop is not a failure */
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MKMODEL\n", argv[0]);
        return 2;
    }
    char path[4200];
    test_mkmodel(argv[1], "engine-stop",
                 "--seed 9 --dim 256 --layers 3 --heads 4 --kv-heads 2 --ff 512 --vocab-size 300 --type Q4_K", path,
                 sizeof path);
    stopper st = {0};
    /* pread, one read in flight, 16 KiB reads, one thread: reads complete as they are
     * issued and the scheduler is polled after the same blocks, so the stop points of a
     * pass (the model asks before each extent of a matrix, the scheduler before each wait
     * for one of an extent's several reads) are the same in every run */
    si_llama_opts o = {.n_seq_max = 1, .mem_budget = 64ull << 20, .should_stop = should_stop, .should_stop_ctx = &st,
                       .io = {.kind = SI_IO_PREAD, .queue_depth = 1}, .chunk_bytes = 16384, .n_threads = 1};
    si_llama *m;
    si_error err;
    CHECKF(si_llama_open(&m, path, &o, &err) == SI_OK, "%s", err.msg);
    const uint32_t V = si_llama_hparams_of(m)->n_vocab, L = si_llama_hparams_of(m)->n_layer;
    const int32_t ids[5] = {1, 17, 42, 99, 7};

    /* The library: a step of 5 tokens, stopped at each of a pass's stop points k. */
    float *ref = malloc(V * sizeof(float)), *got = malloc(V * sizeof(float));
    CHECK(ref && got);
    CHECKF(step5(m, ids, ref, &err) == SI_OK, "%s", err.msg);
    const int per_pass = st.calls; /* at least the 7 matrices of each layer and the classifier */
    printf("should_stop asked %d times in a pass\n", per_pass);
    CHECKF(per_pass >= 7 * (int)L + 1, "should_stop asked %d times in a pass of %u layers", per_pass, L);
    uint32_t layers_seen = 0;
    bool classifier_seen = false;
    int waits = 0; /* stops the scheduler made */
    for (int k = 0; k < per_pass; k++) {
        st.calls = 0;
        st.stop_at = k + 1;
        int rc = step5(m, ids, got, &err);
        CHECKF(rc == SI_ESTOPPED, "stop %d: rc %d (%s)", k, rc, err.msg);
        /* "stopped before T" or "stopped waiting for T", T an extent's label: a tensor
         * ("blk.1.attn_q.weight", "output.weight rows ..."), or a layer's small tensors
         * ("layer 1") */
        waits += strstr(err.msg, "stopped waiting for ") != NULL;
        const char *what = strstr(err.msg, "stopped before ") ? err.msg + strlen("stopped before ")
                           : strstr(err.msg, "stopped waiting for ") ? err.msg + strlen("stopped waiting for ")
                                                                      : NULL;
        unsigned layer = 0;
        if (what && (sscanf(what, "blk.%u.", &layer) == 1 || sscanf(what, "layer %u", &layer) == 1) && layer < L)
            layers_seen |= 1u << layer;
        else if (what && (strncmp(what, "output", 6) == 0 || strncmp(what, "token_embd", 10) == 0))
            classifier_seen = true; /* this model's classifier is the embedding matrix */
        else
            CHECKF(0, "stop %d: %s", k, err.msg);
        CHECKF(si_kv_n_free(si_llama_kv(m)) == si_kv_n_cells(si_llama_kv(m)), "stop %d: %u of %u cells free", k,
               si_kv_n_free(si_llama_kv(m)), si_kv_n_cells(si_llama_kv(m)));
        st.stop_at = 0;
        CHECKF(step5(m, ids, got, &err) == SI_OK, "after stop %d: %s", k, err.msg);
        CHECKF(memcmp(ref, got, V * sizeof(float)) == 0, "after stop %d the logits differ", k);
    }
    CHECKF(layers_seen == (1u << L) - 1 && classifier_seen && waits > 0,
           "stop points: layers 0x%x, classifier %d, in the scheduler's waits %d", layers_seen, classifier_seen, waits);
    si_kv_clear(si_llama_kv(m));
    si_llama_stats ls;
    si_llama_get_stats(m, &ls);
    CHECK_EQ_INT(ls.passes_stopped, (uint64_t)per_pass);
    printf("library: stopped at each of the %d stop points of a pass (%d waiting for a read; all %u layers, the "
           "classifier); the next step's logits are the same\n", per_pass, waits, L);

    /* The engine: 4 tokens asked; the pass that feeds token 2 is stopped at its third
     * stop point. */
    si_engine *e;
    si_engine_opts eo = {.n_parallel = 1, .no_prompt_cache = true};
    CHECKF(si_engine_create(&e, m, &eo, &err) == SI_OK, "%s", err.msg);
    run before = {.row = malloc(V * sizeof(float)), .n_vocab = V};
    st.stop_at = 0;
    one(e, &before, ids, 5, 4);
    CHECK(before.res.finish == SI_FINISH_LENGTH && before.n_tokens == 4);
    run cut = {.row = malloc(V * sizeof(float)), .n_vocab = V};
    st.calls = 0;
    st.stop_at = 0;
    g_arm = &st;
    one(e, &cut, ids, 5, 4);
    g_arm = NULL;
    CHECKF(cut.res.finish == SI_FINISH_CANCELLED, "finish %s (%s)", si_finish_name(cut.res.finish), cut.res.error);
    CHECKF(cut.n_tokens == 2 && cut.res.n_generated == 2, "%u tokens, %u generated", cut.n_tokens,
           cut.res.n_generated);
    CHECKF(strstr(cut.res.error, "stopped"), "error: %s", cut.res.error);
    CHECK(memcmp(before.row, cut.row, V * sizeof(float)) == 0); /* the same up to the stop */
    si_engine_stats es;
    si_engine_get_stats(e, &es);
    CHECK_EQ_INT(es.free_cells, es.n_cells);
    CHECK_EQ_INT(es.requests[SI_FINISH_CANCELLED], 1);
    printf("engine: stopped in the pass after token 2 (%s): cancelled with 2 tokens, cells freed\n", cut.res.error);
    run after = {.row = malloc(V * sizeof(float)), .n_vocab = V};
    st.stop_at = 0;
    one(e, &after, ids, 5, 4);
    CHECK(after.res.finish == SI_FINISH_LENGTH && after.n_tokens == 4);
    CHECK(memcmp(before.row, after.row, V * sizeof(float)) == 0);
    printf("engine: the next request runs as before\n");
    si_engine_free(e);
    si_llama_close(m);
    free(ref), free(got), free(before.row), free(cut.row), free(after.row);
    return 0;
}
