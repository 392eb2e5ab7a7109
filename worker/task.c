/*
 * A task's life on this worker (docs/ARCHITECTURE.md, "A task's life"): validate, admit
 * against the global pool, queue on its host, race, and end with exactly one reply: a
 * response, or an error with the last failure. The pool counter is global (shared table) so
 * capacity holds across workers.
 */
#include "shm/metrics.h"
#include "worker/task.h"

#include "common/headers.h"
#include "common/list.h"
#include "shm/proxy_addr.h"
#include "shm/registry.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Without a deadline, a task may lose this many times max_attempts rounds to proxy faults. */
#define PROXY_FAULT_ROUNDS 4

static void unlink_owner(task *t)
{
    task_owner *o = t->owner;
    o->ops->forget(o, t);
    LIST_UNLINK(o->tasks, t, prev_owned, next_owned);
    o->n_tasks--;
}

static void task_free(task *t)
{
    worker_ctx *w = t->w;
    ev_timer_stop(w->loop, &t->deadline_w);
    ev_timer_stop(w->loop, &t->hedge_w);
    unlink_owner(t);
    if (t->state == TASK_QUEUED)
        sched_unlink(t);
    free(t->url);
    free(t->body);
    curl_slist_free_all(t->headers);
    worker_host_live_add(t->host, -1);
    shm_pending_add(w->tbl, w->index, -1);
    w->n_tasks--;
    free(t);
}

static void release_probe(task *t, int success)
{
    if (!t->probe)
        return;
    t->probe = 0;
    shm_host *hs = &t->w->tbl->hosts[t->host->idx];
    atomic_store(&hs->last_probe_result, success ? 1u : 2u);
}

void task_finish_error(task *t, scatter_err e, const char *fmt, ...)
{
    worker_ctx *w = t->w;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    race_abort_all(t);
    release_probe(t, 0);
    uint64_t now = shm_now_ms();
    task_failure f = {.code = e, .message = msg, .host = t->host->name, .last_error = t->last_error,
                      .attempts = t->rounds, .elapsed_ms = (uint32_t)(now - t->submitted_ms)};
    t->owner->ops->deliver_failure(t->owner, t, &f);
    shm_counters *c = &w->tbl->hdr->c;
    if (e == ERR_CANCELLED) {
        atomic_fetch_add(&c->cancelled_tasks, 1);
    } else {
        atomic_fetch_add(&c->failed, 1);
        metrics_tp_record(w->tbl, now, 0);
        shm_hist_record(&c->task_latency, now - t->submitted_ms);
    }
    atomic_fetch_add(&c->task_errors[e], 1);
    LOGD(&w->log, "task failed host=%s id=%llu error=%s attempts=%u last=\"%s\"", t->host->name,
         (unsigned long long)t->id, err_code(e), t->rounds, t->last_error);
    task_free(t);
    worker_need_dispatch(w);
}

void task_owner_cancel_all(task_owner *o, scatter_err e, const char *why)
{
    while (o->tasks)
        task_finish_error(o->tasks, e, "%s", why); /* unlinks itself */
}

void task_finish_success(task *t, attempt *a, long status, uint32_t latency_ms)
{
    worker_ctx *w = t->w;
    shm_table *tbl = w->tbl;
    uint64_t now = shm_now_ms();
    uint32_t elapsed = (uint32_t)(now - t->submitted_ms);
    char purl[600];
    paddr_format_redacted(&tbl->proxies[a->proxy].addr, purl, sizeof purl);
    task_result r = {.status = status, .headers = a->hdrs, .headers_len = a->hdrs ? a->hlen : 0,
                     .body = a->body ? a->body : "", .body_len = a->len, .proxy = purl,
                     .attempts = t->rounds, .race = t->race, .latency_ms = latency_ms, .elapsed_ms = elapsed};
    t->owner->ops->deliver_result(t->owner, t, &r);
    shm_counters *c = &tbl->hdr->c;
    atomic_fetch_add(&c->completed, 1);
    atomic_fetch_add(&c->latency_sum_ms, elapsed);
    atomic_fetch_add(&c->latency_n, 1);
    shm_hist_record(&c->task_latency, elapsed);
    metrics_tp_record(tbl, now, 1);
    LOGD(&w->log, "task done host=%s id=%llu race=%u winner=%s latency=%ums attempt %u/%u", t->host->name,
         (unsigned long long)t->id, t->race, purl, latency_ms, t->rounds, t->max_attempts);
    release_probe(t, 1);
    race_abort_all(t); /* the losers: cancelled, not failed */
    task_free(t);
    worker_need_dispatch(w);
}

