/* Shared between the files of src/serve (not installed). */
#ifndef SI_SERVE_INTERNAL_H
#define SI_SERVE_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "streaminfer/serve.h"

/* ---- the server (server.c) ---- */

enum { SRV_LOADING = 0, SRV_READY, SRV_STOPPING };

/* HTTP status codes counted by /metrics (others under "other"). */
enum { SRV_N_CODES = 12 };
extern const unsigned srv_codes[SRV_N_CODES];

struct si_server {
    si_server_opts o;          /* strings owned (copied) */
    struct MHD_Daemon *d;
    uint16_t port;
    int quiesced_fd;           /* listening socket handed back by MHD_quiesce_daemon */
    pthread_mutex_t mu;        /* state, m, and every call into the engine */
    int state;                 /* SRV_* */
    bool engine_alive;         /* attached and not detached */
    si_server_model m;
    char *chat_error;
    double started_at;         /* si_now_s() at start */
    long long created_unix;    /* time() at start: /v1/models "created" */
    /* counters (atomic) */
    uint64_t responses[SRV_N_CODES + 1];
    uint64_t connections_open, connections_total;
    uint64_t generating;       /* generation requests not yet completed (answer sent or dropped) */
    uint64_t seed_counter;
};

/* One HTTP request (MHD's per-request pointer). */
typedef struct srv_req srv_req;
typedef enum MHD_Result (*srv_handler)(srv_req *r);

typedef struct srv_route {
    const char *path;   /* exact, or a prefix when it ends with '/' */
    const char *method; /* "GET" (HEAD too) or "POST" */
    srv_handler handler;
    bool public_;       /* no API key needed */
} srv_route;

struct srv_req {
    si_server *s;
    struct MHD_Connection *conn;
    const srv_route *route;
    const char *url;
    char *body;
    size_t len, cap;
    bool too_large;
    bool generating;    /* counted in si_server.generating until MHD completes it */
};

/* Queue a response; steal the body (json) and count the status. */
enum MHD_Result srv_respond_json(srv_req *r, unsigned status, json_t *body);
enum MHD_Result srv_respond_text(srv_req *r, unsigned status, const char *content_type, char *text, size_t len);
void srv_count_status(si_server *s, unsigned status);
/* The connection's socket (for hang-up checks); -1 if unknown. */
int srv_conn_fd(struct MHD_Connection *c);
/* True when the peer has closed its end (or the socket failed). */
bool srv_fd_hung_up(int fd);
/* The state under the lock; when READY, *m gets a copy of the attached model. */
int srv_state(si_server *s, si_server_model *m);
uint64_t srv_next_seed(si_server *s);
/* True, with *m filled, when the model is loaded; else false with *ret the 503
 * response (loading, or shutting down) already queued. */
bool srv_ready(srv_req *r, si_server_model *m, enum MHD_Result *ret);

/* ---- errors (errors.c) ---- */

/* {"error": {"message", "type", "param", "code"}} with the type that fits status. */
json_t *srv_error_json(unsigned status, const char *code, const char *param, const char *msg);
enum MHD_Result srv_error(srv_req *r, unsigned status, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A valid-UTF-8 JSON string of n bytes (invalid bytes become U+FFFD). */
json_t *srv_json_text(const char *s, size_t n);

/* ---- request parameters (params.c) ---- */

typedef struct srv_msg {
    char *role, *content;
} srv_msg;

typedef struct srv_params {
    bool chat;
    char *prompt_text;      /* completions: a text prompt, or NULL */
    int32_t *prompt_ids;    /* completions: token ids, fed as given */
    uint32_t n_prompt_ids;
    srv_msg *msgs;          /* chat */
    size_t n_msgs;
    bool max_tokens_set;
    uint32_t max_tokens;
    si_sampler_opts samp;
    bool seed_set;
    int draft;              /* si_draft_mode, or -1: the server's */
    uint32_t draft_max;     /* 0: the engine's */
    char **stop;
    size_t *stop_len;
    unsigned n_stop;
    bool stream, include_usage, return_token_ids;
    char *model;            /* the request's "model", or NULL */
} srv_params;

/* Parse and check a request body. On failure: -1, msg (and *param, the field at
 * fault or NULL) say why; the answer is a 400. n_vocab bounds token ids (0: none). */
int srv_params_parse(srv_params *p, const char *body, size_t len, bool chat, uint32_t n_vocab, char *msg,
                     size_t msg_size, const char **param);
void srv_params_free(srv_params *p);

/* ---- a generation request on the engine (job.c) ---- */

typedef struct srv_piece {
    char *text;
    size_t len;
} srv_piece;

typedef struct srv_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    si_server *s;
    uint64_t id;
    si_detok *detok;       /* NULL without a tokenizer */
    char **stop;
    size_t *stop_len;
    unsigned n_stop;
    /* engine thread only */
    char *held;            /* decoded text not yet released (a stop string may start in it) */
    size_t held_len, held_cap;
    bool stop_hit;
    /* under mu */
    srv_piece *pieces;     /* released text, one piece per token that released any */
    size_t n_pieces, cap_pieces;
    int32_t *ids;
    size_t n_ids, cap_ids;
    bool oom, done;
    si_request_result res;
} srv_job;

