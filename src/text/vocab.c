/* Loading and validating a vocabulary from GGUF metadata (tokenizer.ggml.*).
 *
 * Everything the tokenizer uses is copied out of the GGUF and checked once here, so
 * that tokenizing never meets an inconsistent vocabulary. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_PRE "tokenizer.ggml.pre"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_MERGES "tokenizer.ggml.merges"

/* ---- UTF-8 ---- */

size_t si_utf8_encode(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t si_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* ---- GPT-2 byte-to-unicode mapping ----
 * Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls, space,
 * DEL, NBSP, soft hyphen) are moved to U+0100.. in byte order, so every byte has a
 * visible one-character name and BPE never sees whitespace or control bytes. */

uint32_t si_bpe_byte_cp(uint8_t b)
{
    if (b <= 32)
        return 256u + b; /* 0..32 -> U+0100..U+0120 */
    if (b >= 127 && b <= 160)
        return 162u + b; /* 127..160 -> U+0121..U+0142 */
    if (b == 173)
        return 323; /* soft hyphen -> U+0143 */
    return b;
}

int si_bpe_cp_byte(uint32_t cp)
{
    if (cp < 256)
        return cp <= 32 || (cp >= 127 && cp <= 160) || cp == 173 ? -1 : (int)cp;
    if (cp <= 288)
        return (int)cp - 256;
    if (cp <= 322)
        return (int)cp - 162;
    return cp == 323 ? 173 : -1;
}

/* ---- hash tables ---- */

uint64_t si_tok_hash(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        s += 8, n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

int32_t si_tok_lookup(const si_tokenizer *t, const char *s, size_t n)
{
    if (n == 0 || n > t->max_len)
        return -1;
    uint32_t i = (uint32_t)si_tok_hash(s, n) & t->map_mask;
    for (;;) {
        uint32_t v = t->map[i];
        if (v == 0)
            return -1;
        uint32_t id = v - 1;
        if (si_tok_len(t, id) == n && memcmp(t->text + t->off[id], s, n) == 0)
            return (int32_t)id;
        i = (i + 1) & t->map_mask;
    }
}

static uint32_t pair_hash(int32_t a, int32_t b)
{
    uint64_t h = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

const si_merge *si_tok_merge(const si_tokenizer *t, int32_t left, int32_t right)
{
    if (!t->merges)
        return NULL;
    uint32_t i = pair_hash(left, right) & t->merge_mask;
    for (;;) {
        const si_merge *m = &t->merges[i];
        if (m->left < 0)
            return NULL;
        if (m->left == left && m->right == right)
            return m;
        i = (i + 1) & t->merge_mask;
    }
}

static uint32_t table_size(uint64_t n)
{
    uint32_t s = 16;
    while (s < n * 2)
        s <<= 1;
    return s;
}

/* ---- loading ---- */

static int load_tokens(si_tokenizer *t, const si_gguf *g, si_error *err)
{
    const char *path = si_gguf_path(g);
    int64_t ki = si_gguf_find_key(g, KEY_TOKENS);
    SI_CHECK(ki < 0, err, SI_EFORMAT, "%s: no %s in the vocabulary", path, KEY_TOKENS);
    SI_CHECK(si_gguf_kv_type(g, (uint64_t)ki) != SI_GGUF_ARRAY ||
                 si_gguf_arr_type(g, (uint64_t)ki) != SI_GGUF_STRING,
             err, SI_EFORMAT, "%s: %s is not an array of strings", path, KEY_TOKENS);
    uint64_t n = si_gguf_arr_n(g, (uint64_t)ki);
    SI_CHECK(n == 0 || n > INT32_MAX / 2, err, SI_EFORMAT, "%s: %s has %llu tokens", path,
             KEY_TOKENS, (unsigned long long)n);
    t->n_vocab = (uint32_t)n;

    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = 0;
        SI_CHECK(!si_gguf_arr_str(g, (uint64_t)ki, i, &len), err, SI_EFORMAT,
                 "%s: %s[%llu] unreadable", path, KEY_TOKENS, (unsigned long long)i);
        total += len + 1;
    }
    SI_CHECK(total > UINT32_MAX / 2, err, SI_EFORMAT, "%s: %s text too large", path, KEY_TOKENS);
    t->text = malloc(total);
    t->off = malloc((n + 1) * sizeof *t->off);
    SI_CHECK(!t->text || !t->off, err, SI_ENOMEM, "out of memory loading %s", KEY_TOKENS);

    uint32_t pos = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = 0;
        const char *s = si_gguf_arr_str(g, (uint64_t)ki, i, &len);
        /* Token text must be UTF-8: it is compared with UTF-8 input and printed. */
        for (uint64_t j = 0; j < len;) {
            uint32_t cp;
            size_t k = si_utf8_decode((const uint8_t *)s + j, len - j, &cp);
            SI_CHECK(k == 0, err, SI_EFORMAT,
                     "%s: %s[%llu] is not valid UTF-8 (byte %llu of its text)", path,
                     KEY_TOKENS, (unsigned long long)i, (unsigned long long)j);
            j += k;
        }
        t->off[i] = pos;
        memcpy(t->text + pos, s, len);
        t->text[pos + len] = 0;
        pos += (uint32_t)len + 1;
        if (len > t->max_len)
            t->max_len = (uint32_t)len;
    }
    t->off[n] = pos;
    return 0;
}

