/* The x86 AVX2 (+FMA, F16C) kernel set.
 *
 * Built into every x86-64 build with the target given per function (the pragmas below),
 * so the binary still runs on CPUs without AVX2: ops.c only hands this set out when
 * __builtin_cpu_supports says the CPU has avx2, fma and f16c.
 *
 * Matrix kernels take one weight row at a time, decode each block once and dot it with
 * the same block of every token of the step (up to TOK_CHUNK tokens per decode), so a
 * batch costs one decode per block plus a short integer loop per token (F16/F32: two
 * tokens per pass over the row, sharing each weight load and conversion); at one token
 * Q2_K, Q4_0 and Q8_0 have fused paths that keep everything in registers. Integer parts
 * are exact; where float sums are ordered differently from the reference it is said at
 * the kernel and in docs/BENCHMARKS.md.
 *
 * K-quants: a block decodes to one unsigned byte code per element (maddubs wants an
 * unsigned operand), a 16-bit scale per 16-element group and a 16-bit multiplier of the
 * Q8_K block's bsums per group for the part that does not depend on the element (the
 * min of Q2_K/Q4_K/Q5_K, the code bias of Q3_K/Q6_K). With
 *   isum = sum_g sc[g] * sum_{i in g} q[i] * a[i]      (exact in int32)
 *   summ = sum_g mn[g] * bsums[g]                      (exact in int32)
 * a block contributes
 *   Q3_K, Q6_K:        (d * ya.d) * (isum - summ)
 *   Q2_K, Q4_K, Q5_K:  (ya.d * d) * isum - (ya.d * dmin) * summ
 * which is the reference's integer arithmetic. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "streaminfer/kernels.h"
#include "blocks.h"
#include "simd_sets.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SI_HAVE_AVX2_SET 1

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#include <cpuid.h>
#include <immintrin.h>


/* Tokens dotted per decode of a block; a longer step decodes again per chunk. 64 float
 * vectors of partial sums (2 KiB) stay in L1. */
#define TOK_CHUNK 64

