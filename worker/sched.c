/*
 * The scheduler: per-host FIFO queues and the dispatch pass that turns queued tasks into
 * races. It runs from an ev_prepare watcher, at most once per loop iteration and only when
 * something changed (a task queued, an attempt ended, a timer fired), so an idle worker does
 * nothing at all.
 *
 * When a host has queued tasks but no slot can be claimed now, its queue waits on one timer
 * (the host's "delayed" state) set to the earliest time a rate-limited slot frees, as the
 * selection scan reports it; libev's timer heap orders these waits. Slots held by an attempt
 * in another worker have no known end, so then we look again after HELD_POLL_MS; our own
 * attempts ending wake the scheduler directly.
 *
 * Hosts take turns, one task per host per pass, so a host whose proxies are all cooling or
 * dead never holds up another: its queue just waits on its own timer.
 *
 * Adaptive race width. Every attempt that reaches the target spends one rate-limit slot of its
 * (proxy, host) pair for a whole interval, winner or loser, so K = 3 on proxies that always
 * succeed throws away two thirds of the ceiling. The rule: claim the best race_width_max
 * candidates, estimate each one's chance of success p_i (its windowed rate for this host,
 * else its global rate, else a cold-start prior, each shrunk toward the prior while samples
 * are few), and keep the shortest best-first prefix whose chance that at least one succeeds,
 * 1 - prod(1 - p_i), reaches a target; the rest are released untouched. While claimable slots
 * outnumber the host's queued tasks the target is high (0.97: slots to spare buy latency, and
 * cold start and low success rates widen K by themselves while proven proxies narrow it).
 * When tasks compete for slots, every extra attempt that reaches the target takes a slot
 * another task could have used, so K = race_width_min (1): measured on the farm (docs/RACING.md)
 * this beat every fixed K and every higher target on two proxy mixes. A task's last two
 * rounds (max_attempts counts rounds) race wide anyway, so K = 1 does not cost completions. K never exceeds the
 * claimable healthy count, since only claimable proxies can be picked.
 *
 * Hedged racing (race_mode = hedged): K is decided the same way, but only the best proxy is
 * started at once; each further attempt joins when the hedge delay (a quantile of the host's
 * recent winning latencies) passes without a good answer, or at once when every running
 * attempt already failed. A proxy that answers fast, which is most of them once the host is
 * warm, then spends one slot per task instead of K. Until the host has enough samples the
 * round fires all K at once, as in race_mode = all.
 *
 * The decisions (K, the targets, the hedge delay, the straggler's proxy) are policy.c's pure
 * functions; this file gathers their inputs and does the claiming, releasing and timing.
 */
#include "worker/task.h"
#include "worker/policy.h"

#include "shm/health.h"
#include "shm/ratelimit.h"
#include "shm/select.h"
#include "shm/session.h"

#include <stdlib.h>

#define HELD_POLL_MS 20
#define NO_PROXY_POLL_MS 500
#define CIRCUIT_POLL_MS 250
#define BACKLOG_POLL_MS 50  /* a backlogged client or a full buffer budget: look again */
#define BACKLOG_SCAN 64     /* queued tasks looked past for one whose client reads */

/* Publishes whether this worker has tasks of h waiting (connection affinity in select.c:
 * other workers then leave our home pairs to us for a moment after they free). */
static void queued_publish(host_rt *h)
{
    int want = h->queued > 0;
    if (want == h->queued_bit || h->w->index == 0 || h->w->index > SHM_MAX_WORKERS)
        return;
    _Atomic uint64_t *mask = &h->w->tbl->hosts[h->idx].queued_workers;
    uint64_t bit = 1ULL << (h->w->index - 1);
    if (want)
        atomic_fetch_or(mask, bit);
    else
        atomic_fetch_and(mask, ~bit);
    h->queued_bit = want;
}

void sched_enqueue(task *t)
{
    host_rt *h = t->host;
    t->state = TASK_QUEUED;
    t->qnext = NULL;
    if (h->tail)
        h->tail->qnext = t;
    else
        h->head = t;
    h->tail = t;
    h->queued++;
    queued_publish(h);
    if (!h->active) {
        h->active = 1;
        h->next_active = h->w->active;
        h->w->active = h;
    }
    worker_need_dispatch(h->w);
}

