/* The rvv set's K-quant matrix kernels (Q2_K..Q6_K x Q8_K): the VLEN 128 layout and
 * the wide one (rvv.h tells both). The block helpers, the float combine and the entries
 * are here; the kernels are in the parts this file includes once, in order (one
 * translation unit, so the compiler sees them as before the split):
 *   rvv_kq_tok128.h    several tokens, VLEN 128, Q2_K and Q3_K
 *   rvv_kq_tokwide.h   several tokens, VLEN >= 256, Q2_K and Q3_K
 *   rvv_kq_fused128.h  one token, VLEN 128, every K-quant
 *   rvv_kq_tok456.h    several tokens, VLEN 128, Q5_K
 *   rvv_kq_t16.h       several tokens, VLEN 128, Q3_K, Q4_K and Q6_K (transposed)
 *   rvv_kq_wide456.h   VLEN >= 256, Q4_K, Q5_K and Q6_K, several tokens and one */
#include "rvv.h"

#ifdef SI_HAVE_RVV_SET

/* ---- K-quants × Q8_K ------------------------------------------------------------------ */

/* a K-quant block's size and where its fp16 d and (Q2_K, Q4_K, Q5_K) dmin are */
static inline size_t kq_bsz(uint32_t type)
{
    return type == SI_TYPE_Q2_K   ? sizeof(blk_q2_K)
           : type == SI_TYPE_Q3_K ? sizeof(blk_q3_K)
           : type == SI_TYPE_Q4_K ? sizeof(blk_q4_K)
           : type == SI_TYPE_Q5_K ? sizeof(blk_q5_K)
                                  : sizeof(blk_q6_K);
}

static inline size_t kq_doff(uint32_t type)
{
    return type == SI_TYPE_Q2_K   ? offsetof(blk_q2_K, d)
           : type == SI_TYPE_Q3_K ? offsetof(blk_q3_K, d)
           : type == SI_TYPE_Q6_K ? offsetof(blk_q6_K, d)
                                  : offsetof(blk_q4_K, d);
}

static inline size_t kq_moff(uint32_t type)
{
    return type == SI_TYPE_Q2_K ? offsetof(blk_q2_K, dmin) : offsetof(blk_q4_K, dmin);
}

/* the types whose several-token loops at VLEN 128 take transposed activations */
static inline int kq_t16(uint32_t type)
{
    return type == SI_TYPE_Q3_K || type == SI_TYPE_Q4_K || type == SI_TYPE_Q6_K;
}

static inline int kq_has_min(uint32_t type)
{
    return type == SI_TYPE_Q2_K || type == SI_TYPE_Q4_K || type == SI_TYPE_Q5_K;
}

/* A decoded block: Q2_K keeps prescaled bytes in w8, the others 16-bit w16 (with the code
 * bias of Q3_K/Q6_K folded in, so only Q2_K/Q4_K/Q5_K need their mins). */
typedef struct {
    union {
        uint8_t w8[SI_QK_K];
        int16_t w16[SI_QK_K];
    };
    int16_t mn[16];
    float d, dmin;
} rdec;

/* Q2_K: code * scale per 16-element group; vectors of 16 (LMUL 1), one scale each. */
static inline void dec_q2_K(const uint8_t *p, rdec *k)
{
    const uint8_t *qs = p + offsetof(blk_q2_K, qs), *scales = p + offsetof(blk_q2_K, scales);
    const size_t vl = __riscv_vsetvl_e8m1(16);
    for (int h = 0; h < 2; h++)
        for (int part = 0; part < 2; part++) {
            vuint8m1_t x = __riscv_vle8_v_u8m1(qs + 32 * h + 16 * part, vl);
            for (int j = 0; j < 4; j++) {
                const int g = 8 * h + 2 * j + part;
                vuint8m1_t c = j == 3 ? __riscv_vsrl_vx_u8m1(x, 6, vl)
                             : j == 0 ? __riscv_vand_vx_u8m1(x, 3, vl)
                                      : __riscv_vand_vx_u8m1(__riscv_vsrl_vx_u8m1(x, 2 * j, vl), 3, vl);
                __riscv_vse8_v_u8m1(k->w8 + 16 * g, __riscv_vmul_vx_u8m1(c, scales[g] & 15, vl), vl);
            }
        }
    vuint8m1_t sc = __riscv_vsrl_vx_u8m1(__riscv_vle8_v_u8m1(scales, vl), 4, vl);
    __riscv_vse16_v_i16m2(k->mn, __riscv_vreinterpret_v_u16m2_i16m2(__riscv_vzext_vf2_u16m2(sc, vl)), vl);
    k->d = h2f(p + offsetof(blk_q2_K, d));
    k->dmin = h2f(p + offsetof(blk_q2_K, dmin));
}

