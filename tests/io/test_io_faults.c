/* Fault injection over every read of a pass (-Dfault_injection=true; src/io/fault.c).
 *
 * A micro model (mkmodel), as GGUF and as a pack (repack, checksummed chunks), is
 * opened with 4 KiB chunks and a 2-read queue, so that open and one pass (prompt of 4
 * tokens, embedding rows read on demand) take many reads. For each fault kind and each
 * read index of open+pass in turn, the model is opened and the pass run again:
 *   EAGAIN, SHORT, LATE: retried or reordered: the pass succeeds with logits identical
 *     to the clean run's;
 *   EIO: open or pass fails with an error naming the offset and, in a pass, the tensor
 *     or layer (or succeeds identically, if the engine re-read);
 *   FLIP in a pack: identical logits (the chunk's checksum failed and it was read
 *     again) or a checksum error; never other logits;
 *   FLIP in a GGUF (no checksums): any outcome but a crash.
 * Then io_uring setup failing: SI_IO_AUTO falls back to pread with identical logits,
 * SI_IO_URING reports it. Every open/pass runs under a deadline (alarm); ASan/LSan
 * builds check that nothing leaks.
 *
 * usage: test_io_faults MKMODEL REPACK pread|uring */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test_util.h"
#include "io_internal.h"
#include "streaminfer/llama.h"

#define N_PROMPT 4
static const int32_t prompt[N_PROMPT] = {1, 77, 150, 299};

static si_io_kind g_kind;
static uint32_t n_vocab;

typedef struct outcome {
    int rc;          /* open's, else the pass's */
    bool opened;
    si_error err;
    float *logits;   /* n_vocab, when the pass succeeded */
    uint64_t reads;  /* reads counted */
    unsigned fired;
} outcome;

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_io_faults: deadline passed (a hang)\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

static outcome run(const char *path, si_io_kind kind)
{
    outcome o = {0};
    si_llama_opts lo = {.io = {.kind = kind, .direct = SI_DIRECT_OFF, .queue_depth = 2},
                        .mem_budget = 64u << 20, .n_ctx = 16, .chunk_bytes = 4096, .pin = SI_PIN_NONE};
    si_llama *m = NULL;
    alarm(20);
    o.rc = si_llama_open(&m, path, &lo, &o.err);
    if (o.rc == SI_OK) {
        o.opened = true;
        n_vocab = si_llama_hparams_of(m)->n_vocab;
        o.logits = malloc(sizeof(float) * n_vocab);
        CHECK(o.logits);
        o.rc = si_llama_eval(m, prompt, N_PROMPT, false, o.logits, &o.err);
        if (o.rc != SI_OK) {
            free(o.logits);
            o.logits = NULL;
        }
        si_llama_close(m);
    }
    alarm(0);
    o.reads = si_io_fi_reads();
    o.fired = si_io_fi_fired();
    return o;
}

/* "reading <what>: <file>: read of N bytes at offset X failed: ..." where what is a
 * layer ("layer 3"), a tensor or rows of one ("blk.0.attn_q.weight rows 0-63",
 * "output_norm+output", "token_embd.weight row 77 (token 77)"). */
static bool names_place(const char *msg)
{
    if (strncmp(msg, "reading ", 8) != 0 || !strstr(msg, "offset"))
        return false;
    const char *what = msg + 8;
    return strncmp(what, "layer ", 6) == 0 || strncmp(what, "blk.", 4) == 0 || strncmp(what, "token_embd", 10) == 0 ||
           strncmp(what, "output", 6) == 0 || strncmp(what, "rope_freqs", 10) == 0;
}

static const char *kind_name(si_fi_kind k)
{
    static const char *const n[] = {"none", "EIO", "short", "EAGAIN", "late", "flip"};
    return n[k];
}

