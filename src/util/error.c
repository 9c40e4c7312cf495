#include "streaminfer/error.h"

#include <stdio.h>
#include <string.h>

int si_verrorf(si_error *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return code;
}

int si_errorf(si_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    si_verrorf(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int si_error_prefix(si_error *err, const char *fmt, ...)
{
    if (!err)
        return SI_EINVAL;
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", old);
    return err->code;
}

const char *si_status_name(int code)
{
    switch (code) {
    case SI_OK: return "ok";
    case SI_EIO: return "I/O error";
    case SI_EFORMAT: return "bad file format";
    case SI_ENOMEM: return "out of memory";
    case SI_EINVAL: return "invalid argument";
    case SI_EUNSUPPORTED: return "unsupported";
    case SI_ECHECKSUM: return "checksum mismatch";
    case SI_EBUDGET: return "memory budget too small";
    case SI_ENOSYS: return "feature not available";
    case SI_ESTOPPED: return "stopped";
    }
    return "unknown error";
}
