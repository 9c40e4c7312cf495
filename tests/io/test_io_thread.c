/* A handle used from a thread other than the one that opened it (argv: uring |
 * uring-compat | pread). With IORING_SETUP_SINGLE_ISSUER (Linux 6.0+, not with
 * compat_5_10) the kernel refuses such submits: the error must say so, and the
 * handle must keep working from its own thread. Otherwise the read just works. */
#include "io_test_util.h"

#include <pthread.h>

typedef struct job {
    si_io *io;
    uint8_t *buf;
    int rc;
    si_error err;
} job;

static void *other_thread(void *p)
{
    job *j = p;
    j->rc = si_io_submit(j->io, 0, si_io_alignment(j->io), j->buf, 1, &j->err);
    if (j->rc == SI_OK) {
        uint64_t t = 0;
        j->rc = si_io_reap(j->io, true, &t, &j->err);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    si_io_opts o = {.direct = SI_DIRECT_AUTO};
    if (argc != 2 || t_parse_backend(argv[1], &o)) {
        fprintf(stderr, "usage: %s pread|pread-thread|uring|uring-compat\n", argv[0]);
        return 2;
    }
    char name[64], path[4096];
    snprintf(name, sizeof name, "io-thread-%s.bin", argv[1]);
    t_path(path, sizeof path, name);
    if (t_write_file(path, 64 * 1024, 0x72u) != 0)
        return 1;
    si_io *io = t_open_or_skip(path, &o);
    size_t a = si_io_alignment(io);
    job j = {.io = io, .buf = t_aligned(a, a)};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, other_thread, &j) == 0, "pthread_create");
    pthread_join(th, NULL);
    bool single = strstr(si_io_detail(io), "SINGLE_ISSUER") != NULL;
    if (j.rc == 1) {
        CHECK(!single, "SINGLE_ISSUER ring accepted a read from another thread");
        CHECK(t_mismatch(j.buf, 0, a, 0x72u) < 0, "data differs");
        printf("read from another thread: ok\n");
    } else {
        CHECK(single, "read from another thread failed: %s", j.err.msg);
        CHECK(strstr(j.err.msg, "thread") && strstr(j.err.msg, path), "unclear: %s", j.err.msg);
        printf("read from another thread refused: %s\n", j.err.msg);
    }
    /* Still usable from the opening thread. */
    si_error err = {0};
    uint64_t t = 0;
    CHECK(si_io_inflight(io) == 0, "inflight %u", si_io_inflight(io));
    CHECK(si_io_submit(io, a, a, j.buf, 2, &err) == SI_OK, "submit: %s", err.msg);
    CHECK(si_io_reap(io, true, &t, &err) == 1 && t == 2, "reap: %s", err.msg);
    CHECK(t_mismatch(j.buf, a, a, 0x72u) < 0, "data differs");
    /* Closing with reads queued and none reaped: close waits for what is being read
     * (the buffers are ours) and drops the rest; nothing hangs or leaks (ASan). */
    uint8_t *many = t_aligned(a, 8 * a);
    unsigned queued = 0;
    while (queued < 8 && si_io_inflight(io) < si_io_queue_depth(io) &&
           si_io_submit(io, (uint64_t)queued * a, a, many + queued * a, 10 + queued, &err) == SI_OK)
        queued++;
    CHECK(queued > 0, "no read queued: %s", err.msg);
    si_io_close(io);
    free(many);
    free(j.buf);
    unlink(path);
    if (t_failures)
        return 1;
    printf("PASS %s\n", argv[1]);
    return 0;
}
