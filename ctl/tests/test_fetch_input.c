/* fetch's URL reader: numbering, skipping, trimming, arguments before the file, laziness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/fetch_input.h"

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/sc_fetch_input_%d.txt", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void args_then_file(void **s)
{
    (void)s;
    char *path = write_tmp("# a comment\n\nhttp://a/1\n   \n  http://a/2  \r\n\t# indented comment\nhttp://a/3");
    char *args[] = {"http://arg/1", "", "http://arg/2"};
    fetch_input in;
    char err[128];
    assert_int_equal(fetch_input_open(&in, args, 3, path, err, sizeof err), 0);
    static const char *want[] = {"http://arg/1", "http://arg/2", "http://a/1", "http://a/2", "http://a/3"};
    const char *url;
    uint64_t n;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fetch_input_next(&in, &url, &n), 1);
        assert_string_equal(url, want[i]);
        assert_int_equal(n, (uint64_t)i + 1);
    }
    assert_int_equal(fetch_input_next(&in, &url, &n), 0);
    assert_int_equal(fetch_input_next(&in, &url, &n), 0);
    assert_int_equal(in.lineno, 7);
    fetch_input_close(&in);
    unlink(path);
}

static void args_only_and_missing_file(void **s)
{
    (void)s;
    char *args[] = {"u"};
    fetch_input in;
    char err[128];
    const char *url;
    uint64_t n;
    assert_int_equal(fetch_input_open(&in, args, 1, NULL, err, sizeof err), 0);
    assert_int_equal(fetch_input_next(&in, &url, &n), 1);
    assert_int_equal(fetch_input_next(&in, &url, &n), 0);
    fetch_input_close(&in);
    assert_int_equal(fetch_input_open(&in, NULL, 0, "/nonexistent/urls.txt", err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/urls.txt"));
}

/* A long file is read one line per call: the reader's memory is one line, whatever the size. */
static void streams_large_file(void **s)
{
    (void)s;
    char path[64];
    snprintf(path, sizeof path, "/tmp/sc_fetch_big_%d.txt", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 100000; i++)
        fprintf(f, "http://example.com/%d\n", i);
    fclose(f);
    fetch_input in;
    char err[128];
    assert_int_equal(fetch_input_open(&in, NULL, 0, path, err, sizeof err), 0);
    const char *url;
    uint64_t n;
    assert_int_equal(fetch_input_next(&in, &url, &n), 1);
    long after_first = ftell(in.f);
    assert_true(after_first < 1 << 16); /* stdio buffer, not the whole 2 MB file */
    uint64_t count = 1;
    while (fetch_input_next(&in, &url, &n) == 1)
        count++;
    assert_int_equal(count, 100000);
    assert_string_equal(url, "http://example.com/99999");
    assert_true(in.linecap < 1024);
    fetch_input_close(&in);
    unlink(path);
}

/* A line over max_line keeps its number, is consumed whole, and costs no more memory. */
static void long_line_refused(void **s)
{
    (void)s;
    char *path = write_tmp("http://a/1\nhttp://a/0123456789\n\nhttp://a/3\n");
    fetch_input in;
    char err[128];
    const char *url;
    uint64_t n;
    assert_int_equal(fetch_input_open(&in, NULL, 0, path, err, sizeof err), 0);
    in.max_line = 12;
    assert_int_equal(fetch_input_next(&in, &url, &n), 1);
    assert_string_equal(url, "http://a/1");
    assert_true(in.from_file);
    assert_int_equal(fetch_input_next(&in, &url, &n), -E2BIG);
    assert_int_equal(n, 2);
    assert_int_equal(in.lineno, 2);
    assert_int_equal(fetch_input_next(&in, &url, &n), 1);
    assert_string_equal(url, "http://a/3");
    assert_int_equal(n, 3);
    assert_int_equal(in.lineno, 4);
    assert_true(in.linecap <= 13);
    assert_int_equal(fetch_input_next(&in, &url, &n), 0);
    fetch_input_close(&in);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(args_then_file),
        cmocka_unit_test(args_only_and_missing_file),
        cmocka_unit_test(streams_large_file),
        cmocka_unit_test(long_line_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
