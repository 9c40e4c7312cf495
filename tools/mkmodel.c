/* mkmodel: write a synthetic Llama-architecture GGUF with seeded random weights.
 *
 * The weights are meaningless but valid and well scaled (activations stay O(1) through
 * many layers), so the file exercises the loader, the scheduler and every kernel type
 * at any size: a later step makes multi-GB files with it. Every row is generated from
 * its own seed (seed, tensor name, row), so contents do not depend on the tensor order
 * in the file and any single row can be recomputed (used by --favour-token).
 *
 * Writing is disk-bound: rows are generated into a reusable chunk and written in
 * multi-MB pieces through the streaming GGUF writer. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/kernels/blocks.h"
#include "streaminfer/gguf.h"

#include "si_config.h"

#define CHUNK_BYTES (8u << 20)
#define MAX_TENSORS_PER_LAYER 9

/* ---- options ---- */

enum { K_TOKEN_EMBD, K_OUTPUT, K_ATTN_Q, K_ATTN_K, K_ATTN_V, K_ATTN_OUTPUT, K_FFN_GATE, K_FFN_UP,
       K_FFN_DOWN, K_COUNT };
static const char *const kind_names[K_COUNT] = {"token_embd", "output", "attn_q", "attn_k",
                                                "attn_v", "attn_output", "ffn_gate", "ffn_up",
                                                "ffn_down"};

typedef struct opts {
    const char *out, *vocab_path;
    uint32_t dim, layers, heads, kv_heads, head_dim, ff, vocab, ctx;
    float rope_base, eps;
    uint32_t type;            /* default for 2-D weights */
    int kind_type[K_COUNT];   /* -1: use the default */
    bool tied, rope_freqs, sorted;
    uint64_t seed;
    int64_t favour;           /* -1: none */
    bool vocab_size_given;
    const char *preset;       /* --preset NAME, or NULL */
    bool type_given, dry_run;
    bool ctx_given;           /* --ctx: overrides a preset's context length too */
} opts;

/* ---- presets: the exact shapes and type mixes of real files ---- */

typedef struct preset {
    const char *name, *what;
    uint32_t dim, layers, heads, kv_heads, ff, vocab, ctx;
    float rope_base;
    bool tied, rope_freqs;
    bool fixed_types;       /* the mix below is the preset's; else --type decides */
    const char *types[K_COUNT]; /* kind -> type name (fixed_types only) */
    uint64_t tensor_bytes;  /* expected tensor data bytes (0: depends on --type) */
} preset;

static const preset presets[] = {
    {"llama3-8b-q2_k", "Meta-Llama-3-8B.Q2_K.gguf's shapes and type mix",
     4096, 32, 32, 8, 14336, 128256, 8192, 500000.0f, false, false, true,
     {[K_TOKEN_EMBD] = "Q2_K", [K_OUTPUT] = "Q6_K", [K_ATTN_Q] = "Q2_K", [K_ATTN_K] = "Q2_K",
      [K_ATTN_V] = "Q4_K", [K_ATTN_OUTPUT] = "Q3_K", [K_FFN_GATE] = "Q2_K", [K_FFN_UP] = "Q2_K",
      [K_FFN_DOWN] = "Q3_K"},
     3171295232ull},
    {"llama3-8b-q4_0", "Llama 3 8B shapes, all Q4_0 but output Q6_K",
     4096, 32, 32, 8, 14336, 128256, 8192, 500000.0f, false, false, true,
     {[K_TOKEN_EMBD] = "Q4_0", [K_OUTPUT] = "Q6_K", [K_ATTN_Q] = "Q4_0", [K_ATTN_K] = "Q4_0",
      [K_ATTN_V] = "Q4_0", [K_ATTN_OUTPUT] = "Q4_0", [K_FFN_GATE] = "Q4_0", [K_FFN_UP] = "Q4_0",
      [K_FFN_DOWN] = "Q4_0"},
     4653375488ull},
    {"llama3.2-1b", "Llama 3.2 1B shapes (tied classifier, rope_freqs), weights in --type",
     2048, 16, 32, 8, 8192, 128256, 131072, 500000.0f, true, true, false, {0}, 0},
    {"llama3.2-3b", "Llama 3.2 3B shapes (tied classifier, rope_freqs), weights in --type",
     3072, 28, 24, 8, 8192, 128256, 131072, 500000.0f, true, true, false, {0}, 0},
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: mkmodel -o FILE [options]\n"
        "Write a Llama-architecture GGUF with seeded random (valid, well-scaled) weights.\n\n"
        "  -o, --output FILE        output path (required)\n"
        "      --dim N              embedding length (default 256)\n"
        "      --layers N           block count (default 4)\n"
        "      --heads N            attention heads (default 4)\n"
        "      --kv-heads N         key/value heads, divides --heads (default 1)\n"
        "      --head-dim N         per-head dimension, even (default dim/heads)\n"
        "      --ff N               feed-forward length (default 768)\n"
        "      --vocab-size N       vocabulary size, >= 261 (default 512)\n"
        "      --ctx N              context length (llama.context_length; default 2048, or\n"
        "                           the preset's: 8192 for llama3-8b-*, 131072 for\n"
        "                           llama3.2-*; --ctx also applies to --preset)\n"
        "      --rope-base X        rope frequency base (default 500000)\n"
        "      --eps X              RMS norm epsilon (default 1e-5)\n"
        "      --type TYPE          type of all 2-D weights: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1\n"
        "                           Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K (default F32)\n"
        "      --tensor-type NAME=TYPE  override one weight kind in all layers; NAME is one of\n"
        "                           token_embd output attn_q attn_k attn_v attn_output\n"
        "                           ffn_gate ffn_up ffn_down (repeatable)\n"
        "      --tied               no output.weight (the classifier reuses token_embd)\n"
        "      --rope-freqs         add rope_freqs.weight (head_dim/2 F32 factors, 1..8)\n"
        "      --seed N             random seed (default 1); same seed, same bytes\n"
        "      --vocab FROM.gguf    copy every tokenizer.* key from FROM (sets vocab size)\n"
        "      --favour-token ID    bias the model so greedy decoding tends to produce ID\n"
        "                           (needs token_embd F32/F16/BF16; switched to F16 if unset)\n"
        "      --order compute|sorted  tensor order in the file: compute order (default) or\n"
        "                           sorted like llama.cpp's quantizer (non-layer tensors,\n"
        "                           then layer by layer, names sorted)\n"
        "      --preset NAME        the shapes (and type mix) of a real model; shape options\n"
        "                           (but --ctx) are then refused. NAME is one of:\n"
        "                             llama3-8b-q2_k  Meta-Llama-3-8B.Q2_K.gguf's mix (3.17 GB)\n"
        "                             llama3-8b-q4_0  all Q4_0 but output Q6_K (4.65 GB)\n"
        "                             llama3.2-1b     tied, needs --type\n"
        "                             llama3.2-3b     tied, needs --type\n"
        "                           with 128256 tokens (the built-in vocabulary, or --vocab\n"
        "                           with a Llama 3 vocabulary GGUF)\n"
        "      --dry-run            print the tensor list and the tensor data bytes; write\n"
        "                           nothing (-o not needed)\n"
        "  -h, --help               this text\n"
        "      --version            print the version and exit\n\n"
        "Norms are always F32. A tensor's row length must be a multiple of its type's block\n"
        "size (32 for Q4_0/Q8_0..., 256 for the K-quants).\n");
}

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mkmodel: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-' || v > max)
        die("%s: '%s' is not a number in 0..%llu", opt, s, (unsigned long long)max);
    return v;
}

