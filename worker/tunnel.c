/*
 * CONNECT tunnels (worker/tunnel.h). The SOCKS connects go through libcurl (CONNECT_ONLY on
 * the worker's multi handle, so every proxy scheme and credential works as for attempts); the
 * winner's easy handle stays in the multi, owning the proxy socket, while the relay reads and
 * writes that socket itself with libev.
 *
 * Pacing inside a tunnel. `held` says whether we hold the pair's rate-limit word. It is held
 * from the connect on; the first target byte after we forwarded client bytes releases it,
 * anchored at that moment (the same first-byte anchor attempts use, docs/RACING.md); client
 * bytes that arrive while it is not held wait, with reading paused, until rl_claim succeeds.
 */
#include "worker/tunnel.h"
#include "worker/task.h"

#include "common/list.h"
#include "shm/health.h"
#include "shm/proxy_addr.h"
#include "shm/ratelimit.h"
#include "shm/select.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TUNNEL_BUF 65536
#define TUNNEL_MAX_LEGS 8
#define TUNNEL_ROUNDS 3     /* connect rounds before a 502 */
#define TUNNEL_POLL_MS 20   /* a slot held by another worker: look again */

struct tunnel;

typedef struct tunnel_leg {
    int kind; /* EASY_TUNNEL_LEG: first, as race.c's check_done reads it */
    struct tunnel *tn;
    CURL *easy;
    uint32_t proxy;
    uint64_t start_ms;
} tunnel_leg;

typedef struct tunnel {
    worker_ctx *w;
    host_rt *host;
    char target[SHM_HOST_NAME_MAX];
    int cfd, pfd;
    ev_io c_r, c_w, p_r, p_w;
    ev_timer timer_w;            /* connect retry / slot wait / idle */
    tunnel_leg *legs[TUNNEL_MAX_LEGS];
    uint32_t n_legs, rounds;
    tunnel_leg *win;
    uint64_t opened_ms, last_io_ms;
    char c2t[TUNNEL_BUF];        /* client bytes not yet sent to the target */
    size_t c2t_len;
    char t2c[TUNNEL_BUF];        /* target bytes not yet sent to the client */
    size_t t2c_len;
    int held;                    /* we hold the pair's rate-limit word */
    int sent;                    /* client bytes went out since the claim */
    int answered;                /* the target has sent a byte, ever */
    int waiting_slot;            /* client bytes wait for the pair's slot */
    int reserved;                /* meanwhile this worker's tasks may not claim the pair */
    int c_eof, p_eof;
    char last_error[160];
    struct tunnel *prev, *next;
} tunnel;

static void relay(tunnel *tn);
static void connect_round(tunnel *tn);
static void io_cb(struct ev_loop *loop, ev_io *io, int revents);

static uint32_t interval_of(const tunnel *tn)
{
    return cfg_interval_with_margin(tn->w->cfg, tn->host->cfg);
}

static _Atomic uint64_t *word_of(const tunnel *tn, uint32_t proxy)
{
    return &shm_cell_at(tn->w->tbl, proxy, tn->host->idx)->rl;
}

static void send_all(int fd, const char *p, size_t n)
{
    /* the client socket is fresh and its buffer empty: a short status line fits at once */
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)k;
}

static void drop_leg(tunnel *tn, tunnel_leg *leg, uint64_t anchor)
{
    worker_ctx *w = tn->w;
    for (uint32_t i = 0; i < tn->n_legs; i++)
        if (tn->legs[i] == leg) {
            tn->legs[i] = tn->legs[--tn->n_legs];
            break;
        }
    curl_multi_remove_handle(w->multi, leg->easy);
    curl_easy_cleanup(leg->easy);
    worker_pair_release(tn->host, leg->proxy, anchor, interval_of(tn));
    shm_inflight_add(w->tbl, w->index, -1);
    free(leg);
}

static void record(tunnel *tn, uint32_t proxy, health_outcome o, uint32_t latency)
{
    health_params hp;
    worker_health_params(tn->w, tn->host, &hp);
    health_record(tn->w->tbl, proxy, tn->host->idx, o, latency, shm_now_ms(), &hp, (uint32_t)worker_rand(tn->w));
}

