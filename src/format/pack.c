/* Pack reader: header, embedded metadata, extent table, chunk checks and decoding.
 *
 * The file is hostile until proven otherwise. The header carries its own XXH3-64 and
 * those of the metadata and the table, so a corrupted or truncated header or table is
 * refused at open before any count is believed; every count and range is still
 * checked as if the checksums could be forged (a fuzzer can recompute them). */
#include "streaminfer/pack.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "si_config.h"
#include "streaminfer/file.h"
#include "streaminfer/types.h"

#define XXH_INLINE_ALL
#include <xxhash.h>
#if SI_HAVE_ZSTD
#include <zstd.h>
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the pack reader assumes a little-endian host"
#endif

#define MAX_REREADS 3

struct si_pack {
    char *path; /* member 0's */
    uint32_t version, flags, alignment, header_size, chunk_entry;
    uint32_t n_members;
    uint8_t set_id[16];
    char *mname[SI_PACK_MAX_MEMBERS]; /* names as the header gives them (version 2) */
    char *mpath[SI_PACK_MAX_MEMBERS]; /* where each member was found */
    uint64_t msize[SI_PACK_MAX_MEMBERS];
    uint64_t mdata[SI_PACK_MAX_MEMBERS]; /* where each member's data may start */
    uint8_t *mblock;                     /* version 2: the members block, as member 0 has it */
    uint64_t file_size, meta_off, meta_size, table_off, table_size, data_off;
    uint32_t n_tensors, n_chunks;
    si_pack_tensor *tensors;
    si_pack_chunk *chunks;
    si_gguf *meta;
    /* scratch for si_pack_read_rows (one chunk stored + decoded) */
    uint8_t *stored_buf, *raw_buf;
    size_t stored_cap, raw_cap;
#if SI_HAVE_ZSTD
    ZSTD_DCtx *dctx;
#endif
};

uint64_t si_xxh3(const void *data, size_t n) { return XXH3_64bits(data, n); }

static uint32_t le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint16_t le16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static uint64_t al_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* Version 2's header checksum: XXH3 of all header_size bytes with the checksum field
 * (bytes 120..127) taken as zero. */
uint64_t si_pack_v2_header_xxh3(const void *hv, uint32_t size)
{
    const uint8_t *h = hv;
    XXH3_state_t st;
    static const uint8_t zero[8];
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, h, 120);
    XXH3_64bits_update(&st, zero, 8);
    XXH3_64bits_update(&st, h + 128, size - 128);
    return XXH3_64bits_digest(&st);
}

/* Read and check a header (either version) from fd: magic, version, and its checksum;
 * *out is the whole header (128 bytes, or version 2's with its members block). */
static int read_header(int fd, const char *path, uint64_t file_size, uint8_t **out, si_error *err)
{
    uint8_t h[SI_PACK_HEADER_SIZE];
    *out = NULL;
    SI_CHECK(file_size < SI_PACK_HEADER_SIZE || si_pread_exact(fd, h, sizeof h, 0) != 0, err, SI_EIO,
             "%s: %" PRIu64 " bytes, too short for a pack header (%u): truncated file", path, file_size,
             SI_PACK_HEADER_SIZE);
    SI_CHECK(le32(h) != SI_PACK_MAGIC, err, SI_EFORMAT, "%s: not a pack (magic %08x)", path, le32(h));
    uint32_t version = le32(h + 4);
    SI_CHECK(version != SI_PACK_VERSION && version != SI_PACK_VERSION_2, err, SI_EUNSUPPORTED,
             "%s: pack version %u is not supported by this build (it reads versions %u and %u); repack the model "
             "with this version's tools/repack",
             path, version, SI_PACK_VERSION, SI_PACK_VERSION_2);
    uint32_t size = SI_PACK_HEADER_SIZE;
    if (version == SI_PACK_VERSION_2) {
        uint32_t n = le16(h + 78);
        SI_CHECK(n < 2 || n > SI_PACK_MAX_MEMBERS, err, SI_EFORMAT,
                 "%s: byte 78: a striped set of %u members (this build reads 2..%u)", path, n, SI_PACK_MAX_MEMBERS);
        size = SI_PACK_HEADER_SIZE + n * SI_PACK_MEMBER_ENTRY;
        SI_CHECK(le32(h + 8) != size, err, SI_EFORMAT, "%s: byte 8: header size %u, expected %u for %u members",
                 path, le32(h + 8), size, n);
        SI_CHECK(file_size < size, err, SI_EIO, "%s: %" PRIu64 " bytes, too short for its header (%u): truncated file",
                 path, file_size, size);
    }
    uint8_t *buf = malloc(size);
    SI_CHECK(!buf, err, SI_ENOMEM, "%s: out of memory", path);
    memcpy(buf, h, sizeof h);
    if (size > sizeof h && si_pread_exact(fd, buf + sizeof h, size - sizeof h, sizeof h) != 0) {
        free(buf);
        return si_errorf(err, SI_EIO, "%s: cannot read the header: truncated file", path);
    }
    uint64_t want = le64(h + 120), got = version == SI_PACK_VERSION ? XXH3_64bits(h, 120) : si_pack_v2_header_xxh3(buf, size);
    if (want != got) {
        free(buf);
        return si_errorf(err, SI_ECHECKSUM,
                         "%s: pack header checksum mismatch (XXH3 %016" PRIx64 ", header says %016" PRIx64
                         "): corrupt header",
                         path, got, want);
    }
    *out = buf;
    return SI_OK;
}