/* Q4_K/Q5_K: 32-element sub-blocks, e8 LMUL 2 widened to e16 LMUL 4. */
static inline void dec_q45_K(const uint8_t *p, rdec *k, int has_qh)
{
    const uint8_t *qs = p + (has_qh ? offsetof(blk_q5_K, qs) : offsetof(blk_q4_K, qs));
    const uint8_t *scales = p + offsetof(blk_q4_K, scales);
    const size_t vl = __riscv_vsetvl_e8m2(32);
    vuint8m2_t hb = __riscv_vmv_v_x_u8m2(0, vl);
    if (has_qh)
        hb = __riscv_vle8_v_u8m2(p + offsetof(blk_q5_K, qh), vl);
    for (int s2 = 0; s2 < 4; s2++) {
        vuint8m2_t x = __riscv_vle8_v_u8m2(qs + 32 * s2, vl);
        for (int o = 0; o < 2; o++) {
            const int s = 2 * s2 + o;
            uint8_t sc, m;
            si_k4_scale_min(scales, s, &sc, &m);
            vuint8m2_t c = o ? __riscv_vsrl_vx_u8m2(x, 4, vl) : __riscv_vand_vx_u8m2(x, 15, vl);
            if (has_qh) /* bit s of qh becomes bit 4 */
                c = __riscv_vor_vv_u8m2(c, __riscv_vand_vx_u8m2(shl2(hb, 4 - s, vl), 16, vl), vl);
            vuint16m4_t w = __riscv_vwmulu_vx_u16m4(c, sc, vl);
            __riscv_vse16_v_i16m4(k->w16 + 32 * s, __riscv_vreinterpret_v_u16m4_i16m4(w), vl);
            k->mn[2 * s] = k->mn[2 * s + 1] = m;
        }
    }
    k->d = h2f(p + offsetof(blk_q4_K, d));
    k->dmin = h2f(p + offsetof(blk_q4_K, dmin));
}

/* Q3_K: 16-element groups; (code | hbit << 2) - 4 in -4..3 times scale - 32 in -32..31
 * spans -124..128, one value too wide for a byte, so the block is stored negated
 * (-128..124, exact in a byte) and the token loop negates its sums back. */
static inline void dec_q3_K(const uint8_t *p, rdec *k)
{
    const uint8_t *hm = p + offsetof(blk_q3_K, hmask), *qs = p + offsetof(blk_q3_K, qs);
    const uint8_t *scales = p + offsetof(blk_q3_K, scales);
    const size_t vl = __riscv_vsetvl_e8m1(16);
    for (int part = 0; part < 2; part++) {
        vuint8m1_t hv = __riscv_vle8_v_u8m1(hm + 16 * part, vl);
        for (int h = 0; h < 2; h++) {
            vuint8m1_t x = __riscv_vle8_v_u8m1(qs + 32 * h + 16 * part, vl);
            for (int j = 0; j < 4; j++) {
                const int g = 8 * h + 2 * j + part;
                vuint8m1_t c = __riscv_vand_vx_u8m1(shl1(x, -2 * j, vl), 3, vl);
                c = __riscv_vor_vv_u8m1(c, __riscv_vand_vx_u8m1(shl1(hv, 2 - (4 * h + j), vl), 4, vl), vl);
                vint8m1_t cs = __riscv_vsub_vx_i8m1(__riscv_vreinterpret_v_u8m1_i8m1(c), 4, vl);
                vint8m1_t w = __riscv_vmul_vx_i8m1(cs, (int8_t)(32 - si_q3_K_scale(scales, g)), vl);
                __riscv_vse8_v_i8m1((int8_t *)k->w8 + 16 * g, w, vl);
            }
        }
    }
    k->d = h2f(p + offsetof(blk_q3_K, d));
}

/* Q6_K: 16-element groups; ((low nibble | 2 high bits << 4) - 32) * scale. */
static inline void dec_q6_K(const uint8_t *p, rdec *k)
{
    const uint8_t *ql = p + offsetof(blk_q6_K, ql), *qh = p + offsetof(blk_q6_K, qh);
    const int8_t *scales = (const int8_t *)(p + offsetof(blk_q6_K, scales));
    const size_t vl = __riscv_vsetvl_e8m1(16);
    for (int h = 0; h < 2; h++)
        for (int part = 0; part < 2; part++) {
            vuint8m1_t hv = __riscv_vle8_v_u8m1(qh + 32 * h + 16 * part, vl);
            vuint8m1_t l0 = __riscv_vle8_v_u8m1(ql + 64 * h + 16 * part, vl);
            vuint8m1_t l1 = __riscv_vle8_v_u8m1(ql + 64 * h + 32 + 16 * part, vl);
            for (int qu = 0; qu < 4; qu++) {
                const int g = 8 * h + 2 * qu + part;
                vuint8m1_t lo = (qu & 1) ? l1 : l0;
                lo = (qu >> 1) ? __riscv_vsrl_vx_u8m1(lo, 4, vl) : __riscv_vand_vx_u8m1(lo, 15, vl);
                vuint8m1_t hi = __riscv_vand_vx_u8m1(shl1(hv, 4 - 2 * qu, vl), 0x30, vl);
                vint8m1_t cs = __riscv_vsub_vx_i8m1(__riscv_vreinterpret_v_u8m1_i8m1(__riscv_vor_vv_u8m1(lo, hi, vl)), 32, vl);
                __riscv_vse16_v_i16m2(k->w16 + 16 * g, __riscv_vwmul_vx_i16m2(cs, scales[g], vl), vl);
            }
        }
    k->d = h2f(p + offsetof(blk_q6_K, d));
}

/* 16 bsums (bytes 260.. of a Q8_K block) times the 16 mins; al2: the block is 2-byte
 * aligned (always, in the engine), else the bsums are read as bytes. */