static float parse_f(const char *opt, const char *s)
{
    char *end;
    float v = strtof(s, &end);
    if (end == s || *end || !isfinite(v) || v <= 0)
        die("%s: '%s' is not a positive number", opt, s);
    return v;
}

/* Types mkmodel can fill with random valid data. */
static bool can_generate(uint32_t t)
{
    switch (t) {
    case SI_TYPE_F32: case SI_TYPE_F16: case SI_TYPE_BF16: case SI_TYPE_Q4_0: case SI_TYPE_Q4_1:
    case SI_TYPE_Q5_0: case SI_TYPE_Q5_1: case SI_TYPE_Q8_0: case SI_TYPE_Q2_K: case SI_TYPE_Q3_K:
    case SI_TYPE_Q4_K: case SI_TYPE_Q5_K: case SI_TYPE_Q6_K:
        return true;
    }
    return false;
}

static uint32_t parse_type(const char *opt, const char *s)
{
    for (uint32_t t = 0; t < SI_TYPE_COUNT; t++) {
        const si_type_traits *tt = si_type_get(t);
        if (tt && strcasecmp(tt->name, s) == 0) {
            if (!can_generate(t))
                die("%s: mkmodel cannot generate type %s", opt, tt->name);
            return t;
        }
    }
    die("%s: unknown type '%s' (see --help)", opt, s);
}

static const preset *find_preset(const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name))
            return &presets[i];
    return NULL;
}

/* The preset's shapes; --tensor-type overrides still apply on top of its mix. */
static void apply_preset(opts *o, const char *shape_opt)
{
    const preset *p = find_preset(o->preset);
    if (!p) {
        char names[256] = "";
        for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     presets[i].name);
        die("--preset: unknown preset '%s' (one of: %s)", o->preset, names);
    }
    if (shape_opt)
        die("--preset %s fixes the shapes: --%s is not allowed with it", p->name, shape_opt);
    if (o->vocab_size_given && o->vocab != p->vocab)
        die("--preset %s has %u tokens: --vocab-size %u disagrees", p->name, p->vocab, o->vocab);
    if (p->fixed_types && o->type_given)
        die("--preset %s has a fixed type mix: --type is not allowed with it (use --tensor-type "
            "NAME=TYPE to change one kind)", p->name);
    if (!p->fixed_types && !o->type_given)
        die("--preset %s needs --type TYPE (the type of its 2-D weights)", p->name);
    o->dim = p->dim;
    o->layers = p->layers;
    o->heads = p->heads;
    o->kv_heads = p->kv_heads;
    o->head_dim = 0;
    o->ff = p->ff;
    o->vocab = p->vocab;
    o->vocab_size_given = true; /* --vocab must then have exactly this many tokens */
    if (!o->ctx_given) /* --ctx overrides the preset's trained context */
        o->ctx = p->ctx;
    o->rope_base = p->rope_base;
    o->tied = p->tied;
    o->rope_freqs = p->rope_freqs;
    if (p->fixed_types) {
        for (int k = 0; k < K_COUNT; k++) {
            if (o->kind_type[k] < 0 && p->types[k]) {
                char opt[64];
                snprintf(opt, sizeof opt, "--preset %s", p->name);
                o->kind_type[k] = (int)parse_type(opt, p->types[k]);
            }
        }
        /* The default type names the mix in the summary line: its most common type. */
        o->type = (uint32_t)o->kind_type[K_ATTN_Q];
    }
}

