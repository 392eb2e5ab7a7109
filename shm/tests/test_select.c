/* Scoring values and select_claim through a worker's index: order, claiming, skips,
 * next_free_ms, source masks, affinity, and the index against a brute-force scan. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common.h"
#include "common/rng.h"
#include "shm/health.h"
#include "shm/ratelimit.h"
#include "shm/select.h"

#define NOW 10000000ULL

static void set_window(shm_cell *c, uint32_t ok, uint32_t bad)
{
    uint64_t w = 0;
    for (uint32_t i = 0; i < bad; i++)
        w = health_window_push(w, 0, 30);
    for (uint32_t i = 0; i < ok; i++)
        w = health_window_push(w, 1, 30);
    atomic_store(&c->window, w);
}

static void test_score_values(void **state)
{
    (void)state;
    shm_table t;
    select_params p;
    select_params_default(&p);
    assert_int_equal(p.w_affinity + p.w_global + p.w_recency, 1000);
    assert_int_equal(shm_create(&t, 4, 1), 0);
    fixture_fill(&t, 4, 1);
    /* No data at all: 0.5*0.5 + 0.3*0.5 + 0.2*0 */
    assert_int_equal(select_score(&t, 0, 0, NOW, &p), 400000);

    shm_cell *c = shm_cell_at(&t, 1, 0);
    set_window(c, 3, 1); /* affinity 0.75 */
    atomic_store(&t.proxies[1].success, 1); /* global 1.0 */
    atomic_store(&c->last_success_ms, NOW); /* recency 1.0 */
    assert_int_equal(select_score(&t, 1, 0, NOW, &p), 375000 + 300000 + 200000);
    assert_int_equal(select_score(&t, 1, 0, NOW + 60000, &p), 375000 + 300000 + 100000);
    assert_int_equal(select_score(&t, 1, 0, NOW + 240000, &p), 375000 + 300000 + 40000);
    /* recency ignores a clock that looks backwards */
    assert_int_equal(select_score(&t, 1, 0, NOW - 5, &p), 875000);

    c = shm_cell_at(&t, 2, 0);
    set_window(c, 1, 2); /* 333 permille, exact integer floor */
    atomic_store(&t.proxies[2].success, 1);
    atomic_store(&t.proxies[2].fail, 3); /* 250 permille */
    assert_int_equal(select_score(&t, 2, 0, NOW, &p), 500 * 333 + 300 * 250);

    c = shm_cell_at(&t, 3, 0);
    set_window(c, 30, 0);
    atomic_store(&t.proxies[3].success, 1000);
    atomic_store(&c->last_success_ms, NOW);
    assert_int_equal(select_score(&t, 3, 0, NOW, &p), 1000000);
    /* Weights are honoured. */
    select_params only_global = {0, 1000, 0, 0, 0, 0, 0};
    assert_int_equal(select_score(&t, 2, 0, NOW, &only_global), 250000);
    shm_destroy(&t);
}

static select_params no_jitter(void)
{
    select_params p;
    select_params_default(&p);
    p.jitter = 0;
    return p;
}

/* Proxy i gets a window of i successes out of 10, so higher index = better. */
static void ranked_table(shm_table *t, uint32_t n)
{
    assert_int_equal(shm_create(t, n, 2), 0);
    fixture_fill(t, n, 2);
    for (uint32_t i = 0; i < n; i++)
        set_window(shm_cell_at(t, i, 0), i, 10 - i);
}

/* The indexes of a test: one per (host, holder), as each worker keeps one per host. */
#define T_HOSTS 2
#define T_HOLDERS 5
typedef struct {
    shm_table *t;
    select_params p;
    select_index ix[T_HOSTS][T_HOLDERS];
} fixture;

static void fx_init(fixture *f, shm_table *t, select_params p)
{
    f->t = t;
    f->p = p;
    for (uint32_t h = 0; h < T_HOSTS; h++)
        for (uint32_t w = 0; w < T_HOLDERS; w++)
            assert_int_equal(select_index_init(&f->ix[h][w], t, h, w + 1), 0);
}

static void fx_free(fixture *f)
{
    for (uint32_t h = 0; h < T_HOSTS; h++)
        for (uint32_t w = 0; w < T_HOLDERS; w++)
            six_free(&f->ix[h][w]);
    shm_destroy(f->t);
}

