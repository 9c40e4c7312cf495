/* GGUF v2/v3 reader and writer.
 *
 * The reader validates everything before use (counts, string lengths, dimensions,
 * offsets against the file size, overflow-safe; duplicate keys and tensor names;
 * unknown tensor types; data past the end) and names the file, the byte offset and
 * the field in its errors. Metadata is read with pread into memory once; tensor data
 * is never read here (the stream scheduler does that). */
#ifndef STREAMINFER_GGUF_H
#define STREAMINFER_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "streaminfer/error.h"
#include "streaminfer/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SI_GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define SI_GGUF_DEFAULT_ALIGNMENT 32
#define SI_GGUF_MAX_DIMS 4

typedef enum si_gguf_vtype {
    SI_GGUF_UINT8 = 0,
    SI_GGUF_INT8 = 1,
    SI_GGUF_UINT16 = 2,
    SI_GGUF_INT16 = 3,
    SI_GGUF_UINT32 = 4,
    SI_GGUF_INT32 = 5,
    SI_GGUF_FLOAT32 = 6,
    SI_GGUF_BOOL = 7,
    SI_GGUF_STRING = 8,
    SI_GGUF_ARRAY = 9,
    SI_GGUF_UINT64 = 10,
    SI_GGUF_INT64 = 11,
    SI_GGUF_FLOAT64 = 12,
    SI_GGUF_VTYPE_COUNT
} si_gguf_vtype;

const char *si_gguf_vtype_name(uint32_t t);

typedef struct si_gguf_tensor {
    const char *name;           /* NUL-terminated */
    uint32_t n_dims;
    uint64_t ne[SI_GGUF_MAX_DIMS]; /* ne[0] = row length (contiguous), unused dims are 1 */
    uint32_t type;              /* si_type id, validated to be a known type */
    uint64_t offset;            /* absolute byte offset of the data in the file */
    uint64_t size;              /* bytes of data */
    uint64_t info_offset;       /* where its tensor info starts in the file (for errors) */
} si_gguf_tensor;

typedef struct si_gguf si_gguf;

int si_gguf_open(si_gguf **out, const char *path, si_error *err);
/* A GGUF stored at [offset, offset+size) of a larger file (a pack's metadata block);
 * offsets inside it are relative to the region, error messages give file offsets. */
int si_gguf_open_region(si_gguf **out, const char *path, uint64_t offset, uint64_t size, si_error *err);
void si_gguf_close(si_gguf *g);

const char *si_gguf_path(const si_gguf *g);
uint32_t si_gguf_version(const si_gguf *g);
uint64_t si_gguf_file_size(const si_gguf *g);
uint32_t si_gguf_alignment(const si_gguf *g);
uint64_t si_gguf_data_offset(const si_gguf *g); /* aligned start of tensor data */

/* Metadata. Keys are looked up by exact name; -1 when absent. */
uint64_t si_gguf_n_kv(const si_gguf *g);
int64_t si_gguf_find_key(const si_gguf *g, const char *key);
const char *si_gguf_key(const si_gguf *g, uint64_t i);
si_gguf_vtype si_gguf_kv_type(const si_gguf *g, uint64_t i);
si_gguf_vtype si_gguf_arr_type(const si_gguf *g, uint64_t i); /* element type of an ARRAY */
uint64_t si_gguf_arr_n(const si_gguf *g, uint64_t i);

/* Typed getters by key. Integers of any GGUF integer type are accepted when the
 * value fits; floats accept FLOAT32/FLOAT64. Missing key or wrong type/range is an
 * error naming the key and the file. */
int si_gguf_get_u32(const si_gguf *g, const char *key, uint32_t *out, si_error *err);
int si_gguf_get_u64(const si_gguf *g, const char *key, uint64_t *out, si_error *err);
int si_gguf_get_i64(const si_gguf *g, const char *key, int64_t *out, si_error *err);
int si_gguf_get_f32(const si_gguf *g, const char *key, float *out, si_error *err);
int si_gguf_get_bool(const si_gguf *g, const char *key, bool *out, si_error *err);
/* String value (not NUL-terminated inside the file; the returned pointer is
 * NUL-terminated by the reader). */
