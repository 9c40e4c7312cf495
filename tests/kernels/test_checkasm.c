/* checkasm-style: every kernel a SIMD set of this build provides (an entry that differs
 * from the C reference set's) against the reference, on random blocks and edge cases.
 *
 * - mat_dot: weight rows at odd addresses and strides, 1 to many blocks, 1..9 tokens
 *   plus the chunk boundaries 16, 63..65, 70, strided activations and outputs (the
 *   padding must stay untouched), and a token's result alone must equal its result
 *   within the batch bit for bit. Random, zero, max/min codes, extreme scales: within a
 *   tolerance relative to sum |w * a| (float summation order differs). "Exact" cases
 *   (power-of-two scales, small codes: every float step is exact in both orders) must
 *   match bit for bit, which checks the integer parts exactly. Kernels that keep the
 *   reference's float order (neon's Q4_0, Q8_0, Q2_K) must match bit for bit throughout.
 * - quantize (Q8_0, Q8_K, F16): byte-exact with the reference on finite input.
 * - rmsnorm, silu_mul, rope, attend: tight relative tolerance (attend: a head alone
 *   bit for bit as among others).
 * - kv_widen: bit for bit.
 *
 * SI_CHECKASM_SET=name tests one set only; SI_CHECKASM_SEED changes the seed. Skips
 * (77) when the build has no SIMD set for this CPU. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "streaminfer/kernels.h"
#include "streaminfer/types.h"
#include "src/kernels/blocks.h"
#include "../test_util.h"
#include "block_fields.h"

#define MAX_N (20 * SI_QK_K)
#define MAX_ROWS 5
#define MAX_TOK 70
#define PAD 7

static const si_type weight_types[] = {SI_TYPE_F32,  SI_TYPE_F16,  SI_TYPE_Q4_0, SI_TYPE_Q8_0, SI_TYPE_Q2_K,
                                       SI_TYPE_Q3_K, SI_TYPE_Q4_K, SI_TYPE_Q5_K, SI_TYPE_Q6_K};

static const si_kernels *R, *K; /* reference, set under test */
static test_rng rng;
static long checks;
static double worst;

static uint8_t *wbuf, *abuf;   /* weights, activations (at odd offsets or aligned) */
static float *out_ref, *out_k;  /* [MAX_TOK][MAX_ROWS + PAD] */
static float *xs, *wf, *af;

static void put_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

static uint16_t half_of(double v) { return si_fp32_to_fp16((float)v); }

static double rnd_sign(void) { return (test_rng_u32(&rng) & 1) ? -1.0 : 1.0; }

/* ---- data ----------------------------------------------------------------------------- */

enum fill { F_RANDOM, F_ZERO, F_MAX, F_MIN, F_EXACT };
static const char *fill_name[] = {"random", "zero", "max", "min", "exact"};

/* One weight row of n elements at p. Scales: random magnitude in [slo, shi] with a
 * random sign; F_EXACT: powers of two and, for the plain float types, small integers. */
