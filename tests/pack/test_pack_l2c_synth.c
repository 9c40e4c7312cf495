/* llama2.c imports without fixtures: synthetic version-2 (Q8_0 groups of 32, scales that
 * are exact in fp16, shared classifier) and version-0 (fp32, separate classifier)
 * checkpoints of the same weights are repacked; every tensor read back from the packs
 * (through the engine's verified row reader) equals the checkpoint's values exactly,
 * under its GGUF name: v2 kept as Q8_0 by --q80 auto because that is lossless, v0 as F32.
 * A truncated checkpoint is refused. usage: test_pack_l2c_synth REPACK */
#include "pack_test.h"

#include <math.h>

#include "streaminfer/io.h"
#include "streaminfer/pack.h"
#include "streaminfer/types.h"

enum { DIM = 64, HID = 96, NL = 2, NH = 4, NKV = 2, VOC = 300, SEQ = 32, GS = 32, HS = DIM / NH };

typedef struct wt {
    char name[64];
    int cols, rows;
    float *v;    /* dequantized values */
    int8_t *q;   /* v2: int8 values */
    float *s;    /* v2: scales per group */
} wt;

static wt ws[64];
static int nw;
static test_rng rng;

static wt *mk(const char *name, int cols, int rows, bool norm)
{
    wt *w = &ws[nw++];
    snprintf(w->name, sizeof w->name, "%s", name);
    w->cols = cols, w->rows = rows;
    int n = cols * rows;
    w->v = malloc(sizeof(float) * n);
    w->q = malloc((size_t)n);
    w->s = malloc(sizeof(float) * (n / GS + 1));
    for (int g = 0; g < n / GS; g++)
        w->s[g] = ldexpf(1.0f, -(int)(test_rng_u32(&rng) % 8) - 6); /* exact in fp16 */
    for (int i = 0; i < n; i++) {
        w->q[i] = (int8_t)((int)(test_rng_u32(&rng) % 255) - 127);
        w->v[i] = norm ? (float)test_rng_range(&rng, 0.5, 1.5) : (float)w->q[i] * w->s[i / GS];
    }
    return w;
}

static wt *find(const char *name)
{
    for (int i = 0; i < nw; i++)
        if (strcmp(ws[i].name, name) == 0)
            return &ws[i];
    return NULL;
}

static void put(FILE *f, const void *p, size_t n) { CHECK(fwrite(p, 1, n, f) == n); }

#define EACH(kind) for (int l = 0; l < NL; l++) { char nm[64]; snprintf(nm, sizeof nm, "blk.%d." kind ".weight", l);
#define END }

static void write_v2(const char *path)
{
    FILE *f = fopen(path, "wb");
    uint8_t h[256] = {0};
    uint32_t magic = 0x616b3432;
    int32_t ver = 2, p[7] = {DIM, HID, NL, NH, NKV, VOC, SEQ}, gs = GS;
    memcpy(h, &magic, 4);
    memcpy(h + 4, &ver, 4);
    memcpy(h + 8, p, sizeof p);
    h[36] = 1; /* shared classifier */
    memcpy(h + 37, &gs, 4);
    put(f, h, 256);
    EACH("attn_norm") put(f, find(nm)->v, 4 * DIM); END
    EACH("ffn_norm") put(f, find(nm)->v, 4 * DIM); END
    put(f, find("output_norm.weight")->v, 4 * DIM);
    const char *kinds[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"};
    wt *e = find("token_embd.weight");
    put(f, e->q, (size_t)e->cols * e->rows);
    put(f, e->s, 4 * (size_t)e->cols * e->rows / GS);
    for (int k = 0; k < 7; k++)
        for (int l = 0; l < NL; l++) {
            char nm[64];
            snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, kinds[k]);
            wt *w = find(nm);
            put(f, w->q, (size_t)w->cols * w->rows);
            put(f, w->s, 4 * (size_t)w->cols * w->rows / GS);
        }
    fclose(f);
}

static void write_v0(const char *path)
{
    FILE *f = fopen(path, "wb");
    int32_t p[7] = {DIM, HID, NL, NH, NKV, -VOC, SEQ}; /* negative: separate classifier */
    put(f, p, sizeof p);
    put(f, find("token_embd.weight")->v, 4 * (size_t)DIM * VOC);
    const char *kinds[] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
                           "ffn_down", "ffn_up"};
    for (int k = 0; k < 9; k++)
        for (int l = 0; l < NL; l++) {
            char nm[64];
            snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, kinds[k]);
            wt *w = find(nm);
            put(f, w->v, 4 * (size_t)w->cols * w->rows);
        }
    put(f, find("output_norm.weight")->v, 4 * DIM);
    float *fc = calloc(SEQ * HS, sizeof(float)); /* freq_cis real and imag */
    put(f, fc, 4 * SEQ * HS);
    free(fc);
    put(f, find("output.weight")->v, 4 * (size_t)DIM * VOC);
    fclose(f);
}

