/* A fake scatterd for the ctl tests: see fake_server.h. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/proto.h"
#include "ctl/tests/fake_server.h"

#define MAXC 32


typedef struct {
    int fd, lidx;
    uint8_t buf[1 << 16];
    size_t len;
    int nsub;
} fconn;

char g_sock[108];
static pid_t g_pid;

static void sendall(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static void reply_submit_ok(int fd, const proto_request *r)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 12);
    proto_kv_u64(&pk, "id", r->id);
    proto_kv_str(&pk, "op", "submit");
    proto_kv_bool(&pk, "ok", 1);
    proto_kv_u64(&pk, "status", 200);
    proto_pack_cstr(&pk, "headers");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 2);
    proto_pack_cstr(&pk, "X-Method");
    proto_pack_strn(&pk, r->method.p, r->method.n);
    proto_kv_bin(&pk, "body", r->url.p, r->url.n); /* echo the url: tests match results by it */
    proto_kv_str(&pk, "proxy", "socks5://127.0.0.1:1080");
    proto_kv_u64(&pk, "attempts", 1);
    proto_kv_u64(&pk, "race", 2);
    proto_kv_u64(&pk, "latency_ms", 5);
    proto_kv_u64(&pk, "elapsed_ms", r->n_headers); /* lets a test see its headers arrived */
    proto_kv_u64(&pk, "x_body_len", r->body.n);
    sendall(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void reply_error(int fd, uint64_t id, const char *op, const char *code)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 8);
    proto_kv_u64(&pk, "id", id);
    proto_kv_str(&pk, "op", op);
    proto_kv_bool(&pk, "ok", 0);
    proto_kv_str(&pk, "error", code);
    proto_kv_str(&pk, "message", "fake");
    proto_kv_str(&pk, "host", "example.com");
    proto_kv_u64(&pk, "attempts", 0);
    proto_kv_str(&pk, "last_error", "");
    sendall(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void reply_hello(int fd, uint64_t id, int worker)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 13);
    proto_kv_u64(&pk, "id", id);
    proto_kv_str(&pk, "op", "hello");
    proto_kv_bool(&pk, "ok", 1);
    proto_kv_u64(&pk, "protocol", 1);
    proto_kv_str(&pk, "version", "0.1.0");
    proto_kv_u64(&pk, "workers", NW);
    proto_kv_u64(&pk, "worker", (uint64_t)worker);
    proto_pack_cstr(&pk, "worker_sockets");
    msgpack_pack_array(&pk, NW);
    for (int w = 1; w <= NW; w++) {
        char p[128];
        snprintf(p, sizeof p, "%s.%d", g_sock, w);
        proto_pack_cstr(&pk, p);
    }
    proto_kv_u64(&pk, "max_frame", 1 << 20);
    proto_kv_u64(&pk, "max_request_body", 1000);
    proto_kv_u64(&pk, "max_response_body", 1 << 20);
    proto_kv_u64(&pk, "pool_capacity", 100);
    proto_kv_u64(&pk, "max_race", 64);
    sendall(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void reply_status(int fd, uint64_t id)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    proto_kv_u64(&pk, "id", id);
    proto_kv_str(&pk, "op", "status");
    proto_kv_bool(&pk, "ok", 1);
    proto_pack_cstr(&pk, "status");
    msgpack_pack_map(&pk, 1);
    proto_kv_str(&pk, "version", "0.1.0");
    sendall(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static int listen_on(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof sa.sun_path) /* a socket path must fit whole, or the test binds elsewhere */
        _exit(9);
    memcpy(sa.sun_path, path, n + 1);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 64))
        _exit(9);
    return fd;
}

static int seen_before(uint64_t *seen, int *nseen, uint64_t id)
{
    for (int i = 0; i < *nseen; i++)
        if (seen[i] == id)
            return 1;
    if (*nseen < 4096)
        seen[(*nseen)++] = id;
    return 0;
}

