/* Activation quantization (from_float): Q8_0 and Q8_K codes for known inputs, zero
 * blocks, the largest element's code, bsums; F16 and F32 pass-through. */
#include <math.h>

#include "streaminfer/types.h"
#include "src/kernels/blocks.h"
#include "../test_util.h"

static void quant(si_type t, const float *x, int64_t n, void *dst)
{
    const si_type_traits *tr = si_type_get(t);
    CHECK(tr && tr->from_float);
    /* write to an odd address: the kernels must not assume alignment */
    static uint8_t buf[8192];
    size_t bytes = si_row_size(t, n);
    CHECK(bytes > 0 && bytes + 1 <= sizeof buf);
    memset(buf, 0xAA, sizeof buf);
    tr->from_float(x, buf + 1, n);
    CHECK(buf[0] == 0xAA && buf[bytes + 1] == 0xAA); /* no write outside the row */
    memcpy(dst, buf + 1, bytes);
}

static void test_q8_0(void)
{
    blk_q8_0 b[2];
    float x[64];

    /* amax 127: d = 1 exactly, codes are roundf(x), halves away from zero */
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16);
    x[0] = 127.0f;
    x[1] = 2.5f;
    x[2] = -2.5f;
    x[3] = 0.5f;
    x[4] = -0.5f;
    x[5] = 1.4999f;
    x[6] = -126.5f;
    /* second block: amax from a negative element, 63.5 -> d = 0.5, id = 2 */
    for (int j = 0; j < 32; j++)
        x[32 + j] = (float)j * 0.25f;
    x[40] = -63.5f;
    quant(SI_TYPE_Q8_0, x, 64, b);
    CHECK_EQ_INT(b[0].d, 0x3C00);
    int want0[7] = {127, 3, -3, 1, -1, 1, -127};
    for (int j = 0; j < 7; j++)
        CHECK_EQ_INT(b[0].qs[j], want0[j]);
    for (int j = 7; j < 32; j++)
        CHECK_EQ_INT(b[0].qs[j], j - 16);
    CHECK_EQ_INT(b[1].d, 0x3800);
    CHECK_EQ_INT(b[1].qs[8], -127);
    for (int j = 0; j < 32; j++)
        if (j != 8)
            CHECK_EQ_INT(b[1].qs[j], (j + 1) / 2); /* roundf(j/2): halves away from zero */

    /* the largest magnitude maps to +-127 either sign; d is fp16(amax/127) while the
     * codes used the unrounded scale */
    for (int j = 0; j < 32; j++)
        x[j] = sinf((float)j) * 3.0f;
    x[17] = -5.0f;
    x[3] = 5.0f;
    quant(SI_TYPE_Q8_0, x, 32, b);
    CHECK_EQ_INT(b[0].qs[17], -127);
    CHECK_EQ_INT(b[0].qs[3], 127);
    CHECK_EQ_INT(b[0].d, si_fp32_to_fp16(5.0f / 127.0f));
    for (int j = 0; j < 32; j++)
        CHECK(b[0].qs[j] >= -127 && b[0].qs[j] <= 127);

    /* zeros */
    for (int j = 0; j < 32; j++)
        x[j] = (j & 1) ? -0.0f : 0.0f;
    quant(SI_TYPE_Q8_0, x, 32, b);
    CHECK_EQ_INT(b[0].d, 0);
    for (int j = 0; j < 32; j++)
        CHECK_EQ_INT(b[0].qs[j], 0);
}

static void check_bsums(const blk_q8_K *b)
{
    for (int k = 0; k < 16; k++) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += b->qs[16 * k + j];
        CHECKF(b->bsums[k] == s, "bsums[%d] = %d, sum of qs = %d", k, b->bsums[k], s);
    }
}