static inline float hsum_ps(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

/* Eight int32 vectors -> one vector whose lane j is the sum of the lanes of v[j]. */
static inline __m256i hsum8x8(const __m256i v[8])
{
    __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

static inline float fp16_1(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* ---- K-quants × Q8_K ----------------------------------------------------------------- */

/* A decoded block in register shape: 8 vectors of 32 unsigned codes, per 32 elements
 * one vector of 16-bit scales (low 128-bit half: group 2c, high half: group 2c+1,
 * matching how maddubs/madd keep the halves apart) and the 16 bsums multipliers. The
 * meaning is the one at the top of this file. */
typedef struct {
    __m256i q[8];
    __m256i scv[8];
    __m256i mnv;
    float d, dmin;
    int int_min;
} kvec;

/* pshufb masks: chunk c's scale bytes, zero-extended to 16 bits (kv_zx) or duplicated
 * into both bytes for an arithmetic shift (kv_dup), low half from group 2c, high half
 * from group 2c + 1; kv_zx_sb: one sub-block per chunk (Q4_K/Q5_K). */
static const int8_t kv_masks[3][8][32] __attribute__((aligned(32))) = {
#define Z(a, b) {a, -1, a, -1, a, -1, a, -1, a, -1, a, -1, a, -1, a, -1, b, -1, b, -1, b, -1, b, -1, b, -1, b, -1, b, -1, b, -1}
    {Z(0, 1), Z(2, 3), Z(4, 5), Z(6, 7), Z(8, 9), Z(10, 11), Z(12, 13), Z(14, 15)},
#undef Z
#define D(a, b) {a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b}
    {D(0, 1), D(2, 3), D(4, 5), D(6, 7), D(8, 9), D(10, 11), D(12, 13), D(14, 15)},
#undef D
#define S(a) {a, -1, a, -1, a, -1, a, -1, a, -1, a, -1, a, -1, a, -1, a, -1, a, -1, a, -1, a, -1, a, -1, a, -1, a, -1, a, -1}
    {S(0), S(1), S(2), S(3), S(4), S(5), S(6), S(7)},
#undef S
};

static inline __m256i kmask(int set, int c)
{
    return _mm256_load_si256((const __m256i *)kv_masks[set][c]);
}

static inline __m256i ld32(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* Shift 16-bit lanes left by s (right by -s) and keep the bits in m: moves one bit field
 * of every byte; bits crossing into the other byte of a lane are masked off for the
 * shifts used here (the field lands below or above the bits they reach). */
static inline __m256i shift_mask(__m256i x, int s, uint8_t m)
{
    __m256i y = s > 0 ? _mm256_slli_epi16(x, s) : s < 0 ? _mm256_srli_epi16(x, -s) : x;
    return _mm256_and_si256(y, _mm256_set1_epi8((char)m));
}

static inline void dec_q2_K(const uint8_t *p, kvec *k)
{
    const uint8_t *qs = p + offsetof(blk_q2_K, qs);
    __m128i sc8 = _mm_loadu_si128((const __m128i *)(p + offsetof(blk_q2_K, scales)));
    const __m128i m4 = _mm_set1_epi8(15);
    __m256i b = _mm256_broadcastsi128_si256(_mm_and_si128(sc8, m4));
    for (int h = 0; h < 2; h++) {
        __m256i x = ld32(qs + 32 * h);
        for (int j = 0; j < 4; j++)
            k->q[4 * h + j] = shift_mask(x, -2 * j, 3);
    }
    for (int c = 0; c < 8; c++)
        k->scv[c] = _mm256_shuffle_epi8(b, kmask(0, c));
    k->mnv = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
    k->d = fp16_1(p + offsetof(blk_q2_K, d));
    k->dmin = fp16_1(p + offsetof(blk_q2_K, dmin));
    k->int_min = 0;
}

static inline void dec_q3_K(const uint8_t *p, kvec *k)
{
    const uint8_t *qs = p + offsetof(blk_q3_K, qs);
    const __m256i hm = ld32(p + offsetof(blk_q3_K, hmask));
    for (int h = 0; h < 2; h++) {
        __m256i x = ld32(qs + 32 * h);
        for (int j = 0; j < 4; j++) {
            const int c = 4 * h + j;
            k->q[c] = _mm256_or_si256(shift_mask(x, -2 * j, 3), shift_mask(hm, 2 - c, 4));
        }
    }
    /* the 16 six-bit scales as bytes: low nibbles from bytes 0..7 (both nibbles), top
     * two bits from bytes 8..11, bit pair j/4 of byte 8 + j%4 (si_q3_K_scale) */
    uint64_t a;
    uint32_t hi;
    memcpy(&a, p + offsetof(blk_q3_K, scales), 8);
    memcpy(&hi, p + offsetof(blk_q3_K, scales) + 8, 4);
    const uint64_t m4 = 0x0F0F0F0F0F0F0F0Full, m2 = 0x03030303u;
    uint64_t h0 = (uint64_t)(hi & m2) | ((uint64_t)((hi >> 2) & m2) << 32);
    uint64_t h1 = (uint64_t)((hi >> 4) & m2) | ((uint64_t)((hi >> 6) & m2) << 32);
    __m128i sc8 = _mm_set_epi64x((long long)(((a >> 4) & m4) | (h1 << 4)), (long long)((a & m4) | (h0 << 4)));
    __m256i b = _mm256_broadcastsi128_si256(sc8);
    const __m256i bias = _mm256_set1_epi16(32);
    for (int c = 0; c < 8; c++)
        k->scv[c] = _mm256_sub_epi16(_mm256_shuffle_epi8(b, kmask(0, c)), bias);
    k->mnv = _mm256_slli_epi16(_mm256_sub_epi16(_mm256_cvtepu8_epi16(sc8), bias), 2);
    k->d = fp16_1(p + offsetof(blk_q3_K, d));
    k->dmin = k->d;
    k->int_min = 1;
}

static inline void dec_q45_K(const uint8_t *p, kvec *k, int has_qh)
{
    const uint8_t *qs = p + (has_qh ? offsetof(blk_q5_K, qs) : offsetof(blk_q4_K, qs));
    const __m256i m4 = _mm256_set1_epi8(15);
    for (int c2 = 0; c2 < 4; c2++) {
        __m256i x = ld32(qs + 32 * c2);
        k->q[2 * c2] = _mm256_and_si256(x, m4);
        k->q[2 * c2 + 1] = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
    }
    if (has_qh) {
        const __m256i qh = ld32(p + offsetof(blk_q5_K, qh));
        for (int c = 0; c < 8; c++)
            k->q[c] = _mm256_or_si256(k->q[c], shift_mask(qh, 4 - c, 16));
    }
    /* 6-bit scales and mins of the 8 sub-blocks (si_k4_scale_min), four at a time */
    uint32_t a, b, c;
    const uint8_t *sc = p + offsetof(blk_q4_K, scales);
    memcpy(&a, sc, 4);
    memcpy(&b, sc + 4, 4);
    memcpy(&c, sc + 8, 4);
    const uint32_t m6 = 0x3F3F3F3Fu, mlo = 0x0F0F0F0Fu, mtop = 0x30303030u;
    uint64_t scs = (uint64_t)(a & m6) | ((uint64_t)((c & mlo) | ((a >> 2) & mtop)) << 32);
    uint64_t mins = (uint64_t)(b & m6) | ((uint64_t)(((c >> 4) & mlo) | ((b >> 2) & mtop)) << 32);
    __m256i bs = _mm256_broadcastsi128_si256(_mm_cvtsi64_si128((long long)scs));
    for (int s = 0; s < 8; s++)
        k->scv[s] = _mm256_shuffle_epi8(bs, kmask(2, s));
    /* mins per 16-element group: each sub-block's min twice */
    __m128i m8 = _mm_shuffle_epi8(_mm_cvtsi64_si128((long long)mins),
                                  _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
    k->mnv = _mm256_cvtepu8_epi16(m8);
    k->d = fp16_1(p + offsetof(blk_q4_K, d));
    k->dmin = fp16_1(p + offsetof(blk_q4_K, dmin));
    k->int_min = 0;
}

static inline void dec_q6_K(const uint8_t *p, kvec *k)
{
    const uint8_t *ql = p + offsetof(blk_q6_K, ql), *qhp = p + offsetof(blk_q6_K, qh);
    const __m256i m4 = _mm256_set1_epi8(15);
    for (int h = 0; h < 2; h++) {
        __m256i l0 = ld32(ql + 64 * h), l1 = ld32(ql + 64 * h + 32), qh = ld32(qhp + 32 * h);
        k->q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), shift_mask(qh, 4, 0x30));
        k->q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), shift_mask(qh, 2, 0x30));
        k->q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), shift_mask(qh, 0, 0x30));
        k->q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), shift_mask(qh, -2, 0x30));
    }
    __m128i sc8 = _mm_loadu_si128((const __m128i *)(p + offsetof(blk_q6_K, scales)));
    __m256i b = _mm256_broadcastsi128_si256(sc8);
    for (int c = 0; c < 8; c++) /* signed: duplicate the byte, shift arithmetically */
        k->scv[c] = _mm256_srai_epi16(_mm256_shuffle_epi8(b, kmask(1, c)), 8);
    k->mnv = _mm256_slli_epi16(_mm256_cvtepi8_epi16(sc8), 5);
    k->d = fp16_1(p + offsetof(blk_q6_K, d));
    k->dmin = k->d;
    k->int_min = 1;
}

/* isum and summ (top of this file) for one Q8_K block at y. maddubs pairs never saturate: codes
 * are at most 63 and activation bytes at least -128, so |pair| <= 2 * 63 * 128. */
static inline void kdot_v(const kvec *v, const uint8_t *y, __m256i *iv, __m256i *mv)
{
    const uint8_t *yq = y + offsetof(blk_q8_K, qs);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
    for (int j = 0; j < 8; j += 2) {
        __m256i p0 = _mm256_maddubs_epi16(v->q[j], ld32(yq + 32 * j));
        __m256i p1 = _mm256_maddubs_epi16(v->q[j + 1], ld32(yq + 32 * j + 32));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, v->scv[j]));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(p1, v->scv[j + 1]));
    }
    *iv = _mm256_add_epi32(acc0, acc1);
    *mv = _mm256_madd_epi16(ld32(y + offsetof(blk_q8_K, bsums)), v->mnv);
}