static char *dir_of(const char *path)
{
    const char *sl = strrchr(path, '/');
    if (!sl)
        return strdup(".");
    if (sl == path)
        return strdup("/");
    return strndup(path, (size_t)(sl - path));
}

/* The members block: names (NUL-padded, no '/', distinct) and sizes. */
static int parse_members(si_pack *p, const uint8_t *h, const char *path, si_error *err)
{
    p->n_members = le16(h + 78);
    for (uint32_t i = 0; i < p->n_members; i++) {
        const uint8_t *e = h + SI_PACK_HEADER_SIZE + (size_t)i * SI_PACK_MEMBER_ENTRY;
        uint64_t at = SI_PACK_HEADER_SIZE + (uint64_t)i * SI_PACK_MEMBER_ENTRY;
        const char *nm = (const char *)e;
        size_t len = strnlen(nm, SI_PACK_MEMBER_NAME_MAX);
        SI_CHECK(len == 0 || len == SI_PACK_MEMBER_NAME_MAX || strchr(nm, '/') || strcmp(nm, ".") == 0 ||
                     strcmp(nm, "..") == 0,
                 err, SI_EFORMAT, "%s: byte %" PRIu64 ": member %u: file name is empty, too long or not a plain name",
                 path, at, i);
        for (size_t j = len; j < SI_PACK_MEMBER_NAME_MAX; j++)
            SI_CHECK(nm[j] != 0, err, SI_EFORMAT, "%s: byte %" PRIu64 ": member %u: name padding is not zero", path,
                     at, i);
        SI_CHECK(le64(e + 248) != 0, err, SI_EFORMAT, "%s: byte %" PRIu64 ": member %u: reserved field is not zero",
                 path, at + 248, i);
        for (uint32_t j = 0; j < i; j++)
            SI_CHECK(strcmp(p->mname[j], nm) == 0, err, SI_EFORMAT,
                     "%s: byte %" PRIu64 ": members %u and %u are both named '%s'", path, at, j, i, nm);
        p->mname[i] = strdup(nm);
        SI_CHECK(!p->mname[i], err, SI_ENOMEM, "out of memory");
        p->msize[i] = le64(e + 240);
    }
    return SI_OK;
}

bool si_pack_probe(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    uint8_t m[4];
    bool ok = si_pread_exact(fd, m, 4, 0) == 0 && le32(m) == SI_PACK_MAGIC;
    close(fd);
    return ok;
}

/* "blk.12.attn_q.weight" -> 12; -1 for tensors outside the layers. */
static int32_t layer_of(const char *name)
{
    if (strncmp(name, "blk.", 4) != 0)
        return -1;
    char *end;
    long v = strtol(name + 4, &end, 10);
    return end != name + 4 && *end == '.' && v >= 0 && v < INT32_MAX ? (int32_t)v : -1;
}

static int parse_header(si_pack *p, const uint8_t *h, si_error *err)
{
    const char *path = p->path;
    /* magic, version and checksum: read_header */
    p->version = le32(h + 4);
    bool v2 = p->version == SI_PACK_VERSION_2;
    p->header_size = v2 ? SI_PACK_HEADER_SIZE + le16(h + 78) * SI_PACK_MEMBER_ENTRY : SI_PACK_HEADER_SIZE;
    p->chunk_entry = v2 ? SI_PACK_CHUNK_ENTRY_V2 : SI_PACK_CHUNK_ENTRY;
    SI_CHECK(le32(h + 8) != p->header_size || le32(h + 68) != SI_PACK_TENSOR_ENTRY ||
                 le32(h + 72) != p->chunk_entry,
             err, SI_EFORMAT, "%s: byte 8: header/entry sizes %u/%u/%u, expected %u/%u/%u", path, le32(h + 8),
             le32(h + 68), le32(h + 72), p->header_size, SI_PACK_TENSOR_ENTRY, p->chunk_entry);
    if (v2) {
        SI_CHECK(le16(h + 76) != 0, err, SI_EINVAL, "%s: member %u of a striped set, not member 0", path,
                 le16(h + 76));
        memcpy(p->set_id, h + 104, 16);
        SI_TRY(parse_members(p, h, path, err));
        SI_CHECK(p->msize[0] != le64(h + 16), err, SI_EFORMAT,
                 "%s: byte 16: file size %" PRIu64 " differs from member 0's in the members block (%" PRIu64 ")", path,
                 le64(h + 16), p->msize[0]);
    } else {
        p->n_members = 1;
        SI_CHECK(le32(h + 76) != 0, err, SI_EFORMAT, "%s: byte 76: reserved field is not zero", path);
    }
    p->flags = le32(h + 12);
    uint64_t fsize = le64(h + 16);
    SI_CHECK(fsize != p->file_size, err, fsize > p->file_size ? SI_EIO : SI_EFORMAT,
             "%s: the pack is %" PRIu64 " bytes but its header says %" PRIu64 "%s", path, p->file_size, fsize,
             fsize > p->file_size ? ": truncated file" : "");
    p->meta_off = le64(h + 24);
    p->meta_size = le64(h + 32);
    p->table_off = le64(h + 40);
    p->table_size = le64(h + 48);
    p->n_tensors = le32(h + 56);
    p->n_chunks = le32(h + 60);
    p->alignment = le32(h + 64);
    p->data_off = le64(h + 80);
    SI_CHECK(p->alignment < 16 || p->alignment > (1u << 24) || (p->alignment & (p->alignment - 1)), err,
             SI_EFORMAT, "%s: byte 64: alignment %u is not a power of two in 16..16M", path, p->alignment);
    /* Header, metadata, table, data: in this order, inside the file. */
    SI_CHECK(p->meta_off != p->header_size || p->meta_size > p->file_size - p->meta_off ||
                 p->table_off != p->meta_off + p->meta_size || p->table_size > p->file_size - p->table_off,
             err, SI_EFORMAT, "%s: byte 24: metadata [%" PRIu64 ", +%" PRIu64 ") / table [%" PRIu64 ", +%" PRIu64
             ") do not follow the header inside the file (%" PRIu64 " bytes)",
             path, p->meta_off, p->meta_size, p->table_off, p->table_size, p->file_size);
    SI_CHECK(p->n_tensors == 0 || p->n_tensors > (1u << 20) || p->n_chunks < p->n_tensors ||
                 p->n_chunks > (1u << 28) ||
                 p->table_size != (uint64_t)p->n_tensors * SI_PACK_TENSOR_ENTRY +
                                      (uint64_t)p->n_chunks * p->chunk_entry,
             err, SI_EFORMAT, "%s: byte 56: %u tensors / %u chunks do not match a table of %" PRIu64 " bytes", path,
             p->n_tensors, p->n_chunks, p->table_size);
    SI_CHECK(p->data_off < p->table_off + p->table_size || p->data_off % p->alignment != 0 ||
                 p->data_off > p->file_size,
             err, SI_EFORMAT, "%s: byte 80: data offset %" PRIu64 " is misplaced or misaligned", path, p->data_off);
    p->mdata[0] = p->data_off;
    if (!v2)
        p->msize[0] = p->file_size;
    for (uint32_t i = 1; i < p->n_members; i++)
        p->mdata[i] = al_up(p->header_size, p->alignment);
    return SI_OK;
}

