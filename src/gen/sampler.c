#include "streaminfer/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    float p;
    int32_t id;
} cand;

struct si_sampler {
    si_sampler_opts o;
    uint32_t n_vocab;
    uint64_t rng;
    cand *c;         /* [n_vocab] */
    float *work;     /* [n_vocab] penalized logits */
    int32_t *recent; /* ring of the last repeat_last_n ids */
    uint32_t n_recent, recent_pos;
};

si_sampler *si_sampler_new(const si_sampler_opts *opts, uint32_t n_vocab)
{
    si_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->o = *opts;
    s->n_vocab = n_vocab;
    s->rng = opts->seed ^ 0x9E3779B97F4A7C15ull;
    if (!s->rng)
        s->rng = 1;
    if (s->o.repeat_last_n < 0)
        s->o.repeat_last_n = 0;
    s->c = malloc(n_vocab * sizeof *s->c);
    s->work = malloc(n_vocab * sizeof *s->work);
    s->recent = malloc(((size_t)s->o.repeat_last_n + 1) * sizeof *s->recent);
    if (!s->c || !s->work || !s->recent) {
        si_sampler_free(s);
        return NULL;
    }
    return s;
}

void si_sampler_free(si_sampler *s)
{
    if (!s)
        return;
    free(s->c);
    free(s->work);
    free(s->recent);
    free(s);
}

void si_sampler_accept(si_sampler *s, int32_t id)
{
    if (s->o.repeat_last_n == 0)
        return;
    s->recent[s->recent_pos] = id;
    s->recent_pos = (s->recent_pos + 1) % (uint32_t)s->o.repeat_last_n;
    if (s->n_recent < (uint32_t)s->o.repeat_last_n)
        s->n_recent++;
}

/* Each distinct recent token is penalized once, however often it occurred. */
static const float *penalize(si_sampler *s, const float *logits)
{
    if (s->o.repeat_penalty == 1.0f || s->n_recent == 0)
        return logits;
    memcpy(s->work, logits, s->n_vocab * sizeof *logits);
    for (uint32_t i = 0; i < s->n_recent; i++) {
        int32_t id = s->recent[i];
        if (id < 0 || (uint32_t)id >= s->n_vocab || s->work[id] != logits[id])
            continue;
        s->work[id] = logits[id] > 0 ? logits[id] / s->o.repeat_penalty : logits[id] * s->o.repeat_penalty;
    }
    return s->work;
}

/* xorshift64*: small, fast, and the same on every platform. */
static float uniform01(si_sampler *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (float)((s->rng * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

int32_t si_argmax(const float *logits, uint32_t n)
{
    int32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = (int32_t)i;
    return best;
}

static int by_prob_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->p != y->p)
        return x->p < y->p ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The chain's distribution: c[0..*n) the kept tokens, most likely first, with
 * unnormalized probabilities (temperature > 0 only). */
static uint32_t chain(si_sampler *s, const float *logits)
{
    float mx = logits[si_argmax(logits, s->n_vocab)];
    for (uint32_t i = 0; i < s->n_vocab; i++) {
        s->c[i].id = (int32_t)i;
        s->c[i].p = expf((logits[i] - mx) / s->o.temp);
    }
    qsort(s->c, s->n_vocab, sizeof *s->c, by_prob_desc);
    uint32_t n = s->n_vocab;
    if (s->o.top_k > 0 && (uint32_t)s->o.top_k < n)
        n = (uint32_t)s->o.top_k;
    if (s->o.top_p > 0 && s->o.top_p < 1) {
        double total = 0, acc = 0;
        for (uint32_t i = 0; i < n; i++)
            total += s->c[i].p;
        for (uint32_t i = 0; i < n; i++) {
            acc += s->c[i].p;
            if (acc >= s->o.top_p * total) {
                n = i + 1;
                break;
            }
        }
    }
    if (s->o.min_p > 0) {
        /* c[0] is the most likely; keep those at least min_p as likely. */
        uint32_t keep = 1;
        while (keep < n && s->c[keep].p >= s->o.min_p * s->c[0].p)
            keep++;
        n = keep;
    }
    return n;
}

/* Draw from c[0..n) by weight (entries of weight 0 are never drawn). */
static int32_t draw(si_sampler *s, uint32_t n)
{
    double sum = 0;
    for (uint32_t i = 0; i < n; i++)
        sum += s->c[i].p;
    double r = uniform01(s) * sum, acc = 0;
    for (uint32_t i = 0; i < n; i++) {
        acc += s->c[i].p;
        if (r < acc)
            return s->c[i].id;
    }
    for (uint32_t i = n; i-- > 0;) /* rounding: the last one with weight */
        if (s->c[i].p > 0)
            return s->c[i].id;
    return s->c[0].id;
}

int32_t si_sampler_sample(si_sampler *s, const float *raw)
{
    const float *logits = penalize(s, raw);
    if (s->o.temp <= 0)
        return si_argmax(logits, s->n_vocab);
    return draw(s, chain(s, logits));
}

int32_t si_sampler_sample_draft(si_sampler *s, const float *raw, const int32_t *cands, uint32_t n_cands, int *which)
{
    const float *logits = penalize(s, raw);
    *which = -1;
    if (s->o.temp <= 0) {
        int32_t best = si_argmax(logits, s->n_vocab);
        for (uint32_t k = 0; k < n_cands; k++)
            if (cands[k] == best)
                *which = (int)k;
        return best;
    }
    uint32_t n = chain(s, logits);
    double mass = 0;
    for (uint32_t i = 0; i < n; i++)
        mass += s->c[i].p;
    for (uint32_t k = 0; k < n_cands && mass > 0; k++) {
        uint32_t i = 0;
        while (i < n && s->c[i].id != cands[k])
            i++;
        if (i == n || s->c[i].p == 0)
            continue; /* outside the kept set (or rejected already): probability 0 */
        if (uniform01(s) * mass < s->c[i].p) {
            *which = (int)k;
            return cands[k];
        }
        mass -= s->c[i].p; /* rejected: the rest is drawn without it */
        s->c[i].p = 0;
    }
    return draw(s, n);
}