void sched_unlink(task *t)
{
    host_rt *h = t->host;
    task *prev = NULL;
    for (task *q = h->head; q; prev = q, q = q->qnext) {
        if (q != t)
            continue;
        if (prev)
            prev->qnext = q->qnext;
        else
            h->head = q->qnext;
        if (h->tail == q)
            h->tail = prev;
        h->queued--;
        queued_publish(h);
        break;
    }
    t->qnext = NULL;
    t->state = TASK_RUNNING; /* no longer queued; the caller decides what it is now */
}

/* Unlinks t, which follows prev (NULL: t is the head), from h's queue. */
static void take(host_rt *h, task *prev, task *t)
{
    if (prev)
        prev->qnext = t->qnext;
    else
        h->head = t->qnext;
    if (h->tail == t)
        h->tail = prev;
    h->queued--;
    queued_publish(h);
    t->qnext = NULL;
}

static void wait_until(host_rt *h, uint64_t now, uint64_t at)
{
    if (h->waiting)
        return;
    double delay = at > now ? (double)(at - now) / 1000.0 : 0.001;
    ev_timer_set(&h->wake, delay, 0.);
    ev_timer_start(h->w->loop, &h->wake);
    h->waiting = 1;
    h->wake_at = at > now ? at : now + 1;
}

void sched_pair_freed(host_rt *h, uint64_t at)
{
    if (!h->waiting || at >= h->wake_at)
        return;
    uint64_t now = shm_now_ms();
    ev_timer_stop(h->w->loop, &h->wake);
    h->waiting = 0;
    if (at <= now)
        worker_need_dispatch(h->w);
    else
        wait_until(h, now, at);
}

#define STRAGGLER_RETRY_MS 10      /* after a scan found no fit proxy, others skip scanning */

/* The decisions are policy.c's; these gather what they read from the host, the task and the
 * shared table. */
static void race_of(const host_rt *h, const task *t, policy_race *r)
{
    r->task_width = t->race_width;
    r->adaptive = h->cfg->adaptive_race;
    r->hedged = h->cfg->race_hedged;
    r->width = h->cfg->race_width;
    r->width_min = h->cfg->race_width_min;
    r->width_max = h->cfg->race_width_max;
}

static void round_of(const task *t, policy_round *rd)
{
    rd->n_running = t->n_running;
    rd->started = t->race;
    rd->k = t->round_k;
    rd->straggled = t->straggled;
    rd->probe = (uint32_t)t->probe;
}

/* Estimated chance, in thousandths, that proxy p succeeds for host h now. */
static uint32_t success_permille(const shm_table *tbl, uint32_t p, uint32_t h)
{
    const shm_cell *c = shm_cell_at(tbl, p, h);
    uint64_t wv = atomic_load_explicit(&c->window, memory_order_relaxed);
    uint64_t n = health_window_count(wv);
    if (n)
        return policy_success_permille(n, health_window_successes(wv), 0, 0);
    const shm_proxy *px = &tbl->proxies[p];
    return policy_success_permille(0, 0, atomic_load_explicit(&px->success, memory_order_relaxed),
                                   atomic_load_explicit(&px->fail, memory_order_relaxed));
}

/* A worker whose loop worked (was not waiting) this share of the last second is CPU-bound:
 * its rounds race one proxy (race_width_min), whatever slots are free. */
#define BUSY_SCARCE_PERMILLE 850

/* How many of the n claimed candidates (best first) to keep. */
static uint32_t adaptive_keep(const worker_ctx *w, const host_rt *h, const task *t, const uint32_t *picked,
                              uint32_t n, uint32_t spare)
{
    uint32_t p[SC_RACE_MAX];
    for (uint32_t i = 0; i < n; i++)
        p[i] = success_permille(w->tbl, picked[i], h->idx);
    /* demand: every task of the host this worker holds, running or queued, plus every idle
     * front-door connection (its client may send a request, to any host, at any moment).
     * With the queue alone, a client that keeps C requests open (each task is queued and
     * dispatched at once) always looked like spare slots; with the tasks alone, a client's
     * first requests (its other connections still idle) raced wide and spent the slots the
     * next ones needed: 17 % more attempts per task than msgpack at the rate-limit ceiling */
    uint32_t target = policy_target_permille(spare, h->live_tasks + w->n_http_idle, t->rounds, t->max_attempts);
    return policy_keep(p, n, h->cfg->race_width_min, target);
}

