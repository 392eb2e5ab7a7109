/*
 * Proxy and host registries.
 *
 * Slots are append-only: a slot is filled, then published by a store-release of n_proxies /
 * n_hosts, then indexed in the hash. Readers that load the count (or a hash entry) with
 * acquire therefore never see a half-written identity. One open-addressing hash serves both
 * kinds of key; host entries carry HASH_HOST_BIT so a proxy and a host never match each other.
 * Proxy entries are never deleted (proxy indexes are forever). A host slot can be reclaimed
 * by the master when the table is full (reg_host_reclaim): its hash entry becomes a tombstone,
 * which lookups step over and a later insert may reuse, and the slot's gen is bumped so a
 * worker that found it by name before the reclaim notices (reg_host_still).
 */
#include "shm/registry.h"

#include <errno.h>
#include <string.h>

#include "shm/proxy_addr.h"
#include "shm/ratelimit.h"

#define HASH_HOST_BIT 0x80000000u
#define HASH_TOMB 0xfffffffeu /* a reclaimed host's entry: keep probing past it */
#define CANON_MAX (SHM_ADDR_HOST_MAX + 2 * SHM_CRED_MAX + 32)

static uint64_t fnv1a(const char *s, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

static uint64_t proxy_hash(const shm_proxy_addr *a)
{
    char buf[CANON_MAX];
    if (paddr_format(a, buf, sizeof(buf)) < 0)
        buf[0] = '\0';
    return fnv1a(buf, 0);
}

static uint64_t host_hash(const char *name)
{
    return fnv1a(name, 0x9e3779b97f4a7c15ULL);
}

static uint32_t hash_load(const shm_table *t, uint32_t slot)
{
    return __atomic_load_n(&t->hash[slot], __ATOMIC_ACQUIRE);
}

static void hash_store(shm_table *t, uint32_t slot, uint32_t v)
{
    __atomic_store_n(&t->hash[slot], v, __ATOMIC_RELEASE);
}

/* Normalised addresses are equal exactly when their canonical strings are, and comparing the
 * fields avoids formatting the stored one on every probe. */
static int addr_equal(const shm_proxy_addr *x, const shm_proxy_addr *y)
{
    return x->scheme == y->scheme && x->port == y->port && strcmp(x->host, y->host) == 0 &&
           strcmp(x->user, y->user) == 0 && strcmp(x->pass, y->pass) == 0;
}

static uint32_t proxy_lookup(const shm_table *t, const shm_proxy_addr *a, uint64_t h,
                             uint32_t *free_slot)
{
    uint32_t mask = t->hdr->hash_size - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        uint32_t e = hash_load(t, i);
        if (e == SHM_NONE) {
            if (free_slot)
                *free_slot = i;
            return SHM_NONE;
        }
        if (e != HASH_TOMB && !(e & HASH_HOST_BIT) && addr_equal(&t->proxies[e].addr, a))
            return e;
    }
}

/* A name read while the master may be clearing the slot is compared within its buffer only. */
static int host_name_is(const shm_host *hs, const char *name)
{
    return strncmp(hs->name, name, SHM_HOST_NAME_MAX) == 0;
}

static uint32_t host_lookup(const shm_table *t, const char *name, uint64_t h, uint32_t *free_slot)
{
    uint32_t mask = t->hdr->hash_size - 1;
    uint32_t tomb = SHM_NONE;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        uint32_t e = hash_load(t, i);
        if (e == SHM_NONE) {
            if (free_slot)
                *free_slot = tomb != SHM_NONE ? tomb : i;
            return SHM_NONE;
        }
        if (e == HASH_TOMB) {
            if (tomb == SHM_NONE)
                tomb = i;
            continue;
        }
        if ((e & HASH_HOST_BIT) && host_name_is(&t->hosts[e & ~HASH_HOST_BIT], name))
            return e & ~HASH_HOST_BIT;
    }
}

