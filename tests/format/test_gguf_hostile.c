/* Hostile input: hand-made files for each rule the reader enforces (each refused with
 * a message naming the problem), then random corruption of the header/metadata region
 * of a valid file (many seeds, bounded time): open either fails with a message or
 * succeeds with a self-consistent result; it never crashes. ASan/UBSan run this. */
#include "fmt_util.h"

#include <time.h>

static int n_targeted;

/* Write b to a file and expect open to fail mentioning `want`. */
static void refuse(bytes *b, const char *want, const char *label)
{
    char *p = fmt_path("hostile.gguf");
    fmt_write_file(p, b->p, b->len);
    fmt_expect_fail(p, want, label);
    free(b->p);
    *b = (bytes){0};
    n_targeted++;
}

static void accept(bytes *b, const char *label)
{
    char *p = fmt_path("hostile.gguf");
    fmt_write_file(p, b->p, b->len);
    si_gguf_close(fmt_open_ok(p, label));
    free(b->p);
    *b = (bytes){0};
}

/* Extra bytes so count bounds pass and the rule under test is what trips. */
static void slack(bytes *b)
{
    for (int i = 0; i < 64; i++)
        b_u8(b, 0);
}

/* A file with one tensor info (and nothing else) plus `data` bytes of data. */
static void one_tensor(bytes *b, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                       uint64_t offset, size_t data)
{
    b_header(b, 3, 1, 0);
    b_tensor(b, "w", n_dims, ne, type, offset);
    b_pad(b, 32);
    for (size_t i = 0; i < data; i++)
        b_u8(b, 0);
}

