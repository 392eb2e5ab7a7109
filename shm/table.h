/*
 * The shared table: the only state shared between scatter's processes.
 *
 * One MAP_SHARED anonymous mapping, created by the master before it forks, sized once from
 * config limits. Every cross-reference is an index (uint32_t) into one of the arrays below,
 * never a pointer, so the layout means the same thing in every process.
 *
 * Layout (offsets stored in the header, each region 64-byte aligned):
 *   shm_header | shm_proxy[max_proxies] | shm_host[max_hosts] | uint32_t hash[hash_size]
 *   | shm_cell[max_hosts][max_proxies]
 * Cells are host-major so "select the best proxies for host H" scans one contiguous row, and
 * rows of hosts never registered are never touched (and so cost no resident memory).
 *
 * Writers (see shm/README.md for the full table):
 *   - "lock": written only while holding hdr->registry_lock (robust, process-shared mutex).
 *   - "atomic": any process, C11 atomics only.
 *   - "master": only the master process writes it (plain or atomic store); others read it.
 * All times are milliseconds of CLOCK_MONOTONIC (shm_now_ms), shared across processes on one
 * machine. Functions that depend on time take `now_ms` so tests can inject a clock.
 */
#ifndef SCATTER_SHM_TABLE_H
#define SCATTER_SHM_TABLE_H

#include <assert.h> /* static_assert is a macro from here in C11 */
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/limits.h"

#define SHM_MAGIC   0x3152455454414353ULL /* "SCATTER1" little-endian */
#define SHM_VERSION 5u /* 5: selection counters, worker serving_pid, Redis counters */

#define SHM_NONE UINT32_MAX /* "no index" */

#define SHM_HOST_NAME_MAX  256 /* "host[:port]", lowercase, NUL-terminated */
#define SHM_ADDR_HOST_MAX  256 /* proxy host: IPv4, IPv6 (no brackets) or a name */
#define SHM_CRED_MAX       128 /* user and password, each */
#define SHM_MAX_WORKERS    SC_MAX_WORKERS /* queued_workers, live_workers: one bit each */
#define SHM_THROUGHPUT_RING 128 /* seconds of per-second completion counts */
#define SHM_WINDOW_MAX     56  /* health_window upper bound: mask and count share 64 bits */
#define SHM_ERR_SLOTS      16  /* per-error-code counters, indexed by scatter_err */
#define SHM_LAT_BUCKETS    12  /* latency histogram: the bounds below, then +Inf */
static_assert(ERR_COUNT <= SHM_ERR_SLOTS, "one counter slot per error code");

typedef enum { PROXY_SOCKS5 = 0, PROXY_SOCKS5H, PROXY_SOCKS4, PROXY_SOCKS4A, PROXY_HTTP } shm_scheme;

typedef enum { PSTATE_UNKNOWN = 0, PSTATE_ACTIVE = 1, PSTATE_DEAD = 2 } shm_pstate;

typedef enum { CIRCUIT_CLOSED = 0, CIRCUIT_OPEN = 1, CIRCUIT_HALF_OPEN = 2 } shm_circuit;

/* A parsed, normalised proxy address (also used outside shared memory). */
typedef struct {
    uint8_t scheme; /* shm_scheme */
    uint16_t port;
    char host[SHM_ADDR_HOST_MAX]; /* IPv6 without brackets; names lowercased */
    char user[SHM_CRED_MAX];      /* empty: no credentials */
    char pass[SHM_CRED_MAX];
} shm_proxy_addr;

static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be shared");
static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free to be shared");
static_assert(SHM_MAX_WORKERS <= 64, "the per-host worker masks have one bit per worker in 64 bits");

/* The fields select_claim reads for every proxy come first and the slot is cache-line
 * aligned, so the selection scan touches exactly one line per proxy. */
