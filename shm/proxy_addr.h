/*
 * Proxy address parsing and normalisation. Pure functions, no shared state.
 * Accepted lines (surrounding whitespace ignored; empty lines and '#' comments are "skip"):
 *   ip:port | host:port | [v6]:port
 *   scheme://[user:pass@]host:port  with scheme socks5, socks5h, socks4, socks4a, http
 *   user:pass@host:port  (scheme socks5)
 * The bare form defaults to socks5. Ports 1..65535; hosts: IPv4, bracketed IPv6, or a DNS name
 * of letters, digits, '-' and '.'. Credentials: printable ASCII without '@', ':', '/' or space
 * in the user, without '@' or space in the password; each under SHM_CRED_MAX bytes.
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
} paddr_result;

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
 * "localhost" (issue: hostile proxy lists must not aim the daemon at local services). */
int paddr_is_private(const shm_proxy_addr *a);

#endif
