/* The Llama forward pass over a step of tokens, fed by the stream scheduler.
 *
 * Shapes (B = tokens in the step, D = n_embd, Q = n_head*head_dim,
 * KV = n_head_kv*head_dim, F = n_ff, V = n_vocab):
 *   x [B][D] residual stream      xb [B][D] normed input / sublayer output
 *   q [B][Q]  k, v [B][KV]        att [B][Q] attention output
 *   hb, hb2 [B][F] FFN hidden     qact: x quantized for the weight type's kernel
 *   KV cache: a pool of n_ctx cells (kv.c), each with K and V rows [n_layer][KV] of
 *   F16, F32 or Q8_0 blocks, a position and a sequence set; a token attends to its
 *   sequences' cells */
#include "streaminfer/llama.h"

#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "pins.h"
#include "streaminfer/clock.h"
#include "streaminfer/kernels.h"
#include "streaminfer/pack.h"
#include "streaminfer/pool.h"
#include "streaminfer/types.h"
#include "stripe.h"

struct si_llama {
    const si_kernels *K; /* the kernel set, fixed at open */
    si_gguf *gguf;
    si_pack *pack;              /* when the model is a pack (gguf is then NULL) */
    si_gguf_tensor *pack_infos; /* the pack's tensors as the description reads them */
    const si_pack_tensor *pack_embd, *pack_rope;
    si_llama_desc d;
    si_llama_opts opts;
    si_plan plan;
    si_sched *sched; /* the model file: streamed passes and on-demand reads */
    si_llama_layout lay;
    si_pins pins;     /* pinned tensors in the plan's order; a prefix of them is held */
    uint64_t held_peak, kv_peak;
    uint32_t pos;     /* si_llama_eval's next position in sequence 0 */

    si_kv *kv;        /* the KV pool: n_ctx cells of [n_layer][KV] values of opts.kv_type */
    size_t kv_head;   /* bytes of one KV head's values in a row (kv_row_bytes of head_dim) */
    /* the step being evaluated: n tokens */
    uint32_t step_n;
    const uint32_t *step_pos;   /* [n] positions */
    const si_seq_set *step_seq; /* [n] sequence sets */
    uint32_t *step_cell;        /* [n_batch] the cell each token is stored in */
    uint32_t *step_order;       /* [n_batch] tokens grouped by sequence set */
    uint32_t *vis;              /* [n_ctx] cells one group of tokens attends to, by position */
    uint32_t *eval_pos;         /* [n_batch] si_llama_eval's positions */
    si_seq_set *eval_seq;       /* [n_batch] si_llama_eval's sequence sets (sequence 0) */
    bool *eval_logits;          /* [n_batch] */
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2; /* [n_batch][width] */
    float *kvf;       /* one KV head's visible rows as floats: K transposed [head_dim][n_vis], then V [n_vis][head_dim] */
    /* Attention scratch, one per compute thread: scores [group][n_ctx]; qh [group][head_dim]
     * the queries of a KV head's query heads, rounded like the cache; row [head_dim] a
     * Q8_0 K row dequantized (group = n_head / n_head_kv) */
    struct attn_scratch {
        float *scores, *qh, *row;
    } *ts;            /* [n_threads] */
    uint32_t n_threads;
    si_pool *pool;    /* n_threads - 1 workers: they only compute */
    float *norm_w;    /* [D] current norm weight */
    uint8_t *qact;    /* [n_batch][row bytes of the widest input in the activation type] */
    size_t qact_row;  /* stride of qact */
    uint8_t *row_buf; /* one token_embd row */
    float *inv_freq;  /* [n_rot/2] rope frequency per pair, rope_freqs applied */

    uint64_t open_bytes; /* read at open (rope_freqs); every later on-demand read is an embedding row */
    uint64_t tokens;
    uint64_t passes_stopped; /* by opts.should_stop */
    double pass_s;
};

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }
static void note_held(si_llama *m);

/* The KV rows come in blocks of this many cells (8 MiB for Llama 3 8B with an F16
 * cache): small enough that a short chat holds little more than it uses, large
 * enough that pins give way a few times per thousand tokens, not every step. */
#define SI_KV_BLOCK_CELLS 64

/* Bytes of the widest activation row any weight of the model needs. */
static size_t qact_row_bytes(const si_llama_desc *d)
{
    size_t best = 0;
    for (uint32_t l = 0; l < d->hp.n_layer; l++) {
        const si_tensor_ref *ts[SI_LAYER_N_TENSORS];
        si_llama_layer_tensors(d, l, ts);
        for (int i = 0; i < SI_LAYER_N_TENSORS; i++) {
            const si_type_traits *tt = si_type_get(ts[i]->type);
            if (ts[i]->n_rows > 1)
                best = max_sz(best, si_row_size(tt->vec_dot_type, (int64_t)ts[i]->n_cols));
        }
    }
    const si_type_traits *tt = si_type_get(d->output.type);
    return max_sz(best, si_row_size(tt->vec_dot_type, (int64_t)d->output.n_cols));
}

/* Bytes of n values of a KV cache row (n a multiple of 32 for Q8_0). */
static size_t kv_row_bytes(si_kv_type t, uint64_t n)
{
    return t == SI_KV_F32 ? 4 * n : t == SI_KV_Q8_0 ? si_row_size(SI_TYPE_Q8_0, (int64_t)n) : 2 * n;
}

