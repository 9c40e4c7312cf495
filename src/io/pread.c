/* The pread backend: submit reads the whole range at once and queues the outcome;
 * reap hands outcomes back in submission order. Errors wait for reap so that the
 * scheduler handles them on the same code path as io_uring's. This is the backend
 * under qemu-user, seccomp, or a kernel without io_uring. */
#include "io_internal.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct done_read {
    uint64_t tag;
    uint64_t offset;
    size_t len;
    size_t got;
    int errnum; /* 0, an errno, or SI_IO_EOF */
    bool late;  /* fault injection: hand out the next completion first */
} done_read;

typedef struct pread_be {
    done_read *q; /* ring of io->depth entries; io.c never lets more in */
    unsigned head;
    unsigned count;
} pread_be;

static int pread_submit(si_io *io, uint64_t offset, size_t len, void *dst, uint64_t tag,
                        si_error *err)
{
    pread_be *be = io->backend;
    done_read *d = &be->q[(be->head + be->count) % io->depth];
    d->tag = tag;
    d->offset = offset;
    d->len = len;
    d->errnum = si_io_pread_full(io, offset, len, dst, &d->got);
    d->late = false;
#if SI_FAULT_INJECTION
    d->late = si_io_fi_take_late();
#endif
    be->count++;
    return SI_OK;
}

static int pread_reap(si_io *io, bool wait, uint64_t *tag, bool *consumed, si_error *err)
{
    pread_be *be = io->backend;
    if (be->count == 0)
        return 0;
    if (be->q[be->head].late && be->count > 1) {
        /* fault injection: the head completes after the one behind it */
        done_read *a = &be->q[be->head], *b = &be->q[(be->head + 1) % io->depth], t = *a;
        *a = *b;
        *b = t;
        b->late = false;
    }
    done_read d = be->q[be->head];
    be->head = (be->head + 1) % io->depth;
    be->count--;
    *tag = d.tag;
    *consumed = true;
    if (d.errnum)
        return si_io_read_error(io, err, d.offset, d.len, d.got, d.errnum);
    return 1;
}

static void pread_close(si_io *io)
{
    pread_be *be = io->backend;
    if (be)
        free(be->q);
    free(be);
}

static const si_io_ops pread_ops = {
    .name = "pread",
    .submit = pread_submit,
    .reap = pread_reap,
    .close = pread_close,
};

int si_io_pread_attach(si_io *io, si_error *err)
{
    pread_be *be = calloc(1, sizeof *be);
    done_read *q = calloc(io->depth, sizeof *q);
    if (!be || !q) {
        free(be);
        free(q);
        return si_errorf(err, SI_ENOMEM, "%s: out of memory for the read queue", io->path);
    }
    be->q = q;
    io->backend = be;
    io->ops = &pread_ops;
    snprintf(io->detail, sizeof io->detail, "pread, depth %u", io->depth);
    return SI_OK;
}
