/* stream-infer: run a Llama GGUF whose weights never have to fit in memory. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "streaminfer/chat.h"
#include "streaminfer/clock.h"
#include "streaminfer/engine.h"
#include "streaminfer/kernels.h"
#include "streaminfer/pool.h"
#include "streaminfer/llama.h"
#include "streaminfer/plan.h"
#include "streaminfer/sampler.h"
#include "streaminfer/tokenizer.h"

#include "batch_file.h"
#include "model_opts.h"
#include "plan_print.h"
#include "progress.h"
#include "si_config.h"

typedef struct cli {
    const char *model, *prompt, *prompt_ids, *force_ids, *dump_logits, *report_json, *kernels;
    int32_t n_predict;
    si_sampler_opts samp;
    si_llama_opts lo;
    double device_mbps; /* the device's raw read bandwidth, for the report; 0 = unknown */
    const char *system;
    const char *batch_file;
    uint32_t parallel; /* 0: 1 for -p and --chat, the engine's default for --batch-file */
    si_draft_opts draft;
    bool print_ids, special, no_bos, quiet, chat, ordered;
} cli;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stream-infer -m MODEL [-p TEXT | --prompt-ids \"1 2 3\"] [options]\n"
            "\n"
            "Runs a Llama-family GGUF by streaming its weights from storage once per pass.\n"
            "\n"
            "input and output:\n"
            "  -m, --model FILE        GGUF model (required)\n"
            "  -p, --prompt TEXT       prompt text (tokenized with the model's vocabulary)\n"
            "      --prompt-ids IDS    prompt as token ids, fed exactly as given (no BOS added)\n"
            "      --no-bos            do not add BOS to a text prompt\n"
            "      --special           parse special tokens (<|eot_id|>...) in the prompt text\n"
            "  -n, --n-predict N       tokens to generate (default 32, in --chat until the end of the turn;\n"
            "                          0: evaluate the prompt only; -1: until end of text or context)\n"
            "      --force-ids IDS     feed these ids one step at a time instead of sampling (-n ignored)\n"
            "      --print-ids         stdout carries only the generated ids; text goes nowhere\n"
            "      --dump-logits FILE  float32 logits of every evaluated position, [rows][n_vocab]\n"
            "      --report-json FILE  the run's figures as one JSON object\n"
            "      --device-mbps X     the storage's raw sequential read bandwidth in MB/s (e.g. from\n"
            "                          bench/io-bench); the report then gives achieved / device\n"
            "  -q, --quiet             no report on stderr\n"
            "chat:\n"
            "      --chat              interactive multi-turn chat (one message per line on stdin;\n"
            "                          Ctrl-C stops an answer, Ctrl-D ends); with -p: one turn\n"
            "      --system TEXT       system message for --chat\n"
            "guessing ahead (off with --force-ids and --dump-logits):\n"
            "%s"
            "many requests in one pass:\n"
            "      --batch-file FILE   one request per line (a JSON object, or a text prompt with the\n"
            "                          command line's settings); every active request gets its next\n"
            "                          token from the same pass; one JSON line per request on stdout\n"
            "      --parallel N        requests in flight at once (default 4, fewer when the KV cache\n"
            "                          cannot give each 256 positions; at most 32)\n"
            "      --ordered           write --batch-file results in input order, not as they finish\n"
            "sampling:\n"
            "  -s, --seed N            random seed (default 0)\n"
            "      --temp T            temperature (default 0.8; 0 = greedy)\n"
            "      --top-k K           keep the K most likely tokens (default 40; 0 = off)\n"
            "      --top-p P           nucleus sampling (default 0.95; 1 = off)\n"
            "      --min-p P           drop tokens less than P x as likely as the best (default 0.05; 0 = off)\n"
            "      --repeat-penalty X  penalize the last --repeat-last-n tokens (default 1.0 = off)\n"
            "      --repeat-last-n N   tokens the penalty looks back (default 64)\n"
            "memory and context:\n"
            "  -c, --ctx-size N        context length (default: the model's trained context, capped\n"
            "                          so that a full step of -b tokens still fits in the budget;\n"
            "                          the report says how it was chosen)\n"
            "%s"
            "  -b, --batch N           tokens per pass (default: planned from the budget)\n"
            "I/O and compute:\n"
            "%s"
            "  -h, --help              this text\n"
            "      --version           print the version and exit\n",
            si_draft_opts_help, si_model_opts_help_memory, si_model_opts_help_io);
}

static int parse_ids(const char *s, int32_t **out, uint32_t *n, const char *what)
{
    size_t len;
    si_error err;
    if (si_parse_ids(s, out, &len, &err) != SI_OK || len > UINT32_MAX) {
        fprintf(stderr, "stream-infer: error: %s: %s\n", what, err.msg);
        return -1;
    }
    *n = (uint32_t)len;
    return 0;
}

