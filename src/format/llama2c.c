/* llama2.c (run.c, version 0) and llama3.c/runq.c (version 2, Q8_0 groups) checkpoints.
 * Layouts are facts from llama2.c's export.py / run.c / runq.c; see llama2c.h. */
#include "streaminfer/llama2c.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "streaminfer/file.h"
#include "streaminfer/types.h"

bool si_l2c_probe(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    int32_t h[7];
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && si_pread_exact(fd, h, sizeof h, 0) == 0;
    close(fd);
    if (!ok)
        return false;
    if ((uint32_t)h[0] == SI_L2C_MAGIC)
        return true;
    /* Version 0 has no magic: a plausible header is all we can check here. */
    return h[0] > 0 && h[1] > 0 && h[2] > 0 && h[3] > 0 && h[4] > 0 && h[5] != 0 && h[6] > 0;
}

static int add(si_l2c *c, const char *name, uint64_t cols, uint64_t rows, uint64_t *off, si_error *err)
{
    si_l2c_tensor *t = &c->t[c->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ne[0] = cols;
    t->ne[1] = rows;
    t->n_dims = rows > 1 || strstr(name, "norm") == NULL ? 2 : 1;
    if (t->n_dims == 1)
        t->ne[1] = 1;
    uint64_t n = cols * rows;
    bool q = c->version == 2 && strstr(name, "norm") == NULL;
    t->src_off = *off;
    t->type = SI_TYPE_F32;
    if (!q) {
        *off += 4 * n;
        return SI_OK;
    }
    SI_CHECK(n % c->group != 0, err, SI_EFORMAT, "%s: %s has %" PRIu64 " values, not whole groups of %u", c->path,
             name, n, c->group);
    t->q80 = true;
    t->scale_off = *off + n;
    *off += n + 4 * (n / c->group);
    if (c->mode != SI_L2C_Q80_F32 && c->group % 32 == 0 && cols % c->group == 0)
        t->type = SI_TYPE_Q8_0; /* AUTO: checked against the scales once the file is known good */
    return SI_OK;
}


/* AUTO: keep Q8_0 only where it is lossless, i.e. every scale survives fp16. */
static int auto_types(si_l2c *c, si_error *err)
{
    for (uint32_t i = 0; i < c->n_t; i++) {
        si_l2c_tensor *t = &c->t[i];
        if (t->type != SI_TYPE_Q8_0)
            continue;
        uint64_t ns = t->ne[0] * t->ne[1] / c->group;
        float *s = malloc((size_t)ns * sizeof(float));
        SI_CHECK(!s, err, SI_ENOMEM, "out of memory for the scales of %s", t->name);
        if (si_pread_exact(c->fd, s, (size_t)ns * 4, t->scale_off)) {
            free(s);
            return si_errorf(err, SI_EIO, "%s: cannot read the scales of %s", c->path, t->name);
        }
        for (uint64_t j = 0; j < ns; j++)
            if (si_fp16_to_fp32(si_fp32_to_fp16(s[j])) != s[j]) {
                t->type = SI_TYPE_F32;
                break;
            }
        free(s);
    }
    return SI_OK;
}

int si_l2c_open(si_l2c **out, const char *path, si_l2c_q80_mode mode, si_error *err)
{
    *out = NULL;
    si_l2c *c = calloc(1, sizeof *c);
    SI_CHECK(!c, err, SI_ENOMEM, "out of memory");
    c->mode = mode;
    c->path = strdup(path);
    c->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int rc = SI_OK;
    uint8_t h[256];
    if (!c->path)
        rc = si_errorf(err, SI_ENOMEM, "out of memory");
    else if (c->fd < 0 || fstat(c->fd, &st) != 0)
        rc = si_errorf(err, SI_EIO, "%s: cannot open: %s", path, strerror(errno));
    else if ((c->file_size = (uint64_t)st.st_size) < 28 || si_pread_exact(c->fd, h, c->file_size < 256 ? 28 : 256, 0))
        rc = si_errorf(err, SI_EIO, "%s: too short for a llama2.c header", path);
    uint64_t off = 0;
    if (rc == SI_OK) {
        uint32_t magic;
        memcpy(&magic, h, 4);
        int32_t p[7];
        if (magic == SI_L2C_MAGIC) {
            int32_t version;
            memcpy(&version, h + 4, 4);
            if (version != 2)
                rc = si_errorf(err, SI_EUNSUPPORTED,
                               "%s: llama2.c checkpoint version %d is not supported (version 0 fp32 and version 2 "
                               "Q8_0 are)",
                               path, version);
            memcpy(p, h + 8, sizeof p);
            c->version = 2;
            c->shared = h[36] != 0;
            int32_t gs;
            memcpy(&gs, h + 37, 4);
            if (rc == SI_OK && (gs <= 0 || gs > (1 << 20) || h[36] > 1))
                rc = si_errorf(err, SI_EFORMAT, "%s: byte 36: shared flag %u / group size %d are invalid", path, h[36],
                               gs);
            c->group = (uint32_t)gs;
            off = 256;
        } else {
            memcpy(p, h, sizeof p);
            c->version = 0;
            c->shared = p[5] > 0;
            if (p[5] < 0 && p[5] != INT32_MIN) /* INT32_MIN stays negative: refused below */
                p[5] = -p[5];
            off = 28;
        }
        if (rc == SI_OK) {
            for (int i = 0; i < 7 && rc == SI_OK; i++)
                if (p[i] <= 0 || p[i] > (1 << 24))
                    rc = si_errorf(err, SI_EFORMAT, "%s: header field %d is %d: not a llama2.c checkpoint", path, i,
                                   p[i]);
        }
        if (rc == SI_OK) {
            c->dim = (uint32_t)p[0];
            c->hidden = (uint32_t)p[1];
            c->n_layers = (uint32_t)p[2];
            c->n_heads = (uint32_t)p[3];
            c->n_kv_heads = (uint32_t)p[4];
            c->vocab = (uint32_t)p[5];
            c->seq_len = (uint32_t)p[6];
            if (c->dim % c->n_heads || c->n_heads % c->n_kv_heads || (c->dim / c->n_heads) % 2 || c->n_layers > 4096)
                rc = si_errorf(err, SI_EFORMAT, "%s: dim %u / heads %u / kv heads %u / layers %u are inconsistent",
                               path, c->dim, c->n_heads, c->n_kv_heads, c->n_layers);
        }
    }
    if (rc == SI_OK) {
        c->t = calloc(9 * (size_t)c->n_layers + 4, sizeof *c->t);
        if (!c->t)
            rc = si_errorf(err, SI_ENOMEM, "out of memory");
    }
    if (rc == SI_OK) {
        uint64_t D = c->dim, H = c->hidden, V = c->vocab, hs = D / c->n_heads, KV = hs * c->n_kv_heads;
        uint32_t L = c->n_layers;
        char name[64];
        /* Per-kind loops, as the exporters write them: all layers of one kind together. */
#define EACH_LAYER(fmt, cols, rows)                                               \
    for (uint32_t l = 0; l < L && rc == SI_OK; l++) {                             \
        snprintf(name, sizeof name, fmt, l);                                      \
        rc = add(c, name, cols, rows, &off, err);                                 \
    }
        if (c->version == 0) {
            rc = add(c, "token_embd.weight", D, V, &off, err);
            EACH_LAYER("blk.%u.attn_norm.weight", D, 1)
            EACH_LAYER("blk.%u.attn_q.weight", D, D)
            EACH_LAYER("blk.%u.attn_k.weight", D, KV)
            EACH_LAYER("blk.%u.attn_v.weight", D, KV)
            EACH_LAYER("blk.%u.attn_output.weight", D, D)
            EACH_LAYER("blk.%u.ffn_norm.weight", D, 1)
            EACH_LAYER("blk.%u.ffn_gate.weight", D, H)
            EACH_LAYER("blk.%u.ffn_down.weight", H, D)
            EACH_LAYER("blk.%u.ffn_up.weight", D, H)
            if (rc == SI_OK)
                rc = add(c, "output_norm.weight", D, 1, &off, err);
            off += 4 * (uint64_t)c->seq_len * hs; /* freq_cis_real and _imag (unused) */
            if (rc == SI_OK && !c->shared)
                rc = add(c, "output.weight", D, V, &off, err);
        } else {
            EACH_LAYER("blk.%u.attn_norm.weight", D, 1)
            EACH_LAYER("blk.%u.ffn_norm.weight", D, 1)
            if (rc == SI_OK)
                rc = add(c, "output_norm.weight", D, 1, &off, err);
            if (rc == SI_OK)
                rc = add(c, "token_embd.weight", D, V, &off, err);
            EACH_LAYER("blk.%u.attn_q.weight", D, D)
            EACH_LAYER("blk.%u.attn_k.weight", D, KV)
            EACH_LAYER("blk.%u.attn_v.weight", D, KV)
            EACH_LAYER("blk.%u.attn_output.weight", D, D)
            EACH_LAYER("blk.%u.ffn_gate.weight", D, H)
            EACH_LAYER("blk.%u.ffn_down.weight", H, D)
            EACH_LAYER("blk.%u.ffn_up.weight", D, H)
            if (rc == SI_OK && !c->shared)
                rc = add(c, "output.weight", D, V, &off, err);
        }
#undef EACH_LAYER
        if (rc == SI_OK && off != c->file_size)
            rc = si_errorf(err, off > c->file_size ? SI_EIO : SI_EFORMAT,
                           "%s: a version-%d checkpoint of these shapes (dim %u, hidden %u, %u layers, vocab %u%s) is "
                           "%" PRIu64 " bytes, the file has %" PRIu64,
                           path, c->version, c->dim, c->hidden, c->n_layers, c->vocab,
                           c->version == 2 ? ", groups" : "", off, c->file_size);
    }
    if (rc == SI_OK && c->mode == SI_L2C_Q80_AUTO && c->version == 2)
        rc = auto_types(c, err);
    if (rc < 0) {
        si_l2c_close(c);
        return rc;
    }
    *out = c;
    return SI_OK;
}

void si_l2c_close(si_l2c *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->t);
    free(c->path);
    free(c);
}

