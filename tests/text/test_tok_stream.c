/* The streaming decoder never emits part of a character: multi-byte characters split
 * across byte tokens come out whole, invalid bytes become U+FFFD, and on every corpus
 * case each chunk it returns is complete, valid UTF-8. */
#include "../../src/text/tok_internal.h" /* si_utf8_decode, si_bpe_byte_cp */
#include "tok_test.h"

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

/* Push ids one by one; check every chunk; return the concatenation (malloc'd). */
static char *stream(const si_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                    const char **chunks_out, size_t n_chunks_out)
{
    si_detok *d = si_detok_new(t, flags);
    size_t cap = 16, m = 0;
    char *all = malloc(cap);
    for (size_t i = 0; i <= n; i++) {
        const char *p;
        size_t k;
        si_error err = {0};
        if (i < n)
            CHECK(si_detok_push(d, ids[i], &p, &k, &err) == 0, "push: %s", err.msg);
        else
            si_detok_flush(d, &p, &k);
        CHECK(valid_utf8(p, k), "chunk %zu is not complete UTF-8", i);
        if (chunks_out && i < n_chunks_out)
            CHECK(strlen(chunks_out[i]) == k && memcmp(chunks_out[i], p, k) == 0,
                  "chunk %zu: got \"%.*s\", want \"%s\"", i, (int)k, p, chunks_out[i]);
        while (m + k + 1 > cap)
            cap *= 2;
        all = realloc(all, cap);
        memcpy(all + m, p, k);
        m += k;
    }
    all[m] = 0;
    si_detok_free(d);
    return all;
}

static int32_t spm_byte(const si_tokenizer *t, unsigned b)
{
    char s[8];
    snprintf(s, sizeof s, "<0x%02X>", b);
    return si_tokenizer_find(t, s);
}

static int32_t bpe_byte(const si_tokenizer *t, unsigned b)
{
    char s[8];
    s[si_utf8_encode(si_bpe_byte_cp((uint8_t)b), s)] = 0;
    return si_tokenizer_find(t, s);
}

static void split_chars(const si_tokenizer *t, int32_t (*byte)(const si_tokenizer *, unsigned))
{
    /* 🦙 = F0 9F A6 99 one byte token at a time: nothing until the last byte */
    int32_t ids[] = {byte(t, 'x'), byte(t, 0xF0), byte(t, 0x9F), byte(t, 0xA6), byte(t, 0x99),
                     byte(t, 'y')};
    const char *want[] = {"x", "", "", "", "\xF0\x9F\xA6\x99", "y", ""};
    free(stream(t, ids, 6, 0, want, 7));
    /* an invalid byte comes out as U+FFFD at once */
    int32_t bad[] = {byte(t, 0xFF), byte(t, 'a')};
    const char *want_bad[] = {"\xEF\xBF\xBD", "a", ""};
    free(stream(t, bad, 2, 0, want_bad, 3));
    /* an unfinished character followed by ASCII: one U+FFFD, then the ASCII */
    int32_t cut[] = {byte(t, 0xE2), byte(t, 0x82), byte(t, 'a')};
    const char *want_cut[] = {"", "", ("\xEF\xBF\xBD" "a"), ""};
    free(stream(t, cut, 3, 0, want_cut, 4));
    /* unfinished at the end of the stream: flush gives one U+FFFD */
    int32_t end[] = {byte(t, 0xF0), byte(t, 0x9F), byte(t, 0xA6)};
    const char *want_end[] = {"", "", "", "\xEF\xBF\xBD"};
    free(stream(t, end, 3, 0, want_end, 4));
    /* truncated 4-byte sequence, then a whole one */
    int32_t two[] = {byte(t, 0xF0), byte(t, 0x9F), byte(t, 0xF0), byte(t, 0x9F), byte(t, 0xA6),
                     byte(t, 0x99)};
    const char *want_two[] = {"", "", "\xEF\xBF\xBD", "", "", "\xF0\x9F\xA6\x99", ""};
    free(stream(t, two, 6, 0, want_two, 7));
}

static void corpus_chunks(const si_tokenizer *t, const char *inp, unsigned flags)
{
    size_t len;
    char *buf = tt_read(tt_path(inp), &len);
    char **cases;
    size_t *cl;
    size_t n = tt_split(buf, len, CASE_SEP, &cases, &cl);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t *ids;
        size_t nid;
        si_error err;
        if (si_tokenize(t, cases[i], cl[i], false, false, &ids, &nid, &err) < 0)
            continue;
        int before = tt_failures;
        char *s = stream(t, ids, nid, flags, NULL, 0);
        bad += tt_failures != before || strlen(s) != cl[i] || memcmp(s, cases[i], cl[i]) != 0;
        free(s);
        free(ids);
    }
    CHECK(bad == 0, "%s: %zu cases failed streaming", inp, bad);
    printf("%s: %zu cases streamed in whole characters\n", inp, n);
    free(cases);
    free(cl);
    free(buf);
}

int main(void)
{
    si_tokenizer *spm = tt_load(tt_path("llama-spm-vocab.gguf"));
    si_tokenizer *bpe = tt_load(tt_path("llama3-vocab.gguf"));
    split_chars(spm, spm_byte);
    split_chars(bpe, bpe_byte);
    corpus_chunks(bpe, "llama3-corpus.inp", 0);
    corpus_chunks(spm, "llama-spm-corpus.inp", SI_DETOK_STRIP_SPACE);
    si_tokenizer_free(spm);
    si_tokenizer_free(bpe);
    return tt_failures ? 1 : 0;
}
