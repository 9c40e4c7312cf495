/* The rvv set's K-quant matrix kernels (Q2_K..Q6_K x Q8_K): the VLEN 128 layout and
 * the wide one (rvv.h tells both). */
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

/* The two per-token dot products of a decoded block, written in assembly: in C the
 * compiler's scheduler issues every load first (to hide latency), which at LMUL 4/8
 * needs more than the 32 vector registers and spills to the stack, tripling the
 * instructions of the token loop. Here each load is followed by its multiply-accumulate
 * (the C908 is in order; L1 loads pipeline). The registers used are clobbered; vl and
 * vtype are set here and left changed (the compiler re-sets them after). */

/* sum of w16[i] * a[i] over 256 elements: per 32, sign-extend the activation bytes (a
 * byte load at SEW 16 has EMUL 2) and one widening multiply-accumulate into 32 bits */
#define SI_W16_STEP                        \
    "vle16.v v8, (%[w])\n\t"               \
    "vle8.v v12, (%[a])\n\t"               \
    "addi %[w], %[w], 64\n\t"              \
    "addi %[a], %[a], 32\n\t"              \
    "vsext.vf2 v4, v12\n\t"                \
    "vwmacc.vv v16, v8, v4\n\t"

static inline int32_t dot_w16(const int16_t *w16, const int8_t *a)
{
    int32_t r;
    size_t n = 32;
    __asm__ volatile(
        "vsetvli zero, %[n], e32, m8, ta, ma\n\t"
        "vmv.v.i v16, 0\n\t"
        "vsetvli zero, zero, e16, m4, ta, ma\n\t"
        SI_W16_STEP SI_W16_STEP SI_W16_STEP SI_W16_STEP SI_W16_STEP SI_W16_STEP SI_W16_STEP SI_W16_STEP
        "vsetvli zero, zero, e32, m8, ta, ma\n\t"
        "vmv.s.x v24, zero\n\t"
        "vredsum.vs v24, v16, v24\n\t"
        "vmv.x.s %[r], v24\n\t"
        : [r] "=r"(r), [a] "+r"(a), [w] "+r"(w16)
        : [n] "r"(n)
        : "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v16", "v17", "v18", "v19", "v20", "v21",
          "v22", "v23", "v24", "vl", "vtype", "memory");
    return r;
}
#undef SI_W16_STEP

/* The token loop of the byte-decoded blocks (Q2_K, Q3_K), whole in assembly: the 256
 * decoded bytes are loaded once into v0..v15 (four groups of 64 at e8, LMUL 4; vl 64
 * at any VLEN >= 128) and stay there while every token's activations stream past, so a
 * token costs four activation loads, four widening multiplies and the reductions, and
 * the weights are neither reloaded nor re-decoded. isum[t] gets token t's integer sum.
 *   u8 (Q2_K): unsigned bytes (code * scale <= 45) times signed activations, four
 *     products per 16-bit lane (at most 4 * 45 * 128), one widening reduction;
 *   s8 (Q3_K): signed bytes -128..124 times activations -128..127: a product may be
 *     16384, so two would overflow a 16-bit lane; each group of 64 is reduced alone
 *     (the reductions chain through v20's 32-bit element). */
#define SI_TOK_LOAD_W                          \
    "vsetvli zero, %[n], e8, m4, ta, ma\n\t"   \
    "vle8.v v0, (%[w])\n\t"                    \
    "addi %[w], %[w], 64\n\t"                  \
    "vle8.v v4, (%[w])\n\t"                    \
    "addi %[w], %[w], 64\n\t"                  \
    "vle8.v v8, (%[w])\n\t"                    \
    "addi %[w], %[w], 64\n\t"                  \
    "vle8.v v12, (%[w])\n\t"                   \
    "vsetivli zero, 1, e32, m1, ta, ma\n\t"    \
    "vmv.s.x v21, zero\n\t"
#define SI_TOK_CLOBBER                                                                                      \
    "t0", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", \
        "v16", "v17", "v18", "v19", "v20", "v21", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31", "vl",   \
        "vtype", "memory"

#define SI_TOK_U8_LOOP \
    "1:\n\t" \
    "vsetvli zero, %[n], e8, m4, ta, ma\n\t" \
    "vle8.v v16, (%[a])\n\t" \
    "addi t0, %[a], 64\n\t" \
    "vwmulsu.vv v24, v16, v0\n\t" \
    "vle8.v v16, (t0)\n\t" \
    "addi t0, %[a], 128\n\t" \
    "vwmaccsu.vv v24, v16, v4\n\t" \
    "vle8.v v16, (t0)\n\t" \
    "addi t0, %[a], 192\n\t" \
    "vwmaccsu.vv v24, v16, v8\n\t" \
    "vle8.v v16, (t0)\n\t" \
    "addi t0, %[a], 256\n\t" \
    "vwmaccsu.vv v24, v16, v12\n\t" \
    SI_TOK_U8_TAIL
/* after the products of one token in v24 (e16 LMUL 8, vl %[n]) and t0 at its bsums */
#define SI_TOK_U8_TAIL \
    "vsetvli zero, %[n], e16, m8, ta, ma\n\t" \
    "vwredsum.vs v20, v24, v21\n\t" \
    "vsetvli zero, %[n32], e8, m2, ta, ma\n\t" \
    "vle8.v v16, (t0)\n\t" /* the 16 bsums as 32 bytes */ \
    "vsetivli zero, 16, e16, m2, ta, ma\n\t" \
    "vmul.vv v16, v16, v22\n\t" \
    "vwredsum.vs v18, v16, v21\n\t" \
    "vsetivli zero, 1, e32, m1, ta, ma\n\t" \
    "vmv.x.s t0, v20\n\t" \
    "sw t0, 0(%[o])\n\t" \
    "vmv.x.s t0, v18\n\t" \
    "sw t0, 0(%[p])\n\t" \
    "addi %[o], %[o], 4\n\t" \
    "addi %[p], %[p], 4\n\t" \
    "add %[a], %[a], %[s]\n\t" \
    "addi %[nt], %[nt], -1\n\t" \
    "bnez %[nt], 1b\n\t"

/* u8 also computes msum[t], the Q8_K bsums (read as bytes: any alignment) times the 16
 * mins, which stay in v22 (e16; a product is at most 16 * 128 * 15, exact in 16 bits). */
static inline void tok_u8(const uint8_t *w8, const int16_t *mn, const int8_t *a, size_t stride, int64_t nt,
                          int32_t *isum, int32_t *msum)
{
    size_t n = 64, n32 = 32;
    __asm__ volatile(
        SI_TOK_LOAD_W
        "vsetivli zero, 16, e16, m2, ta, ma\n\t"
        "vle16.v v22, (%[m])\n\t"
        SI_TOK_U8_LOOP
        : [a] "+r"(a), [w] "+r"(w8), [o] "+r"(isum), [p] "+r"(msum), [nt] "+r"(nt)
        : [n] "r"(n), [n32] "r"(n32), [s] "r"(stride), [m] "r"(mn)
        : SI_TOK_CLOBBER, "v22", "v23");
}

#define SI_TOK_S8_STEP(off, wreg, vs1)           \
    "vsetvli zero, %[n], e8, m4, ta, ma\n\t"     \
    "addi t0, %[a], " off "\n\t"                 \
    "vle8.v v16, (t0)\n\t"                       \
    "vwmul.vv v24, v16, " wreg "\n\t"            \
    "vsetvli zero, %[n], e16, m8, ta, ma\n\t"    \
    "vwredsum.vs v20, v24, " vs1 "\n\t"

#define SI_TOK_S8_LOOP \
    "1:\n\t" \
    SI_TOK_S8_STEP("0", "v0", "v21") \
    SI_TOK_S8_STEP("64", "v4", "v20") \
    SI_TOK_S8_STEP("128", "v8", "v20") \
    SI_TOK_S8_STEP("192", "v12", "v20") \
    "vsetivli zero, 1, e32, m1, ta, ma\n\t" \
    "vmv.x.s t0, v20\n\t" \
    "sw t0, 0(%[o])\n\t" \
    "addi %[o], %[o], 4\n\t" \
    "add %[a], %[a], %[s]\n\t" \
    "addi %[nt], %[nt], -1\n\t" \
    "bnez %[nt], 1b\n\t"

static inline void tok_s8(const uint8_t *w8, const int8_t *a, size_t stride, int64_t nt, int32_t *isum)
{
    size_t n = 64;
    __asm__ volatile(
        SI_TOK_LOAD_W
        SI_TOK_S8_LOOP
        : [a] "+r"(a), [w] "+r"(w8), [o] "+r"(isum), [nt] "+r"(nt)
        : [n] "r"(n), [s] "r"(stride)
        : SI_TOK_CLOBBER);
}
/* At VLEN 128 the Q2_K/Q3_K blocks are decoded in the same asm as the token loop,
 * straight into v0..v15 (group g of 16 elements in register vg), instead of dec_q2_K /
 * dec_q3_K's stores and reloads and their scalar scale unpacking: codes extracted per
 * half block at e8 LMUL 2 (elements 128h + 32j + l in v(8h + 2j)), then each group
 * multiplied by its scale (vmul.vx at e8 LMUL 1, scales from a 16-byte stack copy). */
#define SI_DEC_GROUP(g) \
    "lb t0, " #g "(%[tmp])\n\t" \
    "vmul.vx v" #g ", v" #g ", t0\n\t"
#define SI_DEC_SCALE_ALL                                                                          \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t"                                                     \
    SI_DEC_GROUP(0) SI_DEC_GROUP(1) SI_DEC_GROUP(2) SI_DEC_GROUP(3) SI_DEC_GROUP(4) SI_DEC_GROUP(5) \
    SI_DEC_GROUP(6) SI_DEC_GROUP(7) SI_DEC_GROUP(8) SI_DEC_GROUP(9) SI_DEC_GROUP(10)               \
    SI_DEC_GROUP(11) SI_DEC_GROUP(12) SI_DEC_GROUP(13) SI_DEC_GROUP(14) SI_DEC_GROUP(15)
/* 2-bit codes of half h (32 bytes at %[qs] + qoff) into A0 (j = 0), A1, A2, A3 (LMUL 2) */
#define SI_DEC_2BIT(qoff, A0, A1, A2, A3)      \
    "vsetvli t1, zero, e8, m2, ta, ma\n\t"   \
    "addi t0, %[qs], " qoff "\n\t"           \
    "vle8.v v16, (t0)\n\t"                   \
    "vand.vi " A0 ", v16, 3\n\t"             \
    "vsrl.vi " A1 ", v16, 2\n\t"             \
    "vand.vi " A1 ", " A1 ", 3\n\t"          \
    "vsrl.vi " A2 ", v16, 4\n\t"             \
    "vand.vi " A2 ", " A2 ", 3\n\t"          \
    "vsrl.vi " A3 ", v16, 6\n\t"

/* Q2_K's 16 scale bytes (at %[sc]) split: the low nibbles (scales) to the 16-byte copy
 * at %[tmp] (read back with lbu) and left in lo, the high nibbles (mins) in hi */
#define SI_Q2_SCALES(raw, lo, hi)                \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t"     \
    "vle8.v " raw ", (%[sc])\n\t"               \
    "vand.vi " lo ", " raw ", 15\n\t"           \
    "vsrl.vi " hi ", " raw ", 4\n\t"            \
    "vse8.v " lo ", (%[tmp])\n\t"
/* dec_q2_K + tok_u8 in one (VLEN 128 only) */
static inline void tokd_q2_K(const uint8_t *b, const int8_t *a, size_t stride, int64_t nt, int32_t *isum,
                             int32_t *msum)
{
    uint8_t tmp[16];
    size_t n = 64, n32 = 32;
    const uint8_t *sc = b + offsetof(blk_q2_K, scales), *qs = b + offsetof(blk_q2_K, qs);
    __asm__ volatile(
        SI_Q2_SCALES("v16", "v17", "v18")
        "vsetivli zero, 16, e16, m2, ta, ma\n\t"
        "vzext.vf2 v22, v18\n\t"
        SI_DEC_2BIT("0", "v0", "v2", "v4", "v6")
        SI_DEC_2BIT("32", "v8", "v10", "v12", "v14")
        SI_DEC_SCALE_ALL
        "vsetivli zero, 1, e32, m1, ta, ma\n\t"
        "vmv.s.x v21, zero\n\t"
        SI_TOK_U8_LOOP
        : [a] "+r"(a), [o] "+r"(isum), [p] "+r"(msum), [nt] "+r"(nt)
        : [n] "r"(n), [n32] "r"(n32), [s] "r"(stride), [sc] "r"(sc), [qs] "r"(qs), [tmp] "r"(tmp)
        : SI_TOK_CLOBBER, "v22", "v23", "t1");
}

/* dec_q3_K + tok_s8 in one (VLEN 128 only): bytes (c - 4) * (32 - scale), the negated
 * block as dec_q3_K's; the 6-bit scales unpacked as in fused_q3_K */
