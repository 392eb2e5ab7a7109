#include "common/headers.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

hdr_kind hdr_classify(const char *name, size_t n)
{
    if (name_is(name, n, "content-length") || name_is(name, n, "transfer-encoding"))
        return HDR_FRAMING;
    if (name_is(name, n, "host"))
        return HDR_HOST;
    static const char *const hop[] = {"connection", "keep-alive", "te", "trailer", "trailers", "upgrade", "expect"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (name_is(name, n, hop[i]))
            return HDR_HOP;
    /* Proxy-Authorization, Proxy-Connection, ...: meant for a proxy, never for the target */
    if (n >= 6 && strncasecmp(name, "proxy-", 6) == 0)
        return HDR_HOP;
    return HDR_PASS;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int hdr_in_connection_list(const char *list, size_t list_n, const char *name, size_t n)
{
    size_t i = 0;
    while (i < list_n) {
        while (i < list_n && (is_ows(list[i]) || list[i] == ','))
            i++;
        size_t s = i;
        while (i < list_n && list[i] != ',')
            i++;
        size_t e = i;
        while (e > s && is_ows(list[e - 1]))
            e--;
        if (e - s == n && n > 0 && strncasecmp(list + s, name, n) == 0)
            return 1;
    }
    return 0;
}

int hdr_host_matches(const char *value, size_t n, const char *host_key, unsigned default_port)
{
    while (n && is_ows(*value)) {
        value++;
        n--;
    }
    while (n && is_ows(value[n - 1]))
        n--;
    size_t kn = strlen(host_key);
    if (n == kn && strncasecmp(value, host_key, n) == 0)
        return 1;
    /* "example.com:80" for a URL without a port, or "example.com" for one with the default */
    char alt[300];
    const char *colon = strrchr(host_key, ':');
    const char *bracket = strrchr(host_key, ']');
    int key_has_port = colon && (!bracket || colon > bracket);
    int w;
    if (key_has_port) {
        char port[8];
        snprintf(port, sizeof port, ":%u", default_port);
        if (strcmp(colon, port) != 0)
            return 0;
        w = snprintf(alt, sizeof alt, "%.*s", (int)(colon - host_key), host_key);
    } else {
        w = snprintf(alt, sizeof alt, "%s:%u", host_key, default_port);
    }
    return w > 0 && (size_t)w < sizeof alt && n == (size_t)w && strncasecmp(value, alt, n) == 0;
}
