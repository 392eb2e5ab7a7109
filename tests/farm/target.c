/*
 * target.c — the farm's HTTP target: a tiny "web site" with a per-IP rate limit.
 *
 * Why: scatter promises never to hit one site from one proxy IP more often than the
 * configured interval. A real site would answer 429 and, worse, ban the IP; this target
 * measures the same thing exactly and counts every breach as a VIOLATION, so tests and
 * benchmarks can assert "zero violations" instead of guessing.
 *
 * The rule: when a complete request head has been read, take CLOCK_MONOTONIC in µs. If the
 * same source address's previous counted request on this target came less than interval_ms
 * earlier, answer 429 and count a violation. The 429'd request still becomes "previous".
 *
 * Protocol subset: HTTP/1.0 and 1.1 GET (HEAD too), keep-alive (HTTP/1.1 default,
 * "Connection: close" honoured), pipelining handled one response at a time (the next request
 * is parsed only after the previous response is fully written, which bounds memory). No
 * chunked bodies; a Content-Length body (up to FARM_BODY_MAX) is read and discarded. Anything malformed gets 400 and the connection is closed — only that one.
 *
 * /__farm/... paths are the control plane (stats, reset, set); they are not counted, not rate
 * limited and not logged.
 *
 * A TLS target (--tls-target) is the same site: the connection's byte stream comes from an SSL
 * object instead of the socket (conn_read/conn_write below), and everything from the request
 * buffer on — parsing, the rate limit, counters, control paths — is shared. OpenSSL runs
 * non-blocking on the loop: a read may need the socket writable and a write readable
 * (rd_wait/wr_wait), decrypted bytes OpenSSL still holds are fed back as a read event, and the
 * handshake must finish within HANDSHAKE_TIMEOUT_S of the accept or the connection is closed.
 */
#include "farm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define IDLE_TIMEOUT_S 60.0
#define HANDSHAKE_TIMEOUT_S 10.0
#define FARM_BODY_MAX (1u << 20)
#define FARM_PAD_MAX (4u << 20)

struct hconn {
    struct conn_link link; /* first member */
    struct farm *f;
    struct target *t;
    int fd;
    ev_io w;
    int w_ev;
    ev_timer idle;
    struct in_addr peer;
    bool rd_eof;
    bool close_after; /* close once out is flushed */
    SSL *ssl;         /* NULL on a plain target */
    bool handshaking; /* TLS: the handshake has not finished yet */
    bool tls_failed;  /* TLS: a fatal error; no close_notify may be sent */
    int rd_wait;      /* the socket event the next read waits for (EV_READ, or EV_WRITE in TLS) */
    int wr_wait;      /* the same for the next write */
    size_t body_skip; /* bytes of the current request's body still to discard */
    size_t in_len;
    char *out;
    size_t out_off, out_len, out_cap;
    char in[FARM_HTTP_HEAD_MAX];
};

enum behaviour farm_behaviour_of_source(const struct farm *f, struct in_addr src)
{
    uint32_t h = ntohl(src.s_addr);
    if ((h >> 16) != ((127u << 8) | 1u))
        return BEH_COUNT;
    unsigned x = (h >> 8) & 0xff, y = h & 0xff;
    if (y < 1 || y > 250)
        return BEH_COUNT;
    unsigned idx = x * 250 + y - 1;
    if (idx < f->o.source_base)
        return BEH_COUNT;
    idx -= f->o.source_base;
    return idx < f->nproxies ? f->proxies[idx].beh : BEH_COUNT;
}

