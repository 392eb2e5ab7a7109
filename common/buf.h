/*
 * Growth of a buffer or an array: the next capacity that holds `need`, doubling from the
 * current one (or `first`), never above `max`. The callers keep their own realloc because
 * several of them charge the growth to a budget between choosing and allocating.
 */
#ifndef SCATTER_COMMON_BUF_H
#define SCATTER_COMMON_BUF_H

#include <stddef.h>

/* The capacity to grow to: `cap` itself when `need` already fits; else `cap` (or `first` when
 * `cap` is 0) doubled until it holds `need`, cut to `max`. A result below `need` means `need`
 * is over `max`: the caller refuses (or takes what `max` allows); a result equal to `cap`
 * means no growth is possible. */
size_t buf_next_cap(size_t cap, size_t need, size_t first, size_t max);

/* For a caller with nothing to charge: grows *buf (realloc) to hold `need` bytes, doubling
 * from 1 KiB, never above `max`. 0, or -1 (over max, or out of memory: *buf unchanged). */
int buf_grow(char **buf, size_t *cap, size_t need, size_t max);

#endif