void reg_repair_index(shm_table *t)
{
    uint32_t np = atomic_load(&t->hdr->n_proxies);
    uint32_t nh = atomic_load(&t->hdr->n_hosts);
    uint32_t slot;
    for (uint32_t i = 0; i < np; i++) {
        const shm_proxy_addr *a = &t->proxies[i].addr;
        uint64_t h = proxy_hash(a);
        if (proxy_lookup(t, a, h, &slot) == SHM_NONE)
            hash_store(t, slot, i);
    }
    for (uint32_t i = 0; i < nh; i++) {
        const char *name = t->hosts[i].name;
        if (!name[0])
            continue; /* reclaimed, free */
        uint64_t h = host_hash(name);
        if (host_lookup(t, name, h, &slot) == SHM_NONE) {
            if (hash_load(t, slot) == HASH_TOMB)
                atomic_fetch_sub(&t->hdr->hash_tombs, 1);
            hash_store(t, slot, i | HASH_HOST_BIT);
        }
    }
}

int reg_proxy_add(shm_table *t, const shm_proxy_addr *a, uint32_t source_mask, int revive,
                  uint64_t now_ms, uint32_t *idx)
{
    uint64_t h = proxy_hash(a);
    int rc = shm_lock(t);
    if (rc != 0)
        return rc;
    uint32_t slot = 0;
    uint32_t i = proxy_lookup(t, a, h, &slot);
    if (i != SHM_NONE) {
        shm_proxy *px = &t->proxies[i];
        atomic_fetch_or(&px->sources, source_mask);
        atomic_store(&px->last_listed_ms, now_ms);
        if (revive && atomic_load(&px->state) == PSTATE_DEAD)
            reg_proxy_revive(t, i);
        shm_unlock(t);
        if (idx)
            *idx = i;
        return 0;
    }
    uint32_t n = atomic_load_explicit(&t->hdr->n_proxies, memory_order_relaxed);
    if (n >= t->hdr->max_proxies) {
        shm_unlock(t);
        return -ENOSPC;
    }
    shm_proxy *px = &t->proxies[n];
    px->addr = *a;
    atomic_store_explicit(&px->sources, source_mask, memory_order_relaxed);
    atomic_store_explicit(&px->state, PSTATE_UNKNOWN, memory_order_relaxed);
    atomic_store_explicit(&px->success, 0, memory_order_relaxed);
    atomic_store_explicit(&px->fail, 0, memory_order_relaxed);
    atomic_store_explicit(&px->last_listed_ms, now_ms, memory_order_relaxed);
    atomic_store_explicit(&t->hdr->n_proxies, n + 1, memory_order_release);
    hash_store(t, slot, n);
    shm_unlock(t);
    if (idx)
        *idx = n;
    return 1;
}

uint32_t reg_proxy_find(shm_table *t, const shm_proxy_addr *a)
{
    uint64_t h = proxy_hash(a);
    if (shm_lock(t) != 0)
        return SHM_NONE;
    uint32_t i = proxy_lookup(t, a, h, NULL);
    shm_unlock(t);
    return i;
}

int reg_proxy_mark_dead(shm_table *t, uint32_t idx)
{
    if (idx >= atomic_load(&t->hdr->n_proxies))
        return 0;
    return atomic_exchange(&t->proxies[idx].state, PSTATE_DEAD) != PSTATE_DEAD;
}

void reg_proxy_revive(shm_table *t, uint32_t idx)
{
    if (idx >= atomic_load(&t->hdr->n_proxies))
        return;
    shm_proxy *px = &t->proxies[idx];
    /* Without forgetting the failures, a revived proxy with no success would be evicted again
     * by its very next failure instead of getting a fresh eviction_min_samples of chances. */
    if (atomic_load(&px->success) == 0)
        atomic_store(&px->fail, 0);
    uint32_t nh = atomic_load(&t->hdr->n_hosts);
    for (uint32_t h = 0; h < nh; h++) {
        shm_cell *c = shm_cell_at(t, idx, h);
        if (atomic_load(&c->success) == 0)
            atomic_store(&c->fail, 0);
        atomic_store(&c->cooldown_until_ms, 0);
        atomic_store(&c->consec_fails, 0);
        atomic_store(&c->cooldown_level, 0);
        atomic_store(&c->dead, 0);
    }
    atomic_store(&px->state, PSTATE_UNKNOWN);
}

