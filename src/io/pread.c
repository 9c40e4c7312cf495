/* The pread backend: the backend under qemu-user, seccomp, or a kernel without
 * io_uring. Reads complete in submission order; errors wait for reap so that the
 * scheduler handles them on the same code path as io_uring's.
 *
 * Without a reader thread, submit reads the whole range at once and queues the
 * outcome. With one (si_io_opts.reader_thread), submit only queues the request and
 * the handle's own thread reads the queue in order, so the caller computes, and the
 * other members of a striped pack read, while this one waits on its device. */
#include "io_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct queued_read {
    uint64_t tag;
    uint64_t offset;
    size_t len;
    void *dst;
    size_t got;
    int errnum; /* 0, an errno, or SI_IO_EOF */
    bool late;  /* fault injection: hand out the next completion first */
} queued_read;

typedef struct pread_be {
    queued_read *q; /* ring of io->depth entries; io.c never lets more in */
    unsigned head;  /* oldest read not yet reaped */
    unsigned count; /* reads queued and not yet reaped */
    unsigned done;  /* of those, from head on, the ones read (all of them without a thread) */
    /* reader thread (threaded only): reads q[head + started] while started < count */
    bool threaded, stop;
    unsigned started;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work, finished;
} pread_be;

static void read_one(si_io *io, queued_read *r)
{
    r->errnum = si_io_pread_full(io, r->offset, r->len, r->dst, &r->got);
    r->late = false;
#if SI_FAULT_INJECTION
    r->late = si_io_fi_take_late();
#endif
}

static void *reader_main(void *arg)
{
    si_io *io = arg;
    pread_be *be = io->backend;
    pthread_mutex_lock(&be->mu);
    for (;;) {
        while (!be->stop && be->started == be->count)
            pthread_cond_wait(&be->work, &be->mu);
        if (be->stop)
            break; /* reads not started are dropped: their buffers are the caller's */
        queued_read *r = &be->q[(be->head + be->started) % io->depth];
        be->started++;
        pthread_mutex_unlock(&be->mu);
        read_one(io, r);
        pthread_mutex_lock(&be->mu);
        be->done++;
        pthread_cond_signal(&be->finished);
    }
    pthread_mutex_unlock(&be->mu);
    return NULL;
}

static int pread_submit(si_io *io, uint64_t offset, size_t len, void *dst, uint64_t tag,
                        si_error *err)
{
    (void)err;
    pread_be *be = io->backend;
    if (be->threaded)
        pthread_mutex_lock(&be->mu);
    queued_read *r = &be->q[(be->head + be->count) % io->depth];
    *r = (queued_read){.tag = tag, .offset = offset, .len = len, .dst = dst};
    be->count++;
    if (be->threaded) {
        pthread_cond_signal(&be->work);
        pthread_mutex_unlock(&be->mu);
    } else {
        read_one(io, r);
        be->done++;
    }
    return SI_OK;
}

static int pread_reap(si_io *io, bool wait, uint64_t *tag, bool *consumed, si_error *err)
{
    pread_be *be = io->backend;
    if (be->threaded) {
        pthread_mutex_lock(&be->mu);
        while (wait && be->done == 0 && be->count > 0)
            pthread_cond_wait(&be->finished, &be->mu);
    }
    if (be->done == 0) {
        if (be->threaded)
            pthread_mutex_unlock(&be->mu);
        return 0;
    }
    if (be->q[be->head].late && be->done > 1) {
        /* fault injection: the head completes after the one behind it */
        queued_read *a = &be->q[be->head], *b = &be->q[(be->head + 1) % io->depth], t = *a;
        *a = *b;
        *b = t;
        b->late = false;
    }
    queued_read r = be->q[be->head];
    be->head = (be->head + 1) % io->depth;
    be->count--;
    be->done--;
    if (be->threaded) {
        be->started--;
        pthread_mutex_unlock(&be->mu);
    }
    *tag = r.tag;
    *consumed = true;
    if (r.errnum)
        return si_io_read_error(io, err, r.offset, r.len, r.got, r.errnum);
    return 1;
}

static void pread_close(si_io *io)
{
    pread_be *be = io->backend;
    if (!be)
        return;
    if (be->threaded) {
        pthread_mutex_lock(&be->mu);
        be->stop = true;
        pthread_cond_signal(&be->work);
        pthread_mutex_unlock(&be->mu);
        pthread_join(be->thread, NULL); /* a read in progress ends first */
        pthread_mutex_destroy(&be->mu);
        pthread_cond_destroy(&be->work);
        pthread_cond_destroy(&be->finished);
    }
    free(be->q);
    free(be);
}

static const si_io_ops pread_ops = {
    .name = "pread",
    .submit = pread_submit,
    .reap = pread_reap,
    .close = pread_close,
};

int si_io_pread_attach(si_io *io, bool reader_thread, si_error *err)
{
    pread_be *be = calloc(1, sizeof *be);
    queued_read *q = calloc(io->depth, sizeof *q);
    if (!be || !q) {
        free(be);
        free(q);
        return si_errorf(err, SI_ENOMEM, "%s: out of memory for the read queue", io->path);
    }
    be->q = q;
    io->backend = be; /* before the reader thread starts: it reads io->backend */
    io->ops = &pread_ops;
    io->reader_thread = reader_thread;
    if (reader_thread) {
        pthread_mutex_init(&be->mu, NULL);
        pthread_cond_init(&be->work, NULL);
        pthread_cond_init(&be->finished, NULL);
        be->threaded = true;
        int rc = pthread_create(&be->thread, NULL, reader_main, io);
        if (rc != 0) {
            io->backend = NULL;
            io->ops = NULL;
            pthread_mutex_destroy(&be->mu);
            pthread_cond_destroy(&be->work);
            pthread_cond_destroy(&be->finished);
            free(q);
            free(be);
            return si_errorf(err, SI_ENOMEM, "%s: cannot start the reader thread: %s", io->path,
                             strerror(rc));
        }
    }
    snprintf(io->detail, sizeof io->detail, "pread, depth %u%s", io->depth,
             reader_thread ? ", reader thread" : "");
    return SI_OK;
}
