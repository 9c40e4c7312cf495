/* The rvv set's per-token kernels: SiLU x mul, RoPE, RMSNorm, attention. */
#include "rvv.h"

#ifdef SI_HAVE_RVV_SET

/* ---- ops ----------------------------------------------------------------------------- */

/* exp(x) lane by lane: x = k ln2 + r with k = round(x / ln2) (the dynamic rounding,
 * nearest-even) and ln2 in two parts so that r (|r| <= ln2 / 2) is nearly exact; exp(r)
 * by its degree-6 Taylor polynomial (truncation below 1.3e-7 relative); 2^k applied as
 * two exact powers of two so that results from the subnormals up to overflow (inf) come
 * out right. x is clamped to [-104, 89] (beyond, the result is 0 or inf anyway); NaN
 * stays NaN. */
static inline vfloat32m4_t exp_f32(vfloat32m4_t x, size_t vl)
{
    static const float poly[] = {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
    const vbool8_t nan = __riscv_vmfne_vv_f32m4_b8(x, x, vl);
    const vfloat32m4_t xc = __riscv_vfmin_vf_f32m4(__riscv_vfmax_vf_f32m4(x, -104.0f, vl), 89.0f, vl);
    const vint32m4_t k = __riscv_vfcvt_x_f_v_i32m4(__riscv_vfmul_vf_f32m4(xc, 1.44269504088896341f, vl), vl);
    const vfloat32m4_t kf = __riscv_vfcvt_f_x_v_f32m4(k, vl);
    vfloat32m4_t r = __riscv_vfnmsac_vf_f32m4(xc, 0.693145751953125f, kf, vl);
    r = __riscv_vfnmsac_vf_f32m4(r, 1.42860682030941723212e-6f, kf, vl);
    vfloat32m4_t p = __riscv_vfmv_v_f_f32m4(poly[0], vl);
    for (int j = 1; j < 7; j++)
        p = __riscv_vfadd_vf_f32m4(__riscv_vfmul_vv_f32m4(p, r, vl), poly[j], vl);
    const vint32m4_t k1 = __riscv_vsra_vx_i32m4(k, 1, vl), k2 = __riscv_vsub_vv_i32m4(k, k1, vl);
    const vfloat32m4_t s1 = __riscv_vreinterpret_v_i32m4_f32m4(__riscv_vsll_vx_i32m4(__riscv_vadd_vx_i32m4(k1, 127, vl), 23, vl));
    const vfloat32m4_t s2 = __riscv_vreinterpret_v_i32m4_f32m4(__riscv_vsll_vx_i32m4(__riscv_vadd_vx_i32m4(k2, 127, vl), 23, vl));
    p = __riscv_vfmul_vv_f32m4(__riscv_vfmul_vv_f32m4(p, s1, vl), s2, vl);
    return __riscv_vmerge_vvm_f32m4(p, x, nan, vl);
}

/* g = g / (1 + exp(-g)) * u, the reference's operations with exp_f32 for expf */
void si_rvv_silu_mul(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n;) {
        const size_t vl = __riscv_vsetvl_e32m4((size_t)(n - i));
        vfloat32m4_t x = __riscv_vle32_v_f32m4(g + i, vl);
        vfloat32m4_t d = __riscv_vfadd_vf_f32m4(exp_f32(__riscv_vfneg_v_f32m4(x, vl), vl), 1.0f, vl);
        __riscv_vse32_v_f32m4(g + i, __riscv_vfmul_vv_f32m4(__riscv_vfdiv_vv_f32m4(x, d, vl), __riscv_vle32_v_f32m4(u + i, vl), vl), vl);
        i += (int64_t)vl;
    }
}

/* The pairs of each head as two vectors (segment loads), rotated with the reference's
 * exact arithmetic (x0 c - x1 s, x0 s + x1 c), the angles computed once for all heads. */
