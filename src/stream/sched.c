/* The stream scheduler: a FIFO ring of aligned buffers fed by chunked reads.
 *
 * Extents are numbered by a running sequence number seq = pass * n + i, so the
 * read cursor can run on into the next pass while the model is still on this one.
 * Each extent occupies one contiguous region of the ring for the time between its
 * allocation (when its first read is issued) and its release; regions are freed in
 * allocation order, so the ring is a queue of regions and never fragments.
 *
 * A pinned extent takes no ring space: its slot points at a buffer of its own. The
 * first pass reads it there like any other extent (in pass order, with the same
 * prefetch); once acquired (verified, decoded) it is resident, and later passes give
 * it a slot with nothing to read. Between passes an extent can be unpinned (its
 * buffer is freed and it streams through the ring again: every extent fits the ring)
 * or pinned again (read into a new buffer by the next pass). */
#include "streaminfer/sched.h"

#include "streaminfer/clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streaminfer/pack.h"

#define MAX_REREADS 3 /* an SD card may return a bad block once; three times is a bad file */

typedef struct slot {
    uint64_t ring_off;  /* region start in the ring */
    uint64_t ring_len;  /* region length (aligned); 0 for a pinned extent */
    uint8_t *buf;       /* region start: in the ring, or the pinned extent's buffer */
    uint64_t read_off;  /* aligned file offset the region starts at */
    uint64_t async_len; /* bytes read asynchronously from read_off */
    uint32_t n_chunks, submitted, done;
    uint8_t *image;     /* the decoded image (frames with image_size) */
    bool ready;         /* frames verified and decoded */
} slot;

#define MAX_FILES SI_SCHED_MAX_FILES

struct si_sched {
    si_io *io;                /* ios[0] */
    si_io *ios[MAX_FILES];    /* one per file (member of a striped pack), each its own queue */
    uint32_t n_io;
    uint64_t fsize[MAX_FILES];
    uint64_t m_bytes[MAX_FILES], m_reads[MAX_FILES];
    double m_busy[MAX_FILES], m_since[MAX_FILES]; /* time with reads in flight; since when */
    double m_busy_pass[MAX_FILES];  /* of m_busy, the part inside passes (begin to end) */
    double m_busy_begin[MAX_FILES]; /* busy_now at the current pass's begin */
    si_extent *ext;
    slot *slots; /* slot for seq is slots[seq % n] */
    size_t n;
    uint8_t *ring;
    uint64_t cap, align, chunk, file_size; /* file_size: the largest file's */

    uint64_t live_first; /* oldest seq still holding ring space */
    uint64_t alloc_next; /* next seq to get ring space */
    uint64_t sub_seq[MAX_FILES]; /* per file: the oldest seq of its that may have chunks to submit */
    uint64_t limit;      /* seqs below this may be read */
    uint64_t head;       /* ring position of the next region */
    uint64_t used;       /* bytes held by live regions */
    uint64_t pass;       /* current (or next) pass */
    bool in_pass;
    si_sched_stats st;
    uint8_t *scratch; /* decompressed field-split frame before its fields are joined */
    uint8_t **pin_buf; /* [n] a pinned extent's buffer (NULL when not pinned) */
    bool (*should_stop)(void *ctx); /* asked before each wait in acquire */
    void *should_stop_ctx;
    bool *pin_loaded;  /* [n] resident and verified */
};

static uint64_t align_down(uint64_t x, uint64_t a) { return x / a * a; }
static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* The aligned file range an extent is read as, clipped at the end of the file. */
static void extent_range(const si_sched *s, const si_extent *e, uint64_t *r0, uint64_t *r1)
{
    *r0 = align_down(e->offset, s->align);
    *r1 = align_up(e->offset + e->size, s->align);
    if (*r1 > s->fsize[e->member])
        *r1 = s->fsize[e->member];
}

static slot *slot_of(si_sched *s, uint64_t seq) { return &s->slots[seq % s->n]; }

