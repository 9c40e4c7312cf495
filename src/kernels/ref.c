/* The reference kernels: plain C that defines every kernel result (see types.h).
 *
 * Layouts and arithmetic follow ggml's generic C code (ggml-quants.c for dequantization
 * and activation quantization, ggml-cpu's generic vec_dot), including where it sums in
 * integers and the order in which it adds floats, so the engine's numbers line up with
 * llama.cpp's scalar path. SIMD kernels are tested against these functions. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "streaminfer/types.h"
#include "blocks.h"

/* ------------------------------------------------------------------------------------ */
/* fp16                                                                                 */

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float si_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t man = h & 0x3FF;

    if (exp == 0x1F) /* inf / nan: keep the payload, nan stays nan */
        return f32_from_bits(sign | 0x7F800000u | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return f32_from_bits(sign);
        /* subnormal: man * 2^-24 is exact in float */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t si_fp32_to_fp16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t exp = (u >> 23) & 0xFF;
    uint32_t man = u & 0x7FFFFF;

    if (exp == 0xFF) {
        if (man == 0)
            return sign | 0x7C00;
        /* keep the top payload bits and force quiet so a nan never turns into inf */
        return (uint16_t)(sign | 0x7E00 | (man >> 13));
    }

    int e = (int)exp - 127; /* unbiased */
    if (e > 15)
        return sign | 0x7C00; /* too large even before rounding */

    uint32_t mant; /* significand with the implicit bit, to be shifted right by `shift` */
    int shift;
    if (e >= -14) {
        mant = man | 0x800000;
        shift = 13;
    } else {
        /* half subnormal (or underflow to zero): the value is mant * 2^(e-23) and the
         * half's unit is 2^-24, so shift by (-14 - e) more */
        if (e < -25)
            return sign; /* below half of the smallest subnormal: rounds to zero */
        mant = man | 0x800000;
        shift = 13 + (-14 - e);
    }

    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1)))
        q++;

    if (e >= -14) {
        /* q is 1.mmmmmmmmmm possibly carried into 10.0000000000: adding the exponent
         * field lets the carry bump the exponent (and reach inf) naturally */
        uint32_t h = ((uint32_t)(e + 15) << 10) + (q - 0x400);
        if (h >= 0x7C00)
            return sign | 0x7C00;
        return (uint16_t)(sign | h);
    }
    /* subnormal result; a carry to 0x400 is exactly the smallest normal */
    return (uint16_t)(sign | q);
}

/* ------------------------------------------------------------------------------------ */
/* F32 / F16                                                                            */

static void to_float_f32(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void from_float_f32(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

/* ggml's scalar f32 dot: float products, double accumulation */
static float vec_dot_f32(int64_t n, const void *w, const void *act)
{
    const uint8_t *a = w, *b = act;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float x, y;
        memcpy(&x, a + i * 4, 4);
        memcpy(&y, b + i * 4, 4);
        sum += (double)(x * y);
    }
    return (float)sum;
}

static inline uint16_t load_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void to_float_f16(const void *src, float *dst, int64_t n)
{
    const uint8_t *s = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = si_fp16_to_fp32(load_u16(s + 2 * i));
}

static void from_float_f16(const float *src, void *dst, int64_t n)
{
    uint8_t *d = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = si_fp32_to_fp16(src[i]);
        memcpy(d + 2 * i, &h, sizeof h);
    }
}

/* the product of two halves is exact in float; ggml sums in double */
static float vec_dot_f16(int64_t n, const void *w, const void *act)
{
    const uint8_t *a = w, *b = act;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(si_fp16_to_fp32(load_u16(a + 2 * i)) * si_fp16_to_fp32(load_u16(b + 2 * i)));
    return (float)sum;
}

/* ------------------------------------------------------------------------------------ */
/* Q8_0 / Q4_0                                                                          */

