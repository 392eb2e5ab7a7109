#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "worker/http_req.h"

/* Feeds text (chunk bytes per read, 0 = at once) until one request or refusal; returns it and
 * how many bytes it consumed. */
static http_read feed(http_req *r, const char *text, size_t chunk, size_t *consumed, http_refusal *why)
{
    size_t len = strlen(text), off = 0, avail = 0;
    for (;;) {
        if (off == avail) {
            if (avail == len)
                return HTTP_READ_MORE;
            avail = chunk && len - avail > chunk ? avail + chunk : len;
        }
        size_t used;
        http_read rd = http_req_feed(r, text + off, avail - off, &used, why);
        off += used;
        if (rd != HTTP_READ_MORE) {
            *consumed = off;
            return rd;
        }
    }
}

/* The parsed head moved into an allocation of exactly its length, as fuzz_http does, so a
 * decision reading past the request's bytes is an ASan report. */
static void exact_head(http_req *r)
{
    char *h = malloc(r->head_len ? r->head_len : 1);
    memcpy(h, r->head, r->head_len);
    free(r->head);
    r->head = h;
    r->head_cap = r->head_len;
}

static int connect_of(const char *text, char *key, unsigned long *port, http_refusal *why)
{
    http_req r;
    http_req_init(&r, 1024, 512, NULL);
    size_t used;
    assert_int_equal(feed(&r, text, 0, &used, why), HTTP_READ_DONE);
    assert_int_equal(http_req_method(&r), HTTP_CONNECT);
    exact_head(&r);
    int rc = http_req_connect_target(&r, "443,8443", key, 256, port, why);
    http_req_free(&r);
    return rc;
}

/* The port ends where the URL ends: before, it was read with strtoul on the head, which went
 * on into the header bytes (a header name starting with a digit made a good CONNECT a 400)
 * or, with no header, past the URL's bytes (fuzz_http's first finding). */
static void connect_port_ends_with_the_target(void **s)
{
    (void)s;
    char key[256];
    unsigned long port = 0;
    http_refusal why;
    assert_int_equal(connect_of("CONNECT Example.COM:443 HTTP/1.1\r\n\r\n", key, &port, &why), 0);
    assert_string_equal(key, "example.com:443");
    assert_int_equal(port, 443);
    assert_int_equal(connect_of("CONNECT h:8443 HTTP/1.1\r\n5x: y\r\n\r\n", key, &port, &why), 0);
    assert_int_equal(port, 8443);
    assert_int_equal(connect_of("CONNECT h:22 HTTP/1.1\r\nHost: h\r\n\r\n", key, &port, &why), -1);
    assert_int_equal(why.status, 403);
    assert_non_null(strstr(why.msg, "connect_ports = 443,8443"));
    static const char *const bad[] = {"CONNECT h HTTP/1.1\r\n\r\n", "CONNECT :443 HTTP/1.1\r\n\r\n",
                                      "CONNECT h:0 HTTP/1.1\r\n\r\n", "CONNECT h:65536 HTTP/1.1\r\n\r\n",
                                      "CONNECT h:44x HTTP/1.1\r\n\r\n", "CONNECT h: HTTP/1.1\r\n\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(connect_of(bad[i], key, &port, &why), -1);
        assert_int_equal(why.status, 400);
    }
}

/* Two pipelined requests, read at once and one byte per read: the same two requests. */
static void pipelined_in_any_pieces(void **s)
{
    (void)s;
    const char *two = "GET http://a/1 HTTP/1.1\r\nHost: a\r\n\r\n"
                      "POST http://b/2 HTTP/1.1\r\nContent-Length: 3\r\nX-Scatter-Race: 2\r\n\r\nxyz";
    for (size_t chunk = 0; chunk <= 7; chunk += 1) {
        http_req r;
        http_req_init(&r, 1024, 512, NULL);
        size_t used = 0;
        http_refusal why;
        assert_int_equal(feed(&r, two, chunk, &used, &why), HTTP_READ_DONE);
        assert_int_equal(http_req_method(&r), HTTP_GET);
        char url[256];
        assert_int_equal(http_req_url(&r, url, sizeof url, &why), 0);
        assert_string_equal(url, "http://a/1");
        size_t used2 = 0;
        assert_int_equal(feed(&r, two + used, chunk, &used2, &why), HTTP_READ_DONE);
        assert_int_equal(used + used2, strlen(two));
        assert_int_equal(http_req_method(&r), HTTP_POST);
        assert_int_equal(http_req_url(&r, url, sizeof url, &why), 0);
        assert_string_equal(url, "http://b/2");
        assert_int_equal(r.body_len, 3);
        assert_memory_equal(r.body, "xyz", 3);
        http_knobs k;
        assert_int_equal(http_req_knobs(&r, &k, &why), 0);
        assert_true(k.has_race_width && k.race_width == 2 && !k.has_timeout);
        proto_str hn[HTTP_MAX_HEADERS], hv[HTTP_MAX_HEADERS];
        assert_int_equal(http_req_forward_headers(&r, hn, hv), 1); /* Content-Length; the knob is not */
        http_req_free(&r);
    }
}

