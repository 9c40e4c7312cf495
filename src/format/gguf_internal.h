/* Private to src/format: the reader's in-memory layout, shared with the writer so
 * si_gguf_writer_copy_kv can re-emit any stored value (nested arrays included). */
#ifndef STREAMINFER_GGUF_INTERNAL_H
#define STREAMINFER_GGUF_INTERNAL_H

#include "streaminfer/gguf.h"

/* One metadata pair. Values live in the reader's arena or string table:
 *  scalar           -> raw little-endian bits in `val`
 *  STRING           -> `val` is an index into the string table
 *  ARRAY of numbers -> `val` is an arena offset (8-aligned) of n raw elements
 *  ARRAY of STRING  -> `val` is the string-table index of element 0 (n consecutive)
 *  ARRAY of ARRAY   -> `val` is an arena offset of the raw encoded elements,
 *                      `raw_len` bytes (validated, kept only to be copied) */
typedef struct si_gguf_kv {
    uint64_t key;      /* string-table index */
    uint64_t off;      /* file offset where the pair starts (for errors) */
    uint32_t type;
    uint32_t arr_type;
    uint64_t n;
    uint64_t val;
    uint64_t raw_len;
} si_gguf_kv;

struct si_gguf {
    char *path;
    uint32_t version;
    uint32_t alignment;
    uint64_t file_size;
    uint64_t data_offset;

    char *arena; /* all strings (NUL-terminated) and array payloads */
    size_t arena_len, arena_cap;
    uint64_t *str_off, *str_len; /* string table: arena offsets and lengths */
    size_t n_str, cap_str;

    uint64_t n_kv;
    si_gguf_kv *kv;
    uint64_t *kv_hash; /* open addressing, slot holds index+1, 0 = empty */
    uint64_t kv_hash_mask;

    uint64_t n_tensors;
    si_gguf_tensor *tensors;
    uint64_t *t_hash;
    uint64_t t_hash_mask;
};

/* Bytes of one scalar of type t (0 for STRING/ARRAY/unknown). */
size_t si_gguf_vtype_size(uint32_t t);

static inline const char *si_gguf_str_(const si_gguf *g, uint64_t idx)
{
    return g->arena + g->str_off[idx];
}

#endif
