/* Error codes and messages shared by every module.
 *
 * Functions return 0 (SI_OK) or a negative si_result and, when given an si_error,
 * fill it with one human-readable line naming what failed and where (file, byte
 * offset, field, tensor). The CLI prints that line; nothing below the CLI prints. */
#ifndef STREAMINFER_ERROR_H
#define STREAMINFER_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum si_result {
    SI_OK = 0,
    SI_EIO = -1,          /* read/open failed, short file */
    SI_EFORMAT = -2,      /* malformed or hostile input file */
    SI_ENOMEM = -3,       /* allocation failed */
    SI_EINVAL = -4,       /* bad argument or option */
    SI_EUNSUPPORTED = -5, /* valid input the engine cannot handle (tensor type, arch) */
    SI_ECHECKSUM = -6,    /* data failed verification */
    SI_EBUDGET = -7,      /* memory budget too small */
    SI_ENOSYS = -8,       /* a kernel/runtime feature is missing (io_uring) */
    SI_ESTOPPED = -9,     /* the caller asked to stop (si_llama_opts.should_stop: Ctrl-C) */
} si_result; /* not si_status: <signal.h> defines that name */

typedef struct si_error {
    int code;
    char msg[512];
} si_error;

/* Fill err (may be NULL) and return code. */
int si_errorf(si_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int si_verrorf(si_error *err, int code, const char *fmt, va_list ap);
/* Prefix an existing message: "<prefix>: <old message>". Returns err->code. */
int si_error_prefix(si_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *si_status_name(int code);

/* Propagate a negative status. */
#define SI_TRY(expr)                   \
    do {                               \
        int si_try_rc_ = (expr);       \
        if (si_try_rc_ < 0)            \
            return si_try_rc_;         \
    } while (0)

/* Fail with a formatted message when cond holds. */
#define SI_CHECK(cond, err, code, ...)                  \
    do {                                                \
        if (cond)                                       \
            return si_errorf((err), (code), __VA_ARGS__); \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
