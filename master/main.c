/*
 * scatterd: the master. Startup order matters: config, then the shared table (before any
 * fork, so every worker inherits the same mapping), then the socket, the state file, the
 * sources (fetched by children; at most SRC_STARTUP_WAIT_MS of waiting), then the workers.
 * After that the master only runs periodic jobs and reacts to signals; it is never
 * on a task's path.
 */
#include "master/master.h"
#include "common/config_snapshot.h"
#include "master/persist.h"

#include "common/paths.h"

#include "shm/ratelimit.h"
#include "shm/session.h"

#include <curl/curl.h>
#include <systemd/sd-daemon.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char USAGE[] =
    "Usage: scatterd -c FILE [OPTIONS]\n"
    "\n"
    "scatter daemon: finishes large batches of HTTP requests through many unreliable SOCKS5\n"
    "proxies, racing each request over several proxies while keeping every (proxy, host) pair\n"
    "under its configured rate limit. Clients connect to its Unix socket (see scatterctl(1)\n"
    "and docs/PROTOCOL.md).\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE         configuration file (scatter.ini); required to run\n"
    "  -w, --workers N           worker processes (overrides `workers`; 0 = one per CPU)\n"
    "  -f, --foreground          stay in the foreground (default: detach and run in background)\n"
    "  -l, --log-level LEVEL     error, warn, info or debug (overrides `log_level`)\n"
    "  -u, --user USER[:GROUP]   started as root, run as USER (and GROUP) once the sockets and\n"
    "                            files are open (overrides `user` and `group`)\n"
    "      --check               validate the configuration and exit (0 valid, 2 invalid)\n"
    "      --print-config        print the effective configuration (after -c) and exit\n"
    "      --print-default-config\n"
    "                            print every key with its default and documentation, and exit\n"
    "  -h, --help                this text\n"
    "  -V, --version             version\n"
    "\n"
    "Signals:\n"
    "  SIGTERM, SIGINT  graceful stop: stop accepting, let in-flight tasks finish for up to\n"
    "                   shutdown_grace, answer the rest shutting_down, save state, exit 0\n"
    "  SIGHUP           reload the configuration (reloadable keys) and refresh the sources\n"
    "  SIGUSR1          reopen log_file in the master and every worker (after logrotate)\n"
    "\n"
    "Exit status: 0 clean stop; 1 runtime failure (socket in use, no memory, ...);\n"
    "2 bad command line or configuration (the message names the key, the line and the value).\n";

static void stop_everything(master_ctx *m)
{
    if (m->stopping)
        return;
    m->stopping = 1;
    sd_notify(0, "STOPPING=1"); /* systemd: no-ops without NOTIFY_SOCKET, as are the others */
    ev_timer_stop(m->loop, &m->notify_w);
    atomic_store(&m->tbl.hdr->shutting_down, 1u);
    LOGI(&m->log, "stopping: %u workers, grace %u ms", sup_running(m), m->cfg->shutdown_grace_ms);
    ev_timer_stop(m->loop, &m->restart_w);
    ev_timer_stop(m->loop, &m->refresh_w);
    src_stop(m);
    sup_signal_workers(m, SIGTERM);
    /* workers answer their tasks by the grace period; allow them time to flush, then kill */
    ev_timer_set(&m->stop_w, m->cfg->shutdown_grace_ms / 1000.0 + 5.0, 0.);
    ev_timer_start(m->loop, &m->stop_w);
    if (sup_running(m) == 0)
        ev_break(m->loop, EVBREAK_ALL);
}

static void stop_timeout_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    master_ctx *m = tw->data;
    LOGW(&m->log, "workers still running after the grace period; killing them");
    sup_signal_workers(m, SIGKILL);
}

static void reload_config(master_ctx *m);

