/* repack: turn a model (GGUF, llama2.c v0 fp32, llama2.c/llama3.c v2 Q8_0) into a pack:
 * tensors in compute order, aligned, optionally zstd-compressed per chunk, every chunk
 * checksummed (format in docs/FORMAT.md).
 *
 *   repack IN OUT [--zstd[=LEVEL]] [--chunk SIZE] [--embd-chunk SIZE] [--align N]
 *                 [--min-saving F] [--vocab FILE.gguf] [--rope-base F] [--q80 f32|q8_0]
 *   repack IN --stripe OUT1,OUT2[,...] [--stripe-weights W1,W2,...] [options]
 *                            a pack striped over several files (format version 2)
 *   repack --info PACK       header, extent table and totals
 *   repack --verify PACK     re-read every chunk and check its checksum (and frame) */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "si_config.h"
#include "streaminfer/gguf.h"
#include "streaminfer/llama2c.h"
#include "streaminfer/pack.h"
#include "streaminfer/quant.h"
#include "streaminfer/types.h"

#include "progress.h"

#define MAX_STRIPE SI_PACK_MAX_MEMBERS

typedef struct opts {
    const char *in, *out, *vocab;
    const char *stripe[MAX_STRIPE];
    double weights[MAX_STRIPE];
    uint32_t n_stripe, n_weights;
    const char *dirs[64];              /* --stripe-path (--info / --verify) */
    size_t n_dirs;
    si_pack_write_opts w;
    float rope_base;
    bool rope_base_set, progress;
    si_l2c_q80_mode q80;
    struct {
        char name[64];
        uint32_t type;
    } requant[32];
    int n_requant;
} opts;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: repack IN OUT [options]    write a pack from a GGUF or llama2.c checkpoint\n"
            "       repack IN --stripe OUT1,OUT2[,...] [options]  the same, striped over several files\n"
            "       repack --info PACK         print header, extent table and totals\n"
            "       repack --verify PACK       re-read every chunk and check its checksum\n"
            "options:\n"
            "  --stripe OUT1,OUT2[,...]  write one pack as 2..16 member files, one per device (distinct\n"
            "                     file names: members are found by name); every layer is spread over\n"
            "                     them chunk by chunk, so all are read at once\n"
            "  --stripe-weights W1,W2,...  each member's share (e.g. 25,40: the devices' MB/s measured\n"
            "                     with io-bench on the board); default equal shares\n"
            "  --stripe-path DIR  --info, --verify: look for the other members here too (repeatable)\n"
            "  --zstd[=LEVEL]     zstd frames per chunk (default level 19); a chunk stays raw when\n"
            "                     zstd saves less than --min-saving\n"
            "  --no-fields        compress bytes as stored (default: block fields grouped and fp16/F32\n"
            "                     scalars split into byte planes before zstd, undone on read)\n"
            "  --min-saving F     share of a chunk zstd must save to be kept (default 0.01)\n"
            "  --chunk SIZE       raw bytes per chunk, whole rows (default 1M)\n"
            "  --embd-chunk SIZE  chunk size for token_embd, read row by row (default 16K)\n"
            "  --align N          alignment of each tensor (default 4096)\n"
            "  --vocab FILE.gguf  llama2.c input: embed this GGUF's tokenizer (else the pack runs on ids)\n"
            "  --rope-base F      llama2.c input: RoPE base (default 10000; llama3.c models use 500000)\n"
            "  --q80 auto|f32|q8_0  llama2.c v2 input: auto (default) keeps Q8_0 for a matrix only when\n"
            "                     that is exact (groups inside rows of whole 32-blocks, every scale\n"
            "                     exact in fp16), else F32; f32 always dequantizes (exact); q8_0 keeps\n"
            "                     Q8_0 wherever groups fit, rounding scales to fp16 (lossy when inexact)\n"
            "  --requant T=TYPE   lossy, only when asked: store tensor T (a name, or a kind such as\n"
            "                     output, ffn_down for every layer) as TYPE (Q4_K, Q8_0, F16, F32);\n"
            "                     quantizers follow ggml's reference algorithms (repeatable)\n"
            "  -q, --no-progress  no status line (drawn on stderr only when it is a terminal)\n"
            "  -h, --help         this text\n"
            "      --version      print the version and exit\n");
}

static uint64_t parse_size(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1024, end++;
    else if (*end == 'M' || *end == 'm')
        mul = 1024 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        mul = 1024ull * 1024 * 1024, end++;
    if (end == s || *end || !(v > 0) || v * mul > 1e12) {
        fprintf(stderr, "repack: error: %s: bad size '%s'\n", what, s);
        exit(2);
    }
    return (uint64_t)(v * mul);
}

/* ---- progress bar ---- */

