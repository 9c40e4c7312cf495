/* The K-quant decoders and matrix loops, included by neon_kquant.c (baseline:
 * SI_NEON_DOT 0) and neon_dot.c (SDOT: SI_NEON_DOT 1), which name the entry
 * (SI_KQ_ENTRY). What they compute is said in neon_kquant.c. */
#ifndef SI_NEON_DOT
#error "define SI_NEON_DOT and SI_KQ_ENTRY, then include neon_kquant.h"
#endif

typedef struct {
    int8x16_t q[16];
    /* Q3_K, Q6_K: scale of group g in lane g % 8 of sc[g / 8]; Q4_K, Q5_K: scale of
     * sub-block s in lane s of sc[0]; Q2_K: unused (in the codes) */
    int16x8_t sc[2]; /* (Q2_K decoded unscaled, for one token: as Q3_K) */
    int16x8_t mn[2]; /* multiplier of bsums[g], lane g % 8 of mn[g / 8]; Q2_K, Q4_K, Q5_K */
#if SI_NEON_DOT
    int32x4_t sc32[4]; /* sc as int32: scale j (group or sub-block) in lane j % 4 of sc32[j / 4] */
#endif
    float d, dmin;
} nkblk;

static inline int8x16_t s8(uint8x16_t x) { return vreinterpretq_s8_u8(x); }

/* bits of x shifted right by s (left by -s), masked with m */
static inline uint8x16_t field(uint8x16_t x, int s, uint8_t m)
{
    return vandq_u8(vshlq_u8(x, vdupq_n_s8((int8_t)-s)), vdupq_n_u8(m));
}

static inline void widen_u8(uint8x16_t x, int16x8_t out[2])
{
    out[0] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(x)));
    out[1] = vreinterpretq_s16_u16(vmovl_high_u8(x));
}

/* Q2_K: group 8h + 2j + part holds bits 2j..2j+1 of qs[32h + 16 part .. + 15];
 * scaled: times the group's scale, else the scales go to sc as for Q3_K */
static inline __attribute__((always_inline)) void dec_q2_K(const uint8_t *p, nkblk *k, int scaled)
{
    const uint8_t *qs = p + offsetof(blk_q2_K, qs), *sc = p + offsetof(blk_q2_K, scales);
    for (int h = 0; h < 2; h++)
        for (int part = 0; part < 2; part++) {
            const uint8x16_t x = vld1q_u8(qs + 32 * h + 16 * part);
            for (int j = 0; j < 4; j++) {
                const int g = 8 * h + 2 * j + part;
                k->q[g] = s8(scaled ? vmulq_u8(field(x, 2 * j, 3), vdupq_n_u8(sc[g] & 15)) : field(x, 2 * j, 3));
            }
        }
    const uint8x16_t sc8 = vld1q_u8(sc);
    if (!scaled)
        widen_u8(vandq_u8(sc8, vdupq_n_u8(15)), k->sc);
    widen_u8(vshrq_n_u8(sc8, 4), k->mn);
    k->d = si_neon_h2f(p + offsetof(blk_q2_K, d));
    k->dmin = si_neon_h2f(p + offsetof(blk_q2_K, dmin));
}

/* Q3_K: Q2_K's low bits; the high bit of element l of group 8h + 2j + part is bit
 * 4h + j of hmask[16 part + l]; code = low | high << 2, minus 4. */
