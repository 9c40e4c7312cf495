/* Shared by the pinning tests: open a model with a pin setting, run a prompt and a few
 * forced tokens (one pass each), keep every row of logits and the statistics. */
#ifndef SI_PIN_TEST_H
#define SI_PIN_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streaminfer/llama.h"
#include "../test_util.h"

#define PIN_N_PROMPT 5
#define PIN_N_FORCED 3

typedef struct pin_run {
    float *logits; /* (PIN_N_PROMPT + PIN_N_FORCED) rows */
    size_t n_floats;
    si_llama_stats st;
    si_plan plan;
} pin_run;

/* budget 0: the default. Fails the test on any error. */
static inline pin_run pin_run_model(const char *path, si_pin_mode pin, uint64_t pin_size, uint64_t budget)
{
    si_llama_opts o = {.pin = pin, .pin_size = pin_size, .mem_budget = budget, .n_ctx = 64, .all_logits = true,
                       .kv_type = SI_KV_F32};
    si_llama *m;
    si_error err;
    CHECKF(si_llama_open(&m, path, &o, &err) == SI_OK, "%s: %s", path, err.msg);
    uint32_t V = si_llama_hparams_of(m)->n_vocab;
    pin_run r = {.n_floats = (size_t)(PIN_N_PROMPT + PIN_N_FORCED) * V};
    r.logits = malloc(r.n_floats * sizeof(float));
    CHECK(r.logits);
    const int32_t prompt[PIN_N_PROMPT] = {1, 17, 42, 99, 7}, forced[PIN_N_FORCED] = {3, 250, 64};
    CHECKF(si_llama_eval(m, prompt, PIN_N_PROMPT, true, r.logits, &err) == SI_OK, "%s", err.msg);
    for (int i = 0; i < PIN_N_FORCED; i++)
        CHECKF(si_llama_eval(m, &forced[i], 1, i + 1 < PIN_N_FORCED, r.logits + (size_t)(PIN_N_PROMPT + i) * V,
                             &err) == SI_OK,
               "%s", err.msg);
    CHECKF(si_llama_finish(m, &err) == SI_OK, "%s", err.msg);
    si_llama_get_stats(m, &r.st);
    r.plan = *si_llama_plan_of(m);
    si_llama_close(m);
    return r;
}

#endif
