/* mkmodel: models made with several option sets open with the expected tensors,
 * shapes, types and keys; the same seed gives byte-identical files; --order sorted and
 * compute give the same tensor bytes at different offsets; bad options are refused.
 * argv[1] is the mkmodel executable (meson passes it). */
#include "fmt_util.h"

#include <math.h>
#include <sys/wait.h>

static const char *mkmodel;

/* Run mkmodel with args (a space-separated string, no quoting needed); returns its
 * exit status. stderr goes to `log` in the scratch dir. */
static int run(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s'", mkmodel, args, fmt_path("mkmodel.log"));
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char *log_text(void)
{
    char *s = test_read_file(fmt_path("mkmodel.log"), NULL);
    return s ? s : strdup("");
}

static void make(const char *out, const char *args)
{
    char a[3000];
    snprintf(a, sizeof a, "-o '%s' %s", out, args);
    int rc = run(a);
    if (rc != 0) {
        char *l = log_text();
        FAILF("mkmodel %s -> %d: %s", args, rc, l);
    }
    char *l = log_text();
    CHECKF(strstr(l, "tensors") && strstr(l, out), "no summary line: %s", l);
    free(l);
}

static void refused(const char *args, const char *want)
{
    char a[3000];
    snprintf(a, sizeof a, "-o '%s' %s", fmt_path("bad.gguf"), args);
    int rc = run(a);
    char *l = log_text();
    CHECKF(rc != 0, "mkmodel %s succeeded", args);
    CHECKF(strstr(l, want), "mkmodel %s: message lacks '%s': %s", args, want, l);
    free(l);
}

static uint32_t key_u32(const si_gguf *g, const char *k)
{
    uint32_t v = 0;
    si_error e;
    CHECKF(si_gguf_get_u32(g, k, &v, &e) == 0, "%s", e.msg);
    return v;
}

static void expect_tensor(const si_gguf *g, const char *name, uint64_t ne0, uint64_t ne1, uint32_t type)
{
    const si_gguf_tensor *t = si_gguf_find_tensor(g, name);
    CHECKF(t != NULL, "missing tensor %s", name);
    CHECKF(t->ne[0] == ne0 && t->ne[1] == (ne1 ? ne1 : 1) && t->n_dims == (ne1 ? 2u : 1u),
           "%s: shape %llux%llu, expected %llux%llu", name, (unsigned long long)t->ne[0],
           (unsigned long long)t->ne[1], (unsigned long long)ne0, (unsigned long long)ne1);
    CHECKF(t->type == type, "%s: type %s, expected %s", name, si_type_name(t->type), si_type_name(type));
}

/* Check the whole tensor set of a model with these shapes. */
static void check_model(const si_gguf *g, uint32_t dim, uint32_t layers, uint32_t heads,
                        uint32_t kvh, uint32_t hd, uint32_t ff, uint32_t vocab, uint32_t type,
                        uint32_t v_type, bool tied)
{
    const char *arch;
    si_error e;
    CHECK(si_gguf_get_str(g, "general.architecture", &arch, NULL, &e) == 0);
    CHECK_EQ_STR(arch, "llama");
    CHECK_EQ_INT(key_u32(g, "llama.embedding_length"), dim);
    CHECK_EQ_INT(key_u32(g, "llama.block_count"), layers);
    CHECK_EQ_INT(key_u32(g, "llama.attention.head_count"), heads);
    CHECK_EQ_INT(key_u32(g, "llama.attention.head_count_kv"), kvh);
    CHECK_EQ_INT(key_u32(g, "llama.feed_forward_length"), ff);
    CHECK_EQ_INT(key_u32(g, "llama.rope.dimension_count"), hd);
    CHECK_EQ_INT(key_u32(g, "llama.vocab_size"), vocab);
    CHECK(key_u32(g, "llama.context_length") > 0);
    float f;
    CHECK(si_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f, &e) == 0 && f > 0);
    CHECK(si_gguf_get_f32(g, "llama.rope.freq_base", &f, &e) == 0 && f > 0);
    bool has_kl = si_gguf_find_key(g, "llama.attention.key_length") >= 0;
    CHECK(has_kl == (hd * heads != dim));
    if (has_kl)
        CHECK_EQ_INT(key_u32(g, "llama.attention.key_length"), hd);
    int64_t ki;
    uint64_t n;
    CHECK(si_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &ki, &n, &e) == 0 && n == vocab);

    expect_tensor(g, "token_embd.weight", dim, vocab, type);
    char nm[64];
    for (uint32_t l = 0; l < layers; l++) {
#define T(s, a, b, ty) (snprintf(nm, sizeof nm, "blk.%u." s, l), expect_tensor(g, nm, a, b, ty))
        T("attn_norm.weight", dim, 0, SI_TYPE_F32);
        T("attn_q.weight", dim, heads * hd, type);
        T("attn_k.weight", dim, kvh * hd, type);
        T("attn_v.weight", dim, kvh * hd, v_type);
        T("attn_output.weight", heads * hd, dim, type);
        T("ffn_norm.weight", dim, 0, SI_TYPE_F32);
        T("ffn_gate.weight", dim, ff, type);
        T("ffn_up.weight", dim, ff, type);
        T("ffn_down.weight", ff, dim, type);
#undef T
    }
    expect_tensor(g, "output_norm.weight", dim, 0, SI_TYPE_F32);
    CHECK((si_gguf_find_tensor(g, "output.weight") == NULL) == tied);
    if (!tied)
        expect_tensor(g, "output.weight", dim, vocab, type);
}

