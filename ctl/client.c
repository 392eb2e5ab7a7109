/*
 * The client library's engine: connections, task slots, resubmission.
 *
 * Invariants:
 *  - Every task slot is in exactly one place: the free list, the send queue (to be written on
 *    the least loaded connection), the backoff list (pool_full, waiting for its time), SENT on
 *    one connection, or the ready list (result waiting for the caller).
 *  - A task's wire id is its library id: (generation << 32) | slot. Ids of sc_call requests are
 *    below 2^32, so replies are routed without a lookup table.
 *  - The request is packed once at sc_submit and kept until the result is delivered; a
 *    resubmission writes the same bytes again (same id: the previous owner has answered or
 *    is gone, so the id is unique among live tasks on the new connection).
 *  - conns[0] is the control connection (main socket); it carries tasks only as a fallback.
 */
#include "ctl/scatter_client.h"

#include "common/buf.h"
#include "common/limits.h"
#include "common/rng.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "common/paths.h"
#include "common/proto.h"

#define NIL UINT32_MAX
#define RETRY_EVERY_MS 200
#define PRE_HELLO_LIMIT (16u << 20)

enum { T_FREE, T_QUEUED, T_BACKOFF, T_SENT, T_READY };

typedef struct {
    uint64_t id;
    void *user;
    uint8_t *req;
    size_t req_len;
    int state;
    unsigned conn;
    int cancel;
    unsigned resubmits;
    int64_t not_before;
    uint32_t next;   /* link in whichever list holds the slot */
    sc_result *res;
} task;

typedef struct {
    int fd;             /* -1 while down */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    unsigned worker;    /* from this connection's hello */
    int task_conn;      /* carries tasks */
    int retrying;       /* down, reconnect attempts until give_up_at */
    int gone;           /* given up for good */
    int64_t retry_at, give_up_at;
    uint8_t *rbuf;
    size_t rlen, rcap;
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
    unsigned owed;
} conn;

typedef struct {
    uint32_t head, tail;
} tlist;

