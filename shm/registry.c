/*
 * Proxy and host registries.
 *
 * Slots are append-only: a slot is filled, then published by a store-release of n_proxies /
 * n_hosts, then indexed in the hash. Readers that load the count (or a hash entry) with
 * acquire therefore never see a half-written identity. One open-addressing hash serves both
 * kinds of key; host entries carry HASH_HOST_BIT so a proxy and a host never match each other.
 * Entries are never deleted (indexes are forever), so lock-free readers need no tombstones.
 */
#include "shm/registry.h"

#include <errno.h>
#include <string.h>

#include "shm/proxy_addr.h"

#define HASH_HOST_BIT 0x80000000u
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
        if (!(e & HASH_HOST_BIT) && addr_equal(&t->proxies[e].addr, a))
            return e;
    }
}

static uint32_t host_lookup(const shm_table *t, const char *name, uint64_t h, uint32_t *free_slot)
{
    uint32_t mask = t->hdr->hash_size - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        uint32_t e = hash_load(t, i);
        if (e == SHM_NONE) {
            if (free_slot)
                *free_slot = i;
            return SHM_NONE;
        }
        if ((e & HASH_HOST_BIT) && strcmp(t->hosts[e & ~HASH_HOST_BIT].name, name) == 0)
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
        uint64_t h = host_hash(name);
        if (host_lookup(t, name, h, &slot) == SHM_NONE)
            hash_store(t, slot, i | HASH_HOST_BIT);
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
            if (n >= t->hdr->max_hosts) {
                shm_unlock(t);
                return -ENOSPC;
            }
            shm_host *hs = &t->hosts[n];
            memcpy(hs->name, norm, strlen(norm) + 1);
            atomic_store_explicit(&t->hdr->n_hosts, n + 1, memory_order_release);
            hash_store(t, slot, n | HASH_HOST_BIT);
            i = n;
        }
        shm_unlock(t);
    }
    if (idx)
        *idx = i;
    return 0;
}
