/* stream-server: an OpenAI-compatible HTTP server on the batch engine. Opens the port
 * first (/health says "loading"), then loads the model, runs the engine on its own
 * thread and serves until SIGINT or SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "streaminfer/chat.h"
#include "streaminfer/engine.h"
#include "streaminfer/kernels.h"
#include "streaminfer/llama.h"
#include "streaminfer/plan.h"
#include "streaminfer/serve.h"
#include "streaminfer/tokenizer.h"

#include "model_opts.h"
#include "plan_print.h"
#include "si_config.h"

typedef struct cli {
    const char *model, *port_file, *kernels;
    si_server_opts so;
    si_llama_opts lo;
    si_engine_opts eo;
    si_draft_opts draft; /* requests that say nothing; --draft-max, --compute-ratio */
    bool no_prompt_cache, quiet;
} cli;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stream-server -m MODEL [options]\n"
            "\n"
            "Serves a Llama-family GGUF (or pack) over HTTP with an OpenAI-compatible API: every\n"
            "active request gets its next token from the same weight pass.\n"
            "\n"
            "  POST /v1/completions        prompt (text or token ids) -> text; \"stream\": true for SSE\n"
            "  POST /v1/chat/completions   messages in the model's chat format -> answer\n"
            "  GET  /v1/models             the model (its file name)\n"
            "  GET  /health                503 {\"status\":\"loading\"}, then 200 {\"status\":\"ok\"} (no key)\n"
            "  GET  /metrics               Prometheus text: passes, tokens, bytes read, sequences\n"
            "\n"
            "server:\n"
            "  -m, --model FILE        GGUF model or pack (required)\n"
            "      --host ADDR         address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all)\n"
            "      --port N            TCP port (default 8080; 0: an ephemeral port, printed on stderr)\n"
            "      --port-file FILE    write the bound port to FILE once listening\n"
            "      --api-key KEY       require 'Authorization: Bearer KEY' (default: $STREAMINFER_API_KEY;\n"
            "                          /health never needs it)\n"
            "      --parallel N        sequences sharing each pass (default 4)\n"
            "      --max-queued N      requests waiting for a sequence; beyond, 429 (default 64)\n"
            "      --max-body SIZE     largest request body; beyond, 413 (default 8M)\n"
            "      --timeout SECONDS   end a generation request this long after it arrived (default 0: never)\n"
            "      --sse-keepalive S   ': keep-alive' comment on a stream after S idle seconds (default 15)\n"
            "      --idle-timeout S    close a connection idle for S seconds (default 60)\n"
            "      --max-connections N open connections at once (default 256)\n"
            "      --no-prompt-cache   free a sequence's KV cells as soon as it ends\n"
            "guessing ahead (for requests whose body has no \"draft\"):\n"
            "%s"
            "  -q, --quiet             no messages but errors\n"
            "memory and context:\n"
            "  -c, --ctx-size N        KV cells shared by all sequences (default: the model's context,\n"
            "                          capped by the budget)\n"
            "%s"
            "  -b, --batch N           tokens per pass (default: planned from the budget)\n"
            "I/O and compute:\n"
            "%s"
            "  -h, --help              this text\n"
            "      --version           print the version and exit\n"
            "\n"
            "Sampling defaults when a request omits them: temperature 0.8, top_k 40, top_p 0.95,\n"
            "min_p 0.05; max_tokens 16 for completions, to the end of the turn for chat.\n",
            si_draft_opts_help, si_model_opts_help_memory, si_model_opts_help_io);
}

