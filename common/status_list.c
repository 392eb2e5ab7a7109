#include "common/status_list.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One token: "404", "4xx" or "400-404". 0 with [*lo, *hi], or -EINVAL. */
static int parse_token(const char *tok, size_t n, long *lo, long *hi)
{
    if (n == 3 && (tok[1] | 0x20) == 'x' && (tok[2] | 0x20) == 'x') {
        if (tok[0] < '1' || tok[0] > '5')
            return -EINVAL;
        *lo = (tok[0] - '0') * 100L;
        *hi = *lo + 99;
        return 0;
    }
    /* strtol stops at the ',' or ' ' that ends the token; anything else left in it is junk */
    char *end;
    *lo = *hi = strtol(tok, &end, 10);
    if (end == tok)
        return -EINVAL;
    if (*end == '-') {
        const char *second = end + 1;
        *hi = strtol(second, &end, 10);
        if (end == second)
            return -EINVAL;
    }
    if (end != tok + n || *lo < STATUS_LIST_MIN || *hi > STATUS_LIST_MAX || *lo > *hi)
        return -EINVAL;
    return 0;
}

int status_list_parse(const char *spec, uint8_t table[STATUS_LIST_MAX + 1], uint8_t mark)
{
    const char *p = spec;
    for (;;) {
        p += strspn(p, ", ");
        if (!*p)
            return 0;
        size_t n = strcspn(p, ", ");
        long lo, hi;
        if (parse_token(p, n, &lo, &hi))
            return -EINVAL;
        if (table)
            for (long s = lo; s <= hi; s++)
                table[s] = mark;
        p += n;
    }
}
