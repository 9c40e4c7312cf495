/* NEON with the ARMv8.2 dot product (SDOT, FEAT_DotProd): the K-quant and Q8_0/Q4_0
 * matrix loops of neon_kquant.h and neon_q80.h compiled for it. Every function here
 * carries the target (so the rest of the build stays ARMv8.0); neon_ops.c hands these
 * out only when getauxval(AT_HWCAP) has HWCAP_ASIMDDP. Results are the baseline's:
 * the integer sums are the same, the float steps unchanged. */
#include "neon.h"

#ifdef SI_HAVE_NEON_SET

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("dotprod"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif

#define SI_NEON_DOT 1
#define SI_KQ_ENTRY si_neon_mat_dot_kq_dot
#include "neon_kquant.h"
#define SI_Q80_ENTRY si_neon_mat_dot_q80_dot
#include "neon_q80.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#endif
