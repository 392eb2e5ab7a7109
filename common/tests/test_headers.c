#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include "common/headers.h"

#define K(s) hdr_classify(s, strlen(s))

static void framing_and_hop_by_hop(void **s)
{
    (void)s;
    assert_int_equal(K("Content-Length"), HDR_FRAMING);
    assert_int_equal(K("content-length"), HDR_FRAMING);
    assert_int_equal(K("TRANSFER-ENCODING"), HDR_FRAMING);
    const char *hop[] = {"Connection", "Keep-Alive", "TE", "Trailer", "Upgrade", "Expect", "Proxy-Authorization",
                         "proxy-connection", "Proxy-Foo"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        assert_int_equal(K(hop[i]), HDR_HOP);
    assert_int_equal(K("Host"), HDR_HOST);
    const char *pass[] = {"Accept", "User-Agent", "Content-Type", "Cookie", "Authorization", "Tex", "Proxy", "X-Te",
                          "Content-Length2"};
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++)
        assert_int_equal(K(pass[i]), HDR_PASS);
    /* the length is what counts, not a NUL */
    assert_int_equal(hdr_classify("Content-Lengthxyz", 14), HDR_FRAMING);
}

static void connection_tokens(void **s)
{
    (void)s;
    const char *v = " close, X-Secret ,keep-alive,,";
    assert_true(hdr_in_connection_list(v, strlen(v), "x-secret", 8));
    assert_true(hdr_in_connection_list(v, strlen(v), "Keep-Alive", 10));
    assert_true(hdr_in_connection_list(v, strlen(v), "close", 5));
    assert_false(hdr_in_connection_list(v, strlen(v), "X-Secre", 7));
    assert_false(hdr_in_connection_list(v, strlen(v), "", 0));
    assert_false(hdr_in_connection_list("", 0, "close", 5));
}

static void host_agreement(void **s)
{
    (void)s;
    assert_true(hdr_host_matches("example.com", 11, "example.com", 80));
    assert_true(hdr_host_matches(" Example.COM ", 13, "example.com", 80));
    assert_true(hdr_host_matches("example.com:80", 14, "example.com", 80));
    assert_false(hdr_host_matches("example.com:8080", 16, "example.com", 80));
    assert_true(hdr_host_matches("example.com:8080", 16, "example.com:8080", 80));
    assert_true(hdr_host_matches("example.com", 11, "example.com:443", 443));
    assert_false(hdr_host_matches("example.com", 11, "example.com:8443", 443));
    assert_false(hdr_host_matches("evil.com", 8, "example.com", 80));
    assert_false(hdr_host_matches("example.com.evil", 16, "example.com", 80));
    assert_true(hdr_host_matches("[::1]:8080", 10, "[::1]:8080", 80));
    assert_true(hdr_host_matches("[::1]", 5, "[::1]", 80));
    assert_false(hdr_host_matches("[::2]", 5, "[::1]", 80));
}

int main(void)
{
    const struct CMUnitTest t[] = {cmocka_unit_test(framing_and_hop_by_hop), cmocka_unit_test(connection_tokens),
                                   cmocka_unit_test(host_agreement)};
    return cmocka_run_group_tests(t, NULL, NULL);
}
