/*
 * bench_connect.c — CONNECT tunnels through scatter's front door against direct SOCKS5
 * connects through the same farm proxies (bench/connect_bench.sh drives it).
 *
 *   bench_connect front -x HOST:PORT -T IP:PORT -n N [-c CONC] [-t LIMIT_S] [-o OUT.jsonl]
 *   bench_connect socks -p PROXIES  -T IP:PORT -n N [-c CONC] [-t LIMIT_S] [-o OUT.jsonl]
 *                       [-i INTERVAL_MS]
 *
 * front: each tunnel is a new TCP connection to the front door, `CONNECT IP:PORT HTTP/1.1`,
 *        up to the end of the `200` head: that is its setup time. socks: a new TCP
 *        connection to a farm proxy (socks5://IP:PORT lines of PROXIES, no credentials),
 *        greeting, CONNECT to IP:PORT, up to the end of the success reply. Then, in both
 *        modes, one plain HTTP request (`GET /item/K`, Connection: close) through the tunnel,
 *        read to the end of its Content-Length body: that adds the round trip to the target.
 * Up to CONC tunnels are open at once (default 1). The socks mode paces the proxies itself
 * the way the daemon does, so both modes obey the target's rate limit: a proxy serves one
 * tunnel at a time and is used again only INTERVAL_MS after its previous tunnel ended
 * (default 0), round robin otherwise; the front door is not told anything (it paces).
 * After LIMIT_S seconds (default 60) unfinished tunnels count as failed.
 *
 * Prints one JSON object on stdout: n, ok, wall_s, tunnels_per_s (completed ÷ wall),
 * setup_p50/p95/p99_ms, total_p50/p95/p99_ms (setup + request), errors by kind. With -o,
 * one line per tunnel: {"n":N,"ok":B,"setup_ms":S,"total_ms":T,"err":"..."}.
 * Only the addresses given are contacted (the benchmark gives loopback addresses only).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_lines.h"

enum phase { P_IDLE, P_TCP, P_HELLO, P_SOCKS_REQ, P_HEAD, P_REQ, P_RESP };

struct slot {
    int fd;
    enum phase ph;
    int n;          /* tunnel index */
    int proxy;      /* socks mode: the proxy in use, else -1 */
    double t0, t_setup;
    char out[512];
    size_t out_len, out_off;
    char in[8192];
    size_t in_len;
    size_t want;    /* P_RESP: bytes of the whole response once its head is read (0: unknown) */
};

struct proxy {
    struct sockaddr_in a;
    int busy;
    double next_ok;
};

static struct sockaddr_in front_addr, target_addr;
static char target_str[64];
static struct proxy *px;
static size_t npx, px_rr;
static int socks_mode;
static double interval_ms;
static FILE *jl;
static double *setup_v, *total_v;
static size_t n_ok;
static const char *err_kind[] = {"connect", "refused_head", "socks_reply", "closed", "response", "timeout"};
static size_t errs[6];

static int parse_ipport(const char *s, struct sockaddr_in *a)
{
    char ip[64];
    const char *c = strrchr(s, ':');
    if (!c || (size_t)(c - s) >= sizeof ip)
        return -1;
    memcpy(ip, s, (size_t)(c - s));
    ip[c - s] = 0;
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    char *end;
    long port = strtol(c + 1, &end, 10);
    if (*end || port <= 0 || port > 65535 || inet_pton(AF_INET, ip, &a->sin_addr) != 1)
        return -1;
    a->sin_port = htons((uint16_t)port);
    return 0;
}

