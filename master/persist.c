/*
 * The state file: the table's health as JSON (jansson), so a restarted daemon starts warm.
 *
 * Format, version 1. Required fields first, then the ones we add; a reader
 * ignores fields it does not know:
 *   {"version": 1, "saved_at": "2026-11-23T09:00:00.123Z", "saved_at_ms": <unix ms>,
 *    "proxies": {"<paddr_format canonical url>": {
 *        "state": "unknown"|"active"|"dead", "success": n, "fail": n,   (global counters)
 *        "hosts": {"<host[:port]>": {"success": n, "fail": n, "avg_latency_ms": n,
 *                                    "consecutive_fails": n,
 *                                    "window": bits, "window_n": n,    (newest outcome = bit 0)
 *                                    "cooldown_level": n, "cooldown_remaining_ms": n,
 *                                    "dead": true, "last_success_age_ms": n}}}}}
 * Cells without any data are not written, nor cells of a host that never had a success (in
 * the host's counters or any of its cells): junk host names must not come back after a
 * restart and fill the host table. The optional cell fields are written only when
 * they say something (a cooldown running, a cell evicted ...), to keep 20,000 x 10 small.
 * The keys hold credentials, so the file is created 0600.
 *
 * Saving streams: nothing is built in memory. Each proxy entry is printed on its own line,
 * its key escaped by jansson (json_dumpf: a password may hold quotes) and its numbers printed
 * directly (building a jansson object per cell cost five times as long at 200,000 cells), so
 * memory is constant whatever the table size. The bytes go to "<path>.tmp.<pid>", which is flushed, fsynced,
 * renamed over <path>, and the directory fsynced: a crash at any point leaves either the old
 * complete file or the new complete file under <path> (rename is atomic), plus at worst a
 * stale temp file that the next start removes.
 *
 * Loading parses the whole file (json_loadf), then validates all of it before touching the
 * table: a file that is truncated, not JSON, of another shape or version, with a number out
 * of range or a proxy key that does not parse is renamed aside ("<path>.corrupt-<unix
 * time>", never over an existing file) and the daemon starts cold, so the table is either
 * fully restored or not touched at all. Then each proxy is added with source_mask 0 (the
 * sources OR their bits in when they list it), private addresses refused as in sources.c,
 * and its cells restored. Never restored: rate-limit words and anything "in use" (the
 * workers that held them are gone), last-access times, host-level metrics.
 *
 * Times: the table clock is CLOCK_MONOTONIC, which means nothing after a reboot, so times are
 * saved relative to the save (remaining cooldown, age of the last success) and rebased on the
 * load's clock, minus the wall-clock downtime between saved_at and the load.
 */
#include "master/persist.h"

#include "master/master.h"
#include "common/paths.h"
#include "shm/health.h"
#include "shm/proxy_addr.h"
#include "shm/registry.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_CAP 4200 /* CFG_STR_MAX-sized paths plus our suffixes */

static void seterr(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static int64_t wall_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void iso_time(int64_t wall_ms, char *buf, size_t cap)
{
    time_t s = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%03dZ", base, (int)(wall_ms % 1000));
}

/* "YYYY-MM-DDTHH:MM:SS[.mmm]Z" -> unix ms; -1 if it is not that. */
static int64_t iso_parse(const char *s)
{
    struct tm tm = {0};
    int ms = 0, used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6)
        return -1;
    s += used;
    if (*s == '.') {
        if (sscanf(s, ".%3d%n", &ms, &used) != 1)
            return -1;
        s += used;
    }
    if (strcmp(s, "Z") != 0)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    return (int64_t)t * 1000 + ms;
}

static const char *state_name(uint32_t s)
{
    return s == PSTATE_ACTIVE ? "active" : s == PSTATE_DEAD ? "dead" : "unknown";
}

