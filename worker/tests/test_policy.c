/* The racing decisions of docs/RACING.md, pinned: a changed rule or constant fails here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include "worker/policy.h"

#define RMAX 64 /* RACE_MAX */

/* The defaults of scatter.ini: race_width 3, 1..6, adaptive, hedged. */
static policy_race defaults(void)
{
    policy_race r = {.task_width = 0, .adaptive = 1, .hedged = 1, .width = 3, .width_min = 1, .width_max = 6};
    return r;
}

static void success_estimate(void **s)
{
    (void)s;
    /* nothing known: the cold-start prior */
    assert_int_equal(policy_success_permille(0, 0, 0, 0), 300);
    /* one lucky answer is not certainty: (1000 + 2 * 300) / 3 */
    assert_int_equal(policy_success_permille(1, 1, 0, 0), 533);
    assert_int_equal(policy_success_permille(1, 0, 0, 0), 200);
    assert_int_equal(policy_success_permille(10, 10, 0, 0), 883);
    assert_int_equal(policy_success_permille(1000, 1000, 0, 0), 998);
    assert_int_equal(policy_success_permille(1000, 0, 0, 0), 0);
    /* the host's window, when it has samples, wins over the global record */
    assert_int_equal(policy_success_permille(2, 0, 100, 0), 150);
    /* no window for the host: the global record, shrunk the same way */
    assert_int_equal(policy_success_permille(0, 0, 8, 0), 860);
    assert_int_equal(policy_success_permille(0, 0, 2, 6), 260);
}

static void claim_width(void **s)
{
    (void)s;
    policy_race r = defaults();
    /* adaptive: claim race_width_max, then trim */
    assert_int_equal(policy_claim_k(&r, 0, 1000, RMAX), 6);
    r.adaptive = 0;
    assert_int_equal(policy_claim_k(&r, 0, 1000, RMAX), 3);
    /* a task's own width overrides both */
    r.task_width = 5;
    assert_int_equal(policy_claim_k(&r, 0, 1000, RMAX), 5);
    r.adaptive = 1;
    assert_int_equal(policy_claim_k(&r, 0, 1000, RMAX), 5);
    /* a probe asks one question */
    assert_int_equal(policy_claim_k(&r, 1, 1000, RMAX), 1);
    /* never more than max_inflight leaves room for, nor RACE_MAX */
    assert_int_equal(policy_claim_k(&r, 0, 2, RMAX), 2);
    assert_int_equal(policy_claim_k(&r, 0, 0, RMAX), 0);
    r.task_width = 100;
    assert_int_equal(policy_claim_k(&r, 0, 1000, RMAX), RMAX);
    r.task_width = 0;
    r.width_max = 64;
    assert_int_equal(policy_claim_k(&r, 0, 1000, RMAX), 64);
}

static void adapts_when(void **s)
{
    (void)s;
    policy_race r = defaults();
    assert_true(policy_adapts(&r, 2));
    assert_false(policy_adapts(&r, 1)); /* one claimed: nothing to trim */
    assert_false(policy_adapts(&r, 0));
    r.task_width = 2;
    assert_false(policy_adapts(&r, 6)); /* a client's explicit width is kept */
    r.task_width = 0;
    r.adaptive = 0;
    assert_false(policy_adapts(&r, 6));
}