static inline int32_t dot_mins(const int16_t *mn, const uint8_t *y, int al2)
{
    const size_t vl = __riscv_vsetvl_e16m2(16);
    const uint8_t *b = y + offsetof(blk_q8_K, bsums);
    vint16m2_t bs = al2 ? __riscv_vle16_v_i16m2((const int16_t *)(const void *)b, vl)
                        : __riscv_vreinterpret_v_i8m2_i16m2(__riscv_vle8_v_i8m2((const int8_t *)b, 2 * vl));
    vint32m4_t p = __riscv_vwmul_vv_i32m4(bs, __riscv_vle16_v_i16m2(mn, vl), vl);
    return __riscv_vmv_x_s_i32m1_i32(__riscv_vredsum_vs_i32m4_i32m1(p, __riscv_vmv_s_x_i32m1(0, 1), vl));
}

#include "rvv_kq_tok128.h"
#include "rvv_kq_tokwide.h"

/* acc[t] += (yd[t] * d) * isum[t] - (yd[t] * dmin) * summ[t] for the tokens of a chunk
 * (with_min), else acc[t] += (d * yd[t]) * isum[t]; yd[t] = yds[t * ystride]. Separate
 * multiplies and adds, lane by lane: a token's result does not depend on the batch. */
static inline void combine(float *acc, const int32_t *isum, const int32_t *summ, const float *yds, size_t ystride,
                           int64_t nt, float d, float dmin, int with_min)
{
    for (int64_t t = 0; t < nt;) {
        const size_t vl = __riscv_vsetvl_e32m4((size_t)(nt - t));
        vfloat32m4_t yd = __riscv_vlse32_v_f32m4(yds + (size_t)t * ystride, (ptrdiff_t)(ystride * sizeof(float)), vl);
        vfloat32m4_t c = __riscv_vfmul_vv_f32m4(__riscv_vfmul_vf_f32m4(yd, d, vl),
                                                __riscv_vfcvt_f_x_v_f32m4(__riscv_vle32_v_i32m4(isum + t, vl), vl), vl);
        if (with_min)
            c = __riscv_vfsub_vv_f32m4(c, __riscv_vfmul_vv_f32m4(__riscv_vfmul_vf_f32m4(yd, dmin, vl),
                __riscv_vfcvt_f_x_v_f32m4(__riscv_vle32_v_i32m4(summ + t, vl), vl), vl), vl);
        __riscv_vse32_v_f32m4(acc + t, __riscv_vfadd_vv_f32m4(__riscv_vle32_v_f32m4(acc + t, vl), c, vl), vl);
        t += (int64_t)vl;
    }
}

#include "rvv_kq_fused128.h"
#include "rvv_kq_tok456.h"
#include "rvv_kq_t16.h"
#include "rvv_kq_wide456.h"

/* G[t][8i + s] = yd_t[i] * (bsums_t[i][2s] + bsums_t[i][2s + 1]), once per call: the
 * activations' side of the Q4_K/Q5_K mins (one pair sum per 32-element sub-block), which
 * every row dots with its dmin * mins. */

static const float *gather_mins_g(const void *act, size_t act_stride, int64_t n_tok, int64_t nb, const float *yall)
{
    float *g = si_rvv_scratch(&si_rvv_gbuf, &si_rvv_gbuf_cap, (size_t)nb * 8 * (size_t)n_tok * sizeof(float));
    if (!g)
        return NULL;
    const size_t vl = __riscv_vsetvl_e16m1(8);
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < nb; i++) {
            const uint8_t *bs = (const uint8_t *)act + (size_t)t * act_stride + (size_t)i * sizeof(blk_q8_K) +
                                offsetof(blk_q8_K, bsums);
            /* the 16 bsums as 8 words (bytes: any alignment), their halves added */
            vint32m2_t w = __riscv_vreinterpret_v_i8m2_i32m2(__riscv_vle8_v_i8m2((const int8_t *)bs, 4 * vl));
            vint16m1_t pair = __riscv_vadd_vv_i16m1(__riscv_vnsra_wx_i16m1(w, 0, vl), __riscv_vnsra_wx_i16m1(w, 16, vl), vl);
            vfloat32m2_t f = __riscv_vfwcvt_f_x_v_f32m2(pair, vl);
            __riscv_vse32_v_f32m2(g + ((size_t)t * (size_t)nb + (size_t)i) * 8,
                                  __riscv_vfmul_vf_f32m2(f, yall[(size_t)t * (size_t)nb + (size_t)i], vl), vl);
        }
    return g;
}


/* One token: per block the fused kernel, then the float step exactly as combine_row's
 * (a token's result must not depend on its batch); Q4_K/Q5_K's mins as one dot per row
 * (fm: the row's dmin * mins, g: the token's G). */
