/* The generation loop: evaluate a prompt in as few passes as the batch allows, then
 * sample (or force) one token per pass, reporting each token as it comes. */
#ifndef STREAMINFER_GENERATE_H
#define STREAMINFER_GENERATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "streaminfer/clock.h"
#include "streaminfer/llama.h"
#include "streaminfer/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct si_gen_opts {
    const int32_t *prompt;   /* fed exactly as given */
    uint32_t n_prompt;
    uint32_t n_predict;      /* tokens to sample; the last one is not evaluated */
    const int32_t *force;    /* instead of sampling, feed these (teacher forcing) */
    uint32_t n_force;
    si_sampler *sampler;
    FILE *dump_logits;       /* float32 rows of every evaluated position, or NULL */
    const int32_t *stop_ids; /* end-of-generation ids (EOS, EOT) */
    uint32_t n_stop;
    /* Called for each generated (or forced) token but end-of-generation ones, which
     * end the run unprinted; return false to stop. */
    bool (*on_token)(void *ctx, int32_t id);
    void *ctx;
    double t_start;          /* CLOCK_MONOTONIC seconds when the run began (for TTFT) */
} si_gen_opts;

typedef struct si_gen_result {
    uint32_t n_generated; /* tokens produced (sampled or forced) */
    double ttft_s;        /* from t_start to the first token */
    double prompt_s;      /* evaluating the prompt */
    double gen_s;         /* evaluating generated tokens */
    uint32_t n_evaluated; /* tokens that went through the model (prompt + fed back) */
    int32_t last_id;      /* the last sampled token, which was not evaluated; -1 if none */
    bool stopped_at_eog;
} si_gen_result;

int si_generate(si_llama *m, const si_gen_opts *o, si_gen_result *r, si_error *err);

#ifdef __cplusplus
}
#endif
#endif
