#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "worker/classify.h"

static void default_rules(void **s)
{
    (void)s;
    scatter_config *c = malloc(sizeof *c);
    cfg_defaults(c);
    classifier cl;
    char err[128];
    assert_int_equal(cls_compile(&cl, &c->defaults, err, sizeof err), 0);
    assert_int_equal(cls_classify(&cl, 200, "x", 1), OUTCOME_SUCCESS);
    assert_int_equal(cls_classify(&cl, 200, "", 0), OUTCOME_BLOCKED); /* empty body */
    assert_int_equal(cls_classify(&cl, 403, "x", 1), OUTCOME_BLOCKED);
    assert_int_equal(cls_classify(&cl, 429, "x", 1), OUTCOME_BLOCKED);
    assert_int_equal(cls_classify(&cl, 503, "x", 1), OUTCOME_TARGET_ERROR);
    assert_int_equal(cls_classify(&cl, 404, "x", 1), OUTCOME_BLOCKED);
    assert_int_equal(cls_classify(&cl, 302, "x", 1), OUTCOME_BLOCKED);
    assert_int_equal(cls_classify(&cl, 99, "x", 1), OUTCOME_BLOCKED);
    assert_int_equal(cls_classify(&cl, 700, "x", 1), OUTCOME_BLOCKED);
    free(c);
}

static void host_rules(void **s)
{
    (void)s;
    scatter_config *c = malloc(sizeof *c);
    cfg_defaults(c);
    cfg_host h = c->defaults;
    strcpy(h.success_status, "2xx,404");
    strcpy(h.blocked_status, "403,429,503");
    strcpy(h.target_error_status, "5xx");
    strcpy(h.blocked_body, "captcha|Access denied");
    h.min_body_size = 10;
    classifier cl;
    char err[128];
    assert_int_equal(cls_compile(&cl, &h, err, sizeof err), 0);
    assert_int_equal(cls_classify(&cl, 404, "0123456789", 10), OUTCOME_SUCCESS);
    assert_int_equal(cls_classify(&cl, 503, "0123456789", 10), OUTCOME_BLOCKED); /* later list wins */
    assert_int_equal(cls_classify(&cl, 500, "0123456789", 10), OUTCOME_TARGET_ERROR);
    assert_int_equal(cls_classify(&cl, 200, "short", 5), OUTCOME_BLOCKED);
    const char page[] = "<html>please solve this captcha to go on</html>";
    assert_int_equal(cls_classify(&cl, 200, page, sizeof page - 1), OUTCOME_BLOCKED);
    const char denied[] = "xxxxxxxxxx Access denied";
    assert_int_equal(cls_classify(&cl, 200, denied, sizeof denied - 1), OUTCOME_BLOCKED);
    const char item[] = "item 42 of the catalogue";
    assert_int_equal(cls_classify(&cl, 200, item, sizeof item - 1), OUTCOME_SUCCESS);
    strcpy(h.success_status, "2xx,abc");
    assert_int_equal(cls_compile(&cl, &h, err, sizeof err), -1);
    free(c);
}

int main(void)
{
    const struct CMUnitTest t[] = {cmocka_unit_test(default_rules), cmocka_unit_test(host_rules)};
    return cmocka_run_group_tests(t, NULL, NULL);
}
