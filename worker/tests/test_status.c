/* The status reply's body packs a complete map whose keys a client finds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include "common/proto.h"
#include "shm/registry.h"
#include "worker/status.h"

static void status_snapshot_packs(void **s)
{
    (void)s;
    shm_table t;
    assert_int_equal(shm_create(&t, 16, 2), 0);
    shm_proxy_addr a;
    memset(&a, 0, sizeof a);
    strcpy(a.host, "127.0.0.1");
    a.port = 1080;
    uint32_t pi, hi;
    assert_true(reg_proxy_add(&t, &a, 1, 0, 1, &pi) >= 0);
    assert_int_equal(reg_host_get(&t, "example.com", &hi), 0);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    proto_map m;
    proto_map_begin(&m, &sb);
    status_pack(&m, &t, shm_now_ms(), 1);
    assert_int_equal(proto_map_end(&m), 0);
    /* the map must be complete: exactly one message, and its keys findable */
    assert_int_equal(proto_frame_scan((const uint8_t *)sb.data, sb.size, 1 << 20), (long)sb.size);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *px = proto_map_get(&u.data, "proxies");
    uint64_t v;
    assert_int_equal(proto_get_u64(px, "total", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(proto_get_u64(px, "healthy", &v), 0);
    assert_int_equal(v, 1);
    const msgpack_object *hosts = proto_map_get(&u.data, "hosts");
    assert_non_null(hosts);
    assert_int_equal(hosts->via.array.size, 1);
    proto_str name;
    assert_int_equal(proto_get_str(&hosts->via.array.ptr[0], "name", &name), 0);
    assert_memory_equal(name.p, "example.com", 11);
    assert_non_null(proto_map_get(proto_map_get(&u.data, "stalls"), "zero_avail"));
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    shm_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest t[] = {cmocka_unit_test(status_snapshot_packs)};
    return cmocka_run_group_tests(t, NULL, NULL);
}