static inline __attribute__((always_inline)) void mat_dot_kq1(uint32_t type, int64_t n, const void *w, size_t row_bytes,
                                                              int64_t n_rows, const void *act, float *out,
                                                              const float *yd, float *fm, const float *g)
{
    const size_t bsz = kq_bsz(type), doff = kq_doff(type), moff = kq_moff(type);
    const int has_min = kq_has_min(type), k4 = type == SI_TYPE_Q4_K || type == SI_TYPE_Q5_K;
    const int64_t nb = n / SI_QK_K;
    float dd[64], dm[64];
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        float acc = 0.0f;
        for (int64_t i0 = 0; i0 < nb; i0 += 64) {
            const int64_t nc = nb - i0 < 64 ? nb - i0 : 64;
            gather_f16(row + (size_t)i0 * bsz + doff, bsz, nc, dd);
            if (has_min)
                gather_f16(row + (size_t)i0 * bsz + moff, bsz, nc, dm);
            for (int64_t i = i0; i < i0 + nc; i++) {
                const uint8_t *b = row + (size_t)i * bsz;
                const uint8_t *y = (const uint8_t *)act + (size_t)i * sizeof(blk_q8_K);
                const int8_t *yq = (const int8_t *)y + offsetof(blk_q8_K, qs);
                const uint8_t *bs = y + offsetof(blk_q8_K, bsums);
                int32_t is, ms = 0;
                switch (type) {
                case SI_TYPE_Q2_K:
                    fused_q2_K(b, yq, bs, &is, &ms);
                    break;
                case SI_TYPE_Q3_K:
                    is = fused_q3_K(b, yq);
                    break;
                case SI_TYPE_Q4_K:
                    is = fused_q4_K(b, yq, dm[i - i0], fm + (size_t)i * 8);
                    break;
                case SI_TYPE_Q5_K:
                    is = fused_q5_K(b, yq, dm[i - i0], fm + (size_t)i * 8);
                    break;
                default:
                    is = fused_q6_K(b, yq, bs);
                    break;
                }
                float c = dd[i - i0] * (float)is;
                if (type == SI_TYPE_Q2_K)
                    c = fmaf(-dm[i - i0], (float)ms, c);
                acc = fmaf(yd[i], c, acc);
            }
        }
        if (k4)
            acc = acc - dot_f32(fm, g, (size_t)nb * 8, 1);
        out[r] = acc;
    }
}

/* Float order per token: block contributions added block by block, Q2_K's as the
 * reference's (the reference's compiler may fuse its multiply-add); Q3_K..Q6_K's
 * reference keeps eight lane sums instead. */
static inline __attribute__((always_inline)) void mat_dot_kqn(uint32_t type, int64_t n, const void *w, size_t row_bytes,
                                                              int64_t n_rows, const void *act, size_t act_stride,
                                                              int64_t n_tok, float *out, size_t out_stride,
                                                              const float *yall, int al2);
static inline __attribute__((always_inline)) void mat_dot_kq8(uint32_t type, int64_t n, const void *w, size_t row_bytes,
                                                              int64_t n_rows, const void *act, size_t act_stride,
                                                              int64_t n_tok, float *out, size_t out_stride,
                                                              const float *yall, const float *g, int wide,
                                                              int8_t *at);

/* One token at VLEN >= 256: per block the wide decode and one pass of its token loop,
 * then the float step in scalars, the same operations as combine_row's for a token in a
 * batch (Q4_K/Q5_K's mins as one dot per row, fm: the row's dmin * mins, g: the
 * token's G). Q4_K/Q5_K run fusedw_q4_K/fusedw_q5_K, or with kv 256 or 512 (a constant,
 * kq_k4_vlen()) fused256_q4_K/fused256_q5_K or fused512_q4_K/fused512_q5_K. */
static inline __attribute__((always_inline)) void mat_dot_kqw1(uint32_t type, int wide, int kv, int64_t n,
                                                               const void *w, size_t row_bytes, int64_t n_rows,
                                                               const void *act, float *out, const float *yd, float *fm,
                                                               const float *g)
{
    const size_t bsz = kq_bsz(type), doff = kq_doff(type), moff = kq_moff(type);
    const int has_min = kq_has_min(type), k4 = type == SI_TYPE_Q4_K || type == SI_TYPE_Q5_K;
    const int c16 = kq_wide16();
    const int64_t nb = n / SI_QK_K;
    float dd[64], dm[64];
    wscratch ws;
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        float acc = 0.0f;
        for (int64_t i0 = 0; i0 < nb; i0 += 64) {
            const int64_t nc = nb - i0 < 64 ? nb - i0 : 64;
            gather_f16(row + (size_t)i0 * bsz + doff, bsz, nc, dd);
            if (has_min)
                gather_f16(row + (size_t)i0 * bsz + moff, bsz, nc, dm);
            for (int64_t i = i0; i < i0 + nc; i++) {
                const uint8_t *b = row + (size_t)i * bsz;
                const int8_t *yq = (const int8_t *)act + (size_t)i * sizeof(blk_q8_K) + offsetof(blk_q8_K, qs);
                int32_t is, ms = 0;
                float c;
                switch (type) {
                case SI_TYPE_Q2_K:
                    tokw_q2_K(wide, b, yq, 0, 1, &is, &ms, &ws);
                    c = fmaf(-dm[i - i0], (float)ms, dd[i - i0] * (float)is);
                    break;
                case SI_TYPE_Q3_K: /* negated block, negated d (as mat_dot_kq8) */
                    tokw_q3_K(wide, b, yq, 0, 1, &is, &ws);
                    c = -dd[i - i0] * (float)is;
                    break;
                case SI_TYPE_Q4_K:
                    is = kv == 256   ? fused256_q4_K(b, yq, dm[i - i0], fm + (size_t)i * 8, ws.t)
                         : kv == 512 ? fused512_q4_K(b, yq, dm[i - i0], fm + (size_t)i * 8, ws.t)
                                     : fusedw_q4_K(b, yq, dm[i - i0], fm + (size_t)i * 8, ws.t);
                    c = dd[i - i0] * (float)is;
                    break;
                case SI_TYPE_Q5_K:
                    is = kv == 256   ? fused256_q5_K(b, yq, dm[i - i0], fm + (size_t)i * 8, ws.t)
                         : kv == 512 ? fused512_q5_K(b, yq, dm[i - i0], fm + (size_t)i * 8, ws.t)
                                     : fusedw_q5_K(b, yq, dm[i - i0], fm + (size_t)i * 8, ws.t);
                    c = dd[i - i0] * (float)is;
                    break;
                default:
                    tokw_q6_K(wide, c16, b, yq, 0, 1, &is, &ws);
                    c = dd[i - i0] * (float)is;
                    break;
                }
                acc = fmaf(yd[i], c, acc);
            }
        }
        if (k4)
            acc = acc - dot_f32(fm, g, (size_t)nb * 8, 1);
        out[r] = acc;
    }
}

