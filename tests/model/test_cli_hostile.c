/* stream-infer on broken input: a clear "error:" line and exit status 1, never a
 * crash, a hang or a sanitizer report (run this under ASan/UBSan).
 *   - a GGUF truncated at the header fields, at each tensor info, at the data
 *     start and inside each tensor's data;
 *   - random byte corruption of the header and metadata (error or a normal run);
 *   - a memory budget too small (the error names the minimum that would work);
 *   - token ids out of range;
 *   - --kv-type q8_0 on a model whose head size (16) is not a multiple of 32.
 * usage: test_cli_hostile MKMODEL STREAM_INFER */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../test_util.h"
#include "streaminfer/gguf.h"

static const char *si_exe;
static char out_file[4200];

/* Run stream-infer on path; returns its exit status (or 128+signal). */
static int run(const char *path, const char *args)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' -m '%s' -q %s > /dev/null 2> '%s'", si_exe, path, args, out_file);
    int st = system(cmd);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

static char *stderr_text(void)
{
    size_t n;
    char *s = test_read_file(out_file, &n);
    if (!s)
        return strdup("");
    char *z = realloc(s, n + 1);
    z[n] = 0;
    return z;
}

/* Expect a refusal: exit status 1 (2 for command-line mistakes) with an "error:"
 * line that says what is wrong. */
static void expect_error_rc(const char *path, const char *args, const char *what, const char *must_contain, int want)
{
    int rc = run(path, args);
    char *e = stderr_text();
    CHECKF(rc == want, "%s: exit status %d (expected %d); stderr: %s", what, rc, want, e);
    CHECKF(strstr(e, "stream-infer: error: ") != NULL, "%s: no error line; stderr: %s", what, e);
    CHECKF(!must_contain || strstr(e, must_contain), "%s: error does not mention '%s': %s", what, must_contain, e);
    free(e);
}

static void expect_error(const char *path, const char *args, const char *what, const char *must_contain)
{
    expect_error_rc(path, args, what, must_contain, 1);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n);
    fclose(f);
}

int main(int argc, char **argv)
{
    CHECKF(argc == 3, "usage: %s MKMODEL STREAM_INFER", argv[0]);
    si_exe = argv[2];
    const char *root = getenv("SI_BUILD_ROOT") ? getenv("SI_BUILD_ROOT") : ".";
    char model[4096], bad[4200], cmd[12288];
    snprintf(model, sizeof model, "%s/test-models/hostile.gguf", root);
    snprintf(bad, sizeof bad, "%s/test-models/hostile-bad.gguf", root);
    snprintf(out_file, sizeof out_file, "%s/test-models/hostile.err", root);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/test-models' && '%s' -o '%s' --dim 64 --layers 2 --heads 4 --kv-heads 2 "
             "--ff 128 --vocab-size 280 --type Q8_0 --tensor-type output=F16 --seed 5 2>/dev/null",
             root, argv[1], model);
    CHECKF(system(cmd) == 0, "mkmodel failed: %s", cmd);
    CHECKF(run(model, "--prompt-ids '1 2 3' -n 4") == 0, "the intact model does not run");

    size_t size;
    uint8_t *file = test_read_file(model, &size);
    CHECK(file);
    si_gguf *g;
    si_error err;
    CHECK(si_gguf_open(&g, model, &err) == SI_OK);
    uint64_t data_start = si_gguf_data_offset(g);

    /* Truncations: header fields, each tensor info, the data start, inside each tensor. */
    size_t cuts[512];
    int n_cuts = 0;
    const size_t header_cuts[] = {0, 3, 4, 8, 16, 23, 24, 40};
    for (size_t i = 0; i < sizeof header_cuts / sizeof header_cuts[0]; i++)
        cuts[n_cuts++] = header_cuts[i];
    for (uint64_t i = 0; i < si_gguf_n_tensors(g) && n_cuts < 500; i++) {
        const si_gguf_tensor *t = si_gguf_tensor_at(g, i);
        cuts[n_cuts++] = t->info_offset;
        cuts[n_cuts++] = t->offset + t->size / 2;
        cuts[n_cuts++] = t->offset + t->size - 1;
    }
    cuts[n_cuts++] = data_start;
    cuts[n_cuts++] = size - 1;
    for (int i = 0; i < n_cuts; i++) {
        write_file(bad, file, cuts[i]);
        char what[64];
        snprintf(what, sizeof what, "truncated at %zu of %zu", cuts[i], size);
        expect_error(bad, "--prompt-ids '1 2 3' -n 2", what, "hostile-bad.gguf");
    }
    printf("%d truncations refused\n", n_cuts);

    /* Random corruption of the metadata: an error or a normal run, nothing else. */
    test_rng rng;
    test_rng_seed(&rng, 1234);
    int errors = 0, runs = 0, iterations = 300;
    if (test_emulated()) {
        /* Each run costs a qemu start; the header parser is the same C code as natively. */
        iterations = 100;
        printf("under emulation (%s): 100 of the 300 random header corruptions (the first 100 of the same "
               "sequence); the native run does all 300\n", test_emulated());
    }
    uint8_t *copy = malloc(size);
    for (int it = 0; it < iterations; it++) {
        memcpy(copy, file, size);
        int flips = 1 + (int)(test_rng_u64(&rng) % 4);
        for (int f = 0; f < flips; f++)
            copy[test_rng_u64(&rng) % data_start] ^= (uint8_t)(1 + test_rng_u64(&rng) % 255);
        write_file(bad, copy, size);
        int rc = run(bad, "--prompt-ids '1 2 3' -n 2");
        char *e = stderr_text();
        CHECKF(rc == 0 || (rc == 1 && strstr(e, "stream-infer: error: ")),
               "corruption iteration %d: exit status %d; stderr: %s", it, rc, e);
        free(e);
        errors += rc == 1;
        runs += rc == 0;
    }
    printf("%d corrupted headers: %d refused with an error, %d ran normally\n", iterations, errors, runs);

    expect_error(model, "--prompt-ids '1 2 3' --mem-budget 20K", "tiny budget", "at least");
    expect_error(model, "--prompt-ids '1 2 3' -c 2 -n 4", "context overflow", "context");
    expect_error(model, "--prompt-ids '1 280 3'", "id out of range", "out of range");
    expect_error_rc(model, "--prompt-ids '1 x 3'", "not an id", "not a token id", 2);
    expect_error_rc(model, "--prompt-ids '1' --kv-type f8", "bad option value", "--kv-type", 2);
    expect_error(model, "--prompt-ids '1 2 3' --kv-type q8_0", "q8_0 KV, head size 16", "head size is 16");
    free(copy);
    free(file);
    si_gguf_close(g);
    printf("ok\n");
    return 0;
}
