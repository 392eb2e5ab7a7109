#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include "shm/registry.h"
#include "shm/metrics.h"
#include "shm/ratelimit.h"

static void throughput_ring(void **s)
{
    (void)s;
    shm_table t;
    assert_int_equal(shm_create(&t, 16, 2), 0);
    uint64_t base = 1000000000ULL; /* ms */
    for (int i = 0; i < 5; i++)
        metrics_tp_record(&t, base + 10, i < 3);   /* second S: 5 done, 3 ok */
    for (int i = 0; i < 7; i++)
        metrics_tp_record(&t, base + 1500, 1);     /* second S+1: 7 done */
    metrics_tp_record(&t, base + 2100, 1);         /* S+2: still filling, not counted at S+2 */
    uint64_t d, o;
    metrics_tp_window(&t, base + 2100, 1, &d, &o);
    assert_int_equal(d, 7);
    assert_int_equal(o, 7);
    metrics_tp_window(&t, base + 2100, 10, &d, &o);
    assert_int_equal(d, 12);
    assert_int_equal(o, 10);
    /* a slot reused 128 s later starts from zero, not from the old count */
    metrics_tp_record(&t, base + 10 + 128000, 1);
    metrics_tp_window(&t, base + 1000 + 128000, 1, &d, &o);
    assert_int_equal(d, 1);
    shm_destroy(&t);
}

/* Proxies by state: dead globally, cooling for every registered host, else healthy. */
static void proxy_counts(void **s)
{
    (void)s;
    shm_table t;
    assert_int_equal(shm_create(&t, 16, 2), 0);
    shm_proxy_addr a;
    memset(&a, 0, sizeof a);
    strcpy(a.host, "127.0.0.1");
    uint32_t p[3], h;
    for (int i = 0; i < 3; i++) {
        a.port = (uint16_t)(1080 + i);
        assert_true(reg_proxy_add(&t, &a, 1, 0, 1, &p[i]) >= 0);
    }
    assert_int_equal(reg_host_get(&t, "example.com", &h), 0);
    uint64_t now = 100000;
    atomic_store(&t.proxies[p[0]].state, PSTATE_DEAD);
    atomic_store(&shm_cell_at(&t, p[1], h)->cooldown_until_ms, now + 5000);
    pool_counts pc;
    metrics_proxy_counts(&t, now, &pc);
    assert_int_equal(pc.dead, 1);
    assert_int_equal(pc.cooling, 1);
    assert_int_equal(pc.healthy, 1);
    metrics_host_counts(&t, h, now, &pc);
    assert_int_equal(pc.cooling, 1);
    assert_string_equal(metrics_circuit_name(CIRCUIT_HALF_OPEN), "half_open");
    shm_destroy(&t);
}

/* A sample lands in the first bucket whose bound it does not exceed: a bound is "le". */
static void latency_histogram(void **s)
{
    (void)s;
    shm_hist h;
    memset(&h, 0, sizeof h);
    static const uint64_t SAMPLES[] = {0, 5, 6, 10, 11, 10000, 10001, 600000};
    for (size_t i = 0; i < sizeof SAMPLES / sizeof SAMPLES[0]; i++)
        shm_hist_record(&h, SAMPLES[i]);
    assert_int_equal(atomic_load(&h.b[0]), 2);  /* 0, 5 <= 5 */
    assert_int_equal(atomic_load(&h.b[1]), 2);  /* 6, 10 <= 10 */
    assert_int_equal(atomic_load(&h.b[2]), 1);  /* 11 <= 25 */
    assert_int_equal(atomic_load(&h.b[SHM_LAT_BUCKETS - 2]), 1);  /* 10000 <= 10000 */
    assert_int_equal(atomic_load(&h.b[SHM_LAT_BUCKETS - 1]), 2);  /* +Inf */
    assert_int_equal(atomic_load(&h.n), 8);
    assert_int_equal(atomic_load(&h.sum_ms), 0 + 5 + 6 + 10 + 11 + 10000 + 10001 + 600000);
    uint64_t total = 0;
    for (int i = 0; i < SHM_LAT_BUCKETS; i++)
        total += atomic_load(&h.b[i]);
    assert_int_equal(total, 8);
}

int main(void)
{
    const struct CMUnitTest t[] = {cmocka_unit_test(throughput_ring), cmocka_unit_test(proxy_counts),
                                   cmocka_unit_test(latency_histogram)};
    return cmocka_run_group_tests(t, NULL, NULL);
}
