/* Dequantize every weight of llama.cpp-quantized fixture models and compare with the F32
 * model they were made from. Quantization error is a few percent of the weights' RMS; a
 * wrong layout (nibble order, scale packing, sign) gives errors near 100%, so this checks
 * the block layouts against data written by llama.cpp itself. A minimal GGUF reader is
 * built in so the test does not depend on the format module. Skips without fixtures. */
#include <math.h>
#include <stdlib.h>

#include "streaminfer/types.h"
#include "../test_util.h"

typedef struct {
    const uint8_t *p, *end;
} cur;

static uint64_t rd(cur *c, int bytes)
{
    CHECKF(c->end - c->p >= bytes, "GGUF truncated");
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)c->p[i] << (8 * i);
    c->p += bytes;
    return v;
}

static void skip(cur *c, uint64_t n)
{
    CHECKF((uint64_t)(c->end - c->p) >= n, "GGUF truncated");
    c->p += n;
}

static void skip_value(cur *c, uint32_t type)
{
    static const int size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    CHECKF(type <= 12, "GGUF value type %u", type);
    if (type == 8) {
        skip(c, rd(c, 8));
    } else if (type == 9) {
        uint32_t et = (uint32_t)rd(c, 4);
        uint64_t n = rd(c, 8);
        for (uint64_t i = 0; i < n; i++)
            skip_value(c, et);
    } else {
        skip(c, (uint64_t)size[type]);
    }
}

typedef struct {
    char name[96];
    uint32_t type;
    int64_t nel;
    const uint8_t *data;
} tensor;

typedef struct {
    uint8_t *buf;
    size_t n_tensors;
    tensor *t;
} model;

static int load(model *m, const char *path)
{
    size_t len;
    m->buf = test_read_file(path, &len);
    if (!m->buf)
        return 0;
    cur c = {m->buf, m->buf + len};
    CHECKF(rd(&c, 4) == 0x46554747u, "%s: not GGUF", path);
    CHECKF(rd(&c, 4) == 3, "%s: not GGUF v3", path);
    m->n_tensors = rd(&c, 8);
    uint64_t n_kv = rd(&c, 8);
    uint64_t align = 32;
    for (uint64_t i = 0; i < n_kv; i++) {
        uint64_t kl = rd(&c, 8);
        const uint8_t *key = c.p;
        skip(&c, kl);
        uint32_t vt = (uint32_t)rd(&c, 4);
        if (vt == 4 && kl == 17 && memcmp(key, "general.alignment", 17) == 0)
            align = rd(&c, 4);
        else
            skip_value(&c, vt);
    }
    m->t = calloc(m->n_tensors, sizeof *m->t);
    uint64_t *off = calloc(m->n_tensors, sizeof *off);
    CHECK(m->t && off);
    for (size_t i = 0; i < m->n_tensors; i++) {
        uint64_t nl = rd(&c, 8);
        CHECK(nl < sizeof m->t[i].name);
        memcpy(m->t[i].name, c.p, nl);
        skip(&c, nl);
        uint32_t nd = (uint32_t)rd(&c, 4);
        m->t[i].nel = 1;
        for (uint32_t d = 0; d < nd; d++)
            m->t[i].nel *= (int64_t)rd(&c, 8);
        m->t[i].type = (uint32_t)rd(&c, 4);
        off[i] = rd(&c, 8);
    }
    size_t data = (size_t)(c.p - m->buf);
    data = (data + align - 1) / align * align;
    for (size_t i = 0; i < m->n_tensors; i++) {
        size_t bytes = si_row_size(m->t[i].type, m->t[i].nel);
        CHECKF(bytes > 0 && data + off[i] + bytes <= len, "%s: tensor %s out of file", path,
               m->t[i].name);
        m->t[i].data = m->buf + data + off[i];
    }
    free(off);
    return 1;
}

static const tensor *find(const model *m, const char *name)
{
    for (size_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->t[i].name, name) == 0)
            return &m->t[i];
    return NULL;
}

/* Largest relative RMS error accepted per weight type: well above what llama.cpp's
 * quantizers reach on these random weights, far below the ~1.0 of a layout bug. */
static double bound(uint32_t type)
{
    switch (type) {
    case SI_TYPE_F32: return 0.0;
    case SI_TYPE_F16: return 1e-3;
    case SI_TYPE_Q8_0: return 0.02;
    case SI_TYPE_Q6_K: return 0.04;
    case SI_TYPE_Q5_K: return 0.08;
    case SI_TYPE_Q4_K: return 0.15;
    case SI_TYPE_Q4_0: return 0.2;
    case SI_TYPE_Q3_K: return 0.3;
    case SI_TYPE_Q2_K: return 0.5;
    default: return -1;
    }
}

int main(void)
{
    const char *fx = getenv("SI_FIXTURES");
    if (!fx) {
        fprintf(stderr, "SKIP: SI_FIXTURES not set\n");
        return TEST_SKIP;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/micro-llama3/F32.gguf", fx);
    model src;
    if (!load(&src, path)) {
        fprintf(stderr, "SKIP: %s missing\n", path);
        return TEST_SKIP;
    }
    const char *names[] = {"Q8_0", "Q4_0", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"};
    int seen[SI_TYPE_COUNT] = {0};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        snprintf(path, sizeof path, "%s/micro-llama3/%s.gguf", fx, names[k]);
        model q;
        CHECKF(load(&q, path), "%s missing", path);
        for (size_t i = 0; i < q.n_tensors; i++) {
            const tensor *t = &q.t[i];
            const si_type_traits *tr = si_type_get(t->type);
            CHECKF(tr && tr->compute, "%s: %s has type %u", names[k], t->name, t->type);
            const tensor *s = find(&src, t->name);
            CHECKF(s && s->type == SI_TYPE_F32 && s->nel == t->nel, "%s: %s not in F32 source",
                   names[k], t->name);
            float *w = malloc((size_t)t->nel * sizeof *w);
            CHECK(w);
            tr->to_float(t->data, w, t->nel);
            double err2 = 0, ref2 = 0;
            for (int64_t j = 0; j < t->nel; j++) {
                float r;
                memcpy(&r, s->data + 4 * j, 4);
                CHECKF(isfinite(w[j]), "%s: %s[%lld] not finite", names[k], t->name, (long long)j);
                err2 += ((double)w[j] - r) * ((double)w[j] - r);
                ref2 += (double)r * r;
            }
            double rel = ref2 > 0 ? sqrt(err2 / ref2) : sqrt(err2);
            CHECKF(rel <= bound(t->type), "%s: %s (%s) relative RMS error %.4f > %.4f", names[k],
                   t->name, tr->name, rel, bound(t->type));
            if (getenv("SI_TEST_VERBOSE"))
                printf("%-7s %-28s %-5s rel rms %.5f\n", names[k], t->name, tr->name, rel);
            seen[t->type] = 1;
            free(w);
        }
        free(q.t);
        free(q.buf);
    }
    const uint32_t need[] = {SI_TYPE_Q8_0, SI_TYPE_Q4_0, SI_TYPE_Q2_K, SI_TYPE_Q3_K,
                             SI_TYPE_Q4_K, SI_TYPE_Q5_K, SI_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        CHECKF(seen[need[i]], "no %s tensor met in the fixtures", si_type_name(need[i]));
    free(src.t);
    free(src.buf);
    printf("ok\n");
    return 0;
}
