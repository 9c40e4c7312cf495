/* Pinned, partly pinned and unpinned runs give bit-identical logits over several
 * passes (the first reads the pins, the later ones serve them from memory): on a
 * compute-order GGUF, a llama.cpp-ordered one with rope_freqs, and a pack (zstd
 * frames when the build has zstd). */
#include "pin_test.h"

static int check(const char *path)
{
    pin_run none = pin_run_model(path, SI_PIN_NONE, 0, 0);
    CHECK(none.st.sched.pinned_bytes == 0);
    uint64_t whole = none.st.sched.bytes_per_pass;
    /* about a third of the model, then everything */
    pin_run part = pin_run_model(path, SI_PIN_SIZE, whole / 3, 0);
    pin_run all = pin_run_model(path, SI_PIN_AUTO, 0, 0);
    printf("%s: %llu bytes per pass unpinned; partly pinned %llu held (%s), %llu streamed; auto %llu held, %llu "
           "streamed\n",
           path, (unsigned long long)whole, (unsigned long long)part.st.sched.pinned_bytes, part.plan.pins,
           (unsigned long long)part.st.sched.bytes_per_pass, (unsigned long long)all.st.sched.pinned_bytes,
           (unsigned long long)all.st.sched.bytes_per_pass);
    CHECKF(part.st.sched.pinned_bytes > 0 && part.st.sched.pinned_bytes <= whole / 3 && part.st.sched.bytes_per_pass > 0,
           "a partial pin: %llu pinned, %llu streamed", (unsigned long long)part.st.sched.pinned_bytes,
           (unsigned long long)part.st.sched.bytes_per_pass);
    CHECKF(all.st.sched.bytes_per_pass == 0, "auto with a large budget pins everything: %llu still streamed",
           (unsigned long long)all.st.sched.bytes_per_pass);
    CHECK(none.st.sched.passes == 1 + PIN_N_FORCED && all.st.sched.passes == none.st.sched.passes);
    CHECKF(memcmp(none.logits, part.logits, none.n_floats * sizeof(float)) == 0, "%s: partly pinned logits differ",
           path);
    CHECKF(memcmp(none.logits, all.logits, none.n_floats * sizeof(float)) == 0, "%s: pinned logits differ", path);
    free(none.logits), free(part.logits), free(all.logits);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MKMODEL REPACK\n", argv[0]);
        return 2;
    }
    char a[4200], b[4200], pack[4300], cmd[20000];
    test_mkmodel(argv[1], "pin-compute",
                 "--seed 3 --dim 256 --layers 3 --heads 4 --kv-heads 2 --ff 512 --vocab-size 300 --type Q4_K", a,
                 sizeof a);
    test_mkmodel(argv[1], "pin-sorted",
                 "--seed 4 --dim 128 --layers 3 --heads 4 --kv-heads 2 --ff 512 --vocab-size 300 --type Q8_0 "
                 "--tensor-type ffn_down=Q6_K --order sorted --rope-freqs",
                 b, sizeof b);
    snprintf(pack, sizeof pack, "%s.pack", a);
    /* zstd frames where the build has zstd (the riscv64 build has not): raw chunks then */
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' --zstd > /dev/null 2>&1 || '%s' '%s' '%s' > /dev/null 2>&1", argv[2], a,
             pack, argv[2], a, pack);
    CHECKF(system(cmd) == 0, "repack failed: %s", cmd);
    check(a);
    check(b);
    check(pack);
    printf("ok\n");
    return 0;
}