static int state_parse(const char *s)
{
    if (!strcmp(s, "unknown"))
        return PSTATE_UNKNOWN;
    if (!strcmp(s, "active"))
        return PSTATE_ACTIVE;
    if (!strcmp(s, "dead"))
        return PSTATE_DEAD;
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* save */

/* Prints one cell as `"host":{...}` (with a leading comma unless first); 0 if the cell holds
 * nothing worth keeping, 1 if printed. Host names are registry-normalised ([a-z0-9.:_[]-]), so
 * they need no escaping; numbers are printed directly: at 200,000 cells, building a jansson
 * object per cell cost five times as long as this. */
static int cell_print(FILE *f, const char *host, const shm_cell *c, uint64_t now_ms, int first)
{
    uint32_t succ = atomic_load_explicit(&c->success, memory_order_relaxed);
    uint32_t fail = atomic_load_explicit(&c->fail, memory_order_relaxed);
    uint64_t win = atomic_load_explicit(&c->window, memory_order_relaxed);
    uint32_t lat = atomic_load_explicit(&c->ewma_latency_ms, memory_order_relaxed);
    uint32_t run = atomic_load_explicit(&c->consec_fails, memory_order_relaxed);
    uint32_t level = atomic_load_explicit(&c->cooldown_level, memory_order_relaxed);
    uint64_t until = atomic_load_explicit(&c->cooldown_until_ms, memory_order_relaxed);
    uint32_t dead = atomic_load_explicit(&c->dead, memory_order_relaxed);
    uint64_t last_ok = atomic_load_explicit(&c->last_success_ms, memory_order_relaxed);
    uint32_t wn = health_window_count(win);
    if (wn > SHM_WINDOW_MAX)
        wn = SHM_WINDOW_MAX;
    if (succ == 0 && fail == 0 && wn == 0 && run == 0 && level == 0 && !dead && until <= now_ms)
        return 0;
    uint64_t bits = win & (wn ? ((1ULL << wn) - 1) : 0);
    fprintf(f, "%s\"%s\":{\"success\":%u,\"fail\":%u,\"avg_latency_ms\":%u,\"consecutive_fails\":%u,"
               "\"window\":%llu,\"window_n\":%u",
            first ? "" : ",", host, succ, fail, lat, run, (unsigned long long)bits, wn);
    if (level)
        fprintf(f, ",\"cooldown_level\":%u", level);
    if (until > now_ms)
        fprintf(f, ",\"cooldown_remaining_ms\":%llu", (unsigned long long)(until - now_ms));
    if (dead)
        fputs(",\"dead\":true", f);
    if (last_ok)
        fprintf(f, ",\"last_success_age_ms\":%llu", (unsigned long long)(now_ms > last_ok ? now_ms - last_ok : 0));
    fputc('}', f);
    return 1;
}

static int fsync_dir_of(const char *path)
{
    char dir[PATH_CAP];
    paths_dir_of(path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int persist_save(shm_table *t, const char *path, uint64_t now_ms, int64_t wall_ms,
                 persist_save_result *res, char *err, size_t cap)
{
    persist_save_result r = {0};
    char tmp[PATH_CAP];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        seterr(err, cap, "path too long");
        return PERSIST_ERR;
    }
    /* never O_TRUNC an existing name: a symlink or file planted there by another user would
     * receive the table (credentials included) or stay theirs after the rename */
    int fd = paths_create_tmp(tmp, 0600, err, cap);
    if (fd < 0)
        return PERSIST_ERR;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        seterr(err, cap, "fdopen: %s", strerror(errno));
        close(fd);
        unlink(tmp);
        return PERSIST_ERR;
    }
    if (wall_ms <= 0)
        wall_ms = wall_now_ms();
    char ts[64];
    iso_time(wall_ms, ts, sizeof ts);
    fprintf(f, "{\"version\":%d,\"saved_at\":\"%s\",\"saved_at_ms\":%lld,\"proxies\":{", PERSIST_VERSION, ts,
            (long long)wall_ms);

    /* acquire: every slot below the counts is fully written (shm/README "Publication") */
    uint32_t np = atomic_load_explicit(&t->hdr->n_proxies, memory_order_acquire);
    uint32_t nh = atomic_load_explicit(&t->hdr->n_hosts, memory_order_acquire);
    int failed = 0, oom = 0, first = 1;
    /* Only hosts that ever had a success: a host that never answered (a junk name a client
     * submitted, a typo) would otherwise come back at every start and hold a slot of the
     * host table for good. A restored host keeps qualifying through its cells' successes. */
    uint8_t *keep = calloc(nh ? nh : 1, 1);
    if (!keep)
        oom = failed = 1;
    for (uint32_t h = 0; h < nh && keep; h++) {
        keep[h] = atomic_load_explicit(&t->hosts[h].success, memory_order_relaxed) > 0;
        for (uint32_t p = 0; p < np && !keep[h]; p++)
            keep[h] = atomic_load_explicit(&shm_cell_at(t, p, h)->success, memory_order_relaxed) > 0;
    }
    char url[1024];
    for (uint32_t p = 0; p < np && !failed; p++) {
        const shm_proxy *px = &t->proxies[p];
        if (paddr_format(&px->addr, url, sizeof url) < 0)
            continue; /* cannot happen for a parsed address; never write a key we cannot read */
        /* the key may hold a password with quotes or backslashes: jansson escapes it */
        json_t *key = json_string(url);
        if (!key) {
            oom = failed = 1;
            break;
        }
        /* one proxy per line: a reader can see (and a person can grep) one entry at a time */
        if (fputs(first ? "\n" : ",\n", f) == EOF || json_dumpf(key, f, JSON_ENCODE_ANY) != 0)
            failed = 1;
        json_decref(key);
        fprintf(f, ":{\"state\":\"%s\",\"success\":%llu,\"fail\":%llu,\"hosts\":{",
                state_name(atomic_load(&px->state)), (unsigned long long)atomic_load(&px->success),
                (unsigned long long)atomic_load(&px->fail));
        int firstc = 1;
        for (uint32_t h = 0; h < nh; h++)
            if (keep[h] && cell_print(f, t->hosts[h].name, shm_cell_at(t, p, h), now_ms, firstc)) {
                firstc = 0;
                r.cells++;
            }
        if (fputs("}}", f) == EOF || ferror(f))
            failed = 1;
        first = 0;
        r.proxies++;
    }
    free(keep);
    if (!failed && fputs("\n}}\n", f) == EOF)
        failed = 1;
    if (!failed && (fflush(f) != 0 || ferror(f)))
        failed = 1;
    if (!failed && fsync(fd) != 0)
        failed = 1;
    int saved_errno = errno;
    if (!failed)
        r.bytes = (uint64_t)ftello(f);
    if (fclose(f) != 0 && !failed) {
        failed = 1;
        saved_errno = errno;
    }
    if (failed) {
        seterr(err, cap, "cannot write %s: %s", tmp, oom ? "out of memory" : strerror(saved_errno));
        unlink(tmp);
        return PERSIST_ERR;
    }
    if (rename(tmp, path) != 0) {
        seterr(err, cap, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return PERSIST_ERR;
    }
    /* the rename itself is durable only once the directory is on disk */
    if (fsync_dir_of(path) != 0) {
        seterr(err, cap, "fsync of the directory of %s: %s", path, strerror(errno));
        return PERSIST_ERR;
    }
    if (res)
        *res = r;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* load: validation */

/* Optional non-negative integer field <= max. 1 present (in *out), 0 absent, -1 wrong. */
static int get_uint(const json_t *o, const char *key, uint64_t max, uint64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

/* Same characters as the registry's host normaliser, so a valid file never fails there. */
static int host_key_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SHM_HOST_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '.' || c == ':' || c == '[' || c == ']' || c == '_'))
            return 0;
    }
    return 1;
}

