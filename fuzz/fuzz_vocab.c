/* Vocabulary loading from a GGUF (tokenizer.* keys): load, then tokenize and detokenize
 * a few fixed strings, detokenize every id, and detect the chat format. */
#include "fuzz_util.h"
#include "streaminfer/chat.h"
#include "streaminfer/gguf.h"
#include "streaminfer/tokenizer.h"

static const char *const texts[] = {"Hello world", " <|eot_id|> <s></s> x\n\n  y", "\xE2\x96\x81\xF0\x9F\xA6\x99 'll 123",
                                    "\xFF\xC3 <0x41>"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fz_memfile(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    si_gguf *g;
    si_error e;
    if (si_gguf_open(&g, path, &e) == SI_OK) {
        si_tokenizer *t;
        if (si_tokenizer_load(&t, g, &e) == SI_OK) {
            for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
                for (int special = 0; special < 2; special++) {
                    int32_t *ids;
                    size_t n;
                    if (si_tokenize(t, texts[i], strlen(texts[i]), special, special, &ids, &n, &e) != SI_OK)
                        continue;
                    char *back;
                    size_t bl;
                    if (si_detokenize(t, ids, n, special ? SI_DETOK_SPECIAL : 0, &back, &bl, &e) == SI_OK)
                        free(back);
                    free(ids);
                }
            uint32_t nv = si_tokenizer_n_vocab(t);
            si_detok *d = si_detok_new(t, SI_DETOK_SPECIAL);
            for (uint32_t id = 0; d && id < nv && id < 4096; id++) {
                const char *out;
                size_t no;
                (void)si_detok_push(d, (int32_t)id, &out, &no, &e);
                (void)si_tokenizer_type(t, (int32_t)id);
                (void)si_tokenizer_is_eog(t, (int32_t)id);
            }
            if (d) {
                const char *out;
                size_t no;
                si_detok_flush(d, &out, &no);
                si_detok_free(d);
            }
            si_chat chat;
            if (si_chat_detect(&chat, g, t, &e) == SI_OK) {
                char *m = si_chat_message(&chat, "user", "hi");
                free(m);
            }
            si_tokenizer_free(t);
        }
        si_gguf_close(g);
    }
    close(fd);
    return 0;
}