static void parse_args(opts *o, int argc, char **argv)
{
    enum { O_DIM = 256, O_LAYERS, O_HEADS, O_KVH, O_HD, O_FF, O_VOCABN, O_CTX, O_ROPE, O_EPS,
           O_TYPE, O_TT, O_TIED, O_RF, O_SEED, O_VOCAB, O_FAV, O_ORDER, O_PRESET, O_DRY };
    static const struct option lo[] = {
        {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'},
        {"dim", required_argument, 0, O_DIM}, {"layers", required_argument, 0, O_LAYERS},
        {"heads", required_argument, 0, O_HEADS}, {"kv-heads", required_argument, 0, O_KVH},
        {"head-dim", required_argument, 0, O_HD}, {"ff", required_argument, 0, O_FF},
        {"vocab-size", required_argument, 0, O_VOCABN}, {"ctx", required_argument, 0, O_CTX},
        {"rope-base", required_argument, 0, O_ROPE}, {"eps", required_argument, 0, O_EPS},
        {"type", required_argument, 0, O_TYPE}, {"tensor-type", required_argument, 0, O_TT},
        {"tied", no_argument, 0, O_TIED}, {"rope-freqs", no_argument, 0, O_RF},
        {"seed", required_argument, 0, O_SEED}, {"vocab", required_argument, 0, O_VOCAB},
        {"favour-token", required_argument, 0, O_FAV}, {"order", required_argument, 0, O_ORDER},
        {"preset", required_argument, 0, O_PRESET}, {"dry-run", no_argument, 0, O_DRY},
        {0, 0, 0, 0}};
    *o = (opts){.dim = 256, .layers = 4, .heads = 4, .kv_heads = 1, .ff = 768, .vocab = 512,
                .ctx = 2048, .rope_base = 500000.0f, .eps = 1e-5f, .type = SI_TYPE_F32,
                .seed = 1, .favour = -1};
    for (int k = 0; k < K_COUNT; k++)
        o->kind_type[k] = -1;
    const uint64_t M = 1u << 24; /* generous bound on any single dimension */
    int c;
    const char *shape_opt = NULL; /* a shape option given (refused with --preset) */
    while ((c = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case O_DIM: case O_LAYERS: case O_HEADS: case O_KVH: case O_HD: case O_FF:
        case O_ROPE: case O_TIED: case O_RF:
            for (const struct option *p = lo; p->name; p++)
                if (p->val == c)
                    shape_opt = p->name;
            break;
        }
        switch (c) {
        case 'o': o->out = a; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("mkmodel (streaminfer) %s\n", SI_VERSION); exit(0);
        case O_DIM: o->dim = (uint32_t)parse_u64("--dim", a, M); break;
        case O_LAYERS: o->layers = (uint32_t)parse_u64("--layers", a, 4096); break;
        case O_HEADS: o->heads = (uint32_t)parse_u64("--heads", a, 4096); break;
        case O_KVH: o->kv_heads = (uint32_t)parse_u64("--kv-heads", a, 4096); break;
        case O_HD: o->head_dim = (uint32_t)parse_u64("--head-dim", a, 65536); break;
        case O_FF: o->ff = (uint32_t)parse_u64("--ff", a, M); break;
        case O_VOCABN: o->vocab = (uint32_t)parse_u64("--vocab-size", a, M); o->vocab_size_given = true; break;
        case O_CTX: o->ctx = (uint32_t)parse_u64("--ctx", a, M); o->ctx_given = true; break;
        case O_ROPE: o->rope_base = parse_f("--rope-base", a); break;
        case O_EPS: o->eps = parse_f("--eps", a); break;
        case O_TYPE: o->type = parse_type("--type", a); o->type_given = true; break;
        case O_PRESET: o->preset = a; break;
        case O_DRY: o->dry_run = true; break;
        case O_TT: {
            const char *eq = strchr(a, '=');
            if (!eq)
                die("--tensor-type: expected NAME=TYPE, got '%s'", a);
            int k;
            for (k = 0; k < K_COUNT; k++)
                if (strlen(kind_names[k]) == (size_t)(eq - a) && !strncmp(kind_names[k], a, (size_t)(eq - a)))
                    break;
            if (k == K_COUNT)
                die("--tensor-type: unknown tensor name '%.*s' (norms are always F32; see --help)",
                    (int)(eq - a), a);
            o->kind_type[k] = (int)parse_type("--tensor-type", eq + 1);
            break;
        }
        case O_TIED: o->tied = true; break;
        case O_RF: o->rope_freqs = true; break;
        case O_SEED: o->seed = parse_u64("--seed", a, UINT64_MAX); break;
        case O_VOCAB: o->vocab_path = a; break;
        case O_FAV: o->favour = (int64_t)parse_u64("--favour-token", a, M); break;
        case O_ORDER:
            if (!strcmp(a, "sorted"))
                o->sorted = true;
            else if (strcmp(a, "compute"))
                die("--order: expected compute or sorted, got '%s'", a);
            break;
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc)
        die("unexpected argument '%s' (see --help)", argv[optind]);
    if (!o->out && !o->dry_run)
        die("no output file: use -o FILE (see --help)");
    if (o->preset)
        apply_preset(o, shape_opt);
}

static void check_shapes(opts *o)
{
    if (!o->dim || !o->layers || !o->heads || !o->kv_heads || !o->ff || !o->ctx)
        die("--dim, --layers, --heads, --kv-heads, --ff and --ctx must be positive");
    if (o->heads % o->kv_heads)
        die("--kv-heads %u must divide --heads %u", o->kv_heads, o->heads);
    if (!o->head_dim) {
        if (o->dim % o->heads)
            die("--dim %u is not a multiple of --heads %u (or give --head-dim)", o->dim, o->heads);
        o->head_dim = o->dim / o->heads;
    }
    if (o->head_dim % 2)
        die("head dimension %u must be even (rope rotates pairs)", o->head_dim);
    if ((uint64_t)o->heads * o->head_dim > (1u << 24))
        die("heads * head_dim too large");
    if (o->favour >= 0) {
        /* The bias goes through the embedding rows, which must be writable as floats. */
        int *t = &o->kind_type[K_TOKEN_EMBD];
        uint32_t et = *t >= 0 ? (uint32_t)*t : o->type;
        if (et != SI_TYPE_F32 && et != SI_TYPE_F16 && et != SI_TYPE_BF16) {
            if (*t >= 0)
                die("--favour-token needs token_embd in F32, F16 or BF16");
            *t = SI_TYPE_F16;
        }
    }
}

/* ---- random numbers: splitmix64 seeds an xorshift64* stream per row ---- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static rng row_rng(uint64_t seed, const char *name, uint64_t row)
{
    uint64_t s = seed ^ fnv(name) ^ (row * 0xD1B54A32D192ED03ull);
    rng r = {splitmix(&s)};
    if (!r.s)
        r.s = 1;
    return r;
}

/* uniform in [-1, 1) */
static float rng_sym(rng *r)
{
    return (float)((int64_t)(rng_next(r) >> 40) - (1 << 23)) * 0x1p-23f;
}

static void rng_fill(rng *r, void *dst, size_t n)
{
    uint8_t *p = dst;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t v = rng_next(r);
        memcpy(p, &v, 8);
    }
    if (n) {
        uint64_t v = rng_next(r);
        memcpy(p, &v, n);
    }
}

/* ---- rows of each type ---- */

static uint16_t h16(float f) { return si_fp32_to_fp16(f); }

static uint16_t bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16); /* round to nearest even */
}