struct sc_client {
    sc_options opt;
    char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    sc_server_info info;
    size_t recv_limit;
    conn *conns;
    unsigned nconns;
    task *tasks;
    uint32_t cap;
    uint32_t gen;
    tlist free_l, send_l, back_l, ready_l;
    int64_t back_due;   /* earliest not_before in back_l (approximate lower bound) */
    unsigned outstanding;
    unsigned backoff_level;
    uint64_t rng;
    /* one sc_call at a time */
    int call_waiting, call_done, call_err;
    uint64_t call_id, next_call_id;
    msgpack_unpacked call_reply;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void seterr(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

int sc_socket_path(const char *explicit_path, char *out, size_t cap, char *err, size_t errcap)
{
    const char *e = getenv("SCATTER_SOCKET");
    const char *p = explicit_path && *explicit_path ? explicit_path : e && *e ? e : NULL;
    if (!p)
        return paths_default(PATHS_SOCKET_NAME, out, cap, err, errcap);
    if (strlen(p) >= cap) {
        seterr(err, errcap, "socket path too long: %s", p);
        return -ENAMETOOLONG;
    }
    memcpy(out, p, strlen(p) + 1);
    return 0;
}

/* ---- lists ---- */

static void l_push(sc_client *c, tlist *l, uint32_t i)
{
    c->tasks[i].next = NIL;
    if (l->tail == NIL)
        l->head = i;
    else
        c->tasks[l->tail].next = i;
    l->tail = i;
}

static uint32_t l_pop(sc_client *c, tlist *l)
{
    uint32_t i = l->head;
    if (i != NIL) {
        l->head = c->tasks[i].next;
        if (l->head == NIL)
            l->tail = NIL;
    }
    return i;
}

/* ---- buffers ---- */

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = buf_next_cap(*cap, need, 4096, SIZE_MAX);
    uint8_t *p = realloc(*buf, n);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

static int conn_queue(conn *k, const void *data, size_t n)
{
    if (k->woff && k->woff == k->wlen)
        k->woff = k->wlen = 0;
    if (grow(&k->wbuf, &k->wcap, k->wlen + n))
        return -ENOMEM;
    memcpy(k->wbuf + k->wlen, data, n);
    k->wlen += n;
    return 0;
}

/* ---- sockets ---- */

static int unix_connect(const char *path, char *err, size_t errcap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        seterr(err, errcap, "socket path too long: %s", path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    /* A Unix connect either completes or fails at once, except EAGAIN when the backlog is
     * full: treat that like a refusal and let the caller retry. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        seterr(err, errcap, "cannot connect to %s: %s", path, strerror(e));
        return -e;
    }
    /* Whoever can create the socket file can answer in the daemon's place, read our URLs
     * (tokens in queries) and forge bodies: only root or our own uid may be the server.
     * SO_PEERCRED gives the credentials the server had when it called listen(). */
    struct ucred cr;
    socklen_t crlen = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0) {
        int e = errno;
        close(fd);
        seterr(err, errcap, "cannot check who serves %s: %s", path, strerror(e));
        return -e;
    }
    if (cr.uid != 0 && cr.uid != geteuid()) {
        close(fd);
        seterr(err, errcap,
               "refusing %s: it is served by uid %u (pid %d), which is neither root nor our uid %u; "
               "another user may have taken the socket's place",
               path, (unsigned)cr.uid, (int)cr.pid, (unsigned)geteuid());
        return -EPERM;
    }
    return fd;
}

static void conn_close(conn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    k->rlen = k->wlen = k->woff = 0;
}

/* Writes what it can. 0, or negative errno if the connection is broken. */
static int conn_flush(conn *k)
{
    while (k->woff < k->wlen) {
        ssize_t n = send(k->fd, k->wbuf + k->woff, k->wlen - k->woff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -errno;
        }
        k->woff += (size_t)n;
    }
    k->woff = k->wlen = 0;
    return 0;
}

/* Reads what is there. 1 if bytes arrived, 0 if none, -EPIPE on EOF, negative errno. */
static int conn_read(conn *k, size_t limit)
{
    int got = 0;
    for (;;) {
        if (grow(&k->rbuf, &k->rcap, k->rlen + 65536))
            return -ENOMEM;
        ssize_t n = recv(k->fd, k->rbuf + k->rlen, k->rcap - k->rlen, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return got;
            return -errno;
        }
        if (n == 0)
            return got ? got : -EPIPE;
        k->rlen += (size_t)n;
        got = 1;
        if (k->rlen > limit + 65536)
            return got; /* let the scanner reject it before reading more */
    }
}

static void conn_consume(conn *k, size_t n)
{
    memmove(k->rbuf, k->rbuf + n, k->rlen - n);
    k->rlen -= n;
}

/* Takes one complete message off the read buffer. 1 and *msg, 0 if incomplete, -EPROTO.
 * msgpack_unpack_next leaves strings pointing into its input, so the frame is unpacked from a
 * private copy that the message's zone frees: the reply stays valid however long the caller
 * (sc_call's caller, a result being built) keeps it, while the read buffer moves on. */
static int conn_take(conn *k, size_t limit, size_t *consumed, msgpack_unpacked *msg)
{
    long r = proto_frame_scan(k->rbuf, k->rlen, limit);
    if (r == FRAME_NEED_MORE)
        return 0;
    if (r < 0)
        return -EPROTO;
    char *copy = malloc((size_t)r);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, k->rbuf, (size_t)r);
    size_t off = 0;
    if (msgpack_unpack_next(msg, copy, (size_t)r, &off) != MSGPACK_UNPACK_SUCCESS || !msg->zone) {
        free(copy);
        return -EPROTO;
    }
    if (!msgpack_zone_push_finalizer(msg->zone, free, copy)) {
        free(copy);
        return -ENOMEM;
    }
    *consumed = (size_t)r;
    conn_consume(k, (size_t)r);
    return 1;
}


/* ---- hello ---- */

static void info_from_hello(const msgpack_object *o, sc_server_info *in)
{
    uint64_t v;
    proto_str s;
    memset(in, 0, sizeof *in);
    in->max_frame = 4u << 20;
    in->max_race = SC_RACE_MAX;
    if (!proto_get_u64(o, "protocol", &v))
        in->protocol = (unsigned)v;
    if (!proto_get_str(o, "version", &s))
        snprintf(in->version, sizeof in->version, "%.*s", (int)s.n, s.p);
    if (!proto_get_u64(o, "workers", &v))
        in->workers = (unsigned)v;
    if (!proto_get_u64(o, "worker", &v))
        in->worker = (unsigned)v;
    proto_get_u64(o, "max_frame", &in->max_frame);
    proto_get_u64(o, "max_request_body", &in->max_request_body);
    proto_get_u64(o, "max_response_body", &in->max_response_body);
    proto_get_u64(o, "pool_capacity", &in->pool_capacity);
    if (!proto_get_u64(o, "max_race", &v))
        in->max_race = (unsigned)v;
}

/* Blocking hello on a fresh connection. On success, if `keep` is non-NULL the reply stays in
 * it (caller destroys); 0 or negative errno. */
static int conn_hello(conn *k, int timeout_ms, sc_server_info *info, msgpack_unpacked *keep, char *err, size_t errcap)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    proto_map req;
    proto_map_begin(&req, &sb);
    proto_map_str(&req, "op", "hello");
    proto_map_u64(&req, "id", 1);
    int rc = proto_map_end(&req) ? -ENOMEM : conn_queue(k, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    if (rc)
        return rc;
    int64_t deadline = now_ms() + timeout_ms;
    msgpack_unpacked msg;
    msgpack_unpacked_init(&msg);
    for (;;) {
        if ((rc = conn_flush(k)) < 0) {
            seterr(err, errcap, "hello on %s: %s", k->path, strerror(-rc));
            break;
        }
        size_t used;
        rc = conn_take(k, PRE_HELLO_LIMIT, &used, &msg);
        if (rc < 0) {
            seterr(err, errcap, "hello on %s: malformed reply", k->path);
            break;
        }
        if (rc == 1) {
            int ok = 0;
            uint64_t id = 0;
            if (proto_get_u64(&msg.data, "id", &id) || id != 1)
                continue; /* not ours: nothing else is in flight yet, but be tolerant */
            if (proto_get_bool(&msg.data, "ok", &ok) || !ok) {
                proto_str m = {"no message", 10};
                proto_get_str(&msg.data, "message", &m);
                seterr(err, errcap, "hello refused on %s: %.*s", k->path, (int)m.n, m.p);
                rc = -EPROTO;
                break;
            }
            info_from_hello(&msg.data, info);
            if (keep) {
                *keep = msg;
                return 0;
            }
            rc = 0;
            break;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            seterr(err, errcap, "hello on %s: no reply within %d ms", k->path, timeout_ms);
            rc = -ETIMEDOUT;
            break;
        }
        struct pollfd p = {.fd = k->fd, .events = POLLIN | (k->wlen > k->woff ? POLLOUT : 0)};
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            rc = conn_read(k, PRE_HELLO_LIMIT);
            if (rc < 0) {
                seterr(err, errcap, "hello on %s: %s", k->path, rc == -EPIPE ? "connection closed" : strerror(-rc));
                break;
            }
        }
    }
    msgpack_unpacked_destroy(&msg);
    return rc;
}

