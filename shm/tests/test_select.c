/* Scoring values and select_claim: order, claiming, skips, next_free_ms, source masks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common.h"
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
    select_params only_global = {0, 1000, 0, 0, 0, 0};
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

static void test_order_and_claim(void **state)
{
    (void)state;
    shm_table t;
    select_params p = no_jitter();
    ranked_table(&t, 8);
    uint32_t out[8];
    select_stats st;
    assert_int_equal(select_claim(&t, 0, 3, 1, NOW, &p, 42, out, &st), 3);
    assert_int_equal(out[0], 7);
    assert_int_equal(out[1], 6);
    assert_int_equal(out[2], 5);
    assert_int_equal(st.eligible, 8);
    assert_int_equal(st.skip_ratelimit, 0);
    for (int i = 0; i < 3; i++) {
        uint64_t w = atomic_load(&shm_cell_at(&t, out[i], 0)->rl);
        assert_true(rl_is_held(w));
        assert_int_equal(RL_HOLDER(w), 1);
    }
    /* Another worker cannot get the held ones: it gets the next best. */
    uint32_t out2[8];
    assert_int_equal(select_claim(&t, 0, 8, 2, NOW, &p, 43, out2, &st), 5);
    assert_int_equal(out2[0], 4);
    assert_int_equal(out2[4], 0);
    assert_int_equal(st.skip_ratelimit, 3);
    assert_int_equal(st.next_free_ms, UINT64_MAX); /* held words have no known free time */
    /* Everything is held now. */
    assert_int_equal(select_claim(&t, 0, 3, 3, NOW, &p, 44, out2, &st), 0);
    assert_int_equal(st.skip_ratelimit, 8);
    /* Release one with an interval: it is rate limited until sent + interval. */
    assert_true(rl_release(&shm_cell_at(&t, 7, 0)->rl, 1, NOW - 100, 1000));
    assert_int_equal(select_claim(&t, 0, 3, 3, NOW, &p, 45, out2, &st), 0);
    assert_int_equal(st.next_free_ms, NOW + 900);
    assert_int_equal(select_claim(&t, 0, 3, 3, NOW + 900, &p, 46, out2, &st), 1);
    assert_int_equal(out2[0], 7);
    /* The other host's row is untouched. */
    assert_int_equal(rl_count_held(&t, 0), 8);
    assert_int_equal(select_claim(&t, 1, 2, 4, NOW, &p, 47, out2, &st), 2);
    /* Unknown host or k = 0: nothing. */
    assert_int_equal(select_claim(&t, 5, 2, 4, NOW, &p, 47, out2, &st), 0);
    assert_int_equal(st.eligible, 0);
    assert_int_equal(select_claim(&t, 1, 0, 4, NOW, &p, 47, out2, NULL), 0);
    shm_destroy(&t);
}

static void test_skips(void **state)
{
    (void)state;
    shm_table t;
    select_params p = no_jitter();
    ranked_table(&t, 8);
    atomic_store(&shm_cell_at(&t, 7, 0)->dead, 1);
    atomic_store(&t.proxies[6].state, PSTATE_DEAD);
    atomic_store(&shm_cell_at(&t, 5, 0)->cooldown_until_ms, NOW + 1);
    atomic_store(&shm_cell_at(&t, 4, 0)->cooldown_until_ms, NOW); /* expired: eligible */
    atomic_store(&shm_cell_at(&t, 3, 0)->rl, NOW + 500);
    atomic_store(&shm_cell_at(&t, 2, 0)->rl, NOW + 200);
    uint32_t out[8];
    select_stats st;
    assert_int_equal(select_claim(&t, 0, 8, 1, NOW, &p, 1, out, &st), 3);
    assert_int_equal(out[0], 4);
    assert_int_equal(out[1], 1);
    assert_int_equal(out[2], 0);
    assert_int_equal(st.skip_dead, 2);
    assert_int_equal(st.skip_cooldown, 1);
    assert_int_equal(st.skip_ratelimit, 2);
    assert_int_equal(st.eligible, 5);
    assert_int_equal(st.next_free_ms, NOW + 200);
    shm_destroy(&t);
}

