/*
 * The bytes a client writes to a worker's socket, read the way worker/conn.c reads them:
 * proto_frame_scan finds each message, msgpack_unpack_next unpacks it, proto_decode_request
 * decodes it, until the scanner says "need more" or refuses the stream.
 *
 * Besides the sanitizers, the scanner's own promises are checked, because the worker and
 * scatterctl rely on them to cut a byte stream into messages:
 *  - a span it accepts is exactly one msgpack object (msgpack-c consumes all of it);
 *  - every proper prefix of an accepted span is "need more": a message split across two
 *    reads must not be refused for arriving in pieces;
 *  - the span does not depend on max_frame as long as it fits, and is "too large" otherwise.
 * A submit that decodes has its headers sorted the way worker/task.c does before they reach
 * libcurl (common/headers.h: framing, hop-by-hop, Connection lists, Host against the URL).
 */
#include "common/headers.h"
#include "common/proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The default max_frame (scatter.ini): the limit the daemon runs with. */
#define FUZZ_MAX_FRAME (4u << 20)

static void fail(const char *what, long a, long b)
{
    fprintf(stderr, "fuzz_proto: %s (%ld vs %ld)\n", what, a, b);
    abort();
}

/* Reads every byte a decoded field points at, so ASan sees any pointer outside the frame. */
static unsigned touch(proto_str s, const uint8_t *lo, const uint8_t *hi)
{
    if (!s.p)
        return 0;
    const uint8_t *p = (const uint8_t *)s.p;
    /* "GET" is the decoder's own literal when the method is absent */
    if (s.n && (p < lo || p + s.n > hi) && !(s.n == 3 && memcmp(s.p, "GET", 3) == 0))
        fail("decoded string outside its frame", (long)(p - lo), (long)s.n);
    unsigned sum = 0;
    for (uint32_t i = 0; i < s.n; i++)
        sum += p[i];
    return sum;
}

/* worker/task.c build_headers without libcurl: which headers would be sent. */
static unsigned filter_headers(const proto_request *r)
{
    static const char *const keys[] = {"example.com", "example.com:8080", "[::1]:443"};
    unsigned sent = 0;
    for (uint32_t i = 0; i < r->n_headers; i++) {
        hdr_kind k = hdr_classify(r->hname[i].p, r->hname[i].n);
        if (k == HDR_HOST) {
            for (int j = 0; j < 3; j++)
                sent += (unsigned)hdr_host_matches(r->hval[i].p, r->hval[i].n, keys[j], j == 2 ? 443 : 80);
            continue;
        }
        if (k != HDR_PASS)
            continue;
        int listed = 0;
        for (uint32_t j = 0; j < r->n_headers && !listed; j++)
            if (hdr_classify(r->hname[j].p, r->hname[j].n) == HDR_HOP && r->hname[j].n == 10 &&
                strncasecmp(r->hname[j].p, "connection", 10) == 0)
                listed = hdr_in_connection_list(r->hval[j].p, r->hval[j].n, r->hname[i].p, r->hname[i].n);
        sent += !listed;
    }
    return sent;
}

static void check_span(const uint8_t *buf, size_t len, long n)
{
    /* prefixes: the last byte missing, half of it, only the first byte */
    size_t cut[3] = {(size_t)n - 1, (size_t)n / 2, 1};
    for (int i = 0; i < 3; i++)
        if (cut[i] > 0 && cut[i] < (size_t)n) {
            long r = proto_frame_scan(buf, cut[i], FUZZ_MAX_FRAME);
            if (r != FRAME_NEED_MORE)
                fail("a prefix of an accepted message is not 'need more'", r, (long)cut[i]);
        }
    long exact = proto_frame_scan(buf, len, (size_t)n);
    if (exact != n)
        fail("max_frame equal to the message length changes the span", exact, n);
    long smaller = proto_frame_scan(buf, len, (size_t)n - 1);
    if (smaller != FRAME_TOO_LARGE)
        fail("max_frame one below the message length is not 'too large'", smaller, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    volatile unsigned sink = 0;
    while (off < size) {
        const uint8_t *buf = data + off;
        size_t len = size - off;
        long n = proto_frame_scan(buf, len, FUZZ_MAX_FRAME);
        if (n == FRAME_NEED_MORE || n < 0) {
            (void)proto_frame_strerror(n);
            break;
        }
        if ((size_t)n > len)
            fail("span longer than the input", n, (long)len);
        check_span(buf, len, n);

        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t pos = 0;
        msgpack_unpack_return rc = msgpack_unpack_next(&u, (const char *)buf, (size_t)n, &pos);
        if (rc != MSGPACK_UNPACK_SUCCESS || pos != (size_t)n)
            fail("msgpack-c disagrees with the span the scanner accepted", (long)rc, (long)pos);
        /* the getters scatterctl reads replies with, on whatever map this is */
        uint64_t u64;
        int flag;
        double f64;
        proto_str str;
        if (proto_get_u64(&u.data, "id", &u64) == 0)
            sink += (unsigned)u64;
        if (proto_get_bool(&u.data, "ok", &flag) == 0)
            sink += (unsigned)flag;
        if (proto_get_f64(&u.data, "timeout_ms", &f64) == 0)
            sink += f64 > 1.0;
        if (proto_get_str(&u.data, "op", &str) == 0)
            sink += touch(str, buf, buf + n);

        proto_request r;
        char err[256];
        err[0] = '\0';
        if (proto_decode_request(&u.data, &r, err, sizeof err) == 0) {
            const uint8_t *hi = buf + n;
            sink += touch(r.opname, buf, hi) + touch(r.method, buf, hi) + touch(r.url, buf, hi) +
                    touch(r.body, buf, hi) + touch(r.host, buf, hi);
            if (r.n_headers > PROTO_MAX_HEADERS)
                fail("more headers than PROTO_MAX_HEADERS", (long)r.n_headers, PROTO_MAX_HEADERS);
            for (uint32_t i = 0; i < r.n_headers; i++)
                sink += touch(r.hname[i], buf, hi) + touch(r.hval[i], buf, hi);
            if (r.op == OP_SUBMIT)
                sink += filter_headers(&r);
        } else {
            /* the error text becomes a reply's message: it must be a terminated string */
            if (memchr(err, '\0', sizeof err) == NULL || err[0] == '\0')
                fail("decode error without a message", 0, 0);
            sink += (unsigned)strlen(err);
        }
        msgpack_unpacked_destroy(&u);
        off += (size_t)n;
    }
    (void)sink;
    return 0;
}
