/*
 * Scoring and candidate selection for one host (the score is defined in select.h).
 *
 * select_claim is the worker's hot path: one pass over the host's contiguous cell row, with
 * integer arithmetic only (a reciprocal table instead of a division for the window rate, a
 * multiply-high instead of a modulo for the jitter). The pass keeps a small min-heap of the
 * best candidates, more than k of them, because claiming happens after the scan and another
 * worker may win some of those words in between: a lost CAS falls through to the next best
 * instead of costing a second scan.
 */
#include "shm/select.h"

#include "common/limits.h"
#include "shm/health.h"
#include "shm/ratelimit.h"

#define SEL_HEAP_MAX (2 * SC_RACE_MAX + 8)
#define REC_SCALE 60000000000ULL /* 60000 ms x 1e6: recency in millionths */
/* A cell without a latency sample ranks as if it took a minute: known-fast proxies win ties. */
#define SEL_UNKNOWN_LATENCY 60000u

void select_params_default(select_params *p)
{
    p->w_affinity = 500;
    p->w_global = 300;
    p->w_recency = 200;
    p->jitter = 20000;
    p->home_workers = 0;
    p->home_grace_ms = 0;
}

typedef struct {
    uint32_t recip[SHM_WINDOW_MAX + 1]; /* ceil(2^32 / n): exact floor(x / n) for x < 2^26 */
} score_ctx;

static void score_ctx_init(score_ctx *s)
{
    s->recip[0] = 0;
    for (uint32_t n = 1; n <= SHM_WINDOW_MAX; n++)
        s->recip[n] = (uint32_t)(((1ULL << 32) + n - 1) / n);
}

static uint32_t global_permille(const shm_proxy *px)
{
    uint64_t s = atomic_load_explicit(&px->success, memory_order_relaxed);
    uint64_t f = atomic_load_explicit(&px->fail, memory_order_relaxed);
    uint64_t n = s + f;
    if (n == 0)
        return 500;
    /* 32-bit division is several times cheaper than 64-bit; counts rarely need more. */
    if (n <= 4000000)
        return (uint32_t)s * 1000u / (uint32_t)n;
    return (uint32_t)(s * 1000 / n);
}

static uint32_t score_cell(const score_ctx *sc, const shm_cell *c, const shm_proxy *px,
                           uint64_t now_ms, const select_params *p)
{
    uint64_t w = atomic_load_explicit(&c->window, memory_order_relaxed);
    uint32_t n = health_window_count(w);
    uint32_t aff = 500;
    if (n > 0) {
        if (n > SHM_WINDOW_MAX)
            n = SHM_WINDOW_MAX;
        uint64_t x = (uint64_t)health_window_successes(w) * 1000u;
        aff = (uint32_t)((x * sc->recip[n]) >> 32);
    }
    uint32_t glob = global_permille(px);
    uint64_t rec = 0;
    uint64_t last = atomic_load_explicit(&c->last_success_ms, memory_order_relaxed);
    if (last != 0) {
        uint64_t since = now_ms > last ? now_ms - last : 0;
        rec = REC_SCALE / (60000 + since);
    }
    uint64_t score = (uint64_t)p->w_affinity * aff + (uint64_t)p->w_global * glob +
                     (uint64_t)p->w_recency * rec / 1000;
    return score > UINT32_MAX ? UINT32_MAX : (uint32_t)score;
}

uint32_t select_score(const shm_table *t, uint32_t proxy, uint32_t host, uint64_t now_ms,
                      const select_params *p)
{
    score_ctx sc;
    score_ctx_init(&sc);
    return score_cell(&sc, shm_cell_at(t, proxy, host), &t->proxies[proxy], now_ms, p);
}

/* Cheap, well-mixed per-(call, proxy) bits: the same rnd gives the same spread, so tests and
 * replays are deterministic. */
static uint32_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

typedef struct {
    uint64_t key; /* score << 32 | inverted latency: bigger is better */
    uint32_t proxy;
} cand;

static void heap_sift_down(cand *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        if (l < n && h[l].key < h[m].key)
            m = l;
        if (l + 1 < n && h[l + 1].key < h[m].key)
            m = l + 1;
        if (m == i)
            return;
        cand tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
}

static void heap_sift_up(cand *h, uint32_t i)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (h[parent].key <= h[i].key)
            return;
        cand tmp = h[i];
        h[i] = h[parent];
        h[parent] = tmp;
        i = parent;
    }
}

