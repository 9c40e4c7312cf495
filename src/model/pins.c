/* Choosing pinned tensors: every candidate is one whole tensor; its cost is measured
 * on a layout where it is its own extents (as it will be when pinned), so the memory
 * chosen is exactly what the scheduler allocates for it. */
#include "pins.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[SI_PIN_N_KINDS] = {"attn_norm", "attn_q",   "attn_k", "attn_v",
                                                       "attn_output", "ffn_norm", "ffn_gate", "ffn_up",
                                                       "ffn_down", "output_norm", "output"};

const char *si_pin_kind_name(uint32_t kind) { return kind < SI_PIN_N_KINDS ? kind_names[kind] : "?"; }

static int build(si_llama_layout *lay, const si_llama_desc *d, const struct si_pack *pack, uint64_t max_extent,
                 uint64_t align, const bool *pin, si_error *err)
{
    return pack ? si_llama_layout_build_pack(lay, d, pack, max_extent, align, pin, err)
                : si_llama_layout_build(lay, d, max_extent, align, pin, err);
}

/* Bytes a pass of lay streams (pinned extents left out unless all) and the memory its
 * pinned extents hold. */
static void layout_bytes(const si_llama_layout *lay, uint64_t align, uint64_t file_size, bool all,
                         uint64_t *streamed, uint64_t *pinned)
{
    *streamed = *pinned = 0;
    for (size_t i = 0; i < lay->n_ext; i++) {
        uint64_t rd, held;
        si_sched_extent_cost(&lay->ext[i], align, file_size, &rd, &held);
        if (lay->ext[i].pinned && !all)
            *pinned += held;
        else
            *streamed += rd;
    }
}

/* The extents of a tensor's views, each once: what reading and holding it costs. */
static void tensor_cost(const si_llama_layout *lay, const si_tensor_views *tv, uint64_t align, uint64_t file_size,
                        uint64_t *saved, uint64_t *held)
{
    *saved = *held = 0;
    for (uint32_t v = 0; v < tv->n; v++) {
        const si_view *w = &lay->views[tv->first + v];
        if (!w->release)
            continue; /* not its own extent (never for a pinned tensor) */
        uint64_t rd, h;
        si_sched_extent_cost(&lay->ext[w->extent], align, file_size, &rd, &h);
        *saved += rd;
        *held += h;
    }
}

/* "attn_q (all 32 layers), ffn_down (layers 0-9, 12)" into out. */
static void describe(const si_llama_desc *d, const bool *pin, char *out, size_t len)
{
    size_t at = 0;
    out[0] = 0;
#define PUT(...)                                                                                                 \
    do {                                                                                                         \
        if (at < len) {                                                                                          \
            int w_ = snprintf(out + at, len - at, __VA_ARGS__);                                                  \
            at += w_ > 0 ? (size_t)w_ : 0;                                                                       \
        }                                                                                                        \
    } while (0)
    uint32_t L = d->hp.n_layer;
    size_t n = si_pin_n_slots(d), count = 0;
    for (size_t i = 0; i < n; i++)
        count += pin[i];
    if (count == n) {
        PUT("every tensor");
        return;
    }
    for (uint32_t k = 0; k < SI_PIN_N_KINDS; k++) {
        if (k >= SI_LAYER_N_TENSORS) {
            if (pin[si_pin_slot(d, k, 0)])
                PUT("%s%s", at ? ", " : "", kind_names[k]);
            continue;
        }
        uint32_t count = 0;
        for (uint32_t l = 0; l < L; l++)
            count += pin[si_pin_slot(d, k, l)];
        if (!count)
            continue;
        PUT("%s%s (", at ? ", " : "", kind_names[k]);
        if (count == L) {
            PUT("all %u layers)", L);
            continue;
        }
        PUT("%s", count == 1 ? "layer " : "layers ");
        bool first = true;
        for (uint32_t l = 0; l < L; l++) {
            if (!pin[si_pin_slot(d, k, l)])
                continue;
            uint32_t e = l;
            while (e + 1 < L && pin[si_pin_slot(d, k, e + 1)])
                e++;
            if (e == l)
                PUT("%s%u", first ? "" : ", ", l);
            else
                PUT("%s%u-%u", first ? "" : ", ", l, e);
            first = false;
            l = e;
        }
        PUT(")");
    }
#undef PUT
    if (at >= len && len > 4) /* cut: say so */
        memcpy(out + len - 4, "...", 4);
}

/* The pins chosen, in their order, with their views in lay. */
static int list_pins(si_pins *pins, const si_llama_desc *d, const si_llama_layout *lay, const bool *pin,
                     const si_pin_unit *u, si_error *err)
{
    size_t n = si_pin_n_slots(d);
    uint32_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += pin[i];
    pins->u = calloc(count ? count : 1, sizeof *pins->u);
    SI_CHECK(!pins->u, err, SI_ENOMEM, "out of memory listing pins");
    for (size_t i = 0; i < n; i++) {
        if (!pin[i])
            continue;
        SI_CHECK(u[i].rank >= count, err, SI_EINVAL, "internal: pin rank %u of %u", u[i].rank, count);
        const si_tensor_views *tv = u[i].kind == SI_PIN_KIND_OUTPUT_NORM ? &lay->output_norm
                                    : u[i].kind == SI_PIN_KIND_OUTPUT
                                        ? &lay->output
                                        : &lay->layer[(size_t)u[i].index * SI_LAYER_N_TENSORS + u[i].kind];
        pins->u[u[i].rank] = (si_pin_held){.views = *tv, .held = u[i].held};
    }
    pins->n = pins->n_pinned = count;
    return SI_OK;
}

