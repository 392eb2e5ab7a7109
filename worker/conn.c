/*
 * Client connections: non-blocking reads into a bounded buffer, the frame scanner in front of
 * msgpack-c, one request handled per complete message, replies queued in a buffer and
 * written when the socket is writable. A malformed or oversized message gets one bad_request
 * and the connection is closed after the reply is flushed; nobody else is affected.
 * Backpressure: while a client leaves more than OUT_HIGH bytes of replies unread, we stop
 * reading its requests, so a slow reader cannot make us buffer without bound.
 */
#include "worker/task.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OUT_HIGH (8u << 20)
#define READ_CHUNK 65536

static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents);
static void conn_write_cb(struct ev_loop *loop, ev_io *io, int revents);

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
        if (w->stopping || w->n_conns >= w->cfg->max_clients) {
            LOGW(&w->log, "refusing client: %s", w->stopping ? "shutting down" : "max_clients reached");
            close(fd);
            continue;
        }
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->w = w;
        c->fd = fd;
        msgpack_sbuffer_init(&c->out);
        ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
        ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
        c->rio.data = c->wio.data = c;
        ev_io_start(loop, &c->rio);
        c->reading = 1;
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        w->n_conns++;
    }
}

void conn_close(conn *c)
{
    worker_ctx *w = c->w;
    c->closing = 1; /* nothing more is sent to a closing connection */
    while (c->tasks)
        task_finish_error(c->tasks, SC_CANCELLED, "client disconnected"); /* unlinks itself */
    ev_io_stop(w->loop, &c->rio);
    ev_io_stop(w->loop, &c->wio);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_conns--;
    free(c->in);
    idmap_free(&c->ids);
    msgpack_sbuffer_destroy(&c->out);
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
    if (c->out_off == c->out.size) {
        msgpack_sbuffer_clear(&c->out);
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
    /* backpressure on the reader */
    int want = !c->closing && c->out.size - c->out_off < OUT_HIGH;
    if (want && !c->reading)
        ev_io_start(c->w->loop, &c->rio);
    else if (!want && c->reading)
        ev_io_stop(c->w->loop, &c->rio);
    c->reading = want;
    return 0;
}

void conn_send(conn *c, const msgpack_sbuffer *msg)
{
    if (c->closing)
        return;
    msgpack_sbuffer_write(&c->out, msg->data, msg->size);
    if (!ev_is_active(&c->wio))
        ev_io_start(c->w->loop, &c->wio); /* written on the next writable event */
}

void conn_reply_begin(msgpack_sbuffer *sb, msgpack_packer *pk, uint32_t extra, uint64_t id, const char *op, int ok)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(pk, extra + 3);
    proto_kv_u64(pk, "id", id);
    proto_kv_str(pk, "op", op);
    proto_kv_bool(pk, "ok", ok);
}

void conn_reply_end(conn *c, msgpack_sbuffer *sb)
{
    conn_send(c, sb);
    msgpack_sbuffer_destroy(sb);
}

void conn_send_error(conn *c, uint64_t id, const char *op, sc_err e, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    conn_reply_begin(&sb, &pk, 2, id, op, 0);
    proto_kv_str(&pk, "error", sc_err_code(e));
    proto_kv_str(&pk, "message", msg);
    conn_reply_end(c, &sb);
}

static void protocol_violation(conn *c, const char *why)
{
    LOGI(&c->w->log, "client fd %d: %s; closing", c->fd, why);
    conn_send_error(c, 0, "error", SC_BAD_REQUEST, "%s", why);
    c->closing = 1;
}

/* Handles every complete message in the input buffer. */
static void parse_input(conn *c)
{
    worker_ctx *w = c->w;
    size_t off = 0;
    while (!c->closing && off < c->in_len) {
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
        proto_request r;
        char err[256];
        if (proto_decode_request(&u.data, &r, err, sizeof err)) {
            /* a well-formed map with bad content: answer, keep the connection */
            char op[24];
            snprintf(op, sizeof op, "%.*s", (int)(r.opname.n < 16 ? r.opname.n : 16), r.opname.p ? r.opname.p : "");
            conn_send_error(c, r.has_id ? r.id : 0, r.opname.n ? op : "error", SC_BAD_REQUEST, "%s", err);
        } else {
            ops_handle(c, &r);
        }
        msgpack_unpacked_destroy(&u);
    }
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
}

static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    conn *c = io->data;
    worker_ctx *w = c->w;
    size_t limit = (size_t)w->cfg->max_frame + READ_CHUNK;
    for (;;) {
        if (c->in_cap - c->in_len < READ_CHUNK) {
            size_t nc = c->in_cap ? c->in_cap * 2 : 2 * READ_CHUNK;
            if (nc > limit)
                nc = limit;
            if (nc <= c->in_cap) {
                /* the scanner bounds a message by max_frame, so a full buffer is an error */
                protocol_violation(c, "message exceeds max_frame");
                break;
            }
            char *ni = realloc(c->in, nc);
            if (!ni) {
                protocol_violation(c, "out of memory");
                break;
            }
            c->in = ni;
            c->in_cap = nc;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n == 0) {
            /* EOF: the client is gone (or half-closed). Its tasks are cancelled, but replies
             * already produced (bad_request, status...) are still delivered before we close. */
            c->closing = 1;
            while (c->tasks)
                task_finish_error(c->tasks, SC_CANCELLED, "client disconnected");
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
        if (c->closing || c->out.size - c->out_off >= OUT_HIGH)
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
