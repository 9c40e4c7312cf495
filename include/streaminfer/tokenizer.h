/* Tokenizers read from GGUF metadata, matching llama.cpp (and Hugging Face).
 *
 * Two vocabulary kinds:
 *  - `tokenizer.ggml.model = gpt2`: byte-level BPE. Supported pre-tokenizers
 *    (`tokenizer.ggml.pre`): `llama-bpe` / `llama3` / `llama-v3` (the Llama 3 regex,
 *    whole-word lookup before merging). Any other or a missing `pre` is refused
 *    with SI_EUNSUPPORTED rather than tokenized differently from llama.cpp.
 *  - `tokenizer.ggml.model = llama`: SentencePiece (Llama 2, TinyLlama): a space
 *    prefix, ' ' -> U+2581, best-score bigram merges, <0xNN> byte fallback.
 *    A vocabulary lacking some <0xNN> tokens still loads; where the fallback needs a
 *    missing one, the one-byte token is used if there is one (as llama.cpp), else one
 *    <unk> per character, else si_tokenize fails with SI_EUNSUPPORTED.
 *
 * Load-time checks (SI_EFORMAT, naming the key): merges naming unknown tokens (or
 * whose concatenation is no token), a gpt2 vocabulary missing one of the 256 byte
 * symbols, special ids (bos/eos/unk/sep/pad/eot/eom) >= n_vocab, non-UTF-8 token
 * text, token_type / scores length mismatches, token types outside 0..6.
 *
 * Invalid UTF-8 input: for BPE each invalid byte is tokenized as U+FFFD (as
 * llama.cpp); SPM encodes the raw bytes with byte tokens.
 *
 * Special tokens: control (type 3) and unknown (type 2) tokens are matched in text
 * only when parse_special is set; user-defined tokens (type 4) are always matched,
 * as llama.cpp (and Hugging Face's added tokens) do.
 *
 * A loaded tokenizer is immutable and owns copies of everything it needs (the GGUF
 * may be closed afterwards); it may be used from several threads at once. */
#ifndef STREAMINFER_TOKENIZER_H
#define STREAMINFER_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "streaminfer/error.h"
#include "streaminfer/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GGUF / llama.cpp token types (tokenizer.ggml.token_type). */
enum {
    SI_TOKEN_UNDEFINED = 0,
    SI_TOKEN_NORMAL = 1,
    SI_TOKEN_UNKNOWN = 2,
    SI_TOKEN_CONTROL = 3,
    SI_TOKEN_USER_DEFINED = 4,
    SI_TOKEN_UNUSED = 5,
    SI_TOKEN_BYTE = 6,
};

typedef enum si_vocab_kind {
    SI_VOCAB_BPE = 1, /* gpt2 byte-level BPE */
    SI_VOCAB_SPM = 2, /* llama SentencePiece */
} si_vocab_kind;

typedef struct si_tokenizer si_tokenizer;

/* Load and validate the vocabulary of g. Errors (SI_EFORMAT for malformed data,
 * SI_EUNSUPPORTED for a model/pre we do not implement) name the key and the file. */
int si_tokenizer_load(si_tokenizer **out, const si_gguf *g, si_error *err);
void si_tokenizer_free(si_tokenizer *t);

/* Tokenize len bytes of text (need not be NUL-terminated). On success *ids is a
 * malloc'd array of *n_ids ids (free() it; may be NULL when *n_ids is 0).
 * add_bos: prepend BOS (when the vocabulary has one). */
int si_tokenize(const si_tokenizer *t, const char *text, size_t len, bool add_bos,
                bool parse_special, int32_t **ids, size_t *n_ids, si_error *err);

si_vocab_kind si_tokenizer_kind(const si_tokenizer *t);
uint32_t si_tokenizer_n_vocab(const si_tokenizer *t);
int32_t si_tokenizer_bos(const si_tokenizer *t); /* -1 when absent */
int32_t si_tokenizer_eos(const si_tokenizer *t);
/* tokenizer.ggml.eot_token_id, else the id of "<|eot_id|>", else -1 */
int32_t si_tokenizer_eot(const si_tokenizer *t);
/* End of generation: eos, eot, eom and well-known end-of-turn control tokens. */
bool si_tokenizer_is_eog(const si_tokenizer *t, int32_t id);
/* Id of the token whose text is exactly s, or -1. */
int32_t si_tokenizer_find(const si_tokenizer *t, const char *s);
/* Raw vocabulary text of id (NUL-terminated), NULL when out of range. */
const char *si_tokenizer_text(const si_tokenizer *t, int32_t id);
int si_tokenizer_type(const si_tokenizer *t, int32_t id); /* SI_TOKEN_*, -1 if out of range */
/* Bytes the token stands for when printed (BPE byte mapping undone, U+2581 -> ' ',
 * <0xNN> -> the byte; control/unknown tokens give their text). Not NUL-terminated;
 * NULL when out of range. The bytes of one token need not be valid UTF-8. */
const char *si_tokenizer_piece(const si_tokenizer *t, int32_t id, size_t *len);
bool si_tokenizer_add_bos_default(const si_tokenizer *t);

/* ---- stream-safe detokenizer ---- */

enum {
    SI_DETOK_SPECIAL = 1u << 0,     /* print control and unknown tokens' text */
    /* SPM with a space prefix: drop one leading space of the first printed token (a
     * leading BOS does not count), as for a text that was tokenized from its start.
     * Leave it off when decoding a continuation (generated tokens). */
    SI_DETOK_STRIP_SPACE = 1u << 1,
};

typedef struct si_detok si_detok;

si_detok *si_detok_new(const si_tokenizer *t, unsigned flags);
void si_detok_free(si_detok *d);
/* Feed one id; *out / *n_out receive the bytes that are now complete UTF-8 (valid
 * until the next call on d). Bytes of an incomplete character are held back; bytes
 * that can never form a character are replaced by U+FFFD. SI_EINVAL for an id out
 * of range. */
int si_detok_push(si_detok *d, int32_t id, const char **out, size_t *n_out, si_error *err);
/* End of stream: held-back bytes come out as U+FFFD. Resets d for a new stream. */
void si_detok_flush(si_detok *d, const char **out, size_t *n_out);

/* Token ids written as decimal numbers separated by spaces, tabs, newlines or
 * commas ("500 46 77"): *ids is malloc'd (free() it; NULL when *n_ids is 0). An
 * entry that is not an id in [0, 2^31) is an error quoting it. */
int si_parse_ids(const char *text, int32_t **ids, size_t *n_ids, si_error *err);

/* Whole-sequence convenience on top of si_detok: *text is malloc'd and
 * NUL-terminated (free() it). */
int si_detokenize(const si_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                  char **text, size_t *len, si_error *err);

#ifdef __cplusplus
}
#endif
#endif