/* Store n floats as an F32/F16/BF16 row. */
static void store_floats(uint32_t type, const float *x, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        if (type == SI_TYPE_F32) {
            memcpy(p + 4 * i, &x[i], 4);
        } else {
            uint16_t h = type == SI_TYPE_F16 ? h16(x[i]) : bf16(x[i]);
            memcpy(p + 2 * i, &h, 2);
        }
    }
}

/* Standard deviation of the dequantized value per unit of the block scale d, when all
 * quant bits (and sub-block scales/mins) are uniform random and the mins are set so
 * the values centre on 0. Derived from the dequantization formulas in blocks.h. */
static float quant_spread(uint32_t t)
{
    switch (t) {
    case SI_TYPE_Q4_0: case SI_TYPE_Q4_1: return 4.61f;   /* 16 levels */
    case SI_TYPE_Q5_0: case SI_TYPE_Q5_1: return 9.23f;   /* 32 levels */
    case SI_TYPE_Q8_0: return 73.9f;                      /* int8 */
    case SI_TYPE_Q2_K: return 13.9f;                      /* 4-bit sc * 2-bit q - min */
    case SI_TYPE_Q3_K: return 43.3f;                      /* (sc-32) * (q-4) */
    case SI_TYPE_Q4_K: return 258.0f;                     /* 6-bit sc * 4-bit q - min */
    case SI_TYPE_Q5_K: return 527.0f;                     /* 6-bit sc * 5-bit q - min */
    case SI_TYPE_Q6_K: return 1365.0f;                    /* int8 sc * (q-32) */
    }
    return 1.0f;
}

/* One row of n random values with standard deviation `sd`, in `type`. For quantized
 * types the bits are random and only the fp16 scales are chosen. */