/* kdot_v's vectors reduced to isum and summ */
static inline void kred(__m256i iv, __m256i mv, int32_t *isum, int32_t *summ)
{
    __m256i h = _mm256_hadd_epi32(iv, mv); /* i01 i23 m01 m23 | i45 i67 m45 m67 */
    __m128i x = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    x = _mm_hadd_epi32(x, x);
    *isum = _mm_cvtsi128_si32(x);
    *summ = _mm_extract_epi32(x, 1);
}

static inline void kdot(const kvec *v, const uint8_t *y, int32_t *isum, int32_t *summ)
{
    __m256i iv, mv;
    kdot_v(v, y, &iv, &mv);
    kred(iv, mv, isum, summ);
}

static inline float kcombine(const kvec *k, float yd, int32_t isum, int32_t summ)
{
    if (k->int_min)
        return (k->d * yd) * (float)(isum - summ);
    /* (yd * d) * isum - (yd * dmin) * summ with one rounding less (fmsub), spelled out so
     * that the compiler's contraction cannot make it differ between call sites; mat_dot_q2k_1
     * computes the same thing four blocks at a time */
    return __builtin_fmaf(yd * k->d, (float)isum, -((yd * k->dmin) * (float)summ));
}

/* kcombine of four blocks at once: v holds kdot_v's vectors of blocks 0..3 (iv, mv
 * alternating), dv their d and dmin (d, dmin, d, dmin, ...), yd the token's four scales.
 * Lane by lane the same operations as kcombine; the four terms are added to *acc block
 * by block. */
static inline void kcombine4(int int_min, const __m256i v[8], __m256 dv, const uint8_t *y, size_t ys, float *acc)
{
    const __m256i s = hsum8x8(v); /* isum0 summ0 isum1 summ1 | isum2 summ2 isum3 summ3 */
    float yd[4];
    for (int j = 0; j < 4; j++)
        memcpy(&yd[j], y + (size_t)j * ys, 4);
    const __m256 yv = _mm256_setr_ps(yd[0], yd[0], yd[1], yd[1], yd[2], yd[2], yd[3], yd[3]);
    const __m256 sc = _mm256_mul_ps(yv, dv); /* yd*d, yd*dmin */
    __m256 t;
    if (int_min) {
        t = _mm256_mul_ps(sc, _mm256_cvtepi32_ps(_mm256_sub_epi32(s, _mm256_srli_epi64(s, 32))));
    } else {
        const __m256 f = _mm256_cvtepi32_ps(s);
        t = _mm256_fmsub_ps(sc, f, _mm256_movehdup_ps(_mm256_mul_ps(sc, f)));
    }
    const __m128 t0 = _mm256_castps256_ps128(t), t1 = _mm256_extractf128_ps(t, 1);
    float a = *acc;
    a += _mm_cvtss_f32(t0);
    a += _mm_cvtss_f32(_mm_movehl_ps(t0, t0));
    a += _mm_cvtss_f32(t1);
    a += _mm_cvtss_f32(_mm_movehl_ps(t1, t1));
    *acc = a;
}

/* Q2_K × one token, fused: the codes are shifted out of the packed bytes and dotted as
 * they come, nothing stored. Four blocks at a time: their isum and summ (kdot's, exact)
 * land in one vector, the four kcombine terms are computed in its lanes with the same
 * operations (lane by lane the same roundings) and added to the row's sum block by block,
 * so a token's result is the same alone or in a batch. */
static inline void q2k_dot1(const uint8_t *p, const uint8_t *y, __m256i *iv, __m256i *mv)
{
    const uint8_t *qs = p + offsetof(blk_q2_K, qs), *yq = y + offsetof(blk_q8_K, qs);
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)(p + offsetof(blk_q2_K, scales)));
    const __m128i m4 = _mm_set1_epi8(15);
    const __m256i b = _mm256_broadcastsi128_si256(_mm_and_si128(sc8, m4));
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
    for (int h = 0; h < 2; h++) {
        const __m256i x = ld32(qs + 32 * h);
        const uint8_t *a = yq + 128 * h;
        __m256i p0 = _mm256_maddubs_epi16(_mm256_and_si256(x, m3), ld32(a));
        __m256i p1 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(x, 2), m3), ld32(a + 32));
        __m256i p2 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(x, 4), m3), ld32(a + 64));
        __m256i p3 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(x, 6), m3), ld32(a + 96));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, _mm256_shuffle_epi8(b, kmask(0, 4 * h))));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(p1, _mm256_shuffle_epi8(b, kmask(0, 4 * h + 1))));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p2, _mm256_shuffle_epi8(b, kmask(0, 4 * h + 2))));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(p3, _mm256_shuffle_epi8(b, kmask(0, 4 * h + 3))));
    }
    const __m256i mnv = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
    *iv = _mm256_add_epi32(acc0, acc1);
    *mv = _mm256_madd_epi16(ld32(y + offsetof(blk_q8_K, bsums)), mnv);
}

static void mat_dot_q2k_1(int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act, float *out)
{
    const int64_t nb = n / SI_QK_K, nb4 = nb & ~(int64_t)3;
    const size_t bs = sizeof(blk_q2_K), ys = sizeof(blk_q8_K);
    const uint8_t *y0 = act;
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        float acc = 0.0f;
        int64_t i = 0;
        for (; i < nb4; i += 4) {
            const uint8_t *b = row + (size_t)i * bs, *y = y0 + (size_t)i * ys;
            __m256i v[8];
            for (int j = 0; j < 4; j++)
                q2k_dot1(b + j * bs, y + j * ys, &v[2 * j], &v[2 * j + 1]);
            uint32_t dd[4];
            for (int j = 0; j < 4; j++)
                memcpy(&dd[j], b + j * bs + offsetof(blk_q2_K, d), 4); /* d, dmin */
            const __m256 dv = _mm256_cvtph_ps(_mm_setr_epi32((int)dd[0], (int)dd[1], (int)dd[2], (int)dd[3]));
            kcombine4(0, v, dv, y, ys, &acc);
        }
        for (; i < nb; i++) {
            const uint8_t *b = row + (size_t)i * bs, *y = y0 + (size_t)i * ys;
            kvec k;
            __m256i iv, mv;
            float yd;
            q2k_dot1(b, y, &iv, &mv);
            int32_t isum, summ;
            kred(iv, mv, &isum, &summ);
            memcpy(&yd, y, 4);
            k.d = fp16_1(b + offsetof(blk_q2_K, d));
            k.dmin = fp16_1(b + offsetof(blk_q2_K, dmin));
            k.int_min = 0;
            acc += kcombine(&k, yd, isum, summ);
        }
        out[r] = acc;
    }
}