/* Every tensor of the pack equals the checkpoint's values; returns how many were Q8_0. */
static int compare(const char *pack_path, bool expect_classifier)
{
    si_pack *p;
    si_io *io;
    si_error e;
    CHECKF(si_pack_open(&p, pack_path, &e) == SI_OK, "%s", e.msg);
    si_io_opts o = {0};
    CHECKF(si_io_open(&io, pack_path, &o, &e) == SI_OK, "%s", e.msg);
    int n_q8 = 0, n_seen = 0;
    for (uint32_t i = 0; i < si_pack_n_tensors(p); i++) {
        const si_pack_tensor *t = si_pack_tensor_at(p, i);
        wt *w = find(t->name);
        CHECKF(w, "%s: unexpected tensor %s", pack_path, t->name);
        CHECKF(t->ne[0] == (uint64_t)w->cols && t->n_rows == (uint64_t)w->rows, "%s: %s has shape %" PRIu64 "x%" PRIu64,
               pack_path, t->name, t->ne[0], t->n_rows);
        uint8_t *raw = malloc((size_t)t->raw_size);
        float *v = malloc(sizeof(float) * (size_t)w->cols * w->rows);
        CHECKF(si_pack_read_rows(p, &io, t, 0, t->n_rows, raw, &e) == SI_OK, "%s", e.msg);
        si_type_get(t->type)->to_float(raw, v, (int64_t)w->cols * w->rows);
        for (int j = 0; j < w->cols * w->rows; j++)
            CHECKF(v[j] == w->v[j], "%s: %s[%d] = %g, checkpoint %g", pack_path, t->name, j, v[j], w->v[j]);
        n_q8 += t->type == SI_TYPE_Q8_0;
        n_seen++;
        free(raw);
        free(v);
    }
    CHECK(n_seen == 9 * NL + 2 + (expect_classifier ? 1 : 0));
    si_io_close(io);
    si_pack_close(p);
    return n_q8;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s REPACK\n", argv[0]);
        return 2;
    }
    const char *rp = argv[1], *d = scratch_dir("l2c-synth");
    test_rng_seed(&rng, 11);
    mk("token_embd.weight", DIM, VOC, false);
    mk("output.weight", DIM, VOC, false);
    mk("output_norm.weight", DIM, 1, true);
    const struct {
        const char *kind;
        int cols, rows;
        bool norm;
    } k[] = {{"attn_norm", DIM, 1, true},     {"attn_q", DIM, DIM, false},   {"attn_k", DIM, NKV * HS, false},
             {"attn_v", DIM, NKV * HS, false}, {"attn_output", DIM, DIM, false}, {"ffn_norm", DIM, 1, true},
             {"ffn_gate", DIM, HID, false},    {"ffn_down", HID, DIM, false}, {"ffn_up", DIM, HID, false}};
    for (int l = 0; l < NL; l++)
        for (int j = 0; j < 9; j++) {
            char nm[64];
            snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, k[j].kind);
            mk(nm, k[j].cols, k[j].rows, k[j].norm);
        }
    char v2[4400], v0[4400], p2[4400], p0[4400];
    snprintf(v2, sizeof v2, "%s/synth_q80.bin", d);
    snprintf(v0, sizeof v0, "%s/synth.bin", d);
    snprintf(p2, sizeof p2, "%s/synth_q80.pack", d);
    snprintf(p0, sizeof p0, "%s/synth.pack", d);
    write_v2(v2);
    write_v0(v0);
    CHECK(sh("'%s' '%s' '%s' --no-progress > '%s.log' 2>&1", rp, v2, p2, p2) == 0);
    CHECK(sh("'%s' '%s' '%s' --no-progress > '%s.log' 2>&1", rp, v0, p0, p0) == 0);
    int q8 = compare(p2, false);
    printf("version 2: every tensor equals the checkpoint; %d matrices kept as Q8_0 (exact scales)\n", q8);
    CHECKF(q8 == 1 + 7 * NL, "%d matrices in Q8_0, expected %d", q8, 1 + 7 * NL);
    CHECK(compare(p0, true) == 0);
    printf("version 0: every tensor (separate classifier) equals the checkpoint, F32\n");
    /* Truncated checkpoints are refused. */
    CHECK(sh("head -c 5000 '%s' > '%s/cut.bin' && ! '%s' '%s/cut.bin' '%s/cut.pack' --no-progress 2>/dev/null", v2, d,
             rp, d, d) == 0);
    CHECK(sh("head -c 100000 '%s' > '%s/cut0.bin' && ! '%s' '%s/cut0.bin' '%s/cut0.pack' --no-progress 2>/dev/null", v0,
             d, rp, d, d) == 0);
    for (int i = 0; i < nw; i++) {
        free(ws[i].v);
        free(ws[i].q);
        free(ws[i].s);
    }
    return 0;
}
