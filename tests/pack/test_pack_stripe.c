/* Striped packs (format version 2): a model repacked over 2 and 3 member files, raw and
 * zstd, gives logits and greedy ids bit-identical to the single-file pack and to the
 * GGUF, started from any member, with members in other directories found through
 * --stripe-path; a missing, foreign, truncated or corrupted member is refused naming
 * the file; repack's --stripe errors, --info and --verify on a set; hostile member
 * headers.
 *
 * usage: test_pack_stripe MKMODEL REPACK STREAM_INFER [FIXTURE_TYPE]
 * With FIXTURE_TYPE the model is ../shared/fixtures/micro-llama3/TYPE.gguf (skipped
 * with 77 when absent) and only the logit comparisons run. */
#include "pack_test.h"

#include <stdint.h>

#include "si_config.h"
#include "streaminfer/pack.h"

static const char *mk, *rp, *si, *d;
static char gguf[4400], ids[8192];

/* stream-infer on model (extra options) -> logits and ids files; its exit status. */
static int run(const char *tag, const char *model, const char *extra, char *logits, char *out)
{
    snprintf(logits, 4400, "%s/%s.logits", d, tag);
    snprintf(out, 4400, "%s/%s.out", d, tag);
    return sh("'%s' -m %s %s -q --kv-type f32 --prompt-ids '%s' -n 12 --temp 0 --print-ids --dump-logits '%s' "
              "> '%s' 2>&1",
              si, model, extra, ids, logits, out);
}

static void same_as_gguf(const char *tag, const char *model, const char *extra)
{
    char l0[4400], o0[4400], l[4400], o[4400];
    snprintf(l0, sizeof l0, "%s/gguf.logits", d);
    snprintf(o0, sizeof o0, "%s/gguf.out", d);
    CHECKF(run(tag, model, extra, l, o) == 0, "%s: stream-infer failed (see %s)", tag, o);
    CHECKF(file_size(l) > 0 && files_equal(l0, l), "%s: logits differ from the GGUF's", tag);
    CHECKF(files_equal(o0, o), "%s: greedy ids differ from the GGUF's", tag);
    printf("%s: logits and ids identical to the GGUF's\n", tag);
}

/* Run stream-infer expecting a refusal whose message has every one of the needles. */
static void refused(const char *tag, const char *model, const char *extra, const char *n1, const char *n2)
{
    char l[4400], o[4400];
    int rc = run(tag, model, extra, l, o);
    CHECKF(rc != 0 && rc < 128, "%s: expected a clean refusal, exit status %d", tag, rc);
    CHECKF(file_contains(o, n1), "%s: message lacks '%s' (see %s)", tag, n1, o);
    CHECKF(!n2 || file_contains(o, n2), "%s: message lacks '%s' (see %s)", tag, n2, o);
    printf("%s: refused, naming %s\n", tag, n1);
}

static void repack_stripe(const char *files, const char *extra)
{
    CHECKF(sh("'%s' '%s' --stripe %s %s --no-progress --chunk 16K --embd-chunk 4K > '%s/repack.log' 2>&1", rp, gguf,
              files, extra, d) == 0,
           "repack --stripe %s %s failed (see %s/repack.log)", files, extra, d);
}

static uint32_t g32(const uint8_t *b, size_t o)
{
    uint32_t v;
    memcpy(&v, b + o, 4);
    return v;
}

/* Member file path edited at byte off (a 16-bit value), header checksum recomputed
 * when fix; the engine must refuse it naming the file. */
