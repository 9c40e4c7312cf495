/* vec_dot of every compute type against a double-precision dot of the dequantized
 * operands: vec_dot(w, from_float(x)) must equal sum(to_float(w) * deq(from_float(x)))
 * up to float rounding. The activation blocks are dequantized here from their structs,
 * not with library code. */
#include <math.h>
#include <stdlib.h>

#include "streaminfer/types.h"
#include "src/kernels/blocks.h"
#include "../test_util.h"
#include "block_fields.h"

#define MAX_BLOCKS 16
#define MAX_N (MAX_BLOCKS * SI_QK_K)

static const si_type compute_types[] = {SI_TYPE_F32, SI_TYPE_F16, SI_TYPE_Q4_0, SI_TYPE_Q8_0,
                                        SI_TYPE_Q2_K, SI_TYPE_Q3_K, SI_TYPE_Q4_K, SI_TYPE_Q5_K,
                                        SI_TYPE_Q6_K};

/* weight and activation rows live one byte past an aligned address */
static uint8_t wbuf[MAX_N * 4 + 64], abuf[MAX_N * 4 + 64];
static uint8_t *const wrow = wbuf + 1, *const arow = abuf + 3;
static float xs[MAX_N], wf[MAX_N], af[MAX_N];

static uint16_t rand_half(test_rng *r, double lo, double hi)
{
    double v = test_rng_range(r, lo, hi);
    if (test_rng_u32(r) & 1)
        v = -v;
    return si_fp32_to_fp16((float)v);
}

static void put_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

enum fill { FILL_RANDOM, FILL_ZERO, FILL_MAX, FILL_MIN };

/* Weight row of n elements: random (or extreme) codes, scales drawn from
 * [slo, shi] with random sign. */
static void make_weights(test_rng *r, si_type t, int64_t n, enum fill fill, double slo, double shi)
{
    const si_type_traits *tr = si_type_get(t);
    size_t bytes = si_row_size(t, n);
    if (t == SI_TYPE_F32 || t == SI_TYPE_F16) {
        for (int64_t i = 0; i < n; i++) {
            float v = fill == FILL_ZERO ? 0.0f
                    : fill == FILL_MAX  ? (float)shi
                    : fill == FILL_MIN  ? (float)-shi
                                        : (float)test_rng_range(r, -shi, shi);
            if (t == SI_TYPE_F32)
                memcpy(wrow + 4 * i, &v, 4);
            else
                put_u16(wrow + 2 * i, si_fp32_to_fp16(v));
        }
        return;
    }
    if (fill == FILL_ZERO)
        memset(wrow, 0, bytes);
    else if (fill == FILL_MAX)
        memset(wrow, 0xFF, bytes);
    else if (fill == FILL_MIN)
        memset(wrow, 0x00, bytes);
    else
        test_rng_bytes(r, wrow, bytes);
    if (t == SI_TYPE_Q8_0 && fill == FILL_MAX)
        for (size_t i = 0; i < bytes; i++)
            wrow[i] = 0x7F;
    if (t == SI_TYPE_Q8_0 && fill == FILL_MIN)
        for (size_t i = 0; i < bytes; i++)
            wrow[i] = 0x80;
    size_t off[2];
    int nh = half_fields(t, off);
    for (int64_t b = 0; b < n / tr->blck_size; b++)
        for (int k = 0; k < nh; k++)
            put_u16(wrow + b * tr->type_size + off[k], fill == FILL_ZERO ? 0 : rand_half(r, slo, shi));
}

/* Activations dequantized from their blocks, written out from the block definitions. */
static void deq_act(si_type at, int64_t n)
{
    if (at == SI_TYPE_F32) {
        memcpy(af, arow, (size_t)n * 4);
    } else if (at == SI_TYPE_F16) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, arow + 2 * i, 2);
            af[i] = si_fp16_to_fp32(h);
        }
    } else if (at == SI_TYPE_Q8_0) {
        for (int64_t b = 0; b < n / SI_QK8_0; b++) {
            blk_q8_0 blk;
            memcpy(&blk, arow + b * sizeof blk, sizeof blk);
            for (int j = 0; j < SI_QK8_0; j++)
                af[b * SI_QK8_0 + j] = (float)blk.qs[j] * si_fp16_to_fp32(blk.d);
        }
    } else if (at == SI_TYPE_Q8_K) {
        for (int64_t b = 0; b < n / SI_QK_K; b++) {
            blk_q8_K blk;
            memcpy(&blk, arow + b * sizeof blk, sizeof blk);
            int sums[16] = {0};
            for (int j = 0; j < SI_QK_K; j++) {
                af[b * SI_QK_K + j] = (float)blk.qs[j] * blk.d;
                sums[j / 16] += blk.qs[j];
            }
            for (int k = 0; k < 16; k++)
                CHECK(blk.bsums[k] == sums[k]);
        }
    } else {
        FAILF("no activation dequantizer for type %d", (int)at);
    }
}

