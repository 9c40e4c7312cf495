/* Part of rvv_kquant.c, which includes it once, in order, inside its
 * SI_HAVE_RVV_SET section (the parts share its helpers and macros).
 * Several tokens at VLEN >= 256, Q2_K and Q3_K: the block decoded at full width
 * through small buffers, tokens in wide chunks (tokw_q2_K, tokw_q3_K). Its last lines
 * retire the token-loop macros of rvv_kq_tok128.h too. */

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
 * block as dec_q3_K's (the scales unpacked as in tokt_q3_K). Per token, with two chunks
 * the products are summed two per 16-bit lane (activations -127..127, two products in
 * -32512..32512); with one chunk one product per lane. */
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
    SI_TOK_S8_END
#define SI_WIDE_S8_1                            \
    "vsetivli zero, 1, e32, m1, ta, ma\n\t"     \
    "vmv.s.x v21, zero\n\t"                     \
    "1:\n\t"                                    \
    "vsetvli zero, %[n], e8, m4, ta, ma\n\t"    \
    "vle8.v v16, (%[a])\n\t"                    \
    "vwmul.vv v24, v16, v0\n\t"                 \
    "vsetvli zero, %[n], e16, m8, ta, ma\n\t"   \
    "vwredsum.vs v20, v24, v21\n\t"             \
    SI_TOK_S8_END
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
#undef SI_TOK_S8_END
#undef SI_WIDE_S8_1
#undef SI_WIDE_S8_2
#undef SI_WIDE_U8_1
#undef SI_WIDE_U8_2
#undef SI_DEC_GROUP
#undef SI_DEC_GROUP_AT
#undef SI_DEC_SCALE_ALL

#undef SI_TOK_S8_STEP
#undef SI_TOK_U8_LOOP
#undef SI_TOK_U8_TAIL
#undef SI_TOK_S8_LOOP
#undef SI_TOK_LOAD_W
#undef SI_TOK_CLOBBER
