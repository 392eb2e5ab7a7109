/*
 * Proxy address parsing and normalisation.
 *
 * Proxy lists come from the internet, so every line is hostile until proven otherwise: the
 * parser accepts a small, explicit grammar (see proxy_addr.h), rejects anything with control
 * bytes, spaces or ambiguous '@'/':' placement, and produces one normal form so that the same
 * proxy written two ways dedupes to one slot. It never allocates and never reads past `len`.
 */
#include "shm/proxy_addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

/* No real proxy line is longer; refusing early bounds all later work. */
#define PADDR_LINE_MAX 1024

static const char *const scheme_names[] = {"socks5", "socks5h", "socks4", "socks4a", "http"};
#define N_SCHEMES (sizeof(scheme_names) / sizeof(scheme_names[0]))

const char *paddr_scheme_name(shm_scheme s)
{
    return (unsigned)s < N_SCHEMES ? scheme_names[s] : "?";
}

const char *paddr_strerror(paddr_result r)
{
    switch (r) {
    case PADDR_OK: return "ok";
    case PADDR_SKIP: return "blank or comment";
    case PADDR_BAD_SCHEME: return "unknown scheme";
    case PADDR_BAD_HOST: return "bad host";
    case PADDR_BAD_PORT: return "bad port";
    case PADDR_BAD_CREDS: return "bad credentials";
    case PADDR_TOO_LONG: return "too long";
    case PADDR_SYNTAX: return "syntax error";
    case PADDR_PRIVATE: return "private or loopback address";
    case PADDR_UNRESOLVED: return "name does not resolve";
    }
    return "unknown error";
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

static const char *find_char(const char *s, size_t n, char c)
{
    return n ? memchr(s, c, n) : NULL;
}

static size_t count_char(const char *s, size_t n, char c)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == c;
    return k;
}

static paddr_result parse_port(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5)
        return PADDR_BAD_PORT;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return PADDR_BAD_PORT;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return PADDR_BAD_PORT;
    *port = (uint16_t)v;
    return PADDR_OK;
}

/* A user may not contain ':' (it ends the user) nor '/' (URL confusion); a password may. */
static paddr_result copy_cred(const char *s, size_t n, char *out, int is_user)
{
    if (n >= SHM_CRED_MAX)
        return PADDR_TOO_LONG;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '@' || (is_user && (c == ':' || c == '/')))
            return PADDR_BAD_CREDS;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return PADDR_OK;
}

/* DNS name or dotted IPv4. A name whose last label starts with a digit must be a real dotted
 * quad: resolvers accept "0x7f000001" or "2130706433" as 127.0.0.1, which would slip past
 * paddr_is_private. */
static paddr_result copy_name(const char *s, size_t n, char *out)
{
    if (n == 0)
        return PADDR_BAD_HOST;
    if (n >= SHM_ADDR_HOST_MAX)
        return PADDR_TOO_LONG;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return PADDR_BAD_HOST;
            label = 0;
        } else if (is_alpha(c) || is_digit(c) || c == '-') {
            if (label == 0 && c == '-')
                return PADDR_BAD_HOST;
            if (++label > 63)
                return PADDR_BAD_HOST;
        } else {
            return PADDR_BAD_HOST;
        }
        out[i] = to_lower(c);
    }
    out[n] = '\0';
    if (label == 0 || s[n - 1] == '-')
        return PADDR_BAD_HOST; /* empty last label: trailing dot */
    const char *last = strrchr(out, '.');
    last = last ? last + 1 : out;
    if (is_digit(*last)) {
        struct in_addr a4;
        if (inet_pton(AF_INET, out, &a4) != 1)
            return PADDR_BAD_HOST;
    }
    return PADDR_OK;
}

/* Bracket contents: an IPv6 literal, rewritten in inet_ntop's canonical form so that "::1"
 * and "0:0:0:0:0:0:0:1" dedupe. Zone ids ('%') are refused: they name a local interface. */
static paddr_result copy_v6(const char *s, size_t n, char *out)
{
    char tmp[INET6_ADDRSTRLEN];
    struct in6_addr a6;
    if (n == 0 || n >= sizeof(tmp))
        return PADDR_BAD_HOST;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET6, tmp, &a6) != 1)
        return PADDR_BAD_HOST;
    if (inet_ntop(AF_INET6, &a6, out, SHM_ADDR_HOST_MAX) == NULL)
        return PADDR_BAD_HOST;
    return PADDR_OK;
}

