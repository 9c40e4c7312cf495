/* The Q8_0 / Q4_0 matrix loops, included by neon_q80.c (baseline: SI_NEON_DOT 0) and
 * neon_dot.c (SDOT: SI_NEON_DOT 1), which name the entry (SI_Q80_ENTRY). What they
 * compute is said in neon_q80.c. */
#ifndef SI_NEON_DOT
#error "define SI_NEON_DOT and SI_Q80_ENTRY, then include neon_q80.h"
#endif

#define Q80_G 4

/* the 32 codes of a block as two vectors (elements 0..15, 16..31) */
typedef struct {
    int8x16_t lo, hi;
} q32;

static inline q32 dec_q4_0(const uint8_t *b)
{
    const uint8x16_t x = vld1q_u8(b + offsetof(blk_q4_0, qs));
    const int8x16_t eight = vdupq_n_s8(8);
    return (q32){vsubq_s8(vreinterpretq_s8_u8(vandq_u8(x, vdupq_n_u8(15))), eight),
                 vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(x, 4)), eight)};
}

static inline q32 dec_q8_0(const uint8_t *b)
{
    const int8_t *q = (const int8_t *)b + offsetof(blk_q8_0, qs);
    return (q32){vld1q_s8(q), vld1q_s8(q + 16)};
}

/* four lanes whose sum is the block's integer dot with the Q8_0 activations at y */
SI_AI int32x4_t idot(int q4, q32 w, const uint8_t *y)
{
    const int8_t *a = (const int8_t *)y + offsetof(blk_q8_0, qs);
    const int8x16_t a0 = vld1q_s8(a), a1 = vld1q_s8(a + 16);
#if SI_NEON_DOT
    (void)q4;
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w.lo, a0), w.hi, a1);
#endif
    if (q4) {
        int16x8_t p = vmull_s8(vget_low_s8(w.lo), vget_low_s8(a0));
        p = vmlal_high_s8(p, w.lo, a0);
        p = vmlal_s8(p, vget_low_s8(w.hi), vget_low_s8(a1));
        p = vmlal_high_s8(p, w.hi, a1);
        return vpaddlq_s16(p);
    }
    int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(w.lo), vget_low_s8(a0)));
    s = vpadalq_s16(s, vmull_high_s8(w.lo, a0));
    s = vpadalq_s16(s, vmull_s8(vget_low_s8(w.hi), vget_low_s8(a1)));
    return vpadalq_s16(s, vmull_high_s8(w.hi, a1));
}

/* cnt (1..4) decoded blocks against one token: their terms added to *acc in order */
SI_AI void group_dot(int q4, const q32 *w, float32x4_t dw, int cnt, const uint8_t *y, float *acc)
{
    const size_t ys = sizeof(blk_q8_0);
    int32x4_t v[Q80_G];
    for (int j = 0; j < Q80_G; j++)
        v[j] = j < cnt ? idot(q4, w[j], y + (size_t)j * ys) : vdupq_n_s32(0);
    const int32x4_t isum = vpaddq_s32(vpaddq_s32(v[0], v[1]), vpaddq_s32(v[2], v[3]));
    float32x4_t da;
    if (cnt == Q80_G) {
        da = si_neon_h2f4(y + offsetof(blk_q8_0, d), ys);
    } else {
        float d[Q80_G] = {0};
        for (int j = 0; j < cnt; j++)
            d[j] = si_neon_h2f(y + (size_t)j * ys + offsetof(blk_q8_0, d));
        da = vld1q_f32(d);
    }
    const float32x4_t f = vcvtq_f32_s32(isum);
    const float32x4_t t = q4 ? vmulq_f32(vmulq_f32(f, dw), da) : vmulq_f32(f, vmulq_f32(dw, da));
    float s = *acc;
    s += vgetq_lane_f32(t, 0);
    if (cnt > 1)
        s += vgetq_lane_f32(t, 1);
    if (cnt > 2)
        s += vgetq_lane_f32(t, 2);
    if (cnt > 3)
        s += vgetq_lane_f32(t, 3);
    *acc = s;
}

/* One group of cnt blocks at b (cnt constant in the main loop) decoded, then dotted with
 * nt tokens whose blocks start at y; acc[t] is token t's sum. */
SI_AI void group_rows(int q4, int cnt, const uint8_t *b, const uint8_t *y, size_t act_stride, int64_t nt, float *acc)
{
    const size_t bsz = q4 ? sizeof(blk_q4_0) : sizeof(blk_q8_0);
    float32x4_t dw;
    if (cnt == Q80_G) {
        dw = si_neon_h2f4(b, bsz); /* d is each block's first field */
    } else {
        float d[Q80_G] = {0};
        for (int j = 0; j < cnt; j++)
            d[j] = si_neon_h2f(b + (size_t)j * bsz);
        dw = vld1q_f32(d);
    }
    q32 q[Q80_G];
    for (int j = 0; j < cnt; j++)
        q[j] = q4 ? dec_q4_0(b + (size_t)j * bsz) : dec_q8_0(b + (size_t)j * bsz);
    for (int64_t t = 0; t < nt; t++, y += act_stride)
        group_dot(q4, q, dw, cnt, y, &acc[t]);
}

SI_AI void mat_dot_rows(int q4, int64_t nb, const void *w, size_t row_bytes, int64_t n_rows,
                         const uint8_t *y0, size_t act_stride, int64_t nt, float *out, size_t out_stride)
{
    const size_t bsz = q4 ? sizeof(blk_q4_0) : sizeof(blk_q8_0), ys = sizeof(blk_q8_0);
    const int64_t nbg = nb - nb % Q80_G;
    float acc[SI_NEON_TOK_CHUNK];
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int64_t t = 0; t < nt; t++)
            acc[t] = 0.0f;
        for (int64_t i = 0; i < nbg; i += Q80_G)
            group_rows(q4, Q80_G, row + (size_t)i * bsz, y0 + (size_t)i * ys, act_stride, nt, acc);
        if (nbg < nb)
            group_rows(q4, (int)(nb - nbg), row + (size_t)nbg * bsz, y0 + (size_t)nbg * ys, act_stride, nt, acc);
        for (int64_t t = 0; t < nt; t++)
            out[(size_t)t * out_stride + (size_t)r] = acc[t];
    }
}

void SI_Q80_ENTRY(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                         size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    const int64_t nb = n / SI_QK8_0;
    for (int64_t t0 = 0; t0 < n_tok; t0 += SI_NEON_TOK_CHUNK) {
        const int64_t nt = n_tok - t0 < SI_NEON_TOK_CHUNK ? n_tok - t0 : SI_NEON_TOK_CHUNK;
        const uint8_t *y0 = (const uint8_t *)act + (size_t)t0 * act_stride;
        float *o = out + (size_t)t0 * out_stride;
        if (type == SI_TYPE_Q4_0) /* constant q4: each variant specialized */
            mat_dot_rows(1, nb, w, row_bytes, n_rows, y0, act_stride, nt, o, out_stride);
        else
            mat_dot_rows(0, nb, w, row_bytes, n_rows, y0, act_stride, nt, o, out_stride);
    }
}

