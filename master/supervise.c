/*
 * Worker supervision (nginx's shape: one function spawns, one reaps). A worker that dies is
 * started again after a backoff that doubles while it keeps dying young, and every rate-limit
 * word it held is released first, so its pairs are neither lost nor double-held.
 */
#include "master/master.h"

#include "shm/ratelimit.h"
#include "worker/main.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 30000
#define STABLE_MS 30000
#define DEAD_GRACE_MS 2000

static int spawn(master_ctx *m, uint32_t i)
{
    /* block the signals the worker takes through its signalfd, so none is lost or handled by
     * the inherited libev handlers between fork and the worker's setup */
    sigset_t ss, old;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    sigaddset(&ss, SIGUSR1);
    sigaddset(&ss, SIGCHLD);
    sigprocmask(SIG_BLOCK, &ss, &old);
    pid_t pid = fork();
    if (pid == 0) {
        if (m->ready_fd >= 0)
            close(m->ready_fd); /* only the master answers the launcher */
        for (uint32_t k = 0; k < SRC_MAX; k++) /* source fetches in flight are the master's */
            if (m->fetches[k].fd >= 0 && m->fetches[k].pid)
                close(m->fetches[k].fd);
        mgmt_close_inherited(m); /* the endpoints are the master's */
        signal(SIGCHLD, SIG_DFL);
        sigdelset(&ss, SIGCHLD);
        sigprocmask(SIG_SETMASK, &ss, NULL);
        int rc = worker_main(i + 1, m->cfg, m->cfgsnap, &m->tbl, m->listen_fd, &m->log);
        _exit(rc);
    }
    int err = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        LOGE(&m->log, "fork worker %u: %s", i + 1, strerror(err));
        return -1;
    }
    uint64_t now = shm_now_ms();
    m->workers[i].pid = pid;
    m->workers[i].started_ms = now;
    atomic_store(&m->tbl.hdr->workers[i].pid, pid);
    atomic_store(&m->tbl.hdr->workers[i].started_ms, now);
    return 0;
}

int sup_start_all(master_ctx *m)
{
    atomic_store(&m->tbl.hdr->n_workers, m->n_workers);
    for (uint32_t i = 0; i < m->n_workers; i++) {
        m->workers[i].backoff_ms = BACKOFF_MIN_MS;
        if (spawn(m, i))
            return -1;
    }
    LOGI(&m->log, "started %u workers", m->n_workers);
    return 0;
}

uint32_t sup_running(const master_ctx *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n_workers; i++)
        n += m->workers[i].pid != 0;
    return n;
}

void sup_signal_workers(master_ctx *m, int sig)
{
    for (uint32_t i = 0; i < m->n_workers; i++)
        if (m->workers[i].pid > 0)
            kill(m->workers[i].pid, sig);
}

static void arm_restart(master_ctx *m)
{
    uint64_t now = shm_now_ms(), next = UINT64_MAX;
    for (uint32_t i = 0; i < m->n_workers; i++)
        if (m->workers[i].pid == 0 && m->workers[i].restart_at_ms && m->workers[i].restart_at_ms < next)
            next = m->workers[i].restart_at_ms;
    ev_timer_stop(m->loop, &m->restart_w);
    if (next != UINT64_MAX) {
        ev_timer_set(&m->restart_w, next > now ? (double)(next - now) / 1000.0 : 0.001, 0.);
        ev_timer_start(m->loop, &m->restart_w);
    }
}

void sup_child_cb(struct ev_loop *loop, ev_child *cw, int revents)
{
    master_ctx *m = cw->data;
    pid_t pid = cw->rpid;
    int st = cw->rstatus;
    for (uint32_t i = 0; i < m->n_workers; i++) {
        if (m->workers[i].pid != pid)
            continue;
        worker_slot *ws = &m->workers[i];
        ws->pid = 0;
        atomic_store(&m->tbl.hdr->workers[i].pid, 0);
        uint64_t now = shm_now_ms();
        /* whatever it held it will never release. A request it sent may still be on its way
         * through the proxy (its socket closed, the proxy's buffer did not), so each pair is
         * freed an interval after a grace of DEAD_GRACE_MS, not after now. */
        hosts_publish_intervals(m); /* a host it registered since the last tick has none yet */
        uint32_t freed = rl_release_holder(&m->tbl, i + 1, now + DEAD_GRACE_MS);
        /* the tasks and attempts it counted in the shared pending/inflight are gone with it */
        int64_t owed_p, owed_f;
        shm_worker_reclaim(&m->tbl, i + 1, &owed_p, &owed_f);
        if (m->stopping) {
            LOGI(&m->log, "worker %u (pid %d) exited%s", i + 1, (int)pid,
                 WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "" : " abnormally");
            if (sup_running(m) == 0)
                ev_break(loop, EVBREAK_ALL);
            return;
        }
        if (now - ws->started_ms > STABLE_MS)
            ws->backoff_ms = BACKOFF_MIN_MS;
        if (WIFSIGNALED(st))
            LOGW(&m->log,
                 "worker %u (pid %d) killed by signal %d; released %u rate-limit words, %lld pending tasks, "
                 "%lld attempts in flight; restart in %u ms",
                 i + 1, (int)pid, WTERMSIG(st), freed, (long long)owed_p, (long long)owed_f, ws->backoff_ms);
        else
            LOGW(&m->log,
                 "worker %u (pid %d) exited with status %d; released %u rate-limit words, %lld pending tasks, "
                 "%lld attempts in flight; restart in %u ms",
                 i + 1, (int)pid, WEXITSTATUS(st), freed, (long long)owed_p, (long long)owed_f, ws->backoff_ms);
        atomic_fetch_add(&m->tbl.hdr->workers[i].restarts, 1);
        ws->restart_at_ms = now + ws->backoff_ms;
        ws->backoff_ms = ws->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ws->backoff_ms * 2;
        arm_restart(m);
        return;
    }
}

void sup_restart_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    master_ctx *m = tw->data;
    if (m->stopping)
        return;
    uint64_t now = shm_now_ms();
    for (uint32_t i = 0; i < m->n_workers; i++) {
        worker_slot *ws = &m->workers[i];
        if (ws->pid == 0 && ws->restart_at_ms && ws->restart_at_ms <= now) {
            ws->restart_at_ms = 0;
            if (spawn(m, i) == 0)
                LOGI(&m->log, "worker %u restarted (pid %d)", i + 1, (int)ws->pid);
            else
                ws->restart_at_ms = now + ws->backoff_ms;
        }
    }
    arm_restart(m);
}
