/* Drafting: guesses of the tokens that follow, checked by the model in the same pass
 * as the token they follow (the batch engine verifies them; this only proposes).
 *
 * A draft is a tree: node i guesses token id[i] right after its parent's token
 * (parent -1: right after the token being evaluated, the root). Siblings are distinct
 * tokens, parents come before their children, so a prefix shared by several guesses
 * is one path. */
#ifndef STREAMINFER_DRAFT_H
#define STREAMINFER_DRAFT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SI_DRAFT_MAX_NODES 64

typedef enum si_draft_mode {
    SI_DRAFT_NONE = 0,
    SI_DRAFT_LOOKUP,    /* prompt lookup: what followed earlier occurrences of the last n-gram */
    SI_DRAFT_AUTO,      /* lookup, as wide as compute hides under the reads */
} si_draft_mode;

typedef struct si_draft {
    uint32_t n;
    int32_t id[SI_DRAFT_MAX_NODES];
    int16_t parent[SI_DRAFT_MAX_NODES]; /* -1: the root */
    uint8_t depth[SI_DRAFT_MAX_NODES];  /* 1 for the root's children */
} si_draft;

/* "none", "lookup", "auto" -> mode; -1 when unknown. */
int si_draft_mode_parse(const char *s);
const char *si_draft_mode_name(si_draft_mode m);

/* Prompt lookup over hist[0..n) (the prompt and the text so far, the token being
 * evaluated last): for n-grams of the last 4, 3, 2, 1 tokens, longest first, the
 * continuations that followed their most recent earlier occurrences, up to
 * max_branches different ones, each at most max_depth long, at most max_nodes nodes
 * in all. Returns the nodes added to d (which starts empty). */
uint32_t si_draft_lookup(const int32_t *hist, uint32_t n, uint32_t max_depth, uint32_t max_branches,
                         uint32_t max_nodes, si_draft *d);

#ifdef __cplusplus
}
#endif
#endif
