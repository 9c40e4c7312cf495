/* The rvv set's Q8_0 / Q4_0 x Q8_0 matrix kernels, at VLEN 128 and wide. */
#include "rvv.h"

#ifdef SI_HAVE_RVV_SET

/* ---- Q8_0 / Q4_0 × Q8_0 -------------------------------------------------------------- */

/* The 32 codes of a Q4_0 (nibbles less 8: elements 0..15 from the low nibbles, 16..31
 * from the high ones) or Q8_0 block at b, as bytes at e8 LMUL 2 (vl 32). */
static inline vint8m2_t ld_codes_q80(const uint8_t *b, int q4, size_t vl)
{
    if (!q4)
        return __riscv_vle8_v_i8m2((const int8_t *)b + 2, vl);
    const size_t v16 = __riscv_vsetvl_e8m1(16);
    vuint8m1_t x = __riscv_vle8_v_u8m1(b + 2, v16);
    vuint8m2_t u = __riscv_vlmul_ext_v_u8m1_u8m2(__riscv_vand_vx_u8m1(x, 15, v16));
    u = __riscv_vslideup_vx_u8m2(u, __riscv_vlmul_ext_v_u8m1_u8m2(__riscv_vsrl_vx_u8m1(x, 4, v16)), 16, vl);
    return __riscv_vsub_vx_i8m2(__riscv_vreinterpret_v_u8m2_i8m2(u), 8, vl);
}

/* VLEN 128: four blocks' codes held in v0..v7 (block k in v2k, v2k+1: 32 bytes at e8
 * LMUL 2; Q4_0's nibbles less 8, Q8_0's bytes) while every token's activations stream
 * past: per token four activation loads into the top halves of the product groups
 * v16..v31 (a widening op may overlap its source there), four vwmul e8 LMUL 2 -> e16
 * LMUL 4 (|x| <= 128 * 128), four vwredsum into 32 bits (|sum| <= 32 * 16384) against
 * the zero in v8; isum[t * ostride + k] for block k (one vector store per token). */
static inline void tok_q80x4(const uint8_t *w, int q4, const int8_t *a, size_t stride, int64_t nt, int32_t *isum,
                             size_t ostride)
{
#define SI_Q8_CODES(k, off)                      \
    "addi t0, %[w], " off "\n\t"                \
    "vle8.v v" k ", (t0)\n\t"
#define SI_Q4_CODES(k0, k1, off)                 \
    "addi t0, %[w], " off "\n\t"                \
    "vle8.v v30, (t0)\n\t"                      \
    "vand.vi v" k0 ", v30, 15\n\t"              \
    "vsrl.vi v" k1 ", v30, 4\n\t"
    __asm__ volatile(
        "beqz %[q4], 5f\n\t"
        "vsetivli zero, 16, e8, m1, ta, ma\n\t"
        SI_Q4_CODES("0", "1", "2")
        SI_Q4_CODES("2", "3", "20")
        SI_Q4_CODES("4", "5", "38")
        SI_Q4_CODES("6", "7", "56")
        "vsetvli t1, zero, e8, m8, ta, ma\n\t"
        "vadd.vi v0, v0, -8\n\t"
        "j 6f\n\t"
        "5:\n\t"
        "vsetvli t1, zero, e8, m2, ta, ma\n\t"
        SI_Q8_CODES("0", "2")
        SI_Q8_CODES("2", "36")
        SI_Q8_CODES("4", "70")
        SI_Q8_CODES("6", "104")
        "6:\n\t"
        "vsetivli zero, 1, e32, m1, ta, ma\n\t"
        "vmv.s.x v8, zero\n\t"
        "1:\n\t"
        "vsetvli t1, zero, e8, m2, ta, ma\n\t"
        "vle8.v v18, (%[a])\n\t"
        "addi t0, %[a], 34\n\t"
        "vle8.v v22, (t0)\n\t"
        "addi t0, %[a], 68\n\t"
        "vle8.v v26, (t0)\n\t"
        "addi t0, %[a], 102\n\t"
        "vle8.v v30, (t0)\n\t"
        "vwmul.vv v16, v18, v0\n\t"
        "vwmul.vv v20, v22, v2\n\t"
        "vwmul.vv v24, v26, v4\n\t"
        "vwmul.vv v28, v30, v6\n\t"
        "vsetvli t1, zero, e16, m4, ta, ma\n\t"
        "vwredsum.vs v9, v16, v8\n\t"
        "vwredsum.vs v10, v20, v8\n\t"
        "vwredsum.vs v11, v24, v8\n\t"
        "vwredsum.vs v12, v28, v8\n\t"
        /* the four sums side by side (each slide writes from its offset up) */
        "vsetivli zero, 4, e32, m1, ta, ma\n\t"
        "vslideup.vi v9, v10, 1\n\t"
        "vslideup.vi v9, v11, 2\n\t"
        "vslideup.vi v9, v12, 3\n\t"
        "vse32.v v9, (%[o])\n\t"
        "add %[o], %[o], %[os]\n\t"
        "add %[a], %[a], %[s]\n\t"
        "bne %[o], %[oe], 1b\n\t"
        : [a] "+r"(a), [o] "+r"(isum)
        : [w] "r"(w), [q4] "r"((long)q4), [s] "r"(stride), [os] "r"(ostride * sizeof(int32_t)),
          [oe] "r"(isum + (size_t)nt * ostride)
        : SI_FUSED_CLOBBER, "t1");
#undef SI_Q8_CODES
#undef SI_Q4_CODES
}

