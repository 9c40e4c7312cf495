/* thread-bench: compute time of one 32-token step on a Llama-3-8B-shaped layer whose
 * weights are resident (pinned in the first pass, so the timed passes read nothing),
 * with -t 1 and with -t 2 (or the counts given), median of 5 steps each; prints the
 * medians and their ratio (docs/BENCHMARKS.md).
 *
 *   thread-bench MKMODEL [--threads 1,2] [--steps 5] [--tokens 32] [--keep MODEL]
 *
 * The model: mkmodel's 8B shapes and Q2_K preset mix (attn_v Q4_K, attn_output and
 * ffn_down Q3_K) with one layer and a 512-token vocabulary, so the classifier costs
 * nothing beside the layer. Each timed step is a fresh sequence's 32 tokens at positions
 * 0..31 (a prompt step: the matrix products dominate; attention is split by heads too).
 * The configurations alternate step by step, so a burst of load on a shared machine
 * hits both; every step's logits must be bit-identical across thread counts. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "streaminfer/llama.h"

#define MAX_CONF 8

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The 1-minute load average, to say how busy the (shared) machine was. */
static const char *loadavg(void)
{
    static char buf[32] = "unknown";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%31s", buf) != 1)
            snprintf(buf, sizeof buf, "unknown");
        fclose(f);
    }
    return buf;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, const si_error *err)
{
    fprintf(stderr, "thread-bench: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

/* One step of n tokens of sequence s at positions 0..n-1; every token's logits. */
static double step(si_llama *m, uint32_t s, uint32_t n, float *logits)
{
    int32_t id[256];
    uint32_t pos[256];
    si_seq_set seq[256];
    bool want[256];
    for (uint32_t i = 0; i < n; i++)
        id[i] = (int32_t)((i * 131 + 7) % 500), pos[i] = i, seq[i] = SI_SEQ(s), want[i] = true;
    si_batch bt = {.n = n, .id = id, .pos = pos, .seq = seq, .logits = want};
    si_error err;
    double t0 = now();
    if (si_llama_decode(m, &bt, true, logits, &err) != SI_OK)
        die("step", &err);
    return now() - t0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MKMODEL [--threads 1,2] [--steps 5] [--tokens 32] [--keep MODEL]\n", argv[0]);
        return 2;
    }
    const char *threads = "1,2", *keep = NULL;
    uint32_t steps = 5, n_tok = 32;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads"))
            threads = argv[i + 1];
        else if (!strcmp(argv[i], "--steps"))
            steps = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tokens"))
            n_tok = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--keep"))
            keep = argv[i + 1];
        else {
            fprintf(stderr, "thread-bench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (steps < 1 || steps > 50 || n_tok < 1 || n_tok > 256) {
        fprintf(stderr, "thread-bench: --steps 1..50, --tokens 1..256\n");
        return 2;
    }
    uint32_t conf[MAX_CONF], n_conf = 0;
    for (const char *p = threads; *p && n_conf < MAX_CONF;) {
        conf[n_conf++] = (uint32_t)strtoul(p, (char **)&p, 10);
        if (*p == ',')
            p++;
    }
    char path[4096], cmd[8192];
    if (keep)
        snprintf(path, sizeof path, "%s", keep);
    else
        snprintf(path, sizeof path, "/tmp/thread-bench-%d.gguf", (int)getpid());
    if (!keep || access(path, R_OK) != 0) {
        snprintf(cmd, sizeof cmd,
                 "'%s' -o '%s' --layers 1 --dim 4096 --heads 32 --kv-heads 8 --head-dim 128 --ff 14336 --vocab-size 512 "
                 "--ctx 4096 --type Q2_K --tensor-type attn_v=Q4_K --tensor-type attn_output=Q3_K "
                 "--tensor-type ffn_down=Q3_K >/dev/null 2>&1",
                 argv[1], path);
        if (system(cmd) != 0) {
            fprintf(stderr, "thread-bench: mkmodel failed: %s\n", cmd);
            return 1;
        }
    }
    si_llama *m[MAX_CONF];
    uint32_t V = 0;
    float *ref = NULL, *logits = NULL;
    for (uint32_t c = 0; c < n_conf; c++) {
        si_llama_opts o = {.mem_budget = 1ull << 30, .n_ctx = (steps + 1) * n_tok + 256, .n_batch = n_tok, .all_logits = true,
                           .n_seq_max = steps + 1, .pin = SI_PIN_AUTO, .n_threads = conf[c]};
        si_error err;
        if (si_llama_open(&m[c], path, &o, &err) != SI_OK)
            die(path, &err);
        V = si_llama_hparams_of(m[c])->n_vocab;
        if (!logits && !(logits = malloc((size_t)n_tok * V * sizeof(float))))
            die("out of memory", NULL);
        step(m[c], 0, n_tok, logits); /* reads and pins the weights */
        si_llama_stats st;
        si_llama_get_stats(m[c], &st);
        if (st.sched.bytes_per_pass != 0) {
            fprintf(stderr, "thread-bench: %" PRIu64 " bytes still streamed per pass: the layer is not resident\n",
                    st.sched.bytes_per_pass);
            return 1;
        }
    }
    if (!keep)
        unlink(path);
    double t[MAX_CONF][50];
    ref = malloc((size_t)n_tok * V * sizeof(float));
    if (!ref)
        die("out of memory", NULL);
    for (uint32_t s = 0; s < steps; s++)
        for (uint32_t c = 0; c < n_conf; c++) {
            t[c][s] = step(m[c], 1 + s, n_tok, c ? logits : ref);
            if (c && memcmp(ref, logits, (size_t)n_tok * V * sizeof(float)) != 0) {
                fprintf(stderr, "thread-bench: -t %u's logits differ from -t %u's\n", conf[c], conf[0]);
                return 1;
            }
        }
    double med[MAX_CONF];
    printf("thread-bench: %u-token step of one 8B-shaped layer (Q2_K mix), weights resident, median of %u; load "
           "average %s\n",
           n_tok, steps, loadavg());
    for (uint32_t c = 0; c < n_conf; c++) {
        qsort(t[c], steps, sizeof(double), cmp_d);
        med[c] = t[c][steps / 2];
        printf("  -t %-3u %8.3f s   (min %.3f, max %.3f)   %.2f x -t %u\n", conf[c], med[c], t[c][0],
               t[c][steps - 1], med[0] / med[c], conf[0]);
        si_llama_close(m[c]);
    }
    free(ref);
    free(logits);
    return 0;
}