static uint64_t io_alignment(const si_io *io)
{
    uint64_t a = si_io_alignment(io);
    return a < 4096 ? 4096 : a; /* always O_DIRECT-safe, so a fallback changes nothing here */
}

int si_sched_open_files(si_sched **out, const char *const *paths, uint32_t n, const si_io_opts *io_opts,
                        si_error *err)
{
    *out = NULL;
    SI_CHECK(n == 0 || n > MAX_FILES, err, SI_EINVAL, "stream scheduler: %u files (1..%u)", n, MAX_FILES);
    si_sched *s = calloc(1, sizeof *s);
    SI_CHECK(!s, err, SI_ENOMEM, "out of memory for the stream scheduler");
    /* Several members: with pread each reads on a thread of its own, so every device
     * is busy at once (io_uring needs none: its reads are in flight already). */
    si_io_opts o = io_opts ? *io_opts : (si_io_opts){0};
    if (n > 1)
        o.reader_thread = true;
    for (uint32_t i = 0; i < n; i++) {
        int rc = si_io_open(&s->ios[i], paths[i], &o, err);
        if (rc < 0) {
            si_sched_free(s);
            return rc;
        }
        s->n_io = i + 1;
        uint64_t a = io_alignment(s->ios[i]);
        s->align = a > s->align ? a : s->align;
        s->fsize[i] = si_io_file_size(s->ios[i]);
        s->file_size = s->fsize[i] > s->file_size ? s->fsize[i] : s->file_size;
    }
    s->io = s->ios[0];
    *out = s;
    return SI_OK;
}

int si_sched_open(si_sched **out, const char *path, const si_io_opts *io_opts, si_error *err)
{
    return si_sched_open_files(out, &path, 1, io_opts, err);
}

uint32_t si_sched_n_files(const si_sched *s) { return s->n_io; }

/* File i's busy time so far, the reads in flight now included. (Busy runs from a read
 * submitted to an idle file until the reap that leaves it idle again; completions are
 * reaped at every wait and poll, so a compute-bound pass can add up to one poll
 * interval.) */
static double busy_now(const si_sched *s, uint32_t i)
{
    return s->m_busy[i] + (si_io_inflight(s->ios[i]) > 0 ? si_now_s() - s->m_since[i] : 0);
}

void si_sched_get_file_stats(const si_sched *s, uint32_t i, si_sched_file_stats *fs)
{
    memset(fs, 0, sizeof *fs);
    if (i >= s->n_io)
        return;
    fs->path = si_io_path(s->ios[i]);
    fs->bytes_read = s->m_bytes[i];
    fs->reads = s->m_reads[i];
    fs->busy_s = busy_now(s, i);
    fs->busy_pass_s = s->m_busy_pass[i] + (s->in_pass ? fs->busy_s - s->m_busy_begin[i] : 0);
    fs->io_bytes_read = si_io_bytes_read(s->ios[i]);
}

static uint64_t io_bytes_all(const si_sched *s)
{
    uint64_t b = 0;
    for (uint32_t i = 0; i < s->n_io; i++)
        b += si_io_bytes_read(s->ios[i]);
    return b;
}

uint64_t si_sched_alignment(const si_sched *s) { return s->align; }
uint64_t si_sched_file_size(const si_sched *s) { return s->file_size; }
const char *si_sched_path(const si_sched *s) { return si_io_path(s->io); }

void si_sched_io_info(const si_sched *s, si_sched_io *info)
{
    info->backend = si_io_backend(s->io);
    info->direct = si_io_direct_active(s->io);
    info->note = si_io_note(s->io);
    info->queue_depth = si_io_queue_depth(s->io);
    info->reader_threads = si_io_reader_thread(s->io);
}

int si_sched_read(si_sched *s, uint64_t offset, size_t len, void *dst, si_error *err)
{
    uint64_t before = si_io_bytes_read(s->io);
    int rc = si_io_read(s->io, offset, len, dst, err);
    s->st.on_demand_bytes += si_io_bytes_read(s->io) - before; /* under O_DIRECT: whole blocks */
    return rc;
}

