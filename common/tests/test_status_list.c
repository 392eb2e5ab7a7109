#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "common/status_list.h"

#define SZ (STATUS_LIST_MAX + 1)

static int count(const uint8_t *t, uint8_t mark)
{
    int n = 0;
    for (int i = 0; i < SZ; i++)
        n += t[i] == mark;
    return n;
}

static void statuses_classes_ranges(void **s)
{
    (void)s;
    uint8_t t[SZ];
    memset(t, 0, sizeof t);
    assert_int_equal(status_list_parse("2xx,304, 400-404 5XX", t, 7), 0);
    assert_int_equal(count(t, 7), 100 + 1 + 5 + 100);
    assert_int_equal(t[200], 7);
    assert_int_equal(t[299], 7);
    assert_int_equal(t[300], 0);
    assert_int_equal(t[304], 7);
    assert_int_equal(t[399], 0);
    assert_int_equal(t[404], 7);
    assert_int_equal(t[405], 0);
    assert_int_equal(t[599], 7);
    /* a later list over the same table wins where they overlap */
    assert_int_equal(status_list_parse("200", t, 9), 0);
    assert_int_equal(t[200], 9);
    assert_int_equal(t[201], 7);
    /* empty lists and lone separators name nothing */
    assert_int_equal(status_list_parse("", t, 1), 0);
    assert_int_equal(status_list_parse(" , ,", t, 1), 0);
    assert_int_equal(count(t, 1), 0);
    assert_int_equal(status_list_parse("100,599,1xx", NULL, 0), 0);
}

static void bad_lists_refused(void **s)
{
    (void)s;
    const char *bad[] = {"0xx", "6xx", "axx", "99", "600", "abc", "200-", "-200", "300-200", "200-600",
                         "200x", "2x", "2xxx", "404;", "200-300-400", "200- 300", "4o4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t t[SZ];
        memset(t, 0, sizeof t);
        if (status_list_parse(bad[i], t, 1) != -EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(count(t, 1), 0);
        if (status_list_parse(bad[i], NULL, 0) != -EINVAL)
            fail_msg("'%s' was accepted without a table", bad[i]);
    }
    /* one bad token spoils the list, wherever it stands */
    assert_int_equal(status_list_parse("200,nope,404", NULL, 0), -EINVAL);
    assert_int_equal(status_list_parse("2xx,700", NULL, 0), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(statuses_classes_ranges),
        cmocka_unit_test(bad_lists_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
