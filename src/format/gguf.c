/* GGUF v2/v3 reader.
 *
 * Layout (all little-endian): magic "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 * n_kv x (string key, u32 type, value), n_tensors x (string name, u32 n_dims,
 * u64 ne[n_dims], u32 type, u64 offset), padding to `alignment`, tensor data.
 * A string is u64 length + bytes (no NUL); an array is u32 element type, u64 count,
 * elements. v1 had 32-bit counts and lengths and is refused.
 *
 * The file is hostile until proven otherwise: every count is checked against the
 * bytes left in the file (each element needs at least its minimal encoding), so no
 * allocation can exceed a small multiple of the file size, and every arithmetic step
 * on file values is overflow-checked. Metadata is read with pread through a sliding
 * window; strings are copied into one arena so 400k vocabulary strings cost a few
 * memcpys, not 400k mallocs. Tensor data is never read. */
#include "gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The arena hands out raw little-endian values as-is. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

#define WINDOW_MIN (1u << 20) /* pread granularity */
#define MAX_NESTING 16        /* arrays of arrays of ... (recursion bound) */
#define KV_MIN_BYTES 13       /* key len 8 + key >= 0 + type 4 + value >= 1 */
#define TI_MIN_BYTES 33       /* name len 8 + name >= 1 + n_dims 4 + ne 8 + type 4 + offset 8 */

static const char *const vtype_names[SI_GGUF_VTYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64",
};

const char *si_gguf_vtype_name(uint32_t t)
{
    return t < SI_GGUF_VTYPE_COUNT ? vtype_names[t] : "unknown";
}

size_t si_gguf_vtype_size(uint32_t t)
{
    switch (t) {
    case SI_GGUF_UINT8: case SI_GGUF_INT8: case SI_GGUF_BOOL: return 1;
    case SI_GGUF_UINT16: case SI_GGUF_INT16: return 2;
    case SI_GGUF_UINT32: case SI_GGUF_INT32: case SI_GGUF_FLOAT32: return 4;
    case SI_GGUF_UINT64: case SI_GGUF_INT64: case SI_GGUF_FLOAT64: return 8;
    }
    return 0;
}

/* Smallest possible encoding of one element of type t (for count bounds). */
static uint64_t vtype_min_bytes(uint32_t t)
{
    if (t == SI_GGUF_STRING)
        return 8;
    if (t == SI_GGUF_ARRAY)
        return 12;
    return si_gguf_vtype_size(t);
}

/* ---- parse state: a pread window over the file ---- */

typedef struct rd {
    si_gguf *g;
    int fd;
    si_error *err;
    uint8_t *buf;
    size_t cap;
    uint64_t base; /* file offset of buf[0] */
    size_t len;    /* valid bytes in buf */
    uint64_t pos;  /* parse position */
    int code;      /* status of the last failure (err may be NULL) */
    uint64_t region; /* file offset of the GGUF's first byte (embedded in a pack) */
} rd;

/* Fail with "path: byte OFF: message". Every format error goes through here. */
__attribute__((format(printf, 4, 5)))
static int fail(rd *r, int code, uint64_t off, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->code = code;
    return si_errorf(r->err, code, "%s: byte %llu: %s", r->g->path, (unsigned long long)(r->region + off), msg);
}

#define FAIL(r, off, ...) return fail((r), SI_EFORMAT, (off), __VA_ARGS__)

static uint64_t remaining(const rd *r)
{
    return r->g->file_size - r->pos;
}

/* Make [pos, pos+n) resident and return a pointer to it; NULL (error set) when the
 * file ends first. `what` names the field for the message. */
