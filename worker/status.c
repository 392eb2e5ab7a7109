/*
 * The `status` and `hosts` replies' bodies (docs/PROTOCOL.md section 4.4), packed from the
 * shared table's metrics (shm/metrics.h).
 */
#include "worker/status.h"

#include "common/proto.h"
#include "shm/health.h"
#include "shm/metrics.h"
#include "shm/ratelimit.h"

void status_pack_hosts(msgpack_packer *pk, const shm_table *t, uint64_t now_ms)
{
    uint32_t nh = atomic_load_explicit(&t->hdr->n_hosts, memory_order_acquire);
    uint32_t named = 0;
    for (uint32_t h = 0; h < nh; h++)
        named += t->hosts[h].name[0] != '\0'; /* an empty name is a reclaimed, free slot */
    msgpack_pack_array(pk, named);
    for (uint32_t h = 0; h < nh && named; h++) {
        const shm_host *hs = &t->hosts[h];
        if (!hs->name[0])
            continue;
        named--;
        pool_counts pc;
        metrics_host_counts(t, h, now_ms, &pc);
        msgpack_pack_map(pk, 9);
        proto_kv_str(pk, "name", hs->name);
        proto_kv_str(pk, "circuit", metrics_circuit_name(atomic_load(&hs->circuit)));
        proto_kv_u64(pk, "healthy", pc.healthy);
        proto_kv_u64(pk, "cooling", pc.cooling);
        proto_kv_u64(pk, "dead", pc.dead);
        proto_kv_u64(pk, "success", atomic_load(&hs->success));
        proto_kv_u64(pk, "fail", atomic_load(&hs->fail));
        proto_kv_u64(pk, "target_errors", atomic_load(&hs->target_errors));
        proto_kv_u64(pk, "interval_ms", atomic_load(&hs->interval_ms));
    }
}

void status_pack(msgpack_packer *pk, const shm_table *t, uint64_t now_ms, uint32_t worker)
{
    const shm_header *h = t->hdr;
    const shm_counters *c = &h->c;
    msgpack_pack_map(pk, 12);
    proto_kv_str(pk, "version", SCATTER_VERSION);
    proto_kv_u64(pk, "uptime_s", (now_ms - atomic_load(&h->started_ms)) / 1000);
    proto_kv_u64(pk, "workers", atomic_load(&h->n_workers));
    proto_kv_u64(pk, "worker", worker);

    pool_counts pc;
    metrics_proxy_counts(t, now_ms, &pc);
    proto_pack_cstr(pk, "proxies");
    msgpack_pack_map(pk, 4);
    proto_kv_u64(pk, "total", atomic_load(&h->n_proxies));
    proto_kv_u64(pk, "healthy", pc.healthy);
    proto_kv_u64(pk, "cooling", pc.cooling);
    proto_kv_u64(pk, "dead", pc.dead);

    proto_pack_cstr(pk, "tasks");
    msgpack_pack_map(pk, 5);
    int64_t pending = atomic_load(&c->pending);
    proto_kv_u64(pk, "pending", pending > 0 ? (uint64_t)pending : 0);
    proto_kv_u64(pk, "submitted", atomic_load(&c->submitted));
    proto_kv_u64(pk, "completed", atomic_load(&c->completed));
    proto_kv_u64(pk, "failed", atomic_load(&c->failed));
    proto_kv_u64(pk, "cancelled", atomic_load(&c->cancelled_tasks));

    int64_t inflight = atomic_load(&c->inflight);
    proto_kv_u64(pk, "inflight", inflight > 0 ? (uint64_t)inflight : 0);

    proto_pack_cstr(pk, "throughput");
    msgpack_pack_map(pk, 3);
    static const uint32_t W[3] = {1, 10, 60};
    static const char *const K[3] = {"1s", "10s", "60s"};
    uint64_t done60 = 0, ok60 = 0;
    for (int i = 0; i < 3; i++) {
        uint64_t d, o;
        metrics_tp_window(t, now_ms, W[i], &d, &o);
        uint64_t up = (now_ms - atomic_load(&h->started_ms)) / 1000;
        uint32_t span = up < W[i] ? (uint32_t)(up ? up : 1) : W[i];
        proto_kv_f64(pk, K[i], (double)d / span);
        if (i == 2) {
            done60 = d;
            ok60 = o;
        }
    }
    if (done60)
        proto_kv_f64(pk, "success_rate_1m", (double)ok60 / (double)done60);
    else {
        proto_pack_cstr(pk, "success_rate_1m");
        msgpack_pack_nil(pk);
    }
    uint64_t ln = atomic_load(&c->latency_n);
    proto_kv_f64(pk, "avg_latency_ms", ln ? (double)atomic_load(&c->latency_sum_ms) / (double)ln : 0.0);

    proto_pack_cstr(pk, "hosts");
    status_pack_hosts(pk, t, now_ms);

    proto_pack_cstr(pk, "stalls");
    msgpack_pack_map(pk, 12);
    proto_kv_u64(pk, "delayed", atomic_load(&c->delayed));
    proto_kv_u64(pk, "requeued", atomic_load(&c->requeued));
    proto_kv_u64(pk, "dispatches", atomic_load(&c->dispatches));
    proto_kv_u64(pk, "zero_avail", atomic_load(&c->zero_avail));
    proto_kv_u64(pk, "skip_ratelimit", atomic_load(&c->skip_ratelimit));
    proto_kv_u64(pk, "skip_cooldown", atomic_load(&c->skip_cooldown));
    proto_kv_u64(pk, "skip_inflight", atomic_load(&c->skip_inflight));
    proto_kv_u64(pk, "attempts", atomic_load(&c->attempts));
    proto_kv_u64(pk, "attempts_cancelled", atomic_load(&c->attempts_cancelled));
    proto_kv_u64(pk, "attempts_failed", atomic_load(&c->attempts_failed));
    proto_kv_u64(pk, "straggler_hedges", atomic_load(&c->straggler_hedges));
    /* pairs whose rate-limit word is held right now: equals in-flight attempts when all is
     * well; a word held with nothing in flight would be a leak */
    proto_kv_u64(pk, "rl_held", rl_count_held(t, 0));
}
