/* Health: window maths, EWMA, the cooldown ladder, eviction thresholds, outcome charging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common.h"
#include "shm/health.h"

static void test_window(void **state)
{
    (void)state;
    uint64_t w = 0;
    assert_int_equal(health_window_count(w), 0);
    w = health_window_push(w, 1, 4);
    w = health_window_push(w, 0, 4);
    w = health_window_push(w, 1, 4);
    assert_int_equal(health_window_count(w), 3);
    assert_int_equal(health_window_successes(w), 2);
    assert_int_equal(w & 7, 5); /* newest in bit 0: 1,0,1 */
    w = health_window_push(w, 1, 4);
    w = health_window_push(w, 0, 4); /* fifth push: the oldest success falls out */
    assert_int_equal(health_window_count(w), 4);
    assert_int_equal(health_window_successes(w), 2);
    for (int i = 0; i < 10; i++)
        w = health_window_push(w, 0, 4);
    assert_int_equal(health_window_count(w), 4);
    assert_int_equal(health_window_successes(w), 0);
    /* the widest window keeps every bit and the count in the top byte */
    w = 0;
    for (int i = 0; i < 100; i++)
        w = health_window_push(w, 1, SHM_WINDOW_MAX);
    assert_int_equal(health_window_count(w), SHM_WINDOW_MAX);
    assert_int_equal(health_window_successes(w), SHM_WINDOW_MAX);
    w = health_window_push(w, 0, 10); /* window shrunk by a reload */
    assert_int_equal(health_window_count(w), 10);
    assert_int_equal(health_window_successes(w), 9);
    shm_cell c = {0};
    assert_int_equal(health_cell_rate_permille(&c), -1);
    atomic_store(&c.window, health_window_push(health_window_push(
                                health_window_push(0, 1, 30), 0, 30), 0, 30));
    assert_int_equal(health_cell_rate_permille(&c), 333);
    shm_proxy px = {0};
    assert_int_equal(health_proxy_rate_permille(&px), -1);
    atomic_store(&px.success, 3);
    atomic_store(&px.fail, 1);
    assert_int_equal(health_proxy_rate_permille(&px), 750);
}

/* The packed word from (count, bits) reads back through the same accessors as a pushed one. */
static void test_window_pack(void **state)
{
    (void)state;
    uint64_t pushed = 0;
    const int seq[] = {1, 0, 1, 1, 0, 0, 1};
    uint64_t bits = 0;
    for (int i = 0; i < 7; i++) {
        pushed = health_window_push(pushed, seq[i], 10);
        bits = (bits << 1) | (uint64_t)seq[i];
    }
    assert_int_equal(health_window_pack(7, bits), pushed);
    /* bits beyond the count are dropped, the count is cut to SHM_WINDOW_MAX */
    uint64_t w = health_window_pack(3, ~0ULL);
    assert_int_equal(health_window_count(w), 3);
    assert_int_equal(health_window_successes(w), 3);
    assert_int_equal(w & ~(7ULL << 0) & ((1ULL << 56) - 1), 0);
    w = health_window_pack(200, ~0ULL);
    assert_int_equal(health_window_count(w), SHM_WINDOW_MAX);
    assert_int_equal(health_window_successes(w), SHM_WINDOW_MAX);
    assert_int_equal(health_window_pack(0, ~0ULL), 0);
    /* pushing onto a packed word behaves as onto the pushed one */
    assert_int_equal(health_window_push(health_window_pack(7, bits), 1, 10), health_window_push(pushed, 1, 10));
}

static void test_ewma(void **state)
{
    (void)state;
    assert_int_equal(health_ewma(0, 400, 20), 400);       /* first sample is taken as is */
    assert_int_equal(health_ewma(400, 900, 20), 500);     /* 0.8*400 + 0.2*900 */
    assert_int_equal(health_ewma(500, 500, 20), 500);
    assert_int_equal(health_ewma(100, 0, 20), 80);
    assert_int_equal(health_ewma(0, 0, 20), 1);           /* 0 is reserved for "no sample" */
    assert_int_equal(health_ewma(100, 200, 100), 200);
    assert_int_equal(health_ewma(100, 200, 0), 100);
}

