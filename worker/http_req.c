/*
 * The request reader of the HTTP front end (worker/http_req.h). The parser's callbacks copy
 * the URL and the header bytes into one buffer (head, at most max_header: 431 beyond) and the
 * body into another (at most max_body: 413 beyond); the parser pauses at the end of each
 * request, so a connection answers one before it parses the next.
 */
#include "worker/http_req.h"

#include "common/buf.h"
#include "common/config.h"
#include "common/limits.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void refuse(http_refusal *why, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse(http_refusal *why, int status, const char *code, const char *fmt, ...)
{
    why->status = status;
    why->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->msg, sizeof why->msg, fmt, ap);
    va_end(ap);
}


/* ---- parsing ---- */

static http_req *req_of(http_parser *p)
{
    return p->data;
}

static int head_add(http_req *r, const char *at, size_t n)
{
    if (r->head_len + n > r->max_header || buf_grow(&r->head, &r->head_cap, r->head_len + n, r->max_header)) {
        r->refuse = 431;
        return -1;
    }
    memcpy(r->head + r->head_len, at, n);
    r->head_len += n;
    return 0;
}

static int on_message_begin(http_parser *p)
{
    http_req *r = req_of(p);
    r->head_len = r->url_len = 0;
    r->n_hdr = 0;
    r->in_value = 0;
    r->body_len = 0;
    r->refuse = 0;
    r->msg_done = 0;
    if (r->on_begin)
        r->on_begin(r);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    http_req *r = req_of(p);
    if (head_add(r, at, n))
        return -1;
    r->url_len += n;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    http_req *r = req_of(p);
    if (r->in_value || r->n_hdr == 0) {
        if (r->n_hdr == HTTP_MAX_HEADERS) {
            r->refuse = 431;
            return -1;
        }
        r->hdr[r->n_hdr++] = (hdr_ref){.name_off = r->head_len};
        r->in_value = 0;
    }
    if (head_add(r, at, n))
        return -1;
    r->hdr[r->n_hdr - 1].name_len += n;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    http_req *r = req_of(p);
    hdr_ref *h = &r->hdr[r->n_hdr - 1];
    if (!r->in_value) {
        h->val_off = r->head_len;
        r->in_value = 1;
    }
    if (head_add(r, at, n))
        return -1;
    h->val_len += n;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_req *r = req_of(p);
    if (r->on_head)
        r->on_head(r);
    if (p->content_length != ULLONG_MAX && p->content_length > r->max_body) {
        r->refuse = 413;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    http_req *r = req_of(p);
    if (r->body_len + n > r->max_body || buf_grow(&r->body, &r->body_cap, r->body_len + n, r->max_body + 1)) {
        r->refuse = 413;
        return -1;
    }
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_req *r = req_of(p);
    r->msg_done = 1;
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

static const http_parser_settings SETTINGS = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http_req_init(http_req *r, size_t max_header, size_t max_body, void *owner)
{
    memset(r, 0, sizeof *r);
    http_parser_init(&r->p, HTTP_REQUEST);
    r->p.data = r;
    r->max_header = max_header;
    r->max_body = max_body;
    r->owner = owner;
}

void http_req_free(http_req *r)
{
    free(r->head);
    free(r->body);
    r->head = r->body = NULL;
    r->head_cap = r->body_cap = 0;
}

size_t http_req_held(const http_req *r)
{
    return r->head_cap + r->body_cap;
}

http_read http_req_feed(http_req *r, const char *in, size_t len, size_t *used, http_refusal *why)
{
    *used = http_parser_execute(&r->p, &SETTINGS, in, len);
    enum http_errno he = HTTP_PARSER_ERRNO(&r->p);
    if (he == HPE_PAUSED)
        http_parser_pause(&r->p, 0);
    else if (he != HPE_OK) {
        if (r->refuse == 431)
            refuse(why, 431, "too_large", "scatter: request line and headers exceed http_max_header = %zu bytes",
                   r->max_header);
        else if (r->refuse == 413)
            refuse(why, 413, "too_large", "scatter: request body exceeds max_request_body = %zu bytes", r->max_body);
        else
            refuse(why, 400, "bad_request", "scatter: malformed request: %s", http_errno_description(he));
        return HTTP_READ_BAD;
    }
    if (r->msg_done) {
        r->msg_done = 0;
        return HTTP_READ_DONE;
    }
    return HTTP_READ_MORE;
}

int http_req_method(const http_req *r)
{
    return (int)r->p.method;
}

int http_req_keep_alive(const http_req *r)
{
    return http_should_keep_alive(&r->p);
}

/* ---- decisions ---- */

static int hdr_is(const http_req *r, const hdr_ref *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(r->head + h->name_off, name, h->name_len) == 0;
}

const hdr_ref *http_req_find(const http_req *r, const char *name)
{
    for (uint32_t i = 0; i < r->n_hdr; i++)
        if (hdr_is(r, &r->hdr[i], name))
            return &r->hdr[i];
    return NULL;
}

/* A knob header's value as a number in [lo, hi]: 1 found, 0 absent, -1 bad. */
static int knob(const http_req *r, const char *name, uint32_t lo, uint32_t hi, uint32_t *out)
{
    const hdr_ref *h = http_req_find(r, name);
    if (!h)
        return 0;
    char v[16];
    if (h->val_len == 0 || h->val_len >= sizeof v)
        return -1;
    memcpy(v, r->head + h->val_off, h->val_len);
    v[h->val_len] = '\0';
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    if (*end || x < lo || x > hi)
        return -1;
    *out = (uint32_t)x;
    return 1;
}

int http_req_knobs(const http_req *r, http_knobs *k, http_refusal *why)
{
    int r1 = knob(r, "X-Scatter-Race", 1, SC_RACE_MAX, &k->race_width);
    int r2 = knob(r, "X-Scatter-Timeout", 1, 86400000u, &k->timeout_ms);
    int r3 = knob(r, "X-Scatter-Attempts", 0, 1000000u, &k->max_attempts);
    if (r1 < 0 || r2 < 0 || r3 < 0) {
        refuse(why, 400, "bad_request",
               "scatter: bad %s (X-Scatter-Race 1-%u, X-Scatter-Timeout ms, X-Scatter-Attempts 0-1000000)",
               r1 < 0 ? "X-Scatter-Race" : r2 < 0 ? "X-Scatter-Timeout" : "X-Scatter-Attempts", SC_RACE_MAX);
        return -1;
    }
    k->has_race_width = r1 > 0;
    k->has_timeout = r2 > 0;
    k->has_max_attempts = r3 > 0;
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (char)(ch | 0x20);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* The url parameter of an origin-form /fetch?url=..., percent-decoded into out. 0 or -1. */
static int fetch_param(const char *target, size_t n, char *out, size_t cap)
{
    if (n < 7 || memcmp(target, "/fetch?", 7) != 0)
        return -1;
    const char *q = target + 7, *end = target + n;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        if (pe - q > 4 && memcmp(q, "url=", 4) == 0) {
            size_t k = 0;
            for (const char *s = q + 4; s < pe; s++) {
                char ch = *s;
                if (ch == '%' && pe - s > 2 && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
                    ch = (char)(hexval(s[1]) * 16 + hexval(s[2]));
                    s += 2;
                } else if (ch == '+') {
                    ch = ' ';
                }
                if (k + 1 >= cap || ch == '\0')
                    return -1;
                out[k++] = ch;
            }
            out[k] = '\0';
            return 0;
        }
        q = pe + 1;
    }
    return -1;
}

int http_req_url(const http_req *r, char *url, size_t cap, http_refusal *why)
{
    const char *target = r->head;
    size_t tl = r->url_len;
    if (tl >= 7 && strncasecmp(target, "http://", 7) == 0) {
        if (tl >= cap) {
            refuse(why, 414, "too_large", "scatter: request target of %zu bytes is too long", tl);
            return -1;
        }
        memcpy(url, target, tl);
        url[tl] = '\0';
    } else if (fetch_param(target, tl, url, cap) == 0) {
        if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
            refuse(why, 400, "bad_request", "scatter: /fetch?url= takes an http:// or https:// URL");
            return -1;
        }
    } else {
        refuse(why, 400, "bad_request",
               "scatter: this is a proxy: send absolute-form requests (GET http://host/path HTTP/1.1) or "
               "GET /fetch?url=<percent-encoded URL>");
        return -1;
    }
    const hdr_ref *scheme = http_req_find(r, "X-Scatter-Scheme");
    if (scheme) {
        if (scheme->val_len == 5 && strncasecmp(r->head + scheme->val_off, "https", 5) == 0 &&
            strncmp(url, "http://", 7) == 0) {
            if (strlen(url) + 2 > cap) {
                refuse(why, 414, "too_large", "scatter: URL too long");
                return -1;
            }
            memmove(url + 5, url + 4, strlen(url + 4) + 1);
            url[4] = 's';
        } else if (!(scheme->val_len == 4 && strncasecmp(r->head + scheme->val_off, "http", 4) == 0)) {
            refuse(why, 400, "bad_request", "scatter: X-Scatter-Scheme must be http or https");
            return -1;
        }
    }
    return 0;
}

/* 1 if port is in the comma-separated list. */
static int port_allowed(const char *list, unsigned port)
{
    for (const char *p = list; *p;) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end != p && v == port)
            return 1;
        p = strchr(p, ',');
        if (!p)
            break;
        p++;
    }
    return 0;
}