static void make_row(uint8_t *p, si_type t, int64_t n, enum fill fill, double slo, double shi)
{
    const si_type_traits *tr = si_type_get(t);
    size_t bytes = si_row_size(t, n);
    if (t == SI_TYPE_F32 || t == SI_TYPE_F16) {
        for (int64_t i = 0; i < n; i++) {
            double v = fill == F_ZERO ? 0.0
                     : fill == F_MAX  ? shi
                     : fill == F_MIN  ? -shi
                     : fill == F_EXACT ? (double)((int)(test_rng_u32(&rng) % 17) - 8) * 0.25
                                      : test_rng_range(&rng, -shi, shi);
            if (t == SI_TYPE_F32) {
                float f = (float)v;
                memcpy(p + 4 * i, &f, 4);
            } else {
                put_u16(p + 2 * i, half_of(v));
            }
        }
        return;
    }
    if (fill == F_ZERO)
        memset(p, 0, bytes);
    else if (fill == F_MAX)
        memset(p, t == SI_TYPE_Q8_0 ? 0x7F : 0xFF, bytes);
    else if (fill == F_MIN)
        memset(p, t == SI_TYPE_Q8_0 ? 0x80 : 0x00, bytes);
    else
        test_rng_bytes(&rng, p, bytes);
    if (fill == F_EXACT && t == SI_TYPE_Q8_0) /* keep |codes| small so sums stay exact */
        for (int64_t b = 0; b < n / 32; b++)
            for (int j = 0; j < 32; j++)
                p[b * 34 + 2 + j] = (uint8_t)(int8_t)((int)(test_rng_u32(&rng) % 9) - 4);
    size_t off[2];
    int nh = half_fields(t, off);
    for (int64_t b = 0; b < n / tr->blck_size; b++)
        for (int k = 0; k < nh; k++) {
            uint16_t h;
            if (fill == F_ZERO)
                h = 0;
            else if (fill == F_EXACT)
                h = half_of(rnd_sign() * ldexp(1.0, -(int)(test_rng_u32(&rng) % 4)));
            else if (fill == F_MAX || fill == F_MIN)
                h = half_of((k ? -1 : 1) * shi);
            else
                h = half_of(rnd_sign() * exp(test_rng_range(&rng, log(slo), log(shi))));
            put_u16(p + b * tr->type_size + off[k], h);
        }
}

/* One token's activations of type at (n elements) at p: quantized by the reference from
 * floats of magnitude `scale`, or (raw) arbitrary codes with consistent bsums: Q8_0's
 * incl. -128, Q8_K's in the quantizers' range -127..127 (si_mat_dot_fn); F_EXACT:
 * power-of-two scales and codes within +-2. */
static void make_act(uint8_t *p, si_type at, int64_t n, enum fill fill, double scale, bool raw)
{
    if (fill == F_ZERO) {
        memset(xs, 0, (size_t)n * sizeof(float));
        R->quantize[at](xs, p, n);
        return;
    }
    if (fill == F_EXACT || raw) {
        if (at == SI_TYPE_F32 || at == SI_TYPE_F16) {
            for (int64_t i = 0; i < n; i++)
                xs[i] = fill == F_EXACT ? (float)((int)(test_rng_u32(&rng) % 9) - 4) * 0.5f
                                        : (float)test_rng_range(&rng, -scale, scale);
            R->quantize[at](xs, p, n);
        } else if (at == SI_TYPE_Q8_0) {
            for (int64_t b = 0; b < n / 32; b++) {
                blk_q8_0 y;
                y.d = fill == F_EXACT ? half_of(rnd_sign() * ldexp(1.0, -(int)(test_rng_u32(&rng) % 3)))
                                      : half_of(rnd_sign() * scale / 127.0);
                for (int j = 0; j < 32; j++)
                    y.qs[j] = fill == F_EXACT ? (int8_t)((int)(test_rng_u32(&rng) % 5) - 2) : (int8_t)test_rng_u32(&rng);
                si_blk_store(p, b, &y);
            }
        } else {
            for (int64_t b = 0; b < n / SI_QK_K; b++) {
                blk_q8_K y;
                y.d = fill == F_EXACT ? (float)(rnd_sign() * ldexp(1.0, -(int)(test_rng_u32(&rng) % 3)))
                                      : (float)(rnd_sign() * scale / 127.0);
                for (int j = 0; j < SI_QK_K; j++)
                    y.qs[j] = fill == F_EXACT ? (int8_t)((int)(test_rng_u32(&rng) % 5) - 2)
                                              : (int8_t)((int)(test_rng_u32(&rng) % 255) - 127);
                if (fill == F_MAX)
                    memset(y.qs, 127, sizeof y.qs);
                if (fill == F_MIN)
                    memset(y.qs, -127, sizeof y.qs);
                for (int k = 0; k < 16; k++) {
                    int s = 0;
                    for (int j = 0; j < 16; j++)
                        s += y.qs[16 * k + j];
                    y.bsums[k] = (int16_t)s;
                }
                si_blk_store(p, b, &y);
            }
        }
        return;
    }
    double s = at == SI_TYPE_F16 && scale > 1000 ? 1000 : scale;
    for (int64_t i = 0; i < n; i++)
        xs[i] = fill == F_MAX ? (float)s : fill == F_MIN ? (float)-s : (float)test_rng_range(&rng, -s, s);
    R->quantize[at](xs, p, n);
}