/* Straggler hedging. A round may grow past its planned K by up to POLICY_STRAGGLER_MAX
 * attempts when it straggles (no good answer after the hedge delay) and no task of the host
 * waits for a slot: at the end of a batch, or under light load, a task stuck on a slow or
 * silent proxy (a connect timeout is seconds) then finishes through a spare slot instead of
 * holding the batch up, and while tasks compete for slots nothing changes. The allowance is on
 * top of K, not up to race_width_max: at the end of a cold batch the regular hedges of a wide
 * round go to the best claimable proxies, which are then mostly untried ones, and a round
 * whose every attempt went to a silent proxy is exactly the one that needs a proven one. */

/* Whether the hedge timer of a running round has anything left to do. */
static int may_hedge(const task *t)
{
    if (t->session[0])
        return 0; /* a session's round is its one proxy: no hedges, no stragglers */
    policy_race r;
    policy_round rd;
    race_of(t->host, t, &r);
    round_of(t, &rd);
    return policy_may_hedge(&r, &rd, SC_RACE_MAX);
}

/* When to look at a running round again (policy_hedge_timer_ms). */
static double hedge_delay_s(const task *t)
{
    policy_round rd;
    round_of(t, &rd);
    return policy_hedge_timer_ms(worker_host_hedge_ms(t->host), &rd, t->host->queued) / 1000.0;
}

/* Whether proxy p can still serve host h (else a session pinned to it moves on). */
static int pair_usable(const shm_table *tbl, uint32_t p, uint32_t h, uint64_t now)
{
    const shm_cell *c = shm_cell_at(tbl, p, h);
    const shm_proxy *px = &tbl->proxies[p];
    uint32_t allowed = atomic_load(&tbl->hosts[h].allowed_sources);
    return p < atomic_load(&tbl->hdr->n_proxies) && !atomic_load(&c->dead) &&
           atomic_load(&px->state) != PSTATE_DEAD && atomic_load(&c->cooldown_until_ms) <= now &&
           (allowed == 0 || (atomic_load(&px->sources) & allowed));
}

/* Sticky sessions (docs/HTTP.md, "Sessions"): the proxy for a session task, claimed, in
 * picked[0]; 1, or 0 with st saying when to look again. The session's pinned proxy is used
 * even if it means waiting for its slot; it is left only when this task's last round failed
 * on it with a failure charged to the pair (a proxy fault or a block: a target error says
 * nothing about the proxy), or when it is dead, cooling down or out of the host's pool for
 * this host. Then one normal selection with K = 1 picks the next, and the pin moves only if
 * no other task moved it first, so a failure several tasks see moves the session once. */
static uint32_t session_claim(worker_ctx *w, host_rt *h, task *t, uint64_t now, uint32_t *picked,
                              select_stats *st)
{
    shm_table *tbl = w->tbl;
    uint32_t ttl = w->cfg->session_ttl_ms, pin = SESS_NONE;
    /* full of live sessions since the task was admitted (rare): this round runs unpinned */
    int pinned = tbl->sess && sess_touch(tbl->sess, t->session, h->idx, now, ttl, &pin) == 0;
    int failed_here = t->rounds > 0 && pin == t->sess_proxy && pin != SESS_NONE &&
                      atomic_load(&shm_cell_at(tbl, pin, h->idx)->consec_fails) > 0;
    if (pin != SESS_NONE && !failed_here && pair_usable(tbl, pin, h->idx, now)) {
        uint64_t next = 0;
        *st = (select_stats){.eligible = 1};
        if (!rl_claim(&shm_cell_at(tbl, pin, h->idx)->rl, w->index, now, &next)) {
            st->skip_ratelimit = 1;
            st->next_free_ms = next;
            return 0;
        }
        picked[0] = t->sess_proxy = pin;
        return 1;
    }
    if (worker_select(h, 1, now, picked, st) == 0)
        return 0;
    uint32_t now_pin = picked[0];
    int moved = pinned ? sess_repin(tbl->sess, t->session, h->idx, pin, picked[0], now, ttl, &now_pin) : 0;
    if (moved >= 0 && now_pin != picked[0]) {
        /* another task moved the session meanwhile: follow it on the next pass */
        worker_pair_release(h, picked[0], 0, 0);
        *st = (select_stats){.eligible = 1, .skip_ratelimit = 1, .next_free_ms = now + 1};
        return 0;
    }
    if (moved > 0 && pin != SESS_NONE)
        LOGI(&w->log, "session '%s' host=%s moves from proxy %u to %u (%s)", t->session, h->name, pin, now_pin,
             failed_here ? "its attempt failed there" : "dead, cooling down or out of the pool");
    t->sess_proxy = picked[0];
    return 1;
}