static int parse_args(int argc, char **argv, cli *c)
{
    enum { O_PROMPT_IDS = 256, O_FORCE, O_DUMP, O_REPORT, O_PRINT_IDS, O_TEMP, O_TOPK, O_TOPP, O_NOBOS,
           O_SPECIAL, O_CHAT, O_SYSTEM,
           O_MINP, O_REPPEN, O_REPN, O_DEVMBPS, O_BATCHFILE, O_PARALLEL, O_ORDERED };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},    {"prompt", required_argument, 0, 'p'},
        {"n-predict", required_argument, 0, 'n'}, {"seed", required_argument, 0, 's'},
        {"ctx-size", required_argument, 0, 'c'}, {"batch", required_argument, 0, 'b'},
        {"help", no_argument, 0, 'h'},           {"quiet", no_argument, 0, 'q'},
        {"version", no_argument, 0, 'V'},
        {"prompt-ids", required_argument, 0, O_PROMPT_IDS}, {"force-ids", required_argument, 0, O_FORCE},
        {"dump-logits", required_argument, 0, O_DUMP},      {"report-json", required_argument, 0, O_REPORT},
        {"print-ids", no_argument, 0, O_PRINT_IDS},         {"temp", required_argument, 0, O_TEMP},
        {"top-k", required_argument, 0, O_TOPK},            {"top-p", required_argument, 0, O_TOPP},
        {"no-bos", no_argument, 0, O_NOBOS},                {"special", no_argument, 0, O_SPECIAL},
        {"chat", no_argument, 0, O_CHAT},                   {"system", required_argument, 0, O_SYSTEM},
        {"min-p", required_argument, 0, O_MINP},            {"repeat-penalty", required_argument, 0, O_REPPEN},
        {"repeat-last-n", required_argument, 0, O_REPN},    {"device-mbps", required_argument, 0, O_DEVMBPS},
        {"batch-file", required_argument, 0, O_BATCHFILE},  {"parallel", required_argument, 0, O_PARALLEL},
        {"ordered", no_argument, 0, O_ORDERED},             SI_DRAFT_LONG_OPTIONS,
        SI_MODEL_LONG_OPTIONS,                              {0, 0, 0, 0}};
    c->n_predict = -2; /* not given */
    si_draft_opts_init(&c->draft);
    si_model_opts_init(&c->lo);
    c->samp = (si_sampler_opts){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f,
                                .repeat_last_n = 64, .seed = 0};
    int o, li = -1;
    long v;
    char *end;
    while ((li = -1, o = getopt_long(argc, argv, "m:p:n:s:c:b:hq" SI_MODEL_SHORT_OPTIONS, opts, &li)) != -1) {
        switch (o) {
        case 'm': c->model = optarg; break;
        case 'p': c->prompt = optarg; break;
        case 'n':
            if (!si_parse_long(optarg, -1, INT32_MAX, &v))
                goto bad;
            c->n_predict = (int32_t)v;
            break;
        case 's':
            errno = 0;
            c->samp.seed = strtoull(optarg, &end, 10);
            if (end == optarg || *end || errno)
                goto bad;
            break;
        case 'c':
            if (!si_parse_long(optarg, 1, INT32_MAX, &v))
                goto bad;
            c->lo.n_ctx = (uint32_t)v;
            break;
        case 'b':
            if (!si_parse_long(optarg, 1, 65536, &v))
                goto bad;
            c->lo.n_batch = (uint32_t)v;
            break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("stream-infer (streaminfer) %s\n", SI_VERSION); exit(0);
        case 'q': c->quiet = true; break;
        case O_PROMPT_IDS: c->prompt_ids = optarg; break;
        case O_FORCE: c->force_ids = optarg; break;
        case O_DUMP: c->dump_logits = optarg; c->lo.all_logits = true; break;
        case O_REPORT: c->report_json = optarg; break;
        case O_PRINT_IDS: c->print_ids = true; break;
        case O_NOBOS: c->no_bos = true; break;
        case O_SPECIAL: c->special = true; break;
        case O_CHAT: c->chat = true; break;
        case O_SYSTEM: c->system = optarg; break;
        case O_BATCHFILE: c->batch_file = optarg; break;
        case O_ORDERED: c->ordered = true; break;
        case O_PARALLEL:
            if (!si_parse_long(optarg, 1, SI_MAX_SEQ / 2, &v))
                goto bad;
            c->parallel = (uint32_t)v;
            break;
        case O_MINP:
            c->samp.min_p = strtof(optarg, &end);
            if (end == optarg || *end || !(c->samp.min_p >= 0 && c->samp.min_p <= 1))
                goto bad;
            break;
        case O_REPPEN:
            c->samp.repeat_penalty = strtof(optarg, &end);
            if (end == optarg || *end || !(c->samp.repeat_penalty > 0))
                goto bad;
            break;
        case O_REPN:
            if (!si_parse_long(optarg, 0, 1 << 20, &v))
                goto bad;
            c->samp.repeat_last_n = (int32_t)v;
            break;
        case O_TEMP:
            c->samp.temp = strtof(optarg, &end);
            if (end == optarg || *end || !(c->samp.temp >= 0))
                goto bad;
            break;
        case O_TOPK:
            if (!si_parse_long(optarg, 0, INT32_MAX, &v))
                goto bad;
            c->samp.top_k = (int32_t)v;
            break;
        case O_TOPP:
            c->samp.top_p = strtof(optarg, &end);
            if (end == optarg || *end || !(c->samp.top_p > 0 && c->samp.top_p <= 1))
                goto bad;
            break;
        case O_DEVMBPS: {
            double x = strtod(optarg, &end);
            if (end == optarg || *end || !(x > 0 && x < 1e6))
                goto bad;
            c->device_mbps = x;
            break;
        }
        default: {
            int r = si_model_opt(o, optarg, &c->lo, &c->kernels);
            if (r == 0)
                r = si_draft_opt(o, optarg, &c->draft);
            if (r < 0)
                goto bad;
            if (r == 0) {
                usage(stderr);
                return -1;
            }
        }
        }
        continue;
    bad:
        si_opt_invalid("stream-infer", opts, li, o, optarg);
        return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "stream-infer: error: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (!c->model) {
        fprintf(stderr, "stream-infer: error: no model given: use -m MODEL.gguf (see --help)\n");
        return -1;
    }
    if (c->prompt && c->prompt_ids) {
        fprintf(stderr, "stream-infer: error: give either -p or --prompt-ids, not both\n");
        return -1;
    }
    if (c->chat && (c->prompt_ids || c->force_ids || c->dump_logits)) {
        fprintf(stderr, "stream-infer: error: --chat takes text (-p or stdin), not ids or --dump-logits\n");
        return -1;
    }
    if (c->batch_file && (c->prompt || c->prompt_ids || c->chat || c->force_ids || c->dump_logits)) {
        fprintf(stderr, "stream-infer: error: --batch-file carries the prompts: no -p, --prompt-ids, --chat, "
                        "--force-ids or --dump-logits with it\n");
        return -1;
    }
    if (c->ordered && !c->batch_file) {
        fprintf(stderr, "stream-infer: error: --ordered needs --batch-file\n");
        return -1;
    }
    if (c->system && !c->chat) {
        fprintf(stderr, "stream-infer: error: --system needs --chat\n");
        return -1;
    }
    return 0;
}

typedef struct out_ctx {
    bool print_ids;
    bool tty; /* stdout is a terminal: show control bytes as ^X, never send them raw */
    bool first;
    si_detok *detok;
    si_progress *bar; /* the pass's status line on stderr: erased around every write to stdout */
} out_ctx;

/* Ctrl-C: the first stops the pass in flight before its next weight extent (the model's
 * should_stop; the tokens so far are printed, the report follows); a second one, before
 * that, ends the process at once. The chat's turns reset it. */
static volatile sig_atomic_t interrupted;
static bool stop_requested(void *unused)
{
    (void)unused;
    return interrupted;
}
static void on_sigint(int sig)
{
    if (interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    interrupted = 1;
}

/* Text to stdout; on a terminal, C0 control bytes (but newline and tab) and DEL as
 * ^X so that stray escape sequences from a model cannot garble the screen. */
static void put_text(const out_ctx *o, const char *s, size_t n)
{
    if (!o->tty) {
        fwrite(s, 1, n, stdout);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f)
            printf("^%c", ch == 0x7f ? '?' : ch + '@');
        else
            putchar(ch);
    }
}

/* stdout behind the status line: every write erases it, writes, and draws it again. */
static ssize_t progress_write(void *cookie, const char *buf, size_t n)
{
    si_progress *bar = cookie;
    si_progress_hide(bar);
    size_t w = fwrite(buf, 1, n, stdout);
    fflush(stdout);
    si_progress_show(bar);
    return w == n ? (ssize_t)n : -1;
}

static FILE *progress_stdout(si_progress *bar)
{
    return fopencookie(bar, "w", (cookie_io_functions_t){.write = progress_write});
}