static void test_sources_and_ties(void **state)
{
    (void)state;
    shm_table t;
    select_params p = no_jitter();
    ranked_table(&t, 6);
    atomic_store(&t.proxies[5].sources, 2);
    atomic_store(&t.proxies[4].sources, 4);
    atomic_store(&t.hosts[0].allowed_sources, 2 | 8);
    uint32_t out[6];
    select_stats st;
    /* Only proxy 5 is listed by an allowed source. */
    assert_int_equal(select_claim(&t, 0, 3, 1, NOW, &p, 1, out, &st), 1);
    assert_int_equal(out[0], 5);
    assert_int_equal(st.eligible, 1);
    /* Equal scores: lower latency first; no latency sample ranks last. */
    atomic_store(&t.hosts[1].allowed_sources, 0);
    atomic_store(&shm_cell_at(&t, 1, 1)->ewma_latency_ms, 900);
    atomic_store(&shm_cell_at(&t, 3, 1)->ewma_latency_ms, 200);
    atomic_store(&shm_cell_at(&t, 4, 1)->ewma_latency_ms, 500);
    assert_int_equal(select_claim(&t, 1, 4, 1, NOW, &p, 1, out, &st), 4);
    assert_int_equal(out[0], 3);
    assert_int_equal(out[1], 4);
    assert_int_equal(out[2], 1);
    shm_destroy(&t);
}

static void test_jitter_spreads(void **state)
{
    (void)state;
    shm_table t;
    select_params p;
    select_params_default(&p);
    assert_int_equal(shm_create(&t, 16, 1), 0);
    fixture_fill(&t, 16, 1);
    /* Equal proxies: different rnd values must not always pick the same one. */
    uint32_t seen = 0;
    for (uint64_t r = 1; r < 200; r++) {
        uint32_t out[1];
        assert_int_equal(select_claim(&t, 0, 1, 1, NOW, &p, r * 7919, out, NULL), 1);
        seen |= 1u << out[0];
        assert_true(rl_release(&shm_cell_at(&t, out[0], 0)->rl, 1, 0, 0));
    }
    assert_true(__builtin_popcount(seen) >= 8);
    /* ...but a clearly better proxy still wins over the jitter. */
    set_window(shm_cell_at(&t, 9, 0), 10, 0);
    for (uint64_t r = 1; r < 50; r++) {
        uint32_t out[1];
        assert_int_equal(select_claim(&t, 0, 1, 1, NOW, &p, r, out, NULL), 1);
        assert_int_equal(out[0], 9);
        assert_true(rl_release(&shm_cell_at(&t, 9, 0)->rl, 1, 0, 0));
    }
    shm_destroy(&t);
}

static void test_large_k(void **state)
{
    (void)state;
    shm_table t;
    select_params p = no_jitter();
    assert_int_equal(shm_create(&t, 200, 1), 0);
    fixture_fill(&t, 200, 1);
    for (uint32_t i = 0; i < 200; i++)
        atomic_store(&t.proxies[i].success, i); /* global rate rises with i */
    for (uint32_t i = 0; i < 200; i++)
        atomic_store(&t.proxies[i].fail, 200 - i);
    uint32_t out[64];
    assert_int_equal(select_claim(&t, 0, 100, 1, NOW, &p, 0, out, NULL), 64); /* capped */
    for (uint32_t i = 0; i < 64; i++)
        assert_int_equal(out[i], 199 - i);
    shm_destroy(&t);
}

/* Connection affinity: with 2 workers, proxy i's home is worker i % 2 + 1. While the home
 * worker has tasks of the host queued, another worker may claim the pair only home_grace_ms
 * after it freed; when the home worker has none queued, at once. */