static void fill_plan_request(si_plan_req *r, const si_llama_desc *d, const si_llama_opts *o, size_t qact_row,
                              uint64_t align)
{
    const si_llama_hparams *hp = &d->hp;
    uint64_t D = hp->n_embd, Q = (uint64_t)hp->n_head * hp->head_dim, KV = (uint64_t)hp->n_head_kv * hp->head_dim;
    memset(r, 0, sizeof *r);
    r->budget = o->mem_budget;
    r->n_ctx = o->n_ctx;
    r->n_ctx_train = hp->n_ctx_train;
    r->n_batch = o->n_batch;
    r->kv_bytes_per_pos = 2 * (uint64_t)hp->n_layer * kv_row_bytes(o->kv_type, KV);
    r->kv_block_cells = SI_KV_BLOCK_CELLS;
    r->act_bytes_per_token = 4 * (2 * D + 2 * Q + 2 * KV + 2 * (uint64_t)hp->n_ff) + qact_row;
    /* per cell: its position and sequence set; the visible cells' indices, one KV head's
     * visible rows widened to floats, and the scores of that KV head's query heads, which
     * (like their queries and a dequantized row) each compute thread has its own of */
    uint64_t nt = o->n_threads ? o->n_threads : 1, group = hp->n_head / hp->n_head_kv;
    r->act_bytes_per_pos = 4 + sizeof(si_seq_set) + 4 + nt * group * 4 + 8 * (uint64_t)hp->head_dim;
    r->act_fixed_bytes = 4 * (nt * (group + 1) * hp->head_dim + D + hp->n_rot) + d->token_embd.row_bytes;
    r->logits_row_bytes = 4 * (uint64_t)hp->n_vocab;
    /* a step's last token of each sequence, and each one's guessed tokens */
    r->logits_rows = (o->n_seq_max ? o->n_seq_max : 1) * (1 + o->n_draft_max);
    r->logits_rows_step = o->n_seq_max ? o->n_seq_max : 1;
    r->logits_all_tokens = o->all_logits;             /* --dump-logits: every token, n_batch rows */
    /* A whole pass when it fits (small models), else the 96 MiB cap; at least three
     * extents of the widest row so one can be computed while the next are read. */
    uint64_t pass = 0, widest = 0;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const si_tensor_ref *ts[SI_LAYER_N_TENSORS];
        si_llama_layer_tensors(d, l, ts);
        for (int i = 0; i < SI_LAYER_N_TENSORS; i++) {
            pass += ts[i]->size + 2 * align;
            widest = widest > ts[i]->row_bytes ? widest : ts[i]->row_bytes;
        }
    }
    pass += d->output.size + d->output_norm.size + 4 * align;
    widest = widest > d->output.row_bytes ? widest : d->output.row_bytes;
    r->ring_want = 2 * pass < SI_RING_DEFAULT_CAP ? 2 * pass : SI_RING_DEFAULT_CAP;
    r->ring_min = 3 * ((widest + align - 1) / align * align + 2 * align);
    /* Bookkeeping beside the buffers: per extent, the layout's entry and view (arrays
     * grown by doubling: up to 2x; they are built before the buffers exist, so the moves'
     * transient copies are not at the peak), the scheduler's copy, slot and pin state;
     * per tensor of a pass, one extent at least, its views entry and pin choice; the
     * model, its I/O, scheduler and KV handles. */
    uint64_t n_units = (uint64_t)hp->n_layer * SI_LAYER_N_TENSORS + 2;
    r->book_bytes_per_extent = 3 * sizeof(si_extent) + 2 * sizeof(si_view) + 64;
    r->book_extent_bytes = pass;
    r->book_fixed_bytes = n_units * (r->book_bytes_per_extent + sizeof(si_tensor_views) + 48) + 8192;
    r->act_bytes_per_token += 3 * sizeof(uint32_t) + sizeof(si_seq_set) + 1; /* step_cell/order, eval_* */
}

/* --ring: the weight buffer at most, never below what streaming needs. */
static int apply_ring_cap(si_plan_req *r, uint64_t cap, si_error *err)
{
    if (!cap)
        return SI_OK;
    char a[32], b[32];
    SI_CHECK(cap < r->ring_min, err, SI_EBUDGET,
             "a weight buffer of %s (--ring) is too small for this model: at least %s (%" PRIu64
             " bytes: three of its widest extents)",
             si_format_size(cap, a, sizeof a), si_format_size(r->ring_min, b, sizeof b), r->ring_min);
    if (r->ring_want > cap)
        r->ring_want = cap;
    return SI_OK;
}

