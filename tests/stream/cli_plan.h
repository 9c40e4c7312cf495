/* Running stream-infer (and mkmodel) from the plan's end-to-end tests: the exit
 * status, stderr, and numbers from --report-json. */
#ifndef SI_CLI_PLAN_H
#define SI_CLI_PLAN_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../test_util.h"

static char cli_dir[4096];  /* $SI_BUILD_ROOT/test-models */
static char cli_err[4200];  /* stderr of the last run */
static char cli_json[4200]; /* its --report-json */

static inline void cli_init(const char *tag)
{
    const char *root = getenv("SI_BUILD_ROOT") ? getenv("SI_BUILD_ROOT") : ".";
    snprintf(cli_dir, sizeof cli_dir, "%s/test-models", root);
    snprintf(cli_err, sizeof cli_err, "%s/%s.err", cli_dir, tag);
    snprintf(cli_json, sizeof cli_json, "%s/%s.json", cli_dir, tag);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", cli_dir);
    CHECK(system(cmd) == 0);
}

/* mkmodel -o DIR/name ARGS; path receives DIR/name. */
static inline void cli_mkmodel(const char *mkmodel, const char *name, const char *args, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", cli_dir, name);
    char cmd[12288];
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' %s > /dev/null 2>&1", mkmodel, path, args);
    CHECKF(system(cmd) == 0, "mkmodel failed: %s", cmd);
}

/* stream-infer -m model -q ARGS --report-json; the exit status (128+signal). */
static inline int cli_run(const char *si, const char *model, const char *args)
{
    char cmd[24576];
    remove(cli_json);
    snprintf(cmd, sizeof cmd, "timeout 120 '%s' -m '%s' -q %s --report-json '%s' > /dev/null 2> '%s'", si, model,
             args, cli_json, cli_err);
    int st = system(cmd);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

/* A whole file as a string ("" when unreadable); free it. */
static inline char *cli_text(const char *path)
{
    size_t n = 0;
    char *s = test_read_file(path, &n);
    char *z = s ? realloc(s, n + 1) : malloc(1);
    CHECK(z);
    z[s ? n : 0] = 0;
    return z;
}

/* "key": NUMBER from the last report; fails when absent. */
static inline uint64_t cli_json_u64(const char *key)
{
    char *j = cli_text(cli_json), pat[128];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(j, pat);
    CHECKF(p, "the report has no %s: %s", key, j);
    uint64_t v = strtoull(p + strlen(pat), NULL, 10);
    free(j);
    return v;
}

/* "key": "STRING" from the last report, unescaped as far as this test needs. */
static inline void cli_json_str(const char *key, char *out, size_t len)
{
    char *j = cli_text(cli_json), pat[128];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    const char *p = strstr(j, pat);
    CHECKF(p, "the report has no %s: %s", key, j);
    p += strlen(pat);
    size_t n = 0;
    for (; *p && *p != '"' && n + 1 < len; p++)
        out[n++] = *p == '\\' && p[1] ? *++p : *p;
    out[n] = 0;
    free(j);
}

#endif