static void to_float_q8_0(const void *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n / SI_QK8_0; i++) {
        blk_q8_0 b;
        si_blk_load(&b, src, i);
        const float d = si_fp16_to_fp32(b.d);
        for (int j = 0; j < SI_QK8_0; j++)
            dst[i * SI_QK8_0 + j] = b.qs[j] * d;
    }
}

/* The codes come from the unrounded scale while the stored d is its fp16 rounding,
 * exactly as ggml does it. */
static void from_float_q8_0(const float *src, void *dst, int64_t n)
{
    for (int64_t i = 0; i < n / SI_QK8_0; i++) {
        const float *x = src + i * SI_QK8_0;
        blk_q8_0 b;
        float amax = 0.0f;
        for (int j = 0; j < SI_QK8_0; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b.d = si_fp32_to_fp16(d);
        /* Kept scalar: vectorized, this conversion becomes vfncvt.rtz, on which Debian 12's
         * qemu 7.2 aborts, and the riscv64 tests run there (the arithmetic is unchanged). */
#if defined(__clang__)
#pragma clang loop vectorize(disable) interleave(disable)
#endif
        for (int j = 0; j < SI_QK8_0; j++)
            b.qs[j] = (int8_t)roundf(x[j] * id);
        si_blk_store(dst, i, &b);
    }
}

static float vec_dot_q8_0_q8_0(int64_t n, const void *w, const void *act)
{
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / SI_QK8_0; i++) {
        blk_q8_0 x, y;
        si_blk_load(&x, w, i);
        si_blk_load(&y, act, i);
        int sumi = 0;
        for (int j = 0; j < SI_QK8_0; j++)
            sumi += x.qs[j] * y.qs[j];
        sumf += (float)sumi * (si_fp16_to_fp32(x.d) * si_fp16_to_fp32(y.d));
    }
    return sumf;
}

static void to_float_q4_0(const void *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n / SI_QK4_0; i++) {
        blk_q4_0 b;
        si_blk_load(&b, src, i);
        const float d = si_fp16_to_fp32(b.d);
        float *y = dst + i * SI_QK4_0;
        for (int j = 0; j < SI_QK4_0 / 2; j++) {
            y[j] = ((b.qs[j] & 0x0F) - 8) * d;
            y[j + SI_QK4_0 / 2] = ((b.qs[j] >> 4) - 8) * d;
        }
    }
}

static float vec_dot_q4_0_q8_0(int64_t n, const void *w, const void *act)
{
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / SI_QK8_0; i++) {
        blk_q4_0 x;
        blk_q8_0 y;
        si_blk_load(&x, w, i);
        si_blk_load(&y, act, i);
        int lo = 0, hi = 0;
        for (int j = 0; j < SI_QK4_0 / 2; j++) {
            lo += ((x.qs[j] & 0x0F) - 8) * y.qs[j];
            hi += ((x.qs[j] >> 4) - 8) * y.qs[j + SI_QK4_0 / 2];
        }
        /* ggml multiplies left to right here, unlike Q8_0 */
        sumf += (float)(lo + hi) * si_fp16_to_fp32(x.d) * si_fp16_to_fp32(y.d);
    }
    return sumf;
}

/* ------------------------------------------------------------------------------------ */
/* Q8_K                                                                                 */

/* Round to nearest, ties to even, through the float adder: adding 1.5*2^23 leaves the
 * rounded integer in the low mantissa bits. Valid for |v| < 2^22. */
static inline int nearest_int(float v)
{
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007FFFFF) - 0x00400000;
}

/* ggml scales by -127/max where max is the largest-magnitude element with its sign, so
 * that element becomes -127 and d carries the opposite sign; nothing reaches -128. */
static void from_float_q8_K(const float *src, void *dst, int64_t n)
{
    for (int64_t i = 0; i < n / SI_QK_K; i++) {
        const float *x = src + i * SI_QK_K;
        blk_q8_K b;
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < SI_QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            memset(&b, 0, sizeof b);
            si_blk_store(dst, i, &b);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < SI_QK_K; j++) {
            int v = nearest_int(iscale * x[j]);
            b.qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int k = 0; k < SI_QK_K / 16; k++) {
            int sum = 0;
            for (int j = 0; j < 16; j++)
                sum += b.qs[16 * k + j];
            b.bsums[k] = (int16_t)sum;
        }
        b.d = 1.0f / iscale;
        si_blk_store(dst, i, &b);
    }
}

