/* fetch's task settings: -H and header files, body files, JSON lines and the merge rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/fetch_request.h"

static char *write_tmp(const char *text, size_t n)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/sc_fetch_request_%d.txt", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    fclose(f);
    return path;
}

static void header_text(void **s)
{
    (void)s;
    fetch_spec sp = {0};
    char err[256];
    const char *h = "X-A:   spaced value \t";
    assert_int_equal(fr_add_header(&sp, h, strlen(h), err, sizeof err), 0);
    assert_string_equal(sp.hdr[0].name, "X-A");
    assert_string_equal(sp.hdr[0].value, "spaced value");
    assert_int_equal(fr_add_header(&sp, "X-Empty:", 8, err, sizeof err), 0);
    assert_string_equal(sp.hdr[1].value, "");
    assert_int_equal(fr_add_header(&sp, "novalue", 7, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "Name: value"));
    assert_int_equal(fr_add_header(&sp, ": v", 3, err, sizeof err), -EINVAL);
    assert_int_equal(fr_add_header(&sp, "Bad Name: v", 11, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "Bad Name"));
    assert_int_equal(fr_add_header(&sp, "X: a\rb", 6, err, sizeof err), -EINVAL);
    assert_int_equal(sp.nh, 2);
    while (sp.nh < PROTO_MAX_HEADERS)
        assert_int_equal(fr_add_header(&sp, "X-Many: 1", 9, err, sizeof err), 0);
    assert_int_equal(fr_add_header(&sp, "X-One-Too-Many: 1", 17, err, sizeof err), -E2BIG);
    fr_spec_free(&sp);
}

static void header_file(void **s)
{
    (void)s;
    fetch_spec sp = {0};
    char err[512];
    const char *good = "# auth for the API\n\nAuthorization: Bearer abc\r\n   # indented comment\nAccept: */*\nX-Last: 1";
    char *path = write_tmp(good, strlen(good));
    assert_int_equal(fr_header_file(&sp, path, err, sizeof err), 0);
    assert_int_equal(sp.nh, 3);
    assert_string_equal(sp.hdr[0].name, "Authorization");
    assert_string_equal(sp.hdr[0].value, "Bearer abc"); /* the CR of a CRLF file is not part of it */
    assert_string_equal(sp.hdr[1].value, "*/*");
    assert_string_equal(sp.hdr[2].name, "X-Last");
    fr_spec_free(&sp);

    const char *bad = "Accept: */*\n\nno colon here\n";
    path = write_tmp(bad, strlen(bad));
    assert_int_equal(fr_header_file(&sp, path, err, sizeof err), -EINVAL);
    char want[128];
    snprintf(want, sizeof want, "%s:3: expected 'Name: value'", path);
    assert_string_equal(err, want);
    fr_spec_free(&sp);

    const char *folded = "X-A: 1\n continued\n";
    path = write_tmp(folded, strlen(folded));
    assert_int_equal(fr_header_file(&sp, path, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":2: starts with a blank"));
    fr_spec_free(&sp);

    char *huge = malloc(FR_HEADER_LINE_MAX + 64);
    memcpy(huge, "X-Big: ", 7);
    memset(huge + 7, 'a', FR_HEADER_LINE_MAX + 10);
    path = write_tmp(huge, FR_HEADER_LINE_MAX + 17);
    free(huge);
    assert_int_equal(fr_header_file(&sp, path, err, sizeof err), -E2BIG);
    assert_non_null(strstr(err, ":1: line longer than"));
    fr_spec_free(&sp);
    unlink(path);

    assert_true(fr_header_file(&sp, "/nonexistent/h.txt", err, sizeof err) == -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/h.txt"));
}

static void body_file(void **s)
{
    (void)s;
    fetch_spec sp = {0};
    char err[512];
    char *path = write_tmp("a\0b\n", 4);
    assert_int_equal(fr_body_file(&sp, path, 4, err, sizeof err), 0);
    assert_true(sp.has_body);
    assert_int_equal(sp.body_len, 4);
    assert_memory_equal(sp.body, "a\0b\n", 4);
    fr_spec_free(&sp);
    assert_int_equal(fr_body_file(&sp, path, 3, err, sizeof err), -EMSGSIZE);
    assert_non_null(strstr(err, "larger than 3 bytes"));
    assert_false(sp.has_body);
    path = write_tmp("", 0);
    assert_int_equal(fr_body_file(&sp, path, 10, err, sizeof err), 0);
    assert_true(sp.has_body); /* an empty file is an empty body */
    assert_int_equal(sp.body_len, 0);
    fr_spec_free(&sp);
    unlink(path);
}

