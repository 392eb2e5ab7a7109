/*
 * The per-(proxy, host) rate-limit word.
 *
 * All the invariant rests on one compare-and-swap: a claim turns "free from time T" (T <= now)
 * into "held by W" atomically, so two processes can never both see the same free word and
 * both take it. Only the holder releases (or the master, for a holder known to be dead), and a
 * release writes the next allowed time, so the interval is enforced by the word itself.
 */
#include "shm/ratelimit.h"

/* The claim time fits in bits 16..62: 47 bits of milliseconds is over 4000 years of uptime. */
#define RL_TIME_MASK ((1ULL << 47) - 1)

bool rl_claim(_Atomic uint64_t *word, uint32_t holder, uint64_t now_ms, uint64_t *next_ms)
{
    if (holder == 0 || holder > 0xffffu) {
        if (next_ms)
            *next_ms = UINT64_MAX;
        return false;
    }
    uint64_t held = RL_INUSE | ((now_ms & RL_TIME_MASK) << 16) | holder;
    uint64_t w = atomic_load_explicit(word, memory_order_relaxed);
    for (;;) {
        if (rl_is_held(w) || w > now_ms) {
            if (next_ms)
                *next_ms = rl_is_held(w) ? UINT64_MAX : w;
            return false;
        }
        /* acq_rel: the new holder must see what the previous holder recorded before release. */
        if (atomic_compare_exchange_weak_explicit(word, &w, held, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return true;
    }
}

bool rl_release(_Atomic uint64_t *word, uint32_t holder, uint64_t sent_ms, uint32_t interval_ms)
{
    uint64_t w = atomic_load_explicit(word, memory_order_relaxed);
    if (!rl_is_held(w) || RL_HOLDER(w) != holder)
        return false;
    uint64_t next = sent_ms == 0 ? 0 : sent_ms + interval_ms;
    if (next & RL_INUSE)
        next = RL_INUSE - 1; /* absurd sent time: stay free-in-the-far-future, never "held" */
    /* Strong CAS, not a store: the master may have freed the word for a holder it believed
     * dead, and a store would then overwrite a newer claim. */
    return atomic_compare_exchange_strong_explicit(word, &w, next, memory_order_release,
                                                   memory_order_relaxed);
}

uint32_t rl_release_holder(shm_table *t, uint32_t holder, uint64_t now_ms)
{
    uint32_t np = atomic_load_explicit(&t->hdr->n_proxies, memory_order_acquire);
    uint32_t nh = atomic_load_explicit(&t->hdr->n_hosts, memory_order_acquire);
    uint32_t n = 0;
    for (uint32_t h = 0; h < nh; h++) {
        uint64_t next = now_ms + atomic_load_explicit(&t->hosts[h].interval_ms,
                                                      memory_order_relaxed);
        for (uint32_t p = 0; p < np; p++) {
            _Atomic uint64_t *word = &shm_cell_at(t, p, h)->rl;
            uint64_t w = atomic_load_explicit(word, memory_order_relaxed);
            if (!rl_is_held(w) || RL_HOLDER(w) != holder)
                continue;
            if (atomic_compare_exchange_strong_explicit(word, &w, next, memory_order_release,
                                                        memory_order_relaxed))
                n++;
        }
    }
    return n;
}

uint32_t rl_count_held(const shm_table *t, uint32_t holder)
{
    uint32_t np = atomic_load_explicit(&t->hdr->n_proxies, memory_order_acquire);
    uint32_t nh = atomic_load_explicit(&t->hdr->n_hosts, memory_order_acquire);
    uint32_t n = 0;
    for (uint32_t h = 0; h < nh; h++) {
        for (uint32_t p = 0; p < np; p++) {
            uint64_t w = atomic_load_explicit(&shm_cell_at(t, p, h)->rl, memory_order_relaxed);
            if (rl_is_held(w) && (holder == 0 || RL_HOLDER(w) == holder))
                n++;
        }
    }
    return n;
}