int si_sched_read_pack_rows(si_sched *s, struct si_pack *pack, const struct si_pack_tensor *t, uint64_t row,
                            uint64_t n, void *dst, si_error *err)
{
    SI_CHECK(si_pack_n_members(pack) != s->n_io, err, SI_EINVAL,
             "stream scheduler: the pack has %u member files, the scheduler %u", si_pack_n_members(pack), s->n_io);
    uint64_t before = io_bytes_all(s);
    int rc = si_pack_read_rows(pack, s->ios, t, row, n, dst, err);
    s->st.on_demand_bytes += io_bytes_all(s) - before;
    return rc;
}

void si_sched_extent_cost(const si_extent *e, uint64_t align, uint64_t file_size, uint64_t *read_bytes,
                          uint64_t *held_bytes)
{
    uint64_t r0 = align_down(e->offset, align), r1 = align_up(e->offset + e->size, align);
    if (r1 > file_size)
        r1 = file_size;
    *read_bytes = r1 - r0;
    *held_bytes = align_up(r1 - r0, align) + align_up(e->image_size, align);
}

/* Undo si_sched_set_pass: the scheduler is as si_sched_open left it. */
static void drop_pass(si_sched *s)
{
    free(s->ring);
    for (size_t i = 0; s->pin_buf && i < s->n; i++)
        free(s->pin_buf[i]);
    free(s->pin_buf);
    free(s->pin_loaded);
    free(s->scratch);
    free(s->slots);
    free(s->ext);
    s->ring = s->scratch = NULL;
    s->pin_buf = NULL;
    s->pin_loaded = NULL;
    s->slots = NULL;
    s->ext = NULL;
    s->n = 0;
}