/* Connects k to its path and says hello. 0 or negative errno. */
static int conn_open(sc_client *c, conn *k, char *err, size_t errcap)
{
    int fd = unix_connect(k->path, err, errcap);
    if (fd < 0)
        return fd;
    k->fd = fd;
    k->rlen = k->wlen = k->woff = 0;
    sc_server_info in;
    int rc = conn_hello(k, c->opt.connect_timeout_ms, &in, NULL, err, errcap);
    if (rc) {
        conn_close(k);
        return rc;
    }
    k->worker = in.worker;
    k->retrying = 0;
    return 0;
}

/* ---- results ---- */

static char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        if (n)
            memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static char *dupkey(const msgpack_object *o, const char *key)
{
    proto_str s;
    if (proto_get_str(o, key, &s))
        return dupn("", 0);
    return dupn(s.p, s.n);
}

void sc_result_free(sc_result *r)
{
    if (!r)
        return;
    free(r->message);
    free(r->host);
    free(r->last_error);
    free(r->proxy);
    for (size_t i = 0; i < r->n_headers; i++) {
        free((char *)r->headers[i].name);
        free((char *)r->headers[i].value);
    }
    free(r->headers);
    free(r->body);
    free(r);
}

static sc_result *result_local(const task *t, scatter_err e, const char *code, const char *message)
{
    sc_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->id = t->id;
    r->user = t->user;
    r->error = e;
    snprintf(r->code, sizeof r->code, "%s", code);
    r->message = dupn(message, strlen(message));
    r->host = dupn("", 0);
    r->last_error = dupn("", 0);
    r->proxy = dupn("", 0);
    r->resubmits = t->resubmits;
    if (!r->message || !r->host || !r->last_error || !r->proxy) {
        sc_result_free(r);
        return NULL;
    }
    return r;
}

static sc_result *result_from_reply(const task *t, const msgpack_object *o)
{
    sc_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->id = t->id;
    r->user = t->user;
    r->resubmits = t->resubmits;
    int ok = 0;
    proto_get_bool(o, "ok", &ok);
    r->ok = ok;
    if (ok) {
        r->error = ERR_OK;
        strcpy(r->code, "ok");
    } else {
        proto_str s = {"internal", 8};
        proto_get_str(o, "error", &s);
        snprintf(r->code, sizeof r->code, "%.*s", (int)(s.n < sizeof r->code ? s.n : sizeof r->code - 1), s.p);
        r->error = err_from_code(s.p, s.n);
        if (r->error == ERR_COUNT || r->error == ERR_OK)
            r->error = ERR_INTERNAL;
    }
    uint64_t v;
    if (!proto_get_u64(o, "status", &v))
        r->status = (unsigned)v;
    proto_get_u64(o, "attempts", &r->attempts);
    proto_get_u64(o, "race", &r->race);
    proto_get_u64(o, "latency_ms", &r->latency_ms);
    proto_get_u64(o, "elapsed_ms", &r->elapsed_ms);
    r->message = dupkey(o, "message");
    r->host = dupkey(o, "host");
    r->last_error = dupkey(o, "last_error");
    r->proxy = dupkey(o, "proxy");
    int bad = !r->message || !r->host || !r->last_error || !r->proxy;
    proto_str b;
    if (!bad && ok && !proto_get_str(o, "body", &b)) {
        r->body = (uint8_t *)dupn(b.p, b.n);
        r->body_len = b.n;
        bad = !r->body;
    }
    const msgpack_object *h = proto_map_get(o, "headers");
    if (!bad && h && h->type == MSGPACK_OBJECT_ARRAY && h->via.array.size) {
        r->headers = calloc(h->via.array.size, sizeof *r->headers);
        bad = !r->headers;
        for (uint32_t i = 0; !bad && i < h->via.array.size; i++) {
            const msgpack_object *p = &h->via.array.ptr[i];
            if (p->type != MSGPACK_OBJECT_ARRAY || p->via.array.size != 2 ||
                p->via.array.ptr[0].type != MSGPACK_OBJECT_STR || p->via.array.ptr[1].type != MSGPACK_OBJECT_STR)
                continue;
            sc_header *d = &r->headers[r->n_headers];
            d->name = dupn(p->via.array.ptr[0].via.str.ptr, p->via.array.ptr[0].via.str.size);
            d->value = dupn(p->via.array.ptr[1].via.str.ptr, p->via.array.ptr[1].via.str.size);
            r->n_headers++;
            bad = !d->name || !d->value;
        }
    }
    if (bad) {
        sc_result_free(r);
        return NULL;
    }
    return r;
}

