/* The OpenAI request body, parsed with jansson and checked field by field. Fields
 * this server does not use are ignored; a used field of the wrong type or out of range
 * is a 400 naming it. null counts as absent. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_internal.h"

#define MAX_STOP 16
#define MAX_STOP_LEN 1024

typedef struct ctx {
    char *msg;
    size_t msg_size;
    const char **param;
} ctx;

__attribute__((format(printf, 3, 4))) static int fail(ctx *c, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, c->msg_size, fmt, ap);
    va_end(ap);
    *c->param = param;
    return -1;
}

/* The field, or NULL when absent or null. */
static json_t *field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int get_number(ctx *c, json_t *o, const char *key, double lo, double hi, bool lo_open, double *out)
{
    json_t *v = field(o, key);
    if (!v)
        return 0;
    if (!json_is_number(v))
        return fail(c, key, "'%s' must be a number", key);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi || (lo_open && x <= lo))
        return fail(c, key, "'%s' must be in %s%g, %g]", key, lo_open ? "(" : "[", lo, hi);
    *out = x;
    return 1;
}

static int get_int(ctx *c, json_t *o, const char *key, json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *v = field(o, key);
    if (!v)
        return 0;
    if (json_is_real(v)) {
        /* 16.0 is accepted as 16 (JavaScript numbers); 16.5 is not. */
        double x = json_real_value(v);
        if (!(x == floor(x) && x >= (double)lo && x <= (double)hi))
            return fail(c, key, "'%s' must be an integer in [%lld, %lld]", key, (long long)lo, (long long)hi);
        *out = (json_int_t)x;
        return 1;
    }
    if (!json_is_integer(v))
        return fail(c, key, "'%s' must be an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return fail(c, key, "'%s' must be an integer in [%lld, %lld]", key, (long long)lo, (long long)hi);
    *out = x;
    return 1;
}

static int get_bool(ctx *c, json_t *o, const char *key, bool *out)
{
    json_t *v = field(o, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return fail(c, key, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return 1;
}

static int ids_of(ctx *c, json_t *arr, uint32_t n_vocab, int32_t **ids, uint32_t *n)
{
    size_t len = json_array_size(arr);
    if (len == 0)
        return fail(c, "prompt", "'prompt' is an empty list of token ids");
    if (len > INT32_MAX / 4)
        return fail(c, "prompt", "'prompt' has too many token ids");
    int32_t *v = malloc(len * sizeof *v);
    if (!v)
        return fail(c, "prompt", "out of memory");
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(arr, i);
        json_int_t x = json_is_integer(e) ? json_integer_value(e) : -1;
        if (!json_is_integer(e) || x < 0 || x > INT32_MAX || (n_vocab && x >= (json_int_t)n_vocab)) {
            free(v);
            if (!json_is_integer(e))
                return fail(c, "prompt", "'prompt'[%zu] is not a token id (an integer)", i);
            return fail(c, "prompt", "'prompt'[%zu] = %lld is not a token id of this model (0..%u)", i, (long long)x,
                        n_vocab ? n_vocab - 1 : (unsigned)INT32_MAX);
        }
        v[i] = (int32_t)x;
    }
    *ids = v;
    *n = (uint32_t)len;
    return 0;
}

static int parse_prompt(ctx *c, srv_params *p, json_t *o, uint32_t n_vocab)
{
    json_t *v = field(o, "prompt");
    if (!v)
        return fail(c, "prompt", "'prompt' is required");
    if (json_is_array(v) && json_array_size(v) == 1 &&
        (json_is_string(json_array_get(v, 0)) || json_is_array(json_array_get(v, 0))))
        v = json_array_get(v, 0); /* a batch of one prompt */
    if (json_is_string(v)) {
        p->prompt_text = strndup(json_string_value(v), json_string_length(v));
        return p->prompt_text ? 0 : fail(c, "prompt", "out of memory");
    }
    if (json_is_array(v)) {
        json_t *e0 = json_array_get(v, 0);
        if (e0 && (json_is_string(e0) || json_is_array(e0)))
            return fail(c, "prompt", "'prompt': only one prompt per request is supported");
        return ids_of(c, v, n_vocab, &p->prompt_ids, &p->n_prompt_ids);
    }
    return fail(c, "prompt", "'prompt' must be a string, a list of token ids, or a list of one string");
}

static int parse_messages(ctx *c, srv_params *p, json_t *o)
{
    json_t *v = field(o, "messages");
    if (!v)
        return fail(c, "messages", "'messages' is required");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(c, "messages", "'messages' must be a non-empty list of messages");
    size_t n = json_array_size(v);
    if (!(p->msgs = calloc(n, sizeof *p->msgs)))
        return fail(c, "messages", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(v, i);
        if (!json_is_object(m))
            return fail(c, "messages", "'messages'[%zu] must be an object", i);
        json_t *role = json_object_get(m, "role");
        if (!json_is_string(role))
            return fail(c, "messages", "'messages'[%zu].role must be a string", i);
        const char *r = json_string_value(role);
        if (strcmp(r, "developer") == 0)
            r = "system";
        if (strcmp(r, "system") != 0 && strcmp(r, "user") != 0 && strcmp(r, "assistant") != 0)
            return fail(c, "messages",
                        "'messages'[%zu].role '%.40s' is not supported (system, developer, user, assistant)", i, r);
        json_t *content = json_object_get(m, "content");
        char *text = NULL;
        if (json_is_string(content)) {
            if (strlen(json_string_value(content)) != json_string_length(content))
                return fail(c, "messages", "'messages'[%zu].content contains a NUL character", i);
            text = strdup(json_string_value(content));
        } else if (json_is_array(content)) {
            /* content parts: only text ones, concatenated */
            size_t len = 0;
            for (size_t k = 0; k < json_array_size(content); k++) {
                json_t *part = json_array_get(content, k);
                json_t *type = json_object_get(part, "type"), *t = json_object_get(part, "text");
                if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") != 0 ||
                    !json_is_string(t))
                    return fail(c, "messages", "'messages'[%zu].content[%zu]: only {\"type\": \"text\", \"text\": "
                                "...} parts are supported", i, k);
                len += strlen(json_string_value(t));
            }
            if ((text = malloc(len + 1))) {
                text[0] = 0;
                for (size_t k = 0; k < json_array_size(content); k++)
                    strcat(text, json_string_value(json_object_get(json_array_get(content, k), "text")));
            }
        } else if ((!content || json_is_null(content)) && strcmp(r, "assistant") == 0) {
            text = strdup("");
        } else {
            return fail(c, "messages", "'messages'[%zu].content must be a string or a list of text parts", i);
        }
        p->msgs[i].content = text;
        p->msgs[i].role = strdup(r);
        p->n_msgs = i + 1;
        if (!text || !p->msgs[i].role)
            return fail(c, "messages", "out of memory");
    }
    return 0;
}

static int add_stop(ctx *c, srv_params *p, json_t *s)
{
    size_t n = json_string_length(s);
    if (n == 0)
        return 0; /* an empty stop string would end every answer at once: ignored */
    if (n > MAX_STOP_LEN)
        return fail(c, "stop", "'stop' strings are at most %d bytes", MAX_STOP_LEN);
    if (strlen(json_string_value(s)) != n)
        return fail(c, "stop", "'stop' strings cannot contain NUL");
    if (!p->stop) {
        p->stop = calloc(MAX_STOP, sizeof *p->stop);
        p->stop_len = calloc(MAX_STOP, sizeof *p->stop_len);
        if (!p->stop || !p->stop_len)
            return fail(c, "stop", "out of memory");
    }
    if (!(p->stop[p->n_stop] = strdup(json_string_value(s))))
        return fail(c, "stop", "out of memory");
    p->stop_len[p->n_stop++] = n;
    return 0;
}

static int parse_stop(ctx *c, srv_params *p, json_t *o)
{
    json_t *v = field(o, "stop");
    if (!v)
        return 0;
    if (json_is_string(v))
        return add_stop(c, p, v);
    if (!json_is_array(v))
        return fail(c, "stop", "'stop' must be a string or a list of strings");
    if (json_array_size(v) > MAX_STOP)
        return fail(c, "stop", "'stop' has more than %d strings", MAX_STOP);
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s))
            return fail(c, "stop", "'stop'[%zu] must be a string", i);
        if (add_stop(c, p, s) != 0)
            return -1;
    }
    return 0;
}