static void hc_destroy(struct hconn *c)
{
    /* also drops an event fed for buffered TLS data (ev_feed_event) while the watcher is off */
    ev_io_stop(c->f->loop, &c->w);
    ev_timer_stop(c->f->loop, &c->idle);
    if (c->ssl) {
        /* one non-blocking close_notify, best effort: the socket closes right after */
        if (!c->handshaking && !c->tls_failed)
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    close(c->fd);
    free(c->out);
    farm_conn_del(c->f, &c->link);
    free(c);
}

static void hc_destroy_link(struct conn_link *l)
{
    hc_destroy((struct hconn *)l);
}

static int out_reserve(struct hconn *c, size_t more)
{
    if (c->out_len + more <= c->out_cap)
        return 0;
    size_t cap = c->out_cap ? c->out_cap : 2048;
    while (cap < c->out_len + more)
        cap *= 2;
    char *n = realloc(c->out, cap);
    if (!n)
        return -1;
    c->out = n;
    c->out_cap = cap;
    return 0;
}

static int out_append(struct hconn *c, const char *data, size_t n)
{
    if (out_reserve(c, n) < 0)
        return -1;
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
    return 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

static int respond(struct hconn *c, int status, const char *ctype, const char *body, size_t blen,
                   bool head_only)
{
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nServer: scatter-farm\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n%s%s\r\n",
                     status, reason(status), ctype, blen,
                     status == 429 ? "Retry-After: 1\r\n" : "",
                     c->close_after ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
    if (out_append(c, hdr, (size_t)n) < 0)
        return -1;
    if (!head_only && blen && out_append(c, body, blen) < 0)
        return -1;
    return 0;
}

/* /status/<code>: the answer a real site gives that is neither an item nor an error of the
 * farm's own: 204 and 304 with no body (and no Content-Length, RFC 9110 §8.6), 3xx with a
 * Location, anything else with a short text body. */
static int respond_status(struct hconn *c, int status, bool head_only)
{
    if (status == 204 || status == 304) {
        char hdr[256];
        int n = snprintf(hdr, sizeof hdr, "HTTP/1.1 %d %s\r\nServer: scatter-farm\r\n%s\r\n", status,
                         reason(status), c->close_after ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
        return out_append(c, hdr, (size_t)n);
    }
    if (status >= 300 && status < 400) {
        static const char body[] = "moved to /item/0\n";
        char hdr[512];
        int n = snprintf(hdr, sizeof hdr,
                         "HTTP/1.1 %d %s\r\nServer: scatter-farm\r\nLocation: /item/0\r\n"
                         "Content-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n",
                         status, reason(status), sizeof body - 1,
                         c->close_after ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
        if (out_append(c, hdr, (size_t)n) < 0)
            return -1;
        return head_only ? 0 : out_append(c, body, sizeof body - 1);
    }
    char body[64];
    int n = snprintf(body, sizeof body, "status %d as asked\n", status);
    return respond(c, status, "text/plain", body, (size_t)n, head_only);
}

static int respond_text(struct hconn *c, int status, bool head_only, const char *fmt, ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof body)
        n = sizeof body - 1;
    return respond(c, status, "text/plain", body, (size_t)n, head_only);
}

/* A deterministic page of about 1 KB for item n: same n, same bytes, on every run. */
static size_t item_body(unsigned n, char *out, size_t cap)
{
    size_t len = (size_t)snprintf(out, cap,
                                  "<!doctype html>\n<html><head><title>item %u</title></head>"
                                  "<body>\n<h1>item %u</h1>\n",
                                  n, n);
    for (unsigned k = 0; len < 960 && len + 64 < cap; k++) {
        uint64_t z = ((uint64_t)n << 8 | k) + 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        len += (size_t)snprintf(out + len, cap - len, "<p>row %u: %016llx</p>\n", k,
                                (unsigned long long)z);
    }
    len += (size_t)snprintf(out + len, cap - len, "</body></html>\n");
    return len;
}

static const char captcha_page[] =
    "<!doctype html>\n<html><head><title>Just a moment</title></head><body>\n"
    "<h1>Are you a robot?</h1>\n<p>Please solve the captcha below to continue.</p>\n"
    "<form><div class=\"captcha\">[captcha]</div></form>\n</body></html>\n";

static void log_request(struct hconn *c, int64_t now_us, const char *path, size_t plen, int status)
{
    FILE *fp = c->f->reqlog;
    if (!fp)
        return;
    char src[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &c->peer, src, sizeof src);
    char p[201];
    size_t k = 0;
    for (size_t i = 0; i < plen && k < sizeof p - 1; i++)
        p[k++] = (path[i] > 32 && path[i] < 127) ? path[i] : '?';
    p[k] = '\0';
    fprintf(fp, "%lld.%06lld %s %s %s %d\n", (long long)(now_us / 1000000),
            (long long)(now_us % 1000000), c->t->name, src, p, status);
}

/* Parses a decimal in [0, max); -1 when it is not one. */
static long parse_item(const char *s, size_t len, unsigned max)
{
    if (len == 0 || len > 10)
        return -1;
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    return v < max ? (long)v : -1;
}

static int control(struct hconn *c, const char *path, size_t plen, bool head_only)
{
    struct target *t = c->t;
    struct farm *f = c->f;
    const char *q = memchr(path, '?', plen);
    size_t base = q ? (size_t)(q - path) : plen;
    if (base == 13 && memcmp(path, "/__farm/stats", 13) == 0) {
        char *js = stats_json(t);
        if (!js)
            return -1;
        int r = respond(c, 200, "application/json", js, strlen(js), head_only);
        free(js);
        return r;
    }
    if (base == 13 && memcmp(path, "/__farm/reset", 13) == 0) {
        stats_reset(&t->st, f->o.max_items);
        return respond_text(c, 200, head_only, "{\"reset\":true}\n");
    }
    if (base == 11 && memcmp(path, "/__farm/set", 11) == 0) {
        char qs[256];
        size_t ql = q ? plen - base - 1 : 0;
        if (ql >= sizeof qs)
            return respond_text(c, 400, head_only, "query too long\n");
        memcpy(qs, q ? q + 1 : "", ql);
        qs[ql] = '\0';
        double er = t->error_rate;
        long iv = t->interval_ms;
        char *save = NULL;
        for (char *kv = strtok_r(qs, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq)
                return respond_text(c, 400, head_only, "bad parameter '%s'\n", kv);
            *eq = '\0';
            char *end;
            errno = 0;
            if (strcmp(kv, "error_rate") == 0) {
                er = strtod(eq + 1, &end);
                if (errno || *end || end == eq + 1 || !(er >= 0.0 && er <= 1.0))
                    return respond_text(c, 400, head_only, "bad error_rate '%s'\n", eq + 1);
            } else if (strcmp(kv, "interval_ms") == 0) {
                iv = strtol(eq + 1, &end, 10);
                if (errno || *end || end == eq + 1 || iv < 0 || iv > 3600000)
                    return respond_text(c, 400, head_only, "bad interval_ms '%s'\n", eq + 1);
            } else {
                return respond_text(c, 400, head_only, "unknown parameter '%s'\n", kv);
            }
        }
        t->error_rate = er;
        t->interval_ms = (unsigned)iv;
        return respond_text(c, 200, head_only, "{\"error_rate\":%g,\"interval_ms\":%u}\n",
                            t->error_rate, t->interval_ms);
    }
    return respond_text(c, 404, head_only, "unknown control path\n");
}

/* Case-insensitive search for word in [s, s+n). */
static bool has_token(const char *s, size_t n, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= n; i++)
        if (strncasecmp(s + i, word, wl) == 0)
            return true;
    return false;
}

/* Handles one complete request head [0, len). Returns -1 to drop the connection now. */
static int handle_request(struct hconn *c, const char *h, size_t len)
{
    struct target *t = c->t;
    struct farm *f = c->f;
    int64_t now = farm_mono_us();

    /* Request line: METHOD SP TARGET SP HTTP/1.x CRLF */
    const char *eol = memchr(h, '\n', len);
    const char *sp1 = memchr(h, ' ', (size_t)(eol - h));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    size_t vlen = sp2 ? (size_t)(eol - sp2 - 1) : 0;
    if (vlen && sp2[vlen] == '\r')
        vlen--;
    if (!sp1 || !sp2 || sp1 == h || sp2 == sp1 + 1 || sp1[1] != '/' || vlen != 8 ||
        (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 && memcmp(sp2 + 1, "HTTP/1.0", 8) != 0)) {
        c->close_after = true;
        return respond_text(c, 400, false, "bad request line\n");
    }
    bool http10 = sp2[8] == '0';
    const char *path = sp1 + 1;
    size_t plen = (size_t)(sp2 - path);
    size_t mlen = (size_t)(sp1 - h);
    bool is_get = mlen == 3 && memcmp(h, "GET", 3) == 0;
    bool is_head = mlen == 4 && memcmp(h, "HEAD", 4) == 0;

    /* Headers */
    bool keep = !http10;
    const char *line = eol + 1;
    while (line < h + len) {
        const char *le = memchr(line, '\n', (size_t)(h + len - line));
        if (!le)
            break;
        size_t ll = (size_t)(le - line);
        if (ll >= 11 && strncasecmp(line, "connection:", 11) == 0) {
            if (has_token(line + 11, ll - 11, "close"))
                keep = false;
            else if (has_token(line + 11, ll - 11, "keep-alive"))
                keep = true;
        } else if (ll >= 15 && strncasecmp(line, "content-length:", 15) == 0) {
            const char *v = line + 15;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            /* a body is read and discarded, so what follows it is the next request: the
             * framing a client sends decides what the target counts (scatter's tests of
             * request smuggling rely on this, as a real server would behave) */
            char *end;
            unsigned long long cl = strtoull(v, &end, 10);
            if (end == v || cl > FARM_BODY_MAX) {
                c->close_after = true;
                return respond_text(c, 413, false, "request body too large or bad Content-Length\n");
            }
            c->body_skip = (size_t)cl;
        } else if (ll >= 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
            c->close_after = true;
            return respond_text(c, 400, false, "request bodies are not accepted\n");
        }
        line = le + 1;
    }
    if (!keep)
        c->close_after = true;

    if (!is_get && !is_head)
        return respond_text(c, 405, false, "only GET and HEAD\n");

    if (plen >= 8 && memcmp(path, "/__farm/", 8) == 0)
        return control(c, path, plen, is_head);

    /* Counted request: rate limit first, like a real site's edge would. */
    struct target_stats *st = &t->st;
    struct src_stat *ss = stats_source(st, c->peer.s_addr);
    if (!ss)
        return -1;
    st->requests++;
    ss->requests++;
    int status;
    bool violation = t->interval_ms > 0 && ss->last_us >= 0 &&
                     now - ss->last_us < (int64_t)t->interval_ms * 1000;
    ss->last_us = now;
    int r;
    long item = -1, asked = -1;
    size_t pad = 0; /* /item/N?pad=BYTES: the page followed by BYTES of filler (large responses) */
    if (plen > 6 && memcmp(path, "/item/", 6) == 0) {
        const char *q = memchr(path, '?', plen);
        size_t il = q ? (size_t)(q - path) - 6 : plen - 6;
        item = parse_item(path + 6, il, f->o.max_items);
        if (q && (size_t)(path + plen - q) > 5 && memcmp(q, "?pad=", 5) == 0) {
            long pv = parse_item(q + 5, (size_t)(path + plen - q - 5), FARM_PAD_MAX + 1);
            if (pv < 0)
                item = -1;
            else
                pad = (size_t)pv;
        }
    } else if (plen > 8 && memcmp(path, "/status/", 8) == 0) {
        asked = parse_item(path + 8, plen - 8, 600);
    }
    if (violation) {
        st->violations++;
        ss->violations++;
        status = 429;
        r = respond_text(c, status, is_head, "too many requests from this address\n");
    } else if (asked >= 200) {
        status = (int)asked;
        r = respond_status(c, status, is_head);
    } else if (item < 0) {
        status = 404;
        r = respond_text(c, status, is_head, "no such page\n");
    } else {
        enum behaviour b = farm_behaviour_of_source(f, c->peer);
        if (b == BEH_BANNED) {
            status = 403;
            r = respond_text(c, status, is_head, "your address is banned\n");
        } else if (b == BEH_CAPTCHA) {
            status = 200;
            r = respond(c, status, "text/html", captcha_page, sizeof captcha_page - 1, is_head);
        } else if (t->error_rate > 0 && rng_unit(&f->rng) < t->error_rate) {
            status = 503;
            r = respond_text(c, status, is_head, "temporarily unavailable\n");
        } else {
            char small[2048];
            char *body = pad ? malloc(sizeof small + pad) : small;
            if (!body)
                return -1;
            size_t bl = item_body((unsigned)item, body, sizeof small);
            memset(body + bl, 'x', pad);
            status = 200;
            ss->ok++;
            stats_item_served(st, (unsigned)item);
            r = respond(c, status, "text/html", body, bl + pad, is_head);
            if (body != small)
                free(body);
        }
    }
    st->status[status]++;
    log_request(c, now, path, plen, status);
    return r;
}

/* Finds the end of the request head; returns its length or 0 if incomplete. */
static size_t head_end(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] == '\n' && s[i + 1] == '\n')
            return i + 2;
        if (i + 3 < n && s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '\r' && s[i + 3] == '\n')
            return i + 4;
    }
    return 0;
}

