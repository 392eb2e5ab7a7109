/*
 * The client socket. A socket file left by a crashed daemon is stale and replaced; one that
 * still accepts connections belongs to a live daemon, and starting a second one on it is an
 * error (it would silently steal half the clients); the message names the listener's pid and
 * uid. The default socket_path lives in a directory only we can write (common/paths.h).
 */
#include "master/master.h"
#include "common/listen_addr.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int listen_open(const char *path, unsigned mode, const logger *lg)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        LOGE(lg, "socket_path '%s' is longer than %zu bytes", path, sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            LOGE(lg, "socket_path '%s' exists and is not a socket; not touching it", path);
            return -1;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
            /* name the listener: in a shared directory it may be another user's squatter
             * rather than our own daemon, and the fix differs */
            struct ucred cr = {0};
            socklen_t len = sizeof cr;
            if (getsockopt(probe, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0)
                LOGE(lg, "socket '%s' is in use by a running daemon (pid %d, uid %u)", path, (int)cr.pid,
                     (unsigned)cr.uid);
            else
                LOGE(lg, "socket '%s' is in use by a running daemon", path);
            close(probe);
            return -1;
        }
        if (probe >= 0)
            close(probe);
        LOGW(lg, "replacing stale socket '%s'", path);
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        LOGE(lg, "socket: %s", strerror(errno));
        return -1;
    }
    mode_t old = umask(0777 & ~mode);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc || listen(fd, 1024)) {
        LOGE(lg, "cannot listen on '%s': %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    chmod(path, mode);
    return fd;
}

int listen_check_http(const char *addr, const logger *lg)
{
    if (!addr[0])
        return 0;
    struct sockaddr_storage ss;
    unsigned len;
    char err[256];
    if (listen_addr_parse(addr, &ss, &len, err, sizeof err)) {
        LOGE(lg, "http_listen %s", err);
        return -1;
    }
    /* the workers bind it with SO_REUSEPORT; a probe with the same options fails exactly when
     * another program (not a scatterd of ours) holds the port */
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) || bind(fd, (struct sockaddr *)&ss, len)) {
        LOGE(lg, "http_listen '%s': %s (set http_listen = \"\" to run without the HTTP front end)", addr,
             strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}
