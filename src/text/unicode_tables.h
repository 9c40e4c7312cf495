/* Unicode general-category ranges for the pre-tokenizer (generated data). */
#ifndef SI_UNICODE_TABLES_H
#define SI_UNICODE_TABLES_H

#include <stdint.h>

enum { SI_UCD_OTHER = 0, SI_UCD_LETTER = 1, SI_UCD_NUMBER = 2 };

typedef struct si_ucd_range {
    uint32_t lo, hi;
    uint8_t cls;
} si_ucd_range;

extern const si_ucd_range si_ucd_ranges[];
extern const unsigned si_ucd_n_ranges;
extern const char si_unicode_version[];

#endif
