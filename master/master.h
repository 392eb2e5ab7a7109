/*
 * The master process (scatterd): owns the config, the shared table, the listening socket, the
 * proxy sources, the circuit breakers and the workers. It is never on a task's hot path: it
 * runs periodic jobs on its own libev default loop (the only loop that may watch children).
 */
#ifndef SCATTER_MASTER_H
#define SCATTER_MASTER_H

#include <ev.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/log.h"
#include "shm/table.h"

#define SRC_MAX 32

typedef struct {
    char name[64];              /* "" if unnamed */
    char loc[CFG_STR_MAX];      /* file path or http(s) URL */
} source;

typedef struct {
    pid_t pid;                  /* 0 = not running */
    uint64_t started_ms;
    uint64_t restart_at_ms;     /* when dead: when to start it again */
    uint32_t backoff_ms;
} worker_slot;

typedef struct master_ctx {
    scatter_config *cfg;
    logger log;
    shm_table tbl;
    int listen_fd;
    int ready_fd;               /* pipe to the process that launched a detaching daemon; -1 */
    struct ev_loop *loop;
    ev_signal sigterm_w, sigint_w, sighup_w;
    ev_child child_w;
    ev_timer refresh_w, metrics_w, circuit_w, restart_w, stop_w, save_w;
    uint32_t n_workers;
    worker_slot workers[SHM_MAX_WORKERS];
    int stopping;
    uint32_t n_sources;
    source sources[SRC_MAX];
    uint64_t last_metrics_ms;
    uint64_t last_metrics_done;
} master_ctx;

/* sources.c: parse `sources` into ctx->sources; 0 or -1 with err. */
int src_parse_list(const char *list, source *out, uint32_t *n, char *err, size_t cap);
/* Fetches every source and merges its proxies into the table. `revive`: a refresh, so dead
 * proxies listed again come back. Returns the number of proxies listed in all, or -1 if
 * every source failed. */
int src_refresh(master_ctx *m, int revive);
/* Source bitmask for a comma-separated list of source names; -1 if a name is unknown. */
int64_t src_mask_for(const master_ctx *m, const char *names, char *err, size_t cap);

/* listen.c: opens the client socket; a stale file is replaced, a live one is an error. */
int listen_open(const char *path, unsigned mode, const logger *lg);

/* supervise.c */
int sup_start_all(master_ctx *m);
void sup_child_cb(struct ev_loop *loop, ev_child *w, int revents);
void sup_restart_cb(struct ev_loop *loop, ev_timer *w, int revents);
void sup_signal_workers(master_ctx *m, int sig);
uint32_t sup_running(const master_ctx *m);

/* circuit.c: one decision pass over every host. */
void circuit_tick(master_ctx *m, uint64_t now_ms);
/* hosts.c: applies config to host slots (intervals, pools); registers configured hosts. */
int hosts_apply_config(master_ctx *m, char *err, size_t cap);

/* report.c: the periodic metrics line. */
void report_metrics(master_ctx *m, uint64_t now_ms);

#endif