static int parse_object(ctx *c, srv_params *p, json_t *o, bool chat, uint32_t n_vocab)
{
    json_t *model = field(o, "model");
    if (model && !json_is_string(model))
        return fail(c, "model", "'model' must be a string");
    if (model && !(p->model = strdup(json_string_value(model))))
        return fail(c, "model", "out of memory");
    if ((chat ? parse_messages(c, p, o) : parse_prompt(c, p, o, n_vocab)) != 0)
        return -1;

    json_int_t n = 1;
    if (get_int(c, o, "n", INT64_MIN, INT64_MAX, &n) < 0)
        return -1;
    if (n != 1)
        return fail(c, "n", "'n' = %lld: this server generates one choice per request; only n = 1 is supported",
                    (long long)n);
    json_t *best_of = field(o, "best_of");
    if (best_of && !(json_is_integer(best_of) && json_integer_value(best_of) == 1))
        return fail(c, "best_of", "only best_of = 1 is supported");

    json_int_t mt;
    int rc = get_int(c, o, "max_tokens", 1, INT32_MAX, &mt);
    if (rc == 0 && chat)
        rc = get_int(c, o, "max_completion_tokens", 1, INT32_MAX, &mt);
    if (rc < 0)
        return -1;
    if (rc > 0)
        p->max_tokens_set = true, p->max_tokens = (uint32_t)mt;

    /* Sampling: stream-infer's defaults where the request says nothing. */
    p->samp = (si_sampler_opts){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f,
                                .repeat_last_n = 64};
    double x;
    if ((rc = get_number(c, o, "temperature", 0, 2, false, &x)) < 0)
        return -1;
    if (rc)
        p->samp.temp = (float)x;
    if ((rc = get_number(c, o, "top_p", 0, 1, false, &x)) < 0)
        return -1;
    if (rc) {
        p->samp.top_p = (float)x;
        if (x == 0)
            p->samp.temp = 0, p->samp.top_p = 1; /* only the most likely token */
    }
    json_int_t k;
    if ((rc = get_int(c, o, "top_k", 0, INT32_MAX, &k)) < 0)
        return -1;
    if (rc)
        p->samp.top_k = (int32_t)k;
    if ((rc = get_number(c, o, "min_p", 0, 1, false, &x)) < 0)
        return -1;
    if (rc)
        p->samp.min_p = (float)x;
    if ((rc = get_number(c, o, "repeat_penalty", 0, 100, true, &x)) < 0)
        return -1;
    if (rc)
        p->samp.repeat_penalty = (float)x;
    json_t *seed = field(o, "seed");
    if (seed) {
        if (!json_is_integer(seed))
            return fail(c, "seed", "'seed' must be an integer");
        p->samp.seed = (uint64_t)json_integer_value(seed);
        p->seed_set = true;
    }
    if (parse_stop(c, p, o) != 0)
        return -1;
    /* streaminfer's own: guesses checked in the same pass (the output is the same) */
    p->draft = -1;
    json_t *dm = field(o, "draft");
    if (dm && (!json_is_string(dm) || si_draft_mode_parse(json_string_value(dm)) < 0))
        return fail(c, "draft", "'draft' must be \"none\", \"lookup\", \"lookahead\" or \"auto\"");
    if (dm)
        p->draft = si_draft_mode_parse(json_string_value(dm));
    json_int_t dmax;
    if ((rc = get_int(c, o, "draft_max", 1, SI_DRAFT_MAX_NODES, &dmax)) < 0)
        return -1;
    if (rc)
        p->draft_max = (uint32_t)dmax;
    if (get_bool(c, o, "stream", &p->stream) < 0 || get_bool(c, o, "return_token_ids", &p->return_token_ids) < 0)
        return -1;
    json_t *so = field(o, "stream_options");
    if (so) {
        if (!json_is_object(so))
            return fail(c, "stream_options", "'stream_options' must be an object");
        json_t *iu = field(so, "include_usage");
        if (iu && !json_is_boolean(iu))
            return fail(c, "stream_options", "'stream_options.include_usage' must be true or false");
        p->include_usage = iu && json_is_true(iu);
    }
    return 0;
}

