/*
 * socks.c — the farm's SOCKS5 proxies (RFC 1928, RFC 1929) and their byte relay.
 *
 * Why: scatter's whole job is to survive proxies that lie, stall, refuse and drop. This file
 * is a small, honest SOCKS5 server whose misbehaviour is chosen per listener (see enum
 * behaviour), so every failure mode scatter must classify can be produced on demand and
 * offline.
 *
 * One connection = one struct sconn, a state machine driven by two ev_io watchers (client
 * and upstream fd) and one ev_timer (handshake timeout, artificial latency, connect timeout,
 * blackhole hold). Every state change ends in sc_update(), which derives the watcher masks
 * from the state and buffer levels — the single place where backpressure is decided: a side
 * is read only while the buffer towards the other side has room.
 *
 * Safety: the CONNECT destination is checked against 127.0.0.0/8 before any socket is made,
 * and the outgoing socket is bound to the proxy's own 127.1.x.y source address.
 */
#include "farm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HANDSHAKE_TIMEOUT_S 30.0
#define CONNECT_TIMEOUT_S 10.0

/* SOCKS5 reply codes (RFC 1928 §6) */
enum {
    REP_OK = 0x00,
    REP_FAIL = 0x01,
    REP_NOT_ALLOWED = 0x02,
    REP_HOST_UNREACH = 0x04,
    REP_REFUSED = 0x05,
    REP_CMD_UNSUPPORTED = 0x07,
    REP_ATYP_UNSUPPORTED = 0x08,
};

enum sstate {
    S_GREET,     /* waiting for the method-selection message */
    S_AUTH,      /* waiting for RFC 1929 username/password */
    S_REQUEST,   /* waiting for the CONNECT request */
    S_WAIT,      /* artificial latency before connecting */
    S_CONNECTING,
    S_RELAY,
    S_CLOSING,   /* flush what is queued to the client, then close */
    S_BLACKHOLE, /* read and discard, never answer */
};

struct buf {
    uint8_t *d;
    size_t off, len; /* pending bytes are d[off..len) */
};

struct sconn {
    struct conn_link link; /* first member: the list holds &link */
    struct farm *f;
    struct proxy *p;
    enum sstate st;
    int cfd, ufd;
    ev_io cw, uw;
    int cw_ev, uw_ev; /* events the watchers are started with (0 = stopped) */
    ev_timer timer;
    struct buf cb; /* client -> upstream */
    struct buf ub; /* upstream -> client (also carries our SOCKS replies) */
    bool c_eof, u_eof;
    bool drop_before_reply, drop_mid;
    size_t drop_left; /* flaky: upstream bytes still relayed before the cut */
    bool asked;       /* client bytes went upstream since the target last answered */
    unsigned answers; /* answers the target started on this connection */
    struct sockaddr_in dst;
};

static size_t buf_pending(const struct buf *b)
{
    return b->len - b->off;
}

static bool buf_has_room(const struct buf *b)
{
    return b->len < FARM_RELAY_BUF || b->off > 0;
}

