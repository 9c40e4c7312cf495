/* Pack reader: header, metadata, extent (tensor and chunk) table, then every tensor's
 * rows through chunk decode and checksum (pread). */
#include "fuzz_util.h"
#include "streaminfer/io.h"
#include "streaminfer/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fz_memfile(data, size, path, sizeof path);
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
                if (si_pack_read_rows(p, io, t, 0, t->n_rows, raw, &e) == SI_OK)
                    sink += raw[0];
                /* a slice from the middle: the last row alone */
                (void)si_pack_read_rows(p, io, t, t->n_rows - 1, 1, raw, &e);
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
