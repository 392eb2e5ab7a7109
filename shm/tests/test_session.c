/* The sticky-session table: pin and move, per (name, host), idle expiry, the bound with reuse
 * of the least recently used expired entry, name limits, sharing across fork. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm/session.h"

#define TTL 1000

static void test_pin_and_move(void **state)
{
    (void)state;
    sess_table *s;
    assert_int_equal(sess_create(&s, 16), 0);
    uint32_t p = 0;
    assert_int_equal(sess_touch(s, "s1", 0, 100, TTL, &p), 0);
    assert_int_equal(p, SESS_NONE); /* new: unpinned */
    assert_int_equal(sess_repin(s, "s1", 0, SESS_NONE, 5, 110, TTL, &p), 1);
    assert_int_equal(p, 5);
    assert_int_equal(sess_touch(s, "s1", 0, 120, TTL, &p), 0);
    assert_int_equal(p, 5);
    /* a move from a proxy that is no longer the pin: another task already moved it */
    assert_int_equal(sess_repin(s, "s1", 0, 3, 7, 130, TTL, &p), 0);
    assert_int_equal(p, 5);
    assert_int_equal(sess_repin(s, "s1", 0, 5, 7, 140, TTL, &p), 1);
    assert_int_equal(p, 7);
    /* a second task that failed on 5 as well follows 7 instead of moving again */
    assert_int_equal(sess_repin(s, "s1", 0, 5, 9, 150, TTL, &p), 0);
    assert_int_equal(p, 7);
    /* other host, other name: their own pins */
    assert_int_equal(sess_touch(s, "s1", 1, 160, TTL, &p), 0);
    assert_int_equal(p, SESS_NONE);
    assert_int_equal(sess_touch(s, "s2", 0, 160, TTL, &p), 0);
    assert_int_equal(p, SESS_NONE);
    assert_int_equal(sess_count_live(s, 160, TTL), 3);
    sess_destroy(s);
}

static void test_expiry(void **state)
{
    (void)state;
    sess_table *s;
    assert_int_equal(sess_create(&s, 4), 0);
    uint32_t p;
    assert_int_equal(sess_repin(s, "a", 2, SESS_NONE, 11, 1000, TTL, &p), 1);
    assert_int_equal(sess_touch(s, "a", 2, 1000 + TTL, TTL, &p), 0); /* exactly ttl idle: alive */
    assert_int_equal(p, 11);
    assert_int_equal(sess_touch(s, "a", 2, 2000 + TTL + 1, TTL, &p), 0); /* idle longer: forgotten */
    assert_int_equal(p, SESS_NONE);
    assert_int_equal(sess_repin(s, "a", 2, 11, 12, 3002, TTL, &p), 1); /* a move after expiry pins too */
    assert_int_equal(p, 12);
    /* a shorter ttl (reloaded) applies to entries already there */
    assert_int_equal(sess_touch(s, "a", 2, 3102, 50, &p), 0);
    assert_int_equal(p, SESS_NONE);
    sess_destroy(s);
}

static void test_full(void **state)
{
    (void)state;
    sess_table *s;
    assert_int_equal(sess_create(&s, 2), 0);
    uint32_t p;
    assert_int_equal(sess_repin(s, "s1", 0, SESS_NONE, 1, 0, 100, &p), 1);
    assert_int_equal(sess_repin(s, "s2", 0, SESS_NONE, 2, 10, 100, &p), 1);
    assert_int_equal(sess_touch(s, "s3", 0, 20, 100, &p), -ENOSPC); /* both in use */
    assert_int_equal(sess_touch(s, "s1", 0, 20, 100, &p), 0);        /* existing ones still work */
    assert_int_equal(p, 1);
    /* t=121: s1 (last 20) expired, s2 (last 10) too; s2 is the least recently used */
    assert_int_equal(sess_repin(s, "s3", 0, SESS_NONE, 3, 121, 100, &p), 1);
    assert_int_equal(p, 3);
    assert_int_equal(sess_touch(s, "s1", 0, 121, 1000, &p), 0); /* s1 kept its entry */
    assert_int_equal(p, 1);
    assert_int_equal(sess_touch(s, "s2", 0, 122, 1000, &p), -ENOSPC); /* s2's went to s3 */
    assert_int_equal(sess_touch(s, "s3", 0, 122, 1000, &p), 0);
    assert_int_equal(p, 3);
    assert_int_equal(sess_count_live(s, 122, 1000), 2);
    assert_int_equal(sess_count_live(s, 1000000, 1000), 0);
    sess_destroy(s);
}