static paddr_result parse_hostport(const char *s, size_t n, shm_proxy_addr *out)
{
    if (n > 0 && s[0] == '[') {
        const char *close = find_char(s, n, ']');
        if (close == NULL)
            return PADDR_BAD_HOST;
        size_t hn = (size_t)(close - s) - 1;
        size_t rest = n - hn - 2;
        paddr_result r = copy_v6(s + 1, hn, out->host);
        if (r != PADDR_OK)
            return r;
        if (rest == 0 || close[1] != ':')
            return PADDR_BAD_PORT;
        return parse_port(close + 2, rest - 1, &out->port);
    }
    size_t colons = count_char(s, n, ':');
    if (colons == 0)
        return PADDR_BAD_PORT; /* the port is mandatory */
    if (colons > 1)
        return PADDR_BAD_HOST; /* IPv6 without brackets: host and port are ambiguous */
    const char *colon = find_char(s, n, ':');
    size_t hn = (size_t)(colon - s);
    paddr_result r = copy_name(s, hn, out->host);
    if (r != PADDR_OK)
        return r;
    return parse_port(colon + 1, n - hn - 1, &out->port);
}

paddr_result paddr_parse(const char *line, size_t len, shm_proxy_addr *out)
{
    memset(out, 0, sizeof(*out));
    while (len > 0 && is_space(line[0])) {
        line++;
        len--;
    }
    while (len > 0 && is_space(line[len - 1]))
        len--;
    if (len == 0 || line[0] == '#')
        return PADDR_SKIP;
    if (len > PADDR_LINE_MAX)
        return PADDR_TOO_LONG;
    /* Printable ASCII only: this refuses inner spaces, control bytes, embedded NULs and any
     * non-ASCII byte before a single field is looked at. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c <= 0x20 || c >= 0x7f)
            return PADDR_SYNTAX;
    }

    const char *p = line;
    size_t n = len;
    out->scheme = PROXY_SOCKS5;
    for (size_t i = 0; i + 2 < n; i++) {
        if (p[i] == ':' && p[i + 1] == '/' && p[i + 2] == '/') {
            int found = 0;
            for (size_t k = 0; k < N_SCHEMES; k++) {
                size_t sl = strlen(scheme_names[k]);
                if (sl != i)
                    continue;
                size_t j = 0;
                while (j < sl && to_lower(p[j]) == scheme_names[k][j])
                    j++;
                if (j == sl) {
                    out->scheme = (uint8_t)k;
                    found = 1;
                    break;
                }
            }
            if (!found)
                return PADDR_BAD_SCHEME;
            p += i + 3;
            n -= i + 3;
            break;
        }
        if (!is_alpha(p[i]) && !is_digit(p[i]))
            break; /* scheme names are alphanumeric: no "://" can follow further on */
    }
    /* A trailing '/' after the port is a URL path: not something a proxy address has. */
    if (find_char(p, n, '/') != NULL && find_char(p, n, '@') == NULL)
        return PADDR_SYNTAX;

    size_t ats = count_char(p, n, '@');
    if (ats > 1)
        return PADDR_BAD_CREDS; /* "a@b@host": which host is meant is a guess; refuse */
    if (ats == 1) {
        const char *at = find_char(p, n, '@');
        size_t cn = (size_t)(at - p);
        const char *colon = find_char(p, cn, ':');
        if (colon == NULL || colon == p)
            return PADDR_BAD_CREDS; /* need a non-empty user and a ':' */
        size_t un = (size_t)(colon - p);
        paddr_result r = copy_cred(p, un, out->user, 1);
        if (r == PADDR_OK)
            r = copy_cred(colon + 1, cn - un - 1, out->pass, 0);
        if (r != PADDR_OK) {
            memset(out, 0, sizeof(*out));
            return r;
        }
        p = at + 1;
        n -= cn + 1;
        if (find_char(p, n, '/') != NULL) {
            memset(out, 0, sizeof(*out));
            return PADDR_SYNTAX;
        }
    }
    paddr_result r = parse_hostport(p, n, out);
    if (r != PADDR_OK)
        memset(out, 0, sizeof(*out)); /* never hand back half a password */
    return r;
}

static int format(const shm_proxy_addr *a, char *buf, size_t cap, int redact)
{
    const char *lb = strchr(a->host, ':') ? "[" : "";
    const char *rb = *lb ? "]" : "";
    int n;
    if (a->user[0] != '\0')
        n = snprintf(buf, cap, "%s://%s:%s@%s%s%s:%u", paddr_scheme_name(a->scheme), a->user,
                     redact ? "***" : a->pass, lb, a->host, rb, (unsigned)a->port);
    else
        n = snprintf(buf, cap, "%s://%s%s%s:%u", paddr_scheme_name(a->scheme), lb, a->host, rb,
                     (unsigned)a->port);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return n;
}

int paddr_format(const shm_proxy_addr *a, char *buf, size_t cap)
{
    return format(a, buf, cap, 0);
}

