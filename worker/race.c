/*
 * Races through libcurl's multi interface, driven by libev: libcurl's socket and timer
 * callbacks only (re)arm watchers, and handles are removed only outside libcurl's callbacks.
 * Each attempt is one easy handle through one proxy whose rate-limit word we hold. The first
 * attempt of a task that the classifier calls Success completes it; the others are removed at
 * once and recorded as cancelled, never as failures.
 *
 * Rate limit at the target. One request per (proxy, host) pair in flight, and the next may
 * leave only an interval after the previous one ARRIVED at the target. We cannot see arrival,
 * but we can bound it: the target had the request before it answered, so the time we read the
 * first byte of the response is never earlier than the arrival. With rate_limit anchor =
 * response (default) a pair is released at first-byte time + interval + margin, which holds
 * however much the one-way delay through the proxy varies (a loaded proxy or target stamps
 * the earlier request late and the later one early: measured on the farm under CPU
 * contention, sent-time spacing gave 450 ms gaps for a 515 ms spacing). anchor = sent uses the
 * time the request left, cheaper by one round trip, exact only on a jitter-free path.
 * The send time is taken in CURLOPT_PREREQFUNCTION (connection ready, SOCKS/TLS done, request
 * about to be written); CURLINFO_PRETRANSFER_TIME would be off by the time the handle waited in
 * the multi. A request sent but never answered (dropped, timed out, a cancelled race loser)
 * may still arrive: it is anchored at the moment we gave up on it. An attempt that never sent
 * frees the pair at once: the target never saw it.
 *
 * Race losers. A loser that has not sent its request is removed at once. One that has sent
 * it cannot be bounded if we hang up (its request may still be delivered, late), so it is
 * orphaned instead: detached from its task (which is answered and freed as usual), counted as
 * cancelled, and aborted as soon as the first byte of its answer arrives, which is the anchor
 * we need. An orphan that never gets an answer ends at its own timeout.
 */
#include "worker/task.h"
#include "worker/tunnel.h"

#include <sys/resource.h>

#include "common/buf.h"
#include "common/list.h"

#include "shm/health.h"
#include "shm/proxy_addr.h"
#include "shm/ratelimit.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    ev_io io;
    worker_ctx *w;
} sock_watch;

static void check_done(worker_ctx *w);
static void detach(attempt *a);
static void free_attempt(attempt *a);

static void io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    worker_ctx *w = ((sock_watch *)io)->w; /* the watcher may be freed inside socket_action */
    int action = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(w->multi, io->fd, action, &running);
    check_done(w);
}

static void timer_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    worker_ctx *w = tw->data;
    int running;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(w);
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
    worker_ctx *w = userp;
    sock_watch *sw = sockp;
    if (what == CURL_POLL_REMOVE) {
        /* stop now: libcurl closes the fd right after, and the number may be reused */
        if (sw) {
            ev_io_stop(w->loop, &sw->io);
            free(sw);
            curl_multi_assign(w->multi, s, NULL);
        }
        return 0;
    }
    int ev = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!sw) {
        sw = calloc(1, sizeof *sw);
        if (!sw)
            return 0; /* the transfer will time out; -1 would fail every transfer */
        sw->w = w;
        ev_init(&sw->io, io_cb);
        curl_multi_assign(w->multi, s, sw);
    } else {
        ev_io_stop(w->loop, &sw->io);
    }
    ev_io_set(&sw->io, s, ev);
    ev_io_start(w->loop, &sw->io);
    return 0;
}

static int timerfn_cb(CURLM *m, long timeout_ms, void *userp)
{
    worker_ctx *w = userp;
    /* only (re)arm: never call libcurl from here */
    ev_timer_stop(w->loop, &w->curl_timer);
    if (timeout_ms >= 0) {
        ev_timer_set(&w->curl_timer, timeout_ms / 1000.0, 0.);
        ev_timer_start(w->loop, &w->curl_timer);
    }
    return 0;
}

/* max_idle_connections, or with 0 what the descriptor limit leaves beside the attempts and
 * the clients, halved for tunnels, the listeners and headroom. */
static uint32_t race_idle_budget(const worker_ctx *w)
{
    if (w->cfg->max_idle_connections)
        return w->cfg->max_idle_connections;
    struct rlimit rl;
    uint64_t lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : 1024;
    uint64_t used = (uint64_t)w->cfg->max_inflight + w->cfg->max_clients + 256;
    uint64_t budget = lim > used ? (lim - used) / 2 : 0;
    return budget < 256 ? 256 : budget > 1000000 ? 1000000 : (uint32_t)budget;
}

