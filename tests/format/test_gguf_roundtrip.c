/* Writer -> reader round trip: every value type (scalars of all widths, bool, strings,
 * numeric arrays, arrays of strings, empty arrays), tensors with their data, and
 * copy_kv of everything (nested arrays included) into a second file. */
#include "fmt_util.h"

#include <math.h>

static const char *const strs[] = {"alpha", "", "ünïcödé \xF0\x9F\x98\x80", "x y z"};

static void set_all(si_gguf_writer *w)
{
    uint8_t u8 = 250; int8_t i8 = -120; uint16_t u16 = 65000; int16_t i16 = -32000;
    CHECK(si_gguf_writer_set_scalar(w, "t.u8", SI_GGUF_UINT8, &u8) == 0);
    CHECK(si_gguf_writer_set_scalar(w, "t.i8", SI_GGUF_INT8, &i8) == 0);
    CHECK(si_gguf_writer_set_scalar(w, "t.u16", SI_GGUF_UINT16, &u16) == 0);
    CHECK(si_gguf_writer_set_scalar(w, "t.i16", SI_GGUF_INT16, &i16) == 0);
    CHECK(si_gguf_writer_set_u32(w, "t.u32", 4000000000u) == 0);
    CHECK(si_gguf_writer_set_i32(w, "t.i32", -2000000000) == 0);
    CHECK(si_gguf_writer_set_f32(w, "t.f32", 1.5e-5f) == 0);
    CHECK(si_gguf_writer_set_bool(w, "t.bool", true) == 0);
    CHECK(si_gguf_writer_set_bool(w, "t.bool0", false) == 0);
    CHECK(si_gguf_writer_set_str(w, "t.str", "hello, gguf") == 0);
    CHECK(si_gguf_writer_set_u64(w, "t.u64", UINT64_MAX - 5) == 0);
    CHECK(si_gguf_writer_set_i64(w, "t.i64", INT64_MIN + 7) == 0);
    CHECK(si_gguf_writer_set_f64(w, "t.f64", 3.141592653589793) == 0);
    int32_t ai[5] = {1, -2, 3, -4, 5};
    float af[3] = {0.5f, -1.25f, 1e30f};
    uint8_t ab[4] = {1, 0, 0, 1};
    double ad[2] = {1e-300, -2.5};
    uint64_t au[2] = {0, UINT64_MAX};
    CHECK(si_gguf_writer_set_arr(w, "a.i32", SI_GGUF_INT32, ai, 5) == 0);
    CHECK(si_gguf_writer_set_arr(w, "a.f32", SI_GGUF_FLOAT32, af, 3) == 0);
    CHECK(si_gguf_writer_set_arr(w, "a.bool", SI_GGUF_BOOL, ab, 4) == 0);
    CHECK(si_gguf_writer_set_arr(w, "a.f64", SI_GGUF_FLOAT64, ad, 2) == 0);
    CHECK(si_gguf_writer_set_arr(w, "a.u64", SI_GGUF_UINT64, au, 2) == 0);
    CHECK(si_gguf_writer_set_arr(w, "a.empty", SI_GGUF_UINT8, NULL, 0) == 0);
    CHECK(si_gguf_writer_set_arr_str(w, "a.str", strs, 4) == 0);
    CHECK(si_gguf_writer_set_arr_str(w, "a.str0", NULL, 0) == 0);
    /* refusals */
    CHECK(si_gguf_writer_set_u32(w, "t.u32", 1) < 0);            /* duplicate */
    CHECK(si_gguf_writer_set_str(w, "", "x") < 0);               /* empty key */
    uint8_t two = 2;
    CHECK(si_gguf_writer_set_scalar(w, "t.badbool", SI_GGUF_BOOL, &two) < 0);
    CHECK(si_gguf_writer_set_arr(w, "a.nested", SI_GGUF_ARRAY, ai, 1) < 0);
    CHECK(si_gguf_writer_set_u32(w, "general.alignment", 64) < 0); /* != writer's 32 */
}

