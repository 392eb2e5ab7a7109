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
/* How long start-up waits for the first fetches before the workers start: a local file or a
 * quick http source is in the table before the first client; a slow one loads behind. */
#define SRC_STARTUP_WAIT_MS 500

typedef struct {
    char name[64];              /* "" if unnamed */
    char loc[CFG_STR_MAX];      /* file path or http(s) URL */
} source;

#define SRC_PIPE_BUF 16384

/* One source's fetch in flight: a child process that downloads, parses and resolves the
 * list and writes what it accepted to a pipe; the master merges as it reads (sources.c). */
typedef struct src_fetch {
    struct master_ctx *m;
    uint32_t idx;               /* the source's index, its bit in shm_proxy.sources */
    source src;                 /* the source as it was when the fetch started */
    pid_t pid;                  /* the child until it is reaped; 0 = no fetch */
    int fd;                     /* read end of its pipe; -1 after EOF */
    int reaped, status;         /* waitpid status once reaped */
    int revive;                 /* a refresh (dead proxies listed again come back) */
    int startup;                /* started before the workers: the table may still be empty */
    int ended;                  /* the child's last record (C or E) arrived */
    int stale;                  /* a reload changed or removed the source: discard, refetch */
    uint64_t started_ms;
    ev_io io_w;
    ev_child child_w;
    ev_timer deadline_w;
    uint32_t lines, rejected, private_, unresolved, nul;        /* counted by the child */
    uint32_t listed, added, full, revived, refused;             /* counted by the master */
    uint32_t sharded;           /* proxies of this fetch outside this instance's shard (dropped) */
    char err[256];              /* why it failed ("" = it did not) */
    size_t blen;
    char buf[SRC_PIPE_BUF];     /* an unfinished record */
} src_fetch;

typedef struct {
    pid_t pid;                  /* 0 = not running */
    uint64_t started_ms;
    uint64_t restart_at_ms;     /* when dead: when to start it again */
    uint32_t backoff_ms;
} worker_slot;

struct cfg_snapshot;

/* `user =` / `group =` resolved (privdrop.c). */
typedef struct {
    int wanted;                 /* user or group is set */
    int active;                 /* started as root: switch once the root-only work is done */
    int set_user;               /* `user` given: setuid too (else only the groups change) */
    uid_t uid;
    gid_t gid;
    char user[CFG_NAME_MAX];
} priv_target;

typedef struct master_ctx {
    scatter_config *cfg;
    struct cfg_snapshot *cfgsnap; /* where workers take the config from on a reload */
    logger log;
    shm_table tbl;
    int listen_fd;
    int ready_fd;               /* pipe to the process that launched a detaching daemon; -1 */
    struct ev_loop *loop;
    ev_signal sigterm_w, sigint_w, sighup_w, sigusr1_w;
    ev_child child_w;
    ev_timer refresh_w, metrics_w, circuit_w, restart_w, stop_w, save_w;
    ev_timer notify_w;          /* under systemd: polls until every worker serves, then READY=1 */
    int sd_ready;               /* READY=1 was sent: reloads are reported (RELOADING=1, READY=1) */
    uint32_t n_workers;
    worker_slot workers[SHM_MAX_WORKERS];
    int stopping;
    uint32_t n_sources;
    source sources[SRC_MAX];
    src_fetch fetches[SRC_MAX];
    uint32_t shard_dropped[SRC_MAX]; /* per source, as of its last complete fetch (status: shard_dropped) */
    uint32_t src_running;       /* fetches not finished */
    uint32_t src_done, src_ok;  /* fetches finished / succeeded since src_running was last 0 */
    int state_save_disabled;    /* the state file could not be read: our saves must not replace it */
    struct mgmt_state *mgmt;    /* the management endpoints (mgmt.c); NULL when metrics_listen is off */
    priv_target priv;
    const char *opt_user;       /* --user USER[:GROUP], overriding `user` / `group`; NULL */
    /* who resolved the relative paths at start: a reload after the switch resolves as it did */
    unsigned start_euid;
    char *start_xdg;            /* getenv("XDG_RUNTIME_DIR") at start, or NULL */
} master_ctx;