int race_init(worker_ctx *w)
{
    w->multi = curl_multi_init();
    if (!w->multi)
        return -1;
    ev_init(&w->curl_timer, timer_cb);
    w->curl_timer.data = w;
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, timerfn_cb);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    /* Idle connections and resolved names live in RACE_SHARES share objects, proxy p in
     * share p % RACE_SHARES, not in the multi handle. libcurl 7.88 walks a whole connection
     * cache each time an easy handle whose connection was kept is removed (a check for
     * connect-only connections) and a whole DNS cache each time it resolves a name (pruning;
     * every proxy address is an entry), so with one cache per worker the CPU per task grew
     * with the fleet: 0.055 s per 1,000 tasks at 200 proxies, 0.28 at 8,000 (perf: both walks
     * under curl_multi_remove_handle and the resolver). Split, each walk covers 1/RACE_SHARES
     * of the fleet. The multi's MAXCONNECTS then applies to each share's cache. */
    for (uint32_t i = 0; i < RACE_SHARES; i++) {
        w->curl_share[i] = curl_share_init();
        if (!w->curl_share[i] || curl_share_setopt(w->curl_share[i], CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
            curl_share_setopt(w->curl_share[i], CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK)
            return -1;
    }
    /* libcurl's cap counts the connections in use too. Raising it by max_inflight ran the
     * workers out of descriptors when every attempt opened a new tunnel (20,000 proxies x 10
     * targets: 325 tasks/s and violations, against 5,181 and none with the budget alone) */
    uint64_t cap = (uint64_t)race_idle_budget(w);
    uint32_t per_share = (uint32_t)((cap + RACE_SHARES - 1) / RACE_SHARES);
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)per_share);
    return 0;
}

void race_cleanup(worker_ctx *w)
{
    while (w->orphans) {
        attempt *a = w->orphans;
        detach(a); /* unanswered: anchored now */
        free_attempt(a);
    }
    if (w->multi)
        curl_multi_cleanup(w->multi); /* may call socket_cb with REMOVE: w is still valid */
    w->multi = NULL;
    /* after every easy handle: a share still in use refuses, and the process is ending */
    for (uint32_t i = 0; i < RACE_SHARES; i++) {
        if (w->curl_share[i])
            curl_share_cleanup(w->curl_share[i]);
        w->curl_share[i] = NULL;
    }
    ev_timer_stop(w->loop, &w->curl_timer);
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    attempt *a = ud;
    size_t n = size * nmemb;
    if (!a->t)
        return 0; /* orphan: its answer started, which is all we wanted */
    size_t max = a->w->cfg->max_response_body;
    if (a->len + n > max) {
        a->too_large = 1;
        return 0; /* aborts with CURLE_WRITE_ERROR */
    }
    if (a->len + n > a->cap) {
        size_t nc = buf_next_cap(a->cap, a->len + n, 4096, max);
        worker_ctx *w = a->w;
        if (w->buffered + (nc - a->cap) > w->cfg->worker_buffer_budget) {
            a->over_budget = 1; /* not the proxy's fault: the round is retried later */
            return 0;
        }
        char *nb = realloc(a->body, nc);
        if (!nb)
            return 0;
        w->buffered += nc - a->cap;
        a->body = nb;
        a->cap = nc;
    }
    memcpy(a->body + a->len, ptr, n);
    a->len += n;
    return n;
}

#define HDR_MAX 65536u

static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    attempt *a = ud;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        a->hlen = 0; /* a new response (after 1xx): keep only the final one */
        if (!a->first_byte_ms)
            a->first_byte_ms = shm_now_ms();
    }
    if (!a->t)
        return 0; /* orphan: anchored now, abort the transfer */
    if (a->hlen + n > HDR_MAX) {
        /* a response whose headers we cannot keep whole is not handed out in part */
        a->too_large = 2;
        return 0; /* aborts with CURLE_WRITE_ERROR */
    }
    if (a->hlen + n > a->hcap) {
        size_t nc = buf_next_cap(a->hcap, a->hlen + n, 1024, HDR_MAX);
        char *nb = realloc(a->hdrs, nc);
        if (!nb)
            return 0;
        a->w->buffered += nc - a->hcap;
        a->hdrs = nb;
        a->hcap = nc;
    }
    memcpy(a->hdrs + a->hlen, ptr, n);
    a->hlen += n;
    return n;
}