static const uint8_t *need(rd *r, uint64_t n, const char *what)
{
    static const uint8_t none[1];
    if (n == 0)
        return none;
    if (n > remaining(r)) {
        fail(r, SI_EIO, r->pos, "%s: needs %llu bytes but the file ends at %llu", what,
             (unsigned long long)n, (unsigned long long)r->g->file_size);
        return NULL;
    }
    if (r->pos >= r->base && r->pos + n <= r->base + r->len)
        return r->buf + (r->pos - r->base);
    uint64_t want = n > WINDOW_MIN ? n : WINDOW_MIN;
    if (want > remaining(r))
        want = remaining(r);
    if (want > r->cap) {
        uint8_t *nb = realloc(r->buf, (size_t)want);
        if (!nb) {
            r->code = SI_ENOMEM;
            si_errorf(r->err, SI_ENOMEM, "%s: out of memory reading %llu bytes of metadata",
                      r->g->path, (unsigned long long)want);
            return NULL;
        }
        r->buf = nb;
        r->cap = (size_t)want;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(r->fd, r->buf + got, (size_t)want - got, (off_t)(r->region + r->pos + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            fail(r, SI_EIO, r->pos + got, "%s: read failed: %s", what,
                 k < 0 ? strerror(errno) : "unexpected end of file");
            return NULL;
        }
        got += (size_t)k;
    }
    r->base = r->pos;
    r->len = got;
    return r->buf;
}

static int rd_u32(rd *r, uint32_t *v, const char *what)
{
    const uint8_t *p = need(r, 4, what);
    if (!p)
        return r->code;
    memcpy(v, p, 4);
    r->pos += 4;
    return 0;
}

static int rd_u64(rd *r, uint64_t *v, const char *what)
{
    const uint8_t *p = need(r, 8, what);
    if (!p)
        return r->code;
    memcpy(v, p, 8);
    r->pos += 8;
    return 0;
}

/* Status of the last failed need() (err may be NULL). */
static int last_code(rd *r)
{
    return r->code;
}

/* ---- arena and string table ---- */

/* Reserve n bytes aligned to `align` (a power of two); returns the offset or sets *rc.
 * Array payloads are 8-aligned so callers may read them as typed arrays; strings are
 * packed tightly. */
static uint64_t arena_alloc(rd *r, uint64_t n, size_t align, int *rc)
{
    si_gguf *g = r->g;
    size_t start = (g->arena_len + align - 1) & ~(align - 1);
    if (n > SIZE_MAX - start - 8) {
        *rc = si_errorf(r->err, SI_ENOMEM, "%s: metadata too large", g->path);
        return 0;
    }
    size_t end = start + (size_t)n;
    if (end > g->arena_cap) {
        size_t cap = g->arena_cap ? g->arena_cap : 1 << 16;
        while (cap < end)
            cap = cap > SIZE_MAX / 2 ? end : cap * 2;
        char *na = realloc(g->arena, cap);
        if (!na) {
            *rc = si_errorf(r->err, SI_ENOMEM, "%s: out of memory (%zu bytes of metadata)",
                            g->path, cap);
            return 0;
        }
        g->arena = na;
        g->arena_cap = cap;
    }
    g->arena_len = end;
    *rc = 0;
    return start;
}

/* Copy file bytes [pos, pos+n) into the arena at off, advancing pos. */
static int copy_out(rd *r, uint64_t off, uint64_t n, const char *what)
{
    while (n > 0) {
        uint64_t chunk = n < WINDOW_MIN ? n : WINDOW_MIN;
        const uint8_t *p = need(r, chunk, what);
        if (!p)
            return last_code(r);
        memcpy(r->g->arena + off, p, (size_t)chunk);
        off += chunk;
        r->pos += chunk;
        n -= chunk;
    }
    return 0;
}

/* Read one GGUF string into the string table; *idx receives its index. Keys and
 * tensor names (is_name) must be non-empty and free of NUL bytes. */
static int rd_string(rd *r, uint64_t *idx, const char *what, bool is_name)
{
    si_gguf *g = r->g;
    uint64_t at = r->pos, len = 0;
    SI_TRY(rd_u64(r, &len, what));
    if (len > remaining(r))
        return fail(r, SI_EIO, at, "%s: string length %llu runs past end of file (%llu bytes)",
                    what, (unsigned long long)len, (unsigned long long)g->file_size);
    if (is_name && len == 0)
        FAIL(r, at, "%s: empty name", what);
    if (g->n_str == g->cap_str) {
        size_t cap = g->cap_str ? g->cap_str * 2 : 1024;
        uint64_t *no = realloc(g->str_off, cap * sizeof *no);
        if (no)
            g->str_off = no;
        uint64_t *nl = no ? realloc(g->str_len, cap * sizeof *nl) : NULL;
        if (!nl)
            return si_errorf(r->err, SI_ENOMEM, "%s: out of memory (string table)", g->path);
        g->str_len = nl;
        g->cap_str = cap;
    }
    int rc;
    uint64_t off = arena_alloc(r, len + 1, 1, &rc);
    if (rc)
        return rc;
    SI_TRY(copy_out(r, off, len, what));
    g->arena[off + len] = '\0';
    if (is_name && memchr(g->arena + off, '\0', (size_t)len))
        FAIL(r, at, "%s: name contains a NUL byte", what);
    g->str_off[g->n_str] = off;
    g->str_len[g->n_str] = len;
    *idx = g->n_str++;
    return 0;
}

/* ---- metadata values ---- */

static int check_bools(rd *r, uint64_t at, const uint8_t *p, uint64_t n, const char *what)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i] > 1)
            FAIL(r, at + i, "%s: bool value %u is not 0 or 1", what, p[i]);
    return 0;
}

/* Validate and skip an array body (elem type + count + elements) without storing it:
 * used for arrays nested inside arrays. */
