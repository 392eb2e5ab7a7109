/*
 * Scoring and candidate selection for one host (the score is defined in select.h).
 *
 * select_claim is the worker's hot path. It does not walk the host's row: the caller's index
 * (shm/select_index.h) keeps the pairs free now in a heap by score and the others in a heap by
 * the time they may be claimable, so a claim looks at a few top entries and the pairs whose
 * time has come, O(K log N). Integer arithmetic only (a multiply-high instead of a modulo for
 * the jitter); with a few cells scored per call, a plain division for the window rate is
 * cheaper than the reciprocal table the full scan used to build on every call.
 *
 * The index is a hint. Each pair is judged again from the shared cells when it leaves a heap
 * (another worker may have claimed it, cooled it or killed it since), a claim is still one CAS
 * on the rate-limit word, and a lost CAS puts the pair back where the word says. Every pair is
 * judged again from scratch every SELECT_REFRESH_MS, which brings back revived pairs and any
 * pair whose release the caller did not report.
 */
#include "shm/select.h"

#include <errno.h>

#include "common/limits.h"
#include "shm/health.h"
#include "shm/ratelimit.h"

#define SEL_EXTRA 4 /* candidates looked at beyond k: a lost CAS falls through to the next */
#define SEL_CAND_MAX (SC_RACE_MAX + SEL_EXTRA)
#define SELECT_REFRESH_MS 2000
/* A pair held by another process is looked at again after a quarter interval, within these
 * bounds: soon enough to see a word released unused, rarely enough to cost nothing. */
#define RECHECK_MIN_MS 10
#define RECHECK_MAX_MS 250
#define REC_SCALE 60000000000ULL /* 60000 ms x 1e6: recency in millionths */
/* A cell without a latency sample ranks as if it took a minute: known-fast proxies win ties. */
#define SEL_UNKNOWN_LATENCY 60000u

void select_params_default(select_params *p)
{
    p->w_affinity = 500;
    p->w_global = 300;
    p->w_recency = 200;
    p->jitter = 20000;
    p->home_workers = 0;
    p->home_grace_ms = 0;
    p->home_bonus = 0;
}

static uint32_t global_permille(const shm_proxy *px)
{
    uint64_t s = atomic_load_explicit(&px->success, memory_order_relaxed);
    uint64_t f = atomic_load_explicit(&px->fail, memory_order_relaxed);
    uint64_t n = s + f;
    if (n == 0)
        return 500;
    /* 32-bit division is several times cheaper than 64-bit; counts rarely need more. */
    if (n <= 4000000)
        return (uint32_t)s * 1000u / (uint32_t)n;
    return (uint32_t)(s * 1000 / n);
}

static uint32_t score_cell(const shm_cell *c, const shm_proxy *px, uint64_t now_ms,
                           const select_params *p)
{
    uint64_t w = atomic_load_explicit(&c->window, memory_order_relaxed);
    uint32_t n = health_window_count(w);
    uint32_t aff = 500;
    if (n > 0) {
        if (n > SHM_WINDOW_MAX)
            n = SHM_WINDOW_MAX;
        aff = health_window_successes(w) * 1000u / n;
    }
    uint32_t glob = global_permille(px);
    uint64_t rec = 0;
    uint64_t last = atomic_load_explicit(&c->last_success_ms, memory_order_relaxed);
    if (last != 0) {
        uint64_t since = now_ms > last ? now_ms - last : 0;
        rec = REC_SCALE / (60000 + since);
    }
    uint64_t score = (uint64_t)p->w_affinity * aff + (uint64_t)p->w_global * glob +
                     (uint64_t)p->w_recency * rec / 1000;
    return score > UINT32_MAX ? UINT32_MAX : (uint32_t)score;
}

uint32_t select_score(const shm_table *t, uint32_t proxy, uint32_t host, uint64_t now_ms,
                      const select_params *p)
{
    return score_cell(shm_cell_at(t, proxy, host), &t->proxies[proxy], now_ms, p);
}

/* Cheap, well-mixed per-(call, proxy) bits: the same rnd gives the same spread, so tests and
 * replays are deterministic. */