static int prereq_cb(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port)
{
    attempt *a = ud;
    /* A second call means libcurl is about to send the request again on a fresh connection:
     * a reused one died before any answer. The first copy may well have reached the target
     * (a proxy that closes right after forwarding), so a second copy now would be two
     * arrivals in one slot. Refuse it: the attempt fails, anchored as sent and unanswered. */
    if (a->sent_ms) {
        a->resend_refused = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    a->sent_ms = shm_now_ms();
    return CURL_PREREQFUNC_OK;
}

static const char *curl_scheme(const worker_ctx *w, uint8_t s)
{
    switch ((shm_scheme)s) {
    case PROXY_SOCKS5: return w->cfg->remote_dns ? "socks5h" : "socks5";
    case PROXY_SOCKS5H: return "socks5h";
    case PROXY_SOCKS4: return w->cfg->remote_dns ? "socks4a" : "socks4";
    case PROXY_SOCKS4A: return "socks4a";
    case PROXY_HTTP: return "http";
    }
    return "socks5h";
}

static uint32_t interval_of(const worker_ctx *w, const host_rt *h)
{
    return cfg_interval_with_margin(w->cfg, h->cfg);
}

static void free_attempt(attempt *a)
{
    ev_timer_stop(a->w->loop, &a->give_up_w);
    a->w->buffered -= a->cap + a->hcap;
    free(a->body);
    free(a->hdrs);
    free(a);
}

/* Detaches a from its task (or the orphan list) and libcurl; releases the rate-limit word. */
static void detach(attempt *a)
{
    task *t = a->t;
    worker_ctx *w = a->w;
    host_rt *h = a->host;
    curl_multi_remove_handle(w->multi, a->easy);
    curl_easy_cleanup(a->easy);
    a->easy = NULL;
    /* +1 everywhere: times are truncated to the millisecond */
    uint64_t anchor = 0;
    if (a->sent_ms) {
        if (w->cfg->rate_limit_anchor_sent)
            anchor = a->sent_ms + 1;
        else if (a->first_byte_ms >= a->sent_ms)
            anchor = a->first_byte_ms + 1;
        else
            anchor = shm_now_ms() + 1; /* sent, unanswered: it may still arrive */
    }
    if (!worker_pair_release(h, a->proxy, anchor, interval_of(w, h)))
        LOGE(&w->log, "rate-limit word of proxy %u host %s was not ours at release", a->proxy, h->name);
    if (t) {
        for (uint32_t i = 0; i < t->n_running; i++)
            if (t->att[i] == a) {
                t->att[i] = t->att[--t->n_running];
                break;
            }
    } else {
        LIST_UNLINK(w->orphans, a, oprev, onext);
        w->n_orphans--;
    }
    w->inflight--;
    shm_inflight_add(w->tbl, w->index, -1);
}

/* Proxies spread over the shares by a multiplicative hash, not proxy % RACE_SHARES: a worker
 * mostly uses the pairs it is home to (proxy % workers), and a plain modulo would give each
 * worker only the shares of its own residue, half of the idle-connection budget with two. */
static uint32_t race_share_of(uint32_t proxy)
{
    return (uint32_t)(((uint64_t)(proxy * 2654435761u) * RACE_SHARES) >> 32);
}

void race_set_proxy(worker_ctx *w, CURL *e, uint32_t proxy)
{
    const shm_proxy_addr *pa = &w->tbl->proxies[proxy].addr;
    const char *scheme = curl_scheme(w, pa->scheme);
    char purl[SHM_ADDR_HOST_MAX + 32];
    int v6 = strchr(pa->host, ':') != NULL;
    snprintf(purl, sizeof purl, "%s://%s%s%s:%u", scheme, v6 ? "[" : "", pa->host, v6 ? "]" : "", pa->port);
    curl_easy_setopt(e, CURLOPT_PROXY, purl);
    if (pa->user[0]) {
        curl_easy_setopt(e, CURLOPT_PROXYUSERNAME, pa->user);
        curl_easy_setopt(e, CURLOPT_PROXYPASSWORD, pa->pass);
    }
    /* One connection-cache bundle per (proxy, target) instead of per target. libcurl files
     * idle connections under "scope id/port/host name" of the target (the proxy is not part of
     * the key), and before reusing one it liveness-polls the idle connections of that bundle
     * in turn, so with hundreds of idle tunnels to one target every new transfer made hundreds
     * of poll() calls: a third of the daemon's CPU (docs/BENCHMARKS.md). We only ever connect
     * to the proxy, and libcurl applies the scope id only to an IPv6 socket address, which
     * Linux ignores unless the address is link-local: for a proxy reached over IPv4 or a
     * global IPv6 address it changes nothing but the key. A proxy written as an IPv6 literal
     * keeps scope 0, so a link-local one keeps working. */
    if (!v6)
        curl_easy_setopt(e, CURLOPT_ADDRESS_SCOPE, (long)proxy + 1);
    /* the proxy's share: its connection and DNS caches (race_init) */
    curl_easy_setopt(e, CURLOPT_SHARE, w->curl_share[race_share_of(proxy)]);
    /* No DNS cache when the proxy resolves the target (socks5h, socks4a, http): libcurl then
     * resolves only the proxy's own address, an IP literal (the master resolved every proxy
     * name), and caching that saves nothing. Cached, each proxy a worker used held an entry
     * for 60 s: with 20,000 proxies that was 8 MB of each worker's heap, fragmented, kept
     * after the batch ended. A target name resolved here (remote_dns = false, socks5://,
     * socks4://) keeps libcurl's 60 s cache. */
    if (strcmp(scheme, "socks5") != 0 && strcmp(scheme, "socks4") != 0)
        curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
}

/* Detaches a from its task only: the transfer runs on, with no task to answer, until the first
 * byte of its answer (write_cb, header_cb abort it then) or its libcurl timeout, and detach()
 * anchors the pair at whichever comes first. */
static void orphan(attempt *a)
{
    task *t = a->t;
    worker_ctx *w = a->w;
    ev_timer_stop(w->loop, &a->give_up_w);
    for (uint32_t i = 0; i < t->n_running; i++)
        if (t->att[i] == a) {
            t->att[i] = t->att[--t->n_running];
            break;
        }
    a->t = NULL;
    LIST_PUSH(w->orphans, a, oprev, onext);
    w->n_orphans++;
}

/* Orphans still count against max_inflight (each holds a connection and a pair), so at most a
 * quarter of it waits that way; past that an attempt is closed as before, anchored now. With
 * no bound, a target flooded with connects (SYN retries: every attempt stuck for seconds) filled
 * max_inflight with orphans and the throughput fell to a tenth (bench/fleet.sh, 10 targets). */
static int may_orphan(const worker_ctx *w, const attempt *a)
{
    return a->sent_ms && !a->first_byte_ms && !w->cfg->rate_limit_anchor_sent &&
           w->n_orphans < (w->cfg->max_inflight + 3) / 4;
}

static void attempt_done(worker_ctx *w, attempt *a, CURLcode rc);

/* The attempt's own timeout: ends it as libcurl's timeout did, except that a sent request is
 * orphaned, not closed (attempt_done). */
static void give_up_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    (void)loop;
    (void)revents;
    attempt *a = tw->data;
    if (!a->t)
        return;
    a->gave_up = 1;
    attempt_done(a->w, a, CURLE_OPERATION_TIMEDOUT);
}