static void test_cooldown_ladder(void **state)
{
    (void)state;
    health_params p;
    health_params_default(&p);
    shm_table t;
    assert_int_equal(shm_create(&t, 2, 1), 0);
    fixture_fill(&t, 2, 1);
    shm_cell *c = shm_cell_at(&t, 0, 0);
    static const uint32_t ladder[] = {30000, 60000, 120000, 240000, 300000, 300000, 300000};
    for (uint32_t l = 0; l < 7; l++)
        assert_int_equal(health_cooldown_ms(&p, l), ladder[l]);
    assert_int_equal(health_cooldown_ms(&p, 1000), 300000);

    uint64_t now = 1000;
    /* Two failures: no cooldown yet; the third starts 30 s. */
    assert_int_equal(health_record(&t, 0, 0, OUTCOME_BLOCKED, 0, now, &p, 0), 0);
    assert_int_equal(health_record(&t, 0, 0, OUTCOME_BLOCKED, 0, now, &p, 0), 0);
    assert_true(health_record(&t, 0, 0, OUTCOME_BLOCKED, 0, now, &p, 0) &
                HEALTH_COOLDOWN_STARTED);
    assert_int_equal(atomic_load(&c->cooldown_until_ms), now + 30000);
    assert_int_equal(health_classify(&t, 0, 0, now), CELL_COOLING);
    /* A late failure while cooling does not climb the ladder. */
    assert_false(health_record(&t, 0, 0, OUTCOME_BLOCKED, 0, now + 10, &p, 0) &
                 HEALTH_COOLDOWN_STARTED);
    assert_int_equal(atomic_load(&c->cooldown_level), 1);
    /* After each expiry the probe fails and the next rung starts. */
    for (uint32_t l = 1; l < 6; l++) {
        now = atomic_load(&c->cooldown_until_ms);
        assert_int_equal(health_classify(&t, 0, 0, now), CELL_HEALTHY);
        assert_true(health_record(&t, 0, 0, OUTCOME_BLOCKED, 0, now, &p, 0) &
                    HEALTH_COOLDOWN_STARTED);
        assert_int_equal(atomic_load(&c->cooldown_until_ms) - now, ladder[l]);
    }
    /* One success resets the run, the level and the cooldown. */
    now = atomic_load(&c->cooldown_until_ms);
    assert_true(health_record(&t, 0, 0, OUTCOME_SUCCESS, 200, now, &p, 0) & HEALTH_RECOVERED);
    assert_int_equal(atomic_load(&c->consec_fails), 0);
    assert_int_equal(atomic_load(&c->cooldown_level), 0);
    assert_int_equal(atomic_load(&c->cooldown_until_ms), 0);
    for (int i = 0; i < 3; i++)
        health_record(&t, 0, 0, OUTCOME_BLOCKED, 0, now, &p, 0);
    assert_int_equal(atomic_load(&c->cooldown_until_ms), now + 30000); /* back to rung one */
    shm_destroy(&t);
}

static void test_cooldown_jitter(void **state)
{
    (void)state;
    health_params p;
    health_params_default(&p);
    p.cooldown_jitter_pct = 10;
    shm_table t;
    assert_int_equal(shm_create(&t, 1, 1), 0);
    fixture_fill(&t, 1, 1);
    shm_cell *c = shm_cell_at(&t, 0, 0);
    for (uint32_t rnd = 0; rnd < 50000; rnd += 997) {
        atomic_store(&c->consec_fails, 2);
        atomic_store(&c->cooldown_level, 0);
        atomic_store(&c->cooldown_until_ms, 0);
        health_record(&t, 0, 0, OUTCOME_BLOCKED, 0, 100, &p, rnd);
        uint64_t d = atomic_load(&c->cooldown_until_ms) - 100;
        assert_in_range(d, 27000, 33000);
    }
    shm_destroy(&t);
}