/* Integer array of exactly n_vocab elements (any GGUF integer type) into out. */
static int load_types(si_tokenizer *t, const si_gguf *g, si_error *err)
{
    const char *path = si_gguf_path(g);
    t->type = malloc(t->n_vocab);
    SI_CHECK(!t->type, err, SI_ENOMEM, "out of memory loading %s", KEY_TYPES);
    if (si_gguf_find_key(g, KEY_TYPES) < 0) {
        memset(t->type, SI_TOKEN_NORMAL, t->n_vocab); /* llama.cpp's default */
        return 0;
    }
    si_gguf_vtype et;
    uint64_t n;
    const void *data;
    SI_TRY(si_gguf_get_arr(g, KEY_TYPES, &et, &n, &data, err));
    SI_CHECK(n != t->n_vocab, err, SI_EFORMAT, "%s: %s has %llu entries but there are %u tokens",
             path, KEY_TYPES, (unsigned long long)n, t->n_vocab);
    for (uint64_t i = 0; i < n; i++) {
        int64_t v;
        const uint8_t *p = data;
        switch (et) {
        case SI_GGUF_INT32: { int32_t x; memcpy(&x, p + 4 * i, 4); v = x; break; }
        case SI_GGUF_UINT32: { uint32_t x; memcpy(&x, p + 4 * i, 4); v = x; break; }
        case SI_GGUF_INT8: v = (int8_t)p[i]; break;
        case SI_GGUF_UINT8: v = p[i]; break;
        case SI_GGUF_INT16: { int16_t x; memcpy(&x, p + 2 * i, 2); v = x; break; }
        case SI_GGUF_UINT16: { uint16_t x; memcpy(&x, p + 2 * i, 2); v = x; break; }
        default:
            return si_errorf(err, SI_EFORMAT, "%s: %s has element type %s, want an integer type",
                             path, KEY_TYPES, si_gguf_vtype_name(et));
        }
        SI_CHECK(v < 0 || v > SI_TOKEN_BYTE, err, SI_EFORMAT,
                 "%s: %s[%llu] = %lld is not a token type (0..6)", path, KEY_TYPES,
                 (unsigned long long)i, (long long)v);
        t->type[i] = (uint8_t)v;
    }
    return 0;
}

static int load_scores(si_tokenizer *t, const si_gguf *g, si_error *err)
{
    const char *path = si_gguf_path(g);
    t->score = calloc(t->n_vocab, sizeof *t->score);
    SI_CHECK(!t->score, err, SI_ENOMEM, "out of memory loading %s", KEY_SCORES);
    if (si_gguf_find_key(g, KEY_SCORES) < 0)
        return 0; /* llama.cpp: every score 0 */
    si_gguf_vtype et;
    uint64_t n;
    const void *data;
    SI_TRY(si_gguf_get_arr(g, KEY_SCORES, &et, &n, &data, err));
    SI_CHECK(et != SI_GGUF_FLOAT32, err, SI_EFORMAT, "%s: %s has element type %s, want float32",
             path, KEY_SCORES, si_gguf_vtype_name(et));
    SI_CHECK(n != t->n_vocab, err, SI_EFORMAT, "%s: %s has %llu entries but there are %u tokens",
             path, KEY_SCORES, (unsigned long long)n, t->n_vocab);
    memcpy(t->score, data, n * sizeof(float));
    return 0;
}

