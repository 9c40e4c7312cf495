/* NEON: the per-token ops (rmsnorm, silu_mul, rope, attend) and the set itself
 * (si_kernels_neon). */
#include <math.h>
#include <pthread.h>

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

/* Up to four heads' scores, four positions per vector: one load of K's transposed row
 * serves every head (FMA by the query's element), no horizontal sums. A position's sum
 * runs in order with fused multiply-adds whatever nh is, the last positions with fmaf,
 * which rounds as a lane does (tolerance against the reference's unfused sum). */
static inline __attribute__((always_inline)) void scores4_neon(float *sc, uint32_t n_pos, const float *q, uint32_t hd,
                                                               int nh, const float *kt, size_t kt_stride, float scale)
{
    uint32_t t = 0;
    for (; t + 4 <= n_pos; t += 4) {
        float32x4_t a[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
        const float *kp = kt + t;
        for (uint32_t i = 0; i < hd; i++, kp += kt_stride) {
            const float32x4_t k = vld1q_f32(kp);
            for (int h = 0; h < nh; h++)
                a[h] = vfmaq_n_f32(a[h], k, q[(size_t)h * hd + i]);
        }
        for (int h = 0; h < nh; h++)
            vst1q_f32(sc + (size_t)h * n_pos + t, vmulq_n_f32(a[h], scale));
    }
    for (; t < n_pos; t++)
        for (int h = 0; h < nh; h++) {
            float s = 0.0f;
            for (uint32_t i = 0; i < hd; i++)
                s = fmaf(kt[(size_t)i * kt_stride + t], q[(size_t)h * hd + i], s);
            sc[(size_t)h * n_pos + t] = s * scale;
        }
}

/* Positions per tile of the value sums (their rows stay in the cache meanwhile) */
#define SI_NEON_ATTEND_TILE 64

/* Up to four heads' outputs, four elements per vector: one load of a value row serves
 * every head, the sums stay in registers over a tile of positions. out = out + p_t * v_t
 * position by position with a separate multiply and add, the reference's arithmetic
 * (the last elements in scalar, the same two roundings). */
static inline __attribute__((always_inline)) void values4_neon(float *out, const float *p, uint32_t n_pos, uint32_t hd,
                                                               int nh, const float *v)
{
    memset(out, 0, (size_t)nh * hd * sizeof(float));
    const uint32_t hd4 = hd & ~3u;
    for (uint32_t t0 = 0; t0 < n_pos; t0 += SI_NEON_ATTEND_TILE) {
        const uint32_t t1 = n_pos - t0 < SI_NEON_ATTEND_TILE ? n_pos : t0 + SI_NEON_ATTEND_TILE;
        for (uint32_t i = 0; i < hd4; i += 4) {
            float32x4_t a[4];
            for (int h = 0; h < nh; h++)
                a[h] = vld1q_f32(out + (size_t)h * hd + i);
            for (uint32_t t = t0; t < t1; t++) {
                const float32x4_t x = vld1q_f32(v + (size_t)t * hd + i);
                for (int h = 0; h < nh; h++)
                    a[h] = vaddq_f32(a[h], vmulq_n_f32(x, p[(size_t)h * n_pos + t]));
            }
            for (int h = 0; h < nh; h++)
                vst1q_f32(out + (size_t)h * hd + i, a[h]);
        }
        for (uint32_t i = hd4; i < hd; i++)
            for (int h = 0; h < nh; h++)
                for (uint32_t t = t0; t < t1; t++)
                    out[(size_t)h * hd + i] += p[(size_t)h * n_pos + t] * v[(size_t)t * hd + i];
    }
}

/* Four heads at a time, then the rest together. Softmax as the reference. */
static void attend_neon(float *out, const float *q, uint32_t nh, const float *kt, size_t kt_stride, const float *v,
                        uint32_t n_pos, uint32_t hd, float scale, float *scores)
{
    SI_ATTEND_BY4(scores4_neon, si_softmax_rows, values4_neon);
}

/* F16 by FCVTL (exact), four at a time (si_neon_ld4, si_neon_ld1); a strided
 * destination (K transposed) lane by lane. */
static void kv_widen_neon(float *dst, size_t dst_stride, const void *src, bool f16, uint32_t n)
{
    const uint8_t *p = src;
    const size_t esz = f16 ? 2 : 4;
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t x = si_neon_ld4(p + i * esz, f16);
        if (dst_stride == 1) {
            vst1q_f32(dst + i, x);
        } else {
            vst1q_lane_f32(dst + (size_t)i * dst_stride, x, 0);
            vst1q_lane_f32(dst + (size_t)(i + 1) * dst_stride, x, 1);
            vst1q_lane_f32(dst + (size_t)(i + 2) * dst_stride, x, 2);
            vst1q_lane_f32(dst + (size_t)(i + 3) * dst_stride, x, 3);
        }
    }
    for (; i < n; i++)
        dst[(size_t)i * dst_stride] = si_neon_ld1(p + i * esz, f16);
}

static si_kernels neon_set;
static pthread_once_t neon_once = PTHREAD_ONCE_INIT;

static void neon_init(void)
{
    static const si_simd_entries e = {
        .name = "neon", .mat_dot_kquant = si_neon_mat_dot_kq, .mat_dot_q8_0_family = si_neon_mat_dot_q80,
        .mat_dot_float = si_neon_mat_dot_float, .quantize_q8_0 = si_neon_quantize_q8_0,
        .quantize_q8_K = si_neon_quantize_q8_K, .quantize_f16 = si_neon_quantize_f16, .rmsnorm = rmsnorm_neon,
        .silu_mul = silu_mul_neon, .rope = rope_neon, .attend = attend_neon,
        .kv_widen = kv_widen_neon};
    si_kernels_fill(&neon_set, &e);
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) { /* ARMv8.2 dot product: SDOT loops */
        for (uint32_t t = SI_TYPE_Q2_K; t <= SI_TYPE_Q6_K; t++)
            neon_set.mat_dot[t] = si_neon_mat_dot_kq_dot;
        neon_set.mat_dot[SI_TYPE_Q4_0] = neon_set.mat_dot[SI_TYPE_Q8_0] = si_neon_mat_dot_q80_dot;
    }
}

/* Filled once per process, whichever threads ask first. */
const si_kernels *si_kernels_neon(void)
{
    pthread_once(&neon_once, neon_init);
    return &neon_set;
}

#else

const si_kernels *si_kernels_neon(void)
{
    return NULL;
}

#endif