/* Activations as floats, from their blocks (independent of library code). */
static void deq_act(const uint8_t *p, si_type at, int64_t n)
{
    if (at == SI_TYPE_F32) {
        memcpy(af, p, (size_t)n * 4);
    } else if (at == SI_TYPE_F16) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            af[i] = si_fp16_to_fp32(h);
        }
    } else if (at == SI_TYPE_Q8_0) {
        for (int64_t b = 0; b < n / 32; b++) {
            blk_q8_0 y;
            si_blk_load(&y, p, b);
            for (int j = 0; j < 32; j++)
                af[b * 32 + j] = (float)y.qs[j] * si_fp16_to_fp32(y.d);
        }
    } else {
        for (int64_t b = 0; b < n / SI_QK_K; b++) {
            blk_q8_K y;
            si_blk_load(&y, p, b);
            for (int j = 0; j < SI_QK_K; j++)
                af[b * SI_QK_K + j] = (float)y.qs[j] * y.d;
        }
    }
}

/* ---- mat_dot ---------------------------------------------------------------------------- */

static const float SENTINEL = -1234.5f;

static void check_mat_dot(si_type t, int64_t n, int64_t n_rows, int64_t n_tok, enum fill wfill, enum fill afill,
                          double slo, double shi, double ascale, bool raw)
{
    const si_type_traits *tr = si_type_get(t);
    const si_type at = tr->vec_dot_type;
    const size_t rs = si_row_size(t, n), as = si_row_size(at, n);
    /* half the calls at odd offsets and strides, half 4-byte aligned throughout (the
     * engine's case; some kernels take a faster path then) */
    const bool aligned = (test_rng_u32(&rng) & 1) && rs % 4 == 0 && as % 4 == 0;
    const size_t row_bytes = aligned ? rs + 4 * (test_rng_u32(&rng) % 2) : rs + test_rng_u32(&rng) % 5;
    const size_t act_stride = aligned ? as + 4 * (test_rng_u32(&rng) % 3) : as + test_rng_u32(&rng) % 9;
    const size_t out_stride = (size_t)n_rows + test_rng_u32(&rng) % (PAD + 1);
    uint8_t *w = wbuf + (aligned ? 0 : 1), *a = abuf + (aligned ? 0 : 3);
    CHECK(row_bytes * (size_t)n_rows + 8 <= (size_t)MAX_N * 4 * MAX_ROWS + 64);
    CHECK(act_stride * (size_t)n_tok + 8 <= (size_t)MAX_N * 4 * MAX_TOK + 64);

    for (int64_t r = 0; r < n_rows; r++)
        make_row(w + (size_t)r * row_bytes, t, n, wfill, slo, shi);
    for (int64_t k = 0; k < n_tok; k++)
        make_act(a + (size_t)k * act_stride, at, n, afill, ascale, raw);

    size_t nout = (size_t)n_tok * out_stride;
    for (size_t i = 0; i < nout; i++)
        out_ref[i] = out_k[i] = SENTINEL;
    R->mat_dot[t](t, n, w, row_bytes, n_rows, a, act_stride, n_tok, out_ref, out_stride);
    K->mat_dot[t](t, n, w, row_bytes, n_rows, a, act_stride, n_tok, out_k, out_stride);

    /* a token's result must not depend on the batch it comes in (prompt and generation
     * steps, or runs with different budgets, must agree bit for bit) */
    if (n_tok > 1) {
        int64_t k = (int64_t)(test_rng_u32(&rng) % (uint32_t)n_tok);
        float single[MAX_ROWS];
        K->mat_dot[t](t, n, w, row_bytes, n_rows, a + (size_t)k * act_stride, act_stride, 1, single, (size_t)n_rows);
        for (int64_t c = 0; c < n_rows; c++)
            CHECKF(memcmp(&single[c], &out_k[(size_t)k * out_stride + (size_t)c], sizeof(float)) == 0,
                   "%s mat_dot %s n=%lld: token %lld of %lld gives %.9g in the batch, %.9g alone", K->name, tr->name,
                   (long long)n, (long long)k, (long long)n_tok, (double)out_k[(size_t)k * out_stride + (size_t)c],
                   (double)single[c]);
    }

    /* neon adds Q4_0, Q8_0 and Q2_K terms in the reference's order with its roundings
     * (src/kernels/neon/): bit for bit there, whatever the data */
    const bool same_order = strcmp(K->name, "neon") == 0 &&
                            (t == SI_TYPE_Q4_0 || t == SI_TYPE_Q8_0 || t == SI_TYPE_Q2_K);
    const bool exact = (wfill == F_EXACT && afill == F_EXACT) || same_order;
    const double unit = t == SI_TYPE_F32 || t == SI_TYPE_F16 ? 8.0 : (double)tr->blck_size;
    /* a few roundings per block or per 8 floats, in both the reference and the kernel */
    const double tol = 0x1p-24 * (16.0 + 4.0 * (double)n / unit);
    for (int64_t k = 0; k < n_tok; k++) {
        deq_act(a + (size_t)k * act_stride, at, n);
        for (size_t c = 0; c < out_stride; c++) {
            const size_t o = (size_t)k * out_stride + c;
            if ((int64_t)c >= n_rows) {
                CHECKF(out_k[o] == SENTINEL, "%s %s: wrote outside its rows (token %lld, column %zu)", K->name,
                       tr->name, (long long)k, c);
                continue;
            }
            tr->to_float(w + c * row_bytes, wf, n);
            double mag = 0;
            for (int64_t i = 0; i < n; i++)
                mag += fabs((double)wf[i] * (double)af[i]);
            const double got = out_k[o], want = out_ref[o];
            const double err = fabs(got - want);
            bool ok = exact ? got == want || (isnan(got) && isnan(want))
                            : (err <= tol * mag || (isnan(got) && isnan(want)) || got == want);
            CHECKF(ok,
                   "%s mat_dot %s (%s weights, %s%s acts) n=%lld rows=%lld tok=%lld: row %zu token %lld: %.9g, "
                   "reference %.9g (|err| %.3g, allowed %.3g)",
                   K->name, tr->name, fill_name[wfill], fill_name[afill], raw ? " raw" : "", (long long)n,
                   (long long)n_rows, (long long)n_tok, c, (long long)k, got, want, err, exact ? 0.0 : tol * mag);
            if (mag > 0 && err / mag > worst)
                worst = err / mag;
            checks++;
        }
    }
}