/* Float order: per token, block contributions (top of this file) added block by block;
 * the reference keeps eight lane sums for Q3_K..Q6_K instead. Q2_K adds in the
 * reference's order, each term with one rounding less (kcombine's fma). */
static void mat_dot_kq(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                       size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    if (n_tok == 1 && type == SI_TYPE_Q2_K) {
        mat_dot_q2k_1(n, w, row_bytes, n_rows, act, out);
        return;
    }
    const size_t bsz = si_type_get(type)->type_size, ys = sizeof(blk_q8_K);
    const int64_t nb = n / SI_QK_K;
    kvec k;
    float acc[TOK_CHUNK];
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int64_t t0 = 0; t0 < n_tok; t0 += TOK_CHUNK) {
            const int64_t nt = n_tok - t0 < TOK_CHUNK ? n_tok - t0 : TOK_CHUNK;
            for (int64_t t = 0; t < nt; t++)
                acc[t] = 0.0f;
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *b = row + (size_t)i * bsz;
                switch (type) {
                case SI_TYPE_Q2_K: dec_q2_K(b, &k); break;
                case SI_TYPE_Q3_K: dec_q3_K(b, &k); break;
                case SI_TYPE_Q4_K: dec_q45_K(b, &k, 0); break;
                case SI_TYPE_Q5_K: dec_q45_K(b, &k, 1); break;
                default: dec_q6_K(b, &k); break;
                }
                const uint8_t *y = (const uint8_t *)act + (size_t)t0 * act_stride + (size_t)i * ys;
                for (int64_t t = 0; t < nt; t++, y += act_stride) {
                    int32_t isum, summ;
                    float yd;
                    memcpy(&yd, y, sizeof yd);
                    kdot(&k, y, &isum, &summ);
                    acc[t] += kcombine(&k, yd, isum, summ);
                }
            }
            for (int64_t t = 0; t < nt; t++)
                out[(size_t)(t0 + t) * out_stride + (size_t)r] = acc[t];
        }
    }
}

/* ---- Q8_0 / Q4_0 × Q8_0 -------------------------------------------------------------- */

/* Blocks go eight at a time: each block's integer dot (exact) ends up in one int32 lane
 * (block j of the group in lane j), the group's scales in one float vector, and each token
 * keeps eight float lane sums, lane j adding the terms of blocks 8g + j:
 *   Q8_0: lane += (float)isum * (dw * da)        (fma; the reference rounds the product)
 *   Q4_0: lane += ((float)isum * dw) * da        (fma on the last step)
 * added up at the end (hsum_ps). Each term is the reference's; the order of the sums is
 * not (the reference adds block by block). A short last group has zero isums and scales
 * in its missing lanes. One token's arithmetic is the same alone or in a batch.
 *
 * Integer parts:
 * - Q4_0: maddubs of the unsigned codes 0..15 with the activation bytes (pairs at most
 *   2 * 15 * 128) minus maddubs of 8 with them (8 * (a + a')): exact for every byte,
 *   -128 included.
 * - Q8_0: maddubs(|w|, sign(a, w)) is exact when no activation byte is -128 (-(-128)
 *   does not fit a byte; otherwise pairs are at most 2 * 128 * 127 < 2^15). Quantized
 *   activations never hold -128 (codes are rounded within +-127), so that is the fast
 *   path; a token whose activations do hold one takes 16-bit madd instead (exact for
 *   every byte), checked once per call and token. */

#define Q80_G 8

/* The fp16 at p, p + stride, ... (cnt of them, the rest zero) as floats. */
static inline __m256 fp16_8(const uint8_t *p, size_t stride, int cnt)
{
    if (cnt == Q80_G) {
        uint16_t h[8];
        for (int j = 0; j < 8; j++)
            memcpy(&h[j], p + (size_t)j * stride, 2);
        return _mm256_cvtph_ps(_mm_setr_epi16((short)h[0], (short)h[1], (short)h[2], (short)h[3], (short)h[4],
                                              (short)h[5], (short)h[6], (short)h[7]));
    }
    uint16_t h[8] = {0};
    for (int j = 0; j < cnt; j++)
        memcpy(&h[j], p + (size_t)j * stride, 2);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

/* Q4_0 codes 0..15 of the block at b in element order (low nibbles 0..15, high 16..31). */
static inline __m256i q40_codes(const uint8_t *b)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(b + 2));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), _mm256_set1_epi8(15));
}

static inline __m256i q40_dot(__m256i codes, __m256i a)
{
    __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(codes, a), _mm256_maddubs_epi16(_mm256_set1_epi8(8), a));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static inline __m256i q80_dot(__m256i w, __m256i a)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w)), _mm256_set1_epi16(1));
}

/* exact for every byte, -128 included */
static inline __m256i q80_dot16(const uint8_t *w, const uint8_t *a)
{
    __m256i lo = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w)),
                                   _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)a)));
    __m256i hi = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16))),
                                   _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + 16))));
    return _mm256_add_epi32(lo, hi);
}

/* does this token's Q8_0 row hold a -128 code? */
static inline int q80_has_min(const uint8_t *y, int64_t nb)
{
    const __m256i m = _mm256_set1_epi8(-128);
    __m256i any = _mm256_setzero_si256();
    for (int64_t i = 0; i < nb; i++)
        any = _mm256_or_si256(any, _mm256_cmpeq_epi8(ld32(y + (size_t)i * sizeof(blk_q8_0) + 2), m));
    return !_mm256_testz_si256(any, any);
}

/* One group's term added to a token's lanes (top of this section). */
static inline __m256 q80_acc(int q4, __m256i isum, __m256 dw, __m256 da, __m256 acc)
{
    __m256 f = _mm256_cvtepi32_ps(isum);
    return q4 ? _mm256_fmadd_ps(_mm256_mul_ps(f, dw), da, acc) : _mm256_fmadd_ps(f, _mm256_mul_ps(dw, da), acc);
}

