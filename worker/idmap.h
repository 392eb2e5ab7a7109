/*
 * A connection's live tasks by client id: open addressing with linear probing and
 * backward-shift deletion (no tombstones), grown by doubling. Submit checks for a duplicate id
 * and cancel looks a task up; a list walk made a 2,000-task window O(n^2) per connection.
 */
#ifndef SCATTER_WORKER_IDMAP_H
#define SCATTER_WORKER_IDMAP_H

#include <stdint.h>

struct task;

typedef struct {
    struct task **slot;
    uint32_t cap, n; /* cap: 0 or a power of two */
} idmap;

struct task *idmap_get(const idmap *m, uint64_t id);
/* 0, or -1 when memory runs out (the map is unchanged). The id must not be present. */
int idmap_put(idmap *m, struct task *t);
void idmap_del(idmap *m, uint64_t id);
void idmap_free(idmap *m);

#endif
