/* Accessors, special ids, special-token parsing on/off, EOG. */
#include "../../src/text/tok_internal.h"
#include "tok_test.h"

static void expect_ids(const si_tokenizer *t, const char *text, bool bos, bool special,
                       const int32_t *want, size_t nwant)
{
    int32_t *ids;
    size_t n;
    si_error err = {0};
    int rc = si_tokenize(t, text, strlen(text), bos, special, &ids, &n, &err);
    CHECK(rc == 0, "tokenize \"%s\": %s", text, err.msg);
    bool same = rc == 0 && n == nwant && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    if (!same) {
        fprintf(stderr, "\"%s\" ->", text);
        for (size_t i = 0; rc == 0 && i < n; i++)
            fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    CHECK(same, "unexpected ids for \"%s\"", text);
    free(ids);
}

static void test_llama3(void)
{
    si_tokenizer *t = tt_load(tt_path("llama3-vocab.gguf"));
    CHECK(si_tokenizer_kind(t) == SI_VOCAB_BPE, "kind");
    CHECK(si_tokenizer_n_vocab(t) == 128256, "n_vocab %u", si_tokenizer_n_vocab(t));
    CHECK(si_tokenizer_bos(t) == 128000, "bos %d", si_tokenizer_bos(t));
    CHECK(si_tokenizer_eos(t) == 128001, "eos %d", si_tokenizer_eos(t));
    CHECK(si_tokenizer_eot(t) == 128009, "eot %d", si_tokenizer_eot(t));
    CHECK(si_tokenizer_find(t, "<|eot_id|>") == 128009, "find");
    CHECK(si_tokenizer_find(t, "<|no such token|>") == -1, "find missing");
    CHECK(si_tokenizer_is_eog(t, 128009) && si_tokenizer_is_eog(t, 128001), "eog");
    /* Llama 3.0 has no <|eom_id|>: 128008 is a reserved token */
    CHECK(!si_tokenizer_is_eog(t, 128008), "reserved token is not eog");
    CHECK(!si_tokenizer_is_eog(t, 128000) && !si_tokenizer_is_eog(t, 13), "not eog");
    CHECK(!si_tokenizer_is_eog(t, -1) && !si_tokenizer_is_eog(t, 1 << 30), "eog range");
    CHECK(si_tokenizer_add_bos_default(t), "add_bos");
    CHECK(strcmp(si_tokenizer_text(t, 128009), "<|eot_id|>") == 0, "text");
    CHECK(si_tokenizer_text(t, 128256) == NULL && si_tokenizer_text(t, -1) == NULL, "text range");
    CHECK(si_tokenizer_type(t, 128009) == SI_TOKEN_CONTROL, "type");
    size_t pl;
    const char *p = si_tokenizer_piece(t, si_tokenizer_find(t, "\xC4\xA0the"), &pl);
    CHECK(p && pl == 4 && memcmp(p, " the", 4) == 0, "piece of \"Ġthe\"");

    /* special tokens only when asked */
    expect_ids(t, "<|eot_id|>", false, true, (const int32_t[]){128009}, 1);
    expect_ids(t, "<|eot_id|>", false, false, (const int32_t[]){27, 91, 68, 354, 851, 91, 29}, 7);
    expect_ids(t, "Hello world", true, false, (const int32_t[]){128000, 9906, 1917}, 3);
    expect_ids(t, "", false, false, NULL, 0);
    expect_ids(t, "", true, false, (const int32_t[]){128000}, 1);
    /* invalid UTF-8 is tokenized as U+FFFD, as llama.cpp does */
    int32_t *a, *b;
    size_t na, nb;
    si_error err;
    CHECK(si_tokenize(t, "a\xFFz", 3, false, false, &a, &na, &err) == 0, "invalid utf8");
    CHECK(si_tokenize(t, "a\xEF\xBF\xBDz", 5, false, false, &b, &nb, &err) == 0, "fffd");
    CHECK(na == nb && memcmp(a, b, na * sizeof *a) == 0, "invalid byte == U+FFFD");
    free(a);
    free(b);

    /* control tokens print only with SI_DETOK_SPECIAL */
    char *s;
    size_t sl;
    int32_t ids[] = {128000, 9906, 128009};
    CHECK(si_detokenize(t, ids, 3, 0, &s, &sl, &err) == 0 && strcmp(s, "Hello") == 0,
          "plain detok");
    free(s);
    CHECK(si_detokenize(t, ids, 3, SI_DETOK_SPECIAL, &s, &sl, &err) == 0 &&
              strcmp(s, "<|begin_of_text|>Hello<|eot_id|>") == 0,
          "special detok");
    free(s);
    int32_t bad = 128256;
    CHECK(si_detokenize(t, &bad, 1, 0, &s, &sl, &err) == SI_EINVAL, "id out of range");
    si_tokenizer_free(t);
}

static void test_spm(void)
{
    si_tokenizer *t = tt_load(tt_path("llama-spm-vocab.gguf"));
    CHECK(si_tokenizer_kind(t) == SI_VOCAB_SPM, "kind");
    CHECK(si_tokenizer_n_vocab(t) == 32000, "n_vocab");
    CHECK(si_tokenizer_bos(t) == 1 && si_tokenizer_eos(t) == 2, "bos/eos");
    CHECK(si_tokenizer_eot(t) == -1, "no eot");
    CHECK(si_tokenizer_is_eog(t, 2) && !si_tokenizer_is_eog(t, 1), "eog");
    CHECK(si_tokenizer_add_bos_default(t), "add_bos");
    expect_ids(t, "Hello world", true, false, (const int32_t[]){1, 15043, 3186}, 3);
    expect_ids(t, " Hello world", false, false, (const int32_t[]){29871, 15043, 3186}, 3);
    /* "</s>" is text unless special parsing is on; after it the space prefix returns */
    expect_ids(t, "a</s>b", false, true, (const int32_t[]){263, 2, 289}, 3);
    char *s;
    size_t sl;
    si_error err;
    int32_t ids[] = {1, 15043, 3186};
    CHECK(si_detokenize(t, ids, 3, SI_DETOK_STRIP_SPACE, &s, &sl, &err) == 0 &&
              strcmp(s, "Hello world") == 0,
          "strip after BOS");
    free(s);
    /* a continuation keeps its space */
    CHECK(si_detokenize(t, ids + 2, 1, 0, &s, &sl, &err) == 0 && strcmp(s, " world") == 0,
          "continuation");
    free(s);
    si_tokenizer_free(t);
}

/* GPT-2's byte-to-unicode table: known points and a bijection onto its image */
static void test_byte_map(void)
{
    CHECK(si_bpe_byte_cp(' ') == 0x120 && si_bpe_byte_cp('\n') == 0x10A, "space/newline");
    CHECK(si_bpe_byte_cp(0) == 0x100 && si_bpe_byte_cp(0x7F) == 0x121, "NUL/DEL");
    CHECK(si_bpe_byte_cp(0xA0) == 0x142 && si_bpe_byte_cp(0xAD) == 0x143, "NBSP/SHY");
    CHECK(si_bpe_byte_cp('A') == 'A' && si_bpe_byte_cp(0xFF) == 0xFF, "direct");
    int seen[324] = {0};
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = si_bpe_byte_cp((uint8_t)b);
        CHECK(cp < 324 && !seen[cp]++, "byte %u maps to a fresh code point", b);
        CHECK(si_bpe_cp_byte(cp) == (int)b, "inverse of byte %u", b);
    }
    CHECK(si_bpe_cp_byte(324) == -1 && si_bpe_cp_byte(' ') == -1, "unmapped");
}

int main(void)
{
    test_byte_map();
    test_llama3();
    test_spm();
    return tt_failures ? 1 : 0;
}
