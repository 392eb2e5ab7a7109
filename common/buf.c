#include "common/buf.h"

#include <stdint.h>

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
