/*
 * Host slots from config: the master registers every [host:NAME] host at start, and on every
 * (re)load writes each registered host's effective interval and proxy pool (allowed source
 * mask). Workers read these; only the master changes them after registration.
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
        const cfg_host *ch = cfg_host_for(c, hs->name);
        int64_t mask = 0;
        if (ch->sources[0]) {
            mask = src_mask_for(m, ch->sources, err, cap);
            if (mask < 0)
                return -1;
        }
        atomic_store(&hs->interval_ms, ch->interval_ms + c->rate_limit_margin_ms);
        atomic_store(&hs->allowed_sources, (uint32_t)mask);
        atomic_store(&hs->own_pool, ch != &c->defaults);
    }
    return 0;
}
