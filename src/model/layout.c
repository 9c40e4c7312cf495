#include "layout.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct builder {
    si_llama_layout *lay;
    size_t cap_ext, cap_views;
    uint64_t max_extent, align;
} builder;

static int add_extent(builder *b, uint64_t offset, uint64_t size, const char *label, si_error *err)
{
    si_llama_layout *lay = b->lay;
    if (lay->n_ext == b->cap_ext) {
        size_t cap = b->cap_ext ? 2 * b->cap_ext : 64;
        si_extent *e = realloc(lay->ext, cap * sizeof *e);
        SI_CHECK(!e, err, SI_ENOMEM, "out of memory for the stream layout");
        lay->ext = e;
        b->cap_ext = cap;
    }
    si_extent *e = &lay->ext[lay->n_ext++];
    memset(e, 0, sizeof *e);
    e->offset = offset;
    e->size = size;
    snprintf(e->label, sizeof e->label, "%s", label);
    return SI_OK;
}

static int add_view(builder *b, si_tensor_views *tv, uint64_t offset, uint64_t row0, uint64_t n_rows, si_error *err)
{
    si_llama_layout *lay = b->lay;
    if (lay->n_views == b->cap_views) {
        size_t cap = b->cap_views ? 2 * b->cap_views : 64;
        si_view *v = realloc(lay->views, cap * sizeof *v);
        SI_CHECK(!v, err, SI_ENOMEM, "out of memory for the stream layout");
        lay->views = v;
        b->cap_views = cap;
    }
    if (tv->n == 0)
        tv->first = (uint32_t)lay->n_views;
    tv->n++;
    lay->views[lay->n_views++] = (si_view){
        .extent = (uint32_t)(lay->n_ext - 1), .offset = offset, .row0 = row0, .n_rows = n_rows, .release = true};
    return SI_OK;
}

/* One extent per row slice of a tensor. */
static int add_tensor_slices(builder *b, const si_tensor_ref *t, si_tensor_views *tv, si_error *err)
{
    uint64_t usable = b->max_extent > 2 * b->align ? b->max_extent - 2 * b->align : 0;
    uint64_t rows_per = usable / t->row_bytes;
    SI_CHECK(rows_per == 0, err, SI_EBUDGET,
             "weight buffer too small: one row of %s (%" PRIu64 " bytes) does not fit an extent of %" PRIu64
             " bytes",
             t->name, t->row_bytes, b->max_extent);
    for (uint64_t r = 0; r < t->n_rows; r += rows_per) {
        uint64_t n = t->n_rows - r < rows_per ? t->n_rows - r : rows_per;
        char label[80];
        if (n == t->n_rows)
            snprintf(label, sizeof label, "%s", t->name);
        else
            snprintf(label, sizeof label, "%s rows %" PRIu64 "-%" PRIu64, t->name, r, r + n - 1);
        SI_TRY(add_extent(b, t->offset + r * t->row_bytes, n * t->row_bytes, label, err));
        SI_TRY(add_view(b, tv, 0, r, n, err));
    }
    return SI_OK;
}

/* A group of tensors used together: one extent when its file span is dense (little
 * foreign data between them) and fits, so it is read as one sequential range. */
static int add_group(builder *b, const si_tensor_ref *const *ts, si_tensor_views *tvs, size_t n,
                     const char *label, si_error *err)
{
    uint64_t lo = UINT64_MAX, hi = 0, sum = 0;
    for (size_t i = 0; i < n; i++) {
        lo = ts[i]->offset < lo ? ts[i]->offset : lo;
        hi = ts[i]->offset + ts[i]->size > hi ? ts[i]->offset + ts[i]->size : hi;
        sum += ts[i]->size;
    }
    uint64_t span = hi - lo;
    uint64_t aligned_span = (hi + b->align - 1) / b->align * b->align - lo / b->align * b->align;
    bool dense = sum >= span - span / 8;
    if (dense && aligned_span <= b->max_extent) {
        SI_TRY(add_extent(b, lo, span, label, err));
        for (size_t i = 0; i < n; i++) {
            SI_TRY(add_view(b, &tvs[i], ts[i]->offset - lo, 0, ts[i]->n_rows, err));
            b->lay->views[b->lay->n_views - 1].release = (i == n - 1);
        }
        return SI_OK;
    }
    for (size_t i = 0; i < n; i++)
        SI_TRY(add_tensor_slices(b, ts[i], &tvs[i], err));
    return SI_OK;
}

int si_llama_layout_build(si_llama_layout *lay, const si_llama_desc *d, uint64_t max_extent, uint64_t align,
                          si_error *err)
{
    memset(lay, 0, sizeof *lay);
    builder b = {.lay = lay, .max_extent = max_extent, .align = align};
    lay->layer = calloc((size_t)d->hp.n_layer * SI_LAYER_N_TENSORS, sizeof *lay->layer);
    SI_CHECK(!lay->layer, err, SI_ENOMEM, "out of memory for the stream layout");
    int rc = SI_OK;
    for (uint32_t l = 0; l < d->hp.n_layer && rc == SI_OK; l++) {
        const si_tensor_ref *ts[SI_LAYER_N_TENSORS];
        si_llama_layer_tensors(d, l, ts);
        char label[32];
        snprintf(label, sizeof label, "layer %u", l);
        rc = add_group(&b, ts, &lay->layer[(size_t)l * SI_LAYER_N_TENSORS], SI_LAYER_N_TENSORS, label, err);
    }
    if (rc == SI_OK) {
        const si_tensor_ref *ts[2] = {&d->output_norm, &d->output};
        si_tensor_views tvs[2] = {{0, 0}, {0, 0}};
        rc = add_group(&b, ts, tvs, 2, "output_norm+output", err);
        lay->output_norm = tvs[0];
        lay->output = tvs[1];
    }
    if (rc < 0)
        si_llama_layout_free(lay);
    return rc;
}

void si_llama_layout_free(si_llama_layout *lay)
{
    free(lay->ext);
    free(lay->views);
    free(lay->layer);
    memset(lay, 0, sizeof *lay);
}
