/* The stream scheduler: owns the weight buffers and every read.
 *
 * A pass is a fixed sequence of extents (byte ranges of the model file) that the
 * model consumes in order. The scheduler keeps reads of the next extents in flight
 * in a FIFO ring of aligned buffers while the model computes on the current one;
 * the model only acquires (blocks until resident) and releases. Passes repeat the
 * same sequence; prefetch runs on into the next pass only when the caller says one
 * follows, so nothing is read that is not used (except when generation stops early,
 * counted as discarded). It owns the model file: the pass's streamed reads and the
 * on-demand reads (embedding rows, small tensors) both go through it, so the model
 * never touches the I/O layer. */
#ifndef STREAMINFER_SCHED_H
#define STREAMINFER_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "streaminfer/error.h"
#include "streaminfer/io.h"

struct si_pack; /* streaminfer/pack.h, not installed: packs are read through the scheduler */
struct si_pack_tensor;

#ifdef __cplusplus
extern "C" {
#endif

/* A verifiable piece of an extent (a pack chunk): its stored bytes are checked with
 * XXH3-64 before the model sees the extent, and decoded when compressed. */
typedef struct si_frame {
    uint64_t offset;    /* file offset of the stored bytes (inside the extent's range) */
    uint64_t stored;    /* stored bytes */
    uint64_t raw;       /* decoded bytes */
    uint64_t image_off; /* where the decoded bytes go in the extent's image */
    uint64_t xxh3;      /* of the stored bytes */
    uint32_t codec;     /* SI_PACK_CODEC_RAW / _ZSTD / _ZSTD_FIELDS */
    uint32_t type;      /* tensor type (field layout of _ZSTD_FIELDS) */
    int32_t layer;      /* for errors; -1 outside the layers */
    uint32_t chunk;     /* chunk index in the pack, for errors */
    const char *tensor; /* tensor name, for errors (outlives the scheduler) */
} si_frame;

typedef struct si_extent {
    uint64_t offset;   /* offset in its file (member) of the first byte the model needs */
    uint64_t size;     /* bytes the model needs */
    char label[80];    /* what it holds, for errors: "blk.3.ffn_up.weight rows 0-767" */
    /* Packs only (zero for GGUF): frames covering the range, checked before acquire
     * returns; with image_size > 0 they are decoded into an image of that many bytes
     * (held in the ring after the stored bytes) and acquire points at the image. */
    const si_frame *frames;
    uint32_t n_frames;
    uint64_t image_size;
    /* Pinned: read (and verified, decoded) in the first pass that uses it into a buffer
     * of its own, then served from memory by every later pass without a read. */
    bool pinned;
    uint32_t member; /* which file: a striped pack's member (si_sched_open_files); 0 otherwise */
} si_extent;

typedef struct si_sched_opts {
    uint64_t ring_bytes;  /* weight buffer capacity (rounded down to the I/O alignment) */
    uint64_t chunk_bytes; /* largest single read; 0 = 1 MiB */
} si_sched_opts;

typedef struct si_sched_stats {
    uint64_t passes;          /* passes completed */
    uint64_t bytes_per_pass;  /* bytes one pass streams (aligned extents that are not pinned) */
    uint64_t bytes_per_pass_unpinned; /* the same with the pinned extents (what the first pass reads) */
    uint64_t pinned_bytes;    /* memory holding pinned extents (stored bytes and decoded images) */
    uint64_t pinned_extents;
    uint64_t bytes_read;      /* bytes read by the scheduler so far */
    uint64_t bytes_discarded; /* prefetched for a pass that never ran */
    uint64_t ring_bytes;      /* capacity */
    uint64_t ring_peak_bytes; /* most bytes of the ring ever holding extents */
    uint64_t chunk_bytes;     /* largest single read (the chunk size in use) */
    uint64_t reads;           /* read requests issued */
    double io_wait_s;         /* time blocked waiting for reads */
    double verify_s;          /* time computing checksums of frames */
    double decode_s;          /* time decompressing frames */
    uint64_t bytes_decoded;   /* raw bytes produced by decompression */
    uint64_t rereads;         /* frames read again after a checksum mismatch */
    uint64_t on_demand_bytes; /* bytes read by si_sched_read / si_sched_read_pack_rows */
    uint64_t io_bytes_read;   /* everything read from the file (the I/O layer's count) */
    double first_read_at;     /* si_now_s() when the first read was issued; 0 before */
} si_sched_stats;

typedef struct si_sched si_sched;

/* How the file is read, for reports. */
typedef struct si_sched_io {
    const char *backend; /* "io_uring" or "pread" */
    bool direct;         /* O_DIRECT in use */
    const char *note;    /* why a fallback happened, or NULL */
    unsigned queue_depth;
    bool reader_threads; /* pread on a thread per file (a striped pack's members) */
} si_sched_io;

/* What extent e costs: the bytes a pass reads for it (its range aligned to align,
 * clipped at file_size) and the memory holding it takes (that range, aligned, and its
 * decoded image): what a ring region or a pinned buffer of it holds. */
void si_sched_extent_cost(const si_extent *e, uint64_t align, uint64_t file_size, uint64_t *read_bytes,
                          uint64_t *held_bytes);
/* Open the file at path with the I/O layer's backend and options; the scheduler owns
 * it until si_sched_free. No pass yet: see si_sched_set_pass. */
int si_sched_open(si_sched **out, const char *path, const si_io_opts *io, si_error *err);
/* The same over several files (a striped pack's members, at most SI_SCHED_MAX_FILES),
 * each with its own I/O queue: an extent belongs to one file (si_extent.member), and
 * reads stay in flight on every file at once. */
#define SI_SCHED_MAX_FILES 16
int si_sched_open_files(si_sched **out, const char *const *paths, uint32_t n, const si_io_opts *io,
                        si_error *err);
/* Per file: bytes the scheduler read from it (streamed and its tails), reads issued, and
 * the time it had reads in flight (its busy time; bytes / busy_s is its throughput). */
typedef struct si_sched_file_stats {
    const char *path;
    uint64_t bytes_read, reads;
    uint64_t io_bytes_read; /* everything the I/O layer read from it (on-demand reads too) */
    double busy_s;
    double busy_pass_s;     /* of busy_s, the time inside passes (read-ahead between passes
                               excluded): busy_pass_s / the passes' time is at most 1 */
} si_sched_file_stats;
uint32_t si_sched_n_files(const si_sched *s);
void si_sched_get_file_stats(const si_sched *s, uint32_t i, si_sched_file_stats *fs);

/* The alignment the scheduler reads with (at least 4 KiB), the (largest) file's size and
 * the first file's path. */
uint64_t si_sched_alignment(const si_sched *s);
uint64_t si_sched_file_size(const si_sched *s);
const char *si_sched_path(const si_sched *s);
void si_sched_io_info(const si_sched *s, si_sched_io *info);

/* On-demand reads beside the pass (never between an acquire and its release matter:
 * they are synchronous and do not disturb the reads in flight), counted in
 * stats.on_demand_bytes: bytes [offset, +len) of the file, or n rows of a pack tensor
 * from row (its chunk read, checked and decoded). */
int si_sched_read(si_sched *s, uint64_t offset, size_t len, void *dst, si_error *err);
int si_sched_read_pack_rows(si_sched *s, struct si_pack *pack, const struct si_pack_tensor *t, uint64_t row,
                            uint64_t n, void *dst, si_error *err);

/* The pass: the extents array is copied. Fails when an extent (aligned) cannot fit the
 * ring, pinned ones included (so that they can stream again when unpinned). Pinned
 * extents get their buffers here (stats.pinned_bytes), one each, beside the ring. Set
 * once per scheduler. */
int si_sched_set_pass(si_sched *s, const si_extent *ext, size_t n_ext, const si_sched_opts *opts, si_error *err);
void si_sched_free(si_sched *s);

/* Before the first pass: start reading it now (the caller has start-up work, such as
 * loading a tokenizer, that the reads can hide). Nothing is read beyond that pass. */
int si_sched_prefetch(si_sched *s, si_error *err);
/* Start the next pass. another_follows: a pass will follow this one, so prefetch may
 * run into it. */
int si_sched_begin_pass(si_sched *s, bool another_follows, si_error *err);
/* Block until extent i of the current pass is resident (and, for frames, verified
 * and decoded: a frame whose checksum still fails after 3 re-reads is an SI_ECHECKSUM
 * error naming tensor, layer and file offset); *data points at its first
 * byte. Extents are acquired in increasing order; acquiring the same one again is
 * allowed while it is held. */
int si_sched_acquire(si_sched *s, size_t i, const uint8_t **data, si_error *err);
/* Asked before each wait for a read in si_sched_acquire: true makes it fail with
 * SI_ESTOPPED naming the extent (then si_sched_abort_pass). Ctrl-C on a slow card thus
 * waits one read, not a pass. NULL: never. */
void si_sched_set_should_stop(si_sched *s, bool (*should_stop)(void *ctx), void *ctx);
/* Release extent i (the oldest held); its buffer space is reused for prefetch. */
int si_sched_release(si_sched *s, size_t i, si_error *err);
/* Reap finished reads and issue new ones without blocking; call it during long
 * compute so the queue never runs dry. */
int si_sched_poll(si_sched *s, si_error *err);
/* Every extent of the pass must have been released. */
int si_sched_end_pass(si_sched *s, si_error *err);
/* After a failed pass: wait for the reads in flight (their errors are dropped) and
 * forget the pass and whatever was read ahead, so that the next si_sched_begin_pass
 * starts clean. */
void si_sched_abort_pass(si_sched *s);
/* Wait for reads still in flight (prefetch for a pass that will not run). */
int si_sched_drain(si_sched *s, si_error *err);

/* Between passes: pin extent i (a buffer of its own is allocated; the next pass reads
 * it there and later passes do not) or unpin it (its buffer is freed and it streams
 * through the ring again). Whatever was read ahead for the next pass is dropped
 * (counted as discarded). SI_ENOMEM when the buffer cannot be had. */
int si_sched_set_pinned(si_sched *s, size_t i, bool pinned, si_error *err);

void si_sched_get_stats(const si_sched *s, si_sched_stats *st);

#ifdef __cplusplus
}
#endif
#endif
