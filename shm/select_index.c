/*
 * The selection index's data structure (select_index.h): two binary heaps in one array, with
 * each proxy's position so an entry can be moved in O(log N) when the pair changes state.
 * The ready heap keeps the biggest key on top, the timer heap the smallest.
 */
#include "shm/select_index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PROXY_MASK ((uint64_t)SIX_PROXY_MAX)
#define TIME_MAX ((1ULL << SIX_TIME_BITS) - 1)

int six_init(select_index *ix, uint32_t host, uint32_t holder, uint32_t max_proxies)
{
    memset(ix, 0, sizeof *ix);
    if (max_proxies == 0 || max_proxies - 1 > SIX_PROXY_MAX)
        return -EINVAL;
    ix->host = host;
    ix->holder = holder;
    ix->max = max_proxies;
    return 0;
}

void six_free(select_index *ix)
{
    free(ix->ent);
    free(ix->pos);
    ix->ent = NULL;
    ix->pos = NULL;
    ix->cap = ix->known = 0;
}

int six_reserve(select_index *ix, uint32_t n)
{
    if (n <= ix->cap)
        return 0;
    if (n > ix->max)
        return -ERANGE;
    uint32_t cap = ix->cap ? ix->cap : 64;
    if (cap > ix->max)
        cap = ix->max;
    while (cap < n)
        cap = cap > ix->max / 2 ? ix->max : cap * 2;
    uint64_t *ent = realloc(ix->ent, (size_t)cap * sizeof *ent);
    if (ent == NULL)
        return -ENOMEM;
    ix->ent = ent;
    uint32_t *pos = realloc(ix->pos, (size_t)cap * sizeof *pos);
    if (pos == NULL)
        return -ENOMEM; /* ent grew, which is harmless: cap still tells the truth */
    ix->pos = pos;
    /* the timer heap lives at the back: keep it there */
    memmove(ent + cap - ix->n_timer, ent + ix->cap - ix->n_timer, (size_t)ix->n_timer * sizeof *ent);
    for (uint32_t i = ix->cap; i < cap; i++)
        pos[i] = SIX_OFF;
    ix->cap = cap;
    return 0;
}

void six_clear(select_index *ix, uint64_t now_ms)
{
    for (uint32_t i = 0; i < ix->cap; i++)
        ix->pos[i] = SIX_OFF;
    ix->n_ready = ix->n_timer = ix->n_cooling = ix->n_dead = ix->n_out = 0;
    ix->known = 0;
    ix->base_ms = now_ms;
}

/* Heap h: 0 = ready (max on top), 1 = timer (min on top). */
static inline uint64_t *slot(select_index *ix, int h, uint32_t i)
{
    return h ? &ix->ent[ix->cap - 1 - i] : &ix->ent[i];
}

static inline int above(int h, uint64_t a, uint64_t b)
{
    return h ? a < b : a > b;
}

static inline void put_at(select_index *ix, int h, uint32_t i, uint64_t key)
{
    *slot(ix, h, i) = key;
    ix->pos[key & PROXY_MASK] = h ? (i | SIX_TIMER) : i;
}

static void sift_up(select_index *ix, int h, uint32_t i)
{
    uint64_t key = *slot(ix, h, i);
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        uint64_t pk = *slot(ix, h, parent);
        if (!above(h, key, pk))
            break;
        put_at(ix, h, i, pk);
        i = parent;
    }
    put_at(ix, h, i, key);
}

static void sift_down(select_index *ix, int h, uint32_t i, uint32_t n)
{
    uint64_t key = *slot(ix, h, i);
    for (;;) {
        uint32_t l = 2 * i + 1;
        if (l >= n)
            break;
        uint32_t c = l;
        if (l + 1 < n && above(h, *slot(ix, h, l + 1), *slot(ix, h, l)))
            c = l + 1;
        uint64_t ck = *slot(ix, h, c);
        if (!above(h, ck, key))
            break;
        put_at(ix, h, i, ck);
        i = c;
    }
    put_at(ix, h, i, key);
}

/* Removes heap entry i of heap h. */
static void heap_delete(select_index *ix, int h, uint32_t i)
{
    uint32_t *n = h ? &ix->n_timer : &ix->n_ready;
    uint64_t gone = *slot(ix, h, i);
    if (h && ((gone >> SIX_PROXY_BITS) & 3) == SIX_WHY_COOLDOWN)
        ix->n_cooling--;
    ix->pos[gone & PROXY_MASK] = SIX_OFF;
    (*n)--;
    if (i == *n)
        return;
    uint64_t last = *slot(ix, h, *n);
    *slot(ix, h, i) = last;
    ix->pos[last & PROXY_MASK] = h ? (i | SIX_TIMER) : i;
    if (i > 0 && above(h, last, *slot(ix, h, (i - 1) / 2)))
        sift_up(ix, h, i);
    else
        sift_down(ix, h, i, *n);
}

void six_remove(select_index *ix, uint32_t proxy)
{
    uint32_t w = ix->pos[proxy];
    if (w == SIX_OFF)
        return;
    if (w == SIX_DEAD)
        ix->n_dead--;
    else if (w == SIX_OUT)
        ix->n_out--;
    else if (w & SIX_TIMER)
        heap_delete(ix, 1, w & ~SIX_TIMER);
    else
        heap_delete(ix, 0, w);
    ix->pos[proxy] = SIX_OFF;
}

void six_set(select_index *ix, uint32_t proxy, uint32_t where)
{
    six_remove(ix, proxy);
    if (where == SIX_DEAD)
        ix->n_dead++;
    else if (where == SIX_OUT)
        ix->n_out++;
    else
        where = SIX_OFF;
    ix->pos[proxy] = where;
}

void six_ready_push(select_index *ix, uint32_t proxy, uint64_t key)
{
    six_remove(ix, proxy);
    key &= (1ULL << SIX_READY_KEY_BITS) - 1;
    *slot(ix, 0, ix->n_ready) = (key << SIX_PROXY_BITS) | proxy;
    sift_up(ix, 0, ix->n_ready++);
}

uint32_t six_ready_pop(select_index *ix)
{
    if (ix->n_ready == 0)
        return SIX_OFF;
    uint32_t proxy = (uint32_t)(*slot(ix, 0, 0) & PROXY_MASK);
    heap_delete(ix, 0, 0);
    return proxy;
}

void six_timer_push(select_index *ix, uint32_t proxy, uint64_t at_ms, six_why why)
{
    six_remove(ix, proxy);
    uint64_t rel = at_ms > ix->base_ms ? at_ms - ix->base_ms : 0;
    if (rel > TIME_MAX)
        rel = TIME_MAX;
    if (why == SIX_WHY_COOLDOWN)
        ix->n_cooling++;
    *slot(ix, 1, ix->n_timer) = (rel << (SIX_PROXY_BITS + 2)) | ((uint64_t)why << SIX_PROXY_BITS) | proxy;
    sift_up(ix, 1, ix->n_timer++);
}

uint64_t six_timer_at(const select_index *ix, uint32_t i)
{
    return ix->base_ms + (ix->ent[ix->cap - 1 - i] >> (SIX_PROXY_BITS + 2));
}

uint64_t six_timer_next(const select_index *ix)
{
    return ix->n_timer ? six_timer_at(ix, 0) : UINT64_MAX;
}

uint32_t six_timer_pop_due(select_index *ix, uint64_t now_ms)
{
    if (six_timer_next(ix) > now_ms)
        return SIX_OFF;
    uint32_t proxy = (uint32_t)(*slot(ix, 1, 0) & PROXY_MASK);
    heap_delete(ix, 1, 0);
    return proxy;
}