static void dec_q3_K(const uint8_t *p, nkblk *k)
{
    const uint8_t *qs = p + offsetof(blk_q3_K, qs), *hmask = p + offsetof(blk_q3_K, hmask);
    const int8x16_t four = vdupq_n_s8(4);
    for (int part = 0; part < 2; part++) {
        const uint8x16_t hm = vld1q_u8(hmask + 16 * part);
        for (int h = 0; h < 2; h++) {
            const uint8x16_t x = vld1q_u8(qs + 32 * h + 16 * part);
            for (int j = 0; j < 4; j++) {
                const uint8x16_t c = vorrq_u8(field(x, 2 * j, 3), field(hm, 4 * h + j - 2, 4));
                k->q[8 * h + 2 * j + part] = vsubq_s8(s8(c), four);
            }
        }
    }
    /* the 16 six-bit scales (si_q3_K_scale) as bytes, eight per 64-bit word: scales
     * 0..7 take the low nibbles of bytes 0..7, 8..15 the high ones; the top two bits of
     * scale j are bit pair j / 4 of byte 8 + j % 4 */
    uint64_t lo;
    uint32_t top;
    memcpy(&lo, p + offsetof(blk_q3_K, scales), 8);
    memcpy(&top, p + offsetof(blk_q3_K, scales) + 8, 4);
    const uint64_t n4 = 0x0F0F0F0F0F0F0F0Full;
    const uint32_t b2 = 0x03030303u;
    const uint64_t t0 = (uint64_t)(top & b2) | (uint64_t)((top >> 2) & b2) << 32;
    const uint64_t t1 = (uint64_t)((top >> 4) & b2) | (uint64_t)((top >> 6) & b2) << 32;
    const uint64x2_t w = vcombine_u64(vcreate_u64((lo & n4) | t0 << 4), vcreate_u64(((lo >> 4) & n4) | t1 << 4));
    widen_u8(vreinterpretq_u8_u64(w), k->sc);
    const int16x8_t bias = vdupq_n_s16(32);
    k->sc[0] = vsubq_s16(k->sc[0], bias);
    k->sc[1] = vsubq_s16(k->sc[1], bias);
    k->d = si_neon_h2f(p + offsetof(blk_q3_K, d));
}

/* Q4_K / Q5_K: sub-block 2c (2c + 1) in the low (high) nibbles of qs[32c .. 32c + 31],
 * its groups 4c + part (4c + 2 + part); the fifth bit of sub-block s is bit s of
 * qh[16 part + l]. */
static void dec_q45_K(const uint8_t *p, nkblk *k, int has_qh)
{
    const uint8_t *qs = p + (has_qh ? offsetof(blk_q5_K, qs) : offsetof(blk_q4_K, qs));
    for (int c = 0; c < 4; c++)
        for (int part = 0; part < 2; part++) {
            const uint8x16_t x = vld1q_u8(qs + 32 * c + 16 * part);
            k->q[4 * c + part] = s8(vandq_u8(x, vdupq_n_u8(15)));
            k->q[4 * c + 2 + part] = s8(vshrq_n_u8(x, 4));
        }
    if (has_qh)
        for (int part = 0; part < 2; part++) {
            const uint8x16_t qh = vld1q_u8(p + offsetof(blk_q5_K, qh) + 16 * part);
            for (int s = 0; s < 8; s++)
                k->q[2 * s + part] = vorrq_s8(k->q[2 * s + part], s8(field(qh, s - 4, 16)));
        }
    /* scales and mins of the 8 sub-blocks (si_k4_scale_min), eight bytes each: 0..3 are
     * the low six bits of bytes 0..3 (4..7); 4..7 take their low nibbles from bytes 8..11
     * (low nibble: scale, high: min) and their top two bits from the top bits of bytes
     * 0..3 (4..7) */
    uint32_t a, b, c;
    const uint8_t *sc = p + offsetof(blk_q4_K, scales);
    memcpy(&a, sc, 4);
    memcpy(&b, sc + 4, 4);
    memcpy(&c, sc + 8, 4);
    const uint32_t m6 = 0x3F3F3F3Fu, n4 = 0x0F0F0F0Fu, t2 = 0x30303030u;
    const uint64_t scs = (uint64_t)(a & m6) | (uint64_t)((c & n4) | ((a >> 2) & t2)) << 32;
    const uint64_t mins = (uint64_t)(b & m6) | (uint64_t)(((c >> 4) & n4) | ((b >> 2) & t2)) << 32;
    /* the mins per 16-element group: each sub-block's byte twice */
    const uint8x8_t m8v = vcreate_u8(mins);
    k->sc[0] = vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(scs)));
    widen_u8(vcombine_u8(vzip1_u8(m8v, m8v), vzip2_u8(m8v, m8v)), k->mn);
    k->d = si_neon_h2f(p + offsetof(blk_q4_K, d));
    k->dmin = si_neon_h2f(p + offsetof(blk_q4_K, dmin));
}