/* One status line (tools/progress.c): "repack · 512/3177 MB (16%) · 24.8 MB/s · 108 s left". */
typedef struct progress {
    double t0;
    si_progress bar;
} progress;
static si_progress *bar_now; /* erased before repack's own stderr lines during a write */

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    progress *p = ctx;
    double el = now_s() - p->t0 > 1e-6 ? now_s() - p->t0 : 1e-6;
    char left[32] = "";
    if (done > 0 && done < total)
        snprintf(left, sizeof left, " \u00b7 %.0f s left", el * (double)(total - done) / (double)done);
    si_progress_set(&p->bar, false, "repack \u00b7 %.0f/%.0f MB (%.0f%%) \u00b7 %.1f MB/s%s", done / 1e6, total / 1e6,
                    total ? 100.0 * (double)done / (double)total : 100.0, done / 1e6 / el, left);
}

/* ---- compute order ---- */

/* Tensors in the order the forward pass consumes them: rope factors (read once at
 * open), each layer's nine, the final norm and classifier, then the embedding (read
 * row by row); a tied classifier is the embedding itself, placed right after the
 * final norm so the classifier pass stays sequential. Anything else goes last. */
typedef struct order {
    char (*names)[64];
    uint32_t n;
} order;

static void order_add(order *o, const char *name, bool (*has)(void *, const char *), void *ctx)
{
    if (!has(ctx, name))
        return;
    for (uint32_t i = 0; i < o->n; i++)
        if (strcmp(o->names[i], name) == 0)
            return;
    snprintf(o->names[o->n++], 64, "%.63s", name);
}

static int build_order(order *o, uint32_t n_all, const char *(*name_at)(void *, uint32_t), bool (*has)(void *, const char *),
                       void *ctx, uint32_t n_layer)
{
    o->names = calloc(n_all, 64);
    o->n = 0;
    if (!o->names)
        return -1;
    static const char *const kinds[] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                        "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};
    order_add(o, "rope_freqs.weight", has, ctx);
    char name[80];
    for (uint32_t l = 0; l < n_layer; l++)
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            snprintf(name, sizeof name, "blk.%u.%s.weight", l, kinds[k]);
            order_add(o, name, has, ctx);
        }
    order_add(o, "output_norm.weight", has, ctx);
    order_add(o, "output.weight", has, ctx);
    order_add(o, "token_embd.weight", has, ctx);
    for (uint32_t i = 0; i < n_all; i++)
        order_add(o, name_at(ctx, i), has, ctx);
    return 0;
}

static const char *gguf_name_at(void *ctx, uint32_t i) { return si_gguf_tensor_at(ctx, i)->name; }
static bool gguf_has(void *ctx, const char *n) { return si_gguf_find_tensor(ctx, n) != NULL; }
static const char *l2c_name_at(void *ctx, uint32_t i) { return ((si_l2c *)ctx)->t[i].name; }
static bool l2c_has(void *ctx, const char *n)
{
    si_l2c *c = ctx;
    for (uint32_t i = 0; i < c->n_t; i++)
        if (strcmp(c->t[i].name, n) == 0)
            return true;
    return false;
}

static int pread_full(FILE *f, void *buf, uint64_t n, uint64_t off)
{
    if (fseeko(f, (off_t)off, SEEK_SET) != 0)
        return -1;
    return fread(buf, 1, (size_t)n, f) == n ? 0 : -1;
}

static void print_type_stats(const si_pack_writer *w)
{
    fprintf(stderr, "%-6s %14s %14s %8s %s\n", "type", "raw bytes", "stored bytes", "saved", "zstd chunks");
    uint64_t tr = 0, ts = 0;
    for (uint32_t t = 0; t < SI_TYPE_COUNT; t++) {
        const si_pack_type_stats *s = si_pack_writer_type_stats(w, t);
        if (!s->chunks)
            continue;
        fprintf(stderr, "%-6s %14" PRIu64 " %14" PRIu64 " %7.2f%% %" PRIu64 "/%" PRIu64 "\n", si_type_name(t), s->raw,
                s->stored, 100.0 * (double)(s->raw - s->stored) / (double)s->raw, s->zstd_chunks, s->chunks);
        tr += s->raw;
        ts += s->stored;
    }
    fprintf(stderr, "%-6s %14" PRIu64 " %14" PRIu64 " %7.2f%%\n", "all", tr, ts, 100.0 * (double)(tr - ts) / (double)tr);
}

/* ---- --requant (lossy, only when asked) ---- */

/* The target type of a tensor: a rule names the tensor ("output.weight") or its kind in
 * every layer ("output", "ffn_down" matches blk.N.ffn_down.weight). */
static uint32_t requant_type(const opts *o, const char *name, uint32_t type)
{
    for (int i = 0; i < o->n_requant; i++) {
        const char *r = o->requant[i].name;
        char want[80];
        snprintf(want, sizeof want, "%s.weight", r);
        const char *dot = strncmp(name, "blk.", 4) == 0 ? strchr(name, '.') : NULL; /* "blk." */
        if (dot)
            dot = strchr(dot + 1, '.'); /* the dot after the layer number */
        if (strcmp(name, r) == 0 || strcmp(name, want) == 0 || (dot && strcmp(dot + 1, want) == 0))
            return o->requant[i].type;
    }
    return type;
}

