/* One updating status line on stderr for the tools (stream-infer, repack, io-bench):
 * drawn only when stderr is a terminal and the tool is not quiet, at most 4 times a
 * second.
 *
 * When stdout is the same terminal (text streamed while the line is shown), the status
 * takes the terminal's last row, kept out of the scrolling region (DECSTBM), so the
 * text scrolls above it and is never overwritten; every draw saves the cursor (ESC 7,
 * which keeps a pending line wrap), writes the last row and restores it (ESC 8), so
 * the text's cursor never moves. si_progress_hide / si_progress_show erase and redraw
 * it around writes to stdout; si_progress_end gives the whole screen back. Otherwise
 * the line is simply rewritten in place ("\r", ESC [K). The line is cut to the
 * terminal's width so it never wraps; with a terminal of unknown height (a pty of size
 * 0x0) nothing is drawn while stdout shares it. */
#ifndef STREAMINFER_TOOLS_PROGRESS_H
#define STREAMINFER_TOOLS_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

typedef struct si_progress {
    bool on;          /* stderr is a terminal and the tool is not quiet */
    bool below;       /* stdout is the same terminal: the status on a row of its own */
    bool shown;       /* the status line is on the screen */
    double last_draw; /* si_now_s() of the last draw; 0: never */
    int rows;         /* below: the terminal's height the scrolling region was set for; 0: not set */
    char line[256];   /* the latest status */
} si_progress;

/* quiet: never draw (-q). */
void si_progress_init(si_progress *p, bool quiet);
/* Reserve the status row now (below mode), while the cursor is where text starts; the
 * first draw does it otherwise. */
void si_progress_begin(si_progress *p);
/* A new status (printf-style). Drawn when force, when nothing was drawn yet, or when the
 * last draw is at least a quarter of a second old; otherwise kept for the next draw. */
void si_progress_set(si_progress *p, bool force, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Around every write to stdout: erase the line (hide), draw the latest status (show,
 * after stdout was flushed). Both do nothing when the line is off or was not shown (or p is NULL). */
void si_progress_hide(si_progress *p);
void si_progress_show(si_progress *p);
/* Erase the line for good (before a report, a prompt, or at exit); a later set draws again. */
void si_progress_end(si_progress *p);

/* "12.3 MB/s"-style rate from bytes and seconds into buf (MB = 10^6 bytes). */
const char *si_progress_rate(char *buf, size_t n, double bytes, double seconds);

#endif