/* ------------------------------------------------------------------------------------ */
/* K-quants                                                                             */

/* The K-quant dots (except Q2_K) follow ggml's generic shape: unpack the weights into
 * int8 codes, accumulate code products in eight int32 lanes (element i goes to lane
 * i % 8), scale each lane by d once per block into eight float lane sums, and add the
 * lanes at the end. The lane split is kept because it fixes the float summation order. */
typedef struct {
    float lane[8];
} lanes8;

/* Add scale * (w[l] * a[l]) for 8 elements into the int lanes. The product is formed in
 * 16 bits first, as ggml does; it always fits. */
static inline void lanes_madd(int32_t acc[8], int scale, const int8_t *w, const int8_t *a)
{
    for (int l = 0; l < 8; l++) {
        int16_t p = (int16_t)(w[l] * a[l]);
        acc[l] += scale * p;
    }
}

static inline void lanes_scale_add(lanes8 *s, float d, const int32_t acc[8])
{
    for (int l = 0; l < 8; l++)
        s->lane[l] += d * (float)acc[l];
}

/* --- Q2_K --- */

static void to_float_q2_K(const void *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n / SI_QK_K; i++) {
        blk_q2_K b;
        si_blk_load(&b, src, i);
        const float d = si_fp16_to_fp32(b.d);
        const float dmin = si_fp16_to_fp32(b.dmin);
        float *y = dst + i * SI_QK_K;
        int is = 0;
        for (int half = 0; half < 2; half++) {
            const uint8_t *q = b.qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; part++) {
                    uint8_t sc = b.scales[is++];
                    const float dl = d * (float)(sc & 0x0F);
                    const float ml = dmin * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (float)((q[16 * part + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* Integer sum of sc * q * a over the block, and the mins through bsums: the min of
 * sub-block k (16 elements) multiplies exactly bsums[k]. */
static float vec_dot_q2_K_q8_K(int64_t n, const void *w, const void *act)
{
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / SI_QK_K; i++) {
        blk_q2_K x;
        blk_q8_K y;
        si_blk_load(&x, w, i);
        si_blk_load(&y, act, i);

        int summs = 0;
        for (int k = 0; k < 16; k++)
            summs += y.bsums[k] * (x.scales[k] >> 4);
        const float dall = y.d * si_fp16_to_fp32(x.d);
        const float dmin = y.d * si_fp16_to_fp32(x.dmin);

        const int8_t *q8 = y.qs;
        int isum = 0, is = 0;
        for (int half = 0; half < 2; half++) {
            const uint8_t *q2 = x.qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; part++) {
                    int sc = x.scales[is++] & 0x0F;
                    int isuml = 0;
                    for (int l = 16 * part; l < 16 * part + 16; l++)
                        isuml += q8[l] * ((q2[l] >> shift) & 3);
                    isum += sc * isuml;
                }
                q8 += 32;
            }
        }
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

/* --- Q3_K --- */

/* Signed 3-bit codes -4..3 of one block in element order. */
static void unpack_q3_K(const blk_q3_K *b, int8_t out[SI_QK_K])
{
    uint8_t m = 1;
    for (int half = 0; half < 2; half++) {
        const uint8_t *q = b->qs + 32 * half;
        for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
            for (int l = 0; l < 32; l++) {
                int v = (q[l] >> shift) & 3;
                *out++ = (int8_t)(v - ((b->hmask[l] & m) ? 0 : 4));
            }
        }
    }
}

static void to_float_q3_K(const void *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n / SI_QK_K; i++) {
        blk_q3_K b;
        int8_t q[SI_QK_K];
        si_blk_load(&b, src, i);
        unpack_q3_K(&b, q);
        const float d = si_fp16_to_fp32(b.d);
        float *y = dst + i * SI_QK_K;
        for (int k = 0; k < 16; k++) {
            const float dl = d * (float)(si_q3_K_scale(b.scales, k) - 32);
            for (int l = 0; l < 16; l++)
                y[16 * k + l] = dl * (float)q[16 * k + l];
        }
    }
}

static float vec_dot_q3_K_q8_K(int64_t n, const void *w, const void *act)
{
    lanes8 sums = {{0}};
    for (int64_t i = 0; i < n / SI_QK_K; i++) {
        blk_q3_K x;
        blk_q8_K y;
        int8_t q[SI_QK_K];
        int32_t acc[8] = {0};
        si_blk_load(&x, w, i);
        si_blk_load(&y, act, i);
        unpack_q3_K(&x, q);
        for (int k = 0; k < 16; k++) {
            int sc = si_q3_K_scale(x.scales, k) - 32;
            lanes_madd(acc, sc, y.qs + 16 * k, q + 16 * k);
            lanes_madd(acc, sc, y.qs + 16 * k + 8, q + 16 * k + 8);
        }
        lanes_scale_add(&sums, si_fp16_to_fp32(x.d) * y.d, acc);
    }
    float sumf = 0.0f;
    for (int l = 0; l < 8; l++)
        sumf += sums.lane[l];
    return sumf;
}

/* --- Q4_K / Q5_K --- */

/* 4-bit codes (plus the 5th bit for Q5_K, qh == NULL for Q4_K) in element order: each
 * 32 bytes of qs hold sub-block 2k in the low and 2k+1 in the high nibbles, and the 5th
 * bit of sub-block s is bit s of qh[l]. */
static void unpack_q45_K(const uint8_t qs[SI_QK_K / 2], const uint8_t *qh, int8_t out[SI_QK_K])
{
    for (int s = 0; s < 8; s++) {
        const uint8_t *q = qs + 32 * (s / 2);
        for (int l = 0; l < 32; l++) {
            int v = (s & 1) ? (q[l] >> 4) : (q[l] & 0x0F);
            if (qh && (qh[l] >> s) & 1)
                v += 16;
            out[32 * s + l] = (int8_t)v;
        }
    }
}

static void to_float_q45_K(uint16_t dh, uint16_t dminh, const uint8_t scales[SI_K_SCALE_SIZE],
                           const int8_t q[SI_QK_K], float *y)
{
    const float d = si_fp16_to_fp32(dh);
    const float dmin = si_fp16_to_fp32(dminh);
    for (int s = 0; s < 8; s++) {
        uint8_t sc, m;
        si_k4_scale_min(scales, s, &sc, &m);
        const float dl = d * (float)sc;
        const float ml = dmin * (float)m;
        for (int l = 0; l < 32; l++)
            y[32 * s + l] = dl * (float)q[32 * s + l] - ml;
    }
}

static void to_float_q4_K(const void *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n / SI_QK_K; i++) {
        blk_q4_K b;
        int8_t q[SI_QK_K];
        si_blk_load(&b, src, i);
        unpack_q45_K(b.qs, NULL, q);
        to_float_q45_K(b.d, b.dmin, b.scales, q, dst + i * SI_QK_K);
    }
}

static void to_float_q5_K(const void *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n / SI_QK_K; i++) {
        blk_q5_K b;
        int8_t q[SI_QK_K];
        si_blk_load(&b, src, i);
        unpack_q45_K(b.qs, b.qh, q);
        to_float_q45_K(b.d, b.dmin, b.scales, q, dst + i * SI_QK_K);
    }
}