/* Every half through the set's F16 conversion, exactly: rows of 32 copies of one half h
 * dotted with 32 activations of 2^-5 sum to h exactly (or inf, or NaN); compared with
 * si_fp16_to_fp32. */
static void test_f16_all_halves(void)
{
    enum { ROWS = 512, N = 32 };
    uint8_t *w = wbuf, *a = abuf;
    float got[ROWS];
    for (int i = 0; i < N; i++)
        put_u16(a + 2 * i, si_fp32_to_fp16(0x1p-5f));
    for (uint32_t h0 = 0; h0 < 65536; h0 += ROWS) {
        for (uint32_t r = 0; r < ROWS; r++)
            for (int i = 0; i < N; i++)
                put_u16(w + (size_t)r * 2 * N + 2 * (size_t)i, (uint16_t)(h0 + r));
        K->mat_dot[SI_TYPE_F16](SI_TYPE_F16, N, w, 2 * N, ROWS, a, 2 * N, 1, got, ROWS);
        for (uint32_t r = 0; r < ROWS; r++) {
            const float want = si_fp16_to_fp32((uint16_t)(h0 + r));
            CHECKF(got[r] == want || (isnan(got[r]) && isnan(want)), "%s F16 half 0x%04x: %.9g, want %.9g", K->name,
                   (unsigned)(h0 + r), (double)got[r], (double)want);
            checks++;
        }
    }
}