static int skip_array(rd *r, int depth, const char *what)
{
    uint64_t at = r->pos;
    uint32_t et = 0;
    uint64_t n = 0;
    if (depth > MAX_NESTING)
        FAIL(r, at, "%s: arrays nested deeper than %d", what, MAX_NESTING);
    SI_TRY(rd_u32(r, &et, what));
    SI_TRY(rd_u64(r, &n, what));
    if (et >= SI_GGUF_VTYPE_COUNT)
        FAIL(r, at, "%s: unknown array element type %u", what, et);
    uint64_t minb = vtype_min_bytes(et);
    if (n > remaining(r) / minb)
        return fail(r, SI_EIO, at + 4, "%s: array count %llu of %s needs at least %llu bytes per element, only %llu bytes left",
                    what, (unsigned long long)n, si_gguf_vtype_name(et), (unsigned long long)minb,
                    (unsigned long long)remaining(r));
    if (et == SI_GGUF_ARRAY) {
        for (uint64_t i = 0; i < n; i++)
            SI_TRY(skip_array(r, depth + 1, what));
    } else if (et == SI_GGUF_STRING) {
        for (uint64_t i = 0; i < n; i++) {
            uint64_t sat = r->pos, len = 0;
            SI_TRY(rd_u64(r, &len, what));
            if (len > remaining(r))
                return fail(r, SI_EIO, sat, "%s: string length %llu runs past end of file", what,
                            (unsigned long long)len);
            r->pos += len;
        }
    } else {
        uint64_t bytes = n * minb;
        if (et == SI_GGUF_BOOL) {
            for (uint64_t done = 0; done < bytes;) {
                uint64_t chunk = bytes - done < WINDOW_MIN ? bytes - done : WINDOW_MIN;
                const uint8_t *p = need(r, chunk, what);
                if (!p)
                    return last_code(r);
                SI_TRY(check_bools(r, r->pos, p, chunk, what));
                r->pos += chunk;
                done += chunk;
            }
        } else {
            r->pos += bytes; /* bounded by remaining() above */
        }
    }
    return 0;
}

static int rd_array(rd *r, si_gguf_kv *kv, const char *what)
{
    uint64_t at = r->pos;
    SI_TRY(rd_u32(r, &kv->arr_type, what));
    SI_TRY(rd_u64(r, &kv->n, what));
    uint32_t et = kv->arr_type;
    if (et >= SI_GGUF_VTYPE_COUNT)
        FAIL(r, at, "%s: unknown array element type %u", what, et);
    uint64_t minb = vtype_min_bytes(et);
    if (kv->n > remaining(r) / minb)
        return fail(r, SI_EIO, at + 4, "%s: array count %llu of %s needs at least %llu bytes per element, only %llu bytes left",
                    what, (unsigned long long)kv->n, si_gguf_vtype_name(et),
                    (unsigned long long)minb, (unsigned long long)remaining(r));
    int rc;
    if (et == SI_GGUF_STRING) {
        kv->val = r->g->n_str;
        for (uint64_t i = 0; i < kv->n; i++) {
            uint64_t idx;
            SI_TRY(rd_string(r, &idx, what, false));
        }
    } else if (et == SI_GGUF_ARRAY) {
        /* Validate first, then keep the raw bytes so the writer can copy them. */
        uint64_t start = r->pos;
        for (uint64_t i = 0; i < kv->n; i++)
            SI_TRY(skip_array(r, 1, what));
        kv->raw_len = r->pos - start;
        kv->val = arena_alloc(r, kv->raw_len, 8, &rc);
        if (rc)
            return rc;
        r->pos = start;
        SI_TRY(copy_out(r, kv->val, kv->raw_len, what));
    } else {
        uint64_t bytes = kv->n * minb, data_at = r->pos;
        kv->val = arena_alloc(r, bytes, 8, &rc);
        if (rc)
            return rc;
        SI_TRY(copy_out(r, kv->val, bytes, what));
        if (et == SI_GGUF_BOOL)
            SI_TRY(check_bools(r, data_at, (const uint8_t *)r->g->arena + kv->val, kv->n, what));
    }
    return 0;
}

static int rd_value(rd *r, si_gguf_kv *kv, const char *what)
{
    uint64_t at = r->pos;
    if (kv->type == SI_GGUF_STRING)
        return rd_string(r, &kv->val, what, false);
    if (kv->type == SI_GGUF_ARRAY)
        return rd_array(r, kv, what);
    size_t sz = si_gguf_vtype_size(kv->type);
    if (sz == 0)
        FAIL(r, at - 4, "%s: unknown value type %u", what, kv->type);
    const uint8_t *p = need(r, sz, what);
    if (!p)
        return last_code(r);
    kv->val = 0;
    memcpy(&kv->val, p, sz);
    if (kv->type == SI_GGUF_BOOL)
        SI_TRY(check_bools(r, at, p, 1, what));
    r->pos += sz;
    return 0;
}

/* ---- hashing (FNV-1a) for keys and tensor names ---- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static uint64_t *hash_new(uint64_t n, uint64_t *mask)
{
    uint64_t size = 16;
    while (size < 2 * n)
        size *= 2;
    *mask = size - 1;
    return calloc((size_t)size, sizeof(uint64_t));
}

/* Find `name` in a table; name_of(i) gives entry i's name. Returns index or -1. */
typedef const char *(*name_fn)(const si_gguf *g, uint64_t i);