/* One block's contribution: scale terms into the lanes; returns the integer min term
 * (sum over sub-blocks of min * sum of its activation codes, via bsums). */
static int dot_q45_K_block(const uint8_t scales[SI_K_SCALE_SIZE], const int8_t q[SI_QK_K],
                           const blk_q8_K *y, int32_t acc[8])
{
    int summ = 0;
    for (int s = 0; s < 8; s++) {
        uint8_t sc, m;
        si_k4_scale_min(scales, s, &sc, &m);
        summ += (y->bsums[2 * s] + y->bsums[2 * s + 1]) * m;
        for (int g = 0; g < 4; g++)
            lanes_madd(acc, sc, y->qs + 32 * s + 8 * g, q + 32 * s + 8 * g);
    }
    return summ;
}

/* ggml subtracts the min terms from the running total block by block and adds the lane
 * sums only at the very end; that order is kept. */
static float vec_dot_q45_K(int64_t n, const void *w, const void *act, int has_qh)
{
    lanes8 sums = {{0}};
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / SI_QK_K; i++) {
        blk_q8_K y;
        int8_t q[SI_QK_K];
        int32_t acc[8] = {0};
        uint16_t d, dmin;
        uint8_t scales[SI_K_SCALE_SIZE];
        si_blk_load(&y, act, i);
        if (has_qh) {
            blk_q5_K x;
            si_blk_load(&x, w, i);
            unpack_q45_K(x.qs, x.qh, q);
            d = x.d;
            dmin = x.dmin;
            memcpy(scales, x.scales, sizeof scales);
        } else {
            blk_q4_K x;
            si_blk_load(&x, w, i);
            unpack_q45_K(x.qs, NULL, q);
            d = x.d;
            dmin = x.dmin;
            memcpy(scales, x.scales, sizeof scales);
        }
        int summ = dot_q45_K_block(scales, q, &y, acc);
        lanes_scale_add(&sums, si_fp16_to_fp32(d) * y.d, acc);
        sumf -= si_fp16_to_fp32(dmin) * y.d * (float)summ;
    }
    for (int l = 0; l < 8; l++)
        sumf += sums.lane[l];
    return sumf;
}