static void test_unreachable_cools_at_once(void **state)
{
    (void)state;
    health_params p;
    health_params_default(&p);
    shm_table t;
    assert_int_equal(shm_create(&t, 2, 1), 0);
    fixture_fill(&t, 2, 1);
    /* one refused connection: cooldown now (30 s), charged to the proxy globally too */
    int f = health_record(&t, 0, 0, OUTCOME_PROXY_UNREACHABLE, 0, 5000, &p, 0);
    assert_true(f & HEALTH_COOLDOWN_STARTED);
    assert_int_equal(atomic_load(&shm_cell_at(&t, 0, 0)->cooldown_until_ms), 5000 + 30000);
    assert_int_equal(atomic_load(&t.proxies[0].fail), 1);
    assert_int_equal(health_classify(&t, 0, 0, 5001), CELL_COOLING);
    /* after it, the ladder goes on as usual: the probe fails -> 60 s */
    f = health_record(&t, 0, 0, OUTCOME_PROXY_UNREACHABLE, 0, 40000, &p, 0);
    assert_true(f & HEALTH_COOLDOWN_STARTED);
    assert_int_equal(atomic_load(&shm_cell_at(&t, 0, 0)->cooldown_until_ms), 40000 + 60000);
    /* a plain PROXY_DOWN still needs three in a row */
    assert_false(health_record(&t, 1, 0, OUTCOME_PROXY_DOWN, 0, 5000, &p, 0) & HEALTH_COOLDOWN_STARTED);
    assert_false(health_record(&t, 1, 0, OUTCOME_PROXY_DOWN, 0, 5001, &p, 0) & HEALTH_COOLDOWN_STARTED);
    assert_true(health_record(&t, 1, 0, OUTCOME_PROXY_DOWN, 0, 5002, &p, 0) & HEALTH_COOLDOWN_STARTED);
    shm_destroy(&t);
}

static void test_eviction(void **state)
{
    (void)state;
    health_params p;
    health_params_default(&p);
    shm_table t;
    assert_int_equal(shm_create(&t, 3, 2), 0);
    fixture_fill(&t, 3, 2);
    int flags = 0;
    for (int i = 0; i < 29; i++)
        flags |= health_record(&t, 0, 0, OUTCOME_PROXY_DOWN, 0, 1000 + i, &p, 0);
    assert_false(flags & (HEALTH_PROXY_EVICTED | HEALTH_CELL_EVICTED));
    assert_int_not_equal(atomic_load(&t.proxies[0].state), PSTATE_DEAD);
    flags = health_record(&t, 0, 0, OUTCOME_PROXY_DOWN, 0, 2000, &p, 0);
    assert_true(flags & HEALTH_PROXY_EVICTED);
    assert_true(flags & HEALTH_CELL_EVICTED);
    assert_int_equal(atomic_load(&t.proxies[0].state), PSTATE_DEAD);
    assert_int_equal(health_classify(&t, 0, 1, 2000), CELL_DEAD); /* dead for every host */
    assert_false(health_record(&t, 0, 0, OUTCOME_PROXY_DOWN, 0, 2001, &p, 0) &
                 HEALTH_PROXY_EVICTED); /* reported once */

    /* One success anywhere keeps the proxy alive. */
    health_record(&t, 1, 1, OUTCOME_SUCCESS, 100, 10, &p, 0);
    assert_int_equal(atomic_load(&t.proxies[1].state), PSTATE_ACTIVE);
    flags = 0;
    for (int i = 0; i < 60; i++)
        flags |= health_record(&t, 1, 0, OUTCOME_PROXY_DOWN, 0, 1000, &p, 0);
    assert_false(flags & HEALTH_PROXY_EVICTED);
    assert_true(flags & HEALTH_CELL_EVICTED); /* host 0 never saw a success from it */
    assert_int_equal(atomic_load(&t.proxies[1].state), PSTATE_ACTIVE);
    assert_int_equal(atomic_load(&shm_cell_at(&t, 1, 0)->dead), 1);
    assert_int_equal(atomic_load(&shm_cell_at(&t, 1, 1)->dead), 0);
    assert_int_equal(health_classify(&t, 1, 0, 0), CELL_DEAD);
    assert_int_equal(health_classify(&t, 1, 1, 0), CELL_HEALTHY);

    /* BLOCKED evicts the cell only: 30 refusals from one host are not the proxy's death. */
    flags = 0;
    for (int i = 0; i < 30; i++)
        flags |= health_record(&t, 2, 0, OUTCOME_BLOCKED, 0, 1000, &p, 0);
    assert_true(flags & HEALTH_CELL_EVICTED);
    assert_false(flags & HEALTH_PROXY_EVICTED);
    assert_int_equal(atomic_load(&t.proxies[2].state), PSTATE_UNKNOWN);
    shm_destroy(&t);
}