int si_sched_set_pass(si_sched *s, const si_extent *ext, size_t n_ext, const si_sched_opts *opts, si_error *err)
{
    SI_CHECK(n_ext == 0, err, SI_EINVAL, "stream scheduler: no extents to read");
    SI_CHECK(s->ext != NULL, err, SI_EINVAL, "stream scheduler: the pass is already set");
    s->st.bytes_per_pass = s->st.bytes_per_pass_unpinned = s->st.pinned_bytes = s->st.pinned_extents = 0;
    s->n = n_ext;
    s->chunk = align_up(opts->chunk_bytes ? opts->chunk_bytes : (1u << 20), s->align);
    s->cap = align_down(opts->ring_bytes, s->align);
    s->ext = malloc(n_ext * sizeof *ext);
    s->slots = calloc(n_ext, sizeof *s->slots);
    s->pin_buf = calloc(n_ext, sizeof *s->pin_buf);
    s->pin_loaded = calloc(n_ext, sizeof *s->pin_loaded);
    if (!s->ext || !s->slots || !s->pin_buf || !s->pin_loaded) {
        drop_pass(s);
        return si_errorf(err, SI_ENOMEM, "out of memory for %zu extents", n_ext);
    }
    memcpy(s->ext, ext, n_ext * sizeof *ext);
    for (size_t i = 0; i < n_ext; i++) {
        const si_extent *e = &ext[i];
        if (e->member >= s->n_io) {
            drop_pass(s);
            return si_errorf(err, SI_EINVAL, "stream scheduler: %s: file %u of %u", e->label, e->member, s->n_io);
        }
        if (e->size == 0 || e->offset + e->size > s->fsize[e->member] || e->offset + e->size < e->offset) {
            drop_pass(s);
            return si_errorf(err, SI_EFORMAT, "%s: %s: bytes [%" PRIu64 ", +%" PRIu64 ") lie outside the file",
                             si_io_path(s->ios[e->member]), e->label, e->offset, e->size);
        }
        for (uint32_t k = 0; k < e->n_frames; k++) {
            const si_frame *f = &e->frames[k];
            if (f->offset < e->offset || f->stored > e->size || f->offset - e->offset > e->size - f->stored ||
                (e->image_size && (f->raw > e->image_size || f->image_off > e->image_size - f->raw)) ||
                (!e->image_size && f->codec != 0)) {
                drop_pass(s);
                return si_errorf(err, SI_EINVAL, "stream scheduler: %s: frame %u lies outside the extent",
                                 e->label, k);
            }
        }
        uint64_t r0, r1;
        extent_range(s, e, &r0, &r1);
        uint64_t need = align_up(r1 - r0, s->align) + align_up(e->image_size, s->align);
        if (need > s->cap) {
            uint64_t cap = s->cap;
            drop_pass(s);
            return si_errorf(err, SI_EBUDGET,
                             "weight buffer of %" PRIu64 " bytes cannot hold %s (%" PRIu64 " bytes)", cap,
                             e->label, need);
        }
        s->st.bytes_per_pass_unpinned += r1 - r0;
        s->st.bytes_per_pass += r1 - r0;
        s->ext[i].pinned = false; /* until its buffer exists (below) */
    }
    uint64_t scratch = 0;
    for (size_t i = 0; i < n_ext; i++)
        for (uint32_t k = 0; k < ext[i].n_frames; k++)
            if (ext[i].frames[k].codec == SI_PACK_CODEC_ZSTD_FIELDS && ext[i].frames[k].raw > scratch)
                scratch = ext[i].frames[k].raw;
    if (scratch && !(s->scratch = malloc((size_t)scratch))) {
        drop_pass(s);
        return si_errorf(err, SI_ENOMEM, "out of memory for a %" PRIu64 "-byte decode buffer", scratch);
    }
    for (size_t i = 0; i < n_ext; i++) {
        int rc = ext[i].pinned ? si_sched_set_pinned(s, i, true, err) : SI_OK;
        if (rc < 0) {
            drop_pass(s);
            return rc;
        }
    }
    if (posix_memalign((void **)&s->ring, s->align, s->cap) != 0) {
        uint64_t cap = s->cap;
        drop_pass(s);
        return si_errorf(err, SI_ENOMEM, "cannot allocate a weight buffer of %" PRIu64 " bytes", cap);
    }
    s->st.ring_bytes = s->cap;
    s->st.chunk_bytes = s->chunk;
    return SI_OK;
}


/* Find ring space for len bytes after the newest region, wrapping to the start
 * when the end has too little; false when the oldest live region is in the way. */
static bool ring_place(si_sched *s, uint64_t len, uint64_t *pos)
{
    if (s->used == 0) { /* nothing in the ring (pinned extents hold none of it) */
        s->head = 0;
        *pos = 0;
        return len <= s->cap;
    }
    uint64_t seq = s->live_first;
    while (slot_of(s, seq)->ring_len == 0) /* the oldest region in the ring */
        seq++;
    uint64_t tail = slot_of(s, seq)->ring_off;
    if (s->head > tail) {
        if (s->head + len <= s->cap) {
            *pos = s->head;
            return true;
        }
        *pos = 0;
        return len <= tail;
    }
    /* head <= tail: the free gap is [head, tail); head == tail means full. */
    *pos = s->head;
    return s->head < tail && s->head + len <= tail;
}

static int wrap_io_error(si_sched *s, uint64_t seq, si_error *err)
{
    return si_error_prefix(err, "reading %s", s->ext[seq % s->n].label);
}

/* Give the next extent ring space and read its unaligned tail (at the very end of
 * the file, where an aligned read would run past EOF) synchronously. */
