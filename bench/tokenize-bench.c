/* Tokenizer benchmark: vocabulary load time (GGUF open + si_tokenizer_load) and
 * tokenizing / detokenizing 1 MB of mixed text built from the corpus fixture.
 * usage: tokenize-bench [FIXTURES_DIR]   (default $SI_FIXTURES or ../shared/fixtures) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "streaminfer/gguf.h"
#include "streaminfer/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b)
        *len = (size_t)n;
    return b;
}

/* ~1 MB: the corpus cases (separators removed) repeated. */
static char *mixed_text(const char *dir, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/llama3-corpus.inp", dir);
    size_t n;
    char *src = read_file(path, &n);
    if (!src)
        return NULL;
    const char *sep = "\n__ggml_vocab_test__\n";
    size_t sl = strlen(sep), m = 0;
    for (size_t i = 0; i < n;) { /* drop the separators, keep a newline */
        if (i + sl <= n && memcmp(src + i, sep, sl) == 0) {
            src[m++] = '\n';
            i += sl;
        } else {
            src[m++] = src[i++];
        }
    }
    const size_t want = 1 << 20;
    char *out = malloc(want);
    for (size_t o = 0; o < want; o += m)
        memcpy(out + o, src, o + m <= want ? m : want - o);
    free(src);
    *len = want;
    return out;
}

static int bench_vocab(const char *dir, const char *file, const char *text, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/%s", dir, file);
    si_error err = {0};
    double best_open = 1e9, best_load = 1e9;
    si_tokenizer *t = NULL;
    for (int rep = 0; rep < 5; rep++) {
        si_gguf *g;
        double t0 = now();
        if (si_gguf_open(&g, path, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double t1 = now();
        si_tokenizer_free(t);
        if (si_tokenizer_load(&t, g, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double t2 = now();
        si_gguf_close(g);
        if (t1 - t0 < best_open)
            best_open = t1 - t0;
        if (t2 - t1 < best_load)
            best_load = t2 - t1;
    }
    double best_tok = 1e9, best_detok = 1e9;
    size_t n_ids = 0;
    for (int rep = 0; rep < 3; rep++) {
        int32_t *ids;
        double t0 = now();
        if (si_tokenize(t, text, len, false, false, &ids, &n_ids, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double t1 = now();
        char *back;
        size_t bl;
        if (si_detokenize(t, ids, n_ids, SI_DETOK_STRIP_SPACE, &back, &bl, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double t2 = now();
        free(back);
        free(ids);
        if (t1 - t0 < best_tok)
            best_tok = t1 - t0;
        if (t2 - t1 < best_detok)
            best_detok = t2 - t1;
    }
    /* with special-token parsing (every control token is searched for) */
    int32_t *ids;
    size_t n_sp;
    double t0 = now();
    if (si_tokenize(t, text, len, false, true, &ids, &n_sp, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double t_sp = now() - t0;
    free(ids);
    printf("%-22s n_vocab %6u  open %6.1f ms  load %6.1f ms  total %6.1f ms  | tokenize %6.2f MB/s"
           " (%zu tokens), with --special %6.2f MB/s  | detokenize %7.1f MB/s\n",
           file, si_tokenizer_n_vocab(t), best_open * 1e3, best_load * 1e3,
           (best_open + best_load) * 1e3, len / best_tok / 1e6, n_ids, len / t_sp / 1e6,
           len / best_detok / 1e6);
    si_tokenizer_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : getenv("SI_FIXTURES");
    if (!dir)
        dir = "../shared/fixtures";
    size_t len;
    char *text = mixed_text(dir, &len);
    if (!text) {
        printf("fixtures not found at %s, skipping\n", dir);
        return 77;
    }
    printf("text: %zu bytes of mixed corpus text (best of 5 loads, 3 runs)\n", len);
    int rc = bench_vocab(dir, "llama3-vocab.gguf", text, len);
    rc |= bench_vocab(dir, "llama-spm-vocab.gguf", text, len);
    free(text);
    return rc;
}
