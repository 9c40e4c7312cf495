#include "model_opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streaminfer/plan.h"
#include "streaminfer/pool.h"

const char si_model_opts_help_memory[] =
    "      --mem-budget SIZE   bound for weight buffers + KV cache + activations, e.g. 400M\n"
    "                          (default: cgroup limit or MemAvailable, less a margin and\n"
    "                          the process's fixed overhead: code, libraries, metadata)\n"
    "      --kv-type f16|f32|q8_0  KV cache precision (default f16; q8_0: 8-bit blocks,\n"
    "                          about half of f16's memory; needs a head size multiple of 32)\n"
    "      --pin auto|none|SIZE  weights kept in memory after the first pass, so later passes\n"
    "                          read only the rest (default auto: what the budget leaves beside\n"
    "                          buffers, activations and KV cache; SIZE: at most that much)\n"
    "      --ring SIZE         weight buffer at most (default: the plan's, up to 96M, or 32M\n"
    "                          with pins; less leaves more for pins; too little exposes\n"
    "                          the reads)\n"
    "      --plan              print the memory plan (buffers, KV cache, pins, bytes per pass)\n"
    "                          and exit without reading the weights\n";

const char si_model_opts_help_io[] =
    "      --io auto|uring|pread  read backend (default auto: io_uring, else pread)\n"
    "      --io-compat 5.10    use only io_uring features Linux 5.10 has (the K230's kernel)\n"
    "      --direct auto|on|off   O_DIRECT reads (default auto: fall back on EINVAL)\n"
    "      --queue-depth N     reads in flight (default 8)\n"
    "      --chunk SIZE        largest single read (default 1M)\n"
    "      --kernels NAME      kernel set: auto (default: the best this CPU has), c, or a SIMD set\n"
    "  -t, --threads N         compute threads, 1 to 256 (default: the CPUs this process may run\n"
    "                          on); the output is the same for every N\n"
    "      --stripe-path DIR   a striped pack's other members are looked for in -m's directory,\n"
    "                          then here (repeatable)\n";

const char si_draft_opts_help[] =
    "      --draft none|lookup|lookahead|auto  guesses checked in the same pass; the output is\n"
    "                          the same. lookup: what followed the last tokens earlier in the\n"
    "                          text; lookahead: n-grams the model writes from a window of guesses\n"
    "                          it refines pass after pass (Jacobi); auto (default): both, lookup\n"
    "                          first, as widely as compute stays hidden under the reads\n"
    "      --draft-max N       most guessed tokens per request and pass (default 8)\n"
    "      --compute-ratio X   for auto: compute seconds of one token over a pass's read seconds\n"
    "                          (default: measured from the passes so far)\n";

void si_draft_opts_init(si_draft_opts *d) { *d = (si_draft_opts){.mode = SI_DRAFT_AUTO}; }

int si_draft_opt(int o, const char *arg, si_draft_opts *d)
{
    long v;
    char *end;
    switch (o) {
    case SI_MOPT_DRAFT: {
        int m = si_draft_mode_parse(arg);
        if (m < 0)
            return -1;
        d->mode = (si_draft_mode)m;
        return 1;
    }
    case SI_MOPT_DRAFT_MAX:
        if (!si_parse_long(arg, 1, SI_DRAFT_MAX_NODES, &v))
            return -1;
        d->max = (uint32_t)v;
        return 1;
    case SI_MOPT_CRATIO: {
        double x = strtod(arg, &end);
        if (end == arg || *end || !(x > 0 && x < 1e6))
            return -1;
        d->compute_ratio = x;
        return 1;
    }
    default:
        return 0;
    }
}

