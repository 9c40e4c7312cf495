/* Weight quantizers (for repack --requant): the reference algorithms of ggml, so a
 * tensor requantized here has the bytes llama.cpp's quantizer gives without an
 * importance matrix. */
#ifndef STREAMINFER_QUANT_H
#define STREAMINFER_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* True when weights can be quantized to this type (F32, F16, Q8_0, Q4_K). */
bool si_can_quantize(uint32_t type);
/* Quantize n floats (a multiple of the type's block size) into dst. */
void si_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
