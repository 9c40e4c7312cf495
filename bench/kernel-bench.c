/* kernel-bench: weights per second of each matrix kernel (mat_dot) per kernel set and
 * batch width, the way the forward pass calls it: blocks of ROWS rows of N columns
 * against B tokens' activations.
 *
 *   kernel-bench [--sets c,avx2,rvv,neon] [--types Q2_K,Q4_K,...] [--batch 1,4,8,16,32]
 *                [--n 4096] [--rows 64] [--time SECONDS] [--reps R] [--best 1]
 *
 * Timed mode (default): each (set, type, B) runs until --time seconds (default 0.3) have
 * passed and prints weights consumed per second (each weight counted once per call,
 * whatever B) and per-token weights per second (times B), and the speed-up over the C
 * reference at the same B. --best 1 reports the fastest single call instead of the mean
 * over the --time window: on shared, noisy cores the mean swings by tens of percent
 * between runs, the fastest call much less.
 *
 * Counting mode (--reps R): exactly R calls of one configuration and no timing output,
 * for instruction counts under qemu: run it with R and with 1 under the counting plugin
 * (bench/qemu-insn.c) and divide the difference by (R - 1) * N * ROWS; see
 * docs/BENCHMARKS.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "streaminfer/kernels.h"
#include "streaminfer/types.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x5eed;
static uint32_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static float rndf(void) { return (float)rnd() / 4294967296.0f * 2.0f - 1.0f; }

/* A weight matrix with valid blocks: random floats quantized would need quantizers for
 * weight types, which the engine does not have; random bytes with sane fp16 scales do
 * (the kernels' cost does not depend on the values). */
static void fill_weights(uint32_t type, uint8_t *w, int64_t n, int64_t rows)
{
    const si_type_traits *tr = si_type_get(type);
    size_t rb = si_row_size(type, n);
    for (size_t i = 0; i < rb * (size_t)rows; i++)
        w[i] = (uint8_t)rnd();
    if (type == SI_TYPE_F32) {
        for (int64_t i = 0; i < n * rows; i++) {
            float f = rndf();
            memcpy(w + 4 * i, &f, 4);
        }
        return;
    }
    if (type == SI_TYPE_F16) {
        for (int64_t i = 0; i < n * rows; i++) {
            uint16_t h = si_fp32_to_fp16(rndf());
            memcpy(w + 2 * i, &h, 2);
        }
        return;
    }
    /* every fp16 field of these blocks: d (and dmin) at the offsets below */
    size_t off[2];
    int nh = 0;
    switch (type) {
    case SI_TYPE_Q4_0: case SI_TYPE_Q8_0: off[0] = 0; nh = 1; break;
    case SI_TYPE_Q2_K: off[0] = 80; off[1] = 82; nh = 2; break;
    case SI_TYPE_Q3_K: off[0] = 108; nh = 1; break;
    case SI_TYPE_Q4_K: case SI_TYPE_Q5_K: off[0] = 0; off[1] = 2; nh = 2; break;
    case SI_TYPE_Q6_K: off[0] = 208; nh = 1; break;
    default: break;
    }
    for (int64_t b = 0; b < n / tr->blck_size * rows; b++)
        for (int k = 0; k < nh; k++) {
            uint16_t h = si_fp32_to_fp16(0.01f * (1.0f + rndf()));
            memcpy(w + (size_t)b * tr->type_size + off[k], &h, 2);
        }
}

static int parse_list(const char *s, char out[][16], int max)
{
    int n = 0;
    while (*s && n < max) {
        size_t l = strcspn(s, ",");
        snprintf(out[n++], 16, "%.*s", (int)l, s);
        s += l + (s[l] == ',');
    }
    return n;
}

static uint32_t type_by_name(const char *name)
{
    for (uint32_t t = 0; t < SI_TYPE_COUNT; t++)
        if (si_type_get(t) && strcmp(si_type_get(t)->name, name) == 0)
            return t;
    return SI_TYPE_COUNT;
}

