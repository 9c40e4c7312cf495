/* The automatic choice of kernel set matches what the CPU has, asked independently of
 * the picker: x86-64 avx2+fma+f16c through cpuid (and the OS saving the AVX state);
 * riscv64 V from the emulated CPU (tools/qemu-rvv.sh exports SI_QEMU_VLEN, 0 for no V)
 * or natively from running one vsetvli, unless the build has no RVV set
 * (-Drv_v=off); aarch64 always neon. Also: selecting the SIMD set by name succeeds
 * exactly when it is there, and the chosen set computes (rmsnorm against the
 * reference). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "si_config.h"
#include "streaminfer/kernels.h"
#include "../test_util.h"

#if defined(__x86_64__)
#include <cpuid.h>

static int cpu_has_avx2(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    const int fma = (c >> 12) & 1, f16c = (c >> 29) & 1, osxsave = (c >> 27) & 1;
    if (!fma || !f16c || !osxsave)
        return 0;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) /* XMM and YMM state saved by the OS */
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return (b >> 5) & 1;
}
#endif

#if defined(__riscv)
#include <setjmp.h>
#include <signal.h>

static sigjmp_buf probe_env;
static void on_sigill(int sig)
{
    (void)sig;
    siglongjmp(probe_env, 1);
}

/* 1 V, 0 no V: under qemu-rvv.sh the emulated CPU it states; natively whether one
 * vsetvli runs (the test's own probe: what the CPU and its kernel do, whatever
 * /proc/cpuinfo or the hwcap say, e.g. on the K230's vendor kernel) */
static int cpu_has_v(void)
{
    const char *q = getenv("SI_QEMU_VLEN");
    if (test_emulated() && q && *q)
        return strcmp(q, "0") != 0;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigill;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGILL, &sa, &old) == 0);
    volatile int v = 0;
    if (sigsetjmp(probe_env, 1) == 0) {
        __asm__ volatile(".4byte 0x0c0072d7" ::: "t0", "memory"); /* vsetvli t0, zero, e8, m1, ta, ma */
        v = 1;
    }
    sigaction(SIGILL, &old, NULL);
    return v;
}
#endif

int main(void)
{
    const char *want = "c", *simd = NULL;
#if defined(__x86_64__)
    simd = "avx2";
    if (cpu_has_avx2())
        want = "avx2";
#elif defined(__riscv)
    simd = "rvv";
    const int v = cpu_has_v();
    if (v && strcmp(SI_RV_V, "off") != 0)
        want = "rvv";
    printf("CPU %s V, build -Drv_v=%s\n", v ? "with" : "without", SI_RV_V);
#elif defined(__aarch64__)
    simd = "neon";
    want = "neon";
#endif
    const si_kernels *k = si_kernels_active();
    CHECK(k != NULL);
    printf("chosen: %s, expected: %s\n", k->name, want);
    CHECK_EQ_STR(k->name, want);

    if (simd) {
        const int there = strcmp(want, simd) == 0;
        si_error err = {0};
        const int rc = si_kernels_select(simd, &err);
        CHECKF((rc == SI_OK) == there, "selecting '%s': rc %d, expected it %savailable", simd, rc, there ? "" : "un");
        if (!there)
            printf("'%s' refused as expected\n", simd);
        CHECK(si_kernels_get(simd) ? there : !there);
    }
    CHECK(si_kernels_select("auto", NULL) == SI_OK);
    CHECK_EQ_STR(si_kernels_active()->name, want);

    /* the chosen set runs (on a CPU without V, a wrongly chosen RVV set dies here) */
    float x[67], w[67], a[67], b[67];
    for (int i = 0; i < 67; i++) {
        x[i] = (float)(i % 13) - 6.0f;
        w[i] = 0.5f + (float)(i % 5) * 0.25f;
    }
    si_kernels_active()->rmsnorm(a, x, w, 67, 1e-5f);
    si_kernels_ref()->rmsnorm(b, x, w, 67, 1e-5f);
    for (int i = 0; i < 67; i++)
        CHECKF(fabsf(a[i] - b[i]) <= 1e-5f * fabsf(b[i]) + 1e-6f, "rmsnorm[%d]: %g vs %g", i, a[i], b[i]);
    return 0;
}