void si_opt_invalid(const char *prog, const struct option *opts, int long_index, int o, const char *arg)
{
    if (o == 't') /* -t and --threads */
        fprintf(stderr, "%s: error: invalid value '%s' for %s: compute threads are a count from 1 to %d (see --help)\n",
                prog, arg, long_index >= 0 ? "--threads" : "-t", SI_POOL_MAX_THREADS);
    else if (long_index >= 0)
        fprintf(stderr, "%s: error: invalid value '%s' for --%s (see --help)\n", prog, arg, opts[long_index].name);
    else
        fprintf(stderr, "%s: error: invalid value '%s' for -%c (see --help)\n", prog, arg, o);
}

bool si_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* The index of arg in names (NULL-terminated), or -1. */
static int pick(const char *arg, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(arg, names[i]) == 0)
            return i;
    return -1;
}

void si_model_opts_init(si_llama_opts *lo) { lo->pin = SI_PIN_AUTO; }

int si_model_opt(int o, const char *arg, si_llama_opts *lo, const char **kernels)
{
    uint64_t sz;
    long v;
    int i;
    switch (o) {
    case SI_MOPT_BUDGET:
        if (si_parse_size(arg, &sz) != SI_OK || sz == 0)
            return -1;
        lo->mem_budget = sz;
        return 1;
    case SI_MOPT_KV:
        if ((i = pick(arg, (const char *const[]){"f16", "f32", "q8_0", NULL})) < 0)
            return -1;
        lo->kv_type = i == 0 ? SI_KV_F16 : i == 1 ? SI_KV_F32 : SI_KV_Q8_0;
        return 1;
    case SI_MOPT_IO:
        if ((i = pick(arg, (const char *const[]){"auto", "uring", "io_uring", "pread", NULL})) < 0)
            return -1;
        lo->io.kind = i == 0 ? SI_IO_AUTO : i == 3 ? SI_IO_PREAD : SI_IO_URING;
        return 1;
    case SI_MOPT_COMPAT:
        if (strcmp(arg, "5.10") != 0)
            return -1;
        lo->io.compat_5_10 = true;
        return 1;
    case SI_MOPT_DIRECT:
        if ((i = pick(arg, (const char *const[]){"auto", "on", "off", NULL})) < 0)
            return -1;
        lo->io.direct = i == 0 ? SI_DIRECT_AUTO : i == 1 ? SI_DIRECT_ON : SI_DIRECT_OFF;
        return 1;
    case SI_MOPT_QD:
        if (!si_parse_long(arg, 1, 256, &v))
            return -1;
        lo->io.queue_depth = (unsigned)v;
        return 1;
    case SI_MOPT_CHUNK:
        if (si_parse_size(arg, &sz) != SI_OK || sz < 4096 || sz > (1u << 30))
            return -1;
        lo->chunk_bytes = sz;
        return 1;
    case SI_MOPT_KERNELS:
        *kernels = arg;
        return 1;
    case SI_MOPT_RING:
        if (si_parse_size(arg, &sz) != SI_OK || sz < 4096)
            return -1;
        lo->ring_bytes = sz;
        return 1;
    case SI_MOPT_PIN:
        if (strcmp(arg, "auto") == 0) {
            lo->pin = SI_PIN_AUTO;
        } else if (strcmp(arg, "none") == 0 || strcmp(arg, "0") == 0) {
            lo->pin = SI_PIN_NONE;
        } else {
            if (si_parse_size(arg, &sz) != SI_OK)
                return -1;
            lo->pin = sz ? SI_PIN_SIZE : SI_PIN_NONE;
            lo->pin_size = sz;
        }
        return 1;
    case SI_MOPT_PLAN:
        lo->plan_only = true;
        return 1;
    case 't':
        if (!si_parse_long(arg, 1, SI_POOL_MAX_THREADS, &v))
            return -1;
        lo->n_threads = (uint32_t)v;
        return 1;
    case SI_MOPT_STRIPE_PATH: {
        si_error e = {0};
        return *arg && si_llama_stripe_path_add(arg, &e) == SI_OK ? 1 : -1;
    }
    default:
        return 0;
    }
}
