/*
 * Health bookkeeping: what each outcome does to a cell, its proxy and its host.
 *
 * Everything here is lock-free. Counters are fetch-adds; the packed window and the EWMA are
 * CAS loops, so concurrent outcomes for one cell (the rate-limit word allows one request in
 * flight, but a late cancel can overlap the next claim) are never lost. Decisions that must
 * happen once (start a cooldown, evict) are taken by whichever update crosses the threshold.
 */
#include "shm/health.h"

#define WIN_BITS 56
#define WIN_MASK ((1ULL << WIN_BITS) - 1)

void health_params_default(health_params *p)
{
    p->window = 30;
    p->cooldown_fails = 3;
    p->cooldown_base_ms = 30000;
    p->cooldown_max_ms = 300000;
    p->cooldown_jitter_pct = 0;
    p->eviction_min_samples = 30;
    p->ewma_alpha_pct = 20;
}

uint64_t health_window_push(uint64_t w, int success, uint32_t window_size)
{
    if (window_size == 0)
        window_size = 1;
    if (window_size > SHM_WINDOW_MAX)
        window_size = SHM_WINDOW_MAX;
    uint64_t keep = (1ULL << window_size) - 1;
    uint64_t bits = (((w & WIN_MASK) << 1) | (success ? 1u : 0u)) & keep;
    uint64_t count = w >> WIN_BITS;
    if (count < window_size)
        count++;
    if (count > window_size)
        count = window_size; /* the window was shrunk by a reload */
    return (count << WIN_BITS) | bits;
}

uint32_t health_window_count(uint64_t w)
{
    return (uint32_t)(w >> WIN_BITS);
}

uint64_t health_window_pack(uint32_t count, uint64_t bits)
{
    if (count > SHM_WINDOW_MAX)
        count = SHM_WINDOW_MAX;
    return ((uint64_t)count << WIN_BITS) | (bits & ((1ULL << count) - 1));
}

uint32_t health_window_successes(uint64_t w)
{
    uint32_t count = health_window_count(w);
    uint64_t valid = count >= WIN_BITS ? WIN_MASK : ((1ULL << count) - 1);
    return (uint32_t)__builtin_popcountll(w & valid);
}

