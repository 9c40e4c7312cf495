/* The AArch64 Advanced SIMD (NEON) kernel set, private to src/kernels/neon: helpers the
 * files share and the entries each file provides to si_kernels_neon (neon_ops.c).
 *
 * Baseline ARMv8.0-A Advanced SIMD only (a Cortex-A53 or A72 runs all of it); the
 * half-precision conversions (FCVTL/FCVTN) are part of that baseline. The set is built
 * into every aarch64 build, whose compilers always have Advanced SIMD. Each file is
 * empty elsewhere (SI_HAVE_NEON_SET). */
#ifndef SI_KERNELS_NEON_H
#define SI_KERNELS_NEON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "streaminfer/kernels.h"
#include "../blocks.h"
#include "../simd_sets.h"

#if defined(__aarch64__) && defined(__ARM_NEON) && (defined(__GNUC__) || defined(__clang__))
#define SI_HAVE_NEON_SET 1

#include <arm_neon.h>

#define SI_AI static inline __attribute__((always_inline))

/* Tokens dotted per decode of a weight block; a longer step decodes again per chunk. */
#define SI_NEON_TOK_CHUNK 64

/* The fp16 at p (any alignment) as a float: one FCVT. */
static inline float si_neon_h2f(const uint8_t *p)
{
    __fp16 h;
    memcpy(&h, p, 2);
    return (float)h;
}

/* Four fp16 at p, p + stride, p + 2 stride, p + 3 stride as floats: four lane loads
 * (LD1 to a lane needs no alignment on AArch64 Linux) and one conversion. */
static inline float32x4_t si_neon_h2f4(const uint8_t *p, size_t stride)
{
    uint16x4_t h = vdup_n_u16(0);
    h = vld1_lane_u16((const uint16_t *)(const void *)p, h, 0);
    h = vld1_lane_u16((const uint16_t *)(const void *)(p + stride), h, 1);
    h = vld1_lane_u16((const uint16_t *)(const void *)(p + 2 * stride), h, 2);
    h = vld1_lane_u16((const uint16_t *)(const void *)(p + 3 * stride), h, 3);
    return vcvt_f32_f16(vreinterpret_f16_u16(h));
}

/* Four halves at p as floats. */
static inline float32x4_t si_neon_ld4h(const void *p)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)p)));
}

/* Four elements from p, halves (f16) or floats, as floats; one (si_neon_ld1). */
SI_AI float32x4_t si_neon_ld4(const uint8_t *p, int f16)
{
    return f16 ? si_neon_ld4h(p) : vld1q_f32((const float *)(const void *)p);
}

SI_AI float si_neon_ld1(const uint8_t *p, int f16)
{
    if (f16)
        return si_neon_h2f(p);
    float f;
    memcpy(&f, p, 4);
    return f;
}

void si_neon_mat_dot_kq(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                        size_t act_stride, int64_t n_tok, float *out, size_t out_stride);
void si_neon_mat_dot_q80(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                         size_t act_stride, int64_t n_tok, float *out, size_t out_stride);
void si_neon_mat_dot_float(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                           const void *act, size_t act_stride, int64_t n_tok, float *out, size_t out_stride);
/* The same with the ARMv8.2 dot product (neon_dot.c); only for CPUs that have it. */
void si_neon_mat_dot_kq_dot(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                            const void *act, size_t act_stride, int64_t n_tok, float *out, size_t out_stride);
void si_neon_mat_dot_q80_dot(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                             const void *act, size_t act_stride, int64_t n_tok, float *out, size_t out_stride);
void si_neon_quantize_q8_0(const float *src, void *dst, int64_t n);
void si_neon_quantize_q8_K(const float *src, void *dst, int64_t n);
void si_neon_quantize_f16(const float *src, void *dst, int64_t n);

#endif
#endif
