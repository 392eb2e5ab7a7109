/*
 * Tasks and their attempts: the task layer every front end feeds. A front end owns its tasks
 * through a task_owner (one per client) whose ops deliver results and failures in the front
 * end's own format; the task layer never sees the wire. A task lives in exactly one place at
 * a time: a host's ready queue, or running (attempts in libcurl), or done (delivered and
 * freed). Its owner keeps a list of all its live tasks so a disconnect cancels them all.
 */
#ifndef SCATTER_WORKER_TASK_H
#define SCATTER_WORKER_TASK_H

#include <curl/curl.h>
#include <ev.h>
#include <msgpack.h>
#include <stdint.h>

#include "common/error.h"
#include "common/proto.h"
#include "shm/session.h"
#include "worker/worker.h"

typedef enum { TASK_QUEUED, TASK_RUNNING } task_state;

/* What a libcurl easy handle's CURLINFO_PRIVATE points to starts with one of these. */
enum { EASY_ATTEMPT = 0, EASY_TUNNEL_LEG = 1 };

typedef struct attempt {
    int kind;                     /* EASY_ATTEMPT (calloc leaves it so) */
    struct task *t;               /* NULL once orphaned (see race.c) */
    worker_ctx *w;
    host_rt *host;
    struct attempt *oprev, *onext; /* the worker's orphan list */
    CURL *easy;
    uint32_t proxy;
    uint64_t start_ms;
    uint64_t sent_ms;             /* when the request was written; 0 = never */
    uint64_t first_byte_ms;       /* when its response began; 0 = not yet */
    int resend_refused;           /* libcurl wanted to send the request a second time (race.c) */
    ev_timer give_up_w;           /* the attempt's own timeout (race.c: a sent request is orphaned) */
    int gave_up;                  /* give_up_w fired */
    char *body;
    size_t len, cap;
    char *hdrs;                   /* raw response header block of the final response */
    size_t hlen, hcap;
    int too_large;                /* 1: body over max_response_body, 2: headers over 64 KiB */
    int over_budget;              /* the worker's buffer budget stopped the body */
    char errbuf[CURL_ERROR_SIZE];
} attempt;

struct task;
struct task_owner;

/* What a finished task hands its owner. Pointers are valid only during the call. */
typedef struct {
    long status;
    const char *headers;          /* raw header block of the final response, status line first */
    size_t headers_len;
    const char *body;
    size_t body_len;
    const char *proxy;            /* the winning proxy's URL, password redacted */
    uint32_t attempts, race, latency_ms, elapsed_ms;
} task_result;

typedef struct {
    scatter_err code;
    const char *message;          /* human detail */
    const char *host;
    const char *last_error;       /* the last attempt's failure, "" if none */
    uint32_t attempts, elapsed_ms;
} task_failure;

/* A front end's side of its tasks. The task layer calls these; the front end turns them into
 * its own wire format (worker/conn_tasks.c for msgpack). */
typedef struct task_owner_ops {
    void (*deliver_result)(struct task_owner *o, struct task *t, const task_result *r);
    void (*deliver_failure)(struct task_owner *o, struct task *t, const task_failure *f);
    /* t is about to be freed (after its delivery): drop any reference to it */
    void (*forget)(struct task_owner *o, struct task *t);
    /* 1 while the client is not taking results: none of its tasks is started meanwhile */
    int (*backlogged)(const struct task_owner *o);
} task_owner_ops;

/* One client of a front end, as the task layer sees it. */
typedef struct task_owner {
    const task_owner_ops *ops;
    struct worker_ctx *w;
    struct task *tasks;           /* live tasks: all cancelled when the client goes away */
    uint32_t n_tasks;
} task_owner;

/* A request to run, whatever front end it came from. The strings point into the caller's
 * buffers; task_submit copies what it keeps. */
typedef struct {
    uint64_t id;                  /* the owner's name for the task (kept in task.id) */
    proto_str url, method, body;
    uint32_t n_headers;
    const proto_str *hname, *hval;
    int has_timeout, has_max_attempts, has_race_width;
    uint32_t timeout_ms, max_attempts, race_width;
    proto_str session;            /* sticky session name (1..SESS_NAME_MAX - 1 bytes); n = 0: none */
} task_submission;

typedef struct task {
    uint64_t id;
    task_owner *owner;
    worker_ctx *w;
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
    char session[SESS_NAME_MAX];  /* sticky session name, "" = none (sched.c, shm/session.h) */
    uint32_t sess_proxy;          /* the proxy its last round used through the session; SESS_NONE */
    attempt *att[SC_RACE_MAX];
    struct task *qnext;           /* host queue */
    struct task *prev_owned, *next_owned; /* the owner's live tasks */
} task;

/* task.c */
/* Validates s and, if it is accepted, creates a task owned by o and queues it: ERR_OK with *out
 * set. Otherwise the refusal's code, with a message in err; nothing was created and the caller
 * answers the client itself. */
scatter_err task_submit(task_owner *o, const task_submission *s, task **out, char *err, size_t errcap);
/* The submission a decoded protocol `submit` asks for (the socket and the Redis stream), named
 * `id` by its owner; it points into r. */
task_submission task_submission_of(const proto_request *r, uint64_t id);
/* Ends a task with error e (delivered to its owner), stops its attempts, frees it. */
void task_finish_error(task *t, scatter_err e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Ends a task with the winning attempt's response. */
void task_finish_success(task *t, attempt *a, long status, uint32_t latency_ms);
/* A failed round: back to the tail of the host queue, or finished if out of attempts/time. */
void task_round_failed(task *t);
/* Ends every live task of o with error e (the client went away, or the worker stops). */
void task_owner_cancel_all(task_owner *o, scatter_err e, const char *why);

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
/* Points e at proxy p (URL, credentials, one connection bundle per proxy and target). */
void race_set_proxy(worker_ctx *w, CURL *e, uint32_t proxy);
/* Who is charged for a transport failure of a transfer through a proxy (curl result rc;
 * `sent`: the request was written). */
health_outcome race_transport_outcome(CURL *e, CURLcode rc, int sent);

#endif
