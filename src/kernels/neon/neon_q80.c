/* NEON: Q8_0 and Q4_0 weights × Q8_0 activations, bit-identical with the reference.
 *
 * Blocks go four at a time: the four weight blocks are decoded once (Q8_0: loaded;
 * Q4_0: nibbles to codes -8..7) and every token of the step is dotted with them. A
 * block's integer dot is exact:
 *   with the dot product (neon_dot.c): SDOT, four products per int32 lane;
 *   Q8_0: SMULL per 8 elements (|w * a| <= 128 * 128 fits int16), pairwise-added into
 *         int32 (SADALP): every code, -128 included, on either side.
 *   Q4_0: SMULL + SMLAL2 + SMLAL + SMLAL2, four products per int16 lane (|.| <= 4 * 8 *
 *         128), then SADDLP.
 * The four sums land in one vector; the four terms are formed lane by lane with the
 * reference's operations,
 *   Q8_0: (float)isum * (dw * da)       Q4_0: ((float)isum * dw) * da
 * and added to the token's sum one block after the other, the reference's order, so
 * the result is the reference's to the bit (and so the same alone or in a batch). */
#include "neon.h"

#ifdef SI_HAVE_NEON_SET

#define SI_NEON_DOT 0
#define SI_Q80_ENTRY si_neon_mat_dot_q80
#include "neon_q80.h"

#endif
