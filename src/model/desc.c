/* Llama hyper-parameters and tensor locations from GGUF metadata, checked for
 * consistency so the forward pass can trust every shape. */
#include "streaminfer/model.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void si_llama_layer_tensors(const si_llama_desc *d, uint32_t l, const si_tensor_ref *out[SI_LAYER_N_TENSORS])
{
    const si_llama_layer_refs *L = &d->layers[l];
    const si_tensor_ref *order[SI_LAYER_N_TENSORS] = {
        &L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_norm, &L->w_gate, &L->w_up, &L->w_down,
    };
    memcpy(out, order, sizeof order);
}

/* Where tensors come from: the GGUF's own tensor infos, or a pack's extent table. */
typedef struct finder {
    si_tensor_find_fn fn;
    const void *ctx;
} finder;

static const si_gguf_tensor *find_in_gguf(const void *ctx, const char *name)
{
    return si_gguf_find_tensor(ctx, name);
}

/* Look up a tensor and check it is [n_cols] (n_rows == 0) or [n_cols, n_rows]. */
static int tensor_ref(si_tensor_ref *r, const si_gguf *g, const finder *fd, const char *name, uint64_t n_cols,
                      uint64_t n_rows, bool need_compute, si_error *err)
{
    const char *path = si_gguf_path(g);
    const si_gguf_tensor *t = fd->fn(fd->ctx, name);
    if (!t)
        return si_errorf(err, SI_EFORMAT, "%s: tensor '%s' is missing", path, name);
    /* Trailing dimensions of 1 are allowed: some writers store vectors as [n, 1]. */
    uint64_t rows = t->n_dims >= 2 ? t->ne[1] : 1;
    bool flat = t->n_dims <= 2 || (t->ne[2] == 1 && (t->n_dims < 4 || t->ne[3] == 1));
    if (t->ne[0] != n_cols || rows != (n_rows ? n_rows : 1) || !flat)
        return si_errorf(err, SI_EFORMAT,
                         "%s: tensor '%s' has shape [%" PRIu64 ", %" PRIu64 "], expected [%" PRIu64
                         ", %" PRIu64 "] from the hyper-parameters",
                         path, name, t->ne[0], rows, n_cols, n_rows ? n_rows : 1);
    const si_type_traits *tt = si_type_get(t->type);
    if (!tt || (need_compute && !tt->compute))
        return si_errorf(err, SI_EUNSUPPORTED,
                         "%s: tensor '%s' has type %s, which the engine cannot compute with "
                         "(supported: F32 F16 Q4_0 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K)",
                         path, name, si_type_name(t->type));
    if (!n_rows && t->type != SI_TYPE_F32)
        return si_errorf(err, SI_EUNSUPPORTED, "%s: tensor '%s' has type %s, expected F32", path, name,
                         si_type_name(t->type));
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->type = t->type;
    r->n_cols = n_cols;
    r->n_rows = n_rows ? n_rows : 1;
    r->offset = t->offset;
    r->row_bytes = si_row_size(t->type, (int64_t)n_cols);
    r->size = r->row_bytes * r->n_rows;
    if (r->row_bytes == 0 || r->size != t->size)
        return si_errorf(err, SI_EFORMAT, "%s: tensor '%s': size %" PRIu64 " does not match its shape",
                         path, name, t->size);
    return SI_OK;
}

static int get_u32_or(const si_gguf *g, const char *key, uint32_t dflt, uint32_t *out, si_error *err)
{
    if (si_gguf_find_key(g, key) < 0) {
        *out = dflt;
        return SI_OK;
    }
    return si_gguf_get_u32(g, key, out, err);
}

