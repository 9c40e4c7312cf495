/* Packs of mkmodel models (runs everywhere): a GGUF and its raw and zstd packs give
 * bit-identical logits and greedy ids through stream-infer, also when the weight
 * buffer is so small that tensors stream in row slices cut at chunk boundaries
 * (small --chunk), with tied classifiers and rope_freqs; --verify passes; --info prints
 * totals. usage: test_pack_engine MKMODEL REPACK STREAM_INFER */
#include "pack_test.h"

#include <math.h>

#include "si_config.h"

typedef struct cfg {
    const char *name, *mk, *pack_opts, *run_opts;
    bool lossy; /* --requant: close to the GGUF's logits, not identical */
} cfg;

/* Mean |a - b| over mean |a| of the prompt's rows of two logit dumps (generated rows
 * follow different tokens once greedy choices differ); -1 when sizes differ. */
static double rel_diff(const char *a, const char *b, size_t n_floats)
{
    size_t na, nb;
    float *x = test_read_file(a, &na), *y = test_read_file(b, &nb);
    double d = 0, m = 0;
    for (size_t i = 0; x && y && na >= 4 * n_floats && nb >= 4 * n_floats && i < n_floats; i++) {
        d += fabs((double)x[i] - y[i]);
        m += fabs((double)x[i]);
    }
    double r = x && y && m > 0 ? d / m : -1;
    free(x);
    free(y);
    return r;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MKMODEL REPACK STREAM_INFER\n", argv[0]);
        return 2;
    }
    const char *mk = argv[1], *rp = argv[2], *si = argv[3];
    const char *d = scratch_dir("engine");
    static const cfg cfgs[] = {
        {"q4k", "--dim 256 --layers 2 --heads 4 --kv-heads 2 --ff 512 --type Q4_K", "", "", false},
        {"q4k-zstd", "--dim 256 --layers 2 --heads 4 --kv-heads 2 --ff 512 --type Q4_K", "--zstd=3", "", false},
        {"f16-tied-rope", "--dim 64 --layers 3 --heads 4 --kv-heads 1 --ff 192 --type F16 --tied --rope-freqs",
         "--zstd=1 --min-saving 0", "", false},
        {"mix-slices", "--dim 256 --layers 2 --heads 2 --kv-heads 1 --ff 512 --type Q8_0 --tensor-type output=Q6_K "
                       "--tensor-type ffn_down=Q5_K --tensor-type attn_v=Q4_0",
         "--zstd=1 --min-saving 0 --chunk 8K --embd-chunk 1K", "-c 64 --mem-budget 600K", false},
        {"f32-raw-slices", "--dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 --type F32",
         "--chunk 4K --align 512", "-c 64 --mem-budget 600K", false},
        {"q2k-sorted", "--dim 256 --layers 2 --heads 4 --kv-heads 1 --ff 512 --type Q2_K --order sorted", "", "", false},
        {"requant", "--dim 256 --layers 2 --heads 4 --kv-heads 1 --ff 512 --type Q8_0 --tensor-type output=F16",
         "--requant output=Q4_K --requant attn_q=Q8_0 --requant ffn_up=Q4_K", "", true},
    };
    int fails = 0;
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        const cfg *c = &cfgs[i];
        if (!SI_HAVE_ZSTD && strstr(c->pack_opts, "zstd")) {
            printf("%s: no zstd in this build, skipped\n", c->name);
            continue;
        }
        char g[4400], p[4400], lg[4400], lp[4400], ig[4400], ip[4400];
        snprintf(g, sizeof g, "%s/%s.gguf", d, c->name);
        snprintf(p, sizeof p, "%s/%s.pack", d, c->name);
        snprintf(lg, sizeof lg, "%s/%s.gguf.logits", d, c->name);
        snprintf(lp, sizeof lp, "%s/%s.pack.logits", d, c->name);
        snprintf(ig, sizeof ig, "%s/%s.gguf.ids", d, c->name);
        snprintf(ip, sizeof ip, "%s/%s.pack.ids", d, c->name);
        CHECKF(sh("'%s' -o '%s' --seed %zu %s > /dev/null 2>&1", mk, g, 7 + i, c->mk) == 0, "%s: mkmodel", c->name);
        CHECKF(sh("'%s' '%s' '%s' --no-progress %s > '%s.log' 2>&1", rp, g, p, c->pack_opts, p) == 0,
               "%s: repack failed (see %s.log)", c->name, p);
        CHECKF(sh("'%s' --verify '%s' > /dev/null", rp, p) == 0, "%s: --verify", c->name);
        CHECKF(sh("'%s' --info '%s' | grep -q '^total'", rp, p) == 0, "%s: --info has no totals", c->name);
        const char *ids = "1 17 42 99 250 3 77 128 200 5";
        int r1 = sh("'%s' -m '%s' -q --prompt-ids '%s' -n 12 --temp 0 --print-ids --kv-type f32 %s --dump-logits '%s' "
                    "> '%s' 2>&1",
                    si, g, ids, c->run_opts, lg, ig);
        int r2 = sh("'%s' -m '%s' -q --prompt-ids '%s' -n 12 --temp 0 --print-ids --kv-type f32 %s --dump-logits '%s' "
                    "> '%s' 2>&1",
                    si, p, ids, c->run_opts, lp, ip);
        if (c->lossy) {
            double rd = rel_diff(lg, lp, 10 * 512); /* 10 prompt rows, mkmodel's 512 tokens */
            bool ok = r1 == 0 && r2 == 0 && rd >= 0 && rd < 0.15 &&
                      sh("'%s' --info '%s' | grep -q '^output.weight *Q4_K'", rp, p) == 0;
            printf("%-16s lossy requant: mean |diff| / mean |logit| = %.4f (< 0.15, seeded random weights)\n", c->name, rd);
            if (!ok) {
                fprintf(stderr, "FAIL %s: rc %d/%d, relative difference %.4f\n", c->name, r1, r2, rd);
                fails++;
            }
            continue;
        }
        bool ok = r1 == 0 && r2 == 0 && file_size(lg) > 0 && files_equal(lg, lp) && files_equal(ig, ip);
        printf("%-16s gguf rc %d, pack rc %d, %ld bytes of logits: %s\n", c->name, r1, r2, file_size(lg),
               ok ? "bit-identical" : "DIFFERENT");
        if (!ok) {
            fprintf(stderr, "FAIL %s: see %s and %s\n", c->name, ig, ip);
            fails++;
        }
    }
    return fails ? 1 : 0;
}
