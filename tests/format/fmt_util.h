/* Helpers for the format tests: temp files, a byte builder for hand-made (hostile)
 * GGUF images, and checks on si_gguf_open results. Builds on tests/test_util.h. */
#ifndef SI_FMT_UTIL_H
#define SI_FMT_UTIL_H

#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "streaminfer/gguf.h"
#include "../test_util.h"

/* A per-process scratch directory (removed by the caller with fmt_rmdir). */
static inline const char *fmt_tmpdir(void)
{
    static char dir[512];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/si-fmt-XXXXXX", base && *base ? base : "/tmp");
        CHECKF(mkdtemp(dir) != NULL, "mkdtemp %s failed", dir);
    }
    return dir;
}

/* Path of `name` in the scratch directory; the same name always gets the same
 * (static) buffer, so up to 64 distinct names stay valid together. */
static inline char *fmt_path(const char *name)
{
    static char names[64][64], paths[64][640];
    static int n;
    int k;
    for (k = 0; k < n; k++)
        if (!strcmp(names[k], name))
            return paths[k];
    CHECK(n < 64 && strlen(name) < 64);
    k = n++;
    snprintf(names[k], sizeof names[k], "%s", name);
    snprintf(paths[k], sizeof paths[k], "%s/%s", fmt_tmpdir(), name);
    return paths[k];
}

static inline void fmt_rmdir(void)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fmt_tmpdir());
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", fmt_tmpdir());
}

static inline void fmt_write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECKF(f != NULL, "cannot create %s", path);
    CHECK(fwrite(p, 1, n, f) == n);
    CHECK(fclose(f) == 0);
}

/* Growing byte image. */
typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

static inline void b_put(bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        CHECK(b->p != NULL);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}
static inline void b_u8(bytes *b, uint8_t v) { b_put(b, &v, 1); }
static inline void b_u32(bytes *b, uint32_t v) { b_put(b, &v, 4); }
static inline void b_u64(bytes *b, uint64_t v) { b_put(b, &v, 8); }
static inline void b_str(bytes *b, const char *s)
{
    b_u64(b, strlen(s));
    b_put(b, s, strlen(s));
}
static inline void b_pad(bytes *b, size_t align)
{
    while (b->len % align)
        b_u8(b, 0);
}
static inline void b_header(bytes *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    b_u32(b, SI_GGUF_MAGIC);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
/* A tensor info with n_dims dims. */
static inline void b_tensor(bytes *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                            uint32_t type, uint64_t offset)
{
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        b_u64(b, ne[d]);
    b_u32(b, type);
    b_u64(b, offset);
}

/* Open `path` and require failure whose message names the path and contains `want`
 * (when non-NULL). */
static inline void fmt_expect_fail(const char *path, const char *want, const char *label)
{
    si_gguf *g = NULL;
    si_error err = {0};
    int rc = si_gguf_open(&g, path, &err);
    CHECKF(rc < 0 && g == NULL, "%s: open succeeded, expected failure", label);
    CHECKF(strstr(err.msg, path) != NULL, "%s: message lacks the path: %s", label, err.msg);
    CHECKF(!want || strstr(err.msg, want) != NULL, "%s: message lacks '%s': %s", label, want, err.msg);
}

static inline si_gguf *fmt_open_ok(const char *path, const char *label)
{
    si_gguf *g = NULL;
    si_error err = {0};
    int rc = si_gguf_open(&g, path, &err);
    CHECKF(rc == 0 && g != NULL, "%s: open failed: %s", label, err.msg);
    return g;
}

static inline const char *fmt_fixtures(void)
{
    const char *f = getenv("SI_FIXTURES");
    return f && *f ? f : "../shared/fixtures";
}

static inline bool fmt_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Write the first n bytes of src (in memory) to path. */
static inline void fmt_truncated_copy(const char *path, const uint8_t *src, size_t n)
{
    fmt_write_file(path, src, n);
}

/* End of tensor info i (the byte after its offset field). */
static inline uint64_t fmt_info_end(const si_gguf_tensor *t)
{
    return t->info_offset + 8 + strlen(t->name) + 4 + 8ull * t->n_dims + 4 + 8;
}

#endif
