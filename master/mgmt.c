/*
 * The management endpoints (metrics_listen; docs/HTTP.md, "Management endpoints"): GET
 * /metrics (Prometheus text format 0.0.4), /health and /proxy-metrics (JSON), read from the
 * shared table. Served by the master on its own loop, so nothing here may block: sockets are
 * non-blocking, a client gets one request (at most MGMT_REQ_MAX bytes, parsed by
 * libhttp-parser, within MGMT_READ_TIMEOUT_S) and one answer (written within
 * MGMT_WRITE_TIMEOUT_S), then the connection closes; at most MGMT_MAX_CLIENTS at once, one
 * more is answered 503 and closed. A client that sends nothing costs one slot until its
 * timeout, never the loop.
 */
#include "master/master.h"

#include "common/error.h"
#include "common/listen_addr.h"
#include "shm/metrics.h"

#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MGMT_MAX_CLIENTS 16
#define MGMT_REQ_MAX 8192
#define MGMT_URL_MAX 256
#define MGMT_AUTH_MAX 512
#define MGMT_READ_TIMEOUT_S 2.0
#define MGMT_WRITE_TIMEOUT_S 10.0
/* /health judges the success rate only over a minute with at least this many ended tasks */
#define MGMT_HEALTH_MIN_TASKS 10

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} obuf;

typedef struct mgmt_client {
    struct mgmt_state *s;
    int fd;                   /* -1: slot free */
    ev_io rio, wio;
    ev_timer tmo;
    http_parser p;
    size_t got;               /* request bytes read so far */
    char url[MGMT_URL_MAX];
    size_t url_len;
    int url_long;
    char field[32];           /* the current header name (only Authorization matters) */
    size_t field_len;
    int in_value;
    char auth[MGMT_AUTH_MAX];
    size_t auth_len;
    int done;                 /* the request is complete */
    obuf out;
    size_t out_off;
} mgmt_client;

typedef struct mgmt_state {
    master_ctx *m;
    int fd;
    ev_io accept_w;
    mgmt_client c[MGMT_MAX_CLIENTS];
} mgmt_state;

/* ---- output ---- */

