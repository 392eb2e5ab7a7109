/*
 * The `status` and `hosts` replies' bodies (docs/PROTOCOL.md section 4.4), packed from the
 * shared table's metrics (shm/metrics.h).
 */
#include "worker/status.h"

#include "common/proto.h"
#include "shm/health.h"
#include "shm/metrics.h"
#include "shm/ratelimit.h"

#include <stdio.h>

void status_pack_hosts(proto_map *m, const shm_table *t, uint64_t now_ms)
{
    uint32_t nh = atomic_load_explicit(&t->hdr->n_hosts, memory_order_acquire);
    uint32_t named = 0;
    for (uint32_t h = 0; h < nh; h++)
        named += t->hosts[h].name[0] != '\0'; /* an empty name is a reclaimed, free slot */
    msgpack_pack_array(proto_map_key(m, "hosts"), named);
    for (uint32_t h = 0; h < nh && named; h++) {
        const shm_host *hs = &t->hosts[h];
        if (!hs->name[0])
            continue;
        named--;
        pool_counts pc;
        metrics_host_counts(t, h, now_ms, &pc);
        proto_map hm;
        proto_map_nested(&hm, m);
        proto_map_str(&hm, "name", hs->name);
        proto_map_str(&hm, "circuit", metrics_circuit_name(atomic_load(&hs->circuit)));
        proto_map_u64(&hm, "healthy", pc.healthy);
        proto_map_u64(&hm, "cooling", pc.cooling);
        proto_map_u64(&hm, "dead", pc.dead);
        proto_map_u64(&hm, "success", atomic_load(&hs->success));
        proto_map_u64(&hm, "fail", atomic_load(&hs->fail));
        proto_map_u64(&hm, "target_errors", atomic_load(&hs->target_errors));
        proto_map_u64(&hm, "interval_ms", atomic_load(&hs->interval_ms));
        proto_map_end(&hm);
    }
}

void status_pack(proto_map *m, const shm_table *t, uint64_t now_ms, uint32_t worker)
{
    const shm_header *h = t->hdr;
    const shm_counters *c = &h->c;
    proto_map_str(m, "version", SCATTER_VERSION);
    proto_map_u64(m, "uptime_s", (now_ms - atomic_load(&h->started_ms)) / 1000);
    proto_map_u64(m, "workers", atomic_load(&h->n_workers));
    proto_map_u64(m, "worker", worker);

    pool_counts pc;
    metrics_proxy_counts(t, now_ms, &pc);
    proto_map sub;
    proto_map_sub(m, "proxies", &sub);
    proto_map_u64(&sub, "total", atomic_load(&h->n_proxies));
    proto_map_u64(&sub, "healthy", pc.healthy);
    proto_map_u64(&sub, "cooling", pc.cooling);
    proto_map_u64(&sub, "dead", pc.dead);
    proto_map_end(&sub);
    char shard[32];
    snprintf(shard, sizeof shard, "%u/%u", atomic_load(&h->shard_k), atomic_load(&h->shard_n));
    proto_map_str(m, "shard", shard);
    proto_map_u64(m, "shard_dropped", atomic_load(&h->shard_dropped));
    proto_map_sub(m, "redis", &sub);
    uint32_t rup = 0, nw = atomic_load(&h->n_workers);
    for (uint32_t i = 0; i < nw && i < SHM_MAX_WORKERS; i++)
        rup += atomic_load(&h->workers[i].redis_up) != 0;
    proto_map_u64(&sub, "connected_workers", rup);
    proto_map_u64(&sub, "read", atomic_load(&c->redis_read));
    proto_map_u64(&sub, "claimed", atomic_load(&c->redis_claimed));
    proto_map_u64(&sub, "answered", atomic_load(&c->redis_answered));
    proto_map_u64(&sub, "left_pending", atomic_load(&c->redis_left));
    proto_map_u64(&sub, "dead_letters", atomic_load(&c->redis_dead));
    proto_map_end(&sub);

    proto_map_sub(m, "tasks", &sub);
    int64_t pending = atomic_load(&c->pending);
    proto_map_u64(&sub, "pending", pending > 0 ? (uint64_t)pending : 0);
    proto_map_u64(&sub, "submitted", atomic_load(&c->submitted));
    proto_map_u64(&sub, "completed", atomic_load(&c->completed));
    proto_map_u64(&sub, "failed", atomic_load(&c->failed));
    proto_map_u64(&sub, "cancelled", atomic_load(&c->cancelled_tasks));
    proto_map_end(&sub);

    int64_t inflight = atomic_load(&c->inflight);
    proto_map_u64(m, "inflight", inflight > 0 ? (uint64_t)inflight : 0);

    proto_map_sub(m, "throughput", &sub);
    static const uint32_t W[3] = {1, 10, 60};
    static const char *const K[3] = {"1s", "10s", "60s"};
    uint64_t done60 = 0, ok60 = 0;
    for (int i = 0; i < 3; i++) {
        uint64_t d, o;
        metrics_tp_window(t, now_ms, W[i], &d, &o);
        uint64_t up = (now_ms - atomic_load(&h->started_ms)) / 1000;
        uint32_t span = up < W[i] ? (uint32_t)(up ? up : 1) : W[i];
        proto_map_f64(&sub, K[i], (double)d / span);
        if (i == 2) {
            done60 = d;
            ok60 = o;
        }
    }
    proto_map_end(&sub);
    if (done60)
        proto_map_f64(m, "success_rate_1m", (double)ok60 / (double)done60);
    else
        proto_map_nil(m, "success_rate_1m");
    uint64_t ln = atomic_load(&c->latency_n);
    proto_map_f64(m, "avg_latency_ms", ln ? (double)atomic_load(&c->latency_sum_ms) / (double)ln : 0.0);

    status_pack_hosts(m, t, now_ms);

    proto_map_sub(m, "stalls", &sub);
    proto_map_u64(&sub, "delayed", atomic_load(&c->delayed));
    proto_map_u64(&sub, "requeued", atomic_load(&c->requeued));
    proto_map_u64(&sub, "dispatches", atomic_load(&c->dispatches));
    proto_map_u64(&sub, "zero_avail", atomic_load(&c->zero_avail));
    proto_map_u64(&sub, "skip_ratelimit", atomic_load(&c->skip_ratelimit));
    proto_map_u64(&sub, "skip_cooldown", atomic_load(&c->skip_cooldown));
    proto_map_u64(&sub, "skip_inflight", atomic_load(&c->skip_inflight));
    proto_map_u64(&sub, "selects", atomic_load(&c->selects));
    proto_map_u64(&sub, "select_ns", atomic_load(&c->select_ns));
    proto_map_u64(&sub, "attempts", atomic_load(&c->attempts));
    proto_map_u64(&sub, "attempts_cancelled", atomic_load(&c->attempts_cancelled));
    proto_map_u64(&sub, "attempts_failed", atomic_load(&c->attempts_failed));
    proto_map_u64(&sub, "straggler_hedges", atomic_load(&c->straggler_hedges));
    /* pairs whose rate-limit word is held right now: equals in-flight attempts when all is
     * well; a word held with nothing in flight would be a leak */
    proto_map_u64(&sub, "rl_held", rl_count_held(t, 0));
    proto_map_end(&sub);
}