/* VLEN >= 256: eight blocks' codes in v0..v7, one register each (vl 32 at e8 LMUL 1:
 * a register holds 32 bytes or more), Q4_0's high nibbles slid up beside the low ones
 * (vslideup by 16); per token eight activation loads into the top registers of the
 * product pairs v16..v31, eight vwmul e8 LMUL 1 -> e16 LMUL 2, eight vwredsum against
 * the zero in v8 (into v9..v15 and v16), slid together and stored as one vector: the
 * loop overhead of tok_q80x4 for twice the blocks. */
static inline void tok_q80x8w(const uint8_t *w, int q4, const int8_t *a, size_t stride, int64_t nt, int32_t *isum,
                              size_t ostride)
{
#define SI_Q8W_CODES(k, off)                     \
    "addi t0, %[w], " off "\n\t"                \
    "vle8.v v" k ", (t0)\n\t"
#define SI_Q4W_CODES(k, hi, off)                 \
    "addi t0, %[w], " off "\n\t"                \
    "vle8.v v" hi ", (t0)\n\t"                  \
    "vand.vi v" k ", v" hi ", 15\n\t"           \
    "vsrl.vi v" hi ", v" hi ", 4\n\t"
#define SI_Q8W_ACT(k, off)                       \
    "addi t0, %[a], " off "\n\t"                \
    "vle8.v v" k ", (t0)\n\t"
    __asm__ volatile(
        "li t1, 32\n\t"
        "beqz %[q4], 5f\n\t"
        "vsetivli zero, 16, e8, m1, ta, ma\n\t"
        SI_Q4W_CODES("0", "24", "2")
        SI_Q4W_CODES("1", "25", "20")
        SI_Q4W_CODES("2", "26", "38")
        SI_Q4W_CODES("3", "27", "56")
        SI_Q4W_CODES("4", "28", "74")
        SI_Q4W_CODES("5", "29", "92")
        SI_Q4W_CODES("6", "30", "110")
        SI_Q4W_CODES("7", "31", "128")
        "vsetvli zero, t1, e8, m1, ta, ma\n\t"
        "vslideup.vi v0, v24, 16\n\t"
        "vslideup.vi v1, v25, 16\n\t"
        "vslideup.vi v2, v26, 16\n\t"
        "vslideup.vi v3, v27, 16\n\t"
        "vslideup.vi v4, v28, 16\n\t"
        "vslideup.vi v5, v29, 16\n\t"
        "vslideup.vi v6, v30, 16\n\t"
        "vslideup.vi v7, v31, 16\n\t"
        "vsetvli t2, zero, e8, m8, ta, ma\n\t"
        "vadd.vi v0, v0, -8\n\t"
        "j 6f\n\t"
        "5:\n\t"
        "vsetvli zero, t1, e8, m1, ta, ma\n\t"
        SI_Q8W_CODES("0", "2")
        SI_Q8W_CODES("1", "36")
        SI_Q8W_CODES("2", "70")
        SI_Q8W_CODES("3", "104")
        SI_Q8W_CODES("4", "138")
        SI_Q8W_CODES("5", "172")
        SI_Q8W_CODES("6", "206")
        SI_Q8W_CODES("7", "240")
        "6:\n\t"
        "vsetivli zero, 1, e32, m1, ta, ma\n\t"
        "vmv.s.x v8, zero\n\t"
        "1:\n\t"
        "vsetvli zero, t1, e8, m1, ta, ma\n\t"
        "vle8.v v17, (%[a])\n\t"
        SI_Q8W_ACT("19", "34")
        SI_Q8W_ACT("21", "68")
        SI_Q8W_ACT("23", "102")
        SI_Q8W_ACT("25", "136")
        SI_Q8W_ACT("27", "170")
        SI_Q8W_ACT("29", "204")
        SI_Q8W_ACT("31", "238")
        "vwmul.vv v16, v17, v0\n\t"
        "vwmul.vv v18, v19, v1\n\t"
        "vwmul.vv v20, v21, v2\n\t"
        "vwmul.vv v22, v23, v3\n\t"
        "vwmul.vv v24, v25, v4\n\t"
        "vwmul.vv v26, v27, v5\n\t"
        "vwmul.vv v28, v29, v6\n\t"
        "vwmul.vv v30, v31, v7\n\t"
        "vsetvli zero, t1, e16, m2, ta, ma\n\t"
        "vwredsum.vs v9, v16, v8\n\t"
        "vwredsum.vs v10, v18, v8\n\t"
        "vwredsum.vs v11, v20, v8\n\t"
        "vwredsum.vs v12, v22, v8\n\t"
        "vwredsum.vs v13, v24, v8\n\t"
        "vwredsum.vs v14, v26, v8\n\t"
        "vwredsum.vs v15, v28, v8\n\t"
        "vwredsum.vs v16, v30, v8\n\t"
        "vsetivli zero, 8, e32, m1, ta, ma\n\t"
        "vslideup.vi v9, v10, 1\n\t"
        "vslideup.vi v9, v11, 2\n\t"
        "vslideup.vi v9, v12, 3\n\t"
        "vslideup.vi v9, v13, 4\n\t"
        "vslideup.vi v9, v14, 5\n\t"
        "vslideup.vi v9, v15, 6\n\t"
        "vslideup.vi v9, v16, 7\n\t"
        "vse32.v v9, (%[o])\n\t"
        "add %[o], %[o], %[os]\n\t"
        "add %[a], %[a], %[s]\n\t"
        "bne %[o], %[oe], 1b\n\t"
        : [a] "+r"(a), [o] "+r"(isum)
        : [w] "r"(w), [q4] "r"((long)q4), [s] "r"(stride), [os] "r"(ostride * sizeof(int32_t)),
          [oe] "r"(isum + (size_t)nt * ostride)
        : SI_FUSED_CLOBBER, "t1", "t2");
#undef SI_Q8W_CODES
#undef SI_Q4W_CODES
#undef SI_Q8W_ACT
}

