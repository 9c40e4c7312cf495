/* Dequantization of hand-built blocks. Expected values come from the format definitions
 * written out here per element (not from ref.c's loop structure), with scales chosen so
 * every product is exact: results must match bit for bit. */
#include "streaminfer/types.h"
#include "src/kernels/blocks.h"
#include "../test_util.h"

#define H_ONE 0x3C00     /* 1.0 */
#define H_HALF 0x3800    /* 0.5 */
#define H_QUARTER 0x3400 /* 0.25 */
#define H_MHALF 0xB800   /* -0.5 */

static float out[SI_QK_K * 2];

static void dequant(si_type t, const void *blocks, int64_t n)
{
    const si_type_traits *tr = si_type_get(t);
    CHECK(tr && tr->to_float);
    /* run from an odd address: rows are only byte aligned in a file */
    static uint8_t buf[4096];
    size_t bytes = si_row_size(t, n);
    CHECK(bytes > 0 && bytes + 1 <= sizeof buf);
    memcpy(buf + 1, blocks, bytes);
    tr->to_float(buf + 1, out, n);
}

static void expect(const char *what, int i, float want)
{
    CHECKF(out[i] == want, "%s: element %d = %.9g, want %.9g", what, i, (double)out[i], (double)want);
}

static void test_f32_f16(void)
{
    float src[4] = {1.5f, -0.0f, 3e38f, -7.25f};
    dequant(SI_TYPE_F32, src, 4);
    for (int i = 0; i < 4; i++)
        expect("F32", i, src[i]);
    uint16_t h[4] = {0x3C00, 0xC000, 0x7BFF, 0x0001};
    dequant(SI_TYPE_F16, h, 4);
    expect("F16", 0, 1.0f);
    expect("F16", 1, -2.0f);
    expect("F16", 2, 65504.0f);
    expect("F16", 3, 0x1p-24f);
}

static void test_q4_0(void)
{
    blk_q4_0 b[2];
    b[0].d = H_HALF;
    for (int j = 0; j < 16; j++)
        b[0].qs[j] = (uint8_t)(j | ((15 - j) << 4));
    b[1].d = 0xC000; /* -2 */
    memset(b[1].qs, 0xF0, sizeof b[1].qs);
    dequant(SI_TYPE_Q4_0, b, 64);
    for (int j = 0; j < 16; j++) {
        expect("Q4_0 low nibble", j, (float)(j - 8) * 0.5f);
        expect("Q4_0 high nibble", j + 16, (float)(15 - j - 8) * 0.5f);
        expect("Q4_0 second block low", 32 + j, 16.0f);  /* (0-8)*-2 */
        expect("Q4_0 second block high", 48 + j, -14.0f); /* (15-8)*-2 */
    }
    expect("Q4_0", 0, -4.0f);
    expect("Q4_0", 31, -4.0f); /* high nibble of qs[15] is 0: (0-8)*0.5 */
}

static void test_q8_0(void)
{
    blk_q8_0 b;
    b.d = H_QUARTER;
    for (int j = 0; j < 32; j++)
        b.qs[j] = (int8_t)(j * 8 - 128);
    dequant(SI_TYPE_Q8_0, &b, 32);
    for (int j = 0; j < 32; j++)
        expect("Q8_0", j, (float)(j * 8 - 128) * 0.25f);
    expect("Q8_0", 0, -32.0f);
    expect("Q8_0", 31, 30.0f);
}

/* Q2_K: element i is 2 bits of qs[32*(i/128) + i%32] at bit 2*((i%128)/32); its
 * sub-block (i/16) has scale = low nibble and min = high nibble of scales[i/16]. */