static void buf_compact(struct buf *b)
{
    if (b->off == 0)
        return;
    memmove(b->d, b->d + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
}

static void set_io(struct ev_loop *loop, ev_io *w, int fd, int *cur, int want)
{
    if (*cur == want)
        return;
    if (*cur)
        ev_io_stop(loop, w);
    *cur = want;
    if (want) {
        ev_io_set(w, fd, want);
        ev_io_start(loop, w);
    }
}

static void sc_destroy(struct sconn *c)
{
    struct ev_loop *loop = c->f->loop;
    if (c->cw_ev)
        ev_io_stop(loop, &c->cw);
    if (c->uw_ev)
        ev_io_stop(loop, &c->uw);
    ev_timer_stop(loop, &c->timer);
    if (c->cfd >= 0)
        close(c->cfd);
    if (c->ufd >= 0)
        close(c->ufd);
    free(c->cb.d);
    free(c->ub.d);
    farm_conn_del(c->f, &c->link);
    free(c);
}

static void sc_destroy_link(struct conn_link *l)
{
    sc_destroy((struct sconn *)l);
}

static void close_upstream(struct sconn *c)
{
    if (c->ufd < 0)
        return;
    set_io(c->f->loop, &c->uw, c->ufd, &c->uw_ev, 0);
    close(c->ufd);
    c->ufd = -1;
}

static void queue_client(struct sconn *c, const void *data, size_t n)
{
    buf_compact(&c->ub);
    if (n > FARM_RELAY_BUF - c->ub.len)
        n = FARM_RELAY_BUF - c->ub.len; /* never happens for replies: ub is empty then */
    memcpy(c->ub.d + c->ub.len, data, n);
    c->ub.len += n;
}

/* Queues a CONNECT reply; any code other than REP_OK ends the connection. */
static void reply(struct sconn *c, uint8_t rep, const struct sockaddr_in *bnd)
{
    uint8_t r[10] = {5, rep, 0, 1, 0, 0, 0, 0, 0, 0};
    if (bnd) {
        memcpy(r + 4, &bnd->sin_addr, 4);
        memcpy(r + 8, &bnd->sin_port, 2);
    }
    queue_client(c, r, sizeof r);
    if (rep != REP_OK) {
        close_upstream(c);
        c->st = S_CLOSING;
    }
}

static void timer_arm(struct sconn *c, double seconds)
{
    ev_timer_stop(c->f->loop, &c->timer);
    ev_timer_set(&c->timer, seconds, 0.0);
    ev_timer_start(c->f->loop, &c->timer);
}

static void on_upstream(struct ev_loop *loop, ev_io *w, int revents);

static void connected(struct sconn *c)
{
    struct sockaddr_in bnd;
    socklen_t len = sizeof bnd;
    memset(&bnd, 0, sizeof bnd);
    getsockname(c->ufd, (struct sockaddr *)&bnd, &len);
    ev_timer_stop(c->f->loop, &c->timer);
    c->st = S_RELAY;
    reply(c, REP_OK, &bnd);
}

static void start_connect(struct sconn *c)
{
    if (!farm_is_loopback(c->dst.sin_addr)) { /* checked at parse time; never relax this */
        reply(c, REP_NOT_ALLOWED, NULL);
        return;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        reply(c, REP_FAIL, NULL);
        return;
    }
#ifdef IP_BIND_ADDRESS_NO_PORT
    /* Pick the source port at connect() time, so ports are shared across destinations. */
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
    struct sockaddr_in src;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr = c->p->source;
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
        close(fd);
        reply(c, REP_FAIL, NULL);
        return;
    }
    c->ufd = fd;
    ev_io_init(&c->uw, on_upstream, fd, 0);
    c->uw.data = c;
    c->uw_ev = 0;
    if (connect(fd, (struct sockaddr *)&c->dst, sizeof c->dst) == 0) {
        connected(c);
    } else if (errno == EINPROGRESS) {
        c->st = S_CONNECTING;
        timer_arm(c, CONNECT_TIMEOUT_S);
    } else {
        reply(c, errno == ECONNREFUSED ? REP_REFUSED : REP_HOST_UNREACH, NULL);
    }
}

/* The CONNECT request is valid: apply the proxy's behaviour before connecting. */
static void start_wait(struct sconn *c)
{
    struct farm *f = c->f;
    double ms = f->o.good_latency_ms;
    if (c->p->beh == BEH_SLOW) {
        ms = f->o.slow_min_ms + (double)rng_below(&f->rng, f->o.slow_max_ms - f->o.slow_min_ms + 1);
    } else if (c->p->beh == BEH_FLAKY && rng_unit(&f->rng) < f->o.flaky_drop) {
        if (rng_below(&f->rng, 2) == 0) {
            c->drop_before_reply = true;
        } else {
            c->drop_mid = true;
            c->drop_left = 1 + (size_t)rng_below(&f->rng, 600);
        }
    }
    c->st = S_WAIT;
    timer_arm(c, ms / 1000.0);
}

static void consume(struct buf *b, size_t n)
{
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}

/* Parses as many handshake messages as are complete. Returns -1 to drop the connection
 * silently (malformed input), 0 otherwise. */
