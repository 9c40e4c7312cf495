/* Drafting's sources. Prompt lookup: text repeats itself (names, code, quoted
 * passages, the loops small models fall into), so what followed the last few tokens
 * the previous times is a cheap guess of what follows now. Lookahead: the model's own
 * choices after a window of guesses, iterated pass after pass, give n-grams of text
 * the model would write that need not have occurred yet. */
#include "streaminfer/draft.h"

#include <stdbool.h>
#include <string.h>

int si_draft_mode_parse(const char *s)
{
    if (strcmp(s, "none") == 0)
        return SI_DRAFT_NONE;
    if (strcmp(s, "lookup") == 0)
        return SI_DRAFT_LOOKUP;
    if (strcmp(s, "lookahead") == 0)
        return SI_DRAFT_LOOKAHEAD;
    if (strcmp(s, "auto") == 0)
        return SI_DRAFT_AUTO;
    return -1;
}

const char *si_draft_mode_name(si_draft_mode m)
{
    switch (m) {
    case SI_DRAFT_NONE: return "none";
    case SI_DRAFT_LOOKUP: return "lookup";
    case SI_DRAFT_AUTO: return "auto";
    case SI_DRAFT_LOOKAHEAD: return "lookahead";
    }
    return "?";
}

static int child_of(const si_draft *d, int parent, int32_t id)
{
    for (uint32_t i = 0; i < d->n; i++)
        if (d->parent[i] == parent && d->id[i] == id)
            return (int)i;
    return -1;
}

/* Add the path seq[0..len) below the root; true when it added a node. */
static bool insert(si_draft *d, const int32_t *seq, uint32_t len, uint32_t max_nodes, si_draft_source src)
{
    int parent = -1;
    bool added = false;
    for (uint32_t k = 0; k < len && d->n < max_nodes; k++) {
        int c = child_of(d, parent, seq[k]);
        if (c < 0) {
            c = (int)d->n++;
            d->id[c] = seq[k];
            d->parent[c] = (int16_t)parent;
            d->depth[c] = (uint8_t)(parent < 0 ? 1 : d->depth[parent] + 1);
            d->src[c] = (uint8_t)src;
            added = true;
        }
        parent = c;
    }
    return added;
}

uint32_t si_draft_lookup(const int32_t *hist, uint32_t n, uint32_t max_depth, uint32_t max_branches,
                         uint32_t max_nodes, si_draft *d)
{
    d->n = 0;
    if (max_nodes > SI_DRAFT_MAX_NODES)
        max_nodes = SI_DRAFT_MAX_NODES;
    if (max_depth > 255)
        max_depth = 255;
    uint32_t branches = 0;
    for (uint32_t g = 4; g >= 1 && branches < max_branches && d->n < max_nodes; g--) {
        if (n < g + 1)
            continue;
        const int32_t *pat = hist + n - g;
        /* Most recent first: the nearest repetition is the likeliest to go on. */
        for (uint32_t i = n - g; i-- > 0 && branches < max_branches && d->n < max_nodes;) {
            if (memcmp(hist + i, pat, g * sizeof *pat) != 0)
                continue;
            uint32_t start = i + g, len = n - start < max_depth ? n - start : max_depth;
            if (insert(d, hist + start, len, max_nodes, SI_DRAFT_SRC_LOOKUP))
                branches++;
        }
    }
    return d->n;
}

/* ---- lookahead ---- */

static uint32_t pool_match(const si_lookahead *la, const int32_t *tok)
{
    for (uint32_t i = 0; i < la->n_pool; i++)
        if (la->pool[i].tok[0] == tok[0] && la->pool[i].tok[1] == tok[1])
            return i;
    return UINT32_MAX;
}

/* An n-gram into the pool: one entry per first two tokens, the newest (a longer one
 * it begins keeps its tail); the oldest entry goes when the pool is full. */
static void pool_add(si_lookahead *la, const int32_t *tok, uint32_t len)
{
    uint32_t i = pool_match(la, tok);
    if (i != UINT32_MAX) {
        si_ngram *g = &la->pool[i];
        bool prefix = len <= g->len && memcmp(g->tok, tok, len * sizeof *tok) == 0;
        if (!prefix) {
            memcpy(g->tok, tok, len * sizeof *tok);
            g->len = (uint8_t)len;
        }
        g->stamp = ++la->clock;
        return;
    }
    if (la->n_pool < SI_LOOKAHEAD_POOL) {
        i = la->n_pool++;
    } else {
        i = 0;
        for (uint32_t k = 1; k < la->n_pool; k++)
            if (la->pool[k].stamp < la->pool[i].stamp)
                i = k;
    }
    memcpy(la->pool[i].tok, tok, len * sizeof *tok);
    la->pool[i].len = (uint8_t)len;
    la->pool[i].stamp = ++la->clock;
}

