/*
 * Circuit breakers, one per host, decided here and only here (docs/ARCHITECTURE.md, "When things fail"):
 *   Closed -> Open     the host has no healthy proxy (all dead or cooling; busy or
 *                      rate-limited pairs do not count against it), or its last
 *                      circuit_breaker_threshold outcomes were all TargetError.
 *   Open -> HalfOpen   after circuit_probe_interval: one probe token is put out.
 *   HalfOpen -> Closed the probe succeeded;  HalfOpen -> Open  it failed (timer restarts).
 * Workers answer new tasks for an Open host with circuit_open and let queued ones wait.
 */
#include "master/master.h"

#include "shm/metrics.h"

static void set_state(master_ctx *m, shm_host *hs, uint32_t to, uint64_t now, const char *why)
{
    uint32_t from = atomic_load(&hs->circuit);
    atomic_store(&hs->circuit_since_ms, now);
    if (to == CIRCUIT_HALF_OPEN) {
        atomic_store(&hs->last_probe_result, 0u);
        atomic_store(&hs->probe_token, 1u);
    } else {
        atomic_store(&hs->probe_token, 0u);
    }
    if (to == CIRCUIT_CLOSED)
        atomic_store(&hs->target_err_run, 0u);
    atomic_store(&hs->circuit, to);
    LOGW(&m->log, "[%s] circuit %s -> %s: %s", hs->name, metrics_circuit_name(from), metrics_circuit_name(to), why);
}

void circuit_tick(master_ctx *m, uint64_t now)
{
    uint32_t nh = atomic_load(&m->tbl.hdr->n_hosts);
    for (uint32_t h = 0; h < nh; h++) {
        shm_host *hs = &m->tbl.hosts[h];
        if (!hs->name[0])
            continue; /* reclaimed, free */
        const cfg_host *ch = cfg_host_for(m->cfg, hs->name);
        uint32_t st = atomic_load(&hs->circuit);
        if (st == CIRCUIT_CLOSED) {
            if (atomic_load(&hs->target_err_run) >= ch->circuit_breaker_threshold) {
                set_state(m, hs, CIRCUIT_OPEN, now, "consecutive target errors reached circuit_breaker_threshold");
                continue;
            }
            /* only hosts that have been asked for work can starve; an idle host is left alone */
            if (atomic_load(&hs->last_zero_avail_ms) + 2000 >= now) {
                pool_counts pc;
                metrics_host_counts(&m->tbl, h, now, &pc);
                /* an empty pool while the first fetches run is "not loaded yet": let tasks wait */
                if (pc.healthy == 0 && !src_loading(m))
                    set_state(m, hs, CIRCUIT_OPEN, now, "no healthy proxy (all dead or cooling down)");
            }
        } else if (st == CIRCUIT_OPEN) {
            if (now - atomic_load(&hs->circuit_since_ms) >= ch->circuit_probe_interval_ms)
                set_state(m, hs, CIRCUIT_HALF_OPEN, now, "probe interval passed; letting one probe through");
        } else {
            uint32_t r = atomic_load(&hs->last_probe_result);
            if (r == 1)
                set_state(m, hs, CIRCUIT_CLOSED, now, "probe succeeded");
            else if (r == 2)
                set_state(m, hs, CIRCUIT_OPEN, now, "probe failed");
        }
    }
}
