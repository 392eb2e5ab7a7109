#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <curl/curl.h>
#include "worker/classify.h"

/* cls_classify for a GET, reason ignored */
static health_outcome get(const classifier *cl, long status, const char *body, size_t len)
{
    return cls_classify(cl, status, 0, body, len, NULL);
}

static void default_rules(void **s)
{
    (void)s;
    scatter_config *c = malloc(sizeof *c);
    cfg_defaults(c);
    assert_int_equal(c->defaults.strict_status, 0);
    classifier cl;
    char err[128];
    assert_int_equal(cls_compile(&cl, &c->defaults, err, sizeof err), 0);
    assert_int_equal(get(&cl, 200, "x", 1), OUTCOME_SUCCESS);
    assert_int_equal(get(&cl, 200, "", 0), OUTCOME_BLOCKED); /* empty body */
    assert_int_equal(get(&cl, 403, "x", 1), OUTCOME_BLOCKED);
    assert_int_equal(get(&cl, 429, "x", 1), OUTCOME_BLOCKED);
    assert_int_equal(get(&cl, 503, "x", 1), OUTCOME_TARGET_ERROR);
    assert_int_equal(get(&cl, 500, "", 0), OUTCOME_TARGET_ERROR);
    assert_int_equal(get(&cl, 99, "x", 1), OUTCOME_BLOCKED);
    assert_int_equal(get(&cl, 700, "x", 1), OUTCOME_BLOCKED);
    free(c);
}

/* A 404, a 301, a 304: the target's answer through a working proxy is the task's result, and
 * an empty body is fine for them. */
static void unlisted_status_is_the_result(void **s)
{
    (void)s;
    scatter_config *c = malloc(sizeof *c);
    cfg_defaults(c);
    classifier cl;
    char err[128];
    assert_int_equal(cls_compile(&cl, &c->defaults, err, sizeof err), 0);
    assert_int_equal(get(&cl, 404, "no such page", 12), OUTCOME_SUCCESS);
    assert_int_equal(get(&cl, 404, "", 0), OUTCOME_SUCCESS);
    assert_int_equal(get(&cl, 301, "", 0), OUTCOME_SUCCESS);
    assert_int_equal(get(&cl, 302, "x", 1), OUTCOME_SUCCESS);
    assert_int_equal(get(&cl, 304, "", 0), OUTCOME_SUCCESS);
    assert_int_equal(get(&cl, 410, "gone", 4), OUTCOME_SUCCESS);
    assert_int_equal(get(&cl, 418, "", 0), OUTCOME_SUCCESS);
    /* the listed ones keep their meaning */
    assert_int_equal(get(&cl, 403, "x", 1), OUTCOME_BLOCKED);
    assert_int_equal(get(&cl, 502, "x", 1), OUTCOME_TARGET_ERROR);
    /* a body marker is a block whatever the status */
    strcpy(c->defaults.blocked_body, "captcha");
    assert_int_equal(cls_compile(&cl, &c->defaults, err, sizeof err), 0);
    const char page[] = "solve this captcha";
    const char *why = NULL;
    assert_int_equal(cls_classify(&cl, 404, 0, page, sizeof page - 1, &why), OUTCOME_BLOCKED);
    assert_string_equal(why, "body matches blocked_body");
    assert_int_equal(get(&cl, 404, "nope", 4), OUTCOME_SUCCESS);
    free(c);
}

static void strict_status(void **s)
{
    (void)s;
    scatter_config *c = malloc(sizeof *c);
    cfg_defaults(c);
    c->defaults.strict_status = 1;
    classifier cl;
    char err[128];
    assert_int_equal(cls_compile(&cl, &c->defaults, err, sizeof err), 0);
    const char *why = NULL;
    assert_int_equal(cls_classify(&cl, 404, 0, "x", 1, &why), OUTCOME_BLOCKED);
    assert_string_equal(why, "status in no list, strict_status");
    assert_int_equal(get(&cl, 302, "x", 1), OUTCOME_BLOCKED);
    assert_int_equal(get(&cl, 304, "", 0), OUTCOME_BLOCKED);
    assert_int_equal(get(&cl, 200, "x", 1), OUTCOME_SUCCESS);
    assert_int_equal(get(&cl, 503, "x", 1), OUTCOME_TARGET_ERROR);
    /* a listed status stays a success under strict_status, 304 without a body */
    strcpy(c->defaults.success_status, "2xx,304");
    assert_int_equal(cls_compile(&cl, &c->defaults, err, sizeof err), 0);
    assert_int_equal(get(&cl, 304, "", 0), OUTCOME_SUCCESS);
    assert_int_equal(get(&cl, 404, "x", 1), OUTCOME_BLOCKED);
    free(c);
}

