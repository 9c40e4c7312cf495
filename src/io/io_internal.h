/* Private to src/io: the handle shared by io.c and the two backends.
 *
 * io.c owns opening, O_DIRECT probing and fallback, argument checks and the
 * in-flight count; a backend owns only the mechanics of getting a range read
 * (si_io_ops). Code that reads through the file descriptor goes through the
 * helpers below so that the O_DIRECT fallback, byte counting and page-cache
 * dropping happen the same way in every path. */
#ifndef SI_IO_INTERNAL_H
#define SI_IO_INTERNAL_H

#include "streaminfer/io.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A single read request may be split into pieces of at most this size: io_uring's
 * length field is 32 bits and a few drivers misbehave with huge single reads. */
#define SI_IO_MAX_PIECE ((size_t)1 << 30)

/* Read outcome stored by the backends until reap: 0, an errno, or this value when
 * the file ended before the range was complete. */
#define SI_IO_EOF (-1)

typedef struct si_io_ops {
    const char *name;
    /* Start reading; called only with a free queue slot and checked arguments. */
    int (*submit)(si_io *io, uint64_t offset, size_t len, void *dst, uint64_t tag,
                  si_error *err);
    /* Return 1 with *tag set, 0 when nothing is ready, or a negative status. On a
     * negative status *consumed says whether it was the failure of one read (which
     * then leaves the queue) rather than of the backend itself. */
    int (*reap)(si_io *io, bool wait, uint64_t *tag, bool *consumed, si_error *err);
    void (*close)(si_io *io);
} si_io_ops;

struct si_io {
    char *path;
    int fd;        /* descriptor used for new reads */
    int stale_fd;  /* O_DIRECT descriptor replaced by a fallback; reads issued on it
                      may still be in flight, so it lives until close */
    unsigned fd_gen; /* bumped when fd changes, to spot reads issued on stale_fd */
    si_io_direct direct_mode;
    bool direct;        /* O_DIRECT on fd */
    bool direct_proven; /* an O_DIRECT read succeeded: later EINVAL is a real error */
    size_t align;
    size_t max_piece; /* SI_IO_MAX_PIECE; tests lower it to force partial reads */
    unsigned depth;
    unsigned inflight;
    bool reader_thread; /* the pread backend reads on a thread of its own */
    uint64_t size;
    uint64_t bytes_read;
    char note[320];
    char detail[256];
    const si_io_ops *ops;
    void *backend;
    void *bounce; /* aligned buffer of si_io_read under O_DIRECT */
    size_t bounce_cap;
    /* Guards the fields a read changes (fd, stale_fd, fd_gen, direct, direct_proven,
     * bytes_read, note) while the pread backend's reader thread reads beside the
     * caller's si_io_read; held only around those changes, never across a read. */
    pthread_mutex_t state_lock;
};

/* Backends. Each fills io->ops/io->backend or returns an error (io unchanged).
 * si_io_uring_attach returns SI_ENOSYS when io_uring cannot be used here. */
int si_io_pread_attach(si_io *io, bool reader_thread, si_error *err);
int si_io_uring_attach(si_io *io, bool compat_5_10, si_error *err);

/* Append "; text" (or text) to io->note. */
void si_io_add_note(si_io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Called with the errno of a failed read issued on descriptor generation gen.
 * Returns true when the read should simply be issued again on io->fd: either this
 * EINVAL made the handle fall back to buffered reads (direct=AUTO, no O_DIRECT read
 * has succeeded yet), or the read went to the replaced O_DIRECT descriptor. */
bool si_io_retry_after_einval(si_io *io, int errnum, unsigned gen);

/* Bookkeeping after bytes arrived from the file: counts them and, in buffered mode,
 * drops the range from the page cache so a small memory cgroup does not fill. */
void si_io_account(si_io *io, uint64_t offset, size_t len);

/* Synchronous read of exactly len bytes with pread, looping over short reads and
 * EINTR/EAGAIN and handling the O_DIRECT fallback. Returns 0, an errno, or SI_IO_EOF;
 * *got receives the bytes read (less than len only on failure). Accounts bytes. */
int si_io_pread_full(si_io *io, uint64_t offset, size_t len, void *dst, size_t *got);

/* "path: read of len bytes at offset off failed: reason" into err. */
int si_io_read_error(si_io *io, si_error *err, uint64_t offset, size_t len, size_t got,
                     int errnum);

/* Test-only fault injection (tests/io): make the next O_DIRECT open, or the first
 * O_DIRECT read, fail with EINVAL as a file system or an SD card would. Not part of
 * the public API; not thread-safe. */
typedef enum si_io_fault {
    SI_IO_FAULT_NONE = 0,
    SI_IO_FAULT_DIRECT_OPEN_EINVAL = 1,
    SI_IO_FAULT_DIRECT_READ_EINVAL = 2,     /* once */
    SI_IO_FAULT_DIRECT_READ_EINVAL_ALL = 3, /* every O_DIRECT read, as on an SD card */
} si_io_fault;
void si_io_test_inject(si_io_fault fault);
/* Split every read into pieces of at most n bytes (a multiple of the alignment), so
 * tests exercise the resubmission of remainders that short reads trigger. */
void si_io_test_set_max_piece(si_io *io, size_t n);
/* Make io_uring handles opened from now on use IORING_OP_READV, as on kernels before
 * 5.6 that lack IORING_OP_READ. */
void si_io_test_force_readv(bool on);
/* Consumes an armed read fault (the _ALL one stays armed): true when the caller must act as if the read had
 * returned EINVAL. */
bool si_io_fault_read_einval(si_io *io);

/* Compile-time fault injection (-Dfault_injection=true, src/io/fault.c; absent from
 * release builds). Arm a fault for reads at..at+times-1, counting every read the
 * backends issue to the kernel from now on (each pread call; each io_uring read,
 * resubmissions included). EIO fails the read; SHORT returns half of it (the backend
 * reads the rest); EAGAIN fails it with EAGAIN (the backend retries); LATE completes
 * it after a later read (io_uring: its completion is held back until another arrives;
 * pread: the queue hands out the next one first); FLIP flips one bit of its data. */
#include "si_config.h"
#if SI_FAULT_INJECTION
typedef enum si_fi_kind {
    SI_FI_NONE = 0,
    SI_FI_EIO,
    SI_FI_SHORT,
    SI_FI_EAGAIN,
    SI_FI_LATE,
    SI_FI_FLIP,
} si_fi_kind;
void si_io_fi_arm(si_fi_kind kind, uint64_t at, unsigned times);
/* io_uring setup fails (SI_IO_AUTO then falls back to pread). */
void si_io_fi_setup_fail(bool on);
uint64_t si_io_fi_reads(void);  /* reads counted since arming */
unsigned si_io_fi_fired(void);  /* faults acted out since arming */
/* For the backends. */
si_fi_kind si_io_fi_next(void);
bool si_io_fi_setup_should_fail(void);
void si_io_fi_set_late(void);
bool si_io_fi_take_late(void);
#endif

#endif
