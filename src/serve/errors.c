/* OpenAI-shaped errors: {"error": {"message", "type", "param", "code"}}. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_internal.h"

static const char *type_of(unsigned status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 405: return "invalid_request_error";
    case 413: return "invalid_request_error";
    case 429: return "rate_limit_error";
    case 503: return "unavailable_error";
    case 504: return "timeout_error";
    default: return status < 500 ? "invalid_request_error" : "server_error";
    }
}

json_t *srv_error_json(unsigned status, const char *code, const char *param, const char *msg)
{
    return json_pack("{s:{s:o,s:s,s:o,s:o}}", "error", "message", srv_json_text(msg, strlen(msg)), "type",
                     type_of(status), "param", param ? json_string(param) : json_null(), "code",
                     code ? json_string(code) : json_null());
}

enum MHD_Result srv_error(srv_req *r, unsigned status, const char *code, const char *param, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return srv_respond_json(r, status, srv_error_json(status, code, param, msg));
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    unsigned cp = c & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

json_t *srv_json_text(const char *s, size_t n)
{
    json_t *j = json_stringn(s ? s : "", s ? n : 0);
    if (j || !s)
        return j;
    /* Invalid UTF-8 (or a NUL): rebuild it with U+FFFD for each bad byte. */
    char *t = malloc(3 * n + 1);
    if (!t)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len((const unsigned char *)s + i, n - i);
        if (k && s[i]) {
            memcpy(t + o, s + i, k);
            o += k, i += k;
        } else {
            memcpy(t + o, "\xEF\xBF\xBD", 3);
            o += 3, i++;
        }
    }
    j = json_stringn(t, o);
    free(t);
    return j;
}