static void target_abundant_or_scarce(void **s)
{
    (void)s;
    assert_int_equal(POLICY_TARGET_ABUNDANT, 970);
    /* abundant only when claimable pairs left exceed ABUNDANT_FACTOR (4) per queued task */
    assert_int_equal(policy_target_permille(4, 1, 0, 0), 0);
    assert_int_equal(policy_target_permille(5, 1, 0, 0), 970);
    assert_int_equal(policy_target_permille(40, 10, 0, 0), 0);
    assert_int_equal(policy_target_permille(41, 10, 0, 0), 970);
    assert_int_equal(policy_target_permille(0, 0, 0, 0), 0);
    assert_int_equal(policy_target_permille(1, 0, 0, 0), 970);
    /* a task's last two rounds (max_attempts counts rounds) use the high target anyway */
    assert_int_equal(policy_target_permille(0, 50, 2, 5), 0);   /* round 3 of 5 */
    assert_int_equal(policy_target_permille(0, 50, 3, 5), 970); /* round 4 of 5 */
    assert_int_equal(policy_target_permille(0, 50, 4, 5), 970); /* round 5 of 5 */
    assert_int_equal(policy_target_permille(0, 50, 0, 2), 970);
    assert_int_equal(policy_target_permille(0, 50, 0, 1), 970);
    assert_int_equal(policy_target_permille(0, 50, 0, 3), 0);
    /* max_attempts 0 is unlimited: no last round */
    assert_int_equal(policy_target_permille(0, 50, 1000, 0), 0);
}

static void keep_prefix(void **s)
{
    (void)s;
    uint32_t cold[12], proven[6] = {900, 900, 900, 900, 900, 900};
    for (int i = 0; i < 12; i++)
        cold[i] = policy_success_permille(0, 0, 0, 0);
    /* tasks compete for slots: K = race_width_min */
    assert_int_equal(policy_keep(cold, 6, 1, POLICY_TARGET_SCARCE), 1);
    assert_int_equal(policy_keep(cold, 6, 2, POLICY_TARGET_SCARCE), 2);
    /* cold start widens K by itself: 1 - 0.7^k reaches 0.97 at k = 10... */
    assert_int_equal(policy_keep(cold, 12, 1, POLICY_TARGET_ABUNDANT), 10);
    /* ...but never past the claimed (claimable) count */
    assert_int_equal(policy_keep(cold, 6, 1, POLICY_TARGET_ABUNDANT), 6);
    assert_int_equal(policy_keep(cold, 0, 1, POLICY_TARGET_ABUNDANT), 0);
    assert_int_equal(policy_keep(cold, 3, 5, POLICY_TARGET_SCARCE), 3);
    /* proven proxies narrow it: 1 - 0.1^2 >= 0.97 > 0.9 */
    assert_int_equal(policy_keep(proven, 6, 1, POLICY_TARGET_ABUNDANT), 2);
    /* reaching the target exactly is enough */
    uint32_t edge[2] = {970, 970};
    assert_int_equal(policy_keep(edge, 2, 1, 970), 1);
    edge[0] = 969;
    assert_int_equal(policy_keep(edge, 2, 1, 970), 2);
    /* race_width_min holds even when the first one is certain */
    uint32_t sure[4] = {1000, 1000, 1000, 1000};
    assert_int_equal(policy_keep(sure, 4, 1, POLICY_TARGET_ABUNDANT), 1);
    assert_int_equal(policy_keep(sure, 4, 3, POLICY_TARGET_ABUNDANT), 3);
    /* best first: a weak head needs a second, a strong head does not */
    uint32_t mixed[3] = {500, 950, 950};
    assert_int_equal(policy_keep(mixed, 3, 1, POLICY_TARGET_ABUNDANT), 2);
    mixed[0] = 980;
    assert_int_equal(policy_keep(mixed, 3, 1, POLICY_TARGET_ABUNDANT), 1);
}

static void start_now(void **s)
{
    (void)s;
    assert_int_equal(policy_start_now(4, 0, 0), 4);  /* no hedge delay: all at once */
    assert_int_equal(policy_start_now(4, 30, 0), 1); /* hedged: the best one */
    assert_int_equal(policy_start_now(1, 30, 0), 1);
    assert_int_equal(policy_start_now(4, 30, 1), 4); /* a probe never waits on a hedge */
}