static void hostile_member(const char *member, size_t off, uint16_t v, bool fix, const char *model, const char *extra,
                           const char *want)
{
    size_t n = 0;
    uint8_t *b = (uint8_t *)test_read_file(member, &n);
    CHECK(b && n > SI_PACK_HEADER_SIZE);
    uint8_t *orig = malloc(n);
    memcpy(orig, b, n);
    memcpy(b + off, &v, 2);
    uint32_t hs = g32(b, 8);
    if (fix && hs <= n && hs >= SI_PACK_HEADER_SIZE) {
        uint64_t h = si_pack_v2_header_xxh3(b, hs);
        memcpy(b + 120, &h, 8);
    }
    FILE *f = fopen(member, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n && fclose(f) == 0);
    char tag[64];
    snprintf(tag, sizeof tag, "hostile-byte-%zu", off);
    refused(tag, model, extra, member, want);
    f = fopen(member, "wb");
    CHECK(f && fwrite(orig, 1, n, f) == n && fclose(f) == 0);
    free(b);
    free(orig);
}

/* Along the pass (table order), every member's stored bytes so far stay within two
 * chunks of its weighted share: members are interleaved chunk by chunk, so all are read
 * at every point of a pass, not layer after layer. */
static void check_interleaving(const char *member, const char *const *dirs, size_t n_dirs, const double *w)
{
    si_pack *p;
    si_error e = {0};
    CHECKF(si_pack_open_set(&p, member, dirs, n_dirs, &e) == SI_OK, "%s", e.msg);
    uint32_t n = si_pack_n_members(p);
    double wsum = 0, total = 0, have[SI_PACK_MAX_MEMBERS] = {0}, worst = 0, biggest = 0;
    uint32_t runs_ok = 0;
    for (uint32_t i = 0; i < n; i++)
        wsum += w[i];
    for (uint32_t c = 0; c < si_pack_n_chunks(p); c++) {
        const si_pack_chunk *k = si_pack_chunk_at(p, c);
        have[k->member] += (double)k->stored;
        total += (double)k->stored;
        biggest = (double)k->stored > biggest ? (double)k->stored : biggest;
        for (uint32_t i = 0; i < n; i++) {
            double dev = have[i] - total * w[i] / wsum;
            worst = dev < 0 ? (-dev > worst ? -dev : worst) : (dev > worst ? dev : worst);
        }
        runs_ok += c > 0 && si_pack_chunk_at(p, c - 1)->member != k->member;
    }
    CHECKF(worst <= 2 * biggest, "a member's bytes drift %.0f bytes from its share (largest chunk %.0f)", worst,
           biggest);
    CHECKF(runs_ok * 4 > si_pack_n_chunks(p), "members change only %u times over %u chunks", runs_ok,
           si_pack_n_chunks(p));
    printf("interleaving: %u members, at most %.0f bytes from the shares along the pass (largest chunk %.0f)\n", n,
           worst, biggest);
    si_pack_close(p);
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s MKMODEL REPACK STREAM_INFER [FIXTURE_TYPE]\n", argv[0]);
        return 2;
    }
    mk = argv[1];
    rp = argv[2];
    si = argv[3];
    const char *fx_type = argc == 5 ? argv[4] : NULL;
    if (fx_type) {
        const char *fx = getenv("SI_FIXTURES");
        snprintf(gguf, sizeof gguf, "%s/micro-llama3/%s.gguf", fx ? fx : "", fx_type);
        char idsf[4400];
        snprintf(idsf, sizeof idsf, "%s/micro-llama3/ref/prompt.ids", fx ? fx : "");
        if (!fx || file_size(gguf) <= 0 || file_size(idsf) <= 0) {
            printf("fixtures not found at %s (../shared/fixtures is absent in a fresh clone), skipping\n", gguf);
            return TEST_SKIP;
        }
        char *s = test_read_file(idsf, NULL);
        CHECK(s);
        s[strcspn(s, "\n")] = 0;
        snprintf(ids, sizeof ids, "%s", s);
        free(s);
        char name[64];
        snprintf(name, sizeof name, "stripe-%s", fx_type);
        d = scratch_dir(name);
    } else {
        d = scratch_dir("stripe");
        snprintf(gguf, sizeof gguf, "%s/m.gguf", d);
        CHECK(sh("'%s' -o '%s' --dim 256 --layers 3 --heads 4 --kv-heads 2 --ff 512 --type Q8_0 --tensor-type "
                 "token_embd=F16 --tensor-type output=Q4_K > /dev/null 2>&1",
                 mk, gguf) == 0);
        snprintf(ids, sizeof ids, "1 17 33 2 9 120 77 5 64 3");
    }
    char l[4400], o[4400], model[9000], extra[9000];
    CHECKF(run("gguf", gguf, "--pin none", l, o) == 0, "stream-infer on the GGUF failed (see %s)", o);

    /* Single file, then 2 and 3 members, raw and zstd. */
    for (int z = 0; z < 2; z++) {
        const char *zf = z ? "--zstd=3 --min-saving 0" : "";
        if (z && !SI_HAVE_ZSTD) {
            printf("zstd: not in this build, skipped\n");
            continue;
        }
        char tag[64];
        snprintf(model, sizeof model, "%s/single%d.pack", d, z);
        CHECK(sh("'%s' '%s' '%s' %s --no-progress --chunk 16K --embd-chunk 4K > /dev/null 2>&1", rp, gguf, model,
                 zf) == 0);
        snprintf(tag, sizeof tag, "single-%s", z ? "zstd" : "raw");
        same_as_gguf(tag, model, "--pin none");

        CHECK(sh("mkdir -p '%s/two%d'", d, z) == 0);
        char files[9000];
        snprintf(files, sizeof files, "'%s/two%d/a.pack,%s/two%d/b.pack'", d, z, d, z);
        repack_stripe(files, zf);
        snprintf(model, sizeof model, "'%s/two%d/a.pack'", d, z);
        snprintf(tag, sizeof tag, "stripe2-%s", z ? "zstd" : "raw");
        same_as_gguf(tag, model, "--pin none");
        snprintf(tag, sizeof tag, "stripe2-%s-pread", z ? "zstd" : "raw");
        same_as_gguf(tag, model, "--pin none --io pread");
        snprintf(tag, sizeof tag, "stripe2-%s-pins", z ? "zstd" : "raw");
        same_as_gguf(tag, model, "");
        snprintf(model, sizeof model, "'%s/two%d/b.pack'", d, z);
        snprintf(tag, sizeof tag, "stripe2-%s-from-member-1", z ? "zstd" : "raw");
        same_as_gguf(tag, model, "--pin none");

        /* Three members in three directories, unequal shares; opened from member 1. */
        CHECK(sh("mkdir -p '%s/x%d' '%s/y%d' '%s/z%d'", d, z, d, z, d, z) == 0);
        snprintf(files, sizeof files, "'%s/x%d/m0.pack,%s/y%d/m1.pack,%s/z%d/m2.pack' --stripe-weights 25,40,10", d, z,
                 d, z, d, z);
        repack_stripe(files, zf);
        snprintf(model, sizeof model, "'%s/y%d/m1.pack'", d, z);
        snprintf(extra, sizeof extra, "--pin none --stripe-path '%s/z%d' --stripe-path '%s/x%d/'", d, z, d, z);
        snprintf(tag, sizeof tag, "stripe3-%s-stripe-path", z ? "zstd" : "raw");
        same_as_gguf(tag, model, extra);
        {
            char m0p[4400], dy[4400], dz[4400];
            snprintf(m0p, sizeof m0p, "%s/x%d/m0.pack", d, z);
            snprintf(dy, sizeof dy, "%s/y%d", d, z);
            snprintf(dz, sizeof dz, "%s/z%d", d, z);
            const char *dirs[2] = {dy, dz};
            check_interleaving(m0p, dirs, 2, (const double[]){25, 40, 10});
        }
        if (!fx_type && z == 1) {
            /* Every member streamed its share: the report names each with its bytes. */
            char rj[4400];
            snprintf(rj, sizeof rj, "%s/r.json", d);
            snprintf(extra, sizeof extra, "--pin none --stripe-path '%s/z%d' --stripe-path '%s/x%d' --report-json '%s'",
                     d, z, d, z, rj);
            CHECK(run("report", model, extra, l, o) == 0);
            CHECKF(file_contains(rj, "\"members\": [{\"path\": ") && file_contains(rj, "m0.pack") &&
                       file_contains(rj, "m1.pack") && file_contains(rj, "m2.pack") &&
                       !file_contains(rj, "\"streamed_bytes\": 0,"),
                   "the JSON report lacks a member or one streamed nothing (see %s)", rj);
        }
    }
    if (fx_type)
        return 0;

    /* --info and --verify over a set (z = 1 when zstd exists, else the raw set). */
    int z = SI_HAVE_ZSTD ? 1 : 0;
    char info[4400], m0[4400], m1[4400], m2[4400];
    snprintf(info, sizeof info, "%s/info.txt", d);
    snprintf(m0, sizeof m0, "%s/x%d/m0.pack", d, z);
    snprintf(m1, sizeof m1, "%s/y%d/m1.pack", d, z);
    snprintf(m2, sizeof m2, "%s/z%d/m2.pack", d, z);
    CHECK(sh("'%s' --info '%s' --stripe-path '%s/y%d' --stripe-path '%s/z%d' > '%s' 2>&1", rp, m0, d, z, d, z, info) ==
          0);
    CHECKF(file_contains(info, "striped set of 3 members") && file_contains(info, "member 0 m0.pack") &&
               file_contains(info, "member 1 m1.pack") && file_contains(info, "member 2 m2.pack"),
           "--info does not list the members (see %s)", info);
    CHECK(sh("'%s' --verify '%s' --stripe-path '%s/x%d' --stripe-path '%s/z%d' > '%s' 2>&1", rp, m1, d, z, d, z,
             info) == 0);
    CHECKF(file_contains(info, "member 2 ") && file_contains(info, ": ok"), "--verify output (see %s)", info);
    CHECK(sh("'%s' --info '%s' > '%s' 2>&1", rp, m0, info) == 1);
    CHECKF(file_contains(info, "m1.pack") && file_contains(info, "missing"), "--info without the members (see %s)",
           info);
    printf("--info and --verify: members listed and checked\n");

    /* Refusals, each naming the member. */
    snprintf(model, sizeof model, "'%s'", m0);
    snprintf(extra, sizeof extra, "--stripe-path '%s/y%d'", d, z);
    refused("missing", model, extra, "m2.pack", "missing");
    snprintf(extra, sizeof extra, "--stripe-path '%s/y%d' --stripe-path '%s/z%d'", d, z, d, z);
    /* foreign: a member of another set with the same names */
    CHECK(sh("mkdir -p '%s/other' && cp '%s' '%s/other/m2.pack.keep'", d, m2, d) == 0);
    CHECK(sh("mkdir -p '%s/o0' '%s/o1' '%s/o2'", d, d, d) == 0);
    char files[9000];
    snprintf(files, sizeof files, "'%s/o0/m0.pack,%s/o1/m1.pack,%s/o2/m2.pack' --stripe-weights 25,40,10", d, d, d);
    repack_stripe(files, z ? "--zstd=3 --min-saving 0" : "");
    CHECK(sh("cp '%s/o2/m2.pack' '%s'", d, m2) == 0);
    refused("foreign", model, extra, m2, "another striped set");
    CHECK(sh("cp '%s/other/m2.pack.keep' '%s'", d, m2) == 0);
    /* truncated */
    CHECK(sh("cp '%s' '%s/other/m1.pack.keep' && truncate -s -4096 '%s'", m1, d, m1) == 0);
    refused("truncated", model, extra, m1, "truncated");
    CHECK(sh("'%s' --verify '%s' %s > '%s' 2>&1", rp, m0, extra, info) == 1);
    CHECKF(file_contains(info, m1) && file_contains(info, "truncated"), "--verify of a truncated set (see %s)", info);
    CHECK(sh("cp '%s/other/m1.pack.keep' '%s'", d, m1) == 0);
    /* corrupted data in member 2: a checksum error during the pass names the member */
    long sz2 = file_size(m2);
    CHECK(sz2 > 8192);
    {
        size_t n = 0;
        uint8_t *b = (uint8_t *)test_read_file(m2, &n);
        CHECK(b);
        /* the first data chunk on member 2 starts at its data offset */
        uint64_t off;
        memcpy(&off, b + 80, 8);
        CHECK(off + 100 < n);
        b[off + 100] ^= 0x5a;
        FILE *f = fopen(m2, "wb");
        CHECK(f && fwrite(b, 1, n, f) == n && fclose(f) == 0);
        free(b);
    }
    CHECK(sh("'%s' --verify '%s' %s > '%s' 2>&1", rp, m0, extra, info) == 1);
    CHECKF(file_contains(info, "CORRUPT") && file_contains(info, m2), "--verify of a corrupt member (see %s)", info);
    char extra2[9200];
    snprintf(extra2, sizeof extra2, "%s --pin none", extra);
    refused("corrupt-member", model, extra2, m2, "checksum mismatch");
    CHECK(sh("cp '%s/other/m2.pack.keep' '%s'", d, m2) == 0);
    same_as_gguf("restored", model, extra2);

    /* Hostile member headers (checksums recomputed so the fields themselves are judged). */
    char via1[9000], extra1[9000];
    snprintf(via1, sizeof via1, "'%s'", m1);
    snprintf(extra1, sizeof extra1, "--stripe-path '%s/x%d' --stripe-path '%s/z%d'", d, z, d, z);
    hostile_member(m1, 76, 7, true, via1, extra1, "member index 7 out of range");
    hostile_member(m1, 76, 2, true, model, extra, "expected member 1");
    hostile_member(m1, 78, 2, true, model, extra, "header size");
    hostile_member(m1, 78, 200, true, model, extra, "striped set of 200 members");
    hostile_member(m1, 130, 'X', false, model, extra, "header checksum mismatch");
    hostile_member(m0, 76, 9, true, model, extra, "out of range");
    printf("hostile member headers: refused\n");

    /* repack's own refusals. */
    const char *bad[][2] = {
        {"--stripe '%s/q0.pack'", "2..16 files"},
        {"--stripe '%s/q0.pack,%s/q1.pack' --stripe-weights 1,2,3", "gives 3 weights"},
        {"--stripe '%s/q0.pack,%s/q1.pack' --stripe-weights 1,0", "positive numbers"},
        {"--stripe '%s/q0.pack,%s/q1.pack' --stripe-weights 1,x", "positive numbers"},
        {"--stripe '%s/q0.pack,%s/q0.pack'", "same file twice"},
        {"--stripe '%s/q0.pack,%s/o1/q0.pack'", "same file name"},
        {"--stripe-weights 1,2 '%s/q0.pack'", "without --stripe"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[4400], log[4400];
        snprintf(args, sizeof args, bad[i][0], d, d);
        snprintf(log, sizeof log, "%s/bad%zu.log", d, i);
        int rc = sh("'%s' '%s' %s --no-progress > '%s' 2>&1", rp, gguf, args, log);
        CHECKF(rc != 0 && rc < 128 && file_contains(log, bad[i][1]), "repack %s: exit %d, message lacks '%s' (see %s)",
               args, rc, bad[i][1], log);
    }
    char q0[4400];
    snprintf(q0, sizeof q0, "%s/q0.pack", d);
    CHECKF(file_size(q0) < 0, "a refused repack left a file");
    printf("repack --stripe refusals: clear\n");
    return 0;
}
