/* io-bench: sequential read throughput of a file or block device through the
 * project's read API (si_io), then of the stream scheduler alone (si_sched) walking a
 * model's extents with no compute.
 *
 *   io-bench [options] FILE|DEVICE
 *
 * Part 1 (raw): for every chunk size x queue depth x {O_DIRECT, buffered} x
 * {io_uring, pread}, read --max-bytes sequentially with `depth` reads of `chunk` bytes
 * in flight. pread is synchronous (si_io performs the read at submit), so its queue
 * depth changes nothing and it is measured at depth 1 only. Buffered runs drop the
 * file's page cache first (POSIX_FADV_DONTNEED); si_io itself reads buffered files
 * without read-ahead and drops each range it read, as the engine does. Each
 * measurement starts where the previous one stopped (wrapping), so no run re-reads
 * what the one before it just read. The first tenth of each measurement's bytes is
 * read but not timed (a throttle's initial burst; see raw_one).
 *
 * Part 2 (sched): when FILE is a Llama GGUF (or --model names one on the same
 * device), the extents the engine would stream (src/model/layout.c, a third of the
 * ring per extent) go through si_sched with every chunk size x queue depth, with the
 * engine's I/O defaults (io_uring when available, O_DIRECT when allowed); --max-bytes
 * of consecutive extents per measurement, or whole passes with --sched-passes.
 *
 * Then the best raw configuration is measured again over --confirm-bytes (default 8x
 * --max-bytes): that long run is the device bandwidth the summary reports (test
 * "confirm" in the CSV), since the best of many short runs is biased upwards.
 *
 * Output: a table on stdout, --csv FILE, --plot FILE.png (gnuplot, when installed),
 * and the best settings: the smallest chunk and depth within 5% of the best
 * scheduler (else raw io_uring O_DIRECT) throughput. 1 MB = 10^6 bytes.
 *
 * Several devices (io-bench [options] FILE1 FILE2 ...: a striped pack's members, one
 * per device): each file is read alone, then all of them together, each with its own
 * queue (chunk: --chunks' first value, default 1M; depth: --depths' first, default 8),
 * O_DIRECT when allowed, io_uring unless --backends pread; the table
 * gives each device's MB/s alone and together, and the sum against the sum alone
 * (what a striped pack can hope for). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../tools/progress.h"
#include <unistd.h>

#include "si_config.h"
#include "src/model/layout.h"
#include "streaminfer/gguf.h"
#include "streaminfer/io.h"
#include "streaminfer/model.h"
#include "streaminfer/plan.h"
#include "streaminfer/sched.h"

#define MAX_LIST 32
#define ALIGN 4096u

typedef struct result {
    char test[12];   /* raw | sched | alone | together */
    char backend[16];
    char mode[16];   /* direct | buffered | auto:direct ... */
    uint64_t chunk;
    unsigned depth;
    uint64_t bytes;
    double secs;
    double mb_s;
    char note[160];
} result;

static struct {
    const char *path, *model, *csv, *plot;
    uint64_t max_bytes, ring, confirm_bytes;
    uint64_t chunks[MAX_LIST];
    unsigned n_chunks;
    unsigned depths[MAX_LIST];
    unsigned n_depths;
    bool do_uring, do_pread, do_direct, do_buffered, do_raw, do_sched, compat;
    unsigned sched_passes;
    bool quiet;
    char **paths; /* several files: read alone, then together */
    int n_paths;
    bool chunks_set, depths_set;
} g;

static result *res;
static size_t n_res, cap_res;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: io-bench [options] FILE|DEVICE\n"
        "       io-bench [options] FILE1 FILE2 ...   several devices: each alone, then together\n"
        "Sequential read throughput through si_io (io_uring, pread; O_DIRECT, buffered),\n"
        "then the stream scheduler alone on a model's extents. With several files (one per\n"
        "device, e.g. a striped pack's members), each is read alone and then all at once,\n"
        "each with its own queue (chunk: --chunks' first, default 1M; depth: --depths' first,\n"
        "default 8; --backends pread for pread), and only that is measured.\n\n"
        "  --max-bytes SIZE     bytes read per measurement (default 128M; less when the file\n"
        "                       is smaller). At 25 MB/s, 32M takes 1.3 s per measurement\n"
        "  --confirm-bytes SIZE re-measure the best raw configuration with SIZE bytes; that\n"
        "                       figure is the device bandwidth (default 8 x --max-bytes; 0 = off);\n"
        "                       likewise the best scheduler configuration and the engine's defaults\n"
        "  --chunks LIST        chunk sizes (default 64K,128K,256K,512K,1M,2M,4M,8M)\n"
        "  --depths LIST        queue depths (default 1,2,4,8,16)\n"
        "  --backends LIST      uring,pread (default both)\n"
        "  --modes LIST         direct,buffered (default both)\n"
        "  --no-raw             skip the raw part\n"
        "  --model FILE.gguf    model whose extents the scheduler part streams (default:\n"
        "                       FILE when it is a GGUF); its reads come from FILE|DEVICE\n"
        "                       only when they are the same file\n"
        "  --no-sched           skip the scheduler part\n"
        "  --ring SIZE          scheduler ring (weight buffer) bytes (default 96M, the\n"
        "                       memory plan's largest)\n"
        "  --sched-passes N     stream N whole passes per scheduler measurement instead of\n"
        "                       --max-bytes of extents\n"
        "  --io-compat 5.10     io_uring features of Linux 5.10 only (the K230's kernel)\n"
        "  --csv FILE           all results as CSV\n"
        "  --plot FILE.png      throughput against chunk size (needs gnuplot)\n"
        "  -q, --quiet          no progress lines on stderr\n"
        "  -h, --help           this text\n");
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("io-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static uint64_t parse_size_or_die(const char *opt, const char *s)
{
    uint64_t v;
    if (si_parse_size(s, &v) != 0 || v == 0)
        die("%s: '%s' is not a size (e.g. 64K, 1M, 128M)", opt, s);
    return v;
}

static void parse_list(const char *opt, const char *s, bool sizes, void *out, unsigned *n)
{
    char *dup = strdup(s), *save = NULL;
    *n = 0;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_LIST)
            die("%s: at most %d values", opt, MAX_LIST);
        if (sizes) {
            uint64_t v = parse_size_or_die(opt, t);
            if (v % ALIGN)
                die("%s: %s is not a multiple of 4 KiB", opt, t);
            ((uint64_t *)out)[(*n)++] = v;
        } else {
            char *end;
            unsigned long v = strtoul(t, &end, 10);
            if (*end || v == 0 || v > 4096)
                die("%s: '%s' is not a queue depth in 1..4096", opt, t);
            ((unsigned *)out)[(*n)++] = (unsigned)v;
        }
    }
    free(dup);
    if (*n == 0)
        die("%s: empty list", opt);
}