/* A complete first line that cannot be a request line means garbage: stop early. */
static bool first_line_garbage(const char *s, size_t n)
{
    const char *eol = memchr(s, '\n', n);
    size_t ll = eol ? (size_t)(eol - s) : n;
    for (size_t i = 0; i < ll; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 32 && ch != '\r' && ch != '\t')
            return true;
        if (ch >= 127)
            return true;
    }
    return eol && !memchr(s, ' ', ll);
}

static void hc_update(struct hconn *c);

/* Parses and answers buffered requests while no response is pending. -1: destroy. */
static int process(struct hconn *c)
{
    while (c->out_off == c->out_len && !c->close_after && c->in_len) {
        if (c->body_skip) {
            size_t k = c->body_skip < c->in_len ? c->body_skip : c->in_len;
            memmove(c->in, c->in + k, c->in_len - k);
            c->in_len -= k;
            c->body_skip -= k;
            continue;
        }
        if (first_line_garbage(c->in, c->in_len))
            return -1;
        size_t hl = head_end(c->in, c->in_len);
        if (!hl) {
            if (c->in_len == sizeof c->in)
                return -1; /* head too large */
            return 0;
        }
        c->out_off = c->out_len = 0;
        if (handle_request(c, c->in, hl) < 0)
            return -1;
        memmove(c->in, c->in + hl, c->in_len - hl);
        c->in_len -= hl;
    }
    return 0;
}

