/* NEON: F32 and F16 weights × activations of the same type.
 *
 * Products summed in sixteen float lanes with FMA (four vectors, so that the FMA latency
 * is hidden even at one token), added up at the end; the reference sums the float
 * products in double instead, so results differ by rounding (relative error around
 * n * 2^-24 of sum |w * a|). Rows go against two tokens per pass (a last odd token
 * alone), sharing each weight load and F16 conversion; each token's arithmetic is the
 * same whatever the pass, so its result does not depend on the batch. */
#include "neon.h"

#ifdef SI_HAVE_NEON_SET


SI_AI void float_dot(int NT, int f16, const uint8_t *row, const uint8_t *a0, size_t act_stride, int64_t n, float *res)
{
    const size_t es = f16 ? 2 : 4;
    const int64_t n16 = n & ~(int64_t)15, n4 = n & ~(int64_t)3;
    float32x4_t s[2][4];
    for (int t = 0; t < NT; t++)
        s[t][0] = s[t][1] = s[t][2] = s[t][3] = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i < n16; i += 16)
        for (int k = 0; k < 4; k++) {
            const float32x4_t wv = si_neon_ld4(row + (size_t)(i + 4 * k) * es, f16);
            for (int t = 0; t < NT; t++)
                s[t][k] = vfmaq_f32(s[t][k], wv, si_neon_ld4(a0 + (size_t)t * act_stride + (size_t)(i + 4 * k) * es, f16));
        }
    for (; i < n4; i += 4) {
        const float32x4_t wv = si_neon_ld4(row + (size_t)i * es, f16);
        for (int t = 0; t < NT; t++)
            s[t][0] = vfmaq_f32(s[t][0], wv, si_neon_ld4(a0 + (size_t)t * act_stride + (size_t)i * es, f16));
    }
    for (int t = 0; t < NT; t++) {
        float r = vaddvq_f32(vaddq_f32(vaddq_f32(s[t][0], s[t][1]), vaddq_f32(s[t][2], s[t][3])));
        const uint8_t *a = a0 + (size_t)t * act_stride;
        for (int64_t j = i; j < n; j++)
            r += si_neon_ld1(row + (size_t)j * es, f16) * si_neon_ld1(a + (size_t)j * es, f16);
        res[t] = r;
    }
}

void si_neon_mat_dot_float(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                           const void *act, size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    const int f16 = type == SI_TYPE_F16;
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int64_t t = 0; t < n_tok; t += 2) {
            float res[2];
            const uint8_t *a0 = (const uint8_t *)act + (size_t)t * act_stride;
            const int two = t + 1 < n_tok;
            if (two) /* constant arguments: float_dot specializes on them */
                f16 ? float_dot(2, 1, row, a0, act_stride, n, res) : float_dot(2, 0, row, a0, act_stride, n, res);
            else
                f16 ? float_dot(1, 1, row, a0, act_stride, n, res) : float_dot(1, 0, row, a0, act_stride, n, res);
            out[(size_t)t * out_stride + (size_t)r] = res[0];
            if (two)
                out[(size_t)(t + 1) * out_stride + (size_t)r] = res[1];
        }
    }
}

#endif
