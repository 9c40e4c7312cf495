/* Part of rvv_kquant.c, which includes it once, in order, inside its
 * SI_HAVE_RVV_SET section (the parts share its helpers and macros).
 * One token at VLEN 128: fused decode and dot of each K-quant, nothing stored
 * (fused_q2_K .. fused_q6_K). Defines SI_K4_UNPACK and SI_K4_FMINS, which
 * rvv_kq_wide456.h uses too and retires. */

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
#undef SI_Q2_SCALES_AT

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