/* One group of cnt blocks (8 in the main loop) of one row against one token: block j's
 * integer dot in lane j. mode 0: Q8_0 sign trick, 1: Q8_0 16-bit madd, 2: Q4_0. The
 * weights come decoded in wa (|w| or Q4_0 codes) and ws (Q8_0 w, for the sign). */
#define SI_AI static inline __attribute__((always_inline))
SI_AI __m256i q80_group(int mode, const __m256i *wa, const __m256i *ws, const uint8_t *b, size_t bsz, const uint8_t *a,
                        int cnt)
{
    const size_t ysz = sizeof(blk_q8_0);
    __m256i v[8];
    for (int j = 0; j < 8; j++) {
        if (j >= cnt)
            v[j] = _mm256_setzero_si256();
        else if (mode == 2)
            v[j] = q40_dot(wa[j], ld32(a + j * ysz + 2));
        else if (mode == 0)
            v[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(wa[j], _mm256_sign_epi8(ld32(a + j * ysz + 2), ws[j])),
                                     _mm256_set1_epi16(1));
        else
            v[j] = q80_dot16(b + j * bsz + 2, a + j * ysz + 2);
    }
    return hsum8x8(v);
}

SI_AI void q80_decode(int q4, const uint8_t *b, size_t bsz, int cnt, __m256i *wa, __m256i *ws)
{
    for (int j = 0; j < cnt; j++) {
        if (q4) {
            wa[j] = q40_codes(b + j * bsz);
        } else {
            ws[j] = ld32(b + j * bsz + 2);
            wa[j] = _mm256_abs_epi8(ws[j]);
        }
    }
}

/* One row against one token: everything in registers, weights used as loaded. */
SI_AI __m256i q80_group1(int mode, const uint8_t *b, size_t bsz, const uint8_t *a, int cnt)
{
    const size_t ysz = sizeof(blk_q8_0);
    __m256i v[8];
    for (int j = 0; j < 8; j++) {
        if (j >= cnt)
            v[j] = _mm256_setzero_si256();
        else if (mode == 2)
            v[j] = q40_dot(q40_codes(b + j * bsz), ld32(a + j * ysz + 2));
        else if (mode == 0)
            v[j] = q80_dot(ld32(b + j * bsz + 2), ld32(a + j * ysz + 2));
        else
            v[j] = q80_dot16(b + j * bsz + 2, a + j * ysz + 2);
    }
    return hsum8x8(v);
}

SI_AI float q80_row1(int mode, const uint8_t *row, const uint8_t *y, int64_t nb)
{
    const int q4 = mode == 2;
    const size_t bsz = q4 ? sizeof(blk_q4_0) : sizeof(blk_q8_0), ysz = sizeof(blk_q8_0);
    const int64_t nbg = nb & ~(int64_t)(Q80_G - 1);
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i < nbg; i += Q80_G) {
        const uint8_t *b = row + (size_t)i * bsz, *a = y + (size_t)i * ysz;
        acc = q80_acc(q4, q80_group1(mode, b, bsz, a, 8), fp16_8(b, bsz, 8), fp16_8(a, ysz, 8), acc);
    }
    if (i < nb) {
        const int cnt = (int)(nb - i);
        const uint8_t *b = row + (size_t)i * bsz, *a = y + (size_t)i * ysz;
        acc = q80_acc(q4, q80_group1(mode, b, bsz, a, cnt), fp16_8(b, bsz, cnt), fp16_8(a, ysz, cnt), acc);
    }
    return hsum_ps(acc);
}

/* Several tokens: each group of blocks decoded once for all of them. */
SI_AI void q80_batch(int q4, int64_t nb, const uint8_t *row, const uint8_t *y0, size_t act_stride, int64_t nt,
                     const uint8_t *slow, __m256 *accv)
{
    const size_t bsz = q4 ? sizeof(blk_q4_0) : sizeof(blk_q8_0), ysz = sizeof(blk_q8_0);
    __m256i wa[Q80_G], ws[Q80_G];
    for (int64_t t = 0; t < nt; t++)
        accv[t] = _mm256_setzero_ps();
    const int64_t nbg = nb & ~(int64_t)(Q80_G - 1);
    int64_t i = 0;
    for (; i < nbg; i += Q80_G) {
        const uint8_t *b = row + (size_t)i * bsz;
        const __m256 dw = fp16_8(b, bsz, 8);
        q80_decode(q4, b, bsz, 8, wa, ws);
        const uint8_t *a = y0 + (size_t)i * ysz;
        for (int64_t t = 0; t < nt; t++, a += act_stride) {
            __m256i iv;
            if (q4)
                iv = q80_group(2, wa, ws, b, bsz, a, 8);
            else if (!slow[t])
                iv = q80_group(0, wa, ws, b, bsz, a, 8);
            else
                iv = q80_group(1, wa, ws, b, bsz, a, 8);
            accv[t] = q80_acc(q4, iv, dw, fp16_8(a, ysz, 8), accv[t]);
        }
    }
    if (i < nb) {
        const int cnt = (int)(nb - i);
        const uint8_t *b = row + (size_t)i * bsz;
        const __m256 dw = fp16_8(b, bsz, cnt);
        q80_decode(q4, b, bsz, cnt, wa, ws);
        const uint8_t *a = y0 + (size_t)i * ysz;
        for (int64_t t = 0; t < nt; t++, a += act_stride) {
            const int mode = q4 ? 2 : slow[t] ? 1 : 0;
            accv[t] = q80_acc(q4, q80_group(mode, wa, ws, b, bsz, a, cnt), dw, fp16_8(a, ysz, cnt), accv[t]);
        }
    }
}

