/* Drafting's two pure parts.
 *
 * Prompt lookup: the trie of continuations after earlier occurrences of the last
 * n-gram, most recent first, longest n-gram first, limits respected.
 *
 * Speculative sampling (si_sampler_sample_draft): whatever the guesses (the likeliest
 * token, an unlikely one, one outside the kept set, two at once, none), the token it
 * returns follows exactly the chain's distribution (repeat penalty, temperature,
 * top-k, top-p, min-p), which this test computes on its own. Chi-square goodness of
 * fit, N = 40000 draws per case, significance 0.001. The same test must reject a
 * biased rule (accept a guess with probability p, else draw from the whole
 * distribution again), so it has the power to see a wrong one. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streaminfer/draft.h"
#include "streaminfer/sampler.h"
#include "../test_util.h"

#define V 12
#define N_DRAWS 40000

static void check_lookup(void)
{
    si_draft d;
    const int32_t h[] = {1, 2, 3, 4, 9, 1, 2, 3, 4, 7, 5, 1, 2, 3, 4};
    uint32_t n = sizeof h / sizeof *h;
    CHECK_EQ_INT(si_draft_lookup(h, n, 3, 4, 16, &d), 6);
    /* most recent occurrence first: 7 5 1, then 9 1 2 */
    CHECK(d.id[0] == 7 && d.parent[0] == -1 && d.depth[0] == 1);
    CHECK(d.id[1] == 5 && d.parent[1] == 0 && d.depth[1] == 2);
    CHECK(d.id[2] == 1 && d.parent[2] == 1 && d.depth[2] == 3);
    CHECK(d.id[3] == 9 && d.parent[3] == -1);
    CHECK(d.id[4] == 1 && d.parent[4] == 3);
    CHECK(d.id[5] == 2 && d.parent[5] == 4);
    /* one branch only; a node budget cuts the path */
    CHECK_EQ_INT(si_draft_lookup(h, n, 3, 1, 16, &d), 3);
    CHECK_EQ_INT(si_draft_lookup(h, n, 8, 4, 2, &d), 2);
    CHECK(d.id[0] == 7 && d.id[1] == 5);
    /* shared prefixes are one path */
    const int32_t g[] = {5, 6, 7, 8, 5, 6, 7, 9, 5};
    CHECK_EQ_INT(si_draft_lookup(g, 9, 3, 4, 16, &d), 4); /* 6 7 9 and 6 7 8: 6, 7, 9, 8 */
    CHECK(d.id[0] == 6 && d.id[1] == 7 && d.id[2] == 9 && d.id[3] == 8 && d.parent[3] == 1);
    /* nothing repeats: nothing to guess */
    const int32_t u[] = {1, 2, 3, 4, 5};
    CHECK_EQ_INT(si_draft_lookup(u, 5, 4, 4, 16, &d), 0);
    CHECK_EQ_INT(si_draft_lookup(u, 1, 4, 4, 16, &d), 0);
    CHECK(si_draft_mode_parse("auto") == SI_DRAFT_AUTO && si_draft_mode_parse("lookahead") == SI_DRAFT_LOOKAHEAD);
    CHECK(si_draft_mode_parse("jacobi") == -1 && strcmp(si_draft_mode_name(SI_DRAFT_LOOKAHEAD), "lookahead") == 0);
    CHECK(d.src[0] == SI_DRAFT_SRC_LOOKUP);
}

/* Lookahead: a "model" that writes 10 11 12 13 10 11 ... (the next of t is t+1 from 10
 * to 13, then 10 again), played by hand. The window's guesses move one position on per
 * pass and carry their lineage, the pool gets the diagonal n-grams and their suffixes,
 * and the pool's candidates for a token are its n-grams, extended along the pool. */
static int32_t next_of(int32_t t) { return t >= 10 && t < 13 ? t + 1 : 10; }

