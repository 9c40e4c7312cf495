/* The SIMD kernel sets' constructors (private to src/kernels): each returns its set,
 * complete (entries it does not provide are the reference's), or NULL when this build
 * or this CPU lacks it. */
#ifndef SI_KERNELS_SIMD_SETS_H
#define SI_KERNELS_SIMD_SETS_H

#include "streaminfer/kernels.h"

const si_kernels *si_kernels_avx2(void);
const si_kernels *si_kernels_rvv(void);

#endif
