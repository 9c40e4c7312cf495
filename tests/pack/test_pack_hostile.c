/* Hostile packs: truncations, a newer version, targeted bad counts / offsets / sizes in
 * the header and table (with checksums recomputed so the validation behind them is
 * reached), and random corruption of header, metadata and table (half the time with
 * checksums recomputed). Every case must give an error or, when the change was
 * harmless, a model that evaluates; never a crash (run under ASan/UBSan).
 * usage: test_pack_hostile MKMODEL REPACK */
#include "pack_test.h"

#include <fcntl.h>
#include <unistd.h>

#include "si_config.h"
#include "streaminfer/llama.h"
#include "streaminfer/pack.h"

static uint8_t *orig;
static size_t orig_n;
static char path[4400];

static uint32_t g32(const uint8_t *b, size_t o) { uint32_t v; memcpy(&v, b + o, 4); return v; }
static uint64_t g64(const uint8_t *b, size_t o) { uint64_t v; memcpy(&v, b + o, 8); return v; }
static void p32(uint8_t *b, size_t o, uint32_t v) { memcpy(b + o, &v, 4); }
static void p64(uint8_t *b, size_t o, uint64_t v) { memcpy(b + o, &v, 8); }

/* Recompute metadata, table and header checksums where the header's ranges allow. */
static void fix_sums(uint8_t *b, size_t n)
{
    if (n < SI_PACK_HEADER_SIZE)
        return;
    uint64_t mo = g64(b, 24), ms = g64(b, 32), to = g64(b, 40), ts = g64(b, 48);
    if (mo <= n && ms <= n - mo)
        p64(b, 88, si_xxh3(b + mo, (size_t)ms));
    if (to <= n && ts <= n - to)
        p64(b, 96, si_xxh3(b + to, (size_t)ts));
    p64(b, 120, si_xxh3(b, 120));
}

static void write_file(const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n);
    fclose(f);
}

/* Open (and when it opens, run) a mutated pack; returns the status. */
static int try_pack(const uint8_t *b, size_t n, si_error *e)
{
    write_file(b, n);
    si_pack *p;
    int rc = si_pack_open(&p, path, e);
    if (rc != SI_OK)
        return rc;
    si_pack_close(p);
    si_llama *m;
    si_llama_opts o = {.n_ctx = 16, .kv_type = SI_KV_F32};
    rc = si_llama_open(&m, path, &o, e);
    if (rc != SI_OK)
        return rc;
    float *logits = malloc(sizeof(float) * si_llama_hparams_of(m)->n_vocab);
    int32_t ids[2] = {1, 2};
    rc = si_llama_eval(m, ids, 2, false, logits, e);
    if (rc == SI_OK)
        rc = si_llama_finish(m, e);
    free(logits);
    si_llama_close(m);
    return rc;
}

static int n_cases;

/* A targeted edit must be refused with a message containing `want`. */
static void expect_refused(const char *what, uint8_t *b, size_t n, bool fix, const char *want)
{
    if (fix)
        fix_sums(b, n);
    si_error e = {0};
    int rc = try_pack(b, n, &e);
    CHECKF(rc < 0, "%s: accepted", what);
    CHECKF(!want || strstr(e.msg, want), "%s: message lacks '%s': %s", what, want, e.msg);
    n_cases++;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MKMODEL REPACK\n", argv[0]);
        return 2;
    }
    const char *d = scratch_dir("hostile");
    char g[4400], pk[4400];
    snprintf(g, sizeof g, "%s/m.gguf", d);
    snprintf(pk, sizeof pk, "%s/m.pack", d);
    snprintf(path, sizeof path, "%s/bad.pack", d);
    CHECK(sh("'%s' -o '%s' --dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 --type Q8_0 --tensor-type "
             "token_embd=F16 > /dev/null 2>&1", argv[1], g) == 0);
    CHECK(sh("'%s' '%s' '%s' --no-progress %s --chunk 4K --embd-chunk 1K > /dev/null 2>&1", argv[2], g, pk,
             SI_HAVE_ZSTD ? "--zstd=1 --min-saving 0" : "") == 0);
    orig = test_read_file(pk, &orig_n);
    CHECK(orig && orig_n > 4096);
    uint8_t *b = malloc(orig_n);
    si_error e;
    /* The untouched pack works. */
    CHECKF(try_pack(orig, orig_n, &e) == SI_OK, "%s", e.msg);
    uint64_t to = g64(orig, 40), nt = g32(orig, 56), nc = g32(orig, 60), dof = g64(orig, 80);
    uint64_t ce = to + nt * SI_PACK_TENSOR_ENTRY;

    /* Truncation anywhere is refused at open. */
    size_t cuts[] = {0, 1, 4, 64, 127, 128, 129, 1000, (size_t)to, (size_t)(to + 100), (size_t)dof,
                     (size_t)dof + 1, orig_n / 2, orig_n - 4096, orig_n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        memcpy(b, orig, orig_n);
        expect_refused("truncated", b, cuts[i], false, cuts[i] >= 128 ? "truncated" : "too short");
    }
    /* Version and magic. */
