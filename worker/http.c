/*
 * The HTTP front end (worker/http.h, docs/HTTP.md). A connection is a task owner: it parses one
 * request (libhttp-parser), turns it into a task_submission, and while the task runs it reads
 * nothing more, so pipelined requests are answered in order; the response is built from the
 * task's result with the framing recomputed (Content-Length), hop-by-hop headers dropped.
 * Limits: http_max_header (431), max_request_body (413), http_header_timeout (408), max_clients
 * per worker (shared with the msgpack sockets), and every buffer counts in worker_buffer_budget.
 */
#include "worker/http.h"
#include "worker/http_req.h"
#include "worker/task.h"
#include "worker/tunnel.h"

#include "common/buf.h"
#include "common/headers.h"
#include "common/limits.h"
#include "common/listen_addr.h"
#include "common/list.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_READ_CHUNK 16384

typedef struct http_conn {
    task_owner owner; /* first: the task layer's view of this client */
    worker_ctx *w;
    int fd;
    ev_io rio, wio;
    ev_timer hdr_w;           /* http_header_timeout from a request's first byte to its head's end */
    http_req rq;              /* the request being read (worker/http_req.h) */
    char *in;                 /* received, not yet parsed */
    size_t in_len, in_cap;
    char *out;                /* response bytes not yet written */
    size_t out_len, out_off, out_cap;
    int busy;                 /* its task runs, or its response is being written */
    int keep_alive, head_method;
    int closing;              /* close once out is written */
    size_t counted;           /* bytes counted in w->buffered */
    struct http_conn *prev, *next;
} http_conn;

static void read_cb(struct ev_loop *loop, ev_io *io, int revents);
static void write_cb(struct ev_loop *loop, ev_io *io, int revents);
static int process(http_conn *c);

/* ---- buffers ---- */

static void account(http_conn *c)
{
    size_t now = c->in_cap + c->out_cap + http_req_held(&c->rq);
    c->w->buffered += now - c->counted;
    c->counted = now;
}


