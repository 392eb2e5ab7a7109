/*
 * The selection index of one host, private to the process that owns it (a worker keeps one
 * per host it dispatches to). It lets select_claim (shm/select.h) pick the best K claimable
 * pairs in O(K log N) instead of walking all N cells of the host's row.
 *
 * Every pair of the host is in exactly one place:
 *   - the ready heap: free now as far as the index knows, ordered by score (a max-heap);
 *   - the timer heap: not claimable before a known time (its rate-limit word frees, its
 *     cooldown ends, or it is held by another process and is looked at again), a min-heap;
 *   - out: held by this process (it calls select_index_put after releasing it);
 *   - dead: evicted for this host or dead everywhere (looked at again on the next refresh);
 *   - off: not in the host's pool, or not seen yet.
 * The two heaps share one array (ready from the front, timer from the back), so the index
 * costs 12 bytes per proxy whatever the mix. It is a hint: the shared rate-limit word stays
 * the only truth, every pair is re-read when it leaves a heap, and a stale entry is moved to
 * where it belongs when found (shm/select.c).
 *
 * This file is the data structure only; what goes where is decided by shm/select.c.
 */
#ifndef SCATTER_SHM_SELECT_INDEX_H
#define SCATTER_SHM_SELECT_INDEX_H

#include <stdint.h>

#define SIX_OFF   0xFFFFFFFFu /* pos[]: not indexed */
#define SIX_DEAD  0xFFFFFFFEu /* pos[]: dead for the host */
#define SIX_OUT   0xFFFFFFFDu /* pos[]: held by this process */
#define SIX_TIMER 0x80000000u /* pos[] = heap position | SIX_TIMER: in the timer heap */
#define SIX_PROXY_BITS 24     /* keys carry the proxy index in their low bits */
#define SIX_PROXY_MAX ((1u << SIX_PROXY_BITS) - 1)
#define SIX_READY_KEY_BITS 40 /* ready keys: the caller's order key, 40 bits, above the proxy */
#define SIX_TIME_BITS 38      /* timer keys: ms after base_ms, 38 bits (8 years) */

typedef enum { SIX_WHY_RATELIMIT = 0, SIX_WHY_COOLDOWN = 1 } six_why;

#define SIX_RESERVED_MAX 16 /* pairs one index keeps back for the process's own use at once */

typedef struct select_index {
    uint32_t host;        /* shm host index */
    uint32_t holder;      /* this process's rate-limit holder id */
    uint32_t max;         /* max_proxies: the arrays never grow past it */
    uint32_t cap;         /* entries allocated in ent[] and pos[] */
    uint32_t known;       /* proxies [0, known) have been placed at least once */
    uint32_t n_ready, n_timer;
    uint32_t n_cooling;   /* timer entries that wait for a cooldown (the rest: the rate limit) */
    uint32_t n_dead, n_out;
    uint64_t *ent;        /* ready heap at [0, n_ready), timer heap at [cap - 1 - i] */
    uint32_t *pos;        /* per proxy: SIX_OFF / SIX_DEAD / SIX_OUT / heap position */
    uint64_t base_ms;     /* timer keys count from here */
    uint64_t refresh_ms;  /* select.c: next time every pair is looked at again */
    uint32_t allowed;     /* select.c: the host's source mask at the last refresh */
    uint32_t gen;         /* select.c: the host slot's generation at the last refresh */
    uint64_t rng;         /* select.c: the jitter of ready keys */
    uint32_t n_reserved;  /* select.c: pairs kept out of claims (select_index_reserve) */
    uint32_t reserved[SIX_RESERVED_MAX];
} select_index;

/* An empty index for (host, holder) whose arrays may grow to max_proxies entries. 0 or -EINVAL
 * (max_proxies over SIX_PROXY_MAX + 1). Allocates nothing yet. */
int six_init(select_index *ix, uint32_t host, uint32_t holder, uint32_t max_proxies);
void six_free(select_index *ix);
/* Room for proxies [0, n): 0, -ENOMEM, or -ERANGE past max. New proxies are off. */
int six_reserve(select_index *ix, uint32_t n);
/* Every proxy off, heaps and counts empty; timer keys count from now_ms. */
void six_clear(select_index *ix, uint64_t now_ms);

/* Where a proxy is (a SIX_* value or a heap position). */
static inline uint32_t six_where(const select_index *ix, uint32_t proxy) { return ix->pos[proxy]; }
/* Takes the proxy out of wherever it is and makes it off. */
void six_remove(select_index *ix, uint32_t proxy);
/* Moves it (from anywhere) to dead, out or off. */
void six_set(select_index *ix, uint32_t proxy, uint32_t where);
/* Moves it (from anywhere) to the ready heap with this order key (< 2^40; bigger first). */
void six_ready_push(select_index *ix, uint32_t proxy, uint64_t key);
/* Takes the best ready proxy off the heap (it becomes off); SIX_OFF if the heap is empty. */
uint32_t six_ready_pop(select_index *ix);
/* Moves it (from anywhere) to the timer heap, due at at_ms. */
void six_timer_push(select_index *ix, uint32_t proxy, uint64_t at_ms, six_why why);
/* When the earliest timer entry is due; UINT64_MAX if none. */
uint64_t six_timer_next(const select_index *ix);
/* When the timer entry at heap position i is due. */
uint64_t six_timer_at(const select_index *ix, uint32_t i);
/* Takes the earliest timer entry off if it is due at or before now_ms (it becomes off);
 * SIX_OFF otherwise. */
uint32_t six_timer_pop_due(select_index *ix, uint64_t now_ms);

#endif
