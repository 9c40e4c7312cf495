/* The O_DIRECT fallback. direct=auto on a file system that refuses O_DIRECT works
 * buffered and says why in si_io_note; direct=on fails with a clear error. tmpfs
 * (/dev/shm) refused O_DIRECT before Linux 6.6; on newer kernels it accepts it, so
 * both refusals (at open, as tmpfs did, and at the first read, as SD cards do) are
 * also produced with the test-only fault injection of src/io, for every backend. */
#include "io_test_util.h"

#include "io_internal.h"

#include <sys/stat.h>

#define SIZE (1024u * 1024 + 300)
#define SEED 0xd1ec7u

/* A few reads in flight at once, then an unaligned synchronous one; all verified. */
static void read_and_verify(si_io *io)
{
    size_t a = si_io_alignment(io);
    unsigned n = si_io_queue_depth(io);
    uint8_t *bufs[16];
    if (n > 16)
        n = 16;
    si_error err = {0};
    for (unsigned i = 0; i < n; i++) {
        bufs[i] = t_aligned(a, 4 * a);
        int rc = si_io_submit(io, (uint64_t)i * 4 * a, 4 * a, bufs[i], i, &err);
        CHECK(rc == SI_OK, "submit %u: %s", i, err.msg);
    }
    while (si_io_inflight(io) > 0) {
        uint64_t t = 0;
        int rc = si_io_reap(io, true, &t, &err);
        CHECK(rc == 1, "reap: %s", err.msg);
        if (rc == 1)
            CHECK(t_mismatch(bufs[t], t * 4 * a, 4 * a, SEED) < 0, "read %llu differs",
                  (unsigned long long)t);
    }
    uint8_t small[777];
    CHECK(si_io_read(io, 12345, sizeof small, small, &err) == SI_OK, "si_io_read: %s", err.msg);
    CHECK(t_mismatch(small, 12345, sizeof small, SEED) < 0, "si_io_read differs");
    for (unsigned i = 0; i < n; i++)
        free(bufs[i]);
}

static void expect_note(si_io *io, const char *word)
{
    CHECK(!si_io_direct_active(io), "O_DIRECT still active after a refusal");
    CHECK(strstr(si_io_note(io), "O_DIRECT") && strstr(si_io_note(io), word),
          "note does not say why: \"%s\"", si_io_note(io));
}

