/* GET /metrics: Prometheus text exposition (version 0.0.4) of the engine's and the
 * server's counters. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_internal.h"
#include "streaminfer/clock.h"

typedef struct buf {
    char *s;
    size_t len, cap;
    bool oom;
} buf;

__attribute__((format(printf, 2, 3))) static void out(buf *b, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !b->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = 2 * b->cap + (size_t)n + 1;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static void metric(buf *b, const char *name, const char *type, const char *help)
{
    out(b, "# HELP streaminfer_%s %s\n# TYPE streaminfer_%s %s\n", name, help, name, type);
}

/* "streaminfer_NAME{member="i",path="PATH"} " with the path escaped as a label value
 * must be (backslash, double quote and newline). */
static void file_sample(buf *b, const char *name, uint32_t member, const char *path)
{
    out(b, "streaminfer_%s{member=\"%u\",path=\"", name, member);
    for (const char *c = path ? path : ""; *c; c++)
        out(b, *c == '\\' ? "\\\\" : *c == '"' ? "\\\"" : *c == '\n' ? "\\n" : "%c", *c);
    out(b, "\"} ");
}

enum MHD_Result srv_handle_metrics(srv_req *r)
{
    si_server *s = r->s;
    buf b = {.cap = 4096};
    if (!(b.s = malloc(b.cap)))
        return MHD_NO;
    b.s[0] = 0;

    si_engine_stats es = {0};
    si_llama_stats ls = {0};
    si_sched_file_stats files[SI_SCHED_MAX_FILES];
    uint32_t n_files = 0;
    pthread_mutex_lock(&s->mu);
    int state = s->state;
    bool have = s->engine_alive;
    if (have) {
        si_engine_get_stats(s->m.engine, &es);
        si_engine_get_model_stats(s->m.engine, &ls, files, SI_SCHED_MAX_FILES, &n_files);
    }
    pthread_mutex_unlock(&s->mu);

    metric(&b, "ready", "gauge", "1 when the model is loaded and requests are served");
    out(&b, "streaminfer_ready %d\n", state == SRV_READY);
    metric(&b, "uptime_seconds", "gauge", "seconds since the server started");
    out(&b, "streaminfer_uptime_seconds %.3f\n", si_now_s() - s->started_at);
    metric(&b, "passes_total", "counter", "model steps run (each streams every weight once)");
    out(&b, "streaminfer_passes_total %llu\n", (unsigned long long)es.passes);
    metric(&b, "tokens_evaluated_total", "counter", "tokens through the model, prompts included");
    out(&b, "streaminfer_tokens_evaluated_total %llu\n", (unsigned long long)es.tokens_evaluated);
    metric(&b, "tokens_generated_total", "counter", "tokens produced for output");
    out(&b, "streaminfer_tokens_generated_total %llu\n", (unsigned long long)es.tokens_generated);
    metric(&b, "tokens_cached_total", "counter", "prompt tokens shared from the prompt cache");
    out(&b, "streaminfer_tokens_cached_total %llu\n", (unsigned long long)es.tokens_cached);
    metric(&b, "generated_per_pass", "gauge", "tokens produced for output per pass, since the start");
    out(&b, "streaminfer_generated_per_pass %.4f\n", es.passes ? (double)es.tokens_generated / (double)es.passes : 0.0);
    metric(&b, "tokens_per_pass", "gauge", "tokens evaluated per pass, since the start");
    out(&b, "streaminfer_tokens_per_pass %.4f\n", es.passes ? (double)es.tokens_evaluated / (double)es.passes : 0.0);
    metric(&b, "bytes_read_total", "counter", "bytes read from the model file");
    out(&b, "streaminfer_bytes_read_total %llu\n", (unsigned long long)ls.io_bytes_read);
    metric(&b, "bytes_per_pass", "gauge", "bytes one pass streams");
    out(&b, "streaminfer_bytes_per_pass %llu\n", (unsigned long long)ls.sched.bytes_per_pass);
    metric(&b, "pass_seconds_total", "counter", "time spent in passes");
    out(&b, "streaminfer_pass_seconds_total %.6f\n", ls.pass_s);
    metric(&b, "io_wait_seconds_total", "counter", "time passes waited for reads");
    out(&b, "streaminfer_io_wait_seconds_total %.6f\n", ls.sched.io_wait_s);
    metric(&b, "read_throughput_bytes_per_second", "gauge", "bytes read per second of pass time, since the start");
    out(&b, "streaminfer_read_throughput_bytes_per_second %.1f\n",
        ls.pass_s > 0 ? (double)ls.io_bytes_read / ls.pass_s : 0.0);
    /* Per file the weights stream from: a striped pack's members, each on its device. */
    metric(&b, "file_bytes_read_total", "counter", "bytes read from each model file (a striped pack's members)");
    for (uint32_t i = 0; i < n_files; i++) {
        file_sample(&b, "file_bytes_read_total", i, files[i].path);
        out(&b, "%llu\n", (unsigned long long)files[i].io_bytes_read);
    }
    metric(&b, "file_busy_seconds_total", "counter", "time each model file had reads in flight");
    for (uint32_t i = 0; i < n_files; i++) {
        file_sample(&b, "file_busy_seconds_total", i, files[i].path);
        out(&b, "%.6f\n", files[i].busy_s);
    }
    metric(&b, "active_sequences", "gauge", "sequences admitted and not finished");
    out(&b, "streaminfer_active_sequences %u\n", es.active);
    metric(&b, "queued_requests", "gauge", "requests waiting for admission");
    out(&b, "streaminfer_queued_requests %u\n", es.queued);
    metric(&b, "parallel_sequences", "gauge", "most sequences in flight (--parallel)");
    out(&b, "streaminfer_parallel_sequences %u\n", es.n_parallel);
    metric(&b, "kv_cells", "gauge", "cells of the KV pool");
    out(&b, "streaminfer_kv_cells %u\n", es.n_cells);
    metric(&b, "kv_cells_free", "gauge", "free cells of the KV pool");
    out(&b, "streaminfer_kv_cells_free %u\n", es.free_cells);
    metric(&b, "requests_total", "counter", "generation requests by outcome (rejected: queue full or can never fit)");
    for (int f = SI_FINISH_STOP; f < SI_FINISH_N_; f++)
        out(&b, "streaminfer_requests_total{outcome=\"%s\"} %llu\n", si_finish_name((si_finish)f),
            (unsigned long long)es.requests[f]);
    out(&b, "streaminfer_requests_total{outcome=\"rejected\"} %llu\n", (unsigned long long)es.rejected);
    metric(&b, "http_responses_total", "counter", "HTTP responses by status code");
    for (int i = 0; i <= SRV_N_CODES; i++) {
        unsigned long long v = __atomic_load_n(&s->responses[i], __ATOMIC_RELAXED);
        if (i < SRV_N_CODES)
            out(&b, "streaminfer_http_responses_total{code=\"%u\"} %llu\n", srv_codes[i], v);
        else
            out(&b, "streaminfer_http_responses_total{code=\"other\"} %llu\n", v);
    }
    metric(&b, "http_connections", "gauge", "open HTTP connections");
    out(&b, "streaminfer_http_connections %llu\n",
        (unsigned long long)__atomic_load_n(&s->connections_open, __ATOMIC_RELAXED));
    metric(&b, "http_connections_total", "counter", "HTTP connections accepted");
    out(&b, "streaminfer_http_connections_total %llu\n",
        (unsigned long long)__atomic_load_n(&s->connections_total, __ATOMIC_RELAXED));
    if (b.oom) {
        free(b.s);
        return MHD_NO;
    }
    return srv_respond_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.s, b.len);
}