int http_req_connect_target(const http_req *r, const char *allowed_ports, char *key, size_t cap,
                            unsigned long *port, http_refusal *why)
{
    size_t tl = r->url_len;
    const char *colon = tl ? memrchr(r->head, ':', tl) : NULL;
    /* the port's digits end where the URL ends: the head goes on with the header bytes */
    char digits[24];
    size_t dl = colon ? (size_t)(r->head + tl - colon - 1) : 0;
    unsigned long p = 0;
    char *end = NULL;
    if (colon && dl > 0 && dl < sizeof digits) {
        memcpy(digits, colon + 1, dl);
        digits[dl] = '\0';
        p = strtoul(digits, &end, 10);
    }
    if (!colon || colon == r->head || !end || *end || p == 0 || p > 65535 || tl >= cap) {
        refuse(why, 400, "bad_request", "scatter: CONNECT needs host:port");
        return -1;
    }
    if (!port_allowed(allowed_ports, (unsigned)p)) {
        refuse(why, 403, "bad_request", "scatter: CONNECT to port %lu is not allowed (connect_ports = %s)", p,
               allowed_ports);
        return -1;
    }
    for (size_t i = 0; i < tl; i++)
        key[i] = (char)tolower((unsigned char)r->head[i]);
    key[tl] = '\0';
    *port = p;
    return 0;
}

