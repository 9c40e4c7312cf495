/* A single flipped byte anywhere in any chunk of a pack is caught before compute: the
 * run fails with an error naming the tensor, its layer and the chunk's file offset,
 * dumps no logits row computed from it, and repack --verify reports it. Positions:
 * first, last, middle and a random byte of every chunk, in a raw and a zstd pack.
 * usage: test_pack_corrupt MKMODEL REPACK STREAM_INFER */
#include "pack_test.h"

#include <fcntl.h>
#include <unistd.h>

#include "si_config.h"
#include "streaminfer/pack.h"

static int flip(const char *path, uint64_t off, uint8_t mask)
{
    int fd = open(path, O_RDWR);
    uint8_t b = 0;
    int ok = fd >= 0 && pread(fd, &b, 1, (off_t)off) == 1;
    b ^= mask;
    ok = ok && pwrite(fd, &b, 1, (off_t)off) == 1;
    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MKMODEL REPACK STREAM_INFER\n", argv[0]);
        return 2;
    }
    const char *mk = argv[1], *rp = argv[2], *si = argv[3];
    const char *d = scratch_dir("corrupt");
    char g[4400], err_path[4400], dump[4400];
    snprintf(g, sizeof g, "%s/m.gguf", d);
    snprintf(err_path, sizeof err_path, "%s/err.txt", d);
    snprintf(dump, sizeof dump, "%s/logits", d);
    CHECK(sh("'%s' -o '%s' --dim 256 --layers 2 --heads 4 --kv-heads 1 --ff 512 --type Q8_0 "
             "--tensor-type output=Q6_K --rope-freqs > /dev/null 2>&1",
             mk, g) == 0);
    const char *variants[] = {"--chunk 32K", "--zstd=3 --min-saving 0 --chunk 32K"};
    test_rng rng;
    test_rng_seed(&rng, 4);
    /* Each run costs a qemu start (about 0.25 s): under emulation flip the first and a
     * random byte of every chunk, not the last and middle ones too. */
    bool all_positions = !test_emulated();
    if (!all_positions)
        printf("under emulation (%s): 2 of the 4 positions per chunk (first byte, a random byte); the native run "
               "flips all four\n", test_emulated());
    long checked = 0;
    for (int v = 0; v < 2; v++) {
        if (v == 1 && !SI_HAVE_ZSTD)
            break;
        char p[4400];
        snprintf(p, sizeof p, "%s/m%d.pack", d, v);
        CHECK(sh("'%s' '%s' '%s' --no-progress %s > /dev/null 2>&1", rp, g, p, variants[v]) == 0);
        si_pack *pk;
        si_error e;
        CHECKF(si_pack_open(&pk, p, &e) == SI_OK, "%s", e.msg);
        for (uint32_t ti = 0; ti < si_pack_n_tensors(pk); ti++) {
            const si_pack_tensor *t = si_pack_tensor_at(pk, ti);
            for (uint32_t ci = t->first_chunk; ci < t->first_chunk + t->n_chunks; ci++) {
                const si_pack_chunk *c = si_pack_chunk_at(pk, ci);
                uint64_t pos[4] = {0, c->stored - 1, c->stored / 2, test_rng_u64(&rng) % c->stored};
                for (int k = 0; k < 4; k++) {
                    if (!all_positions && (k == 1 || k == 2))
                        continue;
                    uint64_t off = c->offset + pos[k];
                    uint8_t mask = (uint8_t)(1 + test_rng_u32(&rng) % 255);
                    CHECK(flip(p, off, mask) == 0);
                    /* The embedding is read row by row: ask for a row of this chunk. */
                    char ids[64];
                    snprintf(ids, sizeof ids, "%" PRIu64 " 1", strcmp(t->name, "token_embd.weight") == 0 ? c->row0 : 1);
                    int rc = sh("'%s' -m '%s' -q --prompt-ids '%s' -n 1 --temp 0 --print-ids --dump-logits '%s' "
                                "> /dev/null 2> '%s'",
                                si, p, ids, dump, err_path);
                    char want_off[64], want_layer[32];
                    snprintf(want_off, sizeof want_off, "file offset %" PRIu64, c->offset);
                    snprintf(want_layer, sizeof want_layer, "(layer %d)", t->layer);
                    char *msg = test_read_file(err_path, NULL);
                    bool named = msg && strstr(msg, "checksum mismatch") && strstr(msg, t->name) &&
                                 strstr(msg, want_off) && (t->layer < 0 || strstr(msg, want_layer));
                    CHECKF(rc == 1 && named, "%s: byte %" PRIu64 " of %s chunk %u (file offset %" PRIu64
                           ") flipped: exit %d, message: %s",
                           p, pos[k], t->name, ci, off, rc, msg ? msg : "(none)");
                    CHECKF(file_size(dump) <= 0, "logits were dumped from a corrupt pack (%ld bytes)", file_size(dump));
                    free(msg);
                    if (k == 0)
                        CHECKF(sh("'%s' --verify '%s' > /dev/null 2>&1", rp, p) == 1, "--verify missed chunk %u", ci);
                    CHECK(flip(p, off, mask) == 0);
                    checked++;
                }
            }
        }
        CHECK(sh("'%s' --verify '%s' > /dev/null", rp, p) == 0);
        si_pack_close(pk);
    }
    printf("%ld single-byte corruptions detected, each named with tensor, layer and offset\n", checked);
    return 0;
}
