#include "streaminfer/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const si_chat formats[] = {
    {SI_CHAT_LLAMA3, "llama3", "<|eot_id|>", ""},
    {SI_CHAT_CHATML, "chatml", "<|im_end|>", "\n"},
    {SI_CHAT_ZEPHYR, "zephyr", "</s>", "\n"},
};

/* Marker text that identifies each format inside a Jinja chat template. */
static const char *const markers[] = {"<|start_header_id|>", "<|im_start|>", "<|assistant|>"};

int si_chat_detect(si_chat *chat, const si_gguf *g, const si_tokenizer *tok, si_error *err)
{
    const char *tmpl = NULL;
    uint64_t len = 0;
    if (si_gguf_find_key(g, "tokenizer.chat_template") >= 0)
        SI_TRY(si_gguf_get_str(g, "tokenizer.chat_template", &tmpl, &len, err));
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        bool known = tmpl ? strstr(tmpl, markers[i]) != NULL : si_tokenizer_find(tok, markers[i]) >= 0;
        /* The format's end-of-message must be a single token, or the model cannot emit it. */
        if (known && si_tokenizer_find(tok, formats[i].end_of_msg) >= 0) {
            *chat = formats[i];
            return SI_OK;
        }
    }
    return si_errorf(err, SI_EUNSUPPORTED,
                     "%s: %s; --chat knows the Llama 3, ChatML and Zephyr formats",
                     si_gguf_path(g),
                     tmpl ? "its tokenizer.chat_template is not a known chat format"
                          : "it has no tokenizer.chat_template and no Llama 3 header tokens");
}

char *si_chat_message(const si_chat *chat, const char *role, const char *content)
{
    const char *fmt = chat->format == SI_CHAT_LLAMA3   ? "<|start_header_id|>%s<|end_header_id|>\n\n%s%s%s"
                      : chat->format == SI_CHAT_CHATML ? "<|im_start|>%s\n%s%s%s"
                                                       : "<|%s|>\n%s%s%s";
    size_t n = strlen(fmt) + strlen(role) + strlen(content) + strlen(chat->end_of_msg) + strlen(chat->after_end) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, fmt, role, content, chat->end_of_msg, chat->after_end);
    return s;
}

const char *si_chat_generation_prompt(const si_chat *chat)
{
    switch (chat->format) {
    case SI_CHAT_LLAMA3: return "<|start_header_id|>assistant<|end_header_id|>\n\n";
    case SI_CHAT_CHATML: return "<|im_start|>assistant\n";
    case SI_CHAT_ZEPHYR: return "<|assistant|>\n";
    }
    return "";
}
