#include "common/config_snapshot.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

struct cfg_snapshot {
    _Atomic uint32_t seq;   /* master: publication number; slot seq % 2 holds it */
    scatter_config slot[2]; /* master writes slot (seq + 1) % 2, then advances seq */
};

int cfg_snapshot_create(cfg_snapshot **out, const scatter_config *c)
{
    /* nothing is written until the first reload: the workers inherit the starting config at
     * fork, and the untouched slots (1.6 MB each) cost no memory */
    (void)c;
    cfg_snapshot *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s == MAP_FAILED)
        return -errno;
    *out = s;
    return 0;
}

uint32_t cfg_snapshot_publish(cfg_snapshot *s, const scatter_config *c)
{
    uint32_t next = atomic_load_explicit(&s->seq, memory_order_relaxed) + 1;
    memcpy(&s->slot[next % 2], c, sizeof *c);
    atomic_store_explicit(&s->seq, next, memory_order_release);
    return next;
}

int cfg_snapshot_read(const cfg_snapshot *s, scatter_config *out, uint32_t *seq)
{
    for (int tries = 0; tries < 100; tries++) {
        uint32_t a = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (a == 0)
            return -ENOENT; /* nothing published yet: the config at fork is the current one */
        memcpy(out, &s->slot[a % 2], sizeof *out);
        atomic_thread_fence(memory_order_acquire);
        uint32_t b = atomic_load_explicit(&s->seq, memory_order_relaxed);
        /* one newer publication went to the other slot; two may have rewritten ours */
        if (b - a < 2) {
            if (seq)
                *seq = a;
            return 0;
        }
    }
    return -EAGAIN;
}

uint32_t cfg_snapshot_seq(const cfg_snapshot *s)
{
    return atomic_load_explicit(&s->seq, memory_order_acquire);
}

void cfg_snapshot_destroy(cfg_snapshot *s)
{
    if (s)
        munmap(s, sizeof *s);
}