static inline void tokd_q3_K(const uint8_t *b, const int8_t *a, size_t stride, int64_t nt, int32_t *isum)
{
    int8_t tmp[16];
    size_t n = 64;
    const uint8_t *hm = b + offsetof(blk_q3_K, hmask), *qs = b + offsetof(blk_q3_K, qs);
    const uint8_t *raw = b + offsetof(blk_q3_K, scales);
    /* hbits of half h (hmask in v18, already shifted by 4h) to bit 2, OR'd into the codes */
#define SI_DEC_3BIT(qoff, hshift, A0, A1, A2, A3) \
    SI_DEC_2BIT(qoff, A0, A1, A2, A3)             \
    "vle8.v v18, (%[hm])\n\t"                     \
    hshift                                        \
    "vsll.vi v24, v18, 2\n\t"                     \
    "vand.vi v24, v24, 4\n\t"                     \
    "vsll.vi v26, v18, 1\n\t"                     \
    "vand.vi v26, v26, 4\n\t"                     \
    "vand.vi v28, v18, 4\n\t"                     \
    "vsrl.vi v30, v18, 1\n\t"                     \
    "vand.vi v30, v30, 4\n\t"                     \
    "vsetvli t1, zero, e8, m8, ta, ma\n\t"        \
    "vor.vv " A0 ", " A0 ", v24\n\t"              \
    "vadd.vi " A0 ", " A0 ", -4\n\t"
    __asm__ volatile(
        "vsetivli zero, 8, e8, m1, ta, ma\n\t"
        "vle8.v v16, (%[raw])\n\t"
        "vand.vi v17, v16, 15\n\t"
        "vsrl.vi v18, v16, 4\n\t"
        "vsetivli zero, 16, e8, m1, ta, ma\n\t"
        "vslideup.vi v17, v18, 8\n\t"
        "vsetivli zero, 4, e8, m1, ta, ma\n\t"
        "addi t0, %[raw], 8\n\t"
        "vle8.v v18, (t0)\n\t"
        "vsetivli zero, 4, e32, m1, ta, ma\n\t"
        "vmv.x.s t0, v18\n\t"
        "vmv.v.x v18, t0\n\t"
        "vid.v v19\n\t"
        "vsll.vi v19, v19, 1\n\t"
        "vsrl.vv v18, v18, v19\n\t"
        "vsll.vi v18, v18, 4\n\t"
        "li t0, 0x30303030\n\t"
        "vand.vx v18, v18, t0\n\t"
        "vsetivli zero, 16, e8, m1, ta, ma\n\t"
        "vor.vv v17, v17, v18\n\t"
        "li t0, 32\n\t"
        "vrsub.vx v17, v17, t0\n\t"
        "vse8.v v17, (%[tmp])\n\t"
        SI_DEC_3BIT("0", "", "v0", "v2", "v4", "v6")
        SI_DEC_3BIT("32", "vsrl.vi v18, v18, 4\n\t", "v8", "v10", "v12", "v14")
        SI_DEC_SCALE_ALL
        /* Token loop: two products per 16-bit lane. A product of the (negated) bytes
         * -128..124 and activations -127..127 (the Q8_K quantizer never makes -128, see
         * si_kernels) lies in -16256..16256, two in -32512..32512: exact in 16 bits, so
         * the first product of each lane needs no start value (vwmul) and each token
         * costs two reductions and no accumulator fills. */
        "vsetivli zero, 1, e32, m1, ta, ma\n\t"
        "vmv.s.x v21, zero\n\t"
        "1:\n\t"
        "vsetvli zero, %[n], e8, m4, ta, ma\n\t"
        "vle8.v v16, (%[a])\n\t"
        "vwmul.vv v24, v16, v0\n\t"
        "addi t0, %[a], 64\n\t"
        "vle8.v v16, (t0)\n\t"
        "vwmacc.vv v24, v16, v4\n\t"
        "vsetvli zero, %[n], e16, m8, ta, ma\n\t"
        "vwredsum.vs v20, v24, v21\n\t"
        "vsetvli zero, %[n], e8, m4, ta, ma\n\t"
        "addi t0, %[a], 128\n\t"
        "vle8.v v16, (t0)\n\t"
        "vwmul.vv v24, v16, v8\n\t"
        "addi t0, %[a], 192\n\t"
        "vle8.v v16, (t0)\n\t"
        "vwmacc.vv v24, v16, v12\n\t"
        "vsetvli zero, %[n], e16, m8, ta, ma\n\t"
        "vwredsum.vs v20, v24, v20\n\t"
        "vsetivli zero, 1, e32, m1, ta, ma\n\t"
        "vmv.x.s t0, v20\n\t"
        "sw t0, 0(%[o])\n\t"
        "addi %[o], %[o], 4\n\t"
        "add %[a], %[a], %[s]\n\t"
        "addi %[nt], %[nt], -1\n\t"
        "bnez %[nt], 1b\n\t"
        : [a] "+r"(a), [o] "+r"(isum), [nt] "+r"(nt)
        : [n] "r"(n), [s] "r"(stride), [raw] "r"(raw), [qs] "r"(qs), [hm] "r"(hm), [tmp] "r"(tmp)
        : SI_TOK_CLOBBER, "t1", "t2");
#undef SI_DEC_3BIT
}
/* ---- K-quants at VLEN >= 256: blocks decoded at full width, tokens in wide chunks ----- */

/* At VLEN 128 the loops above hold one 16-element scale group per register; wider
 * registers hold several, so there a block is decoded through small aligned buffers
 * instead, with the same instructions at any VLEN >= 256:
 *   - the 2-bit codes: qs copied to an aligned buffer, each 32-byte half repeated four
 *     times in natural order (a strided segment load of stride 0 and a strided segment
 *     store: element 128h + 32j + l gets qs[32h + l]), then shifted right by 2j at full
 *     width (vsrl.vv by a constant table) and masked;
 *   - Q3_K's high bits the same way (hmask repeated eight times, shifted by k = i / 32);
 *   - the 16 scales spread to one byte per element (each byte times 0x0101010101010101 in
 *     a 64-bit lane, stored at 16g and 16g + 8 with stride 16);
 *   - codes times scales at e8 LMUL 8, vl 256: the block's 256 weight bytes in v0...
 * The token loops then take them in chunks of E = min(256, VLMAX at e8 LMUL 4) elements
 * (128 at VLEN 256 in v0 and v4, 256 from 512 in v0: an LMUL 4 group is four registers
 * whatever their size): per token two (or one) activation loads and widening multiplies
 * instead of four. kq_wide() is the number of chunks from vsetvl: 0 below VLEN 256. */
static int wide_chunks = -1;

static inline int kq_wide(void)
{
    if (wide_chunks < 0) {
        const size_t m4 = __riscv_vsetvlmax_e8m4();
        wide_chunks = m4 < 128 ? 0 : m4 < 256 ? 2 : 1;
    }
    return wide_chunks;
}

#define SI_R8(x) x, x, x, x, x, x, x, x
#define SI_R32(x) SI_R8(x), SI_R8(x), SI_R8(x), SI_R8(x)
/* The wide decodes' constants, one base address for the assembly (%[T]): per element
 * of a block, at +0 2j (the 2-bit codes' shift), +256 k = i / 32 (Q3_K's hmask, Q5_K's
 * qh), +512 Q4_K/Q5_K's nibble shift (4 on odd sub-blocks), +768 Q6_K's (4 on 64..127);
 * at +1024 the byte-spreading multiplier. */
static const struct {
    uint8_t sh2[SI_QK_K], k[SI_QK_K], sh4[SI_QK_K], sh4b[SI_QK_K];
    uint64_t k01;
} __attribute__((aligned(64))) wide_tab = {
    {SI_R32(0), SI_R32(2), SI_R32(4), SI_R32(6), SI_R32(0), SI_R32(2), SI_R32(4), SI_R32(6)},
    {SI_R32(0), SI_R32(1), SI_R32(2), SI_R32(3), SI_R32(4), SI_R32(5), SI_R32(6), SI_R32(7)},
    {SI_R32(0), SI_R32(4), SI_R32(0), SI_R32(4), SI_R32(0), SI_R32(4), SI_R32(0), SI_R32(4)},
    {SI_R32(0), SI_R32(0), SI_R32(4), SI_R32(4), SI_R32(0), SI_R32(0), SI_R32(4), SI_R32(4)},
    0x0101010101010101ull};
#undef SI_R8
#undef SI_R32

/* The scratch of a wide decode (%[W] in the assembly): per-element scales at +0, codes
 * at +256 (t3), high bits at +512 (t4), a copy of the codes at +768 (t5), at +960 Q4_K's
 * unpacked scales.
 * 16-byte aligned (the 64-bit element accesses need 8), no more: a stack object aligned
 * beyond the ABI's 16 makes the compiler realign the frame through a base pointer (s1),
 * which the token loops' assembly clobbers. */
typedef struct {
    uint8_t s[SI_QK_K], c[SI_QK_K], h[SI_QK_K], q[192], t[16];
} __attribute__((aligned(16))) wscratch;

/* v17's 16 bytes (e8) to one per element at %[W] (uses v24..v27, t0, t1) */
#define SI_WIDE_REP16                           \
    "vsetivli zero, 16, e64, m4, ta, ma\n\t"    \
    "vzext.vf8 v24, v17\n\t"                    \
    "ld t1, 1024(%[T])\n\t"                     \
    "vmul.vx v24, v24, t1\n\t"                  \
    "li t1, 16\n\t"                             \
    "vsse64.v v24, (%[W]), t1\n\t"              \
    "addi t0, %[W], 8\n\t"                      \
    "vsse64.v v24, (t0), t1\n\t"
/* the 64 bytes of qs (%[b] + %[oqs]), each half repeated four times, at t3 (uses v8..,
 * t0; sets t1 = 32, t3, t5) */
#define SI_WIDE_CODES                           \
    "li t0, 64\n\t"                             \
    "vsetvli zero, t0, e8, m4, ta, ma\n\t"      \
    "addi t0, %[b], %[oqs]\n\t"                 \
    "vle8.v v8, (t0)\n\t"                       \
    "addi t5, %[W], 768\n\t"                    \
    "vse8.v v8, (t5)\n\t"                       \
    "vsetivli zero, 4, e64, m1, ta, ma\n\t"     \
    "li t1, 32\n\t"                             \
    "addi t3, %[W], 256\n\t"                    \
    "vlsseg4e64.v v8, (t5), zero\n\t"           \
    "vssseg4e64.v v8, (t3), t1\n\t"             \
    "addi t0, t5, 32\n\t"                       \
    "vlsseg4e64.v v8, (t0), zero\n\t"           \
    "addi t0, t3, 128\n\t"                      \
    "vssseg4e64.v v8, (t0), t1\n\t"
/* v0 = the 2-bit codes at full width (uses v8..v15) */
#define SI_WIDE_2BIT                            \
    "li t0, 256\n\t"                            \
    "vsetvli zero, t0, e8, m8, ta, ma\n\t"      \
    "vle8.v v0, (t3)\n\t"                       \
    "vle8.v v8, (%[T])\n\t"                     \
    "vsrl.vv v0, v0, v8\n\t"                    \
    "vand.vi v0, v0, 3\n\t"
/* v0 *= the per-element scales */
#define SI_WIDE_SCALE                           \
    "vle8.v v8, (%[W])\n\t"                     \
    "vmul.vv v0, v0, v8\n\t"

/* Q2_K's token: products of the unsigned weight bytes and the activations (two per
 * 16-bit lane at most, |x| <= 2 * 45 * 128), then tok_u8's reductions and mins */
#define SI_WIDE_U8_2                            \
    "1:\n\t"                                    \
    "vsetvli zero, %[n], e8, m4, ta, ma\n\t"    \
    "vle8.v v16, (%[a])\n\t"                    \
    "add t0, %[a], %[n]\n\t"                    \
    "vwmulsu.vv v24, v16, v0\n\t"               \
    "vle8.v v16, (t0)\n\t"                      \
    "addi t0, %[a], 256\n\t"                    \
    "vwmaccsu.vv v24, v16, v4\n\t"              \
    SI_TOK_U8_TAIL
#define SI_WIDE_U8_1                            \
    "1:\n\t"                                    \
    "vsetvli zero, %[n], e8, m4, ta, ma\n\t"    \
    "vle8.v v16, (%[a])\n\t"                    \
    "addi t0, %[a], 256\n\t"                    \
    "vwmulsu.vv v24, v16, v0\n\t"               \
    SI_TOK_U8_TAIL

/* dec_q2_K + tok_u8 at VLEN >= 256, ch chunks (kq_wide()) */
static inline void tokw_q2_K(int ch, const uint8_t *b, const int8_t *a, size_t stride, int64_t nt, int32_t *isum,
                             int32_t *msum, wscratch *ws)
{
    size_t n = SI_QK_K / (size_t)ch, n32 = 32;
#define SI_WIDE_Q2_DEC                          \
    "vsetivli zero, 16, e8, mf2, ta, ma\n\t"    \
    "addi t0, %[b], %[osc]\n\t"                 \
    "vle8.v v16, (t0)\n\t"                      \
    "vand.vi v17, v16, 15\n\t"                  \
    "vsrl.vi v18, v16, 4\n\t"                   \
    SI_WIDE_REP16                               \
    "vsetivli zero, 16, e16, m2, ta, ma\n\t"    \
    "vzext.vf2 v22, v18\n\t"                    \
    SI_WIDE_CODES                               \
    SI_WIDE_2BIT                                \
    SI_WIDE_SCALE                               \
    "vsetivli zero, 1, e32, m1, ta, ma\n\t"     \
    "vmv.s.x v21, zero\n\t"
#define SI_WIDE_Q2_ARGS                                                                                          \
    : [a] "+r"(a), [o] "+r"(isum), [p] "+r"(msum), [nt] "+r"(nt)                                                  \
    : [n] "r"(n), [n32] "r"(n32), [s] "r"(stride), [b] "r"(b), [W] "r"(ws), [T] "r"(&wide_tab),                \
      [osc] "i"(offsetof(blk_q2_K, scales)), [oqs] "i"(offsetof(blk_q2_K, qs))                                   \
    : SI_TOK_CLOBBER, "v22", "v23", "t1", "t3", "t5"
    if (ch == 2)
        __asm__ volatile(SI_WIDE_Q2_DEC SI_WIDE_U8_2 SI_WIDE_Q2_ARGS);
    else
        __asm__ volatile(SI_WIDE_Q2_DEC SI_WIDE_U8_1 SI_WIDE_Q2_ARGS);
#undef SI_WIDE_Q2_DEC
#undef SI_WIDE_Q2_ARGS
}

/* dec_q3_K + the token loop at VLEN >= 256: bytes (q - 4) * (32 - scale), the negated
 * block as dec_q3_K's (the scales unpacked as in tokd_q3_K). Per token, with two chunks
 * the products are summed two per 16-bit lane (as tokd_q3_K's: activations -127..127,
 * two products in -32512..32512); with one chunk one product per lane. */
#define SI_WIDE_TOK_END                         \
    "vsetivli zero, 1, e32, m1, ta, ma\n\t"     \
    "vmv.x.s t0, v20\n\t"                       \
    "sw t0, 0(%[o])\n\t"                        \
    "addi %[o], %[o], 4\n\t"                    \
    "add %[a], %[a], %[s]\n\t"                  \
    "addi %[nt], %[nt], -1\n\t"                 \
    "bnez %[nt], 1b\n\t"
#define SI_WIDE_S8_2                            \
    "vsetivli zero, 1, e32, m1, ta, ma\n\t"     \
    "vmv.s.x v21, zero\n\t"                     \
    "1:\n\t"                                    \
    "vsetvli zero, %[n], e8, m4, ta, ma\n\t"    \
    "vle8.v v16, (%[a])\n\t"                    \
    "add t0, %[a], %[n]\n\t"                    \
    "vwmul.vv v24, v16, v0\n\t"                 \
    "vle8.v v16, (t0)\n\t"                      \
    "vwmacc.vv v24, v16, v4\n\t"                \
    "vsetvli zero, %[n], e16, m8, ta, ma\n\t"   \
    "vwredsum.vs v20, v24, v21\n\t"             \
    SI_WIDE_TOK_END
#define SI_WIDE_S8_1                            \
    "vsetivli zero, 1, e32, m1, ta, ma\n\t"     \
    "vmv.s.x v21, zero\n\t"                     \
    "1:\n\t"                                    \
    "vsetvli zero, %[n], e8, m4, ta, ma\n\t"    \
    "vle8.v v16, (%[a])\n\t"                    \
    "vwmul.vv v24, v16, v0\n\t"                 \
    "vsetvli zero, %[n], e16, m8, ta, ma\n\t"   \
    "vwredsum.vs v20, v24, v21\n\t"             \
    SI_WIDE_TOK_END
