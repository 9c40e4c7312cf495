/* The kernels the forward pass runs, as one swappable set.
 *
 * The C reference set defines every result (src/kernels/ref.c for the per-type
 * dequantize / quantize / dot kernels in types.h, src/kernels/ops.c for these).
 * SIMD sets (AVX2, RVV, NEON) provide some entries and are checked against the reference;
 * an entry a set does not provide falls back to the reference. The model fetches
 * the active set once when it opens. */
#ifndef STREAMINFER_KERNELS_H
#define STREAMINFER_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "streaminfer/error.h"
#include "streaminfer/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Rows of one weight tensor against every token of a step:
 *   out[t * out_stride + r] = dot(row r, activations of token t)
 * for r < n_rows, t < n_tok. Rows are row_bytes apart starting at w (any
 * alignment); token t's activations (already in the type's vec_dot_type) start at
 * act + t * act_stride. A SIMD version decodes each weight block once and reuses it
 * for every token. Q8_K activations are as the quantizers make them, codes -127..127
 * (the scale is -127 / max, so nothing reaches -128), and a kernel may rely on that. */
typedef void (*si_mat_dot_fn)(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                              const void *act, size_t act_stride, int64_t n_tok, float *out, size_t out_stride);

typedef struct si_kernels {
    const char *name; /* "c", "avx2", "rvv", "neon" */
    si_mat_dot_fn mat_dot[SI_TYPE_COUNT];         /* per weight type */
    si_from_float_fn quantize[SI_TYPE_COUNT];     /* per activation type (F32, F16, Q8_0, Q8_K) */
    /* out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i] */
    void (*rmsnorm)(float *out, const float *x, const float *w, int64_t n, float eps);
    /* g[i] = silu(g[i]) * u[i] */
    void (*silu_mul)(float *g, const float *u, int64_t n);
    /* Adjacent-pair rotation of the first n_rot dims of each of n_heads heads. */
    void (*rope)(float *v, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *inv_freq,
                 uint32_t pos);
    /* Causal attention of nh query heads that share one KV head, over n_pos positions
     * held as floats: kt is K transposed (element i of position t at kt[i * kt_stride + t])
     * and position t's values are v[t * head_dim ..]. q and out hold nh rows of head_dim.
     * Per head: scores = q.k_t * scale, softmax, out = sum_t p_t v_t. A head's result does
     * not depend on nh or on the other heads, so however the heads are split among calls
     * (and threads) the results are the same. scores has room for nh * n_pos floats. */
    void (*attend)(float *out, const float *q, uint32_t nh, const float *kt, size_t kt_stride, const float *v,
                   uint32_t n_pos, uint32_t head_dim, float scale, float *scores);
    /* A cached K or V row to floats: dst[i * dst_stride] = element i of src (F16 when
     * f16, else F32; exact) for i < n. A stride of n_pos writes K's transposed layout. */
    void (*kv_widen)(float *dst, size_t dst_stride, const void *src, bool f16, uint32_t n);
} si_kernels;

/* The active set (the best this CPU supports unless si_kernels_select chose). */
const si_kernels *si_kernels_active(void);
/* The C reference set. */
const si_kernels *si_kernels_ref(void);
/* A set by name ("c", "avx2", "rvv", "neon"); NULL when this build or this CPU lacks it. */
const si_kernels *si_kernels_get(const char *name);
/* "auto", "c", or a SIMD set's name; an error when this build or CPU lacks it. */
int si_kernels_select(const char *name, si_error *err);

#ifdef __cplusplus
}
#endif
#endif