static uint32_t claim(fixture *f, uint32_t host, uint32_t k, uint32_t holder, uint64_t now,
                      uint64_t rnd, uint32_t *out, select_stats *st)
{
    return select_claim(f->t, &f->ix[host][holder - 1], k, now, &f->p, rnd, out, st);
}

/* What a worker does after a race: release the word, tell its index. */
static void release(fixture *f, uint32_t proxy, uint32_t host, uint32_t holder, uint64_t sent,
                    uint32_t interval, uint64_t now)
{
    assert_true(rl_release(&shm_cell_at(f->t, proxy, host)->rl, holder, sent, interval));
    select_index_put(f->t, &f->ix[host][holder - 1], proxy, now, &f->p);
}

static void test_order_and_claim(void **state)
{
    (void)state;
    shm_table t;
    fixture f;
    ranked_table(&t, 8);
    fx_init(&f, &t, no_jitter());
    uint32_t out[8];
    select_stats st;
    assert_int_equal(claim(&f, 0, 3, 1, NOW, 42, out, &st), 3);
    assert_int_equal(out[0], 7);
    assert_int_equal(out[1], 6);
    assert_int_equal(out[2], 5);
    assert_int_equal(st.eligible, 8);
    assert_int_equal(st.claimable, 5);
    assert_int_equal(st.skip_ratelimit, 0);
    for (int i = 0; i < 3; i++) {
        uint64_t w = atomic_load(&shm_cell_at(&t, out[i], 0)->rl);
        assert_true(rl_is_held(w));
        assert_int_equal(RL_HOLDER(w), 1);
    }
    /* Another worker cannot get the held ones: it gets the next best, and one claim missed
     * for each pair taken. It looks at a held pair again after a quarter interval. */
    uint32_t out2[8];
    assert_int_equal(claim(&f, 0, 8, 2, NOW, 43, out2, &st), 5);
    assert_int_equal(out2[0], 4);
    assert_int_equal(out2[4], 0);
    assert_int_equal(st.skip_ratelimit, 3);
    assert_int_equal(st.next_free_ms, NOW + 250);
    /* Everything is held now: a third worker misses every claim it asked for. */
    assert_int_equal(claim(&f, 0, 3, 3, NOW, 44, out2, &st), 0);
    assert_int_equal(st.skip_ratelimit, 3);
    assert_int_equal(st.eligible, 8);
    assert_int_equal(st.claimable, 0);
    /* Worker 1 releases one with an interval: worker 3 sees it at its recheck, rate limited
     * until sent + interval, and claims it then. */
    release(&f, 7, 0, 1, NOW - 100, 1000, NOW);
    assert_int_equal(claim(&f, 0, 3, 3, NOW + 250, 45, out2, &st), 0);
    assert_int_equal(st.next_free_ms, NOW + 500); /* the held ones' next look comes first */
    assert_int_equal(claim(&f, 0, 3, 3, NOW + 899, 46, out2, &st), 0);
    assert_int_equal(claim(&f, 0, 3, 3, NOW + 900, 46, out2, &st), 1);
    assert_int_equal(out2[0], 7);
    /* Worker 1's own index learns of its release at once (select_index_put). */
    release(&f, 6, 0, 1, 0, 0, NOW + 900);
    assert_int_equal(claim(&f, 0, 1, 1, NOW + 900, 47, out2, &st), 1);
    assert_int_equal(out2[0], 6);
    /* The other host's row is untouched. */
    assert_int_equal(rl_count_held(&t, 0), 8);
    assert_int_equal(claim(&f, 1, 2, 4, NOW, 47, out2, &st), 2);
    /* Unknown host or k = 0: nothing. */
    select_index gone;
    assert_int_equal(select_index_init(&gone, &t, 5, 4), 0);
    assert_int_equal(select_claim(&t, &gone, 2, NOW, &f.p, 47, out2, &st), 0);
    assert_int_equal(st.eligible, 0);
    six_free(&gone);
    assert_int_equal(claim(&f, 1, 0, 4, NOW, 47, out2, NULL), 0);
    fx_free(&f);
}

/* A reserved pair (a tunnel of the process waits for its slot) is never claimed through the
 * index that reserved it, not after a refresh either, while other processes still may; once
 * let go it is claimable again. */
