/*
 * The bytes a client writes to the HTTP front door (http_listen), read the way worker/http.c
 * reads them: worker/http_req.c's reader (libhttp-parser, the head and body buffers with their
 * limits) cuts the stream into requests, and each request goes through the decisions the
 * front end takes before it starts a task or a tunnel: Proxy-Authorization against http_auth,
 * the sticky session, the CONNECT target against connect_ports, the URL (absolute form,
 * /fetch?url=, X-Scatter-Scheme), the X-Scatter-* knobs and the headers to forward. Parsing
 * stops where the connection would stop: at a refusal of the reader, or after an accepted
 * CONNECT (what follows is the tunnel's). names_us (getsockname) and the task itself are not
 * here: they need a socket and a worker.
 *
 * Besides the sanitizers, the promises the front end relies on are checked:
 *  - the stream gives the same requests, and a refusal at the same place, whether it arrives
 *    at once or one byte per read (a request split across reads is not parsed differently);
 *  - limits only refuse: with http_max_header = 1K and max_request_body = 512, the stream
 *    gives the same requests as with 64K and 1M up to its first 413 or 431;
 *  - a request's URL and header spans lie inside its head, the head within http_max_header,
 *    the body within max_request_body, at most HTTP_MAX_HEADERS headers; a refusal is 400,
 *    413 or 431 with a message;
 *  - the decisions read only the request's own bytes (they run on a copy of the head in an
 *    allocation of exactly its length, so ASan sees a read past it) and keep their contracts:
 *    a URL is http:// or https:// (any case) and fits; a CONNECT key is the lower-cased
 *    host:port and its port is allowed; knobs are in range; no X-Scatter-* or Host header is
 *    forwarded; every refusal has a status of its kind and a message.
 */
#include "worker/http_req.h"

#include "common/limits.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SMALL_HEADER 1024u /* the smallest http_max_header scatter.ini allows */
#define SMALL_BODY 512u
#define LARGE_HEADER (64u << 10) /* the defaults */
#define LARGE_BODY (1u << 20)
#define PORTS "443,18080"
#define AUTH "user:secret"

static void fail(const char *what, long a, long b)
{
    fprintf(stderr, "fuzz_http: %s (%ld vs %ld)\n", what, a, b);
    abort();
}

/* FNV-1a over length-prefixed fields: one digest per request or refusal. */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < sizeof n; i++)
        h = (h ^ ((n >> (8 * i)) & 0xffu)) * 1099511628211ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static uint64_t mix_int(uint64_t h, long v)
{
    return mix(h, &v, sizeof v);
}

static void check_refusal(const http_refusal *why, int lo_status, int hi_status, const char *what)
{
    if (why->status != lo_status && why->status != hi_status)
        fail(what, why->status, lo_status);
    if (!why->code || !why->code[0] || !memchr(why->msg, '\0', sizeof why->msg) || !why->msg[0])
        fail("a refusal without a code or a message", why->status, 0);
}

static int is_header(const http_req *r, const hdr_ref *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(r->head + h->name_off, name, h->name_len) == 0;
}

/* The decisions on one parsed request; returns its digest and sets *tunnel on an accepted
 * CONNECT. */
