/* The rvv set's F32 / F16 matrix kernel. */
#include "rvv.h"

#ifdef SI_HAVE_RVV_SET

/* ---- F32 / F16 ----------------------------------------------------------------------- */


/* n halves from any address to floats at dst */
static void f16_to_f32(const uint8_t *p, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n;) {
        const size_t vl = __riscv_vsetvl_e32m4((size_t)(n - i));
        __riscv_vse32_v_f32m4(dst + i, ld_f16(p + 2 * i, vl), vl);
        i += (int64_t)vl;
    }
}

/* One float dot per row and token (dot_f32: lane sums over the row, one reduction; the
 * reference sums in double). F16 rows and activations are converted to floats first (the
 * activations per chunk of tokens, a row once per chunk); F32 is read in place. */

void si_rvv_mat_dot_float(uint32_t type, int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                          size_t act_stride, int64_t n_tok, float *out, size_t out_stride)
{
    if (type == SI_TYPE_F32) {
        for (int64_t r = 0; r < n_rows; r++) {
            const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
            for (int64_t t = 0; t < n_tok; t++) {
                const uint8_t *y = (const uint8_t *)act + (size_t)t * act_stride;
                float *o = out + (size_t)t * out_stride + (size_t)r;
                if ((((uintptr_t)row | (uintptr_t)y) & 3) == 0)
                    *o = dot_f32(row, y, (size_t)n, 1);
                else
                    *o = dot_f32(row, y, (size_t)n, 0);
            }
        }
        return;
    }
    /* F16: up to F16_CHUNK tokens' activations as floats at a time (the scratch stays
     * n * (F16_CHUNK + 1) floats whatever the batch), each row converted once per chunk */
    enum { F16_CHUNK = 16 };
    const int64_t nc = n_tok < F16_CHUNK ? n_tok : F16_CHUNK;
    float *wrow = si_rvv_scratch(&si_rvv_fbuf, &si_rvv_fbuf_cap, (size_t)n * ((size_t)nc + 1) * sizeof(float));
    if (!wrow) { /* no memory for the scratch: the reference needs none */
        si_kernels_ref()->mat_dot[type](type, n, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
        return;
    }
    float *acts = wrow + n;
    for (int64_t t0 = 0; t0 < n_tok; t0 += F16_CHUNK) {
        const int64_t nt = n_tok - t0 < F16_CHUNK ? n_tok - t0 : F16_CHUNK;
        for (int64_t t = 0; t < nt; t++)
            f16_to_f32((const uint8_t *)act + (size_t)(t0 + t) * act_stride, acts + (size_t)t * (size_t)n, n);
        for (int64_t r = 0; r < n_rows; r++) {
            f16_to_f32((const uint8_t *)w + (size_t)r * row_bytes, wrow, n);
            for (int64_t t = 0; t < nt; t++)
                out[(size_t)(t0 + t) * out_stride + (size_t)r] = dot_f32(wrow, acts + (size_t)t * (size_t)n, (size_t)n, 1);
        }
    }
}

#endif