/* systemd sees the reload begin and end (a refused one too: the running config stays). */
static void reload(master_ctx *m)
{
    if (!m->sd_ready) { /* a SIGHUP during start-up: READY=1 is notify_cb's to send */
        reload_config(m);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
    reload_config(m);
    sd_notify(0, "READY=1");
}

static void reload_config(master_ctx *m)
{
    scatter_config *fresh = cfg_alloc(), *nc = cfg_alloc();
    char err[1024];
    if (!fresh || !nc) {
        LOGE(&m->log, "reload: out of memory");
        cfg_free(fresh);
        cfg_free(nc);
        return;
    }
    /* after a switch to `user`, relative paths still resolve as they did for the start's uid */
    if (cfg_load_as(fresh, m->cfg->path, m->start_euid, m->start_xdg, err, sizeof err)) {
        LOGE(&m->log, "reload refused, keeping the running config: %s", err);
        cfg_free(fresh);
        cfg_free(nc);
        return;
    }
    /* the key table's reloadable flag is the only rule: everything else keeps running values */
    char fixed[1024];
    if (cfg_reload_merge(m->cfg, fresh, nc, fixed, sizeof fixed))
        LOGW(&m->log, "reload: %s changed but can only change at start; ignored", fixed);
    cfg_free(fresh);
    source srcs[SRC_MAX];
    uint32_t ns;
    if (src_parse_list(nc->sources, srcs, &ns, err, sizeof err)) {
        LOGE(&m->log, "reload refused: %s", err);
        cfg_free(nc);
        return;
    }
    scatter_config *old = m->cfg;
    m->cfg = nc;
    memcpy(m->sources, srcs, sizeof srcs);
    m->n_sources = ns;
    m->log.level = (log_level)nc->log_level;
    if (hosts_apply_config(m, err, sizeof err))
        LOGE(&m->log, "reload: %s", err);
    cfg_free(old);
    /* workers take the merged config from here, never from the file */
    uint32_t seq = cfg_snapshot_publish(m->cfgsnap, nc);
    sup_signal_workers(m, SIGHUP);
    LOGI(&m->log, "config reloaded (publication %u); refreshing sources", seq);
    src_refresh(m, 1);
    ev_timer_set(&m->refresh_w, nc->source_refresh_interval_ms / 1000.0, nc->source_refresh_interval_ms / 1000.0);
    ev_timer_again(m->loop, &m->refresh_w);
}

/* SIGUSR1: logrotate renamed log_file; the master and every worker open it again, so the
 * next lines go to a new file at the configured path. */
static void reopen_log(master_ctx *m)
{
    if (!m->cfg->log_file[0])
        return; /* standard error: nothing to reopen */
    int rc = log_reopen(&m->log, m->cfg->log_file);
    if (rc)
        LOGE(&m->log, "SIGUSR1: cannot reopen log_file '%s': %s; still writing to the old file",
             m->cfg->log_file, strerror(-rc));
    else
        LOGI(&m->log, "log file reopened (SIGUSR1)");
    sup_signal_workers(m, SIGUSR1);
}

static void signal_cb(struct ev_loop *loop, ev_signal *sw, int revents)
{
    master_ctx *m = sw->data;
    if (sw->signum == SIGUSR1) {
        reopen_log(m);
    } else if (sw->signum == SIGHUP) {
        if (!m->stopping)
            reload(m);
    } else {
        stop_everything(m);
    }
}

/* READY=1 once the socket is open (it is, before any worker) and every worker runs its loop
 * with its sockets watched (each stores its pid in its slot just before). */
static void notify_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    master_ctx *m = tw->data;
    for (uint32_t i = 0; i < m->n_workers; i++)
        if (!m->workers[i].pid || atomic_load(&m->tbl.hdr->workers[i].serving_pid) != m->workers[i].pid)
            return;
    ev_timer_stop(loop, tw);
    m->sd_ready = 1;
    sd_notifyf(0, "READY=1\nSTATUS=serving on %s with %u workers", m->cfg->socket_path, m->n_workers);
    LOGD(&m->log, "all %u workers serving; readiness sent to systemd", m->n_workers);
}

static void refresh_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    master_ctx *m = tw->data;
    src_refresh(m, 1);
}

static void metrics_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    master_ctx *m = tw->data;
    report_metrics(m, shm_now_ms());
}

static void circuit_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    master_ctx *m = tw->data;
    uint64_t now = shm_now_ms();
    hosts_publish_intervals(m);
    circuit_tick(m, now);
    hosts_reclaim(m, now);
}

/* Through "<path>.tmp" created O_EXCL|O_NOFOLLOW: a symlink planted there by another user
 * must not make us overwrite its target, and a file they pre-created must not stay theirs
 * (they could then point `scatterctl stop` at any process). */
static int write_pidfile(const char *path, const logger *lg)
{
    if (!*path)
        return 0;
    char buf[32], err[CFG_STR_MAX + 256];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    int rc = paths_write_atomic(path, buf, (size_t)n, 0640, err, sizeof err);
    if (rc)
        LOGE(lg, "cannot write pid_file '%s': %s", path, err);
    return rc;
}

