/* stream-server's HTTP layer: an OpenAI-compatible API on the batch engine.
 *
 *   POST /v1/completions, POST /v1/chat/completions (JSON, or server-sent events with
 *   "stream": true), GET /v1/models, GET /health (no key needed), GET /metrics
 *   (Prometheus text). Errors are OpenAI-shaped: {"error": {"message", "type",
 *   "param", "code"}}.
 *
 * The server never runs the model: it tokenizes, renders chat messages, submits
 * requests to the engine (si_engine_submit / si_engine_cancel) and turns the tokens
 * the engine's callbacks deliver into text. One thread per connection (libmicrohttpd);
 * a connection whose client goes away cancels its request.
 *
 * Life cycle: si_server_start opens the port at once (/health answers 503 "loading",
 * the API 503), si_server_attach hands it the loaded model and the running engine
 * (/health: 200 "ok"); at shutdown si_server_quiesce (no new connections, new requests
 * refused with 503), then si_engine_stop and join the engine thread, si_server_detach
 * (after it the server touches the engine no more), si_engine_free (every request
 * still waiting ends, cancelled), and si_server_free (waits for the connections). */
#ifndef STREAMINFER_SERVE_H
#define STREAMINFER_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "streaminfer/chat.h"
#include "streaminfer/engine.h"
#include "streaminfer/error.h"
#include "streaminfer/llama.h"
#include "streaminfer/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct si_server si_server;

typedef struct si_server_opts {
    const char *host;         /* address to bind (name or literal, IPv4 or IPv6); NULL = 127.0.0.1 */
    uint16_t port;            /* 0 = an ephemeral port (si_server_port tells which) */
    const char *api_key;      /* NULL or "" = no authentication */
    uint64_t max_body;        /* request body limit in bytes (413 beyond); 0 = 8 MiB */
    double timeout_s;         /* per generation request, from submission; 0 = none */
    double keepalive_s;       /* SSE comment while no token comes; 0 = 15 s */
    unsigned idle_timeout_s;  /* close a connection idle this long; 0 = 60 s */
    unsigned max_connections; /* open connections at once; 0 = 256 */
    const char *model_name;   /* what /v1/models lists and responses echo by default */
    si_draft_mode draft;      /* guessing for requests that do not say ("draft": ...) */
} si_server_opts;

/* Bind and start answering (health: loading). Fails with SI_EIO when the address
 * cannot be bound (the message says why). */
int si_server_start(si_server **out, const si_server_opts *o, si_error *err);
uint16_t si_server_port(const si_server *s);

/* Defaults that depend on the model. */
typedef struct si_server_model {
    si_engine *engine;       /* running (si_engine_run on another thread) */
    const si_llama *model;   /* read only for statistics (/metrics) */
    const si_tokenizer *tok; /* NULL: prompts must be token ids; no chat */
    const si_chat *chat;     /* NULL: /v1/chat/completions answers 400 saying why */
    const char *chat_error;  /* why there is no chat format (copied) */
    uint32_t n_ctx;
    uint32_t n_vocab;        /* token ids must be below it */
} si_server_model;

/* The model is loaded: serve it (everything is borrowed until si_server_detach). */
void si_server_attach(si_server *s, const si_server_model *m);
/* Stop accepting connections; requests on open connections get 503. */
void si_server_quiesce(si_server *s);
/* After this returns the server never calls the engine again (requests already
 * submitted still wait for their on_done, which si_engine_free delivers). */
void si_server_detach(si_server *s);
/* Close every connection (waiting for their threads) and free. */
void si_server_free(si_server *s);

#ifdef __cplusplus
}
#endif
#endif