/* sources.c: parse `sources` into ctx->sources; 0 or -1 with err. */
int src_parse_list(const char *list, source *out, uint32_t *n, char *err, size_t cap);
/* Starts a fetch of every source and returns at once (the number started): each source is
 * fetched, parsed and resolved in a child process, and its proxies are merged into the table
 * from the master's loop as they arrive. A source still being fetched is not started again;
 * one that a reload changed is abandoned and fetched anew. `revive`: a refresh, so dead
 * proxies listed again come back. Needs m->loop. */
int src_refresh(master_ctx *m, int revive);
/* Start-up: runs the loop until every fetch has ended or `ms` passed (or a stop began), so
 * local files and quick sources are in the table before the first client, and a slow one
 * does not hold the daemon back. */
void src_wait(master_ctx *m, uint32_t ms);
/* True while a fetch started before the workers runs: an empty pool then means "not loaded
 * yet", not "every proxy failed" (the circuit breakers wait). */
int src_loading(const master_ctx *m);
/* Kills every fetch (SIGKILL) and reaps it; for the stop. */
void src_stop(master_ctx *m);
/* Source bitmask for a comma-separated list of source names; -1 if a name is unknown. */
int64_t src_mask_for(const master_ctx *m, const char *names, char *err, size_t cap);

/* listen.c: opens the client socket; a stale file is replaced, a live one is an error. */
int listen_open(const char *path, unsigned mode, const logger *lg);
/* Checks that the HTTP front end's address (http_listen) can be bound by the workers. 0, or
 * -1 logged naming the key. */
int listen_check_http(const char *addr, const logger *lg);

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
/* Writes shm_host.interval_ms of every registered host whose value is not its configured
 * interval plus margin: hosts workers registered since the last call. */
void hosts_publish_intervals(master_ctx *m);
/* hosts.c: frees idle host slots when registrations find the table full (circuit tick). */
void hosts_reclaim(master_ctx *m, uint64_t now_ms);

/* mgmt.c: the management endpoints on metrics_listen (/metrics, /health, /proxy-metrics),
 * served on m->loop without blocking it. 0 (also when metrics_listen is empty), or -errno
 * logged naming the key (the address cannot be bound). */
int mgmt_start(master_ctx *m);
void mgmt_stop(master_ctx *m);
/* In a child just forked from the master: closes the inherited listener and client sockets. */
void mgmt_close_inherited(master_ctx *m);

/* privdrop.c. priv_resolve: looks up `user` and `group` (0, or -1 with err naming the key:
 * unknown user or group). priv_check_start: the start may switch (root), or already runs as
 * them; -1 with err otherwise. priv_own_dir: makes a root-owned (or the user's) directory the
 * user's, creating it 0750 if missing. priv_drop: initgroups/setgroups, setgid, setuid,
 * checked. priv_check_writable: after the switch, the directory of `file` (the value of
 * `key`) is writable by us. All 0 or -1 with err; none logs. */
int priv_resolve(const scatter_config *c, priv_target *t, char *err, size_t cap);
int priv_check_start(const scatter_config *c, priv_target *t, char *err, size_t cap);
/* A switch to a non-root user with an http_listen port below 1024 (the workers bind it after
 * the switch): -1 with err naming the key. */
int priv_check_ports(const scatter_config *c, const priv_target *t, char *err, size_t cap);
int priv_own_dir(const priv_target *t, const char *dir, char *err, size_t cap);
int priv_drop(const priv_target *t, char *err, size_t cap);
int priv_check_writable(const char *key, const char *file, const char *who, char *err, size_t cap);

/* report.c: the periodic metrics line. */
void report_metrics(master_ctx *m, uint64_t now_ms);

#endif