uint32_t health_ewma(uint32_t old_ms, uint32_t sample_ms, uint32_t alpha_pct)
{
    if (alpha_pct > 100)
        alpha_pct = 100;
    uint64_t v = old_ms == 0 ? sample_ms
                             : ((uint64_t)old_ms * (100 - alpha_pct) +
                                (uint64_t)sample_ms * alpha_pct + 50) / 100;
    /* 0 means "no sample yet", so a real sub-millisecond latency is kept as 1. */
    if (v == 0)
        v = 1;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

uint32_t health_cooldown_ms(const health_params *p, uint32_t level)
{
    uint64_t ms = p->cooldown_base_ms;
    for (uint32_t i = 0; i < level && ms < p->cooldown_max_ms; i++)
        ms <<= 1;
    return ms > p->cooldown_max_ms ? p->cooldown_max_ms : (uint32_t)ms;
}

int health_cell_rate_permille(const shm_cell *c)
{
    uint64_t w = atomic_load_explicit(&c->window, memory_order_relaxed);
    uint32_t n = health_window_count(w);
    if (n == 0)
        return -1;
    return (int)(health_window_successes(w) * 1000u / n);
}

int health_proxy_rate_permille(const shm_proxy *px)
{
    uint64_t s = atomic_load_explicit(&px->success, memory_order_relaxed);
    uint64_t f = atomic_load_explicit(&px->fail, memory_order_relaxed);
    if (s + f == 0)
        return -1;
    return (int)(s * 1000 / (s + f));
}

static void window_record(shm_cell *c, int success, uint32_t size)
{
    uint64_t w = atomic_load_explicit(&c->window, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&c->window, &w,
                                                  health_window_push(w, success, size),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static uint32_t jittered(uint32_t ms, uint32_t pct, uint32_t rnd)
{
    if (pct == 0)
        return ms;
    if (pct > 100)
        pct = 100;
    uint64_t span = (uint64_t)ms * pct / 100;
    uint64_t off = rnd % (2 * span + 1);
    return (uint32_t)(ms - span + off);
}

/* A failure charged to the cell: window, counters, cooldown, per-host eviction. */
static int charge_cell(shm_cell *c, uint64_t now_ms, const health_params *p, uint32_t rnd, int at_once)
{
    int flags = 0;
    window_record(c, 0, p->window);
    uint32_t fails = atomic_fetch_add(&c->fail, 1) + 1;
    uint32_t run = atomic_fetch_add(&c->consec_fails, 1) + 1;
    if (at_once && run < p->cooldown_fails) {
        atomic_store(&c->consec_fails, p->cooldown_fails);
        run = p->cooldown_fails;
    }
    /* A result that lands while the cell is already cooling (an attempt claimed before the
     * cooldown began) must not climb the ladder a second time. */
    if (run >= p->cooldown_fails && atomic_load(&c->cooldown_until_ms) <= now_ms) {
        uint32_t level = atomic_fetch_add(&c->cooldown_level, 1);
        uint32_t ms = jittered(health_cooldown_ms(p, level), p->cooldown_jitter_pct, rnd);
        atomic_store(&c->cooldown_until_ms, now_ms + ms);
        flags |= HEALTH_COOLDOWN_STARTED;
    }
    if (atomic_load(&c->success) == 0 && fails >= p->eviction_min_samples) {
        uint32_t alive = 0;
        if (atomic_compare_exchange_strong(&c->dead, &alive, 1))
            flags |= HEALTH_CELL_EVICTED;
    }
    return flags;
}

int health_record(shm_table *t, uint32_t proxy, uint32_t host, health_outcome o,
                  uint32_t latency_ms, uint64_t now_ms, const health_params *p, uint32_t rnd)
{
    if (proxy >= t->hdr->max_proxies || host >= t->hdr->max_hosts)
        return 0;
    shm_cell *c = shm_cell_at(t, proxy, host);
    shm_proxy *px = &t->proxies[proxy];
    shm_host *hs = &t->hosts[host];
    int flags = 0;

    switch (o) {
    case OUTCOME_SUCCESS: {
        window_record(c, 1, p->window);
        atomic_fetch_add(&c->success, 1);
        uint32_t old = atomic_load(&c->ewma_latency_ms);
        while (!atomic_compare_exchange_weak(&c->ewma_latency_ms, &old,
                                             health_ewma(old, latency_ms, p->ewma_alpha_pct)))
            ;
        atomic_store(&c->last_success_ms, now_ms);
        uint32_t run = atomic_exchange(&c->consec_fails, 0);
        uint32_t level = atomic_exchange(&c->cooldown_level, 0);
        atomic_store(&c->cooldown_until_ms, 0);
        if (run > 0 || level > 0)
            flags |= HEALTH_RECOVERED;
        atomic_fetch_add(&px->success, 1);
        uint32_t unknown = PSTATE_UNKNOWN;
        atomic_compare_exchange_strong(&px->state, &unknown, PSTATE_ACTIVE);
        atomic_fetch_add(&hs->success, 1);
        atomic_store(&hs->last_success_ms, now_ms);
        atomic_store(&hs->target_err_run, 0);
        break;
    }
    case OUTCOME_PROXY_DOWN:
    case OUTCOME_PROXY_UNREACHABLE: {
        flags |= charge_cell(c, now_ms, p, rnd, o == OUTCOME_PROXY_UNREACHABLE);
        atomic_fetch_add(&hs->fail, 1);
        uint64_t fails = atomic_fetch_add(&px->fail, 1) + 1;
        uint64_t ok = atomic_load(&px->success);
        if (ok == 0 && fails >= p->eviction_min_samples) {
            uint32_t st = atomic_load(&px->state);
            while (st != PSTATE_DEAD &&
                   !atomic_compare_exchange_weak(&px->state, &st, PSTATE_DEAD))
                ;
            if (st != PSTATE_DEAD)
                flags |= HEALTH_PROXY_EVICTED;
        }
        break;
    }
    case OUTCOME_BLOCKED:
        flags |= charge_cell(c, now_ms, p, rnd, 0);
        atomic_fetch_add(&hs->fail, 1);
        break;
    case OUTCOME_TARGET_UNREACHABLE:
        /* per pair: this proxy may lack a route (or IPv6) that others have; per host: an
         * unreachable target trips its breaker like a 5xx. Never px->fail: a target the
         * proxy cannot reach says nothing about the other hosts it serves. */
        flags |= charge_cell(c, now_ms, p, rnd, 0);
        atomic_fetch_add(&hs->target_err_run, 1);
        atomic_fetch_add(&hs->target_errors, 1);
        break;
    case OUTCOME_TARGET_ERROR:
        atomic_fetch_add(&hs->target_err_run, 1);
        atomic_fetch_add(&hs->target_errors, 1);
        break;
    case OUTCOME_CANCELLED:
        break;
    }
    return flags;
}

cell_class health_classify(const shm_table *t, uint32_t proxy, uint32_t host, uint64_t now_ms)
{
    const shm_cell *c = shm_cell_at(t, proxy, host);
    if (atomic_load_explicit(&t->proxies[proxy].state, memory_order_relaxed) == PSTATE_DEAD ||
        atomic_load_explicit(&c->dead, memory_order_relaxed))
        return CELL_DEAD;
    if (atomic_load_explicit(&c->cooldown_until_ms, memory_order_relaxed) > now_ms)
        return CELL_COOLING;
    return CELL_HEALTHY;
}