/* Tries to start one task of host h. 1 if it did, 0 if the host must wait, -1 if the whole
 * pass must stop (global in-flight cap). */
/* Whether host h may start a round now: 1 yes, 0 it waits (its timer is armed), -1 the whole
 * pass must stop (a worker-wide limit). */
static int host_gate(worker_ctx *w, host_rt *h, uint64_t now, uint32_t circuit, int64_t inflight)
{
    shm_table *tbl = w->tbl;
    /* a daemon that just started cannot know when the previous one last used each pair:
     * nothing goes out for a host until one interval after the start */
    uint64_t start_gate = atomic_load(&tbl->hdr->started_ms) + cfg_interval_with_margin(w->cfg, h->cfg);
    if (now < start_gate) {
        wait_until(h, now, start_gate);
        return 0;
    }
    /* an open circuit; or, until the master opens it on its next tick, a host whose last
     * threshold answers were all target errors */
    if (circuit == CIRCUIT_OPEN || (circuit == CIRCUIT_CLOSED && atomic_load(&tbl->hosts[h->idx].target_err_run) >=
                                                                     h->cfg->circuit_breaker_threshold)) {
        wait_until(h, now, now + CIRCUIT_POLL_MS);
        return 0;
    }
    if (inflight >= (int64_t)w->cfg->max_inflight) {
        atomic_fetch_add(&tbl->hdr->c.skip_inflight, 1);
        wait_until(h, now, now + HELD_POLL_MS);
        return -1;
    }
    /* memory: the responses of new attempts must fit beside what is already buffered */
    if (w->buffered >= (size_t)w->cfg->worker_buffer_budget / 4 * 3) {
        wait_until(h, now, now + BACKLOG_POLL_MS);
        return -1;
    }
    return 1;
}