static void tunnel_free(tunnel *tn)
{
    worker_ctx *w = tn->w;
    uint64_t now = shm_now_ms();
    while (tn->n_legs)
        drop_leg(tn, tn->legs[0], 0); /* never connected: the target saw nothing */
    if (tn->win) {
        ev_io_stop(w->loop, &tn->p_r);
        ev_io_stop(w->loop, &tn->p_w);
        if (tn->reserved)
            worker_pair_unreserve(tn->host, tn->win->proxy);
        /* client bytes went out and no answer came: they may still arrive, so the slot is
         * anchored now; a tunnel that ends before the target ever sent a byte is a failure */
        if (tn->held)
            worker_pair_release(tn->host, tn->win->proxy, tn->sent ? now + 1 : 0, interval_of(tn));
        if (!tn->answered && tn->sent)
            record(tn, tn->win->proxy, OUTCOME_PROXY_DOWN, (uint32_t)(now - tn->win->start_ms));
        curl_multi_remove_handle(w->multi, tn->win->easy);
        curl_easy_cleanup(tn->win->easy); /* closes the proxy socket */
        shm_inflight_add(w->tbl, w->index, -1);
        free(tn->win);
    }
    ev_io_stop(w->loop, &tn->c_r);
    ev_io_stop(w->loop, &tn->c_w);
    ev_timer_stop(w->loop, &tn->timer_w);
    close(tn->cfd);
    worker_host_live_add(tn->host, -1);
    LIST_UNLINK(w->tunnels, tn, prev, next);
    w->n_tunnels--;
    shm_clients_set(w->tbl, w->index, w->n_conns, w->n_http_conns, w->n_tunnels);
    free(tn);
    worker_need_dispatch(w);
}

static void fail(tunnel *tn, int status, const char *code, const char *why)
{
    char msg[512], body[300];
    int bl = snprintf(body, sizeof body, "scatter: %s\n", why);
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nX-Scatter-Error: %s\r\n%s"
                     "Connection: close\r\n\r\n%s",
                     status, status == 503 ? "Service Unavailable" : status == 504 ? "Gateway Timeout" : "Bad Gateway",
                     bl, code, status == 503 ? "Retry-After: 1\r\n" : "", body);
    send_all(tn->cfd, msg, (size_t)n);
    tunnel_free(tn);
}

/* ---- connect: race K SOCKS connects ---- */

static void start_leg(tunnel *tn, uint32_t proxy)
{
    worker_ctx *w = tn->w;
    tunnel_leg *leg = calloc(1, sizeof *leg);
    CURL *e = leg ? curl_easy_init() : NULL;
    if (!e) {
        free(leg);
        worker_pair_release(tn->host, proxy, 0, 0);
        return;
    }
    leg->kind = EASY_TUNNEL_LEG;
    leg->tn = tn;
    leg->easy = e;
    leg->proxy = proxy;
    leg->start_ms = shm_now_ms();
    char url[SHM_HOST_NAME_MAX + 16];
    snprintf(url, sizeof url, "http://%s/", tn->target);
    curl_easy_setopt(e, CURLOPT_URL, url);
    race_set_proxy(w, e, proxy);
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPPROXYTUNNEL, 1L); /* an http proxy is asked to CONNECT too */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)tn->host->cfg->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_PRIVATE, leg);
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        free(leg);
        worker_pair_release(tn->host, proxy, 0, 0);
        return;
    }
    shm_inflight_add(w->tbl, w->index, 1);
    atomic_fetch_add(&w->tbl->hdr->c.attempts, 1);
    tn->legs[tn->n_legs++] = leg;
}

static void timer_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    tunnel *tn = tw->data;
    if (!tn->win) {
        connect_round(tn);
        return;
    }
    if (tn->waiting_slot) {
        relay(tn);
        return;
    }
    uint64_t now = shm_now_ms(), idle = tn->w->cfg->tunnel_idle_timeout_ms;
    if (now - tn->last_io_ms >= idle) {
        tunnel_free(tn);
        return;
    }
    ev_timer_set(&tn->timer_w, (double)(tn->last_io_ms + idle - now) / 1000.0, 0.);
    ev_timer_start(loop, &tn->timer_w);
}

static void connect_round(tunnel *tn)
{
    worker_ctx *w = tn->w;
    host_rt *h = tn->host;
    uint64_t now = shm_now_ms();
    if (now - tn->opened_ms > h->cfg->request_timeout_ms) {
        fail(tn, 504, "timeout", tn->last_error[0] ? tn->last_error : "no proxy connected within request_timeout");
        return;
    }
    if (atomic_load(&w->tbl->hosts[h->idx].circuit) == CIRCUIT_OPEN) {
        fail(tn, 503, "circuit_open", "circuit open for this host: no proxy can serve it now");
        return;
    }
    uint32_t k = h->cfg->race_width < TUNNEL_MAX_LEGS ? h->cfg->race_width : TUNNEL_MAX_LEGS;
    uint32_t picked[TUNNEL_MAX_LEGS];
    select_stats st;
    uint32_t n = worker_select(h, k, now, picked, &st);
    if (n == 0) {
        if (st.eligible == 0) {
            fail(tn, 502, "max_attempts", "no usable proxy for this host (all dead, cooling down or outside its pool)");
            return;
        }
        uint64_t at = st.next_free_ms == UINT64_MAX ? now + TUNNEL_POLL_MS : st.next_free_ms;
        ev_timer_set(&tn->timer_w, (double)(at > now ? at - now : 1) / 1000.0, 0.);
        ev_timer_start(w->loop, &tn->timer_w);
        return;
    }
    tn->rounds++;
    for (uint32_t i = 0; i < n; i++)
        start_leg(tn, picked[i]);
    if (tn->n_legs == 0)
        fail(tn, 502, "internal", "could not start a proxy connection");
}

