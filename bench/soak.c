/* Soak: many passes on one open model, resident memory after each.
 *
 * soak MKMODEL [PASSES] [--pack REPACK]: writes a micro model with mkmodel (and a pack
 * of it with repack, --pack), opens it with 4 KiB chunks and pins off, and runs PASSES
 * (default 1000) passes of a 4-token step at positions 0..3 of sequence 0, clearing the
 * sequence after each, so every pass does the same work. Prints RSS (VmRSS) after the
 * first pass, the maximum and after the last, the peak (VmHWM), and whether the logits
 * stayed bit-identical; exits 1 when RSS grew after pass 10 by more than 64 KiB (the
 * first passes touch the weight ring's pages for the first time) or the logits
 * changed. SOAK_TRACE=1: RSS after each of the first 10 passes and every 100th. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "streaminfer/clock.h"
#include "streaminfer/llama.h"

static uint64_t status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    uint64_t v = 0;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0)
            v = strtoull(line + kl + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: soak MKMODEL [PASSES] [--pack REPACK]\n");
        return 2;
    }
    long passes = argc > 2 && argv[2][0] != '-' ? atol(argv[2]) : 1000;
    const char *repack = NULL;
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], "--pack") == 0)
            repack = argv[i + 1];
    char dir[] = "/tmp/si-soak-XXXXXX", path[128], cmd[1024];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/micro.gguf", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' -o %s --dim 64 --layers 2 --heads 2 --kv-heads 1 --ff 128 --vocab-size 300 --ctx 64 --type Q8_0 "
             ">/dev/null 2>&1",
             argv[1], path);
    if (system(cmd) != 0)
        return fprintf(stderr, "soak: %s failed\n", cmd), 1;
    char gguf[128];
    snprintf(gguf, sizeof gguf, "%s", path);
    if (repack) {
        snprintf(path, sizeof path, "%s/micro.pack", dir);
        snprintf(cmd, sizeof cmd, "'%s' %s %s --chunk 4K --embd-chunk 1K >/dev/null 2>&1", repack, gguf, path);
        if (system(cmd) != 0)
            return fprintf(stderr, "soak: %s failed\n", cmd), 1;
    }
    si_llama_opts o = {.io = {.kind = SI_IO_AUTO, .direct = SI_DIRECT_AUTO, .queue_depth = 4}, .mem_budget = 64u << 20,
                       .n_ctx = 16, .chunk_bytes = 4096, .pin = SI_PIN_NONE};
    si_llama *m;
    si_error e;
    if (si_llama_open(&m, path, &o, &e) != SI_OK)
        return fprintf(stderr, "soak: %s\n", e.msg), 1;
    uint32_t nv = si_llama_hparams_of(m)->n_vocab;
    float *ref = malloc(sizeof(float) * nv), *l = malloc(sizeof(float) * nv);
    const int32_t ids[4] = {1, 77, 150, 299};
    const uint32_t pos[4] = {0, 1, 2, 3};
    const si_seq_set seq[4] = {SI_SEQ(0), SI_SEQ(0), SI_SEQ(0), SI_SEQ(0)};
    si_batch b = {.n = 4, .id = ids, .pos = pos, .seq = seq, .logits = NULL};
    uint64_t first = 0, max = 0, last = 0, at10 = 0;
    bool same = true;
    double t0 = si_now_s();
    for (long p = 0; p < passes; p++) {
        if (si_llama_decode(m, &b, p + 1 < passes, p ? l : ref, &e) != SI_OK)
            return fprintf(stderr, "soak: pass %ld: %s\n", p + 1, e.msg), 1;
        si_kv_seq_rm(si_llama_kv(m), 0, 0, UINT32_MAX);
        if (p)
            same = same && memcmp(l, ref, sizeof(float) * nv) == 0;
        last = status_kb("VmRSS:");
        if (p == 0)
            first = last;
        if (last > max)
            max = last;
        if (p == 9)
            at10 = last;
        if (getenv("SOAK_TRACE") && (p < 10 || (p + 1) % 100 == 0))
            fprintf(stderr, "pass %ld: RSS %" PRIu64 " KiB\n", p + 1, last);
    }
    double dt = si_now_s() - t0;
    si_llama_stats st;
    si_llama_get_stats(m, &st);
    const char *backend = st.io.backend; /* a constant string */
    si_llama_close(m);
    printf("soak: %s (%s), %ld passes in %.1f s (%.2f ms each), %" PRIu64 " bytes read\n", repack ? "pack" : "GGUF",
           backend, passes, dt, 1e3 * dt / passes, st.io_bytes_read);
    printf("soak: RSS first %" PRIu64 " KiB, after 10 passes %" PRIu64 " KiB, max %" PRIu64 " KiB, last %" PRIu64
           " KiB; peak (VmHWM) %" PRIu64 " KiB; logits %s\n",
           first, at10, max, last, status_kb("VmHWM:"), same ? "identical every pass" : "CHANGED");
    free(ref);
    free(l);
    unlink(gguf);
    if (repack)
        unlink(path);
    rmdir(dir);
    /* The first few passes touch the rest of the weight ring (pages are mapped as
     * slots are first used); from then on nothing may grow. */
    bool flat = passes < 20 || max <= at10 + 64;
    if (!flat)
        fprintf(stderr, "soak: RSS grew after pass 10: %" PRIu64 " -> %" PRIu64 " KiB\n", at10, max);
    return same && flat ? 0 : 1;
}
