#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>
#include "common/rng.h"
#include "worker/idmap.h"
#include "worker/task.h"

/* Random inserts and deletes checked against a plain array: every live id is found, every
 * deleted one is not, whatever the collisions and wrap-arounds. */
static void matches_a_reference(void **s)
{
    (void)s;
    enum { N = 3000 };
    task *ts = calloc(N, sizeof *ts);
    int *live = calloc(N, sizeof *live);
    idmap m = {0};
    uint64_t x = 42;
    for (int round = 0; round < 20000; round++) {
        int i = (int)(rng_next(&x) % N);
        ts[i].id = (uint64_t)i * 0x100000000ULL + 7; /* large, clustered ids like the client's */
        if (live[i]) {
            idmap_del(&m, ts[i].id);
            live[i] = 0;
        } else {
            assert_int_equal(idmap_put(&m, &ts[i]), 0);
            live[i] = 1;
        }
        if (round % 997 == 0)
            for (int j = 0; j < N; j++)
                assert_ptr_equal(idmap_get(&m, (uint64_t)j * 0x100000000ULL + 7), live[j] ? &ts[j] : NULL);
    }
    uint32_t n = 0;
    for (int j = 0; j < N; j++)
        n += live[j];
    assert_int_equal(m.n, n);
    idmap_del(&m, 999999999); /* absent: no effect */
    assert_int_equal(m.n, n);
    idmap_free(&m);
    free(ts);
    free(live);
}

int main(void)
{
    const struct CMUnitTest t[] = {cmocka_unit_test(matches_a_reference)};
    return cmocka_run_group_tests(t, NULL, NULL);
}
