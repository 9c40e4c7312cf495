/* llama2.c checkpoint importer: header validation (sizes must match the file) and
 * every tensor's conversion, float and q80 (every Q8_0 mode). */
#include "fuzz_util.h"
#include "streaminfer/llama2c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fz_memfile(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    if (si_l2c_probe(path)) {
        for (int mode = 0; mode < 3; mode++) {
            si_l2c *c;
            si_error e;
            if (si_l2c_open(&c, path, (si_l2c_q80_mode)mode, &e) != SI_OK)
                continue;
            for (uint32_t i = 0; i < c->n_t; i++) {
                uint64_t n = si_l2c_tensor_size(c, i);
                if (n == 0 || n > (8u << 20))
                    continue;
                void *dst = malloc((size_t)n);
                if (dst)
                    (void)si_l2c_read(c, i, dst, &e);
                free(dst);
            }
            si_l2c_close(c);
        }
    }
    close(fd);
    return 0;
}
