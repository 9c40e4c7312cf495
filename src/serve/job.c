/* One generation request on the engine: submission, the engine's callbacks (tokens
 * to text, stop strings), waiting with hang-up detection, cancellation.
 *
 * Text leaves the job in pieces, at most one per token: the detokenizer holds back
 * the bytes of an incomplete UTF-8 character, and text that might be the start of a
 * stop string is held back until it can no longer match. A job is referenced by the
 * HTTP side and, from submission to on_done, by the engine. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve_internal.h"
#include "streaminfer/clock.h"

srv_job *srv_job_new(si_server *s, srv_params *p, const si_tokenizer *tok)
{
    srv_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    j->refs = 1;
    j->s = s;
    j->stop = p->stop, j->stop_len = p->stop_len, j->n_stop = p->n_stop;
    p->stop = NULL, p->stop_len = NULL, p->n_stop = 0;
    if (tok && !(j->detok = si_detok_new(tok, 0))) {
        srv_job_unref(j);
        return NULL;
    }
    return j;
}

void srv_job_unref(srv_job *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0)
        return;
    for (size_t i = 0; i < j->n_pieces; i++)
        free(j->pieces[i].text);
    free(j->pieces);
    free(j->ids);
    free(j->held);
    for (unsigned i = 0; i < j->n_stop; i++)
        free(j->stop[i]);
    free(j->stop);
    free(j->stop_len);
    si_detok_free(j->detok);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* ---- engine thread ---- */

static bool held_append(srv_job *j, const char *s, size_t n)
{
    if (j->held_len + n + 1 > j->held_cap) {
        size_t cap = j->held_cap ? j->held_cap : 64;
        while (cap < j->held_len + n + 1)
            cap *= 2;
        char *h = realloc(j->held, cap);
        if (!h)
            return false;
        j->held = h;
        j->held_cap = cap;
    }
    memcpy(j->held + j->held_len, s, n);
    j->held_len += n;
    return true;
}

/* How many leading bytes of held can be released now. Sets stop_hit (and cuts held
 * there) when a stop string is complete. final: no more text will come. */
static size_t releasable(srv_job *j, bool final)
{
    size_t first = SIZE_MAX;
    for (unsigned i = 0; i < j->n_stop; i++) {
        const char *hit = memmem(j->held, j->held_len, j->stop[i], j->stop_len[i]);
        if (hit && (size_t)(hit - j->held) < first)
            first = (size_t)(hit - j->held);
    }
    if (first != SIZE_MAX) {
        j->stop_hit = true;
        j->held_len = first;
        return first;
    }
    if (final)
        return j->held_len;
    /* keep the longest tail that is a proper prefix of a stop string */
    size_t keep = 0;
    for (unsigned i = 0; i < j->n_stop; i++) {
        size_t max = j->stop_len[i] - 1 < j->held_len ? j->stop_len[i] - 1 : j->held_len;
        for (size_t k = max; k > keep; k--)
            if (memcmp(j->held + j->held_len - k, j->stop[i], k) == 0) {
                keep = k;
                break;
            }
    }
    return j->held_len - keep;
}

/* Move n bytes from the front of held into a new piece (under mu). */
static bool release(srv_job *j, size_t n)
{
    if (n == 0)
        return true;
    char *t = malloc(n + 1);
    if (!t)
        return false;
    memcpy(t, j->held, n);
    t[n] = 0;
    memmove(j->held, j->held + n, j->held_len - n);
    j->held_len -= n;
    if (j->n_pieces == j->cap_pieces) {
        size_t cap = j->cap_pieces ? 2 * j->cap_pieces : 16;
        srv_piece *p = realloc(j->pieces, cap * sizeof *p);
        if (!p) {
            free(t);
            return false;
        }
        j->pieces = p;
        j->cap_pieces = cap;
    }
    j->pieces[j->n_pieces++] = (srv_piece){t, n};
    return true;
}

static bool on_token(void *ctx, int32_t id)
{
    srv_job *j = ctx;
    if (j->stop_hit || j->oom)
        return false;
    const char *s = NULL;
    size_t n = 0;
    if (j->detok && si_detok_push(j->detok, id, &s, &n, NULL) != SI_OK)
        n = 0;
    bool ok = held_append(j, s, n);
    pthread_mutex_lock(&j->mu);
    if (j->n_ids == j->cap_ids) {
        size_t cap = j->cap_ids ? 2 * j->cap_ids : 64;
        int32_t *v = realloc(j->ids, cap * sizeof *v);
        if (v)
            j->ids = v, j->cap_ids = cap;
        else
            ok = false;
    }
    if (ok)
        j->ids[j->n_ids++] = id;
    if (ok)
        ok = release(j, releasable(j, false));
    if (!ok)
        j->oom = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return ok && !j->stop_hit;
}

