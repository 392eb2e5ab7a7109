/* Proxy address parsing: every accepted form, hostile input, canonical round-trip, private
 * address detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "shm/proxy_addr.h"

static paddr_result parse(const char *s, shm_proxy_addr *a)
{
    return paddr_parse(s, strlen(s), a);
}

static void expect_canon(const char *line, const char *canon)
{
    shm_proxy_addr a;
    char buf[600];
    assert_int_equal(parse(line, &a), PADDR_OK);
    assert_true(paddr_format(&a, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, canon);
}

static void test_good_forms(void **state)
{
    (void)state;
    expect_canon("1.2.3.4:1080", "socks5://1.2.3.4:1080");
    expect_canon("  Proxy.Example.COM:8080 \r\n", "socks5://proxy.example.com:8080");
    expect_canon("[2001:DB8::1]:1080", "socks5://[2001:db8::1]:1080");
    expect_canon("[2001:db8:0:0:0:0:0:1]:1080", "socks5://[2001:db8::1]:1080");
    expect_canon("socks5h://h.example:1", "socks5h://h.example:1");
    expect_canon("SOCKS4://1.2.3.4:65535", "socks4://1.2.3.4:65535");
    expect_canon("socks4a://a-b.c:9", "socks4a://a-b.c:9");
    expect_canon("http://user:p%4s$s@1.2.3.4:3128", "http://user:p%4s$s@1.2.3.4:3128");
    expect_canon("alice:secret@1.2.3.4:1080", "socks5://alice:secret@1.2.3.4:1080");
    expect_canon("socks5://u:p:w/x@[::ffff:1.2.3.4]:80", "socks5://u:p:w/x@[::ffff:1.2.3.4]:80");
    expect_canon("u:@h.example:5", "socks5://u:@h.example:5");

    shm_proxy_addr a;
    assert_int_equal(parse("socks5h://bob:pw@[fe80::1]:1080", &a), PADDR_OK);
    assert_int_equal(a.scheme, PROXY_SOCKS5H);
    assert_int_equal(a.port, 1080);
    assert_string_equal(a.host, "fe80::1");
    assert_string_equal(a.user, "bob");
    assert_string_equal(a.pass, "pw");
    /* not NUL-terminated input: only len bytes count */
    assert_int_equal(paddr_parse("1.2.3.4:80xyz", 10, &a), PADDR_OK);
    assert_int_equal(a.port, 80);
}

static void test_skip(void **state)
{
    (void)state;
    shm_proxy_addr a;
    assert_int_equal(parse("", &a), PADDR_SKIP);
    assert_int_equal(parse("   \t\r\n", &a), PADDR_SKIP);
    assert_int_equal(parse("# a comment 1.2.3.4:80", &a), PADDR_SKIP);
    assert_int_equal(paddr_parse(NULL, 0, &a), PADDR_SKIP);
}

static void test_bad_ports(void **state)
{
    (void)state;
    shm_proxy_addr a;
    assert_int_equal(parse("1.2.3.4:", &a), PADDR_BAD_PORT);
    assert_int_equal(parse("1.2.3.4", &a), PADDR_BAD_PORT);
    assert_int_equal(parse("1.2.3.4:0", &a), PADDR_BAD_PORT);
    assert_int_equal(parse("1.2.3.4:65536", &a), PADDR_BAD_PORT);
    assert_int_equal(parse("1.2.3.4:123456", &a), PADDR_BAD_PORT);
    assert_int_equal(parse("1.2.3.4:80a", &a), PADDR_BAD_PORT);
    assert_int_equal(parse("1.2.3.4:abc", &a), PADDR_BAD_PORT);
    assert_int_equal(parse("1.2.3.4:-1", &a), PADDR_BAD_PORT);
    assert_int_equal(parse("1.2.3.4:+80", &a), PADDR_BAD_PORT);
    assert_int_equal(parse("[::1]", &a), PADDR_BAD_PORT);
    assert_int_equal(parse("[::1]80", &a), PADDR_BAD_PORT);
    assert_int_equal(parse("[::1]:", &a), PADDR_BAD_PORT);
}