static float vec_dot_q4_K_q8_K(int64_t n, const void *w, const void *act)
{
    return vec_dot_q45_K(n, w, act, 0);
}

static float vec_dot_q5_K_q8_K(int64_t n, const void *w, const void *act)
{
    return vec_dot_q45_K(n, w, act, 1);
}

/* --- Q6_K --- */

/* Signed 6-bit codes -32..31 in element order. Each 128-element half uses 64 bytes of
 * ql (low nibbles: quarter 0 and 1, high nibbles: quarter 2 and 3) and 32 bytes of qh
 * (bit pair 2*quarter). */
static void unpack_q6_K(const blk_q6_K *b, int8_t out[SI_QK_K])
{
    for (int half = 0; half < 2; half++) {
        const uint8_t *ql = b->ql + 64 * half;
        const uint8_t *qh = b->qh + 32 * half;
        for (int quarter = 0; quarter < 4; quarter++) {
            const uint8_t *lo = ql + 32 * (quarter & 1);
            int nshift = (quarter >> 1) * 4;
            for (int l = 0; l < 32; l++) {
                int v = ((lo[l] >> nshift) & 0x0F) | (((qh[l] >> (2 * quarter)) & 3) << 4);
                out[128 * half + 32 * quarter + l] = (int8_t)(v - 32);
            }
        }
    }
}

static void to_float_q6_K(const void *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n / SI_QK_K; i++) {
        blk_q6_K b;
        int8_t q[SI_QK_K];
        si_blk_load(&b, src, i);
        unpack_q6_K(&b, q);
        const float d = si_fp16_to_fp32(b.d);
        float *y = dst + i * SI_QK_K;
        /* (d * sc) * q, the grouping ggml uses */
        for (int j = 0; j < SI_QK_K; j++)
            y[j] = d * (float)b.scales[j / 16] * (float)q[j];
    }
}

