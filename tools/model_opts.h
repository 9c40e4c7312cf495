/* The command-line options every tool that opens a model shares (stream-infer,
 * stream-server): memory budget, KV cache type, read backend, O_DIRECT, queue depth,
 * read size, kernel set. One table, one parser, one help text. */
#ifndef STREAMINFER_TOOLS_MODEL_OPTS_H
#define STREAMINFER_TOOLS_MODEL_OPTS_H

#include <getopt.h>
#include <stdbool.h>

#include "streaminfer/draft.h"
#include "streaminfer/llama.h"

/* getopt_long values of the shared options: above any tool's own. */
enum {
    SI_MOPT_BUDGET = 0x1000, SI_MOPT_KV, SI_MOPT_IO, SI_MOPT_COMPAT, SI_MOPT_DIRECT, SI_MOPT_QD, SI_MOPT_CHUNK,
    SI_MOPT_KERNELS, SI_MOPT_PIN, SI_MOPT_PLAN, SI_MOPT_RING, SI_MOPT_DRAFT, SI_MOPT_DRAFT_MAX, SI_MOPT_CRATIO,
    SI_MOPT_STRIPE_PATH
};

/* To put in a tool's struct option table (before its {0, 0, 0, 0}). */
#define SI_MODEL_LONG_OPTIONS                                                                                    \
    {"mem-budget", required_argument, 0, SI_MOPT_BUDGET}, {"kv-type", required_argument, 0, SI_MOPT_KV},       \
        {"io", required_argument, 0, SI_MOPT_IO}, {"io-compat", required_argument, 0, SI_MOPT_COMPAT},          \
        {"direct", required_argument, 0, SI_MOPT_DIRECT}, {"queue-depth", required_argument, 0, SI_MOPT_QD},    \
        {"chunk", required_argument, 0, SI_MOPT_CHUNK}, {"kernels", required_argument, 0, SI_MOPT_KERNELS},  \
        {"pin", required_argument, 0, SI_MOPT_PIN}, {"plan", no_argument, 0, SI_MOPT_PLAN},    \
        {"ring", required_argument, 0, SI_MOPT_RING}, {"stripe-path", required_argument, 0, SI_MOPT_STRIPE_PATH}, \
        {"threads", required_argument, 0, 't'}

/* The shared short options, to append to a tool's getopt_long string: -t N (--threads). */
#define SI_MODEL_SHORT_OPTIONS "t:"

/* The defaults the tools share where they differ from the library's (pins: auto). */
void si_model_opts_init(si_llama_opts *lo);

/* The guessing options (--draft, --draft-max, --compute-ratio) the generating tools share. */
#define SI_DRAFT_LONG_OPTIONS                                                                                    \
    {"draft", required_argument, 0, SI_MOPT_DRAFT}, {"draft-max", required_argument, 0, SI_MOPT_DRAFT_MAX},     \
        {"compute-ratio", required_argument, 0, SI_MOPT_CRATIO}

typedef struct si_draft_opts {
    si_draft_mode mode; /* default SI_DRAFT_AUTO (si_draft_opts_init) */
    uint32_t max;       /* 0: the engine's */
    double compute_ratio;
} si_draft_opts;

void si_draft_opts_init(si_draft_opts *d);
/* As si_model_opt, for the guessing options. */
int si_draft_opt(int o, const char *arg, si_draft_opts *d);
extern const char si_draft_opts_help[];

/* "prog: error: invalid value 'ARG' for --NAME (see --help)" on stderr. */
void si_opt_invalid(const char *prog, const struct option *opts, int long_index, int o, const char *arg);

/* Apply option o (a getopt_long result) with its argument. 1: it was a shared option
 * and is applied; 0: not a shared option; -1: a shared option with an invalid value. */
int si_model_opt(int o, const char *arg, si_llama_opts *lo, const char **kernels);

/* "1234" within [lo, hi]. */
bool si_parse_long(const char *s, long lo, long hi, long *out);

/* The help lines of the shared options (memory and I/O), each ending in a newline. */
extern const char si_model_opts_help_memory[];
extern const char si_model_opts_help_io[];

#endif