static inline void tokw_q3_K(int ch, const uint8_t *b, const int8_t *a, size_t stride, int64_t nt, int32_t *isum,
                             wscratch *ws)
{
    size_t n = SI_QK_K / (size_t)ch;
#define SI_WIDE_Q3_DEC                          \
    "vsetivli zero, 8, e8, m1, ta, ma\n\t"      \
    "addi t0, %[b], %[osc]\n\t"                 \
    "vle8.v v16, (t0)\n\t"                      \
    "vand.vi v17, v16, 15\n\t"                  \
    "vsrl.vi v18, v16, 4\n\t"                   \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t"     \
    "vslideup.vi v17, v18, 8\n\t"               \
    "vsetivli zero, 4, e8, m1, ta, ma\n\t"      \
    "addi t0, %[b], %[osc] + 8\n\t"             \
    "vle8.v v18, (t0)\n\t"                      \
    "vsetivli zero, 4, e32, m1, ta, ma\n\t"     \
    "vmv.x.s t0, v18\n\t"                       \
    "vmv.v.x v18, t0\n\t"                       \
    "vid.v v19\n\t"                             \
    "vsll.vi v19, v19, 1\n\t"                   \
    "vsrl.vv v18, v18, v19\n\t"                 \
    "vsll.vi v18, v18, 4\n\t"                   \
    "li t0, 0x30303030\n\t"                     \
    "vand.vx v18, v18, t0\n\t"                  \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t"     \
    "vor.vv v17, v17, v18\n\t"                  \
    "li t0, 32\n\t"                             \
    "vrsub.vx v17, v17, t0\n\t"                 \
    SI_WIDE_REP16                               \
    SI_WIDE_CODES                               \
    /* hmask (32 bytes) repeated eight times at t4 */ \
    "li t0, 32\n\t"                             \
    "vsetvli zero, t0, e8, m2, ta, ma\n\t"      \
    "addi t0, %[b], %[ohm]\n\t"                 \
    "vle8.v v8, (t0)\n\t"                       \
    "addi t0, t5, 64\n\t"                       \
    "vse8.v v8, (t0)\n\t"                       \
    "vsetivli zero, 8, e64, m2, ta, ma\n\t"     \
    "addi t4, %[W], 512\n\t"                    \
    "vlsseg4e64.v v8, (t0), zero\n\t"           \
    "vssseg4e64.v v8, (t4), t1\n\t"             \
    SI_WIDE_2BIT                                \
    "vle8.v v8, (t4)\n\t"                       \
    "addi t0, %[T], 256\n\t"                    \
    "vle8.v v16, (t0)\n\t"                      \
    "vsrl.vv v8, v8, v16\n\t"                   \
    "vand.vi v8, v8, 1\n\t"                     \
    "vsll.vi v8, v8, 2\n\t"                     \
    "vor.vv v0, v0, v8\n\t"                     \
    "vadd.vi v0, v0, -4\n\t"                    \
    SI_WIDE_SCALE
#define SI_WIDE_Q3_ARGS                                                                                          \
    : [a] "+r"(a), [o] "+r"(isum), [nt] "+r"(nt)                                                                  \
    : [n] "r"(n), [s] "r"(stride), [b] "r"(b), [W] "r"(ws), [T] "r"(&wide_tab),                                 \
      [osc] "i"(offsetof(blk_q3_K, scales)), [oqs] "i"(offsetof(blk_q3_K, qs)), [ohm] "i"(offsetof(blk_q3_K, hmask)) \
    : SI_TOK_CLOBBER, "t1", "t2", "t3", "t4", "t5"
    if (ch == 2)
        __asm__ volatile(SI_WIDE_Q3_DEC SI_WIDE_S8_2 SI_WIDE_Q3_ARGS);
    else
        __asm__ volatile(SI_WIDE_Q3_DEC SI_WIDE_S8_1 SI_WIDE_Q3_ARGS);
#undef SI_WIDE_Q3_DEC
#undef SI_WIDE_Q3_ARGS
}
#undef SI_WIDE_TOK_END
#undef SI_WIDE_S8_1
#undef SI_WIDE_S8_2
#undef SI_WIDE_U8_1
#undef SI_WIDE_U8_2
#undef SI_DEC_GROUP
#undef SI_DEC_SCALE_ALL
#undef SI_DEC_2BIT
#undef SI_TOK_S8_STEP
#undef SI_TOK_U8_LOOP
#undef SI_TOK_U8_TAIL
#undef SI_TOK_S8_LOOP
#undef SI_TOK_LOAD_W
#undef SI_TOK_CLOBBER


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



/* ---- one token, VLEN 128: fused decode and dot, nothing stored ------------------------ */

/* At one token the decode-to-buffer path costs more in its stores and reloads than the
 * dot product itself, so for n_tok == 1 the single-token kernels below multiply the
 * codes with the activations straight from registers. They place one 16-element scale
 * group in each vector register (16 bytes), which holds at VLEN 128 only, the K230's:
 * from VLEN 256 the wide kernels run (qemu at VLEN 256 and 512 tests those).
 * Per block, in assembly (the compiler would spill the LMUL 4/8 groups):
 *   Q2_K  codes extracted at e8 LMUL 2 (a half block's 8 groups in v8..v15), each group
 *         scaled by vmul.vx at LMUL 1 (code * scale <= 45), two vwmulsu/vwmaccsu at e8
 *         LMUL 4 per half into one e16 LMUL 8 accumulator (4 products of at most
 *         45 * 128 per lane), one widening reduction; mins as in tok_u8.
 *   Q6_K  6-bit codes 0..63 (the -32 goes through the bsums) times activations by
 *         vwmulsu at e8 LMUL 4, then per group vwmacc.vx by its scale at e16 LMUL 2 into
 *         an e32 LMUL 4 accumulator that starts at -32 * sum(scale * bsum); one reduction.
 *   Q3_K  codes q - 4 built at LMUL 4 per half block, see fused_q3_K.
 *   Q4_K, Q5_K  per sub-block of 32, see fused_q4_K. */

#define SI_Q2_HALF(pre, qoff, aoff, s0, s1, s2, s3, s4, s5, s6, s7, first) \
    "vsetvli zero, %[n32], e8, m2, ta, ma\n\t"                        \
    pre                                                               \
    "addi t0, %[qs], " qoff "\n\t"                                    \
    "vle8.v v4, (t0)\n\t"                                             \
    "vand.vi v8, v4, 3\n\t"                                           \
    "vsrl.vi v10, v4, 2\n\t"                                          \
    "vand.vi v10, v10, 3\n\t"                                         \
    "vsrl.vi v12, v4, 4\n\t"                                          \
    "vand.vi v12, v12, 3\n\t"                                         \
    "vsrl.vi v14, v4, 6\n\t"                                          \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t"                           \
    "lbu t0, " s0 "(%[tmp])\n\t"                                      \
    "vmul.vx v8, v8, t0\n\t"                                          \
    "lbu t0, " s1 "(%[tmp])\n\t"                                      \
    "vmul.vx v9, v9, t0\n\t"                                          \
    "lbu t0, " s2 "(%[tmp])\n\t"                                      \
    "vmul.vx v10, v10, t0\n\t"                                        \
    "lbu t0, " s3 "(%[tmp])\n\t"                                      \
    "vmul.vx v11, v11, t0\n\t"                                        \
    "lbu t0, " s4 "(%[tmp])\n\t"                                      \
    "vmul.vx v12, v12, t0\n\t"                                        \
    "lbu t0, " s5 "(%[tmp])\n\t"                                      \
    "vmul.vx v13, v13, t0\n\t"                                        \
    "lbu t0, " s6 "(%[tmp])\n\t"                                      \
    "vmul.vx v14, v14, t0\n\t"                                        \
    "lbu t0, " s7 "(%[tmp])\n\t"                                      \
    "vmul.vx v15, v15, t0\n\t"                                        \
    "vsetvli zero, %[n64], e8, m4, ta, ma\n\t"                        \
    "addi t0, %[a], " aoff "\n\t"                                     \
    "vle8.v v16, (t0)\n\t"                                            \
    "addi t0, %[a], " aoff " + 64\n\t"                                \
    "vle8.v v20, (t0)\n\t"                                            \
    first                                                             \
    "vwmaccsu.vv v24, v20, v12\n\t"


/* isum = sum(code * scale * a), msum = sum(bsums * mins) of one Q2_K block */
static inline void fused_q2_K(const uint8_t *b, const int8_t *a, const uint8_t *bs, int32_t *isum, int32_t *msum)
{
    uint8_t tmp[16];
    int32_t is, ms;
    size_t n32 = 32, n64 = 64;
    const uint8_t *sc = b + offsetof(blk_q2_K, scales), *qs = b + offsetof(blk_q2_K, qs);
    __asm__ volatile(
        SI_Q2_SCALES("v0", "v1", "v2")
        "vmv.v.i v3, 0\n\t"
        SI_Q2_HALF("vle8.v v6, (%[bs])\n\t" /* the 16 bsums as 32 bytes */, "0", "0", "0", "1", "2", "3", "4", "5", "6", "7", "vwmulsu.vv v24, v16, v8\n\t")
        SI_Q2_HALF("", "32", "128", "8", "9", "10", "11", "12", "13", "14", "15", "vwmaccsu.vv v24, v16, v8\n\t")
        "vsetvli zero, %[n64], e16, m8, ta, ma\n\t"
        "vwredsum.vs v1, v24, v3\n\t"
        "vsetivli zero, 16, e16, m2, ta, ma\n\t"
        "vzext.vf2 v4, v2\n\t"
        "vmul.vv v4, v4, v6\n\t"
        "vwredsum.vs v2, v4, v3\n\t"
        "vsetivli zero, 1, e32, m1, ta, ma\n\t"
        "vmv.x.s %[is], v1\n\t"
        "vmv.x.s %[ms], v2\n\t"
        : [is] "=r"(is), [ms] "=r"(ms)
        : [sc] "r"(sc), [qs] "r"(qs), [a] "r"(a), [bs] "r"(bs), [tmp] "r"(tmp), [n32] "r"(n32), [n64] "r"(n64)
        : SI_FUSED_CLOBBER);
    *isum = is;
    *msum = ms;
}
#undef SI_Q2_HALF
#undef SI_Q2_SCALES

/* The code-times-activation products of one half block (codes 0..63 in v8..v15 as two
 * e8 LMUL 4 groups for elements 0..63 and 64..127 of the half), each 16-element group
 * scaled by its signed scale (lb from %[sc]) into v24..v27 (e32 LMUL 4). */
#define SI_SCALED_HALF(aoff, s0, s1, s2, s3, s4, s5, s6, s7) \
    "vsetvli zero, %[n64], e8, m4, ta, ma\n\t"             \
    "addi t0, %[a], " aoff "\n\t"                          \
    "vle8.v v0, (t0)\n\t"                                  \
    "addi t0, %[a], " aoff " + 64\n\t"                     \
    "vle8.v v4, (t0)\n\t"                                  \
    "vwmulsu.vv v16, v0, v8\n\t"                           \
    "vsetivli zero, 16, e16, m2, ta, ma\n\t"               \
    "lb t0, " s0 "(%[sc])\n\t"                             \
    "vwmacc.vx v24, t0, v16\n\t"                           \
    "lb t0, " s1 "(%[sc])\n\t"                             \
    "vwmacc.vx v24, t0, v18\n\t"                           \
    "lb t0, " s2 "(%[sc])\n\t"                             \
    "vwmacc.vx v24, t0, v20\n\t"                           \
    "lb t0, " s3 "(%[sc])\n\t"                             \
    "vwmacc.vx v24, t0, v22\n\t"                           \
    "vsetvli zero, %[n64], e8, m4, ta, ma\n\t"             \
    "vwmulsu.vv v16, v4, v12\n\t"                          \
    "vsetivli zero, 16, e16, m2, ta, ma\n\t"               \
    "lb t0, " s4 "(%[sc])\n\t"                             \
    "vwmacc.vx v24, t0, v16\n\t"                           \
    "lb t0, " s5 "(%[sc])\n\t"                             \
    "vwmacc.vx v24, t0, v18\n\t"                           \
    "lb t0, " s6 "(%[sc])\n\t"                             \
    "vwmacc.vx v24, t0, v20\n\t"                           \
    "lb t0, " s7 "(%[sc])\n\t"                             \
    "vwmacc.vx v24, t0, v22\n\t"

/* v24..v27 (e32 LMUL 4) = off * scale[g] * bsums[g] for the 16 groups; scales signed
 * bytes at %[sc], bsums as bytes at %[bs]. Leaves vl 16 at e16 LMUL 2. */
#define SI_SCALED_INIT(off)                    \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t"    \
    "vle8.v v0, (%[sc])\n\t"                   \
    "vsetvli zero, %[n32], e8, m2, ta, ma\n\t" \
    "vle8.v v4, (%[bs])\n\t"                   \
    "vsetivli zero, 16, e16, m2, ta, ma\n\t"   \
    "vsext.vf2 v2, v0\n\t"                     \
    "li t0, " off "\n\t"                       \
    "vmul.vx v2, v2, t0\n\t"                   \
    "vwmul.vv v24, v2, v4\n\t"

#define SI_SCALED_END                          \
    "vsetivli zero, 16, e32, m4, ta, ma\n\t"   \
    "vmv.s.x v0, zero\n\t"                     \
    "vredsum.vs v0, v24, v0\n\t"               \
    "vmv.x.s %[is], v0\n\t"

/* sum((q - 32) * scale * a) of one Q6_K block */
static inline int32_t fused_q6_K(const uint8_t *b, const int8_t *a, const uint8_t *bs)
{
    int32_t is;
    size_t n32 = 32, n64 = 64;
    const uint8_t *ql = b + offsetof(blk_q6_K, ql), *qh = b + offsetof(blk_q6_K, qh);
    const uint8_t *sc = b + offsetof(blk_q6_K, scales);
#define SI_Q6_HALF(qloff, qhoff, aoff, s0, s1, s2, s3, s4, s5, s6, s7) \
    "vsetvli zero, %[n64], e8, m4, ta, ma\n\t"                          \
    "addi t0, %[ql], " qloff "\n\t"                                     \
    "vle8.v v0, (t0)\n\t"                                               \
    "vand.vi v8, v0, 15\n\t"                                            \
    "vsrl.vi v12, v0, 4\n\t"                                            \
    "vsetvli zero, %[n32], e8, m2, ta, ma\n\t"                          \
    "addi t0, %[qh], " qhoff "\n\t"                                     \
    "vle8.v v4, (t0)\n\t"                                               \
    "vsll.vi v16, v4, 4\n\t"                                            \
    "vand.vx v16, v16, t1\n\t"                                          \
    "vsll.vi v18, v4, 2\n\t"                                            \
    "vand.vx v18, v18, t1\n\t"                                          \
    "vand.vx v20, v4, t1\n\t"                                           \
    "vsrl.vi v22, v4, 2\n\t"                                            \
    "vand.vx v22, v22, t1\n\t"                                          \
    "vsetvli zero, %[n64], e8, m4, ta, ma\n\t"                          \
    "vor.vv v8, v8, v16\n\t"                                            \
    "vor.vv v12, v12, v20\n\t"                                          \
    SI_SCALED_HALF(aoff, s0, s1, s2, s3, s4, s5, s6, s7)
    __asm__ volatile(
        SI_SCALED_INIT("-32")
        "li t1, 0x30\n\t"
        SI_Q6_HALF("0", "0", "0", "0", "1", "2", "3", "4", "5", "6", "7")
        SI_Q6_HALF("64", "32", "128", "8", "9", "10", "11", "12", "13", "14", "15")
        SI_SCALED_END
        : [is] "=r"(is)
        : [sc] "r"(sc), [ql] "r"(ql), [qh] "r"(qh), [a] "r"(a), [bs] "r"(bs), [n32] "r"(n32), [n64] "r"(n64)
        : SI_FUSED_CLOBBER, "t1");
#undef SI_Q6_HALF
    return is;
}

