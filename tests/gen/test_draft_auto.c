/* --draft auto with a given compute ratio (compute seconds of one token in a pass
 * over the pass's read seconds) keeps a pass at 0.8 / ratio tokens: one request's
 * pending token plus that many guesses less one. Fed the K230's ratio for the 8B Q2_K
 * model (bench/pass-insn.sh's optimistic model: 2.6 s of compute per token) at 25 MB/s
 * (a 120 s pass) and at a 50 s pass, it must widen to 35 and to 14 guesses; at a ratio
 * of 0.2, to 3; and the width never passes --draft-max. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streaminfer/engine.h"
#include "../test_util.h"

static uint32_t width_after(const char *path, double ratio, uint32_t draft_max)
{
    si_llama_opts o = {.n_seq_max = 1, .n_draft_max = draft_max, .mem_budget = 256ull << 20, .n_ctx = 512};
    si_llama *m;
    si_error err;
    CHECKF(si_llama_open(&m, path, &o, &err) == SI_OK, "%s", err.msg);
    si_engine *e;
    si_engine_opts eo = {.n_parallel = 1, .draft_max = draft_max, .compute_ratio = ratio};
    CHECKF(si_engine_create(&e, m, &eo, &err) == SI_OK, "%s", err.msg);
    int32_t ids[4] = {5, 6, 7, 8};
    si_request q = {.prompt = ids, .n_prompt = 4, .n_predict = 40, .draft = SI_DRAFT_AUTO};
    CHECKF(si_engine_submit(e, &q, NULL, &err) == SI_OK, "%s", err.msg);
    si_engine_stats st = {0};
    uint32_t w = 0;
    for (int pass = 0; pass < 4; pass++) { /* the prompt's pass, then generation passes */
        bool idle;
        CHECKF(si_engine_step(e, &idle, &err) == SI_OK, "%s", err.msg);
        si_engine_get_stats(e, &st);
        if (st.active)
            w = st.draft_width;
    }
    CHECKF(si_engine_drain(e, &err) == SI_OK, "%s", err.msg);
    si_engine_free(e);
    si_llama_close(m);
    return w;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MKMODEL\n", argv[0]);
        return 2;
    }
    char path[4200];
    test_mkmodel(argv[1], "draft-auto", "--seed 3 --dim 64 --layers 1 --heads 2 --kv-heads 1 --ff 96 --vocab-size 300 "
                 "--type F32", path, sizeof path);
    struct {
        const char *what;
        double ratio;
        uint32_t max, want;
    } cases[] = {
        {"K230 8B at 25 MB/s (2.6 s / 120 s)", 2.6 / 120, 64, 35},
        {"K230 8B at a 50 s pass (2.6 s / 50 s)", 2.6 / 50, 64, 14},
        {"ratio 0.2", 0.2, 64, 3},
        {"K230 at 25 MB/s, --draft-max 8", 2.6 / 120, 8, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint32_t w = width_after(path, cases[i].ratio, cases[i].max);
        printf("%-40s ratio %.4f: auto guesses %u tokens per pass\n", cases[i].what, cases[i].ratio, w);
        CHECKF(w == cases[i].want, "%s: width %u, want %u", cases[i].what, w, cases[i].want);
    }
    return 0;
}