static int read_hparams(si_llama_hparams *hp, const si_gguf *g, si_error *err)
{
    const char *path = si_gguf_path(g);
    const char *arch;
    uint64_t arch_len;
    SI_TRY(si_gguf_get_str(g, "general.architecture", &arch, &arch_len, err));
    SI_CHECK(strcmp(arch, "llama") != 0, err, SI_EUNSUPPORTED,
             "%s: architecture '%s' is not supported (only 'llama')", path, arch);
    memset(hp, 0, sizeof *hp);
    SI_TRY(si_gguf_get_u32(g, "llama.embedding_length", &hp->n_embd, err));
    SI_TRY(si_gguf_get_u32(g, "llama.block_count", &hp->n_layer, err));
    SI_TRY(si_gguf_get_u32(g, "llama.attention.head_count", &hp->n_head, err));
    SI_TRY(get_u32_or(g, "llama.attention.head_count_kv", hp->n_head, &hp->n_head_kv, err));
    SI_TRY(si_gguf_get_u32(g, "llama.feed_forward_length", &hp->n_ff, err));
    SI_TRY(get_u32_or(g, "llama.context_length", 2048, &hp->n_ctx_train, err));
    SI_CHECK(hp->n_embd == 0 || hp->n_layer == 0 || hp->n_head == 0 || hp->n_head_kv == 0 || hp->n_ff == 0,
             err, SI_EFORMAT, "%s: a llama.* size is zero (embd %u, layers %u, heads %u/%u, ff %u)", path,
             hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->n_ff);
    SI_CHECK(hp->n_head % hp->n_head_kv != 0, err, SI_EFORMAT,
             "%s: head_count %u is not a multiple of head_count_kv %u", path, hp->n_head, hp->n_head_kv);
    SI_CHECK(hp->n_layer > 4096 || hp->n_head > 4096 || hp->n_embd > (1u << 20) || hp->n_ff > (1u << 22),
             err, SI_EFORMAT, "%s: implausible hyper-parameters (layers %u, heads %u, embd %u, ff %u)", path,
             hp->n_layer, hp->n_head, hp->n_embd, hp->n_ff);
    uint32_t dflt_hd = hp->n_embd % hp->n_head == 0 ? hp->n_embd / hp->n_head : 0;
    uint32_t key_len, val_len;
    SI_TRY(get_u32_or(g, "llama.attention.key_length", dflt_hd, &key_len, err));
    SI_TRY(get_u32_or(g, "llama.attention.value_length", key_len, &val_len, err));
    SI_CHECK(key_len == 0 || key_len != val_len || key_len % 2 != 0 || key_len > 4096, err, SI_EFORMAT,
             "%s: head dimension key %u / value %u is unsupported (must be equal, even, nonzero)", path,
             key_len, val_len);
    hp->head_dim = key_len;
    SI_TRY(get_u32_or(g, "llama.rope.dimension_count", hp->head_dim, &hp->n_rot, err));
    SI_CHECK(hp->n_rot == 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0, err, SI_EFORMAT,
             "%s: llama.rope.dimension_count %u must be even and at most the head dimension %u", path,
             hp->n_rot, hp->head_dim);
    hp->rope_base = 10000.0f;
    if (si_gguf_find_key(g, "llama.rope.freq_base") >= 0)
        SI_TRY(si_gguf_get_f32(g, "llama.rope.freq_base", &hp->rope_base, err));
    hp->rms_eps = 1e-5f;
    if (si_gguf_find_key(g, "llama.attention.layer_norm_rms_epsilon") >= 0)
        SI_TRY(si_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &hp->rms_eps, err));
    /* Position scaling (linear, YaRN) changes every logit: refuse it rather than
     * compute something else. Llama 3.1's scaling comes as rope_freqs instead. */
    if (si_gguf_find_key(g, "llama.rope.scaling.type") >= 0) {
        const char *kind;
        uint64_t kind_len;
        SI_TRY(si_gguf_get_str(g, "llama.rope.scaling.type", &kind, &kind_len, err));
        float factor = 1.0f;
        if (si_gguf_find_key(g, "llama.rope.scaling.factor") >= 0)
            SI_TRY(si_gguf_get_f32(g, "llama.rope.scaling.factor", &factor, err));
        SI_CHECK(strcmp(kind, "none") != 0 && factor != 1.0f && factor != 0.0f, err, SI_EUNSUPPORTED,
                 "%s: RoPE scaling '%s' (factor %g) is not supported", path, kind, (double)factor);
    }
    SI_CHECK(!(hp->rope_base > 1.0f && hp->rope_base < 1e12f), err, SI_EFORMAT,
             "%s: llama.rope.freq_base %g is out of range", path, (double)hp->rope_base);
    SI_CHECK(!(hp->rms_eps > 0.0f && hp->rms_eps < 1.0f), err, SI_EFORMAT,
             "%s: llama.attention.layer_norm_rms_epsilon %g is out of range", path, (double)hp->rms_eps);
    return SI_OK;
}

