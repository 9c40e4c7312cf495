/* The SIMD kernel sets' constructors (private to src/kernels): each returns its set,
 * complete (entries it does not provide are the reference's), or NULL when this build
 * or this CPU lacks it. */
#ifndef SI_KERNELS_SIMD_SETS_H
#define SI_KERNELS_SIMD_SETS_H

#include "streaminfer/kernels.h"

const si_kernels *si_kernels_avx2(void);
const si_kernels *si_kernels_rvv(void);
const si_kernels *si_kernels_neon(void);

/* riscv64: the RVV set itself (src/kernels/rvv/, compiled with V), which only si_kernels_rvv
 * (rvv_detect.c) calls, after checking that the CPU has V. */
const si_kernels *si_kernels_rvv_v(void);
/* riscv64: whether this CPU (and its kernel) runs V instructions (rvv_detect.c). */
int si_cpu_has_rvv(void);

/* What a SIMD set implements, by family: every K-quant type shares one mat_dot, Q4_0
 * and Q8_0 another, F32 and F16 a third. A NULL entry keeps the reference's. */
typedef struct si_simd_entries {
    const char *name;
    si_mat_dot_fn mat_dot_kquant, mat_dot_q8_0_family, mat_dot_float;
    si_from_float_fn quantize_q8_0, quantize_q8_K, quantize_f16;
    void (*rmsnorm)(float *out, const float *x, const float *w, int64_t n, float eps);
    void (*silu_mul)(float *g, const float *u, int64_t n);
    void (*rope)(float *v, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *inv_freq, uint32_t pos);
    void (*attend)(float *out, const float *q, uint32_t nh, const float *kt, size_t kt_stride, const float *v,
                   uint32_t n_pos, uint32_t head_dim, float scale, float *scores);
    void (*kv_widen)(float *dst, size_t dst_stride, const void *src, bool f16, uint32_t n);
} si_simd_entries;

/* Attention's softmax as the reference computes it (AVX2 and NEON use it too; RVV has
 * its own with a vector exp): each of the nh rows of n scores becomes its
 * probabilities, p_t = exp(s_t - max) * (1 / sum), the sum in double. */
void si_softmax_rows(float *scores, uint32_t nh, uint32_t n);

/* The body of a SIMD set's attend (its parameters named as in si_kernels): the scores
 * of four heads at a time, then of the rest together, by SCORES(sc, n_pos, q, hd, k, kt,
 * kt_stride, scale) with k the constant count 1..4; SOFTMAX(scores, nh, n_pos); the
 * outputs the same way by VALUES(out, p, n_pos, hd, k, v). Each count is its own
 * unrolled instance of the set's inline loops. */
#define SI_ATTEND_BY4(SCORES, SOFTMAX, VALUES)                                        \
    do {                                                                              \
        for (uint32_t h_ = 0; h_ < nh; h_ += 4) {                                     \
            float *sc_ = scores + (size_t)h_ * n_pos;                                 \
            const float *q_ = q + (size_t)h_ * hd;                                    \
            switch (nh - h_) {                                                        \
            case 1: SCORES(sc_, n_pos, q_, hd, 1, kt, kt_stride, scale); break;       \
            case 2: SCORES(sc_, n_pos, q_, hd, 2, kt, kt_stride, scale); break;       \
            case 3: SCORES(sc_, n_pos, q_, hd, 3, kt, kt_stride, scale); break;       \
            default: SCORES(sc_, n_pos, q_, hd, 4, kt, kt_stride, scale); break;      \
            }                                                                         \
        }                                                                             \
        SOFTMAX(scores, nh, n_pos);                                                   \
        for (uint32_t h_ = 0; h_ < nh; h_ += 4) {                                     \
            float *o_ = out + (size_t)h_ * hd;                                        \
            const float *p_ = scores + (size_t)h_ * n_pos;                            \
            switch (nh - h_) {                                                        \
            case 1: VALUES(o_, p_, n_pos, hd, 1, v); break;                           \
            case 2: VALUES(o_, p_, n_pos, hd, 2, v); break;                           \
            case 3: VALUES(o_, p_, n_pos, hd, 3, v); break;                           \
            default: VALUES(o_, p_, n_pos, hd, 4, v); break;                          \
            }                                                                         \
        }                                                                             \
    } while (0)

/* RoPE's angles, shared by every set: c[i] = cos(pos * inv_freq[i]), s[i] = sin(...)
 * for i < n_pairs, the reference's float arithmetic and libm calls. */
void si_rope_angles(const float *inv_freq, uint32_t n_pairs, uint32_t pos, float *c, float *s);

/* The start of a SIMD set's rope: the angles of the n_rot / 2 pairs into c and s (room
 * for SI_ROPE_MAX_PAIRS each); returns the number of pairs, or 0 when there are more
 * than that, after the reference has rotated v itself. */
#define SI_ROPE_MAX_PAIRS 256
uint32_t si_rope_begin(float *v, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *inv_freq,
                       uint32_t pos, float *c, float *s);

/* One pair rotated by the reference's expressions (a SIMD set's scalar tail). */
static inline void si_rope_pair(float *p, float c, float s)
{
    const float x0 = p[0], x1 = p[1];
    p[0] = x0 * c - x1 * s;
    p[1] = x0 * s + x1 * c;
}

/* The reference set with e's entries in place of its own. */
void si_kernels_fill(si_kernels *set, const si_simd_entries *e);

#endif
