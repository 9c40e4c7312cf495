/* The io_uring backend: each submit queues one read SQE and submits it at once, so
 * the device works while the single CPU core computes. Reap turns CQEs back into
 * whole-range completions: short reads and -EAGAIN/-EINTR are resubmitted for the
 * remainder, and the O_DIRECT fallback re-issues a refused read on the buffered
 * descriptor. Built as a stub reporting SI_ENOSYS without liburing. */
#include "io_internal.h"

#include "si_config.h"

#include <stdio.h>

static bool g_force_readv; /* test-only, see si_io_test_force_readv */

void si_io_test_force_readv(bool on)
{
    g_force_readv = on;
}

#if SI_HAVE_URING

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

typedef struct slot {
    uint64_t offset;
    size_t len;
    size_t done; /* bytes already read */
    char *dst;
    uint64_t tag;
    unsigned gen;     /* io->fd_gen when last issued */
    bool used;
    bool fake_einval; /* test fault injection: this NOP stands for a refused read */
    int fi;           /* -Dfault_injection: the si_fi_kind of the read in flight */
    struct iovec iov; /* IORING_OP_READV needs it alive until completion */
} slot;

typedef struct uring_be {
    struct io_uring ring;
    bool use_readv; /* kernel without IORING_OP_READ (before 5.6) */
    slot *slots;    /* io->depth of them */
    slot *late;     /* fault injection: a completion held back (its result in late_res) */
    int late_res;
} uring_be;

/* ---- setup -------------------------------------------------------------------- */

static const char *setup_hint(int e)
{
    switch (e) {
    case ENOSYS: return " (kernel without io_uring, or an emulator such as qemu-user)";
    case EPERM: return " (blocked by seccomp or sysctl kernel.io_uring_disabled)";
    case ENOMEM: return " (locked-memory limit too low; see ulimit -l)";
    case EINVAL: return " (kernel too old for io_uring)";
    }
    return "";
}

/* Newer kernels run completion work cheaper with these flags; each level is retried
 * without when the kernel rejects it (EINVAL), ending with a plain 5.10 setup.
 * TASKRUN_FLAG makes liburing enter the kernel on a non-blocking peek when
 * completions wait for task work, which COOP_TASKRUN would otherwise defer. */
static int setup_ring(uring_be *be, unsigned entries, bool compat, unsigned *flags_used)
{
    unsigned levels[3];
    unsigned n = 0;
    if (!compat) {
#if defined(IORING_SETUP_SINGLE_ISSUER) && defined(IORING_SETUP_COOP_TASKRUN) && \
    defined(IORING_SETUP_TASKRUN_FLAG)
        levels[n++] = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
                      IORING_SETUP_TASKRUN_FLAG;
#endif
#if defined(IORING_SETUP_COOP_TASKRUN) && defined(IORING_SETUP_TASKRUN_FLAG)
        levels[n++] = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
#endif
    }
    levels[n++] = 0;
    int rc = -EINVAL;
    for (unsigned i = 0; i < n; i++) {
        rc = io_uring_queue_init(entries, &be->ring, levels[i]);
        if (rc == 0) {
            *flags_used = levels[i];
            return 0;
        }
        if (rc != -EINVAL)
            break;
    }
    return rc;
}

static void describe(si_io *io, const uring_be *be, unsigned flags, bool compat)
{
    char f[96] = "";
#ifdef IORING_SETUP_SINGLE_ISSUER
    if (flags & IORING_SETUP_SINGLE_ISSUER)
        strcat(f, "|SINGLE_ISSUER");
#endif
#ifdef IORING_SETUP_COOP_TASKRUN
    if (flags & IORING_SETUP_COOP_TASKRUN)
        strcat(f, "|COOP_TASKRUN");
#endif
#ifdef IORING_SETUP_TASKRUN_FLAG
    if (flags & IORING_SETUP_TASKRUN_FLAG)
        strcat(f, "|TASKRUN_FLAG");
#endif
    snprintf(io->detail, sizeof io->detail, "io_uring, depth %u, %s, setup flags %s%s", io->depth,
             be->use_readv ? "IORING_OP_READV" : "IORING_OP_READ", f[0] ? f + 1 : "none",
             compat ? " (5.10 compatible)" : "");
}

/* ---- issuing ------------------------------------------------------------------ */

/* Queue the rest of s's range (at most io->max_piece, 1 GiB, as SQE lengths are
 * 32-bit) and submit it now. Returns 0 or a positive errno. */
static int issue(si_io *io, uring_be *be, slot *s)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&be->ring);
    if (!sqe)
        return EBUSY; /* cannot happen: the ring has depth entries, we hold <= depth */
    size_t piece = s->len - s->done;
    if (piece > io->max_piece)
        piece = io->max_piece;
    uint64_t pos = s->offset + s->done;
    s->gen = io->fd_gen;
    s->fake_einval = si_io_fault_read_einval(io);
    s->fi = 0;
