/* tools/tokenize reproduces every case of every .inp/.out fixture pair exactly.
 * argv[1]: the tokenize executable. Reports the first differing case with its text. */
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include "tok_test.h"

extern char **environ;

/* Run the tool with its output in a temp file; returns the output. */
static char *run_tool(const char *exe, const char *const *args, size_t *len)
{
    char tmp[] = "/tmp/si_tok_cases_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) {
        perror("mkstemp");
        exit(1);
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    const char *argv[16] = {exe};
    int k = 1;
    for (; args[k - 1]; k++)
        argv[k] = args[k - 1];
    argv[k] = NULL;
    pid_t pid;
    if (posix_spawn(&pid, exe, &fa, NULL, (char *const *)argv, environ) != 0) {
        fprintf(stderr, "cannot run %s\n", exe);
        exit(1);
    }
    int st;
    waitpid(pid, &st, 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s failed (status %d)\n", exe, st);
        exit(1);
    }
    char *out = tt_read(tmp, len);
    unlink(tmp);
    return out;
}

static void check_pair(const char *exe, const char *name, const char *vocab, bool bos_special)
{
    char inp_name[256], out_name[256];
    snprintf(inp_name, sizeof inp_name, "%s.inp", name);
    snprintf(out_name, sizeof out_name, "%s.out", name);
    const char *args[] = {"-m", tt_path(vocab), "-f", tt_path(inp_name), "--cases", CASE_SEP,
                          bos_special ? "--bos" : "--no-bos", bos_special ? "--special" : NULL,
                          NULL};
    size_t glen, ilen, elen;
    char *got = run_tool(exe, args, &glen);
    char *inp = tt_read(tt_path(inp_name), &ilen);
    char *exp = tt_read(tt_path(out_name), &elen);
    char **cases, **gl, **el;
    size_t *cl, *gll, *ell;
    size_t nc = tt_split(inp, ilen, CASE_SEP, &cases, &cl);
    size_t ng = tt_split(got, glen, "\n", &gl, &gll);
    size_t ne = tt_split(exp, elen, "\n", &el, &ell);
    CHECK(ne == nc, "%s: %zu cases but %zu expected lines", name, nc, ne);
    CHECK(ng == ne, "%s: tool printed %zu lines, expected %zu", name, ng, ne);
    size_t bad = 0;
    for (size_t i = 0; i < ne && i < ng; i++) {
        if (gll[i] == ell[i] && memcmp(gl[i], el[i], ell[i]) == 0)
            continue;
        if (bad++ == 0) {
            fprintf(stderr, "%s: case %zu differs\n  text:     \"%.*s\"\n  got:     %s\n"
                            "  expected:%s\n",
                    name, i, i < nc ? (int)cl[i] : 0, i < nc ? cases[i] : "", gl[i], el[i]);
        }
    }
    CHECK(bad == 0, "%s: %zu of %zu cases differ", name, bad, ne);
    if (bad == 0 && ng == ne)
        printf("%s: all %zu cases match\n", name, ne);
    free(cases), free(cl), free(gl), free(gll), free(el), free(ell);
    free(got), free(inp), free(exp);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_tok_cases TOKENIZE_EXE\n");
        return 1;
    }
    tt_fixture_dir();
    check_pair(argv[1], "llama-bpe", "llama3-vocab.gguf", false);
    check_pair(argv[1], "llama3-corpus", "llama3-vocab.gguf", false);
    check_pair(argv[1], "llama-spm", "llama-spm-vocab.gguf", false);
    check_pair(argv[1], "llama-spm-corpus", "llama-spm-vocab.gguf", false);
    check_pair(argv[1], "llama3-special", "llama3-vocab.gguf", true);
    return tt_failures ? 1 : 0;
}