static void mat_dot_q80(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                        size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    const int64_t nb = n / SI_QK8_0;
    const int q4 = type == SI_TYPE_Q4_0;
    if (n_tok == 1) {
        const uint8_t *y = act;
        const int mode = q4 ? 2 : q80_has_min(y, nb) ? 1 : 0;
        for (int64_t r = 0; r < n_rows; r++) {
            const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
            out[r] = mode == 2 ? q80_row1(2, row, y, nb) : mode == 0 ? q80_row1(0, row, y, nb) : q80_row1(1, row, y, nb);
        }
        return;
    }
    __m256 accv[TOK_CHUNK];
    uint8_t slow[TOK_CHUNK];
    for (int64_t t0 = 0; t0 < n_tok; t0 += TOK_CHUNK) {
        const int64_t nt = n_tok - t0 < TOK_CHUNK ? n_tok - t0 : TOK_CHUNK;
        const uint8_t *y0 = (const uint8_t *)act + (size_t)t0 * act_stride;
        for (int64_t t = 0; t < nt; t++)
            slow[t] = !q4 && q80_has_min(y0 + (size_t)t * act_stride, nb);
        for (int64_t r = 0; r < n_rows; r++) {
            const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
            if (q4)
                q80_batch(1, nb, row, y0, act_stride, nt, slow, accv);
            else
                q80_batch(0, nb, row, y0, act_stride, nt, slow, accv);
            for (int64_t t = 0; t < nt; t++)
                out[(size_t)(t0 + t) * out_stride + (size_t)r] = hsum_ps(accv[t]);
        }
    }
}

/* ---- F32 / F16 ----------------------------------------------------------------------- */

/* Float sums in eight lanes with FMA (the reference sums float products in double):
 * relative error around n * 2^-24 of sum |w * a|. */
static inline __m256 load8(const uint8_t *p, int f16)
{
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)) : _mm256_loadu_ps((const float *)p);
}

static inline float load1(const uint8_t *p, int f16)
{
    if (f16)
        return fp16_1(p);
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* One row against NT (1 or 2) tokens: four sums per token (the FMA latency is hidden
 * even at one token), each token's arithmetic the same whatever NT, so a token's result
 * does not depend on the batch it came in. Two tokens share each weight load and F16
 * conversion; the accumulators stay in registers. */
SI_AI void float_dot(int NT, int f16, const uint8_t *row, const uint8_t *a0, size_t act_stride, int64_t n, float *res)
{
    const size_t es = f16 ? 2 : 4;
    const int64_t n32 = n & ~(int64_t)31, n8 = n & ~(int64_t)7;
    __m256 s[2][4];
    for (int t = 0; t < NT; t++)
        s[t][0] = s[t][1] = s[t][2] = s[t][3] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i < n32; i += 32)
        for (int k = 0; k < 4; k++) {
            const __m256 wv = load8(row + (i + 8 * k) * es, f16);
            for (int t = 0; t < NT; t++)
                s[t][k] = _mm256_fmadd_ps(wv, load8(a0 + (size_t)t * act_stride + (i + 8 * k) * es, f16), s[t][k]);
        }
    for (; i < n8; i += 8) {
        const __m256 wv = load8(row + i * es, f16);
        for (int t = 0; t < NT; t++)
            s[t][0] = _mm256_fmadd_ps(wv, load8(a0 + (size_t)t * act_stride + i * es, f16), s[t][0]);
    }
    for (int t = 0; t < NT; t++) {
        float r = hsum_ps(_mm256_add_ps(_mm256_add_ps(s[t][0], s[t][1]), _mm256_add_ps(s[t][2], s[t][3])));
        const uint8_t *a = a0 + (size_t)t * act_stride;
        for (int64_t j = i; j < n; j++)
            r += load1(row + j * es, f16) * load1(a + j * es, f16);
        res[t] = r;
    }
}

static void mat_dot_float(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                          size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    const int f16 = type == SI_TYPE_F16;
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int64_t t = 0; t < n_tok; t += 2) { /* two tokens per pass, a last odd one alone */
            float res[2];
            const uint8_t *a0 = (const uint8_t *)act + (size_t)t * act_stride;
            const int two = t + 1 < n_tok;
            if (two) /* constant arguments: float_dot specializes on them */
                f16 ? float_dot(2, 1, row, a0, act_stride, n, res) : float_dot(2, 0, row, a0, act_stride, n, res);
            else
                f16 ? float_dot(1, 1, row, a0, act_stride, n, res) : float_dot(1, 0, row, a0, act_stride, n, res);
            out[(size_t)t * out_stride + (size_t)r] = res[0];
            if (two)
                out[(size_t)(t + 1) * out_stride + (size_t)r] = res[1];
        }
    }
}

/* ---- activation quantizers (bit-exact with the reference for finite input) ----------- */

static inline float hmax_ps(__m256 v)
{
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

/* roundf (halves away from zero) for |v| < 2^23, without relying on a rounding mode:
 * truncate the magnitude, add one where the dropped fraction is at least one half
 * (the fraction is exact), put the sign back. */
static inline __m256i round_away(__m256 v)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 a = _mm256_andnot_ps(sign, v);
    __m256 t = _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 up = _mm256_and_ps(_mm256_cmp_ps(_mm256_sub_ps(a, t), _mm256_set1_ps(0.5f), _CMP_GE_OQ),
                              _mm256_set1_ps(1.0f));
    return _mm256_cvttps_epi32(_mm256_or_ps(_mm256_add_ps(t, up), _mm256_and_ps(sign, v)));
}

/* 32 int32 in four vectors -> 32 int8 in element order (packs interleaves 128-bit halves) */
static inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i x = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    return _mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static void quantize_q8_0(const float *src, void *dst, int64_t n)
{
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (int64_t i = 0; i < n / SI_QK8_0; i++) {
        const float *x = src + i * SI_QK8_0;
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absm), _mm256_and_ps(v1, absm)),
                                 _mm256_max_ps(_mm256_and_ps(v2, absm), _mm256_and_ps(v3, absm)));
        const float amax = hmax_ps(m);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const __m256 idv = _mm256_set1_ps(id);
        blk_q8_0 b;
        b.d = si_fp32_to_fp16(d);
        __m256i q = pack32(round_away(_mm256_mul_ps(v0, idv)), round_away(_mm256_mul_ps(v1, idv)),
                           round_away(_mm256_mul_ps(v2, idv)), round_away(_mm256_mul_ps(v3, idv)));
        _mm256_storeu_si256((__m256i *)b.qs, q);
        si_blk_store(dst, i, &b);
    }
}

