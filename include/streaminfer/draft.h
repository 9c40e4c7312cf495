/* Drafting: guesses of the tokens that follow, checked by the model in the same pass
 * as the token they follow (the batch engine verifies them; this only proposes).
 * Two sources: prompt lookup (what followed earlier occurrences of the last tokens)
 * and lookahead (n-grams the model produced from a window of guesses at future
 * positions, advanced one Jacobi iteration per pass).
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
    SI_DRAFT_AUTO,      /* lookup, then lookahead beside it, as wide as compute hides under the reads */
    SI_DRAFT_LOOKAHEAD, /* lookahead (Jacobi) decoding: the pool of n-grams a window of guesses produces */
} si_draft_mode;

typedef enum si_draft_source {
    SI_DRAFT_SRC_LOOKUP = 0,
    SI_DRAFT_SRC_LOOKAHEAD,
    SI_DRAFT_SRC_N_
} si_draft_source;

typedef struct si_draft {
    uint32_t n;
    int32_t id[SI_DRAFT_MAX_NODES];
    int16_t parent[SI_DRAFT_MAX_NODES]; /* -1: the root */
    uint8_t depth[SI_DRAFT_MAX_NODES];  /* 1 for the root's children */
    uint8_t src[SI_DRAFT_MAX_NODES];    /* si_draft_source of the guess that added the node */
} si_draft;

/* "none", "lookup", "lookahead", "auto" -> mode; -1 when unknown. */
int si_draft_mode_parse(const char *s);
const char *si_draft_mode_name(si_draft_mode m);

/* Prompt lookup over hist[0..n) (the prompt and the text so far, the token being
 * evaluated last): for n-grams of the last 4, 3, 2, 1 tokens, longest first, the
 * continuations that followed their most recent earlier occurrences, up to
 * max_branches different ones, each at most max_depth long, at most max_nodes nodes
 * in all. Returns the nodes added to d (which starts empty). */
uint32_t si_draft_lookup(const int32_t *hist, uint32_t n, uint32_t max_depth, uint32_t max_branches,
                         uint32_t max_nodes, si_draft *d);

/* Lookahead (Jacobi) decoding, one request's state.
 *
 * Each pass evaluates a window of guesses at the positions right after the token
 * being evaluated, as one chain (each sees the sequence, that token and the window
 * before it). The model's argmax at each window position is the next pass's guess
 * one position further on (a Jacobi iteration). A guess that came from the model
 * carries its lineage: the tokens the earlier iterations produced on the diagonal
 * before it, each the model's choice after the one before. Every pass, each window
 * position gives the n-gram lineage + guess + the model's choice after it (and its
 * shorter suffixes) to a pool keyed by the first token; the pool's n-grams that start
 * with the token being evaluated are guesses for the verification tree. */
#define SI_LOOKAHEAD_WINDOW_MAX 16
#define SI_LOOKAHEAD_N 4        /* longest n-gram in the pool: its key and 3 tokens after it */
#define SI_LOOKAHEAD_POOL 512

typedef struct si_ngram {
    int32_t tok[SI_LOOKAHEAD_N]; /* tok[0]: the key */
    uint8_t len;                 /* 2 .. SI_LOOKAHEAD_N */
    uint32_t stamp;              /* when it was last produced (newest first) */
} si_ngram;

typedef struct si_lookahead {
    /* guesses for the next pass: win[k] for position base + k */
    uint32_t base, n_win;
    int32_t win[SI_LOOKAHEAD_WINDOW_MAX];
    int32_t lin[SI_LOOKAHEAD_WINDOW_MAX][SI_LOOKAHEAD_N - 2]; /* lineage, oldest first */
    uint8_t n_lin[SI_LOOKAHEAD_WINDOW_MAX];
    /* the window being evaluated (si_lookahead_window), at positions cur_base.. */
    uint32_t cur_base, n_cur;
    int32_t cur[SI_LOOKAHEAD_WINDOW_MAX];
    int32_t cur_lin[SI_LOOKAHEAD_WINDOW_MAX][SI_LOOKAHEAD_N - 2];
    uint8_t n_cur_lin[SI_LOOKAHEAD_WINDOW_MAX];
    /* the pool */
    si_ngram pool[SI_LOOKAHEAD_POOL];
    uint32_t n_pool, clock;
} si_lookahead;

/* The window to evaluate after hist[0..n) (positions 0..n-1, the token being
 * evaluated last): w (at most SI_LOOKAHEAD_WINDOW_MAX) guesses for positions n..,
 * the previous iteration's where it made them, else fillers (what the pool or the
 * history says follows the guess before). Writes them to out; returns how many. */
uint32_t si_lookahead_window(si_lookahead *la, const int32_t *hist, uint32_t n, uint32_t w, int32_t *out);
/* The model's argmax after each token of the window si_lookahead_window gave (out[k]
 * after its token k): n-grams into the pool, the next iteration's guesses. */
void si_lookahead_update(si_lookahead *la, const int32_t *out, uint32_t n);
/* Add the pool's n-grams that start with tok to d (which may hold other guesses
 * already), newest first, each extended by the pool's newest n-gram after its last
 * token up to max_depth, at most max_branches new paths, d at most max_nodes nodes.
 * Returns the nodes added. */
uint32_t si_lookahead_draft(const si_lookahead *la, int32_t tok, uint32_t max_depth, uint32_t max_branches,
                            uint32_t max_nodes, si_draft *d);
/* The pool's newest n-gram that starts with tok, or NULL. */
const si_ngram *si_lookahead_find(const si_lookahead *la, int32_t tok);

#ifdef __cplusplus
}
#endif
#endif