int srv_params_parse(srv_params *p, const char *body, size_t len, bool chat, uint32_t n_vocab, char *msg,
                     size_t msg_size, const char **param)
{
    memset(p, 0, sizeof *p);
    p->chat = chat;
    *param = NULL;
    ctx c = {msg, msg_size, param};
    if (!body || len == 0)
        return fail(&c, NULL, "the request has no body: send a JSON object");
    json_error_t je;
    json_t *o = json_loadb(body, len, 0, &je);
    if (!o)
        return fail(&c, NULL, "the body is not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
    int rc = json_is_object(o) ? parse_object(&c, p, o, chat, n_vocab) : fail(&c, NULL, "the body must be a JSON object");
    json_decref(o);
    if (rc != 0)
        srv_params_free(p);
    return rc;
}

void srv_params_free(srv_params *p)
{
    free(p->prompt_text);
    free(p->prompt_ids);
    for (size_t i = 0; i < p->n_msgs; i++)
        free(p->msgs[i].role), free(p->msgs[i].content);
    free(p->msgs);
    for (unsigned i = 0; i < p->n_stop; i++)
        free(p->stop[i]);
    free(p->stop);
    free(p->stop_len);
    free(p->model);
    bool chat = p->chat;
    memset(p, 0, sizeof *p);
    p->chat = chat;
}
