/* Reads through one backend and direct mode (argv: pread|pread-thread|uring|uring-compat
 * off|auto) come back byte-exact: many aligned reads at random offsets with up to
 * queue-depth in flight, reaped with and without waiting, one read of the whole
 * file, and unaligned si_io_read ranges (including ones ending at an unaligned end
 * of file, where the O_DIRECT bounce read runs past it). A third argument "pieces"
 * splits every read into 12 KiB pieces, which exercises the resubmission of
 * remainders that short reads need (rare on a real disk); "readv" makes io_uring use
 * IORING_OP_READV as on kernels before 5.6. */
#include "io_test_util.h"

#include "io_internal.h"

#define FILE_SIZE (6u * 1024 * 1024 + 1234) /* unaligned end on purpose */
#define MAX_BLOCKS 64
#define N_READS 600
#define SEED 0x5eed1234u

typedef struct pending {
    bool busy;
    uint64_t off;
    size_t len;
    uint8_t *buf;
} pending;

static void verify(const pending *p, uint64_t tag)
{
    long bad = t_mismatch(p->buf, p->off, p->len, SEED);
    CHECK(bad < 0, "read %llu (offset %llu, %zu bytes) differs at byte %ld",
          (unsigned long long)tag, (unsigned long long)p->off, p->len, bad);
}

/* One reap; returns 1 when a completion was handled. */
static int reap_one(si_io *io, pending *slots, bool wait)
{
    uint64_t tag = UINT64_MAX;
    si_error err = {0};
    int rc = si_io_reap(io, wait, &tag, &err);
    if (rc == 0)
        return 0;
    CHECK(tag < si_io_queue_depth(io), "reap returned unknown tag %llu", (unsigned long long)tag);
    if (tag >= si_io_queue_depth(io))
        exit(1);
    CHECK(rc == 1, "reap of read at offset %llu failed: %s", (unsigned long long)slots[tag].off,
          err.msg);
    if (rc == 1)
        verify(&slots[tag], tag);
    slots[tag].busy = false;
    return 1;
}

static void random_reads(si_io *io, uint64_t *rng)
{
    unsigned depth = si_io_queue_depth(io);
    size_t align = si_io_alignment(io);
    uint64_t blocks = FILE_SIZE / align; /* whole blocks inside the file */
    pending *slots = calloc(depth, sizeof *slots);
    for (unsigned i = 0; i < depth; i++)
        slots[i].buf = t_aligned(align, MAX_BLOCKS * align);
    unsigned submitted = 0, polls = 0, max_inflight = 0;
    uint64_t expect_bytes = si_io_bytes_read(io);
    while (submitted < N_READS || si_io_inflight(io) > 0) {
        bool can_submit = submitted < N_READS && si_io_inflight(io) < depth;
        if (can_submit && (t_rand(rng) % 4 != 0 || si_io_inflight(io) == 0)) {
            unsigned t = 0;
            while (slots[t].busy)
                t++;
            uint64_t nb = 1 + t_rand(rng) % MAX_BLOCKS;
            uint64_t first = t_rand(rng) % (blocks - nb + 1);
            slots[t] = (pending){true, first * align, (size_t)(nb * align), slots[t].buf};
            si_error err = {0};
            int rc = si_io_submit(io, slots[t].off, slots[t].len, slots[t].buf, t, &err);
            CHECK(rc == SI_OK, "submit: %s", err.msg);
            if (rc != SI_OK)
                break;
            expect_bytes += slots[t].len;
            submitted++;
            if (si_io_inflight(io) > max_inflight)
                max_inflight = si_io_inflight(io);
            continue;
        }
        /* Mostly non-blocking polls, to prove completions surface without waiting. */
        bool wait = t_rand(rng) % 3 == 0 || polls > 1000000;
        if (reap_one(io, slots, wait))
            polls = 0;
        else
            polls++;
    }
    CHECK(max_inflight == depth, "never had %u reads in flight (max %u)", depth, max_inflight);
    CHECK(si_io_bytes_read(io) == expect_bytes, "bytes_read %llu, expected %llu",
          (unsigned long long)si_io_bytes_read(io), (unsigned long long)expect_bytes);
    printf("%u random reads, up to %u in flight: ok\n", submitted, max_inflight);
    for (unsigned i = 0; i < depth; i++)
        free(slots[i].buf);
    free(slots);
}

static void whole_file(si_io *io)
{
    size_t align = si_io_alignment(io);
    size_t len = FILE_SIZE / align * align;
    pending p = {true, 0, len, t_aligned(align, len)};
    si_error err = {0};
    int rc = si_io_submit(io, 0, len, p.buf, 42, &err);
    CHECK(rc == SI_OK, "submit whole file: %s", err.msg);
    uint64_t tag = 0;
    rc = si_io_reap(io, true, &tag, &err);
    CHECK(rc == 1 && tag == 42, "reap whole file: rc %d tag %llu: %s", rc,
          (unsigned long long)tag, err.msg);
    if (rc == 1)
        verify(&p, tag);
    free(p.buf);
}

