/* llama2.c / llama3.c checkpoints as a source of Llama tensors (for tools/repack).
 *
 * Version 0 (run.c): 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len; a negative vocab_size means an unshared classifier), then fp32
 * weights in run.c's order. Version 2 (runq.c, "ak42" magic 0x616b3432): a 256-byte
 * header (magic, version 2, the 7 int32, uint8 shared_classifier, int32 group_size),
 * fp32 norms, then each matrix as int8 values followed by one fp32 scale per
 * group_size consecutive values of the flattened matrix.
 *
 * Matrices are row-major [out][in], exactly GGUF's [ne0 = in, ne1 = out]; run.c's RoPE
 * rotates adjacent pairs like GGUF's llama (NORM) rope, so no permutation is needed. */
#ifndef STREAMINFER_LLAMA2C_H
#define STREAMINFER_LLAMA2C_H

#include <stdbool.h>
#include <stdint.h>

#include "streaminfer/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SI_L2C_MAGIC 0x616b3432u

typedef enum si_l2c_q80_mode {
    SI_L2C_Q80_AUTO = 2, /* Q8_0 for a matrix whose groups fit and whose every scale is
                            exact in fp16 (lossless), else F32 */
    SI_L2C_Q80_F32 = 0,  /* dequantize to F32: exactly the values runq.c's groups hold */
    SI_L2C_Q80_Q8_0 = 1, /* Q8_0 where groups stay inside rows of whole 32-blocks (scales
                            rounded to fp16: lossy unless every scale is exact), else F32 */
} si_l2c_q80_mode;

typedef struct si_l2c_tensor {
    char name[64];
    uint64_t ne[2];   /* ne[0] row length, ne[1] rows (1 for vectors) */
    uint32_t n_dims;
    uint32_t type;    /* si_type of the converted data */
    uint64_t src_off; /* int8 values (q80) or fp32 values in the checkpoint */
    uint64_t scale_off; /* q80: fp32 scales */
    bool q80;
} si_l2c_tensor;

typedef struct si_l2c {
    int version; /* 0 or 2 */
    uint32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len, group;
    bool shared;
    si_l2c_q80_mode mode;
    si_l2c_tensor *t;
    uint32_t n_t;
    uint64_t inexact_scales; /* q80 -> Q8_0: scales not representable in fp16 */
    uint64_t file_size;
    int fd;
    char *path;
} si_l2c;

/* Detect and validate (sizes must match the file exactly). */
bool si_l2c_probe(const char *path);
int si_l2c_open(si_l2c **out, const char *path, si_l2c_q80_mode mode, si_error *err);
void si_l2c_close(si_l2c *c);
/* Bytes of tensor i once converted, and the conversion into dst. */
uint64_t si_l2c_tensor_size(const si_l2c *c, uint32_t i);
int si_l2c_read(si_l2c *c, uint32_t i, void *dst, si_error *err);

#ifdef __cplusplus
}
#endif
#endif
