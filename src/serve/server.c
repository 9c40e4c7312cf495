/* The HTTP daemon: binding, routing, authentication, the body-size limit, connection
 * accounting and the life cycle (loading, ready, stopping). One thread per
 * connection, so a handler may block until its request is done. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "serve_internal.h"
#include "streaminfer/clock.h"

const unsigned srv_codes[SRV_N_CODES] = {200, 400, 401, 404, 405, 408, 413, 429, 500, 501, 503, 504};

static const srv_route routes[] = {
    {"/health", "GET", srv_handle_health, true},
    {"/metrics", "GET", srv_handle_metrics, false},
    {"/v1/models", "GET", srv_handle_models, false},
    {"/v1/models/", "GET", srv_handle_models, false},
    {"/v1/completions", "POST", srv_handle_completions, false},
    {"/v1/chat/completions", "POST", srv_handle_chat, false},
};

static const srv_route *find_route(const char *url)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        size_t n = strlen(routes[i].path);
        if (routes[i].path[n - 1] == '/' ? strncmp(url, routes[i].path, n) == 0 && url[n]
                                         : strcmp(url, routes[i].path) == 0)
            return &routes[i];
    }
    return NULL;
}

void srv_count_status(si_server *s, unsigned status)
{
    size_t i = 0;
    while (i < SRV_N_CODES && srv_codes[i] != status)
        i++;
    __atomic_fetch_add(&s->responses[i], 1, __ATOMIC_RELAXED);
}

static enum MHD_Result queue(srv_req *r, unsigned status, struct MHD_Response *resp, const char *ctype)
{
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED && r->route)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                strcmp(r->route->method, "GET") == 0 ? "GET, HEAD" : r->route->method);
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES)
        srv_count_status(r->s, status);
    return ret;
}

enum MHD_Result srv_respond_text(srv_req *r, unsigned status, const char *content_type, char *text, size_t len)
{
    if (!text)
        return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        free(text);
    return queue(r, status, resp, content_type);
}

enum MHD_Result srv_respond_json(srv_req *r, unsigned status, json_t *body)
{
    if (!body)
        return MHD_NO;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return MHD_NO;
    size_t n = strlen(text);
    char *t = realloc(text, n + 2); /* a final newline, for curl users */
    if (!t) {
        free(text);
        return MHD_NO;
    }
    t[n] = '\n';
    t[n + 1] = 0;
    return srv_respond_text(r, status, "application/json", t, n + 1);
}

int srv_conn_fd(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? (int)ci->connect_fd : -1;
}