static int alloc_buffers(si_llama *m, si_error *err)
{
    const si_llama_hparams *hp = &m->d.hp;
    size_t B = m->plan.n_batch, D = hp->n_embd, Q = (size_t)hp->n_head * hp->head_dim;
    size_t KV = (size_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    m->kv_head = kv_row_bytes(m->opts.kv_type, hp->head_dim);
    size_t kv_bytes = (size_t)hp->n_layer * m->plan.n_ctx * kv_row_bytes(m->opts.kv_type, KV);
    /* no rows yet: blocks come as cells are taken (kv_make_room) */
    m->kv = si_kv_new_blocks(m->plan.n_ctx, hp->n_layer, kv_row_bytes(m->opts.kv_type, KV), m->plan.kv_block_cells);
    m->step_cell = malloc(B * sizeof *m->step_cell);
    m->step_order = malloc(B * sizeof *m->step_order);
    m->vis = malloc(((size_t)m->plan.n_ctx + 1) * sizeof *m->vis);
    m->eval_pos = malloc(B * sizeof *m->eval_pos);
    m->eval_seq = malloc(B * sizeof *m->eval_seq);
    m->eval_logits = malloc(B * sizeof *m->eval_logits);
    m->x = malloc(B * D * sizeof(float));
    m->xb = malloc(B * D * sizeof(float));
    m->q = malloc(B * Q * sizeof(float));
    m->k = malloc(B * KV * sizeof(float));
    m->v = malloc(B * KV * sizeof(float));
    m->att = malloc(B * Q * sizeof(float));
    m->hb = malloc(B * F * sizeof(float));
    m->hb2 = malloc(B * F * sizeof(float));
    bool ts_ok = (m->ts = calloc(m->n_threads, sizeof *m->ts)) != NULL;
    for (uint32_t t = 0; ts_ok && t < m->n_threads; t++) {
        struct attn_scratch *a = &m->ts[t];
        const size_t group = hp->n_head / hp->n_head_kv;
        a->scores = malloc(group * ((size_t)m->plan.n_ctx + 1) * sizeof(float));
        a->qh = malloc(group * hp->head_dim * sizeof(float));
        a->row = malloc(hp->head_dim * sizeof(float));
        ts_ok = a->scores && a->qh && a->row;
    }
    m->kvf = malloc(2 * ((size_t)m->plan.n_ctx + 1) * hp->head_dim * sizeof(float));
    m->norm_w = malloc(D * sizeof(float));
    m->qact = malloc(B * m->qact_row);
    m->row_buf = malloc(m->d.token_embd.row_bytes);
    m->inv_freq = malloc((hp->n_rot / 2) * sizeof(float));
    SI_CHECK(!m->kv || !m->step_cell || !m->step_order || !m->vis || !m->eval_pos || !m->eval_seq ||
                 !m->eval_logits || !m->x || !m->xb || !m->q || !m->k || !m->v || !m->att || !m->hb || !m->hb2 ||
                 !ts_ok || !m->kvf || !m->norm_w || !m->qact || !m->row_buf || !m->inv_freq,
             err, SI_ENOMEM, "out of memory for the KV cache and activations (%zu bytes of KV cache)", 2 * kv_bytes);
    return SI_OK;
}

/* RoPE frequencies: base^(-2i/n_rot), divided by the Llama 3.1 factors when present. */
static int init_rope(si_llama *m, si_error *err)
{
    const si_llama_hparams *hp = &m->d.hp;
    uint32_t half = hp->n_rot / 2;
    for (uint32_t i = 0; i < half; i++)
        m->inv_freq[i] = (float)pow((double)hp->rope_base, -2.0 * i / hp->n_rot);
    if (m->d.rope_freqs.size) {
        float *f = malloc(half * sizeof(float));
        SI_CHECK(!f, err, SI_ENOMEM, "out of memory for rope_freqs");
        int rc = m->pack ? si_sched_read_pack_rows(m->sched, m->pack, m->pack_rope, 0, 1, f, err)
                         : si_sched_read(m->sched, m->d.rope_freqs.offset, half * sizeof(float), f, err);
        si_sched_stats ss; /* the scheduler's first on-demand read: all it counts so far */
        si_sched_get_stats(m->sched, &ss);
        m->open_bytes = ss.on_demand_bytes;
        if (rc < 0)
            rc = si_error_prefix(err, "reading %s", m->d.rope_freqs.name);
        for (uint32_t i = 0; rc == SI_OK && i < half; i++) {
            if (!(f[i] > 0 && isfinite(f[i])))
                rc = si_errorf(err, SI_EFORMAT, "%s: rope_freqs.weight[%u] = %g is not a positive factor",
                               si_gguf_path(si_llama_gguf(m)), i, (double)f[i]);
            else
                m->inv_freq[i] /= f[i];
        }
        free(f);
        SI_TRY(rc);
    }
    return SI_OK;
}

/* ---- packs ---- */

static const si_gguf_tensor *find_pack_info(const void *ctx, const char *name)
{
    const si_llama *m = ctx;
    const si_pack_tensor *pt = si_pack_find_tensor(m->pack, name);
    return pt ? &m->pack_infos[pt - si_pack_tensor_at(m->pack, 0)] : NULL;
}

/* The description of a pack comes from its metadata (hyper-parameters) and its table
 * (shapes, types); offsets are those of each tensor's first chunk. */
static int open_pack(si_llama *m, const char *path, si_error *err)
{
    size_t n_dirs;
    const char *const *dirs = si_stripe_dirs(&n_dirs);
    SI_TRY(si_pack_open_set(&m->pack, path, dirs, n_dirs, err));
    uint32_t n = si_pack_n_tensors(m->pack);
    m->pack_infos = calloc(n, sizeof *m->pack_infos);
    SI_CHECK(!m->pack_infos, err, SI_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        const si_pack_tensor *pt = si_pack_tensor_at(m->pack, i);
        si_gguf_tensor *g = &m->pack_infos[i];
        g->name = pt->name;
        g->n_dims = pt->n_dims;
        memcpy(g->ne, pt->ne, sizeof g->ne);
        g->type = pt->type;
        g->offset = si_pack_chunk_at(m->pack, pt->first_chunk)->offset;
        g->size = pt->raw_size;
    }
    SI_TRY(si_llama_desc_from_meta(&m->d, si_pack_meta(m->pack), find_pack_info, m, err));
    m->d.file_size = si_pack_file_size(m->pack);
    m->pack_embd = si_pack_find_tensor(m->pack, "token_embd.weight");
    m->pack_rope = si_pack_find_tensor(m->pack, "rope_freqs.weight");
    return SI_OK;
}

/* The I/O layer's buffer for an unaligned read of n bytes (O_DIRECT): the aligned span,
 * in a buffer of 64 KiB doubled until it holds it (src/io/io.c, ensure_bounce). */
static uint64_t bounce_bytes(uint64_t n, uint64_t align)
{
    uint64_t span = (n + align - 1) / align * align + align, cap = 64 * 1024;
    while (cap < span)
        cap *= 2;
    return cap;
}

/* Memory the on-demand reads of a step hold (embedding rows; rope_freqs at open): the
 * I/O layer's bounce buffer and, in a pack, the row's whole chunk stored and decoded
 * (kept by the pack for the next read) and a field-split chunk's scratch. The plan
 * counts it with the activations. */
static uint64_t on_demand_bytes(const si_llama *m, uint64_t align)
{
    if (!m->pack)
        return bounce_bytes(m->d.token_embd.row_bytes > m->d.rope_freqs.size ? m->d.token_embd.row_bytes
                                                                                  : m->d.rope_freqs.size,
                            align);
    uint64_t most = 0;
    const si_pack_tensor *ts[2] = {m->pack_embd, m->pack_rope};
    for (int i = 0; i < 2; i++)
        for (uint32_t c = 0; ts[i] && c < ts[i]->n_chunks; c++) {
            const si_pack_chunk *k = si_pack_chunk_at(m->pack, ts[i]->first_chunk + c);
            uint64_t need = bounce_bytes(k->stored, align) + k->stored +
                            (k->codec != SI_PACK_CODEC_RAW ? k->raw : 0) +
                            (k->codec == SI_PACK_CODEC_ZSTD_FIELDS ? k->raw : 0);
            most = need > most ? need : most;
        }
    return most;
}

/* Ring sizing for a pack: a compressed extent holds its stored bytes and its decoded
 * image, and the smallest extent is one chunk, not one row. */
static void pack_ring_request(si_plan_req *r, const si_pack *p, uint64_t align)
{
    uint64_t pass = 0, widest = 0, scratch = 0, rows_read = 0;
    for (uint32_t c = 0; c < si_pack_n_chunks(p); c++) {
        const si_pack_chunk *k = si_pack_chunk_at(p, c);
        if (k->codec == SI_PACK_CODEC_ZSTD_FIELDS && k->raw > scratch)
            scratch = k->raw; /* the scheduler's decode buffer */
        if (k->codec != SI_PACK_CODEC_RAW && k->stored + 2 * k->raw > rows_read)
            rows_read = k->stored + 2 * k->raw; /* an embedding row read on demand: chunk, decoded, fields */
        uint64_t need = (k->stored + align - 1) / align * align + 2 * align +
                        (k->codec != SI_PACK_CODEC_RAW ? (k->raw + align - 1) / align * align : 0);
        pass += need - 2 * align + (k->codec != SI_PACK_CODEC_RAW ? k->raw : 0);
        widest = need > widest ? need : widest;
    }
    uint64_t want = 2 * pass < SI_RING_DEFAULT_CAP ? 2 * pass : SI_RING_DEFAULT_CAP;
    r->ring_want = want > r->ring_want ? want : r->ring_want;
    r->ring_min = 3 * widest > r->ring_min ? 3 * widest : r->ring_min;
    /* the extents' frames: every chunk at least once, one more per extent (doubling: 2x,
     * from 256) */
    uint64_t n_frames = si_pack_n_chunks(p) > 128 ? si_pack_n_chunks(p) : 128;
    r->book_fixed_bytes += 2 * n_frames * (sizeof(si_frame) + sizeof(size_t)) + scratch + rows_read;
    r->book_bytes_per_extent += 2 * (sizeof(si_frame) + sizeof(size_t));
}

/* A pack's files: one, or a striped set's members (each read with its own queue). */
static int open_pack_files(si_llama *m, const si_io_opts *io, si_error *err)
{
    const char *paths[SI_PACK_MAX_MEMBERS];
    uint32_t n = si_pack_n_members(m->pack);
    for (uint32_t i = 0; i < n; i++)
        paths[i] = si_pack_member_path(m->pack, i);
    return si_sched_open_files(&m->sched, paths, n, io, err);
}

int si_llama_open(si_llama **out, const char *path, const si_llama_opts *opts, si_error *err)
{
    *out = NULL;
    si_llama *m = calloc(1, sizeof *m);
    SI_CHECK(!m, err, SI_ENOMEM, "out of memory");
    m->opts = *opts;
    m->K = si_kernels_active();
    if (opts->n_threads > SI_POOL_MAX_THREADS) {
        free(m);
        return si_errorf(err, SI_EINVAL, "%u compute threads: at most %d", opts->n_threads, SI_POOL_MAX_THREADS);
    }
    m->n_threads = m->opts.n_threads = opts->n_threads ? opts->n_threads : si_pool_default_threads();
    int rc = si_pack_probe(path) ? open_pack(m, path, err) : si_gguf_open(&m->gguf, path, err);
    if (rc == SI_OK && !m->pack)
        rc = si_llama_desc_from_gguf(&m->d, m->gguf, err);
    if (rc == SI_OK && opts->kv_type == SI_KV_Q8_0 && m->d.hp.head_dim % SI_QK8_0 != 0)
        rc = si_errorf(err, SI_EUNSUPPORTED,
                       "a Q8_0 KV cache (--kv-type q8_0) needs a head size that is a multiple of %d (a block "
                       "of 32 values must not span two heads); this model's head size is %u: use --kv-type f16 "
                       "or f32",
                       SI_QK8_0, m->d.hp.head_dim);
    if (rc == SI_OK)
        rc = m->pack ? open_pack_files(m, &opts->io, err) : si_sched_open(&m->sched, path, &opts->io, err);
    si_plan_req req;
    uint64_t align = 4096;
    if (rc == SI_OK) {
        align = si_sched_alignment(m->sched);
        m->qact_row = qact_row_bytes(&m->d);
        fill_plan_request(&req, &m->d, &m->opts, m->qact_row, align);
        /* measured before the plan's buffers: what the process holds beside the budget */
        req.overhead_bytes = si_plan_fixed_overhead(m->pack ? si_pack_meta_size(m->pack) : si_gguf_data_offset(m->gguf));
        if (m->pack)
            pack_ring_request(&req, m->pack, align);
        req.act_fixed_bytes += on_demand_bytes(m, align);
        req.pin_max = opts->pin == SI_PIN_AUTO ? UINT64_MAX : opts->pin == SI_PIN_SIZE ? opts->pin_size : 0;
        if (opts->ring_bytes)
            rc = apply_ring_cap(&req, opts->ring_bytes, err);
        else if (req.pin_max && req.ring_want > SI_RING_PIN_CAP)
            req.ring_want = SI_RING_PIN_CAP > req.ring_min ? SI_RING_PIN_CAP : req.ring_min;
    }
    if (rc == SI_OK) {
        rc = si_plan_make(&req, &m->plan, err);
    }
    if (rc == SI_OK) {
        /* A third of the ring per extent: one computing, the next ones loading. */
        uint64_t max_extent = m->plan.ring_bytes / 3 / align * align;
        rc = si_llama_pins_layout(&m->lay, &m->d, m->pack, max_extent, si_sched_alignment(m->sched),
                                  si_sched_file_size(m->sched), &m->plan, &m->pins, err);
    }
    if (rc == SI_OK && opts->plan_only) {
        *out = m;
        return SI_OK;
    }
    if (rc == SI_OK) {
        si_sched_opts so = {.ring_bytes = m->plan.ring_bytes, .chunk_bytes = opts->chunk_bytes};
        rc = si_sched_set_pass(m->sched, m->lay.ext, m->lay.n_ext, &so, err);
    }
    if (rc == SI_OK)
        rc = alloc_buffers(m, err);
    if (rc == SI_OK)
        rc = init_rope(m, err);
    if (rc == SI_OK)
        rc = si_pool_new(&m->pool, m->n_threads, err);
    if (rc == SI_OK)
        note_held(m);
    /* The first pass's reads start now, so that what the caller does before its first
     * step (the tokenizer, the prompt) hides under them rather than delaying them. */
    if (rc == SI_OK)
        rc = si_sched_prefetch(m->sched, err);
    if (rc == SI_OK)
        si_sched_set_should_stop(m->sched, opts->should_stop, opts->should_stop_ctx);
    if (rc < 0) {
        si_llama_close(m);
        return rc;
    }
    *out = m;
    return SI_OK;
}

void si_llama_close(si_llama *m)
{
    if (!m)
        return;
    si_pool_free(m->pool);
    si_sched_free(m->sched);
    si_pins_free(&m->pins);
    si_llama_layout_free(&m->lay);
    si_llama_desc_free(&m->d);
    si_gguf_close(m->gguf);
    si_pack_close(m->pack);
    free(m->pack_infos);
    si_kv_free(m->kv);
    for (uint32_t t = 0; m->ts && t < m->n_threads; t++)
        free(m->ts[t].scores), free(m->ts[t].qh), free(m->ts[t].row);
    free(m->ts);
    void *bufs[] = {m->step_cell, m->step_order, m->vis, m->eval_pos, m->eval_seq, m->eval_logits, m->x, m->xb, m->q, m->k, m->v, m->att, m->hb, m->hb2,
                    m->kvf, m->norm_w, m->qact, m->row_buf, m->inv_freq};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(m);
}

const si_llama_hparams *si_llama_hparams_of(const si_llama *m) { return &m->d.hp; }
const si_plan *si_llama_plan_of(const si_llama *m) { return &m->plan; }
const si_gguf *si_llama_gguf(const si_llama *m) { return m->pack ? si_pack_meta(m->pack) : m->gguf; }
uint32_t si_llama_pos(const si_llama *m) { return m->pos; }
uint32_t si_llama_n_threads(const si_llama *m) { return m->n_threads; }

/* ---- streamed weights ---- */

/* The rows of one view against a step's tokens, in blocks of SI_MATMUL_BLOCK rows taken
 * from a shared counter by every compute thread. A block is computed the same way
 * whichever thread takes it (the same kernel call on the same rows), so the results do
 * not depend on the thread count. Thread 0, the one owning the scheduler, polls it
 * after each of its blocks so reads keep flowing during long products. */
#define SI_MATMUL_BLOCK 64
typedef struct matmul_job {
    si_llama *m;
    const si_tensor_ref *t;
    const uint8_t *w;
    uint64_t n_rows;
    size_t act_row;
    uint32_t n_tok;
    float *y;
    size_t y_stride;
    atomic_uint_fast64_t next; /* the next block to take */
    atomic_bool failed;        /* a poll failed: take no more blocks */
    int rc;                    /* thread 0's poll result */
    si_error *err;
} matmul_job;

static void matmul_blocks(void *ctx, uint32_t thread, uint32_t n_threads)
{
    (void)n_threads;
    matmul_job *j = ctx;
    const si_tensor_ref *t = j->t;
    for (;;) {
        uint64_t r = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed) * SI_MATMUL_BLOCK;
        if (r >= j->n_rows || atomic_load_explicit(&j->failed, memory_order_relaxed))
            return;
        uint64_t n = j->n_rows - r < SI_MATMUL_BLOCK ? j->n_rows - r : SI_MATMUL_BLOCK;
        j->m->K->mat_dot[t->type](t->type, (int64_t)t->n_cols, j->w + r * t->row_bytes, t->row_bytes, (int64_t)n,
                                  j->m->qact, j->act_row, j->n_tok, j->y + r, j->y_stride);
        if (thread == 0 && (j->rc = si_sched_poll(j->m->sched, j->err)) < 0) {
            atomic_store_explicit(&j->failed, true, memory_order_relaxed);
            return;
        }
    }
}

