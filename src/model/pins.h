/* Pinned weights: which tensors stay resident, chosen within the plan's pin budget,
 * and the stream layout that keeps them apart from the streamed rest. */
#ifndef SI_MODEL_PINS_H
#define SI_MODEL_PINS_H

#include "layout.h"
#include "streaminfer/plan.h"

struct si_pack;

/* Build the layout of d (over pack when not NULL) with the tensors pinned that
 * si_plan_choose_pins picks within plan->pin_budget, whole tensors of the same kind
 * in every layer first; fill in plan's pin_bytes (exactly what the scheduler will
 * hold for them), pinned_tensors, pins, pass_bytes and pass_bytes_unpinned. align
 * and file_size are the scheduler's (si_sched_alignment, the file's size). */
int si_llama_pins_layout(si_llama_layout *lay, const si_llama_desc *d, const struct si_pack *pack,
                         uint64_t max_extent, uint64_t align, uint64_t file_size, si_plan *plan, si_error *err);

/* "attn_q", "ffn_down", "output" ... for a pin kind (layout.h). */
const char *si_pin_kind_name(uint32_t kind);

#endif