static int out_append(http_conn *c, const char *p, size_t n)
{
    if (buf_grow(&c->out, &c->out_cap, c->out_len + n, SIZE_MAX / 2))
        return -1;
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static int out_printf(http_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int out_printf(http_conn *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    return out_append(c, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* ---- connection life ---- */

/* w->n_http_idle counts the clients with no request in progress (the scheduler's demand) */
static void set_busy(http_conn *c, int busy)
{
    if (c->busy != busy)
        c->w->n_http_idle += busy ? -1u : 1u;
    c->busy = busy;
}

static void conn_free(http_conn *c)
{
    worker_ctx *w = c->w;
    set_busy(c, 1);
    c->closing = 1;
    task_owner_cancel_all(&c->owner, ERR_CANCELLED, "client disconnected");
    ev_io_stop(w->loop, &c->rio);
    ev_io_stop(w->loop, &c->wio);
    ev_timer_stop(w->loop, &c->hdr_w);
    if (c->fd >= 0)
        close(c->fd);
    LIST_UNLINK(w->http_conns, c, prev, next);
    w->n_http_conns--;
    shm_clients_set(w->tbl, w->index, w->n_conns, w->n_http_conns, w->n_tunnels);
    w->buffered -= c->counted;
    free(c->in);
    free(c->out);
    http_req_free(&c->rq);
    free(c);
    worker_need_dispatch(w);
}

static void start_writing(http_conn *c)
{
    account(c);
    if (!ev_is_active(&c->wio))
        ev_io_start(c->w->loop, &c->wio);
}

/* ---- responses ---- */

static const char *reason(int status)
{
    const char *r = http_status_str((enum http_status)status);
    return strcmp(r, "<unknown>") == 0 ? "Status" : r;
}

/* An error answered by the front end itself: one line of text saying why. */
static void respond_error(http_conn *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void respond_error(http_conn *c, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    size_t ml = (size_t)n < sizeof msg - 1 ? (size_t)n : sizeof msg - 2;
    for (size_t i = 0; i < ml; i++) /* one line, always */
        if (msg[i] == '\r' || msg[i] == '\n')
            msg[i] = ' ';
    msg[ml++] = '\n';
    out_printf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
                  "X-Scatter-Error: %s\r\n",
               status, reason(status), ml, code);
    if (status == 503)
        out_printf(c, "Retry-After: 1\r\n");
    if (status == 407)
        out_printf(c, "Proxy-Authenticate: Basic realm=\"scatter\"\r\n");
    out_printf(c, "Connection: %s\r\n\r\n", c->keep_alive && !c->closing ? "keep-alive" : "close");
    if (!c->head_method)
        out_append(c, msg, ml);
    /* said close, so close: a pipelined request after a Connection: close one is not served */
    if (!c->keep_alive)
        c->closing = 1;
    start_writing(c);
}

static int status_of(scatter_err e)
{
    switch (e) {
    case ERR_BAD_REQUEST: return 400;
    case ERR_TOO_LARGE: return 502;
    case ERR_POOL_FULL:
    case ERR_CIRCUIT_OPEN:
    case ERR_SHUTTING_DOWN:
    case ERR_TOO_MANY_CLIENTS: return 503;
    case ERR_TIMEOUT: return 504;
    default: return 502;
    }
}

/* Copies the end-to-end headers of the target's response: not its framing, not hop-by-hop,
 * not the headers its Connection header names. */
static void copy_headers(http_conn *c, const char *block, size_t len, int keep_length)
{
    const char *end = block + len, *conn_list = NULL;
    size_t conn_len = 0;
    for (const char *line = block; line < end;) { /* Connection's tokens first */
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break;
        if ((size_t)(nl - line) > 11 && strncasecmp(line, "connection:", 11) == 0) {
            conn_list = line + 11;
            conn_len = (size_t)(nl - conn_list);
        }
        line = nl + 1;
    }
    int first = 1;
    for (const char *line = block; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break;
        const char *colon = first ? NULL : memchr(line, ':', (size_t)(nl - line));
        first = 0;
        const char *next = nl + 1;
        if (colon) {
            size_t nn = (size_t)(colon - line);
            hdr_kind k = hdr_classify(line, nn);
            int keep = k == HDR_PASS || k == HDR_HOST ||
                       (keep_length && k == HDR_FRAMING && nn == 14 && strncasecmp(line, "content-length", 14) == 0);
            if (keep && conn_list && hdr_in_connection_list(conn_list, conn_len, line, nn))
                keep = 0;
            if (keep) {
                const char *ve = nl;
                while (ve > colon && (ve[-1] == '\r' || ve[-1] == ' '))
                    ve--;
                out_append(c, line, (size_t)(ve - line));
                out_append(c, "\r\n", 2);
            }
        }
        line = next;
    }
}

static void deliver_result(task_owner *o, task *t, const task_result *r)
{
    http_conn *c = (http_conn *)o;
    if (c->closing)
        return;
    int bodiless = c->head_method || r->status == 204 || r->status == 304 || r->status < 200;
    out_printf(c, "HTTP/1.1 %ld %s\r\n", r->status, reason((int)r->status));
    copy_headers(c, r->headers ? r->headers : "", r->headers_len, c->head_method);
    if (!c->head_method && r->status != 204 && r->status != 304 && r->status >= 200)
        out_printf(c, "Content-Length: %zu\r\n", r->body_len);
    if (c->w->cfg->http_scatter_headers)
        out_printf(c, "X-Scatter-Proxy: %s\r\nX-Scatter-Attempts: %u\r\n", r->proxy, r->attempts);
    out_printf(c, "Connection: %s\r\n\r\n", c->keep_alive ? "keep-alive" : "close");
    if (!bodiless)
        out_append(c, r->body, r->body_len);
    if (!c->keep_alive)
        c->closing = 1;
    start_writing(c);
}

static void deliver_failure(task_owner *o, task *t, const task_failure *f)
{
    http_conn *c = (http_conn *)o;
    if (c->closing)
        return;
    respond_error(c, status_of(f->code), err_code(f->code), "scatter: %s: %s%s%s", err_code(f->code), f->message,
                  f->last_error[0] ? "; last error: " : "", f->last_error);
}

static void forget(task_owner *o, task *t)
{
    (void)o;
    (void)t;
}

static int backlogged(const task_owner *o)
{
    (void)o;
    return 0; /* one task per connection: its response is the only thing that can wait */
}

static const task_owner_ops HTTP_TASK_OPS = {
    .deliver_result = deliver_result,
    .deliver_failure = deliver_failure,
    .forget = forget,
    .backlogged = backlogged,
};

/* ---- parsing (worker/http_req.c) ---- */

/* The header timer runs from a request's first byte to its head's end. */
static void on_req_begin(http_req *r)
{
    http_conn *c = r->owner;
    ev_timer_set(&c->hdr_w, c->w->cfg->http_header_timeout_ms / 1000.0, 0.);
    ev_timer_start(c->w->loop, &c->hdr_w);
}

static void on_req_head(http_req *r)
{
    http_conn *c = r->owner;
    ev_timer_stop(c->w->loop, &c->hdr_w);
}

/* 1 if the URL names this listener itself (a request loop). */
static int names_us(const http_conn *c, const char *url)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, strlen(url), 0, &u) || !(u.field_set & (1 << UF_HOST)))
        return 0;
    char host[256];
    size_t hl = u.field_data[UF_HOST].len < sizeof host - 1 ? u.field_data[UF_HOST].len : sizeof host - 1;
    memcpy(host, url + u.field_data[UF_HOST].off, hl);
    host[hl] = '\0';
    unsigned port = u.port ? u.port : (strncmp(url, "https", 5) == 0 ? 443 : 80);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(c->w->http_fd, (struct sockaddr *)&ss, &sl))
        return 0;
    char ip[INET6_ADDRSTRLEN] = "";
    unsigned lport = 0;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        lport = ntohs(a->sin_port);
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        lport = ntohs(a->sin6_port);
    }
    return port == lport && (strcmp(host, ip) == 0 || strcasecmp(host, "localhost") == 0);
}

