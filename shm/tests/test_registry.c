/* Registry: proxy dedupe on the canonical form, sources/revive, host registration, full table,
 * and the table layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <errno.h>

#include "common.h"
#include "common/rng.h"
#include "shm/ratelimit.h"

static shm_proxy_addr addr(const char *s)
{
    shm_proxy_addr a;
    assert_int_equal(paddr_parse(s, strlen(s), &a), PADDR_OK);
    return a;
}

static void test_layout(void **state)
{
    (void)state;
    shm_table t;
    assert_int_equal(shm_create(&t, 100, 7), 0);
    assert_int_equal(t.hdr->magic, SHM_MAGIC);
    assert_int_equal(t.hdr->version, SHM_VERSION);
    assert_int_equal(t.size, shm_size_for(100, 7));
    assert_int_equal(t.hdr->off_proxies % 64, 0);
    assert_int_equal(t.hdr->off_hosts % 64, 0);
    assert_int_equal(t.hdr->off_hash % 64, 0);
    assert_int_equal(t.hdr->off_cells % 64, 0);
    assert_true(t.hdr->hash_size >= 2 * 107);
    assert_int_equal(t.hdr->hash_size & (t.hdr->hash_size - 1), 0);
    assert_ptr_equal((char *)t.cells, (char *)t.hdr + t.hdr->off_cells);
    assert_ptr_equal(shm_cell_at(&t, 3, 2), &t.cells[2 * 100 + 3]);
    assert_true(t.hdr->total_size >= t.hdr->off_cells + 700 * sizeof(shm_cell));
    assert_int_equal(atomic_load(&t.hdr->n_proxies), 0);
    assert_int_equal(t.hash[0], SHM_NONE);
    shm_destroy(&t);
    assert_null(t.hdr);
    shm_destroy(&t); /* harmless twice */
    assert_int_equal(shm_create(&t, 0, 1), -EINVAL);
    assert_int_equal(shm_size_for(0, 1), 0);
}

static void test_proxy_dedupe(void **state)
{
    (void)state;
    shm_table t;
    uint32_t i1, i2, i3;
    assert_int_equal(shm_create(&t, 10, 2), 0);
    shm_proxy_addr a = addr("1.2.3.4:1080");
    shm_proxy_addr same = addr("socks5://1.2.3.4:1080");
    shm_proxy_addr other_scheme = addr("socks5h://1.2.3.4:1080");
    assert_int_equal(reg_proxy_add(&t, &a, 1, 0, 100, &i1), 1);
    assert_int_equal(reg_proxy_add(&t, &same, 4, 0, 200, &i2), 0);
    assert_int_equal(i1, i2);
    assert_int_equal(atomic_load(&t.proxies[i1].sources), 5);
    assert_int_equal(atomic_load(&t.proxies[i1].last_listed_ms), 200);
    assert_int_equal(reg_proxy_add(&t, &other_scheme, 1, 0, 1, &i3), 1);
    assert_int_not_equal(i3, i1);
    shm_proxy_addr v6a = addr("[2001:db8:0::1]:1080"), v6b = addr("[2001:DB8::1]:1080");
    assert_int_equal(reg_proxy_add(&t, &v6a, 1, 0, 1, &i1), 1);
    assert_int_equal(reg_proxy_add(&t, &v6b, 1, 0, 1, &i2), 0);
    assert_int_equal(i1, i2);
    shm_proxy_addr cred = addr("u:p@1.2.3.4:1080");
    assert_int_equal(reg_proxy_add(&t, &cred, 1, 0, 1, &i2), 1); /* creds are identity */
    assert_int_equal(reg_proxy_find(&t, &cred), i2);
    assert_int_equal(reg_proxy_find(&t, &a), 0);
    shm_proxy_addr absent = addr("9.9.9.9:9");
    assert_int_equal(reg_proxy_find(&t, &absent), SHM_NONE);
    assert_int_equal(atomic_load(&t.hdr->n_proxies), 4);
    assert_int_equal(atomic_load(&t.proxies[0].state), PSTATE_UNKNOWN);
    shm_destroy(&t);
}

