/* The batch engine: every active request gets its next token from the same pass.
 *
 * One loop over passes. Each pass gathers, up to the model's step size, every
 * generating sequence's next token, then prompt tokens of the sequences still reading
 * their prompt (a long prompt is spread over passes), runs ONE model step on all of
 * them, gives each sequence its logits, samples with that sequence's own sampler,
 * retires finished sequences and admits waiting ones. A sequence's logits do not
 * depend on what else shares its step, so seeded sampling gives the same tokens
 * batched and alone.
 *
 * Finished sequences stay in the KV pool as a prompt cache until their cells are
 * needed: a new request whose prompt starts with the tokens of a cached (or running)
 * sequence shares those cells and evaluates only the rest (multi-turn chat, a shared
 * system prompt).
 *
 * Threads: submit, cancel, stop and the stats calls are thread-safe; step, run and
 * drain run on one thread (the engine thread), which is also where every callback is
 * called, with no engine lock held (a callback may call si_engine_cancel). */
#ifndef STREAMINFER_ENGINE_H
#define STREAMINFER_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "streaminfer/draft.h"
#include "streaminfer/error.h"
#include "streaminfer/llama.h"
#include "streaminfer/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct si_engine si_engine;

#define SI_EBUSY_QUEUE (-100) /* si_engine_submit: --max-queued requests already wait */

#define SI_N_PREDICT_ALL UINT32_MAX

typedef enum si_finish {
    SI_FINISH_NONE = 0,  /* still running */
    SI_FINISH_STOP,      /* an end-of-generation token, or on_token returned false (a stop string) */
    SI_FINISH_LENGTH,    /* n_predict tokens, or the sequence ran out of KV cells */
    SI_FINISH_CANCELLED, /* si_engine_cancel, the engine stopped or freed, or the model's
                            should_stop ended the pass it was in (result.error says where) */
    SI_FINISH_TIMEOUT,   /* the request's timeout passed */
    SI_FINISH_ERROR,     /* the model step failed (message in result.error) */
    SI_FINISH_N_
} si_finish;

const char *si_finish_name(si_finish f); /* "stop", "length", "cancelled", "timeout", "error" */

typedef struct si_request_result {
    uint64_t id;
    si_finish finish;
    uint32_t n_prompt;    /* prompt tokens */
    uint32_t n_cached;    /* of them, shared from the prompt cache (not evaluated) */
    uint32_t n_generated; /* tokens produced (an end-of-generation token counts) */
    int32_t last_id;      /* the last token produced, which was not evaluated; -1 if none */
    double queued_s;      /* submit -> admission */
    double ttft_s;        /* submit -> first token */
    double total_s;       /* submit -> done */
    char error[512];      /* SI_FINISH_ERROR: what failed */
} si_request_result;

typedef struct si_request {
    const int32_t *prompt; /* fed exactly as given; copied by submit; at least one token */
    uint32_t n_prompt;
    uint32_t n_predict;    /* most tokens to produce; 0: evaluate the prompt only;
                              SI_N_PREDICT_ALL: until end of generation or the cells run out */
    const int32_t *force;  /* feed these instead of sampling (teacher forcing); copied */
    uint32_t n_force;
    si_sampler_opts sampler;
    double timeout_s;      /* from submit; 0 = none */
    si_draft_mode draft;   /* guesses verified in the same pass (off for force and all_logits) */
    uint32_t draft_max;    /* most guessed tokens per pass; 0 = the engine's */
    bool all_logits;       /* on_logits gets the row of every evaluated token (needs
                              si_llama_opts.all_logits), not only the rows sampled from */
    /* Callbacks, on the engine thread. on_token: each produced token but end-of-
     * generation ones; return false to end the request (SI_FINISH_STOP).
     * on_logits: a row of n_vocab logits (see all_logits). on_done: exactly once,
     * last, for every request submit accepted. Any may be NULL. */
    bool (*on_token)(void *ctx, int32_t id);
    void (*on_logits)(void *ctx, const float *row, uint32_t n_vocab);
    void (*on_done)(void *ctx, const si_request_result *r);
    void *ctx;
} si_request;

