/* The weight quantizers of repack --requant: on random data the round trip stays within
 * the type's resolution (runs everywhere); on the fixtures, quantizing micro-llama3's
 * F32 weights gives exactly the bytes llama.cpp's quantizer wrote into Q8_0.gguf and
 * into the Q4_K tensors of Q4_K_M.gguf (reference algorithms, no importance matrix). */
#include "pack_test.h"

#include <math.h>
#include <fcntl.h>
#include <unistd.h>

#include "streaminfer/gguf.h"
#include "streaminfer/quant.h"
#include "streaminfer/types.h"

static void *read_tensor(const char *path, const char *name, uint32_t *type, uint64_t *size)
{
    si_gguf *g;
    si_error e;
    CHECKF(si_gguf_open(&g, path, &e) == SI_OK, "%s", e.msg);
    const si_gguf_tensor *t = si_gguf_find_tensor(g, name);
    CHECKF(t, "%s: no %s", path, name);
    *type = t->type;
    *size = t->size;
    void *buf = malloc((size_t)t->size);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, buf, (size_t)t->size, (off_t)t->offset) == (ssize_t)t->size);
    close(fd);
    si_gguf_close(g);
    return buf;
}

int main(void)
{
    /* Round trip on random rows. */
    test_rng rng;
    test_rng_seed(&rng, 5);
    enum { N = 4096 };
    static float x[N], y[N];
    static uint8_t q[N * 2];
    uint32_t types[] = {SI_TYPE_Q8_0, SI_TYPE_Q4_K};
    double bound[] = {1.0 / 127, 1.0 / 15 * 1.3}; /* of each block's range, roughly */
    for (int k = 0; k < 2; k++) {
        CHECK(si_can_quantize(types[k]));
        double worst = 0;
        for (int it = 0; it < 20; it++) {
            double amp = test_rng_range(&rng, 1e-3, 10);
            for (int i = 0; i < N; i++)
                x[i] = (float)(test_rng_range(&rng, -1, 1) * amp * (it % 2 ? 1 : fabs(sin(i * 0.01))));
            si_quantize_row(types[k], x, q, N);
            si_type_get(types[k])->to_float(q, y, N);
            for (int i = 0; i < N; i++)
                worst = fmax(worst, fabs(x[i] - y[i]) / (2 * amp));
        }
        printf("%s round trip: worst error %.4f of the range (bound %.4f)\n", si_type_name(types[k]), worst, bound[k]);
        CHECKF(worst <= bound[k], "%s: error %.4f", si_type_name(types[k]), worst);
    }

    const char *fx = getenv("SI_FIXTURES");
    char f32[4200], other[4200];
    snprintf(f32, sizeof f32, "%s/micro-llama3/F32.gguf", fx ? fx : "");
    if (!fx || file_size(f32) <= 0) {
        /* The round trip above is the part that runs everywhere. */
        printf("fixtures not found at %s, skipping the comparison with llama.cpp's quantizer\n", f32);
        return 0;
    }
    struct {
        const char *file, *tensor;
    } cases[] = {{"Q8_0", "blk.0.attn_q.weight"}, {"Q8_0", "blk.3.ffn_down.weight"}, {"Q8_0", "output.weight"},
                 {"Q4_K_M", "blk.0.attn_q.weight"}, {"Q4_K_M", "blk.1.ffn_gate.weight"},
                 {"Q4_K_M", "blk.2.ffn_up.weight"}, {"Q4_K_M", "blk.3.attn_output.weight"}};
    int matched = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        snprintf(other, sizeof other, "%s/micro-llama3/%s.gguf", fx, cases[c].file);
        uint32_t tf, tq;
        uint64_t sf, sq;
        float *w = read_tensor(f32, cases[c].tensor, &tf, &sf);
        uint8_t *ref = read_tensor(other, cases[c].tensor, &tq, &sq);
        CHECK(tf == SI_TYPE_F32);
        if (!si_can_quantize(tq) || tq == SI_TYPE_F32) {
            printf("%s %s is %s: not compared\n", cases[c].file, cases[c].tensor, si_type_name(tq));
            free(w);
            free(ref);
            continue;
        }
        uint8_t *mine = malloc((size_t)sq);
        si_quantize_row(tq, w, mine, (int64_t)(sf / 4));
        uint64_t diff = 0;
        for (uint64_t i = 0; i < sq; i++)
            diff += mine[i] != ref[i];
        printf("%-6s %-26s %s: %" PRIu64 " of %" PRIu64 " bytes differ from llama.cpp's\n", cases[c].file,
               cases[c].tensor, si_type_name(tq), diff, sq);
        CHECKF(diff == 0, "%s %s differs", cases[c].file, cases[c].tensor);
        matched++;
        free(mine);
        free(w);
        free(ref);
    }
    CHECK(matched >= 4);
    return 0;
}
