/* Helpers shared by the tokenizer tests (header-only). */
#ifndef SI_TOK_TEST_H
#define SI_TOK_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "streaminfer/gguf.h"
#include "streaminfer/tokenizer.h"

#define CASE_SEP "\n__ggml_vocab_test__\n"

static int tt_failures __attribute__((unused));

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
            tt_failures++;                                                 \
        }                                                                  \
    } while (0)

/* Directory of the tokenizer fixtures, or exit 77 (skip) when absent. */
static __attribute__((unused)) const char *tt_fixture_dir(void)
{
    static char dir[4096];
    const char *root = getenv("SI_FIXTURES");
    if (!root)
        root = "../shared/fixtures";
    snprintf(dir, sizeof dir, "%s/tokenizer", root);
    struct stat st;
    if (stat(dir, &st) != 0) {
        printf("fixtures not found at %s, skipping\n", dir);
        exit(77);
    }
    return dir;
}

static __attribute__((unused)) char *tt_path(const char *name)
{
    static char p[4][8192];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tt_fixture_dir(), name);
    return p[k];
}

static __attribute__((unused)) char *tt_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

/* Cut buf at every occurrence of sep; what follows the last sep is not an item.
 * Items point into buf (which gets NULs written over separators). */
static __attribute__((unused)) size_t tt_split(char *buf, size_t len, const char *sep, char ***items, size_t **lens)
{
    size_t sl = strlen(sep), n = 0, cap = 64, pos = 0;
    *items = malloc(cap * sizeof **items);
    *lens = malloc(cap * sizeof **lens);
    for (;;) {
        char *hit = memmem(buf + pos, len - pos, sep, sl);
        if (!hit)
            break;
        if (n == cap) {
            cap *= 2;
            *items = realloc(*items, cap * sizeof **items);
            *lens = realloc(*lens, cap * sizeof **lens);
        }
        (*items)[n] = buf + pos;
        (*lens)[n] = (size_t)(hit - (buf + pos));
        *hit = 0;
        n++;
        pos = (size_t)(hit - buf) + sl;
    }
    return n;
}

static __attribute__((unused)) si_tokenizer *tt_load(const char *path)
{
    si_error err = {0};
    si_gguf *g;
    if (si_gguf_open(&g, path, &err) < 0) {
        fprintf(stderr, "open %s: %s\n", path, err.msg);
        exit(1);
    }
    si_tokenizer *t;
    int rc = si_tokenizer_load(&t, g, &err);
    si_gguf_close(g);
    if (rc < 0) {
        fprintf(stderr, "load %s: %s\n", path, err.msg);
        exit(1);
    }
    return t;
}

#endif
