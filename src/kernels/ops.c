/* The C reference for the non-matrix kernels and the per-token matrix loop, and the
 * selection of the active kernel set. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "streaminfer/kernels.h"
#include "simd_sets.h"

/* Why a named SIMD set is missing: not built for this architecture, or the CPU lacks it. */
#if defined(__x86_64__)
#define SI_KERNELS_AVAILABLE_MSG(n) (strcmp((n), "avx2") == 0 ? "this CPU lacks avx2, fma or f16c" : "this is an x86-64 build (rvv needs a riscv64 build, neon an aarch64 build)")
#elif defined(__riscv)
#define SI_KERNELS_AVAILABLE_MSG(n) (strcmp((n), "rvv") == 0 ? "this CPU lacks V, or the build has none (-Drv_v=off)" : "this is a riscv64 build (avx2 needs an x86-64 build, neon an aarch64 build)")
#elif defined(__aarch64__)
#define SI_KERNELS_AVAILABLE_MSG(n) (strcmp((n), "neon") == 0 ? "this build has no Advanced SIMD" : "this is an aarch64 build (avx2 needs an x86-64 build, rvv a riscv64 build)")
#else
#define SI_KERNELS_AVAILABLE_MSG(n) "this build has no SIMD kernel sets"
#endif

/* The reference's softmax step, which the AVX2 and NEON attends share (RVV's has a
 * vector exp): per row, p_t = exp(s_t - max) * (1 / sum), the sum in double. */
void si_softmax_rows(float *scores, uint32_t nh, uint32_t n)
{
    for (uint32_t h = 0; h < nh; h++) {
        float *s = scores + (size_t)h * n, mx = -INFINITY;
        for (uint32_t t = 0; t < n; t++)
            mx = s[t] > mx ? s[t] : mx;
        double sum = 0;
        for (uint32_t t = 0; t < n; t++) {
            s[t] = expf(s[t] - mx);
            sum += s[t];
        }
        const float inv = (float)(1.0 / sum);
        for (uint32_t t = 0; t < n; t++)
            s[t] *= inv;
    }
}

static void mat_dot_ref(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                        size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    si_vec_dot_fn dot = si_type_get(type)->vec_dot;
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int64_t t = 0; t < n_tok; t++)
            out[(size_t)t * out_stride + (size_t)r] = dot(n, row, (const uint8_t *)act + (size_t)t * act_stride);
    }
}