/* y[b][row] = W[row] . x[b] for every row of tensor t, streamed view by view. The
 * activations are quantized once into the weight type's vec_dot_type, as llama.cpp
 * does, so the dot products match its arithmetic; the compute threads share them. */
/* The caller's stop point, before each extent of a weight matrix: on a 25 MB/s card
 * the wait is one extent's read, not the rest of a pass (the 8B model's classifier
 * alone is 17 s). */
static int check_stop(si_llama *m, const si_view *v, si_error *err)
{
    if (!m->opts.should_stop || !m->opts.should_stop(m->opts.should_stop_ctx))
        return SI_OK;
    return si_errorf(err, SI_ESTOPPED, "stopped before %s", m->lay.ext[v->extent].label);
}

static int matmul(si_llama *m, const si_tensor_ref *t, const si_tensor_views *tv, const float *x, size_t x_stride,
                  uint32_t n_tok, float *y, size_t y_stride, si_error *err)
{
    const si_type_traits *tt = si_type_get(t->type);
    size_t act_row = si_row_size(tt->vec_dot_type, (int64_t)t->n_cols);
    for (uint32_t b = 0; b < n_tok; b++)
        m->K->quantize[tt->vec_dot_type](x + b * x_stride, m->qact + b * act_row, (int64_t)t->n_cols);
    for (uint32_t vi = 0; vi < tv->n; vi++) {
        const si_view *v = &m->lay.views[tv->first + vi];
        const uint8_t *base;
        SI_TRY(check_stop(m, v, err));
        SI_TRY(si_sched_acquire(m->sched, v->extent, &base, err));
        matmul_job j = {.m = m, .t = t, .w = base + v->offset, .n_rows = v->n_rows, .act_row = act_row,
                        .n_tok = n_tok, .y = y + v->row0, .y_stride = y_stride, .err = err};
        atomic_init(&j.next, 0);
        atomic_init(&j.failed, false);
        uint64_t blocks = (v->n_rows + SI_MATMUL_BLOCK - 1) / SI_MATMUL_BLOCK;
        uint32_t nt = blocks < m->n_threads ? (uint32_t)(blocks ? blocks : 1) : m->n_threads;
        si_pool_run(m->pool, nt, matmul_blocks, &j);
        SI_TRY(j.rc);
        if (v->release)
            SI_TRY(si_sched_release(m->sched, v->extent, err));
    }
    return SI_OK;
}