void task_round_failed(task *t)
{
    worker_ctx *w = t->w;
    release_probe(t, 0);
    uint64_t now = shm_now_ms();
    if (t->round_answered)
        t->answered_rounds++;
    /* Only rounds the target answered count: a round lost to dead, flaky or blackholed
     * proxies says nothing about the task, and other proxies may serve it next.
     * Without a deadline, proxy-fault rounds are still bounded (PROXY_FAULT_ROUNDS each). */
    if (t->max_attempts && (t->answered_rounds >= t->max_attempts ||
                            (!t->deadline_ms && t->rounds >= t->max_attempts * PROXY_FAULT_ROUNDS))) {
        task_finish_error(t, ERR_MAX_ATTEMPTS, "all %u rounds failed (%u answered by the target)", t->rounds,
                          t->answered_rounds);
        return;
    }
    if (t->deadline_ms && now >= t->deadline_ms) {
        task_finish_error(t, ERR_TIMEOUT, "deadline passed after %u attempts", t->rounds);
        return;
    }
    atomic_fetch_add(&w->tbl->hdr->c.requeued, 1);
    LOGD(&w->log, "task requeued host=%s id=%llu round %u failed: %s", t->host->name, (unsigned long long)t->id,
         t->rounds, t->last_error);
    sched_enqueue(t); /* the tail: other tasks go first */
}

static void deadline_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    task *t = tw->data;
    task_finish_error(t, ERR_TIMEOUT, "deadline of %llu ms passed after %u attempts",
                      (unsigned long long)(t->deadline_ms - t->submitted_ms), t->rounds);
}