/* The Proxy-Authorization Basic credential, decoded ("user:password") into out. 0, or -1 if
 * there is none or it is not valid base64 of a NUL-free text that fits. */
static int proxy_credential(const http_req *r, char *out, size_t cap)
{
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const hdr_ref *h = http_req_find(r, "Proxy-Authorization");
    if (!h || h->val_len < 7 || strncasecmp(r->head + h->val_off, "Basic ", 6) != 0)
        return -1;
    const char *v = r->head + h->val_off + 6;
    size_t vl = h->val_len - 6, k = 0;
    while (vl && *v == ' ') {
        v++;
        vl--;
    }
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < vl && v[i] != '='; i++) {
        const char *pos = v[i] ? strchr(B64, v[i]) : NULL;
        if (!pos)
            return -1;
        acc = (acc << 6) | (uint32_t)(pos - B64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char ch = (char)((acc >> bits) & 0xffu);
            if (ch == '\0' || k + 1 >= cap)
                return -1;
            out[k++] = ch;
        }
    }
    out[k] = '\0';
    return 0;
}

int http_req_auth_ok(const http_req *r, const char *want)
{
    if (!want[0])
        return 1;
    char cred[2 * CFG_STR_MAX];
    if (proxy_credential(r, cred, sizeof cred))
        return 0;
    if (strcmp(cred, want) == 0)
        return 1;
    const char *wp = strchr(want, ':'), *cp = strchr(cred, ':');
    return wp && cp && strncmp(cred, "session-", 8) == 0 && cp > cred + 8 && strcmp(cp, wp) == 0;
}

proto_str http_req_session(const http_req *r, char *buf, size_t cap)
{
    const hdr_ref *h = http_req_find(r, "X-Scatter-Session");
    if (h)
        return (proto_str){r->head + h->val_off, (uint32_t)h->val_len};
    if (proxy_credential(r, buf, cap) || strncmp(buf, "session-", 8) != 0)
        return (proto_str){"", 0};
    const char *colon = strchr(buf, ':');
    size_t n = colon ? (size_t)(colon - buf) : strlen(buf);
    return (proto_str){buf + 8, (uint32_t)(n - 8)};
}

uint32_t http_req_forward_headers(const http_req *r, proto_str *hn, proto_str *hv)
{
    uint32_t nh = 0;
    for (uint32_t i = 0; i < r->n_hdr; i++) {
        const hdr_ref *h = &r->hdr[i];
        if (h->name_len >= 10 && strncasecmp(r->head + h->name_off, "x-scatter-", 10) == 0)
            continue;
        /* the URL is authoritative for a proxy (RFC 9112 3.2.2): Host names it, or the
         * listener itself for /fetch; libcurl writes the target's */
        if (hdr_is(r, h, "Host"))
            continue;
        hn[nh] = (proto_str){r->head + h->name_off, (uint32_t)h->name_len};
        hv[nh] = (proto_str){r->head + h->val_off, (uint32_t)h->val_len};
        nh++;
    }
    return nh;
}