int race_start(task *t, uint32_t proxy)
{
    worker_ctx *w = t->w;
    host_rt *h = t->host;
    shm_table *tbl = w->tbl;
    attempt *a = calloc(1, sizeof *a);
    CURL *e = a ? curl_easy_init() : NULL;
    if (!e) {
        LOGE(&w->log, "cannot start an attempt: out of memory");
        free(a);
        worker_pair_release(h, proxy, 0, 0);
        return -1;
    }
    a->t = t;
    a->w = w;
    a->host = h;
    a->easy = e;
    a->proxy = proxy;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    race_set_proxy(w, e, proxy);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    uint64_t now = shm_now_ms();
    uint64_t total = h->cfg->request_timeout_ms;
    if (t->deadline_ms && t->deadline_ms > now && t->deadline_ms - now < total)
        total = t->deadline_ms - now;
    if (total < 1)
        total = 1;
    long ctmo = (long)(h->cfg->connect_timeout_ms < total ? h->cfg->connect_timeout_ms : total);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ctmo);
    /* the attempt gives up at `total` (give_up_w); libcurl's own limit is one request_timeout
     * later, for a sent request that is then orphaned waiting for its answer (attempt_done) */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(total + h->cfg->request_timeout_ms));
    ev_timer_init(&a->give_up_w, give_up_cb, (double)total / 1000.0, 0.);
    a->give_up_w.data = a;
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(e, CURLOPT_PRIVATE, a);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, a);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, w->cfg->user_agent);
    if (h->cfg->ca_file[0])
        curl_easy_setopt(e, CURLOPT_CAINFO, h->cfg->ca_file);
    if (!h->cfg->tls_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (t->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    if (strcmp(t->method, "GET") != 0) {
        if (strcmp(t->method, "HEAD") == 0)
            curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        else
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method);
    }
    if (t->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body_len);
        if (strcmp(t->method, "GET") == 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET");
    }
    a->start_ms = now;
    CURLMcode mc = curl_multi_add_handle(w->multi, e);
    if (mc != CURLM_OK) {
        LOGE(&w->log, "cannot start an attempt: %s", curl_multi_strerror(mc));
        curl_easy_cleanup(e);
        free_attempt(a);
        worker_pair_release(h, proxy, 0, 0);
        return -1;
    }
    t->att[t->n_running++] = a;
    ev_timer_start(w->loop, &a->give_up_w);
    w->inflight++;
    shm_inflight_add(tbl, w->index, 1);
    atomic_fetch_add(&tbl->hdr->c.attempts, 1);
    return 0;
}