typedef struct si_engine_opts {
    uint32_t n_parallel;      /* sequences in flight; 0 = 4, fewer when the pool cannot give
                                 each 256 cells; at most si_llama_opts.n_seq_max */
    uint32_t max_queued;      /* requests waiting for admission; 0 = no limit */
    uint32_t reserve;         /* cells a request needs free beyond its prompt to be admitted
                                 (0 = min(n_predict, 64); at least 1) */
    const int32_t *eog_ids;   /* end-of-generation ids (copied) */
    uint32_t n_eog;
    bool no_prompt_cache;     /* free a sequence's cells as soon as it ends */
    uint32_t draft_max;       /* most guessed tokens per request and pass (0 = 8); logits rows
                                 for them come from si_llama_opts.n_draft_max */
    uint32_t draft_branches;  /* most different guesses at once (0 = 4) */
    double compute_ratio;     /* SI_DRAFT_AUTO: compute seconds of one token in a pass over the
                                 pass's read seconds; 0 = measured from the passes so far */
} si_engine_opts;

typedef struct si_engine_stats {
    uint64_t passes;            /* model steps run */
    uint64_t tokens_evaluated;  /* tokens through the model (prompts included) */
    uint64_t tokens_generated;  /* tokens produced for output (sampled or forced) */
    uint64_t tokens_cached;     /* prompt tokens shared from the prompt cache */
    uint64_t requests[SI_FINISH_N_]; /* finished requests by outcome */
    uint64_t rejected;          /* submit refused: queue full or prompt that can never fit */
    uint32_t active;            /* sequences admitted and not finished */
    uint32_t queued;            /* requests waiting for admission */
    uint32_t n_parallel;
    uint32_t n_cells, free_cells;
    uint64_t draft_proposed;    /* guessed tokens verified (the lookahead window apart) */
    uint64_t draft_accepted;    /* of them, the model's own choice (kept) */
    uint64_t draft_passes;      /* passes that carried guesses */
    uint32_t draft_width;       /* SI_DRAFT_AUTO's current guesses per request and pass */
    /* by source (si_draft_source; a guess both propose counts for lookup, which adds first) */
    uint64_t draft_src_proposed[SI_DRAFT_SRC_N_];
    uint64_t draft_src_accepted[SI_DRAFT_SRC_N_];
    uint64_t lookahead_window;  /* lookahead window tokens evaluated (they feed its pool, are
                                   never kept, and count against the same width) */
} si_engine_stats;

int si_engine_create(si_engine **out, si_llama *m, const si_engine_opts *o, si_error *err);
/* Cancels what is still queued or running (their on_done runs, SI_FINISH_CANCELLED). */
void si_engine_free(si_engine *e);

/* Queue a request. SI_EBUSY_QUEUE when max_queued requests already wait; SI_EINVAL
 * when it can never run (empty prompt, a prompt longer than the context, an id out of
 * the vocabulary). *id (may be NULL) gets its id (> 0) for si_engine_cancel. */
int si_engine_submit(si_engine *e, const si_request *r, uint64_t *id, si_error *err);
/* End a request at the next pass boundary (SI_FINISH_CANCELLED); its cells are freed
 * there. Unknown or finished ids are ignored. */
void si_engine_cancel(si_engine *e, uint64_t id);

/* One pass (or none when there is nothing to do: *idle = true). A failed model step
 * ends the requests in it with SI_FINISH_ERROR and returns the error; the engine can
 * go on with the next call. */
int si_engine_step(si_engine *e, bool *idle, si_error *err);
/* Run passes until every submitted request is done. */
int si_engine_drain(si_engine *e, si_error *err);
/* Run passes until si_engine_stop, sleeping while idle (woken by submit). Errors of
 * single steps are reported through the requests, not returned. */
void si_engine_run(si_engine *e);
/* Thread-safe: make si_engine_run return after the current pass, cancelling what runs. */
void si_engine_stop(si_engine *e);

void si_engine_get_stats(si_engine *e, si_engine_stats *st);
/* The model's figures (si_llama_get_stats) and those of its first max_files files
 * (si_llama_file_stats; *n_files gets how many) as of the end of the last pass: safe
 * from any thread while the engine runs, unlike asking the model, which the engine's
 * thread is changing. The server's /metrics reads these. */
void si_engine_get_model_stats(si_engine *e, si_llama_stats *ls, si_sched_file_stats *files, uint32_t max_files,
                               uint32_t *n_files);
si_llama *si_engine_model(si_engine *e);

#ifdef __cplusplus
}
#endif
#endif