/* What conn_read/conn_write return besides a byte count (0 = end of stream on a read). */
enum { IO_AGAIN = -1, IO_FAIL = -2 };

/* Classifies a failed SSL call; *wait gets the socket event to wait for. */
static int ssl_result(struct hconn *c, int r, int *wait)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ: *wait = EV_READ; return IO_AGAIN;
    case SSL_ERROR_WANT_WRITE: *wait = EV_WRITE; return IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN: return 0; /* close_notify, or a bare FIN (IGNORE_UNEXPECTED_EOF) */
    default:
        /* a malformed record or ClientHello, a reset: this connection only */
        c->tls_failed = true;
        ERR_clear_error();
        return IO_FAIL;
    }
}

/* The connection's byte stream: the socket, or the SSL object on a TLS target. */
static ssize_t conn_read(struct hconn *c, char *buf, size_t n)
{
    if (!c->ssl) {
        ssize_t r = recv(c->fd, buf, n, 0);
        if (r >= 0)
            return r;
        return errno == EAGAIN || errno == EINTR ? IO_AGAIN : IO_FAIL;
    }
    ERR_clear_error(); /* SSL_get_error reads the queue: it must hold only this call's errors */
    int r = SSL_read(c->ssl, buf, (int)n);
    if (r > 0) {
        c->rd_wait = EV_READ;
        return r;
    }
    return ssl_result(c, r, &c->rd_wait);
}

