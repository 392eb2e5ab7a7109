/*
 * Client connections: non-blocking reads into a bounded buffer, the frame scanner in front of
 * msgpack-c, one request handled per complete message, replies queued in a buffer and
 * written when the socket is writable. A malformed or oversized message gets one bad_request
 * and the connection is closed after the reply is flushed; nobody else is affected.
 * Backpressure: while a client leaves more than OUT_HIGH bytes of replies unread, we stop
 * reading and decoding its requests and the scheduler starts none of its tasks, so a slow
 * reader cannot make us buffer without bound. Every buffer here counts against the worker's
 * worker_buffer_budget (w->buffered); a connection that holds an incomplete message for
 * client_timeout is closed. A client over max_clients, or one that connects while the worker
 * stops, gets one reply saying so before the close.
 */
#include "worker/conn.h"

#include "common/buf.h"
#include "common/list.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define REFUSE_LOG_MS 10000 /* at most one "refusing client" line per this many ms */

static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents);
static void conn_write_cb(struct ev_loop *loop, ev_io *io, int revents);
static void conn_frame_timeout_cb(struct ev_loop *loop, ev_timer *tw, int revents);
static void parse_input(conn *c);

/* Answers a client we will not serve, on its fresh socket (an empty send buffer takes the few
 * bytes at once), then closes it. The log line is rate-limited: a flood of refused clients
 * must not become a flood of log lines. */
static void refuse_client(worker_ctx *w, int fd, scatter_err e, const char *why)
{
    conn_reply r;
    conn_reply_begin(&r, 0, "error", 0);
    proto_map_str(&r.m, "error", err_code(e));
    proto_map_str(&r.m, "message", why);
    if (proto_map_end(&r.m) == 0) {
        ssize_t n = send(fd, r.sb.data, r.sb.size, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n; /* best effort: the close says the rest */
    }
    msgpack_sbuffer_destroy(&r.sb);
    close(fd);
    w->refused++;
    uint64_t now = shm_now_ms();
    if (now - w->refused_log_ms >= REFUSE_LOG_MS) {
        LOGW(&w->log, "refusing clients: %s (%llu refused since the last such line)", why,
             (unsigned long long)w->refused);
        w->refused = 0;
        w->refused_log_ms = now;
    }
}

void conn_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    worker_ctx *w = io->data;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                LOGW(&w->log, "accept: %s", strerror(errno));
            return;
        }
        if (w->stopping) {
            refuse_client(w, fd, ERR_SHUTTING_DOWN, "the daemon is shutting down");
            continue;
        }
        if (w->n_conns + w->n_http_conns >= w->cfg->max_clients) {
            char why[96];
            snprintf(why, sizeof why, "this worker already has max_clients = %u clients", w->cfg->max_clients);
            refuse_client(w, fd, ERR_TOO_MANY_CLIENTS, why);
            continue;
        }
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->w = w;
        c->fd = fd;
        conn_tasks_init(c);
        msgpack_sbuffer_init(&c->out);
        ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
        ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
        c->rio.data = c->wio.data = c;
        ev_init(&c->frame_w, conn_frame_timeout_cb);
        c->frame_w.data = c;
        ev_io_start(loop, &c->rio);
        c->reading = 1;
        LIST_PUSH(w->conns, c, prev, next);
        w->n_conns++;
        shm_clients_set(w->tbl, w->index, w->n_conns, w->n_http_conns, w->n_tunnels);
    }
}

/* Keeps w->buffered equal to the sum of what every connection and attempt holds. */
static void account(conn *c)
{
    size_t now = c->in_cap + c->out.alloc;
    c->w->buffered += now - c->counted; /* unsigned wrap-around gives the signed difference */
    c->counted = now;
}

int conn_backlogged(const conn *c)
{
    return c->out.size - c->out_off >= CONN_OUT_HIGH;
}

void conn_close(conn *c)
{
    worker_ctx *w = c->w;
    c->closing = 1; /* nothing more is sent to a closing connection */
    task_owner_cancel_all(&c->owner, ERR_CANCELLED, "client disconnected");
    ev_io_stop(w->loop, &c->rio);
    ev_io_stop(w->loop, &c->wio);
    ev_timer_stop(w->loop, &c->frame_w);
    close(c->fd);
    LIST_UNLINK(w->conns, c, prev, next);
    w->n_conns--;
    shm_clients_set(w->tbl, w->index, w->n_conns, w->n_http_conns, w->n_tunnels);
    free(c->in);
    idmap_free(&c->ids);
    msgpack_sbuffer_destroy(&c->out);
    w->buffered -= c->counted;
    worker_need_dispatch(w); /* budget freed: queued tasks may start */
    free(c);
}

