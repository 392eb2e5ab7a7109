/*
 * Proxy address parsing and normalisation. Pure functions, no shared state.
 * Accepted lines (surrounding whitespace ignored; empty lines and '#' comments are "skip"):
 *   ip:port | host:port | [v6]:port
 *   scheme://[user:pass@]host:port  with scheme socks5, socks5h, socks4, socks4a, http
 *   user:pass@host:port  (scheme socks5)
 * The bare form defaults to socks5. Ports 1..65535; hosts: IPv4, bracketed IPv6, or a DNS name
 * of letters, digits, '-' and '.'. Credentials: printable ASCII without '@', ':', '/' or space
 * in the user, without '@' or space in the password; each under SHM_CRED_MAX bytes.
 * Parsing never resolves a name; paddr_resolve does, and turns the host into the IP it checked.
 */
#ifndef SCATTER_SHM_PROXY_ADDR_H
#define SCATTER_SHM_PROXY_ADDR_H

#include <stddef.h>
#include "shm/table.h"

typedef enum {
    PADDR_OK = 0,
    PADDR_SKIP = 1,        /* blank line or comment: not an error */
    PADDR_BAD_SCHEME = -1,
    PADDR_BAD_HOST = -2,
    PADDR_BAD_PORT = -3,
    PADDR_BAD_CREDS = -4,
    PADDR_TOO_LONG = -5,
    PADDR_SYNTAX = -6,
    PADDR_PRIVATE = -7,    /* paddr_resolve: an address of the host is private or loopback */
    PADDR_UNRESOLVED = -8, /* paddr_resolve: the name has no IPv4 or IPv6 address */
} paddr_result;

struct addrinfo;

/* Parses one line (len bytes, need not be NUL-terminated). */
paddr_result paddr_parse(const char *line, size_t len, shm_proxy_addr *out);
/* Human text for a result ("bad port" ...). */
const char *paddr_strerror(paddr_result r);
/* Canonical URL "scheme://[user:pass@]host:port" ([v6] bracketed). Returns length written
 * (excluding NUL), or -1 if cap is too small. The canonical form is the dedupe key and the
 * state file key. */
int paddr_format(const shm_proxy_addr *a, char *buf, size_t cap);
/* Same, but never shows the password (for logs and status). */
int paddr_format_redacted(const shm_proxy_addr *a, char *buf, size_t cap);
/* Scheme name as libcurl wants it in CURLOPT_PROXY ("socks5h" ...). */
const char *paddr_scheme_name(shm_scheme s);
/* True if the host is a loopback, private, link-local or unspecified IP literal, or
 * "localhost" (issue: hostile proxy lists must not aim the daemon at local services). Any
 * other DNS name is not private by itself: only what it resolves to tells (paddr_resolve). */
int paddr_is_private(const shm_proxy_addr *a);
/* True if the host is an IPv4 or IPv6 literal: connecting to it needs no lookup. */
int paddr_is_ip(const shm_proxy_addr *a);
/* Checks every address of a lookup's result list (struct addrinfo from getaddrinfo) and
 * picks the one to connect to, so a second lookup cannot turn a checked name into another
 * address: PADDR_PRIVATE if allow_private is 0 and any IPv4/IPv6 address in the list is
 * private (paddr_is_private), PADDR_UNRESOLVED if the list has none; else PADDR_OK with
 * a->host replaced by the first IPv4 address, or the first IPv6 one if it has no IPv4. */
paddr_result paddr_pick(shm_proxy_addr *a, const struct addrinfo *res, int allow_private);
/* An IP literal is checked as it is; a name is looked up with getaddrinfo (BLOCKING: call it
 * off any event loop, e.g. in the master's source fetcher child) and handed to paddr_pick.
 * *gai_err (if not NULL) gets getaddrinfo's error when the result is PADDR_UNRESOLVED
 * because of it, else 0. */
paddr_result paddr_resolve(shm_proxy_addr *a, int allow_private, int *gai_err);

#endif