static int parse_table(si_pack *p, const uint8_t *tab, si_error *err)
{
    const char *path = p->path;
    p->tensors = calloc(p->n_tensors, sizeof *p->tensors);
    p->chunks = calloc(p->n_chunks, sizeof *p->chunks);
    SI_CHECK(!p->tensors || !p->chunks, err, SI_ENOMEM, "%s: out of memory for the extent table", path);
    const uint8_t *ce = tab + (size_t)p->n_tensors * SI_PACK_TENSOR_ENTRY;
    for (uint32_t c = 0; c < p->n_chunks; c++) {
        const uint8_t *e = ce + (size_t)c * p->chunk_entry;
        si_pack_chunk *k = &p->chunks[c];
        k->offset = le64(e);
        k->stored = le64(e + 8);
        k->raw = le64(e + 16);
        k->xxh3 = le64(e + 24);
        k->row0 = le64(e + 32);
        k->codec = le32(e + 40);
        k->n_rows = le32(e + 44);
        if (p->chunk_entry == SI_PACK_CHUNK_ENTRY_V2) {
            k->member = le32(e + 48);
            uint64_t cat = p->table_off + (uint64_t)p->n_tensors * SI_PACK_TENSOR_ENTRY + (uint64_t)c * p->chunk_entry;
            SI_CHECK(k->member >= p->n_members || le32(e + 52) != 0, err, SI_EFORMAT,
                     "%s: byte %" PRIu64 ": chunk %u: member %u out of range (%u members) or reserved field set",
                     path, cat + 48, c, k->member, p->n_members);
        }
    }
    uint32_t next_chunk = 0;
    /* stored data must be in order on each member, without overlap */
    uint64_t data_ends[SI_PACK_MAX_MEMBERS];
    for (uint32_t m = 0; m < p->n_members; m++)
        data_ends[m] = p->mdata[m];
    for (uint32_t i = 0; i < p->n_tensors; i++) {
        const uint8_t *e = tab + (size_t)i * SI_PACK_TENSOR_ENTRY;
        si_pack_tensor *t = &p->tensors[i];
        uint64_t at = p->table_off + (uint64_t)i * SI_PACK_TENSOR_ENTRY;
        memcpy(t->name, e, SI_PACK_NAME_MAX);
        SI_CHECK(t->name[0] == 0 || memchr(t->name, 0, SI_PACK_NAME_MAX) == NULL, err, SI_EFORMAT,
                 "%s: byte %" PRIu64 ": tensor %u: name is empty or not NUL-terminated", path, at, i);
        for (size_t j = strlen(t->name); j < SI_PACK_NAME_MAX; j++)
            SI_CHECK(t->name[j] != 0, err, SI_EFORMAT, "%s: byte %" PRIu64 ": tensor '%s': name padding is not zero",
                     path, at, t->name);
        t->type = le32(e + 64);
        t->n_dims = le32(e + 68);
        const si_type_traits *tt = si_type_get(t->type);
        SI_CHECK(!tt || !tt->name, err, SI_EFORMAT, "%s: byte %" PRIu64 ": tensor '%s': unknown type %u", path, at,
                 t->name, t->type);
        SI_CHECK(t->n_dims < 1 || t->n_dims > SI_GGUF_MAX_DIMS, err, SI_EFORMAT,
                 "%s: byte %" PRIu64 ": tensor '%s': n_dims %u not in 1..4", path, at, t->name, t->n_dims);
        uint64_t rows = 1;
        for (uint32_t d = 0; d < SI_GGUF_MAX_DIMS; d++) {
            t->ne[d] = le64(e + 72 + 8 * d);
            SI_CHECK(t->ne[d] == 0 || t->ne[d] > (1ull << 40) || (d >= t->n_dims && t->ne[d] != 1), err, SI_EFORMAT,
                     "%s: byte %" PRIu64 ": tensor '%s': dimension %u is %" PRIu64, path, at, t->name, d, t->ne[d]);
            if (d > 0) {
                SI_CHECK(rows > (1ull << 40) / t->ne[d], err, SI_EFORMAT,
                         "%s: byte %" PRIu64 ": tensor '%s': too many rows", path, at, t->name);
                rows *= t->ne[d];
            }
        }
        t->row_bytes = si_row_size(t->type, (int64_t)t->ne[0]);
        SI_CHECK(t->row_bytes == 0, err, SI_EFORMAT,
                 "%s: byte %" PRIu64 ": tensor '%s': row of %" PRIu64 " is not whole %s blocks", path, at, t->name,
                 t->ne[0], tt->name);
        SI_CHECK(rows > UINT64_MAX / 2 / t->row_bytes, err, SI_EFORMAT,
                 "%s: byte %" PRIu64 ": tensor '%s': size overflows", path, at, t->name);
        t->n_rows = rows;
        t->first_chunk = le32(e + 104);
        t->n_chunks = le32(e + 108);
        t->raw_size = le64(e + 112);
        t->layer = layer_of(t->name);
        SI_CHECK(t->raw_size != rows * t->row_bytes, err, SI_EFORMAT,
                 "%s: byte %" PRIu64 ": tensor '%s': raw size %" PRIu64 " does not match its shape (%" PRIu64 ")", path,
                 at, t->name, t->raw_size, rows * t->row_bytes);
        SI_CHECK(t->first_chunk != next_chunk || t->n_chunks == 0 || t->n_chunks > p->n_chunks - next_chunk, err,
                 SI_EFORMAT, "%s: byte %" PRIu64 ": tensor '%s': chunks %u+%u are not the next ones (%u of %u)", path,
                 at, t->name, t->first_chunk, t->n_chunks, next_chunk, p->n_chunks);
        next_chunk += t->n_chunks;
        uint64_t row = 0;
        for (uint32_t c = t->first_chunk; c < t->first_chunk + t->n_chunks; c++) {
            si_pack_chunk *k = &p->chunks[c];
            uint64_t cat = p->table_off + (uint64_t)p->n_tensors * SI_PACK_TENSOR_ENTRY + (uint64_t)c * p->chunk_entry;
            SI_CHECK(k->codec > SI_PACK_CODEC_ZSTD_FIELDS ||
                         (k->codec == SI_PACK_CODEC_ZSTD_FIELDS && !si_pack_fields(t->type, NULL, NULL, 0, false)),
                     err, SI_EFORMAT,
                     "%s: byte %" PRIu64 ": tensor '%s' chunk %u: unknown codec %u", path, cat, t->name, c, k->codec);
            SI_CHECK(k->row0 != row || k->n_rows == 0 || k->n_rows > t->n_rows - row ||
                         k->raw != (uint64_t)k->n_rows * t->row_bytes,
                     err, SI_EFORMAT, "%s: byte %" PRIu64 ": tensor '%s' chunk %u: rows %" PRIu64 "+%u / raw size %" PRIu64
                     " do not continue the tensor",
                     path, cat, t->name, c, k->row0, k->n_rows, k->raw);
            row += k->n_rows;
            /* A tensor starts aligned; its chunks follow each other without gaps so
             * its rows are contiguous when stored raw. Striped: a run of a tensor's
             * chunks on one member starts aligned and is contiguous there. */
            bool first = c == t->first_chunk || p->chunks[c - 1].member != k->member;
            uint64_t data_end = data_ends[k->member], msize = p->msize[k->member];
            SI_CHECK((first && (k->offset < data_end || k->offset % p->alignment != 0)) ||
                         (!first && k->offset != data_end) || k->stored == 0 || k->offset > msize ||
                         k->stored > msize - k->offset ||
                         (k->codec == SI_PACK_CODEC_RAW && k->stored != k->raw),
                     err, SI_EFORMAT, "%s: byte %" PRIu64 ": tensor '%s' chunk %u: stored bytes [%" PRIu64 ", +%" PRIu64
                     ") are misplaced (member %u: %" PRIu64 " bytes, previous data ends at %" PRIu64 ")",
                     path, cat, t->name, c, k->offset, k->stored, k->member, msize, data_end);
            if (k->codec != SI_PACK_CODEC_RAW)
                SI_CHECK(!(p->flags & SI_PACK_FLAG_ZSTD), err, SI_EFORMAT,
                         "%s: tensor '%s' chunk %u is zstd but the header's zstd flag is clear", path, t->name, c);
            data_ends[k->member] = k->offset + k->stored;
        }
        SI_CHECK(row != t->n_rows, err, SI_EFORMAT, "%s: byte %" PRIu64 ": tensor '%s': chunks cover %" PRIu64
                 " of %" PRIu64 " rows", path, at, t->name, row, t->n_rows);
        for (uint32_t j = 0; j < i; j++)
            SI_CHECK(strcmp(p->tensors[j].name, t->name) == 0, err, SI_EFORMAT,
                     "%s: byte %" PRIu64 ": tensor '%s' appears twice", path, at, t->name);
    }
    SI_CHECK(next_chunk != p->n_chunks, err, SI_EFORMAT, "%s: %u chunks belong to no tensor", path,
             p->n_chunks - next_chunk);
#if !SI_HAVE_ZSTD
    SI_CHECK(p->flags & SI_PACK_FLAG_ZSTD, err, SI_EUNSUPPORTED,
             "%s: the pack has zstd-compressed chunks but this build has no zstd support (meson -Dzstd=enabled); "
             "repack without --zstd",
             path);
#endif
    return SI_OK;
}

