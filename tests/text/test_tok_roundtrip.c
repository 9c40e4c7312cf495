/* decode(encode(s)) == s for every corpus case of both vocabularies, decoding through
 * the streaming decoder one id at a time; with and without BOS. */
#include "../../src/text/tok_internal.h"
#include "tok_test.h"

static void roundtrip_file(const si_tokenizer *t, const char *inp)
{
    size_t len;
    char *buf = tt_read(tt_path(inp), &len);
    char **cases;
    size_t *cl;
    size_t n = tt_split(buf, len, CASE_SEP, &cases, &cl);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        for (int bos = 0; bos < 2; bos++) {
            int32_t *ids;
            size_t nid;
            si_error err = {0};
            if (si_tokenize(t, cases[i], cl[i], bos, false, &ids, &nid, &err) < 0) {
                CHECK(0, "%s case %zu: %s", inp, i, err.msg);
                continue;
            }
            char *text;
            size_t tl;
            int rc = si_detokenize(t, ids, nid, SI_DETOK_STRIP_SPACE, &text, &tl, &err);
            CHECK(rc == 0, "%s case %zu: %s", inp, i, err.msg);
            if (rc == 0 && (tl != cl[i] || memcmp(text, cases[i], tl) != 0)) {
                if (bad++ < 3)
                    fprintf(stderr, "%s case %zu (bos %d): \"%.*s\" decodes to \"%s\"\n", inp, i,
                            bos, (int)cl[i], cases[i], text);
            }
            free(text);
            free(ids);
        }
    }
    CHECK(bad == 0, "%s: %zu round trips differ", inp, bad);
    printf("%s: %zu cases round-tripped\n", inp, n);
    free(cases);
    free(cl);
    free(buf);
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

/* Random strings from an alphabet of awkward pieces (invalid bytes, NUL, partial
 * special tokens, mixed scripts): never a failure; valid UTF-8 round-trips. */
static void fuzz(const si_tokenizer *t, const char *name)
{
    static const char *const alpha[] = {
        "a", "Z", " ", "  ", "\n", "\r\n", "\t", "'s", "'LL", "123", "4", "\xC3\xA9", "\xE4\xB8\xAD",
        "\xF0\x9F\xA6\x99", "\xFF", "\xC3", "\xE2\x96", "\x80", "<|", "|>", "<|eot_id|>",
        "<s>", "</s>", "<unk>", "<0x41>", "\xE2\x96\x81", "!!", "...", "\xC2\xA0", "\xE3\x80\x80",
        "\xD9\xA3", "\xCC\x81", "\x00"};
    const size_t na = sizeof alpha / sizeof alpha[0];
    uint64_t x = 88172645463325252ull;
    size_t bad = 0, checked = 0;
    char buf[512];
    for (int iter = 0; iter < 3000; iter++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t parts = x % 24, n = 0;
        for (size_t i = 0; i < parts; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            const char *p = alpha[x % na];
            size_t l = (x % na == na - 1) ? 1 : strlen(p); /* the NUL piece */
            memcpy(buf + n, p, l);
            n += l;
        }
        for (int special = 0; special < 2; special++) {
            int32_t *ids;
            size_t nid;
            si_error err = {0};
            int rc = si_tokenize(t, buf, n, special, special, &ids, &nid, &err);
            /* what must round-trip: plain text; for BPE also parsed special tokens
             * (SPM puts a space prefix after each one, so that does not) */
            bool exact = !special || si_tokenizer_kind(t) == SI_VOCAB_BPE;
            /* SPM cannot tell a literal U+2581 from an escaped space */
            if (si_tokenizer_kind(t) == SI_VOCAB_SPM && memmem(buf, n, "\xE2\x96\x81", 3))
                exact = false;
            CHECK(rc == 0, "%s fuzz %d: %s", name, iter, err.msg);
            if (rc < 0)
                continue;
            char *back;
            size_t bl;
            unsigned fl = SI_DETOK_STRIP_SPACE | (special ? SI_DETOK_SPECIAL : 0u);
            CHECK(si_detokenize(t, ids, nid, fl, &back, &bl, &err) == 0, "detok: %s", err.msg);
            /* with BOS on, its text comes first */
            const char *bos = special ? si_tokenizer_text(t, si_tokenizer_bos(t)) : "";
            size_t bn = strlen(bos);
            if (exact && valid_utf8(buf, n)) {
                checked++;
                if (bl != bn + n || memcmp(back, bos, bn) != 0 ||
                    memcmp(back + bn, buf, n) != 0) {
                    if (bad++ < 3)
                        fprintf(stderr, "%s: \"%.*s\" -> \"%s\"\n", name, (int)n, buf, back);
                }
            }
            free(back);
            free(ids);
        }
    }
    CHECK(bad == 0, "%s: %zu of %zu valid fuzz strings did not round-trip", name, bad, checked);
    printf("%s: fuzz ok (%zu valid strings round-tripped)\n", name, checked);
}

int main(void)
{
    si_tokenizer *bpe = tt_load(tt_path("llama3-vocab.gguf"));
    si_tokenizer *spm = tt_load(tt_path("llama-spm-vocab.gguf"));
    roundtrip_file(bpe, "llama3-corpus.inp");
    roundtrip_file(bpe, "llama-bpe.inp");
    roundtrip_file(spm, "llama-spm-corpus.inp");
    roundtrip_file(spm, "llama-spm.inp");
    fuzz(bpe, "llama3");
    fuzz(spm, "llama-spm");
    si_tokenizer_free(bpe);
    si_tokenizer_free(spm);
    return tt_failures ? 1 : 0;
}
