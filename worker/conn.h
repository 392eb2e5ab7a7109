/*
 * The msgpack front end: client connections on the Unix sockets (conn.c), the ops of the
 * protocol (ops.c, docs/PROTOCOL.md), and a connection as the owner of the tasks it submits
 * (conn_tasks.c: submit, cancel by id, results and failures packed as replies).
 */
#ifndef SCATTER_WORKER_CONN_H
#define SCATTER_WORKER_CONN_H

#include <ev.h>
#include <msgpack.h>
#include <stdint.h>

#include "common/error.h"
#include "common/proto.h"
#include "worker/idmap.h"
#include "worker/task.h"
#include "worker/worker.h"

typedef struct conn {
    task_owner owner;             /* first: the task layer's view of this client */
    worker_ctx *w;
    int fd;
    ev_io rio, wio;
    char *in;                     /* unparsed input */
    size_t in_len, in_cap;
    msgpack_sbuffer out;          /* replies not yet written */
    size_t out_off;
    int closing;                  /* flush then close */
    int reading;
    int parse_paused;             /* input left undecoded because the client was backlogged */
    ev_timer frame_w;             /* client_timeout for a partial message */
    size_t counted;               /* bytes of in/out buffers counted in w->buffered */
    idmap ids;                    /* live tasks by client id */
    struct conn *prev, *next;
} conn;

/* Unread replies past this stop a connection's reading, decoding and dispatching. */
#define CONN_OUT_HIGH (8u << 20)

/* conn.c */
/* 1 while the client leaves CONN_OUT_HIGH or more of replies unread. */
int conn_backlogged(const conn *c);
void conn_accept_cb(struct ev_loop *loop, ev_io *w, int revents);
void conn_close(conn *c);
/* Queues a finished reply; starts the writer. */
void conn_send(conn *c, const msgpack_sbuffer *msg);
void conn_send_error(conn *c, uint64_t id, const char *op, scatter_err e, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* One reply being built: its map holds id, op and ok; add pairs through r->m (the count is
 * kept by proto_map), then conn_reply_end sends it. Stays where it was begun. */
typedef struct {
    msgpack_sbuffer sb;
    proto_map m;
} conn_reply;
void conn_reply_begin(conn_reply *r, uint64_t id, const char *op, int ok);
/* Queues the reply, or, if it could not be built (out of memory), closes the connection after
 * what is already queued: a client must not wait for a reply that will never come. */
void conn_reply_end(conn *c, conn_reply *r);

/* conn_tasks.c */
/* The fields of a submit's result or failure after id, op and ok (docs/PROTOCOL.md 4.2): one
 * packing for every front end that answers in msgpack (the sockets, the Redis stream). */
void task_pack_result(proto_map *m, const task_result *r);
void task_pack_failure(proto_map *m, const task_failure *f);
/* Makes c the owner of the tasks it submits (at accept). */
void conn_tasks_init(conn *c);
/* The submit op: a task, or one refusal reply. */
void conn_submit(conn *c, const proto_request *r);
/* The cancel op: ends the live task `id` of this connection, if any (no reply of its own). */
void conn_cancel(conn *c, uint64_t id);

/* ops.c */
void ops_handle(conn *c, const proto_request *r);

#endif