/* sum((q - 4) * (scale - 32) * a) of one Q3_K block; the 6-bit scales unpacked with
 * vector ops (low nibbles of bytes 0..7 and their high nibbles slid up by 8; the top
 * bits from bytes 8..11 replicated as a word per 4 groups and shifted by 2 per word).
 * Per half block (elements 128h + 32j + l, group 8h + 2j + l / 16): the 2-bit codes of
 * qs[32h..32h+31] and qs >> 2 side by side (e8 LMUL 4) give j = 0, 1 with one mask, and
 * shifted by 4 j = 2, 3; the high bits come from hmask and hmask >> 1 side by side
 * (v28..v31, loaded once), moved to bit 2, masked and less 4: 0 or -4, ORed in, so the
 * bytes are q - 4 in -4..3. Then both halves' products (vwmul e8 LMUL 4, the second
 * overwriting its activations) and per group one vwmacc.vx by scale - 32 (e16 LMUL 2 ->
 * e32 LMUL 4: |x| <= 16 * 512 * 32 per lane). */
static inline int32_t fused_q3_K(const uint8_t *b, const int8_t *a)
{
    int8_t tmp[16];
    int32_t is;
    const uint8_t *hm = b + offsetof(blk_q3_K, hmask), *qs = b + offsetof(blk_q3_K, qs);
    const uint8_t *raw = b + offsetof(blk_q3_K, scales);
#define SI_Q3_HBIT(bits, dst)          \
    bits                              \
    "vadd.vi v16, v16, -4\n\t"        \
    "vor.vv " dst ", " dst ", v16\n\t"
/* v16 = bit 2 of v28..v31 shifted left (sll) or right (srl) by s, masked */
#define SI_Q3_SLL(s) "vsll.vi v16, v28, " #s "\n\t" "vand.vi v16, v16, 4\n\t"
#define SI_Q3_SRL(s) "vsrl.vi v16, v28, " #s "\n\t" "vand.vi v16, v16, 4\n\t"
#define SI_Q3_GROUP(g, src)            \
    "lb t0, " g "(%[sc])\n\t"         \
    "vwmacc.vx v24, t0, " src "\n\t"
#define SI_Q3_HALF(qoff, aoff, hA, hB, first, s1, s2, s3, s4, s5, s6, s7) \
    "vsetvli t1, zero, e8, m2, ta, ma\n\t"                               \
    "addi t0, %[qs], " qoff "\n\t"                                       \
    "vle8.v v8, (t0)\n\t"                                                \
    "vsrl.vi v10, v8, 2\n\t"                                             \
    "vsetvli t1, zero, e8, m4, ta, ma\n\t"                               \
    "vsrl.vi v12, v8, 4\n\t"                                             \
    "vand.vi v12, v12, 3\n\t"                                            \
    "vand.vi v8, v8, 3\n\t"                                              \
    SI_Q3_HBIT(hA, "v8")                                                 \
    SI_Q3_HBIT(hB, "v12")                                                \
    "addi t0, %[a], " aoff "\n\t"                                        \
    "vle8.v v20, (t0)\n\t"                                               \
    "addi t0, %[a], " aoff " + 64\n\t"                                   \
    "vle8.v v4, (t0)\n\t"                                                \
    "vwmul.vv v16, v20, v8\n\t"                                          \
    "vwmul.vv v0, v4, v12\n\t"                                           \
    "vsetivli zero, 16, e16, m2, ta, ma\n\t"                             \
    first                                                                \
    SI_Q3_GROUP(s1, "v18")                                               \
    SI_Q3_GROUP(s2, "v20")                                               \
    SI_Q3_GROUP(s3, "v22")                                               \
    SI_Q3_GROUP(s4, "v0")                                                \
    SI_Q3_GROUP(s5, "v2")                                                \
    SI_Q3_GROUP(s6, "v4")                                                \
    SI_Q3_GROUP(s7, "v6")
    __asm__ volatile(
        "vsetivli zero, 8, e8, m1, ta, ma\n\t"
        "vle8.v v0, (%[raw])\n\t"
        "vand.vi v1, v0, 15\n\t"
        "vsrl.vi v2, v0, 4\n\t"
        "vsetivli zero, 16, e8, m1, ta, ma\n\t"
        "vslideup.vi v1, v2, 8\n\t"
        "vsetivli zero, 4, e8, m1, ta, ma\n\t"
        "addi t0, %[raw], 8\n\t"
        "vle8.v v2, (t0)\n\t"
        "vsetivli zero, 4, e32, m1, ta, ma\n\t"
        "vmv.x.s t0, v2\n\t"
        "vmv.v.x v2, t0\n\t"
        "vid.v v3\n\t"
        "vsll.vi v3, v3, 1\n\t"
        "vsrl.vv v2, v2, v3\n\t"
        "vsll.vi v2, v2, 4\n\t"
        "vand.vx v2, v2, %[c30]\n\t"
        "vsetivli zero, 16, e8, m1, ta, ma\n\t"
        "vor.vv v1, v1, v2\n\t"
        "vsub.vx v1, v1, %[c32]\n\t"
        "vse8.v v1, (%[sc])\n\t"
        "vsetvli t1, zero, e8, m2, ta, ma\n\t"
        "vle8.v v28, (%[hm])\n\t"
        "vsrl.vi v30, v28, 1\n\t"
        SI_Q3_HALF("0", "0", SI_Q3_SLL(2), "vand.vi v16, v28, 4\n\t", "lb t0, 0(%[sc])\n\tvwmul.vx v24, v16, t0\n\t",
                   "1", "2", "3", "4", "5", "6", "7")
        SI_Q3_HALF("32", "128", SI_Q3_SRL(2), SI_Q3_SRL(4), SI_Q3_GROUP("8", "v16"), "9", "10", "11", "12", "13", "14",
                   "15")
        SI_SCALED_END
        : [is] "=r"(is)
        : [sc] "r"(tmp), [raw] "r"(raw), [qs] "r"(qs), [hm] "r"(hm), [a] "r"(a), [c30] "r"(0x30303030L),
          [c32] "r"(32L)
        : SI_FUSED_CLOBBER, "t1");
#undef SI_Q3_HALF
#undef SI_Q3_GROUP
#undef SI_Q3_HBIT
#undef SI_Q3_SLL
#undef SI_Q3_SRL
    return is;
}

/* ---- Q4_K / Q5_K, VLEN 128 -------------------------------------------------------------- */

/* The packed 6-bit scales and mins of a Q4_K/Q5_K block (12 bytes at %[sc]) unpacked with
 * vector ops into %[tmp] as [sc0..3, m0..3, sc4..7, m4..7] (bytes; the same 16 bytes are
 * left in v2): q[0..7] & 63 gives sc0..3 and m0..3; sc4..7 and m4..7 take the low and
 * high nibbles of q[8..11] and, as bits 4-5, the top two bits of q[0..3] and q[4..7]. Reads
 * q[12..15] too (the block's next field), unused. */
#define SI_K4_UNPACK(c63)                    \
    "vsetivli zero, 8, e8, m1, ta, ma\n\t"  \
    "vle8.v v1, (%[sc])\n\t"                \
    "vand.vx v2, v1, " c63 "\n\t"           \
    "vsrl.vi v3, v1, 6\n\t"                 \
    "vsll.vi v3, v3, 4\n\t"                 \
    "addi t0, %[sc], 8\n\t"                 \
    "vle8.v v4, (t0)\n\t"                   \
    "vand.vi v5, v4, 15\n\t"                \
    "vsrl.vi v4, v4, 4\n\t"                 \
    "vslideup.vi v5, v4, 4\n\t"             \
    "vor.vv v3, v3, v5\n\t"                 \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t" \
    "vslideup.vi v2, v3, 8\n\t"             \
    "vse8.v v2, (%[tmp])\n\t"

/* One half block (128 elements, sub-blocks 4h..4h+3) of fused_q45_K: qs[64h..64h+63]'s low
 * nibbles are sub-blocks 4h and 4h+2 (v4..v7), the high ones 4h+1 and 4h+3 (v8..v11);
 * qbits ORs Q5_K's fifth bits in. Per sub-block one vwmulsu e8 LMUL 2 (codes <= 31 times
 * activations: |x| <= 3968 in 16 bits) and one vwmacc.vx by its scale into v24..v31 (e32
 * LMUL 8), two products per vtype switch; the second product of a pair overwrites its
 * own activations (the top half of a widening destination may overlap its source), so
 * v12..v15 stay free for Q5_K's high bits. */
#define SI_Q45_HALF(qoff, aoff, qbits, s0, s1, s2, s3, first) \
    "vsetvli t1, zero, e8, m4, ta, ma\n\t"                    \
    "addi t0, %[qs], " qoff "\n\t"                            \
    "vle8.v v0, (t0)\n\t"                                     \
    "vand.vi v4, v0, 15\n\t"                                  \
    "vsrl.vi v8, v0, 4\n\t"                                   \
    qbits                                                     \
    "vsetvli t1, zero, e8, m8, ta, ma\n\t"                    \
    "addi t0, %[a], " aoff "\n\t"                             \
    "vle8.v v16, (t0)\n\t"                                    \
    "vsetvli t1, zero, e8, m2, ta, ma\n\t"                    \
    "vwmulsu.vv v0, v16, v4\n\t"                              \
    "vwmulsu.vv v16, v18, v8\n\t"                             \
    "vsetvli t1, zero, e16, m4, ta, ma\n\t"                   \
    "lbu t0, " s0 "(%[tmp])\n\t"                              \
    first                                                     \
    "lbu t0, " s1 "(%[tmp])\n\t"                              \
    "vwmacc.vx v24, t0, v16\n\t"                              \
    "vsetvli t1, zero, e8, m2, ta, ma\n\t"                    \
    "vwmulsu.vv v0, v20, v6\n\t"                              \
    "vwmulsu.vv v20, v22, v10\n\t"                            \
    "vsetvli t1, zero, e16, m4, ta, ma\n\t"                   \
    "lbu t0, " s2 "(%[tmp])\n\t"                              \
    "vwmacc.vx v24, t0, v0\n\t"                               \
    "lbu t0, " s3 "(%[tmp])\n\t"                              \
    "vwmacc.vx v24, t0, v20\n\t"

/* Q5_K's fifth bits: bit s of qh[l] is bit 4 of element l of sub-block s. qh and
 * qh >> 2 side by side (v12..v15, e8 LMUL 4, loaded once) match the pairs (4h, 4h + 2)
 * and (4h + 1, 4h + 3) of the codes; one shift to bit 4, a mask (t2 = 16) and an OR each. */
#define SI_Q5_QH2                              \
    "vsetvli t1, zero, e8, m2, ta, ma\n\t"    \
    "vle8.v v12, (%[qh])\n\t"                 \
    "vsrl.vi v14, v12, 2\n\t"                 \
    "vsetvli t1, zero, e8, m4, ta, ma\n\t"
#define SI_Q5_HBITS(bits0, bits1)              \
    bits0                                     \
    "vor.vv v4, v4, v0\n\t"                   \
    bits1                                     \
    "vor.vv v8, v8, v0\n\t"
/* v0 = bit (4 - s) (s < 0: 4 + s) of v12..v15 moved to bit 4 and masked */
#define SI_Q5_SLL(s) "vsll.vi v0, v12, " #s "\n\t" "vand.vx v0, v0, %[c16]\n\t"
#define SI_Q5_SRL(s) "vsrl.vi v0, v12, " #s "\n\t" "vand.vx v0, v0, %[c16]\n\t"
#define SI_Q5_AT4 "vand.vx v0, v12, %[c16]\n\t"

/* The mins' part of a Q4_K/Q5_K block as floats: %[fm][s] = dmin * m_s (exact: an fp16
 * value times a 6-bit integer), the mins being the high words of v2's two 64-bit halves.
 * The rows' mins are dotted with the activations' pair-summed bsums afterwards
 * (gather_mins_g, dot_f32), as one float dot per row and token. */
#define SI_K4_FMINS(c32)                         \
    "vsetivli zero, 2, e32, mf2, ta, ma\n\t"    \
    "vnsrl.wx v6, v2, " c32 "\n\t"              \
    "vsetivli zero, 8, e32, m2, ta, ma\n\t"     \
    "vzext.vf4 v8, v6\n\t"                      \
    "vfcvt.f.xu.v v8, v8\n\t"                   \
    "vfmul.vf v8, v8, %[dmin]\n\t"              \
    "vse32.v v8, (%[fm])\n\t"

#define SI_Q45_END                               \
    "vsetvli t1, zero, e32, m8, ta, ma\n\t"     \
    "vmv.s.x v0, zero\n\t"                      \
    "vredsum.vs v0, v24, v0\n\t"                \
    "vmv.x.s %[is], v0\n\t"

#define SI_Q45_FIRST "vwmul.vx v24, v0, t0\n\t"
#define SI_Q45_NEXT "vwmacc.vx v24, t0, v0\n\t"

/* sum(code * sc * a) of one Q4_K block; fm[0..7] = dmin * mins */
static inline int32_t fused_q4_K(const uint8_t *b, const int8_t *a, float dmin, float *fm)
{
    uint8_t tmp[16];
    int32_t is;
    const uint8_t *sc = b + offsetof(blk_q4_K, scales), *qs = b + offsetof(blk_q4_K, qs);
    __asm__ volatile(
        SI_K4_UNPACK("%[c63]")
        SI_K4_FMINS("%[c32]")
        SI_Q45_HALF("0", "0", "", "0", "1", "2", "3", SI_Q45_FIRST)
        SI_Q45_HALF("64", "128", "", "8", "9", "10", "11", SI_Q45_NEXT)
        SI_Q45_END
        : [is] "=r"(is)
        : [sc] "r"(sc), [qs] "r"(qs), [a] "r"(a), [tmp] "r"(tmp), [dmin] "f"(dmin), [fm] "r"(fm), [c63] "r"(63L),
          [c32] "r"(32L)
        : SI_FUSED_CLOBBER, "t1");
    return is;
}

