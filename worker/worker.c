/*
 * Worker process main: builds the context, runs the libev loop, handles SIGTERM (graceful
 * stop with the grace period), SIGHUP (re-read the config the master already validated),
 * SIGUSR1 (reopen log_file after logrotate).
 * A worker uses its own loop (ev_loop_new), never the default loop inherited from the master
 * (after fork that loop still holds the master's watchers and its SIGCHLD handling), and
 * dies with the master (PR_SET_PDEATHSIG).
 */
#include "worker/worker.h"
#include "worker/conn.h"
#include "worker/http.h"
#include "worker/redis.h"
#include "worker/tunnel.h"
#include "worker/policy.h"

#include "common/config_snapshot.h"
#include "common/rng.h"
#include "shm/ratelimit.h"
#include "shm/registry.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

uint64_t worker_rand(worker_ctx *w)
{
    return rng_next(&w->rnd);
}

void worker_need_dispatch(worker_ctx *w)
{
    w->dispatch_needed = 1;
}

void worker_health_params(const worker_ctx *w, const host_rt *h, health_params *out)
{
    *out = w->hp_default;
    out->cooldown_fails = h->cfg->cooldown_consecutive_fails;
    out->cooldown_base_ms = h->cfg->cooldown_base_ms;
    out->cooldown_max_ms = h->cfg->cooldown_max_ms;
    out->eviction_min_samples = h->cfg->eviction_min_samples;
}

/* the ring in host_rt is the one policy_win_push fills */
_Static_assert(sizeof(((host_rt *)0)->win_lat) == POLICY_WIN_RING * sizeof(uint32_t), "win_lat ring size");

void worker_host_record_win(host_rt *h, uint32_t latency_ms)
{
    if (policy_win_push(h->win_lat, &h->win_n, &h->win_pos, latency_ms))
        h->hedge_ms = policy_hedge_quantile(h->win_lat, h->win_n, h->cfg->hedge_quantile, h->cfg->hedge_min_ms);
}

uint32_t worker_host_hedge_ms(const host_rt *h)
{
    return policy_hedge_ms(h->cfg->race_hedged, h->win_n, h->hedge_ms);
}

int worker_host_acquire(worker_ctx *w, const char *key, host_rt **out)
{
    shm_table *t = w->tbl;
    for (int tries = 0; tries < 4; tries++) {
        uint32_t idx;
        int rc = reg_host_get(t, key, &idx);
        if (rc == -ENOSPC)
            atomic_store(&t->hdr->host_full_ms, shm_now_ms()); /* asks the master to reclaim */
        if (rc < 0)
            return rc;
        uint32_t gen = atomic_load(&t->hosts[idx].gen);
        host_rt *h = worker_host(w, idx, key);
        if (!h)
            return -ENOMEM;
        worker_host_live_add(h, 1);
        if (reg_host_still(t, idx, key, gen)) {
            *out = h;
            return 0;
        }
        worker_host_live_add(h, -1); /* the master reclaimed the slot meanwhile: look the name up again */
    }
    return -ENOSPC;
}

void worker_host_live_add(host_rt *h, int delta)
{
    uint32_t before = h->live_tasks;
    h->live_tasks = (uint32_t)((int64_t)h->live_tasks + delta);
    if ((before == 0) == (h->live_tasks == 0) || h->w->index == 0 || h->w->index > SHM_MAX_WORKERS)
        return;
    _Atomic uint64_t *mask = &h->w->tbl->hosts[h->idx].live_workers;
    uint64_t bit = 1ULL << (h->w->index - 1);
    if (h->live_tasks)
        atomic_fetch_or(mask, bit);
    else
        atomic_fetch_and(mask, ~bit);
}

static void host_wake_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    host_rt *h = tw->data;
    h->waiting = 0;
    worker_need_dispatch(h->w);
}

static int host_apply_cfg(worker_ctx *w, host_rt *h)
{
    h->cfg = cfg_host_for(w->cfg, h->name);
    char err[256];
    if (cls_compile(&h->cls, h->cfg, err, sizeof err)) {
        LOGE(&w->log, "%s", err);
        return -1;
    }
    return 0;
}