static bool on_token(void *p, int32_t id)
{
    out_ctx *o = p;
    si_progress_hide(o->bar);
    if (o->print_ids) {
        printf(o->first ? "%d" : " %d", id);
        o->first = false;
    } else if (o->detok) {
        const char *s;
        size_t n;
        if (si_detok_push(o->detok, id, &s, &n, NULL) == SI_OK)
            put_text(o, s, n);
    }
    fflush(stdout);
    si_progress_show(o->bar);
    return !interrupted;
}

/* The status line of a pass, from the model's progress reports: "pass 3 · layer 17/32
 * · 24.8 MB/s · 61 s left · 2 tokens". The read rate is smoothed over about 2 s of
 * passes (the time between passes, such as a chat waiting for its next message, is not
 * counted); the time left is the pass's time so far scaled by the share of its weight
 * bytes still to come. */
typedef struct pass_view {
    si_progress bar;
    uint64_t pass;
    double pass_t0, t_prev, mbps;
    uint64_t b_prev;
    bool have_rate;
} pass_view;

static void on_progress(void *ctx, const si_llama_progress *p)
{
    pass_view *v = ctx;
    double now = si_now_s();
    if (p->pass != v->pass) {
        v->pass = p->pass;
        v->pass_t0 = now;
    } else if (now > v->t_prev && p->bytes_read >= v->b_prev) {
        double dt = now - v->t_prev, inst = (double)(p->bytes_read - v->b_prev) / dt / 1e6;
        v->mbps = v->have_rate ? v->mbps + (1 - exp(-dt / 2.0)) * (inst - v->mbps) : inst;
        v->have_rate = true;
    }
    v->t_prev = now;
    v->b_prev = p->bytes_read;
    char rate[32] = "", left[32] = "";
    if (v->have_rate)
        snprintf(rate, sizeof rate, " \u00b7 %.1f MB/s", v->mbps);
    if (p->weight_bytes_done > 0 && p->weight_bytes_done < p->weight_bytes)
        snprintf(left, sizeof left, " \u00b7 %.0f s left",
                 (now - v->pass_t0) * (double)(p->weight_bytes - p->weight_bytes_done) / (double)p->weight_bytes_done);
    si_progress_set(&v->bar, false, "pass %" PRIu64 " \u00b7 layer %u/%u%s%s \u00b7 %u token%s", p->pass, p->layer,
                    p->n_layer, rate, left, p->n_tokens, p->n_tokens == 1 ? "" : "s");
}

/* VmHWM of this process image. Not getrusage's ru_maxrss: exec keeps the high-water mark
 * of the image it replaced, so a stream-infer started from a large process (a shell
 * script's python, a build tool) would report the parent's memory as its own. */
static uint64_t peak_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    uint64_t kb = 0;
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %" SCNu64 " kB", &kb) == 1)
                break;
        fclose(f);
    }
    if (!kb) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = (uint64_t)ru.ru_maxrss;
    }
    return kb * 1024;
}

#define MAX_TURNS_REPORTED 256

/* What the report adds up over a run's requests. */
typedef struct run_totals {
    uint32_t n_generated; /* tokens produced */
    uint32_t n_evaluated; /* tokens that went through the model */
    double ttft_s;        /* program start to the first token */
    double prompt_s;      /* submit to first token */
    double gen_s;         /* first token to the end */
    bool stopped_at_eog;
} run_totals;

typedef struct report {
    si_llama_stats st;
    run_totals gr; /* summed over turns (or requests) */
    si_engine_stats es;
    si_batch_summary batch; /* --batch-file */
    uint32_t n_turns;
    uint32_t turn_new[MAX_TURNS_REPORTED]; /* tokens each turn evaluated before generating */
    uint32_t turn_gen[MAX_TURNS_REPORTED];
    const si_plan *plan;
    uint32_t n_prompt;
    const char *backend, *io_note;
    bool reader_threads;
    bool direct;
    unsigned queue_depth;
    uint32_t n_threads, n_cpus; /* compute threads; CPUs of the process's affinity set */
    const char *kernels;
    double device_mbps;
    double t_start; /* si_now_s() at program start */
    uint64_t peak_rss;
    bool interrupted; /* -p or --batch-file ended by Ctrl-C */
    uint32_t n_files; /* a striped pack's members: each one's bytes and busy time */
    si_sched_file_stats files[SI_SCHED_MAX_FILES];
} report;

