/* Small hand-made vocabularies: a valid byte-only one (as the engine's synthetic models
 * use) works; each malformed one fails at load with a clear error. No fixtures needed. */
#include <fcntl.h>

#include "../../src/text/tok_internal.h" /* si_bpe_byte_cp for building byte symbols */
#include "tok_test.h"

typedef struct spec {
    const char *model, *pre;
    const char **tokens;
    uint32_t n_tokens;
    const int32_t *types;
    uint32_t n_types;
    const float *scores;
    uint32_t n_scores;
    const char **merges;
    uint32_t n_merges;
    int64_t bos; /* -2: no key */
} spec;

static char tmpdir[] = "/tmp/si_tok_bad_XXXXXX";

static const char *write_vocab(const spec *s, const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, name);
    si_gguf_writer *w = si_gguf_writer_new(32);
    si_gguf_writer_set_str(w, "general.architecture", "llama");
    if (s->model)
        si_gguf_writer_set_str(w, "tokenizer.ggml.model", s->model);
    if (s->pre)
        si_gguf_writer_set_str(w, "tokenizer.ggml.pre", s->pre);
    if (s->tokens)
        si_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", s->tokens, s->n_tokens);
    if (s->types)
        si_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", SI_GGUF_INT32, s->types,
                               s->n_types);
    if (s->scores)
        si_gguf_writer_set_arr(w, "tokenizer.ggml.scores", SI_GGUF_FLOAT32, s->scores,
                               s->n_scores);
    if (s->merges)
        si_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", s->merges, s->n_merges);
    if (s->bos != -2)
        si_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s->bos);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    si_error err = {0};
    if (fd < 0 || si_gguf_writer_write_header(w, fd, &err) < 0 ||
        si_gguf_writer_finish(w, fd, &err) < 0) {
        fprintf(stderr, "writing %s: %s\n", path, err.msg);
        exit(1);
    }
    close(fd);
    si_gguf_writer_free(w);
    return path;
}

/* Load; returns the status, the message in err. */
static int try_load(const spec *s, const char *name, si_tokenizer **out, si_error *err)
{
    const char *path = write_vocab(s, name);
    si_gguf *g;
    *out = NULL;
    int rc = si_gguf_open(&g, path, err);
    if (rc < 0)
        return rc;
    rc = si_tokenizer_load(out, g, err);
    si_gguf_close(g);
    unlink(path);
    return rc;
}

static void expect_error(const spec *s, const char *name, int code, const char *needle)
{
    si_tokenizer *t;
    si_error err = {0};
    int rc = try_load(s, name, &t, &err);
    CHECK(rc == code, "%s: status %d (%s), want %d", name, rc, err.msg, code);
    CHECK(rc >= 0 || strstr(err.msg, needle), "%s: message \"%s\" lacks \"%s\"", name, err.msg,
          needle);
    if (rc < 0)
        printf("%-20s -> %s\n", name, err.msg);
    si_tokenizer_free(t);
}

/* The 256 byte-level symbols plus extra tokens. */
static uint32_t byte_vocab(char store[][8], const char **tokens, const char **extra, uint32_t nx)
{
    for (unsigned b = 0; b < 256; b++) {
        size_t k = si_utf8_encode(si_bpe_byte_cp((uint8_t)b), store[b]);
        store[b][k] = 0;
        tokens[b] = store[b];
    }
    for (uint32_t i = 0; i < nx; i++)
        tokens[256 + i] = extra[i];
    return 256 + nx;
}

