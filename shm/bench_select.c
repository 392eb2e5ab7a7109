/*
 * Micro-benchmark of select_claim on a table of realistic size: 20,000 proxies x 10 hosts,
 * every row filled with a mix of dead, cooling, rate-limited, held and good cells. One worker's
 * index claims k=3 for one host, call after call, on a clock that advances by SPAN_MS over the
 * run (so pairs come back from the rate limit and the index refreshes twice), and releases
 * each claimed pair as sent at once (free an interval later). Reports the first call (the
 * index is built) apart, then median/p99 per call, resident memory and the mapped size.
 * Usage: bench_select [calls] (default 20000).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/rng.h"
#include "shm/health.h"
#include "shm/proxy_addr.h"
#include "shm/ratelimit.h"
#include "shm/registry.h"
#include "shm/select.h"
#include "shm/table.h"

#define N_PROXIES 20000u
#define N_HOSTS 10u
#define K 3u
#define SPAN_MS 10000u /* simulated time the calls spread over: claims at ~75 % of what the row allows */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Stats for one cell of a live proxy: what a few minutes of traffic would leave behind. */
static void fill_cell(shm_cell *c, uint64_t now, uint64_t *rng, const health_params *hp)
{
    uint32_t r = (uint32_t)(rng_next(rng) % 100);
    uint64_t w = 0;
    uint32_t samples = (uint32_t)(rng_next(rng) % 31);
    uint32_t good_pct = (uint32_t)(rng_next(rng) % 101);
    for (uint32_t i = 0; i < samples; i++)
        w = health_window_push(w, rng_next(rng) % 100 < good_pct, hp->window);
    atomic_store(&c->window, w);
    uint32_t ok = health_window_successes(w);
    atomic_store(&c->success, ok);
    atomic_store(&c->fail, health_window_count(w) - ok);
    if (ok > 0) {
        atomic_store(&c->last_success_ms, now - rng_next(rng) % 1800000);
        atomic_store(&c->ewma_latency_ms, (uint32_t)(100 + rng_next(rng) % 3000));
    }
    if (r < 5)
        atomic_store(&c->dead, 1);
    else if (r < 20)
        atomic_store(&c->cooldown_until_ms, now + 1000 + rng_next(rng) % 60000);
    else if (r < 35)
        atomic_store(&c->rl, now + 1 + rng_next(rng) % 1000);
    else if (r < 40)
        atomic_store(&c->rl, RL_INUSE | (now << 16) | 9);
}

int main(int argc, char **argv)
{
    uint32_t calls = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 20000;
    if (calls < 100)
        calls = 100;
    shm_table t;
    int rc = shm_create(&t, N_PROXIES, N_HOSTS);
    if (rc != 0) {
        fprintf(stderr, "shm_create: %s\n", strerror(-rc));
        return 1;
    }
    health_params hp;
    health_params_default(&hp);
    uint64_t rng = 0x243f6a8885a308d3ULL;
    uint64_t now = shm_now_ms() + 3600000; /* an hour in: room for "last success" in the past */

    for (uint32_t i = 0; i < N_PROXIES; i++) {
        char line[64];
        shm_proxy_addr a;
        int n = snprintf(line, sizeof(line), "socks5://%u.%u.%u.%u:%u", 11 + i % 200,
                         (i >> 8) & 255, i & 255, 1 + i % 250, 1080 + i % 3000);
        if (paddr_parse(line, (size_t)n, &a) != PADDR_OK ||
            reg_proxy_add(&t, &a, 1u << (i % 3), 0, now, NULL) != 1) {
            fprintf(stderr, "cannot add %s\n", line);
            return 1;
        }
        shm_proxy *px = &t.proxies[i];
        /* Free lists: about half the proxies never answer and end up evicted. */
        if (rng_next(&rng) % 100 < 50) {
            atomic_store(&px->state, PSTATE_DEAD);
            atomic_store(&px->fail, 30);
        } else {
            atomic_store(&px->state, PSTATE_ACTIVE);
            atomic_store(&px->success, rng_next(&rng) % 500);
            atomic_store(&px->fail, rng_next(&rng) % 500);
        }
    }
    for (uint32_t h = 0; h < N_HOSTS; h++) {
        char name[64];
        uint32_t idx;
        snprintf(name, sizeof(name), "target-%u.example:443", h);
        if (reg_host_get(&t, name, &idx) != 0)
            return 1;
        atomic_store(&t.hosts[idx].interval_ms, 1000);
        for (uint32_t p = 0; p < N_PROXIES; p++)
            fill_cell(shm_cell_at(&t, p, idx), now, &rng, &hp);
    }

    select_params sp;
    select_params_default(&sp);
    uint64_t *ns = calloc(calls, sizeof(*ns));
    if (ns == NULL)
        return 1;
    select_stats st = {0};
    uint32_t out[K], host = 3, total_got = 0;
    select_index ix;
    if (select_index_init(&ix, &t, host, 1) != 0)
        return 1;
    uint64_t first_ns = 0;
    for (uint32_t i = 0; i <= calls; i++) {
        uint64_t at = now + (uint64_t)i * SPAN_MS / calls;
        uint64_t t0 = now_ns();
        uint32_t got = select_claim(&t, &ix, K, at, &sp, rng_next(&rng), out, &st);
        uint64_t t1 = now_ns();
        for (uint32_t j = 0; j < got; j++) {
            rl_release(&shm_cell_at(&t, out[j], host)->rl, 1, at, 1000);
            select_index_put(&t, &ix, out[j], at, &sp);
        }
        if (i == 0)
            first_ns = t1 - t0;
        else
            ns[i - 1] = t1 - t0;
        total_got += got;
    }
    qsort(ns, calls, sizeof(*ns), cmp_u64);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < calls; i++)
        sum += ns[i];
    printf("bench_select: %u proxies x %u hosts, %u calls of select_claim(k=%u) over %u ms\n",
           N_PROXIES, N_HOSTS, calls, K, SPAN_MS);
    printf("  first call (builds the index): %.1f us\n", first_ns / 1000.0);
    printf("  per call: median %.1f us, p99 %.1f us, mean %.1f us, min %.1f us\n",
           ns[calls / 2] / 1000.0, ns[(uint64_t)calls * 99 / 100] / 1000.0,
           (double)sum / calls / 1000.0, ns[0] / 1000.0);
    printf("  last call: eligible %u, claimable %u, dead %u, cooling %u; claimed %.2f/call\n",
           st.eligible, st.claimable, st.dead, st.cooling, (double)total_got / (calls + 1));
    printf("  table mapped %.1f MB (cells %.1f MB, proxies %.1f MB); VmRSS %.1f MB\n",
           t.size / 1048576.0, (double)N_PROXIES * N_HOSTS * sizeof(shm_cell) / 1048576.0,
           (double)N_PROXIES * sizeof(shm_proxy) / 1048576.0, rss_kb() / 1024.0);
    free(ns);
    six_free(&ix);
    shm_destroy(&t);
    return 0;
}