void si_rvv_rope(float *v, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *inv_freq, uint32_t pos)
{
    float c[SI_ROPE_MAX_PAIRS], s[SI_ROPE_MAX_PAIRS];
    const uint32_t np = si_rope_begin(v, n_heads, head_dim, n_rot, inv_freq, pos, c, s);
    for (uint32_t h = 0; h < n_heads; h++) {
        float *p = v + (size_t)h * head_dim;
        for (uint32_t i = 0; i < np;) {
            const size_t vl = __riscv_vsetvl_e32m4(np - i);
            vfloat32m4x2_t xy = __riscv_vlseg2e32_v_f32m4x2(p + 2 * i, vl);
            vfloat32m4_t x0 = __riscv_vget_v_f32m4x2_f32m4(xy, 0), x1 = __riscv_vget_v_f32m4x2_f32m4(xy, 1);
            vfloat32m4_t cv = __riscv_vle32_v_f32m4(c + i, vl), sv = __riscv_vle32_v_f32m4(s + i, vl);
            vfloat32m4_t y0 = __riscv_vfsub_vv_f32m4(__riscv_vfmul_vv_f32m4(x0, cv, vl), __riscv_vfmul_vv_f32m4(x1, sv, vl), vl);
            vfloat32m4_t y1 = __riscv_vfadd_vv_f32m4(__riscv_vfmul_vv_f32m4(x0, sv, vl), __riscv_vfmul_vv_f32m4(x1, cv, vl), vl);
            xy = __riscv_vset_v_f32m4_f32m4x2(xy, 0, y0);
            xy = __riscv_vset_v_f32m4_f32m4x2(xy, 1, y1);
            __riscv_vsseg2e32_v_f32m4x2(p + 2 * i, xy, vl);
            i += (uint32_t)vl;
        }
    }
}

/* Sum of squares widened to double as the reference (order differs: tolerance ~1 ulp of
 * the scale); the scaling is the reference's exact x * scale * w. */
void si_rvv_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps)
{
    size_t vlmax = __riscv_vsetvlmax_e32m4();
    vfloat64m8_t acc = __riscv_vfmv_v_f_f64m8(0.0, vlmax);
    for (int64_t i = 0; i < n;) {
        size_t vl = __riscv_vsetvl_e32m4((size_t)(n - i));
        vfloat32m4_t v = __riscv_vle32_v_f32m4(x + i, vl);
        acc = __riscv_vfwmacc_vv_f64m8_tu(acc, v, v, vl);
        i += (int64_t)vl;
    }
    double ss = __riscv_vfmv_f_s_f64m1_f64(__riscv_vfredusum_vs_f64m8_f64m1(acc, __riscv_vfmv_s_f_f64m1(0.0, 1), vlmax));
    const float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n;) {
        size_t vl = __riscv_vsetvl_e32m4((size_t)(n - i));
        vfloat32m4_t v = __riscv_vfmul_vf_f32m4(__riscv_vle32_v_f32m4(x + i, vl), scale, vl);
        __riscv_vse32_v_f32m4(out + i, __riscv_vfmul_vv_f32m4(v, __riscv_vle32_v_f32m4(w + i, vl), vl), vl);
        i += (int64_t)vl;
    }
}

/* Up to four heads' scores at once, positions across the lanes: per element i of the
 * head, one load of K's transposed row serves every head (vfmacc by the query's element
 * as a scalar), and no reduction is needed. A lane sums its position's products in
 * order i = 0, 1, ... with fused multiply-adds, whatever nh is (tolerance against the
 * reference's unfused sum). */