static const char *const CELL_REQUIRED[] = {"success", "fail", "avg_latency_ms", "consecutive_fails"};

static int validate_cell(const char *url, const char *host, const json_t *c, char *err, size_t cap)
{
    if (!host_key_ok(host)) {
        seterr(err, cap, "proxy %.200s: bad host key '%.200s'", url, host);
        return -1;
    }
    if (!json_is_object(c)) {
        seterr(err, cap, "proxy %.200s host %.200s: not an object", url, host);
        return -1;
    }
    uint64_t v;
    for (size_t i = 0; i < sizeof CELL_REQUIRED / sizeof *CELL_REQUIRED; i++)
        if (get_uint(c, CELL_REQUIRED[i], UINT32_MAX, &v) != 1) {
            seterr(err, cap, "proxy %.200s host %.200s: '%s' missing or not an integer in 0..%u", url, host,
                   CELL_REQUIRED[i], UINT32_MAX);
            return -1;
        }
    static const struct { const char *k; uint64_t max; } OPT[] = {
        {"window", (1ULL << SHM_WINDOW_MAX) - 1}, {"window_n", SHM_WINDOW_MAX}, {"cooldown_level", 64},
        {"cooldown_remaining_ms", 365ULL * 86400000}, {"last_success_age_ms", (uint64_t)INT64_MAX}};
    for (size_t i = 0; i < sizeof OPT / sizeof *OPT; i++)
        if (get_uint(c, OPT[i].k, OPT[i].max, &v) < 0) {
            seterr(err, cap, "proxy %.200s host %.200s: '%s' not an integer in 0..%llu", url, host, OPT[i].k,
                   (unsigned long long)OPT[i].max);
            return -1;
        }
    const json_t *d = json_object_get(c, "dead");
    if (d && !json_is_boolean(d)) {
        seterr(err, cap, "proxy %.200s host %.200s: 'dead' not a boolean", url, host);
        return -1;
    }
    return 0;
}