/* Q6_K: element l of quarter qt of half h: low nibble (qt < 2) or high nibble of
 * ql[64h + 32 (qt & 1) + l], bits 2qt..2qt+1 of qh[32h + l] on top, minus 32; group
 * 8h + 2qt + part for l = 16 part + i. */
static void dec_q6_K(const uint8_t *p, nkblk *k)
{
    const uint8_t *ql = p + offsetof(blk_q6_K, ql), *qhp = p + offsetof(blk_q6_K, qh);
    const int8x16_t bias = vdupq_n_s8(32);
    for (int h = 0; h < 2; h++)
        for (int part = 0; part < 2; part++) {
            const uint8x16_t l0 = vld1q_u8(ql + 64 * h + 16 * part), l1 = vld1q_u8(ql + 64 * h + 32 + 16 * part);
            const uint8x16_t qh = vld1q_u8(qhp + 32 * h + 16 * part);
            const uint8x16_t lo[4] = {vandq_u8(l0, vdupq_n_u8(15)), vandq_u8(l1, vdupq_n_u8(15)), vshrq_n_u8(l0, 4),
                                      vshrq_n_u8(l1, 4)};
            for (int qt = 0; qt < 4; qt++)
                k->q[8 * h + 2 * qt + part] = vsubq_s8(s8(vorrq_u8(lo[qt], field(qh, 2 * qt - 4, 0x30))), bias);
        }
    const int8x16_t sc8 = vld1q_s8((const int8_t *)p + offsetof(blk_q6_K, scales));
    k->sc[0] = vmovl_s8(vget_low_s8(sc8));
    k->sc[1] = vmovl_high_s8(sc8);
    k->d = si_neon_h2f(p + offsetof(blk_q6_K, d));
}

/* Q2_K at one token: unscaled codes and a scaling step per group, cheaper than scaling
 * the codes when the block serves one token only (the same integer sums) */
#define Q2_K_1 (SI_TYPE_COUNT + 1)

SI_AI void decode(uint32_t type, const uint8_t *b, nkblk *k)
{
    switch (type) {
    case SI_TYPE_Q2_K: dec_q2_K(b, k, 1); break;
    case Q2_K_1: dec_q2_K(b, k, 0); break;
    case SI_TYPE_Q3_K: dec_q3_K(b, k); break;
    case SI_TYPE_Q4_K: dec_q45_K(b, k, 0); break;
    case SI_TYPE_Q5_K: dec_q45_K(b, k, 1); break;
    default: dec_q6_K(b, k); break;
    }
}

/* products of groups g and g + 1 (32 elements) with the activations, four per int16 lane */
#define KPROD4(p, g)                                                                       \
    do {                                                                                   \
        const int8x16_t a0_ = vld1q_s8(yq + 16 * (g)), a1_ = vld1q_s8(yq + 16 * (g) + 16); \
        p = vmull_s8(vget_low_s8(k->q[g]), vget_low_s8(a0_));                              \
        p = vmlal_high_s8(p, k->q[g], a0_);                                                \
        p = vmlal_s8(p, vget_low_s8(k->q[(g) + 1]), vget_low_s8(a1_));                     \
        p = vmlal_high_s8(p, k->q[(g) + 1], a1_);                                          \
    } while (0)

/* acc += lane l of scale vector v times each of p's lanes (l, v constant) */
#define KSCALE(acc, p, v, l)                                         \
    do {                                                             \
        acc = vmlal_laneq_s16(acc, vget_low_s16(p), v, l);           \
        acc = vmlal_high_laneq_s16(acc, p, v, l);                    \
    } while (0)

