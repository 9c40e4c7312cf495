/* Helpers for the pack tests: run a command line (output to files), compare files,
 * a scratch directory under the build tree. */
#ifndef SI_PACK_TEST_H
#define SI_PACK_TEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../test_util.h"

/* Run a shell command built from fmt; returns its exit status (or -1). */
__attribute__((format(printf, 1, 2))) static int sh(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc == -1)
        return -1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + (WIFSIGNALED(rc) ? WTERMSIG(rc) : 0);
}

/* A fresh scratch directory for this test program. */
static inline const char *scratch_dir(const char *name)
{
    static char dir[4096];
    const char *b = getenv("SI_BUILD_ROOT");
    snprintf(dir, sizeof dir, "%s/pack-test-%s", b ? b : "/tmp", name);
    sh("rm -rf '%s' && mkdir -p '%s'", dir, dir);
    return dir;
}

static inline bool files_equal(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char *x = test_read_file(a, &na), *y = test_read_file(b, &nb);
    bool eq = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return eq;
}

static inline long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static inline bool file_contains(const char *path, const char *needle)
{
    char *s = test_read_file(path, NULL);
    bool r = s && strstr(s, needle) != NULL;
    free(s);
    return r;
}

#endif
