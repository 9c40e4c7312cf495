#include "layout.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streaminfer/pack.h"

typedef struct builder {
    si_llama_layout *lay;
    size_t cap_ext, cap_views;
    uint64_t max_extent, align;
    /* packs: first frame of each extent (frames move while the array grows) */
    const si_pack *pack;
    size_t *frame0, cap_frame0, cap_frames;
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
    size_t len = strnlen(label, sizeof e->label - 1); /* a long name is cut, only for messages */
    memcpy(e->label, label, len);
    e->label[len] = 0;
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
        char label[128]; /* add_extent keeps what fits of it */
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

typedef int (*group_fn)(builder *b, const si_tensor_ref *const *ts, si_tensor_views *tvs, size_t n,
                        const char *label, si_error *err);
typedef int (*slices_fn)(builder *b, const si_tensor_ref *t, si_tensor_views *tv, si_error *err);

/* A group with some tensors pinned (pin[i], NULL: none): each pinned tensor as its own
 * extents, marked pinned; each run of unpinned tensors between them as a group. */
static int add_group_pinned(builder *b, group_fn group, slices_fn slices, const si_tensor_ref *const *ts,
                            si_tensor_views *tvs, size_t n, const bool *pin, const char *label, si_error *err)
{
    for (size_t i = 0; i < n;) {
        if (pin && pin[i]) {
            size_t first = b->lay->n_ext;
            SI_TRY(slices(b, ts[i], &tvs[i], err));
            for (size_t e = first; e < b->lay->n_ext; e++)
                b->lay->ext[e].pinned = true;
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && !(pin && pin[j]))
            j++;
        SI_TRY(group(b, ts + i, tvs + i, j - i, label, err));
        i = j;
    }
    return SI_OK;
}

int si_llama_layout_build(si_llama_layout *lay, const si_llama_desc *d, uint64_t max_extent, uint64_t align,
                          const bool *pin, si_error *err)
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
        rc = add_group_pinned(&b, add_group, add_tensor_slices, ts, &lay->layer[(size_t)l * SI_LAYER_N_TENSORS],
                              SI_LAYER_N_TENSORS, pin ? pin + si_pin_slot(d, 0, l) : NULL, label, err);
    }
    if (rc == SI_OK) {
        const si_tensor_ref *ts[2] = {&d->output_norm, &d->output};
        si_tensor_views tvs[2] = {{0, 0}, {0, 0}};
        rc = add_group_pinned(&b, add_group, add_tensor_slices, ts, tvs, 2,
                              pin ? pin + si_pin_slot(d, SI_PIN_KIND_OUTPUT_NORM, 0) : NULL, "output_norm+output",
                              err);
        lay->output_norm = tvs[0];
        lay->output = tvs[1];
    }
    if (rc < 0)
        si_llama_layout_free(lay);
    return rc;
}

/* ---- packs ---- */

static uint64_t al_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* Ring bytes an extent of `stored` bytes (starting anywhere) plus an image needs. */
static uint64_t pack_need(const builder *b, uint64_t stored, uint64_t image)
{
    return al_up(stored, b->align) + 2 * b->align + al_up(image, b->align);
}

/* A new extent over chunks [c0, c1) of each listed tensor (a group or one tensor's
 * slice); frames are recorded and linked after the build. */
static int pack_extent(builder *b, uint32_t member, uint64_t lo, uint64_t hi, uint64_t image, const char *label,
                       si_error *err)
{
    SI_TRY(add_extent(b, lo, hi - lo, label, err));
    b->lay->ext[b->lay->n_ext - 1].member = member;
    si_llama_layout *lay = b->lay;
    if (lay->n_ext > b->cap_frame0) {
        size_t cap = b->cap_frame0 ? 2 * b->cap_frame0 : 64;
        size_t *f = realloc(b->frame0, cap * sizeof *f);
        SI_CHECK(!f, err, SI_ENOMEM, "out of memory for the stream layout");
        b->frame0 = f;
        b->cap_frame0 = cap;
    }
    b->frame0[lay->n_ext - 1] = lay->n_frames;
    lay->ext[lay->n_ext - 1].image_size = image;
    return SI_OK;
}

