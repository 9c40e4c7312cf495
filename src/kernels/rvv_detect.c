/* riscv64: does this CPU run V (RVV 1.0) instructions? The baseline riscv64 build is
 * RV64GC (-Drv_v=runtime) and only the rvv set (src/kernels/rvv/) is compiled with V, so the same binary runs on
 * boards with and without V; this file (compiled without V) decides whether the RVV set
 * may run, once per process. Three ways to ask, in order:
 *
 *  1. riscv_hwprobe (Linux 6.4+, syscall 258): the kernel's own per-CPU answer, which
 *     also says no when the kernel does not enable V for user space even if the CPU has
 *     it. Authoritative when it answers, yes or no.
 *  2. getauxval(AT_HWCAP) bit 'V' - 'A' (Linux 6.5+ sets it when V is usable): for
 *     kernels without hwprobe that report V there. A set bit is trusted.
 *  3. A SIGILL probe running one vsetvli: Linux 5.10 has no hwprobe, and the K230's
 *     vendor kernel (5.10, with its own V support) may not report V in the hwcap, so
 *     without a yes from 1 or 2 the instruction itself is the test. qemu-user 7.2 also
 *     lands here (no hwprobe, and its hwcap lists only IMAFDC).
 *
 * With -Drv_v=on the whole build needs V anyway: no probe. With -Drv_v=off there is no
 * RVV set. */
#include "si_config.h"
#include "simd_sets.h"

#if defined(__riscv) && __riscv_xlen == 64

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The constants of <asm/hwprobe.h>, which Debian 12's cross headers lack. */
#ifndef __NR_riscv_hwprobe
#define __NR_riscv_hwprobe 258
#endif
#define SI_HWPROBE_KEY_IMA_EXT_0 4
#define SI_HWPROBE_IMA_V (1ull << 2)

struct si_hwprobe_pair {
    int64_t key;
    uint64_t value;
};

/* 1 yes, 0 no, -1 no answer (no such syscall, or the key unknown to this kernel) */
static int hwprobe_v(void)
{
    struct si_hwprobe_pair p = {.key = SI_HWPROBE_KEY_IMA_EXT_0, .value = 0};
    /* all online CPUs (cpusetsize 0, cpus NULL), no flags */
    long rc = syscall(__NR_riscv_hwprobe, &p, 1, 0, NULL, 0);
    if (rc != 0 || p.key != SI_HWPROBE_KEY_IMA_EXT_0) /* ENOSYS before 6.4; key -1: unknown */
        return -1;
    return (p.value & SI_HWPROBE_IMA_V) != 0;
}

static sigjmp_buf probe_env;

static void probe_sigill(int sig)
{
    (void)sig;
    siglongjmp(probe_env, 1);
}

/* Runs vsetvli t0, zero, e8, m1, ta, ma (written as its encoding: this file is compiled
 * without V, so the assembler would refuse the mnemonic) with SIGILL caught. */
static int sigill_probe_v(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = probe_sigill;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGILL, &sa, &old) != 0)
        return 0;
    volatile int ok = 0;
    if (sigsetjmp(probe_env, 1) == 0) {
        __asm__ volatile(".4byte 0x0c0072d7" ::: "t0", "memory");
        ok = 1;
    }
    sigaction(SIGILL, &old, NULL);
    return ok;
}

static int detect(void)
{
#if SI_RVV_BUILT && defined(__riscv_v)
    return 1; /* -Drv_v=on: this very code was compiled with V */
#else
    const int saved = errno;
    int v = hwprobe_v();
    if (v < 0)
        v = (getauxval(AT_HWCAP) & (1ul << ('V' - 'A'))) ? 1 : sigill_probe_v();
    errno = saved;
    return v;
#endif
}

static int has_v;
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

static void detect_run(void)
{
    has_v = detect();
}

int si_cpu_has_rvv(void)
{
    pthread_once(&detect_once, detect_run); /* asked once per process */
    return has_v;
}

const si_kernels *si_kernels_rvv(void)
{
#if SI_RVV_BUILT
    return si_cpu_has_rvv() ? si_kernels_rvv_v() : NULL;
#else
    return NULL;
#endif
}

#endif