static void gen_row(uint32_t type, int64_t n, float sd, rng *r, void *dst, float *tmp)
{
    if (type == SI_TYPE_F32 || type == SI_TYPE_F16 || type == SI_TYPE_BF16) {
        const float a = sd * 1.7320508f; /* uniform [-a, a) has std a/sqrt(3) */
        for (int64_t i = 0; i < n; i++)
            tmp[i] = a * rng_sym(r);
        store_floats(type, tmp, dst, n);
        return;
    }
    const si_type_traits *tt = si_type_get(type);
    const float d = sd / quant_spread(type);
    uint8_t *p = dst;
    int64_t nb = n / tt->blck_size;
    rng_fill(r, p, (size_t)nb * tt->type_size);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *q = p + (size_t)b * tt->type_size;
        switch (type) {
        case SI_TYPE_Q4_0: { blk_q4_0 k; memcpy(&k, q, sizeof k); k.d = h16(d); memcpy(q, &k, sizeof k); break; }
        case SI_TYPE_Q5_0: { blk_q5_0 k; memcpy(&k, q, sizeof k); k.d = h16(d); memcpy(q, &k, sizeof k); break; }
        case SI_TYPE_Q8_0: { blk_q8_0 k; memcpy(&k, q, sizeof k); k.d = h16(d); memcpy(q, &k, sizeof k); break; }
        case SI_TYPE_Q4_1: { blk_q4_1 k; memcpy(&k, q, sizeof k); k.d = h16(d); k.m = h16(-7.5f * d); memcpy(q, &k, sizeof k); break; }
        case SI_TYPE_Q5_1: { blk_q5_1 k; memcpy(&k, q, sizeof k); k.d = h16(d); k.m = h16(-15.5f * d); memcpy(q, &k, sizeof k); break; }
        /* dmin centres the values: mean(sc*q) = mean(m) * dmin / d */
        case SI_TYPE_Q2_K: { blk_q2_K k; memcpy(&k, q, sizeof k); k.d = h16(d); k.dmin = h16(1.5f * d); memcpy(q, &k, sizeof k); break; }
        case SI_TYPE_Q3_K: { blk_q3_K k; memcpy(&k, q, sizeof k); k.d = h16(d); memcpy(q, &k, sizeof k); break; }
        case SI_TYPE_Q4_K: { blk_q4_K k; memcpy(&k, q, sizeof k); k.d = h16(d); k.dmin = h16(7.5f * d); memcpy(q, &k, sizeof k); break; }
        case SI_TYPE_Q5_K: { blk_q5_K k; memcpy(&k, q, sizeof k); k.d = h16(d); k.dmin = h16(15.5f * d); memcpy(q, &k, sizeof k); break; }
        case SI_TYPE_Q6_K: { blk_q6_K k; memcpy(&k, q, sizeof k); k.d = h16(d); memcpy(q, &k, sizeof k); break; }
        }
    }
}

/* ---- the tensor list ---- */

typedef enum { G_MATRIX, G_NORM, G_ROPE_FREQS } gen_kind;

typedef struct tinfo {
    char name[64];
    uint32_t n_dims;
    uint64_t ne[2];
    uint32_t type;
    gen_kind gen;
    int kind; /* K_* for matrices, -1 otherwise */
} tinfo;

typedef struct model {
    opts o;
    tinfo *t;
    int n;
    float *favour_dir; /* unit-rms direction injected into every embedding row, or NULL */
    float favour_gain;
} model;

static uint32_t kind_type(const opts *o, int k)
{
    return o->kind_type[k] >= 0 ? (uint32_t)o->kind_type[k] : o->type;
}

