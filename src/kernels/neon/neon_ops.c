/* NEON: the per-token ops (rmsnorm, silu_mul, rope, attend) and the set itself
 * (si_kernels_neon). */
#include <math.h>

#include "neon.h"

#ifdef SI_HAVE_NEON_SET

#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20) /* the kernel's arm64 hwcap bit for SDOT/UDOT */
#endif

/* Sum of squares in double as the reference (each float square is exact in double),
 * in four lanes: the scale matches the reference's in all but rare ties of the final
 * rounding. The output is the reference's x * scale * w, two roundings. */
static void rmsnorm_neon(float *out, const float *x, const float *w, int64_t n, float eps)
{
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vld1q_f32(x + i);
        const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
        s0 = vfmaq_f64(s0, lo, lo);
        s1 = vfmaq_f64(s1, hi, hi);
    }
    double ss = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; i++)
        ss += (double)x[i] * x[i];
    const float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (i = 0; i + 4 <= n; i += 4)
        vst1q_f32(out + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
    for (; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

/* exp(x) in four lanes: x = k ln2 + r with k = round(x / ln2) (to even) and ln2 in two
 * parts (the first with a short mantissa, so k * part is exact), exp(r) by its degree-6
 * Taylor polynomial (|r| <= ln2 / 2), times 2^k built as two powers of two so that
 * results down into the subnormals and up to overflow come out right; x clamped to
 * [-104, 89] (beyond: 0 and inf), NaN passed through. */
static inline float32x4_t exp4(float32x4_t x)
{
    static const float c[] = {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
    const uint32x4_t ok = vceqq_f32(x, x);
    const float32x4_t xc = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-104.0f)), vdupq_n_f32(89.0f));
    const int32x4_t k = vcvtnq_s32_f32(vmulq_n_f32(xc, 1.44269504088896341f));
    const float32x4_t kf = vcvtq_f32_s32(k);
    float32x4_t r = vfmsq_f32(xc, kf, vdupq_n_f32(0.693145751953125f));
    r = vfmsq_f32(r, kf, vdupq_n_f32(1.42860682030941723212e-6f));
    float32x4_t p = vdupq_n_f32(c[0]);
    for (int j = 1; j < 7; j++)
        p = vfmaq_f32(vdupq_n_f32(c[j]), p, r);
    const int32x4_t k1 = vshrq_n_s32(k, 1), k2 = vsubq_s32(k, k1), bias = vdupq_n_s32(127);
    const float32x4_t e1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k1, bias), 23));
    const float32x4_t e2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k2, bias), 23));
    return vbslq_f32(ok, vmulq_f32(vmulq_f32(p, e1), e2), x);
}

/* g = g / (1 + exp(-g)) * u, the reference's operations with exp4 for expf */
static void silu_mul_neon(float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t x = vld1q_f32(g + i);
        const float32x4_t d = vaddq_f32(exp4(vnegq_f32(x)), vdupq_n_f32(1.0f));
        vst1q_f32(g + i, vmulq_f32(vdivq_f32(x, d), vld1q_f32(u + i)));
    }
    if (i < n) { /* the tail through a padded copy, so that it gets the same exp */
        float gt[4] = {0}, ut[4] = {0};
        memcpy(gt, g + i, (size_t)(n - i) * sizeof(float));
        memcpy(ut, u + i, (size_t)(n - i) * sizeof(float));
        silu_mul_neon(gt, ut, 4);
        memcpy(g + i, gt, (size_t)(n - i) * sizeof(float));
    }
}

/* Four pairs at a time, deinterleaved (LD2/ST2): x0 c - x1 s and x0 s + x1 c with a
 * separate multiply and add each, the reference's arithmetic to the bit; the angles
 * once for all heads (si_rope_angles). */
static void rope_neon(float *v, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *inv_freq,
                      uint32_t pos)
{
    float c[SI_ROPE_MAX_PAIRS], s[SI_ROPE_MAX_PAIRS];
    const uint32_t np = si_rope_begin(v, n_heads, head_dim, n_rot, inv_freq, pos, c, s);
    for (uint32_t h = 0; h < n_heads; h++) {
        float *p = v + (size_t)h * head_dim;
        uint32_t i = 0;
        for (; i + 4 <= np; i += 4) {
            const float32x4x2_t x = vld2q_f32(p + 2 * i);
            const float32x4_t cv = vld1q_f32(c + i), sv = vld1q_f32(s + i);
            float32x4x2_t y;
            y.val[0] = vsubq_f32(vmulq_f32(x.val[0], cv), vmulq_f32(x.val[1], sv));
            y.val[1] = vaddq_f32(vmulq_f32(x.val[0], sv), vmulq_f32(x.val[1], cv));
            vst2q_f32(p + 2 * i, y);
        }
        for (; i < np; i++)
            si_rope_pair(p + 2 * i, c[i], s[i]);
    }
}

