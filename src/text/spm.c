/* SentencePiece (BPE-by-score) tokenization as llama.cpp's SPM tokenizer does it.
 *
 * The fragment gets a leading space when asked, spaces become U+2581, the text is cut
 * into UTF-8 characters, and the adjacent pair whose concatenation is the
 * highest-scoring token is merged repeatedly (leftmost first on ties). Symbols that
 * are not tokens at the end fall back to <0xNN> byte tokens. */
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "tok_internal.h"

typedef struct bigram {
    float score;
    int32_t left, right;
    uint32_t size; /* bytes of the concatenation, to recognise stale entries */
} bigram;

static bool bigram_before(const bigram *a, const bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

SI_DEFINE_HEAP(bigram_heap, bigram, bigram_before)

typedef struct spm_work {
    const char *s;
    uint32_t *start, *len;
    int32_t *prev, *next;
    bigram *heap;
    size_t nh;
    size_t cap; /* symbols the arrays hold */
} spm_work;

/* Room for a piece of n bytes (at most n symbols; every merge queues at most two
 * bigrams besides the n - 1 initial ones). Grows with the largest piece only. */
static int work_reserve(spm_work *w, size_t n)
{
    if (n <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < n)
        cap *= 2;
    uint32_t *start = realloc(w->start, cap * sizeof *start);
    if (start)
        w->start = start;
    uint32_t *len = realloc(w->len, cap * sizeof *len);
    if (len)
        w->len = len;
    int32_t *prev = realloc(w->prev, cap * sizeof *prev);
    if (prev)
        w->prev = prev;
    int32_t *next = realloc(w->next, cap * sizeof *next);
    if (next)
        w->next = next;
    bigram *heap = realloc(w->heap, 3 * cap * sizeof *heap);
    if (heap)
        w->heap = heap;
    if (!start || !len || !prev || !next || !heap)
        return SI_ENOMEM;
    w->cap = cap;
    return 0;
}

static void try_bigram(const si_tokenizer *t, spm_work *w, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return;
    uint32_t size = w->len[l] + w->len[r]; /* r follows l directly in the text */
    int32_t id = si_tok_lookup(t, w->s + w->start[l], size);
    if (id < 0)
        return;
    bigram_heap_push(w->heap, &w->nh, (bigram){t->score[id], l, r, size});
}

/* A final symbol: its token, or one <0xNN> token per byte. A vocabulary without
 * byte tokens gets one <unk> for the whole character instead (as SentencePiece
 * without byte fallback), and an error when it has no <unk> either. */
static int emit_symbol(const si_tokenizer *t, const char *s, uint32_t n, si_idvec *out,
                       si_error *err)
{
    int32_t id = si_tok_lookup(t, s, n);
    if (id >= 0)
        return si_idvec_push(out, id);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        if (t->byte_tok[b] >= 0)
            continue;
        SI_CHECK(t->unk < 0, err, SI_EUNSUPPORTED,
                 "text needs byte 0x%02X but the vocabulary has no <0x%02X> token and no "
                 "unknown token",
                 b, b);
        return si_idvec_push(out, t->unk);
    }
    for (uint32_t i = 0; i < n; i++)
        SI_TRY(si_idvec_push(out, t->byte_tok[(uint8_t)s[i]]));
    return 0;
}

static uint32_t pack_char(const char *s, uint32_t k)
{
    uint32_t v = 0;
    memcpy(&v, s, k);
    return v;
}

static uint32_t pair_slot(uint64_t key)
{
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32);
}

bool si_spm_pair_known(const si_tokenizer *t, uint64_t key)
{
    for (uint32_t i = pair_slot(key) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
        if (t->pairs[i] == key)
            return true;
        if (t->pairs[i] == UINT64_MAX) /* empty; no valid UTF-8 pair packs to this */
            return false;
    }
}

