/* The KV pool: cells, their positions and sequence sets, and the rows they hold.
 *
 *   block[b]  [2][n_layer][cells of b][row_bytes]   K then V rows of every layer, by cell;
 *             block b holds cells b*block_cells .. (b+1)*block_cells-1, allocated only
 *             while needed (si_kv_grow / si_kv_shrink) unless the pool was made whole
 *   pos   [n_cells]                        position of the token in the cell
 *   seq   [n_cells]                        sequences it belongs to (0: free)
 *
 * Blocks let the memory of the rows follow the cells in use, so that memory the pool
 * does not need can hold pinned weights meanwhile (src/model/llama.c). Cells are taken
 * lowest first, so the cells in use gather in the low blocks and the high ones empty
 * as sequences end. */
#include "streaminfer/kv.h"

#include <stdlib.h>
#include <string.h>

struct si_kv {
    uint32_t n_cells, n_layer, n_free;
    uint32_t n_ready;   /* free cells in allocated blocks */
    uint32_t free_hint; /* no free cell of an allocated block below this index */
    size_t row_bytes;
    uint32_t block_cells, n_blocks, n_alloc;
    uint8_t **block;    /* [n_blocks] NULL while not allocated */
    uint32_t *pos;
    si_seq_set *seq;
};

static uint32_t block_len(const si_kv *kv, uint32_t b)
{
    uint32_t first = b * kv->block_cells;
    return kv->n_cells - first < kv->block_cells ? kv->n_cells - first : kv->block_cells;
}

static si_kv *kv_make(uint32_t n_cells, uint32_t n_layer, size_t row_bytes, uint32_t block_cells)
{
    si_kv *kv = calloc(1, sizeof *kv);
    if (!kv)
        return NULL;
    kv->n_cells = n_cells;
    kv->n_layer = n_layer;
    kv->n_free = n_cells;
    kv->row_bytes = row_bytes;
    kv->block_cells = block_cells ? block_cells : 1;
    kv->n_blocks = (n_cells + kv->block_cells - 1) / kv->block_cells;
    kv->block = calloc(kv->n_blocks ? kv->n_blocks : 1, sizeof *kv->block);
    kv->pos = calloc(n_cells ? n_cells : 1, sizeof *kv->pos);
    kv->seq = calloc(n_cells ? n_cells : 1, sizeof *kv->seq);
    if (!kv->block || !kv->pos || !kv->seq) {
        si_kv_free(kv);
        return NULL;
    }
    return kv;
}

si_kv *si_kv_new(uint32_t n_cells, uint32_t n_layer, size_t row_bytes)
{
    si_kv *kv = kv_make(n_cells, n_layer, row_bytes, n_cells);
    while (kv && kv->n_alloc < kv->n_blocks)
        if (si_kv_grow(kv) < 0) {
            si_kv_free(kv);
            return NULL;
        }
    return kv;
}

si_kv *si_kv_new_blocks(uint32_t n_cells, uint32_t n_layer, size_t row_bytes, uint32_t block_cells)
{
    return kv_make(n_cells, n_layer, row_bytes, block_cells);
}

void si_kv_free(si_kv *kv)
{
    if (!kv)
        return;
    for (uint32_t b = 0; kv->block && b < kv->n_blocks; b++)
        free(kv->block[b]);
    free(kv->block);
    free(kv->pos);
    free(kv->seq);
    free(kv);
}

uint32_t si_kv_block_cells(const si_kv *kv) { return kv->block_cells; }
uint32_t si_kv_n_blocks(const si_kv *kv) { return kv->n_blocks; }
uint32_t si_kv_n_blocks_allocated(const si_kv *kv) { return kv->n_alloc; }
uint32_t si_kv_n_free_ready(const si_kv *kv) { return kv->n_ready; }

uint64_t si_kv_block_bytes(const si_kv *kv, uint32_t b)
{
    return 2 * (uint64_t)kv->n_layer * block_len(kv, b) * kv->row_bytes;
}

uint64_t si_kv_allocated_bytes(const si_kv *kv)
{
    uint64_t n = 0;
    for (uint32_t b = 0; b < kv->n_blocks; b++)
        n += kv->block[b] ? si_kv_block_bytes(kv, b) : 0;
    return n;
}

int64_t si_kv_next_block(const si_kv *kv)
{
    for (uint32_t b = 0; b < kv->n_blocks; b++)
        if (!kv->block[b])
            return b;
    return -1;
}

int si_kv_grow(si_kv *kv)
{
    int64_t b = si_kv_next_block(kv);
    if (b < 0)
        return -1;
    uint64_t bytes = si_kv_block_bytes(kv, (uint32_t)b);
    if (!(kv->block[b] = malloc(bytes ? (size_t)bytes : 1)))
        return -1;
    kv->n_alloc++;
    uint32_t first = (uint32_t)b * kv->block_cells, len = block_len(kv, (uint32_t)b);
    for (uint32_t c = first; c < first + len; c++)
        kv->n_ready += !kv->seq[c];
    if (first < kv->free_hint)
        kv->free_hint = first;
    return 0;
}

uint32_t si_kv_shrink(si_kv *kv, uint32_t keep_ready)
{
    uint32_t freed = 0;
    for (uint32_t b = kv->n_blocks; b-- > 0;) {
        if (!kv->block[b])
            continue;
        uint32_t first = b * kv->block_cells, len = block_len(kv, b), used = 0;
        for (uint32_t c = first; c < first + len && !used; c++)
            used += kv->seq[c] != 0;
        if (used || kv->n_ready - len < keep_ready)
            continue;
        free(kv->block[b]);
        kv->block[b] = NULL;
        kv->n_alloc--;
        kv->n_ready -= len;
        freed++;
    }
    return freed;
}