/* Copy a norm weight vector out of the ring (it may share an extent with others). */
static int load_norm(si_llama *m, const si_tensor_ref *t, const si_tensor_views *tv, si_error *err)
{
    const si_view *v = &m->lay.views[tv->first];
    const uint8_t *base;
    SI_TRY(si_sched_acquire(m->sched, v->extent, &base, err));
    memcpy(m->norm_w, base + v->offset, t->n_cols * sizeof(float));
    if (v->release)
        SI_TRY(si_sched_release(m->sched, v->extent, err));
    return SI_OK;
}

/* ---- the layer math ---- */

/* One K or V row into the cache in its type; Q8_0 with the active set's Q8_0 quantizer
 * (the one the activations use: checked against the reference by checkasm). */
static void kv_store(const si_llama *m, void *dst, const float *src, size_t n)
{
    if (m->opts.kv_type == SI_KV_F32) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    if (m->opts.kv_type == SI_KV_Q8_0) {
        m->K->quantize[SI_TYPE_Q8_0](src, dst, (int64_t)n);
        return;
    }
    uint16_t *h = dst;
    for (size_t i = 0; i < n; i++)
        h[i] = si_fp32_to_fp16(src[i]);
}

/* A piece of one group's attention for the compute threads: with gather, widening KV
 * head g's visible rows into kvf (the rows split among the threads), else the attention
 * of g's query heads for every token of the group (the (token, head) pairs split among
 * the threads; a thread's consecutive heads of one token go to the kernel together, and
 * a head's result does not depend on its company, so it is the same for any number of
 * threads). */
typedef struct attend_job {
    si_llama *m;
    uint32_t l;
    const uint32_t *toks;
    uint32_t n_toks, n_vis;
    bool gather; /* this job widens rows */
    uint32_t g;  /* the KV head */
} attend_job;

