/* The pack: a read-optimised, verifiable model file written by tools/repack.
 *
 * Layout (little-endian; every field in docs/FORMAT.md):
 *   header (128 bytes, its own XXH3-64)
 *   metadata: a complete GGUF v3 file with no tensors (hyper-parameters and the
 *             whole tokenizer), read by the ordinary GGUF reader over this region
 *   table:    n_tensors tensor entries (128 bytes) then n_chunks chunk entries (48 bytes)
 *   data:     tensors in compute order, each starting at an `alignment` boundary; a
 *             tensor is a run of chunks of whole rows stored back to back, each chunk
 *             raw or one zstd frame, with the XXH3-64 of its stored bytes.
 * The header checks itself, the metadata and the table; chunks are checked when they are
 * read (the stream scheduler, before compute touches them). */
#ifndef STREAMINFER_PACK_H
#define STREAMINFER_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "streaminfer/error.h"
#include "streaminfer/gguf.h"
#include "streaminfer/io.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SI_PACK_MAGIC 0x4b504953u /* "SIPK" little-endian */
#define SI_PACK_VERSION 1u    /* a single-file pack */
#define SI_PACK_VERSION_2 2u  /* a member of a striped set (several files, one per device) */
#define SI_PACK_HEADER_SIZE 128u /* version 1; version 2: 128 + n_members * SI_PACK_MEMBER_ENTRY */
#define SI_PACK_TENSOR_ENTRY 128u
#define SI_PACK_CHUNK_ENTRY 48u
#define SI_PACK_CHUNK_ENTRY_V2 56u /* the version 1 entry, then u32 member, u32 reserved */
#define SI_PACK_MEMBER_ENTRY 256u  /* name (240 bytes, NUL-padded), u64 file_size, u64 reserved */
#define SI_PACK_MEMBER_NAME_MAX 240u
#define SI_PACK_MAX_MEMBERS 16u
#define SI_PACK_NAME_MAX 64u /* name field bytes, NUL-padded: at most 63 characters */

/* ZSTD_FIELDS: zstd over the chunk's bytes rearranged field by field (all blocks'
 * first field, then the second, ...; 2- and 4-byte scalars such as fp16 scales and
 * F32 values split into byte planes), undone exactly after decompression. */
enum { SI_PACK_CODEC_RAW = 0, SI_PACK_CODEC_ZSTD = 1, SI_PACK_CODEC_ZSTD_FIELDS = 2 };
#define SI_PACK_FLAG_ZSTD 1u /* header flag: some chunk is zstd */

typedef struct si_pack_chunk {
    uint64_t offset; /* absolute file offset of the stored bytes */
    uint64_t stored; /* stored bytes */
    uint64_t raw;    /* bytes once decoded (whole rows of the tensor) */
    uint64_t xxh3;   /* XXH3-64 (seed 0) of the stored bytes */
    uint64_t row0;   /* first tensor row in this chunk */
    uint32_t codec;  /* SI_PACK_CODEC_* */
    uint32_t n_rows;
    uint32_t member; /* member file holding it (0 in a single-file pack) */
} si_pack_chunk;

typedef struct si_pack_tensor {
    char name[SI_PACK_NAME_MAX];
    uint32_t type; /* si_type */
    uint32_t n_dims;
    uint64_t ne[SI_GGUF_MAX_DIMS];
    uint64_t raw_size;   /* all rows */
    uint64_t row_bytes;
    uint64_t n_rows;     /* product of ne[1..] */
    uint32_t first_chunk, n_chunks;
    int32_t layer;       /* "blk.N." -> N, else -1 (for messages) */
} si_pack_tensor;

typedef struct si_pack si_pack;

/* True when the file starts with the pack magic (any version). */
bool si_pack_probe(const char *path);

/* Validates the header (its checksum, version, sizes against the file: a truncated pack
 * is refused here), the metadata and table checksums, and every table entry (names,
 * types, shapes, chunk ranges inside the data area, in order, not overlapping). */
int si_pack_open(si_pack **out, const char *path, si_error *err);
/* The same for any member of a striped set (or a single-file pack): the other members
 * are looked up by their file names in path's directory, then in each of dirs (in
 * order). Every member's header is checked (set id, index, count, names, size): a
 * missing, foreign or truncated member is refused with an error naming the file. */
int si_pack_open_set(si_pack **out, const char *path, const char *const *dirs, size_t n_dirs, si_error *err);
void si_pack_close(si_pack *p);

/* Striped sets: members (1 for a single-file pack); member 0 holds metadata and table. */
uint32_t si_pack_n_members(const si_pack *p);
const char *si_pack_member_path(const si_pack *p, uint32_t i); /* where it was found */
const char *si_pack_member_name(const si_pack *p, uint32_t i); /* as the header names it */
uint64_t si_pack_member_size(const si_pack *p, uint32_t i);
const uint8_t *si_pack_set_id(const si_pack *p); /* 16 bytes; zero for version 1 */

