/*
 * A worker process: one libev loop that accepts clients, decodes their msgpack requests, owns
 * the tasks they submit, schedules them over the shared table and races them through libcurl.
 * Everything a worker owns hangs off worker_ctx; nothing is global.
 */
#ifndef SCATTER_WORKER_H
#define SCATTER_WORKER_H

#include <curl/curl.h>
#include <ev.h>
#include <msgpack.h>
#include <stdint.h>

#include "common/config.h"
#include "common/error.h"
#include "common/limits.h"
#include "common/log.h"
#include "shm/health.h"
#include "shm/select.h"
#include "shm/table.h"
#include "worker/classify.h"
#include "worker/main.h"

struct conn;
struct task;
struct attempt;

/* Per-host state of this worker: its settings, its ready queue, its wake-up timer. */
/* libcurl share objects per worker: idle connections and resolved names, by proxy (race.c) */
#define RACE_SHARES 256

typedef struct host_rt {
    uint32_t idx;                 /* shm host index */
    char name[SHM_HOST_NAME_MAX];
    const cfg_host *cfg;          /* points into worker_ctx.cfg; refreshed on reload */
    classifier cls;
    struct task *head, *tail;     /* FIFO of tasks ready to dispatch */
    uint32_t queued;
    uint32_t live_tasks;          /* tasks of this host owned by this worker, queued or running */
    ev_timer wake;                /* the host's "delayed" wait: armed when no slot is free now */
    uint32_t win_lat[64];         /* recent winning latencies (ms), a ring */
    uint32_t win_n, win_pos;
    uint32_t hedge_ms;            /* cached quantile of win_lat */
    int waiting;                  /* wake is armed */
    uint64_t wake_at;             /* for when (ms) */
    int queued_bit;               /* our bit in the shared host's queued_workers is set */
    uint64_t straggler_next_ms;   /* no straggler scan before this (sched.c) */
    select_index ix;              /* this worker's index of the host's pairs (shm/select_index.h) */
    struct host_rt *next_active;  /* list of hosts with queued tasks */
    int active;
    struct worker_ctx *w;
} host_rt;

typedef struct worker_ctx {
    uint32_t index;               /* 1..n_workers: the rate-limit holder id */
    struct ev_loop *loop;
    logger log;
    scatter_config *cfg;          /* owned; replaced on reload */
    const struct cfg_snapshot *cfgsnap; /* the master's publications (reload) */
    uint32_t cfg_publication;     /* the publication w->cfg came from (0: the one at fork) */
    int cfg_owned;                /* w->cfg was allocated here (a reload); else the master's, inherited */
    shm_table *tbl;
    health_params hp_default;
    select_params sp;
    int listen_fd;                /* shared socket from the master */
    int own_fd;                   /* this worker's own socket (<socket_path>.<index>) */
    char own_path[CFG_STR_MAX + 16];
    ev_io listen_w, own_w;
    ev_prepare dispatch_w;        /* runs the scheduler once per loop iteration when needed */
    int sig_fd;                   /* signalfd for TERM, INT, HUP */
    ev_io sig_w;
    ev_timer stop_w;              /* grace period end */
    ev_timer curl_timer;
    ev_timer trim_w;              /* returns freed heap to the system once the worker idles */
    ev_check busy_w;              /* with the end of prepare_cb, times the loop's waits (worker.c) */
    double poll_enter, idle_s, busy_since;
    uint32_t busy_permille;       /* share of the last second the loop spent working, not waiting */
    int heap_dirty;
    CURLM *multi;
    CURLSH *curl_share[RACE_SHARES]; /* connection and DNS caches, by proxy (race.c) */
    int dispatch_needed;
    int stopping;                 /* no new work accepted */
    uint64_t stop_deadline_ms;
    host_rt **hosts;              /* by shm host index, allocated on first use */
    host_rt *active;              /* hosts with queued tasks */
    struct conn *conns;
    uint32_t n_conns;
    uint32_t n_tasks;             /* tasks owned by this worker */
    uint32_t inflight;            /* attempts of this worker */
    size_t buffered;              /* bytes held in client buffers and response bodies (budget) */
    int http_fd;                  /* this worker's HTTP listener (SO_REUSEPORT); -1 = none */
    ev_io http_w;
    struct http_conn *http_conns; /* the HTTP front end's clients (worker/http.c) */
    uint32_t n_http_conns;
    uint32_t n_http_idle; /* of those, the ones with no request in progress (worker/sched.c) */
    struct tunnel *tunnels;       /* CONNECT tunnels (worker/tunnel.c) */
    uint32_t n_tunnels;
    uint64_t refused;             /* clients refused since the last log line about it */
    uint64_t refused_log_ms;
    uint64_t rnd;                 /* xorshift state */
    struct attempt *orphans;      /* sent race losers and timed-out attempts waiting for their
                                   * first answer byte (race.c) */
    uint32_t n_orphans;
    struct redis_front *redis;    /* the Redis stream consumer (worker/redis.c); NULL = off */
} worker_ctx;


uint64_t worker_rand(worker_ctx *w);
/* Records a winning latency for the host's hedge delay. */
void worker_host_record_win(host_rt *h, uint32_t latency_ms);
/* Releases a pair this worker claimed for host h (rl_release: next use at sent_ms +
 * interval_ms, or at once with sent_ms = 0) and tells the host's selection index where the
 * pair stands now. False if the word was not ours. Every release of the worker goes here. */
bool worker_pair_release(host_rt *h, uint32_t proxy, uint64_t sent_ms, uint32_t interval_ms);
/* Keeps the pair from this worker's task claims (a tunnel waits for its slot), and lets it
 * go again; see select_index_reserve. */
int worker_pair_reserve(host_rt *h, uint32_t proxy);
void worker_pair_unreserve(host_rt *h, uint32_t proxy);
/* select_claim for host h through its index, timed into the selects / select_ns counters. */
uint32_t worker_select(host_rt *h, uint32_t k, uint64_t now_ms, uint32_t *out, select_stats *st);
/* The hedge delay in ms, or 0 while the host has too few samples (then: all at once). */
uint32_t worker_host_hedge_ms(const host_rt *h);
host_rt *worker_host(worker_ctx *w, uint32_t idx, const char *name);
/* Finds or registers host `key` (normalised) and counts one live task of it, checking that the
 * master did not reclaim the slot in between. 0, -ENOSPC (every slot in use), -EINVAL (bad
 * name) or -ENOMEM. The caller owns the +1: a task's free, or worker_host_live_add(h, -1). */
int worker_host_acquire(worker_ctx *w, const char *key, host_rt **out);
/* A task of h was created (+1) or freed (-1): keeps our bit in the host's live_workers. */
void worker_host_live_add(host_rt *h, int delta);
void worker_need_dispatch(worker_ctx *w);
/* Health parameters of a host (its cooldown/eviction overrides). */
void worker_health_params(const worker_ctx *w, const host_rt *h, health_params *out);

#endif