static int pack_frames(builder *b, const si_pack_tensor *pt, uint32_t c0, uint32_t c1, uint64_t image_base,
                       si_error *err)
{
    si_llama_layout *lay = b->lay;
    const si_pack_chunk *first = si_pack_chunk_at(b->pack, c0);
    for (uint32_t c = c0; c < c1; c++) {
        const si_pack_chunk *k = si_pack_chunk_at(b->pack, c);
        if (lay->n_frames == b->cap_frames) {
            size_t cap = b->cap_frames ? 2 * b->cap_frames : 256;
            si_frame *f = realloc(lay->frames, cap * sizeof *f);
            SI_CHECK(!f, err, SI_ENOMEM, "out of memory for the stream layout");
            lay->frames = f;
            b->cap_frames = cap;
        }
        lay->frames[lay->n_frames++] = (si_frame){.offset = k->offset, .stored = k->stored, .raw = k->raw,
                                                  .image_off = image_base + (k->row0 - first->row0) * pt->row_bytes,
                                                  .xxh3 = k->xxh3, .codec = k->codec, .type = pt->type, .layer = pt->layer,
                                                  .chunk = c, .tensor = pt->name};
        lay->ext[lay->n_ext - 1].n_frames++;
    }
    return SI_OK;
}

static const si_pack_tensor *pack_tensor(const builder *b, const si_tensor_ref *t, si_error *err)
{
    const si_pack_tensor *pt = si_pack_find_tensor(b->pack, t->name);
    if (!pt)
        si_errorf(err, SI_EFORMAT, "%s: tensor '%s' is not in the pack", si_pack_path(b->pack), t->name);
    return pt;
}

static int pack_slices(builder *b, const si_tensor_ref *t, si_tensor_views *tv, si_error *err)
{
    const si_pack_tensor *pt = pack_tensor(b, t, err);
    if (!pt)
        return err ? err->code : SI_EFORMAT;
    uint32_t end = pt->first_chunk + pt->n_chunks;
    for (uint32_t c0 = pt->first_chunk; c0 < end;) {
        uint64_t stored = 0, raw = 0;
        bool decode = false;
        uint32_t c1 = c0;
        while (c1 < end) {
            const si_pack_chunk *k = si_pack_chunk_at(b->pack, c1);
            /* A striped pack: an extent is a run of chunks on one member file. */
            if (k->member != si_pack_chunk_at(b->pack, c0)->member)
                break;
            bool d2 = decode || k->codec != SI_PACK_CODEC_RAW;
            if (pack_need(b, stored + k->stored, d2 ? raw + k->raw : 0) > b->max_extent)
                break;
            stored += k->stored;
            raw += k->raw;
            decode = d2;
            c1++;
        }
        const si_pack_chunk *k0 = si_pack_chunk_at(b->pack, c0);
        SI_CHECK(c1 == c0, err, SI_EBUDGET,
                 "weight buffer too small: chunk %u of %s (%" PRIu64 " bytes stored, %" PRIu64
                 " decoded) does not fit an extent of %" PRIu64 " bytes",
                 c0, t->name, k0->stored, k0->raw, b->max_extent);
        const si_pack_chunk *kl = si_pack_chunk_at(b->pack, c1 - 1);
        uint64_t r0 = k0->row0, r1 = kl->row0 + kl->n_rows;
        char label[80];
        if (c0 == pt->first_chunk && c1 == end)
            snprintf(label, sizeof label, "%s", t->name);
        else
            snprintf(label, sizeof label, "%s rows %" PRIu64 "-%" PRIu64, t->name, r0, r1 - 1);
        SI_TRY(pack_extent(b, k0->member, k0->offset, k0->offset + stored, decode ? raw : 0, label, err));
        SI_TRY(pack_frames(b, pt, c0, c1, 0, err));
        SI_TRY(add_view(b, tv, 0, r0, r1 - r0, err));
        c0 = c1;
    }
    return SI_OK;
}

