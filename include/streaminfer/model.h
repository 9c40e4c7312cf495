/* A Llama-family model as the engine sees it: hyper-parameters and where each
 * weight tensor lives in the file. Nothing here holds weight data; the stream
 * scheduler reads it pass by pass. */
#ifndef STREAMINFER_MODEL_H
#define STREAMINFER_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "streaminfer/error.h"
#include "streaminfer/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct si_llama_hparams {
    uint32_t n_vocab;     /* classifier rows */
    uint32_t n_embd;      /* model width (dim) */
    uint32_t n_layer;
    uint32_t n_head;      /* query heads */
    uint32_t n_head_kv;   /* key/value heads; n_head % n_head_kv == 0 */
    uint32_t head_dim;    /* per head; q is n_head*head_dim wide */
    uint32_t n_rot;       /* rotated dims per head (llama.rope.dimension_count) */
    uint32_t n_ff;        /* FFN hidden width */
    uint32_t n_ctx_train; /* llama.context_length */
    float rope_base;      /* llama.rope.freq_base */
    float rms_eps;        /* llama.attention.layer_norm_rms_epsilon */
    bool tied_output;     /* no output.weight: classifier is token_embd */
} si_llama_hparams;

/* One tensor's bytes in the model file. A 2-D weight is n_rows rows of n_cols
 * elements (GGUF ne[0] = n_cols); a 1-D one has n_rows = 1. */
typedef struct si_tensor_ref {
    char name[64];
    uint32_t type;        /* si_type */
    uint64_t n_cols;
    uint64_t n_rows;
    uint64_t offset;      /* absolute file offset */
    uint64_t size;        /* n_rows * row_bytes */
    uint64_t row_bytes;
} si_tensor_ref;

typedef struct si_llama_layer_refs {
    si_tensor_ref attn_norm;   /* [n_embd] F32 */
    si_tensor_ref wq;          /* n_head*head_dim rows x n_embd */
    si_tensor_ref wk;          /* n_head_kv*head_dim rows x n_embd */
    si_tensor_ref wv;          /* n_head_kv*head_dim rows x n_embd */
    si_tensor_ref wo;          /* n_embd rows x n_head*head_dim */
    si_tensor_ref ffn_norm;    /* [n_embd] F32 */
    si_tensor_ref w_gate;      /* n_ff rows x n_embd */
    si_tensor_ref w_up;        /* n_ff rows x n_embd */
    si_tensor_ref w_down;      /* n_embd rows x n_ff */
} si_llama_layer_refs;

#define SI_LAYER_N_TENSORS 9

typedef struct si_llama_desc {
    si_llama_hparams hp;
    si_tensor_ref token_embd;  /* n_vocab rows x n_embd, read row by row */
    si_tensor_ref output_norm; /* [n_embd] F32 */
    si_tensor_ref output;      /* n_vocab rows x n_embd (= token_embd when tied) */
    si_tensor_ref rope_freqs;  /* [n_rot/2] F32, Llama 3.1 factors; size 0 when absent */
    si_llama_layer_refs *layers; /* [n_layer] */
    uint64_t file_size;
} si_llama_desc;

/* The tensors of layer l in compute order (pointers into desc). */
void si_llama_layer_tensors(const si_llama_desc *d, uint32_t l, const si_tensor_ref *out[SI_LAYER_N_TENSORS]);

/* Read hyper-parameters and tensor locations from a GGUF; refuses other
 * architectures, missing or inconsistent tensors, and types without kernels. */
int si_llama_desc_from_gguf(si_llama_desc *d, const si_gguf *g, si_error *err);
/* The same from metadata whose tensors are found elsewhere (a pack's table): find
 * returns a tensor's shape, type, first byte and raw size, or NULL. */
typedef const si_gguf_tensor *(*si_tensor_find_fn)(const void *ctx, const char *name);
int si_llama_desc_from_meta(si_llama_desc *d, const si_gguf *meta, si_tensor_find_fn find, const void *find_ctx,
                            si_error *err);
void si_llama_desc_free(si_llama_desc *d);

#ifdef __cplusplus
}
#endif
#endif