static inline __attribute__((always_inline)) void scores4(float *sc, uint32_t n_pos, const float *q, uint32_t hd,
                                                          int nh, const float *kt, size_t kt_stride, float scale)
{
    for (uint32_t t = 0; t < n_pos;) {
        const size_t vl = __riscv_vsetvl_e32m4(n_pos - t);
        vfloat32m4_t a0 = __riscv_vfmv_v_f_f32m4(0.0f, vl), a1 = a0, a2 = a0, a3 = a0;
        const float *kp = kt + t, *q0 = q, *q1 = q + hd, *q2 = q1 + hd, *q3 = q2 + hd;
        /* pointers, not 32-bit indices: each index would cost a zero extension */
        for (const float *end = q + hd; q0 < end; q0++, q1++, q2++, q3++, kp += kt_stride) {
            const vfloat32m4_t k = __riscv_vle32_v_f32m4(kp, vl);
            a0 = __riscv_vfmacc_vf_f32m4(a0, *q0, k, vl);
            if (nh > 1)
                a1 = __riscv_vfmacc_vf_f32m4(a1, *q1, k, vl);
            if (nh > 2)
                a2 = __riscv_vfmacc_vf_f32m4(a2, *q2, k, vl);
            if (nh > 3)
                a3 = __riscv_vfmacc_vf_f32m4(a3, *q3, k, vl);
        }
        __riscv_vse32_v_f32m4(sc + t, __riscv_vfmul_vf_f32m4(a0, scale, vl), vl);
        if (nh > 1)
            __riscv_vse32_v_f32m4(sc + n_pos + t, __riscv_vfmul_vf_f32m4(a1, scale, vl), vl);
        if (nh > 2)
            __riscv_vse32_v_f32m4(sc + 2 * (size_t)n_pos + t, __riscv_vfmul_vf_f32m4(a2, scale, vl), vl);
        if (nh > 3)
            __riscv_vse32_v_f32m4(sc + 3 * (size_t)n_pos + t, __riscv_vfmul_vf_f32m4(a3, scale, vl), vl);
        t += (uint32_t)vl;
    }
}

/* Positions per tile of the value sums: a tile's rows (128 floats each at Llama's head
 * size, 32 KB) stay in the cache while every slice of the head's elements passes over
 * them. */
#define SI_RVV_ATTEND_TILE 64

/* Up to four heads' outputs at once, the head's elements across the lanes: one load of a
 * value row serves every head, the sums stay in registers for a tile of positions. Per
 * element out = out + p_t * v_t position by position, fused (vfmacc: one instruction
 * where a multiply and an add were two, about a fifth of attention's cycles; the
 * reference rounds the product first, hence the tolerance). */
static inline __attribute__((always_inline)) void values4(float *out, const float *p, uint32_t n_pos, uint32_t hd,
                                                          int nh, const float *v)
{
    memset(out, 0, (size_t)nh * hd * sizeof(float));
    for (uint32_t t0 = 0; t0 < n_pos; t0 += SI_RVV_ATTEND_TILE) {
        const uint32_t t1 = n_pos - t0 < SI_RVV_ATTEND_TILE ? n_pos : t0 + SI_RVV_ATTEND_TILE;
        for (uint32_t i = 0; i < hd;) {
            const size_t vl = __riscv_vsetvl_e32m4(hd - i);
            vfloat32m4_t a0 = __riscv_vle32_v_f32m4(out + i, vl), a1 = a0, a2 = a0, a3 = a0;
            if (nh > 1)
                a1 = __riscv_vle32_v_f32m4(out + hd + i, vl);
            if (nh > 2)
                a2 = __riscv_vle32_v_f32m4(out + 2 * hd + i, vl);
            if (nh > 3)
                a3 = __riscv_vle32_v_f32m4(out + 3 * hd + i, vl);
            const float *vp = v + (size_t)t0 * hd + i, *p0 = p + t0, *p1 = p0 + n_pos, *p2 = p1 + n_pos,
                        *p3 = p2 + n_pos;
            for (const float *end = p + t1; p0 < end; p0++, p1++, p2++, p3++, vp += hd) {
                const vfloat32m4_t x = __riscv_vle32_v_f32m4(vp, vl);
                a0 = __riscv_vfmacc_vf_f32m4(a0, *p0, x, vl);
                if (nh > 1)
                    a1 = __riscv_vfmacc_vf_f32m4(a1, *p1, x, vl);
                if (nh > 2)
                    a2 = __riscv_vfmacc_vf_f32m4(a2, *p2, x, vl);
                if (nh > 3)
                    a3 = __riscv_vfmacc_vf_f32m4(a3, *p3, x, vl);
            }
            __riscv_vse32_v_f32m4(out + i, a0, vl);
            if (nh > 1)
                __riscv_vse32_v_f32m4(out + hd + i, a1, vl);
            if (nh > 2)
                __riscv_vse32_v_f32m4(out + 2 * hd + i, a2, vl);
            if (nh > 3)
                __riscv_vse32_v_f32m4(out + 3 * hd + i, a3, vl);
            i += (uint32_t)vl;
        }
    }
}

