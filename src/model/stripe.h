/* The --stripe-path directories (src/model/stripe.c), for opening a striped pack. */
#ifndef STREAMINFER_MODEL_STRIPE_H
#define STREAMINFER_MODEL_STRIPE_H
#include <stddef.h>
const char *const *si_stripe_dirs(size_t *n);
#endif
