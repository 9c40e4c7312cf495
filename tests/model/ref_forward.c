#include "ref_forward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "streaminfer/gguf.h"
#include "streaminfer/types.h"

typedef struct ref_layer {
    double *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w1, *w3, *w2;
} ref_layer;

struct ref_model {
    uint32_t dim, n_layer, n_head, n_kv, hd, n_rot, ff, vocab;
    double eps, base;
    double *emb, *out_norm, *out, *freq_factors;
    ref_layer *L;
};

static double *load_tensor(si_gguf *g, int fd, const char *name, uint64_t expect_elems)
{
    const si_gguf_tensor *t = si_gguf_find_tensor(g, name);
    if (!t) {
        fprintf(stderr, "ref: tensor %s missing\n", name);
        return NULL;
    }
    uint64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    if (expect_elems && n != expect_elems) {
        fprintf(stderr, "ref: tensor %s has %llu elements, expected %llu\n", name, (unsigned long long)n,
                (unsigned long long)expect_elems);
        return NULL;
    }
    uint8_t *raw = malloc(t->size);
    float *f = malloc(n * sizeof(float));
    double *d = malloc(n * sizeof(double));
    if (!raw || !f || !d || pread(fd, raw, t->size, (off_t)t->offset) != (ssize_t)t->size) {
        fprintf(stderr, "ref: cannot read %s\n", name);
        free(raw), free(f), free(d);
        return NULL;
    }
    si_type_get(t->type)->to_float(raw, f, (int64_t)n);
    for (uint64_t i = 0; i < n; i++)
        d[i] = f[i];
    free(raw);
    free(f);
    return d;
}

static uint32_t key_u32(si_gguf *g, const char *k, uint32_t dflt)
{
    uint32_t v = dflt;
    if (si_gguf_find_key(g, k) >= 0)
        si_gguf_get_u32(g, k, &v, NULL);
    return v;
}

ref_model *ref_load(const char *path)
{
    si_gguf *g;
    si_error err;
    if (si_gguf_open(&g, path, &err) != 0) {
        fprintf(stderr, "ref: %s\n", err.msg);
        return NULL;
    }
    int fd = open(path, O_RDONLY);
    ref_model *m = calloc(1, sizeof *m);
    m->dim = key_u32(g, "llama.embedding_length", 0);
    m->n_layer = key_u32(g, "llama.block_count", 0);
    m->n_head = key_u32(g, "llama.attention.head_count", 0);
    m->n_kv = key_u32(g, "llama.attention.head_count_kv", m->n_head);
    m->hd = key_u32(g, "llama.attention.key_length", m->dim / m->n_head);
    m->n_rot = key_u32(g, "llama.rope.dimension_count", m->hd);
    m->ff = key_u32(g, "llama.feed_forward_length", 0);
    float f = 10000.0f;
    if (si_gguf_find_key(g, "llama.rope.freq_base") >= 0)
        si_gguf_get_f32(g, "llama.rope.freq_base", &f, NULL);
    m->base = f;
    f = 1e-5f;
    if (si_gguf_find_key(g, "llama.attention.layer_norm_rms_epsilon") >= 0)
        si_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f, NULL);
    m->eps = f;
    m->vocab = (uint32_t)si_gguf_find_tensor(g, "token_embd.weight")->ne[1];
    uint64_t D = m->dim, Q = (uint64_t)m->n_head * m->hd, KV = (uint64_t)m->n_kv * m->hd;
    int ok = (m->emb = load_tensor(g, fd, "token_embd.weight", D * m->vocab)) &&
             (m->out_norm = load_tensor(g, fd, "output_norm.weight", D));
    if (ok)
        m->out = si_gguf_find_tensor(g, "output.weight") ? load_tensor(g, fd, "output.weight", D * m->vocab)
                                                          : m->emb;
    ok = ok && m->out;
    if (ok && si_gguf_find_tensor(g, "rope_freqs.weight"))
        ok = (m->freq_factors = load_tensor(g, fd, "rope_freqs.weight", m->n_rot / 2)) != NULL;
    m->L = calloc(m->n_layer, sizeof *m->L);
    for (uint32_t l = 0; ok && l < m->n_layer; l++) {
        char name[64];
#define T(field, suffix, n)                                               \
    snprintf(name, sizeof name, "blk.%u." suffix ".weight", l);          \
    ok = ok && (m->L[l].field = load_tensor(g, fd, name, (n))) != NULL;
        T(attn_norm, "attn_norm", D)
        T(wq, "attn_q", D * Q)
        T(wk, "attn_k", D * KV)
        T(wv, "attn_v", D * KV)
        T(wo, "attn_output", Q * D)
        T(ffn_norm, "ffn_norm", D)
        T(w1, "ffn_gate", D * m->ff)
        T(w3, "ffn_up", D * m->ff)
        T(w2, "ffn_down", (uint64_t)m->ff * D)
#undef T
    }
    close(fd);
    si_gguf_close(g);
    if (!ok) {
        ref_free(m);
        return NULL;
    }
    return m;
}