static void quantize_q8_K(const float *src, void *dst, int64_t n)
{
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (int64_t i = 0; i < n / SI_QK_K; i++) {
        const float *x = src + i * SI_QK_K;
        blk_q8_K b;
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < SI_QK_K; j += 8)
            m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + j), absm));
        const float amax = hmax_ps(m);
        if (amax == 0.0f) {
            memset(&b, 0, sizeof b);
            si_blk_store(dst, i, &b);
            continue;
        }
        /* the reference takes the first element of largest magnitude, with its sign */
        const __m256 am = _mm256_set1_ps(amax);
        float max = amax;
        for (int j = 0; j < SI_QK_K; j += 8) {
            int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), absm), am, _CMP_EQ_OQ));
            if (mask) {
                max = x[j + __builtin_ctz((unsigned)mask)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m256 isv = _mm256_set1_ps(iscale);
        const __m256i lim = _mm256_set1_epi32(127);
        /* cvtps rounds to nearest even under the default MXCSR, as nearest_int does */
        for (int j = 0; j < SI_QK_K; j += 32) {
            __m256i q0 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(isv, _mm256_loadu_ps(x + j))), lim);
            __m256i q1 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(isv, _mm256_loadu_ps(x + j + 8))), lim);
            __m256i q2 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(isv, _mm256_loadu_ps(x + j + 16))), lim);
            __m256i q3 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(isv, _mm256_loadu_ps(x + j + 24))), lim);
            __m256i s01 = _mm256_add_epi32(q0, q1), s23 = _mm256_add_epi32(q2, q3);
            /* bsums of the two 16-element groups */
            __m256i h = _mm256_hadd_epi32(s01, s23);
            __m128i hs = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            hs = _mm_hadd_epi32(hs, hs);
            b.bsums[j / 16] = (int16_t)_mm_cvtsi128_si32(hs);
            b.bsums[j / 16 + 1] = (int16_t)_mm_extract_epi32(hs, 1);
            _mm256_storeu_si256((__m256i *)(b.qs + j), pack32(q0, q1, q2, q3));
        }
        b.d = 1.0f / iscale;
        si_blk_store(dst, i, &b);
    }
}

static void quantize_f16(const float *src, void *dst, int64_t n)
{
    uint8_t *d = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + 2 * i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) {
        uint16_t h = si_fp32_to_fp16(src[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}

/* ---- ops ----------------------------------------------------------------------------- */

/* Sum of squares in double as the reference, in four lanes: the scale matches the
 * reference's to the last bit in all but rare ties of the final float rounding. */
static void rmsnorm_avx2(float *out, const float *x, const float *w, int64_t n, float eps)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        s0 = _mm256_fmadd_pd(a, a, s0);
        s1 = _mm256_fmadd_pd(b, b, s1);
    }
    s0 = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s0), _mm256_extractf128_pd(s0, 1));
    double ss = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; i++)
        ss += (double)x[i] * x[i];
    const float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    const __m256 sv = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), sv), _mm256_loadu_ps(w + i)));
    for (; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

/* exp(x) lane by lane, as the rvv set's exp_f32 (rvv/rvv_ops.c): x = k ln2 + r (k rounded to nearest-even by
 * cvtps, ln2 in two parts), exp(r) by its degree-6 Taylor polynomial, 2^k as two exact
 * powers of two (subnormal results and overflow to inf right), x clamped to [-104, 89],
 * NaN kept. */
static inline __m256 exp8(__m256 x)
{
    static const float poly[] = {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
    const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(89.0f));
    const __m256i k = _mm256_cvtps_epi32(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)));
    const __m256 kf = _mm256_cvtepi32_ps(k);
    __m256 r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(0.693145751953125f), xc);
    r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(1.42860682030941723212e-6f), r);
    __m256 p = _mm256_set1_ps(poly[0]);
    for (int j = 1; j < 7; j++)
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(poly[j]));
    const __m256i k1 = _mm256_srai_epi32(k, 1), k2 = _mm256_sub_epi32(k, k1), bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
    p = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    return _mm256_blendv_ps(p, x, nan);
}

/* g = g / (1 + exp(-g)) * u, the reference's operations with exp8 for expf */
static void silu_mul_avx2(float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 d = _mm256_add_ps(exp8(_mm256_sub_ps(_mm256_setzero_ps(), x)), _mm256_set1_ps(1.0f));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(x, d), _mm256_loadu_ps(u + i)));
    }
    if (i < n) { /* the tail through a padded copy, so that it gets the same exp */
        float gt[8] = {0}, ut[8] = {0};
        memcpy(gt, g + i, (size_t)(n - i) * sizeof(float));
        memcpy(ut, u + i, (size_t)(n - i) * sizeof(float));
        silu_mul_avx2(gt, ut, 8);
        memcpy(g + i, gt, (size_t)(n - i) * sizeof(float));
    }
}

/* Four pairs at a time: y = x * (c0 c0 c1 c1 ..) + swap(x) * (-s0 s0 -s1 s1 ..), i.e. the
 * reference's x0 c - x1 s and x1 c + x0 s with a separate multiply and add (exact);
 * angles computed once for all heads, a last odd pair by the reference's expression. */
static void rope_avx2(float *v, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *inv_freq, uint32_t pos)
{
    float c[SI_ROPE_MAX_PAIRS], s[SI_ROPE_MAX_PAIRS], cc[2 * SI_ROPE_MAX_PAIRS], ss[2 * SI_ROPE_MAX_PAIRS];
    const uint32_t np = si_rope_begin(v, n_heads, head_dim, n_rot, inv_freq, pos, c, s);
    for (uint32_t i = 0; i < np; i++) {
        cc[2 * i] = cc[2 * i + 1] = c[i];
        ss[2 * i] = -s[i];
        ss[2 * i + 1] = s[i];
    }
    for (uint32_t h = 0; h < n_heads; h++) {
        float *p = v + (size_t)h * head_dim;
        uint32_t i = 0;
        for (; i + 4 <= np; i += 4) {
            const __m256 x = _mm256_loadu_ps(p + 2 * i);
            const __m256 y = _mm256_add_ps(_mm256_mul_ps(x, _mm256_loadu_ps(cc + 2 * i)),
                                           _mm256_mul_ps(_mm256_permute_ps(x, 0xB1), _mm256_loadu_ps(ss + 2 * i)));
            _mm256_storeu_ps(p + 2 * i, y);
        }
        for (; i < np; i++)
            si_rope_pair(p + 2 * i, c[i], s[i]);
    }
}