static void ob_vprintf(obuf *b, const char *fmt, va_list ap)
{
    if (b->oom)
        return;
    for (;;) {
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, aq);
        va_end(aq);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->len + (size_t)n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

static void ob_printf(obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ob_printf(obuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ob_vprintf(b, fmt, ap);
    va_end(ap);
}

/* A label value of the text format: backslash, double quote and newline escaped. */
static void ob_label(obuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            ob_printf(b, "\\%c", *s);
        else if (*s == '\n')
            ob_printf(b, "\\n");
        else
            ob_printf(b, "%c", *s);
    }
}

static void help(obuf *b, const char *name, const char *type, const char *text)
{
    ob_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* One sample of a per-host family: NAME{host="H"[,EXTRA]} VALUE */
static void host_sample(obuf *b, const char *name, const char *host, const char *extra, uint64_t v)
{
    ob_printf(b, "%s{host=\"", name);
    ob_label(b, host);
    ob_printf(b, "\"%s%s} %llu\n", extra ? "," : "", extra ? extra : "", (unsigned long long)v);
}

static void histogram(obuf *b, const char *name, const char *text, const shm_hist *h)
{
    help(b, name, "histogram", text);
    uint64_t cum = 0;
    for (uint32_t i = 0; i < SHM_LAT_BUCKETS; i++) {
        cum += atomic_load(&h->b[i]);
        if (i < SHM_LAT_BUCKETS - 1)
            ob_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, SHM_LAT_BOUND_MS[i] / 1000.0, (unsigned long long)cum);
        else
            ob_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    /* the buckets are read one by one while workers add: the count is the +Inf bucket, so the
     * sample stays self-consistent (count == last bucket) */
    ob_printf(b, "%s_sum %.3f\n%s_count %llu\n", name, (double)atomic_load(&h->sum_ms) / 1000.0, name,
              (unsigned long long)cum);
}

static uint64_t u64_of(int64_t v) { return v > 0 ? (uint64_t)v : 0; }

static int host_live(const shm_host *hs) { return hs->name[0] != '\0'; }

/* ---- /metrics ---- */

static void render_metrics(master_ctx *m, obuf *b, uint64_t now)
{
    const shm_table *t = &m->tbl;
    const shm_header *h = t->hdr;
    const shm_counters *c = &h->c;
    char extra[96];

    help(b, "scatter_tasks_submitted_total", "counter", "Tasks accepted into the pool.");
    ob_printf(b, "scatter_tasks_submitted_total %llu\n", (unsigned long long)atomic_load(&c->submitted));
    help(b, "scatter_tasks_total", "counter", "Tasks that ended, by outcome.");
    ob_printf(b, "scatter_tasks_total{outcome=\"completed\"} %llu\n", (unsigned long long)atomic_load(&c->completed));
    ob_printf(b, "scatter_tasks_total{outcome=\"failed\"} %llu\n", (unsigned long long)atomic_load(&c->failed));
    ob_printf(b, "scatter_tasks_total{outcome=\"cancelled\"} %llu\n",
              (unsigned long long)atomic_load(&c->cancelled_tasks));
    help(b, "scatter_task_errors_total", "counter", "Accepted tasks that ended with an error, by error code.");
    for (int e = 1; e < ERR_COUNT; e++)
        ob_printf(b, "scatter_task_errors_total{code=\"%s\"} %llu\n", err_code((scatter_err)e),
                  (unsigned long long)atomic_load(&c->task_errors[e]));
    help(b, "scatter_submissions_refused_total", "counter",
         "Submissions refused before a task existed (never in the pool), by error code.");
    for (int e = 1; e < ERR_COUNT; e++)
        ob_printf(b, "scatter_submissions_refused_total{code=\"%s\"} %llu\n", err_code((scatter_err)e),
                  (unsigned long long)atomic_load(&c->refused[e]));
    help(b, "scatter_tasks_pending", "gauge", "Tasks accepted and not yet answered (the pool in use).");
    ob_printf(b, "scatter_tasks_pending %llu\n", (unsigned long long)u64_of(atomic_load(&c->pending)));
    help(b, "scatter_pool_capacity", "gauge", "pool_capacity: tasks pending at once across all workers.");
    ob_printf(b, "scatter_pool_capacity %u\n", m->cfg->pool_capacity);
    help(b, "scatter_attempts_inflight", "gauge", "Attempts in libcurl now (all workers).");
    ob_printf(b, "scatter_attempts_inflight %llu\n", (unsigned long long)u64_of(atomic_load(&c->inflight)));
    help(b, "scatter_attempts_inflight_max", "gauge", "max_inflight: attempts in flight at once across all workers.");
    ob_printf(b, "scatter_attempts_inflight_max %u\n", m->cfg->max_inflight);

    static const struct {
        const char *name, *text;
        size_t off;
    } CTR[] = {
        {"scatter_attempts_total", "Attempts started.", offsetof(shm_counters, attempts)},
        {"scatter_attempts_failed_total", "Attempts that failed.", offsetof(shm_counters, attempts_failed)},
        {"scatter_attempts_cancelled_total", "Attempts cancelled (race losers, tasks that ended).",
         offsetof(shm_counters, attempts_cancelled)},
        {"scatter_straggler_hedges_total", "Attempts added to a round because it straggled.",
         offsetof(shm_counters, straggler_hedges)},
        {"scatter_stall_delayed_total", "Tasks parked until a proxy slot freed.", offsetof(shm_counters, delayed)},
        {"scatter_stall_requeued_total", "Rounds that failed and went back to the queue.",
         offsetof(shm_counters, requeued)},
        {"scatter_stall_dispatches_total", "Dispatch passes.", offsetof(shm_counters, dispatches)},
        {"scatter_stall_zero_avail_total", "Dispatches that found no healthy proxy for the host.",
         offsetof(shm_counters, zero_avail)},
        {"scatter_stall_skip_ratelimit_total", "Proxy claims missed: the pair's rate-limit word was not free.",
         offsetof(shm_counters, skip_ratelimit)},
        {"scatter_stall_skip_cooldown_total", "Proxy claims missed: the pair was cooling down.",
         offsetof(shm_counters, skip_cooldown)},
        {"scatter_stall_skip_inflight_total", "Dispatches put off: max_inflight reached.",
         offsetof(shm_counters, skip_inflight)},
        {"scatter_select_calls_total", "Proxy selections (select_claim calls) of the workers.",
         offsetof(shm_counters, selects)},
    };
    for (size_t i = 0; i < sizeof CTR / sizeof CTR[0]; i++) {
        help(b, CTR[i].name, "counter", CTR[i].text);
        const _Atomic uint64_t *v = (const _Atomic uint64_t *)((const char *)c + CTR[i].off);
        ob_printf(b, "%s %llu\n", CTR[i].name, (unsigned long long)atomic_load(v));
    }
    help(b, "scatter_select_seconds_total", "counter", "Time the workers spent in proxy selection.");
    ob_printf(b, "scatter_select_seconds_total %.6f\n", (double)atomic_load(&c->select_ns) / 1e9);

    pool_counts pc;
    metrics_proxy_counts(t, now, &pc);
    help(b, "scatter_proxies", "gauge", "Proxies by state over all hosts (cooling: cooling or dead for every host).");
    ob_printf(b, "scatter_proxies{state=\"healthy\"} %u\nscatter_proxies{state=\"cooling\"} %u\n"
                 "scatter_proxies{state=\"dead\"} %u\n", pc.healthy, pc.cooling, pc.dead);

    uint32_t nh = atomic_load(&h->n_hosts);
    static const char *const STATES[3] = {"closed", "open", "half_open"};
    help(b, "scatter_host_successes_total", "counter", "Successful attempts, per target host.");
    for (uint32_t i = 0; i < nh; i++)
        if (host_live(&t->hosts[i]))
            host_sample(b, "scatter_host_successes_total", t->hosts[i].name, NULL, atomic_load(&t->hosts[i].success));
    help(b, "scatter_host_proxy_failures_total", "counter",
         "Attempts failed by the proxy (down, unreachable, blocked), per target host.");
    for (uint32_t i = 0; i < nh; i++)
        if (host_live(&t->hosts[i]))
            host_sample(b, "scatter_host_proxy_failures_total", t->hosts[i].name, NULL, atomic_load(&t->hosts[i].fail));
    help(b, "scatter_host_target_errors_total", "counter",
         "Attempts failed by the target (target error status, unreachable), per target host.");
    for (uint32_t i = 0; i < nh; i++)
        if (host_live(&t->hosts[i]))
            host_sample(b, "scatter_host_target_errors_total", t->hosts[i].name, NULL,
                        atomic_load(&t->hosts[i].target_errors));
    help(b, "scatter_host_circuit_state", "gauge", "The host's circuit breaker: 1 for its current state, else 0.");
    for (uint32_t i = 0; i < nh; i++) {
        if (!host_live(&t->hosts[i]))
            continue;
        uint32_t st = atomic_load(&t->hosts[i].circuit);
        for (uint32_t s = 0; s < 3; s++) {
            snprintf(extra, sizeof extra, "state=\"%s\"", STATES[s]);
            host_sample(b, "scatter_host_circuit_state", t->hosts[i].name, extra, st == s);
        }
    }
    help(b, "scatter_host_proxies", "gauge", "Proxies by state for one target host.");
    for (uint32_t i = 0; i < nh; i++) {
        if (!host_live(&t->hosts[i]))
            continue;
        metrics_host_counts(t, i, now, &pc);
        host_sample(b, "scatter_host_proxies", t->hosts[i].name, "state=\"healthy\"", pc.healthy);
        host_sample(b, "scatter_host_proxies", t->hosts[i].name, "state=\"cooling\"", pc.cooling);
        host_sample(b, "scatter_host_proxies", t->hosts[i].name, "state=\"dead\"", pc.dead);
    }

    histogram(b, "scatter_task_duration_seconds",
              "Task latency, submission to answer (every task that ended, cancelled ones excepted).",
              &c->task_latency);
    histogram(b, "scatter_attempt_duration_seconds", "Attempt latency, start to end (every attempt that ended).",
              &c->attempt_latency);

    help(b, "scatter_clients", "gauge", "Front-end client connections per worker and protocol.");
    uint32_t nw = m->n_workers;
    for (uint32_t w = 0; w < nw && w < SHM_MAX_WORKERS; w++) {
        ob_printf(b, "scatter_clients{worker=\"%u\",protocol=\"msgpack\"} %u\n", w + 1,
                  atomic_load(&h->workers[w].clients_msgpack));
        ob_printf(b, "scatter_clients{worker=\"%u\",protocol=\"http\"} %u\n", w + 1,
                  atomic_load(&h->workers[w].clients_http));
    }
    help(b, "scatter_tunnels", "gauge", "CONNECT tunnels open per worker.");
    for (uint32_t w = 0; w < nw && w < SHM_MAX_WORKERS; w++)
        ob_printf(b, "scatter_tunnels{worker=\"%u\"} %u\n", w + 1, atomic_load(&h->workers[w].tunnels));
    help(b, "scatter_worker_restarts_total", "counter", "Times the master restarted this worker.");
    for (uint32_t w = 0; w < nw && w < SHM_MAX_WORKERS; w++)
        ob_printf(b, "scatter_worker_restarts_total{worker=\"%u\"} %u\n", w + 1, atomic_load(&h->workers[w].restarts));
    help(b, "scatter_shard", "gauge", "This instance's shard of the proxies (shard = K/N; docs/SCALING.md).");
    ob_printf(b, "scatter_shard{k=\"%u\",n=\"%u\"} 1\n", atomic_load(&h->shard_k), atomic_load(&h->shard_n));
    help(b, "scatter_shard_dropped_proxies", "gauge", "Proxies of the sources outside this instance's shard.");
    ob_printf(b, "scatter_shard_dropped_proxies %llu\n", (unsigned long long)atomic_load(&h->shard_dropped));
    help(b, "scatter_redis_connected", "gauge", "1 while the worker is connected to the Redis task stream.");
    for (uint32_t w = 0; w < nw && w < SHM_MAX_WORKERS; w++)
        ob_printf(b, "scatter_redis_connected{worker=\"%u\"} %u\n", w + 1, atomic_load(&h->workers[w].redis_up));
    help(b, "scatter_redis_entries_total", "counter",
         "Redis stream entries by what happened: read, claimed (from other consumers), answered, left_pending, "
         "dead_letter.");
    ob_printf(b, "scatter_redis_entries_total{event=\"read\"} %llu\n", (unsigned long long)atomic_load(&c->redis_read));
    ob_printf(b, "scatter_redis_entries_total{event=\"claimed\"} %llu\n",
              (unsigned long long)atomic_load(&c->redis_claimed));
    ob_printf(b, "scatter_redis_entries_total{event=\"answered\"} %llu\n",
              (unsigned long long)atomic_load(&c->redis_answered));
    ob_printf(b, "scatter_redis_entries_total{event=\"left_pending\"} %llu\n",
              (unsigned long long)atomic_load(&c->redis_left));
    ob_printf(b, "scatter_redis_entries_total{event=\"dead_letter\"} %llu\n",
              (unsigned long long)atomic_load(&c->redis_dead));
    help(b, "scatter_uptime_seconds", "gauge", "Seconds since the daemon started.");
    ob_printf(b, "scatter_uptime_seconds %llu\n", (unsigned long long)((now - atomic_load(&h->started_ms)) / 1000));
}

/* ---- /health and /proxy-metrics ---- */

static json_t *host_json(const shm_table *t, uint32_t i, uint64_t now, pool_counts *pc)
{
    const shm_host *hs = &t->hosts[i];
    metrics_host_counts(t, i, now, pc);
    return json_pack("{s:s, s:s, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:I}", "name", hs->name, "circuit",
                     metrics_circuit_name(atomic_load(&hs->circuit)), "proxies", "healthy", (json_int_t)pc->healthy,
                     "cooling", (json_int_t)pc->cooling, "dead", (json_int_t)pc->dead, "successes",
                     (json_int_t)atomic_load(&hs->success), "proxy_failures", (json_int_t)atomic_load(&hs->fail),
                     "target_errors", (json_int_t)atomic_load(&hs->target_errors), "consecutive_failures",
                     (json_int_t)atomic_load(&hs->target_err_run));
}

/* The status and its reasons; the rules are docs/HTTP.md's. Returns the HTTP status. */
static int render_health(master_ctx *m, obuf *b, uint64_t now)
{
    const shm_table *t = &m->tbl;
    json_t *reasons = json_array(), *hosts = json_array();
    uint32_t nh = atomic_load(&t->hdr->n_hosts), live = 0, not_closed = 0, with_healthy = 0;
    char why[512];
    for (uint32_t i = 0; i < nh; i++) {
        if (!host_live(&t->hosts[i]))
            continue;
        pool_counts pc;
        json_t *hj = host_json(t, i, now, &pc);
        json_array_append_new(hosts, hj);
        live++;
        uint32_t st = atomic_load(&t->hosts[i].circuit);
        not_closed += st != CIRCUIT_CLOSED;
        with_healthy += pc.healthy > 0;
        if (st != CIRCUIT_CLOSED) {
            snprintf(why, sizeof why, "circuit %s for host %s", metrics_circuit_name(st), t->hosts[i].name);
            json_array_append_new(reasons, json_string(why));
        }
    }
    pool_counts all;
    metrics_proxy_counts(t, now, &all);
    int unhealthy = 0, degraded = 0;
    if (live ? with_healthy == 0 : all.healthy == 0) {
        unhealthy = 1;
        json_array_append_new(reasons, json_string(live ? "no healthy proxy for any host" : "no healthy proxy"));
    }
    /* half-open counts as open: the host serves nothing but its one probe until it closes */
    if (live && not_closed == live) {
        unhealthy = 1;
        json_array_append_new(reasons, json_string("every host's circuit is open (or half-open, waiting for a probe)"));
    }
    degraded = not_closed > 0;
    uint64_t done, ok;
    metrics_tp_window(t, now, 60, &done, &ok);
    json_t *rate = done ? json_real((double)ok / (double)done) : json_null();
    uint32_t thr = m->cfg->health_degraded_rate;
    if (done >= MGMT_HEALTH_MIN_TASKS && ok * 1000 < (uint64_t)thr * done) {
        degraded = 1;
        snprintf(why, sizeof why, "success rate %.3f over the last minute is below health_degraded_rate %.3f",
                 (double)ok / (double)done, thr / 1000.0);
        json_array_append_new(reasons, json_string(why));
    }
    const char *status = unhealthy ? "unhealthy" : degraded ? "degraded" : "healthy";
    json_t *root = json_pack("{s:s, s:o, s:o, s:I, s:f, s:{s:I, s:I, s:I}, s:o}", "status", status, "reasons", reasons,
                             "success_rate_1m", rate, "tasks_1m", (json_int_t)done, "degraded_below",
                             thr / 1000.0, "proxies", "healthy", (json_int_t)all.healthy, "cooling",
                             (json_int_t)all.cooling, "dead", (json_int_t)all.dead, "hosts", hosts);
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    if (s)
        ob_printf(b, "%s\n", s);
    else
        b->oom = 1;
    free(s);
    json_decref(root);
    return unhealthy ? 503 : 200;
}

static void render_proxy_metrics(master_ctx *m, obuf *b, uint64_t now)
{
    const shm_table *t = &m->tbl;
    const shm_counters *c = &t->hdr->c;
    uint64_t refused = 0;
    for (int e = 1; e < ERR_COUNT; e++)
        refused += atomic_load(&c->refused[e]);
    uint64_t submitted = atomic_load(&c->submitted), completed = atomic_load(&c->completed);
    uint64_t failed = atomic_load(&c->failed);
    uint64_t pending = u64_of(atomic_load(&c->pending)), cap = m->cfg->pool_capacity;
    uint64_t ln = atomic_load(&c->latency_n);
    json_t *hosts = json_array();
    uint32_t nh = atomic_load(&t->hdr->n_hosts), max_run = 0;
    int open = 0;
    for (uint32_t i = 0; i < nh; i++) {
        if (!host_live(&t->hosts[i]))
            continue;
        pool_counts pc;
        json_array_append_new(hosts, host_json(t, i, now, &pc));
        open |= atomic_load(&t->hosts[i].circuit) == CIRCUIT_OPEN;
        uint32_t run = atomic_load(&t->hosts[i].target_err_run);
        max_run = run > max_run ? run : max_run;
    }
    json_t *stalls = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "delayed", (json_int_t)atomic_load(&c->delayed),
                               "requeued", (json_int_t)atomic_load(&c->requeued), "dispatches",
                               (json_int_t)atomic_load(&c->dispatches), "zero_avail",
                               (json_int_t)atomic_load(&c->zero_avail), "skip_ratelimit",
                               (json_int_t)atomic_load(&c->skip_ratelimit), "skip_cooldown",
                               (json_int_t)atomic_load(&c->skip_cooldown), "skip_inflight",
                               (json_int_t)atomic_load(&c->skip_inflight), "selects",
                               (json_int_t)atomic_load(&c->selects), "select_ns",
                               (json_int_t)atomic_load(&c->select_ns));
    json_t *root = json_object();
    json_object_set_new(root, "total_requests", json_integer((json_int_t)(submitted + refused)));
    json_object_set_new(root, "successful_requests", json_integer((json_int_t)completed));
    json_object_set_new(root, "failed_requests", json_integer((json_int_t)(failed + refused)));
    json_object_set_new(root, "timeout_requests", json_integer((json_int_t)atomic_load(&c->task_errors[ERR_TIMEOUT])));
    json_object_set_new(root, "cancelled_requests", json_integer((json_int_t)atomic_load(&c->cancelled_tasks)));
    json_object_set_new(root, "active_requests", json_integer((json_int_t)u64_of(atomic_load(&c->inflight))));
    json_object_set_new(root, "queue_rejected", json_integer((json_int_t)(atomic_load(&c->refused[ERR_POOL_FULL]) +
                                                                         atomic_load(&c->refused[ERR_CIRCUIT_OPEN]))));
    json_object_set_new(root, "success_rate",
                        completed + failed ? json_real((double)completed / (double)(completed + failed)) : json_null());
    json_object_set_new(root, "avg_response_time",
                        json_real(ln ? (double)atomic_load(&c->latency_sum_ms) / (double)ln : 0.0));
    json_object_set_new(root, "circuit_open", json_boolean(open));
    json_object_set_new(root, "consecutive_failures", json_integer(max_run));
    json_object_set_new(root, "queue_size", json_integer((json_int_t)pending));
    json_object_set_new(root, "available_slots", json_integer((json_int_t)(pending < cap ? cap - pending : 0)));
    json_object_set_new(root, "pool_capacity", json_integer((json_int_t)cap));
    json_object_set_new(root, "attempts", json_integer((json_int_t)atomic_load(&c->attempts)));
    json_object_set_new(root, "hosts", hosts);
    json_object_set_new(root, "stalls", stalls);
    char *s = json_dumps(root, JSON_COMPACT);
    if (s)
        ob_printf(b, "%s\n", s);
    else
        b->oom = 1;
    free(s);
    json_decref(root);
}

/* ---- one client ---- */

static void client_close(mgmt_client *c)
{
    mgmt_state *s = c->s;
    ev_io_stop(s->m->loop, &c->rio);
    ev_io_stop(s->m->loop, &c->wio);
    ev_timer_stop(s->m->loop, &c->tmo);
    /* shutdown, not just close: a worker forked while this client was connected holds a copy
     * of the descriptor, and the client must still see the end of the answer */
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
    c->fd = -1;
    free(c->out.p);
    c->out = (obuf){0};
}

static void write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    mgmt_client *c = io->data;
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!ev_is_active(&c->wio))
                ev_io_start(loop, &c->wio);
            return;
        }
        break; /* the client went away */
    }
    client_close(c);
}

