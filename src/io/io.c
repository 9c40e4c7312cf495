/* si_io: opening the file, O_DIRECT probing and fallback, backend selection, and
 * the public functions, which check arguments and dispatch through io->ops. */
#include "io_internal.h"

#include "si_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SI_IO_DEFAULT_DEPTH 8u
#define SI_IO_MAX_DEPTH 4096u
/* The scheduler aligns every read to this even in buffered mode, so a switch from
 * O_DIRECT to buffered in the middle of a session never invalidates its requests. */
#define SI_IO_MIN_ALIGN 4096u

static si_io_fault g_fault; /* test-only; see si_io_test_inject */

void si_io_test_inject(si_io_fault fault)
{
    g_fault = fault;
}

void si_io_test_set_max_piece(si_io *io, size_t n)
{
    io->max_piece = n && n < SI_IO_MAX_PIECE ? n : SI_IO_MAX_PIECE;
}

bool si_io_fault_read_einval(si_io *io)
{
    if (!io->direct)
        return false;
    if (g_fault == SI_IO_FAULT_DIRECT_READ_EINVAL_ALL)
        return true;
    if (g_fault != SI_IO_FAULT_DIRECT_READ_EINVAL)
        return false;
    g_fault = SI_IO_FAULT_NONE;
    return true;
}

