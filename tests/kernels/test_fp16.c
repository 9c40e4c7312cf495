/* IEEE half <-> float: exhaustive round trip, every rounding boundary, known values. */
#include <math.h>

#include "streaminfer/types.h"
#include "../test_util.h"

static float bits_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

#define CHECK_H(f, want)                                                                  \
    do {                                                                                  \
        uint16_t got_ = si_fp32_to_fp16(f);                                               \
        CHECKF(got_ == (uint16_t)(want), "fp32_to_fp16(%a) = 0x%04x, want 0x%04x",         \
               (double)(f), got_, (unsigned)(want));                                      \
    } while (0)

int main(void)
{
    /* every half: to float and back is the identity (NaNs stay NaN with the same sign) */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = si_fp16_to_fp32((uint16_t)h);
        uint16_t back = si_fp32_to_fp16(f);
        int hnan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF);
        if (hnan) {
            CHECKF(isnan(f), "0x%04x should be nan", h);
            CHECKF((back & 0x7C00) == 0x7C00 && (back & 0x3FF) && (back & 0x8000) == (h & 0x8000),
                   "nan 0x%04x came back as 0x%04x", h, back);
        } else {
            CHECKF(back == h, "0x%04x -> %a -> 0x%04x", h, (double)f, back);
        }
    }

    /* values of halves, computed independently */
    for (uint32_t h = 0; h < 0x7C00; h++) {
        uint32_t e = h >> 10, m = h & 0x3FF;
        double want = e ? ldexp(1.0 + m / 1024.0, (int)e - 15) : ldexp((double)m, -24);
        CHECKF(si_fp16_to_fp32((uint16_t)h) == (float)want, "value of 0x%04x", h);
        CHECKF(si_fp16_to_fp32((uint16_t)(h | 0x8000)) == (float)-want, "value of -0x%04x", h);
    }

    /* every rounding boundary: the midpoint between neighbouring halves goes to the even
     * one, anything past it to the nearer one; 0x7BFF's upper neighbour is 65536 (inf) */
    for (uint32_t h = 0; h < 0x7C00; h++) {
        float lo = si_fp16_to_fp32((uint16_t)h);
        float hi = h + 1 < 0x7C00 ? si_fp16_to_fp32((uint16_t)(h + 1)) : 65536.0f;
        float mid = (float)(((double)lo + (double)hi) / 2); /* exact: one more bit */
        CHECK((double)mid == ((double)lo + (double)hi) / 2);
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        CHECK_H(mid, even);
        CHECK_H(nextafterf(mid, 0.0f), h);
        CHECK_H(nextafterf(mid, INFINITY), h + 1);
        CHECK_H(-mid, even | 0x8000);
        CHECK_H(-nextafterf(mid, 0.0f), h | 0x8000);
        CHECK_H(-nextafterf(mid, INFINITY), (h + 1) | 0x8000);
    }

    CHECK_H(1.0f, 0x3C00);
    CHECK_H(-2.0f, 0xC000);
    CHECK_H(0.5f, 0x3800);
    CHECK_H(65504.0f, 0x7BFF);
    CHECK_H(65519.99f, 0x7BFF);
    CHECK_H(65520.0f, 0x7C00); /* tie with 65536 rounds to even: overflow */
    CHECK_H(1e10f, 0x7C00);
    CHECK_H(-1e10f, 0xFC00);
    CHECK_H(0x1p-24f, 0x0001);  /* smallest subnormal */
    CHECK_H(0x1p-25f, 0x0000);  /* tie with 0 goes to even 0 */
    CHECK_H(0x1.000002p-25f, 0x0001);
    CHECK_H(0x3p-25f, 0x0002);  /* tie between 1 and 2 ulps */
    CHECK_H(0x1p-14f, 0x0400);  /* smallest normal */
    CHECK_H(0x3FFp-24f, 0x03FF);
    CHECK_H(0x7FFp-25f, 0x0400); /* largest subnormal + half ulp: tie rounds up to even 0x400 */
    CHECK_H(1.0f + 0x1p-11f, 0x3C00); /* tie, even down */
    CHECK_H(1.0f + 0x3p-11f, 0x3C02); /* tie, even up */
    CHECK_H(1.0f + 0x1p-11f + 0x1p-20f, 0x3C01);
    CHECK_H(0.0f, 0x0000);
    CHECK_H(-0.0f, 0x8000);
    CHECK_H(0x1p-149f, 0x0000); /* float subnormal */
    CHECK_H(-0x1p-149f, 0x8000);
    CHECK_H(INFINITY, 0x7C00);
    CHECK_H(-INFINITY, 0xFC00);
    uint16_t n = si_fp32_to_fp16(NAN);
    CHECK((n & 0x7C00) == 0x7C00 && (n & 0x3FF) != 0);
    n = si_fp32_to_fp16(bits_f(0x7F800001u)); /* signalling nan with a low payload */
    CHECK((n & 0x7C00) == 0x7C00 && (n & 0x3FF) != 0);

    CHECK(si_fp16_to_fp32(0x3C00) == 1.0f);
    CHECK(si_fp16_to_fp32(0xC000) == -2.0f);
    CHECK(si_fp16_to_fp32(0x7BFF) == 65504.0f);
    CHECK(si_fp16_to_fp32(0x0001) == 0x1p-24f);
    CHECK(si_fp16_to_fp32(0x8001) == -0x1p-24f);
    CHECK(f_bits(si_fp16_to_fp32(0x8000)) == 0x80000000u);
    CHECK(si_fp16_to_fp32(0x7C00) == INFINITY);
    CHECK(si_fp16_to_fp32(0xFC00) == -INFINITY);
    CHECK(isnan(si_fp16_to_fp32(0x7E00)));

#ifdef __FLT16_MAX__
    /* cross-check against the compiler's correctly rounded conversion */
    test_rng r;
    test_rng_seed(&r, 16);
    for (int i = 0; i < 2000000; i++) {
        float f = bits_f(test_rng_u32(&r));
        if (isnan(f))
            continue;
        _Float16 c = (_Float16)f;
        uint16_t want;
        memcpy(&want, &c, 2);
        CHECK_H(f, want);
    }
#endif
    printf("ok\n");
    return 0;
}
