/* The KV cache as a pool of cells shared by sequences.
 *
 * Each cell holds the K and V rows of one token (every layer) with the token's
 * position and the set of sequences it belongs to; a token of a prefix shared by
 * several sequences is stored once. A token attends to exactly the cells of its own
 * sequences at earlier or equal positions, in position order, so its result does not
 * depend on which cells it landed in or on what else shares its step. A cell whose
 * sequence set becomes empty is free at once. */
#ifndef STREAMINFER_KV_H
#define STREAMINFER_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sequence ids are 0 .. SI_MAX_SEQ-1; a set of them is a bit mask. */
#define SI_MAX_SEQ 64
typedef uint64_t si_seq_set;
#define SI_SEQ(s) ((si_seq_set)1 << (s))
#define SI_POS_END UINT32_MAX /* "to the end" in position ranges */

typedef struct si_kv si_kv;

/* Cell bookkeeping (the rows themselves live beside it: si_kv_k_row / si_kv_v_row).
 * si_kv_new allocates every row at once; si_kv_new_blocks none: the rows come in blocks
 * of block_cells cells, allocated by si_kv_grow and freed by si_kv_shrink, and
 * si_kv_alloc takes cells of allocated blocks only. */
si_kv *si_kv_new(uint32_t n_cells, uint32_t n_layer, size_t row_bytes);
si_kv *si_kv_new_blocks(uint32_t n_cells, uint32_t n_layer, size_t row_bytes, uint32_t block_cells);
void si_kv_free(si_kv *kv);

uint32_t si_kv_block_cells(const si_kv *kv); /* cells per block (the last may have fewer) */
uint32_t si_kv_n_blocks(const si_kv *kv);
uint32_t si_kv_n_blocks_allocated(const si_kv *kv);
/* Bytes of block b's rows (K and V of every layer), and of the blocks allocated. */
uint64_t si_kv_block_bytes(const si_kv *kv, uint32_t b);
uint64_t si_kv_allocated_bytes(const si_kv *kv);
/* The block si_kv_grow would allocate (the lowest one not allocated); -1 when none. */
int64_t si_kv_next_block(const si_kv *kv);
/* Allocate that block: 0, or -1 when every block is allocated or memory is short. */
int si_kv_grow(si_kv *kv);
/* Free allocated blocks that hold no used cell, highest first, while at least
 * keep_ready free cells stay in allocated blocks; returns how many were freed. */
uint32_t si_kv_shrink(si_kv *kv, uint32_t keep_ready);
/* Free cells in allocated blocks: what si_kv_alloc can take without si_kv_grow. */
uint32_t si_kv_n_free_ready(const si_kv *kv);

uint32_t si_kv_n_cells(const si_kv *kv);
/* Free cells, whether their block is allocated or not: what the pool can still take. */
uint32_t si_kv_n_free(const si_kv *kv);
/* Cells whose sequence set intersects seqs. */
uint32_t si_kv_n_used_by(const si_kv *kv, si_seq_set seqs);
/* Used cells that belong to no sequence outside seqs (what dropping seqs would free). */
uint32_t si_kv_n_only(const si_kv *kv, si_seq_set seqs);
/* Highest position stored for seq, or -1 when it has none. */
int64_t si_kv_seq_pos_max(const si_kv *kv, uint32_t seq);

/* Drop seq's cells with positions in [p0, p1) (p1 = SI_POS_END: to the end). */
void si_kv_seq_rm(si_kv *kv, uint32_t seq, uint32_t p0, uint32_t p1);
/* Let dst share src's cells with positions in [p0, p1): no data is copied. */
void si_kv_seq_cp(si_kv *kv, uint32_t src, uint32_t dst, uint32_t p0, uint32_t p1);
/* Drop every sequence but seq. */
void si_kv_seq_keep(si_kv *kv, uint32_t seq);
/* Drop everything. */
void si_kv_clear(si_kv *kv);

/* ---- used by the forward pass ---- */

/* Take a free cell (of an allocated block) for a token at pos in seqs; -1 when there
 * is none. */
int64_t si_kv_alloc(si_kv *kv, uint32_t pos, si_seq_set seqs);
/* Give back a cell taken by si_kv_alloc (a step that failed). */
void si_kv_release(si_kv *kv, uint32_t cell);
/* The cells a token of seqs at pos attends to, in position order: writes at most
 * si_kv_n_cells indices to cells and returns how many. A sequence holds one cell per
 * position, so the order is that of the positions. */
uint32_t si_kv_visible(const si_kv *kv, si_seq_set seqs, uint32_t pos, uint32_t *cells);
/* Bytes of layer l's K (or V) rows of a cell: row_bytes each. */
void *si_kv_k_row(si_kv *kv, uint32_t layer, uint32_t cell);
void *si_kv_v_row(si_kv *kv, uint32_t layer, uint32_t cell);
uint32_t si_kv_cell_pos(const si_kv *kv, uint32_t cell);

#ifdef __cplusplus
}
#endif
#endif
