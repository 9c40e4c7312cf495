/* Part of rvv_kquant.c, which includes it once, in order, inside its
 * SI_HAVE_RVV_SET section (the parts share its helpers and macros).
 * Several tokens at VLEN 128, Q2_K and Q3_K: the block decoded into v0..v15 and the
 * token loops (tok_u8, tok_s8, tokd_q2_K, tokd2_q2_K for two rows; rvv_kq_t16.h has
 * Q3_K's). */

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
/* after the products of one token in v24 (e16 LMUL 8, vl %[n]) and t0 at its bsums; the
 * two sums stored from the vectors (vse32 at vl 1: one instruction where vmv.x.s and sw
 * were two) */
#define SI_TOK_U8_TAIL \
    "vsetvli zero, %[n], e16, m8, ta, ma\n\t" \
    "vwredsum.vs v20, v24, v21\n\t" \
    "vsetvli zero, %[n32], e8, m2, ta, ma\n\t" \
    "vle8.v v16, (t0)\n\t" /* the 16 bsums as 32 bytes */ \
    "vsetivli zero, 16, e16, m2, ta, ma\n\t" \
    "vmul.vv v16, v16, v22\n\t" \
    "vwredsum.vs v18, v16, v21\n\t" \
    "vsetivli zero, 1, e32, m1, ta, ma\n\t" \
    "vse32.v v20, (%[o])\n\t" \
    "vse32.v v18, (%[p])\n\t" \
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

/* a token's sum (in v20) stored, and the step to the next token; also the wide loops' */
#define SI_TOK_S8_END \
    "vsetivli zero, 1, e32, m1, ta, ma\n\t" \
    "vmv.x.s t0, v20\n\t" \
    "sw t0, 0(%[o])\n\t" \
    "addi %[o], %[o], 4\n\t" \
    "add %[a], %[a], %[s]\n\t" \
    "addi %[nt], %[nt], -1\n\t" \
    "bnez %[nt], 1b\n\t"
#define SI_TOK_S8_LOOP \
    "1:\n\t" \
    SI_TOK_S8_STEP("0", "v0", "v21") \
    SI_TOK_S8_STEP("64", "v4", "v20") \
    SI_TOK_S8_STEP("128", "v8", "v20") \
    SI_TOK_S8_STEP("192", "v12", "v20") \
    SI_TOK_S8_END

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
#define SI_DEC_GROUP(g) SI_DEC_GROUP_AT(#g, "v" #g, "%[tmp]")
/* the same for the scale at byte off of tm and register reg */
#define SI_DEC_GROUP_AT(off, reg, tm) \
    "lb t0, " off "(" tm ")\n\t" \
    "vmul.vx " reg ", " reg ", t0\n\t"
#define SI_DEC_SCALE_ALL                                                                          \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t"                                                     \
    SI_DEC_GROUP(0) SI_DEC_GROUP(1) SI_DEC_GROUP(2) SI_DEC_GROUP(3) SI_DEC_GROUP(4) SI_DEC_GROUP(5) \
    SI_DEC_GROUP(6) SI_DEC_GROUP(7) SI_DEC_GROUP(8) SI_DEC_GROUP(9) SI_DEC_GROUP(10)               \
    SI_DEC_GROUP(11) SI_DEC_GROUP(12) SI_DEC_GROUP(13) SI_DEC_GROUP(14) SI_DEC_GROUP(15)
/* 2-bit codes of half h (32 bytes at %[qs] + qoff, or at ptr + qoff) into A0 (j = 0),
 * A1, A2, A3 (LMUL 2) */
#define SI_DEC_2BIT(qoff, A0, A1, A2, A3) SI_DEC_2BIT_AT("%[qs]", qoff, A0, A1, A2, A3)
#define SI_DEC_2BIT_AT(ptr, qoff, A0, A1, A2, A3) \
    "vsetvli t1, zero, e8, m2, ta, ma\n\t"   \
    "addi t0, " ptr ", " qoff "\n\t"         \
    "vle8.v v16, (t0)\n\t"                   \
    "vand.vi " A0 ", v16, 3\n\t"             \
    "vsrl.vi " A1 ", v16, 2\n\t"             \
    "vand.vi " A1 ", " A1 ", 3\n\t"          \
    "vsrl.vi " A2 ", v16, 4\n\t"             \
    "vand.vi " A2 ", " A2 ", 3\n\t"          \
    "vsrl.vi " A3 ", v16, 6\n\t"