/* CONNECT host:port: the connection becomes a tunnel (worker/tunnel.c), which answers. -1 if
 * c is gone (handed over), 0 if it was answered here. */
static int handle_connect(http_conn *c)
{
    worker_ctx *w = c->w;
    char key[SHM_HOST_NAME_MAX];
    unsigned long port;
    http_refusal why;
    if (http_req_connect_target(&c->rq, w->cfg->connect_ports, key, sizeof key, &port, &why)) {
        respond_error(c, why.status, why.code, "%s", why.msg);
        return 0;
    }
    char url[SHM_HOST_NAME_MAX + 16];
    snprintf(url, sizeof url, "http://%s/", key);
    if (names_us(c, url)) {
        respond_error(c, 400, "bad_request", "scatter: the CONNECT names this proxy itself (a loop)");
        return 0;
    }
    host_rt *h;
    int rc = worker_host_acquire(w, key, &h);
    if (rc < 0) {
        respond_error(c, rc == -ENOSPC ? 503 : 400, rc == -ENOSPC ? "pool_full" : "bad_request",
                      "scatter: cannot register host '%s': %s", key,
                      rc == -ENOSPC ? "every max_hosts slot is in use" : "bad host name");
        return 0;
    }
    /* the tunnel takes the socket and the bytes the client already sent after the head */
    int fd = c->fd;
    c->fd = -1;
    tunnel_open(w, fd, h, key, c->in, c->in_len);
    c->in_len = 0;
    c->closing = 1;
    conn_free(c);
    return -1;
}

