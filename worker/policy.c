/*
 * The racing decisions (docs/RACING.md) over plain numbers; the reasons for each rule are
 * there and in policy.h. Nothing here reads the clock, the shared table or a task.
 */
#include "worker/policy.h"

#include <string.h>

uint32_t policy_success_permille(uint64_t host_n, uint64_t host_s, uint64_t global_success, uint64_t global_fail)
{
    uint64_t n = host_n, s = host_s;
    if (n == 0) {
        s = global_success;
        n = global_success + global_fail;
    }
    return (uint32_t)((s * 1000 + POLICY_PRIOR_PERMILLE * POLICY_PRIOR_WEIGHT) / (n + POLICY_PRIOR_WEIGHT));
}

uint32_t policy_claim_k(const policy_race *r, int probe, uint64_t room, uint32_t race_max)
{
    /* a probe asks one question: does one proxy get a good answer now */
    uint32_t k = probe ? 1 : r->task_width ? r->task_width : r->adaptive ? r->width_max : r->width;
    if (k > room)
        k = (uint32_t)room;
    if (k > race_max)
        k = race_max;
    return k;
}

int policy_adapts(const policy_race *r, uint32_t n)
{
    return !r->task_width && r->adaptive && n > 1;
}

uint32_t policy_target_permille(uint32_t spare, uint32_t queued, uint32_t rounds_done, uint32_t max_attempts)
{
    /* a task's last rounds race wide whatever the load: max_attempts counts rounds, and
     * single-proxy rounds on a cold, mostly dead list would otherwise fail tasks that one more
     * proxy per round would have completed; few tasks get this far, so slots barely notice */
    if (max_attempts && rounds_done + POLICY_LAST_ROUNDS >= max_attempts)
        return POLICY_TARGET_ABUNDANT;
    /* abundant only with a wide margin: right after a burst of submissions the queue is still
     * filling, and racing wide then burns the slots the next tasks need */
    return spare > POLICY_ABUNDANT_FACTOR * queued ? POLICY_TARGET_ABUNDANT : POLICY_TARGET_SCARCE;
}

uint32_t policy_keep(const uint32_t *p_permille, uint32_t n, uint32_t width_min, uint32_t target_permille)
{
    uint64_t miss = 1000000; /* millionths: chance that every kept attempt fails */
    uint32_t keep = 0;
    while (keep < n) {
        uint32_t p = p_permille[keep] > 1000 ? 1000 : p_permille[keep];
        miss = miss * (1000 - p) / 1000;
        keep++;
        if (keep >= width_min && 1000000 - miss >= (uint64_t)target_permille * 1000)
            break;
    }
    return keep;
}

uint32_t policy_start_now(uint32_t n, uint32_t hedge_ms, int probe)
{
    return probe || !hedge_ms ? n : (n ? 1 : 0);
}

int policy_win_push(uint32_t *lat, uint32_t *n, uint32_t *pos, uint32_t latency_ms)
{
    lat[*pos] = latency_ms;
    *pos = (*pos + 1) % POLICY_WIN_RING;
    if (*n < POLICY_WIN_RING)
        (*n)++;
    /* every POLICY_HEDGE_EVERY wins: the sort is cheap but not free */
    return *n >= POLICY_HEDGE_MIN_SAMPLES && *pos % POLICY_HEDGE_EVERY == 0;
}

uint32_t policy_hedge_quantile(const uint32_t *lat, uint32_t n, uint32_t quantile_pct, uint32_t min_ms)
{
    if (n == 0)
        return min_ms;
    if (n > POLICY_WIN_RING)
        n = POLICY_WIN_RING;
    uint32_t v[POLICY_WIN_RING];
    memcpy(v, lat, n * sizeof v[0]);
    for (uint32_t i = 1; i < n; i++) /* insertion sort: POLICY_WIN_RING values at most */
        for (uint32_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint32_t x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    uint32_t q = v[(uint64_t)(n - 1) * (quantile_pct > 100 ? 100 : quantile_pct) / 100];
    return q > min_ms ? q : min_ms;
}

uint32_t policy_hedge_ms(uint32_t hedged, uint32_t wins, uint32_t cached_ms)
{
    if (!hedged || wins < POLICY_HEDGE_MIN_SAMPLES)
        return 0;
    return cached_ms;
}

int policy_straggler_ok(const policy_race *r, const policy_round *rd, uint32_t race_max)
{
    /* a probe asks one question, a client's explicit race width is kept, and race_mode = all
     * does not hedge at all */
    return !rd->probe && !r->task_width && r->adaptive && r->hedged && rd->straggled < POLICY_STRAGGLER_MAX &&
           rd->n_running < race_max;
}

int policy_may_hedge(const policy_race *r, const policy_round *rd, uint32_t race_max)
{
    return rd->n_running && (rd->started < rd->k || policy_straggler_ok(r, rd, race_max));
}

policy_hedge_action policy_hedge_fire(const policy_race *r, const policy_round *rd, uint32_t queued,
                                      uint32_t race_max)
{
    if (rd->started < rd->k)
        return POLICY_HEDGE_NEXT;
    /* a straggler hedge only takes a slot no queued task of the host is waiting for */
    if (queued == 0 && policy_straggler_ok(r, rd, race_max))
        return POLICY_HEDGE_STRAGGLER;
    return POLICY_HEDGE_NONE;
}

uint32_t policy_hedge_timer_ms(uint32_t hedge_ms, const policy_round *rd, uint32_t queued)
{
    /* cold start: the round fired all its K at once, but a task that went to a silent proxy in
     * the first wave still needs a straggler check before a connect timeout; with tasks queued
     * the straggler check cannot act yet, and a busy worker would otherwise re-arm every
     * running task's timer every few milliseconds */
    if (!hedge_ms || (rd->started >= rd->k && queued && hedge_ms < POLICY_STRAGGLER_COLD_MS))
        return POLICY_STRAGGLER_COLD_MS;
    return hedge_ms;
}

int policy_straggler_pick(const uint32_t *p_permille, const uint32_t *lat_ms, uint32_t n, uint64_t waited_ms,
                          uint32_t hedge_ms)
{
    if (waited_ms < hedge_ms)
        waited_ms = hedge_ms;
    for (uint32_t i = 0; i < n; i++)
        if (p_permille[i] >= POLICY_STRAGGLER_MIN_PERMILLE && lat_ms[i] && lat_ms[i] <= waited_ms)
            return (int)i;
    return -1;
}