/* Drops our state of a host slot the master reclaimed (we had no task of it). */
static void host_forget(worker_ctx *w, host_rt *h)
{
    for (host_rt **pp = &w->active; *pp; pp = &(*pp)->next_active)
        if (*pp == h) {
            *pp = h->next_active;
            break;
        }
    w->hosts[h->idx] = NULL;
    sched_host_free(h);
}

host_rt *worker_host(worker_ctx *w, uint32_t idx, const char *name)
{
    if (idx >= w->tbl->hdr->max_hosts)
        return NULL;
    if (w->hosts[idx] && strcmp(w->hosts[idx]->name, name) == 0)
        return w->hosts[idx];
    if (w->hosts[idx]) {
        if (w->hosts[idx]->live_tasks)
            return NULL; /* cannot happen: a slot with our live task is never reclaimed */
        host_forget(w, w->hosts[idx]);
    }
    host_rt *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->idx = idx;
    h->w = w;
    snprintf(h->name, sizeof h->name, "%s", name);
    if (select_index_init(&h->ix, w->tbl, idx, w->index) != 0 || host_apply_cfg(w, h)) {
        free(h);
        return NULL;
    }
    ev_init(&h->wake, host_wake_cb);
    h->wake.data = h;
    w->hosts[idx] = h;
    return h;
}

bool worker_pair_release(host_rt *h, uint32_t proxy, uint64_t sent_ms, uint32_t interval_ms)
{
    worker_ctx *w = h->w;
    bool ours = rl_release(&shm_cell_at(w->tbl, proxy, h->idx)->rl, w->index, sent_ms, interval_ms);
    uint64_t now = shm_now_ms();
    select_index_put(w->tbl, &h->ix, proxy, now, &w->sp);
    sched_pair_freed(h, select_index_free_at(&h->ix, proxy, now));
    return ours;
}

int worker_pair_reserve(host_rt *h, uint32_t proxy)
{
    return select_index_reserve(&h->ix, proxy);
}

