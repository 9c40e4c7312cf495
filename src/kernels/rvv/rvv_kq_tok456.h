/* Part of rvv_kquant.c, which includes it once, in order, inside its
 * SI_HAVE_RVV_SET section (the parts share its helpers and macros).
 * Several tokens at VLEN 128, Q4_K, Q5_K and Q6_K: blocks decoded once to bytes in
 * registers, the token loops (tok_q45_K, tok_q6_K). */

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