/* Q2_K's 16 scale bytes (at %[sc], or sc) split: the low nibbles (scales) to the 16-byte
 * copy at %[tmp] (or tmp; read back with lbu) and left in lo, the high nibbles (mins) in
 * hi */
#define SI_Q2_SCALES(raw, lo, hi) SI_Q2_SCALES_AT("%[sc]", "%[tmp]", raw, lo, hi)
#define SI_Q2_SCALES_AT(sc, tmp, raw, lo, hi)  \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t"     \
    "vle8.v " raw ", (" sc ")\n\t"              \
    "vand.vi " lo ", " raw ", 15\n\t"           \
    "vsrl.vi " hi ", " raw ", 4\n\t"            \
    "vse8.v " lo ", (" tmp ")\n\t"
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

/* Two rows of Q2_K at once (VLEN 128 only): an activation load serves both rows' codes,
 * which takes 32 registers for a whole block, so the block runs as two halves, each its
 * own pass over the tokens: row 0's half in v0..v7, row 1's in v8..v15 (group 8h + k in
 * register k, 8 + k), decoded and scaled as in tokd_q2_K. Per token and half: four
 * activation loads e8 LMUL 2 (32 elements, groups 8h + 2j and 8h + 2j + 1), each
 * multiplied with both rows' codes (vwmulsu/vwmaccsu e8 LMUL 2 -> e16 LMUL 4, four
 * products <= 45 * 128 per lane, in v24..v27 and v28..v31), one vwredsum e16 LMUL 4 per
 * row; in half 0 also both rows' mins times the bsums (e16 LMUL 2). Per row and token
 * that is 16 load cycles where tokd_q2_K has 32, and its one reduction at LMUL 8 becomes
 * two at LMUL 4. Row k's sums: half 0 to isk0[t], half 1 to isk1[t] (the caller adds
 * them), mins to msk[t]. Scratch tm: 32 bytes (both rows' scales). */
/* half h's codes of both rows, decoded and scaled (scale offsets o0..o7 = 8h + k) */
#define SI_Q2P_HALF(qoff, o0, o1, o2, o3, o4, o5, o6, o7)                                          \
    SI_DEC_2BIT_AT("%[b0]", qoff, "v0", "v2", "v4", "v6")                                           \
    SI_DEC_2BIT_AT("%[b1]", qoff, "v8", "v10", "v12", "v14")                                        \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t"                                                         \
    SI_DEC_GROUP_AT(o0, "v0", "%[tm]") SI_DEC_GROUP_AT(o1, "v1", "%[tm]") SI_DEC_GROUP_AT(o2, "v2", "%[tm]")   \
    SI_DEC_GROUP_AT(o3, "v3", "%[tm]") SI_DEC_GROUP_AT(o4, "v4", "%[tm]") SI_DEC_GROUP_AT(o5, "v5", "%[tm]")   \
    SI_DEC_GROUP_AT(o6, "v6", "%[tm]") SI_DEC_GROUP_AT(o7, "v7", "%[tm]")                                   \
    "addi t2, %[tm], 16\n\t"                                                                        \
    SI_DEC_GROUP_AT(o0, "v8", "t2") SI_DEC_GROUP_AT(o1, "v9", "t2") SI_DEC_GROUP_AT(o2, "v10", "t2")             \
    SI_DEC_GROUP_AT(o3, "v11", "t2") SI_DEC_GROUP_AT(o4, "v12", "t2") SI_DEC_GROUP_AT(o5, "v13", "t2")           \
    SI_DEC_GROUP_AT(o6, "v14", "t2") SI_DEC_GROUP_AT(o7, "v15", "t2")
/* a token's products for one half (t2: its activations at the half) */
#define SI_Q2P_PRODUCTS                        \
    "vsetvli t1, zero, e8, m2, ta, ma\n\t"     \
    "vle8.v v16, (t2)\n\t"                     \
    "vwmulsu.vv v24, v16, v0\n\t"              \
    "vwmulsu.vv v28, v16, v8\n\t"              \
    "addi t0, t2, 32\n\t"                      \
    "vle8.v v16, (t0)\n\t"                     \
    "vwmaccsu.vv v24, v16, v2\n\t"             \
    "vwmaccsu.vv v28, v16, v10\n\t"            \
    "addi t0, t2, 64\n\t"                      \
    "vle8.v v16, (t0)\n\t"                     \
    "vwmaccsu.vv v24, v16, v4\n\t"             \
    "vwmaccsu.vv v28, v16, v12\n\t"            \
    "addi t0, t2, 96\n\t"                      \
    "vle8.v v16, (t0)\n\t"                     \
    "vwmaccsu.vv v24, v16, v6\n\t"             \
    "vwmaccsu.vv v28, v16, v14\n\t"