/* Whole document; on success *proxies is the "proxies" object and *saved_ms saved_at (or -1). */
static int validate(const json_t *root, const json_t **proxies, int64_t *saved_ms, char *err, size_t cap)
{
    if (!json_is_object(root)) {
        seterr(err, cap, "not a JSON object");
        return -1;
    }
    const json_t *ver = json_object_get(root, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) != PERSIST_VERSION) {
        seterr(err, cap, "'version' is %s, expected %d", ver ? (json_is_integer(ver) ? "another number" : "not a number")
                                                          : "missing", PERSIST_VERSION);
        return -1;
    }
    const json_t *at = json_object_get(root, "saved_at");
    if (!json_is_string(at)) {
        seterr(err, cap, "'saved_at' missing or not a string");
        return -1;
    }
    *saved_ms = iso_parse(json_string_value(at)); /* unreadable time: no downtime correction */
    const json_t *px = json_object_get(root, "proxies");
    if (!json_is_object(px)) {
        seterr(err, cap, "'proxies' missing or not an object");
        return -1;
    }
    const char *url;
    const json_t *p;
    json_object_foreach((json_t *)px, url, p) {
        shm_proxy_addr a;
        paddr_result pr = paddr_parse(url, strlen(url), &a);
        if (pr != PADDR_OK) {
            seterr(err, cap, "proxy key '%.200s': %s", url, pr == PADDR_SKIP ? "empty" : paddr_strerror(pr));
            return -1;
        }
        if (!json_is_object(p)) {
            seterr(err, cap, "proxy %.200s: not an object", url);
            return -1;
        }
        const json_t *st = json_object_get(p, "state");
        if (!json_is_string(st) || state_parse(json_string_value(st)) < 0) {
            seterr(err, cap, "proxy %.200s: 'state' missing or not unknown/active/dead", url);
            return -1;
        }
        uint64_t v;
        if (get_uint(p, "success", (uint64_t)INT64_MAX, &v) < 0 || get_uint(p, "fail", (uint64_t)INT64_MAX, &v) < 0) {
            seterr(err, cap, "proxy %.200s: 'success'/'fail' not a non-negative integer", url);
            return -1;
        }
        const json_t *hosts = json_object_get(p, "hosts");
        if (!json_is_object(hosts)) {
            seterr(err, cap, "proxy %.200s: 'hosts' missing or not an object", url);
            return -1;
        }
        const char *hn;
        const json_t *c;
        json_object_foreach((json_t *)hosts, hn, c) {
            if (validate_cell(url, hn, c, err, cap))
                return -1;
        }
    }
    *proxies = px;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* load: restore */

