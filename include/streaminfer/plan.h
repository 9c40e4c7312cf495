/* The memory plan: how a budget is split between the KV cache, activations and
 * the weight ring. Everything the engine allocates per model is counted here, so
 * --mem-budget is a real bound. */
#ifndef STREAMINFER_PLAN_H
#define STREAMINFER_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "streaminfer/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SI_RING_DEFAULT_CAP (96ull << 20) /* weight buffers for an 8B model stay within this */
/* With pins, the weight buffer is kept to what overlap needs and the rest goes to pins:
 * in the envelope at 100 MB/s an 8B pass streams as fast with 32 MiB as with 96 MiB
 * (docs/BENCHMARKS.md, "Pinned weights"). */
#define SI_RING_PIN_CAP (32ull << 20)

typedef struct si_plan_req {
    uint64_t budget;              /* bytes; 0 = si_plan_default_budget() */
    uint32_t n_ctx;               /* 0 = the model's trained context, capped so that a full
                                     step (see n_batch) and the smallest ring still fit */
    uint32_t n_ctx_train;
    uint32_t n_batch;             /* tokens per step; 0 = the largest power of two <= 256 whose
                                     activations (without the context's, with logits_rows_step
                                     rows) fit in 1/8 of the budget, halved while the smallest
                                     context does not fit */
    uint64_t kv_bytes_per_pos;    /* K and V of all layers for one position */
    uint32_t kv_block_cells;      /* the KV rows come in blocks of this many cells as they are
                                     used (0: all at once); pins are sized beside the blocks of
                                     one full step and give way when more are needed */
    uint64_t act_bytes_per_token; /* activations of one token of a step */
    uint64_t act_bytes_per_pos;   /* activations per context position (attention scores) */
    uint64_t act_fixed_bytes;     /* activations independent of batch and context */
    uint64_t logits_row_bytes;    /* one row of logits */
    uint32_t logits_rows;         /* logits rows one step may ask for (e.g. one per sequence
                                     sharing a step); 0 = 1; never more than n_batch */
    uint32_t logits_rows_step;    /* of those, the rows the step-size rule counts (one per
                                     sequence: guessed tokens' rows stay in the budget but do
                                     not halve the step); 0 = logits_rows */
    bool logits_all_tokens;       /* a step may ask for every token's logits: n_batch rows */
    uint64_t ring_want;           /* ring that holds a whole pass (capped by the caller) */
    uint64_t ring_min;            /* smallest ring that works (a few of the widest rows) */
    uint64_t pin_max;             /* pinned weights at most: 0 = none, UINT64_MAX = all the plan leaves */
    /* The engine's bookkeeping (extent tables, views, scheduler slots): book_fixed_bytes,
     * plus book_bytes_per_extent for each extent a pass is cut into, of which there are at
     * most 9 * book_extent_bytes / ring (extents are at most ring / 3 bytes once aligned,
     * and a tensor's row slices at least half of that). A larger ring means fewer
     * extents: the plan never gives the ring less than the size at which ring +
     * bookkeeping is smallest. All 0: none counted. */
    uint64_t book_fixed_bytes;
    uint64_t book_bytes_per_extent;
    uint64_t book_extent_bytes;   /* bytes the extents of a pass cover, pinned ones included */
    uint64_t overhead_bytes;      /* the process's fixed memory beside the budget (code, libraries,
                                     the file's metadata, the tokenizer; si_plan_fixed_overhead):
                                     the default budget leaves it out; 0 = none */
} si_plan_req;

