#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include "common/proto.h"

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void reset(void)
{
    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

static void scan_complete_and_partial(void **s)
{
    (void)s;
    msgpack_sbuffer_init(&sb);
    reset();
    msgpack_pack_map(&pk, 3);
    proto_kv_str(&pk, "op", "submit");
    proto_kv_u64(&pk, "id", 1ULL << 40);
    proto_pack_cstr(&pk, "headers");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 2);
    proto_pack_cstr(&pk, "Accept");
    proto_pack_cstr(&pk, "*/*");
    long n = (long)sb.size;
    /* every strict prefix needs more; the whole is one message; two back to back give the first */
    for (long i = 0; i < n; i++)
        assert_int_equal(proto_frame_scan((const uint8_t *)sb.data, (size_t)i, 1 << 20), FRAME_NEED_MORE);
    assert_int_equal(proto_frame_scan((const uint8_t *)sb.data, (size_t)n, 1 << 20), n);
    msgpack_sbuffer_write(&sb, sb.data, (size_t)n);
    assert_int_equal(proto_frame_scan((const uint8_t *)sb.data, sb.size, 1 << 20), n);
    assert_int_equal(proto_frame_scan((const uint8_t *)sb.data, sb.size, (size_t)n - 1), FRAME_TOO_LARGE);
    msgpack_sbuffer_destroy(&sb);
}

static void scan_rejects_hostile(void **s)
{
    (void)s;
    /* array32 declaring 2^31 elements in 5 bytes: the allocation attack */
    const uint8_t huge[] = {0xdd, 0x80, 0x00, 0x00, 0x00};
    assert_int_equal(proto_frame_scan(huge, sizeof huge, 1 << 20), FRAME_TOO_LARGE);
    const uint8_t hugemap[] = {0xdf, 0x7f, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(proto_frame_scan(hugemap, sizeof hugemap, 1 << 20), FRAME_TOO_LARGE);
    const uint8_t hugestr[] = {0xdb, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(proto_frame_scan(hugestr, sizeof hugestr, 1 << 20), FRAME_TOO_LARGE);
    const uint8_t reserved[] = {0xc1};
    assert_int_equal(proto_frame_scan(reserved, 1, 1 << 20), FRAME_BAD);
    uint8_t deep[40];
    memset(deep, 0x91, sizeof deep); /* [[[[...]]]] */
    assert_int_equal(proto_frame_scan(deep, sizeof deep, 1 << 20), FRAME_TOO_DEEP);
    const uint8_t scalar[] = {0x2a};
    assert_int_equal(proto_frame_scan(scalar, 1, 16), 1);
}

static int decode(proto_request *r, char *err)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    int rc = proto_decode_request(&u.data, r, err, 256);
    msgpack_unpacked_destroy(&u);
    return rc;
}

static void decode_requests(void **s)
{
    (void)s;
    msgpack_sbuffer_init(&sb);
    proto_request r;
    char err[256];
    reset();
    msgpack_pack_map(&pk, 5);
    proto_kv_str(&pk, "op", "submit");
    proto_kv_u64(&pk, "id", 7);
    proto_kv_str(&pk, "url", "http://x/");
    proto_kv_u64(&pk, "race_width", 2);
    proto_kv_bin(&pk, "body", "ab", 2);
    assert_int_equal(decode(&r, err), 0);
    assert_int_equal(r.op, OP_SUBMIT);
    assert_int_equal(r.id, 7);
    assert_int_equal(r.race_width, 2);
    assert_int_equal(r.body.n, 2);
    assert_int_equal(r.method.n, 3);

    reset();
    msgpack_pack_map(&pk, 2);
    proto_kv_str(&pk, "op", "launch");
    proto_kv_u64(&pk, "id", 9);
    assert_int_equal(decode(&r, err), -1);
    assert_non_null(strstr(err, "unknown op 'launch'"));
    assert_int_equal(r.has_id, 1);
    assert_int_equal(r.id, 9);

    reset();
    msgpack_pack_map(&pk, 4);
    proto_kv_str(&pk, "op", "submit");
    proto_kv_u64(&pk, "id", 1);
    proto_kv_str(&pk, "url", "http://x/");
    proto_pack_cstr(&pk, "headers");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 2);
    proto_pack_cstr(&pk, "X-A\r\nInjected");
    proto_pack_cstr(&pk, "v");
    assert_int_equal(decode(&r, err), -1);
    assert_non_null(strstr(err, "forbidden"));

    reset();
    msgpack_pack_array(&pk, 0);
    assert_int_equal(decode(&r, err), -1);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(scan_complete_and_partial),
        cmocka_unit_test(scan_rejects_hostile),
        cmocka_unit_test(decode_requests),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