static int64_t hash_find(const si_gguf *g, const uint64_t *tab, uint64_t mask, name_fn name_of,
                         const char *name)
{
    if (!tab)
        return -1;
    for (uint64_t h = hash_str(name) & mask;; h = (h + 1) & mask) {
        if (tab[h] == 0)
            return -1;
        if (strcmp(name_of(g, tab[h] - 1), name) == 0)
            return (int64_t)(tab[h] - 1);
    }
}

/* Insert entry i; returns the index of an existing entry with the same name, or -1. */
static int64_t hash_insert(const si_gguf *g, uint64_t *tab, uint64_t mask, name_fn name_of,
                           uint64_t i)
{
    const char *name = name_of(g, i);
    for (uint64_t h = hash_str(name) & mask;; h = (h + 1) & mask) {
        if (tab[h] == 0) {
            tab[h] = i + 1;
            return -1;
        }
        if (strcmp(name_of(g, tab[h] - 1), name) == 0)
            return (int64_t)(tab[h] - 1);
    }
}

static const char *kv_name(const si_gguf *g, uint64_t i)
{
    return si_gguf_str_(g, g->kv[i].key);
}

static const char *tensor_name(const si_gguf *g, uint64_t i)
{
    return g->tensors[i].name;
}

/* ---- header, KVs, tensor infos ---- */

static int rd_header(rd *r)
{
    si_gguf *g = r->g;
    uint32_t magic = 0;
    if (g->file_size < 4)
        return fail(r, SI_EIO, 0, "file is %llu bytes, too short for a GGUF header",
                    (unsigned long long)g->file_size);
    SI_TRY(rd_u32(r, &magic, "magic"));
    if (magic != SI_GGUF_MAGIC)
        FAIL(r, 0, "not a GGUF file (magic %08x, expected \"GGUF\")", magic);
    SI_TRY(rd_u32(r, &g->version, "version"));
    if (g->version == 1)
        FAIL(r, 4, "GGUF version 1 is not supported (32-bit counts); re-convert the model with a current llama.cpp");
    if ((g->version & 0xffff) == 0 && g->version != 0)
        FAIL(r, 4, "version %08x looks byte-swapped: big-endian GGUF is not supported", g->version);
    if (g->version != 2 && g->version != 3)
        FAIL(r, 4, "unsupported GGUF version %u (expected 2 or 3)", g->version);
    SI_TRY(rd_u64(r, &g->n_tensors, "tensor count"));
    SI_TRY(rd_u64(r, &g->n_kv, "metadata count"));
    /* Each pair / info needs a minimal number of bytes: bound the counts by what is
     * left so the arrays allocated below stay proportional to the file. */
    if (g->n_kv > remaining(r) / KV_MIN_BYTES)
        return fail(r, SI_EIO, 16, "metadata count %llu needs at least %llu bytes each, only %llu bytes left",
                    (unsigned long long)g->n_kv, (unsigned long long)KV_MIN_BYTES,
                    (unsigned long long)remaining(r));
    if (g->n_tensors > (remaining(r) - g->n_kv * KV_MIN_BYTES) / TI_MIN_BYTES)
        return fail(r, SI_EIO, 8, "tensor count %llu needs at least %llu bytes each, only %llu bytes left",
                    (unsigned long long)g->n_tensors, (unsigned long long)TI_MIN_BYTES,
                    (unsigned long long)remaining(r));
    return 0;
}

static int rd_kvs(rd *r)
{
    si_gguf *g = r->g;
    g->kv = calloc(g->n_kv ? (size_t)g->n_kv : 1, sizeof *g->kv);
    g->kv_hash = hash_new(g->n_kv, &g->kv_hash_mask);
    if (!g->kv || !g->kv_hash)
        return si_errorf(r->err, SI_ENOMEM, "%s: out of memory (%llu metadata pairs)", g->path,
                         (unsigned long long)g->n_kv);
    char what[160];
    for (uint64_t i = 0; i < g->n_kv; i++) {
        si_gguf_kv *kv = &g->kv[i];
        kv->off = r->pos;
        snprintf(what, sizeof what, "metadata pair %llu key", (unsigned long long)i);
        SI_TRY(rd_string(r, &kv->key, what, true));
        snprintf(what, sizeof what, "key '%.100s'", kv_name(g, i));
        SI_TRY(rd_u32(r, &kv->type, what));
        if (kv->type >= SI_GGUF_VTYPE_COUNT)
            FAIL(r, r->pos - 4, "%s: unknown value type %u", what, kv->type);
        SI_TRY(rd_value(r, kv, what));
        int64_t dup = hash_insert(g, g->kv_hash, g->kv_hash_mask, kv_name, i);
        if (dup >= 0)
            FAIL(r, kv->off, "%s: duplicate key (first at byte %llu)", what,
                 (unsigned long long)g->kv[dup].off);
    }
    return 0;
}

