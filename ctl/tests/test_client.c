/*
 * Client library against a fake daemon: a forked child that listens on a main socket and two
 * worker sockets under /tmp and speaks just enough of the protocol. Each test starts its own
 * server with the misbehaviour it needs (pool_full, dropped connections, a vanished worker,
 * tasks that only end when cancelled).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

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

#include "common/proto.h"
#include "ctl/scatter_client.h"

#define NW 2
#define MAXC 32

typedef struct {
    int pool_full_first;   /* every task's first submit is answered pool_full */
    int drop_after;        /* worker 1: close its first connection after this many submits */
    int drop_forever;      /* ... and remove worker 1's socket for good */
    int hold_slow;         /* urls containing "slow" are answered only when cancelled */
} fake_cfg;

typedef struct {
    int fd, lidx;
    uint8_t buf[1 << 16];
    size_t len;
    int nsub;
} fconn;

static char g_sock[108];
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
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
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

static void start_server(fake_cfg cfg)
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

static void stop_server(void)
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

static int teardown(void **s)
{
    (void)s;
    stop_server();
    return 0;
}

static sc_client *open_client(unsigned window, int reconnect_ms)
{
    sc_options o = {.socket_path = g_sock, .window = window, .reconnect_ms = reconnect_ms};
    sc_client *c = NULL;
    char err[256] = "";
    int rc = sc_client_open(&o, &c, err, sizeof err);
    if (rc)
        fail_msg("open: %s", err);
    return c;
}

/* Submits n tasks with urls http://example.com/<i> (slow ones if asked) and collects every
 * result, checking each task ends exactly once; returns how many were resubmitted. */
static unsigned run_tasks(sc_client *c, int n, int expect_ok)
{
    char *seen = calloc((size_t)n, 1);
    unsigned resubmitted = 0;
    int submitted = 0, got = 0;
    while (got < n) {
        while (submitted < n) {
            char url[64];
            snprintf(url, sizeof url, "http://example.com/%d", submitted);
            sc_request rq = {.url = url};
            int rc = sc_submit(c, &rq, (void *)(intptr_t)submitted, NULL, NULL, 0);
            if (rc == -EAGAIN)
                break;
            assert_int_equal(rc, 0);
            submitted++;
        }
        sc_result *r;
        int rc = sc_next_result(c, 5000, &r);
        assert_int_equal(rc, 1);
        int i = (int)(intptr_t)r->user;
        assert_true(i >= 0 && i < n);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        if (expect_ok) {
            assert_true(r->ok);
            char url[64];
            snprintf(url, sizeof url, "http://example.com/%d", i);
            if (r->body_len != strlen(url) || memcmp(r->body, url, r->body_len))
                fail_msg("task %d (id %llx) got body '%s'", i, (unsigned long long)r->id, (const char *)r->body);
        }
        resubmitted += r->resubmits > 0;
        sc_result_free(r);
        got++;
    }
    sc_result *r;
    assert_int_equal(sc_next_result(c, 0, &r), -ENOENT);
    free(seen);
    return resubmitted;
}

static void hello_and_connections(void **s)
{
    (void)s;
    start_server((fake_cfg){0});
    sc_client *c = open_client(0, 0);
    const sc_server_info *in = sc_client_info(c);
    assert_int_equal(in->protocol, 1);
    assert_int_equal(in->workers, NW);
    assert_int_equal(in->pool_capacity, 100);
    assert_string_equal(in->version, "0.1.0");
    assert_int_equal(sc_client_connections(c), NW);
    assert_int_equal(sc_client_window(c), 200); /* 2 x pool_capacity */
    sc_client_free(c);
    stop_server();
}

