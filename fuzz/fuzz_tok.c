/* Tokenizers, text in and ids out, on the fixtures' vocabularies: byte-level BPE
 * (Llama 3) and SentencePiece (Llama 2). The first byte picks the vocabulary and the
 * flags; the rest is the text. Every id must be in range, and decode(encode(s)) == s
 * where it must hold (as tests/text/test_tok_roundtrip.c states it): valid UTF-8; for
 * SPM without special parsing and without a literal U+2581. The streaming decoder must
 * give the same bytes as the whole-sequence one. */
#include "../src/text/tok_internal.h"
#include "fuzz_util.h"
#include "streaminfer/gguf.h"
#include "streaminfer/tokenizer.h"

static si_tokenizer *load(const char *rel)
{
    si_gguf *g;
    si_tokenizer *t;
    si_error e;
    if (si_gguf_open(&g, fz_fixture(rel), &e) != SI_OK || si_tokenizer_load(&t, g, &e) != SI_OK) {
        fprintf(stderr, "fuzz_tok: %s\n", e.msg);
        abort();
    }
    si_gguf_close(g);
    return t;
}

static bool valid_utf8(const char *s, size_t n)
{
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        size_t k = si_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static si_tokenizer *bpe, *spm;
    if (!bpe) {
        bpe = load("tokenizer/llama3-vocab.gguf");
        spm = load("tokenizer/llama-spm-vocab.gguf");
    }
    if (size < 1 || size > 4096)
        return 0;
    const si_tokenizer *t = data[0] & 1 ? spm : bpe;
    bool special = data[0] & 2, bos = data[0] & 4;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    int32_t *ids;
    size_t nid;
    si_error e;
    if (si_tokenize(t, text, n, bos, special, &ids, &nid, &e) != SI_OK) {
        fprintf(stderr, "tokenize failed: %s\n", e.msg);
        abort(); /* any bytes are a text */
    }
    uint32_t nv = si_tokenizer_n_vocab(t);
    for (size_t i = 0; i < nid; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= nv)
            abort();
    unsigned fl = SI_DETOK_STRIP_SPACE | (special ? SI_DETOK_SPECIAL : 0u);
    char *back;
    size_t bl;
    if (si_detokenize(t, ids, nid, fl, &back, &bl, &e) != SI_OK)
        abort();
    bool exact = !special || si_tokenizer_kind(t) == SI_VOCAB_BPE;
    if (si_tokenizer_kind(t) == SI_VOCAB_SPM && memmem(text, n, "\xE2\x96\x81", 3))
        exact = false;
    if (exact && valid_utf8(text, n)) {
        const char *b = bos && special && si_tokenizer_bos(t) >= 0 ? si_tokenizer_text(t, si_tokenizer_bos(t)) : "";
        size_t bn = strlen(b);
        if (bl != bn + n || memcmp(back, b, bn) != 0 || memcmp(back + bn, text, n) != 0) {
            fprintf(stderr, "round trip: %zu bytes in, %zu out\n", n, bl);
            abort();
        }
    }
    /* streaming, one id at a time, equals the whole */
    si_detok *d = si_detok_new(t, fl);
    if (d) {
        char *s = malloc(bl + 1);
        size_t sl = 0;
        bool ok = s != NULL;
        for (size_t i = 0; i < nid && ok; i++) {
            const char *out;
            size_t no;
            ok = si_detok_push(d, ids[i], &out, &no, &e) == SI_OK && sl + no <= bl;
            if (ok)
                memcpy(s + sl, out, no), sl += no;
        }
        if (ok) {
            const char *out;
            size_t no;
            si_detok_flush(d, &out, &no);
            ok = sl + no == bl && (memcpy(s + sl, out, no), memcmp(s, back, bl) == 0);
        }
        if (s && !ok) {
            fprintf(stderr, "streaming decode differs\n");
            abort();
        }
        free(s);
        si_detok_free(d);
    }
    free(back);
    free(ids);
    return 0;
}
