/* msgpack <-> JSON conversion used by --json and raw. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"
#include "ctl/jsonconv.h"

static char *convert(const msgpack_sbuffer *sb, jc_bin_mode mode)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, sb->data, sb->size, &off), MSGPACK_UNPACK_SUCCESS);
    json_t *j = jc_from_msgpack(&u.data, mode);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(j);
    msgpack_unpacked_destroy(&u);
    return s;
}

static void all_types(void **s)
{
    (void)s;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 9);
    proto_kv_u64(&pk, "u", 18446744073709551615ull);
    proto_kv_i64(&pk, "i", -5);
    proto_kv_f64(&pk, "f", 0.5);
    proto_kv_bool(&pk, "b", 1);
    proto_pack_cstr(&pk, "n");
    msgpack_pack_nil(&pk);
    proto_kv_bin(&pk, "bin", "\x00\xff\x10", 3);
    proto_kv_strn(&pk, "bad", "a\xff" "b", 3);
    msgpack_pack_uint64(&pk, 7); /* a non-string key */
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, 1);
    proto_pack_cstr(&pk, "x");
    proto_pack_cstr(&pk, "m");
    msgpack_pack_map(&pk, 1);
    proto_kv_u64(&pk, "k", 3);
    char *js = convert(&sb, JC_BIN_BASE64);
    assert_string_equal(js, "{\"u\":1.8446744073709552e19,\"i\":-5,\"f\":0.5,\"b\":true,\"n\":null,\"bin\":\"AP8Q\","
                            "\"bad\":\"a\xef\xbf\xbd" "b\",\"7\":[1,\"x\"],\"m\":{\"k\":3}}");
    free(js);
    js = convert(&sb, JC_BIN_OMIT);
    assert_null(strstr(js, "bin"));
    free(js);
    msgpack_sbuffer_destroy(&sb);
}

static void base64_padding(void **s)
{
    (void)s;
    static const struct { const char *in, *out; } T[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}};
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        char *b = jc_base64(T[i].in, strlen(T[i].in));
        assert_string_equal(b, T[i].out);
        free(b);
    }
}

/* Decoding inverts jc_base64 for every length; padding optional; bad input refused. */
static void base64_decode(void **s)
{
    (void)s;
    uint8_t data[64];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof data; n++) {
        char *enc = jc_base64(data, n);
        uint8_t *dec;
        size_t len;
        assert_int_equal(jc_unbase64(enc, strlen(enc), &dec, &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(dec, data, n);
        free(dec);
        size_t unpadded = strlen(enc);
        while (unpadded && enc[unpadded - 1] == '=')
            unpadded--;
        assert_int_equal(jc_unbase64(enc, unpadded, &dec, &len), 0);
        assert_int_equal(len, n);
        free(dec);
        free(enc);
    }
    uint8_t *dec;
    size_t len;
    assert_int_equal(jc_unbase64("YQ=", 3, &dec, &len), 0);
    assert_int_equal(len, 1);
    assert_int_equal(dec[0], 'a');
    free(dec);
    assert_int_equal(jc_unbase64("Y", 1, &dec, &len), -EINVAL);     /* 6 bits are no byte */
    assert_int_equal(jc_unbase64("YW J", 4, &dec, &len), -EINVAL);  /* blanks are not skipped */
    assert_int_equal(jc_unbase64("YW-_", 4, &dec, &len), -EINVAL);  /* not the URL alphabet */
}

static void json_to_msgpack_round_trip(void **s)
{
    (void)s;
    json_error_t e;
    json_t *j = json_loads("{\"op\":\"proxies\",\"id\":7,\"neg\":-3,\"r\":1.5,\"l\":[true,false,null],\"o\":{}}", 0, &e);
    assert_non_null(j);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(jc_to_msgpack(j, &pk), 0);
    json_decref(j);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    proto_request r;
    char err[128];
    assert_int_equal(proto_decode_request(&u.data, &r, err, sizeof err), 0);
    assert_int_equal(r.op, OP_PROXIES);
    assert_int_equal(r.id, 7);
    assert_int_equal(proto_map_get(&u.data, "neg")->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    msgpack_unpacked_destroy(&u);
    char *back = convert(&sb, JC_BIN_BASE64);
    assert_string_equal(back, "{\"op\":\"proxies\",\"id\":7,\"neg\":-3,\"r\":1.5,\"l\":[true,false,null],\"o\":{}}");
    free(back);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(all_types),
        cmocka_unit_test(base64_padding),
        cmocka_unit_test(base64_decode),
        cmocka_unit_test(json_to_msgpack_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