static void add(model *m, const char *name, uint64_t ne0, uint64_t ne1, int kind, gen_kind g)
{
    tinfo *t = &m->t[m->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->n_dims = ne1 ? 2 : 1;
    t->gen = g;
    t->kind = kind;
    t->type = kind >= 0 ? kind_type(&m->o, kind) : SI_TYPE_F32;
    const si_type_traits *tt = si_type_get(t->type);
    if (ne0 % (uint64_t)tt->blck_size)
        die("%s: row length %llu is not a multiple of %s's block size %lld; change the shape or "
            "use --tensor-type %s=...", name, (unsigned long long)ne0, tt->name,
            (long long)tt->blck_size, kind >= 0 ? kind_names[kind] : name);
}

static void build_list(model *m)
{
    const opts *o = &m->o;
    uint64_t qd = (uint64_t)o->heads * o->head_dim, kvd = (uint64_t)o->kv_heads * o->head_dim;
    m->t = calloc((size_t)o->layers * MAX_TENSORS_PER_LAYER + 8, sizeof *m->t);
    if (!m->t)
        die("out of memory");
    char nm[64];
    add(m, "token_embd.weight", o->dim, o->vocab, K_TOKEN_EMBD, G_MATRIX);
    if (o->rope_freqs)
        add(m, "rope_freqs.weight", o->head_dim / 2, 0, -1, G_ROPE_FREQS);
    for (uint32_t l = 0; l < o->layers; l++) {
#define L(suffix, ne0, ne1, kind, g) (snprintf(nm, sizeof nm, "blk.%u." suffix, l), add(m, nm, ne0, ne1, kind, g))
        L("attn_norm.weight", o->dim, 0, -1, G_NORM);
        L("attn_q.weight", o->dim, qd, K_ATTN_Q, G_MATRIX);
        L("attn_k.weight", o->dim, kvd, K_ATTN_K, G_MATRIX);
        L("attn_v.weight", o->dim, kvd, K_ATTN_V, G_MATRIX);
        L("attn_output.weight", qd, o->dim, K_ATTN_OUTPUT, G_MATRIX);
        L("ffn_norm.weight", o->dim, 0, -1, G_NORM);
        L("ffn_gate.weight", o->dim, o->ff, K_FFN_GATE, G_MATRIX);
        L("ffn_up.weight", o->dim, o->ff, K_FFN_UP, G_MATRIX);
        L("ffn_down.weight", o->ff, o->dim, K_FFN_DOWN, G_MATRIX);
#undef L
    }
    add(m, "output_norm.weight", o->dim, 0, -1, G_NORM);
    if (!o->tied)
        add(m, "output.weight", o->dim, o->vocab, K_OUTPUT, G_MATRIX);
}

/* Layer of a "blk.N." tensor, -1 for the others. */
static long layer_of(const char *name)
{
    return strncmp(name, "blk.", 4) ? -1 : strtol(name + 4, NULL, 10);
}

/* llama.cpp's quantizer order: non-layer tensors first, then layers in numeric order
 * (blk.2 before blk.10), names sorted within each group. */
static int cmp_name(const void *a, const void *b)
{
    const char *x = ((const tinfo *)a)->name, *y = ((const tinfo *)b)->name;
    long lx = layer_of(x), ly = layer_of(y);
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return strcmp(x, y);
}

/* Bytes of row `row` of t into dst (tmp: ne[0] floats of scratch). */
static void make_row(const model *m, const tinfo *t, uint64_t row, void *dst, float *tmp)
{
    rng r = row_rng(m->o.seed, t->name, row);
    int64_t n = (int64_t)t->ne[0];
    switch (t->gen) {
    case G_NORM: /* near 1 so the residual stream keeps its scale */
        for (int64_t i = 0; i < n; i++)
            tmp[i] = 1.0f + 0.2f * rng_sym(&r);
        store_floats(SI_TYPE_F32, tmp, dst, n);
        return;
    case G_ROPE_FREQS: /* Llama 3.1-like: 1 for fast dims, 8 for slow, smooth between */
        for (int64_t i = 0; i < n; i++) {
            float x = (float)i / (float)(n > 1 ? n - 1 : 1);
            tmp[i] = x < 0.33f ? 1.0f : x > 0.66f ? 8.0f : 1.0f + 7.0f * (x - 0.33f) / 0.33f;
        }
        store_floats(SI_TYPE_F32, tmp, dst, n);
        return;
    case G_MATRIX:
        break;
    }
    /* std 1/sqrt(n_in): W x keeps unit-scale inputs at unit scale */
    float sd = 1.0f / sqrtf((float)n);
    if (t->kind == K_TOKEN_EMBD && m->favour_dir) {
        gen_row(SI_TYPE_F32, n, sd, &r, tmp, tmp);
        for (int64_t i = 0; i < n; i++)
            tmp[i] += m->favour_gain * m->favour_dir[i];
        store_floats(t->type, tmp, dst, n);
        return;
    }
    gen_row(t->type, n, sd, &r, dst, tmp);
}

/* --favour-token: every embedding row gets a large component along the favoured
 * classifier row u (normalized). The final RMS norm then yields h ~ u/|u|, so the
 * favoured logit u.h grows like sqrt(dim) while the others stay O(1); the constant
 * component added to all rows (tied case) shifts every logit equally. */
static void setup_favour(model *m)
{
    const opts *o = &m->o;
    if (o->favour < 0)
        return;
    if ((uint64_t)o->favour >= o->vocab)
        die("--favour-token %lld is not below the vocabulary size %u", (long long)o->favour, o->vocab);
    const tinfo *cls = NULL;
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].name, o->tied ? "token_embd.weight" : "output.weight"))
            cls = &m->t[i];
    const si_type_traits *tt = si_type_get(cls->type);
    size_t rs = si_row_size(cls->type, (int64_t)o->dim);
    uint8_t *raw = malloc(rs);
    float *tmp = malloc(o->dim * sizeof *tmp);
    m->favour_dir = malloc(o->dim * sizeof *m->favour_dir);
    if (!raw || !tmp || !m->favour_dir)
        die("out of memory");
    rng r = row_rng(o->seed, cls->name, (uint64_t)o->favour);
    float sd = 1.0f / sqrtf((float)o->dim);
    if (o->tied) {
        gen_row(SI_TYPE_F32, (int64_t)o->dim, sd, &r, m->favour_dir, tmp);
    } else {
        if (!tt->to_float)
            die("--favour-token: cannot dequantize output type %s", tt->name);
        gen_row(cls->type, (int64_t)o->dim, sd, &r, raw, tmp);
        tt->to_float(raw, m->favour_dir, (int64_t)o->dim);
    }
    double ss = 0;
    for (uint32_t i = 0; i < o->dim; i++)
        ss += (double)m->favour_dir[i] * m->favour_dir[i];
    float inv = ss > 0 ? (float)(1.0 / sqrt(ss / o->dim)) : 0.0f;
    for (uint32_t i = 0; i < o->dim; i++)
        m->favour_dir[i] *= inv;
    /* each layer adds O(1) per element; stay well above sqrt(2 * layers) of that */
    m->favour_gain = 4.0f * sqrtf(2.0f * (float)o->layers + 1.0f);
    free(raw);
    free(tmp);
}

/* ---- metadata ---- */

/* GPT-2's byte-to-unicode map: printable bytes stand for themselves, the rest map to
 * 256, 257, ... in byte order (what the Llama 3 vocabulary's byte tokens use). */
