/* Pack writer: metadata and table are laid out first (their sizes do not depend on
 * compression), tensor data streams after them, and the table and header, which hold
 * the stored sizes and checksums, are written last with pwrite. A reader never sees
 * a valid header on a half-written pack: the header is the last thing written. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "si_config.h"
#include "streaminfer/pack.h"
#include "streaminfer/types.h"

#if SI_HAVE_ZSTD
#include <zstd.h>
#endif

typedef struct wt {
    char name[SI_PACK_NAME_MAX];
    uint32_t type, n_dims;
    uint64_t ne[SI_GGUF_MAX_DIMS];
    uint64_t row_bytes, n_rows, raw_size;
    uint32_t rows_per_chunk, first_chunk, n_chunks;
} wt;

struct si_pack_writer {
    char *path;
    int fd;
    si_pack_write_opts o;
    si_gguf_writer *meta;
    wt *t;
    uint32_t n_t, cap_t, n_chunks, cur;
    si_pack_chunk *chunks;
    uint8_t *meta_buf;
    uint64_t meta_size, table_off, table_size, data_off, pos, total_raw, done_raw;
    bool begun, finished, any_zstd;
    uint8_t *cbuf, *sbuf;
    size_t cbuf_cap, sbuf_cap;
    si_pack_type_stats stats[SI_TYPE_COUNT];
    /* striping (version 2): member 0 is fd/path above */
    uint32_t n_members, header_size, chunk_entry;
    int mfd[SI_PACK_MAX_MEMBERS];
    char *mpath[SI_PACK_MAX_MEMBERS];
    uint64_t mpos[SI_PACK_MAX_MEMBERS], mbytes[SI_PACK_MAX_MEMBERS];
    double weight[SI_PACK_MAX_MEMBERS];
    uint8_t set_id[16];
#if SI_HAVE_ZSTD
    ZSTD_CCtx *cctx;
#endif
};

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *path, si_error *err)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = pwrite(fd, (const uint8_t *)buf + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return si_errorf(err, SI_EIO, "%s: write failed at byte %" PRIu64 ": %s", path, off + done,
                             k < 0 ? strerror(errno) : "no progress");
        done += (size_t)k;
    }
    return SI_OK;
}

