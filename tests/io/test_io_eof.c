/* Reads past the end of the file (argv: pread|pread-thread|uring|uring-compat) fail at reap with
 * an error naming the path and offset, never hang or crash: a range partly beyond
 * the end, one wholly beyond, si_io_read beyond the end, and a file truncated after
 * open while good and bad reads are in flight together. Runs with direct=auto (O_DIRECT
 * where the file system has it) and direct=off. */
#include "io_test_util.h"

#define SEED 0xe0fu

/* Submit one read and expect its reap to fail with path and offset in the message. */
static void expect_fail(si_io *io, const char *path, uint64_t off, size_t len, void *buf)
{
    si_error err = {0};
    int rc = si_io_submit(io, off, len, buf, 99, &err);
    CHECK(rc == SI_OK, "submit past end (offset %llu) should queue: %s", (unsigned long long)off,
          err.msg);
    if (rc != SI_OK)
        return;
    uint64_t tag = 0;
    char want[64], wlen[64];
    snprintf(want, sizeof want, "offset %llu", (unsigned long long)off);
    snprintf(wlen, sizeof wlen, "%zu bytes", len);
    rc = si_io_reap(io, true, &tag, &err);
    CHECK(rc < 0, "read at offset %llu past the end succeeded", (unsigned long long)off);
    CHECK(rc == SI_EIO, "status %s", si_status_name(rc));
    CHECK(tag == 99, "failed read has tag %llu", (unsigned long long)tag);
    CHECK(strstr(err.msg, path) && strstr(err.msg, want) && strstr(err.msg, wlen),
          "unclear message: %s", err.msg);
    CHECK(si_io_inflight(io) == 0, "failed read still counted in flight");
    printf("expected error: %s\n", err.msg);
}

static void run(si_io_opts o, const char *tag)
{
    char name[64], path[4096];
    snprintf(name, sizeof name, "io-eof-%s.bin", tag);
    t_path(path, sizeof path, name);
    const uint64_t size = 3 * 4096 + 100;
    if (t_write_file(path, size, SEED) != 0)
        exit(1);
    si_io *io = t_open_or_skip(path, &o);
    size_t a = si_io_alignment(io);
    uint8_t *buf = t_aligned(a, 4 * a);
    uint8_t *buf2 = t_aligned(a, 4 * a);

    expect_fail(io, path, 2 * a, 2 * a, buf); /* ends 100 bytes in, rest beyond */
    expect_fail(io, path, 4 * a, a, buf);     /* wholly beyond */

    si_error err = {0};
    int rc = si_io_read(io, size - 10, 20, buf, &err);
    CHECK(rc == SI_EIO && strstr(err.msg, path), "si_io_read past the end: rc %d %s", rc,
          err.msg);
    rc = si_io_read(io, size - 10, 10, buf, &err);
    CHECK(rc == SI_OK, "si_io_read up to the end: %s", err.msg);

    /* Truncate under the open handle: one good read and one now beyond the end. */
    CHECK(truncate(path, (off_t)a) == 0, "truncate: %s", strerror(errno));
    CHECK(si_io_submit(io, 0, a, buf, 1, &err) == SI_OK, "submit: %s", err.msg);
    CHECK(si_io_submit(io, a, 2 * a, buf2, 2, &err) == SI_OK, "submit: %s", err.msg);
    int ok = 0, bad = 0;
    for (int i = 0; i < 2; i++) {
        uint64_t t = 0;
        rc = si_io_reap(io, true, &t, &err);
        if (rc == 1 && t == 1 && t_mismatch(buf, 0, a, SEED) < 0) {
            ok++;
        } else if (rc < 0 && t == 2) {
            char want[64];
            snprintf(want, sizeof want, "offset %zu", a);
            CHECK(strstr(err.msg, path) && strstr(err.msg, want), "unclear message: %s", err.msg);
            printf("expected error after truncate: %s\n", err.msg);
            bad++;
        } else {
            CHECK(0, "unexpected reap rc %d tag %llu: %s", rc, (unsigned long long)t, err.msg);
        }
    }
    CHECK(ok == 1 && bad == 1, "after truncate: %d good, %d failed", ok, bad);
    t_drain(io);
    si_io_close(io);
    free(buf);
    free(buf2);
    unlink(path);
}

int main(int argc, char **argv)
{
    si_io_opts o = {0};
    if (argc != 2 || t_parse_backend(argv[1], &o)) {
        fprintf(stderr, "usage: %s pread|pread-thread|uring|uring-compat\n", argv[0]);
        return 2;
    }
    char tag[64];
    o.direct = SI_DIRECT_AUTO;
    snprintf(tag, sizeof tag, "%s-auto", argv[1]);
    run(o, tag);
    o.direct = SI_DIRECT_OFF;
    snprintf(tag, sizeof tag, "%s-off", argv[1]);
    run(o, tag);
    if (t_failures)
        return 1;
    printf("PASS %s\n", argv[1]);
    return 0;
}
