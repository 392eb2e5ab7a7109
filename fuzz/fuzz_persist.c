/*
 * The state file as the master reads it at start: persist_load of the input into a small,
 * fresh shared table, the way persist_master_load does it. Each run gets its own temporary
 * directory, removed afterwards, because a corrupt file is renamed aside there.
 *
 * A file that loads is loaded a second time with allow_private_proxies flipped, into a
 * second fresh table: validation must not depend on the options.
 *
 * Checked besides the sanitizers:
 *  - the table is touched only when the load says PERSIST_OK (persist.h promises it);
 *  - restored windows hold at most health_window outcomes and no bits above their count
 *    (the health code reads them as such);
 *  - a corrupt file is moved aside, the original name is free, and nothing else is left.
 */
#include "master/persist.h"

#include "shm/table.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_PROXIES 16
#define FUZZ_HOSTS 8
#define FUZZ_WINDOW 30
#define FUZZ_WALL 1790000000123LL /* fixed wall clock: runs do not depend on the day */
#define FUZZ_NOW 5000000ULL       /* table clock */

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_persist: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        fail("cannot create the state file", strerror(errno));
    while (size) {
        ssize_t w = write(fd, data, size);
        if (w <= 0)
            fail("cannot write the state file", strerror(errno));
        data += w;
        size -= (size_t)w;
    }
    close(fd);
}

static int table_untouched(const shm_table *t)
{
    return atomic_load(&t->hdr->n_proxies) == 0 && atomic_load(&t->hdr->n_hosts) == 0;
}

static void check_windows(const shm_table *t, uint32_t window)
{
    uint32_t np = atomic_load(&t->hdr->n_proxies), nh = atomic_load(&t->hdr->n_hosts);
    if (np > FUZZ_PROXIES || nh > FUZZ_HOSTS)
        fail("more slots used than the table has", NULL);
    for (uint32_t h = 0; h < nh; h++)
        for (uint32_t p = 0; p < np; p++) {
            uint64_t w = atomic_load(&shm_cell_at(t, p, h)->window);
            uint64_t n = w >> 56, bits = w & ((1ULL << 56) - 1);
            if (n > window || (bits >> n) != 0) {
                char d[96];
                snprintf(d, sizeof d, "proxy %u host %u window 0x%016llx", p, h, (unsigned long long)w);
                fail("restored window longer than health_window or with bits above its count", d);
            }
        }
}

/* Removes what a load left in dir; fails if anything but `allowed` (or nothing) was there. */
static void clean_dir(const char *dir, const char *allowed)
{
    DIR *d = opendir(dir);
    if (!d)
        fail("cannot open the run's directory", strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (!allowed || strcmp(e->d_name, allowed) != 0)
            fail("persist_load left an unexpected file", e->d_name);
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0)
            fail("cannot remove", p);
    }
    closedir(d);
    if (rmdir(dir) != 0)
        fail("cannot remove the run's directory", strerror(errno));
}

static int load(const char *path, int allow_private, shm_table *t, persist_load_result *res, char *err,
                size_t cap)
{
    int rc = shm_create(t, FUZZ_PROXIES, FUZZ_HOSTS);
    if (rc != 0)
        fail("shm_create", strerror(-rc));
    persist_load_opts o = {.allow_private = allow_private, .window = FUZZ_WINDOW, .wall_ms = FUZZ_WALL};
    err[0] = '\0';
    rc = persist_load(t, path, FUZZ_NOW, &o, res, err, cap);
    if (rc != PERSIST_OK && !table_untouched(t))
        fail("the table was modified by a load that did not succeed", err);
    if (rc == PERSIST_OK)
        check_windows(t, FUZZ_WINDOW);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    char dir[256], path[320];
    snprintf(dir, sizeof dir, "%s/fuzz_persist.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        fail("mkdtemp", strerror(errno));
    snprintf(path, sizeof path, "%s/state.json", dir);
    write_file(path, data, size);

    shm_table t1, t2;
    persist_load_result r1, r2;
    char err[1024];
    int rc = load(path, 0, &t1, &r1, err, sizeof err);
    const char *left = "state.json";
    if (rc == PERSIST_CORRUPT) {
        if (access(path, F_OK) == 0)
            fail("a corrupt file is still under its name", err);
        if (!err[0] || !r1.moved_to[0])
            fail("a corrupt file without a reason or a new name", err);
        const char *slash = strrchr(r1.moved_to, '/');
        left = slash ? slash + 1 : r1.moved_to;
    } else if (rc == PERSIST_OK) {
        int rc2 = load(path, 1, &t2, &r2, err, sizeof err);
        if (rc2 != PERSIST_OK)
            fail("a file that loaded does not load with allow_private_proxies = true", err);
        shm_destroy(&t2);
    } else {
        fail("unexpected persist_load result", err);
    }
    shm_destroy(&t1);
    clean_dir(dir, left);
    return 0;
}
