/* POST /v1/chat/completions: messages rendered in the model's chat format (as
 * stream-infer --chat renders them: each message on its own, BOS before the first,
 * then the assistant's header), answered until the end of the turn, max_tokens or the
 * context. */
#include <stdlib.h>
#include <string.h>

#include "serve_internal.h"

static json_t *choice(json_t *text, const char *finish)
{
    return json_pack("{s:i,s:{s:s,s:o},s:n,s:s}", "index", 0, "message", "role", "assistant", "content", text,
                     "logprobs", "finish_reason", finish);
}

static json_t *chunk_choice(json_t *text, const char *finish, bool first)
{
    json_t *delta = first ? json_pack("{s:s,s:s}", "role", "assistant", "content", "")
                    : text ? json_pack("{s:o}", "content", text)
                           : json_object();
    return json_pack("{s:i,s:o,s:n,s:o}", "index", 0, "delta", delta, "logprobs", "finish_reason",
                     finish ? json_string(finish) : json_null());
}

const srv_shape srv_chat_shape = {"chat.completion", "chat.completion.chunk", "chatcmpl-", choice, chunk_choice, true};

static int append(const si_tokenizer *tok, const char *text, bool bos, int32_t **ids, uint32_t *n, si_error *err)
{
    int32_t *part;
    size_t n_part;
    SI_TRY(si_tokenize(tok, text, strlen(text), bos, true, &part, &n_part, err));
    if (n_part > UINT32_MAX - *n - 1) {
        free(part);
        return si_errorf(err, SI_EINVAL, "the conversation is too long");
    }
    int32_t *all = realloc(*ids, (*n + n_part + 1) * sizeof *all);
    if (!all) {
        free(part);
        return si_errorf(err, SI_ENOMEM, "out of memory");
    }
    if (n_part)
        memcpy(all + *n, part, n_part * sizeof *part);
    free(part);
    *ids = all;
    *n += (uint32_t)n_part;
    return SI_OK;
}

int srv_chat_render(const si_chat *chat, const si_tokenizer *tok, const srv_msg *m, size_t n, int32_t **ids,
                    uint32_t *n_ids, si_error *err)
{
    *ids = NULL;
    *n_ids = 0;
    int rc = SI_OK;
    for (size_t i = 0; i < n && rc == SI_OK; i++) {
        char *text = si_chat_message(chat, m[i].role, m[i].content);
        rc = text ? append(tok, text, i == 0 && si_tokenizer_add_bos_default(tok), ids, n_ids, err)
                  : si_errorf(err, SI_ENOMEM, "out of memory");
        free(text);
    }
    if (rc == SI_OK)
        rc = append(tok, si_chat_generation_prompt(chat), false, ids, n_ids, err);
    if (rc != SI_OK) {
        free(*ids);
        *ids = NULL;
        *n_ids = 0;
    }
    return rc;
}

enum MHD_Result srv_handle_chat(srv_req *r)
{
    si_server_model m = {0};
    enum MHD_Result ret;
    if (!srv_ready(r, &m, &ret))
        return ret;
    srv_params p;
    char msg[512];
    const char *param;
    if (srv_params_parse(&p, r->body, r->len, true, 0, msg, sizeof msg, &param) != 0)
        return srv_error(r, 400, "invalid_request", param, "%s", msg);
    if (!m.tok || !m.chat) {
        ret = srv_error(r, 400, "no_chat_format", NULL, "this model cannot chat: %s",
                        !m.tok ? "it has no usable vocabulary"
                               : m.chat_error ? m.chat_error : "it has no known chat format");
        srv_params_free(&p);
        return ret;
    }
    int32_t *ids;
    uint32_t n;
    si_error err = {0};
    if (srv_chat_render(m.chat, m.tok, p.msgs, p.n_msgs, &ids, &n, &err) != SI_OK) {
        ret = srv_error(r, err.code == SI_ENOMEM ? 500 : 400, "invalid_messages", "messages",
                        "cannot render the messages: %s", err.msg);
    } else if (n >= m.n_ctx) {
        ret = srv_error(r, 400, "context_length_exceeded", "messages",
                        "the conversation has %u tokens; the context holds %u (-c), and the answer needs room", n,
                        m.n_ctx);
    } else {
        /* no max_tokens: until the end of the turn, or the context is full */
        ret = srv_generate(r, &p, ids, n, p.max_tokens_set ? p.max_tokens : 0, &srv_chat_shape);
    }
    free(ids);
    srv_params_free(&p);
    return ret;
}