#define EDIT(what, fix, want, stmt)        \
    do {                                   \
        memcpy(b, orig, orig_n);           \
        stmt;                              \
        expect_refused(what, b, orig_n, fix, want); \
    } while (0)
    EDIT("version 3", true, "version 3 is not supported", p32(b, 4, 3));
    EDIT("version 2 header on a single file", true, "striped set of 0 members", p32(b, 4, 2));
    EDIT("version 0", true, "not supported", p32(b, 4, 0));
    EDIT("header sum", false, "header checksum", b[17] ^= 1);
    EDIT("table sum", false, "extent table", b[to + 70] ^= 1);
    EDIT("meta sum", false, "metadata block", b[200] ^= 1);
    EDIT("file size", true, NULL, p64(b, 16, orig_n + 4096));
    EDIT("header size", true, NULL, p32(b, 8, 64));
    EDIT("meta size huge", true, NULL, p64(b, 32, UINT64_MAX - 100));
    EDIT("meta size small", true, NULL, p64(b, 32, 10));
    EDIT("table off", true, NULL, p64(b, 40, orig_n - 8));
    EDIT("table size", true, NULL, p64(b, 48, g64(orig, 48) + 48));
    EDIT("no tensors", true, NULL, p32(b, 56, 0));
    EDIT("many tensors", true, NULL, p32(b, 56, 0xffffffffu));
    EDIT("many chunks", true, NULL, p32(b, 60, 0x7fffffffu));
    EDIT("alignment 3", true, "alignment", p32(b, 64, 3));
    EDIT("alignment 0", true, "alignment", p32(b, 64, 0));
    EDIT("data off odd", true, "data offset", p64(b, 80, dof + 1));
    EDIT("data off past end", true, NULL, p64(b, 80, UINT64_MAX - 4095));
    EDIT("name unterminated", true, "name", memset(b + to, 'A', 64));
    EDIT("name empty", true, "name", b[to] = 0);
    EDIT("type 99", true, "unknown type", p32(b, to + 64, 99));
    EDIT("n_dims 7", true, "n_dims", p32(b, to + 68, 7));
    EDIT("ne0 huge", true, NULL, p64(b, to + 72, UINT64_MAX));
    EDIT("ne1 zero", true, NULL, p64(b, to + 80, 0));
    EDIT("ne2 not 1", true, NULL, p64(b, to + 88, 2));
    EDIT("first chunk", true, "chunks", p32(b, to + 104, 1));
    EDIT("chunk count", true, NULL, p32(b, to + 108, 0xffffffffu));
    EDIT("raw size", true, "raw size", p64(b, to + 112, g64(orig, to + 112) + 1));
    EDIT("chunk offset past end", true, "misplaced", p64(b, ce, UINT64_MAX - 10));
    EDIT("chunk offset misaligned", true, "misplaced", p64(b, ce, g64(orig, ce) + 1));
    EDIT("chunk stored huge", true, "misplaced", p64(b, ce + 8, UINT64_MAX));
    EDIT("chunk stored zero", true, "misplaced", p64(b, ce + 8, 0));
    EDIT("chunk raw", true, NULL, p64(b, ce + 16, g64(orig, ce + 16) + 4));
    EDIT("chunk row0", true, NULL, p64(b, ce + 32, 1));
    EDIT("chunk codec", true, "codec", p32(b, ce + 40, 7));
    EDIT("chunk rows", true, NULL, p32(b, ce + 44, 0));
    EDIT("last chunk stored", true, NULL, p64(b, ce + (nc - 1) * SI_PACK_CHUNK_ENTRY + 8, orig_n));
    if (SI_HAVE_ZSTD)
        EDIT("zstd flag cleared", true, "zstd flag", p32(b, 12, 0));
    else
        EDIT("zstd flag set", true, "no zstd support", p32(b, 12, 1));
    /* A bad zstd frame with a matching checksum (a forged chunk) fails to decode. */
    for (uint64_t c = 0; c < nc; c++) {
        uint64_t e0 = ce + c * SI_PACK_CHUNK_ENTRY;
        if (g32(orig, e0 + 40) != SI_PACK_CODEC_ZSTD)
            continue;
        memcpy(b, orig, orig_n);
        uint64_t off = g64(b, e0), st = g64(b, e0 + 8);
        b[off + st / 2] ^= 0x55;
        p64(b, e0 + 24, si_xxh3(b + off, (size_t)st));
        fix_sums(b, orig_n);
        si_error e2 = {0};
        int rc = try_pack(b, orig_n, &e2);
        CHECKF(rc < 0 || rc == SI_OK, "forged frame");
        n_cases++;
        break;
    }

    /* Random corruption of header, metadata and table. */
    test_rng rng;
    test_rng_seed(&rng, 99);
    int accepted = 0, n_random = 1500;
    for (int it = 0; it < n_random; it++) {
        memcpy(b, orig, orig_n);
        int k = 1 + (int)(test_rng_u32(&rng) % 8);
        for (int j = 0; j < k; j++) {
            uint64_t off = test_rng_u64(&rng) % (it % 3 == 0 ? SI_PACK_HEADER_SIZE : dof);
            b[off] = (uint8_t)test_rng_u32(&rng);
        }
        if (it % 2)
            fix_sums(b, orig_n);
        si_error e3 = {0};
        if (try_pack(b, orig_n, &e3) == SI_OK)
            accepted++;
        n_cases++;
    }
    printf("%d hostile packs: every one refused or harmless (%d random changes accepted, e.g. in unused metadata)\n",
           n_cases, accepted);
    free(b);
    free(orig);
    return 0;
}
