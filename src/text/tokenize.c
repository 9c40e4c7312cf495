/* si_tokenize: special-token partitioning, then the vocabulary's own encoder on each
 * stretch of plain text. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

int si_idvec_push(si_idvec *v, int32_t id)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->v, cap * sizeof *p);
        if (!p)
            return SI_ENOMEM;
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = id;
    return 0;
}

/* A stretch of the input: plain text (tok < 0) or one special token. */
typedef struct frag {
    size_t off, len;
    int32_t tok;
} frag;

typedef struct fragvec {
    frag *v;
    size_t n, cap;
} fragvec;

static int frag_push(fragvec *f, size_t off, size_t len, int32_t tok)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        frag *p = realloc(f->v, cap * sizeof *p);
        if (!p)
            return SI_ENOMEM;
        f->v = p;
        f->cap = cap;
    }
    f->v[f->n++] = (frag){off, len, tok};
    return 0;
}

/* Split every plain fragment at each occurrence of token id (leftmost first,
 * non-overlapping), as llama.cpp's tokenizer_st_partition does for one token. */
static int split_on(const si_tokenizer *t, const char *text, int32_t id, fragvec *in,
                    fragvec *outv)
{
    const char *s = t->text + t->off[id];
    size_t sl = si_tok_len(t, (uint32_t)id);
    outv->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        frag f = in->v[i];
        if (f.tok >= 0 || f.len < sl) {
            SI_TRY(frag_push(outv, f.off, f.len, f.tok));
            continue;
        }
        size_t pos = f.off, end = f.off + f.len;
        for (;;) {
            const char *hit = memmem(text + pos, end - pos, s, sl);
            if (!hit)
                break;
            size_t h = (size_t)(hit - text);
            if (h > pos)
                SI_TRY(frag_push(outv, pos, h - pos, -1));
            SI_TRY(frag_push(outv, h, sl, id));
            pos = h + sl;
        }
        if (pos < end)
            SI_TRY(frag_push(outv, pos, end - pos, -1));
    }
    return 0;
}

static int partition(const si_tokenizer *t, const char *text, size_t len, bool parse_special,
                     fragvec *fr)
{
    fragvec tmp = {0};
    int rc = frag_push(fr, 0, len, -1);
    for (uint32_t k = 0; k < t->n_special && rc == 0; k++) {
        int32_t id = t->special[k];
        /* user-defined tokens are always matched; control/unknown only on request */
        if (!parse_special && t->type[id] != SI_TOKEN_USER_DEFINED)
            continue;
        rc = split_on(t, text, id, fr, &tmp);
        fragvec x = *fr;
        *fr = tmp;
        tmp = x;
    }
    free(tmp.v);
    return rc;
}

static int encode_all(const si_tokenizer *t, const char *text, size_t len, bool add_bos,
                      bool parse_special, si_idvec *out, si_error *err)
{
    fragvec fr = {0};
    int rc = 0;
    if (add_bos && t->bos >= 0)
        rc = si_idvec_push(out, t->bos);
    if (rc == 0 && len > 0)
        rc = partition(t, text, len, parse_special, &fr);
    bool prev_special = true; /* SPM: the first fragment gets the space prefix */
    for (size_t i = 0; i < fr.n && rc == 0; i++) {
        const frag *f = &fr.v[i];
        if (f->tok >= 0) {
            rc = si_idvec_push(out, f->tok);
            prev_special = true;
        } else if (t->kind == SI_VOCAB_BPE) {
            rc = si_bpe_encode(t, text + f->off, f->len, out, err);
        } else {
            rc = si_spm_encode(t, text + f->off, f->len, t->add_space_prefix && prev_special,
                               out, err);
            prev_special = false;
        }
    }
    free(fr.v);
    if (rc == SI_ENOMEM)
        si_errorf(err, SI_ENOMEM, "out of memory tokenizing %zu bytes", len);
    return rc;
}

int si_tokenize(const si_tokenizer *t, const char *text, size_t len, bool add_bos,
                bool parse_special, int32_t **ids, size_t *n_ids, si_error *err)
{
    *ids = NULL;
    *n_ids = 0;
    SI_CHECK(!t || (!text && len > 0), err, SI_EINVAL, "si_tokenize: NULL argument");
    si_idvec out = {0};
    int rc = encode_all(t, text, len, add_bos, parse_special, &out, err);
    if (rc < 0) {
        free(out.v);
        return rc;
    }
    *ids = out.v;
    *n_ids = out.n;
    return 0;
}

int si_parse_ids(const char *text, int32_t **ids, size_t *n_ids, si_error *err)
{
    size_t cap = 0, n = 0;
    int32_t *out = NULL;
    for (const char *p = text;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && !strchr(" ,\t\n\r", *end))) {
            free(out);
            return si_errorf(err, SI_EINVAL, "'%.20s' is not a token id", p);
        }
        if (n == cap) {
            int32_t *t = realloc(out, (cap = cap ? 2 * cap : 64) * sizeof *out);
            if (!t) {
                free(out);
                return si_errorf(err, SI_ENOMEM, "out of memory for %zu token ids", n);
            }
            out = t;
        }
        out[n++] = (int32_t)v;
        p = end;
    }
    *ids = out;
    *n_ids = n;
    return SI_OK;
}