void si_io_add_note(si_io *io, const char *fmt, ...)
{
    size_t n = strlen(io->note);
    if (n + 3 >= sizeof io->note)
        return;
    if (n) {
        memcpy(io->note + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(io->note + n, sizeof io->note - n, fmt, ap);
    va_end(ap);
}

/* ---- opening ------------------------------------------------------------------ */

static int open_fd(si_io *io, bool direct)
{
    int flags = O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0);
    if (direct && g_fault == SI_IO_FAULT_DIRECT_OPEN_EINVAL) {
        g_fault = SI_IO_FAULT_NONE;
        errno = EINVAL;
        return -1;
    }
    int fd;
    do
        fd = open(io->path, flags);
    while (fd < 0 && errno == EINTR);
    return fd;
}

/* Open honouring direct_mode; EINVAL from an O_DIRECT open means the file system
 * has no direct I/O (tmpfs before Linux 6.6, some FUSE file systems). */
static int open_file(si_io *io, si_error *err)
{
    bool want_direct = io->direct_mode != SI_DIRECT_OFF;
    io->fd = open_fd(io, want_direct);
    if (io->fd >= 0) {
        io->direct = want_direct;
        return SI_OK;
    }
    int e = errno;
    if (want_direct && e == EINVAL && io->direct_mode == SI_DIRECT_ON)
        return si_errorf(err, SI_EIO,
                         "%s: open with O_DIRECT failed: %s (the file system does not support "
                         "direct I/O; use direct=auto or direct=off)",
                         io->path, strerror(e));
    if (!want_direct || e != EINVAL)
        return si_errorf(err, SI_EIO, "%s: open failed: %s", io->path, strerror(e));
    io->fd = open_fd(io, false);
    if (io->fd < 0)
        return si_errorf(err, SI_EIO, "%s: open failed: %s", io->path, strerror(errno));
    io->direct = false;
    si_io_add_note(io, "O_DIRECT refused by the file system (EINVAL); buffered reads with "
                       "FADV_DONTNEED");
    return SI_OK;
}

static int probe_size(si_io *io, si_error *err)
{
    struct stat st;
    if (fstat(io->fd, &st) != 0)
        return si_errorf(err, SI_EIO, "%s: fstat failed: %s", io->path, strerror(errno));
    if (S_ISREG(st.st_mode)) {
        io->size = (uint64_t)st.st_size;
        return SI_OK;
    }
    if (S_ISBLK(st.st_mode)) {
        uint64_t bytes = 0;
        if (ioctl(io->fd, BLKGETSIZE64, &bytes) != 0)
            return si_errorf(err, SI_EIO, "%s: BLKGETSIZE64 failed: %s", io->path,
                             strerror(errno));
        io->size = bytes;
        return SI_OK;
    }
    return si_errorf(err, SI_EINVAL, "%s: not a regular file or block device", io->path);
}

/* 4096 unless the kernel reports a larger direct-I/O alignment (statx DIOALIGN,
 * Linux 6.1+; absent on the board's 5.10, where 4096 covers SD cards anyway). */
static size_t probe_alignment(si_io *io)
{
    size_t align = SI_IO_MIN_ALIGN;
#if defined(STATX_DIOALIGN)
    struct statx stx;
    if (statx(io->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN)) {
        if (stx.stx_dio_offset_align > align)
            align = stx.stx_dio_offset_align;
        if (stx.stx_dio_mem_align > align)
            align = stx.stx_dio_mem_align;
    }
#endif
    return align;
}

/* Buffered mode: no kernel readahead. The scheduler asks for exactly the bytes it
 * needs in large reads; readahead would only read bytes nobody uses (around each
 * embedding row, say) from a 25 MB/s card and grow the page cache in a small memory
 * cgroup. Advice failures are harmless. */
static void buffered_advice(si_io *io)
{
    (void)posix_fadvise(io->fd, 0, 0, POSIX_FADV_RANDOM);
}

/* ---- O_DIRECT fallback after the first read ---------------------------------- */

/* Replace the O_DIRECT descriptor with a buffered one of the same file. The old one
 * stays open (stale_fd) because io_uring reads issued on it may still be running. */
static bool switch_to_buffered(si_io *io)
{
    int fd = open_fd(io, false);
    if (fd < 0)
        return false;
    struct stat a, b;
    if (fstat(fd, &a) != 0 || fstat(io->fd, &b) != 0 || a.st_ino != b.st_ino ||
        a.st_dev != b.st_dev) {
        close(fd); /* the path now names another file: do not read it silently */
        return false;
    }
    io->stale_fd = io->fd;
    io->fd = fd;
    io->fd_gen++;
    io->direct = false;
    buffered_advice(io);
    si_io_add_note(io, "O_DIRECT read refused by the device (EINVAL on the first read); "
                       "buffered reads with FADV_DONTNEED");
    return true;
}

bool si_io_retry_after_einval(si_io *io, int errnum, unsigned gen)
{
    if (errnum != EINVAL)
        return false;
    pthread_mutex_lock(&io->state_lock);
    bool retry;
    if (gen != io->fd_gen)
        retry = true; /* issued on the replaced O_DIRECT descriptor */
    else if (!io->direct || io->direct_mode != SI_DIRECT_AUTO || io->direct_proven)
        retry = false;
    else
        retry = switch_to_buffered(io);
    pthread_mutex_unlock(&io->state_lock);
    return retry;
}

/* ---- reading helpers shared by the backends ----------------------------------- */

void si_io_account(si_io *io, uint64_t offset, size_t len)
{
    pthread_mutex_lock(&io->state_lock);
    io->bytes_read += len;
    bool direct = io->direct;
    if (direct)
        io->direct_proven = true;
    int fd = io->fd;
    pthread_mutex_unlock(&io->state_lock);
    if (direct)
        return;
    /* Buffered: the scheduler keeps its own copy; cached pages would only push the
     * process out of its memory cgroup. DONTNEED keeps partly covered pages, so widen
     * the range to whole pages (unaligned si_io_read ranges). Failures are harmless. */
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (page == 0 || (page & (page - 1)))
        page = 4096;
    uint64_t start = offset & ~(page - 1);
    uint64_t end = (offset + len + page - 1) & ~(page - 1);
    (void)posix_fadvise(fd, (off_t)start, (off_t)(end - start), POSIX_FADV_DONTNEED);
}

/* An O_DIRECT read that stops short ends at end of file; the next read then starts
 * at an unaligned offset, which some file systems reject with EINVAL before they
 * notice the end of file. */
static bool direct_eof_einval(const si_io *io, bool direct, int errnum, size_t done, uint64_t pos)
{
    return errnum == EINVAL && direct && done > 0 && (pos % io->align) != 0;
}

int si_io_pread_full(si_io *io, uint64_t offset, size_t len, void *dst, size_t *got)
{
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        size_t piece = len - done < io->max_piece ? len - done : io->max_piece;
        ssize_t n;
        /* The descriptor as of now: a fallback on another thread may replace it (the
         * old one stays open until close, and its EINVAL is retried by generation). */
        pthread_mutex_lock(&io->state_lock);
        int fd = io->fd;
        unsigned gen = io->fd_gen;
        bool direct = io->direct, fake_einval = si_io_fault_read_einval(io);
        pthread_mutex_unlock(&io->state_lock);
        if (fake_einval) {
            n = -1;
            errno = EINVAL;
        } else {
#if SI_FAULT_INJECTION
            si_fi_kind fk = si_io_fi_next();
            if (fk == SI_FI_EIO || fk == SI_FI_EAGAIN) {
                n = -1;
                errno = fk == SI_FI_EIO ? EIO : EAGAIN;
                goto injected;
            }
            if (fk == SI_FI_SHORT) /* O_DIRECT: a short read stays aligned */
                piece = !direct ? (piece + 1) / 2 : piece >= 2 * io->align ? piece / 2 / io->align * io->align : piece;
            if (fk == SI_FI_LATE)
                si_io_fi_set_late();
#endif
            n = pread(fd, (char *)dst + done, piece, (off_t)(offset + done));
#if SI_FAULT_INJECTION
            if (fk == SI_FI_FLIP && n > 0)
                ((unsigned char *)dst)[done + (size_t)n / 2] ^= 0x10;
        injected:;
#endif
        }
        if (n < 0) {
            int e = errno;
            if (e == EINTR || e == EAGAIN)
                continue;
            if (direct_eof_einval(io, direct, e, done, offset + done)) {
                rc = SI_IO_EOF;
                break;
            }
            if (si_io_retry_after_einval(io, e, gen))
                continue;
            rc = e;
            break;
        }
        if (n == 0) {
            rc = SI_IO_EOF;
            break;
        }
        si_io_account(io, offset + done, (size_t)n);
        done += (size_t)n;
    }
    *got = done;
    return rc;
}

