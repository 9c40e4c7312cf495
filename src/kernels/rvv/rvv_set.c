/* The rvv set (its entries from the family files, the K-quant and Q8_0 layout chosen once)
 * and the per-thread scratch buffers the kernels share. */
#include "rvv.h"

#ifdef SI_HAVE_RVV_SET

_Thread_local void *si_rvv_ybuf, *si_rvv_gbuf, *si_rvv_kbuf, *si_rvv_fbuf, *si_rvv_tbuf;
_Thread_local size_t si_rvv_ybuf_cap, si_rvv_gbuf_cap, si_rvv_kbuf_cap, si_rvv_fbuf_cap, si_rvv_tbuf_cap;

/* The scratch buffers are per thread (_Thread_local): a compute thread of the pool
 * (streaminfer/pool.h) has its own, freed when the thread ends through this key's
 * destructor (set on a thread's first growth), so that closing a model leaves nothing
 * of its workers behind. */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_free_thread(void *unused)
{
    (void)unused;
    void **bufs[] = {&si_rvv_ybuf, &si_rvv_gbuf, &si_rvv_kbuf, &si_rvv_fbuf, &si_rvv_tbuf};
    size_t *caps[] = {&si_rvv_ybuf_cap, &si_rvv_gbuf_cap, &si_rvv_kbuf_cap, &si_rvv_fbuf_cap, &si_rvv_tbuf_cap};
    for (int i = 0; i < 5; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
        *caps[i] = 0;
    }
}

static void scratch_key_make(void) { scratch_key_ok = pthread_key_create(&scratch_key, scratch_free_thread) == 0; }

void *si_rvv_scratch(void **buf, size_t *cap, size_t need)
{
    if (need > *cap) {
        pthread_once(&scratch_once, scratch_key_make);
        if (scratch_key_ok && !pthread_getspecific(scratch_key))
            pthread_setspecific(scratch_key, (void *)1);
        void *p = realloc(*buf, need);
        if (!p)
            return NULL;
        *buf = p;
        *cap = need;
    }
    return *buf;
}

float *si_rvv_gather_scales(const void *act, size_t act_stride, int64_t n_tok, int64_t nb, size_t bsz, int fp16)
{
    float *ys = si_rvv_scratch(&si_rvv_ybuf, &si_rvv_ybuf_cap, (size_t)nb * (size_t)n_tok * sizeof(float));
    if (!ys)
        return NULL;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < nb; i++) {
            const uint8_t *y = (const uint8_t *)act + (size_t)t * act_stride + (size_t)i * bsz;
            ys[(size_t)t * (size_t)nb + (size_t)i] = fp16 ? h2f(y) : ld_float(y);
        }
    return ys;
}

static si_kernels rvv_set;
static pthread_once_t rvv_once = PTHREAD_ONCE_INIT;

static void rvv_init(void)
{
    /* the matrix kernels by layout: VLEN 128, or >= 256 (rvv.h) */
    const int wide = si_rvv_kq_wide_layout();
    const si_simd_entries e = {.name = "rvv", .mat_dot_kquant = wide ? si_rvv_mat_dot_kq_wide : si_rvv_mat_dot_kq,
                               .mat_dot_q8_0_family = wide ? si_rvv_mat_dot_q80_w : si_rvv_mat_dot_q80,
                               .mat_dot_float = si_rvv_mat_dot_float, .quantize_q8_0 = si_rvv_quantize_q8_0,
                               .quantize_q8_K = si_rvv_quantize_q8_K, .rmsnorm = si_rvv_rmsnorm,
                               .silu_mul = si_rvv_silu_mul, .rope = si_rvv_rope, .attend = si_rvv_attend,
                               .kv_widen = si_rvv_kv_widen};
    si_kernels_fill(&rvv_set, &e);
    /* one token of Q4_K/Q5_K at VLEN 256 and 512: kernels of their own (rvv_kquant.c) */
    if (wide && si_rvv_kq_k4_fixed())
        rvv_set.mat_dot[SI_TYPE_Q4_K] = rvv_set.mat_dot[SI_TYPE_Q5_K] = si_rvv_mat_dot_k45_wide;
}

/* Compiled with V (src/kernels/meson.build) while the rest of a riscv64 build may not
 * be: only si_kernels_rvv (rvv_detect.c) calls this, once it knows the CPU has V. Filled
 * once per process, whichever threads ask first. */
const si_kernels *si_kernels_rvv_v(void)
{
    pthread_once(&rvv_once, rvv_init);
    return &rvv_set;
}

#elif !defined(__riscv)

const si_kernels *si_kernels_rvv(void)
{
    return NULL;
}

#endif
