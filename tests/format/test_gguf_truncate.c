/* Truncated files: cut a copy at every structural boundary (end of header, after each
 * KV pair, after each tensor info, at the data start, inside each tensor's data) and
 * one byte before each; every cut is refused with a message naming the path. A
 * vocabulary-only file (no tensors) cut right after its last KV still opens.
 * Runs on a writer-made model always, and on a fixture model when present. */
#include "fmt_util.h"

static int n_cases;

static void expect_cut_fails(const char *label, const uint8_t *src, uint64_t size, uint64_t cut)
{
    if (cut >= size)
        return;
    char *p = fmt_path("cut.gguf");
    fmt_truncated_copy(p, src, (size_t)cut);
    char lab[256];
    snprintf(lab, sizeof lab, "%s cut at %llu of %llu", label, (unsigned long long)cut,
             (unsigned long long)size);
    fmt_expect_fail(p, NULL, lab);
    n_cases++;
}

/* Both the boundary and the byte before it. */
static void cut_around(const char *label, const uint8_t *src, uint64_t size, uint64_t at)
{
    expect_cut_fails(label, src, size, at);
    if (at > 0)
        expect_cut_fails(label, src, size, at - 1);
}

static void truncations(const char *label, const char *path)
{
    size_t size;
    uint8_t *src = test_read_file(path, &size);
    CHECKF(src != NULL, "cannot read %s", path);
    si_gguf *g = fmt_open_ok(path, label);
    CHECK(si_gguf_n_tensors(g) > 0);
    cut_around(label, src, size, 0);
    cut_around(label, src, size, 24); /* end of header */
    for (uint64_t i = 1; i < si_gguf_n_kv(g); i++)
        cut_around(label, src, size, si_gguf_kv_offset(g, i)); /* after KV i-1 */
    for (uint64_t i = 0; i < si_gguf_n_tensors(g); i++) {
        const si_gguf_tensor *t = si_gguf_tensor_at(g, i);
        cut_around(label, src, size, t->info_offset);  /* after the previous KV / info */
        cut_around(label, src, size, fmt_info_end(t)); /* after this info */
    }
    cut_around(label, src, size, si_gguf_data_offset(g));
    for (uint64_t i = 0; i < si_gguf_n_tensors(g); i++) {
        const si_gguf_tensor *t = si_gguf_tensor_at(g, i);
        expect_cut_fails(label, src, size, t->offset + t->size / 2);
        expect_cut_fails(label, src, size, t->offset + t->size - 1);
    }
    /* the untouched file is still fine */
    si_gguf_close(g);
    free(src);
}

static void make_model(const char *path)
{
    si_gguf_writer *w = si_gguf_writer_new(32);
    const char *toks[] = {"a", "bb", "ccc"};
    int32_t arr[3] = {1, 2, 3};
    CHECK(si_gguf_writer_set_str(w, "general.architecture", "llama") == 0);
    CHECK(si_gguf_writer_set_u32(w, "llama.block_count", 1) == 0);
    CHECK(si_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3) == 0);
    CHECK(si_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", SI_GGUF_INT32, arr, 3) == 0);
    CHECK(si_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f) == 0);
    const uint64_t ne1[2] = {64, 3}, ne2[1] = {64}, ne3[2] = {256, 2};
    CHECK(si_gguf_writer_add_tensor(w, "token_embd.weight", 2, ne1, SI_TYPE_Q8_0) == 0);
    CHECK(si_gguf_writer_add_tensor(w, "output_norm.weight", 1, ne2, SI_TYPE_F32) == 1);
    CHECK(si_gguf_writer_add_tensor(w, "output.weight", 2, ne3, SI_TYPE_Q6_K) == 2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    si_error e;
    CHECK(si_gguf_writer_write_header(w, fd, &e) == 0);
    uint8_t buf[1024] = {0};
    for (int i = 0; i < 3; i++) {
        uint64_t n = si_gguf_writer_tensor_size(w, i);
        CHECK(n <= sizeof buf);
        CHECK(si_gguf_writer_write_data(w, fd, buf, n, &e) == 0);
    }
    CHECK(si_gguf_writer_finish(w, fd, &e) == 0);
    close(fd);
    si_gguf_writer_free(w);
}

static void vocab_only(void)
{
    char *p = fmt_path("vocab.gguf");
    si_gguf_writer *w = si_gguf_writer_new(32);
    const char *toks[] = {"x", "yy", "zzz", "wwww"};
    CHECK(si_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2") == 0);
    CHECK(si_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4) == 0);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    si_error e;
    CHECK(si_gguf_writer_write_header(w, fd, &e) == 0 && si_gguf_writer_finish(w, fd, &e) == 0);
    close(fd);
    si_gguf_writer_free(w);
    size_t size;
    uint8_t *src = test_read_file(p, &size);
    /* end of the last KV: 24 + model pair + tokens pair */
    uint64_t end = 24 + (8 + 20 + 4 + 8 + 4) + (8 + 21 + 4 + 4 + 8 + (8 + 1) + (8 + 2) + (8 + 3) + (8 + 4));
    CHECK(size == (end + 31) / 32 * 32 && size > end);
    char *q = fmt_path("vocab-cut.gguf");
    fmt_truncated_copy(q, src, end);
    si_gguf *g = fmt_open_ok(q, "vocabulary cut after its last KV");
    CHECK(si_gguf_n_kv(g) == 2 && si_gguf_n_tensors(g) == 0);
    CHECK_EQ_STR(si_gguf_arr_str(g, 1, 3, NULL), "wwww");
    si_gguf_close(g);
    for (uint64_t cut = 0; cut < end; cut += cut < 24 ? 1 : 5) {
        fmt_truncated_copy(q, src, cut);
        fmt_expect_fail(q, NULL, "vocabulary cut inside");
        n_cases++;
    }
    fmt_truncated_copy(q, src, end - 1);
    fmt_expect_fail(q, NULL, "vocabulary cut one byte short");
    free(src);
}

int main(void)
{
    char *p = fmt_path("model.gguf");
    make_model(p);
    truncations("writer model", p);
    vocab_only();

    /* a truncated file's message names the field, the offset and the file size */
    size_t size;
    uint8_t *src = test_read_file(p, &size);
    si_gguf *g = fmt_open_ok(p, "model");
    const si_gguf_tensor *t = si_gguf_find_tensor(g, "output.weight");
    char *q = fmt_path("cut.gguf");
    fmt_truncated_copy(q, src, (size_t)(t->offset + 10));
    fmt_expect_fail(q, "tensor 'output.weight': data [", "named tensor");
    fmt_expect_fail(q, "runs past end of file", "named tensor");
    si_gguf_close(g);
    free(src);

    char fx[1024];
    snprintf(fx, sizeof fx, "%s/micro-llama3/Q2_K.gguf", fmt_fixtures());
    if (fmt_exists(fx))
        truncations("Q2_K fixture", fx);
    else
        printf("fixtures not found at %s, fixture part skipped\n", fmt_fixtures());
    fmt_rmdir();
    printf("truncation ok (%d cuts refused)\n", n_cases);
    return 0;
}