static uint64_t decide(const http_req *parsed, int *tunnel)
{
    http_req r = *parsed;
    if (r.url_len > r.head_len || r.head_len > r.max_header)
        fail("URL or head beyond its bounds", (long)r.url_len, (long)r.head_len);
    if (r.body_len > r.max_body)
        fail("body over max_request_body", (long)r.body_len, (long)r.max_body);
    if (r.n_hdr > HTTP_MAX_HEADERS)
        fail("more headers than HTTP_MAX_HEADERS", (long)r.n_hdr, HTTP_MAX_HEADERS);
    for (uint32_t i = 0; i < r.n_hdr; i++) {
        const hdr_ref *h = &r.hdr[i];
        if (h->name_off < r.url_len || h->name_off + h->name_len > r.head_len ||
            (h->val_len && (h->val_off < h->name_off + h->name_len || h->val_off + h->val_len > r.head_len)))
            fail("a header span outside the head", (long)i, (long)r.head_len);
    }
    /* the head in an allocation of exactly its length: a read past it is ASan's */
    r.head = malloc(r.head_len ? r.head_len : 1);
    if (!r.head)
        abort();
    memcpy(r.head, parsed->head, r.head_len);
    r.head_cap = r.head_len;

    uint64_t h = 1469598103934665603ull;
    int method = http_req_method(&r);
    h = mix_int(h, method);
    h = mix_int(h, http_req_keep_alive(&r));
    h = mix(h, r.head, r.head_len);
    h = mix_int(h, (long)r.url_len);
    h = mix(h, r.body ? r.body : "", r.body_len);
    h = mix_int(h, http_req_auth_ok(&r, AUTH));
    if (!http_req_auth_ok(&r, ""))
        fail("no http_auth refuses a request", 0, 0);
    char cred[2048];
    proto_str sess = http_req_session(&r, cred, sizeof cred);
    h = mix(h, sess.p, sess.n);

    http_refusal why;
    memset(&why, 0, sizeof why);
    if (method == HTTP_CONNECT) {
        char key[256];
        unsigned long port = 0;
        if (http_req_connect_target(&r, PORTS, key, sizeof key, &port, &why) == 0) {
            if (port != 443 && port != 18080)
                fail("CONNECT to a port not in connect_ports accepted", (long)port, 0);
            if (strlen(key) != r.url_len)
                fail("CONNECT key is not the whole target", (long)strlen(key), (long)r.url_len);
            for (size_t i = 0; i < r.url_len; i++)
                if (key[i] != (char)tolower((unsigned char)r.head[i]))
                    fail("CONNECT key is not the lower-cased target", (long)i, 0);
            h = mix(h, key, strlen(key));
            *tunnel = 1;
        } else {
            check_refusal(&why, 400, 403, "CONNECT refused with another status");
            h = mix_int(h, why.status);
        }
    } else {
        char url[8192];
        if (http_req_url(&r, url, sizeof url, &why) == 0) {
            size_t n = strnlen(url, sizeof url);
            if (n == sizeof url)
                fail("URL not terminated", 0, 0);
            /* the scheme's case is the client's (libcurl lower-cases it) */
            if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
                fail("a URL that is neither http:// nor https://", (long)n, 0);
            h = mix(h, url, n);
        } else {
            check_refusal(&why, 400, 414, "URL refused with another status");
            h = mix_int(h, why.status);
        }
    }
    http_knobs k;
    memset(&k, 0, sizeof k);
    if (http_req_knobs(&r, &k, &why) == 0) {
        if ((k.has_race_width && (k.race_width < 1 || k.race_width > SC_RACE_MAX)) ||
            (k.has_timeout && (k.timeout_ms < 1 || k.timeout_ms > 86400000u)) ||
            (k.has_max_attempts && k.max_attempts > 1000000u))
            fail("a knob out of its range accepted", (long)k.race_width, (long)k.timeout_ms);
        h = mix_int(h, k.has_race_width ? (long)k.race_width : -1);
        h = mix_int(h, k.has_timeout ? (long)k.timeout_ms : -1);
        h = mix_int(h, k.has_max_attempts ? (long)k.max_attempts : -1);
    } else {
        check_refusal(&why, 400, 400, "a bad knob refused with another status");
        h = mix_int(h, why.status);
    }
    proto_str hn[HTTP_MAX_HEADERS], hv[HTTP_MAX_HEADERS];
    uint32_t nf = http_req_forward_headers(&r, hn, hv), dropped = 0;
    for (uint32_t i = 0; i < r.n_hdr; i++)
        dropped += is_header(&r, &r.hdr[i], "Host") ||
                   (r.hdr[i].name_len >= 10 && strncasecmp(r.head + r.hdr[i].name_off, "x-scatter-", 10) == 0);
    if (nf + dropped != r.n_hdr)
        fail("forwarded headers do not add up", (long)(nf + dropped), (long)r.n_hdr);
    for (uint32_t i = 0; i < nf; i++) {
        if ((hn[i].n == 4 && strncasecmp(hn[i].p, "host", 4) == 0) ||
            (hn[i].n >= 10 && strncasecmp(hn[i].p, "x-scatter-", 10) == 0))
            fail("Host or an X-Scatter-* header forwarded", (long)i, 0);
        h = mix(h, hn[i].p, hn[i].n);
        h = mix(h, hv[i].p, hv[i].n);
    }
    free(r.head);
    return h;
}

