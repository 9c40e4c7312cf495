/* The KV pool's bookkeeping: cells taken lowest first and reused at once when freed,
 * sequence removal by position range, prefix sharing without copies, keep, and the
 * visible cells of a token in position order whatever cells they landed in. */
#include "streaminfer/kv.h"

#include "../test_util.h"

static uint32_t visible(si_kv *kv, si_seq_set s, uint32_t pos, uint32_t *cells)
{
    return si_kv_visible(kv, s, pos, cells);
}

int main(void)
{
    si_kv *kv = si_kv_new(8, 2, 16);
    CHECK(kv);
    CHECK_EQ_INT(si_kv_n_free(kv), 8);
    /* seq 0: positions 0..2 in cells 0..2; seq 1: positions 0..1 in cells 3..4 */
    for (uint32_t p = 0; p < 3; p++)
        CHECK_EQ_INT(si_kv_alloc(kv, p, SI_SEQ(0)), p);
    CHECK_EQ_INT(si_kv_alloc(kv, 0, SI_SEQ(1)), 3);
    CHECK_EQ_INT(si_kv_alloc(kv, 1, SI_SEQ(1)), 4);
    CHECK_EQ_INT(si_kv_n_free(kv), 3);
    CHECK_EQ_INT(si_kv_seq_pos_max(kv, 0), 2);
    CHECK_EQ_INT(si_kv_seq_pos_max(kv, 1), 1);
    CHECK_EQ_INT(si_kv_seq_pos_max(kv, 5), -1);

    /* Rows of a cell are distinct per layer and K/V, row_bytes apart. */
    CHECK((uint8_t *)si_kv_k_row(kv, 0, 1) - (uint8_t *)si_kv_k_row(kv, 0, 0) == 16);
    CHECK((uint8_t *)si_kv_k_row(kv, 1, 0) - (uint8_t *)si_kv_k_row(kv, 0, 0) == 8 * 16);
    CHECK(si_kv_k_row(kv, 0, 0) != si_kv_v_row(kv, 0, 0));

    /* Freed cells are reused at once, lowest first. */
    si_kv_seq_rm(kv, 0, 1, 2); /* seq 0 loses position 1 (cell 1) */
    CHECK_EQ_INT(si_kv_n_free(kv), 4);
    CHECK_EQ_INT(si_kv_alloc(kv, 2, SI_SEQ(1)), 1); /* seq 1's position 2 lands in cell 1 */

    /* seq 1 sees cells 3, 4, 1 in position order, never seq 0's */
    uint32_t cells[8];
    CHECK_EQ_INT(visible(kv, SI_SEQ(1), 2, cells), 3);
    CHECK(cells[0] == 3 && cells[1] == 4 && cells[2] == 1);
    CHECK_EQ_INT(visible(kv, SI_SEQ(1), 1, cells), 2);
    CHECK(cells[0] == 3 && cells[1] == 4);
    CHECK_EQ_INT(visible(kv, SI_SEQ(0), 9, cells), 2);
    CHECK(cells[0] == 0 && cells[1] == 2);

    /* Sharing a prefix copies nothing and takes no cell. */
    uint32_t before = si_kv_n_free(kv);
    si_kv_seq_cp(kv, 1, 2, 0, 2); /* seq 2 shares seq 1's positions 0 and 1 */
    CHECK_EQ_INT(si_kv_n_free(kv), before);
    CHECK_EQ_INT(visible(kv, SI_SEQ(2), 5, cells), 2);
    CHECK(cells[0] == 3 && cells[1] == 4);
    CHECK_EQ_INT(si_kv_n_used_by(kv, SI_SEQ(2)), 2);
    /* Only what no other sequence holds is freed by dropping seq 1. */
    CHECK_EQ_INT(si_kv_n_only(kv, SI_SEQ(1)), 1);
    si_kv_seq_rm(kv, 1, 0, SI_POS_END);
    CHECK_EQ_INT(si_kv_n_free(kv), before + 1);
    CHECK_EQ_INT(visible(kv, SI_SEQ(2), 5, cells), 2);

    /* A token of several sequences sees the cells of each. */
    CHECK_EQ_INT(visible(kv, SI_SEQ(0) | SI_SEQ(2), 9, cells), 4);

    /* Keep one sequence: the others' cells are free. */
    si_kv_seq_keep(kv, 2);
    CHECK_EQ_INT(si_kv_n_free(kv), 6);
    CHECK_EQ_INT(si_kv_seq_pos_max(kv, 0), -1);
    CHECK_EQ_INT(si_kv_seq_pos_max(kv, 2), 1);

    /* Full pool: alloc fails and takes nothing; release gives a cell back. */
    int64_t got[8];
    int n = 0;
    while ((got[n] = si_kv_alloc(kv, 100 + n, SI_SEQ(3))) >= 0)
        n++;
    CHECK_EQ_INT(n, 6);
    CHECK_EQ_INT(si_kv_n_free(kv), 0);
    si_kv_release(kv, (uint32_t)got[2]);
    CHECK_EQ_INT(si_kv_n_free(kv), 1);
    CHECK_EQ_INT(si_kv_alloc(kv, 7, SI_SEQ(3)), got[2]);
    /* Positions out of order in one sequence still come back sorted. */
    si_kv_clear(kv);
    CHECK_EQ_INT(si_kv_n_free(kv), 8);
    uint32_t order[] = {5, 1, 7, 0, 3};
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(si_kv_alloc(kv, order[i], SI_SEQ(4)), i);
    CHECK_EQ_INT(visible(kv, SI_SEQ(4), 6, cells), 4);
    for (int i = 1; i < 4; i++)
        CHECK(si_kv_cell_pos(kv, cells[i - 1]) < si_kv_cell_pos(kv, cells[i]));
    si_kv_free(kv);

    /* Blocks: 10 cells in blocks of 4 (the last of 2), no rows at first. Cells come only
     * from allocated blocks; rows of different cells never overlap; a block goes back
     * only when none of its cells is used, and not below the free cells asked to keep. */
    kv = si_kv_new_blocks(10, 2, 16, 4);
    CHECK(kv);
    CHECK_EQ_INT(si_kv_n_blocks(kv), 3);
    CHECK_EQ_INT(si_kv_n_blocks_allocated(kv), 0);
    CHECK_EQ_INT(si_kv_allocated_bytes(kv), 0);
    CHECK_EQ_INT(si_kv_n_free(kv), 10);
    CHECK_EQ_INT(si_kv_n_free_ready(kv), 0);
    CHECK_EQ_INT(si_kv_alloc(kv, 0, SI_SEQ(0)), -1);
    CHECK_EQ_INT(si_kv_block_bytes(kv, 0), 2 * 2 * 4 * 16);
    CHECK_EQ_INT(si_kv_block_bytes(kv, 2), 2 * 2 * 2 * 16);
    for (int b = 0; b < 3; b++)
        CHECK_EQ_INT(si_kv_grow(kv), 0);
    CHECK_EQ_INT(si_kv_grow(kv), -1);
    CHECK_EQ_INT(si_kv_next_block(kv), -1);
    CHECK_EQ_INT(si_kv_allocated_bytes(kv), 2 * 2 * 10 * 16);
    CHECK_EQ_INT(si_kv_n_free_ready(kv), 10);
    for (int c = 0; c < 10; c++)
        CHECK_EQ_INT(si_kv_alloc(kv, (uint32_t)c, SI_SEQ(c < 4 ? 0 : 1)), c);
    /* every row of every cell and layer, K and V, is its own 16 bytes */
    uint8_t *rows[2 * 2 * 10];
    int nr = 0;
    for (uint32_t l = 0; l < 2; l++)
        for (uint32_t c = 0; c < 10; c++) {
            rows[nr++] = si_kv_k_row(kv, l, c);
            rows[nr++] = si_kv_v_row(kv, l, c);
        }
    for (int i = 0; i < nr; i++) {
        memset(rows[i], i + 1, 16);
        for (int j = 0; j < i; j++)
            CHECK(rows[i] + 16 <= rows[j] || rows[j] + 16 <= rows[i]);
    }
    for (int i = 0; i < nr; i++)
        CHECK(rows[i][0] == (uint8_t)(i + 1) && rows[i][15] == (uint8_t)(i + 1));
    /* cells in one block are side by side within a layer (attention reads them in place) */
    CHECK((uint8_t *)si_kv_k_row(kv, 1, 3) - (uint8_t *)si_kv_k_row(kv, 1, 2) == 16);
    CHECK_EQ_INT(si_kv_shrink(kv, 0), 0); /* every block in use */
    si_kv_seq_rm(kv, 1, 0, SI_POS_END);   /* cells 4-9: blocks 1 and 2 empty */
    CHECK_EQ_INT(si_kv_n_free_ready(kv), 6);
    CHECK_EQ_INT(si_kv_shrink(kv, 3), 1); /* keeps 4 free cells: only block 2 goes */
    CHECK_EQ_INT(si_kv_n_blocks_allocated(kv), 2);
    CHECK_EQ_INT(si_kv_n_free_ready(kv), 4);
    CHECK_EQ_INT(si_kv_next_block(kv), 2);
    CHECK_EQ_INT(si_kv_shrink(kv, 0), 1);
    CHECK_EQ_INT(si_kv_n_free_ready(kv), 0);
    CHECK_EQ_INT(si_kv_n_free(kv), 6);
    CHECK_EQ_INT(si_kv_alloc(kv, 9, SI_SEQ(2)), -1); /* free cells, but none with rows */
    CHECK_EQ_INT(si_kv_grow(kv), 0);                 /* block 1 again */
    CHECK_EQ_INT(si_kv_alloc(kv, 9, SI_SEQ(2)), 4);
    CHECK_EQ_INT(si_kv_seq_pos_max(kv, 0), 3);       /* block 0 kept its cells throughout */
    si_kv_free(kv);
    printf("kv: ok\n");
    return 0;
}