static void test_home_affinity(void **state)
{
    (void)state;
    shm_table t;
    select_params p = no_jitter();
    p.home_workers = 2;
    p.home_grace_ms = 20;
    ranked_table(&t, 8);
    for (uint32_t i = 0; i < 8; i++) /* every pair freed 5 ms ago */
        atomic_store(&shm_cell_at(&t, i, 0)->rl, NOW - 5);
    uint32_t out[8];
    select_stats st;
    /* worker 2 has tasks queued: worker 1 gets only its own home pairs (even indexes) */
    atomic_store(&t.hosts[0].queued_workers, 1ULL << 1);
    assert_int_equal(select_claim(&t, 0, 8, 1, NOW, &p, 1, out, &st), 4);
    assert_int_equal(out[0], 6);
    assert_int_equal(out[3], 0);
    assert_int_equal(st.skip_ratelimit, 4);
    assert_int_equal(st.next_free_ms, NOW - 5 + 20); /* worker 2's pairs, after the grace */
    /* after the grace, worker 1 may take them */
    assert_int_equal(select_claim(&t, 0, 8, 1, NOW + 15, &p, 2, out, &st), 4);
    assert_int_equal(out[0], 7);
    for (uint32_t i = 0; i < 8; i++)
        assert_true(rl_release(&shm_cell_at(&t, i, 0)->rl, 1, 0, 0));
    /* worker 2 nothing queued: no grace at all */
    atomic_store(&t.hosts[0].queued_workers, 1ULL << 0);
    assert_int_equal(select_claim(&t, 0, 8, 1, NOW, &p, 3, out, &st), 8);
    for (uint32_t i = 0; i < 8; i++)
        assert_true(rl_release(&shm_cell_at(&t, i, 0)->rl, 1, 0, 0));
    /* worker 2, whose home is odd: worker 1 has tasks queued, so worker 2 gets the odd ones */
    for (uint32_t i = 0; i < 8; i++)
        atomic_store(&shm_cell_at(&t, i, 0)->rl, NOW - 5);
    assert_int_equal(select_claim(&t, 0, 8, 2, NOW, &p, 4, out, &st), 4);
    assert_int_equal(out[0], 7);
    assert_int_equal(out[3], 1);
    for (uint32_t i = 0; i < 4; i++)
        assert_true(rl_release(&shm_cell_at(&t, out[i], 0)->rl, 2, 0, 0));
    /* no interval on the host: no affinity (nothing to share) */
    atomic_store(&t.hosts[0].interval_ms, 0);
    assert_int_equal(select_claim(&t, 0, 8, 2, NOW, &p, 5, out, &st), 8);
    for (uint32_t i = 0; i < 8; i++)
        atomic_store(&shm_cell_at(&t, i, 0)->rl, NOW - 5);
    /* interval 250 ms: the grace shrinks to 10 ms, so pairs freed 12 ms ago are fair game */
    atomic_store(&t.hosts[0].interval_ms, 250);
    assert_int_equal(select_claim(&t, 0, 8, 2, NOW + 7, &p, 6, out, &st), 8);
    for (uint32_t i = 0; i < 8; i++)
        atomic_store(&shm_cell_at(&t, i, 0)->rl, NOW - 5);
    assert_int_equal(select_claim(&t, 0, 8, 2, NOW + 4, &p, 7, out, &st), 4);
    for (uint32_t i = 0; i < 8; i++)
        atomic_store(&shm_cell_at(&t, i, 0)->rl, NOW - 5);
    /* affinity off (1 worker): everything, whatever the mask says */
    atomic_store(&t.hosts[0].interval_ms, 1000);
    p.home_workers = 1;
    assert_int_equal(select_claim(&t, 0, 8, 2, NOW, &p, 5, out, &st), 8);
    shm_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score_values),   cmocka_unit_test(test_order_and_claim),
        cmocka_unit_test(test_skips),          cmocka_unit_test(test_sources_and_ties),
        cmocka_unit_test(test_jitter_spreads), cmocka_unit_test(test_large_k),
        cmocka_unit_test(test_home_affinity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