static void test_charging(void **state)
{
    (void)state;
    health_params p;
    health_params_default(&p);
    shm_table t;
    assert_int_equal(shm_create(&t, 2, 1), 0);
    fixture_fill(&t, 2, 1);
    shm_cell *c = shm_cell_at(&t, 0, 0);
    shm_proxy *px = &t.proxies[0];
    shm_host *h = &t.hosts[0];

    health_record(&t, 0, 0, OUTCOME_PROXY_DOWN, 0, 10, &p, 0);
    assert_int_equal(atomic_load(&c->fail), 1);
    assert_int_equal(atomic_load(&px->fail), 1);
    assert_int_equal(atomic_load(&h->fail), 1);
    assert_int_equal(health_window_count(atomic_load(&c->window)), 1);

    health_record(&t, 0, 0, OUTCOME_BLOCKED, 0, 20, &p, 0);
    assert_int_equal(atomic_load(&c->fail), 2);
    assert_int_equal(atomic_load(&px->fail), 1); /* the proxy itself worked */
    assert_int_equal(atomic_load(&h->fail), 2);
    assert_int_equal(atomic_load(&c->consec_fails), 2);

    health_record(&t, 0, 0, OUTCOME_TARGET_ERROR, 0, 30, &p, 0);
    health_record(&t, 0, 0, OUTCOME_TARGET_ERROR, 0, 31, &p, 0);
    assert_int_equal(atomic_load(&c->fail), 2);
    assert_int_equal(atomic_load(&c->consec_fails), 2);
    assert_int_equal(atomic_load(&px->fail), 1);
    assert_int_equal(atomic_load(&h->target_err_run), 2);
    assert_int_equal(atomic_load(&h->target_errors), 2);
    assert_int_equal(health_window_count(atomic_load(&c->window)), 2);

    uint64_t before = atomic_load(&c->window);
    assert_int_equal(health_record(&t, 0, 0, OUTCOME_CANCELLED, 0, 40, &p, 0), 0);
    assert_int_equal(atomic_load(&c->window), before);
    assert_int_equal(atomic_load(&c->fail), 2);
    assert_int_equal(atomic_load(&c->success), 0);

    assert_true(health_record(&t, 0, 0, OUTCOME_SUCCESS, 300, 50, &p, 0) & HEALTH_RECOVERED);
    assert_int_equal(atomic_load(&c->success), 1);
    assert_int_equal(atomic_load(&c->ewma_latency_ms), 300);
    assert_int_equal(atomic_load(&c->last_success_ms), 50);
    assert_int_equal(atomic_load(&px->success), 1);
    assert_int_equal(atomic_load(&px->state), PSTATE_ACTIVE);
    assert_int_equal(atomic_load(&h->success), 1);
    assert_int_equal(atomic_load(&h->last_success_ms), 50);
    assert_int_equal(atomic_load(&h->target_err_run), 0);
    assert_int_equal(atomic_load(&h->target_errors), 2);
    assert_int_equal(health_window_successes(atomic_load(&c->window)), 1);
    assert_int_equal(health_window_count(atomic_load(&c->window)), 3);
    health_record(&t, 0, 0, OUTCOME_SUCCESS, 800, 60, &p, 0);
    assert_int_equal(atomic_load(&c->ewma_latency_ms), 400);
    assert_int_equal(health_record(&t, 0, 0, OUTCOME_SUCCESS, 800, 60, &p, 0), 0);
    /* A dead proxy stays dead on success: only a source refresh revives it. */
    atomic_store(&t.proxies[1].state, PSTATE_DEAD);
    health_record(&t, 1, 0, OUTCOME_SUCCESS, 100, 70, &p, 0);
    assert_int_equal(atomic_load(&t.proxies[1].state), PSTATE_DEAD);
    /* Out-of-range indexes are ignored, not written. */
    assert_int_equal(health_record(&t, 5, 0, OUTCOME_SUCCESS, 1, 1, &p, 0), 0);
    shm_destroy(&t);
}

