#include "common/buf.h"

#include <stdint.h>
#include <stdlib.h>

int buf_grow(char **buf, size_t *cap, size_t need, size_t max)
{
    if (need <= *cap)
        return 0;
    size_t nc = buf_next_cap(*cap, need, 1024, max);
    if (nc < need)
        return -1;
    char *nb = realloc(*buf, nc);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = nc;
    return 0;
}

size_t buf_next_cap(size_t cap, size_t need, size_t first, size_t max)
{
    if (need <= cap)
        return cap;
    size_t nc = cap ? cap : (first ? first : 1);
    while (nc < need && nc <= max / 2)
        nc *= 2;
    if (nc < need || nc > max)
        nc = max; /* doubling stopped at max: max is the most it may hold */
    return nc < cap ? cap : nc;
}
