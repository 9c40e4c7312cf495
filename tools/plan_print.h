/* --plan: the memory plan of a model opened with plan_only, as text. */
#ifndef STREAMINFER_TOOLS_PLAN_PRINT_H
#define STREAMINFER_TOOLS_PLAN_PRINT_H

#include <stdio.h>

#include "streaminfer/llama.h"

/* What the budget holds (context, step, KV cache, activations, weight buffer, pins) and
 * what a pass streams; with device_mbps > 0, the seconds a pass takes at that rate. */
void si_print_plan(FILE *f, const char *model, const si_plan *p, double device_mbps);

#endif
