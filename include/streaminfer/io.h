/* Reading a model file: one interface, two backends (io_uring, pread).
 *
 * The scheduler submits reads of aligned ranges into aligned buffers and reaps
 * completions; the backend hides short reads, EINTR/EAGAIN retries and the O_DIRECT
 * fallback. Each completion means the whole range was read, or an error naming the
 * file, offset and length. */
#ifndef STREAMINFER_IO_H
#define STREAMINFER_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "streaminfer/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum si_io_kind {
    SI_IO_AUTO = 0,  /* io_uring when it can be set up, else pread */
    SI_IO_URING = 1, /* io_uring or a clear error */
    SI_IO_PREAD = 2, /* synchronous pread */
} si_io_kind;

typedef enum si_io_direct {
    SI_DIRECT_AUTO = 0, /* try O_DIRECT; on EINVAL (open or first read) fall back to buffered */
    SI_DIRECT_ON = 1,   /* O_DIRECT or a clear error */
    SI_DIRECT_OFF = 2,  /* buffered */
} si_io_direct;

typedef struct si_io_opts {
    si_io_kind kind;
    si_io_direct direct;
    unsigned queue_depth;  /* reads in flight at most (both backends; io_uring ring
                              entries); 0 = default 8; at most 4096 */
    bool compat_5_10;      /* use only io_uring features Linux 5.10 has */
    bool reader_thread;    /* pread backend: reads run on a thread of the handle's own,
                              so they overlap the caller's work and other handles' reads
                              (the scheduler asks for it for every member of a striped
                              pack); without it pread reads inside si_io_submit */
} si_io_opts;

typedef struct si_io si_io;

int si_io_open(si_io **out, const char *path, const si_io_opts *opts, si_error *err);
void si_io_close(si_io *io);

const char *si_io_backend(const si_io *io); /* "io_uring" or "pread" */
bool si_io_direct_active(const si_io *io);  /* O_DIRECT in use right now */
/* Required alignment of offset, length and buffer address for submit (4096 with
 * O_DIRECT, which the scheduler always honours so a later switch is harmless). */
size_t si_io_alignment(const si_io *io);
unsigned si_io_queue_depth(const si_io *io);
bool si_io_reader_thread(const si_io *io); /* the pread backend reads on its own thread */
unsigned si_io_inflight(const si_io *io);
uint64_t si_io_file_size(const si_io *io);
const char *si_io_path(const si_io *io);

/* Queue a read of len bytes at offset into dst. Fails with SI_EINVAL when the queue
 * is full (check si_io_inflight < si_io_queue_depth) or arguments are misaligned.
 * A range past the end of the file is an error at completion. The pread backend
 * performs the read here and queues its completion. */
int si_io_submit(si_io *io, uint64_t offset, size_t len, void *dst, uint64_t tag, si_error *err);
/* Reap one completion: returns 1 and sets *tag when one is ready, 0 when none is
 * (wait=false) or nothing is in flight, negative on error (the failed read is
 * consumed; *tag names it). With wait=true blocks until one completes. */
int si_io_reap(si_io *io, bool wait, uint64_t *tag, si_error *err);
/* Synchronous read of any range into any buffer (bounce buffer under O_DIRECT). */
int si_io_read(si_io *io, uint64_t offset, size_t len, void *dst, si_error *err);

/* Bytes transferred from the file so far (including alignment padding). */
uint64_t si_io_bytes_read(const si_io *io);

/* Why the handle runs differently from what was asked, for logs: e.g. "O_DIRECT
 * refused by the file system (EINVAL); buffered reads with FADV_DONTNEED" or
 * "io_uring unavailable: io_uring_setup(8 entries) failed: ...; pread backend".
 * Several notes are joined with "; ". Never NULL; "" when there is nothing to say.
 * Buffered reads (direct=off or after a fallback) drop each completed range from the
 * page cache (POSIX_FADV_DONTNEED) and run without readahead (POSIX_FADV_RANDOM), so
 * a small memory cgroup does not fill and no unrequested bytes are read. */
const char *si_io_note(const si_io *io);
/* How the backend is set up, for logs and benchmarks: e.g. "io_uring, depth 8,
 * IORING_OP_READ, setup flags SINGLE_ISSUER|COOP_TASKRUN|TASKRUN_FLAG" or
 * "pread, depth 8". Never NULL. */
const char *si_io_detail(const si_io *io);

/* Threads: a handle is not thread-safe (its reader thread, with reader_thread, is
 * internal: the calls below still come from one thread). Without compat_5_10 the io_uring ring may be
 * set up with IORING_SETUP_SINGLE_ISSUER (Linux 6.0+), so si_io_submit/si_io_reap must
 * then come from the thread that called si_io_open (another thread gets an error
 * naming this). si_io_close waits for reads still in flight before it returns. */

#ifdef __cplusplus
}
#endif
#endif