static int refusal_of(const char *text)
{
    http_req r;
    http_req_init(&r, 1024, 16, NULL);
    size_t used;
    http_refusal why = {0};
    http_read rd = feed(&r, text, 0, &used, &why);
    http_req_free(&r);
    if (rd != HTTP_READ_BAD)
        return 0;
    assert_true(why.msg[0] && why.code);
    return why.status;
}

static void limits_and_garbage(void **s)
{
    (void)s;
    char big[1200 + 64];
    snprintf(big, sizeof big, "GET http://a/ HTTP/1.1\r\nX-Big: %01100d\r\n\r\n", 0);
    assert_int_equal(refusal_of(big), 431);
    assert_int_equal(refusal_of("PUT http://a/ HTTP/1.1\r\nContent-Length: 17\r\n\r\n"), 413);
    assert_int_equal(refusal_of("PUT http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n"
                                "0123456789abcdefg\r\n0\r\n\r\n"), 413);
    assert_int_equal(refusal_of("HELLO WORLD\r\n\r\n"), 400);
    assert_int_equal(refusal_of("GET http://a/ HTTP/1.1\r\nContent-Length: 16\r\n\r\n"), 0); /* needs more */
}

static int url_of(const char *text, char *url, size_t cap, http_refusal *why)
{
    http_req r;
    http_req_init(&r, 1024, 512, NULL);
    size_t used;
    assert_int_equal(feed(&r, text, 0, &used, why), HTTP_READ_DONE);
    exact_head(&r);
    int rc = http_req_url(&r, url, cap, why);
    http_req_free(&r);
    return rc;
}

static void urls(void **s)
{
    (void)s;
    char url[64];
    http_refusal why;
    assert_int_equal(url_of("GET /fetch?x=1&url=https%3A%2F%2Fh%2Fa+b%2 HTTP/1.1\r\n\r\n", url, sizeof url, &why), 0);
    assert_string_equal(url, "https://h/a b%2"); /* a % without two hex digits stays */
    assert_int_equal(url_of("GET http://h/x HTTP/1.1\r\nX-Scatter-Scheme: HTTPS\r\n\r\n", url, sizeof url, &why), 0);
    assert_string_equal(url, "https://h/x");
    assert_int_equal(url_of("GET http://h/x HTTP/1.1\r\nX-Scatter-Scheme: ftp\r\n\r\n", url, sizeof url, &why), -1);
    assert_int_equal(why.status, 400);
    assert_int_equal(url_of("GET /item/1 HTTP/1.1\r\nHost: h\r\n\r\n", url, sizeof url, &why), -1);
    assert_int_equal(why.status, 400);
    assert_int_equal(url_of("GET /fetch?url=ftp%3A%2F%2Fh%2F HTTP/1.1\r\n\r\n", url, sizeof url, &why), -1);
    assert_int_equal(why.status, 400);
    assert_int_equal(url_of("GET http://h/0123456789012345678901234567890123456789012345678901234567890 HTTP/1.1\r\n\r\n",
                            url, sizeof url, &why), -1);
    assert_int_equal(why.status, 414);
}

static void auth_and_sessions(void **s)
{
    (void)s;
    http_req r;
    http_req_init(&r, 1024, 512, NULL);
    size_t used;
    http_refusal why;
    /* session-abc:secret */
    const char *text = "GET http://h/ HTTP/1.1\r\nProxy-Authorization: Basic c2Vzc2lvbi1hYmM6c2VjcmV0\r\n\r\n";
    assert_int_equal(feed(&r, text, 0, &used, &why), HTTP_READ_DONE);
    exact_head(&r);
    assert_true(http_req_auth_ok(&r, ""));
    assert_true(http_req_auth_ok(&r, "user:secret")); /* a session user with the password */
    assert_false(http_req_auth_ok(&r, "user:other"));
    char buf[256];
    proto_str sess = http_req_session(&r, buf, sizeof buf);
    assert_int_equal(sess.n, 3);
    assert_memory_equal(sess.p, "abc", 3);
    http_req_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connect_port_ends_with_the_target),
        cmocka_unit_test(pipelined_in_any_pieces),
        cmocka_unit_test(limits_and_garbage),
        cmocka_unit_test(urls),
        cmocka_unit_test(auth_and_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
