#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
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

static msgpack_object unpack_one(msgpack_unpacked *u, const msgpack_sbuffer *b)
{
    size_t off = 0;
    msgpack_unpacked_init(u);
    assert_int_equal(msgpack_unpack_next(u, b->data, b->size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, b->size); /* one message, nothing after it */
    return u->data;
}

static void map_counts_its_pairs(void **s)
{
    (void)s;
    msgpack_sbuffer b;
    msgpack_sbuffer_init(&b);
    proto_map m, sub, elem;
    proto_map_begin(&m, &b);
    proto_map_str(&m, "op", "status");
    proto_map_strn(&m, "name", "abcdef", 3);
    proto_map_u64(&m, "id", 1ULL << 40);
    proto_map_i64(&m, "neg", -5);
    proto_map_f64(&m, "rate", 0.25);
    proto_map_bool(&m, "ok", 1);
    proto_map_bin(&m, "body", "\0\1", 2);
    proto_map_nil(&m, "none");
    proto_map_sub(&m, "inner", &sub);
    proto_map_u64(&sub, "a", 1);
    proto_map_u64(&sub, "b", 2);
    assert_int_equal(proto_map_end(&sub), 0);
    msgpack_pack_array(proto_map_key(&m, "list"), 2);
    for (int i = 0; i < 2; i++) {
        proto_map_nested(&elem, &m);
        for (int j = 0; j <= i; j++)
            proto_map_u64(&elem, j ? "y" : "x", (uint64_t)(10 * i + j));
        assert_int_equal(proto_map_end(&elem), 0);
    }
    proto_map_sub(&m, "empty", &sub);
    assert_int_equal(proto_map_end(&sub), 0);
    assert_int_equal(proto_map_end(&m), 0);
    assert_int_equal(proto_frame_scan((const uint8_t *)b.data, b.size, 1 << 20), (long)b.size);

    msgpack_unpacked u;
    msgpack_object o = unpack_one(&u, &b);
    assert_int_equal(o.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(o.via.map.size, 11);
    proto_str ps;
    uint64_t v;
    double f;
    int ok;
    assert_int_equal(proto_get_str(&o, "op", &ps), 0);
    assert_int_equal(ps.n, 6);
    assert_memory_equal(ps.p, "status", 6);
    assert_int_equal(proto_get_str(&o, "name", &ps), 0);
    assert_int_equal(ps.n, 3);
    assert_int_equal(proto_get_u64(&o, "id", &v), 0);
    assert_true(v == 1ULL << 40);
    assert_int_equal(proto_map_get(&o, "neg")->via.i64, -5);
    assert_int_equal(proto_get_f64(&o, "rate", &f), 0);
    assert_true(f == 0.25);
    assert_int_equal(proto_get_bool(&o, "ok", &ok), 0);
    assert_int_equal(ok, 1);
    assert_int_equal(proto_map_get(&o, "body")->type, MSGPACK_OBJECT_BIN);
    assert_int_equal(proto_map_get(&o, "none")->type, MSGPACK_OBJECT_NIL);
    const msgpack_object *in = proto_map_get(&o, "inner");
    assert_int_equal(in->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(in->via.map.size, 2);
    assert_int_equal(proto_get_u64(in, "b", &v), 0);
    assert_int_equal(v, 2);
    const msgpack_object *l = proto_map_get(&o, "list");
    assert_int_equal(l->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(l->via.array.ptr[0].via.map.size, 1);
    assert_int_equal(l->via.array.ptr[1].via.map.size, 2);
    assert_int_equal(proto_get_u64(&l->via.array.ptr[1], "y", &v), 0);
    assert_int_equal(v, 11);
    assert_int_equal(proto_map_get(&o, "empty")->via.map.size, 0);
    msgpack_unpacked_destroy(&u);

    /* an empty map alone is a whole message too */
    msgpack_sbuffer_clear(&b);
    proto_map_begin(&m, &b);
    assert_int_equal(proto_map_end(&m), 0);
    o = unpack_one(&u, &b);
    assert_int_equal(o.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(o.via.map.size, 0);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&b);
}

/* The builder writes the bytes a hand-counted msgpack_pack_map would: fixmap below 16 pairs,
 * map16 up to 65535, for the top map and for maps nested in it or in its arrays. */
static void map_same_bytes_as_hand_counted(void **s)
{
    (void)s;
    char k[16];
    msgpack_sbuffer hand, built;
    msgpack_sbuffer_init(&hand);
    msgpack_sbuffer_init(&built);
    msgpack_packer hp;
    msgpack_packer_init(&hp, &hand, msgpack_sbuffer_write);
    msgpack_pack_map(&hp, 4);
    proto_kv_u64(&hp, "id", 3);
    proto_pack_cstr(&hp, "many");
    msgpack_pack_map(&hp, 20);
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "k%d", i);
        proto_kv_u64(&hp, k, (uint64_t)i * 1000);
    }
    proto_pack_cstr(&hp, "list");
    msgpack_pack_array(&hp, 2);
    msgpack_pack_map(&hp, 0);
    msgpack_pack_map(&hp, 1);
    proto_kv_str(&hp, "x", "y");
    proto_kv_bool(&hp, "ok", 0);

    proto_map m, sub, el;
    proto_map_begin(&m, &built);
    proto_map_u64(&m, "id", 3);
    proto_map_sub(&m, "many", &sub);
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "k%d", i);
        proto_map_u64(&sub, k, (uint64_t)i * 1000);
    }
    assert_int_equal(proto_map_end(&sub), 0);
    msgpack_pack_array(proto_map_key(&m, "list"), 2);
    proto_map_nested(&el, &m);
    assert_int_equal(proto_map_end(&el), 0);
    proto_map_nested(&el, &m);
    proto_map_str(&el, "x", "y");
    assert_int_equal(proto_map_end(&el), 0);
    proto_map_bool(&m, "ok", 0);
    assert_int_equal(proto_map_end(&m), 0);

    assert_int_equal(built.size, hand.size);
    assert_memory_equal(built.data, hand.data, hand.size);
    msgpack_sbuffer_destroy(&hand);
    msgpack_sbuffer_destroy(&built);
}

/* Past 65535 pairs a map needs map32: the count is not cut to 16 bits. */
static void map_of_many_pairs(void **s)
{
    (void)s;
    enum { N = 70000 };
    msgpack_sbuffer b;
    msgpack_sbuffer_init(&b);
    proto_map m;
    proto_map_begin(&m, &b);
    char k[16];
    for (uint32_t i = 0; i < N; i++) {
        snprintf(k, sizeof k, "k%u", i);
        proto_map_u64(&m, k, i);
    }
    assert_int_equal(proto_map_end(&m), 0);
    assert_int_equal((uint8_t)b.data[0], 0xdf);
    msgpack_unpacked u;
    msgpack_object o = unpack_one(&u, &b);
    assert_int_equal(o.via.map.size, N);
    uint64_t v;
    assert_int_equal(proto_get_u64(&o, "k69999", &v), 0);
    assert_int_equal(v, 69999);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(scan_complete_and_partial),
        cmocka_unit_test(scan_rejects_hostile),
        cmocka_unit_test(decode_requests),
        cmocka_unit_test(map_counts_its_pairs),
        cmocka_unit_test(map_same_bytes_as_hand_counted),
        cmocka_unit_test(map_of_many_pairs),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
