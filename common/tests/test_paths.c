#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "common/paths.h"

typedef struct {
    char dir[256];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/scatter-paths-test.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    umask(022);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void put(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void expect_content(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    assert_string_equal(buf, text);
}

static void runtime_dir_per_uid(void **s)
{
    (void)s;
    char out[256], err[512];
    assert_int_equal(paths_runtime_dir(0, NULL, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/run/scatter");
    assert_int_equal(paths_runtime_dir(0, "/run/user/0", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/run/scatter");
    assert_int_equal(paths_runtime_dir(1000, "/run/user/1000", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/run/user/1000/scatter");
    assert_int_equal(paths_runtime_dir(1000, NULL, out, sizeof out, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "XDG_RUNTIME_DIR is not set"));
    assert_non_null(strstr(err, "uid 1000"));
    assert_int_equal(paths_runtime_dir(1000, "", out, sizeof out, err, sizeof err), -ENOENT);
    assert_int_equal(paths_runtime_dir(1000, "run/user", out, sizeof out, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "not an absolute path"));
}

static void ensure_dir_creates_and_refuses(void **state)
{
    fixture *f = *state;
    char d[512], err[512];
    struct stat st;
    snprintf(d, sizeof d, "%s/rt", f->dir);
    assert_int_equal(paths_ensure_dir(d, geteuid(), err, sizeof err), 0);
    assert_int_equal(lstat(d, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0750);
    /* existing and fine: accepted again */
    assert_int_equal(paths_ensure_dir(d, geteuid(), err, sizeof err), 0);
    /* owned by someone else (as far as the check knows) */
    assert_int_equal(paths_ensure_dir(d, geteuid() + 1, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "owned by uid"));
    /* group- or world-writable */
    assert_int_equal(chmod(d, 0777), 0);
    assert_int_equal(paths_ensure_dir(d, geteuid(), err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "writable by group or others"));
    assert_int_equal(chmod(d, 0770), 0);
    assert_int_equal(paths_ensure_dir(d, geteuid(), err, sizeof err), -EPERM);
    /* a symlink to a perfectly good directory is still refused */
    char l[512];
    snprintf(l, sizeof l, "%s/link", f->dir);
    assert_int_equal(chmod(d, 0700), 0);
    assert_int_equal(symlink(d, l), 0);
    assert_int_equal(paths_ensure_dir(l, geteuid(), err, sizeof err), -ENOTDIR);
    assert_non_null(strstr(err, "not a directory"));
    /* a regular file */
    char r[512];
    snprintf(r, sizeof r, "%s/file", f->dir);
    put(r, "x");
    assert_int_equal(paths_ensure_dir(r, geteuid(), err, sizeof err), -ENOTDIR);
}

static void create_tmp_never_follows(void **state)
{
    fixture *f = *state;
    char victim[512], tmp[512], err[512];
    snprintf(victim, sizeof victim, "%s/victim", f->dir);
    snprintf(tmp, sizeof tmp, "%s/x.tmp", f->dir);
    put(victim, "precious\n");
    assert_int_equal(symlink(victim, tmp), 0);
    int fd = paths_create_tmp(tmp, 0600, err, sizeof err);
    if (fd < 0)
        fail_msg("%s", err);
    assert_int_equal(write(fd, "new", 3), 3);
    close(fd);
    expect_content(victim, "precious\n");
    struct stat st;
    assert_int_equal(lstat(tmp, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    expect_content(tmp, "new");

    /* a pre-created file (with other permissions) is replaced by a new file of ours */
    assert_int_equal(unlink(tmp), 0);
    put(tmp, "planted");
    assert_int_equal(chmod(tmp, 0666), 0);
    fd = paths_create_tmp(tmp, 0640, err, sizeof err);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(lstat(tmp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(st.st_size, 0);

    /* a name that cannot be freed (a directory) is an error naming it, not a write elsewhere */
    assert_int_equal(unlink(tmp), 0);
    assert_int_equal(mkdir(tmp, 0700), 0);
    char inner[600];
    snprintf(inner, sizeof inner, "%s/keep", tmp);
    put(inner, "x");
    fd = paths_create_tmp(tmp, 0600, err, sizeof err);
    assert_true(fd < 0);
    assert_non_null(strstr(err, tmp));
}

static void write_atomic_replaces_symlinks_not_targets(void **state)
{
    fixture *f = *state;
    char victim[512], path[512], tmp[600], err[512];
    snprintf(victim, sizeof victim, "%s/victim", f->dir);
    snprintf(path, sizeof path, "%s/d.pid", f->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    put(victim, "precious\n");
    /* symlinks at both the temp name and the final name */
    assert_int_equal(symlink(victim, tmp), 0);
    assert_int_equal(symlink(victim, path), 0);
    int rc = paths_write_atomic(path, "1234\n", 5, 0640, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    expect_content(victim, "precious\n");
    expect_content(path, "1234\n");
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(st.st_uid, geteuid());
    assert_int_equal(lstat(tmp, &st), -1); /* renamed away */
    /* again over our own file */
    assert_int_equal(paths_write_atomic(path, "99\n", 3, 0640, err, sizeof err), 0);
    expect_content(path, "99\n");
}

static void dir_of(void **state)
{
    (void)state;
    char d[16];
    paths_dir_of("/run/scatter/scatter.pid", d, sizeof d);
    assert_string_equal(d, "/run/scatter");
    paths_dir_of("/scatter.pid", d, sizeof d);
    assert_string_equal(d, "/");
    paths_dir_of("scatter.pid", d, sizeof d);
    assert_string_equal(d, ".");
    paths_dir_of("a/b", d, sizeof d);
    assert_string_equal(d, "a");
    paths_dir_of("/very/long/path/cut/here", d, 10); /* "/very/lon": cut first */
    assert_string_equal(d, "/very");
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(dir_of),
        cmocka_unit_test(runtime_dir_per_uid),
        cmocka_unit_test_setup_teardown(ensure_dir_creates_and_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(create_tmp_never_follows, setup, teardown),
        cmocka_unit_test_setup_teardown(write_atomic_replaces_symlinks_not_targets, setup, teardown),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
