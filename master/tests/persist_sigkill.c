/*
 * Crash test for the state file: a child saves a 5,000 x 3 table to one path in a tight loop
 * and the parent SIGKILLs it at random moments (0-30 ms after the fork), at least 50 times.
 * After every kill the path must load completely (all proxies and cells), or not exist yet
 * when no save has ever finished its rename. A leftover "<path>.tmp.<pid>" means the kill
 * landed mid-save; those are counted, then removed as the master does at start.
 * Exit 0 on success; prints the counts.
 */
#include "master/persist.h"
#include "shm/health.h"
#include "shm/proxy_addr.h"
#include "shm/registry.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NP 5000
#define NH 3
#define KILLS 60

static int fail_count;
#define CHECK(cond, ...)                                                                                \
    do {                                                                                                \
        if (!(cond)) {                                                                                  \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                         \
            fprintf(stderr, __VA_ARGS__);                                                               \
            fputc('\n', stderr);                                                                        \
            fail_count++;                                                                               \
        }                                                                                               \
    } while (0)

static void fill(shm_table *t)
{
    uint32_t hi[NH];
    for (int h = 0; h < NH; h++) {
        char name[32];
        snprintf(name, sizeof name, "host%d.example.com", h);
        if (reg_host_get(t, name, &hi[h]))
            abort();
    }
    for (uint32_t i = 0; i < NP; i++) {
        char line[64];
        snprintf(line, sizeof line, "socks5://u%u:pw@203.0.%u.%u:%u", i, (i / 250) % 250, i % 250, 1024 + i);
        shm_proxy_addr a;
        uint32_t p;
        if (paddr_parse(line, strlen(line), &a) != PADDR_OK || reg_proxy_add(t, &a, 1, 0, 1, &p) < 0)
            abort();
        atomic_store(&t->proxies[p].state, i % 10 ? PSTATE_ACTIVE : PSTATE_DEAD);
        for (int h = 0; h < NH; h++) {
            shm_cell *c = shm_cell_at(t, p, hi[h]);
            atomic_store(&c->success, 1 + i % 50);
            atomic_store(&c->fail, i % 7);
            atomic_store(&c->ewma_latency_ms, 100 + i % 900);
            atomic_store(&c->window, health_window_push(0, 1, 30));
        }
    }
}

static int exists(const char *p)
{
    return access(p, F_OK) == 0;
}

int main(void)
{
    char dir[] = "/tmp/scatter_sigkill.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/state.json", dir);
    shm_table t;
    if (shm_create(&t, NP, NH)) {
        fputs("shm_create failed\n", stderr);
        return 1;
    }
    fill(&t);
    /* completed saves, counted by the children in memory the parent can read */
    _Atomic uint64_t *done = mmap(NULL, sizeof *done, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (done == MAP_FAILED)
        return 1;
    atomic_store(done, 0);

    /* how long one save takes here, to tell the reader how the kills spread over it */
    char err[512];
    uint64_t t0 = shm_now_ms();
    for (int i = 0; i < 5; i++)
        if (persist_save(&t, path, shm_now_ms(), 0, NULL, err, sizeof err)) {
            fprintf(stderr, "save: %s\n", err);
            return 1;
        }
    double save_ms = (shm_now_ms() - t0) / 5.0;
    unlink(path); /* start without a file: the "before the first rename" case is tested too */
    /* 0-30 ms, as asked; but a kill must be able to land after a rename too, so when one save
     * takes longer (sanitizer builds) the range covers 1.5 saves */
    long range_us = 30000;
    if (save_ms * 1500 > range_us)
        range_us = (long)(save_ms * 1500);
    if (range_us > 999999)
        range_us = 999999;

    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    int kills = 0, mid = 0, loaded = 0, missing = 0, ever_renamed = 0;
    for (int k = 0; k < KILLS; k++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            for (uint32_t n = 0;; n++) {
                /* the table changes between saves, as it does under the workers */
                atomic_fetch_add(&shm_cell_at(&t, n % NP, n % NH)->success, 1);
                if (persist_save(&t, path, shm_now_ms(), 0, NULL, err, sizeof err) == 0)
                    atomic_fetch_add(done, 1);
            }
        }
        uint64_t before = atomic_load(done);
        struct timespec d = {0, (long)(rand() % (range_us + 1)) * 1000L};
        nanosleep(&d, NULL);
        kill(pid, SIGKILL);
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
            fprintf(stderr, "child %d did not die of SIGKILL\n", (int)pid);
            return 1;
        }
        kills++;
        /* a save that returned had renamed; one counted after our read may have too */
        if (before > 0 || atomic_load(done) > 0)
            ever_renamed = 1;
        char tmp[160];
        snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)pid);
        if (exists(tmp)) {
            mid++;
            CHECK(persist_remove_stale_tmp(path) == 1, "stale temp file not removed");
        }
        CHECK(!exists(tmp), "temp file left after cleanup");

        shm_table fresh;
        if (shm_create(&fresh, NP, NH))
            return 1;
        persist_load_opts o = {.allow_private = 0, .window = 30};
        persist_load_result r;
        int rc = persist_load(&fresh, path, shm_now_ms(), &o, &r, err, sizeof err);
        if (rc == PERSIST_OK) {
            loaded++;
            ever_renamed = 1;
            CHECK(r.proxies == NP && r.cells == NP * NH, "kill %d: incomplete load: %u proxies, %u cells", k,
                  r.proxies, r.cells);
        } else if (rc == PERSIST_MISSING) {
            missing++;
            CHECK(!ever_renamed, "kill %d: the file vanished after a completed save", k);
        } else {
            CHECK(0, "kill %d: load returned %d: %s (moved to '%s')", k, rc, err,
                  rc == PERSIST_CORRUPT ? r.moved_to : "");
        }
        shm_destroy(&fresh);
    }
    uint64_t saves = atomic_load(done);
    printf("persist_sigkill: seed %u, one save of %d proxies x %d hosts takes %.1f ms; kills at 0-%ld ms\n", seed,
           NP, NH, save_ms, range_us / 1000);
    printf("persist_sigkill: %d kills, %d mid-save (temp file present), %d loads complete, %d before the "
           "first rename; %llu saves completed by the children\n",
           kills, mid, loaded, missing, (unsigned long long)saves);
    CHECK(kills >= 50, "only %d kills", kills);
    CHECK(loaded > 0, "no save ever completed: the test proved nothing");
    CHECK(mid > 0, "no kill landed mid-save: the test proved nothing");

    /* final state: only the state file itself */
    DIR *dd = opendir(dir);
    struct dirent *e;
    while (dd && (e = readdir(dd))) {
        if (e->d_name[0] == '.')
            continue;
        CHECK(strcmp(e->d_name, "state.json") == 0, "leftover file %s", e->d_name);
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (dd)
        closedir(dd);
    rmdir(dir);
    munmap((void *)done, sizeof *done);
    shm_destroy(&t);
    return fail_count ? 1 : 0;
}
