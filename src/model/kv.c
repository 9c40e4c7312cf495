/* The KV pool: cells, their positions and sequence sets, and the rows they hold.
 *
 *   k, v  [n_layer][n_cells][row_bytes]   rows of every layer, by cell
 *   pos   [n_cells]                        position of the token in the cell
 *   seq   [n_cells]                        sequences it belongs to (0: free) */
#include "streaminfer/kv.h"

#include <stdlib.h>
#include <string.h>

struct si_kv {
    uint32_t n_cells, n_layer, n_free;
    uint32_t free_hint; /* no free cell below this index */
    size_t row_bytes;
    uint8_t *k, *v;
    uint32_t *pos;
    si_seq_set *seq;
};

si_kv *si_kv_new(uint32_t n_cells, uint32_t n_layer, size_t row_bytes)
{
    si_kv *kv = calloc(1, sizeof *kv);
    if (!kv)
        return NULL;
    size_t bytes = (size_t)n_layer * n_cells * row_bytes;
    kv->n_cells = n_cells;
    kv->n_layer = n_layer;
    kv->n_free = n_cells;
    kv->row_bytes = row_bytes;
    kv->k = calloc(1, bytes ? bytes : 1);
    kv->v = calloc(1, bytes ? bytes : 1);
    kv->pos = calloc(n_cells ? n_cells : 1, sizeof *kv->pos);
    kv->seq = calloc(n_cells ? n_cells : 1, sizeof *kv->seq);
    if (!kv->k || !kv->v || !kv->pos || !kv->seq) {
        si_kv_free(kv);
        return NULL;
    }
    return kv;
}

void si_kv_free(si_kv *kv)
{
    if (!kv)
        return;
    free(kv->k);
    free(kv->v);
    free(kv->pos);
    free(kv->seq);
    free(kv);
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
    if (!kv->n_free || !seqs)
        return -1;
    for (uint32_t c = kv->free_hint; c < kv->n_cells; c++)
        if (!kv->seq[c]) {
            kv->seq[c] = seqs;
            kv->pos[c] = pos;
            kv->n_free--;
            kv->free_hint = c + 1;
            return c;
        }
    return -1; /* not reached: n_free counts the free cells at or above the hint */
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

void *si_kv_k_row(si_kv *kv, uint32_t layer, uint32_t cell)
{
    return kv->k + ((size_t)layer * kv->n_cells + cell) * kv->row_bytes;
}

void *si_kv_v_row(si_kv *kv, uint32_t layer, uint32_t cell)
{
    return kv->v + ((size_t)layer * kv->n_cells + cell) * kv->row_bytes;
}

uint32_t si_kv_cell_pos(const si_kv *kv, uint32_t cell) { return kv->pos[cell]; }