/* A window that says what the totals say, when the file has none: the newest `run` outcomes
 * are the failure run, then successes in the cell's overall proportion, failures oldest. */
static uint64_t window_rebuild(uint64_t succ, uint64_t fail, uint64_t run, uint32_t size)
{
    uint64_t total = succ + fail;
    uint64_t n = total < size ? total : size;
    if (n == 0)
        return 0;
    uint64_t r = run < n ? run : n;
    uint64_t k = (succ * n + total / 2) / total;
    if (k > n - r)
        k = n - r;
    uint64_t bits = k ? ((1ULL << k) - 1) << r : 0;
    return health_window_pack((uint32_t)n, bits);
}

static uint64_t field(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return v ? (uint64_t)json_integer_value(v) : 0; /* validated: integer >= 0 */
}

static void restore_cell(shm_cell *c, const json_t *o, uint64_t now_ms, uint64_t down, uint32_t window)
{
    uint64_t succ = field(o, "success"), fail = field(o, "fail"), run = field(o, "consecutive_fails");
    uint64_t w;
    const json_t *wb = json_object_get(o, "window"), *wn = json_object_get(o, "window_n");
    if (wb && wn) {
        /* the low bits are the newest outcomes, so cutting to a smaller window keeps those */
        uint64_t n = (uint64_t)json_integer_value(wn);
        if (n > window)
            n = window;
        w = health_window_pack((uint32_t)n, (uint64_t)json_integer_value(wb));
    } else {
        w = window_rebuild(succ, fail, run, window);
    }
    atomic_store(&c->window, w);
    atomic_store(&c->success, (uint32_t)succ);
    atomic_store(&c->fail, (uint32_t)fail);
    atomic_store(&c->ewma_latency_ms, (uint32_t)field(o, "avg_latency_ms"));
    atomic_store(&c->consec_fails, (uint32_t)run);
    atomic_store(&c->cooldown_level, (uint32_t)field(o, "cooldown_level"));
    uint64_t rem = field(o, "cooldown_remaining_ms");
    atomic_store(&c->cooldown_until_ms, rem > down ? now_ms + (rem - down) : 0);
    atomic_store(&c->dead, json_is_true(json_object_get(o, "dead")) ? 1u : 0u);
    const json_t *age = json_object_get(o, "last_success_age_ms");
    if (age) {
        uint64_t a = (uint64_t)json_integer_value(age) + down;
        /* 0 means "never succeeded"; a success older than our clock's origin is kept as 1 */
        atomic_store(&c->last_success_ms, now_ms > a ? now_ms - a : 1);
    }
    atomic_store(&c->rl, 0); /* never restored: free, usable now */
}

/* Renames path to "<path>.corrupt-<unix time>[.N]" without replacing anything. */
static int set_aside(const char *path, char *out, size_t cap)
{
    long now = (long)time(NULL);
    for (int i = 0; i < 100; i++) {
        if (i == 0)
            snprintf(out, cap, "%s.corrupt-%ld", path, now);
        else
            snprintf(out, cap, "%s.corrupt-%ld.%d", path, now, i);
        /* link fails with EEXIST instead of replacing, which rename would do */
        if (link(path, out) == 0)
            return unlink(path) == 0 ? 0 : -1;
        if (errno == EEXIST)
            continue;
        /* a file system without hard links: check, then rename (single writer: the master) */
        if (access(out, F_OK) == 0)
            continue;
        return rename(path, out);
    }
    errno = EEXIST;
    return -1;
}