int si_spm_build_pairs(si_tokenizer *t, si_error *err)
{
    uint64_t n = 0; /* upper bound: one pair per byte of token text */
    for (uint32_t id = 0; id < t->n_vocab; id++)
        n += si_tok_len(t, id);
    uint32_t size = 16;
    while (size < 2 * n)
        size <<= 1;
    t->pairs = malloc((size_t)size * sizeof *t->pairs);
    SI_CHECK(!t->pairs, err, SI_ENOMEM, "out of memory");
    memset(t->pairs, 0xFF, (size_t)size * sizeof *t->pairs);
    t->pair_mask = size - 1;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->text + t->off[id];
        uint32_t len = si_tok_len(t, id), prev = 0;
        for (uint32_t off = 0; off < len;) {
            uint32_t k = si_spm_char_len((uint8_t)s[off]);
            if (k > len - off)
                k = len - off;
            uint32_t c = pack_char(s + off, k);
            if (off > 0) {
                uint64_t key = (uint64_t)prev << 32 | c;
                uint32_t i = pair_slot(key) & t->pair_mask;
                while (t->pairs[i] != UINT64_MAX && t->pairs[i] != key)
                    i = (i + 1) & t->pair_mask;
                t->pairs[i] = key;
            }
            prev = c;
            off += k;
        }
    }
    return 0;
}

/* The merge loop on w->s[0 .. n). */
static int merge_and_emit(const si_tokenizer *t, spm_work *w, uint32_t n, si_idvec *out,
                          si_error *err)
{
    SI_TRY(work_reserve(w, n));
    int32_t nsym = 0;
    w->nh = 0;
    for (uint32_t off = 0; off < n; nsym++) {
        uint32_t k = si_spm_char_len((uint8_t)w->s[off]);
        if (k > n - off)
            k = n - off;
        w->start[nsym] = off;
        w->len[nsym] = k;
        w->prev[nsym] = nsym - 1;
        w->next[nsym] = -1;
        if (nsym > 0)
            w->next[nsym - 1] = nsym;
        off += k;
    }
    for (int32_t i = 1; i < nsym; i++)
        try_bigram(t, w, i - 1, i);
    while (w->nh > 0) {
        bigram b = bigram_heap_pop(w->heap, &w->nh);
        if (w->len[b.left] == 0 || w->len[b.right] == 0 ||
            w->len[b.left] + w->len[b.right] != b.size)
            continue; /* stale: a side has merged since */
        w->len[b.left] += w->len[b.right];
        w->len[b.right] = 0;
        int32_t nx = w->next[b.right];
        w->next[b.left] = nx;
        if (nx >= 0)
            w->prev[nx] = b.left;
        try_bigram(t, w, w->prev[b.left], b.left);
        try_bigram(t, w, b.left, nx);
    }
    for (int32_t i = nsym > 0 ? 0 : -1; i >= 0; i = w->next[i])
        SI_TRY(emit_symbol(t, w->s + w->start[i], w->len[i], out, err));
    return 0;
}

int si_spm_encode(const si_tokenizer *t, const char *s, size_t n, bool space_prefix,
                  si_idvec *out, si_error *err)
{
    SI_CHECK(n > UINT32_MAX / 4, err, SI_EINVAL, "text too long (%zu bytes)", n);
    /* escaped text: each space (and the prefix) becomes U+2581 (3 bytes) */
    char *e = malloc(3 * (n + 1));
    spm_work w = {0};
    int rc;
    if (!e) {
        rc = si_errorf(err, SI_ENOMEM, "out of memory tokenizing %zu bytes", n);
        goto done;
    }
    size_t m = 0;
    if (space_prefix) {
        memcpy(e, "\xE2\x96\x81", 3);
        m = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(e + m, "\xE2\x96\x81", 3);
            m += 3;
        } else {
            e[m++] = s[i];
        }
    }
    /* Cut where no token spans the boundary: the pieces merge independently and in
     * the same order as they would together, and the heap stays small. */
    uint32_t start = 0, prev = 0;
    rc = 0;
    for (uint32_t off = 0; off < m && rc == 0;) {
        uint32_t k = si_spm_char_len((uint8_t)e[off]);
        if (k > m - off)
            k = (uint32_t)m - off;
        uint32_t c = pack_char(e + off, k);
        if (off > start && !si_spm_pair_known(t, (uint64_t)prev << 32 | c)) {
            w.s = e + start;
            rc = merge_and_emit(t, &w, off - start, out, err);
            start = off;
        }
        prev = c;
        off += k;
    }
    if (rc == 0 && start < m) {
        w.s = e + start;
        rc = merge_and_emit(t, &w, (uint32_t)m - start, out, err);
    }
    if (rc == SI_ENOMEM)
        si_errorf(err, SI_ENOMEM, "out of memory tokenizing %zu bytes", n);
done:
    free(e);
    free(w.start);
    free(w.len);
    free(w.prev);
    free(w.next);
    free(w.heap);
    return rc;
}
