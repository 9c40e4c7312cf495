/* Where each weight tensor comes from in a pass: the scheduler's extents and, per
 * tensor, the views (extent, byte offset, row range) the forward pass walks. */
#ifndef SI_MODEL_LAYOUT_H
#define SI_MODEL_LAYOUT_H

#include "streaminfer/model.h"
#include "streaminfer/sched.h"

typedef struct si_view {
    uint32_t extent;  /* index in the pass */
    uint64_t offset;  /* of the first row, from the extent's first byte */
    uint64_t row0;    /* first row of the tensor this view covers */
    uint64_t n_rows;
    bool release;     /* last view that uses this extent */
} si_view;

typedef struct si_tensor_views {
    uint32_t first, n; /* into layout.views */
} si_tensor_views;

typedef struct si_llama_layout {
    si_extent *ext;
    size_t n_ext;
    si_view *views;
    size_t n_views;
    si_tensor_views *layer; /* [n_layer][SI_LAYER_N_TENSORS], compute order */
    si_tensor_views output_norm, output;
    si_frame *frames; /* packs: the chunks each extent checks (and decodes) */
    size_t n_frames;
} si_llama_layout;

/* Which tensors are pinned: pin[si_pin_slot(...)] for each layer tensor (compute
 * order), then the final norm and the classifier; NULL: none. */
#define SI_PIN_KIND_OUTPUT_NORM SI_LAYER_N_TENSORS
#define SI_PIN_KIND_OUTPUT (SI_LAYER_N_TENSORS + 1)
#define SI_PIN_N_KINDS (SI_LAYER_N_TENSORS + 2)
static inline size_t si_pin_n_slots(const si_llama_desc *d) { return (size_t)d->hp.n_layer * SI_LAYER_N_TENSORS + 2; }
/* kind: 0..SI_LAYER_N_TENSORS-1 with its layer, or SI_PIN_KIND_OUTPUT_NORM / _OUTPUT. */
static inline size_t si_pin_slot(const si_llama_desc *d, uint32_t kind, uint32_t layer)
{
    return kind < SI_LAYER_N_TENSORS ? (size_t)layer * SI_LAYER_N_TENSORS + kind
                                     : (size_t)d->hp.n_layer * SI_LAYER_N_TENSORS + (kind - SI_LAYER_N_TENSORS);
}

/* Extents are at most max_extent bytes once aligned to align: a group of tensors
 * (a layer; the final norm and classifier) that is dense in the file and fits is one
 * extent read as one sequential range; otherwise each tensor is its own extent, in
 * row slices when it is larger. A pinned tensor is always its own extents (row slices
 * as above, marked pinned, so they could stream again), and the unpinned tensors of
 * its group form groups of the runs between pinned ones. */
int si_llama_layout_build(si_llama_layout *lay, const si_llama_desc *d, uint64_t max_extent, uint64_t align,
                          const bool *pin, si_error *err);
/* The same over a pack: extents are whole chunks (a group when its chunks fit one
 * extent, else row slices cut at chunk boundaries), each carrying its chunks as
 * frames; compressed ones are decoded into an image the views point into. */
struct si_pack;
int si_llama_layout_build_pack(si_llama_layout *lay, const si_llama_desc *d, const struct si_pack *pack,
                               uint64_t max_extent, uint64_t align, const bool *pin, si_error *err);
void si_llama_layout_free(si_llama_layout *lay);

#endif