void tunnel_leg_done(worker_ctx *w, void *p, CURLcode rc)
{
    tunnel_leg *leg = p;
    tunnel *tn = leg->tn;
    uint64_t now = shm_now_ms();
    if (rc != CURLE_OK || tn->win) {
        if (rc != CURLE_OK) {
            health_outcome o = race_transport_outcome(leg->easy, rc, 0);
            record(tn, leg->proxy, o, (uint32_t)(now - leg->start_ms));
            snprintf(tn->last_error, sizeof tn->last_error, "proxy: %s", curl_easy_strerror(rc));
            atomic_fetch_add(&w->tbl->hdr->c.attempts_failed, 1);
        }
        drop_leg(tn, leg, 0);
        if (!tn->win && tn->n_legs == 0) {
            if (tn->rounds >= TUNNEL_ROUNDS)
                fail(tn, 502, "max_attempts", tn->last_error);
            else
                connect_round(tn);
        }
        return;
    }
    curl_socket_t fd = CURL_SOCKET_BAD;
    if (curl_easy_getinfo(leg->easy, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK || fd == CURL_SOCKET_BAD) {
        drop_leg(tn, leg, 0);
        if (tn->n_legs == 0)
            fail(tn, 502, "internal", "the proxy connection has no socket");
        return;
    }
    /* the winner: the others are closed before they send anything to the target */
    for (uint32_t i = 0; i < tn->n_legs; i++)
        if (tn->legs[i] == leg) {
            tn->legs[i] = tn->legs[--tn->n_legs];
            break;
        }
    while (tn->n_legs) {
        atomic_fetch_add(&w->tbl->hdr->c.attempts_cancelled, 1);
        drop_leg(tn, tn->legs[0], 0);
    }
    tn->win = leg;
    tn->pfd = fd;
    tn->held = 1;
    tn->last_io_ms = now;
    char purl[600], head[800];
    paddr_format_redacted(&w->tbl->proxies[leg->proxy].addr, purl, sizeof purl);
    int n = snprintf(head, sizeof head, "HTTP/1.1 200 Connection established\r\n%s%s%s\r\n",
                     w->cfg->http_scatter_headers ? "X-Scatter-Proxy: " : "", w->cfg->http_scatter_headers ? purl : "",
                     w->cfg->http_scatter_headers ? "\r\n" : "");
    send_all(tn->cfd, head, (size_t)n);
    ev_io_init(&tn->p_r, io_cb, fd, EV_READ);
    ev_io_init(&tn->p_w, io_cb, fd, EV_WRITE);
    tn->p_r.data = tn->p_w.data = tn;
    relay(tn);
}

/* ---- relay ---- */

static void io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    relay(io->data);
}

static void watch(tunnel *tn, ev_io *io, int on)
{
    if (on && !ev_is_active(io))
        ev_io_start(tn->w->loop, io);
    else if (!on && ev_is_active(io))
        ev_io_stop(tn->w->loop, io);
}

