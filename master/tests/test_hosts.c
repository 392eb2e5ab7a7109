/*
 * hosts.c: the master is the one writer of shm_host.interval_ms (interval plus margin), for
 * configured hosts at (re)load and for hosts a worker registered since.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "master/master.h"
#include "shm/registry.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    master_ctx m;
    scatter_config cfg;
} env;

static int setup(void **state)
{
    env *e = calloc(1, sizeof *e);
    cfg_defaults(&e->cfg);
    e->cfg.defaults.interval_ms = 1000;
    e->cfg.rate_limit_margin_ms = 5;
    e->cfg.hosts[0] = e->cfg.defaults;
    snprintf(e->cfg.hosts[0].name, sizeof e->cfg.hosts[0].name, "slow.example");
    e->cfg.hosts[0].interval_ms = 7000;
    e->cfg.n_hosts = 1;
    e->m.cfg = &e->cfg;
    assert_int_equal(shm_create(&e->m.tbl, 16, 8), 0);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    shm_destroy(&e->m.tbl);
    free(e);
    return 0;
}

static uint32_t interval_of(env *e, const char *name)
{
    uint32_t idx = reg_host_find(&e->m.tbl, name);
    assert_int_not_equal(idx, SHM_NONE);
    return atomic_load(&e->m.tbl.hosts[idx].interval_ms);
}

static void configured_hosts_at_load(void **state)
{
    env *e = *state;
    char err[256];
    assert_int_equal(hosts_apply_config(&e->m, err, sizeof err), 0);
    assert_int_equal(interval_of(e, "slow.example"), 7005);
}

static void worker_registered_hosts_filled_by_the_master(void **state)
{
    env *e = *state;
    char err[256];
    assert_int_equal(hosts_apply_config(&e->m, err, sizeof err), 0);
    /* a worker registers a host after the load: it writes nothing but the name */
    uint32_t idx;
    assert_int_equal(reg_host_get(&e->m.tbl, "new.example", &idx), 0);
    assert_int_equal(interval_of(e, "new.example"), 0);
    hosts_publish_intervals(&e->m);
    assert_int_equal(interval_of(e, "new.example"), 1005);
    assert_int_equal(interval_of(e, "slow.example"), 7005);
    /* a reload that changes the margin reaches both */
    e->cfg.rate_limit_margin_ms = 50;
    hosts_publish_intervals(&e->m);
    assert_int_equal(interval_of(e, "new.example"), 1050);
    assert_int_equal(interval_of(e, "slow.example"), 7050);
    /* a reclaimed (free) slot is left at 0 */
    assert_int_equal(reg_host_reclaim(&e->m.tbl, idx, 0), 0);
    hosts_publish_intervals(&e->m);
    assert_int_equal(atomic_load(&e->m.tbl.hosts[idx].interval_ms), 0);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test_setup_teardown(configured_hosts_at_load, setup, teardown),
        cmocka_unit_test_setup_teardown(worker_registered_hosts_filled_by_the_master, setup, teardown),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