static void test_q8_K(void)
{
    static float x[512];
    blk_q8_K b[2];

    /* max = -127 (first of the largest magnitudes): iscale = -127/max = 1 exactly, so
     * codes are x rounded to nearest with ties to even; +127 later is the same magnitude */
    for (int j = 0; j < 256; j++)
        x[j] = (float)((j % 200) - 100);
    x[0] = -127.0f;
    x[1] = 2.5f;
    x[2] = 3.5f;
    x[3] = -2.5f;
    x[4] = 0.5f;
    x[5] = -0.5f;
    x[6] = 126.5f;
    x[7] = 127.0f;
    x[8] = 1.4999f;
    /* second block: max = +2 at position 5, so iscale = -63.5 and it maps to -127;
     * -2 maps to +127; codes carry the opposite sign and d is negative */
    for (int j = 0; j < 256; j++)
        x[256 + j] = 0.0f;
    x[256 + 5] = 2.0f;
    x[256 + 9] = -2.0f;
    x[256 + 10] = 1.0f;  /* -63.5 -> -64 (tie to even) */
    x[256 + 11] = -1.0f; /* 63.5 -> 64 */
    x[256 + 12] = 0.25f; /* -15.875 -> -16 */
    x[256 + 200] = 0.5f; /* -31.75 -> -32 */
    quant(SI_TYPE_Q8_K, x, 512, b);

    CHECK(b[0].d == 1.0f);
    int want0[9] = {-127, 2, 4, -2, 0, 0, 126, 127, 1};
    for (int j = 0; j < 9; j++)
        CHECKF(b[0].qs[j] == want0[j], "qs[%d] = %d, want %d", j, b[0].qs[j], want0[j]);
    for (int j = 9; j < 256; j++)
        CHECK_EQ_INT(b[0].qs[j], (j % 200) - 100);
    check_bsums(&b[0]);

    CHECK(b[1].d == 1.0f / (-127.0f / 2.0f));
    CHECK(b[1].d < 0.0f);
    CHECK_EQ_INT(b[1].qs[5], -127);
    CHECK_EQ_INT(b[1].qs[9], 127);
    CHECK_EQ_INT(b[1].qs[10], -64);
    CHECK_EQ_INT(b[1].qs[11], 64);
    CHECK_EQ_INT(b[1].qs[12], -16);
    CHECK_EQ_INT(b[1].qs[200], -32);
    CHECK_EQ_INT(b[1].bsums[0], -127 + 127 - 64 + 64 - 16);
    CHECK_EQ_INT(b[1].bsums[12], -32);
    check_bsums(&b[1]);

    /* random data: codes within [-127, 127], the largest element at -127, dequantized
     * values within half a step of the input */
    test_rng r;
    test_rng_seed(&r, 8);
    for (int rep = 0; rep < 200; rep++) {
        double scale = pow(10.0, test_rng_range(&r, -6, 6));
        int imax = 0;
        for (int j = 0; j < 256; j++) {
            x[j] = (float)(test_rng_range(&r, -1, 1) * scale);
            if (fabsf(x[j]) > fabsf(x[imax]))
                imax = j;
        }
        quant(SI_TYPE_Q8_K, x, 256, b);
        CHECK_EQ_INT(b[0].qs[imax], -127);
        for (int j = 0; j < 256; j++) {
            CHECK(b[0].qs[j] >= -127 && b[0].qs[j] <= 127);
            double err = fabs((double)b[0].qs[j] * b[0].d - x[j]);
            CHECKF(err <= 0.5001 * fabs((double)b[0].d), "rep %d elem %d err %g d %g", rep, j, err,
                   (double)b[0].d);
        }
        check_bsums(&b[0]);
    }

    /* zeros, including negative zeros: d = 0, all codes and sums 0 */
    for (int j = 0; j < 256; j++)
        x[j] = (j % 3) ? 0.0f : -0.0f;
    quant(SI_TYPE_Q8_K, x, 256, b);
    CHECK(b[0].d == 0.0f);
    for (int j = 0; j < 256; j++)
        CHECK_EQ_INT(b[0].qs[j], 0);
    for (int k = 0; k < 16; k++)
        CHECK_EQ_INT(b[0].bsums[k], 0);
}

static void test_f16_f32(void)
{
    float x[8] = {1.0f, -2.0f, 65504.0f, 0x1p-24f, 1.0f + 0x1p-11f, 1e6f, -0.0f, 0.1f};
    uint16_t h[8];
    quant(SI_TYPE_F16, x, 8, h);
    for (int j = 0; j < 8; j++)
        CHECK_EQ_INT(h[j], si_fp32_to_fp16(x[j]));
    float y[8];
    quant(SI_TYPE_F32, x, 8, y);
    CHECK(memcmp(x, y, sizeof x) == 0);
}

int main(void)
{
    test_q8_0();
    test_q8_K();
    test_f16_f32();
    printf("ok\n");
    return 0;
}