static int open_file(const char *path, int *fd, uint64_t *size, si_error *err)
{
    struct stat st;
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a member name may lead to a FIFO: never block */
    SI_CHECK(*fd < 0, err, SI_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return si_errorf(err, SI_EIO, "%s: not a regular file", path);
    }
    *size = (uint64_t)st.st_size;
    return SI_OK;
}

/* name in dir0, then in each of dirs: the first that exists (NULL: none). */
static char *find_member(const char *name, const char *dir0, const char *const *dirs, size_t n_dirs)
{
    for (size_t i = 0; i <= n_dirs; i++) {
        const char *d = i == 0 ? dir0 : dirs[i - 1];
        char *cand = malloc(strlen(d) + strlen(name) + 2);
        if (!cand)
            return NULL;
        sprintf(cand, "%s/%s", d, name);
        struct stat st;
        if (stat(cand, &st) == 0)
            return cand;
        free(cand);
    }
    return NULL;
}

static int member_missing(const si_pack *p, const char *from, uint32_t i, const char *dir0, const char *const *dirs,
                          size_t n_dirs, si_error *err)
{
    char where[512];
    int n = snprintf(where, sizeof where, "%s", dir0);
    for (size_t k = 0; k < n_dirs && n >= 0 && (size_t)n < sizeof where; k++)
        n += snprintf(where + n, sizeof where - (size_t)n, ", %s", dirs[k]);
    return si_errorf(err, SI_EIO,
                     "%s: member %u of %u of its striped set, '%s', is missing (looked in %s; --stripe-path DIR adds a "
                     "directory)",
                     from, i, p->n_members, p->mname[i], where);
}