static void test_mat_dot(si_type t)
{
    const si_type_traits *tr = si_type_get(t);
    const int64_t unit = tr->blck_size == 1 ? 32 : tr->blck_size;
    const int nbs[] = {1, 2, 3, 8, 17};
    const int toks[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 63, 64, 65, 70};
    for (size_t bi = 0; bi < sizeof nbs / sizeof nbs[0]; bi++) {
        int64_t n = unit * nbs[bi];
        if (n > MAX_N)
            continue;
        for (size_t ki = 0; ki < sizeof toks / sizeof toks[0]; ki++) {
            int64_t nt = toks[ki], rows = 1 + (int64_t)(test_rng_u32(&rng) % MAX_ROWS);
            if (nt > 9 && nbs[bi] > 3)
                continue; /* long steps on short rows keep the run short */
            check_mat_dot(t, n, rows, nt, F_RANDOM, F_RANDOM, 1e-3, 1.0, pow(10, test_rng_range(&rng, -2, 2)), false);
            check_mat_dot(t, n, rows, nt, F_RANDOM, F_RANDOM, 1e-3, 1.0, 1.0, true);
            check_mat_dot(t, n, rows, nt, F_EXACT, F_EXACT, 0, 0, 0, false);
        }
        /* edge cases, a few token counts each */
        for (int nt = 1; nt <= 9; nt += 4) {
            check_mat_dot(t, n, 3, nt, F_ZERO, F_RANDOM, 1e-3, 1.0, 1.0, false);
            check_mat_dot(t, n, 3, nt, F_RANDOM, F_ZERO, 1e-3, 1.0, 1.0, false);
            check_mat_dot(t, n, 2, nt, F_MAX, F_RANDOM, 1.0, 1.0, 1.0, false);
            check_mat_dot(t, n, 2, nt, F_MIN, F_RANDOM, 1.0, 1.0, 1.0, false);
            check_mat_dot(t, n, 2, nt, F_MAX, F_MAX, 1.0, 1.0, 1.0, true);
            check_mat_dot(t, n, 2, nt, F_MIN, F_MIN, 1.0, 1.0, 1.0, true);
            check_mat_dot(t, n, 2, nt, F_MAX, F_MIN, 1.0, 1.0, 1.0, true);
            /* extreme scales: the largest and tiny (subnormal) fp16 weight scales */
            check_mat_dot(t, n, 2, nt, F_RANDOM, F_RANDOM, 60000.0, 65504.0, 1e-2, false);
            check_mat_dot(t, n, 2, nt, F_RANDOM, F_RANDOM, 6e-8, 1e-6, 1e3, false);
            check_mat_dot(t, n, 2, nt, F_MAX, F_RANDOM, 65504.0, 65504.0, 1e-2, false);
        }
    }
}

/* ---- quantizers --------------------------------------------------------------------- */

static void check_quant(si_type at, int64_t n, const char *what)
{
    size_t bytes = si_row_size(at, n);
    uint8_t *p1 = wbuf + 1, *p2 = abuf + 3;
    memset(p1, 0xAA, bytes + 8);
    memset(p2, 0xAA, bytes + 8);
    R->quantize[at](xs, p1, n);
    K->quantize[at](xs, p2, n);
    for (size_t i = 0; i < bytes + 8; i++)
        CHECKF(p1[i] == p2[i], "%s quantize %s (%s, n=%lld): byte %zu: %02x, reference %02x", K->name,
               si_type_name(at), what, (long long)n, i, p2[i], p1[i]);
    checks++;
}

