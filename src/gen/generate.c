#include "streaminfer/generate.h"

#include <stdlib.h>

static int dump_rows(FILE *f, const float *rows, size_t n_rows, uint32_t n_vocab, si_error *err)
{
    if (!f)
        return SI_OK;
    SI_CHECK(fwrite(rows, sizeof(float) * n_vocab, n_rows, f) != n_rows, err, SI_EIO,
             "writing logits failed (disk full?)");
    return SI_OK;
}

static bool is_stop(const si_gen_opts *o, int32_t id)
{
    for (uint32_t i = 0; i < o->n_stop; i++)
        if (o->stop_ids[i] == id)
            return true;
    return false;
}

static int eval(si_llama *m, const si_gen_opts *o, const int32_t *ids, uint32_t n, bool another, float *logits,
                si_gen_result *r, si_error *err)
{
    SI_TRY(si_llama_eval(m, ids, n, another, logits, err));
    r->n_evaluated += n;
    if (o->sampler)
        for (uint32_t i = 0; i < n; i++)
            si_sampler_accept(o->sampler, ids[i]);
    return SI_OK;
}

int si_generate(si_llama *m, const si_gen_opts *o, si_gen_result *r, si_error *err)
{
    *r = (si_gen_result){.last_id = -1};
    SI_CHECK(o->n_prompt == 0, err, SI_EINVAL, "the prompt is empty: nothing to evaluate");
    SI_CHECK(!o->force && !o->sampler, err, SI_EINVAL, "no sampler");
    const si_llama_hparams *hp = si_llama_hparams_of(m);
    uint32_t V = hp->n_vocab, B = si_llama_plan_of(m)->n_batch;
    bool all_rows = o->dump_logits != NULL;
    uint32_t n_steps = o->force ? o->n_force : (o->n_predict ? o->n_predict - 1 : 0);
    /* With all rows, the prompt goes in batches of B so the logits buffer stays B rows. */
    float *logits = malloc((size_t)(all_rows ? B : 1) * V * sizeof(float));
    SI_CHECK(!logits, err, SI_ENOMEM, "out of memory for logits");
    int rc = SI_OK;
    double t0 = si_now_s();
    for (uint32_t done = 0; rc == SI_OK && done < o->n_prompt;) {
        uint32_t n = all_rows && o->n_prompt - done > B ? B : o->n_prompt - done;
        bool last = done + n == o->n_prompt;
        rc = eval(m, o, o->prompt + done, n, !last || n_steps > 0, logits, r, err);
        if (rc == SI_OK)
            rc = dump_rows(o->dump_logits, logits, all_rows ? n : 0, V, err);
        done += n;
    }
    r->prompt_s = si_now_s() - t0;
    const float *last_row = logits + (size_t)(all_rows ? ((o->n_prompt - 1) % B) : 0) * V;
    double tg = si_now_s();
    for (uint32_t i = 0; rc == SI_OK && i < (o->force ? o->n_force : o->n_predict); i++) {
        int32_t id = o->force ? o->force[i] : si_sampler_sample(o->sampler, last_row);
        if (i == 0)
            r->ttft_s = si_now_s() - o->t_start;
        r->n_generated++;
        if (!o->force && is_stop(o, id)) {
            r->last_id = id;
            r->stopped_at_eog = true;
            break;
        }
        bool go_on = o->on_token ? o->on_token(o->ctx, id) : true;
        /* The last sampled token is not evaluated: the caller may feed it later. */
        if (!go_on || (!o->force && i + 1 == o->n_predict)) {
            r->last_id = id;
            break;
        }
        rc = eval(m, o, &id, 1, i + 1 < n_steps, logits, r, err);
        if (rc == SI_OK)
            rc = dump_rows(o->dump_logits, logits, all_rows ? 1 : 0, V, err);
        last_row = logits;
    }
    r->gen_s = si_now_s() - tg;
    free(logits);
    return rc;
}