static void respond(mgmt_client *c, int status, const char *ctype, const char *extra_hdr, const obuf *body, int head)
{
    static const struct {
        int code;
        const char *text;
    } T[] = {{200, "OK"}, {400, "Bad Request"}, {401, "Unauthorized"}, {404, "Not Found"},
             {405, "Method Not Allowed"}, {408, "Request Timeout"}, {431, "Request Header Fields Too Large"},
             {500, "Internal Server Error"}, {503, "Service Unavailable"}};
    const char *text = "Error";
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (T[i].code == status)
            text = T[i].text;
    ev_io_stop(c->s->m->loop, &c->rio);
    obuf *o = &c->out;
    ob_printf(o, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                 "Connection: close\r\n%s\r\n", status, text, ctype, body->len, extra_hdr ? extra_hdr : "");
    if (!head && body->len)
        ob_printf(o, "%.*s", (int)body->len, body->p);
    if (o->oom) {
        client_close(c);
        return;
    }
    ev_timer_stop(c->s->m->loop, &c->tmo);
    ev_timer_set(&c->tmo, MGMT_WRITE_TIMEOUT_S, 0.);
    ev_timer_start(c->s->m->loop, &c->tmo);
    write_cb(c->s->m->loop, &c->wio, EV_WRITE);
}

