/* GGUF reader: header, metadata, tensor table; then, for what it accepts as a small
 * Llama model, the model description and one forward step (pread, tiny budget). */
#include <inttypes.h>

#include "fuzz_util.h"
#include "streaminfer/gguf.h"
#include "streaminfer/llama.h"
#include "streaminfer/model.h"

static void walk(const si_gguf *g)
{
    volatile uint64_t sink = si_gguf_version(g) + si_gguf_alignment(g) + si_gguf_data_offset(g);
    for (uint64_t i = 0; i < si_gguf_n_kv(g); i++) {
        const char *key = si_gguf_key(g, i);
        si_gguf_vtype t = si_gguf_kv_type(g, i);
        si_error e;
        sink += strlen(key) + (uint64_t)t + si_gguf_kv_offset(g, i);
        if (t == SI_GGUF_ARRAY) {
            uint64_t n = si_gguf_arr_n(g, i);
            if (si_gguf_arr_type(g, i) == SI_GGUF_STRING)
                for (uint64_t j = 0; j < n && j < 64; j++) {
                    uint64_t len;
                    const char *s = si_gguf_arr_str(g, i, j, &len);
                    if (s && len)
                        sink += (unsigned char)s[len - 1];
                }
            continue;
        }
        uint32_t u32;
        uint64_t u64;
        int64_t i64;
        float f;
        double d;
        bool b;
        const char *s;
        uint64_t len;
        if (si_gguf_get_u32(g, key, &u32, &e) == SI_OK)
            sink += u32;
        if (si_gguf_get_u64(g, key, &u64, &e) == SI_OK)
            sink += u64;
        if (si_gguf_get_i64(g, key, &i64, &e) == SI_OK)
            sink += (uint64_t)i64;
        if (si_gguf_get_f32(g, key, &f, &e) == SI_OK)
            sink += (uint64_t)(f == f);
        if (si_gguf_get_f64(g, key, &d, &e) == SI_OK)
            sink += (uint64_t)(d == d);
        if (si_gguf_get_bool(g, key, &b, &e) == SI_OK)
            sink += b;
        if (si_gguf_get_str(g, key, &s, &len, &e) == SI_OK && len)
            sink += (unsigned char)s[len - 1];
        if (si_gguf_find_key(g, key) < 0)
            abort(); /* a key the reader lists must be found */
    }
    for (uint64_t i = 0; i < si_gguf_n_tensors(g); i++) {
        const si_gguf_tensor *t = si_gguf_tensor_at(g, i);
        if (si_gguf_find_tensor(g, t->name) == NULL)
            abort();
    }
    (void)sink;
}

/* One step of a model small enough to run in a fraction of a millisecond. */
static void step(const char *path, const si_gguf *g)
{
    si_llama_desc d;
    si_error e;
    if (si_llama_desc_from_gguf(&d, g, &e) != SI_OK)
        return;
    si_llama_hparams hp = d.hp;
    si_llama_desc_free(&d);
    if (hp.n_embd > 256 || hp.n_layer > 2 || hp.n_ff > 1024 || hp.n_vocab > 1024 || hp.n_head > 16 ||
        (uint64_t)hp.n_head * hp.head_dim > 1024)
        return;
    si_llama_opts o = {.io = {.kind = SI_IO_PREAD, .direct = SI_DIRECT_OFF}, .mem_budget = 64u << 20, .n_ctx = 8};
    si_llama *m;
    if (si_llama_open(&m, path, &o, &e) != SI_OK)
        return;
    float *logits = malloc(sizeof(float) * hp.n_vocab);
    int32_t ids[2] = {0, (int32_t)(hp.n_vocab - 1)};
    if (logits)
        (void)si_llama_eval(m, ids, 2, false, logits, &e);
    free(logits);
    si_llama_close(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fz_memfile(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    si_gguf *g;
    si_error e;
    if (si_gguf_open(&g, path, &e) == SI_OK) {
        walk(g);
        step(path, g);
        si_gguf_close(g);
    }
    close(fd);
    return 0;
}
