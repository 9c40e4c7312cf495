/* mkmodel --preset: the tensor list and tensor data bytes of each full-size preset,
 * computed with --dry-run (nothing written; the real files are several GB), against
 * the shapes and type mixes of the real models and the byte totals of the issue:
 * llama3-8b-q2_k 3,171,295,232 bytes (Meta-Llama-3-8B.Q2_K.gguf), llama3-8b-q4_0
 * 4,653,375,488. Also: --dry-run's "file bytes" equals the size of a file really
 * written (small shape), and bad preset combinations are refused.
 * argv[1] is the mkmodel executable (meson passes it). */
#include "fmt_util.h"

#include <sys/stat.h>
#include <sys/wait.h>

static const char *mkmodel;

typedef struct trow {
    char name[64], type[16];
    uint64_t ne0, ne1, bytes;
} trow;

typedef struct listing {
    trow t[1024];
    int n;
    int n_declared;
    uint64_t data_bytes, file_bytes;
} listing;

/* Run mkmodel --dry-run with args; parse its listing. Returns the exit status. */
static int dry(const char *args, listing *l, char **err_text)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' --dry-run %s 2>'%s'", mkmodel, args, fmt_path("presets.log"));
    FILE *p = popen(cmd, "r");
    CHECKF(p, "popen %s", cmd);
    memset(l, 0, sizeof *l);
    char line[512];
    while (fgets(line, sizeof line, p)) {
        trow r = {0};
        unsigned long long a, b, c;
        if (sscanf(line, "tensor %63s %15s %llu x %llu %llu bytes", r.name, r.type, &a, &b, &c) == 5) {
            r.ne0 = a, r.ne1 = b, r.bytes = c;
        } else if (sscanf(line, "tensor %63s %15s %llu %llu bytes", r.name, r.type, &a, &c) == 4) {
            r.ne0 = a, r.ne1 = 1, r.bytes = c;
        } else if (sscanf(line, "tensors %d", &l->n_declared) == 1) {
            continue;
        } else if (sscanf(line, "tensor data bytes %llu", &a) == 1) {
            l->data_bytes = a;
            continue;
        } else if (sscanf(line, "file bytes %llu", &a) == 1) {
            l->file_bytes = a;
            continue;
        } else {
            continue;
        }
        CHECKF(l->n < 1024, "too many tensors");
        l->t[l->n++] = r;
    }
    int st = pclose(p);
    if (err_text) {
        char *s = test_read_file(fmt_path("presets.log"), NULL);
        *err_text = s ? s : strdup("");
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static const trow *find(const listing *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->t[i].name, name))
            return &l->t[i];
    return NULL;
}

static uint32_t type_id(const char *name)
{
    for (uint32_t t = 0; t < SI_TYPE_COUNT; t++) {
        const si_type_traits *tt = si_type_get(t);
        if (tt && !strcasecmp(tt->name, name))
            return t;
    }
    FAILF("unknown type %s", name);
}

/* Expected shapes of a Llama model; types per kind (NULL: tied, no output.weight). */
typedef struct shape {
    uint64_t dim, layers, heads, kv_heads, ff, vocab;
    bool rope_freqs;
    const char *embd, *output, *q, *k, *v, *o, *gate, *up, *down;
} shape;

static void check_tensor(const listing *l, const char *name, const char *type, uint64_t ne0, uint64_t ne1,
                         uint64_t *sum)
{
    const trow *r = find(l, name);
    CHECKF(r, "no tensor %s", name);
    CHECKF(!strcasecmp(r->type, type), "%s: type %s, expected %s", name, r->type, type);
    CHECKF(r->ne0 == ne0 && r->ne1 == ne1, "%s: shape %llu x %llu, expected %llu x %llu", name,
           (unsigned long long)r->ne0, (unsigned long long)r->ne1, (unsigned long long)ne0,
           (unsigned long long)ne1);
    /* The size computed here from the type's block layout, not mkmodel's. */
    const si_type_traits *tt = si_type_get(type_id(type));
    uint64_t want = ne0 / (uint64_t)tt->blck_size * tt->type_size * ne1;
    CHECKF(r->bytes == want, "%s: %llu bytes, expected %llu", name, (unsigned long long)r->bytes,
           (unsigned long long)want);
    *sum += want;
}