static int get_alignment(rd *r)
{
    si_gguf *g = r->g;
    g->alignment = SI_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = si_gguf_find_key(g, "general.alignment");
    if (i < 0)
        return 0;
    const si_gguf_kv *kv = &g->kv[i];
    uint64_t v;
    si_error e;
    if (si_gguf_get_u64(g, "general.alignment", &v, &e) < 0)
        FAIL(r, kv->off, "key 'general.alignment': must be an unsigned integer, got %s",
             si_gguf_vtype_name(kv->type));
    if (v == 0 || (v & (v - 1)) != 0 || v > (1u << 30))
        FAIL(r, kv->off, "key 'general.alignment': %llu is not a nonzero power of two (<= 2^30)",
             (unsigned long long)v);
    g->alignment = (uint32_t)v;
    return 0;
}

/* Shape and type of one tensor info; the data range is checked once the data start
 * is known. `name` is for messages. */
static int check_shape(rd *r, si_gguf_tensor *t, uint64_t at)
{
    const char *name = t->name ? t->name : "?";
    if (t->n_dims < 1 || t->n_dims > SI_GGUF_MAX_DIMS)
        FAIL(r, at, "tensor '%s': n_dims %u not in 1..%d", name, t->n_dims, SI_GGUF_MAX_DIMS);
    uint64_t count = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] < 1 || t->ne[d] > (uint64_t)INT64_MAX)
            FAIL(r, at, "tensor '%s': dimension %u is %llu", name, d, (unsigned long long)t->ne[d]);
        if (count > (uint64_t)INT64_MAX / t->ne[d])
            FAIL(r, at, "tensor '%s': element count overflows (dimension %u = %llu)", name, d,
                 (unsigned long long)t->ne[d]);
        count *= t->ne[d];
    }
    const si_type_traits *tt = si_type_get(t->type);
    if (!tt || !tt->name)
        FAIL(r, at, "tensor '%s': unknown tensor type id %u", name, t->type);
    if (tt->blck_size <= 0 || t->ne[0] % (uint64_t)tt->blck_size != 0)
        FAIL(r, at, "tensor '%s': row length %llu is not a multiple of %s's block size %lld", name,
             (unsigned long long)t->ne[0], tt->name, (long long)tt->blck_size);
    uint64_t rows = count / t->ne[0];
    uint64_t blocks = t->ne[0] / (uint64_t)tt->blck_size;
    if (tt->type_size && blocks > UINT64_MAX / tt->type_size)
        FAIL(r, at, "tensor '%s': row size overflows", name);
    uint64_t row = blocks * tt->type_size;
    if (row != 0 && rows > UINT64_MAX / row)
        FAIL(r, at, "tensor '%s': data size overflows (%llu rows of %llu bytes)", name,
             (unsigned long long)rows, (unsigned long long)row);
    t->size = row * rows;
    return 0;
}

static int rd_tensor_infos(rd *r)
{
    si_gguf *g = r->g;
    if (g->n_tensors > remaining(r) / TI_MIN_BYTES)
        return fail(r, SI_EIO, 8, "tensor count %llu needs at least %d bytes each, only %llu bytes left",
                    (unsigned long long)g->n_tensors, TI_MIN_BYTES, (unsigned long long)remaining(r));
    g->tensors = calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *g->tensors);
    uint64_t *name_idx = calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *name_idx);
    if (!g->tensors || !name_idx) {
        free(name_idx);
        return si_errorf(r->err, SI_ENOMEM, "%s: out of memory (%llu tensors)", g->path,
                         (unsigned long long)g->n_tensors);
    }
    char what[160];
    int rc = 0;
    for (uint64_t i = 0; i < g->n_tensors && rc == 0; i++) {
        si_gguf_tensor *t = &g->tensors[i];
        t->info_offset = r->pos;
        snprintf(what, sizeof what, "tensor info %llu name", (unsigned long long)i);
        if ((rc = rd_string(r, &name_idx[i], what, true)) < 0)
            break;
        /* The arena may move while parsing; names are pointed to at the end. */
        const char *nm = si_gguf_str_(g, name_idx[i]);
        snprintf(what, sizeof what, "tensor '%.100s'", nm);
        if ((rc = rd_u32(r, &t->n_dims, what)) < 0)
            break;
        if (t->n_dims < 1 || t->n_dims > SI_GGUF_MAX_DIMS) {
            rc = fail(r, SI_EFORMAT, r->pos - 4, "%s: n_dims %u not in 1..%d", what, t->n_dims,
                      SI_GGUF_MAX_DIMS);
            break;
        }
        for (uint32_t d = 0; d < SI_GGUF_MAX_DIMS; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims && rc == 0; d++)
            rc = rd_u64(r, &t->ne[d], what);
        if (rc == 0)
            rc = rd_u32(r, &t->type, what);
        if (rc == 0)
            rc = rd_u64(r, &t->offset, what); /* relative for now */
        if (rc == 0) {
            t->name = nm; /* temporary, for messages */
            rc = check_shape(r, t, t->info_offset);
        }
    }
    if (rc == 0) {
        for (uint64_t i = 0; i < g->n_tensors; i++)
            g->tensors[i].name = si_gguf_str_(g, name_idx[i]);
    }
    free(name_idx);
    return rc;
}

