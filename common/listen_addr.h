#ifndef SCATTER_COMMON_LISTEN_ADDR_H
#define SCATTER_COMMON_LISTEN_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Parses "IP:port" or "[IPv6]:port" into *ss (length in *len). 0, or -1 with err naming the
 * value and what is wrong. */
int listen_addr_parse(const char *s, struct sockaddr_storage *ss, unsigned *len, char *err, size_t cap);
/* 1 if the address is loopback (127.0.0.0/8 or ::1). */
int listen_addr_is_loopback(const struct sockaddr_storage *ss);

#endif