typedef struct {
    uint64_t *ev; /* one digest per request or refusal */
    int *status;  /* 0 for a request, else the refusal's status */
    size_t n, cap;
} events;

/* Reads data the way a connection does, chunk bytes per read (0: all at once). */
static void run(const uint8_t *data, size_t size, size_t max_header, size_t max_body, size_t chunk, events *out)
{
    http_req r;
    http_req_init(&r, max_header, max_body, NULL);
    size_t off = 0, avail = 0, guard = 0;
    out->n = 0;
    for (;;) {
        if (off == avail) {
            if (avail == size)
                break;
            avail = chunk && size - avail > chunk ? avail + chunk : size;
        }
        if (++guard > 4 * size + 16)
            fail("the reader does not advance", (long)off, (long)avail);
        size_t used = 0;
        http_refusal why;
        memset(&why, 0, sizeof why);
        http_read rd = http_req_feed(&r, (const char *)data + off, avail - off, &used, &why);
        if (used > avail - off)
            fail("consumed more than it was given", (long)used, (long)(avail - off));
        off += used;
        if (out->n == out->cap)
            fail("more events than bytes", (long)out->n, (long)size);
        if (rd == HTTP_READ_BAD) {
            if (why.status != 400 && why.status != 413 && why.status != 431)
                fail("the reader refused with another status", why.status, 0);
            check_refusal(&why, why.status, why.status, "");
            /* which refusal is not compared: the limits are checked as the parser hands bytes
             * over, so a head that is both malformed and too long is a 400 read at once and a
             * 431 read in pieces; both close the connection after a 4xx */
            out->ev[out->n] = 1;
            out->status[out->n++] = why.status;
            break;
        }
        if (rd == HTTP_READ_DONE) {
            int tunnel = 0;
            out->ev[out->n] = decide(&r, &tunnel);
            out->status[out->n++] = 0;
            if (tunnel)
                break;
        } else if (off != avail) {
            fail("'need more' with bytes left over", (long)off, (long)avail);
        }
    }
    http_req_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    events a, b, c;
    size_t cap = size + 2; /* a request or a refusal consumes at least one byte */
    events *all[3] = {&a, &b, &c};
    for (int i = 0; i < 3; i++) {
        all[i]->ev = malloc(cap * sizeof(uint64_t));
        all[i]->status = malloc(cap * sizeof(int));
        all[i]->cap = cap;
        if (!all[i]->ev || !all[i]->status)
            abort();
    }
    run(data, size, SMALL_HEADER, SMALL_BODY, 0, &a);
    run(data, size, SMALL_HEADER, SMALL_BODY, 1, &b);
    run(data, size, LARGE_HEADER, LARGE_BODY, 0, &c);
    if (a.n != b.n)
        fail("one read and one byte per read give a different number of requests", (long)a.n, (long)b.n);
    for (size_t i = 0; i < a.n; i++)
        if (a.ev[i] != b.ev[i] || !a.status[i] != !b.status[i])
            fail("one read and one byte per read parse a request differently", (long)i, (long)a.status[i]);
    /* small limits: the same as large ones up to the first 413 or 431 */
    size_t same = a.n;
    if (a.n && (a.status[a.n - 1] == 413 || a.status[a.n - 1] == 431))
        same = a.n - 1;
    if (c.n < same)
        fail("larger limits give fewer requests", (long)c.n, (long)same);
    for (size_t i = 0; i < same; i++)
        if (a.ev[i] != c.ev[i])
            fail("larger limits parse a request differently", (long)i, (long)a.status[i]);
    if (same == a.n && c.n != a.n)
        fail("larger limits give more requests without a limit refusal", (long)c.n, (long)a.n);
    for (int i = 0; i < 3; i++) {
        free(all[i]->ev);
        free(all[i]->status);
    }
    return 0;
}