static void test_quant(si_type at)
{
    const int64_t unit = si_type_get(at)->blck_size == 1 ? 32 : si_type_get(at)->blck_size;
    const int nbs[] = {1, 2, 5};
    for (size_t bi = 0; bi < 3; bi++) {
        int64_t n = unit * nbs[bi] + (at == SI_TYPE_F16 ? 3 : 0);
        for (int rep = 0; rep < 40; rep++) {
            double s = pow(10, test_rng_range(&rng, -30, 30));
            if (at == SI_TYPE_F16)
                s = pow(10, test_rng_range(&rng, -8, 4.8));
            for (int64_t i = 0; i < n; i++)
                xs[i] = (float)test_rng_range(&rng, -s, s);
            if (rep % 3 == 1) /* a single outlier, sometimes negative */
                xs[test_rng_u32(&rng) % n] = (float)(rnd_sign() * s * 10);
            check_quant(at, n, "random");
        }
        memset(xs, 0, sizeof(float) * (size_t)n);
        check_quant(at, n, "zero");
        /* halves: ties of the rounding (codes exactly k + 0.5 with amax 127) */
        for (int64_t i = 0; i < n; i++)
            xs[i] = (i % 32 == 0) ? 127.0f : (float)((int)(i % 254) - 127) + 0.5f * (float)(i & 1);
        check_quant(at, n, "ties");
        /* equal magnitudes, opposite signs: the first one decides Q8_K's sign */
        for (int64_t i = 0; i < n; i++)
            xs[i] = (float)test_rng_range(&rng, -1, 1);
        xs[n / 3] = -3.0f;
        xs[n / 2] = 3.0f;
        check_quant(at, n, "first max negative");
        for (int64_t i = 0; i < n; i++)
            xs[i] = (i & 1) ? -1.0f : 1.0f;
        check_quant(at, n, "all equal magnitude");
    }
}

/* ---- ops ----------------------------------------------------------------------------- */

static void close_enough(const char *what, const float *got, const float *want, size_t n, double rel, double abs_tol)
{
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        CHECKF(e <= rel * fabs((double)want[i]) + abs_tol, "%s %s: element %zu: %.9g, reference %.9g", K->name, what,
               i, (double)got[i], (double)want[i]);
        checks++;
    }
}