static ssize_t conn_write(struct hconn *c, const char *buf, size_t n)
{
    if (!c->ssl) {
        ssize_t r = send(c->fd, buf, n, MSG_NOSIGNAL);
        if (r >= 0)
            return r;
        return errno == EAGAIN || errno == EINTR ? IO_AGAIN : IO_FAIL;
    }
    ERR_clear_error();
    int r = SSL_write(c->ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n));
    if (r > 0) {
        c->wr_wait = EV_WRITE;
        return r;
    }
    int x = ssl_result(c, r, &c->wr_wait);
    return x == 0 ? IO_FAIL : x; /* the peer closed: the response cannot be delivered */
}

/* TLS: advances the handshake; 0 once it is done, IO_AGAIN or IO_FAIL. */
static int conn_handshake(struct hconn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->handshaking = false;
        c->rd_wait = EV_READ;
        c->idle.repeat = IDLE_TIMEOUT_S;
        ev_timer_again(c->f->loop, &c->idle);
        return 0;
    }
    int x = ssl_result(c, r, &c->rd_wait);
    return x == 0 ? IO_FAIL : x;
}

static void hc_update(struct hconn *c)
{
    bool pending = c->out_off < c->out_len;
    if (!c->handshaking && !pending && (c->close_after || c->rd_eof)) {
        hc_destroy(c);
        return;
    }
    bool reading = !c->rd_eof && !c->close_after && c->in_len < sizeof c->in;
    int want = 0;
    if (c->handshaking) {
        want = c->rd_wait;
    } else {
        if (reading)
            want |= c->rd_wait;
        if (pending)
            want |= c->wr_wait;
    }
    if (want != c->w_ev) {
        if (c->w_ev)
            ev_io_stop(c->f->loop, &c->w);
        c->w_ev = want;
        if (want) {
            ev_io_set(&c->w, c->fd, want);
            ev_io_start(c->f->loop, &c->w);
        }
    }
    /* A TLS record can hold more than the request buffer took: those bytes are already off
     * the socket, so no readiness event will come for them. */
    if (reading && c->ssl && !c->handshaking && SSL_pending(c->ssl) > 0)
        ev_feed_event(c->f->loop, &c->w, EV_READ);
}

