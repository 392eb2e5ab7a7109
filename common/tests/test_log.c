/* The logger's two formats, JSON escaping and the reopen after a rename (logrotate). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "common/log.h"

static void esc(const char *in, size_t n, const char *want)
{
    char out[256];
    size_t len = log_json_escape(in, n, out, sizeof out);
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
}

static void test_escape(void **state)
{
    esc("plain", 5, "plain");
    esc("say \"hi\"", 8, "say \\\"hi\\\"");
    esc("C:\\dir", 6, "C:\\\\dir");
    esc("a\nb\rc\td", 7, "a\\nb\\rc\\td");
    esc("\x01\x1f\x7f", 3, "\\u0001\\u001f\x7f");
    esc("nul\0x", 5, "nul\\u0000x");
    /* valid UTF-8 kept, bytes that are not UTF-8 escaped as their Latin-1 reading */
    esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    esc("\xff\xc3(", 3, "\\u00ff\\u00c3(");
    esc("\xc0\xaf", 2, "\\u00c0\\u00af");           /* overlong '/' */
    esc("\xed\xa0\x80", 3, "\\u00ed\\u00a0\\u0080"); /* a surrogate */
    esc("\xe2\x82", 2, "\\u00e2\\u0082");           /* cut short */
}

static void test_escape_truncates_whole(void **state)
{
    char out[8];
    /* "\u0001" is 6 bytes: a second one does not fit in 8 and is left out whole */
    size_t n = log_json_escape("\x01\x02", 2, out, sizeof out);
    assert_int_equal(n, 6);
    assert_string_equal(out, "\\u0001");
    n = log_json_escape("ab\xe2\x82\xac", 5, out, 5);
    assert_string_equal(out, "ab"); /* the euro sign does not fit in the 2 bytes left */
    assert_int_equal(n, 2);
}

static void test_format_names(void **state)
{
    log_format f;
    assert_int_equal(log_format_parse("json", &f), 0);
    assert_int_equal(f, LOG_JSON);
    assert_int_equal(log_format_parse("TEXT", &f), 0);
    assert_int_equal(f, LOG_TEXT);
    assert_int_equal(log_format_parse("xml", &f), -1);
    assert_string_equal(log_format_name(LOG_JSON), "json");
}

static char *slurp(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_json_line_and_reopen(void **state)
{
    char dir[] = "/tmp/scatter-log-test.XXXXXX", path[128], moved[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/x.log", dir);
    snprintf(moved, sizeof moved, "%s/x.log.1", dir);
    int fd = log_open_file(path);
    assert_true(fd >= 0);
    logger lg;
    log_init(&lg, LOG_INFO, LOG_JSON, fd, "worker", 3);
    assert_string_equal(lg.who, "worker 3");
    LOGI(&lg, "a \"quoted\" \\ %s", "x\ty");
    LOGD(&lg, "not at info");
    char want[256];
    snprintf(want, sizeof want, "\"level\":\"info\",\"process\":\"worker\",\"worker\":3,\"pid\":%d,"
             "\"message\":\"a \\\"quoted\\\" \\\\ x\\ty\"}\n", (int)getpid());
    char *t = slurp(path);
    assert_non_null(strstr(t, want));
    assert_int_equal(strncmp(t, "{\"time\":\"20", 11), 0);
    assert_non_null(strchr(t, '\n'));
    assert_ptr_equal(strchr(t, '\n') + 1, t + strlen(t)); /* one line */

    /* logrotate: rename, then reopen on the same descriptor */
    assert_int_equal(rename(path, moved), 0);
    LOGW(&lg, "to the renamed file");
    assert_int_equal(log_reopen(&lg, path), 0);
    assert_int_equal(lg.fd, fd);
    log_set_process(&lg, "master", 0);
    lg.format = LOG_TEXT;
    LOGW(&lg, "to the new file");
    t = slurp(moved);
    assert_non_null(strstr(t, "to the renamed file"));
    assert_null(strstr(t, "to the new file"));
    t = slurp(path);
    assert_non_null(strstr(t, " warn  master: to the new file\n"));
    assert_null(strstr(t, "renamed"));
    /* a symlink at the path is refused, and the old file stays in use */
    unlink(path);
    assert_int_equal(symlink(moved, path), 0);
    assert_true(log_reopen(&lg, path) < 0);
    close(fd);
    unlink(path);
    unlink(moved);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_truncates_whole),
        cmocka_unit_test(test_format_names),
        cmocka_unit_test(test_json_line_and_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