int si_io_read_error(si_io *io, si_error *err, uint64_t offset, size_t len, size_t got,
                     int errnum)
{
    pthread_mutex_lock(&io->state_lock);
    int fd = io->fd;
    bool direct = io->direct;
    pthread_mutex_unlock(&io->state_lock);
    if (errnum == SI_IO_EOF) {
        /* The size now tells a file truncated after open from a plain short file. */
        struct stat st;
        uint64_t now = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : io->size;
        return si_errorf(err, SI_EIO,
                         "%s: read of %zu bytes at offset %" PRIu64 " failed: end of file "
                         "after %zu bytes (file has %" PRIu64 " bytes, %" PRIu64
                         " at open: shorter than expected)",
                         io->path, len, offset, got, now, io->size);
    }
    const char *hint = "";
    if (errnum == EINVAL && direct)
        hint = io->direct_mode == SI_DIRECT_ON
                   ? " (O_DIRECT refused by the device; direct=auto falls back to buffered "
                     "reads)"
                   : " (O_DIRECT: misaligned offset, length or buffer?)";
    return si_errorf(err, SI_EIO, "%s: read of %zu bytes at offset %" PRIu64 " failed: %s%s",
                     io->path, len, offset, strerror(errnum), hint);
}

/* ---- open / close ------------------------------------------------------------- */

static int attach_backend(si_io *io, const si_io_opts *o, si_error *err)
{
    if (o->kind == SI_IO_PREAD)
        return si_io_pread_attach(io, o->reader_thread, err);
    si_error uerr = {0};
    int rc = si_io_uring_attach(io, o->compat_5_10, &uerr);
    if (rc == SI_OK)
        return SI_OK;
    if (o->kind == SI_IO_URING || rc != SI_ENOSYS) {
        if (err)
            *err = uerr;
        return si_error_prefix(err, "%s", io->path);
    }
    si_io_add_note(io, "%s; pread backend", uerr.msg);
    return si_io_pread_attach(io, o->reader_thread, err);
}

