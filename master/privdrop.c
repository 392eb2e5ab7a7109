/*
 * `user =` / `group =`: a master started as root opens what needs root (sockets, the pid
 * file, the log file, the state file, the metrics port), then becomes the configured user
 * before it runs anything that reads outside input (source fetches) or serves clients (the
 * workers, which inherit the user). The switch is setgroups/initgroups, setgid, setuid, in
 * that order (the group calls need root), each checked, then checked again: the ids are the
 * target's and root cannot be regained.
 */
#include "master/master.h"
#include "common/paths.h"
#include "common/listen_addr.h"

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PW_BUF_MAX (1 << 20) /* getpwnam_r / getgrnam_r buffers grow to at most this */

static int perr(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* 0 found, -ENOENT unknown, -errno on a lookup failure. */
static int lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
    for (size_t n = 16384; n <= PW_BUF_MAX; n *= 2) {
        char *buf = malloc(n);
        if (!buf)
            return -ENOMEM;
        struct passwd pw, *res = NULL;
        int rc = getpwnam_r(name, &pw, buf, n, &res);
        if (rc == 0 && res) {
            *uid = pw.pw_uid;
            *gid = pw.pw_gid;
        }
        free(buf);
        if (rc == ERANGE)
            continue;
        return rc ? -rc : res ? 0 : -ENOENT;
    }
    return -ERANGE;
}

static int lookup_group(const char *name, gid_t *gid)
{
    for (size_t n = 16384; n <= PW_BUF_MAX; n *= 2) {
        char *buf = malloc(n);
        if (!buf)
            return -ENOMEM;
        struct group gr, *res = NULL;
        int rc = getgrnam_r(name, &gr, buf, n, &res);
        if (rc == 0 && res)
            *gid = gr.gr_gid;
        free(buf);
        if (rc == ERANGE)
            continue;
        return rc ? -rc : res ? 0 : -ENOENT;
    }
    return -ERANGE;
}

int priv_resolve(const scatter_config *c, priv_target *t, char *err, size_t cap)
{
    memset(t, 0, sizeof *t);
    t->uid = getuid();
    t->gid = getgid();
    if (c->user[0]) {
        int rc = lookup_user(c->user, &t->uid, &t->gid);
        if (rc == -ENOENT)
            return perr(err, cap, "%s: [scatter] user = '%s': no such user", c->path, c->user);
        if (rc)
            return perr(err, cap, "%s: [scatter] user = '%s': cannot look it up: %s", c->path, c->user,
                        strerror(-rc));
        t->set_user = 1;
        snprintf(t->user, sizeof t->user, "%s", c->user);
    }
    if (c->group[0]) {
        int rc = lookup_group(c->group, &t->gid);
        if (rc == -ENOENT)
            return perr(err, cap, "%s: [scatter] group = '%s': no such group", c->path, c->group);
        if (rc)
            return perr(err, cap, "%s: [scatter] group = '%s': cannot look it up: %s", c->path, c->group,
                        strerror(-rc));
    }
    t->wanted = c->user[0] || c->group[0];
    return 0;
}

int priv_check_start(const scatter_config *c, priv_target *t, char *err, size_t cap)
{
    if (!t->wanted)
        return 0;
    if (geteuid() == 0) {
        /* root switching to root (user = root) changes nothing worth a code path */
        t->active = !(t->uid == 0 && t->gid == 0);
        return 0;
    }
    /* not root: we cannot switch; running as someone else than asked is worse than not running */
    if (t->uid != geteuid())
        return perr(err, cap, "%s: [scatter] user = '%s': only root can switch users, and scatterd runs as uid "
                    "%u; start it as root or remove the key", c->path, c->user, (unsigned)geteuid());
    if (t->gid != getegid())
        return perr(err, cap, "%s: [scatter] group = '%s': only root can switch groups, and scatterd runs as "
                    "gid %u; start it as root or remove the key", c->path, c->group[0] ? c->group : c->user,
                    (unsigned)getegid());
    return 0; /* already the configured user and group */
}

int priv_check_ports(const scatter_config *c, const priv_target *t, char *err, size_t cap)
{
    if (!t->active || !t->set_user || t->uid == 0 || !c->http_listen[0])
        return 0;
    struct sockaddr_storage ss;
    unsigned len;
    char why[256];
    if (listen_addr_parse(c->http_listen, &ss, &len, why, sizeof why))
        return 0; /* cfg_load refused a bad value already */
    unsigned port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    /* the workers bind it, after the switch: without root a port below 1024 is refused, and a
     * daemon without its HTTP front end would only say so in a warning */
    if (port < 1024)
        return perr(err, cap, "%s: [scatter] http_listen = '%s': the workers bind it as user '%s', who cannot "
                    "bind a port below 1024; use a port of 1024 or more", c->path, c->http_listen, t->user);
    return 0;
}

int priv_own_dir(const priv_target *t, const char *dir, char *err, size_t cap)
{
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return perr(err, cap, "cannot create directory %s: %s", dir, strerror(errno));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return perr(err, cap, "cannot open directory %s: %s", dir, strerror(errno));
    struct stat st;
    int rc = fstat(fd, &st);
    /* ours (root's: we or systemd's RuntimeDirectory= made it) becomes the user's; one owned
     * by anybody else is left for paths_ensure_dir to refuse */
    if (rc == 0 && (st.st_uid == 0 || st.st_uid == t->uid) && fchown(fd, t->uid, t->gid) != 0)
        rc = -1;
    int e = errno;
    close(fd);
    if (rc)
        return perr(err, cap, "cannot give directory %s to uid %u: %s", dir, (unsigned)t->uid, strerror(e));
    return 0;
}

int priv_drop(const priv_target *t, char *err, size_t cap)
{
    if (!t->active)
        return 0;
    /* supplementary groups first: root's would otherwise survive the switch */
    if (t->set_user ? initgroups(t->user, t->gid) != 0 : setgroups(1, &t->gid) != 0)
        return perr(err, cap, "setting the groups of %s: %s", t->set_user ? t->user : "the group", strerror(errno));
    if (setgid(t->gid) != 0)
        return perr(err, cap, "setgid(%u): %s", (unsigned)t->gid, strerror(errno));
    if (t->set_user && setuid(t->uid) != 0)
        return perr(err, cap, "setuid(%u): %s", (unsigned)t->uid, strerror(errno));
    if (getgid() != t->gid || getegid() != t->gid)
        return perr(err, cap, "still gid %u/%u after setgid(%u)", (unsigned)getgid(), (unsigned)getegid(),
                    (unsigned)t->gid);
    if (t->set_user) {
        if (getuid() != t->uid || geteuid() != t->uid)
            return perr(err, cap, "still uid %u/%u after setuid(%u)", (unsigned)getuid(), (unsigned)geteuid(),
                        (unsigned)t->uid);
        if (t->uid != 0 && setuid(0) == 0)
            return perr(err, cap, "could become root again after setuid(%u)", (unsigned)t->uid);
    }
    return 0;
}

int priv_check_writable(const char *key, const char *file, const char *who, char *err, size_t cap)
{
    if (!file[0])
        return 0;
    char dir[CFG_STR_MAX];
    paths_dir_of(file, dir, sizeof dir);
    /* access() checks the real ids: after the switch, the user's */
    if (access(dir, W_OK | X_OK) != 0)
        return perr(err, cap, "[scatter] %s = '%s': its directory %s is not writable by %s (%s); give it to "
                    "that user (StateDirectory= under systemd) or choose another path", key, file, dir, who,
                    strerror(errno));
    return 0;
}