/* Detaches. The process that ran `scatterd` waits on a pipe until the daemon reports that it
 * serves (0) or why it could not start (its exit code), and exits with that: a daemon that
 * fails after detaching (socket in use, no memory...) must not look like a success. */
static int daemonize(master_ctx *m)
{
    int pfd[2];
    if (pipe(pfd))
        return -1;
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p > 0) {
        close(pfd[1]);
        unsigned char code = 1;
        ssize_t n;
        do
            n = read(pfd[0], &code, 1);
        while (n < 0 && errno == EINTR);
        _exit(n == 1 ? code : 1);
    }
    close(pfd[0]);
    setsid();
    p = fork();
    if (p < 0)
        return -1;
    if (p > 0)
        _exit(0);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        close(fd);
    }
    m->ready_fd = pfd[1];
    return 0;
}

/* Tells the launching process how the start went (once); returns code for `return ready(..)`. */
static int ready(master_ctx *m, int code)
{
    if (m->ready_fd >= 0) {
        unsigned char c = (unsigned char)code;
        ssize_t w = write(m->ready_fd, &c, 1);
        (void)w; /* the launcher may be gone; nothing to do about it */
        close(m->ready_fd);
        m->ready_fd = -1;
    }
    return code;
}

static int run(master_ctx *m, const char *path, const char *level, long workers, int fg, int check, int print);

int main(int argc, char **argv)
{
    static const struct option LONG[] = {
        {"config", required_argument, 0, 'c'}, {"workers", required_argument, 0, 'w'},
        {"foreground", no_argument, 0, 'f'},   {"log-level", required_argument, 0, 'l'},
        {"check", no_argument, 0, 1},          {"print-config", no_argument, 0, 2},
        {"print-default-config", no_argument, 0, 3}, {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},      {"user", required_argument, 0, 'u'},
        {0, 0, 0, 0}};
    const char *path = NULL, *level = NULL, *user = NULL;
    long workers = -1;
    int fg = 0, check = 0, print = 0, opt;
    while ((opt = getopt_long(argc, argv, "c:w:fl:u:hV", LONG, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'w': {
            char *end;
            workers = strtol(optarg, &end, 10);
            if (*end || workers < 0 || workers > SHM_MAX_WORKERS) {
                fprintf(stderr, "scatterd: --workers '%s': expected 0..%d\n", optarg, SHM_MAX_WORKERS);
                return 2;
            }
            break;
        }
        case 'f': fg = 1; break;
        case 'l': level = optarg; break;
        case 'u': user = optarg; break;
        case 1: check = 1; break;
        case 2: print = 1; break;
        case 3: {
            scatter_config *d = cfg_alloc();
            if (!d)
                return 1;
            cfg_defaults(d);
            cfg_print(d, stdout, 0);
            cfg_free(d);
            return 0;
        }
        case 'h': fputs(USAGE, stdout); return 0;
        case 'V': printf("scatterd %s\n", SCATTER_VERSION); return 0;
        default: fputs("Try 'scatterd --help'.\n", stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "scatterd: unexpected argument '%s'\nTry 'scatterd --help'.\n", argv[optind]);
        return 2;
    }
    if (!path) {
        fputs("scatterd: -c FILE is required\nTry 'scatterd --help'.\n", stderr);
        return 2;
    }
    master_ctx *m = calloc(1, sizeof *m);
    if (!m || !(m->cfg = cfg_alloc())) {
        free(m);
        return 1;
    }
    m->ready_fd = -1;
    m->opt_user = user;
    int rc = run(m, path, level, workers, fg, check, print);
    cfg_snapshot_destroy(m->cfgsnap);
    cfg_free(m->cfg);
    free(m);
    return rc;
}

/* Everything after the command line; every return leaves m for main to free. */
/* The file, then the command line's overrides, then the checks that need the sources. 0 or an
 * exit status (2), said on stderr. */
static int load_config(master_ctx *m, const char *path, const char *level, long workers)
{
    char err[1024];
    if (cfg_load(m->cfg, path, err, sizeof err)) {
        fprintf(stderr, "scatterd: %s\n", err);
        return 2;
    }
    if (level) {
        log_level l;
        if (log_level_parse(level, &l)) {
            fprintf(stderr, "scatterd: --log-level '%s': expected error, warn, info or debug\n", level);
            return 2;
        }
        m->cfg->log_level = l;
    }
    if (workers >= 0)
        m->cfg->workers = (uint32_t)workers;
    if (src_parse_list(m->cfg->sources, m->sources, &m->n_sources, err, sizeof err)) {
        fprintf(stderr, "scatterd: %s: %s\n", path, err);
        return 2;
    }
    for (uint32_t i = 0; i < m->cfg->n_hosts; i++)
        if (m->cfg->hosts[i].sources[0] && src_mask_for(m, m->cfg->hosts[i].sources, err, sizeof err) < 0) {
            fprintf(stderr, "scatterd: %s: [host:%s] sources: %s\n", path, m->cfg->hosts[i].name, err);
            return 2;
        }
    if (m->opt_user) {
        const char *colon = strchr(m->opt_user, ':');
        size_t ulen = colon ? (size_t)(colon - m->opt_user) : strlen(m->opt_user);
        if (ulen == 0 || ulen >= sizeof m->cfg->user || (colon && (!colon[1] || strlen(colon + 1) >= sizeof m->cfg->group))) {
            fprintf(stderr, "scatterd: --user '%s': expected USER or USER:GROUP\n", m->opt_user);
            return 2;
        }
        snprintf(m->cfg->user, sizeof m->cfg->user, "%.*s", (int)ulen, m->opt_user);
        snprintf(m->cfg->group, sizeof m->cfg->group, "%s", colon ? colon + 1 : "");
    }
    if (priv_resolve(m->cfg, &m->priv, err, sizeof err)) {
        fprintf(stderr, "scatterd: %s\n", err);
        return 2;
    }
    return 0;
}

/* Every attempt, idle tunnel and client is a descriptor; Debian's soft limit of 1024 is far
 * below what max_inflight + max_idle_connections + max_clients can need. */
static void raise_fd_limit(master_ctx *m)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
        rl.rlim_cur < (rlim_t)m->cfg->max_inflight + m->cfg->max_idle_connections + m->cfg->max_clients + 64)
        LOGW(&m->log, "open-file limit %llu is below what max_inflight + max_idle_connections + max_clients "
                      "may need; attempts may fail with 'too many open files'",
             (unsigned long long)rl.rlim_cur);
}

