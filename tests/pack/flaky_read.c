/* LD_PRELOAD shim for test_pack_reread: a storage device that returns a bad byte a few
 * times. The first SI_FLAKY_TIMES reads (pread) covering file offset SI_FLAKY_OFFSET of
 * a file whose name ends in SI_FLAKY_SUFFIX come back with that byte flipped. */
#undef _FILE_OFFSET_BITS /* define pread and pread64 separately (64-bit hosts: the same off_t) */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int times_done;


static int is_target(int fd)
{
    const char *suffix = getenv("SI_FLAKY_SUFFIX");
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (!suffix || n <= 0)
        return 0;
    path[n] = 0;
    size_t ls = strlen(suffix);
    return (size_t)n >= ls && strcmp(path + n - ls, suffix) == 0;
}

static ssize_t flaky(int fd, void *buf, ssize_t got, off_t off)
{
    const char *o = getenv("SI_FLAKY_OFFSET"), *t = getenv("SI_FLAKY_TIMES");
    if (!o || !t || got <= 0)
        return got;
    long long at = atoll(o);
    if (at >= off && at < off + got && times_done < atoi(t) && is_target(fd)) {
        ((unsigned char *)buf)[at - off] ^= 0x20;
        times_done++;
    }
    return got;
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
    static ssize_t (*real)(int, void *, size_t, off_t);
    if (!real)
        real = (ssize_t(*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread64");
    return flaky(fd, buf, real(fd, buf, n, off), off);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    return pread64(fd, buf, n, off);
}