static int handshake(struct sconn *c)
{
    const struct farm_opts *o = &c->f->o;
    for (;;) {
        const uint8_t *d = c->cb.d + c->cb.off;
        size_t avail = buf_pending(&c->cb);
        switch (c->st) {
        case S_GREET: {
            if (avail < 2)
                return 0;
            if (d[0] != 5 || d[1] == 0)
                return -1;
            size_t n = d[1];
            if (avail < 2 + n)
                return 0;
            uint8_t want = o->auth_user ? 0x02 : 0x00;
            bool found = memchr(d + 2, want, n) != NULL;
            consume(&c->cb, 2 + n);
            uint8_t r[2] = {5, found ? want : 0xFF};
            queue_client(c, r, 2);
            if (!found) {
                c->st = S_CLOSING;
                return 0;
            }
            c->st = o->auth_user ? S_AUTH : S_REQUEST;
            break;
        }
        case S_AUTH: {
            if (avail < 2)
                return 0;
            if (d[0] != 1)
                return -1;
            size_t ul = d[1];
            if (avail < 3 + ul)
                return 0;
            size_t pl = d[2 + ul];
            if (avail < 3 + ul + pl)
                return 0;
            bool ok = ul == strlen(o->auth_user) && pl == strlen(o->auth_pass) &&
                      memcmp(d + 2, o->auth_user, ul) == 0 &&
                      memcmp(d + 3 + ul, o->auth_pass, pl) == 0;
            consume(&c->cb, 3 + ul + pl);
            uint8_t r[2] = {1, ok ? 0 : 1};
            queue_client(c, r, 2);
            if (!ok) {
                c->st = S_CLOSING;
                return 0;
            }
            c->st = S_REQUEST;
            break;
        }
        case S_REQUEST: {
            if (avail < 4)
                return 0;
            if (d[0] != 5 || d[2] != 0)
                return -1;
            size_t need;
            switch (d[3]) {
            case 1: need = 10; break;
            case 3:
                if (avail < 5)
                    return 0;
                if (d[4] == 0)
                    return -1;
                need = 7 + (size_t)d[4];
                break;
            case 4: need = 22; break;
            default: reply(c, REP_ATYP_UNSUPPORTED, NULL); return 0;
            }
            if (avail < need)
                return 0;
            if (d[1] != 1) {
                reply(c, REP_CMD_UNSUPPORTED, NULL);
                return 0;
            }
            if (d[3] == 4) {
                reply(c, REP_ATYP_UNSUPPORTED, NULL);
                return 0;
            }
            memset(&c->dst, 0, sizeof c->dst);
            c->dst.sin_family = AF_INET;
            memcpy(&c->dst.sin_port, d + need - 2, 2);
            if (d[3] == 1) {
                memcpy(&c->dst.sin_addr, d + 4, 4);
            } else {
                /* No resolver, by design: only "localhost" and dotted IPv4 literals. */
                char name[256];
                memcpy(name, d + 5, d[4]);
                name[d[4]] = '\0';
                if (strcasecmp(name, "localhost") == 0)
                    c->dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                else if (farm_parse_ipv4(name, &c->dst.sin_addr) != 0) {
                    reply(c, REP_NOT_ALLOWED, NULL);
                    return 0;
                }
            }
            if (!farm_is_loopback(c->dst.sin_addr)) {
                reply(c, REP_NOT_ALLOWED, NULL);
                return 0;
            }
            consume(&c->cb, need);
            start_wait(c);
            return 0;
        }
        default:
            return 0;
        }
    }
}

static bool is_handshake(enum sstate s)
{
    return s == S_GREET || s == S_AUTH || s == S_REQUEST;
}