static void attend_part(void *ctx, uint32_t thread, uint32_t n_threads)
{
    const attend_job *j = ctx;
    si_llama *m = j->m;
    const si_llama_hparams *hp = &m->d.hp;
    uint32_t hd = hp->head_dim, n_vis = j->n_vis, l = j->l, group = hp->n_head / hp->n_head_kv;
    size_t Q = (size_t)hp->n_head * hd;
    bool f16 = m->opts.kv_type == SI_KV_F16, q8 = m->opts.kv_type == SI_KV_Q8_0;
    const struct attn_scratch *sc = &m->ts[thread];
    float *kt = m->kvf, *vf = m->kvf + (size_t)n_vis * hd;
    uint64_t lo, hi;
    if (j->gather) {
        size_t off = (size_t)j->g * m->kv_head;
        si_to_float_fn q8_to_float = si_type_get(SI_TYPE_Q8_0)->to_float;
        si_pool_split(n_vis, thread, n_threads, &lo, &hi);
        for (uint32_t t = (uint32_t)lo; t < hi; t++) {
            const uint8_t *kr = (const uint8_t *)si_kv_k_row(m->kv, l, m->vis[t]) + off;
            const uint8_t *vr = (const uint8_t *)si_kv_v_row(m->kv, l, m->vis[t]) + off;
            if (q8) {
                q8_to_float(kr, sc->row, hd);
                m->K->kv_widen(kt + t, n_vis, sc->row, false, hd);
                q8_to_float(vr, vf + (size_t)t * hd, hd);
            } else {
                m->K->kv_widen(kt + t, n_vis, kr, f16, hd);
                m->K->kv_widen(vf + (size_t)t * hd, 1, vr, f16, hd);
            }
        }
        return;
    }
    float scale = 1.0f / sqrtf((float)hd);
    si_pool_split((uint64_t)j->n_toks * group, thread, n_threads, &lo, &hi);
    for (uint64_t it = lo; it < hi;) {
        uint32_t b = j->toks[it / group], h0 = (uint32_t)(it % group), p = m->step_pos[b];
        uint32_t nh = group - h0 < hi - it ? group - h0 : (uint32_t)(hi - it);
        /* The token sees the visible cells up to its own position. */
        uint32_t vlo = 0, vhi = n_vis;
        while (vlo < vhi) {
            uint32_t mid = vlo + (vhi - vlo) / 2;
            if (si_kv_cell_pos(m->kv, m->vis[mid]) <= p)
                vlo = mid + 1;
            else
                vhi = mid;
        }
        size_t qoff = b * Q + (size_t)(j->g * group + h0) * hd;
        /* With an F16 cache the query meets it in F16, as in llama.cpp's flash attention. */
        for (uint32_t e = 0; e < nh * hd; e++)
            sc->qh[e] = f16 ? si_fp16_to_fp32(si_fp32_to_fp16(m->q[qoff + e])) : m->q[qoff + e];
        m->K->attend(m->att + qoff, sc->qh, nh, kt, n_vis, vf, vlo, hd, scale, sc->scores);
        it += nh;
    }
}

/* Attention of the step's tokens over the cells of layer l, one group of tokens with
 * the same sequence set at a time (they see the same cells, up to their positions).
 * The group's visible cells come in position order, so a token's sums run in the same
 * order whatever else shares the step and wherever its cells landed. KV head by KV
 * head, the head's visible rows are widened to floats once for the group, K transposed
 * so that the kernels take the scores of many positions at once without sums across
 * lanes, exactly (F16 and F32 rows as they are, a Q8_0 row dequantized as ggml does,
 * d * q); then every query head of that KV head attends to them, for every token of the
 * group (the query stays F32 with a Q8_0 cache). The compute threads share each piece
 * (attend_part): one float copy of a head's rows whatever their number, and a query and
 * scores scratch per thread. */
static void attend_group(si_llama *m, uint32_t l, const uint32_t *toks, uint32_t n_toks)
{
    const si_llama_hparams *hp = &m->d.hp;
    uint32_t group = hp->n_head / hp->n_head_kv;
    uint32_t pmax = 0;
    for (uint32_t i = 0; i < n_toks; i++)
        pmax = m->step_pos[toks[i]] > pmax ? m->step_pos[toks[i]] : pmax;
    uint32_t n_vis = si_kv_visible(m->kv, m->step_seq[toks[0]], pmax, m->vis);
    attend_job j = {.m = m, .l = l, .toks = toks, .n_toks = n_toks, .n_vis = n_vis};
    uint32_t nt = m->n_threads;
    for (uint32_t g = 0; g < hp->n_head_kv; g++) {
        j.gather = true, j.g = g;
        si_pool_run(m->pool, n_vis < nt ? (n_vis ? n_vis : 1) : nt, attend_part, &j);
        j.gather = false;
        si_pool_run(m->pool, group * n_toks < nt ? group * n_toks : nt, attend_part, &j);
    }
}

static void attention(si_llama *m, uint32_t l)
{
    /* step_order: the tokens grouped by sequence set, batch order within a group. */
    uint32_t n = m->step_n, placed = 0;
    for (uint32_t b = 0; b < n; b++) {
        bool seen = false;
        for (uint32_t j = 0; j < b && !seen; j++)
            seen = m->step_seq[j] == m->step_seq[b];
        if (seen)
            continue;
        uint32_t first = placed;
        for (uint32_t j = b; j < n; j++)
            if (m->step_seq[j] == m->step_seq[b])
                m->step_order[placed++] = j;
        attend_group(m, l, m->step_order + first, placed - first);
    }
}

static int embed(si_llama *m, const int32_t *ids, uint32_t n, si_error *err)
{
    const si_tensor_ref *e = &m->d.token_embd;
    const si_type_traits *tt = si_type_get(e->type);
    for (uint32_t b = 0; b < n; b++) {
        SI_CHECK(ids[b] < 0 || (uint32_t)ids[b] >= m->d.hp.n_vocab, err, SI_EINVAL,
                 "token id %d is out of range (vocabulary of %u)", ids[b], m->d.hp.n_vocab);
        /* Counted by the scheduler from the I/O layer (si_llama_get_stats): under O_DIRECT
         * a row costs whole blocks. In a pack the row's chunk is read and verified (and
         * decoded) whole. */
        int rc = m->pack ? si_sched_read_pack_rows(m->sched, m->pack, m->pack_embd, (uint64_t)ids[b], 1, m->row_buf,
                                                   err)
                         : si_sched_read(m->sched, e->offset + (uint64_t)ids[b] * e->row_bytes, e->row_bytes,
                                         m->row_buf, err);
        if (rc < 0) /* the I/O layer names file, offset and length; say which tensor */
            return si_error_prefix(err, "reading %s row %d (token %d)", e->name, ids[b], ids[b]);
        tt->to_float(m->row_buf, m->x + (size_t)b * m->d.hp.n_embd, (int64_t)e->n_cols);
    }
    return SI_OK;
}