static void submit_and_result(void **s)
{
    (void)s;
    start_server((fake_cfg){0});
    sc_client *c = open_client(8, 0);
    sc_header h[2] = {{"Accept", "*/*"}, {"X-A", "b"}};
    char url[] = "http://example.com/x";
    sc_request rq = {.url = url, .method = "POST", .headers = h, .n_headers = 2, .body = "hi", .body_len = 2,
                     .race_width = 3, .timeout_ms = 0, .has_timeout = 1};
    uint64_t id;
    assert_int_equal(sc_submit(c, &rq, url, &id, NULL, 0), 0);
    url[0] = 'X'; /* the library copied it */
    sc_result *r;
    assert_int_equal(sc_next_result(c, 5000, &r), 1);
    assert_true(r->ok);
    assert_int_equal(r->id, id);
    assert_ptr_equal(r->user, url);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->code, "ok");
    assert_int_equal(r->error, SC_OK);
    assert_string_equal(r->proxy, "socks5://127.0.0.1:1080");
    assert_int_equal(r->race, 2);
    assert_int_equal(r->elapsed_ms, 2); /* the fake echoes the header count there */
    assert_int_equal(r->n_headers, 1);
    assert_string_equal(r->headers[0].name, "X-Method");
    assert_string_equal(r->headers[0].value, "POST");
    assert_memory_equal(r->body, "http://example.com/x", r->body_len);
    sc_result_free(r);
    assert_int_equal(run_tasks(c, 100, 1), 0);
    sc_client_free(c);
    stop_server();
}

