/* Tiny helpers shared by the test programs: checks that report file:line and exit,
 * a seeded RNG so failures reproduce, and reading a whole file.
 * Exit codes follow meson: 0 pass, 77 skip, anything else fail. */
#ifndef SI_TEST_UTIL_H
#define SI_TEST_UTIL_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TEST_SKIP 77

#define FAILF(...)                                                   \
    do {                                                             \
        fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);       \
        fprintf(stderr, __VA_ARGS__);                                \
        fputc('\n', stderr);                                         \
        exit(1);                                                     \
    } while (0)

#define CHECK(cond)                                                  \
    do {                                                             \
        if (!(cond))                                                 \
            FAILF("%s", #cond);                                      \
    } while (0)

/* CHECK with a formatted explanation. */
#define CHECKF(cond, ...)                                            \
    do {                                                             \
        if (!(cond))                                                 \
            FAILF(__VA_ARGS__);                                      \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                            \
    do {                                                                              \
        long long ca_ = (long long)(a), cb_ = (long long)(b);                         \
        if (ca_ != cb_)                                                               \
            FAILF("%s == %s: %lld != %lld", #a, #b, ca_, cb_);                       \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                            \
    do {                                                                              \
        const char *ca_ = (a), *cb_ = (b);                                            \
        if (ca_ == NULL || cb_ == NULL || strcmp(ca_, cb_) != 0)                      \
            FAILF("%s == %s: \"%s\" != \"%s\"", #a, #b, ca_ ? ca_ : "(null)",        \
                  cb_ ? cb_ : "(null)");                                              \
    } while (0)

/* What the test runs under when it is emulated (tools/qemu-rvv.sh sets SI_EMULATED,
 * e.g. "qemu-user riscv64, VLEN 128"), else NULL. The end-to-end tests then run a
 * lighter variant, since every program they start is about a thousand times slower
 * than natively, and print what they leave to the native run. */
static inline const char *test_emulated(void)
{
    const char *e = getenv("SI_EMULATED");
    return e && *e ? e : NULL;
}

/* splitmix64: small, seedable, good enough for test data */
typedef struct {
    uint64_t s;
} test_rng;

static inline void test_rng_seed(test_rng *r, uint64_t seed) { r->s = seed; }

static inline uint64_t test_rng_u64(test_rng *r)
{
    uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static inline uint32_t test_rng_u32(test_rng *r) { return (uint32_t)(test_rng_u64(r) >> 32); }

/* uniform in [0, 1) */
static inline double test_rng_unit(test_rng *r) { return (double)(test_rng_u64(r) >> 11) * 0x1p-53; }

/* uniform in [lo, hi) */
static inline double test_rng_range(test_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * test_rng_unit(r);
}

static inline void test_rng_bytes(test_rng *r, void *dst, size_t n)
{
    uint8_t *p = dst;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)test_rng_u64(r);
}

/* Whole file into a malloc'd buffer (NUL-terminated for convenience); NULL on error. */
static inline void *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
            }
            break;
        }
        char *nb = realloc(buf, 2 * cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        if (len)
            *len = n;
    }
    return buf;
}

/* Write a model with mkmodel (its path is the test's argument) to
 * $SI_BUILD_ROOT/test-models/NAME.gguf; path gets where. Fails the test when mkmodel
 * fails. */
static inline void test_mkmodel(const char *mkmodel, const char *name, const char *args, char *path, size_t len)
{
    const char *root = getenv("SI_BUILD_ROOT") ? getenv("SI_BUILD_ROOT") : ".";
    char dir[4096], cmd[16384];
    snprintf(dir, sizeof dir, "%s/test-models", root);
    mkdir(dir, 0755);
    snprintf(path, len, "%s/%s.gguf", dir, name);
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' %s 2>/dev/null", mkmodel, path, args);
    CHECKF(system(cmd) == 0, "mkmodel failed: %s", cmd);
}

#endif