int si_gguf_get_str(const si_gguf *g, const char *key, const char **s, uint64_t *len, si_error *err);
/* Numeric array: raw little-endian elements of elem_type, n of them. */
int si_gguf_get_arr(const si_gguf *g, const char *key, si_gguf_vtype *elem_type, uint64_t *n,
                    const void **data, si_error *err);
/* Array of strings: element j of key index i (from si_gguf_find_key). NUL-terminated. */
const char *si_gguf_arr_str(const si_gguf *g, uint64_t i, uint64_t j, uint64_t *len);
/* Additions: float64 getter (accepts FLOAT32 too); an array-of-strings lookup by key
 * giving the key index for si_gguf_arr_str and the count; byte offset of key i. */
int si_gguf_get_f64(const si_gguf *g, const char *key, double *out, si_error *err);
int si_gguf_get_arr_str(const si_gguf *g, const char *key, int64_t *index, uint64_t *n,
                        si_error *err);
uint64_t si_gguf_kv_offset(const si_gguf *g, uint64_t i);

/* Tensors, in file (tensor-info) order. */
uint64_t si_gguf_n_tensors(const si_gguf *g);
const si_gguf_tensor *si_gguf_tensor_at(const si_gguf *g, uint64_t i);
const si_gguf_tensor *si_gguf_find_tensor(const si_gguf *g, const char *name);

/* ---- writer (mkmodel, repack): header first, then each tensor's data in order ---- */

typedef struct si_gguf_writer si_gguf_writer;

si_gguf_writer *si_gguf_writer_new(uint32_t alignment);
void si_gguf_writer_free(si_gguf_writer *w);
int si_gguf_writer_set_u32(si_gguf_writer *w, const char *key, uint32_t v);
int si_gguf_writer_set_i32(si_gguf_writer *w, const char *key, int32_t v);
int si_gguf_writer_set_u64(si_gguf_writer *w, const char *key, uint64_t v);
int si_gguf_writer_set_f32(si_gguf_writer *w, const char *key, float v);
int si_gguf_writer_set_bool(si_gguf_writer *w, const char *key, bool v);
int si_gguf_writer_set_str(si_gguf_writer *w, const char *key, const char *s);
/* Additions: any scalar type from its raw little-endian bytes (size of vtype), and
 * the remaining widths. */
int si_gguf_writer_set_scalar(si_gguf_writer *w, const char *key, si_gguf_vtype type,
                              const void *v);
int si_gguf_writer_set_i64(si_gguf_writer *w, const char *key, int64_t v);
int si_gguf_writer_set_f64(si_gguf_writer *w, const char *key, double v);
/* Numeric array of n elements of elem_type (raw little-endian data). */
int si_gguf_writer_set_arr(si_gguf_writer *w, const char *key, si_gguf_vtype elem_type,
                           const void *data, uint64_t n);
int si_gguf_writer_set_arr_str(si_gguf_writer *w, const char *key, const char *const *strs,
                               uint64_t n);
/* Copy key i of src (any type, arrays included). */
int si_gguf_writer_copy_kv(si_gguf_writer *w, const si_gguf *src, uint64_t i);
/* Declare a tensor; returns its index (>= 0) or a negative status. */
int si_gguf_writer_add_tensor(si_gguf_writer *w, const char *name, uint32_t n_dims,
                              const uint64_t *ne, uint32_t type);
/* Write magic, version 3, KVs, tensor infos and padding to fd (at its current
 * position, which must be 0). */
int si_gguf_writer_write_header(si_gguf_writer *w, int fd, si_error *err);
/* Then, for each tensor in declaration order, its data (exactly its size), possibly
 * in several calls; padding between tensors is written automatically. */
int si_gguf_writer_write_data(si_gguf_writer *w, int fd, const void *data, size_t n, si_error *err);
/* Check every declared tensor got all its bytes; writes final padding. */
int si_gguf_writer_finish(si_gguf_writer *w, int fd, si_error *err);
/* Additions: data size of declared tensor i, its offset relative to the data start,
 * and the header size (aligned data start) once tensors are declared. */
uint64_t si_gguf_writer_tensor_size(const si_gguf_writer *w, int i);
uint64_t si_gguf_writer_tensor_offset(const si_gguf_writer *w, int i);
uint64_t si_gguf_writer_header_size(const si_gguf_writer *w);

#ifdef __cplusplus
}
#endif
#endif