/* Returns 0 if the connection is still usable, -1 if it was closed. */
static int flush(conn *c)
{
    while (c->out_off < c->out.size) {
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.size - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(c);
            return -1;
        }
        c->out_off += (size_t)n;
    }
    int was_backlogged = conn_backlogged(c);
    if (c->out_off == c->out.size) {
        if (c->out.alloc > (1u << 20)) { /* a burst is over: give its buffer back */
            msgpack_sbuffer_destroy(&c->out);
            msgpack_sbuffer_init(&c->out);
        } else {
            msgpack_sbuffer_clear(&c->out);
        }
        c->out_off = 0;
        ev_io_stop(c->w->loop, &c->wio);
        if (c->closing) {
            conn_close(c);
            return -1;
        }
    } else {
        if (c->out_off > (1u << 20)) { /* compact so the buffer does not only grow */
            memmove(c->out.data, c->out.data + c->out_off, c->out.size - c->out_off);
            c->out.size -= c->out_off;
            c->out_off = 0;
        }
        ev_io_start(c->w->loop, &c->wio);
    }
    account(c);
    /* backpressure on the reader */
    int want = !c->closing && !conn_backlogged(c);
    if (was_backlogged && want)
        worker_need_dispatch(c->w); /* its queued tasks may start again */
    if (want && c->parse_paused) {
        parse_input(c); /* requests read before the pause; may queue replies again */
        if (c->closing && c->out_off == c->out.size) {
            conn_close(c);
            return -1;
        }
        if (!ev_is_active(&c->wio) && c->out_off < c->out.size)
            ev_io_start(c->w->loop, &c->wio);
        want = !c->closing && !conn_backlogged(c);
    }
    if (want && !c->reading) {
        ev_io_start(c->w->loop, &c->rio);
        c->reading = 1;
    } else if (!want && c->reading) {
        ev_io_stop(c->w->loop, &c->rio);
        c->reading = 0;
    }
    return 0;
}

void conn_send(conn *c, const msgpack_sbuffer *msg)
{
    if (c->closing)
        return;
    msgpack_sbuffer_write(&c->out, msg->data, msg->size);
    account(c);
    if (!ev_is_active(&c->wio))
        ev_io_start(c->w->loop, &c->wio); /* written on the next writable event */
}

void conn_reply_begin(conn_reply *r, uint64_t id, const char *op, int ok)
{
    msgpack_sbuffer_init(&r->sb);
    proto_map_begin(&r->m, &r->sb);
    proto_map_u64(&r->m, "id", id);
    proto_map_str(&r->m, "op", op);
    proto_map_bool(&r->m, "ok", ok);
}

void conn_reply_end(conn *c, conn_reply *r)
{
    if (proto_map_end(&r->m) == 0) {
        conn_send(c, &r->sb);
    } else if (!c->closing) {
        LOGW(&c->w->log, "client fd %d: out of memory building a reply; closing", c->fd);
        c->closing = 1;
        if (!ev_is_active(&c->wio))
            ev_io_start(c->w->loop, &c->wio); /* the writer closes once the queue is flushed */
    }
    msgpack_sbuffer_destroy(&r->sb);
}

void conn_send_error(conn *c, uint64_t id, const char *op, scatter_err e, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    conn_reply rp;
    conn_reply_begin(&rp, id, op, 0);
    proto_map_str(&rp.m, "error", err_code(e));
    proto_map_str(&rp.m, "message", msg);
    conn_reply_end(c, &rp);
}

static void protocol_violation(conn *c, const char *why)
{
    LOGI(&c->w->log, "client fd %d: %s; closing", c->fd, why);
    conn_send_error(c, 0, "error", ERR_BAD_REQUEST, "%s", why);
    c->closing = 1;
}