static void jsonl_full_line(void **s)
{
    (void)s;
    fetch_spec sp;
    char err[512];
    const char *l = "{\"url\":\"http://t/x\",\"method\":\"PUT\",\"headers\":{\"X-A\":\"1\",\"Content-Type\":\"text/plain\"},"
                    "\"body\":\"h\\u00e9\\u0000!\",\"session\":\"s1\",\"timeout\":2.5,\"race\":3,\"attempts\":0}";
    assert_int_equal(fr_parse_jsonl(l, strlen(l), &sp, err, sizeof err), 0);
    assert_string_equal(sp.url, "http://t/x");
    assert_string_equal(sp.method, "PUT");
    assert_int_equal(sp.nh, 2);
    assert_string_equal(sp.hdr[1].name, "Content-Type");
    assert_string_equal(sp.hdr[1].value, "text/plain");
    assert_int_equal(sp.body_len, 5); /* UTF-8 of é is 2 bytes; the NUL is kept */
    assert_memory_equal(sp.body, "h\xc3\xa9\0!", 5);
    assert_string_equal(sp.session, "s1");
    assert_true(sp.has_timeout && sp.timeout_ms == 2500);
    assert_true(sp.has_race && sp.race == 3);
    assert_true(sp.has_attempts && sp.attempts == 0);
    fr_spec_free(&sp);

    const char *b = "{\"url\":\"http://t/y\",\"headers\":[\"X-A: 1\",\"X-B:2\"],\"body_base64\":\"AP8Q\",\"session\":null}";
    assert_int_equal(fr_parse_jsonl(b, strlen(b), &sp, err, sizeof err), 0);
    assert_int_equal(sp.nh, 2);
    assert_string_equal(sp.hdr[1].value, "2");
    assert_int_equal(sp.body_len, 3);
    assert_memory_equal(sp.body, "\x00\xff\x10", 3);
    assert_string_equal(sp.session, "");
    assert_string_equal(sp.method, "");
    fr_spec_free(&sp);
}

/* Each bad line is refused with a message naming the field. */
static void jsonl_errors(void **s)
{
    (void)s;
    static const struct {
        const char *line, *want;
    } C[] = {
        {"http://t/plain-url", "not JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"method\":\"GET\"}", "field 'url': missing"},
        {"{\"url\":\"\"}", "field 'url': must be a non-empty string"},
        {"{\"url\":5}", "field 'url'"},
        {"{\"url\":\"u\",\"method\":\"get\"}", "field 'method': must be 1 to 16 upper-case"},
        {"{\"url\":\"u\",\"method\":\"ABCDEFGHIJKLMNOPQ\"}", "field 'method'"},
        {"{\"url\":\"u\",\"headers\":\"X-A: 1\"}", "field 'headers': must be an object"},
        {"{\"url\":\"u\",\"headers\":{\"X-A\":1}}", "field 'headers': the value of 'X-A' must be a string"},
        {"{\"url\":\"u\",\"headers\":{\"Bad Name\":\"1\"}}", "field 'headers': header name 'Bad Name'"},
        {"{\"url\":\"u\",\"headers\":[\"X-A: 1\",\"nocolon\"]}", "field 'headers': element 1: expected 'Name: value'"},
        {"{\"url\":\"u\",\"headers\":{\"X-A\":\"a\\r\\nX-Evil: 1\"}}", "CR, LF or NUL"},
        {"{\"url\":\"u\",\"body\":1}", "field 'body': must be a string"},
        {"{\"url\":\"u\",\"body\":\"a\",\"body_base64\":\"YQ==\"}", "not both"},
        {"{\"url\":\"u\",\"body_base64\":\"a*b=\"}", "field 'body_base64': not valid base64"},
        {"{\"url\":\"u\",\"session\":\"\"}", "field 'session': must be a string of 1 to 63 bytes"},
        {"{\"url\":\"u\",\"session\":\"0123456789012345678901234567890123456789012345678901234567890123\"}",
         "field 'session'"},
        {"{\"url\":\"u\",\"timeout\":-1}", "field 'timeout': must be a number of seconds"},
        {"{\"url\":\"u\",\"timeout\":\"5\"}", "field 'timeout'"},
        {"{\"url\":\"u\",\"race\":0}", "field 'race': must be an integer from 1 to 64"},
        {"{\"url\":\"u\",\"race\":65}", "field 'race'"},
        {"{\"url\":\"u\",\"race\":2.0}", "field 'race'"},
        {"{\"url\":\"u\",\"attempts\":4294967296}", "field 'attempts': must be an integer from 0 to 4294967295"},
        {"{\"url\":\"u\",\"metod\":\"POST\"}", "field 'metod': unknown"},
        {"{\"url\":\"u\",\"url\":\"v\"}", "not JSON"}, /* duplicate keys are refused, not silently one of them */
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        fetch_spec sp;
        char err[512] = "";
        int rc = fr_parse_jsonl(C[i].line, strlen(C[i].line), &sp, err, sizeof err);
        if (rc != -EINVAL || !strstr(err, C[i].want))
            fail_msg("line %s: rc %d, message '%s', want '%s'", C[i].line, rc, err, C[i].want);
        fr_spec_free(&sp);
    }
}