static void print_report(FILE *f, const report *r)
{
    const si_sched_stats *s = &r->st.sched;
    char a[32], b[32], c[32], d[32], e[32];
    double pass_s = r->st.pass_s > 0 ? r->st.pass_s : 1e-9;
    uint64_t passes = s->passes ? s->passes : 1;
    fprintf(f, "\n--- stream-infer report ---\n");
    if (!r->batch.lines) /* a batch file's latencies are per request, below */
        fprintf(f, "time to first token : %.3f s\n", r->gr.ttft_s);
    /* From the start of the program: what a user waits for before the weights start
     * streaming (parsing the file, the memory plan, buffers). */
    if (s->first_read_at > 0)
        fprintf(f, "start to first read : %.3f s\n", s->first_read_at - r->t_start);
    /* Generation time is spent evaluating the sampled tokens fed back, one pass each. */
    uint32_t fed_back = r->gr.n_evaluated - r->n_prompt;
    if (!r->batch.lines) {
        fprintf(f, "prompt              : %u tokens in %.3f s (%.1f ms/token)\n", r->n_prompt, r->gr.prompt_s,
                r->n_prompt ? 1e3 * r->gr.prompt_s / r->n_prompt : 0.0);
        fprintf(f, "generation          : %u tokens in %.3f s (%.1f ms per token evaluated)\n", r->gr.n_generated,
                r->gr.gen_s, fed_back ? 1e3 * r->gr.gen_s / fed_back : 0.0);
    }
    fprintf(f, "passes              : %" PRIu64 " (%.2f tokens evaluated, %.2f generated per pass)\n", s->passes,
            (double)r->st.tokens_evaluated / passes, (double)r->es.tokens_generated / passes);
    if (r->es.draft_proposed || r->es.lookahead_window) {
        const si_engine_stats *e = &r->es;
        const uint64_t *sp = e->draft_src_proposed, *sa = e->draft_src_accepted;
        fprintf(f, "drafts              : %.2f guessed, %.2f accepted per pass (%.0f%% of %" PRIu64
                   " guesses) in %" PRIu64 " passes; auto width now %u\n",
                (double)e->draft_proposed / passes, (double)e->draft_accepted / passes,
                e->draft_proposed ? 100.0 * (double)e->draft_accepted / (double)e->draft_proposed : 0.0,
                e->draft_proposed, e->draft_passes, e->draft_width);
        fprintf(f, "drafts by source    : lookup %" PRIu64 " guessed, %" PRIu64 " accepted (%.0f%%); lookahead %" PRIu64
                   " guessed, %" PRIu64 " accepted (%.0f%%), window %.2f tokens per pass\n",
                sp[SI_DRAFT_SRC_LOOKUP], sa[SI_DRAFT_SRC_LOOKUP],
                sp[SI_DRAFT_SRC_LOOKUP] ? 100.0 * (double)sa[SI_DRAFT_SRC_LOOKUP] / (double)sp[SI_DRAFT_SRC_LOOKUP] : 0.0,
                sp[SI_DRAFT_SRC_LOOKAHEAD], sa[SI_DRAFT_SRC_LOOKAHEAD],
                sp[SI_DRAFT_SRC_LOOKAHEAD]
                    ? 100.0 * (double)sa[SI_DRAFT_SRC_LOOKAHEAD] / (double)sp[SI_DRAFT_SRC_LOOKAHEAD]
                    : 0.0,
                (double)e->lookahead_window / passes);
        /* Compute is not timed per token: the guesses' share of it is their share of
         * the tokens evaluated (the classifier row each costs included). */
        double guessed = (double)(e->draft_proposed + e->lookahead_window);
        double share = r->st.tokens_evaluated ? guessed / (double)r->st.tokens_evaluated : 0;
        fprintf(f, "drafts' compute     : %.3f s per pass (their %.0f%% share of the tokens evaluated)\n",
                share * r->st.compute_s / (double)passes, 100.0 * share);
    }
    if (r->batch.lines) {
        const si_batch_summary *b = &r->batch;
        fprintf(f, "requests            : %u served, %u in error, %u at most at once; %.1f s in all\n", b->requests,
                b->errors, r->es.n_parallel, b->wall_s);
        fprintf(f, "request latency     : first token %.3f s mean, %.3f s max; total %.3f s mean, %.3f s max\n",
                b->ttft_mean_s, b->ttft_max_s, b->total_mean_s, b->total_max_s);
        fprintf(f, "aggregate           : %.3f tokens/s generated over %.3f s of passes\n",
                r->st.pass_s > 0 ? (double)r->es.tokens_generated / r->st.pass_s : 0.0, r->st.pass_s);
    }
    fprintf(f, "bytes per pass      : %s; read %s in all (%s of embedding rows, %s read ahead unused)\n",
            si_format_size(s->bytes_per_pass, a, sizeof a), si_format_size(r->st.io_bytes_read, b, sizeof b),
            si_format_size(r->st.embd_bytes_read, c, sizeof c), si_format_size(s->bytes_discarded, d, sizeof d));
    if (r->st.pins_planned)
        fprintf(f, "pinned weights      : %s held, %u of the %u tensors planned (%s); %s per pass without pins\n",
                si_format_size(s->pinned_bytes, a, sizeof a), r->st.pins_held, r->st.pins_planned, r->plan->pins,
                si_format_size(r->plan->pass_bytes_unpinned, b, sizeof b));
    else
        fprintf(f, "pinned weights      : none (%s left for pins)\n", si_format_size(r->plan->pin_budget, a, sizeof a));
    if (r->st.pins_released || r->st.pins_restored)
        fprintf(f, "pins given way      : %" PRIu64 " released to the KV cache, %" PRIu64 " restored\n",
                r->st.pins_released, r->st.pins_restored);
    fprintf(f, "engine memory       : %s held now, %s at most, of the %s budget (KV cache %s now, %s at most)\n",
            si_format_size(r->st.held_bytes, a, sizeof a), si_format_size(r->st.held_peak_bytes, b, sizeof b),
            si_format_size(r->plan->budget, c, sizeof c), si_format_size(r->st.kv_bytes, d, sizeof d),
            si_format_size(r->st.kv_peak_bytes, e, sizeof e));
    if (r->st.pass_s > 0) { /* no pass ran (an error before the first): no rates */
        fprintf(f, "read throughput     : %.1f MB/s over %.3f s of passes\n",
                (double)r->st.io_bytes_read / 1e6 / pass_s, r->st.pass_s);
        fprintf(f, "I/O wait / compute  : %.3f s / %.3f s (%.0f%% waiting, %.0f%% computing)\n", s->io_wait_s,
                r->st.compute_s, 100.0 * s->io_wait_s / pass_s, 100.0 * r->st.compute_s / pass_s);
    }
    /* The first pass also carries the prompt's batch (and any start-up reads); the
     * later ones are one token each, the steady state of generation. */
    fprintf(f, "per pass            : %.3f s on average", r->st.pass_s / (double)passes);
    uint32_t fed = r->gr.n_evaluated > r->n_prompt ? r->gr.n_evaluated - r->n_prompt : 0;
    if (fed && r->gr.gen_s > 0)
        fprintf(f, "; prompt %.3f s, generation %.3f s per token (%.1f MB/s)", r->gr.prompt_s, r->gr.gen_s / fed,
                (double)s->bytes_per_pass / 1e6 / (r->gr.gen_s / fed));
    fprintf(f, "\n");
    if (r->device_mbps > 0) {
        double achieved = (double)r->st.io_bytes_read / 1e6 / pass_s;
        fprintf(f, "achieved / device   : %.1f / %.1f MB/s = %.1f%% over all passes", achieved, r->device_mbps,
                100.0 * achieved / r->device_mbps);
        if (fed && r->gr.gen_s > 0)
            fprintf(f, "; generation passes %.1f%%",
                    100.0 * (double)s->bytes_per_pass / 1e6 / (r->gr.gen_s / fed) / r->device_mbps);
        fprintf(f, "\n");
    }
    if (r->st.verify_s > 0 || s->bytes_decoded > 0) /* a pack: checksums, decompression (part of compute) */
        fprintf(f, "pack verify / decode: %.3f s / %.3f s (%.1f MB decompressed, %" PRIu64 " re-reads)\n",
                r->st.verify_s, r->st.decode_s, (double)s->bytes_decoded / 1e6, r->st.checksum_rereads);
    fprintf(f, "weight buffer       : peak %s of %s; KV cache %s (ctx %u); batch %u\n",
            si_format_size(s->ring_peak_bytes, a, sizeof a), si_format_size(s->ring_bytes, b, sizeof b),
            si_format_size(r->plan->kv_bytes, c, sizeof c), r->plan->n_ctx, r->plan->n_batch);
    fprintf(f, "context             : %u positions (%s); activations %s\n", r->plan->n_ctx, r->plan->ctx_source,
            si_format_size(r->plan->act_bytes, a, sizeof a));
    fprintf(f, "memory budget       : %s (%s)\n", si_format_size(r->plan->budget, a, sizeof a),
            r->plan->budget_source);
    fprintf(f, "fixed overhead      : %s beside the budget (code, libraries, metadata, tokenizer; at open)\n",
            si_format_size(r->plan->overhead_bytes, a, sizeof a));
    fprintf(f, "I/O                 : %s%s, %s, queue depth %u, chunk %s%s%s\n", r->backend,
            r->reader_threads ? " (a reader thread per member)" : "", r->direct ? "O_DIRECT" : "buffered", r->queue_depth, si_format_size(s->chunk_bytes, a, sizeof a),
            r->io_note && *r->io_note ? "; " : "", r->io_note ? r->io_note : "");
    fprintf(f, "compute             : %u thread%s (%u CPU%s available), %s kernels\n", r->n_threads,
            r->n_threads == 1 ? "" : "s", r->n_cpus, r->n_cpus == 1 ? "" : "s", r->kernels);
    for (uint32_t i = 0; r->n_files > 1 && i < r->n_files; i++) {
        const si_sched_file_stats *m = &r->files[i];
        fprintf(f, "member %-2u           : %s: %s read, %.1f MB/s while busy, busy %.0f%% of the passes' time\n", i,
                m->path, si_format_size(m->io_bytes_read, a, sizeof a),
                m->busy_s > 0 ? (double)m->bytes_read / 1e6 / m->busy_s : 0.0, 100.0 * m->busy_pass_s / pass_s);
    }
    fprintf(f, "peak RSS            : %s\n", si_format_size(r->peak_rss, a, sizeof a));
    if (r->interrupted)
        fprintf(f, "interrupted         : yes (Ctrl-C; %s)\n",
                r->st.passes_stopped ? "the pass in flight stopped before its next read" : "between passes");
}