static void test_bad_hosts(void **state)
{
    (void)state;
    shm_proxy_addr a;
    assert_int_equal(parse(":80", &a), PADDR_BAD_HOST);
    assert_int_equal(parse("2001:db8::1:80", &a), PADDR_BAD_HOST); /* v6 needs brackets */
    assert_int_equal(parse("[2001:db8::1:80", &a), PADDR_BAD_HOST);
    assert_int_equal(parse("[not-v6]:80", &a), PADDR_BAD_HOST);
    assert_int_equal(parse("[fe80::1%eth0]:80", &a), PADDR_BAD_HOST);
    assert_int_equal(parse("[]:80", &a), PADDR_BAD_HOST);
    assert_int_equal(parse("999.1.1.1:80", &a), PADDR_BAD_HOST);
    assert_int_equal(parse("2130706433:80", &a), PADDR_BAD_HOST); /* 127.0.0.1 as a number */
    assert_int_equal(parse("0x7f000001:80", &a), PADDR_BAD_HOST);
    assert_int_equal(parse("host_name.com:80", &a), PADDR_BAD_HOST);
    assert_int_equal(parse("-bad.com:80", &a), PADDR_BAD_HOST);
    assert_int_equal(parse("bad-.com:80", &a), PADDR_BAD_HOST);
    assert_int_equal(parse("a..b:80", &a), PADDR_BAD_HOST);
    assert_int_equal(parse("trailing.dot.:80", &a), PADDR_BAD_HOST);
    assert_int_equal(parse("h\xc3\xa9.com:80", &a), PADDR_SYNTAX); /* non-ASCII */
}

static void test_hostile(void **state)
{
    (void)state;
    shm_proxy_addr a;
    char big[1200];
    /* schemes */
    assert_int_equal(parse("file:///etc/passwd", &a), PADDR_BAD_SCHEME);
    assert_int_equal(parse("gopher://1.2.3.4:70", &a), PADDR_BAD_SCHEME);
    assert_int_equal(parse("https://1.2.3.4:443", &a), PADDR_BAD_SCHEME);
    assert_int_equal(parse("://1.2.3.4:80", &a), PADDR_BAD_SCHEME);
    /* spaces and control characters inside */
    assert_int_equal(parse("1.2.3.4 :80", &a), PADDR_SYNTAX);
    assert_int_equal(parse("socks5:// 1.2.3.4:80", &a), PADDR_SYNTAX);
    assert_int_equal(parse("1.2.3.4:80\x1b[2J", &a), PADDR_SYNTAX);
    assert_int_equal(parse("1.2.3\x7f.4:80", &a), PADDR_SYNTAX);
    assert_int_equal(paddr_parse("1.2.3.4\0:80", 10, &a), PADDR_SYNTAX); /* embedded NUL */
    assert_int_equal(paddr_parse("u:p\0w@1.2.3.4:80", 16, &a), PADDR_SYNTAX);
    /* '@' tricks */
    assert_int_equal(parse("u:p@evil.com@1.2.3.4:80", &a), PADDR_BAD_CREDS);
    assert_int_equal(parse("@1.2.3.4:80", &a), PADDR_BAD_CREDS);
    assert_int_equal(parse(":pw@1.2.3.4:80", &a), PADDR_BAD_CREDS);
    assert_int_equal(parse("user@1.2.3.4:80", &a), PADDR_BAD_CREDS);
    assert_int_equal(parse("us/er:pw@1.2.3.4:80", &a), PADDR_BAD_CREDS);
    /* URL paths */
    assert_int_equal(parse("socks5://1.2.3.4:80/", &a), PADDR_SYNTAX);
    assert_int_equal(parse("u:p@1.2.3.4:80/x", &a), PADDR_SYNTAX);
    /* overlong pieces */
    memset(big, 'a', sizeof(big));
    memcpy(big + 300, ".com:80", 8);
    assert_int_equal(parse(big, &a), PADDR_TOO_LONG); /* 300-byte host */
    memset(big, 'u', 200);
    memcpy(big + 200, ":p@1.2.3.4:80", 14);
    assert_int_equal(parse(big, &a), PADDR_TOO_LONG); /* 200-byte user */
    assert_string_equal(a.user, "");
    big[0] = 'u';
    big[1] = ':';
    memset(big + 2, 'p', 200);
    memcpy(big + 202, "@1.2.3.4:80", 12);
    assert_int_equal(parse(big, &a), PADDR_TOO_LONG); /* 200-byte password */
    assert_string_equal(a.pass, "");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(parse(big, &a), PADDR_TOO_LONG); /* whole line */
    char label[80];
    memset(label, 'x', 64);
    memcpy(label + 64, ".com:80", 8);
    assert_int_equal(parse(label, &a), PADDR_BAD_HOST); /* 64-byte label */
    assert_string_not_equal(paddr_strerror(PADDR_BAD_PORT), paddr_strerror(PADDR_BAD_HOST));
}

