/* tokenize: text -> token ids (or ids -> text) with a GGUF model's vocabulary.
 *
 * The --cases mode reproduces llama.cpp's tokenizer test format: the input is cut at
 * every occurrence of a separator and one line of ids (each preceded by a space) is
 * printed per case. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streaminfer/gguf.h"
#include "streaminfer/tokenizer.h"

#include "si_config.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tokenize -m MODEL.gguf [-p TEXT | -f FILE] [options]\n"
            "Tokenize TEXT (or FILE, or standard input) with the model's vocabulary and\n"
            "print the token ids separated by spaces.\n"
            "\n"
            "  -m, --model FILE   GGUF file holding the vocabulary (tokenizer.ggml.*)\n"
            "  -p, --prompt TEXT  text to tokenize\n"
            "  -f, --file FILE    read the text from FILE (exactly its bytes)\n"
            "      --bos          prepend BOS (default: the vocabulary's add_bos_token)\n"
            "      --no-bos       do not prepend BOS\n"
            "      --special      recognise control tokens such as <|eot_id|> in the text;\n"
            "                     with --decode: print control tokens\n"
            "      --cases SEP    the input is a list of cases, each followed by SEP (taken\n"
            "                     literally); print one line per case, each id preceded by\n"
            "                     a space (llama.cpp's test format). Text after the last\n"
            "                     SEP is not a case.\n"
            "      --decode       the input is token ids (decimal, whitespace-separated):\n"
            "                     print the text they stand for\n"
            "  -h, --help         this help\n"
            "      --version      print the version and exit\n");
}

static int die(const char *fmt, const char *arg)
{
    fprintf(stderr, "tokenize: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    return 1;
}

/* Whole file (or stdin when path is NULL) into a malloc'd buffer. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = path ? fopen(path, "rb") : stdin;
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (n < cap) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
            }
            break;
        }
        cap *= 2;
        char *p = realloc(buf, cap + 1);
        if (!p)
            free(buf);
        buf = p;
    }
    if (path)
        fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = n;
    }
    return buf;
}

static int print_ids(const si_tokenizer *t, const char *text, size_t len, bool bos, bool special,
                     bool lead_space)
{
    int32_t *ids;
    size_t n;
    si_error err = {0};
    if (si_tokenize(t, text, len, bos, special, &ids, &n, &err) < 0) {
        fprintf(stderr, "tokenize: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        printf(lead_space || i > 0 ? " %d" : "%d", ids[i]);
    printf("\n");
    free(ids);
    return 0;
}

static int run_cases(const si_tokenizer *t, const char *text, size_t len, const char *sep,
                     bool bos, bool special)
{
    size_t sl = strlen(sep);
    if (sl == 0)
        return die("%s", "--cases: empty separator");
    size_t pos = 0;
    for (;;) {
        const char *hit = memmem(text + pos, len - pos, sep, sl);
        if (!hit)
            break; /* the rest is not a case */
        size_t end = (size_t)(hit - text);
        if (print_ids(t, text + pos, end - pos, bos, special, true))
            return 1;
        pos = end + sl;
    }
    return 0;
}

static int run_decode(const si_tokenizer *t, const char *text, bool special)
{
    si_detok *d = si_detok_new(t, SI_DETOK_STRIP_SPACE | (special ? SI_DETOK_SPECIAL : 0u));
    if (!d)
        return die("%s", "out of memory");
    int32_t *ids;
    size_t n_ids;
    si_error err = {0};
    int rc = 0;
    if (si_parse_ids(text, &ids, &n_ids, &err) != SI_OK) {
        si_detok_free(d);
        return die("--decode: %s", err.msg);
    }
    for (size_t i = 0; i < n_ids && rc == 0; i++) {
        const char *out;
        size_t n;
        if (si_detok_push(d, ids[i], &out, &n, &err) < 0)
            rc = die("%s", err.msg);
        else
            fwrite(out, 1, n, stdout);
    }
    free(ids);
    const char *out;
    size_t n;
    si_detok_flush(d, &out, &n);
    fwrite(out, 1, n, stdout);
    si_detok_free(d);
    return rc;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL, *file = NULL, *sep = NULL;
    int bos = -1;
    bool special = false, decode = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("tokenize (streaminfer) %s\n", SI_VERSION);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) {
            model = argv[++i];
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && has_val) {
            prompt = argv[++i];
        } else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && has_val) {
            file = argv[++i];
        } else if (!strcmp(a, "--cases") && has_val) {
            sep = argv[++i];
        } else if (!strcmp(a, "--bos")) {
            bos = 1;
        } else if (!strcmp(a, "--no-bos")) {
            bos = 0;
        } else if (!strcmp(a, "--special")) {
            special = true;
        } else if (!strcmp(a, "--decode")) {
            decode = true;
        } else {
            fprintf(stderr, "tokenize: %s option \"%s\" (try --help)\n",
                    a[0] == '-' && !has_val ? "unknown option or missing value for" : "unknown",
                    a);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "tokenize: -m MODEL is required (try --help)\n");
        return 2;
    }
    if (prompt && file) {
        fprintf(stderr, "tokenize: give -p or -f, not both\n");
        return 2;
    }
    if (decode && sep) {
        fprintf(stderr, "tokenize: --cases and --decode do not go together\n");
        return 2;
    }

    si_error err = {0};
    si_gguf *g;
    if (si_gguf_open(&g, model, &err) < 0)
        return die("%s", err.msg);
    si_tokenizer *t;
    int rc = si_tokenizer_load(&t, g, &err);
    si_gguf_close(g);
    if (rc < 0)
        return die("%s", err.msg);

    size_t len = 0;
    char *text = NULL;
    if (prompt) {
        len = strlen(prompt);
    } else {
        text = read_all(file, &len);
        if (!text) {
            si_tokenizer_free(t);
            fprintf(stderr, "tokenize: cannot read %s: %s\n", file ? file : "standard input",
                    strerror(errno));
            return 1;
        }
    }
    const char *in = prompt ? prompt : text;
    bool add_bos = bos < 0 ? si_tokenizer_add_bos_default(t) : bos == 1;
    if (decode)
        rc = run_decode(t, in, special);
    else if (sep)
        rc = run_cases(t, in, len, sep, add_bos, special);
    else
        rc = print_ids(t, in, len, add_bos, special, false);
    free(text);
    si_tokenizer_free(t);
    if (fflush(stdout) != 0)
        return die("%s", "write error on standard output");
    return rc;
}
