/* Chat template rendering: a role and a content (split at the first NUL of the input)
 * rendered in each format, then tokenized with special tokens parsed, as --chat and the
 * server do, on the Llama 3 vocabulary; the rendered text holds the content and ends
 * with the format's end of message; the format detection on a GGUF whose
 * tokenizer.chat_template is the input. */
#include "fuzz_util.h"
#include "streaminfer/chat.h"
#include "streaminfer/gguf.h"
#include "streaminfer/tokenizer.h"

static const si_chat formats[] = {
    {SI_CHAT_LLAMA3, "llama3", "<|eot_id|>", ""},
    {SI_CHAT_CHATML, "chatml", "<|im_end|>", "\n"},
    {SI_CHAT_ZEPHYR, "zephyr", "</s>", "\n"},
};

static si_tokenizer *tok;

static void detect(const uint8_t *data, size_t size)
{
    char *tmpl = malloc(size + 1);
    if (!tmpl)
        return;
    memcpy(tmpl, data, size);
    tmpl[size] = 0;
    si_gguf_writer *w = si_gguf_writer_new(32);
    int fd = memfd_create("chat", 0);
    si_error e;
    if (w && fd >= 0 && si_gguf_writer_set_str(w, "tokenizer.chat_template", tmpl) == 0 &&
        si_gguf_writer_finish(w, fd, &e) == SI_OK) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        si_gguf *g;
        if (si_gguf_open(&g, path, &e) == SI_OK) {
            si_chat c;
            if (si_chat_detect(&c, g, tok, &e) == SI_OK && !strstr(tmpl, "<|start_header_id|>") &&
                !strstr(tmpl, "<|im_start|>") && !strstr(tmpl, "<|assistant|>"))
                abort(); /* detected from no marker */
            si_gguf_close(g);
        }
    }
    if (fd >= 0)
        close(fd);
    si_gguf_writer_free(w);
    free(tmpl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tok) {
        si_gguf *g;
        si_error e;
        if (si_gguf_open(&g, fz_fixture("tokenizer/llama3-vocab.gguf"), &e) != SI_OK ||
            si_tokenizer_load(&tok, g, &e) != SI_OK) {
            fprintf(stderr, "fuzz_chat: %s\n", e.msg);
            abort();
        }
        si_gguf_close(g);
    }
    if (size > 4096)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    const char *role = buf, *content = memchr(buf, 0, size) && strlen(buf) < size ? buf + strlen(buf) + 1 : "";
    for (size_t f = 0; f < 3; f++) {
        char *m = si_chat_message(&formats[f], role, content);
        if (!m)
            continue;
        size_t ml = strlen(m), el = strlen(formats[f].end_of_msg) + strlen(formats[f].after_end);
        if (!strstr(m, content) || !strstr(m, role) || ml < el ||
            memcmp(m + ml - el, formats[f].end_of_msg, strlen(formats[f].end_of_msg)) != 0)
            abort();
        int32_t *ids;
        size_t n;
        si_error e;
        if (si_tokenize(tok, m, ml, true, true, &ids, &n, &e) != SI_OK)
            abort();
        free(ids);
        free(m);
    }
    detect(data, size);
    free(buf);
    return 0;
}
