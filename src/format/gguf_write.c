/* GGUF v3 writer.
 *
 * Metadata and tensor infos are collected in memory (they are small); tensor data is
 * streamed by the caller straight to the file descriptor in declaration order, so a
 * multi-GB model is written without ever holding a tensor. Every size is checked:
 * write_data refuses bytes beyond the declared tensors, finish refuses a short one.
 * Only write() is used, so the output may be a pipe. */
#include "gguf_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TENSOR_NAME 63 /* llama.cpp's GGML_MAX_NAME is 64 including the NUL */

typedef struct bbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} bbuf;

typedef struct wtensor {
    char *name;
    uint32_t n_dims;
    uint64_t ne[SI_GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t size;   /* data bytes */
    uint64_t offset; /* relative to the data start, aligned */
} wtensor;

enum { W_DECLARE, W_DATA, W_DONE, W_FAILED };

struct si_gguf_writer {
    uint32_t alignment;
    bbuf kv; /* encoded pairs */
    uint64_t n_kv;
    char **keys;
    size_t n_keys, cap_keys;
    bool alignment_key; /* general.alignment already present */
    wtensor *t;
    int n_t, cap_t;
    uint64_t data_size; /* aligned end of the last declared tensor */
    uint64_t header_size;
    int state;
    int cur;           /* tensor receiving data */
    uint64_t cur_done; /* its bytes so far */
};

static void put(bbuf *b, const void *p, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_u32(bbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(bbuf *b, uint64_t v) { put(b, &v, 8); }

static void put_str(bbuf *b, const char *s, uint64_t len)
{
    put_u64(b, len);
    put(b, s, (size_t)len);
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

si_gguf_writer *si_gguf_writer_new(uint32_t alignment)
{
    if (alignment == 0)
        alignment = SI_GGUF_DEFAULT_ALIGNMENT;
    if ((alignment & (alignment - 1)) != 0)
        return NULL;
    si_gguf_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->alignment = alignment;
    /* Readers assume 32 without the key; say so explicitly otherwise. */
    if (alignment != SI_GGUF_DEFAULT_ALIGNMENT &&
        si_gguf_writer_set_u32(w, "general.alignment", alignment) < 0) {
        si_gguf_writer_free(w);
        return NULL;
    }
    return w;
}

void si_gguf_writer_free(si_gguf_writer *w)
{
    if (!w)
        return;
    free(w->kv.p);
    for (size_t i = 0; i < w->n_keys; i++)
        free(w->keys[i]);
    free(w->keys);
    for (int i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->t);
    free(w);
}

/* Start a pair: check the key (non-empty, new) and emit key + type. Returns 1 when
 * the pair must be skipped silently (a general.alignment equal to the writer's). */
static int kv_begin(si_gguf_writer *w, const char *key, uint32_t type)
{
    if (w->state != W_DECLARE || !key || !*key)
        return SI_EINVAL;
    for (size_t i = 0; i < w->n_keys; i++)
        if (strcmp(w->keys[i], key) == 0)
            return w->alignment_key && strcmp(key, "general.alignment") == 0 ? 1 : SI_EINVAL;
    if (w->n_keys == w->cap_keys) {
        size_t cap = w->cap_keys ? w->cap_keys * 2 : 32;
        char **nk = realloc(w->keys, cap * sizeof *nk);
        if (!nk)
            return SI_ENOMEM;
        w->keys = nk;
        w->cap_keys = cap;
    }
    if (!(w->keys[w->n_keys] = strdup(key)))
        return SI_ENOMEM;
    w->n_keys++;
    w->n_kv++;
    put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, type);
    return w->kv.oom ? SI_ENOMEM : 0;
}

static int kv_end(si_gguf_writer *w)
{
    return w->kv.oom ? SI_ENOMEM : 0;
}

int si_gguf_writer_set_scalar(si_gguf_writer *w, const char *key, si_gguf_vtype type, const void *v)
{
    size_t sz = si_gguf_vtype_size(type);
    if (sz == 0)
        return SI_EINVAL;
    if (type == SI_GGUF_BOOL && *(const uint8_t *)v > 1)
        return SI_EINVAL;
    if (key && strcmp(key, "general.alignment") == 0) {
        /* The value decides the file layout: it must match what this writer pads to. */
        uint64_t a = 0;
        if (type != SI_GGUF_UINT32)
            return SI_EINVAL;
        memcpy(&a, v, 4);
        if (a != w->alignment)
            return SI_EINVAL;
    }
    int rc = kv_begin(w, key, type);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (key && strcmp(key, "general.alignment") == 0)
        w->alignment_key = true;
    put(&w->kv, v, sz);
    return kv_end(w);
}

int si_gguf_writer_set_u32(si_gguf_writer *w, const char *key, uint32_t v)
{
    return si_gguf_writer_set_scalar(w, key, SI_GGUF_UINT32, &v);
}

int si_gguf_writer_set_i32(si_gguf_writer *w, const char *key, int32_t v)
{
    return si_gguf_writer_set_scalar(w, key, SI_GGUF_INT32, &v);
}

int si_gguf_writer_set_u64(si_gguf_writer *w, const char *key, uint64_t v)
{
    return si_gguf_writer_set_scalar(w, key, SI_GGUF_UINT64, &v);
}

int si_gguf_writer_set_i64(si_gguf_writer *w, const char *key, int64_t v)
{
    return si_gguf_writer_set_scalar(w, key, SI_GGUF_INT64, &v);
}

int si_gguf_writer_set_f32(si_gguf_writer *w, const char *key, float v)
{
    return si_gguf_writer_set_scalar(w, key, SI_GGUF_FLOAT32, &v);
}

int si_gguf_writer_set_f64(si_gguf_writer *w, const char *key, double v)
{
    return si_gguf_writer_set_scalar(w, key, SI_GGUF_FLOAT64, &v);
}

int si_gguf_writer_set_bool(si_gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return si_gguf_writer_set_scalar(w, key, SI_GGUF_BOOL, &b);
}

static int set_str_n(si_gguf_writer *w, const char *key, const char *s, uint64_t len)
{
    int rc = kv_begin(w, key, SI_GGUF_STRING);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    put_str(&w->kv, s, len);
    return kv_end(w);
}

int si_gguf_writer_set_str(si_gguf_writer *w, const char *key, const char *s)
{
    return s ? set_str_n(w, key, s, strlen(s)) : SI_EINVAL;
}

int si_gguf_writer_set_arr(si_gguf_writer *w, const char *key, si_gguf_vtype elem_type,
                           const void *data, uint64_t n)
{
    size_t sz = si_gguf_vtype_size(elem_type);
    if (sz == 0 || (n > 0 && !data) || n > SIZE_MAX / sz)
        return SI_EINVAL;
    if (elem_type == SI_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1)
                return SI_EINVAL;
    int rc = kv_begin(w, key, SI_GGUF_ARRAY);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    put_u32(&w->kv, elem_type);
    put_u64(&w->kv, n);
    put(&w->kv, data, (size_t)(n * sz));
    return kv_end(w);
}

int si_gguf_writer_set_arr_str(si_gguf_writer *w, const char *key, const char *const *strs,
                               uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (!strs[i])
            return SI_EINVAL;
    int rc = kv_begin(w, key, SI_GGUF_ARRAY);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    put_u32(&w->kv, SI_GGUF_STRING);
    put_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++)
        put_str(&w->kv, strs[i], strlen(strs[i]));
    return kv_end(w);
}

int si_gguf_writer_copy_kv(si_gguf_writer *w, const si_gguf *src, uint64_t i)
{
    if (i >= src->n_kv)
        return SI_EINVAL;
    const si_gguf_kv *kv = &src->kv[i];
    const char *key = si_gguf_str_(src, kv->key);
    if (kv->type == SI_GGUF_STRING)
        return set_str_n(w, key, si_gguf_str_(src, kv->val), src->str_len[kv->val]);
    if (kv->type != SI_GGUF_ARRAY) {
        if (strcmp(key, "general.alignment") == 0)
            return 0; /* layout of the source, not of this file */
        return si_gguf_writer_set_scalar(w, key, (si_gguf_vtype)kv->type, &kv->val);
    }
    if (kv->arr_type != SI_GGUF_STRING && kv->arr_type != SI_GGUF_ARRAY)
        return si_gguf_writer_set_arr(w, key, (si_gguf_vtype)kv->arr_type, src->arena + kv->val,
                                      kv->n);
    int rc = kv_begin(w, key, SI_GGUF_ARRAY);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    put_u32(&w->kv, kv->arr_type);
    put_u64(&w->kv, kv->n);
    if (kv->arr_type == SI_GGUF_ARRAY) {
        put(&w->kv, src->arena + kv->val, (size_t)kv->raw_len); /* validated on read */
    } else {
        for (uint64_t j = 0; j < kv->n; j++)
            put_str(&w->kv, si_gguf_str_(src, kv->val + j), src->str_len[kv->val + j]);
    }
    return kv_end(w);
}

int si_gguf_writer_add_tensor(si_gguf_writer *w, const char *name, uint32_t n_dims,
                              const uint64_t *ne, uint32_t type)
{
    if (w->state != W_DECLARE || !name || !*name || strlen(name) > MAX_TENSOR_NAME)
        return SI_EINVAL;
    if (n_dims < 1 || n_dims > SI_GGUF_MAX_DIMS)
        return SI_EINVAL;
    const si_type_traits *tt = si_type_get(type);
    if (!tt || !tt->name || tt->blck_size <= 0)
        return SI_EUNSUPPORTED;
    uint64_t count = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 1 || ne[d] > (uint64_t)INT64_MAX || count > (uint64_t)INT64_MAX / ne[d])
            return SI_EINVAL;
        count *= ne[d];
    }
    if (ne[0] % (uint64_t)tt->blck_size != 0)
        return SI_EINVAL;
    uint64_t row = ne[0] / (uint64_t)tt->blck_size * tt->type_size;
    uint64_t rows = count / ne[0];
    if (row != 0 && rows > (UINT64_MAX / 2) / row)
        return SI_EINVAL;
    for (int i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return SI_EINVAL;
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt)
            return SI_ENOMEM;
        w->t = nt;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name)))
        return SI_ENOMEM;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < SI_GGUF_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    t->type = type;
    t->size = row * rows;
    t->offset = w->data_size;
    if (t->size > UINT64_MAX / 2 - w->data_size) {
        free(t->name);
        return SI_EINVAL;
    }
    w->data_size = align_up(t->offset + t->size, w->alignment);
    return w->n_t++;
}

