/*
 * Worker policy: the racing decisions of docs/RACING.md (how many proxies a round claims and
 * keeps, when the next one joins, which proxy a straggling round takes, a proxy's estimated
 * chance of success) as pure functions over plain numbers, so each rule is pinned by a unit
 * test (tests/test_policy.c) instead of only by the farm. The scheduler (sched.c) and the
 * host's hedge delay (worker.c) read the shared table and the task, call these, and keep the
 * mechanics: claiming, releasing, timers, queues.
 */
#ifndef SCATTER_WORKER_POLICY_H
#define SCATTER_WORKER_POLICY_H

#include <stdint.h>

#define POLICY_PRIOR_PERMILLE 300        /* cold start: most proxies on a free list fail */
#define POLICY_PRIOR_WEIGHT 2            /* pseudo-samples of the prior */
#define POLICY_TARGET_ABUNDANT 970       /* permille: slots to spare, buy latency */
#define POLICY_TARGET_SCARCE 0           /* permille: slots are the bottleneck, so K = race_width_min */
#define POLICY_ABUNDANT_FACTOR 4         /* free slots per queued task before slots count as abundant */
#define POLICY_LAST_ROUNDS 2             /* a task's last rounds race at the abundant target */
#define POLICY_HEDGE_MIN_SAMPLES 16      /* winning latencies before a host has a hedge delay */
#define POLICY_WIN_RING 64               /* winning latencies kept per host */
#define POLICY_HEDGE_EVERY 8             /* wins between two recomputations of the quantile */
#define POLICY_STRAGGLER_MIN_PERMILLE 700 /* estimated success a straggler's extra proxy needs */
#define POLICY_STRAGGLER_MAX 2           /* straggler hedges per round, on top of its K */
#define POLICY_STRAGGLER_COLD_MS 100     /* straggler check interval while the host has no hedge delay */

/* A host's racing settings with the task's own width: what the width rules read. */
typedef struct {
    uint32_t task_width; /* the task's own race_width; 0: the host's rule */
    uint32_t adaptive;   /* adaptive_race */
    uint32_t hedged;     /* race_mode = hedged */
    uint32_t width;      /* race_width (used when not adaptive) */
    uint32_t width_min;  /* race_width_min */
    uint32_t width_max;  /* race_width_max */
} policy_race;

/* Where a running round stands. */
typedef struct {
    uint32_t n_running; /* attempts running */
    uint32_t started;   /* attempts started this round */
    uint32_t k;         /* attempts the round may use (hedges join up to it) */
    uint32_t straggled; /* straggler hedges already added to the round */
    uint32_t probe;     /* the round is the host's circuit probe */
} policy_round;

/* Estimated chance, in thousandths, that a proxy succeeds for a host: its windowed record for
 * the host (n attempts, s successes), else its global record, else the prior; either record is
 * shrunk toward the prior by POLICY_PRIOR_WEIGHT pseudo-samples. */
uint32_t policy_success_permille(uint64_t host_n, uint64_t host_s, uint64_t global_success, uint64_t global_fail);

/* How many proxies a round tries to claim: 1 for a probe, else the task's own width, else
 * race_width_max (adaptive) or race_width; never above `room` (in-flight attempts still
 * allowed) nor race_max. */
uint32_t policy_claim_k(const policy_race *r, int probe, uint64_t room, uint32_t race_max);

/* 1 if the adaptive rule trims the n claimed proxies (no width of the task's own, adaptive_race,
 * more than one claimed). */
int policy_adapts(const policy_race *r, uint32_t n);

/* The success target, in thousandths, for a round: abundant while what is left to spare beyond
 * this round (the claimable pairs left, or 0 when the worker is CPU-bound) exceeds
 * POLICY_ABUNDANT_FACTOR times the host's queued tasks, or in
 * a task's last POLICY_LAST_ROUNDS rounds (rounds_done: rounds started before this one;
 * max_attempts 0 = unlimited); scarce otherwise. */
uint32_t policy_target_permille(uint32_t spare, uint32_t queued, uint32_t rounds_done, uint32_t max_attempts);

/* How many of the n claimed proxies (best first, estimated success p_permille[i]) to keep: the
 * shortest prefix whose chance that one succeeds, 1 - prod(1 - p_i), reaches target_permille,
 * and at least width_min; never more than n. */
uint32_t policy_keep(const uint32_t *p_permille, uint32_t n, uint32_t width_min, uint32_t target_permille);

/* How many of a round's n kept proxies start at once: all of them without a hedge delay (race_mode
 * = all, a host without enough wins, a probe), else only the best one. */
uint32_t policy_start_now(uint32_t n, uint32_t hedge_ms, int probe);

/* Adds a winning latency to a host's ring (lat[POLICY_WIN_RING], *n filled, *pos next slot).
 * 1 if the hedge quantile is due: the host has POLICY_HEDGE_MIN_SAMPLES wins and this is every
 * POLICY_HEDGE_EVERY-th slot of the ring. */
int policy_win_push(uint32_t *lat, uint32_t *n, uint32_t *pos, uint32_t latency_ms);

/* The quantile_pct percentile of the n latencies (the value at rank (n - 1) * pct / 100 in
 * ascending order), at least min_ms. lat is not changed. */
uint32_t policy_hedge_quantile(const uint32_t *lat, uint32_t n, uint32_t quantile_pct, uint32_t min_ms);

/* A host's hedge delay in ms given its cached quantile, or 0 (fire the whole round at once):
 * race_mode = all, fewer than POLICY_HEDGE_MIN_SAMPLES wins, or no quantile yet. */
uint32_t policy_hedge_ms(uint32_t hedged, uint32_t wins, uint32_t cached_ms);

/* 1 if a round may still get a straggler hedge: not a probe, no width of the task's own,
 * adaptive and hedged, fewer than POLICY_STRAGGLER_MAX added, fewer than race_max running. */
int policy_straggler_ok(const policy_race *r, const policy_round *rd, uint32_t race_max);

/* 1 if a running round's hedge timer has anything left to do. */
int policy_may_hedge(const policy_race *r, const policy_round *rd, uint32_t race_max);

typedef enum { POLICY_HEDGE_NONE, POLICY_HEDGE_NEXT, POLICY_HEDGE_STRAGGLER } policy_hedge_action;

/* What a round's hedge timer does when it fires: the next planned attempt joins while the
 * round has not used its K; else a straggler hedge when no task of the host is queued here. */
policy_hedge_action policy_hedge_fire(const policy_race *r, const policy_round *rd, uint32_t queued,
                                      uint32_t race_max);

/* When, in ms, to look at a running round again: after the hedge delay; while the host has none
 * (hedge_ms 0), after POLICY_STRAGGLER_COLD_MS; and when only a straggler check is left
 * (rd->started >= rd->k) and tasks are queued, at most every POLICY_STRAGGLER_COLD_MS. */
uint32_t policy_hedge_timer_ms(uint32_t hedge_ms, const policy_round *rd, uint32_t queued);

/* Which of n claimed candidates (best first) a straggling round takes: the first whose
 * estimated success is at least POLICY_STRAGGLER_MIN_PERMILLE and whose EWMA latency is known
 * (non-zero) and no longer than the round has waited (waited_ms, at least hedge_ms). -1 if none. */
int policy_straggler_pick(const uint32_t *p_permille, const uint32_t *lat_ms, uint32_t n, uint64_t waited_ms,
                          uint32_t hedge_ms);

#endif