void worker_pair_unreserve(host_rt *h, uint32_t proxy)
{
    uint64_t now = shm_now_ms();
    select_index_unreserve(h->w->tbl, &h->ix, proxy, now, &h->w->sp);
    sched_pair_freed(h, select_index_free_at(&h->ix, proxy, now));
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t worker_select(host_rt *h, uint32_t k, uint64_t now_ms, uint32_t *out, select_stats *st)
{
    worker_ctx *w = h->w;
    uint64_t t0 = mono_ns();
    uint32_t n = select_claim(w->tbl, &h->ix, k, now_ms, &w->sp, worker_rand(w), out, st);
    atomic_fetch_add_explicit(&w->tbl->hdr->c.select_ns, mono_ns() - t0, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->tbl->hdr->c.selects, 1, memory_order_relaxed);
    return n;
}

#define HOME_GRACE_MS 20
/* 3 % of the score range: a worker prefers its own pairs among near-equals (select.h), so its
 * idle tunnels are the ones it reuses. A small effect, measured once at 20,000 proxies x 2
 * workers (bench/fleet.sh): 79,718 new TCP connections and 0.070 CPU s per 1,000 tasks with
 * it, 84,268 and 0.079 without. */
#define HOME_BONUS 30000

static void apply_params(worker_ctx *w)
{
    health_params_default(&w->hp_default);
    w->hp_default.window = w->cfg->health_window;
    w->hp_default.cooldown_jitter_pct = w->cfg->cooldown_jitter_pct;
    select_params_default(&w->sp);
    w->sp.w_affinity = w->cfg->score_affinity;
    w->sp.w_global = w->cfg->score_global;
    w->sp.w_recency = w->cfg->score_recency;
    w->sp.jitter = w->cfg->score_jitter * 1000; /* thousandths -> millionths */
    /* connection affinity (shm/select.h): long enough for the home worker's loop to notice
     * a pair it was waiting for, short against any interval worth rate-limiting */
    w->sp.home_workers = atomic_load(&w->tbl->hdr->n_workers);
    w->sp.home_grace_ms = HOME_GRACE_MS;
    w->sp.home_bonus = HOME_BONUS;
    w->log.level = (log_level)w->cfg->log_level;
}

static void reload(worker_ctx *w)
{
    /* the master merged and validated it (only reloadable keys change); the file is not read */
    scatter_config *nc = cfg_alloc();
    uint32_t seq = 0;
    if (!nc || cfg_snapshot_read(w->cfgsnap, nc, &seq)) {
        LOGE(&w->log, "reload: %s; keeping the running config", nc ? "the master's config kept changing" : "out of memory");
        cfg_free(nc);
        return;
    }
    scatter_config *old = w->cfg;
    w->cfg = nc;
    w->cfg_publication = seq;
    for (uint32_t i = 0; i < w->tbl->hdr->max_hosts; i++)
        if (w->hosts[i])
            host_apply_cfg(w, w->hosts[i]);
    apply_params(w);
    if (w->cfg_owned)
        cfg_free(old);
    w->cfg_owned = 1;
    LOGI(&w->log, "config reloaded (publication %u)", seq);
    worker_need_dispatch(w);
}

static void begin_stop(worker_ctx *w)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    redis_front_stop(w);
    /* the shared socket stays watched: a client that connects during the grace is answered
     * shutting_down instead of waiting in the backlog for a close */
    ev_io_stop(w->loop, &w->own_w);
    if (w->own_fd >= 0) {
        close(w->own_fd);
        w->own_fd = -1;
        unlink(w->own_path);
    }
    double grace = w->cfg->shutdown_grace_ms / 1000.0;
    ev_timer_set(&w->stop_w, grace, 0.);
    ev_timer_start(w->loop, &w->stop_w);
    LOGI(&w->log, "stopping: %u tasks in flight, grace %.1f s", w->n_tasks, grace);
}

static void final_flush(worker_ctx *w)
{
    /* end whatever is left, then give clients a moment to read their last replies */
    for (conn *c = w->conns; c; c = c->next)
        task_owner_cancel_all(&c->owner, ERR_SHUTTING_DOWN, "the daemon stopped before the task finished");
    redis_front_abandon(w); /* left pending in the group: another instance claims them */
    for (conn *c = w->conns, *n; c; c = n) {
        n = c->next;
        conn_send(c, &(msgpack_sbuffer){0});
        c->closing = 1;
        ev_feed_event(w->loop, &c->wio, EV_WRITE);
    }
    http_shutdown_all(w); /* their tasks answered 503 shutting_down, then closed */
    tunnel_close_all(w);  /* nothing inside a tunnel can be answered: it just closes */
    ev_timer_stop(w->loop, &w->stop_w);
    ev_timer_set(&w->stop_w, 1.0, 0.);
    ev_timer_start(w->loop, &w->stop_w);
    w->stop_deadline_ms = 1;
}

static void stop_timer_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    worker_ctx *w = tw->data;
    if (w->stop_deadline_ms) {
        ev_break(loop, EVBREAK_ALL); /* flush time is over */
        return;
    }
    LOGW(&w->log, "grace period over: answering %u tasks shutting_down", w->n_tasks);
    final_flush(w);
}

/* A burst of attempts leaves megabytes of freed libcurl buffers that glibc keeps for reuse;
 * once the worker has been idle for half a second, give them back (the 50 MB target at 20,000
 * proxies counts every process's resident memory). */