/* the same for Q5_K, the fifth bits ORed in per half */
static inline int32_t fused_q5_K(const uint8_t *b, const int8_t *a, float dmin, float *fm)
{
    uint8_t tmp[16];
    int32_t is;
    const uint8_t *sc = b + offsetof(blk_q5_K, scales), *qs = b + offsetof(blk_q5_K, qs);
    const uint8_t *qh = b + offsetof(blk_q5_K, qh);
    __asm__ volatile(
        SI_K4_UNPACK("%[c63]")
        SI_K4_FMINS("%[c32]")
        SI_Q45_HALF("0", "0", SI_Q5_QH2 SI_Q5_HBITS(SI_Q5_SLL(4), SI_Q5_SLL(3)), "0", "1", "2", "3",
                    SI_Q45_FIRST)
        SI_Q45_HALF("64", "128", SI_Q5_HBITS(SI_Q5_AT4, SI_Q5_SRL(1)), "8", "9", "10", "11",
                    SI_Q45_NEXT)
        SI_Q45_END
        : [is] "=r"(is)
        : [sc] "r"(sc), [qs] "r"(qs), [qh] "r"(qh), [a] "r"(a), [tmp] "r"(tmp), [dmin] "f"(dmin), [fm] "r"(fm),
          [c63] "r"(63L), [c32] "r"(32L), [c16] "r"(16L)
        : SI_FUSED_CLOBBER, "t1");
    return is;
}
#undef SI_Q45_HALF
#undef SI_Q5_HBITS
#undef SI_Q5_QH2
#undef SI_Q5_SLL
#undef SI_Q5_SRL
#undef SI_Q5_AT4
#undef SI_Q45_END
#undef SI_Q45_FIRST
#undef SI_Q45_NEXT

/* ---- several tokens, VLEN 128: Q4_K, Q5_K, Q6_K blocks decoded once to bytes --------- */

/* Q6_K, several tokens: the block's 256 codes q - 32 (-32..31) are decoded into v0..v15
 * as bytes (64 elements per e8 LMUL 4 group; at VLEN 128 each 16-element scale group is
 * one register, its e16 products one register pair) and stay there while the tokens'
 * activations stream past, two tokens per iteration (accumulators v24..v27 and v28..v31)
 * and a last one alone. Per token and 64 elements: one activation load into v20..v23
 * (the top half of the product group: a widening op may overlap there), one vwmul e8
 * LMUL 4 -> e16 LMUL 8 (|x| <= 32 * 128 = 4096, one product per lane), and per group one
 * vwmacc.vx by its scale (a scalar register for the whole loop) at e16 LMUL 2 -> e32
 * LMUL 4 (|sum| <= 256 * 4096 * 128). Only at VLEN 128 (vsetvl with x0 = VLMAX). */
#define SI_Q6_MUL(w, first, sb, sc, sd, acc)      \
    "vwmul.vv v16, v20, " w "\n\t"              \
    "vsetvli t1, zero, e16, m2, ta, ma\n\t"     \
    first                                       \
    "vwmacc.vx " acc ", " sb ", v18\n\t"        \
    "vwmacc.vx " acc ", " sc ", v20\n\t"        \
    "vwmacc.vx " acc ", " sd ", v22\n\t"