static void check_all(const si_gguf *g)
{
    si_error e;
    uint64_t u;
    int64_t s;
    uint32_t u32;
    float f;
    double d;
    bool b;
    CHECK(si_gguf_get_u64(g, "t.u8", &u, &e) == 0 && u == 250);
    CHECK(si_gguf_get_i64(g, "t.i8", &s, &e) == 0 && s == -120);
    CHECK(si_gguf_get_u32(g, "t.u16", &u32, &e) == 0 && u32 == 65000);
    CHECK(si_gguf_get_i64(g, "t.i16", &s, &e) == 0 && s == -32000);
    CHECK(si_gguf_get_u32(g, "t.u32", &u32, &e) == 0 && u32 == 4000000000u);
    CHECK(si_gguf_get_i64(g, "t.i32", &s, &e) == 0 && s == -2000000000);
    CHECK(si_gguf_get_f32(g, "t.f32", &f, &e) == 0 && f == 1.5e-5f);
    CHECK(si_gguf_get_bool(g, "t.bool", &b, &e) == 0 && b);
    CHECK(si_gguf_get_bool(g, "t.bool0", &b, &e) == 0 && !b);
    const char *str;
    uint64_t len;
    CHECK(si_gguf_get_str(g, "t.str", &str, &len, &e) == 0 && len == 11);
    CHECK_EQ_STR(str, "hello, gguf");
    CHECK(si_gguf_get_u64(g, "t.u64", &u, &e) == 0 && u == UINT64_MAX - 5);
    CHECK(si_gguf_get_i64(g, "t.i64", &s, &e) == 0 && s == INT64_MIN + 7);
    CHECK(si_gguf_get_f64(g, "t.f64", &d, &e) == 0 && d == 3.141592653589793);
    CHECK(si_gguf_get_f32(g, "t.f64", &f, &e) == 0 && f == (float)3.141592653589793);

    /* range and type refusals name the key and the file */
    CHECK(si_gguf_get_u32(g, "t.i8", &u32, &e) < 0 && strstr(e.msg, "t.i8"));
    CHECK(si_gguf_get_u32(g, "t.u64", &u32, &e) < 0 && strstr(e.msg, si_gguf_path(g)));
    CHECK(si_gguf_get_i64(g, "t.u64", &s, &e) < 0);
    CHECK(si_gguf_get_f32(g, "t.str", &f, &e) < 0 && strstr(e.msg, "string"));
    CHECK(si_gguf_get_u32(g, "no.such.key", &u32, &e) < 0 && strstr(e.msg, "no.such.key"));
    CHECK(si_gguf_find_key(g, "no.such.key") == -1);

    si_gguf_vtype et;
    uint64_t n;
    const void *data;
    CHECK(si_gguf_get_arr(g, "a.i32", &et, &n, &data, &e) == 0 && et == SI_GGUF_INT32 && n == 5);
    CHECK(((const int32_t *)data)[3] == -4);
    CHECK(si_gguf_get_arr(g, "a.f32", &et, &n, &data, &e) == 0 && n == 3 && ((const float *)data)[2] == 1e30f);
    CHECK(si_gguf_get_arr(g, "a.bool", &et, &n, &data, &e) == 0 && et == SI_GGUF_BOOL &&
          memcmp(data, "\1\0\0\1", 4) == 0);
    CHECK(si_gguf_get_arr(g, "a.f64", &et, &n, &data, &e) == 0 && ((const double *)data)[0] == 1e-300);
    CHECK(si_gguf_get_arr(g, "a.u64", &et, &n, &data, &e) == 0 && ((const uint64_t *)data)[1] == UINT64_MAX);
    CHECK(si_gguf_get_arr(g, "a.empty", &et, &n, &data, &e) == 0 && n == 0 && et == SI_GGUF_UINT8);
    CHECK(si_gguf_get_arr(g, "a.str", &et, &n, &data, &e) < 0);
    int64_t ki;
    CHECK(si_gguf_get_arr_str(g, "a.str", &ki, &n, &e) == 0 && n == 4);
    CHECK(si_gguf_arr_type(g, (uint64_t)ki) == SI_GGUF_STRING);
    for (uint64_t j = 0; j < 4; j++) {
        CHECK_EQ_STR(si_gguf_arr_str(g, (uint64_t)ki, j, &len), strs[j]);
        CHECK(len == strlen(strs[j]));
    }
    CHECK(si_gguf_arr_str(g, (uint64_t)ki, 4, &len) == NULL);
    CHECK(si_gguf_get_arr_str(g, "a.str0", &ki, &n, &e) == 0 && n == 0);
}

static const uint64_t ne_a[2] = {64, 3}, ne_b[1] = {96}, ne_c[2] = {256, 2};