static uint32_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

/* What one claim call needs to judge pairs: read once per call. */
typedef struct {
    shm_table *t;
    select_index *ix;
    const select_params *p;
    const shm_cell *row;
    uint64_t now, waiting;
    uint32_t allowed, homes, grace, recheck, home_bonus;
    uint64_t jitter_span;
} judge_ctx;

enum { AT_OFF, AT_DEAD, AT_OUT, AT_RATELIMIT, AT_COOLDOWN, AT_READY };

/* Order key of a free pair: score with jitter (24 bits), then inverted latency (16 bits). */
static uint64_t ready_key(const judge_ctx *j, uint32_t proxy, uint64_t rnd)
{
    const shm_cell *c = &j->row[proxy];
    uint64_t score = score_cell(c, &j->t->proxies[proxy], j->now, j->p);
    score += ((uint64_t)mix(rnd ^ ((uint64_t)proxy * 0x9e3779b97f4a7c15ULL)) * j->jitter_span) >> 32;
    if (j->home_bonus && proxy % j->p->home_workers + 1 == j->ix->holder)
        score += j->home_bonus;
    if (score > 0xffffff)
        score = 0xffffff;
    uint32_t lat = atomic_load_explicit(&c->ewma_latency_ms, memory_order_relaxed);
    if (lat == 0)
        lat = SEL_UNKNOWN_LATENCY;
    if (lat > 0xffff)
        lat = 0xffff;
    return (score << 16) | (0xffffu - lat);
}

static int is_reserved(const select_index *ix, uint32_t proxy)
{
    for (uint32_t i = 0; i < ix->n_reserved; i++)
        if (ix->reserved[i] == proxy)
            return 1;
    return 0;
}

/* Where the pair belongs now, from the shared cells; *at is the time for the timer heap. */
static int judge(const judge_ctx *j, uint32_t proxy, uint64_t *at)
{
    if (j->ix->n_reserved && is_reserved(j->ix, proxy))
        return AT_OUT; /* kept back by this process: as if it held the word */
    const shm_cell *c = &j->row[proxy];
    const shm_proxy *px = &j->t->proxies[proxy];
    if (j->allowed != 0 && !(atomic_load_explicit(&px->sources, memory_order_relaxed) & j->allowed))
        return AT_OFF;
    if (atomic_load_explicit(&c->dead, memory_order_relaxed) ||
        atomic_load_explicit(&px->state, memory_order_relaxed) == PSTATE_DEAD)
        return AT_DEAD;
    uint64_t cool = atomic_load_explicit(&c->cooldown_until_ms, memory_order_relaxed);
    if (cool > j->now) {
        *at = cool;
        return AT_COOLDOWN;
    }
    uint64_t w = atomic_load_explicit(&c->rl, memory_order_relaxed);
    if (rl_is_held(w)) {
        if (RL_HOLDER(w) == j->ix->holder)
            return AT_OUT;
        *at = j->now + j->recheck;
        return AT_RATELIMIT;
    }
    /* another worker's pair while that worker has tasks waiting: leave it the first turn */
    uint32_t home = j->homes ? proxy % j->homes : 0;
    if (j->homes && home + 1 != j->ix->holder && (j->waiting >> home) & 1)
        w += j->grace;
    if (w > j->now) {
        *at = w;
        return AT_RATELIMIT;
    }
    return AT_READY;
}

/* Puts the pair where it belongs; returns where that is. */
static int place(judge_ctx *j, uint32_t proxy)
{
    uint64_t at = 0;
    int where = judge(j, proxy, &at);
    select_index *ix = j->ix;
    switch (where) {
    case AT_OFF: six_set(ix, proxy, SIX_OFF); break;
    case AT_DEAD: six_set(ix, proxy, SIX_DEAD); break;
    case AT_OUT: six_set(ix, proxy, SIX_OUT); break;
    case AT_RATELIMIT: six_timer_push(ix, proxy, at, SIX_WHY_RATELIMIT); break;
    case AT_COOLDOWN: six_timer_push(ix, proxy, at, SIX_WHY_COOLDOWN); break;
    default: six_ready_push(ix, proxy, ready_key(j, proxy, ix->rng++)); break;
    }
    return where;
}

