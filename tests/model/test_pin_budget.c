/* A budget with no room beside ring, activations and KV cache leaves pins at 0 and
 * still runs, giving the logits of a roomy unpinned run; the exact minimum of the
 * plan is unchanged by --pin (pins only take what the rest leaves). */
#include "pin_test.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MKMODEL\n", argv[0]);
        return 2;
    }
    char path[4200];
    test_mkmodel(argv[1], "pin-budget",
                 "--seed 6 --dim 128 --layers 2 --heads 4 --kv-heads 2 --ff 384 --vocab-size 300 --type Q8_0", path,
                 sizeof path);
    /* The minimum, from the refusal of a budget far too small. */
    si_llama_opts o = {.pin = SI_PIN_AUTO, .mem_budget = 4096, .n_ctx = 64, .all_logits = true,
                       .kv_type = SI_KV_F32};
    si_llama *m = NULL;
    si_error err;
    CHECK(si_llama_open(&m, path, &o, &err) == SI_EBUDGET);
    const char *p = strstr(err.msg, "MiB (");
    if (!p)
        p = strstr(err.msg, "KiB (");
    CHECKF(p, "no minimum in: %s", err.msg);
    uint64_t min = strtoull(p + 5, NULL, 10);
    CHECKF(min > 4096, "minimum %llu from: %s", (unsigned long long)min, err.msg);

    pin_run roomy = pin_run_model(path, SI_PIN_NONE, 0, 0);
    pin_run tight = pin_run_model(path, SI_PIN_AUTO, 0, min);
    printf("minimum %llu bytes: pin budget %llu, pinned %llu; streamed %llu per pass\n", (unsigned long long)min,
           (unsigned long long)tight.plan.pin_budget, (unsigned long long)tight.st.sched.pinned_bytes,
           (unsigned long long)tight.st.sched.bytes_per_pass);
    CHECK(tight.plan.pin_budget == 0 && tight.plan.pin_bytes == 0 && tight.st.sched.pinned_bytes == 0);
    CHECK(tight.plan.pinned_tensors == 0 && tight.plan.pins[0] == 0);
    CHECK(tight.st.sched.bytes_per_pass == tight.st.sched.bytes_per_pass_unpinned);
    CHECKF(memcmp(roomy.logits, tight.logits, roomy.n_floats * sizeof(float)) == 0,
           "the tightest budget's logits differ");
    /* 1 KiB less is still refused with pins on. */
    o.mem_budget = min - 1024;
    CHECK(si_llama_open(&m, path, &o, &err) == SI_EBUDGET);
    free(roomy.logits), free(tight.logits);
    printf("ok\n");
    return 0;
}
