#include "common/redis_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *why, size_t cap, const char *msg)
{
    snprintf(why, cap, "%s", msg);
    return -1;
}

int redis_url_parse(const char *s, redis_url *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (strncmp(s, "redis://", 8) != 0)
        return fail(why, cap, "expected redis://[:password@]host[:port][/db]");
    const char *p = s + 8;
    const char *slash = strchr(p, '/');
    const char *end = slash ? slash : p + strlen(p);
    const char *at = memrchr(p, '@', (size_t)(end - p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            return fail(why, cap, "credentials must be [user]:password@ (a password is required)");
        size_t n = (size_t)(at - colon - 1);
        if (n == 0 || n >= sizeof out->password)
            return fail(why, cap, "the password is empty or too long");
        memcpy(out->password, colon + 1, n);
        p = at + 1;
    }
    const char *hs = p, *he;
    const char *portp = NULL;
    if (*p == '[') {
        he = memchr(p, ']', (size_t)(end - p));
        if (!he)
            return fail(why, cap, "an IPv6 address needs its closing ']'");
        hs = p + 1;
        if (he + 1 < end) {
            if (he[1] != ':')
                return fail(why, cap, "expected ':port' after ']'");
            portp = he + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        he = colon ? colon : end;
        portp = colon ? colon + 1 : NULL;
    }
    size_t hn = (size_t)(he - hs);
    if (hn == 0 || hn >= sizeof out->host)
        return fail(why, cap, "the host is empty or too long");
    memcpy(out->host, hs, hn);
    if (portp) {
        char *pe;
        long v = strtol(portp, &pe, 10);
        if (pe == portp || pe != end || v < 1 || v > 65535)
            return fail(why, cap, "the port must be 1-65535");
        out->port = (int)v;
    }
    if (slash && slash[1]) {
        char *de;
        unsigned long v = strtoul(slash + 1, &de, 10);
        if (*de || v > 1000000)
            return fail(why, cap, "the database must be a number after '/'");
        out->db = (unsigned)v;
    }
    return 0;
}