/* HEAD, 204 and 304 have no body by definition: min_body_size does not apply to them. */
static void bodiless_answers(void **s)
{
    (void)s;
    scatter_config *c = malloc(sizeof *c);
    cfg_defaults(c);
    c->defaults.min_body_size = 100;
    strcpy(c->defaults.success_status, "2xx,304");
    classifier cl;
    char err[128];
    assert_int_equal(cls_compile(&cl, &c->defaults, err, sizeof err), 0);
    const char *why = NULL;
    assert_int_equal(cls_classify(&cl, 200, 1, "", 0, &why), OUTCOME_SUCCESS); /* HEAD */
    assert_int_equal(cls_classify(&cl, 200, 1, NULL, 0, &why), OUTCOME_SUCCESS);
    assert_int_equal(cls_classify(&cl, 204, 0, "", 0, &why), OUTCOME_SUCCESS);
    assert_int_equal(cls_classify(&cl, 304, 0, "", 0, &why), OUTCOME_SUCCESS);
    assert_int_equal(cls_classify(&cl, 200, 0, "short", 5, &why), OUTCOME_BLOCKED);
    assert_string_equal(why, "body shorter than min_body_size");
    /* a HEAD still learns a block from its status */
    assert_int_equal(cls_classify(&cl, 403, 1, "", 0, &why), OUTCOME_BLOCKED);
    assert_string_equal(why, "blocked_status");
    assert_int_equal(cls_classify(&cl, 503, 1, "", 0, &why), OUTCOME_TARGET_ERROR);
    assert_string_equal(why, "target_error_status");
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
    assert_int_equal(get(&cl, 404, "0123456789", 10), OUTCOME_SUCCESS);
    assert_int_equal(get(&cl, 404, "short", 5), OUTCOME_BLOCKED); /* listed: min_body applies */
    assert_int_equal(get(&cl, 503, "0123456789", 10), OUTCOME_BLOCKED); /* later list wins */
    assert_int_equal(get(&cl, 500, "0123456789", 10), OUTCOME_TARGET_ERROR);
    assert_int_equal(get(&cl, 200, "short", 5), OUTCOME_BLOCKED);
    const char page[] = "<html>please solve this captcha to go on</html>";
    assert_int_equal(get(&cl, 200, page, sizeof page - 1), OUTCOME_BLOCKED);
    const char denied[] = "xxxxxxxxxx Access denied";
    assert_int_equal(get(&cl, 200, denied, sizeof denied - 1), OUTCOME_BLOCKED);
    const char item[] = "item 42 of the catalogue";
    assert_int_equal(get(&cl, 200, item, sizeof item - 1), OUTCOME_SUCCESS);
    strcpy(h.success_status, "2xx,abc");
    assert_int_equal(cls_compile(&cl, &h, err, sizeof err), -1);
    free(c);
}

/* SOCKS5 replies about the target or the route to it are not the proxy's failure. */
static void socks_replies(void **s)
{
    (void)s;
    assert_int_equal(cls_proxy_reply(CURLPX_REPLY_NETWORK_UNREACHABLE), OUTCOME_TARGET_UNREACHABLE); /* 0x03 */
    assert_int_equal(cls_proxy_reply(CURLPX_REPLY_HOST_UNREACHABLE), OUTCOME_TARGET_UNREACHABLE);    /* 0x04 */
    assert_int_equal(cls_proxy_reply(CURLPX_REPLY_CONNECTION_REFUSED), OUTCOME_TARGET_UNREACHABLE);  /* 0x05 */
    assert_int_equal(cls_proxy_reply(CURLPX_REPLY_ADDRESS_TYPE_NOT_SUPPORTED), OUTCOME_TARGET_UNREACHABLE); /* 0x08 */
    assert_int_equal(cls_proxy_reply(CURLPX_REPLY_GENERAL_SERVER_FAILURE), OUTCOME_PROXY_DOWN);       /* 0x01 */
    assert_int_equal(cls_proxy_reply(CURLPX_REPLY_NOT_ALLOWED), OUTCOME_PROXY_DOWN);                  /* 0x02 */
    assert_int_equal(cls_proxy_reply(CURLPX_REPLY_TTL_EXPIRED), OUTCOME_PROXY_DOWN);                  /* 0x06 */
    assert_int_equal(cls_proxy_reply(CURLPX_REPLY_COMMAND_NOT_SUPPORTED), OUTCOME_PROXY_DOWN);        /* 0x07 */
    assert_int_equal(cls_proxy_reply(CURLPX_CLOSED), OUTCOME_PROXY_DOWN);
    assert_int_equal(cls_proxy_reply(CURLPX_RECV_CONNECT), OUTCOME_PROXY_DOWN);
    assert_int_equal(cls_proxy_reply(CURLPX_OK), OUTCOME_PROXY_DOWN);
}

/* Which outcomes count toward max_attempts: the target's answers, not a proxy's faults. */
static void target_answered(void **s)
{
    (void)s;
    scatter_config *c = malloc(sizeof *c);
    cfg_defaults(c);
    snprintf(c->defaults.blocked_body, sizeof c->defaults.blocked_body, "captcha");
    classifier cl;
    char err[128];
    assert_int_equal(cls_compile(&cl, &c->defaults, err, sizeof err), 0);
    const char *why = NULL;
    health_outcome o = cls_classify(&cl, 200, 0, "", 0, &why); /* a cut response reads empty */
    assert_int_equal(o, OUTCOME_BLOCKED);
    assert_ptr_equal(why, CLS_WHY_SHORT_BODY);
    assert_false(cls_target_answered(o, why));
    o = cls_classify(&cl, 403, 0, "x", 1, &why);
    assert_true(cls_target_answered(o, why));
    o = cls_classify(&cl, 200, 0, "a captcha page", 14, &why);
    assert_int_equal(o, OUTCOME_BLOCKED);
    assert_true(cls_target_answered(o, why));
    o = cls_classify(&cl, 503, 0, "x", 1, &why);
    assert_true(cls_target_answered(o, why));
    assert_true(cls_target_answered(OUTCOME_TARGET_UNREACHABLE, ""));
    assert_false(cls_target_answered(OUTCOME_PROXY_DOWN, ""));
    assert_false(cls_target_answered(OUTCOME_PROXY_UNREACHABLE, ""));
    assert_false(cls_target_answered(OUTCOME_CANCELLED, ""));
    assert_false(cls_target_answered(OUTCOME_SUCCESS, ""));
    free(c);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(default_rules), cmocka_unit_test(unlisted_status_is_the_result),
        cmocka_unit_test(strict_status), cmocka_unit_test(bodiless_answers),
        cmocka_unit_test(host_rules),    cmocka_unit_test(socks_replies),
        cmocka_unit_test(target_answered),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
