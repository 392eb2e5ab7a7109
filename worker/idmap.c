/* Task-by-id map of one connection (see idmap.h). Keys are read from the tasks themselves. */
#include "worker/idmap.h"
#include "worker/task.h"

#include "common/buf.h"

#include <stdlib.h>

static uint32_t home(uint64_t id, uint32_t cap)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL; /* spread sequential client ids */
    id ^= id >> 33;
    return (uint32_t)id & (cap - 1);
}

task *idmap_get(const idmap *m, uint64_t id)
{
    if (!m->cap)
        return NULL;
    for (uint32_t i = home(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
        task *t = m->slot[i];
        if (!t)
            return NULL;
        if (t->id == id)
            return t;
    }
}

static void insert(task **slot, uint32_t cap, task *t)
{
    uint32_t i = home(t->id, cap);
    while (slot[i])
        i = (i + 1) & (cap - 1);
    slot[i] = t;
}

int idmap_put(idmap *m, task *t)
{
    if ((m->n + 1) * 2 > m->cap) { /* keep the load at most 1/2 */
        uint32_t nc = (uint32_t)buf_next_cap(m->cap, (m->n + 1) * 2, 16, UINT32_MAX / 2 + 1);
        task **ns = calloc(nc, sizeof *ns);
        if (!ns)
            return -1;
        for (uint32_t i = 0; i < m->cap; i++)
            if (m->slot[i])
                insert(ns, nc, m->slot[i]);
        free(m->slot);
        m->slot = ns;
        m->cap = nc;
    }
    insert(m->slot, m->cap, t);
    m->n++;
    return 0;
}

void idmap_del(idmap *m, uint64_t id)
{
    if (!m->cap)
        return;
    uint32_t mask = m->cap - 1, i = home(id, m->cap);
    while (m->slot[i] && m->slot[i]->id != id)
        i = (i + 1) & mask;
    if (!m->slot[i])
        return;
    m->slot[i] = NULL;
    m->n--;
    /* backward shift: move later entries of the run into the hole if their home allows */
    for (uint32_t j = (i + 1) & mask; m->slot[j]; j = (j + 1) & mask) {
        uint32_t h = home(m->slot[j]->id, m->cap);
        /* entry at j may move to i if i lies cyclically in [h, j) */
        if (((j - h) & mask) >= ((j - i) & mask)) {
            m->slot[i] = m->slot[j];
            m->slot[j] = NULL;
            i = j;
        }
    }
}

void idmap_free(idmap *m)
{
    free(m->slot);
    m->slot = NULL;
    m->cap = m->n = 0;
}
