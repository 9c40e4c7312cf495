/* Part of rvv_kquant.c, which includes it once, in order, inside its
 * SI_HAVE_RVV_SET section (the parts share its helpers and macros).
 * Q4_K, Q5_K and Q6_K at VLEN >= 256: several tokens (tokw_q45_K, tokw_q6_K) and
 * one token of Q4_K/Q5_K (fusedw_*, and VLEN 256's and 512's own fused256_*,
 * fused512_*). */

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
