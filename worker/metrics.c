/*
 * Metrics from the shared table. The throughput ring packs (second, successes, completions)
 * into one 64-bit word per slot so that a slot is reset and counted in one CAS: two processes
 * rolling the same slot over to a new second can never lose each other's counts.
 *   bits 40..63: second (mod 2^24), bits 20..39: successes, bits 0..19: completions.
 */
#include "worker/metrics.h"

#include "common/proto.h"
#include "shm/health.h"
#include "shm/ratelimit.h"

#define TP_SEC(v) ((v) >> 40)
#define TP_OK(v) (((v) >> 20) & 0xfffffu)
#define TP_DONE(v) ((v)&0xfffffu)
#define SEC24(s) ((s)&0xffffffu)

void tp_record(shm_table *t, uint64_t now_ms, int ok)
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

void tp_window(const shm_table *t, uint64_t now_ms, uint32_t secs, uint64_t *done, uint64_t *ok)
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

void metrics_pack_hosts(msgpack_packer *pk, const shm_table *t, uint64_t now_ms)
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

void metrics_pack_status(msgpack_packer *pk, const shm_table *t, uint64_t now_ms, uint32_t worker)
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
        tp_window(t, now_ms, W[i], &d, &o);
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
    metrics_pack_hosts(pk, t, now_ms);

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