/* Dequantize rows of src_type to floats and quantize them to dst_type, row by row. */
static int requant_rows(uint32_t src_type, uint32_t dst_type, uint64_t n_cols, uint64_t n_rows, const void *src,
                        void *dst, const char *name, si_error *err)
{
    const si_type_traits *st = si_type_get(src_type);
    SI_CHECK(!st || !st->to_float, err, SI_EUNSUPPORTED, "--requant %s: cannot dequantize %s", name,
             si_type_name(src_type));
    float *row = malloc((size_t)n_cols * sizeof(float));
    SI_CHECK(!row, err, SI_ENOMEM, "out of memory");
    size_t sr = si_row_size(src_type, (int64_t)n_cols), dr = si_row_size(dst_type, (int64_t)n_cols);
    for (uint64_t r = 0; r < n_rows; r++) {
        st->to_float((const uint8_t *)src + r * sr, row, (int64_t)n_cols);
        si_quantize_row(dst_type, row, (uint8_t *)dst + r * dr, (int64_t)n_cols);
    }
    free(row);
    return SI_OK;
}

/* Checks a rule can apply to a tensor (before anything is written). */
static int requant_check(const char *name, uint32_t from, uint32_t to, uint64_t n_cols, si_error *err)
{
    SI_CHECK(!si_can_quantize(to), err, SI_EUNSUPPORTED, "--requant %s=%s: no quantizer for %s (F32 F16 Q8_0 Q4_K)",
             name, si_type_name(to), si_type_name(to));
    SI_CHECK(si_row_size(to, (int64_t)n_cols) == 0, err, SI_EINVAL,
             "--requant %s=%s: rows of %" PRIu64 " are not whole %s blocks", name, si_type_name(to), n_cols,
             si_type_name(to));
    const si_type_traits *st = si_type_get(from);
    SI_CHECK(!st || !st->to_float, err, SI_EUNSUPPORTED, "--requant %s: cannot dequantize %s", name,
             si_type_name(from));
    si_progress_hide(bar_now);
    fprintf(stderr, "repack: requantizing %s from %s to %s (lossy)\n", name, si_type_name(from), si_type_name(to));
    return SI_OK;
}

/* ---- writing ---- */

static int write_from_gguf(const opts *o, si_pack_writer *w, si_error *err)
{
    si_gguf *g;
    SI_TRY(si_gguf_open(&g, o->in, err));
    uint32_t n_layer = 0;
    int rc = si_gguf_get_u32(g, "llama.block_count", &n_layer, err);
    order ord = {0};
    if (rc == SI_OK && build_order(&ord, (uint32_t)si_gguf_n_tensors(g), gguf_name_at, gguf_has, g, n_layer) != 0)
        rc = si_errorf(err, SI_ENOMEM, "out of memory");
    for (uint64_t i = 0; rc == SI_OK && i < si_gguf_n_kv(g); i++) {
        /* The GGUF's own alignment describes its data, not the pack's metadata block. */
        if (strcmp(si_gguf_key(g, i), "general.alignment") == 0)
            continue;
        if (si_gguf_writer_copy_kv(si_pack_writer_meta(w), g, i) != 0)
            rc = si_errorf(err, SI_ENOMEM, "copying key %s", si_gguf_key(g, i));
    }
    for (uint32_t i = 0; rc == SI_OK && i < ord.n; i++) {
        const si_gguf_tensor *t = si_gguf_find_tensor(g, ord.names[i]);
        uint32_t to = requant_type(o, t->name, t->type);
        if (to != t->type)
            rc = requant_check(t->name, t->type, to, t->ne[0], err);
        if (rc == SI_OK)
            rc = si_pack_writer_add_tensor(w, t->name, t->n_dims, t->ne, to, err);
    }
    if (rc == SI_OK)
        rc = si_pack_writer_begin(w, err);
    FILE *f = rc == SI_OK ? fopen(o->in, "rb") : NULL;
    if (rc == SI_OK && !f)
        rc = si_errorf(err, SI_EIO, "%s: %s", o->in, strerror(errno));
    void *buf = NULL;
    for (uint32_t i = 0; rc == SI_OK && i < ord.n; i++) {
        const si_gguf_tensor *t = si_gguf_find_tensor(g, ord.names[i]);
        void *nb = realloc(buf, t->size ? (size_t)t->size : 1);
        if (!nb) {
            rc = si_errorf(err, SI_ENOMEM, "out of memory for %s (%" PRIu64 " bytes)", t->name, t->size);
            break;
        }
        buf = nb;
        uint32_t to = requant_type(o, t->name, t->type);
        if (pread_full(f, buf, t->size, t->offset) != 0) {
            rc = si_errorf(err, SI_EIO, "%s: cannot read tensor %s", o->in, t->name);
        } else if (to != t->type) {
            uint64_t rows = t->size / si_row_size(t->type, (int64_t)t->ne[0]);
            uint64_t size = rows * si_row_size(to, (int64_t)t->ne[0]);
            void *q = malloc((size_t)size);
            rc = q ? requant_rows(t->type, to, t->ne[0], rows, buf, q, t->name, err)
                   : si_errorf(err, SI_ENOMEM, "out of memory");
            if (rc == SI_OK)
                rc = si_pack_writer_write_tensor(w, q, size, err);
            free(q);
        } else {
            rc = si_pack_writer_write_tensor(w, buf, t->size, err);
        }
    }
    free(buf);
    if (f)
        fclose(f);
    free(ord.names);
    si_gguf_close(g);
    return rc;
}