/* Handles every complete message in the input buffer. */
static void parse_input(conn *c)
{
    worker_ctx *w = c->w;
    size_t off = 0;
    /* a client that does not read its replies gets no more of its requests decoded */
    c->parse_paused = 0;
    while (!c->closing && off < c->in_len) {
        if (conn_backlogged(c)) {
            c->parse_paused = 1;
            break;
        }
        long n = proto_frame_scan((const uint8_t *)c->in + off, c->in_len - off, w->cfg->max_frame);
        if (n == FRAME_NEED_MORE)
            break;
        if (n < 0) {
            protocol_violation(c, proto_frame_strerror(n));
            break;
        }
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t pos = 0;
        msgpack_unpack_return rc = msgpack_unpack_next(&u, c->in + off, (size_t)n, &pos);
        if (rc != MSGPACK_UNPACK_SUCCESS || pos != (size_t)n) {
            msgpack_unpacked_destroy(&u);
            protocol_violation(c, "malformed msgpack");
            break;
        }
        off += (size_t)n;
        if (u.data.type != MSGPACK_OBJECT_MAP) {
            /* not a request at all (docs/PROTOCOL.md section 2): the stream cannot be trusted */
            msgpack_unpacked_destroy(&u);
            protocol_violation(c, "a message must be a msgpack map");
            break;
        }
        proto_request r;
        char err[256];
        if (proto_decode_request(&u.data, &r, err, sizeof err)) {
            /* a well-formed map with bad content: answer, keep the connection */
            char op[24];
            snprintf(op, sizeof op, "%.*s", (int)(r.opname.n < 16 ? r.opname.n : 16), r.opname.p ? r.opname.p : "");
            conn_send_error(c, r.has_id ? r.id : 0, r.opname.n ? op : "error", ERR_BAD_REQUEST, "%s", err);
        } else {
            ops_handle(c, &r);
        }
        msgpack_unpacked_destroy(&u);
    }
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    /* a partial message may wait client_timeout for the rest, no longer */
    if (c->in_len && !c->closing && !conn_backlogged(c)) {
        if (off || !ev_is_active(&c->frame_w)) {
            ev_timer_stop(w->loop, &c->frame_w);
            ev_timer_set(&c->frame_w, w->cfg->client_timeout_ms / 1000.0, 0.);
            ev_timer_start(w->loop, &c->frame_w);
        }
    } else {
        ev_timer_stop(w->loop, &c->frame_w);
    }
}

static void conn_frame_timeout_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    conn *c = tw->data;
    char why[96];
    snprintf(why, sizeof why, "incomplete message (%zu bytes) for client_timeout = %u ms", c->in_len,
             c->w->cfg->client_timeout_ms);
    protocol_violation(c, why);
    ev_io_stop(loop, &c->rio);
    c->reading = 0;
    flush(c);
}

static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    conn *c = io->data;
    worker_ctx *w = c->w;
    size_t limit = (size_t)w->cfg->max_frame + READ_CHUNK;
    for (;;) {
        if (c->in_cap - c->in_len < READ_CHUNK) {
            size_t nc = buf_next_cap(c->in_cap, c->in_len + READ_CHUNK, READ_CHUNK, limit);
            if (nc <= c->in_cap) {
                /* the scanner bounds a message by max_frame, so a full buffer is an error */
                protocol_violation(c, "message exceeds max_frame");
                break;
            }
            /* every client gets its first READ_CHUNK, so small requests are served even
             * while others hold the budget */
            if (c->in_cap && w->buffered + (nc - c->in_cap) > w->cfg->worker_buffer_budget) {
                protocol_violation(c, "worker_buffer_budget exhausted: message refused, retry later");
                break;
            }
            char *ni = realloc(c->in, nc);
            if (!ni) {
                protocol_violation(c, "out of memory");
                break;
            }
            c->in = ni;
            c->in_cap = nc;
            account(c);
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n == 0) {
            /* EOF: the client is gone (or half-closed). Its tasks are cancelled, but replies
             * already produced (bad_request, status...) are still delivered before we close. */
            c->closing = 1;
            task_owner_cancel_all(&c->owner, ERR_CANCELLED, "client disconnected");
            break;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(c);
            return;
        }
        c->in_len += (size_t)n;
        parse_input(c);
        if (c->closing || conn_backlogged(c))
            break;
    }
    if (c->closing) {
        ev_io_stop(loop, &c->rio);
        c->reading = 0;
    }
    flush(c);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    flush(io->data);
}