static void test_q2_K(void)
{
    blk_q2_K b;
    b.d = H_HALF;
    b.dmin = H_QUARTER;
    for (int k = 0; k < 16; k++)
        b.scales[k] = (uint8_t)(k | ((15 - k) << 4));
    for (int j = 0; j < 64; j++)
        b.qs[j] = (uint8_t)(j * 37 + 11);
    dequant(SI_TYPE_Q2_K, &b, 256);
    for (int i = 0; i < 256; i++) {
        int q = (b.qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3;
        int sc = i / 16, m = 15 - i / 16;
        expect("Q2_K", i, 0.5f * (float)(sc * q) - 0.25f * (float)m);
    }
    /* spot checks by hand: qs[0] = 11 = 0b00001011 */
    expect("Q2_K", 0, 0.5f * 0 * 3 - 0.25f * 15);  /* sub-block 0, q = 3 */
    expect("Q2_K", 32, 0.5f * 2 * 2 - 0.25f * 13); /* sub-block 2, q = (11>>2)&3 = 2 */
    expect("Q2_K", 64, 0.5f * 4 * 0 - 0.25f * 11); /* sub-block 4, q = 0 */
    /* qs[48] = (48*37+11)&255 = 0xFB: element 128+16 (sub-block 9, q=3) */
    expect("Q2_K", 144, 0.5f * 9 * 3 - 0.25f * 6);
}

/* 6-bit Q3_K scale k: low nibble in byte k (k<8) or the high nibble of byte k-8; top two
 * bits in byte 8 + k%4 at bit 2*(k/4). */
static void pack_q3_K_scales(uint8_t sc[12], const int v[16])
{
    memset(sc, 0, 12);
    for (int k = 0; k < 16; k++) {
        if (k < 8)
            sc[k] |= (uint8_t)(v[k] & 15);
        else
            sc[k - 8] |= (uint8_t)((v[k] & 15) << 4);
        sc[8 + k % 4] |= (uint8_t)((v[k] >> 4) << (2 * (k / 4)));
    }
}

static void test_q3_K(void)
{
    blk_q3_K b;
    int sv[16];
    for (int k = 0; k < 16; k++)
        sv[k] = (k * 29 + 5) & 63; /* covers values below and above the 32 bias */
    pack_q3_K_scales(b.scales, sv);
    b.d = H_MHALF;
    for (int j = 0; j < 64; j++)
        b.qs[j] = (uint8_t)(j * 53 + 7);
    for (int j = 0; j < 32; j++)
        b.hmask[j] = (uint8_t)(j * 71 + 3);
    dequant(SI_TYPE_Q3_K, &b, 256);
    for (int i = 0; i < 256; i++) {
        int lo = (b.qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3;
        int hbit = (b.hmask[i % 32] >> (i / 32)) & 1;
        int q = lo - (hbit ? 0 : 4);
        expect("Q3_K", i, -0.5f * (float)((sv[i / 16] - 32) * q));
    }

    /* scale unpacking from literal bytes: byte 0 = 0x21 gives scale 0 low 1 and scale 8
     * low 2; byte 8 = 0xE4 = 11 10 01 00 gives top bits 0,1,2,3 to scales 0,4,8,12 */
    memset(b.scales, 0, 12);
    b.scales[0] = 0x21;
    b.scales[4] = 0x0F;
    b.scales[8] = 0xE4;
    memset(b.hmask, 0xFF, 32); /* no -4 */
    memset(b.qs, 0x55, 64);    /* every code 1 */
    b.d = H_ONE;
    dequant(SI_TYPE_Q3_K, &b, 256);
    expect("Q3_K literal scale 0", 0, (float)(1 - 32));
    expect("Q3_K literal scale 4", 64, (float)((0x0F | 1 << 4) - 32));
    expect("Q3_K literal scale 8", 128, (float)((2 | 2 << 4) - 32));
    expect("Q3_K literal scale 12", 192, (float)((0 | 3 << 4) - 32));
    expect("Q3_K literal scale 1", 16, -32.0f);
    /* hmask bit clear subtracts 4 */
    memset(b.hmask, 0, 32);
    memset(b.qs, 0, 64);
    dequant(SI_TYPE_Q3_K, &b, 256);
    expect("Q3_K hmask clear", 0, (float)((1 - 32) * -4));
}

/* Q4_K/Q5_K 6-bit scale/min of sub-block j: j<4 in the low 6 bits of bytes j and j+4;
 * j>=4: low 4 bits in the nibbles of byte j+4 (scale low, min high), top 2 bits in the
 * top bits of bytes j-4 (scale) and j (min). */
static void pack_k4_scales(uint8_t q[12], const int sc[8], const int m[8])
{
    memset(q, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            q[j] |= (uint8_t)sc[j];
            q[j + 4] |= (uint8_t)m[j];
        } else {
            q[j + 4] |= (uint8_t)((sc[j] & 15) | ((m[j] & 15) << 4));
            q[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            q[j] |= (uint8_t)((m[j] >> 4) << 6);
        }
    }
}

static void test_q45_K(int five)
{
    const char *what = five ? "Q5_K" : "Q4_K";
    int sc[8], m[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = 63 - 5 * j;  /* >= 16 in every sub-block: top bits in use */
        m[j] = 7 * j + 13;
    }
    uint8_t scales[12], qs[128], qh[32];
    pack_k4_scales(scales, sc, m);
    for (int j = 0; j < 128; j++)
        qs[j] = (uint8_t)(j * 91 + 17);
    for (int j = 0; j < 32; j++)
        qh[j] = (uint8_t)(j * 43 + 29);
    if (five) {
        blk_q5_K b;
        b.d = H_HALF;
        b.dmin = H_QUARTER;
        memcpy(b.scales, scales, 12);
        memcpy(b.qs, qs, 128);
        memcpy(b.qh, qh, 32);
        dequant(SI_TYPE_Q5_K, &b, 256);
    } else {
        blk_q4_K b;
        b.d = H_HALF;
        b.dmin = H_QUARTER;
        memcpy(b.scales, scales, 12);
        memcpy(b.qs, qs, 128);
        dequant(SI_TYPE_Q4_K, &b, 256);
    }
    for (int i = 0; i < 256; i++) {
        int s = i / 32;
        int byte = qs[32 * (s / 2) + i % 32];
        int q = (s % 2) ? byte >> 4 : byte & 15;
        if (five)
            q += ((qh[i % 32] >> s) & 1) << 4;
        expect(what, i, 0.5f * (float)(sc[s] * q) - 0.25f * (float)m[s]);
    }

    /* literal bytes: sub-block 0 from byte 0 (scale) / 4 (min); sub-block 5 from byte 9
     * (0xA7: scale low 7, min low 10) plus top bits of byte 1 (scale) and byte 5 (min) */
    memset(scales, 0, 12);
    scales[0] = 0x3F;         /* scale0 = 63 */
    scales[4] = 0x05;         /* min0 = 5 */
    scales[1] = 0x80;         /* scale5 top bits = 2; scale1 = 0 */
    scales[5] = 0xC0;         /* min5 top bits = 3; min1 = 0 */
    scales[9] = 0xA7;
    memset(qs, 0x11, 128);    /* every code 1 */
    memset(qh, 0, 32);
    if (five) {
        blk_q5_K b;
        b.d = H_ONE;
        b.dmin = H_ONE;
        memcpy(b.scales, scales, 12);
        memcpy(b.qs, qs, 128);
        memcpy(b.qh, qh, 32);
        b.qh[0] = 0x20; /* element 0 of sub-block 5 gets +16 */
        dequant(SI_TYPE_Q5_K, &b, 256);
        expect("Q5_K literal sub-block 5 high bit", 160, (float)((7 | 2 << 4) * 17 - (10 | 3 << 4)));
    } else {
        blk_q4_K b;
        b.d = H_ONE;
        b.dmin = H_ONE;
        memcpy(b.scales, scales, 12);
        memcpy(b.qs, qs, 128);
        dequant(SI_TYPE_Q4_K, &b, 256);
        expect("Q4_K literal sub-block 5", 160, (float)((7 | 2 << 4) - (10 | 3 << 4)));
    }
    expect(what, 0, 63.0f - 5.0f);
    expect(what, 32, 0.0f);
    expect(what, 161, (float)((7 | 2 << 4) - (10 | 3 << 4)));
}

/* Q6_K: element i, half h = i/128, r = i%128, quarter g = r/32, l = r%32: low 4 bits from
 * ql[64h + l + 32*(g%2)] (low nibble for g<2, high for g>=2), top 2 bits from
 * qh[32h + l] at bit 2g; value (q - 32) * d * scales[i/16] with signed scales. */
static void test_q6_K(void)
{
    blk_q6_K b;
    b.d = H_HALF;
    for (int k = 0; k < 16; k++)
        b.scales[k] = (int8_t)(k * 17 - 128); /* -128 .. 127 */
    for (int j = 0; j < 128; j++)
        b.ql[j] = (uint8_t)(j * 59 + 1);
    for (int j = 0; j < 64; j++)
        b.qh[j] = (uint8_t)(j * 97 + 13);
    dequant(SI_TYPE_Q6_K, &b, 256);
    for (int i = 0; i < 256; i++) {
        int h = i / 128, r = i % 128, g = r / 32, l = r % 32;
        int lo = (b.ql[64 * h + l + 32 * (g % 2)] >> (g >= 2 ? 4 : 0)) & 15;
        int hi = (b.qh[32 * h + l] >> (2 * g)) & 3;
        int q = (lo | hi << 4) - 32;
        expect("Q6_K", i, 0.5f * (float)(b.scales[i / 16] * q));
    }
    /* extremes: code 0 (-32) with scale -128 and code 63 (+31) with scale 127 */
    memset(b.ql, 0, 128);
    memset(b.qh, 0, 64);
    b.ql[0] = 0xF0; /* element 64: low 4 bits 15 */
    b.qh[0] = 0x30; /* element 64: top bits 3 -> code 63 */
    b.scales[0] = -128;
    b.scales[4] = 127;
    dequant(SI_TYPE_Q6_K, &b, 256);
    expect("Q6_K min code", 0, 0.5f * -128.0f * -32.0f);
    expect("Q6_K max code", 64, 0.5f * 127.0f * 31.0f);
}

int main(void)
{
    test_f32_f16();
    test_q4_0();
    test_q8_0();
    test_q2_K();
    test_q3_K();
    test_q45_K(0);
    test_q45_K(1);
    test_q6_K();
    printf("ok\n");
    return 0;
}