static void window_and_validation(void **s)
{
    (void)s;
    start_server((fake_cfg){.hold_slow = 1});
    sc_client *c = open_client(3, 0);
    sc_request rq = {.url = "http://example.com/slow"};
    char err[128];
    for (int i = 0; i < 3; i++)
        assert_int_equal(sc_submit(c, &rq, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(sc_submit(c, &rq, NULL, NULL, err, sizeof err), -EAGAIN);
    sc_request big = {.url = "http://example.com/", .body = err, .body_len = 1001};
    assert_int_equal(sc_submit(c, &big, NULL, NULL, err, sizeof err), -EMSGSIZE);
    sc_request none = {0};
    assert_int_equal(sc_submit(c, &none, NULL, NULL, err, sizeof err), -EINVAL);
    sc_result *r;
    assert_int_equal(sc_next_result(c, 100, &r), 0); /* held by the server: timeout */
    sc_client_free(c); /* outstanding tasks are simply dropped, without leaks */
    stop_server();
}

static void pool_full_is_transparent(void **s)
{
    (void)s;
    start_server((fake_cfg){.pool_full_first = 1});
    sc_client *c = open_client(16, 0);
    assert_int_equal(run_tasks(c, 40, 1), 40);
    sc_client_free(c);
    stop_server();
}

static void dropped_connection_resubmits(void **s)
{
    (void)s;
    start_server((fake_cfg){.drop_after = 3});
    sc_client *c = open_client(32, 0);
    assert_true(run_tasks(c, 200, 1) > 0);
    assert_int_equal(sc_client_connections(c), NW);
    sc_client_free(c);
    stop_server();
}

static void vanished_worker_falls_back(void **s)
{
    (void)s;
    start_server((fake_cfg){.drop_after = 3, .drop_forever = 1});
    sc_client *c = open_client(32, 300);
    assert_true(run_tasks(c, 200, 1) > 0);
    usleep(400 * 1000); /* past reconnect_ms: the next round gives worker 1 up */
    run_tasks(c, 20, 1);
    assert_int_equal(sc_client_connections(c), NW - 1);
    sc_client_free(c);
    stop_server();
}

static void cancel_yields_one_result(void **s)
{
    (void)s;
    start_server((fake_cfg){.hold_slow = 1});
    sc_client *c = open_client(8, 0);
    sc_request slow = {.url = "http://example.com/slow"};
    uint64_t a, b;
    assert_int_equal(sc_submit(c, &slow, NULL, &a, NULL, 0), 0);
    sc_result *r;
    assert_int_equal(sc_next_result(c, 100, &r), 0); /* sent, held */
    assert_int_equal(sc_cancel(c, a), 0);
    assert_int_equal(sc_cancel(c, a), -ENOENT); /* already being cancelled */
    assert_int_equal(sc_next_result(c, 5000, &r), 1);
    assert_int_equal(r->id, a);
    assert_false(r->ok);
    assert_string_equal(r->code, "cancelled");
    assert_int_equal(r->error, SC_CANCELLED);
    assert_string_equal(r->host, "example.com");
    sc_result_free(r);
    /* cancelled before it ever left the client */
    assert_int_equal(sc_submit(c, &slow, NULL, &b, NULL, 0), 0);
    assert_int_equal(sc_cancel(c, b), 0);
    assert_int_equal(sc_next_result(c, 5000, &r), 1);
    assert_int_equal(r->id, b);
    assert_string_equal(r->code, "cancelled");
    sc_result_free(r);
    assert_int_equal(sc_cancel(c, b), -ENOENT);
    assert_int_equal(sc_cancel(c, 12345), -ENOENT);
    sc_client_free(c);
    stop_server();
}

static void daemon_gone_reports_disconnected(void **s)
{
    (void)s;
    start_server((fake_cfg){.hold_slow = 1});
    sc_client *c = open_client(8, 200);
    sc_request slow = {.url = "http://example.com/slow"};
    for (int i = 0; i < 5; i++)
        assert_int_equal(sc_submit(c, &slow, NULL, NULL, NULL, 0), 0);
    sc_result *r;
    assert_int_equal(sc_next_result(c, 100, &r), 0);
    stop_server();
    for (int i = 0; i < 5; i++) {
        assert_int_equal(sc_next_result(c, 5000, &r), 1);
        assert_false(r->ok);
        assert_string_equal(r->code, "disconnected");
        sc_result_free(r);
    }
    assert_int_equal(sc_next_result(c, 0, &r), -ENOENT);
    sc_client_free(c);
}

static void call_returns_reply(void **s)
{
    (void)s;
    start_server((fake_cfg){0});
    sc_client *c = open_client(8, 0);
    msgpack_unpacked rep;
    char err[128];
    assert_int_equal(sc_call(c, "status", 0, 0, NULL, 2000, &rep, err, sizeof err), 0);
    int ok = 0;
    assert_int_equal(proto_get_bool(&rep.data, "ok", &ok), 0);
    assert_true(ok);
    proto_str v;
    assert_int_equal(proto_get_str(proto_map_get(&rep.data, "status"), "version", &v), 0);
    assert_int_equal(v.n, 5);
    msgpack_unpacked_destroy(&rep);
    /* an unknown op: answered with bad_request, same id */
    assert_int_equal(sc_call(c, "nonsense", 0, 0, NULL, 2000, &rep, err, sizeof err), 0);
    proto_str e;
    assert_int_equal(proto_get_str(&rep.data, "error", &e), 0);
    assert_memory_equal(e.p, "bad_request", e.n);
    msgpack_unpacked_destroy(&rep);
    sc_client_free(c);
    stop_server();
}

static void no_daemon(void **s)
{
    (void)s;
    sc_options o = {.socket_path = "/tmp/sc_test_no_such.sock"};
    sc_client *c = NULL;
    char err[256] = "";
    int rc = sc_client_open(&o, &c, err, sizeof err);
    assert_true(rc < 0);
    assert_null(c);
    assert_non_null(strstr(err, "/tmp/sc_test_no_such.sock"));
    setenv("SCATTER_SOCKET", "/tmp/env.sock", 1);
    assert_string_equal(sc_socket_path(NULL), "/tmp/env.sock");
    assert_string_equal(sc_socket_path("/x"), "/x");
    unsetenv("SCATTER_SOCKET");
    assert_string_equal(sc_socket_path(NULL), SC_DEFAULT_SOCKET);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(hello_and_connections, teardown),
        cmocka_unit_test_teardown(submit_and_result, teardown),
        cmocka_unit_test_teardown(window_and_validation, teardown),
        cmocka_unit_test_teardown(pool_full_is_transparent, teardown),
        cmocka_unit_test_teardown(dropped_connection_resubmits, teardown),
        cmocka_unit_test_teardown(vanished_worker_falls_back, teardown),
        cmocka_unit_test_teardown(cancel_yields_one_result, teardown),
        cmocka_unit_test_teardown(daemon_gone_reports_disconnected, teardown),
        cmocka_unit_test_teardown(call_returns_reply, teardown),
        cmocka_unit_test_teardown(no_daemon, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