typedef struct si_plan {
    uint64_t budget;
    char budget_source[160]; /* how the budget was chosen */
    uint64_t overhead_bytes; /* the process's fixed memory beside the budget (req.overhead_bytes):
                                peak RSS stays within budget + overhead_bytes */
    uint32_t n_ctx;
    char ctx_source[160];    /* how n_ctx was chosen */
    uint32_t n_batch;
    uint32_t logits_rows;    /* logits rows one step may ask for, as planned */
    uint64_t kv_bytes;       /* the whole pool: n_ctx cells (the most it may ever hold) */
    uint64_t kv_start_bytes; /* the blocks of one full step: what pins are sized beside */
    uint32_t kv_block_cells;
    uint64_t act_bytes;
    uint64_t ring_bytes;
    uint64_t book_bytes;     /* the engine's bookkeeping at this ring (si_plan_req.book_*) */
    /* Pins: the budget gives pinned weights what ring, activations and the KV blocks of
     * one full step leave (at most pin_max); the model chooses within it
     * (si_plan_choose_pins) and fills in the rest. When the KV pool grows beyond those
     * blocks, pins give way (least saving first) and return when blocks are free again;
     * with every pin released the whole pool fits, so the budget holds at every moment. */
    uint64_t pin_budget;     /* left for pinned weights */
    uint64_t pin_bytes;      /* pinned weights held */
    uint32_t pinned_tensors;
    char pins[200];          /* which: "ffn_down (all 32 layers), attn_q (layers 0-9)"; "" when none */
    uint64_t pass_bytes;     /* bytes a pass streams (after the first, which also reads the pins) */
    uint64_t pass_bytes_unpinned; /* bytes a pass would stream with nothing pinned */
} si_plan;

/* The step size, the context and the ring for req. Activations are sized for the
 * chosen batch and context: act(B, ctx) = act_fixed + B * act_per_token + ctx *
 * act_per_pos + logits rows(B) * logits_row, and the plan needs act(B, ctx) + ctx *
 * kv_per_pos + ring + bookkeeping(ring). It succeeds iff the budget holds that with the
 * smallest ring (ring_min, or the larger ring at which ring + bookkeeping is least), the smallest
 * context (req->n_ctx, else min(n_ctx_train, 64)) and the smallest step (req->n_batch,
 * else 1); else it fails with SI_EBUDGET and a message naming exactly that minimum
 * ("at least 1.2 MiB (1258291 bytes)"). */
int si_plan_make(const si_plan_req *req, si_plan *plan, si_error *err);

/* A candidate pin: one tensor (kind: which tensor of a layer, or one of the others;
 * index: its layer), the memory holding it and the bytes it saves each pass. */
typedef struct si_pin_unit {
    uint32_t kind;
    uint32_t index;
    uint64_t held;
    uint64_t saved;
    bool chosen;
    uint32_t rank; /* when chosen: its place in the choice (0 first); pins give way from the last */
} si_pin_unit;

/* Choose pins within budget, so that the streamed remainder stays in long sequential
 * reads of whole tensors, the same in every layer: kinds by saving per byte held
 * (in steps of 1%), the larger first at equal saving; first every kind that fits
 * whole (all its units), then, with what is left, units of the other kinds in that
 * order (by index). Sets chosen; returns the bytes held. */
uint64_t si_plan_choose_pins(si_pin_unit *u, size_t n, uint64_t budget);

/* What this process may really use: the smaller of the cgroup memory limit (v1 or
 * v2, the tightest on the path) and MemAvailable, less a margin for the page cache
 * and the rest of the system, less overhead (the process's fixed memory beside the
 * budget, si_plan_fixed_overhead), so that budget + overhead stays under the limit.
 * source (may be NULL) describes it. */
uint64_t si_plan_default_budget(uint64_t overhead, char *source, size_t source_len);

/* The process's fixed memory beside the budget, measured before the plan's
 * allocations: its anonymous resident memory now (RssAnon: the file's metadata, stacks,
 * what is already allocated), every file mapping whole (the program's and the libraries'
 * code and data, as much as can ever be resident), plus metadata_bytes once more for the
 * tokenizer, which copies the vocabulary from the metadata when a front end loads it.
 * 0 parts where /proc is unreadable. */
uint64_t si_plan_fixed_overhead(uint64_t metadata_bytes);

/* "512M", "1.5G", "4096", "64K" (powers of 1024). */
int si_parse_size(const char *s, uint64_t *out);
/* "96.0 MiB" */
const char *si_format_size(uint64_t bytes, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
