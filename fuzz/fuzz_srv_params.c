/* stream-server: a request body (JSON) to sampling settings (srv_params_parse), as
 * /v1/completions (first byte even) or /v1/chat/completions (odd) parse it. */
#include "../src/serve/serve_internal.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool chat = data[0] & 1;
    srv_params p;
    char msg[512];
    const char *param = NULL;
    memset(&p, 0, sizeof p);
    msg[0] = 0;
    if (srv_params_parse(&p, (const char *)data + 1, size - 1, chat, 512, msg, sizeof msg, &param) != 0) {
        if (!msg[0])
            abort(); /* a 400 always says why */
    } else {
        for (uint32_t i = 0; i < p.n_prompt_ids; i++)
            if (p.prompt_ids[i] < 0 || p.prompt_ids[i] >= 512)
                abort();
    }
    srv_params_free(&p);
    return 0;
}