/* Dequantize a whole tensor and check its values are finite and of sane scale. */
static void check_values(const si_gguf *g, const char *name, double lo_rms, double hi_rms)
{
    const si_gguf_tensor *t = si_gguf_find_tensor(g, name);
    const si_type_traits *tt = si_type_get(t->type);
    if (!tt->to_float)
        return;
    uint8_t *raw = malloc(t->size);
    int fd = open(si_gguf_path(g), O_RDONLY);
    CHECK(pread(fd, raw, t->size, (off_t)t->offset) == (ssize_t)t->size);
    close(fd);
    uint64_t n = t->ne[0] * t->ne[1];
    float *x = malloc(n * sizeof *x);
    tt->to_float(raw, x, (int64_t)n);
    double ss = 0;
    for (uint64_t i = 0; i < n; i++) {
        CHECKF(isfinite(x[i]), "%s: value %llu not finite", name, (unsigned long long)i);
        ss += (double)x[i] * x[i];
    }
    double rms = sqrt(ss / (double)n);
    CHECKF(rms >= lo_rms && rms <= hi_rms, "%s (%s): rms %g not in [%g, %g]", name, tt->name, rms, lo_rms, hi_rms);
    free(raw);
    free(x);
}

static bool same_file(const char *a, const char *b)
{
    size_t na, nb;
    uint8_t *pa = test_read_file(a, &na), *pb = test_read_file(b, &nb);
    bool same = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return same;
}

static void read_tensor(const si_gguf *g, const si_gguf_tensor *t, uint8_t *dst)
{
    int fd = open(si_gguf_path(g), O_RDONLY);
    CHECK(pread(fd, dst, t->size, (off_t)t->offset) == (ssize_t)t->size);
    close(fd);
}