#if SI_FAULT_INJECTION
    if (!s->fake_einval)
        s->fi = (int)si_io_fi_next();
    if (s->fi == SI_FI_SHORT) /* O_DIRECT: a short read stays aligned */
        piece = !io->direct ? (piece + 1) / 2 : piece >= 2 * io->align ? piece / 2 / io->align * io->align : piece;
    if (s->fi == SI_FI_EIO || s->fi == SI_FI_EAGAIN) {
        io_uring_prep_nop(sqe); /* on_cqe makes it the error */
    } else
#endif
    if (s->fake_einval) {
        io_uring_prep_nop(sqe);
    } else if (be->use_readv) {
        s->iov.iov_base = s->dst + s->done;
        s->iov.iov_len = piece;
        io_uring_prep_readv(sqe, io->fd, &s->iov, 1, pos);
    } else {
        io_uring_prep_read(sqe, io->fd, s->dst + s->done, (unsigned)piece, pos);
    }
    io_uring_sqe_set_data(sqe, s);
    for (;;) {
        int rc = io_uring_submit(&be->ring);
        if (rc >= 0)
            return 0;
        if (rc != -EINTR && rc != -EAGAIN) {
            /* liburing cannot take a queued SQE back; the next submit would send it,
             * so make it a NOP that reap ignores (no slot). */
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data(sqe, NULL);
            return -rc;
        }
    }
}

/* IORING_SETUP_SINGLE_ISSUER rings refuse other threads with EEXIST. */
static const char *single_issuer_hint(int e)
{
    return e == EEXIST ? " (io_uring used from a thread other than the one that opened "
                         "the file; open it in the I/O thread or use compat_5_10)"
                       : "";
}

static slot *free_slot(si_io *io, uring_be *be)
{
    for (unsigned i = 0; i < io->depth; i++)
        if (!be->slots[i].used)
            return &be->slots[i];
    return NULL;
}

static int uring_submit(si_io *io, uint64_t offset, size_t len, void *dst, uint64_t tag,
                        si_error *err)
{
    uring_be *be = io->backend;
    slot *s = free_slot(io, be);
    if (!s) /* io.c checks the depth first */
        return si_errorf(err, SI_EINVAL, "%s: read at offset %llu: queue full", io->path,
                         (unsigned long long)offset);
    *s = (slot){.offset = offset, .len = len, .dst = dst, .tag = tag, .used = true};
    int e = issue(io, be, s);
    if (e) {
        s->used = false;
        return si_errorf(err, SI_EIO,
                         "%s: read of %zu bytes at offset %llu: io_uring submit failed: %s%s",
                         io->path, len, (unsigned long long)offset, strerror(e),
                         single_issuer_hint(e));
    }
    return SI_OK;
}

/* ---- completions -------------------------------------------------------------- */

static int fail(si_io *io, slot *s, uint64_t *tag, int errnum, si_error *err)
{
    s->used = false;
    *tag = s->tag;
    return si_io_read_error(io, err, s->offset, s->len, s->done, errnum);
}

static int reissue(si_io *io, uring_be *be, slot *s, uint64_t *tag, si_error *err)
{
    int e = issue(io, be, s);
    return e ? fail(io, s, tag, e, err) : 0;
}

/* One CQE of slot s: 1 when its range is complete, 0 when the rest was resubmitted,
 * negative when the read failed (the slot is released and *tag names it). */
static int on_cqe(si_io *io, uring_be *be, slot *s, int res, uint64_t *tag, si_error *err)
{
    if (s->fake_einval) {
        s->fake_einval = false;
        res = -EINVAL;
    }
#if SI_FAULT_INJECTION
    if (s->fi == SI_FI_EIO || s->fi == SI_FI_EAGAIN)
        res = s->fi == SI_FI_EIO ? -EIO : -EAGAIN;
    if (s->fi == SI_FI_FLIP && res > 0)
        ((unsigned char *)s->dst)[s->done + (size_t)res / 2] ^= 0x10;
    s->fi = 0;
#endif
    if (res == -EAGAIN || res == -EINTR)
        return reissue(io, be, s, tag, err);
    if (res < 0) {
        int e = -res;
        uint64_t pos = s->offset + s->done;
        /* After a short O_DIRECT read at end of file the remainder starts unaligned,
         * which some file systems reject before noticing the end of file. */
        if (e == EINVAL && io->direct && s->done > 0 && pos % io->align)
            return fail(io, s, tag, SI_IO_EOF, err);
        if (si_io_retry_after_einval(io, e, s->gen))
            return reissue(io, be, s, tag, err);
        return fail(io, s, tag, e, err);
    }
    if (res == 0)
        return fail(io, s, tag, SI_IO_EOF, err);
    si_io_account(io, s->offset + s->done, (size_t)res);
    s->done += (size_t)res;
    if (s->done < s->len)
        return reissue(io, be, s, tag, err);
    s->used = false;
    *tag = s->tag;
    return 1;
}