static void check_lookahead(void)
{
    static si_lookahead la; /* zeroed: empty window and pool */
    int32_t hist[64] = {1, 2, 3, 10}, w[4], out[4];
    uint32_t n = 4;
    /* first pass: no guesses yet, fillers from the history (after 10: nothing; a token of it) */
    CHECK_EQ_INT(si_lookahead_window(&la, hist, n, 4, w), 4);
    for (int k = 0; k < 4; k++)
        out[k] = next_of(w[k]);
    si_lookahead_update(&la, out, 4);
    CHECK(la.n_pool >= 3); /* (10 11) (2 10) (3 10): fillers repeat 10 */
    /* the model's choice after each guess is the guess one position further on */
    for (int pass = 0; pass < 6; pass++) {
        hist[n] = next_of(hist[n - 1]);
        n++;
        int32_t prev[4];
        memcpy(prev, out, sizeof prev);
        CHECK_EQ_INT(si_lookahead_window(&la, hist, n, 4, w), 4);
        for (int k = 0; k < 4; k++)
            CHECK(w[k] == prev[k]); /* one token made per pass: the window starts where the last one's guesses do */
        for (int k = 0; k < 4; k++)
            out[k] = next_of(w[k]);
        si_lookahead_update(&la, out, 4);
    }
    /* two guesses accepted beside the token made: the window moves on by two more */
    for (int k = 0; k < 3; k++, n++)
        hist[n] = next_of(hist[n - 1]);
    CHECK_EQ_INT(si_lookahead_window(&la, hist, n, 4, w), 4);
    CHECK(w[0] == out[2] && w[1] == out[3] && la.n_cur_lin[0] == 2 && la.n_cur_lin[2] == 0);
    CHECK(w[2] == next_of(w[1])); /* a filler from the pool */
    for (int k = 0; k < 4; k++)
        out[k] = next_of(w[k]);
    si_lookahead_update(&la, out, 4);
    /* every guess now carries two earlier ones: the pool holds the 4-grams of the loop */
    const si_ngram *g = si_lookahead_find(&la, 11);
    CHECK(g && g->len == 4 && g->tok[1] == 12 && g->tok[2] == 13 && g->tok[3] == 10);
    si_draft d = {.n = 0};
    CHECK_EQ_INT(si_lookahead_draft(&la, 11, 6, 4, 16, &d), 6); /* 12 13 10, then on: 11 12 13 */
    const int32_t want[] = {12, 13, 10, 11, 12, 13};
    for (int k = 0; k < 6; k++)
        CHECK(d.id[k] == want[k] && d.depth[k] == k + 1 && d.src[k] == SI_DRAFT_SRC_LOOKAHEAD);
    /* beside other guesses: shared prefixes stay one path and keep their source */
    const int32_t h2[] = {11, 12, 7, 11};
    CHECK_EQ_INT(si_draft_lookup(h2, 4, 2, 4, 16, &d), 2); /* 12 7 */
    CHECK_EQ_INT(si_lookahead_draft(&la, 11, 3, 4, 16, &d), 2); /* 13 10 below the shared 12 */
    CHECK(d.n == 4 && d.src[0] == SI_DRAFT_SRC_LOOKUP && d.parent[2] == 0 && d.src[2] == SI_DRAFT_SRC_LOOKAHEAD);
    /* limits: nodes, branches; an unknown token has no candidates */
    d.n = 0;
    CHECK_EQ_INT(si_lookahead_draft(&la, 11, 8, 4, 2, &d), 2);
    d.n = 0;
    CHECK_EQ_INT(si_lookahead_draft(&la, 99, 8, 4, 16, &d), 0);
    /* a full pool forgets its oldest n-grams, not its newest */
    static si_lookahead big;
    int32_t hb[2] = {5, 6};
    for (int32_t t = 0; t < 3 * SI_LOOKAHEAD_POOL; t++) {
        big.base = 0, big.n_win = 0; /* fresh fillers each time */
        si_lookahead_window(&big, hb, 2, 1, w);
        int32_t o = 1000 + t;
        big.cur[0] = 2000 + t; /* a distinct key per pass */
        si_lookahead_update(&big, &o, 1);
    }
    CHECK_EQ_INT(big.n_pool, SI_LOOKAHEAD_POOL);
    CHECK(si_lookahead_find(&big, 2000 + 3 * SI_LOOKAHEAD_POOL - 1) && !si_lookahead_find(&big, 2000));
}

/* The chain's distribution, computed here from its definition. */
static void exact(const float *logits, const si_sampler_opts *o, const int32_t *recent, int n_recent, double *p)
{
    double l[V];
    for (int i = 0; i < V; i++)
        l[i] = logits[i];
    for (int i = 0; i < V; i++)
        for (int k = 0; k < n_recent; k++)
            if (recent[k] == i) {
                l[i] = logits[i] > 0 ? logits[i] / o->repeat_penalty : logits[i] * o->repeat_penalty;
                break;
            }
    int order[V];
    double w[V], mx = -1e30;
    for (int i = 0; i < V; i++)
        mx = l[i] > mx ? l[i] : mx;
    for (int i = 0; i < V; i++)
        w[i] = exp((l[i] - mx) / o->temp), order[i] = i;
    for (int a = 0; a < V; a++) /* by weight, then id */
        for (int b = a + 1; b < V; b++)
            if (w[order[b]] > w[order[a]] || (w[order[b]] == w[order[a]] && order[b] < order[a])) {
                int t = order[a];
                order[a] = order[b], order[b] = t;
            }
    int keep = o->top_k > 0 && o->top_k < V ? o->top_k : V;
    double total = 0, acc = 0;
    for (int i = 0; i < keep; i++)
        total += w[order[i]];
    for (int i = 0; i < keep; i++) {
        acc += w[order[i]];
        if (acc >= o->top_p * total) {
            keep = i + 1;
            break;
        }
    }
    int k2 = 1;
    while (k2 < keep && w[order[k2]] >= o->min_p * w[order[0]])
        k2++;
    keep = k2;
    double sum = 0;
    for (int i = 0; i < keep; i++)
        sum += w[order[i]];
    memset(p, 0, V * sizeof *p);
    for (int i = 0; i < keep; i++)
        p[order[i]] = w[order[i]] / sum;
}