static void load_proxies(const char *path)
{
    size_t n;
    char **v = read_lines(path, &n);
    px = calloc(n ? n : 1, sizeof *px);
    for (size_t i = 0; i < n; i++) {
        const char *s = v[i];
        if (strncmp(s, "socks5://", 9) == 0)
            s += 9;
        else if (strncmp(s, "socks5h://", 10) == 0)
            s += 10;
        if (strchr(s, '@') || parse_ipport(s, &px[npx].a)) {
            fprintf(stderr, "bench_connect: %s line %zu: '%s' is not socks5://IP:PORT without credentials\n",
                    path, i + 1, v[i]);
            exit(2);
        }
        npx++;
        free(v[i]);
    }
    free(v);
    if (!npx) {
        fprintf(stderr, "bench_connect: %s holds no proxy\n", path);
        exit(2);
    }
}

/* socks mode: the next proxy that is free and past its interval, round robin; -1 if none yet
 * (*wait_ms then says when the earliest one frees, or -1 if all are busy). */
static int pick_proxy(double now, double *wait_ms)
{
    double best = -1;
    for (size_t k = 0; k < npx; k++) {
        size_t i = (px_rr + k) % npx;
        if (px[i].busy)
            continue;
        if (px[i].next_ok <= now) {
            px_rr = i + 1;
            return (int)i;
        }
        if (best < 0 || px[i].next_ok - now < best)
            best = px[i].next_ok - now;
    }
    *wait_ms = best;
    return -1;
}

static void finish(struct slot *s, int ok, int err)
{
    double now = now_ms();
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    if (s->proxy >= 0) {
        px[s->proxy].busy = 0;
        px[s->proxy].next_ok = now + interval_ms;
    }
    if (ok) {
        setup_v[n_ok] = s->t_setup - s->t0;
        total_v[n_ok] = now - s->t0;
        n_ok++;
    } else {
        errs[err]++;
    }
    if (jl)
        fprintf(jl, "{\"n\":%d,\"ok\":%s,\"setup_ms\":%.3f,\"total_ms\":%.3f,\"err\":\"%s\"}\n", s->n,
                ok ? "true" : "false", ok ? s->t_setup - s->t0 : -1.0, ok ? now - s->t0 : -1.0,
                ok ? "" : err_kind[err]);
    s->ph = P_IDLE;
}

static void queue_out(struct slot *s, const void *p, size_t n)
{
    memcpy(s->out, p, n);
    s->out_len = n;
    s->out_off = 0;
}

static void queue_request(struct slot *s)
{
    char req[256];
    int k = snprintf(req, sizeof req, "GET /item/%d HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", s->n,
                     target_str);
    queue_out(s, req, (size_t)k);
    s->in_len = 0;
    s->want = 0;
    s->ph = P_REQ;
}

static int start(struct slot *s, int n, int proxy)
{
    s->n = n;
    s->proxy = proxy;
    s->t0 = now_ms();
    s->in_len = 0;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        perror("socket");
        exit(1);
    }
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const struct sockaddr_in *a = proxy >= 0 ? &px[proxy].a : &front_addr;
    if (proxy >= 0)
        px[proxy].busy = 1;
    s->ph = P_TCP;
    if (connect(s->fd, (const struct sockaddr *)a, sizeof *a) && errno != EINPROGRESS) {
        finish(s, 0, 0);
        return -1;
    }
    if (socks_mode) {
        queue_out(s, "\x05\x01\x00", 3);
    } else {
        char req[256];
        int k = snprintf(req, sizeof req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target_str, target_str);
        queue_out(s, req, (size_t)k);
    }
    return 0;
}