static void targeted(void)
{
    bytes b = {0};
    const uint64_t ne32[2] = {32, 2};

    one_tensor(&b, 2, ne32, SI_TYPE_F32, 0, 256);
    accept(&b, "baseline");

    b_header(&b, 3, 0, UINT64_C(1) << 60);
    refuse(&b, "metadata count", "huge n_kv");
    b_header(&b, 3, UINT64_C(1) << 58, 0);
    refuse(&b, "tensor count", "huge n_tensors");

    b_header(&b, 3, 0, 1);
    b_u64(&b, UINT64_C(1) << 62);
    b_put(&b, "key", 3);
    slack(&b);
    refuse(&b, "string length", "huge key length");

    b_header(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, SI_GGUF_STRING);
    b_u64(&b, UINT64_MAX);
    slack(&b);
    refuse(&b, "string length", "huge string value length");

    b_header(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, SI_GGUF_ARRAY);
    b_u32(&b, SI_GGUF_UINT32);
    b_u64(&b, UINT64_C(1) << 61);
    b_u32(&b, 0);
    slack(&b);
    refuse(&b, "array count", "huge array count");

    b_header(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, SI_GGUF_ARRAY);
    b_u32(&b, SI_GGUF_STRING);
    b_u64(&b, UINT64_C(1) << 40);
    b_u64(&b, 0);
    slack(&b);
    refuse(&b, "array count", "huge string array count");

    b_header(&b, 3, 0, 1); /* arrays nested 40 deep */
    b_str(&b, "k");
    b_u32(&b, SI_GGUF_ARRAY);
    for (int i = 0; i < 40; i++) {
        b_u32(&b, SI_GGUF_ARRAY);
        b_u64(&b, 1);
    }
    b_u32(&b, SI_GGUF_UINT8);
    b_u64(&b, 0);
    slack(&b);
    refuse(&b, "nested deeper", "nesting bomb");

    b_header(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, 13);
    b_u64(&b, 0);
    slack(&b);
    refuse(&b, "unknown value type 13", "bad value type");

    b_header(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, SI_GGUF_ARRAY);
    b_u32(&b, 77);
    b_u64(&b, 0);
    slack(&b);
    refuse(&b, "element type 77", "bad array element type");

    b_header(&b, 3, 0, 1);
    b_str(&b, "flag");
    b_u32(&b, SI_GGUF_BOOL);
    b_u8(&b, 2);
    refuse(&b, "bool value 2", "bool 2");

    b_header(&b, 3, 0, 1);
    b_str(&b, "flags");
    b_u32(&b, SI_GGUF_ARRAY);
    b_u32(&b, SI_GGUF_BOOL);
    b_u64(&b, 3);
    b_put(&b, "\1\0\7", 3);
    refuse(&b, "bool value 7", "bool array 7");

    b_header(&b, 3, 0, 1);
    b_u64(&b, 3);
    b_put(&b, "a\0b", 3);
    b_u32(&b, SI_GGUF_UINT8);
    b_u8(&b, 1);
    slack(&b);
    refuse(&b, "NUL", "NUL in key");

    b_header(&b, 3, 0, 1);
    b_str(&b, "");
    b_u32(&b, SI_GGUF_UINT8);
    b_u8(&b, 1);
    slack(&b);
    refuse(&b, "empty", "empty key");

    b_header(&b, 3, 0, 2);
    b_str(&b, "dup");
    b_u32(&b, SI_GGUF_UINT8);
    b_u8(&b, 1);
    b_str(&b, "dup");
    b_u32(&b, SI_GGUF_UINT32);
    b_u32(&b, 1);
    refuse(&b, "duplicate key", "duplicate key");

    for (uint32_t a = 0; a < 5; a += 3) { /* 0 and 3 */
        b_header(&b, 3, 0, 1);
        b_str(&b, "general.alignment");
        b_u32(&b, SI_GGUF_UINT32);
        b_u32(&b, a);
        refuse(&b, "power of two", "bad alignment");
    }
    b_header(&b, 3, 0, 1);
    b_str(&b, "general.alignment");
    b_u32(&b, SI_GGUF_STRING);
    b_str(&b, "32");
    refuse(&b, "general.alignment", "alignment of wrong type");

    b_header(&b, 1, 0, 0);
    refuse(&b, "version 1", "v1");
    b_header(&b, 0x03000000, 0, 0);
    refuse(&b, "big-endian", "byte-swapped version");
    b_header(&b, 4, 0, 0);
    refuse(&b, "version 4", "v4");
    b_u32(&b, 0x4c4d4747);
    b_u32(&b, 3);
    refuse(&b, "not a GGUF", "bad magic");
    b_u8(&b, 'G');
    refuse(&b, "too short", "3-byte file");

    const uint64_t ne5[5] = {32, 1, 1, 1, 1};
    one_tensor(&b, 0, ne5, SI_TYPE_F32, 0, 128);
    refuse(&b, "n_dims 0", "n_dims 0");
    one_tensor(&b, 5, ne5, SI_TYPE_F32, 0, 128);
    refuse(&b, "n_dims 5", "n_dims 5");
    const uint64_t ne0[2] = {32, 0};
    one_tensor(&b, 2, ne0, SI_TYPE_F32, 0, 128);
    refuse(&b, "dimension 1 is 0", "dimension 0");
    const uint64_t neov[3] = {UINT64_C(1) << 32, UINT64_C(1) << 32, 1};
    one_tensor(&b, 3, neov, SI_TYPE_F32, 0, 128);
    refuse(&b, "overflows", "element count overflow");
    const uint64_t neov2[2] = {UINT64_C(1) << 40, UINT64_C(1) << 22};
    one_tensor(&b, 2, neov2, SI_TYPE_F64, 0, 128);
    refuse(&b, "overflows", "byte size overflow");
    const uint64_t neneg[1] = {UINT64_MAX};
    one_tensor(&b, 1, neneg, SI_TYPE_F32, 0, 128);
    refuse(&b, "dimension 0", "negative dimension");
    one_tensor(&b, 2, ne32, 99, 0, 256);
    refuse(&b, "unknown tensor type id 99", "type 99");
    one_tensor(&b, 2, ne32, 4, 0, 256); /* 4 and 5 are removed ggml types */
    refuse(&b, "unknown tensor type id 4", "type 4");
    const uint64_t ne16[1] = {16};
    one_tensor(&b, 1, ne16, SI_TYPE_Q4_0, 0, 256);
    refuse(&b, "block size", "row not a multiple of the block");
    one_tensor(&b, 2, ne32, SI_TYPE_F32, 4, 300);
    refuse(&b, "not a multiple of the alignment", "unaligned offset");
    one_tensor(&b, 2, ne32, SI_TYPE_F32, 0, 255);
    refuse(&b, "runs past end of file", "data past end");
    one_tensor(&b, 2, ne32, SI_TYPE_F32, UINT64_MAX - 31, 256);
    refuse(&b, "runs past end of file", "offset near 2^64");
    /* known-but-not-computable types parse */
    const uint64_t ne256[1] = {256};
    one_tensor(&b, 1, ne256, SI_TYPE_IQ2_XXS, 0, 66);
    accept(&b, "IQ2_XXS");
    one_tensor(&b, 1, ne32, SI_TYPE_Q4_1, 0, 20);
    accept(&b, "Q4_1");

    b_header(&b, 3, 2, 0);
    b_tensor(&b, "w", 2, ne32, SI_TYPE_F32, 0);
    b_tensor(&b, "w", 2, ne32, SI_TYPE_F32, 256);
    b_pad(&b, 32);
    for (int i = 0; i < 512; i++)
        b_u8(&b, 0);
    refuse(&b, "duplicate name", "duplicate tensor");

    b_header(&b, 3, 2, 0);
    b_tensor(&b, "w1", 2, ne32, SI_TYPE_F32, 0);
    b_tensor(&b, "w2", 2, ne32, SI_TYPE_F32, 224);
    b_pad(&b, 32);
    for (int i = 0; i < 512; i++)
        b_u8(&b, 0);
    refuse(&b, "overlaps", "overlapping tensors");

    b_header(&b, 3, 2, 0); /* reverse order, adjacent: fine */
    b_tensor(&b, "w1", 2, ne32, SI_TYPE_F32, 256);
    b_tensor(&b, "w2", 2, ne32, SI_TYPE_F32, 0);
    b_pad(&b, 32);
    for (int i = 0; i < 512; i++)
        b_u8(&b, 0);
    accept(&b, "data order differs from info order");

    b_header(&b, 3, 0, 1); /* version 2 with alignment 64 and a vocabulary-like array */
    b.p[4] = 2;
    b_str(&b, "general.alignment");
    b_u32(&b, SI_GGUF_UINT32);
    b_u32(&b, 64);
    accept(&b, "v2, alignment 64");
}

