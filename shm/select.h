/*
 * Scoring and candidate selection (shm/README.md, "Selection"; docs/ARCHITECTURE.md, step 4
 * of "A task's life"):
 *   score = w_aff * affinity + w_glob * global + w_rec * recency  (+ a small random term)
 * affinity = cell windowed success rate (0.5 with no data); global = proxy success rate over
 * all hosts (0.5 with no data); recency = 1 / (1 + minutes since the cell's last success)
 * (0 if never). Lower EWMA latency breaks ties. Weights in thousandths so the hot path is
 * integer arithmetic.
 */
#ifndef SCATTER_SHM_SELECT_H
#define SCATTER_SHM_SELECT_H

#include <stdint.h>
#include "shm/select_index.h"
#include "shm/table.h"

typedef struct {
    uint32_t w_affinity;  /* thousandths, default 500 */
    uint32_t w_global;    /* default 300 */
    uint32_t w_recency;   /* default 200 */
    uint32_t jitter;      /* max random term in score units (score is 0..1,000,000), default 20000 */
    /* Connection affinity: with home_workers > 1, proxy i's home is worker i % home_workers + 1.
     * A pair whose home worker has tasks of the host queued is claimable by another worker only
     * home_grace_ms after it freed, so each pair's tunnel lives in one worker's connection cache
     * instead of every worker opening its own. 0 or 1 = off (default). The grace used is at
     * most the host's interval / 25 (none without an interval). */
    uint32_t home_workers;
    uint32_t home_grace_ms;
    /* Score units added to a pair whose home is the caller (home_workers > 1): among pairs
     * within this much of each other a worker takes its own, so each worker's connection cache
     * holds its half of the fleet instead of all of it. 0 = off (default). */
    uint32_t home_bonus;
} select_params;

void select_params_default(select_params *p);

/* Score of a pair in millionths (0..1,000,000 before jitter). */
uint32_t select_score(const shm_table *t, uint32_t proxy, uint32_t host, uint64_t now_ms,
                      const select_params *p);

typedef struct {
    uint32_t eligible;       /* pairs in the pool, not dead, not cooling: claimable or waiting for
                              * their rate-limit word (held ones included) */
    uint32_t claimable;      /* of those, free now as far as the index knows (after this call) */
    uint32_t dead, cooling;  /* pairs of the pool in each state */
    uint32_t skip_ratelimit, skip_cooldown; /* claims this call missed, by cause: a pair found
                              * taken or cooling since it was indexed, a lost CAS, or k larger
                              * than what was free */
    uint64_t next_free_ms;   /* earliest time a waiting pair may be free, or the index's next
                              * refresh if that comes first; UINT64_MAX: k = 0 or no such host */
} select_stats;

/* An empty index of host's pairs for the process whose rate-limit holder id is `holder`; it
 * fills itself on the first select_claim. 0 or -EINVAL. Free with six_free. */
int select_index_init(select_index *ix, const shm_table *t, uint32_t host, uint32_t holder);

/* Picks up to k (<= SC_RACE_MAX) proxies for the index's host: eligible ones whose rate-limit
 * word can be claimed now, best score first, claiming each for the index's holder (a lost CAS
 * moves on to the next best). Writes claimed proxy indexes to out[], best first; returns how
 * many (0..k). `rnd` seeds the jitter term. `st` (optional) says what the host's pool looks
 * like and, when none could be claimed, when one will be. A pair held back for its home worker
 * counts as rate-limited, free at its free time + home_grace_ms. O(K log N) per call, plus
 * O(log N) for each pair whose time came since the last call. */
uint32_t select_claim(shm_table *t, select_index *ix, uint32_t k, uint64_t now_ms,
                      const select_params *p, uint64_t rnd, uint32_t *out, select_stats *st);

/* After the caller released (rl_release) a pair it claimed through this index: puts it back
 * where its word says. A release not reported is found by the next refresh (2 s). */
void select_index_put(shm_table *t, select_index *ix, uint32_t proxy, uint64_t now_ms,
                      const select_params *p);

/* Keeps the pair out of this index's claims until select_index_unreserve, whatever its word
 * says: the process wants it for itself (a CONNECT tunnel waiting for its pair's next slot
 * must not lose it to a task of its own worker). 0, or -ENOSPC with SIX_RESERVED_MAX kept. */
int select_index_reserve(select_index *ix, uint32_t proxy);

/* Ends a reservation and puts the pair where its word says (as select_index_put). */
void select_index_unreserve(shm_table *t, select_index *ix, uint32_t proxy, uint64_t now_ms,
                            const select_params *p);

/* When the index expects the pair to be claimable: now_ms if it is free (or not indexed yet:
 * the next claim looks at it), its timer's time if it waits, UINT64_MAX if it is held by this
 * process, dead or outside the pool. */
uint64_t select_index_free_at(const select_index *ix, uint32_t proxy, uint64_t now_ms);

#endif