/* What has been read so far, by phase. */
static void on_input(struct slot *s)
{
    if (s->ph == P_HELLO && s->in_len >= 2) {
        if (s->in[0] != 5 || s->in[1] != 0)
            return finish(s, 0, 2);
        unsigned char req[10] = {5, 1, 0, 1};
        memcpy(req + 4, &target_addr.sin_addr, 4);
        memcpy(req + 8, &target_addr.sin_port, 2);
        s->in_len = 0;
        queue_out(s, req, sizeof req);
        s->ph = P_SOCKS_REQ;
    } else if (s->ph == P_SOCKS_REQ && s->in_len >= 5) {
        unsigned char *r = (unsigned char *)s->in;
        if (r[0] != 5 || r[1] != 0)
            return finish(s, 0, 2);
        size_t need = r[3] == 1 ? 10 : r[3] == 4 ? 22 : r[3] == 3 ? 7u + r[4] : 0;
        if (!need)
            return finish(s, 0, 2);
        if (s->in_len < need)
            return;
        s->t_setup = now_ms();
        queue_request(s);
    } else if (s->ph == P_HEAD) {
        char *e = memmem(s->in, s->in_len, "\r\n\r\n", 4);
        if (!e)
            return;
        if (s->in_len < 12 || memcmp(s->in + 9, "200", 3) != 0)
            return finish(s, 0, 1);
        s->t_setup = now_ms();
        queue_request(s);
    } else if (s->ph == P_RESP && !s->want) {
        char *e = memmem(s->in, s->in_len, "\r\n\r\n", 4);
        if (!e)
            return;
        if (s->in_len < 12 || memcmp(s->in + 9, "200", 3) != 0)
            return finish(s, 0, 4);
        *e = 0;
        char *cl = strcasestr(s->in, "\r\nContent-Length:");
        if (!cl)
            return finish(s, 0, 4);
        s->want = (size_t)(e - s->in) + 4 + strtoul(cl + 17, NULL, 10);
        *e = '\r';
    }
    if (s->ph == P_RESP && s->want && s->in_len >= s->want)
        finish(s, 1, 0);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    if (!n)
        return -1;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void usage(void)
{
    fputs("usage: bench_connect front -x HOST:PORT -T IP:PORT -n N [-c CONC] [-t LIMIT_S] [-o OUT.jsonl]\n"
          "       bench_connect socks -p PROXIES -T IP:PORT -n N [-c CONC] [-t LIMIT_S] [-o OUT.jsonl] "
          "[-i INTERVAL_MS]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    socks_mode = strcmp(argv[1], "socks") == 0;
    if (!socks_mode && strcmp(argv[1], "front") != 0)
        usage();
    const char *front = NULL, *proxies = NULL, *target = NULL, *out = NULL;
    int n = 0, conc = 1;
    double limit_s = 60;
    int o;
    optind = 2;
    while ((o = getopt(argc, argv, "x:p:T:n:c:t:o:i:")) != -1) {
        switch (o) {
        case 'x': front = optarg; break;
        case 'p': proxies = optarg; break;
        case 'T': target = optarg; break;
        case 'n': n = atoi(optarg); break;
        case 'c': conc = atoi(optarg); break;
        case 't': limit_s = atof(optarg); break;
        case 'o': out = optarg; break;
        case 'i': interval_ms = atof(optarg); break;
        default: usage();
        }
    }
    if (!target || n <= 0 || conc <= 0 || conc > 4096 || (socks_mode ? !proxies : !front))
        usage();
    if (parse_ipport(target, &target_addr) || (front && parse_ipport(front, &front_addr))) {
        fprintf(stderr, "bench_connect: -T and -x take IPv4:PORT\n");
        return 2;
    }
    snprintf(target_str, sizeof target_str, "%s", target);
    if (socks_mode)
        load_proxies(proxies);
    if (out && !(jl = fopen(out, "w"))) {
        perror(out);
        return 2;
    }
    setup_v = calloc((size_t)n, sizeof *setup_v);
    total_v = calloc((size_t)n, sizeof *total_v);
    struct slot *sl = calloc((size_t)conc, sizeof *sl);
    struct pollfd *pf = calloc((size_t)conc, sizeof *pf);
    for (int i = 0; i < conc; i++)
        sl[i].fd = -1;
    int next = 0, live = 0;
    double t0 = now_ms(), deadline = t0 + limit_s * 1e3;
    while (next < n || live) {
        double now = now_ms(), wait = -1;
        if (now >= deadline)
            break;
        /* fill free slots */
        for (int i = 0; i < conc && next < n; i++) {
            if (sl[i].ph != P_IDLE)
                continue;
            int p = -1;
            if (socks_mode && (p = pick_proxy(now, &wait)) < 0)
                break;
            start(&sl[i], next++, p);
        }
        live = 0;
        for (int i = 0; i < conc; i++) {
            struct slot *s = &sl[i];
            pf[i].fd = s->ph == P_IDLE ? -1 : s->fd;
            pf[i].events = s->out_off < s->out_len || s->ph == P_TCP ? POLLOUT : POLLIN;
            pf[i].revents = 0;
            live += s->ph != P_IDLE;
        }
        if (!live && next >= n)
            break;
        int tmo = (int)(deadline - now) + 1;
        if (wait >= 0 && wait < tmo)
            tmo = (int)wait + 1;
        if (poll(pf, (nfds_t)conc, tmo) < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        for (int i = 0; i < conc; i++) {
            struct slot *s = &sl[i];
            if (s->ph == P_IDLE || !pf[i].revents)
                continue;
            if (s->ph == P_TCP) {
                int e = 0;
                socklen_t el = sizeof e;
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &el);
                if (e) {
                    finish(s, 0, 0);
                    continue;
                }
                s->ph = socks_mode ? P_HELLO : P_HEAD;
            }
            if (s->out_off < s->out_len) {
                ssize_t k = send(s->fd, s->out + s->out_off, s->out_len - s->out_off, MSG_NOSIGNAL);
                if (k < 0 && errno != EAGAIN) {
                    finish(s, 0, 3);
                    continue;
                }
                if (k > 0)
                    s->out_off += (size_t)k;
                if (s->out_off == s->out_len && s->ph == P_REQ)
                    s->ph = P_RESP;
                continue;
            }
            if (s->in_len == sizeof s->in) {
                finish(s, 0, 4);
                continue;
            }
            ssize_t k = recv(s->fd, s->in + s->in_len, sizeof s->in - s->in_len, 0);
            if (k == 0 || (k < 0 && errno != EAGAIN)) {
                finish(s, 0, s->ph == P_RESP ? 4 : 3);
                continue;
            }
            if (k > 0) {
                s->in_len += (size_t)k;
                on_input(s);
            }
        }
    }
    double wall = (now_ms() - t0) / 1e3;
    for (int i = 0; i < conc; i++)
        if (sl[i].ph != P_IDLE)
            finish(&sl[i], 0, 5);
    errs[5] += (size_t)(n - next);
    double *sv = malloc((n_ok ? n_ok : 1) * sizeof *sv);
    memcpy(sv, setup_v, n_ok * sizeof *sv);
    qsort(sv, n_ok, sizeof *sv, cmp_d);
    qsort(total_v, n_ok, sizeof *total_v, cmp_d);
    printf("{\"n\":%d,\"ok\":%zu,\"wall_s\":%.3f,\"tunnels_per_s\":%.1f,"
           "\"setup_p50_ms\":%.3f,\"setup_p95_ms\":%.3f,\"setup_p99_ms\":%.3f,"
           "\"total_p50_ms\":%.3f,\"total_p95_ms\":%.3f,\"total_p99_ms\":%.3f,\"errors\":{",
           n, n_ok, wall, wall > 0 ? (double)n_ok / wall : 0, pct(sv, n_ok, .5), pct(sv, n_ok, .95),
           pct(sv, n_ok, .99), pct(total_v, n_ok, .5), pct(total_v, n_ok, .95), pct(total_v, n_ok, .99));
    for (int i = 0; i < 6; i++)
        printf("%s\"%s\":%zu", i ? "," : "", err_kind[i], errs[i]);
    printf("}}\n");
    if (jl)
        fclose(jl);
    free(sv);
    free(setup_v);
    free(total_v);
    free(sl);
    free(pf);
    free(px);
    return 0;
}