static int pack_group(builder *b, const si_tensor_ref *const *ts, si_tensor_views *tvs, size_t n, const char *label,
                      si_error *err)
{
    const si_pack_tensor *pts[SI_LAYER_N_TENSORS];
    uint64_t lo = UINT64_MAX, hi = 0, stored = 0, raw = 0;
    bool decode = false, one_file = true;
    for (size_t i = 0; i < n; i++) {
        if (!(pts[i] = pack_tensor(b, ts[i], err)))
            return err ? err->code : SI_EFORMAT;
        const si_pack_chunk *k0 = si_pack_chunk_at(b->pack, pts[i]->first_chunk);
        const si_pack_chunk *kl = si_pack_chunk_at(b->pack, pts[i]->first_chunk + pts[i]->n_chunks - 1);
        lo = k0->offset < lo ? k0->offset : lo;
        hi = kl->offset + kl->stored > hi ? kl->offset + kl->stored : hi;
        for (uint32_t c = pts[i]->first_chunk; c < pts[i]->first_chunk + pts[i]->n_chunks; c++) {
            const si_pack_chunk *k = si_pack_chunk_at(b->pack, c);
            stored += k->stored;
            decode = decode || k->codec != SI_PACK_CODEC_RAW;
            one_file = one_file && k->member == si_pack_chunk_at(b->pack, pts[0]->first_chunk)->member;
        }
        raw += pts[i]->raw_size;
    }
    uint64_t span = hi - lo;
    if (one_file && stored >= span - span / 8 && pack_need(b, span, decode ? raw : 0) <= b->max_extent) {
        SI_TRY(pack_extent(b, si_pack_chunk_at(b->pack, pts[0]->first_chunk)->member, lo, hi, decode ? raw : 0, label,
                           err));
        uint64_t image = 0;
        for (size_t i = 0; i < n; i++) {
            const si_pack_chunk *k0 = si_pack_chunk_at(b->pack, pts[i]->first_chunk);
            SI_TRY(pack_frames(b, pts[i], pts[i]->first_chunk, pts[i]->first_chunk + pts[i]->n_chunks, image, err));
            SI_TRY(add_view(b, &tvs[i], decode ? image : k0->offset - lo, 0, ts[i]->n_rows, err));
            b->lay->views[b->lay->n_views - 1].release = (i == n - 1);
            image += pts[i]->raw_size;
        }
        return SI_OK;
    }
    for (size_t i = 0; i < n; i++)
        SI_TRY(pack_slices(b, ts[i], &tvs[i], err));
    return SI_OK;
}

int si_llama_layout_build_pack(si_llama_layout *lay, const si_llama_desc *d, const si_pack *pack,
                               uint64_t max_extent, uint64_t align, const bool *pin, si_error *err)
{
    memset(lay, 0, sizeof *lay);
    builder b = {.lay = lay, .max_extent = max_extent, .align = align, .pack = pack};
    lay->layer = calloc((size_t)d->hp.n_layer * SI_LAYER_N_TENSORS, sizeof *lay->layer);
    int rc = lay->layer ? SI_OK : si_errorf(err, SI_ENOMEM, "out of memory for the stream layout");
    for (uint32_t l = 0; l < d->hp.n_layer && rc == SI_OK; l++) {
        const si_tensor_ref *ts[SI_LAYER_N_TENSORS];
        si_llama_layer_tensors(d, l, ts);
        char label[32];
        snprintf(label, sizeof label, "layer %u", l);
        rc = add_group_pinned(&b, pack_group, pack_slices, ts, &lay->layer[(size_t)l * SI_LAYER_N_TENSORS],
                              SI_LAYER_N_TENSORS, pin ? pin + si_pin_slot(d, 0, l) : NULL, label, err);
    }
    if (rc == SI_OK) {
        const si_tensor_ref *ts[2] = {&d->output_norm, &d->output};
        si_tensor_views tvs[2] = {{0, 0}, {0, 0}};
        rc = add_group_pinned(&b, pack_group, pack_slices, ts, tvs, 2,
                              pin ? pin + si_pin_slot(d, SI_PIN_KIND_OUTPUT_NORM, 0) : NULL, "output_norm+output",
                              err);
        lay->output_norm = tvs[0];
        lay->output = tvs[1];
    }
    if (rc == SI_OK)
        for (size_t i = 0; i < lay->n_ext; i++)
            lay->ext[i].frames = lay->frames + b.frame0[i];
    free(b.frame0);
    if (rc < 0)
        si_llama_layout_free(lay);
    return rc;
}

void si_llama_layout_free(si_llama_layout *lay)
{
    free(lay->frames);
    free(lay->ext);
    free(lay->views);
    free(lay->layer);
    memset(lay, 0, sizeof *lay);
}