/* The VLEN 128 loops' scratch: the row's dmin * mins (Q4_K/Q5_K), and for several tokens
 * per row (Q2_K: per pair of rows) d and dmin of every block and per token chunk every
 * block's integer sums */

/* A call's activation scales (yall, in ybuf) and, when its rows decode into the kbuf
 * scratch (rows_scratch), that scratch and Q4_K/Q5_K's mins sums (*g, else NULL); NULL
 * when out of memory, and the caller runs the reference, which needs none. */
static const float *kq_prepare(uint32_t type, int64_t nb, const void *act, size_t act_stride, int64_t n_tok,
                               int rows_scratch, const float **g)
{
    *g = NULL;
    const float *yall = si_rvv_gather_scales(act, act_stride, n_tok, nb, sizeof(blk_q8_K), 0);
    if (!yall || !rows_scratch)
        return yall;
    const size_t need = (size_t)nb * (8 * sizeof(float) + 4 * sizeof(float) + 6 * TOK_CHUNK * sizeof(int32_t)) +
                        TOK_CHUNK * sizeof(float);
    if (!si_rvv_scratch(&si_rvv_kbuf, &si_rvv_kbuf_cap, need))
        return NULL;
    if ((type == SI_TYPE_Q4_K || type == SI_TYPE_Q5_K) && !(*g = gather_mins_g(act, act_stride, n_tok, nb, yall)))
        return NULL;
    return yall;
}

/* constant types: one specialized loop each (both entries below) */
#define SI_KQ_DISPATCH(call)                            \
    switch (type) {                                     \
    case SI_TYPE_Q2_K: call(SI_TYPE_Q2_K); break;       \
    case SI_TYPE_Q3_K: call(SI_TYPE_Q3_K); break;       \
    case SI_TYPE_Q4_K: call(SI_TYPE_Q4_K); break;       \
    case SI_TYPE_Q5_K: call(SI_TYPE_Q5_K); break;       \
    default: call(SI_TYPE_Q6_K); break;                 \
    }

/* One token of Q4_K/Q5_K at VLEN 256 or 512 (kq_k4_vlen()): that VLEN's kernels
 * (fused256_q4_K, fused512_q4_K), apart from si_rvv_mat_dot_kq_wide so that its loops
 * compile as they did without them (one large function: code added to it moves its
 * register allocation and stack slots, which cost other types instructions per block). */
static __attribute__((noinline)) void mat_dot_k4v1(uint32_t type, int64_t n, const void *w, size_t row_bytes,
                                                   int64_t n_rows, const void *act, size_t act_stride, float *out,
                                                   size_t out_stride)
{
    const int64_t nb = n / SI_QK_K;
    const int wide = kq_wide(), kv = kq_k4_vlen();
    const float *g;
    const float *yall = kq_prepare(type, nb, act, act_stride, 1, 1, &g);
    float *fm = (float *)(void *)si_rvv_kbuf;
    if (!yall) /* no memory for the scratch: the reference needs none */
        si_kernels_ref()->mat_dot[type](type, n, w, row_bytes, n_rows, act, act_stride, 1, out, out_stride);
    else if (kv == 256 && type == SI_TYPE_Q4_K)
        mat_dot_kqw1(SI_TYPE_Q4_K, wide, 256, n, w, row_bytes, n_rows, act, out, yall, fm, g);
    else if (kv == 256)
        mat_dot_kqw1(SI_TYPE_Q5_K, wide, 256, n, w, row_bytes, n_rows, act, out, yall, fm, g);
    else if (type == SI_TYPE_Q4_K)
        mat_dot_kqw1(SI_TYPE_Q4_K, wide, 512, n, w, row_bytes, n_rows, act, out, yall, fm, g);
    else
        mat_dot_kqw1(SI_TYPE_Q5_K, wide, 512, n, w, row_bytes, n_rows, act, out, yall, fm, g);
}

/* si_rvv_mat_dot_kq at VLEN >= 256 (wide: the chunks of kq_wide()), the set's entry there
 * (si_kernels_rvv_v), apart from si_rvv_mat_dot_kq so that the VLEN 128 loops stay as they
 * were compiled */