static int alloc_next_slot(si_sched *s, bool *placed, si_error *err)
{
    uint64_t seq = s->alloc_next;
    const si_extent *e = &s->ext[seq % s->n];
    uint64_t r0, r1;
    extent_range(s, e, &r0, &r1);
    uint64_t stored_len = align_up(r1 - r0, s->align);
    uint64_t len = stored_len + align_up(e->image_size, s->align), pos = 0;
    size_t i = (size_t)(seq % s->n);
    slot *sl = slot_of(s, seq);
    if (e->pinned) {
        *placed = true;
        sl->ring_off = 0;
        sl->ring_len = 0;
        sl->buf = s->pin_buf[i];
    } else {
        *placed = ring_place(s, len, &pos);
        if (!*placed)
            return SI_OK;
        sl->ring_off = pos;
        sl->ring_len = len;
        sl->buf = s->ring + pos;
        s->head = pos + len;
        s->used += len;
        if (s->used > s->st.ring_peak_bytes)
            s->st.ring_peak_bytes = s->used;
    }
    sl->read_off = r0;
    sl->image = sl->buf + stored_len;
    sl->submitted = sl->done = 0;
    s->alloc_next++;
    if (e->pinned && s->pin_loaded[i]) { /* resident: nothing to read or check */
        sl->async_len = 0;
        sl->n_chunks = 0;
        sl->ready = true;
        return SI_OK;
    }
    uint64_t async_end = align_down(r1, s->align);
    sl->async_len = async_end > r0 ? async_end - r0 : 0;
    sl->n_chunks = (uint32_t)((sl->async_len + s->chunk - 1) / s->chunk);
    sl->ready = false;
    uint64_t tail0 = r0 + sl->async_len;
    if (r1 > tail0) {
        int rc = si_io_read(s->ios[e->member], tail0, r1 - tail0, sl->buf + sl->async_len, err);
        if (rc < 0)
            return wrap_io_error(s, seq, err);
        s->st.bytes_read += r1 - tail0;
        s->m_bytes[e->member] += r1 - tail0;
    }
    return SI_OK;
}

/* Issue reads until every file's queue is full, the ring is full, or the limit is
 * reached. Ring space is given in pass order; each file has its own cursor over the
 * extents that have it, so a file whose queue is full never holds back the others'
 * reads (a striped pack keeps every member busy at once). */
static int pump(si_sched *s, si_error *err)
{
    for (;;) {
        bool progress = false, want_alloc = false;
        for (uint32_t m = 0; m < s->n_io; m++) {
            si_io *io = s->ios[m];
            if (si_io_inflight(io) >= si_io_queue_depth(io))
                continue;
            uint64_t q = s->sub_seq[m];
            while (q < s->alloc_next &&
                   (s->ext[q % s->n].member != m || slot_of(s, q)->submitted == slot_of(s, q)->n_chunks))
                q++;
            s->sub_seq[m] = q;
            if (q == s->alloc_next) {
                want_alloc = true;
                continue;
            }
            slot *sl = slot_of(s, q);
            uint64_t off = (uint64_t)sl->submitted * s->chunk;
            uint64_t len = sl->async_len - off < s->chunk ? sl->async_len - off : s->chunk;
            double t0 = si_now_s();
            if (si_io_inflight(io) == 0)
                s->m_since[m] = t0;
            int rc = si_io_submit(io, sl->read_off + off, (size_t)len, sl->buf + off, q, err);
            s->st.io_wait_s += si_now_s() - t0; /* pread reads here; io_uring only queues */
            if (rc < 0)
                return wrap_io_error(s, q, err);
            if (s->st.reads == 0)
                s->st.first_read_at = t0;
            s->st.bytes_read += len;
            s->st.reads++;
            s->m_bytes[m] += len;
            s->m_reads[m]++;
            sl->submitted++;
            progress = true;
        }
        if (!progress && want_alloc) {
            /* Each slot index may hold one seq at a time: stay within one pass ahead. */
            if (s->alloc_next >= s->limit || s->alloc_next >= s->live_first + s->n)
                break;
            bool placed;
            SI_TRY(alloc_next_slot(s, &placed, err));
            if (!placed)
                break;
            progress = true;
        }
        if (!progress)
            break;
    }
    return SI_OK;
}

static unsigned inflight_all(const si_sched *s)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < s->n_io; i++)
        n += si_io_inflight(s->ios[i]);
    return n;
}