static void rmsnorm_ref(float *out, const float *x, const float *w, int64_t n, float eps)
{
    double ss = 0; /* as ggml: the sum of squares in double */
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

static void silu_mul_ref(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void si_rope_angles(const float *inv_freq, uint32_t n_pairs, uint32_t pos, float *c, float *s)
{
    for (uint32_t i = 0; i < n_pairs; i++) {
        const float theta = (float)pos * inv_freq[i];
        c[i] = cosf(theta);
        s[i] = sinf(theta);
    }
}

static void rope_ref(float *v, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *inv_freq, uint32_t pos)
{
    for (uint32_t i = 0; i < n_rot / 2; i++) {
        float c, s;
        si_rope_angles(inv_freq + i, 1, pos, &c, &s);
        for (uint32_t h = 0; h < n_heads; h++)
            si_rope_pair(v + (size_t)h * head_dim + 2 * i, c, s);
    }
}

uint32_t si_rope_begin(float *v, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *inv_freq,
                       uint32_t pos, float *c, float *s)
{
    const uint32_t np = n_rot / 2;
    if (np > SI_ROPE_MAX_PAIRS) {
        rope_ref(v, n_heads, head_dim, n_rot, inv_freq, pos);
        return 0;
    }
    si_rope_angles(inv_freq, np, pos, c, s);
    return np;
}

static void attend_ref(float *out, const float *q, uint32_t nh, const float *kt, size_t kt_stride, const float *v,
                       uint32_t n_pos, uint32_t hd, float scale, float *scores)
{
    for (uint32_t t = 0; t < n_pos; t++)
        for (uint32_t h = 0; h < nh; h++) {
            float s = 0;
            for (uint32_t i = 0; i < hd; i++)
                s += kt[(size_t)i * kt_stride + t] * q[(size_t)h * hd + i];
            scores[(size_t)h * n_pos + t] = s * scale;
        }
    si_softmax_rows(scores, nh, n_pos);
    for (uint32_t h = 0; h < nh; h++) {
        float *o = out + (size_t)h * hd;
        memset(o, 0, hd * sizeof(float));
        for (uint32_t t = 0; t < n_pos; t++)
            for (uint32_t i = 0; i < hd; i++)
                o[i] += scores[(size_t)h * n_pos + t] * v[(size_t)t * hd + i];
    }
}

static void kv_widen_ref(float *dst, size_t dst_stride, const void *src, bool f16, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        dst[(size_t)i * dst_stride] = f16 ? si_fp16_to_fp32(((const uint16_t *)src)[i]) : ((const float *)src)[i];
}

static si_kernels ref_set = {
    .name = "c", .rmsnorm = rmsnorm_ref, .silu_mul = silu_mul_ref, .rope = rope_ref, .attend = attend_ref,
    .kv_widen = kv_widen_ref};
static pthread_once_t ref_once = PTHREAD_ONCE_INIT;
static const si_kernels *_Atomic active; /* chosen by si_kernels_select, or "auto" on first use */

static void ref_init(void)
{
    for (uint32_t t = 0; t < SI_TYPE_COUNT; t++) {
        const si_type_traits *tt = si_type_get(t);
        if (tt && tt->compute)
            ref_set.mat_dot[t] = mat_dot_ref;
        if (tt && tt->from_float)
            ref_set.quantize[t] = tt->from_float;
    }
}

/* Completed once per process, whichever threads ask first (pthread_once). */
const si_kernels *si_kernels_ref(void)
{
    pthread_once(&ref_once, ref_init);
    return &ref_set;
}

void si_kernels_fill(si_kernels *set, const si_simd_entries *e)
{
    *set = *si_kernels_ref();
    set->name = e->name;
#define SI_TAKE(dst, src) \
    do {                  \
        if (src)          \
            dst = src;    \
    } while (0)
    for (uint32_t t = SI_TYPE_Q2_K; t <= SI_TYPE_Q6_K; t++)
        SI_TAKE(set->mat_dot[t], e->mat_dot_kquant);
    SI_TAKE(set->mat_dot[SI_TYPE_Q4_0], e->mat_dot_q8_0_family);
    SI_TAKE(set->mat_dot[SI_TYPE_Q8_0], e->mat_dot_q8_0_family);
    SI_TAKE(set->mat_dot[SI_TYPE_F32], e->mat_dot_float);
    SI_TAKE(set->mat_dot[SI_TYPE_F16], e->mat_dot_float);
    SI_TAKE(set->quantize[SI_TYPE_Q8_0], e->quantize_q8_0);
    SI_TAKE(set->quantize[SI_TYPE_Q8_K], e->quantize_q8_K);
    SI_TAKE(set->quantize[SI_TYPE_F16], e->quantize_f16);
    SI_TAKE(set->rmsnorm, e->rmsnorm);
    SI_TAKE(set->silu_mul, e->silu_mul);
    SI_TAKE(set->rope, e->rope);
    SI_TAKE(set->attend, e->attend);
    SI_TAKE(set->kv_widen, e->kv_widen);
#undef SI_TAKE
}

/* A set by name: the reference, or a SIMD set this build has and this CPU runs. */
const si_kernels *si_kernels_get(const char *name)
{
    if (strcmp(name, "c") == 0)
        return si_kernels_ref();
    if (strcmp(name, "avx2") == 0)
        return si_kernels_avx2();
    if (strcmp(name, "rvv") == 0)
        return si_kernels_rvv();
    if (strcmp(name, "neon") == 0)
        return si_kernels_neon();
    return NULL;
}

int si_kernels_select(const char *name, si_error *err)
{
    const si_kernels *k;
    if (strcmp(name, "auto") == 0) {
        /* the best set available: at most one SIMD set exists per architecture */
        k = si_kernels_rvv();
        if (!k)
            k = si_kernels_avx2();
        if (!k)
            k = si_kernels_neon();
        if (!k)
            k = si_kernels_ref();
        atomic_store(&active, k);
        return SI_OK;
    }
    k = si_kernels_get(name);
    if (k) {
        atomic_store(&active, k);
        return SI_OK;
    }
    if (strcmp(name, "avx2") == 0 || strcmp(name, "rvv") == 0 || strcmp(name, "neon") == 0)
        return si_errorf(err, SI_EUNSUPPORTED, "kernel set '%s' is not available: %s", name,
                         SI_KERNELS_AVAILABLE_MSG(name));
    return si_errorf(err, SI_EUNSUPPORTED, "unknown kernel set '%s' (known: auto, c, avx2, rvv, neon)", name);
}

const si_kernels *si_kernels_active(void)
{
    if (!atomic_load(&active))
        si_kernels_select("auto", NULL);
    return atomic_load(&active);
}
