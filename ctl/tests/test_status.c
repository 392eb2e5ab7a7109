/* The human printers: every field of a full status reply shows up, missing fields do not crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"
#include "ctl/status_print.h"

static char *render(void (*fn)(FILE *, const msgpack_object *), const msgpack_sbuffer *sb)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, sb->data, sb->size, &off), MSGPACK_UNPACK_SUCCESS);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(f, &u.data);
    fclose(f);
    msgpack_unpacked_destroy(&u);
    return buf;
}

static void full_status(void **s)
{
    (void)s;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 15);
    proto_kv_str(&pk, "version", "0.1.0");
    proto_pack_cstr(&pk, "redis");
    msgpack_pack_map(&pk, 6);
    proto_kv_u64(&pk, "connected_workers", 2);
    proto_kv_u64(&pk, "read", 900);
    proto_kv_u64(&pk, "claimed", 40);
    proto_kv_u64(&pk, "answered", 930);
    proto_kv_u64(&pk, "left_pending", 10);
    proto_kv_u64(&pk, "dead_letters", 2);
    proto_kv_str(&pk, "shard", "1/3");
    proto_kv_u64(&pk, "shard_dropped", 2000);
    proto_kv_u64(&pk, "uptime_s", 3725);
    proto_kv_u64(&pk, "workers", 2);
    proto_kv_u64(&pk, "worker", 1);
    proto_pack_cstr(&pk, "proxies");
    msgpack_pack_map(&pk, 4);
    proto_kv_u64(&pk, "total", 1000);
    proto_kv_u64(&pk, "healthy", 156);
    proto_kv_u64(&pk, "cooling", 40);
    proto_kv_u64(&pk, "dead", 804);
    proto_pack_cstr(&pk, "tasks");
    msgpack_pack_map(&pk, 2);
    proto_kv_u64(&pk, "pending", 23);
    proto_kv_u64(&pk, "completed", 4800);
    proto_kv_u64(&pk, "inflight", 34);
    proto_pack_cstr(&pk, "throughput");
    msgpack_pack_map(&pk, 3);
    proto_kv_f64(&pk, "1s", 12.5);
    proto_kv_f64(&pk, "10s", 11.0);
    proto_kv_f64(&pk, "60s", 10.25);
    proto_kv_f64(&pk, "success_rate_1m", 0.87);
    proto_kv_f64(&pk, "avg_latency_ms", 412.4);
    proto_pack_cstr(&pk, "hosts");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 3);
    proto_kv_str(&pk, "name", "example.com");
    proto_kv_str(&pk, "circuit", "half_open");
    proto_kv_u64(&pk, "interval_ms", 1000);
    proto_pack_cstr(&pk, "stalls");
    msgpack_pack_map(&pk, 2);
    proto_kv_u64(&pk, "skip_ratelimit", 77);
    proto_kv_u64(&pk, "attempts_cancelled", 9);
    char *out = render(print_status, &sb);
    static const char *want[] = {"0.1.0", "01h02m05s", "12.5/s (1s)", "10.2/s (60s)", "87.0%", "412 ms",
                                 "in flight 34", "156 healthy / 40 cooling / 804 dead / 1000 total",
                                 "23 pending", "4800 completed", "example.com", "half_open", "1000ms",
                                 "ratelimit 77", "cancelled 9", "shard       1/3 (2000 proxies",
                                 "redis       2 of 2 workers connected; entries read 900, claimed 40, answered 930, "
                                 "left pending 10, dead letters 2"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i]))
            fail_msg("'%s' missing from:\n%s", want[i], out);
    free(out);
    msgpack_sbuffer_destroy(&sb);
}

static void empty_and_proxies(void **s)
{
    (void)s;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 0);
    char *none = render(print_status, &sb);
    assert_null(strstr(none, "shard")); /* 0/1 or absent (an older daemon): no line */
    assert_null(strstr(none, "redis"));
    free(none);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    proto_kv_u64(&pk, "total", 5);
    proto_pack_cstr(&pk, "proxies");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 4);
    proto_kv_str(&pk, "url", "socks5://u:***@10.0.0.1:1080");
    proto_kv_str(&pk, "state", "active");
    proto_pack_cstr(&pk, "rate");
    msgpack_pack_nil(&pk);
    proto_pack_cstr(&pk, "hosts");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 4);
    proto_kv_str(&pk, "host", "example.com");
    proto_kv_f64(&pk, "window_rate", 0.5);
    proto_kv_u64(&pk, "cooldown_ms", 2500);
    proto_kv_bool(&pk, "dead", 1);
    char *out = render(print_proxies, &sb);
    static const char *want[] = {"5 proxies, 1 shown", "socks5://u:***@10.0.0.1:1080", "active", " 50.0%",
                                 "cooling 2500ms", "DEAD"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i]))
            fail_msg("'%s' missing from:\n%s", want[i], out);
    free(out);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_status),
        cmocka_unit_test(empty_and_proxies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
