/* Weight quantizers. Q8_0 is the activation quantizer of the type table (ggml uses the
 * same reference for weights). Q4_K follows ggml's quantize_row_q4_K_ref: per 32-value
 * sub-block a weighted least-squares fit of scale and min over a few candidate scales
 * (make_qkx2_quants), the 8 scales and mins quantized to 6 bits against the super-block
 * maxima, then the 4-bit values recomputed with the rounded scales. */
#include "streaminfer/quant.h"

#include <math.h>
#include <string.h>

#include "src/kernels/blocks.h"
#include "streaminfer/types.h"

/* Round half to even, like ggml's nearest_int (default rounding mode). */
static int nearest_int(float v) { return (int)lrintf(v); }

/* Fit x ~ scale * L + min (L in 0..nmax, min <= 0) minimising the weighted squared
 * error; tries nstep+1 scales around nmax/(max-min). Returns scale, *the_min = -min. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                           uint8_t *Laux, float rmin, float rdelta, int nstep)
{
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        float diff = scale * L[i] + min - x[i];
        best += w[i] * diff * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float err = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                err += w[i] * diff * diff;
            }
            if (err < best) {
                memcpy(L, Laux, (size_t)n);
                best = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

static void quantize_q4_K(const float *x, void *dst, int64_t n)
{
    blk_q4_K *y = dst;
    for (int64_t b = 0; b < n / SI_QK_K; b++, x += SI_QK_K) {
        uint8_t L[SI_QK_K], Laux[32];
        float w[32], mins[8], scales[8], max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
            const float *xs = x + 32 * j;
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++)
                sum_x2 += xs[l] * xs[l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++)
                w[l] = av_x + fabsf(xs[l]);
            scales[j] = fit_scale_min(32, 15, xs, w, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20);
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }
        blk_q4_K blk;
        memset(&blk, 0, sizeof blk);
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < 8; j++) {
            int ls = nearest_int(inv_scale * scales[j]), lm = nearest_int(inv_min * mins[j]);
            ls = ls > 63 ? 63 : ls;
            lm = lm > 63 ? 63 : lm;
            if (j < 4) {
                blk.scales[j] = (uint8_t)ls;
                blk.scales[j + 4] = (uint8_t)lm;
            } else {
                blk.scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                blk.scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                blk.scales[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        blk.d = si_fp32_to_fp16(max_scale / 63.f);
        blk.dmin = si_fp32_to_fp16(max_min / 63.f);
        /* Values again with the scales as stored (6-bit, fp16). */
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            si_k4_scale_min(blk.scales, j, &sc, &m);
            float d = si_fp16_to_fp32(blk.d) * sc;
            if (!d)
                continue;
            float dm = si_fp16_to_fp32(blk.dmin) * m;
            for (int ii = 0; ii < 32; ii++) {
                int l = nearest_int((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (uint8_t)(l < 0 ? 0 : l > 15 ? 15 : l);
            }
        }
        uint8_t *q = blk.qs;
        for (int j = 0; j < SI_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        memcpy(&y[b], &blk, sizeof blk);
    }
}

bool si_can_quantize(uint32_t type)
{
    return type == SI_TYPE_F32 || type == SI_TYPE_F16 || type == SI_TYPE_Q8_0 || type == SI_TYPE_Q4_K;
}

void si_quantize_row(uint32_t type, const float *src, void *dst, int64_t n)
{
    if (type == SI_TYPE_Q4_K)
        quantize_q4_K(src, dst, n);
    else
        si_type_get(type)->from_float(src, dst, n);
}
