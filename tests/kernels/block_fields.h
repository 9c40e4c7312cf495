/* Where a block keeps its fp16 scales, for the kernel tests that turn random bytes into
 * blocks with finite scales. */
#ifndef SI_TEST_BLOCK_FIELDS_H
#define SI_TEST_BLOCK_FIELDS_H

#include <stddef.h>

#include "streaminfer/types.h"
#include "src/kernels/blocks.h"

/* Byte offsets of the fp16 scale fields inside a block of type t; returns how many. */
static inline int half_fields(si_type t, size_t off[2])
{
    switch (t) {
    case SI_TYPE_Q4_0: off[0] = offsetof(blk_q4_0, d); return 1;
    case SI_TYPE_Q8_0: off[0] = offsetof(blk_q8_0, d); return 1;
    case SI_TYPE_Q2_K: off[0] = offsetof(blk_q2_K, d); off[1] = offsetof(blk_q2_K, dmin); return 2;
    case SI_TYPE_Q3_K: off[0] = offsetof(blk_q3_K, d); return 1;
    case SI_TYPE_Q4_K: off[0] = offsetof(blk_q4_K, d); off[1] = offsetof(blk_q4_K, dmin); return 2;
    case SI_TYPE_Q5_K: off[0] = offsetof(blk_q5_K, d); off[1] = offsetof(blk_q5_K, dmin); return 2;
    case SI_TYPE_Q6_K: off[0] = offsetof(blk_q6_K, d); return 1;
    default: return 0;
    }
}

#endif
