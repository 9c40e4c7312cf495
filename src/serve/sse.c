/* Server-sent events: "data: {chunk}\n\n" per token as the engine produces it,
 * ": keep-alive" comments while a pass runs, a last chunk with the finish reason
 * (then the usage when asked), and "data: [DONE]". The content reader blocks (one
 * thread per connection) until there is something to send; a peer that hangs up
 * meanwhile cancels the request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_internal.h"
#include "streaminfer/clock.h"

typedef struct stream {
    srv_gen *g;
    int fd;
    char *out;
    size_t len, off, cap;
    bool opened, finished, failed;
    double next_keepalive;
} stream;

static bool put(stream *st, const char *s, size_t n)
{
    if (st->len + n > st->cap) {
        size_t cap = st->cap ? st->cap : 1024;
        while (cap < st->len + n)
            cap *= 2;
        char *o = realloc(st->out, cap);
        if (!o)
            return false;
        st->out = o;
        st->cap = cap;
    }
    memcpy(st->out + st->len, s, n);
    st->len += n;
    return true;
}

/* "data: JSON\n\n" (steals j). */
static bool put_event(stream *st, json_t *j)
{
    if (!j)
        return false;
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        return false;
    bool ok = put(st, "data: ", 6) && put(st, s, strlen(s)) && put(st, "\n\n", 2);
    free(s);
    return ok;
}

static json_t *chunk(stream *st, json_t *text, const char *finish, bool first)
{
    json_t *c = srv_gen_envelope(st->g, true, st->g->shape->chunk_choice(text, finish, first));
    if (c && st->g->include_usage)
        json_object_set_new(c, "usage", json_null());
    return c;
}

/* The end of the stream: the finish reason (or an error event), usage, [DONE]. */
static bool put_end(stream *st)
{
    srv_gen *g = st->g;
    char msg[512];
    const char *code = NULL;
    unsigned status = srv_gen_failure(g, msg, sizeof msg, &code);
    bool ok;
    if (status) {
        ok = put_event(st, srv_error_json(status, code, NULL, msg));
    } else {
        ok = put_event(st, chunk(st, NULL, si_finish_name(g->job->res.finish), false));
        if (ok && g->include_usage) {
            json_t *u = srv_gen_envelope(g, true, NULL);
            if (u)
                json_object_set_new(u, "usage", srv_gen_usage(&g->job->res));
            ok = put_event(st, u);
        }
    }
    return ok && put(st, "data: [DONE]\n\n", 14);
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream *st = cls;
    srv_gen *g = st->g;
    for (;;) {
        if (st->off < st->len) {
            size_t n = st->len - st->off < max ? st->len - st->off : max;
            memcpy(buf, st->out + st->off, n);
            st->off += n;
            return (ssize_t)n;
        }
        st->off = st->len = 0;
        if (st->finished)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!st->opened) {
            st->opened = true;
            if (g->shape->opening_chunk && !put_event(st, chunk(st, NULL, NULL, true)))
                goto fail;
            continue;
        }
        size_t n;
        bool done;
        srv_piece *p = srv_job_take(g->job, &n, &done);
        bool ok = true;
        for (size_t i = 0; i < n; i++) {
            if (ok)
                ok = put_event(st, chunk(st, srv_json_text(p[i].text, p[i].len), NULL, false));
            free(p[i].text);
        }
        free(p);
        if (!ok)
            goto fail;
        if (st->len)
            continue;
        if (done) {
            if (!put_end(st))
                goto fail;
            st->finished = true;
            continue;
        }
        int w = srv_job_wait(g->job, st->fd, st->next_keepalive, true);
        if (w == SRV_WAIT_HANGUP) {
            srv_job_cancel(g->job);
            st->failed = true;
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (w == SRV_WAIT_TICK) {
            if (!put(st, ": keep-alive\n\n", 14))
                goto fail;
            st->next_keepalive = si_now_s() + g->keepalive_s;
        }
    }
fail:
    srv_job_cancel(g->job);
    st->failed = true;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* MHD is done with the response: sent, or the connection failed. A request still
 * running has lost its client. */
static void reader_free(void *cls)
{
    stream *st = cls;
    srv_job_cancel(st->g->job);
    srv_gen_free(st->g);
    free(st->out);
    free(st);
}

enum MHD_Result srv_sse_start(srv_req *r, srv_gen *g)
{
    stream *st = calloc(1, sizeof *st);
    if (!st) {
        srv_job_cancel(g->job);
        srv_gen_free(g);
        return MHD_NO;
    }
    st->g = g;
    st->fd = srv_conn_fd(r->conn);
    st->next_keepalive = si_now_s() + g->keepalive_s;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, st, reader_free);
    if (!resp) {
        reader_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp); /* reader_free runs when MHD lets go of it */
    if (ret == MHD_YES)
        srv_count_status(r->s, 200);
    return ret;
}
