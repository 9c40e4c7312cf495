/* The hand-written Llama 3 pre-tokenizer (src/text/pretok.c) against PCRE2 running the
 * regex itself: the character classes for every code point, and the splits of the
 * fixture texts and of random strings over tricky characters. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "../../src/text/tok_internal.h"
#include "../../src/text/unicode_tables.h"
#include "tok_test.h"

#define WS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}" \
           "\\x{202F}\\x{205F}\\x{3000}"
/* The regex with \s spelled as White_Space and the contractions in the ASCII form
 * llama.cpp uses: PCRE2's (and Oniguruma's) caseless 's also matches U+017F (long s),
 * llama.cpp's does not, and the fixtures come from llama.cpp. */
static const char llama3_re[] =
    "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]"
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
    "|\\p{N}{1,3}"
    "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*"
    "|[" WS "]*[\\r\\n]+"
    "|[" WS "]+(?![^" WS "])"
    "|[" WS "]+";

static pcre2_code *compile(const char *pat)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo,
                                   NULL);
    if (!re) {
        fprintf(stderr, "pcre2_compile failed at %zu\n", (size_t)eo);
        exit(1);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

static void test_classes(void)
{
    pcre2_code *re = compile("^(?:(\\p{L})|(\\p{N})|([" WS "]))");
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    size_t bad = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        char s[4];
        size_t n = si_utf8_encode(cp, s);
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
        uint8_t want = 0;
        if (rc > 1) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            for (int g = 1; g < rc; g++)
                if (ov[2 * g] != PCRE2_UNSET)
                    want |= (uint8_t)(1u << (g - 1));
        }
        uint8_t got = si_pretok_class(cp);
        /* a white-space character can't also be L/N; PCRE2 reports the first group */
        if ((got & 4) && want == 4)
            got = 4;
        if (got != want && bad++ < 10)
            fprintf(stderr, "U+%04X: class %u, PCRE2 says %u\n", cp, got, want);
    }
    CHECK(bad == 0, "%zu code points classified differently from PCRE2", bad);
    printf("classes of all code points agree with PCRE2 (tables: Unicode %s)\n",
           si_unicode_version);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
}

typedef struct spans {
    size_t v[4096];
    size_t n;
} spans;

static int collect(void *ctx, size_t off, size_t len)
{
    spans *s = ctx;
    if (s->n < 4096)
        s->v[s->n++] = off + len;
    return 0;
}

static pcre2_code *split_re;
static pcre2_match_data *split_md;

/* Compare the splits of s; returns true when equal. */
static bool same_split(const char *s, size_t n)
{
    static spans a, b;
    a.n = b.n = 0;
    si_pretok_llama3(s, n, collect, &a);
    size_t pos = 0;
    while (pos < n && b.n < 4096) {
        int rc = pcre2_match(split_re, (PCRE2_SPTR)s, n, pos, 0, split_md, NULL);
        if (rc < 0)
            return false;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(split_md);
        if (ov[0] != pos)
            return false; /* a gap: the regex skipped text */
        b.v[b.n++] = ov[1];
        pos = ov[1];
    }
    return a.n == b.n && memcmp(a.v, b.v, a.n * sizeof a.v[0]) == 0;
}

static void test_fixture_splits(const char *inp)
{
    size_t len;
    char *buf = tt_read(tt_path(inp), &len);
    char **cases;
    size_t *cl;
    size_t n = tt_split(buf, len, CASE_SEP, &cases, &cl), bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!same_split(cases[i], cl[i]) && bad++ < 3)
            fprintf(stderr, "%s case %zu splits differently: \"%.*s\"\n", inp, i, (int)cl[i],
                    cases[i]);
    CHECK(bad == 0, "%s: %zu cases split differently", inp, bad);
    printf("%s: %zu cases split as PCRE2 does\n", inp, n);
    free(cases);
    free(cl);
    free(buf);
}

static void test_random_splits(void)
{
    static const uint32_t pool[] = {
        'a', 'Z', 's', 'S', 't', 'r', 'E', 'l', 'L', 'd', 'v', 'm', '\'', '0', '7', ' ', ' ',
        '\t', '\r', '\n', '\v', '\f', '.', ',', '!', '(', '"', '_', '-', 0x85, 0xA0, 0x1680,
        0x2003, 0x2028, 0x202F, 0x3000, 0xE9, 0xDF, 0x17F, 0x212A, 0x4E2D, 0x6587, 0x0660,
        0x0663, 0x0301, 0x0915, 0x093F, 0x1F999, 0x1F600, 0xFFFD, 0x00BD, 0x2161, 0x05D0, 0x200D,
        0xFE0F, 0xE000, 0x10FFFD};
    const size_t np = sizeof pool / sizeof pool[0];
    uint64_t x = 0x2545F4914F6CDD1Dull;
    size_t bad = 0;
    char s[256];
    for (int iter = 0; iter < 200000; iter++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t len = 1 + (size_t)(x % 12), n = 0;
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            n += si_utf8_encode(pool[x % np], s + n);
        }
        if (!same_split(s, n) && bad++ < 5) {
            fprintf(stderr, "random string splits differently:");
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, " %02X", (uint8_t)s[i]);
            fprintf(stderr, "\n");
        }
    }
    CHECK(bad == 0, "%zu random strings split differently", bad);
    printf("200000 random strings split as PCRE2 does\n");
}

int main(void)
{
    test_classes();
    split_re = compile(llama3_re);
    split_md = pcre2_match_data_create_from_pattern(split_re, NULL);
    test_random_splits();
    const char *root = getenv("SI_FIXTURES");
    if (root && access(root, F_OK) == 0) {
        test_fixture_splits("llama3-corpus.inp");
        test_fixture_splits("llama-bpe.inp");
    } else {
        printf("fixtures not found, fixture splits skipped\n");
    }
    pcre2_match_data_free(split_md);
    pcre2_code_free(split_re);
    return tt_failures ? 1 : 0;
}