/* s as a JSON string literal. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static int write_report_json(const char *path, const report *r)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const si_sched_stats *s = &r->st.sched;
    double pass_s = r->st.pass_s > 0 ? r->st.pass_s : 1e-9;
    fprintf(f,
            "{\"passes\": %" PRIu64 ", \"bytes_per_pass\": %" PRIu64 ", \"bytes_read\": %" PRIu64
            ", \"embd_bytes_read\": %" PRIu64 ", \"open_bytes_read\": %" PRIu64 ", \"bytes_discarded\": %" PRIu64 ", \"read_mb_s\": %.3f"
            ", \"prompt_tokens\": %u, \"tokens_generated\": %u, \"tokens_evaluated\": %" PRIu64
            ", \"tokens_per_pass\": %.4f, \"ttft_s\": %.6f, \"prompt_s\": %.6f, \"gen_s\": %.6f"
            ", \"pass_s\": %.6f, \"io_wait_s\": %.6f, \"compute_s\": %.6f, \"peak_rss_bytes\": %" PRIu64
            ", \"weight_buffer_peak_bytes\": %" PRIu64 ", \"weight_buffer_bytes\": %" PRIu64
            ", \"kv_cache_bytes\": %" PRIu64 ", \"n_ctx\": %u, \"n_batch\": %u, \"mem_budget_bytes\": %" PRIu64
            ", \"io_backend\": \"%s\", \"direct_io\": %s",
            s->passes, s->bytes_per_pass, r->st.io_bytes_read, r->st.embd_bytes_read, r->st.open_bytes_read,
            s->bytes_discarded,
            (double)r->st.io_bytes_read / 1e6 / pass_s, r->n_prompt, r->gr.n_generated, r->st.tokens_evaluated,
            s->passes ? (double)r->st.tokens_evaluated / s->passes : 0.0, r->gr.ttft_s, r->gr.prompt_s,
            r->gr.gen_s, r->st.pass_s, s->io_wait_s, r->st.compute_s, r->peak_rss, s->ring_peak_bytes,
            s->ring_bytes, r->plan->kv_bytes, r->plan->n_ctx, r->plan->n_batch, r->plan->budget, r->backend,
            r->direct ? "true" : "false");
    fprintf(f, ", \"activation_bytes\": %" PRIu64 ", \"pinned_bytes\": %" PRIu64 ", \"pinned_tensors\": %u"
               ", \"pin_budget_bytes\": %" PRIu64 ", \"bytes_per_pass_unpinned\": %" PRIu64 ", \"pins\": ",
            r->plan->act_bytes, s->pinned_bytes, r->plan->pinned_tensors, r->plan->pin_budget,
            r->plan->pass_bytes_unpinned);
    json_string(f, r->plan->pins);
    fprintf(f, ", \"pins_held\": %u, \"pins_released\": %" PRIu64 ", \"pins_restored\": %" PRIu64
               ", \"held_bytes\": %" PRIu64 ", \"held_peak_bytes\": %" PRIu64 ", \"kv_allocated_bytes\": %" PRIu64
               ", \"kv_allocated_peak_bytes\": %" PRIu64 ", \"kv_block_cells\": %u",
            r->st.pins_held, r->st.pins_released, r->st.pins_restored, r->st.held_bytes, r->st.held_peak_bytes,
            r->st.kv_bytes, r->st.kv_peak_bytes, r->plan->kv_block_cells);
    fprintf(f, ", \"overhead_bytes\": %" PRIu64 ", \"book_bytes\": %" PRIu64, r->plan->overhead_bytes,
            r->plan->book_bytes);
    fprintf(f, ", \"ctx_source\": ");
    json_string(f, r->plan->ctx_source);
    fprintf(f, ", \"queue_depth\": %u, \"chunk_bytes\": %" PRIu64, r->queue_depth, s->chunk_bytes);
    fprintf(f, ", \"threads\": %u, \"cpus\": %u, \"kernels\": \"%s\"", r->n_threads, r->n_cpus, r->kernels);
    if (s->first_read_at > 0)
        fprintf(f, ", \"first_read_s\": %.6f", s->first_read_at - r->t_start);
    if (r->device_mbps > 0)
        fprintf(f, ", \"device_mb_s\": %.3f", r->device_mbps);
    fprintf(f, ", \"verify_s\": %.6f, \"decode_s\": %.6f, \"bytes_decoded\": %" PRIu64 ", \"checksum_rereads\": %" PRIu64,
            r->st.verify_s, r->st.decode_s, s->bytes_decoded, r->st.checksum_rereads);
    fprintf(f, ", \"stopped_at_eog\": %s, \"turn_new_tokens\": [", r->gr.stopped_at_eog ? "true" : "false");
    for (uint32_t i = 0; i < r->n_turns && i < MAX_TURNS_REPORTED; i++)
        fprintf(f, i ? ", %u" : "%u", r->turn_new[i]);
    fprintf(f, "], \"turn_generated\": [");
    for (uint32_t i = 0; i < r->n_turns && i < MAX_TURNS_REPORTED; i++)
        fprintf(f, i ? ", %u" : "%u", r->turn_gen[i]);
    fprintf(f, "], \"generated_per_pass\": %.4f, \"tokens_generated_all\": %" PRIu64 ", \"parallel\": %u",
            s->passes ? (double)r->es.tokens_generated / s->passes : 0.0, r->es.tokens_generated, r->es.n_parallel);
    fprintf(f, ", \"draft_proposed\": %" PRIu64 ", \"draft_accepted\": %" PRIu64 ", \"draft_passes\": %" PRIu64
               ", \"draft_proposed_per_pass\": %.4f, \"draft_accepted_per_pass\": %.4f, \"draft_width\": %u"
               ", \"draft_window\": %" PRIu64 ", \"draft_source\": {\"lookup\": {\"proposed\": %" PRIu64
               ", \"accepted\": %" PRIu64 "}, \"lookahead\": {\"proposed\": %" PRIu64 ", \"accepted\": %" PRIu64
               ", \"window\": %" PRIu64 "}}",
            r->es.draft_proposed, r->es.draft_accepted, r->es.draft_passes,
            s->passes ? (double)r->es.draft_proposed / s->passes : 0.0,
            s->passes ? (double)r->es.draft_accepted / s->passes : 0.0, r->es.draft_width, r->es.lookahead_window,
            r->es.draft_src_proposed[SI_DRAFT_SRC_LOOKUP], r->es.draft_src_accepted[SI_DRAFT_SRC_LOOKUP],
            r->es.draft_src_proposed[SI_DRAFT_SRC_LOOKAHEAD], r->es.draft_src_accepted[SI_DRAFT_SRC_LOOKAHEAD],
            r->es.lookahead_window);
    {
        double guessed = (double)(r->es.draft_proposed + r->es.lookahead_window);
        double share = r->st.tokens_evaluated ? guessed / (double)r->st.tokens_evaluated : 0;
        fprintf(f, ", \"draft_compute_s_per_pass\": %.6f",
                s->passes ? share * r->st.compute_s / (double)s->passes : 0.0);
    }
    if (r->n_files > 1) {
        fprintf(f, ", \"members\": [");
        for (uint32_t i = 0; i < r->n_files; i++) {
            const si_sched_file_stats *m = &r->files[i];
            fprintf(f, "%s{\"path\": ", i ? ", " : "");
            json_string(f, m->path);
            fprintf(f, ", \"bytes_read\": %" PRIu64 ", \"streamed_bytes\": %" PRIu64 ", \"busy_s\": %.6f"
                       ", \"busy_pass_s\": %.6f, \"mb_s_busy\": %.3f, \"busy_fraction\": %.4f}",
                    m->io_bytes_read, m->bytes_read, m->busy_s, m->busy_pass_s,
                    m->busy_s > 0 ? (double)m->bytes_read / 1e6 / m->busy_s : 0.0, m->busy_pass_s / pass_s);
        }
        fprintf(f, "]");
    }
    if (r->batch.lines)
        fprintf(f, ", \"requests\": %u, \"request_errors\": %u, \"ttft_mean_s\": %.6f, \"ttft_max_s\": %.6f"
                   ", \"total_mean_s\": %.6f, \"total_max_s\": %.6f, \"batch_wall_s\": %.6f",
                r->batch.requests, r->batch.errors, r->batch.ttft_mean_s, r->batch.ttft_max_s, r->batch.total_mean_s,
                r->batch.total_max_s, r->batch.wall_s);
    fprintf(f, ", \"interrupted\": %s, \"passes_stopped\": %" PRIu64 "}\n", r->interrupted ? "true" : "false",
            r->st.passes_stopped);
    return fclose(f);
}

/* Everything a run needs once the model is open. */
typedef struct session {
    cli *c;
    si_llama *m;
    si_engine *eng;
    si_tokenizer *tok; /* NULL: the model runs on ids only */
    out_ctx oc;
    int32_t stop[16];
    uint32_t n_stop;
    double t_start;
    report r;
    pass_view pv;
} session;