static void respond_text(mgmt_client *c, int status, const char *extra_hdr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void respond_text(mgmt_client *c, int status, const char *extra_hdr, const char *fmt, ...)
{
    obuf b = {0};
    va_list ap;
    va_start(ap, fmt);
    ob_vprintf(&b, fmt, ap);
    va_end(ap);
    respond(c, status, "text/plain; charset=utf-8", extra_hdr, &b, 0);
    free(b.p);
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Authorization: Basic base64(http_auth), compared as encoded text without an early exit. */
static int authorized(const mgmt_client *c, const char *cred)
{
    if (!cred[0])
        return 1;
    char want[MGMT_AUTH_MAX];
    size_t n = strlen(cred), o = 0;
    for (size_t i = 0; i < n && o + 4 < sizeof want; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)cred[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)cred[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)cred[i + 2];
        want[o++] = B64[(v >> 18) & 63];
        want[o++] = B64[(v >> 12) & 63];
        want[o++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        want[o++] = i + 2 < n ? B64[v & 63] : '=';
    }
    want[o] = '\0';
    const char *a = c->auth;
    while (*a == ' ' || *a == '\t')
        a++;
    if (strncasecmp(a, "Basic ", 6) != 0)
        return 0;
    a += 6;
    while (*a == ' ')
        a++;
    size_t al = strlen(a);
    while (al && (a[al - 1] == ' ' || a[al - 1] == '\t'))
        al--;
    if (al != o)
        return 0;
    unsigned diff = 0;
    for (size_t i = 0; i < o; i++)
        diff |= (unsigned char)(a[i] ^ want[i]);
    return diff == 0;
}

static void answer(mgmt_client *c)
{
    master_ctx *m = c->s->m;
    if (c->url_long) {
        respond_text(c, 404, NULL, "scatter: no such endpoint (try /metrics, /health, /proxy-metrics)\n");
        return;
    }
    if (!authorized(c, m->cfg->http_auth)) {
        respond_text(c, 401, "WWW-Authenticate: Basic realm=\"scatter\"\r\n",
                     "scatter: authentication required (the user:password of http_auth)\n");
        return;
    }
    size_t plen = strcspn(c->url, "?#");
    char path[MGMT_URL_MAX];
    snprintf(path, sizeof path, "%.*s", (int)plen, c->url);
    int known = !strcmp(path, "/metrics") || !strcmp(path, "/health") || !strcmp(path, "/proxy-metrics");
    if (!known) {
        respond_text(c, 404, NULL, "scatter: no such endpoint '%.100s' (try /metrics, /health, /proxy-metrics)\n", path);
        return;
    }
    int head = c->p.method == HTTP_HEAD;
    if (c->p.method != HTTP_GET && !head) {
        respond_text(c, 405, "Allow: GET, HEAD\r\n", "scatter: %s is read with GET\n", path);
        return;
    }
    obuf b = {0};
    uint64_t now = shm_now_ms();
    int status = 200;
    const char *ctype = "application/json";
    if (!strcmp(path, "/metrics")) {
        render_metrics(m, &b, now);
        ctype = "text/plain; version=0.0.4; charset=utf-8";
    } else if (!strcmp(path, "/health")) {
        status = render_health(m, &b, now);
    } else {
        render_proxy_metrics(m, &b, now);
    }
    if (b.oom) {
        LOGW(&m->log, "metrics_listen: out of memory building %s", path);
        free(b.p);
        respond_text(c, 500, NULL, "scatter: out of memory\n");
        return;
    }
    respond(c, status, ctype, NULL, &b, head);
    free(b.p);
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    mgmt_client *c = p->data;
    if (c->url_len + n >= sizeof c->url) {
        c->url_long = 1;
        return 0;
    }
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    mgmt_client *c = p->data;
    if (c->in_value) {
        c->in_value = 0;
        c->field_len = 0;
    }
    for (size_t i = 0; i < n; i++)
        if (c->field_len < sizeof c->field - 1)
            c->field[c->field_len++] = at[i];
        else
            c->field_len = sizeof c->field; /* too long to be Authorization */
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    mgmt_client *c = p->data;
    c->in_value = 1;
    if (c->field_len == 13 && strncasecmp(c->field, "authorization", 13) == 0) {
        size_t room = sizeof c->auth - 1 - c->auth_len;
        size_t k = n < room ? n : room;
        memcpy(c->auth + c->auth_len, at, k);
        c->auth_len += k;
        c->auth[c->auth_len] = '\0';
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    mgmt_client *c = p->data;
    c->done = 1;
    http_parser_pause(p, 1); /* one request per connection: whatever follows is not read */
    return 0;
}

static const http_parser_settings SETTINGS = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_message_complete = on_message_complete,
};

static void read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    mgmt_client *c = io->data;
    char buf[2048];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        client_close(c);
        return;
    }
    c->got += (size_t)n;
    size_t used = http_parser_execute(&c->p, &SETTINGS, buf, (size_t)n);
    if (c->done) {
        answer(c);
        return;
    }
    if (HTTP_PARSER_ERRNO(&c->p) != HPE_OK || used != (size_t)n) {
        respond_text(c, 400, NULL, "scatter: malformed request (%s)\n", http_errno_name(HTTP_PARSER_ERRNO(&c->p)));
        return;
    }
    if (c->got > MGMT_REQ_MAX)
        respond_text(c, 431, NULL, "scatter: request larger than %d bytes\n", MGMT_REQ_MAX);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    mgmt_client *c = tw->data;
    if (c->out.len) { /* still writing: the reader is too slow */
        client_close(c);
        return;
    }
    respond_text(c, 408, NULL, "scatter: request not complete within %g s\n", MGMT_READ_TIMEOUT_S);
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    mgmt_state *s = io->data;
    for (int k = 0; k < MGMT_MAX_CLIENTS * 2; k++) {
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        mgmt_client *c = NULL;
        for (int i = 0; i < MGMT_MAX_CLIENTS && !c; i++)
            if (s->c[i].fd < 0)
                c = &s->c[i];
        if (!c) {
            static const char BUSY[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                       "Content-Length: 32\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
                                       "scatter: too many metrics clients\n";
            ssize_t w = send(fd, BUSY, sizeof BUSY - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w; /* best effort on a fresh socket; the close says the rest */
            close(fd);
            continue;
        }
        memset(c, 0, sizeof *c);
        c->s = s;
        c->fd = fd;
        http_parser_init(&c->p, HTTP_REQUEST);
        c->p.data = c;
        ev_io_init(&c->rio, read_cb, fd, EV_READ);
        ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
        c->rio.data = c->wio.data = c;
        ev_timer_init(&c->tmo, timeout_cb, MGMT_READ_TIMEOUT_S, 0.);
        c->tmo.data = c;
        ev_io_start(loop, &c->rio);
        ev_timer_start(loop, &c->tmo);
    }
}

/* ---- the listener ---- */

int mgmt_start(master_ctx *m)
{
    const char *addr = m->cfg->metrics_listen;
    if (!addr[0])
        return 0;
    struct sockaddr_storage ss;
    unsigned len;
    char err[256];
    if (listen_addr_parse(addr, &ss, &len, err, sizeof err)) {
        LOGE(&m->log, "metrics_listen %s", err);
        return -EINVAL;
    }
    mgmt_state *s = calloc(1, sizeof *s);
    if (!s) {
        LOGE(&m->log, "metrics_listen: out of memory");
        return -ENOMEM;
    }
    /* no SO_REUSEPORT: a second daemon on the same address must fail here rather than take
     * half of the scrapes and answer with its own numbers */
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 64)) {
        int e = errno;
        LOGE(&m->log, "metrics_listen '%s': %s (set metrics_listen = \"\" to run without the management endpoints)",
             addr, strerror(e));
        if (fd >= 0)
            close(fd);
        free(s);
        return -e;
    }
    s->m = m;
    s->fd = fd;
    for (int i = 0; i < MGMT_MAX_CLIENTS; i++)
        s->c[i].fd = -1;
    ev_io_init(&s->accept_w, accept_cb, fd, EV_READ);
    s->accept_w.data = s;
    ev_io_start(m->loop, &s->accept_w);
    m->mgmt = s;
    LOGI(&m->log, "management endpoints on http://%s (/metrics, /health, /proxy-metrics)", addr);
    return 0;
}

void mgmt_stop(master_ctx *m)
{
    mgmt_state *s = m->mgmt;
    if (!s)
        return;
    for (int i = 0; i < MGMT_MAX_CLIENTS; i++)
        if (s->c[i].fd >= 0)
            client_close(&s->c[i]);
    ev_io_stop(m->loop, &s->accept_w);
    close(s->fd);
    free(s);
    m->mgmt = NULL;
}

void mgmt_close_inherited(master_ctx *m)
{
    mgmt_state *s = m->mgmt;
    if (!s)
        return;
    for (int i = 0; i < MGMT_MAX_CLIENTS; i++)
        if (s->c[i].fd >= 0)
            close(s->c[i].fd);
    close(s->fd);
}