/* Q3_K, Q6_K: group g (constant) into acc */
#define KGROUP16(acc, g)                                                    \
    do {                                                                    \
        const int8x16_t a_ = vld1q_s8(yq + 16 * (g));                       \
        int16x8_t p_ = vmull_s8(vget_low_s8(k->q[g]), vget_low_s8(a_));     \
        p_ = vmlal_high_s8(p_, k->q[g], a_);                                \
        KSCALE(acc, p_, k->sc[(g) / 8], (g) % 8);                           \
    } while (0)

/* Q4_K, Q5_K: sub-block s (constant) into acc */
#define KSUB32(acc, s)                        \
    do {                                      \
        int16x8_t p_;                         \
        KPROD4(p_, 2 * (s));                  \
        KSCALE(acc, p_, k->sc[0], s);         \
    } while (0)

/* Q2_K: groups 2i, 2i + 1 (scaled codes) into acc */
#define KPAIR(acc, i)                         \
    do {                                      \
        int16x8_t p_;                         \
        KPROD4(p_, 2 * (i));                  \
        acc = vpadalq_s16(acc, p_);           \
    } while (0)

#if SI_NEON_DOT
/* With SDOT (four products per int32 lane): group g, sub-block s, pair i as above */
#undef KGROUP16
#undef KSUB32
#undef KPAIR
#define KGROUP16(acc, g)                                                                    \
    acc = vmlaq_laneq_s32(acc, vdotq_s32(vdupq_n_s32(0), k->q[g], vld1q_s8(yq + 16 * (g))), \
                          k->sc32[(g) / 4], (g) % 4)
#define KDOT32(g) \
    vdotq_s32(vdotq_s32(vdupq_n_s32(0), k->q[g], vld1q_s8(yq + 16 * (g))), k->q[(g) + 1], vld1q_s8(yq + 16 * (g) + 16))
#define KSUB32(acc, s) acc = vmlaq_laneq_s32(acc, KDOT32(2 * (s)), k->sc32[(s) / 4], (s) % 4)
#define KPAIR(acc, i)                                                                                    \
    acc = vdotq_s32(vdotq_s32(acc, k->q[2 * (i)], vld1q_s8(yq + 32 * (i))), k->q[2 * (i) + 1], \
                    vld1q_s8(yq + 32 * (i) + 16))
#endif

/* The block's contribution to one token whose Q8_K block is at y. */
SI_AI float kdot(uint32_t type, const nkblk *k, const uint8_t *y)
{
    const int8_t *yq = (const int8_t *)y + offsetof(blk_q8_K, qs);
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
    if (type == SI_TYPE_Q2_K) {
        KPAIR(a0, 0); KPAIR(a1, 1); KPAIR(a2, 2); KPAIR(a3, 3);
        KPAIR(a0, 4); KPAIR(a1, 5); KPAIR(a2, 6); KPAIR(a3, 7);
    } else if (type == SI_TYPE_Q4_K || type == SI_TYPE_Q5_K) {
        KSUB32(a0, 0); KSUB32(a1, 1); KSUB32(a2, 2); KSUB32(a3, 3);
        KSUB32(a0, 4); KSUB32(a1, 5); KSUB32(a2, 6); KSUB32(a3, 7);
    } else {
        KGROUP16(a0, 0); KGROUP16(a1, 1); KGROUP16(a2, 2); KGROUP16(a3, 3);
        KGROUP16(a0, 4); KGROUP16(a1, 5); KGROUP16(a2, 6); KGROUP16(a3, 7);
        KGROUP16(a0, 8); KGROUP16(a1, 9); KGROUP16(a2, 10); KGROUP16(a3, 11);
        KGROUP16(a0, 12); KGROUP16(a1, 13); KGROUP16(a2, 14); KGROUP16(a3, 15);
    }
    const int32_t isum = vaddvq_s32(vaddq_s32(vaddq_s32(a0, a1), vaddq_s32(a2, a3)));
    float yd;
    memcpy(&yd, y, sizeof yd);
    if (type == SI_TYPE_Q3_K || type == SI_TYPE_Q6_K)
        return (k->d * yd) * (float)isum;
    /* Q2_K, Q2_K_1, Q4_K, Q5_K */
    const uint8_t *bs = y + offsetof(blk_q8_K, bsums);
    const int16x8_t b0 = vreinterpretq_s16_u8(vld1q_u8(bs)), b1 = vreinterpretq_s16_u8(vld1q_u8(bs + 16));
    int32x4_t m = vmull_s16(vget_low_s16(b0), vget_low_s16(k->mn[0]));
    m = vmlal_high_s16(m, b0, k->mn[0]);
    m = vmlal_s16(m, vget_low_s16(b1), vget_low_s16(k->mn[1]));
    m = vmlal_high_s16(m, b1, k->mn[1]);
    const int32_t summ = vaddvq_s32(m);
    const float x = (yd * k->d) * (float)isum, z = (yd * k->dmin) * (float)summ;
    return x - z;
}
#undef KPROD4
#undef KSCALE
#undef KGROUP16
#undef KSUB32
#undef KPAIR
#undef KDOT32

