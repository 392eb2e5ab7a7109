#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "common/buf.h"

static void fits_already(void **s)
{
    (void)s;
    assert_int_equal(buf_next_cap(100, 100, 16, 1000), 100);
    assert_int_equal(buf_next_cap(100, 0, 16, 1000), 100);
    assert_int_equal(buf_next_cap(0, 0, 16, 1000), 0);
}

static void doubles_from_first_or_cap(void **s)
{
    (void)s;
    assert_int_equal(buf_next_cap(0, 1, 16, 1000), 16);
    assert_int_equal(buf_next_cap(0, 17, 16, 1000), 32);
    assert_int_equal(buf_next_cap(16, 17, 4096, 1000), 32);   /* from cap, not first */
    assert_int_equal(buf_next_cap(16, 100, 4096, 1000), 128); /* several doublings */
    assert_int_equal(buf_next_cap(0, 5, 0, 1000), 8);          /* no first: from 1 */
}

static void bounded_by_max(void **s)
{
    (void)s;
    /* the doubling would pass max: max it is */
    assert_int_equal(buf_next_cap(512, 600, 16, 1000), 1000);
    assert_int_equal(buf_next_cap(0, 70000, 65536, 100000), 100000);
    /* need over max: max, which the caller sees is below need */
    assert_int_equal(buf_next_cap(0, 2000, 16, 1000), 1000);
    /* full at max: no growth, the caller sees the same capacity */
    assert_int_equal(buf_next_cap(1000, 1001, 16, 1000), 1000);
    /* a max below the current capacity never shrinks it */
    assert_int_equal(buf_next_cap(1000, 1001, 16, 500), 1000);
    /* the first capacity is cut to max too */
    assert_int_equal(buf_next_cap(0, 10, 4096, 100), 100);
}

static void no_overflow_near_size_max(void **s)
{
    (void)s;
    size_t big = SIZE_MAX / 2 + 1;
    assert_int_equal(buf_next_cap(big, big + 1, 16, SIZE_MAX), SIZE_MAX);
    assert_int_equal(buf_next_cap(big / 2, big, 16, SIZE_MAX), big);
}

static void grow_keeps_content_and_bound(void **s)
{
    (void)s;
    char *b = NULL;
    size_t cap = 0;
    assert_int_equal(buf_grow(&b, &cap, 10, 4096), 0);
    assert_int_equal(cap, 1024);
    memcpy(b, "scatter", 8);
    assert_int_equal(buf_grow(&b, &cap, 1500, 4096), 0);
    assert_int_equal(cap, 2048);
    assert_string_equal(b, "scatter");
    assert_int_equal(buf_grow(&b, &cap, 2048, 4096), 0); /* fits: unchanged */
    assert_int_equal(cap, 2048);
    assert_int_equal(buf_grow(&b, &cap, 4097, 4096), -1); /* over max: refused, kept */
    assert_int_equal(cap, 2048);
    assert_string_equal(b, "scatter");
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grow_keeps_content_and_bound),
        cmocka_unit_test(fits_already),
        cmocka_unit_test(doubles_from_first_or_cap),
        cmocka_unit_test(bounded_by_max),
        cmocka_unit_test(no_overflow_near_size_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
