/* The Llama 3 pre-tokenizer, written out as a matcher instead of a regex engine:
 *
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *    ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * Each alternative is tried in order at the current position, with the result a
 * backtracking engine (Hugging Face's Oniguruma, PCRE2) gives; the comments say how
 * backtracking resolves where it matters. \s is the Unicode White_Space property,
 * \p{L} / \p{N} come from the generated tables in unicode_tables.c.
 * tests/text checks this against PCRE2 running the regex itself. */
#include <stdlib.h>

#include "tok_internal.h"
#include "unicode_tables.h"

enum { C_L = 1, C_N = 2, C_WS = 4 };

static uint8_t range_class(uint32_t cp)
{
    unsigned lo = 0, hi = si_ucd_n_ranges;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (cp < si_ucd_ranges[mid].lo)
            hi = mid;
        else if (cp > si_ucd_ranges[mid].hi)
            lo = mid + 1;
        else
            return si_ucd_ranges[mid].cls == SI_UCD_LETTER ? C_L : C_N;
    }
    return 0;
}

static bool is_white_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

uint8_t si_pretok_class(uint32_t cp)
{
    if (cp < 128) { /* fast path; the only ASCII letters/digits/spaces */
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z')
            return C_L;
        if (cp >= '0' && cp <= '9')
            return C_N;
        return (cp >= 0x09 && cp <= 0x0D) || cp == ' ' ? C_WS : 0;
    }
    return (uint8_t)(range_class(cp) | (is_white_space(cp) ? C_WS : 0));
}

static bool is_crlf(uint32_t c) { return c == '\r' || c == '\n'; }

static size_t run_of(const uint8_t *cls, size_t p, size_t n, uint8_t mask)
{
    while (p < n && (cls[p] & mask))
        p++;
    return p;
}

/* End (exclusive) of the pre-token starting at p, in code points. */
static size_t match_at(const uint32_t *cp, const uint8_t *cls, size_t p, size_t n)
{
    uint32_t c = cp[p];

    /* (?i:'s|'t|'re|'ve|'m|'ll|'d) - ASCII case folding only, as llama.cpp */
    if (c == '\'' && p + 1 < n) {
        uint32_t a = cp[p + 1] | 0x20; /* lower-cases ASCII letters */
        bool ascii_a = cp[p + 1] < 128;
        if (ascii_a && (a == 's' || a == 't' || a == 'm' || a == 'd'))
            return p + 2;
        if (ascii_a && p + 2 < n && cp[p + 2] < 128) {
            uint32_t b = cp[p + 2] | 0x20;
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
                return p + 3;
        }
    }

    /* [^\r\n\p{L}\p{N}]?\p{L}+ : a letter run, optionally after one character that is
     * neither CR/LF, a letter nor a number. */
    if (cls[p] & C_L)
        return run_of(cls, p, n, C_L);
    if (!is_crlf(c) && !(cls[p] & C_N) && p + 1 < n && (cls[p + 1] & C_L))
        return run_of(cls, p + 1, n, C_L);

    /* \p{N}{1,3} */
    if (cls[p] & C_N) {
        size_t e = p + 1;
        while (e < n && e < p + 3 && (cls[e] & C_N))
            e++;
        return e;
    }

    /*  ?[^\s\p{L}\p{N}]+[\r\n]* : punctuation/symbols, optionally after one space.
     * (Backing off the optional space cannot help: a space is \s.) */
    size_t q = p + (c == ' ');
    if (q < n && !(cls[q] & (C_WS | C_L | C_N))) {
        while (q < n && !(cls[q] & (C_WS | C_L | C_N)))
            q++;
        while (q < n && is_crlf(cp[q]))
            q++;
        return q;
    }

    if (cls[p] & C_WS) {
        size_t e = run_of(cls, p, n, C_WS);
        /* \s*[\r\n]+ : backtracking ends it after the last CR/LF of the run */
        for (size_t k = e; k > p; k--)
            if (is_crlf(cp[k - 1]))
                return k;
        /* \s+(?!\S) : all of it at the end of text; else all but the last white space
         * character, which must stay to precede the next word (needs two or more) */
        if (e == n)
            return e;
        if (e - p >= 2)
            return e - 1;
        /* \s+ */
        return e;
    }
    return p + 1; /* unreachable: every character is L, N, \s or matched above */
}

int si_pretok_llama3(const char *s, size_t n, si_pretok_fn fn, void *ctx)
{
    /* decode once; s is valid UTF-8 (the caller sanitised it) */
    uint32_t *cp = malloc((n + 1) * sizeof *cp);
    uint32_t *off = malloc((n + 1) * sizeof *off);
    uint8_t *cls = malloc(n + 1);
    int rc = 0;
    if (!cp || !off || !cls) {
        rc = SI_ENOMEM;
        goto done;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; m++) {
        size_t k = si_utf8_decode((const uint8_t *)s + i, n - i, &cp[m]);
        if (k == 0) { /* not expected; keep the byte as an "other" character */
            cp[m] = 0xFFFD;
            k = 1;
        }
        off[m] = (uint32_t)i;
        cls[m] = si_pretok_class(cp[m]);
        i += k;
    }
    off[m] = (uint32_t)n;
    for (size_t p = 0; p < m && rc == 0;) {
        size_t e = match_at(cp, cls, p, m);
        rc = fn(ctx, off[p], off[e] - off[p]);
        p = e;
    }
done:
    free(cp);
    free(off);
    free(cls);
    return rc;
}
