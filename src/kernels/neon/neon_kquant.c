/* NEON: K-quant weights (Q2_K .. Q6_K) × Q8_K activations.
 *
 * A weight block is decoded once into 16 vectors of 16 int8 codes (one per 16-element
 * group, in element order) plus its scales and, for the types with mins, the
 * multipliers of the Q8_K block's bsums; every token of the step (up to
 * SI_NEON_TOK_CHUNK per decode) is then dotted with it. Codes are the reference's:
 * unsigned 0..15 / 0..31 for Q4_K / Q5_K (mins through bsums), signed -4..3 / -32..31
 * for Q3_K / Q6_K (no min term); Q2_K's codes 0..3 are decoded already multiplied by
 * their group's scale (0..15, so at most 45). Per token, exact integer sums:
 *   Q3_K, Q6_K (a scale per 16 elements): p = two products per int16 lane (SMULL +
 *     SMLAL2, |p| <= 2 * 32 * 128), isum += sc[g] * p (SMLAL/SMLAL2 by element);
 *   Q4_K, Q5_K (a scale per 32): four products per int16 lane (|p| <= 4 * 31 * 128),
 *     then the same scaling, once per 32 elements;
 *   Q2_K: four products of scaled codes per int16 lane (|p| <= 4 * 45 * 128), added
 *     pairwise into int32 (SADALP), no scaling step;
 * and summ = sum_g mn[g] * bsums[g] for Q2_K, Q4_K, Q5_K. With the dot product
 * (neon_dot.c) SDOT makes four products per int32 lane instead, then the same scaling
 * (by an int32 scale) where there is one; the sums are the same integers. A block then contributes
 *   Q3_K, Q6_K:        (d * ya.d) * isum
 *   Q2_K, Q4_K, Q5_K:  (ya.d * d) * isum - (ya.d * dmin) * summ
 * added to the token's sum block by block: Q2_K's order and roundings are the
 * reference's (bit-identical results), Q3_K..Q6_K differ from the reference's eight lane
 * sums in the order of the float additions only. The same code runs for one token and
 * for a batch, so a token's result does not depend on the batch it came in. */
#include "neon.h"

#ifdef SI_HAVE_NEON_SET

#define SI_NEON_DOT 0
#define SI_KQ_ENTRY si_neon_mat_dot_kq
#include "neon_kquant.h"

#endif