static void test_dead_revive(void **state)
{
    (void)state;
    shm_table t;
    uint32_t i;
    assert_int_equal(shm_create(&t, 4, 2), 0);
    fixture_fill(&t, 2, 2);
    shm_cell *c = shm_cell_at(&t, 1, 1);
    atomic_store(&c->dead, 1);
    atomic_store(&c->fail, 30);
    atomic_store(&c->cooldown_until_ms, 99999);
    atomic_store(&c->consec_fails, 30);
    atomic_store(&c->cooldown_level, 4);
    atomic_store(&t.proxies[1].fail, 30);
    assert_int_equal(reg_proxy_mark_dead(&t, 1), 1);
    assert_int_equal(reg_proxy_mark_dead(&t, 1), 0);
    assert_int_equal(reg_proxy_mark_dead(&t, 3), 0); /* not registered */
    shm_proxy_addr a = t.proxies[1].addr;
    assert_int_equal(reg_proxy_add(&t, &a, 2, 0, 50, &i), 0); /* listed, no revive */
    assert_int_equal(atomic_load(&t.proxies[1].state), PSTATE_DEAD);
    assert_int_equal(reg_proxy_add(&t, &a, 2, 1, 60, &i), 0);
    assert_int_equal(i, 1);
    assert_int_equal(atomic_load(&t.proxies[1].state), PSTATE_UNKNOWN);
    assert_int_equal(atomic_load(&c->dead), 0);
    assert_int_equal(atomic_load(&c->cooldown_until_ms), 0);
    assert_int_equal(atomic_load(&c->consec_fails), 0);
    assert_int_equal(atomic_load(&c->cooldown_level), 0);
    assert_int_equal(atomic_load(&c->fail), 0);
    assert_int_equal(atomic_load(&t.proxies[1].fail), 0);
    shm_destroy(&t);
}

static void test_hosts(void **state)
{
    (void)state;
    shm_table t;
    uint32_t a, b, c;
    assert_int_equal(shm_create(&t, 4, 3), 0);
    assert_int_equal(reg_host_find(&t, "example.com"), SHM_NONE);
    assert_int_equal(reg_host_get(&t, "Example.COM", &a), 0);
    assert_int_equal(reg_host_get(&t, "example.com", &b), 0);
    assert_int_equal(a, b);
    assert_string_equal(t.hosts[a].name, "example.com");
    assert_int_equal(reg_host_find(&t, "EXAMPLE.com"), a);
    assert_int_equal(reg_host_get(&t, "example.com:443", &c), 0); /* the caller decides ports */
    assert_int_not_equal(c, a);
    assert_int_equal(reg_host_get(&t, "[::1]:8080", &c), 0);
    assert_int_equal(atomic_load(&t.hdr->n_hosts), 3);
    assert_int_equal(reg_host_get(&t, "one-too-many.com", &c), -ENOSPC);
    assert_int_equal(reg_host_get(&t, "", &c), -EINVAL);
    assert_int_equal(reg_host_get(&t, "bad host", &c), -EINVAL);
    assert_int_equal(reg_host_get(&t, "evil\n.com", &c), -EINVAL);
    char longname[SHM_HOST_NAME_MAX + 10];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(reg_host_get(&t, longname, &c), -EINVAL);
    assert_int_equal(reg_host_find(&t, longname), SHM_NONE);
    assert_int_equal(reg_host_get(&t, "example.com", &b), 0); /* found when full */
    assert_int_equal(b, a);
    shm_destroy(&t);
}

static void test_proxies_full(void **state)
{
    (void)state;
    shm_table t;
    uint32_t i;
    assert_int_equal(shm_create(&t, 3, 1), 0);
    fixture_fill(&t, 3, 1);
    shm_proxy_addr extra = addr("7.7.7.7:7");
    assert_int_equal(reg_proxy_add(&t, &extra, 1, 0, 1, &i), -ENOSPC);
    shm_proxy_addr old = t.proxies[2].addr;
    assert_int_equal(reg_proxy_add(&t, &old, 1, 0, 1, &i), 0); /* existing still found */
    assert_int_equal(i, 2);
    /* A proxy and a host with the same text are different keys in the one hash. */
    uint32_t h;
    assert_int_equal(reg_host_get(&t, "host0.example", &h), 0);
    assert_int_equal(h, 0);
    shm_destroy(&t);
}

static void test_many(void **state)
{
    (void)state;
    shm_table t;
    assert_int_equal(shm_create(&t, 3000, 4), 0);
    fixture_fill(&t, 3000, 4);
    for (uint32_t i = 0; i < 3000; i += 7)
        assert_int_equal(reg_proxy_find(&t, &t.proxies[i].addr), i);
    shm_destroy(&t);
}

/* Reclaiming host slots: only idle rows, the slot and its name are reusable afterwards, a
 * worker holding the old generation notices, and lookups survive many reclaim cycles. */