uint32_t si_kv_n_cells(const si_kv *kv) { return kv->n_cells; }
uint32_t si_kv_n_free(const si_kv *kv) { return kv->n_free; }

uint32_t si_kv_n_used_by(const si_kv *kv, si_seq_set seqs)
{
    uint32_t n = 0;
    for (uint32_t c = 0; c < kv->n_cells; c++)
        n += (kv->seq[c] & seqs) != 0;
    return n;
}

uint32_t si_kv_n_only(const si_kv *kv, si_seq_set seqs)
{
    uint32_t n = 0;
    for (uint32_t c = 0; c < kv->n_cells; c++)
        n += kv->seq[c] && !(kv->seq[c] & ~seqs);
    return n;
}

int64_t si_kv_seq_pos_max(const si_kv *kv, uint32_t seq)
{
    int64_t best = -1;
    for (uint32_t c = 0; c < kv->n_cells; c++)
        if ((kv->seq[c] & SI_SEQ(seq)) && (int64_t)kv->pos[c] > best)
            best = kv->pos[c];
    return best;
}

/* Take seqs' bits off a cell; a cell left with none is free. */
static void drop(si_kv *kv, uint32_t c, si_seq_set seqs)
{
    if (!kv->seq[c] || !(kv->seq[c] & seqs))
        return;
    kv->seq[c] &= ~seqs;
    if (!kv->seq[c]) {
        kv->n_free++;
        kv->n_ready++; /* a used cell is always in an allocated block */
        if (c < kv->free_hint)
            kv->free_hint = c;
    }
}

void si_kv_seq_rm(si_kv *kv, uint32_t seq, uint32_t p0, uint32_t p1)
{
    for (uint32_t c = 0; c < kv->n_cells; c++)
        if (kv->pos[c] >= p0 && kv->pos[c] < p1)
            drop(kv, c, SI_SEQ(seq));
}

void si_kv_seq_cp(si_kv *kv, uint32_t src, uint32_t dst, uint32_t p0, uint32_t p1)
{
    for (uint32_t c = 0; c < kv->n_cells; c++)
        if ((kv->seq[c] & SI_SEQ(src)) && kv->pos[c] >= p0 && kv->pos[c] < p1)
            kv->seq[c] |= SI_SEQ(dst);
}

void si_kv_seq_keep(si_kv *kv, uint32_t seq)
{
    for (uint32_t c = 0; c < kv->n_cells; c++)
        drop(kv, c, ~SI_SEQ(seq));
}

void si_kv_clear(si_kv *kv)
{
    for (uint32_t c = 0; c < kv->n_cells; c++)
        drop(kv, c, ~(si_seq_set)0);
}

int64_t si_kv_alloc(si_kv *kv, uint32_t pos, si_seq_set seqs)
{
    if (!kv->n_ready || !seqs)
        return -1;
    for (uint32_t c = kv->free_hint; c < kv->n_cells; c++) {
        if (!kv->block[c / kv->block_cells]) { /* skip a block that is not allocated */
            c = (c / kv->block_cells + 1) * kv->block_cells - 1;
            continue;
        }
        if (!kv->seq[c]) {
            kv->seq[c] = seqs;
            kv->pos[c] = pos;
            kv->n_free--;
            kv->n_ready--;
            kv->free_hint = c + 1;
            return c;
        }
    }
    return -1; /* not reached: n_ready counts the free cells of allocated blocks at or above the hint */
}

void si_kv_release(si_kv *kv, uint32_t cell) { drop(kv, cell, ~(si_seq_set)0); }

static int by_pos_then_cell(const void *a, const void *b, void *ctx)
{
    const uint32_t *pos = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (pos[x] != pos[y])
        return pos[x] < pos[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

uint32_t si_kv_visible(const si_kv *kv, si_seq_set seqs, uint32_t pos, uint32_t *cells)
{
    uint32_t n = 0;
    bool sorted = true;
    for (uint32_t c = 0; c < kv->n_cells; c++)
        if ((kv->seq[c] & seqs) && kv->pos[c] <= pos) {
            if (n && kv->pos[cells[n - 1]] >= kv->pos[c])
                sorted = false;
            cells[n++] = c;
        }
    /* Cells are taken lowest first, so one sequence's usually come in order already. */
    if (!sorted)
        qsort_r(cells, n, sizeof *cells, by_pos_then_cell, kv->pos);
    return n;
}

static void *row(si_kv *kv, uint32_t kv_half, uint32_t layer, uint32_t cell)
{
    uint32_t b = cell / kv->block_cells, len = block_len(kv, b);
    return kv->block[b] + (((size_t)kv_half * kv->n_layer + layer) * len + cell % kv->block_cells) * kv->row_bytes;
}

void *si_kv_k_row(si_kv *kv, uint32_t layer, uint32_t cell) { return row(kv, 0, layer, cell); }
void *si_kv_v_row(si_kv *kv, uint32_t layer, uint32_t cell) { return row(kv, 1, layer, cell); }

uint32_t si_kv_cell_pos(const si_kv *kv, uint32_t cell) { return kv->pos[cell]; }
