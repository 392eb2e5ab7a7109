/*
 * Multi-process stress test of the rate-limit word.
 *
 * Four forked children claim and release random cells of a small table (8 proxies x 2 hosts,
 * interval 20 ms) as fast as they can for about two seconds. Each logs every use: the cell, the
 * claim time, and the "sent" time it recorded just before releasing with
 * sent + interval. The parent then merges the logs per cell and checks the two invariants the
 * target would see: no two holders at once (uses do not overlap) and no use closer than the
 * interval to the previous one (claim[n+1] >= sent[n] + interval). A claim implemented as a
 * plain load-then-store fails this test (see shm/README.md).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/rng.h"
#include "shm/ratelimit.h"
#include "shm/registry.h"
#include "shm/proxy_addr.h"
#include "shm/table.h"

#define CHILDREN 4
#define PROXIES 8
#define HOSTS 2
#define INTERVAL_MS 20
#define RUN_MS 2000
#define LOG_MAX 8192

typedef struct {
    uint32_t cell;
    uint32_t child;
    uint64_t claim_ms, sent_ms;
} use;

typedef struct {
    _Atomic uint32_t n[CHILDREN];
    _Atomic uint32_t release_failed[CHILDREN];
    _Atomic uint64_t attempts[CHILDREN];
    use log[CHILDREN][LOG_MAX];
} shared_log;

static void child(shm_table *t, shared_log *lg, uint32_t id, uint64_t start)
{
    uint64_t rng = 0x9e3779b97f4a7c15ULL * (id + 1);
    uint32_t holder = id + 1, n = 0;
    uint64_t attempts = 0;
    for (;;) {
        uint64_t now = shm_now_ms();
        if (now >= start + RUN_MS || n >= LOG_MAX)
            break;
        uint32_t cell = (uint32_t)(rng_next(&rng) % (PROXIES * HOSTS));
        _Atomic uint64_t *w = &shm_cell_at(t, cell % PROXIES, cell / PROXIES)->rl;
        attempts++;
        if (!rl_claim(w, holder, now, NULL))
            continue;
        /* Hold it for a moment, as a request would, so holders really overlap in time. */
        if (rng_next(&rng) % 4 == 0)
            sched_yield();
        uint64_t sent = shm_now_ms();
        lg->log[id][n] = (use){cell, id, now, sent};
        n++;
        if (!rl_release(w, holder, sent, INTERVAL_MS))
            atomic_fetch_add(&lg->release_failed[id], 1);
    }
    atomic_store(&lg->n[id], n);
    atomic_store(&lg->attempts[id], attempts);
}

static int cmp_use(const void *a, const void *b)
{
    const use *x = a, *y = b;
    if (x->cell != y->cell)
        return x->cell < y->cell ? -1 : 1;
    if (x->claim_ms != y->claim_ms)
        return x->claim_ms < y->claim_ms ? -1 : 1;
    return (x->sent_ms > y->sent_ms) - (x->sent_ms < y->sent_ms);
}

int main(void)
{
    shm_table t;
    int rc = shm_create(&t, PROXIES, HOSTS);
    if (rc != 0) {
        fprintf(stderr, "shm_create: %s\n", strerror(-rc));
        return 1;
    }
    for (uint32_t i = 0; i < PROXIES; i++) {
        char line[32];
        shm_proxy_addr a;
        int n = snprintf(line, sizeof(line), "5.5.5.%u:1080", i + 1);
        if (paddr_parse(line, (size_t)n, &a) != PADDR_OK || reg_proxy_add(&t, &a, 1, 0, 0, NULL) != 1)
            return 1;
    }
    for (uint32_t h = 0; h < HOSTS; h++) {
        char name[32];
        snprintf(name, sizeof(name), "target%u.example", h);
        uint32_t idx;
        if (reg_host_get(&t, name, &idx) != 0)
            return 1;
        atomic_store(&t.hosts[idx].interval_ms, INTERVAL_MS);
    }
    shared_log *lg = mmap(NULL, sizeof(*lg), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                          -1, 0);
    if (lg == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    uint64_t start = shm_now_ms() + 50; /* everyone starts together */
    pid_t pids[CHILDREN];
    for (uint32_t i = 0; i < CHILDREN; i++) {
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("fork");
            return 1;
        }
        if (pids[i] == 0) {
            while (shm_now_ms() < start)
                ;
            child(&t, lg, i, start);
            _exit(0);
        }
    }
    int failed = 0;
    for (uint32_t i = 0; i < CHILDREN; i++) {
        int status = 0;
        if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "child %u failed\n", i);
            failed = 1;
        }
    }

    size_t total = 0;
    uint64_t attempts = 0;
    uint32_t release_failed = 0;
    for (uint32_t i = 0; i < CHILDREN; i++) {
        total += atomic_load(&lg->n[i]);
        attempts += atomic_load(&lg->attempts[i]);
        release_failed += atomic_load(&lg->release_failed[i]);
    }
    use *all = malloc((total ? total : 1) * sizeof(*all));
    if (all == NULL)
        return 1;
    size_t k = 0;
    for (uint32_t i = 0; i < CHILDREN; i++)
        for (uint32_t j = 0; j < atomic_load(&lg->n[i]); j++)
            all[k++] = lg->log[i][j];
    qsort(all, total, sizeof(*all), cmp_use);

    size_t pairs = 0, overlaps = 0, too_close = 0;
    uint32_t cells_used = 0;
    for (size_t i = 0; i < total; i++) {
        if (i == 0 || all[i].cell != all[i - 1].cell) {
            cells_used++;
            continue;
        }
        const use *prev = &all[i - 1], *cur = &all[i];
        pairs++;
        if (cur->claim_ms < prev->sent_ms)
            overlaps++; /* claimed while the previous holder had not released */
        if (cur->claim_ms < prev->sent_ms + INTERVAL_MS) {
            if (too_close < 5)
                fprintf(stderr, "cell %u: child %u claimed at %llu, child %u sent at %llu\n",
                        cur->cell, cur->child, (unsigned long long)cur->claim_ms, prev->child,
                        (unsigned long long)prev->sent_ms);
            too_close++;
        }
    }
    uint32_t still_held = rl_count_held(&t, 0);
    printf("ratelimit_stress: %d children, %u cells, interval %d ms, %d ms\n", CHILDREN,
           PROXIES * HOSTS, INTERVAL_MS, RUN_MS);
    printf("  claim attempts %llu, uses %zu on %u cells, consecutive pairs checked %zu\n",
           (unsigned long long)attempts, total, cells_used, pairs);
    printf("  overlapping holders %zu, uses closer than the interval %zu, failed releases %u, "
           "words still held %u\n",
           overlaps, too_close, release_failed, still_held);
    /* Each cell can be used at most once per interval: a sanity ceiling on the count. */
    size_t ceiling = (size_t)PROXIES * HOSTS * (RUN_MS / INTERVAL_MS + 1);
    if (total > ceiling) {
        printf("  FAIL: %zu uses exceed the ceiling of %zu\n", total, ceiling);
        failed = 1;
    }
    if (pairs < (size_t)PROXIES * HOSTS * 10) {
        printf("  FAIL: too few uses to prove anything\n");
        failed = 1;
    }
    if (overlaps || too_close || release_failed || still_held)
        failed = 1;
    printf("%s\n", failed ? "FAIL" : "PASS");
    free(all);
    munmap(lg, sizeof(*lg));
    shm_destroy(&t);
    return failed;
}