static bool parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= 0 && v <= 1e7))
        return false;
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, cli *c)
{
    si_model_opts_init(&c->lo);
    enum { O_HOST = 256, O_PORT, O_PORT_FILE, O_KEY, O_PARALLEL, O_QUEUED, O_BODY, O_TIMEOUT, O_KA, O_IDLE, O_MAXCONN,
           O_NOCACHE };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},          {"ctx-size", required_argument, 0, 'c'},
        {"batch", required_argument, 0, 'b'},          {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'},
        {"quiet", no_argument, 0, 'q'},                {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},        {"port-file", required_argument, 0, O_PORT_FILE},
        {"api-key", required_argument, 0, O_KEY},      {"parallel", required_argument, 0, O_PARALLEL},
        {"max-queued", required_argument, 0, O_QUEUED}, {"max-body", required_argument, 0, O_BODY},
        {"timeout", required_argument, 0, O_TIMEOUT},  {"sse-keepalive", required_argument, 0, O_KA},
        {"idle-timeout", required_argument, 0, O_IDLE}, {"max-connections", required_argument, 0, O_MAXCONN},
        {"no-prompt-cache", no_argument, 0, O_NOCACHE}, SI_DRAFT_LONG_OPTIONS,
        SI_MODEL_LONG_OPTIONS, {0, 0, 0, 0}};
    c->so.port = 8080;
    c->eo.n_parallel = 4;
    c->eo.max_queued = 64;
    si_draft_opts_init(&c->draft);
    int o, li;
    long v;
    uint64_t sz;
    double x;
    while ((li = -1, o = getopt_long(argc, argv, "m:c:b:hq" SI_MODEL_SHORT_OPTIONS, opts, &li)) != -1) {
        switch (o) {
        case 'm': c->model = optarg; break;
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
        case 'V': printf("stream-server (streaminfer) %s\n", SI_VERSION); exit(0);
        case 'q': c->quiet = true; break;
        case O_HOST: c->so.host = optarg; break;
        case O_PORT:
            if (!si_parse_long(optarg, 0, 65535, &v))
                goto bad;
            c->so.port = (uint16_t)v;
            break;
        case O_PORT_FILE: c->port_file = optarg; break;
        case O_KEY: c->so.api_key = optarg; break;
        case O_PARALLEL:
            if (!si_parse_long(optarg, 1, 256, &v))
                goto bad;
            c->eo.n_parallel = (uint32_t)v;
            break;
        case O_QUEUED:
            if (!si_parse_long(optarg, 0, 1 << 20, &v))
                goto bad;
            c->eo.max_queued = (uint32_t)v;
            break;
        case O_BODY:
            if (si_parse_size(optarg, &sz) != SI_OK || sz == 0 || sz > (1ull << 32))
                goto bad;
            c->so.max_body = sz;
            break;
        case O_TIMEOUT:
            if (!parse_seconds(optarg, &x))
                goto bad;
            c->so.timeout_s = x;
            break;
        case O_KA:
            if (!parse_seconds(optarg, &x) || x < 0.05)
                goto bad;
            c->so.keepalive_s = x;
            break;
        case O_IDLE:
            if (!si_parse_long(optarg, 1, 86400, &v))
                goto bad;
            c->so.idle_timeout_s = (unsigned)v;
            break;
        case O_MAXCONN:
            if (!si_parse_long(optarg, 1, 65536, &v))
                goto bad;
            c->so.max_connections = (unsigned)v;
            break;
        case O_NOCACHE: c->eo.no_prompt_cache = true; break;
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
        si_opt_invalid("stream-server", opts, li, o, optarg);
        return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "stream-server: error: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (!c->model) {
        fprintf(stderr, "stream-server: error: no model given: use -m MODEL.gguf (see --help)\n");
        return -1;
    }
    if (!c->so.api_key) {
        const char *k = getenv("STREAMINFER_API_KEY");
        if (k && *k)
            c->so.api_key = k;
    }
    c->so.draft = c->draft.mode;
    c->eo.draft_max = c->draft.max;
    c->eo.compute_ratio = c->draft.compute_ratio;
    return 0;
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    bool ok = fprintf(f, "%u\n", port) > 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* The model thread: the model is opened, stepped and closed on one thread (io_uring
 * wants its file used from the thread that opened it). */
typedef struct model_thread {
    cli *c;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool loaded, release; /* loaded: the load finished (rc says how); release: free now */
    int rc;
    si_error err;
    si_llama *m;
    si_tokenizer *tok;
    si_engine *eng;
    si_chat chat;
    bool have_chat;
    char chat_error[600];
    int32_t eog[17];
    uint32_t n_eog;
} model_thread;

static int load(model_thread *t)
{
    cli *c = t->c;
    c->lo.n_seq_max = c->eo.n_parallel;
    c->lo.n_draft_max = c->so.draft != SI_DRAFT_NONE ? (c->eo.draft_max ? c->eo.draft_max : 8) : 0;
    SI_TRY(si_llama_open(&t->m, c->model, &c->lo, &t->err));
    /* A model without a usable vocabulary still serves token-id prompts. */
    si_error terr = {0};
    if (si_tokenizer_load(&t->tok, si_llama_gguf(t->m), &terr) != SI_OK) {
        t->tok = NULL;
        snprintf(t->chat_error, sizeof t->chat_error, "%s", terr.msg);
        if (!c->quiet)
            fprintf(stderr, "stream-server: note: %s; prompts must be token ids\n", terr.msg);
    } else {
        si_error cerr = {0};
        t->have_chat = si_chat_detect(&t->chat, si_llama_gguf(t->m), t->tok, &cerr) == SI_OK;
        if (!t->have_chat)
            snprintf(t->chat_error, sizeof t->chat_error, "%s", cerr.msg);
        uint32_t nv = si_tokenizer_n_vocab(t->tok);
        for (uint32_t id = 0; id < nv && t->n_eog < 16; id++)
            if (si_tokenizer_is_eog(t->tok, (int32_t)id))
                t->eog[t->n_eog++] = (int32_t)id;
        /* the chat format's end of message ends a turn even where not marked so */
        int32_t end = t->have_chat ? si_tokenizer_find(t->tok, t->chat.end_of_msg) : -1;
        bool known = false;
        for (uint32_t i = 0; i < t->n_eog; i++)
            known |= t->eog[i] == end;
        if (end >= 0 && !known)
            t->eog[t->n_eog++] = end;
    }
    c->eo.eog_ids = t->eog;
    c->eo.n_eog = t->n_eog;
    return si_engine_create(&t->eng, t->m, &c->eo, &t->err);
}

static void *model_main(void *p)
{
    model_thread *t = p;
    int rc = load(t);
    pthread_mutex_lock(&t->mu);
    t->rc = rc;
    t->loaded = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (rc == SI_OK)
        si_engine_run(t->eng); /* until si_engine_stop */
    pthread_mutex_lock(&t->mu);
    while (!t->release)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    si_engine_free(t->eng); /* what is still queued ends, cancelled */
    si_llama_close(t->m);
    t->eng = NULL;
    t->m = NULL;
    return NULL;
}

/* Readiness for systemd (Type=notify, data/stream-server.service): MSG ("READY=1") as
 * one datagram to $NOTIFY_SOCKET, sd_notify(3)'s protocol without libsystemd. Nothing
 * happens without the variable. */
static void notify_systemd(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = path ? strlen(path) : 0;
    if (len < 2 || (path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path)
        return;
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@') /* an abstract socket */
        sa.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        fprintf(stderr, "stream-server: note: NOTIFY_SOCKET: %s\n", strerror(errno));
    close(fd);
}

int main(int argc, char **argv)
{
    cli c = {0};
    if (parse_args(argc, argv, &c) != 0)
        return 2;
    const char *base = strrchr(c.model, '/');
    c.so.model_name = base ? base + 1 : c.model;
    if (c.lo.plan_only) { /* --plan: the plan for --parallel sequences, then exit */
        si_error perr = {0};
        si_llama *pm = NULL;
        c.lo.n_seq_max = c.eo.n_parallel;
        c.lo.n_draft_max = c.so.draft != SI_DRAFT_NONE ? (c.eo.draft_max ? c.eo.draft_max : 8) : 0;
        int prc = si_kernels_select(c.kernels ? c.kernels : "auto", &perr);
        if (prc == SI_OK)
            prc = si_llama_open(&pm, c.model, &c.lo, &perr);
        if (prc == SI_OK)
            si_print_plan(stdout, c.model, si_llama_plan_of(pm), 0);
        else
            fprintf(stderr, "stream-server: error: %s\n", perr.msg);
        si_llama_close(pm);
        return prc == SI_OK ? 0 : 1;
    }

    /* SIGINT and SIGTERM are taken by sigwait below: blocked in every thread. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    si_error err = {0};
    si_server *srv = NULL;
    model_thread t = {.c = &c};
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    pthread_t th;
    bool started = false, stop = false;
    int rc = si_kernels_select(c.kernels ? c.kernels : "auto", &err);
    if (rc == SI_OK)
        rc = si_server_start(&srv, &c.so, &err);
    if (rc == SI_OK) {
        const char *h = c.so.host ? c.so.host : "127.0.0.1";
        bool v6 = strchr(h, ':') != NULL;
        fprintf(stderr, "stream-server: listening on http://%s%s%s:%u\n", v6 ? "[" : "", h, v6 ? "]" : "",
                si_server_port(srv));
        if (c.port_file && write_port_file(c.port_file, si_server_port(srv)) != 0)
            rc = si_errorf(&err, SI_EIO, "%s: cannot write the port: %s", c.port_file, strerror(errno));
    }
    if (rc == SI_OK) {
        if (!c.quiet)
            fprintf(stderr, "stream-server: loading %s\n", c.model);
        if (pthread_create(&th, NULL, model_main, &t) != 0)
            rc = si_errorf(&err, SI_ENOMEM, "cannot start the model thread");
        else
            started = true;
    }
    int sig = 0;
    if (rc == SI_OK) {
        /* Wait for the load; a signal meanwhile stops the server once it is done. */
        for (;;) {
            pthread_mutex_lock(&t.mu);
            bool loaded = t.loaded;
            pthread_mutex_unlock(&t.mu);
            if (loaded)
                break;
            struct timespec ts = {0, 100 * 1000 * 1000};
            int s = sigtimedwait(&sigs, NULL, &ts);
            if (s > 0)
                stop = true, sig = s;
        }
        if ((rc = t.rc) != SI_OK)
            err = t.err;
    }
    if (rc == SI_OK) {
        si_engine_stats st;
        si_engine_get_stats(t.eng, &st);
        si_server_model sm = {.engine = t.eng, .model = t.m, .tok = t.tok, .chat = t.have_chat ? &t.chat : NULL,
                              .chat_error = t.have_chat ? NULL : t.chat_error, .n_ctx = si_llama_plan_of(t.m)->n_ctx,
                              .n_vocab = si_llama_hparams_of(t.m)->n_vocab};
        si_server_attach(srv, &sm);
        notify_systemd("READY=1"); /* the model is open and the engine runs */
        if (!c.quiet)
            fprintf(stderr, "stream-server: ready: %s, context %u, %u parallel sequences, %s%s\n", c.so.model_name,
                    sm.n_ctx, st.n_parallel, t.have_chat ? "chat format " : "no chat",
                    t.have_chat ? t.chat.name : "");
        while (!stop && sigwait(&sigs, &sig) != 0)
            ;
        if (!c.quiet)
            fprintf(stderr, "stream-server: %s: shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        notify_systemd("STOPPING=1");
    }
    /* Shutdown: refuse new work, stop the engine (cancelling what runs), free it and
     * the model on their thread, let every connection finish, free the rest. */
    if (srv)
        si_server_quiesce(srv);
    if (started) {
        if (t.eng)
            si_engine_stop(t.eng);
        if (srv)
            si_server_detach(srv);
        pthread_mutex_lock(&t.mu);
        t.release = true;
        pthread_cond_broadcast(&t.cv);
        pthread_mutex_unlock(&t.mu);
        pthread_join(th, NULL);
    }
    si_server_free(srv);
    si_tokenizer_free(t.tok);
    pthread_cond_destroy(&t.cv);
    pthread_mutex_destroy(&t.mu);
    if (rc != SI_OK) {
        fprintf(stderr, "stream-server: error: %s\n", err.msg);
        return 1;
    }
    return 0;
}
