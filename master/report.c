/* The metrics line logged every metrics_log_interval, one per host when hosts have their own pools. */
#include "master/master.h"

#include "shm/metrics.h"

#include <stdio.h>
#include <string.h>

void report_metrics(master_ctx *m, uint64_t now)
{
    shm_table *t = &m->tbl;
    uint32_t secs = m->cfg->metrics_log_interval_ms / 1000;
    if (secs < 1)
        secs = 1;
    uint64_t done, ok;
    metrics_tp_window(t, now, secs, &done, &ok);
    uint64_t up = (now - atomic_load(&t->hdr->started_ms)) / 1000;
    uint32_t span = up && up < secs ? (uint32_t)up : secs;
    char breakers[512] = "";
    size_t bl = 0;
    uint32_t nh = atomic_load(&t->hdr->n_hosts), own = 0;
    for (uint32_t h = 0; h < nh; h++) {
        uint32_t c = atomic_load(&t->hosts[h].circuit);
        own |= atomic_load(&t->hosts[h].own_pool);
        if (c != CIRCUIT_CLOSED && bl < sizeof breakers - 1) {
            int n = snprintf(breakers + bl, sizeof breakers - bl, "%s%s=%s", bl ? ", " : "", t->hosts[h].name,
                             metrics_circuit_name(c));
            if (n > 0)
                bl += (size_t)n < sizeof breakers - bl ? (size_t)n : sizeof breakers - bl - 1;
        }
    }
    pool_counts pc;
    metrics_proxy_counts(t, now, &pc);
    int64_t pending = atomic_load(&t->hdr->c.pending);
    char rate[16];
    if (done)
        snprintf(rate, sizeof rate, "%.0f%%", 100.0 * (double)ok / (double)done);
    else
        snprintf(rate, sizeof rate, "n/a");
    LOGI(&m->log, "throughput=%.1f/s | success=%s | pool: %u healthy / %u cooldown / %u dead | tasks: %lld pending | breakers: %s",
         (double)done / span, rate, pc.healthy, pc.cooling, pc.dead, (long long)(pending > 0 ? pending : 0),
         bl ? breakers : "(none)");
    if (!own)
        return;
    for (uint32_t h = 0; h < nh; h++) {
        shm_host *hs = &t->hosts[h];
        metrics_host_counts(t, h, now, &pc);
        LOGI(&m->log, "[%s] success=%llu fail=%llu target_errors=%llu | pool: %u healthy / %u cooldown / %u dead | circuit: %s",
             hs->name, (unsigned long long)atomic_load(&hs->success), (unsigned long long)atomic_load(&hs->fail),
             (unsigned long long)atomic_load(&hs->target_errors), pc.healthy, pc.cooling, pc.dead,
             metrics_circuit_name(atomic_load(&hs->circuit)));
    }
}