typedef struct {
    alignas(64) _Atomic uint32_t sources; /* lock-free OR: bitmask of source indexes that list it */
    _Atomic uint32_t state;         /* atomic: shm_pstate */
    _Atomic uint64_t success;       /* atomic: global successes (all hosts) */
    _Atomic uint64_t fail;          /* atomic: global failures charged to the proxy itself */
    _Atomic uint64_t last_listed_ms;/* master: last time a source listed it */
    shm_proxy_addr addr;            /* lock: written once before n_proxies publishes the slot */
} shm_proxy;

typedef struct {
    char name[SHM_HOST_NAME_MAX];   /* lock: written once before n_hosts publishes the slot */
    _Atomic uint32_t allowed_sources;  /* master: 0 = every proxy; else source bitmask */
    _Atomic uint32_t interval_ms;      /* master: effective rate-limit interval */
    _Atomic uint32_t own_pool;         /* master: 1 if [host:NAME] gives it its own pool */
    _Atomic uint32_t circuit;          /* master: shm_circuit */
    _Atomic uint32_t probe_token;      /* master sets 1 in HALF_OPEN; a worker CASes 1->0 */
    _Atomic uint64_t circuit_since_ms; /* master */
    _Atomic uint32_t target_err_run;   /* atomic: consecutive TargetError outcomes */
    _Atomic uint32_t last_probe_result;/* atomic: 0 none, 1 success, 2 failure (probe) */
    _Atomic uint64_t success;          /* atomic */
    _Atomic uint64_t fail;             /* atomic: proxy-charged failures for this host */
    _Atomic uint64_t target_errors;    /* atomic */
    _Atomic uint64_t zero_avail;       /* atomic: dispatches that found no healthy proxy */
    _Atomic uint64_t last_zero_avail_ms; /* atomic */
    _Atomic uint64_t last_success_ms;  /* atomic */
    _Atomic uint64_t queued_workers;   /* atomic: bit i-1 set while worker i has tasks of this
                                        * host queued; each worker sets and clears only its bit */
    _Atomic uint32_t gen;              /* lock: bumped when the slot is reclaimed or reused, so a
                                        * worker that found the slot by name can tell it changed */
    _Atomic uint64_t last_task_ms;     /* atomic: when a worker last created a task of this host */
    _Atomic uint64_t live_workers;     /* atomic: bit i-1 set while worker i owns a live task of this
                                        * host; each worker sets and clears only its bit, the master
                                        * clears a reaped worker's bit (the host is idle when 0) */
} shm_host;

/*
 * One (proxy, host) pair. 64 bytes, one cache line.
 * window: bits 0..55 outcomes, newest in bit 0 (1 = success); bits 56..63 count (<= window size).
 * rl: the rate-limit word (shm/ratelimit.h).
 */
typedef struct {
    _Atomic uint64_t rl;
    _Atomic uint64_t window;
    _Atomic uint64_t last_success_ms;
    _Atomic uint64_t cooldown_until_ms;
    _Atomic uint32_t success;
    _Atomic uint32_t fail;
    _Atomic uint32_t ewma_latency_ms; /* 0 = no sample yet */
    _Atomic uint32_t consec_fails;
    _Atomic uint32_t cooldown_level;
    _Atomic uint32_t dead;            /* atomic: evicted for this host only */
    uint8_t spare[8];                 /* unused: a cell is one cache line */
} shm_cell;
static_assert(sizeof(shm_cell) == 64, "a cell is one cache line");

/* A fixed-bucket latency histogram. b[i] counts samples <= SHM_LAT_BOUND_MS[i] and above the
 * bound before (not cumulative: readers add up); b[SHM_LAT_BUCKETS-1] is +Inf. Atomic add. */
typedef struct {
    _Atomic uint64_t b[SHM_LAT_BUCKETS];
    _Atomic uint64_t sum_ms, n;
} shm_hist;
static const uint32_t SHM_LAT_BOUND_MS[SHM_LAT_BUCKETS - 1] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

