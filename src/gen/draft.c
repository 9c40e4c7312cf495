/* Prompt-lookup drafting: text repeats itself (names, code, quoted passages, the
 * loops small models fall into), so what followed the last few tokens the previous
 * times is a cheap guess of what follows now. */
#include "streaminfer/draft.h"

#include <stdbool.h>
#include <string.h>

int si_draft_mode_parse(const char *s)
{
    if (strcmp(s, "none") == 0)
        return SI_DRAFT_NONE;
    if (strcmp(s, "lookup") == 0)
        return SI_DRAFT_LOOKUP;
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
static bool insert(si_draft *d, const int32_t *seq, uint32_t len, uint32_t max_nodes)
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
            if (insert(d, hist + start, len, max_nodes))
                branches++;
        }
    }
    return d->n;
}
