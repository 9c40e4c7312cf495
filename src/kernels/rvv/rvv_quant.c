/* The rvv set's activation quantizers (Q8_0, Q8_K). */
#include "rvv.h"

#ifdef SI_HAVE_RVV_SET

/* ---- activation quantizers (bit-exact with the reference for finite input) ----------- */

/* roundf (halves away from zero) from a round-to-nearest-even conversion: only exact
 * ties can differ, and those are the lanes where v - rne(v) is +-0.5 with the sign of v. */
static inline vint32m8_t round_away(vfloat32m8_t v, size_t vl)
{
    vint32m8_t r = __riscv_vfcvt_x_f_v_i32m8(v, vl);
    vfloat32m8_t diff = __riscv_vfsub_vv_f32m8(v, __riscv_vfcvt_f_x_v_f32m8(r, vl), vl);
    vbool4_t up = __riscv_vmand_mm_b4(__riscv_vmfeq_vf_f32m8_b4(diff, 0.5f, vl), __riscv_vmfgt_vf_f32m8_b4(v, 0.0f, vl), vl);
    vbool4_t dn = __riscv_vmand_mm_b4(__riscv_vmfeq_vf_f32m8_b4(diff, -0.5f, vl), __riscv_vmflt_vf_f32m8_b4(v, 0.0f, vl), vl);
    r = __riscv_vadd_vx_i32m8_mu(up, r, r, 1, vl);
    return __riscv_vsub_vx_i32m8_mu(dn, r, r, 1, vl);
}

/* int32 codes (all within -128..127) to bytes */
static inline void store_i8(int8_t *d, vint32m8_t q, size_t vl)
{
    vint16m4_t h = __riscv_vncvt_x_x_w_i16m4(q, vl);
    __riscv_vse8_v_i8m2(d, __riscv_vncvt_x_x_w_i8m2(h, vl), vl);
}

void si_rvv_quantize_q8_0(const float *src, void *dst, int64_t n)
{
    const size_t vl = __riscv_vsetvl_e32m8(32);
    const vfloat32m1_t fz = __riscv_vfmv_s_f_f32m1(0.0f, 1);
    for (int64_t i = 0; i < n / SI_QK8_0; i++) {
        vfloat32m8_t x = __riscv_vle32_v_f32m8(src + i * SI_QK8_0, vl);
        const float amax = __riscv_vfmv_f_s_f32m1_f32(__riscv_vfredmax_vs_f32m8_f32m1(__riscv_vfabs_v_f32m8(x, vl), fz, vl));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        blk_q8_0 b;
        b.d = si_fp32_to_fp16(d);
        store_i8(b.qs, round_away(__riscv_vfmul_vf_f32m8(x, id, vl), vl), vl);
        si_blk_store(dst, i, &b);
    }
}

void si_rvv_quantize_q8_K(const float *src, void *dst, int64_t n)
{
    const vfloat32m1_t fz = __riscv_vfmv_s_f_f32m1(0.0f, 1);
    const size_t vl = __riscv_vsetvl_e32m8(32);
    for (int64_t i = 0; i < n / SI_QK_K; i++) {
        const float *x = src + i * SI_QK_K;
        blk_q8_K b;
        vfloat32m8_t m = __riscv_vfabs_v_f32m8(__riscv_vle32_v_f32m8(x, vl), vl);
        for (int j = 32; j < SI_QK_K; j += 32)
            m = __riscv_vfmax_vv_f32m8(m, __riscv_vfabs_v_f32m8(__riscv_vle32_v_f32m8(x + j, vl), vl), vl);
        const float amax = __riscv_vfmv_f_s_f32m1_f32(__riscv_vfredmax_vs_f32m8_f32m1(m, fz, vl));
        if (amax == 0.0f) {
            memset(&b, 0, sizeof b);
            si_blk_store(dst, i, &b);
            continue;
        }
        /* the reference takes the first element of largest magnitude, with its sign */
        float max = amax;
        for (int j = 0; j < SI_QK_K; j += 32) {
            long f = __riscv_vfirst_m_b4(
                __riscv_vmfeq_vf_f32m8_b4(__riscv_vfabs_v_f32m8(__riscv_vle32_v_f32m8(x + j, vl), vl), amax, vl), vl);
            if (f >= 0) {
                max = x[j + f];
                break;
            }
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < SI_QK_K; j += 32) {
            vint32m8_t q = __riscv_vfcvt_x_f_v_i32m8(__riscv_vfmul_vf_f32m8(__riscv_vle32_v_f32m8(x + j, vl), iscale, vl), vl);
            store_i8(b.qs + j, __riscv_vmin_vx_i32m8(q, 127, vl), vl);
        }
        const size_t v16 = __riscv_vsetvl_e8m1(16);
        const vint16m1_t z16 = __riscv_vmv_s_x_i16m1(0, 1);
        for (int g = 0; g < 16; g++)
            b.bsums[g] = __riscv_vmv_x_s_i16m1_i16(__riscv_vwredsum_vs_i8m1_i16m1(__riscv_vle8_v_i8m1(b.qs + 16 * g, v16), z16, v16));
        b.d = 1.0f / iscale;
        si_blk_store(dst, i, &b);
    }
}

#endif