/* Moves bytes both ways as far as the sockets, the buffers and the pacing allow. */
static void relay(tunnel *tn)
{
    worker_ctx *w = tn->w;
    uint64_t now = shm_now_ms();
    for (int progress = 1; progress;) {
        progress = 0;
        /* client -> buffer */
        if (!tn->c_eof && tn->c2t_len < TUNNEL_BUF) {
            ssize_t n = recv(tn->cfd, tn->c2t + tn->c2t_len, TUNNEL_BUF - tn->c2t_len, MSG_DONTWAIT);
            if (n > 0) {
                tn->c2t_len += (size_t)n;
                progress = 1;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                tn->c_eof = 1;
            }
        }
        /* a burst after the target answered is a new request: it waits for the pair's slot */
        if (tn->c2t_len && !tn->held) {
            uint64_t next = 0;
            if (rl_claim(word_of(tn, tn->win->proxy), w->index, now, &next)) {
                tn->held = 1;
                tn->sent = 0;
                tn->waiting_slot = 0;
                if (tn->reserved) {
                    tn->reserved = 0;
                    worker_pair_unreserve(tn->host, tn->win->proxy);
                }
            } else {
                /* held by another worker (no known end) or due later: look again then. Until
                 * then this worker's tasks leave the pair alone, or a busy host's dispatch,
                 * waking at the same moment, takes the slot as often as not (a kept-alive
                 * tunnel's requests then waited two or three intervals instead of one) */
                tn->waiting_slot = 1;
                if (!tn->reserved && worker_pair_reserve(tn->host, tn->win->proxy) == 0)
                    tn->reserved = 1;
                uint64_t at = next == UINT64_MAX ? now + TUNNEL_POLL_MS : next;
                ev_timer_stop(w->loop, &tn->timer_w);
                ev_timer_set(&tn->timer_w, (double)(at > now ? at - now : 1) / 1000.0, 0.);
                ev_timer_start(w->loop, &tn->timer_w);
            }
        }
        /* buffer -> target */
        if (tn->c2t_len && tn->held) {
            ssize_t n = send(tn->pfd, tn->c2t, tn->c2t_len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                memmove(tn->c2t, tn->c2t + n, tn->c2t_len - (size_t)n);
                tn->c2t_len -= (size_t)n;
                tn->sent = 1;
                progress = 1;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                tunnel_free(tn);
                return;
            }
        }
        /* target -> buffer */
        if (!tn->p_eof && tn->t2c_len < TUNNEL_BUF) {
            ssize_t n = recv(tn->pfd, tn->t2c + tn->t2c_len, TUNNEL_BUF - tn->t2c_len, MSG_DONTWAIT);
            if (n > 0) {
                if (!tn->answered) {
                    tn->answered = 1;
                    record(tn, tn->win->proxy, OUTCOME_SUCCESS, (uint32_t)(now - tn->win->start_ms));
                }
                /* the answer to what we forwarded began: the slot is anchored here */
                if (tn->held && tn->sent) {
                    worker_pair_release(tn->host, tn->win->proxy, now + 1, interval_of(tn));
                    tn->held = 0;
                }
                tn->t2c_len += (size_t)n;
                progress = 1;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                tn->p_eof = 1;
            }
        }
        /* buffer -> client */
        if (tn->t2c_len) {
            ssize_t n = send(tn->cfd, tn->t2c, tn->t2c_len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                memmove(tn->t2c, tn->t2c + n, tn->t2c_len - (size_t)n);
                tn->t2c_len -= (size_t)n;
                progress = 1;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                tunnel_free(tn);
                return;
            }
        }
        if (progress)
            tn->last_io_ms = now;
    }
    /* one side ended and what it sent is delivered: pass the end on, and close when both did */
    if (tn->c_eof && !tn->c2t_len)
        shutdown(tn->pfd, SHUT_WR);
    if (tn->p_eof && !tn->t2c_len)
        shutdown(tn->cfd, SHUT_WR);
    if ((tn->c_eof && tn->p_eof && !tn->c2t_len && !tn->t2c_len) || (tn->p_eof && !tn->t2c_len && !tn->c2t_len)) {
        tunnel_free(tn);
        return;
    }
    watch(tn, &tn->c_r, !tn->c_eof && tn->c2t_len < TUNNEL_BUF && !tn->waiting_slot);
    watch(tn, &tn->p_w, tn->c2t_len && tn->held);
    watch(tn, &tn->p_r, !tn->p_eof && tn->t2c_len < TUNNEL_BUF);
    watch(tn, &tn->c_w, tn->t2c_len > 0);
    if (!tn->waiting_slot && !ev_is_active(&tn->timer_w)) {
        ev_timer_set(&tn->timer_w, w->cfg->tunnel_idle_timeout_ms / 1000.0, 0.);
        ev_timer_start(w->loop, &tn->timer_w);
    }
}

void tunnel_open(worker_ctx *w, int cfd, host_rt *h, const char *target, const char *early, size_t early_len)
{
    tunnel *tn = calloc(1, sizeof *tn);
    if (!tn || early_len > TUNNEL_BUF) {
        free(tn);
        send_all(cfd, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 67);
        close(cfd);
        worker_host_live_add(h, -1);
        return;
    }
    tn->w = w;
    tn->host = h;
    tn->cfd = cfd;
    tn->pfd = -1;
    snprintf(tn->target, sizeof tn->target, "%s", target);
    memcpy(tn->c2t, early, early_len);
    tn->c2t_len = early_len;
    tn->opened_ms = tn->last_io_ms = shm_now_ms();
    ev_io_init(&tn->c_r, io_cb, cfd, EV_READ);
    ev_io_init(&tn->c_w, io_cb, cfd, EV_WRITE);
    tn->c_r.data = tn->c_w.data = tn;
    ev_init(&tn->timer_w, timer_cb);
    tn->timer_w.data = tn;
    LIST_PUSH(w->tunnels, tn, prev, next);
    w->n_tunnels++;
    shm_clients_set(w->tbl, w->index, w->n_conns, w->n_http_conns, w->n_tunnels);
    connect_round(tn);
}

void tunnel_close_all(worker_ctx *w)
{
    while (w->tunnels)
        tunnel_free(w->tunnels);
}