int si_llama_desc_from_gguf(si_llama_desc *d, const si_gguf *g, si_error *err)
{
    return si_llama_desc_from_meta(d, g, find_in_gguf, g, err);
}

int si_llama_desc_from_meta(si_llama_desc *d, const si_gguf *g, si_tensor_find_fn find, const void *find_ctx,
                            si_error *err)
{
    const finder fdr = {find, find_ctx}, *fd = &fdr;
    memset(d, 0, sizeof *d);
    const char *path = si_gguf_path(g);
    si_llama_hparams *hp = &d->hp;
    SI_TRY(read_hparams(hp, g, err));
    d->file_size = si_gguf_file_size(g);

    const si_gguf_tensor *emb = fd->fn(fd->ctx, "token_embd.weight");
    SI_CHECK(!emb, err, SI_EFORMAT, "%s: tensor 'token_embd.weight' is missing", path);
    SI_CHECK(emb->n_dims != 2 || emb->ne[1] == 0 || emb->ne[1] > (1u << 24), err, SI_EFORMAT,
             "%s: tensor 'token_embd.weight' must be 2-D [n_embd, n_vocab]", path);
    hp->n_vocab = (uint32_t)emb->ne[1];
    if (si_gguf_find_key(g, "llama.vocab_size") >= 0) {
        uint32_t vs;
        SI_TRY(si_gguf_get_u32(g, "llama.vocab_size", &vs, err));
        SI_CHECK(vs != hp->n_vocab, err, SI_EFORMAT,
                 "%s: llama.vocab_size %u disagrees with token_embd.weight's %u rows", path, vs, hp->n_vocab);
    }
    uint64_t q_dim = (uint64_t)hp->n_head * hp->head_dim, kv_dim = (uint64_t)hp->n_head_kv * hp->head_dim;
    SI_TRY(tensor_ref(&d->token_embd, g, fd, "token_embd.weight", hp->n_embd, hp->n_vocab, true, err));
    SI_TRY(tensor_ref(&d->output_norm, g, fd, "output_norm.weight", hp->n_embd, 0, false, err));
    hp->tied_output = fd->fn(fd->ctx, "output.weight") == NULL;
    if (hp->tied_output)
        d->output = d->token_embd;
    else
        SI_TRY(tensor_ref(&d->output, g, fd, "output.weight", hp->n_embd, hp->n_vocab, true, err));
    if (fd->fn(fd->ctx, "rope_freqs.weight"))
        SI_TRY(tensor_ref(&d->rope_freqs, g, fd, "rope_freqs.weight", hp->n_rot / 2, 0, false, err));

    d->layers = calloc(hp->n_layer, sizeof *d->layers);
    SI_CHECK(!d->layers, err, SI_ENOMEM, "out of memory for %u layers", hp->n_layer);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        si_llama_layer_refs *L = &d->layers[l];
        char name[64];
        int rc = SI_OK;
#define LAYER_TENSOR(field, suffix, cols, rows)                                   \
    if (rc == SI_OK) {                                                           \
        snprintf(name, sizeof name, "blk.%u." suffix ".weight", l);              \
        rc = tensor_ref(&L->field, g, fd, name, (cols), (rows), (rows) != 0, err);   \
    }
        LAYER_TENSOR(attn_norm, "attn_norm", hp->n_embd, 0)
        LAYER_TENSOR(wq, "attn_q", hp->n_embd, q_dim)
        LAYER_TENSOR(wk, "attn_k", hp->n_embd, kv_dim)
        LAYER_TENSOR(wv, "attn_v", hp->n_embd, kv_dim)
        LAYER_TENSOR(wo, "attn_output", q_dim, hp->n_embd)
        LAYER_TENSOR(ffn_norm, "ffn_norm", hp->n_embd, 0)
        LAYER_TENSOR(w_gate, "ffn_gate", hp->n_embd, hp->n_ff)
        LAYER_TENSOR(w_up, "ffn_up", hp->n_embd, hp->n_ff)
        LAYER_TENSOR(w_down, "ffn_down", hp->n_ff, hp->n_embd)
#undef LAYER_TENSOR
        if (rc < 0) {
            si_llama_desc_free(d);
            return rc;
        }
    }
    return SI_OK;
}

void si_llama_desc_free(si_llama_desc *d)
{
    free(d->layers);
    d->layers = NULL;
}