static inline float32x4_t kv_ld4(const void *base, size_t i, bool f16)
{
    return f16 ? si_neon_ld4h((const uint16_t *)base + i) : vld1q_f32((const float *)base + i);
}

static inline float kv_ld1(const void *base, size_t i, bool f16)
{
    return f16 ? si_neon_h2f((const uint8_t *)((const uint16_t *)base + i)) : ((const float *)base)[i];
}

/* Scores: q.k in two FMA vectors (the reference sums in order; tolerance). Softmax as
 * the reference (si_softmax_exp). Values: out[i] += p * v[i] position by position with
 * a separate multiply and add, the reference's arithmetic. */
static void attend_neon(float *out, const float *q, const void *k, const void *v, size_t kv_stride, bool kv_f16,
                        uint32_t n_pos, uint32_t hd, float scale, float *scores)
{
    float mx = -INFINITY;
    const uint32_t hd8 = hd & ~7u, hd4 = hd & ~3u;
    for (uint32_t t = 0; t < n_pos; t++) {
        const size_t base = (size_t)t * kv_stride;
        float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
        uint32_t i = 0;
        for (; i < hd8; i += 8) {
            s0 = vfmaq_f32(s0, kv_ld4(k, base + i, kv_f16), vld1q_f32(q + i));
            s1 = vfmaq_f32(s1, kv_ld4(k, base + i + 4, kv_f16), vld1q_f32(q + i + 4));
        }
        if (i < hd4) {
            s0 = vfmaq_f32(s0, kv_ld4(k, base + i, kv_f16), vld1q_f32(q + i));
            i += 4;
        }
        float sf = vaddvq_f32(vaddq_f32(s0, s1));
        for (; i < hd; i++)
            sf += kv_ld1(k, base + i, kv_f16) * q[i];
        scores[t] = sf * scale;
        mx = scores[t] > mx ? scores[t] : mx;
    }
    const float inv = si_softmax_exp(scores, n_pos, mx);
    memset(out, 0, hd * sizeof(float));
    for (uint32_t t = 0; t < n_pos; t++) {
        const float p = scores[t] * inv;
        const size_t base = (size_t)t * kv_stride;
        uint32_t i = 0;
        for (; i < hd4; i += 4)
            vst1q_f32(out + i, vaddq_f32(vld1q_f32(out + i), vmulq_n_f32(kv_ld4(v, base + i, kv_f16), p)));
        for (; i < hd; i++)
            out[i] += p * kv_ld1(v, base + i, kv_f16);
    }
}

static si_kernels neon_set;
static bool neon_ready;

const si_kernels *si_kernels_neon(void)
{
    if (!neon_ready) {
        static const si_simd_entries e = {
            .name = "neon", .mat_dot_kquant = si_neon_mat_dot_kq, .mat_dot_q8_0_family = si_neon_mat_dot_q80,
            .mat_dot_float = si_neon_mat_dot_float, .quantize_q8_0 = si_neon_quantize_q8_0,
            .quantize_q8_K = si_neon_quantize_q8_K, .quantize_f16 = si_neon_quantize_f16, .rmsnorm = rmsnorm_neon,
            .silu_mul = silu_mul_neon, .rope = rope_neon, .attend = attend_neon};
        si_kernels_fill(&neon_set, &e);
        if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) { /* ARMv8.2 dot product: SDOT loops */
            for (uint32_t t = SI_TYPE_Q2_K; t <= SI_TYPE_Q6_K; t++)
                neon_set.mat_dot[t] = si_neon_mat_dot_kq_dot;
            neon_set.mat_dot[SI_TYPE_Q4_0] = neon_set.mat_dot[SI_TYPE_Q8_0] = si_neon_mat_dot_q80_dot;
        }
        neon_ready = true;
    }
    return &neon_set;
}

#else

const si_kernels *si_kernels_neon(void)
{
    return NULL;
}

#endif
