#include "common/paths.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, size_t cap, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int paths_runtime_dir(uid_t uid, const char *xdg, char *out, size_t cap, char *err, size_t errcap)
{
    int n;
    if (uid == 0) {
        n = snprintf(out, cap, "%s", PATHS_ROOT_DIR);
    } else {
        if (!xdg || !*xdg)
            return fail(err, errcap, -ENOENT,
                        "XDG_RUNTIME_DIR is not set, so there is no private directory for the default "
                        "socket and pid file (uid %u is not root); set XDG_RUNTIME_DIR or give "
                        "absolute paths",
                        (unsigned)uid);
        if (xdg[0] != '/')
            return fail(err, errcap, -ENOENT, "XDG_RUNTIME_DIR '%s' is not an absolute path", xdg);
        n = snprintf(out, cap, "%s/%s", xdg, PATHS_SUBDIR);
    }
    if (n < 0 || (size_t)n >= cap)
        return fail(err, errcap, -ENAMETOOLONG, "runtime directory path is too long (XDG_RUNTIME_DIR '%s')",
                    xdg ? xdg : "");
    return 0;
}

int paths_default(const char *name, char *out, size_t cap, char *err, size_t errcap)
{
    char dir[4096];
    int rc = paths_runtime_dir(geteuid(), getenv("XDG_RUNTIME_DIR"), dir, sizeof dir, err, errcap);
    if (rc)
        return rc;
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return fail(err, errcap, -ENAMETOOLONG, "default path %s/%s is too long", dir, name);
    return 0;
}

int paths_ensure_dir(const char *dir, uid_t uid, char *err, size_t errcap)
{
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return fail(err, errcap, -errno, "cannot create directory %s: %s", dir, strerror(errno));
    /* O_NOFOLLOW: a symlink planted at the name is refused, not followed into someone's dir */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP || e == ENOTDIR)
            return fail(err, errcap, -ENOTDIR, "%s exists but is not a directory (a symlink or a file); refusing "
                        "to use it", dir);
        return fail(err, errcap, -e, "cannot open directory %s: %s", dir, strerror(e));
    }
    struct stat st;
    int rc = fstat(fd, &st);
    int e = errno;
    close(fd);
    if (rc)
        return fail(err, errcap, -e, "cannot stat %s: %s", dir, strerror(e));
    if (st.st_uid != uid)
        return fail(err, errcap, -EPERM, "directory %s is owned by uid %u, not by us (uid %u); refusing to use it",
                    dir, (unsigned)st.st_uid, (unsigned)uid);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return fail(err, errcap, -EPERM, "directory %s is writable by group or others (mode %04o); refusing "
                    "to use it", dir, (unsigned)(st.st_mode & 07777));
    return 0;
}

int paths_create_tmp(const char *tmp, mode_t mode, char *err, size_t errcap)
{
    if (unlink(tmp) != 0 && errno != ENOENT)
        return fail(err, errcap, -errno, "cannot remove the stale %s: %s", tmp, strerror(errno));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return fail(err, errcap, -errno, "cannot create %s: %s", tmp, strerror(errno));
    return fd;
}

int paths_write_atomic(const char *path, const void *data, size_t n, mode_t mode, char *err, size_t errcap)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return fail(err, errcap, -ENAMETOOLONG, "path too long: %s", path);
    int fd = paths_create_tmp(tmp, mode, err, errcap);
    if (fd < 0)
        return fd;
    const char *p = data;
    size_t left = n;
    int rc = 0;
    while (left && rc == 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = w < 0 ? -errno : -EIO;
        else {
            p += w;
            left -= (size_t)w;
        }
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        return fail(err, errcap, rc, "cannot write %s: %s", tmp, strerror(-rc));
    }
    if (rename(tmp, path) != 0) {
        rc = -errno;
        unlink(tmp);
        return fail(err, errcap, rc, "cannot rename %s to %s: %s", tmp, path, strerror(-rc));
    }
    return 0;
}

void paths_dir_of(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s", path);
    char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else
        slash[slash == out] = '\0';
}
