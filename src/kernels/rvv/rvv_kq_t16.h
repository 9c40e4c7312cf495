/* Part of rvv_kquant.c, which includes it once, in order, inside its
 * SI_HAVE_RVV_SET section (the parts share its helpers and macros).
 * Several tokens at VLEN 128, Q3_K, Q4_K and Q6_K, in the transposed layout: a block's
 * codes and every token's activations are held as 16 registers U0..U15 with
 *     Uc[l] = element 16 * l + c     (lane l = the l-th 16-element scale group)
 * so that lane l of every product belongs to group l. The 16 products of a group then
 * add up in one 16-bit lane (vwmul/vwmacc at e8 LMUL 1) and one widening multiply by
 * the vector of the 16 group scales and one reduction finish the token: per token and
 * block 4 activation loads, 16 multiply-accumulates, one or two scale products and one
 * reduction, where the natural layout needs a scale product per group (Q4_K, Q6_K) or
 * scales folded into the bytes and two reductions (Q3_K).
 *
 * The transposition costs 64 narrowing shifts per 256 bytes (four rounds of splitting
 * each pair of registers, read as 16-bit elements, into its even and odd bytes): for the
 * weights once per block and row, shared by the tokens; for the activations once per
 * chunk of tokens of a call (mat_dot_kq8: kq_t16_fill), shared by the rows. */

/* Round 1 of the transposition: the 16 registers of natural order (register k holds
 * elements 16k..16k+15) as the eight aligned pairs p0..p7, split into the even bytes
 * (v16..v23) and the odd ones (v24..v31); e8, LMUL 1, vl 16 in force. */
#define SI_T16_SPLIT(src, even, odd)         \
    "vnsrl.wi " even ", " src ", 0\n\t"      \
    "vnsrl.wi " odd ", " src ", 8\n\t"
#define SI_T16_ROUND1(p0, p1, p2, p3, p4, p5, p6, p7)                                   \
    SI_T16_SPLIT(p0, "v16", "v24") SI_T16_SPLIT(p1, "v17", "v25")                    \
    SI_T16_SPLIT(p2, "v18", "v26") SI_T16_SPLIT(p3, "v19", "v27")                    \
    SI_T16_SPLIT(p4, "v20", "v28") SI_T16_SPLIT(p5, "v21", "v29")                    \
    SI_T16_SPLIT(p6, "v22", "v30") SI_T16_SPLIT(p7, "v23", "v31")
/* Rounds 2..4: each list of registers (an ordered run of elements) splits into its even
 * and odd halves, back and forth between v0..v15 and v16..v31, until every list is one
 * register: elements c, 16 + c, 32 + c, ..., that is Uc, written to vc. (The order of
 * the lists was checked by simulating the rounds on element numbers.) */
#define SI_T16_ROUNDS234                                                                 \
    SI_T16_SPLIT("v16", "v0", "v4") SI_T16_SPLIT("v18", "v1", "v5")                      \
    SI_T16_SPLIT("v20", "v2", "v6") SI_T16_SPLIT("v22", "v3", "v7")                      \
    SI_T16_SPLIT("v24", "v8", "v12") SI_T16_SPLIT("v26", "v9", "v13")                    \
    SI_T16_SPLIT("v28", "v10", "v14") SI_T16_SPLIT("v30", "v11", "v15")                  \
    SI_T16_SPLIT("v0", "v16", "v18") SI_T16_SPLIT("v2", "v17", "v19")                    \
    SI_T16_SPLIT("v4", "v20", "v22") SI_T16_SPLIT("v6", "v21", "v23")                    \
    SI_T16_SPLIT("v8", "v24", "v26") SI_T16_SPLIT("v10", "v25", "v27")                   \
    SI_T16_SPLIT("v12", "v28", "v30") SI_T16_SPLIT("v14", "v29", "v31")                  \
    SI_T16_SPLIT("v16", "v0", "v8") SI_T16_SPLIT("v18", "v4", "v12")                     \
    SI_T16_SPLIT("v20", "v2", "v10") SI_T16_SPLIT("v22", "v6", "v14")                    \
    SI_T16_SPLIT("v24", "v1", "v9") SI_T16_SPLIT("v26", "v5", "v13")                     \
    SI_T16_SPLIT("v28", "v3", "v11") SI_T16_SPLIT("v30", "v7", "v15")