/* Every fault kind at every read index of open + one pass. */
static void sweep(const char *path, bool checksummed)
{
    si_io_fi_arm(SI_FI_NONE, 0, 0);
    outcome ref = run(path, g_kind);
    CHECKF(ref.rc == SI_OK, "%s: clean run failed: %s", path, ref.err.msg);
    uint64_t n = ref.reads;
    CHECKF(n >= 20, "%s: only %" PRIu64 " reads in open + pass: the test needs more", path, n);
    for (si_fi_kind k = SI_FI_EIO; k <= SI_FI_FLIP; k++) {
        unsigned ok = 0, failed = 0, fired = 0, mism = 0;
        for (uint64_t i = 0; i < n; i++) {
            si_io_fi_arm(k, i, 1);
            outcome o = run(path, g_kind);
            si_io_fi_arm(SI_FI_NONE, 0, 0);
            fired += o.fired > 0;
            bool same = o.rc == SI_OK && memcmp(o.logits, ref.logits, sizeof(float) * n_vocab) == 0;
            switch (k) {
            case SI_FI_SHORT:
            case SI_FI_EAGAIN:
            case SI_FI_LATE:
                CHECKF(same, "%s: %s at read %" PRIu64 ": %s", path, kind_name(k), i,
                       o.rc ? o.err.msg : "logits differ from the clean run's");
                break;
            case SI_FI_EIO:
                if (o.rc != SI_OK) {
                    CHECKF(o.rc == SI_EIO, "%s: EIO at read %" PRIu64 ": error %d: %s", path, i, o.rc, o.err.msg);
                    CHECKF(strstr(o.err.msg, "offset"), "%s: EIO at read %" PRIu64 ": no offset in \"%s\"", path, i,
                           o.err.msg);
                    CHECKF(!o.opened || names_place(o.err.msg),
                           "%s: EIO at read %" PRIu64 " in a pass: no tensor/layer and offset in \"%s\"", path, i,
                           o.err.msg);
                    static int shown;
                    if (o.opened && shown++ < 3)
                        printf("EIO in a pass: %s\n", o.err.msg);
                } else {
                    CHECKF(same, "%s: EIO at read %" PRIu64 ": the pass succeeded with other logits", path, i);
                }
                break;
            case SI_FI_FLIP:
                if (checksummed) {
                    CHECKF(o.rc != SI_OK || same,
                           "%s: flip at read %" PRIu64 ": computed on bad data (logits differ, no error)", path, i);
                    CHECKF(o.rc == SI_OK || o.rc == SI_ECHECKSUM || o.rc == SI_EFORMAT,
                           "%s: flip at read %" PRIu64 ": error %d: %s", path, i, o.rc, o.err.msg);
                }
                break; /* GGUF: only never crash */
            default:
                break;
            }
            mism += o.rc == SI_OK && !same;
            if (o.rc == SI_OK)
                ok++;
            else
                failed++;
            free(o.logits);
        }
        printf("%s %s: %-6s at each of %" PRIu64 " reads: fired %u, passes ok %u (other logits %u), errors %u\n",
               path, si_io_fi_setup_should_fail() ? "" : (g_kind == SI_IO_URING ? "io_uring" : "pread"), kind_name(k),
               n, fired, ok, mism, failed);
        CHECKF(fired == n, "%s: %s fired at %u of %" PRIu64 " reads", path, kind_name(k), fired, n);
    }
    free(ref.logits);
}

/* io_uring setup fails: auto falls back to pread, uring says why. */
static void setup_failure(const char *path)
{
    si_io_fi_arm(SI_FI_NONE, 0, 0);
    outcome ref = run(path, SI_IO_PREAD);
    CHECKF(ref.rc == SI_OK, "%s", ref.err.msg);
    si_io_fi_setup_fail(true);
    outcome a = run(path, SI_IO_AUTO);
    CHECKF(a.rc == SI_OK, "auto with io_uring setup failing: %s", a.err.msg);
    CHECK(memcmp(a.logits, ref.logits, sizeof(float) * n_vocab) == 0);
    outcome u = run(path, SI_IO_URING);
    CHECKF(u.rc != SI_OK && strstr(u.err.msg, "io_uring"), "uring with setup failing: rc %d, \"%s\"", u.rc,
           u.err.msg);
    printf("io_uring setup failing: auto fell back to pread (identical logits); uring: %s\n", u.err.msg);
    si_io_fi_setup_fail(false);
    free(ref.logits);
    free(a.logits);
    free(u.logits);
}

static void sh(const char *cmd)
{
    int rc = system(cmd);
    CHECKF(rc == 0, "%s: exit %d", cmd, rc);
}

int main(int argc, char **argv)
{
    CHECKF(argc == 4, "usage: test_io_faults MKMODEL REPACK pread|uring");
    signal(SIGALRM, on_alarm);
    g_kind = strcmp(argv[3], "uring") == 0 ? SI_IO_URING : SI_IO_PREAD;
    char dir[] = "/tmp/si-faults-XXXXXX";
    CHECK(mkdtemp(dir));
    char gguf[128], pack[128], cmd[1024];
    snprintf(gguf, sizeof gguf, "%s/micro.gguf", dir);
    snprintf(pack, sizeof pack, "%s/micro.pack", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' -o %s --dim 64 --layers 2 --heads 2 --kv-heads 1 --ff 128 --vocab-size 300 --ctx 64 --type Q8_0 "
             "--tensor-type output=F16 >/dev/null 2>&1",
             argv[1], gguf);
    sh(cmd);
    snprintf(cmd, sizeof cmd, "'%s' %s %s --chunk 4K --embd-chunk 1K >/dev/null 2>&1", argv[2], gguf, pack);
    sh(cmd);
    if (g_kind == SI_IO_URING) {
        si_io_fi_arm(SI_FI_NONE, 0, 0);
        outcome o = run(gguf, SI_IO_URING);
        if (o.rc != SI_OK) {
            printf("SKIP: io_uring unavailable here: %s\n", o.err.msg);
            unlink(gguf), unlink(pack), rmdir(dir);
            return TEST_SKIP;
        }
        free(o.logits);
    }
    sweep(gguf, false);
    sweep(pack, true);
    if (g_kind == SI_IO_URING)
        setup_failure(gguf);
    unlink(gguf);
    unlink(pack);
    rmdir(dir);
    return 0;
}