void race_abort_all(task *t)
{
    worker_ctx *w = t->w;
    while (t->n_running) {
        attempt *a = t->att[0];
        atomic_fetch_add(&w->tbl->hdr->c.attempts_cancelled, 1);
        if (may_orphan(w, a)) {
            orphan(a);
            continue;
        }
        detach(a);
        free_attempt(a);
    }
}

/* Who is charged for a transport error. */
static health_outcome transport_outcome(const attempt *a, CURL *e, CURLcode rc)
{
    /* the port is closed, or the proxy never finished a handshake within the connect
     * timeout: down now, not worth two more tries before its cooldown */
    if (rc == CURLE_COULDNT_CONNECT || (rc == CURLE_OPERATION_TIMEDOUT && !a->sent_ms))
        return OUTCOME_PROXY_UNREACHABLE;
    /* the tunnel stood and the TLS handshake with the target failed (an unknown CA, a wrong
     * name, a target that does not speak TLS): about the target, not the proxy's health
     * everywhere; a proxy that tampers with TLS still pays for this host */
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CONNECT_ERROR)
        return OUTCOME_TARGET_UNREACHABLE;
    if (rc == CURLE_PROXY) {
        /* libcurl (7.73+; 7.88 checked) reports a SOCKS5 failure reply as CURLE_PROXY with
         * the reply as a CURLPX_REPLY_* code */
        long px = 0;
        curl_easy_getinfo(e, CURLINFO_PROXY_ERROR, &px);
        return cls_proxy_reply(px);
    }
    return OUTCOME_PROXY_DOWN;
}

/* The curl message is cut to fit last_error's 160 bytes. */
static void describe_transport(attempt *a, CURLcode rc, health_outcome o, char *buf, size_t cap)
{
    if (rc == CURLE_PROXY) {
        long px = 0;
        curl_easy_getinfo(a->easy, CURLINFO_PROXY_ERROR, &px);
        snprintf(buf, cap, "%s: %.110s (CURLPX %ld)", o == OUTCOME_TARGET_UNREACHABLE ? "target unreachable" : "proxy",
                 a->errbuf[0] ? a->errbuf : curl_easy_strerror(rc), px);
    } else if (a->resend_refused) {
        snprintf(buf, cap, "proxy: the kept-alive connection died after the request was sent, before any "
                           "answer; not sent again (the first copy may have arrived)");
    } else {
        snprintf(buf, cap, "%s: %.140s", o == OUTCOME_TARGET_UNREACHABLE ? "target tls" : "proxy",
                 a->errbuf[0] ? a->errbuf : curl_easy_strerror(rc));
    }
}