/* Lowercases into out; 0 or -EINVAL. Allows what "host[:port]" can hold, IPv6 brackets
 * included, and nothing that could confuse a log line or a status listing. */
static int normalise_host(const char *name, char *out)
{
    size_t n = 0;
    for (; name[n]; n++) {
        if (n + 1 >= SHM_HOST_NAME_MAX)
            return -EINVAL;
        char c = name[n];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == ':' || c == '[' || c == ']' || c == '_'))
            return -EINVAL;
        out[n] = c;
    }
    if (n == 0)
        return -EINVAL;
    out[n] = '\0';
    return 0;
}

uint32_t reg_host_find(const shm_table *t, const char *name)
{
    char norm[SHM_HOST_NAME_MAX];
    if (normalise_host(name, norm) != 0)
        return SHM_NONE;
    return host_lookup(t, norm, host_hash(norm), NULL);
}

int reg_host_get(shm_table *t, const char *name, uint32_t *idx)
{
    char norm[SHM_HOST_NAME_MAX];
    if (normalise_host(name, norm) != 0)
        return -EINVAL;
    uint64_t h = host_hash(norm);
    uint32_t i = host_lookup(t, norm, h, NULL);
    if (i == SHM_NONE) {
        int rc = shm_lock(t);
        if (rc != 0)
            return rc;
        uint32_t slot = 0;
        i = host_lookup(t, norm, h, &slot); /* another process may have added it meanwhile */
        if (i == SHM_NONE) {
            uint32_t n = atomic_load_explicit(&t->hdr->n_hosts, memory_order_relaxed);
            if (n < t->hdr->max_hosts) {
                shm_host *hs = &t->hosts[n];
                memcpy(hs->name, norm, strlen(norm) + 1);
                atomic_store_explicit(&t->hdr->n_hosts, n + 1, memory_order_release);
                i = n;
            } else {
                /* full: a slot the master reclaimed, if any */
                for (uint32_t k = 0; k < n && i == SHM_NONE; k++)
                    if (t->hosts[k].name[0] == '\0')
                        i = k;
                if (i == SHM_NONE) {
                    shm_unlock(t);
                    return -ENOSPC;
                }
                shm_host *hs = &t->hosts[i];
                memcpy(hs->name, norm, strlen(norm) + 1);
                atomic_fetch_add(&hs->gen, 1);
            }
            if (hash_load(t, slot) == HASH_TOMB)
                atomic_fetch_sub(&t->hdr->hash_tombs, 1);
            hash_store(t, slot, i | HASH_HOST_BIT);
        }
        shm_unlock(t);
    }
    if (idx)
        *idx = i;
    return 0;
}

int reg_host_still(const shm_table *t, uint32_t idx, const char *name, uint32_t gen)
{
    if (idx >= t->hdr->max_hosts)
        return 0;
    const shm_host *hs = &t->hosts[idx];
    /* seq_cst: ordered after the caller's live_workers store, against the master's gen bump */
    if (atomic_load(&hs->gen) != gen)
        return 0;
    char norm[SHM_HOST_NAME_MAX];
    return normalise_host(name, norm) == 0 && host_name_is(hs, norm);
}