static float vec_dot_q6_K_q8_K(int64_t n, const void *w, const void *act)
{
    lanes8 sums = {{0}};
    for (int64_t i = 0; i < n / SI_QK_K; i++) {
        blk_q6_K x;
        blk_q8_K y;
        int8_t q[SI_QK_K];
        int32_t acc[8] = {0};
        si_blk_load(&x, w, i);
        si_blk_load(&y, act, i);
        unpack_q6_K(&x, q);
        for (int k = 0; k < 16; k++) {
            lanes_madd(acc, x.scales[k], y.qs + 16 * k, q + 16 * k);
            lanes_madd(acc, x.scales[k], y.qs + 16 * k + 8, q + 16 * k + 8);
        }
        lanes_scale_add(&sums, si_fp16_to_fp32(x.d) * y.d, acc);
    }
    float sumf = 0.0f;
    for (int l = 0; l < 8; l++)
        sumf += sums.lane[l];
    return sumf;
}

/* ------------------------------------------------------------------------------------ */
/* The type table                                                                       */

/* Geometry only: types the engine can size and skip but not compute with. Sizes are
 * ggml's block structs (ggml-common.h). vec_dot_type means something only for entries
 * with compute or from_float; elsewhere it is left at 0. */
#define GEOM(id, nm, bs, ts) [id] = { .name = nm, .blck_size = bs, .type_size = ts }

/* A weight type with kernels. */
#define COMPUTE(id, nm, bs, ts, vdt, tf, vd) \
    [id] = { .name = nm, .blck_size = bs, .type_size = ts, .compute = true, .vec_dot_type = vdt, .to_float = tf, .vec_dot = vd }