static void test_reserve(void **state)
{
    (void)state;
    shm_table t;
    fixture f;
    ranked_table(&t, 8);
    fx_init(&f, &t, no_jitter());
    uint32_t out[8];
    select_stats st;
    select_index *ix = &f.ix[0][0];
    assert_int_equal(select_index_reserve(ix, 7), 0); /* before the index knows the pair */
    assert_int_equal(select_index_reserve(ix, 7), 0); /* twice is once */
    assert_int_equal(claim(&f, 0, 1, 1, NOW, 42, out, &st), 1);
    assert_int_equal(out[0], 6);
    assert_int_equal(select_index_reserve(ix, 5), 0); /* a pair the index holds in its heap */
    release(&f, 6, 0, 1, 0, 0, NOW);
    assert_int_equal(claim(&f, 0, 8, 1, NOW + 3000, 43, out, &st), 6); /* after a refresh */
    for (uint32_t i = 0; i < 6; i++)
        assert_true(out[i] != 7 && out[i] != 5);
    assert_int_equal(claim(&f, 0, 1, 2, NOW + 3000, 44, out, &st), 1);
    assert_int_equal(out[0], 7); /* another process is not held back */
    assert_true(rl_release(&shm_cell_at(&t, 7, 0)->rl, 2, 0, 0));
    select_index_unreserve(&t, ix, 7, NOW + 3000, &f.p);
    select_index_unreserve(&t, ix, 5, NOW + 3000, &f.p);
    select_index_unreserve(&t, ix, 4, NOW + 3000, &f.p); /* not reserved: nothing happens */
    assert_int_equal(claim(&f, 0, 2, 1, NOW + 3000, 45, out, &st), 2);
    assert_int_equal(out[0], 7);
    assert_int_equal(out[1], 5);
    for (uint32_t i = 0; i < SIX_RESERVED_MAX; i++)
        assert_int_equal(select_index_reserve(ix, 100 + i), 0);
    assert_int_equal(select_index_reserve(ix, 99), -ENOSPC);
    fx_free(&f);
}

static void test_skips(void **state)
{
    (void)state;
    shm_table t;
    fixture f;
    ranked_table(&t, 8);
    fx_init(&f, &t, no_jitter());
    atomic_store(&shm_cell_at(&t, 7, 0)->dead, 1);
    atomic_store(&t.proxies[6].state, PSTATE_DEAD);
    atomic_store(&shm_cell_at(&t, 5, 0)->cooldown_until_ms, NOW + 1);
    atomic_store(&shm_cell_at(&t, 4, 0)->cooldown_until_ms, NOW); /* expired: eligible */
    atomic_store(&shm_cell_at(&t, 3, 0)->rl, NOW + 500);
    atomic_store(&shm_cell_at(&t, 2, 0)->rl, NOW + 200);
    uint32_t out[8];
    select_stats st;
    assert_int_equal(claim(&f, 0, 8, 1, NOW, 1, out, &st), 3);
    assert_int_equal(out[0], 4);
    assert_int_equal(out[1], 1);
    assert_int_equal(out[2], 0);
    assert_int_equal(st.dead, 2);
    assert_int_equal(st.cooling, 1);
    /* 8 asked, 3 got: 2 missed for the rate limit, 1 for the cooldown */
    assert_int_equal(st.skip_ratelimit, 2);
    assert_int_equal(st.skip_cooldown, 1);
    assert_int_equal(st.eligible, 5);
    assert_int_equal(st.next_free_ms, NOW + 1); /* the cooldown ends first */
    /* The cooldown ended: proxy 5 is back; then the rate-limited ones, each at its time. */
    assert_int_equal(claim(&f, 0, 8, 1, NOW + 1, 2, out, &st), 1);
    assert_int_equal(out[0], 5);
    assert_int_equal(st.next_free_ms, NOW + 200);
    assert_int_equal(claim(&f, 0, 8, 1, NOW + 200, 3, out, &st), 1);
    assert_int_equal(out[0], 2);
    /* A pair cooled by another worker while it sat in the ready heap: found when popped,
     * counted as a skip, and claimed once the cooldown is over. */
    release(&f, 2, 0, 1, 0, 0, NOW + 200);
    atomic_store(&shm_cell_at(&t, 2, 0)->cooldown_until_ms, NOW + 300);
    assert_int_equal(claim(&f, 0, 1, 1, NOW + 200, 4, out, &st), 0);
    assert_int_equal(st.skip_cooldown, 1);
    assert_int_equal(st.cooling, 1);
    assert_int_equal(claim(&f, 0, 1, 1, NOW + 299, 5, out, &st), 0); /* 3 is due at +500 */
    assert_int_equal(claim(&f, 0, 1, 1, NOW + 300, 5, out, &st), 1);
    assert_int_equal(out[0], 2);
    /* A pair killed since: dropped from the index; revived, it is back after the refresh. */
    release(&f, 2, 0, 1, 0, 0, NOW + 301);
    atomic_store(&shm_cell_at(&t, 2, 0)->dead, 1);
    assert_int_equal(claim(&f, 0, 1, 1, NOW + 302, 6, out, &st), 0);
    assert_int_equal(st.dead, 3);
    atomic_store(&shm_cell_at(&t, 2, 0)->dead, 0);
    assert_int_equal(claim(&f, 0, 1, 1, NOW + 303, 6, out, &st), 0);
    assert_int_equal(claim(&f, 0, 1, 1, NOW + 2000, 6, out, &st), 1);
    assert_int_equal(st.dead, 2);
    fx_free(&f);
}