/* Anything that opened must be usable without surprises. */
static void exercise(const si_gguf *g)
{
    si_error e;
    for (uint64_t i = 0; i < si_gguf_n_kv(g); i++) {
        const char *k = si_gguf_key(g, i);
        CHECK(k && si_gguf_find_key(g, k) == (int64_t)i);
        uint64_t u, n;
        float f;
        bool b;
        const char *s;
        si_gguf_vtype et;
        const void *d;
        (void)si_gguf_get_u64(g, k, &u, &e);
        (void)si_gguf_get_f32(g, k, &f, &e);
        (void)si_gguf_get_bool(g, k, &b, &e);
        (void)si_gguf_get_str(g, k, &s, &n, &e);
        if (si_gguf_get_arr(g, k, &et, &n, &d, &e) == 0 && n > 0) {
            volatile uint8_t last = ((const uint8_t *)d)[n * 1 - 1];
            (void)last;
        }
        for (uint64_t j = 0; j < si_gguf_arr_n(g, i) && j < 4; j++)
            (void)si_gguf_arr_str(g, i, j, NULL);
    }
    for (uint64_t i = 0; i < si_gguf_n_tensors(g); i++) {
        const si_gguf_tensor *t = si_gguf_tensor_at(g, i);
        CHECK(t->offset + t->size <= si_gguf_file_size(g) && t->offset + t->size >= t->offset);
        CHECK(si_type_get(t->type) != NULL && t->n_dims >= 1 && t->n_dims <= 4);
    }
}

