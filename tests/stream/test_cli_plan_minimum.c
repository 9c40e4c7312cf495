/* stream-infer: the minimum budget a refusal names runs (generating two tokens) and
 * one KiB less is refused naming the same minimum; on a 131072-context model (with
 * the default context and with -c 300) and on every micro-llama3 fixture.
 * usage: test_cli_plan_minimum MKMODEL STREAM_INFER */
#include <glob.h>

#include "cli_plan.h"
#include "plan_test.h"

static const char *si_exe;

/* The minimum named when ARGS are refused at a 1 KiB budget. */
static uint64_t named_minimum(const char *model, const char *args, uint64_t budget, const char *what)
{
    char a[2048];
    snprintf(a, sizeof a, "%s --mem-budget %" PRIu64, args, budget);
    int rc = cli_run(si_exe, model, a);
    char *e = cli_text(cli_err);
    CHECKF(rc == 1 && strstr(e, "stream-infer: error: "), "%s at %" PRIu64 " bytes: exit status %d, not a refusal: %s",
           what, budget, rc, e);
    uint64_t min = plan_named_minimum(e);
    CHECKF(min > 0, "%s: the refusal names no minimum in bytes: %s", what, e);
    free(e);
    return min;
}

static void check_model(const char *model, const char *extra, const char *what)
{
    char args[1024];
    snprintf(args, sizeof args, "--prompt-ids '1 2 3' -n 2 --temp 0 %s", extra);
    uint64_t min = named_minimum(model, args, 1024, what);
    char a[2048];
    snprintf(a, sizeof a, "%s --mem-budget %" PRIu64, args, min);
    int rc = cli_run(si_exe, model, a);
    char *e = cli_text(cli_err);
    CHECKF(rc == 0, "%s: the named minimum %" PRIu64 " bytes does not run (exit status %d): %s", what, min, rc, e);
    free(e);
    CHECK_EQ_INT(cli_json_u64("tokens_generated"), 2);
    CHECK_EQ_INT(cli_json_u64("mem_budget_bytes"), min);
    uint64_t n_ctx = cli_json_u64("n_ctx"), n_batch = cli_json_u64("n_batch");
    CHECK_EQ_INT(named_minimum(model, args, min - 1024, what), min);
    printf("%s: minimum %" PRIu64 " bytes runs (n_ctx %" PRIu64 ", n_batch %" PRIu64 "), %" PRIu64
           " is refused\n", what, min, n_ctx, n_batch, min - 1024);
}

int main(int argc, char **argv)
{
    CHECKF(argc == 3, "usage: %s MKMODEL STREAM_INFER", argv[0]);
    si_exe = argv[2];
    cli_init("plan-minimum");
    char model[4200];
    cli_mkmodel(argv[1], "plan-long-ctx.gguf", "--dim 512 --layers 4 --heads 8 --kv-heads 2 --ff 1536 --type Q4_K "
                "--ctx 131072", model, sizeof model);
    check_model(model, "", "ctx 131072 model");
    check_model(model, "-c 300", "ctx 131072 model, -c 300");

    const char *fx = getenv("SI_FIXTURES");
    char pat[4200];
    snprintf(pat, sizeof pat, "%s/micro-llama3/*.gguf", fx ? fx : "");
    glob_t g;
    if (!fx || glob(pat, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        printf("fixtures not found at %s (../shared/fixtures is absent in a fresh clone): the long-context model "
               "passed, skipping the fixtures\n", pat);
        return TEST_SKIP;
    }
    size_t n = g.gl_pathc;
    if (test_emulated() && n > 2) {
        printf("under emulation (%s): the first 2 of the %zu fixtures; the native run does all\n", test_emulated(),
               n);
        n = 2;
    }
    for (size_t i = 0; i < n; i++) {
        const char *base = strrchr(g.gl_pathv[i], '/');
        check_model(g.gl_pathv[i], "", base ? base + 1 : g.gl_pathv[i]);
    }
    globfree(&g);
    return 0;
}
