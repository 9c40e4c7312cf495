/* A device that returns a bad byte once or a few times (LD_PRELOAD flaky_read.so, pread
 * backend): the scheduler re-reads the chunk, up to 3 times, and the run then gives the
 * same logits as a clean one with the re-reads counted in the report; a fourth bad read
 * stops the run with the checksum error. usage: test_pack_reread MKMODEL REPACK
 * STREAM_INFER FLAKY_SO */
#include "pack_test.h"

#include "si_config.h"
#include "streaminfer/pack.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s MKMODEL REPACK STREAM_INFER FLAKY_SO\n", argv[0]);
        return 2;
    }
    const char *mk = argv[1], *rp = argv[2], *si = argv[3], *so = argv[4];
    const char *d = scratch_dir("reread");
    char g[4400], p[4400];
    snprintf(g, sizeof g, "%s/m.gguf", d);
    snprintf(p, sizeof p, "%s/flaky.pack", d);
    CHECK(sh("'%s' -o '%s' --dim 256 --layers 2 --heads 4 --kv-heads 1 --ff 512 --type Q4_K > /dev/null 2>&1", mk,
             g) == 0);
    CHECK(sh("'%s' '%s' '%s' --no-progress %s > /dev/null 2>&1", rp, g, p, SI_HAVE_ZSTD ? "--zstd=1 --min-saving 0" : "") ==
          0);
    si_pack *pk;
    si_error e;
    CHECKF(si_pack_open(&pk, p, &e) == SI_OK, "%s", e.msg);
    const si_pack_tensor *t = si_pack_find_tensor(pk, "blk.1.ffn_up.weight");
    CHECK(t);
    const si_pack_chunk *c = si_pack_chunk_at(pk, t->first_chunk);
    uint64_t off = c->offset + c->stored / 3;
    si_pack_close(pk);
    const char *run = "'%s' -m '%s' -q --io pread --prompt-ids '1 2 3' -n 3 --temp 0 --print-ids --dump-logits "
                      "'%s/%s.logits' --report-json '%s/%s.json' > /dev/null 2> '%s/%s.err'";
    char cmd[32768];
    snprintf(cmd, sizeof cmd, run, si, p, d, "clean", d, "clean", d, "clean");
    CHECK(sh("%s", cmd) == 0);
    for (int times = 1; times <= 4; times++) {
        char tag[16], env[4400];
        snprintf(tag, sizeof tag, "t%d", times);
        snprintf(env, sizeof env,
                 "LD_PRELOAD='%s' ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1 SI_FLAKY_SUFFIX=flaky.pack "
                 "SI_FLAKY_OFFSET=%" PRIu64 " SI_FLAKY_TIMES=%d",
                 so, off, times);
        snprintf(cmd, sizeof cmd, run, si, p, d, tag, d, tag, d, tag);
        int rc = sh("%s %s", env, cmd);
        char a[4400], b[4400], j[4400], er[4400];
        snprintf(a, sizeof a, "%s/clean.logits", d);
        snprintf(b, sizeof b, "%s/%s.logits", d, tag);
        snprintf(j, sizeof j, "%s/%s.json", d, tag);
        snprintf(er, sizeof er, "%s/%s.err", d, tag);
        if (times <= 3) {
            char want[64];
            snprintf(want, sizeof want, "\"checksum_rereads\": %d", times);
            CHECKF(rc == 0 && files_equal(a, b) && file_contains(j, want),
                   "%d bad reads: exit %d, logits %s, report %s", times, rc, files_equal(a, b) ? "same" : "differ",
                   file_contains(j, want) ? "counts them" : "does not count them");
            printf("%d bad read(s) of byte %" PRIu64 ": re-read, same logits, %s\n", times, off, want);
        } else {
            CHECKF(rc == 1 && file_contains(er, "checksum mismatch") && file_contains(er, "blk.1.ffn_up.weight"),
                   "%d bad reads: exit %d", times, rc);
            printf("%d bad reads: the run stops with the checksum error\n", times);
        }
    }
    return 0;
}