static void fuzz(const char *label, const uint8_t *src, size_t size, uint64_t region, int iters,
                 double max_seconds)
{
    uint8_t *buf = malloc(size);
    char *p = fmt_path("fuzz.gguf");
    test_rng r;
    int opened = 0, refused = 0;
    clock_t start = clock();
    for (int it = 0; it < iters; it++) {
        if ((double)(clock() - start) / CLOCKS_PER_SEC > max_seconds)
            break;
        test_rng_seed(&r, 0x5eed0000u + (uint64_t)it);
        memcpy(buf, src, size);
        int nflips = 1 + (int)(test_rng_u32(&r) % 8);
        for (int k = 0; k < nflips; k++) {
            uint64_t at = test_rng_u64(&r) % region;
            uint32_t mode = test_rng_u32(&r) % 4;
            if (mode == 0)
                buf[at] ^= (uint8_t)(1u << (test_rng_u32(&r) % 8));
            else if (mode == 1)
                buf[at] = (uint8_t)test_rng_u32(&r);
            else if (mode == 2)
                buf[at] = 0xff;
            else
                buf[at] = 0;
        }
        size_t len = size;
        if (test_rng_u32(&r) % 8 == 0)
            len = (size_t)(test_rng_u64(&r) % size);
        fmt_write_file(p, buf, len);
        si_gguf *g = NULL;
        si_error e = {0};
        if (si_gguf_open(&g, p, &e) == 0) {
            exercise(g);
            si_gguf_close(g);
            opened++;
        } else {
            CHECKF(strstr(e.msg, p) != NULL, "seed %d: message lacks the path: %s", it, e.msg);
            refused++;
        }
    }
    printf("%s: %d corrupted copies opened, %d refused\n", label, opened, refused);
    free(buf);
}

static void make_model(const char *path)
{
    si_gguf_writer *w = si_gguf_writer_new(32);
    const char *toks[] = {"a", "bb", "ccc", "dddd", "<|x|>"};
    int32_t arr[5] = {1, 2, 3, 1, 3};
    uint8_t flags[3] = {1, 0, 1};
    CHECK(si_gguf_writer_set_str(w, "general.architecture", "llama") == 0);
    CHECK(si_gguf_writer_set_u32(w, "llama.block_count", 1) == 0);
    CHECK(si_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true) == 0);
    CHECK(si_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 5) == 0);
    CHECK(si_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", SI_GGUF_INT32, arr, 5) == 0);
    CHECK(si_gguf_writer_set_arr(w, "x.flags", SI_GGUF_BOOL, flags, 3) == 0);
    CHECK(si_gguf_writer_set_f64(w, "x.f64", 2.5) == 0);
    const uint64_t ne1[2] = {64, 5}, ne2[1] = {64}, ne3[2] = {256, 2};
    CHECK(si_gguf_writer_add_tensor(w, "token_embd.weight", 2, ne1, SI_TYPE_Q8_0) == 0);
    CHECK(si_gguf_writer_add_tensor(w, "output_norm.weight", 1, ne2, SI_TYPE_F32) == 1);
    CHECK(si_gguf_writer_add_tensor(w, "output.weight", 2, ne3, SI_TYPE_Q4_K) == 2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    si_error e;
    CHECK(si_gguf_writer_write_header(w, fd, &e) == 0);
    uint8_t buf[1024] = {0};
    for (int i = 0; i < 3; i++)
        CHECK(si_gguf_writer_write_data(w, fd, buf, si_gguf_writer_tensor_size(w, i), &e) == 0);
    CHECK(si_gguf_writer_finish(w, fd, &e) == 0);
    close(fd);
    si_gguf_writer_free(w);
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 400;
    targeted();
    printf("%d targeted cases refused with the expected message\n", n_targeted);

    char *p = fmt_path("model.gguf");
    make_model(p);
    size_t size;
    uint8_t *src = test_read_file(p, &size);
    si_gguf *g = fmt_open_ok(p, "model");
    uint64_t region = si_gguf_data_offset(g);
    si_gguf_close(g);
    fuzz("writer model", src, size, region, iters, 20.0);
    free(src);

    char fx[1024];
    snprintf(fx, sizeof fx, "%s/micro-llama3/Q2_K.gguf", fmt_fixtures());
    if (fmt_exists(fx)) {
        src = test_read_file(fx, &size);
        g = fmt_open_ok(fx, "fixture");
        region = si_gguf_data_offset(g);
        si_gguf_close(g);
        fuzz("Q2_K fixture", src, size, region, iters / 2, 20.0);
        free(src);
    } else {
        printf("fixtures not found at %s, fixture part skipped\n", fmt_fixtures());
    }
    fmt_rmdir();
    printf("hostile ok\n");
    return 0;
}
