/* Pinned weights: which tensors stay resident, chosen within the plan's pin budget,
 * and the stream layout that keeps them apart from the streamed rest. */
#ifndef SI_MODEL_PINS_H
#define SI_MODEL_PINS_H

#include "layout.h"
#include "streaminfer/plan.h"

struct si_pack;

/* A pinned tensor: its views in the layout (each view its own extent) and the memory
 * it holds while pinned. */
typedef struct si_pin_held {
    si_tensor_views views;
    uint64_t held;
} si_pin_held;

/* The pins of a model in the order the plan chose them. The first n_pinned are pinned
 * now: pins give way from the end of that prefix (least saving first) and return in
 * order, so the set held is always the plan's best for its size. */
typedef struct si_pins {
    si_pin_held *u;
    uint32_t n, n_pinned;
    uint64_t released, restored; /* tensors given way and returned, so far */
} si_pins;

/* Build the layout of d (over pack when not NULL) with the tensors pinned that
 * si_plan_choose_pins picks within plan->pin_budget, whole tensors of the same kind
 * in every layer first; fill in plan's pin_bytes (exactly what the scheduler will
 * hold for them), pinned_tensors, pins, pass_bytes and pass_bytes_unpinned, and pins
 * (when not NULL: all of them pinned; free with si_pins_free). align and file_size
 * are the scheduler's (si_sched_alignment, the file's size). */
int si_llama_pins_layout(si_llama_layout *lay, const si_llama_desc *d, const struct si_pack *pack,
                         uint64_t max_extent, uint64_t align, uint64_t file_size, si_plan *plan, si_pins *pins,
                         si_error *err);
void si_pins_free(si_pins *pins);

/* Between passes: unpin pinned tensors, the last chosen first, until at least need
 * bytes are freed or none is left; *freed gets the bytes freed. */
int si_pins_release(si_pins *pins, si_sched *s, const si_llama_layout *lay, uint64_t need, uint64_t *freed,
                    si_error *err);
/* Between passes: pin again the released tensors, in the order chosen, while the next
 * one fits in room bytes; the next pass reads them. */
int si_pins_restore(si_pins *pins, si_sched *s, const si_llama_layout *lay, uint64_t room, si_error *err);

/* "attn_q", "ffn_down", "output" ... for a pin kind (layout.h). */
const char *si_pin_kind_name(uint32_t kind);

#endif