static int layer_forward(si_llama *m, uint32_t l, uint32_t n, si_error *err)
{
    const si_llama_hparams *hp = &m->d.hp;
    const si_llama_layer_refs *L = &m->d.layers[l];
    const si_tensor_views *tv = &m->lay.layer[(size_t)l * SI_LAYER_N_TENSORS];
    size_t D = hp->n_embd, Q = (size_t)hp->n_head * hp->head_dim, KV = (size_t)hp->n_head_kv * hp->head_dim;
    size_t F = hp->n_ff;

    SI_TRY(load_norm(m, &L->attn_norm, &tv[0], err));
    for (uint32_t b = 0; b < n; b++)
        m->K->rmsnorm(m->xb + b * D, m->x + b * D, m->norm_w, (int64_t)D, hp->rms_eps);
    SI_TRY(matmul(m, &L->wq, &tv[1], m->xb, D, n, m->q, Q, err));
    SI_TRY(matmul(m, &L->wk, &tv[2], m->xb, D, n, m->k, KV, err));
    SI_TRY(matmul(m, &L->wv, &tv[3], m->xb, D, n, m->v, KV, err));
    for (uint32_t b = 0; b < n; b++) {
        uint32_t p = m->step_pos[b];
        m->K->rope(m->q + b * Q, hp->n_head, hp->head_dim, hp->n_rot, m->inv_freq, p);
        m->K->rope(m->k + b * KV, hp->n_head_kv, hp->head_dim, hp->n_rot, m->inv_freq, p);
        kv_store(m, si_kv_k_row(m->kv, l, m->step_cell[b]), m->k + b * KV, KV);
        kv_store(m, si_kv_v_row(m->kv, l, m->step_cell[b]), m->v + b * KV, KV);
    }
    attention(m, l);
    SI_TRY(matmul(m, &L->wo, &tv[4], m->att, Q, n, m->xb, D, err));
    for (size_t i = 0; i < n * D; i++)
        m->x[i] += m->xb[i];

    SI_TRY(load_norm(m, &L->ffn_norm, &tv[5], err));
    for (uint32_t b = 0; b < n; b++)
        m->K->rmsnorm(m->xb + b * D, m->x + b * D, m->norm_w, (int64_t)D, hp->rms_eps);
    SI_TRY(matmul(m, &L->w_gate, &tv[6], m->xb, D, n, m->hb, F, err));
    SI_TRY(matmul(m, &L->w_up, &tv[7], m->xb, D, n, m->hb2, F, err));
    m->K->silu_mul(m->hb, m->hb2, (int64_t)(n * F));
    SI_TRY(matmul(m, &L->w_down, &tv[8], m->hb, F, n, m->xb, D, err));
    for (size_t i = 0; i < n * D; i++)
        m->x[i] += m->xb[i];
    return SI_OK;
}

/* Tell opts.progress where the pass is: layers done (n_layer + 1: the classifier too). */
static void report_progress(const si_llama *m, uint32_t done, uint32_t n_tok)
{
    if (!m->opts.progress)
        return;
    const si_llama_hparams *hp = &m->d.hp;
    si_sched_stats ss;
    si_sched_get_stats(m->sched, &ss);
    si_llama_progress p = {.pass = ss.passes + 1, .layer = done > hp->n_layer ? hp->n_layer : done,
                           .n_layer = hp->n_layer, .n_tokens = n_tok, .bytes_read = ss.bytes_read};
    /* The extents up to the last one of the layers done (all of them after the classifier). */
    uint64_t last = 0;
    bool any = false;
    for (uint32_t l = 0; l < done && l < hp->n_layer; l++) {
        const si_tensor_views *tv = &m->lay.layer[(size_t)l * SI_LAYER_N_TENSORS];
        for (int i = 0; i < SI_LAYER_N_TENSORS; i++)
            for (uint32_t vi = 0; vi < tv[i].n; vi++) {
                uint32_t e = m->lay.views[tv[i].first + vi].extent;
                last = any && last > e ? last : e;
                any = true;
            }
    }
    for (size_t e = 0; e < m->lay.n_ext; e++) {
        p.weight_bytes += m->lay.ext[e].size;
        if (done > hp->n_layer || (any && e <= last))
            p.weight_bytes_done += m->lay.ext[e].size;
    }
    m->opts.progress(m->opts.progress_ctx, &p);
}

/* One pass: the batch's tokens (cells already taken) through every layer, then the
 * classifier for the rows asked for. */
static int decode_step(si_llama *m, const si_batch *bt, bool another_follows, float *out, si_error *err)
{
    const si_llama_hparams *hp = &m->d.hp;
    size_t D = hp->n_embd;
    uint32_t n = bt->n;
    double t0 = si_now_s();
    m->step_n = n;
    m->step_pos = bt->pos;
    m->step_seq = bt->seq;
    SI_TRY(embed(m, bt->id, n, err));
    SI_TRY(si_sched_begin_pass(m->sched, another_follows, err));
    report_progress(m, 0, n);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        SI_TRY(layer_forward(m, l, n, err));
        report_progress(m, l + 1, n);
    }
    SI_TRY(load_norm(m, &m->d.output_norm, &m->lay.output_norm, err));
    uint32_t rows = 0;
    for (uint32_t b = 0; b < n; b++)
        if (bt->logits ? bt->logits[b] : b == n - 1)
            m->K->rmsnorm(m->xb + (size_t)rows++ * D, m->x + (size_t)b * D, m->norm_w, (int64_t)D, hp->rms_eps);
    if (rows)
        SI_TRY(matmul(m, &m->d.output, &m->lay.output, m->xb, D, rows, out, hp->n_vocab, err));
    else /* nothing asked: the classifier's extents still pass through the ring in order */
        for (uint32_t vi = 0; vi < m->lay.output.n; vi++) {
            const si_view *v = &m->lay.views[m->lay.output.first + vi];
            const uint8_t *base;
            SI_TRY(check_stop(m, v, err));
            SI_TRY(si_sched_acquire(m->sched, v->extent, &base, err));
            if (v->release)
                SI_TRY(si_sched_release(m->sched, v->extent, err));
        }
    report_progress(m, hp->n_layer + 1, n);
    SI_TRY(si_sched_end_pass(m->sched, err));
    m->tokens += n;
    m->pass_s += si_now_s() - t0;
    return SI_OK;
}

uint32_t si_llama_max_logits_rows(const si_llama *m) { return m->plan.logits_rows ? m->plan.logits_rows : 1; }

/* ---- the budget at every moment: ring + activations + KV blocks + pins ---- */

static uint64_t held_bytes(const si_llama *m)
{
    si_sched_stats ss;
    si_sched_get_stats(m->sched, &ss);
    return m->plan.ring_bytes + m->plan.act_bytes + m->plan.book_bytes + si_kv_allocated_bytes(m->kv) + ss.pinned_bytes;
}

static void note_held(si_llama *m)
{
    uint64_t h = held_bytes(m), kv = si_kv_allocated_bytes(m->kv);
    m->held_peak = h > m->held_peak ? h : m->held_peak;
    m->kv_peak = kv > m->kv_peak ? kv : m->kv_peak;
}

/* Between steps, after the step's blocks are there: released pins return, in the
 * plan's order, while they fit with a block to spare (so that the next block does not
 * send them away again at once). */
static int pins_give_back(si_llama *m, si_error *err)
{
    if (m->pins.n_pinned == m->pins.n)
        return SI_OK;
    uint64_t spare = si_kv_block_bytes(m->kv, 0), held = held_bytes(m);
    if (held + spare < m->plan.budget)
        SI_TRY(si_pins_restore(&m->pins, m->sched, &m->lay, m->plan.budget - held - spare, err));
    return SI_OK;
}

