/*
 * Sticky sessions: which proxy a session uses for a host, shared by every worker (a client's
 * connections land on any of them). A separate anonymous MAP_SHARED mapping, made by the
 * master before it forks (like the shared table), bounded at max_sessions entries; indexes,
 * never pointers. Key = (session name, host index); value = the pinned proxy index and the
 * last use. An entry idle longer than the caller's ttl is expired: it reads as unpinned and is
 * the first to be reused when the table is full (the least recently used one). Every field is
 * written under one robust process-shared mutex: a session operation is a few hundred
 * nanoseconds once per dispatched session task, far off the select_claim hot path.
 */
#ifndef SCATTER_SHM_SESSION_H
#define SCATTER_SHM_SESSION_H

#include <stdint.h>

#define SESS_NAME_MAX 64          /* bytes of a session name, NUL included: names of 1..63 */
#define SESS_NONE UINT32_MAX      /* no proxy pinned */
#define SESS_MAX_ENTRIES 1000000u /* the max_sessions key's upper bound */

typedef struct sess_table sess_table;

/* Master, before forking: a table of max_entries (1..SESS_MAX_ENTRIES) sessions. 0 or -errno. */
int sess_create(sess_table **out, uint32_t max_entries);
/* Unmaps (each process its own view). NULL is fine. */
void sess_destroy(sess_table *s);

/* Finds session (name, host) or creates it unpinned, and stamps its last use `now`. *proxy is
 * its pinned proxy, SESS_NONE when it has none (new, or idle over ttl_ms: then forgotten).
 * 0; -EINVAL for a name of 0 or over SESS_NAME_MAX - 1 bytes; -ENOSPC when the table is full
 * of sessions used within ttl_ms. */
int sess_touch(sess_table *s, const char *name, uint32_t host, uint64_t now, uint64_t ttl_ms, uint32_t *proxy);
/* Moves the session's pin from `from` (SESS_NONE: unpinned) to `to`, unless another process
 * moved it first: *pinned is the pin in effect afterwards (`to`, or the other's choice), so
 * that a failure seen by several tasks at once moves the session once. Creates the session
 * if it was reused meanwhile. 1 if this call changed the pin, 0 if not; errors as sess_touch. */
int sess_repin(sess_table *s, const char *name, uint32_t host, uint32_t from, uint32_t to, uint64_t now,
               uint64_t ttl_ms, uint32_t *pinned);
/* Sessions used within ttl_ms (a scan: tests and diagnostics). */
uint32_t sess_count_live(sess_table *s, uint64_t now, uint64_t ttl_ms);
/* Capacity the table was made with. */
uint32_t sess_capacity(const sess_table *s);

#endif
