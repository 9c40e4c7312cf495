/* stream-infer --batch-file FILE: many requests from one file, run on the batch engine.
 *
 * One request per line. A line starting with '{' is a JSON object with the fields
 *   id (string or number), prompt (string) or prompt_ids (array of ids), n_predict
 *   (-1: until end of generation or the context), temperature, top_k, top_p, min_p,
 *   repeat_penalty, seed, stop (string or array of strings), draft ("none", "lookup",
 *   "lookahead", "auto"), draft_max;
 * any other non-empty line is a text prompt with the defaults (the command line's
 * settings). Unknown fields, wrong types and values out of range make that line an
 * error: it gets an error object {"id", "line", "error"} and the other lines run.
 *
 * Output: one JSON object per line (JSONL), written as each request finishes (or in
 * input order with `ordered`):
 *   id (as given, else the line number), text (omitted without a tokenizer), ids,
 *   finish_reason ("stop": a stop string or end of generation; "length"; "error" with
 *   an "error" message; "cancelled"; "timeout"), prompt_tokens, cached_tokens,
 *   completion_tokens, ttft_s (null when nothing was produced), total_s.
 * A stop string ends its request once the generated text contains it; the stop string
 * and what follows are not part of `text` (ids keep every token produced).
 *
 * Builds without jansson (SI_HAVE_JANSSON 0) have the function, failing with a
 * message that says so. */
#ifndef STREAMINFER_TOOLS_BATCH_FILE_H
#define STREAMINFER_TOOLS_BATCH_FILE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "streaminfer/engine.h"
#include "streaminfer/error.h"
#include "streaminfer/sampler.h"
#include "streaminfer/tokenizer.h"

typedef struct si_batch_defaults {
    si_sampler_opts samp; /* for every line; JSON fields override theirs */
    uint32_t n_predict;   /* SI_N_PREDICT_ALL: until end of generation or the context */
    bool add_bos;         /* prepend BOS to text prompts (prompt_ids are fed as given) */
    bool special;         /* parse special tokens (<|eot_id|>...) in text prompts */
    si_draft_mode draft;  /* guessing (JSON: "draft": "none"|"lookup"|"lookahead"|"auto") */
    uint32_t draft_max;   /* 0 = the engine's (JSON: "draft_max") */
    /* NULL, or a flag (set by a SIGINT handler) that ends the run once it is non-zero: no
     * further line is read, requests waiting are cancelled and running ones end at the
     * next pass boundary; every request submitted still gets its object ("cancelled",
     * with the text so far). */
    const volatile sig_atomic_t *interrupt;
} si_batch_defaults;

typedef struct si_batch_summary {
    uint32_t lines;       /* request lines (non-empty lines) read */
    uint32_t requests;    /* requests the engine ran (sequences served) */
    uint32_t errors;      /* lines answered with an error: bad line, refused, failed */
    uint32_t by_finish[SI_FINISH_N_]; /* requests run, by outcome */
    uint64_t prompt_tokens, cached_tokens, completion_tokens;
    double ttft_mean_s, ttft_max_s;   /* over requests that produced a token */
    double total_mean_s, total_max_s; /* over requests run */
    double wall_s;                    /* the whole file */
} si_batch_summary;

/* Run every request of the file at path on e and write the results to out. Lines in
 * error are reported in the output (and counted in sum->errors), not returned. Returns
 * an error for a file that cannot be read, an output that cannot be written, a model
 * step that failed (every request still gets its object), or a build without JSON
 * support. tok may be NULL (a model without a vocabulary: prompt_ids only). sum may
 * be NULL. Every request submitted here is done when it returns. */
int si_run_batch_file(si_engine *e, const si_tokenizer *tok, const char *path, const si_batch_defaults *d,
                      bool ordered, FILE *out, si_batch_summary *sum, si_error *err);

/* One line of the file, parsed as si_run_batch_file parses it, without running it (for
 * tests and the fuzzer): 1 a request, 0 a blank line, -1 an error (*why says which). */
int si_batch_parse_line(const si_tokenizer *tok, const si_batch_defaults *d, const char *line, size_t len,
                        char *why, size_t why_n);

#endif