/* Chi-square of counts against N*p over the tokens p keeps (a count outside it fails
 * at once); 0.001 critical values for 1..11 degrees of freedom. */
static double chi2(const long *count, const double *p, int *df)
{
    double x = 0;
    int k = 0;
    for (int i = 0; i < V; i++) {
        if (p[i] == 0) {
            CHECKF(count[i] == 0, "token %d, outside the kept set, was drawn %ld times", i, count[i]);
            continue;
        }
        double e = p[i] * N_DRAWS;
        x += (count[i] - e) * (count[i] - e) / e;
        k++;
    }
    *df = k - 1;
    return x;
}

static const double crit001[] = {0, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877,
                                 29.588, 31.264};

/* The wrong rule: accept a guess with probability p, else draw again from all of p. */
static int32_t biased(test_rng *rng, const double *p, const int32_t *cands, int nc)
{
    for (int k = 0; k < nc; k++)
        if (test_rng_unit(rng) < p[cands[k]])
            return cands[k];
    double r = test_rng_unit(rng), acc = 0;
    for (int i = 0; i < V; i++) {
        acc += p[i];
        if (r < acc)
            return i;
    }
    return V - 1;
}

int main(void)
{
    check_lookup();
    check_lookahead();
    const float logits[V] = {2.0f, 1.6f, 1.1f, 0.9f, 0.4f, 0.2f, -0.3f, -0.8f, -1.5f, -2.5f, 1.3f, -0.1f};
    const int32_t recent[] = {1, 10};
    si_sampler_opts o = {.temp = 0.9f, .top_k = 9, .top_p = 0.97f, .min_p = 0.02f, .repeat_penalty = 1.4f,
                         .repeat_last_n = 4, .seed = 1234};
    double p[V];
    exact(logits, &o, recent, 2, p);
    int32_t top = 0, mid = 2, low = 5, out = 6; /* out: outside the kept set (top-p) */
    CHECK(p[top] > p[mid] && p[mid] > p[low] && p[low] > 0.005 && p[out] == 0);
    struct {
        const char *name;
        int32_t c[2];
        int n;
    } cases[] = {{"no guess", {0}, 0},           {"the likeliest", {top}, 1},  {"an unlikely one", {low}, 1},
                 {"outside the kept set", {out}, 1}, {"two guesses", {mid, top}, 2}};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        si_sampler *s = si_sampler_new(&o, V);
        CHECK(s);
        si_sampler_accept(s, recent[0]);
        si_sampler_accept(s, recent[1]);
        long count[V] = {0};
        long accepted = 0;
        for (int t = 0; t < N_DRAWS; t++) {
            int which;
            int32_t id = si_sampler_sample_draft(s, logits, cases[ci].c, (uint32_t)cases[ci].n, &which);
            CHECK(id >= 0 && id < V);
            count[id]++;
            bool is_cand = false;
            for (int k = 0; k < cases[ci].n; k++)
                is_cand |= cases[ci].c[k] == id;
            CHECKF((which >= 0) == is_cand, "%s: which %d for token %d", cases[ci].name, which, id);
            accepted += which >= 0;
        }
        si_sampler_free(s);
        int df;
        double x = chi2(count, p, &df);
        printf("%-22s chi2 %7.2f (df %d, 0.001 critical %.2f), guesses accepted %.3f\n", cases[ci].name, x, df,
               crit001[df], (double)accepted / N_DRAWS);
        CHECKF(x < crit001[df], "%s: the draws do not follow the chain's distribution (chi2 %.2f)", cases[ci].name, x);
    }
    /* Power: the biased rule is caught on an unlikely guess. */
    test_rng rng;
    test_rng_seed(&rng, 99);
    long count[V] = {0};
    int32_t c[1] = {mid};
    for (int t = 0; t < N_DRAWS; t++)
        count[biased(&rng, p, c, 1)]++;
    int df;
    double x = chi2(count, p, &df);
    printf("%-22s chi2 %7.2f (df %d): rejected, as it must be\n", "biased rule", x, df);
    CHECKF(x > crit001[df], "the test cannot tell a biased acceptance rule (chi2 %.2f)", x);
    /* Greedy: the argmax, and a guess is accepted exactly when it is that token. */
    si_sampler_opts g = {.temp = 0, .repeat_penalty = 1, .seed = 1};
    si_sampler *s = si_sampler_new(&g, V);
    int which;
    int32_t cands[2] = {3, 0};
    CHECK(si_sampler_sample_draft(s, logits, cands, 2, &which) == 0 && which == 1);
    CHECK(si_sampler_sample_draft(s, logits, cands, 1, &which) == 0 && which == -1);
    si_sampler_free(s);
    return 0;
}
