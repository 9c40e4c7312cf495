/* A binary heap over an array of T, written once for both tokenizers' merge
 * queues. BEFORE(const T *a, const T *b) is true when a must pop first.
 * SI_DEFINE_HEAP(name, T, BEFORE) defines
 *   static void name_push(T *h, size_t *n, T v);
 *   static T name_pop(T *h, size_t *n);   (n > 0)
 * A macro rather than void pointers and a callback: this is the tokenizers' hot
 * loop, and each keeps its element type and comparison inlined. */
#ifndef SI_TEXT_HEAP_H
#define SI_TEXT_HEAP_H

#include <stddef.h>

#define SI_DEFINE_HEAP(name, T, BEFORE)                                  \
    static void name##_push(T *h, size_t *n, T v)                        \
    {                                                                    \
        size_t i = (*n)++;                                               \
        while (i > 0) {                                                  \
            size_t p = (i - 1) / 2;                                      \
            if (!BEFORE(&v, &h[p]))                                      \
                break;                                                   \
            h[i] = h[p];                                                 \
            i = p;                                                       \
        }                                                                \
        h[i] = v;                                                        \
    }                                                                    \
    static T name##_pop(T *h, size_t *n)                                 \
    {                                                                    \
        T top = h[0], last = h[--(*n)];                                  \
        size_t i = 0;                                                    \
        for (;;) {                                                       \
            size_t c = 2 * i + 1;                                        \
            if (c >= *n)                                                 \
                break;                                                   \
            if (c + 1 < *n && BEFORE(&h[c + 1], &h[c]))                  \
                c++;                                                     \
            if (!BEFORE(&h[c], &last))                                   \
                break;                                                   \
            h[i] = h[c];                                                 \
            i = c;                                                       \
        }                                                                \
        if (*n > 0)                                                      \
            h[i] = last;                                                 \
        return top;                                                      \
    }

#endif