static void test_format(void **state)
{
    (void)state;
    shm_proxy_addr a, b;
    char buf[600], red[600], small[8];
    assert_int_equal(parse("http://bob:hunter2@[::1]:8080", &a), PADDR_OK);
    int n = paddr_format(&a, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen("http://bob:hunter2@[::1]:8080"));
    assert_int_equal(parse(buf, &b), PADDR_OK);
    assert_memory_equal(&a, &b, sizeof(a)); /* canonical form round-trips exactly */
    assert_true(paddr_format_redacted(&a, red, sizeof(red)) > 0);
    assert_null(strstr(red, "hunter2"));
    assert_non_null(strstr(red, "bob"));
    assert_int_equal(paddr_format(&a, small, sizeof(small)), -1);
    assert_string_equal(paddr_scheme_name(PROXY_SOCKS5H), "socks5h");
    assert_string_equal(paddr_scheme_name(PROXY_HTTP), "http");
}

static int is_private(const char *line)
{
    shm_proxy_addr a;
    assert_int_equal(parse(line, &a), PADDR_OK);
    return paddr_is_private(&a);
}

static void test_private(void **state)
{
    (void)state;
    assert_true(is_private("127.0.0.1:80"));
    assert_true(is_private("127.255.1.2:80"));
    assert_true(is_private("10.1.2.3:80"));
    assert_true(is_private("172.16.0.1:80"));
    assert_true(is_private("172.31.255.255:80"));
    assert_false(is_private("172.32.0.1:80"));
    assert_true(is_private("192.168.1.1:80"));
    assert_true(is_private("169.254.169.254:80"));
    assert_true(is_private("0.0.0.0:80"));
    assert_true(is_private("localhost:80"));
    assert_true(is_private("LocalHost:80"));
    assert_true(is_private("db.localhost:80"));
    assert_true(is_private("[::1]:80"));
    assert_true(is_private("[::]:80"));
    assert_true(is_private("[fe80::1]:80"));
    assert_true(is_private("[fd00::1]:80"));
    assert_true(is_private("[::ffff:127.0.0.1]:80"));
    assert_false(is_private("8.8.8.8:80"));
    assert_false(is_private("[2001:db8::1]:80"));
    assert_false(is_private("example.com:80"));
    assert_false(is_private("notlocalhost:80"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_forms), cmocka_unit_test(test_skip),
        cmocka_unit_test(test_bad_ports),  cmocka_unit_test(test_bad_hosts),
        cmocka_unit_test(test_hostile),    cmocka_unit_test(test_format),
        cmocka_unit_test(test_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