uint32_t select_claim(shm_table *t, uint32_t host, uint32_t k, uint32_t holder, uint64_t now_ms,
                      const select_params *p, uint64_t rnd, uint32_t *out, select_stats *st)
{
    select_stats local = {0};
    local.next_free_ms = UINT64_MAX;
    uint32_t nh = atomic_load_explicit(&t->hdr->n_hosts, memory_order_acquire);
    if (k > SC_RACE_MAX)
        k = SC_RACE_MAX;
    if (host >= nh || k == 0) {
        if (st)
            *st = local;
        return 0;
    }
    uint32_t np = atomic_load_explicit(&t->hdr->n_proxies, memory_order_acquire);
    uint32_t allowed = atomic_load_explicit(&t->hosts[host].allowed_sources,
                                            memory_order_relaxed);
    uint64_t jitter_span = (uint64_t)p->jitter + 1;
    /* the grace is at most 1/25 of the host's interval: a pair held back that long costs the
     * other worker 4 % of its slots at worst, and with no interval (every pair reusable at
     * once) there is nothing to share, so no affinity */
    uint32_t grace = atomic_load_explicit(&t->hosts[host].interval_ms, memory_order_relaxed) / 25;
    if (grace > p->home_grace_ms)
        grace = p->home_grace_ms;
    /* queued_workers has one bit per worker: beyond that workers cannot be told apart, so no affinity */
    uint32_t homes = p->home_workers > 1 && p->home_workers <= SHM_MAX_WORKERS && grace ? p->home_workers : 0;
    uint64_t waiting = homes ? atomic_load_explicit(&t->hosts[host].queued_workers, memory_order_relaxed) : 0;
    uint32_t next_home = 0; /* i % homes, stepped instead of divided: the scan is the hot path */
    score_ctx sc;
    score_ctx_init(&sc);

    cand heap[SEL_HEAP_MAX];
    uint32_t cap = 2 * k + 8, n = 0;
    const shm_cell *row = shm_cell_at(t, 0, host);
    for (uint32_t i = 0; i < np; i++) {
        const shm_cell *c = &row[i];
        const shm_proxy *px = &t->proxies[i];
        uint32_t home = next_home; /* proxy i's home worker - 1 */
        if (homes && ++next_home == homes)
            next_home = 0;
        if (atomic_load_explicit(&c->dead, memory_order_relaxed) ||
            atomic_load_explicit(&px->state, memory_order_relaxed) == PSTATE_DEAD) {
            local.skip_dead++;
            continue;
        }
        if (allowed != 0 && !(atomic_load_explicit(&px->sources, memory_order_relaxed) & allowed))
            continue;
        if (atomic_load_explicit(&c->cooldown_until_ms, memory_order_relaxed) > now_ms) {
            local.skip_cooldown++;
            continue;
        }
        local.eligible++;
        uint64_t w = atomic_load_explicit(&c->rl, memory_order_relaxed);
        /* another worker's pair while that worker has tasks waiting: leave it the first turn */
        if (homes && home + 1 != holder && (waiting >> home) & 1 && !rl_is_held(w))
            w += grace;
        if (rl_is_held(w) || w > now_ms) {
            local.skip_ratelimit++;
            if (!rl_is_held(w) && w < local.next_free_ms)
                local.next_free_ms = w;
            continue;
        }
        uint64_t score = score_cell(&sc, c, px, now_ms, p);
        score += ((uint64_t)mix(rnd ^ ((uint64_t)i * 0x9e3779b97f4a7c15ULL)) * jitter_span) >> 32;
        if (score > UINT32_MAX)
            score = UINT32_MAX;
        uint32_t lat = atomic_load_explicit(&c->ewma_latency_ms, memory_order_relaxed);
        uint64_t key = (score << 32) | (UINT32_MAX - (lat ? lat : SEL_UNKNOWN_LATENCY));
        if (n < cap) {
            heap[n] = (cand){key, i};
            heap_sift_up(heap, n++);
        } else if (key > heap[0].key) {
            heap[0] = (cand){key, i};
            heap_sift_down(heap, n, 0);
        }
    }

    /* Best first: pop the min-heap from the back. */
    for (uint32_t end = n; end > 1; end--) {
        cand tmp = heap[0];
        heap[0] = heap[end - 1];
        heap[end - 1] = tmp;
        heap_sift_down(heap, end - 1, 0);
    }
    uint32_t got = 0;
    for (uint32_t i = 0; i < n && got < k; i++) {
        uint64_t next = 0;
        if (rl_claim(&shm_cell_at(t, heap[i].proxy, host)->rl, holder, now_ms, &next)) {
            out[got++] = heap[i].proxy;
        } else {
            local.skip_ratelimit++; /* lost the race since the scan */
            if (next < local.next_free_ms)
                local.next_free_ms = next;
        }
    }
    if (st)
        *st = local;
    return got;
}