static void test_names(void **state)
{
    (void)state;
    sess_table *s;
    assert_int_equal(sess_create(&s, 4), 0);
    uint32_t p;
    char name[SESS_NAME_MAX + 1];
    memset(name, 'x', sizeof name);
    name[SESS_NAME_MAX - 1] = '\0'; /* 63 bytes: the longest */
    assert_int_equal(sess_repin(s, name, 0, SESS_NONE, 4, 1, TTL, &p), 1);
    assert_int_equal(sess_touch(s, name, 0, 2, TTL, &p), 0);
    assert_int_equal(p, 4);
    name[SESS_NAME_MAX - 1] = 'x';
    name[SESS_NAME_MAX] = '\0'; /* 64 */
    assert_int_equal(sess_touch(s, name, 0, 3, TTL, &p), -EINVAL);
    assert_int_equal(sess_touch(s, "", 0, 3, TTL, &p), -EINVAL);
    assert_int_equal(sess_create(&s, 0), -EINVAL);
    assert_int_equal(sess_create(&s, SESS_MAX_ENTRIES + 1), -EINVAL);
    sess_destroy(NULL);
}

/* Many sessions over few buckets' worth of hashes: every chain keeps every entry, also after
 * expired entries in the middle of chains were reused. */
static void test_many(void **state)
{
    (void)state;
    enum { N = 1000 };
    sess_table *s;
    assert_int_equal(sess_create(&s, N), 0);
    assert_int_equal(sess_capacity(s), N);
    uint32_t p;
    char name[32];
    for (uint32_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "n%u", i);
        assert_int_equal(sess_repin(s, name, i % 3, SESS_NONE, i, i, 10 * N, &p), 1);
    }
    snprintf(name, sizeof name, "extra");
    assert_int_equal(sess_touch(s, name, 0, N, 10 * N, &p), -ENOSPC);
    /* at 10N + 100 with ttl 10N, n0..n99 expired: 100 new sessions reuse them oldest first */
    for (uint32_t i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "m%u", i);
        assert_int_equal(sess_repin(s, name, 7, SESS_NONE, 5000 + i, 10 * N + 100, 10 * N, &p), 1);
        assert_int_equal(p, 5000 + i);
    }
    for (uint32_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "n%u", i);
        int rc = sess_touch(s, name, i % 3, 10 * N + 100, 100 * N, &p);
        if (i < 100) {
            assert_int_equal(rc, -ENOSPC); /* gone, and nothing else is expired under this ttl */
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(p, i);
        }
    }
    for (uint32_t i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "m%u", i);
        assert_int_equal(sess_touch(s, name, 7, 10 * N + 101, 100 * N, &p), 0);
        assert_int_equal(p, 5000 + i);
    }
    sess_destroy(s);
}

/* The mapping is made before fork: a pin set in one process is the pin in another. */
static void test_across_fork(void **state)
{
    (void)state;
    sess_table *s;
    assert_int_equal(sess_create(&s, 8), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint32_t p;
        int ok = sess_repin(s, "shared", 3, SESS_NONE, 42, 10, TTL, &p) == 1 && p == 42;
        _exit(ok ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    uint32_t p;
    assert_int_equal(sess_touch(s, "shared", 3, 20, TTL, &p), 0);
    assert_int_equal(p, 42);
    sess_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pin_and_move), cmocka_unit_test(test_expiry), cmocka_unit_test(test_full),
        cmocka_unit_test(test_names),        cmocka_unit_test(test_many),   cmocka_unit_test(test_across_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