/* The mappings every worker inherits: the table, the config snapshot, the sessions. 0 or -1,
 * logged. */
static int create_shared(master_ctx *m)
{
    int rc = shm_create(&m->tbl, m->cfg->max_proxies, m->cfg->max_hosts);
    if (rc) {
        LOGE(&m->log, "cannot create the shared table (%u proxies x %u hosts): %s", m->cfg->max_proxies,
             m->cfg->max_hosts, strerror(-rc));
        return -1;
    }
    rc = cfg_snapshot_create(&m->cfgsnap, m->cfg);
    if (rc) {
        LOGE(&m->log, "cannot map the configuration for the workers: %s", strerror(-rc));
        return -1;
    }
    rc = sess_create(&m->tbl.sess, m->cfg->max_sessions);
    if (rc) {
        LOGE(&m->log, "cannot map the session table (max_sessions = %u): %s", m->cfg->max_sessions, strerror(-rc));
        return -1;
    }
    atomic_store(&m->tbl.hdr->master_pid, getpid());
    atomic_store(&m->tbl.hdr->started_ms, shm_now_ms());
    atomic_store(&m->tbl.hdr->shard_k, m->cfg->shard[0]);
    atomic_store(&m->tbl.hdr->shard_n, m->cfg->shard[1]);
    return 0;
}