static inline void shm_hist_record(shm_hist *h, uint64_t ms)
{
    uint32_t i = 0;
    while (i < SHM_LAT_BUCKETS - 1 && ms > SHM_LAT_BOUND_MS[i])
        i++;
    atomic_fetch_add(&h->b[i], 1);
    atomic_fetch_add(&h->sum_ms, ms);
    atomic_fetch_add(&h->n, 1);
}

/* Global counters: atomics, any process. The names are what `status` reports. */
typedef struct {
    _Atomic int64_t pending;        /* tasks accepted and not yet answered (all workers) */
    _Atomic int64_t inflight;       /* attempts currently in libcurl (all workers) */
    _Atomic uint64_t submitted, completed, failed, cancelled_tasks;
    _Atomic uint64_t attempts, attempts_cancelled, attempts_failed;
    _Atomic uint64_t straggler_hedges; /* attempts added to a round because it straggled */
    _Atomic uint64_t delayed, requeued, dispatches, zero_avail;
    _Atomic uint64_t skip_ratelimit, skip_cooldown, skip_inflight;
    _Atomic uint64_t selects, select_ns; /* select_claim calls of the workers and their time */
    _Atomic uint64_t latency_sum_ms, latency_n;     /* completed tasks */
    /* per-second completions and successes; slot = second % ring, tagged with the second */
    _Atomic uint64_t tp_sec[SHM_THROUGHPUT_RING];
    _Atomic uint32_t tp_done[SHM_THROUGHPUT_RING];
    _Atomic uint32_t tp_ok[SHM_THROUGHPUT_RING];
    /* for the management endpoints (master/mgmt.c), indexed by scatter_err */
    _Atomic uint64_t task_errors[SHM_ERR_SLOTS]; /* tasks ended with this error (task_finish_error) */
    _Atomic uint64_t refused[SHM_ERR_SLOTS];     /* submissions refused before a task existed */
    shm_hist task_latency;    /* submission to answer, every task that ended but cancelled ones */
    shm_hist attempt_latency; /* start to end of every attempt that ended with its task alive */
    /* the Redis task stream (worker/redis.c): entries read, claimed from other consumers,
     * answered, left pending (their result could not be written, or the worker stopped) */
    _Atomic uint64_t redis_read, redis_claimed, redis_answered, redis_left, redis_dead;
} shm_counters;

/* What one worker owes the global counters. The worker adds to its row whenever it adds to
 * c.pending / c.inflight; a worker killed before it could subtract leaves its share here, and
 * the master, after reaping it and before starting its successor, takes the row back out of
 * the global counters (shm_worker_reclaim). Without the rows a SIGKILLed worker's tasks and
 * attempts would count against pool_capacity and max_inflight forever. */
typedef struct {
    _Atomic int32_t pid;            /* master: 0 = slot unused */
    _Atomic uint32_t restarts;      /* master */
    _Atomic uint64_t started_ms;    /* master */
    _Atomic int64_t owed_pending;   /* the worker of this slot (atomic add); master zeroes it once reaped */
    _Atomic int64_t owed_inflight;  /* the worker of this slot (atomic add); master zeroes it once reaped */
    _Atomic uint32_t clients_msgpack; /* the worker of this slot (atomic store of its count); master zeroes it once reaped */
    _Atomic uint32_t clients_http;    /* the worker of this slot (atomic store of its count); master zeroes it once reaped */
    _Atomic uint32_t tunnels;         /* CONNECT tunnels open: as clients_http */
    _Atomic int32_t serving_pid;    /* the worker of this slot: its pid once its loop serves (the
                                     * master's readiness, sd_notify READY=1) */
    _Atomic uint32_t redis_up;      /* the worker of this slot: 1 while connected to the Redis stream;
                                     * master zeroes it once reaped */
} shm_worker_slot;