static void attempt_done(worker_ctx *w, attempt *a, CURLcode rc)
{
    task *t = a->t;
    if (!t) { /* an orphan got its first answer byte, or gave up: release, nothing else */
        detach(a);
        free_attempt(a);
        return;
    }
    host_rt *h = t->host;
    shm_table *tbl = w->tbl;
    uint64_t now = shm_now_ms();
    uint32_t latency = (uint32_t)(now - a->start_ms);
    shm_hist_record(&tbl->hdr->c.attempt_latency, latency);
    long status = 0;
    health_outcome o;
    char err[160] = "";
    const char *why = "";
    if (rc == CURLE_OK) {
        curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &status);
        o = cls_classify(&h->cls, status, strcmp(t->method, "HEAD") == 0, a->body, a->len, &why);
        if (o != OUTCOME_SUCCESS)
            snprintf(err, sizeof err, "http %ld (%s)", status, why);
    } else if (a->too_large) {
        o = OUTCOME_CANCELLED; /* the proxy delivered; the response is just too big for us */
    } else if (a->over_budget) {
        o = OUTCOME_CANCELLED; /* our memory, not the proxy: nobody is charged */
        snprintf(err, sizeof err, "worker_buffer_budget (%u bytes) exhausted while receiving the response",
                 w->cfg->worker_buffer_budget);
    } else {
        o = transport_outcome(a, a->easy, rc);
        describe_transport(a, rc, o, err, sizeof err);
    }
    health_params hp;
    worker_health_params(w, h, &hp);
    int flags = health_record(tbl, a->proxy, h->idx, o, latency, now, &hp, (uint32_t)worker_rand(w));
    /* rounds the target answered count toward max_attempts; rounds lost to proxy faults do
     * not (the task's deadline bounds those) */
    if (cls_target_answered(o, why))
        t->round_answered = 1;
    if (flags & (HEALTH_COOLDOWN_STARTED | HEALTH_CELL_EVICTED | HEALTH_PROXY_EVICTED)) {
        char pu[600];
        paddr_format_redacted(&tbl->proxies[a->proxy].addr, pu, sizeof pu);
        LOGD(&w->log, "proxy %s host %s: %s%s%s (%s)", pu, h->name,
             flags & HEALTH_COOLDOWN_STARTED ? "cooldown " : "", flags & HEALTH_CELL_EVICTED ? "dead-for-host " : "",
             flags & HEALTH_PROXY_EVICTED ? "dead " : "", err);
    }
    /* Timed out with its request sent and no answer: the proxy may still deliver it, late (a
     * proxy whose own connect to the target is stuck in SYN retries delivers it seconds later).
     * Closing now would anchor the pair now, and a late arrival could then land within one
     * interval of the pair's next use (the fleet benchmark at 20,000 proxies saw 37 that way).
     * Kept open, it is anchored at its answer's first byte; the task goes on without it. */
    int orphaned = a->gave_up && may_orphan(w, a);
    if (orphaned)
        orphan(a);
    else
        detach(a);
    if (o == OUTCOME_SUCCESS) {
        worker_host_record_win(h, latency);
        task_finish_success(t, a, status, latency); /* also cancels the losers */
        free_attempt(a);
        return;
    }
    atomic_fetch_add(&tbl->hdr->c.attempts_failed, 1);
    if (a->too_large) {
        int headers = a->too_large == 2;
        free_attempt(a);
        if (headers) {
            snprintf(t->last_error, sizeof t->last_error, "response headers exceed %u bytes", HDR_MAX);
            task_finish_error(t, ERR_TOO_LARGE, "response headers exceed %u bytes", HDR_MAX);
        } else {
            snprintf(t->last_error, sizeof t->last_error, "response exceeds max_response_body %u",
                     w->cfg->max_response_body);
            task_finish_error(t, ERR_TOO_LARGE, "response exceeds max_response_body (%u bytes)",
                              w->cfg->max_response_body);
        }
        return;
    }
    if (!orphaned)
        free_attempt(a);
    snprintf(t->last_error, sizeof t->last_error, "%s", err);
    /* hedged round: a failure is an answer too, so the next proxy joins now, not at the delay */
    if (t->n_running == 0 && !sched_hedge_add(t)) {
        ev_timer_stop(w->loop, &t->hedge_w);
        task_round_failed(t);
    }
    worker_need_dispatch(w);
}

health_outcome race_transport_outcome(CURL *e, CURLcode rc, int sent)
{
    attempt probe = {.sent_ms = sent ? 1 : 0};
    return transport_outcome(&probe, e, rc);
}

static void check_done(worker_ctx *w)
{
    CURLMsg *m;
    int left;
    /* removing a handle also drops its queued message, so removing race losers between reads
     * is safe; we never remove from inside a libcurl callback */
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode rc = m->data.result;
        void *owner = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&owner);
        if (owner && *(int *)owner == EASY_TUNNEL_LEG)
            tunnel_leg_done(w, owner, rc);
        else if (owner)
            attempt_done(w, owner, rc);
    }
}