/* Member i's own header must be that of the same set, at index i, of the size the
 * set says, and the file must hold all of it. */
static int check_member(si_pack *p, uint32_t i, const char *path, si_error *err)
{
    int fd;
    uint64_t size;
    uint8_t *h = NULL;
    SI_TRY(open_file(path, &fd, &size, err));
    int rc = read_header(fd, path, size, &h, err);
    close(fd);
    SI_TRY(rc);
    rc = SI_OK;
    if (le32(h + 4) != SI_PACK_VERSION_2)
        rc = si_errorf(err, SI_EFORMAT, "%s: a version %u pack, not member %u of a striped set", path, le32(h + 4), i);
    else if (memcmp(h + 104, p->set_id, 16) != 0)
        rc = si_errorf(err, SI_EFORMAT,
                       "%s: belongs to another striped set (set id differs from %s's): not member %u of this set",
                       path, p->mpath[0], i);
    else if (le16(h + 76) != i || le16(h + 78) != p->n_members ||
             memcmp(h + SI_PACK_HEADER_SIZE, p->mblock, (size_t)p->n_members * SI_PACK_MEMBER_ENTRY) != 0)
        rc = si_errorf(err, SI_EFORMAT, "%s: says it is member %u of %u, expected member %u of %u (same set id)",
                       path, le16(h + 76), le16(h + 78), i, p->n_members);
    else if (le64(h + 16) != p->msize[i] || size < p->msize[i])
        rc = si_errorf(err, SI_EIO, "%s: member %u is %" PRIu64 " bytes but the set says %" PRIu64 "%s", path, i, size,
                       p->msize[i], size < p->msize[i] ? ": truncated file" : "");
    else if (size != p->msize[i])
        rc = si_errorf(err, SI_EFORMAT, "%s: member %u is %" PRIu64 " bytes, longer than the %" PRIu64 " the set says",
                       path, i, size, p->msize[i]);
    else if (le32(h + 56) != 0 || le32(h + 60) != 0 || le64(h + 32) != 0 || le64(h + 48) != 0 ||
             le32(h + 64) != p->alignment || le64(h + 80) != p->mdata[i] || le32(h + 72) != SI_PACK_CHUNK_ENTRY_V2 ||
             le32(h + 68) != SI_PACK_TENSOR_ENTRY || le64(h + 24) != p->header_size || le64(h + 40) != p->header_size)
        rc = si_errorf(err, SI_EFORMAT,
                       "%s: member %u's header is malformed (a member other than 0 holds no metadata or table, "
                       "alignment %u, data at %" PRIu64 ")",
                       path, i, p->alignment, p->mdata[i]);
    free(h);
    return rc;
}

