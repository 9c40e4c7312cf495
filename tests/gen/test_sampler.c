/* The sampler against known answers: greedy is the argmax; the same seed gives the
 * same tokens and another seed others; top-k 1 and min-p 1 leave only the best;
 * the repetition penalty follows llama.cpp's rule; sampled frequencies follow the
 * softmax of logits / temperature. */
#include <math.h>
#include <stdio.h>

#include "../test_util.h"
#include "streaminfer/sampler.h"

#define V 16

int main(void)
{
    float logits[V];
    for (int i = 0; i < V; i++)
        logits[i] = (float)((i * 7) % V) * 0.25f - 1.0f; /* max at i = 11 (7*11 % 16 = 13) */
    int best = 0;
    for (int i = 1; i < V; i++)
        best = logits[i] > logits[best] ? i : best;
    CHECK_EQ_INT(si_argmax(logits, V), best);

    si_sampler_opts greedy = {.temp = 0, .repeat_penalty = 1, .top_p = 1};
    si_sampler *s = si_sampler_new(&greedy, V);
    CHECK_EQ_INT(si_sampler_sample(s, logits), best);
    si_sampler_free(s);

    /* Same seed, same sequence; another seed, another sequence. */
    si_sampler_opts o = {.temp = 1.0f, .top_p = 1, .repeat_penalty = 1, .seed = 42};
    int32_t a[64], b[64], c[64];
    si_sampler *s1 = si_sampler_new(&o, V), *s2 = si_sampler_new(&o, V);
    o.seed = 43;
    si_sampler *s3 = si_sampler_new(&o, V);
    int differ = 0;
    for (int i = 0; i < 64; i++) {
        a[i] = si_sampler_sample(s1, logits);
        b[i] = si_sampler_sample(s2, logits);
        c[i] = si_sampler_sample(s3, logits);
        CHECK_EQ_INT(a[i], b[i]);
        differ += a[i] != c[i];
    }
    CHECKF(differ > 10, "seeds 42 and 43 gave nearly the same tokens (%d of 64 differ)", differ);
    si_sampler_free(s1), si_sampler_free(s2), si_sampler_free(s3);

    /* top-k 1 and min-p 1 keep only the most likely token. */
    si_sampler_opts k1 = {.temp = 5.0f, .top_k = 1, .top_p = 1, .repeat_penalty = 1, .seed = 1};
    si_sampler_opts p1 = {.temp = 5.0f, .min_p = 1.0f, .top_p = 1, .repeat_penalty = 1, .seed = 1};
    si_sampler *sk = si_sampler_new(&k1, V), *sp = si_sampler_new(&p1, V);
    for (int i = 0; i < 50; i++) {
        CHECK_EQ_INT(si_sampler_sample(sk, logits), best);
        CHECK_EQ_INT(si_sampler_sample(sp, logits), best);
    }
    si_sampler_free(sk), si_sampler_free(sp);

    /* Repetition penalty: positive logits divided, negative multiplied. */
    float two[V] = {0};
    two[3] = 2.0f;  /* best, but recently used: 2 / 2.5 = 0.8 */
    two[5] = 1.5f;  /* untouched: now the best */
    two[7] = -0.5f; /* recently used: -0.5 * 2.5 = -1.25 */
    si_sampler_opts rp = {.temp = 0, .top_p = 1, .repeat_penalty = 2.5f, .repeat_last_n = 4};
    si_sampler *sr = si_sampler_new(&rp, V);
    CHECK_EQ_INT(si_sampler_sample(sr, two), 3);
    si_sampler_accept(sr, 3);
    si_sampler_accept(sr, 7);
    CHECK_EQ_INT(si_sampler_sample(sr, two), 5);
    /* Only the last 4 tokens count: after 4 others, 3 is the best again. */
    for (int i = 0; i < 4; i++)
        si_sampler_accept(sr, 9);
    CHECK_EQ_INT(si_sampler_sample(sr, two), 3);
    si_sampler_free(sr);

    /* Frequencies follow softmax(logits / T). */
    si_sampler_opts t = {.temp = 0.7f, .top_p = 1, .repeat_penalty = 1, .seed = 7};
    si_sampler *st = si_sampler_new(&t, V);
    int counts[V] = {0};
    const int N = 200000;
    for (int i = 0; i < N; i++)
        counts[si_sampler_sample(st, logits)]++;
    double z = 0;
    for (int i = 0; i < V; i++)
        z += exp(logits[i] / 0.7);
    for (int i = 0; i < V; i++) {
        double p = exp(logits[i] / 0.7) / z, f = (double)counts[i] / N;
        CHECKF(fabs(f - p) < 0.01, "token %d sampled with frequency %.4f, softmax says %.4f", i, f, p);
    }
    si_sampler_free(st);
    printf("ok\n");
    return 0;
}
