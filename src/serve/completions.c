/* POST /v1/completions: a prompt (text, token ids, or a list of one text) continued
 * for max_tokens tokens (default 16). */
#include <stdlib.h>
#include <string.h>

#include "serve_internal.h"

static json_t *choice(json_t *text, const char *finish)
{
    return json_pack("{s:o,s:i,s:n,s:s}", "text", text, "index", 0, "logprobs", "finish_reason", finish);
}

static json_t *chunk_choice(json_t *text, const char *finish, bool first)
{
    return json_pack("{s:o,s:i,s:n,s:o}", "text", text ? text : json_string(""), "index", 0, "logprobs",
                     "finish_reason", finish ? json_string(finish) : json_null());
}

const srv_shape srv_completions_shape = {"text_completion", "text_completion", "cmpl-", choice, chunk_choice, false};

enum MHD_Result srv_handle_completions(srv_req *r)
{
    si_server_model m = {0};
    enum MHD_Result ret;
    if (!srv_ready(r, &m, &ret))
        return ret;
    srv_params p;
    char msg[512];
    const char *param;
    uint32_t n_vocab = m.n_vocab;
    if (srv_params_parse(&p, r->body, r->len, false, n_vocab, msg, sizeof msg, &param) != 0)
        return srv_error(r, 400, "invalid_request", param, "%s", msg);
    int32_t *ids = p.prompt_ids;
    size_t n = p.n_prompt_ids;
    if (p.prompt_text) {
        si_error err = {0};
        ids = NULL;
        if (!m.tok) {
            srv_params_free(&p);
            return srv_error(r, 400, "no_tokenizer", "prompt",
                             "this model has no usable vocabulary: send the prompt as a list of token ids");
        }
        if (si_tokenize(m.tok, p.prompt_text, strlen(p.prompt_text), si_tokenizer_add_bos_default(m.tok), true, &ids,
                        &n, &err) != SI_OK) {
            srv_params_free(&p);
            return srv_error(r, 400, "invalid_prompt", "prompt", "cannot tokenize the prompt: %s", err.msg);
        }
        if (n == 0) {
            free(ids);
            srv_params_free(&p);
            return srv_error(r, 400, "invalid_prompt", "prompt", "the prompt is empty");
        }
    }
    if (n > m.n_ctx) {
        ret = srv_error(r, 400, "context_length_exceeded", "prompt",
                        "the prompt has %zu tokens; the context holds %u (-c)", n, m.n_ctx);
    } else {
        uint32_t n_predict = p.max_tokens_set ? p.max_tokens : 16;
        ret = srv_generate(r, &p, ids, (uint32_t)n, n_predict, &srv_completions_shape);
    }
    if (ids != p.prompt_ids)
        free(ids);
    srv_params_free(&p);
    return ret;
}