static int dispatch_one(worker_ctx *w, host_rt *h)
{
    shm_table *tbl = w->tbl;
    shm_host *hs = &tbl->hosts[h->idx];
    shm_counters *c = &tbl->hdr->c;
    uint64_t now = shm_now_ms();
    uint32_t circuit = atomic_load(&hs->circuit);
    int64_t inflight = atomic_load(&c->inflight);
    int gate = host_gate(w, h, now, circuit, inflight);
    if (gate <= 0)
        return gate;
    /* a client that does not read its replies gets none of its tasks started */
    task *prev = NULL, *t = h->head;
    for (uint32_t i = 0; t && t->owner->ops->backlogged(t->owner) && i < BACKLOG_SCAN; i++) {
        prev = t;
        t = t->qnext;
    }
    if (!t || t->owner->ops->backlogged(t->owner)) {
        wait_until(h, now, now + BACKLOG_POLL_MS);
        return 0;
    }
    int probe = 0;
    if (circuit == CIRCUIT_HALF_OPEN) {
        uint32_t one = 1;
        if (!atomic_compare_exchange_strong(&hs->probe_token, &one, 0)) {
            wait_until(h, now, now + CIRCUIT_POLL_MS);
            return 0;
        }
        probe = 1;
    }
    policy_race pr;
    race_of(h, t, &pr);
    uint64_t room = (uint64_t)((int64_t)w->cfg->max_inflight - inflight);
    uint32_t k = policy_claim_k(&pr, probe, room, SC_RACE_MAX);
    uint32_t picked[SC_RACE_MAX];
    select_stats st;
    uint32_t n = t->session[0] ? session_claim(w, h, t, now, picked, &st)
                               : worker_select(h, k, now, picked, &st);
    atomic_fetch_add(&c->skip_ratelimit, st.skip_ratelimit);
    atomic_fetch_add(&c->skip_cooldown, st.skip_cooldown);
    if (n == 0) {
        if (probe)
            atomic_store(&hs->probe_token, 1u);
        if (st.eligible == 0) {
            /* nothing healthy: tell the master (it may open the circuit) and look again later;
             * a task that ends waiting must say why it never got (another) attempt */
            snprintf(t->last_error, sizeof t->last_error,
                     "no usable proxy for this host: %u dead, %u cooling down, none other in its pool",
                     st.dead, st.cooling);
            atomic_fetch_add(&c->zero_avail, 1);
            atomic_fetch_add(&hs->zero_avail, 1);
            atomic_store(&hs->last_zero_avail_ms, now);
            wait_until(h, now, now + NO_PROXY_POLL_MS);
        } else {
            atomic_fetch_add(&c->delayed, 1);
            uint64_t at = st.next_free_ms == UINT64_MAX ? now + HELD_POLL_MS : st.next_free_ms;
            wait_until(h, now, at);
        }
        return 0;
    }
    if (!t->session[0] && policy_adapts(&pr, n)) {
        /* spare: claimable pairs beyond these, none while the worker's own CPU is spent (its
         * loop was busy most of the last second). Not capped by the room under max_inflight:
         * when connects stall (a target flooded with new connections) the wide rounds are what
         * finish tasks, and capping them filled max_inflight with single stuck attempts
         * (bench/fleet.sh, 20,000 proxies x 10 targets: 325 tasks/s instead of 3,700) */
        uint32_t spare = w->busy_permille >= BUSY_SCARCE_PERMILLE ? 0 : st.claimable;
        uint32_t keep = adaptive_keep(w, h, t, picked, n, spare);
        for (uint32_t i = keep; i < n; i++)
            worker_pair_release(h, picked[i], 0, 0);
        n = keep;
    }
    take(h, prev, t);
    t->state = TASK_RUNNING;
    t->rounds++;
    t->round_answered = 0;
    t->race = 0;
    t->round_k = n;
    t->straggled = 0;
    t->probe = probe;
    atomic_fetch_add(&c->dispatches, 1);
    uint32_t now_n = policy_start_now(n, worker_host_hedge_ms(h), probe);
    for (uint32_t i = now_n; i < n; i++) /* hedging: the rest are claimed again when needed */
        worker_pair_release(h, picked[i], 0, 0);
    for (uint32_t i = 0; i < now_n; i++) {
        if (race_start(t, picked[i]) == 0)
            t->race++;
    }
    if (may_hedge(t)) {
        ev_timer_set(&t->hedge_w, hedge_delay_s(t), 0.);
        ev_timer_start(w->loop, &t->hedge_w);
    }
    if (t->n_running == 0) {
        snprintf(t->last_error, sizeof t->last_error, "internal: could not start any attempt");
        task_finish_error(t, ERR_INTERNAL, "could not start any attempt");
    }
    return 1;
}

void sched_dispatch(worker_ctx *w)
{
    w->dispatch_needed = 0;
    int progress = 1;
    while (progress) {
        progress = 0;
        host_rt **pp = &w->active;
        while (*pp) {
            host_rt *h = *pp;
            if (!h->head) {
                *pp = h->next_active; /* drained: leave the active list */
                h->active = 0;
                h->next_active = NULL;
                continue;
            }
            if (!h->waiting) {
                int r = dispatch_one(w, h);
                if (r < 0)
                    return;
                progress |= r;
            }
            pp = &h->next_active;
        }
    }
}

