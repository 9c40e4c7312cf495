/* generate: text from a prompt with libstreaminfer, one model step at a time.
 *
 *   generate MODEL.gguf "Once upon a time" [N]
 *
 * Opens the model (its weights are streamed from the file at every pass), tokenizes the
 * prompt with the model's vocabulary, evaluates it in one pass, then picks the most
 * likely token (greedy) and evaluates it, N times (default 32) or until an
 * end-of-generation token. Prints the prompt as the model sees it, then the generated
 * text: the same as `stream-infer -m MODEL -p PROMPT -n N --temp 0 -q`.
 *
 *   cc generate.c $(pkg-config --cflags --libs streaminfer) -o generate */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <streaminfer/llama.h>
#include <streaminfer/sampler.h>
#include <streaminfer/tokenizer.h>

static void put(si_detok *d, int32_t id)
{
    const char *s;
    size_t n;
    if (si_detok_push(d, id, &s, &n, NULL) == SI_OK)
        fwrite(s, 1, n, stdout);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s MODEL PROMPT [N]\n", argv[0]);
        return 2;
    }
    int n_predict = argc > 3 ? atoi(argv[3]) : 32;
    si_error err = {0};
    si_llama *m = NULL;
    si_tokenizer *tok = NULL;
    si_sampler *smp = NULL;
    si_detok *detok = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    size_t n_ids = 0;

    si_llama_opts opts = {0}; /* defaults: budget from the machine, the model's context */
    int rc = si_llama_open(&m, argv[1], &opts, &err);
    if (rc == SI_OK)
        rc = si_tokenizer_load(&tok, si_llama_gguf(m), &err);
    if (rc == SI_OK)
        rc = si_tokenize(tok, argv[2], strlen(argv[2]), si_tokenizer_add_bos_default(tok), false, &ids, &n_ids,
                         &err);
    if (rc == SI_OK) {
        uint32_t n_vocab = si_llama_hparams_of(m)->n_vocab;
        si_sampler_opts so = {.temp = 0, .top_p = 1, .repeat_penalty = 1}; /* greedy */
        smp = si_sampler_new(&so, n_vocab);
        detok = si_detok_new(tok, SI_DETOK_STRIP_SPACE);
        logits = malloc(n_vocab * sizeof *logits);
        if (!smp || !detok || !logits)
            rc = si_errorf(&err, SI_ENOMEM, "out of memory");
    }
    if (rc == SI_OK) {
        for (size_t i = 0; i < n_ids; i++) { /* echo the prompt */
            put(detok, ids[i]);
            si_sampler_accept(smp, ids[i]);
        }
        /* the whole prompt in one pass; logits of its last token */
        rc = si_llama_eval(m, ids, (uint32_t)n_ids, n_predict > 0, logits, &err);
    }
    for (int i = 0; rc == SI_OK && i < n_predict; i++) {
        int32_t id = si_sampler_sample(smp, logits);
        if (si_tokenizer_is_eog(tok, id))
            break;
        put(detok, id);
        si_sampler_accept(smp, id);
        if (i + 1 < n_predict)
            rc = si_llama_eval(m, &id, 1, i + 2 < n_predict, logits, &err);
    }
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
        fprintf(stderr, "%llu tokens evaluated, %.1f MB read\n", (unsigned long long)st.tokens_evaluated,
                (double)st.io_bytes_read / 1e6);
    } else {
        fprintf(stderr, "generate: error: %s\n", err.msg);
    }
    free(logits);
    free(ids);
    si_detok_free(detok);
    si_sampler_free(smp);
    si_tokenizer_free(tok);
    si_llama_close(m);
    return rc == SI_OK ? 0 : 1;
}