/* one chunk of 64 elements for the token at %[a] and, if two, the one at %[a] + stride */
#define SI_Q6_CHUNK1(w, sa, sb, sc, sd, op, step) \
    "vsetvli t1, zero, e8, m4, ta, ma\n\t"      \
    "vle8.v v20, (%[a])\n\t"                    \
    "addi %[a], %[a], 64\n\t"                   \
    SI_Q6_MUL(w, SI_Q6_##op(sa, "v24"), sb, sc, sd, "v24")
/* (the last chunk's step is folded into the loop's step to the next pair) */
#define SI_Q6_CHUNK2(w, sa, sb, sc, sd, op, step) \
    "vsetvli t1, zero, e8, m4, ta, ma\n\t"      \
    "vle8.v v20, (%[a])\n\t"                    \
    SI_Q6_MUL(w, SI_Q6_##op(sa, "v24"), sb, sc, sd, "v24") \
    "vsetvli t1, zero, e8, m4, ta, ma\n\t"      \
    "add t0, %[a], %[s]\n\t"                    \
    "vle8.v v20, (t0)\n\t"                      \
    step                                        \
    SI_Q6_MUL(w, SI_Q6_##op(sa, "v28"), sb, sc, sd, "v28")
#define SI_Q6_FIRST(s, acc) "vwmul.vx " acc ", v16, " s "\n\t"
#define SI_Q6_NEXT(s, acc) "vwmacc.vx " acc ", " s ", v16\n\t"
/* v0 = elements 0..63, v8 = 64..127, v4 = 128..191, v12 = 192..255; scales g0..g15 in
 * t2..t6, s1..s11 */
#define SI_Q6_STEP "addi %[a], %[a], 64\n\t"
#define SI_Q6_TOKEN(chunk)                                            \
    chunk("v0", "t2", "t3", "t4", "t5", FIRST, SI_Q6_STEP)            \
    chunk("v8", "t6", "s1", "s2", "s3", NEXT, SI_Q6_STEP)             \
    chunk("v4", "s4", "s5", "s6", "s7", NEXT, SI_Q6_STEP)             \
    chunk("v12", "s8", "s9", "s10", "s11", NEXT, "")

/* isum[t] = sum((q - 32) * scale * a_t) of one Q6_K block for nt tokens */
static inline void tok_q6_K(const uint8_t *b, const int8_t *a, size_t stride, int64_t nt, int32_t *isum)
{
    const size_t adv2 = 2 * stride - 192, odd = (size_t)nt & 1;
    /* ql at b + 0, qh at b + 128. Half block h's elements 0..63 are ql[64h..64h+63]'s low
     * nibbles with qh[32h..32h+31]'s bits 0-1 (first 32) and 2-3 as bits 4-5; elements
     * 64..127 the high nibbles with bits 4-5 and 6-7. Both halves at once at e8 LMUL 8:
     * v0..v7 = elements 0..63 | 128..191, v8..v15 = 64..127 | 192..255, the high bits
     * from qh and qh >> 2 of each half side by side (v24..v31), the -32 folded in. */
    __asm__ volatile(
        "li t0, 0x30\n\t"
        "li t2, 32\n\t"
        "vsetvli t1, zero, e8, m8, ta, ma\n\t"
        "vle8.v v16, (%[b])\n\t"
        "vand.vi v0, v16, 15\n\t"
        "vsrl.vi v8, v16, 4\n\t"
        "vsetvli t1, zero, e8, m2, ta, ma\n\t"
        "addi t1, %[b], 128\n\t"
        "vle8.v v24, (t1)\n\t"
        "addi t1, %[b], 160\n\t"
        "vle8.v v28, (t1)\n\t"
        "vsrl.vi v26, v24, 2\n\t"
        "vsrl.vi v30, v28, 2\n\t"
        "vsetvli t1, zero, e8, m8, ta, ma\n\t"
        "vsll.vi v16, v24, 4\n\t"
        "vand.vx v16, v16, t0\n\t"
        "vsub.vx v16, v16, t2\n\t"
        "vadd.vv v0, v0, v16\n\t"
        "vand.vx v16, v24, t0\n\t"
        "vsub.vx v16, v16, t2\n\t"
        "vadd.vv v8, v8, v16\n\t"
        /* the 16 signed scales into scalar registers for the whole token loop */
        "lb t2, 192(%[b])\n\t"
        "lb t3, 193(%[b])\n\t"
        "lb t4, 194(%[b])\n\t"
        "lb t5, 195(%[b])\n\t"
        "lb t6, 196(%[b])\n\t"
        "lb s1, 197(%[b])\n\t"
        "lb s2, 198(%[b])\n\t"
        "lb s3, 199(%[b])\n\t"
        "lb s4, 200(%[b])\n\t"
        "lb s5, 201(%[b])\n\t"
        "lb s6, 202(%[b])\n\t"
        "lb s7, 203(%[b])\n\t"
        "lb s8, 204(%[b])\n\t"
        "lb s9, 205(%[b])\n\t"
        "lb s10, 206(%[b])\n\t"
        "lb s11, 207(%[b])\n\t"
        "beq %[o], %[oe], 2f\n\t"
        "1:\n\t"
        SI_Q6_TOKEN(SI_Q6_CHUNK2)
        "vsetvli t1, zero, e32, m4, ta, ma\n\t"
        "vmv.s.x v16, zero\n\t"
        "vredsum.vs v17, v24, v16\n\t"
        "vredsum.vs v18, v28, v16\n\t"
        "vmv.x.s t0, v17\n\t"
        "sw t0, 0(%[o])\n\t"
        "vmv.x.s t0, v18\n\t"
        "sw t0, 4(%[o])\n\t"
        "addi %[o], %[o], 8\n\t"
        "add %[a], %[a], %[adv2]\n\t"
        "bne %[o], %[oe], 1b\n\t"
        "2:\n\t"
        "beqz %[odd], 3f\n\t"
        SI_Q6_TOKEN(SI_Q6_CHUNK1)
        "vsetvli t1, zero, e32, m4, ta, ma\n\t"
        "vmv.s.x v16, zero\n\t"
        "vredsum.vs v17, v24, v16\n\t"
        "vmv.x.s t0, v17\n\t"
        "sw t0, 0(%[o])\n\t"
        "3:\n\t"
        : [a] "+r"(a), [o] "+r"(isum)
        : [b] "r"(b), [adv2] "r"(adv2), [s] "r"(stride), [oe] "r"(isum + (nt & ~(int64_t)1)), [odd] "r"(odd)
        : SI_FUSED_CLOBBER, "t1", "t2", "t3", "t4", "t5", "t6", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9",
          "s10", "s11");
}
#undef SI_Q6_MUL
#undef SI_Q6_CHUNK1
#undef SI_Q6_CHUNK2
#undef SI_Q6_FIRST
#undef SI_Q6_NEXT
#undef SI_Q6_TOKEN
#undef SI_Q6_STEP

/* Q4_K/Q5_K, several tokens: the loop ends on a pointer compare */
#define SI_B8_LOOP_END                          \
    "addi %[o], %[o], 4\n\t"                    \
    "add %[a], %[a], %[adv]\n\t"                \
    "bne %[o], %[oe], 1b\n\t"
#define SI_B8_CLOBBER SI_FUSED_CLOBBER, "t1"

/* isum[t] = sum(code * sc * a_t) of one Q4_K/Q5_K block for nt tokens, and fm[0..7] =
 * dmin * mins (SI_K4_FMINS). The codes: qs[32c..32c+31]'s low nibbles are sub-block 2c
 * (v4c, v4c+1), the high ones 2c+1 (v4c+2, v4c+3), so that each e8 LMUL 4 group holds 64
 * consecutive elements. Per token and 64 elements: one activation load into v20..v23 (the top half
 * of the product group: a widening op may overlap there), one vwmulsu e8 LMUL 4 -> e16
 * LMUL 8 (|x| <= 31 * 128) and per sub-block one vwmacc.vx by its scale (e16 LMUL 4 ->
 * e32 LMUL 8, |sum| <= 8 * 3968 * 63 per lane). */
static inline void tok_q45_K(const uint8_t *b, int has_qh, const int8_t *a, size_t stride, int64_t nt,
                             int32_t *isum, float dmin, float *fm)
{
    uint8_t tmp[16];
    const uint8_t *sc = b + offsetof(blk_q4_K, scales);
    const uint8_t *qs = b + (has_qh ? offsetof(blk_q5_K, qs) : offsetof(blk_q4_K, qs));
    const uint8_t *qh = b + offsetof(blk_q5_K, qh);
    const size_t adv = stride - 192; /* the last chunk's 64 folded into the step to the next token */
#define SI_Q45_CHUNK(w, first, sb, step)        \
    "vsetvli t1, zero, e8, m4, ta, ma\n\t"      \
    "vle8.v v20, (%[a])\n\t"                    \
    step                                        \
    "vwmulsu.vv v16, v20, " w "\n\t"            \
    "vsetvli t1, zero, e16, m4, ta, ma\n\t"     \
    first                                       \
    "vwmacc.vx v24, " sb ", v20\n\t"
#define SI_Q45_STEP "addi %[a], %[a], 64\n\t"
    __asm__ volatile(
        "li t0, 63\n\t"
        SI_K4_UNPACK("t0")
        "li t0, 32\n\t"
        SI_K4_FMINS("t0")
        "vsetvli t1, zero, e8, m8, ta, ma\n\t"
        "vle8.v v16, (%[q])\n\t"
        "vsetvli t1, zero, e8, m2, ta, ma\n\t"
        "vand.vi v0, v16, 15\n\t"
        "vsrl.vi v2, v16, 4\n\t"
        "vand.vi v4, v18, 15\n\t"
        "vsrl.vi v6, v18, 4\n\t"
        "vand.vi v8, v20, 15\n\t"
        "vsrl.vi v10, v20, 4\n\t"
        "vand.vi v12, v22, 15\n\t"
        "vsrl.vi v14, v22, 4\n\t"
        /* Q5_K: qh, qh >> 1, qh >> 2, qh >> 3 side by side (v16..v23): bit 0 of each to
         * bit 4 for sub-blocks 0..3 (v0..v7), bit 4 as it is for sub-blocks 4..7 */
        "beqz %[hq], 2f\n\t"
        "vle8.v v16, (%[h])\n\t"
        "vsrl.vi v18, v16, 1\n\t"
        "vsrl.vi v20, v16, 2\n\t"
        "vsrl.vi v22, v16, 3\n\t"
        "li t0, 16\n\t"
        "vsetvli t1, zero, e8, m8, ta, ma\n\t"
        "vsll.vi v24, v16, 4\n\t"
        "vand.vx v24, v24, t0\n\t"
        "vor.vv v0, v0, v24\n\t"
        "vand.vx v24, v16, t0\n\t"
        "vor.vv v8, v8, v24\n\t"
        "2:\n\t"
        "lbu t2, 0(%[tmp])\n\t"
        "lbu t3, 1(%[tmp])\n\t"
        "lbu t4, 2(%[tmp])\n\t"
        "lbu t5, 3(%[tmp])\n\t"
        "lbu t6, 8(%[tmp])\n\t"
        "lbu s1, 9(%[tmp])\n\t"
        "lbu s2, 10(%[tmp])\n\t"
        "lbu s3, 11(%[tmp])\n\t"
        "1:\n\t"
        SI_Q45_CHUNK("v0", "vwmul.vx v24, v16, t2\n\t", "t3", SI_Q45_STEP)
        SI_Q45_CHUNK("v4", "vwmacc.vx v24, t4, v16\n\t", "t5", SI_Q45_STEP)
        SI_Q45_CHUNK("v8", "vwmacc.vx v24, t6, v16\n\t", "s1", SI_Q45_STEP)
        SI_Q45_CHUNK("v12", "vwmacc.vx v24, s2, v16\n\t", "s3", "")
        "vsetvli t1, zero, e32, m8, ta, ma\n\t"
        "vmv.s.x v16, zero\n\t"
        "vredsum.vs v16, v24, v16\n\t"
        "vmv.x.s t0, v16\n\t"
        "sw t0, 0(%[o])\n\t"
        SI_B8_LOOP_END
        : [a] "+r"(a), [o] "+r"(isum)
        : [q] "r"(qs), [h] "r"(qh), [hq] "r"((long)has_qh), [sc] "r"(sc), [adv] "r"(adv), [tmp] "r"(tmp),
          [oe] "r"(isum + nt), [dmin] "f"(dmin), [fm] "r"(fm)
        : SI_B8_CLOBBER, "t2", "t3", "t4", "t5", "t6", "s1", "s2", "s3");
#undef SI_Q45_CHUNK
#undef SI_Q45_STEP
}
/* ---- Q4_K, Q5_K, Q6_K at VLEN >= 256 --------------------------------------------------- */

/* Their code times scale does not fit a byte: the block is decoded at full width as for
 * Q2_K (codes in natural order through the buffers, scales one byte per element: Q4_K/
 * Q5_K's eight doubled to 16 first) and multiplied to 16-bit weights (vwmulu/vwmul at e8
 * LMUL 4) held in v0..v15 (VLEN 256) or v0..v7; Q6_K's codes carry their -32. Per token
 * the activations are sign-extended to e16 in chunks of E16 = min(256, VLMAX at e16
 * LMUL 4) (64 at VLEN 256, chunks at v0, v4, v8, v12; 128 at 512; 256 from 1024) and one
 * vwmacc.vv per chunk sums into 32-bit lanes (|w| <= 31 * 63 or 32 * 128, times 128,
 * 256 / E16 products per lane), one reduction per token. kq_wide16() is 256 / E16. */
static int wide16_chunks = -1;

static inline int kq_wide16(void)
{
    if (wide16_chunks < 0) {
        const size_t m4 = __riscv_vsetvlmax_e16m4();
        wide16_chunks = m4 < 64 ? 0 : m4 < 128 ? 4 : m4 < 256 ? 2 : 1;
    }
    return wide16_chunks;
}

/* Which one-token Q4_K/Q5_K kernel runs, decided once: VLEN 256 and 512 (vlenb 32, 64)
 * have their own (fused256_q4_K, fused512_q4_K: register numbers as sub-blocks), any
 * other VLEN >= 256 the agnostic one (fusedw_q4_K, 0 here). */
static int k4_vlen = -1;

static inline int kq_k4_vlen(void)
{
    if (k4_vlen < 0) {
        const size_t vlenb = __riscv_vsetvlmax_e8m1();
        k4_vlen = vlenb == 32 ? 256 : vlenb == 64 ? 512 : 0;
    }
    return k4_vlen;
}


/* the 16-bit weights: codes (v16.., e8) times scales (at %[W]) into v0.. */
#define SI_W16_MUL2(op)                         \
    "li t0, 256\n\t"                            \
    "vsetvli zero, t0, e8, m8, ta, ma\n\t"      \
    "vle8.v v24, (%[W])\n\t"                    \
    "vsetvli zero, %[n8], e8, m4, ta, ma\n\t"   \
    op " v0, v16, v24\n\t"                      \
    op " v8, v20, v28\n\t"
#define SI_W16_MUL1(op)                         \
    "li t0, 256\n\t"                            \
    "vsetvli zero, t0, e8, m8, ta, ma\n\t"      \
    "vle8.v v24, (%[W])\n\t"                    \
    "vsetvli zero, %[n8], e8, m4, ta, ma\n\t"   \
    op " v0, v16, v24\n\t"
/* one token: chunks of E16 (%[n]) at v0, v4 (, v8, v12) */
#define SI_W16_FIRST                            \
    "1:\n\t"                                    \
    "vsetvli zero, %[n], e16, m4, ta, ma\n\t"   \
    "vle8.v v16, (%[a])\n\t"                    \
    "vsext.vf2 v20, v16\n\t"                    \
    "vwmul.vv v24, v20, v0\n\t"                 \
    "mv t0, %[a]\n\t"
#define SI_W16_NEXT(w)                          \
    "add t0, t0, %[n]\n\t"                      \
    "vle8.v v16, (t0)\n\t"                      \
    "vsext.vf2 v20, v16\n\t"                    \
    "vwmacc.vv v24, v20, " w "\n\t"
#define SI_W16_END                              \
    "vsetvli zero, %[n], e32, m8, ta, ma\n\t"   \
    "vredsum.vs v19, v24, v18\n\t"              \
    "vmv.x.s t0, v19\n\t"                       \
    "sw t0, 0(%[o])\n\t"                        \
    "addi %[o], %[o], 4\n\t"                    \
    "add %[a], %[a], %[s]\n\t"                  \
    "addi %[nt], %[nt], -1\n\t"                 \
    "bnez %[nt], 1b\n\t"
#define SI_W16_TOK4 SI_W16_FIRST SI_W16_NEXT("v4") SI_W16_NEXT("v8") SI_W16_NEXT("v12") SI_W16_END
#define SI_W16_TOK2 SI_W16_FIRST SI_W16_NEXT("v4") SI_W16_END
#define SI_W16_TOK1 SI_W16_FIRST SI_W16_END
#define SI_W16_ZERO                             \
    "vsetivli zero, 1, e32, m1, ta, ma\n\t"     \
    "vmv.s.x v18, zero\n\t"
/* the decode (dec, with the weights' multiply mul), then the token loop, by the chunks
 * of the decode's multiply (ch: 2 or 1) and of the token loop (c16: 4, 2, 1) */
#define SI_W16_RUN(dec, op, args)                                                  \
    do {                                                                           \
        if (ch == 2)                                                               \
            __asm__ volatile(dec SI_W16_MUL2(op) SI_W16_ZERO SI_W16_TOK4 args);    \
        else if (c16 == 2)                                                         \
            __asm__ volatile(dec SI_W16_MUL1(op) SI_W16_ZERO SI_W16_TOK2 args);    \
        else                                                                       \
            __asm__ volatile(dec SI_W16_MUL1(op) SI_W16_ZERO SI_W16_TOK1 args);    \
    } while (0)

/* each 32-byte half of 64 bytes at src repeated four times at dst (copy at q; uses t0,
 * t6) */
#define SI_WIDE_HALVES4(src, q, dst)            \
    "li t0, 64\n\t"                             \
    "vsetvli zero, t0, e8, m4, ta, ma\n\t"      \
    "vle8.v v8, (" src ")\n\t"                  \
    "vse8.v v8, (" q ")\n\t"                    \
    "vsetivli zero, 4, e64, m1, ta, ma\n\t"     \
    "li t6, 32\n\t"                             \
    "vlsseg4e64.v v8, (" q "), zero\n\t"        \
    "vssseg4e64.v v8, (" dst "), t6\n\t"        \
    "addi t0, " q ", 32\n\t"                    \
    "vlsseg4e64.v v8, (t0), zero\n\t"           \
    "addi t0, " dst ", 128\n\t"                 \
    "vssseg4e64.v v8, (t0), t6\n\t"

/* isum[t] = sum(code * sc * a_t) of one Q4_K/Q5_K block for nt tokens, fm[0..7] = dmin *
 * mins (SI_K4_FMINS), at VLEN >= 256 */
static inline void tokw_q45_K(int ch, int c16, const uint8_t *b, int has_qh, const int8_t *a, size_t stride,
                              int64_t nt, int32_t *isum, float dmin, float *fm, wscratch *ws)
{
    size_t n = SI_QK_K / (size_t)c16, n8 = SI_QK_K / (size_t)ch;
    const uint8_t *sc = b + offsetof(blk_q4_K, scales);
    const uint8_t *qs = b + (has_qh ? offsetof(blk_q5_K, qs) : offsetof(blk_q4_K, qs));
    const uint8_t *qh = b + offsetof(blk_q5_K, qh);
#define SI_WIDE_K4_DEC                                                                  \
    "li t0, 63\n\t"                                                                     \
    SI_K4_UNPACK("t0")                                                                  \
    "li t0, 32\n\t"                                                                     \
    SI_K4_FMINS("t0")                                                                   \
    /* sc0..3 and sc4..7 (two words 8 bytes apart), each byte doubled, spread */        \
    "vsetivli zero, 2, e32, mf2, ta, ma\n\t"                                            \
    "li t1, 8\n\t"                                                                      \
    "vlse32.v v16, (%[tmp]), t1\n\t"                                                    \
    "vsetivli zero, 8, e16, m1, ta, ma\n\t"                                             \
    "vzext.vf2 v18, v16\n\t"                                                            \
    "li t0, 257\n\t"                                                                    \
    "vmul.vx v17, v18, t0\n\t"                                                          \
    SI_WIDE_REP16                                                                       \
    /* qs[32c..32c+31] at 64c and 64c + 32, shifted by 0 and 4 */                       \
    "li t0, 128\n\t"                                                                    \
    "vsetvli zero, t0, e8, m4, ta, ma\n\t"                                              \
    "vle8.v v8, (%[qs])\n\t"                                                            \
    "addi t5, %[W], 768\n\t"                                                            \
    "vse8.v v8, (t5)\n\t"                                                               \
    "vsetivli zero, 4, e64, m1, ta, ma\n\t"                                             \
    "li t1, 64\n\t"                                                                     \
    "li t6, 32\n\t"                                                                     \
    "addi t3, %[W], 256\n\t"                                                            \
    "vlsseg4e64.v v8, (t5), t6\n\t"                                                     \
    "vssseg4e64.v v8, (t3), t1\n\t"                                                     \
    "addi t0, t3, 32\n\t"                                                               \
    "vssseg4e64.v v8, (t0), t1\n\t"                                                     \
    "beqz %[hq], 3f\n\t"                                                                \
    /* Q5_K: qh repeated eight times at t4 */                                         \
    "li t0, 32\n\t"                                                                     \
    "vsetvli zero, t0, e8, m2, ta, ma\n\t"                                              \
    "vle8.v v8, (%[qh])\n\t"                                                            \
    "addi t0, t5, 128\n\t"                                                              \
    "vse8.v v8, (t0)\n\t"                                                               \
    "vsetivli zero, 8, e64, m2, ta, ma\n\t"                                             \
    "addi t4, %[W], 512\n\t"                                                            \
    "vlsseg4e64.v v8, (t0), zero\n\t"                                                   \
    "vssseg4e64.v v8, (t4), t6\n\t"                                                     \
    "3:\n\t"                                                                            \
    "li t0, 256\n\t"                                                                    \
    "vsetvli zero, t0, e8, m8, ta, ma\n\t"                                              \
    "vle8.v v16, (t3)\n\t"                                                              \
    "addi t0, %[T], 512\n\t"                                                            \
    "vle8.v v8, (t0)\n\t"                                                               \
    "vsrl.vv v16, v16, v8\n\t"                                                          \
    "vand.vi v16, v16, 15\n\t"                                                          \
    "beqz %[hq], 4f\n\t"                                                                \
    /* bit k = i / 32 of the repeated qh to bit 4 */                                    \
    "vle8.v v8, (t4)\n\t"                                                               \
    "addi t0, %[T], 256\n\t"                                                            \
    "vle8.v v24, (t0)\n\t"                                                              \
    "vsrl.vv v8, v8, v24\n\t"                                                           \
    "vand.vi v8, v8, 1\n\t"                                                             \
    "vsll.vi v8, v8, 4\n\t"                                                             \
    "vor.vv v16, v16, v8\n\t"                                                           \
    "4:\n\t"
#define SI_WIDE_K4_ARGS                                                                                        \
    : [a] "+r"(a), [o] "+r"(isum), [nt] "+r"(nt)                                                                \
    : [n] "r"(n), [n8] "r"(n8), [s] "r"(stride), [sc] "r"(sc), [qs] "r"(qs), [qh] "r"(qh),                   \
      [hq] "r"((long)has_qh), [tmp] "r"(ws->t), [dmin] "f"(dmin), [fm] "r"(fm), [W] "r"(ws), [T] "r"(&wide_tab) \
    : SI_FUSED_CLOBBER, "t1", "t3", "t4", "t5", "t6"
    SI_W16_RUN(SI_WIDE_K4_DEC, "vwmulu.vv", SI_WIDE_K4_ARGS);
#undef SI_WIDE_K4_DEC
#undef SI_WIDE_K4_ARGS
}

/* isum[t] = sum((q - 32) * scale * a_t) of one Q6_K block, at VLEN >= 256: the low
 * nibbles from ql's 64-byte halves, each repeated twice (shifted by 4 the second time),
 * the high bits from qh's 32-byte halves repeated four times (shifted by 2qu) */
static inline void tokw_q6_K(int ch, int c16, const uint8_t *b, const int8_t *a, size_t stride, int64_t nt,
                             int32_t *isum, wscratch *ws)
{
    size_t n = SI_QK_K / (size_t)c16, n8 = SI_QK_K / (size_t)ch;
#define SI_WIDE_Q6_DEC                                  \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t"             \
    "addi t0, %[b], %[osc]\n\t"                         \
    "vle8.v v17, (t0)\n\t"                              \
    SI_WIDE_REP16                                       \
    "li t0, 128\n\t"                                    \
    "vsetvli zero, t0, e8, m4, ta, ma\n\t"              \
    "vle8.v v8, (%[b])\n\t" /* ql */                    \
    "addi t5, %[W], 768\n\t"                            \
    "vse8.v v8, (t5)\n\t"                               \
    "vsetivli zero, 2, e64, m1, ta, ma\n\t"             \
    "li t1, 64\n\t"                                     \
    "li t2, 128\n\t"                                    \
    "addi t3, %[W], 256\n\t"                            \
    "vlsseg8e64.v v8, (t5), t1\n\t"                     \
    "vssseg8e64.v v8, (t3), t2\n\t"                     \
    "addi t0, t3, 64\n\t"                               \
    "vssseg8e64.v v8, (t0), t2\n\t"                     \
    "addi t1, t5, 128\n\t"                              \
    "addi t2, %[b], %[oqh]\n\t"                         \
    "addi t4, %[W], 512\n\t"                            \
    SI_WIDE_HALVES4("t2", "t1", "t4")                   \
    "li t0, 256\n\t"                                    \
    "vsetvli zero, t0, e8, m8, ta, ma\n\t"              \
    "vle8.v v16, (t3)\n\t"                              \
    "addi t0, %[T], 768\n\t"                            \
    "vle8.v v8, (t0)\n\t"                               \
    "vsrl.vv v16, v16, v8\n\t"                          \
    "vand.vi v16, v16, 15\n\t"                          \
    "vle8.v v8, (t4)\n\t"                               \
    "vle8.v v24, (%[T])\n\t"                            \
    "vsrl.vv v8, v8, v24\n\t"                           \
    "vand.vi v8, v8, 3\n\t"                             \
    "vsll.vi v8, v8, 4\n\t"                             \
    "vor.vv v16, v16, v8\n\t"                           \
    "li t0, 32\n\t"                                     \
    "vsub.vx v16, v16, t0\n\t"
#define SI_WIDE_Q6_ARGS                                                                                       \
    : [a] "+r"(a), [o] "+r"(isum), [nt] "+r"(nt)                                                               \
    : [n] "r"(n), [n8] "r"(n8), [s] "r"(stride), [b] "r"(b), [W] "r"(ws), [T] "r"(&wide_tab),                   \
      [osc] "i"(offsetof(blk_q6_K, scales)), [oqh] "i"(offsetof(blk_q6_K, qh))                                   \
    : SI_FUSED_CLOBBER, "t1", "t2", "t3", "t4", "t5", "t6"
    SI_W16_RUN(SI_WIDE_Q6_DEC, "vwmul.vv", SI_WIDE_Q6_ARGS);
#undef SI_WIDE_Q6_DEC
#undef SI_WIDE_Q6_ARGS
}
#undef SI_W16_MUL2
#undef SI_W16_MUL1
#undef SI_W16_FIRST
#undef SI_W16_NEXT
#undef SI_W16_END
#undef SI_W16_TOK4
#undef SI_W16_TOK2
#undef SI_W16_TOK1
#undef SI_W16_ZERO
#undef SI_W16_RUN
#undef SI_WIDE_HALVES4
#undef SI_WIDE_REP16
#undef SI_WIDE_CODES
#undef SI_WIDE_2BIT
#undef SI_WIDE_SCALE
/* One token of Q4_K/Q5_K at VLEN >= 256 (it runs from 1024; 256 and 512 have their own
 * below, fused256_q4_K and fused512_q4_K), without the 16-bit weights: per sub-block
 * (vl 32 at e8 LMUL 1, which holds 32 at any VLEN >= 256) the codes, their widening
 * product with the activations into its own e16 LMUL 2 group (v8..v23), then one
 * vwmacc.vx per sub-block by its scale (from the unpacked scales at %[tmp]) into an
 * e32 LMUL 4 accumulator: fused_q4_K's operations at vl 32, so VLEN-agnostic. Q5_K's
 * fifth bits: bit s of qh moved to bit 4 per sub-block. fm[0..7] = dmin * mins. */
#define SI_FW_PAIR(c, qoff, aoff, hlo, hhi)      \
    "addi t0, %[qs], " qoff "\n\t"              \
    "vle8.v v1, (t0)\n\t"                       \
    "vand.vi v2, v1, 15\n\t"                    \
    "vsrl.vi v3, v1, 4\n\t"                     \
    hlo hhi                                     \
    "addi t0, %[a], " aoff "\n\t"               \
    "vle8.v v5, (t0)\n\t"                       \
    "addi t0, t0, 32\n\t"                       \
    "vle8.v v6, (t0)\n\t"                       \
    "vwmulsu.vv v" #c ", v5, v2\n\t"
/* the second product of a pair goes to the group after the first (c + 2) */
#define SI_FW_PAIR2(c0, c1, qoff, aoff, hlo, hhi) \
    SI_FW_PAIR(c0, qoff, aoff, hlo, hhi)        \
    "vwmulsu.vv v" #c1 ", v6, v3\n\t"
/* v7 = bit s of qh (v4) at bit 4, ORed into dst */
#define SI_FW_HB(dst, shift) shift "vand.vx v7, v7, t1\n\t" "vor.vv " dst ", " dst ", v7\n\t"
#define SI_FW_SLL(s) "vsll.vi v7, v4, " #s "\n\t"
#define SI_FW_SRL(s) "vsrl.vi v7, v4, " #s "\n\t"
#define SI_FW_MAC(reg, off)                     \
    "lbu t0, " off "(%[tmp])\n\t"              \
    "vwmacc.vx v24, t0, " reg "\n\t"
#define SI_FW_HEAD                              \
    "li t0, 63\n\t"                             \
    SI_K4_UNPACK("t0")                          \
    "li t0, 32\n\t"                             \
    SI_K4_FMINS("t0")                           \
    "li t0, 32\n\t"                             \
    "vsetvli zero, t0, e8, m1, ta, ma\n\t"
#define SI_FW_TAIL                              \
    "vsetvli zero, t0, e16, m2, ta, ma\n\t"     \
    "lbu t1, 0(%[tmp])\n\t"                     \
    "vwmul.vx v24, v8, t1\n\t"                  \
    SI_FW_MAC("v10", "1") SI_FW_MAC("v12", "2") SI_FW_MAC("v14", "3") SI_FW_MAC("v16", "8") \
    SI_FW_MAC("v18", "9") SI_FW_MAC("v20", "10") SI_FW_MAC("v22", "11")                 \
    "li t0, 32\n\t"                             \
    "vsetvli zero, t0, e32, m4, ta, ma\n\t"     \
    "vmv.s.x v28, zero\n\t"                     \
    "vredsum.vs v28, v24, v28\n\t"              \
    "vmv.x.s %[is], v28\n\t"
static inline int32_t fusedw_q4_K(const uint8_t *b, const int8_t *a, float dmin, float *fm, uint8_t *tmp)
{
    int32_t is;
    const uint8_t *sc = b + offsetof(blk_q4_K, scales), *qs = b + offsetof(blk_q4_K, qs);
    __asm__ volatile(
        SI_FW_HEAD
        SI_FW_PAIR2(8, 10, "0", "0", "", "")
        SI_FW_PAIR2(12, 14, "32", "64", "", "")
        SI_FW_PAIR2(16, 18, "64", "128", "", "")
        SI_FW_PAIR2(20, 22, "96", "192", "", "")
        SI_FW_TAIL
        : [is] "=r"(is)
        : [sc] "r"(sc), [qs] "r"(qs), [a] "r"(a), [tmp] "r"(tmp), [dmin] "f"(dmin), [fm] "r"(fm)
        : SI_FUSED_CLOBBER, "t1");
    return is;
}

static inline int32_t fusedw_q5_K(const uint8_t *b, const int8_t *a, float dmin, float *fm, uint8_t *tmp)
{
    int32_t is;
    const uint8_t *sc = b + offsetof(blk_q5_K, scales), *qs = b + offsetof(blk_q5_K, qs);
    const uint8_t *qh = b + offsetof(blk_q5_K, qh);
    __asm__ volatile(
        SI_FW_HEAD
        "vle8.v v4, (%[qh])\n\t"
        "li t1, 16\n\t"
        SI_FW_PAIR2(8, 10, "0", "0", SI_FW_HB("v2", SI_FW_SLL(4)), SI_FW_HB("v3", SI_FW_SLL(3)))
        SI_FW_PAIR2(12, 14, "32", "64", SI_FW_HB("v2", SI_FW_SLL(2)), SI_FW_HB("v3", SI_FW_SLL(1)))
        SI_FW_PAIR2(16, 18, "64", "128", SI_FW_HB("v2", "vmv.v.v v7, v4\n\t"), SI_FW_HB("v3", SI_FW_SRL(1)))
        SI_FW_PAIR2(20, 22, "96", "192", SI_FW_HB("v2", SI_FW_SRL(2)), SI_FW_HB("v3", SI_FW_SRL(3)))
        SI_FW_TAIL
        : [is] "=r"(is)
        : [sc] "r"(sc), [qs] "r"(qs), [qh] "r"(qh), [a] "r"(a), [tmp] "r"(tmp), [dmin] "f"(dmin), [fm] "r"(fm)
        : SI_FUSED_CLOBBER, "t1");
    return is;
}

/* One token of Q4_K/Q5_K at VLEN 256 exactly (kq_k4_vlen()), fused_q4_K's way at twice its
 * width: there one e8 register is one 32-element sub-block and its e16 products one
 * LMUL 2 pair, so register numbers name sub-blocks as at VLEN 128 and one load takes
 * what fusedw_q4_K loads per sub-block. Whole-register loads (vl8re8, vl4re8: 8 and 4 x
 * 32 bytes whatever vtype says, byte elements so any address) put the 256 activations
 * in v24..v31 (sub-block s in v24 + s) and the 128 bytes of qs in v4..v7; at e8 LMUL 4
 * their low nibbles are sub-blocks 0, 2, 4, 6 (v8..v11) and their high ones 1, 3, 5, 7
 * (v4..v7, in place). Per sub-block one vwmulsu at e8 LMUL 1 (vl 32): the odd ones into
 * their own activations' pair (v24 + s - 1, v24 + s: the even neighbour's activations,
 * used the instruction before, and their own in the top half of the widening
 * destination, where overlap is allowed), the even ones into v12..v19; then at e16 LMUL
 * 2 one vwmacc.vx by its scale into v20..v23 (e32 LMUL 4), one reduction. No address
 * arithmetic and four vsetvli after the scales (fusedw_q4_K: 12 code and activation
 * loads with their address adds). */
#define SI_F256_LOAD                             \
    "vl8re8.v v24, (%[a])\n\t"                  \
    "vl4re8.v v4, (%[qs])\n\t"                  \
    "vsetvli t1, zero, e8, m4, ta, ma\n\t"      \
    "vand.vi v8, v4, 15\n\t"                    \
    "vsrl.vi v4, v4, 4\n\t"
/* sub-block s's product: codes in code (v8..v11 even s, v4..v7 odd) */
#define SI_F256_MUL(dst, act, code) "vwmulsu.vv " dst ", " act ", " code "\n\t"
#define SI_F256_MAC(reg, off)                   \
    "lbu t0, " off "(%[tmp])\n\t"              \
    "vwmacc.vx v20, t0, " reg "\n\t"
#define SI_F256_DOT                                                                                        \
    "vsetvli t1, zero, e8, m1, ta, ma\n\t"                                                                 \
    SI_F256_MUL("v12", "v24", "v8") SI_F256_MUL("v24", "v25", "v4") SI_F256_MUL("v14", "v26", "v9")       \
    SI_F256_MUL("v26", "v27", "v5") SI_F256_MUL("v16", "v28", "v10") SI_F256_MUL("v28", "v29", "v6")      \
    SI_F256_MUL("v18", "v30", "v11") SI_F256_MUL("v30", "v31", "v7")                                      \
    "vsetvli t1, zero, e16, m2, ta, ma\n\t"                                                                \
    "lbu t0, 0(%[tmp])\n\t"                                                                                \
    "vwmul.vx v20, v12, t0\n\t"                                                                            \
    SI_F256_MAC("v24", "1") SI_F256_MAC("v14", "2") SI_F256_MAC("v26", "3") SI_F256_MAC("v16", "8")       \
    SI_F256_MAC("v28", "9") SI_F256_MAC("v18", "10") SI_F256_MAC("v30", "11")                             \
    "vsetvli t1, zero, e32, m4, ta, ma\n\t"                                                                \
    "vmv.s.x v0, zero\n\t"                                                                                 \
    "vredsum.vs v0, v20, v0\n\t"                                                                           \
    "vmv.x.s %[is], v0\n\t"

static inline int32_t fused256_q4_K(const uint8_t *b, const int8_t *a, float dmin, float *fm, uint8_t *tmp)
{
    int32_t is;
    const uint8_t *sc = b + offsetof(blk_q4_K, scales), *qs = b + offsetof(blk_q4_K, qs);
    __asm__ volatile(
        SI_K4_UNPACK("%[c63]")
        SI_K4_FMINS("%[c32]")
        SI_F256_LOAD
        SI_F256_DOT
        : [is] "=r"(is)
        : [sc] "r"(sc), [qs] "r"(qs), [a] "r"(a), [tmp] "r"(tmp), [dmin] "f"(dmin), [fm] "r"(fm), [c63] "r"(63L),
          [c32] "r"(32L)
        : SI_FUSED_CLOBBER, "t1");
    return is;
}

/* Q5_K: bit s of qh[l] is bit 4 of element l of sub-block s. qh, qh >> 2, qh >> 4 and
 * qh >> 6 side by side (v12..v15, e8 LMUL 4) line up with the low-nibble sub-blocks
 * (bit 0 of each belongs to sub-block 2j) and the high-nibble ones (bit 1, sub-block
 * 2j + 1): each is masked and added at bit 4 by one vmacc (16 x bit 0, 8 x bit 1). */
static inline int32_t fused256_q5_K(const uint8_t *b, const int8_t *a, float dmin, float *fm, uint8_t *tmp)
{
    int32_t is;
    const uint8_t *sc = b + offsetof(blk_q5_K, scales), *qs = b + offsetof(blk_q5_K, qs);
    const uint8_t *qh = b + offsetof(blk_q5_K, qh);
    __asm__ volatile(
        SI_K4_UNPACK("%[c63]")
        SI_K4_FMINS("%[c32]")
        "vsetvli t1, zero, e8, m1, ta, ma\n\t"
        "vle8.v v12, (%[qh])\n\t"
        "vsrl.vi v13, v12, 2\n\t"
        "vsrl.vi v14, v12, 4\n\t"
        "vsrl.vi v15, v12, 6\n\t"
        SI_F256_LOAD
        "vand.vi v16, v12, 1\n\t"
        "vmacc.vx v8, %[c16], v16\n\t"
        "vand.vi v16, v12, 2\n\t"
        "vmacc.vx v4, %[c8], v16\n\t"
        SI_F256_DOT
        : [is] "=r"(is)
        : [sc] "r"(sc), [qs] "r"(qs), [qh] "r"(qh), [a] "r"(a), [tmp] "r"(tmp), [dmin] "f"(dmin), [fm] "r"(fm),
          [c63] "r"(63L), [c32] "r"(32L), [c16] "r"(16L), [c8] "r"(8L)
        : SI_FUSED_CLOBBER, "t1");
    return is;
}
#undef SI_F256_LOAD
#undef SI_F256_MUL
#undef SI_F256_MAC
#undef SI_F256_DOT
/* One token of Q4_K/Q5_K at VLEN 512 exactly (kq_k4_vlen()): an e8 register holds two
 * sub-blocks there, but an e16 register exactly one, so the codes and the activations
 * are widened first and register numbers name sub-blocks at e16. Whole-register loads:
 * qs (128 bytes) to v2..v3, the activations (256) to v4..v7. At e16 LMUL 4: qs
 * zero-extended (v8..v11, qs[32j..32j+31] in v8 + j), its low nibbles sub-blocks 0, 2,
 * 4, 6 (v12..v15), its high ones 1, 3, 5, 7 (v8..v11, in place); the activations
 * sign-extended in two halves (v16..v23, sub-block s in v16 + s). Per sub-block at e16
 * LMUL 1 (vl 32) one vmul.vv in place (|x| <= 31 * 128 in 16 bits) and one vwmacc.vx by
 * its scale into v24..v25 (e32 LMUL 2), one reduction. */
#define SI_F512_LOAD                             \
    "vl2re8.v v2, (%[qs])\n\t"                  \
    "vl4re8.v v4, (%[a])\n\t"                   \
    "vsetvli t1, zero, e16, m4, ta, ma\n\t"     \
    "vzext.vf2 v8, v2\n\t"
#define SI_F512_SPLIT                            \
    "vand.vi v12, v8, 15\n\t"                   \
    "vsrl.vi v8, v8, 4\n\t"
#define SI_F512_MAC(reg, off)                   \
    "lbu t0, " off "(%[tmp])\n\t"              \
    "vwmacc.vx v24, t0, " reg "\n\t"
#define SI_F512_DOT                                                                                        \
    "vsext.vf2 v16, v4\n\t"                                                                                \
    "vsext.vf2 v20, v6\n\t"                                                                                \
    "vsetvli t1, zero, e16, m1, ta, ma\n\t"                                                                \
    "vmul.vv v16, v16, v12\n\t" "vmul.vv v17, v17, v8\n\t" "vmul.vv v18, v18, v13\n\t"                     \
    "vmul.vv v19, v19, v9\n\t" "vmul.vv v20, v20, v14\n\t" "vmul.vv v21, v21, v10\n\t"                     \
    "vmul.vv v22, v22, v15\n\t" "vmul.vv v23, v23, v11\n\t"                                                \
    "lbu t0, 0(%[tmp])\n\t"                                                                                \
    "vwmul.vx v24, v16, t0\n\t"                                                                            \
    SI_F512_MAC("v17", "1") SI_F512_MAC("v18", "2") SI_F512_MAC("v19", "3") SI_F512_MAC("v20", "8")       \
    SI_F512_MAC("v21", "9") SI_F512_MAC("v22", "10") SI_F512_MAC("v23", "11")                             \
    "vsetvli t1, zero, e32, m2, ta, ma\n\t"                                                                \
    "vmv.s.x v0, zero\n\t"                                                                                 \
    "vredsum.vs v0, v24, v0\n\t"                                                                           \
    "vmv.x.s %[is], v0\n\t"

static inline int32_t fused512_q4_K(const uint8_t *b, const int8_t *a, float dmin, float *fm, uint8_t *tmp)
{
    int32_t is;
    const uint8_t *sc = b + offsetof(blk_q4_K, scales), *qs = b + offsetof(blk_q4_K, qs);
    __asm__ volatile(
        SI_K4_UNPACK("%[c63]")
        SI_K4_FMINS("%[c32]")
        SI_F512_LOAD
        SI_F512_SPLIT
        SI_F512_DOT
        : [is] "=r"(is)
        : [sc] "r"(sc), [qs] "r"(qs), [a] "r"(a), [tmp] "r"(tmp), [dmin] "f"(dmin), [fm] "r"(fm), [c63] "r"(63L),
          [c32] "r"(32L)
        : SI_FUSED_CLOBBER, "t1");
    return is;
}

/* Q5_K: at e8 LMUL 1 (vl 64, two sub-blocks' worth) qh and qh >> 2 side by side (v12,
 * the second half slid up), and that >> 4 (v13); zero-extended to e16 (v28..v31) bit 0
 * of v28 + j belongs to sub-block 2j, bit 1 to 2j + 1: masked and added at bit 4 by one
 * vmacc each (16 x bit 0, 8 x bit 1). vle8 at vl 64 reads qh and qs[0..31]. */
static inline int32_t fused512_q5_K(const uint8_t *b, const int8_t *a, float dmin, float *fm, uint8_t *tmp)
{
    int32_t is;
    const uint8_t *sc = b + offsetof(blk_q5_K, scales), *qs = b + offsetof(blk_q5_K, qs);
    const uint8_t *qh = b + offsetof(blk_q5_K, qh);
    __asm__ volatile(
        SI_K4_UNPACK("%[c63]")
        SI_K4_FMINS("%[c32]")
        "vsetvli t1, zero, e8, m1, ta, ma\n\t"
        "vle8.v v12, (%[qh])\n\t"
        "vsrl.vi v13, v12, 2\n\t"
        "vslideup.vx v12, v13, %[c32]\n\t"
        "vsrl.vi v13, v12, 4\n\t"
        SI_F512_LOAD
        "vzext.vf2 v28, v12\n\t"
        SI_F512_SPLIT
        "vand.vi v24, v28, 1\n\t"
        "vmacc.vx v12, %[c16], v24\n\t"
        "vand.vi v24, v28, 2\n\t"
        "vmacc.vx v8, %[c8], v24\n\t"
        SI_F512_DOT
        : [is] "=r"(is)
        : [sc] "r"(sc), [qs] "r"(qs), [qh] "r"(qh), [a] "r"(a), [tmp] "r"(tmp), [dmin] "f"(dmin), [fm] "r"(fm),
          [c63] "r"(63L), [c32] "r"(32L), [c16] "r"(16L), [c8] "r"(8L)
        : SI_FUSED_CLOBBER, "t1");
    return is;
}
#undef SI_F512_LOAD
#undef SI_F512_SPLIT
#undef SI_F512_MAC
#undef SI_F512_DOT
#undef SI_FW_PAIR
#undef SI_FW_PAIR2
#undef SI_FW_HB
#undef SI_FW_SLL
#undef SI_FW_SRL
#undef SI_FW_MAC
#undef SI_FW_HEAD
#undef SI_FW_TAIL
#undef SI_K4_UNPACK
#undef SI_K4_FMINS

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
                float c = (yd[i] * dd[i - i0]) * (float)is;
                if (type == SI_TYPE_Q2_K) {
                    const float m = (yd[i] * dm[i - i0]) * (float)ms;
                    c = c - m;
                }
                acc = acc + c;
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
                                                              const float *yall, const float *g, int wide);

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
                    c = (yd[i] * dd[i - i0]) * (float)is;
                    c = c - (yd[i] * dm[i - i0]) * (float)ms;
                    break;
                case SI_TYPE_Q3_K: /* negated block, negated d (as mat_dot_kq8) */
                    tokw_q3_K(wide, b, yq, 0, 1, &is, &ws);
                    c = (yd[i] * -dd[i - i0]) * (float)is;
                    break;
                case SI_TYPE_Q4_K:
                    is = kv == 256   ? fused256_q4_K(b, yq, dm[i - i0], fm + (size_t)i * 8, ws.t)
                         : kv == 512 ? fused512_q4_K(b, yq, dm[i - i0], fm + (size_t)i * 8, ws.t)
                                     : fusedw_q4_K(b, yq, dm[i - i0], fm + (size_t)i * 8, ws.t);
                    c = (yd[i] * dd[i - i0]) * (float)is;
                    break;
                case SI_TYPE_Q5_K:
                    is = kv == 256   ? fused256_q5_K(b, yq, dm[i - i0], fm + (size_t)i * 8, ws.t)
                         : kv == 512 ? fused512_q5_K(b, yq, dm[i - i0], fm + (size_t)i * 8, ws.t)
                                     : fusedw_q5_K(b, yq, dm[i - i0], fm + (size_t)i * 8, ws.t);
                    c = (yd[i] * dd[i - i0]) * (float)is;
                    break;
                default:
                    tokw_q6_K(wide, c16, b, yq, 0, 1, &is, &ws);
                    c = (yd[i] * dd[i - i0]) * (float)is;
                    break;
                }
                acc = acc + c;
            }
        }
        if (k4)
            acc = acc - dot_f32(fm, g, (size_t)nb * 8, 1);
        out[r] = acc;
    }
}