/* Each row of scores to its probabilities as the reference's softmax does, with
 * exp_f32 for expf and the sum of the exponentials in double across the lanes, reduced
 * once (tolerance: the order of the sum differs). libm's scalar expf was most of the
 * attention's instructions per position. */
static void softmax_rows(float *scores, uint32_t nh, uint32_t n)
{
    const size_t vlmax = __riscv_vsetvlmax_e32m4();
    for (uint32_t h = 0; h < nh; h++) {
        float *s = scores + (size_t)h * n;
        vfloat32m4_t vmx = __riscv_vfmv_v_f_f32m4(-INFINITY, vlmax);
        for (uint32_t t = 0; t < n;) {
            const size_t vl = __riscv_vsetvl_e32m4(n - t);
            vmx = __riscv_vfmax_vv_f32m4_tu(vmx, vmx, __riscv_vle32_v_f32m4(s + t, vl), vl);
            t += (uint32_t)vl;
        }
        const float mx = __riscv_vfmv_f_s_f32m1_f32(
            __riscv_vfredmax_vs_f32m4_f32m1(vmx, __riscv_vfmv_s_f_f32m1(-INFINITY, 1), vlmax));
        vfloat64m8_t acc = __riscv_vfmv_v_f_f64m8(0.0, vlmax);
        for (uint32_t t = 0; t < n;) {
            const size_t vl = __riscv_vsetvl_e32m4(n - t);
            const vfloat32m4_t e = exp_f32(__riscv_vfsub_vf_f32m4(__riscv_vle32_v_f32m4(s + t, vl), mx, vl), vl);
            __riscv_vse32_v_f32m4(s + t, e, vl);
            acc = __riscv_vfwadd_wv_f64m8_tu(acc, acc, e, vl);
            t += (uint32_t)vl;
        }
        const double sum = __riscv_vfmv_f_s_f64m1_f64(
            __riscv_vfredusum_vs_f64m8_f64m1(acc, __riscv_vfmv_s_f_f64m1(0.0, 1), vlmax));
        const float inv = (float)(1.0 / sum);
        for (uint32_t t = 0; t < n;) {
            const size_t vl = __riscv_vsetvl_e32m4(n - t);
            __riscv_vse32_v_f32m4(s + t, __riscv_vfmul_vf_f32m4(__riscv_vle32_v_f32m4(s + t, vl), inv, vl), vl);
            t += (uint32_t)vl;
        }
    }
}

/* Four heads at a time (a Llama 3 KV head serves four), then the rest together. */
void si_rvv_attend(float *out, const float *q, uint32_t nh, const float *kt, size_t kt_stride, const float *v,
                   uint32_t n_pos, uint32_t hd, float scale, float *scores)
{
    SI_ATTEND_BY4(scores4, softmax_rows, values4);
}

/* F16 through cvt_f16 (exact), F32 as it is; K's transposed layout by a strided store. */
void si_rvv_kv_widen(float *dst, size_t dst_stride, const void *src, bool f16, uint32_t n)
{
    for (uint32_t i = 0; i < n;) {
        const size_t vl = __riscv_vsetvl_e32m4(n - i);
        const vfloat32m4_t x = f16 ? ld_f16((const uint8_t *)src + 2 * (size_t)i, vl)
                                   : __riscv_vle32_v_f32m4((const float *)src + i, vl);
        if (dst_stride == 1)
            __riscv_vse32_v_f32m4(dst + i, x, vl);
        else
            __riscv_vsse32_v_f32m4(dst + (size_t)i * dst_stride, (ptrdiff_t)(dst_stride * sizeof(float)), x, vl);
        i += (uint32_t)vl;
    }
}

#endif