static int checks;
static double worst; /* largest err / mag seen */

/* Compare vec_dot with the double dot. The error allowed is relative to the sum of the
 * absolute products, which bounds float accumulation error even when the terms cancel. */
static void compare(si_type t, int64_t n, const char *what, double tol)
{
    const si_type_traits *tr = si_type_get(t);
    const si_type_traits *at = si_type_get(tr->vec_dot_type);
    at->from_float(xs, arow, n);
    tr->to_float(wrow, wf, n);
    deq_act(tr->vec_dot_type, n);
    double ref = 0.0, mag = 0.0;
    for (int64_t i = 0; i < n; i++) {
        ref += (double)wf[i] * (double)af[i];
        mag += fabs((double)wf[i] * (double)af[i]);
    }
    float got = tr->vec_dot(n, wrow, arow);
    CHECKF(isfinite(got), "%s %s n=%lld: not finite", tr->name, what, (long long)n);
    double err = fabs((double)got - ref);
    CHECKF(err <= tol * mag || (mag == 0.0 && got == 0.0f),
           "%s %s n=%lld: vec_dot %.9g, reference %.9g, |err| %.3g > %.1g * %.6g", tr->name, what,
           (long long)n, (double)got, ref, err, tol, mag);
    if (mag > 0 && err / mag > worst)
        worst = err / mag;
    checks++;
}

static si_type cur_type;

static void make_acts(test_rng *r, int64_t n, double scale, int outlier)
{
    if (cur_type == SI_TYPE_F16 && scale > 100.0)
        scale = 100.0; /* F16 activations must stay below 65504 even with the outlier */
    for (int64_t i = 0; i < n; i++)
        xs[i] = (float)(test_rng_range(r, -1, 1) * scale);
    if (outlier)
        xs[test_rng_u32(r) % n] = (float)(scale * 100.0);
}

int main(void)
{
    test_rng r;
    test_rng_seed(&r, 20261125);
    const double tol = 1e-5;
    const int nblocks[3] = {1, 2, MAX_BLOCKS};

    for (size_t ti = 0; ti < sizeof compute_types / sizeof compute_types[0]; ti++) {
        si_type t = compute_types[ti];
        const si_type_traits *tr = si_type_get(t);
        CHECK(tr && tr->compute);
        cur_type = t;
        /* F32/F16 have 1-element blocks: use the same lengths as the 32-blocks */
        int64_t unit = tr->blck_size == 1 ? 32 : tr->blck_size;

        for (int bi = 0; bi < 3; bi++) {
            int64_t n = unit * nblocks[bi];
            for (int rep = 0; rep < 20; rep++) {
                make_weights(&r, t, n, FILL_RANDOM, 1e-3, 1.0);
                make_acts(&r, n, pow(10.0, test_rng_range(&r, -3, 3)), rep % 4 == 3);
                compare(t, n, "random", tol);
            }

            /* zero weights: exactly zero */
            make_weights(&r, t, n, FILL_ZERO, 0, 0);
            make_acts(&r, n, 1.0, 0);
            compare(t, n, "zero weights", tol);
            CHECK(tr->vec_dot(n, wrow, arow) == 0.0f);

            /* zero activations: exactly zero */
            make_weights(&r, t, n, FILL_RANDOM, 1e-3, 1.0);
            memset(xs, 0, (size_t)n * sizeof(float));
            compare(t, n, "zero activations", tol);
            CHECK(tr->vec_dot(n, wrow, arow) == 0.0f);

            /* extreme codes (all bits set / clear, so the largest scales and mins too)
             * against extreme activation codes */
            for (int f = FILL_MAX; f <= FILL_MIN; f++) {
                make_weights(&r, t, n, (enum fill)f, 0.5, 1.0);
                for (int64_t i = 0; i < n; i++)
                    xs[i] = (i & 1) ? -3.0f : 3.0f;
                compare(t, n, f == FILL_MAX ? "max codes, +-max acts" : "min codes, +-max acts", tol);
                for (int64_t i = 0; i < n; i++)
                    xs[i] = 3.0f;
                compare(t, n, f == FILL_MAX ? "max codes, max acts" : "min codes, max acts", tol);
            }

            /* extreme but finite scales: the largest and the smallest halves */
            make_weights(&r, t, n, FILL_RANDOM, 32768.0, 65504.0);
            make_acts(&r, n, 1e3, 1);
            compare(t, n, "huge scales", tol);
            make_weights(&r, t, n, FILL_RANDOM, 0x1p-24, 0x1p-14);
            make_acts(&r, n, 1e-3, 1);
            compare(t, n, "tiny scales", tol);
        }
    }
    printf("ok: %d comparisons, worst |err| / sum|w*a| = %.3g\n", checks, worst);
    return 0;
}