/* The VLEN 128 loops' scratch: the row's dmin * mins (Q4_K/Q5_K), and for several tokens
 * per row d and dmin of every block and per token chunk every block's integer sums */

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
    const size_t need = (size_t)nb * (8 * sizeof(float) + 2 * sizeof(float) + 2 * TOK_CHUNK * sizeof(int32_t)) +
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
#define SI_KQ8W(T) mat_dot_kq8(T, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride, yall, g, (int)wide)
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
    if (!yall) { /* no memory for the scratch: the reference needs none */
        si_kernels_ref()->mat_dot[type](type, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
        return;
    }
#define SI_KQ1(T) mat_dot_kq1(T, n, w, row_bytes, n_rows, act, out, yall, (float *)(void *)si_rvv_kbuf, g)
#define SI_KQ8(T) mat_dot_kq8(T, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride, yall, g, 0)
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
 * token, block by block in order, acc += (yd * d) * isum (Q2_K: - (yd * dmin) * msum),
 * then Q4_K/Q5_K's acc - mins[t]: the same operations as mat_dot_kq1's (a token's result
 * must not depend on its batch). Vectors across tokens. */
static inline __attribute__((always_inline)) void combine_row(float *out, size_t out_stride, const float *yd, int64_t nb,
                                                              int64_t nt, const int32_t *is, const int32_t *ms,
                                                              const float *mins, const float *d, const float *dmin)
{
    for (int64_t t = 0; t < nt;) {
        const size_t vl = __riscv_vsetvl_e32m4((size_t)(nt - t));
        vfloat32m4_t acc = __riscv_vfmv_v_f_f32m4(0.0f, vl);
        for (int64_t i = 0; i < nb; i++) {
            vfloat32m4_t y = __riscv_vlse32_v_f32m4(yd + (size_t)t * (size_t)nb + (size_t)i,
                                                    (ptrdiff_t)((size_t)nb * sizeof(float)), vl);
            vint32m4_t isum = __riscv_vle32_v_i32m4(is + (size_t)i * TOK_CHUNK + (size_t)t, vl);
            vfloat32m4_t c = __riscv_vfmul_vv_f32m4(__riscv_vfmul_vf_f32m4(y, d[i], vl),
                                                    __riscv_vfcvt_f_x_v_f32m4(isum, vl), vl);
            if (ms) {
                vint32m4_t m = __riscv_vle32_v_i32m4(ms + (size_t)i * TOK_CHUNK + (size_t)t, vl);
                c = __riscv_vfsub_vv_f32m4(
                    c, __riscv_vfmul_vv_f32m4(__riscv_vfmul_vf_f32m4(y, dmin[i], vl), __riscv_vfcvt_f_x_v_f32m4(m, vl), vl),
                    vl);
            }
            acc = __riscv_vfadd_vv_f32m4(acc, c, vl);
        }
        if (mins)
            acc = __riscv_vfsub_vv_f32m4(acc, __riscv_vle32_v_f32m4(mins + t, vl), vl);
        __riscv_vsse32_v_f32m4(out + (size_t)t * out_stride, (ptrdiff_t)(out_stride * sizeof(float)), acc, vl);
        t += (int64_t)vl;
    }
}

/* Several tokens: per row and chunk of tokens, first every block's integer sums (the
 * decode-once kernels above: VLEN 128's when wide is 0, a constant there, so that this
 * instance compiles to the VLEN 128 loops alone; else the wide ones in kq_wide()'s
 * chunks), then the float pass over the whole row. */
static inline __attribute__((always_inline)) void mat_dot_kq8(uint32_t type, int64_t n, const void *w, size_t row_bytes,
                                                              int64_t n_rows, const void *act, size_t act_stride,
                                                              int64_t n_tok, float *out, size_t out_stride,
                                                              const float *yall, const float *g, int wide)
{
    const size_t bsz = kq_bsz(type), doff = kq_doff(type), moff = kq_moff(type);
    const int has_min = kq_has_min(type), k4 = type == SI_TYPE_Q4_K || type == SI_TYPE_Q5_K;
    const int64_t nb = n / SI_QK_K;
    float *fm = (float *)(void *)si_rvv_kbuf, *d = fm + (size_t)nb * 8, *dmin = d + nb, *mins = dmin + nb;
    int32_t *is = (int32_t *)(void *)(mins + TOK_CHUNK), *ms = is + (size_t)nb * TOK_CHUNK;
    wscratch ws; /* the wide decode's buffers */
    const int c16 = wide ? kq_wide16() : 0;
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        gather_f16(row + doff, bsz, nb, d);
        if (has_min)
            gather_f16(row + moff, bsz, nb, dmin);
        if (type == SI_TYPE_Q3_K) /* its blocks are decoded negated: d negated instead of the sums
                                   * (the same float bits: (-x) * (-y) == x * y exactly) */
            for (int64_t i = 0; i < nb; i++)
                d[i] = -d[i];
        for (int64_t t0 = 0; t0 < n_tok; t0 += TOK_CHUNK) {
            const int64_t nt = n_tok - t0 < TOK_CHUNK ? n_tok - t0 : TOK_CHUNK;
            const int8_t *a = (const int8_t *)act + (size_t)t0 * act_stride + offsetof(blk_q8_K, qs);
            for (int64_t i = 0; i < nb; i++, a += sizeof(blk_q8_K)) {
                const uint8_t *b = row + (size_t)i * bsz;
                int32_t *bis = is + (size_t)i * TOK_CHUNK;
                const int q5 = type == SI_TYPE_Q5_K;
                switch (type) {
                case SI_TYPE_Q2_K:
                    if (wide)
                        tokw_q2_K(wide, b, a, act_stride, nt, bis, ms + (size_t)i * TOK_CHUNK, &ws);
                    else
                        tokd_q2_K(b, a, act_stride, nt, bis, ms + (size_t)i * TOK_CHUNK);
                    break;
                case SI_TYPE_Q3_K:
                    if (wide)
                        tokw_q3_K(wide, b, a, act_stride, nt, bis, &ws);
                    else
                        tokd_q3_K(b, a, act_stride, nt, bis);
                    break;
                case SI_TYPE_Q4_K:
                case SI_TYPE_Q5_K:
                    if (wide)
                        tokw_q45_K(wide, c16, b, q5, a, act_stride, nt, bis, dmin[i], fm + (size_t)i * 8, &ws);
                    else
                        tok_q45_K(b, q5, a, act_stride, nt, bis, dmin[i], fm + (size_t)i * 8);
                    break;
                default:
                    if (wide)
                        tokw_q6_K(wide, c16, b, a, act_stride, nt, bis, &ws);
                    else
                        tok_q6_K(b, a, act_stride, nt, bis);
                    break;
                }
            }
            if (k4)
                for (int64_t t = 0; t < nt; t++)
                    mins[t] = dot_f32(fm, g + (size_t)(t0 + t) * (size_t)nb * 8, (size_t)nb * 8, 1);
            combine_row(out + (size_t)t0 * out_stride + (size_t)r, out_stride, yall + (size_t)t0 * (size_t)nb, nb, nt,
                        is, type == SI_TYPE_Q2_K ? ms : NULL, k4 ? mins : NULL, d, has_min ? dmin : NULL);
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
