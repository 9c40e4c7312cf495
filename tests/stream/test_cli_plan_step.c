/* stream-infer: a 2048-context and a 131072-context model of the same shape get the
 * same step size, and a 7-token prompt is one pass on both, at the default budget
 * and at 376 MiB (where the 131072-context model holds its whole trained context and
 * the report says so).
 * usage: test_cli_plan_step MKMODEL STREAM_INFER */
#include "cli_plan.h"

int main(int argc, char **argv)
{
    CHECKF(argc == 3, "usage: %s MKMODEL STREAM_INFER", argv[0]);
    cli_init("plan-step");
    const char *shape = "--dim 512 --layers 4 --heads 8 --kv-heads 2 --ff 1536 --type Q4_K";
    char models[2][4200], args[512];
    const uint32_t ctx[2] = {2048, 131072};
    for (int i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "plan-step-%u.gguf", ctx[i]);
        snprintf(args, sizeof args, "%s --ctx %u", shape, ctx[i]);
        cli_mkmodel(argv[1], name, args, models[i], sizeof models[i]);
    }
    const char *budgets[] = {"", "--mem-budget 376M"};
    for (int b = 0; b < 2; b++) {
        uint64_t n_batch[2];
        for (int i = 0; i < 2; i++) {
            snprintf(args, sizeof args, "--prompt-ids '1 2 3 4 5 6 7' -n 0 %s", budgets[b]);
            int rc = cli_run(argv[2], models[i], args);
            char *e = cli_text(cli_err);
            CHECKF(rc == 0, "ctx %u %s: exit status %d: %s", ctx[i], budgets[b], rc, e);
            free(e);
            char src[256];
            cli_json_str("ctx_source", src, sizeof src);
            n_batch[i] = cli_json_u64("n_batch");
            uint64_t passes = cli_json_u64("passes"), n_ctx = cli_json_u64("n_ctx");
            printf("ctx %u, %s: n_batch %" PRIu64 ", %" PRIu64 " pass(es), n_ctx %" PRIu64 " (%s)\n", ctx[i],
                   *budgets[b] ? budgets[b] : "default budget", n_batch[i], passes, n_ctx, src);
            CHECKF(passes == 1, "ctx %u %s: the 7-token prompt took %" PRIu64 " passes", ctx[i], budgets[b], passes);
            CHECK_EQ_INT(cli_json_u64("prompt_tokens"), 7);
            CHECKF(src[0], "empty ctx_source");
            if (b == 1) {
                CHECK_EQ_INT(n_ctx, ctx[i]);
                char want[64];
                snprintf(want, sizeof want, "the model's trained context %u", ctx[i]);
                CHECK_EQ_STR(src, want);
            }
        }
        CHECKF(n_batch[0] == n_batch[1], "%s: step sizes %" PRIu64 " (ctx 2048) and %" PRIu64 " (ctx 131072) differ",
               budgets[b], n_batch[0], n_batch[1]);
        CHECKF(n_batch[0] >= 7, "a step of %" PRIu64 " tokens", n_batch[0]);
    }
    return 0;
}
