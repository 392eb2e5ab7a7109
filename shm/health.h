/*
 * Health of (proxy, host) cells and of proxies: windowed success, EWMA latency, cooldown
 * ladder, eviction. Lock-free; any process.
 */
#ifndef SCATTER_SHM_HEALTH_H
#define SCATTER_SHM_HEALTH_H

#include <stdint.h>
#include "shm/table.h"

typedef enum {
    OUTCOME_SUCCESS = 0,
    OUTCOME_PROXY_DOWN,    /* proxy unreachable, SOCKS failure, timeout: charge cell + proxy */
    OUTCOME_BLOCKED,       /* proxy reached the target and was refused: charge the cell only */
    OUTCOME_TARGET_ERROR,  /* target failed (5xx): charge the host's breaker, no proxy */
    OUTCOME_CANCELLED,     /* race loser: no charge anywhere */
    OUTCOME_PROXY_UNREACHABLE, /* connection refused, or no handshake before the connect
                                * timeout: as PROXY_DOWN, and the pair's cooldown starts now
                                * (a closed or dead port does not come back in seconds) */
    OUTCOME_TARGET_UNREACHABLE, /* the proxy answered the SOCKS request but could not reach
                                 * the target (network/host unreachable, connection refused,
                                 * address type not supported): charge the cell and the
                                 * host's breaker, never the proxy's global health */
} health_outcome;

typedef struct {
    uint32_t window;               /* health_window, 1..SHM_WINDOW_MAX (30) */
    uint32_t cooldown_fails;       /* consecutive failures that start a cooldown (3) */
    uint32_t cooldown_base_ms;     /* 30000 */
    uint32_t cooldown_max_ms;      /* 300000 */
    uint32_t cooldown_jitter_pct;  /* +-% random spread of each cooldown (0 = exact) */
    uint32_t eviction_min_samples; /* 30 */
    uint32_t ewma_alpha_pct;       /* weight of a new latency sample, percent (20) */
} health_params;

void health_params_default(health_params *p);

/* What a record changed, for the caller to log (bit flags). */
enum {
    HEALTH_COOLDOWN_STARTED = 1,
    HEALTH_CELL_EVICTED = 2,      /* dead for this host */
    HEALTH_PROXY_EVICTED = 4,     /* dead for every host */
    HEALTH_RECOVERED = 8,         /* success after a failure run */
};

/* Records one outcome. latency_ms is used for SUCCESS. `rnd` is any random 32-bit value
 * (jitter); tests pass a constant. Returns HEALTH_* flags. */
int health_record(shm_table *t, uint32_t proxy, uint32_t host, health_outcome o,
                  uint32_t latency_ms, uint64_t now_ms, const health_params *p, uint32_t rnd);

/* Cooldown length for a given level: min(base * 2^level, max), before jitter. */
uint32_t health_cooldown_ms(const health_params *p, uint32_t level);
/* Windowed success rate of a cell in thousandths; -1 with no samples. */
int health_cell_rate_permille(const shm_cell *c);
/* Global success rate of a proxy in thousandths; -1 with no samples. */
int health_proxy_rate_permille(const shm_proxy *px);
/* Pure window maths, exposed for tests: push one outcome into a packed window word. */
uint64_t health_window_push(uint64_t w, int success, uint32_t window_size);
uint32_t health_window_count(uint64_t w);
/* A window word from its count (cut to SHM_WINDOW_MAX) and outcome bits (newest in bit 0; bits
 * at or above count are dropped): how the state file restores one. */
uint64_t health_window_pack(uint32_t count, uint64_t bits);
uint32_t health_window_successes(uint64_t w);
/* EWMA step in integer ms: old == 0 means no sample yet. */
uint32_t health_ewma(uint32_t old_ms, uint32_t sample_ms, uint32_t alpha_pct);

/* Cell classification for metrics: dead (proxy dead or cell dead), cooling, or healthy. */
typedef enum { CELL_HEALTHY = 0, CELL_COOLING = 1, CELL_DEAD = 2 } cell_class;
cell_class health_classify(const shm_table *t, uint32_t proxy, uint32_t host, uint64_t now_ms);

#endif
