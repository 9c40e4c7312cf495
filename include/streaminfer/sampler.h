/* Choosing the next token from logits: a repetition penalty on recent tokens, then
 * greedy at temperature 0, else temperature, top-k, top-p and min-p with a seeded
 * generator (the same seed gives the same tokens). */
#ifndef STREAMINFER_SAMPLER_H
#define STREAMINFER_SAMPLER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct si_sampler_opts {
    float temp;     /* 0 = greedy */
    int32_t top_k;  /* 0 = off */
    float top_p;    /* 1 = off */
    float min_p;    /* drop tokens less likely than min_p x the most likely; 0 = off */
    float repeat_penalty;  /* llama.cpp's: divide positive logits of recent tokens by it, multiply negative; 1 = off */
    int32_t repeat_last_n; /* how many recent tokens the penalty looks at */
    uint64_t seed;
} si_sampler_opts;

typedef struct si_sampler si_sampler;

si_sampler *si_sampler_new(const si_sampler_opts *opts, uint32_t n_vocab);
void si_sampler_free(si_sampler *s);
int32_t si_sampler_sample(si_sampler *s, const float *logits);
/* Sample the next token where draft candidates were proposed for it (distinct
 * tokens guessed without looking at these logits): speculative sampling over the
 * whole chain. Candidate i is accepted with probability p(c_i) / (mass not yet
 * rejected), p being the chain's distribution (penalty, temperature, top-k/p, min-p);
 * when none is, the token is drawn from p without the rejected candidates. The result
 * is distributed exactly as si_sampler_sample's; at temperature 0 it is the argmax and
 * a candidate is accepted when it is that token. *which gets the accepted candidate's
 * index, or -1. */
int32_t si_sampler_sample_draft(si_sampler *s, const float *logits, const int32_t *cands, uint32_t n_cands,
                                int *which);
/* Record a token of the sequence (prompt or generated) for the repetition penalty. */
void si_sampler_accept(si_sampler *s, int32_t id);

/* Index of the largest logit (the lowest index among equals). */
int32_t si_argmax(const float *logits, uint32_t n);

#ifdef __cplusplus
}
#endif
#endif