static void serve(fake_cfg cfg)
{
    int lfd[1 + NW];
    char path[1 + NW][128];
    for (int i = 0; i <= NW; i++) {
        if (i == 0)
            snprintf(path[i], sizeof path[i], "%s", g_sock);
        else
            snprintf(path[i], sizeof path[i], "%s.%d", g_sock, i);
        lfd[i] = listen_on(path[i]);
    }
    static fconn cs[MAXC];
    static uint64_t seen[4096];
    static uint64_t held[256];
    static int held_fd[256];
    int nseen = 0, nheld = 0, dropped = 0;
    for (int i = 0; i < MAXC; i++)
        cs[i].fd = -1;
    for (;;) {
        struct pollfd pf[1 + NW + MAXC];
        int map[1 + NW + MAXC], n = 0;
        for (int i = 0; i <= NW; i++)
            if (lfd[i] >= 0) {
                pf[n] = (struct pollfd){.fd = lfd[i], .events = POLLIN};
                map[n++] = -1 - i;
            }
        for (int i = 0; i < MAXC; i++)
            if (cs[i].fd >= 0) {
                pf[n] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN};
                map[n++] = i;
            }
        if (poll(pf, (nfds_t)n, -1) < 0)
            continue;
        for (int j = 0; j < n; j++) {
            if (!pf[j].revents)
                continue;
            if (map[j] < 0) {
                int li = -1 - map[j];
                int fd = accept(lfd[li], NULL, NULL);
                for (int i = 0; fd >= 0 && i < MAXC; i++)
                    if (cs[i].fd < 0) {
                        cs[i].fd = fd;
                        cs[i].lidx = li;
                        cs[i].len = 0;
                        cs[i].nsub = 0;
                        fd = -1;
                    }
                if (fd >= 0)
                    close(fd);
                continue;
            }
            fconn *c = &cs[map[j]];
            ssize_t got = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
            if (got <= 0) {
                close(c->fd);
                c->fd = -1;
                continue;
            }
            c->len += (size_t)got;
            size_t off = 0;
            long fl;
            while ((fl = proto_frame_scan(c->buf + off, c->len - off, 1 << 20)) > 0) {
                msgpack_unpacked u;
                msgpack_unpacked_init(&u);
                size_t pos = 0;
                msgpack_unpack_next(&u, (const char *)c->buf + off, (size_t)fl, &pos);
                off += (size_t)fl;
                proto_request r;
                char err[128];
                if (proto_decode_request(&u.data, &r, err, sizeof err)) {
                    reply_error(c->fd, r.id, "error", "bad_request");
                } else if (r.op == OP_HELLO) {
                    reply_hello(c->fd, r.id, c->lidx ? c->lidx : 1);
                } else if (r.op == OP_STATUS) {
                    reply_status(c->fd, r.id);
                } else if (r.op == OP_CANCEL) {
                    for (int h = 0; h < nheld; h++)
                        if (held[h] == r.id && held_fd[h] == c->fd) {
                            reply_error(c->fd, r.id, "submit", "cancelled");
                            held[h] = held[--nheld];
                            held_fd[h] = held_fd[nheld];
                            break;
                        }
                } else if (r.op == OP_SUBMIT) {
                    c->nsub++;
                    if (cfg.drop_after && c->lidx == 1 && !dropped && c->nsub > cfg.drop_after) {
                        /* a worker killed with -9: no replies for what it owed */
                        dropped = 1;
                        close(c->fd);
                        c->fd = -1;
                        if (cfg.drop_forever) {
                            close(lfd[1]);
                            lfd[1] = -1;
                            unlink(path[1]);
                        }
                        msgpack_unpacked_destroy(&u);
                        break;
                    }
                    if (cfg.pool_full_first && !seen_before(seen, &nseen, r.id))
                        reply_error(c->fd, r.id, "submit", "pool_full");
                    else if (cfg.hold_slow && memmem(r.url.p, r.url.n, "slow", 4) && nheld < 256) {
                        held[nheld] = r.id;
                        held_fd[nheld++] = c->fd;
                    } else
                        reply_submit_ok(c->fd, &r);
                }
                msgpack_unpacked_destroy(&u);
            }
            if (c->fd >= 0) {
                memmove(c->buf, c->buf + off, c->len - off);
                c->len -= off;
            }
        }
    }
}

void start_server(fake_cfg cfg)
{
    snprintf(g_sock, sizeof g_sock, "/tmp/sc_test_%d.sock", (int)getpid());
    unlink(g_sock);
    g_pid = fork();
    assert_true(g_pid >= 0);
    if (g_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test must not leave servers behind */
        serve(cfg);
        _exit(0);
    }
    for (int i = 0; i < 200; i++) {
        char last[128];
        snprintf(last, sizeof last, "%s.%d", g_sock, NW);
        if (access(g_sock, F_OK) == 0 && access(last, F_OK) == 0)
            return;
        usleep(10000);
    }
    fail_msg("fake server did not start");
}

void stop_server(void)
{
    if (g_pid > 0) {
        kill(g_pid, SIGKILL);
        waitpid(g_pid, NULL, 0);
        g_pid = 0;
    }
    unlink(g_sock);
    for (int w = 1; w <= NW; w++) {
        char p[128];
        snprintf(p, sizeof p, "%s.%d", g_sock, w);
        unlink(p);
    }
}