typedef struct span {
    uint64_t off, end, idx;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Place tensors after the aligned data start; check alignment, bounds, overlap and
 * duplicate names. */
static int check_data(rd *r)
{
    si_gguf *g = r->g;
    uint64_t a = g->alignment;
    g->data_offset = (r->pos + a - 1) / a * a; /* pos <= file size: no overflow */
    g->t_hash = hash_new(g->n_tensors, &g->t_hash_mask);
    span *sp = calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *sp);
    if (!g->t_hash || !sp) {
        free(sp);
        return si_errorf(r->err, SI_ENOMEM, "%s: out of memory", g->path);
    }
    int rc = 0;
    for (uint64_t i = 0; i < g->n_tensors && rc == 0; i++) {
        si_gguf_tensor *t = &g->tensors[i];
        uint64_t rel = t->offset;
        int64_t dup = hash_insert(g, g->t_hash, g->t_hash_mask, tensor_name, i);
        if (dup >= 0) {
            rc = fail(r, SI_EFORMAT, t->info_offset, "tensor '%s': duplicate name (first at byte %llu)",
                      t->name, (unsigned long long)g->tensors[dup].info_offset);
        } else if (rel % a != 0) {
            rc = fail(r, SI_EFORMAT, t->info_offset, "tensor '%s': data offset %llu is not a multiple of the alignment %u",
                      t->name, (unsigned long long)rel, g->alignment);
        } else if (rel > g->file_size || g->data_offset > g->file_size - rel ||
                   t->size > g->file_size - g->data_offset - rel) {
            /* Print the range without overflowing: saturate. */
            uint64_t start = rel > UINT64_MAX - g->data_offset ? UINT64_MAX : g->data_offset + rel;
            uint64_t end = t->size > UINT64_MAX - start ? UINT64_MAX : start + t->size;
            rc = fail(r, SI_EIO, t->info_offset, "tensor '%s': data [%llu, %llu) runs past end of file (%llu bytes)",
                      t->name, (unsigned long long)start, (unsigned long long)end,
                      (unsigned long long)g->file_size);
        } else {
            t->offset = g->data_offset + rel;
            sp[i] = (span){t->offset, t->offset + t->size, i};
        }
    }
    if (rc == 0 && g->n_tensors > 1) {
        qsort(sp, (size_t)g->n_tensors, sizeof *sp, span_cmp);
        for (uint64_t k = 1; k < g->n_tensors && rc == 0; k++) {
            if (sp[k].off < sp[k - 1].end) {
                const si_gguf_tensor *t = &g->tensors[sp[k].idx], *p = &g->tensors[sp[k - 1].idx];
                rc = fail(r, SI_EFORMAT, t->info_offset, "tensor '%s': data [%llu, %llu) overlaps tensor '%s' [%llu, %llu)",
                          t->name, (unsigned long long)sp[k].off, (unsigned long long)sp[k].end,
                          p->name, (unsigned long long)sp[k - 1].off, (unsigned long long)sp[k - 1].end);
            }
        }
    }
    free(sp);
    return rc;
}

int si_gguf_open(si_gguf **out, const char *path, si_error *err)
{
    return si_gguf_open_region(out, path, 0, UINT64_MAX, err);
}

/* A GGUF embedded in a larger file (a pack's metadata): offsets and sizes are
 * relative to the region, errors name absolute file offsets. */