/* The first n (< 8) lanes of a mask */
static inline __m256i lanes_mask(uint32_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Up to four heads' scores, eight positions per vector: one load of K's transposed row
 * serves every head (FMA by the query's element broadcast), no horizontal sums. A lane
 * sums its position's products in order with fused multiply-adds whatever nh is
 * (tolerance against the reference's unfused sum); the last positions masked. */
static inline __attribute__((always_inline)) void scores4_avx2(float *sc, uint32_t n_pos, const float *q, uint32_t hd,
                                                               int nh, const float *kt, size_t kt_stride, float scale)
{
    for (uint32_t t = 0; t < n_pos; t += 8) {
        const bool part = n_pos - t < 8;
        const __m256i m = lanes_mask(n_pos - t);
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        const float *kp = kt + t;
        for (uint32_t i = 0; i < hd; i++, kp += kt_stride) {
            const __m256 k = part ? _mm256_maskload_ps(kp, m) : _mm256_loadu_ps(kp);
            for (int h = 0; h < nh; h++)
                a[h] = _mm256_fmadd_ps(_mm256_set1_ps(q[(size_t)h * hd + i]), k, a[h]);
        }
        for (int h = 0; h < nh; h++) {
            const __m256 r = _mm256_mul_ps(a[h], _mm256_set1_ps(scale));
            if (part)
                _mm256_maskstore_ps(sc + (size_t)h * n_pos + t, m, r);
            else
                _mm256_storeu_ps(sc + (size_t)h * n_pos + t, r);
        }
    }
}

/* Positions per tile of the value sums (their rows stay in the cache meanwhile) */
#define SI_AVX2_ATTEND_TILE 64

/* Up to four heads' outputs, eight elements per vector: one load of a value row serves
 * every head, the sums stay in registers over a tile of positions. out = out + p_t * v_t
 * position by position with a separate multiply and add: the reference's arithmetic. */
static inline __attribute__((always_inline)) void values4_avx2(float *out, const float *p, uint32_t n_pos, uint32_t hd,
                                                               int nh, const float *v)
{
    memset(out, 0, (size_t)nh * hd * sizeof(float));
    for (uint32_t t0 = 0; t0 < n_pos; t0 += SI_AVX2_ATTEND_TILE) {
        const uint32_t t1 = n_pos - t0 < SI_AVX2_ATTEND_TILE ? n_pos : t0 + SI_AVX2_ATTEND_TILE;
        for (uint32_t i = 0; i < hd; i += 8) {
            const bool part = hd - i < 8;
            const __m256i m = lanes_mask(hd - i);
            __m256 a[4];
            for (int h = 0; h < nh; h++)
                a[h] = part ? _mm256_maskload_ps(out + (size_t)h * hd + i, m) : _mm256_loadu_ps(out + (size_t)h * hd + i);
            for (uint32_t t = t0; t < t1; t++) {
                const float *vp = v + (size_t)t * hd + i;
                const __m256 x = part ? _mm256_maskload_ps(vp, m) : _mm256_loadu_ps(vp);
                for (int h = 0; h < nh; h++)
                    a[h] = _mm256_add_ps(a[h], _mm256_mul_ps(x, _mm256_set1_ps(p[(size_t)h * n_pos + t])));
            }
            for (int h = 0; h < nh; h++) {
                if (part)
                    _mm256_maskstore_ps(out + (size_t)h * hd + i, m, a[h]);
                else
                    _mm256_storeu_ps(out + (size_t)h * hd + i, a[h]);
            }
        }
    }
}

/* Four heads at a time, then the rest together. Softmax as the reference. */
static void attend_avx2(float *out, const float *q, uint32_t nh, const float *kt, size_t kt_stride, const float *v,
                        uint32_t n_pos, uint32_t hd, float scale, float *scores)
{
    SI_ATTEND_BY4(scores4_avx2, si_softmax_rows, values4_avx2);
}

/* F16 by F16C (exact), eight at a time (load8, load1: the F16/F32 kernel's loads); a
 * strided destination (K transposed) element by element. */
static void kv_widen_avx2(float *dst, size_t dst_stride, const void *src, bool f16, uint32_t n)
{
    const uint8_t *p = src;
    const size_t esz = f16 ? 2 : 4;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = load8(p + i * esz, f16);
        if (dst_stride == 1) {
            _mm256_storeu_ps(dst + i, x);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, x);
            for (int j = 0; j < 8; j++)
                dst[(size_t)(i + j) * dst_stride] = tmp[j];
        }
    }
    for (; i < n; i++)
        dst[(size_t)i * dst_stride] = load1(p + i * esz, f16);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

static si_kernels avx2_set;
static int avx2_ok; /* the CPU has AVX2, FMA and F16C, and avx2_set is filled */
static pthread_once_t avx2_once = PTHREAD_ONCE_INIT;

static void avx2_init(void)
{
    __builtin_cpu_init();
    /* f16c through cpuid: older clang's __builtin_cpu_supports does not know it (the
     * OS's YMM support is part of what the avx2 check verifies) */
    unsigned a, b, c, d;
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !f16c)
        return;
    static const si_simd_entries e = {.name = "avx2", .mat_dot_kquant = mat_dot_kq,
                                      .mat_dot_q8_0_family = mat_dot_q80, .mat_dot_float = mat_dot_float,
                                      .quantize_q8_0 = quantize_q8_0, .quantize_q8_K = quantize_q8_K,
                                      .quantize_f16 = quantize_f16, .rmsnorm = rmsnorm_avx2,
                                      .silu_mul = silu_mul_avx2, .rope = rope_avx2, .attend = attend_avx2,
                                      .kv_widen = kv_widen_avx2};
    si_kernels_fill(&avx2_set, &e);
    avx2_ok = 1;
}

/* Checked and filled once per process, whichever threads ask first. */
const si_kernels *si_kernels_avx2(void)
{
    pthread_once(&avx2_once, avx2_init);
    return avx2_ok ? &avx2_set : NULL;
}

#else

const si_kernels *si_kernels_avx2(void)
{
    return NULL;
}

#endif
