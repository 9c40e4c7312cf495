/* Every fixture GGUF opens; spot checks of known facts; the Llama 3 vocabulary opens
 * fast (128256 tokens + 280147 merges). */
#include "fmt_util.h"

#include <dirent.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Invariants any successfully opened file must satisfy. */
static void check_invariants(const si_gguf *g)
{
    uint64_t fs = si_gguf_file_size(g);
    for (uint64_t i = 0; i < si_gguf_n_tensors(g); i++) {
        const si_gguf_tensor *t = si_gguf_tensor_at(g, i);
        CHECK(t->offset % si_gguf_alignment(g) == 0 && t->offset >= si_gguf_data_offset(g));
        CHECK(t->offset + t->size <= fs);
        CHECK(si_gguf_find_tensor(g, t->name) == t);
        CHECK(t->size == si_row_size(t->type, (int64_t)t->ne[0]) * t->ne[1] * t->ne[2] * t->ne[3]);
    }
    for (uint64_t i = 0; i < si_gguf_n_kv(g); i++)
        CHECK(si_gguf_find_key(g, si_gguf_key(g, i)) == (int64_t)i);
}

static int open_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 5, ".gguf"))
            continue;
        char path[1300];
        snprintf(path, sizeof path, "%.1000s/%.255s", dir, e->d_name);
        si_gguf *g = fmt_open_ok(path, path);
        check_invariants(g);
        printf("  %-60s v%u %3llu KV %3llu tensors\n", path, si_gguf_version(g),
               (unsigned long long)si_gguf_n_kv(g), (unsigned long long)si_gguf_n_tensors(g));
        si_gguf_close(g);
        n++;
    }
    closedir(d);
    return n;
}

int main(void)
{
    const char *fx = fmt_fixtures();
    char path[1024];
    snprintf(path, sizeof path, "%s/micro-llama3/Q2_K.gguf", fx);
    if (!fmt_exists(path)) {
        printf("fixtures not found at %s, skipping\n", fx);
        return TEST_SKIP;
    }
    int n = 0;
    const char *dirs[] = {"micro-llama3", "tiny-trained", "tokenizer"};
    for (int i = 0; i < 3; i++) {
        char d[1024];
        snprintf(d, sizeof d, "%s/%s", fx, dirs[i]);
        n += open_dir(d);
    }
    CHECK(n >= 14);

    /* micro-llama3 Q2_K: llama.cpp's Llama-3-8B Q2_K mix */
    si_gguf *g = fmt_open_ok(path, "Q2_K");
    si_error e;
    CHECK_EQ_INT(si_gguf_n_tensors(g), 39);
    CHECK_EQ_INT(si_gguf_n_kv(g), 22);
    CHECK_EQ_INT(si_gguf_version(g), 3);
    CHECK_EQ_INT(si_gguf_alignment(g), 32);
    const si_gguf_tensor *t = si_gguf_find_tensor(g, "blk.0.attn_v.weight");
    CHECK(t && t->type == SI_TYPE_Q4_K && t->n_dims == 2 && t->ne[0] == 256 && t->ne[1] == 64);
    CHECK(si_gguf_find_tensor(g, "blk.3.ffn_down.weight")->type == SI_TYPE_Q3_K);
    CHECK(si_gguf_find_tensor(g, "output.weight")->type == SI_TYPE_Q6_K);
    CHECK(si_gguf_find_tensor(g, "token_embd.weight")->type == SI_TYPE_Q2_K);
    CHECK(si_gguf_find_tensor(g, "output_norm.weight")->type == SI_TYPE_F32);
    const char *arch;
    CHECK(si_gguf_get_str(g, "general.architecture", &arch, NULL, &e) == 0);
    CHECK_EQ_STR(arch, "llama");
    uint32_t v;
    float f;
    CHECK(si_gguf_get_u32(g, "llama.embedding_length", &v, &e) == 0 && v == 256);
    CHECK(si_gguf_get_u32(g, "llama.block_count", &v, &e) == 0 && v == 4);
    CHECK(si_gguf_get_u32(g, "llama.attention.head_count_kv", &v, &e) == 0 && v == 1);
    CHECK(si_gguf_get_u32(g, "llama.context_length", &v, &e) == 0 && v == 2048);
    CHECK(si_gguf_get_f32(g, "llama.rope.freq_base", &f, &e) == 0 && f == 500000.0f);
    int64_t ki;
    uint64_t nt;
    CHECK(si_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &ki, &nt, &e) == 0 && nt == 512);
    CHECK_EQ_STR(si_gguf_arr_str(g, (uint64_t)ki, 500, NULL), "<|begin_of_text|>");
    CHECK_EQ_STR(si_gguf_arr_str(g, (uint64_t)ki, 509, NULL), "<|eot_id|>");
    si_gguf_close(g);

    /* the real Llama 3 vocabulary, timed */
    snprintf(path, sizeof path, "%s/tokenizer/llama3-vocab.gguf", fx);
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        g = fmt_open_ok(path, "llama3-vocab");
        double dt = now() - t0;
        best = dt < best ? dt : best;
        if (rep < 2)
            si_gguf_close(g);
    }
    /* A figure, not a check: timing belongs to bench/tokenize-bench on these shared machines. */
    printf("llama3-vocab.gguf opens in %.1f ms (best of 3)\n", best * 1e3);
    CHECK_EQ_INT(si_gguf_n_tensors(g), 0);
    CHECK(si_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &ki, &nt, &e) == 0);
    CHECK_EQ_INT(nt, 128256);
    CHECK_EQ_STR(si_gguf_arr_str(g, (uint64_t)ki, 128000, NULL), "<|begin_of_text|>");
    CHECK_EQ_STR(si_gguf_arr_str(g, (uint64_t)ki, 128009, NULL), "<|eot_id|>");
    CHECK_EQ_STR(si_gguf_arr_str(g, (uint64_t)ki, 0, NULL), "!");
    CHECK(si_gguf_get_arr_str(g, "tokenizer.ggml.merges", &ki, &nt, &e) == 0);
    CHECK_EQ_INT(nt, 280147);
    const char *pre;
    CHECK(si_gguf_get_str(g, "tokenizer.ggml.pre", &pre, NULL, &e) == 0);
    CHECK_EQ_STR(pre, "llama-bpe");
    si_gguf_vtype et;
    const void *d;
    CHECK(si_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &nt, &d, &e) == 0 && nt == 128256);
    si_gguf_close(g);
    printf("fixtures ok (%d files)\n", n);
    return 0;
}