/* Answers, or starts the task of, the request just parsed. -1 if c is gone (a tunnel took it). */
static int handle_request(http_conn *c)
{
    worker_ctx *w = c->w;
    int method = http_req_method(&c->rq);
    c->keep_alive = http_req_keep_alive(&c->rq);
    c->head_method = method == HTTP_HEAD;
    if (!http_req_auth_ok(&c->rq, w->cfg->http_auth)) {
        respond_error(c, 407, "bad_request", "scatter: proxy authentication required (http_auth)");
        return 0;
    }
    if (method == HTTP_CONNECT)
        return handle_connect(c);
    char url[8192];
    http_refusal why;
    if (http_req_url(&c->rq, url, sizeof url, &why)) {
        respond_error(c, why.status, why.code, "%s", why.msg);
        return 0;
    }
    if (names_us(c, url)) {
        respond_error(c, 400, "bad_request", "scatter: the request names this proxy itself (a loop)");
        return 0;
    }
    task_submission s = {.id = 0, .url = {url, (uint32_t)strlen(url)}};
    const char *m = http_method_str((enum http_method)method);
    s.method = (proto_str){m, (uint32_t)strlen(m)};
    s.body = (proto_str){c->rq.body ? c->rq.body : "", (uint32_t)c->rq.body_len};
    http_knobs k;
    if (http_req_knobs(&c->rq, &k, &why)) {
        respond_error(c, why.status, why.code, "%s", why.msg);
        return 0;
    }
    s.race_width = k.race_width;
    s.timeout_ms = k.timeout_ms;
    s.max_attempts = k.max_attempts;
    s.has_race_width = k.has_race_width;
    s.has_timeout = k.has_timeout;
    s.has_max_attempts = k.has_max_attempts;
    char cred[2 * CFG_STR_MAX];
    s.session = http_req_session(&c->rq, cred, sizeof cred);
    /* the client's end-to-end headers; the task layer drops framing and hop-by-hop ones */
    proto_str hn[HTTP_MAX_HEADERS], hv[HTTP_MAX_HEADERS];
    s.n_headers = http_req_forward_headers(&c->rq, hn, hv);
    s.hname = hn;
    s.hval = hv;
    char err[400];
    task *t;
    scatter_err e = task_submit(&c->owner, &s, &t, err, sizeof err);
    if (e != ERR_OK) {
        respond_error(c, e == ERR_TOO_LARGE ? 413 : status_of(e), err_code(e), "scatter: %s: %s", err_code(e),
                      err);
        return 0;
    }
    return 0;
}

/* Parses what was read until a request is complete, runs it, and stops there: the next one is
 * parsed once its response is written. -1 if c is gone. */
static int process(http_conn *c)
{
    while (!c->busy && !c->closing && c->in_len) {
        size_t n;
        http_refusal why;
        http_read rd = http_req_feed(&c->rq, c->in, c->in_len, &n, &why);
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
        if (rd == HTTP_READ_BAD) {
            c->keep_alive = 0;
            c->closing = 1;
            ev_timer_stop(c->w->loop, &c->hdr_w);
            respond_error(c, why.status, why.code, "%s", why.msg);
            return 0;
        }
        if (rd == HTTP_READ_DONE) {
            set_busy(c, 1);
            if (handle_request(c) < 0)
                return -1;
        }
    }
    account(c);
    return 0;
}

static void read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    http_conn *c = io->data;
    if (c->busy || c->closing) { /* nothing more is read until the response is out */
        ev_io_stop(loop, &c->rio);
        return;
    }
    if (c->in_cap - c->in_len < HTTP_READ_CHUNK &&
        buf_grow(&c->in, &c->in_cap, c->in_len + HTTP_READ_CHUNK, c->in_len + HTTP_READ_CHUNK)) {
        conn_free(c);
        return;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_free(c); /* the client went away: its task, if any, is cancelled */
        return;
    }
    if (n > 0) {
        c->in_len += (size_t)n;
        process(c);
    }
}