void si_rvv_mat_dot_kq_wide(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                            const void *act, size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    const int64_t nb = n / SI_QK_K, wide = kq_wide();
    const float *g;
    const float *yall = kq_prepare(type, nb, act, act_stride, n_tok, 1, &g);
    if (!yall) { /* no memory for the scratch: the reference needs none */
        si_kernels_ref()->mat_dot[type](type, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
        return;
    }
#define SI_KQW1(T) \
    mat_dot_kqw1(T, (int)wide, 0, n, w, row_bytes, n_rows, act, out, yall, (float *)(void *)si_rvv_kbuf, g)
#define SI_KQ8W(T) \
    mat_dot_kq8(T, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride, yall, g, (int)wide, NULL)
    if (n_tok == 1)
        SI_KQ_DISPATCH(SI_KQW1)
    else
        SI_KQ_DISPATCH(SI_KQ8W)
#undef SI_KQW1
#undef SI_KQ8W
}

/* The set's entry for Q4_K and Q5_K where si_rvv_kq_k4_fixed() (rvv_set.c puts it in
 * their two slots, so the other types call si_rvv_mat_dot_kq_wide as before): one token
 * runs mat_dot_k4v1, several si_rvv_mat_dot_kq_wide. */
void si_rvv_mat_dot_k45_wide(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows,
                             const void *act, size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    if (n_tok == 1)
        mat_dot_k4v1(type, n, w, row_bytes, n_rows, act, act_stride, out, out_stride);
    else
        si_rvv_mat_dot_kq_wide(type, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
}

/* one token of Q4_K/Q5_K has kernels of its own at this VLEN (256 or 512) */
int si_rvv_kq_k4_fixed(void) { return kq_k4_vlen() != 0; }

void si_rvv_mat_dot_kq(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                       size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    const int64_t nb = n / SI_QK_K;
    const int al2 = (((uintptr_t)act | act_stride) & 1) == 0;
    const int v128 = is_vlen128(), k4 = type == SI_TYPE_Q4_K || type == SI_TYPE_Q5_K;
    const float *g;
    const float *yall = kq_prepare(type, nb, act, act_stride, n_tok, v128 && (n_tok > 1 || k4), &g);
    int8_t *at = NULL; /* room for the transposed activations of rvv_kq_t16.h's loops */
    if (yall && v128 && n_tok > 1 && kq_t16(type))
        yall = (at = kq_t16_room(n_tok < TOK_CHUNK ? n_tok : TOK_CHUNK, nb)) ? yall : NULL;
    if (!yall) { /* no memory for the scratch: the reference needs none */
        si_kernels_ref()->mat_dot[type](type, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
        return;
    }
#define SI_KQ1(T) mat_dot_kq1(T, n, w, row_bytes, n_rows, act, out, yall, (float *)(void *)si_rvv_kbuf, g)
#define SI_KQ8(T) mat_dot_kq8(T, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride, yall, g, 0, at)
#define SI_KQN(T) mat_dot_kqn(T, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride, yall, al2)
    if (v128 && n_tok == 1)
        SI_KQ_DISPATCH(SI_KQ1)
    else if (v128)
        SI_KQ_DISPATCH(SI_KQ8)
    else
        SI_KQ_DISPATCH(SI_KQN)
#undef SI_KQ1
#undef SI_KQ8
#undef SI_KQN
}

/* The float pass of one row for the nt tokens of a chunk, after the integer pass: per
 * token, block by block in order (isum: is, plus is2 when not NULL), c = d * isum (Q2_K: c = c - dmin * msum, fused), acc =
 * acc + yd * c (fused: three roundings where the products and sums of the natural order
 * make six), then Q4_K/Q5_K's acc - mins[t]: the same operations as mat_dot_kq1's and
 * mat_dot_kqw1's (a token's result must not depend on its batch). Vectors across tokens. */
static inline __attribute__((always_inline)) void combine_row(float *out, size_t out_stride, const float *yd, int64_t nb,
                                                              int64_t nt, const int32_t *is, const int32_t *is2,
                                                              const int32_t *ms, const float *mins, const float *d,
                                                              const float *dmin)
{
    for (int64_t t = 0; t < nt;) {
        const size_t vl = __riscv_vsetvl_e32m4((size_t)(nt - t));
        vfloat32m4_t acc = __riscv_vfmv_v_f_f32m4(0.0f, vl);
        for (int64_t i = 0; i < nb; i++) {
            vfloat32m4_t y = __riscv_vlse32_v_f32m4(yd + (size_t)t * (size_t)nb + (size_t)i,
                                                    (ptrdiff_t)((size_t)nb * sizeof(float)), vl);
            vint32m4_t isum = __riscv_vle32_v_i32m4(is + (size_t)i * TOK_CHUNK + (size_t)t, vl);
            if (is2) /* the second half block's sums (tokd2_q2_K), exact in 32 bits */
                isum = __riscv_vadd_vv_i32m4(isum, __riscv_vle32_v_i32m4(is2 + (size_t)i * TOK_CHUNK + (size_t)t, vl), vl);
            vfloat32m4_t c = __riscv_vfmul_vf_f32m4(__riscv_vfcvt_f_x_v_f32m4(isum, vl), d[i], vl);
            if (ms) {
                vint32m4_t m = __riscv_vle32_v_i32m4(ms + (size_t)i * TOK_CHUNK + (size_t)t, vl);
                c = __riscv_vfnmsac_vf_f32m4(c, dmin[i], __riscv_vfcvt_f_x_v_f32m4(m, vl), vl);
            }
            acc = __riscv_vfmacc_vv_f32m4(acc, y, c, vl);
        }
        if (mins)
            acc = __riscv_vfsub_vv_f32m4(acc, __riscv_vle32_v_f32m4(mins + t, vl), vl);
        __riscv_vsse32_v_f32m4(out + (size_t)t * out_stride, (ptrdiff_t)(out_stride * sizeof(float)), acc, vl);
        t += (int64_t)vl;
    }
}

/* Several tokens: per chunk of tokens and row, first every block's integer sums (the
 * decode-once kernels above: VLEN 128's when wide is 0, a constant there, so that this
 * instance compiles to the VLEN 128 loops alone; else the wide ones in kq_wide()'s
 * chunks), then the float pass over the whole row. at: room for a chunk's transposed
 * activations (rvv_kq_t16.h's types at VLEN 128), filled once per chunk. */
static inline __attribute__((always_inline)) void mat_dot_kq8(uint32_t type, int64_t n, const void *w, size_t row_bytes,
                                                              int64_t n_rows, const void *act, size_t act_stride,
                                                              int64_t n_tok, float *out, size_t out_stride,
                                                              const float *yall, const float *g, int wide,
                                                              int8_t *at)
{
    const size_t bsz = kq_bsz(type), doff = kq_doff(type), moff = kq_moff(type);
    const int has_min = kq_has_min(type), k4 = type == SI_TYPE_Q4_K || type == SI_TYPE_Q5_K;
    const int64_t nb = n / SI_QK_K;
    float *fm = (float *)(void *)si_rvv_kbuf, *d = fm + (size_t)nb * 8, *dmin = d + nb, *mins = dmin + nb;
    int32_t *is = (int32_t *)(void *)(mins + TOK_CHUNK), *ms = is + (size_t)nb * TOK_CHUNK;
    /* Q2_K's second row of a pair, and both rows' second half blocks (tokd2_q2_K) */
    int32_t *is01 = ms + (size_t)nb * TOK_CHUNK, *is10 = is01 + (size_t)nb * TOK_CHUNK;
    int32_t *is11 = is10 + (size_t)nb * TOK_CHUNK, *ms1 = is11 + (size_t)nb * TOK_CHUNK;
    float *d1 = (float *)(void *)(ms1 + (size_t)nb * TOK_CHUNK), *dmin1 = d1 + nb;
    wscratch ws; /* the wide decode's buffers */
    const int c16 = wide ? kq_wide16() : 0;
    const size_t tstride = (size_t)nb * SI_QK_K; /* at's, from token to token */
    for (int64_t t0 = 0; t0 < n_tok; t0 += TOK_CHUNK) {
        const int64_t nt = n_tok - t0 < TOK_CHUNK ? n_tok - t0 : TOK_CHUNK;
        if (!wide && kq_t16(type))
            kq_t16_fill(at, (const uint8_t *)act + (size_t)t0 * act_stride, act_stride, nt, nb);
        for (int64_t r = 0; r < n_rows;) {
            /* Q2_K at VLEN 128: two rows at a time, an odd last one alone */
            const int pair = !wide && type == SI_TYPE_Q2_K && r + 1 < n_rows;
            const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes, *row1 = row + row_bytes;
            gather_f16(row + doff, bsz, nb, d);
            if (has_min)
                gather_f16(row + moff, bsz, nb, dmin);
            if (pair) {
                gather_f16(row1 + doff, bsz, nb, d1);
                gather_f16(row1 + moff, bsz, nb, dmin1);
            }
            if (type == SI_TYPE_Q3_K) /* its blocks are decoded negated: d negated instead of the sums
                                       * (the same float bits: (-x) * (-y) == x * y exactly) */
                for (int64_t i = 0; i < nb; i++)
                    d[i] = -d[i];
            const int8_t *a = (const int8_t *)act + (size_t)t0 * act_stride + offsetof(blk_q8_K, qs);
            for (int64_t i = 0; i < nb; i++, a += sizeof(blk_q8_K)) {
                const int8_t *ta = wide ? NULL : at + (size_t)i * SI_QK_K;
                const uint8_t *b = row + (size_t)i * bsz;
                int32_t *bis = is + (size_t)i * TOK_CHUNK;
                const int q5 = type == SI_TYPE_Q5_K;
                switch (type) {
                case SI_TYPE_Q2_K:
                    if (wide)
                        tokw_q2_K(wide, b, a, act_stride, nt, bis, ms + (size_t)i * TOK_CHUNK, &ws);
                    else if (pair)
                        tokd2_q2_K(b, row1 + (size_t)i * bsz, a, act_stride, nt, bis, is01 + (size_t)i * TOK_CHUNK,
                                   ms + (size_t)i * TOK_CHUNK, is10 + (size_t)i * TOK_CHUNK,
                                   is11 + (size_t)i * TOK_CHUNK, ms1 + (size_t)i * TOK_CHUNK);
                    else
                        tokd_q2_K(b, a, act_stride, nt, bis, ms + (size_t)i * TOK_CHUNK);
                    break;
                case SI_TYPE_Q3_K:
                    if (wide)
                        tokw_q3_K(wide, b, a, act_stride, nt, bis, &ws);
                    else
                        tokt_q3_K(b, ta, tstride, nt, bis);
                    break;
                case SI_TYPE_Q4_K:
                case SI_TYPE_Q5_K:
                    if (wide)
                        tokw_q45_K(wide, c16, b, q5, a, act_stride, nt, bis, dmin[i], fm + (size_t)i * 8, &ws);
                    else if (q5)
                        tok_q5_K(b, a, act_stride, nt, bis, dmin[i], fm + (size_t)i * 8);
                    else
                        tokt_q4_K(b, ta, tstride, nt, bis, dmin[i], fm + (size_t)i * 8);
                    break;
                default:
                    if (wide)
                        tokw_q6_K(wide, c16, b, a, act_stride, nt, bis, &ws);
                    else
                        tokt_q6_K(b, ta, tstride, nt, bis);
                    break;
                }
            }
            if (k4)
                for (int64_t t = 0; t < nt; t++)
                    mins[t] = dot_f32(fm, g + (size_t)(t0 + t) * (size_t)nb * 8, (size_t)nb * 8, 1);
            combine_row(out + (size_t)t0 * out_stride + (size_t)r, out_stride, yall + (size_t)t0 * (size_t)nb, nb, nt,
                        is, pair ? is01 : NULL, type == SI_TYPE_Q2_K ? ms : NULL, k4 ? mins : NULL, d,
                        has_min ? dmin : NULL);
            if (pair)
                combine_row(out + (size_t)t0 * out_stride + (size_t)r + 1, out_stride,
                            yall + (size_t)t0 * (size_t)nb, nb, nt, is10, is11, ms1, NULL, d1, dmin1);
            r += pair ? 2 : 1;
        }
    }
}

/* The several-token loop at other VLENs (decode to a buffer, then per token), for one
 * (constant) type */
static inline __attribute__((always_inline)) void mat_dot_kqn(uint32_t type, int64_t n, const void *w, size_t row_bytes,
                                                              int64_t n_rows, const void *act, size_t act_stride,
                                                              int64_t n_tok, float *out, size_t out_stride,
                                                              const float *yall, int al2)
{
    const size_t bsz = kq_bsz(type);
    const int64_t nb = n / SI_QK_K;
    rdec k;
    float acc[TOK_CHUNK];
    int32_t isum[TOK_CHUNK], summ[TOK_CHUNK];
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int64_t t0 = 0; t0 < n_tok; t0 += TOK_CHUNK) {
            const int64_t nt = n_tok - t0 < TOK_CHUNK ? n_tok - t0 : TOK_CHUNK;
            for (int64_t t = 0; t < nt; t++)
                acc[t] = 0.0f;
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *b = row + (size_t)i * bsz;
                const uint8_t *y = (const uint8_t *)act + (size_t)t0 * act_stride + (size_t)i * sizeof(blk_q8_K);
                int with_min = 1;
                switch (type) {
                case SI_TYPE_Q2_K:
                    dec_q2_K(b, &k);
                    tok_u8(k.w8, k.mn, (const int8_t *)y + offsetof(blk_q8_K, qs), act_stride, nt, isum, summ);
                    break;
                case SI_TYPE_Q3_K:
                    /* the block is stored negated: d negated instead of the sums, the same
                     * float bits ((-x) * (-y) == x * y exactly) */
                    dec_q3_K(b, &k);
                    tok_s8(k.w8, (const int8_t *)y + offsetof(blk_q8_K, qs), act_stride, nt, isum);
                    k.d = -k.d;
                    k.dmin = 0.0f;
                    with_min = 0;
                    break;
                case SI_TYPE_Q4_K:
                case SI_TYPE_Q5_K:
                    dec_q45_K(b, &k, type == SI_TYPE_Q5_K);
#pragma clang loop unroll(disable)
                    for (int64_t t = 0; t < nt; t++, y += act_stride) {
                        const int16_t *wp = k.w16;
                        SI_OPAQUE(wp);
                        isum[t] = dot_w16(wp, (const int8_t *)y + offsetof(blk_q8_K, qs));
                        summ[t] = dot_mins(k.mn, y, al2);
                    }
                    break;
                default:
                    k.dmin = 0.0f;
                    with_min = 0;
                    dec_q6_K(b, &k);
#pragma clang loop unroll(disable)
                    for (int64_t t = 0; t < nt; t++, y += act_stride) {
                        const int16_t *wp = k.w16;
                        SI_OPAQUE(wp);
                        isum[t] = dot_w16(wp, (const int8_t *)y + offsetof(blk_q8_K, qs));
                    }
                    break;
                }
                combine(acc, isum, summ, yall + (size_t)t0 * (size_t)nb + (size_t)i, (size_t)nb, nt, k.d, k.dmin,
                        with_min);
            }
            for (int64_t t = 0; t < nt; t++)
                out[(size_t)(t0 + t) * out_stride + (size_t)r] = acc[t];
        }
    }
}

int si_rvv_kq_wide_layout(void) { return !is_vlen128() && kq_wide() && kq_wide16(); }

#endif