/* Signals, children, and the periodic jobs (armed, not yet started). */
static void init_watchers(master_ctx *m)
{
    ev_signal_init(&m->sigterm_w, signal_cb, SIGTERM);
    ev_signal_init(&m->sigint_w, signal_cb, SIGINT);
    ev_signal_init(&m->sighup_w, signal_cb, SIGHUP);
    ev_signal_init(&m->sigusr1_w, signal_cb, SIGUSR1);
    m->sigterm_w.data = m->sigint_w.data = m->sighup_w.data = m->sigusr1_w.data = m;
    ev_signal_start(m->loop, &m->sigterm_w);
    ev_signal_start(m->loop, &m->sigint_w);
    ev_signal_start(m->loop, &m->sighup_w);
    ev_signal_start(m->loop, &m->sigusr1_w);
    ev_child_init(&m->child_w, sup_child_cb, 0, 0);
    m->child_w.data = m;
    ev_child_start(m->loop, &m->child_w);
    ev_init(&m->restart_w, sup_restart_cb);
    m->restart_w.data = m;
    ev_init(&m->stop_w, stop_timeout_cb);
    m->stop_w.data = m;
    ev_timer_init(&m->notify_w, notify_cb, 0.005, 0.005);
    m->notify_w.data = m;
    double ri = m->cfg->source_refresh_interval_ms / 1000.0, mi = m->cfg->metrics_log_interval_ms / 1000.0;
    ev_timer_init(&m->refresh_w, refresh_cb, ri, ri);
    ev_timer_init(&m->metrics_w, metrics_cb, mi, mi);
    ev_timer_init(&m->circuit_w, circuit_cb, 0.25, 0.25);
    m->refresh_w.data = m->metrics_w.data = m->circuit_w.data = m;
}

/* After the loop: the workers are gone, so nobody else can touch the table now. */
static void finish_stop(master_ctx *m)
{
    src_stop(m);
    mgmt_stop(m);
    close(m->listen_fd);
    unlink(m->cfg->socket_path);
    if (m->cfg->pid_file[0])
        unlink(m->cfg->pid_file);
    report_metrics(m, shm_now_ms());
    persist_master_save(m);
    uint32_t held = rl_count_held(&m->tbl, 0);
    if (held)
        LOGW(&m->log, "%u rate-limit words still held at exit", held);
    LOGI(&m->log, "stopped");
    shm_destroy(&m->tbl);
    curl_global_cleanup();
}

/* A start that fails once the pid file is written: it must not outlive us. */
static int start_failed(master_ctx *m, int code)
{
    if (m->cfg->pid_file[0])
        unlink(m->cfg->pid_file);
    return ready(m, code);
}

