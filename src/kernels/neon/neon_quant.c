/* NEON: the activation quantizers (Q8_0, Q8_K, F16), byte for byte the reference's for
 * finite input.
 *
 * The reference's roundings have a NEON conversion each: Q8_0's roundf (halves away
 * from zero) is FCVTAS, Q8_K's nearest_int (halves to even) is FCVTNS, and F16's
 * round-to-nearest-even conversion is FCVTN under the default FPCR. Maxima of
 * magnitudes are exact in any order. */
#include "neon.h"

#ifdef SI_HAVE_NEON_SET

/* 16 int32 in four vectors -> 16 int8 (values within +-127) */
static inline int8x16_t narrow16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d)
{
    return vcombine_s8(vmovn_s16(vcombine_s16(vmovn_s32(a), vmovn_s32(b))),
                       vmovn_s16(vcombine_s16(vmovn_s32(c), vmovn_s32(d))));
}

void si_neon_quantize_q8_0(const float *src, void *dst, int64_t n)
{
    for (int64_t i = 0; i < n / SI_QK8_0; i++) {
        const float *x = src + i * SI_QK8_0;
        float32x4_t v[8], m = vdupq_n_f32(0.0f);
        for (int j = 0; j < 8; j++) {
            v[j] = vld1q_f32(x + 4 * j);
            m = vmaxq_f32(m, vabsq_f32(v[j]));
        }
        const float amax = vmaxvq_f32(m);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        blk_q8_0 b;
        b.d = si_fp32_to_fp16(d);
        for (int h = 0; h < 2; h++) {
            int32x4_t q[4];
            for (int j = 0; j < 4; j++)
                q[j] = vcvtaq_s32_f32(vmulq_n_f32(v[4 * h + j], id));
            vst1q_s8(b.qs + 16 * h, narrow16(q[0], q[1], q[2], q[3]));
        }
        si_blk_store(dst, i, &b);
    }
}

void si_neon_quantize_q8_K(const float *src, void *dst, int64_t n)
{
    for (int64_t i = 0; i < n / SI_QK_K; i++) {
        const float *x = src + i * SI_QK_K;
        blk_q8_K b;
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int j = 0; j < SI_QK_K; j += 4)
            m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + j)));
        const float amax = vmaxvq_f32(m);
        if (amax == 0.0f) {
            memset(&b, 0, sizeof b);
            si_blk_store(dst, i, &b);
            continue;
        }
        /* the reference takes the first element of largest magnitude, with its sign */
        float max = amax;
        for (int j = 0; j < SI_QK_K; j++)
            if (x[j] == amax || x[j] == -amax) {
                max = x[j];
                break;
            }
        const float iscale = -127.0f / max;
        const int32x4_t lim = vdupq_n_s32(127);
        for (int j = 0; j < SI_QK_K; j += 16) {
            int32x4_t q[4];
            for (int k = 0; k < 4; k++)
                q[k] = vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 4 * k), iscale)), lim);
            const int8x16_t q8 = narrow16(q[0], q[1], q[2], q[3]);
            vst1q_s8(b.qs + j, q8);
            b.bsums[j / 16] = (int16_t)vaddlvq_s8(q8);
        }
        b.d = 1.0f / iscale;
        si_blk_store(dst, i, &b);
    }
}

void si_neon_quantize_f16(const float *src, void *dst, int64_t n)
{
    uint8_t *d = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t h = vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(src + i)), vld1q_f32(src + i + 4));
        vst1q_u8(d + 2 * i, vreinterpretq_u8_f16(h));
    }
    for (; i < n; i++) {
        const uint16_t h = si_fp32_to_fp16(src[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}

#endif
