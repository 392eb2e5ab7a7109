/*
 * Metrics read from the shared table, and the one metric every finished task writes: the
 * per-second throughput ring (shm_counters.tp_*, written by workers with CAS, see
 * shm/README.md). The master and the workers both call these. The throughput ring packs (second, successes, completions)
 * into one 64-bit word per slot so that a slot is reset and counted in one CAS: two processes
 * rolling the same slot over to a new second can never lose each other's counts.
 *   bits 40..63: second (mod 2^24), bits 20..39: successes, bits 0..19: completions.
 */
#include "shm/metrics.h"

#include "shm/health.h"
#include "shm/ratelimit.h"

#define TP_SEC(v) ((v) >> 40)
#define TP_OK(v) (((v) >> 20) & 0xfffffu)
#define TP_DONE(v) ((v)&0xfffffu)
#define SEC24(s) ((s)&0xffffffu)

void metrics_tp_record(shm_table *t, uint64_t now_ms, int ok)
{
    uint64_t sec = now_ms / 1000;
    _Atomic uint64_t *slot = &t->hdr->c.tp_sec[sec % SHM_THROUGHPUT_RING];
    uint64_t old = atomic_load(slot), nv;
    do {
        uint64_t d = 0, o = 0;
        if (TP_SEC(old) == SEC24(sec)) {
            d = TP_DONE(old);
            o = TP_OK(old);
        }
        if (d < 0xfffffu)
            d++;
        if (ok && o < 0xfffffu)
            o++;
        nv = (SEC24(sec) << 40) | (o << 20) | d;
    } while (!atomic_compare_exchange_weak(slot, &old, nv));
}

void metrics_tp_window(const shm_table *t, uint64_t now_ms, uint32_t secs, uint64_t *done, uint64_t *ok)
{
    uint64_t cur = now_ms / 1000;
    *done = *ok = 0;
    if (secs >= SHM_THROUGHPUT_RING)
        secs = SHM_THROUGHPUT_RING - 1;
    /* whole seconds before the current one, which is still filling */
    for (uint32_t i = 1; i <= secs && i <= cur; i++) {
        uint64_t s = cur - i;
        uint64_t v = atomic_load(&t->hdr->c.tp_sec[s % SHM_THROUGHPUT_RING]);
        if (TP_SEC(v) == SEC24(s)) {
            *done += TP_DONE(v);
            *ok += TP_OK(v);
        }
    }
}

void metrics_host_counts(const shm_table *t, uint32_t host, uint64_t now_ms, pool_counts *out)
{
    out->healthy = out->cooling = out->dead = 0;
    uint32_t np = atomic_load_explicit(&t->hdr->n_proxies, memory_order_acquire);
    uint32_t allowed = atomic_load(&t->hosts[host].allowed_sources);
    for (uint32_t p = 0; p < np; p++) {
        if (allowed && !(atomic_load(&t->proxies[p].sources) & allowed))
            continue;
        switch (health_classify(t, p, host, now_ms)) {
        case CELL_HEALTHY: out->healthy++; break;
        case CELL_COOLING: out->cooling++; break;
        case CELL_DEAD: out->dead++; break;
        }
    }
}

void metrics_proxy_counts(const shm_table *t, uint64_t now_ms, pool_counts *out)
{
    out->healthy = out->cooling = out->dead = 0;
    uint32_t np = atomic_load_explicit(&t->hdr->n_proxies, memory_order_acquire);
    uint32_t nh = atomic_load_explicit(&t->hdr->n_hosts, memory_order_acquire);
    for (uint32_t p = 0; p < np; p++) {
        if (atomic_load(&t->proxies[p].state) == PSTATE_DEAD) {
            out->dead++;
            continue;
        }
        uint32_t usable = nh == 0, any_dead_only = nh > 0;
        for (uint32_t h = 0; h < nh && !usable; h++) {
            cell_class cc = health_classify(t, p, h, now_ms);
            if (cc == CELL_HEALTHY)
                usable = 1;
            if (cc != CELL_DEAD)
                any_dead_only = 0;
        }
        if (usable)
            out->healthy++;
        else if (any_dead_only)
            out->dead++;
        else
            out->cooling++;
    }
}

const char *metrics_circuit_name(uint32_t c)
{
    return c == CIRCUIT_OPEN ? "open" : c == CIRCUIT_HALF_OPEN ? "half_open" : "closed";
}