/* One type (a constant after inlining): rows × tokens, each block decoded once per chunk
 * of tokens. */
SI_AI void mat_dot_type(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                        size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    const size_t bsz = si_type_get(type == Q2_K_1 ? SI_TYPE_Q2_K : type)->type_size, ys = sizeof(blk_q8_K);
    const int64_t nb = n / SI_QK_K;
    nkblk k;
    float acc[SI_NEON_TOK_CHUNK];
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int64_t t0 = 0; t0 < n_tok; t0 += SI_NEON_TOK_CHUNK) {
            const int64_t nt = n_tok - t0 < SI_NEON_TOK_CHUNK ? n_tok - t0 : SI_NEON_TOK_CHUNK;
            for (int64_t t = 0; t < nt; t++)
                acc[t] = 0.0f;
            for (int64_t i = 0; i < nb; i++) {
                decode(type, row + (size_t)i * bsz, &k);
#if SI_NEON_DOT
                if (type != SI_TYPE_Q2_K) {
                    k.sc32[0] = vmovl_s16(vget_low_s16(k.sc[0]));
                    k.sc32[1] = vmovl_high_s16(k.sc[0]);
                }
                if (type != SI_TYPE_Q2_K && type != SI_TYPE_Q4_K && type != SI_TYPE_Q5_K) {
                    k.sc32[2] = vmovl_s16(vget_low_s16(k.sc[1]));
                    k.sc32[3] = vmovl_high_s16(k.sc[1]);
                }
                /* opaque to the compiler: else it folds the widening into every MLA by
                 * element (DUP + UXTL + MLA per group and token) */
                for (int j = 0; j < 4; j++)
                    __asm__("" : "+w"(k.sc32[j]));
#endif
                const uint8_t *y = (const uint8_t *)act + (size_t)t0 * act_stride + (size_t)i * ys;
                for (int64_t t = 0; t < nt; t++, y += act_stride)
                    acc[t] += kdot(type, &k, y);
            }
            for (int64_t t = 0; t < nt; t++)
                out[(size_t)(t0 + t) * out_stride + (size_t)r] = acc[t];
        }
    }
}

void SI_KQ_ENTRY(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                        size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    if (type == SI_TYPE_Q2_K && n_tok == 1) {
        mat_dot_type(Q2_K_1, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
        return;
    }
    switch (type) {
#define SI_KQ_CASE(T) \
    case T: mat_dot_type(T, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride); break;
        SI_KQ_CASE(SI_TYPE_Q2_K)
        SI_KQ_CASE(SI_TYPE_Q3_K)
        SI_KQ_CASE(SI_TYPE_Q4_K)
        SI_KQ_CASE(SI_TYPE_Q5_K)
        SI_KQ_CASE(SI_TYPE_Q6_K)
#undef SI_KQ_CASE
    default: break;
    }
}

