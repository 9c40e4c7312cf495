/* The stream scheduler over several files (a striped pack's members): each file has
 * its own queue, so a file whose queue is full does not hold back another's reads;
 * every extent arrives with its own file's bytes, pass after pass; each file's bytes
 * are counted; an extent naming a file that does not exist is refused; a file that
 * fails mid-pass (truncated after open) is an error naming it.
 * usage: test_sched_files auto|pread */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test_util.h"
#include "streaminfer/clock.h"
#include "streaminfer/sched.h"

#define EXT 262144u /* 256 KiB per extent */
#define N_A 8       /* extents on file 0, first in the pass */
#define N_B 4       /* then extents on file 1 */

static uint8_t pattern(int file, uint64_t off) { return (uint8_t)(off * 7 + (off >> 12) + 101 * (unsigned)file); }

static void make_file(const char *path, int file, uint64_t size)
{
    uint8_t *b = malloc(size);
    CHECK(b);
    for (uint64_t i = 0; i < size; i++)
        b[i] = pattern(file, i);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, size, f) == size && fclose(f) == 0);
    free(b);
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "auto") && strcmp(argv[1], "pread"))) {
        fprintf(stderr, "usage: %s auto|pread\n", argv[0]);
        return 2;
    }
    const char *root = getenv("SI_BUILD_ROOT");
    char dir[4096], pa[4200], pb[4200];
    snprintf(dir, sizeof dir, "%s/sched-files-%s", root ? root : "/tmp", argv[1]);
    snprintf(pa, sizeof pa, "%s/a.bin", dir);
    snprintf(pb, sizeof pb, "%s/b.bin", dir);
    char cmd[8500];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    CHECK(system(cmd) == 0);
    make_file(pa, 0, (uint64_t)N_A * EXT);
    make_file(pb, 1, (uint64_t)N_B * EXT);

    si_io_opts io = {.kind = strcmp(argv[1], "pread") ? SI_IO_AUTO : SI_IO_PREAD, .queue_depth = 2};
    const char *paths[2] = {pa, pb};
    si_extent ext[N_A + N_B];
    memset(ext, 0, sizeof ext);
    for (int i = 0; i < N_A + N_B; i++) {
        ext[i].member = i < N_A ? 0 : 1;
        ext[i].offset = (uint64_t)(i < N_A ? i : i - N_A) * EXT;
        ext[i].size = EXT;
        snprintf(ext[i].label, sizeof ext[i].label, "extent %d", i);
    }
    si_sched_opts so = {.ring_bytes = 16u << 20, .chunk_bytes = EXT};
    si_error e = {0};
    si_sched *s;

    /* An extent of a third file that is not there. */
    CHECKF(si_sched_open_files(&s, paths, 2, &io, &e) == SI_OK, "%s", e.msg);
    ext[3].member = 2;
    CHECK(si_sched_set_pass(s, ext, N_A + N_B, &so, &e) == SI_EINVAL);
    CHECKF(strstr(e.msg, "extent 3"), "%s", e.msg);
    ext[3].member = 0;
    si_sched_free(s);

    CHECKF(si_sched_open_files(&s, paths, 2, &io, &e) == SI_OK, "%s", e.msg);
    CHECK(si_sched_n_files(s) == 2);
    si_sched_io info;
    si_sched_io_info(s, &info);
    /* pread: each member reads on its own thread, or one device would wait for the other */
    CHECKF(info.reader_threads == !strcmp(info.backend, "pread"), "%s, reader threads %d", info.backend,
           info.reader_threads);
    CHECKF(si_sched_set_pass(s, ext, N_A + N_B, &so, &e) == SI_OK, "%s", e.msg);
    double in_passes = 0; /* the passes' wall time */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) /* the second pass's first reads are in flight (another_follows): busy, but between passes */
            usleep(100 * 1000);
        double t0 = si_now_s();
        CHECKF(si_sched_begin_pass(s, pass == 0, &e) == SI_OK, "%s", e.msg);
        if (pass == 0) {
            /* File 0's queue (depth 2) is full with its first extents; file 1's extents
             * come after 8 of file 0's, and must be in flight already. */
            si_sched_file_stats fs;
            si_sched_get_file_stats(s, 1, &fs);
            CHECKF(fs.reads >= 1, "file 1 has %llu reads issued while file 0's queue is full: held back",
                   (unsigned long long)fs.reads);
            si_sched_get_file_stats(s, 0, &fs);
            CHECK(fs.reads >= 2);
        }
        for (int i = 0; i < N_A + N_B; i++) {
            const uint8_t *d;
            CHECKF(si_sched_acquire(s, (size_t)i, &d, &e) == SI_OK, "%s", e.msg);
            int file = i < N_A ? 0 : 1;
            for (uint64_t k = 0; k < EXT; k += 997)
                CHECKF(d[k] == pattern(file, ext[i].offset + k), "pass %d extent %d byte %llu: wrong data", pass, i,
                       (unsigned long long)k);
            CHECKF(si_sched_release(s, (size_t)i, &e) == SI_OK, "%s", e.msg);
        }
        CHECKF(si_sched_end_pass(s, &e) == SI_OK, "%s", e.msg);
        in_passes += si_now_s() - t0;
    }
    si_sched_file_stats f0, f1;
    si_sched_get_file_stats(s, 0, &f0);
    si_sched_get_file_stats(s, 1, &f1);
    CHECKF(f0.bytes_read == 2ull * N_A * EXT && f1.bytes_read == 2ull * N_B * EXT,
           "bytes per file %llu / %llu, expected %llu / %llu", (unsigned long long)f0.bytes_read,
           (unsigned long long)f1.bytes_read, 2ull * N_A * EXT, 2ull * N_B * EXT);
    CHECK(strcmp(f1.path, pb) == 0 && f0.busy_s > 0 && f1.busy_s > 0);
    /* Busy inside the passes: never more than their time, and the pause between them,
     * with reads in flight, counted in busy_s only. */
    CHECKF(f0.busy_pass_s > 0 && f0.busy_pass_s <= in_passes && f1.busy_pass_s > 0 && f1.busy_pass_s <= in_passes,
           "busy in passes %.4f / %.4f s of %.4f s", f0.busy_pass_s, f1.busy_pass_s, in_passes);
    CHECKF(f0.busy_s + f1.busy_s - f0.busy_pass_s - f1.busy_pass_s >= 0.09,
           "busy %.4f + %.4f s, in passes %.4f + %.4f s: the pause between passes not told apart", f0.busy_s, f1.busy_s,
           f0.busy_pass_s, f1.busy_pass_s);
    si_sched_free(s);

    /* File 1 shrinks after open: the pass fails naming it. */
    CHECKF(si_sched_open_files(&s, paths, 2, &io, &e) == SI_OK, "%s", e.msg);
    CHECKF(si_sched_set_pass(s, ext, N_A + N_B, &so, &e) == SI_OK, "%s", e.msg);
    CHECK(truncate(pb, EXT) == 0);
    int rc = si_sched_begin_pass(s, false, &e);
    for (int i = 0; rc == SI_OK && i < N_A + N_B; i++) {
        const uint8_t *d;
        rc = si_sched_acquire(s, (size_t)i, &d, &e);
        if (rc == SI_OK)
            rc = si_sched_release(s, (size_t)i, &e);
    }
    CHECKF(rc < 0 && strstr(e.msg, pb), "a truncated file: rc %d, message '%s' does not name %s", rc, e.msg, pb);
    printf("failure mid-pass: %s\n", e.msg);
    si_sched_abort_pass(s);
    si_sched_free(s);
    printf("two files, %s: both queues busy at once, data and byte counts right, failures named\n", argv[1]);
    return 0;
}