/* Moves the task to the ready list with r (or an internal-error result if r is NULL). */
static void task_finish(sc_client *c, uint32_t i, sc_result *r)
{
    task *t = &c->tasks[i];
    if (!r)
        r = result_local(t, ERR_INTERNAL, "internal", "out of memory building the result");
    t->res = r; /* NULL only if even that failed: sc_next_result reports -ENOMEM */
    t->state = T_READY;
    free(t->req);
    t->req = NULL;
    l_push(c, &c->ready_l, i);
}

static void task_backoff(sc_client *c, uint32_t i)
{
    task *t = &c->tasks[i];
    /* Exponential over consecutive pool_full answers, with jitter so that many clients
     * (or many tasks of one client) do not come back in one burst. */
    unsigned base = 50u << (c->backoff_level < 2 ? c->backoff_level : 2);
    if (c->backoff_level < 8)
        c->backoff_level++;
    int64_t due = now_ms() + base + (int64_t)(rng_next(&c->rng) % (base / 2 + 1));
    t->state = T_BACKOFF;
    t->not_before = due;
    t->resubmits++;
    if (c->back_l.head == NIL || due < c->back_due)
        c->back_due = due;
    l_push(c, &c->back_l, i);
}

/* ---- connection loss ---- */

static void fail_all_queued(sc_client *c, const char *why)
{
    uint32_t i;
    while ((i = l_pop(c, &c->send_l)) != NIL)
        task_finish(c, i, result_local(&c->tasks[i], ERR_INTERNAL, "disconnected", why));
    while ((i = l_pop(c, &c->back_l)) != NIL)
        task_finish(c, i, result_local(&c->tasks[i], ERR_INTERNAL, "disconnected", why));
}

static int any_task_conn_alive(const sc_client *c)
{
    for (unsigned j = 0; j < c->nconns; j++)
        if (c->conns[j].task_conn && !c->conns[j].gone)
            return 1;
    return 0;
}

/* The connection broke: its tasks go back to the send queue (or end, if cancelled), and it is
 * retried for reconnect_ms. `poison` non-NULL: the server rejected our bytes, so its tasks end
 * with bad_request instead of being resent forever. */
static void conn_lost(sc_client *c, unsigned k, const char *poison)
{
    conn *cn = &c->conns[k];
    conn_close(cn);
    cn->owed = 0;
    for (uint32_t i = 0; i < c->cap; i++) {
        task *t = &c->tasks[i];
        if (t->state != T_SENT || t->conn != k)
            continue;
        if (t->cancel)
            task_finish(c, i, result_local(t, ERR_CANCELLED, "cancelled", "cancelled (connection closed)"));
        else if (poison)
            task_finish(c, i, result_local(t, ERR_BAD_REQUEST, "bad_request", poison));
        else {
            t->state = T_QUEUED;
            t->resubmits++;
            l_push(c, &c->send_l, i);
        }
    }
    if (c->call_waiting && k == 0) {
        c->call_waiting = 0;
        c->call_err = -ECONNRESET;
    }
    if (cn->task_conn && !cn->gone) {
        int64_t now = now_ms();
        if (!cn->retrying) {
            cn->retrying = 1;
            cn->give_up_at = now + c->opt.reconnect_ms;
        }
        /* The master restarts a dead worker after a short backoff; do not hammer it. */
        cn->retry_at = now + RETRY_EVERY_MS / 2;
    }
}

static void conn_give_up(sc_client *c, unsigned k)
{
    conn *cn = &c->conns[k];
    cn->retrying = 0;
    cn->gone = 1;
    if (any_task_conn_alive(c))
        return;
    /* Last resort: the main socket reaches whichever workers are still alive. */
    conn *m = &c->conns[0];
    if (!m->task_conn) {
        m->task_conn = 1;
        m->gone = 0;
        if (m->fd < 0) {
            m->retrying = 1;
            m->retry_at = now_ms();
            m->give_up_at = m->retry_at + c->opt.reconnect_ms;
        }
        return;
    }
    fail_all_queued(c, "lost every connection to scatterd");
}

static void try_reconnects(sc_client *c, int64_t now)
{
    for (unsigned k = 0; k < c->nconns; k++) {
        conn *cn = &c->conns[k];
        if (!cn->retrying || now < cn->retry_at)
            continue;
        if (conn_open(c, cn, NULL, 0) == 0)
            continue;
        if (now_ms() >= cn->give_up_at)
            conn_give_up(c, k);
        else
            cn->retry_at = now_ms() + RETRY_EVERY_MS;
    }
}

/* ---- dispatch ---- */