static bool is_stop_id(const session *S, int32_t id)
{
    for (uint32_t i = 0; i < S->n_stop; i++)
        if (S->stop[i] == id)
            return true;
    return false;
}

/* One request of -p or --chat, run alone through the batch engine. */
typedef struct turn {
    session *S;
    FILE *dump;          /* --dump-logits */
    bool dump_failed;
    int32_t *made;       /* tokens produced, for the chat's history */
    uint32_t n_made, cap;
    bool oom;
    si_request_result res;
} turn;

static bool turn_token(void *p, int32_t id)
{
    turn *t = p;
    if (t->n_made == t->cap) {
        uint32_t cap = t->cap ? 2 * t->cap : 64;
        int32_t *m = realloc(t->made, cap * sizeof *m);
        if (!m) {
            t->oom = true;
            return false;
        }
        t->made = m, t->cap = cap;
    }
    t->made[t->n_made++] = id;
    return on_token(&t->S->oc, id);
}

static void turn_logits(void *p, const float *row, uint32_t n_vocab)
{
    turn *t = p;
    if (t->dump && fwrite(row, sizeof(float), n_vocab, t->dump) != n_vocab)
        t->dump_failed = true;
}

static void turn_done(void *p, const si_request_result *r) { ((turn *)p)->res = *r; }

static int run_turn(session *S, turn *t, const int32_t *prompt, uint32_t n_prompt, uint32_t n_predict,
                    const int32_t *force, uint32_t n_force, si_error *err)
{
    si_engine_stats before, after;
    si_engine_get_stats(S->eng, &before);
    si_request rq = {.prompt = prompt, .n_prompt = n_prompt, .n_predict = n_predict, .force = force,
                     .n_force = n_force, .sampler = S->c->samp, .all_logits = t->dump != NULL,
                     .draft = S->c->draft.mode, .draft_max = S->c->draft.max,
                     .on_token = turn_token, .on_logits = t->dump ? turn_logits : NULL, .on_done = turn_done, .ctx = t};
    SI_TRY(si_engine_submit(S->eng, &rq, NULL, err));
    int drc = si_engine_drain(S->eng, err);
    si_progress_end(S->oc.bar); /* the turn's passes are over */
    SI_TRY(drc);
    si_engine_get_stats(S->eng, &after);
    const si_request_result *res = &t->res;
    if (res->finish == SI_FINISH_ERROR)
        return si_errorf(err, SI_EIO, "%s", res->error);
    if (t->oom)
        return si_errorf(err, SI_ENOMEM, "out of memory");
    if (t->dump_failed)
        return si_errorf(err, SI_EIO, "writing logits failed (disk full?)");
    run_totals *g = &S->r.gr;
    uint32_t n_new = n_prompt - res->n_cached;
    if (S->r.n_turns == 0)
        g->ttft_s = res->ttft_s + (si_now_s() - res->total_s - S->t_start);
    g->n_generated += res->n_generated;
    g->n_evaluated += (uint32_t)(after.tokens_evaluated - before.tokens_evaluated);
    g->prompt_s += res->ttft_s > 0 ? res->ttft_s : res->total_s;
    g->gen_s += res->ttft_s > 0 ? res->total_s - res->ttft_s : 0;
    g->stopped_at_eog = res->finish == SI_FINISH_STOP && res->last_id >= 0 && is_stop_id(S, res->last_id);
    if (S->r.n_turns < MAX_TURNS_REPORTED) {
        S->r.turn_new[S->r.n_turns] = n_new;
        S->r.turn_gen[S->r.n_turns] = res->n_generated;
    }
    S->r.n_turns++;
    S->r.n_prompt += n_new;
    return SI_OK;
}

static int run_once(session *S, const int32_t *prompt, uint32_t n_prompt, const int32_t *force, uint32_t n_force,
                    FILE *dump, si_error *err)
{
    cli *c = S->c;
    si_progress_begin(S->oc.bar); /* before the echo: the status row is reserved where the text starts */
    if (!c->print_ids && S->oc.detok)
        for (uint32_t i = 0; i < n_prompt; i++)
            on_token(&S->oc, prompt[i]); /* echo the prompt as the model sees it */
    uint32_t n_predict = c->n_predict == -2 ? 32 : c->n_predict == -1 ? SI_N_PREDICT_ALL : (uint32_t)c->n_predict;
    turn t = {.S = S, .dump = dump};
    int rc = run_turn(S, &t, prompt, n_prompt, n_predict, force, n_force, err);
    free(t.made);
    return rc;
}