static int check_opts(const si_io_opts *o, const char *path, si_error *err)
{
    SI_CHECK(!path || !*path, err, SI_EINVAL, "si_io_open: empty path");
    SI_CHECK((unsigned)o->kind > SI_IO_PREAD, err, SI_EINVAL, "%s: unknown I/O backend %d",
             path, (int)o->kind);
    SI_CHECK((unsigned)o->direct > SI_DIRECT_OFF, err, SI_EINVAL,
             "%s: unknown direct I/O mode %d", path, (int)o->direct);
    SI_CHECK(o->queue_depth > SI_IO_MAX_DEPTH, err, SI_EINVAL,
             "%s: queue depth %u exceeds %u", path, o->queue_depth, SI_IO_MAX_DEPTH);
    return SI_OK;
}

int si_io_open(si_io **out, const char *path, const si_io_opts *opts, si_error *err)
{
    static const si_io_opts defaults = {0};
    const si_io_opts *o = opts ? opts : &defaults;
    *out = NULL;
    SI_TRY(check_opts(o, path, err));
    si_io *io = calloc(1, sizeof *io);
    char *p = strdup(path);
    if (!io || !p) {
        free(io);
        free(p);
        return si_errorf(err, SI_ENOMEM, "%s: out of memory opening the file", path);
    }
    io->path = p;
    pthread_mutex_init(&io->state_lock, NULL);
    io->fd = -1;
    io->stale_fd = -1;
    io->direct_mode = o->direct;
    io->depth = o->queue_depth ? o->queue_depth : SI_IO_DEFAULT_DEPTH;
    io->max_piece = SI_IO_MAX_PIECE;
    int rc = open_file(io, err);
    if (rc == SI_OK && !io->direct)
        buffered_advice(io);
    if (rc == SI_OK)
        rc = probe_size(io, err);
    if (rc == SI_OK) {
        io->align = probe_alignment(io);
        rc = attach_backend(io, o, err);
    }
    if (rc != SI_OK) {
        si_io_close(io);
        return rc;
    }
    *out = io;
    return SI_OK;
}

void si_io_close(si_io *io)
{
    if (!io)
        return;
    if (io->ops)
        io->ops->close(io); /* waits for reads in flight: their buffers are the caller's */
    if (io->fd >= 0)
        close(io->fd);
    if (io->stale_fd >= 0)
        close(io->stale_fd);
    free(io->bounce);
    free(io->path);
    pthread_mutex_destroy(&io->state_lock);
    free(io);
}

/* ---- queries ------------------------------------------------------------------ */

const char *si_io_backend(const si_io *io) { return io->ops->name; }
bool si_io_reader_thread(const si_io *io) { return io->reader_thread; }
/* The fields a read may change are read under the state lock (see io_internal.h);
 * the lock is logically mutable, hence the casts. */
static pthread_mutex_t *state_lock(const si_io *io) { return (pthread_mutex_t *)&io->state_lock; }

bool si_io_direct_active(const si_io *io)
{
    pthread_mutex_lock(state_lock(io));
    bool d = io->direct;
    pthread_mutex_unlock(state_lock(io));
    return d;
}
size_t si_io_alignment(const si_io *io) { return io->align; }
unsigned si_io_queue_depth(const si_io *io) { return io->depth; }
unsigned si_io_inflight(const si_io *io) { return io->inflight; }
uint64_t si_io_file_size(const si_io *io) { return io->size; }
const char *si_io_path(const si_io *io) { return io->path; }
uint64_t si_io_bytes_read(const si_io *io)
{
    pthread_mutex_lock(state_lock(io));
    uint64_t b = io->bytes_read;
    pthread_mutex_unlock(state_lock(io));
    return b;
}
const char *si_io_note(const si_io *io) { return io->note; } /* written at open or by a fallback */
const char *si_io_detail(const si_io *io) { return io->detail; }

/* ---- reads -------------------------------------------------------------------- */