static void write_file(const char *path, const si_gguf *copy_from)
{
    si_gguf_writer *w = si_gguf_writer_new(copy_from ? 64 : 0);
    CHECK(w != NULL);
    if (copy_from) {
        for (uint64_t i = 0; i < si_gguf_n_kv(copy_from); i++)
            CHECKF(si_gguf_writer_copy_kv(w, copy_from, i) == 0, "copy_kv %s", si_gguf_key(copy_from, i));
    } else {
        set_all(w);
    }
    CHECK(si_gguf_writer_add_tensor(w, "a", 2, ne_a, SI_TYPE_F32) == 0);
    CHECK(si_gguf_writer_add_tensor(w, "b", 1, ne_b, SI_TYPE_F16) == 1);
    CHECK(si_gguf_writer_add_tensor(w, "c", 2, ne_c, SI_TYPE_Q4_K) == 2);
    CHECK(si_gguf_writer_add_tensor(w, "a", 1, ne_b, SI_TYPE_F32) < 0);      /* duplicate */
    const uint64_t bad[1] = {100};
    CHECK(si_gguf_writer_add_tensor(w, "d", 1, bad, SI_TYPE_Q8_0) < 0);     /* not 32k */
    CHECK(si_gguf_writer_add_tensor(w, "e", 1, bad, 99) < 0);               /* unknown */
    CHECK(si_gguf_writer_tensor_size(w, 2) == 2 * 144);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    si_error err;
    CHECKF(si_gguf_writer_write_header(w, fd, &err) == 0, "%s", err.msg);
    uint64_t total = si_gguf_writer_tensor_size(w, 0) + si_gguf_writer_tensor_size(w, 1) +
                     si_gguf_writer_tensor_size(w, 2);
    uint8_t *data = malloc(total);
    for (uint64_t i = 0; i < total; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    /* in uneven pieces that straddle tensor boundaries */
    uint64_t done = 0, piece = 1;
    while (done < total) {
        uint64_t k = piece < total - done ? piece : total - done;
        CHECKF(si_gguf_writer_write_data(w, fd, data + done, k, &err) == 0, "%s", err.msg);
        done += k;
        piece = piece * 3 + 1;
    }
    CHECK(si_gguf_writer_write_data(w, fd, data, 1, &err) < 0); /* one byte too many */
    CHECK(si_gguf_writer_finish(w, fd, &err) < 0);               /* writer is now failed */
    close(fd);
    si_gguf_writer_free(w);
    free(data);

    /* rewrite cleanly (the failed writer above must not have damaged the data part) */
    w = si_gguf_writer_new(copy_from ? 64 : 0);
    if (copy_from)
        for (uint64_t i = 0; i < si_gguf_n_kv(copy_from); i++)
            CHECK(si_gguf_writer_copy_kv(w, copy_from, i) == 0);
    else
        set_all(w);
    CHECK(si_gguf_writer_add_tensor(w, "a", 2, ne_a, SI_TYPE_F32) == 0);
    CHECK(si_gguf_writer_add_tensor(w, "b", 1, ne_b, SI_TYPE_F16) == 1);
    CHECK(si_gguf_writer_add_tensor(w, "c", 2, ne_c, SI_TYPE_Q4_K) == 2);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(si_gguf_writer_write_header(w, fd, &err) == 0);
    data = malloc(total);
    for (uint64_t i = 0; i < total; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    CHECK(si_gguf_writer_write_data(w, fd, data, total - 1, &err) == 0);
    CHECK(si_gguf_writer_finish(w, fd, &err) < 0 && strstr(err.msg, "'c'")); /* one short */
    close(fd);
    si_gguf_writer_free(w);

    w = si_gguf_writer_new(copy_from ? 64 : 0);
    if (copy_from)
        for (uint64_t i = 0; i < si_gguf_n_kv(copy_from); i++)
            CHECK(si_gguf_writer_copy_kv(w, copy_from, i) == 0);
    else
        set_all(w);
    CHECK(si_gguf_writer_add_tensor(w, "a", 2, ne_a, SI_TYPE_F32) == 0);
    CHECK(si_gguf_writer_add_tensor(w, "b", 1, ne_b, SI_TYPE_F16) == 1);
    CHECK(si_gguf_writer_add_tensor(w, "c", 2, ne_c, SI_TYPE_Q4_K) == 2);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(si_gguf_writer_write_header(w, fd, &err) == 0);
    CHECK(si_gguf_writer_write_data(w, fd, data, total, &err) == 0);
    CHECKF(si_gguf_writer_finish(w, fd, &err) == 0, "%s", err.msg);
    close(fd);
    si_gguf_writer_free(w);
    free(data);
}

static void check_tensors(const si_gguf *g, uint32_t alignment)
{
    CHECK(si_gguf_n_tensors(g) == 3);
    CHECK(si_gguf_alignment(g) == alignment);
    CHECK(si_gguf_data_offset(g) % alignment == 0);
    const si_gguf_tensor *a = si_gguf_find_tensor(g, "a"), *b = si_gguf_find_tensor(g, "b"),
                         *c = si_gguf_find_tensor(g, "c");
    CHECK(a && b && c && si_gguf_find_tensor(g, "zz") == NULL);
    CHECK(a == si_gguf_tensor_at(g, 0) && c == si_gguf_tensor_at(g, 2));
    CHECK(a->n_dims == 2 && a->ne[0] == 64 && a->ne[1] == 3 && a->ne[2] == 1 && a->type == SI_TYPE_F32);
    CHECK(a->size == 64 * 3 * 4 && b->size == 96 * 2 && c->size == 2 * 144);
    CHECK(a->offset == si_gguf_data_offset(g));
    CHECK(b->offset % alignment == 0 && c->offset % alignment == 0);
    CHECK(c->offset + c->size <= si_gguf_file_size(g));
    /* data bytes came through in order */
    uint8_t *buf = malloc(a->size + b->size + c->size);
    int fd = open(si_gguf_path(g), O_RDONLY);
    uint64_t base = 0;
    const si_gguf_tensor *ts[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        CHECK(pread(fd, buf, ts[i]->size, (off_t)ts[i]->offset) == (ssize_t)ts[i]->size);
        for (uint64_t k = 0; k < ts[i]->size; k++)
            CHECKF(buf[k] == (uint8_t)((base + k) * 7 + 3), "tensor %d byte %llu", i, (unsigned long long)k);
        base += ts[i]->size;
    }
    close(fd);
    free(buf);
}

int main(void)
{
    char *p1 = fmt_path("rt1.gguf"), *p2 = fmt_path("rt2.gguf");
    write_file(p1, NULL);
    si_gguf *g = fmt_open_ok(p1, "round trip");
    CHECK(si_gguf_version(g) == 3);
    check_all(g);
    check_tensors(g, 32);

    /* copy every KV into a file with alignment 64 */
    write_file(p2, g);
    si_gguf *g2 = fmt_open_ok(p2, "copy");
    check_all(g2);
    check_tensors(g2, 64);
    CHECK(si_gguf_n_kv(g2) == si_gguf_n_kv(g) + 1); /* + general.alignment */
    for (uint64_t i = 0; i < si_gguf_n_kv(g); i++) {
        int64_t j = si_gguf_find_key(g2, si_gguf_key(g, i));
        CHECK(j >= 0 && si_gguf_kv_type(g2, (uint64_t)j) == si_gguf_kv_type(g, i));
        CHECK(si_gguf_arr_n(g2, (uint64_t)j) == si_gguf_arr_n(g, i));
    }
    si_gguf_close(g);
    si_gguf_close(g2);

    /* nested arrays: written by hand, readable, refused by getters, copyable */
    bytes b = {0};
    b_header(&b, 3, 0, 2);
    b_str(&b, "nested");
    b_u32(&b, SI_GGUF_ARRAY);
    b_u32(&b, SI_GGUF_ARRAY);
    b_u64(&b, 2);
    b_u32(&b, SI_GGUF_UINT16); b_u64(&b, 2); b_put(&b, "\1\0\2\0", 4);
    b_u32(&b, SI_GGUF_STRING); b_u64(&b, 1); b_str(&b, "in");
    b_str(&b, "after");
    b_u32(&b, SI_GGUF_UINT32);
    b_u32(&b, 77);
    char *p3 = fmt_path("nested.gguf"), *p4 = fmt_path("nested2.gguf");
    fmt_write_file(p3, b.p, b.len);
    g = fmt_open_ok(p3, "nested");
    int64_t k = si_gguf_find_key(g, "nested");
    si_error e;
    si_gguf_vtype et;
    uint64_t n;
    const void *d;
    uint32_t v;
    CHECK(k == 0 && si_gguf_arr_type(g, 0) == SI_GGUF_ARRAY && si_gguf_arr_n(g, 0) == 2);
    CHECK(si_gguf_get_arr(g, "nested", &et, &n, &d, &e) < 0);
    CHECK(si_gguf_get_u32(g, "after", &v, &e) == 0 && v == 77);
    si_gguf_writer *w = si_gguf_writer_new(32);
    CHECK(si_gguf_writer_copy_kv(w, g, 0) == 0 && si_gguf_writer_copy_kv(w, g, 1) == 0);
    int fd = open(p4, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(si_gguf_writer_write_header(w, fd, &e) == 0 && si_gguf_writer_finish(w, fd, &e) == 0);
    close(fd);
    si_gguf_writer_free(w);
    size_t len4;
    uint8_t *f4 = test_read_file(p4, &len4);
    CHECK(f4 && len4 >= b.len && memcmp(f4, b.p, b.len) == 0); /* identical bytes + padding */
    free(f4);
    free(b.p);
    si_gguf_close(g);

    fmt_rmdir();
    printf("round trip ok\n");
    return 0;
}
