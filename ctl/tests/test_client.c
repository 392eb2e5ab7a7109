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

#include "ctl/tests/fake_server.h"

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
    assert_int_equal(sc_client_window(c), 75); /* 3/4 of pool_capacity */
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
    assert_int_equal(r->error, ERR_OK);
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
    assert_int_equal(r->error, ERR_CANCELLED);
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
    char p[108];
    setenv("SCATTER_SOCKET", "/tmp/env.sock", 1);
    assert_int_equal(sc_socket_path(NULL, p, sizeof p, err, sizeof err), 0);
    assert_string_equal(p, "/tmp/env.sock");
    assert_int_equal(sc_socket_path("/x", p, sizeof p, err, sizeof err), 0);
    assert_string_equal(p, "/x");
    unsetenv("SCATTER_SOCKET");
    /* the default is the daemon's: in its private runtime directory, never in /tmp */
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    char *saved = xdg ? strdup(xdg) : NULL;
    setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
    assert_int_equal(sc_socket_path(NULL, p, sizeof p, err, sizeof err), 0);
    assert_string_equal(p, geteuid() == 0 ? "/run/scatter/scatter.sock" : "/run/user/4242/scatter/scatter.sock");
    unsetenv("XDG_RUNTIME_DIR");
    if (geteuid() != 0) {
        assert_int_equal(sc_socket_path(NULL, p, sizeof p, err, sizeof err), -ENOENT);
        assert_non_null(strstr(err, "XDG_RUNTIME_DIR"));
    }
    if (saved)
        setenv("XDG_RUNTIME_DIR", saved, 1);
    free(saved);
}

/* A socket served by another user (a squatter on the socket's name) is refused before a
 * byte is sent: the error names the uid and the path. Needs root to become another uid. */
static void foreign_server_refused(void **s)
{
    (void)s;
    if (geteuid() != 0)
        skip();
    char dir[] = "/tmp/sc_test_peer.XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chown(dir, 65534, 65534), 0);
    char path[64];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        if (setgid(65534) || setuid(65534))
            _exit(1);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 8))
            _exit(1);
        if (write(ready[1], "r", 1) != 1)
            _exit(1);
        for (;;) { /* accept and answer nothing: an old client would wait for hello */
            int c = accept(fd, NULL, NULL);
            if (c >= 0)
                sleep(5), close(c);
        }
    }
    close(ready[1]);
    char b;
    assert_int_equal(read(ready[0], &b, 1), 1);
    close(ready[0]);
    sc_options o = {.socket_path = path, .connect_timeout_ms = 1000};
    sc_client *c = NULL;
    char err[512] = "";
    int rc = sc_client_open(&o, &c, err, sizeof err);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    unlink(path);
    rmdir(dir);
    assert_null(c);
    if (rc != -EPERM)
        fail_msg("rc %d, err '%s'", rc, err);
    assert_non_null(strstr(err, "uid 65534"));
    assert_non_null(strstr(err, path));
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
        cmocka_unit_test(foreign_server_refused),
        cmocka_unit_test_teardown(no_daemon, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
