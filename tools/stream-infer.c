/* stream-infer: run a Llama GGUF whose weights never have to fit in memory. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "streaminfer/generate.h"
#include "streaminfer/kernels.h"
#include "streaminfer/llama.h"
#include "streaminfer/plan.h"
#include "streaminfer/sampler.h"
#include "streaminfer/tokenizer.h"

typedef struct cli {
    const char *model, *prompt, *prompt_ids, *force_ids, *dump_logits, *report_json, *kernels;
    int32_t n_predict;
    si_sampler_opts samp;
    si_llama_opts lo;
    bool print_ids, special, no_bos, quiet;
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
            "  -n, --n-predict N       tokens to generate (default 32; 0: evaluate the prompt only)\n"
            "      --force-ids IDS     feed these ids one step at a time instead of sampling (-n ignored)\n"
            "      --print-ids         stdout carries only the generated ids; text goes nowhere\n"
            "      --dump-logits FILE  float32 logits of every evaluated position, [rows][n_vocab]\n"
            "      --report-json FILE  the run's figures as one JSON object\n"
            "  -q, --quiet             no report on stderr\n"
            "sampling:\n"
            "  -s, --seed N            random seed (default 0)\n"
            "      --temp T            temperature (default 0.8; 0 = greedy)\n"
            "      --top-k K           keep the K most likely tokens (default 40; 0 = off)\n"
            "      --top-p P           nucleus sampling (default 0.95; 1 = off)\n"
            "memory and context:\n"
            "  -c, --ctx-size N        context length (default: the model's, capped by the budget)\n"
            "      --mem-budget SIZE   bound for weight buffers + KV cache + activations, e.g. 400M\n"
            "                          (default: cgroup limit or MemAvailable, less a margin)\n"
            "      --kv-type f16|f32   KV cache precision (default f16)\n"
            "  -b, --batch N           tokens per pass (default: planned from the budget)\n"
            "I/O:\n"
            "      --io auto|uring|pread  read backend (default auto: io_uring, else pread)\n"
            "      --io-compat 5.10    use only io_uring features Linux 5.10 has (the K230's kernel)\n"
            "      --direct auto|on|off   O_DIRECT reads (default auto: fall back on EINVAL)\n"
            "      --queue-depth N     reads in flight (default 8)\n"
            "      --chunk SIZE        largest single read (default 1M)\n"
            "compute:\n"
            "      --kernels NAME      kernel set: auto (default: the best this CPU has), c, or a SIMD set\n"
            "  -h, --help              this text\n");
}

static int parse_ids(const char *s, int32_t **out, uint32_t *n, const char *what)
{
    size_t cap = 16, len = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids)
        return -1;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            fprintf(stderr, "stream-infer: error: %s: '%s' is not a token id\n", what, p);
            free(ids);
            return -1;
        }
        if (len == cap) {
            int32_t *t = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!t) {
                free(ids);
                return -1;
            }
            ids = t;
        }
        ids[len++] = (int32_t)v;
        p = end;
    }
    *out = ids;
    *n = (uint32_t)len;
    return 0;
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, cli *c)
{
    enum { O_PROMPT_IDS = 256, O_FORCE, O_DUMP, O_REPORT, O_PRINT_IDS, O_TEMP, O_TOPK, O_TOPP, O_BUDGET,
           O_KV, O_IO, O_COMPAT, O_DIRECT, O_QD, O_CHUNK, O_NOBOS, O_SPECIAL, O_KERNELS };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},    {"prompt", required_argument, 0, 'p'},
        {"n-predict", required_argument, 0, 'n'}, {"seed", required_argument, 0, 's'},
        {"ctx-size", required_argument, 0, 'c'}, {"batch", required_argument, 0, 'b'},
        {"help", no_argument, 0, 'h'},           {"quiet", no_argument, 0, 'q'},
        {"prompt-ids", required_argument, 0, O_PROMPT_IDS}, {"force-ids", required_argument, 0, O_FORCE},
        {"dump-logits", required_argument, 0, O_DUMP},      {"report-json", required_argument, 0, O_REPORT},
        {"print-ids", no_argument, 0, O_PRINT_IDS},         {"temp", required_argument, 0, O_TEMP},
        {"top-k", required_argument, 0, O_TOPK},            {"top-p", required_argument, 0, O_TOPP},
        {"mem-budget", required_argument, 0, O_BUDGET},     {"kv-type", required_argument, 0, O_KV},
        {"io", required_argument, 0, O_IO},                 {"io-compat", required_argument, 0, O_COMPAT},
        {"direct", required_argument, 0, O_DIRECT},         {"queue-depth", required_argument, 0, O_QD},
        {"chunk", required_argument, 0, O_CHUNK},           {"no-bos", no_argument, 0, O_NOBOS},
        {"special", no_argument, 0, O_SPECIAL},             {"kernels", required_argument, 0, O_KERNELS},
        {0, 0, 0, 0}};
    c->n_predict = 32;
    c->samp = (si_sampler_opts){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .seed = 0};
    int o, li = -1;
    long v;
    uint64_t sz;
    char *end;
    while ((li = -1, o = getopt_long(argc, argv, "m:p:n:s:c:b:hq", opts, &li)) != -1) {
        switch (o) {
        case 'm': c->model = optarg; break;
        case 'p': c->prompt = optarg; break;
        case 'n':
            if (!parse_int(optarg, 0, INT32_MAX, &v))
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
            if (!parse_int(optarg, 1, INT32_MAX, &v))
                goto bad;
            c->lo.n_ctx = (uint32_t)v;
            break;
        case 'b':
            if (!parse_int(optarg, 1, 65536, &v))
                goto bad;
            c->lo.n_batch = (uint32_t)v;
            break;
        case 'h': usage(stdout); exit(0);
        case 'q': c->quiet = true; break;
        case O_PROMPT_IDS: c->prompt_ids = optarg; break;
        case O_FORCE: c->force_ids = optarg; break;
        case O_DUMP: c->dump_logits = optarg; c->lo.all_logits = true; break;
        case O_REPORT: c->report_json = optarg; break;
        case O_PRINT_IDS: c->print_ids = true; break;
        case O_NOBOS: c->no_bos = true; break;
        case O_SPECIAL: c->special = true; break;
        case O_KERNELS: c->kernels = optarg; break;
        case O_TEMP:
            c->samp.temp = strtof(optarg, &end);
            if (end == optarg || *end || !(c->samp.temp >= 0))
                goto bad;
            break;
        case O_TOPK:
            if (!parse_int(optarg, 0, INT32_MAX, &v))
                goto bad;
            c->samp.top_k = (int32_t)v;
            break;
        case O_TOPP:
            c->samp.top_p = strtof(optarg, &end);
            if (end == optarg || *end || !(c->samp.top_p > 0 && c->samp.top_p <= 1))
                goto bad;
            break;
        case O_BUDGET:
            if (si_parse_size(optarg, &sz) != SI_OK || sz == 0)
                goto bad;
            c->lo.mem_budget = sz;
            break;
        case O_KV:
            if (strcmp(optarg, "f16") == 0)
                c->lo.kv_type = SI_KV_F16;
            else if (strcmp(optarg, "f32") == 0)
                c->lo.kv_type = SI_KV_F32;
            else
                goto bad;
            break;
        case O_IO:
            if (strcmp(optarg, "auto") == 0)
                c->lo.io.kind = SI_IO_AUTO;
            else if (strcmp(optarg, "uring") == 0 || strcmp(optarg, "io_uring") == 0)
                c->lo.io.kind = SI_IO_URING;
            else if (strcmp(optarg, "pread") == 0)
                c->lo.io.kind = SI_IO_PREAD;
            else
                goto bad;
            break;
        case O_COMPAT:
            if (strcmp(optarg, "5.10") != 0)
                goto bad;
            c->lo.io.compat_5_10 = true;
            break;
        case O_DIRECT:
            if (strcmp(optarg, "auto") == 0)
                c->lo.io.direct = SI_DIRECT_AUTO;
            else if (strcmp(optarg, "on") == 0)
                c->lo.io.direct = SI_DIRECT_ON;
            else if (strcmp(optarg, "off") == 0)
                c->lo.io.direct = SI_DIRECT_OFF;
            else
                goto bad;
            break;
        case O_QD:
            if (!parse_int(optarg, 1, 256, &v))
                goto bad;
            c->lo.io.queue_depth = (unsigned)v;
            break;
        case O_CHUNK:
            if (si_parse_size(optarg, &sz) != SI_OK || sz < 4096 || sz > (1u << 30))
                goto bad;
            c->lo.chunk_bytes = sz;
            break;
        default: usage(stderr); return -1;
        }
        continue;
    bad:
        if (li >= 0)
            fprintf(stderr, "stream-infer: error: invalid value '%s' for --%s (see --help)\n", optarg, opts[li].name);
        else
            fprintf(stderr, "stream-infer: error: invalid value '%s' for -%c (see --help)\n", optarg, o);
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
    return 0;
}

typedef struct out_ctx {
    bool print_ids;
    bool first;
    si_detok *detok;
} out_ctx;

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

static bool on_token(void *p, int32_t id)
{
    out_ctx *o = p;
    if (o->print_ids) {
        printf(o->first ? "%d" : " %d", id);
        o->first = false;
    } else if (o->detok) {
        const char *s;
        size_t n;
        if (si_detok_push(o->detok, id, &s, &n, NULL) == SI_OK)
            fwrite(s, 1, n, stdout);
    }
    fflush(stdout);
    return !interrupted;
}

static uint64_t peak_rss_bytes(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_maxrss * 1024;
}

typedef struct report {
    si_llama_stats st;
    si_gen_result gr;
    const si_plan *plan;
    uint32_t n_prompt;
    const char *backend, *io_note;
    bool direct;
    uint64_t peak_rss;
} report;

static void print_report(FILE *f, const report *r)
{
    const si_sched_stats *s = &r->st.sched;
    char a[32], b[32], c[32], d[32];
    double pass_s = r->st.pass_s > 0 ? r->st.pass_s : 1e-9;
    uint64_t passes = s->passes ? s->passes : 1;
    fprintf(f, "\n--- stream-infer report ---\n");
    fprintf(f, "time to first token : %.3f s\n", r->gr.ttft_s);
    fprintf(f, "prompt              : %u tokens in %.3f s (%.1f ms/token)\n", r->n_prompt, r->gr.prompt_s,
            r->n_prompt ? 1e3 * r->gr.prompt_s / r->n_prompt : 0.0);
    uint32_t n_eval_gen = r->gr.n_generated > 0 ? r->gr.n_generated - (r->gr.stopped_at_eog ? 0 : 0) : 0;
    fprintf(f, "generation          : %u tokens in %.3f s (%.1f ms/token)\n", r->gr.n_generated, r->gr.gen_s,
            n_eval_gen ? 1e3 * r->gr.gen_s / n_eval_gen : 0.0);
    fprintf(f, "passes              : %" PRIu64 " (%.2f tokens per pass)\n", s->passes,
            (double)r->st.tokens_evaluated / passes);
    fprintf(f, "bytes per pass      : %s; read %s in all (%s of embedding rows, %s read ahead unused)\n",
            si_format_size(s->bytes_per_pass, a, sizeof a), si_format_size(r->st.io_bytes_read, b, sizeof b),
            si_format_size(r->st.embd_bytes_read, c, sizeof c), si_format_size(s->bytes_discarded, d, sizeof d));
    fprintf(f, "read throughput     : %.1f MB/s over %.3f s of passes\n", (double)r->st.io_bytes_read / 1e6 / pass_s,
            r->st.pass_s);
    fprintf(f, "I/O wait / compute  : %.3f s / %.3f s (%.0f%% waiting)\n", s->io_wait_s, r->st.compute_s,
            100.0 * s->io_wait_s / pass_s);
    fprintf(f, "weight buffer       : peak %s of %s; KV cache %s (ctx %u); batch %u\n",
            si_format_size(s->ring_peak_bytes, a, sizeof a), si_format_size(s->ring_bytes, b, sizeof b),
            si_format_size(r->plan->kv_bytes, c, sizeof c), r->plan->n_ctx, r->plan->n_batch);
    fprintf(f, "memory budget       : %s (%s)\n", si_format_size(r->plan->budget, a, sizeof a),
            r->plan->budget_source);
    fprintf(f, "I/O                 : %s, %s%s%s\n", r->backend, r->direct ? "O_DIRECT" : "buffered",
            r->io_note && *r->io_note ? "; " : "", r->io_note ? r->io_note : "");
    fprintf(f, "peak RSS            : %s\n", si_format_size(r->peak_rss, a, sizeof a));
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
            ", \"embd_bytes_read\": %" PRIu64 ", \"pinned_bytes_read\": %" PRIu64 ", \"bytes_discarded\": %" PRIu64 ", \"read_mb_s\": %.3f"
            ", \"prompt_tokens\": %u, \"tokens_generated\": %u, \"tokens_evaluated\": %" PRIu64
            ", \"tokens_per_pass\": %.4f, \"ttft_s\": %.6f, \"prompt_s\": %.6f, \"gen_s\": %.6f"
            ", \"pass_s\": %.6f, \"io_wait_s\": %.6f, \"compute_s\": %.6f, \"peak_rss_bytes\": %" PRIu64
            ", \"weight_buffer_peak_bytes\": %" PRIu64 ", \"weight_buffer_bytes\": %" PRIu64
            ", \"kv_cache_bytes\": %" PRIu64 ", \"n_ctx\": %u, \"n_batch\": %u, \"mem_budget_bytes\": %" PRIu64
            ", \"io_backend\": \"%s\", \"direct_io\": %s}\n",
            s->passes, s->bytes_per_pass, r->st.io_bytes_read, r->st.embd_bytes_read, r->st.pinned_bytes_read,
            s->bytes_discarded,
            (double)r->st.io_bytes_read / 1e6 / pass_s, r->n_prompt, r->gr.n_generated, r->st.tokens_evaluated,
            s->passes ? (double)r->st.tokens_evaluated / s->passes : 0.0, r->gr.ttft_s, r->gr.prompt_s,
            r->gr.gen_s, r->st.pass_s, s->io_wait_s, r->st.compute_s, r->peak_rss, s->ring_peak_bytes,
            s->ring_bytes, r->plan->kv_bytes, r->plan->n_ctx, r->plan->n_batch, r->plan->budget, r->backend,
            r->direct ? "true" : "false");
    return fclose(f);
}

int main(int argc, char **argv)
{
    double t_start = si_now_s();
    cli c = {0};
    if (parse_args(argc, argv, &c) != 0)
        return 2;
    int32_t *prompt = NULL, *force = NULL;
    uint32_t n_prompt = 0, n_force = 0;
    if (c.prompt_ids && parse_ids(c.prompt_ids, &prompt, &n_prompt, "--prompt-ids") != 0)
        return 2;
    if (c.force_ids && parse_ids(c.force_ids, &force, &n_force, "--force-ids") != 0)
        return 2;

    si_error err = {0};
    si_llama *m = NULL;
    si_tokenizer *tok = NULL;
    si_sampler *samp = NULL;
    FILE *dump = NULL;
    out_ctx oc = {.print_ids = c.print_ids, .first = true};
    int rc = si_kernels_select(c.kernels ? c.kernels : "auto", &err);
    if (rc == SI_OK)
        rc = si_llama_open(&m, c.model, &c.lo, &err);
    if (rc == SI_OK) {
        /* A model without a usable vocabulary still runs on ids. */
        si_error terr = {0};
        if (si_tokenizer_load(&tok, si_llama_gguf(m), &terr) != SI_OK) {
            tok = NULL;
            if (c.prompt)
                rc = si_errorf(&err, terr.code, "cannot tokenize the prompt: %s", terr.msg);
            else if (!c.print_ids && !c.quiet)
                fprintf(stderr, "stream-infer: note: %s; printing token ids\n", terr.msg);
        }
    }
    if (rc == SI_OK && c.prompt) {
        size_t n = 0;
        bool bos = !c.no_bos && si_tokenizer_add_bos_default(tok);
        rc = si_tokenize(tok, c.prompt, strlen(c.prompt), bos, c.special, &prompt, &n, &err);
        n_prompt = (uint32_t)n;
    }
    if (rc == SI_OK && !c.prompt && !c.prompt_ids)
        rc = si_errorf(&err, SI_EINVAL, "no prompt: give -p TEXT or --prompt-ids \"ID ...\"");
    if (rc == SI_OK && c.dump_logits && !(dump = fopen(c.dump_logits, "wb")))
        rc = si_errorf(&err, SI_EIO, "%s: cannot create: %s", c.dump_logits, strerror(errno));
    int32_t stop[16];
    uint32_t n_stop = 0;
    if (rc == SI_OK && tok) {
        for (uint32_t id = 0; id < si_tokenizer_n_vocab(tok) && n_stop < 16; id++)
            if (si_tokenizer_is_eog(tok, (int32_t)id))
                stop[n_stop++] = (int32_t)id;
        if (!c.print_ids && !(oc.detok = si_detok_new(tok, SI_DETOK_STRIP_SPACE)))
            rc = si_errorf(&err, SI_ENOMEM, "out of memory");
    }
    if (rc == SI_OK && !(samp = si_sampler_new(&c.samp, si_llama_hparams_of(m)->n_vocab)))
        rc = si_errorf(&err, SI_ENOMEM, "out of memory for the sampler");
    report r = {0};
    if (rc == SI_OK) {
        signal(SIGINT, on_sigint);
        if (!c.print_ids && tok) {
            /* Echo the prompt as the model sees it. */
            for (uint32_t i = 0; i < n_prompt; i++)
                on_token(&oc, prompt[i]);
            fflush(stdout);
        }
        si_gen_opts go = {.prompt = prompt, .n_prompt = n_prompt, .n_predict = (uint32_t)c.n_predict,
                          .force = force, .n_force = n_force, .sampler = samp, .dump_logits = dump,
                          .stop_ids = stop, .n_stop = n_stop, .on_token = on_token, .ctx = &oc,
                          .t_start = t_start};
        if (c.force_ids && n_force == 0)
            go.force = NULL;
        rc = si_generate(m, &go, &r.gr, &err);
        int rc2 = si_llama_finish(m, rc == SI_OK ? &err : NULL);
        if (rc == SI_OK)
            rc = rc2;
        if (oc.detok) {
            const char *s;
            size_t n;
            si_detok_flush(oc.detok, &s, &n);
            fwrite(s, 1, n, stdout);
        }
        printf("\n");
        fflush(stdout);
        si_llama_get_stats(m, &r.st);
        r.plan = si_llama_plan_of(m);
        r.n_prompt = n_prompt;
        r.backend = si_io_backend(si_llama_io(m));
        r.direct = si_io_direct_active(si_llama_io(m));
        r.io_note = si_io_note(si_llama_io(m));
        r.peak_rss = peak_rss_bytes();
        if (!c.quiet)
            print_report(stderr, &r);
        if (c.report_json && write_report_json(c.report_json, &r) != 0 && rc == SI_OK)
            rc = si_errorf(&err, SI_EIO, "%s: cannot write the report: %s", c.report_json, strerror(errno));
    }
    if (dump && fclose(dump) != 0 && rc == SI_OK)
        rc = si_errorf(&err, SI_EIO, "%s: writing logits failed: %s", c.dump_logits, strerror(errno));
    if (rc != SI_OK)
        fprintf(stderr, "stream-infer: error: %s\n", err.msg);
    si_detok_free(oc.detok);
    si_sampler_free(samp);
    si_tokenizer_free(tok);
    si_llama_close(m);
    free(prompt);
    free(force);
    return rc == SI_OK ? 0 : 1;
}