static inline void tokd2_q2_K(const uint8_t *b0, const uint8_t *b1, const int8_t *a, size_t stride, int64_t nt,
                              int32_t *is00, int32_t *is01, int32_t *ms0, int32_t *is10, int32_t *is11, int32_t *ms1)
{
    uint8_t tm[32];
    __asm__ volatile(
        /* scales to tm[0..15] (row 0) and tm[16..31] (row 1), mins to v18 and v20 (e16) */
        SI_Q2_SCALES_AT("%[b0]", "%[tm]", "v16", "v17", "v23")
        "vsetivli zero, 16, e16, m2, ta, ma\n\t"
        "vzext.vf2 v18, v23\n\t"
        "addi t2, %[tm], 16\n\t"
        SI_Q2_SCALES_AT("%[b1]", "t2", "v16", "v17", "v23")
        "vsetivli zero, 16, e16, m2, ta, ma\n\t"
        "vzext.vf2 v20, v23\n\t"
        "vsetivli zero, 1, e32, m1, ta, ma\n\t"
        "vmv.s.x v22, zero\n\t"
        "slli t3, %[nt], 2\n\t"
        /* half 0, with the mins (the bsums 256 bytes past a token's codes) */
        SI_Q2P_HALF("16", "0", "1", "2", "3", "4", "5", "6", "7")
        "mv t2, %[a]\n\t"
        "add t3, %[o0], t3\n\t"
        "1:\n\t"
        SI_Q2P_PRODUCTS
        "addi t0, t2, 256\n\t"
        "vle8.v v16, (t0)\n\t"
        "vsetvli t1, zero, e16, m4, ta, ma\n\t"
        "vwredsum.vs v24, v24, v22\n\t"
        "vwredsum.vs v25, v28, v22\n\t"
        "vsetivli zero, 16, e16, m2, ta, ma\n\t"
        "vmul.vv v26, v16, v18\n\t"
        "vwredsum.vs v28, v26, v22\n\t"
        "vmul.vv v26, v16, v20\n\t"
        "vwredsum.vs v29, v26, v22\n\t"
        "vsetivli zero, 1, e32, m1, ta, ma\n\t"
        "vse32.v v24, (%[o0])\n\t"
        "vse32.v v25, (%[o1])\n\t"
        "vse32.v v28, (%[p0])\n\t"
        "vse32.v v29, (%[p1])\n\t"
        "addi %[o0], %[o0], 4\n\t"
        "addi %[o1], %[o1], 4\n\t"
        "addi %[p0], %[p0], 4\n\t"
        "addi %[p1], %[p1], 4\n\t"
        "add t2, t2, %[s]\n\t"
        "bne %[o0], t3, 1b\n\t"
        /* half 1 */
        SI_Q2P_HALF("48", "8", "9", "10", "11", "12", "13", "14", "15")
        "addi t2, %[a], 128\n\t"
        "slli t3, %[nt], 2\n\t"
        "add t3, %[h0], t3\n\t"
        "2:\n\t"
        SI_Q2P_PRODUCTS
        "vsetvli t1, zero, e16, m4, ta, ma\n\t"
        "vwredsum.vs v24, v24, v22\n\t"
        "vwredsum.vs v25, v28, v22\n\t"
        "vsetivli zero, 1, e32, m1, ta, ma\n\t"
        "vse32.v v24, (%[h0])\n\t"
        "vse32.v v25, (%[h1])\n\t"
        "addi %[h0], %[h0], 4\n\t"
        "addi %[h1], %[h1], 4\n\t"
        "add t2, t2, %[s]\n\t"
        "bne %[h0], t3, 2b\n\t"
        : [o0] "+r"(is00), [o1] "+r"(is10), [p0] "+r"(ms0), [p1] "+r"(ms1), [h0] "+r"(is01), [h1] "+r"(is11)
        : [a] "r"(a), [s] "r"(stride), [nt] "r"(nt), [b0] "r"(b0), [b1] "r"(b1), [tm] "r"(tm)
        : SI_FUSED_CLOBBER, "t1", "t2", "t3");
}
#undef SI_Q2P_HALF
#undef SI_Q2P_PRODUCTS