static int uring_reap(si_io *io, bool wait, uint64_t *tag, bool *consumed, si_error *err)
{
    uring_be *be = io->backend;
    for (;;) {
#if SI_FAULT_INJECTION
        /* A held-back completion is delivered when no other read is in flight. */
        if (be->late) {
            unsigned others = 0;
            for (unsigned i = 0; i < io->depth; i++)
                others += be->slots[i].used && &be->slots[i] != be->late;
            if (others == 0) {
                slot *s = be->late;
                be->late = NULL;
                int rc = on_cqe(io, be, s, be->late_res, tag, err);
                if (rc != 0) {
                    *consumed = rc < 0;
                    return rc;
                }
                continue;
            }
        }
#endif
        struct io_uring_cqe *cqe = NULL;
        int rc = wait ? io_uring_wait_cqe(&be->ring, &cqe) : io_uring_peek_cqe(&be->ring, &cqe);
        if (rc == -EINTR)
            continue;
        if (!wait && (rc == -EAGAIN || (rc == 0 && !cqe)))
            return 0;
        if (rc < 0)
            return si_errorf(err, SI_EIO, "%s: waiting for io_uring completions failed: %s%s",
                             io->path, strerror(-rc), single_issuer_hint(-rc));
        slot *s = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&be->ring, cqe);
        if (!s)
            continue; /* NOP left by a failed submit */
#if SI_FAULT_INJECTION
        if (s->fi == SI_FI_LATE && !be->late) {
            s->fi = 0;
            be->late = s, be->late_res = res; /* delivered after the next completion */
            continue;
        }
#endif
        rc = on_cqe(io, be, s, res, tag, err);
        if (rc != 0) {
            *consumed = rc < 0;
            return rc;
        }
    }
}

/* Reads still in flight write into the caller's buffers: wait for every one before
 * the ring goes, so that nothing lands in memory the caller frees after close. */
static void drain(si_io *io, uring_be *be)
{
    unsigned left = 0;
    for (unsigned i = 0; i < io->depth; i++)
        left += be->slots[i].used;
    while (left) {
        struct io_uring_cqe *cqe = NULL;
        int rc = io_uring_wait_cqe(&be->ring, &cqe);
        if (rc == -EINTR)
            continue;
        if (rc < 0)
            break;
        slot *s = io_uring_cqe_get_data(cqe);
        io_uring_cqe_seen(&be->ring, cqe);
        if (s && s->used) {
            s->used = false;
            left--;
        }
    }
}

static void uring_close(si_io *io)
{
    uring_be *be = io->backend;
    if (!be)
        return;
    if (be->late) { /* its completion was already taken from the ring */
        be->late->used = false;
        be->late = NULL;
    }
    drain(io, be);
    io_uring_queue_exit(&be->ring);
    free(be->slots);
    free(be);
}

static const si_io_ops uring_ops = {
    .name = "io_uring",
    .submit = uring_submit,
    .reap = uring_reap,
    .close = uring_close,
};

int si_io_uring_attach(si_io *io, bool compat_5_10, si_error *err)
{
    uring_be *be = calloc(1, sizeof *be);
    slot *slots = calloc(io->depth, sizeof *slots);
    if (!be || !slots) {
        free(be);
        free(slots);
        return si_errorf(err, SI_ENOMEM, "out of memory for the io_uring queue");
    }
    unsigned flags = 0;
#if SI_FAULT_INJECTION
    int rc = si_io_fi_setup_should_fail() ? -ENOSYS : setup_ring(be, io->depth, compat_5_10, &flags);
#else
    int rc = setup_ring(be, io->depth, compat_5_10, &flags);
#endif
    if (rc < 0) {
        free(be);
        free(slots);
        return si_errorf(err, SI_ENOSYS, "io_uring unavailable: io_uring_setup(%u entries) failed: %s%s",
                         io->depth, strerror(-rc), setup_hint(-rc));
    }
    be->slots = slots;
    /* IORING_OP_READ came in 5.6; the probe itself in 5.6 too, so no probe means
     * an older kernel where only READV exists. */
    struct io_uring_probe *probe = io_uring_get_probe_ring(&be->ring);
    be->use_readv = g_force_readv || !probe || !io_uring_opcode_supported(probe, IORING_OP_READ);
    if (probe)
        io_uring_free_probe(probe);
    io->backend = be;
    io->ops = &uring_ops;
    describe(io, be, flags, compat_5_10);
    return SI_OK;
}

#else /* !SI_HAVE_URING */

int si_io_uring_attach(si_io *io, bool compat_5_10, si_error *err)
{
    return si_errorf(err, SI_ENOSYS,
                     "io_uring unavailable: built without io_uring (liburing missing or "
                     "-Dio_uring=disabled)");
}

#endif