/* Q8_0 / Q4_0: per row the integer sums of every block (at VLEN 128 tok_q80x4 for four
 * blocks at a time, wide tok_q80x8w for eight; the intrinsics below for the last few),
 * then the float step block by block in order, c = isum * (dw * da) (Q8_0) or
 * (isum * dw) * da (Q4_0) as the reference's: across tokens for several, across blocks
 * with an ordered reduction for one (the same operations, so a token alone equals the
 * token in a batch). wide is a constant in each of the two instances below, so the
 * VLEN 128 one compiles to its own loop alone. */
static inline __attribute__((always_inline)) void mat_dot_q80_rows(int wide, int q4, int64_t n, const void *w,
                                                                   size_t row_bytes, int64_t n_rows, const void *act,
                                                                   size_t act_stride, int64_t n_tok, float *out,
                                                                   size_t out_stride, const float *dscale, float *dw,
                                                                   int32_t *is)
{
    const int64_t nb = n / SI_QK8_0;
    const size_t bsz = q4 ? sizeof(blk_q4_0) : sizeof(blk_q8_0);
    const vint32m1_t zero = __riscv_vmv_s_x_i32m1(0, 1);
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        gather_f16(row, bsz, nb, dw);
        for (int64_t t0 = 0; t0 < n_tok; t0 += TOK_CHUNK) {
            const int64_t nt = n_tok - t0 < TOK_CHUNK ? n_tok - t0 : TOK_CHUNK;
            const int8_t *a = (const int8_t *)act + (size_t)t0 * act_stride + 2;
            int64_t i = 0;
            if (wide)
                for (; i + 8 <= nb; i += 8)
                    tok_q80x8w(row + (size_t)i * bsz, q4, a + (size_t)i * sizeof(blk_q8_0), act_stride, nt, is + i,
                               (size_t)nb);
            else
                for (; i + 4 <= nb; i += 4)
                    tok_q80x4(row + (size_t)i * bsz, q4, a + (size_t)i * sizeof(blk_q8_0), act_stride, nt, is + i,
                              (size_t)nb);
            for (; i < nb; i++) {
                const uint8_t *b = row + (size_t)i * bsz;
                const size_t vl = __riscv_vsetvl_e8m2(32);
                const vint8m2_t wq = ld_codes_q80(b, q4, vl);
                const int8_t *y = a + (size_t)i * sizeof(blk_q8_0);
                for (int64_t t = 0; t < nt; t++, y += act_stride) {
                    vint16m4_t p = __riscv_vwmul_vv_i16m4(wq, __riscv_vle8_v_i8m2(y, vl), vl);
                    is[(size_t)t * (size_t)nb + (size_t)i] =
                        __riscv_vmv_x_s_i32m1_i32(__riscv_vwredsum_vs_i16m4_i32m1(p, zero, vl));
                }
            }
            const float *ds = dscale + (size_t)t0 * (size_t)nb;
            if (nt == 1) { /* across blocks, summed in order */
                vfloat32m1_t acc = __riscv_vfmv_s_f_f32m1(0.0f, 1);
                for (int64_t j = 0; j < nb;) {
                    const size_t vl = __riscv_vsetvl_e32m4((size_t)(nb - j));
                    vfloat32m4_t isf = __riscv_vfcvt_f_x_v_f32m4(__riscv_vle32_v_i32m4(is + j, vl), vl);
                    vfloat32m4_t d = __riscv_vle32_v_f32m4(dw + j, vl), y = __riscv_vle32_v_f32m4(ds + j, vl);
                    vfloat32m4_t c = q4 ? __riscv_vfmul_vv_f32m4(__riscv_vfmul_vv_f32m4(isf, d, vl), y, vl)
                                        : __riscv_vfmul_vv_f32m4(isf, __riscv_vfmul_vv_f32m4(d, y, vl), vl);
                    acc = __riscv_vfredosum_vs_f32m4_f32m1(c, acc, vl);
                    j += (int64_t)vl;
                }
                out[(size_t)t0 * out_stride + (size_t)r] = __riscv_vfmv_f_s_f32m1_f32(acc);
                continue;
            }
            for (int64_t t = 0; t < nt;) { /* across tokens, block by block */
                const size_t vl = __riscv_vsetvl_e32m4((size_t)(nt - t));
                vfloat32m4_t acc = __riscv_vfmv_v_f_f32m4(0.0f, vl);
                for (int64_t j = 0; j < nb; j++) {
                    vfloat32m4_t isf = __riscv_vfcvt_f_x_v_f32m4(
                        __riscv_vlse32_v_i32m4(is + (size_t)t * (size_t)nb + (size_t)j,
                                               (ptrdiff_t)((size_t)nb * sizeof(int32_t)), vl), vl);
                    vfloat32m4_t y = __riscv_vlse32_v_f32m4(ds + (size_t)t * (size_t)nb + (size_t)j,
                                                            (ptrdiff_t)((size_t)nb * sizeof(float)), vl);
                    vfloat32m4_t c = q4 ? __riscv_vfmul_vv_f32m4(__riscv_vfmul_vf_f32m4(isf, dw[j], vl), y, vl)
                                        : __riscv_vfmul_vv_f32m4(isf, __riscv_vfmul_vf_f32m4(y, dw[j], vl), vl);
                    acc = __riscv_vfadd_vv_f32m4(acc, c, vl);
                }
                __riscv_vsse32_v_f32m4(out + (size_t)(t0 + t) * out_stride + (size_t)r,
                                       (ptrdiff_t)(out_stride * sizeof(float)), acc, vl);
                t += (int64_t)vl;
            }
        }
    }
}