uint64_t si_l2c_tensor_size(const si_l2c *c, uint32_t i)
{
    const si_l2c_tensor *t = &c->t[i];
    return si_row_size(t->type, (int64_t)t->ne[0]) * t->ne[1];
}

int si_l2c_read(si_l2c *c, uint32_t i, void *dst, si_error *err)
{
    si_l2c_tensor *t = &c->t[i];
    uint64_t n = t->ne[0] * t->ne[1];
    if (!t->q80) {
        SI_CHECK(si_pread_exact(c->fd, dst, (size_t)(4 * n), t->src_off) != 0, err, SI_EIO, "%s: cannot read %s", c->path,
                 t->name);
        return SI_OK;
    }
    int8_t *q = malloc((size_t)n);
    float *s = malloc((size_t)(n / c->group) * sizeof(float));
    int rc = SI_OK;
    if (!q || !s)
        rc = si_errorf(err, SI_ENOMEM, "out of memory for %s", t->name);
    else if (si_pread_exact(c->fd, q, (size_t)n, t->src_off) || si_pread_exact(c->fd, s, (size_t)(n / c->group) * 4, t->scale_off))
        rc = si_errorf(err, SI_EIO, "%s: cannot read %s", c->path, t->name);
    if (rc == SI_OK && t->type == SI_TYPE_F32) {
        /* Exactly runq.c's dequantization: value times its group's scale, in fp32. */
        float *w = dst;
        for (uint64_t j = 0; j < n; j++)
            w[j] = (float)q[j] * s[j / c->group];
    } else if (rc == SI_OK) {
        /* Q8_0 block: fp16 scale d, then 32 int8. A group of 64 is two blocks with the
         * same scale; the scale is rounded to fp16 (counted when inexact). */
        uint8_t *o = dst;
        for (uint64_t j = 0; j < n; j += 32) {
            float sc = s[j / c->group];
            uint16_t d = si_fp32_to_fp16(sc);
            if (si_fp16_to_fp32(d) != sc && j % c->group == 0)
                c->inexact_scales++;
            memcpy(o, &d, 2);
            memcpy(o + 2, q + j, 32);
            o += 34;
        }
    }
    free(q);
    free(s);
    return rc;
}
