/* The robust registry lock: a process that dies holding it must not wedge the others, and an
 * add that died half way must not let a key be registered twice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static void die_holding_lock(shm_table *t, int half_add)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (shm_lock(t) != 0)
            _exit(2);
        if (half_add) {
            /* Publish a host slot but die before indexing it. */
            uint32_t n = atomic_load(&t->hdr->n_hosts);
            memcpy(t->hosts[n].name, "half.example", sizeof("half.example"));
            atomic_store(&t->hdr->n_hosts, n + 1);
        }
        _exit(0); /* no unlock */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_owner_died(void **state)
{
    (void)state;
    shm_table t;
    assert_int_equal(shm_create(&t, 8, 4), 0);
    fixture_fill(&t, 2, 1);
    die_holding_lock(&t, 0);
    assert_int_equal(shm_lock(&t), 0); /* EOWNERDEAD recovered */
    shm_unlock(&t);
    assert_int_equal(shm_lock(&t), 0); /* and consistent afterwards, not ENOTRECOVERABLE */
    shm_unlock(&t);
    /* The registry still works. */
    shm_proxy_addr a;
    uint32_t idx;
    assert_int_equal(paddr_parse("9.9.9.9:99", 10, &a), PADDR_OK);
    assert_int_equal(reg_proxy_add(&t, &a, 1, 0, 5, &idx), 1);
    assert_int_equal(idx, 2);
    assert_int_equal(reg_proxy_find(&t, &a), 2);
    assert_int_equal(reg_host_get(&t, "after.example", &idx), 0);
    assert_int_equal(idx, 1);
    assert_int_equal(reg_host_find(&t, "host0.example"), 0);
    shm_destroy(&t);
}

static void test_half_add_repaired(void **state)
{
    (void)state;
    shm_table t;
    uint32_t idx;
    assert_int_equal(shm_create(&t, 4, 4), 0);
    fixture_fill(&t, 1, 1);
    die_holding_lock(&t, 1);
    assert_int_equal(atomic_load(&t.hdr->n_hosts), 2);
    assert_int_equal(reg_host_find(&t, "half.example"), SHM_NONE); /* not indexed yet */
    /* The next lock re-indexes the published slot, so the key is found, not added again. */
    assert_int_equal(reg_host_get(&t, "half.example", &idx), 0);
    assert_int_equal(idx, 1);
    assert_int_equal(atomic_load(&t.hdr->n_hosts), 2);
    assert_int_equal(reg_host_find(&t, "half.example"), 1);
    shm_destroy(&t);
}

static void test_lock_across_processes(void **state)
{
    (void)state;
    shm_table t;
    assert_int_equal(shm_create(&t, 400, 2), 0);
    /* Two processes add overlapping proxy sets: dedupe must hold across them. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    uint32_t from = pid == 0 ? 0 : 100;
    for (uint32_t i = from; i < from + 200; i++) {
        char line[32];
        shm_proxy_addr a;
        int n = snprintf(line, sizeof(line), "8.8.%u.%u:1", i / 200, i % 200 + 1);
        if (paddr_parse(line, (size_t)n, &a) != PADDR_OK || reg_proxy_add(&t, &a, 1, 0, 1, NULL) < 0)
            _exit(3);
    }
    if (pid == 0)
        _exit(0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(atomic_load(&t.hdr->n_proxies), 300);
    shm_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owner_died),
        cmocka_unit_test(test_half_add_repaired),
        cmocka_unit_test(test_lock_across_processes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