enum { SRV_WAIT_NEWS = 0, SRV_WAIT_DONE, SRV_WAIT_TICK, SRV_WAIT_HANGUP };

/* The job takes the stop strings of p (p->stop becomes NULL). NULL: out of memory. */
srv_job *srv_job_new(si_server *s, srv_params *p, const si_tokenizer *tok);
/* Submit (a reference goes to the engine until on_done). 0, or the HTTP status of the
 * refusal (429 queue full, 400 never fits, 503 loading or stopping) with msg filled. */
unsigned srv_job_submit(srv_job *j, const int32_t *prompt, uint32_t n_prompt, uint32_t n_predict,
                        const srv_params *p, char *msg, size_t msg_size, const char **code);
/* Wait until news (pieces when want_pieces), done, the deadline (si_now_s() clock)
 * or the peer at fd hangs up. */
int srv_job_wait(srv_job *j, int fd, double deadline, bool want_pieces);
/* Take the pieces released so far (caller frees each text and the array). */
srv_piece *srv_job_take(srv_job *j, size_t *n, bool *done);
void srv_job_cancel(srv_job *j);
void srv_job_unref(srv_job *j);

/* ---- the two generation endpoints' common flow (generation.c) ---- */

typedef struct srv_shape {
    const char *object;       /* "text_completion", "chat.completion" */
    const char *chunk_object; /* "text_completion", "chat.completion.chunk" */
    const char *id_prefix;    /* "cmpl-", "chatcmpl-" */
    /* The choice of a whole answer; finish is "stop" or "length". */
    json_t *(*choice)(json_t *text, const char *finish);
    /* The choice of a stream chunk: text (may be NULL: none), finish (NULL: not
     * yet); first: the stream's opening chunk. */
    json_t *(*chunk_choice)(json_t *text, const char *finish, bool first);
    bool opening_chunk;       /* send a chunk before the first token (chat's role) */
} srv_shape;

extern const srv_shape srv_completions_shape, srv_chat_shape;

typedef struct srv_gen {
    const srv_shape *shape;
    srv_job *job;
    char id[64];
    long long created;
    char *model;
    bool include_usage, return_ids;
    double keepalive_s;
} srv_gen;

/* Submit and answer (JSON or server-sent events); consumes the prompt's ownership
 * of nothing: prompt is copied by the engine. p's stop strings move to the job. */
enum MHD_Result srv_generate(srv_req *r, srv_params *p, const int32_t *prompt, uint32_t n_prompt,
                             uint32_t n_predict, const srv_shape *shape);
/* {"id", "object", "created", "model", "choices": [choice]} (steals choice; NULL:
 * an empty list). */
json_t *srv_gen_envelope(const srv_gen *g, bool chunk, json_t *choice);
json_t *srv_gen_usage(const si_request_result *res);
void srv_gen_free(srv_gen *g);
/* The error of a request that did not end with stop/length (status, code, message). */
unsigned srv_gen_failure(const srv_gen *g, char *msg, size_t msg_size, const char **code);

/* ---- server-sent events (sse.c) ---- */

/* Answer with an event stream fed by g's job (takes g). */
enum MHD_Result srv_sse_start(srv_req *r, srv_gen *g);

/* ---- endpoints ---- */

enum MHD_Result srv_handle_completions(srv_req *r);
enum MHD_Result srv_handle_chat(srv_req *r);
enum MHD_Result srv_handle_models(srv_req *r);
enum MHD_Result srv_handle_health(srv_req *r);
enum MHD_Result srv_handle_metrics(srv_req *r);

/* chat.c: render messages with the model's chat format and tokenize (as
 * stream-infer --chat does). */
int srv_chat_render(const si_chat *chat, const si_tokenizer *tok, const srv_msg *m, size_t n, int32_t **ids,
                    uint32_t *n_ids, si_error *err);

#endif
