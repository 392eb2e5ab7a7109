/*
 * The pieces of the Redis transport (docs/SCALING.md) that need no Redis library: the
 * redis_url syntax, shared by the config check, the workers and scatterctl, and the stable
 * hash that assigns a proxy to its shard.
 */
#ifndef SCATTER_COMMON_REDIS_URL_H
#define SCATTER_COMMON_REDIS_URL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char host[256];       /* name or address, IPv6 without brackets */
    int port;             /* 6379 when the URL gives none */
    char password[256];   /* "" = no AUTH */
    unsigned db;          /* SELECT db when not 0 */
} redis_url;

/* Parses "redis://[[user]:password@]host[:port][/db]". 0, or -1 with the reason in why. */
int redis_url_parse(const char *s, redis_url *out, char *why, size_t cap);

/* FNV-1a 64 of n bytes: the shard of a proxy is fnv1a64(canonical URL) % N. Stable across
 * builds, machines and versions: it is part of the configuration's meaning. */
static inline uint64_t fnv1a64(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#endif