int main(int argc, char **argv)
{
    CHECKF(argc > 1, "usage: test_mkmodel PATH-TO-MKMODEL");
    mkmodel = argv[1];
    char *a = fmt_path("a.gguf"), *b = fmt_path("b.gguf"), *c = fmt_path("c.gguf");

    /* defaults: the micro-llama3 shape in F32 */
    make(a, "");
    si_gguf *g = fmt_open_ok(a, "defaults");
    check_model(g, 256, 4, 4, 1, 64, 768, 512, SI_TYPE_F32, SI_TYPE_F32, false);
    CHECK_EQ_INT(si_gguf_n_tensors(g), 39);
    const char *s;
    si_error e;
    CHECK(si_gguf_get_str(g, "tokenizer.ggml.model", &s, NULL, &e) == 0);
    CHECK_EQ_STR(s, "gpt2");
    CHECK(si_gguf_get_str(g, "tokenizer.ggml.pre", &s, NULL, &e) == 0);
    CHECK_EQ_STR(s, "llama-bpe");
    int64_t ki;
    uint64_t n;
    CHECK(si_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &ki, &n, &e) == 0);
    CHECK_EQ_STR(si_gguf_arr_str(g, (uint64_t)ki, 'A', NULL), "A");
    CHECK_EQ_STR(si_gguf_arr_str(g, (uint64_t)ki, ' ', NULL), "\xC4\xA0");  /* U+0120 */
    CHECK_EQ_STR(si_gguf_arr_str(g, (uint64_t)ki, '\n', NULL), "\xC4\x8A"); /* U+010A */
    CHECK_EQ_STR(si_gguf_arr_str(g, (uint64_t)ki, 256, NULL), "<|begin_of_text|>");
    CHECK_EQ_STR(si_gguf_arr_str(g, (uint64_t)ki, 260, NULL), "<|eot_id|>");
    CHECK_EQ_STR(si_gguf_arr_str(g, (uint64_t)ki, 511, NULL), "<|reserved_special_token_250|>");
    si_gguf_vtype et;
    const void *d;
    CHECK(si_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &n, &d, &e) == 0 && n == 512);
    CHECK(((const int32_t *)d)[65] == 1 && ((const int32_t *)d)[257] == 3);
    CHECK(si_gguf_get_arr_str(g, "tokenizer.ggml.merges", &ki, &n, &e) == 0 && n == 0);
    CHECK_EQ_INT(key_u32(g, "tokenizer.ggml.bos_token_id"), 256);
    bool bos;
    CHECK(si_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &bos, &e) == 0 && bos);
    check_values(g, "blk.0.attn_q.weight", 0.04, 0.09);
    check_values(g, "blk.1.ffn_norm.weight", 0.9, 1.1);
    si_gguf_close(g);

    /* same seed, same bytes; another seed differs */
    make(b, "");
    CHECK(same_file(a, b));
    make(b, "--seed 2");
    CHECK(!same_file(a, b));

    /* every generatable type opens with sane dequantized values */
    const char *types[] = {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
                           "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        char args[200];
        snprintf(args, sizeof args, "--layers 1 --type %s", types[i]);
        make(c, args);
        g = fmt_open_ok(c, types[i]);
        uint32_t ty = si_gguf_find_tensor(g, "blk.0.attn_q.weight")->type;
        CHECK_EQ_STR(si_type_name(ty), types[i]);
        check_model(g, 256, 1, 4, 1, 64, 768, 512, ty, ty, false);
        /* target std 1/16 = 0.0625; allow for the coarse estimate per type */
        check_values(g, "blk.0.attn_q.weight", 0.03, 0.13);
        check_values(g, "blk.0.ffn_down.weight", 0.015, 0.07);
        si_gguf_close(g);
    }

    /* a Llama-3-8B-like mix, GQA, explicit head dim, tied, rope freqs, sorted order */
    make(a, "--dim 512 --layers 2 --heads 8 --kv-heads 2 --head-dim 128 --ff 1024 --vocab-size 300 "
            "--type Q2_K --tensor-type attn_v=Q4_K --tensor-type ffn_down=Q3_K --tensor-type attn_output=Q3_K "
            "--tied --rope-freqs --seed 7 --ctx 8192 --rope-base 10000 --eps 1e-6");
    g = fmt_open_ok(a, "mix");
    /* check_model with the common type; then the overrides */
    CHECK_EQ_INT(key_u32(g, "llama.attention.key_length"), 128);
    CHECK_EQ_INT(key_u32(g, "llama.context_length"), 8192);
    expect_tensor(g, "blk.1.attn_v.weight", 512, 256, SI_TYPE_Q4_K);
    expect_tensor(g, "blk.1.ffn_down.weight", 1024, 512, SI_TYPE_Q3_K);
    expect_tensor(g, "blk.0.attn_output.weight", 1024, 512, SI_TYPE_Q3_K);
    expect_tensor(g, "blk.0.attn_q.weight", 512, 1024, SI_TYPE_Q2_K);
    expect_tensor(g, "rope_freqs.weight", 64, 0, SI_TYPE_F32);
    CHECK(si_gguf_find_tensor(g, "output.weight") == NULL);
    CHECK_EQ_INT(si_gguf_n_tensors(g), 1 + 1 + 2 * 9 + 1);
    {
        const si_gguf_tensor *t = si_gguf_find_tensor(g, "rope_freqs.weight");
        float fr[64];
        read_tensor(g, t, (uint8_t *)fr);
        CHECK(fr[0] == 1.0f && fr[63] == 8.0f);
        for (int i = 1; i < 64; i++)
            CHECK(fr[i] >= fr[i - 1] && fr[i] >= 1.0f && fr[i] <= 8.0f);
    }
    si_gguf_close(g);

    /* --order: same tensors, same bytes, different offsets */
    make(a, "--layers 11 --ff 256 --type Q4_0 --tensor-type output=Q6_K");
    make(b, "--layers 11 --ff 256 --type Q4_0 --tensor-type output=Q6_K --order sorted");
    si_gguf *ga = fmt_open_ok(a, "compute order"), *gb = fmt_open_ok(b, "sorted order");
    CHECK(si_gguf_n_tensors(ga) == si_gguf_n_tensors(gb));
    CHECK(si_gguf_file_size(ga) == si_gguf_file_size(gb));
    CHECK_EQ_STR(si_gguf_tensor_at(ga, 0)->name, "token_embd.weight");
    CHECK_EQ_STR(si_gguf_tensor_at(ga, si_gguf_n_tensors(ga) - 1)->name, "output.weight");
    int moved = 0;
    for (uint64_t i = 0; i < si_gguf_n_tensors(gb); i++) {
        const si_gguf_tensor *tb = si_gguf_tensor_at(gb, i), *ta = si_gguf_find_tensor(ga, tb->name);
        CHECK(ta && ta->type == tb->type && ta->size == tb->size && ta->ne[0] == tb->ne[0]);
        if (i > 0) { /* llama.cpp quantizer order: non-layer first, then by layer, then name */
            const char *pn = si_gguf_tensor_at(gb, i - 1)->name;
            long lp = strncmp(pn, "blk.", 4) ? -1 : atol(pn + 4);
            long lc = strncmp(tb->name, "blk.", 4) ? -1 : atol(tb->name + 4);
            CHECK(lp < lc || (lp == lc && strcmp(pn, tb->name) < 0));
        }
        moved += ta->offset != tb->offset;
        uint8_t *x = malloc(ta->size), *y = malloc(tb->size);
        read_tensor(ga, ta, x);
        read_tensor(gb, tb, y);
        CHECKF(memcmp(x, y, ta->size) == 0, "%s differs between orders", ta->name);
        free(x);
        free(y);
    }
    CHECK(moved > 0);
    si_gguf_close(ga);
    si_gguf_close(gb);

    /* --favour-token: the favoured classifier row is recoverable as the embedding bias */
    make(a, "--layers 1 --type Q8_0 --favour-token 300");
    g = fmt_open_ok(a, "favour");
    expect_tensor(g, "token_embd.weight", 256, 512, SI_TYPE_F16);
    expect_tensor(g, "output.weight", 256, 512, SI_TYPE_Q8_0);
    si_gguf_close(g);

    /* --vocab: tokenizer keys copied from a fixture vocabulary */
    char fx[1024];
    snprintf(fx, sizeof fx, "%s/tokenizer/llama-spm-vocab.gguf", fmt_fixtures());
    if (fmt_exists(fx)) {
        char args[1200];
        snprintf(args, sizeof args, "--vocab '%s' --dim 64 --heads 2 --kv-heads 1 --ff 128 --layers 1 --tied", fx);
        make(a, args);
        si_gguf *src = fmt_open_ok(fx, "spm vocab");
        g = fmt_open_ok(a, "copied vocab");
        uint64_t nsrc;
        CHECK(si_gguf_get_arr_str(src, "tokenizer.ggml.tokens", &ki, &nsrc, &e) == 0);
        check_model(g, 64, 1, 2, 1, 32, 128, (uint32_t)nsrc, SI_TYPE_F32, SI_TYPE_F32, true);
        for (uint64_t i = 0; i < si_gguf_n_kv(src); i++) {
            const char *k = si_gguf_key(src, i);
            if (strncmp(k, "tokenizer.", 10))
                continue;
            int64_t j = si_gguf_find_key(g, k);
            CHECKF(j >= 0, "key %s not copied", k);
            CHECK(si_gguf_kv_type(g, (uint64_t)j) == si_gguf_kv_type(src, i));
            CHECK(si_gguf_arr_n(g, (uint64_t)j) == si_gguf_arr_n(src, i));
        }
        si_gguf_close(src);
        si_gguf_close(g);
        snprintf(args, sizeof args, "--vocab '%s' --vocab-size 512", fx);
        refused(args, "disagrees");
    } else {
        printf("fixtures not found at %s, --vocab part skipped\n", fmt_fixtures());
    }

    /* inconsistent options are refused with a reason */
    refused("--heads 3", "not a multiple of --heads");
    refused("--heads 4 --kv-heads 3", "must divide");
    refused("--vocab-size 100", ">= 261");
    refused("--type Q4_K --ff 700", "block size");
    refused("--type IQ2_XXS", "cannot generate");
    refused("--type NOPE", "unknown type");
    refused("--tensor-type attn_norm=F16", "unknown tensor name");
    refused("--order random", "compute or sorted");
    refused("--favour-token 9999", "below the vocabulary size");
    refused("--head-dim 33", "even");
    refused("--dim 0", "positive");
    CHECK(run("--help >/dev/null") == 0);
    CHECK(run("") != 0); /* no -o */

    fmt_rmdir();
    printf("mkmodel ok\n");
    return 0;
}
