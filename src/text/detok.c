/* Stream-safe detokenization: ids in, complete UTF-8 out.
 *
 * A token may end in the middle of a character (byte tokens, or BPE tokens that
 * hold part of a multi-byte character), so bytes of an unfinished character are held
 * back until the next token completes it. Bytes that cannot start or continue a
 * character become U+FFFD at once; an unfinished character at the end of the stream
 * becomes one U+FFFD (the "maximal subpart" rule of Unicode/WHATWG decoders). */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

struct si_detok {
    const si_tokenizer *t;
    unsigned flags;
    bool strip_pending; /* SI_DETOK_STRIP_SPACE not yet applied */
    uint8_t held[4];
    size_t n_held;
    char *buf;
    size_t cap;
};

si_detok *si_detok_new(const si_tokenizer *t, unsigned flags)
{
    si_detok *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->t = t;
    d->flags = flags;
    d->strip_pending = (flags & SI_DETOK_STRIP_SPACE) && t->kind == SI_VOCAB_SPM &&
                       t->add_space_prefix;
    return d;
}

void si_detok_free(si_detok *d)
{
    if (!d)
        return;
    free(d->buf);
    free(d);
}

/* 1: a complete valid character of *k bytes; 0: a valid but unfinished prefix;
 * -1: invalid, *k bytes (the maximal valid prefix, at least 1) make one U+FFFD. */
static int utf8_status(const uint8_t *s, size_t n, size_t *k)
{
    uint8_t c = s[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) {
        *k = 1;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F; /* <= U+10FFFF */
    } else {
        *k = 1;
        return -1;
    }
    for (size_t i = 1; i < len; i++) {
        if (i >= n)
            return 0;
        uint8_t lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (s[i] < lo_i || s[i] > hi_i) {
            *k = i;
            return -1;
        }
    }
    *k = len;
    return 1;
}

static int reserve(si_detok *d, size_t n)
{
    if (n <= d->cap)
        return 0;
    size_t cap = d->cap ? d->cap : 64;
    while (cap < n)
        cap *= 2;
    char *p = realloc(d->buf, cap);
    if (!p)
        return SI_ENOMEM;
    d->buf = p;
    d->cap = cap;
    return 0;
}

/* The bytes id prints as under d's flags. */
static const char *piece_of(si_detok *d, int32_t id, size_t *n)
{
    const si_tokenizer *t = d->t;
    int ty = t->type[id];
    bool special = ty == SI_TOKEN_CONTROL || ty == SI_TOKEN_UNKNOWN;
    const char *p = si_tokenizer_piece(t, id, n);
    if ((special && !(d->flags & SI_DETOK_SPECIAL)) || ty == SI_TOKEN_UNUSED)
        *n = 0;
    if (d->strip_pending && !(id == t->bos && ty == SI_TOKEN_CONTROL)) {
        /* a leading BOS does not take the strip: the text's first word follows it */
        d->strip_pending = false;
        if (*n > 0 && p[0] == ' ')
            p++, (*n)--;
    }
    return p;
}

int si_detok_push(si_detok *d, int32_t id, const char **out, size_t *n_out, si_error *err)
{
    *out = "";
    *n_out = 0;
    SI_CHECK(id < 0 || (uint32_t)id >= d->t->n_vocab, err, SI_EINVAL,
             "token id %d out of range (n_vocab %u)", id, d->t->n_vocab);
    size_t n;
    const char *p = piece_of(d, id, &n);
    size_t total = d->n_held + n;
    /* worst case every byte becomes a 3-byte U+FFFD; the input copy sits behind */
    SI_CHECK(reserve(d, 4 * total + 4) < 0, err, SI_ENOMEM, "out of memory detokenizing");
    uint8_t *in = (uint8_t *)d->buf + 3 * total + 4;
    memcpy(in, d->held, d->n_held);
    memcpy(in + d->n_held, p, n);
    d->n_held = 0;

    size_t o = 0, i = 0;
    while (i < total) {
        size_t k = 0;
        int st = utf8_status(in + i, total - i, &k);
        if (st == 0) { /* wait for the next token */
            memcpy(d->held, in + i, total - i);
            d->n_held = total - i;
            break;
        }
        if (st < 0) {
            memcpy(d->buf + o, "\xEF\xBF\xBD", 3);
            o += 3, i += k;
        } else {
            memmove(d->buf + o, in + i, k); /* o <= 3 * i, never past in + i */
            o += k, i += k;
        }
    }
    *out = d->buf;
    *n_out = o;
    return 0;
}

void si_detok_flush(si_detok *d, const char **out, size_t *n_out)
{
    static const char repl[] = "\xEF\xBF\xBD";
    *out = d->n_held ? repl : "";
    *n_out = d->n_held ? 3 : 0;
    d->n_held = 0;
    d->strip_pending = (d->flags & SI_DETOK_STRIP_SPACE) && d->t->kind == SI_VOCAB_SPM &&
                       d->t->add_space_prefix;
}

int si_detokenize(const si_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                  char **text, size_t *len, si_error *err)
{
    *text = NULL;
    *len = 0;
    si_detok *d = si_detok_new(t, flags);
    SI_CHECK(!d, err, SI_ENOMEM, "out of memory detokenizing");
    size_t cap = 64, m = 0;
    char *s = malloc(cap);
    int rc = s ? 0 : si_errorf(err, SI_ENOMEM, "out of memory detokenizing");
    for (size_t i = 0; i <= n && rc == 0; i++) {
        const char *p;
        size_t k;
        if (i < n)
            rc = si_detok_push(d, ids[i], &p, &k, err);
        else
            si_detok_flush(d, &p, &k);
        if (rc < 0)
            break;
        if (m + k + 1 > cap) {
            while (m + k + 1 > cap)
                cap *= 2;
            char *q = realloc(s, cap);
            if (!q) {
                rc = si_errorf(err, SI_ENOMEM, "out of memory detokenizing");
                break;
            }
            s = q;
        }
        memcpy(s + m, p, k);
        m += k;
    }
    si_detok_free(d);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s[m] = 0;
    *text = s;
    *len = m;
    return 0;
}