static void handle_message(sc_client *c, unsigned k, msgpack_unpacked *msg)
{
    const msgpack_object *o = &msg->data;
    uint64_t id = 0;
    proto_get_u64(o, "id", &id);
    int ok = 1;
    proto_get_bool(o, "ok", &ok);
    if (c->call_waiting && k == 0 && (id == c->call_id || (id == 0 && !ok))) {
        c->call_reply = *msg;
        msgpack_unpacked_init(msg); /* ownership moved to the waiting caller */
        c->call_waiting = 0;
        c->call_done = 1;
        return;
    }
    if (id == 0 && !ok) {
        /* The server found our stream malformed and is closing the connection. */
        proto_str m = {"malformed request", 17};
        proto_get_str(o, "message", &m);
        char why[256];
        snprintf(why, sizeof why, "server closed the connection: %.*s", (int)(m.n > 200 ? 200 : m.n), m.p);
        conn_lost(c, k, why);
        return;
    }
    uint32_t slot = (uint32_t)id;
    if ((id >> 32) == 0 || slot >= c->cap)
        return;
    task *t = &c->tasks[slot];
    if (t->id != id || t->state != T_SENT || t->conn != k)
        return; /* late reply for a task that already ended: nothing to do */
    c->conns[k].owed--;
    proto_str err;
    if (!ok && !t->cancel && !proto_get_str(o, "error", &err) && err.n == 9 && memcmp(err.p, "pool_full", 9) == 0) {
        task_backoff(c, slot);
        return;
    }
    if (ok)
        c->backoff_level = 0;
    task_finish(c, slot, result_from_reply(t, o));
}

static int process_input(sc_client *c, unsigned k)
{
    conn *cn = &c->conns[k];
    msgpack_unpacked msg;
    msgpack_unpacked_init(&msg);
    int rc = 0;
    size_t used;
    while (cn->fd >= 0 && (rc = conn_take(cn, c->recv_limit, &used, &msg)) == 1)
        handle_message(c, k, &msg);
    msgpack_unpacked_destroy(&msg);
    if (cn->fd >= 0 && rc < 0) {
        /* The daemon sent something we cannot parse: the stream cannot resynchronise, and
         * reconnecting to the same daemon would likely repeat it. */
        cn->gone = !cn->task_conn ? 0 : 1;
        conn_lost(c, k, NULL);
        if (cn->gone)
            conn_give_up(c, k);
        return -EPROTO;
    }
    return 0;
}

static int pick_conn(sc_client *c)
{
    int best = -1;
    for (unsigned k = 0; k < c->nconns; k++) {
        conn *cn = &c->conns[k];
        if (!cn->task_conn || cn->fd < 0)
            continue;
        if (best < 0 || cn->owed < c->conns[best].owed)
            best = (int)k;
    }
    return best;
}

static void move_due_backoffs(sc_client *c, int64_t now)
{
    if (c->back_l.head == NIL || now < c->back_due)
        return;
    tlist keep = {NIL, NIL};
    int64_t next = INT64_MAX;
    uint32_t i;
    while ((i = l_pop(c, &c->back_l)) != NIL) {
        task *t = &c->tasks[i];
        if (t->cancel) {
            task_finish(c, i, result_local(t, ERR_CANCELLED, "cancelled", "cancelled before it was resubmitted"));
        } else if (t->not_before <= now) {
            t->state = T_QUEUED;
            l_push(c, &c->send_l, i);
        } else {
            if (t->not_before < next)
                next = t->not_before;
            l_push(c, &keep, i);
        }
    }
    c->back_l = keep;
    c->back_due = next;
}

static void send_queued(sc_client *c)
{
    uint32_t i;
    while (c->send_l.head != NIL) {
        task *t = &c->tasks[c->send_l.head];
        if (t->cancel) {
            i = l_pop(c, &c->send_l);
            task_finish(c, i, result_local(t, ERR_CANCELLED, "cancelled", "cancelled before it was sent"));
            continue;
        }
        int k = pick_conn(c);
        if (k < 0)
            return; /* every connection is down: wait for a reconnect */
        i = l_pop(c, &c->send_l);
        if (conn_queue(&c->conns[k], t->req, t->req_len)) {
            task_finish(c, i, result_local(t, ERR_INTERNAL, "internal", "out of memory queueing the request"));
            continue;
        }
        t->state = T_SENT;
        t->conn = (unsigned)k;
        c->conns[k].owed++;
    }
}

/* One round of I/O: sends what is due, waits at most until `deadline` (or the next backoff or
 * reconnect time), reads and dispatches what arrived. */
