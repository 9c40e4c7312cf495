/* The queue (argv: pread|pread-thread|uring|uring-compat): submitting beyond the queue depth or
 * with misaligned offset, length or buffer fails cleanly with SI_EINVAL and leaves
 * the reads in flight intact; a default depth of 8 applies when 0 is asked. */
#include "io_test_util.h"

int main(int argc, char **argv)
{
    si_io_opts o = {.direct = SI_DIRECT_AUTO, .queue_depth = 4};
    if (argc != 2 || t_parse_backend(argv[1], &o)) {
        fprintf(stderr, "usage: %s pread|pread-thread|uring|uring-compat\n", argv[0]);
        return 2;
    }
    char name[64], path[4096];
    snprintf(name, sizeof name, "io-queue-%s.bin", argv[1]);
    t_path(path, sizeof path, name);
    if (t_write_file(path, 256 * 1024, 0x9u) != 0)
        return 1;
    si_io *io = t_open_or_skip(path, &o);
    size_t a = si_io_alignment(io);
    CHECK(si_io_queue_depth(io) == 4, "depth %u", si_io_queue_depth(io));
    uint8_t *buf = t_aligned(a, 6 * a);
    si_error err = {0};
    for (unsigned i = 0; i < 4; i++)
        CHECK(si_io_submit(io, (uint64_t)i * a, a, buf + i * a, i, &err) == SI_OK, "submit %u: %s",
              i, err.msg);
    CHECK(si_io_inflight(io) == 4, "inflight %u", si_io_inflight(io));
    int rc = si_io_submit(io, 4 * a, a, buf + 4 * a, 4, &err);
    CHECK(rc == SI_EINVAL && strstr(err.msg, "queue full") && strstr(err.msg, path),
          "5th submit: rc %d \"%s\"", rc, err.msg);
    printf("queue full: %s\n", err.msg);
    CHECK(si_io_inflight(io) == 4, "inflight %u after refused submit", si_io_inflight(io));

    uint64_t t;
    CHECK(si_io_reap(io, true, &t, &err) == 1, "reap: %s", err.msg);
    /* One slot free now: misaligned requests are refused, not queued. */
    CHECK(si_io_submit(io, 100, a, buf + 4 * a, 9, &err) == SI_EINVAL, "unaligned offset");
    CHECK(strstr(err.msg, "aligned") != NULL, "message: %s", err.msg);
    printf("misaligned: %s\n", err.msg);
    CHECK(si_io_submit(io, a, a - 1, buf + 4 * a, 9, &err) == SI_EINVAL, "unaligned length");
    CHECK(si_io_submit(io, a, a, buf + 1, 9, &err) == SI_EINVAL, "unaligned buffer");
    CHECK(si_io_submit(io, a, 0, buf + 4 * a, 9, &err) == SI_EINVAL, "empty read");
    CHECK(si_io_submit(io, a, a, NULL, 9, &err) == SI_EINVAL, "no buffer");
    CHECK(si_io_inflight(io) == 3, "inflight %u", si_io_inflight(io));
    CHECK(si_io_submit(io, 4 * a, a, buf + 4 * a, 4, &err) == SI_OK, "submit: %s", err.msg);
    unsigned seen = 1u << t;
    while (si_io_inflight(io) > 0) {
        rc = si_io_reap(io, true, &t, &err);
        CHECK(rc == 1 && t < 5, "reap rc %d tag %llu: %s", rc, (unsigned long long)t, err.msg);
        if (rc == 1 && t < 5)
            seen |= 1u << t;
    }
    CHECK(seen == 0x1f, "completions seen 0x%x", seen);
    CHECK(t_mismatch(buf, 0, 5 * a, 0x9u) < 0, "data differs");
    CHECK(si_io_reap(io, false, &t, &err) == 0, "reap with nothing in flight");
    si_io_close(io);

    o.queue_depth = 0;
    io = t_open_or_skip(path, &o);
    CHECK(si_io_queue_depth(io) == 8, "default depth %u", si_io_queue_depth(io));
    si_io_close(io);
    free(buf);
    unlink(path);
    if (t_failures)
        return 1;
    printf("PASS %s\n", argv[1]);
    return 0;
}