/* Returns -1 when the connection must be destroyed. */
static int client_read(struct sconn *c)
{
    if (c->st == S_BLACKHOLE) {
        uint8_t sink[2048];
        ssize_t n = recv(c->cfd, sink, sizeof sink, 0);
        if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
            return 0;
        return -1;
    }
    buf_compact(&c->cb);
    size_t room = FARM_RELAY_BUF - c->cb.len;
    if (room == 0)
        return 0;
    ssize_t n = recv(c->cfd, c->cb.d + c->cb.len, room, 0);
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    if (n == 0) {
        if (c->st != S_RELAY)
            return -1;
        c->c_eof = true;
        if (buf_pending(&c->cb) == 0 && c->ufd >= 0)
            shutdown(c->ufd, SHUT_WR);
        return 0;
    }
    c->cb.len += (size_t)n;
    if (c->st == S_RELAY)
        c->asked = true;
    if (is_handshake(c->st))
        return handshake(c);
    return 0;
}

static int client_write(struct sconn *c)
{
    size_t n = buf_pending(&c->ub);
    if (n == 0)
        return 0;
    ssize_t w = send(c->cfd, c->ub.d + c->ub.off, n, MSG_NOSIGNAL);
    if (w < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    consume(&c->ub, (size_t)w);
    if (buf_pending(&c->ub) == 0 && c->u_eof && c->st == S_RELAY)
        shutdown(c->cfd, SHUT_WR);
    return 0;
}

static int upstream_read(struct sconn *c)
{
    buf_compact(&c->ub);
    size_t room = FARM_RELAY_BUF - c->ub.len;
    if (c->drop_mid && room > c->drop_left)
        room = c->drop_left;
    if (room == 0)
        return 0;
    ssize_t n = recv(c->ufd, c->ub.d + c->ub.len, room, 0);
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    if (n == 0) {
        c->u_eof = true;
        if (buf_pending(&c->ub) == 0)
            shutdown(c->cfd, SHUT_WR);
        return 0;
    }
    if (c->asked) {
        c->asked = false;
        c->answers++;
    }
    if (c->p->beh == BEH_CUT && c->answers >= 2) {
        /* cut: the request reached the target, its answer never reaches the client */
        c->ub.off = c->ub.len = 0;
        close_upstream(c);
        c->st = S_CLOSING;
        return 0;
    }
    c->ub.len += (size_t)n;
    if (c->drop_mid) {
        c->drop_left -= (size_t)n;
        if (c->drop_left == 0) { /* flaky: cut the stream after these bytes */
            close_upstream(c);
            c->st = S_CLOSING;
        }
    }
    return 0;
}

static int upstream_write(struct sconn *c)
{
    size_t n = buf_pending(&c->cb);
    if (n == 0)
        return 0;
    ssize_t w = send(c->ufd, c->cb.d + c->cb.off, n, MSG_NOSIGNAL);
    if (w < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    consume(&c->cb, (size_t)w);
    if (buf_pending(&c->cb) == 0 && c->c_eof)
        shutdown(c->ufd, SHUT_WR);
    return 0;
}

/* Derives watcher masks from state and buffers; destroys the connection when it is done. */
static void sc_update(struct sconn *c)
{
    struct ev_loop *loop = c->f->loop;
    if (c->st == S_CLOSING && buf_pending(&c->ub) == 0) {
        sc_destroy(c);
        return;
    }
    if (c->st == S_RELAY && c->c_eof && c->u_eof && buf_pending(&c->cb) == 0 &&
        buf_pending(&c->ub) == 0) {
        sc_destroy(c);
        return;
    }
    int want = 0;
    if (c->st == S_BLACKHOLE)
        want = EV_READ;
    else if (c->st != S_CLOSING && !c->c_eof && buf_has_room(&c->cb))
        want = EV_READ;
    if (c->ub.d && buf_pending(&c->ub))
        want |= EV_WRITE;
    set_io(loop, &c->cw, c->cfd, &c->cw_ev, want);

    if (c->ufd >= 0) {
        int uw = 0;
        if (c->st == S_CONNECTING)
            uw = EV_WRITE;
        else if (c->st == S_RELAY) {
            if (!c->u_eof && buf_has_room(&c->ub))
                uw |= EV_READ;
            if (buf_pending(&c->cb))
                uw |= EV_WRITE;
        }
        set_io(loop, &c->uw, c->ufd, &c->uw_ev, uw);
    }
}

static void on_client(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sconn *c = w->data;
    (void)loop;
    if ((revents & EV_READ) && client_read(c) < 0) {
        sc_destroy(c);
        return;
    }
    if ((revents & EV_WRITE) && client_write(c) < 0) {
        sc_destroy(c);
        return;
    }
    sc_update(c);
}

static void on_upstream(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sconn *c = w->data;
    (void)loop;
    if (c->st == S_CONNECTING) {
        if (revents & EV_WRITE) {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
            if (err)
                reply(c, err == ECONNREFUSED ? REP_REFUSED : REP_HOST_UNREACH, NULL);
            else
                connected(c);
        }
        sc_update(c);
        return;
    }
    if ((revents & EV_READ) && upstream_read(c) < 0) {
        sc_destroy(c);
        return;
    }
    if ((revents & EV_WRITE) && c->ufd >= 0 && upstream_write(c) < 0) {
        sc_destroy(c);
        return;
    }
    sc_update(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sconn *c = w->data;
    (void)loop;
    (void)revents;
    switch (c->st) {
    case S_WAIT:
        if (c->drop_before_reply) { /* flaky: vanish before answering */
            sc_destroy(c);
            return;
        }
        start_connect(c);
        break;
    case S_CONNECTING:
        reply(c, REP_HOST_UNREACH, NULL);
        break;
    default: /* handshake timeout, blackhole hold expired */
        sc_destroy(c);
        return;
    }
    sc_update(c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct proxy *p = w->data;
    struct farm *f = p->farm;
    (void)revents;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of descriptors: pause this listener briefly instead of spinning. */
                ev_io_stop(loop, &p->accept_w);
                ev_timer_start(loop, &p->retry_w);
            }
            return;
        }
        struct sconn *c = calloc(1, sizeof *c);
        bool bh = p->beh == BEH_BLACKHOLE;
        if (c && !bh) {
            c->cb.d = malloc(FARM_RELAY_BUF);
            c->ub.d = malloc(FARM_RELAY_BUF);
        }
        if (!c || (!bh && (!c->cb.d || !c->ub.d))) {
            if (c) {
                free(c->cb.d);
                free(c->ub.d);
            }
            free(c);
            close(fd);
            continue;
        }
        c->f = f;
        c->p = p;
        c->cfd = fd;
        c->ufd = -1;
        c->link.destroy = sc_destroy_link;
        farm_conn_add(f, &c->link);
        ev_io_init(&c->cw, on_client, fd, 0);
        c->cw.data = c;
        ev_timer_init(&c->timer, on_timer, 0.0, 0.0);
        c->timer.data = c;
        if (bh) {
            c->st = S_BLACKHOLE;
            timer_arm(c, f->o.blackhole_ms / 1000.0);
        } else {
            c->st = S_GREET;
            timer_arm(c, HANDSHAKE_TIMEOUT_S);
        }
        sc_update(c);
    }
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct proxy *p = w->data;
    (void)revents;
    ev_io_start(loop, &p->accept_w);
}

int socks_start(struct farm *f, struct proxy *p, char *err, size_t errlen)
{
    p->farm = f;
    p->fd = -1;
    p->source = farm_proxy_source(f->o.source_base + p->index);
    ev_timer_init(&p->retry_w, on_retry, 0.1, 0.0);
    p->retry_w.data = p;
    if (p->beh == BEH_REFUSE)
        return 0; /* a closed port: nothing listens */
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr = f->o.proxy_ip;
    a.sin_port = htons(p->port);
    p->fd = farm_listen(&a, err, errlen);
    if (p->fd < 0)
        return -1;
    ev_io_init(&p->accept_w, on_accept, p->fd, EV_READ);
    p->accept_w.data = p;
    ev_io_start(f->loop, &p->accept_w);
    return 0;
}

void socks_stop(struct farm *f, struct proxy *p)
{
    ev_timer_stop(f->loop, &p->retry_w);
    if (p->fd >= 0) {
        ev_io_stop(f->loop, &p->accept_w);
        close(p->fd);
        p->fd = -1;
    }
}
