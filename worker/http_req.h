/*
 * The HTTP front end's request reader and the decisions it takes from a parsed request,
 * without a socket or an event loop: bytes in (libhttp-parser), one request's URL, headers
 * and body out, or the 4xx that refuses it. worker/http.c feeds it what a connection reads;
 * fuzz/fuzz_http.c feeds it libFuzzer's bytes. Every buffer is bounded by the limits given
 * at init (http_max_header, max_request_body).
 */
#ifndef SCATTER_WORKER_HTTP_REQ_H
#define SCATTER_WORKER_HTTP_REQ_H

#include "common/proto.h"

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 128

typedef struct {
    size_t name_off, name_len, val_off, val_len; /* in http_req.head */
} hdr_ref;

typedef struct http_req {
    http_parser p;
    char *head;               /* the current request's URL and header bytes (max_header) */
    size_t head_len, head_cap;
    size_t url_len;           /* the URL is head[0..url_len) */
    hdr_ref hdr[HTTP_MAX_HEADERS];
    uint32_t n_hdr;
    int in_value;             /* the last header callback was a value */
    char *body;
    size_t body_len, body_cap;
    int refuse;               /* a limit broke while parsing: the status to answer (431, 413) */
    int msg_done;             /* a whole request is parsed and waits */
    size_t max_header, max_body;
    /* called when a request's first byte and its head's end are parsed (the header timer) */
    void (*on_begin)(struct http_req *r);
    void (*on_head)(struct http_req *r);
    void *owner;
} http_req;

typedef enum {
    HTTP_READ_MORE, /* every byte consumed, no whole request yet */
    HTTP_READ_DONE, /* a whole request is in r: answer it before feeding the rest */
    HTTP_READ_BAD,  /* malformed or over a limit: answer *status and close */
} http_read;

/* A refusal: the status, the X-Scatter-Error code and the one-line text. */
typedef struct {
    int status;
    const char *code;
    char msg[512];
} http_refusal;

/* The per-request knobs (X-Scatter-Race, -Timeout, -Attempts): has_* says which were given. */
typedef struct {
    uint32_t race_width, timeout_ms, max_attempts;
    int has_race_width, has_timeout, has_max_attempts;
} http_knobs;

void http_req_init(http_req *r, size_t max_header, size_t max_body, void *owner);
void http_req_free(http_req *r);
/* Bytes held by r's buffers (they count in worker_buffer_budget). */
size_t http_req_held(const http_req *r);

/* Parses in[0..len) up to the end of one request; *used says how many bytes were consumed
 * (the rest is the next request's). On HTTP_READ_BAD, *why gets the refusal (400, 413, 431). */
http_read http_req_feed(http_req *r, const char *in, size_t len, size_t *used, http_refusal *why);

/* The parsed request's method and the parser's keep-alive verdict. */
int http_req_method(const http_req *r);
int http_req_keep_alive(const http_req *r);

/* The first header named name (case-insensitive), or NULL. */
const hdr_ref *http_req_find(const http_req *r, const char *name);

/* 1 if the Proxy-Authorization credential is `want` (user:password), or a session user
 * session-NAME with want's password; 1 too when want is empty (no http_auth). */
int http_req_auth_ok(const http_req *r, const char *want);

/* The sticky session: X-Scatter-Session, else NAME of a Proxy-Authorization user session-NAME
 * (decoded into buf, which must outlive the result). n = 0: none. */
proto_str http_req_session(const http_req *r, char *buf, size_t cap);

/* CONNECT host:port: the lower-cased host:port into key (cap bytes) and the port. 0, or -1
 * with why (400 without host:port or too long, 403 for a port not in the comma-separated
 * allowed list). */
int http_req_connect_target(const http_req *r, const char *allowed_ports, char *key, size_t cap,
                            unsigned long *port, http_refusal *why);

/* The URL to fetch: an absolute-form http:// target, or the url parameter of an origin-form
 * /fetch?url=..., turned https by X-Scatter-Scheme: https. 0 with a NUL-terminated
 * http:// or https:// URL in url, or -1 with why (400, 414). */
int http_req_url(const http_req *r, char *url, size_t cap, http_refusal *why);

/* The X-Scatter-* knobs. 0, or -1 with why (400) when one is out of range. */
int http_req_knobs(const http_req *r, http_knobs *k, http_refusal *why);

/* The client's headers to forward: all but X-Scatter-* and Host (the URL is authoritative
 * for a proxy, RFC 9112 3.2.2); the task layer drops framing and hop-by-hop ones. Returns
 * how many were written to hn/hv (at most HTTP_MAX_HEADERS each). */
uint32_t http_req_forward_headers(const http_req *r, proto_str *hn, proto_str *hv);

#endif