static void trim_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    worker_ctx *w = tw->data;
    if (w->n_tasks == 0 && w->inflight == 0 && !w->orphans) {
        malloc_trim(0);
        w->heap_dirty = 0;
    }
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *pw, int revents)
{
    worker_ctx *w = pw->data;
    if (w->n_tasks)
        w->heap_dirty = 1;
    else if (w->heap_dirty && !ev_is_active(&w->trim_w)) {
        ev_timer_set(&w->trim_w, 0.5, 0.);
        ev_timer_start(loop, &w->trim_w);
    }
    redis_front_poll(w);
    if (w->dispatch_needed)
        sched_dispatch(w); /* stopping too: in-flight tasks may still finish their races in the grace period */
    if (w->stopping && w->n_tasks == 0) {
        if (!w->stop_deadline_ms)
            final_flush(w);
        if (!w->conns && !w->http_conns && !w->tunnels && !redis_front_busy(w))
            ev_break(loop, EVBREAK_ALL);
    }
    w->poll_enter = ev_time(); /* the loop waits from here to busy_cb */
}

/* The loop's busy share over about a second: when it nears 1 the worker is CPU-bound, and
 * racing a task over more proxies costs other tasks their turn (sched.c). */
static void busy_cb(struct ev_loop *loop, ev_check *cw, int revents)
{
    (void)loop;
    (void)revents;
    worker_ctx *w = cw->data;
    double now = ev_time();
    if (w->poll_enter > 0)
        w->idle_s += now - w->poll_enter;
    w->poll_enter = 0;
    double span = now - w->busy_since;
    if (span >= 1.0) {
        double busy = span > w->idle_s ? 1.0 - w->idle_s / span : 0.0;
        w->busy_permille = (uint32_t)(busy * 1000.0);
        w->busy_since = now;
        w->idle_s = 0;
    }
}

/* SIGUSR1, forwarded by the master: our copy of the log descriptor is our own since the
 * fork, so each worker opens log_file again itself. */
static void reopen_log(worker_ctx *w)
{
    if (!w->cfg->log_file[0])
        return;
    int rc = log_reopen(&w->log, w->cfg->log_file);
    if (rc)
        LOGE(&w->log, "SIGUSR1: cannot reopen log_file '%s': %s; still writing to the old file", w->cfg->log_file,
             strerror(-rc));
    else
        LOGI(&w->log, "log file reopened (SIGUSR1)");
}

/* Signals arrive through a signalfd: libev's signal ownership is process-wide state inherited
 * from the master's default loop, so a worker must not attach the same signals to its loop.
 * The master forks with these signals blocked and they stay blocked here. */
static void signal_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    worker_ctx *w = io->data;
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP)
            reload(w);
        else if (si.ssi_signo == SIGUSR1)
            reopen_log(w);
        else
            begin_stop(w);
    }
}

static int open_own_socket(worker_ctx *w)
{
    snprintf(w->own_path, sizeof w->own_path, "%s.%u", w->cfg->socket_path, w->index);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(w->own_path) >= sizeof sa.sun_path) {
        LOGE(&w->log, "worker socket path too long: %s", w->own_path);
        return -1;
    }
    memcpy(sa.sun_path, w->own_path, strlen(w->own_path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    unlink(w->own_path); /* ours by name: a previous incarnation of this worker left it */
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 512)) {
        LOGE(&w->log, "worker socket %s: %s", w->own_path, strerror(errno));
        close(fd);
        return -1;
    }
    chmod(w->own_path, w->cfg->socket_mode);
    w->own_fd = fd;
    return 0;
}