static void win_ring_and_quantile(void **s)
{
    (void)s;
    uint32_t lat[POLICY_WIN_RING], n = 0, pos = 0, hedge = 0;
    memset(lat, 0, sizeof lat);
    /* fewer than HEDGE_MIN_SAMPLES (16) wins: no delay, the round fires all at once */
    for (uint32_t i = 1; i <= 15; i++) {
        assert_int_equal(policy_win_push(lat, &n, &pos, i * 10), 0);
        assert_int_equal(policy_hedge_ms(1, n, hedge), 0);
    }
    /* exactly 16: the quantile is computed, p75 of 10..160 is rank 15 * 75 / 100 = 11 */
    assert_int_equal(policy_win_push(lat, &n, &pos, 160), 1);
    hedge = policy_hedge_quantile(lat, n, 75, 5);
    assert_int_equal(hedge, 120);
    assert_int_equal(policy_hedge_ms(1, n, hedge), 120);
    assert_int_equal(policy_hedge_ms(0, n, hedge), 0); /* race_mode = all */
    /* recomputed every 8 wins only */
    for (uint32_t i = 17; i <= 23; i++)
        assert_int_equal(policy_win_push(lat, &n, &pos, 5000), 0);
    assert_int_equal(policy_win_push(lat, &n, &pos, 5000), 1);
    assert_int_equal(n, 24);
    /* the ring keeps the last 64: the 65th win replaces the first */
    for (uint32_t i = 25; i <= 64; i++)
        policy_win_push(lat, &n, &pos, 7);
    assert_int_equal(n, 64);
    assert_int_equal(pos, 0);
    assert_int_equal(lat[0], 10);
    assert_int_equal(policy_win_push(lat, &n, &pos, 9), 0);
    assert_int_equal(n, 64);
    assert_int_equal(pos, 1);
    assert_int_equal(lat[0], 9);
}

static void quantile_floor(void **s)
{
    (void)s;
    uint32_t v[64];
    for (uint32_t i = 0; i < 64; i++)
        v[i] = 64 - i; /* descending: the sort is ours */
    assert_int_equal(policy_hedge_quantile(v, 64, 75, 5), 48);
    assert_int_equal(policy_hedge_quantile(v, 64, 99, 5), 63);
    assert_int_equal(policy_hedge_quantile(v, 64, 1, 0), 1);
    assert_int_equal(policy_hedge_quantile(v, 64, 50, 0), 32);
    assert_int_equal(v[0], 64); /* input untouched */
    /* hedge_min is a floor */
    assert_int_equal(policy_hedge_quantile(v, 64, 75, 100), 100);
    assert_int_equal(policy_hedge_quantile(v, 64, 75, 48), 48);
    assert_int_equal(policy_hedge_ms(1, 64, 0), 0);
    /* a cached quantile counts only from HEDGE_MIN_SAMPLES (16) wins on */
    assert_int_equal(policy_hedge_ms(1, 15, 40), 0);
    assert_int_equal(policy_hedge_ms(1, 16, 40), 40);
    assert_int_equal(policy_hedge_ms(0, 64, 40), 0);
}

static void straggler_eligibility(void **s)
{
    (void)s;
    policy_race r = defaults();
    policy_round rd = {.n_running = 1, .started = 1, .k = 1, .straggled = 0, .probe = 0};
    assert_true(policy_straggler_ok(&r, &rd, RMAX));
    rd.straggled = 1;
    assert_true(policy_straggler_ok(&r, &rd, RMAX));
    rd.straggled = 2; /* at most 2 per round */
    assert_false(policy_straggler_ok(&r, &rd, RMAX));
    rd.straggled = 0;
    /* on top of K: a round that used all of race_width_max still may */
    rd.started = rd.k = 6;
    rd.n_running = 6;
    assert_true(policy_straggler_ok(&r, &rd, RMAX));
    rd.n_running = RMAX;
    assert_false(policy_straggler_ok(&r, &rd, RMAX));
    rd.n_running = 1;
    rd.probe = 1;
    assert_false(policy_straggler_ok(&r, &rd, RMAX));
    rd.probe = 0;
    r.task_width = 2;
    assert_false(policy_straggler_ok(&r, &rd, RMAX));
    r.task_width = 0;
    r.hedged = 0;
    assert_false(policy_straggler_ok(&r, &rd, RMAX));
    r.hedged = 1;
    r.adaptive = 0;
    assert_false(policy_straggler_ok(&r, &rd, RMAX));
}