void si_pins_free(si_pins *pins)
{
    free(pins->u);
    memset(pins, 0, sizeof *pins);
}

static int set_pinned(const si_pin_held *h, si_sched *s, const si_llama_layout *lay, bool pinned, si_error *err)
{
    for (uint32_t v = 0; v < h->views.n; v++)
        SI_TRY(si_sched_set_pinned(s, lay->views[h->views.first + v].extent, pinned, err));
    return SI_OK;
}

int si_pins_release(si_pins *pins, si_sched *s, const si_llama_layout *lay, uint64_t need, uint64_t *freed,
                    si_error *err)
{
    *freed = 0;
    while (*freed < need && pins->n_pinned > 0) {
        const si_pin_held *h = &pins->u[pins->n_pinned - 1];
        SI_TRY(set_pinned(h, s, lay, false, err));
        pins->n_pinned--;
        pins->released++;
        *freed += h->held;
    }
    return SI_OK;
}

int si_pins_restore(si_pins *pins, si_sched *s, const si_llama_layout *lay, uint64_t room, si_error *err)
{
    while (pins->n_pinned < pins->n && pins->u[pins->n_pinned].held <= room) {
        const si_pin_held *h = &pins->u[pins->n_pinned];
        int rc = set_pinned(h, s, lay, true, err);
        if (rc < 0) { /* partly pinned: take back what was, so the prefix rule holds */
            si_error ignored;
            set_pinned(h, s, lay, false, &ignored);
            return rc;
        }
        room -= h->held;
        pins->n_pinned++;
        pins->restored++;
    }
    return SI_OK;
}

int si_llama_pins_layout(si_llama_layout *lay, const si_llama_desc *d, const struct si_pack *pack,
                         uint64_t max_extent, uint64_t align, uint64_t file_size, si_plan *plan, si_pins *pins,
                         si_error *err)
{
    uint64_t pinned;
    if (pins)
        memset(pins, 0, sizeof *pins);
    plan->pin_bytes = 0;
    plan->pinned_tensors = 0;
    plan->pins[0] = 0;
    SI_TRY(build(lay, d, pack, max_extent, align, NULL, err));
    layout_bytes(lay, align, file_size, true, &plan->pass_bytes_unpinned, &pinned);
    plan->pass_bytes = plan->pass_bytes_unpinned;
    if (plan->pin_budget == 0)
        return SI_OK;

    /* Every tensor pinned: each one's own extents, as when it is pinned alone. */
    size_t n = si_pin_n_slots(d);
    bool *pin = malloc(n * sizeof *pin);
    si_pin_unit *u = malloc(n * sizeof *u);
    si_llama_layout all;
    int rc = pin && u ? SI_OK : si_errorf(err, SI_ENOMEM, "out of memory choosing pins");
    for (size_t i = 0; rc == SI_OK && i < n; i++)
        pin[i] = true;
    if (rc == SI_OK)
        rc = build(&all, d, pack, max_extent, align, pin, err);
    if (rc == SI_OK) {
        for (uint32_t l = 0; l < d->hp.n_layer; l++)
            for (uint32_t k = 0; k < SI_LAYER_N_TENSORS; k++) {
                si_pin_unit *x = &u[si_pin_slot(d, k, l)];
                *x = (si_pin_unit){.kind = k, .index = l};
                tensor_cost(&all, &all.layer[(size_t)l * SI_LAYER_N_TENSORS + k], align, file_size, &x->saved,
                            &x->held);
            }
        si_pin_unit *on = &u[si_pin_slot(d, SI_PIN_KIND_OUTPUT_NORM, 0)], *o = &u[si_pin_slot(d, SI_PIN_KIND_OUTPUT, 0)];
        *on = (si_pin_unit){.kind = SI_PIN_KIND_OUTPUT_NORM};
        *o = (si_pin_unit){.kind = SI_PIN_KIND_OUTPUT};
        tensor_cost(&all, &all.output_norm, align, file_size, &on->saved, &on->held);
        tensor_cost(&all, &all.output, align, file_size, &o->saved, &o->held);
        si_llama_layout_free(&all);
        uint64_t held = si_plan_choose_pins(u, n, plan->pin_budget);
        uint32_t count = 0;
        for (size_t i = 0; i < n; i++)
            count += (pin[i] = u[i].chosen);
        if (count) {
            si_llama_layout with;
            rc = build(&with, d, pack, max_extent, align, pin, err);
            if (rc == SI_OK) {
                si_llama_layout_free(lay);
                *lay = with;
                layout_bytes(lay, align, file_size, false, &plan->pass_bytes, &plan->pin_bytes);
                plan->pinned_tensors = count;
                describe(d, pin, plan->pins, sizeof plan->pins);
                if (plan->pin_bytes != held) /* the costs were measured on the same extents */
                    rc = si_errorf(err, SI_EINVAL, "internal: pins hold %llu bytes, %llu were chosen",
                                   (unsigned long long)plan->pin_bytes, (unsigned long long)held);
                if (rc == SI_OK && pins)
                    rc = list_pins(pins, d, lay, pin, u, err);
            }
        }
    }
    free(pin);
    free(u);
    if (rc < 0)
        si_llama_layout_free(lay);
    return rc;
}