static int build_map(si_tokenizer *t, si_error *err)
{
    uint32_t size = table_size(t->n_vocab);
    t->map = calloc(size, sizeof *t->map);
    SI_CHECK(!t->map, err, SI_ENOMEM, "out of memory building the token map");
    t->map_mask = size - 1;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        uint32_t n = si_tok_len(t, id);
        if (n == 0)
            continue; /* an empty token can never be matched */
        const char *s = t->text + t->off[id];
        uint32_t i = (uint32_t)si_tok_hash(s, n) & t->map_mask;
        while (t->map[i]) {
            uint32_t o = t->map[i] - 1;
            if (si_tok_len(t, o) == n && memcmp(t->text + t->off[o], s, n) == 0)
                break; /* duplicate text: the later id replaces it */
            i = (i + 1) & t->map_mask;
        }
        t->map[i] = id + 1;
    }
    return 0;
}

/* Merges "A B" (rank = index): A, B and AB must all be tokens, so that BPE can work
 * on ids alone. The first occurrence of a pair keeps its rank. */
static int load_merges(si_tokenizer *t, const si_gguf *g, si_error *err)
{
    const char *path = si_gguf_path(g);
    int64_t ki = si_gguf_find_key(g, KEY_MERGES);
    if (ki < 0)
        return 0; /* byte-only vocabulary */
    SI_CHECK(si_gguf_kv_type(g, (uint64_t)ki) != SI_GGUF_ARRAY ||
                 si_gguf_arr_type(g, (uint64_t)ki) != SI_GGUF_STRING,
             err, SI_EFORMAT, "%s: %s is not an array of strings", path, KEY_MERGES);
    uint64_t n = si_gguf_arr_n(g, (uint64_t)ki);
    SI_CHECK(n > INT32_MAX / 4, err, SI_EFORMAT, "%s: %s has %llu entries", path, KEY_MERGES,
             (unsigned long long)n);
    uint32_t size = table_size(n);
    t->merges = malloc((size_t)size * sizeof *t->merges);
    SI_CHECK(!t->merges, err, SI_ENOMEM, "out of memory loading %s", KEY_MERGES);
    for (uint32_t i = 0; i < size; i++)
        t->merges[i].left = -1;
    t->merge_mask = size - 1;

    char *cat = malloc(2 * (size_t)t->max_len + 1);
    SI_CHECK(!cat, err, SI_ENOMEM, "out of memory loading %s", KEY_MERGES);
    int rc = 0;
    for (uint64_t r = 0; r < n && rc == 0; r++) {
        uint64_t len = 0;
        const char *s = si_gguf_arr_str(g, (uint64_t)ki, r, &len);
        /* Split at the first space after the first byte, as llama.cpp does. */
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!s || !sp) {
            rc = si_errorf(err, SI_EFORMAT, "%s: %s[%llu] = \"%.64s\" is not \"LEFT RIGHT\"",
                           path, KEY_MERGES, (unsigned long long)r, s ? s : "");
            break;
        }
        size_t la = (size_t)(sp - s), lb = len - la - 1;
        int32_t a = si_tok_lookup(t, s, la), b = si_tok_lookup(t, sp + 1, lb);
        int32_t c = -1;
        if (a >= 0 && b >= 0 && la + lb <= t->max_len) {
            memcpy(cat, s, la);
            memcpy(cat + la, sp + 1, lb);
            c = si_tok_lookup(t, cat, la + lb);
        }
        if (a < 0 || b < 0 || c < 0) {
            rc = si_errorf(err, SI_EFORMAT,
                           "%s: %s[%llu] = \"%.64s\" names an unknown token (%s)", path,
                           KEY_MERGES, (unsigned long long)r, s,
                           a < 0 ? "left part" : b < 0 ? "right part" : "their concatenation");
            break;
        }
        uint32_t i = pair_hash(a, b) & t->merge_mask;
        while (t->merges[i].left >= 0 && !(t->merges[i].left == a && t->merges[i].right == b))
            i = (i + 1) & t->merge_mask;
        if (t->merges[i].left < 0) {
            t->merges[i] = (si_merge){a, b, c, (uint32_t)r};
            t->n_merges++;
        }
    }
    free(cat);
    return rc;
}