/* One completion of file m (waiting for it when wait). */
static int reap_file(si_sched *s, uint32_t m, bool wait, bool *got, si_error *err)
{
    uint64_t tag = 0;
    double t0 = wait ? si_now_s() : 0;
    *got = false;
    if (si_io_inflight(s->ios[m]) == 0)
        return SI_OK;
    int rc = si_io_reap(s->ios[m], wait, &tag, err);
    double t1 = si_now_s();
    if (wait)
        s->st.io_wait_s += t1 - t0;
    if (si_io_inflight(s->ios[m]) == 0)
        s->m_busy[m] += t1 - s->m_since[m];
    if (rc < 0)
        return wrap_io_error(s, tag, err);
    *got = rc > 0;
    if (*got)
        slot_of(s, tag)->done++;
    return SI_OK;
}

/* Wait for one completion: of file prefer when it has reads in flight, else of any. */
static int reap(si_sched *s, uint32_t prefer, bool *got, si_error *err)
{
    uint32_t m = prefer < s->n_io && si_io_inflight(s->ios[prefer]) > 0 ? prefer : 0;
    while (m < s->n_io && si_io_inflight(s->ios[m]) == 0)
        m++;
    if (m == s->n_io) {
        *got = false;
        return SI_OK;
    }
    return reap_file(s, m, true, got, err);
}

int si_sched_poll(si_sched *s, si_error *err)
{
    for (uint32_t m = 0; m < s->n_io; m++) {
        bool got = true;
        while (got)
            SI_TRY(reap_file(s, m, false, &got, err));
    }
    return pump(s, err);
}

int si_sched_prefetch(si_sched *s, si_error *err)
{
    SI_CHECK(!s->ext, err, SI_EINVAL, "stream scheduler: no pass set (si_sched_set_pass)");
    if (s->in_pass || s->limit > s->pass * s->n)
        return SI_OK; /* a pass is on, or reads for the next one are already allowed */
    s->limit = (s->pass + 1) * s->n;
    return pump(s, err);
}

void si_sched_free(si_sched *s)
{
    if (!s)
        return;
    /* Reads still in flight (prefetch for a pass that never ran) write into the ring and
     * the pin buffers: they must complete before those are freed. */
    for (unsigned tries = 0; s->n_io && inflight_all(s) > 0 && tries < 4096; tries++) {
        bool got;
        si_error ignored;
        reap(s, 0, &got, &ignored);
    }
    drop_pass(s);
    for (uint32_t i = 0; i < s->n_io; i++)
        si_io_close(s->ios[i]);
    free(s);
}

int si_sched_begin_pass(si_sched *s, bool another_follows, si_error *err)
{
    SI_CHECK(!s->ext, err, SI_EINVAL, "stream scheduler: no pass set (si_sched_set_pass)");
    SI_CHECK(s->in_pass, err, SI_EINVAL, "stream scheduler: pass %" PRIu64 " has not ended", s->pass);
    s->in_pass = true;
    for (uint32_t i = 0; i < s->n_io; i++)
        s->m_busy_begin[i] = busy_now(s, i);
    s->limit = (s->pass + 1 + (another_follows ? 1 : 0)) * s->n;
    return pump(s, err);
}

/* Check every frame of a resident extent and decode the compressed ones into its image.
 * A mismatch is read again (the card may have returned a bad block); reads of later
 * extents stay in flight meanwhile, and the queue is topped up between frames so
 * decompression overlaps with I/O. */