static int judge_ctx_init(judge_ctx *j, shm_table *t, select_index *ix, uint64_t now,
                          const select_params *p)
{
    uint32_t host = ix->host;
    if (host >= atomic_load_explicit(&t->hdr->n_hosts, memory_order_acquire))
        return -ENOENT;
    const shm_host *hs = &t->hosts[host];
    j->t = t;
    j->ix = ix;
    j->p = p;
    j->row = shm_cell_at(t, 0, host);
    j->now = now;
    j->allowed = atomic_load_explicit(&hs->allowed_sources, memory_order_relaxed);
    uint32_t interval = atomic_load_explicit(&hs->interval_ms, memory_order_relaxed);
    j->recheck = interval / 4 < RECHECK_MIN_MS ? RECHECK_MIN_MS
               : interval / 4 > RECHECK_MAX_MS ? RECHECK_MAX_MS : interval / 4;
    /* the grace is at most 1/25 of the host's interval: a pair held back that long costs the
     * other worker 4 % of its slots at worst, and with no interval (every pair reusable at
     * once) there is nothing to share, so no affinity */
    j->grace = interval / 25;
    if (j->grace > p->home_grace_ms)
        j->grace = p->home_grace_ms;
    /* queued_workers has one bit per worker: beyond that workers cannot be told apart */
    j->homes = p->home_workers > 1 && p->home_workers <= SHM_MAX_WORKERS && j->grace ? p->home_workers : 0;
    j->waiting = j->homes ? atomic_load_explicit(&hs->queued_workers, memory_order_relaxed) : 0;
    j->jitter_span = (uint64_t)p->jitter + 1;
    j->home_bonus = p->home_workers > 1 && p->home_workers <= SHM_MAX_WORKERS ? p->home_bonus : 0;
    return 0;
}

/* Brings the index up to date: new proxies placed, every pair judged again when the refresh
 * is due or the host's pool or slot changed, pairs whose time has come judged again. */
static int index_sync(judge_ctx *j)
{
    select_index *ix = j->ix;
    const shm_host *hs = &j->t->hosts[ix->host];
    uint32_t np = atomic_load_explicit(&j->t->hdr->n_proxies, memory_order_acquire);
    int rc = six_reserve(ix, np);
    if (rc != 0)
        return rc;
    uint32_t gen = atomic_load_explicit(&hs->gen, memory_order_relaxed);
    if (j->now >= ix->refresh_ms || j->allowed != ix->allowed || gen != ix->gen) {
        six_clear(ix, j->now);
        ix->refresh_ms = j->now + SELECT_REFRESH_MS;
        ix->allowed = j->allowed;
        ix->gen = gen;
    }
    for (; ix->known < np; ix->known++)
        place(j, ix->known);
    uint32_t p;
    while ((p = six_timer_pop_due(ix, j->now)) != SIX_OFF)
        place(j, p);
    return 0;
}

int select_index_init(select_index *ix, const shm_table *t, uint32_t host, uint32_t holder)
{
    int rc = six_init(ix, host, holder, t->hdr->max_proxies);
    if (rc == 0)
        ix->rng = 0x9e3779b97f4a7c15ULL * (holder + 1) ^ host;
    return rc;
}

void select_index_put(shm_table *t, select_index *ix, uint32_t proxy, uint64_t now_ms,
                      const select_params *p)
{
    judge_ctx j;
    if (proxy >= ix->known || judge_ctx_init(&j, t, ix, now_ms, p) != 0)
        return; /* not placed yet: the next claim's sync places it */
    place(&j, proxy);
}

int select_index_reserve(select_index *ix, uint32_t proxy)
{
    if (is_reserved(ix, proxy))
        return 0;
    if (ix->n_reserved == SIX_RESERVED_MAX)
        return -ENOSPC;
    ix->reserved[ix->n_reserved++] = proxy;
    if (proxy < ix->known)
        six_set(ix, proxy, SIX_OUT);
    return 0;
}

