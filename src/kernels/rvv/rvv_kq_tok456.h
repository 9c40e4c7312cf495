/* Part of rvv_kquant.c, which includes it once, in order, inside its
 * SI_HAVE_RVV_SET section (the parts share its helpers and macros).
 * Several tokens at VLEN 128, Q5_K: blocks decoded once to bytes in registers, the
 * token loop (tok_q5_K; rvv_kq_t16.h has Q4_K's). */

/* ---- several tokens, VLEN 128: Q5_K blocks decoded once to bytes ---------------------- */

/* Q5_K, several tokens: the loop ends on a pointer compare */
#define SI_B8_LOOP_END                          \
    "addi %[o], %[o], 4\n\t"                    \
    "add %[a], %[a], %[adv]\n\t"                \
    "bne %[o], %[oe], 1b\n\t"
#define SI_B8_CLOBBER SI_FUSED_CLOBBER, "t1"

/* A Q4_K/Q5_K block's 6-bit scales and mins unpacked to %[tmp] (SI_K4_UNPACK), dmin *
 * mins to %[fm] (SI_K4_FMINS), and its 4-bit codes in natural order: qs[32c..32c+31]'s
 * low nibbles are sub-block 2c (v4c, v4c+1), the high ones 2c+1 (v4c+2, v4c+3), so that
 * each e8 LMUL 4 group holds 64 consecutive elements. Also rvv_kq_t16.h's, which
 * retires it. */
#define SI_K45_CODES                            \
    "li t0, 63\n\t"                             \
    SI_K4_UNPACK("t0")                          \
    "li t0, 32\n\t"                             \
    SI_K4_FMINS("t0")                           \
    "vsetvli t1, zero, e8, m8, ta, ma\n\t"      \
    "vle8.v v16, (%[q])\n\t"                    \
    "vsetvli t1, zero, e8, m2, ta, ma\n\t"      \
    "vand.vi v0, v16, 15\n\t"                   \
    "vsrl.vi v2, v16, 4\n\t"                    \
    "vand.vi v4, v18, 15\n\t"                   \
    "vsrl.vi v6, v18, 4\n\t"                    \
    "vand.vi v8, v20, 15\n\t"                   \
    "vsrl.vi v10, v20, 4\n\t"                   \
    "vand.vi v12, v22, 15\n\t"                  \
    "vsrl.vi v14, v22, 4\n\t"

/* isum[t] = sum(code * sc * a_t) of one Q5_K block for nt tokens, and fm[0..7] =
 * dmin * mins (SI_K4_FMINS). The codes as SI_K45_CODES leaves them, with their fifth
 * bits ORed in. Per token and 64 elements: one activation load into v20..v23 (the top half
 * of the product group: a widening op may overlap there), one vwmulsu e8 LMUL 4 -> e16
 * LMUL 8 (|x| <= 31 * 128) and per sub-block one vwmacc.vx by its scale (e16 LMUL 4 ->
 * e32 LMUL 8, |sum| <= 8 * 3968 * 63 per lane). */
static inline void tok_q5_K(const uint8_t *b, const int8_t *a, size_t stride, int64_t nt, int32_t *isum, float dmin,
                            float *fm)
{
    uint8_t tmp[16];
    const uint8_t *sc = b + offsetof(blk_q5_K, scales);
    const uint8_t *qs = b + offsetof(blk_q5_K, qs);
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
        SI_K45_CODES
        /* qh, qh >> 1, qh >> 2, qh >> 3 side by side (v16..v23): bit 0 of each to bit 4
         * for sub-blocks 0..3 (v0..v7), bit 4 as it is for sub-blocks 4..7 */
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
        : [q] "r"(qs), [h] "r"(qh), [sc] "r"(sc), [adv] "r"(adv), [tmp] "r"(tmp),
          [oe] "r"(isum + nt), [dmin] "f"(dmin), [fm] "r"(fm)
        : SI_B8_CLOBBER, "t2", "t3", "t4", "t5", "t6", "s1", "s2", "s3");
#undef SI_Q45_CHUNK
#undef SI_Q45_STEP
}
