/* The common flow of /v1/completions and /v1/chat/completions: submit the prompt,
 * then either wait for the whole answer (one JSON object) or stream it (sse.c). A
 * client that hangs up while it waits cancels its request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve_internal.h"
#include "streaminfer/clock.h"

void srv_gen_free(srv_gen *g)
{
    if (!g)
        return;
    srv_job_unref(g->job);
    free(g->model);
    free(g);
}

json_t *srv_gen_envelope(const srv_gen *g, bool chunk, json_t *choice)
{
    json_t *choices = json_array();
    if (choice)
        json_array_append_new(choices, choice);
    return json_pack("{s:s,s:s,s:I,s:o,s:o}", "id", g->id, "object",
                     chunk ? g->shape->chunk_object : g->shape->object, "created", (json_int_t)g->created, "model",
                     srv_json_text(g->model, strlen(g->model)), "choices", choices);
}

json_t *srv_gen_usage(const si_request_result *res)
{
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)res->n_prompt, "completion_tokens",
                     (json_int_t)res->n_generated, "total_tokens", (json_int_t)res->n_prompt + res->n_generated);
}

unsigned srv_gen_failure(const srv_gen *g, char *msg, size_t msg_size, const char **code)
{
    const srv_job *j = g->job;
    if (j->oom) {
        *code = "internal_error";
        snprintf(msg, msg_size, "out of memory while decoding the answer");
        return 500;
    }
    switch (j->res.finish) {
    case SI_FINISH_STOP:
    case SI_FINISH_LENGTH: return 0;
    case SI_FINISH_TIMEOUT:
        *code = "timeout";
        snprintf(msg, msg_size, "the request did not finish within %g s (--timeout)", g->job->s->o.timeout_s);
        return 504;
    case SI_FINISH_CANCELLED:
        *code = srv_state(g->job->s, NULL) == SRV_STOPPING ? "shutting_down" : "cancelled";
        snprintf(msg, msg_size, "%s", srv_state(g->job->s, NULL) == SRV_STOPPING ? "the server is shutting down"
                                                                                 : "the request was cancelled");
        return 503;
    default:
        *code = "internal_error";
        snprintf(msg, msg_size, "generation failed: %s", j->res.error[0] ? j->res.error : "unknown error");
        return 500;
    }
}

static json_t *ids_json(srv_job *j)
{
    json_t *a = json_array();
    pthread_mutex_lock(&j->mu);
    for (size_t i = 0; a && i < j->n_ids; i++)
        json_array_append_new(a, json_integer(j->ids[i]));
    pthread_mutex_unlock(&j->mu);
    return a;
}

static enum MHD_Result respond_whole(srv_req *r, srv_gen *g)
{
    char msg[512];
    const char *code = NULL;
    unsigned status = srv_gen_failure(g, msg, sizeof msg, &code);
    if (status)
        return srv_respond_json(r, status, srv_error_json(status, code, NULL, msg));
    size_t n;
    bool done;
    srv_piece *p = srv_job_take(g->job, &n, &done);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += p[i].len;
    char *text = malloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (text)
            memcpy(text + o, p[i].text, p[i].len);
        o += p[i].len;
        free(p[i].text);
    }
    free(p);
    if (!text)
        return MHD_NO;
    json_t *choice = g->shape->choice(srv_json_text(text, len), si_finish_name(g->job->res.finish));
    free(text);
    if (choice && g->return_ids)
        json_object_set_new(choice, "token_ids", ids_json(g->job));
    json_t *body = srv_gen_envelope(g, false, choice);
    if (body)
        json_object_set_new(body, "usage", srv_gen_usage(&g->job->res));
    return srv_respond_json(r, 200, body);
}

enum MHD_Result srv_generate(srv_req *r, srv_params *p, const int32_t *prompt, uint32_t n_prompt,
                             uint32_t n_predict, const srv_shape *shape)
{
    si_server *s = r->s;
    si_server_model m = {0};
    srv_state(s, &m);
    if (!p->seed_set)
        p->samp.seed = srv_next_seed(s);
    srv_gen *g = calloc(1, sizeof *g);
    if (!g || !(g->job = srv_job_new(s, p, m.tok)) || !(g->model = strdup(p->model ? p->model : s->o.model_name))) {
        srv_gen_free(g);
        return srv_error(r, 500, "internal_error", NULL, "out of memory");
    }
    g->shape = shape;
    g->created = (long long)time(NULL);
    g->include_usage = p->include_usage;
    g->return_ids = p->return_token_ids;
    g->keepalive_s = s->o.keepalive_s;
    char msg[768];
    const char *code = NULL;
    unsigned status = srv_job_submit(g->job, prompt, n_prompt, n_predict, p, msg, sizeof msg, &code);
    if (status) {
        srv_gen_free(g);
        return srv_respond_json(r, status, srv_error_json(status, code, NULL, msg));
    }
    r->generating = true;
    __atomic_fetch_add(&s->generating, 1, __ATOMIC_RELAXED);
    snprintf(g->id, sizeof g->id, "%s%llx%08llx", shape->id_prefix, (unsigned long long)g->job->id,
             (unsigned long long)(srv_next_seed(s) & 0xffffffffu));
    if (p->stream)
        return srv_sse_start(r, g);
    int fd = srv_conn_fd(r->conn);
    for (;;) {
        int w = srv_job_wait(g->job, fd, si_now_s() + 3600, false);
        if (w == SRV_WAIT_DONE)
            break;
        if (w == SRV_WAIT_HANGUP) {
            srv_job_cancel(g->job);
            srv_gen_free(g);
            return MHD_NO; /* nobody to answer: close */
        }
    }
    enum MHD_Result ret = respond_whole(r, g);
    srv_gen_free(g);
    return ret;
}