int worker_main(uint32_t index, scatter_config *cfg, const struct cfg_snapshot *snap, shm_table *tbl, int listen_fd,
                const logger *parent_log)
{
    pid_t master = getppid();
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* graceful: in-flight tasks still get their grace */
    if (getppid() != master)
        return 1; /* the master died between fork and prctl */
    signal(SIGPIPE, SIG_IGN);
    worker_ctx *w = calloc(1, sizeof *w);
    if (!w)
        return 1;
    w->index = index;
    w->http_fd = -1;
    w->cfgsnap = snap;
    /* the master's copy, inherited at fork: shared pages until the first reload replaces it
     * (a private copy would cost each worker 1.6 MB) */
    w->cfg = cfg;
    w->cfg_publication = cfg_snapshot_seq(snap); /* a restarted worker starts at the latest one */
    w->tbl = tbl;
    w->listen_fd = listen_fd;
    /* a previous worker with our index may have died with tasks queued: nothing of ours is */
    uint32_t nh = atomic_load(&tbl->hdr->n_hosts);
    for (uint32_t i = 0; i < nh && index >= 1 && index <= SHM_MAX_WORKERS; i++) {
        atomic_fetch_and(&tbl->hosts[i].queued_workers, ~(1ULL << (index - 1)));
        atomic_fetch_and(&tbl->hosts[i].live_workers, ~(1ULL << (index - 1)));
    }
    w->own_fd = -1;
    w->log = *parent_log;
    log_set_process(&w->log, "worker", index);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    w->rnd = rng_seed(((uint64_t)ts.tv_nsec << 20) ^ ((uint64_t)getpid() << 1) ^ 0x9E3779B97F4A7C15ULL);
    apply_params(w);
    w->hosts = calloc(tbl->hdr->max_hosts, sizeof *w->hosts);
    w->loop = ev_loop_new(EVFLAG_AUTO);
    if (!w->hosts || !w->loop || race_init(w)) {
        LOGE(&w->log, "cannot initialise (out of memory or libev/libcurl failure)");
        return 1;
    }
    open_own_socket(w); /* without it clients still reach us through the shared socket */
    if (http_listen_start(w) < 0)
        LOGW(&w->log, "the HTTP front end is off in this worker"); /* the msgpack sockets still serve */
    if (redis_front_start(w) < 0)
        LOGW(&w->log, "the Redis stream is off in this worker"); /* the sockets still serve */
    ev_io_init(&w->listen_w, conn_accept_cb, listen_fd, EV_READ);
    w->listen_w.data = w;
    ev_io_start(w->loop, &w->listen_w);
    if (w->own_fd >= 0) {
        ev_io_init(&w->own_w, conn_accept_cb, w->own_fd, EV_READ);
        w->own_w.data = w;
        ev_io_start(w->loop, &w->own_w);
    }
    ev_prepare_init(&w->dispatch_w, prepare_cb);
    w->dispatch_w.data = w;
    ev_prepare_start(w->loop, &w->dispatch_w);
    ev_check_init(&w->busy_w, busy_cb);
    w->busy_w.data = w;
    ev_set_priority(&w->busy_w, EV_MAXPRI);
    ev_check_start(w->loop, &w->busy_w);
    w->busy_since = ev_time();
    ev_init(&w->trim_w, trim_cb);
    w->trim_w.data = w;
    ev_init(&w->stop_w, stop_timer_cb);
    w->stop_w.data = w;
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    sigaddset(&ss, SIGUSR1);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    w->sig_fd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    if (w->sig_fd < 0) {
        LOGE(&w->log, "signalfd: %s", strerror(errno));
        return 1;
    }
    ev_io_init(&w->sig_w, signal_cb, w->sig_fd, EV_READ);
    w->sig_w.data = w;
    ev_io_start(w->loop, &w->sig_w);
    LOGI(&w->log, "started (pid %d)", (int)getpid());
    /* every socket is watched: the master may report the daemon ready */
    atomic_store(&tbl->hdr->workers[index - 1].serving_pid, (int32_t)getpid());

    ev_run(w->loop, 0);

    while (w->conns)
        conn_close(w->conns);
    http_close_all(w);
    tunnel_close_all(w);
    http_listen_stop(w);
    redis_front_free(w);
    race_cleanup(w);
    for (uint32_t i = 0; i < tbl->hdr->max_hosts; i++)
        if (w->hosts[i])
            sched_host_free(w->hosts[i]);
    free(w->hosts);
    if (w->own_fd >= 0) {
        close(w->own_fd);
        unlink(w->own_path);
    }
    ev_timer_stop(w->loop, &w->trim_w);
    ev_check_stop(w->loop, &w->busy_w);
    ev_io_stop(w->loop, &w->sig_w);
    close(w->sig_fd);
    ev_loop_destroy(w->loop);
    LOGI(&w->log, "stopped");
    int rc = 0;
    if (w->cfg_owned)
        cfg_free(w->cfg);
    free(w);
    return rc;
}