static uint64_t check_shape(const char *what, const listing *l, const shape *s)
{
    uint64_t sum = 0, hd = s->dim / s->heads, kvd = s->kv_heads * hd;
    char nm[64];
    check_tensor(l, "token_embd.weight", s->embd, s->dim, s->vocab, &sum);
    check_tensor(l, "output_norm.weight", "F32", s->dim, 1, &sum);
    if (s->output)
        check_tensor(l, "output.weight", s->output, s->dim, s->vocab, &sum);
    else
        CHECKF(!find(l, "output.weight"), "%s: tied preset has output.weight", what);
    if (s->rope_freqs)
        check_tensor(l, "rope_freqs.weight", "F32", hd / 2, 1, &sum);
    else
        CHECKF(!find(l, "rope_freqs.weight"), "%s: unexpected rope_freqs.weight", what);
    for (uint64_t b = 0; b < s->layers; b++) {
#define T(suffix, type, a, c) (snprintf(nm, sizeof nm, "blk.%llu." suffix, (unsigned long long)b), \
                               check_tensor(l, nm, type, a, c, &sum))
        T("attn_norm.weight", "F32", s->dim, 1);
        T("ffn_norm.weight", "F32", s->dim, 1);
        T("attn_q.weight", s->q, s->dim, s->dim);
        T("attn_k.weight", s->k, s->dim, kvd);
        T("attn_v.weight", s->v, s->dim, kvd);
        T("attn_output.weight", s->o, s->dim, s->dim);
        T("ffn_gate.weight", s->gate, s->dim, s->ff);
        T("ffn_up.weight", s->up, s->dim, s->ff);
        T("ffn_down.weight", s->down, s->ff, s->dim);
#undef T
    }
    int want_n = (int)(2 + (s->output ? 1 : 0) + (s->rope_freqs ? 1 : 0) + 9 * s->layers);
    CHECKF(l->n == want_n && l->n_declared == want_n, "%s: %d tensors listed (%d declared), expected %d", what,
           l->n, l->n_declared, want_n);
    CHECKF(l->data_bytes == sum, "%s: mkmodel says %llu bytes of tensor data, the shapes give %llu", what,
           (unsigned long long)l->data_bytes, (unsigned long long)sum);
    CHECKF(l->file_bytes > sum, "%s: file bytes %llu", what, (unsigned long long)l->file_bytes);
    return sum;
}

