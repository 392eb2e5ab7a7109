/*
 * net.c — socket helpers and the loopback safety rule.
 *
 * Why its own file: the farm must never touch a non-loopback address. Every address parse,
 * listen and source-address choice goes through these few functions, so the rule
 * "127.0.0.0/8 only" is enforced in one place that a reviewer can read in a minute.
 */
#include "farm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

bool farm_is_loopback(struct in_addr a)
{
    return (ntohl(a.s_addr) >> 24) == 127;
}

int farm_parse_ipv4(const char *s, struct in_addr *out)
{
    return inet_pton(AF_INET, s, out) == 1 ? 0 : -1;
}

int farm_parse_hostport(const char *s, struct sockaddr_in *out)
{
    const char *colon = strrchr(s, ':');
    char host[64];
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    errno = 0;
    if (colon[1] < '0' || colon[1] > '9')
        return -1;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || *end || port == 0 || port > 65535)
        return -1;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        out->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (farm_parse_ipv4(host, &out->sin_addr) != 0)
        return -1;
    return 0;
}

int farm_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

int farm_listen(const struct sockaddr_in *addr, char *err, size_t errlen)
{
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr->sin_addr, ip, sizeof ip);
    if (!farm_is_loopback(addr->sin_addr)) {
        snprintf(err, errlen, "refusing to listen on %s: not in 127.0.0.0/8", ip);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)addr, sizeof *addr) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "listen on %s:%u: %s", ip, ntohs(addr->sin_port), strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

struct in_addr farm_proxy_source(unsigned index)
{
    /* 127.1.(i/250).(i%250+1): unique per proxy for up to 64,000 proxies, never .0 or .255. */
    struct in_addr a;
    a.s_addr = htonl((127u << 24) | (1u << 16) | ((index / 250) << 8) | (index % 250 + 1));
    return a;
}

int64_t farm_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void farm_conn_add(struct farm *f, struct conn_link *l)
{
    l->next = f->conns.next;
    l->prev = &f->conns;
    f->conns.next->prev = l;
    f->conns.next = l;
    f->nconns++;
}

void farm_conn_del(struct farm *f, struct conn_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
    f->nconns--;
}