static void mat_dot_q80_v128(int q4, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                             size_t act_stride, int64_t n_tok, float *out, size_t out_stride, const float *dscale,
                             float *dw, int32_t *is)
{
    mat_dot_q80_rows(0, q4, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride, dscale, dw, is);
}

static void mat_dot_q80_wide(int q4, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                             size_t act_stride, int64_t n_tok, float *out, size_t out_stride, const float *dscale,
                             float *dw, int32_t *is)
{
    mat_dot_q80_rows(1, q4, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride, dscale, dw, is);
}

/* Per block and token one integer dot (exact), then the reference's float step:
 * Q8_0 sumf += isum * (dw * da), Q4_0 sumf += isum * dw * da, block by block. */
void si_rvv_mat_dot_q80_w(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                          const void *act, size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    const int64_t nb = n / SI_QK8_0;
    const float *dscale = si_rvv_gather_scales(act, act_stride, n_tok, nb, sizeof(blk_q8_0), 1);
    void *sc = dscale ? si_rvv_scratch(&si_rvv_kbuf, &si_rvv_kbuf_cap,
                                       (size_t)nb * (sizeof(float) + TOK_CHUNK * sizeof(int32_t)))
                      : NULL;
    if (!sc) { /* no memory for the scratch: the reference needs none */
        si_kernels_ref()->mat_dot[type](type, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
        return;
    }
    float *dw = sc;
    mat_dot_q80_wide(type == SI_TYPE_Q4_0, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride, dscale,
                     dw, (int32_t *)(void *)(dw + nb));
}

void si_rvv_mat_dot_q80(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                        size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    const int64_t nb = n / SI_QK8_0;
    const int q4 = type == SI_TYPE_Q4_0;
    const size_t bsz = q4 ? sizeof(blk_q4_0) : sizeof(blk_q8_0);
    const float *dscale = si_rvv_gather_scales(act, act_stride, n_tok, nb, sizeof(blk_q8_0), 1);
    void *sc = dscale && is_vlen128() ? si_rvv_scratch(&si_rvv_kbuf, &si_rvv_kbuf_cap,
                                                       (size_t)nb * (sizeof(float) + TOK_CHUNK * sizeof(int32_t)))
                                      : NULL;
    if (!dscale || (is_vlen128() && !sc)) { /* no memory for the scratch: the reference needs none */
        si_kernels_ref()->mat_dot[type](type, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
        return;
    }
    if (sc) {
        float *dw = sc;
        mat_dot_q80_v128(q4, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride, dscale, dw,
                         (int32_t *)(void *)(dw + nb));
        return;
    }
    const size_t vl = __riscv_vsetvl_e8m2(32);
    const vint32m1_t zero = __riscv_vmv_s_x_i32m1(0, 1);
    float acc[TOK_CHUNK];
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int64_t t0 = 0; t0 < n_tok; t0 += TOK_CHUNK) {
            const int64_t nt = n_tok - t0 < TOK_CHUNK ? n_tok - t0 : TOK_CHUNK;
            for (int64_t t = 0; t < nt; t++)
                acc[t] = 0.0f;
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *b = row + (size_t)i * bsz;
                const float dw = h2f(b);
                const vint8m2_t wq = ld_codes_q80(b, q4, vl);
                const uint8_t *y = (const uint8_t *)act + (size_t)t0 * act_stride + (size_t)i * sizeof(blk_q8_0) + 2;
                const float *ds = dscale + (size_t)t0 * (size_t)nb + (size_t)i;
                for (int64_t t = 0; t < nt; t++, y += act_stride, ds += nb) {
                    vint16m4_t p = __riscv_vwmul_vv_i16m4(wq, __riscv_vle8_v_i8m2((const int8_t *)y, vl), vl);
                    int32_t isum = __riscv_vmv_x_s_i32m1_i32(__riscv_vwredsum_vs_i16m4_i32m1(p, zero, vl));
                    if (q4)
                        acc[t] += (float)isum * dw * *ds;
                    else
                        acc[t] += (float)isum * (dw * *ds);
                }
            }
            for (int64_t t = 0; t < nt; t++)
                out[(size_t)(t0 + t) * out_stride + (size_t)r] = acc[t];
        }
    }
}

#endif
