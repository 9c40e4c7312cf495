/* The RISC-V Vector 1.0 kernel set (src/kernels/rvv/: this header's shared helpers;
 * rvv_kquant.c, rvv_q80.c, rvv_float.c, rvv_quant.c, rvv_ops.c by family; rvv_set.c the
 * set and the per-thread scratch) (ratified `__riscv_` intrinsics), for the K230's
 * C908: VLEN 128 with a 64-bit datapath, so a vector instruction costs about 2 x LMUL
 * cycles there. Compiled with V on its own (src/kernels/meson.build): the rest of a
 * riscv64 build is RV64GC and rvv_detect.c decides at run time whether this set runs.
 * Tested at VLEN 128, 256 and 512 under qemu (checkasm). Memory is read with byte loads
 * reinterpreted as wider elements wherever the address may be unaligned (weight rows,
 * activations at any offset): the C908 need not support misaligned vector element
 * accesses (the wide decodes' 64-bit segment accesses touch only their own 16-byte
 * aligned buffers).
 *
 * Matrix kernels decode each weight block once into a form the token loop multiplies
 * with directly and dot it with every token of the step (up to TOK_CHUNK per decode).
 * Two layouts, picked by what vsetvl answers (is_vlen128, kq_wide):
 *   - VLEN 128 (the K230): the K-quant blocks are decoded straight into v0..v15 as
 *     bytes, one 16-element scale group per register, and one token runs fused kernels
 *     that multiply the codes with the activations from registers; several tokens of
 *     Q3_K, Q4_K and Q6_K run transposed (rvv_kq_t16.h: register c, lane l = element
 *     16l + c, so a group's products add up in one lane), Q2_K two rows at a time
 *     (tokd2_q2_K); Q4_0/Q8_0 four blocks at a time (tok_q80x4).
 *   - VLEN >= 256 ("wide", the section "K-quants at VLEN >= 256"): a register holds
 *     several scale groups, so the block is decoded at full width through small
 *     buffers (codes repeated by strided segment loads/stores and shifted by a table,
 *     scales spread to one byte per element) and the tokens run in chunks of
 *     min(256, VLMAX at LMUL 4) elements, two or one per token where VLEN 128 takes
 *     four; one token of Q4_K/Q5_K per sub-block at vl 32 (fusedw_q4_K); Q4_0/Q8_0
 *     eight blocks at a time (tok_q80x8w). Nothing there assumes a register size: vl
 *     is asked for, and register groups are named at LMUL 4/8 (four or eight registers
 *     whatever their size), the chunk count coming from vsetvl. Except one token of
 *     Q4_K/Q5_K at VLEN 256 and 512 exactly (kernels of their own, fused256_q4_K and
 *     fused512_q4_K, where a register is one 32-element sub-block at e8 or e16).
 * The generic decode-to-buffer path below (mat_dot_kqn) is what ran at VLEN >= 256
 * before; it remains the fallback. Per type, in that path and the wide one:
 *   Q2_K, Q3_K    code * scale fits a byte (Q3_K's negated): per token four activation
 *                 loads and four widening multiplies at e8 LMUL 4, widening reductions
 *   Q4_K..Q6_K    codes times activations at e8 LMUL 4, then one vwmacc.vx per scale
 *                 group into 32-bit lanes, one reduction per token
 *   Q4_0, Q8_0    8-bit codes: vwmul + vwredsum per block (16-bit products are exact)
 * Q2_K's mins go through the Q8_K bsums per block; Q4_K/Q5_K's as one float dot per row
 * and token (dmin * mins against yd * pair-summed bsums). Integer parts are exact; float
 * parts are combined per block as in avx2.c (docs/BENCHMARKS.md lists how each kernel's
 * float order differs).
 *
 * Nothing here uses a static rounding mode (the _rm intrinsics, vfcvt.rtz): Debian 12's
 * qemu 7.2 aborts on those; conversions round with the dynamic mode, round-to-nearest-
 * even as every Linux process starts, and roundf's ties are fixed up explicitly.
 * vrgather only once per block, to spread Q4_K's 8 sub-block scales over 16 lanes at e8
 * LMUL 1 (tokt_q4_K; qemu 7.2 runs it, checkasm checks it). */

