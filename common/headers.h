/*
 * Which request headers a client may hand to the target. The daemon owns the framing of every
 * request it sends (libcurl computes Content-Length from the body it is given) and the
 * connection it sends it on, so a client-supplied framing or hop-by-hop header is either
 * dropped or, for a Host that names another host than the URL, refused. Without this a
 * task carrying "Content-Length: 0" and a body of pipelined requests made the target see
 * several requests from one proxy in one rate-limit slot (request smuggling).
 * Shared by every front end that turns client requests into tasks.
 */
#ifndef SCATTER_COMMON_HEADERS_H
#define SCATTER_COMMON_HEADERS_H

#include <stddef.h>

typedef enum {
    HDR_PASS = 0,   /* end-to-end: sent as given */
    HDR_FRAMING,    /* Content-Length, Transfer-Encoding: dropped, the daemon frames the body */
    HDR_HOP,        /* Connection, Keep-Alive, TE, Trailer, Upgrade, Expect, Proxy-*: dropped */
    HDR_HOST        /* Host: dropped when it agrees with the URL, refused when it does not */
} hdr_kind;

/* Classifies a header name (case-insensitive, n bytes, no NUL needed). */
hdr_kind hdr_classify(const char *name, size_t n);

/* 1 if `name` (n bytes) is one of the comma-separated tokens of a Connection header value
 * (those headers are hop-by-hop too, RFC 9110 section 7.6.1). */
int hdr_in_connection_list(const char *list, size_t list_n, const char *name, size_t n);

/* 1 if a Host header value agrees with the URL's host key ("host[:port]", lowercase, port
 * only when the URL gives one; `default_port` is the scheme's, 80 or 443). */
int hdr_host_matches(const char *value, size_t n, const char *host_key, unsigned default_port);

#endif
