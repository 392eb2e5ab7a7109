/* The rate-limit word: claim/release semantics, interval, holder checks, master cleanup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common.h"
#include "shm/ratelimit.h"

static void test_claim_release(void **state)
{
    (void)state;
    _Atomic uint64_t w = 0;
    uint64_t next = 0;
    assert_true(rl_claim(&w, 7, 1000, &next));
    assert_true(rl_is_held(atomic_load(&w)));
    assert_int_equal(RL_HOLDER(atomic_load(&w)), 7);
    assert_int_equal((atomic_load(&w) >> 16) & ((1ULL << 47) - 1), 1000); /* claim time */
    assert_false(rl_claim(&w, 8, 1001, &next)); /* one holder at most */
    assert_int_equal(next, UINT64_MAX);
    assert_false(rl_claim(&w, 7, 1001, NULL)); /* not even the same holder twice */
    assert_false(rl_release(&w, 8, 1010, 50)); /* not ours */
    assert_true(rl_is_held(atomic_load(&w)));
    assert_true(rl_release(&w, 7, 1010, 50));
    assert_int_equal(atomic_load(&w), 1060); /* sent + interval */
    assert_false(rl_release(&w, 7, 1010, 50)); /* not held any more */
    assert_false(rl_claim(&w, 8, 1059, &next));
    assert_int_equal(next, 1060);
    assert_true(rl_claim(&w, 8, 1060, &next)); /* exactly at the boundary */
    assert_true(rl_release(&w, 8, 0, 50));       /* never sent: free at once */
    assert_true(rl_claim(&w, 9, 1061, NULL));
    assert_false(rl_claim(&w, 0, 5000, &next)); /* holder 0 is not a holder */
    assert_false(rl_claim(&w, 70000, 5000, NULL));
}

static void test_release_holder(void **state)
{
    (void)state;
    shm_table t;
    assert_int_equal(shm_create(&t, 4, 2), 0);
    fixture_fill(&t, 4, 2);
    atomic_store(&t.hosts[1].interval_ms, 300);
    assert_true(rl_claim(&shm_cell_at(&t, 0, 0)->rl, 3, 10, NULL));
    assert_true(rl_claim(&shm_cell_at(&t, 2, 1)->rl, 3, 10, NULL));
    assert_true(rl_claim(&shm_cell_at(&t, 1, 1)->rl, 4, 10, NULL));
    assert_int_equal(rl_count_held(&t, 3), 2);
    assert_int_equal(rl_count_held(&t, 4), 1);
    assert_int_equal(rl_count_held(&t, 0), 3);
    assert_int_equal(rl_release_holder(&t, 3, 5000), 2);
    assert_int_equal(atomic_load(&shm_cell_at(&t, 0, 0)->rl), 6000); /* host 0: 1000 ms */
    assert_int_equal(atomic_load(&shm_cell_at(&t, 2, 1)->rl), 5300); /* host 1: 300 ms */
    assert_int_equal(rl_count_held(&t, 3), 0);
    assert_int_equal(rl_count_held(&t, 0), 1);
    assert_int_equal(rl_release_holder(&t, 3, 5000), 0);
    /* The dead holder's late release must not clobber the word. */
    assert_false(rl_release(&shm_cell_at(&t, 0, 0)->rl, 3, 5100, 1000));
    assert_int_equal(atomic_load(&shm_cell_at(&t, 0, 0)->rl), 6000);
    shm_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_release),
        cmocka_unit_test(test_release_holder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
