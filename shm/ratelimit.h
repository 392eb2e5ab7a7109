/*
 * The rate-limit word: one atomic 64-bit value per (proxy, host) cell.
 *   bit 63 clear: the earliest time (ms, CLOCK_MONOTONIC) the pair may be used next;
 *   bit 63 set:   in use; bits 0..15 = holder id (worker index, 1..65535),
 *                 bits 16..62 = the claim time (ms) for diagnostics.
 * Invariants: at most one holder; a claim succeeds only from a free word whose time is <= now,
 * so no request leaves earlier than the previous request's sent time + interval.
 */
#ifndef SCATTER_SHM_RATELIMIT_H
#define SCATTER_SHM_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include "shm/table.h"

#define RL_INUSE   (1ULL << 63)
#define RL_HOLDER(w) ((uint32_t)((w) & 0xffffu))

static inline bool rl_is_held(uint64_t w) { return (w & RL_INUSE) != 0; }

/* Compare-and-swap from a free word with time <= now to "held by holder". True if ours.
 * On false, *next_ms (if non-NULL) is the time the word frees up (UINT64_MAX if held). */
bool rl_claim(_Atomic uint64_t *word, uint32_t holder, uint64_t now_ms, uint64_t *next_ms);
/* Releases a word we hold: next use allowed at sent_ms + interval_ms. When the request never
 * reached the target, pass sent_ms = 0: the pair is free at once (the previous use already
 * lay an interval behind the claim). Returns false (and changes nothing) if not held by us. */
bool rl_release(_Atomic uint64_t *word, uint32_t holder, uint64_t sent_ms, uint32_t interval_ms);
/* Master, after a worker died: every word held by `holder` becomes free at now + the host's
 * interval (we cannot know whether its request left, so assume it left now). Returns the count. */
uint32_t rl_release_holder(shm_table *t, uint32_t holder, uint64_t now_ms);
/* Number of words currently held by `holder` (0 = any holder). */
uint32_t rl_count_held(const shm_table *t, uint32_t holder);

#endif