static int pump(sc_client *c, int64_t deadline)
{
    int64_t now = now_ms();
    try_reconnects(c, now);
    move_due_backoffs(c, now);
    send_queued(c);
    if (c->send_l.head != NIL && !any_task_conn_alive(c))
        fail_all_queued(c, "lost every connection to scatterd");

    struct pollfd pf[c->nconns ? c->nconns : 1];
    unsigned idx[c->nconns ? c->nconns : 1];
    nfds_t n = 0;
    int64_t wake = deadline;
    if (c->back_l.head != NIL && c->back_due < wake)
        wake = c->back_due;
    for (unsigned k = 0; k < c->nconns; k++) {
        conn *cn = &c->conns[k];
        if (cn->retrying && cn->retry_at < wake)
            wake = cn->retry_at;
        if (cn->fd < 0)
            continue;
        pf[n] = (struct pollfd){.fd = cn->fd, .events = POLLIN | (cn->wlen > cn->woff ? POLLOUT : 0)};
        idx[n++] = k;
    }
    if (c->ready_l.head != NIL || c->call_done)
        wake = now; /* something to hand over already: just do non-blocking I/O */
    int64_t wait = wake - now;
    if (wait < 0)
        wait = 0;
    if (wait > 1000000)
        wait = 1000000;
    int rc = poll(pf, n, deadline < 0 ? -1 : (int)wait);
    if (rc < 0)
        return errno == EINTR ? 0 : -errno;
    for (nfds_t j = 0; j < n; j++) {
        unsigned k = idx[j];
        conn *cn = &c->conns[k];
        if (cn->fd != pf[j].fd)
            continue;
        if (pf[j].revents & POLLOUT) {
            if (conn_flush(cn) < 0) {
                conn_lost(c, k, NULL);
                continue;
            }
        }
        if (pf[j].revents & (POLLIN | POLLHUP | POLLERR)) {
            int r = conn_read(cn, c->recv_limit);
            process_input(c, k);
            if (r < 0 && cn->fd >= 0)
                conn_lost(c, k, NULL);
        }
    }
    return 0;
}

/* deadline for a relative timeout; -1 stays -1 (forever) */
static int64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

static int64_t pump_deadline(int64_t deadline)
{
    /* poll never sleeps past a second so reconnect and backoff timers keep running even when
     * the caller waits forever */
    int64_t cap = now_ms() + 1000;
    return deadline < 0 || deadline > cap ? cap : deadline;
}

/* ---- public ---- */

/* The main connection and its hello. On success *hello holds the reply (the caller destroys
 * it): worker_sockets is read from it. */
static int open_main(sc_client *c, msgpack_unpacked *hello, char *err, size_t errcap)
{
    c->conns = calloc(1, sizeof *c->conns);
    if (!c->conns)
        return -ENOMEM;
    c->nconns = 1;
    conn *m = &c->conns[0];
    m->fd = -1;
    strcpy(m->path, c->sock);
    int rc = unix_connect(m->path, err, errcap);
    if (rc < 0)
        return rc;
    m->fd = rc;
    rc = conn_hello(m, c->opt.connect_timeout_ms, &c->info, hello, err, errcap);
    if (rc)
        return rc;
    m->worker = c->info.worker;
    c->recv_limit = c->info.max_frame + c->info.max_response_body + (1u << 20);
    return 0;
}

/* One connection per worker socket; a missing one is covered by the main connection, which
 * then carries tasks too. */
static int open_workers(sc_client *c, const msgpack_object *hello)
{
    unsigned nw = c->opt.single_connection ? 0 : c->info.workers;
    int missing = 0;
    if (nw) {
        conn *nc = realloc(c->conns, (1 + nw) * sizeof *nc);
        if (!nc)
            return -ENOMEM;
        c->conns = nc;
        memset(c->conns + 1, 0, nw * sizeof *nc);
        /* the paths come from hello; fall back to the documented "<socket>.<W>" rule */
        const msgpack_object *ws = proto_map_get(hello, "worker_sockets");
        for (unsigned w = 1; w <= nw; w++) {
            conn *cn = &c->conns[c->nconns++];
            cn->fd = -1;
            const msgpack_object *p = ws && ws->type == MSGPACK_OBJECT_ARRAY && ws->via.array.size >= w
                                          ? &ws->via.array.ptr[w - 1] : NULL;
            if (p && p->type == MSGPACK_OBJECT_STR && p->via.str.size < sizeof cn->path)
                snprintf(cn->path, sizeof cn->path, "%.*s", (int)p->via.str.size, p->via.str.ptr);
            else
                snprintf(cn->path, sizeof cn->path, "%.*s.%u", (int)(sizeof cn->path - 12), c->sock, w);
            cn->task_conn = 1;
            if (conn_open(c, cn, NULL, 0)) {
                cn->task_conn = 0;
                cn->gone = 1;
                missing = 1;
            }
        }
    }
    if (!nw || missing || !any_task_conn_alive(c))
        c->conns[0].task_conn = 1;
    return 0;
}

/* The task window: opt.window, or three quarters of the daemon's pool (at most 4096), capped.
 * Not more than the pool: what does not fit is answered pool_full and waits 50-200 ms to come
 * back, and with twice the pool (the old default) a batch ran 25-30 % slower on the scaling
 * farm (docs/BENCHMARKS.md); a quarter is left for other clients and results in transit. */
static int alloc_window(sc_client *c)
{
    unsigned win = c->opt.window;
    if (!win) {
        uint64_t w = c->info.pool_capacity ? c->info.pool_capacity * 3 / 4 : 1000;
        win = (unsigned)(w > 4096 ? 4096 : w ? w : 1);
    }
    if (win > SC_MAX_WINDOW)
        win = SC_MAX_WINDOW;
    c->opt.window = win;
    c->tasks = calloc(win, sizeof *c->tasks);
    if (!c->tasks)
        return -ENOMEM;
    c->cap = win;
    for (uint32_t i = 0; i < win; i++)
        l_push(c, &c->free_l, i);
    return 0;
}