int persist_load(shm_table *t, const char *path, uint64_t now_ms, const persist_load_opts *opts,
                 persist_load_result *res, char *err, size_t cap)
{
    persist_load_result r;
    memset(&r, 0, sizeof r);
    if (res)
        res->moved_to[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return PERSIST_MISSING;
        seterr(err, cap, "cannot open: %s", strerror(errno));
        return PERSIST_ERR;
    }
    json_error_t jerr;
    /* duplicate keys: not something we write, so the file is not ours */
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    int read_err = ferror(f);
    fclose(f);
    if (read_err) {
        json_decref(root);
        seterr(err, cap, "read error");
        return PERSIST_ERR;
    }
    const json_t *proxies = NULL;
    int64_t saved_ms = -1;
    char why[512];
    if (!root)
        snprintf(why, sizeof why, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    if (!root || validate(root, &proxies, &saved_ms, why, sizeof why)) {
        json_decref(root);
        if (set_aside(path, r.moved_to, sizeof r.moved_to) != 0) {
            seterr(err, cap, "%s; and it cannot be moved aside: %s", why, strerror(errno));
            return PERSIST_ERR;
        }
        seterr(err, cap, "%s", why);
        if (res)
            *res = r;
        return PERSIST_CORRUPT;
    }

    int64_t wall = opts->wall_ms > 0 ? opts->wall_ms : wall_now_ms();
    uint64_t down = saved_ms >= 0 && wall > saved_ms ? (uint64_t)(wall - saved_ms) : 0;
    r.downtime_ms = down;
    uint32_t window = opts->window ? opts->window : 30;
    if (window > SHM_WINDOW_MAX)
        window = SHM_WINDOW_MAX;
    uint8_t *host_seen = calloc(t->hdr->max_hosts ? t->hdr->max_hosts : 1, 1);
    if (!host_seen) {
        json_decref(root);
        seterr(err, cap, "out of memory");
        return PERSIST_ERR;
    }
    const char *url, *hn;
    const json_t *p, *c;
    json_object_foreach((json_t *)proxies, url, p) {
        shm_proxy_addr a;
        paddr_parse(url, strlen(url), &a); /* validated above */
        if (!opts->allow_private && paddr_is_private(&a)) {
            r.skipped_private++;
            continue;
        }
        uint32_t pi;
        if (reg_proxy_add(t, &a, 0, 0, now_ms, &pi) < 0) {
            r.skipped_full++;
            continue;
        }
        shm_proxy *px = &t->proxies[pi];
        uint64_t sum_ok = 0, sum_fail = 0;
        json_object_foreach((json_t *)json_object_get(p, "hosts"), hn, c) {
            uint32_t hi;
            if (reg_host_get(t, hn, &hi) != 0) {
                r.skipped_full++;
                continue;
            }
            restore_cell(shm_cell_at(t, pi, hi), c, now_ms, down, window);
            sum_ok += field(c, "success");
            sum_fail += field(c, "fail");
            if (!host_seen[hi]) {
                host_seen[hi] = 1;
                r.hosts++;
            }
            r.cells++;
        }
        /* the saved global counters when present; the sums of the cells otherwise (the cells'
         * failures include refusals that never charged the proxy, so that overestimates) */
        const json_t *gs = json_object_get(p, "success"), *gf = json_object_get(p, "fail");
        atomic_store(&px->success, gs ? (uint64_t)json_integer_value(gs) : sum_ok);
        atomic_store(&px->fail, gf ? (uint64_t)json_integer_value(gf) : sum_fail);
        atomic_store(&px->state, (uint32_t)state_parse(json_string_value(json_object_get(p, "state"))));
        r.proxies++;
    }
    free(host_seen);
    json_decref(root);
    if (res)
        *res = r;
    return PERSIST_OK;
}

int persist_remove_stale_tmp(const char *path)
{
    char dir[PATH_CAP], prefix[PATH_CAP];
    const char *slash = strrchr(path, '/');
    if (slash) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path == 0 ? 1 : slash - path), path);
        snprintf(prefix, sizeof prefix, "%s.tmp.", slash + 1);
    } else {
        snprintf(dir, sizeof dir, ".");
        snprintf(prefix, sizeof prefix, "%s.tmp.", path);
    }
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t pl = strlen(prefix);
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, pl) != 0)
            continue;
        char *end;
        long pid = strtol(e->d_name + pl, &end, 10);
        if (*end || pid <= 0)
            continue; /* not one of ours */
        /* a live writer other than us (a second daemon on the same file) is left alone */
        if (pid != (long)getpid() && pid <= INT_MAX && kill((pid_t)pid, 0) == 0)
            continue;
        char full[PATH_CAP * 2];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        if (unlink(full) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

/* ------------------------------------------------------------------------------------------ */
/* master glue */

void persist_master_load(master_ctx *m)
{
    const char *path = m->cfg->state_file;
    if (!path[0])
        return;
    int stale = persist_remove_stale_tmp(path);
    if (stale)
        LOGI(&m->log, "state: removed %d temp file(s) of an interrupted save", stale);
    persist_load_opts o = {.allow_private = (int)m->cfg->allow_private_proxies, .window = m->cfg->health_window};
    persist_load_result *r = calloc(1, sizeof *r);
    if (!r) {
        LOGW(&m->log, "state: out of memory; starting cold");
        return;
    }
    char err[1024];
    uint64_t t0 = shm_now_ms();
    int rc = persist_load(&m->tbl, path, t0, &o, r, err, sizeof err);
    uint64_t took = shm_now_ms() - t0;
    switch (rc) {
    case PERSIST_OK:
        LOGI(&m->log, "state: loaded %u proxies (%u hosts) from %s (%u pairs; %u private and %u over the "
                      "limits skipped; saved %llu s ago; %llu ms)",
             r->proxies, r->hosts, path, r->cells, r->skipped_private, r->skipped_full,
             (unsigned long long)(r->downtime_ms / 1000), (unsigned long long)took);
        break;
    case PERSIST_MISSING:
        LOGI(&m->log, "state: %s does not exist yet; starting cold", path);
        break;
    case PERSIST_CORRUPT:
        LOGW(&m->log, "state: %s is corrupt (%s); moved to %s; starting cold", path, err, r->moved_to);
        break;
    default:
        m->state_save_disabled = 1;
        LOGE(&m->log, "state: cannot load %s (%s); starting cold, and not saving over it this run", path, err);
        break;
    }
    free(r);
}

void persist_master_save(master_ctx *m)
{
    const char *path = m->cfg->state_file;
    if (!path[0] || m->state_save_disabled)
        return;
    char err[1024];
    persist_save_result r;
    uint64_t t0 = shm_now_ms();
    if (persist_save(&m->tbl, path, t0, 0, &r, err, sizeof err) != 0) {
        LOGW(&m->log, "state: save failed, the previous file is kept: %s", err);
        return;
    }
    LOGI(&m->log, "state: saved %u proxies in %llu ms (%u pairs, %llu KB)", r.proxies,
         (unsigned long long)(shm_now_ms() - t0), r.cells, (unsigned long long)(r.bytes / 1024));
}

static void save_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    master_ctx *m = w->data;
    persist_master_save(m);
    /* state_save_interval is reloadable: pick up a new value here rather than in reload() */
    double iv = m->cfg->state_save_interval_ms / 1000.0;
    if (iv != w->repeat) {
        w->repeat = iv;
        ev_timer_again(loop, w);
    }
}

void persist_master_start(master_ctx *m)
{
    if (!m->cfg->state_file[0] || m->state_save_disabled)
        return;
    double iv = m->cfg->state_save_interval_ms / 1000.0;
    ev_timer_init(&m->save_w, save_cb, iv, iv);
    m->save_w.data = m;
    ev_timer_start(m->loop, &m->save_w);
}
