/* Buffered reads leave (almost) nothing in the page cache (argv: pread|uring|
 * uring-compat): every completed range is dropped with POSIX_FADV_DONTNEED and
 * readahead is off, so streaming a model larger than RAM cannot fill a 448 MiB memory
 * cgroup with cache. Measured with mincore over a mapping of the file. */
#include "io_test_util.h"

#include <sys/mman.h>

#define SIZE (8u * 1024 * 1024)
#define CHUNK (512u * 1024)
#define SEED 0xcac4eu

static size_t resident_pages(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    void *map = fd >= 0 ? mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = (SIZE + page - 1) / page, count = 0;
    unsigned char *vec = malloc(n);
    if (map != MAP_FAILED && vec && mincore(map, SIZE, vec) == 0)
        for (size_t i = 0; i < n; i++)
            count += vec[i] & 1;
    else
        count = (size_t)-1;
    free(vec);
    if (map != MAP_FAILED)
        munmap(map, SIZE);
    if (fd >= 0)
        close(fd);
    return count;
}

int main(int argc, char **argv)
{
    si_io_opts o = {.direct = SI_DIRECT_OFF};
    if (argc != 2 || t_parse_backend(argv[1], &o)) {
        fprintf(stderr, "usage: %s pread|pread-thread|uring|uring-compat\n", argv[0]);
        return 2;
    }
    char name[64], path[4096];
    snprintf(name, sizeof name, "io-cache-%s.bin", argv[1]);
    t_path(path, sizeof path, name);
    if (t_write_file(path, SIZE, SEED) != 0)
        return 1;
    /* Written pages are dirty; flush them so the advice below can drop them. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0 && fsync(fd) == 0, "fsync: %s", strerror(errno));
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    size_t before = resident_pages(path);
    if (before == (size_t)-1 || before > 16) {
        printf("SKIP: cannot measure the page cache here (%zu pages resident after "
               "DONTNEED)\n", before);
        unlink(path);
        return SKIP;
    }
    si_io *io = t_open_or_skip(path, &o);
    size_t a = si_io_alignment(io);
    unsigned depth = si_io_queue_depth(io);
    uint8_t *buf = t_aligned(a, (size_t)depth * CHUNK);
    si_error err = {0};
    uint64_t next = 0, t = 0, slot_off[64];
    bool busy[64] = {false};
    CHECK(depth <= 64, "depth %u", depth);
    /* Completions may come out of order: a buffer is reused only after its reap. */
    while (next < SIZE || si_io_inflight(io) > 0) {
        if (next < SIZE && si_io_inflight(io) < depth) {
            unsigned slot = 0;
            while (busy[slot])
                slot++;
            busy[slot] = true;
            slot_off[slot] = next;
            CHECK(si_io_submit(io, next, CHUNK, buf + (size_t)slot * CHUNK, slot, &err) == SI_OK,
                  "submit: %s", err.msg);
            next += CHUNK;
            continue;
        }
        int rc = si_io_reap(io, true, &t, &err);
        CHECK(rc == 1 && t < depth, "reap: %s", err.msg);
        if (rc == 1 && t < depth) {
            CHECK(t_mismatch(buf + t * CHUNK, slot_off[t], CHUNK, SEED) < 0,
                  "chunk at %llu differs", (unsigned long long)slot_off[t]);
            busy[t] = false;
        }
    }
    uint8_t row[3000];
    for (uint64_t off = 100000; off < SIZE - sizeof row; off += 700000)
        CHECK(si_io_read(io, off, sizeof row, row, &err) == SI_OK, "si_io_read: %s", err.msg);
    size_t after = resident_pages(path);
    printf("%s buffered: %zu of %u pages resident after reading %u bytes\n", si_io_backend(io),
           after, SIZE / 4096, SIZE);
    /* A few pages may be in transit; the whole file (2048 pages) must not be. */
    CHECK(after <= 64, "%zu pages left in the page cache", after);
    si_io_close(io);
    free(buf);
    unlink(path);
    if (t_failures)
        return 1;
    printf("PASS %s\n", argv[1]);
    return 0;
}
