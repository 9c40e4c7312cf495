/* Chat formats: how a conversation becomes the text the model was trained on.
 *
 * The format is chosen from the GGUF's tokenizer.chat_template when it is a known
 * one, else Llama 3 Instruct when the vocabulary has its header tokens. Each turn is
 * rendered on its own, so a conversation only ever appends: the KV cache of earlier
 * turns stays valid and only the new turn's tokens are evaluated. */
#ifndef STREAMINFER_CHAT_H
#define STREAMINFER_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "streaminfer/error.h"
#include "streaminfer/gguf.h"
#include "streaminfer/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum si_chat_format {
    SI_CHAT_LLAMA3 = 1, /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    SI_CHAT_CHATML = 2, /* <|im_start|>role\n...<|im_end|>\n */
    SI_CHAT_ZEPHYR = 3, /* <|role|>\n...</s>\n (TinyLlama chat) */
} si_chat_format;

typedef struct si_chat {
    si_chat_format format;
    const char *name;       /* "llama3", "chatml", "zephyr" */
    const char *end_of_msg; /* text that closes a message: "<|eot_id|>" */
    const char *after_end;  /* what follows it before the next header: "", "\n" */
} si_chat;

/* Choose the format for a model; a clear error when it has no known one. */
int si_chat_detect(si_chat *chat, const si_gguf *g, const si_tokenizer *tok, si_error *err);

/* Text of one complete message (header, content, end of message). */
char *si_chat_message(const si_chat *chat, const char *role, const char *content);
/* Text that asks the model for the assistant's message (its header). */
const char *si_chat_generation_prompt(const si_chat *chat);

#ifdef __cplusplus
}
#endif
#endif
