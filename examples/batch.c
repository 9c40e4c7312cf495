/* batch: several prompts at once on the batch engine (streaminfer/engine.h).
 *
 *   batch MODEL.gguf N "first prompt" "second prompt" ...
 *
 * Every prompt becomes a request of N tokens (greedy); all of them share each pass over
 * the weights, so they cost little more than one. Each request's text (its prompt as
 * the model sees it, then what it generated) is printed on its own line, "[i] text", in
 * the order of the arguments; each is what `stream-infer -m MODEL -p PROMPT -n N
 * --temp 0 -q` prints for that prompt alone.
 *
 *   cc batch.c $(pkg-config --cflags --libs streaminfer) -o batch */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <streaminfer/engine.h>
#include <streaminfer/tokenizer.h>

typedef struct seq {
    si_detok *detok;
    char *text; /* what the detokenizer gave so far */
    size_t len;
    si_request_result result;
} seq;

static void append(seq *s, const char *p, size_t n)
{
    char *t = realloc(s->text, s->len + n + 1);
    if (!t)
        abort();
    memcpy(t + s->len, p, n);
    s->len += n;
    t[s->len] = 0;
    s->text = t;
}

static void push(seq *s, int32_t id)
{
    const char *p;
    size_t n;
    if (si_detok_push(s->detok, id, &p, &n, NULL) == SI_OK)
        append(s, p, n);
}

/* Engine callbacks, on the thread that runs si_engine_drain. */
static bool on_token(void *ctx, int32_t id)
{
    push(ctx, id);
    return true; /* go on */
}

static void on_done(void *ctx, const si_request_result *r) { ((seq *)ctx)->result = *r; }

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL N PROMPT...\n", argv[0]);
        return 2;
    }
    uint32_t n_seq = (uint32_t)(argc - 3), n_predict = (uint32_t)atoi(argv[2]);
    si_error err = {0};
    si_llama *m = NULL;
    si_tokenizer *tok = NULL;
    si_engine *eng = NULL;
    seq *seqs = calloc(n_seq, sizeof *seqs);
    int32_t eog[16];
    uint32_t n_eog = 0;

    /* The plan gives every sequence sharing a step its own logits row. */
    si_llama_opts lo = {.n_seq_max = n_seq};
    int rc = seqs ? si_llama_open(&m, argv[1], &lo, &err) : si_errorf(&err, SI_ENOMEM, "out of memory");
    if (rc == SI_OK)
        rc = si_tokenizer_load(&tok, si_llama_gguf(m), &err);
    if (rc == SI_OK) {
        for (uint32_t id = 0; id < si_tokenizer_n_vocab(tok) && n_eog < 16; id++)
            if (si_tokenizer_is_eog(tok, (int32_t)id))
                eog[n_eog++] = (int32_t)id;
        si_engine_opts eo = {.n_parallel = n_seq, .eog_ids = eog, .n_eog = n_eog};
        rc = si_engine_create(&eng, m, &eo, &err);
    }
    for (uint32_t i = 0; rc == SI_OK && i < n_seq; i++) {
        const char *prompt = argv[3 + i];
        int32_t *ids = NULL;
        size_t n_ids = 0;
        rc = si_tokenize(tok, prompt, strlen(prompt), si_tokenizer_add_bos_default(tok), false, &ids, &n_ids, &err);
        if (rc == SI_OK && !(seqs[i].detok = si_detok_new(tok, SI_DETOK_STRIP_SPACE)))
            rc = si_errorf(&err, SI_ENOMEM, "out of memory");
        for (size_t k = 0; rc == SI_OK && k < n_ids; k++)
            push(&seqs[i], ids[k]); /* the prompt as the model sees it */
        if (rc == SI_OK) {
            si_request rq = {.prompt = ids, .n_prompt = (uint32_t)n_ids, .n_predict = n_predict,
                             .sampler = {.temp = 0, .top_p = 1, .repeat_penalty = 1}, /* greedy */
                             .on_token = on_token, .on_done = on_done, .ctx = &seqs[i]};
            rc = si_engine_submit(eng, &rq, NULL, &err); /* copies the prompt */
        }
        free(ids);
    }
    if (rc == SI_OK)
        rc = si_engine_drain(eng, &err); /* passes until every request is done */
    if (rc == SI_OK) {
        for (uint32_t i = 0; i < n_seq; i++) {
            const char *p;
            size_t n;
            si_detok_flush(seqs[i].detok, &p, &n);
            append(&seqs[i], p, n);
            printf("[%u] %s\n", i, seqs[i].text ? seqs[i].text : "");
        }
        si_engine_stats st;
        si_engine_get_stats(eng, &st);
        fprintf(stderr, "%u requests, %llu passes, %llu tokens generated\n", n_seq, (unsigned long long)st.passes,
                (unsigned long long)st.tokens_generated);
    } else {
        fprintf(stderr, "batch: error: %s\n", err.msg);
    }
    si_engine_free(eng);
    for (uint32_t i = 0; seqs && i < n_seq; i++) {
        si_detok_free(seqs[i].detok);
        free(seqs[i].text);
    }
    free(seqs);
    si_tokenizer_free(tok);
    si_llama_close(m);
    return rc == SI_OK ? 0 : 1;
}
