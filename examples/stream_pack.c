/* stream_pack: generate from a pack (written by `repack MODEL.gguf MODEL.pack`),
 * printing each token as it comes and one line per pass on stderr, where the weights
 * read so far come from.
 *
 *   stream_pack MODEL.pack "Once upon a time" [N]
 *
 * A pack is the model laid out for streaming (aligned extents, optional zstd frames and
 * checksums); si_llama_open recognises it like a GGUF. stdout gets the same text as
 * `stream-infer -m MODEL.pack -p PROMPT -n N --temp 0 -q`.
 *
 *   cc stream_pack.c $(pkg-config --cflags --libs streaminfer) -o stream_pack */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <streaminfer/engine.h>
#include <streaminfer/tokenizer.h>

static si_detok *detok;

/* Each token as soon as its pass is done. */
static bool on_token(void *ctx, int32_t id)
{
    (void)ctx;
    const char *s;
    size_t n;
    if (si_detok_push(detok, id, &s, &n, NULL) == SI_OK)
        fwrite(s, 1, n, stdout);
    fflush(stdout);
    return true;
}

/* The model's progress reports: one line per finished pass. */
static void on_progress(void *ctx, const si_llama_progress *p)
{
    (void)ctx;
    if (p->layer == p->n_layer && p->weight_bytes_done == p->weight_bytes)
        fprintf(stderr, "pass %llu: %u tokens, %.2f MB of weights, %.2f MB read in all\n",
                (unsigned long long)p->pass, p->n_tokens, (double)p->weight_bytes / 1e6,
                (double)p->bytes_read / 1e6);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s MODEL.pack PROMPT [N]\n", argv[0]);
        return 2;
    }
    uint32_t n_predict = argc > 3 ? (uint32_t)atoi(argv[3]) : 32;
    si_error err = {0};
    si_llama *m = NULL;
    si_tokenizer *tok = NULL;
    si_engine *eng = NULL;
    int32_t *ids = NULL, eog[16];
    size_t n_ids = 0;
    uint32_t n_eog = 0;

    si_llama_opts lo = {.progress = on_progress};
    int rc = si_llama_open(&m, argv[1], &lo, &err);
    if (rc == SI_OK)
        rc = si_tokenizer_load(&tok, si_llama_gguf(m), &err);
    if (rc == SI_OK)
        rc = si_tokenize(tok, argv[2], strlen(argv[2]), si_tokenizer_add_bos_default(tok), false, &ids, &n_ids,
                         &err);
    if (rc == SI_OK && !(detok = si_detok_new(tok, SI_DETOK_STRIP_SPACE)))
        rc = si_errorf(&err, SI_ENOMEM, "out of memory");
    if (rc == SI_OK) {
        for (uint32_t id = 0; id < si_tokenizer_n_vocab(tok) && n_eog < 16; id++)
            if (si_tokenizer_is_eog(tok, (int32_t)id))
                eog[n_eog++] = (int32_t)id;
        si_engine_opts eo = {.n_parallel = 1, .eog_ids = eog, .n_eog = n_eog};
        rc = si_engine_create(&eng, m, &eo, &err);
    }
    if (rc == SI_OK) {
        for (size_t i = 0; i < n_ids; i++)
            on_token(NULL, ids[i]); /* echo the prompt */
        si_request rq = {.prompt = ids, .n_prompt = (uint32_t)n_ids, .n_predict = n_predict,
                         .sampler = {.temp = 0, .top_p = 1, .repeat_penalty = 1}, .on_token = on_token};
        rc = si_engine_submit(eng, &rq, NULL, &err);
    }
    if (rc == SI_OK)
        rc = si_engine_drain(eng, &err);
    if (rc == SI_OK)
        rc = si_llama_finish(m, &err);
    if (detok) {
        const char *s;
        size_t n;
        si_detok_flush(detok, &s, &n);
        fwrite(s, 1, n, stdout);
    }
    printf("\n");
    if (rc == SI_OK) {
        si_llama_stats st;
        si_llama_get_stats(m, &st);
        fprintf(stderr, "%.2f MB read from the pack; checksums %.3f s, decompression %.3f s\n",
                (double)st.io_bytes_read / 1e6, st.verify_s, st.decode_s);
    } else {
        fprintf(stderr, "stream_pack: error: %s\n", err.msg);
    }
    si_engine_free(eng);
    si_detok_free(detok);
    si_tokenizer_free(tok);
    si_llama_close(m);
    free(ids);
    return rc == SI_OK ? 0 : 1;
}