static void unaligned_reads(si_io *io, uint64_t *rng)
{
    uint8_t buf[20000];
    uint64_t size = si_io_file_size(io);
    struct { uint64_t off; size_t len; } fixed[] = {
        {0, 1}, {1, 4095}, {4095, 2}, {size - 1, 1}, {size - 1000, 1000}, {size - 5000, 5000},
    };
    size_t nfixed = sizeof fixed / sizeof fixed[0];
    for (size_t i = 0; i < nfixed + 300; i++) {
        uint64_t off;
        size_t len;
        if (i < nfixed) {
            off = fixed[i].off;
            len = fixed[i].len;
        } else {
            off = t_rand(rng) % size;
            len = 1 + (size_t)(t_rand(rng) % sizeof buf);
            if (len > size - off)
                len = (size_t)(size - off);
        }
        uint64_t before = si_io_bytes_read(io);
        si_error err = {0};
        int rc = si_io_read(io, off, len, buf, &err);
        CHECK(rc == SI_OK, "si_io_read(%llu, %zu): %s", (unsigned long long)off, len, err.msg);
        if (rc != SI_OK)
            continue;
        long bad = t_mismatch(buf, off, len, SEED);
        CHECK(bad < 0, "si_io_read(%llu, %zu) differs at byte %ld", (unsigned long long)off, len,
              bad);
        CHECK(si_io_bytes_read(io) - before >= len, "si_io_read(%llu, %zu) counted %llu bytes",
              (unsigned long long)off, len, (unsigned long long)(si_io_bytes_read(io) - before));
    }
    printf("%zu unaligned si_io_read ranges: ok\n", nfixed + 300);
}

int main(int argc, char **argv)
{
    si_io_opts o = {0};
    bool pieces = argc == 4 && strcmp(argv[3], "pieces") == 0;
    bool readv = argc == 4 && strcmp(argv[3], "readv") == 0;
    if ((argc != 3 && !pieces && !readv) || t_parse_backend(argv[1], &o) || t_parse_direct(argv[2], &o)) {
        fprintf(stderr, "usage: %s pread|pread-thread|uring|uring-compat off|auto [pieces|readv]\n", argv[0]);
        return 2;
    }
    char name[96], path[4096];
    snprintf(name, sizeof name, "io-read-%s-%s%s.bin", argv[1], argv[2],
             pieces ? "-pieces" : readv ? "-readv" : "");
    si_io_test_force_readv(readv);
    t_path(path, sizeof path, name);
    if (t_write_file(path, FILE_SIZE, SEED) != 0)
        return 1;
    si_io *io = t_open_or_skip(path, &o);
    if (pieces)
        si_io_test_set_max_piece(io, 3 * si_io_alignment(io));
    if (readv && o.kind == SI_IO_URING)
        CHECK(strstr(si_io_detail(io), "READV") != NULL, "READV not used: %s", si_io_detail(io));
    const char *want = o.kind == SI_IO_PREAD ? "pread" : "io_uring";
    CHECK(strcmp(si_io_backend(io), want) == 0, "backend %s, asked for %s", si_io_backend(io),
          want);
    CHECK(si_io_file_size(io) == FILE_SIZE, "file size %llu",
          (unsigned long long)si_io_file_size(io));
    CHECK(si_io_alignment(io) >= 512 && (si_io_alignment(io) & (si_io_alignment(io) - 1)) == 0,
          "alignment %zu", si_io_alignment(io));
    if (o.direct == SI_DIRECT_OFF)
        CHECK(!si_io_direct_active(io), "O_DIRECT active with direct=off");
    else if (!si_io_direct_active(io))
        CHECK(strstr(si_io_note(io), "O_DIRECT") != NULL,
              "direct=auto fell back without a note: \"%s\"", si_io_note(io));
    uint64_t tag = 7;
    si_error err = {0};
    CHECK(si_io_reap(io, false, &tag, &err) == 0, "reap with nothing in flight");
    CHECK(si_io_reap(io, true, &tag, &err) == 0, "waiting reap with nothing in flight");

    uint64_t rng = 0x12345678abcdefull;
    random_reads(io, &rng);
    whole_file(io);
    unaligned_reads(io, &rng);
    /* async reads still work after synchronous ones */
    random_reads(io, &rng);
    CHECK(si_io_inflight(io) == 0, "%u reads left in flight", si_io_inflight(io));

    si_io_close(io);
    unlink(path);
    if (t_failures)
        return 1;
    printf("PASS %s direct=%s%s\n", argv[1], argv[2], pieces ? " in pieces" : readv ? " with READV" : "");
    return 0;
}