static void byte_token(int b, char out[8])
{
    uint32_t cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) {
        cp = (uint32_t)b;
    } else {
        int k = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174))
                k++;
        cp = 256u + (uint32_t)k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else { /* cp < 0x800 here */
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

static void wcheck(int rc, const char *what)
{
    if (rc < 0)
        die("gguf writer: %s: %s", what, si_status_name(rc));
}

static void builtin_vocab(si_gguf_writer *w, uint32_t n)
{
    static const char *const specials[] = {"<|begin_of_text|>", "<|end_of_text|>",
                                           "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
    char **tok = calloc(n, sizeof *tok);
    int32_t *type = calloc(n, sizeof *type);
    if (!tok || !type)
        die("out of memory");
    for (uint32_t i = 0; i < n; i++) {
        char buf[64];
        if (i < 256)
            byte_token((int)i, buf);
        else if (i < 261)
            snprintf(buf, sizeof buf, "%s", specials[i - 256]);
        else
            snprintf(buf, sizeof buf, "<|reserved_special_token_%u|>", i - 261);
        if (!(tok[i] = strdup(buf)))
            die("out of memory");
        type[i] = i < 256 ? 1 : 3; /* normal, control */
    }
    wcheck(si_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2"), "tokenizer.ggml.model");
    wcheck(si_gguf_writer_set_str(w, "tokenizer.ggml.pre", "llama-bpe"), "tokenizer.ggml.pre");
    wcheck(si_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, n), "tokens");
    wcheck(si_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", SI_GGUF_INT32, type, n), "token_type");
    wcheck(si_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", NULL, 0), "merges");
    wcheck(si_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 256), "bos");
    wcheck(si_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 257), "eos");
    wcheck(si_gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", 260), "eot");
    wcheck(si_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true), "add_bos_token");
    for (uint32_t i = 0; i < n; i++)
        free(tok[i]);
    free(tok);
    free(type);
}

/* Copy tokenizer.* from another GGUF; returns its vocabulary size. */
static uint32_t copy_vocab(si_gguf_writer *w, const char *path)
{
    si_gguf *src;
    si_error err;
    if (si_gguf_open(&src, path, &err) < 0)
        die("--vocab: %s", err.msg);
    int64_t ti = si_gguf_find_key(src, "tokenizer.ggml.tokens");
    if (ti < 0 || si_gguf_arr_type(src, (uint64_t)ti) != SI_GGUF_STRING)
        die("--vocab: %s has no tokenizer.ggml.tokens string array", path);
    uint64_t n = si_gguf_arr_n(src, (uint64_t)ti);
    if (n == 0 || n > UINT32_MAX)
        die("--vocab: %s: vocabulary size %llu", path, (unsigned long long)n);
    for (uint64_t i = 0; i < si_gguf_n_kv(src); i++)
        if (!strncmp(si_gguf_key(src, i), "tokenizer.", 10))
            wcheck(si_gguf_writer_copy_kv(w, src, i), si_gguf_key(src, i));
    si_gguf_close(src);
    return (uint32_t)n;
}

static void set_arch(si_gguf_writer *w, const opts *o)
{
    wcheck(si_gguf_writer_set_str(w, "general.architecture", "llama"), "arch");
    wcheck(si_gguf_writer_set_str(w, "general.name", "mkmodel synthetic llama"), "name");
    wcheck(si_gguf_writer_set_u32(w, "llama.context_length", o->ctx), "ctx");
    wcheck(si_gguf_writer_set_u32(w, "llama.embedding_length", o->dim), "dim");
    wcheck(si_gguf_writer_set_u32(w, "llama.block_count", o->layers), "layers");
    wcheck(si_gguf_writer_set_u32(w, "llama.feed_forward_length", o->ff), "ff");
    wcheck(si_gguf_writer_set_u32(w, "llama.rope.dimension_count", o->head_dim), "rope dims");
    wcheck(si_gguf_writer_set_u32(w, "llama.attention.head_count", o->heads), "heads");
    wcheck(si_gguf_writer_set_u32(w, "llama.attention.head_count_kv", o->kv_heads), "kv heads");
    wcheck(si_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", o->eps), "eps");
    wcheck(si_gguf_writer_set_f32(w, "llama.rope.freq_base", o->rope_base), "rope base");
    wcheck(si_gguf_writer_set_u32(w, "llama.vocab_size", o->vocab), "vocab size");
    if ((uint64_t)o->head_dim * o->heads != o->dim) {
        wcheck(si_gguf_writer_set_u32(w, "llama.attention.key_length", o->head_dim), "key_length");
        wcheck(si_gguf_writer_set_u32(w, "llama.attention.value_length", o->head_dim), "value_length");
    }
}

/* ---- main ---- */

static void write_tensor(const model *m, const tinfo *t, si_gguf_writer *w, int fd, uint8_t *chunk,
                         size_t cap, float *tmp)
{
    size_t rs = si_row_size(t->type, (int64_t)t->ne[0]);
    uint64_t rows = t->n_dims == 2 ? t->ne[1] : 1;
    size_t used = 0;
    si_error err;
    for (uint64_t r = 0; r < rows; r++) {
        if (used + rs > cap) {
            if (si_gguf_writer_write_data(w, fd, chunk, used, &err) < 0)
                die("%s: %s", m->o.out, err.msg);
            used = 0;
        }
        make_row(m, t, r, chunk + used, tmp);
        used += rs;
    }
    if (used && si_gguf_writer_write_data(w, fd, chunk, used, &err) < 0)
        die("%s: %s", m->o.out, err.msg);
}

int main(int argc, char **argv)
{
    model m = {0};
    parse_args(&m.o, argc, argv);
    si_gguf_writer *w = si_gguf_writer_new(SI_GGUF_DEFAULT_ALIGNMENT);
    if (!w)
        die("out of memory");
    /* The vocabulary first: --vocab decides the vocabulary size. */
    if (m.o.vocab_path) {
        uint32_t n = copy_vocab(w, m.o.vocab_path);
        if (m.o.vocab_size_given && n != m.o.vocab)
            die("--vocab-size %u disagrees with %s (%u tokens)", m.o.vocab, m.o.vocab_path, n);
        m.o.vocab = n;
    } else {
        if (m.o.vocab < 261)
            die("--vocab-size %u: the built-in vocabulary needs >= 261 (256 bytes + 5 specials)", m.o.vocab);
        builtin_vocab(w, m.o.vocab);
    }
    check_shapes(&m.o);
    set_arch(w, &m.o);
    build_list(&m);
    setup_favour(&m);
    if (m.o.sorted)
        qsort(m.t, (size_t)m.n, sizeof *m.t, cmp_name);
    for (int i = 0; i < m.n; i++) {
        int rc = si_gguf_writer_add_tensor(w, m.t[i].name, m.t[i].n_dims, m.t[i].ne, m.t[i].type);
        if (rc < 0)
            die("%s: cannot declare (%s)", m.t[i].name, si_status_name(rc));
    }
    if (m.o.dry_run) {
        /* What would be written, computed from the declarations alone. */
        uint64_t total = 0;
        for (int i = 0; i < m.n; i++) {
            uint64_t sz = si_gguf_writer_tensor_size(w, i);
            total += sz;
            if (m.t[i].n_dims == 2)
                printf("tensor %-28s %-5s %8llu x %-8llu %12llu bytes\n", m.t[i].name, si_type_name(m.t[i].type),
                       (unsigned long long)m.t[i].ne[0], (unsigned long long)m.t[i].ne[1], (unsigned long long)sz);
            else
                printf("tensor %-28s %-5s %8llu %-11s %12llu bytes\n", m.t[i].name, si_type_name(m.t[i].type),
                       (unsigned long long)m.t[i].ne[0], "", (unsigned long long)sz);
        }
        const preset *p = m.o.preset ? find_preset(m.o.preset) : NULL;
        printf("tensors %d\n", m.n);
        printf("tensor data bytes %llu\n", (unsigned long long)total);
        printf("header bytes %llu\n", (unsigned long long)si_gguf_writer_header_size(w));
        uint64_t end = si_gguf_writer_tensor_offset(w, m.n - 1) + si_gguf_writer_tensor_size(w, m.n - 1);
        end = (end + SI_GGUF_DEFAULT_ALIGNMENT - 1) / SI_GGUF_DEFAULT_ALIGNMENT * SI_GGUF_DEFAULT_ALIGNMENT;
        printf("file bytes %llu\n", (unsigned long long)(si_gguf_writer_header_size(w) + end));
        if (p && p->tensor_bytes && total != p->tensor_bytes)
            die("--preset %s: %llu bytes of tensor data, expected %llu", p->name, (unsigned long long)total,
                (unsigned long long)p->tensor_bytes);
        free(m.t);
        free(m.favour_dir);
        si_gguf_writer_free(w);
        return 0;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    int fd = open(m.o.out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("%s: %s", m.o.out, strerror(errno));
    uint64_t max_ne0 = 1;
    size_t max_row = 0;
    for (int i = 0; i < m.n; i++) {
        size_t rs = si_row_size(m.t[i].type, (int64_t)m.t[i].ne[0]);
        max_row = rs > max_row ? rs : max_row;
        max_ne0 = m.t[i].ne[0] > max_ne0 ? m.t[i].ne[0] : max_ne0;
    }
    size_t cap = max_row > CHUNK_BYTES ? max_row : CHUNK_BYTES;
    uint8_t *chunk = malloc(cap);
    float *tmp = malloc(max_ne0 * sizeof *tmp);
    if (!chunk || !tmp)
        die("out of memory");
    si_error err;
    if (si_gguf_writer_write_header(w, fd, &err) < 0)
        die("%s: %s", m.o.out, err.msg);
    for (int i = 0; i < m.n; i++)
        write_tensor(&m, &m.t[i], w, fd, chunk, cap, tmp);
    if (si_gguf_writer_finish(w, fd, &err) < 0)
        die("%s: %s", m.o.out, err.msg);
    off_t size = lseek(fd, 0, SEEK_END);
    if (close(fd) < 0)
        die("%s: %s", m.o.out, strerror(errno));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    uint64_t data_bytes = 0;
    for (int i = 0; i < m.n; i++)
        data_bytes += si_gguf_writer_tensor_size(w, i);
    char what[96];
    if (m.o.preset)
        snprintf(what, sizeof what, "preset %s%s%s", m.o.preset, m.o.type_given ? " " : "",
                 m.o.type_given ? si_type_name(m.o.type) : "");
    else
        snprintf(what, sizeof what, "%s", si_type_name(m.o.type));
    fprintf(stderr, "mkmodel: wrote %s: %d tensors, %lld bytes (dim %u, %u layers, %u/%u heads, ff %u, vocab %u, %s)\n",
            m.o.out, m.n, (long long)size, m.o.dim, m.o.layers, m.o.heads, m.o.kv_heads, m.o.ff,
            m.o.vocab, what);
    fprintf(stderr, "mkmodel: %llu bytes of tensor data in %.1f s (%.1f MB/s)\n", (unsigned long long)data_bytes,
            secs, secs > 0 ? (double)data_bytes / 1e6 / secs : 0.0);
    free(chunk);
    free(tmp);
    free(m.t);
    free(m.favour_dir);
    si_gguf_writer_free(w);
    return 0;
}
