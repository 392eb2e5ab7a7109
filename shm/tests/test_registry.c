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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),      cmocka_unit_test(test_proxy_dedupe),
        cmocka_unit_test(test_dead_revive), cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_proxies_full), cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