static void parse_args(int argc, char **argv)
{
    enum { O_MAX = 256, O_CONFIRM, O_CHUNKS, O_DEPTHS, O_BACKENDS, O_MODES, O_NORAW, O_MODEL, O_NOSCHED, O_RING,
           O_PASSES, O_COMPAT, O_CSV, O_PLOT };
    static const struct option lo[] = {
        {"max-bytes", required_argument, 0, O_MAX}, {"chunks", required_argument, 0, O_CHUNKS},
        {"confirm-bytes", required_argument, 0, O_CONFIRM},
        {"depths", required_argument, 0, O_DEPTHS}, {"backends", required_argument, 0, O_BACKENDS},
        {"modes", required_argument, 0, O_MODES},   {"no-raw", no_argument, 0, O_NORAW},
        {"model", required_argument, 0, O_MODEL},   {"no-sched", no_argument, 0, O_NOSCHED},
        {"ring", required_argument, 0, O_RING},     {"sched-passes", required_argument, 0, O_PASSES},
        {"io-compat", required_argument, 0, O_COMPAT}, {"csv", required_argument, 0, O_CSV},
        {"plot", required_argument, 0, O_PLOT},     {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    g.max_bytes = 128u << 20;
    g.ring = 96u << 20;
    parse_list("--chunks", "64K,128K,256K,512K,1M,2M,4M,8M", true, g.chunks, &g.n_chunks);
    parse_list("--depths", "1,2,4,8,16", false, g.depths, &g.n_depths);
    g.do_uring = g.do_pread = g.do_direct = g.do_buffered = g.do_raw = g.do_sched = true;
    bool confirm_set = false;
    int c;
    while ((c = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
        switch (c) {
        case O_MAX: g.max_bytes = parse_size_or_die("--max-bytes", optarg); break;
        case O_CONFIRM:
            g.confirm_bytes = strcmp(optarg, "0") ? parse_size_or_die("--confirm-bytes", optarg) : 0;
            confirm_set = true;
            break;
        case O_CHUNKS:
            parse_list("--chunks", optarg, true, g.chunks, &g.n_chunks);
            g.chunks_set = true;
            break;
        case O_DEPTHS:
            parse_list("--depths", optarg, false, g.depths, &g.n_depths);
            g.depths_set = true;
            break;
        case O_BACKENDS:
            g.do_uring = strstr(optarg, "uring") != NULL;
            g.do_pread = strstr(optarg, "pread") != NULL;
            if (!g.do_uring && !g.do_pread)
                die("--backends: expected uring and/or pread, got '%s'", optarg);
            break;
        case O_MODES:
            g.do_direct = strstr(optarg, "direct") != NULL;
            g.do_buffered = strstr(optarg, "buffered") != NULL;
            if (!g.do_direct && !g.do_buffered)
                die("--modes: expected direct and/or buffered, got '%s'", optarg);
            break;
        case O_NORAW: g.do_raw = false; break;
        case O_MODEL: g.model = optarg; break;
        case O_NOSCHED: g.do_sched = false; break;
        case O_RING: g.ring = parse_size_or_die("--ring", optarg); break;
        case O_PASSES: {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v == 0 || v > 1000)
                die("--sched-passes: '%s' is not a count in 1..1000", optarg);
            g.sched_passes = (unsigned)v;
            break;
        }
        case O_COMPAT:
            if (strcmp(optarg, "5.10"))
                die("--io-compat: only 5.10 is known");
            g.compat = true;
            break;
        case O_CSV: g.csv = optarg; break;
        case O_PLOT: g.plot = optarg; break;
        case 'q': g.quiet = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (!confirm_set)
        g.confirm_bytes = 8 * g.max_bytes;
    if (optind >= argc) {
        usage(stderr);
        exit(2);
    }
    g.path = argv[optind];
    g.paths = argv + optind;
    g.n_paths = argc - optind;
    if (g.n_paths > SI_SCHED_MAX_FILES)
        die("at most %d files read together", SI_SCHED_MAX_FILES);
}

static result *add_result(void)
{
    if (n_res == cap_res) {
        cap_res = cap_res ? 2 * cap_res : 128;
        res = realloc(res, cap_res * sizeof *res);
        if (!res)
            die("out of memory");
    }
    result *r = &res[n_res++];
    memset(r, 0, sizeof *r);
    return r;
}

static const char *fmt_size(uint64_t b, char *buf, size_t n)
{
    if (b >= (1u << 20) && b % (1u << 20) == 0)
        snprintf(buf, n, "%" PRIu64 "M", b >> 20);
    else if (b >= 1024 && b % 1024 == 0)
        snprintf(buf, n, "%" PRIu64 "K", b >> 10);
    else
        snprintf(buf, n, "%" PRIu64, b);
    return buf;
}

static void print_row(FILE *f, const result *r)
{
    char c[32];
    fprintf(f, "%-5s %-8s %-14s %6s %5u %10.1f %8.2f %9.2f  %s\n", r->test, r->backend, r->mode,
            fmt_size(r->chunk, c, sizeof c), r->depth, (double)r->bytes / 1e6, r->secs, r->mb_s, r->note);
    fflush(f);
}

static void print_header(FILE *f)
{
    fprintf(f, "%-5s %-8s %-14s %6s %5s %10s %8s %9s  %s\n", "test", "backend", "mode", "chunk", "depth", "MB",
            "s", "MB/s", "note");
}

/* Drop the page cache of the whole file (or device). */
static void drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    fdatasync(fd);
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

/* ---- part 1: raw sequential reads ---- */

static uint64_t cursor; /* where the next measurement starts */
static si_progress bar;  /* the running measurement's status line on stderr (a terminal, not -q) */

/* "io_uring direct · chunk 1M · depth 8 · 412/1000 MB · 24.8 MB/s · 23 s left" */
static void show_measure(const char *backend, const char *mode, uint64_t chunk, unsigned depth, uint64_t done,
                         uint64_t total, double el)
{
    double mbps = el > 0 ? (double)done / 1e6 / el : 0;
    char left[32] = "";
    if (done > 0 && done < total)
        snprintf(left, sizeof left, " \u00b7 %.0f s left", el * (double)(total - done) / (double)done);
    si_progress_set(&bar, false, "%s %s \u00b7 chunk %" PRIu64 "K \u00b7 depth %u \u00b7 %.0f/%.0f MB \u00b7 %.1f MB/s%s",
                    backend, mode, chunk >> 10, depth, (double)done / 1e6, (double)total / 1e6, mbps, left);
}

static void raw_one(const char *test, uint64_t max_bytes, si_io_kind kind, bool direct, uint64_t chunk, unsigned depth,
                    uint8_t *buf)
{
    result *r = add_result();
    snprintf(r->test, sizeof r->test, "%s", test);
    snprintf(r->backend, sizeof r->backend, "%s", kind == SI_IO_URING ? "io_uring" : "pread");
    snprintf(r->mode, sizeof r->mode, "%s", direct ? "direct" : "buffered");
    r->chunk = chunk;
    r->depth = depth;
    if (!direct)
        drop_cache(g.path);
    si_io_opts o = {.kind = kind, .direct = direct ? SI_DIRECT_ON : SI_DIRECT_OFF, .queue_depth = depth,
                    .compat_5_10 = g.compat};
    si_io *io;
    si_error err = {0};
    if (si_io_open(&io, g.path, &o, &err) < 0) {
        snprintf(r->note, sizeof r->note, "skipped: %.140s", err.msg);
        n_res--; /* not a measurement */
        if (!g.quiet)
            fprintf(stderr, "io-bench: %s %s: %s\n", r->backend, r->mode, err.msg);
        return;
    }
    uint64_t size = si_io_file_size(io) / ALIGN * ALIGN;
    uint64_t total = max_bytes < size ? max_bytes / chunk * chunk : size / chunk * chunk;
    if (total == 0) {
        n_res--;
        si_io_close(io);
        return;
    }
    /* Start where the previous measurement stopped; wrap at the end. */
    uint64_t span = size / chunk * chunk;
    uint64_t start = cursor % span / chunk * chunk;
    uint64_t submitted = 0, done = 0;
    unsigned inflight = 0;
    /* The clock starts once the first full queue (depth x chunk, at least a tenth of
     * the bytes) has arrived: a throttled device (blk-throttle, the envelope) lets
     * about 100 ms worth through at once after an idle spell, and the reads queued
     * with it ride on that credit, which inflates short measurements; a real device's
     * first-read latency is not steady-state throughput either. When the queue holds
     * half the bytes or more there is no steady state to time (the reads all finish
     * together): those are timed from the start, and say so. */
    uint64_t warm = (uint64_t)depth * chunk;
    if (warm < total / 10 / chunk * chunk)
        warm = total / 10 / chunk * chunk;
    if (2 * (uint64_t)depth * chunk > total) {
        warm = 0;
        snprintf(r->note, sizeof r->note, "queue >= half the bytes: timed from the start");
    }
    uint64_t done0 = 0;
    double t0 = now_s();
    int rc = 0;
    while (done < total && rc == 0) {
        while (inflight < depth && submitted < total) {
            uint64_t off = (start + submitted) % span;
            unsigned slot = (unsigned)((submitted / chunk) % depth);
            rc = si_io_submit(io, off, chunk, buf + (uint64_t)slot * chunk, slot, &err);
            if (rc < 0)
                break;
            submitted += chunk;
            inflight++;
        }
        if (rc < 0)
            break;
        uint64_t tag;
        rc = si_io_reap(io, true, &tag, &err);
        if (rc < 0)
            break;
        if (rc == 1) {
            inflight--;
            done += chunk;
            rc = 0;
            if (warm && done == warm) {
                t0 = now_s();
                done0 = done;
            }
            show_measure(r->backend, r->mode, chunk, depth, done - done0, total - done0, now_s() - t0);
        }
    }
    double t1 = now_s();
    cursor = start + total;
    if (rc < 0) {
        snprintf(r->note, sizeof r->note, "error: %.150s", err.msg);
        while (si_io_inflight(io) > 0) {
            uint64_t tag;
            if (si_io_reap(io, true, &tag, &err) == 0)
                break;
        }
    }
    r->bytes = done - done0;
    r->secs = t1 - t0;
    r->mb_s = r->secs > 0 ? (double)r->bytes / 1e6 / r->secs : 0;
    if (!*r->note) {
        const char *note = si_io_note(io);
        snprintf(r->note, sizeof r->note, "%.150s", note ? note : "");
    }
    si_io_close(io);
    if (!direct)
        drop_cache(g.path);
    si_progress_end(&bar);
    print_row(stdout, r);
}

static void run_raw(void)
{
    uint64_t max_chunk = 0;
    unsigned max_depth = 0;
    for (unsigned i = 0; i < g.n_chunks; i++)
        max_chunk = g.chunks[i] > max_chunk ? g.chunks[i] : max_chunk;
    for (unsigned i = 0; i < g.n_depths; i++)
        max_depth = g.depths[i] > max_depth ? g.depths[i] : max_depth;
    uint8_t *buf = aligned_alloc(ALIGN, max_chunk * max_depth);
    if (!buf)
        die("out of memory for %u x %" PRIu64 " bytes of buffers", max_depth, max_chunk);
    memset(buf, 0, max_chunk * max_depth); /* fault in before timing */
    printf("== raw sequential reads of %s (%" PRIu64 " MB per measurement at most) ==\n", g.path,
           g.max_bytes / 1000000);
    print_header(stdout);
    for (int k = 0; k < 2; k++) {
        si_io_kind kind = k == 0 ? SI_IO_URING : SI_IO_PREAD;
        if ((kind == SI_IO_URING && !g.do_uring) || (kind == SI_IO_PREAD && !g.do_pread))
            continue;
        if (kind == SI_IO_URING && !SI_HAVE_URING) {
            fprintf(stderr, "io-bench: built without liburing: no io_uring measurements\n");
            continue;
        }
        for (int d = 0; d < 2; d++) {
            bool direct = d == 0;
            if ((direct && !g.do_direct) || (!direct && !g.do_buffered))
                continue;
            for (unsigned qi = 0; qi < g.n_depths; qi++) {
                /* pread is synchronous: depth changes nothing; measure depth 1 (or the smallest). */
                if (kind == SI_IO_PREAD && qi > 0)
                    break;
                for (unsigned ci = 0; ci < g.n_chunks; ci++)
                    raw_one("raw", g.max_bytes, kind, direct, g.chunks[ci], kind == SI_IO_PREAD ? 1 : g.depths[qi],
                            buf);
            }
        }
    }
    /* Each sweep measurement is short, so the best of many is partly luck (a
     * throttle's slice boundaries, a chunk more or less in the window). The device
     * bandwidth the summary reports is a long re-measurement of the best raw
     * configuration, with a full-length warm-up. */
    const result *b = NULL;
    for (size_t i = 0; i < n_res; i++)
        if (!strcmp(res[i].test, "raw") && (!b || res[i].mb_s > b->mb_s))
            b = &res[i];
    if (b && g.confirm_bytes) {
        si_io_kind kind = strcmp(b->backend, "io_uring") ? SI_IO_PREAD : SI_IO_URING;
        bool direct = !strcmp(b->mode, "direct");
        uint64_t chunk = b->chunk;
        unsigned depth = b->depth;
        printf("-- confirming the best raw configuration with %" PRIu64 " MB --\n", g.confirm_bytes / 1000000);
        raw_one("confirm", g.confirm_bytes, kind, direct, chunk, depth, buf);
    }
    free(buf);
}

/* ---- part 2: the scheduler alone ---- */

static bool is_gguf(const char *path)
{
    FILE *f = fopen(path, "rb");
    char m[4] = {0};
    bool ok = f && fread(m, 1, 4, f) == 4 && !memcmp(m, "GGUF", 4);
    if (f)
        fclose(f);
    return ok;
}

static si_llama_layout lay;
static size_t ext_cursor;

/* chunk or depth 0: the engine's default (read back from the scheduler and si_io). */
static void sched_one(const char *test, uint64_t max_bytes, uint64_t chunk, unsigned depth)
{
    result *r = add_result();
    snprintf(r->test, sizeof r->test, "%s", test);
    r->chunk = chunk;
    r->depth = depth;
    si_io_opts o = {.kind = SI_IO_AUTO, .direct = SI_DIRECT_AUTO, .queue_depth = depth, .compat_5_10 = g.compat};
    si_sched *s;
    si_error err = {0};
    if (si_sched_open(&s, g.path, &o, &err) < 0)
        die("%s", err.msg);
    si_sched_io inf;
    si_sched_io_info(s, &inf);
    /* The extents of this measurement: whole passes, or --max-bytes of consecutive
     * extents starting where the last measurement stopped. */
    const si_extent *ext = lay.ext;
    size_t n = lay.n_ext;
    unsigned passes = g.sched_passes ? g.sched_passes : 1;
    if (!g.sched_passes) {
        size_t first = ext_cursor % lay.n_ext, k = first;
        uint64_t sum = 0;
        do {
            sum += lay.ext[k].size;
            k++;
        } while (k < lay.n_ext && sum < max_bytes);
        ext = lay.ext + first;
        n = k - first;
        ext_cursor = k % lay.n_ext;
    }
    si_sched_opts so = {.ring_bytes = g.ring, .chunk_bytes = chunk};
    if (si_sched_set_pass(s, ext, n, &so, &err) < 0)
        die("scheduler: %s", err.msg);
    double t0 = now_s();
    int rc = 0;
    for (unsigned p = 0; p < passes && rc == 0; p++) {
        rc = si_sched_begin_pass(s, p + 1 < passes, &err);
        for (size_t i = 0; i < n && rc == 0; i++) {
            const uint8_t *data;
            rc = si_sched_acquire(s, i, &data, &err);
            if (rc == 0)
                rc = si_sched_release(s, i, &err);
            if (rc == 0) {
                si_sched_stats ps;
                si_sched_get_stats(s, &ps);
                char what[48];
                snprintf(what, sizeof what, "scheduler \u00b7 pass %u/%u", p + 1, passes);
                show_measure(what, inf.direct ? "direct" : "buffered", ps.chunk_bytes, inf.queue_depth,
                             ps.bytes_read, ps.bytes_per_pass * passes, now_s() - t0);
            }
        }
        if (rc == 0)
            rc = si_sched_end_pass(s, &err);
    }
    double t1 = now_s();
    if (rc < 0)
        die("scheduler: %s", err.msg);
    si_sched_stats st;
    si_sched_get_stats(s, &st);
    r->chunk = st.chunk_bytes;
    r->depth = inf.queue_depth;
    snprintf(r->backend, sizeof r->backend, "%s", inf.backend);
    snprintf(r->mode, sizeof r->mode, "%s", inf.direct ? "direct" : "buffered");
    r->bytes = st.bytes_read;
    r->secs = t1 - t0;
    r->mb_s = r->secs > 0 ? (double)st.bytes_read / 1e6 / r->secs : 0;
    snprintf(r->note, sizeof r->note, "%zu extents, %u pass%s, ring %" PRIu64 "M, %" PRIu64 " reads, wait %.2f s",
             n, passes, passes > 1 ? "es" : "", st.ring_bytes >> 20, st.reads, st.io_wait_s);
    si_sched_free(s);
    si_progress_end(&bar);
    print_row(stdout, r);
}

static void run_sched(void)
{
    const char *model = g.model ? g.model : g.path;
    if (!is_gguf(model)) {
        if (g.model)
            die("--model %s is not a GGUF file", g.model);
        printf("\n(no scheduler part: %s is not a GGUF model; give --model)\n", g.path);
        return;
    }
    si_gguf *gf;
    si_error err = {0};
    if (si_gguf_open(&gf, model, &err) < 0)
        die("%s", err.msg);
    si_llama_desc d;
    if (si_llama_desc_from_gguf(&d, gf, &err) < 0)
        die("%s", err.msg);
    /* As the engine does: a third of the ring per extent. */
    uint64_t max_extent = g.ring / 3 / ALIGN * ALIGN;
    if (si_llama_layout_build(&lay, &d, max_extent, ALIGN, NULL, &err) < 0)
        die("%s", err.msg);
    uint64_t pass_bytes = 0;
    for (size_t i = 0; i < lay.n_ext; i++)
        pass_bytes += lay.ext[i].size;
    if (g.model && strcmp(g.model, g.path))
        printf("\n(note: extents of %s, read from %s)\n", g.model, g.path);
    printf("\n== stream scheduler alone, no compute: %zu extents, %.1f MB per pass, ring %" PRIu64
           " MiB, %s ==\n",
           lay.n_ext, (double)pass_bytes / 1e6, g.ring >> 20,
           g.sched_passes ? "whole passes" : "--max-bytes of extents per measurement");
    print_header(stdout);
    for (unsigned qi = 0; qi < g.n_depths; qi++)
        for (unsigned ci = 0; ci < g.n_chunks; ci++)
            sched_one("sched", g.max_bytes, g.chunks[ci], g.depths[qi]);
    /* Whether the engine's defaults are what this device wants, from two long runs
     * (the short ones differ by a few percent from noise alone): the best
     * configuration of the sweep, and the defaults. */
    const result *b = NULL;
    for (size_t i = 0; i < n_res; i++)
        if (!strcmp(res[i].test, "sched") && (!b || res[i].mb_s > b->mb_s))
            b = &res[i];
    if (b && g.confirm_bytes) {
        uint64_t chunk = b->chunk;
        unsigned depth = b->depth;
        printf("-- the best scheduler configuration and the engine's defaults again, %" PRIu64 " MB each --\n",
               g.confirm_bytes / 1000000);
        sched_one("sconf", g.confirm_bytes, chunk, depth);
        sched_one("sconf", g.confirm_bytes, 0, 0);
        snprintf(res[n_res - 1].note + strlen(res[n_res - 1].note),
                 sizeof res[0].note - strlen(res[n_res - 1].note), " (engine defaults)");
    }
    si_llama_layout_free(&lay);
    si_llama_desc_free(&d);
    si_gguf_close(gf);
}

/* ---- summary, CSV, plot ---- */

/* Best throughput among results matching test/backend/mode (NULL: any); with
 * tolerance, the smallest chunk x depth within that fraction of the best. */
static const result *best(const char *test, const char *backend, const char *mode, double tolerance)
{
    const result *b = NULL;
    for (size_t i = 0; i < n_res; i++) {
        const result *r = &res[i];
        if (strcmp(r->test, test) || (backend && strcmp(r->backend, backend)) || (mode && strcmp(r->mode, mode)))
            continue;
        if (!b || r->mb_s > b->mb_s)
            b = r;
    }
    if (!b || tolerance <= 0)
        return b;
    const result *s = b;
    for (size_t i = 0; i < n_res; i++) {
        const result *r = &res[i];
        if (strcmp(r->test, test) || (backend && strcmp(r->backend, backend)) || (mode && strcmp(r->mode, mode)))
            continue;
        if (r->mb_s >= b->mb_s * (1 - tolerance) &&
            (r->chunk * r->depth < s->chunk * s->depth ||
             (r->chunk * r->depth == s->chunk * s->depth && r->depth < s->depth)))
            s = r;
    }
    return s;
}

static void print_best(const char *label, const result *r)
{
    char c[32];
    if (r)
        printf("%-34s %8.2f MB/s  (%s %s, chunk %s, depth %u)\n", label, r->mb_s, r->backend, r->mode,
               fmt_size(r->chunk, c, sizeof c), r->depth);
}

static void summary(void)
{
    printf("\n== summary ==\n");
    const result *raw = best("raw", NULL, NULL, 0);
    const result *conf = best("confirm", NULL, NULL, 0);
    print_best(conf ? "best raw of the sweep" : "best raw (device bandwidth)", raw);
    if (conf) {
        print_best("device bandwidth (best, long run)", conf);
        raw = conf;
    }
    print_best("best raw io_uring O_DIRECT", best("raw", "io_uring", "direct", 0));
    print_best("best raw io_uring buffered", best("raw", "io_uring", "buffered", 0));
    print_best("best raw pread O_DIRECT", best("raw", "pread", "direct", 0));
    print_best("best raw pread buffered", best("raw", "pread", "buffered", 0));
    const result *sb = best("sched", NULL, NULL, 0);
    print_best("best scheduler", sb);
    const result *rec = sb ? best("sched", NULL, NULL, 0.05) : best("raw", "io_uring", "direct", 0.05);
    if (rec) {
        char c[32];
        printf("recommended defaults               chunk %s, queue depth %u (smallest chunk x depth within 5%% "
               "of the best %s: %.2f MB/s)\n",
               fmt_size(rec->chunk, c, sizeof c), rec->depth, sb ? "scheduler run" : "raw io_uring O_DIRECT run",
               rec->mb_s);
    }
    if (sb && raw)
        printf("scheduler / device bandwidth       %.1f%%\n", 100.0 * sb->mb_s / raw->mb_s);
    const result *sc_best = NULL, *sc_def = NULL;
    for (size_t i = 0; i < n_res; i++)
        if (!strcmp(res[i].test, "sconf")) {
            if (strstr(res[i].note, "(engine defaults)"))
                sc_def = &res[i];
            else
                sc_best = &res[i];
        }
    if (sc_best && sc_def) {
        char c1[32], c2[32];
        printf("engine defaults, long run          %8.2f MB/s  (chunk %s, depth %u) = %.1f%% of the best sweep "
               "configuration's long run (chunk %s, depth %u: %.2f MB/s)\n",
               sc_def->mb_s, fmt_size(sc_def->chunk, c1, sizeof c1), sc_def->depth, 100.0 * sc_def->mb_s / sc_best->mb_s,
               fmt_size(sc_best->chunk, c2, sizeof c2), sc_best->depth, sc_best->mb_s);
    }
}

static void write_csv(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("%s: %s", path, strerror(errno));
    fprintf(f, "test,backend,mode,chunk_bytes,queue_depth,bytes,seconds,mb_s,note\n");
    for (size_t i = 0; i < n_res; i++) {
        const result *r = &res[i];
        char note[sizeof r->note];
        snprintf(note, sizeof note, "%s", r->note);
        for (char *p = note; *p; p++)
            if (*p == '"')
                *p = '\'';
        fprintf(f, "%s,%s,%s,%" PRIu64 ",%u,%" PRIu64 ",%.6f,%.3f,\"%s\"\n", r->test, r->backend, r->mode, r->chunk,
                r->depth, r->bytes, r->secs, r->mb_s, note);
    }
    if (fclose(f) != 0)
        die("%s: %s", path, strerror(errno));
}

static void plot(const char *png)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "io-bench: gnuplot not installed (apt-get install gnuplot-nox): no plot\n");
        return;
    }
    FILE *p = popen("gnuplot", "w");
    if (!p) {
        fprintf(stderr, "io-bench: cannot run gnuplot\n");
        return;
    }
    /* One series per test/backend/mode/depth, in order of appearance. */
    char keys[256][64];
    int nk = 0;
    for (size_t i = 0; i < n_res && nk < 256; i++) {
        char k[64];
        snprintf(k, sizeof k, "%s %s %s qd%u", res[i].test, res[i].backend, res[i].mode, res[i].depth);
        int j;
        for (j = 0; j < nk && strcmp(keys[j], k); j++)
            ;
        if (j == nk)
            snprintf(keys[nk++], sizeof keys[0], "%s", k);
    }
    fprintf(p, "set terminal pngcairo size 1400,900 noenhanced\nset output '%s'\n", png);
    fprintf(p, "set title 'io-bench %s: sequential read throughput'\n", g.path);
    fprintf(p, "set xlabel 'chunk size (KiB)'\nset ylabel 'MB/s'\nset logscale x 2\nset grid\n");
    fprintf(p, "set key outside right top\nset yrange [0:*]\n");
    fprintf(p, "plot ");
    for (int j = 0; j < nk; j++)
        fprintf(p, "%s'-' using 1:2 with linespoints %s title '%s'", j ? ", " : "",
                !strncmp(keys[j], "sched", 5) ? "lw 2 dt 1" : strstr(keys[j], "buffered") ? "dt 2" : "dt 1",
                keys[j]);
    fprintf(p, "\n");
    for (int j = 0; j < nk; j++) {
        for (size_t i = 0; i < n_res; i++) {
            char k[64];
            snprintf(k, sizeof k, "%s %s %s qd%u", res[i].test, res[i].backend, res[i].mode, res[i].depth);
            if (!strcmp(k, keys[j]))
                fprintf(p, "%g %g\n", (double)res[i].chunk / 1024.0, res[i].mb_s);
        }
        fprintf(p, "e\n");
    }
    int st = pclose(p);
    if (st != 0)
        fprintf(stderr, "io-bench: gnuplot failed (status %d); no plot\n", st);
    else if (!g.quiet)
        fprintf(stderr, "io-bench: wrote %s\n", png);
}

/* ---- several devices: each alone, then all together ---- */

/* Read max_bytes (or the file's size) of each of files[0..n) at once, each with depth
 * reads of chunk bytes in flight on its own si_io; mb_s[i]: file i's bytes over the
 * time until its last read completed. */
static void multi_run(char **files, int n, uint64_t chunk, unsigned depth, double *mb_s, uint64_t *bytes,
                      double *secs)
{
    si_io *io[SI_SCHED_MAX_FILES];
    uint8_t *buf[SI_SCHED_MAX_FILES];
    uint64_t next[SI_SCHED_MAX_FILES], limit[SI_SCHED_MAX_FILES], got[SI_SCHED_MAX_FILES];
    double t_end[SI_SCHED_MAX_FILES];
    unsigned free_n[SI_SCHED_MAX_FILES], free_slot[SI_SCHED_MAX_FILES][64];
    size_t len_of[SI_SCHED_MAX_FILES][64];
    if (depth > 64)
        die("several files: a queue depth of at most 64");
    si_io_opts o = {.kind = g.do_uring ? SI_IO_AUTO : SI_IO_PREAD, .direct = SI_DIRECT_AUTO, .queue_depth = depth,
                    .compat_5_10 = g.compat};
    for (int i = 0; i < n; i++) {
        si_error err = {0};
        drop_cache(files[i]);
        if (si_io_open(&io[i], files[i], &o, &err) < 0)
            die("%s", err.msg);
        limit[i] = si_io_file_size(io[i]) / ALIGN * ALIGN;
        if (limit[i] > g.max_bytes)
            limit[i] = g.max_bytes / ALIGN * ALIGN;
        if (limit[i] == 0)
            die("%s: smaller than %u bytes", files[i], ALIGN);
        if (posix_memalign((void **)&buf[i], ALIGN, (size_t)chunk * depth) != 0)
            die("out of memory");
        next[i] = got[i] = 0;
        t_end[i] = 0;
        free_n[i] = depth;
        for (unsigned k = 0; k < depth; k++)
            free_slot[i][k] = k;
    }
    double t0 = now_s();
    for (;;) {
        bool busy = false, reaped = false;
        for (int i = 0; i < n; i++) {
            si_error err = {0};
            while (free_n[i] > 0 && next[i] < limit[i]) {
                unsigned k = free_slot[i][--free_n[i]];
                size_t len = (size_t)(limit[i] - next[i] < chunk ? limit[i] - next[i] : chunk);
                len_of[i][k] = len;
                if (si_io_submit(io[i], next[i], len, buf[i] + (size_t)k * chunk, k, &err) < 0)
                    die("%s", err.msg);
                next[i] += len;
            }
            uint64_t tag;
            int rc;
            while ((rc = si_io_reap(io[i], false, &tag, &err)) > 0) {
                got[i] += len_of[i][tag];
                free_slot[i][free_n[i]++] = (unsigned)tag;
                reaped = true;
            }
            if (rc < 0)
                die("%s", err.msg);
            if (got[i] == limit[i] && t_end[i] == 0)
                t_end[i] = now_s();
            busy = busy || si_io_inflight(io[i]) > 0 || next[i] < limit[i];
        }
        if (!busy)
            break;
        if (!reaped) { /* nothing finished: wait on the file with the most reads in flight */
            int w = 0;
            for (int i = 1; i < n; i++)
                if (si_io_inflight(io[i]) > si_io_inflight(io[w]))
                    w = i;
            uint64_t tag;
            si_error err = {0};
            int rc = si_io_inflight(io[w]) ? si_io_reap(io[w], true, &tag, &err) : 0;
            if (rc < 0)
                die("%s", err.msg);
            if (rc > 0) {
                got[w] += len_of[w][tag];
                free_slot[w][free_n[w]++] = (unsigned)tag;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        bytes[i] = got[i];
        secs[i] = t_end[i] - t0 > 0 ? t_end[i] - t0 : 1e-9;
        mb_s[i] = (double)got[i] / 1e6 / secs[i];
        si_io_close(io[i]);
        free(buf[i]);
    }
}

static void run_multi(void)
{
    uint64_t chunk = g.chunks_set ? g.chunks[0] : 1u << 20;
    unsigned depth = g.depths_set ? g.depths[0] : 8;
    double alone[SI_SCHED_MAX_FILES], together[SI_SCHED_MAX_FILES], sum_alone = 0, sum_together = 0;
    double secs_a[SI_SCHED_MAX_FILES], secs_t[SI_SCHED_MAX_FILES];
    uint64_t bytes_a[SI_SCHED_MAX_FILES], bytes_t[SI_SCHED_MAX_FILES];
    printf("%d devices, chunk %" PRIu64 " KiB, depth %u per device, %s, up to %" PRIu64 " MiB each\n", g.n_paths,
           chunk >> 10, depth, g.do_uring ? "io_uring (else pread)" : "pread", g.max_bytes >> 20);
    for (int i = 0; i < g.n_paths; i++) {
        multi_run(&g.paths[i], 1, chunk, depth, &alone[i], &bytes_a[i], &secs_a[i]);
        sum_alone += alone[i];
    }
    multi_run(g.paths, g.n_paths, chunk, depth, together, bytes_t, secs_t);
    printf("%-40s %12s %12s\n", "device (file)", "alone MB/s", "together");
    for (int i = 0; i < g.n_paths; i++) {
        printf("%-40s %12.1f %12.1f\n", g.paths[i], alone[i], together[i]);
        sum_together += together[i];
        result *r = add_result();
        snprintf(r->test, sizeof r->test, "alone");
        snprintf(r->backend, sizeof r->backend, "%s", g.do_uring ? "auto" : "pread");
        snprintf(r->mode, sizeof r->mode, "auto");
        r->chunk = chunk;
        r->depth = depth;
        r->mb_s = alone[i];
        r->bytes = bytes_a[i];
        r->secs = secs_a[i];
        snprintf(r->note, sizeof r->note, "%s", g.paths[i]);
        r = add_result();
        snprintf(r->test, sizeof r->test, "together");
        snprintf(r->backend, sizeof r->backend, "%s", g.do_uring ? "auto" : "pread");
        snprintf(r->mode, sizeof r->mode, "auto");
        r->chunk = chunk;
        r->depth = depth;
        r->mb_s = together[i];
        r->bytes = bytes_t[i];
        r->secs = secs_t[i];
        snprintf(r->note, sizeof r->note, "%s", g.paths[i]);
    }
    printf("%-40s %12.1f %12.1f (%.0f%% of the sum alone)\n", "sum", sum_alone, sum_together,
           sum_alone > 0 ? 100.0 * sum_together / sum_alone : 0.0);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    if (g.n_paths > 1) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        run_multi();
        if (g.csv)
            write_csv(g.csv);
        free(res);
        return 0;
    }
    si_progress_init(&bar, g.quiet);
    struct stat st;
    if (stat(g.path, &st) != 0)
        die("%s: %s", g.path, strerror(errno));
    setvbuf(stdout, NULL, _IOLBF, 0);
    double t0 = now_s();
    if (g.do_raw)
        run_raw();
    if (g.do_sched)
        run_sched();
    summary();
    printf("total time %.1f s\n", now_s() - t0);
    if (g.csv)
        write_csv(g.csv);
    if (g.plot)
        plot(g.plot);
    free(res);
    return 0;
}
