/* Pack reader: header, metadata, extent (tensor and chunk) table, then every tensor's
 * rows through chunk decode and checksum (pread). Checksums are recomputed for most
 * inputs (fix_checksums) so that mutations reach the table and the decoders. Seeds
 * include the two members of a striped set (version 2): member 0 alone reaches the
 * members block and the table before its missing member is refused. */
#include "fuzz_util.h"
#include "streaminfer/io.h"
#include "streaminfer/pack.h"

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Every checksum of a pack (XXH3-64) recomputed after mutation, and the header's file
 * size set to the real one: without this the fuzzer never gets past the header's own
 * checksum. Inputs whose last byte is a multiple of 4 are left as they are, so the
 * checks that refuse them stay covered too. */
static void fix_checksums(uint8_t *d, size_t size)
{
    if (size < SI_PACK_HEADER_SIZE || d[size - 1] % 4 == 0)
        return;
    wr64(d + 16, size);
    uint32_t version, hsize, ce_size = SI_PACK_CHUNK_ENTRY;
    memcpy(&version, d + 4, 4);
    memcpy(&hsize, d + 8, 4);
    bool v2 = version == SI_PACK_VERSION_2 && hsize >= SI_PACK_HEADER_SIZE && hsize <= size;
    if (v2) { /* a striped set's member: its own entry in the members block, 56-byte chunk entries */
        ce_size = SI_PACK_CHUNK_ENTRY_V2;
        uint16_t idx;
        memcpy(&idx, d + 76, 2);
        if (SI_PACK_HEADER_SIZE + (uint64_t)(idx + 1) * SI_PACK_MEMBER_ENTRY <= hsize)
            wr64(d + SI_PACK_HEADER_SIZE + (size_t)idx * SI_PACK_MEMBER_ENTRY + 240, size);
    }
    uint64_t meta_off = rd64(d + 24), meta_size = rd64(d + 32), table_off = rd64(d + 40), table_size = rd64(d + 48);
    uint32_t n_tensors, n_chunks;
    memcpy(&n_tensors, d + 56, 4);
    memcpy(&n_chunks, d + 60, 4);
    if (meta_off <= size && meta_size <= size - meta_off)
        wr64(d + 88, si_xxh3(d + meta_off, (size_t)meta_size));
    if (table_off <= size && table_size <= size - table_off &&
        (uint64_t)n_tensors * SI_PACK_TENSOR_ENTRY + (uint64_t)n_chunks * ce_size <= table_size) {
        uint8_t *ce = d + table_off + (size_t)n_tensors * SI_PACK_TENSOR_ENTRY;
        for (uint32_t i = 0; i < n_chunks; i++) {
            uint8_t *e = ce + (size_t)i * ce_size;
            uint64_t off = rd64(e), stored = rd64(e + 8);
            if (off <= size && stored <= size - off)
                wr64(e + 24, si_xxh3(d + off, (size_t)stored));
        }
        wr64(d + 96, si_xxh3(d + table_off, (size_t)table_size));
    }
    wr64(d + 120, v2 ? si_pack_v2_header_xxh3(d, hsize) : si_xxh3(d, 120));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    fix_checksums(copy, size);
    int fd = fz_memfile(copy, size, path, sizeof path);
    free(copy);
    if (fd < 0)
        return 0;
    si_pack *p;
    si_error e;
    if (si_pack_probe(path) && si_pack_open(&p, path, &e) == SI_OK) {
        volatile uint64_t sink = 0;
        for (uint32_t i = 0; i < si_pack_n_chunks(p); i++)
            sink += si_pack_chunk_at(p, i) != NULL;
        si_io *io;
        si_io_opts o = {.kind = SI_IO_PREAD, .direct = SI_DIRECT_OFF};
        if (si_io_open(&io, path, &o, &e) == SI_OK) {
            for (uint32_t i = 0; i < si_pack_n_tensors(p); i++) {
                const si_pack_tensor *t = si_pack_tensor_at(p, i);
                if (si_pack_find_tensor(p, t->name) == NULL)
                    abort();
                if (t->raw_size > (4u << 20) || t->n_rows == 0)
                    continue;
                uint8_t *raw = malloc((size_t)t->raw_size);
                if (!raw)
                    continue;
                if (si_pack_read_rows(p, &io, t, 0, t->n_rows, raw, &e) == SI_OK)
                    sink += raw[0];
                /* a slice from the middle: the last row alone */
                (void)si_pack_read_rows(p, &io, t, t->n_rows - 1, 1, raw, &e);
                free(raw);
            }
            si_io_close(io);
        }
        (void)sink;
        si_pack_close(p);
    }
    close(fd);
    return 0;
}