#define SI_T16_NATURAL                                                                  \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t"                                             \
    SI_T16_ROUND1("v0", "v2", "v4", "v6", "v8", "v10", "v12", "v14") SI_T16_ROUNDS234

/* Room for nt tokens' activations in the transposed layout (the bytes only: the scales
 * and bsums are read from the Q8_K blocks as before), at most a chunk of TOK_CHUNK
 * tokens: 64 x n bytes per thread. NULL when out of memory (the caller runs the
 * reference). */
static int8_t *kq_t16_room(int64_t nt, int64_t nb)
{
    return si_rvv_scratch(&si_rvv_tbuf, &si_rvv_tbuf_cap, (size_t)(nt * nb) * SI_QK_K);
}

/* at[(t * nb + i) * 256 + 16c + l] = element 16l + c of token t's block i, for the nt
 * tokens at act (act_stride apart): once per chunk of a call, shared by its rows. */
static void kq_t16_fill(int8_t *at, const uint8_t *act, size_t act_stride, int64_t nt, int64_t nb)
{
    for (int64_t t = 0; t < nt; t++)
        for (int64_t i = 0; i < nb; i++) {
            const uint8_t *src = act + (size_t)t * act_stride + (size_t)i * sizeof(blk_q8_K) + offsetof(blk_q8_K, qs);
            int8_t *dst = at + (size_t)(t * nb + i) * SI_QK_K;
            __asm__ volatile(
                "vsetvli t0, zero, e8, m8, ta, ma\n\t"
                "vle8.v v0, (%[s])\n\t"
                "addi t0, %[s], 128\n\t"
                "vle8.v v8, (t0)\n\t"
                SI_T16_NATURAL
                "vsetvli t0, zero, e8, m8, ta, ma\n\t"
                "vse8.v v0, (%[d])\n\t"
                "addi t0, %[d], 128\n\t"
                "vse8.v v8, (t0)\n\t"
                :
                : [s] "r"(src), [d] "r"(dst)
                : SI_FUSED_CLOBBER);
        }
}

/* The token loop, after a block's codes were transposed into v0..v15 and its 16 group
 * scales (e16) put in v16..v17, v19[0] = 0. Per token (%[a]: its 256 transposed bytes,
 * %[s] to the next token): four loads of U0..3, U4..7, U8..11, U12..15 (e8 LMUL 4 into
 * v20..v23), each register's product MUL/MAC at e8 LMUL 1 into the e16 lanes of v24..v25,
 * or for the second half into v26..v27 when SPLIT (Q6_K: 16 products of 32 * 127 would
 * overflow 16 bits, 8 do not); then the lanes times the scales into v28..v31 (e32 LMUL
 * 4) and one reduction, stored from the vector at LMUL 1 (vmv.x.s would run at LMUL 4).
 * isum[t] gets the sum. */
#define SI_T16_LOAD(off)                        \
    "vsetvli t1, zero, e8, m4, ta, ma\n\t"      \
    "addi t0, %[a], " off "\n\t"                \
    "vle8.v v20, (t0)\n\t"                      \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t"
#define SI_T16_QUAD(MUL1, MAC, acc, w0, w1, w2, w3) \
    MUL1(acc, w0, "v20")                           \
    MAC(acc, w1, "v21")                            \
    MAC(acc, w2, "v22")                            \
    MAC(acc, w3, "v23")