static void clear_host(shm_table *t, uint32_t idx)
{
    shm_host *hs = &t->hosts[idx];
    uint32_t np = atomic_load(&t->hdr->n_proxies);
    for (uint32_t p = 0; p < np; p++) {
        shm_cell *c = shm_cell_at(t, p, idx);
        atomic_store(&c->rl, 0);
        atomic_store(&c->window, 0);
        atomic_store(&c->last_success_ms, 0);
        atomic_store(&c->cooldown_until_ms, 0);
        atomic_store(&c->success, 0);
        atomic_store(&c->fail, 0);
        atomic_store(&c->ewma_latency_ms, 0);
        atomic_store(&c->consec_fails, 0);
        atomic_store(&c->cooldown_level, 0);
        atomic_store(&c->dead, 0);
    }
    atomic_store(&hs->allowed_sources, 0);
    atomic_store(&hs->interval_ms, 0);
    atomic_store(&hs->own_pool, 0);
    atomic_store(&hs->circuit, CIRCUIT_CLOSED);
    atomic_store(&hs->probe_token, 0);
    atomic_store(&hs->circuit_since_ms, 0);
    atomic_store(&hs->target_err_run, 0);
    atomic_store(&hs->last_probe_result, 0);
    atomic_store(&hs->success, 0);
    atomic_store(&hs->fail, 0);
    atomic_store(&hs->target_errors, 0);
    atomic_store(&hs->zero_avail, 0);
    atomic_store(&hs->last_zero_avail_ms, 0);
    atomic_store(&hs->last_success_ms, 0);
    atomic_store(&hs->last_task_ms, 0);
}

/* Under the lock: rebuilds the hash without tombstones, so they never crowd out the empty
 * entries that end every probe. A lock-free lookup running meanwhile may miss an entry and
 * report "not found"; reg_host_get then looks again under the lock, and the other callers
 * (listings, the master's own lookups) tolerate a miss this rare (once per max_hosts
 * reclaims). */
static void rehash(shm_table *t)
{
    uint32_t size = t->hdr->hash_size;
    for (uint32_t i = 0; i < size; i++)
        hash_store(t, i, SHM_NONE);
    atomic_store(&t->hdr->hash_tombs, 0);
    reg_repair_index(t);
}

int reg_host_reclaim(shm_table *t, uint32_t idx, uint64_t now_ms)
{
    if (idx >= atomic_load(&t->hdr->n_hosts))
        return -EINVAL;
    int rc = shm_lock(t);
    if (rc != 0)
        return rc;
    shm_host *hs = &t->hosts[idx];
    char name[SHM_HOST_NAME_MAX];
    memcpy(name, hs->name, sizeof name);
    name[sizeof name - 1] = '\0';
    rc = -EBUSY;
    if (!name[0] || atomic_load(&hs->live_workers) || atomic_load(&hs->queued_workers))
        goto out;
    /* every word free and due: nothing in flight, and no pair's next use lies ahead */
    uint32_t np = atomic_load(&t->hdr->n_proxies);
    for (uint32_t p = 0; p < np; p++) {
        uint64_t w = atomic_load(&shm_cell_at(t, p, idx)->rl);
        if (rl_is_held(w) || w > now_ms)
            goto out;
    }
    uint32_t slot;
    uint32_t mask = t->hdr->hash_size - 1;
    slot = (uint32_t)host_hash(name) & mask;
    while (hash_load(t, slot) != (idx | HASH_HOST_BIT)) {
        if (hash_load(t, slot) == SHM_NONE)
            goto out; /* not indexed: leave it alone */
        slot = (slot + 1) & mask;
    }
    /* Unpublish, then bump gen, then look at live_workers once more (all seq_cst): a worker
     * that set its bit after our first look either sees the new gen or the empty name and
     * retries, or its bit is seen here and the reclaim is undone. */
    /* a tombstone only where a probe chain may run past it; their number is capped so the
     * hash always keeps empty entries (hash_size >= 2 x (max_proxies + max_hosts)) */
    int tomb = hash_load(t, (slot + 1) & mask) != SHM_NONE;
    hash_store(t, slot, tomb ? HASH_TOMB : SHM_NONE);
    __atomic_store_n(&hs->name[0], '\0', __ATOMIC_SEQ_CST);
    atomic_fetch_add(&hs->gen, 1);
    if (atomic_load(&hs->live_workers)) {
        __atomic_store_n(&hs->name[0], name[0], __ATOMIC_SEQ_CST);
        hash_store(t, slot, idx | HASH_HOST_BIT);
        goto out;
    }
    clear_host(t, idx);
    memset(hs->name, 0, sizeof hs->name);
    if (tomb && atomic_fetch_add(&t->hdr->hash_tombs, 1) + 1 >= t->hdr->max_hosts)
        rehash(t);
    rc = 0;
out:
    shm_unlock(t);
    return rc;
}