int sc_client_open(const sc_options *opt, sc_client **out, char *err, size_t errcap)
{
    *out = NULL;
    sc_client *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    msgpack_unpacked_init(&c->call_reply);
    if (opt)
        c->opt = *opt;
    if (c->opt.connect_timeout_ms <= 0)
        c->opt.connect_timeout_ms = 5000;
    if (c->opt.reconnect_ms <= 0)
        c->opt.reconnect_ms = 5000;
    c->rng = rng_seed((uint64_t)now_ms() * 2654435761u ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)c);
    c->free_l = c->send_l = c->back_l = c->ready_l = (tlist){NIL, NIL};
    c->next_call_id = 2;
    int rc = sc_socket_path(c->opt.socket_path, c->sock, sizeof c->sock, err, errcap);
    if (rc == 0) {
        c->opt.socket_path = c->sock;
        msgpack_unpacked hello;
        rc = open_main(c, &hello, err, errcap);
        if (rc == 0) {
            rc = open_workers(c, &hello.data);
            msgpack_unpacked_destroy(&hello);
        }
    }
    if (rc == 0)
        rc = alloc_window(c);
    if (rc) {
        sc_client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void sc_client_free(sc_client *c)
{
    if (!c)
        return;
    for (unsigned k = 0; k < c->nconns; k++) {
        conn_close(&c->conns[k]);
        free(c->conns[k].rbuf);
        free(c->conns[k].wbuf);
    }
    free(c->conns);
    for (uint32_t i = 0; i < c->cap; i++) {
        free(c->tasks[i].req);
        sc_result_free(c->tasks[i].res);
    }
    free(c->tasks);
    msgpack_unpacked_destroy(&c->call_reply);
    free(c);
}

const sc_server_info *sc_client_info(const sc_client *c) { return &c->info; }
unsigned sc_client_window(const sc_client *c) { return c->opt.window; }
unsigned sc_client_outstanding(const sc_client *c) { return c->outstanding; }

unsigned sc_client_connections(const sc_client *c)
{
    unsigned n = 0;
    for (unsigned k = 0; k < c->nconns; k++)
        n += c->conns[k].task_conn && !c->conns[k].gone;
    return n;
}

int sc_pack_submit(const sc_request *req, uint64_t id, msgpack_sbuffer *sb)
{
    msgpack_sbuffer_init(sb);
    proto_map m;
    proto_map_begin(&m, sb);
    proto_map_str(&m, "op", "submit");
    proto_map_u64(&m, "id", id);
    proto_map_str(&m, "url", req->url);
    proto_map_str(&m, "method", req->method && *req->method ? req->method : "GET");
    if (req->n_headers) {
        msgpack_packer *pk = proto_map_key(&m, "headers");
        msgpack_pack_array(pk, req->n_headers);
        for (size_t i = 0; i < req->n_headers; i++) {
            msgpack_pack_array(pk, 2);
            proto_pack_cstr(pk, req->headers[i].name ? req->headers[i].name : "");
            proto_pack_cstr(pk, req->headers[i].value ? req->headers[i].value : "");
        }
    }
    if (req->body)
        proto_map_bin(&m, "body", req->body, req->body_len);
    if (req->has_timeout)
        proto_map_u64(&m, "timeout_ms", req->timeout_ms);
    if (req->has_max_attempts)
        proto_map_u64(&m, "max_attempts", req->max_attempts);
    if (req->race_width)
        proto_map_u64(&m, "race_width", req->race_width);
    if (req->session && *req->session)
        proto_map_str(&m, "session", req->session);
    if (proto_map_end(&m)) {
        msgpack_sbuffer_destroy(sb);
        return -ENOMEM;
    }
    return 0;
}

sc_result *sc_result_decode(uint64_t id, void *user, const msgpack_object *reply)
{
    task t = {.id = id, .user = user};
    return result_from_reply(&t, reply);
}

int sc_submit(sc_client *c, const sc_request *req, void *user, uint64_t *id, char *err, size_t errcap)
{
    if (!req || !req->url || !*req->url) {
        seterr(err, errcap, "a request needs a url");
        return -EINVAL;
    }
    if (req->race_width > SC_RACE_MAX || req->n_headers > PROTO_MAX_HEADERS) {
        if (req->race_width > SC_RACE_MAX)
            seterr(err, errcap, "race_width must be 1..%d", SC_RACE_MAX);
        else
            seterr(err, errcap, "at most %d headers", PROTO_MAX_HEADERS);
        return -EINVAL;
    }
    if (c->info.max_request_body && req->body_len > c->info.max_request_body) {
        seterr(err, errcap, "body of %zu bytes exceeds max_request_body %llu", req->body_len,
               (unsigned long long)c->info.max_request_body);
        return -EMSGSIZE;
    }
    if (c->free_l.head == NIL) {
        seterr(err, errcap, "window of %u tasks is full", c->opt.window);
        return -EAGAIN;
    }
    uint32_t slot = c->free_l.head;
    if (++c->gen == 0)
        c->gen = 1;
    uint64_t tid = ((uint64_t)c->gen << 32) | slot;

    msgpack_sbuffer sb;
    if (sc_pack_submit(req, tid, &sb))
        return -ENOMEM;
    if (sb.size > c->info.max_frame) {
        seterr(err, errcap, "request of %zu bytes exceeds max_frame %llu", sb.size, (unsigned long long)c->info.max_frame);
        msgpack_sbuffer_destroy(&sb);
        return -EMSGSIZE;
    }
    l_pop(c, &c->free_l);
    task *t = &c->tasks[slot];
    memset(t, 0, sizeof *t);
    t->id = tid;
    t->user = user;
    t->req_len = sb.size;
    t->req = (uint8_t *)msgpack_sbuffer_release(&sb);
    t->state = T_QUEUED;
    l_push(c, &c->send_l, slot);
    c->outstanding++;
    if (id)
        *id = tid;
    return 0;
}

int sc_next_result(sc_client *c, int timeout_ms, sc_result **out)
{
    *out = NULL;
    int64_t deadline = deadline_of(timeout_ms);
    int pumped = 0;
    for (;;) {
        uint32_t i = l_pop(c, &c->ready_l);
        if (i != NIL) {
            task *t = &c->tasks[i];
            sc_result *r = t->res;
            t->res = NULL;
            t->state = T_FREE;
            t->id = 0;
            l_push(c, &c->free_l, i);
            c->outstanding--;
            if (!r)
                return -ENOMEM;
            *out = r;
            return 1;
        }
        if (!c->outstanding)
            return -ENOENT;
        if (pumped && deadline >= 0 && now_ms() >= deadline)
            return 0;
        int rc = pump(c, pump_deadline(deadline));
        if (rc < 0)
            return rc;
        pumped = 1;
    }
}

int sc_cancel(sc_client *c, uint64_t id)
{
    uint32_t slot = (uint32_t)id;
    if ((id >> 32) == 0 || slot >= c->cap)
        return -ENOENT;
    task *t = &c->tasks[slot];
    if (t->id != id || t->state == T_FREE || t->state == T_READY || t->cancel)
        return -ENOENT;
    t->cancel = 1;
    if (t->state == T_BACKOFF)
        c->back_due = 0; /* ends it on the next pump */
    if (t->state != T_SENT)
        return 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    proto_map m;
    proto_map_begin(&m, &sb);
    proto_map_str(&m, "op", "cancel");
    proto_map_u64(&m, "id", id);
    int rc = proto_map_end(&m) ? -ENOMEM : conn_queue(&c->conns[t->conn], sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static int ensure_control(sc_client *c, char *err, size_t errcap)
{
    conn *m = &c->conns[0];
    if (m->fd >= 0)
        return 0;
    int rc = conn_open(c, m, err, errcap);
    if (rc == 0 && m->task_conn)
        m->retrying = 0;
    return rc;
}

int sc_call_object(sc_client *c, const msgpack_object *request, int timeout_ms, msgpack_unpacked *reply,
                   char *err, size_t errcap)
{
    msgpack_unpacked_init(reply);
    if (!request || request->type != MSGPACK_OBJECT_MAP) {
        seterr(err, errcap, "a request must be a map");
        return -EINVAL;
    }
    uint64_t id = 0;
    proto_get_u64(request, "id", &id);
    int rc = ensure_control(c, err, errcap);
    if (rc)
        return rc;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *request);
    rc = sb.data ? conn_queue(&c->conns[0], sb.data, sb.size) : -ENOMEM;
    msgpack_sbuffer_destroy(&sb);
    if (rc)
        return rc;
    c->call_id = id;
    c->call_waiting = 1;
    c->call_done = 0;
    c->call_err = 0;
    int64_t deadline = deadline_of(timeout_ms);
    int pumped = 0;
    while (!c->call_done) {
        if (c->call_err) {
            rc = c->call_err;
            seterr(err, errcap, "connection to %s lost before the reply", c->conns[0].path);
            break;
        }
        if (pumped && deadline >= 0 && now_ms() >= deadline) {
            seterr(err, errcap, "no reply within %d ms", timeout_ms);
            rc = -ETIMEDOUT;
            break;
        }
        if ((rc = pump(c, pump_deadline(deadline))) < 0)
            break;
        pumped = 1;
    }
    c->call_waiting = 0;
    if (c->call_done) {
        c->call_done = 0;
        *reply = c->call_reply;
        msgpack_unpacked_init(&c->call_reply);
        return 0;
    }
    return rc;
}

int sc_call(sc_client *c, const char *op, uint32_t limit, uint32_t offset, const char *host, int timeout_ms,
            msgpack_unpacked *reply, char *err, size_t errcap)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    proto_map m;
    proto_map_begin(&m, &sb);
    proto_map_str(&m, "op", op);
    uint64_t id = c->next_call_id++;
    if (c->next_call_id >= (1ull << 32))
        c->next_call_id = 2;
    proto_map_u64(&m, "id", id);
    if (limit)
        proto_map_u64(&m, "limit", limit);
    if (offset)
        proto_map_u64(&m, "offset", offset);
    if (host)
        proto_map_str(&m, "host", host);
    msgpack_unpacked req;
    msgpack_unpacked_init(&req);
    size_t off = 0;
    int rc = -ENOMEM;
    if (proto_map_end(&m) == 0 && msgpack_unpack_next(&req, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS)
        rc = sc_call_object(c, &req.data, timeout_ms, reply, err, errcap);
    else
        msgpack_unpacked_init(reply);
    msgpack_unpacked_destroy(&req);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}