int sched_hedge_add(task *t)
{
    host_rt *h = t->host;
    worker_ctx *w = h->w;
    shm_table *tbl = w->tbl;
    if (t->race >= t->round_k)
        return 0;
    if (atomic_load(&tbl->hdr->c.inflight) >= (int64_t)w->cfg->max_inflight) {
        atomic_fetch_add(&tbl->hdr->c.skip_inflight, 1);
        return 0;
    }
    uint32_t p;
    select_stats st;
    if (worker_select(h, 1, shm_now_ms(), &p, &st) != 1)
        return 0;
    if (race_start(t, p))
        return 0;
    t->race++;
    return 1;
}

/* A straggler while no task of this host waits for a slot: one more proxy joins, if one of
 * the best claimable has proven itself for this host and usually answers faster than the
 * straggler has already waited. At the end of a batch the fast proven pairs were all used
 * within the last interval, and the best claimable proxies are often ones nobody has tried
 * (on a free list most likely dead or silent: a connect timeout, not an answer) or proven but
 * slow ones (seconds to open a tunnel): either would spend the round's width on attempts no
 * faster than the one it already has. Waiting for a fast proven pair costs at most one
 * interval. */
#define STRAGGLER_CANDIDATES 4
static void straggler_add(task *t)
{
    host_rt *h = t->host;
    worker_ctx *w = h->w;
    shm_table *tbl = w->tbl;
    uint64_t now = shm_now_ms(), waited = 0;
    /* every straggler of the host fires its own timer; one scan per STRAGGLER_RETRY_MS is
     * enough to learn that no fit proxy is claimable (a scan is ~80 us at 20,000 proxies) */
    if (now < h->straggler_next_ms || atomic_load(&tbl->hdr->c.inflight) >= (int64_t)w->cfg->max_inflight)
        return;
    /* a CPU-bound worker's stragglers are mostly its own slowness: another attempt adds to it */
    if (w->busy_permille >= BUSY_SCARCE_PERMILLE)
        return;
    for (uint32_t i = 0; i < t->n_running; i++)
        if (now - t->att[i]->start_ms > waited)
            waited = now - t->att[i]->start_ms;
    uint32_t cand[STRAGGLER_CANDIDATES], p[STRAGGLER_CANDIDATES], lat[STRAGGLER_CANDIDATES];
    select_stats st;
    uint32_t n = worker_select(h, STRAGGLER_CANDIDATES, now, cand, &st);
    for (uint32_t i = 0; i < n; i++) {
        p[i] = success_permille(tbl, cand[i], h->idx);
        lat[i] = atomic_load_explicit(&shm_cell_at(tbl, cand[i], h->idx)->ewma_latency_ms, memory_order_relaxed);
    }
    int chosen = policy_straggler_pick(p, lat, n, waited, worker_host_hedge_ms(h));
    for (uint32_t i = 0; i < n; i++)
        if ((int)i != chosen)
            worker_pair_release(h, cand[i], 0, 0);
    if (chosen < 0) {
        h->straggler_next_ms = now + STRAGGLER_RETRY_MS;
        return;
    }
    if (race_start(t, cand[chosen]))
        return; /* it released the word */
    t->round_k++;
    t->race++;
    t->straggled++;
    atomic_fetch_add(&tbl->hdr->c.straggler_hedges, 1);
}

void sched_hedge_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    task *t = tw->data;
    policy_race r;
    policy_round rd;
    race_of(t->host, t, &r);
    round_of(t, &rd);
    switch (policy_hedge_fire(&r, &rd, t->host->queued, SC_RACE_MAX)) {
    case POLICY_HEDGE_NEXT: sched_hedge_add(t); break;
    case POLICY_HEDGE_STRAGGLER: straggler_add(t); break;
    case POLICY_HEDGE_NONE: break;
    }
    if (may_hedge(t)) {
        /* no slot now, or more may join: look again after another hedge delay */
        ev_timer_set(&t->hedge_w, hedge_delay_s(t), 0.);
        ev_timer_start(loop, &t->hedge_w);
    }
}

void sched_host_free(host_rt *h)
{
    h->queued = 0;
    queued_publish(h);
    ev_timer_stop(h->w->loop, &h->wake);
    six_free(&h->ix);
    free(h);
}
