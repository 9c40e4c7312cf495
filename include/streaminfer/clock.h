/* Monotonic time for the report's figures. */
#ifndef STREAMINFER_CLOCK_H
#define STREAMINFER_CLOCK_H

/* Seconds on CLOCK_MONOTONIC. */
double si_now_s(void);

#endif