static int finish_frames(si_sched *s, const si_extent *e, slot *sl, si_error *err)
{
    for (uint32_t k = 0; k < e->n_frames; k++) {
        const si_frame *f = &e->frames[k];
        uint8_t *p = sl->buf + (f->offset - sl->read_off);
        double t0 = si_now_s();
        uint64_t h = si_xxh3(p, (size_t)f->stored);
        int tries = 0;
        while (h != f->xxh3 && tries < MAX_REREADS) {
            tries++;
            s->st.rereads++;
            double t1 = si_now_s();
            int rc = si_io_read(s->ios[e->member], f->offset, (size_t)f->stored, p, err);
            s->st.io_wait_s += si_now_s() - t1;
            if (rc < 0)
                return si_error_prefix(err, "re-reading %s", e->label);
            s->st.bytes_read += f->stored;
            h = si_xxh3(p, (size_t)f->stored);
        }
        s->st.verify_s += si_now_s() - t0;
        if (h != f->xxh3) {
            char layer[24] = "";
            if (f->layer >= 0)
                snprintf(layer, sizeof layer, " (layer %d)", f->layer);
            return si_errorf(err, SI_ECHECKSUM,
                             "%s: checksum mismatch in tensor %s%s, chunk %u at file offset %" PRIu64
                             " (%" PRIu64 " bytes): XXH3 %016" PRIx64 ", expected %016" PRIx64
                             ", still wrong after %d re-reads; the file is corrupt",
                             si_io_path(s->ios[e->member]), f->tensor ? f->tensor : e->label, layer, f->chunk, f->offset,
                             f->stored, h, f->xxh3, MAX_REREADS);
        }
        if (e->image_size) {
            t0 = si_now_s();
            SI_TRY(si_pack_decode_raw(f->codec, f->type, p, f->stored, sl->image + f->image_off, f->raw,
                                      s->scratch, f->tensor ? f->tensor : e->label, err));
            s->st.decode_s += si_now_s() - t0;
            if (f->codec != 0)
                s->st.bytes_decoded += f->raw;
            SI_TRY(si_sched_poll(s, err));
        }
    }
    return SI_OK;
}

void si_sched_set_should_stop(si_sched *s, bool (*should_stop)(void *ctx), void *ctx)
{
    s->should_stop = should_stop;
    s->should_stop_ctx = ctx;
}

int si_sched_acquire(si_sched *s, size_t i, const uint8_t **data, si_error *err)
{
    uint64_t seq = s->pass * s->n + i;
    SI_CHECK(!s->in_pass || i >= s->n || seq < s->live_first, err, SI_EINVAL,
             "stream scheduler: extent %zu acquired out of order", i);
    for (;;) {
        SI_TRY(si_sched_poll(s, err));
        slot *sl = slot_of(s, seq);
        if (seq < s->alloc_next && sl->done == sl->n_chunks)
            break;
        if (inflight_all(s) == 0)
            return si_errorf(err, SI_EBUDGET,
                             "stream scheduler: weight buffer (%" PRIu64 " bytes, %" PRIu64
                             " held) has no room for %s",
                             s->cap, s->used, s->ext[i].label);
        if (s->should_stop && s->should_stop(s->should_stop_ctx))
            return si_errorf(err, SI_ESTOPPED, "stopped waiting for %s", s->ext[i].label);
        bool got;
        SI_TRY(reap(s, s->ext[i].member, &got, err));
    }
    slot *sl = slot_of(s, seq);
    const si_extent *e = &s->ext[i];
    if (!sl->ready) {
        SI_TRY(finish_frames(s, e, sl, err));
        sl->ready = true;
        if (e->pinned)
            s->pin_loaded[i] = true;
    }
    *data = e->image_size ? sl->image : sl->buf + (e->offset - sl->read_off);
    return SI_OK;
}

int si_sched_release(si_sched *s, size_t i, si_error *err)
{
    uint64_t seq = s->pass * s->n + i;
    SI_CHECK(seq != s->live_first || seq >= s->alloc_next, err, SI_EINVAL,
             "stream scheduler: extent %zu released out of order", i);
    s->used -= slot_of(s, seq)->ring_len;
    s->live_first++;
    return pump(s, err);
}