static void tmpfs_case(void)
{
    struct stat st;
    if (stat("/dev/shm", &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("no /dev/shm: tmpfs case not run\n");
        return;
    }
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/si-io-direct-%d.bin", (int)getpid());
    if (t_write_file(path, SIZE, SEED) != 0) {
        printf("cannot write %s: tmpfs case not run\n", path);
        return;
    }
    si_io_opts o = {.kind = SI_IO_PREAD, .direct = SI_DIRECT_AUTO};
    si_io *io = t_open_or_skip(path, &o);
    bool refused = !si_io_direct_active(io);
    if (refused)
        expect_note(io, "file system");
    else
        printf("tmpfs accepts O_DIRECT on this kernel (Linux 6.6+); the refusal is exercised "
               "by fault injection below\n");
    read_and_verify(io);
    si_io_close(io);

    o.direct = SI_DIRECT_ON;
    si_error err = {0};
    int rc = si_io_open(&io, path, &o, &err);
    if (refused) {
        CHECK(rc == SI_EIO && strstr(err.msg, path) && strstr(err.msg, "O_DIRECT"),
              "direct=on on tmpfs: rc %d \"%s\"", rc, err.msg);
        printf("direct=on on tmpfs: %s\n", err.msg);
    } else {
        CHECK(rc == SI_OK, "direct=on: %s", err.msg);
        si_io_close(io);
    }
    unlink(path);
}

static void open_refusal(const char *path)
{
    si_io_opts o = {.kind = SI_IO_PREAD, .direct = SI_DIRECT_AUTO};
    si_io_test_inject(SI_IO_FAULT_DIRECT_OPEN_EINVAL);
    si_io *io = t_open_or_skip(path, &o);
    expect_note(io, "file system");
    read_and_verify(io);
    si_io_close(io);

    o.direct = SI_DIRECT_ON;
    si_io_test_inject(SI_IO_FAULT_DIRECT_OPEN_EINVAL);
    si_error err = {0};
    int rc = si_io_open(&io, path, &o, &err);
    CHECK(rc == SI_EIO && strstr(err.msg, path) && strstr(err.msg, "O_DIRECT"),
          "direct=on refused at open: rc %d \"%s\"", rc, err.msg);
    printf("direct=on refused at open: %s\n", err.msg);
    si_io_test_inject(SI_IO_FAULT_NONE);
}

/* Returns false when the backend cannot run here (io_uring unavailable). */
static bool read_refusal(const char *path, const char *backend)
{
    si_io_opts o = {.direct = SI_DIRECT_AUTO};
    t_parse_backend(backend, &o);
    si_io *io = NULL;
    si_error err = {0};
    int rc = si_io_open(&io, path, &o, &err);
    if (rc == SI_ENOSYS) {
        printf("%s: not available here (%s)\n", backend, err.msg);
        return false;
    }
    CHECK(rc == SI_OK, "%s: open: %s", backend, err.msg);
    if (rc != SI_OK)
        return true;
    if (!si_io_direct_active(io)) {
        printf("%s: build directory has no O_DIRECT (%s); read refusal not testable\n", backend,
               si_io_note(io));
        si_io_close(io);
        return true;
    }
    /* Once: only the first read is refused, the others in flight complete directly. */
    si_io_test_inject(SI_IO_FAULT_DIRECT_READ_EINVAL);
    read_and_verify(io);
    expect_note(io, "first read");
    printf("%s: after a refused first read: %s\n", backend, si_io_note(io));
    si_io_close(io);

    /* Every O_DIRECT read refused (SD card): reads in flight on the old descriptor
     * are re-issued on the buffered one. */
    CHECK(si_io_open(&io, path, &o, &err) == SI_OK, "%s: open: %s", backend, err.msg);
    si_io_test_inject(SI_IO_FAULT_DIRECT_READ_EINVAL_ALL);
    read_and_verify(io);
    si_io_test_inject(SI_IO_FAULT_NONE);
    expect_note(io, "first read");
    si_io_close(io);

    /* The first read being si_io_read (embedding rows) falls back the same way. */
    CHECK(si_io_open(&io, path, &o, &err) == SI_OK, "%s: open: %s", backend, err.msg);
    si_io_test_inject(SI_IO_FAULT_DIRECT_READ_EINVAL);
    uint8_t small[100];
    CHECK(si_io_read(io, 5000, sizeof small, small, &err) == SI_OK, "si_io_read: %s", err.msg);
    CHECK(t_mismatch(small, 5000, sizeof small, SEED) < 0, "si_io_read differs");
    expect_note(io, "first read");
    si_io_close(io);

    /* direct=on: the refused read is an error at reap naming path, offset and O_DIRECT. */
    o.direct = SI_DIRECT_ON;
    CHECK(si_io_open(&io, path, &o, &err) == SI_OK, "%s: open: %s", backend, err.msg);
    size_t a = si_io_alignment(io);
    uint8_t *buf = t_aligned(a, a);
    si_io_test_inject(SI_IO_FAULT_DIRECT_READ_EINVAL);
    CHECK(si_io_submit(io, a, a, buf, 5, &err) == SI_OK, "submit: %s", err.msg);
    uint64_t t = 0;
    rc = si_io_reap(io, true, &t, &err);
    char want[64];
    snprintf(want, sizeof want, "offset %zu", a);
    CHECK(rc == SI_EIO && t == 5 && strstr(err.msg, path) && strstr(err.msg, want) &&
              strstr(err.msg, "O_DIRECT"),
          "%s direct=on refused read: rc %d \"%s\"", backend, rc, err.msg);
    printf("%s direct=on refused read: %s\n", backend, err.msg);
    CHECK(si_io_direct_active(io), "direct=on switched to buffered");
    si_io_test_inject(SI_IO_FAULT_NONE);
    free(buf);
    si_io_close(io);
    return true;
}

int main(void)
{
    tmpfs_case();
    char path[4096];
    t_path(path, sizeof path, "io-direct.bin");
    if (t_write_file(path, SIZE, SEED) != 0)
        return 1;
    open_refusal(path);
    read_refusal(path, "pread");
    read_refusal(path, "uring");
    read_refusal(path, "uring-compat");
    unlink(path);
    if (t_failures)
        return 1;
    printf("PASS\n");
    return 0;
}
