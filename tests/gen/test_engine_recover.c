/* A pass that fails (the model file shrinks under the engine: reads come up short)
 * ends the requests in it with SI_FINISH_ERROR and a message naming the read, frees
 * their cells, and the engine goes on: once the file is whole again the next request
 * gives the same logits as before the failure. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "streaminfer/engine.h"
#include "../test_util.h"

typedef struct run {
    float *row; /* the first row sampled from */
    uint32_t n_vocab, n_rows;
    si_request_result res;
    bool done;
} run;

static void got_row(void *p, const float *row, uint32_t n_vocab)
{
    run *r = p;
    if (r->n_rows++ == 0)
        memcpy(r->row, row, n_vocab * sizeof *row);
}

static void got_done(void *p, const si_request_result *res)
{
    run *r = p;
    r->res = *res;
    r->done = true;
}

static void one(si_engine *e, run *r, const int32_t *ids, uint32_t n)
{
    si_request q = {.prompt = ids, .n_prompt = n, .n_predict = 3, .on_logits = got_row, .on_done = got_done, .ctx = r};
    si_error err;
    CHECKF(si_engine_submit(e, &q, NULL, &err) == SI_OK, "%s", err.msg);
    while (!r->done) {
        bool idle;
        si_engine_step(e, &idle, &err); /* a failed pass is reported through the request */
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MKMODEL\n", argv[0]);
        return 2;
    }
    char path[4200];
    test_mkmodel(argv[1], "engine-recover",
                 "--seed 9 --dim 256 --layers 2 --heads 4 --kv-heads 2 --ff 512 --vocab-size 300 --type Q4_K", path,
                 sizeof path);
    size_t len;
    uint8_t *whole = test_read_file(path, &len);
    CHECK(whole);

    si_llama_opts o = {.n_seq_max = 2, .mem_budget = 64ull << 20};
    si_llama *m;
    si_error err;
    CHECKF(si_llama_open(&m, path, &o, &err) == SI_OK, "%s", err.msg);
    uint32_t V = si_llama_hparams_of(m)->n_vocab;
    si_engine *e;
    si_engine_opts eo = {.n_parallel = 2, .no_prompt_cache = true};
    CHECKF(si_engine_create(&e, m, &eo, &err) == SI_OK, "%s", err.msg);
    int32_t ids[6] = {1, 17, 42, 99, 7, 250};
    run before = {.row = malloc(V * sizeof(float)), .n_vocab = V};
    one(e, &before, ids, 6);
    CHECK(before.res.finish == SI_FINISH_LENGTH && before.n_rows == 3);

    /* The file loses its second half: the next pass cannot read its weights. */
    CHECK(truncate(path, (off_t)(len / 2)) == 0);
    run broken = {.row = malloc(V * sizeof(float)), .n_vocab = V};
    one(e, &broken, ids, 6);
    CHECKF(broken.res.finish == SI_FINISH_ERROR, "finish %s", si_finish_name(broken.res.finish));
    CHECKF(strstr(broken.res.error, "read") || strstr(broken.res.error, "short"), "error: %s", broken.res.error);
    printf("failed pass: %s\n", broken.res.error);
    si_engine_stats st;
    si_engine_get_stats(e, &st);
    CHECK_EQ_INT(st.free_cells, st.n_cells);
    CHECK_EQ_INT(st.requests[SI_FINISH_ERROR], 1);

    /* Whole again: the engine goes on, with the same logits as before. */
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(whole, 1, len, f) == len && fclose(f) == 0);
    run after = {.row = malloc(V * sizeof(float)), .n_vocab = V};
    one(e, &after, ids, 6);
    CHECKF(after.res.finish == SI_FINISH_LENGTH, "after recovery: finish %s (%s)", si_finish_name(after.res.finish),
           after.res.error);
    CHECK(memcmp(before.row, after.row, V * sizeof(float)) == 0);
    printf("recovered: the same logits as before the failure\n");
    si_engine_free(e);
    si_llama_close(m);
    free(before.row), free(broken.row), free(after.row), free(whole);
    return 0;
}