/* A SOCKS reply about the target (0x03/0x04/0x05/0x08) charges the pair and the host's
 * breaker, never the proxy: 20 proxies failing against 12 hosts, 50 times each pair (far past
 * eviction_min_samples), all stay alive for every other host. */
static void test_target_unreachable(void **state)
{
    (void)state;
    health_params p;
    health_params_default(&p);
    shm_table t;
    assert_int_equal(shm_create(&t, 20, 13), 0);
    fixture_fill(&t, 20, 13);
    int flags = 0;
    uint64_t now = 1000;
    for (int round = 0; round < 50; round++)
        for (uint32_t h = 0; h < 12; h++)
            for (uint32_t px = 0; px < 20; px++)
                flags |= health_record(&t, px, h, OUTCOME_TARGET_UNREACHABLE, 0, now++, &p, 0);
    assert_false(flags & HEALTH_PROXY_EVICTED);
    assert_true(flags & HEALTH_COOLDOWN_STARTED);
    assert_true(flags & HEALTH_CELL_EVICTED); /* dead for those hosts only */
    for (uint32_t px = 0; px < 20; px++) {
        assert_int_equal(atomic_load(&t.proxies[px].fail), 0);
        assert_int_not_equal(atomic_load(&t.proxies[px].state), PSTATE_DEAD);
        assert_int_equal(atomic_load(&shm_cell_at(&t, px, 3)->fail), 50);
        assert_int_equal(health_classify(&t, px, 3, now), CELL_DEAD);
        assert_int_equal(health_classify(&t, px, 12, now), CELL_HEALTHY); /* a valid host */
    }
    shm_host *hs = &t.hosts[3];
    assert_int_equal(atomic_load(&hs->target_errors), 50 * 20);
    assert_int_equal(atomic_load(&hs->target_err_run), 50 * 20);
    assert_int_equal(atomic_load(&hs->fail), 0);

    /* the pair's ladder works as for any charged failure: three in a row start a cooldown */
    shm_cell *c = shm_cell_at(&t, 0, 12);
    assert_int_equal(health_record(&t, 0, 12, OUTCOME_TARGET_UNREACHABLE, 0, now, &p, 0), 0);
    assert_int_equal(health_record(&t, 0, 12, OUTCOME_TARGET_UNREACHABLE, 0, now, &p, 0), 0);
    assert_true(health_record(&t, 0, 12, OUTCOME_TARGET_UNREACHABLE, 0, now, &p, 0) & HEALTH_COOLDOWN_STARTED);
    assert_int_equal(atomic_load(&c->cooldown_until_ms), now + 30000);
    assert_int_equal(health_window_count(atomic_load(&c->window)), 3);
    assert_int_equal(atomic_load(&t.hosts[12].target_err_run), 3);
    /* a success through another proxy ends the host's run of target errors */
    health_record(&t, 1, 12, OUTCOME_SUCCESS, 10, now, &p, 0);
    assert_int_equal(atomic_load(&t.hosts[12].target_err_run), 0);
    assert_int_equal(atomic_load(&t.hosts[12].target_errors), 3);
    shm_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),         cmocka_unit_test(test_window_pack),         cmocka_unit_test(test_ewma),
        cmocka_unit_test(test_cooldown_ladder), cmocka_unit_test(test_cooldown_jitter),
        cmocka_unit_test(test_eviction),       cmocka_unit_test(test_charging),
        cmocka_unit_test(test_unreachable_cools_at_once), cmocka_unit_test(test_target_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