static void on_conn(struct ev_loop *loop, ev_io *w, int revents)
{
    struct hconn *c = w->data;
    if (c->handshaking) {
        int r = conn_handshake(c);
        if (r == IO_FAIL) {
            hc_destroy(c);
            return;
        }
        if (r == IO_AGAIN) {
            hc_update(c);
            return;
        }
        revents = c->rd_wait; /* the first request may have come with the last flight */
    }
    if ((revents & c->rd_wait) && !c->rd_eof && c->in_len < sizeof c->in) {
        ssize_t n = conn_read(c, c->in + c->in_len, sizeof c->in - c->in_len);
        if (n == 0) {
            c->rd_eof = true;
        } else if (n == IO_FAIL) {
            hc_destroy(c);
            return;
        } else if (n > 0) {
            c->in_len += (size_t)n;
            ev_timer_again(loop, &c->idle);
        }
    }
    if ((revents & c->wr_wait) && c->out_off < c->out_len) {
        ssize_t n = conn_write(c, c->out + c->out_off, c->out_len - c->out_off);
        if (n == IO_FAIL) {
            hc_destroy(c);
            return;
        }
        if (n > 0) {
            c->out_off += (size_t)n;
            ev_timer_again(loop, &c->idle);
        }
        if (c->out_off == c->out_len)
            c->out_off = c->out_len = 0;
    }
    if (process(c) < 0) {
        hc_destroy(c);
        return;
    }
    hc_update(c);
}

static void on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    hc_destroy(w->data);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct target *t = w->data;
    struct farm *f = t->farm;
    (void)revents;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_in peer;
        socklen_t pl = sizeof peer;
        int fd = accept4(t->fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                ev_io_stop(loop, &t->accept_w);
                ev_timer_start(loop, &t->retry_w);
            }
            return;
        }
        struct hconn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        if (t->tls) {
            c->ssl = SSL_new(f->tls_ctx);
            if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
                SSL_free(c->ssl);
                ERR_clear_error();
                close(fd);
                free(c);
                continue;
            }
            SSL_set_accept_state(c->ssl);
            c->handshaking = true;
        }
        c->f = f;
        c->t = t;
        c->fd = fd;
        c->peer = peer.sin_addr;
        c->rd_wait = EV_READ;
        c->wr_wait = EV_WRITE;
        c->link.destroy = hc_destroy_link;
        farm_conn_add(f, &c->link);
        ev_io_init(&c->w, on_conn, fd, 0);
        c->w.data = c;
        ev_init(&c->idle, on_idle);
        /* the handshake gets a deadline of its own: bytes that never complete it do not
         * extend it (a slow or stuck ClientHello holds an SSL object, not just a socket) */
        c->idle.repeat = c->handshaking ? HANDSHAKE_TIMEOUT_S : IDLE_TIMEOUT_S;
        c->idle.data = c;
        ev_timer_again(loop, &c->idle);
        hc_update(c);
    }
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct target *t = w->data;
    (void)revents;
    ev_io_start(loop, &t->accept_w);
}

int target_start(struct farm *f, struct target *t, char *err, size_t errlen)
{
    char ip[INET_ADDRSTRLEN];
    t->farm = f;
    inet_ntop(AF_INET, &t->addr.sin_addr, ip, sizeof ip);
    snprintf(t->name, sizeof t->name, "%s:%u", ip, ntohs(t->addr.sin_port));
    t->error_rate = f->o.error_rate;
    t->interval_ms = f->o.interval_ms;
    ev_timer_init(&t->retry_w, on_retry, 0.1, 0.0);
    t->retry_w.data = t;
    if (stats_init(&t->st, f->o.max_items) < 0) {
        snprintf(err, errlen, "out of memory for target statistics");
        return -1;
    }
    t->fd = farm_listen(&t->addr, err, errlen);
    if (t->fd < 0)
        return -1;
    ev_io_init(&t->accept_w, on_accept, t->fd, EV_READ);
    t->accept_w.data = t;
    ev_io_start(f->loop, &t->accept_w);
    return 0;
}

void target_stop(struct farm *f, struct target *t)
{
    ev_timer_stop(f->loop, &t->retry_w);
    if (t->fd >= 0) {
        ev_io_stop(f->loop, &t->accept_w);
        close(t->fd);
        t->fd = -1;
    }
    stats_free(&t->st);
}