static void on_done(void *ctx, const si_request_result *r)
{
    srv_job *j = ctx;
    bool ok = true;
    if (j->detok) {
        const char *s;
        size_t n;
        si_detok_flush(j->detok, &s, &n);
        if (!j->stop_hit)
            ok = held_append(j, s, n);
    }
    pthread_mutex_lock(&j->mu);
    if (ok && !j->stop_hit)
        ok = release(j, releasable(j, true));
    if (!ok)
        j->oom = true;
    j->res = *r;
    j->done = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    srv_job_unref(j);
}

/* ---- HTTP side ---- */

unsigned srv_job_submit(srv_job *j, const int32_t *prompt, uint32_t n_prompt, uint32_t n_predict,
                        const srv_params *p, char *msg, size_t msg_size, const char **code)
{
    si_server *s = j->s;
    si_request rq = {.prompt = prompt, .n_prompt = n_prompt, .n_predict = n_predict, .sampler = p->samp,
                     .draft = p->draft >= 0 ? (si_draft_mode)p->draft : s->o.draft, .draft_max = p->draft_max,
                     .timeout_s = s->o.timeout_s, .on_token = on_token, .on_done = on_done, .ctx = j};
    si_error err = {0};
    unsigned status = 0;
    pthread_mutex_lock(&s->mu);
    if (s->state != SRV_READY || !s->engine_alive) {
        status = 503;
        *code = s->state == SRV_LOADING ? "model_loading" : "shutting_down";
        snprintf(msg, msg_size, s->state == SRV_LOADING ? "the model is still loading: try again shortly"
                                                        : "the server is shutting down");
    } else {
        pthread_mutex_lock(&j->mu);
        j->refs++; /* the engine's, released by on_done */
        pthread_mutex_unlock(&j->mu);
        int rc = si_engine_submit(s->m.engine, &rq, &j->id, &err);
        if (rc != SI_OK) {
            pthread_mutex_lock(&j->mu);
            j->refs--;
            pthread_mutex_unlock(&j->mu);
            if (rc == SI_EBUSY_QUEUE) {
                status = 429;
                *code = "queue_full";
                snprintf(msg, msg_size, "too many requests: %s (--max-queued); retry later",
                         err.msg[0] ? err.msg : "the queue is full");
            } else if (rc == SI_EINVAL) {
                status = 400;
                *code = "context_length_exceeded";
                snprintf(msg, msg_size, "%s", err.msg[0] ? err.msg : "the request can never run");
                if (!strstr(msg, "context") && !strstr(msg, "long"))
                    *code = "invalid_request";
            } else {
                status = 500;
                *code = "internal_error";
                snprintf(msg, msg_size, "%s", err.msg[0] ? err.msg : "the engine refused the request");
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return status;
}

void srv_job_cancel(srv_job *j)
{
    si_server *s = j->s;
    pthread_mutex_lock(&j->mu);
    bool done = j->done;
    pthread_mutex_unlock(&j->mu);
    if (done || !j->id)
        return;
    pthread_mutex_lock(&s->mu);
    if (s->engine_alive)
        si_engine_cancel(s->m.engine, j->id);
    pthread_mutex_unlock(&s->mu);
}

int srv_job_wait(srv_job *j, int fd, double deadline, bool want_pieces)
{
    for (;;) {
        pthread_mutex_lock(&j->mu);
        bool news = want_pieces && j->n_pieces > 0, done = j->done;
        if (!news && !done) {
            double now = si_now_s(), until = deadline < now + 0.2 ? deadline : now + 0.2;
            if (until > now) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                double wait = until - now;
                ts.tv_sec += (time_t)wait;
                ts.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
                if (ts.tv_nsec >= 1000000000L)
                    ts.tv_sec++, ts.tv_nsec -= 1000000000L;
                pthread_cond_timedwait(&j->cv, &j->mu, &ts);
            }
            news = want_pieces && j->n_pieces > 0, done = j->done;
        }
        pthread_mutex_unlock(&j->mu);
        if (news)
            return SRV_WAIT_NEWS;
        if (done)
            return SRV_WAIT_DONE;
        if (srv_fd_hung_up(fd))
            return SRV_WAIT_HANGUP;
        if (si_now_s() >= deadline)
            return SRV_WAIT_TICK;
    }
}

srv_piece *srv_job_take(srv_job *j, size_t *n, bool *done)
{
    pthread_mutex_lock(&j->mu);
    srv_piece *p = j->pieces;
    *n = j->n_pieces;
    *done = j->done;
    j->pieces = NULL;
    j->n_pieces = j->cap_pieces = 0;
    pthread_mutex_unlock(&j->mu);
    return p;
}