static void test_sources_and_ties(void **state)
{
    (void)state;
    shm_table t;
    fixture f;
    ranked_table(&t, 6);
    fx_init(&f, &t, no_jitter());
    atomic_store(&t.proxies[5].sources, 2);
    atomic_store(&t.proxies[4].sources, 4);
    atomic_store(&t.hosts[0].allowed_sources, 2 | 8);
    uint32_t out[6];
    select_stats st;
    /* Only proxy 5 is listed by an allowed source. */
    assert_int_equal(claim(&f, 0, 3, 1, NOW, 1, out, &st), 1);
    assert_int_equal(out[0], 5);
    assert_int_equal(st.eligible, 1);
    /* The pool changes (a reload): the index starts over at once. */
    atomic_store(&t.hosts[0].allowed_sources, 4);
    assert_int_equal(claim(&f, 0, 3, 1, NOW, 1, out, &st), 1);
    assert_int_equal(out[0], 4);
    /* Equal scores: lower latency first; no latency sample ranks last. */
    atomic_store(&t.hosts[1].allowed_sources, 0);
    atomic_store(&shm_cell_at(&t, 1, 1)->ewma_latency_ms, 900);
    atomic_store(&shm_cell_at(&t, 3, 1)->ewma_latency_ms, 200);
    atomic_store(&shm_cell_at(&t, 4, 1)->ewma_latency_ms, 500);
    assert_int_equal(claim(&f, 1, 4, 1, NOW, 1, out, &st), 4);
    assert_int_equal(out[0], 3);
    assert_int_equal(out[1], 4);
    assert_int_equal(out[2], 1);
    fx_free(&f);
}

static void test_jitter_spreads(void **state)
{
    (void)state;
    shm_table t;
    fixture f;
    select_params p;
    select_params_default(&p);
    assert_int_equal(shm_create(&t, 16, 1), 0);
    fixture_fill(&t, 16, 1);
    fx_init(&f, &t, p);
    /* Equal proxies: different rnd values must not always pick the same one. */
    uint32_t seen = 0;
    for (uint64_t r = 1; r < 200; r++) {
        uint32_t out[1];
        assert_int_equal(claim(&f, 0, 1, 1, NOW, r * 7919, out, NULL), 1);
        seen |= 1u << out[0];
        release(&f, out[0], 0, 1, 0, 0, NOW);
    }
    assert_true(__builtin_popcount(seen) >= 8);
    /* ...but a clearly better proxy still wins over the jitter (once the index looks at it
     * again: a score change is seen when the pair is next judged, at the latest the refresh). */
    set_window(shm_cell_at(&t, 9, 0), 10, 0);
    for (uint64_t r = 1; r < 50; r++) {
        uint32_t out[1];
        assert_int_equal(claim(&f, 0, 1, 1, NOW + 2000, r, out, NULL), 1);
        assert_int_equal(out[0], 9);
        release(&f, 9, 0, 1, 0, 0, NOW + 2000);
    }
    fx_free(&f);
}