const char *si_pack_path(const si_pack *p);
const si_gguf *si_pack_meta(const si_pack *p);
uint32_t si_pack_version(const si_pack *p);
uint32_t si_pack_flags(const si_pack *p);
uint32_t si_pack_alignment(const si_pack *p);
uint64_t si_pack_file_size(const si_pack *p);
uint64_t si_pack_meta_offset(const si_pack *p);
uint64_t si_pack_meta_size(const si_pack *p);
uint64_t si_pack_table_offset(const si_pack *p);
uint64_t si_pack_data_offset(const si_pack *p);
uint32_t si_pack_n_tensors(const si_pack *p);
uint32_t si_pack_n_chunks(const si_pack *p);
const si_pack_tensor *si_pack_tensor_at(const si_pack *p, uint32_t i);
const si_pack_tensor *si_pack_find_tensor(const si_pack *p, const char *name);
const si_pack_chunk *si_pack_chunk_at(const si_pack *p, uint32_t i);

/* XXH3-64, seed 0: the checksum of every stored chunk. */
uint64_t si_xxh3(const void *data, size_t n);
/* A version 2 header's checksum: XXH3 of its size bytes, bytes 120..127 taken as zero. */
uint64_t si_pack_v2_header_xxh3(const void *h, uint32_t size);

/* Decode one chunk's stored bytes into raw (exactly c->raw bytes). zstd chunks fail with
 * SI_EUNSUPPORTED in a build without zstd, SI_EFORMAT when the frame is bad. */
int si_pack_decode(const si_pack_chunk *c, uint32_t type, const void *stored, void *raw, const char *what,
                   si_error *err);
/* The same from loose values; ZSTD_FIELDS needs scratch of raw_n bytes (else NULL). */
int si_pack_decode_raw(uint32_t codec, uint32_t type, const void *stored, uint64_t stored_n, void *raw,
                       uint64_t raw_n, void *scratch, const char *what, si_error *err);
/* Field rearrangement of n bytes (whole blocks) of a tensor type: split (inverse =
 * false) or join; false when the type has no field layout (then not used). */
bool si_pack_fields(uint32_t type, const void *src, void *dst, uint64_t n, bool inverse);

/* Read rows [row, row+n) of tensor t (within one chunk or several) through ios[member]
 * (one si_io per member, si_pack_n_members of them) into dst,
 * verifying each chunk touched (re-read up to 3 times on mismatch) and decoding it. For
 * the rows the engine reads outside the stream (embedding rows, rope factors). */
int si_pack_read_rows(si_pack *p, si_io *const *ios, const si_pack_tensor *t, uint64_t row, uint64_t n, void *dst,
                      si_error *err);

/* Checksum of chunk i against stored bytes; on mismatch the error names the tensor,
 * layer, chunk and file offset. */
int si_pack_check(const si_pack *p, uint32_t chunk_index, const void *stored, si_error *err);

/* ---- writer (tools/repack) ---- */

typedef struct si_pack_write_opts {
    uint32_t alignment;      /* of each tensor's first byte; 0 = 4096 */
    uint64_t chunk_bytes;    /* target raw bytes per chunk (whole rows); 0 = 1 MiB */
    uint64_t embd_chunk_bytes; /* for token_embd (read row by row); 0 = 16 KiB */
    int zstd_level;          /* 0 = store raw; else zstd at this level */
    double min_saving;       /* zstd chunk kept only if it saves at least this share; <0 = 0.01 */
    bool no_fields;          /* compress bytes as they are, never field-split */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
    /* Striping (version 2): n_members >= 2 member files, members[0] holding metadata and
     * table (the path given to si_pack_writer_new is then unused); each chunk goes to
     * the member whose stored bytes over its weight are the smallest after it (weights
     * NULL: equal shares). 0 or 1: a version 1 single-file pack. */
    uint32_t n_members;
    const char *const *members;
    const double *weights;
} si_pack_write_opts;

typedef struct si_pack_writer si_pack_writer;

/* Statistics per tensor type, for the compression table. */
typedef struct si_pack_type_stats {
    uint64_t raw, stored, chunks, zstd_chunks;
} si_pack_type_stats;

int si_pack_writer_new(si_pack_writer **out, const char *path, const si_pack_write_opts *opts, si_error *err);
/* The metadata: set keys on it before si_pack_writer_begin. */
si_gguf_writer *si_pack_writer_meta(si_pack_writer *w);
/* Declare tensors in the order they are stored (compute order). */
int si_pack_writer_add_tensor(si_pack_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                              uint32_t type, si_error *err);
/* Lay out header, metadata and table; after this, tensors' data in declaration order. */
int si_pack_writer_begin(si_pack_writer *w, si_error *err);
/* The whole raw data of the next tensor. */
int si_pack_writer_write_tensor(si_pack_writer *w, const void *data, uint64_t size, si_error *err);
/* Write table and header; the file is complete. */
int si_pack_writer_finish(si_pack_writer *w, si_error *err);
/* Abandon (also after errors): closes and frees; the partial file is removed. */
void si_pack_writer_free(si_pack_writer *w);
uint64_t si_pack_writer_total_raw(const si_pack_writer *w);
const si_pack_type_stats *si_pack_writer_type_stats(const si_pack_writer *w, uint32_t type);
/* Stored bytes written to member i so far (after finish: its data). */
uint64_t si_pack_writer_member_bytes(const si_pack_writer *w, uint32_t i);

#ifdef __cplusplus
}
#endif
#endif