static void test_ops(void)
{
    float *x = malloc(sizeof(float) * 8192), *wv = malloc(sizeof(float) * 8192);
    float *o1 = malloc(sizeof(float) * 8192), *o2 = malloc(sizeof(float) * 8192);
    CHECK(x && wv && o1 && o2);
    const int64_t lens[] = {1, 7, 8, 33, 64, 4096, 5000};
    if (K->rmsnorm != R->rmsnorm)
        for (size_t li = 0; li < 7; li++)
            for (int rep = 0; rep < 6; rep++) {
                int64_t n = lens[li];
                double s = pow(10, test_rng_range(&rng, -6, 6));
                for (int64_t i = 0; i < n; i++) {
                    x[i] = (float)test_rng_range(&rng, -s, s);
                    wv[i] = (float)test_rng_range(&rng, -2, 2);
                }
                if (rep == 0)
                    memset(x, 0, sizeof(float) * (size_t)n);
                R->rmsnorm(o1, x, wv, n, 1e-5f);
                K->rmsnorm(o2, x, wv, n, 1e-5f);
                close_enough("rmsnorm", o2, o1, (size_t)n, 4e-7, 0);
            }
    if (K->silu_mul != R->silu_mul)
        for (size_t li = 0; li < 7; li++)
            for (int rep = 0; rep < 6; rep++) {
                int64_t n = lens[li];
                double s = rep == 0 ? 100 : pow(10, test_rng_range(&rng, -3, 1.5));
                for (int64_t i = 0; i < n; i++) {
                    o1[i] = o2[i] = (float)test_rng_range(&rng, -s, s);
                    wv[i] = (float)test_rng_range(&rng, -3, 3);
                }
                R->silu_mul(o1, wv, n);
                K->silu_mul(o2, wv, n);
                close_enough("silu_mul", o2, o1, (size_t)n, 4e-6, 1e-37);
            }
    if (K->rope != R->rope) {
        float inv[64];
        const uint32_t hds[] = {64, 128, 8, 32};
        for (int hi = 0; hi < 4; hi++) {
            uint32_t hd = hds[hi], nh = 1 + test_rng_u32(&rng) % 8, nrot = hi == 3 ? hd / 2 : hd;
            for (uint32_t i = 0; i < nrot / 2; i++)
                inv[i] = powf(500000.0f, -2.0f * (float)i / (float)nrot);
            for (uint32_t pos = 0; pos < 9000; pos += 1 + pos * 3) {
                for (uint32_t i = 0; i < nh * hd; i++)
                    o1[i] = o2[i] = (float)test_rng_range(&rng, -4, 4);
                R->rope(o1, nh, hd, nrot, inv, pos);
                K->rope(o2, nh, hd, nrot, inv, pos);
                close_enough("rope", o2, o1, nh * hd, 0, 4e-6 * (1 + pos * 1e-3));
            }
        }
    }
    if (K->attend != R->attend) {
        /* nh heads over np positions: against the reference within tolerance, and each
         * head alone (nh = 1) bit for bit as among the others, which is what makes the
         * model's results independent of how heads are split among threads */
        const uint32_t hds[] = {64, 128, 8, 20};
        const size_t cap = 300 * 136; /* positions x largest head or stride */
        float *kt = malloc(4 * cap), *vv = malloc(4 * cap), *sc1 = malloc(4 * 6 * 300), *sc2 = malloc(4 * 6 * 300);
        float *q = malloc(4 * 6 * 128), *a1 = malloc(4 * (6 * 128 + 1)), *a2 = malloc(4 * (6 * 128 + 1));
        float *a3 = malloc(4 * 128);
        CHECK(kt && vv && sc1 && sc2 && q && a1 && a2 && a3);
        for (int hi = 0; hi < 4; hi++)
            for (uint32_t np = 1; np < 300; np += 1 + np) {
                const uint32_t hd = hds[hi], nh = 1 + test_rng_u32(&rng) % 6;
                const size_t stride = np + (hi & 1) * 5;
                const bool f16 = test_rng_u32(&rng) & 1; /* values an F16 cache holds */
                for (size_t i = 0; i < stride * hd; i++)
                    kt[i] = (float)test_rng_range(&rng, -2, 2);
                for (size_t i = 0; i < (size_t)np * hd; i++)
                    vv[i] = (float)test_rng_range(&rng, -2, 2);
                for (uint32_t i = 0; i < nh * hd; i++)
                    q[i] = (float)test_rng_range(&rng, -2, 2);
                if (f16) {
                    for (size_t i = 0; i < stride * hd; i++)
                        kt[i] = si_fp16_to_fp32(si_fp32_to_fp16(kt[i]));
                    for (size_t i = 0; i < (size_t)np * hd; i++)
                        vv[i] = si_fp16_to_fp32(si_fp32_to_fp16(vv[i]));
                }
                const float scale = 1.0f / sqrtf((float)hd);
                a2[nh * hd] = 12345.0f;
                R->attend(a1, q, nh, kt, stride, vv, np, hd, scale, sc1);
                K->attend(a2, q, nh, kt, stride, vv, np, hd, scale, sc2);
                close_enough("attend", a2, a1, nh * hd, 2e-5, 2e-6);
                CHECKF(a2[nh * hd] == 12345.0f, "%s attend: wrote past %u heads of %u", K->name, nh, hd);
                for (uint32_t h = 0; h < nh; h++) {
                    K->attend(a3, q + h * hd, 1, kt, stride, vv, np, hd, scale, sc2);
                    CHECKF(memcmp(a3, a2 + h * hd, hd * sizeof(float)) == 0,
                           "%s attend: head %u of %u (head size %u, %u positions) differs when alone", K->name, h, nh,
                           hd, np);
                    checks++;
                }
            }
        free(kt), free(vv), free(sc1), free(sc2), free(q), free(a1), free(a2), free(a3);
    }
    if (K->kv_widen != R->kv_widen) {
        /* every half (infinities, NaNs and subnormals too) and random float bits, to a
         * dense and to a strided destination: bit for bit but for NaN payloads, nothing
         * written between */
        const uint32_t ns[] = {1, 7, 8, 20, 128, 300};
        uint16_t *h = malloc(2 * 65536);
        uint32_t *f = malloc(4 * 300);
        float *d1 = malloc(4 * 300 * 5), *d2 = malloc(4 * 300 * 5);
        CHECK(h && f && d1 && d2);
        for (uint32_t i = 0; i < 65536; i++)
            h[i] = (uint16_t)i;
        for (uint32_t i = 0; i < 300; i++)
            f[i] = test_rng_u32(&rng);
        for (int f16 = 0; f16 < 2; f16++)
            for (size_t ni = 0; ni < 6; ni++)
                for (size_t stride = 1; stride <= 5; stride += 4) {
                    const uint32_t n = ns[ni];
                    for (uint32_t off = 0; off + n <= (f16 ? 65536u : n); off += f16 ? n * 7 + 1 : n) {
                        const void *src = f16 ? (const void *)(h + off) : (const void *)f;
                        memset(d1, 0x5A, 4 * 300 * 5), memset(d2, 0x5A, 4 * 300 * 5);
                        R->kv_widen(d1, stride, src, f16, n);
                        K->kv_widen(d2, stride, src, f16, n);
                        /* a NaN stays a NaN (F16C and FCVT quiet a signalling one) */
                        for (size_t i = 0; i < 300 * 5; i++) {
                            const bool same = memcmp(d1 + i, d2 + i, 4) == 0 || (isnan(d1[i]) && isnan(d2[i]));
                            CHECKF(same, "%s kv_widen: %s, %u values, stride %zu, from %u: element %zu", K->name,
                                   f16 ? "f16" : "f32", n, stride, off, i);
                        }
                        checks++;
                    }
                }
        free(h), free(f), free(d1), free(d2);
    }
    free(x), free(wv), free(o1), free(o2);
}

