/* scatterctl top's frame: every number where it belongs, the window's width and height kept,
 * hosts that do not fit counted, escape codes only on a terminal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"
#include "ctl/top.h"

/* A status map with nhosts hosts; host i is "host<i>.example" with circuit open for i == 1. */
static void pack_status(msgpack_sbuffer *sb, unsigned nhosts)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 10);
    proto_kv_str(&pk, "version", "0.1.0");
    proto_kv_u64(&pk, "uptime_s", 3725);
    proto_kv_u64(&pk, "workers", 2);
    proto_pack_cstr(&pk, "proxies");
    msgpack_pack_map(&pk, 4);
    proto_kv_u64(&pk, "total", 1000);
    proto_kv_u64(&pk, "healthy", 156);
    proto_kv_u64(&pk, "cooling", 40);
    proto_kv_u64(&pk, "dead", 804);
    proto_pack_cstr(&pk, "tasks");
    msgpack_pack_map(&pk, 5);
    proto_kv_u64(&pk, "pending", 250);
    proto_kv_u64(&pk, "submitted", 5100);
    proto_kv_u64(&pk, "completed", 4800);
    proto_kv_u64(&pk, "failed", 17);
    proto_kv_u64(&pk, "cancelled", 3);
    proto_kv_u64(&pk, "inflight", 34);
    proto_pack_cstr(&pk, "throughput");
    msgpack_pack_map(&pk, 3);
    proto_kv_f64(&pk, "1s", 12.5);
    proto_kv_f64(&pk, "10s", 11.0);
    proto_kv_f64(&pk, "60s", 10.25);
    proto_kv_f64(&pk, "success_rate_1m", 0.87);
    proto_kv_f64(&pk, "avg_latency_ms", 412.4);
    proto_pack_cstr(&pk, "hosts");
    msgpack_pack_array(&pk, nhosts);
    for (unsigned i = 0; i < nhosts; i++) {
        char name[32];
        snprintf(name, sizeof name, "host%u.example", i);
        msgpack_pack_map(&pk, 8);
        proto_kv_str(&pk, "name", name);
        proto_kv_str(&pk, "circuit", i == 1 ? "open" : "closed");
        proto_kv_u64(&pk, "healthy", 100 + i);
        proto_kv_u64(&pk, "cooling", 7);
        proto_kv_u64(&pk, "dead", 3);
        proto_kv_u64(&pk, "success", 9000 + i);
        proto_kv_u64(&pk, "fail", 21);
        proto_kv_u64(&pk, "target_errors", 5);
    }
}

static char *render(unsigned nhosts, const top_view *v)
{
    msgpack_sbuffer sb;
    pack_status(&sb, nhosts);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    top_render(f, &u.data, v);
    fclose(f);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    return buf;
}

static void want_all(const char *out, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strstr(out, want[i]))
            fail_msg("'%s' missing from:\n%s", want[i], out);
}

static unsigned count_lines(const char *s)
{
    unsigned n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void plain_frame_has_everything(void **s)
{
    (void)s;
    top_view v = {.pool_capacity = 1000, .interval_ms = 1000, .clock = "12:34:56"};
    char *out = render(2, &v);
    static const char *want[] = {"scatterd 0.1.0", "up 1h02m05s", "workers 2", "12:34:56", "12.5/s (1s)",
                                 "11.0/s (10s)", "10.2/s (60s)", "87.0% (last minute)", "412 ms",
                                 "250 / 1000 tasks (25%)", "in flight 34 attempts", "5100 submitted",
                                 "4800 completed", "17 failed", "3 cancelled",
                                 "156 healthy / 40 cooling / 804 dead / 1000 total", "HOST", "CIRCUIT"};
    want_all(out, want, sizeof want / sizeof want[0]);
    /* a host row: name, circuit and its proxy counts in order */
    const char *row = strstr(out, "host1.example");
    assert_non_null(row);
    char name[32], circuit[16];
    unsigned long healthy, cooling, dead, ok, fail, tgt;
    assert_int_equal(sscanf(row, "%31s %15s %lu %lu %lu %lu %lu %lu", name, circuit, &healthy, &cooling, &dead, &ok,
                            &fail, &tgt),
                     8);
    assert_string_equal(circuit, "open");
    assert_int_equal(healthy, 101);
    assert_int_equal(cooling, 7);
    assert_int_equal(dead, 3);
    assert_int_equal(ok, 9001);
    assert_int_equal(fail, 21);
    assert_int_equal(tgt, 5);
    assert_null(strchr(out, '\033')); /* no escape codes off a terminal */
    assert_null(strstr(out, "q: quit"));
    assert_int_equal(count_lines(out), 10); /* 6 + blank + header + 2 hosts */
    free(out);
}

static void window_is_kept(void **s)
{
    (void)s;
    top_view v = {.cols = 40, .rows = 14, .tty = 1, .pool_capacity = 1000, .interval_ms = 1000, .clock = "x"};
    char *out = render(30, &v);
    /* 14 rows: separated by 13 newlines, so the bottom row never scrolls */
    assert_int_equal(count_lines(out), 13);
    /* no line longer than 40 visible characters (escape sequences aside) */
    unsigned col = 0;
    for (const char *p = out; *p; p++) {
        if (*p == '\033') {
            while (*p && !(*p >= 'A' && *p <= 'Z') && !(*p >= 'a' && *p <= 'z'))
                p++;
            continue;
        }
        if (*p == '\n') {
            col = 0;
            continue;
        }
        if (++col > 40)
            fail_msg("a line is wider than 40 columns:\n%s", out);
    }
    /* 14 - 8 (summary, blank, table header) - 1 (footer) = 5 rows: 4 hosts and the count */
    assert_non_null(strstr(out, "host3.example"));
    assert_null(strstr(out, "host4.example"));
    assert_non_null(strstr(out, "... 26 more hosts"));
    assert_non_null(strstr(out, "q: quit"));
    assert_non_null(strstr(out, "\033[1;31mhost1.example")); /* the open circuit stands out */
    assert_non_null(strstr(out, "\033[7mHOST"));
    free(out);

    /* taller than the frame: the footer goes to the bottom row */
    top_view tall = {.cols = 100, .rows = 30, .tty = 1, .pool_capacity = 10, .interval_ms = 500};
    out = render(1, &tall);
    assert_int_equal(count_lines(out), 29);
    const char *last = strrchr(out, '\n');
    assert_non_null(strstr(last, "q: quit   refresh every 0.5 s   1 host"));
    free(out);
}

static void missing_fields(void **s)
{
    (void)s;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    top_view v = {0};
    top_render(f, &u.data, &v);
    fclose(f);
    static const char *want[] = {"scatterd -", "0 / 0 tasks (0%)", "(no hosts yet)"};
    want_all(buf, want, sizeof want / sizeof want[0]);
    free(buf);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_frame_has_everything),
        cmocka_unit_test(window_is_kept),
        cmocka_unit_test(missing_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
