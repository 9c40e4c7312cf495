/* stream-infer --batch-file: one line of the JSONL file through the line parser
 * (tools/batch_file.c si_batch_parse_line), with the Llama 3 vocabulary for text
 * prompts. */
#include "../tools/batch_file.h"
#include "fuzz_util.h"
#include "streaminfer/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static si_tokenizer *tok;
    if (!tok) {
        si_gguf *g;
        si_error e;
        if (si_gguf_open(&g, fz_fixture("tokenizer/llama3-vocab.gguf"), &e) != SI_OK ||
            si_tokenizer_load(&tok, g, &e) != SI_OK) {
            fprintf(stderr, "fuzz_batch_line: %s\n", e.msg);
            abort();
        }
        si_gguf_close(g);
    }
    si_batch_defaults d = {.samp = {.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f},
                           .n_predict = 16, .add_bos = true};
    char why[768];
    int rc = si_batch_parse_line(size && data[0] == '!' ? NULL : tok, &d, (const char *)data, size, why, sizeof why);
    if (rc < 0 && (!why[0] || strlen(why) >= sizeof why))
        abort(); /* an error always says why */
    return 0;
}
