/* Helpers shared by the shm unit tests (header-only so each test stays one program). */
#ifndef SCATTER_SHM_TESTS_COMMON_H
#define SCATTER_SHM_TESTS_COMMON_H

#include <stdio.h>
#include <string.h>

#include "shm/proxy_addr.h"
#include "shm/registry.h"
#include "shm/table.h"

/* Adds n proxies 10.0.x.y:1080 and the given hosts (interval 1000 ms); returns nothing, the
 * test fails through cmocka on any error. */
static inline void fixture_fill(shm_table *t, uint32_t n_proxies, uint32_t n_hosts)
{
    for (uint32_t i = 0; i < n_proxies; i++) {
        char line[64];
        shm_proxy_addr a;
        uint32_t idx;
        snprintf(line, sizeof(line), "5.6.%u.%u:1080", i / 250, 1 + i % 250);
        assert_int_equal(paddr_parse(line, strlen(line), &a), PADDR_OK);
        assert_int_equal(reg_proxy_add(t, &a, 1, 0, 1, &idx), 1);
        assert_int_equal(idx, i);
    }
    for (uint32_t h = 0; h < n_hosts; h++) {
        char name[32];
        uint32_t idx;
        snprintf(name, sizeof(name), "host%u.example", h);
        assert_int_equal(reg_host_get(t, name, &idx), 0);
        assert_int_equal(idx, h);
        atomic_store(&t->hosts[idx].interval_ms, 1000);
    }
}

#endif