int si_io_submit(si_io *io, uint64_t offset, size_t len, void *dst, uint64_t tag, si_error *err)
{
    SI_CHECK(io->inflight >= io->depth, err, SI_EINVAL,
             "%s: read at offset %" PRIu64 " (%zu bytes): queue full (%u in flight)", io->path,
             offset, len, io->inflight);
    SI_CHECK(!dst || len == 0, err, SI_EINVAL,
             "%s: read at offset %" PRIu64 " (%zu bytes): empty read or no buffer", io->path,
             offset, len);
    SI_CHECK(offset % io->align || len % io->align || (uintptr_t)dst % io->align, err,
             SI_EINVAL,
             "%s: read of %zu bytes at offset %" PRIu64 " into %p: offset, length and buffer "
             "must be aligned to %zu bytes",
             io->path, len, offset, dst, io->align);
    SI_CHECK(offset > UINT64_MAX - len || offset + len > (uint64_t)INT64_MAX, err, SI_EINVAL,
             "%s: read of %zu bytes at offset %" PRIu64 ": range overflows", io->path, len,
             offset);
    SI_TRY(io->ops->submit(io, offset, len, dst, tag, err));
    io->inflight++;
    return SI_OK;
}

int si_io_reap(si_io *io, bool wait, uint64_t *tag, si_error *err)
{
    if (io->inflight == 0)
        return 0;
    bool consumed = false;
    int rc = io->ops->reap(io, wait, tag, &consumed, err);
    if (rc > 0 || (rc < 0 && consumed))
        io->inflight--;
    return rc;
}

static int ensure_bounce(si_io *io, size_t need, si_error *err)
{
    if (need <= io->bounce_cap)
        return SI_OK;
    size_t cap = io->bounce_cap ? io->bounce_cap : 64 * 1024;
    while (cap < need)
        cap *= 2;
    void *p = NULL;
    if (posix_memalign(&p, io->align, cap) != 0)
        return si_errorf(err, SI_ENOMEM, "%s: out of memory for a %zu-byte read buffer",
                         io->path, cap);
    free(io->bounce);
    io->bounce = p;
    io->bounce_cap = cap;
    return SI_OK;
}

/* Synchronous, so it uses pread on the same descriptor in every backend: it adds no
 * io_uring request and thus cannot disturb the reads in flight. */
int si_io_read(si_io *io, uint64_t offset, size_t len, void *dst, si_error *err)
{
    if (len == 0)
        return SI_OK;
    SI_CHECK(!dst, err, SI_EINVAL, "%s: read at offset %" PRIu64 ": no buffer", io->path,
             offset);
    SI_CHECK(offset > UINT64_MAX - len, err, SI_EINVAL,
             "%s: read of %zu bytes at offset %" PRIu64 ": range overflows", io->path, len,
             offset);
    size_t got = 0;
    if (!si_io_direct_active(io)) {
        int rc = si_io_pread_full(io, offset, len, dst, &got);
        return rc ? si_io_read_error(io, err, offset, len, got, rc) : SI_OK;
    }
    /* O_DIRECT: read the aligned covering range; the padding may run past the end of
     * the file, which is fine as long as the requested bytes arrived. */
    uint64_t start = offset - offset % io->align;
    uint64_t end = offset + len;
    uint64_t span = end - start;
    span += (io->align - span % io->align) % io->align;
    SI_CHECK(span > SIZE_MAX / 2, err, SI_EINVAL, "%s: read of %zu bytes is too large",
             io->path, len);
    SI_TRY(ensure_bounce(io, (size_t)span, err));
    int rc = si_io_pread_full(io, start, (size_t)span, io->bounce, &got);
    size_t need = (size_t)(end - start);
    if (rc != 0 && !(rc == SI_IO_EOF && got >= need)) {
        size_t have = got > offset - start ? got - (size_t)(offset - start) : 0;
        return si_io_read_error(io, err, offset, len, have, rc);
    }
    memcpy(dst, (char *)io->bounce + (offset - start), len);
    return SI_OK;
}