#ifndef SI_KERNELS_RVV_H
#define SI_KERNELS_RVV_H

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "streaminfer/kernels.h"
#include "../blocks.h"
#include "../simd_sets.h"

#if defined(__riscv_v_intrinsic) && __riscv_v_intrinsic >= 12000 && defined(__riscv_v) && __riscv_xlen == 64
#define SI_HAVE_RVV_SET 1

#include <riscv_vector.h>

#define TOK_CHUNK 64

/* Scalar loads from addresses that are aligned in practice (the engine's buffers and
 * GGUF's 32-byte tensor alignment; the blocks' sizes keep every field aligned) but need
 * not be: one well-predicted branch instead of the byte-by-byte loads a compiler must
 * otherwise emit for RISC-V. */
typedef float si_f32_alias __attribute__((may_alias));
typedef uint16_t si_u16_alias __attribute__((may_alias));

static inline float ld_float(const uint8_t *p)
{
    if (((uintptr_t)p & 3) == 0)
        return *(const si_f32_alias *)(const void *)p;
    float f;
    memcpy(&f, p, 4);
    return f;
}

static inline uint16_t ld_u16(const uint8_t *p)
{
    if (((uintptr_t)p & 1) == 0)
        return *(const si_u16_alias *)(const void *)p;
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* Keeps the compiler from hoisting the decoded block's loads out of the token loop: it
 * would keep 16 vector registers of weights live and spill them (a reload then costs an
 * address computation from vlenb), where a plain reload from L1 is one instruction. */
#define SI_OPAQUE(p) __asm__ volatile("" : "+r"(p))

/* fp16 -> fp32 for scales, inline in the common (normal) case. */
static inline float h2f(const uint8_t *p)
{
    uint16_t h = ld_u16(p);
    uint32_t e = (h >> 10) & 0x1F;
    if (e == 0 || e == 0x1F)
        return si_fp16_to_fp32(h);
    uint32_t u = ((uint32_t)(h & 0x8000) << 16) | (((uint32_t)(h & 0x7FFF) << 13) + (112u << 23));
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Shift left by s (right by -s): moves a bit field to where it is wanted in one op. */
static inline vuint8m1_t shl1(vuint8m1_t v, int s, size_t vl)
{
    return s >= 0 ? __riscv_vsll_vx_u8m1(v, (size_t)s, vl) : __riscv_vsrl_vx_u8m1(v, (size_t)-s, vl);
}

static inline vuint8m2_t shl2(vuint8m2_t v, int s, size_t vl)
{
    return s >= 0 ? __riscv_vsll_vx_u8m2(v, (size_t)s, vl) : __riscv_vsrl_vx_u8m2(v, (size_t)-s, vl);
}

/* What the kernels' asm statements clobber: every vector register and the vector state */
#define SI_FUSED_CLOBBER                                                                                        \
    "t0", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", \
        "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", \
        "v31", "vl", "vtype", "memory"

/* VLEN 128 (the K230), asked of vsetvl once per file that asks */
static int vlen128 = -1;

static inline __attribute__((unused)) int is_vlen128(void)
{
    if (vlen128 < 0)
        vlen128 = __riscv_vsetvlmax_e8m1() == 16;
    return vlen128;
}

/* halves to floats, exactly, without zvfh: the 15 bits below the sign shifted to a
 * float's exponent and mantissa (a widening multiply by 2^13) then scaled by 2^112 (an
 * exact multiply: normal halves land on the right exponent, subnormals and zeros come
 * out as the subnormal float times 2^112, which is their value); infinities and NaNs get
 * the all-ones exponent first; negative halves negated (a masked sign flip). */
static inline vfloat32m4_t cvt_f16(vuint16m2_t h, size_t vl)
{
    const vuint16m2_t em = __riscv_vand_vx_u16m2(h, 0x7FFF, vl);
    const vbool8_t special = __riscv_vmsgeu_vx_u16m2_b8(em, 0x7C00, vl);
    vuint32m4_t bits = __riscv_vwmulu_vx_u32m4(em, 1u << 13, vl);
    bits = __riscv_vor_vx_u32m4_mu(special, bits, bits, 0x7F800000u, vl);
    const vfloat32m4_t f = __riscv_vfmul_vf_f32m4(__riscv_vreinterpret_v_u32m4_f32m4(bits), 0x1p112f, vl);
    const vbool8_t neg = __riscv_vmsgtu_vx_u16m2_b8(h, 0x7FFF, vl);
    return __riscv_vfneg_v_f32m4_mu(neg, f, f, vl);
}

static inline vfloat32m4_t ld_f16(const uint8_t *p, size_t vl)
{
    return cvt_f16(__riscv_vreinterpret_v_u8m2_u16m2(__riscv_vle8_v_u8m2(p, 2 * vl)), vl);
}

/* fp16 at p + i * stride for i < nb (any alignment: two strided byte loads) to floats. */
static inline void gather_f16(const uint8_t *p, size_t stride, int64_t nb, float *dst)
{
    for (int64_t i = 0; i < nb;) {
        const size_t vl = __riscv_vsetvl_e16m2((size_t)(nb - i) < 16 ? (size_t)(nb - i) : 16);
        const uint8_t *q = p + (size_t)i * stride;
        vuint16m2_t lo = __riscv_vzext_vf2_u16m2(__riscv_vlse8_v_u8m1(q, (ptrdiff_t)stride, vl), vl);
        vuint16m2_t hi = __riscv_vzext_vf2_u16m2(__riscv_vlse8_v_u8m1(q + 1, (ptrdiff_t)stride, vl), vl);
        __riscv_vse32_v_f32m4(dst + i, cvt_f16(__riscv_vor_vv_u16m2(lo, __riscv_vsll_vx_u16m2(hi, 8, vl), vl), vl), vl);
        i += (int64_t)vl;
    }
}

/* vl floats at p: with al (4-byte aligned, the kernels' own buffers) one vle32, else
 * bytes reinterpreted (the C908 need not support misaligned element accesses; a byte
 * load costs a vtype switch here) */
static inline __attribute__((always_inline)) vfloat32m8_t ld_f32m8(const uint8_t *p, size_t vl, int al)
{
    if (al)
        return __riscv_vle32_v_f32m8((const float *)(const void *)p, vl);
    return __riscv_vreinterpret_v_u32m8_f32m8(__riscv_vreinterpret_v_u8m8_u32m8(__riscv_vle8_v_u8m8(p, 4 * vl)));
}

/* sum of x[i] * y[i] over n floats (al: both 4-byte aligned): lane sums (fused
 * multiply-add) over whole vectors, reduced, plus the tail's products reduced: the same
 * operations whatever the batch, so a token's result does not depend on it. (Two tokens
 * per pass, sharing x, spilled at LMUL 8 and cost more at LMUL 4.) */
static inline __attribute__((always_inline)) float dot_f32(const void *xp, const void *yp, size_t n, int al)
{
    const uint8_t *x = xp, *y = yp;
    const size_t vlmax = __riscv_vsetvlmax_e32m8();
    const vfloat32m1_t zero = __riscv_vfmv_s_f_f32m1(0.0f, 1);
    float sum = 0.0f;
    size_t i = 0;
    if (n >= vlmax) {
        vfloat32m8_t acc = __riscv_vfmul_vv_f32m8(ld_f32m8(x, vlmax, al), ld_f32m8(y, vlmax, al), vlmax);
        for (i = vlmax; i + vlmax <= n; i += vlmax)
            acc = __riscv_vfmacc_vv_f32m8(acc, ld_f32m8(x + 4 * i, vlmax, al), ld_f32m8(y + 4 * i, vlmax, al), vlmax);
        sum = __riscv_vfmv_f_s_f32m1_f32(__riscv_vfredusum_vs_f32m8_f32m1(acc, zero, vlmax));
    }
    if (i < n) {
        const size_t vl = n - i;
        vfloat32m8_t p = __riscv_vfmul_vv_f32m8(ld_f32m8(x + 4 * i, vl, al), ld_f32m8(y + 4 * i, vl, al), vl);
        sum = sum + __riscv_vfmv_f_s_f32m1_f32(__riscv_vfredusum_vs_f32m8_f32m1(p, zero, vl));
    }
    return sum;
}

/* The per-thread scratch buffers (rvv_set.c: grown by si_rvv_scratch, freed when their
 * thread ends): ybuf the activation scales of a call (si_rvv_gather_scales), gbuf the
 * K-quant mins' sums, kbuf the K-quant and Q8_0 row sums, fbuf F16 rows as floats, tbuf
 * the K-quants' transposed activations (rvv_kq_t16.h). */
#define SI_RVV_HIDDEN __attribute__((visibility("hidden")))
#define SI_RVV_SCRATCH(name)                                  \
    extern SI_RVV_HIDDEN _Thread_local void *si_rvv_##name; \
    extern SI_RVV_HIDDEN _Thread_local size_t si_rvv_##name##_cap;
SI_RVV_SCRATCH(ybuf)
SI_RVV_SCRATCH(gbuf)
SI_RVV_SCRATCH(kbuf)
SI_RVV_SCRATCH(fbuf)
SI_RVV_SCRATCH(tbuf)
#undef SI_RVV_SCRATCH
/* *buf grown to at least need bytes (kept between calls); NULL when out of memory */
SI_RVV_HIDDEN void *si_rvv_scratch(void **buf, size_t *cap, size_t need);
/* Activation scales of one call, gathered once (every row reuses them) so the float
 * step of a block runs as vector operations across the tokens (in ybuf). */
SI_RVV_HIDDEN float *si_rvv_gather_scales(const void *act, size_t act_stride, int64_t n_tok, int64_t nb, size_t bsz,
                                          int fp16);

/* The set's entries, by family */
SI_RVV_HIDDEN void si_rvv_mat_dot_kq(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                                     const void *act, size_t act_stride, int64_t n_tok, float *out, size_t out_stride);
SI_RVV_HIDDEN void si_rvv_mat_dot_kq_wide(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                                          const void *act, size_t act_stride, int64_t n_tok, float *out,
                                          size_t out_stride);
/* Q4_K and Q5_K's entry instead where si_rvv_kq_k4_fixed(): one token at VLEN 256 and 512
 * has kernels of its own */
SI_RVV_HIDDEN void si_rvv_mat_dot_k45_wide(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                                           const void *act, size_t act_stride, int64_t n_tok, float *out,
                                           size_t out_stride);
SI_RVV_HIDDEN int si_rvv_kq_k4_fixed(void);
/* the wide K-quant layout applies (VLEN >= 256 and the chunk counts it needs) */
SI_RVV_HIDDEN int si_rvv_kq_wide_layout(void);
SI_RVV_HIDDEN void si_rvv_mat_dot_q80(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                                      const void *act, size_t act_stride, int64_t n_tok, float *out, size_t out_stride);
SI_RVV_HIDDEN void si_rvv_mat_dot_q80_w(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                                        const void *act, size_t act_stride, int64_t n_tok, float *out,
                                        size_t out_stride);
SI_RVV_HIDDEN void si_rvv_mat_dot_float(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                                        const void *act, size_t act_stride, int64_t n_tok, float *out,
                                        size_t out_stride);
SI_RVV_HIDDEN void si_rvv_quantize_q8_0(const float *src, void *dst, int64_t n);
SI_RVV_HIDDEN void si_rvv_quantize_q8_K(const float *src, void *dst, int64_t n);
SI_RVV_HIDDEN void si_rvv_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);
SI_RVV_HIDDEN void si_rvv_silu_mul(float *g, const float *u, int64_t n);
SI_RVV_HIDDEN void si_rvv_rope(float *v, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *inv_freq,
                               uint32_t pos);
SI_RVV_HIDDEN void si_rvv_attend(float *out, const float *q, uint32_t nh, const float *kt, size_t kt_stride,
                                 const float *v, uint32_t n_pos, uint32_t hd, float scale, float *scores);
SI_RVV_HIDDEN void si_rvv_kv_widen(float *dst, size_t dst_stride, const void *src, bool f16, uint32_t n);

#endif /* the RVV intrinsics */
#endif