void ref_free(ref_model *m)
{
    if (!m)
        return;
    for (uint32_t l = 0; m->L && l < m->n_layer; l++) {
        ref_layer *L = &m->L[l];
        free(L->attn_norm), free(L->wq), free(L->wk), free(L->wv), free(L->wo);
        free(L->ffn_norm), free(L->w1), free(L->w3), free(L->w2);
    }
    if (m->out != m->emb)
        free(m->out);
    free(m->emb), free(m->out_norm), free(m->freq_factors), free(m->L), free(m);
}

uint32_t ref_n_vocab(const ref_model *m) { return m->vocab; }

/* out[r] = sum_c W[r][c] x[c], W row-major [rows][cols] (GGUF ne[0] = cols). */
static void matvec(double *out, const double *W, const double *x, uint64_t rows, uint64_t cols)
{
    for (uint64_t r = 0; r < rows; r++) {
        double s = 0;
        for (uint64_t c = 0; c < cols; c++)
            s += W[r * cols + c] * x[c];
        out[r] = s;
    }
}

static void rmsnorm(double *out, const double *x, const double *w, uint32_t n, double eps)
{
    double ss = 0;
    for (uint32_t i = 0; i < n; i++)
        ss += x[i] * x[i];
    double s = 1.0 / sqrt(ss / n + eps);
    for (uint32_t i = 0; i < n; i++)
        out[i] = x[i] * s * w[i];
}

static void rotate(const ref_model *m, double *v, uint32_t pos)
{
    for (uint32_t i = 0; i < m->n_rot / 2; i++) {
        double theta = pos * pow(m->base, -2.0 * i / m->n_rot);
        if (m->freq_factors)
            theta /= m->freq_factors[i];
        double c = cos(theta), s = sin(theta), a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * c - b * s;
        v[2 * i + 1] = a * s + b * c;
    }
}

int ref_forward(ref_model *m, const int32_t *ids, uint32_t n, float *logits)
{
    uint32_t D = m->dim, Q = m->n_head * m->hd, KV = m->n_kv * m->hd, F = m->ff, hd = m->hd;
    double *x = malloc(D * sizeof *x), *xb = malloc((D > Q ? D : Q) * sizeof *xb);
    double *q = malloc(Q * sizeof *q), *att = malloc(Q * sizeof *att), *o = malloc(D * sizeof *o);
    double *h1 = malloc(F * sizeof *h1), *h3 = malloc(F * sizeof *h3), *lg = malloc(m->vocab * sizeof *lg);
    double *kc = malloc((size_t)m->n_layer * n * KV * sizeof *kc), *vc = malloc((size_t)m->n_layer * n * KV * sizeof *vc);
    double *sc = malloc(n * sizeof *sc);
    for (uint32_t p = 0; p < n; p++) {
        memcpy(x, m->emb + (size_t)ids[p] * D, D * sizeof *x);
        for (uint32_t l = 0; l < m->n_layer; l++) {
            ref_layer *L = &m->L[l];
            double *k = kc + ((size_t)l * n + p) * KV, *v = vc + ((size_t)l * n + p) * KV;
            rmsnorm(xb, x, L->attn_norm, D, m->eps);
            matvec(q, L->wq, xb, Q, D);
            matvec(k, L->wk, xb, KV, D);
            matvec(v, L->wv, xb, KV, D);
            for (uint32_t h = 0; h < m->n_head; h++)
                rotate(m, q + h * hd, p);
            for (uint32_t h = 0; h < m->n_kv; h++)
                rotate(m, k + h * hd, p);
            for (uint32_t h = 0; h < m->n_head; h++) {
                uint32_t kvh = h / (m->n_head / m->n_kv);
                double mx = -1e300, sum = 0;
                for (uint32_t t = 0; t <= p; t++) {
                    const double *kt = kc + ((size_t)l * n + t) * KV + kvh * hd;
                    double s = 0;
                    for (uint32_t i = 0; i < hd; i++)
                        s += q[h * hd + i] * kt[i];
                    sc[t] = s / sqrt((double)hd);
                    mx = sc[t] > mx ? sc[t] : mx;
                }
                for (uint32_t t = 0; t <= p; t++)
                    sum += (sc[t] = exp(sc[t] - mx));
                for (uint32_t i = 0; i < hd; i++) {
                    double a = 0;
                    for (uint32_t t = 0; t <= p; t++)
                        a += sc[t] / sum * vc[((size_t)l * n + t) * KV + kvh * hd + i];
                    att[h * hd + i] = a;
                }
            }
            matvec(o, L->wo, att, D, Q);
            for (uint32_t i = 0; i < D; i++)
                x[i] += o[i];
            rmsnorm(xb, x, L->ffn_norm, D, m->eps);
            matvec(h1, L->w1, xb, F, D);
            matvec(h3, L->w3, xb, F, D);
            for (uint32_t i = 0; i < F; i++)
                h1[i] = h1[i] / (1 + exp(-h1[i])) * h3[i];
            matvec(o, L->w2, h1, D, F);
            for (uint32_t i = 0; i < D; i++)
                x[i] += o[i];
        }
        rmsnorm(xb, x, m->out_norm, D, m->eps);
        matvec(lg, m->out, xb, m->vocab, D);
        for (uint32_t i = 0; i < m->vocab; i++)
            logits[(size_t)p * m->vocab + i] = (float)lg[i];
    }
    free(x), free(xb), free(q), free(att), free(o), free(h1), free(h3), free(lg), free(kc), free(vc), free(sc);
    return 0;
}