static void test_host_reclaim(void **state)
{
    (void)state;
    shm_table t;
    assert_int_equal(shm_create(&t, 8, 4), 0);
    shm_proxy_addr a = addr("10.0.0.1:1080");
    assert_true(reg_proxy_add(&t, &a, 1, 0, 0, NULL) >= 0);
    uint32_t idx[4], e;
    const char *names[4] = {"a.example", "b.example", "c.example", "d.example"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(reg_host_get(&t, names[i], &idx[i]), 0);
    assert_int_equal(reg_host_get(&t, "e.example", &e), -ENOSPC);

    uint64_t now = 100000;
    atomic_store(&t.hosts[idx[0]].live_workers, 1u); /* a worker has a task of it */
    assert_int_equal(reg_host_reclaim(&t, idx[0], now), -EBUSY);
    atomic_store(&t.hosts[idx[0]].live_workers, 0u);
    atomic_store(&t.hosts[idx[0]].queued_workers, 2u);
    assert_int_equal(reg_host_reclaim(&t, idx[0], now), -EBUSY);
    atomic_store(&t.hosts[idx[0]].queued_workers, 0u);

    _Atomic uint64_t *rl = &shm_cell_at(&t, 0, idx[1])->rl;
    assert_true(rl_claim(rl, 1, now, NULL)); /* an attempt in flight */
    assert_int_equal(reg_host_reclaim(&t, idx[1], now), -EBUSY);
    assert_true(rl_release(rl, 1, now, 500)); /* next use due at now + 500 */
    assert_int_equal(reg_host_reclaim(&t, idx[1], now + 499), -EBUSY);
    atomic_store(&t.hosts[idx[1]].success, 7u);
    uint32_t gen = atomic_load(&t.hosts[idx[1]].gen);
    assert_int_equal(reg_host_reclaim(&t, idx[1], now + 500), 0);
    assert_string_equal(t.hosts[idx[1]].name, "");
    assert_int_equal(atomic_load(&t.hosts[idx[1]].success), 0);
    assert_int_equal(atomic_load(rl), 0);
    assert_int_equal(reg_host_find(&t, "b.example"), SHM_NONE);
    assert_false(reg_host_still(&t, idx[1], "b.example", gen));
    assert_int_equal(reg_host_reclaim(&t, idx[1], now + 500), -EBUSY); /* already free */
    /* the others are untouched and still found */
    assert_int_equal(reg_host_find(&t, "a.example"), idx[0]);
    assert_int_equal(reg_host_find(&t, "c.example"), idx[2]);
    assert_int_equal(reg_host_find(&t, "d.example"), idx[3]);

    assert_int_equal(reg_host_get(&t, "e.example", &e), 0);
    assert_int_equal(e, idx[1]); /* the freed slot */
    uint32_t g2 = atomic_load(&t.hosts[e].gen);
    assert_true(g2 != gen);
    assert_true(reg_host_still(&t, e, "e.example", g2));
    assert_false(reg_host_still(&t, e, "b.example", g2));
    assert_int_equal(reg_host_get(&t, "b.example", &e), -ENOSPC);
    shm_destroy(&t);
}

static void test_host_reclaim_cycles(void **state)
{
    (void)state;
    enum { H = 64 };
    shm_table t;
    assert_int_equal(shm_create(&t, 4, H), 0);
    char name[32];
    uint32_t idx, serial = 0;
    uint32_t live[H]; /* serial number of the host in each slot */
    for (uint32_t i = 0; i < H; i++) {
        snprintf(name, sizeof name, "h%u.example", serial);
        assert_int_equal(reg_host_get(&t, name, &idx), 0);
        live[idx] = serial++;
    }
    uint64_t x = 88172645463325252ULL;
    for (int round = 0; round < 300; round++) {
        for (int k = 0; k < H / 2; k++) { /* reclaim half the slots, at random */
            uint32_t s = (uint32_t)(rng_next(&x) % H);
            if (t.hosts[s].name[0])
                assert_int_equal(reg_host_reclaim(&t, s, 1000), 0);
        }
        for (uint32_t s = 0; s < H; s++) { /* every live host found, every freed one not */
            snprintf(name, sizeof name, "h%u.example", live[s]);
            assert_int_equal(reg_host_find(&t, name), t.hosts[s].name[0] ? s : SHM_NONE);
        }
        for (uint32_t s = 0; s < H; s++) { /* refill with new names */
            if (t.hosts[s].name[0])
                continue;
            snprintf(name, sizeof name, "h%u.example", serial);
            assert_int_equal(reg_host_get(&t, name, &idx), 0);
            live[idx] = serial++;
        }
        assert_true(atomic_load(&t.hdr->hash_tombs) <= H);
    }
    for (uint32_t s = 0; s < H; s++) {
        snprintf(name, sizeof name, "h%u.example", live[s]);
        assert_int_equal(reg_host_find(&t, name), s);
    }
    shm_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),      cmocka_unit_test(test_proxy_dedupe),
        cmocka_unit_test(test_dead_revive), cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_proxies_full), cmocka_unit_test(test_many),
        cmocka_unit_test(test_host_reclaim), cmocka_unit_test(test_host_reclaim_cycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