const si_ngram *si_lookahead_find(const si_lookahead *la, int32_t tok)
{
    const si_ngram *best = NULL;
    for (uint32_t i = 0; i < la->n_pool; i++)
        if (la->pool[i].tok[0] == tok && (!best || la->pool[i].stamp > best->stamp))
            best = &la->pool[i];
    return best;
}

/* A guess for a window position whose previous iteration made none: what the pool
 * says follows prev, else what followed prev's last occurrence in the history, else
 * a token of the history. */
static int32_t filler(const si_lookahead *la, const int32_t *hist, uint32_t n, int32_t prev, uint32_t k)
{
    const si_ngram *g = si_lookahead_find(la, prev);
    if (g)
        return g->tok[1];
    for (uint32_t i = n - 1; i-- > 0;)
        if (hist[i] == prev)
            return hist[i + 1];
    return hist[(n - 1) - k % n];
}

uint32_t si_lookahead_window(si_lookahead *la, const int32_t *hist, uint32_t n, uint32_t w, int32_t *out)
{
    if (w > SI_LOOKAHEAD_WINDOW_MAX)
        w = SI_LOOKAHEAD_WINDOW_MAX;
    la->n_cur = 0;
    if (!n)
        return 0;
    la->cur_base = n;
    for (uint32_t k = 0; k < w; k++) {
        uint32_t q = n + k;
        if (q >= la->base && q - la->base < la->n_win) {
            uint32_t j = q - la->base;
            la->cur[k] = la->win[j];
            la->n_cur_lin[k] = la->n_lin[j];
            memcpy(la->cur_lin[k], la->lin[j], sizeof la->cur_lin[k]);
        } else {
            la->cur[k] = filler(la, hist, n, k ? la->cur[k - 1] : hist[n - 1], k);
            la->n_cur_lin[k] = 0;
        }
        out[k] = la->cur[k];
    }
    la->n_cur = w;
    return w;
}

void si_lookahead_update(si_lookahead *la, const int32_t *out, uint32_t n)
{
    if (n > la->n_cur)
        n = la->n_cur;
    enum { L = SI_LOOKAHEAD_N - 2 };
    for (uint32_t k = 0; k < n; k++) {
        int32_t g[SI_LOOKAHEAD_N];
        uint32_t nl = la->n_cur_lin[k];
        memcpy(g, la->cur_lin[k], nl * sizeof *g);
        g[nl] = la->cur[k];
        g[nl + 1] = out[k];
        for (uint32_t s = nl + 1; s-- > 0;) /* the pair first, the longest last: the newest */
            pool_add(la, g + s, nl + 2 - s);
        /* the next iteration: out[k] guesses the position after cur[k] */
        la->win[k] = out[k];
        uint32_t keep = nl + 1 < L ? nl + 1 : L;
        memcpy(la->lin[k], g + nl + 1 - keep, keep * sizeof *g);
        la->n_lin[k] = (uint8_t)keep;
    }
    la->base = la->cur_base + 1;
    la->n_win = n;
    la->n_cur = 0;
}

uint32_t si_lookahead_draft(const si_lookahead *la, int32_t tok, uint32_t max_depth, uint32_t max_branches,
                            uint32_t max_nodes, si_draft *d)
{
    if (max_nodes > SI_DRAFT_MAX_NODES)
        max_nodes = SI_DRAFT_MAX_NODES;
    if (max_depth > SI_DRAFT_MAX_NODES)
        max_depth = SI_DRAFT_MAX_NODES;
    uint32_t n0 = d->n, branches = 0, below = UINT32_MAX;
    while (branches < max_branches && d->n < max_nodes) {
        /* the newest n-gram starting with tok older than the last one taken */
        const si_ngram *g = NULL;
        for (uint32_t i = 0; i < la->n_pool; i++) {
            const si_ngram *c = &la->pool[i];
            if (c->tok[0] == tok && c->stamp < below && (!g || c->stamp > g->stamp))
                g = c;
        }
        if (!g)
            break;
        below = g->stamp;
        int32_t path[SI_DRAFT_MAX_NODES];
        uint32_t len = 0;
        for (uint32_t k = 1; k < g->len && len < max_depth; k++)
            path[len++] = g->tok[k];
        while (len < max_depth) { /* on along the pool's newest n-grams */
            const si_ngram *x = si_lookahead_find(la, path[len - 1]);
            if (!x)
                break;
            for (uint32_t k = 1; k < x->len && len < max_depth; k++)
                path[len++] = x->tok[k];
        }
        if (insert(d, path, len, max_nodes, SI_DRAFT_SRC_LOOKAHEAD))
            branches++;
    }
    return d->n - n0;
}