static const si_type_traits type_table[SI_TYPE_COUNT] = {
    [SI_TYPE_F32] = { .name = "F32", .blck_size = 1, .type_size = 4, .compute = true,
                      .vec_dot_type = SI_TYPE_F32, .to_float = to_float_f32,
                      .from_float = from_float_f32, .vec_dot = vec_dot_f32 },
    [SI_TYPE_F16] = { .name = "F16", .blck_size = 1, .type_size = 2, .compute = true,
                      .vec_dot_type = SI_TYPE_F16, .to_float = to_float_f16,
                      .from_float = from_float_f16, .vec_dot = vec_dot_f16 },
    COMPUTE(SI_TYPE_Q4_0, "Q4_0", SI_QK4_0, sizeof(blk_q4_0), SI_TYPE_Q8_0, to_float_q4_0, vec_dot_q4_0_q8_0),
    GEOM(SI_TYPE_Q4_1, "Q4_1", SI_QK4_1, sizeof(blk_q4_1)),
    GEOM(SI_TYPE_Q5_0, "Q5_0", SI_QK5_0, sizeof(blk_q5_0)),
    GEOM(SI_TYPE_Q5_1, "Q5_1", SI_QK5_1, sizeof(blk_q5_1)),
    [SI_TYPE_Q8_0] = { .name = "Q8_0", .blck_size = SI_QK8_0, .type_size = sizeof(blk_q8_0),
                       .compute = true, .vec_dot_type = SI_TYPE_Q8_0, .to_float = to_float_q8_0,
                       .from_float = from_float_q8_0, .vec_dot = vec_dot_q8_0_q8_0 },
    GEOM(SI_TYPE_Q8_1, "Q8_1", SI_QK8_1, sizeof(blk_q8_1)),
    COMPUTE(SI_TYPE_Q2_K, "Q2_K", SI_QK_K, sizeof(blk_q2_K), SI_TYPE_Q8_K, to_float_q2_K, vec_dot_q2_K_q8_K),
    COMPUTE(SI_TYPE_Q3_K, "Q3_K", SI_QK_K, sizeof(blk_q3_K), SI_TYPE_Q8_K, to_float_q3_K, vec_dot_q3_K_q8_K),
    COMPUTE(SI_TYPE_Q4_K, "Q4_K", SI_QK_K, sizeof(blk_q4_K), SI_TYPE_Q8_K, to_float_q4_K, vec_dot_q4_K_q8_K),
    COMPUTE(SI_TYPE_Q5_K, "Q5_K", SI_QK_K, sizeof(blk_q5_K), SI_TYPE_Q8_K, to_float_q5_K, vec_dot_q5_K_q8_K),
    COMPUTE(SI_TYPE_Q6_K, "Q6_K", SI_QK_K, sizeof(blk_q6_K), SI_TYPE_Q8_K, to_float_q6_K, vec_dot_q6_K_q8_K),
    /* activation-only: quantized into, never a weight the engine multiplies with */
    [SI_TYPE_Q8_K] = { .name = "Q8_K", .blck_size = SI_QK_K, .type_size = sizeof(blk_q8_K),
                       .vec_dot_type = SI_TYPE_Q8_K, .from_float = from_float_q8_K },
    /* fp16 d + 256/8 u16 grid indices */
    GEOM(SI_TYPE_IQ2_XXS, "IQ2_XXS", SI_QK_K, 2 + 64),
    /* ... + 8 scale bytes */
    GEOM(SI_TYPE_IQ2_XS, "IQ2_XS", SI_QK_K, 2 + 64 + 8),
    /* fp16 d + 3*256/8 */
    GEOM(SI_TYPE_IQ3_XXS, "IQ3_XXS", SI_QK_K, 2 + 96),
    /* fp16 d + 32 qs + 8 u16 qh */
    GEOM(SI_TYPE_IQ1_S, "IQ1_S", SI_QK_K, 2 + 32 + 16),
    /* fp16 d + 16 nibble bytes */
    GEOM(SI_TYPE_IQ4_NL, "IQ4_NL", 32, 2 + 16),
    /* fp16 d + 64 qs + 8 qh + 32 signs + 4 scales */
    GEOM(SI_TYPE_IQ3_S, "IQ3_S", SI_QK_K, 2 + 64 + 8 + 32 + 4),
    /* fp16 d + 64 qs + 8 qh + 8 scales */
    GEOM(SI_TYPE_IQ2_S, "IQ2_S", SI_QK_K, 2 + 64 + 8 + 8),
    /* fp16 d + u16 scales_h + 4 scales_l + 128 qs */
    GEOM(SI_TYPE_IQ4_XS, "IQ4_XS", SI_QK_K, 2 + 2 + 4 + 128),
    GEOM(SI_TYPE_I8, "I8", 1, 1),
    GEOM(SI_TYPE_I16, "I16", 1, 2),
    GEOM(SI_TYPE_I32, "I32", 1, 4),
    GEOM(SI_TYPE_I64, "I64", 1, 8),
    GEOM(SI_TYPE_F64, "F64", 1, 8),
    /* 32 qs + 16 qh + 8 scales (the fp16 scale is spread over the scales' top nibbles) */
    GEOM(SI_TYPE_IQ1_M, "IQ1_M", SI_QK_K, 32 + 16 + 8),
    GEOM(SI_TYPE_BF16, "BF16", 1, 2),
    /* (256 - 4*256/64)/5 base-3 bytes + 256/64 qh + fp16 d */
    GEOM(SI_TYPE_TQ1_0, "TQ1_0", SI_QK_K, 48 + 4 + 2),
    /* 256/4 qs + fp16 d */
    GEOM(SI_TYPE_TQ2_0, "TQ2_0", SI_QK_K, 64 + 2),
    /* e8m0 exponent byte + 16 fp4 nibble bytes */
    GEOM(SI_TYPE_MXFP4, "MXFP4", 32, 1 + 16),
};

const si_type_traits *si_type_get(uint32_t type)
{
    if (type >= SI_TYPE_COUNT || type_table[type].name == NULL)
        return NULL;
    return &type_table[type];
}

const char *si_type_name(uint32_t type)
{
    const si_type_traits *t = si_type_get(type);
    return t ? t->name : "unknown";
}

size_t si_row_size(uint32_t type, int64_t n)
{
    const si_type_traits *t = si_type_get(type);
    if (t == NULL || n < 0 || n % t->blck_size != 0)
        return 0;
    return (size_t)(n / t->blck_size) * t->type_size;
}
