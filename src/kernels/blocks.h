/* Block layouts of the quantized GGUF tensor types (private to the engine).
 *
 * These are byte-for-byte ggml's layouts (ggml-common.h), so a GGUF tensor's data is an
 * array of these. fp16 fields are raw IEEE half bits (uint16_t); all multi-byte fields
 * are little-endian, as GGUF is. Weight rows inside a mapped or streamed file need not be
 * aligned to the struct's alignment, so kernels copy a block out with memcpy
 * (si_blk_load) rather than dereferencing a cast pointer.
 *
 * Only the types the engine computes with (plus their activation types and the simple
 * legacy ones) get a struct; the geometry of the rest lives in the type table in ref.c. */
#ifndef SI_KERNELS_BLOCKS_H
#define SI_KERNELS_BLOCKS_H

#include <stdint.h>
#include <string.h>

#include "streaminfer/types.h"

#define SI_QK4_0 32
#define SI_QK4_1 32
#define SI_QK5_0 32
#define SI_QK5_1 32
#define SI_QK8_1 32
#define SI_K_SCALE_SIZE 12 /* 8 six-bit scales + 8 six-bit mins of Q4_K/Q5_K */

/* --- 32-element blocks -------------------------------------------------------------- */

/* w = d * (q - 8), q in 0..15; element j in low nibble of qs[j], j+16 in the high one */
typedef struct { uint16_t d; uint8_t qs[SI_QK4_0 / 2]; } blk_q4_0;
/* w = d * q + m */
typedef struct { uint16_t d, m; uint8_t qs[SI_QK4_1 / 2]; } blk_q4_1;
/* 5th bit of element j is bit j of qh (little-endian u32) */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[SI_QK5_0 / 2]; } blk_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[SI_QK5_1 / 2]; } blk_q5_1;
/* w = d * q; also the activation type of Q4_0/Q8_0 */
typedef struct { uint16_t d; int8_t qs[SI_QK8_0]; } blk_q8_0;
/* s = d * sum(qs) */
typedef struct { uint16_t d, s; int8_t qs[SI_QK8_1]; } blk_q8_1;

/* --- 256-element super-blocks (K-quants) --------------------------------------------- */

/* 16 sub-blocks of 16: scales[i] low nibble = scale, high nibble = min;
 * w = d * sc * q - dmin * m, q (2 bits) at bit 2*((i/32)%4) of qs[32*(i/128) + i%32] */
typedef struct {
    uint8_t scales[SI_QK_K / 16];
    uint8_t qs[SI_QK_K / 4];
    uint16_t d, dmin;
} blk_q2_K;

/* 16 sub-blocks of 16, 6-bit scales packed in 12 bytes (see si_q3_K_scale), biased by 32;
 * w = d * (sc - 32) * (q - (hmask bit set ? 0 : 4)) */
typedef struct {
    uint8_t hmask[SI_QK_K / 8];
    uint8_t qs[SI_QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
} blk_q3_K;

/* 8 sub-blocks of 32, 6-bit scale and min each (si_k4_scale_min);
 * w = d * sc * q - dmin * m */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[SI_K_SCALE_SIZE];
    uint8_t qs[SI_QK_K / 2];
} blk_q4_K;

/* Q4_K plus a 5th bit per element in qh */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[SI_K_SCALE_SIZE];
    uint8_t qh[SI_QK_K / 8];
    uint8_t qs[SI_QK_K / 2];
} blk_q5_K;

/* 16 sub-blocks of 16 with signed 8-bit scales; w = d * sc * (q - 32), q 6 bits */
typedef struct {
    uint8_t ql[SI_QK_K / 2];
    uint8_t qh[SI_QK_K / 4];
    int8_t scales[SI_QK_K / 16];
    uint16_t d;
} blk_q6_K;

/* Activation type of the K-quants. d is a plain float; bsums[k] = sum of qs[16k..16k+15]
 * so kernels can apply per-sub-block mins without touching the quants again. */
typedef struct {
    float d;
    int8_t qs[SI_QK_K];
    int16_t bsums[SI_QK_K / 16];
} blk_q8_K;

_Static_assert(sizeof(blk_q4_0) == 18, "blk_q4_0 layout");
_Static_assert(sizeof(blk_q4_1) == 20, "blk_q4_1 layout");
_Static_assert(sizeof(blk_q5_0) == 22, "blk_q5_0 layout");
_Static_assert(sizeof(blk_q5_1) == 24, "blk_q5_1 layout");
_Static_assert(sizeof(blk_q8_0) == 34, "blk_q8_0 layout");
_Static_assert(sizeof(blk_q8_1) == 36, "blk_q8_1 layout");
_Static_assert(sizeof(blk_q2_K) == 84, "blk_q2_K layout");
_Static_assert(sizeof(blk_q3_K) == 110, "blk_q3_K layout");
_Static_assert(sizeof(blk_q4_K) == 144, "blk_q4_K layout");
_Static_assert(sizeof(blk_q5_K) == 176, "blk_q5_K layout");
_Static_assert(sizeof(blk_q6_K) == 210, "blk_q6_K layout");
_Static_assert(sizeof(blk_q8_K) == 292, "blk_q8_K layout");

/* Copy block i of an array that may sit at any byte address. */
#define si_blk_load(dst, base, i) memcpy((dst), (const uint8_t *)(base) + (size_t)(i) * sizeof *(dst), sizeof *(dst))
#define si_blk_store(base, i, src) memcpy((uint8_t *)(base) + (size_t)(i) * sizeof *(src), (src), sizeof *(src))

/* Scale j (0..15) of a Q3_K block: low 4 bits from the nibbles of bytes 0..7, high 2 bits
 * from bytes 8..11 (byte 8 + j%4, bit pair j/4). Returned without the 32 bias. */
static inline int si_q3_K_scale(const uint8_t sc[12], int j)
{
    int lo = j < 8 ? (sc[j] & 0x0F) : (sc[j - 8] >> 4);
    int hi = (sc[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
    return lo | (hi << 4);
}

/* Scale and min of sub-block j (0..7) of Q4_K/Q5_K. Sub-blocks 0..3 keep their 6 bits in
 * the low bits of bytes 0..3 (scale) and 4..7 (min); sub-blocks 4..7 take their low 4 bits
 * from the nibbles of bytes 8..11 and their top 2 bits from the spare top bits of bytes
 * 0..3 (scale) and 4..7 (min). */
static inline void si_k4_scale_min(const uint8_t q[SI_K_SCALE_SIZE], int j, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

#endif