#define SI_T16_LOOP(MUL, MAC, SECOND, SCALE2)                        \
    "vsetivli zero, 1, e32, m1, ta, ma\n\t"                          \
    "vmv.s.x v19, zero\n\t"                                          \
    "1:\n\t"                                                         \
    SI_T16_LOAD("0")                                                 \
    SI_T16_QUAD(MUL, MAC, "v24", "v0", "v1", "v2", "v3")             \
    SI_T16_LOAD("64")                                                \
    SI_T16_QUAD(MAC, MAC, "v24", "v4", "v5", "v6", "v7")             \
    SI_T16_LOAD("128")                                               \
    SECOND(MUL, MAC, "v8", "v9", "v10", "v11")                       \
    SI_T16_LOAD("192")                                               \
    SECOND(MAC, MAC, "v12", "v13", "v14", "v15")                     \
    "vsetivli zero, 16, e16, m2, ta, ma\n\t"                         \
    "vwmul.vv v28, v24, v16\n\t"                                     \
    SCALE2                                                           \
    "vsetivli zero, 16, e32, m4, ta, ma\n\t"                         \
    "vredsum.vs v18, v28, v19\n\t"                                   \
    "vsetivli zero, 1, e32, m1, ta, ma\n\t"                          \
    "vse32.v v18, (%[o])\n\t"                                        \
    "addi %[o], %[o], 4\n\t"                                         \
    "add %[a], %[a], %[s]\n\t"                                       \
    "bne %[o], %[oe], 1b\n\t"
/* signed codes (Q3_K, Q6_K) and unsigned ones (Q4_K) times the signed activations */
#define SI_T16_MUL_S(acc, w, x) "vwmul.vv " acc ", " w ", " x "\n\t"
#define SI_T16_MAC_S(acc, w, x) "vwmacc.vv " acc ", " w ", " x "\n\t"
#define SI_T16_MUL_U(acc, w, x) "vwmulsu.vv " acc ", " x ", " w "\n\t"
#define SI_T16_MAC_U(acc, w, x) "vwmaccsu.vv " acc ", " x ", " w "\n\t"
/* the second half into the same lanes, or (Q6_K) into v26..v27, added after scaling */
#define SI_T16_SAME(MUL1, MAC, w0, w1, w2, w3) SI_T16_QUAD(MAC, MAC, "v24", w0, w1, w2, w3)
#define SI_T16_APART(MUL1, MAC, w0, w1, w2, w3) SI_T16_QUAD(MUL1, MAC, "v26", w0, w1, w2, w3)
#define SI_T16_SCALE2 "vwmacc.vv v28, v16, v26\n\t"
/* the 16 group scales (bytes at addr, signed or not) to e16 in v16..v17 */
#define SI_T16_SCALES(addr, ext)               \
    "vsetivli zero, 16, e8, m1, ta, ma\n\t"    \
    "vle8.v v20, (" addr ")\n\t"               \
    "vsetivli zero, 16, e16, m2, ta, ma\n\t"   \
    ext " v16, v20\n\t"

/* isum[t] = sum((q - 32) * scale * a_t) of one Q6_K block for nt >= 1 tokens (at: token
 * 0's transposed activations, stride to the next). The codes are decoded as in the
 * natural layout (v0..v3 = elements 0..63, v8..v11 = 64..127, v4..v7 = 128..191,
 * v12..v15 = 192..255; ql's nibbles with qh's bit pairs at bits 4-5, the -32 folded in),
 * which round 1 takes in that order. */
static inline void tokt_q6_K(const uint8_t *b, const int8_t *at, size_t stride, int64_t nt, int32_t *isum)
{
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
        "vsetivli zero, 16, e8, m1, ta, ma\n\t"
        SI_T16_ROUND1("v0", "v2", "v8", "v10", "v4", "v6", "v12", "v14") SI_T16_ROUNDS234
        "addi t0, %[b], 192\n\t"
        SI_T16_SCALES("t0", "vsext.vf2")
        SI_T16_LOOP(SI_T16_MUL_S, SI_T16_MAC_S, SI_T16_APART, SI_T16_SCALE2)
        : [a] "+r"(at), [o] "+r"(isum)
        : [b] "r"(b), [s] "r"(stride), [oe] "r"(isum + nt)
        : SI_FUSED_CLOBBER, "t1", "t2");
}