int paddr_format_redacted(const shm_proxy_addr *a, char *buf, size_t cap)
{
    return format(a, buf, cap, 1);
}

static int v4_private(const unsigned char b[4])
{
    return b[0] == 0 ||                              /* "this network", 0.0.0.0 */
           b[0] == 10 ||                             /* RFC 1918 */
           b[0] == 127 ||                            /* loopback */
           (b[0] == 100 && (b[1] & 0xc0) == 64) ||   /* shared address space (CGNAT) */
           (b[0] == 169 && b[1] == 254) ||           /* link-local */
           (b[0] == 172 && (b[1] & 0xf0) == 16) ||   /* RFC 1918 */
           (b[0] == 192 && b[1] == 168);             /* RFC 1918 */
}

static int v6_private(const unsigned char b[16])
{
    static const unsigned char zero[16];
    if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1))
        return 1; /* :: and ::1 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return 1; /* fe80::/10 link-local */
    if ((b[0] & 0xfe) == 0xfc)
        return 1; /* fc00::/7 unique local */
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(b, mapped, 12) == 0)
        return v4_private(b + 12);
    return 0;
}

int paddr_is_ip(const shm_proxy_addr *a)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, a->host, buf) == 1 || inet_pton(AF_INET6, a->host, buf) == 1;
}

int paddr_is_private(const shm_proxy_addr *a)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, a->host, &a4) == 1)
        return v4_private((const unsigned char *)&a4.s_addr);
    if (inet_pton(AF_INET6, a->host, &a6) == 1)
        return v6_private(a6.s6_addr);
    size_t n = strlen(a->host);
    static const char lh[] = "localhost";
    static const char dlh[] = ".localhost";
    if (strcmp(a->host, lh) == 0)
        return 1;
    return n > sizeof(dlh) - 1 && strcmp(a->host + n - (sizeof(dlh) - 1), dlh) == 0;
}

paddr_result paddr_pick(shm_proxy_addr *a, const struct addrinfo *res, int allow_private)
{
    const struct addrinfo *v4 = NULL, *v6 = NULL;
    for (const struct addrinfo *r = res; r; r = r->ai_next) {
        int priv;
        if (r->ai_family == AF_INET && r->ai_addrlen >= sizeof(struct sockaddr_in)) {
            const struct sockaddr_in *sa = (const struct sockaddr_in *)(const void *)r->ai_addr;
            priv = v4_private((const unsigned char *)&sa->sin_addr.s_addr);
            if (!v4)
                v4 = r;
        } else if (r->ai_family == AF_INET6 && r->ai_addrlen >= sizeof(struct sockaddr_in6)) {
            const struct sockaddr_in6 *sa = (const struct sockaddr_in6 *)(const void *)r->ai_addr;
            priv = v6_private(sa->sin6_addr.s6_addr);
            if (!v6)
                v6 = r;
        } else {
            continue;
        }
        /* one private address is enough: which one a later connect would use is not ours
         * to predict (round robin, address sorting, a rebinding DNS server) */
        if (priv && !allow_private)
            return PADDR_PRIVATE;
    }
    /* IPv4 first: proxy lists name IPv4 hosts, and a machine without an IPv6 route would
     * fail every attempt through an IPv6 pick */
    const struct addrinfo *r = v4 ? v4 : v6;
    if (!r)
        return PADDR_UNRESOLVED;
    char ip[INET6_ADDRSTRLEN];
    const void *src = r->ai_family == AF_INET
                          ? (const void *)&((const struct sockaddr_in *)(const void *)r->ai_addr)->sin_addr
                          : (const void *)&((const struct sockaddr_in6 *)(const void *)r->ai_addr)->sin6_addr;
    if (!inet_ntop(r->ai_family, src, ip, sizeof ip))
        return PADDR_UNRESOLVED;
    snprintf(a->host, sizeof a->host, "%s", ip);
    return PADDR_OK;
}

paddr_result paddr_resolve(shm_proxy_addr *a, int allow_private, int *gai_err)
{
    if (gai_err)
        *gai_err = 0;
    if (paddr_is_ip(a))
        return !allow_private && paddr_is_private(a) ? PADDR_PRIVATE : PADDR_OK;
    /* "localhost" and "*.localhost" are loopback by definition (RFC 6761), whatever a
     * resolver says */
    if (!allow_private && paddr_is_private(a))
        return PADDR_PRIVATE;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM; /* one entry per address instead of one per socket type */
    int rc = getaddrinfo(a->host, NULL, &hints, &res);
    if (rc != 0) {
        if (gai_err)
            *gai_err = rc;
        return PADDR_UNRESOLVED;
    }
    paddr_result r = paddr_pick(a, res, allow_private);
    freeaddrinfo(res);
    return r;
}