int si_pack_writer_new(si_pack_writer **out, const char *path, const si_pack_write_opts *opts, si_error *err)
{
    *out = NULL;
    si_pack_writer *w = calloc(1, sizeof *w);
    SI_CHECK(!w, err, SI_ENOMEM, "out of memory");
    w->o = *opts;
    if (!w->o.alignment)
        w->o.alignment = 4096;
    if (!w->o.chunk_bytes)
        w->o.chunk_bytes = 1u << 20;
    if (!w->o.embd_chunk_bytes)
        w->o.embd_chunk_bytes = 16u << 10;
    if (w->o.min_saving < 0)
        w->o.min_saving = 0.01; /* the board is I/O-bound: idle CPU decodes nearly for free */
    w->fd = -1;
    if (w->o.alignment < 16 || w->o.alignment > (1u << 24) || (w->o.alignment & (w->o.alignment - 1))) {
        free(w);
        return si_errorf(err, SI_EINVAL, "pack alignment %u is not a power of two in 16..16M", opts->alignment);
    }
#if !SI_HAVE_ZSTD
    if (w->o.zstd_level) {
        free(w);
        return si_errorf(err, SI_EUNSUPPORTED, "--zstd: this build has no zstd support");
    }
#else
    if (w->o.zstd_level && !(w->cctx = ZSTD_createCCtx())) {
        free(w);
        return si_errorf(err, SI_ENOMEM, "out of memory for the zstd compressor");
    }
#endif
    for (uint32_t i = 0; i < SI_PACK_MAX_MEMBERS; i++)
        w->mfd[i] = -1;
    w->n_members = opts->n_members >= 2 ? opts->n_members : 1;
    w->header_size = SI_PACK_HEADER_SIZE;
    w->chunk_entry = SI_PACK_CHUNK_ENTRY;
    if (w->n_members > 1) {
        int rc = SI_OK;
        if (w->n_members > SI_PACK_MAX_MEMBERS || !opts->members)
            rc = si_errorf(err, SI_EINVAL, "a striped pack has 2..%u members, not %u", SI_PACK_MAX_MEMBERS,
                           opts->n_members);
        for (uint32_t i = 0; rc == SI_OK && i < w->n_members; i++) {
            const char *nm = strrchr(opts->members[i], '/') ? strrchr(opts->members[i], '/') + 1 : opts->members[i];
            double wt = opts->weights ? opts->weights[i] : 1.0;
            if (!*nm || strlen(nm) >= SI_PACK_MEMBER_NAME_MAX || !strcmp(nm, ".") || !strcmp(nm, ".."))
                rc = si_errorf(err, SI_EINVAL, "member %u: '%s' is not a file name of 1..%u characters", i,
                               opts->members[i], SI_PACK_MEMBER_NAME_MAX - 1);
            else if (!(wt > 0 && wt < 1e12))
                rc = si_errorf(err, SI_EINVAL, "member %u: weight %g is not a positive number", i, wt);
            for (uint32_t j = 0; rc == SI_OK && j < i; j++) {
                const char *nj = strrchr(opts->members[j], '/') ? strrchr(opts->members[j], '/') + 1 : opts->members[j];
                if (strcmp(nm, nj) == 0)
                    rc = si_errorf(err, SI_EINVAL,
                                   "members %u and %u have the same file name '%s' (%s, %s): members are found by "
                                   "name, so each needs its own",
                                   j, i, nm, opts->members[j], opts->members[i]);
            }
            w->weight[i] = wt;
        }
        if (rc < 0) {
            si_pack_writer_free(w);
            return rc;
        }
        if (getrandom(w->set_id, sizeof w->set_id, 0) != (ssize_t)sizeof w->set_id) {
            si_pack_writer_free(w);
            return si_errorf(err, SI_EIO, "getrandom: %s", strerror(errno));
        }
        w->header_size = SI_PACK_HEADER_SIZE + w->n_members * SI_PACK_MEMBER_ENTRY;
        w->chunk_entry = SI_PACK_CHUNK_ENTRY_V2;
        path = opts->members[0];
    }
    w->path = strdup(path);
    w->meta = si_gguf_writer_new(8);
    if (!w->path || !w->meta) {
        si_pack_writer_free(w);
        return si_errorf(err, SI_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < w->n_members; i++) {
        const char *mp = w->n_members > 1 ? opts->members[i] : path;
        w->mfd[i] = open(mp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (w->mfd[i] < 0) {
            int e = errno;
            if (i == 0) {
                free(w->path);
                w->path = NULL; /* nothing to remove */
            }
            si_pack_writer_free(w);
            return si_errorf(err, SI_EIO, "%s: cannot create: %s", mp, strerror(e));
        }
        if (i > 0 && !(w->mpath[i] = strdup(mp))) {
            si_pack_writer_free(w);
            return si_errorf(err, SI_ENOMEM, "out of memory");
        }
    }
    w->fd = w->mfd[0];
    *out = w;
    return SI_OK;
}

si_gguf_writer *si_pack_writer_meta(si_pack_writer *w) { return w->meta; }
uint64_t si_pack_writer_total_raw(const si_pack_writer *w) { return w->total_raw; }
uint64_t si_pack_writer_member_bytes(const si_pack_writer *w, uint32_t i)
{
    return i < w->n_members ? w->mbytes[i] : 0;
}

const si_pack_type_stats *si_pack_writer_type_stats(const si_pack_writer *w, uint32_t type)
{
    return type < SI_TYPE_COUNT ? &w->stats[type] : NULL;
}

int si_pack_writer_add_tensor(si_pack_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                              uint32_t type, si_error *err)
{
    SI_CHECK(w->begun, err, SI_EINVAL, "pack writer: tensor '%s' declared after begin", name);
    SI_CHECK(strlen(name) == 0 || strlen(name) >= SI_PACK_NAME_MAX, err, SI_EINVAL,
             "pack writer: tensor name '%s' is empty or longer than %u characters", name, SI_PACK_NAME_MAX - 1);
    SI_CHECK(n_dims < 1 || n_dims > SI_GGUF_MAX_DIMS, err, SI_EINVAL, "pack writer: '%s': %u dimensions", name,
             n_dims);
    if (w->n_t == w->cap_t) {
        uint32_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wt *nt = realloc(w->t, cap * sizeof *nt);
        SI_CHECK(!nt, err, SI_ENOMEM, "out of memory");
        w->t = nt;
        w->cap_t = cap;
    }
    wt *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_dims;
    t->n_rows = 1;
    for (uint32_t d = 0; d < SI_GGUF_MAX_DIMS; d++) {
        t->ne[d] = d < n_dims ? ne[d] : 1;
        if (d > 0)
            t->n_rows *= t->ne[d];
    }
    t->row_bytes = si_row_size(type, (int64_t)t->ne[0]);
    SI_CHECK(t->row_bytes == 0, err, SI_EINVAL, "pack writer: '%s': row of %" PRIu64 " is not whole %s blocks", name,
             t->ne[0], si_type_name(type));
    t->raw_size = t->row_bytes * t->n_rows;
    /* Chunks are whole rows so a row slice of the stream is whole chunks; the
     * embedding is read a row at a time, so its chunks are small. */
    uint64_t target = strcmp(name, "token_embd.weight") == 0 ? w->o.embd_chunk_bytes : w->o.chunk_bytes;
    uint64_t rpc = target / t->row_bytes;
    if (rpc == 0)
        rpc = 1;
    if (rpc > t->n_rows)
        rpc = t->n_rows;
    if (rpc > UINT32_MAX)
        rpc = UINT32_MAX;
    t->rows_per_chunk = (uint32_t)rpc;
    t->first_chunk = w->n_chunks;
    t->n_chunks = (uint32_t)((t->n_rows + rpc - 1) / rpc);
    w->n_chunks += t->n_chunks;
    w->total_raw += t->raw_size;
    w->n_t++;
    return SI_OK;
}

int si_pack_writer_begin(si_pack_writer *w, si_error *err)
{
    SI_CHECK(w->begun || w->n_t == 0, err, SI_EINVAL, "pack writer: nothing declared, or begun twice");
    /* The GGUF writer wants a file descriptor at offset 0: give it a memory file. */
    int mfd = memfd_create("pack-meta", MFD_CLOEXEC);
    SI_CHECK(mfd < 0, err, SI_EIO, "memfd_create: %s", strerror(errno));
    int rc = si_gguf_writer_write_header(w->meta, mfd, err);
    if (rc == SI_OK)
        rc = si_gguf_writer_finish(w->meta, mfd, err);
    off_t end = lseek(mfd, 0, SEEK_END);
    if (rc == SI_OK && end <= 0)
        rc = si_errorf(err, SI_EIO, "metadata: empty");
    if (rc == SI_OK && !(w->meta_buf = malloc((size_t)end)))
        rc = si_errorf(err, SI_ENOMEM, "out of memory for the metadata");
    if (rc == SI_OK && pread(mfd, w->meta_buf, (size_t)end, 0) != end)
        rc = si_errorf(err, SI_EIO, "metadata: cannot read back");
    close(mfd);
    SI_TRY(rc);
    w->meta_size = (uint64_t)end;
    w->table_off = w->header_size + w->meta_size;
    w->table_size = (uint64_t)w->n_t * SI_PACK_TENSOR_ENTRY + (uint64_t)w->n_chunks * w->chunk_entry;
    w->data_off = align_up(w->table_off + w->table_size, w->o.alignment);
    w->mpos[0] = w->data_off;
    for (uint32_t i = 1; i < w->n_members; i++)
        w->mpos[i] = align_up(w->header_size, w->o.alignment);
    w->chunks = calloc(w->n_chunks, sizeof *w->chunks);
    SI_CHECK(!w->chunks, err, SI_ENOMEM, "out of memory for %u chunks", w->n_chunks);
    w->pos = w->data_off;
    w->begun = true;
    return pwrite_all(w->fd, w->meta_buf, (size_t)w->meta_size, w->header_size, w->path, err);
}

int si_pack_writer_write_tensor(si_pack_writer *w, const void *data, uint64_t size, si_error *err)
{
    SI_CHECK(!w->begun || w->finished || w->cur >= w->n_t, err, SI_EINVAL, "pack writer: no tensor expects data");
    wt *t = &w->t[w->cur];
    SI_CHECK(size != t->raw_size, err, SI_EINVAL, "pack writer: '%s' has %" PRIu64 " bytes, got %" PRIu64, t->name,
             t->raw_size, size);
    si_pack_type_stats *ts = &w->stats[t->type < SI_TYPE_COUNT ? t->type : 0];
    for (uint32_t k = 0; k < t->n_chunks; k++) {
        si_pack_chunk *c = &w->chunks[t->first_chunk + k];
        c->row0 = (uint64_t)k * t->rows_per_chunk;
        c->n_rows = (uint32_t)(t->n_rows - c->row0 < t->rows_per_chunk ? t->n_rows - c->row0 : t->rows_per_chunk);
        c->raw = (uint64_t)c->n_rows * t->row_bytes;
        const uint8_t *src = (const uint8_t *)data + c->row0 * t->row_bytes;
        const uint8_t *out = src;
        c->codec = SI_PACK_CODEC_RAW;
        c->stored = c->raw;
#if SI_HAVE_ZSTD
        if (w->o.zstd_level) {
            size_t bound = ZSTD_compressBound((size_t)c->raw);
            if (bound > w->cbuf_cap) {
                uint8_t *nb = realloc(w->cbuf, bound);
                SI_CHECK(!nb, err, SI_ENOMEM, "out of memory for compression");
                w->cbuf = nb;
                w->cbuf_cap = bound;
            }
            /* Field-split first when the type has a layout (measured on the trained
             * fixture: it helps every type, F32 most; docs/FORMAT.md). */
            const uint8_t *in = src;
            uint32_t codec = SI_PACK_CODEC_ZSTD;
            if (!w->o.no_fields) {
                if (c->raw > w->sbuf_cap) {
                    uint8_t *nb = realloc(w->sbuf, (size_t)c->raw);
                    SI_CHECK(!nb, err, SI_ENOMEM, "out of memory for compression");
                    w->sbuf = nb;
                    w->sbuf_cap = (size_t)c->raw;
                }
                if (si_pack_fields(t->type, src, w->sbuf, c->raw, false)) {
                    in = w->sbuf;
                    codec = SI_PACK_CODEC_ZSTD_FIELDS;
                }
            }
            size_t z = ZSTD_compressCCtx(w->cctx, w->cbuf, bound, in, (size_t)c->raw, w->o.zstd_level);
            SI_CHECK(ZSTD_isError(z), err, SI_EIO, "zstd: %s: %s", t->name, ZSTD_getErrorName(z));
            /* Keep the frame only when it pays for its decompression. */
            if ((double)z <= (double)c->raw * (1.0 - w->o.min_saving)) {
                c->codec = codec;
                c->stored = z;
                out = w->cbuf;
                w->any_zstd = true;
                ts->zstd_chunks++;
            }
        }
#endif
        /* Striped: the member whose stored bytes over its weight stay the smallest
         * (a deficit counter), so every member's share tracks its weight along the
         * whole pass. A run of a tensor's chunks on one member is contiguous there; a
         * run starts aligned. */
        uint32_t m = 0;
        for (uint32_t i = 1; i < w->n_members; i++)
            if ((double)(w->mbytes[i] + c->stored) / w->weight[i] < (double)(w->mbytes[m] + c->stored) / w->weight[m])
                m = i;
        c->member = m;
        if (k == 0 || w->chunks[t->first_chunk + k - 1].member != m)
            w->mpos[m] = align_up(w->mpos[m], w->o.alignment);
        c->offset = w->mpos[m];
        c->xxh3 = si_xxh3(out, (size_t)c->stored);
        SI_TRY(pwrite_all(w->mfd[m], out, (size_t)c->stored, c->offset, m ? w->mpath[m] : w->path, err));
        w->mpos[m] += c->stored;
        w->mbytes[m] += c->stored;
        ts->raw += c->raw;
        ts->stored += c->stored;
        ts->chunks++;
        w->done_raw += c->raw;
        if (w->o.progress)
            w->o.progress(w->o.progress_ctx, w->done_raw, w->total_raw);
    }
    w->cur++;
    return SI_OK;
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

int si_pack_writer_finish(si_pack_writer *w, si_error *err)
{
    SI_CHECK(!w->begun || w->finished || w->cur != w->n_t, err, SI_EINVAL,
             "pack writer: %u of %u tensors written", w->cur, w->n_t);
    /* Each file ends aligned so the last extent is read like every other. */
    uint64_t msize[SI_PACK_MAX_MEMBERS];
    for (uint32_t i = 0; i < w->n_members; i++) {
        msize[i] = align_up(w->mpos[i], w->o.alignment);
        SI_CHECK(ftruncate(w->mfd[i], (off_t)msize[i]) != 0, err, SI_EIO, "%s: %s", i ? w->mpath[i] : w->path,
                 strerror(errno));
    }
    uint64_t file_size = msize[0];
    uint8_t *tab = calloc(1, (size_t)w->table_size);
    SI_CHECK(!tab, err, SI_ENOMEM, "out of memory for the table");
    for (uint32_t i = 0; i < w->n_t; i++) {
        const wt *t = &w->t[i];
        uint8_t *e = tab + (size_t)i * SI_PACK_TENSOR_ENTRY;
        memcpy(e, t->name, SI_PACK_NAME_MAX);
        put32(e + 64, t->type);
        put32(e + 68, t->n_dims);
        for (int d = 0; d < SI_GGUF_MAX_DIMS; d++)
            put64(e + 72 + 8 * d, t->ne[d]);
        put32(e + 104, t->first_chunk);
        put32(e + 108, t->n_chunks);
        put64(e + 112, t->raw_size);
        /* 120..127: flags and reserved, zero in version 1 */
    }
    uint8_t *ce = tab + (size_t)w->n_t * SI_PACK_TENSOR_ENTRY;
    for (uint32_t c = 0; c < w->n_chunks; c++) {
        const si_pack_chunk *k = &w->chunks[c];
        uint8_t *e = ce + (size_t)c * w->chunk_entry;
        if (w->n_members > 1)
            put32(e + 48, k->member); /* 52..55 reserved, zero */
        put64(e, k->offset);
        put64(e + 8, k->stored);
        put64(e + 16, k->raw);
        put64(e + 24, k->xxh3);
        put64(e + 32, k->row0);
        put32(e + 40, k->codec);
        put32(e + 44, k->n_rows);
    }
    uint8_t h[SI_PACK_HEADER_SIZE + SI_PACK_MAX_MEMBERS * SI_PACK_MEMBER_ENTRY] = {0};
    put32(h, SI_PACK_MAGIC);
    put32(h + 4, w->n_members > 1 ? SI_PACK_VERSION_2 : SI_PACK_VERSION);
    put32(h + 8, w->header_size);
    put32(h + 12, w->any_zstd ? SI_PACK_FLAG_ZSTD : 0);
    put64(h + 16, file_size);
    put64(h + 24, w->header_size);
    put64(h + 32, w->meta_size);
    put64(h + 40, w->table_off);
    put64(h + 48, w->table_size);
    put32(h + 56, w->n_t);
    put32(h + 60, w->n_chunks);
    put32(h + 64, w->o.alignment);
    put32(h + 68, SI_PACK_TENSOR_ENTRY);
    put32(h + 72, w->chunk_entry);
    put64(h + 80, w->data_off);
    put64(h + 88, si_xxh3(w->meta_buf, (size_t)w->meta_size));
    put64(h + 96, si_xxh3(tab, (size_t)w->table_size));
    int rc = SI_OK;
    if (w->n_members > 1) {
        put16(h + 76, 0);
        put16(h + 78, (uint16_t)w->n_members);
        memcpy(h + 104, w->set_id, 16);
        for (uint32_t i = 0; i < w->n_members; i++) {
            uint8_t *e = h + SI_PACK_HEADER_SIZE + (size_t)i * SI_PACK_MEMBER_ENTRY;
            const char *mp = i ? w->mpath[i] : w->path;
            const char *nm = strrchr(mp, '/') ? strrchr(mp, '/') + 1 : mp;
            memcpy(e, nm, strlen(nm)); /* checked shorter than the field at creation */
            put64(e + 240, msize[i]);
        }
        /* Members 1..n-1 first: a header naming the set, its index and the members,
         * no metadata or table, data after the header (aligned). */
        uint8_t hm[sizeof h];
        for (uint32_t i = 1; rc == SI_OK && i < w->n_members; i++) {
            memcpy(hm, h, w->header_size);
            put64(hm + 16, msize[i]);
            put64(hm + 24, w->header_size);
            put64(hm + 32, 0);
            put64(hm + 40, w->header_size);
            put64(hm + 48, 0);
            put32(hm + 56, 0);
            put32(hm + 60, 0);
            put16(hm + 76, (uint16_t)i);
            put64(hm + 80, align_up(w->header_size, w->o.alignment));
            put64(hm + 88, si_xxh3(NULL, 0));
            put64(hm + 96, si_xxh3(NULL, 0));
            put64(hm + 120, si_pack_v2_header_xxh3(hm, w->header_size));
            if (fsync(w->mfd[i]) != 0)
                rc = si_errorf(err, SI_EIO, "%s: fsync: %s", w->mpath[i], strerror(errno));
            if (rc == SI_OK)
                rc = pwrite_all(w->mfd[i], hm, w->header_size, 0, w->mpath[i], err);
            if (rc == SI_OK && fsync(w->mfd[i]) != 0)
                rc = si_errorf(err, SI_EIO, "%s: fsync: %s", w->mpath[i], strerror(errno));
        }
        put64(h + 120, si_pack_v2_header_xxh3(h, w->header_size));
    } else {
        put64(h + 120, si_xxh3(h, 120));
    }
    if (rc == SI_OK)
        rc = pwrite_all(w->fd, tab, (size_t)w->table_size, w->table_off, w->path, err);
    free(tab);
    if (rc == SI_OK && fsync(w->fd) != 0)
        rc = si_errorf(err, SI_EIO, "%s: fsync: %s", w->path, strerror(errno));
    if (rc == SI_OK)
        rc = pwrite_all(w->fd, h, w->header_size, 0, w->path, err);
    for (uint32_t i = 0; i < w->n_members; i++) {
        if (rc == SI_OK && close(w->mfd[i]) != 0)
            rc = si_errorf(err, SI_EIO, "%s: close: %s", i ? w->mpath[i] : w->path, strerror(errno));
        else if (rc != SI_OK)
            close(w->mfd[i]);
        w->mfd[i] = -1;
    }
    w->fd = -1;
    if (rc == SI_OK)
        w->finished = true;
    return rc;
}

void si_pack_writer_free(si_pack_writer *w)
{
    if (!w)
        return;
    for (uint32_t i = 0; i < SI_PACK_MAX_MEMBERS; i++) {
        if (w->mfd[i] >= 0)
            close(w->mfd[i]);
        if (!w->finished && w->mpath[i])
            unlink(w->mpath[i]);
        free(w->mpath[i]);
    }
    if (!w->finished && w->path)
        unlink(w->path);
    si_gguf_writer_free(w->meta);
#if SI_HAVE_ZSTD
    ZSTD_freeCCtx(w->cctx);
#endif
    free(w->t);
    free(w->chunks);
    free(w->meta_buf);
    free(w->cbuf);
    free(w->sbuf);
    free(w->path);
    free(w);
}