static void test_large_k(void **state)
{
    (void)state;
    shm_table t;
    fixture f;
    assert_int_equal(shm_create(&t, 200, 1), 0);
    fixture_fill(&t, 200, 1);
    fx_init(&f, &t, no_jitter());
    for (uint32_t i = 0; i < 200; i++)
        atomic_store(&t.proxies[i].success, i); /* global rate rises with i */
    for (uint32_t i = 0; i < 200; i++)
        atomic_store(&t.proxies[i].fail, 200 - i);
    uint32_t out[64];
    assert_int_equal(claim(&f, 0, 100, 1, NOW, 0, out, NULL), 64); /* capped */
    for (uint32_t i = 0; i < 64; i++)
        assert_int_equal(out[i], 199 - i);
    fx_free(&f);
}

/* Connection affinity: with 2 workers, proxy i's home is worker i % 2 + 1. While the home
 * worker has tasks of the host queued, another worker may claim the pair only home_grace_ms
 * after it freed; when the home worker has none queued, at once. */
static void test_home_affinity(void **state)
{
    (void)state;
    shm_table t;
    fixture f;
    select_params p = no_jitter();
    p.home_workers = 2;
    p.home_grace_ms = 20;
    ranked_table(&t, 8);
    fx_init(&f, &t, p);
    for (uint32_t i = 0; i < 8; i++) /* every pair freed 5 ms ago */
        atomic_store(&shm_cell_at(&t, i, 0)->rl, NOW - 5);
    uint32_t out[8];
    select_stats st;
    /* worker 2 has tasks queued: worker 1 gets only its own home pairs (even indexes) */
    atomic_store(&t.hosts[0].queued_workers, 1ULL << 1);
    assert_int_equal(claim(&f, 0, 8, 1, NOW, 1, out, &st), 4);
    assert_int_equal(out[0], 6);
    assert_int_equal(out[3], 0);
    assert_int_equal(st.skip_ratelimit, 4);
    assert_int_equal(st.next_free_ms, NOW - 5 + 20); /* worker 2's pairs, after the grace */
    /* after the grace, worker 1 may take them */
    assert_int_equal(claim(&f, 0, 8, 1, NOW + 15, 2, out, &st), 4);
    assert_int_equal(out[0], 7);
    for (uint32_t i = 0; i < 8; i++)
        release(&f, i, 0, 1, 0, 0, NOW + 15);
    /* worker 2 nothing queued: no grace at all */
    atomic_store(&t.hosts[0].queued_workers, 1ULL << 0);
    assert_int_equal(claim(&f, 0, 8, 1, NOW + 15, 3, out, &st), 8);
    for (uint32_t i = 0; i < 8; i++)
        release(&f, i, 0, 1, 0, 0, NOW + 15);
    /* worker 2, whose home is odd: worker 1 has tasks queued, so worker 2 gets the odd ones */
    for (uint32_t i = 0; i < 8; i++)
        atomic_store(&shm_cell_at(&t, i, 0)->rl, NOW - 5);
    assert_int_equal(claim(&f, 0, 8, 2, NOW, 4, out, &st), 4);
    assert_int_equal(out[0], 7);
    assert_int_equal(out[3], 1);
    for (uint32_t i = 0; i < 4; i++)
        release(&f, out[i], 0, 2, 0, 0, NOW);
    /* no interval on the host: no affinity (nothing to share); a fresh worker's index */
    atomic_store(&t.hosts[0].interval_ms, 0);
    assert_int_equal(claim(&f, 0, 8, 3, NOW, 5, out, &st), 8);
    for (uint32_t i = 0; i < 8; i++)
        atomic_store(&shm_cell_at(&t, i, 0)->rl, NOW - 5);
    /* interval 250 ms: the grace shrinks to 10 ms, so pairs freed 12 ms ago are fair game */
    atomic_store(&t.hosts[0].interval_ms, 250);
    assert_int_equal(claim(&f, 0, 8, 4, NOW + 7, 6, out, &st), 8);
    for (uint32_t i = 0; i < 8; i++)
        atomic_store(&shm_cell_at(&t, i, 0)->rl, NOW - 5);
    assert_int_equal(claim(&f, 0, 8, 2, NOW + 4, 7, out, &st), 4);
    fx_free(&f);
}

/* The index against a brute-force scan of the row: one worker claims, releases (sent now or
 * never), pairs cool down and die, time moves on; every claim must return exactly the best
 * k pairs a scan finds claimable at that moment. Scores do not depend on time here (no last
 * success), so the index's order is exact, as it is between two refreshes in the daemon. */