static int run(master_ctx *m, const char *path, const char *level, long workers, int fg, int check, int print)
{
    char err[1024];
    int rc = load_config(m, path, level, workers);
    if (rc)
        return rc;
    if (print) {
        cfg_print(m->cfg, stdout, 1);
        return 0;
    }
    if (check) {
        printf("%s: ok\n", path);
        return 0;
    }
    if (priv_check_start(m->cfg, &m->priv, err, sizeof err) || priv_check_ports(m->cfg, &m->priv, err, sizeof err)) {
        fprintf(stderr, "scatterd: %s\n", err);
        return 2;
    }
    m->start_euid = (unsigned)geteuid();
    m->start_xdg = getenv("XDG_RUNTIME_DIR");
    int logfd = 2;
    if (m->cfg->log_file[0]) {
        logfd = log_open_file(m->cfg->log_file);
        if (logfd < 0) {
            fprintf(stderr, "scatterd: log_file '%s': %s\n", m->cfg->log_file, strerror(-logfd));
            return 2;
        }
        /* the user reopens it on SIGUSR1 when logrotate did not rotate it (yet) */
        if (m->priv.active && fchown(logfd, m->priv.uid, m->priv.gid) != 0) {
            fprintf(stderr, "scatterd: log_file '%s': cannot give it to uid %u: %s\n", m->cfg->log_file,
                    (unsigned)m->priv.uid, strerror(errno));
            return 1;
        }
    }
    log_init(&m->log, (log_level)m->cfg->log_level, (log_format)m->cfg->log_format, logfd, "master", 0);
    m->n_workers = m->cfg->workers ? m->cfg->workers : (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
    if (m->n_workers < 1)
        m->n_workers = 1;
    if (m->n_workers > SHM_MAX_WORKERS)
        m->n_workers = SHM_MAX_WORKERS;
    if (!fg && daemonize(m)) {
        fprintf(stderr, "scatterd: cannot detach: %s\n", strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* a logrotate SIGUSR1 before the loop's handler is set must not end the start-up (its
     * default action); the workers are forked after the handler replaced this */
    signal(SIGUSR1, SIG_IGN);
    raise_fd_limit(m);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (create_shared(m))
        return ready(m, 1);
    /* with `user`, the runtime directory is the user's: its workers create their sockets there,
     * and the master removes the socket and pid file at exit */
    if (m->cfg->runtime_dir[0] && m->priv.active && priv_own_dir(&m->priv, m->cfg->runtime_dir, err, sizeof err)) {
        LOGE(&m->log, "runtime directory (for the relative socket_path / pid_file), [scatter] user: %s", err);
        return ready(m, 1);
    }
    if (m->cfg->runtime_dir[0] &&
        paths_ensure_dir(m->cfg->runtime_dir, m->priv.active ? m->priv.uid : geteuid(), err, sizeof err)) {
        LOGE(&m->log, "runtime directory (for the relative socket_path / pid_file): %s", err);
        return ready(m, 1);
    }
    m->listen_fd = listen_open(m->cfg->socket_path, m->cfg->socket_mode, &m->log);
    if (m->listen_fd < 0)
        return ready(m, 1);
    /* root listened (clients check SO_PEERCRED: root is trusted); the file is the user's, so
     * socket_mode's group bits name the user's group */
    if (m->priv.active && lchown(m->cfg->socket_path, m->priv.uid, m->priv.gid) != 0) {
        LOGE(&m->log, "socket_path '%s': cannot give it to uid %u: %s", m->cfg->socket_path, (unsigned)m->priv.uid,
             strerror(errno));
        return ready(m, 1);
    }
    if (listen_check_http(m->cfg->http_listen, &m->log))
        return ready(m, 1);
    /* state file: after the socket (a second daemon stops there, before touching the file),
     * before the sources (they only OR in their bits) and the workers, so they start warm */
    persist_master_load(m);
    /* the loop runs from here on: the sources are fetched by children of this loop, and a
     * SIGTERM or SIGHUP while they load is handled, never held up by a slow source */
    m->loop = EV_DEFAULT;
    if (mgmt_start(m))
        return ready(m, 1);
    /* the signal handlers before the pid file: a `scatterctl stop` that finds it gets a
     * graceful stop, not the default action */
    init_watchers(m);
    /* the pid file before the switch: root's, so root's scatterctl trusts it */
    if (write_pidfile(m->cfg->pid_file, &m->log))
        return ready(m, 1);
    if (m->priv.active) {
        if (priv_drop(&m->priv, err, sizeof err)) {
            LOGE(&m->log, "[scatter] user = '%s', group = '%s': cannot switch: %s", m->cfg->user, m->cfg->group,
                 err);
            return start_failed(m, 1);
        }
        char who[CFG_NAME_MAX + 32];
        snprintf(who, sizeof who, "uid %u", (unsigned)m->priv.uid);
        if (!m->state_save_disabled && priv_check_writable("state_file", m->cfg->state_file, who, err, sizeof err)) {
            LOGE(&m->log, "%s", err);
            return start_failed(m, 1);
        }
        LOGI(&m->log, "running as uid %u, gid %u ([scatter] user = '%s', group = '%s')", (unsigned)getuid(),
             (unsigned)getgid(), m->cfg->user, m->cfg->group);
    }
    src_refresh(m, 0);
    src_wait(m, SRC_STARTUP_WAIT_MS);
    if (m->stopping) {
        /* stopped before serving: no worker ran, so nothing was learnt since the state file */
        mgmt_stop(m);
        close(m->listen_fd);
        unlink(m->cfg->socket_path);
        if (m->cfg->pid_file[0])
            unlink(m->cfg->pid_file);
        LOGI(&m->log, "stopped during start-up");
        shm_destroy(&m->tbl);
        curl_global_cleanup();
        ready(m, 1);
        return 0;
    }
    if (hosts_apply_config(m, err, sizeof err)) {
        LOGE(&m->log, "%s", err);
        return start_failed(m, 2);
    }
    if (sup_start_all(m))
        return start_failed(m, 1);
    ready(m, 0);
    if (m->n_sources && !ev_is_active(&m->refresh_w)) /* a SIGHUP during start-up armed it */
        ev_timer_start(m->loop, &m->refresh_w);
    ev_timer_start(m->loop, &m->metrics_w);
    ev_timer_start(m->loop, &m->circuit_w);
    if (getenv("NOTIFY_SOCKET")) /* under systemd (Type=notify); otherwise nobody is told */
        ev_timer_start(m->loop, &m->notify_w);
    persist_master_start(m);
    LOGI(&m->log, "scatterd %s listening on %s with %u workers (pid %d)", SCATTER_VERSION, m->cfg->socket_path,
         m->n_workers, (int)getpid());

    ev_run(m->loop, 0);
    finish_stop(m);
    return 0;
}
