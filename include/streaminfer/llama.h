/* The streamed Llama engine: open a model, evaluate tokens, read the report.
 *
 * Every call to si_llama_eval is one or more weight passes: all tokens of a step go
 * through layer l before layer l+1 is read, so a whole prompt costs one pass (up to
 * n_batch tokens). The KV cache stays resident; weights are streamed. */
#ifndef STREAMINFER_LLAMA_H
#define STREAMINFER_LLAMA_H

#include <stdbool.h>
#include <stdint.h>

#include "streaminfer/error.h"
#include "streaminfer/gguf.h"
#include "streaminfer/io.h"
#include "streaminfer/kv.h"
#include "streaminfer/model.h"
#include "streaminfer/plan.h"
#include "streaminfer/sched.h"

#ifdef __cplusplus
extern "C" {
#endif

/* KV cache element type. Q8_0: blocks of 32 values and an F16 scale (34 bytes per 32
 * values), quantized as the Q8_0 activations are; needs a head size that is a multiple
 * of 32 (a block never spans two heads): other models are refused at open. */
typedef enum si_kv_type { SI_KV_F16 = 0, SI_KV_F32 = 1, SI_KV_Q8_0 = 2 } si_kv_type;

/* Pinned weights: tensors read in the first pass and kept, so later passes stream
 * only the rest (whole tensors, the same kind in every layer first; see plan.h). */
typedef enum si_pin_mode {
    SI_PIN_NONE = 0, /* stream everything every pass */
    SI_PIN_AUTO,     /* pin what the budget leaves beside ring, activations and KV cache */
    SI_PIN_SIZE      /* the same, at most pin_size bytes */
} si_pin_mode;

/* Where a pass is, for a progress display: reported to si_llama_opts.progress when a
 * pass begins (layer 0), after each layer (layer = layers done) and when the classifier
 * is done (layer = n_layer, weight_bytes_done = weight_bytes). */
typedef struct si_llama_progress {
    uint64_t pass;              /* this pass's number, from 1 */
    uint32_t layer, n_layer;
    uint32_t n_tokens;          /* tokens in this pass's step */
    uint64_t weight_bytes_done; /* bytes of the pass's extents consumed so far */
    uint64_t weight_bytes;      /* bytes of all of the pass's extents */
    uint64_t bytes_read;        /* bytes the scheduler has read so far, every pass included */
} si_llama_progress;

typedef struct si_llama_opts {
    si_io_opts io;
    uint64_t mem_budget;  /* 0 = what the process may really use */
    uint32_t n_ctx;       /* 0 = model's, capped by the budget */
    uint32_t n_batch;     /* 0 = planned */
    si_kv_type kv_type;
    bool all_logits;      /* a step may ask for every token's logits (--dump-logits) */
    uint32_t n_seq_max;   /* sequences that may share a step (logits rows planned); 0 = 1 */
    uint32_t n_draft_max; /* guessed tokens per sequence and step (logits rows planned) */
    uint64_t chunk_bytes; /* largest read; 0 = default */
    si_pin_mode pin;      /* library default: none (the command-line tools default to auto) */
    uint64_t pin_size;    /* SI_PIN_SIZE: pinned bytes at most */
    uint64_t ring_bytes;  /* weight buffer at most; 0 = the plan's choice */
    bool plan_only;       /* only the plan (si_llama_plan_of): no buffers, no reads, no eval */
    /* Called from the pass loop (the thread evaluating) with where the pass is; it must
     * not call into the model. NULL: none. The model itself never prints. */
    void (*progress)(void *ctx, const si_llama_progress *p);
    void *progress_ctx;
    /* Compute threads (1..256): matrix products split by output rows, attention by
     * heads; logits are bit-identical for every count. 0 = the online CPUs of the
     * process's affinity set. Reads stay on the calling thread. */
    uint32_t n_threads;
    /* Asked before each extent of a weight matrix in a pass (on the thread evaluating;
     * it must not call into the model): true stops the pass there, and si_llama_decode
     * returns SI_ESTOPPED naming the tensor, with the step's cells given back as after a
     * failed read, so the next step starts clean. For Ctrl-C on a device where one pass
     * takes minutes: the wait is one extent's read. NULL: never. */
    bool (*should_stop)(void *ctx);
    void *should_stop_ctx;
} si_llama_opts;

typedef struct si_llama_stats {
    si_sched_stats sched;
    uint64_t embd_bytes_read; /* embedding rows read on demand */
    uint64_t open_bytes_read; /* small tensors read once at open (rope_freqs) */
    uint64_t io_bytes_read;   /* everything read from the file */
    uint64_t tokens_evaluated;
    double compute_s;         /* time in passes not spent waiting on reads */
    double pass_s;            /* time in passes */
    double verify_s;          /* packs: checksumming extents (part of compute_s) */
    double decode_s;          /* packs: decompressing zstd chunks (part of compute_s) */
    uint64_t checksum_rereads; /* packs: chunks read again after a checksum mismatch */
    /* Memory: ring + activations + KV blocks + pins, which the plan's budget bounds. */
    uint64_t held_bytes;      /* now */
    uint64_t held_peak_bytes; /* the most at any moment so far */
    uint64_t kv_bytes;        /* KV blocks allocated now */
    uint64_t kv_peak_bytes;
    uint32_t pins_held;       /* pinned tensors now (sched.pinned_bytes: their memory) */
    uint32_t pins_planned;    /* pinned tensors at open */
    uint64_t pins_released;   /* pinned tensors that gave way to KV blocks, so far */
    uint64_t pins_restored;   /* and that were pinned again when blocks were freed */
    uint64_t passes_stopped;  /* passes ended early by should_stop */
    si_sched_io io;           /* how the file is read (backend, O_DIRECT, fallback note) */
} si_llama_stats;

typedef struct si_llama si_llama;

int si_llama_open(si_llama **out, const char *path, const si_llama_opts *opts, si_error *err);
void si_llama_close(si_llama *m);

const si_llama_hparams *si_llama_hparams_of(const si_llama *m);
const si_plan *si_llama_plan_of(const si_llama *m);
const si_gguf *si_llama_gguf(const si_llama *m);
uint32_t si_llama_pos(const si_llama *m); /* si_llama_eval's next position (sequence 0) */
uint32_t si_llama_n_threads(const si_llama *m); /* compute threads in use (opts.n_threads resolved) */

/* Sequence 0 alone: evaluate n tokens at positions pos..pos+n-1. logits receives n rows of n_vocab
 * floats when opts.all_logits, else one row (the last token's). Steps of more than
 * n_batch tokens take several passes. another_follows: the caller will evaluate
 * again (lets the scheduler prefetch the next pass). */
int si_llama_eval(si_llama *m, const int32_t *ids, uint32_t n, bool another_follows, float *logits,
                  si_error *err);
/* One step of a batch: token i has id[i] at position pos[i] in the sequences seq[i],
 * and logits[i] says whether its logits row is wanted (NULL: only the last token's). */
typedef struct si_batch {
    uint32_t n;
    const int32_t *id;
    const uint32_t *pos;
    const si_seq_set *seq;
    const bool *logits;
} si_batch;

/* One pass over the batch (n <= n_batch, one free KV cell per token): each token is
 * stored in a cell of its sequences and attends to theirs. out receives one row of
 * n_vocab floats per token that asked, in batch order. Fails with SI_EINVAL (nothing
 * changed) when the pool has too few free cells or a row count exceeds what the plan
 * holds (n_seq_max rows, or n_batch with all_logits). */
int si_llama_decode(si_llama *m, const si_batch *b, bool another_follows, float *out, si_error *err);
/* Most logits rows one step may ask for. */
uint32_t si_llama_max_logits_rows(const si_llama *m);
si_kv *si_llama_kv(si_llama *m);

/* Wait for reads still in flight; call before reading final statistics. */
int si_llama_finish(si_llama *m, si_error *err);
void si_llama_get_stats(const si_llama *m, si_llama_stats *st);
/* Files the weights stream from (a striped pack's members: several; else 1), and each
 * one's bytes, reads and busy time (si_sched_file_stats). */
uint32_t si_llama_n_files(const si_llama *m);
void si_llama_file_stats(const si_llama *m, uint32_t i, si_sched_file_stats *fs);

/* Striped packs: directories where si_llama_open looks for the members other than the
 * one it is given, after that one's own directory, in the order added (process-wide,
 * like --stripe-path; not thread-safe against a concurrent si_llama_open). SI_ENOMEM or
 * SI_EINVAL (more than 64 directories). _clear forgets them all. */
int si_llama_stripe_path_add(const char *dir, si_error *err);
void si_llama_stripe_path_clear(void);

#ifdef __cplusplus
}
#endif
#endif
