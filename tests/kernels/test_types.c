/* The type table: geometry of every GGUF type id, flags, and the row-size helper. */
#include <stddef.h>

#include "streaminfer/types.h"
#include "../test_util.h"

typedef struct {
    uint32_t id;
    const char *name;
    int64_t blck;
    size_t size;
} geom;

/* Written out from ggml's block structs (ggml-common.h), independently of ref.c. */
static const geom want[] = {
    {0, "F32", 1, 4},          {1, "F16", 1, 2},           {2, "Q4_0", 32, 18},
    {3, "Q4_1", 32, 20},       {6, "Q5_0", 32, 22},        {7, "Q5_1", 32, 24},
    {8, "Q8_0", 32, 34},       {9, "Q8_1", 32, 36},        {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110},    {12, "Q4_K", 256, 144},     {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},    {15, "Q8_K", 256, 292},     {16, "IQ2_XXS", 256, 66},
    {17, "IQ2_XS", 256, 74},   {18, "IQ3_XXS", 256, 98},   {19, "IQ1_S", 256, 50},
    {20, "IQ4_NL", 32, 18},    {21, "IQ3_S", 256, 110},    {22, "IQ2_S", 256, 82},
    {23, "IQ4_XS", 256, 136},  {24, "I8", 1, 1},           {25, "I16", 1, 2},
    {26, "I32", 1, 4},         {27, "I64", 1, 8},          {28, "F64", 1, 8},
    {29, "IQ1_M", 256, 56},    {30, "BF16", 1, 2},         {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66},    {39, "MXFP4", 32, 17},
};

static int is_compute(uint32_t id)
{
    return id == SI_TYPE_F32 || id == SI_TYPE_F16 || id == SI_TYPE_Q4_0 || id == SI_TYPE_Q8_0 ||
           id == SI_TYPE_Q2_K || id == SI_TYPE_Q3_K || id == SI_TYPE_Q4_K || id == SI_TYPE_Q5_K ||
           id == SI_TYPE_Q6_K;
}

int main(void)
{
    const size_t nwant = sizeof want / sizeof want[0];
    int seen[SI_TYPE_COUNT] = {0};
    for (size_t i = 0; i < nwant; i++) {
        const si_type_traits *t = si_type_get(want[i].id);
        CHECKF(t != NULL, "type %u missing", want[i].id);
        CHECK_EQ_STR(t->name, want[i].name);
        CHECK_EQ_STR(si_type_name(want[i].id), want[i].name);
        CHECKF(t->blck_size == want[i].blck && t->type_size == want[i].size,
               "%s: geometry %lld/%zu, want %lld/%zu", want[i].name, (long long)t->blck_size,
               t->type_size, (long long)want[i].blck, want[i].size);
        CHECKF(t->compute == is_compute(want[i].id), "%s: compute flag", want[i].name);
        if (t->compute) {
            CHECKF(t->to_float && t->vec_dot, "%s: kernels missing", want[i].name);
            const si_type_traits *a = si_type_get(t->vec_dot_type);
            CHECKF(a && a->from_float, "%s: vec_dot_type has no from_float", want[i].name);
        } else {
            CHECKF(!t->to_float && !t->vec_dot, "%s: kernels on a non-compute type", want[i].name);
        }
        seen[want[i].id] = 1;
    }
    for (uint32_t id = 0; id < SI_TYPE_COUNT + 10; id++) {
        if (id < SI_TYPE_COUNT && seen[id])
            continue;
        CHECKF(si_type_get(id) == NULL, "id %u should be unknown", id);
        CHECK_EQ_STR(si_type_name(id), "unknown");
        CHECK_EQ_INT(si_row_size(id, 256), 0);
    }
    CHECK(si_type_get(UINT32_MAX) == NULL);

    /* activation types */
    CHECK_EQ_INT(si_type_get(SI_TYPE_F32)->vec_dot_type, SI_TYPE_F32);
    CHECK_EQ_INT(si_type_get(SI_TYPE_F16)->vec_dot_type, SI_TYPE_F16);
    CHECK_EQ_INT(si_type_get(SI_TYPE_Q4_0)->vec_dot_type, SI_TYPE_Q8_0);
    CHECK_EQ_INT(si_type_get(SI_TYPE_Q8_0)->vec_dot_type, SI_TYPE_Q8_0);
    uint32_t kq[] = {SI_TYPE_Q2_K, SI_TYPE_Q3_K, SI_TYPE_Q4_K, SI_TYPE_Q5_K, SI_TYPE_Q6_K};
    for (size_t i = 0; i < 5; i++)
        CHECK_EQ_INT(si_type_get(kq[i])->vec_dot_type, SI_TYPE_Q8_K);
    uint32_t act[] = {SI_TYPE_F32, SI_TYPE_F16, SI_TYPE_Q8_0, SI_TYPE_Q8_K};
    for (size_t i = 0; i < 4; i++)
        CHECK(si_type_get(act[i])->from_float != NULL);
    for (size_t i = 0; i < nwant; i++) {
        uint32_t id = want[i].id;
        if (id != SI_TYPE_F32 && id != SI_TYPE_F16 && id != SI_TYPE_Q8_0 && id != SI_TYPE_Q8_K)
            CHECKF(si_type_get(id)->from_float == NULL, "%s: unexpected from_float", want[i].name);
    }

    /* row sizes */
    CHECK_EQ_INT(si_row_size(SI_TYPE_F32, 7), 28);
    CHECK_EQ_INT(si_row_size(SI_TYPE_F32, 0), 0);
    CHECK_EQ_INT(si_row_size(SI_TYPE_Q4_0, 4096), 4096 / 32 * 18);
    CHECK_EQ_INT(si_row_size(SI_TYPE_Q4_0, 33), 0);
    CHECK_EQ_INT(si_row_size(SI_TYPE_Q2_K, 4096), 16 * 84);
    CHECK_EQ_INT(si_row_size(SI_TYPE_Q6_K, 14336), 56 * 210);
    CHECK_EQ_INT(si_row_size(SI_TYPE_Q6_K, 128), 0);
    CHECK_EQ_INT(si_row_size(SI_TYPE_Q8_K, -256), 0);
    CHECK_EQ_INT(si_row_size(SI_TYPE_MXFP4, 64), 34);
    printf("ok\n");
    return 0;
}
