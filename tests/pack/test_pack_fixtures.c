/* Every micro-llama3 fixture model packed raw and with --zstd: --dump-logits of the
 * reference prompt plus 32 greedy steps, and the greedy ids, are bit-identical to the
 * GGUF run. usage: test_pack_fixtures REPACK STREAM_INFER TYPE */
#include "pack_test.h"

#include "si_config.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s REPACK STREAM_INFER TYPE\n", argv[0]);
        return 2;
    }
    const char *fx = getenv("SI_FIXTURES"), *rp = argv[1], *si = argv[2], *type = argv[3];
    char gguf[4400], idsf[4400];
    snprintf(gguf, sizeof gguf, "%s/micro-llama3/%s.gguf", fx ? fx : "", type);
    snprintf(idsf, sizeof idsf, "%s/micro-llama3/ref/prompt.ids", fx ? fx : "");
    if (!fx || file_size(gguf) <= 0) {
        printf("fixtures not found at %s (../shared/fixtures is absent in a fresh clone), skipping\n", gguf);
        return TEST_SKIP;
    }
    /* Under qemu each type takes about 30 s; the pack reader is the same code whatever the
     * tensor type, so one type shows it works there. */
    const char *emu = test_emulated();
    if (emu && strcmp(type, "Q2_K") != 0) {
        printf("under emulation (%s): %s not run (about 30 s under qemu); reading a pack does not depend on the "
               "tensor type, so only pack-micro-Q2_K runs here; the native run checks every type\n",
               emu, type);
        return TEST_SKIP;
    }
    char *ids = test_read_file(idsf, NULL);
    CHECK(ids);
    ids[strcspn(ids, "\n")] = 0;
    char name[64];
    snprintf(name, sizeof name, "fixtures-%s", type);
    const char *d = scratch_dir(name);
    const char *variants[] = {"gguf", "raw", "zstd"};
    char logits[3][4400], out[3][4400];
    for (int v = 0; v < 3; v++) {
        char model[4400];
        snprintf(logits[v], sizeof logits[v], "%s/%s.logits", d, variants[v]);
        snprintf(out[v], sizeof out[v], "%s/%s.ids", d, variants[v]);
        if (v == 0) {
            snprintf(model, sizeof model, "%s", gguf);
        } else {
            if (v == 2 && !SI_HAVE_ZSTD) {
                printf("%s zstd: no zstd in this build, skipped\n", type);
                continue;
            }
            snprintf(model, sizeof model, "%s/%s.pack", d, variants[v]);
            CHECKF(sh("'%s' '%s' '%s' --no-progress %s > '%s.log' 2>&1", rp, gguf, model, v == 2 ? "--zstd" : "",
                      model) == 0,
                   "repack %s failed (see %s.log)", variants[v], model);
        }
        CHECKF(sh("'%s' -m '%s' -q --prompt-ids '%s' -n 32 --temp 0 --print-ids --dump-logits '%s' > '%s' 2>&1", si,
                  model, ids, logits[v], out[v]) == 0,
               "stream-infer on %s failed (see %s)", model, out[v]);
        if (v > 0) {
            CHECKF(file_size(logits[0]) > 0 && files_equal(logits[0], logits[v]), "%s %s: logits differ from the GGUF's",
                   type, variants[v]);
            CHECKF(files_equal(out[0], out[v]), "%s %s: greedy ids differ from the GGUF's", type, variants[v]);
            printf("%s %-4s pack: %ld bytes of logits and the greedy ids bit-identical to the GGUF run\n", type,
                   variants[v], file_size(logits[v]));
        }
    }
    free(ids);
    return 0;
}