int si_gguf_open_region(si_gguf **out, const char *path, uint64_t offset, uint64_t size, si_error *err)
{
    *out = NULL;
    si_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        return si_errorf(err, SI_ENOMEM, "%s: out of memory", path);
    }
    rd r = {.g = g, .fd = -1, .err = err, .region = offset};
    int rc = 0;
    r.fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (r.fd < 0) {
        rc = si_errorf(err, SI_EIO, "%s: cannot open: %s", path, strerror(errno));
    } else if (fstat(r.fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = si_errorf(err, SI_EIO, "%s: not a regular file", path);
    } else {
        g->file_size = (uint64_t)st.st_size;
        if (size != UINT64_MAX) {
            if (offset > g->file_size || size > g->file_size - offset)
                rc = si_errorf(err, SI_EIO, "%s: embedded GGUF [%llu, +%llu) runs past the end of the file (%llu bytes)",
                               path, (unsigned long long)offset, (unsigned long long)size,
                               (unsigned long long)g->file_size);
            g->file_size = size;
        }
        if (rc == 0 && (rc = rd_header(&r)) == 0 && (rc = rd_kvs(&r)) == 0 && (rc = get_alignment(&r)) == 0 &&
            (rc = rd_tensor_infos(&r)) == 0)
            rc = check_data(&r);
    }
    if (r.fd >= 0)
        close(r.fd);
    free(r.buf);
    if (rc < 0) {
        si_gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

void si_gguf_close(si_gguf *g)
{
    if (!g)
        return;
    free(g->path);
    free(g->arena);
    free(g->str_off);
    free(g->str_len);
    free(g->kv);
    free(g->kv_hash);
    free(g->tensors);
    free(g->t_hash);
    free(g);
}

/* ---- accessors ---- */

const char *si_gguf_path(const si_gguf *g) { return g->path; }
uint32_t si_gguf_version(const si_gguf *g) { return g->version; }
uint64_t si_gguf_file_size(const si_gguf *g) { return g->file_size; }
uint32_t si_gguf_alignment(const si_gguf *g) { return g->alignment; }
uint64_t si_gguf_data_offset(const si_gguf *g) { return g->data_offset; }
uint64_t si_gguf_n_kv(const si_gguf *g) { return g->n_kv; }

int64_t si_gguf_find_key(const si_gguf *g, const char *key)
{
    return hash_find(g, g->kv_hash, g->kv_hash_mask, kv_name, key);
}

const char *si_gguf_key(const si_gguf *g, uint64_t i)
{
    return i < g->n_kv ? kv_name(g, i) : NULL;
}

si_gguf_vtype si_gguf_kv_type(const si_gguf *g, uint64_t i)
{
    return i < g->n_kv ? (si_gguf_vtype)g->kv[i].type : SI_GGUF_VTYPE_COUNT;
}

si_gguf_vtype si_gguf_arr_type(const si_gguf *g, uint64_t i)
{
    return i < g->n_kv && g->kv[i].type == SI_GGUF_ARRAY ? (si_gguf_vtype)g->kv[i].arr_type
                                                         : SI_GGUF_VTYPE_COUNT;
}

uint64_t si_gguf_arr_n(const si_gguf *g, uint64_t i)
{
    return i < g->n_kv && g->kv[i].type == SI_GGUF_ARRAY ? g->kv[i].n : 0;
}

uint64_t si_gguf_kv_offset(const si_gguf *g, uint64_t i)
{
    return i < g->n_kv ? g->kv[i].off : 0;
}

/* The pair for key, or NULL with "key not found" (SI_EFORMAT) in err. */
static const si_gguf_kv *lookup(const si_gguf *g, const char *key, si_error *err)
{
    int64_t i = si_gguf_find_key(g, key);
    if (i < 0) {
        si_errorf(err, SI_EFORMAT, "%s: key '%s' not found", g->path, key);
        return NULL;
    }
    return &g->kv[i];
}

static int wrong_type(const si_gguf *g, const si_gguf_kv *kv, const char *want, si_error *err)
{
    return si_errorf(err, SI_EFORMAT, "%s: byte %llu: key '%s' has type %s, expected %s", g->path,
                     (unsigned long long)kv->off, si_gguf_str_(g, kv->key),
                     si_gguf_vtype_name(kv->type), want);
}

/* Integer value of a scalar: *neg set for negative signed values (stored in *s). */
static bool kv_integer(const si_gguf_kv *kv, uint64_t *u, int64_t *s, bool *neg)
{
    *neg = false;
    switch (kv->type) {
    case SI_GGUF_UINT8: *u = (uint8_t)kv->val; break;
    case SI_GGUF_UINT16: *u = (uint16_t)kv->val; break;
    case SI_GGUF_UINT32: *u = (uint32_t)kv->val; break;
    case SI_GGUF_UINT64: *u = kv->val; break;
    case SI_GGUF_INT8: *s = (int8_t)(uint8_t)kv->val; break;
    case SI_GGUF_INT16: *s = (int16_t)(uint16_t)kv->val; break;
    case SI_GGUF_INT32: *s = (int32_t)(uint32_t)kv->val; break;
    case SI_GGUF_INT64: memcpy(s, &kv->val, 8); break;
    default: return false;
    }
    switch (kv->type) {
    case SI_GGUF_INT8: case SI_GGUF_INT16: case SI_GGUF_INT32: case SI_GGUF_INT64:
        if (*s < 0)
            *neg = true;
        else
            *u = (uint64_t)*s;
        break;
    default:
        *s = *u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)*u;
    }
    return true;
}

static int range_err(const si_gguf *g, const si_gguf_kv *kv, const char *want, si_error *err)
{
    return si_errorf(err, SI_EFORMAT, "%s: byte %llu: key '%s': value out of range for %s", g->path,
                     (unsigned long long)kv->off, si_gguf_str_(g, kv->key), want);
}

int si_gguf_get_u64(const si_gguf *g, const char *key, uint64_t *out, si_error *err)
{
    const si_gguf_kv *kv = lookup(g, key, err);
    if (!kv)
        return SI_EFORMAT;
    uint64_t u = 0;
    int64_t s = 0;
    bool neg;
    if (!kv_integer(kv, &u, &s, &neg))
        return wrong_type(g, kv, "an integer", err);
    if (neg)
        return range_err(g, kv, "uint64", err);
    *out = u;
    return 0;
}

int si_gguf_get_u32(const si_gguf *g, const char *key, uint32_t *out, si_error *err)
{
    uint64_t v;
    SI_TRY(si_gguf_get_u64(g, key, &v, err));
    if (v > UINT32_MAX)
        return range_err(g, &g->kv[si_gguf_find_key(g, key)], "uint32", err);
    *out = (uint32_t)v;
    return 0;
}

int si_gguf_get_i64(const si_gguf *g, const char *key, int64_t *out, si_error *err)
{
    const si_gguf_kv *kv = lookup(g, key, err);
    if (!kv)
        return SI_EFORMAT;
    uint64_t u = 0;
    int64_t s = 0;
    bool neg;
    if (!kv_integer(kv, &u, &s, &neg))
        return wrong_type(g, kv, "an integer", err);
    if (!neg && u > (uint64_t)INT64_MAX)
        return range_err(g, kv, "int64", err);
    *out = s;
    return 0;
}

int si_gguf_get_f32(const si_gguf *g, const char *key, float *out, si_error *err)
{
    const si_gguf_kv *kv = lookup(g, key, err);
    if (!kv)
        return SI_EFORMAT;
    if (kv->type == SI_GGUF_FLOAT32) {
        memcpy(out, &kv->val, 4);
    } else if (kv->type == SI_GGUF_FLOAT64) {
        double d;
        memcpy(&d, &kv->val, 8);
        *out = (float)d;
    } else {
        return wrong_type(g, kv, "float32 or float64", err);
    }
    return 0;
}

int si_gguf_get_f64(const si_gguf *g, const char *key, double *out, si_error *err)
{
    const si_gguf_kv *kv = lookup(g, key, err);
    if (!kv)
        return SI_EFORMAT;
    if (kv->type == SI_GGUF_FLOAT64) {
        memcpy(out, &kv->val, 8);
    } else if (kv->type == SI_GGUF_FLOAT32) {
        float f;
        memcpy(&f, &kv->val, 4);
        *out = f;
    } else {
        return wrong_type(g, kv, "float32 or float64", err);
    }
    return 0;
}

int si_gguf_get_bool(const si_gguf *g, const char *key, bool *out, si_error *err)
{
    const si_gguf_kv *kv = lookup(g, key, err);
    if (!kv)
        return SI_EFORMAT;
    if (kv->type != SI_GGUF_BOOL)
        return wrong_type(g, kv, "bool", err);
    *out = kv->val != 0;
    return 0;
}

int si_gguf_get_str(const si_gguf *g, const char *key, const char **s, uint64_t *len, si_error *err)
{
    const si_gguf_kv *kv = lookup(g, key, err);
    if (!kv)
        return SI_EFORMAT;
    if (kv->type != SI_GGUF_STRING)
        return wrong_type(g, kv, "string", err);
    *s = si_gguf_str_(g, kv->val);
    if (len)
        *len = g->str_len[kv->val];
    return 0;
}

int si_gguf_get_arr(const si_gguf *g, const char *key, si_gguf_vtype *elem_type, uint64_t *n,
                    const void **data, si_error *err)
{
    const si_gguf_kv *kv = lookup(g, key, err);
    if (!kv)
        return SI_EFORMAT;
    if (kv->type != SI_GGUF_ARRAY || kv->arr_type == SI_GGUF_STRING || kv->arr_type == SI_GGUF_ARRAY)
        return wrong_type(g, kv, "an array of numbers", err);
    *elem_type = (si_gguf_vtype)kv->arr_type;
    *n = kv->n;
    *data = g->arena + kv->val;
    return 0;
}

int si_gguf_get_arr_str(const si_gguf *g, const char *key, int64_t *index, uint64_t *n,
                        si_error *err)
{
    const si_gguf_kv *kv = lookup(g, key, err);
    if (!kv)
        return SI_EFORMAT;
    if (kv->type != SI_GGUF_ARRAY || kv->arr_type != SI_GGUF_STRING)
        return wrong_type(g, kv, "an array of strings", err);
    *index = kv - g->kv;
    *n = kv->n;
    return 0;
}

const char *si_gguf_arr_str(const si_gguf *g, uint64_t i, uint64_t j, uint64_t *len)
{
    if (i >= g->n_kv)
        return NULL;
    const si_gguf_kv *kv = &g->kv[i];
    if (kv->type != SI_GGUF_ARRAY || kv->arr_type != SI_GGUF_STRING || j >= kv->n)
        return NULL;
    if (len)
        *len = g->str_len[kv->val + j];
    return si_gguf_str_(g, kv->val + j);
}

uint64_t si_gguf_n_tensors(const si_gguf *g) { return g->n_tensors; }

const si_gguf_tensor *si_gguf_tensor_at(const si_gguf *g, uint64_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const si_gguf_tensor *si_gguf_find_tensor(const si_gguf *g, const char *name)
{
    int64_t i = hash_find(g, g->t_hash, g->t_hash_mask, tensor_name, name);
    return i < 0 ? NULL : &g->tensors[i];
}