static int write_from_l2c(const opts *o, si_pack_writer *w, si_error *err)
{
    si_l2c *c;
    SI_TRY(si_l2c_open(&c, o->in, o->q80, err));
    si_gguf_writer *m = si_pack_writer_meta(w);
    int rc = SI_OK;
    si_gguf *voc = NULL;
    if (o->vocab) {
        rc = si_gguf_open(&voc, o->vocab, err);
        int64_t ti = rc == SI_OK ? si_gguf_find_key(voc, "tokenizer.ggml.tokens") : -1;
        if (rc == SI_OK && (ti < 0 || si_gguf_arr_n(voc, (uint64_t)ti) != c->vocab))
            rc = si_errorf(err, SI_EINVAL, "--vocab %s: its tokenizer has %" PRIu64 " tokens, the checkpoint %u",
                           o->vocab, ti < 0 ? 0 : si_gguf_arr_n(voc, (uint64_t)ti), c->vocab);
    }
    uint32_t hs = c->dim / c->n_heads;
    si_gguf_writer_set_str(m, "general.architecture", "llama");
    si_gguf_writer_set_str(m, "general.name", c->version == 2 ? "llama2.c q80 checkpoint" : "llama2.c checkpoint");
    si_gguf_writer_set_u32(m, "llama.context_length", c->seq_len);
    si_gguf_writer_set_u32(m, "llama.embedding_length", c->dim);
    si_gguf_writer_set_u32(m, "llama.block_count", c->n_layers);
    si_gguf_writer_set_u32(m, "llama.feed_forward_length", c->hidden);
    si_gguf_writer_set_u32(m, "llama.attention.head_count", c->n_heads);
    si_gguf_writer_set_u32(m, "llama.attention.head_count_kv", c->n_kv_heads);
    si_gguf_writer_set_u32(m, "llama.rope.dimension_count", hs);
    /* run.c: freq = 1 / 10000^(i/head_size) for even i = base^(-2j/head_size): the
     * engine's formula with n_rot = head_size. rms eps is run.c's 1e-5. */
    si_gguf_writer_set_f32(m, "llama.rope.freq_base", o->rope_base_set ? o->rope_base : 10000.0f);
    si_gguf_writer_set_f32(m, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    si_gguf_writer_set_u32(m, "llama.vocab_size", c->vocab);
    for (uint64_t i = 0; rc == SI_OK && voc && i < si_gguf_n_kv(voc); i++)
        if (strncmp(si_gguf_key(voc, i), "tokenizer.", 10) == 0 && si_gguf_writer_copy_kv(m, voc, i) != 0)
            rc = si_errorf(err, SI_ENOMEM, "copying key %s", si_gguf_key(voc, i));
    order ord = {0};
    if (rc == SI_OK && build_order(&ord, c->n_t, l2c_name_at, l2c_has, c, c->n_layers) != 0)
        rc = si_errorf(err, SI_ENOMEM, "out of memory");
    uint32_t *idx = calloc(c->n_t, sizeof *idx);
    for (uint32_t i = 0; rc == SI_OK && i < ord.n; i++) {
        for (uint32_t j = 0; j < c->n_t; j++)
            if (strcmp(c->t[j].name, ord.names[i]) == 0)
                idx[i] = j;
        const si_l2c_tensor *t = &c->t[idx[i]];
        uint32_t to = requant_type(o, t->name, t->type);
        if (to != t->type)
            rc = requant_check(t->name, t->type, to, t->ne[0], err);
        if (rc == SI_OK)
            rc = si_pack_writer_add_tensor(w, t->name, t->n_dims, t->ne, to, err);
    }
    if (rc == SI_OK)
        rc = si_pack_writer_begin(w, err);
    void *buf = NULL;
    uint32_t n_q8 = 0, n_f32q = 0;
    for (uint32_t i = 0; rc == SI_OK && i < ord.n; i++) {
        uint64_t size = si_l2c_tensor_size(c, idx[i]);
        void *nb = realloc(buf, (size_t)size);
        if (!nb) {
            rc = si_errorf(err, SI_ENOMEM, "out of memory");
            break;
        }
        buf = nb;
        rc = si_l2c_read(c, idx[i], buf, err);
        const si_l2c_tensor *t = &c->t[idx[i]];
        uint32_t to = requant_type(o, t->name, t->type);
        if (rc == SI_OK && to != t->type) {
            uint64_t qsize = t->ne[1] * si_row_size(to, (int64_t)t->ne[0]);
            void *q = malloc((size_t)qsize);
            rc = q ? requant_rows(t->type, to, t->ne[0], t->ne[1], buf, q, t->name, err)
                   : si_errorf(err, SI_ENOMEM, "out of memory");
            if (rc == SI_OK)
                rc = si_pack_writer_write_tensor(w, q, qsize, err);
            free(q);
        } else if (rc == SI_OK) {
            rc = si_pack_writer_write_tensor(w, buf, size, err);
        }
        if (c->t[idx[i]].q80)
            *(c->t[idx[i]].type == SI_TYPE_Q8_0 ? &n_q8 : &n_f32q) += 1;
    }
    if (rc == SI_OK) {
        fprintf(stderr, "repack: llama2.c version %d checkpoint: dim %u, hidden %u, %u layers, %u/%u heads, vocab %u, "
                        "%s classifier\n",
                c->version, c->dim, c->hidden, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab,
                c->shared ? "shared" : "separate");
        if (c->version == 2)
            fprintf(stderr,
                    "repack: Q8_0 groups of %u: %u matrices dequantized to F32 (exact), %u kept as Q8_0%s"
                    " (%" PRIu64 " scales not exact in fp16: %s)\n",
                    c->group, n_f32q, n_q8, n_q8 ? "" : "", c->inexact_scales,
                    c->inexact_scales ? "lossy" : "lossless");
        if (!voc)
            fprintf(stderr, "repack: no --vocab: the pack has no tokenizer and runs on token ids\n");
    }
    free(buf);
    free(idx);
    free(ord.names);
    si_gguf_close(voc);
    si_l2c_close(c);
    return rc;
}

static int do_repack(const opts *o)
{
    si_error err = {0};
    si_pack_writer *w = NULL;
    progress pr = {.t0 = now_s()};
    si_pack_write_opts wo = o->w;
    si_progress_init(&pr.bar, !o->progress);
    pr.bar.below = false; /* repack writes nothing to stdout meanwhile: the line in place */
    bar_now = &pr.bar;
    if (pr.bar.on) {
        wo.progress = on_progress;
        wo.progress_ctx = &pr;
    }
    if (o->n_stripe) {
        wo.n_members = o->n_stripe;
        wo.members = o->stripe;
        wo.weights = o->n_weights ? o->weights : NULL;
    }
    int rc = si_pack_writer_new(&w, o->n_stripe ? o->stripe[0] : o->out, &wo, &err);
    bool gguf = false;
    if (rc == SI_OK) {
        FILE *f = fopen(o->in, "rb");
        uint32_t magic = 0;
        if (!f)
            rc = si_errorf(&err, SI_EIO, "%s: cannot open: %s", o->in, strerror(errno));
        else if (fread(&magic, 4, 1, f) != 1)
            rc = si_errorf(&err, SI_EFORMAT, "%s: too short", o->in);
        if (f)
            fclose(f);
        gguf = magic == SI_GGUF_MAGIC;
        if (rc == SI_OK && magic == SI_PACK_MAGIC)
            rc = si_errorf(&err, SI_EINVAL, "%s is already a pack", o->in);
    }
    if (rc == SI_OK && gguf && o->vocab)
        rc = si_errorf(&err, SI_EINVAL, "--vocab is for llama2.c checkpoints; a GGUF keeps its own tokenizer");
    if (rc == SI_OK)
        rc = gguf ? write_from_gguf(o, w, &err) : write_from_l2c(o, w, &err);
    if (rc == SI_OK)
        rc = si_pack_writer_finish(w, &err);
    si_progress_end(&pr.bar);
    bar_now = NULL;
    if (rc == SI_OK) {
        double el = now_s() - pr.t0;
        fprintf(stderr, "repack: wrote %s%s (%.1f MB of tensors in %.2f s, %.1f MB/s)\n",
                o->n_stripe ? o->stripe[0] : o->out, o->n_stripe ? " and the other members" : "",
                si_pack_writer_total_raw(w) / 1e6, el, si_pack_writer_total_raw(w) / 1e6 / (el > 0 ? el : 1e-9));
        uint64_t all = 0;
        double wsum = 0;
        for (uint32_t i = 0; i < o->n_stripe; i++) {
            all += si_pack_writer_member_bytes(w, i);
            wsum += o->n_weights ? o->weights[i] : 1.0;
        }
        for (uint32_t i = 0; i < o->n_stripe; i++)
            fprintf(stderr, "repack: member %u %s: %" PRIu64 " bytes of data, %.1f%% (weight %.1f%%)\n", i,
                    o->stripe[i], si_pack_writer_member_bytes(w, i),
                    all ? 100.0 * (double)si_pack_writer_member_bytes(w, i) / (double)all : 0.0,
                    100.0 * (o->n_weights ? o->weights[i] : 1.0) / wsum);
        print_type_stats(w);
    }
    si_pack_writer_free(w);
    if (rc != SI_OK) {
        fprintf(stderr, "repack: error: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* ---- info and verify ---- */

static int do_info(const char *path, const opts *o)
{
    si_error err = {0};
    si_pack *p;
    if (si_pack_open_set(&p, path, o->dirs, o->n_dirs, &err) != SI_OK) {
        fprintf(stderr, "repack: error: %s\n", err.msg);
        return 1;
    }
    printf("pack %s\n", si_pack_path(p));
    uint32_t nm = si_pack_n_members(p);
    if (nm > 1) {
        const uint8_t *id = si_pack_set_id(p);
        printf("  striped set of %u members, set id ", nm);
        for (int i = 0; i < 16; i++)
            printf("%02x", id[i]);
        printf("\n");
        uint64_t mb[SI_PACK_MAX_MEMBERS] = {0}, all = 0;
        uint32_t mc[SI_PACK_MAX_MEMBERS] = {0};
        for (uint32_t c = 0; c < si_pack_n_chunks(p); c++) {
            const si_pack_chunk *k = si_pack_chunk_at(p, c);
            mb[k->member] += k->stored;
            mc[k->member]++;
            all += k->stored;
        }
        for (uint32_t i = 0; i < nm; i++)
            printf("  member %u %-24s %s: file %" PRIu64 " bytes, data %" PRIu64 " bytes (%.1f%%), %u chunks\n", i,
                   si_pack_member_name(p, i), si_pack_member_path(p, i), si_pack_member_size(p, i), mb[i],
                   all ? 100.0 * (double)mb[i] / (double)all : 0.0, mc[i]);
    }
    printf("  version %u, flags %#x%s, alignment %u, file %" PRIu64 " bytes\n", si_pack_version(p), si_pack_flags(p),
           si_pack_flags(p) & SI_PACK_FLAG_ZSTD ? " (zstd)" : "", si_pack_alignment(p), si_pack_file_size(p));
    printf("  metadata [%" PRIu64 ", +%" PRIu64 "): %" PRIu64 " keys; table at %" PRIu64 "; data at %" PRIu64 "\n",
           si_pack_meta_offset(p), si_pack_meta_size(p), si_gguf_n_kv(si_pack_meta(p)), si_pack_table_offset(p),
           si_pack_data_offset(p));
    printf("  %u tensors, %u chunks\n\n", si_pack_n_tensors(p), si_pack_n_chunks(p));
    printf("%-28s %-5s %-16s %12s %12s %12s %7s %s\n", "tensor", "type", "shape", nm > 1 ? "member:offset" : "offset",
           "raw", "stored", "chunks", "zstd");
    uint64_t tr = 0, ts = 0, tz = 0;
    for (uint32_t i = 0; i < si_pack_n_tensors(p); i++) {
        const si_pack_tensor *t = si_pack_tensor_at(p, i);
        uint64_t st = 0;
        uint32_t z = 0;
        for (uint32_t c = t->first_chunk; c < t->first_chunk + t->n_chunks; c++) {
            st += si_pack_chunk_at(p, c)->stored;
            z += si_pack_chunk_at(p, c)->codec != SI_PACK_CODEC_RAW;
        }
        char shape[40];
        snprintf(shape, sizeof shape, "%" PRIu64 "x%" PRIu64, t->ne[0], t->n_rows);
        const si_pack_chunk *k0 = si_pack_chunk_at(p, t->first_chunk);
        char off[40];
        if (nm > 1)
            snprintf(off, sizeof off, "%u:%" PRIu64, k0->member, k0->offset);
        else
            snprintf(off, sizeof off, "%" PRIu64, k0->offset);
        printf("%-28s %-5s %-16s %12s %12" PRIu64 " %12" PRIu64 " %7u %u\n", t->name, si_type_name(t->type), shape, off,
               t->raw_size, st, t->n_chunks, z);
        tr += t->raw_size;
        ts += st;
        tz += z;
    }
    printf("%-28s %-5s %-16s %12s %12" PRIu64 " %12" PRIu64 " %7u %" PRIu64 "\n", "total", "", "", "", tr, ts,
           si_pack_n_chunks(p), tz);
    printf("stored/raw %.4f (%.2f%% saved)\n", tr ? (double)ts / (double)tr : 1.0,
           tr ? 100.0 * (double)(tr - ts) / (double)tr : 0.0);
    si_pack_close(p);
    return 0;
}

static int do_verify(const char *path, const opts *o)
{
    si_error err = {0};
    si_pack *p;
    if (si_pack_open_set(&p, path, o->dirs, o->n_dirs, &err) != SI_OK) {
        fprintf(stderr, "repack: error: %s\n", err.msg);
        return 1;
    }
    uint32_t nm = si_pack_n_members(p);
    FILE *fs[SI_PACK_MAX_MEMBERS] = {0}, *f = (FILE *)1;
    uint64_t bad = 0, bytes = 0, mbytes[SI_PACK_MAX_MEMBERS] = {0}, mbad[SI_PACK_MAX_MEMBERS] = {0};
    for (uint32_t i = 0; i < nm; i++)
        if (!(fs[i] = fopen(si_pack_member_path(p, i), "rb"))) {
            fprintf(stderr, "repack: error: %s: %s\n", si_pack_member_path(p, i), strerror(errno));
            f = NULL;
            bad++;
        }
    uint8_t *buf = NULL, *raw = NULL;
    double t0 = now_s();
    for (uint32_t c = 0; f && c < si_pack_n_chunks(p); c++) {
        const si_pack_chunk *k = si_pack_chunk_at(p, c);
        uint8_t *nb = realloc(buf, (size_t)k->stored), *nr = realloc(raw, (size_t)k->raw);
        if (nb)
            buf = nb;
        if (nr)
            raw = nr;
        if (!nb || !nr || pread_full(fs[k->member], buf, k->stored, k->offset) != 0) {
            fprintf(stderr, "repack: error: %s: cannot read chunk %u at %" PRIu64 "\n",
                    si_pack_member_path(p, k->member), c, k->offset);
            bad++;
            mbad[k->member]++;
            continue;
        }
        bytes += k->stored;
        mbytes[k->member] += k->stored;
        const si_pack_tensor *t = NULL;
        for (uint32_t i = 0; i < si_pack_n_tensors(p) && !t; i++) {
            const si_pack_tensor *x = si_pack_tensor_at(p, i);
            if (c >= x->first_chunk && c < x->first_chunk + x->n_chunks)
                t = x;
        }
        if (si_pack_check(p, c, buf, &err) != SI_OK || si_pack_decode(k, t->type, buf, raw, t->name, &err) != SI_OK) {
            fprintf(stderr, "repack: error: %s\n", err.msg);
            bad++;
            mbad[k->member]++;
        }
    }
    double el = now_s() - t0;
    for (uint32_t i = 0; i < nm; i++) {
        if (fs[i])
            fclose(fs[i]);
        if (nm > 1)
            printf("member %u %s: %.1f MB checked: %s\n", i, si_pack_member_path(p, i), mbytes[i] / 1e6,
                   mbad[i] || !fs[i] ? "CORRUPT" : "ok");
    }
    free(buf);
    free(raw);
    printf("%s: %u chunks, %.1f MB checked in %.2f s: %s\n", path, si_pack_n_chunks(p), bytes / 1e6, el,
           bad ? "CORRUPT" : "ok");
    if (bad)
        printf("%" PRIu64 " bad chunks\n", bad);
    si_pack_close(p);
    return bad ? 1 : 0;
}

/* --stripe's argument, split in place; lives until exit (o.stripe points into it). */
static char *stripe_buf;

/* --stripe OUT1,OUT2[,...]: 2..16 distinct files. */
static bool parse_stripe(opts *o, const char *arg)
{
    free(stripe_buf);
    if (!(stripe_buf = strdup(arg))) {
        fprintf(stderr, "repack: error: out of memory\n");
        return false;
    }
    o->n_stripe = 0;
    char *save = NULL;
    for (char *t = strtok_r(stripe_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_stripe == MAX_STRIPE) {
            fprintf(stderr, "repack: error: --stripe: more than %u files\n", MAX_STRIPE);
            return false;
        }
        o->stripe[o->n_stripe++] = t;
    }
    if (o->n_stripe < 2 || strstr(arg, ",,") || arg[0] == ',' || arg[strlen(arg) - 1] == ',') {
        fprintf(stderr, "repack: error: --stripe wants 2..%u files separated by commas, got '%s'\n", MAX_STRIPE, arg);
        return false;
    }
    return true;
}

/* --stripe-weights W1,W2,...: positive numbers. */
static bool parse_weights(opts *o, const char *arg)
{
    o->n_weights = 0;
    const char *s = arg;
    for (;;) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno || !(v > 0 && v < 1e9) || (*end && *end != ',') || o->n_weights == MAX_STRIPE) {
            fprintf(stderr, "repack: error: --stripe-weights wants up to %u positive numbers separated by commas "
                            "(e.g. 25,40), got '%s'\n", MAX_STRIPE, arg);
            return false;
        }
        o->weights[o->n_weights++] = v;
        if (!*end)
            return true;
        s = end + 1;
    }
}

/* The members against each other and the input: one count, no file twice. */
static bool check_stripe(const opts *o)
{
    if (o->n_weights && o->n_weights != o->n_stripe) {
        fprintf(stderr, "repack: error: --stripe names %u files but --stripe-weights gives %u weights\n", o->n_stripe,
                o->n_weights);
        return false;
    }
    struct stat in, a, b;
    bool have_in = stat(o->in, &in) == 0;
    for (uint32_t i = 0; i < o->n_stripe; i++) {
        if (have_in && stat(o->stripe[i], &a) == 0 && a.st_dev == in.st_dev && a.st_ino == in.st_ino) {
            fprintf(stderr, "repack: error: --stripe: %s is the input file\n", o->stripe[i]);
            return false;
        }
        for (uint32_t j = 0; j < i; j++) {
            bool same = strcmp(o->stripe[i], o->stripe[j]) == 0 ||
                        (stat(o->stripe[i], &a) == 0 && stat(o->stripe[j], &b) == 0 && a.st_dev == b.st_dev &&
                         a.st_ino == b.st_ino);
            if (same) {
                fprintf(stderr, "repack: error: --stripe names the same file twice: %s and %s\n", o->stripe[j],
                        o->stripe[i]);
                return false;
            }
        }
    }
    return true;
}

int main(int argc, char **argv)
{
    opts o = {.progress = true, .q80 = SI_L2C_Q80_AUTO};
    o.w.min_saving = -1;
    const char *info = NULL, *verify = NULL;
    enum { O_ZSTD = 256, O_CHUNK, O_EMBD, O_ALIGN, O_MINSAVE, O_VOCAB, O_ROPE, O_Q80, O_INFO, O_VERIFY, O_NOPROG, O_NOFIELDS, O_REQUANT, O_STRIPE, O_WEIGHTS, O_SPATH };
    static const struct option lo[] = {
        {"zstd", optional_argument, 0, O_ZSTD},     {"chunk", required_argument, 0, O_CHUNK},
        {"embd-chunk", required_argument, 0, O_EMBD}, {"align", required_argument, 0, O_ALIGN},
        {"min-saving", required_argument, 0, O_MINSAVE}, {"vocab", required_argument, 0, O_VOCAB},
        {"rope-base", required_argument, 0, O_ROPE}, {"q80", required_argument, 0, O_Q80},
        {"info", required_argument, 0, O_INFO},     {"verify", required_argument, 0, O_VERIFY},
        {"no-progress", no_argument, 0, O_NOPROG},  {"quiet", no_argument, 0, 'q'},  {"no-fields", no_argument, 0, O_NOFIELDS},
        {"requant", required_argument, 0, O_REQUANT},  {"stripe", required_argument, 0, O_STRIPE},
        {"stripe-weights", required_argument, 0, O_WEIGHTS}, {"stripe-path", required_argument, 0, O_SPATH},  {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "hq", lo, NULL)) != -1) {
        switch (c) {
        case O_ZSTD:
            o.w.zstd_level = optarg ? atoi(optarg) : 19;
            if (o.w.zstd_level < 1 || o.w.zstd_level > 22) {
                fprintf(stderr, "repack: error: --zstd level must be 1..22\n");
                return 2;
            }
            break;
        case O_CHUNK: o.w.chunk_bytes = parse_size(optarg, "--chunk"); break;
        case O_EMBD: o.w.embd_chunk_bytes = parse_size(optarg, "--embd-chunk"); break;
        case O_ALIGN: o.w.alignment = (uint32_t)parse_size(optarg, "--align"); break;
        case O_MINSAVE:
            o.w.min_saving = atof(optarg);
            if (!(o.w.min_saving >= 0 && o.w.min_saving < 1)) {
                fprintf(stderr, "repack: error: --min-saving must be in [0, 1)\n");
                return 2;
            }
            break;
        case O_VOCAB: o.vocab = optarg; break;
        case O_ROPE:
            o.rope_base = (float)atof(optarg);
            o.rope_base_set = true;
            break;
        case O_Q80:
            if (strcmp(optarg, "auto") == 0)
                o.q80 = SI_L2C_Q80_AUTO;
            else if (strcmp(optarg, "f32") == 0 || strcmp(optarg, "F32") == 0)
                o.q80 = SI_L2C_Q80_F32;
            else if (strcmp(optarg, "q8_0") == 0 || strcmp(optarg, "Q8_0") == 0)
                o.q80 = SI_L2C_Q80_Q8_0;
            else {
                fprintf(stderr, "repack: error: --q80 must be auto, f32 or q8_0\n");
                return 2;
            }
            break;
        case O_INFO: info = optarg; break;
        case O_STRIPE:
            if (!parse_stripe(&o, optarg))
                return 2;
            break;
        case O_WEIGHTS:
            if (!parse_weights(&o, optarg))
                return 2;
            break;
        case O_SPATH:
            if (o.n_dirs == 64) {
                fprintf(stderr, "repack: error: more than 64 --stripe-path directories\n");
                return 2;
            }
            o.dirs[o.n_dirs++] = optarg;
            break;
        case O_VERIFY: verify = optarg; break;
        case 'q':
        case O_NOPROG: o.progress = false; break;
        case O_NOFIELDS: o.w.no_fields = true; break;
        case O_REQUANT: {
            const char *eq = strchr(optarg, '=');
            uint32_t ty = SI_TYPE_COUNT;
            for (uint32_t t = 0; eq && t < SI_TYPE_COUNT; t++)
                if (si_type_get(t) && si_type_get(t)->name && strcasecmp(si_type_get(t)->name, eq + 1) == 0)
                    ty = t;
            if (!eq || eq == optarg || eq - optarg >= 64 || ty == SI_TYPE_COUNT || o.n_requant == 32) {
                fprintf(stderr, "repack: error: --requant wants TENSOR=TYPE (e.g. output=Q4_K), got '%s'\n", optarg);
                return 2;
            }
            snprintf(o.requant[o.n_requant].name, 64, "%.*s", (int)(eq - optarg), optarg);
            o.requant[o.n_requant++].type = ty;
            break;
        }
        case 'h': usage(stdout); return 0;
        case 'V': printf("repack (streaminfer) %s\n", SI_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (info)
        return do_info(info, &o);
    if (verify)
        return do_verify(verify, &o);
    if (o.n_weights && !o.n_stripe) {
        fprintf(stderr, "repack: error: --stripe-weights without --stripe\n");
        return 2;
    }
    if (o.n_stripe) {
        if (argc - optind != 1) {
            fprintf(stderr, "repack: error: with --stripe, give only the input (the outputs are --stripe's files)\n");
            return 2;
        }
        o.in = argv[optind];
        return check_stripe(&o) ? do_repack(&o) : 2;
    }
    if (argc - optind != 2) {
        usage(stderr);
        return 2;
    }
    o.in = argv[optind];
    o.out = argv[optind + 1];
    return do_repack(&o);
}