static uint64_t brute_key(const shm_table *t, uint32_t proxy, uint64_t now, const select_params *p)
{
    uint32_t lat = atomic_load(&shm_cell_at(t, proxy, 0)->ewma_latency_ms);
    return ((uint64_t)select_score(t, proxy, 0, now, p) << 32) | (UINT32_MAX - lat);
}

static uint32_t brute_best(const shm_table *t, uint32_t n, uint32_t k, uint64_t now,
                           const select_params *p, uint32_t *out)
{
    uint32_t got = 0;
    for (uint32_t i = 0; i < n; i++) {
        const shm_cell *c = shm_cell_at(t, i, 0);
        uint64_t w = atomic_load(&c->rl);
        if (atomic_load(&c->dead) || atomic_load(&c->cooldown_until_ms) > now || rl_is_held(w) || w > now)
            continue;
        uint64_t key = brute_key(t, i, now, p);
        uint32_t j = got < k ? got++ : k;
        for (; j > 0 && brute_key(t, out[j - 1], now, p) < key; j--)
            if (j < k)
                out[j] = out[j - 1];
        if (j < k)
            out[j] = i;
    }
    return got;
}

static void test_index_matches_scan(void **state)
{
    (void)state;
    enum { N = 300 };
    shm_table t;
    fixture f;
    assert_int_equal(shm_create(&t, N, 1), 0);
    fixture_fill(&t, N, 1);
    fx_init(&f, &t, no_jitter());
    uint64_t rng = 12345, now = NOW;
    for (uint32_t i = 0; i < N; i++) {
        set_window(shm_cell_at(&t, i, 0), (uint32_t)(rng_next(&rng) % 11), (uint32_t)(rng_next(&rng) % 11));
        atomic_store(&shm_cell_at(&t, i, 0)->ewma_latency_ms, 1 + i); /* no ties */
    }
    uint32_t held[N], n_held = 0, claims = 0, empty = 0, several = 0;
    for (uint32_t step = 0; step < 6000; step++) {
        uint32_t op = (uint32_t)(rng_next(&rng) % 100);
        if (op < 35) {
            uint32_t k = 1 + (uint32_t)(rng_next(&rng) % 5), want[8], out[8];
            uint32_t expect = brute_best(&t, N, k, now, &f.p, want);
            uint32_t got = claim(&f, 0, k, 1, now, step, out, NULL);
            assert_int_equal(got, expect);
            for (uint32_t i = 0; i < got; i++) {
                assert_int_equal(out[i], want[i]);
                held[n_held++] = out[i];
            }
            claims++;
            empty += got == 0;
            several += got > 1;
        } else if (op < 88 && n_held > 0) {
            uint32_t i = (uint32_t)(rng_next(&rng) % n_held);
            uint64_t sent = rng_next(&rng) % 3 ? now : 0;
            release(&f, held[i], 0, 1, sent, 1000, now);
            held[i] = held[--n_held];
        } else if (op < 92) {
            /* a cooldown only grows while the pair is not ours: only a success through it ends
             * one early, and that comes from its holder, whose release reports it */
            _Atomic uint64_t *cool = &shm_cell_at(&t, (uint32_t)(rng_next(&rng) % N), 0)->cooldown_until_ms;
            uint64_t until = now + 1 + rng_next(&rng) % 3000;
            if (until > atomic_load(cool))
                atomic_store(cool, until);
        } else if (op < 94) {
            if (rng_next(&rng) % 8 == 0)
                atomic_store(&shm_cell_at(&t, (uint32_t)(rng_next(&rng) % N), 0)->dead, 1);
        } else {
            now += rng_next(&rng) % 100;
        }
    }
    /* the walk must have exercised both full and empty pools */
    assert_true(claims > 2000);
    assert_true(empty > 100 && several > 100);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score_values),   cmocka_unit_test(test_order_and_claim),
        cmocka_unit_test(test_skips),          cmocka_unit_test(test_sources_and_ties),
        cmocka_unit_test(test_jitter_spreads), cmocka_unit_test(test_large_k),
        cmocka_unit_test(test_home_affinity),  cmocka_unit_test(test_index_matches_scan),
        cmocka_unit_test(test_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
