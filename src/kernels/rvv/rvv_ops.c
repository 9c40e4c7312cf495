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

static inline vfloat32m4_t kv_ld(const void *base, size_t i, bool f16, size_t vl)
{
    return f16 ? ld_f16((const uint8_t *)base + 2 * i, vl) : __riscv_vle32_v_f32m4((const float *)base + i, vl);
}

/* Scores: q.k with vfmacc and one unordered reduction per position (tolerance against
 * the reference's ordered sum). Softmax as the reference. Values: out += p * v with a
 * separate multiply and add, the reference's arithmetic element by element. */
void si_rvv_attend(float *out, const float *q, const void *k, const void *v, size_t kv_stride, bool kv_f16,
                       uint32_t n_pos, uint32_t hd, float scale, float *scores)
{
    const vfloat32m1_t fz = __riscv_vfmv_s_f_f32m1(0.0f, 1);
    float mx = -INFINITY;
    for (uint32_t t = 0; t < n_pos; t++) {
        const size_t base = (size_t)t * kv_stride;
        size_t vlmax = __riscv_vsetvlmax_e32m4();
        vfloat32m4_t s = __riscv_vfmv_v_f_f32m4(0.0f, vlmax);
        for (uint32_t i = 0; i < hd;) {
            size_t vl = __riscv_vsetvl_e32m4(hd - i);
            s = __riscv_vfmacc_vv_f32m4_tu(s, kv_ld(k, base + i, kv_f16, vl), __riscv_vle32_v_f32m4(q + i, vl), vl);
            i += (uint32_t)vl;
        }
        float sf = __riscv_vfmv_f_s_f32m1_f32(__riscv_vfredusum_vs_f32m4_f32m1(s, fz, vlmax));
        scores[t] = sf * scale;
        mx = scores[t] > mx ? scores[t] : mx;
    }
    const float inv = si_softmax_exp(scores, n_pos, mx);
    memset(out, 0, hd * sizeof(float));
    for (uint32_t t = 0; t < n_pos; t++) {
        const float p = scores[t] * inv;
        const size_t base = (size_t)t * kv_stride;
        for (uint32_t i = 0; i < hd;) {
            size_t vl = __riscv_vsetvl_e32m4(hd - i);
            vfloat32m4_t pv = __riscv_vfmul_vf_f32m4(kv_ld(v, base + i, kv_f16, vl), p, vl);
            __riscv_vse32_v_f32m4(out + i, __riscv_vfadd_vv_f32m4(__riscv_vle32_v_f32m4(out + i, vl), pv, vl), vl);
            i += (uint32_t)vl;
        }
    }
}

#endif
