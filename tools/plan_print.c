#include "plan_print.h"

#include <inttypes.h>

void si_print_plan(FILE *f, const char *model, const si_plan *p, double device_mbps)
{
    char a[32], b[32], c[32];
    /* at the start (the KV blocks of one full step beside the pins), and with the whole
     * pool in use (every pin given way) */
    uint64_t total = p->kv_start_bytes + p->act_bytes + p->ring_bytes + p->book_bytes + p->pin_bytes;
    uint64_t total_full = p->kv_bytes + p->act_bytes + p->ring_bytes + p->book_bytes;
    fprintf(f, "plan for %s\n", model);
    fprintf(f, "memory budget   : %s (%s)\n", si_format_size(p->budget, a, sizeof a), p->budget_source);
    fprintf(f, "fixed overhead  : %s beside the budget (code, libraries, metadata, tokenizer); peak RSS "
               "stays within %s\n",
            si_format_size(p->overhead_bytes, a, sizeof a), si_format_size(p->budget + p->overhead_bytes, b, sizeof b));
    fprintf(f, "context         : %u positions (%s)\n", p->n_ctx, p->ctx_source);
    fprintf(f, "step            : %u tokens per pass at most, %u logits rows\n", p->n_batch, p->logits_rows);
    if (p->kv_block_cells && p->kv_start_bytes < p->kv_bytes)
        fprintf(f, "KV cache        : up to %s, in blocks of %u cells as they are used (%s at the start); "
                   "pins give way to it\n",
                si_format_size(p->kv_bytes, a, sizeof a), p->kv_block_cells,
                si_format_size(p->kv_start_bytes, b, sizeof b));
    else
        fprintf(f, "KV cache        : %s\n", si_format_size(p->kv_bytes, a, sizeof a));
    fprintf(f, "activations     : %s\n", si_format_size(p->act_bytes, a, sizeof a));
    fprintf(f, "weight buffer   : %s\n", si_format_size(p->ring_bytes, a, sizeof a));
    fprintf(f, "bookkeeping     : %s (extent tables, views, scheduler slots)\n", si_format_size(p->book_bytes, a, sizeof a));
    if (p->pinned_tensors)
        fprintf(f, "pinned weights  : %s of %s left for pins, %u tensors: %s\n",
                si_format_size(p->pin_bytes, a, sizeof a), si_format_size(p->pin_budget, b, sizeof b),
                p->pinned_tensors, p->pins);
    else
        fprintf(f, "pinned weights  : none (%s left for pins)\n", si_format_size(p->pin_budget, a, sizeof a));
    fprintf(f, "total           : %s of %s", si_format_size(total, a, sizeof a), si_format_size(p->budget, b, sizeof b));
    if (total_full != total)
        fprintf(f, " (%s with the whole KV cache and no pins)", si_format_size(total_full, c, sizeof c));
    fprintf(f, "\n");
    fprintf(f, "bytes per pass  : %s (%.1f MB) streamed; %s without pins (the first pass reads that)\n",
            si_format_size(p->pass_bytes, a, sizeof a), (double)p->pass_bytes / 1e6,
            si_format_size(p->pass_bytes_unpinned, c, sizeof c));
    if (device_mbps > 0)
        fprintf(f, "time per pass   : %.1f s at %.1f MB/s (%.1f s without pins)\n",
                (double)p->pass_bytes / 1e6 / device_mbps, device_mbps,
                (double)p->pass_bytes_unpinned / 1e6 / device_mbps);
}
