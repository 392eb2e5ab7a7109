/* Proxy address parsing: every accepted form, hostile input, canonical round-trip, private
 * address detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netdb.h>
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

/* A lookup result built by hand: the addresses a hostile DNS server could hand out. */
typedef struct {
    struct addrinfo ai[4];
    struct sockaddr_storage sa[4];
} fake_res;

static const struct addrinfo *fake(fake_res *f, const char *const *ips, int n)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < n; i++) {
        struct addrinfo *ai = &f->ai[i];
        if (strchr(ips[i], ':')) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&f->sa[i];
            s6->sin6_family = AF_INET6;
            assert_int_equal(inet_pton(AF_INET6, ips[i], &s6->sin6_addr), 1);
            ai->ai_family = AF_INET6;
            ai->ai_addrlen = sizeof *s6;
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&f->sa[i];
            s4->sin_family = AF_INET;
            assert_int_equal(inet_pton(AF_INET, ips[i], &s4->sin_addr), 1);
            ai->ai_family = AF_INET;
            ai->ai_addrlen = sizeof *s4;
        }
        ai->ai_socktype = SOCK_STREAM;
        ai->ai_addr = (struct sockaddr *)&f->sa[i];
        ai->ai_next = i + 1 < n ? &f->ai[i + 1] : NULL;
    }
    return n ? f->ai : NULL;
}

/* pick(allow_private, "name:port", ips...) -> result; *host gets the host afterwards */
static paddr_result pick(int allow, const char *line, char *host, int n, const char *const *ips)
{
    shm_proxy_addr a;
    fake_res f;
    assert_int_equal(parse(line, &a), PADDR_OK);
    paddr_result r = paddr_pick(&a, fake(&f, ips, n), allow);
    strcpy(host, a.host);
    return r;
}

static void test_pick_checks_every_address(void **state)
{
    (void)state;
    char host[SHM_ADDR_HOST_MAX];
    /* a public first answer does not hide a private second one (the finding: a name that
     * resolves to 127.0.0.1 got past the private rule) */
    const char *const pub_then_lo[] = {"93.184.216.34", "127.0.0.1"};
    assert_int_equal(pick(0, "vm.example:41003", host, 2, pub_then_lo), PADDR_PRIVATE);
    const char *const v6_then_private[] = {"2001:db8::1", "10.0.0.7"};
    assert_int_equal(pick(0, "socks5://p.example:1080", host, 2, v6_then_private), PADDR_PRIVATE);
    const char *const ula[] = {"fd12::1"};
    assert_int_equal(pick(0, "p.example:1080", host, 1, ula), PADDR_PRIVATE);
    const char *const mapped[] = {"::ffff:192.168.1.1"};
    assert_int_equal(pick(0, "p.example:1080", host, 1, mapped), PADDR_PRIVATE);
    /* allowed: the checked address replaces the name, IPv4 preferred */
    assert_int_equal(pick(1, "vm.example:41003", host, 2, pub_then_lo), PADDR_OK);
    assert_string_equal(host, "93.184.216.34");
    const char *const v6_v4[] = {"2001:db8::1", "198.51.100.7", "203.0.113.9"};
    assert_int_equal(pick(0, "p.example:1080", host, 3, v6_v4), PADDR_OK);
    assert_string_equal(host, "198.51.100.7");
    const char *const v6_only[] = {"2001:DB8:0::5"};
    assert_int_equal(pick(0, "p.example:1080", host, 1, v6_only), PADDR_OK);
    assert_string_equal(host, "2001:db8::5");
    /* no address at all */
    assert_int_equal(pick(0, "p.example:1080", host, 0, NULL), PADDR_UNRESOLVED);
    assert_string_equal(paddr_strerror(PADDR_UNRESOLVED), "name does not resolve");
    assert_string_equal(paddr_strerror(PADDR_PRIVATE), "private or loopback address");
}

/* Real lookups, of names every system has in /etc/hosts only: no DNS server is asked. */
static void test_resolve_localhost(void **state)
{
    (void)state;
    shm_proxy_addr a;
    int gai = -1;
    assert_int_equal(parse("socks5://localhost:41003", &a), PADDR_OK);
    assert_int_equal(paddr_resolve(&a, 0, &gai), PADDR_PRIVATE);
    assert_int_equal(gai, 0);
    assert_int_equal(parse("LOCALHOST:41003", &a), PADDR_OK);
    assert_int_equal(paddr_resolve(&a, 0, NULL), PADDR_PRIVATE);
    /* allowed: the name is gone, the loopback address it was checked as is what is kept */
    assert_int_equal(parse("socks5://u:p@localhost:41003", &a), PADDR_OK);
    assert_false(paddr_is_ip(&a));
    assert_int_equal(paddr_resolve(&a, 1, &gai), PADDR_OK);
    assert_true(paddr_is_ip(&a));
    assert_true(strcmp(a.host, "127.0.0.1") == 0 || strcmp(a.host, "::1") == 0);
    assert_true(paddr_is_private(&a));
    assert_int_equal(a.port, 41003);
    assert_string_equal(a.user, "u");
    assert_string_equal(a.pass, "p");
    char buf[600];
    assert_true(paddr_format(&a, buf, sizeof buf) > 0);
    assert_true(strcmp(buf, "socks5://u:p@127.0.0.1:41003") == 0 || strcmp(buf, "socks5://u:p@[::1]:41003") == 0);
    /* IP literals are checked without a lookup and left as they are */
    assert_int_equal(parse("127.0.0.1:80", &a), PADDR_OK);
    assert_int_equal(paddr_resolve(&a, 0, NULL), PADDR_PRIVATE);
    assert_int_equal(paddr_resolve(&a, 1, NULL), PADDR_OK);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(parse("[2001:db8::1]:80", &a), PADDR_OK);
    assert_int_equal(paddr_resolve(&a, 0, NULL), PADDR_OK);
    assert_string_equal(a.host, "2001:db8::1");
    assert_int_equal(parse("[::1]:80", &a), PADDR_OK);
    assert_int_equal(paddr_resolve(&a, 0, NULL), PADDR_PRIVATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_forms), cmocka_unit_test(test_skip),
        cmocka_unit_test(test_bad_ports),  cmocka_unit_test(test_bad_hosts),
        cmocka_unit_test(test_hostile),    cmocka_unit_test(test_format),
        cmocka_unit_test(test_private),
        cmocka_unit_test(test_pick_checks_every_address),
        cmocka_unit_test(test_resolve_localhost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