int si_sched_end_pass(si_sched *s, si_error *err)
{
    SI_CHECK(!s->in_pass || s->live_first != (s->pass + 1) * s->n, err, SI_EINVAL,
             "stream scheduler: pass %" PRIu64 " ended with extents still held", s->pass);
    s->in_pass = false;
    for (uint32_t i = 0; i < s->n_io; i++)
        s->m_busy_pass[i] += busy_now(s, i) - s->m_busy_begin[i];
    s->pass++;
    s->st.passes++;
    return SI_OK;
}

int si_sched_drain(si_sched *s, si_error *err)
{
    while (inflight_all(s) > 0) {
        bool got;
        SI_TRY(reap(s, 0, &got, err));
    }
    if (s->in_pass)
        return SI_OK;
    /* Whatever was read ahead for a pass that has not started is dropped. */
    for (uint64_t seq = s->live_first; seq < s->alloc_next; seq++) {
        slot *sl = slot_of(s, seq);
        if (sl->ring_len == 0 && sl->n_chunks == 0 && sl->ready)
            continue; /* a resident pinned extent: nothing was read */
        uint64_t r0, r1;
        extent_range(s, &s->ext[seq % s->n], &r0, &r1);
        s->st.bytes_discarded += (uint64_t)sl->submitted * s->chunk < sl->async_len
                                     ? (uint64_t)sl->submitted * s->chunk + (r1 - r0 - sl->async_len)
                                     : r1 - r0;
    }
    s->live_first = s->alloc_next = s->pass * s->n;
    for (uint32_t m = 0; m < MAX_FILES; m++)
        s->sub_seq[m] = s->alloc_next;
    s->used = 0;
    s->head = 0;
    return SI_OK;
}

void si_sched_abort_pass(si_sched *s)
{
    /* A failed read still completes (its error is what stopped the pass), so this ends;
     * the bound only guards against a backend that keeps failing to reap. */
    for (unsigned tries = 0; inflight_all(s) > 0 && tries < 4096; tries++) {
        bool got;
        si_error ignored;
        reap(s, 0, &got, &ignored);
    }
    if (s->in_pass) {
        s->in_pass = false;
        s->pass++;
    }
    s->live_first = s->alloc_next = s->pass * s->n;
    for (uint32_t m = 0; m < MAX_FILES; m++)
        s->sub_seq[m] = s->alloc_next;
    s->used = 0;
    s->head = 0;
}

int si_sched_set_pinned(si_sched *s, size_t i, bool pinned, si_error *err)
{
    SI_CHECK(i >= s->n, err, SI_EINVAL, "stream scheduler: no extent %zu", i);
    SI_CHECK(s->in_pass, err, SI_EINVAL, "stream scheduler: extent %zu pinned or unpinned during a pass", i);
    si_extent *e = &s->ext[i];
    if (e->pinned == pinned)
        return SI_OK;
    /* What was read ahead for the next pass was placed by the old rule (a resident pin
     * skipped, or a streamed extent in the ring): drop it and let the pass read anew. */
    SI_TRY(si_sched_drain(s, err));
    uint64_t r0, r1;
    extent_range(s, e, &r0, &r1);
    uint64_t need = align_up(r1 - r0, s->align) + align_up(e->image_size, s->align);
    if (pinned) {
        if (posix_memalign((void **)&s->pin_buf[i], s->align, need) != 0) {
            s->pin_buf[i] = NULL;
            return si_errorf(err, SI_ENOMEM, "cannot allocate %" PRIu64 " bytes to pin %s", need, e->label);
        }
        s->st.pinned_bytes += need;
        s->st.pinned_extents++;
        s->st.bytes_per_pass -= r1 - r0;
    } else {
        free(s->pin_buf[i]);
        s->pin_buf[i] = NULL;
        s->st.pinned_bytes -= need;
        s->st.pinned_extents--;
        s->st.bytes_per_pass += r1 - r0;
    }
    e->pinned = pinned;
    s->pin_loaded[i] = false;
    return SI_OK;
}

void si_sched_get_stats(const si_sched *s, si_sched_stats *st)
{
    *st = s->st;
    st->io_bytes_read = io_bytes_all(s);
}