/* One line of input is one user message; NULL at end of input. */
static char *read_message(bool interactive)
{
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        if (interactive)
            fputs("> ", stderr);
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            if (errno == EINTR && interrupted) { /* Ctrl-C at the prompt: ask again */
                interrupted = 0;
                clearerr(stdin);
                fputs("\n(Ctrl-D ends the chat)\n", stderr);
                continue;
            }
            free(line);
            return NULL;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n > 0)
            return line;
    }
}

static int append_ids(int32_t **ids, uint32_t *n, const int32_t *more, size_t n_more, si_error *err)
{
    int32_t *all = realloc(*ids, (*n + n_more + 1) * sizeof *all);
    SI_CHECK(!all, err, SI_ENOMEM, "out of memory");
    if (n_more)
        memcpy(all + *n, more, n_more * sizeof *more);
    *ids = all;
    *n += (uint32_t)n_more;
    return SI_OK;
}

static int tokenize_append(const si_tokenizer *tok, const char *text, bool bos, int32_t **ids, uint32_t *n,
                           si_error *err)
{
    int32_t *part;
    size_t n_part;
    SI_TRY(si_tokenize(tok, text, strlen(text), bos, true, &part, &n_part, err));
    int rc = append_ids(ids, n, part, n_part, err);
    free(part);
    return rc;
}

/* Multi-turn chat: every turn sends the whole conversation, and the engine's prompt
 * cache finds all of it but the new message already in the KV cache, so only the
 * new tokens are evaluated. */
static int run_chat(session *S, si_error *err)
{
    cli *c = S->c;
    si_chat chat;
    SI_TRY(si_chat_detect(&chat, si_llama_gguf(S->m), S->tok, err));
    bool interactive = !c->prompt && isatty(STDIN_FILENO);
    if (interactive)
        fprintf(stderr, "chat (%s format): one message per line; Ctrl-C stops an answer, Ctrl-D ends\n", chat.name);
    uint32_t n_ctx = si_llama_plan_of(S->m)->n_ctx;
    int32_t *hist = NULL; /* the conversation: every token so far, the last answer's included */
    uint32_t n_hist = 0;
    bool closed = true;   /* the previous answer ended with its end-of-message token */
    int rc = SI_OK;
    for (uint32_t turn_no = 1; rc == SI_OK; turn_no++) {
        char *user = c->prompt ? strdup(c->prompt) : read_message(interactive);
        if (!user)
            break;
        char *msg = si_chat_message(&chat, "user", user);
        char *sys = turn_no == 1 && c->system ? si_chat_message(&chat, "system", c->system) : NULL;
        const char *close = closed ? chat.after_end : chat.end_of_msg;
        uint32_t n_before = n_hist;
        rc = !msg || (turn_no == 1 && c->system && !sys) ? si_errorf(err, SI_ENOMEM, "out of memory") : SI_OK;
        if (rc == SI_OK && turn_no > 1 && *close)
            rc = tokenize_append(S->tok, close, false, &hist, &n_hist, err);
        if (rc == SI_OK && turn_no > 1 && !closed && *chat.after_end)
            rc = tokenize_append(S->tok, chat.after_end, false, &hist, &n_hist, err);
        if (rc == SI_OK && sys)
            rc = tokenize_append(S->tok, sys, si_tokenizer_add_bos_default(S->tok), &hist, &n_hist, err);
        if (rc == SI_OK)
            rc = tokenize_append(S->tok, msg, turn_no == 1 && !sys && si_tokenizer_add_bos_default(S->tok), &hist,
                                 &n_hist, err);
        if (rc == SI_OK)
            rc = tokenize_append(S->tok, si_chat_generation_prompt(&chat), false, &hist, &n_hist, err);
        if (rc == SI_OK && n_hist >= n_ctx)
            rc = si_errorf(err, SI_EINVAL, "the conversation is full: %u + %u tokens do not fit in -c %u", n_before,
                           n_hist - n_before, n_ctx);
        if (rc == SI_OK) {
            uint32_t n_predict = c->n_predict >= 0 ? (uint32_t)c->n_predict : SI_N_PREDICT_ALL;
            turn t = {.S = S};
            rc = run_turn(S, &t, hist, n_hist, n_predict, NULL, 0, err);
            const char *tail;
            size_t tail_n;
            si_detok_flush(S->oc.detok, &tail, &tail_n);
            put_text(&S->oc, tail, tail_n);
            printf("\n");
            fflush(stdout);
            if (rc == SI_OK)
                rc = append_ids(&hist, &n_hist, t.made, t.n_made, err);
            closed = S->r.gr.stopped_at_eog;
            if (rc == SI_OK && closed)
                rc = append_ids(&hist, &n_hist, &t.res.last_id, 1, err);
            if (rc == SI_OK && !c->quiet)
                fprintf(stderr, "[turn %u: %u new tokens evaluated, %u generated%s; context %u of %u]\n", turn_no,
                        t.res.n_prompt - t.res.n_cached, t.res.n_generated,
                        interrupted ? " (interrupted)" : closed ? " (end of turn)" : "", n_hist, n_ctx);
            free(t.made);
            interrupted = 0;
        }
        free(msg), free(sys), free(user);
        if (c->prompt)
            break;
    }
    free(hist);
    return rc;
}