static void merge_rule(void **s)
{
    (void)s;
    fetch_spec d = {0}, l;
    char err[256];
    assert_int_equal(fr_add_header(&d, "Authorization: Bearer x", 23, err, sizeof err), 0);
    assert_int_equal(fr_add_header(&d, "Accept: */*", 11, err, sizeof err), 0);
    d.has_timeout = 1;
    d.timeout_ms = 9000;
    d.has_race = 1;
    d.race = 4;
    sc_request req;
    sc_header hb[PROTO_MAX_HEADERS];

    /* defaults alone: GET, no body */
    assert_int_equal(fr_build(&d, NULL, &req, hb, err, sizeof err), 0);
    assert_string_equal(req.method, "GET");
    assert_null(req.body);
    assert_int_equal(req.n_headers, 2);
    assert_int_equal(req.race_width, 4);
    assert_true(req.has_timeout && req.timeout_ms == 9000);
    assert_null(req.session);

    /* a line with a body and its own Accept: POST, Accept replaced, Authorization kept */
    const char *t = "{\"url\":\"http://t/a\",\"headers\":{\"accept\":\"application/json\"},\"body\":\"{}\",\"race\":1,"
                    "\"session\":\"s\"}";
    assert_int_equal(fr_parse_jsonl(t, strlen(t), &l, err, sizeof err), 0);
    assert_int_equal(fr_build(&d, &l, &req, hb, err, sizeof err), 0);
    assert_string_equal(req.url, "http://t/a");
    assert_string_equal(req.method, "POST");
    assert_int_equal(req.body_len, 2);
    assert_memory_equal(req.body, "{}", 2);
    assert_int_equal(req.n_headers, 2);
    assert_string_equal(hb[0].name, "Authorization");
    assert_string_equal(hb[1].name, "accept");
    assert_string_equal(hb[1].value, "application/json");
    assert_int_equal(req.race_width, 1);
    assert_true(req.has_timeout && req.timeout_ms == 9000);
    assert_string_equal(req.session, "s");
    fr_spec_free(&l);

    /* -X wins over the body's POST; the line's method over -X; GET with a body is allowed */
    strcpy(d.method, "PUT");
    d.body = (uint8_t *)strdup("x");
    d.body_len = 1;
    d.has_body = 1;
    t = "{\"url\":\"http://t/b\",\"method\":\"GET\"}";
    assert_int_equal(fr_parse_jsonl(t, strlen(t), &l, err, sizeof err), 0);
    assert_int_equal(fr_build(&d, &l, &req, hb, err, sizeof err), 0);
    assert_string_equal(req.method, "GET");
    assert_int_equal(req.body_len, 1);
    fr_spec_free(&l);
    assert_int_equal(fr_build(&d, NULL, &req, hb, err, sizeof err), 0);
    assert_string_equal(req.method, "PUT");

    /* HEAD with a body (the command line's) is refused */
    t = "{\"url\":\"http://t/c\",\"method\":\"HEAD\"}";
    assert_int_equal(fr_parse_jsonl(t, strlen(t), &l, err, sizeof err), 0);
    assert_int_equal(fr_build(&d, &l, &req, hb, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "HEAD"));
    fr_spec_free(&l);

    /* the merged list is bounded too */
    fetch_spec many = {0};
    while (many.nh < PROTO_MAX_HEADERS - 1)
        assert_int_equal(fr_add_header(&many, "X-Many: 1", 9, err, sizeof err), 0);
    t = "{\"url\":\"http://t/d\",\"headers\":[\"X-1: 1\",\"X-2: 2\",\"X-3: 3\"]}";
    assert_int_equal(fr_parse_jsonl(t, strlen(t), &l, err, sizeof err), 0);
    assert_int_equal(fr_build(&many, &l, &req, hb, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "more than 128 headers"));
    fr_spec_free(&l);
    fr_spec_free(&many);
    fr_spec_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_text),   cmocka_unit_test(header_file),  cmocka_unit_test(body_file),
        cmocka_unit_test(jsonl_full_line), cmocka_unit_test(jsonl_errors), cmocka_unit_test(merge_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