int si_pack_open_set(si_pack **out, const char *path, const char *const *dirs, size_t n_dirs, si_error *err)
{
    *out = NULL;
    si_pack *p = calloc(1, sizeof *p);
    char *dir0 = dir_of(path);
    if (!p || !dir0) {
        free(p);
        free(dir0);
        return si_errorf(err, SI_ENOMEM, "%s: out of memory", path);
    }
    int rc = SI_OK;
    uint8_t *buf = NULL, *h = NULL;
    int fd = -1;
    uint32_t given = 0; /* the member path is */
    rc = open_file(path, &fd, &p->file_size, err);
    if (rc == SI_OK)
        rc = read_header(fd, path, p->file_size, &h, err);
    if (rc == SI_OK && le32(h + 4) == SI_PACK_VERSION_2 && le16(h + 76) != 0) {
        /* Another member: open member 0, found by its name, instead. */
        given = le16(h + 76);
        si_pack tmp = {0};
        if (given >= le16(h + 78))
            rc = si_errorf(err, SI_EFORMAT, "%s: byte 76: member index %u out of range (%u members)", path, given,
                           le16(h + 78));
        else
            rc = parse_members(&tmp, h, path, err);
        char *p0 = rc == SI_OK ? find_member(tmp.mname[0], dir0, dirs, n_dirs) : NULL;
        if (rc == SI_OK && !p0)
            rc = member_missing(&tmp, path, 0, dir0, dirs, n_dirs, err);
        for (uint32_t i = 0; i < SI_PACK_MAX_MEMBERS; i++)
            free(tmp.mname[i]);
        close(fd);
        fd = -1;
        free(h);
        h = NULL;
        if (rc == SI_OK) {
            p->mpath[given] = strdup(path);
            p->path = p0;
            rc = open_file(p->path, &fd, &p->file_size, err);
        }
        if (rc == SI_OK)
            rc = read_header(fd, p->path, p->file_size, &h, err);
        if (rc == SI_OK && le32(h + 4) != SI_PACK_VERSION_2)
            rc = si_errorf(err, SI_EFORMAT, "%s: a version %u pack, not member 0 of %s's striped set", p->path,
                           le32(h + 4), path);
    } else if (rc == SI_OK) {
        p->path = strdup(path);
    }
    if (rc == SI_OK && !p->path)
        rc = si_errorf(err, SI_ENOMEM, "out of memory");
    if (rc == SI_OK)
        rc = parse_header(p, h, err);
    if (rc == SI_OK && p->n_members > 1) {
        p->mblock = malloc((size_t)p->n_members * SI_PACK_MEMBER_ENTRY);
        if (!p->mblock)
            rc = si_errorf(err, SI_ENOMEM, "out of memory");
        else
            memcpy(p->mblock, h + SI_PACK_HEADER_SIZE, (size_t)p->n_members * SI_PACK_MEMBER_ENTRY);
    }
    if (rc == SI_OK) {
        /* Metadata and table are checked as one read: both are small next to the data. */
        uint64_t n = p->meta_size + p->table_size;
        buf = malloc(n ? (size_t)n : 1);
        if (!buf)
            rc = si_errorf(err, SI_ENOMEM, "%s: out of memory for %" PRIu64 " bytes of metadata", p->path, n);
        else if (si_pread_exact(fd, buf, (size_t)n, p->meta_off) != 0)
            rc = si_errorf(err, SI_EIO, "%s: cannot read metadata and table: %s", p->path, strerror(errno));
        else if (XXH3_64bits(buf, (size_t)p->meta_size) != le64(h + 88))
            rc = si_errorf(err, SI_ECHECKSUM, "%s: metadata block [%" PRIu64 ", +%" PRIu64 ") fails its checksum",
                           p->path, p->meta_off, p->meta_size);
        else if (XXH3_64bits(buf + p->meta_size, (size_t)p->table_size) != le64(h + 96))
            rc = si_errorf(err, SI_ECHECKSUM, "%s: extent table [%" PRIu64 ", +%" PRIu64 ") fails its checksum",
                           p->path, p->table_off, p->table_size);
        else
            rc = parse_table(p, buf + p->meta_size, err);
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    free(h);
    if (rc == SI_OK && !p->mpath[0] && !(p->mpath[0] = strdup(p->path)))
        rc = si_errorf(err, SI_ENOMEM, "out of memory");
    for (uint32_t i = 1; rc == SI_OK && i < p->n_members; i++) {
        if (!p->mpath[i] && !(p->mpath[i] = find_member(p->mname[i], dir0, dirs, n_dirs)))
            rc = member_missing(p, path, i, dir0, dirs, n_dirs, err);
        else
            rc = check_member(p, i, p->mpath[i], err);
    }
    free(dir0);
    if (rc == SI_OK)
        rc = si_gguf_open_region(&p->meta, p->path, p->meta_off, p->meta_size, err);
    if (rc == SI_OK && si_gguf_n_tensors(p->meta) != 0)
        rc = si_errorf(err, SI_EFORMAT, "%s: the metadata block declares tensors; a pack keeps them in its table",
                       p->path);
    if (rc < 0) {
        si_pack_close(p);
        return rc;
    }
    *out = p;
    return SI_OK;
}

int si_pack_open(si_pack **out, const char *path, si_error *err) { return si_pack_open_set(out, path, NULL, 0, err); }

void si_pack_close(si_pack *p)
{
    if (!p)
        return;
    si_gguf_close(p->meta);
    free(p->tensors);
    free(p->chunks);
    free(p->stored_buf);
    free(p->raw_buf);
#if SI_HAVE_ZSTD
    ZSTD_freeDCtx(p->dctx);
#endif
    for (uint32_t i = 0; i < SI_PACK_MAX_MEMBERS; i++) {
        free(p->mname[i]);
        free(p->mpath[i]);
    }
    free(p->mblock);
    free(p->path);
    free(p);
}

uint32_t si_pack_n_members(const si_pack *p) { return p->n_members; }
const char *si_pack_member_path(const si_pack *p, uint32_t i) { return i < p->n_members ? p->mpath[i] : NULL; }
const char *si_pack_member_name(const si_pack *p, uint32_t i)
{
    return i < p->n_members ? (p->mname[i] ? p->mname[i] : p->mpath[i]) : NULL;
}
uint64_t si_pack_member_size(const si_pack *p, uint32_t i) { return i < p->n_members ? p->msize[i] : 0; }
const uint8_t *si_pack_set_id(const si_pack *p) { return p->set_id; }

const char *si_pack_path(const si_pack *p) { return p->path; }
const si_gguf *si_pack_meta(const si_pack *p) { return p->meta; }
uint32_t si_pack_version(const si_pack *p) { return p->version; }
uint32_t si_pack_flags(const si_pack *p) { return p->flags; }
uint32_t si_pack_alignment(const si_pack *p) { return p->alignment; }
uint64_t si_pack_file_size(const si_pack *p) { return p->file_size; }
uint64_t si_pack_meta_offset(const si_pack *p) { return p->meta_off; }
uint64_t si_pack_meta_size(const si_pack *p) { return p->meta_size; }
uint64_t si_pack_table_offset(const si_pack *p) { return p->table_off; }
uint64_t si_pack_data_offset(const si_pack *p) { return p->data_off; }
uint32_t si_pack_n_tensors(const si_pack *p) { return p->n_tensors; }
uint32_t si_pack_n_chunks(const si_pack *p) { return p->n_chunks; }

const si_pack_tensor *si_pack_tensor_at(const si_pack *p, uint32_t i)
{
    return i < p->n_tensors ? &p->tensors[i] : NULL;
}

const si_pack_tensor *si_pack_find_tensor(const si_pack *p, const char *name)
{
    /* A few hundred tensors, looked up once each at open: a scan is enough. */
    for (uint32_t i = 0; i < p->n_tensors; i++)
        if (strcmp(p->tensors[i].name, name) == 0)
            return &p->tensors[i];
    return NULL;
}

const si_pack_chunk *si_pack_chunk_at(const si_pack *p, uint32_t i)
{
    return i < p->n_chunks ? &p->chunks[i] : NULL;
}

/* Field layouts of the block types (bytes, in storage order; ggml's block structs).
 * A negative entry is a scalar of that many bytes (fp16 scale, F32 value) split into
 * byte planes: the high bytes of similar scalars repeat, which zstd finds. */
static int fields_of(uint32_t type, int8_t *f)
{
    static const struct {
        uint32_t type;
        int8_t f[6];
    } tab[] = {
        {SI_TYPE_F32, {-4}},
        {SI_TYPE_F16, {-2}},
        {SI_TYPE_BF16, {-2}},
        {SI_TYPE_Q4_0, {-2, 16}},
        {SI_TYPE_Q4_1, {-2, -2, 16}},
        {SI_TYPE_Q5_0, {-2, 4, 16}},
        {SI_TYPE_Q5_1, {-2, -2, 4, 16}},
        {SI_TYPE_Q8_0, {-2, 32}},
        {SI_TYPE_Q2_K, {16, 64, -2, -2}},
        {SI_TYPE_Q3_K, {32, 64, 12, -2}},
        {SI_TYPE_Q4_K, {-2, -2, 12, 127}}, /* 128: fixed below (int8_t) */
        {SI_TYPE_Q5_K, {-2, -2, 12, 32, 127}},
        {SI_TYPE_Q6_K, {127, 64, 16, -2}},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (tab[i].type != type)
            continue;
        int n = 0;
        while (n < 6 && tab[i].f[n])
            n++;
        memcpy(f, tab[i].f, (size_t)n);
        return n;
    }
    return 0;
}

static int field_bytes(int8_t f) { return f == 127 ? 128 : f < 0 ? -f : f; }

bool si_pack_fields(uint32_t type, const void *src, void *dst, uint64_t n, bool inverse)
{
    int8_t f[6];
    int nf = fields_of(type, f);
    const si_type_traits *tt = si_type_get(type);
    if (!nf || !tt)
        return false;
    size_t bs = 0;
    for (int i = 0; i < nf; i++)
        bs += (size_t)field_bytes(f[i]);
    if (bs != tt->type_size || n % bs)
        return false;
    const uint8_t *s = src;
    uint8_t *d = dst;
    uint64_t nb = n / bs, pos = 0; /* pos: running offset in the split layout */
    size_t fo = 0;
    for (int i = 0; i < nf; i++) {
        size_t fs = (size_t)field_bytes(f[i]);
        if (f[i] < 0) {
            for (size_t k = 0; k < fs; k++)
                for (uint64_t b = 0; b < nb; b++, pos++) {
                    if (inverse)
                        d[b * bs + fo + k] = s[pos];
                    else
                        d[pos] = s[b * bs + fo + k];
                }
        } else {
            for (uint64_t b = 0; b < nb; b++, pos += fs) {
                if (inverse)
                    memcpy(d + b * bs + fo, s + pos, fs);
                else
                    memcpy(d + pos, s + b * bs + fo, fs);
            }
        }
        fo += fs;
    }
    return true;
}

int si_pack_decode_raw(uint32_t codec, uint32_t type, const void *stored, uint64_t stored_n, void *raw,
                       uint64_t raw_n, void *scratch, const char *what, si_error *err)
{
    if (codec == SI_PACK_CODEC_RAW) {
        SI_CHECK(stored_n != raw_n, err, SI_EFORMAT, "%s: raw chunk of %" PRIu64 " bytes, expected %" PRIu64, what,
                 stored_n, raw_n);
        memcpy(raw, stored, (size_t)raw_n);
        return SI_OK;
    }
#if SI_HAVE_ZSTD
    SI_CHECK(codec != SI_PACK_CODEC_ZSTD && codec != SI_PACK_CODEC_ZSTD_FIELDS, err, SI_EFORMAT,
             "%s: unknown codec %u", what, codec);
    SI_CHECK(codec == SI_PACK_CODEC_ZSTD_FIELDS && !scratch, err, SI_EINVAL, "%s: no scratch buffer", what);
    void *out = codec == SI_PACK_CODEC_ZSTD_FIELDS ? scratch : raw;
    unsigned long long want = ZSTD_getFrameContentSize(stored, (size_t)stored_n);
    SI_CHECK(want != raw_n, err, SI_EFORMAT, "%s: zstd frame declares %llu bytes, expected %" PRIu64, what, want,
             raw_n);
    size_t got = ZSTD_decompress(out, (size_t)raw_n, stored, (size_t)stored_n);
    SI_CHECK(ZSTD_isError(got) || got != raw_n, err, SI_EFORMAT, "%s: zstd frame does not decode: %s", what,
             ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short output");
    if (codec == SI_PACK_CODEC_ZSTD_FIELDS)
        SI_CHECK(!si_pack_fields(type, scratch, raw, raw_n, true), err, SI_EFORMAT,
                 "%s: field-split chunk of a type (%s) without a field layout", what, si_type_name(type));
    return SI_OK;
#else
    return si_errorf(err, SI_EUNSUPPORTED, "%s: zstd chunk, but this build has no zstd support", what);
#endif
}

int si_pack_decode(const si_pack_chunk *c, uint32_t type, const void *stored, void *raw, const char *what,
                   si_error *err)
{
    void *scratch = NULL;
    if (c->codec == SI_PACK_CODEC_ZSTD_FIELDS && !(scratch = malloc(c->raw ? (size_t)c->raw : 1)))
        return si_errorf(err, SI_ENOMEM, "out of memory");
    int rc = si_pack_decode_raw(c->codec, type, stored, c->stored, raw, c->raw, scratch, what, err);
    free(scratch);
    return rc;
}

int si_pack_check(const si_pack *p, uint32_t ci, const void *stored, si_error *err)
{
    const si_pack_chunk *c = &p->chunks[ci];
    uint64_t h = XXH3_64bits(stored, (size_t)c->stored);
    if (h == c->xxh3)
        return SI_OK;
    const si_pack_tensor *t = NULL;
    for (uint32_t i = 0; i < p->n_tensors && !t; i++)
        if (ci >= p->tensors[i].first_chunk && ci < p->tensors[i].first_chunk + p->tensors[i].n_chunks)
            t = &p->tensors[i];
    char layer[24] = "";
    if (t && t->layer >= 0)
        snprintf(layer, sizeof layer, " (layer %d)", t->layer);
    return si_errorf(err, SI_ECHECKSUM,
                     "%s: checksum mismatch in tensor %s%s, chunk %u at file offset %" PRIu64 " (%" PRIu64
                     " bytes): XXH3 %016" PRIx64 ", expected %016" PRIx64,
                     p->mpath[c->member] ? p->mpath[c->member] : p->path, t ? t->name : "?", layer, ci, c->offset, c->stored, h, c->xxh3);
}

static int grow(uint8_t **buf, size_t *cap, uint64_t n, si_error *err)
{
    if (n <= *cap)
        return SI_OK;
    uint8_t *b = realloc(*buf, (size_t)n);
    SI_CHECK(!b, err, SI_ENOMEM, "out of memory for a %" PRIu64 "-byte chunk", n);
    *buf = b;
    *cap = (size_t)n;
    return SI_OK;
}

int si_pack_read_rows(si_pack *p, si_io *const *ios, const si_pack_tensor *t, uint64_t row, uint64_t n, void *dst,
                      si_error *err)
{
    SI_CHECK(row > t->n_rows || n > t->n_rows - row, err, SI_EINVAL, "%s: rows %" PRIu64 "+%" PRIu64 " out of range",
             t->name, row, n);
    uint8_t *out = dst;
    for (uint32_t ci = t->first_chunk; n > 0 && ci < t->first_chunk + t->n_chunks; ci++) {
        const si_pack_chunk *c = &p->chunks[ci];
        if (row >= c->row0 + c->n_rows)
            continue;
        SI_TRY(grow(&p->stored_buf, &p->stored_cap, c->stored, err));
        int rc = SI_ECHECKSUM;
        for (int tries = 0; tries <= MAX_REREADS && rc == SI_ECHECKSUM; tries++) {
            SI_TRY(si_io_read(ios[c->member], c->offset, (size_t)c->stored, p->stored_buf, err));
            rc = si_pack_check(p, ci, p->stored_buf, err);
        }
        if (rc < 0)
            return si_error_prefix(err, "after %d re-reads", MAX_REREADS);
        const uint8_t *rows = p->stored_buf;
        if (c->codec != SI_PACK_CODEC_RAW) {
            SI_TRY(grow(&p->raw_buf, &p->raw_cap, c->raw, err));
            SI_TRY(si_pack_decode(c, t->type, p->stored_buf, p->raw_buf, t->name, err));
            rows = p->raw_buf;
        }
        uint64_t take = c->row0 + c->n_rows - row < n ? c->row0 + c->n_rows - row : n;
        memcpy(out, rows + (row - c->row0) * t->row_bytes, (size_t)(take * t->row_bytes));
        out += take * t->row_bytes;
        row += take;
        n -= take;
    }
    return SI_OK;
}
