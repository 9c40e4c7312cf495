#include "progress.h"

#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "streaminfer/clock.h"

#define SI_PROGRESS_MIN_INTERVAL 0.25 /* at most 4 draws a second */

/* stdout and stderr are the same terminal. */
static bool same_tty(void)
{
    struct stat a, b;
    return isatty(STDOUT_FILENO) && fstat(STDOUT_FILENO, &a) == 0 && fstat(STDERR_FILENO, &b) == 0 &&
           a.st_rdev == b.st_rdev;
}

void si_progress_init(si_progress *p, bool quiet)
{
    memset(p, 0, sizeof *p);
    p->on = !quiet && isatty(STDERR_FILENO);
    p->below = p->on && same_tty();
}

/* Columns of the terminal, at least 20 (80 when unknown); rows (0 when unknown). */
static int term_size(int *rows)
{
    struct winsize ws;
    bool ok = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0;
    *rows = ok ? ws.ws_row : 0;
    return ok && ws.ws_col >= 20 ? ws.ws_col : 80;
}

/* Below-the-text mode: the terminal's last row is kept out of the scrolling region
 * (DECSTBM rows 1..rows-1), so text streamed to stdout scrolls above it and can never
 * touch the status. Set up once (and again when the terminal's height changes): make
 * room below the cursor first (ESC D: down a line, scrolling at the bottom, column
 * kept; then up), then set the region between save and restore of the cursor. */
static void set_region(si_progress *p, int rows)
{
    if (p->rows == 0)
        fputs("\033D\033[A", stderr);
    fprintf(stderr, "\0337\033[1;%dr\0338", rows - 1);
    p->rows = rows;
}

void si_progress_begin(si_progress *p)
{
    int rows;
    term_size(&rows);
    if (p->on && p->below && p->rows == 0 && rows >= 3) {
        set_region(p, rows);
        fflush(stderr);
    }
}

/* The status cut to cols - 1 characters (UTF-8: continuation bytes do not count). */
static size_t fit(const char *s, int cols)
{
    size_t i = 0;
    int chars = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80 && ++chars > cols - 1)
            break;
    }
    return i;
}

static void draw(si_progress *p)
{
    int rows, cols = term_size(&rows);
    size_t n = fit(p->line, cols);
    if (p->below && rows < 3)
        return; /* no room for a reserved row */
    if (p->below) {
        if (rows != p->rows)
            set_region(p, rows);
        /* save, the last row, clear, the status, restore */
        fprintf(stderr, "\0337\033[%d;1H\033[K%.*s\0338", rows, (int)n, p->line);
    } else
        fprintf(stderr, "\r\033[K%.*s", (int)n, p->line);
    fflush(stderr);
    p->shown = true;
    p->last_draw = si_now_s();
}

void si_progress_set(si_progress *p, bool force, const char *fmt, ...)
{
    if (!p->on)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->line, sizeof p->line, fmt, ap);
    va_end(ap);
    double now = si_now_s();
    if (force || p->last_draw == 0 || now - p->last_draw >= SI_PROGRESS_MIN_INTERVAL)
        draw(p);
}

void si_progress_hide(si_progress *p)
{
    if (!p || !p->on || !p->shown)
        return;
    if (p->below)
        fprintf(stderr, "\0337\033[%d;1H\033[K\0338", p->rows);
    else
        fputs("\r\033[K", stderr);
    fflush(stderr);
}

void si_progress_show(si_progress *p)
{
    if (!p || !p->on || !p->shown)
        return;
    draw(p);
}

void si_progress_end(si_progress *p)
{
    if (!p)
        return;
    si_progress_hide(p);
    if (p->on && p->below && p->rows) { /* the whole screen scrolls again */
        fputs("\0337\033[r\0338", stderr);
        fflush(stderr);
    }
    p->rows = 0;
    p->shown = false;
    p->last_draw = 0;
}

const char *si_progress_rate(char *buf, size_t n, double bytes, double seconds)
{
    snprintf(buf, n, "%.1f MB/s", seconds > 0 ? bytes / seconds / 1e6 : 0.0);
    return buf;
}