int main(int argc, char **argv)
{
    cli c = {0};
    if (parse_args(argc, argv, &c) != 0)
        return 2;
    session S = {.c = &c, .t_start = si_now_s(), .oc = {.print_ids = c.print_ids, .first = true, .tty = isatty(STDOUT_FILENO)}};
    int32_t *prompt = NULL, *force = NULL;
    uint32_t n_prompt = 0, n_force = 0;
    if (c.prompt_ids && parse_ids(c.prompt_ids, &prompt, &n_prompt, "--prompt-ids") != 0)
        return 2;
    if (c.force_ids && parse_ids(c.force_ids, &force, &n_force, "--force-ids") != 0)
        return 2;

    si_error err = {0};
    FILE *dump = NULL;
    /* The pass's status line: on a terminal, unless -q. */
    si_progress_init(&S.pv.bar, c.quiet);
    S.oc.bar = &S.pv.bar;
    c.lo.progress = on_progress;
    c.lo.progress_ctx = &S.pv;
    c.lo.should_stop = stop_requested;
    int rc = si_kernels_select(c.kernels ? c.kernels : "auto", &err);
    /* Each sequence sharing a step gets its logits row: the plan counts them. */
    c.lo.n_seq_max = c.batch_file ? (c.parallel ? c.parallel : 4) : 1;
    bool drafting = c.draft.mode != SI_DRAFT_NONE && !c.force_ids && !c.dump_logits;
    c.lo.n_draft_max = drafting ? (c.draft.max ? c.draft.max : 8) : 0;
    if (rc == SI_OK)
        rc = si_llama_open(&S.m, c.model, &c.lo, &err);
    if (rc == SI_OK && c.lo.plan_only) { /* --plan: print it, read nothing, run nothing */
        si_print_plan(stdout, c.model, si_llama_plan_of(S.m), c.device_mbps);
        si_llama_close(S.m);
        return 0;
    }
    if (rc == SI_OK) {
        /* A model without a usable vocabulary still runs on ids. */
        si_error terr = {0};
        if (si_tokenizer_load(&S.tok, si_llama_gguf(S.m), &terr) != SI_OK) {
            S.tok = NULL;
            if (c.prompt || c.chat)
                rc = si_errorf(&err, terr.code, "cannot tokenize text: %s", terr.msg);
            else if (!c.print_ids && !c.quiet)
                fprintf(stderr, "stream-infer: note: %s; printing token ids\n", terr.msg);
        }
    }
    if (rc == SI_OK && c.prompt && !c.chat) {
        size_t n = 0;
        bool bos = !c.no_bos && si_tokenizer_add_bos_default(S.tok);
        rc = si_tokenize(S.tok, c.prompt, strlen(c.prompt), bos, c.special, &prompt, &n, &err);
        n_prompt = (uint32_t)n;
    }
    if (rc == SI_OK && !c.chat && !c.prompt && !c.prompt_ids && !c.batch_file)
        rc = si_errorf(&err, SI_EINVAL, "no prompt: give -p TEXT, --prompt-ids \"ID ...\" or --chat");
    if (rc == SI_OK && c.dump_logits && !(dump = fopen(c.dump_logits, "wb")))
        rc = si_errorf(&err, SI_EIO, "%s: cannot create: %s", c.dump_logits, strerror(errno));
    if (rc == SI_OK && S.tok) {
        for (uint32_t id = 0; id < si_tokenizer_n_vocab(S.tok) && S.n_stop < 16; id++)
            if (si_tokenizer_is_eog(S.tok, (int32_t)id))
                S.stop[S.n_stop++] = (int32_t)id;
        unsigned flags = c.chat ? 0 : SI_DETOK_STRIP_SPACE;
        if (!c.print_ids && !(S.oc.detok = si_detok_new(S.tok, flags)))
            rc = si_errorf(&err, SI_ENOMEM, "out of memory");
    }
    if (rc == SI_OK) {
        si_engine_opts eo = {.n_parallel = c.batch_file ? c.parallel : 1, .eog_ids = S.stop, .n_eog = S.n_stop,
                             .draft_max = c.draft.max, .compute_ratio = c.draft.compute_ratio};
        rc = si_engine_create(&S.eng, S.m, &eo, &err);
    }
    if (rc == SI_OK) {
        /* Ctrl-C ends the current answer (and interrupts a read at the chat prompt). */
        struct sigaction sa = {.sa_handler = on_sigint};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        if (c.chat) {
            rc = run_chat(&S, &err);
        } else if (c.batch_file) {
            uint32_t n_predict = c.n_predict == -2 ? 32 : c.n_predict == -1 ? SI_N_PREDICT_ALL : (uint32_t)c.n_predict;
            si_batch_defaults bd = {.samp = c.samp, .n_predict = n_predict, .special = c.special,
                                    .draft = c.draft.mode, .draft_max = c.draft.max, .interrupt = &interrupted,
                                    .add_bos = !c.no_bos && S.tok && si_tokenizer_add_bos_default(S.tok)};
            /* Result lines go through a stream that erases the status line around them. */
            FILE *out = S.pv.bar.below ? progress_stdout(&S.pv.bar) : NULL;
            rc = si_run_batch_file(S.eng, S.tok, c.batch_file, &bd, c.ordered, out ? out : stdout, &S.r.batch, &err);
            if (out)
                fclose(out);
            si_progress_end(&S.pv.bar);
        }
        else
            rc = run_once(&S, prompt, n_prompt, c.force_ids && n_force ? force : NULL, n_force, dump, &err);
        si_progress_end(&S.pv.bar);
        int rc2 = si_llama_finish(S.m, rc == SI_OK ? &err : NULL);
        if (rc == SI_OK)
            rc = rc2;
        if (S.oc.detok && !c.chat) {
            const char *t;
            size_t n;
            si_detok_flush(S.oc.detok, &t, &n);
            put_text(&S.oc, t, n);
        }
        if (!c.chat && !c.batch_file)
            printf("\n");
        fflush(stdout);
        report *r = &S.r;
        si_llama_get_stats(S.m, &r->st);
        r->n_files = si_llama_n_files(S.m);
        for (uint32_t i = 0; i < r->n_files && i < SI_SCHED_MAX_FILES; i++)
            si_llama_file_stats(S.m, i, &r->files[i]);
        si_engine_get_stats(S.eng, &r->es);
        r->plan = si_llama_plan_of(S.m);
        si_llama_stats ls;
        si_llama_get_stats(S.m, &ls);
        r->backend = ls.io.backend;
        r->direct = ls.io.direct;
        r->io_note = ls.io.note;
        r->queue_depth = ls.io.queue_depth;
        r->reader_threads = ls.io.reader_threads;
        r->n_threads = si_llama_n_threads(S.m);
        r->n_cpus = si_pool_default_threads();
        r->kernels = si_kernels_active()->name;
        r->device_mbps = c.device_mbps;
        r->t_start = S.t_start;
        r->peak_rss = peak_rss_bytes();
        r->interrupted = interrupted && !c.chat;
        if (!c.quiet)
            print_report(stderr, r);
        if (c.report_json && write_report_json(c.report_json, r) != 0 && rc == SI_OK)
            rc = si_errorf(&err, SI_EIO, "%s: cannot write the report: %s", c.report_json, strerror(errno));
    }
    if (dump && fclose(dump) != 0 && rc == SI_OK)
        rc = si_errorf(&err, SI_EIO, "%s: writing logits failed: %s", c.dump_logits, strerror(errno));
    if (rc != SI_OK)
        fprintf(stderr, "stream-infer: error: %s\n", err.msg);
    bool stopped = rc == SI_OK && S.r.interrupted;
    if (stopped && c.batch_file)
        fprintf(stderr, "stream-infer: interrupted: %u requests ended (those running with their text so far, "
                        "finish_reason \"cancelled\"); later lines of %s were not read\n",
                S.r.batch.requests, c.batch_file);
    else if (stopped)
        fprintf(stderr, "stream-infer: interrupted: %u tokens generated (the output above is what there was)\n",
                S.r.gr.n_generated);
    si_detok_free(S.oc.detok);
    si_engine_free(S.eng);
    si_tokenizer_free(S.tok);
    si_llama_close(S.m);
    free(prompt);
    free(force);
    return rc != SI_OK ? 1 : stopped ? 128 + SIGINT : 0;
}