static void hedge_timer_actions(void **s)
{
    (void)s;
    policy_race r = defaults();
    policy_round rd = {.n_running = 1, .started = 1, .k = 3, .straggled = 0, .probe = 0};
    /* planned attempts left: the next one joins, whatever is queued */
    assert_true(policy_may_hedge(&r, &rd, RMAX));
    assert_int_equal(policy_hedge_fire(&r, &rd, 10, RMAX), POLICY_HEDGE_NEXT);
    /* K used: a straggler hedge, only while nothing of the host is queued here */
    rd.started = 3;
    assert_true(policy_may_hedge(&r, &rd, RMAX));
    assert_int_equal(policy_hedge_fire(&r, &rd, 0, RMAX), POLICY_HEDGE_STRAGGLER);
    assert_int_equal(policy_hedge_fire(&r, &rd, 1, RMAX), POLICY_HEDGE_NONE);
    rd.straggled = 2;
    assert_false(policy_may_hedge(&r, &rd, RMAX));
    assert_int_equal(policy_hedge_fire(&r, &rd, 0, RMAX), POLICY_HEDGE_NONE);
    /* nothing running: nothing to hedge */
    rd.straggled = 0;
    rd.started = 1;
    rd.n_running = 0;
    assert_false(policy_may_hedge(&r, &rd, RMAX));
}

static void hedge_timer_delay(void **s)
{
    (void)s;
    policy_round rd = {.n_running = 1, .started = 1, .k = 3, .straggled = 0, .probe = 0};
    /* no hedge delay yet: straggler checks every 100 ms */
    assert_int_equal(policy_hedge_timer_ms(0, &rd, 0), 100);
    assert_int_equal(policy_hedge_timer_ms(40, &rd, 5), 40);
    rd.started = 3;
    assert_int_equal(policy_hedge_timer_ms(40, &rd, 0), 40);
    /* only a straggler check left and tasks queued: at most every 100 ms */
    assert_int_equal(policy_hedge_timer_ms(40, &rd, 5), 100);
    assert_int_equal(policy_hedge_timer_ms(150, &rd, 5), 150);
}

static void straggler_choice(void **s)
{
    (void)s;
    uint32_t p[4] = {699, 700, 950, 950}, lat[4] = {10, 10, 10, 10};
    /* proven means an estimate of at least 0.7 */
    assert_int_equal(policy_straggler_pick(p, lat, 4, 50, 0), 1);
    /* and a known EWMA latency no longer than the round waited */
    lat[1] = 0;
    assert_int_equal(policy_straggler_pick(p, lat, 4, 50, 0), 2);
    lat[2] = 51;
    assert_int_equal(policy_straggler_pick(p, lat, 4, 50, 0), 3);
    lat[3] = 50;
    assert_int_equal(policy_straggler_pick(p, lat, 4, 50, 0), 3);
    lat[3] = 60;
    assert_int_equal(policy_straggler_pick(p, lat, 4, 50, 0), -1);
    /* the wait counts as at least the hedge delay */
    assert_int_equal(policy_straggler_pick(p, lat, 4, 50, 55), 2);
    assert_int_equal(policy_straggler_pick(p, lat, 0, 50, 55), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(success_estimate),  cmocka_unit_test(claim_width),
        cmocka_unit_test(adapts_when),       cmocka_unit_test(target_abundant_or_scarce),
        cmocka_unit_test(keep_prefix),       cmocka_unit_test(start_now),
        cmocka_unit_test(win_ring_and_quantile), cmocka_unit_test(quantile_floor),
        cmocka_unit_test(straggler_eligibility), cmocka_unit_test(hedge_timer_actions),
        cmocka_unit_test(hedge_timer_delay), cmocka_unit_test(straggler_choice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
