/*
 * Host slots from config: the master registers every [host:NAME] host at start, and on every
 * (re)load writes each registered host's effective interval and proxy pool (allowed source
 * mask). Workers read these; only the master writes them. A host a worker registers later
 * gets its interval on the master's next tick, or before a dead worker's words are released.
 */
#include "master/master.h"

#include "shm/registry.h"

#include <errno.h>
#include <stdio.h>

int hosts_apply_config(master_ctx *m, char *err, size_t cap)
{
    const scatter_config *c = m->cfg;
    for (uint32_t i = 0; i < c->n_hosts; i++) {
        uint32_t idx;
        int rc = reg_host_get(&m->tbl, c->hosts[i].name, &idx);
        if (rc < 0) {
            snprintf(err, cap, "[host:%s]: cannot register the host (%s)", c->hosts[i].name,
                     rc == -ENOSPC ? "max_hosts reached" : "bad name");
            return -1;
        }
    }
    uint32_t nh = atomic_load(&m->tbl.hdr->n_hosts);
    for (uint32_t h = 0; h < nh; h++) {
        shm_host *hs = &m->tbl.hosts[h];
        if (!hs->name[0])
            continue; /* reclaimed, free */
        const cfg_host *ch = cfg_host_for(c, hs->name);
        int64_t mask = 0;
        if (ch->sources[0]) {
            mask = src_mask_for(m, ch->sources, err, cap);
            if (mask < 0)
                return -1;
        }
        atomic_store(&hs->interval_ms, cfg_interval_with_margin(c, ch));
        atomic_store(&hs->allowed_sources, (uint32_t)mask);
        atomic_store(&hs->own_pool, ch != &c->defaults);
    }
    return 0;
}

void hosts_publish_intervals(master_ctx *m)
{
    const scatter_config *c = m->cfg;
    uint32_t nh = atomic_load(&m->tbl.hdr->n_hosts);
    for (uint32_t h = 0; h < nh; h++) {
        shm_host *hs = &m->tbl.hosts[h];
        if (!hs->name[0])
            continue; /* reclaimed, free */
        uint32_t want = cfg_interval_with_margin(c, cfg_host_for(c, hs->name));
        if (atomic_load(&hs->interval_ms) != want)
            atomic_store(&hs->interval_ms, want);
    }
}

/* How recently a registration must have found the table full for idle hosts to be reclaimed:
 * a full table nobody is waiting on keeps every host's history. */
#define RECLAIM_DEMAND_MS 30000u
#define RECLAIM_PER_TICK 1u /* one per refusal signal: keep every history we can */

/* When a client was refused a new host because every max_hosts slot is taken, frees one idle
 * host per tick while refusals go on (each sets host_full_ms again): never-successful ones
 * first (idle 10 s), then the longest idle of those with a success (idle 60 s). Configured
 * [host:NAME] hosts are kept. */
void hosts_reclaim(master_ctx *m, uint64_t now)
{
    shm_table *t = &m->tbl;
    uint64_t full = atomic_load(&t->hdr->host_full_ms);
    if (!full || full + RECLAIM_DEMAND_MS < now)
        return;
    uint32_t nh = atomic_load(&t->hdr->n_hosts);
    uint32_t pick[RECLAIM_PER_TICK] = {0}, n = 0;
    uint64_t key[RECLAIM_PER_TICK] = {0}; /* lower = reclaimed first; zeroed only for gcc -O2's flow analysis */
    for (uint32_t h = 0; h < nh; h++) {
        shm_host *hs = &t->hosts[h];
        uint64_t last = atomic_load(&hs->last_task_ms);
        int had_success = atomic_load(&hs->success) > 0;
        uint64_t idle = had_success ? HOST_RECLAIM_IDLE_SUCCESS_MS : HOST_RECLAIM_IDLE_MS;
        if (!hs->name[0] || cfg_host_for(m->cfg, hs->name) != &m->cfg->defaults ||
            atomic_load(&hs->live_workers) || atomic_load(&hs->queued_workers) || last + idle > now)
            continue;
        uint64_t k = (had_success ? 1ULL << 62 : 0) | (last & ((1ULL << 62) - 1));
        uint32_t at = n < RECLAIM_PER_TICK ? n++ : RECLAIM_PER_TICK;
        if (at == RECLAIM_PER_TICK) { /* keep the best: replace the worst if k is better */
            uint32_t worst = 0;
            for (uint32_t i = 1; i < n; i++)
                if (key[i] > key[worst])
                    worst = i;
            if (k >= key[worst])
                continue;
            at = worst;
        }
        pick[at] = h;
        key[at] = k;
    }
    uint32_t done = 0;
    char names[256] = "";
    size_t nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        char name[SHM_HOST_NAME_MAX];
        snprintf(name, sizeof name, "%s", t->hosts[pick[i]].name);
        if (reg_host_reclaim(t, pick[i], now) == 0) {
            done++;
            int w = snprintf(names + nl, sizeof names - nl, "%s%s", nl ? ", " : "", name);
            if (w > 0)
                nl += (size_t)w < sizeof names - nl ? (size_t)w : sizeof names - nl - 1;
        }
    }
    if (done) {
        LOGI(&m->log, "host table full (max_hosts = %u): reclaimed %u idle host slot%s: %s", t->hdr->max_hosts, done,
             done == 1 ? "" : "s", names);
        atomic_store(&t->hdr->host_full_ms, 0);
    }
}