int main(void)
{
    const char *only = getenv("SI_CHECKASM_SET");
    const char *seed = getenv("SI_CHECKASM_SEED");
    static const char *const sets[] = {"avx2", "rvv", "neon"};
    R = si_kernels_ref();
    wbuf = malloc((size_t)MAX_N * 4 * MAX_ROWS + 64);
    abuf = malloc((size_t)MAX_N * 4 * MAX_TOK + 64);
    out_ref = malloc(sizeof(float) * MAX_TOK * (MAX_ROWS + PAD));
    out_k = malloc(sizeof(float) * MAX_TOK * (MAX_ROWS + PAD));
    xs = malloc(sizeof(float) * MAX_N);
    wf = malloc(sizeof(float) * MAX_N);
    af = malloc(sizeof(float) * MAX_N);
    CHECK(wbuf && abuf && out_ref && out_k && xs && wf && af);

    int tested = 0;
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
        if (only && strcmp(only, sets[s]) != 0)
            continue;
        K = si_kernels_get(sets[s]);
        if (!K) {
            printf("%s: not available in this build or on this CPU\n", sets[s]);
            continue;
        }
        test_rng_seed(&rng, seed ? strtoull(seed, NULL, 0) : 20261125);
        checks = 0;
        worst = 0;
        int n_kernels = 0;
        for (size_t ti = 0; ti < sizeof weight_types / sizeof weight_types[0]; ti++) {
            si_type t = weight_types[ti];
            if (K->mat_dot[t] == R->mat_dot[t])
                continue;
            test_mat_dot(t);
            if (t == SI_TYPE_F16)
                test_f16_all_halves();
            n_kernels++;
            printf("%s: mat_dot %s ok\n", K->name, si_type_name(t));
            fflush(stdout);
        }
        const si_type acts[] = {SI_TYPE_Q8_0, SI_TYPE_Q8_K, SI_TYPE_F16};
        for (size_t ai = 0; ai < 3; ai++)
            if (K->quantize[acts[ai]] != R->quantize[acts[ai]]) {
                test_quant(acts[ai]);
                n_kernels++;
                printf("%s: quantize %s ok\n", K->name, si_type_name(acts[ai]));
            }
        test_ops();
        n_kernels += (K->rmsnorm != R->rmsnorm) + (K->silu_mul != R->silu_mul) + (K->rope != R->rope) +
                     (K->attend != R->attend) + (K->kv_widen != R->kv_widen);
        printf("%s: %d kernels, %ld checks passed; worst mat_dot error %.3g of sum |w*a|\n", K->name, n_kernels,
               checks, worst);
        tested++;
    }
    free(wbuf), free(abuf), free(out_ref), free(out_k), free(xs), free(wf), free(af);
    if (!tested) {
        printf("no SIMD kernel set to check\n");
        return TEST_SKIP;
    }
    return 0;
}