int main(int argc, char **argv)
{
    char sets[5][16], types[16][16], batch_s[16][16];
    int n_sets = parse_list("c,avx2,rvv,neon", sets, 5);
    int n_types = parse_list("Q2_K,Q3_K,Q4_K,Q5_K,Q6_K,Q4_0,Q8_0,F16,F32", types, 16);
    int n_batch = parse_list("1,4,8,16,32", batch_s, 16);
    int64_t n = 4096, rows = 64;
    double min_time = 0.3;
    long reps = 0;
    int best = 0;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "kernel-bench: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--sets")) n_sets = parse_list(v, sets, 5);
        else if (!strcmp(a, "--types")) n_types = parse_list(v, types, 16);
        else if (!strcmp(a, "--batch")) n_batch = parse_list(v, batch_s, 16);
        else if (!strcmp(a, "--n")) n = atoll(v);
        else if (!strcmp(a, "--rows")) rows = atoll(v);
        else if (!strcmp(a, "--time")) min_time = atof(v);
        else if (!strcmp(a, "--reps")) reps = atol(v);
        else if (!strcmp(a, "--best")) best = atoi(v);
        else {
            fprintf(stderr, "usage: kernel-bench [--sets c,avx2,rvv,neon] [--types Q2_K,...] [--batch 1,4,8,16,32] "
                            "[--n N] [--rows R] [--time S] [--reps R] [--best 1]\n");
            return 2;
        }
    }
    if (n <= 0 || n % 256 != 0 || rows <= 0) {
        fprintf(stderr, "kernel-bench: --n must be a positive multiple of 256, --rows positive\n");
        return 2;
    }
    int max_b = 1;
    for (int b = 0; b < n_batch; b++)
        if (atoi(batch_s[b]) > max_b)
            max_b = atoi(batch_s[b]);

    uint8_t *w = malloc((size_t)n * 4 * (size_t)rows);
    uint8_t *act = malloc((size_t)n * 4 * (size_t)max_b);
    float *x = malloc(sizeof(float) * (size_t)n * (size_t)max_b);
    float *out = malloc(sizeof(float) * (size_t)rows * (size_t)max_b);
    if (!w || !act || !x || !out) {
        fprintf(stderr, "kernel-bench: out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < n * max_b; i++)
        x[i] = rndf();

    if (!reps)
        printf("# n=%lld rows=%lld; Mw/s = million weights consumed per second (a weight counts once per call), "
               "per token = Mw/s * B\n%-5s %-5s %3s %10s %12s %8s\n",
               (long long)n, (long long)rows, "set", "type", "B", "Mw/s", "Mw/s/token", "vs c");
    for (int ti = 0; ti < n_types; ti++) {
        uint32_t type = type_by_name(types[ti]);
        const si_type_traits *tr = si_type_get(type < SI_TYPE_COUNT ? type : 0);
        if (type >= SI_TYPE_COUNT || !tr->compute) {
            fprintf(stderr, "kernel-bench: no kernels for type %s\n", types[ti]);
            return 2;
        }
        fill_weights(type, w, n, rows);
        const size_t rb = si_row_size(type, n), ab = si_row_size(tr->vec_dot_type, n);
        for (int bi = 0; bi < n_batch; bi++) {
            const int B = atoi(batch_s[bi]);
            double ref_rate = 0;
            for (int si = 0; si < n_sets; si++) {
                const si_kernels *K = si_kernels_get(sets[si]);
                if (!K)
                    continue;
                for (int b = 0; b < B; b++)
                    K->quantize[tr->vec_dot_type](x + (size_t)b * (size_t)n, act + (size_t)b * ab, n);
                if (reps) {
                    for (long r = 0; r < reps; r++)
                        K->mat_dot[type](type, n, w, rb, rows, act, ab, B, out, (size_t)rows);
                    continue;
                }
                long calls = 0;
                double t0 = now(), t, fastest = INFINITY;
                do {
                    const double c0 = now();
                    K->mat_dot[type](type, n, w, rb, rows, act, ab, B, out, (size_t)rows);
                    t = now();
                    if (t - c0 < fastest)
                        fastest = t - c0;
                    calls++;
                    t -= t0;
                } while (t < min_time);
                double rate = best ? (double)n * (double)rows / fastest / 1e6
                                   : (double)calls * (double)n * (double)rows / t / 1e6;
                if (!strcmp(K->name, "c"))
                    ref_rate = rate;
                printf("%-5s %-5s %3d %10.1f %12.1f", K->name, tr->name, B, rate, rate * B);
                if (ref_rate > 0)
                    printf(" %7.1fx", rate / ref_rate);
                printf("\n");
                fflush(stdout);
            }
        }
    }
    /* keep the results observable so no call is optimized away */
    volatile float sink = out[0];
    (void)sink;
    free(w), free(act), free(x), free(out);
    return 0;
}