static void test_bpe(void)
{
    static char store[256][8];
    const char *tokens[300];
    const char *extra[] = {"<|bos|>", "ab"};
    uint32_t n = byte_vocab(store, tokens, extra, 2);
    int32_t types[300];
    for (uint32_t i = 0; i < n; i++)
        types[i] = i == 256 ? SI_TOKEN_CONTROL : SI_TOKEN_NORMAL;
    spec good = {"gpt2", "llama-bpe", tokens, n, types, n, NULL, 0, NULL, 0, 256};

    /* byte-only vocabulary without merges (the engine's synthetic models) */
    si_tokenizer *t;
    si_error err = {0};
    CHECK(try_load(&good, "good", &t, &err) == 0, "good vocabulary: %s", err.msg);
    if (t) {
        const char *text = "h\xC3\xA9llo wor\nld \xF0\x9F\xA6\x99";
        int32_t *ids;
        size_t nid;
        CHECK(si_tokenize(t, text, strlen(text), true, false, &ids, &nid, &err) == 0, "tok");
        CHECK(nid == strlen(text) + 1 && ids[0] == 256, "one id per byte after BOS: %zu", nid);
        char *back;
        size_t bl;
        CHECK(si_detokenize(t, ids, nid, 0, &back, &bl, &err) == 0 && strcmp(back, text) == 0,
              "round trip");
        free(back);
        free(ids);
        si_tokenizer_free(t);
    }
    /* merges: a valid one, then ones naming unknown tokens */
    const char *m_ok[] = {"a b"};
    spec s = good;
    s.merges = m_ok, s.n_merges = 1;
    CHECK(try_load(&s, "merge_ok", &t, &err) == 0, "valid merge: %s", err.msg);
    if (t) {
        int32_t *ids;
        size_t nid;
        CHECK(si_tokenize(t, "abc", 3, false, false, &ids, &nid, &err) == 0 && nid == 2 &&
                  ids[0] == 257,
              "merge applied");
        free(ids);
        si_tokenizer_free(t);
    }
    const char *m1[] = {"a b", "b c"};
    s.merges = m1, s.n_merges = 2;
    expect_error(&s, "merge_result", SI_EFORMAT, "names an unknown token (their concatenation)");
    const char *m2[] = {"a zz"};
    s.merges = m2, s.n_merges = 1;
    expect_error(&s, "merge_right", SI_EFORMAT, "unknown token (right part)");
    const char *m3[] = {"ab"};
    s.merges = m3, s.n_merges = 1;
    expect_error(&s, "merge_nospace", SI_EFORMAT, "is not \"LEFT RIGHT\"");

    /* a missing byte symbol: drop "!" (byte 0x21) */
    s = good;
    const char *t2[300];
    memcpy(t2, tokens, sizeof t2);
    t2[0x21] = "!!";
    s.tokens = t2;
    expect_error(&s, "missing_byte", SI_EFORMAT, "no token for byte 0x21");

    s = good;
    s.bos = n;
    expect_error(&s, "bos_range", SI_EFORMAT, "bos_token_id = 258 is out of range");

    memcpy(t2, tokens, sizeof t2);
    t2[257] = "a\xFF";
    s = good;
    s.tokens = t2;
    expect_error(&s, "non_utf8", SI_EFORMAT, "tokens[257] is not valid UTF-8");

    s = good;
    s.n_types = n - 1;
    expect_error(&s, "types_len", SI_EFORMAT, "token_type has 257 entries but there are 258");

    int32_t bad_types[300];
    memcpy(bad_types, types, sizeof bad_types);
    bad_types[5] = 9;
    s = good;
    s.types = bad_types;
    expect_error(&s, "type_value", SI_EFORMAT, "token_type[5] = 9 is not a token type");

    s = good;
    s.pre = "gpt-2";
    expect_error(&s, "pre_other", SI_EUNSUPPORTED, "tokenizer.ggml.pre = \"gpt-2\"");
    s.pre = NULL;
    expect_error(&s, "pre_missing", SI_EUNSUPPORTED, "without tokenizer.ggml.pre");
    s = good;
    s.model = "bert";
    expect_error(&s, "model_other", SI_EUNSUPPORTED, "\"bert\" is not supported");
    s.model = NULL;
    expect_error(&s, "model_missing", SI_EFORMAT, "no tokenizer.ggml.model");
    s = good;
    s.tokens = NULL;
    expect_error(&s, "tokens_missing", SI_EFORMAT, "no tokenizer.ggml.tokens");
}

static void test_spm(void)
{
    /* <unk> <s> </s> ▁ a b ▁a, no <0xNN> byte tokens */
    const char *tokens[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", ("\xE2\x96\x81" "a")};
    int32_t types[] = {2, 3, 3, 1, 1, 1, 1};
    float scores[] = {0, 0, 0, -1, -2, -3, -0.5f};
    spec good = {"llama", "default", tokens, 7, types, 7, scores, 7, NULL, 0, 1};
    si_tokenizer *t;
    si_error err = {0};
    CHECK(try_load(&good, "spm_good", &t, &err) == 0, "spm: %s", err.msg);
    if (t) {
        int32_t *ids;
        size_t nid;
        CHECK(si_tokenize(t, "ab", 2, true, false, &ids, &nid, &err) == 0 && nid == 3 &&
                  ids[0] == 1 && ids[1] == 6 && ids[2] == 5,
              "spm merges");
        free(ids);
        /* no byte tokens: a character outside the vocabulary becomes one <unk> */
        CHECK(si_tokenize(t, "a\xC3\xA9", 3, false, false, &ids, &nid, &err) == 0 && nid == 2 &&
                  ids[0] == 6 && ids[1] == 0,
              "unk fallback");
        free(ids);
        si_tokenizer_free(t);
    }
    spec s = good;
    s.n_scores = 6;
    expect_error(&s, "scores_len", SI_EFORMAT, "scores has 6 entries but there are 7");
    s = good;
    s.n_types = 8;
    int32_t types8[8] = {2, 3, 3, 1, 1, 1, 1, 1};
    s.types = types8;
    expect_error(&s, "spm_types_len", SI_EFORMAT, "token_type has 8 entries but there are 7");
    /* no <unk> either: tokenizing a character outside the vocabulary is an error */
    int32_t types_nounk[] = {3, 3, 3, 1, 1, 1, 1};
    s = good;
    s.types = types_nounk;
    CHECK(try_load(&s, "spm_nounk", &t, &err) == 0, "spm no unk: %s", err.msg);
    if (t) {
        int32_t *ids;
        size_t nid;
        int rc = si_tokenize(t, "\xC3\xA9", 2, false, false, &ids, &nid, &err);
        CHECK(rc == SI_EUNSUPPORTED && strstr(err.msg, "no <0xC3> token"), "no byte: %d %s", rc,
              err.msg);
        printf("%-20s -> %s\n", "spm_no_byte_no_unk", err.msg);
        si_tokenizer_free(t);
    }
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_bpe();
    test_spm();
    rmdir(tmpdir);
    return tt_failures ? 1 : 0;
}