/* Host key "host[:port]" from a URL, lowercase; port only when the URL gives one. */
static int url_host_key(const char *url, char *key, size_t cap, char *err, size_t errcap)
{
    /* libcurl reads "http:///x" as host "x"; a URL without an authority is refused here */
    const char *sep = strstr(url, "://");
    if (!sep || sep[3] == '\0' || strchr("/?#@", sep[3])) {
        snprintf(err, errcap, "url has no host");
        return -1;
    }
    CURLU *u = curl_url();
    if (!u) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    int rc = -1;
    char *scheme = NULL, *host = NULL, *port = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        snprintf(err, errcap, "bad url: %s", curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(err, errcap, "url scheme must be http or https");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        snprintf(err, errcap, "url has no host");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
        port = NULL;
    int n = snprintf(key, cap, "%s%s%s", host, port ? ":" : "", port ? port : "");
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errcap, "url host too long");
        goto out;
    }
    for (char *p = key; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* Builds the header list libcurl sends: the client's end-to-end headers only (common/headers.h).
 * 0, or -1 with `err` naming the header that was refused. */
static int build_headers(const task_submission *r, const char *host_key, int https, struct curl_slist **out,
                         char *err, size_t errcap)
{
    /* the tokens of every Connection header name more hop-by-hop headers */
    const proto_str *conn_lists[PROTO_MAX_HEADERS];
    uint32_t n_lists = 0;
    for (uint32_t i = 0; i < r->n_headers; i++)
        if (hdr_classify(r->hname[i].p, r->hname[i].n) == HDR_HOP && r->hname[i].n == 10 &&
            strncasecmp(r->hname[i].p, "connection", 10) == 0)
            conn_lists[n_lists++] = &r->hval[i];
    struct curl_slist *list = NULL;
    for (uint32_t i = 0; i < r->n_headers; i++) {
        const proto_str *nm = &r->hname[i], *vl = &r->hval[i];
        hdr_kind k = hdr_classify(nm->p, nm->n);
        if (k == HDR_HOST && !hdr_host_matches(vl->p, vl->n, host_key, https ? 443 : 80)) {
            snprintf(err, errcap, "header 'Host: %.*s' disagrees with the url's host '%s'", (int)(vl->n < 64 ? vl->n : 64),
                     vl->p, host_key);
            goto fail;
        }
        if (k != HDR_PASS)
            continue; /* framing, hop-by-hop, or a Host libcurl writes itself */
        int listed = 0;
        for (uint32_t j = 0; j < n_lists && !listed; j++)
            listed = hdr_in_connection_list(conn_lists[j]->p, conn_lists[j]->n, nm->p, nm->n);
        if (listed)
            continue;
        char line[8192];
        /* libcurl reads "Name:" with nothing after it as "remove this header"; "Name;" sends it empty */
        int n = vl->n ? snprintf(line, sizeof line, "%.*s: %.*s", (int)nm->n, nm->p, (int)vl->n, vl->p)
                      : snprintf(line, sizeof line, "%.*s;", (int)nm->n, nm->p);
        if (n < 0 || (size_t)n >= sizeof line) {
            snprintf(err, errcap, "header '%.*s' is longer than %zu bytes", (int)(nm->n < 64 ? nm->n : 64), nm->p,
                     sizeof line - 1);
            goto fail;
        }
        struct curl_slist *nl = curl_slist_append(list, line);
        if (!nl) {
            snprintf(err, errcap, "out of memory");
            goto fail;
        }
        list = nl;
    }
    *out = list;
    return 0;
fail:
    curl_slist_free_all(list);
    return -1;
}

/* Everything about the request that needs no copy and no host: checked before the host is
 * registered, so that a refused request does not take one of the table's max_hosts slots. */
static scatter_err check_submission(const worker_ctx *w, const task_submission *r, char *err, size_t errcap)
{
    if (w->stopping || atomic_load(&w->tbl->hdr->shutting_down)) {
        snprintf(err, errcap, "the daemon is shutting down");
        return ERR_SHUTTING_DOWN;
    }
    if (r->url.n > w->cfg->max_url) {
        snprintf(err, errcap, "url of %u bytes exceeds max_url %u", r->url.n, w->cfg->max_url);
        return ERR_TOO_LARGE;
    }
    if (r->body.n > w->cfg->max_request_body) {
        snprintf(err, errcap, "body of %u bytes exceeds max_request_body %u", r->body.n, w->cfg->max_request_body);
        return ERR_TOO_LARGE;
    }
    if (memchr(r->url.p, '\0', r->url.n)) {
        snprintf(err, errcap, "url contains a NUL byte");
        return ERR_BAD_REQUEST;
    }
    if (r->method.n == 0 || r->method.n >= sizeof(((task *)0)->method)) {
        snprintf(err, errcap, "method must be 1 to %zu letters", sizeof(((task *)0)->method) - 1);
        return ERR_BAD_REQUEST;
    }
    for (uint32_t i = 0; i < r->method.n; i++)
        if (r->method.p[i] < 'A' || r->method.p[i] > 'Z') {
            snprintf(err, errcap, "method must be upper-case letters");
            return ERR_BAD_REQUEST;
        }
    if (r->session.n >= SESS_NAME_MAX) {
        snprintf(err, errcap, "session name of %u bytes is longer than the limit of %d bytes", r->session.n,
                 SESS_NAME_MAX - 1);
        return ERR_BAD_REQUEST;
    }
    if (r->session.n && memchr(r->session.p, '\0', r->session.n)) {
        snprintf(err, errcap, "session name contains a NUL byte");
        return ERR_BAD_REQUEST;
    }
    return ERR_OK;
}

/* The task's own copies of what the submission points at (valid only during the call), and
 * the host key of its url. On a refusal the caller frees whatever was set. */
static scatter_err copy_submission(const task_submission *r, char *key, size_t keycap, char **url, char **body,
                              struct curl_slist **headers, char *err, size_t errcap)
{
    *url = strndup(r->url.p, r->url.n);
    if (!*url) {
        snprintf(err, errcap, "out of memory");
        return ERR_INTERNAL;
    }
    if (url_host_key(*url, key, keycap, err, errcap))
        return ERR_BAD_REQUEST;
    if (build_headers(r, key, strncmp(*url, "https:", 6) == 0, headers, err, errcap))
        return ERR_BAD_REQUEST;
    if (r->body.n) {
        *body = malloc(r->body.n);
        if (!*body) {
            snprintf(err, errcap, "out of memory");
            return ERR_INTERNAL;
        }
        memcpy(*body, r->body.p, r->body.n);
    }
    return ERR_OK;
}

static void admission_undo(worker_ctx *w, host_rt *h)
{
    shm_pending_add(w->tbl, w->index, -1);
    worker_host_live_add(h, -1);
}

/* Registers the host (or finds it) and takes a place in the pool. On ERR_OK *h counts the
 * task as live (a reclaim cannot take its slot) and pending counts it; on a refusal neither. */
static scatter_err admit(worker_ctx *w, const char *key, host_rt **h, char *err, size_t errcap)
{
    shm_table *tbl = w->tbl;
    int rc = worker_host_acquire(w, key, h);
    if (rc == -ENOSPC) {
        snprintf(err, errcap,
                 "cannot register host '%s': all max_hosts = %u host slots are in use; idle hosts are "
                 "reclaimed after %u s (%u s if they ever answered), or raise max_hosts",
                 key, tbl->hdr->max_hosts, HOST_RECLAIM_IDLE_MS / 1000, HOST_RECLAIM_IDLE_SUCCESS_MS / 1000);
        return ERR_BAD_REQUEST;
    }
    if (rc < 0) {
        snprintf(err, errcap, rc == -ENOMEM ? "out of memory" : "cannot register host '%s': bad host name", key);
        return rc == -ENOMEM ? ERR_INTERNAL : ERR_BAD_REQUEST;
    }
    if (atomic_load(&tbl->hosts[(*h)->idx].circuit) == CIRCUIT_OPEN) {
        snprintf(err, errcap, "circuit open for host '%s': no proxy can serve it now", key);
        worker_host_live_add(*h, -1);
        return ERR_CIRCUIT_OPEN;
    }
    shm_pending_add(tbl, w->index, 1);
    if (atomic_load(&tbl->hdr->c.pending) > (int64_t)w->cfg->pool_capacity) {
        snprintf(err, errcap, "pool at capacity (%u tasks)", w->cfg->pool_capacity);
        admission_undo(w, *h);
        return ERR_POOL_FULL;
    }
    return ERR_OK;
}

/* A session task finds or makes its session's entry now, so that a table full of live
 * sessions refuses the task instead of failing it later; the proxy is pinned at dispatch. */
static scatter_err session_admit(worker_ctx *w, const task_submission *r, host_rt *h, char *err, size_t errcap)
{
    sess_table *s = w->tbl->sess;
    if (!r->session.n || !s)
        return ERR_OK;
    char name[SESS_NAME_MAX];
    snprintf(name, sizeof name, "%.*s", (int)r->session.n, r->session.p);
    uint32_t pin;
    if (sess_touch(s, name, h->idx, shm_now_ms(), w->cfg->session_ttl_ms, &pin) == 0)
        return ERR_OK;
    snprintf(err, errcap,
             "session table full: all max_sessions = %u (session, host) entries were used within the last "
             "session_ttl = %u ms",
             sess_capacity(s), w->cfg->session_ttl_ms);
    admission_undo(w, h);
    return ERR_POOL_FULL;
}

/* An admitted task joins its owner's list and the host's queue, with its deadline running. */
static void task_start(task *t, const task_submission *r)
{
    worker_ctx *w = t->w;
    host_rt *h = t->host;
    LIST_PUSH(t->owner->tasks, t, prev_owned, next_owned);
    t->owner->n_tasks++;
    w->n_tasks++;
    t->submitted_ms = shm_now_ms();
    atomic_store(&w->tbl->hosts[h->idx].last_task_ms, t->submitted_ms);
    t->max_attempts = r->has_max_attempts ? r->max_attempts : h->cfg->max_attempts;
    t->race_width = r->has_race_width ? r->race_width : 0;
    uint32_t tmo = r->has_timeout ? r->timeout_ms : h->cfg->task_timeout_ms;
    ev_init(&t->hedge_w, sched_hedge_cb);
    t->hedge_w.data = t;
    ev_init(&t->deadline_w, deadline_cb);
    t->deadline_w.data = t;
    if (tmo) {
        t->deadline_ms = t->submitted_ms + tmo;
        ev_timer_set(&t->deadline_w, tmo / 1000.0, 0.);
        ev_timer_start(w->loop, &t->deadline_w);
    }
    atomic_fetch_add(&w->tbl->hdr->c.submitted, 1);
    sched_enqueue(t);
}

scatter_err task_submit(task_owner *o, const task_submission *r, task **out, char *err, size_t errcap)
{
    worker_ctx *w = o->w;
    char key[SHM_HOST_NAME_MAX];
    char *url = NULL, *body = NULL;
    struct curl_slist *headers = NULL;
    host_rt *h = NULL;
    task *t = NULL;
    *out = NULL;
    scatter_err code = check_submission(w, r, err, errcap);
    if (code == ERR_OK)
        code = copy_submission(r, key, sizeof key, &url, &body, &headers, err, errcap);
    if (code == ERR_OK)
        code = admit(w, key, &h, err, errcap);
    if (code == ERR_OK)
        code = session_admit(w, r, h, err, errcap);
    if (code == ERR_OK && !(t = calloc(1, sizeof *t))) {
        snprintf(err, errcap, "out of memory");
        admission_undo(w, h);
        code = ERR_INTERNAL;
    }
    if (code != ERR_OK) {
        atomic_fetch_add(&w->tbl->hdr->c.refused[code], 1);
        free(url);
        free(body);
        curl_slist_free_all(headers);
        return code;
    }
    t->id = r->id;
    t->owner = o;
    t->w = w;
    t->host = h;
    t->url = url;
    t->headers = headers;
    t->body = body;
    t->body_len = r->body.n;
    snprintf(t->method, sizeof t->method, "%.*s", (int)r->method.n, r->method.p);
    snprintf(t->session, sizeof t->session, "%.*s", (int)r->session.n, r->session.p);
    t->sess_proxy = SESS_NONE;
    task_start(t, r);
    *out = t;
    return ERR_OK;
}

task_submission task_submission_of(const proto_request *r, uint64_t id)
{
    return (task_submission){
        .id = id, .url = r->url, .method = r->method, .body = r->body,
        .n_headers = r->n_headers, .hname = r->hname, .hval = r->hval,
        .has_timeout = r->has_timeout, .timeout_ms = r->timeout_ms,
        .has_max_attempts = r->has_max_attempts, .max_attempts = r->max_attempts,
        .has_race_width = r->has_race_width, .race_width = r->race_width,
        .session = r->session,
    };
}
