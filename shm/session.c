/*
 * The sticky-session table (session.h). Layout of the mapping:
 *   sess_table header (lock, limits, n_used) | uint32_t bucket heads[n_buckets] | sess_entry[cap]
 * Entries are chained per bucket by index (SESS_NONE ends a chain); entries 0..n_used-1 have
 * been used; once all have, a new session takes the least recently used expired one.
 */
#include "shm/session.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

typedef struct {
    uint64_t hash;
    uint64_t last_ms;             /* last use, CLOCK_MONOTONIC ms (shm_now_ms) */
    uint32_t host;                /* shm host index */
    uint32_t proxy;               /* pinned proxy index, SESS_NONE = none */
    uint32_t next;                /* next entry of the bucket's chain */
    char name[SESS_NAME_MAX];
} sess_entry;

struct sess_table {
    pthread_mutex_t lock;         /* robust + process-shared; guards everything below and after */
    uint32_t cap, n_buckets, n_used;
    size_t size, off_buckets, off_entries;
};

#define ALIGN64(x) (((x) + 63) & ~(size_t)63)

static uint32_t *buckets(sess_table *s) { return (uint32_t *)((char *)s + s->off_buckets); }
static sess_entry *entries(sess_table *s) { return (sess_entry *)((char *)s + s->off_entries); }

static uint64_t key_hash(const char *name, size_t n, uint32_t host)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)name[i];
        h *= 1099511628211ULL;
    }
    for (int i = 0; i < 4; i++) {
        h ^= (host >> (8 * i)) & 0xffu;
        h *= 1099511628211ULL;
    }
    return h;
}

static void reset(sess_table *s)
{
    s->n_used = 0;
    uint32_t *b = buckets(s);
    for (uint32_t i = 0; i < s->n_buckets; i++)
        b[i] = SESS_NONE;
}

int sess_create(sess_table **out, uint32_t max_entries)
{
    if (max_entries == 0 || max_entries > SESS_MAX_ENTRIES)
        return -EINVAL;
    uint32_t nb = 1;
    while (nb < max_entries)
        nb <<= 1;
    size_t off_b = ALIGN64(sizeof(sess_table));
    size_t off_e = ALIGN64(off_b + (size_t)nb * sizeof(uint32_t));
    size_t size = off_e + (size_t)max_entries * sizeof(sess_entry);
    sess_table *s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s == MAP_FAILED)
        return -errno;
    pthread_mutexattr_t ma;
    int rc = pthread_mutexattr_init(&ma);
    if (!rc)
        rc = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    if (!rc)
        rc = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    if (!rc)
        rc = pthread_mutex_init(&s->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    if (rc) {
        munmap(s, size);
        return -rc;
    }
    s->cap = max_entries;
    s->n_buckets = nb;
    s->size = size;
    s->off_buckets = off_b;
    s->off_entries = off_e;
    reset(s);
    *out = s;
    return 0;
}

void sess_destroy(sess_table *s)
{
    if (s)
        munmap(s, s->size);
}

uint32_t sess_capacity(const sess_table *s) { return s->cap; }

/* A process that died holding the lock may have left a chain half-linked: the sessions are
 * forgotten (a pin is only a preference; each session picks a proxy again). */
static int lock(sess_table *s)
{
    int rc = pthread_mutex_lock(&s->lock);
    if (rc == EOWNERDEAD) {
        reset(s);
        pthread_mutex_consistent(&s->lock);
        return 0;
    }
    return -rc;
}

static int expired(const sess_entry *e, uint64_t now, uint64_t ttl_ms)
{
    return now > e->last_ms && now - e->last_ms > ttl_ms;
}

static void unlink_entry(sess_table *s, uint32_t idx)
{
    sess_entry *e = entries(s);
    uint32_t *p = &buckets(s)[e[idx].hash & (s->n_buckets - 1)];
    while (*p != SESS_NONE && *p != idx)
        p = &e[*p].next;
    if (*p == idx)
        *p = e[idx].next;
}

/* Under the lock: the entry of (name, host), found or made. SESS_NONE when the table is full
 * of live sessions. An expired entry found again starts unpinned. */
static uint32_t get_or_create(sess_table *s, const char *name, size_t n, uint32_t host, uint64_t now,
                              uint64_t ttl_ms)
{
    sess_entry *e = entries(s);
    uint64_t h = key_hash(name, n, host);
    uint32_t *head = &buckets(s)[h & (s->n_buckets - 1)];
    for (uint32_t i = *head; i != SESS_NONE; i = e[i].next)
        if (e[i].hash == h && e[i].host == host && strcmp(e[i].name, name) == 0) {
            if (expired(&e[i], now, ttl_ms))
                e[i].proxy = SESS_NONE;
            return i;
        }
    uint32_t idx = SESS_NONE;
    if (s->n_used < s->cap) {
        idx = s->n_used++;
    } else {
        /* full: the least recently used of the expired ones (a scan, only when full) */
        uint64_t oldest = UINT64_MAX;
        for (uint32_t i = 0; i < s->cap; i++)
            if (expired(&e[i], now, ttl_ms) && e[i].last_ms < oldest) {
                oldest = e[i].last_ms;
                idx = i;
            }
        if (idx == SESS_NONE)
            return SESS_NONE;
        unlink_entry(s, idx);
    }
    e[idx].hash = h;
    e[idx].host = host;
    e[idx].proxy = SESS_NONE;
    e[idx].last_ms = now;
    memcpy(e[idx].name, name, n);
    e[idx].name[n] = '\0';
    e[idx].next = *head;
    *head = idx;
    return idx;
}

static int name_len(const char *name, size_t *n)
{
    *n = strnlen(name, SESS_NAME_MAX);
    return *n == 0 || *n >= SESS_NAME_MAX ? -EINVAL : 0;
}

int sess_touch(sess_table *s, const char *name, uint32_t host, uint64_t now, uint64_t ttl_ms, uint32_t *proxy)
{
    int rc = sess_repin(s, name, host, SESS_NONE, SESS_NONE, now, ttl_ms, proxy);
    return rc < 0 ? rc : 0;
}

int sess_repin(sess_table *s, const char *name, uint32_t host, uint32_t from, uint32_t to, uint64_t now,
               uint64_t ttl_ms, uint32_t *pinned)
{
    size_t n;
    int rc = name_len(name, &n);
    if (rc)
        return rc;
    if ((rc = lock(s)))
        return rc;
    uint32_t idx = get_or_create(s, name, n, host, now, ttl_ms);
    if (idx == SESS_NONE) {
        pthread_mutex_unlock(&s->lock);
        return -ENOSPC;
    }
    sess_entry *e = &entries(s)[idx];
    int moved = 0;
    if ((e->proxy == from || e->proxy == SESS_NONE) && e->proxy != to) {
        e->proxy = to;
        moved = 1;
    }
    e->last_ms = now;
    *pinned = e->proxy;
    pthread_mutex_unlock(&s->lock);
    return moved;
}

uint32_t sess_count_live(sess_table *s, uint64_t now, uint64_t ttl_ms)
{
    if (lock(s))
        return 0;
    uint32_t live = 0;
    const sess_entry *e = entries(s);
    for (uint32_t i = 0; i < s->n_used; i++)
        live += !expired(&e[i], now, ttl_ms);
    pthread_mutex_unlock(&s->lock);
    return live;
}