bool srv_fd_hung_up(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    int n = poll(&p, 1, 0);
    return n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

int srv_state(si_server *s, si_server_model *m)
{
    pthread_mutex_lock(&s->mu);
    int st = s->state;
    if (m && st == SRV_READY)
        *m = s->m;
    pthread_mutex_unlock(&s->mu);
    return st;
}

bool srv_ready(srv_req *r, si_server_model *m, enum MHD_Result *ret)
{
    int st = srv_state(r->s, m);
    if (st == SRV_READY)
        return true;
    *ret = srv_error(r, 503, st == SRV_LOADING ? "model_loading" : "shutting_down", NULL,
                     st == SRV_LOADING ? "the model is still loading: try again shortly"
                                       : "the server is shutting down");
    return false;
}

uint64_t srv_next_seed(si_server *s)
{
    uint64_t z = __atomic_add_fetch(&s->seed_counter, 0x9E3779B97F4A7C15ull, __ATOMIC_RELAXED);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Constant-time comparison of the Authorization header with "Bearer KEY". */
static bool authorized(si_server *s, struct MHD_Connection *c)
{
    const char *key = s->o.api_key;
    if (!key || !*key)
        return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(key), m = strlen(h);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(key[i] ^ (i < m ? h[i] : 0));
    return diff == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    si_server *s = cls;
    srv_req *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->s = s;
        r->conn = c;
        r->url = url;
        *con_cls = r;
        r->route = find_route(url);
        if (!(r->route && r->route->public_) && !authorized(s, c))
            return srv_error(r, MHD_HTTP_UNAUTHORIZED, "invalid_api_key", NULL,
                             "missing or wrong API key: send the header 'Authorization: Bearer KEY'");
        if (!r->route)
            return srv_error(r, MHD_HTTP_NOT_FOUND, "unknown_url", NULL, "unknown endpoint %s %s", method, url);
        bool get = strcmp(r->route->method, "GET") == 0;
        if (strcmp(method, r->route->method) != 0 && !(get && strcmp(method, "HEAD") == 0))
            return srv_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", NULL,
                             "%s needs %s, not %s", r->route->path, r->route->method, method);
        if (get)
            return r->route->handler(r);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || end == cl || n > s->o.max_body)
                return srv_error(r, 413, "request_too_large", NULL,
                                 "the request body (%s bytes) is larger than the limit of %llu bytes (--max-body)",
                                 cl, (unsigned long long)s->o.max_body);
        }
        return MHD_YES; /* the body comes next */
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_large)
            return MHD_YES;
        if (n > s->o.max_body - r->len) {
            r->too_large = true;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b)
                return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        r->body[r->len] = 0;
        return MHD_YES;
    }
    if (r->too_large)
        return srv_error(r, 413, "request_too_large", NULL,
                         "the request body is larger than the limit of %llu bytes (--max-body)",
                         (unsigned long long)s->o.max_body);
    return r->route->handler(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    srv_req *r = *con_cls;
    if (r) {
        if (r->generating)
            __atomic_fetch_sub(&r->s->generating, 1, __ATOMIC_RELEASE);
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    si_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        __atomic_fetch_add(&s->connections_open, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&s->connections_total, 1, __ATOMIC_RELAXED);
    } else {
        __atomic_fetch_sub(&s->connections_open, 1, __ATOMIC_RELAXED);
    }
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = 0;
    /* what MHD says when a stream ends early because its client hung up */
    if (strstr(line, "Application reported internal error"))
        return;
    fprintf(stderr, "stream-server: http: %s\n", line);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int si_server_start(si_server **out, const si_server_opts *o, si_error *err)
{
    *out = NULL;
    si_server *s = calloc(1, sizeof *s);
    if (!s)
        return si_errorf(err, SI_ENOMEM, "out of memory");
    s->o = *o;
    s->o.host = strdup(o->host ? o->host : "127.0.0.1");
    s->o.api_key = o->api_key && *o->api_key ? strdup(o->api_key) : NULL;
    s->o.model_name = strdup(o->model_name ? o->model_name : "model");
    if (!s->o.max_body)
        s->o.max_body = 8u << 20;
    if (!(s->o.keepalive_s > 0))
        s->o.keepalive_s = 15;
    if (!s->o.idle_timeout_s)
        s->o.idle_timeout_s = 60;
    if (!s->o.max_connections)
        s->o.max_connections = 256;
    s->quiesced_fd = -1;
    s->started_at = si_now_s();
    s->created_unix = (long long)time(NULL);
    s->seed_counter = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    pthread_mutex_init(&s->mu, NULL);
    if (!s->o.host || !s->o.model_name || (o->api_key && *o->api_key && !s->o.api_key)) {
        si_server_free(s);
        return si_errorf(err, SI_ENOMEM, "out of memory");
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%u", o->port);
    int gai = getaddrinfo(s->o.host, port, &hints, &ai);
    if (gai != 0) {
        si_server_free(s);
        return si_errorf(err, SI_EINVAL, "--host %s: %s", o->host ? o->host : "127.0.0.1", gai_strerror(gai));
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_AUTO |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, o->port, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, on_log, s,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->o.idle_timeout_s,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        int e = errno;
        si_server_free(s);
        return si_errorf(err, SI_EIO, "cannot listen on %s port %u: %s", o->host ? o->host : "127.0.0.1", o->port,
                         e ? strerror(e) : "libmicrohttpd refused to start");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    *out = s;
    return SI_OK;
}

uint16_t si_server_port(const si_server *s) { return s->port; }

void si_server_attach(si_server *s, const si_server_model *m)
{
    pthread_mutex_lock(&s->mu);
    s->m = *m;
    free(s->chat_error);
    s->chat_error = dup_or_null(m->chat_error);
    s->m.chat_error = s->chat_error;
    s->engine_alive = true;
    if (s->state == SRV_LOADING)
        s->state = SRV_READY;
    pthread_mutex_unlock(&s->mu);
}

void si_server_quiesce(si_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->state = SRV_STOPPING;
    pthread_mutex_unlock(&s->mu);
    if (s->d && s->quiesced_fd < 0) {
        MHD_socket fd = MHD_quiesce_daemon(s->d);
        s->quiesced_fd = fd == MHD_INVALID_SOCKET ? -1 : (int)fd;
    }
}

void si_server_detach(si_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->state = SRV_STOPPING;
    s->engine_alive = false;
    s->m.engine = NULL;
    pthread_mutex_unlock(&s->mu);
}

void si_server_free(si_server *s)
{
    if (!s)
        return;
    /* Let the answers of finished requests reach their clients (a shutdown's error
     * events included) before the connections are closed; a client that does not
     * read gets 10 s. */
    for (int i = 0; i < 1000 && __atomic_load_n(&s->generating, __ATOMIC_ACQUIRE); i++)
        usleep(10 * 1000);
    if (s->d)
        MHD_stop_daemon(s->d);
    if (s->quiesced_fd >= 0)
        close(s->quiesced_fd);
    pthread_mutex_destroy(&s->mu);
    free((char *)s->o.host);
    free((char *)s->o.api_key);
    free((char *)s->o.model_name);
    free(s->chat_error);
    free(s);
}