void select_index_unreserve(shm_table *t, select_index *ix, uint32_t proxy, uint64_t now_ms,
                            const select_params *p)
{
    for (uint32_t i = 0; i < ix->n_reserved; i++)
        if (ix->reserved[i] == proxy) {
            ix->reserved[i] = ix->reserved[--ix->n_reserved];
            select_index_put(t, ix, proxy, now_ms, p);
            return;
        }
}

uint64_t select_index_free_at(const select_index *ix, uint32_t proxy, uint64_t now_ms)
{
    if (proxy >= ix->known)
        return now_ms;
    uint32_t w = six_where(ix, proxy);
    if (w == SIX_OFF || w == SIX_DEAD || w == SIX_OUT)
        return UINT64_MAX;
    return (w & SIX_TIMER) ? six_timer_at(ix, w & ~SIX_TIMER) : now_ms;
}

typedef struct {
    uint64_t key;
    uint32_t proxy;
} cand;

uint32_t select_claim(shm_table *t, select_index *ix, uint32_t k, uint64_t now_ms,
                      const select_params *p, uint64_t rnd, uint32_t *out, select_stats *st)
{
    select_stats local = {0};
    local.next_free_ms = UINT64_MAX;
    if (k > SC_RACE_MAX)
        k = SC_RACE_MAX;
    judge_ctx j;
    if (k == 0 || judge_ctx_init(&j, t, ix, now_ms, p) != 0 || index_sync(&j) != 0) {
        if (st)
            *st = local;
        return 0;
    }
    /* the best k + SEL_EXTRA that are still free when looked at, best first */
    cand c[SEL_CAND_MAX];
    uint32_t n = 0, proxy;
    while (n < k + SEL_EXTRA && (proxy = six_ready_pop(ix)) != SIX_OFF) {
        uint64_t at = 0;
        int where = judge(&j, proxy, &at);
        if (where != AT_READY) {
            place(&j, proxy); /* stale: someone else used, cooled or killed it */
            if (where == AT_RATELIMIT || where == AT_OUT)
                local.skip_ratelimit++;
            else if (where == AT_COOLDOWN)
                local.skip_cooldown++;
            continue;
        }
        uint64_t key = ready_key(&j, proxy, rnd);
        uint32_t i = n++;
        for (; i > 0 && c[i - 1].key < key; i--)
            c[i] = c[i - 1];
        c[i] = (cand){key, proxy};
    }
    uint32_t got = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t next = 0;
        if (got == k) {
            six_ready_push(ix, c[i].proxy, c[i].key);
        } else if (rl_claim(&shm_cell_at(t, c[i].proxy, ix->host)->rl, ix->holder, now_ms, &next)) {
            six_set(ix, c[i].proxy, SIX_OUT);
            out[got++] = c[i].proxy;
        } else {
            local.skip_ratelimit++; /* lost the race since it was judged */
            place(&j, c[i].proxy);
        }
    }
    /* claims this call could not make and no skip above explains: every other pair waits for
     * its slot, or the rest cool down. The stall counters count claims missed, not pairs. */
    uint32_t rate_limited = ix->n_timer - ix->n_cooling;
    uint32_t missed = k - got, explained = local.skip_ratelimit + local.skip_cooldown;
    if (missed > explained) {
        uint32_t left = missed - explained;
        uint32_t rl = left < rate_limited ? left : rate_limited;
        local.skip_ratelimit += rl;
        left -= rl;
        local.skip_cooldown += left < ix->n_cooling ? left : ix->n_cooling;
    }
    local.eligible = ix->n_ready + rate_limited + ix->n_out;
    local.claimable = ix->n_ready;
    local.dead = ix->n_dead;
    local.cooling = ix->n_cooling;
    /* no later than the next refresh: a pair another process revived, or whose cooldown a
     * success cut short, is only seen there */
    local.next_free_ms = six_timer_next(ix);
    if (local.next_free_ms > ix->refresh_ms)
        local.next_free_ms = ix->refresh_ms;
    if (st)
        *st = local;
    return got;
}
