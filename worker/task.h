/*
 * Tasks, their attempts and the client connections that own them.
 * A task lives in exactly one place at a time: a host's ready queue, or running (attempts in
 * libcurl), or done (answered and freed). Its connection keeps a list of all its live tasks so
 * a disconnect cancels them all.
 */
#ifndef SCATTER_WORKER_TASK_H
#define SCATTER_WORKER_TASK_H

#include <curl/curl.h>
#include <ev.h>
#include <msgpack.h>
#include <stdint.h>

#include "common/error.h"
#include "common/proto.h"
#include "worker/idmap.h"
#include "worker/worker.h"

typedef enum { TASK_QUEUED, TASK_RUNNING } task_state;

typedef struct attempt {
    struct task *t;               /* NULL once orphaned (see race.c) */
    worker_ctx *w;
    host_rt *host;
    struct attempt *oprev, *onext; /* the worker's orphan list */
    CURL *easy;
    uint32_t proxy;
    uint64_t start_ms;
    uint64_t sent_ms;             /* when the request was last written; 0 = never */
    uint64_t first_byte_ms;       /* when its response began; 0 = not yet */
    char *body;
    size_t len, cap;
    char *hdrs;                   /* raw response header block of the final response */
    size_t hlen, hcap;
    int too_large;                /* 1: body over max_response_body, 2: headers over 64 KiB */
    int over_budget;              /* the worker's buffer budget stopped the body */
    char errbuf[CURL_ERROR_SIZE];
} attempt;

typedef struct task {
    uint64_t id;
    struct conn *conn;
    host_rt *host;
    task_state state;
    char *url;
    char method[17];
    struct curl_slist *headers;
    char *body;
    size_t body_len;
    uint32_t max_attempts;        /* 0 = unlimited */
    uint32_t race_width;          /* 0 = the host's */
    uint64_t submitted_ms;
    uint64_t deadline_ms;         /* 0 = none */
    ev_timer deadline_w;
    uint32_t rounds;              /* rounds started */
    uint32_t answered_rounds;     /* failed rounds in which the target answered (cls_target_answered):
                                   * what max_attempts counts (rounds lost to proxy faults alone do
                                   * not use up a task; its deadline bounds them) */
    int round_answered;           /* an attempt of the current round got the target's answer */
    uint32_t n_running;
    uint32_t race;                /* attempts fired in the current round */
    int probe;                    /* this round is the host's circuit probe */
    uint32_t round_k;             /* attempts this round may use (hedging adds up to it) */
    uint32_t straggled;           /* straggler hedges added to this round (sched.c) */
    ev_timer hedge_w;
    char last_error[160];
    attempt *att[RACE_MAX];
    struct task *qnext;           /* host queue */
    struct task *cprev, *cnext;   /* connection's task list */
} task;

typedef struct conn {
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
    task *tasks;
    uint32_t n_tasks;
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
void conn_send_error(conn *c, uint64_t id, const char *op, sc_err e, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Starts a reply map of `extra` more entries after id, op and ok; conn_reply_end sends it. */
void conn_reply_begin(msgpack_sbuffer *sb, msgpack_packer *pk, uint32_t extra, uint64_t id, const char *op, int ok);
void conn_reply_end(conn *c, msgpack_sbuffer *sb);

/* task.c */
void task_submit(conn *c, const proto_request *r);
void task_cancel_id(conn *c, uint64_t id);
/* Ends a task: answers it (error e unless e == SC_OK, which the caller already answered),
 * stops its attempts, frees it. */
void task_finish_error(task *t, sc_err e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void task_free(task *t);
/* Ends a task with the winning attempt's response. */
void task_finish_success(task *t, attempt *a, long status, uint32_t latency_ms);
/* A failed round: back to the tail of the host queue, or finished if out of attempts/time. */
void task_round_failed(task *t);

/* sched.c */
void sched_enqueue(task *t);
void sched_unlink(task *t);
void sched_dispatch(worker_ctx *w);
void sched_host_free(host_rt *h);
/* Adds one more attempt to t's round if the round has room and a slot is free. 1 if added. */
int sched_hedge_add(task *t);
/* Hedge timer: add one more attempt to a running round. */
void sched_hedge_cb(struct ev_loop *loop, ev_timer *tw, int revents);

/* race.c */
int race_init(worker_ctx *w);
void race_cleanup(worker_ctx *w);
/* Starts one attempt of t through proxy p (its rate-limit word already claimed). 0 or -1. */
int race_start(task *t, uint32_t proxy);
/* Removes every running attempt of t, charging nobody (cancelled). */
void race_abort_all(task *t);

/* ops.c */
void ops_handle(conn *c, const proto_request *r);

#endif