/* Optional special id: absent -> -1; out of range -> error. */
static int load_special_id(const si_tokenizer *t, const si_gguf *g, const char *key, int32_t *out,
                           si_error *err)
{
    *out = -1;
    if (si_gguf_find_key(g, key) < 0)
        return 0;
    int64_t v;
    SI_TRY(si_gguf_get_i64(g, key, &v, err));
    if (v == -1)
        return 0; /* some converters write -1 for "none" */
    SI_CHECK(v < 0 || v >= t->n_vocab, err, SI_EFORMAT,
             "%s: %s = %lld is out of range (n_vocab %u)", si_gguf_path(g), key, (long long)v,
             t->n_vocab);
    *out = (int32_t)v;
    return 0;
}

static int load_bool(const si_gguf *g, const char *key, bool *out, si_error *err)
{
    if (si_gguf_find_key(g, key) < 0)
        return 0; /* keep the default */
    return si_gguf_get_bool(g, key, out, err);
}

static int load_specials(si_tokenizer *t, const si_gguf *g, si_error *err)
{
    int32_t sep, pad;
    SI_TRY(load_special_id(t, g, "tokenizer.ggml.bos_token_id", &t->bos, err));
    SI_TRY(load_special_id(t, g, "tokenizer.ggml.eos_token_id", &t->eos, err));
    SI_TRY(load_special_id(t, g, "tokenizer.ggml.unknown_token_id", &t->unk, err));
    SI_TRY(load_special_id(t, g, "tokenizer.ggml.seperator_token_id", &sep, err));
    SI_TRY(load_special_id(t, g, "tokenizer.ggml.padding_token_id", &pad, err));
    SI_TRY(load_special_id(t, g, "tokenizer.ggml.eot_token_id", &t->eot, err));
    SI_TRY(load_special_id(t, g, "tokenizer.ggml.eom_token_id", &t->eom, err));
    if (t->eot < 0)
        t->eot = si_tok_lookup(t, "<|eot_id|>", 10);
    if (t->eom < 0)
        t->eom = si_tok_lookup(t, "<|eom_id|>", 10);
    if (t->kind == SI_VOCAB_SPM && t->unk < 0) {
        for (uint32_t i = 0; i < t->n_vocab && t->unk < 0; i++)
            if (t->type[i] == SI_TOKEN_UNKNOWN)
                t->unk = (int32_t)i;
    }
    /* llama.cpp's defaults: SPM adds BOS; the Llama 3 pre-tokenizer too. */
    t->add_bos = t->kind == SI_VOCAB_SPM || t->ignore_merges;
    t->add_space_prefix = t->kind == SI_VOCAB_SPM;
    SI_TRY(load_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err));
    SI_TRY(load_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err));
    return 0;
}