static int write_all(int fd, const void *p, size_t n, si_error *err)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return si_errorf(err, SI_EIO, "gguf writer: write failed: %s",
                             k < 0 ? strerror(errno) : "no progress");
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

static int write_zeros(int fd, uint64_t n, si_error *err)
{
    static const uint8_t zeros[256];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        SI_TRY(write_all(fd, zeros, k, err));
        n -= k;
    }
    return 0;
}

static void encode_header(const si_gguf_writer *w, bbuf *h)
{
    put_u32(h, SI_GGUF_MAGIC);
    put_u32(h, 3);
    put_u64(h, (uint64_t)w->n_t);
    put_u64(h, w->n_kv);
    put(h, w->kv.p, w->kv.len);
    for (int i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(h, t->name, strlen(t->name));
        put_u32(h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(h, t->ne[d]);
        put_u32(h, t->type);
        put_u64(h, t->offset);
    }
}

uint64_t si_gguf_writer_header_size(const si_gguf_writer *w)
{
    bbuf h = {0};
    encode_header(w, &h);
    uint64_t n = align_up(h.len, w->alignment);
    free(h.p);
    return n;
}

int si_gguf_writer_write_header(si_gguf_writer *w, int fd, si_error *err)
{
    if (w->state != W_DECLARE)
        return si_errorf(err, SI_EINVAL, "gguf writer: header already written");
    off_t pos = lseek(fd, 0, SEEK_CUR);
    if (pos > 0)
        return si_errorf(err, SI_EINVAL, "gguf writer: output is at byte %lld, not at its start",
                         (long long)pos);
    if (w->kv.oom)
        return si_errorf(err, SI_ENOMEM, "gguf writer: out of memory building metadata");
    bbuf h = {0};
    encode_header(w, &h);
    if (h.oom) {
        free(h.p);
        return si_errorf(err, SI_ENOMEM, "gguf writer: out of memory building the header");
    }
    w->header_size = align_up(h.len, w->alignment);
    int rc = write_all(fd, h.p, h.len, err);
    if (rc == 0)
        rc = write_zeros(fd, w->header_size - h.len, err);
    free(h.p);
    w->state = rc == 0 ? W_DATA : W_FAILED;
    w->cur = 0;
    w->cur_done = 0;
    return rc;
}

int si_gguf_writer_write_data(si_gguf_writer *w, int fd, const void *data, size_t n, si_error *err)
{
    if (w->state != W_DATA)
        return si_errorf(err, SI_EINVAL, "gguf writer: write_data before the header or after an error");
    const uint8_t *p = data;
    while (n > 0) {
        if (w->cur >= w->n_t) {
            w->state = W_FAILED;
            return si_errorf(err, SI_EINVAL, "gguf writer: %zu bytes more than the declared tensors hold", n);
        }
        wtensor *t = &w->t[w->cur];
        uint64_t left = t->size - w->cur_done;
        size_t take = n < left ? n : (size_t)left;
        int rc = write_all(fd, p, take, err);
        if (rc < 0) {
            w->state = W_FAILED;
            return si_error_prefix(err, "tensor '%s'", t->name);
        }
        p += take;
        n -= take;
        w->cur_done += take;
        if (w->cur_done == t->size) {
            /* Pad to where the next tensor (or the end of the data) starts. */
            rc = write_zeros(fd, align_up(t->size, w->alignment) - t->size, err);
            if (rc < 0) {
                w->state = W_FAILED;
                return rc;
            }
            w->cur++;
            w->cur_done = 0;
        }
    }
    return 0;
}

int si_gguf_writer_finish(si_gguf_writer *w, int fd, si_error *err)
{
    if (w->state != W_DATA)
        return si_errorf(err, SI_EINVAL, "gguf writer: finish before the header or after an error");
    if (w->cur < w->n_t) {
        const wtensor *t = &w->t[w->cur];
        w->state = W_FAILED;
        return si_errorf(err, SI_EINVAL, "gguf writer: tensor '%s' got %llu of its %llu bytes (%d tensors not complete)",
                         t->name, (unsigned long long)w->cur_done, (unsigned long long)t->size,
                         w->n_t - w->cur);
    }
    w->state = W_DONE;
    return 0;
}

uint64_t si_gguf_writer_tensor_size(const si_gguf_writer *w, int i)
{
    return i >= 0 && i < w->n_t ? w->t[i].size : 0;
}

uint64_t si_gguf_writer_tensor_offset(const si_gguf_writer *w, int i)
{
    return i >= 0 && i < w->n_t ? w->t[i].offset : 0;
}
