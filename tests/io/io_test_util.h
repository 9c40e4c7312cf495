/* Helpers shared by the tests of src/io: test files with known content in the build
 * directory (not /tmp, which may be tmpfs and refuse O_DIRECT), aligned buffers,
 * option parsing, and failure reporting. Header-only; each test is one program. */
#ifndef SI_IO_TEST_UTIL_H
#define SI_IO_TEST_UTIL_H

#include "streaminfer/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SKIP 77

static int t_failures;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
            t_failures++;                                                   \
        }                                                                   \
    } while (0)

/* Content byte at position pos: cheap hash, so any range can be checked. */
static inline uint8_t t_byte(uint64_t pos, uint32_t seed)
{
    uint64_t x = (pos >> 3) * 0x9E3779B97F4A7C15ull + seed;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return (uint8_t)(x >> (8 * (pos & 7)));
}

static inline uint64_t t_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* dir/pid-name into out: SI_BUILD_ROOT when set, else the current directory. The
 * pid keeps parallel runs (meson test --repeat) off each other's files. */
static inline void t_path(char *out, size_t n, const char *name)
{
    const char *dir = getenv("SI_BUILD_ROOT");
    snprintf(out, n, "%s/%d-%s", dir && *dir ? dir : ".", (int)getpid(), name);
}

static inline int t_write_file(const char *path, uint64_t size, uint32_t seed)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t buf[8192];
    for (uint64_t pos = 0; pos < size;) {
        size_t n = size - pos < sizeof buf ? (size_t)(size - pos) : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = t_byte(pos + i, seed);
        if (fwrite(buf, 1, n, f) != n) {
            fclose(f);
            return -1;
        }
        pos += n;
    }
    return fclose(f);
}

/* Index of the first byte of buf that differs from the file content, or -1. */
static inline long t_mismatch(const uint8_t *buf, uint64_t off, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != t_byte(off + i, seed))
            return (long)i;
    return -1;
}

static inline void *t_aligned(size_t align, size_t len)
{
    void *p = NULL;
    if (posix_memalign(&p, align, len) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static inline const char *t_kind_name(si_io_kind k)
{
    return k == SI_IO_PREAD ? "pread" : k == SI_IO_URING ? "uring" : "auto";
}

static inline const char *t_direct_name(si_io_direct d)
{
    return d == SI_DIRECT_OFF ? "off" : d == SI_DIRECT_ON ? "on" : "auto";
}

/* "pread", "uring" or "uring-compat" (io_uring limited to Linux 5.10 features). */
static inline int t_parse_backend(const char *name, si_io_opts *o)
{
    if (strcmp(name, "pread") == 0) {
        o->kind = SI_IO_PREAD;
    } else if (strcmp(name, "pread-thread") == 0) { /* reads on the handle's reader thread */
        o->kind = SI_IO_PREAD;
        o->reader_thread = true;
    } else if (strcmp(name, "uring") == 0) {
        o->kind = SI_IO_URING;
    } else if (strcmp(name, "uring-compat") == 0) {
        o->kind = SI_IO_URING;
        o->compat_5_10 = true;
    } else {
        fprintf(stderr, "unknown backend %s\n", name);
        return -1;
    }
    return 0;
}

static inline int t_parse_direct(const char *name, si_io_opts *o)
{
    if (strcmp(name, "off") == 0)
        o->direct = SI_DIRECT_OFF;
    else if (strcmp(name, "auto") == 0)
        o->direct = SI_DIRECT_AUTO;
    else if (strcmp(name, "on") == 0)
        o->direct = SI_DIRECT_ON;
    else {
        fprintf(stderr, "unknown direct mode %s\n", name);
        return -1;
    }
    return 0;
}

/* Open, or exit 77 when an io_uring backend cannot run here (and only then). */
static inline si_io *t_open_or_skip(const char *path, const si_io_opts *o)
{
    si_io *io = NULL;
    si_error err = {0};
    int rc = si_io_open(&io, path, o, &err);
    if (rc == SI_ENOSYS && o->kind == SI_IO_URING) {
        printf("SKIP: io_uring cannot run here: %s\n", err.msg);
        if (getenv("SI_EMULATED")) /* tools/qemu-rvv.sh */
            printf("(under emulation, %s: qemu-user implements no io_uring system calls, so the riscv64 "
                   "build leaves io_uring out; the native run tests it)\n", getenv("SI_EMULATED"));
        unlink(path);
        exit(SKIP);
    }
    if (rc != SI_OK) {
        fprintf(stderr, "FAIL: open %s (%s, direct %s): %s (%s)\n", path, t_kind_name(o->kind),
                t_direct_name(o->direct), err.msg, si_status_name(rc));
        unlink(path);
        exit(1);
    }
    printf("opened %s: backend %s [%s], O_DIRECT %s, alignment %zu, note \"%s\"\n", path,
           si_io_backend(io), si_io_detail(io), si_io_direct_active(io) ? "on" : "off",
           si_io_alignment(io), si_io_note(io));
    return io;
}

/* Drain everything in flight, ignoring results (cleanup after a failed check). */
static inline void t_drain(si_io *io)
{
    uint64_t tag;
    si_error e;
    while (si_io_inflight(io) > 0)
        (void)si_io_reap(io, true, &tag, &e);
}

#endif