/* isum[t] = -sum((code - 4) * (scale - 32) * a_t) of one Q3_K block (negated, as
 * dec_q3_K's block: the caller negates d): codes c - 4 (-4..3) decoded in
 * natural order into v0..v15 (elements 128h + 32j + l in v(8h + 2j)), the 6-bit scales
 * unpacked to 32 - scale as there. 16 products of 4 * 127 fit a 16-bit lane. */
static inline void tokt_q3_K(const uint8_t *b, const int8_t *at, size_t stride, int64_t nt, int32_t *isum)
{
    int8_t tmp[16];
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
        SI_T16_NATURAL
        SI_T16_SCALES("%[tmp]", "vsext.vf2")
        SI_T16_LOOP(SI_T16_MUL_S, SI_T16_MAC_S, SI_T16_SAME, "")
        : [a] "+r"(at), [o] "+r"(isum)
        : [s] "r"(stride), [oe] "r"(isum + nt), [raw] "r"(raw), [qs] "r"(qs), [hm] "r"(hm), [tmp] "r"(tmp)
        : SI_FUSED_CLOBBER, "t1");
#undef SI_DEC_3BIT
}

/* isum[t] = sum(code * scale * a_t) of one Q4_K block for nt >= 1 tokens, and fm[0..7] =
 * dmin * mins (SI_K4_FMINS), as tok_q5_K's. Codes 0..15 in natural order (SI_K45_CODES:
 * qs[32c..]'s low nibbles are elements 64c..64c+31, the high ones the next 32); group
 * l has the scale of sub-block l / 2, picked from the unpacked scales (tmp[0..3] and
 * tmp[8..11]) by a gather. 16 products of 15 * 127 fit a 16-bit lane. */
static inline void tokt_q4_K(const uint8_t *b, const int8_t *at, size_t stride, int64_t nt, int32_t *isum, float dmin,
                             float *fm)
{
    uint8_t tmp[16];
    const uint8_t *sc = b + offsetof(blk_q4_K, scales), *qs = b + offsetof(blk_q4_K, qs);
    __asm__ volatile(
        SI_K45_CODES
        SI_T16_NATURAL
        /* group l's scale: tmp[s + 4 * (s >= 4)] for s = l / 2 */
        "vid.v v21\n\t"
        "vsrl.vi v22, v21, 1\n\t"
        "vsrl.vi v23, v21, 3\n\t"
        "vsll.vi v23, v23, 2\n\t"
        "vadd.vv v22, v22, v23\n\t"
        "vle8.v v20, (%[tmp])\n\t"
        "vrgather.vv v21, v20, v22\n\t"
        "vsetivli zero, 16, e16, m2, ta, ma\n\t"
        "vzext.vf2 v16, v21\n\t"
        SI_T16_LOOP(SI_T16_MUL_U, SI_T16_MAC_U, SI_T16_SAME, "")
        : [a] "+r"(at), [o] "+r"(isum)
        : [q] "r"(qs), [sc] "r"(sc), [s] "r"(stride), [oe] "r"(isum + nt), [tmp] "r"(tmp), [dmin] "f"(dmin),
          [fm] "r"(fm)
        : SI_FUSED_CLOBBER, "t1");
}

#undef SI_T16_SPLIT
#undef SI_T16_ROUND1
#undef SI_T16_ROUNDS234
#undef SI_T16_NATURAL
#undef SI_T16_LOAD
#undef SI_T16_QUAD
#undef SI_T16_LOOP
#undef SI_T16_MUL_S
#undef SI_T16_MAC_S
#undef SI_T16_MUL_U
#undef SI_T16_MAC_U
#undef SI_T16_SAME
#undef SI_T16_APART
#undef SI_T16_SCALE2
#undef SI_T16_SCALES
#undef SI_DEC_2BIT
#undef SI_DEC_2BIT_AT
#undef SI_K45_CODES
