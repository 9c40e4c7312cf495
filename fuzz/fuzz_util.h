/* Shared by the libFuzzer harnesses: the input as a file (memfd, no disk writes) and
 * the fixtures folder. */
#ifndef STREAMINFER_FUZZ_UTIL_H
#define STREAMINFER_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A memfd holding data; path receives "/proc/self/fd/N". Returns the fd or -1. */
static inline int fz_memfile(const uint8_t *data, size_t size, char *path, size_t path_n)
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    snprintf(path, path_n, "/proc/self/fd/%d", fd);
    return fd;
}

/* A fixture's path: $SI_FIXTURES/rel, else the one configured at build time. */
static inline const char *fz_fixture(const char *rel)
{
    static char buf[4096];
    const char *dir = getenv("SI_FIXTURES");
    if (!dir)
        dir = SI_FUZZ_FIXTURES;
    snprintf(buf, sizeof buf, "%s/%s", dir, rel);
    return buf;
}

#endif