typedef struct {
    uint64_t magic;
    uint32_t version;
    uint32_t max_proxies, max_hosts, hash_size;
    uint64_t off_proxies, off_hosts, off_hash, off_cells, total_size;
    pthread_mutex_t registry_lock;  /* robust + process-shared */
    _Atomic uint32_t n_proxies;     /* lock (store-release after the slot is filled) */
    _Atomic uint32_t n_hosts;       /* lock (store-release after the slot is filled) */
    _Atomic int32_t master_pid;     /* master */
    _Atomic uint32_t n_workers;     /* master */
    _Atomic uint32_t shutting_down; /* master */
    _Atomic uint64_t host_full_ms;  /* atomic: last time a registration found max_hosts slots taken */
    _Atomic uint32_t hash_tombs;    /* lock: tombstones in the hash (reclaimed hosts); rebuilt at max_hosts */
    _Atomic uint64_t started_ms;    /* master */
    _Atomic uint32_t shard_k, shard_n; /* master, at start: shard = K/N (docs/SCALING.md) */
    _Atomic uint64_t shard_dropped; /* master: proxies of the sources outside the shard, as of each
                                     * source's last complete fetch */
    shm_worker_slot workers[SHM_MAX_WORKERS];
    shm_counters c;
} shm_header;

/* A process's handle on the table: plain pointers into this process's mapping. */
typedef struct {
    shm_header *hdr;
    shm_proxy *proxies;
    shm_host *hosts;
    uint32_t *hash;   /* open addressing, SHM_NONE = empty; lock */
    shm_cell *cells;
    size_t size;
    struct sess_table *sess; /* sticky sessions: a mapping of its own (shm/session.h); NULL = none */
} shm_table;

/* Creates the mapping (anonymous, MAP_SHARED) and initialises it. 0 or -errno. */
int shm_create(shm_table *t, uint32_t max_proxies, uint32_t max_hosts);
/* Unmaps. Children inherit the mapping through fork and need no attach. */
void shm_destroy(shm_table *t);
/* Bytes the mapping would take for these limits (virtual; untouched pages are free). */
size_t shm_size_for(uint32_t max_proxies, uint32_t max_hosts);

/* Registry lock: robust. If the previous owner died, the state is made consistent and the
 * lock is ours. 0 or -errno. */
int shm_lock(shm_table *t);
void shm_unlock(shm_table *t);

static inline shm_cell *shm_cell_at(const shm_table *t, uint32_t proxy, uint32_t host)
{
    return &t->cells[(size_t)host * t->hdr->max_proxies + proxy];
}

/* Counter changes of worker `index` (1-based): the global counter and the worker's row move
 * together, so the master can return a dead worker's share (shm_worker_reclaim). */
static inline void shm_pending_add(shm_table *t, uint32_t index, int64_t delta)
{
    atomic_fetch_add(&t->hdr->c.pending, delta);
    if (index >= 1 && index <= SHM_MAX_WORKERS)
        atomic_fetch_add(&t->hdr->workers[index - 1].owed_pending, delta);
}
static inline void shm_inflight_add(shm_table *t, uint32_t index, int64_t delta)
{
    atomic_fetch_add(&t->hdr->c.inflight, delta);
    if (index >= 1 && index <= SHM_MAX_WORKERS)
        atomic_fetch_add(&t->hdr->workers[index - 1].owed_inflight, delta);
}
/* Worker `index` publishes its own client counts (front-end connections) after each change. */
static inline void shm_clients_set(shm_table *t, uint32_t index, uint32_t msgpack, uint32_t http, uint32_t tunnels)
{
    if (index >= 1 && index <= SHM_MAX_WORKERS) {
        atomic_store(&t->hdr->workers[index - 1].clients_msgpack, msgpack);
        atomic_store(&t->hdr->workers[index - 1].clients_http, http);
        atomic_store(&t->hdr->workers[index - 1].tunnels, tunnels);
    }
}
/* Master only, after the worker of `index` was reaped (it can no longer write its row):
 * subtracts what it still owed from the global counters and zeroes its row. */
void shm_worker_reclaim(shm_table *t, uint32_t index, int64_t *pending, int64_t *inflight);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t shm_now_ms(void);

#endif
