/* A deliberately separate, plain Llama forward pass: every weight dequantized into
 * memory as double, one token at a time, no streaming, no activation quantization.
 * It is the second implementation the streamed engine is checked against. */
#ifndef SI_TEST_REF_FORWARD_H
#define SI_TEST_REF_FORWARD_H

#include <stdint.h>

typedef struct ref_model ref_model;

/* NULL with a message on stderr on failure. */
ref_model *ref_load(const char *path);
void ref_free(ref_model *m);
uint32_t ref_n_vocab(const ref_model *m);
/* Feed ids[0..n) from position 0; logits receives n rows of n_vocab. */
int ref_forward(ref_model *m, const int32_t *ids, uint32_t n, float *logits);

#endif
