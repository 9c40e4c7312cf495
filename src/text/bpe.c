/* Byte-level BPE with the Llama 3 pre-tokenizer.
 *
 * Text is split by the Llama 3 pre-tokenizer (pretok.c), each piece's bytes become
 * byte-level symbols (token ids), and the lowest-ranked adjacent merge is applied
 * repeatedly, leftmost first on ties - the same order as llama.cpp and Hugging Face.
 * Because the vocabulary was checked at load (every merge names tokens, every byte
 * has a token), BPE runs on ids and needs no string work. */
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "tok_internal.h"

/* ---- merging one pre-token ---- */

typedef struct cand {
    uint32_t rank;
    int32_t left, right; /* symbol positions */
    int32_t lid, rid;    /* their ids when queued, to recognise stale entries */
} cand;

static bool cand_before(const cand *a, const cand *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

SI_DEFINE_HEAP(cand_heap, cand, cand_before)

typedef struct bpe_work {
    int32_t *id, *next, *prev;
    cand *heap;
    size_t cap; /* symbols the arrays hold */
    char *text; /* byte-level text of the word, for the whole-word lookup */
} bpe_work;

/* Room for a word of n bytes; every merge queues at most two candidates besides
 * the n - 1 initial ones. Grows with the longest word only. */
static int work_reserve(bpe_work *w, size_t n)
{
    if (n <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < n)
        cap *= 2;
    int32_t *id = realloc(w->id, cap * sizeof *id);
    if (id)
        w->id = id;
    int32_t *next = realloc(w->next, cap * sizeof *next);
    if (next)
        w->next = next;
    int32_t *prev = realloc(w->prev, cap * sizeof *prev);
    if (prev)
        w->prev = prev;
    cand *heap = realloc(w->heap, 3 * cap * sizeof *heap);
    if (heap)
        w->heap = heap;
    if (!id || !next || !prev || !heap)
        return SI_ENOMEM;
    w->cap = cap;
    return 0;
}

static void try_pair(const si_tokenizer *t, bpe_work *w, size_t *nh, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return;
    const si_merge *m = si_tok_merge(t, w->id[l], w->id[r]);
    if (m)
        cand_heap_push(w->heap, nh, (cand){m->rank, l, r, w->id[l], w->id[r]});
}

static int encode_word(const si_tokenizer *t, const uint8_t *s, size_t n, si_idvec *out,
                       bpe_work *w)
{
    if (n == 1)
        return si_idvec_push(out, t->byte_tok[s[0]]);

    /* Llama 3 (ignore_merges): a pre-token that is itself a token is taken whole,
     * even when the merges would split it differently. */
    if (t->ignore_merges && n <= t->max_len) {
        size_t k = 0;
        for (size_t i = 0; i < n && k <= t->max_len; i++) {
            memcpy(w->text + k, t->bsym[s[i]], 2);
            k += t->bsym_len[s[i]];
        }
        int32_t id = si_tok_lookup(t, w->text, k);
        if (id >= 0)
            return si_idvec_push(out, id);
    }

    SI_TRY(work_reserve(w, n));
    for (size_t i = 0; i < n; i++) {
        w->id[i] = t->byte_tok[s[i]];
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    size_t nh = 0;
    for (size_t i = 0; i + 1 < n; i++)
        try_pair(t, w, &nh, (int32_t)i, (int32_t)i + 1);
    while (nh > 0) {
        cand c = cand_heap_pop(w->heap, &nh);
        if (w->id[c.left] != c.lid || w->next[c.left] != c.right || w->id[c.right] != c.rid)
            continue; /* one side has merged since */
        const si_merge *m = si_tok_merge(t, c.lid, c.rid);
        w->id[c.left] = m->result;
        w->id[c.right] = -1;
        int32_t nx = w->next[c.right];
        w->next[c.left] = nx;
        if (nx >= 0)
            w->prev[nx] = c.left;
        try_pair(t, w, &nh, w->prev[c.left], c.left);
        try_pair(t, w, &nh, c.left, nx);
    }
    for (int32_t i = 0; i >= 0; i = w->next[i])
        SI_TRY(si_idvec_push(out, w->id[i]));
    return 0;
}

/* ---- the whole fragment ---- */

/* llama.cpp decodes text to code points, turning each byte that does not start a
 * valid UTF-8 sequence into U+FFFD; do the same so the regex sees valid UTF-8.
 * Returns s itself when it is valid, else a malloc'd copy in *copy. */
static const char *sanitize(const char *s, size_t n, size_t *n_out, char **copy)
{
    size_t i = 0;
    uint32_t cp;
    while (i < n) {
        size_t k = si_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (k == 0)
            break;
        i += k;
    }
    *copy = NULL;
    *n_out = n;
    if (i == n)
        return s;
    char *c = malloc(3 * n);
    if (!c)
        return NULL;
    memcpy(c, s, i);
    size_t o = i;
    while (i < n) {
        size_t k = si_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (k == 0) {
            memcpy(c + o, "\xEF\xBF\xBD", 3);
            o += 3, i += 1;
        } else {
            memcpy(c + o, s + i, k);
            o += k, i += k;
        }
    }
    *copy = c;
    *n_out = o;
    return c;
}

static int alloc_work(bpe_work *w, size_t max_len)
{
    w->text = malloc(max_len + 8);
    return w->text ? 0 : SI_ENOMEM;
}

static void free_work(bpe_work *w)
{
    free(w->id);
    free(w->next);
    free(w->prev);
    free(w->heap);
    free(w->text);
}

typedef struct word_ctx {
    const si_tokenizer *t;
    const uint8_t *s;
    si_idvec *out;
    bpe_work *w;
} word_ctx;

static int on_word(void *ctx, size_t off, size_t len)
{
    word_ctx *c = ctx;
    return encode_word(c->t, c->s + off, len, c->out, c->w);
}

int si_bpe_encode(const si_tokenizer *t, const char *text, size_t len, si_idvec *out,
                  si_error *err)
{
    if (len == 0)
        return 0;
    SI_CHECK(len > UINT32_MAX / 4, err, SI_EINVAL, "text too long (%zu bytes)", len);
    char *copy;
    size_t n;
    const char *s = sanitize(text, len, &n, &copy);
    SI_CHECK(!s, err, SI_ENOMEM, "out of memory tokenizing %zu bytes", len);
    bpe_work w = {0};
    int rc = alloc_work(&w, t->max_len);
    if (rc == 0) {
        word_ctx c = {t, (const uint8_t *)s, out, &w};
        rc = si_pretok_llama3(s, n, on_word, &c);
    }
    if (rc == SI_ENOMEM)
        si_errorf(err, SI_ENOMEM, "out of memory tokenizing %zu bytes", len);
    free_work(&w);
    free(copy);
    return rc;
}
