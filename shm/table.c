/*
 * Creation of the shared table and its registry lock.
 *
 * The table is one anonymous MAP_SHARED mapping made by the master before it forks, so every
 * process sees the same pages at the same offsets without any attach step. Regions start on
 * 64-byte boundaries so that no cell shares a cache line with another, and the offsets are
 * written into the header so a reader (or a debugger) can check the layout it was built with.
 * The registry lock is robust: a worker killed while adding a host must not wedge the others.
 */
#include "shm/table.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "shm/registry.h"
#include "shm/session.h"

#define SHM_ALIGN 64u

static uint64_t align_up(uint64_t v)
{
    return (v + SHM_ALIGN - 1) & ~(uint64_t)(SHM_ALIGN - 1);
}

/* Power of two at least twice the keys, so open addressing never fills and probes stay short. */
static uint32_t hash_size_for(uint32_t max_proxies, uint32_t max_hosts)
{
    uint64_t want = 2 * ((uint64_t)max_proxies + max_hosts);
    uint64_t n = 16;
    while (n < want)
        n <<= 1;
    return (uint32_t)n;
}

typedef struct {
    uint64_t proxies, hosts, hash, cells, total;
    uint32_t hash_size;
} layout;

static int compute_layout(uint32_t max_proxies, uint32_t max_hosts, layout *l)
{
    if (max_proxies == 0 || max_hosts == 0)
        return -EINVAL;
    /* Indexes are uint32_t with SHM_NONE reserved, and the hash tags hosts with the top bit. */
    if (max_proxies >= (1u << 30) || max_hosts >= (1u << 30))
        return -EINVAL;
    l->hash_size = hash_size_for(max_proxies, max_hosts);
    l->proxies = align_up(sizeof(shm_header));
    l->hosts = align_up(l->proxies + (uint64_t)max_proxies * sizeof(shm_proxy));
    l->hash = align_up(l->hosts + (uint64_t)max_hosts * sizeof(shm_host));
    l->cells = align_up(l->hash + (uint64_t)l->hash_size * sizeof(uint32_t));
    uint64_t cells = (uint64_t)max_proxies * max_hosts;
    if (cells > (UINT64_MAX - l->cells) / sizeof(shm_cell))
        return -EOVERFLOW;
    l->total = align_up(l->cells + cells * sizeof(shm_cell));
    if (l->total > SIZE_MAX)
        return -EOVERFLOW;
    return 0;
}

size_t shm_size_for(uint32_t max_proxies, uint32_t max_hosts)
{
    layout l;
    if (compute_layout(max_proxies, max_hosts, &l) != 0)
        return 0;
    return (size_t)l.total;
}

static int init_lock(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc != 0)
        return -rc;
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return -rc;
}

int shm_create(shm_table *t, uint32_t max_proxies, uint32_t max_hosts)
{
    layout l;
    memset(t, 0, sizeof(*t));
    int rc = compute_layout(max_proxies, max_hosts, &l);
    if (rc != 0)
        return rc;
    /* MAP_NORESERVE: rows of hosts never registered are never touched and must not count
     * against overcommit either. Fresh anonymous pages are zero, which is the initial state of
     * every counter, cell and rate-limit word ("free since time 0"). */
    void *base = mmap(NULL, (size_t)l.total, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return -errno;
    char *b = base;
    shm_header *h = base;
    h->magic = SHM_MAGIC;
    h->version = SHM_VERSION;
    h->max_proxies = max_proxies;
    h->max_hosts = max_hosts;
    h->hash_size = l.hash_size;
    h->off_proxies = l.proxies;
    h->off_hosts = l.hosts;
    h->off_hash = l.hash;
    h->off_cells = l.cells;
    h->total_size = l.total;
    rc = init_lock(&h->registry_lock);
    if (rc != 0) {
        munmap(base, (size_t)l.total);
        return rc;
    }
    t->hdr = h;
    t->proxies = (shm_proxy *)(void *)(b + l.proxies);
    t->hosts = (shm_host *)(void *)(b + l.hosts);
    t->hash = (uint32_t *)(void *)(b + l.hash);
    t->cells = (shm_cell *)(void *)(b + l.cells);
    t->size = (size_t)l.total;
    /* SHM_NONE is all ones, so one memset marks every hash slot empty. */
    memset(t->hash, 0xff, (size_t)l.hash_size * sizeof(uint32_t));
    atomic_store(&h->started_ms, shm_now_ms());
    return 0;
}

void shm_destroy(shm_table *t)
{
    if (t->hdr == NULL)
        return;
    /* The mutex is left alone: other processes may still map the pages, and destroying a
     * process-shared mutex they might hold is undefined. The unmap is what frees it. */
    munmap(t->hdr, t->size);
    sess_destroy(t->sess);
    memset(t, 0, sizeof(*t));
}

int shm_lock(shm_table *t)
{
    int rc = pthread_mutex_lock(&t->hdr->registry_lock);
    if (rc == EOWNERDEAD) {
        /* The owner died mid-update. Slots are published before they are indexed, so the only
         * damage possible is a published slot missing from the hash: re-index before anyone
         * can look it up under the lock. */
        reg_repair_index(t);
        rc = pthread_mutex_consistent(&t->hdr->registry_lock);
    }
    return -rc;
}

void shm_unlock(shm_table *t)
{
    pthread_mutex_unlock(&t->hdr->registry_lock);
}

uint64_t shm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void shm_worker_reclaim(shm_table *t, uint32_t index, int64_t *pending, int64_t *inflight)
{
    int64_t p = 0, f = 0;
    if (index >= 1 && index <= SHM_MAX_WORKERS) {
        shm_worker_slot *ws = &t->hdr->workers[index - 1];
        p = atomic_exchange(&ws->owed_pending, 0);
        f = atomic_exchange(&ws->owed_inflight, 0);
        atomic_store(&ws->clients_msgpack, 0u); /* its connections died with it */
        atomic_store(&ws->clients_http, 0u);
        atomic_store(&ws->tunnels, 0u);
        atomic_store(&ws->redis_up, 0u);
        atomic_fetch_sub(&t->hdr->c.pending, p);
        atomic_fetch_sub(&t->hdr->c.inflight, f);
    }
    if (pending)
        *pending = p;
    if (inflight)
        *inflight = f;
}