int main(int argc, char **argv)
{
    CHECKF(argc > 1, "usage: test_presets PATH-TO-MKMODEL");
    mkmodel = argv[1];
    listing *l = malloc(sizeof *l);
    CHECK(l);
    char *log = NULL;

    /* Meta-Llama-3-8B.Q2_K.gguf */
    CHECKF(dry("--preset llama3-8b-q2_k", l, &log) == 0, "llama3-8b-q2_k: %s", log);
    free(log);
    shape q2k = {4096, 32, 32, 8, 14336, 128256, false,
                 "Q2_K", "Q6_K", "Q2_K", "Q2_K", "Q4_K", "Q3_K", "Q2_K", "Q2_K", "Q3_K"};
    CHECK_EQ_INT(check_shape("llama3-8b-q2_k", l, &q2k), 3171295232ll);
    /* --ctx applies to a preset (a Llama 3.1-style trained context): same tensors */
    CHECKF(dry("--preset llama3-8b-q2_k --ctx 131072", l, &log) == 0, "llama3-8b-q2_k --ctx 131072: %s", log);
    free(log);
    CHECK_EQ_INT(check_shape("llama3-8b-q2_k --ctx 131072", l, &q2k), 3171295232ll);

    shape q40 = {4096, 32, 32, 8, 14336, 128256, false,
                 "Q4_0", "Q6_K", "Q4_0", "Q4_0", "Q4_0", "Q4_0", "Q4_0", "Q4_0", "Q4_0"};
    CHECKF(dry("--preset llama3-8b-q4_0", l, &log) == 0, "llama3-8b-q4_0: %s", log);
    free(log);
    CHECK_EQ_INT(check_shape("llama3-8b-q4_0", l, &q40), 4653375488ll);

    /* Llama 3.2: tied classifier, rope_freqs, any type. */
    shape b1 = {2048, 16, 32, 8, 8192, 128256, true,
                "Q4_0", NULL, "Q4_0", "Q4_0", "Q4_0", "Q4_0", "Q4_0", "Q4_0", "Q4_0"};
    CHECKF(dry("--preset llama3.2-1b --type Q4_0", l, &log) == 0, "llama3.2-1b: %s", log);
    free(log);
    check_shape("llama3.2-1b Q4_0", l, &b1);
    shape b3 = {3072, 28, 24, 8, 8192, 128256, true,
                "Q8_0", NULL, "Q8_0", "Q8_0", "Q8_0", "Q8_0", "Q8_0", "Q8_0", "Q8_0"};
    CHECKF(dry("--preset llama3.2-3b --type q8_0", l, &log) == 0, "llama3.2-3b: %s", log);
    free(log);
    check_shape("llama3.2-3b Q8_0", l, &b3);
    /* --tensor-type applies on top of a preset's mix */
    shape b3k = {3072, 28, 24, 8, 8192, 128256, true,
                 "Q6_K", NULL, "Q4_K", "Q4_K", "Q4_K", "Q4_K", "Q4_K", "Q4_K", "Q4_K"};
    CHECKF(dry("--preset llama3.2-3b --type Q4_K --tensor-type token_embd=Q6_K", l, &log) == 0, "%s", log);
    free(log);
    check_shape("llama3.2-3b Q4_K", l, &b3k);

    /* With the real Llama 3 vocabulary (same size): the header grows, the data not. */
    const char *fx = getenv("SI_FIXTURES");
    char vocab[1024];
    snprintf(vocab, sizeof vocab, "%s/tokenizer/llama3-vocab.gguf", fx ? fx : "../shared/fixtures");
    struct stat sb;
    if (stat(vocab, &sb) == 0) {
        char a[1200];
        snprintf(a, sizeof a, "--preset llama3-8b-q2_k --vocab '%s'", vocab);
        CHECKF(dry(a, l, &log) == 0, "with --vocab: %s", log);
        free(log);
        CHECK_EQ_INT(check_shape("llama3-8b-q2_k --vocab", l, &q2k), 3171295232ll);
    } else {
        fprintf(stderr, "note: %s absent; --vocab case skipped\n", vocab);
    }

    /* --dry-run's file size is the size really written (a small model). */
    const char *small = "--dim 512 --layers 2 --heads 8 --kv-heads 2 --ff 1024 --type Q4_K "
                        "--tensor-type ffn_down=Q6_K --rope-freqs";
    CHECKF(dry(small, l, &log) == 0, "small: %s", log);
    free(log);
    uint64_t want_file = l->file_bytes;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s -o '%s' 2>'%s'", mkmodel, small, fmt_path("small.gguf"),
             fmt_path("presets.log"));
    CHECKF(system(cmd) == 0, "%s failed", cmd);
    CHECK(stat(fmt_path("small.gguf"), &sb) == 0);
    CHECKF((uint64_t)sb.st_size == want_file, "--dry-run says %llu file bytes, wrote %lld",
           (unsigned long long)want_file, (long long)sb.st_size);
    si_gguf *g = fmt_open_ok(fmt_path("small.gguf"), "small");
    uint64_t sum = 0;
    for (uint64_t i = 0; i < si_gguf_n_tensors(g); i++)
        sum += si_gguf_tensor_at(g, i)->size;
    CHECKF(sum == l->data_bytes, "tensor bytes in the file %llu, --dry-run %llu", (unsigned long long)sum,
           (unsigned long long)l->data_bytes);
    si_gguf_close(g);

    /* Refusals */
    struct { const char *args, *want; } bad[] = {
        {"--preset llama3-8b-q5", "unknown preset"},
        {"--preset llama3.2-1b", "needs --type"},
        {"--preset llama3-8b-q2_k --type Q4_0", "fixed type mix"},
        {"--preset llama3-8b-q2_k --dim 1024", "--dim is not allowed"},
        {"--preset llama3.2-3b --type Q4_0 --layers 2", "--layers is not allowed"},
        {"--preset llama3-8b-q4_0 --vocab-size 512", "disagrees"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = dry(bad[i].args, l, &log);
        CHECKF(rc != 0, "%s accepted", bad[i].args);
        CHECKF(strstr(log, bad[i].want), "%s: message lacks '%s': %s", bad[i].args, bad[i].want, log);
        free(log);
    }
    free(l);
    fmt_rmdir();
    return 0;
}
