/*
 * `scatterctl fetch` end to end against the fake daemon: a URL file larger than the window,
 * pool_full answers on the way, bodies to DIR/<n>.body, JSON lines with one line per URL,
 * exit codes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/cli.h"
#include "ctl/tests/fake_server.h"

#define N 3000

static int teardown(void **s)
{
    (void)s;
    stop_server();
    return 0;
}

static char *make_input(void)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/sc_fetch_urls_%d.txt", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# urls\n");
    for (int i = 1; i <= N; i++)
        fprintf(f, "http://example.com/%d\n%s", i, i % 100 ? "" : "\n");
    fclose(f);
    return path;
}

static int run_fetch(char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    return cmd_fetch(g_sock, argc, argv);
}

static void jsonl_one_line_per_url(void **s)
{
    (void)s;
    start_server((fake_cfg){.pool_full_first = 1});
    char *in = make_input();
    char out[64];
    snprintf(out, sizeof out, "/tmp/sc_fetch_out_%d.jsonl", (int)getpid());
    char *argv[] = {"fetch", "-i", in, "--jsonl", out, "--window", "64", "--quiet", NULL};
    assert_int_equal(run_fetch(argv), 0);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char *seen = calloc(N + 1, 1);
    char line[4096];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        assert_non_null(j);
        json_int_t n = json_integer_value(json_object_get(j, "n"));
        assert_true(n >= 1 && n <= N);
        assert_int_equal(seen[n], 0);
        seen[n] = 1;
        char want[64];
        snprintf(want, sizeof want, "http://example.com/%d", (int)n);
        assert_string_equal(json_string_value(json_object_get(j, "url")), want);
        assert_true(json_is_true(json_object_get(j, "ok")));
        assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
        assert_int_equal(json_integer_value(json_object_get(j, "bytes")), (json_int_t)strlen(want));
        assert_true(json_is_null(json_object_get(j, "error")));
        json_decref(j);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, N);
    free(seen);
    unlink(out);
    unlink(in);
}

static void bodies_to_dir(void **s)
{
    (void)s;
    start_server((fake_cfg){0});
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/sc_fetch_dir_%d", (int)getpid());
    char *argv[] = {"fetch", "http://example.com/a", "http://example.com/bb", "-o", dir, "--quiet", "-H", "X-A: b", NULL};
    assert_int_equal(run_fetch(argv), 0);
    for (int n = 1; n <= 2; n++) {
        char path[128], body[64] = "";
        snprintf(path, sizeof path, "%s/%d.body", dir, n);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        assert_non_null(fgets(body, sizeof body, f));
        fclose(f);
        assert_string_equal(body, n == 1 ? "http://example.com/a" : "http://example.com/bb");
        unlink(path);
    }
    rmdir(dir);
}

static void failures_exit_1(void **s)
{
    (void)s;
    start_server((fake_cfg){.hold_slow = 1});
    /* the fake holds "slow" urls until cancelled: the daemon dying must still end each one */
    char *argv[] = {"fetch", "http://example.com/ok", "--quiet", NULL};
    assert_int_equal(run_fetch(argv), 0);
    stop_server();
    char *argv2[] = {"fetch", "http://example.com/ok", "--quiet", NULL};
    assert_int_equal(run_fetch(argv2), EXIT_CONNECT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(jsonl_one_line_per_url, teardown),
        cmocka_unit_test_teardown(bodies_to_dir, teardown),
        cmocka_unit_test_teardown(failures_exit_1, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
