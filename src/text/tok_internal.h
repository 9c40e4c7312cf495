/* Internal layout of si_tokenizer, shared by the files of src/text. */
#ifndef SI_TOK_INTERNAL_H
#define SI_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "streaminfer/tokenizer.h"

/* A BPE merge, stored in an open-addressing table keyed by (left, right) ids. */
typedef struct si_merge {
    int32_t left, right; /* token ids; left == -1 marks an empty slot */
    int32_t result;      /* id of the concatenation */
    uint32_t rank;       /* lower merges first */
} si_merge;

struct si_tokenizer {
    si_vocab_kind kind;
    uint32_t n_vocab;

    /* token text: token i is text[off[i] .. off[i+1]-1), NUL-terminated in the pool */
    char *text;
    uint32_t *off;
    uint8_t *type;
    float *score; /* SPM only */
    uint32_t max_len;

    /* text -> id: slots hold id + 1, 0 = empty; on duplicate texts the last id wins
     * (as llama.cpp's token_to_id map). */
    uint32_t *map;
    uint32_t map_mask;

    si_merge *merges; /* BPE */
    uint32_t merge_mask;
    uint32_t n_merges;

    /* BPE: token of the byte-level symbol of each byte. SPM: <0xNN> token, or the
     * one-byte text token, or -1 (then unk, else tokenization fails). */
    int32_t byte_tok[256];
    /* BPE: UTF-8 of each byte's symbol (for the whole-word lookup) */
    char bsym[256][2];
    uint8_t bsym_len[256];

    /* SPM: every pair of adjacent characters found inside some token (packed UTF-8
     * bytes, a << 32 | b). Where the text has a pair not in this set no merge can
     * ever cross, so the text is cut there into independent pieces. */
    uint64_t *pairs;
    uint32_t pair_mask;

    /* printable bytes of each token: piece[poff[i] .. poff[i+1]) */
    char *piece;
    uint32_t *poff;

    int32_t bos, eos, eot, eom, unk;
    bool add_bos, add_space_prefix, ignore_merges;

    /* candidates for special-token partitioning, longest text first */
    int32_t *special;
    uint32_t n_special;

    uint8_t *eog; /* 1 per token that ends generation */
};

static inline uint32_t si_tok_len(const si_tokenizer *t, uint32_t id)
{
    return t->off[id + 1] - t->off[id] - 1;
}

uint64_t si_tok_hash(const void *p, size_t n);
/* id of the token with exactly this text, or -1 */
int32_t si_tok_lookup(const si_tokenizer *t, const char *s, size_t n);
/* merge of (left, right), or NULL */
const si_merge *si_tok_merge(const si_tokenizer *t, int32_t left, int32_t right);

/* Characters as SentencePiece symbols: length from the lead byte alone (as
 * llama.cpp), packed into a uint32 for the pair set. */
static inline uint32_t si_spm_char_len(uint8_t c)
{
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
}
int si_spm_build_pairs(si_tokenizer *t, si_error *err);
bool si_spm_pair_known(const si_tokenizer *t, uint64_t key);

/* Growable id vector used while tokenizing. */
typedef struct si_idvec {
    int32_t *v;
    size_t n, cap;
} si_idvec;
int si_idvec_push(si_idvec *v, int32_t id);

/* The Llama 3 pre-tokenizer: calls fn for each pre-token (byte offset and length in
 * s) in order. s must be valid UTF-8. fn's nonzero result stops the split. */
typedef int (*si_pretok_fn)(void *ctx, size_t off, size_t len);
int si_pretok_llama3(const char *s, size_t n, si_pretok_fn fn, void *ctx);
/* bit 0: \p{L}, bit 1: \p{N}, bit 2: White_Space (for tests) */
uint8_t si_pretok_class(uint32_t cp);

/* Byte-level BPE: encode one raw-text fragment. */
int si_bpe_encode(const si_tokenizer *t, const char *s, size_t n, si_idvec *out, si_error *err);
/* SentencePiece: encode one fragment (space prefix already decided by the caller). */
int si_spm_encode(const si_tokenizer *t, const char *s, size_t n, bool space_prefix,
                  si_idvec *out, si_error *err);

/* GPT-2 byte <-> unicode mapping. */
uint32_t si_bpe_byte_cp(uint8_t b);
int si_bpe_cp_byte(uint32_t cp); /* -1 when cp is not a mapped byte */

/* UTF-8 helpers */
size_t si_utf8_encode(uint32_t cp, char *out);
/* Length of the valid UTF-8 sequence at s (n bytes available), 0 when invalid or
 * truncated. *cp receives the code point. Overlongs and surrogates are invalid. */
size_t si_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

#endif