/* Free cells for n tokens: KV blocks are allocated one at a time, and when one does not
 * fit in the budget beside what is held, pins give way (least saving first) until it
 * does. With every pin gone the whole pool fits (the plan checked it). */
static int kv_make_room(si_llama *m, uint32_t n, si_error *err)
{
    while (si_kv_n_free_ready(m->kv) < n) {
        int64_t b = si_kv_next_block(m->kv);
        if (b < 0)
            break; /* every block is there: the free cells are all there are */
        uint64_t bytes = si_kv_block_bytes(m->kv, (uint32_t)b), held = held_bytes(m), freed;
        if (held + bytes > m->plan.budget)
            SI_TRY(si_pins_release(&m->pins, m->sched, &m->lay, held + bytes - m->plan.budget, &freed, err));
        held = held_bytes(m);
        SI_CHECK(held + bytes > m->plan.budget, err, SI_EBUDGET,
                 "internal: KV block %" PRId64 " (%" PRIu64 " bytes) does not fit beside %" PRIu64
                 " bytes held in the budget of %" PRIu64,
                 b, bytes, held, m->plan.budget);
        SI_CHECK(si_kv_grow(m->kv) < 0, err, SI_ENOMEM, "out of memory for %" PRIu64 " more bytes of KV cache",
                 bytes);
        note_held(m);
    }
    return SI_OK;
}

si_kv *si_llama_kv(si_llama *m) { return m->kv; }

int si_llama_decode(si_llama *m, const si_batch *bt, bool another_follows, float *out, si_error *err)
{
    uint32_t n = bt->n, rows = 0;
    SI_CHECK(n == 0, err, SI_EINVAL, "nothing to evaluate");
    SI_CHECK(n > m->plan.n_batch, err, SI_EINVAL, "a step of %u tokens exceeds the planned step of %u", n,
             m->plan.n_batch);
    for (uint32_t b = 0; b < n; b++) {
        SI_CHECK(!bt->seq[b], err, SI_EINVAL, "token %u of the step belongs to no sequence", b);
        rows += bt->logits ? bt->logits[b] : b == n - 1;
    }
    SI_CHECK(rows > si_llama_max_logits_rows(m), err, SI_EINVAL,
             "a step asks for %u rows of logits; the plan holds %u", rows, si_llama_max_logits_rows(m));
    SI_CHECK(si_kv_n_free(m->kv) < n, err, SI_EINVAL, "the KV cache is full: %u tokens need cells, %u of %u are free",
             n, si_kv_n_free(m->kv), si_kv_n_cells(m->kv));
    /* KV blocks no cell uses go back, keeping a block's worth of free cells beyond this
     * step (a step that ends a sequence and one that starts another do not free and
     * take the same block); then this step's blocks, then what pins fit again. */
    si_kv_shrink(m->kv, n + si_kv_block_cells(m->kv));
    SI_TRY(kv_make_room(m, n, err));
    SI_TRY(pins_give_back(m, err));
    note_held(m);
    for (uint32_t b = 0; b < n; b++)
        m->step_cell[b] = (uint32_t)si_kv_alloc(m->kv, bt->pos[b], bt->seq[b]);
    int rc = decode_step(m, bt, another_follows, out, err);
    if (rc == SI_ESTOPPED) /* by opts.should_stop: here, or while the scheduler waited */
        m->passes_stopped++;
    if (rc < 0) { /* the cells hold partial rows: give them back; the next pass starts clean */
        for (uint32_t b = 0; b < n; b++)
            si_kv_release(m->kv, m->step_cell[b]);
        si_sched_abort_pass(m->sched);
    }
    return rc;
}

int si_llama_eval(si_llama *m, const int32_t *ids, uint32_t n, bool another_follows, float *logits, si_error *err)
{
    SI_CHECK(n == 0, err, SI_EINVAL, "nothing to evaluate");
    SI_CHECK((uint64_t)m->pos + n > m->plan.n_ctx, err, SI_EINVAL,
             "context is full: %u positions in use, %u more do not fit in -c %u", m->pos, n, m->plan.n_ctx);
    uint32_t B = m->plan.n_batch;
    for (uint32_t done = 0; done < n;) {
        uint32_t step = n - done < B ? n - done : B;
        bool last = done + step == n;
        for (uint32_t b = 0; b < step; b++) {
            m->eval_pos[b] = m->pos + b;
            m->eval_seq[b] = SI_SEQ(0);
            m->eval_logits[b] = m->opts.all_logits || b == step - 1;
        }
        si_batch bt = {.n = step, .id = ids + done, .pos = m->eval_pos, .seq = m->eval_seq, .logits = m->eval_logits};
        float *out = m->opts.all_logits ? logits + (size_t)done * m->d.hp.n_vocab : logits;
        SI_TRY(si_llama_decode(m, &bt, !last || another_follows, out, err));
        m->pos += step;
        done += step;
    }
    return SI_OK;
}

int si_llama_finish(si_llama *m, si_error *err) { return si_sched_drain(m->sched, err); }

void si_llama_get_stats(const si_llama *m, si_llama_stats *st)
{
    memset(st, 0, sizeof *st);
    si_sched_get_stats(m->sched, &st->sched);
    st->embd_bytes_read = st->sched.on_demand_bytes - m->open_bytes;
    st->open_bytes_read = m->open_bytes;
    st->io_bytes_read = st->sched.io_bytes_read;
    si_sched_io_info(m->sched, &st->io);
    st->tokens_evaluated = m->tokens;
    st->pass_s = m->pass_s;
    st->verify_s = st->sched.verify_s;
    st->decode_s = st->sched.decode_s;
    st->checksum_rereads = st->sched.rereads;
    st->compute_s = m->pass_s - st->sched.io_wait_s;
    if (st->compute_s < 0)
        st->compute_s = 0;
    st->held_bytes = held_bytes(m);
    st->held_peak_bytes = m->held_peak > st->held_bytes ? m->held_peak : st->held_bytes;
    st->kv_bytes = si_kv_allocated_bytes(m->kv);
    st->kv_peak_bytes = m->kv_peak;
    st->pins_held = m->pins.n_pinned;
    st->pins_planned = m->pins.n;
    st->pins_released = m->pins.released;
    st->pins_restored = m->pins.restored;
    st->passes_stopped = m->passes_stopped;
}

uint32_t si_llama_n_files(const si_llama *m) { return m->sched ? si_sched_n_files(m->sched) : 0; }

void si_llama_file_stats(const si_llama *m, uint32_t i, si_sched_file_stats *fs)
{
    if (m->sched)
        si_sched_get_file_stats(m->sched, i, fs);
    else
        memset(fs, 0, sizeof *fs);
}
