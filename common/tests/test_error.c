#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include "common/error.h"

static void codes_round_trip(void **s)
{
    (void)s;
    for (int i = 0; i < ERR_COUNT; i++) {
        const char *c = err_code((scatter_err)i);
        assert_int_equal(err_from_code(c, (unsigned)strlen(c)), i);
        assert_true(strlen(err_text((scatter_err)i)) > 3);
    }
    assert_string_equal(err_code(ERR_POOL_FULL), "pool_full");
    assert_int_equal(err_from_code("nope", 4), ERR_COUNT);
    assert_string_equal(err_code((scatter_err)999), "internal");
}

int main(void)
{
    const struct CMUnitTest t[] = {cmocka_unit_test(codes_round_trip)};
    return cmocka_run_group_tests(t, NULL, NULL);
}
