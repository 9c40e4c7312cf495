/* Plan requests for model shapes, as src/model/llama.c's fill_plan_request builds
 * them (F16 KV cache, Q8_K-like activation rows), and reading the minimum a refusal
 * names. Shared by the si_plan_make unit tests. */
#ifndef SI_PLAN_TEST_H
#define SI_PLAN_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../test_util.h"
#include "streaminfer/plan.h"

typedef struct shape {
    const char *name;
    uint64_t dim, layers, heads, kv_heads, ff, vocab;
    uint32_t ctx_train;
    double weight_bytes_per_elt; /* of the 2-D weights, for the ring sizes */
} shape;

/* micro-llama3 (the fixtures), the same with a 131072 context, a 512-wide model at
 * 2048 and 131072, Llama 3 8B at its 8192 and at 131072. */
static const shape plan_shapes[] = {
    {"micro-llama3", 256, 4, 4, 1, 768, 512, 2048, 1.0},
    {"micro-llama3 ctx 131072", 256, 4, 4, 1, 768, 512, 131072, 1.0},
    {"dim 512 Q4_K ctx 2048", 512, 4, 8, 2, 1536, 512, 2048, 0.5625},
    {"dim 512 Q4_K ctx 131072", 512, 4, 8, 2, 1536, 512, 131072, 0.5625},
    {"llama3-8b", 4096, 32, 32, 8, 14336, 128256, 8192, 0.33},
    {"llama3-8b ctx 131072", 4096, 32, 32, 8, 14336, 128256, 131072, 0.33},
};
#define N_PLAN_SHAPES (sizeof plan_shapes / sizeof plan_shapes[0])

static inline si_plan_req plan_req_for(const shape *s, uint64_t budget)
{
    const uint64_t align = 4096, hd = s->dim / s->heads, Q = s->heads * hd, KV = s->kv_heads * hd;
    si_plan_req r;
    memset(&r, 0, sizeof r);
    r.budget = budget;
    r.n_ctx_train = s->ctx_train;
    r.kv_bytes_per_pos = 2 * s->layers * KV * 2;
    uint64_t qact_row = (s->ff > s->dim ? s->ff : s->dim) * 292 / 256;
    r.act_bytes_per_token = 4 * (2 * s->dim + 2 * Q + 2 * KV + 2 * s->ff) + qact_row;
    r.act_bytes_per_pos = 4 + 8 * hd;
    r.act_fixed_bytes = 4 * (hd + s->dim + hd) + (uint64_t)(s->dim * s->weight_bytes_per_elt);
    r.logits_row_bytes = 4 * s->vocab;
    uint64_t pass = (uint64_t)((double)s->layers * (2 * s->dim * Q + 2 * s->dim * KV + 3 * s->dim * s->ff) *
                               s->weight_bytes_per_elt) +
                    (uint64_t)(s->dim * s->vocab * 0.82);
    uint64_t widest = (uint64_t)(s->vocab > s->ff ? s->dim * 0.82 : s->ff * s->weight_bytes_per_elt);
    r.ring_want = 2 * pass < SI_RING_DEFAULT_CAP ? 2 * pass : SI_RING_DEFAULT_CAP;
    r.ring_min = 3 * ((widest + align - 1) / align * align + 2 * align);
    return r;
}

/* The bytes in "at least 1.2 MiB (1258291 bytes)", 0 when the message has none. */
static inline uint64_t plan_named_minimum(const char *msg)
{
    const char *p = strstr(msg, "at least ");
    if (!p || !(p = strchr(p, '(')))
        return 0;
    uint64_t v = 0;
    char word[8] = "";
    if (sscanf(p, "(%" SCNu64 " %7[a-z])", &v, word) != 2 || strcmp(word, "bytes"))
        return 0;
    return v;
}

#endif
