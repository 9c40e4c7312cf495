/* Tensor types and their kernels: the one table.
 *
 * Ids are GGUF's (ggml_type). Every type the GGUF reader may meet has an entry with its
 * block geometry so sizes can be validated even for types the engine cannot compute
 * with; `compute` says whether the engine has kernels for it.
 *
 * A matrix product y = W x with W of type T runs as: quantize x into T's
 * vec_dot_type with that type's from_float (as llama.cpp does: Q8_0 activations for
 * Q4_0/Q8_0, Q8_K for the K-quants, F16 for F16, F32 for F32), then vec_dot of each
 * weight row with it. The C reference in src/kernels/ref.c defines every result. */
#ifndef STREAMINFER_TYPES_H
#define STREAMINFER_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum si_type {
    SI_TYPE_F32 = 0,
    SI_TYPE_F16 = 1,
    SI_TYPE_Q4_0 = 2,
    SI_TYPE_Q4_1 = 3,
    SI_TYPE_Q5_0 = 6,
    SI_TYPE_Q5_1 = 7,
    SI_TYPE_Q8_0 = 8,
    SI_TYPE_Q8_1 = 9,
    SI_TYPE_Q2_K = 10,
    SI_TYPE_Q3_K = 11,
    SI_TYPE_Q4_K = 12,
    SI_TYPE_Q5_K = 13,
    SI_TYPE_Q6_K = 14,
    SI_TYPE_Q8_K = 15,
    SI_TYPE_IQ2_XXS = 16,
    SI_TYPE_IQ2_XS = 17,
    SI_TYPE_IQ3_XXS = 18,
    SI_TYPE_IQ1_S = 19,
    SI_TYPE_IQ4_NL = 20,
    SI_TYPE_IQ3_S = 21,
    SI_TYPE_IQ2_S = 22,
    SI_TYPE_IQ4_XS = 23,
    SI_TYPE_I8 = 24,
    SI_TYPE_I16 = 25,
    SI_TYPE_I32 = 26,
    SI_TYPE_I64 = 27,
    SI_TYPE_F64 = 28,
    SI_TYPE_IQ1_M = 29,
    SI_TYPE_BF16 = 30,
    SI_TYPE_TQ1_0 = 34,
    SI_TYPE_TQ2_0 = 35,
    SI_TYPE_MXFP4 = 39,
    SI_TYPE_COUNT = 40, /* table size: ids >= this are unknown */
} si_type;

/* Quantized activation blocks (produced by from_float, consumed by vec_dot). */
#define SI_QK8_0 32
#define SI_QK_K 256

/* Dequantize n values (n a multiple of blck_size). */
typedef void (*si_to_float_fn)(const void *src, float *dst, int64_t n);
/* Quantize n floats (n a multiple of blck_size) into this type's blocks. */
typedef void (*si_from_float_fn)(const float *src, void *dst, int64_t n);
/* Dot product of n weights (this type) with n activations already in vec_dot_type. */
typedef float (*si_vec_dot_fn)(int64_t n, const void *w, const void *act);

typedef struct si_type_traits {
    const char *name;       /* "Q4_K"; NULL: id unused (unknown type) */
    int64_t blck_size;      /* elements per block */
    size_t type_size;       /* bytes per block */
    bool compute;           /* engine has to_float and vec_dot for it as a weight type */
    si_type vec_dot_type;   /* activation type vec_dot expects */
    si_to_float_fn to_float;
    si_from_float_fn from_float; /* set for activation types (F32, F16, Q8_0, Q8_K) */
    si_vec_dot_fn vec_dot;
} si_type_traits;

/* NULL for ids outside the table or unused. */
const si_type_traits *si_type_get(uint32_t type);
const char *si_type_name(uint32_t type); /* "type 77" style text for unknown ids (static buffer-free: returns "unknown") */

/* Bytes of a row of n elements; 0 if n is not a multiple of the block size or type unknown. */
size_t si_row_size(uint32_t type, int64_t n);

/* IEEE half <-> float, exact round-to-nearest-even. */
float si_fp16_to_fp32(uint16_t h);
uint16_t si_fp32_to_fp16(float f);

#ifdef __cplusplus
}
#endif
#endif