static void write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    http_conn *c = io->data;
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            conn_free(c);
            return;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    ev_io_stop(loop, &c->wio);
    if (c->closing) {
        conn_free(c);
        return;
    }
    if (c->out_cap > (1u << 20)) { /* a large response is out: give its buffer back */
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    set_busy(c, 0);
    account(c);
    if (process(c) < 0) /* pipelined requests already read */
        return;
    if (!c->busy && !c->closing)
        ev_io_start(loop, &c->rio);
}

static void hdr_timeout_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    http_conn *c = tw->data;
    c->keep_alive = 0;
    c->closing = 1;
    ev_io_stop(loop, &c->rio);
    respond_error(c, 408, "bad_request", "scatter: request head not complete within http_header_timeout = %u ms",
                  c->w->cfg->http_header_timeout_ms);
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    worker_ctx *w = io->data;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        const char *code = w->stopping ? "shutting_down"
                           : w->n_conns + w->n_http_conns + w->n_tunnels >= w->cfg->max_clients ? "too_many_clients"
                                                                                                 : NULL;
        http_conn *c = code ? NULL : calloc(1, sizeof *c);
        if (!c) {
            char body[128], msg[512];
            int bl = snprintf(body, sizeof body, "scatter: %s\n",
                              !code ? "out of memory" : w->stopping ? "the daemon is shutting down"
                                                                    : "this worker already has max_clients clients");
            int n = snprintf(msg, sizeof msg,
                             "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                             "X-Scatter-Error: %s\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
                             bl, code ? code : "internal", body);
            ssize_t sent = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)sent; /* best effort on a fresh socket; the close says the rest */
            close(fd);
            continue;
        }
        c->w = w;
        c->fd = fd;
        c->owner.ops = &HTTP_TASK_OPS;
        c->owner.w = w;
        http_req_init(&c->rq, w->cfg->http_max_header, w->cfg->max_request_body, c);
        c->rq.on_begin = on_req_begin;
        c->rq.on_head = on_req_head;
        ev_io_init(&c->rio, read_cb, fd, EV_READ);
        ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
        c->rio.data = c->wio.data = c;
        ev_init(&c->hdr_w, hdr_timeout_cb);
        c->hdr_w.data = c;
        ev_io_start(loop, &c->rio);
        LIST_PUSH(w->http_conns, c, prev, next);
        w->n_http_conns++;
        w->n_http_idle++;
        shm_clients_set(w->tbl, w->index, w->n_conns, w->n_http_conns, w->n_tunnels);
    }
}

/* ---- the listener ---- */

int http_listen_start(worker_ctx *w)
{
    w->http_fd = -1;
    if (!w->cfg->http_listen[0])
        return 0;
    struct sockaddr_storage ss;
    unsigned len;
    char err[256];
    if (listen_addr_parse(w->cfg->http_listen, &ss, &len, err, sizeof err)) {
        LOGE(&w->log, "http_listen %s", err);
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) || bind(fd, (struct sockaddr *)&ss, len) ||
        listen(fd, 512)) {
        int e = errno;
        LOGE(&w->log, "http_listen %s: %s", w->cfg->http_listen, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    w->http_fd = fd;
    ev_io_init(&w->http_w, accept_cb, fd, EV_READ);
    w->http_w.data = w;
    ev_io_start(w->loop, &w->http_w);
    return 0;
}

void http_listen_stop(worker_ctx *w)
{
    if (w->http_fd < 0)
        return;
    ev_io_stop(w->loop, &w->http_w);
    close(w->http_fd);
    w->http_fd = -1;
}

void http_close_all(worker_ctx *w)
{
    while (w->http_conns)
        conn_free(w->http_conns);
}

void http_shutdown_all(worker_ctx *w)
{
    for (http_conn *c = w->http_conns, *n; c; c = n) {
        n = c->next;
        task_owner_cancel_all(&c->owner, ERR_SHUTTING_DOWN, "the daemon stopped before the task finished");
        c->keep_alive = 0;
        c->closing = 1;
        ev_io_stop(w->loop, &c->rio);
        if (c->out_off < c->out_len)
            start_writing(c);
        else
            conn_free(c);
    }
}