static int cmp_special(const void *pa, const void *pb, void *ctx)
{
    const si_tokenizer *t = ctx;
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    uint32_t la = si_tok_len(t, (uint32_t)a), lb = si_tok_len(t, (uint32_t)b);
    if (la != lb)
        return la > lb ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* Tokens matched literally in text before pre-tokenizing, longest first. */
static int build_special_list(si_tokenizer *t, si_error *err)
{
    t->special = malloc(t->n_vocab * sizeof *t->special);
    t->eog = calloc(t->n_vocab, 1);
    SI_CHECK(!t->special || !t->eog, err, SI_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        int ty = t->type[i];
        if ((ty == SI_TOKEN_CONTROL || ty == SI_TOKEN_USER_DEFINED || ty == SI_TOKEN_UNKNOWN) &&
            si_tok_len(t, i) > 0)
            t->special[t->n_special++] = (int32_t)i;
    }
    qsort_r(t->special, t->n_special, sizeof *t->special, cmp_special, t);

    /* End of generation: the ids named in metadata plus well-known end-of-turn
     * tokens (llama.cpp's list), when they are control or user-defined tokens. */
    static const char *const eog_texts[] = {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>",
                                            "<end_of_turn>", "<|endoftext|>", "<EOT>",
                                            "<|end_of_text|>"};
    int32_t ids[] = {t->eos, t->eot, t->eom};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i] >= 0)
            t->eog[ids[i]] = 1;
    for (size_t i = 0; i < sizeof eog_texts / sizeof eog_texts[0]; i++) {
        int32_t id = si_tok_lookup(t, eog_texts[i], strlen(eog_texts[i]));
        if (id >= 0 && (t->type[id] == SI_TOKEN_CONTROL || t->type[id] == SI_TOKEN_USER_DEFINED))
            t->eog[id] = 1;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* "<0xNN>" -> NN, else -1 */
static int byte_token_value(const char *s, uint32_t len)
{
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* Every byte must have a token: BPE cannot encode arbitrary text otherwise. */
static int find_byte_tokens(si_tokenizer *t, const char *path, si_error *err)
{
    for (unsigned b = 0; b < 256; b++) {
        char s[8];
        size_t n;
        if (t->kind == SI_VOCAB_BPE) {
            n = si_utf8_encode(si_bpe_byte_cp((uint8_t)b), s);
            memcpy(t->bsym[b], s, n);
            t->bsym_len[b] = (uint8_t)n;
            t->byte_tok[b] = si_tok_lookup(t, s, n);
            SI_CHECK(t->byte_tok[b] < 0, err, SI_EFORMAT,
                     "%s: BPE vocabulary has no token for byte 0x%02X (symbol \"%.*s\")", path, b,
                     (int)n, s);
        } else {
            static const char hex[] = "0123456789ABCDEF";
            char h[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
            t->byte_tok[b] = si_tok_lookup(t, h, 6);
            if (t->byte_tok[b] < 0) {
                s[0] = (char)b; /* llama.cpp falls back to the one-byte text */
                t->byte_tok[b] = b < 0x80 ? si_tok_lookup(t, s, 1) : -1;
            }
        }
    }
    return 0;
}

/* What each token prints as. */
static int build_pieces(si_tokenizer *t, si_error *err)
{
    /* a piece is never longer than its text */
    t->piece = malloc(t->off[t->n_vocab] ? t->off[t->n_vocab] : 1);
    t->poff = malloc((t->n_vocab + 1) * sizeof *t->poff);
    SI_CHECK(!t->piece || !t->poff, err, SI_ENOMEM, "out of memory");
    uint32_t pos = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        const uint8_t *s = (const uint8_t *)t->text + t->off[id];
        uint32_t n = si_tok_len(t, id);
        int ty = t->type[id];
        char *o = t->piece + pos;
        t->poff[id] = pos;
        int bv = byte_token_value((const char *)s, n);
        if (ty == SI_TOKEN_BYTE && bv >= 0) {
            o[0] = (char)bv;
            pos += 1;
        } else if (ty == SI_TOKEN_NORMAL || ty == SI_TOKEN_UNDEFINED || ty == SI_TOKEN_BYTE) {
            for (uint32_t j = 0; j < n;) {
                uint32_t cp;
                size_t k = si_utf8_decode(s + j, n - j, &cp); /* validated at load */
                int b;
                if (t->kind == SI_VOCAB_BPE && (b = si_bpe_cp_byte(cp)) >= 0) {
                    *o++ = (char)b;
                } else if (t->kind == SI_VOCAB_SPM && cp == 0x2581) {
                    *o++ = ' ';
                } else {
                    memcpy(o, s + j, k); /* not a mapped byte: print as is */
                    o += k;
                }
                j += (uint32_t)k;
            }
            pos = (uint32_t)(o - t->piece);
        } else {
            memcpy(o, s, n); /* control, unknown, user-defined, unused: raw text */
            pos += n;
        }
    }
    t->poff[t->n_vocab] = pos;
    return 0;
}

static int load_all(si_tokenizer *t, const si_gguf *g, si_error *err)
{
    const char *path = si_gguf_path(g);
    const char *model = NULL, *pre = NULL;
    uint64_t len;
    SI_CHECK(si_gguf_find_key(g, KEY_MODEL) < 0, err, SI_EFORMAT, "%s: no %s: not a vocabulary",
             path, KEY_MODEL);
    SI_TRY(si_gguf_get_str(g, KEY_MODEL, &model, &len, err));
    if (strcmp(model, "gpt2") == 0)
        t->kind = SI_VOCAB_BPE;
    else if (strcmp(model, "llama") == 0)
        t->kind = SI_VOCAB_SPM;
    else
        return si_errorf(err, SI_EUNSUPPORTED,
                         "%s: %s = \"%s\" is not supported (only \"gpt2\" and \"llama\")", path,
                         KEY_MODEL, model);

    if (t->kind == SI_VOCAB_BPE) {
        /* Other pre-tokenizers split text differently; refusing is better than
         * producing ids the model was not trained on. */
        if (si_gguf_find_key(g, KEY_PRE) >= 0)
            SI_TRY(si_gguf_get_str(g, KEY_PRE, &pre, &len, err));
        SI_CHECK(!pre, err, SI_EUNSUPPORTED,
                 "%s: BPE vocabulary without %s: pre-tokenizer unknown, refusing to guess", path,
                 KEY_PRE);
        SI_CHECK(strcmp(pre, "llama-bpe") != 0 && strcmp(pre, "llama3") != 0 &&
                     strcmp(pre, "llama-v3") != 0,
                 err, SI_EUNSUPPORTED,
                 "%s: %s = \"%s\" is not supported (only the Llama 3 pre-tokenizer, llama-bpe)",
                 path, KEY_PRE, pre);
        t->ignore_merges = true;
    }

    SI_TRY(load_tokens(t, g, err));
    SI_TRY(load_types(t, g, err));
    if (t->kind == SI_VOCAB_SPM)
        SI_TRY(load_scores(t, g, err));
    SI_TRY(build_map(t, err));
    if (t->kind == SI_VOCAB_BPE)
        SI_TRY(load_merges(t, g, err));
    SI_TRY(find_byte_tokens(t, path, err));
    SI_TRY(load_specials(t, g, err));
    SI_TRY(build_special_list(t, err));
    SI_TRY(build_pieces(t, err));
    if (t->kind == SI_VOCAB_SPM)
        SI_TRY(si_spm_build_pairs(t, err));
    return 0;
}

int si_tokenizer_load(si_tokenizer **out, const si_gguf *g, si_error *err)
{
    *out = NULL;
    si_tokenizer *t = calloc(1, sizeof *t);
    SI_CHECK(!t, err, SI_ENOMEM, "out of memory");
    int rc = load_all(t, g, err);
    if (rc < 0) {
        si_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void si_tokenizer_free(si_tokenizer *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->off);
    free(t->type);
    free(t->score);
    free(t->map);
    free(t->merges);
    free(t->piece);
    free(t->poff);
    free(t->special);
    free(t->eog);
    free(t->pairs);
    free(t);
}

/* ---- accessors ---- */

si_vocab_kind si_tokenizer_kind(const si_tokenizer *t) { return t->kind; }
uint32_t si_tokenizer_n_vocab(const si_tokenizer *t) { return t->n_vocab; }
int32_t si_tokenizer_bos(const si_tokenizer *t) { return t->bos; }
int32_t si_tokenizer_eos(const si_tokenizer *t) { return t->eos; }
int32_t si_tokenizer_eot(const si_tokenizer *t) { return t->eot; }
bool si_tokenizer_add_bos_default(const si_tokenizer *t) { return t->add_bos; }

bool si_tokenizer_is_eog(const si_tokenizer *t, int32_t id)
{
    return id >= 0 && (uint32_t)id < t->n_vocab && t->eog[id];
}

int32_t si_tokenizer_find(const si_tokenizer *t, const char *s)
{
    return si_tok_lookup(t, s, strlen(s));
}

const char *si_tokenizer_text(const si_tokenizer *t, int32_t id)
{
    if (id < 0 || (uint32_t)id >= t->n_vocab)
        return NULL;
    return t->text + t->off[id];
}

int si_tokenizer_type(const si_tokenizer *t, int32_t id)
{
    if (id < 0 || (uint32_t)id >= t->n_vocab)
        return -1;
    return t->type[id];
}

const char *si_tokenizer_piece(const si_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || (uint32_t)id >= t->n_vocab)
        return NULL;
    *len = t->poff[id + 1] - t->poff[id];
    return t->piece + t->poff[id];
}
